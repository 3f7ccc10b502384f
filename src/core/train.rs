//! The training epoch of our kernel sets (the original's `_start.asm` loop): batches in the
//! order [`crate::schedule`] gives, each one's line ([`crate::report::log_step`]), the update.
//!
//! A batch is [`crate::step::forward_backward`] (phases 1-6: the passes), then phase 7 here:
//! the SGD step over all parameters (all but fc1's weights when phase 4 did theirs; threads
//! split them), then the conv weights are repacked. Threads are started once per epoch
//! ([`Team::run`]), never per batch.

use crate::arena::View;
use crate::config::Kernels;
use crate::config::{Hyper, Shapes};
use crate::dataset::Dataset;
use crate::net::{Ctx, Net, REPACK_UNITS};
use crate::network::{Epoch, EpochOptions, EpochStats, Network};
use crate::profile::{Clock, Section};
use crate::step::{self, Augment, Batch};
use crate::team::Team;
use crate::update::Momentum;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The mean loss of the batch `idx` and its summed gradients (left in `net.grads`), without
/// updating anything. For gradient checks. `aug` switches on the flips and dropout masks that
/// step `step` of epoch `epoch` would use (`None`: neither).
pub fn loss_and_gradients(
    net: &mut Net,
    data: &dyn Dataset,
    idx: &[u32],
    aug: Option<(&EpochOptions, usize, usize)>,
) -> f32 {
    assert!(idx.len() <= net.hyper.batch && !idx.is_empty());
    let aug = match aug {
        None => Augment::none(),
        Some((opts, epoch, step)) => Augment::new(opts, epoch, step),
    };
    let out = Mutex::new(0.0f32);
    let threads = net.hyper.threads;
    let c: Ctx = net.ctx();
    let ok = AtomicBool::new(true);
    let batch = Batch { data, idx, aug };
    Team::run(threads, |team, t| {
        if let Some(l) = step::forward_backward(&c, team, t, &batch, None, &ok) {
            *out.lock().unwrap() = l;
        }
    });
    out.into_inner().unwrap()
}

/// The fast tier behind the seam. Its epoch loop is written here, in the trait method, so that
/// the path from `main` to a kernel stays short: `fit` -> [`Network::run_epoch`] ->
/// [`step::forward_backward`] -> [`step::conv_blocks_forward`] -> the layer's driver -> the
/// micro-kernel.
impl Network for Net {
    fn dims(&self) -> (&Hyper, &Shapes) {
        (&self.hyper, &self.shapes)
    }
    fn kernels(&self) -> Kernels {
        self.kernels
    }
    fn describe(&self) -> String {
        let algos = self.conv.map(|p| format!("{:?}", p.algo)).join("/");
        format!(
            "kernels {} (conv {algos}), threads {}",
            self.kernels, self.hyper.threads
        )
    }
    fn params(&self) -> &[f32] {
        Net::params(self)
    }
    fn params_mut(&mut self) -> &mut [f32] {
        Net::params_mut(self)
    }
    fn velocity_values(&self) -> &[f32] {
        Net::velocity_values(self)
    }
    fn velocity_values_mut(&mut self) -> &mut [f32] {
        Net::velocity_values_mut(self)
    }
    fn repack(&mut self) {
        Net::repack(self)
    }
    fn predict(&mut self, data: &dyn Dataset) -> Vec<f32> {
        crate::infer::predict(self, data, false)
    }
    fn predict_mirrored(&mut self, data: &dyn Dataset) -> Result<Vec<f32>, String> {
        Ok(crate::infer::predict(self, data, true))
    }

    /// `on_step(step, loss)` is called by thread 0 after every batch (for a progress bar).
    fn run_epoch(&mut self, e: &Epoch) -> Result<EpochStats, String> {
        let Epoch {
            data,
            order,
            epoch,
            opts,
            on_step,
        } = *e;
        if (opts.momentum != 0.0 || opts.weight_decay != 0.0) && self.velocity.is_empty() {
            return Err(
                "momentum or weight decay needs a network built with a velocity buffer".into(),
            );
        }
        let b = self.hyper.batch;
        let steps = order.len() / b;
        let scale = 1.0 / b as f32;
        let threads = self.hyper.threads;
        let nparams = self.shapes.param_count();
        let failure: Mutex<Option<String>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let loss_ok = AtomicBool::new(true);
        let losses = Mutex::new(Vec::with_capacity(steps));
        let start = Instant::now();
        let momentum = !self.velocity.is_empty();
        // The epoch changes fc1's weights; the next predict packs them again.
        self.fc1_packed_current = false;
        let c: Ctx = self.ctx();
        // Plain SGD where the path has the fused kernel (asm): fc1's weights are updated inside
        // fc1 backward (phase 4, see `layers::fc::backward_fused_sgd`), and phase 7 skips them.
        let fused = c.fns.fc_backward_fused_sgd.is_some();
        let fc1_sgd =
            (!momentum && fused && c.shapes.flat.is_multiple_of(64)).then_some(opts.lr * scale);
        let fc1_w = c.param_views.fc1_w;
        let sgd_momentum = Momentum {
            lr: opts.lr,
            scale,
            momentum: opts.momentum,
            weight_decay: opts.weight_decay,
        };
        let update_ranges = match fc1_sgd {
            Some(_) => [0..fc1_w.off, fc1_w.off + fc1_w.len..nparams],
            None => [0..nparams, nparams..nparams],
        };
        Team::run(threads, |team, t| {
            for step in 0..steps {
                let idx = &order[step * b..(step + 1) * b];
                let aug = Augment::new(opts, epoch, step);
                let batch = Batch { data, idx, aug };
                let ok = &loss_ok;
                if let Some(loss) = step::forward_backward(&c, team, t, &batch, fc1_sgd, ok) {
                    if !loss.is_finite() {
                        *failure.lock().unwrap() = Some(format!(
                            "the loss became {loss} at epoch {epoch}, step {}",
                            step + 1
                        ));
                        stop.store(true, Ordering::SeqCst);
                    } else {
                        losses.lock().unwrap().push(loss);
                        if let Err(e) = crate::report::log_step(opts, epoch, step, loss) {
                            // Stop every thread at the next barrier, as for a bad loss.
                            *failure.lock().unwrap() = Some(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                        if let Some(f) = on_step {
                            f(step + 1, loss);
                        }
                    }
                }
                team.sync();
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                // 7. update (all parameters, or all but fc1's weights) and repack.
                let clock = Clock::start();
                for range in update_ranges.iter() {
                    let part = team.part(range.len(), t, 16);
                    let r = View {
                        off: range.start + part.start,
                        len: part.len(),
                    };
                    // SAFETY: disjoint parameter ranges per thread; nothing else reads them now.
                    unsafe {
                        let (p, g) = (c.params.get_mut(r), c.grads.get(r));
                        if momentum {
                            (c.fns.sgd_momentum)(p, g, c.velocity.get_mut(r), sgd_momentum);
                        } else {
                            (c.fns.sgd)(p, g, opts.lr * scale);
                        }
                    }
                }
                clock.lap(Section::Update);
                team.sync();
                let clock = Clock::start();
                for &(l, fwd) in REPACK_UNITS.iter().skip(t).step_by(team.size) {
                    // SAFETY: each packing is written by one thread; nobody reads packed weights now.
                    unsafe { c.repack_unit(l, fwd) };
                }
                clock.lap(Section::Repack);
                team.sync();
            }
        });
        if let Some(msg) = failure.into_inner().unwrap() {
            return Err(msg);
        }
        let seconds = start.elapsed().as_secs_f64();
        let losses = losses.into_inner().unwrap();
        let mean_loss = losses.iter().map(|&l| l as f64).sum::<f64>() / steps.max(1) as f64;
        Ok(EpochStats {
            steps,
            samples: steps * b,
            mean_loss,
            seconds,
            losses,
        })
    }
}

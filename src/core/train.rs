//! The training and evaluation loops (the original's `_start.asm`): epochs of batches, a line
//! per batch, then the test accuracy.
//!
//! One batch is seven phases run by every thread of a [`Team`], separated by barriers:
//! 1. conv blocks forward, samples handed to whichever thread is free ([`Team::deal`]; each
//!    sample has its own slot, so which thread runs it does not matter);
//! 2. fc1 forward, neurons split among threads;
//! 3. fc2, loss, fc2 backward (thread 0; tiny);
//! 4. fc1 backward: neurons split for the weight gradient, inputs split for the input gradient
//!    (with plain SGD on the asm path: inputs split for both, and fc1's weights take their SGD
//!    step right there, see `dense::backward_fused_sgd`);
//! 5. conv blocks backward per sample, each into the sample's own gradient block;
//! 6. per-sample conv gradients summed in sample order (threads split the block);
//! 7. the SGD step over all parameters (all but fc1's weights when phase 4 did theirs; threads
//!    split them), then weights are repacked.
//!
//! No phase's arithmetic depends on the number of threads, so any `--threads` gives the same
//! bits.

use crate::dataset::Dataset;
use crate::model::{Ctx, Net, REPACK_UNITS};
use crate::profile::{time, Section};
use crate::team::Team;
use crate::{backward, dropout, forward, update};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How an epoch runs and reports.
#[derive(Clone, Debug)]
pub struct EpochOptions {
    /// Print the original's `Epoch: E, Step: S, Loss: L` line every this many steps (0 = never).
    pub log_every: usize,
    /// Mirror each sample left-right when [`flip_bit`] says so for this epoch.
    pub flips: bool,
    /// This epoch's learning rate.
    pub lr: f32,
    /// SGD momentum and L2 weight decay (0 and 0: the original's plain SGD).
    pub momentum: f32,
    pub weight_decay: f32,
    /// Dropout probability on the inputs of fc1 and fc2 (0: none), and the seed of its masks.
    pub dropout: f32,
    pub seed: u64,
}

impl EpochOptions {
    /// The original's recipe at learning rate `lr`.
    pub fn plain(lr: f32) -> Self {
        Self {
            log_every: 0,
            flips: false,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            dropout: 0.0,
            seed: 0,
        }
    }
}

/// What an epoch measured.
#[derive(Clone, Debug, Default)]
pub struct EpochStats {
    pub steps: usize,
    pub samples: usize,
    pub mean_loss: f64,
    pub seconds: f64,
    /// Mean loss of every batch, in order (what the per-batch lines print).
    pub losses: Vec<f32>,
}

/// Prints the original's per-batch line when `opts.log_every` says so: `Epoch: E, Step: S,
/// Loss: L`, epochs and steps counted from 0 (`epoch` here counts from 1, `step` from 0), the
/// loss as [`original_decimal`] prints it.
/// A failed write to stdout is returned as an error (a closed pipe ends the run quietly).
pub fn log_step(opts: &EpochOptions, epoch: usize, step: usize, loss: f32) -> Result<(), String> {
    if opts.log_every > 0 && (step + 1).is_multiple_of(opts.log_every) {
        crate::outln!(
            "Epoch: {}, Step: {step}, Loss: {}",
            epoch - 1,
            original_decimal(loss as f64)
        )?;
    }
    Ok(())
}

/// Formats `x` as the original's `print.asm` does: a `-` for a negative value, the integer part,
/// a point, and the fraction times 1,000,000 *truncated* (not rounded) to an integer, printed as
/// its six lowest decimal digits.
///
/// ```
/// use catdog_core::train::original_decimal;
/// assert_eq!(original_decimal(0.6862299), "0.686229");
/// assert_eq!(original_decimal(0.421875), "0.421875");
/// assert_eq!(original_decimal(2.5), "2.500000");
/// assert_eq!(original_decimal(-0.0000019), "-0.000001");
/// ```
pub fn original_decimal(x: f64) -> String {
    let (sign, x) = if x >= 0.0 { ("", x) } else { ("-", 0.0 - x) };
    let int = x as i64;
    let frac = ((x - int as f64) * 1_000_000.0) as i64;
    format!("{sign}{int}.{:06}", frac.rem_euclid(1_000_000))
}

/// Test accuracy as the original computes it: the count of samples with `(p > 0.5) == label`,
/// divided by the sample count, in f32.
pub fn original_accuracy(probs: &[f32], labels: &[u8]) -> f32 {
    let correct = probs
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| (p > 0.5) as u8 == l)
        .count();
    correct as f32 / probs.len().max(1) as f32
}

/// Phases 1-7 up to the summed gradients for the batch `idx`, run by thread `t` of `team`.
/// Thread 0 returns the batch's mean loss (other threads `None`). Gradients end up in the
/// gradient arena, in the parameter file's layout, except with `fc1_sgd = Some(lr / batch)`:
/// then fc1's weights take their plain SGD step in phase 4 instead (unless the loss is not
/// finite; thread 0 tells the others through `loss_ok`) and their gradient is not stored.
#[allow(clippy::too_many_arguments)]
fn forward_backward(
    c: &Ctx,
    team: &Team,
    t: usize,
    data: &dyn Dataset,
    idx: &[u32],
    aug: &Augment,
    fc1_sgd: Option<f32>,
    loss_ok: &AtomicBool,
) -> Option<f32> {
    let b = idx.len();
    // 1. conv blocks forward (and dropout on the sample's fc1 input).
    team.deal(t, b, |slot| {
        let i = idx[slot] as usize;
        let flip = aug
            .flips
            .is_some_and(|epoch| flip_bit(aug.key[0], epoch, i));
        forward::conv_blocks(c, slot, t, data.image(i), flip);
        if let Some(key) = aug.dropout_key(slot, 0) {
            // SAFETY: the slot's row of fc_in and of the mask belong to this thread now.
            unsafe {
                let (row, bits) = (
                    c.batch.fc_in.slot(slot, c.shapes.flat),
                    c.batch.drop_in.slot(slot, c.shapes.flat / 8),
                );
                dropout::draw_mask(c.masks.get_mut(bits), aug.keep, key);
                dropout::apply(c.path, c.acts.get_mut(row), c.masks.get(bits), aug.keep);
            }
        }
    });
    team.sync();
    // 2. fc1 forward.
    time(Section::Fc1Forward, || {
        forward::fc1(c, b, team.part(c.shapes.fc1, t, 4))
    });
    team.sync();
    // 3. head (thread 0).
    let mut loss = None;
    if t == 0 {
        // SAFETY: only thread 0 runs in this phase.
        let labels = unsafe { &mut c.masks.get_mut(c.batch.labels)[..b] };
        for (l, &i) in labels.iter_mut().zip(idx) {
            *l = data.labels()[i as usize];
        }
        if let Some(key) = aug.dropout_key(0, 1) {
            // SAFETY: only thread 0 runs in this phase.
            unsafe {
                let n = b * c.shapes.fc1;
                let bits = &mut c.masks.get_mut(c.batch.drop_h1)[..n / 8];
                dropout::draw_mask(bits, aug.keep, key);
                dropout::apply(c.path, &mut c.acts.get_mut(c.batch.h1)[..n], bits, aug.keep);
            }
        }
        let mut l = time(Section::Head, || {
            forward::head(c, b);
            backward::head(c, b, labels, aug.dropout.then_some(aug.keep)) / b as f32
        });
        // The clamped log in the loss can hide diverged parameters; the logits cannot.
        // SAFETY: only thread 0 runs in this phase.
        if unsafe { c.acts.get(c.batch.logits) }[..b]
            .iter()
            .any(|z| !z.is_finite())
        {
            l = f32::NAN;
        }
        loss_ok.store(l.is_finite(), Ordering::SeqCst);
        loss = Some(l);
    }
    team.sync();
    // A non-finite loss stops training before any parameter changes: no fused step then.
    let fc1_sgd = fc1_sgd.filter(|_| loss_ok.load(Ordering::SeqCst));
    // 4. fc1 backward (with `fc1_sgd = Some(lr / batch)`: fused with fc1's weight step).
    time(Section::Fc1Backward, || match fc1_sgd {
        Some(scale) => backward::fc1_fused_sgd(
            c,
            b,
            team.part(c.shapes.fc1, t, 4),
            team.part(c.shapes.flat, t, 64),
            scale,
        ),
        None => backward::fc1(
            c,
            b,
            team.part(c.shapes.fc1, t, 4),
            team.part(c.shapes.flat, t, 16),
        ),
    });
    team.sync();
    // 5. conv blocks backward (after undoing dropout on the fc1 input gradient).
    team.deal(t, b, |slot| {
        if aug.dropout {
            // SAFETY: the slot's row of dflat belongs to this thread now.
            unsafe {
                let (row, bits) = (
                    c.batch.dflat.slot(slot, c.shapes.flat),
                    c.batch.drop_in.slot(slot, c.shapes.flat / 8),
                );
                dropout::apply(c.path, c.acts.get_mut(row), c.masks.get(bits), aug.keep);
            }
        }
        backward::conv_blocks(c, slot, t);
    });
    team.sync();
    // 6. sum the per-sample conv gradients, and move them into the gradient arena.
    time(Section::Reduce, || {
        backward::reduce_conv_grads(c, b, team.part(c.samples[0].grads.len, t, 16))
    });
    team.sync();
    if t == 0 {
        time(Section::Reduce, || backward::store_conv_grads(c));
    }
    team.sync();
    loss
}

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
    Team::run(threads, |team, t| {
        if let Some(l) = forward_backward(&c, team, t, data, idx, &aug, None, &ok) {
            *out.lock().unwrap() = l;
        }
    });
    out.into_inner().unwrap()
}

/// `on_step(step, loss)` is called by thread 0 after every batch (for a progress bar).
pub fn run_epoch(
    net: &mut Net,
    data: &dyn Dataset,
    order: &[u32],
    epoch: usize,
    opts: &EpochOptions,
    on_step: Option<&(dyn Fn(usize, f32) + Sync)>,
) -> Result<EpochStats, String> {
    if (opts.momentum != 0.0 || opts.weight_decay != 0.0) && net.velocity.is_empty() {
        return Err("momentum or weight decay needs a network built with a velocity buffer".into());
    }
    let b = net.hyper.batch;
    let steps = order.len() / b;
    let scale = 1.0 / b as f32;
    let threads = net.hyper.threads;
    let nparams = net.shapes.param_count();
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let loss_ok = AtomicBool::new(true);
    let losses = Mutex::new(Vec::with_capacity(steps));
    let start = Instant::now();
    let momentum = !net.velocity.is_empty();
    let c: Ctx = net.ctx();
    // Plain SGD on the asm path: fc1's weights are updated inside fc1 backward (phase 4, see
    // `dense::backward_fused_sgd`), and phase 7 skips them.
    let fc1_sgd =
        (!momentum && c.path == crate::cpu::Path::Asm && c.shapes.flat.is_multiple_of(64))
            .then_some(opts.lr * scale);
    let fc1_w = c.param_views.fc1_w;
    let update_ranges = match fc1_sgd {
        Some(_) => [0..fc1_w.off, fc1_w.off + fc1_w.len..nparams],
        None => [0..nparams, nparams..nparams],
    };
    Team::run(threads, |team, t| {
        for step in 0..steps {
            let idx = &order[step * b..(step + 1) * b];
            let aug = Augment::new(opts, epoch, step);
            if let Some(loss) = forward_backward(&c, team, t, data, idx, &aug, fc1_sgd, &loss_ok) {
                if !loss.is_finite() {
                    *failure.lock().unwrap() = Some(format!(
                        "the loss became {loss} at epoch {epoch}, step {}",
                        step + 1
                    ));
                    stop.store(true, Ordering::SeqCst);
                } else {
                    losses.lock().unwrap().push(loss);
                    if let Err(e) = log_step(opts, epoch, step, loss) {
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
            for range in update_ranges.iter() {
                let part = team.part(range.len(), t, 16);
                let r = range.start + part.start..range.start + part.end;
                // SAFETY: disjoint parameter ranges per thread; nothing else reads them now.
                time(Section::Update, || unsafe {
                    let p = c.params.get_mut(crate::arena::View {
                        off: r.start,
                        len: r.len(),
                    });
                    let g = c.grads.get(crate::arena::View {
                        off: r.start,
                        len: r.len(),
                    });
                    if momentum {
                        let v = c.velocity.get_mut(crate::arena::View {
                            off: r.start,
                            len: r.len(),
                        });
                        update::sgd_momentum(
                            c.path,
                            p,
                            g,
                            v,
                            opts.lr,
                            scale,
                            opts.momentum,
                            opts.weight_decay,
                        );
                    } else {
                        update::sgd(c.path, p, g, opts.lr * scale);
                    }
                });
            }
            team.sync();
            for &(l, fwd) in REPACK_UNITS.iter().skip(t).step_by(team.size) {
                // SAFETY: each packing is written by one thread; nobody reads packed weights now.
                time(Section::Repack, || unsafe { c.repack_unit(l, fwd) });
            }
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

/// Per-batch augmentation and regularisation switches.
struct Augment {
    /// `Some(epoch)` when flips are on.
    flips: Option<usize>,
    dropout: bool,
    keep: f32,
    /// (seed, epoch, step): with the slot and layer, the key of a dropout mask.
    key: [u64; 3],
}

impl Augment {
    fn none() -> Self {
        Self {
            flips: None,
            dropout: false,
            keep: 1.0,
            key: [0; 3],
        }
    }
    fn new(opts: &EpochOptions, epoch: usize, step: usize) -> Self {
        Self {
            flips: opts.flips.then_some(epoch),
            dropout: opts.dropout > 0.0,
            keep: 1.0 - opts.dropout,
            key: [opts.seed, epoch as u64, step as u64],
        }
    }
    fn dropout_key(&self, slot: usize, layer: u64) -> Option<[u64; 5]> {
        self.dropout
            .then_some([self.key[0], self.key[1], self.key[2], slot as u64, layer])
    }
}

/// Whether sample `i` is mirrored in `epoch` of a run seeded `seed` (a hash, so it needs no
/// state to resume).
pub fn flip_bit(seed: u64, epoch: usize, i: usize) -> bool {
    let mut r = crate::rng::Rng::new(
        seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ ((epoch as u64) << 32) ^ i as u64 ^ 0xF11F,
    );
    r.next_u64() & 1 == 1
}

/// P(dog) for every sample of `data`, in batches of the training batch size.
pub fn predict(net: &mut Net, data: &dyn Dataset) -> Vec<f32> {
    let n = data.len();
    let b = net.hyper.batch;
    let mut probs = vec![0.0f32; n];
    let out = Mutex::new(&mut probs);
    let threads = net.hyper.threads;
    let c: Ctx = net.ctx();
    Team::run(threads, |team, t| {
        for start in (0..n).step_by(b) {
            let rows = b.min(n - start);
            team.deal(t, rows, |slot| {
                forward::conv_blocks(&c, slot, t, data.image(start + slot), false);
            });
            team.sync();
            forward::fc1(&c, rows, team.part(c.shapes.fc1, t, 4));
            team.sync();
            if t == 0 {
                forward::head(&c, rows);
                // SAFETY: only thread 0 runs in this phase.
                let p = unsafe { c.acts.get(c.batch.probs) };
                out.lock().unwrap()[start..start + rows].copy_from_slice(&p[..rows]);
            }
            team.sync();
        }
    });
    probs
}

/// Fraction of labeled samples whose prediction `p > 0.5` matches the label.
pub fn accuracy(probs: &[f32], labels: &[u8]) -> f64 {
    crate::report::Confusion::new(probs, labels).accuracy()
}

/// The visiting order of an epoch: file order, or a shuffle seeded by (seed, epoch) so that a
/// resumed run visits exactly what an uninterrupted one would.
pub fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    if shuffle {
        crate::rng::Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ epoch as u64)
            .shuffle(&mut order);
    }
    order
}

/// The learning rate of `epoch` (1-based) of `epochs`.
pub fn epoch_lr(lr: f32, schedule: crate::config::Schedule, epoch: usize, epochs: usize) -> f32 {
    match schedule {
        crate::config::Schedule::Constant => lr,
        crate::config::Schedule::Cosine => {
            let t = if epochs > 1 {
                (epoch - 1) as f64 / (epochs - 1) as f64
            } else {
                0.0
            };
            let min = lr as f64 * 0.01;
            (min + (lr as f64 - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
        }
    }
}

/// Mean binary cross-entropy of predictions against labels (labeled samples only), as the
/// training loss is defined.
pub fn mean_bce(probs: &[f32], labels: &[u8]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (&p, &l) in probs.iter().zip(labels) {
        if l <= 1 {
            let (p, y) = (p as f64, l as f64);
            sum -= y * (p + 1e-7).ln() + (1.0 - y) * (1.0 - p + 1e-7).ln();
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

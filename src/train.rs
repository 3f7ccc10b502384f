//! The training and evaluation loops (the original's `_start.asm`): epochs of batches, a line
//! per batch, then the test accuracy.
//!
//! One batch is seven phases run by every thread of a [`Team`], separated by barriers:
//! 1. conv blocks forward, samples dealt round-robin to threads (each sample has its own slot);
//! 2. fc1 forward, neurons split among threads;
//! 3. fc2, loss, fc2 backward (thread 0; tiny);
//! 4. fc1 backward: neurons split for the weight gradient, inputs split for the input gradient;
//! 5. conv blocks backward per sample, each into the sample's own gradient block;
//! 6. per-sample conv gradients summed in sample order (threads split the block);
//! 7. the SGD step over all parameters (threads split them), then weights are repacked.
//!
//! No phase's arithmetic depends on the number of threads, so any `--threads` gives the same
//! bits.

use crate::dataset::Dataset;
use crate::model::{Ctx, Net};
use crate::team::Team;
use crate::{backward, forward, update};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How an epoch runs and reports.
#[derive(Clone, Debug)]
pub struct EpochOptions {
    /// Print the original's `Epoch: E, Step: S, Loss: L` line every this many steps (0 = never).
    pub log_every: usize,
    /// Flip each sample left-right when its bit in this per-epoch mask stream says so.
    pub flips: bool,
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

/// Phases 1-7 up to the summed gradients for the batch `idx`, run by thread `t` of `team`.
/// Thread 0 returns the batch's mean loss (other threads `None`). Gradients end up in the
/// gradient arena, in the parameter file's layout.
fn forward_backward(
    c: &Ctx,
    team: &Team,
    t: usize,
    data: &dyn Dataset,
    idx: &[u32],
    flips: Option<usize>,
) -> Option<f32> {
    let b = idx.len();
    // 1. conv blocks forward.
    for slot in (t..b).step_by(team.size) {
        let i = idx[slot] as usize;
        let flip = flips.is_some_and(|epoch| flip_bit(epoch, i));
        forward::conv_blocks(c, slot, t, data.image(i), flip);
    }
    team.sync();
    // 2. fc1 forward.
    forward::fc1(c, b, team.part(c.shapes.fc1, t, 4));
    team.sync();
    // 3. head (thread 0).
    let mut loss = None;
    if t == 0 {
        // SAFETY: only thread 0 runs in this phase.
        let labels = unsafe { &mut c.masks.get_mut(c.batch.labels)[..b] };
        for (l, &i) in labels.iter_mut().zip(idx) {
            *l = data.labels()[i as usize];
        }
        forward::head(c, b);
        loss = Some(backward::head(c, b, labels) / b as f32);
    }
    team.sync();
    // 4. fc1 backward.
    backward::fc1(
        c,
        b,
        team.part(c.shapes.fc1, t, 4),
        team.part(c.shapes.flat, t, 16),
    );
    team.sync();
    // 5. conv blocks backward.
    for slot in (t..b).step_by(team.size) {
        backward::conv_blocks(c, slot, t);
    }
    team.sync();
    // 6. sum the per-sample conv gradients, and move them into the gradient arena.
    backward::reduce_conv_grads(c, b, team.part(c.samples[0].grads.len, t, 16));
    team.sync();
    if t == 0 {
        backward::store_conv_grads(c);
    }
    team.sync();
    loss
}

/// The mean loss of the batch `idx` and its summed gradients (left in `net.grads`), without
/// updating anything. For gradient checks.
pub fn loss_and_gradients(net: &mut Net, data: &dyn Dataset, idx: &[u32]) -> f32 {
    assert!(idx.len() <= net.hyper.batch && !idx.is_empty());
    let out = Mutex::new(0.0f32);
    let threads = net.hyper.threads;
    let c: Ctx = net.ctx();
    Team::run(threads, |team, t| {
        if let Some(l) = forward_backward(&c, team, t, data, idx, None) {
            *out.lock().unwrap() = l;
        }
    });
    out.into_inner().unwrap()
}

/// Runs one epoch over `order` (indices into `data`, whole batches only; a tail shorter than a
/// batch is skipped, as the original rounded down). `epoch` is 1-based, for the log lines.
pub fn run_epoch(
    net: &mut Net,
    data: &dyn Dataset,
    order: &[u32],
    epoch: usize,
    opts: &EpochOptions,
) -> Result<EpochStats, String> {
    let b = net.hyper.batch;
    let steps = order.len() / b;
    let scale = net.hyper.lr / b as f32;
    let threads = net.hyper.threads;
    let nparams = net.shapes.param_count();
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let losses = Mutex::new(Vec::with_capacity(steps));
    let start = Instant::now();
    let flips = opts.flips.then_some(epoch);
    let c: Ctx = net.ctx();
    Team::run(threads, |team, t| {
        for step in 0..steps {
            let idx = &order[step * b..(step + 1) * b];
            if let Some(loss) = forward_backward(&c, team, t, data, idx, flips) {
                if !loss.is_finite() {
                    *failure.lock().unwrap() = Some(format!(
                        "the loss became {loss} at epoch {epoch}, step {}",
                        step + 1
                    ));
                    stop.store(true, Ordering::SeqCst);
                } else {
                    losses.lock().unwrap().push(loss);
                    if opts.log_every > 0 && (step + 1) % opts.log_every == 0 {
                        println!("Epoch: {epoch}, Step: {}, Loss: {loss:.6}", step + 1);
                    }
                }
            }
            team.sync();
            if stop.load(Ordering::SeqCst) {
                return;
            }
            // 7. update and repack.
            let r = team.part(nparams, t, 16);
            // SAFETY: disjoint parameter ranges per thread; nothing else reads them now.
            unsafe {
                let p = c.params.get_mut(crate::arena::View {
                    off: r.start,
                    len: r.len(),
                });
                let g = c.grads.get(crate::arena::View {
                    off: r.start,
                    len: r.len(),
                });
                update::sgd(c.path, p, g, scale);
            }
            team.sync();
            for l in (t..3).step_by(team.size) {
                // SAFETY: layer l is repacked by one thread; nobody reads packed weights now.
                unsafe { c.repack_layer(l) };
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

/// Whether sample `i` is mirrored in `epoch` (a hash, so it needs no state to resume).
pub fn flip_bit(epoch: usize, i: usize) -> bool {
    let mut r = crate::rng::Rng::new(((epoch as u64) << 32) ^ i as u64 ^ 0xF11F);
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
            for slot in (t..rows).step_by(team.size) {
                forward::conv_blocks(&c, slot, t, data.image(start + slot), false);
            }
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
    let mut right = 0usize;
    let mut total = 0usize;
    for (&p, &l) in probs.iter().zip(labels) {
        if l > 1 {
            continue;
        }
        total += 1;
        right += ((p > 0.5) == (l == 1)) as usize;
    }
    if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    }
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

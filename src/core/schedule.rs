//! What each epoch visits and at which rate: the order of the samples (file order or a seeded
//! shuffle) and the learning rate (warm-up, then constant or cosine). Both are functions of the
//! epoch alone, so a resumed run visits and steps exactly as an uninterrupted one would.

use crate::config::Schedule;

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

/// The learning rate of `epoch` (1-based) of `epochs`: first `warmup` epochs of linear warm-up
/// (at most `epochs - 1`; epoch `e` of `n` runs at `lr * e / (n + 1)`, so the ramp's next step
/// is `lr`), then `schedule` over the remaining epochs as if they were the whole run. A function
/// of the epoch alone, so a resumed run gets the rates an uninterrupted one would.
pub fn epoch_lr(lr: f32, schedule: Schedule, warmup: usize, epoch: usize, epochs: usize) -> f32 {
    let n = warmup.min(epochs.saturating_sub(1));
    if epoch <= n {
        return (lr as f64 * epoch as f64 / (n + 1) as f64) as f32;
    }
    let (epoch, epochs) = (epoch - n, epochs - n);
    match schedule {
        Schedule::Constant => lr,
        Schedule::Cosine => {
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

//! Inference over a dataset: P(dog) of every sample, as it is or mirrored left-right, and
//! test-time augmentation (`eval --tta`, `predict --tta`): the mean of the two.

use crate::dataset::Dataset;
use crate::net::{Ctx, Net};
use crate::network::Network;
use crate::step;
use crate::team::Team;
use std::sync::Mutex;

/// P(dog) for every sample of `data` (each image mirrored left-right when `mirror`), in
/// batches of the network's batch size. The mirror is made by the input layer's load, as
/// training's flips are: the data is never copied.
pub fn predict(net: &mut Net, data: &dyn Dataset, mirror: bool) -> Vec<f32> {
    let n = data.len();
    let b = net.hyper.batch;
    let mut probs = vec![0.0f32; n];
    let out = Mutex::new(&mut probs);
    let threads = net.hyper.threads;
    net.pack_fc1_for_inference();
    let c: Ctx = net.ctx();
    Team::run(threads, |team, t| {
        for start in (0..n).step_by(b) {
            let rows = b.min(n - start);
            step::forward_only(&c, team, t, data, start, rows, mirror);
            if t == 0 {
                // SAFETY: only thread 0 writes probs (in the head phase, which it runs alone).
                let p = unsafe { c.acts.get(c.batch.probs) };
                out.lock().unwrap()[start..start + rows].copy_from_slice(&p[..rows]);
            }
        }
    });
    probs
}

/// Test-time augmentation: for every sample, the mean of P(dog) of the image and of its
/// left-right mirror, `(p + p_mirrored) / 2` in f32. `Err` where the kernels have no mirrored
/// pass.
pub fn predict_tta(net: &mut dyn Network, data: &dyn Dataset) -> Result<Vec<f32>, String> {
    let mirrored = net.predict_mirrored(data)?;
    let plain = net.predict(data);
    Ok(plain
        .iter()
        .zip(&mirrored)
        .map(|(&a, &b)| (a + b) * 0.5)
        .collect())
}

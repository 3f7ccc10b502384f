//! Gradient reduction and the optimizer step (the original's `update_weights.asm` and
//! `accumulate_db`). Parameters and gradients are each one flat buffer in the order of
//! `parameters.raw`, so one call updates every parameter.

use crate::cpu::Path;

/// `dst[i] = src[0*stride + i] + src[1*stride + i] + ... + src[(slots-1)*stride + i]`, summed in
/// slot order (so the result does not depend on how many threads produced the slots).
pub fn sum_slots(path: Path, src: &[f32], slots: usize, stride: usize, dst: &mut [f32]) {
    let _ = (path, src, slots, stride, dst);
    todo!()
}

/// Plain SGD as the original: `p -= scale * g` with `scale = lr / batch`.
pub fn sgd(path: Path, params: &mut [f32], grads: &[f32], scale: f32) {
    let _ = (path, params, grads, scale);
    todo!()
}

/// SGD with momentum and decoupled-from-nothing (classic L2) weight decay:
/// `v = momentum * v + (scale * g + weight_decay * p)`, `p -= lr * v`, where `scale = 1 / batch`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_momentum(
    path: Path,
    params: &mut [f32],
    grads: &[f32],
    velocity: &mut [f32],
    lr: f32,
    scale: f32,
    momentum: f32,
    weight_decay: f32,
) {
    let _ = (
        path,
        params,
        grads,
        velocity,
        lr,
        scale,
        momentum,
        weight_decay,
    );
    todo!()
}

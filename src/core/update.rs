//! Gradient reduction and the optimizer step (the original's `update_weights.asm` and
//! `accumulate_db`). Parameters and gradients are each one flat buffer in the order of
//! `parameters.raw`, so one call updates every parameter.
//!
//! Shapes: `params`, `grads`, `velocity` are `[len]`, any `len`; `sum_slots` reads `slots` runs
//! of `dst.len()` floats, `stride` apart. The scalar twins are in `crate::reference::update`.

use crate::cpu::Avx512;

use crate::kernels::update as kernel;

/// `dst[i] = src[0*stride + i] + src[1*stride + i] + ... + src[(slots-1)*stride + i]`, summed in
/// slot order (so the result does not depend on how many threads produced the slots).
pub fn sum_slots_asm(_cpu: Avx512, src: &[f32], slots: usize, stride: usize, dst: &mut [f32]) {
    check_slots(src, slots, stride, dst);
    // SAFETY: every slot's run lies inside src (checked above), dst holds dst.len() floats.
    unsafe { kernel::sum_slots(src.as_ptr(), slots, stride, dst.as_mut_ptr(), dst.len()) }
}

pub(crate) fn check_slots(src: &[f32], slots: usize, stride: usize, dst: &[f32]) {
    assert!(slots >= 1, "sum_slots needs at least one slot");
    assert!(
        dst.is_empty() || src.len() >= (slots - 1) * stride + dst.len(),
        "sum_slots: source too short"
    );
}

/// Plain SGD as the original: `p -= scale * g` with `scale = lr / batch`.
pub fn sgd_asm(_cpu: Avx512, params: &mut [f32], grads: &[f32], scale: f32) {
    assert_eq!(params.len(), grads.len());
    // SAFETY: both slices hold params.len() floats (checked above).
    unsafe { kernel::sgd(params.as_mut_ptr(), grads.as_ptr(), params.len(), scale) }
}

/// The constants of [`sgd_momentum_asm`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Momentum {
    pub lr: f32,
    /// `1 / batch`.
    pub scale: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// SGD with momentum and classic L2 weight decay:
/// `v = momentum * v + (scale * g + weight_decay * p)`, `p -= lr * v`, where `scale = 1 / batch`.
pub fn sgd_momentum_asm(
    _cpu: Avx512,
    params: &mut [f32],
    grads: &[f32],
    velocity: &mut [f32],
    m: Momentum,
) {
    assert_eq!(params.len(), grads.len());
    assert_eq!(params.len(), velocity.len());
    // SAFETY: the three slices hold params.len() floats (checked above).
    unsafe {
        kernel::sgd_momentum(
            params.as_mut_ptr(),
            grads.as_ptr(),
            velocity.as_mut_ptr(),
            params.len(),
            [m.scale, m.weight_decay, m.momentum, m.lr],
        )
    }
}

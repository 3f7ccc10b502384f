//! Gradient reduction and the optimizer step (the original's `update_weights.asm` and
//! `accumulate_db`). Parameters and gradients are each one flat buffer in the order of
//! `parameters.raw`, so one call updates every parameter.

use crate::cpu::Path;
use crate::kernels::update as kernel;
use crate::reference::update as reference;

/// `dst[i] = src[0*stride + i] + src[1*stride + i] + ... + src[(slots-1)*stride + i]`, summed in
/// slot order (so the result does not depend on how many threads produced the slots).
pub fn sum_slots(path: Path, src: &[f32], slots: usize, stride: usize, dst: &mut [f32]) {
    assert!(slots >= 1, "sum_slots needs at least one slot");
    assert!(
        dst.is_empty() || src.len() >= (slots - 1) * stride + dst.len(),
        "sum_slots: source too short"
    );
    match path {
        Path::Reference => reference::sum_slots(src, slots, stride, dst),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: bounds checked above; AVX-512 checked by the caller of the asm path.
            unsafe { kernel::sum_slots(src.as_ptr(), slots, stride, dst.as_mut_ptr(), dst.len()) }
        }
    }
}

/// Plain SGD as the original: `p -= scale * g` with `scale = lr / batch`.
pub fn sgd(path: Path, params: &mut [f32], grads: &[f32], scale: f32) {
    assert_eq!(params.len(), grads.len());
    match path {
        Path::Reference => reference::sgd(params, grads, scale),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: equal lengths checked above.
            unsafe { kernel::sgd(params.as_mut_ptr(), grads.as_ptr(), params.len(), scale) }
        }
    }
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
    assert_eq!(params.len(), grads.len());
    assert_eq!(params.len(), velocity.len());
    match path {
        Path::Reference => {
            reference::sgd_momentum(params, grads, velocity, lr, scale, momentum, weight_decay)
        }
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: equal lengths checked above.
            unsafe {
                kernel::sgd_momentum(
                    params.as_mut_ptr(),
                    grads.as_ptr(),
                    velocity.as_mut_ptr(),
                    params.len(),
                    [scale, weight_decay, momentum, lr],
                )
            }
        }
    }
}

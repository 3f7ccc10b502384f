//! The output layer: sigmoid and binary cross-entropy (the original's `loss.asm` and its
//! sigmoid), forward and backward in one pass.
//!
//! Shapes: `logits [rows]`, `labels [rows]` (0 = cat, 1 = dog) -> `probs [rows]`,
//! `dlogits [rows]`, for any `rows >= 1`. Per sample: `p = sigmoid(z)` (stable for either sign of
//! z), `loss = -(y ln(p + 1e-7) + (1 - y) ln(1 - p + 1e-7))`, `dz = p - y`.
//! The scalar twins are in `crate::reference::loss`.

use crate::cpu::Avx512;

/// Training: fills `probs` and `dlogits` and returns the *sum* of the losses.
pub fn sigmoid_bce_asm(
    _cpu: Avx512,
    logits: &[f32],
    labels: &[u8],
    probs: &mut [f32],
    dlogits: &mut [f32],
) -> f32 {
    let n = logits.len();
    assert!(labels.len() == n && probs.len() == n && dlogits.len() == n);
    // SAFETY: the four slices hold n elements each (checked above).
    unsafe {
        crate::kernels::loss::sigmoid_bce(
            logits.as_ptr(),
            labels.as_ptr(),
            probs.as_mut_ptr(),
            dlogits.as_mut_ptr(),
            n,
        )
    }
}

/// Inference: `probs[i] = sigmoid(logits[i])` only.
pub fn sigmoid_asm(_cpu: Avx512, logits: &[f32], probs: &mut [f32]) {
    assert_eq!(logits.len(), probs.len());
    // SAFETY: both slices hold logits.len() elements (checked above).
    unsafe { crate::kernels::loss::sigmoid(logits.as_ptr(), probs.as_mut_ptr(), logits.len()) }
}

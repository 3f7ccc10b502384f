//! Sigmoid output and binary cross-entropy (the original's `loss.asm` and its sigmoid).
//!
//! For each sample: `p = sigmoid(z)` (numerically stable for either sign of z),
//! `loss = -(y ln(p + 1e-7) + (1 - y) ln(1 - p + 1e-7))`, `dz = p - y`.

use crate::cpu::Path;

/// Fills `probs` and `dlogits` for every sample and returns the *sum* of the losses
/// (labels: 0 = cat, 1 = dog). All slices have the same length (>= 1, any size).
pub fn sigmoid_bce(
    path: Path,
    logits: &[f32],
    labels: &[u8],
    probs: &mut [f32],
    dlogits: &mut [f32],
) -> f32 {
    let n = logits.len();
    assert!(labels.len() == n && probs.len() == n && dlogits.len() == n);
    match path {
        Path::Reference => crate::reference::loss::sigmoid_bce(logits, labels, probs, dlogits),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: equal lengths checked above.
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
    }
}

/// `probs[i] = sigmoid(logits[i])` only (inference).
pub fn sigmoid(path: Path, logits: &[f32], probs: &mut [f32]) {
    assert_eq!(logits.len(), probs.len());
    match path {
        Path::Reference => crate::reference::loss::sigmoid(logits, probs),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: equal lengths checked above.
            unsafe {
                crate::kernels::loss::sigmoid(logits.as_ptr(), probs.as_mut_ptr(), logits.len())
            }
        }
    }
}

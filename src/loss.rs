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
    let _ = (path, logits, labels, probs, dlogits);
    todo!()
}

/// `probs[i] = sigmoid(logits[i])` only (inference).
pub fn sigmoid(path: Path, logits: &[f32], probs: &mut [f32]) {
    let _ = (path, logits, probs);
    todo!()
}

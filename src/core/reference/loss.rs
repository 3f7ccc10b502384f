//! Scalar reference of the sigmoid output and the cross-entropy (the original's `loss.asm`;
//! it used libc `expf`/`logf`, here Rust's f32 `exp`/`ln`).

/// Numerically stable sigmoid, as the original: branch on the sign so that `exp` only ever sees
/// a non-positive argument.
pub fn sigmoid1(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let t = z.exp();
        t / (1.0 + t)
    }
}

/// `-(y ln(p + 1e-7) + (1 - y) ln(1 - p + 1e-7))`.
pub fn bce1(p: f32, y: f32) -> f32 {
    -(y * (p + 1e-7).ln() + (1.0 - y) * (1.0 - p + 1e-7).ln())
}

/// Fills probs and dlogits, returns the sum of the losses (in sample order).
pub fn sigmoid_bce(logits: &[f32], labels: &[u8], probs: &mut [f32], dlogits: &mut [f32]) -> f32 {
    let mut sum = 0.0f32;
    for i in 0..logits.len() {
        let p = sigmoid1(logits[i]);
        let y = labels[i] as f32;
        probs[i] = p;
        dlogits[i] = p - y;
        sum += bce1(p, y);
    }
    sum
}

/// `probs[i] = sigmoid(logits[i])`.
pub fn sigmoid(logits: &[f32], probs: &mut [f32]) {
    for (p, &z) in probs.iter_mut().zip(logits) {
        *p = sigmoid1(z);
    }
}

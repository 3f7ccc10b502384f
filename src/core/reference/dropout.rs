//! Scalar dropout: the same contract as [`crate::kernels::dropout::apply_mask`].

pub fn apply_mask(x: &mut [f32], bits: &[u8], scale: f32) {
    for (i, v) in x.iter_mut().enumerate() {
        let on = (bits[i / 8] >> (i % 8)) & 1 == 1;
        *v = if on { *v * scale } else { 0.0 };
    }
}

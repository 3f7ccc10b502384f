//! Scalar dropout: the same contract as [`crate::layers::dropout::apply_asm`].

pub fn apply(x: &mut [f32], bits: &[u8], keep: f32) {
    crate::layers::dropout::check(x, bits);
    let scale = 1.0 / keep;
    for (i, v) in x.iter_mut().enumerate() {
        let on = (bits[i / 8] >> (i % 8)) & 1 == 1;
        *v = if on { *v * scale } else { 0.0 };
    }
}

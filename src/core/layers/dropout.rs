//! Inverted dropout on the inputs of fc1 and fc2 (not in the original; part of the improved
//! recipe). Each element is kept with probability `keep` and scaled by `1/keep`, so inference
//! needs no change. Masks are bits (one per element), drawn from a stream keyed by
//! (seed, epoch, step, sample, layer): any thread count, and a resumed run, draws the same masks.

use crate::cpu::Avx512;

use crate::rng::Rng;

/// Bytes of a bit mask for `len` elements (`len` a multiple of 16).
pub fn mask_bytes(len: usize) -> usize {
    len / 8
}

/// Fills `bits` for `bits.len() * 8` elements: bit set = keep, with probability `keep` rounded
/// to 1/65536.
pub fn draw_mask(bits: &mut [u8], keep: f32, key: [u64; 5]) {
    let mut rng = Rng::new(key.iter().fold(0x5EED_D409u64, |h, &k| {
        (h ^ k).wrapping_mul(0x100_0000_01B3).rotate_left(29)
    }));
    let threshold = (keep as f64 * 65536.0).round() as u64;
    for byte in bits.iter_mut() {
        let mut b = 0u8;
        let r = [rng.next_u64(), rng.next_u64()];
        for j in 0..8 {
            let draw = (r[j / 4] >> (16 * (j % 4))) & 0xFFFF;
            b |= ((draw < threshold) as u8) << j;
        }
        *byte = b;
    }
}

/// `x[i] *= bit(i) / keep` (zero where the bit is clear), forward and backward alike (the
/// backward pass applies the same mask to the gradient). `x.len()` must be a multiple of 16.
/// The scalar twin is `crate::reference::dropout::apply`.
pub fn apply_asm(_cpu: Avx512, x: &mut [f32], bits: &[u8], keep: f32) {
    check(x, bits);
    // SAFETY: x holds len/16 whole vectors and bits one bit per element (checked above).
    unsafe {
        crate::kernels::dropout::apply_mask(x.as_mut_ptr(), bits.as_ptr(), x.len() / 16, 1.0 / keep)
    }
}

pub(crate) fn check(x: &[f32], bits: &[u8]) {
    assert!(
        x.len().is_multiple_of(16) && bits.len() * 8 >= x.len(),
        "dropout: {} values, {} mask bytes",
        x.len(),
        bits.len()
    );
}

//! The input layer: u8 image bytes to the f32 network input (the original's `loader.asm`
//! `load_sample`). Forward only: nothing upstream needs a gradient.
//!
//! Shapes: `src [h][w][3]` u8 -> the interior of `dst_pad [h+2][w+2][3]` f32 (border untouched).

use crate::cpu::Avx512;

/// Converts one image to floats `byte * (1/255)` into the interior of the padded buffer. With
/// `flip`, the image is mirrored left-right on the way (data augmentation; the u8 data is never
/// modified). The scalar twin is `crate::reference::load::load_image`.
pub fn load_asm(_cpu: Avx512, h: usize, w: usize, src: &[u8], dst_pad: &mut [f32], flip: bool) {
    assert!(src.len() >= h * w * 3, "image bytes too short");
    assert!(
        dst_pad.len() >= (h + 2) * (w + 2) * 3,
        "padded buffer too short"
    );
    let mut tmp = [0u8; 64];
    for y in 0..h {
        let s = src[y * w * 3..].as_ptr();
        let d = dst_pad[((y + 1) * (w + 2) + 1) * 3..].as_mut_ptr();
        // SAFETY: the asserts bound one source row (3w bytes) and one padded interior row
        // (3w floats); `tmp` holds the kernel's 64-byte staging for a flipped row.
        unsafe {
            if flip {
                crate::kernels::load::row_flip(s, d, w, tmp.as_mut_ptr());
            } else {
                crate::kernels::load::row(s, d, 3 * w);
            }
        }
    }
}

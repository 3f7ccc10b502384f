//! u8 image bytes to f32 network input (the original's `loader.asm` `load_sample`).

use crate::cpu::Path;

/// Converts one `h x w x 3` u8 image to floats `byte * (1/255)` into the interior of the padded
/// `(h+2) x (w+2) x 3` buffer `dst_pad` (border untouched). With `flip`, the image is mirrored
/// left-right on the way (data augmentation; the u8 data is never modified).
pub fn load_image(path: Path, h: usize, w: usize, src: &[u8], dst_pad: &mut [f32], flip: bool) {
    assert!(src.len() >= h * w * 3, "image bytes too short");
    assert!(
        dst_pad.len() >= (h + 2) * (w + 2) * 3,
        "padded buffer too short"
    );
    match path {
        Path::Reference => crate::reference::load::load_image(h, w, src, dst_pad, flip),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            let mut tmp = [0u8; 64];
            for y in 0..h {
                let s = src[y * w * 3..].as_ptr();
                let d = dst_pad[((y + 1) * (w + 2) + 1) * 3..].as_mut_ptr();
                // SAFETY: row y has 3w source bytes and 3w destination floats (checked above).
                unsafe {
                    if flip {
                        crate::kernels::load::row_flip(s, d, w, tmp.as_mut_ptr());
                    } else {
                        crate::kernels::load::row(s, d, 3 * w);
                    }
                }
            }
        }
    }
}

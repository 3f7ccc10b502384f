//! u8 image bytes to f32 network input (the original's `loader.asm` `load_sample`).

use crate::cpu::Path;

/// Converts one `h x w x 3` u8 image to floats `byte * (1/255)` into the interior of the padded
/// `(h+2) x (w+2) x 3` buffer `dst_pad` (border untouched). With `flip`, the image is mirrored
/// left-right on the way (data augmentation; the u8 data is never modified).
pub fn load_image(path: Path, h: usize, w: usize, src: &[u8], dst_pad: &mut [f32], flip: bool) {
    let _ = (path, h, w, src, dst_pad, flip);
    todo!()
}

//! Scalar reference of `load_sample` (the original's `loader.asm`).

/// `dst_pad[((y+1)*(w+2) + x+1)*3 + ch] = src[(y*w + sx)*3 + ch] * (1/255)`, with
/// `sx = w-1-x` when `flip`, else `x`.
pub fn load_image(h: usize, w: usize, src: &[u8], dst_pad: &mut [f32], flip: bool) {
    let scale = 1.0f32 / 255.0;
    for y in 0..h {
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            for ch in 0..3 {
                dst_pad[((y + 1) * (w + 2) + x + 1) * 3 + ch] =
                    src[(y * w + sx) * 3 + ch] as f32 * scale;
            }
        }
    }
}

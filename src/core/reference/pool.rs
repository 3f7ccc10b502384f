//! Scalar reference of the 2x2 max-pool and its backward (the original's `maxpool.asm`).

use crate::config::PoolDims;
use crate::layers::pool::PoolOut;

/// Pools conv rows `2*rows.start .. 2*rows.end`, held in `y_band`, into pooled rows `rows` at
/// `pool.out[place.off + i*place.row_stride + j*c + ch]`, argmax codes into `pool.argmax` when
/// given (`crate::layers::pool::forward_asm`'s contract).
pub fn forward(d: &PoolDims, y_band: &[f32], pool: &mut PoolOut, rows: std::ops::Range<usize>) {
    crate::layers::pool::check(d);
    let (w, c) = (d.w, d.c);
    let (off, row_stride) = (pool.place.off, pool.place.row_stride);
    let y = |i: usize| &y_band[2 * (i - rows.start) * w * c..];
    for i in rows.clone() {
        for j in 0..d.w / 2 {
            for ch in 0..c {
                let at = |dy: usize, dx: usize| y(i)[(dy * w + 2 * j + dx) * c + ch];
                let win = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                let mut m = win[0];
                let mut code = 0u8;
                for (t, &v) in win.iter().enumerate().skip(1) {
                    if v > m {
                        m = v;
                        code = t as u8;
                    }
                }
                if m <= 0.0 {
                    code = 4;
                }
                pool.out[off + i * row_stride + j * c + ch] = m;
                if let Some(a) = pool.argmax.as_deref_mut() {
                    a[(i * (d.w / 2) + j) * c + ch] = code;
                }
            }
        }
    }
}

/// Routes `dout` to the argmax positions of the interior of `dy_pad`, zero elsewhere.
pub fn backward(d: &PoolDims, dout: &[f32], argmax: &[u8], dy_pad: &mut [f32]) {
    crate::layers::pool::check(d);
    let (w, c) = (d.w, d.c);
    let prow = (w + 2) * c;
    for i in 0..d.h / 2 {
        for j in 0..d.w / 2 {
            for ch in 0..c {
                let o = (i * (w / 2) + j) * c + ch;
                let code = argmax[o] as usize;
                for t in 0..4 {
                    let (dy, dx) = (t / 2, t % 2);
                    let at = (2 * i + dy + 1) * prow + (2 * j + dx + 1) * c + ch;
                    dy_pad[at] = if code == t { dout[o] } else { 0.0 };
                }
            }
        }
    }
}

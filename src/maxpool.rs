//! 2x2 stride-2 max-pool with argmax, and its backward (the original's `maxpool.asm`).
//!
//! Input `y`: `h x w x c` (HWC, post-ReLU). Output written at
//! `out[out_off + i*out_row_stride + j*c + ch]` for `i < h/2, j < w/2`, so it can land directly in
//! the interior of the next conv's padded input (or in a flat fc1 input row).
//! Argmax, one byte per pooled value (`(h/2) x (w/2) x c`): 0..=3 = window position of the first
//! maximum in window order (top-left, top-right, bottom-left, bottom-right), as the original's
//! masks; 4 = the maximum is <= 0, i.e. ReLU blocked every position, so no gradient flows.

use crate::config::PoolDims;
use crate::cpu::Path;

/// Where pooled values go inside a larger buffer.
#[derive(Clone, Copy, Debug)]
pub struct OutPlace {
    pub off: usize,
    pub row_stride: usize,
}

impl OutPlace {
    /// Contiguous `h/2 x w/2 x c`.
    pub fn flat(d: &PoolDims) -> Self {
        Self {
            off: 0,
            row_stride: (d.w / 2) * d.c,
        }
    }
    /// The interior of a `(h/2+2) x (w/2+2) x c` padded buffer.
    pub fn padded(d: &PoolDims) -> Self {
        let row = (d.w / 2 + 2) * d.c;
        Self {
            off: row + d.c,
            row_stride: row,
        }
    }
}

pub fn forward(
    path: Path,
    d: &PoolDims,
    y: &[f32],
    out: &mut [f32],
    place: OutPlace,
    argmax: &mut [u8],
) {
    let _ = (path, d, y, out, place, argmax);
    todo!()
}

/// Routes each pooled gradient `dout` (contiguous `h/2 x w/2 x c`) to its argmax position in the
/// interior of `dy_pad` (`(h+2) x (w+2) x c`), zero at the other three positions and where
/// argmax is 4. Writes every interior element; never touches the border.
pub fn backward(path: Path, d: &PoolDims, dout: &[f32], argmax: &[u8], dy_pad: &mut [f32]) {
    let _ = (path, d, dout, argmax, dy_pad);
    todo!()
}

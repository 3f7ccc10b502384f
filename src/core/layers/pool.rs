//! 2x2 stride-2 max-pool with argmax, and its backward (the original's `maxpool.asm`).
//!
//! Input `y`: `h x w x c` (HWC, post-ReLU). Output written at
//! `out[out_off + i*out_row_stride + j*c + ch]` for `i < h/2, j < w/2`, so it can land directly in
//! the interior of the next conv's padded input (or in a flat fc1 input row).
//! Argmax, one byte per pooled value (`(h/2) x (w/2) x c`): 0..=3 = window position of the first
//! maximum in window order (top-left, top-right, bottom-left, bottom-right), as the original's
//! masks; 4 = the maximum is <= 0, i.e. ReLU blocked every position, so no gradient flows.

use crate::cpu::Avx512;

use crate::config::{ConvDims, PoolDims};
use crate::kernels::pool as kernel;

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

/// Where a pool forward ([`forward_asm`], or a fused conv + ReLU + pool forward,
/// [`crate::layers::conv::ForwardPoolFn`]) puts the pooled rows: into `out` at `place`, argmax
/// codes into `argmax` (`[h/2][w/2][c]`) when given; inference gives `None`.
pub struct PoolOut<'a> {
    pub out: &'a mut [f32],
    pub place: OutPlace,
    pub argmax: Option<&'a mut [u8]>,
}

impl PoolOut<'_> {
    /// Asserts that the pooled output of layer `d` (`h/2 x w/2 x cout`) fits: rows at `place`
    /// that do not overlap, inside `out`; the codes, when given, `h/2 x w/2 x cout` bytes.
    pub fn check(&self, d: &ConvDims) {
        let (ho, row, place) = (d.h / 2, d.w / 2 * d.cout, self.place);
        assert!(place.row_stride >= row, "pooled rows overlap");
        assert!(
            ho == 0 || self.out.len() >= place.off + (ho - 1) * place.row_stride + row,
            "pooled output too short"
        );
        assert!(
            self.argmax.as_ref().is_none_or(|a| a.len() >= ho * row),
            "argmax too short"
        );
    }
}

pub(crate) fn check(d: &PoolDims) {
    assert!(
        d.h >= 2
            && d.w >= 2
            && d.h.is_multiple_of(2)
            && d.w.is_multiple_of(2)
            && d.c >= 16
            && d.c.is_multiple_of(16),
        "pool dims {d:?}: h, w must be even and c a multiple of 16"
    );
}

/// Forward, pooled rows `rows` (`0..h/2`: the whole layer): `y_band` holds just conv rows
/// `2*rows.start .. 2*rows.end` (`2*rows.len() x w x c`), so the trainer can pool a band of
/// conv output right after computing it, while it is still in L1. Writes only those pooled rows
/// and, when `argmax` is given (training), their argmax codes; inference passes `None` and
/// runs a kernel that only takes the maxima.
///
/// Shapes: `y_band [2*rows.len()][w][c]` -> `out[place.off + i*place.row_stride + j*c + ch]`,
/// `argmax [h/2][w/2][c]`.
pub fn forward_asm(
    _cpu: Avx512,
    d: &PoolDims,
    y_band: &[f32],
    pool: &mut PoolOut,
    rows: std::ops::Range<usize>,
) {
    check(d);
    let (out, place) = (&mut *pool.out, pool.place);
    let (ho, wo) = (d.h / 2, d.w / 2);
    assert!(rows.end <= ho, "pooled rows {rows:?} past {ho}");
    assert!(y_band.len() >= 2 * rows.len() * d.w * d.c);
    assert!(pool.argmax.as_ref().is_none_or(|a| a.len() >= d.out_len()));
    assert!(place.row_stride >= wo * d.c);
    assert!(out.len() >= place.off + (ho - 1) * place.row_stride + wo * d.c);
    let row = d.w * d.c;
    for i in rows.clone() {
        let (top, at) = (2 * (i - rows.start) * row, place.off + i * place.row_stride);
        // SAFETY: bounds checked above; one output row of wo*c values per call.
        unsafe {
            let (top, out) = (y_band.as_ptr().add(top), out.as_mut_ptr().add(at));
            match pool.argmax.as_deref_mut() {
                Some(a) => {
                    let am = a.as_mut_ptr().add(i * wo * d.c);
                    kernel::forward_row(top, 4 * row, d.c / 16, wo, out, am)
                }
                None => kernel::max_row(top, 4 * row, d.c / 16, wo, out),
            }
        }
    }
}

/// Routes each pooled gradient `dout` (contiguous `h/2 x w/2 x c`) to its argmax position in the
/// interior of `dy_pad` (`(h+2) x (w+2) x c`), zero at the other three positions and where
/// argmax is 4. Writes every interior element; never touches the border.
///
/// Shapes: `dout [h/2][w/2][c]`, `argmax [h/2][w/2][c]` -> `dy_pad [h+2][w+2][c]`.
pub fn backward_asm(_cpu: Avx512, d: &PoolDims, dout: &[f32], argmax: &[u8], dy_pad: &mut [f32]) {
    check(d);
    let (ho, wo) = (d.h / 2, d.w / 2);
    assert!(dout.len() >= d.out_len() && argmax.len() >= d.out_len());
    assert!(dy_pad.len() >= (d.h + 2) * (d.w + 2) * d.c);
    let prow = (d.w + 2) * d.c;
    for i in 0..ho {
        // SAFETY: bounds checked above; writes rows 2i+1, 2i+2, columns 1..=w.
        unsafe {
            kernel::backward_row(
                dout.as_ptr().add(i * wo * d.c),
                argmax.as_ptr().add(i * wo * d.c),
                d.c / 16,
                wo,
                dy_pad.as_mut_ptr().add((2 * i + 1) * prow + d.c),
                4 * prow,
            )
        }
    }
}

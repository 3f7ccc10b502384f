//! The portable convolution (`--kernels portable`): an implicit GEMM on `matrixmultiply`'s
//! `sgemm`, which picks AVX2+FMA, AVX or SSE2 at run time and never uses AVX-512. No `asm!`:
//! this is the path for CPUs without AVX-512.
//!
//! The trick that makes it implicit: on the padded grid, output pixel `(i, j)` is flat position
//! `p = i*(w+2) + j`, and its kernel row `ky` reads the `3*cin` consecutive floats of `x_pad` at
//! `(p + ky*(w+2)) * cin`. So for a band of output rows `r0..r1` the `M = (r1-r0)*(w+2) - 2`
//! positions from `(r0, 0)` form, for each `ky`, a matrix `A_ky [M][3cin]` whose rows start
//! `cin` floats apart (they overlap: a window slides one pixel at a time) and
//!
//! ```text
//! forward:        Y_band [M][cout]  = sum_ky A_ky [M][3cin] . W_ky [3cin][cout]
//! weight grad:    dW_ky [3cin][cout] += A_ky^T [3cin][M] . dY_band [M][cout]
//! input gradient: the forward on dy_pad with the flipped, transposed weights
//! ```
//!
//! three GEMMs per band, no im2col copy. Two of the `w+2` positions of each row fall on the
//! border columns: the forward computes them and drops them; in the weight gradient they meet the
//! zero border of `dy_pad` and add nothing.
//!
//! Bits: each output element is one GEMM dot product per `ky`, summed `ky = 0, 1, 2`, and
//! `sgemm`'s result for an element does not depend on where the band or the matrix edge falls,
//! so the result is the same for any band height and thread count (the weight gradient's bands
//! are fixed by the shape and summed in order).

use super::{ConvPlan, Forward, InputGrads, WeightGrads};
use crate::config::ConvDims;

/// Output rows per GEMM band: small enough that a band's `A` rows, its `Y` and `W` stay in L2,
/// large enough that `sgemm` amortises packing `W` (see `benches/HISTORY.md`).
const BAND_ROWS: usize = 8;

/// Floats of the packed weights: `[3][3cin][cout]` (`W_ky` row-major, one after another).
pub fn packed_len(d: &ConvDims) -> usize {
    d.weight_len()
}

/// Floats of scratch: one band's `Y` on the padded grid, for the forward (`cout` wide) and for
/// the input gradient (`cin` wide).
pub fn scratch_len(d: &ConvDims) -> usize {
    BAND_ROWS * (d.w + 2) * d.cout.max(d.cin)
}

/// `[cout][3][3][cin]` -> `W [ky][kx][cin][cout]`.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let (cin, cout) = (d.cin, d.cout);
    repack(d, w, out, |o, k, c| (k * cin + c) * cout + o)
}

/// The input gradient's weights, packed as [`pack_forward`] packs a layer with `cin` and `cout`
/// swapped: `W' [ky][kx][cout][cin] = w[o][2-ky][2-kx][c]`.
pub fn pack_backward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let (cin, cout) = (d.cin, d.cout);
    repack(d, w, out, |o, k, c| ((8 - k) * cout + o) * cin + c)
}

/// Copies each weight `w[o][k][c]` (`k = 3*ky + kx`) to `out[at(o, k, c)]`.
fn repack(d: &ConvDims, w: &[f32], out: &mut [f32], at: impl Fn(usize, usize, usize) -> usize) {
    assert!(w.len() >= d.weight_len() && out.len() >= packed_len(d));
    for o in 0..d.cout {
        for k in 0..9 {
            for c in 0..d.cin {
                out[at(o, k, c)] = w[(o * 9 + k) * d.cin + c];
            }
        }
    }
}

/// `C [m][n] = beta * C + A . B`, every matrix given by its pointer and strides in floats.
///
/// # Safety
/// Every element the strides address inside `m x k`, `k x n` and `m x n` is valid (`C`
/// writable).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm(
    (m, k, n): (usize, usize, usize),
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    beta: f32,
    c: (*mut f32, isize, isize),
) {
    matrixmultiply::sgemm(
        m, k, n, 1.0, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, c.2,
    );
}

/// [`super::ConvPlan::forward`]: output rows `f.rows` of `relu(conv(x_pad, w) + bias)`; with
/// `f.bias = None`, the plain convolution (the input gradient).
pub fn forward(d: &ConvDims, f: Forward) {
    let (w, cin, cout, wp2) = (d.w, d.cin, d.cout, d.w + 2);
    f.check(d, packed_len(d));
    let (x_pad, wp, bias, y, rows, scratch) = (f.x_pad, f.w, f.bias, f.y, f.rows, f.scratch);
    for r0 in rows.clone().step_by(BAND_ROWS) {
        let r1 = (r0 + BAND_ROWS).min(rows.end);
        let m = (r1 - r0) * wp2 - 2;
        let band = &mut scratch[..m * cout];
        for ky in 0..3 {
            // A_ky's last row ends at ((r1-1+ky)*(w+2) + w-1 + 2)*cin + cin <= in_pad_len.
            // SAFETY: rows r0+ky .. r1+ky of x_pad exist (r1 <= h), the packed W_ky is
            // 3cin x cout inside wp, and `band` holds m x cout (all asserted above).
            unsafe {
                gemm(
                    (m, 3 * cin, cout),
                    (x_pad.as_ptr().add((r0 + ky) * wp2 * cin), cin as isize, 1),
                    (wp.as_ptr().add(ky * 3 * cin * cout), cout as isize, 1),
                    if ky == 0 { 0.0 } else { 1.0 },
                    (band.as_mut_ptr(), cout as isize, 1),
                );
            }
        }
        for i in r0..r1 {
            let src = &band[(i - r0) * wp2 * cout..][..w * cout];
            let dst = &mut y[(i - rows.start) * w * cout..][..w * cout];
            match bias {
                Some(b) => crate::portable::bias_relu(src, &b[..cout], dst),
                None => dst.copy_from_slice(src),
            }
        }
    }
}

/// [`super::ConvPlan::input_grad`]: the forward over `dy_pad` with the weights of
/// [`pack_backward`], no bias, no ReLU.
pub fn input_grad(d: &ConvDims, g: InputGrads) {
    g.by_forward(d, forward)
}

/// [`super::ConvPlan::weight_grad`]: `dw_kc [3][3][cin][cout]` and `db [cout]`,
/// overwritten, from `x_pad` and the padded output gradient (interior only is read as data; the
/// border must be zero, as [`crate::net`] keeps it).
pub fn weight_grad(d: &ConvDims, g: WeightGrads) {
    g.check(d);
    let (x_pad, dy_pad, dw_kc, db) = (g.x_pad, g.dy_pad, g.dw_kc, g.db);
    let (h, cin, cout, wp2) = (d.h, d.cin, d.cout, d.w + 2);
    let kc = 3 * cin;
    for r0 in (0..h).step_by(BAND_ROWS) {
        let r1 = (r0 + BAND_ROWS).min(h);
        let m = (r1 - r0) * wp2 - 2;
        // dY_band: position p of the band is dy_pad's pixel (r0 + 1, 1) + p.
        let dy = dy_pad[(r0 * wp2 + wp2 + 1) * cout..].as_ptr();
        let beta = if r0 == 0 { 0.0 } else { 1.0 };
        for ky in 0..3 {
            let a = x_pad[(r0 + ky) * wp2 * cin..].as_ptr();
            let c = dw_kc[ky * kc * cout..].as_mut_ptr();
            // The wider side of dW_ky goes first (sgemm's micro-panels fill better): conv1's
            // 9 x 32 as (dY^T . A)^T.
            // SAFETY: the band's m positions of x_pad (rows r0+ky ..) and of dy_pad (rows
            // r0+1 ..) lie inside the padded buffers; dW_ky is kc x cout inside dw_kc.
            unsafe {
                if kc >= cout {
                    gemm(
                        (kc, m, cout),
                        (a, 1, cin as isize),
                        (dy, cout as isize, 1),
                        beta,
                        (c, cout as isize, 1),
                    );
                } else {
                    gemm(
                        (cout, m, kc),
                        (dy, 1, cout as isize),
                        (a, cin as isize, 1),
                        beta,
                        (c, 1, cout as isize),
                    );
                }
            }
        }
    }
    // db = sum of the interior of dy, pixels in row order.
    let db = &mut db[..cout];
    db.fill(0.0);
    for i in 0..h {
        let row = &dy_pad[((i + 1) * wp2 + 1) * cout..][..d.w * cout];
        for px in row.chunks_exact(cout) {
            for (s, &g) in db.iter_mut().zip(px) {
                *s += g;
            }
        }
    }
}

impl ConvPlan {
    /// The portable plan of layer `d`: [`forward`], [`input_grad`], [`weight_grad`].
    pub fn portable(d: &ConvDims) -> Self {
        ConvPlan {
            algo: super::Algo::Gemm,
            band: d.h,
            packed_len: packed_len(d),
            scratch_len: scratch_len(d),
            pack_forward,
            pack_backward,
            forward,
            forward_pool: None,
            fused_in_training: false,
            input_grad,
            weight_grad,
            weight_grad_pooled: None,
        }
    }
}

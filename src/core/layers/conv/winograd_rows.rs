//! Winograd F(4,3) along each row (1-D) for a convolution with few input channels (conv1: 3 RGB
//! channels; [`super::Algo::WinogradRows`]): the forward pass, fused with ReLU and the 2x2 pool,
//! and the weight gradient, with the pool's backward pass fused in.
//!
//! Conv1 cannot use the 2-D Winograd drivers ([`super::winograd`]): their matrix products run
//! over the input channels, 16 at a time, and conv1 has 3. Its direct kernels spend 27 FMAs per
//! output pixel and 16 channels, at the FMA peak. Transforming along x only keeps the direct
//! kernels' shape (accumulators in registers over the whole reduction, input values broadcast)
//! and halves the multiplies: a tile of 4 output pixels of a row takes, per kernel row `ky` and
//! input channel `c`, 6 transformed inputs times 6 transformed weight vectors instead of 4 x 3,
//! 13.5 FMAs per pixel and 16 channels instead of 27.
//!
//! With F(4x4)'s matrices ([`super::winograd::Winograd4`], `asm_notes/winograd4.md`) applied along x:
//!
//! ```text
//! D[row][tile][c][p] = (B^T x[row][4 tile .. 4 tile + 5][c])[p]       (6 of 6 padded pixels)
//! U[ky][c][p][o]     = (G w[o][ky][0..3][c])[p]                        (f64, rounded once)
//! m[y][tile][p][o]   = sum_{ky, c} D[y+ky][tile][c][p] * U[ky][c][p][o]
//! out[y][4 tile + i][o] = max((A^T m[y][tile][..][o])[i] + bias[o], 0)
//! ```
//!
//! Per band of output rows, [`input_row`](crate::kernels::winograd_rows::input_row) transforms
//! each padded input row the band reads once into the scratch (`D`, two tiles per vector, see
//! [`crate::kernels::winograd_rows`]), then [`tile_2x4`](crate::kernels::winograd_rows::tile_2x4)
//! runs 2 output rows x 4 pixels x 32 channels per call and pools them in registers (or stores
//! them: [`forward`], for the tests and `ConvPlan::forward`).
//!
//! Accuracy: a 1-D F(4,3) rounds a little more than the direct sum of 27 products (its
//! coefficients up to 5 and 8 meet 6 values, not 36 as in F(4x4)): `tests/winograd_rows.rs`
//! measures at most 5.2e-7 of the largest output against an f64 reference (conv1: 4.4e-7;
//! direct: 2.3e-7) and bounds it by 2e-6.
//! The weight gradient ([`weight_grad`]) is the adjoint, on the same transformed rows:
//! 13.5 instead of the direct weight gradient's 27 FMAs per output pixel and 16 channels
//! ([`crate::kernels::winograd_rows::grad_rows`]). The input gradient stays direct (conv1
//! needs none).

use crate::cpu::Avx512;

use super::winograd::{TileSize, Winograd4};
use super::{Forward, PoolOut, WeightGrads};
use crate::config::ConvDims;
use crate::kernels::winograd_rows::{self as k, RowTileArgs};
use std::ops::Range;

/// Output rows per band: the drivers transform the `BAND_ROWS + 2` padded rows a band reads
/// into `D` (60 KiB for conv1), then run the band's tiles, so each input row is transformed
/// once, a band's 2 border rows twice. Also the band of a banded layer (`ConvPlan::band`).
pub const BAND_ROWS: usize = 8;

/// Whether F(4,3) along rows runs `d`: 1 to 3 input channels (two tiles of a channel count
/// share a 16-lane vector), 32-channel output blocks, whole tiles of 4 pixels and whole pooling
/// windows (even height).
pub fn applies(d: &ConvDims) -> bool {
    (1..=3).contains(&d.cin)
        && d.cout.is_multiple_of(32)
        && d.h >= 2
        && d.h.is_multiple_of(2)
        && d.w >= 4
        && d.w.is_multiple_of(4)
}

/// Floats of the packed weights `U`: 3 kernel rows x `cin` x 6 positions x `cout`.
pub fn packed_len(d: &ConvDims) -> usize {
    18 * d.cin * d.cout
}

/// Floats of one transformed row `D`: tile pairs x 6 positions x 16 lanes.
fn d_row(d: &ConvDims) -> usize {
    (d.w / 4).div_ceil(2) * 96
}

/// Floats of scratch the drivers need: `D` of a band, `BAND_ROWS + 2` rows (fewer for a
/// shorter layer), then the weight gradient's `dU` (`du_len`).
pub fn scratch_len(d: &ConvDims) -> usize {
    d_len(d) + du_len(d)
}

/// Floats of a band's `D`.
fn d_len(d: &ConvDims) -> usize {
    (BAND_ROWS.min(d.h) + 2) * d_row(d)
}

/// Floats of the weight gradient's `dU`: `[ky][group of 16 outputs][c < 3][p]` x 16.
fn du_len(d: &ConvDims) -> usize {
    3 * (d.cout / 16) * 18 * 16
}

/// `U = G w` along x, in f64, rounded once. Layout: for each 32-channel block `o0` (at float
/// `o0 * 18 cin`), for each step `(ky, c)`, the 6 positions of 32 floats, output channels
/// innermost: what [`tile_2x4`](crate::kernels::winograd_rows::tile_2x4) reads.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    assert!(applies(d), "F(4,3) along rows cannot run {d:?}");
    assert!(w.len() >= d.weight_len(), "weights too short");
    assert!(out.len() >= packed_len(d), "packed buffer too short");
    let cin = d.cin;
    let at = |o: usize, ky: usize, kx: usize, c: usize| w[((o * 3 + ky) * 3 + kx) * cin + c] as f64;
    for o0 in (0..d.cout).step_by(32) {
        for ky in 0..3 {
            for c in 0..cin {
                let step = o0 * 18 * cin + (ky * cin + c) * 6 * 32;
                for o in 0..32 {
                    let oc = o0 + o;
                    let u = Winograd4::g(at(oc, ky, 0, c), at(oc, ky, 1, c), at(oc, ky, 2, c));
                    for (p, v) in u.iter().enumerate() {
                        out[step + p * 32 + o] = *v as f32;
                    }
                }
            }
        }
    }
}

/// [`super::ConvPlan::forward`]: output rows `f.rows` (even start and end) of
/// `relu(conv(x_pad, w) + bias)`. This algorithm has no plain convolution: `f.bias` must be
/// given (the input gradient runs direct).
pub fn forward(cpu: Avx512, d: &ConvDims, f: Forward) {
    let bias = f
        .bias
        .expect("F(4,3) along rows runs only the forward pass (with its bias)");
    f.check(d, packed_len(d));
    let (y, rows, scratch) = (f.y, f.rows, f.scratch);
    let (w, c, first, yp) = (d.w, d.cout, rows.start, y.as_mut_ptr());
    tiles(cpu, d, (f.x_pad, f.w, bias), rows, scratch, |yr, t, o0| {
        // SAFETY: `tiles` gives rows yr, yr+1 of `rows` and tiles t < w/4, so pixels
        // (yr - first + r, 4t + i) lie inside `y` (asserted above).
        let out = unsafe { yp.add(((yr - first) * w + 4 * t) * c + o0) };
        (out, w * c * 4, std::ptr::null_mut())
    });
}

/// [`super::ConvPlan::forward_pool`]: [`forward`]'s rows, 2x2 max-pooled in the kernel into
/// `pool` (pooled rows `rows.start/2 .. rows.end/2`, codes when `pool.argmax` is given): the
/// same bits as [`forward`] then [`crate::layers::pool::forward_asm`].
pub fn forward_pool(
    cpu: Avx512,
    d: &ConvDims,
    x_pad: &[f32],
    upack: &[f32],
    bias: &[f32],
    rows: Range<usize>,
    scratch: &mut [f32],
    pool: &mut PoolOut,
) {
    let (wo, c, place) = (d.w / 2, d.cout, pool.place);
    pool.check(d);
    let argmax = pool.argmax.as_deref_mut();
    let (op, ap) = (pool.out.as_mut_ptr(), argmax.map(|a| a.as_mut_ptr()));
    tiles(cpu, d, (x_pad, upack, bias), rows, scratch, |yr, t, o0| {
        let (i, j) = (yr / 2, 2 * t);
        // SAFETY: pooled pixels (i, j), (i, j+1) with i < h/2, j+1 < w/2 lie inside `out` at
        // `place` and inside `argmax` (asserted above).
        unsafe {
            let out = op.add(place.off + i * place.row_stride + j * c + o0);
            let codes = ap.map_or(std::ptr::null_mut(), |a| a.add((i * wo + j) * c + o0));
            (out, 0, codes)
        }
    });
}

/// The band loop of [`forward`] and [`forward_pool`]: checks what both need, then for each band
/// of at most [`BAND_ROWS`] of the output rows `rows`, transforms the padded rows it reads
/// (`band.start .. band.end + 2`) into `D` and runs the kernel on every pair of output rows,
/// tile and 32-channel block; `place(y, tile, o0)` gives the call's `out`, `out_row` (0: pool)
/// and codes.
fn tiles(
    cpu: Avx512,
    d: &ConvDims,
    (x_pad, upack, bias): (&[f32], &[f32], &[f32]),
    rows: Range<usize>,
    scratch: &mut [f32],
    mut place: impl FnMut(usize, usize, usize) -> (*mut f32, usize, *mut u8),
) {
    let (w, cin, cout) = (d.w, d.cin, d.cout);
    assert!(applies(d), "F(4,3) along rows cannot run {d:?}");
    super::check_row_pairs(d, &rows, (x_pad, upack, bias), packed_len(d));
    let dr = d_row(d);
    assert!(scratch.len() >= scratch_len(d), "scratch too short");
    let tw = w / 4;
    let (up, bp) = (upack.as_ptr(), bias.as_ptr());
    for y0 in rows.clone().step_by(BAND_ROWS) {
        let band = y0..(y0 + BAND_ROWS).min(rows.end);
        transform_band(cpu, d, x_pad, band.clone(), scratch);
        let dp = scratch.as_ptr();
        for o0 in (0..cout).step_by(32) {
            for yr in band.clone().step_by(2) {
                for t in 0..tw {
                    let (out, out_row, argmax) = place(yr, t, o0);
                    let args = RowTileArgs {
                        // SAFETY: row yr - band.start (and the 3 below it) of the band's D,
                        // pair t/2, lane (t%2)*4cin: inside the scratch (asserted above).
                        d: unsafe {
                            dp.add((yr - band.start) * dr + (t / 2) * 96 + (t % 2) * 4 * cin)
                        },
                        d_row: dr * 4,
                        cin,
                        // SAFETY: block o0 of the bias (cout floats, asserted above).
                        bias: unsafe { bp.add(o0) },
                        out,
                        out_stride: cout * 4,
                        out_row,
                        argmax,
                        argmax_stride: cout,
                    };
                    // SAFETY: the block's U at o0 * 18 cin (packed_len asserted above); D,
                    // bias and the outputs as above; AVX-512 checked above.
                    unsafe { k::tile_2x4(&args, up.add(o0 * 18 * cin)) };
                }
            }
        }
    }
}

/// `D` of the padded input rows `band.start .. band.end + 2` into the first rows of `scratch`
/// (row `r` of the band at `r * d_row` floats), by [`k::input_row`]: whole tile pairs with both
/// tiles' lanes, an odd last tile with its own. The caller has checked the shapes ([`tiles`],
/// [`weight_grad`]): `band.end <= h`, `band.len() <= BAND_ROWS`, `x_pad` whole.
fn transform_band(
    _cpu: Avx512,
    d: &ConvDims,
    x_pad: &[f32],
    band: Range<usize>,
    scratch: &mut [f32],
) {
    let (w, cin) = (d.w, d.cin);
    let (tw, pix, dr) = (w / 4, cin * 4, d_row(d));
    assert!(band.end <= d.h && band.len() <= BAND_ROWS && scratch.len() >= d_len(d));
    assert!(
        x_pad.len() >= (d.h + 2) * (w + 2) * cin,
        "padded input too short"
    );
    let run = (1u16 << cin) - 1;
    let (both, first_only) = (run | run << (4 * cin), run);
    let (xp, dp) = (x_pad.as_ptr(), scratch.as_mut_ptr());
    // SAFETY: padded rows band.start .. band.end + 2 <= h + 2 of x_pad; each masked load reads
    // at most pixel 8q + 9 of its row (pixel w + 1 for the last full pair), only the first run
    // for an odd last tile; D row r of the band, at dp + r*dr, holds tw.div_ceil(2) pairs,
    // r < BAND_ROWS + 2 (asserted above). AVX-512 checked by the callers.
    unsafe {
        for (r, y) in (band.start..band.end + 2).enumerate() {
            let (x, dst) = (xp.add(y * (w + 2) * cin), dp.add(r * dr));
            k::input_row(x, pix, tw / 2, dst, both);
            if tw % 2 == 1 {
                let q = tw / 2;
                k::input_row(x.add(8 * q * cin), pix, 1, dst.add(q * 96), first_only);
            }
        }
    }
}

/// [`super::ConvPlan::weight_grad`]: the weight and bias gradients of one sample,
/// overwritten: `dw_kc[ky][kx][c][o] = sum_{y,x} x_pad[y+ky][x+kx][c] * dy[y][x][o]`, `db[o] =
/// sum dy`, through the adjoint of F(4,3) along rows (`weight_grad_of`, [`k::grad_rows`]).
pub fn weight_grad(cpu: Avx512, d: &ConvDims, g: WeightGrads) {
    assert!(
        g.dy_pad.len() >= (d.h + 2) * (d.w + 2) * d.cout,
        "padded output gradient too short"
    );
    let (x_pad, dy) = (g.x_pad, Grad::Padded(g.dy_pad));
    weight_grad_of(cpu, d, x_pad, dy, g.dw_kc, g.db, g.scratch)
}

/// [`super::ConvPlan::weight_grad_pooled`]: [`weight_grad`] from the gradient before
/// the 2x2 max-pool's backward pass, `dpool` (`[h/2][w/2][cout]`) and the pool's argmax codes
/// (`[h/2][w/2][cout]`), unpooled in the kernel ([`k::grad_rows_pooled`]): the bits of
/// [`crate::layers::pool::backward_asm`] then [`weight_grad`], without the full-size output
/// gradient. For a layer whose input gradient is not needed (conv1).
pub fn weight_grad_pooled(
    cpu: Avx512,
    d: &ConvDims,
    x_pad: &[f32],
    dpool: &[f32],
    codes: &[u8],
    dw_kc: &mut [f32],
    db: &mut [f32],
    scratch: &mut [f32],
) {
    let pooled = d.h / 2 * (d.w / 2) * d.cout;
    assert!(dpool.len() >= pooled, "pooled gradient too short");
    assert!(codes.len() >= pooled, "argmax codes too short");
    weight_grad_of(
        cpu,
        d,
        x_pad,
        Grad::Pooled(dpool, codes),
        dw_kc,
        db,
        scratch,
    )
}

/// Where [`weight_grad_of`] reads the output gradient: padded (`dy_pad`), or before the pool's
/// backward pass (pooled gradient, argmax codes).
enum Grad<'a> {
    Padded(&'a [f32]),
    Pooled(&'a [f32], &'a [u8]),
}

/// The weight gradient of both entries: per band of [`BAND_ROWS`] output rows, `D` of its input
/// rows, then for each kernel row and group of 16 output channels the kernel accumulates `dU`
/// (and, for `ky = 0`, the bias sums), a band per call ([`k::grad_rows`]) or a row per call
/// ([`k::grad_rows_pooled`]); at the end [`k::weight_row_transform`] turns `dU` into the
/// weight gradient. The callers have checked the output gradient's length.
fn weight_grad_of(
    cpu: Avx512,
    d: &ConvDims,
    x_pad: &[f32],
    grad: Grad,
    dw_kc: &mut [f32],
    db: &mut [f32],
    scratch: &mut [f32],
) {
    let (h, w, cin, cout) = (d.h, d.w, d.cin, d.cout);
    assert!(applies(d), "F(4,3) along rows cannot run {d:?}");
    assert!(dw_kc.len() >= d.weight_len(), "weight gradient too short");
    assert!(db.len() >= cout, "bias gradient too short");
    assert!(scratch.len() >= scratch_len(d), "scratch too short");
    let (dl, groups, tw, dr) = (d_len(d), cout / 16, w / 4, d_row(d));
    db[..cout].fill(0.0);
    scratch[dl..dl + du_len(d)].fill(0.0);
    for y0 in (0..h).step_by(BAND_ROWS) {
        let band = y0..(y0 + BAND_ROWS).min(h);
        transform_band(cpu, d, x_pad, band.clone(), scratch);
        let (dp, dup) = (scratch.as_ptr(), scratch[dl..].as_mut_ptr());
        for ky in 0..3 {
            for g in 0..groups {
                // SAFETY: D rows ky .. ky + band.len() of the band (asserted in
                // transform_band); the output gradient's rows of the band, group g (lengths
                // asserted by the callers); dU of (ky, g) inside du_len; db's group g.
                unsafe {
                    let du = dup.add((ky * groups + g) * 18 * 16);
                    let db = if ky == 0 {
                        db.as_mut_ptr().add(16 * g)
                    } else {
                        std::ptr::null_mut()
                    };
                    match grad {
                        Grad::Padded(dy_pad) => k::grad_rows(&k::RowGradArgs {
                            d: dp.add(ky * dr),
                            d_row: dr * 4,
                            dy: dy_pad
                                .as_ptr()
                                .add(((y0 + 1) * (w + 2) + 1) * cout + 16 * g),
                            dy_row: (w + 2) * cout * 4,
                            pix: cout * 4,
                            rows: band.len(),
                            pairs: tw / 2,
                            odd: tw % 2,
                            lane: 16 * cin,
                            du,
                            db,
                        }),
                        Grad::Pooled(dpool, codes) => {
                            for y in band.clone() {
                                let at = (y / 2) * (w / 2) * cout + 16 * g;
                                let r = (y % 2) as u32;
                                k::grad_rows_pooled(&k::RowGradPooledArgs {
                                    d: dp.add((y - y0 + ky) * dr),
                                    dpool: dpool.as_ptr().add(at),
                                    codes: codes.as_ptr().add(at),
                                    pix: cout * 4,
                                    cpix: cout,
                                    pairs: tw / 2,
                                    odd: tw % 2,
                                    lane: 16 * cin,
                                    du,
                                    db,
                                    positions: [2 * r, 2 * r + 1],
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    // SAFETY: dU of (ky, group g, c) at ((ky*groups + g)*18 + 6c)*16 floats, 6 vectors, inside
    // du_len; taps (ky, kx, c) of dw_kc at ((3 ky + kx)*cin + c)*cout floats, groups of 16
    // inside weight_len (asserted above).
    unsafe {
        let (dup, dwp) = (scratch[dl..].as_ptr(), dw_kc.as_mut_ptr());
        for ky in 0..3 {
            for c in 0..cin {
                let du = dup.add((ky * groups * 18 + 6 * c) * 16);
                let dw = dwp.add((3 * ky * cin + c) * cout);
                k::weight_row_transform(du, 18 * 64, dw, cin * cout * 4, groups);
            }
        }
    }
}

//! Winograd F(4x4, 3x3) driver for the 3x3 convolutions whose output height and width are
//! multiples of 4 and whose channel counts are multiples of 16 (conv2 and conv3 of the network:
//! forward, input gradient and, through the adjoint transforms, weight gradient:
//! [`backward_weights`]). The same interface as the F(2x2, 3x3) driver
//! ([`super::winograd`]), so that it can be a third algorithm beside it: 36 instead of 144
//! multiplies per 4x4 output block (F(2x2): 64 per the same 16 outputs), at the price of larger
//! transforms (6x6 tiles) and more rounding error.
//!
//! A layer (as the kernels see it: `n_in` channels in, `n_out` out, output `h x w`) is cut into
//! 4x4 output tiles, `w/4` per tile row; tiles are processed in *bands* of whole tile rows
//! (about [`BAND_TILES`] tiles, so that the matrix products have enough rows and a band's
//! transformed tiles stay in L2). Per band, with
//! scratch `V`, `M`:
//!
//! 1. input transform (asm, [`crate::kernels::winograd4::input_tile_row`]):
//!    `V[pos][tile][n_in] = B^T d B` of each tile's 6x6 padded-input block;
//! 2. 36 matrix products `M[pos] = V[pos] U[pos]` (`tiles x n_in` by `n_in x n_out`) on the
//!    direct convolution's register-blocked micro-kernels (one segment of `k = n_in` steps,
//!    tiles as "pixels"), `U` packed by [`pack`];
//! 3. output transform (asm, `output_tile_row_*`): `y = A^T M A` (+ bias, ReLU in forward).
//!
//! Scratch per band: `36 * tiles * (n_in + n_out)` floats ([`scratch_len`]), plus a cache line
//! per position; for the network's layers at most 436.5 KiB (conv3).
//! The weight gradient also holds `dU`, 36 positions of `cin x cout` (conv3: 1.15 MiB):
//!
//! ```
//! use catdog_core::layers::conv::winograd4::{scratch_len, wgrad_scratch_len};
//! let s = catdog_core::config::Hyper::default().shapes().unwrap();
//! let most = s.conv.iter().map(|d| scratch_len(d) * 4).max().unwrap();
//! assert_eq!(most, 446_976);
//! let most = s.conv.iter().map(|d| wgrad_scratch_len(d) * 4).max().unwrap();
//! assert_eq!(most, 2_071_296);
//! ```
//!
//! # Accuracy
//!
//! The transforms have coefficients up to 8 (A) and 5 (B), and `U` carries sixths and
//! twenty-fourths, so F(4x4) rounds more than F(2x2): about 10 to 20 times its error, still
//! near 1e-5 of the largest value of a result. Measured by `tests/winograd4.rs`
//! (`accuracy_on_network_shapes`: inputs uniform in [-0.33, 1) then ReLU'd, weights uniform in
//! `+-sqrt(6 / (9 cin))`, biases in +-0.01, output gradients in +-1e-3), against an f64
//! reference, as the largest |error| over the largest |value| of the result:
//!
//! | layer, pass | direct | F(2x2) | F(4x4) |
//! |---|---|---|---|
//! | conv2 forward | 5.5e-7 | 2.0e-7 | 4.0e-6 (1.2e-5 absolute) |
//! | conv2 input gradient | 9.2e-7 | 3.3e-7 | 6.8e-6 (3.5e-8 absolute) |
//! | conv2 weight gradient | 2.9e-6 | 1.2e-6 | 4.6e-6 (3.8e-7 absolute) |
//! | conv3 forward | 7.4e-7 | 2.9e-7 | 3.8e-6 (1.1e-5 absolute) |
//! | conv3 input gradient | 1.1e-6 | 4.9e-7 | 1.03e-5 (5.8e-8 absolute) |
//! | conv3 weight gradient | 8.8e-7 | 4.8e-7 | 2.6e-6 (1.2e-7 absolute) |
//!
//! (On the random +-1 shapes of the same tests: at most 9.6e-6 forward and input gradient,
//! 3.8e-6 weight gradient.) The tests bound F(4x4) by 2e-5 (forward, input gradient) and
//! 1e-5 (weight gradient) of the largest value; one constant of `G` off by 8e-5 relative
//! already exceeds that (`a_wrong_transform_constant_is_caught`).

use super::channel_block_iter;
use super::row_tile_widths;
use crate::config::ConvDims;
use crate::kernels::conv::{self, TileArgs, TileFn};
use crate::kernels::conv_wgrad as wgrad_kernels;
use crate::kernels::winograd4 as kernels;
use crate::kernels::winograd4::Transit;

/// Positions of a transformed tile (6 x 6).
const POS: usize = 36;

/// Tiles per band the forward and input-gradient drivers aim for: conv2 one tile row of 16,
/// conv3 two rows of 8. Measured (`speed_f4x4_vs_f2x2` in `tests/winograd4.rs`, the value
/// overridden for the run, two alternations each): 8, 16, 24, 32 and 48 tiles within 3% of
/// each other, 16 best or tied on all four passes (conv2 forward 453-459 us, 8 tiles 477-487
/// us, 24 tiles 459-460 us, 48 tiles slowest); 16 also keeps the band's `V` and `M` small
/// (conv3: 437 KiB).
pub const BAND_TILES: usize = 16;

/// Whether the F(4x4) path can run a layer (as the kernels see it): output sides multiples of 4
/// (whole 4x4 tiles), channel counts in whole 16-lane groups.
pub fn applies(kernel_dims: &ConvDims) -> bool {
    kernel_dims.h > 0
        && kernel_dims.w > 0
        && kernel_dims.h.is_multiple_of(4)
        && kernel_dims.w.is_multiple_of(4)
        && kernel_dims.cin.is_multiple_of(16)
        && kernel_dims.cout.is_multiple_of(16)
        && kernel_dims.cin > 0
        && kernel_dims.cout > 0
}

/// A band's shape in tiles, `(tile rows, tiles per row)`: whole tile rows up to about
/// [`BAND_TILES`] tiles when a row is short, else a piece of one row (rows split evenly).
fn band_shape(kernel_dims: &ConvDims) -> (usize, usize) {
    let tw = kernel_dims.w / 4;
    if tw >= BAND_TILES {
        let pieces = tw.div_ceil(BAND_TILES);
        (1, tw.div_ceil(pieces))
    } else {
        (BAND_TILES.div_ceil(tw).clamp(1, kernel_dims.h / 4), tw)
    }
}

/// Floats between positions of `V` or `M` for a band of `tiles` tiles of `n` channels: the
/// tiles plus one cache line, so that the 36 positions of a tile (written or read together by
/// the transforms) do not fall into the same L1 set with power-of-two strides (as measured for
/// F(2x2), see `super::winograd`).
fn pos_stride(tiles: usize, n: usize) -> usize {
    tiles * n + 16
}

/// Floats of scratch [`run`] needs for a layer (as the kernels see it): a band's `V` and `M`.
pub fn scratch_len(kernel_dims: &ConvDims) -> usize {
    if !applies(kernel_dims) {
        return 0;
    }
    let (br, bc) = band_shape(kernel_dims);
    let tiles = br * bc;
    POS * (pos_stride(tiles, kernel_dims.cin) + pos_stride(tiles, kernel_dims.cout))
}

/// Floats of the packed (transformed) weights: 36 positions x `n_in x n_out`.
pub fn packed_len(n_in: usize, n_out: usize) -> usize {
    POS * n_in * n_out
}

/// `G` applied to three values (a column or a row of a 3x3 filter), in f64:
/// `[a/4, -(a+b+c)/6, -(a-b+c)/6, (a+2b+4c)/24, (a-2b+4c)/24, c]`.
fn g6(a: f64, b: f64, c: f64) -> [f64; 6] {
    [
        a / 4.0,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        (a + 2.0 * b + 4.0 * c) / 24.0,
        (a - 2.0 * b + 4.0 * c) / 24.0,
        c,
    ]
}

/// Transforms and packs the weights of a layer that reads `n_in` channels and writes `n_out`
/// (as the kernels see it); `f(o, ky, kx, i)` gives the 3x3 filter of output `o`, input `i`
/// (the same accessors as [`super::winograd::pack`]: forward, or flipped and transposed for the
/// input gradient). Layout: for each position `pos` (36), starting at float
/// `pos * n_in * n_out`, the direct kernels' packing of a 1x1 convolution: for each output block
/// `(o0, NV)` of [`super::channel_block_iter`] (at `o0 * n_in`), `n_in` steps of `NV*16`
/// floats, `U[pos][i][o]` with the block's output channels innermost. `U = G g G^T` is computed
/// in f64 and rounded once.
pub fn pack(
    n_in: usize,
    n_out: usize,
    f: impl Fn(usize, usize, usize, usize) -> f32,
    out: &mut [f32],
) {
    assert!(
        out.len() >= packed_len(n_in, n_out),
        "packed buffer too short"
    );
    let plane = n_in * n_out;
    for (o0, nv) in channel_block_iter(n_out) {
        let nb = nv * 16;
        for i in 0..n_in {
            // One step (input channel i, the block's nb output channels) of all 36 positions,
            // gathered here, then written as 36 contiguous runs.
            let mut step = [[0.0f32; 32]; POS];
            #[allow(clippy::needless_range_loop)] // c is the output channel as well
            for c in 0..nb {
                let o = o0 + c;
                let g = |ky, kx| f(o, ky, kx, i) as f64;
                // gg = G g, column by column (6x3), then u = gg G^T, row by row (6x6).
                let cols: [[f64; 6]; 3] =
                    std::array::from_fn(|kx| g6(g(0, kx), g(1, kx), g(2, kx)));
                for r in 0..6 {
                    let u = g6(cols[0][r], cols[1][r], cols[2][r]);
                    for (s, &v) in u.iter().enumerate() {
                        step[r * 6 + s][c] = v as f32;
                    }
                }
            }
            for (pos, run) in step.iter().enumerate() {
                let at = pos * plane + o0 * n_in + i * nb;
                out[at..at + nb].copy_from_slice(&run[..nb]);
            }
        }
    }
}

/// [`super::ConvPlan::pack_forward`] for F(4x4): [`pack`] of the original-layout weights.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cin, d.cout, super::original_forward(d, w), out)
}

/// [`super::ConvPlan::pack_backward`] for F(4x4): [`pack`] of the flipped, transposed weights.
pub fn pack_backward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cout, d.cin, super::original_backward(d, w), out)
}

/// Input gradient by F(4x4): [`run`] over `dy_pad` with the [`pack_backward`] weights, no bias,
/// no ReLU. `dx` is `h x w x cin`.
pub fn backward_data(
    d: &ConvDims,
    dy_pad: &[f32],
    upack: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    run(&d.transposed(), dy_pad, upack, None, dx, 0..d.h, scratch)
}

/// Output rows `rows` (start a multiple of 4; end a multiple of 4 and at most `h`) of a layer
/// as the kernels see it, like [`super::winograd::run`]: `inp` `(h+2) x (w+2) x n_in` with a
/// zero border, `upack` from [`pack`], `bias` (forward: + bias, ReLU) or `None` (input
/// gradient), `out` holding just the rows computed (`rows.len() x w x n_out`), `scratch` at
/// least [`scratch_len`] floats.
pub fn run(
    kernel_dims: &ConvDims,
    inp: &[f32],
    upack: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    rows: std::ops::Range<usize>,
    scratch: &mut [f32],
) {
    let (h, w, n_in, n_out) = (
        kernel_dims.h,
        kernel_dims.w,
        kernel_dims.cin,
        kernel_dims.cout,
    );
    assert!(
        applies(kernel_dims),
        "Winograd F(4x4) needs h, w in 4s and channels in 16s: {kernel_dims:?}"
    );
    assert!(
        rows.start.is_multiple_of(4) && rows.end.is_multiple_of(4) && rows.end <= h,
        "rows {rows:?}: F(4x4) bands are whole 4-row tiles of 0..{h}"
    );
    assert!(
        inp.len() >= (h + 2) * (w + 2) * n_in,
        "padded input too short"
    );
    assert!(
        upack.len() >= packed_len(n_in, n_out),
        "packed weights too short"
    );
    assert!(out.len() >= rows.len() * w * n_out, "output too short");
    assert!(
        scratch.len() >= scratch_len(kernel_dims),
        "scratch too short"
    );
    if let Some(b) = bias {
        assert!(b.len() >= n_out, "bias too short");
    }
    crate::cpu::assert_asm_ok();
    let tw = w / 4;
    let (br, bc) = band_shape(kernel_dims);
    let max_tiles = br * bc;
    let (v, m) = scratch.split_at_mut(POS * pos_stride(max_tiles, n_in));
    let (vp, mp) = (v.as_mut_ptr(), m.as_mut_ptr());
    let (ip, up, op) = (inp.as_ptr(), upack.as_ptr(), out.as_mut_ptr());
    let mut tr = Transit::new();
    static NO_SKIP: [isize; 1] = [0];
    let bands = (rows.start / 4..rows.end / 4)
        .step_by(br)
        .flat_map(|ty| (0..tw).step_by(bc).map(move |tx0| (ty, tx0)));
    for (ty, tx0) in bands {
        let nrows = br.min(rows.end / 4 - ty);
        let ncols = bc.min(tw - tx0);
        let tiles = nrows * ncols;
        let (vs, ms) = (pos_stride(tiles, n_in), pos_stride(tiles, n_out));
        // SAFETY: the asserts above bound every address: tile row ty + r reads padded rows
        // 4(ty+r) .. 4(ty+r)+5 <= h+1 and columns 4*tx0 .. 4*(tx0+ncols)+1 <= w+1; V and M
        // hold 36 x tiles x n_in / n_out floats (+ padding) within the scratch; the products
        // read U inside 36 x n_in x n_out and write M's `tiles x n_out` rows; the output rows
        // 4(ty+r) - rows.start .. +3 lie inside `out`. AVX-512 is checked by the caller.
        unsafe {
            for r in 0..nrows {
                input_tile_row_all(
                    ip,
                    w,
                    n_in,
                    ty + r,
                    tx0,
                    ncols,
                    vp.add(r * ncols * n_in),
                    vs,
                    &mut tr,
                );
            }
            // The micro-kernel tiles covering the band's rows of the products, for both block
            // widths of `channel_block_iter(n_out)` (blocks of 32 channels, a last one of 16).
            let (plan2, plan1) = (tile_plan(tiles, 2), tile_plan(tiles, 1));
            for pos in 0..POS {
                for (o0, nv) in channel_block_iter(n_out) {
                    let mut t0 = 0;
                    for &(pixels, f) in if nv == 2 { plan2.iter() } else { plan1.iter() } {
                        let args = TileArgs {
                            inp: vp.add(pos * vs + t0 * n_in),
                            in_stride: n_in * 4,
                            k: n_in,
                            nseg: 1,
                            skips: NO_SKIP.as_ptr(),
                            out: mp.add(pos * ms + t0 * n_out + o0),
                            out_stride: n_out * 4,
                            bias: std::ptr::null(),
                            accumulate: 0,
                        };
                        f(&args, up.add(pos * n_in * n_out + o0 * n_in));
                        t0 += pixels;
                    }
                }
            }
            for r in 0..nrows {
                let y = op.add(((4 * (ty + r) - rows.start) * w + 4 * tx0) * n_out);
                for g in (0..n_out).step_by(16) {
                    let mg = mp.add(r * ncols * n_out + g);
                    // forward: + bias, ReLU; input gradient: neither
                    let (output_row, bias_g): (OutputRow, *const f32) = match bias {
                        Some(b) => (kernels::output_tile_row_relu, b.as_ptr().add(g)),
                        None => (kernels::output_tile_row_plain, std::ptr::null()),
                    };
                    output_row(
                        mg,
                        ms * 4,
                        n_out * 4,
                        y.add(g),
                        w * n_out * 4,
                        ncols,
                        bias_g,
                        &mut tr,
                    );
                }
            }
        }
    }
}

/// The output transforms' signature ([`kernels::output_tile_row_relu`] and
/// `output_tile_row_plain`).
type OutputRow =
    unsafe fn(*const f32, usize, usize, *mut f32, usize, usize, *const f32, &mut Transit);

/// Input transform of `ncols` tiles of tile row `ty`, from tile `tx0` on, every channel (16 at
/// a time): `inp` is the padded input (`(h+2) x (w+2) x n` floats), `v` the first of those
/// tiles in `V` (tiles `n` floats apart), `vs` floats between positions.
///
/// # Safety
/// As [`kernels::input_tile_row`]: the 6x6 blocks of those tiles lie inside `inp`, and `v`
/// holds 36 positions of `ncols` tiles.
#[allow(clippy::too_many_arguments)]
unsafe fn input_tile_row_all(
    inp: *const f32,
    w: usize,
    n: usize,
    ty: usize,
    tx0: usize,
    ncols: usize,
    v: *mut f32,
    vs: usize,
    tr: &mut Transit,
) {
    for g in (0..n).step_by(16) {
        kernels::input_tile_row(
            inp.add((4 * ty * (w + 2) + 4 * tx0) * n + g),
            n * 4,
            (w + 2) * n * 4,
            v.add(g),
            vs * 4,
            ncols,
            tr,
        );
    }
}

type Plan = std::rc::Rc<[(usize, TileFn)]>;

/// The `(pixels, kernel)` micro-kernel tiles that cover `n` rows of a product, in order (the
/// cheapest split, as for a row of the direct convolution). Computed once per `(n, nv)` and
/// thread and cached, so the training loop allocates nothing.
fn tile_plan(n: usize, nv: usize) -> Plan {
    thread_local! {
        static PLANS: std::cell::RefCell<Vec<((usize, usize), Plan)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    PLANS.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some((_, p)) = cache.iter().find(|(k, _)| *k == (n, nv)) {
            return p.clone();
        }
        let tiles = conv::tiles(nv);
        let p: Plan = row_tile_widths(n, tiles)
            .into_iter()
            .map(|px| {
                let t = tiles
                    .iter()
                    .find(|t| t.pixels == px)
                    .expect("width from the table");
                (px, t.kernel)
            })
            .collect();
        cache.push(((n, nv), p.clone()));
        p
    })
}

/// Tiles per band of the weight gradient ([`backward_weights`]): conv2 two tile rows, conv3
/// four. Measured as [`BAND_TILES`]: 24 and 32 tiles tied; 8 and 16 were slower on conv3
/// (`dU`, 1.15 MiB, is re-read and re-written once per band), 48 slower on both.
pub const WGRAD_BAND_TILES: usize = 32;

/// Tile rows per band of the weight gradient.
fn wgrad_band_rows(kernel_dims: &ConvDims) -> usize {
    WGRAD_BAND_TILES
        .div_ceil(kernel_dims.w / 4)
        .clamp(1, kernel_dims.h / 4)
}

/// Floats between positions of the accumulated `dU[pos][cin][cout]`: padded by a cache line
/// like [`pos_stride`].
fn du_stride(cin: usize, cout: usize) -> usize {
    cin * cout + 16
}

/// Floats of scratch [`backward_weights`] needs for a layer: a band's `V` and `dM` and the
/// accumulated `dU`.
pub fn wgrad_scratch_len(d: &ConvDims) -> usize {
    if !applies(d) {
        return 0;
    }
    let tiles = wgrad_band_rows(d) * (d.w / 4);
    POS * (pos_stride(tiles, d.cin) + pos_stride(tiles, d.cout) + du_stride(d.cin, d.cout))
}

/// The weight-gradient micro-kernel for a slab starting `rem` channels before the end of
/// `cout`: `(R, NV, kernel)`; `R` divides every `cin` that is a multiple of 16.
fn wgrad_slab(rem: usize) -> (usize, usize, unsafe fn(&wgrad_kernels::Tile)) {
    match rem {
        64.. => (4, 4, wgrad_kernels::wgrad_4x4),
        48 => (8, 3, wgrad_kernels::wgrad_8x3),
        32 => (8, 2, wgrad_kernels::wgrad_8x2),
        _ => (16, 1, wgrad_kernels::wgrad_16x1),
    }
}

/// Weight and bias gradients of one sample by Winograd F(4x4, 3x3), *overwritten*: same
/// contract as [`super::winograd::backward_weights`] (`dw_kc[ky][kx][ci][co]`, `db[co]`;
/// `x_pad` `(h+2) x (w+2) x cin`, `dy_pad` `(h+2) x (w+2) x cout`, interior read), for a layer
/// where [`applies`]; `scratch` at least [`wgrad_scratch_len`] floats.
///
/// The adjoint of the forward `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`: per band of tiles,
/// 1. `V[pos][t][ci] = B^T d_t B` ([`kernels::input_tile_row`], as in the forward pass) and
///    `dM[pos][t][co] = A dY_t A^T` ([`kernels::grad_tile_row`], which also sums `db`);
/// 2. 36 products `dU[pos] += V[pos]^T dM[pos]` (`cin x tiles` by `tiles x cout`) on the direct
///    weight gradient's micro-kernels ([`crate::kernels::conv_wgrad`]) with tiles as "pixels";
///
/// then `dw_kc = G^T dU G` ([`kernels::weight_grad_transform`]).
pub fn backward_weights(
    d: &ConvDims,
    x_pad: &[f32],
    dy_pad: &[f32],
    dw_kc: &mut [f32],
    db: &mut [f32],
    scratch: &mut [f32],
) {
    let ConvDims { h, w, cin, cout } = *d;
    assert!(
        applies(d),
        "Winograd F(4x4) needs h, w in 4s and channels in 16s: {d:?}"
    );
    assert!(x_pad.len() >= d.in_pad_len(), "x_pad too short");
    assert!(dy_pad.len() >= d.out_pad_len(), "dy_pad too short");
    assert!(dw_kc.len() >= 9 * cin * cout, "dw_kc too short");
    assert!(db.len() >= cout, "db too short");
    assert!(scratch.len() >= wgrad_scratch_len(d), "scratch too short");
    crate::cpu::assert_asm_ok();
    db[..cout].fill(0.0);
    let (tw, wp) = (w / 4, w + 2);
    let tr_rows = wgrad_band_rows(d);
    let max_tiles = tr_rows * tw;
    let (v, rest) = scratch.split_at_mut(POS * pos_stride(max_tiles, cin));
    let (m, du) = rest.split_at_mut(POS * pos_stride(max_tiles, cout));
    let us = du_stride(cin, cout);
    let (vp, mp, up) = (v.as_mut_ptr(), m.as_mut_ptr(), du.as_mut_ptr());
    let (xp, dyp, dbp) = (x_pad.as_ptr(), dy_pad.as_ptr(), db.as_mut_ptr());
    let mut tr = Transit::new();
    let mut ty = 0;
    while ty < h / 4 {
        let nrows = tr_rows.min(h / 4 - ty);
        let tiles = nrows * tw;
        let (vs, ms) = (pos_stride(tiles, cin), pos_stride(tiles, cout));
        // SAFETY: tile row ty + r reads padded input rows 4(ty+r) .. +5 <= h+1, columns
        // 0 .. w+1, and output-gradient rows 4(ty+r)+1 .. +4 <= h, columns 1 .. w (interior);
        // V and dM hold 36 x tiles x cin / cout floats (+ padding) inside the scratch; the
        // products read V[pos] rows j0 .. j0+R <= cin and dM[pos] channels oc0 .. oc0+16NV
        // <= cout of the band's tiles and write dU[pos][j0..j0+R][oc0..] inside the scratch;
        // db has cout floats. AVX-512 is checked by the caller.
        unsafe {
            for r in 0..nrows {
                input_tile_row_all(xp, w, cin, ty + r, 0, tw, vp.add(r * tw * cin), vs, &mut tr);
                for g in (0..cout).step_by(16) {
                    kernels::grad_tile_row(
                        dyp.add(((4 * (ty + r) + 1) * wp + 1) * cout + g),
                        cout * 4,
                        wp * cout * 4,
                        mp.add(r * tw * cout + g),
                        ms * 4,
                        tw,
                        dbp.add(g),
                        &mut tr,
                    );
                }
            }
            for pos in 0..POS {
                let mut oc0 = 0;
                while oc0 < cout {
                    let (r, nv, run) = wgrad_slab(cout - oc0);
                    for j0 in (0..cin).step_by(r) {
                        let t = wgrad_kernels::Tile {
                            x: vp.add(pos * vs + j0),
                            dy: mp.add(pos * ms + oc0),
                            c: up.add(pos * us + j0 * cout + oc0),
                            ldc: cout,
                            rows: 1,
                            cols: tiles,
                            x_px: cin,
                            dy_px: cout,
                            x_row: tiles * cin,
                            dy_row: tiles * cout,
                            accumulate: ty > 0,
                            db: std::ptr::null_mut(),
                        };
                        run(&t);
                    }
                    oc0 += nv * 16;
                }
            }
        }
        ty += nrows;
    }
    // SAFETY: dU holds 36 positions of cin x cout floats, us apart; dw_kc 9 taps of cin x cout.
    unsafe {
        kernels::weight_grad_transform(
            up,
            us * 4,
            dw_kc.as_mut_ptr(),
            cin * cout * 4,
            cin * cout / 16,
            &mut tr,
        )
    };
}

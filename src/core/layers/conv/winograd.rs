//! Winograd F(2x2, 3x3) driver for the 3x3 convolutions whose output height and width are even
//! and whose channel counts are multiples of 16 (conv2 and conv3 of the network: forward, input
//! gradient and, through the adjoint transforms, weight gradient: [`backward_weights`]). Same
//! results as the direct convolution up to rounding, with 16 instead of 36 multiplies per 2x2
//! output block: the direct kernels already run near the FMA peak, so
//! doing fewer FMAs is the only way left to go faster.
//!
//! A layer (as the kernels see it: `n_in` channels in, `n_out` out, output `h x w`) is cut into
//! 2x2 output tiles, `w/2` per tile row; tiles are processed in *bands* of whole tile rows
//! (about 24+ tiles, so the matrix products have enough rows). Per band, with scratch `V`, `M`:
//!
//! 1. input transform (asm, [`crate::kernels::winograd::input_tile_row`]):
//!    `V[pos][tile][n_in] = B^T d B` of each tile's 4x4 padded-input block;
//! 2. 16 matrix products `M[pos] = V[pos] U[pos]` (`tiles x n_in` by `n_in x n_out`) on the
//!    direct convolution's register-blocked micro-kernels (one segment of `k = n_in` steps,
//!    tiles as "pixels"), `U` packed by [`pack`];
//! 3. output transform (asm, `output_tile_row_*`): `y = A^T M A` (+ bias, ReLU in forward).
//!
//! Scratch per band: `16 * tiles * (n_in + n_out)` floats ([`scratch_len`]), from the caller's
//! arena, plus a cache line per position (see `pos_stride`); for the network's layers at most
//! 386 KiB, so a band's `V` and `M` stay in L2:
//!
//! ```
//! use catdog_core::layers::conv::winograd::scratch_len;
//! let s = catdog_core::config::Hyper::default().shapes().unwrap();
//! let most = s.conv.iter().map(|d| scratch_len(d) * 4).max().unwrap();
//! assert_eq!(most, 386 << 10);
//! ```

use super::channel_block_iter;
use super::row_tile_widths;
use crate::config::ConvDims;
use crate::kernels::conv::{self, TileArgs, TileFn};
use crate::kernels::conv_wgrad as wgrad_kernels;
use crate::kernels::winograd as winograd_kernels;

/// Tiles per band the drivers aim for (the micro-kernels' best tiles are 10-14 rows of the
/// product, so 24+ tiles keep them in their fast range).
const BAND_TILES: usize = 24;

/// Whether the Winograd path can run a layer (as the kernels see it): even output sides (whole
/// 2x2 tiles), channel counts in whole 16-lane groups.
pub fn applies(kernel_dims: &ConvDims) -> bool {
    kernel_dims.h > 0
        && kernel_dims.w > 0
        && kernel_dims.h.is_multiple_of(2)
        && kernel_dims.w.is_multiple_of(2)
        && kernel_dims.cin.is_multiple_of(16)
        && kernel_dims.cout.is_multiple_of(16)
}

/// A band's shape in tiles, `(tile rows, tiles per row)`: whole tile rows up to about
/// [`BAND_TILES`] tiles when a row is short, else a piece of one row (rows split evenly).
fn band_shape(kernel_dims: &ConvDims) -> (usize, usize) {
    let tw = kernel_dims.w / 2;
    if tw >= BAND_TILES {
        let pieces = tw.div_ceil(BAND_TILES);
        (1, tw.div_ceil(pieces))
    } else {
        (BAND_TILES.div_ceil(tw).clamp(1, kernel_dims.h / 2), tw)
    }
}

/// Floats of scratch [`run`] needs for a layer (as the kernels see it).
pub fn scratch_len(kernel_dims: &ConvDims) -> usize {
    if !applies(kernel_dims) {
        return 0;
    }
    let (br, bc) = band_shape(kernel_dims);
    let tiles = br * bc;
    16 * (pos_stride(tiles, kernel_dims.cin) + pos_stride(tiles, kernel_dims.cout))
}

/// Floats between positions of `V` or `M` for a band of `tiles` tiles of `n` channels: the
/// tiles, plus one cache line so that the 16 positions of a tile (read or written together by
/// the transforms) do not all fall into the same L1 set, which they did with the network's
/// power-of-two strides (4 and 8 KiB): the forward pass of conv2 ran markedly slower
/// (re-measure with `CONV_BENCH_MANUAL_ONLY=1 cargo bench --bench conv`).
fn pos_stride(tiles: usize, n: usize) -> usize {
    tiles * n + 16
}

/// Floats of the packed (transformed) weights: 16 positions x `n_in x n_out`.
pub fn packed_len(n_in: usize, n_out: usize) -> usize {
    16 * n_in * n_out
}

/// Transforms and packs the weights of a layer that reads `n_in` channels and writes `n_out`
/// (as the kernels see it); `f(o, ky, kx, i)` gives the 3x3 filter of output `o`, input `i`.
/// Layout: for each position `pos` (16), starting at float `pos * n_in * n_out`, the direct
/// kernels' packing of a 1x1 convolution: for each output block `(o0, NV)` of
/// [`super::channel_block_iter`] (at `o0 * n_in`), `n_in` steps of `NV*16`
/// floats, `U[pos][i][o]` with the block's output channels innermost. `U = G g G^T` is computed in f64 and rounded once.
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
    // G applied to three values (a column or a row of g): [a, (a+b+c)/2, (a-b+c)/2, c].
    fn g3(a: f64, b: f64, c: f64) -> [f64; 4] {
        [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
    }
    let plane = n_in * n_out;
    for (o0, nv) in channel_block_iter(n_out) {
        let nb = nv * 16;
        for i in 0..n_in {
            // One step (input channel i, the block's nb output channels) of all 16 positions,
            // gathered here and then written as 16 contiguous runs: writing each float straight
            // to its position's plane (planes 8-32 KiB apart, the same L1 set) was slower.
            let mut step = [[0.0f32; 32]; 16];
            #[allow(clippy::needless_range_loop)] // c is the output channel as well
            for c in 0..nb {
                let o = o0 + c;
                let g = |ky, kx| f(o, ky, kx, i) as f64;
                // gg = G g, column by column (4x3), then u = gg G^T, row by row (4x4).
                let cols: [[f64; 4]; 3] =
                    std::array::from_fn(|kx| g3(g(0, kx), g(1, kx), g(2, kx)));
                for r in 0..4 {
                    let u = g3(cols[0][r], cols[1][r], cols[2][r]);
                    for (s, &v) in u.iter().enumerate() {
                        step[r * 4 + s][c] = v as f32;
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

/// [`super::ConvPlan::pack_forward`] for Winograd: [`pack`] of the original-layout weights.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cin, d.cout, super::original_forward(d, w), out)
}

/// [`super::ConvPlan::pack_backward`] for Winograd: [`pack`] of the flipped, transposed weights.
pub fn pack_backward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cout, d.cin, super::original_backward(d, w), out)
}

/// Input gradient by Winograd: [`run`] over `dy_pad` with the [`pack_backward`] weights, no bias,
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

/// Output rows `rows` (even start; even end or `h`, which is even) of a layer as the kernels see
/// it, like the direct `forward_direct`: `inp` `(h+2) x (w+2) x n_in` with a zero border, `upack` from
/// [`pack`], `bias` (forward: + bias, ReLU) or `None`, `out` holding just the rows computed
/// (`rows.len() x w x n_out`), `scratch` at least [`scratch_len`] floats.
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
        "Winograd path needs even h, w and channels in 16s: {kernel_dims:?}"
    );
    assert!(
        rows.start.is_multiple_of(2) && rows.end.is_multiple_of(2) && rows.end <= h,
        "rows {rows:?}: Winograd bands are whole 2-row tiles of 0..{h}"
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
    let tw = w / 2;
    let (br, bc) = band_shape(kernel_dims);
    let max_tiles = br * bc;
    let (v, m) = scratch.split_at_mut(16 * pos_stride(max_tiles, n_in));
    let (vp, mp) = (v.as_mut_ptr(), m.as_mut_ptr());
    let (ip, up, op) = (inp.as_ptr(), upack.as_ptr(), out.as_mut_ptr());
    static NO_SKIP: [isize; 1] = [0];
    let bands = (rows.start / 2..rows.end / 2)
        .step_by(br)
        .flat_map(|ty| (0..tw).step_by(bc).map(move |tx0| (ty, tx0)));
    for (ty, tx0) in bands {
        let nrows = br.min(rows.end / 2 - ty);
        let ncols = bc.min(tw - tx0);
        let tiles = nrows * ncols;
        let (vs, ms) = (pos_stride(tiles, n_in), pos_stride(tiles, n_out));
        // SAFETY: the asserts above bound every address: tile row ty + r reads padded rows
        // 2(ty+r) .. 2(ty+r)+3 <= h+1 and columns 2*tx0 .. 2*(tx0+ncols)+1 <= w+1; V and M
        // hold 16 x tiles x n_in / n_out floats within the scratch; the products read U inside 16 x n_in x n_out and
        // write M's `tiles x n_out` rows; the output rows 2(ty+r) - rows.start .. +1 lie inside
        // `out`. AVX-512 is checked by the caller (Path::Asm).
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
                );
            }
            // The micro-kernel tiles covering the band's rows of the products, for both block
            // widths of `channel_blocks(n_out)` (blocks of 32 channels, a last one of 16).
            let (plan2, plan1) = (tile_plan(tiles, 2), tile_plan(tiles, 1));
            for pos in 0..16 {
                let mut o0 = 0;
                while o0 < n_out {
                    let nv = if n_out - o0 >= 32 { 2 } else { 1 };
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
                    o0 += nv * 16;
                }
            }
            for r in 0..nrows {
                let y = op.add(((2 * (ty + r) - rows.start) * w + 2 * tx0) * n_out);
                for g in (0..n_out).step_by(16) {
                    let mg = mp.add(r * ncols * n_out + g);
                    // forward: + bias, ReLU; input gradient: neither
                    let (output_row, bias_g): (OutputRow, *const f32) = match bias {
                        Some(b) => (winograd_kernels::output_tile_row_relu, b.as_ptr().add(g)),
                        None => (winograd_kernels::output_tile_row_plain, std::ptr::null()),
                    };
                    output_row(
                        mg,
                        ms * 4,
                        n_out * 4,
                        y.add(g),
                        w * n_out * 4,
                        ncols,
                        bias_g,
                    );
                }
            }
        }
    }
}

/// The output transforms' signature ([`winograd_kernels::output_tile_row_relu`] and
/// `output_tile_row_plain`).
type OutputRow = unsafe fn(*const f32, usize, usize, *mut f32, usize, usize, *const f32);

/// Input transform of `ncols` tiles of tile row `ty`, from tile `tx0` on, every channel (16 at
/// a time): `inp` is the padded input (`(h+2) x (w+2) x n` floats), `v` the first of those
/// tiles in `V` (tiles `n` floats apart), `vs` floats between positions.
///
/// # Safety
/// As [`winograd_kernels::input_tile_row`]: the 4x4 blocks of those tiles lie inside `inp`, and `v` holds 16
/// positions of `ncols` tiles.
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
) {
    for g in (0..n).step_by(16) {
        winograd_kernels::input_tile_row(
            inp.add((2 * ty * (w + 2) + 2 * tx0) * n + g),
            n * 4,
            (w + 2) * n * 4,
            v.add(g),
            vs * 4,
            ncols,
        );
    }
}

type Plan = std::rc::Rc<[(usize, TileFn)]>;

/// The `(pixels, kernel)` micro-kernel tiles that cover `n` rows of a product, in order (the
/// cheapest split, as for a row of the direct convolution). The split for each `(n, nv)` is
/// computed once per thread and cached, so the training loop allocates nothing.
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

/// Tiles per band of the weight gradient ([`backward_weights`]). Measured (one sample, one
/// thread, `CONV_WGRAD_QUICK=1 cargo bench --bench conv_wgrad`): 32, 64 and 128 tiles within
/// noise for conv2; for conv3 128 tiles was slower (its band's `V` and `dM`, 1.5 MiB, no
/// longer stay in L2 beside `dU`). The slab
/// kernels were within noise too (64-channel `wgrad_4x4` slabs against all-`wgrad_8x2`, and
/// against 48-channel `wgrad_8x3` slabs with tails). About a quarter of the time is the two
/// transforms, bound by writing `V` and `dM` (16 floats per tile and channel) to L2.
/// Prefetching the next band's input rows towards L2 (as the direct driver does) gained
/// nothing in the trainer (3 alternated runs), so there is none.
const WGRAD_BAND_TILES: usize = 64;

/// Tile rows per band of the weight gradient.
fn wgrad_band_rows(kernel_dims: &ConvDims) -> usize {
    WGRAD_BAND_TILES
        .div_ceil(kernel_dims.w / 2)
        .clamp(1, kernel_dims.h / 2)
}

/// Floats between positions of the accumulated `dU[pos][cin][cout]`: padded by a cache line
/// like [`pos_stride`] (the 16 positions of a group are read together by the final transform).
fn du_stride(cin: usize, cout: usize) -> usize {
    cin * cout + 16
}

/// Floats of scratch [`backward_weights`] needs for a layer: a band's `V` and `dM` and the
/// accumulated `dU`.
pub fn wgrad_scratch_len(d: &ConvDims) -> usize {
    if !applies(d) {
        return 0;
    }
    let tiles = wgrad_band_rows(d) * (d.w / 2);
    16 * (pos_stride(tiles, d.cin) + pos_stride(tiles, d.cout) + du_stride(d.cin, d.cout))
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

/// Weight and bias gradients of one sample by Winograd F(2x2, 3x3), *overwritten*: same
/// contract as [`super::ConvPlan::backward_weights`] (`dw_kc[ky][kx][ci][co]`, `db[co]`),
/// for a layer where [`applies`]; `scratch` at least [`wgrad_scratch_len`] floats.
///
/// The adjoint of the forward `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`: per band of tiles,
/// 1. `V[pos][t][ci] = B^T d_t B` ([`winograd_kernels::input_tile_row`], as in the forward pass) and
///    `dM[pos][t][co] = A dY_t A^T` ([`winograd_kernels::grad_tile_row`], which also sums `db`);
/// 2. 16 products `dU[pos] += V[pos]^T dM[pos]` (`cin x tiles` by `tiles x cout`) on the direct
///    weight gradient's micro-kernels ([`crate::kernels::conv_wgrad`]) with tiles as "pixels";
///
/// then `dw_kc = G^T dU G` ([`winograd_kernels::weight_grad_transform`]). 16 instead of 36 multiplies per
/// 2x2 block and channel pair, as in the forward pass.
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
        "Winograd path needs even h, w and channels in 16s: {d:?}"
    );
    assert!(x_pad.len() >= d.in_pad_len(), "x_pad too short");
    assert!(dy_pad.len() >= d.out_pad_len(), "dy_pad too short");
    assert!(dw_kc.len() >= 9 * cin * cout, "dw_kc too short");
    assert!(db.len() >= cout, "db too short");
    assert!(scratch.len() >= wgrad_scratch_len(d), "scratch too short");
    crate::cpu::assert_asm_ok();
    db[..cout].fill(0.0);
    let (tw, wp) = (w / 2, w + 2);
    let tr = wgrad_band_rows(d);
    let max_tiles = tr * tw;
    let (v, rest) = scratch.split_at_mut(16 * pos_stride(max_tiles, cin));
    let (m, du) = rest.split_at_mut(16 * pos_stride(max_tiles, cout));
    let us = du_stride(cin, cout);
    let (vp, mp, up) = (v.as_mut_ptr(), m.as_mut_ptr(), du.as_mut_ptr());
    let (xp, dyp, dbp) = (x_pad.as_ptr(), dy_pad.as_ptr(), db.as_mut_ptr());
    let mut ty = 0;
    while ty < h / 2 {
        let nrows = tr.min(h / 2 - ty);
        let tiles = nrows * tw;
        let (vs, ms) = (pos_stride(tiles, cin), pos_stride(tiles, cout));
        // SAFETY: tile row ty + r reads padded input rows 2(ty+r) .. +3 <= h+1, columns
        // 0 .. w+1, and output-gradient rows 2(ty+r)+1 .. +2 <= h, columns 1 .. w (interior);
        // V and dM hold 16 x tiles x cin / cout floats (+ padding) inside the scratch; the
        // products read V[pos] rows j0 .. j0+R <= cin and dM[pos] channels oc0 .. oc0+16NV
        // <= cout of the band's tiles and write dU[pos][j0..j0+R][oc0..] inside the scratch;
        // db has cout floats. AVX-512 is checked by the caller (Path::Asm).
        unsafe {
            for r in 0..nrows {
                input_tile_row_all(xp, w, cin, ty + r, 0, tw, vp.add(r * tw * cin), vs);
                for g in (0..cout).step_by(16) {
                    winograd_kernels::grad_tile_row(
                        dyp.add(((2 * (ty + r) + 1) * wp + 1) * cout + g),
                        cout * 4,
                        wp * cout * 4,
                        mp.add(r * tw * cout + g),
                        ms * 4,
                        tw,
                        dbp.add(g),
                    );
                }
            }
            for pos in 0..16 {
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
    // SAFETY: dU holds 16 positions of cin x cout floats, us apart; dw_kc 9 taps of cin x cout.
    unsafe {
        winograd_kernels::weight_grad_transform(
            up,
            us * 4,
            dw_kc.as_mut_ptr(),
            cin * cout * 4,
            cin * cout / 16,
        )
    };
}

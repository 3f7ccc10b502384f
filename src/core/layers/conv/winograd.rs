//! Winograd F(m x m, 3x3) for the 3x3 convolutions whose output sides are multiples of `m` and
//! whose channel counts are multiples of 16 (conv2 and conv3 of the network): forward, input
//! gradient and, through the adjoint transforms, weight gradient ([`weight_grad`]). The
//! direct kernels already run near the FMA peak, so doing fewer multiplies is the only way left
//! to go faster. Two tile sizes share this one driver, each a [`TileSize`] (its transforms are
//! its own `asm!` kernels; everything else is written once here):
//!
//! - [`Winograd2`], F(2x2, 3x3): 4x4 input tiles, 16 positions, 16 instead of 36 multiplies per 2x2
//!   output block ([`crate::kernels::winograd2`]; `asm_notes/winograd2.md`);
//! - [`Winograd4`], F(4x4, 3x3): 6x6 input tiles, 36 positions, 36 instead of 144 multiplies per 4x4
//!   block, at the price of larger transforms and more rounding ([`crate::kernels::winograd4`];
//!   `asm_notes/winograd4.md`). The trainer's default where it applies.
//!
//! A layer (as the kernels see it: `n_in` channels in, `n_out` out, output `h x w`) is cut into
//! m x m output tiles, `w/m` per tile row; tiles are processed in *bands* of whole tile rows
//! (about [`TileSize::BAND_TILES`] tiles, so that the matrix products have enough rows and a
//! band's transformed tiles stay in L2). Per band, with scratch `V`, `M`:
//!
//! 1. input transform (asm, `input_tile_row`): `V[pos][tile][n_in] = B^T d B` of each tile's
//!    (m+2) x (m+2) padded-input block;
//! 2. (m+2)^2 matrix products `M[pos] = V[pos] U[pos]` (`tiles x n_in` by `n_in x n_out`) on the
//!    direct convolution's register-blocked micro-kernels (one segment of `k = n_in` steps,
//!    tiles as "pixels"), `U` packed by [`pack`];
//! 3. output transform (asm, `output_tile_row_*`): `y = A^T M A` (+ bias, ReLU in forward).
//!
//! F(4x4)'s forward can also pool ([`run_pool`], `ConvPlan::forward_pool`; inference only, see
//! `ConvPlan::fused_in_training`): a 4x4 output tile holds four whole 2x2 pooling windows, so
//! step 3 (`output_tile_row_pool*`) pools them in registers after bias and ReLU and writes only
//! the pooled values (and argmax codes), the same bits as [`run`] then the pool kernels. Both
//! share one band loop (`bands`).
//!
//! Scratch per band: `positions * tiles * (n_in + n_out)` floats ([`scratch_len`]), from the
//! caller's arena, plus a cache line per position (see `pos_stride`); for the network's layers
//! at most 386 KiB (F(2x2)) and 436.5 KiB (F(4x4), conv3). The weight gradient also holds `dU`,
//! the positions of `cin x cout` (F(4x4), conv3: 1.15 MiB):
//!
//! ```
//! use catdog_core::layers::conv::winograd::{scratch_len, weight_grad_scratch_len, Winograd2, Winograd4};
//! let s = catdog_core::config::Hyper::default().shapes().unwrap();
//! let most = |f: fn(&catdog_core::config::ConvDims) -> usize| {
//!     s.conv.iter().map(|d| f(d) * 4).max().unwrap()
//! };
//! assert_eq!(most(scratch_len::<Winograd2>), 386 << 10);
//! assert_eq!(most(scratch_len::<Winograd4>), 446_976);
//! assert_eq!(most(weight_grad_scratch_len::<Winograd4>), 2_071_296);
//! ```
//!
//! # Accuracy of F(4x4)
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

use crate::cpu::Avx512;

use super::channel_block_iter;
use super::tile_plan;
use super::{Forward, InputGrads, PoolOut, WeightGrads};
use crate::config::ConvDims;
use crate::kernels::microkernel::TileArgs;
use crate::kernels::weight_grad as weight_grad_kernels;
use crate::kernels::{winograd2 as k2, winograd4 as k4};

/// One Winograd tile size: its output tile side, its measured band sizes, its weight transform
/// `G` and its `asm!` transforms. The kernels' contracts are those of
/// [`crate::kernels::winograd2`] (F(2x2)) and [`crate::kernels::winograd4`] (F(4x4)), whose
/// 36-vector tiles go through a staging area in L1 ([`TileSize::Transit`]).
pub trait TileSize {
    /// `m`: the output tile side.
    const M: usize;
    /// Positions of a transformed tile, `(m+2)^2`.
    const POS: usize = (Self::M + 2) * (Self::M + 2);
    /// Tiles per band the forward and input-gradient passes aim for.
    const BAND_TILES: usize;
    /// Tiles per band instead of `BAND_TILES` for a layer whose transformed weights take at
    /// most [`SMALL_WEIGHTS`] bytes (see `band_shape`).
    const SMALL_BAND_TILES: usize;
    /// Tiles per band of the weight gradient.
    const WEIGHT_GRAD_BAND_TILES: usize;
    /// The kernels' staging area (`()` when the tile fits in registers).
    type Transit;
    fn transit() -> Self::Transit;
    /// `G` applied to three values (a column or a row of a 3x3 filter), in f64: the first
    /// `m+2` entries.
    fn g(a: f64, b: f64, c: f64) -> [f64; 6];
    /// `input_tile_row`: `V = B^T d B`, from the image to the transformed side.
    ///
    /// # Safety
    /// The kernel's contract.
    unsafe fn input_tile_row(t: Transform, tr: &mut Self::Transit);
    /// `output_tile_row_relu` (with `bias`) or `output_tile_row_plain` (`bias` null):
    /// `y = A^T M A`, from the transformed side to the image.
    ///
    /// # Safety
    /// The kernel's contract.
    unsafe fn output_tile_row(t: Transform, bias: *const f32, tr: &mut Self::Transit);
    /// `grad_tile_row`: `dM = A dY A^T`, from the image to the transformed side, and the bias
    /// sums into `db`.
    ///
    /// # Safety
    /// The kernel's contract.
    unsafe fn grad_tile_row(t: Transform, db: *mut f32, tr: &mut Self::Transit);
    /// `weight_grad_transform`: `dw = G^T dU G`.
    ///
    /// # Safety
    /// The kernel's contract.
    unsafe fn weight_grad_transform(t: Transform, tr: &mut Self::Transit);
}

/// One call of a transform kernel: read `src`, write `dst`; strides in bytes, on the image
/// side pixels `pix` and rows `row` apart, on the transformed side positions `pos` apart;
/// `tiles` tiles of 16 channels. (The weight transform reads `dU` positions `pos` apart and
/// writes taps `pix` apart, `tiles` groups of 16.)
#[derive(Clone, Copy, Debug)]
pub struct Transform {
    pub src: *const f32,
    pub dst: *mut f32,
    pub pix: usize,
    pub row: usize,
    pub pos: usize,
    pub tiles: usize,
}

/// Winograd F(2x2, 3x3).
#[derive(Clone, Copy, Debug)]
pub struct Winograd2;

/// Winograd F(4x4, 3x3).
#[derive(Clone, Copy, Debug)]
pub struct Winograd4;

impl TileSize for Winograd2 {
    const M: usize = 2;
    /// Measured: 24+ tiles keep the micro-kernels in their fast range (10-14 rows of the
    /// product).
    const BAND_TILES: usize = 24;
    /// Not measured apart: as `BAND_TILES`.
    const SMALL_BAND_TILES: usize = 24;
    /// Measured (one sample, one thread, `WEIGHT_GRAD_QUICK=1 cargo bench --bench weight_grad`):
    /// 32, 64 and 128 tiles within noise for conv2; for conv3 128 tiles was slower (its band's
    /// `V` and `dM`, 1.5 MiB, no longer stay in L2 beside `dU`). The slab kernels were within
    /// noise too (64-channel `weight_grad_4x4` slabs against all-`weight_grad_8x2`, and against 48-channel
    /// `weight_grad_8x3` slabs with tails). About a quarter of the time is the two transforms, bound
    /// by writing `V` and `dM` (16 floats per tile and channel) to L2. Prefetching the next
    /// band's input rows towards L2 (as the direct driver does) gained nothing in the trainer
    /// (3 alternated runs), so there is none.
    const WEIGHT_GRAD_BAND_TILES: usize = 64;
    type Transit = ();
    fn transit() {}
    /// `[a, (a+b+c)/2, (a-b+c)/2, c]`.
    fn g(a: f64, b: f64, c: f64) -> [f64; 6] {
        [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c, 0.0, 0.0]
    }
    unsafe fn input_tile_row(t: Transform, _: &mut ()) {
        k2::input_tile_row(t.src, t.pix, t.row, t.dst, t.pos, t.tiles)
    }
    unsafe fn output_tile_row(t: Transform, bias: *const f32, _: &mut ()) {
        let f = if bias.is_null() {
            k2::output_tile_row_plain
        } else {
            k2::output_tile_row_relu
        };
        f(t.src, t.pos, t.pix, t.dst, t.row, t.tiles, bias)
    }
    unsafe fn grad_tile_row(t: Transform, db: *mut f32, _: &mut ()) {
        k2::grad_tile_row(t.src, t.pix, t.row, t.dst, t.pos, t.tiles, db)
    }
    unsafe fn weight_grad_transform(t: Transform, _: &mut ()) {
        k2::weight_grad_transform(t.src, t.pos, t.dst, t.pix, t.tiles)
    }
}

impl TileSize for Winograd4 {
    const M: usize = 4;
    /// Conv2 one tile row of 16, conv3 two rows of 8. Band sizes from 8 to 48 tiles measured
    /// within a few percent of each other, 16 best or tied on all four passes
    /// (benches/HISTORY.md, "Tuning constants in the code"); 16 also keeps the band's `V` and
    /// `M` small (conv3: 437 KiB).
    const BAND_TILES: usize = 16;
    /// Conv2 (transformed weights 288 KiB): half a tile row. Weights that stay in L2 anyway
    /// leave nothing to gain from large bands, and smaller bands keep `V` and `M` closer to L1:
    /// conv2's forward with its pool and its input gradient ran faster at 8 tiles than at 16,
    /// while conv3 did not (benches/HISTORY.md, "Tuning constants in the code").
    const SMALL_BAND_TILES: usize = 8;
    /// Conv2 two tile rows, conv3 four. Measured as `BAND_TILES`: 24 and 32 tiles tied; 8 and
    /// 16 were slower on conv3 (`dU`, 1.15 MiB, is re-read and re-written once per band), 48
    /// slower on both.
    const WEIGHT_GRAD_BAND_TILES: usize = 32;
    type Transit = k4::Transit;
    fn transit() -> k4::Transit {
        k4::Transit::new()
    }
    /// `[a/4, -(a+b+c)/6, -(a-b+c)/6, (a+2b+4c)/24, (a-2b+4c)/24, c]`.
    fn g(a: f64, b: f64, c: f64) -> [f64; 6] {
        [
            a / 4.0,
            -(a + b + c) / 6.0,
            -(a - b + c) / 6.0,
            (a + 2.0 * b + 4.0 * c) / 24.0,
            (a - 2.0 * b + 4.0 * c) / 24.0,
            c,
        ]
    }
    unsafe fn input_tile_row(t: Transform, tr: &mut k4::Transit) {
        k4::input_tile_row(t.src, t.pix, t.row, t.dst, t.pos, t.tiles, tr)
    }
    unsafe fn output_tile_row(t: Transform, bias: *const f32, tr: &mut k4::Transit) {
        let f = if bias.is_null() {
            k4::output_tile_row_plain
        } else {
            k4::output_tile_row_relu
        };
        f(t.src, t.pos, t.pix, t.dst, t.row, t.tiles, bias, tr)
    }
    unsafe fn grad_tile_row(t: Transform, db: *mut f32, tr: &mut k4::Transit) {
        k4::grad_tile_row(t.src, t.pix, t.row, t.dst, t.pos, t.tiles, db, tr)
    }
    unsafe fn weight_grad_transform(t: Transform, tr: &mut k4::Transit) {
        k4::weight_grad_transform(t.src, t.pos, t.dst, t.pix, t.tiles, tr)
    }
}

/// Whether tile size `T` can run a layer (as the kernels see it): output sides multiples of
/// `m` (whole tiles), channel counts in whole 16-lane groups.
pub fn applies<T: TileSize>(kernel_dims: &ConvDims) -> bool {
    let ConvDims { h, w, cin, cout } = *kernel_dims;
    h > 0
        && w > 0
        && h.is_multiple_of(T::M)
        && w.is_multiple_of(T::M)
        && cin > 0
        && cout > 0
        && cin.is_multiple_of(16)
        && cout.is_multiple_of(16)
}

/// The largest transformed weights (bytes) that take [`TileSize::SMALL_BAND_TILES`]: half the
/// 1 MiB L2 of the machine the sizes were measured on (benches/HISTORY.md). Such weights stay in L2 from band to band
/// whatever the band's size, so smaller bands only gain (their `V` and `M` stay closer to L1);
/// larger ones (conv3's 1.2 MiB) come from L3 once per band, so fewer, larger bands read them
/// less often.
pub const SMALL_WEIGHTS: usize = 512 << 10;

/// A band's shape in tiles, `(tile rows, tiles per row)`: whole tile rows up to about
/// `T::BAND_TILES` tiles (`T::SMALL_BAND_TILES` where the layer's transformed weights take at
/// most [`SMALL_WEIGHTS`] bytes) when a row is short, else a piece of one row (rows split
/// evenly).
fn band_shape<T: TileSize>(kernel_dims: &ConvDims) -> (usize, usize) {
    let small = packed_len::<T>(kernel_dims.cin, kernel_dims.cout) * 4 <= SMALL_WEIGHTS;
    let aim = if small {
        T::SMALL_BAND_TILES
    } else {
        T::BAND_TILES
    };
    let tw = kernel_dims.w / T::M;
    if tw >= aim {
        let pieces = tw.div_ceil(aim);
        (1, tw.div_ceil(pieces))
    } else {
        let rows = aim.div_ceil(tw);
        (rows.clamp(1, kernel_dims.h / T::M), tw)
    }
}

/// Floats of scratch [`run`] needs for a layer (as the kernels see it): a band's `V` and `M`.
pub fn scratch_len<T: TileSize>(kernel_dims: &ConvDims) -> usize {
    if !applies::<T>(kernel_dims) {
        return 0;
    }
    let (br, bc) = band_shape::<T>(kernel_dims);
    let tiles = br * bc;
    T::POS * (pos_stride(tiles, kernel_dims.cin) + pos_stride(tiles, kernel_dims.cout))
}

/// Floats between positions of `V` or `M` for a band of `tiles` tiles of `n` channels: the
/// tiles, plus one cache line so that the positions of a tile (read or written together by
/// the transforms) do not all fall into the same L1 set, which they did with the network's
/// power-of-two strides (4 and 8 KiB): F(2x2)'s forward pass of conv2 ran markedly slower
/// (re-measure with `CONV_BENCH_MANUAL_ONLY=1 cargo bench --bench conv`).
fn pos_stride(tiles: usize, n: usize) -> usize {
    tiles * n + 16
}

/// Floats of the packed (transformed) weights: the positions x `n_in x n_out`.
pub fn packed_len<T: TileSize>(n_in: usize, n_out: usize) -> usize {
    T::POS * n_in * n_out
}

/// Transforms and packs the weights of a layer that reads `n_in` channels and writes `n_out`
/// (as the kernels see it); `f(o, ky, kx, i)` gives the 3x3 filter of output `o`, input `i`
/// (forward, or flipped and transposed for the input gradient). Layout: for each position
/// `pos`, starting at float `pos * n_in * n_out`, the direct kernels' packing of a 1x1
/// convolution: for each output block `(o0, NV)` of [`super::channel_block_iter`] (at
/// `o0 * n_in`), `n_in` steps of `NV*16` floats, `U[pos][i][o]` with the block's output
/// channels innermost. `U = G g G^T` is computed in f64 and rounded once.
pub fn pack<T: TileSize>(
    _cpu: Avx512,
    n_in: usize,
    n_out: usize,
    f: impl Fn(usize, usize, usize, usize) -> f32,
    out: &mut [f32],
) {
    assert!(
        out.len() >= packed_len::<T>(n_in, n_out),
        "packed buffer too short"
    );
    // SAFETY: AVX-512 is present (checked above); it only widens the f64 vectors the compiler
    // may use (2.5 to 3x faster than SSE2's two lanes, the same operations per filter).
    unsafe { pack_avx512::<T>(n_in, n_out, f, out) }
}

/// [`pack`]'s body, compiled for AVX-512.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn pack_avx512<T: TileSize>(
    n_in: usize,
    n_out: usize,
    f: impl Fn(usize, usize, usize, usize) -> f32,
    out: &mut [f32],
) {
    let (a, plane) = (T::M + 2, n_in * n_out);
    for (o0, nv) in channel_block_iter(n_out) {
        let nb = nv * 16;
        for i in 0..n_in {
            // One step (input channel i, the block's nb output channels) of every position,
            // gathered here and then written as contiguous runs: writing each float straight
            // to its position's plane (planes 8-32 KiB apart, the same L1 set) was slower.
            let mut step = [[0.0f32; 32]; 36];
            // The block's nb <= 32 filters side by side, so that each f64 step below is one
            // loop over c (vectorized; the same operations per filter, so the same bits).
            let mut g = [[[0.0f64; 32]; 3]; 3]; // g[ky][kx][c]
            for c in 0..nb {
                for (ky, gy) in g.iter_mut().enumerate() {
                    for (kx, gyx) in gy.iter_mut().enumerate() {
                        gyx[c] = f(o0 + c, ky, kx, i) as f64;
                    }
                }
            }
            // gg = G g, column by column ((m+2) x 3), then u = gg G^T, row by row.
            let mut cols = [[[0.0f64; 32]; 6]; 3]; // cols[kx][r][c]
            for (kx, col) in cols.iter_mut().enumerate() {
                for c in 0..32 {
                    let u = T::g(g[0][kx][c], g[1][kx][c], g[2][kx][c]);
                    for (r, v) in u.iter().enumerate() {
                        col[r][c] = *v;
                    }
                }
            }
            for r in 0..a {
                for c in 0..32 {
                    let u = T::g(cols[0][r][c], cols[1][r][c], cols[2][r][c]);
                    for (s, &v) in u[..a].iter().enumerate() {
                        step[r * a + s][c] = v as f32;
                    }
                }
            }
            for (pos, run) in step[..T::POS].iter().enumerate() {
                let at = pos * plane + o0 * n_in + i * nb;
                out[at..at + nb].copy_from_slice(&run[..nb]);
            }
        }
    }
}

/// [`super::ConvPlan::pack_forward`]: [`pack`] of the original-layout weights.
pub fn pack_forward<T: TileSize>(cpu: Avx512, d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack::<T>(cpu, d.cin, d.cout, super::original_forward(d, w), out)
}

/// [`super::ConvPlan::pack_backward`]: [`pack`] of the flipped, transposed weights.
pub fn pack_backward<T: TileSize>(cpu: Avx512, d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack::<T>(cpu, d.cout, d.cin, super::original_backward(d, w), out)
}

/// Input gradient: [`run`] over `dy_pad` with the [`pack_backward`] weights, no bias, no ReLU.
pub fn input_grad<T: TileSize>(cpu: Avx512, d: &ConvDims, g: InputGrads) {
    g.by_forward(d, |t, f| run::<T>(cpu, t, f))
}

/// Output rows `f.rows` (start and end multiples of `m`, end at most `h`) of a layer as the
/// kernels see it, like the direct `forward_direct`: `f.w` from [`pack`], `f.bias` given
/// (forward: + bias, ReLU) or `None` (input gradient), `f.scratch` at least [`scratch_len`]
/// floats.
pub fn run<T: TileSize>(cpu: Avx512, kernel_dims: &ConvDims, f: Forward) {
    let (w, n_in, n_out, m) = (kernel_dims.w, kernel_dims.cin, kernel_dims.cout, T::M);
    f.check(kernel_dims, packed_len::<T>(n_in, n_out));
    let (bias, out, rows, scratch) = (f.bias, f.y, f.rows, f.scratch);
    let (op, first) = (out.as_mut_ptr(), rows.start);
    bands::<T>(cpu, kernel_dims, f.x_pad, f.w, rows, scratch, |t, tr| {
        // SAFETY: `bands` gives tile rows of `rows` (first >= rows.start) and tiles inside
        // 0..w/m, so the output rows m*t.ty - rows.start .. +m-1 and columns lie inside `out`
        // (asserted above), and M's tile row as its kernel needs it; bias has n_out floats.
        unsafe {
            let y = op.add(((m * t.ty - first) * w + m * t.tx0) * n_out + t.g);
            // forward: + bias, ReLU; input gradient: neither (a null bias)
            let bias_g = bias.map_or(std::ptr::null(), |b| b.as_ptr().add(t.g));
            let s = Transform {
                src: t.m,
                dst: y,
                pix: n_out * 4,
                row: w * n_out * 4,
                pos: t.pos_stride,
                tiles: t.ncols,
            };
            T::output_tile_row(s, bias_g, tr);
        }
    });
}

/// A tile size with an output transform that pools: its `m x m` tiles hold whole 2x2 pooling
/// windows (`m` even), pooled in registers after bias and ReLU.
pub trait PoolTile: TileSize {
    /// `output_tile_row_pool_codes` (`codes` not null) or `output_tile_row_pool` (null):
    /// `max(A^T M A + bias, 0)` of `t.tiles` tiles of 16 channels, 2x2 max-pooled, pooled pixel
    /// `(i, j)` of tile `k` to `t.dst + i*t.row + (m/2*k + j)*t.pix` bytes, its codes to
    /// `codes + i*codes_row + (m/2*k + j)*t.pix/4`.
    ///
    /// # Safety
    /// The kernel's contract.
    unsafe fn output_tile_row_pool(
        t: Transform,
        codes: (*mut u8, usize),
        bias: *const f32,
        tr: &mut Self::Transit,
    );
}

impl PoolTile for Winograd4 {
    unsafe fn output_tile_row_pool(
        t: Transform,
        (codes, codes_row): (*mut u8, usize),
        bias: *const f32,
        tr: &mut k4::Transit,
    ) {
        let rows = k4::PoolRows {
            out_row: t.row,
            codes,
            codes_row,
            codes_pix: t.pix / 4,
        };
        let f = if codes.is_null() {
            k4::output_tile_row_pool
        } else {
            k4::output_tile_row_pool_codes
        };
        f(t.src, t.pos, t.pix, t.dst, &rows, t.tiles, bias, tr)
    }
}

/// [`super::ConvPlan::forward_pool`]: output rows `rows` of the forward (as [`run`] with a
/// bias; whole tiles, so whole pooling windows), 2x2 max-pooled in the output transform
/// straight into `pool` (pooled rows `rows.start/2 .. rows.end/2` at `pool.place`, codes into
/// `pool.argmax` when given): the same bits as [`run`] then
/// [`crate::layers::pool::forward_asm`], without the full-resolution output.
pub fn run_pool<T: PoolTile>(
    cpu: Avx512,
    d: &ConvDims,
    x_pad: &[f32],
    upack: &[f32],
    bias: &[f32],
    rows: std::ops::Range<usize>,
    scratch: &mut [f32],
    pool: &mut PoolOut,
) {
    let p = d.pool();
    crate::layers::pool::check(&p);
    let (wo, c, place, half) = (d.w / 2, d.cout, pool.place, T::M / 2);
    assert!(
        T::M.is_multiple_of(2),
        "F({0}x{0}) tiles are not whole windows",
        T::M
    );
    assert!(bias.len() >= c, "bias too short");
    pool.check(d);
    let argmax = pool.argmax.as_deref_mut();
    let (op, ap) = (pool.out.as_mut_ptr(), argmax.map(|a| a.as_mut_ptr()));
    bands::<T>(cpu, d, x_pad, upack, rows, scratch, |t, tr| {
        // SAFETY: tile row t.ty and tiles t.tx0 .. +ncols of the layer hold pooled rows
        // half*t.ty .. +half-1 < h/2 and columns half*t.tx0 .. < w/2, inside `out` at `place`
        // and inside `argmax` (asserted above); M's tile row as its kernel needs it; bias has
        // c floats.
        unsafe {
            let (i, j) = (half * t.ty, half * t.tx0);
            let out = op.add(place.off + i * place.row_stride + j * c + t.g);
            let codes = ap.map_or(std::ptr::null_mut(), |a| a.add((i * wo + j) * c + t.g));
            let s = Transform {
                src: t.m,
                dst: out,
                pix: c * 4,
                row: place.row_stride * 4,
                pos: t.pos_stride,
                tiles: t.ncols,
            };
            T::output_tile_row_pool(s, (codes, wo * c), bias.as_ptr().add(t.g), tr);
        }
    });
}

/// One tile row of a band's `M` ready for the output transform, one group of 16 channels: tile
/// row `ty` of the layer, tiles `tx0 .. tx0 + ncols`, channels `g .. g + 16`; `m` is
/// `M[0][first tile][g]`, tiles `n_out` floats apart, positions `pos_stride` bytes apart.
struct TileRow {
    ty: usize,
    tx0: usize,
    ncols: usize,
    g: usize,
    m: *const f32,
    pos_stride: usize,
}

/// The band loop of [`run`] and [`run_pool`]: checks what both need, then for each band of the
/// output rows `rows` (whole tiles), the input transform and the products into `M`, and
/// `emit` (the output transform) for each of the band's tile rows and groups of 16 output
/// channels.
fn bands<T: TileSize>(
    _cpu: Avx512,
    kernel_dims: &ConvDims,
    inp: &[f32],
    upack: &[f32],
    rows: std::ops::Range<usize>,
    scratch: &mut [f32],
    mut emit: impl FnMut(TileRow, &mut T::Transit),
) {
    let (h, w, n_in, n_out) = (
        kernel_dims.h,
        kernel_dims.w,
        kernel_dims.cin,
        kernel_dims.cout,
    );
    let m = T::M;
    assert!(
        applies::<T>(kernel_dims),
        "Winograd F({m}x{m}) needs h, w in {m}s and channels in 16s: {kernel_dims:?}"
    );
    assert!(
        rows.start.is_multiple_of(m) && rows.end.is_multiple_of(m) && rows.end <= h,
        "rows {rows:?}: F({m}x{m}) bands are whole {m}-row tiles of 0..{h}"
    );
    assert!(
        inp.len() >= (h + 2) * (w + 2) * n_in,
        "padded input too short"
    );
    assert!(
        upack.len() >= packed_len::<T>(n_in, n_out),
        "packed weights too short"
    );
    assert!(
        scratch.len() >= scratch_len::<T>(kernel_dims),
        "scratch too short"
    );
    let tw = w / m;
    let (br, bc) = band_shape::<T>(kernel_dims);
    let max_tiles = br * bc;
    let (v, mm) = scratch.split_at_mut(T::POS * pos_stride(max_tiles, n_in));
    let (vp, mp) = (v.as_mut_ptr(), mm.as_mut_ptr());
    let (ip, up) = (inp.as_ptr(), upack.as_ptr());
    let mut tr = T::transit();
    static NO_SKIP: [isize; 1] = [0];
    let bands = (rows.start / m..rows.end / m)
        .step_by(br)
        .flat_map(|ty| (0..tw).step_by(bc).map(move |tx0| (ty, tx0)));
    for (ty, tx0) in bands {
        let nrows = br.min(rows.end / m - ty);
        let ncols = bc.min(tw - tx0);
        let tiles = nrows * ncols;
        let (vs, ms) = (pos_stride(tiles, n_in), pos_stride(tiles, n_out));
        // SAFETY: the asserts above bound every address: tile row ty + r reads padded rows
        // m(ty+r) .. m(ty+r)+m+1 <= h+1 and columns m*tx0 .. m*(tx0+ncols)+1 <= w+1; V and M
        // hold POS x tiles x n_in / n_out floats (+ padding) within the scratch; the products
        // read U inside POS x n_in x n_out and write M's `tiles x n_out` rows, which `emit`
        // reads (tile row r: its ncols tiles, positions ms floats apart). AVX-512 is checked
        // by the caller.
        unsafe {
            for r in 0..nrows {
                let v_row = vp.add(r * ncols * n_in);
                input_tile_row_all::<T>(ip, (w, n_in), (ty + r, tx0, ncols), v_row, vs, &mut tr);
            }
            // The micro-kernel tiles covering the band's rows of the products, for both block
            // widths of `channel_block_iter(n_out)` (blocks of 32 channels, a last one of 16).
            let (plan2, plan1) = (tile_plan(tiles, 2), tile_plan(tiles, 1));
            for pos in 0..T::POS {
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
                for g in (0..n_out).step_by(16) {
                    let m = mp.add(r * ncols * n_out + g);
                    let (ty, pos_stride) = (ty + r, ms * 4);
                    emit(
                        TileRow {
                            ty,
                            tx0,
                            ncols,
                            g,
                            m,
                            pos_stride,
                        },
                        &mut tr,
                    );
                }
            }
        }
    }
}

/// Input transform of `ncols` tiles of tile row `ty`, from tile `tx0` on, every channel (16 at
/// a time): `inp` is the padded input (`(h+2) x (w+2) x n` floats), `v` the first of those
/// tiles in `V` (tiles `n` floats apart), `vs` floats between positions.
///
/// # Safety
/// As `input_tile_row`: the (m+2) x (m+2) blocks of those tiles lie inside `inp`, and `v` holds
/// the positions of `ncols` tiles.
unsafe fn input_tile_row_all<T: TileSize>(
    inp: *const f32,
    (w, n): (usize, usize),
    (ty, tx0, ncols): (usize, usize, usize),
    v: *mut f32,
    vs: usize,
    tr: &mut T::Transit,
) {
    let m = T::M;
    for g in (0..n).step_by(16) {
        let s = Transform {
            src: inp.add((m * ty * (w + 2) + m * tx0) * n + g),
            dst: v.add(g),
            pix: n * 4,
            row: (w + 2) * n * 4,
            pos: vs * 4,
            tiles: ncols,
        };
        T::input_tile_row(s, tr);
    }
}

/// Tile rows per band of the weight gradient.
fn weight_grad_band_rows<T: TileSize>(kernel_dims: &ConvDims) -> usize {
    T::WEIGHT_GRAD_BAND_TILES
        .div_ceil(kernel_dims.w / T::M)
        .clamp(1, kernel_dims.h / T::M)
}

/// Floats between positions of the accumulated `dU[pos][cin][cout]`: padded by a cache line
/// like [`pos_stride`] (the positions of a group are read together by the final transform).
fn du_stride(cin: usize, cout: usize) -> usize {
    cin * cout + 16
}

/// Floats of scratch [`weight_grad`] needs for a layer: a band's `V` and `dM` and the
/// accumulated `dU`.
pub fn weight_grad_scratch_len<T: TileSize>(d: &ConvDims) -> usize {
    if !applies::<T>(d) {
        return 0;
    }
    let tiles = weight_grad_band_rows::<T>(d) * (d.w / T::M);
    T::POS * (pos_stride(tiles, d.cin) + pos_stride(tiles, d.cout) + du_stride(d.cin, d.cout))
}

/// The weight-gradient micro-kernel for a slab starting `rem` channels before the end of
/// `cout`: `(R, NV, kernel)`; `R` divides every `cin` that is a multiple of 16.
fn weight_grad_slab(rem: usize) -> (usize, usize, unsafe fn(&weight_grad_kernels::Tile)) {
    match rem {
        64.. => (4, 4, weight_grad_kernels::weight_grad_4x4),
        48 => (8, 3, weight_grad_kernels::weight_grad_8x3),
        32 => (8, 2, weight_grad_kernels::weight_grad_8x2),
        _ => (16, 1, weight_grad_kernels::weight_grad_16x1),
    }
}

/// Weight and bias gradients of one sample by Winograd, *overwritten*: same contract as
/// [`super::ConvPlan::weight_grad`] (`dw_kc[ky][kx][ci][co]`, `db[co]`; `x_pad`
/// `(h+2) x (w+2) x cin`, `dy_pad` `(h+2) x (w+2) x cout`, interior read), for a layer where
/// [`applies`]; `scratch` at least [`weight_grad_scratch_len`] floats.
///
/// The adjoint of the forward `Y = A^T [(G g G^T) ⊙ (B^T d B)] A`: per band of tiles,
/// 1. `V[pos][t][ci] = B^T d_t B` (`input_tile_row`, as in the forward pass) and
///    `dM[pos][t][co] = A dY_t A^T` (`grad_tile_row`, which also sums `db`);
/// 2. a product `dU[pos] += V[pos]^T dM[pos]` per position (`cin x tiles` by `tiles x cout`) on
///    the direct weight gradient's micro-kernels ([`crate::kernels::weight_grad`]) with tiles as
///    "pixels";
///
/// then `dw_kc = G^T dU G` (`weight_grad_transform`). As few multiplies per block and channel
/// pair as in the forward pass.
pub fn weight_grad<T: TileSize>(_cpu: Avx512, d: &ConvDims, g: WeightGrads) {
    let ConvDims { h, w, cin, cout } = *d;
    let m = T::M;
    assert!(
        applies::<T>(d),
        "Winograd F({m}x{m}) needs h, w in {m}s and channels in 16s: {d:?}"
    );
    g.check(d);
    let (x_pad, dy_pad, dw_kc, db, scratch) = (g.x_pad, g.dy_pad, g.dw_kc, g.db, g.scratch);
    assert!(
        scratch.len() >= weight_grad_scratch_len::<T>(d),
        "scratch too short"
    );
    db[..cout].fill(0.0);
    let (tw, wp) = (w / m, w + 2);
    let band_rows = weight_grad_band_rows::<T>(d);
    let max_tiles = band_rows * tw;
    let (v, rest) = scratch.split_at_mut(T::POS * pos_stride(max_tiles, cin));
    let (mm, du) = rest.split_at_mut(T::POS * pos_stride(max_tiles, cout));
    let us = du_stride(cin, cout);
    let (vp, mp, up) = (v.as_mut_ptr(), mm.as_mut_ptr(), du.as_mut_ptr());
    let (xp, dyp, dbp) = (x_pad.as_ptr(), dy_pad.as_ptr(), db.as_mut_ptr());
    let mut tr = T::transit();
    let mut ty = 0;
    while ty < h / m {
        let nrows = band_rows.min(h / m - ty);
        let tiles = nrows * tw;
        let (vs, ms) = (pos_stride(tiles, cin), pos_stride(tiles, cout));
        // SAFETY: tile row ty + r reads padded input rows m(ty+r) .. +m+1 <= h+1, columns
        // 0 .. w+1, and output-gradient rows m(ty+r)+1 .. +m <= h, columns 1 .. w (interior);
        // V and dM hold POS x tiles x cin / cout floats (+ padding) inside the scratch; the
        // products read V[pos] rows j0 .. j0+R <= cin and dM[pos] channels oc0 .. oc0+16NV
        // <= cout of the band's tiles and write dU[pos][j0..j0+R][oc0..] inside the scratch;
        // db has cout floats. AVX-512 is checked by the caller.
        unsafe {
            let mut dm = Transform {
                src: std::ptr::null(),
                dst: std::ptr::null_mut(),
                pix: cout * 4,
                row: wp * cout * 4,
                pos: ms * 4,
                tiles: tw,
            };
            for r in 0..nrows {
                let v_row = vp.add(r * tw * cin);
                input_tile_row_all::<T>(xp, (w, cin), (ty + r, 0, tw), v_row, vs, &mut tr);
                for g in (0..cout).step_by(16) {
                    dm.src = dyp.add(((m * (ty + r) + 1) * wp + 1) * cout + g);
                    dm.dst = mp.add(r * tw * cout + g);
                    T::grad_tile_row(dm, dbp.add(g), &mut tr);
                }
            }
            for pos in 0..T::POS {
                let mut oc0 = 0;
                while oc0 < cout {
                    let (r, nv, run) = weight_grad_slab(cout - oc0);
                    for j0 in (0..cin).step_by(r) {
                        let t = weight_grad_kernels::Tile {
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
    // SAFETY: dU holds POS positions of cin x cout floats, us apart; dw_kc 9 taps of
    // cin x cout.
    unsafe {
        let s = Transform {
            src: up,
            dst: dw_kc.as_mut_ptr(),
            pix: cin * cout * 4,
            row: 0,
            pos: us * 4,
            tiles: cin * cout / 16,
        };
        T::weight_grad_transform(s, &mut tr)
    };
}

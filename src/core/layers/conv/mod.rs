//! 3x3 convolution, pad 1, stride 1, + bias + ReLU (the original's `convolution.asm`).
//!
//! Each layer runs by its [`ConvPlan`], chosen once when the network is built: the scalar
//! reference ([`crate::reference::conv`]), the direct convolution below, or Winograd
//! ([`winograd`]). All buffers are HWC floats. Shapes (see [`ConvDims`]):
//! - padded input `x_pad`: `(h+2) x (w+2) x cin`, zero border;
//! - weights `w`: the original's layout `[cout][3][3][cin]`; bias `[cout]`;
//! - output `y`: `h x w x cout`, after ReLU;
//! - padded output gradient `dy_pad`: `(h+2) x (w+2) x cout`, zero border (the interior is the
//!   gradient with respect to the conv's pre-activation output, ReLU mask already applied);
//! - weight gradient in "KC" layout `[3][3][cin][cout]` (see [`unpack_weight_grad`]).
//!
//! The direct algorithm is a register-blocked convolution (see `asm_notes/convolution.md`): a
//! micro-kernel computes 1..14 consecutive output pixels of a row x 32 output channels (1..16
//! pixels x 16 channels for a last 16-channel block) with the accumulators in ZMM registers over
//! the whole 3x3xC reduction; this module packs the weights (`pack_forward_direct`,
//! `pack_backward_direct`), covers each row with tiles ([`row_tile_widths`]) and drives the
//! kernels (`forward_direct`). The input gradient is the same kernel run over `dy_pad` with the flipped,
//! channel-transposed weights. The tile plans are built once per shape and thread, so the drivers
//! allocate nothing in the training loop.
//!
//! ```
//! use catdog_core::kernels::microkernel::tiles;
//! // the widest tiles: 14 pixels x 32 channels, 16 pixels x 16 channels
//! assert_eq!((tiles(2)[0].pixels, tiles(1)[0].pixels), (14, 16));
//! assert_eq!(tiles(2).last().unwrap().pixels, 1);
//! ```

use crate::cpu::Avx512;

use crate::config::ConvDims;
use crate::config::Kernels;
use crate::kernels::conv::{self, PoolTileArgs, PoolTileFn};
use crate::kernels::microkernel::{self, Tile, TileArgs, TileFn};
pub use crate::layers::pool::PoolOut;
use crate::reference::conv as reference;
use std::ops::Range;
use winograd::{TileSize, Winograd2, Winograd4};

/// `per_thread!(Key => Value, key, build)`: the value `build` makes for `key` (a shape), built
/// on the calling thread's first call with that key and then reused (`Value` is cheap to
/// clone, an `Rc`), so the training loop allocates nothing. Each use site has its own cache.
macro_rules! per_thread {
    ($k:ty => $v:ty, $key:expr, $build:expr) => {{
        thread_local! {
            static CACHE: std::cell::RefCell<Vec<($k, $v)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let key: $k = $key;
        CACHE.with(|cell| {
            let mut cache = cell.borrow_mut();
            if let Some((_, v)) = cache.iter().find(|(k, _)| *k == key) {
                return v.clone();
            }
            let v: $v = $build;
            cache.push((key, v.clone()));
            v
        })
    }};
}

pub mod gemm;
pub(crate) mod weight_grad;
pub mod winograd;
pub mod winograd_rows;
pub use weight_grad::unpack_weight_grad;

/// How a layer's forward and input-gradient convolutions compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    /// The scalar reference ([`crate::reference::conv`]), on the original layout.
    Reference,
    /// Register-blocked direct convolution (any shape).
    Direct,
    /// Winograd F(2x2, 3x3) (even output sides, channels in 16s): 16/36 of the multiplies.
    Winograd2,
    /// Winograd F(4x4, 3x3) (output sides in 4s, channels in 16s): 36/144 of the multiplies,
    /// at about 10x F(2x2)'s rounding error (`asm_notes/winograd4.md`).
    Winograd4,
    /// Winograd F(4,3) along each row ([`winograd_rows`]; 1 to 3 input channels, output
    /// channels in 32s, width in 4s, even height: conv1): half the direct multiplies in the
    /// forward (fused with the pool) and the weight gradient (with the pool's backward fused
    /// in); the input gradient runs direct.
    WinogradRows,
    /// The portable kernels' implicit GEMM ([`gemm`]; any shape, no `asm!`).
    Gemm,
}

/// Which algorithms the asm path may use for conv layers (`model --conv`): the fastest that
/// applies (`Auto`), or a slower, more exact one for comparisons and the ladder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvChoice {
    /// Winograd F(4x4) where output sides are multiples of 4, else F(2x2) where they are even,
    /// else F(4,3) along rows where a layer has 1 to 3 input channels (conv1), else direct.
    #[default]
    Auto,
    /// Winograd F(2x2) where it applies, else direct.
    Winograd2,
    /// The direct convolution everywhere.
    Direct,
}

/// `(d, buffers)`: output rows of `relu(conv(x_pad, w) + bias)`, or the plain convolution.
pub type ForwardFn = fn(&ConvDims, Forward);
/// `(d, buffers)`: the input gradient.
pub type InputGradFn = fn(&ConvDims, InputGrads);
/// `(d, buffers)`: weight and bias gradients, overwritten.
pub type WeightGradFn = fn(&ConvDims, WeightGrads);

buffers! {
    /// The buffers of a forward pass ([`ForwardFn`]): output rows `rows` of
    /// `y = relu(conv(x_pad, w) + bias)` into `y`, which holds just those rows (`rows.len() x w x
    /// cout`, row `r` at `r - rows.start`); with `bias = None` the plain convolution, no ReLU (the
    /// input gradient runs this way). `w` is packed by the plan's `pack_forward`; `scratch` holds
    /// the plan's `scratch_len`.
    pub struct Forward<'a> {
        pub x_pad: &'a [f32],
        pub w: &'a [f32],
        pub bias: Option<&'a [f32]>,
        pub y: &'a mut [f32],
        pub rows: Range<usize>,
        pub scratch: &'a mut [f32],
    }
}

impl Forward<'_> {
    /// Panics unless `rows` end inside layer `d` (as the kernels see it) and the buffers hold
    /// what the rows read and write: the padded input, `packed` floats of weights, the bias and
    /// the output rows (row alignment and scratch are the algorithm's to check).
    pub fn check(&self, d: &ConvDims, packed: usize) {
        let (rows, h) = (&self.rows, d.h);
        assert!(rows.end <= h, "rows {rows:?} past the output height {h}");
        assert!(self.x_pad.len() >= d.in_pad_len(), "padded input too short");
        assert!(self.w.len() >= packed, "packed weights too short");
        assert!(
            self.bias.is_none_or(|b| b.len() >= d.cout),
            "bias too short"
        );
        assert!(
            self.y.len() >= rows.len() * d.w * d.cout,
            "output too short"
        );
    }
}

buffers! {
    /// The buffers of an input-gradient pass ([`InputGradFn`]): the gradient `dx` `[h][w][cin]`
    /// (overwritten) from the padded output gradient `dy_pad` `[h+2][w+2][cout]` and the weights
    /// packed by the plan's `pack_backward`; `scratch` holds the plan's `scratch_len`.
    pub struct InputGrads<'a> {
        pub dy_pad: &'a [f32],
        pub w: &'a [f32],
        pub dx: &'a mut [f32],
        pub scratch: &'a mut [f32],
    }
}

impl InputGrads<'_> {
    /// Runs the input gradient of layer `d` as the forward pass `forward` of the transposed
    /// layer (`cout` channels in, `cin` out) over all rows of `dy_pad`, with the flipped,
    /// channel-transposed weights: no bias, no ReLU.
    pub fn by_forward(self, d: &ConvDims, forward: impl FnOnce(&ConvDims, Forward)) {
        let (x_pad, w, y, scratch) = (self.dy_pad, self.w, self.dx, self.scratch);
        forward(
            &d.transposed(),
            Forward::new(x_pad, w, None, y, 0..d.h, scratch),
        )
    }
}

buffers! {
    /// The buffers of a weight-gradient pass ([`WeightGradFn`]): it reads `x_pad`
    /// `[h+2][w+2][cin]` and the interior of `dy_pad` `[h+2][w+2][cout]`, overwrites `dw_kc`
    /// `[3][3][cin][cout]` and `db` `[cout]`, and works in `scratch` (the plan's `scratch_len`).
    pub struct WeightGrads<'a> {
        pub x_pad: &'a [f32],
        pub dy_pad: &'a [f32],
        pub dw_kc: &'a mut [f32],
        pub db: &'a mut [f32],
        pub scratch: &'a mut [f32],
    }
}

impl WeightGrads<'_> {
    /// Panics unless the four data buffers hold what layer `d` reads and writes (the scratch
    /// is the caller's to check: its size depends on the algorithm).
    pub fn check(&self, d: &ConvDims) {
        assert!(self.x_pad.len() >= d.in_pad_len(), "x_pad too short");
        assert!(self.dy_pad.len() >= d.out_pad_len(), "dy_pad too short");
        assert!(self.dw_kc.len() >= d.weight_len(), "dw_kc too short");
        assert!(self.db.len() >= d.cout, "db too short");
    }
}
/// `(d, x_pad, pooled gradient, argmax codes, dw_kc, db, scratch)`: [`WeightGradFn`] from
/// the gradient before the layer's 2x2 max-pool's backward pass and its argmax codes (both
/// `[h/2][w/2][cout]`), the pool's backward fused in (for a layer whose input gradient is not
/// needed: the padded output gradient is never made).
pub type WeightGradPooledFn =
    fn(&ConvDims, &[f32], &[f32], &[u8], &mut [f32], &mut [f32], &mut [f32]);
/// `(d, original-layout weights, packed)`.
pub type PackFn = fn(&ConvDims, &[f32], &mut [f32]);

/// `(d, x_pad, packed weights, bias, rows, scratch, pool)`: output rows `rows` (whole pooling
/// windows, and whole tiles of the layer's algorithm) of `relu(conv(x_pad, w) + bias)`,
/// 2x2 max-pooled straight into `pool` (pooled rows `rows.start/2 .. rows.end/2`), the
/// full-resolution output never written: the same bits as [`ForwardFn`] then the pool.
pub type ForwardPoolFn =
    fn(&ConvDims, &[f32], &[f32], &[f32], Range<usize>, &mut [f32], &mut PoolOut);

/// Conv output rows per band of the fused conv + pool forward: whole pooling windows (2 rows)
/// and whole Winograd tiles (2 or 4 rows).
fn band_rows(algo: Algo) -> usize {
    match algo {
        Algo::Winograd4 => 4,
        Algo::WinogradRows => winograd_rows::BAND_ROWS,
        _ => 2,
    }
}

/// Layers whose conv output is at least this large run conv + pool in bands (conv1 and conv2 of
/// the default network, 2 and 1 MiB). conv3 (0.5 MiB, 4 output-channel blocks whose weights
/// would be re-streamed for every band) runs whole (with F(4x4) the pool is fused into its
/// output transform either way, see [`ConvPlan::forward_pool`]).
const BAND_MIN_BYTES: usize = 1 << 20;

/// Everything about how one conv layer runs, chosen once when the network is built: the
/// algorithm, its functions, the sizes of its packed weights and scratch, and the band height
/// of the fused conv + pool forward. The passes call the functions and never ask which
/// algorithm or path they are on.
///
/// Shapes (all HWC floats, [`ConvDims`] `d`):
/// - forward: `x_pad [h+2][w+2][cin]` (zero border), weights `[cout][3][3][cin]` packed by
///   `pack_forward`, `bias [cout]` -> `y [h][w][cout]` (after ReLU);
/// - input gradient: `dy_pad [h+2][w+2][cout]` (zero border; interior = gradient of the
///   pre-activation output), weights packed by `pack_backward` -> `dx [h][w][cin]`;
/// - weight gradient: `x_pad`, `dy_pad` -> `dw_kc [3][3][cin][cout]` ("KC" layout, see
///   [`unpack_weight_grad`]), `db [cout]`.
#[derive(Clone, Copy, Debug)]
pub struct ConvPlan {
    pub algo: Algo,
    /// Output rows per band of the forward (`h`: the whole layer at once).
    pub band: usize,
    /// Floats of each packed weight buffer (forward and backward).
    pub packed_len: usize,
    /// Floats of scratch the three passes need (Winograd's transformed tiles; else 0).
    pub scratch_len: usize,
    pub pack_forward: PackFn,
    pub pack_backward: PackFn,
    pub forward: ForwardFn,
    /// The forward with its pool fused in, where the algorithm has such a kernel (F(4x4):
    /// [`winograd::run_pool`], the pool in the output transform); `None`: the passes run
    /// `forward` into a band buffer, then the pool.
    pub forward_pool: Option<ForwardPoolFn>,
    /// Whether training runs `forward_pool` too (with argmax codes), or only inference does.
    /// Direct (conv1): yes, the fused pass saves storing and re-reading conv1's output. F(4x4):
    /// no: writing the argmax codes from inside its output transform made the trainer slower
    /// than forward then pool, though faster on one sample alone, while without codes it is
    /// what makes inference faster (figures: benches/HISTORY.md, "Tuning constants in the
    /// code"); `tests/winograd4.rs` keeps both variants bit-exact.
    pub fused_in_training: bool,
    pub input_grad: InputGradFn,
    pub weight_grad: WeightGradFn,
    /// `weight_grad` with the pool's backward pass fused in, where the algorithm has it
    /// (F(4,3) along rows); the passes use it for conv1, whose input gradient is not needed.
    pub weight_grad_pooled: Option<WeightGradPooledFn>,
}

impl ConvPlan {
    /// The plan of a Winograd algorithm (tile size `T`).
    fn winograd<T: TileSize>(algo: Algo, band: usize, d: &ConvDims) -> Self {
        assert!(winograd::applies::<T>(d), "{algo:?} cannot run {d:?}");
        ConvPlan {
            algo,
            band,
            packed_len: winograd::packed_len::<T>(d.cin, d.cout),
            scratch_len: winograd::scratch_len::<T>(d)
                .max(winograd::scratch_len::<T>(&d.transposed()))
                .max(winograd::weight_grad_scratch_len::<T>(d)),
            pack_forward: asm_entry!(winograd::pack_forward::<T>; d, w, out),
            pack_backward: asm_entry!(winograd::pack_backward::<T>; d, w, out),
            forward: asm_entry!(winograd::run::<T>; d, f),
            forward_pool: None,
            fused_in_training: false,
            input_grad: asm_entry!(winograd::input_grad::<T>; d, g),
            weight_grad: asm_entry!(winograd::weight_grad::<T>; d, g),
            weight_grad_pooled: None,
        }
    }

    /// The plan of a layer on `kernels` (`--kernels`): the scalar reference, or the fast
    /// kernels' choice ([`ConvPlan::fast`]); `Original` has no plans (its routines run whole
    /// passes).
    pub fn for_kernels(kernels: Kernels, d: &ConvDims, choice: ConvChoice) -> Result<Self, String> {
        match kernels {
            Kernels::Reference => Ok(Self::reference(d)),
            Kernels::Portable => Ok(Self::portable(d)),
            Kernels::Fast => Ok(Self::fast(crate::cpu::require_avx512("fast")?, d, choice)),
            Kernels::Original => Err("the original kernels have no conv plans".into()),
        }
    }

    /// The scalar reference's plan.
    pub fn reference(d: &ConvDims) -> Self {
        Self::build(Algo::Reference, d)
    }

    /// The fast kernels' choice for a layer, limited to the algorithms `choice` allows: the
    /// largest Winograd tile that applies (F(4x4), else F(2x2); both passes of a layer agree:
    /// the input gradient swaps the channel counts, which does not change the test), else F(4,3)
    /// along rows for 1 to 3 input channels, else the direct convolution.
    pub fn fast(cpu: Avx512, d: &ConvDims, choice: ConvChoice) -> Self {
        use ConvChoice::Auto;
        let algo = match choice {
            Auto if winograd::applies::<Winograd4>(d) => Algo::Winograd4,
            Auto | ConvChoice::Winograd2 if winograd::applies::<Winograd2>(d) => Algo::Winograd2,
            Auto if winograd_rows::applies(d) => Algo::WinogradRows,
            _ => Algo::Direct,
        };
        Self::with(cpu, algo, d)
    }

    /// A given algorithm (tests and benches run them all on one shape). `Algo::Winograd2` needs
    /// [`winograd::applies`]`(d)`. The asm algorithms' functions are reachable only this way,
    /// with the token.
    pub fn with(_cpu: Avx512, algo: Algo, d: &ConvDims) -> Self {
        Self::build(algo, d)
    }

    /// The plan of `algo`; the asm algorithms' entries hand their drivers the token, so this
    /// stays private: only [`ConvPlan::with`] (which takes the token) reaches them.
    fn build(algo: Algo, d: &ConvDims) -> Self {
        let band = if algo != Algo::Reference && d.out_len() * 4 >= BAND_MIN_BYTES {
            band_rows(algo).min(d.h)
        } else {
            d.h
        };
        match algo {
            Algo::Reference => ConvPlan {
                algo,
                band,
                packed_len: d.weight_len(),
                scratch_len: 0,
                pack_forward: pack_copy,
                pack_backward: pack_copy,
                forward: |d, f| reference::forward(d, f.x_pad, f.w, f.bias, f.y, f.rows),
                forward_pool: None,
                fused_in_training: false,
                input_grad: input_grad_reference,
                weight_grad: weight_grad_reference,
                weight_grad_pooled: None,
            },
            Algo::Direct => ConvPlan {
                algo,
                band,
                packed_len: d.weight_len(),
                scratch_len: 0,
                pack_forward: pack_forward_direct,
                pack_backward: pack_backward_direct,
                forward: asm_entry!(forward_direct; d, f),
                forward_pool: fused_pool_applies(d)
                    .then_some(asm_entry!(forward_pool_direct; d, x, w, b, r, s, p)),
                fused_in_training: true,
                input_grad: asm_entry!(input_grad_direct; d, g),
                weight_grad: asm_entry!(weight_grad::weight_grad_direct; d, g),
                weight_grad_pooled: None,
            },
            Algo::WinogradRows => ConvPlan {
                algo,
                band,
                packed_len: winograd_rows::packed_len(d).max(d.weight_len()),
                scratch_len: winograd_rows::scratch_len(d),
                pack_forward: winograd_rows::pack_forward,
                pack_backward: pack_backward_direct,
                forward: asm_entry!(winograd_rows::forward; d, f),
                forward_pool: Some(asm_entry!(winograd_rows::forward_pool; d, x, w, b, r, s, p)),
                fused_in_training: true,
                input_grad: asm_entry!(input_grad_direct; d, g),
                weight_grad: asm_entry!(winograd_rows::weight_grad; d, g),
                weight_grad_pooled: Some(asm_entry!(
                    winograd_rows::weight_grad_pooled; d, x, dp, c, dw, db, s
                )),
            },
            Algo::Gemm => Self::portable(d),
            Algo::Winograd2 => Self::winograd::<Winograd2>(algo, band, d),
            Algo::Winograd4 => ConvPlan {
                forward_pool: Some(
                    asm_entry!(winograd::run_pool::<Winograd4>; d, x, w, b, r, s, p),
                ),
                ..Self::winograd::<Winograd4>(algo, band, d)
            },
        }
    }
}

/// A covering of `n` pixels by micro-kernel tiles: `(pixels, kernel)` in order.
pub(crate) type Plan = std::rc::Rc<[(usize, TileFn)]>;

/// The `(pixels, kernel)` micro-kernel tiles of `nv` channel vectors that cover `n` rows of a
/// product (Winograd's tiles of a band, fc1's samples in inference), in order: the cheapest
/// split, as for a row of the direct convolution ([`row_tile_widths`]). The split for each
/// `(n, nv)` is computed once per thread and cached, so the training loop allocates nothing.
pub(crate) fn tile_plan(n: usize, nv: usize) -> Plan {
    per_thread!((usize, usize) => Plan, (n, nv), {
        let tiles = microkernel::tiles(nv);
        row_tile_widths(n, tiles)
            .into_iter()
            .map(|px| {
                let t = tiles
                    .iter()
                    .find(|t| t.pixels == px)
                    .expect("width from the table");
                (px, t.kernel)
            })
            .collect()
    })
}

/// The output-channel blocks of the packed layout and of the micro-kernels: `(first channel, NV)`,
/// each block `NV x 16` channels wide: blocks of 32 channels (`NV = 2`, the 14-pixel tiles),
/// and a last block of 16 (`NV = 1`) when `n` is an odd multiple of 16. (A `6 x 64` tile,
/// `NV = 4`, was measured slower than `14 x 32`: 4 weight loads per 24 FMAs instead of 2 per
/// 28.)
/// `n` must be a multiple of 16.
/// (An iterator: the per-batch repacking allocates nothing; `crate::testing::channel_blocks`
/// collects it.)
pub fn channel_block_iter(n: usize) -> impl Iterator<Item = (usize, usize)> {
    assert!(
        n.is_multiple_of(16),
        "{n} output channels: must be a multiple of 16"
    );
    let mut c = 0;
    std::iter::from_fn(move || {
        (c < n).then(|| {
            let nv = if n - c >= 32 { 2 } else { 1 };
            c += nv * 16;
            (c - nv * 16, nv)
        })
    })
}

/// Bytes of packed weights one reduction chunk may use. Measured on the development machine
/// (48 KiB L1d, 2 MiB L2 per core): splitting the network's layers so that a chunk's weights
/// fit L1 (24 or 48 KiB) was no faster than streaming a block's weights (36 to 144 KiB) from L2
/// with 14-pixel tiles (each weight load feeds 14 FMAs), so we only split much wider layers,
/// to keep a chunk's weights well inside L2.
const CHUNK_WEIGHT_BYTES: usize = 256 * 1024;

/// One chunk of the reduction: kernel rows `ky0 .. ky0+nky`, input channels `c0 .. c0+kc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub ky0: usize,
    pub nky: usize,
    pub c0: usize,
    pub kc: usize,
}

/// How the reduction over `3 x 3 x n_in` is split for an output block `nb` channels wide: the
/// whole window if its packed weights fit `CHUNK_WEIGHT_BYTES` (256 KiB), else one kernel row per chunk,
/// else one kernel row and a channel range (a multiple of 16 dividing `n_in`) per chunk.
///
/// ```
/// use catdog_core::layers::conv::chunks;
/// // conv3's input gradient: 9 * 128 * 32 floats = 144 KiB per block, one chunk.
/// assert_eq!(chunks(128, 32).len(), 1);
/// // 9 * 512 * 32 floats = 576 KiB: one chunk per kernel row (192 KiB each).
/// assert_eq!(chunks(512, 32).len(), 3);
/// ```
pub fn chunks(n_in: usize, nb: usize) -> Vec<Chunk> {
    chunk_iter(n_in, nb).collect()
}

/// [`chunks`] without the Vec (the per-batch repacking allocates nothing).
pub fn chunk_iter(n_in: usize, nb: usize) -> impl Iterator<Item = Chunk> {
    let fits = |steps: usize| steps * nb * 4 <= CHUNK_WEIGHT_BYTES;
    let whole = fits(9 * n_in) || !n_in.is_multiple_of(16);
    let kc = if whole || fits(3 * n_in) {
        n_in
    } else {
        (16..n_in)
            .step_by(16)
            .rev()
            .find(|&kc| n_in.is_multiple_of(kc) && fits(3 * kc))
            .unwrap_or(16)
    };
    // Whole window: one chunk of 3 kernel rows. Else per kernel row, channel ranges of kc.
    let (rows, nky) = if whole { (0..1, 3) } else { (0..3, 1) };
    rows.flat_map(move |ky0| {
        (0..n_in)
            .step_by(kc.max(1))
            .map(move |c0| Chunk { ky0, nky, c0, kc })
    })
}

/// The packed layout shared by both passes, for a convolution reading `n_in` channels and
/// writing `n_out` (a multiple of 16). For each output-channel block `(o0, NV)` of
/// [`channel_block_iter`], starting at float `o0 * 9 * n_in`, its [`chunks`] one after the other;
/// in a chunk, for each `(ky, kx, i)` of the chunk in that order, one *step*: `NV*16`
/// consecutive floats = the weights of that block's output channels for input element
/// `(ky, kx, i)`. `f(o, ky, kx, i)` gives a weight.
fn pack(n_in: usize, n_out: usize, f: impl Fn(usize, usize, usize, usize) -> f32, out: &mut [f32]) {
    assert!(out.len() >= 9 * n_in * n_out, "packed buffer too short");
    for (o0, nv) in channel_block_iter(n_out) {
        let nb = nv * 16;
        let mut at = o0 * 9 * n_in;
        for ch in chunk_iter(n_in, nb) {
            for ky in ch.ky0..ch.ky0 + ch.nky {
                for kx in 0..3 {
                    for i in ch.c0..ch.c0 + ch.kc {
                        for c in 0..nb {
                            out[at + c] = f(o0 + c, ky, kx, i);
                        }
                        at += nb;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packing, once per batch after the update (cheap), never inside a sample loop.

/// The reference's "packing": the original layout, copied (both passes read it as it is).
fn pack_copy(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    out[..d.weight_len()].copy_from_slice(&w[..d.weight_len()]);
}

/// Repacks original-layout weights `w` into the direct forward kernel's layout: for each output
/// block of [`channel_block_iter`] (`o0`, `NB = NV*16` channels, starting at float `o0*9*cin`),
/// `9*cin` steps in `(ky, kx, ic)` order of `NB` floats, the block's output channels innermost,
/// so one step is `NV` full ZMM loads (very wide layers: the steps grouped by reduction chunk,
/// see [`chunks`]).
fn pack_forward_direct(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cin, d.cout, original_forward(d, w), out)
}

/// Repacks original-layout weights into the direct input-gradient kernel's layout (flipped 3x3,
/// in/out channels swapped): the forward layout of the weights `wb[ic][ky][kx][oc] =
/// w[oc][2-ky][2-kx][ic]`, so that the input gradient is a forward-style convolution of `dy_pad`
/// (`cout` channels in) producing `cin` channels. Needs `cin.is_multiple_of(16)`.
fn pack_backward_direct(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    pack(d.cout, d.cin, original_backward(d, w), out)
}

/// Original-layout weights as `f(oc, ky, kx, ic)`, the input of the packings.
pub(crate) fn original_forward<'a>(
    d: &ConvDims,
    w: &'a [f32],
) -> impl Fn(usize, usize, usize, usize) -> f32 + 'a {
    let cin = d.cin;
    assert!(w.len() >= d.weight_len(), "weights too short");
    move |oc, ky, kx, ic| w[((oc * 3 + ky) * 3 + kx) * cin + ic]
}

/// The flipped, transposed weights of the input gradient as `f(ic, ky, kx, oc)` (a forward
/// convolution from `cout` channels to `cin`).
pub(crate) fn original_backward<'a>(
    d: &ConvDims,
    w: &'a [f32],
) -> impl Fn(usize, usize, usize, usize) -> f32 + 'a {
    let cin = d.cin;
    assert!(
        cin.is_multiple_of(16),
        "the input gradient needs cin % 16 == 0 (got {cin})"
    );
    assert!(w.len() >= d.weight_len(), "weights too short");
    move |ic, ky, kx, oc| w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic]
}

/// How one output row of width `w` is covered by tiles, as `(first pixel, kernel)` pairs, exactly
/// (no pixel twice: a later reduction chunk adds to the output): the cheapest split of `w` into
/// tile widths under the tiles' measured rates (a small dynamic programme over `0..=w`), see
/// [`row_tile_widths`].
fn row_plan<F: Copy>(w: usize, tiles: &[Tile<F>]) -> Vec<(usize, F)> {
    let mut plan = Vec::new();
    let mut x0 = 0;
    for p in row_tile_widths(w, tiles) {
        let t = tiles
            .iter()
            .find(|t| t.pixels == p)
            .expect("width from the table");
        plan.push((x0, t.kernel));
        x0 += p;
    }
    plan
}

/// The tile widths the drivers use for a row of `w` pixels, widest first (they sum to `w`): the
/// cheapest split under the tiles' measured rates ([`crate::kernels::microkernel::Tile::rate`]). E.g.
/// conv3's 32-pixel rows with the 32-channel tiles become 14 + 11 + 7 rather than 14 + 14 + 4
/// (the 4-pixel tile runs at 66% of the 14-pixel one's rate, the 7- and 11-pixel ones at 88% and
/// 95%):
///
/// ```
/// use catdog_core::layers::conv::row_tile_widths;
/// use catdog_core::kernels::microkernel::tiles;
/// assert_eq!(row_tile_widths(32, tiles(2)), vec![14, 11, 7]);
/// let rate = |p: usize| tiles(2).iter().find(|t| t.pixels == p).unwrap().rate;
/// assert_eq!((rate(14), rate(11), rate(7), rate(4)), (100, 95, 88, 66));
/// ```
pub fn row_tile_widths<F>(w: usize, tiles: &[Tile<F>]) -> Vec<usize> {
    // best[x] = (cost of covering x pixels, width of the last tile); u64::MAX: no cover (odd x
    // with the fused tiles, whose widths are all even).
    let mut best = vec![(0u64, 0usize); w + 1];
    for x in 1..=w {
        best[x] = tiles
            .iter()
            .filter(|t| t.pixels <= x && best[x - t.pixels].0 != u64::MAX)
            .map(|t| {
                let c = best[x - t.pixels].0 + (t.pixels as u64 * 10_000) / t.rate as u64;
                (c, t.pixels)
            })
            .min()
            .unwrap_or((u64::MAX, 0));
    }
    assert!(best[w].0 != u64::MAX, "no tiles cover a row of {w}");
    let mut widths = Vec::new();
    let mut x = w;
    while x > 0 {
        widths.push(best[x].1);
        x -= best[x].1;
    }
    // Widest tiles first (the order does not matter for the result).
    widths.sort_unstable_by(|a, b| b.cmp(a));
    widths
}

/// Forward, direct ([`ForwardFn`]): runs the micro-kernels over output rows `f.rows` of a layer
/// as the kernels see it: `kernel_dims.cin` channels read, `kernel_dims.cout` written (for the
/// input gradient: the layer's `cout` and `cin`). `f.w` is in the [`pack`] layout, `f.bias`
/// given (forward: + bias, ReLU) or `None` (input gradient: neither). Loop order:
/// output-channel block, reduction chunk (its weights stay in L1), output row, tile.
fn forward_direct(_cpu: Avx512, kernel_dims: &ConvDims, f: Forward) {
    let (w, n_in, n_out) = (kernel_dims.w, kernel_dims.cin, kernel_dims.cout);
    f.check(kernel_dims, 9 * n_in * n_out);
    let (bias, rows) = (f.bias, f.rows.clone());
    // The plan depends only on the shape: built on a thread's first call for that shape, then
    // reused, so the training loop allocates nothing here.
    let passes = per_thread!(ConvDims => std::rc::Rc<[Pass]>, *kernel_dims, {
        plan_passes(kernel_dims).into()
    });
    let (ip, wpp, op) = (f.x_pad.as_ptr(), f.w.as_ptr(), f.y.as_mut_ptr());
    let run_row = |y: usize, ps: &Pass| {
        for &(x0, kernel) in &ps.plan {
            // SAFETY: the asserts above bound every address of the tile: input floats
            // up to ((y+2)*(w+2) + x0+P-1 + 2) * n_in + n_in - 1 < (h+2)*(w+2)*n_in,
            // output pixels y*w + x0 + p < h*w, weights of this chunk inside the block
            // o0*9*n_in .. (o0+nb)*9*n_in <= 9*n_in*n_out; AVX-512 is checked by the
            // caller (an `Avx512`).
            unsafe {
                let args = TileArgs {
                    inp: ip.add((y * (w + 2) + x0) * n_in + ps.first_seg),
                    in_stride: n_in * 4,
                    k: ps.k,
                    nseg: ps.skips.len(),
                    skips: ps.skips.as_ptr(),
                    out: op.add(((y - rows.start) * w + x0) * n_out + ps.o0),
                    out_stride: n_out * 4,
                    bias: match bias {
                        Some(b) if ps.last => b.as_ptr().add(ps.o0),
                        _ => std::ptr::null(),
                    },
                    accumulate: ps.accumulate as usize,
                };
                kernel(&args, wpp.add(ps.wat));
            }
        }
    };
    for ps in passes.iter() {
        for y in rows.clone() {
            run_row(y, ps);
        }
    }
}

/// The passes of [`forward_direct`] for one shape (as the kernels see it): which tiles cover a row,
/// and how the reduction is chunked.
fn plan_passes(kernel_dims: &ConvDims) -> Vec<Pass> {
    let (w, n_in, n_out) = (kernel_dims.w, kernel_dims.cin, kernel_dims.cout);
    // One pass per (output-channel block, reduction chunk), in accumulation order.
    let mut passes = Vec::new();
    for (o0, nv) in channel_block_iter(n_out) {
        let nb = nv * 16;
        let plan = row_plan(w, microkernel::tiles(nv));
        let chunks = chunks(n_in, nb);
        let mut wat = o0 * 9 * n_in;
        for (ci, ch) in chunks.iter().enumerate() {
            let segs = chunk_segments(w, n_in, ch);
            let k = segs[0].1;
            passes.push(Pass {
                o0,
                plan: plan.clone(),
                first_seg: segs[0].0,
                k,
                skips: segment_skips(&segs),
                wat,
                accumulate: ci > 0,
                last: ci + 1 == chunks.len(),
            });
            wat += segs.len() * k * nb;
        }
    }
    passes
}

/// The input segments of reduction chunk `ch` (rows `w + 2` pixels of `n_in` channels wide):
/// `(start in floats from a tile's input pixel 0, length)`, in the packed weights' step order.
fn chunk_segments(w: usize, n_in: usize, ch: &Chunk) -> Vec<(usize, usize)> {
    let row = (w + 2) * n_in;
    if ch.kc == n_in {
        (ch.ky0..ch.ky0 + ch.nky)
            .map(|ky| (ky * row, 3 * n_in))
            .collect()
    } else {
        (ch.ky0..ch.ky0 + ch.nky)
            .flat_map(|ky| (0..3).map(move |kx| (ky * row + kx * n_in + ch.c0, ch.kc)))
            .collect()
    }
}

/// [`TileArgs::skips`] of segments that all have the length of the first: bytes from the end of
/// each to the start of the next (0 after the last).
fn segment_skips(segs: &[(usize, usize)]) -> Vec<isize> {
    let k = segs[0].1;
    assert!(segs.iter().all(|s| s.1 == k), "segments of unequal length");
    (0..segs.len())
        .map(|i| match segs.get(i + 1) {
            Some(next) => (next.0 as isize - (segs[i].0 + k) as isize) * 4,
            None => 0,
        })
        .collect()
}

/// One sweep of the micro-kernels over the layer: an output-channel block and a reduction chunk.
struct Pass {
    o0: usize,
    plan: Vec<(usize, TileFn)>,
    /// Float offset of the chunk's first segment from a tile's input pixel 0.
    first_seg: usize,
    k: usize,
    skips: Vec<isize>,
    /// Float offset of the chunk's packed weights.
    wat: usize,
    accumulate: bool,
    last: bool,
}

/// Whether the direct convolution has a fused conv + ReLU + pool forward for `d`
/// (`forward_pool_direct`): 32-channel output blocks only (`cout % 32 == 0`: conv1, and
/// conv2 and conv3 under `--conv direct`) and even sides (whole pooling windows).
pub fn fused_pool_applies(d: &ConvDims) -> bool {
    d.cout.is_multiple_of(32)
        && d.h >= 2
        && d.w >= 2
        && d.h.is_multiple_of(2)
        && d.w.is_multiple_of(2)
}

/// Forward, direct, with ReLU and the 2x2 max-pool fused in ([`ForwardPoolFn`]): the fused
/// micro-kernels ([`crate::kernels::conv::POOL_TILES`]) cover each pair of output rows with
/// 2 x P pixel tiles ([`row_tile_widths`] over the fused tiles), per 32-channel block, over the
/// whole reduction in one call (a layer whose reduction [`chunks`] splits runs its chunks'
/// segments one after the other on the same accumulators: the same operations in the same
/// order as [`forward_direct`]'s chunk by chunk passes, whose stores and reloads round nothing),
/// then bias, ReLU, and [`crate::kernels::pool::forward_row`]'s max and argmax instructions in
/// registers: the same bits as [`forward_direct`] then [`crate::layers::pool::forward_asm`].
/// `rows` must start and end on even rows. Needs [`fused_pool_applies`]`(d)`.
fn forward_pool_direct(
    _cpu: Avx512,
    d: &ConvDims,
    inp: &[f32],
    wpack: &[f32],
    bias: &[f32],
    rows: Range<usize>,
    _scratch: &mut [f32],
    pool: &mut PoolOut,
) {
    let (w, n_in, n_out) = (d.w, d.cin, d.cout);
    assert!(fused_pool_applies(d), "no fused conv + pool for {d:?}");
    check_row_pairs(d, &rows, (inp, wpack, bias), 9 * n_in * n_out);
    let (wo, place) = (w / 2, pool.place);
    pool.check(d);
    let pp = per_thread!(ConvDims => std::rc::Rc<PoolPlan>, *d, {
        let segs: Vec<(usize, usize)> = chunk_iter(n_in, 32)
            .flat_map(|ch| chunk_segments(w, n_in, &ch))
            .collect();
        std::rc::Rc::new(PoolPlan {
            plan: row_plan(w, conv::POOL_TILES),
            first_seg: segs[0].0,
            k: segs[0].1,
            skips: segment_skips(&segs),
        })
    });
    let (ip, wpp, bp, op) = (
        inp.as_ptr(),
        wpack.as_ptr(),
        bias.as_ptr(),
        pool.out.as_mut_ptr(),
    );
    let ap = pool.argmax.as_deref_mut().map(|a| a.as_mut_ptr());
    for o0 in (0..n_out).step_by(32) {
        for y in rows.clone().step_by(2) {
            for &(x0, f) in &pp.plan {
                // SAFETY: the asserts above bound every address: input floats up to
                // ((y+3)*(w+2) + x0+P+1) * n_in + n_in - 1 < (h+2)*(w+2)*n_in (y+1 < h, x0+P <= w),
                // weights of block o0 inside 9*n_in*n_out, pooled pixel (y/2, x0/2 + q) with
                // q < P/2 inside the output and the codes; AVX-512 checked above.
                unsafe {
                    let (i, j) = (y / 2, x0 / 2);
                    let args = PoolTileArgs {
                        tile: TileArgs {
                            inp: ip.add((y * (w + 2) + x0) * n_in + pp.first_seg),
                            in_stride: n_in * 4,
                            k: pp.k,
                            nseg: pp.skips.len(),
                            skips: pp.skips.as_ptr(),
                            out: op.add(place.off + i * place.row_stride + j * n_out + o0),
                            out_stride: n_out * 4,
                            bias: bp.add(o0),
                            accumulate: 0,
                        },
                        in_row: (w + 2) * n_in * 4,
                        argmax: match ap {
                            Some(a) => a.add((i * wo + j) * n_out + o0),
                            None => std::ptr::null_mut(),
                        },
                        argmax_stride: n_out,
                    };
                    f(&args, wpp.add(o0 * 9 * n_in));
                }
            }
        }
    }
}

/// The tiling of [`forward_pool_direct`] for one shape: which fused tiles cover a row pair, and
/// the whole reduction of a 32-channel block as one list of segments.
struct PoolPlan {
    plan: Vec<(usize, PoolTileFn)>,
    /// Float offset of the first segment from a tile's input pixel 0.
    first_seg: usize,
    k: usize,
    skips: Vec<isize>,
}

// ---------------------------------------------------------------------------------------------
// The three passes of each algorithm, side by side. Winograd's are in [`winograd`], the direct
// weight gradient in `weight_grad`.

/// Panics unless `rows` are whole pairs of the layer's `d.h` output rows (whole 2x2 pooling
/// windows, or the row pairs of F(4,3) along rows) and the padded input `(h+2) x (w+2) x cin`,
/// the packed weights (`packed` floats) and the bias hold what the rows read.
fn check_row_pairs(
    d: &ConvDims,
    rows: &Range<usize>,
    (inp, wpack, bias): (&[f32], &[f32], &[f32]),
    packed: usize,
) {
    let h = d.h;
    assert!(
        rows.end <= h && rows.start.is_multiple_of(2) && rows.end.is_multiple_of(2),
        "rows {rows:?}: whole pairs of the {h} output rows"
    );
    assert!(
        inp.len() >= (h + 2) * (d.w + 2) * d.cin,
        "padded input too short"
    );
    assert!(wpack.len() >= packed, "packed weights too short");
    assert!(bias.len() >= d.cout, "bias too short");
}

/// Input gradient, direct: the forward kernels run over `dy_pad` with the flipped, transposed
/// weights ([`pack_backward_direct`]), no bias, no ReLU.
fn input_grad_direct(cpu: Avx512, d: &ConvDims, g: InputGrads) {
    g.by_forward(d, |t, f| forward_direct(cpu, t, f))
}

/// Input gradient, reference ([`crate::reference::conv::input_grad`]), under the same rule as
/// the asm algorithms (`cin % 16 == 0`; conv1's input gradient is never needed).
fn input_grad_reference(d: &ConvDims, g: InputGrads) {
    assert!(
        d.cin.is_multiple_of(16),
        "the input gradient needs cin % 16 == 0 (got {})",
        d.cin
    );
    reference::input_grad(d, g.dy_pad, g.w, g.dx)
}

/// Weight gradient, reference ([`crate::reference::weight_grad::weight_grad`]).
fn weight_grad_reference(d: &ConvDims, g: WeightGrads) {
    crate::reference::weight_grad::weight_grad(d, g.x_pad, g.dy_pad, g.dw_kc, g.db)
}

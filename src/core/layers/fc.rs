//! Fully connected (fc) layers, batched over the samples of a batch (the original's
//! `dense.asm`, `dot_product.asm` and `matrix_ops.asm`).
//!
//! Shapes: `x [rows][k]` (one row per sample), `w [n][k]` (the original's `[neuron][input]`),
//! `bias [n]`, `y [rows][n]`. `k` is a multiple of 16; `rows` and `n` are any size >= 1.
//! Threads split the work by ranges of the output; the functions that write strided outputs
//! take raw pointers and write *only* inside their range, so that several threads may call them
//! on disjoint ranges of one buffer at the same time.
//!
//! The scalar twins are in `crate::reference::fc`.
//!
//! The asm path tiles the work into 4x4 register blocks (see [`crate::kernels::fc`]); edge
//! tiles repeat a valid row/neuron pointer and send the extra results to a dummy buffer.

use crate::cpu::Avx512;

use crate::kernels::fc::{self as kernel, WeightGradTile};
use std::cell::RefCell;
use std::ops::Range;

/// An fc layer over a batch: `rows` samples, `k` inputs, `n` neurons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcDims {
    pub rows: usize,
    pub k: usize,
    pub n: usize,
}

buffers! {
    /// The buffers of a forward pass (`LayerFns::fc_forward`) for neurons `cols`: `y[r][j] =
    /// act(sum_k x[r][k] * w[j][k] + bias[j])` for every row `r` and `j` in `cols`, `act` ReLU when
    /// `relu`, identity otherwise. `y` (`[rows][n]`) is a pointer: threads write disjoint `cols` of
    /// one buffer, and a pass writes only inside its own.
    pub struct FcForward<'a> {
        pub x: &'a [f32],
        pub w: &'a [f32],
        pub bias: &'a [f32],
        pub relu: bool,
        pub y: *mut f32,
        pub cols: Range<usize>,
    }
}

impl FcForward<'_> {
    /// Panics unless `cols` lie inside layer `d` and `x`, `w` and `bias` hold what it reads.
    pub fn check(&self, d: FcDims) {
        let FcDims { rows, k, n } = d;
        assert!(self.cols.end <= n, "neurons {:?} past {n}", self.cols);
        assert!(self.x.len() >= rows * k, "x too short");
        assert!(self.w.len() >= n * k, "w too short");
        assert!(self.bias.len() >= n, "bias too short");
    }
}

buffers! {
    /// The buffers of a weight-gradient pass (`LayerFns::fc_weight_grad`) for neurons `cols`:
    /// from `x [rows][k]` and `dy [rows][n]`, `dw_rows[j - cols.start][i] = sum_r dy[r][j] *
    /// x[r][i]` and `db_rows[j - cols.start] = sum_r dy[r][j]`, summed over the rows in order and
    /// *overwritten*; `dw_rows` holds `cols.len() * k` floats (contiguous rows of the full `dw`).
    pub struct FcWeightGrads<'a> {
        pub x: &'a [f32],
        pub dy: &'a [f32],
        pub dw_rows: &'a mut [f32],
        pub db_rows: &'a mut [f32],
        pub cols: Range<usize>,
    }
}

impl FcWeightGrads<'_> {
    /// Panics unless `cols` lie inside layer `d` and the buffers hold what it reads and writes.
    pub fn check(&self, d: FcDims) {
        let (FcDims { rows, k, n }, cols) = (d, &self.cols);
        assert!(cols.end <= n, "neurons {cols:?} past {n}");
        assert!(self.x.len() >= rows * k, "x too short");
        assert!(self.dy.len() >= rows * n, "dy too short");
        assert!(self.dw_rows.len() >= cols.len() * k, "dw_rows too short");
        assert!(self.db_rows.len() >= cols.len(), "db_rows too short");
    }
}

/// Forward k-chunk: 1024 floats = 4 KiB per row, so the 4 weight rows of a tile (16 KiB) and
/// the 4 input rows of a row tile (16 KiB) fit L1 together, while all inputs of a chunk
/// (16 rows: 64 KiB) stay in L2. (Measured: 1024 beat 512, 2048 and 4096 by ~10-15% on fc1;
/// asm_notes/dense.md.)
const KC: usize = 1024;

thread_local! {
    /// Per-thread vector accumulators of the forward tiles (kept across k-chunks).
    static FWD_ACC: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

// ---------------------------------------------------------------------------------------------
// Forward. x [rows][k], w [n][k], bias [n] -> y [rows][n]

/// The forward pass ([`FcForward`]).
///
/// # Safety
/// The CPU has AVX-512 F/BW/DQ/VL (an [`Avx512`] exists).
/// `f.y` is valid for `rows * n` floats; no other thread touches `y[r][j]` for `j` in `f.cols`.
pub unsafe fn forward_asm(d: FcDims, f: FcForward) {
    check(d, f.cols.end <= d.n);
    f.check(d);
    let (x, w, bias, relu, y, cols) = (f.x, f.w, f.bias, f.relu, f.y, f.cols);
    if cols.is_empty() {
        return;
    }
    // Blocks of at most 64 rows x 128 neurons bound the accumulator scratch (512 KiB) for any
    // batch / fc1 width; fc1 at batch <= 64 is a single block.
    for r0 in (0..d.rows).step_by(FWD_ROWS) {
        for c0 in cols.clone().step_by(FWD_COLS) {
            let rb = r0..(r0 + FWD_ROWS).min(d.rows);
            let cb = c0..(c0 + FWD_COLS).min(cols.end);
            forward_block(d, x, (w, bias), relu, y, rb, cb);
        }
    }
}

/// The shape rules every pass checks: `k` a multiple of 16, at least one row and neuron, and the
/// caller's range inside the layer (`range_ok`).
fn check(d: FcDims, range_ok: bool) {
    assert!(
        d.k.is_multiple_of(16) && d.rows >= 1 && d.n >= 1 && range_ok,
        "fc layer {d:?}: k must be a multiple of 16, the range inside the layer"
    );
}

/// Rows per forward block (16 row tiles).
const FWD_ROWS: usize = 64;
/// Neurons per forward block (32 neuron tiles).
const FWD_COLS: usize = 128;

/// The asm forward over rows `rb` x neurons `cb`: k-chunks outer, then neuron tiles, then row
/// tiles (which reuse the tile's weights from L1); one horizontal sum per output at the end.
///
/// # Safety
/// As [`forward_asm`], AVX-512 present, both ranges non-empty.
unsafe fn forward_block(
    d: FcDims,
    x: &[f32],
    (w, bias): (&[f32], &[f32]),
    relu: bool,
    y: *mut f32,
    rb: Range<usize>,
    cb: Range<usize>,
) {
    let (k, n) = (d.k, d.n);
    let rt = rb.len().div_ceil(4);
    let ct = cb.len().div_ceil(4);
    FWD_ACC.with(|acc| {
        let mut acc = acc.borrow_mut();
        if acc.len() < rt * ct * 256 {
            acc.resize(rt * ct * 256, 0.0);
        }
        let accp = acc.as_mut_ptr();
        // missing rows / neurons of edge tiles repeat the last valid one
        let xrow = |r: usize| x.as_ptr().add((rb.start + r).min(rb.end - 1) * k);
        let wrow = |j: usize| w.as_ptr().add(j.min(cb.end - 1) * k);
        let mut k0 = 0;
        while k0 < k {
            let steps = KC.min(k - k0) / 16;
            for c in 0..ct {
                let j0 = cb.start + 4 * c;
                let wp = [0, 1, 2, 3].map(|t| wrow(j0 + t).add(k0));
                // the weight rows of the next tile (next neurons, or the next chunk)
                let (nj0, nk0) = if c + 1 < ct {
                    (j0 + 4, k0)
                } else {
                    (cb.start, k0 + KC)
                };
                for r in 0..rt {
                    let xp = [0, 1, 2, 3].map(|t| xrow(4 * r + t).add(k0));
                    let tile = accp.add((c * rt + r) * 256);
                    // run r prefetches next-tile row r (wrapping_add: never dereferenced by
                    // Rust; a prefetch past the data is harmless)
                    let pf = if r < 4 && nj0 + r < cb.end && nk0 < k {
                        w.as_ptr().wrapping_add((nj0 + r) * k + nk0)
                    } else {
                        wp[0]
                    };
                    kernel::fwd_tile4x4(xp, wp, steps, tile, k0 == 0, pf);
                }
            }
            k0 += KC;
        }
        for c in 0..ct {
            let j0 = cb.start + 4 * c;
            let mask = (1u32 << (cb.end - j0).min(4)) - 1;
            for r in 0..rt {
                let tile = accp.add((c * rt + r) * 256);
                for t in 0..(rb.len() - 4 * r).min(4) {
                    let row = rb.start + 4 * r + t;
                    kernel::fwd_reduce_row(
                        tile.add(64 * t),
                        bias.as_ptr().add(j0),
                        relu,
                        y.add(row * n + j0),
                        mask,
                    );
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Inference forward on packed weights. x [rows][x_stride] (x_stride >= k), wt = pack_inference(w)
// (per block of 16 NV neurons: [k][16 NV]), bias [n] -> y [rows][n]

/// Floats between the rows of the inference input ([`forward_packed`]'s `x`): `k` plus one
/// cache line. fc1's `k` (32,768) makes unpadded rows exactly 128 KiB apart, so the 14 rows a
/// micro-kernel reads at once all fall into one L1 set (and one L2 set), more lines than the
/// set has ways; padding each row by a line spreads them over the sets (the measured gain is
/// in benches/HISTORY.md, "Tuning constants in the code").
pub fn infer_stride(k: usize) -> usize {
    k + 16
}

/// Floats of [`pack_inference`]'s output for `n` neurons of `k` inputs.
pub fn packed_inference_len(k: usize, n: usize) -> usize {
    n * k
}

/// Packs `w [n][k]` for [`forward_packed`]: for each neuron block `(j0, NV)` of
/// [`crate::layers::conv::channel_block_iter`] (32 neurons, the last 16 when `n` is an odd
/// multiple of 16), starting at float `j0 * k`, `k` steps of the block's `16 NV` weights,
/// `out[j0*k + i*16NV + c] = w[j0 + c][i]`: the direct convolution's packing of a 1x1
/// convolution, so that fc1 runs on its micro-kernels. `n` must be a multiple of 16.
pub fn pack_inference(k: usize, n: usize, w: &[f32], out: &mut [f32]) {
    assert!(w.len() >= n * k && out.len() >= packed_inference_len(k, n));
    for (j0, nv) in crate::layers::conv::channel_block_iter(n) {
        let nb = 16 * nv;
        let block = &mut out[j0 * k..(j0 + nb) * k];
        // 64 inputs at a time: the block's rows are read 256 bytes at a stretch and its output
        // written in whole runs (a plain transpose; the layout is what matters).
        for i0 in (0..k).step_by(64) {
            for c in 0..nb {
                let row = &w[(j0 + c) * k..(j0 + c + 1) * k];
                for i in i0..(i0 + 64).min(k) {
                    block[i * nb + c] = row[i];
                }
            }
        }
    }
}

/// Input chunk of [`forward_packed`]: the micro-kernels run over 2,048 inputs, then store their
/// sums and go on from them (`accumulate`), so that a chunk of the inputs (64 rows: 512 KiB)
/// and of a neuron block's weights (256 KiB) stay in L2 for all of the chunk's tiles. Chunk
/// sizes from 1,024 inputs to none at all measured on a plateau (benches/HISTORY.md, "Tuning
/// constants in the code"); 2,048 keeps two threads' chunks in their L2s.
const INFER_KC: usize = 2048;

/// Inference forward: `y[r][j] = relu(sum_k x[r][k] * w[j][k] + bias[j])` for every row and
/// every `j` in `cols`, on the GEMM micro-kernel
/// ([`crate::kernels::microkernel`]'s contract, samples as "pixels": `in_stride = 4 x_stride`, one
/// segment of up to `INFER_KC` (2,048) steps; `accumulate` for every chunk after the first; bias and
/// ReLU in the last chunk's epilogue). Each output is one sequential sum over `k` in one vector
/// lane, so its bits depend on neither the rows tile it falls in nor `cols` (the number of
/// threads); they differ from [`forward_asm`]'s (training's forward), which sums 16 partial sums
/// across a vector at the end.
///
/// `x` holds `rows` rows of `x_stride` floats (the first `k` used), `wt` is
/// [`pack_inference`]`(w)`; `cols` is empty, or starts on a neuron block (a multiple of 32) and
/// ends at one or at `n`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/DQ/VL (an [`Avx512`] exists).
/// `y` is valid for `rows * n` floats; no other thread touches `y[r][j]` for `j` in `cols`.
pub unsafe fn forward_packed(
    d: FcDims,
    (x, x_stride): (&[f32], usize),
    wt: &[f32],
    bias: &[f32],
    y: *mut f32,
    cols: Range<usize>,
) {
    check(d, cols.end <= d.n);
    let (k, n, rows) = (d.k, d.n, d.rows);
    if cols.is_empty() {
        return;
    }
    assert!(
        cols.start.is_multiple_of(32) && (cols.end.is_multiple_of(32) || cols.end == n),
        "neurons {cols:?}: whole blocks of 32 (or the last 16) of {n}"
    );
    assert!(n.is_multiple_of(16), "{n} neurons: a multiple of 16");
    assert!(x_stride >= k && x.len() >= (rows - 1) * x_stride + k);
    assert!(wt.len() >= packed_inference_len(k, n) && bias.len() >= n);
    static NO_SKIP: [isize; 1] = [0];
    let blocks =
        || crate::layers::conv::channel_block_iter(n).filter(|&(j0, _)| cols.contains(&j0));
    // The rows' tiles for both block widths (NV = 1, 2), looked up once per call.
    let plans = [1, 2].map(|nv| crate::layers::conv::tile_plan(rows, nv));
    let mut k0 = 0;
    while k0 < k {
        let kc = INFER_KC.min(k - k0);
        let last = k0 + kc == k;
        for (j0, nv) in blocks() {
            let mut r0 = 0;
            for &(px, tile) in plans[nv - 1].iter() {
                let args = crate::kernels::microkernel::TileArgs {
                    inp: x.as_ptr().add(r0 * x_stride + k0),
                    in_stride: x_stride * 4,
                    k: kc,
                    nseg: 1,
                    skips: NO_SKIP.as_ptr(),
                    out: y.add(r0 * n + j0),
                    out_stride: n * 4,
                    bias: if last {
                        bias.as_ptr().add(j0)
                    } else {
                        std::ptr::null()
                    },
                    accumulate: (k0 > 0) as usize,
                };
                // SAFETY: rows r0 .. r0+px < rows of x, inputs k0 .. k0+kc <= k; the block's
                // packed steps k0 .. k0+kc at wt[j0*k + k0*16NV ..]; outputs rows r0 .. +px,
                // neurons j0 .. j0+16NV inside cols (the caller's); bias has n floats.
                tile(&args, wt.as_ptr().add(j0 * k + k0 * 16 * nv));
                r0 += px;
            }
        }
        k0 += kc;
    }
}

// ---------------------------------------------------------------------------------------------
// Backward. dy [rows][n] (ReLU mask applied), x [rows][k], w [n][k]
//   -> dx [rows][k], dw [n][k], db [n]

/// The ReLU mask on an output gradient: `dy[i] = 0` where `y[i] <= 0` (`y` the stored post-ReLU
/// output), as the original's `relu_backward`. Shapes: `y`, `dy` `[rows][n]`.
pub fn relu_backward_asm(_cpu: Avx512, y: &[f32], dy: &mut [f32]) {
    assert_eq!(y.len(), dy.len());
    // SAFETY: both slices hold y.len() floats (checked above).
    unsafe { crate::kernels::activations::relu_backward(y.as_ptr(), dy.as_mut_ptr(), y.len()) }
}

/// Input gradient: `dx[r][i] = sum_j dy[r][j] * w[j][i]` for every row and `i` in `ks`
/// (`ks.start` a multiple of 16).
///
/// # Safety
/// The CPU has AVX-512 F/BW/DQ/VL (an [`Avx512`] exists).
/// `dx` is valid for `rows * k` floats; no other thread touches `dx[r][i]` for `i` in `ks`.
pub unsafe fn input_grad_asm(d: FcDims, dy: &[f32], w: &[f32], dx: *mut f32, ks: Range<usize>) {
    check(d, ks.end <= d.k && ks.start.is_multiple_of(16));
    let FcDims { rows, k, n } = d;
    assert!(dy.len() >= rows * n && w.len() >= n * k);
    if ks.is_empty() {
        return;
    }
    let mut dummy = [0.0f32; 64];
    let dummy = dummy.as_mut_ptr();
    let rt = rows.div_ceil(4);
    let ldw = 4 * k;
    let mut i = ks.start;
    while i < ks.end {
        let left = ks.end - i;
        let width = if left >= 64 { 64 } else { left.min(16) };
        // i-block outer, row tiles inner: the n x 64 weight block stays in L1 across them.
        for r in 0..rt {
            let dyp = [0, 1, 2, 3].map(|t| dy.as_ptr().add((4 * r + t).min(rows - 1) * n));
            let dxp = tile_rows(dx.add(i), 4 * r, rows, k, dummy);
            if width == 64 {
                kernel::input_grad_tile4x4(w.as_ptr().add(i), ldw, dyp, n, &dxp);
            } else {
                let mask = ((1u32 << width) - 1) & 0xffff;
                kernel::input_grad_tile4x1(w.as_ptr().add(i), ldw, dyp, n, &dxp, mask);
            }
        }
        i += width;
    }
}

/// The weight and bias gradients ([`FcWeightGrads`]).
pub fn weight_grad_asm(_cpu: Avx512, d: FcDims, g: FcWeightGrads) {
    check(d, g.cols.end <= d.n);
    g.check(d);
    let (FcDims { rows, k, n }, cols) = (d, g.cols);
    let (x, dy, dw_rows, db_rows) = (g.x, g.dy, g.dw_rows, g.db_rows);
    if cols.is_empty() {
        return;
    }
    // SAFETY: every tile writes rows of dw_rows inside cols.len() * k (tile_rows sends the rows
    // past the end to `dummy`) and reads x and dy inside the lengths checked above.
    unsafe {
        let mut dummy = [0.0f32; 64];
        let dummy = dummy.as_mut_ptr();
        let ct = cols.len().div_ceil(4);
        let dwp = dw_rows.as_mut_ptr();
        let mut i = 0;
        while i < k {
            let width = if k - i >= 64 { 64 } else { 16 };
            // i-block outer, neuron tiles inner: the rows x 64 input block stays in L1.
            for c in 0..ct {
                let jj0 = 4 * c;
                let colb = [0, 1, 2, 3].map(|t| 4 * (cols.start + (jj0 + t).min(cols.len() - 1)));
                let dst = tile_rows(dwp.add(i), jj0, cols.len(), k, dummy);
                let tile = weight_grad_tile(x, dy, d, i, colb);
                if width == 64 {
                    kernel::bwd_weights_tile4x4(&tile, &dst);
                } else {
                    kernel::bwd_weights_tile4x1(&tile, &dst, 0xffff);
                }
            }
            i += width;
        }
        // db: column sums of dy over the rows, in row order (the strided-sum kernel).
        crate::kernels::update::sum_slots(
            dy.as_ptr().add(cols.start),
            rows,
            n,
            db_rows.as_mut_ptr(),
            cols.len(),
        );
    }
}

/// fc backward fused with the plain SGD step of the weights, for this thread's inputs `ks`
/// (`ks.start` and `ks.end` multiples of 64, `k` a multiple of 64; asm path only):
/// for each block of 64 inputs, first the input gradient `dx[r][i] = sum_j dy[r][j] * w[j][i]`
/// (as [`input_grad_asm`], from the weights as they were), then for every neuron the weight
/// gradient of those inputs (as [`weight_grad_asm`]) and at once `w[j][i] -= scale *
/// g[j][i]` (as [`crate::update::sgd_asm`]). Same bits as running the three separately; the
/// weight gradient is never stored, and each block of weights is read from memory once (the
/// separate passes read the 16 MiB of fc1 weights twice, wrote and re-read the 16 MiB gradient).
///
/// # Safety
/// The CPU has AVX-512 F/BW/DQ/VL (an [`Avx512`] exists).
/// `w` is valid for `n * k` floats and `dx` for `rows * k`; during the call no other thread
/// touches `w[j][i]` or `dx[r][i]` for `i` in `ks` (other threads may run this call on
/// disjoint `ks` at the same time).
pub unsafe fn backward_fused_sgd(
    d: FcDims,
    (x, dy): (&[f32], &[f32]),
    w: *mut f32,
    scale: f32,
    dx: *mut f32,
    ks: Range<usize>,
) {
    let FcDims { rows, k, n } = d;
    assert!(k.is_multiple_of(64) && ks.start.is_multiple_of(64) && ks.end.is_multiple_of(64));
    check(d, ks.end <= k);
    assert!(x.len() >= rows * k && dy.len() >= rows * n);
    let mut dummy = [0.0f32; 64];
    let dummy = dummy.as_mut_ptr();
    let rt = rows.div_ceil(4);
    let ct = n.div_ceil(4);
    for i in ks.step_by(64) {
        // Input gradient of the block, from the weights before their step.
        for r in 0..rt {
            let dyp = [0, 1, 2, 3].map(|t| dy.as_ptr().add((4 * r + t).min(rows - 1) * n));
            let dxp = tile_rows(dx.add(i), 4 * r, rows, k, dummy);
            kernel::input_grad_tile4x4(w.add(i), 4 * k, dyp, n, &dxp);
        }
        // Weight gradient of the block and the SGD step, 4 neurons at a time.
        for c in 0..ct {
            let colb = [0, 1, 2, 3].map(|t| 4 * (4 * c + t).min(n - 1));
            let wp = tile_rows(w.add(i), 4 * c, n, k, dummy);
            let tile = weight_grad_tile(x, dy, d, i, colb);
            kernel::bwd_weights_sgd_tile4x4(&tile, &wp, scale);
        }
    }
}

/// The four output pointers of an edge-safe tile: `base + (first + t) * stride` for `t` in
/// 0..4, and `dummy` for the rows or neurons at or past `count` (their results go unread).
///
/// # Safety
/// `base + (count - 1) * stride` is inside the buffer `base` points into.
unsafe fn tile_rows(
    base: *mut f32,
    first: usize,
    count: usize,
    stride: usize,
    dummy: *mut f32,
) -> [*mut f32; 4] {
    [0, 1, 2, 3].map(|t| {
        if first + t < count {
            base.add((first + t) * stride)
        } else {
            dummy
        }
    })
}

/// The weight-gradient tile at input `i` over all `rows` rows of `x [rows][k]` and
/// `dy [rows][n]`, for the four neurons whose dy columns start at `col_bytes`.
///
/// # Safety
/// `i < k`.
unsafe fn weight_grad_tile(
    x: &[f32],
    dy: &[f32],
    FcDims { rows, k, n }: FcDims,
    i: usize,
    col_bytes: [usize; 4],
) -> WeightGradTile {
    WeightGradTile {
        x: x.as_ptr().add(i),
        ldx_bytes: 4 * k,
        dy: dy.as_ptr(),
        ldy_bytes: 4 * n,
        col_bytes,
        rows,
    }
}

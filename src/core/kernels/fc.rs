//! Fully connected (fc) layer micro-kernels (the original's `dot_product.asm` and
//! `matrix_ops.asm`, batched).
//!
//! Every kernel works on a small register tile and is driven by the loops in [`crate::layers::fc`].
//! Tiles at the edges (fewer than 4 rows or neurons) are handled by the caller: it repeats a
//! valid input pointer for the missing rows/neurons and points their outputs at a dummy buffer,
//! so the kernels themselves never branch on shape.
//!
//! All kernels need AVX-512 F/VL; the caller holds a [`crate::cpu::Avx512`].

use crate::kernels::asm_zmm;

/// Zeroes the 16 accumulators zmm0-15 of a 4x4 tile (one `vpxord`, 15 register copies).
#[rustfmt::skip]
macro_rules! zero_accumulators_4x4 {
    () => {
        concat!(
            "vpxord zmm0, zmm0, zmm0\n",
            "vmovaps zmm1, zmm0\n", "vmovaps zmm2, zmm0\n", "vmovaps zmm3, zmm0\n",
            "vmovaps zmm4, zmm0\n", "vmovaps zmm5, zmm0\n", "vmovaps zmm6, zmm0\n",
            "vmovaps zmm7, zmm0\n", "vmovaps zmm8, zmm0\n", "vmovaps zmm9, zmm0\n",
            "vmovaps zmm10, zmm0\n", "vmovaps zmm11, zmm0\n", "vmovaps zmm12, zmm0\n",
            "vmovaps zmm13, zmm0\n", "vmovaps zmm14, zmm0\n", "vmovaps zmm15, zmm0\n",
        )
    };
}

/// The 16 FMAs of one step of a 4x4 tile: accumulator zmm(4a+v) += broadcast zmm(20+a) *
/// vector zmm(16+v), for a, v = 0..3.
#[rustfmt::skip]
macro_rules! fma_broadcasts_4x4 {
    () => {
        concat!(
            "vfmadd231ps zmm0, zmm20, zmm16\n", "vfmadd231ps zmm1, zmm20, zmm17\n",
            "vfmadd231ps zmm2, zmm20, zmm18\n", "vfmadd231ps zmm3, zmm20, zmm19\n",
            "vfmadd231ps zmm4, zmm21, zmm16\n", "vfmadd231ps zmm5, zmm21, zmm17\n",
            "vfmadd231ps zmm6, zmm21, zmm18\n", "vfmadd231ps zmm7, zmm21, zmm19\n",
            "vfmadd231ps zmm8, zmm22, zmm16\n", "vfmadd231ps zmm9, zmm22, zmm17\n",
            "vfmadd231ps zmm10, zmm22, zmm18\n", "vfmadd231ps zmm11, zmm22, zmm19\n",
            "vfmadd231ps zmm12, zmm23, zmm16\n", "vfmadd231ps zmm13, zmm23, zmm17\n",
            "vfmadd231ps zmm14, zmm23, zmm18\n", "vfmadd231ps zmm15, zmm23, zmm19\n",
        )
    };
}

/// Forward, one 4 rows x 4 neurons tile over one k-chunk: 16 ZMM accumulators
/// `acc[r*4 + j] (+)= x_r[0..16*steps] * w_j[0..16*steps]` lane-wise.
///
/// `x[r]`, `w[j]` point at the chunk start of row r / neuron j; `steps >= 1` 16-float steps.
/// `acc` is 16 vectors (1 KiB, any alignment): zeroed first when `init`, else loaded; stored back
/// at the end (no horizontal sum here: that happens once, in [`fwd_reduce_row`]).
///
/// `pf` is one weight row of the *next* tile the caller will run: one `prefetcht1` per step
/// pulls it towards L2 while this tile computes (prefetches never fault).
///
/// Registers: zmm0-15 accumulators (row-major 4x4), zmm16-19 the four weight vectors,
/// zmm20-23 the four input vectors of a step.
///
/// # Safety
/// AVX-512 present; every pointer valid for `16*steps` floats; `acc` for 256 floats.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn fwd_tile4x4(
    x: [*const f32; 4],
    w: [*const f32; 4],
    steps: usize,
    acc: *mut f32,
    init: bool,
    pf: *const f32,
) {
    debug_assert!(steps >= 1);
    asm_zmm!(
        // accumulators: zero or resume from the scratch tile
        "test {off}, {off}",
        "jz 2f",
        zero_accumulators_4x4!(),
        "jmp 3f",
        "2:",
        "vmovups zmm0, [{acc}]", "vmovups zmm1, [{acc} + 64]",
        "vmovups zmm2, [{acc} + 128]", "vmovups zmm3, [{acc} + 192]",
        "vmovups zmm4, [{acc} + 256]", "vmovups zmm5, [{acc} + 320]",
        "vmovups zmm6, [{acc} + 384]", "vmovups zmm7, [{acc} + 448]",
        "vmovups zmm8, [{acc} + 512]", "vmovups zmm9, [{acc} + 576]",
        "vmovups zmm10, [{acc} + 640]", "vmovups zmm11, [{acc} + 704]",
        "vmovups zmm12, [{acc} + 768]", "vmovups zmm13, [{acc} + 832]",
        "vmovups zmm14, [{acc} + 896]", "vmovups zmm15, [{acc} + 960]",
        "3:",
        "xor {off:e}, {off:e}",
        // k loop: 8 loads, 16 FMAs per 16 floats of k
        "4:",
        "vmovups zmm16, [{w0} + {off}]",
        "vmovups zmm17, [{w1} + {off}]",
        "vmovups zmm18, [{w2} + {off}]",
        "vmovups zmm19, [{w3} + {off}]",
        "prefetcht1 [{pf} + {off}]",
        "vmovups zmm20, [{x0} + {off}]",
        "vfmadd231ps zmm0, zmm20, zmm16",
        "vfmadd231ps zmm1, zmm20, zmm17",
        "vfmadd231ps zmm2, zmm20, zmm18",
        "vfmadd231ps zmm3, zmm20, zmm19",
        "vmovups zmm21, [{x1} + {off}]",
        "vfmadd231ps zmm4, zmm21, zmm16",
        "vfmadd231ps zmm5, zmm21, zmm17",
        "vfmadd231ps zmm6, zmm21, zmm18",
        "vfmadd231ps zmm7, zmm21, zmm19",
        "vmovups zmm22, [{x2} + {off}]",
        "vfmadd231ps zmm8, zmm22, zmm16",
        "vfmadd231ps zmm9, zmm22, zmm17",
        "vfmadd231ps zmm10, zmm22, zmm18",
        "vfmadd231ps zmm11, zmm22, zmm19",
        "vmovups zmm23, [{x3} + {off}]",
        "vfmadd231ps zmm12, zmm23, zmm16",
        "vfmadd231ps zmm13, zmm23, zmm17",
        "vfmadd231ps zmm14, zmm23, zmm18",
        "vfmadd231ps zmm15, zmm23, zmm19",
        "add {off}, 64",
        "dec {n}",
        "jnz 4b",
        "vmovups [{acc}], zmm0", "vmovups [{acc} + 64], zmm1",
        "vmovups [{acc} + 128], zmm2", "vmovups [{acc} + 192], zmm3",
        "vmovups [{acc} + 256], zmm4", "vmovups [{acc} + 320], zmm5",
        "vmovups [{acc} + 384], zmm6", "vmovups [{acc} + 448], zmm7",
        "vmovups [{acc} + 512], zmm8", "vmovups [{acc} + 576], zmm9",
        "vmovups [{acc} + 640], zmm10", "vmovups [{acc} + 704], zmm11",
        "vmovups [{acc} + 768], zmm12", "vmovups [{acc} + 832], zmm13",
        "vmovups [{acc} + 896], zmm14", "vmovups [{acc} + 960], zmm15",
        ;
        off = inout(reg) init as usize => _,
        n = inout(reg) steps => _,
        acc = in(reg) acc,
        x0 = in(reg) x[0], x1 = in(reg) x[1], x2 = in(reg) x[2], x3 = in(reg) x[3],
        w0 = in(reg) w[0], w1 = in(reg) w[1], w2 = in(reg) w[2], w3 = in(reg) w[3],
        pf = in(reg) pf,
    );
}

/// Forward epilogue for one row of a tile: the 4 accumulators `acc[0..4]` (64 floats) are each
/// summed horizontally (512 -> 256 -> 128 bits, then three `vhaddps` that transpose-add the four
/// into one xmm), `bias[0..4]` added, ReLU if `relu`, and the 4 results stored to `y[0..4]`
/// under the lane mask `mask` (bit j = neuron j exists).
///
/// Registers: zmm0-3 the accumulators, zmm4 upper halves, xmm5 bias, xmm6 zero; k1 the mask.
///
/// # Safety
/// AVX-512 present; `acc` valid for 64 floats; `bias`, `y` for the lanes set in `mask`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn fwd_reduce_row(
    acc: *const f32,
    bias: *const f32,
    relu: bool,
    y: *mut f32,
    mask: u32,
) {
    asm_zmm!(
        "kmovw k1, {m:e}",
        "vmovups zmm0, [{acc}]",
        "vmovups zmm1, [{acc} + 64]",
        "vmovups zmm2, [{acc} + 128]",
        "vmovups zmm3, [{acc} + 192]",
        // 512 -> 256
        "vextractf64x4 ymm4, zmm0, 1", "vaddps ymm0, ymm0, ymm4",
        "vextractf64x4 ymm4, zmm1, 1", "vaddps ymm1, ymm1, ymm4",
        "vextractf64x4 ymm4, zmm2, 1", "vaddps ymm2, ymm2, ymm4",
        "vextractf64x4 ymm4, zmm3, 1", "vaddps ymm3, ymm3, ymm4",
        // 256 -> 128
        "vextractf128 xmm4, ymm0, 1", "vaddps xmm0, xmm0, xmm4",
        "vextractf128 xmm4, ymm1, 1", "vaddps xmm1, xmm1, xmm4",
        "vextractf128 xmm4, ymm2, 1", "vaddps xmm2, xmm2, xmm4",
        "vextractf128 xmm4, ymm3, 1", "vaddps xmm3, xmm3, xmm4",
        // transpose-add: xmm0 = [sum a, sum b, sum c, sum d]
        "vhaddps xmm0, xmm0, xmm1",
        "vhaddps xmm2, xmm2, xmm3",
        "vhaddps xmm0, xmm0, xmm2",
        "vmovups xmm5 {{k1}}{{z}}, [{b}]",
        "vaddps xmm0, xmm0, xmm5",
        "test {relu:e}, {relu:e}",
        "jz 2f",
        "vxorps xmm6, xmm6, xmm6",
        "vmaxps xmm0, xmm0, xmm6",
        "2:",
        "vmovups [{y}] {{k1}}, xmm0",
        ;
        m = in(reg) mask,
        acc = in(reg) acc,
        b = in(reg) bias,
        relu = in(reg) relu as u32,
        y = in(reg) y,
    );
}

/// `asm_zmm!` for the input-gradient tiles: the loop over the `n` neurons `j` (`{j}` counts
/// them, `{w}` walks the weight rows, `ldw` bytes apart) that per neuron runs `load` (the weight
/// row into zmm16..), broadcasts `dy_r[j]` of the 4 rows into zmm20-23, and runs `fma` (into
/// the accumulators); `setup` runs before the loop (zeroes the accumulators), `store` after it
/// (`{dx}` the 4 row pointers, `{t}` a scratch register). The operands are the kernel's own
/// `first`, then `w`, `ldw`, `d0`..`d3`, `n`, `dx`, `j`, `t`.
macro_rules! input_grad_asm {
    (
        first: [$($first:tt)*],
        args: ($w:expr, $ldw:expr, $dy:expr, $n:expr, $dx:expr),
        setup: [$($setup:expr),+ $(,)?],
        load: [$($load:expr),+ $(,)?],
        fma: [$($fma:expr),+ $(,)?],
        store: [$($store:expr),+ $(,)?] $(,)?
    ) => {
        asm_zmm!(
            $($setup,)+
            "xor {j:e}, {j:e}",
            "2:",
            $($load,)+
            "vbroadcastss zmm20, dword ptr [{d0} + 4*{j}]",
            "vbroadcastss zmm21, dword ptr [{d1} + 4*{j}]",
            "vbroadcastss zmm22, dword ptr [{d2} + 4*{j}]",
            "vbroadcastss zmm23, dword ptr [{d3} + 4*{j}]",
            $($fma,)+
            "add {w}, {ldw}",
            "inc {j}",
            "cmp {j}, {n}",
            "jne 2b",
            $($store,)+
            ;
            $($first)*
            w = inout(reg) $w => _,
            ldw = in(reg) $ldw,
            d0 = in(reg) $dy[0], d1 = in(reg) $dy[1], d2 = in(reg) $dy[2], d3 = in(reg) $dy[3],
            n = in(reg) $n,
            dx = in(reg) $dx.as_ptr(),
            j = out(reg) _,
            t = out(reg) _,
        )
    };
}

/// Input gradient, one tile of 4 rows x 64 inputs (4 vectors) over all `n` neurons:
/// `dx_r[0..64] = sum_j dy_r[j] * w[j*ldw .. +64]`.
///
/// `w` points at column i of neuron 0; `ldw_bytes` is the byte stride between neurons (4k).
/// `dy[r]` is row r of dy (n floats); `dx[r]` receives 64 floats (may be a dummy for missing
/// rows). Per neuron: 4 broadcasts of `dy_r[j]`, 4 loads of the weight row, 16 FMAs.
///
/// Registers: zmm0-15 accumulators (row r, vector v -> zmm(4r+v)), zmm16-19 weights,
/// zmm20-23 broadcast dy.
///
/// # Safety
/// AVX-512 present; `n >= 1`; pointers valid as described.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn input_grad_tile4x4(
    w: *const f32,
    ldw_bytes: usize,
    dy: [*const f32; 4],
    n: usize,
    dx: &[*mut f32; 4],
) {
    debug_assert!(n >= 1);
    input_grad_asm!(
        first: [],
        args: (w, ldw_bytes, dy, n, dx),
        setup: [zero_accumulators_4x4!()],
        load: [
            "vmovups zmm16, [{w}]",
            "vmovups zmm17, [{w} + 64]",
            "vmovups zmm18, [{w} + 128]",
            "vmovups zmm19, [{w} + 192]",
            "prefetcht1 [{w} + 512]", "prefetcht1 [{w} + 576]",
            "prefetcht1 [{w} + 640]", "prefetcht1 [{w} + 704]",
        ],
        fma: [fma_broadcasts_4x4!()],
        store: [
            "mov {t}, [{dx}]",
            "vmovups [{t}], zmm0", "vmovups [{t} + 64], zmm1",
            "vmovups [{t} + 128], zmm2", "vmovups [{t} + 192], zmm3",
            "mov {t}, [{dx} + 8]",
            "vmovups [{t}], zmm4", "vmovups [{t} + 64], zmm5",
            "vmovups [{t} + 128], zmm6", "vmovups [{t} + 192], zmm7",
            "mov {t}, [{dx} + 16]",
            "vmovups [{t}], zmm8", "vmovups [{t} + 64], zmm9",
            "vmovups [{t} + 128], zmm10", "vmovups [{t} + 192], zmm11",
            "mov {t}, [{dx} + 24]",
            "vmovups [{t}], zmm12", "vmovups [{t} + 64], zmm13",
            "vmovups [{t} + 128], zmm14", "vmovups [{t} + 192], zmm15",
        ],
    );
}

/// Input gradient, 4 rows x one vector of up to 16 inputs (lanes in `mask`): the tail of
/// [`input_grad_tile4x4`]. Weight loads and dx stores are masked, so nothing outside the lanes is
/// read or written.
///
/// Registers: zmm0-3 accumulators, zmm16 weights, zmm20-23 broadcast dy, k1 lane mask.
///
/// # Safety
/// As [`input_grad_tile4x4`], each `dx[r]` valid for the lanes in `mask`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn input_grad_tile4x1(
    w: *const f32,
    ldw_bytes: usize,
    dy: [*const f32; 4],
    n: usize,
    dx: &[*mut f32; 4],
    mask: u32,
) {
    debug_assert!(n >= 1);
    input_grad_asm!(
        first: [m = in(reg) mask,],
        args: (w, ldw_bytes, dy, n, dx),
        setup: [
            "kmovw k1, {m:e}",
            "vpxord zmm0, zmm0, zmm0",
            "vmovaps zmm1, zmm0", "vmovaps zmm2, zmm0", "vmovaps zmm3, zmm0",
        ],
        load: ["vmovups zmm16 {{k1}}{{z}}, [{w}]"],
        fma: [
            "vfmadd231ps zmm0, zmm20, zmm16",
            "vfmadd231ps zmm1, zmm21, zmm16",
            "vfmadd231ps zmm2, zmm22, zmm16",
            "vfmadd231ps zmm3, zmm23, zmm16",
        ],
        store: [
            "mov {t}, [{dx}]", "vmovups [{t}] {{k1}}, zmm0",
            "mov {t}, [{dx} + 8]", "vmovups [{t}] {{k1}}, zmm1",
            "mov {t}, [{dx} + 16]", "vmovups [{t}] {{k1}}, zmm2",
            "mov {t}, [{dx} + 24]", "vmovups [{t}] {{k1}}, zmm3",
        ],
    );
}

/// Where a weight-gradient tile reads: the inputs and output gradients of `rows` rows and the
/// four neurons of the tile.
///
/// `x` points at the tile's first input column in row 0, `ldx_bytes` = 4k; `dy` at row 0 of
/// dy, `ldy_bytes` = 4n; `col_bytes[j]` = 4 * (neuron index) of tile neuron j (repeat the last
/// one for missing neurons); `rows >= 1`.
#[derive(Clone, Copy, Debug)]
pub struct WeightGradTile {
    pub x: *const f32,
    pub ldx_bytes: usize,
    pub dy: *const f32,
    pub ldy_bytes: usize,
    pub col_bytes: [usize; 4],
    pub rows: usize,
}

/// The main loop shared by [`bwd_weights_tile4x4`] and [`bwd_weights_sgd_tile4x4`], as one
/// template string: zero the 16 accumulators, then per row 4 input loads, 4 broadcasts of dy,
/// 16 FMAs; rows added in order 0, 1, 2, ... Operands `{x}`, `{ldx}`, `{dy}`, `{ldy}`,
/// `{c0}`..`{c3}`, `{r}`; local label `2`.
macro_rules! weight_grad_rows_4x4 {
    () => {
        concat!(
            zero_accumulators_4x4!(),
            "2:\n",
            "vmovups zmm16, [{x}]\n",
            "vmovups zmm17, [{x} + 64]\n",
            "vmovups zmm18, [{x} + 128]\n",
            "vmovups zmm19, [{x} + 192]\n",
            "vbroadcastss zmm20, dword ptr [{dy} + {c0}]\n",
            "vbroadcastss zmm21, dword ptr [{dy} + {c1}]\n",
            "vbroadcastss zmm22, dword ptr [{dy} + {c2}]\n",
            "vbroadcastss zmm23, dword ptr [{dy} + {c3}]\n",
            fma_broadcasts_4x4!(),
            "add {x}, {ldx}\n",
            "add {dy}, {ldy}\n",
            "dec {r}\n",
            "jnz 2b\n",
        )
    };
}

/// [`weight_grad_rows_4x4!`] with its epilogue and the operands it names: `$epilogue` are the
/// template lines after the loop, `$more` the operands they add.
macro_rules! weight_grad_tile_4x4 {
    ($tile:expr; $($epilogue:expr),+ $(,)?; $($more:tt)*) => {
        asm_zmm!(
            weight_grad_rows_4x4!(),
            $($epilogue),+;
            x = inout(reg) $tile.x => _,
            ldx = in(reg) $tile.ldx_bytes,
            dy = inout(reg) $tile.dy => _,
            ldy = in(reg) $tile.ldy_bytes,
            c0 = in(reg) $tile.col_bytes[0], c1 = in(reg) $tile.col_bytes[1],
            c2 = in(reg) $tile.col_bytes[2], c3 = in(reg) $tile.col_bytes[3],
            r = inout(reg) $tile.rows => _,
            $($more)*
        )
    };
}

/// Weight gradient, one tile of 4 neurons x 64 inputs over all `tile.rows`, overwriting:
/// `dw_j[0..64] = sum_r dy[r][j] * x_r[0..64]`, rows added in order 0, 1, 2, ...
///
/// `dw[j]` receives 64 floats (a dummy for missing neurons).
///
/// Registers: zmm0-15 accumulators (neuron j, vector v -> zmm(4j+v)), zmm16-19 the input
/// vectors of a row, zmm20-23 broadcast dy.
///
/// # Safety
/// AVX-512 present; `tile.rows >= 1`; pointers valid as described.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn bwd_weights_tile4x4(tile: &WeightGradTile, dw: &[*mut f32; 4]) {
    debug_assert!(tile.rows >= 1);
    weight_grad_tile_4x4!(
        tile;
        "mov {t}, [{dw}]",
        "prefetchw [{t} + 256]", "prefetchw [{t} + 320]",
        "prefetchw [{t} + 384]", "prefetchw [{t} + 448]",
        "vmovups [{t}], zmm0", "vmovups [{t} + 64], zmm1",
        "vmovups [{t} + 128], zmm2", "vmovups [{t} + 192], zmm3",
        "mov {t}, [{dw} + 8]",
        "prefetchw [{t} + 256]", "prefetchw [{t} + 320]",
        "prefetchw [{t} + 384]", "prefetchw [{t} + 448]",
        "vmovups [{t}], zmm4", "vmovups [{t} + 64], zmm5",
        "vmovups [{t} + 128], zmm6", "vmovups [{t} + 192], zmm7",
        "mov {t}, [{dw} + 16]",
        "prefetchw [{t} + 256]", "prefetchw [{t} + 320]",
        "prefetchw [{t} + 384]", "prefetchw [{t} + 448]",
        "vmovups [{t}], zmm8", "vmovups [{t} + 64], zmm9",
        "vmovups [{t} + 128], zmm10", "vmovups [{t} + 192], zmm11",
        "mov {t}, [{dw} + 24]",
        "prefetchw [{t} + 256]", "prefetchw [{t} + 320]",
        "prefetchw [{t} + 384]", "prefetchw [{t} + 448]",
        "vmovups [{t}], zmm12", "vmovups [{t} + 64], zmm13",
        "vmovups [{t} + 128], zmm14", "vmovups [{t} + 192], zmm15";
        dw = in(reg) dw.as_ptr(),
        t = out(reg) _,
    );
}

/// Weight gradient fused with the plain SGD step, one tile of 4 neurons x 64 inputs over all
/// `tile.rows`: the gradient `g_j[0..64] = sum_r dy[r][j] * x_r[0..64]` is formed by the same
/// loop as in [`bwd_weights_tile4x4`] (rows added in order 0, 1, 2, ... from zero), then instead
/// of being stored it updates the weights in place, `w_j[0..64] = w_j - scale * g_j` with one
/// `vfnmadd231ps` per vector: bit for bit what storing `g` and running
/// [`crate::kernels::update::sgd`] over it gives. The gradient never goes to memory.
///
/// `w[j]` = the 64 weights of tile neuron j at the tile's inputs (a dummy for missing neurons)
/// and `scale` = `lr / batch`.
///
/// Registers: zmm0-15 accumulators (neuron j, vector v -> zmm(4j+v)), zmm16-19 the input
/// vectors of a row, zmm20-23 broadcast dy; in the epilogue zmm24 = broadcast `scale` and
/// zmm16-19 the weights being updated.
///
/// # Safety
/// AVX-512 present; `tile.rows >= 1`; pointers valid as described; nobody else reads or writes
/// the four 64-float weight runs during the call.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn bwd_weights_sgd_tile4x4(tile: &WeightGradTile, w: &[*mut f32; 4], scale: f32) {
    debug_assert!(tile.rows >= 1);
    weight_grad_tile_4x4!(
        tile;
        "vbroadcastss zmm24, dword ptr [{sc}]",
        "mov {t}, [{w} + 0]",
        "vmovups zmm16, [{t}]", "vmovups zmm17, [{t} + 64]",
        "vmovups zmm18, [{t} + 128]", "vmovups zmm19, [{t} + 192]",
        "vfnmadd231ps zmm16, zmm24, zmm0", "vfnmadd231ps zmm17, zmm24, zmm1",
        "vfnmadd231ps zmm18, zmm24, zmm2", "vfnmadd231ps zmm19, zmm24, zmm3",
        "vmovups [{t}], zmm16", "vmovups [{t} + 64], zmm17",
        "vmovups [{t} + 128], zmm18", "vmovups [{t} + 192], zmm19",
        "mov {t}, [{w} + 8]",
        "vmovups zmm16, [{t}]", "vmovups zmm17, [{t} + 64]",
        "vmovups zmm18, [{t} + 128]", "vmovups zmm19, [{t} + 192]",
        "vfnmadd231ps zmm16, zmm24, zmm4", "vfnmadd231ps zmm17, zmm24, zmm5",
        "vfnmadd231ps zmm18, zmm24, zmm6", "vfnmadd231ps zmm19, zmm24, zmm7",
        "vmovups [{t}], zmm16", "vmovups [{t} + 64], zmm17",
        "vmovups [{t} + 128], zmm18", "vmovups [{t} + 192], zmm19",
        "mov {t}, [{w} + 16]",
        "vmovups zmm16, [{t}]", "vmovups zmm17, [{t} + 64]",
        "vmovups zmm18, [{t} + 128]", "vmovups zmm19, [{t} + 192]",
        "vfnmadd231ps zmm16, zmm24, zmm8", "vfnmadd231ps zmm17, zmm24, zmm9",
        "vfnmadd231ps zmm18, zmm24, zmm10", "vfnmadd231ps zmm19, zmm24, zmm11",
        "vmovups [{t}], zmm16", "vmovups [{t} + 64], zmm17",
        "vmovups [{t} + 128], zmm18", "vmovups [{t} + 192], zmm19",
        "mov {t}, [{w} + 24]",
        "vmovups zmm16, [{t}]", "vmovups zmm17, [{t} + 64]",
        "vmovups zmm18, [{t} + 128]", "vmovups zmm19, [{t} + 192]",
        "vfnmadd231ps zmm16, zmm24, zmm12", "vfnmadd231ps zmm17, zmm24, zmm13",
        "vfnmadd231ps zmm18, zmm24, zmm14", "vfnmadd231ps zmm19, zmm24, zmm15",
        "vmovups [{t}], zmm16", "vmovups [{t} + 64], zmm17",
        "vmovups [{t} + 128], zmm18", "vmovups [{t} + 192], zmm19";
        w = in(reg) w.as_ptr(),
        sc = in(reg) &scale as *const f32,
        t = out(reg) _,
    );
}

/// Weight gradient tail: 4 neurons x one vector of up to 16 inputs (lanes in `mask`); loads of
/// x and stores of dw are masked.
///
/// Registers: zmm0-3 accumulators, zmm16 inputs, zmm20-23 broadcast dy, k1 lane mask.
///
/// # Safety
/// As [`bwd_weights_tile4x4`], each `dw[j]` valid for the lanes in `mask`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn bwd_weights_tile4x1(tile: &WeightGradTile, dw: &[*mut f32; 4], mask: u32) {
    debug_assert!(tile.rows >= 1);
    asm_zmm!(
        "kmovw k1, {m:e}",
        "vpxord zmm0, zmm0, zmm0",
        "vmovaps zmm1, zmm0", "vmovaps zmm2, zmm0", "vmovaps zmm3, zmm0",
        "2:",
        "vmovups zmm16 {{k1}}{{z}}, [{x}]",
        "vbroadcastss zmm20, dword ptr [{dy} + {c0}]",
        "vbroadcastss zmm21, dword ptr [{dy} + {c1}]",
        "vbroadcastss zmm22, dword ptr [{dy} + {c2}]",
        "vbroadcastss zmm23, dword ptr [{dy} + {c3}]",
        "vfmadd231ps zmm0, zmm20, zmm16",
        "vfmadd231ps zmm1, zmm21, zmm16",
        "vfmadd231ps zmm2, zmm22, zmm16",
        "vfmadd231ps zmm3, zmm23, zmm16",
        "add {x}, {ldx}",
        "add {dy}, {ldy}",
        "dec {r}",
        "jnz 2b",
        "mov {t}, [{dw}]", "vmovups [{t}] {{k1}}, zmm0",
        "mov {t}, [{dw} + 8]", "vmovups [{t}] {{k1}}, zmm1",
        "mov {t}, [{dw} + 16]", "vmovups [{t}] {{k1}}, zmm2",
        "mov {t}, [{dw} + 24]", "vmovups [{t}] {{k1}}, zmm3",
        ;
        m = in(reg) mask,
        x = inout(reg) tile.x => _,
        ldx = in(reg) tile.ldx_bytes,
        dy = inout(reg) tile.dy => _,
        ldy = in(reg) tile.ldy_bytes,
        c0 = in(reg) tile.col_bytes[0], c1 = in(reg) tile.col_bytes[1],
        c2 = in(reg) tile.col_bytes[2], c3 = in(reg) tile.col_bytes[3],
        r = inout(reg) tile.rows => _,
        dw = in(reg) dw.as_ptr(),
        t = out(reg) _,
    );
}

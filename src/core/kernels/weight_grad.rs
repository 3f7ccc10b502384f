//! `asm!` micro-kernels for the weight and bias gradients of the 3x3 convolution.
//!
//! # The computation as a GEMM
//!
//! For a fixed kernel row `ky`, the 3 pixels x `cin` channels that a filter row touches are
//! `3*cin` contiguous floats of the padded input row: `j = kx*cin + ic` indexes them, and pixel
//! `(y, x)` sees them at `x_pad[y+ky][x][j]` (reading past `x` into `x+1`, `x+2`). So
//!
//! ```text
//! dw_kc[ky][j][oc] = sum over pixels (y, x) of  x_pad[y+ky][x][j]  *  dy[y][x][oc]
//!                     C[m][n]        =   sum_k       A[m][k]      *    B[k][n]
//! ```
//!
//! a GEMM with `m = j` (rows of the KC-layout weight gradient), `n = oc` and a long `k` over
//! pixels. A is never formed: its column for pixel `k` is read straight out of `x_pad`.
//!
//! # The micro-kernel (BLIS style)
//!
//! A kernel owns one `R x (NV*16)` tile of C: `R` consecutive `j` (one row of `dw_kc` each,
//! `cout` floats apart) by `NV` ZMM registers of 16 output channels. The tile lives in `R*NV`
//! ZMM accumulators for the whole pixel loop. Per pixel it does
//!
//! - `NV` loads `vmovups zmmD, [dy + 64*v]` (16 channels each) of the output gradient,
//! - `R` broadcasts `vbroadcastss zmmT, [x + 4*r]` of one input value each,
//! - `R*NV` FMAs `vfmadd231ps acc[r][v], zmmD[v], zmmT`,
//!
//! then steps `x` by one pixel (`cin` floats) and `dy` by one pixel (`cout` floats). Pixels are
//! visited as a `rows x cols` rectangle: after `cols` pixels both pointers jump over the padding
//! to the next row. At the end the tile is stored; before the loop it is either zeroed (first
//! block of pixels) or loaded from C (later blocks accumulate). The loops over tiles and over
//! pixel blocks are in `crate::layers::conv::ConvPlan::weight_grad`; nothing here knows the layer.
//!
//! Variants (all keep `R*NV <= 24` accumulators in `zmm0..zmm23`, output-gradient vectors in
//! `zmm24..zmm27`, broadcast values alternating in `zmm30`/`zmm31`):
//!
//! | kernel | R | NV | accumulators | dy | used for |
//! |---|---|---|---|---|---|
//! | [`weight_grad_6x4`] | 6 | 4 | zmm0..23, row r = zmm(4r..4r+3) | zmm24..27 | cin % 16 == 0, 64 channels |
//! | [`weight_grad_8x3`] | 8 | 3 | zmm0..23, row r = zmm(3r..3r+2) | zmm24..26 | cin % 16 == 0, 48-channel tail |
//! | [`weight_grad_12x2`] | 12 | 2 | zmm0..23, row r = zmm(2r, 2r+1) | zmm24..25 | cin % 16 == 0, 32-channel tail |
//! | [`weight_grad_24x1`] | 24 | 1 | zmm0..23, row r = zmm(r) | zmm24 | cin % 16 == 0, 16-channel tail |
//! | [`weight_grad_9x2`] | 9 | 2 | zmm0..17, row r = zmm(2r, 2r+1) | zmm24..25 | cin == 3 (conv1), 32 channels |
//! | [`weight_grad_9x1`] | 9 | 1 | zmm0..8, row r = zmm(r) | zmm24 | cin == 3, 16-channel tail |
//! | [`weight_grad_9x2_bias`] | 9 | 2 | as `weight_grad_9x2`, + bias sums in zmm18, zmm19 | zmm24..25 | cin == 3, kernel row 0 |
//! | [`weight_grad_9x1_bias`] | 9 | 1 | as `weight_grad_9x1`, + bias sum in zmm9 | zmm24 | cin == 3, kernel row 0, tail |
//! | [`weight_grad_4x4`] | 4 | 4 | zmm0..15, row r = zmm(4r..4r+3) | zmm24..27 | Winograd products, 64 channels |
//! | [`weight_grad_8x2`] | 8 | 2 | zmm0..15, row r = zmm(2r, 2r+1) | zmm24..25 | Winograd products, 32-channel tail |
//! | [`weight_grad_16x1`] | 16 | 1 | zmm0..15, row r = zmm(r) | zmm24 | Winograd products, 16-channel tail |
//!
//! `R` divides the `3*cin` values of a kernel row in every case (`3*cin` is 9, or a multiple of
//! 48), so there are no `j` tails. The Winograd weight gradient
//! (`crate::layers::conv::winograd::weight_grad`) runs these kernels with `j` = an input
//! channel of one of its 16 positions, so `R` must divide `cin` (a multiple of 16): hence the
//! 4-, 8- and 16-row shapes (the 48-channel tail reuses [`weight_grad_8x3`]). The bias gradient is a column sum of `dy`: for conv1 it is
//! fused into the tile of kernel row 0 (the `_bias` kernels: `NV` extra `vaddps` per pixel on
//! the `dy` vectors already loaded); for the others it is [`bias_16`], a separate pass that
//! costs `cout/16` adds per pixel against `9*cin*cout/16` FMAs.
//!
//! All loads and stores are unaligned forms (`vmovups`, `vbroadcastss`, `vaddps` from memory
//! with AVX-512 needs no alignment), so any `f32` slice works.

use super::asm;
use crate::kernels::asm_zmm;

/// Arguments of one weight-gradient tile kernel. Counts and strides are in floats; the kernel
/// converts them to bytes. All pointers may be unaligned.
#[derive(Clone, Copy, Debug)]
pub struct Tile {
    /// `x_pad` at the first pixel of the first row of the block, plus `j0` (first tile row).
    pub x: *const f32,
    /// `dy_pad` at the first pixel of the block (interior), plus `oc0` (first tile channel).
    pub dy: *const f32,
    /// `dw_kc` at row `(ky, j0)`, column `oc0`: the tile's top-left float.
    pub c: *mut f32,
    /// Floats between consecutive rows of C (`cout`).
    pub ldc: usize,
    /// Pixel rows of the block (>= 1).
    pub rows: usize,
    /// Pixels per row of the block (>= 1).
    pub cols: usize,
    /// Floats from one pixel to the next in `x_pad` (`cin`).
    pub x_px: usize,
    /// Floats from one pixel to the next in `dy_pad` (`cout`).
    pub dy_px: usize,
    /// Floats from a row of `x_pad` to the next (`(w+2)*cin`).
    pub x_row: usize,
    /// Floats from a row of `dy_pad` to the next (`(w+2)*cout`).
    pub dy_row: usize,
    /// `false`: C = this block's sum (overwrite). `true`: C += this block's sum.
    pub accumulate: bool,
    /// `db + oc0`, the bias gradient of the tile's channels: used only by the kernels that fuse
    /// the bias gradient ([`weight_grad_9x2_bias`], [`weight_grad_9x1_bias`]); the others ignore it.
    pub db: *mut f32,
}

/// How far ahead (in pixels) the bias-fused kernels prefetch the output gradient. Those kernels
/// are the first to touch each block of conv1's `dy` (2 MiB at 128x128x32, which with `x_pad`
/// does not fit the 2 MiB L2): `prefetcht0` 32 pixels (4 KiB) ahead hides the L3 latency,
/// measured +10% on conv1 (16 and 64 pixels were no better; asm_notes/convolution-weight-grad.md). A prefetch past the end of the
/// buffer is harmless: `prefetcht0` never faults.
pub const PF_PIXELS: usize = 32;

/// `vfmadd231ps acc, dy, bcast` for each (accumulator, dy register) pair, in lockstep.
macro_rules! fma_row {
    ($t:literal; [$($a:literal),*]; [$($d:literal),*]) => {
        concat!($("vfmadd231ps zmm", $a, ", zmm", $d, ", zmm", $t, "\n",)*)
    };
}

/// `vmovups acc, [{t} + off]` for each (accumulator, byte offset) pair: load one tile row.
macro_rules! load_row {
    ([$($a:literal),*]; [$($o:literal),*]) => {
        concat!($("vmovups zmm", $a, ", zmmword ptr [{t} + ", $o, "]\n",)*)
    };
}

/// `vmovups [{t} + off], acc` for each pair: store one tile row.
macro_rules! store_row {
    ([$($a:literal),*]; [$($o:literal),*]) => {
        concat!($("vmovups zmmword ptr [{t} + ", $o, "], zmm", $a, "\n",)*)
    };
}

/// `vpxord acc, acc, acc` for each accumulator of a row.
macro_rules! zero_row {
    ([$($a:literal),*]) => {
        concat!($("vpxord zmm", $a, ", zmm", $a, ", zmm", $a, "\n",)*)
    };
}

/// `vmovups dyV, [{dy} + off]`: the output gradient of one pixel, `NV` x 16 channels.
macro_rules! load_dy {
    ([$($d:literal),*]; [$($o:literal),*]) => {
        concat!($("vmovups zmm", $d, ", zmmword ptr [{dy} + ", $o, "]\n",)*)
    };
}

/// `vaddps b, b, dy` for each (bias accumulator, dy register) pair: the bias gradient.
macro_rules! add_row {
    ([$($b:literal),*]; [$($d:literal),*]) => {
        concat!($("vaddps zmm", $b, ", zmm", $b, ", zmm", $d, "\n",)*)
    };
}

/// `vmovups b, [{db} + off]`: load the bias accumulators.
/// `prefetcht0 [{dy} + {pf} + off]`: the output gradient `PF_PIXELS` pixels ahead.
macro_rules! prefetch_dy {
    ([$($o:literal),*]) => {
        concat!($("prefetcht0 [{dy} + {pf} + ", $o, "]\n",)*)
    };
}

macro_rules! load_bias {
    ([$($b:literal),*]; [$($o:literal),*]) => {
        concat!($("vmovups zmm", $b, ", zmmword ptr [{db} + ", $o, "]\n",)*)
    };
}

/// `vmovups [{db} + off], b`: store the bias accumulators.
macro_rules! store_bias {
    ([$($b:literal),*]; [$($o:literal),*]) => {
        concat!($("vmovups zmmword ptr [{db} + ", $o, "], zmm", $b, "\n",)*)
    };
}

/// One `R x NV` tile kernel from its register table:
/// `dy: [zmm numbers of the NV output-gradient vectors]`, `col: [their byte offsets]`,
/// `rows: [(r, broadcast register) => [NV accumulator registers], ...]`.
macro_rules! weight_grad_kernel {
    (
        $(#[$doc:meta])*
        fn $name:ident;
        dy: $dy:tt;
        col: $col:tt;
        rows: [$(($r:literal, $t:literal) => $acc:tt),* $(,)?];
    ) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU has AVX-512F. `rows`, `cols` >= 1. For every pixel `(i, p)` of the block
        /// (`i < rows`, `p < cols`), `x + i*x_row + p*x_px + r` (for each tile row `r`) and
        /// `dy + i*dy_row + p*dy_px + [0, NV*16)` are readable; `c + r*ldc + [0, NV*16)` is
        /// writable (and readable when `accumulate`).
        pub unsafe fn $name(a: &Tile) {
            debug_assert!(a.rows >= 1 && a.cols >= 1);
            let f = core::mem::size_of::<f32>();
            asm_zmm!(
                // -- tile prologue: C tile -> accumulators, or zeros --------------------------
                "test {t}, {t}",
                "jz 2f",
                "mov {t}, {c}",
                $(load_row!($acc; $col), "add {t}, {ldc}",)*
                "jmp 3f",
                "2:",
                $(zero_row!($acc),)*
                "3:",
                // -- row loop -------------------------------------------------------------------
                "4:",
                "mov {n}, {cols}",
                // -- pixel loop: NV loads, R broadcasts, R*NV FMAs -------------------------------
                ".p2align 5",
                "5:",
                load_dy!($dy; $col),
                $(
                    concat!("vbroadcastss zmm", $t, ", dword ptr [{x} + 4*", $r, "]\n"),
                    fma_row!($t; $acc; $dy),
                )*
                "add {x}, {x_px}",
                "add {dy}, {dy_px}",
                "dec {n}",
                "jnz 5b",
                "add {x}, {x_skip}",
                "add {dy}, {dy_skip}",
                "dec {rows}",
                "jnz 4b",
                // -- tile epilogue: accumulators -> C -------------------------------------------
                "mov {t}, {c}",
                $(store_row!($acc; $col), "add {t}, {ldc}",)*
                ;
                x = inout(reg) a.x => _,
                dy = inout(reg) a.dy => _,
                rows = inout(reg) a.rows => _,
                t = inout(reg) a.accumulate as usize => _,
                n = out(reg) _,
                c = in(reg) a.c,
                ldc = in(reg) a.ldc * f,
                cols = in(reg) a.cols,
                x_px = in(reg) a.x_px * f,
                dy_px = in(reg) a.dy_px * f,
                x_skip = in(reg) (a.x_row - a.cols * a.x_px) * f,
                dy_skip = in(reg) (a.dy_row - a.cols * a.dy_px) * f,
            );
        }
    };
}

/// As [`weight_grad_kernel!`], plus `bias: [NV registers]` that sum the output gradient of the tile's
/// channels over the block (`db`), sharing the `dy` loads of the tile.
macro_rules! weight_grad_kernel_bias {
    (
        $(#[$doc:meta])*
        fn $name:ident;
        dy: $dy:tt;
        col: $col:tt;
        bias: $bias:tt;
        rows: [$(($r:literal, $t:literal) => $acc:tt),* $(,)?];
    ) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As the kernels without bias, and `db + [0, NV*16)` is writable (and readable when
        /// `accumulate`).
        pub unsafe fn $name(a: &Tile) {
            debug_assert!(a.rows >= 1 && a.cols >= 1);
            let f = core::mem::size_of::<f32>();
            asm_zmm!(
                // -- prologue: C tile and db -> accumulators, or zeros ------------------------
                "test {t}, {t}",
                "jz 2f",
                "mov {t}, {c}",
                $(load_row!($acc; $col), "add {t}, {ldc}",)*
                load_bias!($bias; $col),
                "jmp 3f",
                "2:",
                $(zero_row!($acc),)*
                zero_row!($bias),
                "3:",
                // -- row loop -------------------------------------------------------------------
                "4:",
                "mov {n}, {cols}",
                // -- pixel loop: NV loads, NV prefetches, NV bias adds, R broadcasts, R*NV FMAs --
                ".p2align 5",
                "5:",
                load_dy!($dy; $col),
                prefetch_dy!($col),
                add_row!($bias; $dy),
                $(
                    concat!("vbroadcastss zmm", $t, ", dword ptr [{x} + 4*", $r, "]\n"),
                    fma_row!($t; $acc; $dy),
                )*
                "add {x}, {x_px}",
                "add {dy}, {dy_px}",
                "dec {n}",
                "jnz 5b",
                "add {x}, {x_skip}",
                "add {dy}, {dy_skip}",
                "dec {rows}",
                "jnz 4b",
                // -- epilogue: accumulators -> C tile and db -------------------------------------
                "mov {t}, {c}",
                $(store_row!($acc; $col), "add {t}, {ldc}",)*
                store_bias!($bias; $col),
                ;
                x = inout(reg) a.x => _,
                dy = inout(reg) a.dy => _,
                rows = inout(reg) a.rows => _,
                t = inout(reg) a.accumulate as usize => _,
                n = out(reg) _,
                c = in(reg) a.c,
                db = in(reg) a.db,
                pf = in(reg) PF_PIXELS * a.dy_px * f,
                ldc = in(reg) a.ldc * f,
                cols = in(reg) a.cols,
                x_px = in(reg) a.x_px * f,
                dy_px = in(reg) a.dy_px * f,
                x_skip = in(reg) (a.x_row - a.cols * a.x_px) * f,
                dy_skip = in(reg) (a.dy_row - a.cols * a.dy_px) * f,
            );
        }
    };
}

weight_grad_kernel! {
    /// Tile of 6 `j` x 64 channels: the main kernel for `cin % 16 == 0`.
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(4r) .. zmm(4r+3) | C row j0+r (r = 0..5), channels 0-15, 16-31, 32-47, 48-63 |
    /// | zmm24..27 | dy of the current pixel, channels 0-15 .. 48-63 |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    ///
    /// Per pixel: 4 loads + 6 broadcasts + 24 FMAs (12 cycles at 2 FMAs/cycle).
    fn weight_grad_6x4;
    dy: [24, 25, 26, 27];
    col: [0, 64, 128, 192];
    rows: [
        (0, 30) => [0, 1, 2, 3],
        (1, 31) => [4, 5, 6, 7],
        (2, 30) => [8, 9, 10, 11],
        (3, 31) => [12, 13, 14, 15],
        (4, 30) => [16, 17, 18, 19],
        (5, 31) => [20, 21, 22, 23],
    ];
}

weight_grad_kernel! {
    /// Tile of 8 `j` x 48 channels (`cin % 16 == 0`, `cout % 64 == 48` tail).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(3r), zmm(3r+1), zmm(3r+2) | C row j0+r (r = 0..7), channels 0-15, 16-31, 32-47 |
    /// | zmm24..26 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_8x3;
    dy: [24, 25, 26];
    col: [0, 64, 128];
    rows: [
        (0, 30) => [0, 1, 2],
        (1, 31) => [3, 4, 5],
        (2, 30) => [6, 7, 8],
        (3, 31) => [9, 10, 11],
        (4, 30) => [12, 13, 14],
        (5, 31) => [15, 16, 17],
        (6, 30) => [18, 19, 20],
        (7, 31) => [21, 22, 23],
    ];
}

weight_grad_kernel! {
    /// Tile of 12 `j` x 32 channels (`cin % 16 == 0`, `cout % 64 == 32` tail).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(2r), zmm(2r+1) | C row j0+r (r = 0..11), channels 0-15, 16-31 |
    /// | zmm24, zmm25 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_12x2;
    dy: [24, 25];
    col: [0, 64];
    rows: [
        (0, 30) => [0, 1],
        (1, 31) => [2, 3],
        (2, 30) => [4, 5],
        (3, 31) => [6, 7],
        (4, 30) => [8, 9],
        (5, 31) => [10, 11],
        (6, 30) => [12, 13],
        (7, 31) => [14, 15],
        (8, 30) => [16, 17],
        (9, 31) => [18, 19],
        (10, 30) => [20, 21],
        (11, 31) => [22, 23],
    ];
}

weight_grad_kernel! {
    /// Tile of 24 `j` x 16 channels (`cin % 16 == 0`, `cout % 64 == 16` tail).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(r) | C row j0+r (r = 0..23), channels 0-15 |
    /// | zmm24 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_24x1;
    dy: [24];
    col: [0];
    rows: [
        (0, 30) => [0],
        (1, 31) => [1],
        (2, 30) => [2],
        (3, 31) => [3],
        (4, 30) => [4],
        (5, 31) => [5],
        (6, 30) => [6],
        (7, 31) => [7],
        (8, 30) => [8],
        (9, 31) => [9],
        (10, 30) => [10],
        (11, 31) => [11],
        (12, 30) => [12],
        (13, 31) => [13],
        (14, 30) => [14],
        (15, 31) => [15],
        (16, 30) => [16],
        (17, 31) => [17],
        (18, 30) => [18],
        (19, 31) => [19],
        (20, 30) => [20],
        (21, 31) => [21],
        (22, 30) => [22],
        (23, 31) => [23],
    ];
}

weight_grad_kernel! {
    /// Tile of 4 `j` x 64 channels: the Winograd weight gradient's main kernel
    /// (`crate::layers::conv::winograd::weight_grad`), where `j` runs over `cin` input
    /// channels of one transformed position only (a power of two, which 6 does not divide).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(4r) .. zmm(4r+3) | C row j0+r (r = 0..3), channels 0-15, 16-31, 32-47, 48-63 |
    /// | zmm24..27 | dy of the current pixel, channels 0-15 .. 48-63 |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    ///
    /// Per pixel: 4 loads + 4 broadcasts + 16 FMAs (8 cycles at 2 FMAs/cycle).
    fn weight_grad_4x4;
    dy: [24, 25, 26, 27];
    col: [0, 64, 128, 192];
    rows: [
        (0, 30) => [0, 1, 2, 3],
        (1, 31) => [4, 5, 6, 7],
        (2, 30) => [8, 9, 10, 11],
        (3, 31) => [12, 13, 14, 15],
    ];
}

weight_grad_kernel! {
    /// Tile of 8 `j` x 32 channels (Winograd weight gradient, 32-channel slabs / tails).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(2r), zmm(2r+1) | C row j0+r (r = 0..7), channels 0-15, 16-31 |
    /// | zmm24, zmm25 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_8x2;
    dy: [24, 25];
    col: [0, 64];
    rows: [
        (0, 30) => [0, 1],
        (1, 31) => [2, 3],
        (2, 30) => [4, 5],
        (3, 31) => [6, 7],
        (4, 30) => [8, 9],
        (5, 31) => [10, 11],
        (6, 30) => [12, 13],
        (7, 31) => [14, 15],
    ];
}

weight_grad_kernel! {
    /// Tile of 16 `j` x 16 channels (Winograd weight gradient, 16-channel tail).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(r) | C row j0+r (r = 0..15), channels 0-15 |
    /// | zmm24 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_16x1;
    dy: [24];
    col: [0];
    rows: [
        (0, 30) => [0],
        (1, 31) => [1],
        (2, 30) => [2],
        (3, 31) => [3],
        (4, 30) => [4],
        (5, 31) => [5],
        (6, 30) => [6],
        (7, 31) => [7],
        (8, 30) => [8],
        (9, 31) => [9],
        (10, 30) => [10],
        (11, 31) => [11],
        (12, 30) => [12],
        (13, 31) => [13],
        (14, 30) => [14],
        (15, 31) => [15],
    ];
}

weight_grad_kernel! {
    /// Tile of 9 `j` x 32 channels: a whole kernel row of conv1 (`cin == 3`: 3 pixels x RGB).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(2r), zmm(2r+1) | C row j = r (r = 0..8: kx = r/3, ic = r%3), channels 0-15, 16-31 |
    /// | zmm24, zmm25 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    ///
    /// Per pixel: 2 loads + 9 broadcasts + 18 FMAs (9 cycles at 2 FMAs/cycle).
    fn weight_grad_9x2;
    dy: [24, 25];
    col: [0, 64];
    rows: [
        (0, 30) => [0, 1],
        (1, 31) => [2, 3],
        (2, 30) => [4, 5],
        (3, 31) => [6, 7],
        (4, 30) => [8, 9],
        (5, 31) => [10, 11],
        (6, 30) => [12, 13],
        (7, 31) => [14, 15],
        (8, 30) => [16, 17],
    ];
}

weight_grad_kernel! {
    /// Tile of 9 `j` x 16 channels (`cin == 3`, `cout % 32 == 16` tail).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(r) | C row j = r (r = 0..8), channels 0-15 |
    /// | zmm24 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_9x1;
    dy: [24];
    col: [0];
    rows: [
        (0, 30) => [0],
        (1, 31) => [1],
        (2, 30) => [2],
        (3, 31) => [3],
        (4, 30) => [4],
        (5, 31) => [5],
        (6, 30) => [6],
        (7, 31) => [7],
        (8, 30) => [8],
    ];
}

weight_grad_kernel_bias! {
    /// [`weight_grad_9x2`] plus the bias gradient of its 32 channels (conv1's first kernel row).
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(2r), zmm(2r+1) | C row j = r (r = 0..8), channels 0-15, 16-31 |
    /// | zmm18, zmm19 | bias gradient, channels 0-15, 16-31 |
    /// | zmm24, zmm25 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    ///
    /// Per pixel: 2 loads + 2 adds + 9 broadcasts + 18 FMAs.
    fn weight_grad_9x2_bias;
    dy: [24, 25];
    col: [0, 64];
    bias: [18, 19];
    rows: [
        (0, 30) => [0, 1],
        (1, 31) => [2, 3],
        (2, 30) => [4, 5],
        (3, 31) => [6, 7],
        (4, 30) => [8, 9],
        (5, 31) => [10, 11],
        (6, 30) => [12, 13],
        (7, 31) => [14, 15],
        (8, 30) => [16, 17],
    ];
}

weight_grad_kernel_bias! {
    /// [`weight_grad_9x1`] plus the bias gradient of its 16 channels.
    ///
    /// | register | holds |
    /// |---|---|
    /// | zmm(r) | C row j = r (r = 0..8), channels 0-15 |
    /// | zmm9 | bias gradient, channels 0-15 |
    /// | zmm24 | dy of the current pixel |
    /// | zmm30, zmm31 | broadcast x value (even / odd rows) |
    fn weight_grad_9x1_bias;
    dy: [24];
    col: [0];
    bias: [9];
    rows: [
        (0, 30) => [0],
        (1, 31) => [1],
        (2, 30) => [2],
        (3, 31) => [3],
        (4, 30) => [4],
        (5, 31) => [5],
        (6, 30) => [6],
        (7, 31) => [7],
        (8, 30) => [8],
    ];
}

/// Arguments of [`bias_16`]; counts and strides in floats, pointers may be unaligned.
#[derive(Clone, Copy, Debug)]
pub struct BiasCol {
    /// `dy_pad` at the first pixel of the block (interior), plus the first channel `oc0`.
    pub dy: *const f32,
    /// `db + oc0`: 16 floats, written (read too when `accumulate`).
    pub db: *mut f32,
    /// Pixel rows of the block (>= 1).
    pub rows: usize,
    /// Pixels per row of the block (>= 1).
    pub cols: usize,
    /// Floats from one pixel to the next (`cout`).
    pub dy_px: usize,
    /// Floats from one row to the next (`(w+2)*cout`).
    pub dy_row: usize,
    /// `false`: db = this block's sum; `true`: db += it.
    pub accumulate: bool,
}

/// Bias gradient of 16 channels over a `rows x cols` block of pixels: `db[0..16] (+)= sum dy`.
///
/// | register | holds |
/// |---|---|
/// | zmm0..3 | partial sums of pixels 4i, 4i+1, 4i+2, 4i+3 of a row (4 independent add chains) |
///
/// The row loop takes 4 pixels at a time (`vaddps zmmK, zmmK, [dy + K*stride]`), then single
/// pixels into zmm0; at the end zmm0..3 are added and stored to `db`.
///
/// # Safety
/// AVX-512F; `rows`, `cols` >= 1; `dy + i*dy_row + p*dy_px + [0, 16)` readable for every pixel
/// of the block; `db[0..16]` writable (readable when `accumulate`).
pub unsafe fn bias_16(a: &BiasCol) {
    debug_assert!(a.rows >= 1 && a.cols >= 1);
    let f = core::mem::size_of::<f32>();
    asm_zmm!(
        "vpxord zmm1, zmm1, zmm1",
        "vpxord zmm2, zmm2, zmm2",
        "vpxord zmm3, zmm3, zmm3",
        "test {t}, {t}",
        "jz 2f",
        "vmovups zmm0, zmmword ptr [{db}]",
        "jmp 3f",
        "2:",
        "vpxord zmm0, zmm0, zmm0",
        "3:",
        // row loop
        "4:",
        "mov {n}, {cols}",
        "cmp {n}, 4",
        "jb 6f",
        // 4 pixels per iteration
        "5:",
        "vaddps zmm0, zmm0, zmmword ptr [{dy}]",
        "vaddps zmm1, zmm1, zmmword ptr [{dy} + {px}]",
        "vaddps zmm2, zmm2, zmmword ptr [{dy} + 2*{px}]",
        "vaddps zmm3, zmm3, zmmword ptr [{dy} + {px3}]",
        "add {dy}, {px4}",
        "sub {n}, 4",
        "cmp {n}, 4",
        "jae 5b",
        // 0..3 leftover pixels of the row
        "6:",
        "test {n}, {n}",
        "jz 8f",
        "7:",
        "vaddps zmm0, zmm0, zmmword ptr [{dy}]",
        "add {dy}, {px}",
        "dec {n}",
        "jnz 7b",
        "8:",
        "add {dy}, {skip}",
        "dec {rows}",
        "jnz 4b",
        "vaddps zmm0, zmm0, zmm1",
        "vaddps zmm2, zmm2, zmm3",
        "vaddps zmm0, zmm0, zmm2",
        "vmovups zmmword ptr [{db}], zmm0",
        ;
        dy = inout(reg) a.dy => _,
        rows = inout(reg) a.rows => _,
        t = inout(reg) a.accumulate as usize => _,
        n = out(reg) _,
        db = in(reg) a.db,
        cols = in(reg) a.cols,
        px = in(reg) a.dy_px * f,
        px3 = in(reg) 3 * a.dy_px * f,
        px4 = in(reg) 4 * a.dy_px * f,
        skip = in(reg) (a.dy_row - a.cols * a.dy_px) * f,
    );
}

/// Software prefetch of `lines` consecutive 64-byte cache lines from `p` towards L2
/// (`prefetcht1`, one per line): the weight-gradient driver pulls the input rows of the next
/// pixel block while the current block computes (a sample's padded input was written in the
/// forward pass, long enough before to have left L2).
///
/// Registers: `p` the current line, `n` lines left. No vector registers.
///
/// # Safety
/// None needed beyond a valid `p` to form addresses: prefetches never fault, and nothing is
/// read or written architecturally.
pub unsafe fn prefetch_l2(p: *const f32, lines: usize) {
    if lines == 0 {
        return;
    }
    asm!(
        "2:",
        "prefetcht1 [{p}]",
        "add {p}, 64",
        "dec {n}",
        "jnz 2b",
        // No vzeroupper: no vector register is touched, so none is clobbered or left dirty.
        p = inout(reg) p => _,
        n = inout(reg) lines => _,
        options(nostack),
    );
}

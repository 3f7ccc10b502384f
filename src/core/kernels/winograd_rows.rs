//! `asm!` kernels of Winograd F(4,3) along each row (1-D), for a convolution with few input
//! channels (conv1: 3). See [`crate::layers::conv::winograd_rows`] for the algorithm and the
//! drivers, `asm_notes/winograd_rows.md` for the walk-through.
//!
//! With `cin` input channels (1 to 3), a padded input row of `w + 2` pixels is cut into tiles of
//! 6 pixels every 4 (tile `t` covers pixels `4t .. 4t+5`, its outputs `4t .. 4t+3`), and each
//! tile and channel is transformed once, `D = B^T x` (6 values from 6 pixels; `B^T` as
//! F(4x4)'s, [`crate::kernels::winograd4`]). Two tiles share a 16-lane vector, in lanes
//! `0 .. cin` (tile `2q`, channel `c` in lane `c`) and `4cin .. 5cin` (tile `2q+1`, lane
//! `4cin + c`): those are the lanes of one unaligned load at tile `2q`'s pixel `j`, since tile
//! `2q+1` starts 4 pixels (`4cin` floats) later. The other lanes are zero (masked loads); the
//! forward never reads them.
//!
//! Layout of the transformed rows `D` (one per padded input row): for each tile pair `q`, the 6
//! positions `p` of 16 floats, `D[row][q][p][lane]` (384 bytes per pair). Lanes of channels
//! `cin .. 3` are zero in both tiles' runs (they fall between or after the two runs), so the
//! weight-gradient kernel may always sum 3 channels.
//!
//! The weight gradient is the adjoint: `dU[ky][c][p][o] = sum_{y, tile} D[y+ky][tile][c][p] *
//! dM[y][tile][p][o]` with `dM = A dY` (4 output-gradient pixels of a tile -> 6 positions, F(4x4)'s
//! `a6!`, in registers: [`grad_rows`]), then `dw[ky][kx][c][o] = (G^T dU[ky][c][..][o])[kx]`
//! ([`weight_row_transform`], F(4x4)'s `gt6!`).

use crate::kernels::asm_zmm;
use crate::kernels::conv::pool_windows;
use crate::kernels::winograd4::{a6, bt6, gt6, gt_constants};
use std::mem::offset_of;

/// Input transform of one padded row: for pairs `q = 0..pairs`, `D[q][p][..] = B^T` of the
/// six masked loads at pixels `8q + j` (`j = 0..5`), each of 16 floats masked by `mask` (lanes
/// `0..cin` and `4cin..5cin`, or only the first run for a last, odd tile), others zero.
///
/// - `x`: pixel 0, channel 0 of the padded input row; `pix` bytes between pixels (`4 cin`).
/// - `d`: pair 0 of the row's `D`, 384 bytes per pair, 64 per position.
///
/// Registers: `zmm0..5` the six loads, `zmm6..11` their transform (`bt6!`, temps `zmm12, 13`,
/// `zmm31` = 4.0), `k1` the mask. Per pair: 6 masked loads, 13 transform instructions, 6 stores.
///
/// # Safety
/// AVX-512F available; the unmasked lanes of every load, and `pairs * 384` bytes at `d`, valid.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn input_row(x: *const f32, pix: usize, pairs: usize, d: *mut f32, mask: u16) {
    if pairs == 0 {
        return;
    }
    asm_zmm!(
        "kmovw k1, {mask:e}",
        "mov {t:e}, 0x40800000",
        "vpbroadcastd zmm31, {t:e}",
        "lea {p3}, [{pix} + {pix}*2]",
        "2:",
        "vmovups zmm0 {{k1}}{{z}}, zmmword ptr [{x}]",
        "vmovups zmm1 {{k1}}{{z}}, zmmword ptr [{x} + {pix}]",
        "vmovups zmm2 {{k1}}{{z}}, zmmword ptr [{x} + {pix}*2]",
        "vmovups zmm3 {{k1}}{{z}}, zmmword ptr [{x} + {p3}]",
        "lea {t}, [{x} + {pix}*4]",
        "vmovups zmm4 {{k1}}{{z}}, zmmword ptr [{t}]",
        "vmovups zmm5 {{k1}}{{z}}, zmmword ptr [{t} + {pix}]",
        bt6!(),
        "vmovups zmmword ptr [{d}], zmm6",
        "vmovups zmmword ptr [{d} + 64], zmm7",
        "vmovups zmmword ptr [{d} + 128], zmm8",
        "vmovups zmmword ptr [{d} + 192], zmm9",
        "vmovups zmmword ptr [{d} + 256], zmm10",
        "vmovups zmmword ptr [{d} + 320], zmm11",
        "lea {x}, [{x} + {pix}*8]",
        "add {d}, 384",
        "dec {n}",
        "jnz 2b",
        ;
        x = inout(reg) x => _,
        d = inout(reg) d => _,
        n = inout(reg) pairs => _,
        pix = in(reg) pix,
        mask = in(reg) mask as u32,
        p3 = out(reg) _,
        t = out(reg) _,
    );
}

/// What [`tile_2x4`] reads besides the weights (`#[repr(C)]`: the asm reads each field at
/// `offset_of!` of it; the offsets in the comments are for the reader).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RowTileArgs {
    /// 0: the tile's first value in `D` of its row 0 (padded row `y`): pair `t/2`, position 0,
    /// lane `(t%2) * 4cin`.
    pub d: *const f32,
    /// 8: bytes between rows of `D`.
    pub d_row: usize,
    /// 16: input channels (1 to 3): steps per kernel row.
    pub cin: usize,
    /// 24: the 32 bias values of the block.
    pub bias: *const f32,
    /// 32: store: output pixel `(y, 4t)`, channel 0 of the block; pool: pooled pixel
    /// `(y/2, 2t)`.
    pub out: *mut f32,
    /// 40: bytes between output pixels (store) or pooled pixels (pool): `cout * 4`.
    pub out_stride: usize,
    /// 48: store: bytes from output row `y` to row `y+1`; 0: pool instead.
    pub out_row: usize,
    /// 56: pool: argmax codes of pooled pixel `(y/2, 2t)` (16 bytes per channel vector), or
    /// null for none.
    pub argmax: *mut u8,
    /// 64: pool: bytes between the codes of neighbouring pooled pixels (`cout`).
    pub argmax_stride: usize,
}

/// Emits the six positions of one reduction step (kernel row `ky`, input channel `c`): per
/// position `p`, two weight vectors (`U[ky][c][p]`, 32 channels), the row-0 and row-1 values
/// of `D` broadcast, four FMAs. Entries: (weight registers, broadcast registers, the
/// accumulators (row 0 v0, v1, row 1 v0, v1), weight byte offset, `D` byte offset).
macro_rules! rows_step {
    ($(($w0:ident, $w1:ident, $x0:ident, $x1:ident, $a00:ident, $a01:ident, $a10:ident,
        $a11:ident, $woff:literal, $doff:literal)),* $(,)?) => {
        concat!($(
            "vmovups ", stringify!($w0), ", zmmword ptr [{wp} + ", $woff, "]\n",
            "vmovups ", stringify!($w1), ", zmmword ptr [{wp} + ", $woff, " + 64]\n",
            "vbroadcastss ", stringify!($x0), ", dword ptr [{b0} + ", $doff, "]\n",
            "vbroadcastss ", stringify!($x1), ", dword ptr [{b1} + ", $doff, "]\n",
            "vfmadd231ps ", stringify!($a00), ", ", stringify!($w0), ", ", stringify!($x0), "\n",
            "vfmadd231ps ", stringify!($a01), ", ", stringify!($w1), ", ", stringify!($x0), "\n",
            "vfmadd231ps ", stringify!($a10), ", ", stringify!($w0), ", ", stringify!($x1), "\n",
            "vfmadd231ps ", stringify!($a11), ", ", stringify!($w1), ", ", stringify!($x1), "\n",
        )*)
    };
}

/// The 1-D output transform `A^T` in place on one row and channel vector's six positions
/// `m0..m5`: `y0 -> m0`, `y1 -> m1`, `y2 -> m2`, `y3 -> m5` (`zmm24` a temp; `zmm25, 26, 27` =
/// 2.0, 4.0, 8.0): `s12 = m1+m2`, `d12 = m1-m2`, `s34 = m3+m4`, `d34 = m3-m4`,
/// `y0 = m0+s12+s34`, `y1 = d12+2d34`, `y2 = s12+4s34`, `y3 = m5+d12+8d34` (F(4x4)'s `at6!`,
/// with its results left where its inputs were).
macro_rules! at6_in_place {
    ($(($m0:ident, $m1:ident, $m2:ident, $m3:ident, $m4:ident, $m5:ident)),* $(,)?) => {
        concat!($(
            "vaddps zmm24, ", stringify!($m1), ", ", stringify!($m2), "\n",
            "vsubps ", stringify!($m1), ", ", stringify!($m1), ", ", stringify!($m2), "\n",
            "vaddps ", stringify!($m2), ", ", stringify!($m3), ", ", stringify!($m4), "\n",
            "vsubps ", stringify!($m3), ", ", stringify!($m3), ", ", stringify!($m4), "\n",
            "vaddps ", stringify!($m0), ", ", stringify!($m0), ", zmm24\n",
            "vaddps ", stringify!($m0), ", ", stringify!($m0), ", ", stringify!($m2), "\n",
            "vfmadd213ps ", stringify!($m2), ", zmm26, zmm24\n",
            "vaddps ", stringify!($m5), ", ", stringify!($m5), ", ", stringify!($m1), "\n",
            "vfmadd231ps ", stringify!($m5), ", ", stringify!($m3), ", zmm27\n",
            "vfmadd231ps ", stringify!($m1), ", ", stringify!($m3), ", zmm25\n",
        )*)
    };
}

/// The conv micro-kernel of F(4,3) along rows: **2 output rows x 4 pixels (one tile) x 32
/// output channels** over the whole reduction (3 kernel rows x `cin` channels x 6 positions),
/// then the output transform, ReLU, and either stores the 8 pixels or 2x2 max-pools them into 2
/// pooled pixels (with or without argmax codes, `pool_windows!`: the same instructions as
/// [`crate::kernels::pool::forward_row`] and `max_row`, so pooling here gives the bits of storing
/// then pooling). Arguments in [`RowTileArgs`]; `wp` the block's packed `U`: for each step
/// `(ky, c)` 6 positions of 32 floats (768 bytes per step).
///
/// ```text
/// m[r][p][o] = bias[o] * (p == 1) + sum_{ky, c} D[y+r+ky][tile][c][p] * U[ky][c][p][o]
/// out[r][0..4][o] = max(A^T m[r][..][o], 0)          (A^T's row sums of column 1 are all 1:
///                                                      the bias in m1 reaches each output once)
/// ```
///
/// | register | holds |
/// |---|---|
/// | `zmm0 .. zmm23` | accumulators: row `r`, position `p`, channel vector `v` in `zmm((6r+p)*2+v)`; after the transform, output pixels 0, 1, 2, 3 of a row and vector in its positions 0, 1, 2, 5 |
/// | `zmm24, 25` / `zmm26, 27` | weight vectors of even / odd positions; then the transform's temp and 2.0 / 4.0, 8.0; then the pool's codes and constants 1, 2, 3 |
/// | `zmm28, 29` / `zmm30, 31` | row 0, row 1 broadcasts of even / odd positions; then ReLU's zero (`zmm28`), the constant 4 (`zmm29`) |
/// | `b0`, `b1` (GPR) | row 0 and row 1 of `D` at the current step; then the output rows |
/// | `skp` | `D` at kernel row `ky`; then the codes |
/// | `s`, `cnt`, `seg` | `D`'s row bytes, steps left in the kernel row, kernel rows left; then the output pixel stride, 3 pixel strides (store) or the codes' stride (pool), a temp |
///
/// Per call: `3 cin` steps of 24 FMAs (12 weight loads, 12 broadcasts), then 40 transform
/// instructions, 16 `vmaxps`, 16 stores or the pool. (The direct kernels spend 72 FMAs per
/// step of 3 channels for the same 8 pixels x 32 channels: twice as many.)
///
/// # Safety
/// AVX-512F, BW and VL available; every address the arguments imply valid (no alignment
/// needed).
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl")
)]
pub unsafe fn tile_2x4(args: &RowTileArgs, wp: *const f32) {
    asm_zmm!(
        concat!(
            // Accumulators: zero, the bias in position 1 of both rows.
            "vpxord zmm0, zmm0, zmm0\n",
            "vpxord zmm1, zmm1, zmm1\n",
            "vpxord zmm4, zmm4, zmm4\n",
            "vpxord zmm5, zmm5, zmm5\n",
            "vpxord zmm6, zmm6, zmm6\n",
            "vpxord zmm7, zmm7, zmm7\n",
            "vpxord zmm8, zmm8, zmm8\n",
            "vpxord zmm9, zmm9, zmm9\n",
            "vpxord zmm10, zmm10, zmm10\n",
            "vpxord zmm11, zmm11, zmm11\n",
            "vpxord zmm12, zmm12, zmm12\n",
            "vpxord zmm13, zmm13, zmm13\n",
            "vpxord zmm16, zmm16, zmm16\n",
            "vpxord zmm17, zmm17, zmm17\n",
            "vpxord zmm18, zmm18, zmm18\n",
            "vpxord zmm19, zmm19, zmm19\n",
            "vpxord zmm20, zmm20, zmm20\n",
            "vpxord zmm21, zmm21, zmm21\n",
            "vpxord zmm22, zmm22, zmm22\n",
            "vpxord zmm23, zmm23, zmm23\n",
            "mov {seg}, qword ptr [{prm} + {o_bias}]\n",
            "vmovups zmm2, zmmword ptr [{seg}]\n",
            "vmovups zmm3, zmmword ptr [{seg} + 64]\n",
            "vmovaps zmm14, zmm2\n",
            "vmovaps zmm15, zmm3\n",
            // The reduction: kernel rows (3), input channels (cin), 6 positions unrolled.
            "mov {skp}, qword ptr [{prm} + {o_d}]\n",
            "mov {s}, qword ptr [{prm} + {o_d_row}]\n",
            "mov {seg}, 3\n",
            "2:\n",
            "mov {b0}, {skp}\n",
            "lea {b1}, [{skp} + {s}]\n",
            "mov {cnt}, qword ptr [{prm} + {o_cin}]\n",
            "3:\n",
            rows_step!(
                (zmm24, zmm25, zmm28, zmm29, zmm0, zmm1, zmm12, zmm13, "0", "0"),
                (zmm26, zmm27, zmm30, zmm31, zmm2, zmm3, zmm14, zmm15, "128", "64"),
                (zmm24, zmm25, zmm28, zmm29, zmm4, zmm5, zmm16, zmm17, "256", "128"),
                (zmm26, zmm27, zmm30, zmm31, zmm6, zmm7, zmm18, zmm19, "384", "192"),
                (zmm24, zmm25, zmm28, zmm29, zmm8, zmm9, zmm20, zmm21, "512", "256"),
                (zmm26, zmm27, zmm30, zmm31, zmm10, zmm11, zmm22, zmm23, "640", "320"),
            ),
            "add {wp}, 768\n",
            "add {b0}, 4\n",
            "add {b1}, 4\n",
            "dec {cnt}\n",
            "jnz 3b\n",
            "add {skp}, {s}\n",
            "dec {seg}\n",
            "jnz 2b\n",
            // Output transform, then ReLU.
            "mov {seg:e}, 0x40000000\n",
            "vpbroadcastd zmm25, {seg:e}\n",
            "mov {seg:e}, 0x40800000\n",
            "vpbroadcastd zmm26, {seg:e}\n",
            "mov {seg:e}, 0x41000000\n",
            "vpbroadcastd zmm27, {seg:e}\n",
            at6_in_place!(
                (zmm0, zmm2, zmm4, zmm6, zmm8, zmm10),
                (zmm1, zmm3, zmm5, zmm7, zmm9, zmm11),
                (zmm12, zmm14, zmm16, zmm18, zmm20, zmm22),
                (zmm13, zmm15, zmm17, zmm19, zmm21, zmm23),
            ),
            "vpxord zmm28, zmm28, zmm28\n",
            "vmaxps zmm0, zmm0, zmm28\n",
            "vmaxps zmm1, zmm1, zmm28\n",
            "vmaxps zmm2, zmm2, zmm28\n",
            "vmaxps zmm3, zmm3, zmm28\n",
            "vmaxps zmm4, zmm4, zmm28\n",
            "vmaxps zmm5, zmm5, zmm28\n",
            "vmaxps zmm10, zmm10, zmm28\n",
            "vmaxps zmm11, zmm11, zmm28\n",
            "vmaxps zmm12, zmm12, zmm28\n",
            "vmaxps zmm13, zmm13, zmm28\n",
            "vmaxps zmm14, zmm14, zmm28\n",
            "vmaxps zmm15, zmm15, zmm28\n",
            "vmaxps zmm16, zmm16, zmm28\n",
            "vmaxps zmm17, zmm17, zmm28\n",
            "vmaxps zmm22, zmm22, zmm28\n",
            "vmaxps zmm23, zmm23, zmm28\n",
            "mov {b0}, qword ptr [{prm} + {o_out}]\n",
            "mov {s}, qword ptr [{prm} + {o_out_stride}]\n",
            "mov {b1}, qword ptr [{prm} + {o_out_row}]\n",
            "test {b1}, {b1}\n",
            "jz 6f\n",
            // Store: output pixels x = 0..3 of rows 0 and 1.
            "add {b1}, {b0}\n",
            "lea {cnt}, [{s} + {s}*2]\n",
            "vmovups zmmword ptr [{b0}], zmm0\n",
            "vmovups zmmword ptr [{b0} + 64], zmm1\n",
            "vmovups zmmword ptr [{b0} + {s}], zmm2\n",
            "vmovups zmmword ptr [{b0} + {s} + 64], zmm3\n",
            "vmovups zmmword ptr [{b0} + {s}*2], zmm4\n",
            "vmovups zmmword ptr [{b0} + {s}*2 + 64], zmm5\n",
            "vmovups zmmword ptr [{b0} + {cnt}], zmm10\n",
            "vmovups zmmword ptr [{b0} + {cnt} + 64], zmm11\n",
            "vmovups zmmword ptr [{b1}], zmm12\n",
            "vmovups zmmword ptr [{b1} + 64], zmm13\n",
            "vmovups zmmword ptr [{b1} + {s}], zmm14\n",
            "vmovups zmmword ptr [{b1} + {s} + 64], zmm15\n",
            "vmovups zmmword ptr [{b1} + {s}*2], zmm16\n",
            "vmovups zmmword ptr [{b1} + {s}*2 + 64], zmm17\n",
            "vmovups zmmword ptr [{b1} + {cnt}], zmm22\n",
            "vmovups zmmword ptr [{b1} + {cnt} + 64], zmm23\n",
            "jmp 7f\n",
            // Pool: windows (pixels 0, 1) and (2, 3) of rows 0 and 1.
            "6:\n",
            "mov {skp}, qword ptr [{prm} + {o_argmax}]\n",
            pool_windows!(
                cstride: "[{prm} + {o_argmax_stride}]", codes: zmm24, zero: zmm28,
                consts: [zmm25, zmm26, zmm27, zmm29],
                windows: [
                    ("{b0}", "{skp}", [(zmm0, zmm2, zmm12, zmm14, "0", "0"),
                        (zmm1, zmm3, zmm13, zmm15, "64", "16")]),
                    ("{b0} + {s}", "{skp} + {cnt}", [(zmm4, zmm10, zmm16, zmm22, "0", "0"),
                        (zmm5, zmm11, zmm17, zmm23, "64", "16")]),
                ]
            ),
            "7:\n",
        ),
        ;
        wp = inout(reg) wp => _,
        b0 = out(reg) _,
        b1 = out(reg) _,
        s = out(reg) _,
        cnt = out(reg) _,
        seg = out(reg) _,
        skp = out(reg) _,
        prm = in(reg) args as *const RowTileArgs,
        o_d = const offset_of!(RowTileArgs, d),
        o_d_row = const offset_of!(RowTileArgs, d_row),
        o_cin = const offset_of!(RowTileArgs, cin),
        o_bias = const offset_of!(RowTileArgs, bias),
        o_out = const offset_of!(RowTileArgs, out),
        o_out_stride = const offset_of!(RowTileArgs, out_stride),
        o_out_row = const offset_of!(RowTileArgs, out_row),
        o_argmax = const offset_of!(RowTileArgs, argmax),
        o_argmax_stride = const offset_of!(RowTileArgs, argmax_stride),
    );
}

/// What [`grad_rows`] reads (`#[repr(C)]`: the asm reads each field at `offset_of!` of it; the
/// offsets in the comments are for the reader).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RowGradArgs {
    /// 0: `D` of the input row `y0 + ky` of the first output row `y0` (pair 0, position 0,
    /// lane 0).
    pub d: *const f32,
    /// 8: bytes between rows of `D`.
    pub d_row: usize,
    /// 16: the output gradient at pixel `(y0, 0)`, the group's first channel.
    pub dy: *const f32,
    /// 24: bytes between output-gradient rows.
    pub dy_row: usize,
    /// 32: bytes between output-gradient pixels (`cout * 4`).
    pub pix: usize,
    /// 40: output rows (at least 1).
    pub rows: usize,
    /// 48: whole tile pairs per row.
    pub pairs: usize,
    /// 56: nonzero: each row ends with an odd tile (the first of a last pair).
    pub odd: usize,
    /// 64: bytes from a pair's first tile's lanes to its second's (`16 cin`).
    pub lane: usize,
    /// 72: `dU` of this `ky` and group, `[c][p]` x 16 floats (18 vectors), accumulated.
    pub du: *mut f32,
    /// 80: the group's 16 bias-gradient sums, accumulated, or null.
    pub db: *mut f32,
}

/// One tile of [`grad_rows`] and [`grad_rows_pooled`], after its 4 output-gradient vectors are
/// in `zmm0..3`: `a6!` into `dM` (`zmm0, 6, 7, 8, 9, 3`), `dM[1]` (their sum) into the bias
/// sums, then per position `p` and channel `c` the `D` value at `{bd}` + `$lane` + `64p + 4c`
/// broadcast and one FMA into `dU[c][p]` (`zmm(10 + 6c + p)`).
macro_rules! grad_tile {
    ($lane:literal) => {
        concat!(
            a6!(),
            "vaddps zmm28, zmm28, zmm6\n",
            grad_fmas!($lane;
                (zmm10, zmm0, zmm29, "0"), (zmm16, zmm0, zmm30, "4"), (zmm22, zmm0, zmm29, "8"),
                (zmm11, zmm6, zmm30, "64"), (zmm17, zmm6, zmm29, "68"), (zmm23, zmm6, zmm30, "72"),
                (zmm12, zmm7, zmm29, "128"), (zmm18, zmm7, zmm30, "132"), (zmm24, zmm7, zmm29, "136"),
                (zmm13, zmm8, zmm30, "192"), (zmm19, zmm8, zmm29, "196"), (zmm25, zmm8, zmm30, "200"),
                (zmm14, zmm9, zmm29, "256"), (zmm20, zmm9, zmm30, "260"), (zmm26, zmm9, zmm29, "264"),
                (zmm15, zmm3, zmm30, "320"), (zmm21, zmm3, zmm29, "324"), (zmm27, zmm3, zmm30, "328"),
            ),
        )
    };
}

/// [`grad_rows`]' output-gradient vectors of a tile: 4 pixels at `{by}`, `{pix}` bytes apart
/// (`{p3}` = 3 of them), into `zmm0..3`.
macro_rules! dy_padded {
    () => {
        concat!(
            "vmovups zmm0, zmmword ptr [{by}]\n",
            "vmovups zmm1, zmmword ptr [{by} + {pix}]\n",
            "vmovups zmm2, zmmword ptr [{by} + {pix}*2]\n",
            "vmovups zmm3, zmmword ptr [{by} + {p3}]\n",
        )
    };
}

/// [`grad_rows_pooled`]'s output-gradient vectors of a tile, unpooled: the tile's 2 pooled
/// pixels' gradients at `{by}` and `{by} + {pix}` (`zmm4, 5`) and argmax codes at `{bc}` and
/// `{bc} + {cpix}` (widened to dwords, `zmm6, 7`); pixel `2j + i` of the tile gets pooled pixel
/// `j`'s gradient where its code is the window position of column `i` in this row
/// (`positions[0]` for `i = 0`, `positions[1]` for `i = 1`), else +0.0: the instructions of
/// [`crate::kernels::pool::backward_row`], so the values it would have stored.
macro_rules! dy_pooled {
    () => {
        concat!(
            "vmovups zmm4, zmmword ptr [{by}]\n",
            "vmovups zmm5, zmmword ptr [{by} + {pix}]\n",
            "vpmovzxbd zmm6, xmmword ptr [{bc}]\n",
            "vpmovzxbd zmm7, xmmword ptr [{bc} + {cpix}]\n",
            "vpcmpeqd k1, zmm6, dword ptr [{prm} + {o_pos0}]{{1to16}}\n",
            "vpcmpeqd k2, zmm6, dword ptr [{prm} + {o_pos1}]{{1to16}}\n",
            "vpcmpeqd k3, zmm7, dword ptr [{prm} + {o_pos0}]{{1to16}}\n",
            "vpcmpeqd k4, zmm7, dword ptr [{prm} + {o_pos1}]{{1to16}}\n",
            "vmovaps zmm0 {{k1}}{{z}}, zmm4\n",
            "vmovaps zmm1 {{k2}}{{z}}, zmm4\n",
            "vmovaps zmm2 {{k3}}{{z}}, zmm5\n",
            "vmovaps zmm3 {{k4}}{{z}}, zmm5\n",
        )
    };
}

/// Loads the 18 `dU` accumulators `zmm10..27` from `[{bd}]` (`load`) or stores them there.
macro_rules! du_accumulators {
    (load) => {
        concat!(
            ".irp i, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27\n",
            "vmovups zmm\\i, zmmword ptr [{bd} + 64*(\\i - 10)]\n",
            ".endr\n",
        )
    };
    (store) => {
        concat!(
            ".irp i, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27\n",
            "vmovups zmmword ptr [{bd} + 64*(\\i - 10)], zmm\\i\n",
            ".endr\n",
        )
    };
}

/// The start of [`grad_rows`] and [`grad_rows_pooled`]: `dU` into `zmm10..27` from the address
/// at `$du`, the bias sums into `zmm28` from the address at `$db` (zero when it is null), 4.0
/// into `zmm31`. Uses `{bd}` and the local label 2.
macro_rules! grad_start {
    ($du:literal, $db:literal) => {
        concat!(
            "mov {bd}, qword ptr ",
            $du,
            "\n",
            du_accumulators!(load),
            "vpxord zmm28, zmm28, zmm28\n",
            "mov {bd}, qword ptr ",
            $db,
            "\n",
            "test {bd}, {bd}\n",
            "jz 2f\n",
            "vmovups zmm28, zmmword ptr [{bd}]\n",
            "2:\n",
            "mov {bd:e}, 0x40800000\n",
            "vpbroadcastd zmm31, {bd:e}\n",
        )
    };
}

/// The end of both: `dU` and (when `$db` holds an address) the bias sums stored back. Uses
/// `{bd}` and the local label 7.
macro_rules! grad_end {
    ($du:literal, $db:literal) => {
        concat!(
            "mov {bd}, qword ptr ",
            $du,
            "\n",
            du_accumulators!(store),
            "mov {bd}, qword ptr ",
            $db,
            "\n",
            "test {bd}, {bd}\n",
            "jz 7f\n",
            "vmovups zmmword ptr [{bd}], zmm28\n",
            "7:\n",
        )
    };
}

/// One row's tiles in both kernels: `{q}` tile pairs (the second tile's `D` lanes `{lane}`
/// bytes further, the next pair 384 bytes on), then an odd last tile when the value at `$odd`
/// is nonzero. `$load` puts a tile's output-gradient vectors in `zmm0..3` and `$next` moves to
/// the next tile's. Uses the local labels 4, 5, 6.
macro_rules! grad_row {
    ($load:expr, $next:literal, $odd:literal) => {
        concat!(
            "test {q}, {q}\n",
            "jz 5f\n",
            "4:\n",
            $load,
            grad_tile!(""),
            $next,
            $load,
            grad_tile!(" + {lane}"),
            $next,
            "add {bd}, 384\n",
            "dec {q}\n",
            "jnz 4b\n",
            "5:\n",
            "cmp qword ptr ",
            $odd,
            ", 0\n",
            "je 6f\n",
            $load,
            grad_tile!(""),
            "6:\n",
        )
    };
}

/// The broadcasts and FMAs of [`grad_tile!`]: (accumulator, `dM` register, broadcast register,
/// byte offset of the `D` value from the tile's lanes).
macro_rules! grad_fmas {
    ($lane:literal; $(($acc:ident, $dm:ident, $b:ident, $off:literal)),* $(,)?) => {
        concat!($(
            "vbroadcastss ", stringify!($b), ", dword ptr [{bd}", $lane, " + ", $off, "]\n",
            "vfmadd231ps ", stringify!($acc), ", ", stringify!($dm), ", ", stringify!($b), "\n",
        )*)
    };
}

/// Weight-gradient kernel of F(4,3) along rows, one kernel row `ky` and one group of 16 output
/// channels over a band of output rows: for every row and tile, `dM = A dY` of the tile's 4
/// output-gradient vectors in registers, then `dU[c][p] += D[y+ky][tile][c][p] * dM[p]` for 3
/// channels x 6 positions (18 FMAs per tile, where the direct weight gradient spends 36 on 3
/// channels x 3 taps x 4 pixels), and the bias sums `+= dM[1]` (the sum of the 4 pixels).
/// Arguments in [`RowGradArgs`].
///
/// | register | holds |
/// |---|---|
/// | `zmm0..3` | the tile's 4 output-gradient vectors, then `dM` in `zmm0, 6, 7, 8, 9, 3` (`a6!`; temps `zmm4, 5`, `zmm1, 2` clobbered) |
/// | `zmm10 .. zmm27` | `dU[c][p]` in `zmm(10 + 6c + p)`, loaded from and stored back to `du` |
/// | `zmm28` | the bias sums (from `db`, or zero and not stored) |
/// | `zmm29, 30` | `D` values broadcast, alternately |
/// | `zmm31` | 4.0 (`a6!`) |
/// | `bd`, `by` (GPR) | the current tile's `D` and output gradient; `rd`, `ry` their rows |
/// | `q`, `r` | pairs left in the row, rows left |
/// | `pix`, `p3`, `lane` | the pixel stride, 3 of them, the second tile's lane offset |
///
/// Per tile: 4 loads, 9 + 1 transform instructions, 18 broadcasts, 18 FMAs.
///
/// # Safety
/// AVX-512F available; every address the arguments imply valid (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn grad_rows(args: &RowGradArgs) {
    asm_zmm!(
        grad_start!("[{prm} + {o_du}]", "[{prm} + {o_db}]"),
        "mov {pix}, qword ptr [{prm} + {o_pix}]",
        "lea {p3}, [{pix} + {pix}*2]",
        "mov {lane}, qword ptr [{prm} + {o_lane}]",
        "mov {rd}, qword ptr [{prm} + {o_d}]",
        "mov {ry}, qword ptr [{prm} + {o_dy}]",
        "mov {r}, qword ptr [{prm} + {o_rows}]",
        "3:",
        "mov {bd}, {rd}",
        "mov {by}, {ry}",
        "mov {q}, qword ptr [{prm} + {o_pairs}]",
        grad_row!(dy_padded!(), "lea {by}, [{by} + {pix}*4]\n", "[{prm} + {o_odd}]"),
        "add {rd}, qword ptr [{prm} + {o_d_row}]",
        "add {ry}, qword ptr [{prm} + {o_dy_row}]",
        "dec {r}",
        "jnz 3b",
        grad_end!("[{prm} + {o_du}]", "[{prm} + {o_db}]"),
        ;
        prm = in(reg) args as *const RowGradArgs,
        o_d = const offset_of!(RowGradArgs, d),
        o_d_row = const offset_of!(RowGradArgs, d_row),
        o_dy = const offset_of!(RowGradArgs, dy),
        o_dy_row = const offset_of!(RowGradArgs, dy_row),
        o_pix = const offset_of!(RowGradArgs, pix),
        o_rows = const offset_of!(RowGradArgs, rows),
        o_pairs = const offset_of!(RowGradArgs, pairs),
        o_odd = const offset_of!(RowGradArgs, odd),
        o_lane = const offset_of!(RowGradArgs, lane),
        o_du = const offset_of!(RowGradArgs, du),
        o_db = const offset_of!(RowGradArgs, db),
        bd = out(reg) _,
        by = out(reg) _,
        rd = out(reg) _,
        ry = out(reg) _,
        q = out(reg) _,
        r = out(reg) _,
        pix = out(reg) _,
        p3 = out(reg) _,
        lane = out(reg) _,
    );
}

/// What [`grad_rows_pooled`] reads (`#[repr(C)]`: the asm reads each field at `offset_of!` of it;
/// the offsets in the comments are for the reader).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RowGradPooledArgs {
    /// 0: `D` of the input row `y + ky` of the output row `y` (pair 0, position 0, lane 0).
    pub d: *const f32,
    /// 8: the pooled gradient at pooled pixel `(y/2, 0)`, the group's first channel.
    pub dpool: *const f32,
    /// 16: the argmax codes at pooled pixel `(y/2, 0)`, the group's first channel.
    pub codes: *const u8,
    /// 24: bytes between pooled pixels' gradients (`cout * 4`).
    pub pix: usize,
    /// 32: bytes between pooled pixels' codes (`cout`).
    pub cpix: usize,
    /// 40: whole tile pairs in the row.
    pub pairs: usize,
    /// 48: nonzero: the row ends with an odd tile.
    pub odd: usize,
    /// 56: bytes from a pair's first tile's lanes to its second's (`16 cin`).
    pub lane: usize,
    /// 64: `dU` of this `ky` and group (18 vectors), accumulated.
    pub du: *mut f32,
    /// 72: the group's 16 bias-gradient sums, accumulated, or null.
    pub db: *mut f32,
    /// 80: the codes of this row's even and odd columns' window positions: `2 (y%2)`,
    /// `2 (y%2) + 1`.
    pub positions: [u32; 2],
}

/// [`grad_rows`] for one output row, reading the gradient *before* the 2x2 max-pool's backward
/// (the pooled gradient and its argmax codes) and unpooling it in registers as
/// [`crate::kernels::pool::backward_row`] would (`dy_pooled!`): for a layer whose input gradient
/// is not needed (conv1), the pool's backward pass and its full-size output gradient (2 MiB for
/// conv1) disappear, with the same bits. Arguments in [`RowGradPooledArgs`]; registers as
/// [`grad_rows`], plus `zmm4..7` (the pooled gradients and codes, before `a6!` reuses them) and
/// `k1..4`; GPRs `bd`, `by`, `bc` (the tile's `D`, pooled gradient, codes), `q`, `pix`, `cpix`,
/// `lane`.
///
/// # Safety
/// AVX-512F available; every address the arguments imply valid (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn grad_rows_pooled(args: &RowGradPooledArgs) {
    asm_zmm!(
        grad_start!("[{prm} + {o_du}]", "[{prm} + {o_db}]"),
        "mov {pix}, qword ptr [{prm} + {o_pix}]",
        "mov {cpix}, qword ptr [{prm} + {o_cpix}]",
        "mov {lane}, qword ptr [{prm} + {o_lane}]",
        "mov {bd}, qword ptr [{prm} + {o_d}]",
        "mov {by}, qword ptr [{prm} + {o_dpool}]",
        "mov {bc}, qword ptr [{prm} + {o_codes}]",
        "mov {q}, qword ptr [{prm} + {o_pairs}]",
        grad_row!(
            dy_pooled!(),
            "lea {by}, [{by} + {pix}*2]\nlea {bc}, [{bc} + {cpix}*2]\n",
            "[{prm} + {o_odd}]"
        ),
        grad_end!("[{prm} + {o_du}]", "[{prm} + {o_db}]"),
        ;
        prm = in(reg) args as *const RowGradPooledArgs,
        o_d = const offset_of!(RowGradPooledArgs, d),
        o_dpool = const offset_of!(RowGradPooledArgs, dpool),
        o_codes = const offset_of!(RowGradPooledArgs, codes),
        o_pix = const offset_of!(RowGradPooledArgs, pix),
        o_cpix = const offset_of!(RowGradPooledArgs, cpix),
        o_pairs = const offset_of!(RowGradPooledArgs, pairs),
        o_odd = const offset_of!(RowGradPooledArgs, odd),
        o_lane = const offset_of!(RowGradPooledArgs, lane),
        o_du = const offset_of!(RowGradPooledArgs, du),
        o_db = const offset_of!(RowGradPooledArgs, db),
        o_pos0 = const offset_of!(RowGradPooledArgs, positions),
        o_pos1 = const offset_of!(RowGradPooledArgs, positions) + 4,
        bd = out(reg) _,
        by = out(reg) _,
        bc = out(reg) _,
        q = out(reg) _,
        pix = out(reg) _,
        cpix = out(reg) _,
        lane = out(reg) _,
    );
}

/// `dw[kx] = (G^T dU)[kx]` for `groups` groups of 16 channels: group `g` reads the 6 position
/// vectors at `du + g*du_group + 64p` bytes and writes tap `kx` to `dw + kx*kx_stride + 64g`
/// bytes (overwrite). F(4x4)'s 1-D `gt6!`: `zmm0..5` -> `zmm10..12`, temps `zmm6..9`,
/// `zmm28..31` = 1/4, 1/6, 1/12, 1/24.
///
/// # Safety
/// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn weight_row_transform(
    du: *const f32,
    du_group: usize,
    dw: *mut f32,
    kx_stride: usize,
    groups: usize,
) {
    if groups == 0 {
        return;
    }
    asm_zmm!(
        gt_constants!(),
        "2:",
        ".irp p, 0, 1, 2, 3, 4, 5",
        "vmovups zmm\\p, zmmword ptr [{u} + 64*\\p]",
        ".endr",
        gt6!(),
        "vmovups zmmword ptr [{d}], zmm10",
        "vmovups zmmword ptr [{d} + {ks}], zmm11",
        "vmovups zmmword ptr [{d} + {ks}*2], zmm12",
        "add {u}, {ug}",
        "add {d}, 64",
        "dec {n}",
        "jnz 2b",
        ;
        u = inout(reg) du => _,
        ug = in(reg) du_group,
        d = inout(reg) dw => _,
        ks = in(reg) kx_stride,
        n = inout(reg) groups => _,
        t = out(reg) _,
    );
}

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
//! `2q+1` starts 4 pixels (`4cin` floats) later. The other lanes are zero (masked loads) and
//! never read.
//!
//! Layout of the transformed rows `D` (one per padded input row): for each tile pair `q`, the 6
//! positions `p` of 16 floats, `D[row][q][p][lane]` (384 bytes per pair).

use crate::kernels::asm_zmm;
use crate::kernels::conv::pool_windows;
use crate::kernels::winograd4::bt6;

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

/// What [`tile_2x4`] reads besides the weights (`#[repr(C)]`: the asm uses the byte offsets in
/// the comments).
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
/// pooled pixels (with or without argmax codes, [`pool_windows!`]: the same instructions as
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
            "mov {seg}, qword ptr [{prm} + 24]\n",
            "vmovups zmm2, zmmword ptr [{seg}]\n",
            "vmovups zmm3, zmmword ptr [{seg} + 64]\n",
            "vmovaps zmm14, zmm2\n",
            "vmovaps zmm15, zmm3\n",
            // The reduction: kernel rows (3), input channels (cin), 6 positions unrolled.
            "mov {skp}, qword ptr [{prm}]\n",
            "mov {s}, qword ptr [{prm} + 8]\n",
            "mov {seg}, 3\n",
            "2:\n",
            "mov {b0}, {skp}\n",
            "lea {b1}, [{skp} + {s}]\n",
            "mov {cnt}, qword ptr [{prm} + 16]\n",
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
            "mov {b0}, qword ptr [{prm} + 32]\n",
            "mov {s}, qword ptr [{prm} + 40]\n",
            "mov {b1}, qword ptr [{prm} + 48]\n",
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
            "mov {skp}, qword ptr [{prm} + 56]\n",
            pool_windows!(
                cstride: "[{prm} + 64]", codes: zmm24, zero: zmm28,
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
    );
}

//! `asm!` kernels of the direct 3x3 convolution beyond the micro-kernel: the fused conv + ReLU +
//! 2x2 max-pool tiles that conv1's forward runs. Its plain tiles (forward and input gradient)
//! are the GEMM micro-kernel of [`crate::kernels::microkernel`], whose contract this one extends.
//!
//! # The fused conv + pool micro-kernels (`pool_tile_2xP`, [`POOL_TILES`])
//!
//! One call computes **2 output rows x P pixels (P = 6, 4, 2) x 32 output channels** (`NV = 2`)
//! over the *whole* reduction (no `accumulate`: the driver gives every segment of the block's
//! reduction in one `skips` list, chunk after chunk), adds the bias, applies ReLU, and 2x2
//! max-pools the tile in registers into `P/2` pooled pixels; the conv outputs are never stored.
//! Per conv output the instructions are those of the micro-kernel's contract (the reduction loop is the
//! same `reduction!` text, the same steps in the same order into one accumulator, then
//! `vaddps` bias, `vmaxps` zero), and per window those of
//! [`crate::kernels::pool::forward_row`] (`vmaxps m, m, x` in the order top-right,
//! bottom-left, bottom-right; with codes, `vcmpps GT` before each and `m <= 0` last, narrowed by
//! `vpmovdb`), so the pooled values and codes have the bits of the tile kernels followed by the
//! pool kernel. Arguments in [`PoolTileArgs`]: conv row 0's input as in [`TileArgs`], row 1's at
//! `in_row` bytes further; `out`/`out_stride` the pooled pixels; `argmax` null: no codes
//! (inference), else 16 code bytes per channel vector, `argmax_stride` bytes between pooled pixels.
//!
//! | register | holds |
//! |---|---|
//! | `zmm0 .. zmm(4P-1)` | accumulators: row `r`, pixel `p`, channel vector `v` in `zmm((r*P+p)*2+v)` |
//! | `zmm(4P), zmm(4P+1)` | the step's weight vectors, then the bias |
//! | `zmm(4P+2) .. zmm(4P+7)` | the first 4: input broadcasts (round-robin); after the reduction, in order: ReLU's zero, the codes (dwords), the codes 1..4 (`c1 .. c4`) |
//! | `b0, b1` / `b2, b3` (GPR) | row 0 / row 1 input bases (pixel `3i+m` of a row at `[b_i + s*m]`; P = 2: `b0`, `b1` one per row); in the pool, `b0` = pooled output, `s` its pixel stride |
//! | `skp`, `cnt` (GPR) | as in the micro-kernel during the reduction; in the pool, the codes' address and pixel stride |
//! | `seg` (GPR) | segments left; in the pool, the constants 1..4 on their way to `c1 .. c4` |
//!
//! The 2 x 6 tile runs 24 FMAs per step (2 weight loads, 12 broadcasts), the 14-pixel tile 28:
//! per FMA the same loads. conv1's 128-pixel rows are covered by 20 tiles of 6 and 2 of 4.

use crate::kernels::microkernel::{
    bases, bias_relu, bias_vectors, reduction, tile_asm, Tile, TileArgs,
};
use std::mem::offset_of;

/// What a fused conv + pool micro-kernel reads besides the weights (`#[repr(C)]`; the asm reads
/// each field at `offset_of!` of it; the offsets in the comments are for the reader): [`TileArgs`]
/// for the reduction over both rows, then row 1 and the pool's outputs (see "The fused conv + pool
/// micro-kernels" in the module docs).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PoolTileArgs {
    /// 0..72: `inp`, `in_stride`, `k`, `nseg`, `skips` as for [`TileArgs`] (conv row 0 of the
    /// tile); `out`, `out_stride`: pooled pixel 0 (channel 0 of the tile's block) and the bytes
    /// between pooled pixels; `bias`: 32 values, never null; `accumulate` unused (the whole
    /// reduction is one call).
    pub tile: TileArgs,
    /// 72: bytes from conv row 0's input to conv row 1's (a padded input row).
    pub in_row: usize,
    /// 80: argmax codes of pooled pixel 0 (16 bytes per channel vector), or null: no codes.
    pub argmax: *mut u8,
    /// 88: bytes between the codes of neighbouring pooled pixels (`cout`).
    pub argmax_stride: usize,
}

/// Signature shared by the fused conv + pool micro-kernels.
pub type PoolTileFn = unsafe fn(args: &PoolTileArgs, wp: *const f32);

/// The pool of the fused conv + pool micro-kernels (a `concat!` of template lines): 2x2 windows
/// of ReLU'd values already in registers, max-pooled with [`crate::kernels::pool::forward_row`]'s
/// instructions in its operand order (so the same bits and codes) when `{skp}` holds the codes'
/// address, or with `max_row`'s (no codes) when it is null. With codes it loads their pixel
/// stride from `cstride` (a memory operand) into `{cnt}` and uses `{seg}` for the constants 1..4 (`consts`),
/// `codes` for a window's dword codes; `zero` holds 0.0. Each entry of `windows` is a pooled
/// pixel: its output and codes addresses (template text), then per channel vector the window's
/// (top-left, top-right, bottom-left, bottom-right) registers and the vector's byte offsets in
/// the output and in the codes. Uses the local labels 4 and 5.
macro_rules! pool_windows {
    (
        cstride: $cs:literal, codes: $codes:ident, zero: $zero:ident,
        consts: [$c1:ident, $c2:ident, $c3:ident, $c4:ident],
        windows: [$(($oaddr:literal, $aaddr:literal,
            [$(($tl:ident, $tr:ident, $bl:ident, $br:ident, $ooff:literal, $aoff:literal)),*])),* $(,)?]
    ) => {
        concat!(
            "test {skp}, {skp}\n",
            "jz 4f\n",
            "mov {cnt}, qword ptr ", $cs, "\n",
            "mov {seg:e}, 1\n", "vpbroadcastd ", stringify!($c1), ", {seg:e}\n",
            "mov {seg:e}, 2\n", "vpbroadcastd ", stringify!($c2), ", {seg:e}\n",
            "mov {seg:e}, 3\n", "vpbroadcastd ", stringify!($c3), ", {seg:e}\n",
            "mov {seg:e}, 4\n", "vpbroadcastd ", stringify!($c4), ", {seg:e}\n",
            $( $(
                "vpxord ", stringify!($codes), ", ", stringify!($codes), ", ", stringify!($codes), "\n",
                "vcmpps k1, ", stringify!($tr), ", ", stringify!($tl), ", 0x1e\n",
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($tr), "\n",
                "vmovdqa32 ", stringify!($codes), " {{k1}}, ", stringify!($c1), "\n",
                "vcmpps k2, ", stringify!($bl), ", ", stringify!($tl), ", 0x1e\n",
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($bl), "\n",
                "vmovdqa32 ", stringify!($codes), " {{k2}}, ", stringify!($c2), "\n",
                "vcmpps k3, ", stringify!($br), ", ", stringify!($tl), ", 0x1e\n",
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($br), "\n",
                "vmovdqa32 ", stringify!($codes), " {{k3}}, ", stringify!($c3), "\n",
                "vcmpps k4, ", stringify!($tl), ", ", stringify!($zero), ", 0x12\n",
                "vmovdqa32 ", stringify!($codes), " {{k4}}, ", stringify!($c4), "\n",
                "vmovups zmmword ptr [", $oaddr, " + ", $ooff, "], ", stringify!($tl), "\n",
                "vpmovdb xmmword ptr [", $aaddr, " + ", $aoff, "], ", stringify!($codes), "\n",
            )* )*
            "jmp 5f\n",
            "4:\n",
            $( $(
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($tr), "\n",
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($bl), "\n",
                "vmaxps ", stringify!($tl), ", ", stringify!($tl), ", ", stringify!($br), "\n",
                "vmovups zmmword ptr [", $oaddr, " + ", $ooff, "], ", stringify!($tl), "\n",
            )* )*
            "5:\n",
        )
    };
}
pub(crate) use pool_windows;

/// Emits one fused conv + ReLU + 2x2 max-pool micro-kernel (contract and register table in the
/// module docs, "The fused conv + pool micro-kernels"). `chain` sets up row 0's input bases from
/// `b0`, `row1` is row 1's first base (`b0 + in_row`), `row1_chain` the rest of row 1's; `pix`
/// lists both rows' pixels as in `microkernel!`; `windows` lists per pooled pixel its output
/// and argmax addresses (in terms of `b0`, `s` and `skp`, `cnt`) and per channel vector the
/// window's (top-left, top-right, bottom-left, bottom-right) accumulators and the vector's byte
/// offsets in the output and in the codes.
macro_rules! conv_pool_microkernel {
    (
        name: $name:ident, pixels: $p:literal,
        more_bases: [$($b:ident),*],
        chain: [$(($bprev:ident, $bnext:ident)),*], row1: $row1:ident,
        row1_chain: [$(($rprev:ident, $rnext:ident)),*],
        acc: [$($acc:ident),*],
        wload: [$(($wr:ident, $woff:literal)),*],
        zero: $zero:ident, codes: $codes:ident, consts: [$c1:ident, $c2:ident, $c3:ident, $c4:ident],
        pix: [$(($bc:ident, $addr:literal, [$(($pacc:ident, $pw:ident, $poff:literal)),*])),* $(,)?],
        windows: [$(($oaddr:literal, $aaddr:literal,
            [$(($tl:ident, $tr:ident, $bl:ident, $br:ident, $ooff:literal, $aoff:literal)),*])),* $(,)?]
    ) => {
        #[doc = concat!("Fused micro-kernel: 2 output rows x ", $p, " pixels x 32 channels, ",
            "bias, ReLU and 2x2 max-pool (contract and register table in the module docs).")]
        ///
        /// # Safety
        /// AVX-512F must be available; every address the contract implies must be valid.
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
        pub unsafe fn $name(args: &PoolTileArgs, wp: *const f32) {
            tile_asm!(
                bases: [$($b),*],
                prm: (args, PoolTileArgs, tile),
                wp: wp,
                more: [
                    o_in_row = const offset_of!(PoolTileArgs, in_row),
                    o_argmax = const offset_of!(PoolTileArgs, argmax),
                    o_argmax_stride = const offset_of!(PoolTileArgs, argmax_stride),
                ],
                template: concat!(
                    $( "vpxord ", stringify!($acc), ", ", stringify!($acc), ", ", stringify!($acc), "\n", )*
                    // Input bases: row 0 from `inp`, b_i = b_(i-1) + 3*s; row 1 from `inp + in_row`.
                    bases!("o_inp", "o_in_stride", chain: [$(($bprev, $bnext)),*]),
                    "mov {", stringify!($row1), "}, qword ptr [{prm} + {o_in_row}]\n",
                    "add {", stringify!($row1), "}, {b0}\n",
                    $( "lea {", stringify!($rnext), "}, [{", stringify!($rprev), "} + {cnt}]\n", )*
                    reduction!(
                        wstep: "128", more_bases: [$($b),*], wload: [$(($wr, $woff)),*],
                        pix: [$(($bc, $addr, [$(($pacc, $pw, $poff)),*])),*]
                    ),
                    // Bias and ReLU, as `microkernel!`'s epilogue.
                    "mov {wp}, qword ptr [{prm} + {o_bias}]\n",
                    bias_vectors!(wload: [$(($wr, $woff)),*], zero: $zero),
                    $( $( bias_relu!($pacc, $pw, $zero), )* )*
                    // The pool: `crate::kernels::pool::forward_row`'s instructions per window.
                    "mov {b0}, qword ptr [{prm} + {o_out}]\n",
                    "mov {s}, qword ptr [{prm} + {o_out_stride}]\n",
                    "mov {skp}, qword ptr [{prm} + {o_argmax}]\n",
                    pool_windows!(
                        cstride: "[{prm} + {o_argmax_stride}]", codes: $codes, zero: $zero, consts: [$c1, $c2, $c3, $c4],
                        windows: [$(($oaddr, $aaddr,
                            [$(($tl, $tr, $bl, $br, $ooff, $aoff)),*])),*]
                    ),
                ),
            );
        }
    };
}

conv_pool_microkernel! {
    name: pool_tile_2x6, pixels: 6,
    more_bases: [b1, b2, b3],
    chain: [(b0, b1)], row1: b2, row1_chain: [(b2, b3)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23],
    wload: [(zmm24, "0"), (zmm25, "64")],
    zero: zmm26, codes: zmm27, consts: [zmm28, zmm29, zmm30, zmm31],
    pix: [
        (zmm26, "{b0}", [(zmm0, zmm24, "0"), (zmm1, zmm25, "64")]),
        (zmm27, "{b0} + {s}", [(zmm2, zmm24, "0"), (zmm3, zmm25, "64")]),
        (zmm28, "{b0} + {s}*2", [(zmm4, zmm24, "0"), (zmm5, zmm25, "64")]),
        (zmm29, "{b1}", [(zmm6, zmm24, "0"), (zmm7, zmm25, "64")]),
        (zmm26, "{b1} + {s}", [(zmm8, zmm24, "0"), (zmm9, zmm25, "64")]),
        (zmm27, "{b1} + {s}*2", [(zmm10, zmm24, "0"), (zmm11, zmm25, "64")]),
        (zmm28, "{b2}", [(zmm12, zmm24, "0"), (zmm13, zmm25, "64")]),
        (zmm29, "{b2} + {s}", [(zmm14, zmm24, "0"), (zmm15, zmm25, "64")]),
        (zmm26, "{b2} + {s}*2", [(zmm16, zmm24, "0"), (zmm17, zmm25, "64")]),
        (zmm27, "{b3}", [(zmm18, zmm24, "0"), (zmm19, zmm25, "64")]),
        (zmm28, "{b3} + {s}", [(zmm20, zmm24, "0"), (zmm21, zmm25, "64")]),
        (zmm29, "{b3} + {s}*2", [(zmm22, zmm24, "0"), (zmm23, zmm25, "64")]),
    ],
    windows: [
        ("{b0}", "{skp}", [(zmm0, zmm2, zmm12, zmm14, "0", "0"), (zmm1, zmm3, zmm13, zmm15, "64", "16")]),
        ("{b0} + {s}", "{skp} + {cnt}", [(zmm4, zmm6, zmm16, zmm18, "0", "0"), (zmm5, zmm7, zmm17, zmm19, "64", "16")]),
        ("{b0} + {s}*2", "{skp} + {cnt}*2", [(zmm8, zmm10, zmm20, zmm22, "0", "0"), (zmm9, zmm11, zmm21, zmm23, "64", "16")]),
    ]
}

conv_pool_microkernel! {
    name: pool_tile_2x4, pixels: 4,
    more_bases: [b1, b2, b3],
    chain: [(b0, b1)], row1: b2, row1_chain: [(b2, b3)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15],
    wload: [(zmm16, "0"), (zmm17, "64")],
    zero: zmm18, codes: zmm19, consts: [zmm20, zmm21, zmm22, zmm23],
    pix: [
        (zmm18, "{b0}", [(zmm0, zmm16, "0"), (zmm1, zmm17, "64")]),
        (zmm19, "{b0} + {s}", [(zmm2, zmm16, "0"), (zmm3, zmm17, "64")]),
        (zmm20, "{b0} + {s}*2", [(zmm4, zmm16, "0"), (zmm5, zmm17, "64")]),
        (zmm21, "{b1}", [(zmm6, zmm16, "0"), (zmm7, zmm17, "64")]),
        (zmm18, "{b2}", [(zmm8, zmm16, "0"), (zmm9, zmm17, "64")]),
        (zmm19, "{b2} + {s}", [(zmm10, zmm16, "0"), (zmm11, zmm17, "64")]),
        (zmm20, "{b2} + {s}*2", [(zmm12, zmm16, "0"), (zmm13, zmm17, "64")]),
        (zmm21, "{b3}", [(zmm14, zmm16, "0"), (zmm15, zmm17, "64")]),
    ],
    windows: [
        ("{b0}", "{skp}", [(zmm0, zmm2, zmm8, zmm10, "0", "0"), (zmm1, zmm3, zmm9, zmm11, "64", "16")]),
        ("{b0} + {s}", "{skp} + {cnt}", [(zmm4, zmm6, zmm12, zmm14, "0", "0"), (zmm5, zmm7, zmm13, zmm15, "64", "16")]),
    ]
}

conv_pool_microkernel! {
    name: pool_tile_2x2, pixels: 2,
    more_bases: [b1],
    chain: [], row1: b1, row1_chain: [],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7],
    wload: [(zmm8, "0"), (zmm9, "64")],
    zero: zmm10, codes: zmm11, consts: [zmm12, zmm13, zmm14, zmm15],
    pix: [
        (zmm10, "{b0}", [(zmm0, zmm8, "0"), (zmm1, zmm9, "64")]),
        (zmm11, "{b0} + {s}", [(zmm2, zmm8, "0"), (zmm3, zmm9, "64")]),
        (zmm12, "{b1}", [(zmm4, zmm8, "0"), (zmm5, zmm9, "64")]),
        (zmm13, "{b1} + {s}", [(zmm6, zmm8, "0"), (zmm7, zmm9, "64")]),
    ],
    windows: [
        ("{b0}", "{skp}", [(zmm0, zmm2, zmm4, zmm6, "0", "0"), (zmm1, zmm3, zmm5, zmm7, "64", "16")]),
    ]
}

/// The fused conv + pool tiles (2 rows x P pixels x 32 channels), widest first. Rates as the
/// conv tiles with as many accumulators (24, 16, 8).
#[rustfmt::skip]
pub const POOL_TILES: &[Tile<PoolTileFn>] = &[
    Tile { pixels: 6, kernel: pool_tile_2x6, rate: 97 },
    Tile { pixels: 4, kernel: pool_tile_2x4, rate: 90 },
    Tile { pixels: 2, kernel: pool_tile_2x2, rate: 66 },
];

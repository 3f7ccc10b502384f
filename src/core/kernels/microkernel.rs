//! The micro-kernel: the project's GEMM micro-kernel, in `asm!` on ZMM registers. It computes
//! one register block of a matrix product `out[P][NB] (+)= A[P][K] * W[K][NB]`, `P` rows of `A`
//! (1 to 16) times `NB = NV x 16` columns (NV = 1 or 2), the whole block held in accumulators
//! over the whole reduction `K`. The fast kernels' forward and input-gradient products run on
//! it (the weight gradients have kernels of their own, `crate::kernels::weight_grad`):
//! - the direct convolution, forward and input gradient (`crate::layers::conv`): a row of `A`
//!   is one output pixel's 3x3 input window, read in place from the padded HWC input (three
//!   segments of `3*cin` floats, no im2col copy), `W` the packed filters;
//! - Winograd F(2x2) and F(4x4) (`crate::layers::conv::winograd`): the 16 or 36 per-position
//!   products of the forward and input gradient, a row of `A` one transformed tile's channels;
//! - fc1 in inference (`crate::layers::fc::forward_packed`): a row of `A` one sample's inputs.
//!
//! The drivers cover their rows with tiles of the widths in [`TILES_NV2`] and [`TILES_NV1`]
//! (`crate::layers::conv::row_tile_widths`). The fused conv + pool kernels of
//! `crate::kernels::conv` reuse its reduction loop (`reduction!`) unchanged.
//!
//! In short: **register block** `P x NV` ZMM accumulators (at most 14 x 2 or 16 x 1);
//! **packing** `W` as `nseg*k` steps of `NB` floats, output channels (columns) innermost,
//! 64-byte vectors, no alignment required; **reads** `A` through [`TileArgs`] (`inp`,
//! `in_stride`, `k`, `nseg`, `skips`), `W` (the second argument), `bias` and, with `accumulate`,
//! `out`; **writes** only the `P x NB` block of `out` (`out_stride` apart), after ReLU when
//! `bias` is given.
//!
//! # The micro-kernel contract (every `tile_PxNV` below)
//!
//! One call computes a tile of **P consecutive output pixels of one output row** times
//! **NB = NV x 16 consecutive output channels** over one *chunk* of the reduction, and writes it:
//!
//! ```text
//! acc[p][c]  = (accumulate ? out[p][c] : 0)
//!            + sum_{seg < nseg} sum_{j < k} in(seg)[p*s + j] * wp[(seg*k + j)*NB + c]
//! out[p][c]  = bias ? max(acc[p][c] + bias[c], 0) : acc[p][c]
//! ```
//!
//! The input side is `nseg` *segments* of `k` contiguous floats per pixel: with HWC data, one
//! kernel row `ky` of a pixel's 3x3 window is `3*cin` contiguous floats (`kx*cin + ic`), so a
//! whole-reduction call has 3 segments of `k = 3*cin`; a call over a channel range `kc` of one
//! kernel row has 3 segments (`kx`) of `k = kc`. All fields are in [`TileArgs`]:
//!
//! - `inp`: input address of pixel 0's first segment; `in_stride` = bytes between neighbouring
//!   pixels (`cin*4`); `skips[seg]` = bytes from the end of segment `seg` (its start + `k*4`) to
//!   the start of the next (`nseg` entries, the last unused);
//! - `wp` (the second argument): the packed weight chunk, `nseg*k` steps of `NB` floats
//!   (output channels innermost, see `crate::layers::conv::ConvPlan::pack_forward`);
//! - `out`: output pixel 0, channel 0 of the tile; `out_stride` = bytes between output pixels
//!   (`cout*4`); `accumulate != 0`: start from the values in `out` (a later chunk), else from 0;
//! - `bias`: `NB` floats; when non-null the epilogue adds it and applies ReLU (`vmaxps` with
//!   zero: the forward pass's last chunk); when null it stores the plain sums.
//!
//! No alignment is required (all vector loads and stores are `vmovups`). Registers:
//!
//! | register | holds |
//! |---|---|
//! | `zmm0 .. zmm(P*NV-1)` | accumulators: pixel `p`, channel vector `v` in `zmm(p*NV+v)`, live over the whole call |
//! | next `NV` zmm | the current step's `NV` weight vectors (the bias in the epilogue) |
//! | remaining zmm (up to 4) | `vbroadcastss` of one input float per pixel, used round-robin; the first is ReLU's zero |
//! | `b0, b1, ..` (GPR) | `b_i` = address of pixel `3i` of the tile (input; output in the prologue/epilogue); pixel `3i+m` is `[b_i + s*m]` |
//! | `s` (GPR) | input pixel stride in bytes (output pixel stride in the prologue/epilogue) |
//! | `wp` (GPR) | current weight step; advances `NV*64` bytes per step |
//! | `cnt` (GPR) | 4-step iterations left in the segment, then leftover steps (`k % 4`); `3*s` while the bases are set up |
//! | `seg`, `skp` (GPR) | segments left; pointer into `skips` |
//! | `prm` (GPR) | `&TileArgs` |
//!
//! One step is: `NV` weight loads, then per pixel one `vbroadcastss` and `NV` `vfmadd231ps`
//! (`P*NV` FMAs per step, no horizontal sums anywhere). The segment loop runs 4 steps per
//! iteration (written once, repeated by the assembler's `.irp` with displacements `4*u` on the
//! inputs and `u*NV*64` on the weights), so the `P/3 + 1` pointer increments and the loop branch
//! are paid once per 4 steps; `k % 4` leftover steps (conv1: `k = 9`) run one at a time.
//! For the 14 x 2 tile one iteration is 8 weight loads, 56 broadcasts, 112 FMAs, 8 scalar
//! instructions: 56 cycles at two FMAs per cycle.

use std::mem::offset_of;

/// Everything a micro-kernel call reads besides the weights (`#[repr(C)]`: the asm reads each field
/// at `offset_of!` of it; the offsets in the comments are for the reader).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TileArgs {
    /// 0: input address of pixel 0's first segment.
    pub inp: *const f32,
    /// 8: bytes between neighbouring input pixels (`cin*4`).
    pub in_stride: usize,
    /// 16: steps (floats) per segment.
    pub k: usize,
    /// 24: segments (at least 1).
    pub nseg: usize,
    /// 32: `nseg` byte distances from the end of a segment to the start of the next.
    pub skips: *const isize,
    /// 40: output pixel 0, channel 0 of the tile.
    pub out: *mut f32,
    /// 48: bytes between output pixels (`cout*4`).
    pub out_stride: usize,
    /// 56: `NB` bias values (then ReLU), or null for plain sums.
    pub bias: *const f32,
    /// 64: nonzero: add to the values already in `out` (a later reduction chunk).
    pub accumulate: usize,
}

/// Signature shared by every micro-kernel.
pub type TileFn = unsafe fn(args: &TileArgs, wp: *const f32);

/// The reduction loop shared by every micro-kernel (a `concat!` of template lines): all `nseg`
/// segments of `k` steps into the accumulators, from the input bases (`b0` and `more_bases`, set
/// by the caller), `s`, `wp`, `prm`; leaves `wp` past the chunk's weights. Uses the local labels
/// 2, 3, 8, 9, 12. `pix` as in `microkernel!`.
macro_rules! reduction {
    (
        wstep: $wstep:literal, more_bases: [$($b:ident),*],
        wload: [$(($wr:ident, $woff:literal)),*],
        pix: [$(($bc:ident, $addr:literal, [$(($pacc:ident, $pw:ident, $poff:literal)),*])),* $(,)?]
    ) => {
        concat!(
            "mov {skp}, qword ptr [{prm} + {o_skips}]\n",
            "mov {seg}, qword ptr [{prm} + {o_nseg}]\n",
            "3:\n",
            // Main loop: 4 steps per iteration (`.irp` repeats the step with the
            // displacements of step u = 0..3), then the k % 4 leftover steps one by one.
            "mov {cnt}, qword ptr [{prm} + {o_k}]\n",
            "shr {cnt}, 2\n",
            "jz 8f\n",
            "2:\n",
            ".irp u, 0, 1, 2, 3\n",
            $( "vmovups ", stringify!($wr), ", zmmword ptr [{wp} + \\u*", $wstep, " + ", $woff, "]\n", )*
            $(
                "vbroadcastss ", stringify!($bc), ", dword ptr [", $addr, " + 4*\\u]\n",
                $( "vfmadd231ps ", stringify!($pacc), ", ", stringify!($pw), ", ", stringify!($bc), "\n", )*
            )*
            ".endr\n",
            "add {wp}, 4*", $wstep, "\n",
            "add {b0}, 16\n",
            $( "add {", stringify!($b), "}, 16\n", )*
            "dec {cnt}\n",
            "jnz 2b\n",
            "8:\n",
            "mov {cnt}, qword ptr [{prm} + {o_k}]\n",
            "and {cnt}, 3\n",
            "jz 9f\n",
            "12:\n",
            $( "vmovups ", stringify!($wr), ", zmmword ptr [{wp} + ", $woff, "]\n", )*
            $(
                "vbroadcastss ", stringify!($bc), ", dword ptr [", $addr, "]\n",
                $( "vfmadd231ps ", stringify!($pacc), ", ", stringify!($pw), ", ", stringify!($bc), "\n", )*
            )*
            "add {wp}, ", $wstep, "\n",
            "add {b0}, 4\n",
            $( "add {", stringify!($b), "}, 4\n", )*
            "dec {cnt}\n",
            "jnz 12b\n",
            "9:\n",
            "mov {cnt}, qword ptr [{skp}]\n",
            "add {skp}, 8\n",
            "add {b0}, {cnt}\n",
            $( "add {", stringify!($b), "}, {cnt}\n", )*
            "dec {seg}\n",
            "jnz 3b\n",
        )
    };
}
pub(crate) use reduction;

/// Template lines that set the base registers from a pointer field and a stride field of the
/// arguments (`$ptr`, `$stride`: the names of their offset operands): `b0` = the pointer, `s` =
/// the stride, `cnt` = `3*s`, then each `bnext = bprev + 3*s` of `chain`.
macro_rules! bases {
    ($ptr:literal, $stride:literal, chain: [$(($bprev:ident, $bnext:ident)),*]) => {
        concat!(
            "mov {b0}, qword ptr [{prm} + {", $ptr, "}]\n",
            "mov {s}, qword ptr [{prm} + {", $stride, "}]\n",
            "lea {cnt}, [{s} + {s}*2]\n",
            $( "lea {", stringify!($bnext), "}, [{", stringify!($bprev), "} + {cnt}]\n", )*
        )
    };
}
pub(crate) use bases;

/// Template lines that load the bias vectors (at `{wp}`) into the weight registers of `wload`
/// and zero the register `zero`, for [`bias_relu`].
macro_rules! bias_vectors {
    (wload: [$(($wr:ident, $woff:literal)),*], zero: $zero:ident) => {
        concat!(
            $( "vmovups ", stringify!($wr), ", zmmword ptr [{wp} + ", $woff, "]\n", )*
            "vpxord ", stringify!($zero), ", ", stringify!($zero), ", ", stringify!($zero), "\n",
        )
    };
}
pub(crate) use bias_vectors;

/// Template lines of the epilogue of one accumulator: `acc = max(acc + bias, 0)`.
macro_rules! bias_relu {
    ($acc:ident, $bias:ident, $zero:ident) => {
        concat!(
            concat!(
                "vaddps ",
                stringify!($acc),
                ", ",
                stringify!($acc),
                ", ",
                stringify!($bias)
            ),
            "\n",
            concat!(
                "vmaxps ",
                stringify!($acc),
                ", ",
                stringify!($acc),
                ", ",
                stringify!($zero)
            ),
            "\n",
        )
    };
}
pub(crate) use bias_relu;

/// `asm_zmm!` with the operands of the direct-convolution micro-kernels (`microkernel!` and
/// `crate::kernels::conv`'s fused pool tiles): the base registers `b0` and `bases`, `s`, `wp`
/// (the weights, in and out), `cnt`, `seg`, `skp`, `prm` (the arguments, a `$ty`) and the byte
/// offsets of its [`TileArgs`] fields (inside its field `$f` when given), then `more`.
macro_rules! tile_asm {
    (
        bases: [$($b:ident),*],
        prm: ($args:ident, $ty:ident $(, $f:ident)?),
        wp: $wp:ident,
        more: [$($more:tt)*],
        template: $template:expr $(,)?
    ) => {
        $crate::kernels::asm_zmm!(
            $template,
            ;
            b0 = out(reg) _,
            $( $b = out(reg) _, )*
            s = out(reg) _,
            wp = inout(reg) $wp => _,
            cnt = out(reg) _,
            seg = out(reg) _,
            skp = out(reg) _,
            prm = in(reg) $args as *const $ty,
            o_inp = const ::std::mem::offset_of!($ty, $($f.)? inp),
            o_in_stride = const ::std::mem::offset_of!($ty, $($f.)? in_stride),
            o_k = const ::std::mem::offset_of!($ty, $($f.)? k),
            o_nseg = const ::std::mem::offset_of!($ty, $($f.)? nseg),
            o_skips = const ::std::mem::offset_of!($ty, $($f.)? skips),
            o_out = const ::std::mem::offset_of!($ty, $($f.)? out),
            o_out_stride = const ::std::mem::offset_of!($ty, $($f.)? out_stride),
            o_bias = const ::std::mem::offset_of!($ty, $($f.)? bias),
            $($more)*
        )
    };
}
pub(crate) use tile_asm;

/// Emits one micro-kernel from its register table (see the module docs for the contract).
/// `pix` lists, per output pixel: the broadcast register, the input/output address (in terms of
/// the base registers and `s`), and the (accumulator, weight register, byte offset of the
/// channel vector) triples of that pixel.
macro_rules! microkernel {
    (
        name: $name:ident, pixels: $p:literal, vectors: $nv:literal, wstep: $wstep:literal,
        more_bases: [$($b:ident),*],
        chain: [$(($bprev:ident, $bnext:ident)),*],
        acc: [$($acc:ident),*],
        wload: [$(($wr:ident, $woff:literal)),*],
        zero: $zero:ident,
        pix: [$(($bc:ident, $addr:literal, [$(($pacc:ident, $pw:ident, $poff:literal)),*])),* $(,)?]
    ) => {
        #[doc = concat!("Micro-kernel: ", $p, " output pixels x ", $nv, "x16 output channels ",
            "(contract and register table in the module docs).")]
        ///
        /// # Safety
        /// AVX-512F must be available; every address the contract implies must be valid.
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
        pub unsafe fn $name(args: &TileArgs, wp: *const f32) {
            tile_asm!(
                bases: [$($b),*],
                prm: (args, TileArgs),
                wp: wp,
                more: [o_accumulate = const offset_of!(TileArgs, accumulate),],
                template: concat!(
                    // Prologue: accumulators from `out` (accumulate) or zero.
                    "cmp qword ptr [{prm} + {o_accumulate}], 0\n",
                    "je 6f\n",
                    bases!("o_out", "o_out_stride", chain: [$(($bprev, $bnext)),*]),
                    $( $(
                        "vmovups ", stringify!($pacc), ", zmmword ptr [", $addr, " + ", $poff, "]\n",
                    )* )*
                    "jmp 7f\n",
                    "6:\n",
                    $( "vpxord ", stringify!($acc), ", ", stringify!($acc), ", ", stringify!($acc), "\n", )*
                    "7:\n",
                    // Input bases: b_i = b_(i-1) + 3*s.
                    bases!("o_inp", "o_in_stride", chain: [$(($bprev, $bnext)),*]),
                    reduction!(
                        wstep: $wstep, more_bases: [$($b),*], wload: [$(($wr, $woff)),*],
                        pix: [$(($bc, $addr, [$(($pacc, $pw, $poff)),*])),*]
                    ),
                    // Epilogue: the same base scheme over the output pixels.
                    bases!("o_out", "o_out_stride", chain: [$(($bprev, $bnext)),*]),
                    "mov {wp}, qword ptr [{prm} + {o_bias}]\n",
                    "test {wp}, {wp}\n",
                    "jz 4f\n",
                    bias_vectors!(wload: [$(($wr, $woff)),*], zero: $zero),
                    $( $(
                        bias_relu!($pacc, $pw, $zero),
                        "vmovups zmmword ptr [", $addr, " + ", $poff, "], ", stringify!($pacc), "\n",
                    )* )*
                    "jmp 5f\n",
                    "4:\n",
                    $( $(
                        "vmovups zmmword ptr [", $addr, " + ", $poff, "], ", stringify!($pacc), "\n",
                    )* )*
                    "5:\n",
                ),
            );
        }
    };
}

microkernel! {
    name: tile_14x2, pixels: 14, vectors: 2, wstep: "128",
    more_bases: [b1, b2, b3, b4],
    chain: [(b0, b1), (b1, b2), (b2, b3), (b3, b4)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27],
    wload: [(zmm28, "0"), (zmm29, "64")],
    zero: zmm30,
    pix: [
        (zmm30, "{b0}", [(zmm0, zmm28, "0"), (zmm1, zmm29, "64")]),
        (zmm31, "{b0} + {s}", [(zmm2, zmm28, "0"), (zmm3, zmm29, "64")]),
        (zmm30, "{b0} + {s}*2", [(zmm4, zmm28, "0"), (zmm5, zmm29, "64")]),
        (zmm31, "{b1}", [(zmm6, zmm28, "0"), (zmm7, zmm29, "64")]),
        (zmm30, "{b1} + {s}", [(zmm8, zmm28, "0"), (zmm9, zmm29, "64")]),
        (zmm31, "{b1} + {s}*2", [(zmm10, zmm28, "0"), (zmm11, zmm29, "64")]),
        (zmm30, "{b2}", [(zmm12, zmm28, "0"), (zmm13, zmm29, "64")]),
        (zmm31, "{b2} + {s}", [(zmm14, zmm28, "0"), (zmm15, zmm29, "64")]),
        (zmm30, "{b2} + {s}*2", [(zmm16, zmm28, "0"), (zmm17, zmm29, "64")]),
        (zmm31, "{b3}", [(zmm18, zmm28, "0"), (zmm19, zmm29, "64")]),
        (zmm30, "{b3} + {s}", [(zmm20, zmm28, "0"), (zmm21, zmm29, "64")]),
        (zmm31, "{b3} + {s}*2", [(zmm22, zmm28, "0"), (zmm23, zmm29, "64")]),
        (zmm30, "{b4}", [(zmm24, zmm28, "0"), (zmm25, zmm29, "64")]),
        (zmm31, "{b4} + {s}", [(zmm26, zmm28, "0"), (zmm27, zmm29, "64")]),
    ]
}

microkernel! {
    name: tile_13x2, pixels: 13, vectors: 2, wstep: "128",
    more_bases: [b1, b2, b3, b4],
    chain: [(b0, b1), (b1, b2), (b2, b3), (b3, b4)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25],
    wload: [(zmm26, "0"), (zmm27, "64")],
    zero: zmm28,
    pix: [
        (zmm28, "{b0}", [(zmm0, zmm26, "0"), (zmm1, zmm27, "64")]),
        (zmm29, "{b0} + {s}", [(zmm2, zmm26, "0"), (zmm3, zmm27, "64")]),
        (zmm30, "{b0} + {s}*2", [(zmm4, zmm26, "0"), (zmm5, zmm27, "64")]),
        (zmm31, "{b1}", [(zmm6, zmm26, "0"), (zmm7, zmm27, "64")]),
        (zmm28, "{b1} + {s}", [(zmm8, zmm26, "0"), (zmm9, zmm27, "64")]),
        (zmm29, "{b1} + {s}*2", [(zmm10, zmm26, "0"), (zmm11, zmm27, "64")]),
        (zmm30, "{b2}", [(zmm12, zmm26, "0"), (zmm13, zmm27, "64")]),
        (zmm31, "{b2} + {s}", [(zmm14, zmm26, "0"), (zmm15, zmm27, "64")]),
        (zmm28, "{b2} + {s}*2", [(zmm16, zmm26, "0"), (zmm17, zmm27, "64")]),
        (zmm29, "{b3}", [(zmm18, zmm26, "0"), (zmm19, zmm27, "64")]),
        (zmm30, "{b3} + {s}", [(zmm20, zmm26, "0"), (zmm21, zmm27, "64")]),
        (zmm31, "{b3} + {s}*2", [(zmm22, zmm26, "0"), (zmm23, zmm27, "64")]),
        (zmm28, "{b4}", [(zmm24, zmm26, "0"), (zmm25, zmm27, "64")]),
    ]
}

microkernel! {
    name: tile_12x2, pixels: 12, vectors: 2, wstep: "128",
    more_bases: [b1, b2, b3],
    chain: [(b0, b1), (b1, b2), (b2, b3)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23],
    wload: [(zmm24, "0"), (zmm25, "64")],
    zero: zmm26,
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
    ]
}

microkernel! {
    name: tile_11x2, pixels: 11, vectors: 2, wstep: "128",
    more_bases: [b1, b2, b3],
    chain: [(b0, b1), (b1, b2), (b2, b3)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21],
    wload: [(zmm22, "0"), (zmm23, "64")],
    zero: zmm24,
    pix: [
        (zmm24, "{b0}", [(zmm0, zmm22, "0"), (zmm1, zmm23, "64")]),
        (zmm25, "{b0} + {s}", [(zmm2, zmm22, "0"), (zmm3, zmm23, "64")]),
        (zmm26, "{b0} + {s}*2", [(zmm4, zmm22, "0"), (zmm5, zmm23, "64")]),
        (zmm27, "{b1}", [(zmm6, zmm22, "0"), (zmm7, zmm23, "64")]),
        (zmm24, "{b1} + {s}", [(zmm8, zmm22, "0"), (zmm9, zmm23, "64")]),
        (zmm25, "{b1} + {s}*2", [(zmm10, zmm22, "0"), (zmm11, zmm23, "64")]),
        (zmm26, "{b2}", [(zmm12, zmm22, "0"), (zmm13, zmm23, "64")]),
        (zmm27, "{b2} + {s}", [(zmm14, zmm22, "0"), (zmm15, zmm23, "64")]),
        (zmm24, "{b2} + {s}*2", [(zmm16, zmm22, "0"), (zmm17, zmm23, "64")]),
        (zmm25, "{b3}", [(zmm18, zmm22, "0"), (zmm19, zmm23, "64")]),
        (zmm26, "{b3} + {s}", [(zmm20, zmm22, "0"), (zmm21, zmm23, "64")]),
    ]
}

microkernel! {
    name: tile_10x2, pixels: 10, vectors: 2, wstep: "128",
    more_bases: [b1, b2, b3],
    chain: [(b0, b1), (b1, b2), (b2, b3)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17, zmm18, zmm19],
    wload: [(zmm20, "0"), (zmm21, "64")],
    zero: zmm22,
    pix: [
        (zmm22, "{b0}", [(zmm0, zmm20, "0"), (zmm1, zmm21, "64")]),
        (zmm23, "{b0} + {s}", [(zmm2, zmm20, "0"), (zmm3, zmm21, "64")]),
        (zmm24, "{b0} + {s}*2", [(zmm4, zmm20, "0"), (zmm5, zmm21, "64")]),
        (zmm25, "{b1}", [(zmm6, zmm20, "0"), (zmm7, zmm21, "64")]),
        (zmm22, "{b1} + {s}", [(zmm8, zmm20, "0"), (zmm9, zmm21, "64")]),
        (zmm23, "{b1} + {s}*2", [(zmm10, zmm20, "0"), (zmm11, zmm21, "64")]),
        (zmm24, "{b2}", [(zmm12, zmm20, "0"), (zmm13, zmm21, "64")]),
        (zmm25, "{b2} + {s}", [(zmm14, zmm20, "0"), (zmm15, zmm21, "64")]),
        (zmm22, "{b2} + {s}*2", [(zmm16, zmm20, "0"), (zmm17, zmm21, "64")]),
        (zmm23, "{b3}", [(zmm18, zmm20, "0"), (zmm19, zmm21, "64")]),
    ]
}

microkernel! {
    name: tile_9x2, pixels: 9, vectors: 2, wstep: "128",
    more_bases: [b1, b2],
    chain: [(b0, b1), (b1, b2)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15, zmm16, zmm17],
    wload: [(zmm18, "0"), (zmm19, "64")],
    zero: zmm20,
    pix: [
        (zmm20, "{b0}", [(zmm0, zmm18, "0"), (zmm1, zmm19, "64")]),
        (zmm21, "{b0} + {s}", [(zmm2, zmm18, "0"), (zmm3, zmm19, "64")]),
        (zmm22, "{b0} + {s}*2", [(zmm4, zmm18, "0"), (zmm5, zmm19, "64")]),
        (zmm23, "{b1}", [(zmm6, zmm18, "0"), (zmm7, zmm19, "64")]),
        (zmm20, "{b1} + {s}", [(zmm8, zmm18, "0"), (zmm9, zmm19, "64")]),
        (zmm21, "{b1} + {s}*2", [(zmm10, zmm18, "0"), (zmm11, zmm19, "64")]),
        (zmm22, "{b2}", [(zmm12, zmm18, "0"), (zmm13, zmm19, "64")]),
        (zmm23, "{b2} + {s}", [(zmm14, zmm18, "0"), (zmm15, zmm19, "64")]),
        (zmm20, "{b2} + {s}*2", [(zmm16, zmm18, "0"), (zmm17, zmm19, "64")]),
    ]
}

microkernel! {
    name: tile_8x2, pixels: 8, vectors: 2, wstep: "128",
    more_bases: [b1, b2],
    chain: [(b0, b1), (b1, b2)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15],
    wload: [(zmm16, "0"), (zmm17, "64")],
    zero: zmm18,
    pix: [
        (zmm18, "{b0}", [(zmm0, zmm16, "0"), (zmm1, zmm17, "64")]),
        (zmm19, "{b0} + {s}", [(zmm2, zmm16, "0"), (zmm3, zmm17, "64")]),
        (zmm20, "{b0} + {s}*2", [(zmm4, zmm16, "0"), (zmm5, zmm17, "64")]),
        (zmm21, "{b1}", [(zmm6, zmm16, "0"), (zmm7, zmm17, "64")]),
        (zmm18, "{b1} + {s}", [(zmm8, zmm16, "0"), (zmm9, zmm17, "64")]),
        (zmm19, "{b1} + {s}*2", [(zmm10, zmm16, "0"), (zmm11, zmm17, "64")]),
        (zmm20, "{b2}", [(zmm12, zmm16, "0"), (zmm13, zmm17, "64")]),
        (zmm21, "{b2} + {s}", [(zmm14, zmm16, "0"), (zmm15, zmm17, "64")]),
    ]
}

microkernel! {
    name: tile_7x2, pixels: 7, vectors: 2, wstep: "128",
    more_bases: [b1, b2],
    chain: [(b0, b1), (b1, b2)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13],
    wload: [(zmm14, "0"), (zmm15, "64")],
    zero: zmm16,
    pix: [
        (zmm16, "{b0}", [(zmm0, zmm14, "0"), (zmm1, zmm15, "64")]),
        (zmm17, "{b0} + {s}", [(zmm2, zmm14, "0"), (zmm3, zmm15, "64")]),
        (zmm18, "{b0} + {s}*2", [(zmm4, zmm14, "0"), (zmm5, zmm15, "64")]),
        (zmm19, "{b1}", [(zmm6, zmm14, "0"), (zmm7, zmm15, "64")]),
        (zmm16, "{b1} + {s}", [(zmm8, zmm14, "0"), (zmm9, zmm15, "64")]),
        (zmm17, "{b1} + {s}*2", [(zmm10, zmm14, "0"), (zmm11, zmm15, "64")]),
        (zmm18, "{b2}", [(zmm12, zmm14, "0"), (zmm13, zmm15, "64")]),
    ]
}

microkernel! {
    name: tile_6x2, pixels: 6, vectors: 2, wstep: "128",
    more_bases: [b1],
    chain: [(b0, b1)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11],
    wload: [(zmm12, "0"), (zmm13, "64")],
    zero: zmm14,
    pix: [
        (zmm14, "{b0}", [(zmm0, zmm12, "0"), (zmm1, zmm13, "64")]),
        (zmm15, "{b0} + {s}", [(zmm2, zmm12, "0"), (zmm3, zmm13, "64")]),
        (zmm16, "{b0} + {s}*2", [(zmm4, zmm12, "0"), (zmm5, zmm13, "64")]),
        (zmm17, "{b1}", [(zmm6, zmm12, "0"), (zmm7, zmm13, "64")]),
        (zmm14, "{b1} + {s}", [(zmm8, zmm12, "0"), (zmm9, zmm13, "64")]),
        (zmm15, "{b1} + {s}*2", [(zmm10, zmm12, "0"), (zmm11, zmm13, "64")]),
    ]
}

microkernel! {
    name: tile_5x2, pixels: 5, vectors: 2, wstep: "128",
    more_bases: [b1],
    chain: [(b0, b1)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9],
    wload: [(zmm10, "0"), (zmm11, "64")],
    zero: zmm12,
    pix: [
        (zmm12, "{b0}", [(zmm0, zmm10, "0"), (zmm1, zmm11, "64")]),
        (zmm13, "{b0} + {s}", [(zmm2, zmm10, "0"), (zmm3, zmm11, "64")]),
        (zmm14, "{b0} + {s}*2", [(zmm4, zmm10, "0"), (zmm5, zmm11, "64")]),
        (zmm15, "{b1}", [(zmm6, zmm10, "0"), (zmm7, zmm11, "64")]),
        (zmm12, "{b1} + {s}", [(zmm8, zmm10, "0"), (zmm9, zmm11, "64")]),
    ]
}

microkernel! {
    name: tile_4x2, pixels: 4, vectors: 2, wstep: "128",
    more_bases: [b1],
    chain: [(b0, b1)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7],
    wload: [(zmm8, "0"), (zmm9, "64")],
    zero: zmm10,
    pix: [
        (zmm10, "{b0}", [(zmm0, zmm8, "0"), (zmm1, zmm9, "64")]),
        (zmm11, "{b0} + {s}", [(zmm2, zmm8, "0"), (zmm3, zmm9, "64")]),
        (zmm12, "{b0} + {s}*2", [(zmm4, zmm8, "0"), (zmm5, zmm9, "64")]),
        (zmm13, "{b1}", [(zmm6, zmm8, "0"), (zmm7, zmm9, "64")]),
    ]
}

microkernel! {
    name: tile_3x2, pixels: 3, vectors: 2, wstep: "128",
    more_bases: [],
    chain: [],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5],
    wload: [(zmm6, "0"), (zmm7, "64")],
    zero: zmm8,
    pix: [
        (zmm8, "{b0}", [(zmm0, zmm6, "0"), (zmm1, zmm7, "64")]),
        (zmm9, "{b0} + {s}", [(zmm2, zmm6, "0"), (zmm3, zmm7, "64")]),
        (zmm10, "{b0} + {s}*2", [(zmm4, zmm6, "0"), (zmm5, zmm7, "64")]),
    ]
}

microkernel! {
    name: tile_2x2, pixels: 2, vectors: 2, wstep: "128",
    more_bases: [],
    chain: [],
    acc: [zmm0, zmm1, zmm2, zmm3],
    wload: [(zmm4, "0"), (zmm5, "64")],
    zero: zmm6,
    pix: [
        (zmm6, "{b0}", [(zmm0, zmm4, "0"), (zmm1, zmm5, "64")]),
        (zmm7, "{b0} + {s}", [(zmm2, zmm4, "0"), (zmm3, zmm5, "64")]),
    ]
}

microkernel! {
    name: tile_1x2, pixels: 1, vectors: 2, wstep: "128",
    more_bases: [],
    chain: [],
    acc: [zmm0, zmm1],
    wload: [(zmm2, "0"), (zmm3, "64")],
    zero: zmm4,
    pix: [
        (zmm4, "{b0}", [(zmm0, zmm2, "0"), (zmm1, zmm3, "64")]),
    ]
}

microkernel! {
    name: tile_16x1, pixels: 16, vectors: 1, wstep: "64",
    more_bases: [b1, b2, b3, b4, b5],
    chain: [(b0, b1), (b1, b2), (b2, b3), (b3, b4), (b4, b5)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15],
    wload: [(zmm16, "0")],
    zero: zmm17,
    pix: [
        (zmm17, "{b0}", [(zmm0, zmm16, "0")]),
        (zmm18, "{b0} + {s}", [(zmm1, zmm16, "0")]),
        (zmm19, "{b0} + {s}*2", [(zmm2, zmm16, "0")]),
        (zmm20, "{b1}", [(zmm3, zmm16, "0")]),
        (zmm17, "{b1} + {s}", [(zmm4, zmm16, "0")]),
        (zmm18, "{b1} + {s}*2", [(zmm5, zmm16, "0")]),
        (zmm19, "{b2}", [(zmm6, zmm16, "0")]),
        (zmm20, "{b2} + {s}", [(zmm7, zmm16, "0")]),
        (zmm17, "{b2} + {s}*2", [(zmm8, zmm16, "0")]),
        (zmm18, "{b3}", [(zmm9, zmm16, "0")]),
        (zmm19, "{b3} + {s}", [(zmm10, zmm16, "0")]),
        (zmm20, "{b3} + {s}*2", [(zmm11, zmm16, "0")]),
        (zmm17, "{b4}", [(zmm12, zmm16, "0")]),
        (zmm18, "{b4} + {s}", [(zmm13, zmm16, "0")]),
        (zmm19, "{b4} + {s}*2", [(zmm14, zmm16, "0")]),
        (zmm20, "{b5}", [(zmm15, zmm16, "0")]),
    ]
}

microkernel! {
    name: tile_8x1, pixels: 8, vectors: 1, wstep: "64",
    more_bases: [b1, b2],
    chain: [(b0, b1), (b1, b2)],
    acc: [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7],
    wload: [(zmm8, "0")],
    zero: zmm9,
    pix: [
        (zmm9, "{b0}", [(zmm0, zmm8, "0")]),
        (zmm10, "{b0} + {s}", [(zmm1, zmm8, "0")]),
        (zmm11, "{b0} + {s}*2", [(zmm2, zmm8, "0")]),
        (zmm12, "{b1}", [(zmm3, zmm8, "0")]),
        (zmm9, "{b1} + {s}", [(zmm4, zmm8, "0")]),
        (zmm10, "{b1} + {s}*2", [(zmm5, zmm8, "0")]),
        (zmm11, "{b2}", [(zmm6, zmm8, "0")]),
        (zmm12, "{b2} + {s}", [(zmm7, zmm8, "0")]),
    ]
}

microkernel! {
    name: tile_4x1, pixels: 4, vectors: 1, wstep: "64",
    more_bases: [b1],
    chain: [(b0, b1)],
    acc: [zmm0, zmm1, zmm2, zmm3],
    wload: [(zmm4, "0")],
    zero: zmm5,
    pix: [
        (zmm5, "{b0}", [(zmm0, zmm4, "0")]),
        (zmm6, "{b0} + {s}", [(zmm1, zmm4, "0")]),
        (zmm7, "{b0} + {s}*2", [(zmm2, zmm4, "0")]),
        (zmm8, "{b1}", [(zmm3, zmm4, "0")]),
    ]
}

microkernel! {
    name: tile_2x1, pixels: 2, vectors: 1, wstep: "64",
    more_bases: [],
    chain: [],
    acc: [zmm0, zmm1],
    wload: [(zmm2, "0")],
    zero: zmm3,
    pix: [
        (zmm3, "{b0}", [(zmm0, zmm2, "0")]),
        (zmm4, "{b0} + {s}", [(zmm1, zmm2, "0")]),
    ]
}

microkernel! {
    name: tile_1x1, pixels: 1, vectors: 1, wstep: "64",
    more_bases: [],
    chain: [],
    acc: [zmm0],
    wload: [(zmm1, "0")],
    zero: zmm2,
    pix: [
        (zmm2, "{b0}", [(zmm0, zmm1, "0")]),
    ]
}

/// One micro-kernel and what the row planner needs to know about it (`F`: [`TileFn`], or
/// [`crate::kernels::conv::PoolTileFn`] for the fused conv + pool tiles).
#[derive(Clone, Copy, Debug)]
pub struct Tile<F = TileFn> {
    /// Output pixels per call and row (P).
    pub pixels: usize,
    pub kernel: F,
    /// Measured throughput relative to the best tile, in percent (the row planner's cost model:
    /// a tile of P pixels costs `P * 100 / rate`). Narrow tiles are slower: fewer independent
    /// accumulators to hide the FMA latency, more loads per FMA.
    pub rate: u32,
}

/// Tiles for `NV = 2` (32 output channels), widest first.
#[rustfmt::skip]
pub const TILES_NV2: &[Tile] = &[
    Tile { pixels: 14, kernel: tile_14x2, rate: 100 },
    Tile { pixels: 13, kernel: tile_13x2, rate: 98 },
    Tile { pixels: 12, kernel: tile_12x2, rate: 97 },
    Tile { pixels: 11, kernel: tile_11x2, rate: 95 },
    Tile { pixels: 10, kernel: tile_10x2, rate: 93 },
    Tile { pixels: 9, kernel: tile_9x2, rate: 91 },
    Tile { pixels: 8, kernel: tile_8x2, rate: 90 },
    Tile { pixels: 7, kernel: tile_7x2, rate: 88 },
    Tile { pixels: 6, kernel: tile_6x2, rate: 83 },
    Tile { pixels: 5, kernel: tile_5x2, rate: 74 },
    Tile { pixels: 4, kernel: tile_4x2, rate: 66 },
    Tile { pixels: 3, kernel: tile_3x2, rate: 57 },
    Tile { pixels: 2, kernel: tile_2x2, rate: 44 },
    Tile { pixels: 1, kernel: tile_1x2, rate: 22 },
];

/// Tiles for `NV = 1` (16 output channels), widest first.
#[rustfmt::skip]
pub const TILES_NV1: &[Tile] = &[
    Tile { pixels: 16, kernel: tile_16x1, rate: 78 },
    Tile { pixels: 8, kernel: tile_8x1, rate: 72 },
    Tile { pixels: 4, kernel: tile_4x1, rate: 57 },
    Tile { pixels: 2, kernel: tile_2x1, rate: 30 },
    Tile { pixels: 1, kernel: tile_1x1, rate: 15 },
];

/// The tiles for `nv` channel vectors (1 or 2).
pub fn tiles(nv: usize) -> &'static [Tile] {
    match nv {
        2 => TILES_NV2,
        1 => TILES_NV1,
        _ => panic!("no micro-kernels for NV = {nv}"),
    }
}

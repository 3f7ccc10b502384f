//! 2x2 stride-2 max-pool kernels (the original's `maxpool.asm`), one output row per call.
//!
//! Argmax is one byte per pooled value (0..=3 window position, 4 = "max <= 0, no gradient"),
//! built as 16 dwords in a ZMM and narrowed to 16 bytes with `vpmovdb` on the way out; the
//! original kept four 16-bit lane masks per window instead.

use crate::kernels::asm_zmm;

/// `asm_zmm!` for the pool kernels, which all walk one output row the same way: `{bot}` =
/// `{top} + {rb}` is the bottom row of the windows, `{cs}` the bytes of one pixel (`16*groups`
/// floats); for each of the `{wo}` windows, `{groups}` steps of 16 channels (`{g}` counts them)
/// run `step`, which advances its pointers by one group (`{top}` and `{bot}` included), then
/// `{top}` and `{bot}` skip the right pixel of the window. `setup` runs once, before the walk.
/// `walk` gives `top`, `rb`, `groups`, `wo`; the operands are those four, then the kernel's own
/// (`operands`), then the scratch `bot`, `cs`, `g` and the kernel's own (`scratch`).
macro_rules! window_row_asm {
    (
        walk: ($top:expr, $rb:expr, $groups:expr, $wo:expr),
        operands: [$($own:tt)*],
        scratch: [$($scratch:tt)*],
        setup: [$($setup:expr),* $(,)?],
        step: [$($step:expr),+ $(,)?] $(,)?
    ) => {
        asm_zmm!(
            $($setup,)*
            "lea {bot}, [{top} + {rb}]",
            "mov {cs}, {groups}",
            "shl {cs}, 6", // bytes of one pixel (c floats)
            "2:",
            "mov {g}, {groups}",
            "3:",
            $($step,)+
            "dec {g}",
            "jnz 3b",
            "add {top}, {cs}", // skip the right pixel of the window
            "add {bot}, {cs}",
            "dec {wo}",
            "jnz 2b",
            ;
            top = inout(reg) $top => _,
            rb = in(reg) $rb,
            groups = in(reg) $groups,
            wo = inout(reg) $wo => _,
            $($own)*
            bot = out(reg) _,
            cs = out(reg) _,
            g = out(reg) _,
            $($scratch)*
        )
    };
}

/// Pools one output row: input rows `top` and `top + row_bytes` (two HWC rows of `2*wo`
/// pixels of `c = 16*groups` channels), output `wo` pixels at `out`, argmax bytes at `am`.
///
/// Per 16 channels: m = top-left; for top-right, bottom-left, bottom-right in that order
/// `vcmpps GT` (strictly greater, so the first maximum wins ties) sets the code 1/2/3 under
/// the mask, `vmaxps` updates m; finally `m <= 0` sets code 4.
///
/// Registers: zmm0 running max, zmm1-3 the other window positions, zmm4 codes (dwords),
/// zmm24 zero, zmm25-28 the codes 1, 2, 3, 4; k1-k4 compare masks.
///
/// # Safety
/// AVX-512 present; `wo, groups >= 1`; pointers valid for the row sizes above.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl")
)]
pub unsafe fn forward_row(
    top: *const f32,
    row_bytes: usize,
    groups: usize,
    wo: usize,
    out: *mut f32,
    am: *mut u8,
) {
    window_row_asm!(
        walk: (top, row_bytes, groups, wo),
        operands: [out = inout(reg) out => _, am = inout(reg) am => _,],
        scratch: [t = out(reg) _,],
        setup: [
            "vpxord zmm24, zmm24, zmm24",
            "mov {t:e}, 1", "vpbroadcastd zmm25, {t:e}",
            "mov {t:e}, 2", "vpbroadcastd zmm26, {t:e}",
            "mov {t:e}, 3", "vpbroadcastd zmm27, {t:e}",
            "mov {t:e}, 4", "vpbroadcastd zmm28, {t:e}",
        ],
        step: [
            "vmovups zmm0, [{top}]",        // top-left
            "vmovups zmm1, [{top} + {cs}]", // top-right
            "vmovups zmm2, [{bot}]",        // bottom-left
            "vmovups zmm3, [{bot} + {cs}]", // bottom-right
            "vpxord zmm4, zmm4, zmm4",
            "vcmpps k1, zmm1, zmm0, 0x1e", // tr > m
            "vmaxps zmm0, zmm0, zmm1",
            "vmovdqa32 zmm4 {{k1}}, zmm25",
            "vcmpps k2, zmm2, zmm0, 0x1e", // bl > m
            "vmaxps zmm0, zmm0, zmm2",
            "vmovdqa32 zmm4 {{k2}}, zmm26",
            "vcmpps k3, zmm3, zmm0, 0x1e", // br > m
            "vmaxps zmm0, zmm0, zmm3",
            "vmovdqa32 zmm4 {{k3}}, zmm27",
            "vcmpps k4, zmm0, zmm24, 0x12", // m <= 0
            "vmovdqa32 zmm4 {{k4}}, zmm28",
            // The output (the next layer's padded input, in a batch slot last touched a batch
            // ago) is rarely in cache: ask for ownership of a line 8 ahead, so the stores do
            // not wait (a prefetch past the end of the buffer never faults).
            "prefetchw [{out} + 512]",
            "vmovups [{out}], zmm0",
            "vpmovdb xmmword ptr [{am}], zmm4",
            "add {top}, 64",
            "add {bot}, 64",
            "add {out}, 64",
            "add {am}, 16",
        ],
    );
}

/// [`forward_row`] without the argmax codes (inference): per 16 channels the maximum of the
/// four window positions, `vmaxps` in window order as there, so the same bits (NaN and
/// signed zeros included).
///
/// Registers: zmm0-3 the window positions, zmm0 the maximum.
///
/// # Safety
/// As [`forward_row`].
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn max_row(top: *const f32, row_bytes: usize, groups: usize, wo: usize, out: *mut f32) {
    window_row_asm!(
        walk: (top, row_bytes, groups, wo),
        operands: [out = inout(reg) out => _,],
        scratch: [],
        setup: [],
        step: [
            "vmovups zmm0, [{top}]",
            "vmovups zmm1, [{top} + {cs}]",
            "vmovups zmm2, [{bot}]",
            "vmovups zmm3, [{bot} + {cs}]",
            "vmaxps zmm0, zmm0, zmm1",
            "vmaxps zmm0, zmm0, zmm2",
            "vmaxps zmm0, zmm0, zmm3",
            "prefetchw [{out} + 512]",
            "vmovups [{out}], zmm0",
            "add {top}, 64",
            "add {bot}, 64",
            "add {out}, 64",
        ],
    );
}

/// Backward of one output row: for `wo` pixels x `16*groups` channels, the gradient `dout`
/// goes to the window position named by its argmax byte, zero to the other three (code 4:
/// zero everywhere). `top` is the first interior element of the window's top row in `dy_pad`,
/// `row_bytes` the padded row stride; exactly the `2*wo` pixels of both rows are written.
///
/// Registers: zmm0 dout, zmm1 codes (bytes zero-extended to dwords), zmm2-5 the four masked
/// copies, zmm25-27 the codes 1, 2, 3; k1-k4 "code == position".
///
/// # Safety
/// AVX-512 present; `wo, groups >= 1`; pointers valid for the sizes above.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl")
)]
pub unsafe fn backward_row(
    dout: *const f32,
    am: *const u8,
    groups: usize,
    wo: usize,
    top: *mut f32,
    row_bytes: usize,
) {
    window_row_asm!(
        walk: (top, row_bytes, groups, wo),
        operands: [dout = inout(reg) dout => _, am = inout(reg) am => _,],
        scratch: [t = out(reg) _,],
        setup: [
            "mov {t:e}, 1", "vpbroadcastd zmm25, {t:e}",
            "mov {t:e}, 2", "vpbroadcastd zmm26, {t:e}",
            "mov {t:e}, 3", "vpbroadcastd zmm27, {t:e}",
        ],
        step: [
            "vmovups zmm0, [{dout}]",
            "vpmovzxbd zmm1, xmmword ptr [{am}]",
            "vptestnmd k1, zmm1, zmm1", // code == 0
            "vpcmpeqd k2, zmm1, zmm25",
            "vpcmpeqd k3, zmm1, zmm26",
            "vpcmpeqd k4, zmm1, zmm27",
            "vmovaps zmm2 {{k1}}{{z}}, zmm0",
            "vmovaps zmm3 {{k2}}{{z}}, zmm0",
            "vmovaps zmm4 {{k3}}{{z}}, zmm0",
            "vmovaps zmm5 {{k4}}{{z}}, zmm0",
            "vmovups [{top}], zmm2",
            "vmovups [{top} + {cs}], zmm3",
            "vmovups [{bot}], zmm4",
            "vmovups [{bot} + {cs}], zmm5",
            "add {dout}, 64",
            "add {am}, 16",
            "add {top}, 64",
            "add {bot}, 64",
        ],
    );
}

//! Sigmoid and binary cross-entropy, 16 samples per ZMM (the original's `loss.asm` and the
//! sigmoid of `activation_functions.asm`, which called libc `expf`/`logf` one sample at a time).
//!
//! `exp` and `log` are written out here as vector code (Cephes-style, about 1 ulp):
//! - exp(x): n = round(x * log2 e), r = x - n*ln2 (ln2 split in a high and a low part), e^r = 1 + r +
//!   r^2 P(r) with P of degree 5, then `vscalefps` multiplies by 2^n (it underflows cleanly to 0).
//! - log(x): `vgetexpps`/`vgetmantps` split x = m * 2^e with m in [1/2, 1); if m < sqrt(1/2)
//!   then m *= 2, e -= 1, so f = m - 1 is in [-0.29, 0.41]; log(1+f) = f - f^2/2 + f^3 P(f) with
//!   P of degree 8, plus e * ln2 (again split in two parts).
//!
//! Stable sigmoid for both signs: t = exp(-|z|) (argument <= 0, never overflows),
//! p = 1/(1+t) for z >= 0 and t/(1+t) for z < 0.

use crate::kernels::asm_zmm;
use std::mem::offset_of;

/// Constants the kernels broadcast from memory (`{1to16}` operands).
#[repr(C, align(64))]
pub struct Consts {
    log2e: f32,
    ln2_hi: f32,
    ln2_lo: f32,
    exp_min: f32,
    e0: f32,
    e1: f32,
    e2: f32,
    e3: f32,
    e4: f32,
    e5: f32,
    one: f32,
    half: f32,
    sqrt_half: f32,
    l0: f32,
    l1: f32,
    l2: f32,
    l3: f32,
    l4: f32,
    l5: f32,
    l6: f32,
    l7: f32,
    l8: f32,
    eps: f32,
    abs_mask: u32,
}

static C: Consts = Consts {
    log2e: std::f32::consts::LOG2_E,
    ln2_hi: 0.693_359_4,
    ln2_lo: -2.121_944_4e-4,
    exp_min: -150.0,
    e0: 1.987_569_2e-4,
    e1: 1.398_2e-3,
    e2: 8.333_452e-3,
    e3: 4.166_579_6e-2,
    e4: 1.666_666_5e-1,
    e5: 0.5,
    one: 1.0,
    half: 0.5,
    sqrt_half: std::f32::consts::FRAC_1_SQRT_2,
    l0: 7.037_683_6e-2,
    l1: -1.151_461e-1,
    l2: 1.167_699_9e-1,
    l3: -1.242_014_1e-1,
    l4: 1.424_932_3e-1,
    l5: -1.666_805_8e-1,
    l6: 2.000_071_4e-1,
    l7: -2.499_999_4e-1,
    l8: 3.333_333e-1,
    eps: 1e-7,
    abs_mask: 0x7fff_ffff,
};

/// zmm1 = exp(zmm1), temps zmm2-zmm4; constants at {c}.
macro_rules! exp_zmm1 {
    () => {
        concat!(
            "vmaxps zmm1, zmm1, dword ptr [{c} + {o_min}]{{1to16}}\n",
            "vmulps zmm2, zmm1, dword ptr [{c} + {o_log2e}]{{1to16}}\n",
            "vrndscaleps zmm2, zmm2, 0\n", // n = round to nearest
            "vfnmadd231ps zmm1, zmm2, dword ptr [{c} + {o_ln2hi}]{{1to16}}\n",
            "vfnmadd231ps zmm1, zmm2, dword ptr [{c} + {o_ln2lo}]{{1to16}}\n", // r
            "vbroadcastss zmm3, dword ptr [{c} + {o_e0}]\n",
            "vfmadd213ps zmm3, zmm1, dword ptr [{c} + {o_e1}]{{1to16}}\n",
            "vfmadd213ps zmm3, zmm1, dword ptr [{c} + {o_e2}]{{1to16}}\n",
            "vfmadd213ps zmm3, zmm1, dword ptr [{c} + {o_e3}]{{1to16}}\n",
            "vfmadd213ps zmm3, zmm1, dword ptr [{c} + {o_e4}]{{1to16}}\n",
            "vfmadd213ps zmm3, zmm1, dword ptr [{c} + {o_e5}]{{1to16}}\n",
            "vmulps zmm4, zmm1, zmm1\n",
            "vfmadd213ps zmm3, zmm4, zmm1\n", // p*r^2 + r
            "vaddps zmm3, zmm3, dword ptr [{c} + {o_one}]{{1to16}}\n",
            "vscalefps zmm1, zmm3, zmm2\n", // * 2^n
        )
    };
}

/// zmm1 = ln(zmm1) for zmm1 > 0, temps zmm2-zmm4 and k5; constants at {c}.
macro_rules! log_zmm1 {
    () => {
        concat!(
            "vgetexpps zmm2, zmm1\n",
            "vgetmantps zmm1, zmm1, 2\n", // m in [1/2, 1)
            "vaddps zmm2, zmm2, dword ptr [{c} + {o_one}]{{1to16}}\n",
            "vcmpps k5, zmm1, dword ptr [{c} + {o_sqh}]{{1to16}}, 1\n",
            "vaddps zmm1 {{k5}}, zmm1, zmm1\n",
            "vsubps zmm2 {{k5}}, zmm2, dword ptr [{c} + {o_one}]{{1to16}}\n",
            "vsubps zmm1, zmm1, dword ptr [{c} + {o_one}]{{1to16}}\n", // f
            "vmulps zmm3, zmm1, zmm1\n",                               // f^2
            "vbroadcastss zmm4, dword ptr [{c} + {o_l0}]\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l1}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l2}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l3}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l4}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l5}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l6}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l7}]{{1to16}}\n",
            "vfmadd213ps zmm4, zmm1, dword ptr [{c} + {o_l8}]{{1to16}}\n",
            "vmulps zmm4, zmm4, zmm1\n",
            "vmulps zmm4, zmm4, zmm3\n", // y = f^3 P(f)
            "vfmadd231ps zmm4, zmm2, dword ptr [{c} + {o_ln2lo}]{{1to16}}\n",
            "vfnmadd231ps zmm4, zmm3, dword ptr [{c} + {o_half}]{{1to16}}\n",
            "vaddps zmm1, zmm1, zmm4\n",
            "vfmadd231ps zmm1, zmm2, dword ptr [{c} + {o_ln2hi}]{{1to16}}\n",
        )
    };
}

/// zmm0 (logits) -> zmm5 = sigmoid; uses zmm1-4, zmm6, k5, k6.
macro_rules! sigmoid_zmm0 {
    () => {
        concat!(
            "vandps zmm1, zmm0, dword ptr [{c} + {o_abs}]{{1to16}}\n",
            "vxorps zmm6, zmm6, zmm6\n",
            "vsubps zmm1, zmm6, zmm1\n", // -|z|
            exp_zmm1!(),                 // t = exp(-|z|)
            "vaddps zmm5, zmm1, dword ptr [{c} + {o_one}]{{1to16}}\n", // 1 + t
            "vcmpps k6, zmm0, zmm6, 0x1d\n", // z >= 0
            "vbroadcastss zmm1 {{k6}}, dword ptr [{c} + {o_one}]\n", // numerator 1 or t
            "vdivps zmm5, zmm1, zmm5\n",
        )
    };
}

macro_rules! consts_operands {
    ($($rest:tt)*) => {
        asm_zmm!(
            $($rest)*
            c = in(reg) &C as *const Consts,
            o_log2e = const offset_of!(Consts, log2e),
            o_ln2hi = const offset_of!(Consts, ln2_hi),
            o_ln2lo = const offset_of!(Consts, ln2_lo),
            o_min = const offset_of!(Consts, exp_min),
            o_e0 = const offset_of!(Consts, e0),
            o_e1 = const offset_of!(Consts, e1),
            o_e2 = const offset_of!(Consts, e2),
            o_e3 = const offset_of!(Consts, e3),
            o_e4 = const offset_of!(Consts, e4),
            o_e5 = const offset_of!(Consts, e5),
            o_one = const offset_of!(Consts, one),
            o_half = const offset_of!(Consts, half),
            o_sqh = const offset_of!(Consts, sqrt_half),
            o_l0 = const offset_of!(Consts, l0),
            o_l1 = const offset_of!(Consts, l1),
            o_l2 = const offset_of!(Consts, l2),
            o_l3 = const offset_of!(Consts, l3),
            o_l4 = const offset_of!(Consts, l4),
            o_l5 = const offset_of!(Consts, l5),
            o_l6 = const offset_of!(Consts, l6),
            o_l7 = const offset_of!(Consts, l7),
            o_l8 = const offset_of!(Consts, l8),
            o_eps = const offset_of!(Consts, eps),
            o_abs = const offset_of!(Consts, abs_mask),
        )
    };
}

/// `let $steps, $tail`: the steps of 16 samples over `len` samples, and the mask of the last
/// step (all ones when 16 divides `len`), for [`steps_asm!`]. Statements rather than a function
/// returning the pair: through a function the compiler orders this scalar prologue differently.
macro_rules! steps_of {
    ($len:expr => $steps:ident, $tail:ident) => {
        let $steps = $len.div_ceil(16);
        let $tail = if $len.is_multiple_of(16) {
            0xffff
        } else {
            (1u32 << ($len % 16)) - 1
        };
    };
}

/// [`consts_operands!`] for the kernels that run every 16 samples through the same code:
/// `steps` ([`steps_of!`]) steps of `step` (which advances its own pointers), `k1` all ones but
/// on the last step, where it is the tail mask; `setup` runs once before, `done` once after.
/// The operands are `m` (the tail mask), `n` (the steps), then the kernel's `pointers` (and
/// whatever else it uses), then the constants.
macro_rules! steps_asm {
    (
        steps: ($steps:expr, $tail:expr),
        pointers: [$($pointers:tt)*],
        setup: [$($setup:expr),* $(,)?],
        step: [$($step:expr),+ $(,)?],
        done: [$($done:expr),+ $(,)?] $(,)?
    ) => {
        consts_operands!(
            $($setup,)*
            "kxnorw k1, k1, k1",
            "test {n}, {n}",
            "jz 9f",
            "2:",
            "cmp {n}, 1",
            "jne 3f",
            "kmovw k1, {m:e}", // last step: tail mask
            "3:",
            $($step,)+
            "dec {n}",
            "jnz 2b",
            "9:",
            $($done,)+
            ;
            m = in(reg) $tail,
            n = inout(reg) $steps => _,
            $($pointers)*
        )
    };
}

/// `probs[i] = sigmoid(z[i])`, `dz[i] = probs[i] - y[i]`, and the returned sum of
/// `-(y ln(p + 1e-7) + (1 - y) ln(1 - p + 1e-7))`, 16 samples per step; the last step runs
/// under the tail mask (its masked-off lanes are left out of the sum).
///
/// Registers: zmm0 logits, zmm5 p, zmm7 labels as floats, zmm8 ln(p+eps), zmm9 1-p+eps,
/// zmm10 the running loss sum, zmm1-4/zmm6 exp/log temps; k1 step mask, k5/k6 temps.
///
/// # Safety
/// AVX-512 present; every pointer valid for `len` elements.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")
)]
pub unsafe fn sigmoid_bce(
    z: *const f32,
    y: *const u8,
    p: *mut f32,
    dz: *mut f32,
    len: usize,
) -> f32 {
    steps_of!(len => steps, tail);
    let mut sum = 0.0f32;
    steps_asm!(
        steps: (steps, tail),
        pointers: [
            z = inout(reg) z => _,
            y = inout(reg) y => _,
            p = inout(reg) p => _,
            dz = inout(reg) dz => _,
            s = in(reg) &mut sum as *mut f32,
        ],
        setup: ["vxorps zmm10, zmm10, zmm10"],
        step: [
            "vmovups zmm0 {{k1}}{{z}}, [{z}]",
            // labels: masked byte load (fault-suppressing: never reads past the last label)
            "vmovdqu8 xmm7 {{k1}}{{z}}, xmmword ptr [{y}]",
            "vpmovzxbd zmm7, xmm7",
            "vcvtdq2ps zmm7, zmm7",
            sigmoid_zmm0!(),
            "vmovups [{p}] {{k1}}, zmm5",
            "vsubps zmm1, zmm5, zmm7",
            "vmovups [{dz}] {{k1}}, zmm1",
            // ln(p + eps)
            "vaddps zmm1, zmm5, dword ptr [{c} + {o_eps}]{{1to16}}",
            log_zmm1!(),
            "vmovaps zmm8, zmm1",
            // ln(1 - p + eps)
            "vbroadcastss zmm1, dword ptr [{c} + {o_one}]",
            "vsubps zmm1, zmm1, zmm5",
            "vaddps zmm1, zmm1, dword ptr [{c} + {o_eps}]{{1to16}}",
            log_zmm1!(),
            // loss = -(y*l1 + (1-y)*l0)
            "vbroadcastss zmm2, dword ptr [{c} + {o_one}]",
            "vsubps zmm2, zmm2, zmm7", // 1 - y
            "vmulps zmm1, zmm1, zmm2",
            "vfmadd231ps zmm1, zmm7, zmm8",
            "vsubps zmm10 {{k1}}, zmm10, zmm1",
            "add {z}, 64",
            "add {y}, 16",
            "add {p}, 64",
            "add {dz}, 64",
        ],
        // horizontal sum of zmm10 -> xmm10[0]
        done: [
            "vextractf64x4 ymm1, zmm10, 1",
            "vaddps ymm10, ymm10, ymm1",
            "vextractf128 xmm1, ymm10, 1",
            "vaddps xmm10, xmm10, xmm1",
            "vmovhlps xmm1, xmm1, xmm10",
            "vaddps xmm10, xmm10, xmm1",
            "vmovshdup xmm1, xmm10",
            "vaddss xmm10, xmm10, xmm1",
            "vmovss dword ptr [{s}], xmm10",
        ],
    );
    sum
}

/// `probs[i] = sigmoid(z[i])` for `i < len`, same code as in [`sigmoid_bce`].
///
/// # Safety
/// AVX-512 present; both pointers valid for `len` floats.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512vl,avx512dq")
)]
pub unsafe fn sigmoid(z: *const f32, p: *mut f32, len: usize) {
    steps_of!(len => steps, tail);
    steps_asm!(
        steps: (steps, tail),
        pointers: [z = inout(reg) z => _, p = inout(reg) p => _,],
        setup: [],
        step: [
            "vmovups zmm0 {{k1}}{{z}}, [{z}]",
            sigmoid_zmm0!(),
            "vmovups [{p}] {{k1}}, zmm5",
            "add {z}, 64",
            "add {p}, 64",
        ],
        done: ["/* not used by sigmoid alone: {o_half} {o_sqh} {o_eps} {o_l0} {o_l1} {o_l2} {o_l3} {o_l4} {o_l5} {o_l6} {o_l7} {o_l8} */"],
    );
}

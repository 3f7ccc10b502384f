//! The `asm!` kernels, on ZMM registers, one file per layer family. Each kernel states its
//! contract (shapes, strides, alignment, which registers it uses) in its doc comment; the loops
//! that call them live in the layer modules (`crate::layers`).
//! Every kernel is an `unsafe fn` whose first safety condition is AVX-512: callers hold a
//! [`crate::cpu::Avx512`].

// Off x86_64 the kernel bodies are a panic, so their operands go unused: no warnings for that.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(
        unused_variables,
        unused_mut,
        unused_macros,
        unused_imports,
        unreachable_code,
        dead_code
    )
)]

// x86_64: the real `asm!`. Elsewhere the ZMM kernels cannot be assembled; no `Avx512` token
// exists there (no AVX-512), so each kernel body is replaced by a panic and the crate builds
// and runs on the scalar reference path.
#[cfg(target_arch = "x86_64")]
pub(crate) use std::arch::asm;
#[cfg(not(target_arch = "x86_64"))]
macro_rules! asm {
    ($($t:tt)*) => {
        unreachable!("an x86-64 asm kernel was called on another architecture")
    };
}
#[cfg(not(target_arch = "x86_64"))]
pub(crate) use asm;

pub mod activations;
pub mod conv;
pub mod dropout;
pub mod fc;
pub mod load;
pub mod loss;
pub mod microkernel;
pub mod pool;
pub mod update;
pub mod weight_grad;
pub mod winograd2;
pub mod winograd4;
pub mod winograd_rows;

/// `asm!` for every kernel of the fast tier: `asm_zmm!(template lines; operands)`, each operand
/// followed by a comma. After the template lines it emits a `vzeroupper`, so the caller's SSE
/// code does not pay for a dirty upper vector state (every fast-tier kernel ends with one), then
/// the operands, every vector and mask register declared clobbered (zmm0-31, k1-7), and
/// `options(nostack)`: the kernels name their registers explicitly in the template text, so that
/// a reader sees exactly which register holds what.
macro_rules! asm_zmm {
    ($($template:expr),+ $(,)? ; $($operands:tt)*) => {
        $crate::kernels::asm!(
            $($template,)+
            "vzeroupper",
            $($operands)*
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            out("k1") _, out("k2") _, out("k3") _, out("k4") _,
            out("k5") _, out("k6") _, out("k7") _,
            options(nostack),
        )
    };
}
pub(crate) use asm_zmm;

/// The full vectors and the tail mask of a streaming kernel over `len` floats: `len / 16` whole
/// ZMMs, then the mask of the `len % 16` lanes left (`k1` in [`stream_asm!`]).
pub(crate) fn split(len: usize) -> (usize, u32) {
    (len / 16, (1u32 << (len % 16)) - 1)
}

/// `asm_zmm!` for the streaming kernels, one ZMM of 16 floats per step, then one masked step:
/// `k1` = the tail mask of `len` ([`split`]); `setup` runs once; `{nv}` full vectors go through
/// `step`, which advances its own pointers by one vector; then `tail` runs once, under `k1`.
/// The operands are `m` (the tail mask), the kernel's `consts`, `nv`, then the kernel's
/// `pointers` (and whatever else it uses).
macro_rules! stream_asm {
    (
        len: $len:expr,
        consts: [$($consts:tt)*],
        pointers: [$($pointers:tt)*],
        setup: [$($setup:expr),* $(,)?],
        step: [$($step:expr),+ $(,)?],
        tail: [$($tail:expr),+ $(,)?] $(,)?
    ) => {{
        let (full, tail) = $crate::kernels::split($len);
        $crate::kernels::asm_zmm!(
            "kmovw k1, {m:e}",
            $($setup,)*
            "test {nv}, {nv}",
            "jz 3f",
            "2:",
            $($step,)+
            "dec {nv}",
            "jnz 2b",
            "3:",
            $($tail,)+
            ;
            m = in(reg) tail,
            $($consts)*
            nv = inout(reg) full => _,
            $($pointers)*
        )
    }};
}
pub(crate) use stream_asm;

//! The `asm!` kernels, on ZMM registers, one file per layer family. Each kernel states its
//! contract (shapes, strides, alignment, which registers it uses) in its doc comment; the loops
//! that call them live in the layer modules (`crate::convolution`, `crate::maxpool`, ...).
//! Callers must have checked [`crate::cpu::has_avx512`].

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

// x86_64: the real `asm!`. Elsewhere the ZMM kernels cannot be assembled; `cpu::detect` never
// picks them there (no AVX-512), so each kernel body is replaced by a panic and the crate builds
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
pub mod conv_wgrad;
pub mod dense;
pub mod dropout;
pub mod load;
pub mod loss;
pub mod pool;
pub mod update;
pub mod winograd;

//! The `asm!` kernels, on ZMM registers, one file per layer family. Each kernel states its
//! contract (shapes, strides, alignment, which registers it uses) in its doc comment; the loops
//! that call them live in the layer modules (`crate::convolution`, `crate::maxpool`, ...).
//! Callers must have checked [`crate::cpu::has_avx512`].

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

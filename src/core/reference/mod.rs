//! The scalar reference: every kernel in plain Rust, written for clarity, in the original's
//! layouts. Tests compare the `asm!` kernels against it; CPUs without AVX-512 run it.

pub mod activations;
pub mod conv;
pub mod dropout;
pub mod fc;
pub mod load;
pub mod loss;
pub mod pool;
pub mod update;
pub mod weight_grad;

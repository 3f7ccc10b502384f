//! Helpers shared by the kernel tests (`layers`, `original_kernels`): deterministic test data
//! (from `numbers.rs`), and the kernel paths to test.
#![allow(dead_code)]

pub use catdog::config::Kernels;
pub use catdog::cpu::Avx512;

#[path = "numbers.rs"]
mod numbers;
#[allow(unused_imports)] // each test crate uses some
pub(crate) use numbers::{assert_close, avx512_rng, avx512_test_rng, dims, scale, Rng};

/// The kernels whose layers this CPU runs: the scalar reference, the portable kernels, and the
/// fast kernels where AVX-512 is (a failure without it under `CATDOG_REQUIRE_AVX512=1`).
pub fn paths() -> &'static [Kernels] {
    if avx512_or_note("the fast kernels' layers").is_some() {
        &[Kernels::Reference, Kernels::Portable, Kernels::Fast]
    } else {
        &[Kernels::Reference, Kernels::Portable]
    }
}

/// The AVX-512 token; where this CPU lacks AVX-512, `None` after a note saying that `test` is
/// skipped (a failure under `CATDOG_REQUIRE_AVX512=1`, which CI sets on AVX-512 machines).
pub fn avx512_or_note(test: &str) -> Option<Avx512> {
    catdog::testing::avx512_or_skip(test)
}

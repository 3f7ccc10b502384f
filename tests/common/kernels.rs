//! Helpers shared by the kernel tests (`layers`, `original_kernels`): deterministic test data, and the
//! kernel paths to test.
#![allow(dead_code)]

pub use catdog::cpu::Avx512;
pub use catdog::network::Kernels;

/// xorshift64*: a deterministic PRNG for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

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

/// The data generator for a test of asm code, seeded with `seed`; `None`, as
/// [`avx512_or_note`], on a CPU without AVX-512.
pub fn avx512_rng(test: &str, seed: u64) -> Option<Rng> {
    avx512_or_note(test).map(|_| Rng::new(seed))
}

//! Helpers shared by the kernel tests (`layers`, `original_kernels`): deterministic test data, and the
//! kernel paths to test.
#![allow(dead_code)]

use catdog::cpu::{has_avx512, Path};

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

/// The kernel paths this CPU can run: the scalar reference, and the asm one where AVX-512 is.
pub fn paths() -> &'static [Path] {
    if has_avx512() {
        &[Path::Reference, Path::Asm]
    } else {
        &[Path::Reference]
    }
}

/// Whether this CPU runs the asm code; where it does not, a note saying that `test` is skipped.
pub fn avx512_or_note(test: &str) -> bool {
    if !has_avx512() {
        println!("note: {test}: this CPU lacks AVX-512, the asm code is not tested");
    }
    has_avx512()
}

/// The data generator for a test of asm code, seeded with `seed`; `None`, after a note, on a CPU
/// without AVX-512 (where the test has nothing to run).
pub fn avx512_rng(test: &str, seed: u64) -> Option<Rng> {
    avx512_or_note(test).then(|| Rng::new(seed))
}

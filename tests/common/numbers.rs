//! Numbers for the kernel tests and benches: the one test-data generator ([`Rng`]), padded
//! tensors made with it, and the one "equal up to float rounding" check ([`assert_close`], on
//! `approx`).
#![allow(dead_code)]

/// The data generator for a test of asm code, seeded with `seed`; where this CPU lacks AVX-512,
/// `None` after a note saying that `test` is skipped (a failure under `CATDOG_REQUIRE_AVX512=1`,
/// which CI sets on AVX-512 machines).
pub fn avx512_rng(test: &str, seed: u64) -> Option<Rng> {
    catdog::testing::avx512_or_skip(test).map(|_| Rng::new(seed))
}

/// `let mut rng = avx512_test_rng!(test, seed);`: [`avx512_rng`]'s generator, or a return from
/// the calling test where it is skipped: the skip written once instead of a `let ... else` in
/// every test.
#[allow(unused_macros)] // each test crate uses some
macro_rules! avx512_test_rng {
    ($test:expr, $seed:expr) => {
        match avx512_rng($test, $seed) {
            Some(rng) => rng,
            None => return,
        }
    };
}
#[allow(unused_imports)] // each test crate uses some
pub(crate) use avx512_test_rng;

/// The dimensions of a 3x3 convolution: `h` x `w` x `cin` in, `h` x `w` x `cout` out.
pub fn dims(h: usize, w: usize, cin: usize, cout: usize) -> catdog::config::ConvDims {
    catdog::config::ConvDims { h, w, cin, cout }
}

/// A padded input and a padded output gradient for the convolution `d`, uniform in `[-1, 1)`
/// with zero borders, drawn in that order.
pub fn x_and_dy(rng: &mut Rng, d: &catdog::config::ConvDims) -> (Vec<f32>, Vec<f32>) {
    let x = padded(rng, d.h, d.w, d.cin, -1.0, 1.0);
    (x, padded(rng, d.h, d.w, d.cout, -1.0, 1.0))
}

/// `(max |got - want|, that over max |want|)`: the largest error, absolute and relative to the
/// largest value of the f64 reference `want`.
pub fn max_err(got: &[f32], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (&g, &r)| m.max((g as f64 - r).abs()));
    (err, err / scale.max(f64::MIN_POSITIVE))
}

/// xorshift64*: a small deterministic generator, so that a failure reproduces from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1), 24 bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        self.uniform(-1.0, 1.0)
    }
    /// `n` values uniform in [-1, 1).
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    /// `n` values uniform in [lo, hi).
    pub fn fill(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    /// `n` uniform bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// A `(h+2) x (w+2) x c` HWC tensor: interior uniform in `[lo, hi)`, zero border.
pub fn padded(rng: &mut Rng, h: usize, w: usize, c: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut v = vec![0.0; (h + 2) * (w + 2) * c];
    for y in 1..=h {
        for x in 1..=w {
            for t in &mut v[(y * (w + 2) + x) * c..][..c] {
                *t = rng.uniform(lo, hi);
            }
        }
    }
    v
}

/// Every `got[i]` is finite and equals `want[i]` as `approx::relative_eq!` with
/// `epsilon = eps(i)` and `max_relative`: float rounding, for errors measured either against a
/// magnitude the caller knows (`eps`) or relative to the values. Names `what` and the element
/// where it fails.
#[track_caller]
pub fn assert_close(
    what: &str,
    got: &[f32],
    want: &[f32],
    eps: impl Fn(usize) -> f32,
    max_relative: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = eps(i);
        assert!(
            g.is_finite() && approx::relative_eq!(g, w, epsilon = e, max_relative = max_relative),
            "{what}: element {i}: got {g}, want {w} (epsilon {e}, max_relative {max_relative})"
        );
    }
}

/// The largest magnitude in `v`, at least `floor`: the scale of the rounding error of sums of
/// terms of that size.
pub fn scale(v: &[f32], floor: f32) -> f32 {
    v.iter().fold(floor, |m, x| m.max(x.abs()))
}

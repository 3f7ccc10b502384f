//! What the criterion benchmarks' `main`s share.

use catdog::cpu::has_avx512;
use criterion::Criterion;

/// A benchmark binary of asm kernels: where this CPU lacks AVX-512, prints `no_avx512` and
/// measures nothing (the kernels cannot run); otherwise the hand-timed `summary`, then, where
/// given, the criterion `groups` and criterion's final summary.
pub fn run(no_avx512: &str, summary: fn(), groups: Option<fn()>) {
    if !has_avx512() {
        println!("{no_avx512}");
        return;
    }
    summary();
    if let Some(groups) = groups {
        groups();
        Criterion::default().configure_from_args().final_summary();
    }
}

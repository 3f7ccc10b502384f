//! Test aids: what only the tests (`tests/`) and benches (`benches/`) call, never the trainer.
//! Integration tests and benches link the library as any user does, so these live here rather
//! than behind `#[cfg(test)]`.
//!
//! - [`channel_blocks`]: [`crate::layers::conv::channel_block_iter`] as a Vec.
//! - [`fma_peak_loop`]: the register-only FMA loop the benches time next to their kernels.
//! - [`tiny_hyper`]: the smallest network, for fast tests.
//! - [`fns`], [`plan`], [`auto_plan`]: one choice of kernels' layer table and conv plans.
//! - [`avx512_or_skip`], [`require`]: where a test cannot run what it checks, a note and a skip,
//!   or (under `CATDOG_REQUIRE_AVX512=1` / `CATDOG_REQUIRE_SHARED=1`, as CI sets them) a failure
//!   naming what was missing.

use crate::config::Kernels;
use crate::config::{ConvDims, Hyper};
use crate::cpu::Avx512;
use crate::kernels::asm_zmm;
use crate::layers::conv::{Algo, ConvChoice, ConvPlan};
use crate::layers::LayerFns;

/// The smallest network the trainer accepts: 8 x 8 images, three 16-filter convolutions and 16
/// hidden neurons; everything else as [`Hyper::default`].
pub fn tiny_hyper() -> Hyper {
    Hyper {
        image: 8,
        widths: [16, 16, 16],
        fc1: 16,
        ..Hyper::default()
    }
}

/// Whether environment variable `var` is set to a true value (`1`, `true`, `yes`).
fn env_true(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// `Ok(())` where `have`; else, when `var` is set (CI sets `CATDOG_REQUIRE_AVX512` on an AVX-512
/// machine and `CATDOG_REQUIRE_SHARED` where the shared data is present), a panic naming what
/// `test` lacked; else `Err` after a `note:` saying that `test` is skipped.
pub fn require(have: bool, var: &str, test: &str, lack: &str) -> Result<(), ()> {
    if have {
        return Ok(());
    }
    if env_true(var) {
        panic!("{test}: {lack}, and {var} is set: this test must run here");
    }
    println!("note: {test}: {lack}: skipped ({var}=1 makes this a failure)");
    Err(())
}

/// The AVX-512 token for test `test`, or `None` after a note (a failure under
/// `CATDOG_REQUIRE_AVX512=1`).
pub fn avx512_or_skip(test: &str) -> Option<Avx512> {
    let cpu = crate::cpu::avx512();
    require(
        cpu.is_some(),
        "CATDOG_REQUIRE_AVX512",
        test,
        "this CPU lacks AVX-512",
    )
    .ok()?;
    cpu
}

/// The AVX-512 token, for a test that has already checked [`avx512_or_skip`] (panics without).
pub fn avx512() -> Avx512 {
    crate::cpu::require_avx512("fast").unwrap_or_else(|e| panic!("{e}"))
}

/// The layer table of `k` (panics where this CPU cannot run them).
pub fn fns(k: Kernels) -> &'static LayerFns {
    LayerFns::for_kernels(k).unwrap_or_else(|e| panic!("{e}"))
}

/// The plan of conv algorithm `algo` on layer `d` (panics for an asm algorithm on a CPU without
/// AVX-512).
pub fn plan(algo: Algo, d: &ConvDims) -> ConvPlan {
    match algo {
        Algo::Reference => ConvPlan::reference(d),
        Algo::Gemm => ConvPlan::portable(d),
        _ => ConvPlan::with(avx512(), algo, d),
    }
}

/// The plan the trainer picks for layer `d` on `k` (`--conv auto`).
pub fn auto_plan(k: Kernels, d: &ConvDims) -> ConvPlan {
    ConvPlan::for_kernels(k, d, ConvChoice::Auto).unwrap_or_else(|e| panic!("{e}"))
}

/// [`crate::layers::conv::channel_block_iter`] collected: `(first channel, NV)` per block.
pub fn channel_blocks(n: usize) -> Vec<(usize, usize)> {
    crate::layers::conv::channel_block_iter(n).collect()
}

/// FP32 FLOPs of one iteration of [`fma_peak_loop`]: 24 FMAs x 16 lanes x 2.
pub const FMA_PEAK_FLOPS_PER_ITER: usize = 24 * 16 * 2;

/// `iters` iterations of 24 independent `vfmadd231ps zmm` chains on registers only: timed, it
/// gives the FP32 FMA peak of this core at this moment (the machine is shared, so the benches
/// measure it next to every case). [`FMA_PEAK_FLOPS_PER_ITER`] FLOPs per iteration.
///
/// # Safety
/// The CPU has AVX-512F; `iters >= 1`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn fma_peak_loop(iters: usize) {
    debug_assert!(iters >= 1);
    asm_zmm!(
        "vpxord zmm24, zmm24, zmm24",
        "2:",
        ".irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
        "vfmadd231ps zmm\\r, zmm24, zmm24",
        ".endr",
        "dec {n}",
        "jnz 2b";
        n = inout(reg) iters => _,
    );
}

/// GFLOP/s of one timed run of [`fma_peak_loop`] over `iters` iterations.
///
/// # Safety
/// As [`fma_peak_loop`].
pub unsafe fn fma_peak_gflops(iters: usize) -> f64 {
    let t = std::time::Instant::now();
    fma_peak_loop(iters);
    (iters * FMA_PEAK_FLOPS_PER_ITER) as f64 / t.elapsed().as_secs_f64() / 1e9
}

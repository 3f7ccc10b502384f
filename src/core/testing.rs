//! Test aids: what only the tests (`tests/`) and benches (`benches/`) call, never the trainer.
//! Integration tests and benches link the library as any user does, so these live here rather
//! than behind `#[cfg(test)]`.
//!
//! - [`channel_blocks`]: [`crate::layers::conv::channel_block_iter`] as a Vec.
//! - [`fma_peak_loop`]: the register-only FMA loop the benches time next to their kernels.
//! - [`tiny_hyper`]: the smallest network, for fast tests.
//!
//! (The conv passes of one algorithm on any shape: `crate::layers::conv::ConvPlan::with`.)

use crate::config::Hyper;
use crate::kernels::asm_zmm;

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

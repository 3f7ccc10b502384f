//! Criterion benches of the non-conv kernels at the network's sizes (asm path), plus one
//! summary line per kernel with GFLOP/s or GB/s from a plain timing loop.
//!
//! `cargo bench --bench layers`

use catdog::arena::Arena;
use catdog::augment::{warp_image, Warp, CROP_AREA_PCT};
use catdog::config::Kernels;
use catdog::config::PoolDims;
use catdog::layers::fc::{FcDims, FcForward, FcWeightGrads};
use catdog::layers::pool::{OutPlace, PoolOut};
use catdog::testing::{fma_peak_gflops, fns};
use criterion::{black_box, criterion_group, Criterion, Throughput};
use std::time::Instant;

mod common;
#[path = "../tests/common/numbers.rs"]
mod numbers;
use numbers::Rng;

const ROWS: usize = 16;
const K: usize = 32768;
const N: usize = 128;
/// The benchmarked fc layer: fc1 of the original network, one batch.
const FC1: FcDims = FcDims {
    rows: ROWS,
    k: K,
    n: N,
};

/// Pseudo-random floats in a 64-byte-aligned buffer (as the trainer's arenas: unaligned
/// `Vec`s would make every ZMM load straddle two cache lines and halve the load bandwidth).
fn data(n: usize, seed: u32) -> Buf {
    let mut a = Arena::<f32>::zeroed(n).unwrap();
    a.all_mut()
        .copy_from_slice(&Rng::new(seed.into()).fill(n, -0.5, 0.5));
    Buf(a)
}

fn zeros(n: usize) -> Buf {
    Buf(Arena::<f32>::zeroed(n).unwrap())
}

/// An aligned float buffer that derefs to a slice.
struct Buf(Arena<f32>);
impl std::ops::Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.0.all()
    }
}
impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.0.all_mut()
    }
}

struct Fc1 {
    x: Buf,
    w: Buf,
    b: Buf,
    y: Buf,
    dy: Buf,
    dx: Buf,
    dw: Buf,
    db: Buf,
}

impl Fc1 {
    fn new() -> Self {
        Self {
            x: data(ROWS * K, 1),
            w: data(N * K, 2),
            b: data(N, 3),
            y: zeros(ROWS * N),
            dy: data(ROWS * N, 4),
            dx: zeros(ROWS * K),
            dw: zeros(N * K),
            db: zeros(N),
        }
    }
    fn forward(&mut self) {
        unsafe {
            (fns(Kernels::Fast).fc_forward)(
                FC1,
                FcForward::new(&self.x, &self.w, &self.b, true, self.y.as_mut_ptr(), 0..N),
            )
        }
    }
    fn input_grad(&mut self) {
        unsafe {
            (fns(Kernels::Fast).fc_input_grad)(FC1, &self.dy, &self.w, self.dx.as_mut_ptr(), 0..K)
        }
    }
    fn weight_grad(&mut self) {
        (fns(Kernels::Fast).fc_weight_grad)(
            FC1,
            FcWeightGrads::new(&self.x, &self.dy, &mut self.dw, &mut self.db, 0..N),
        )
    }
}

/// Median seconds of `f` over `reps` runs (after one warm-up).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[reps / 2]
}

fn summary() {
    // SAFETY: main() checked AVX-512. Best of 3 (the first run also wakes the clock up).
    let peak = (0..3)
        .map(|_| unsafe { fma_peak_gflops(20_000_000) })
        .fold(0.0, f64::max);
    println!("FMA peak of one core (register-only loop, best of 3): {peak:.1} GFLOP/s");
    let mut fc = Fc1::new();
    let flops = 2.0 * (ROWS * K * N) as f64;
    let wbytes = (N * K * 4) as f64;
    for (name, which) in [("forward", 0), ("input_grad", 1), ("weight_grad", 2)] {
        let s = time(30, || match which {
            0 => fc.forward(),
            1 => fc.input_grad(),
            _ => fc.weight_grad(),
        });
        println!(
            "fc1 {name:<17} rows={ROWS} k={K} n={N}: {:8.3} ms  {:6.1} GFLOP/s  {:6.1} GB/s of weights",
            s * 1e3,
            flops / s / 1e9,
            wbytes / s / 1e9
        );
    }
    // streaming reference point: SGD over fc1-sized buffers (reads p, g; writes p)
    let mut p = data(N * K, 7);
    let s = time(30, || (fns(Kernels::Fast).sgd)(&mut p, &fc.dw, 1e-3));
    println!(
        "sgd over {} floats: {:8.3} ms  {:6.1} GB/s (p, g read + p written)",
        N * K,
        s * 1e3,
        (3 * N * K * 4) as f64 / s / 1e9
    );
    let d = PoolDims {
        h: 128,
        w: 128,
        c: 32,
    };
    let y = data(d.h * d.w * d.c, 5);
    let mut out = zeros((66 * 66) * 32);
    let mut am = vec![0u8; d.out_len()];
    let place = OutPlace::padded(&d);
    let s = time(200, || {
        let mut pool = PoolOut {
            out: &mut out,
            place,
            argmax: Some(&mut am),
        };
        (fns(Kernels::Fast).pool_forward)(&d, &y, &mut pool, 0..d.h / 2)
    });
    let bytes = (y.len() * 4 + d.out_len() * 5) as f64;
    println!(
        "maxpool forward  128x128x32: {:8.1} us  {:6.1} GB/s",
        s * 1e6,
        bytes / s / 1e9
    );
    let dout = data(d.out_len(), 6);
    let mut dyp = zeros(130 * 130 * 32);
    let s = time(200, || {
        (fns(Kernels::Fast).pool_backward)(&d, &dout, &am, &mut dyp)
    });
    println!(
        "maxpool backward 128x128x32: {:8.1} us  {:6.1} GB/s",
        s * 1e6,
        bytes / s / 1e9
    );
    let img: Vec<u8> = (0..128 * 128 * 3).map(|i| (i * 7) as u8).collect();
    let mut pad = zeros(130 * 130 * 3);
    for flip in [false, true] {
        let s = time(500, || {
            (fns(Kernels::Fast).load_image)(128, 128, &img, &mut pad, flip)
        });
        let bytes = (img.len() * 5) as f64;
        println!(
            "load_image 128x128 flip={flip:<5}: {:8.1} us  {:6.1} GB/s (u8 in + f32 out)",
            s * 1e6,
            bytes / s / 1e9
        );
    }
    // The improved recipe's augmentation, plain Rust, before the load kernel.
    let mut warped = vec![0u8; img.len()];
    for (name, warp) in [
        ("whole image", Warp::identity(128, 128, false)),
        (
            "crop + jitter",
            Warp::draw(42, 1, 7, (128, 128), CROP_AREA_PCT, true),
        ),
    ] {
        let s = time(200, || warp_image(&img, &mut warped, 128, 128, &warp));
        println!("augment warp 128x128 {name:<13}: {:8.1} us", s * 1e6);
    }
}

fn benches(c: &mut Criterion) {
    let mut fc = Fc1::new();
    let mut g = c.benchmark_group("fc1_rows16");
    g.sample_size(20);
    // "elements" = floating-point operations: criterion's Gelem/s reads as GFLOP/s
    g.throughput(Throughput::Elements((2 * ROWS * K * N) as u64));
    g.bench_function("forward", |b| b.iter(|| fc.forward()));
    g.bench_function("input_grad", |b| b.iter(|| fc.input_grad()));
    g.bench_function("weight_grad", |b| b.iter(|| fc.weight_grad()));
    g.finish();

    let d = PoolDims {
        h: 128,
        w: 128,
        c: 32,
    };
    let y = data(d.h * d.w * d.c, 5);
    let mut out = zeros(66 * 66 * 32);
    let mut am = vec![0u8; d.out_len()];
    let place = OutPlace::padded(&d);
    let dout = data(d.out_len(), 6);
    let mut dyp = zeros(130 * 130 * 32);
    let mut g = c.benchmark_group("maxpool_128x128x32");
    g.throughput(Throughput::Bytes((y.len() * 4 + d.out_len() * 5) as u64));
    g.bench_function("forward", |b| {
        b.iter(|| {
            let mut pool = PoolOut {
                out: &mut out,
                place,
                argmax: Some(&mut am),
            };
            (fns(Kernels::Fast).pool_forward)(&d, black_box(&y), &mut pool, 0..d.h / 2)
        })
    });
    g.bench_function("backward", |b| {
        b.iter(|| (fns(Kernels::Fast).pool_backward)(&d, black_box(&dout), &am, &mut dyp))
    });
    g.finish();

    let img: Vec<u8> = (0..128 * 128 * 3).map(|i| (i * 7) as u8).collect();
    let mut pad = zeros(130 * 130 * 3);
    let mut g = c.benchmark_group("load_image_128x128");
    g.throughput(Throughput::Bytes((img.len() * 5) as u64));
    for flip in [false, true] {
        g.bench_function(if flip { "flip" } else { "plain" }, |b| {
            b.iter(|| (fns(Kernels::Fast).load_image)(128, 128, black_box(&img), &mut pad, flip))
        });
    }
    g.finish();

    let mut warped = vec![0u8; img.len()];
    let warp = Warp::draw(42, 1, 7, (128, 128), CROP_AREA_PCT, true);
    let mut g = c.benchmark_group("augment_warp_128x128");
    g.bench_function("crop_jitter", |b| {
        b.iter(|| warp_image(black_box(&img), &mut warped, 128, 128, &warp))
    });
    g.finish();
}

criterion_group!(layer_benches, benches);

fn main() {
    common::run(
        "note: no AVX-512 on this CPU: the asm kernels cannot be benchmarked here",
        summary,
        Some(layer_benches),
    );
}

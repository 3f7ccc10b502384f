//! Criterion benchmarks of Winograd F(4x4, 3x3) (`catdog::layers::conv::winograd`) beside
//! F(2x2, 3x3) (the trainer's algorithm for conv2 and conv3) at the network's default sizes
//! (image 128): conv2 (64x64, 32 -> 64) and conv3 (32x32, 64 -> 128), forward, input gradient
//! and weight gradient, one sample, one thread. Ids `winograd4/<layer> <pass>/<F(2x2)|F(4x4)>`;
//! criterion reports each time, the ratio is theirs.
//!
//! For the ratios in one line per case, alternated so that a noisy neighbour hits both
//! algorithms alike, run the ignored timing test instead:
//! `cargo test --release --test winograd4 -- --ignored --nocapture speed`.

use catdog::config::ConvDims;
use catdog::cpu::has_avx512;
use catdog::layers::conv::winograd::{self, F4};
use catdog::layers::conv::{Algo, ConvPlan};
use criterion::{criterion_group, Criterion};
use std::hint::black_box;

/// Deterministic pseudo-random buffers (xorshift), values in [lo, hi).
fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

/// A padded `(h+2) x (w+2) x c` buffer with a zero border.
fn padded(h: usize, w: usize, c: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let inner = data(h * w * c, seed, lo, hi);
    let mut v = vec![0.0; (h + 2) * (w + 2) * c];
    for y in 0..h {
        let row = ((y + 1) * (w + 2) + 1) * c;
        v[row..row + w * c].copy_from_slice(&inner[y * w * c..(y + 1) * w * c]);
    }
    v
}

fn bench(c: &mut Criterion) {
    if !has_avx512() {
        eprintln!("winograd4 bench: this CPU lacks AVX-512, nothing to measure");
        return;
    }
    let layers = [
        (
            "conv2",
            ConvDims {
                h: 64,
                w: 64,
                cin: 32,
                cout: 64,
            },
        ),
        (
            "conv3",
            ConvDims {
                h: 32,
                w: 32,
                cin: 64,
                cout: 128,
            },
        ),
    ];
    let mut g = c.benchmark_group("winograd4");
    for (name, d) in layers {
        let cin = d.cin;
        let x = padded(d.h, d.w, d.cin, 1, 0.0, 1.0);
        let dy = padded(d.h, d.w, d.cout, 2, -1e-3, 1e-3);
        let wts = data(d.weight_len(), 3, -0.1, 0.1);
        let bias = data(d.cout, 4, -0.01, 0.01);
        let bd = ConvDims {
            cin: d.cout,
            cout: d.cin,
            ..d
        };
        let mut y = vec![0.0; d.out_len()];
        let mut dx = vec![0.0; d.h * d.w * d.cin];
        let mut dw = vec![0.0; d.weight_len()];
        let mut db = vec![0.0; d.cout];
        // F(2x2): the convolution module's own packing and scratch.
        let a = Algo::Winograd;
        let mut u2f = vec![0.0; ConvPlan::with(a, &d).packed_len];
        (ConvPlan::with(a, &d).pack_forward)(&d, &wts, &mut u2f);
        let mut u2b = vec![0.0; ConvPlan::with(a, &d).packed_len];
        (ConvPlan::with(a, &d).pack_backward)(&d, &wts, &mut u2b);
        let mut s2 = vec![0.0; ConvPlan::with(a, &d).scratch_len];
        // F(4x4).
        let mut u4f = vec![0.0; winograd::packed_len::<F4>(d.cin, d.cout)];
        winograd::pack::<F4>(
            d.cin,
            d.cout,
            |oc, ky, kx, ic| wts[((oc * 3 + ky) * 3 + kx) * cin + ic],
            &mut u4f,
        );
        let mut u4b = vec![0.0; winograd::packed_len::<F4>(d.cout, d.cin)];
        winograd::pack::<F4>(
            d.cout,
            d.cin,
            |ic, ky, kx, oc| wts[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic],
            &mut u4b,
        );
        let mut s4 = vec![
            0.0;
            winograd::scratch_len::<F4>(&d)
                .max(winograd::scratch_len::<F4>(&bd))
                .max(winograd::wgrad_scratch_len::<F4>(&d))
        ];
        g.bench_function(format!("{name} forward/F(2x2)"), |b| {
            b.iter(|| {
                (ConvPlan::with(a, &d).forward)(&d, &x, &u2f, Some(&bias), &mut y, 0..d.h, &mut s2)
            })
        });
        g.bench_function(format!("{name} forward/F(4x4)"), |b| {
            b.iter(|| winograd::run::<F4>(&d, &x, &u4f, Some(&bias), &mut y, 0..d.h, &mut s4))
        });
        g.bench_function(format!("{name} input gradient/F(2x2)"), |b| {
            b.iter(|| (ConvPlan::with(a, &d).backward_data)(&d, &dy, &u2b, &mut dx, &mut s2))
        });
        g.bench_function(format!("{name} input gradient/F(4x4)"), |b| {
            b.iter(|| winograd::run::<F4>(&bd, &dy, &u4b, None, &mut dx, 0..d.h, &mut s4))
        });
        g.bench_function(format!("{name} weight gradient/F(2x2)"), |b| {
            b.iter(|| {
                (ConvPlan::with(a, &d).backward_weights)(&d, &x, &dy, &mut dw, &mut db, &mut s2)
            })
        });
        g.bench_function(format!("{name} weight gradient/F(4x4)"), |b| {
            b.iter(|| winograd::backward_weights::<F4>(&d, &x, &dy, &mut dw, &mut db, &mut s4))
        });
        black_box((&y, &dx, &dw, &db));
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}

//! Criterion benchmarks of the 3x3 convolution's asm path at the network's default sizes
//! (image 128): conv1/conv2/conv3 forward, conv2/conv3 input gradient, one sample, one thread,
//! with the direct algorithm and (conv2, conv3) Winograd F(2x2, 3x3) and F(4x4, 3x3), which
//! the trainer uses.
//!
//! Before criterion runs, a short manual timing prints one line per case:
//! `conv2 forward Direct: X GFLOP/s (Y% of 279; Z% of the P GFLOP/s FMA peak measured
//! alongside)`, FLOPs = 2*h*w*cin*cout*9 (the direct convolution's count for both algorithms,
//! so Winograd's figure is an *effective* rate and can pass the peak), 279 GFLOP/s being the
//! measured one-core FP32 FMA peak of the development machine, P a register-only FMA loop timed
//! in alternation with the case (the machine is shared, and its clock and load vary).
//! `CONV_BENCH_MANUAL_ONLY=1` skips criterion (quick tuning runs); `CONV_BENCH_ONLY=S` keeps
//! only the manual cases whose "layer algorithm" name contains `S` (e.g. `conv2 Winograd`).

use catdog::config::ConvDims;
use catdog::layers::conv::winograd::{self, Winograd2, Winograd4};
use catdog::layers::conv::winograd_rows;
use catdog::layers::conv::{Algo, ConvPlan, Forward, InputGrads};
use catdog::testing::{fma_peak_gflops, plan};
use criterion::{criterion_group, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;

mod common;
#[path = "../tests/common/numbers.rs"]
mod numbers;
use numbers::Rng;

const PEAK_GFLOPS: f64 = 279.0;

/// The network's three convolutions at image 128.
const LAYERS: [(&str, ConvDims); 3] = [
    (
        "conv1",
        ConvDims {
            h: 128,
            w: 128,
            cin: 3,
            cout: 32,
        },
    ),
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

/// Deterministic pseudo-random buffers, values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    Rng::new(seed).vec(n)
}

/// Everything one layer's passes need.
struct Case {
    plan: ConvPlan,
    d: ConvDims,
    x_pad: Vec<f32>,
    wp: Vec<f32>,
    wb: Vec<f32>,
    bias: Vec<f32>,
    y: Vec<f32>,
    dy_pad: Vec<f32>,
    dx: Vec<f32>,
    scratch: Vec<f32>,
}

impl Case {
    fn new(a: Algo, d: ConvDims) -> Self {
        let w = data(d.weight_len(), 3);
        let plan = plan(a, &d);
        let mut wp = vec![0.0; plan.packed_len];
        (plan.pack_forward)(&d, &w, &mut wp);
        let mut wb = vec![0.0; plan.packed_len];
        if d.cin.is_multiple_of(16) {
            (plan.pack_backward)(&d, &w, &mut wb);
        }
        Self {
            plan,
            d,
            x_pad: data(d.in_pad_len(), 1),
            wp,
            wb,
            bias: data(d.cout, 4),
            y: vec![0.0; d.out_len()],
            dy_pad: data(d.out_pad_len(), 5),
            dx: vec![0.0; d.h * d.w * d.cin],
            scratch: vec![0.0; plan.scratch_len],
        }
    }
    fn forward(&mut self) {
        (self.plan.forward)(
            &self.d,
            Forward::new(
                black_box(&self.x_pad),
                &self.wp,
                Some(&self.bias),
                &mut self.y,
                0..self.d.h,
                &mut self.scratch,
            ),
        );
    }
    fn input_grad(&mut self) {
        (self.plan.input_grad)(
            &self.d,
            InputGrads::new(
                black_box(&self.dy_pad),
                &self.wb,
                &mut self.dx,
                &mut self.scratch,
            ),
        );
    }
    fn flops(&self) -> u64 {
        2 * self.d.macs() as u64
    }
}

/// Best GFLOP/s of `f` (doing `flops` per call) and of the FMA peak loop, over 40 alternating
/// short rounds (the best round is the least disturbed by other processes).
fn measure(flops: f64, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let t = Instant::now();
    f();
    let reps = ((0.004 / t.elapsed().as_secs_f64()) as u32).max(1);
    let (mut best, mut peak) = (0.0f64, 0.0f64);
    for _ in 0..40 {
        // SAFETY: main checked AVX-512; the loop touches only registers.
        peak = peak.max(unsafe { fma_peak_gflops(100_000) });
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.max(flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    (best, peak)
}

/// The (layer name, algorithm, shape) cases: every layer direct, and each Winograd tile size
/// where it applies (F(4,3) along rows: conv1).
fn cases() -> Vec<(&'static str, Algo, ConvDims)> {
    let mut v = Vec::new();
    for (name, d) in LAYERS {
        v.push((name, Algo::Direct, d));
        if winograd::applies::<Winograd2>(&d) {
            v.push((name, Algo::Winograd2, d));
        }
        if winograd::applies::<Winograd4>(&d) {
            v.push((name, Algo::Winograd4, d));
        }
        if winograd_rows::applies(&d) {
            v.push((name, Algo::WinogradRows, d));
        }
    }
    v
}

fn manual_report() {
    // `CONV_BENCH_ONLY=conv2` (a substring of "conv2 Winograd") limits the report, for profiling.
    let only = std::env::var("CONV_BENCH_ONLY").unwrap_or_default();
    for (name, a, d) in cases() {
        if !format!("{name} {a:?}").contains(&only) {
            continue;
        }
        let mut c = Case::new(a, d);
        let fl = c.flops() as f64;
        let report = |pass: &str, (g, peak): (f64, f64)| {
            println!(
                "{name} {pass} {a:?}: {g:.1} GFLOP/s ({:.0}% of {PEAK_GFLOPS}; {:.0}% of the {peak:.0} \
                 GFLOP/s FMA peak measured alongside), {:.1} us",
                100.0 * g / PEAK_GFLOPS,
                100.0 * g / peak,
                fl / g / 1e3
            );
        };
        report("forward", measure(fl, || c.forward()));
        if name != "conv1" {
            report("input_grad", measure(fl, || c.input_grad()));
        }
    }
}

fn bench_conv(cr: &mut Criterion) {
    for (name, a, d) in cases() {
        let mut c = Case::new(a, d);
        let mut g = cr.benchmark_group(format!("{name}/{a:?}"));
        g.throughput(Throughput::Elements(c.flops()));
        g.bench_function("forward", |b| b.iter(|| c.forward()));
        if name != "conv1" {
            g.bench_function("input_grad", |b| b.iter(|| c.input_grad()));
        }
        g.finish();
    }
}

criterion_group!(benches, bench_conv);

fn main() {
    let criterion = std::env::var_os("CONV_BENCH_MANUAL_ONLY").is_none();
    common::run(
        "note: this CPU lacks AVX-512: the asm convolution benchmarks are skipped",
        manual_report,
        criterion.then_some(benches as fn()),
    );
}

//! Weight + bias gradient of the three convolutions at the default network sizes, one sample,
//! one thread, asm path, both algorithms (direct everywhere, Winograd where it applies).
//! Throughput is reported in FLOP of the direct convolution (2 per multiply-add, bias
//! excluded) for both, so Winograd's figures are *effective* FLOP/s and criterion's "elem/s"
//! reads as FLOP/s; a summary line per layer and algorithm compares the best timing with the
//! machine's measured single-core FP32 FMA peak.
//!
//! `cargo bench --bench weight_grad` (`WEIGHT_GRAD_QUICK=1` skips criterion, prints the summary)

use std::hint::black_box;
use std::time::{Duration, Instant};

use catdog::arena::Arena;
use catdog::config::{ConvDims, Hyper};
use catdog::cpu;
use catdog::layers::conv::winograd::{self, Winograd2, Winograd4};
use catdog::layers::conv::winograd_rows;
use catdog::layers::conv::{Algo, WeightGrads};
use catdog::testing::{fma_peak_loop, plan, FMA_PEAK_FLOPS_PER_ITER};
use criterion::{criterion_group, Criterion, Throughput};

#[path = "../tests/common/numbers.rs"]
mod numbers;
use numbers::{padded, Rng};

/// Measured FP32 FMA peak of one core of the development machine, GFLOP/s.
const PEAK_GFLOPS: f64 = 279.0;

/// Buffers of one layer, 64-byte aligned like the trainer's arenas, with deterministic data.
struct Layer {
    name: &'static str,
    d: ConvDims,
    x: Arena<f32>,
    dy: Arena<f32>,
    dw: Arena<f32>,
    db: Arena<f32>,
    scratch: Arena<f32>,
}

impl Layer {
    fn new(name: &'static str, d: ConvDims) -> Self {
        let mut x = Arena::zeroed(d.in_pad_len()).unwrap();
        let mut dy = Arena::zeroed(d.out_pad_len()).unwrap();
        let mut rng = Rng::new(1);
        x.all_mut()
            .copy_from_slice(&padded(&mut rng, d.h, d.w, d.cin, -0.5, 0.5));
        dy.all_mut()
            .copy_from_slice(&padded(&mut rng, d.h, d.w, d.cout, -0.5, 0.5));
        Self {
            name,
            d,
            x,
            dy,
            dw: Arena::zeroed(9 * d.cin * d.cout).unwrap(),
            db: Arena::zeroed(d.cout).unwrap(),
            scratch: Arena::zeroed(scratch_len(&d)).unwrap(),
        }
    }
    fn flops(&self) -> u64 {
        2 * self.d.macs() as u64
    }
    /// The algorithms to measure on this layer.
    fn algos(&self) -> Vec<Algo> {
        let mut v = vec![Algo::Direct];
        if winograd::applies::<Winograd2>(&self.d) {
            v.push(Algo::Winograd2);
        }
        if winograd::applies::<Winograd4>(&self.d) {
            v.push(Algo::Winograd4);
        }
        if winograd_rows::applies(&self.d) {
            v.push(Algo::WinogradRows);
        }
        v
    }
    fn run(&mut self, a: Algo) {
        let (x, dy) = (black_box(self.x.all()), black_box(self.dy.all()));
        let (dw, db) = (self.dw.all_mut(), self.db.all_mut());
        let g = WeightGrads::new(x, dy, dw, db, self.scratch.all_mut());
        (plan(a, &self.d).weight_grad)(&self.d, g);
        black_box(self.dw.all());
    }
}

/// Floats of scratch any algorithm needs on `d` (at least 1).
fn scratch_len(d: &ConvDims) -> usize {
    let most = |a| plan(a, d).scratch_len;
    let mut n = most(Algo::Direct).max(1);
    if winograd::applies::<Winograd2>(d) {
        n = n.max(most(Algo::Winograd2));
    }
    if winograd::applies::<Winograd4>(d) {
        n = n.max(most(Algo::Winograd4));
    }
    if winograd_rows::applies(d) {
        n = n.max(most(Algo::WinogradRows));
    }
    n
}

/// This thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, made as a raw Linux
/// system call since the crate has no libc binding): time spent descheduled by the other
/// processes on the shared machine does not count. Zero if the call fails.
fn cpu_time() -> Duration {
    let mut ts = [0i64; 2]; // struct timespec { tv_sec, tv_nsec }
    let ret: i64;
    // SAFETY: syscall 228 = clock_gettime(clockid 3 = CLOCK_THREAD_CPUTIME_ID, &mut ts); the
    // kernel writes 16 bytes into ts and clobbers rcx, r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inout("rax") 228i64 => ret,
            in("rdi") 3i64,
            in("rsi") ts.as_mut_ptr(),
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    if ret != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts[0] as u64, ts[1] as u32)
}

/// Best (wall, CPU) time of one `f()` over `batches` batches of calls lasting about `batch`.
fn best_of(batches: usize, batch: Duration, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let (mut wall, mut cpu) = (Duration::MAX, Duration::MAX);
    for _ in 0..batches {
        let (start, cpu0) = (Instant::now(), cpu_time());
        let mut n = 0u32;
        while start.elapsed() < batch {
            f();
            n += 1;
        }
        wall = wall.min(start.elapsed() / n);
        cpu = cpu.min((cpu_time() - cpu0) / n);
    }
    (wall, cpu)
}

/// FP32 FMA throughput of this core right now ([`fma_peak_loop`]), by wall and CPU time.
fn fma_peak_gflops() -> (f64, f64) {
    let iters = 100_000usize;
    let (wall, cpu) = best_of(20, Duration::from_millis(20), || {
        // SAFETY: AVX-512F checked in main; registers only.
        unsafe { fma_peak_loop(iters) }
    });
    let flops = (iters * FMA_PEAK_FLOPS_PER_ITER) as f64;
    (
        flops / wall.as_secs_f64() / 1e9,
        flops / cpu.as_secs_f64() / 1e9,
    )
}

fn layers() -> Vec<Layer> {
    let s = Hyper::default().shapes().unwrap();
    vec![
        Layer::new("conv1", s.conv[0]),
        Layer::new("conv2", s.conv[1]),
        Layer::new("conv3", s.conv[2]),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("weight_grad");
    for mut l in layers() {
        g.throughput(Throughput::Elements(l.flops()));
        for a in l.algos() {
            g.bench_function(format!("{} weight grad {a:?}", l.name), |b| {
                b.iter(|| l.run(a))
            });
        }
    }
    g.finish();
}

/// One line per layer: GFLOP/s from the best wall-clock time and from the best CPU time (the
/// machine is shared: CPU time leaves out time spent descheduled), against the nominal peak
/// and against an FMA-only loop measured in the same run.
fn summary() {
    let (peak_wall, peak_cpu) = fma_peak_gflops();
    println!(
        "FMA-only loop now: {peak_wall:.1} GFLOP/s wall, {peak_cpu:.1} GFLOP/s by CPU time \
         (nominal peak {PEAK_GFLOPS})"
    );
    for mut l in layers() {
        // Algorithms alternate batch by batch, so both see the same machine load.
        let algos = l.algos();
        let mut best = vec![(Duration::MAX, Duration::MAX); algos.len()];
        for _ in 0..5 {
            for (i, &a) in algos.iter().enumerate() {
                let (wall, cpu) = best_of(5, Duration::from_millis(20), || l.run(a));
                best[i] = (best[i].0.min(wall), best[i].1.min(cpu));
            }
        }
        for (&a, &(wall, cpu)) in algos.iter().zip(&best) {
            let g_wall = l.flops() as f64 / wall.as_secs_f64() / 1e9;
            let g_cpu = l.flops() as f64 / cpu.as_secs_f64() / 1e9;
            println!(
                "{} weight grad {a:?}: {g_wall:.1} GFLOP/s ({:.0}% of {PEAK_GFLOPS}); by CPU \
                 time {g_cpu:.1} GFLOP/s ({:.0}% of {PEAK_GFLOPS}, {:.0}% of the FMA-only \
                 loop) [{wall:?} per sample, {:?}]",
                l.name,
                100.0 * g_wall / PEAK_GFLOPS,
                100.0 * g_cpu / PEAK_GFLOPS,
                100.0 * g_cpu / peak_cpu,
                l.d
            );
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    if !cpu::has_avx512() {
        println!("weight_grad bench: this CPU lacks AVX-512, nothing to measure");
        return;
    }
    // WEIGHT_GRAD_QUICK=1: only the summary lines (for quick A/B runs while tuning).
    if std::env::var_os("WEIGHT_GRAD_QUICK").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}

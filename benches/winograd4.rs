//! Side-by-side timings of Winograd F(4x4, 3x3) on the network's conv2 and conv3 (image 128),
//! one thread, one sample: against F(2x2) and the direct path (forward, input gradient, weight
//! gradient), and the fused conv + pool against forward then pool. Rounds alternate the
//! contenders so that a noisy neighbour on the shared machine hits all of them; each prints the
//! best round's median. `cargo bench --bench winograd4` (`WINO4_ROUNDS=N`, default 5, for the
//! first; `WINO4_ONLY=f4x4|fused` runs one of the two).

use catdog::config::ConvDims;
use catdog::cpu::has_avx512;
use catdog::layers::conv::winograd::{self, Winograd4};
use catdog::layers::conv::{Algo, Forward, InputGrads, PoolOut, WeightGrads};
use catdog::layers::pool::{forward_asm, OutPlace};
use catdog::testing::{avx512, plan};

#[path = "../tests/common/numbers.rs"]
mod numbers;
use numbers::{dims, padded, Rng};

/// F(4x4) over all of `d`'s rows: `winograd::run` with input `x`, packed weights `u` and
/// `bias` (none for an input gradient) into `y`.
fn run4(d: &ConvDims, x: &[f32], u: &[f32], bias: Option<&[f32]>, y: &mut [f32], s: &mut [f32]) {
    winograd::run::<Winograd4>(avx512(), d, Forward::new(x, u, bias, y, 0..d.h, s))
}

/// Median of `reps` timed calls of `f` (after one warm-up call), in microseconds.
fn time_us(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = std::time::Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[reps / 2]
}

/// Side-by-side timing, one thread, one sample: F(4x4) against F(2x2) (and the direct path) on
/// conv2 and conv3, forward, input gradient and weight gradient; rounds alternate the
/// algorithms so that a noisy neighbour hits both. Prints times and ratios; asserts nothing
/// about speed.
fn speed_f4x4_vs_f2x2() {
    let rounds: usize = std::env::var("WINO4_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let reps = 15;
    let mut rng = Rng::new(19);
    for (name, d) in [
        ("conv2", dims(64, 64, 32, 64)),
        ("conv3", dims(32, 32, 64, 128)),
    ] {
        let x = padded(&mut rng, d.h, d.w, d.cin, 0.0, 1.0);
        let dy = padded(&mut rng, d.h, d.w, d.cout, -1e-3, 1e-3);
        let wts = rng.fill(d.weight_len(), -0.1, 0.1);
        let bias = rng.fill(d.cout, -0.01, 0.01);
        let bd = dims(d.h, d.w, d.cout, d.cin);
        let cin = d.cin;
        // F(4x4) buffers.
        let mut u4f = vec![0.0; winograd::packed_len::<Winograd4>(d.cin, d.cout)];
        winograd::pack::<Winograd4>(
            avx512(),
            d.cin,
            d.cout,
            |oc, ky, kx, ic| wts[((oc * 3 + ky) * 3 + kx) * cin + ic],
            &mut u4f,
        );
        let mut u4b = vec![0.0; winograd::packed_len::<Winograd4>(d.cout, d.cin)];
        winograd::pack::<Winograd4>(
            avx512(),
            d.cout,
            d.cin,
            |ic, ky, kx, oc| wts[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic],
            &mut u4b,
        );
        let s4 = winograd::scratch_len::<Winograd4>(&d)
            .max(winograd::scratch_len::<Winograd4>(&bd))
            .max(winograd::weight_grad_scratch_len::<Winograd4>(&d));
        let mut scr4 = vec![0.0; s4];
        // F(2x2) and direct buffers.
        let pk = |a: Algo| {
            let mut f = vec![0.0; plan(a, &d).packed_len];
            (plan(a, &d).pack_forward)(&d, &wts, &mut f);
            let mut b = vec![0.0; plan(a, &d).packed_len];
            (plan(a, &d).pack_backward)(&d, &wts, &mut b);
            (f, b)
        };
        let (u2f, u2b) = pk(Algo::Winograd2);
        let (udf, udb) = pk(Algo::Direct);
        let mut scr2 = vec![0.0; plan(Algo::Winograd2, &d).scratch_len];
        let mut y = vec![0.0; d.out_len()];
        let mut dx = vec![0.0; d.h * d.w * d.cin];
        let mut dw = vec![0.0; d.weight_len()];
        let mut db = vec![0.0; d.cout];
        let mut best = [[f64::MAX; 3]; 3]; // [pass][direct, f2, f4]
        for _ in 0..rounds {
            for (ai, a) in [Algo::Direct, Algo::Winograd2].into_iter().enumerate() {
                let (uf, ub) = if ai == 0 { (&udf, &udb) } else { (&u2f, &u2b) };
                let t = time_us(reps, || {
                    (plan(a, &d).forward)(
                        &d,
                        Forward::new(&x, uf, Some(&bias), &mut y, 0..d.h, &mut scr2),
                    )
                });
                best[0][ai] = best[0][ai].min(t);
                let t = time_us(reps, || {
                    (plan(a, &d).input_grad)(&d, InputGrads::new(&dy, ub, &mut dx, &mut scr2))
                });
                best[1][ai] = best[1][ai].min(t);
                let t = time_us(reps, || {
                    let g = WeightGrads::new(&x, &dy, &mut dw, &mut db, &mut scr2);
                    (plan(a, &d).weight_grad)(&d, g)
                });
                best[2][ai] = best[2][ai].min(t);
            }
            let t = time_us(reps, || run4(&d, &x, &u4f, Some(&bias), &mut y, &mut scr4));
            best[0][2] = best[0][2].min(t);
            let t = time_us(reps, || run4(&bd, &dy, &u4b, None, &mut dx, &mut scr4));
            best[1][2] = best[1][2].min(t);
            let t = time_us(reps, || {
                let g = WeightGrads::new(&x, &dy, &mut dw, &mut db, &mut scr4);
                winograd::weight_grad::<Winograd4>(avx512(), &d, g)
            });
            best[2][2] = best[2][2].min(t);
        }
        for (p, pass) in ["forward", "input gradient", "weight gradient"]
            .iter()
            .enumerate()
        {
            let [td, t2, t4] = best[p];
            println!(
                "{name} {pass:15}: direct {td:7.1} us, F(2x2) {t2:7.1} us, F(4x4) {t4:7.1} us; \
                 F(2x2)/F(4x4) time = {:.2}x, direct/F(4x4) = {:.2}x",
                t2 / t4,
                td / t4
            );
        }
    }
}

/// Side-by-side timing, one thread, one sample, of conv2 + pool2 and conv3 + pool3 forward as
/// the trainer runs them (bands of the plan's height): F(4x4) into a band buffer then the pool
/// kernels, against the fused `forward_pool`; with codes (training) and without (inference);
/// with the pooled output in cache ("warm") and evicted before each run ("cold": in the trainer
/// it is the next layer's input slot, last touched a batch earlier). Rounds alternate; prints
/// the best round's median of each. Asserts nothing about speed.
fn speed_fused_pool() {
    let (rounds, reps) = (5, 21);
    let mut rng = Rng::new(31);
    let mut evict = vec![0u8; 8 << 20];
    for (name, d) in [
        ("conv2", dims(64, 64, 32, 64)),
        ("conv3", dims(32, 32, 64, 128)),
    ] {
        let plan = plan(Algo::Winograd4, &d);
        let fused = plan.forward_pool.expect("F(4x4) has a fused conv + pool");
        let mut x = padded(&mut rng, d.h, d.w, d.cin, -0.5, 1.0);
        x.iter_mut().for_each(|v| *v = v.max(0.0));
        let wts = rng.fill(d.weight_len(), -0.1, 0.1);
        let bias = rng.fill(d.cout, -0.01, 0.01);
        let mut wp = vec![0.0; plan.packed_len];
        (plan.pack_forward)(&d, &wts, &mut wp);
        let mut scratch = vec![0.0; plan.scratch_len];
        let p = d.pool();
        let place = OutPlace::padded(&p);
        let mut out = vec![0.0; (d.h / 2 + 2) * (d.w / 2 + 2) * d.cout];
        let mut am = vec![0u8; p.out_len()];
        let mut y = vec![0.0; plan.band * d.w * d.cout];
        // [cold][codes, no codes][forward + pool, fused]
        let mut best = [[[f64::MAX; 2]; 2]; 2];
        for _ in 0..rounds {
            for (k, best) in best.iter_mut().flatten().flatten().enumerate() {
                let (cold, codes, fuse) = (k >= 4, k % 4 < 2, k % 2 == 1);
                let mut run = || {
                    for y0 in (0..d.h).step_by(plan.band) {
                        let rows = y0..(y0 + plan.band).min(d.h);
                        let mut pool = PoolOut {
                            out: &mut out,
                            place,
                            argmax: codes.then_some(&mut am[..]),
                        };
                        if fuse {
                            fused(&d, &x, &wp, &bias, rows, &mut scratch, &mut pool);
                        } else {
                            let r = rows.clone();
                            (plan.forward)(
                                &d,
                                Forward::new(&x, &wp, Some(&bias), &mut y, r, &mut scratch),
                            );
                            let pooled = rows.start / 2..rows.end / 2;
                            forward_asm(avx512(), &p, &y, &mut pool, pooled);
                        }
                    }
                };
                run();
                let mut t: Vec<f64> = (0..reps)
                    .map(|i| {
                        if cold {
                            evict.iter_mut().step_by(64).for_each(|b| *b = i as u8);
                        }
                        let s = std::time::Instant::now();
                        run();
                        s.elapsed().as_secs_f64() * 1e6
                    })
                    .collect();
                t.sort_by(|a, b| a.partial_cmp(b).unwrap());
                *best = best.min(t[reps / 2]);
            }
        }
        for (cold, b) in ["warm", "cold"].iter().zip(best) {
            for (codes, [sep, fus]) in ["codes", "no codes"].iter().zip(b) {
                println!(
                    "{name} {cold} {codes}: forward + pool {sep:.1} us, fused {fus:.1} us \
                     ({:.3}x)",
                    sep / fus
                );
            }
        }
    }
}

fn main() {
    if !has_avx512() {
        println!("note: this CPU lacks AVX-512: the Winograd F(4x4) kernels cannot be timed here");
        return;
    }
    let only = std::env::var("WINO4_ONLY").unwrap_or_default();
    if only.is_empty() || only == "f4x4" {
        speed_f4x4_vs_f2x2();
    }
    if only.is_empty() || only == "fused" {
        speed_fused_pool();
    }
}

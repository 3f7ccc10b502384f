//! Winograd F(4,3) along rows (`catdog::layers::conv::winograd_rows`, conv1's forward): its
//! accuracy against an f64 reference beside the direct kernels' on the network's conv1 and on
//! 1 to 3 input channels with odd and even tile counts; bands giving the bits of the whole
//! layer; and a check that a wrong transform constant would be caught by the tolerance.
//! (Its fused pool against forward-then-pool, bit for bit, is in `tests/conv.rs`;
//! against the scalar reference on many shapes, `asm_matches_reference_*` there too.)
//! `cargo test --release --test winograd_rows`.

use catdog::config::ConvDims;
use catdog::layers::conv::winograd_rows::{self, BAND_ROWS};
use catdog::layers::conv::{Algo, ConvPlan, Forward, WeightGrads};
use catdog::testing::{avx512, plan};

#[path = "common/numbers.rs"]
mod numbers;
use numbers::{avx512_rng, avx512_test_rng, dims, max_err, Rng};

/// Largest error of the tests' tolerance, relative to the largest |value| of the result.
/// Measured (`accuracy_against_f64`, 2 Dec 2026): at most 5.2e-7 for F(4,3) along rows
/// (conv1: 4.4e-7), 2.3e-7 for the direct kernels; one constant of `G` off by 1e-4: 3.4e-5.
const TOL: f64 = 2e-6;

/// A conv1-like input: pixels in [0, 1) (as the loader makes them), zero border.
fn image(rng: &mut Rng, d: &ConvDims) -> Vec<f32> {
    numbers::padded(rng, d.h, d.w, d.cin, 0.0, 1.0)
}

/// `relu(conv(x, w) + b)` in f64 (weights `[cout][3][3][cin]`).
fn forward64(d: &ConvDims, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
    let (h, wd, ci, co) = (d.h, d.w, d.cin, d.cout);
    let mut y = vec![0.0; h * wd * co];
    for r in 0..h {
        for c in 0..wd {
            for o in 0..co {
                let mut s = b[o] as f64;
                for ky in 0..3 {
                    for kx in 0..3 {
                        for i in 0..ci {
                            let xv = x[((r + ky) * (wd + 2) + c + kx) * ci + i] as f64;
                            s += xv * w[((o * 3 + ky) * 3 + kx) * ci + i] as f64;
                        }
                    }
                }
                y[(r * wd + c) * co + o] = s.max(0.0);
            }
        }
    }
    y
}

/// A plan's forward over the whole layer (its own packing and scratch).
fn run(algo: Algo, d: &ConvDims, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let plan = plan(algo, d);
    let mut up = vec![0.0; plan.packed_len];
    (plan.pack_forward)(d, w, &mut up);
    run_packed(&plan, d, x, &up, b, d.h)
}

/// `plan.forward` with packed weights `up`, in bands of `band` rows.
fn run_packed(
    plan: &ConvPlan,
    d: &ConvDims,
    x: &[f32],
    up: &[f32],
    b: &[f32],
    band: usize,
) -> Vec<f32> {
    let mut scratch = vec![f32::NAN; plan.scratch_len];
    let mut y = vec![f32::NAN; d.out_len()];
    let row = d.w * d.cout;
    for y0 in (0..d.h).step_by(band) {
        let rows = y0..(y0 + band).min(d.h);
        let out = &mut y[y0 * row..rows.end * row];
        (plan.forward)(d, Forward::new(x, up, Some(b), out, rows, &mut scratch));
    }
    y
}

/// Conv1 of the network (128 x 128 x 3 -> 32) with the trainer's initial weight scale, and
/// small shapes with 1 to 3 input channels, tile counts odd and even, one or several 32-channel
/// blocks: F(4,3) along rows within `TOL` of f64, printed beside the direct kernels' error.
#[test]
fn accuracy_against_f64() {
    let mut rng = avx512_test_rng!("accuracy_against_f64", 0x5eed_0001);
    for (h, w, cin, cout) in [
        (128, 128, 3, 32),
        (2, 4, 1, 32),
        (4, 12, 2, 32),
        (6, 20, 3, 64),
        (10, 8, 3, 96),
        (18, 36, 3, 32),
    ] {
        let d = ConvDims { h, w, cin, cout };
        assert!(winograd_rows::applies(&d), "{d:?}");
        let x = image(&mut rng, &d);
        let lim = (6.0 / (9.0 * cin as f32)).sqrt();
        let wts = rng.fill(d.weight_len(), -lim, lim);
        let bias = rng.fill(cout, -0.1, 0.1);
        let want = forward64(&d, &x, &wts, &bias);
        assert!(want.iter().any(|&v| v == 0.0) && want.iter().any(|&v| v > 0.0));
        let (rows_abs, rows_rel) = max_err(&run(Algo::WinogradRows, &d, &x, &wts, &bias), &want);
        let (_, direct_rel) = max_err(&run(Algo::Direct, &d, &x, &wts, &bias), &want);
        println!(
            "{d:?}: F(4,3) along rows {rows_abs:.2e} ({rows_rel:.2e} of max), \
             direct {direct_rel:.2e} of max"
        );
        assert!(
            rows_rel <= TOL,
            "{d:?}: error {rows_rel:.2e} of max > {TOL:e}"
        );
    }
}

/// Bands of 2, 4, `BAND_ROWS` and more rows, and the whole layer at once, give the same bits:
/// each band transforms the input rows it reads the same way.
#[test]
fn bands_give_the_bits_of_the_whole_layer() {
    let mut rng = avx512_test_rng!("bands_give_the_bits_of_the_whole_layer", 0x5eed_0002);
    let d = dims(22, 12, 3, 64);
    let plan = plan(Algo::WinogradRows, &d);
    assert_eq!(plan.scratch_len, winograd_rows::scratch_len(&d));
    let x = image(&mut rng, &d);
    let wts = rng.fill(d.weight_len(), -0.5, 0.5);
    let bias = rng.fill(d.cout, -0.1, 0.1);
    let mut up = vec![0.0; plan.packed_len];
    (plan.pack_forward)(&d, &wts, &mut up);
    let whole = run_packed(&plan, &d, &x, &up, &bias, d.h);
    assert!(whole.iter().all(|v| v.is_finite()));
    for band in [2, 4, BAND_ROWS, 10, 12] {
        let banded = run_packed(&plan, &d, &x, &up, &bias, band);
        let differ = whole
            .iter()
            .zip(&banded)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(differ, None, "band {band}");
    }
}

/// The tolerance is tight enough to matter: packed weights with one of `G`'s constants off by
/// 1e-4 relative (position 3's, `1/24` of `a`) fail it on conv1.
#[test]
fn a_wrong_transform_constant_is_caught() {
    let mut rng = avx512_test_rng!("a_wrong_transform_constant_is_caught", 0x5eed_0003);
    let d = dims(16, 16, 3, 32);
    let x = image(&mut rng, &d);
    let wts = rng.fill(d.weight_len(), -0.47, 0.47);
    let bias = rng.fill(d.cout, -0.1, 0.1);
    let want = forward64(&d, &x, &wts, &bias);
    let plan = plan(Algo::WinogradRows, &d);
    let mut up = vec![0.0; plan.packed_len];
    (plan.pack_forward)(&d, &wts, &mut up);
    let (_, good) = max_err(&run_packed(&plan, &d, &x, &up, &bias, d.h), &want);
    assert!(good <= TOL, "exact constants: {good:.2e}");
    // Position 3 of step (ky, c) holds (a + 2b + 4c)/24 for filter row (a, b, c): add 1e-4 of
    // a/24 to it, for every filter and step (packed layout: step (ky, c) at (3 ky + c) * 192,
    // position p at + 32 p, then the 32 output channels).
    for ky in 0..3 {
        for c in 0..3 {
            for o in 0..32 {
                let a = wts[((o * 3 + ky) * 3) * 3 + c];
                up[(ky * 3 + c) * 192 + 3 * 32 + o] += 1e-4 * a / 24.0;
            }
        }
    }
    let (_, bad) = max_err(&run_packed(&plan, &d, &x, &up, &bias, d.h), &want);
    println!("exact G: {good:.2e} of max; one constant off by 1e-4: {bad:.2e}");
    assert!(bad > TOL, "a wrong constant went unnoticed: {bad:.2e}");
}

/// The weight gradient straight from the pooled gradient and the argmax codes
/// (`ConvPlan::weight_grad_pooled`, conv1's backward) gives the bits of the pool's backward
/// pass then `weight_grad`, on codes 0..4 (4: the window was ReLU-blocked, no gradient),
/// odd and even tile counts, one and several bands, 1 to 3 input channels.
#[test]
fn pooled_weight_gradient_gives_the_bits_of_pool_backward_then_weight_gradient() {
    use catdog::config::PoolDims;
    use catdog::layers::pool::backward_asm;
    let mut rng = avx512_test_rng!("pooled_weight_gradient", 0x5eed_0004);
    for (h, w, cin, cout) in [
        (128, 128, 3, 32),
        (6, 12, 3, 32),
        (18, 20, 2, 64),
        (2, 8, 1, 32),
    ] {
        let d = ConvDims { h, w, cin, cout };
        let plan = plan(Algo::WinogradRows, &d);
        let fused = plan.weight_grad_pooled.expect("a fused weight gradient");
        let x = image(&mut rng, &d);
        let p = PoolDims { h, w, c: cout };
        let dpool = rng.fill(p.out_len(), -1.0, 1.0);
        let codes: Vec<u8> = (0..p.out_len())
            .map(|_| (rng.uniform(0.0, 5.0) as u8).min(4))
            .collect();
        for code in 0..5u8 {
            assert!(codes.contains(&code), "{d:?}: code {code} never drawn");
        }
        let mut dy_pad = vec![0.0; (h + 2) * (w + 2) * cout];
        backward_asm(avx512(), &p, &dpool, &codes, &mut dy_pad);
        let mut scratch = vec![f32::NAN; plan.scratch_len];
        let (mut dw_a, mut db_a) = (vec![f32::NAN; d.weight_len()], vec![f32::NAN; cout]);
        let g = WeightGrads::new(&x, &dy_pad, &mut dw_a, &mut db_a, &mut scratch);
        (plan.weight_grad)(&d, g);
        let (mut dw_b, mut db_b) = (vec![f32::NAN; d.weight_len()], vec![f32::NAN; cout]);
        fused(&d, &x, &dpool, &codes, &mut dw_b, &mut db_b, &mut scratch);
        assert!(dw_a.iter().all(|v| v.is_finite()) && dw_a.iter().any(|&v| v != 0.0));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dw_a), bits(&dw_b), "{d:?}: weight gradient");
        assert_eq!(bits(&db_a), bits(&db_b), "{d:?}: bias gradient");
    }
}

//! Weight and bias gradients of the 3x3 convolution: asm against the scalar reference, the
//! reference against hand-computed values and against central differences of a loss built on a
//! naive forward convolution written here, and the KC -> original layout unpacking.
//!
//! Run with `cargo test --release --test weight_grad`.

use approx::assert_relative_eq;
use catdog::config::ConvDims;
use catdog::config::Kernels;
use catdog::layers::conv::winograd::{self, Winograd2};
use catdog::layers::conv::{unpack_weight_grad, Algo, ConvPlan, WeightGrads};
use catdog::reference::weight_grad as reference;
use catdog::testing::{auto_plan, avx512_or_skip, plan};

#[path = "common/numbers.rs"]
mod numbers;
use numbers::{avx512_rng, avx512_test_rng, dims, x_and_dy, Rng};

/// A padded `(h+2) x (w+2) x c` HWC tensor: interior uniform in [-1, 1), zero border.
fn padded(rng: &mut Rng, h: usize, w: usize, c: usize) -> Vec<f32> {
    numbers::padded(rng, h, w, c, -1.0, 1.0)
}

/// The reference weight and bias gradients of `x` and `dy`, then those of their absolute values
/// (the magnitudes the tolerance scales with): `[dw, db, dw_mag, db_mag]`.
fn reference_and_magnitude(d: &ConvDims, x: &[f32], dy: &[f32]) -> [Vec<f32>; 4] {
    let (dw_ref, db_ref) = run(Kernels::Reference, d, x, dy);
    let xa: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let dya: Vec<f32> = dy.iter().map(|v| v.abs()).collect();
    let (dw_mag, db_mag) = run(Kernels::Reference, d, &xa, &dya);
    [dw_ref, db_ref, dw_mag, db_mag]
}

/// Each shape of `shapes` with its data drawn from `rng` (`[x, dy]`, [`x_and_dy`]) and the
/// reference's `[dw, db, dw_mag, db_mag]` ([`reference_and_magnitude`]).
fn with_reference<'r>(
    rng: &'r mut Rng,
    shapes: &'r [(usize, usize, usize, usize)],
) -> impl Iterator<Item = (ConvDims, [Vec<f32>; 2], [Vec<f32>; 4])> + 'r {
    shapes.iter().map(move |&(h, w, cin, cout)| {
        let d = dims(h, w, cin, cout);
        let (x, dy) = x_and_dy(rng, &d);
        let reference = reference_and_magnitude(&d, &x, &dy);
        (d, [x, dy], reference)
    })
}

/// A second call of `plan`'s weight gradient overwrites its outputs, bit for bit (`what`
/// prefixes the message).
fn assert_overwrites(plan: &ConvPlan, d: &ConvDims, x: &[f32], dy: &[f32], what: &str) {
    let (mut dw, mut db) = (vec![0.0; 9 * d.cin * d.cout], vec![0.0; d.cout]);
    let mut scratch = vec![0.0; plan.scratch_len];
    (plan.weight_grad)(d, WeightGrads::new(x, dy, &mut dw, &mut db, &mut scratch));
    let (first_dw, first_db) = (dw.clone(), db.clone());
    (plan.weight_grad)(d, WeightGrads::new(x, dy, &mut dw, &mut db, &mut scratch));
    assert_eq!(
        dw, first_dw,
        "{what}a second call must overwrite, bit for bit"
    );
    assert_eq!(db, first_db);
}

/// Each of `grad` equals the central difference (step `eps`) of `loss` in that element of
/// `params`, to 1e-4 absolute or relative.
fn assert_central_differences(
    grad: &[f32],
    params: &[f64],
    eps: f64,
    loss: impl Fn(&[f64]) -> f64,
) {
    let mut p = params.to_vec();
    for i in 0..params.len() {
        p[i] = params[i] + eps;
        let up = loss(&p);
        p[i] = params[i] - eps;
        let down = loss(&p);
        p[i] = params[i];
        let fd = (up - down) / (2.0 * eps);
        assert_relative_eq!(grad[i] as f64, fd, epsilon = 1e-4, max_relative = 1e-4);
    }
}

/// A copy of `v` starting one float into a fresh allocation: an unaligned slice.
fn unaligned(v: &[f32]) -> Vec<f32> {
    let mut s = vec![0.0; v.len() + 1];
    s[1..].copy_from_slice(v);
    s
}

/// Runs the plan's `weight_grad` on `path` with unaligned input slices, output slices that sit one
/// float into a sentinel-filled buffer, and garbage in the outputs beforehand. Checks that
/// nothing outside the outputs was written, and returns `(dw_kc, db)`.
fn run(path: Kernels, d: &ConvDims, x_pad: &[f32], dy_pad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    run_algo(path, None, d, x_pad, dy_pad)
}

/// [`run`] with an explicit algorithm (`Some`: asm path, that algorithm; `None`: `path`'s
/// default). The scratch is unaligned too, and filled with garbage.
fn run_algo(
    path: Kernels,
    a: Option<Algo>,
    d: &ConvDims,
    x_pad: &[f32],
    dy_pad: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    const SENTINEL: f32 = -12345.0;
    let nw = 9 * d.cin * d.cout;
    let xs = unaligned(x_pad);
    let dys = unaligned(dy_pad);
    let mut dw = vec![SENTINEL; nw + 2];
    let mut db = vec![SENTINEL; d.cout + 2];
    // Garbage that must be overwritten, not accumulated into.
    dw[1..=nw].fill(f32::NAN);
    db[1..=d.cout].fill(1e6);
    let plan = match a {
        None => auto_plan(path, d),
        Some(a) => plan(a, d),
    };
    let mut scratch = vec![f32::NAN; plan.scratch_len + 1];
    let (dw_out, db_out) = (&mut dw[1..=nw], &mut db[1..=d.cout]);
    let g = WeightGrads::new(&xs[1..], &dys[1..], dw_out, db_out, &mut scratch[1..]);
    (plan.weight_grad)(d, g);
    assert_eq!(dw[0], SENTINEL, "{d:?}: wrote before dw_kc");
    assert_eq!(dw[nw + 1], SENTINEL, "{d:?}: wrote after dw_kc");
    assert_eq!(db[0], SENTINEL, "{d:?}: wrote before db");
    assert_eq!(db[d.cout + 1], SENTINEL, "{d:?}: wrote after db");
    (dw[1..=nw].to_vec(), db[1..=d.cout].to_vec())
}

/// `|a - b| <= 1e-5 * mag` per element (or relative 1e-5), where `mag` is the same sum taken
/// over absolute values: the size of the rounding error a float sum of those terms can have.
fn assert_close(what: &str, d: &ConvDims, got: &[f32], want: &[f32], mag: &[f32]) {
    assert_close_tol(what, d, got, want, mag, 1e-5);
}

/// [`assert_close`] with tolerance `tol` instead of 1e-5.
#[track_caller]
fn assert_close_tol(what: &str, d: &ConvDims, got: &[f32], want: &[f32], mag: &[f32], tol: f32) {
    let what = format!("{what} {d:?} (asm vs reference)");
    numbers::assert_close(&what, got, want, |i| tol * mag[i] + 1e-30, tol);
}

/// Shapes: conv1's cin = 3 and multiples of 16; odd sizes; channel tails of every width (16,
/// 32, 48 beyond a 64 multiple); blocks of whole rows (several blocks when h*w > 128) and of
/// parts of a row (w > 128).
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 3, 16),
    (1, 1, 16, 16),
    (3, 5, 3, 32),
    (3, 5, 3, 48),
    (7, 9, 3, 16),
    (7, 9, 16, 16),
    (7, 9, 16, 32),
    (7, 9, 32, 48),
    (13, 11, 32, 64),
    (13, 11, 16, 80),
    (13, 11, 48, 112),
    (5, 7, 64, 96),
    (32, 32, 3, 32),
    (32, 32, 32, 64),
    (32, 32, 64, 128),
    (17, 9, 16, 1024),
    (2, 150, 3, 32),
    (3, 300, 16, 16),
    (64, 1, 16, 16),
    // F(4,3) along rows (the asm default for 1 to 3 input channels, widths in 4s, even
    // heights, 32-channel blocks): odd and even tile counts, one and several 8-row bands.
    (4, 12, 3, 32),
    (6, 8, 1, 64),
    (10, 20, 2, 32),
    (18, 16, 3, 96),
];

#[test]
fn asm_matches_reference() {
    let mut rng = avx512_test_rng!("asm_matches_reference", 1);
    for (d, [x, dy], [dw_ref, db_ref, dw_mag, db_mag]) in with_reference(&mut rng, SHAPES) {
        let (dw_asm, db_asm) = run(Kernels::Fast, &d, &x, &dy);
        assert_close("dw", &d, &dw_asm, &dw_ref, &dw_mag);
        assert_close("db", &d, &db_asm, &db_ref, &db_mag);
        // The gradient is not trivially zero: the interior weights see every pixel.
        assert!(dw_ref.iter().any(|&v| v != 0.0) && db_ref.iter().any(|&v| v != 0.0));
    }
}

/// The portable kernels' weight gradient (banded GEMMs, conv1's as the transposed product)
/// against the reference on every shape above: odd sides, 1 to 3 input channels, wide rows.
#[test]
fn portable_matches_reference() {
    let mut rng = Rng::new(11);
    for (d, [x, dy], [dw_ref, db_ref, dw_mag, db_mag]) in with_reference(&mut rng, SHAPES) {
        assert_eq!(auto_plan(Kernels::Portable, &d).algo, Algo::Gemm);
        let (dw, db) = run(Kernels::Portable, &d, &x, &dy);
        assert_close("portable dw", &d, &dw, &dw_ref, &dw_mag);
        assert_close("portable db", &d, &db, &db_ref, &db_mag);
    }
}

#[test]
fn asm_overwrites_and_is_deterministic() {
    let mut rng = avx512_test_rng!("asm_overwrites_and_is_deterministic", 2);
    let d = dims(13, 11, 16, 48);
    let (x, dy) = x_and_dy(&mut rng, &d);
    assert_overwrites(&auto_plan(Kernels::Fast, &d), &d, &x, &dy, "");
    // The same for Winograd (an even shape), whose dU accumulates across bands in scratch.
    let d = dims(12, 6, 32, 48);
    let (x, dy) = x_and_dy(&mut rng, &d);
    let plan = auto_plan(Kernels::Fast, &d);
    assert_eq!(plan.algo, Algo::Winograd2);
    assert_overwrites(&plan, &d, &x, &dy, "Winograd: ");
}

/// Even shapes (whole 2x2 tiles, channels in 16s) where the Winograd weight gradient applies:
/// one tile, one tile row or column, several bands (the network's conv2 and conv3, and tall
/// layers), every slab kernel (64-channel slabs and 16 / 32 / 48 tails).
const WINOGRAD_SHAPES: &[(usize, usize, usize, usize)] = &[
    (2, 2, 16, 16),
    (2, 8, 16, 32),
    (6, 2, 32, 48),
    (4, 10, 48, 64),
    (12, 6, 64, 16),
    (12, 6, 32, 48),
    (30, 12, 16, 80),
    (8, 8, 128, 112),
    (64, 64, 32, 64),
    (32, 32, 64, 128),
];

/// The magnitude Winograd's rounding error scales with, per `(ic, oc)`: the transforms mix the
/// 9 taps (a tap seen by few pixels is computed from values as large as the others), so each
/// element's magnitude is the sum of the 9 taps' magnitudes of its `(ic, oc)`.
fn window_magnitude(d: &ConvDims, mag: &[f32]) -> Vec<f32> {
    let plane = d.cin * d.cout;
    let mut sum = vec![0.0; plane];
    for tap in 0..9 {
        for (s, &m) in sum.iter_mut().zip(&mag[tap * plane..][..plane]) {
            *s += m;
        }
    }
    (0..9 * plane).map(|i| sum[i % plane]).collect()
}

/// Both asm algorithms against the reference on the Winograd shapes. Winograd's transforms add
/// and subtract up to 16 terms before and after the products, so its error is compared with
/// [`window_magnitude`] (same tolerance, 1e-5; the bias is a plain sum either way).
#[test]
fn both_algorithms_match_reference() {
    let mut rng = avx512_test_rng!("both_algorithms_match_reference", 7);
    for (d, [x, dy], [dw_ref, db_ref, dw_mag, db_mag]) in with_reference(&mut rng, WINOGRAD_SHAPES)
    {
        assert!(winograd::applies::<Winograd2>(&d), "{d:?}");
        let win_mag = window_magnitude(&d, &dw_mag);
        for (a, mag) in [(Algo::Direct, &dw_mag), (Algo::Winograd2, &win_mag)] {
            let (dw, db) = run_algo(Kernels::Fast, Some(a), &d, &x, &dy);
            let what = format!("{a:?}");
            assert_close_tol(&format!("dw {what}"), &d, &dw, &dw_ref, mag, 1e-5);
            assert_close_tol(&format!("db {what}"), &d, &db, &db_ref, &db_mag, 1e-5);
            let worst = dw
                .iter()
                .zip(&dw_ref)
                .zip(mag.iter())
                .map(|((g, r), m)| (g - r).abs() / m)
                .fold(0.0f32, f32::max);
            println!("{what} {d:?}: worst |error| / magnitude {worst:.2e}");
        }
    }
}

/// The asm path ignores the zero border of `dy_pad` and reads only its interior: garbage there
/// must not change the result.
#[test]
fn asm_reads_only_the_interior_of_dy() {
    let mut rng = avx512_test_rng!("asm_reads_only_the_interior_of_dy", 3);
    // Odd height: the direct algorithm; even: Winograd.
    for (h, w, cin, cout) in [(5, 6, 16, 32), (4, 6, 16, 32)] {
        interior_only(&mut rng, dims(h, w, cin, cout));
    }
}

/// One shape of [`asm_reads_only_the_interior_of_dy`].
fn interior_only(rng: &mut Rng, d: ConvDims) {
    let (h, w, cin, cout) = (d.h, d.w, d.cin, d.cout);
    let x = padded(rng, h, w, cin);
    let dy = padded(rng, h, w, cout);
    let mut dy_dirty = dy.clone();
    for y in 0..h + 2 {
        for x in 0..w + 2 {
            if y == 0 || x == 0 || y == h + 1 || x == w + 1 {
                dy_dirty[(y * (w + 2) + x) * cout..][..cout].fill(1e9);
            }
        }
    }
    let clean = run(Kernels::Fast, &d, &x, &dy);
    let dirty = run(Kernels::Fast, &d, &x, &dy_dirty);
    assert_eq!(clean, dirty, "{d:?}");
}

/// Shapes the kernels do not cover (never produced by the network config) still give the
/// reference's answer on the asm path.
#[test]
fn unsupported_shapes_fall_back_to_the_reference() {
    let mut rng = Rng::new(4);
    let d = dims(4, 3, 5, 16);
    let (x, dy) = x_and_dy(&mut rng, &d);
    let (dw_asm, db_asm) = run(Kernels::Fast, &d, &x, &dy);
    let (dw_ref, db_ref) = run(Kernels::Reference, &d, &x, &dy);
    assert_eq!(dw_asm, dw_ref);
    assert_eq!(db_asm, db_ref);
}

/// A case small enough to do by hand. h = 1, w = 2, one channel in and out: the padded input
/// row 1 is [0, 2, 3, 0] (rows 0 and 2 are zero), dy = [5, 7]. Only ky = 1 sees data:
/// kx = 0: 0*5 + 2*7 = 14; kx = 1: 2*5 + 3*7 = 31; kx = 2: 3*5 + 0*7 = 15. db = 5 + 7 = 12.
#[test]
fn reference_matches_a_hand_computed_case() {
    let d = dims(1, 2, 1, 1);
    #[rustfmt::skip]
    let x_pad = [
        0.0, 0.0, 0.0, 0.0,
        0.0, 2.0, 3.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    #[rustfmt::skip]
    let dy_pad = [
        0.0, 0.0, 0.0, 0.0,
        0.0, 5.0, 7.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    let mut dw = [f32::NAN; 9];
    let mut db = [f32::NAN; 1];
    reference::weight_grad(&d, &x_pad, &dy_pad, &mut dw, &mut db);
    assert_eq!(dw, [0.0, 0.0, 0.0, 14.0, 31.0, 15.0, 0.0, 0.0, 0.0]);
    assert_eq!(db, [12.0]);

    // Channel order: one pixel, x = [2, 3] (cin 2), dy = [5, 7] (cout 2). Only the centre tap
    // (ky, kx) = (1, 1) sees data: KC [ic][oc] = x[ic] * dy[oc] = [[10, 14], [15, 21]];
    // the original layout [oc][ky][kx][ic] has at (oc, 1, 1, ic): oc 0 -> [10, 15], oc 1 ->
    // [14, 21].
    let d = dims(1, 1, 2, 2);
    let mut x_pad = [0.0; 18];
    let mut dy_pad = [0.0; 18];
    x_pad[8..10].copy_from_slice(&[2.0, 3.0]); // pixel (1, 1) of the 3x3 padded grid
    dy_pad[8..10].copy_from_slice(&[5.0, 7.0]);
    let mut dw = [f32::NAN; 36];
    let mut db = [f32::NAN; 2];
    reference::weight_grad(&d, &x_pad, &dy_pad, &mut dw, &mut db);
    let mut want = [0.0; 36];
    want[16..20].copy_from_slice(&[10.0, 14.0, 15.0, 21.0]); // (ky*3+kx = 4) * cin * cout = 16
    assert_eq!(dw, want);
    assert_eq!(db, [5.0, 7.0]);
    let mut w = [f32::NAN; 36];
    unpack_weight_grad(&d, &dw, &mut w);
    let mut want_w = [0.0; 36];
    want_w[8..10].copy_from_slice(&[10.0, 15.0]); // oc 0, tap 4: (0*9 + 4) * cin = 8
    want_w[26..28].copy_from_slice(&[14.0, 21.0]); // oc 1, tap 4: (1*9 + 4) * cin = 26
    assert_eq!(w, want_w);
}

/// KC layout `[3][3][cin][cout]` from the original layout `[cout][3][3][cin]`, written
/// independently of `unpack_weight_grad`.
fn pack_kc(d: &ConvDims, w: &[f32]) -> Vec<f32> {
    let mut kc = vec![0.0; w.len()];
    for oc in 0..d.cout {
        for ky in 0..3 {
            for kx in 0..3 {
                for ic in 0..d.cin {
                    kc[((ky * 3 + kx) * d.cin + ic) * d.cout + oc] =
                        w[((oc * 3 + ky) * 3 + kx) * d.cin + ic];
                }
            }
        }
    }
    kc
}

#[test]
fn unpack_weight_grad_round_trips() {
    let mut rng = Rng::new(5);
    for &(cin, cout) in &[(3, 16), (16, 32), (5, 7)] {
        let d = dims(1, 1, cin, cout);
        let w: Vec<f32> = (0..9 * cin * cout).map(|_| rng.f()).collect();
        let kc = pack_kc(&d, &w);
        assert_ne!(kc, w, "the two layouts differ for cin {cin}, cout {cout}");
        let mut back = vec![f32::NAN; w.len()];
        unpack_weight_grad(&d, &kc, &mut back);
        assert_eq!(back, w);
    }
    // One element by its indices: KC (ky 2, kx 1, ic 4, oc 9) -> original (oc 9, 2, 1, ic 4).
    let d = dims(1, 1, 16, 32);
    let mut kc = vec![0.0; 9 * 16 * 32];
    kc[((2 * 3 + 1) * 16 + 4) * 32 + 9] = 1.0;
    let mut w = vec![0.0; kc.len()];
    unpack_weight_grad(&d, &kc, &mut w);
    assert_eq!(w[((9 * 3 + 2) * 3 + 1) * 16 + 4], 1.0);
    assert_eq!(w.iter().sum::<f32>(), 1.0);
}

/// Naive pre-activation forward convolution in f64: `out[y][x][oc] = b[oc] + sum over the
/// window of x_pad[y+ky][x+kx][ic] * w[oc][ky][kx][ic]` (original weight layout).
fn forward_f64(d: &ConvDims, x_pad: &[f32], w: &[f64], b: &[f64]) -> Vec<f64> {
    let wp = d.w + 2;
    let mut out = vec![0.0; d.h * d.w * d.cout];
    for y in 0..d.h {
        for x in 0..d.w {
            for oc in 0..d.cout {
                let mut s = b[oc];
                for ky in 0..3 {
                    for kx in 0..3 {
                        for ic in 0..d.cin {
                            s += x_pad[((y + ky) * wp + x + kx) * d.cin + ic] as f64
                                * w[((oc * 3 + ky) * 3 + kx) * d.cin + ic];
                        }
                    }
                }
                out[(y * d.w + x) * d.cout + oc] = s;
            }
        }
    }
    out
}

/// `L = sum conv(x, w, b) * r` elementwise; its gradient with respect to the conv output is
/// `r`, so `weight_grad(dy = r)` must equal central differences of `L` in `w` and `b`.
#[test]
fn gradients_match_central_differences() {
    let mut rng = Rng::new(6);
    // (4, 4, 16, 32) is even: the asm path's default there is Winograd, checked with Direct;
    // (2, 8, 3, 32): F(4,3) along rows, checked with Direct.
    for &(h, w, cin, cout) in &[
        (3, 4, 3, 16),
        (4, 5, 16, 16),
        (2, 3, 16, 32),
        (4, 4, 16, 32),
        (2, 8, 3, 32),
    ] {
        let d = dims(h, w, cin, cout);
        let x_pad = padded(&mut rng, h, w, cin);
        let r_pad = padded(&mut rng, h, w, cout);
        let r = |y: usize, x: usize, oc: usize| r_pad[((y + 1) * (w + 2) + x + 1) * cout + oc];
        let wts: Vec<f64> = (0..d.weight_len()).map(|_| rng.f() as f64).collect();
        let bias: Vec<f64> = (0..cout).map(|_| rng.f() as f64).collect();
        let loss = |wts: &[f64], bias: &[f64]| -> f64 {
            let out = forward_f64(&d, &x_pad, wts, bias);
            let mut l = 0.0;
            for y in 0..h {
                for x in 0..w {
                    for oc in 0..cout {
                        l += out[(y * w + x) * cout + oc] * r(y, x, oc) as f64;
                    }
                }
            }
            l
        };
        let eps = 1e-2;
        let mut runs = vec![(Kernels::Reference, None)];
        if avx512_or_skip("central differences of the asm weight gradient").is_some() {
            runs.push((Kernels::Fast, None));
            let algo = auto_plan(Kernels::Fast, &d).algo;
            if algo != Algo::Direct {
                runs.push((Kernels::Fast, Some(Algo::Direct)));
            }
            if algo == Algo::Winograd4 {
                runs.push((Kernels::Fast, Some(Algo::Winograd2)));
            }
        }
        for (path, a) in runs {
            let (dw_kc, db) = run_algo(path, a, &d, &x_pad, &r_pad);
            let mut dw = vec![0.0; dw_kc.len()];
            unpack_weight_grad(&d, &dw_kc, &mut dw);
            assert_central_differences(&dw, &wts, eps, |wp| loss(wp, &bias));
            assert_central_differences(&db, &bias, eps, |bp| loss(&wts, bp));
        }
    }
}

//! Winograd F(4x4, 3x3) (`catdog::layers::conv::winograd`): forward, input gradient and weight
//! gradient against an f64 reference, against the direct and F(2x2) paths, on many shapes
//! (sides multiples of 4 from 4 up, channel counts 16..128 with every block/slab tail,
//! misaligned buffers, row bands); its accuracy on the network's conv2 and conv3 with realistic
//! magnitudes; and a check that a wrong transform constant would be caught by these tolerances.
//! `cargo test --release --test winograd4`; the side-by-side timings against F(2x2) and of the
//! fused conv + pool are a bench: `cargo bench --bench winograd4`.

use catdog::config::ConvDims;

use catdog::layers::conv::winograd::{self, Winograd2, Winograd4};
use catdog::layers::conv::{Algo, Forward, InputGrads, PoolOut, WeightGrads};
use catdog::layers::pool::{forward_asm, OutPlace};
use catdog::testing::{avx512, plan};

#[path = "common/numbers.rs"]
mod numbers;
use numbers::{avx512_rng, avx512_test_rng, dims, max_err, padded, x_and_dy, Rng};

/// A padded input in `[-1, 1)`, weights in `[-1, 1)` and biases in `[-0.5, 0.5)` for `d`, drawn in
/// that order.
fn forward_data(rng: &mut Rng, d: &ConvDims) -> [Vec<f32>; 3] {
    let x = padded(rng, d.h, d.w, d.cin, -1.0, 1.0);
    let wts = rng.fill(d.weight_len(), -1.0, 1.0);
    [x, wts, rng.fill(d.cout, -0.5, 0.5)]
}

/// `v` copied `shift` floats into a new vector: the returned vector's `[shift..]` is `v`,
/// misaligned by that many floats.
fn shifted(v: &[f32], shift: usize) -> Vec<f32> {
    let mut s = vec![0.0; shift];
    s.extend_from_slice(v);
    s
}

// ---- f64 references ----------------------------------------------------------------------

/// Forward in f64: `relu(bias + sum x_pad[y+ky][x+kx][ic] * w[oc][ky][kx][ic])`, `h x w x cout`.
fn forward64(d: &ConvDims, x_pad: &[f32], w: &[f32], bias: &[f32]) -> Vec<f64> {
    let pre = conv64(d, x_pad, |oc, ky, kx, ic| {
        w[((oc * 3 + ky) * 3 + kx) * d.cin + ic]
    });
    pre.iter()
        .enumerate()
        .map(|(i, &s)| (s + bias[i % d.cout] as f64).max(0.0))
        .collect()
}

/// Input gradient in f64: `dx[y][x][ic] = sum dy_pad[y+ky][x+kx][oc] * w[oc][2-ky][2-kx][ic]`.
fn input_grad64(d: &ConvDims, dy_pad: &[f32], w: &[f32]) -> Vec<f64> {
    let bd = dims(d.h, d.w, d.cout, d.cin);
    conv64(&bd, dy_pad, |ic, ky, kx, oc| {
        w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * d.cin + ic]
    })
}

/// `out[y][x][o] = sum_{ky,kx,i} inp[y+ky][x+kx][i] * f(o, ky, kx, i)` in f64 (no bias).
fn conv64(d: &ConvDims, inp: &[f32], f: impl Fn(usize, usize, usize, usize) -> f32) -> Vec<f64> {
    let (h, w, ci, co) = (d.h, d.w, d.cin, d.cout);
    // wt[ky][kx][i][o]
    let mut wt = vec![0.0f64; 9 * ci * co];
    for o in 0..co {
        for ky in 0..3 {
            for kx in 0..3 {
                for i in 0..ci {
                    wt[((ky * 3 + kx) * ci + i) * co + o] = f(o, ky, kx, i) as f64;
                }
            }
        }
    }
    let mut out = vec![0.0f64; h * w * co];
    for y in 0..h {
        for x in 0..w {
            let acc = &mut out[(y * w + x) * co..][..co];
            for ky in 0..3 {
                for kx in 0..3 {
                    let px = &inp[((y + ky) * (w + 2) + x + kx) * ci..][..ci];
                    for (i, &v) in px.iter().enumerate() {
                        let v = v as f64;
                        let row = &wt[((ky * 3 + kx) * ci + i) * co..][..co];
                        for (a, &wv) in acc.iter_mut().zip(row) {
                            *a += v * wv;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Weight and bias gradients in f64: `dw_kc[ky][kx][ic][oc] = sum x_pad[y+ky][x+kx][ic] *
/// dy[y][x][oc]`, `db[oc] = sum dy`.
fn weight_grad64(d: &ConvDims, x_pad: &[f32], dy_pad: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (h, w, ci, co) = (d.h, d.w, d.cin, d.cout);
    let mut dw = vec![0.0f64; 9 * ci * co];
    let mut db = vec![0.0f64; co];
    let mut g = vec![0.0f64; co];
    for y in 0..h {
        for x in 0..w {
            for (gv, &v) in g
                .iter_mut()
                .zip(&dy_pad[((y + 1) * (w + 2) + x + 1) * co..][..co])
            {
                *gv = v as f64;
            }
            for (b, &gv) in db.iter_mut().zip(&g) {
                *b += gv;
            }
            for ky in 0..3 {
                for kx in 0..3 {
                    let px = &x_pad[((y + ky) * (w + 2) + x + kx) * ci..][..ci];
                    for (i, &v) in px.iter().enumerate() {
                        let v = v as f64;
                        let row = &mut dw[((ky * 3 + kx) * ci + i) * co..][..co];
                        for (a, &gv) in row.iter_mut().zip(&g) {
                            *a += v * gv;
                        }
                    }
                }
            }
        }
    }
    (dw, db)
}

// ---- error bounds ------------------------------------------------------------------------

/// Bound on F(4x4)'s error over the largest value of the result, forward and input gradient.
/// Measured (`WINO4_VERBOSE=1 cargo test --release --test winograd4 -- --nocapture
/// --test-threads 1`): at most 1.03e-5 (conv3's input gradient in
/// [`accuracy_on_network_shapes`]), 9.6e-6 on the random +-1 shapes; F(2x2) on the network's
/// shapes at most 4.9e-7, the direct path 1.1e-6.
const TOL: f64 = 2e-5;
/// The same for the weight gradient: measured at most 4.6e-6 (conv2, realistic data), 3.8e-6
/// on the random shapes (F(2x2): 1.2e-6, direct: 2.9e-6 on conv2).
const TOL_WEIGHT_GRAD: f64 = 1e-5;

fn assert_within(got: &[f32], want: &[f64], tol: f64, what: &str) {
    let (abs, rel) = max_err(got, want);
    if std::env::var_os("WINO4_VERBOSE").is_some() {
        println!("{what}: {abs:.2e} abs, {rel:.2e} of max");
    }
    assert!(
        rel <= tol,
        "{what}: max error {abs:.3e} = {rel:.3e} of the largest value (bound {tol:.1e})"
    );
    assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite");
}

// ---- runners -----------------------------------------------------------------------------

/// F(4x4) forward of the whole layer (buffers misaligned by `shift` floats).
fn fwd4(d: &ConvDims, x_pad: &[f32], w: &[f32], bias: &[f32], shift: usize) -> Vec<f32> {
    let cin = d.cin;
    let mut up = vec![0.0; shift + winograd::packed_len::<Winograd4>(cin, d.cout)];
    winograd::pack::<Winograd4>(
        avx512(),
        cin,
        d.cout,
        |oc, ky, kx, ic| w[((oc * 3 + ky) * 3 + kx) * cin + ic],
        &mut up[shift..],
    );
    run4(d, x_pad, &up[shift..], Some(bias), shift)
}

/// `winograd::run::<Winograd4>` over all rows with given packed weights, `bias` or the plain transform.
fn run4(d: &ConvDims, inp: &[f32], up: &[f32], bias: Option<&[f32]>, shift: usize) -> Vec<f32> {
    let inp = shifted(inp, shift);
    let mut scratch = vec![f32::NAN; shift + winograd::scratch_len::<Winograd4>(d)];
    let mut out = vec![f32::NAN; shift + d.h * d.w * d.cout];
    winograd::run::<Winograd4>(
        avx512(),
        d,
        Forward::new(
            &inp[shift..],
            up,
            bias,
            &mut out[shift..],
            0..d.h,
            &mut scratch[shift..],
        ),
    );
    out.split_off(shift)
}

/// F(4x4) input gradient (`h x w x cin`), packed as `ConvPlan::pack_backward` packs F(2x2)'s.
fn bwd4(d: &ConvDims, dy_pad: &[f32], w: &[f32], shift: usize) -> Vec<f32> {
    let cin = d.cin;
    let mut up = vec![0.0; shift + winograd::packed_len::<Winograd4>(d.cout, cin)];
    winograd::pack::<Winograd4>(
        avx512(),
        d.cout,
        cin,
        |ic, ky, kx, oc| w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic],
        &mut up[shift..],
    );
    let kd = dims(d.h, d.w, d.cout, d.cin);
    run4(&kd, dy_pad, &up[shift..], None, shift)
}

/// F(4x4) weight and bias gradients.
fn weight_grad4(d: &ConvDims, x_pad: &[f32], dy_pad: &[f32], shift: usize) -> (Vec<f32>, Vec<f32>) {
    let (x, dy) = (shifted(x_pad, shift), shifted(dy_pad, shift));
    let mut scratch = vec![f32::NAN; shift + winograd::weight_grad_scratch_len::<Winograd4>(d)];
    let mut dw = vec![f32::NAN; shift + d.weight_len()];
    let mut db = vec![f32::NAN; shift + d.cout];
    let (x, dy, s) = (&x[shift..], &dy[shift..], &mut scratch[shift..]);
    let g = WeightGrads::new(x, dy, &mut dw[shift..], &mut db[shift..], s);
    winograd::weight_grad::<Winograd4>(avx512(), d, g);
    (dw.split_off(shift), db.split_off(shift))
}

/// The direct or F(2x2) path's forward.
fn fwd_other(a: Algo, d: &ConvDims, x_pad: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut wp = vec![0.0; plan(a, d).packed_len];
    (plan(a, d).pack_forward)(d, w, &mut wp);
    let mut scratch = vec![0.0; plan(a, d).scratch_len];
    let mut y = vec![f32::NAN; d.out_len()];
    (plan(a, d).forward)(
        d,
        Forward::new(x_pad, &wp, Some(bias), &mut y, 0..d.h, &mut scratch),
    );
    y
}

/// The direct or F(2x2) path's input gradient.
fn bwd_other(a: Algo, d: &ConvDims, dy_pad: &[f32], w: &[f32]) -> Vec<f32> {
    let mut wp = vec![0.0; plan(a, d).packed_len];
    (plan(a, d).pack_backward)(d, w, &mut wp);
    let mut scratch = vec![0.0; plan(a, d).scratch_len];
    let mut dx = vec![f32::NAN; d.h * d.w * d.cin];
    (plan(a, d).input_grad)(d, InputGrads::new(dy_pad, &wp, &mut dx, &mut scratch));
    dx
}

/// The direct or F(2x2) path's weight and bias gradients.
fn weight_grad_other(a: Algo, d: &ConvDims, x_pad: &[f32], dy_pad: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut scratch = vec![0.0; plan(a, d).scratch_len];
    let mut dw = vec![f32::NAN; d.weight_len()];
    let mut db = vec![f32::NAN; d.cout];
    let g = WeightGrads::new(x_pad, dy_pad, &mut dw, &mut db, &mut scratch);
    (plan(a, d).weight_grad)(d, g);
    (dw, db)
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ---- tests -------------------------------------------------------------------------------

#[test]
fn applies_only_to_whole_4x4_tiles_and_16_channel_groups() {
    assert!(winograd::applies::<Winograd4>(&dims(4, 4, 16, 16)));
    assert!(winograd::applies::<Winograd4>(&dims(64, 64, 32, 64)));
    assert!(winograd::applies::<Winograd4>(&dims(32, 32, 64, 128)));
    for d in [
        dims(2, 4, 16, 16),
        dims(4, 6, 16, 16),
        dims(12, 10, 16, 16),
        dims(4, 4, 3, 16),
        dims(4, 4, 16, 8),
        dims(0, 4, 16, 16),
    ] {
        assert!(!winograd::applies::<Winograd4>(&d), "{d:?}");
        assert_eq!(winograd::scratch_len::<Winograd4>(&d), 0);
        assert_eq!(winograd::weight_grad_scratch_len::<Winograd4>(&d), 0);
    }
    assert_eq!(winograd::packed_len::<Winograd4>(32, 64), 36 * 32 * 64);
}

/// Sides multiples of 4 (one tile, one tile row or column, several bands, uneven pieces of a
/// row) and channel counts with every output-block tail (16 = NV 1 only, 48 = 32 + 16,
/// 80, 112); tolerance [`TOL`] of the largest value against f64.
const SHAPES: &[(usize, usize, usize, usize)] = &[
    (4, 4, 16, 16),
    (4, 12, 16, 32),
    (12, 4, 32, 16),
    (8, 8, 48, 64),
    (12, 12, 64, 48),
    (4, 20, 16, 128),
    (16, 8, 128, 16),
    (12, 28, 32, 80),
    (8, 100, 16, 32),
    (24, 16, 112, 48),
];

#[test]
fn forward_matches_f64_reference_and_other_paths() {
    let mut rng = avx512_test_rng!("forward_matches_f64_reference_and_other_paths", 11);
    for (k, &(h, w, cin, cout)) in SHAPES.iter().enumerate() {
        let d = dims(h, w, cin, cout);
        let [x, wts, bias] = forward_data(&mut rng, &d);
        let want = forward64(&d, &x, &wts, &bias);
        // ReLU exercised: both signs of pre-activation.
        assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
        let y4 = fwd4(&d, &x, &wts, &bias, k % 3);
        assert_within(&y4, &want, TOL, &format!("forward F(4x4) {d:?}"));
        // The direct and F(2x2) paths agree with F(4x4) to the same bound.
        for a in [Algo::Direct, Algo::Winograd2] {
            assert!(winograd::applies::<Winograd2>(&d));
            let y = fwd_other(a, &d, &x, &wts, &bias);
            assert_within(
                &y4,
                &to64(&y),
                TOL,
                &format!("forward F(4x4) vs {a:?} {d:?}"),
            );
        }
    }
}

#[test]
fn input_gradient_matches_f64_reference_and_other_paths() {
    let mut rng = avx512_test_rng!("input_gradient_matches_f64_reference_and_other_paths", 12);
    for (k, &(h, w, cin, cout)) in SHAPES.iter().enumerate() {
        let d = dims(h, w, cin, cout);
        let dy = padded(&mut rng, h, w, cout, -1.0, 1.0);
        let wts = rng.fill(d.weight_len(), -1.0, 1.0);
        let want = input_grad64(&d, &dy, &wts);
        let dx4 = bwd4(&d, &dy, &wts, (k + 1) % 3);
        assert_within(&dx4, &want, TOL, &format!("input gradient F(4x4) {d:?}"));
        for a in [Algo::Direct, Algo::Winograd2] {
            let dx = bwd_other(a, &d, &dy, &wts);
            assert_within(&dx4, &to64(&dx), TOL, &format!("dx F(4x4) vs {a:?} {d:?}"));
        }
    }
}

/// Shapes of the weight gradient: one band or several (the band is `Winograd4::WEIGHT_GRAD_BAND_TILES`
/// tiles of whole tile rows), every slab kernel (64-channel slabs, 16 / 32 / 48 tails).
const WEIGHT_GRAD_SHAPES: &[(usize, usize, usize, usize)] = &[
    (4, 4, 16, 16),
    (4, 12, 16, 32),
    (12, 4, 32, 48),
    (8, 8, 48, 64),
    (20, 12, 64, 16),
    (12, 28, 16, 80),
    (16, 16, 128, 112),
    (24, 8, 32, 128),
];

#[test]
fn weight_gradient_matches_f64_reference_and_other_paths() {
    let mut rng = avx512_test_rng!("weight_gradient_matches_f64_reference_and_other_paths", 13);
    for (k, &(h, w, cin, cout)) in WEIGHT_GRAD_SHAPES.iter().enumerate() {
        let d = dims(h, w, cin, cout);
        let (x, dy) = x_and_dy(&mut rng, &d);
        let (dw_want, db_want) = weight_grad64(&d, &x, &dy);
        let (dw4, db4) = weight_grad4(&d, &x, &dy, k % 3);
        assert_within(&dw4, &dw_want, TOL_WEIGHT_GRAD, &format!("dw F(4x4) {d:?}"));
        assert_within(&db4, &db_want, 1e-6, &format!("db F(4x4) {d:?}"));
        for a in [Algo::Direct, Algo::Winograd2] {
            let (dw, db) = weight_grad_other(a, &d, &x, &dy);
            assert_within(
                &dw4,
                &to64(&dw),
                TOL_WEIGHT_GRAD,
                &format!("dw F(4x4) vs {a:?} {d:?}"),
            );
            assert_within(&db4, &to64(&db), 1e-6, &format!("db F(4x4) vs {a:?} {d:?}"));
        }
    }
}

/// A second call overwrites (dU accumulates across bands in scratch, dw and db must not).
#[test]
fn weight_gradient_overwrites_bit_for_bit() {
    let mut rng = avx512_test_rng!("weight_gradient_overwrites_bit_for_bit", 14);
    let d = dims(20, 12, 32, 48);
    let (x, dy) = x_and_dy(&mut rng, &d);
    let mut scratch = vec![0.0; winograd::weight_grad_scratch_len::<Winograd4>(&d)];
    let (mut dw, mut db) = (vec![0.0; d.weight_len()], vec![0.0; 48]);
    let g = WeightGrads::new(&x, &dy, &mut dw, &mut db, &mut scratch);
    winograd::weight_grad::<Winograd4>(avx512(), &d, g);
    let (first_dw, first_db) = (dw.clone(), db.clone());
    let g = WeightGrads::new(&x, &dy, &mut dw, &mut db, &mut scratch);
    winograd::weight_grad::<Winograd4>(avx512(), &d, g);
    assert_eq!(dw, first_dw);
    assert_eq!(db, first_db);
}

/// The weight gradient reads only the interior of `dy_pad`: garbage in its border changes
/// nothing.
#[test]
fn weight_gradient_reads_only_the_interior_of_dy() {
    let mut rng = avx512_test_rng!("weight_gradient_reads_only_the_interior_of_dy", 15);
    let d = dims(8, 12, 16, 32);
    let (x, dy) = x_and_dy(&mut rng, &d);
    let mut dirty = dy.clone();
    for y in 0..10 {
        for x in 0..14 {
            if y == 0 || y == 9 || x == 0 || x == 13 {
                for c in 0..32 {
                    dirty[(y * 14 + x) * 32 + c] = 1e30;
                }
            }
        }
    }
    assert_eq!(
        weight_grad4(&d, &x, &dy, 0),
        weight_grad4(&d, &x, &dirty, 0)
    );
}

/// Row bands (as the trainer runs conv2 + pool2) give the same bits as the whole layer, and
/// write nothing outside their rows.
#[test]
fn row_bands_match_whole_layer_bit_for_bit() {
    let mut rng = avx512_test_rng!("row_bands_match_whole_layer_bit_for_bit", 16);
    for (h, w, cin, cout) in [(16, 12, 32, 64), (24, 64, 16, 32), (12, 8, 64, 48)] {
        let d = dims(h, w, cin, cout);
        let [x, wts, bias] = forward_data(&mut rng, &d);
        let whole = fwd4(&d, &x, &wts, &bias, 0);
        let mut up = vec![0.0; winograd::packed_len::<Winograd4>(cin, cout)];
        winograd::pack::<Winograd4>(
            avx512(),
            cin,
            cout,
            |oc, ky, kx, ic| wts[((oc * 3 + ky) * 3 + kx) * cin + ic],
            &mut up,
        );
        let mut scratch = vec![0.0; winograd::scratch_len::<Winograd4>(&d)];
        let mut y0 = 0;
        for band in [4, 8, 4, 12, 4].iter().cycle() {
            if y0 >= h {
                break;
            }
            let y1 = (y0 + band).min(h);
            let n = (y1 - y0) * w * cout;
            let mut out = vec![f32::NAN; n + 16];
            winograd::run::<Winograd4>(
                avx512(),
                &d,
                Forward::new(&x, &up, Some(&bias), &mut out, y0..y1, &mut scratch),
            );
            assert_eq!(
                &out[..n],
                &whole[y0 * w * cout..y1 * w * cout],
                "{d:?} rows {y0}..{y1}"
            );
            assert!(out[n..].iter().all(|v| v.is_nan()), "wrote past its rows");
            y0 = y1;
        }
    }
}

#[test]
#[should_panic(expected = "whole 4-row tiles")]
fn rows_must_be_whole_tiles() {
    let d = dims(8, 8, 16, 16);
    let x = vec![0.0; d.in_pad_len()];
    let up = vec![0.0; winograd::packed_len::<Winograd4>(16, 16)];
    let mut out = vec![0.0; d.out_len()];
    let mut scratch = vec![0.0; winograd::scratch_len::<Winograd4>(&d)];
    winograd::run::<Winograd4>(
        avx512(),
        &d,
        Forward::new(&x, &up, None, &mut out, 2..6, &mut scratch),
    );
}

/// Pooled values and argmax codes of `y` (`h x w x cout`) by the pool kernels
/// (`layers::pool::forward_asm`), into a buffer of `out_len` floats at `place`, the rest -7.0.
fn pool_after(d: &ConvDims, y: &[f32], place: OutPlace, out_len: usize) -> (Vec<f32>, Vec<u8>) {
    let (p, mut out) = (d.pool(), vec![-7.0; out_len]);
    let mut am = vec![9; p.out_len()];
    let mut pool = PoolOut {
        out: &mut out,
        place,
        argmax: Some(&mut am),
    };
    forward_asm(avx512(), &p, y, &mut pool, 0..d.h / 2);
    (out, am)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The fused conv + ReLU + pool forward of F(4x4) (`ConvPlan::forward_pool`: the pool in the
/// output transform) against the forward then the pool kernels (`forward_row` with codes,
/// `max_row` without), bit for bit, on the network's conv2 and conv3 and a small shape with a
/// 48-channel output (a last 16-channel block), into a padded and a flat place, in bands of
/// the plan's height, 4 rows and the whole layer. The inputs have many ties: a third of the
/// input is zero and one block of it wholly so, every third output channel has zero weights
/// (its output is `relu(bias)` everywhere, all four positions equal), biases of both signs
/// (windows ReLU blocked wholly, code 4), and a NaN input (windows where some positions are
/// NaN before the ReLU); every code 0..4 must occur. Nothing outside the
/// pooled places is written, and without codes no code is.
#[test]
fn fused_pool_matches_forward_then_pool_bit_for_bit() {
    let mut rng = avx512_test_rng!("fused_pool_matches_forward_then_pool_bit_for_bit", 29);
    for (h, w, cin, cout) in [(64, 64, 32, 64), (32, 32, 64, 128), (8, 12, 16, 48)] {
        let d = dims(h, w, cin, cout);
        let plan = plan(Algo::Winograd4, &d);
        let fused = plan.forward_pool.expect("F(4x4) has a fused conv + pool");
        let mut x = padded(&mut rng, h, w, cin, -0.5, 1.0);
        x.iter_mut().for_each(|v| *v = v.max(0.0));
        for r in 1..=6 {
            x[(r * (w + 2) + 1) * cin..(r * (w + 2) + 7) * cin].fill(0.0);
        }
        // A NaN at the top-left corner of the last tile row's last tile: the forward gives NaN
        // before the ReLU (0 after) at some positions of a window and not at others (that
        // tile's output (0, 0); the left tile's row 0, the upper tile's column 0).
        let (a, b) = (h / 4 - 1, w / 4 - 1);
        x[(4 * a * (w + 2) + 4 * b) * cin + cin / 2] = f32::NAN;
        let lim = (6.0 / (9.0 * cin as f32)).sqrt();
        let mut wts = rng.fill(d.weight_len(), -lim, lim);
        for oc in (0..cout).step_by(3) {
            wts[oc * 9 * cin..(oc + 1) * 9 * cin].fill(0.0);
        }
        let bias = rng.fill(cout, -0.1, 0.1);
        let mut wp = vec![0.0; plan.packed_len];
        (plan.pack_forward)(&d, &wts, &mut wp);
        let mut scratch = vec![f32::NAN; plan.scratch_len];
        let mut y = vec![f32::NAN; d.out_len()];
        (plan.forward)(
            &d,
            Forward::new(&x, &wp, Some(&bias), &mut y, 0..h, &mut scratch),
        );
        let p = d.pool();
        let (ho, wo) = (h / 2, w / 2);
        for (name, place, len) in [
            ("flat", OutPlace::flat(&p), p.out_len()),
            ("padded", OutPlace::padded(&p), (ho + 2) * (wo + 2) * cout),
        ] {
            let (want, want_am) = pool_after(&d, &y, place, len + 16);
            let mut seen = [0usize; 5];
            want_am.iter().for_each(|&c| seen[c as usize] += 1);
            assert!(seen.iter().all(|&n| n > 0), "{d:?}: codes seen {seen:?}");
            let mut bands = vec![plan.band, 4, h];
            bands.dedup();
            for band in bands {
                for codes in [true, false] {
                    let (mut got, mut got_am) = (vec![-7.0; len + 16], vec![9; p.out_len()]);
                    let mut pool = PoolOut {
                        out: &mut got,
                        place,
                        argmax: codes.then_some(&mut got_am[..]),
                    };
                    for y0 in (0..h).step_by(band) {
                        let rows = y0..(y0 + band).min(h);
                        fused(&d, &x, &wp, &bias, rows, &mut scratch, &mut pool);
                    }
                    let what = format!("{d:?} {name} band {band} codes {codes}");
                    assert!(bits(&got) == bits(&want), "{what}: pooled values differ");
                    if codes {
                        assert!(got_am == want_am, "{what}: codes differ");
                    } else {
                        assert!(got_am.iter().all(|&c| c == 9), "{what}: wrote codes");
                    }
                }
            }
        }
        // The ties are there: windows whose maximum (> 0) is at two or more positions.
        let ties = (0..ho * wo * cout)
            .filter(|&k| {
                let (i, j, ch) = (k / (wo * cout), k / cout % wo, k % cout);
                let at = |r: usize, c: usize| y[(r * w + c) * cout + ch];
                let v = [
                    at(2 * i, 2 * j),
                    at(2 * i, 2 * j + 1),
                    at(2 * i + 1, 2 * j),
                    at(2 * i + 1, 2 * j + 1),
                ];
                let top = v.iter().cloned().fold(f32::MIN, f32::max);
                top > 0.0 && v.iter().filter(|&&x| x == top).count() > 1
            })
            .count();
        assert!(ties > 0, "{d:?}: no tied windows");
    }
}

/// The network's conv2 (64x64, 32 -> 64) and conv3 (32x32, 64 -> 128) with realistic
/// magnitudes: inputs uniform in [0, 1) (post-ReLU activations, a quarter of them zero),
/// weights uniform in +-sqrt(6 / (9 cin)) (He-like), output gradients in +-1e-3. Prints the
/// error of every path against f64 and asserts F(4x4)'s bound.
#[test]
fn accuracy_on_network_shapes() {
    let mut rng = avx512_test_rng!("accuracy_on_network_shapes", 17);
    for d in [dims(64, 64, 32, 64), dims(32, 32, 64, 128)] {
        let mut x = padded(&mut rng, d.h, d.w, d.cin, -0.33, 1.0);
        x.iter_mut().for_each(|v| *v = v.max(0.0));
        let lim = (6.0 / (9.0 * d.cin as f32)).sqrt();
        let wts = rng.fill(d.weight_len(), -lim, lim);
        let bias = rng.fill(d.cout, -0.01, 0.01);
        let dy = padded(&mut rng, d.h, d.w, d.cout, -1e-3, 1e-3);
        let y_want = forward64(&d, &x, &wts, &bias);
        let dx_want = input_grad64(&d, &dy, &wts);
        let (dw_want, db_want) = weight_grad64(&d, &x, &dy);
        let y4 = fwd4(&d, &x, &wts, &bias, 0);
        let dx4 = bwd4(&d, &dy, &wts, 0);
        let (dw4, db4) = weight_grad4(&d, &x, &dy, 0);
        for a in [Algo::Direct, Algo::Winograd2] {
            let y = fwd_other(a, &d, &x, &wts, &bias);
            let dx = bwd_other(a, &d, &dy, &wts);
            let (dw, _) = weight_grad_other(a, &d, &x, &dy);
            for (what, got, want) in [
                ("forward", &y, &y_want),
                ("input gradient", &dx, &dx_want),
                ("weight gradient", &dw, &dw_want),
            ] {
                let (abs, rel) = max_err(got, want);
                println!("{d:?} {what:16} {a:?}: max |error| {abs:.2e}, {rel:.2e} of max");
            }
        }
        for (what, got, want, tol) in [
            ("forward", &y4, &y_want, TOL),
            ("input gradient", &dx4, &dx_want, TOL),
            ("weight gradient", &dw4, &dw_want, TOL_WEIGHT_GRAD),
            ("bias gradient", &db4, &db_want, 1e-6),
        ] {
            let (abs, rel) = max_err(got, want);
            println!("{d:?} {what:16} F(4x4): max |error| {abs:.2e}, {rel:.2e} of max");
            assert_within(got, want, tol, &format!("{what} F(4x4) {d:?}"));
        }
    }
}

/// `winograd::pack::<Winograd4>`'s layout with a given `G` (6x3) in place of the exact one, to run
/// `winograd::run::<Winograd4>` with a wrong weight transform.
fn pack_with_g(
    g: &[[f64; 3]; 6],
    n_in: usize,
    n_out: usize,
    f: impl Fn(usize, usize, usize, usize) -> f32,
) -> Vec<f32> {
    let plane = n_in * n_out;
    let mut out = vec![0.0; 36 * plane];
    let blocks: Vec<(usize, usize)> = catdog::testing::channel_blocks(n_out);
    for &(o0, nv) in &blocks {
        let nb = nv * 16;
        for i in 0..n_in {
            for c in 0..nb {
                let o = o0 + c;
                for r in 0..6 {
                    for s in 0..6 {
                        // u[r][s] = sum_{ky,kx} G[r][ky] g[ky][kx] G[s][kx]
                        let mut u = 0.0;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                u += g[r][ky] * f(o, ky, kx, i) as f64 * g[s][kx];
                            }
                        }
                        out[(r * 6 + s) * plane + o0 * n_in + i * nb + c] = u as f32;
                    }
                }
            }
        }
    }
    out
}

/// The exact `G`.
const G: [[f64; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The tolerances are tight enough to mean something: the same forward with one constant of
/// `G` written to 4 significant digits (1/6 -> 0.1667, a relative error of 2e-4, or 1/24 ->
/// 0.04167, 8e-5, in one entry) fails [`TOL`] on the network's conv3, while the exact `G`
/// through the same test-side packer passes (and matches `winograd::pack::<Winograd4>`).
#[test]
fn a_wrong_transform_constant_is_caught() {
    let mut rng = avx512_test_rng!("a_wrong_transform_constant_is_caught", 18);
    let d = dims(32, 32, 64, 128);
    let mut x = padded(&mut rng, d.h, d.w, d.cin, -0.33, 1.0);
    x.iter_mut().for_each(|v| *v = v.max(0.0));
    let lim = (6.0 / (9.0 * d.cin as f32)).sqrt();
    let wts = rng.fill(d.weight_len(), -lim, lim);
    let bias = rng.fill(d.cout, -0.01, 0.01);
    let want = forward64(&d, &x, &wts, &bias);
    let f = |oc: usize, ky: usize, kx: usize, ic: usize| wts[((oc * 3 + ky) * 3 + kx) * d.cin + ic];
    let exact = pack_with_g(&G, d.cin, d.cout, f);
    let mut packed = vec![0.0; winograd::packed_len::<Winograd4>(d.cin, d.cout)];
    winograd::pack::<Winograd4>(avx512(), d.cin, d.cout, f, &mut packed);
    let (_, rel_pack) = max_err(&exact, &to64(&packed));
    assert!(
        rel_pack < 1e-6,
        "test-side packer differs from pack: {rel_pack:e}"
    );
    let y = run4(&d, &x, &exact, Some(&bias), 0);
    assert_within(&y, &want, TOL, "exact G through the test packer");
    // Measured: 0.1667 -> 4.2e-4 of max (21x the bound), 0.04167 -> 4.4e-5 (2.2x); a
    // relative error of 2e-5 in one constant (-1/6 -> -0.16667: 2.0e-5 of max) is at the
    // bound and not caught.
    for (r, c, v) in [(3, 2, 0.1667), (3, 0, 0.04167)] {
        let mut g = G;
        g[r][c] = v;
        let wrong = pack_with_g(&g, d.cin, d.cout, f);
        let y = run4(&d, &x, &wrong, Some(&bias), 0);
        let (abs, rel) = max_err(&y, &want);
        println!("G[{r}][{c}] = {v}: max error {abs:.2e} = {rel:.2e} of max (bound {TOL:.0e})");
        assert!(
            rel > TOL,
            "G[{r}][{c}] = {v} was not caught: {rel:.2e} of max"
        );
    }
}

//! The 3x3 convolution: scalar reference against hand-computed numbers and finite differences,
//! and the `asm!` kernels against the reference on many shapes (odd widths, cin = 3, unaligned
//! buffers), both algorithms (direct everywhere, Winograd wherever it applies).
//! `cargo test --release --test conv`.

use approx::assert_relative_eq;
use catdog::config::ConvDims;
use catdog::config::Kernels;
use catdog::layers::conv::winograd::{self, Winograd2};
use catdog::layers::conv::winograd_rows;
use catdog::layers::conv::{chunks, row_tile_widths, Algo, ConvPlan, ForwardPoolFn, PoolOut};
use catdog::layers::conv::{Forward, InputGrads};
use catdog::reference::conv as reference;
use catdog::testing::channel_blocks;
use catdog::testing::{auto_plan, avx512, avx512_or_skip, fns, plan};

#[path = "common/numbers.rs"]
mod numbers;
use numbers::{avx512_rng, avx512_test_rng, dims, Rng};

/// A `(h+2) x (w+2) x c` buffer with interior uniform in [-1, 1) and zero border, starting
/// `shift` floats into the returned vector (so the slice may be misaligned).
fn padded(rng: &mut Rng, h: usize, w: usize, c: usize, shift: usize) -> Vec<f32> {
    let mut v = vec![0.0; shift];
    v.extend(numbers::padded(rng, h, w, c, -1.0, 1.0));
    v
}

/// Every element of `got` equals `want` up to float rounding of sums of `want`'s magnitude.
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    let s = numbers::scale(want, 1.0);
    numbers::assert_close(what, got, want, |_| 1e-5 * s, 1e-4);
}

/// A layer's plan's packed weights: forward, backward.
fn packed(plan: &ConvPlan, d: &ConvDims, w: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut wp = vec![0.0; plan.packed_len];
    let mut wb = vec![0.0; plan.packed_len];
    (plan.pack_forward)(d, w, &mut wp);
    if d.cin.is_multiple_of(16) {
        (plan.pack_backward)(d, w, &mut wb);
    }
    (wp, wb)
}

#[test]
fn reference_matches_hand_computed_numbers() {
    // One input channel, one filter, a 1x2 image: x = [1, 2], filter rows 1 2 3 / 4 5 6 / 7 8 9.
    let d = dims(1, 2, 1, 1);
    let x_pad = [0., 0., 0., 0., 0., 1., 2., 0., 0., 0., 0., 0.];
    let w = [1., 2., 3., 4., 5., 6., 7., 8., 9.];
    let mut y = [0.0; 2];
    // Only the middle filter row meets the image: y0 = 5*1 + 6*2, y1 = 4*1 + 5*2.
    reference::forward(&d, &x_pad, &w, Some(&[0.5]), &mut y, 0..1);
    assert_eq!(y, [17.5, 14.5]);
    // ReLU: a bias of -15 leaves 17 - 15 = 2 and clamps 14 - 15 = -1 to 0.
    reference::forward(&d, &x_pad, &w, Some(&[-15.0]), &mut y, 0..1);
    assert_eq!(y, [2.0, 0.0]);
    // dx0 = dy0*5 + dy1*4, dx1 = dy0*6 + dy1*5 for dy = [1, 10].
    let dy_pad = [0., 0., 0., 0., 0., 1., 10., 0., 0., 0., 0., 0.];
    let mut dx = [0.0; 2];
    reference::input_grad(&d, &dy_pad, &w, &mut dx);
    assert_eq!(dx, [45.0, 56.0]);
}

#[test]
fn reference_matches_naive_formula_with_channels() {
    // 2 input channels, 2 filters, 2x2 image, every weight distinct: compare against the
    // definition written out with explicit bounds checks instead of a padded buffer.
    let d = dims(2, 2, 2, 2);
    let x = |y: i32, xx: i32, c: usize| -> f32 {
        if (0..2).contains(&y) && (0..2).contains(&xx) {
            (y * 4 + xx * 2) as f32 + c as f32 + 1.0
        } else {
            0.0
        }
    };
    let mut x_pad = vec![0.0; d.in_pad_len()];
    for y in 0..2 {
        for xx in 0..2 {
            for c in 0..2 {
                x_pad[((y + 1) * 4 + xx + 1) * 2 + c] = x(y as i32, xx as i32, c);
            }
        }
    }
    let w: Vec<f32> = (0..36).map(|i| (i as f32 - 17.0) * 0.25).collect();
    let bias = [3.0, -2.0];
    let mut y = vec![0.0; d.out_len()];
    reference::forward(&d, &x_pad, &w, Some(&bias), &mut y, 0..d.h);
    for oy in 0..2i32 {
        for ox in 0..2i32 {
            for oc in 0..2 {
                let mut s = bias[oc];
                for ky in 0..3i32 {
                    for kx in 0..3i32 {
                        for ic in 0..2 {
                            let wi = ((oc * 3 + ky as usize) * 3 + kx as usize) * 2 + ic;
                            s += x(oy + ky - 1, ox + kx - 1, ic) * w[wi];
                        }
                    }
                }
                assert_eq!(y[((oy * 2 + ox) * 2) as usize + oc], s.max(0.0));
            }
        }
    }
    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
}

/// `dL/dx` for `L = sum(y * r)` with a bias large enough that no pre-activation is near zero
/// (so ReLU is the identity and `dL/dpre = r`), by central differences, against `input_grad`.
fn gradient_check(path: Kernels, d: ConvDims) {
    let mut rng = Rng::new(7);
    let mut x_pad = padded(&mut rng, d.h, d.w, d.cin, 0);
    let w: Vec<f32> = rng.vec(d.weight_len()).iter().map(|v| v * 0.2).collect();
    let bias = vec![40.0; d.cout];
    let r_pad = padded(&mut rng, d.h, d.w, d.cout, 0);
    let plan = auto_plan(path, &d);
    let (wp, wb) = packed(&plan, &d, &w);
    let mut dx = vec![0.0; d.h * d.w * d.cin];
    let mut scratch = vec![0.0; plan.scratch_len];
    (plan.input_grad)(&d, InputGrads::new(&r_pad, &wb, &mut dx, &mut scratch));
    let mut y = vec![0.0; d.out_len()];
    let mut loss = |x_pad: &[f32]| -> f64 {
        (plan.forward)(
            &d,
            Forward::new(x_pad, &wp, Some(&bias), &mut y, 0..d.h, &mut scratch),
        );
        assert!(y.iter().all(|&v| v > 10.0), "a pre-activation came near 0");
        let mut l = 0.0f64;
        for oy in 0..d.h {
            for ox in 0..d.w {
                for oc in 0..d.cout {
                    let r = r_pad[((oy + 1) * (d.w + 2) + ox + 1) * d.cout + oc];
                    l += y[(oy * d.w + ox) * d.cout + oc] as f64 * r as f64;
                }
            }
        }
        l
    };
    let eps = 0.25f32;
    for oy in 0..d.h {
        for ox in 0..d.w {
            for ic in 0..d.cin {
                let i = ((oy + 1) * (d.w + 2) + ox + 1) * d.cin + ic;
                let x0 = x_pad[i];
                x_pad[i] = x0 + eps;
                let lp = loss(&x_pad);
                x_pad[i] = x0 - eps;
                let lm = loss(&x_pad);
                x_pad[i] = x0;
                let fd = ((lp - lm) / (2.0 * eps as f64)) as f32;
                assert_relative_eq!(
                    dx[(oy * d.w + ox) * d.cin + ic],
                    fd,
                    epsilon = 2e-3,
                    max_relative = 1e-3
                );
            }
        }
    }
    assert!(
        dx.iter().any(|v| v.abs() > 0.5),
        "gradient is trivially small"
    );
}

#[test]
fn reference_input_grad_matches_finite_differences() {
    gradient_check(Kernels::Reference, ODD);
}

/// Shapes of the finite-difference checks: odd sides (the direct path) and even (Winograd).
const ODD: ConvDims = ConvDims {
    h: 3,
    w: 5,
    cin: 16,
    cout: 32,
};
const EVEN: ConvDims = ConvDims {
    h: 4,
    w: 6,
    cin: 16,
    cout: 32,
};

#[test]
fn asm_input_grad_matches_finite_differences() {
    if avx512_or_skip("asm_input_grad_matches_finite_differences").is_none() {
        return;
    }
    assert_eq!(auto_plan(Kernels::Fast, &ODD).algo, Algo::Direct);
    gradient_check(Kernels::Fast, ODD);
    assert_eq!(auto_plan(Kernels::Fast, &EVEN).algo, Algo::Winograd2);
    gradient_check(Kernels::Fast, EVEN);
}

/// Forward and (where `cin % 16 == 0`) input gradient, asm against reference, on one shape, with
/// the direct algorithm and (where it applies) Winograd; `shift` misaligns every buffer by that
/// many floats.
fn compare(h: usize, w: usize, cin: usize, cout: usize, shift: usize, seed: u64) {
    compare_algos(h, w, cin, cout, shift, seed, true)
}

/// [`compare`] of the asm algorithms (`asm`) or of the portable kernels' GEMM (`!asm`).
fn compare_algos(h: usize, w: usize, cin: usize, cout: usize, shift: usize, seed: u64, asm: bool) {
    let d = ConvDims { h, w, cin, cout };
    let mut rng = Rng::new(seed);
    let x_pad = padded(&mut rng, h, w, cin, shift);
    let mut wts = vec![0.0; shift];
    wts.extend(rng.vec(d.weight_len()));
    let mut bias = vec![0.0; shift];
    bias.extend(rng.vec(cout).iter().map(|v| v * 0.5));
    let (x_pad, wts, bias) = (&x_pad[shift..], &wts[shift..], &bias[shift..]);
    let dy_pad = padded(&mut rng, h, w, cout, shift);
    let mut y_ref = vec![0.0; d.out_len()];
    reference::forward(&d, x_pad, wts, Some(bias), &mut y_ref, 0..h);
    // Both signs of pre-activation occur, so the ReLU was exercised.
    assert!(y_ref.contains(&0.0) && y_ref.iter().any(|&v| v > 0.0));
    let mut dx_ref = vec![0.0; h * w * cin];
    if cin.is_multiple_of(16) {
        reference::input_grad(&d, &dy_pad[shift..], wts, &mut dx_ref);
    }
    let mut algos = vec![if asm { Algo::Direct } else { Algo::Gemm }];
    if asm && winograd::applies::<Winograd2>(&d) {
        algos.push(Algo::Winograd2);
    }
    if asm && winograd_rows::applies(&d) {
        algos.push(Algo::WinogradRows);
    }
    for a in algos {
        let what = format!("{a:?} {d:?} shift {shift}");
        let plan = plan(a, &d);
        let mut scratch = vec![f32::NAN; shift + plan.scratch_len];
        let scratch = &mut scratch[shift..];
        let mut wp = vec![0.0; shift + plan.packed_len];
        (plan.pack_forward)(&d, wts, &mut wp[shift..]);
        let mut y_asm = vec![f32::NAN; shift + d.out_len()];
        let y = &mut y_asm[shift..];
        (plan.forward)(
            &d,
            Forward::new(x_pad, &wp[shift..], Some(bias), y, 0..h, scratch),
        );
        assert_close(&y_asm[shift..], &y_ref, &format!("forward {what}"));

        if cin.is_multiple_of(16) {
            let mut wb = vec![0.0; shift + plan.packed_len];
            (plan.pack_backward)(&d, wts, &mut wb[shift..]);
            let mut dx_asm = vec![f32::NAN; shift + h * w * cin];
            let dx = &mut dx_asm[shift..];
            (plan.input_grad)(
                &d,
                InputGrads::new(&dy_pad[shift..], &wb[shift..], dx, scratch),
            );
            assert_close(&dx_asm[shift..], &dx_ref, &format!("input_grad {what}"));
        }
    }
}

/// The fused conv + pool `fused` over all of `d`'s rows in bands of `band` rows; `inputs` are
/// the padded input, the packed weights and the biases.
fn fused_in_bands(
    fused: ForwardPoolFn,
    d: &ConvDims,
    [x, wp, bias]: [&[f32]; 3],
    band: usize,
    scratch: &mut [f32],
    mut pool: PoolOut,
) {
    for y0 in (0..d.h).step_by(band) {
        let rows = y0..(y0 + band).min(d.h);
        fused(d, x, wp, bias, rows, scratch, &mut pool);
    }
}

/// Odd sides `(h, w)` for [`compare_grid`]: 1 x 1, a single row, primes.
const ODD_SIDES: [(usize, usize); 6] = [(1, 1), (1, 2), (2, 3), (5, 7), (13, 9), (3, 17)];
/// Conv1's `(cin, cout)` channel pairs (3 input channels).
const CONV1_CHANNELS: [(usize, usize); 2] = [(3, 16), (3, 32)];
/// `(cin, cout)` pairs in whole 16-channel blocks, one to four blocks each side.
const BLOCK_CHANNELS: [(usize, usize); 5] = [(16, 16), (16, 48), (32, 64), (48, 32), (64, 16)];

/// The portable kernels' implicit GEMM: forward and input gradient against the reference on odd
/// and even sides, conv1's 3 input channels and channel counts that are not multiples of 16 (the
/// GEMM has no block constraint), misaligned buffers.
#[test]
fn portable_matches_reference_odd_and_even_shapes() {
    let sides = [&ODD_SIDES[..], &[(8, 8), (9, 10), (17, 6)]].concat();
    // conv1's 3 input channels, then a channel count that is not a multiple of 16.
    let channels = [&CONV1_CHANNELS[..], &[(1, 5)], &BLOCK_CHANNELS].concat();
    compare_grid(&sides, &channels, 100, false);
}

/// [`compare_algos`] on every side pair of `sides` with every channel pair of `channels`, each
/// with its own seed (from `seed`) and misalignment.
fn compare_grid(sides: &[(usize, usize)], channels: &[(usize, usize)], seed: u64, asm: bool) {
    let mut seed = seed;
    for &(h, w) in sides {
        for &(cin, cout) in channels {
            seed += 1;
            compare_algos(h, w, cin, cout, (seed % 3) as usize, seed, asm);
        }
    }
}

/// The portable input gradient against central differences, on odd and even sides.
#[test]
fn portable_input_grad_matches_finite_differences() {
    assert_eq!(auto_plan(Kernels::Portable, &ODD).algo, Algo::Gemm);
    gradient_check(Kernels::Portable, ODD);
    gradient_check(Kernels::Portable, EVEN);
}

#[test]
fn asm_matches_reference_small_and_odd_shapes() {
    if avx512_or_skip("asm_matches_reference_small_and_odd_shapes").is_none() {
        return;
    }
    let sides = [
        &ODD_SIDES[..],
        &[(4, 29), (2, 31)],
        // Even sides: Winograd too (one tile, one tile row, tall, several bands).
        &[(2, 2), (2, 8), (6, 2), (4, 10), (12, 6)],
        // Widths in 4s: F(4,3) along rows too (cin 3, cout 32), odd and even tile counts.
        &[(2, 4), (4, 12), (6, 20), (8, 16)],
    ]
    .concat();
    let channels = [&CONV1_CHANNELS[..], &BLOCK_CHANNELS].concat();
    compare_grid(&sides, &channels, 1, true);
}

#[test]
fn asm_matches_reference_wide_channel_mixes() {
    if avx512_or_skip("asm_matches_reference_wide_channel_mixes").is_none() {
        return;
    }
    // Channel counts whose blocks mix NV = 2 and 1 (112 = 3*32 + 16), and many tile plans.
    for (i, &(h, w, cin, cout)) in [
        (3, 6, 112, 80),
        (2, 12, 80, 112),
        (2, 14, 16, 128),
        (3, 15, 128, 16),
        (2, 25, 32, 16),
        (2, 40, 16, 32),
        // Winograd bands that are uneven pieces of a tile row (25 tiles -> 13 + 12).
        (4, 50, 32, 16),
    ]
    .iter()
    .enumerate()
    {
        compare(h, w, cin, cout, i % 2, 100 + i as u64);
    }
}

#[test]
fn asm_matches_reference_network_sizes() {
    if avx512_or_skip("asm_matches_reference_network_sizes").is_none() {
        return;
    }
    compare(128, 128, 3, 32, 0, 11);
    compare(64, 64, 32, 64, 0, 12);
    compare(32, 32, 64, 128, 1, 13);
}

#[test]
fn asm_matches_reference_with_split_reductions() {
    if avx512_or_skip("asm_matches_reference_with_split_reductions").is_none() {
        return;
    }
    // 256 input channels: one chunk per kernel row; 1024: kernel row x 512 channels. Forward
    // splits over cin, input gradient over cout.
    assert_eq!(chunks(256, 32).len(), 3);
    assert_eq!(chunks(1024, 32).len(), 6);
    compare(2, 5, 256, 32, 1, 201);
    compare(3, 2, 1024, 48, 0, 202);
    compare(2, 3, 32, 256, 0, 203);
    compare(1, 4, 16, 1024, 1, 204);
}

#[test]
fn reduction_chunks_cover_the_window_once() {
    for n_in in [3, 16, 32, 48, 64, 128, 256, 512, 768, 1024] {
        for nb in [16, 32] {
            let mut seen = vec![0u32; 3 * n_in];
            for c in chunks(n_in, nb) {
                for ky in c.ky0..c.ky0 + c.nky {
                    for i in c.c0..c.c0 + c.kc {
                        seen[ky * n_in + i] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "n_in {n_in} nb {nb}");
        }
    }
    assert_eq!(chunks(64, 32).len(), 1);
}

#[test]
fn row_plans_cover_every_pixel_once() {
    for nv in [1, 2] {
        let tiles = catdog::kernels::microkernel::tiles(nv);
        for w in 1..=300 {
            let widths = row_tile_widths(w, tiles);
            assert_eq!(widths.iter().sum::<usize>(), w, "w {w} nv {nv}");
            assert!(widths.iter().all(|p| tiles.iter().any(|t| t.pixels == *p)));
        }
    }
    // Wide rows are mostly full 14-pixel tiles; no 1..4-pixel tiles where wider ones fit.
    let t2 = catdog::kernels::microkernel::tiles(2);
    assert!(
        row_tile_widths(128, t2)
            .iter()
            .filter(|&&p| p == 14)
            .count()
            >= 7
    );
    assert!(row_tile_widths(32, t2).iter().all(|&p| p >= 5));
    println!(
        "w 32: {:?}, w 64: {:?}, w 128: {:?}",
        row_tile_widths(32, t2),
        row_tile_widths(64, t2),
        row_tile_widths(128, t2)
    );
}

#[test]
fn channel_blocks_cover_every_channel_once() {
    for n in (16..=1024).step_by(16) {
        let b = channel_blocks(n);
        let mut next = 0;
        for &(o0, nv) in &b {
            assert_eq!(o0, next);
            assert!(matches!(nv, 1 | 2));
            next += nv * 16;
        }
        assert_eq!(next, n);
    }
    assert_eq!(channel_blocks(112), vec![(0, 2), (32, 2), (64, 2), (96, 1)]);
}

#[test]
#[should_panic(expected = "cin % 16")]
fn input_grad_refuses_cin_3() {
    let d = dims(2, 2, 3, 16);
    let plan = auto_plan(Kernels::Reference, &d);
    let (dy_pad, w) = (vec![0.0; d.out_pad_len()], vec![0.0; d.weight_len()]);
    let mut dx = vec![0.0; 12];
    (plan.input_grad)(&d, InputGrads::new(&dy_pad, &w, &mut dx, &mut []));
}

/// Conv + pool run band by band (the plan's `forward` over a few rows into a small band buffer,
/// then `pool::forward_asm` over those rows), as the trainer runs conv1 and conv2, gives exactly
/// the bits of the whole layer followed by the whole pool: output and argmax codes; so does
/// the plan's fused conv + pool (`forward_pool`) where it has one.
#[test]
fn banded_conv_and_pool_give_the_bits_of_whole_layers() {
    use catdog::config::PoolDims;
    use catdog::layers::pool::OutPlace;
    let mut rng = avx512_test_rng!("banded conv + pool", 0x5eed_ba5d);
    for &(h, w, cin, cout, band) in &[
        (8, 8, 3, 32, 2),
        (6, 10, 16, 48, 2),
        (10, 6, 32, 64, 4),
        (12, 30, 3, 16, 6),
        (4, 52, 16, 16, 4),
        (8, 12, 32, 48, 4),
    ] {
        let d = ConvDims { h, w, cin, cout };
        let x = padded(&mut rng, h, w, cin, 0);
        let wts = rng.vec(d.weight_len());
        let bias = rng.vec(cout);
        let plan = auto_plan(Kernels::Fast, &d);
        // F(4x4) computes whole 4-row tiles: its bands are 4 rows.
        let tile_rows: usize = if plan.algo == Algo::Winograd4 { 4 } else { 2 };
        assert!(
            band % tile_rows == 0,
            "band {band} cuts {:?} tiles",
            plan.algo
        );
        let (wp, _) = packed(&plan, &d, &wts);
        let p = PoolDims { h, w, c: cout };
        let place = OutPlace::padded(&p);
        let out_len = (h / 2 + 2) * (w / 2 + 2) * cout;
        // Whole layer, then pool.
        let mut y = vec![0.0; d.out_len()];
        let mut scratch = vec![0.0; plan.scratch_len];
        (plan.forward)(
            &d,
            Forward::new(&x, &wp, Some(&bias), &mut y, 0..h, &mut scratch),
        );
        let (mut out_a, mut am_a) = (vec![0.0; out_len], vec![9u8; p.out_len()]);
        let mut pool = PoolOut {
            out: &mut out_a,
            place,
            argmax: Some(&mut am_a[..]),
        };
        (fns(Kernels::Fast).pool_forward)(&p, &y, &mut pool, 0..p.h / 2);
        // Bands through one small buffer.
        let mut yb = vec![f32::NAN; band * w * cout];
        let (mut out_b, mut am_b) = (vec![0.0; out_len], vec![9u8; p.out_len()]);
        let mut pool = PoolOut {
            out: &mut out_b,
            place,
            argmax: Some(&mut am_b[..]),
        };
        for y0 in (0..h).step_by(band) {
            let y1 = (y0 + band).min(h);
            (plan.forward)(
                &d,
                Forward::new(&x, &wp, Some(&bias), &mut yb, y0..y1, &mut scratch),
            );
            catdog::layers::pool::forward_asm(avx512(), &p, &yb, &mut pool, y0 / 2..y1 / 2);
        }
        assert!(
            out_a
                .iter()
                .zip(&out_b)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "pooled output differs ({d:?}, band {band})"
        );
        assert_eq!(am_a, am_b, "argmax codes differ ({d:?}, band {band})");
        // The fused conv + pool (F(4x4): the pool in the output transform), in the same bands.
        if let Some(fused) = plan.forward_pool {
            let (mut out_c, mut am_c) = (vec![0.0; out_len], vec![9u8; p.out_len()]);
            let pool = PoolOut {
                out: &mut out_c,
                place,
                argmax: Some(&mut am_c[..]),
            };
            fused_in_bands(fused, &d, [&x, &wp, &bias], band, &mut scratch, pool);
            let same = out_a.iter().zip(&out_c);
            assert!(
                same.into_iter().all(|(a, c)| a.to_bits() == c.to_bits()),
                "fused pooled output differs ({d:?}, band {band})"
            );
            assert_eq!(am_a, am_c, "fused argmax codes differ ({d:?}, band {band})");
        }
    }
}

/// The direct plan's fused conv + ReLU + pool forward (`forward_pool`) gives the bits of
/// `forward` followed by `pool::forward_asm`: pooled values (padded and flat places) and, when
/// asked for, argmax codes; in the trainer's 2-row bands and over the whole layer at once. The
/// inputs make every code occur: the bottom half of each image is constant in 8 x 8 blocks, so
/// neighbouring conv outputs tie exactly (the first maximum wins), and the biases of every
/// third channel are very negative, so ReLU blocks whole windows (code 4). Both algorithms
/// with a fused kernel: direct, and F(4,3) along rows where it applies (1 to 3 input channels,
/// widths in 4s).
#[test]
fn fused_conv_pool_gives_the_bits_of_conv_then_pool() {
    use catdog::config::PoolDims;
    use catdog::kernels::conv::POOL_TILES;
    use catdog::layers::conv::fused_pool_applies;
    use catdog::layers::pool::{forward_asm, OutPlace};
    if avx512_or_skip("fused conv + pool").is_none() {
        return;
    }
    // Which shapes have the fused kernel: 32-channel blocks and even sides.
    for (h, w, cout, fused) in [(4, 4, 32, true), (4, 4, 48, false), (4, 5, 32, false)] {
        let d = ConvDims { h, w, cin: 3, cout };
        assert_eq!(fused_pool_applies(&d), fused, "{d:?}");
        let plan = plan(Algo::Direct, &d);
        assert_eq!(plan.forward_pool.is_some(), fused, "{d:?}");
    }
    let mut rng = Rng::new(0xf0_5ed);
    let (mut seen, mut ties) = ([0usize; 5], 0);
    for &(h, w, cin, cout) in &[
        (128, 128, 3, 32), // conv1: 20 tiles of 6 + 2 of 4 per row pair
        (6, 10, 3, 32),    // 6 + 4
        (4, 2, 3, 32),     // one 2 x 2 tile
        (8, 14, 16, 32),   // 6 + 4 + 4
        (6, 12, 32, 64),   // 6 + 6, two channel blocks
        (4, 8, 32, 96),    // 4 + 4, three blocks
        (2, 6, 256, 32),   // split reduction: 3 chunks
        (2, 4, 1024, 64),  // 6 chunks (kernel row x 512 channels)
        (6, 12, 3, 32),    // F(4,3) along rows: 3 tiles (one pair and an odd one)
        (4, 8, 1, 64),     // rows: one input channel, two blocks
        (2, 20, 2, 32),    // rows: two input channels, 5 tiles
    ] {
        let d = ConvDims { h, w, cin, cout };
        println!("{d:?}: tiles {:?}", row_tile_widths(w, POOL_TILES));
        // Input: random top half, bottom half constant over 8 x 8 blocks.
        let mut x = padded(&mut rng, h, w, cin, 0);
        let blocks = rng.vec(h.div_ceil(8) * w.div_ceil(8) * cin);
        for y in h / 2..h {
            for xx in 0..w {
                for c in 0..cin {
                    let b = ((y / 8) * w.div_ceil(8) + xx / 8) * cin + c;
                    x[((y + 1) * (w + 2) + xx + 1) * cin + c] = blocks[b];
                }
            }
        }
        let scale = 1.0 / (cin as f32).sqrt();
        let wts: Vec<f32> = rng.vec(d.weight_len()).iter().map(|v| v * scale).collect();
        let bias: Vec<f32> = (0..cout)
            .map(|c| rng.f() * 0.3 - if c % 3 == 0 { 4.0 } else { 0.0 })
            .collect();
        let mut algos = vec![Algo::Direct];
        if winograd_rows::applies(&d) {
            algos.push(Algo::WinogradRows);
        }
        for algo in algos {
            let plan = plan(algo, &d);
            let fused = plan.forward_pool.expect("a fused kernel for this shape");
            let (wp, _) = packed(&plan, &d, &wts);
            let mut scratch = vec![0.0; plan.scratch_len];
            let mut y = vec![0.0; d.out_len()];
            (plan.forward)(
                &d,
                Forward::new(&x, &wp, Some(&bias), &mut y, 0..h, &mut scratch),
            );
            let p = PoolDims { h, w, c: cout };
            // Windows whose positive maximum occurs at two or more positions.
            for i in 0..h / 2 {
                for j in 0..w / 2 {
                    for c in 0..cout {
                        let at =
                            |dy: usize, dx: usize| y[((2 * i + dy) * w + 2 * j + dx) * cout + c];
                        let v = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                        let m = v.iter().fold(0.0f32, |m, &x| m.max(x));
                        ties += (m > 0.0 && v.iter().filter(|&&x| x == m).count() > 1) as usize;
                    }
                }
            }
            for place in [OutPlace::padded(&p), OutPlace::flat(&p)] {
                let out_len = place.off + (h / 2) * place.row_stride + place.off;
                for codes in [true, false] {
                    let what = format!("{algo:?} {d:?} {place:?} codes {codes}");
                    let (mut out_a, mut am_a) = (vec![f32::NAN; out_len], vec![9u8; p.out_len()]);
                    let mut pool = PoolOut {
                        out: &mut out_a,
                        place,
                        argmax: codes.then_some(&mut am_a[..]),
                    };
                    forward_asm(avx512(), &p, &y, &mut pool, 0..h / 2);
                    if codes {
                        for &c in &am_a {
                            seen[c as usize] += 1;
                        }
                    }
                    for band in [2, h] {
                        let (mut out_b, mut am_b) =
                            (vec![f32::NAN; out_len], vec![9u8; p.out_len()]);
                        let pool = PoolOut {
                            out: &mut out_b,
                            place,
                            argmax: codes.then_some(&mut am_b[..]),
                        };
                        fused_in_bands(fused, &d, [&x, &wp, &bias], band, &mut scratch, pool);
                        let differ = out_a
                            .iter()
                            .zip(&out_b)
                            .position(|(a, b)| a.to_bits() != b.to_bits());
                        assert_eq!(differ, None, "pooled values differ ({what}, band {band})");
                        assert_eq!(am_a, am_b, "argmax codes differ ({what}, band {band})");
                    }
                }
            }
        }
    }
    println!("argmax codes 0..4 seen: {seen:?}, windows with tied maxima: {ties}");
    assert!(seen.iter().all(|&n| n > 100), "codes seen {seen:?}");
    assert!(ties > 1000, "only {ties} tied windows");
}

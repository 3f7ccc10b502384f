//! Every non-conv kernel: asm vs scalar reference on awkward sizes, finite-difference gradient
//! checks, and hand-computed values. Asm tests print a note and skip without AVX-512.

use approx::assert_relative_eq;
use catdog::config::Kernels;
use catdog::config::PoolDims;
use catdog::layers::fc::{self, FcDims, FcForward, FcWeightGrads};
use catdog::layers::pool::{OutPlace, PoolOut};
use catdog::update::Momentum;
use std::ops::Range;

#[path = "common/kernels.rs"]
mod kernels;
use catdog::testing::fns;
use kernels::{assert_close, avx512_or_note, avx512_rng, avx512_test_rng, paths, Rng};

/// `|a - b| <= eps * (1 + |b|)` elementwise.
#[track_caller]
fn close(a: &[f32], b: &[f32], eps: f32) {
    assert_close("asm vs reference", a, b, |i| eps * (1.0 + b[i].abs()), 0.0);
}

// ---------------------------------------------------------------- loader

#[test]
fn load_image_asm_matches_reference() {
    let mut rng = avx512_test_rng!("load_image", 1);
    for &(h, w) in &[
        (1, 1),
        (2, 5),
        (3, 16),
        (4, 17),
        (5, 31),
        (3, 32),
        (7, 33),
        (128, 128),
        (6, 100),
    ] {
        let src = rng.bytes(h * w * 3);
        for flip in [false, true] {
            let len = (h + 2) * (w + 2) * 3;
            let mut a = vec![-7.0f32; len];
            let mut r = vec![-7.0f32; len];
            (fns(Kernels::Fast).load_image)(h, w, &src, &mut a, flip);
            (fns(Kernels::Reference).load_image)(h, w, &src, &mut r, flip);
            assert_eq!(a, r, "h={h} w={w} flip={flip}");
            // border untouched
            assert!(a[..(w + 2) * 3].iter().all(|&v| v == -7.0));
            assert_eq!(a[(w + 2) * 3], -7.0);
        }
    }
}

#[test]
fn load_image_reference_values_and_flip() {
    let (h, w) = (2, 3);
    let src: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
    let mut d = vec![0.0f32; 4 * 5 * 3];
    (fns(Kernels::Reference).load_image)(h, w, &src, &mut d, false);
    let at = |d: &[f32], y: usize, x: usize, c: usize| d[((y + 1) * 5 + x + 1) * 3 + c];
    assert_eq!(at(&d, 0, 0, 0), 0.0);
    assert_eq!(at(&d, 1, 2, 2), 255.0 / 255.0);
    assert_eq!(at(&d, 0, 1, 1), 60.0 * (1.0 / 255.0));
    let mut f = vec![0.0f32; 4 * 5 * 3];
    (fns(Kernels::Reference).load_image)(h, w, &src, &mut f, true);
    for y in 0..2 {
        for x in 0..3 {
            for c in 0..3 {
                assert_eq!(at(&f, y, x, c), at(&d, y, 2 - x, c));
            }
        }
    }
}

// ---------------------------------------------------------------- maxpool

fn pool_case(rng: &mut Rng, d: PoolDims, ties: bool) -> Vec<f32> {
    (0..d.h * d.w * d.c)
        .map(|_| {
            if ties {
                // few distinct values: many ties and many windows that are all <= 0
                ((rng.next_u64() >> 62) as f32 - 1.0).max(0.0) * 0.5
            } else {
                rng.f().max(0.0)
            }
        })
        .collect()
}

/// Pools all of `y` on `path`'s kernels into `out` at `place` (codes into `argmax` when given).
fn pool_forward(
    path: Kernels,
    d: &PoolDims,
    y: &[f32],
    out: &mut [f32],
    place: OutPlace,
    argmax: Option<&mut [u8]>,
) {
    let mut pool = PoolOut { out, place, argmax };
    (fns(path).pool_forward)(d, y, &mut pool, 0..d.h / 2)
}

#[test]
fn maxpool_asm_matches_reference() {
    let mut rng = avx512_test_rng!("maxpool", 2);
    for &(h, w, c) in &[
        (2, 2, 16),
        (4, 6, 32),
        (6, 2, 48),
        (10, 14, 16),
        (128, 128, 32),
    ] {
        let d = PoolDims { h, w, c };
        for ties in [false, true] {
            let y = pool_case(&mut rng, d, ties);
            for padded in [false, true] {
                let place = if padded {
                    OutPlace::padded(&d)
                } else {
                    OutPlace::flat(&d)
                };
                let olen = (h / 2 + 2) * (w / 2 + 2) * c;
                let (mut oa, mut or) = (vec![9.0f32; olen], vec![9.0f32; olen]);
                let (mut aa, mut ar) = (vec![99u8; d.out_len()], vec![99u8; d.out_len()]);
                pool_forward(Kernels::Fast, &d, &y, &mut oa, place, Some(&mut aa));
                pool_forward(Kernels::Reference, &d, &y, &mut or, place, Some(&mut ar));
                assert_eq!(oa, or, "{d:?} ties={ties}");
                assert_eq!(aa, ar, "{d:?} ties={ties}");
                // Without argmax (inference): the same maxima, bit for bit, on both paths.
                for path in [Kernels::Fast, Kernels::Reference] {
                    let mut om = vec![9.0f32; olen];
                    pool_forward(path, &d, &y, &mut om, place, None);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&om), bits(&oa), "{path:?} {d:?} ties={ties} no argmax");
                }
                assert!(aa.iter().all(|&a| a <= 4));
                if ties && d.out_len() >= 256 {
                    assert!(aa.contains(&4) && aa.contains(&0) && aa.contains(&3));
                }
            }
            let argmax = {
                let mut o = vec![0.0f32; d.out_len()];
                let mut a = vec![0u8; d.out_len()];
                pool_forward(
                    Kernels::Reference,
                    &d,
                    &y,
                    &mut o,
                    OutPlace::flat(&d),
                    Some(&mut a),
                );
                a
            };
            let dout = rng.vec(d.out_len());
            let plen = (h + 2) * (w + 2) * c;
            let (mut ga, mut gr) = (vec![5.0f32; plen], vec![5.0f32; plen]);
            (fns(Kernels::Fast).pool_backward)(&d, &dout, &argmax, &mut ga);
            (fns(Kernels::Reference).pool_backward)(&d, &dout, &argmax, &mut gr);
            assert_eq!(ga, gr, "{d:?} backward");
            // border untouched, interior fully written
            for yy in 0..h + 2 {
                for xx in 0..w + 2 {
                    let border = yy == 0 || xx == 0 || yy == h + 1 || xx == w + 1;
                    for ch in 0..c {
                        let v = ga[(yy * (w + 2) + xx) * c + ch];
                        assert_eq!(v == 5.0, border, "({yy},{xx},{ch})");
                    }
                }
            }
        }
    }
}

#[test]
fn maxpool_ties_first_wins_and_code_4() {
    let d = PoolDims { h: 2, w: 2, c: 16 };
    // window positions tl, tr, bl, br; channel ch gets a pattern
    let pats: [[f32; 4]; 6] = [
        [1.0, 1.0, 1.0, 1.0],     // tie everywhere -> 0
        [0.5, 2.0, 2.0, 1.0],     // tie tr/bl -> 1
        [0.0, 0.0, 0.0, 0.0],     // all zero -> 4
        [0.1, 0.2, 0.3, 0.3],     // tie bl/br -> 2
        [-1.0, -2.0, -0.5, -3.0], // negative -> 4
        [0.0, 0.0, 0.0, 0.25],    // -> 3
    ];
    let want = [0u8, 1, 4, 2, 4, 3];
    let mut y = vec![0.0f32; 4 * 16];
    for (ch, p) in pats.iter().enumerate() {
        for t in 0..4 {
            y[t * 16 + ch] = p[t];
        }
    }
    for &path in paths() {
        let mut o = vec![0.0f32; 16];
        let mut a = vec![0u8; 16];
        pool_forward(path, &d, &y, &mut o, OutPlace::flat(&d), Some(&mut a));
        assert_eq!(&a[..6], &want, "{path:?}");
        assert_eq!(&o[..6], &[1.0, 2.0, 0.0, 0.3, -0.5, 0.25], "{path:?}");
        // backward: gradient 1 to the chosen position only
        let dout = vec![1.0f32; 16];
        let mut g = vec![0.0f32; 16 * 16];
        (fns(path).pool_backward)(&d, &dout, &a, &mut g);
        #[allow(clippy::needless_range_loop)]
        for ch in 0..6 {
            for t in 0..4 {
                let at = ((t / 2 + 1) * 4 + t % 2 + 1) * 16 + ch;
                let expect = if want[ch] as usize == t { 1.0 } else { 0.0 };
                assert_eq!(g[at], expect, "{path:?} ch {ch} pos {t}");
            }
        }
    }
}

#[test]
fn maxpool_backward_is_gradient_of_forward() {
    // distinct positive values (no ties): L = sum(dout * pool(y)); dL/dy by finite differences
    let d = PoolDims { h: 4, w: 6, c: 16 };
    let mut rng = Rng::new(3);
    let n = d.h * d.w * d.c;
    let y: Vec<f32> = (0..n)
        .map(|i| 0.1 + ((i * 7919) % n) as f32 / n as f32)
        .collect();
    let dout = rng.vec(d.out_len());
    for &path in paths() {
        let lossf = |y: &[f32]| -> f64 {
            let mut o = vec![0.0f32; d.out_len()];
            let mut a = vec![0u8; d.out_len()];
            pool_forward(path, &d, y, &mut o, OutPlace::flat(&d), Some(&mut a));
            o.iter()
                .zip(&dout)
                .map(|(&o, &g)| o as f64 * g as f64)
                .sum()
        };
        let mut o = vec![0.0f32; d.out_len()];
        let mut a = vec![0u8; d.out_len()];
        pool_forward(path, &d, &y, &mut o, OutPlace::flat(&d), Some(&mut a));
        let mut g = vec![0.0f32; (d.h + 2) * (d.w + 2) * d.c];
        (fns(path).pool_backward)(&d, &dout, &a, &mut g);
        let h = 1e-3f32;
        for i in (0..n).step_by(7) {
            let (yy, xx, ch) = (i / (d.w * d.c), (i / d.c) % d.w, i % d.c);
            let mut yp = y.clone();
            yp[i] += h;
            let mut ym = y.clone();
            ym[i] -= h;
            let fd = (lossf(&yp) - lossf(&ym)) / (2.0 * h as f64);
            let an = g[((yy + 1) * (d.w + 2) + xx + 1) * d.c + ch] as f64;
            assert!((fd - an).abs() < 1e-2, "{path:?} i={i}: fd {fd} vs {an}");
        }
    }
}

// ------------------------------------------------------------------- fc

/// One fc layer's kernels on one path, the unsafe calls wrapped: every buffer the tests pass
/// holds what `d` says it must.
#[derive(Clone, Copy)]
struct Fc {
    path: Kernels,
    d: FcDims,
}

impl Fc {
    fn new(path: Kernels, rows: usize, k: usize, n: usize) -> Self {
        Fc {
            path,
            d: FcDims { rows, k, n },
        }
    }
    fn forward(
        self,
        (x, w, b): (&[f32], &[f32], &[f32]),
        relu: bool,
        cols: Range<usize>,
        y: &mut [f32],
    ) {
        // SAFETY: `y` holds `rows x n` floats.
        unsafe {
            (fns(self.path).fc_forward)(self.d, FcForward::new(x, w, b, relu, y.as_mut_ptr(), cols))
        }
    }
    fn input_grad(self, dy: &[f32], w: &[f32], dx: &mut [f32], ks: Range<usize>) {
        // SAFETY: `dx` holds `rows x k` floats.
        unsafe { (fns(self.path).fc_input_grad)(self.d, dy, w, dx.as_mut_ptr(), ks) }
    }
    fn weight_grad(
        self,
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        cols: Range<usize>,
    ) {
        (fns(self.path).fc_weight_grad)(self.d, FcWeightGrads::new(x, dy, dw, db, cols))
    }
}

/// Random data of an fc layer of `rows` x `k` inputs and `n` neurons: inputs, weights, biases
/// and an output gradient, drawn in that order.
fn fc_data(rng: &mut Rng, rows: usize, k: usize, n: usize) -> [Vec<f32>; 4] {
    let x = rng.vec(rows * k);
    let w = rng.vec(n * k);
    let b = rng.vec(n);
    [x, w, b, rng.vec(rows * n)]
}

const FC_SIZES: &[(usize, usize, usize)] = &[
    (1, 16, 1),
    (3, 32, 5),
    (5, 48, 7),
    (4, 64, 4),
    (7, 80, 13),
    (16, 128, 1),
    (16, 4096 + 64, 18),
    (9, 2048 * 2 + 48, 3),
    (70, 32, 133), // more than one forward block of 64 rows x 128 neurons
];

/// The kernels checked against the reference: the portable ones, and the fast ones where this
/// CPU has AVX-512 ([`paths`]).
fn checked_paths() -> impl Iterator<Item = Kernels> {
    paths().iter().copied().filter(|&k| k != Kernels::Reference)
}

/// `kern`'s fc layer against the reference.
fn fc_forward_against_reference(kern: Kernels) {
    let mut rng = Rng::new(4);
    for &(rows, k, n) in FC_SIZES {
        let x = rng.vec(rows * k);
        let w = rng.vec(n * k);
        let b = rng.vec(n);
        for relu in [false, true] {
            for cols in [0..n, n / 3..n, 0..n.div_ceil(2), n / 2..n / 2 + 1] {
                let mut ya = vec![42.0f32; rows * n];
                let mut yr = vec![42.0f32; rows * n];
                Fc::new(kern, rows, k, n).forward((&x, &w, &b), relu, cols.clone(), &mut ya);
                Fc::new(Kernels::Reference, rows, k, n).forward(
                    (&x, &w, &b),
                    relu,
                    cols.clone(),
                    &mut yr,
                );
                close(&ya, &yr, 1e-4 * (k as f32).sqrt());
                for r in 0..rows {
                    for j in 0..n {
                        if !cols.contains(&j) {
                            assert_eq!(ya[r * n + j], 42.0, "wrote outside cols");
                        } else if relu {
                            assert!(ya[r * n + j] >= 0.0);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn fc_forward_matches_reference() {
    for kern in checked_paths() {
        fc_forward_against_reference(kern);
    }
}

/// fc1's inference forward on packed weights against the reference (bias, ReLU), on rows that
/// need every tile width, neuron counts with a last block of 16, inputs across chunks of 2,048
/// and strides padded or not; its bits depend neither on the rows a call covers (each output
/// one sum in input order) nor on how the neuron blocks are split between calls (threads).
#[test]
fn fc_forward_packed_matches_reference_and_its_bits_do_not_depend_on_the_split() {
    let mut rng = avx512_test_rng!("fc forward on packed weights", 21);
    let f = fns(Kernels::Fast)
        .fc_forward_packed
        .expect("asm path packs fc1");
    assert!(fns(Kernels::Reference).fc_forward_packed.is_none());
    for &(rows, k, n) in &[
        (1, 16, 16),
        (3, 48, 48),
        (14, 32, 32),
        (17, 2048 + 16, 80),
        (64, 4096 + 48, 128),
        (70, 5008, 16), // two chunks of 2,048 and a short one
    ] {
        for stride in [fc::infer_stride(k), k] {
            let x = rng.vec((rows - 1) * stride + k);
            let w = rng.vec(n * k);
            let b = rng.vec(n);
            let mut wt = vec![0.0f32; fc::packed_inference_len(k, n)];
            fc::pack_inference(k, n, &w, &mut wt);
            let d = FcDims { rows, k, n };
            let mut y = vec![42.0f32; rows * n];
            // SAFETY: y holds rows x n floats.
            unsafe { f(d, (&x, stride), &wt, &b, y.as_mut_ptr(), 0..n) };
            let contiguous: Vec<f32> = (0..rows)
                .flat_map(|r| x[r * stride..r * stride + k].to_vec())
                .collect();
            let mut yr = vec![0.0f32; rows * n];
            Fc::new(Kernels::Reference, rows, k, n).forward(
                (&contiguous, &w, &b),
                true,
                0..n,
                &mut yr,
            );
            close(&y, &yr, 1e-4 * (k as f32).sqrt());
            assert!(y.iter().all(|&v| v >= 0.0), "ReLU");
            // A thread with no neurons (an empty part of a team) writes nothing.
            let mut none = vec![42.0f32; rows * n];
            // SAFETY: as above.
            unsafe { f(d, (&x, stride), &wt, &b, none.as_mut_ptr(), n - 16..n - 16) };
            assert!(none.iter().all(|&v| v == 42.0), "an empty range wrote");
            // Row by row, and neuron block by neuron block: the same bits.
            let mut y1 = vec![0.0f32; rows * n];
            for r in 0..rows {
                let d1 = FcDims { rows: 1, k, n };
                let xr = &x[r * stride..r * stride + k];
                for c0 in (0..n).step_by(32) {
                    let cols = c0..(c0 + 32).min(n);
                    // SAFETY: the row's n outputs lie inside y1.
                    unsafe { f(d1, (xr, stride), &wt, &b, y1.as_mut_ptr().add(r * n), cols) };
                }
            }
            assert!(y == y1, "rows {rows}, k {k}, n {n}: other bits row by row");
        }
    }
}

#[test]
#[should_panic(expected = "whole blocks of 32")]
fn fc_forward_packed_refuses_a_split_inside_a_block() {
    // The split is checked before anything else: the same refusal on any CPU.
    let (k, n) = (16, 64);
    let (x, w, b) = (vec![1.0f32; k], vec![1.0f32; n * k], vec![0.0f32; n]);
    let mut wt = vec![0.0f32; fc::packed_inference_len(k, n)];
    fc::pack_inference(k, n, &w, &mut wt);
    let mut y = vec![0.0f32; n];
    let f = fns(Kernels::Fast).fc_forward_packed.unwrap();
    // SAFETY: y holds n floats (the call refuses before writing).
    unsafe {
        f(
            FcDims { rows: 1, k, n },
            (&x, k),
            &wt,
            &b,
            y.as_mut_ptr(),
            16..64,
        )
    };
}

#[test]
fn fc_fused_sgd_gives_the_bits_of_the_separate_passes() {
    let mut rng = avx512_test_rng!("fc fused backward + sgd", 11);
    // k a multiple of 64; rows and n also off the 4x4 tile grid.
    for &(rows, k, n) in &[
        (16, 256, 8),
        (5, 128, 7),
        (1, 64, 1),
        (9, 192, 13),
        (16, 2048, 130),
    ] {
        let x = rng.vec(rows * k);
        let w = rng.vec(n * k);
        let dy = rng.vec(rows * n);
        let scale = 0.01f32 / 16.0;
        // Separate passes, as the unfused trainer runs them.
        let mut dx_ref = vec![42.0f32; rows * k];
        let mut dw = vec![0.0f32; n * k];
        let mut db = vec![0.0f32; n];
        let mut w_ref = w.clone();
        Fc::new(Kernels::Fast, rows, k, n).input_grad(&dy, &w, &mut dx_ref, 0..k);
        Fc::new(Kernels::Fast, rows, k, n).weight_grad(&x, &dy, &mut dw, &mut db, 0..n);
        (fns(Kernels::Fast).sgd)(&mut w_ref, &dw, scale);
        // Fused, in two disjoint input ranges (as two threads would).
        let mut dx = vec![42.0f32; rows * k];
        let mut w_f = w.clone();
        let mid = (k / 64 / 2) * 64;
        for ks in [0..mid, mid..k] {
            unsafe {
                fc::backward_fused_sgd(
                    FcDims { rows, k, n },
                    (&x, &dy),
                    w_f.as_mut_ptr(),
                    scale,
                    dx.as_mut_ptr(),
                    ks,
                )
            };
        }
        assert!(
            dx.iter()
                .zip(&dx_ref)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "input gradient differs ({rows}x{k}x{n})"
        );
        assert!(
            w_f.iter()
                .zip(&w_ref)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "updated weights differ ({rows}x{k}x{n})"
        );
    }
}

/// `kern`'s fc layer against the reference.
fn fc_backward_against_reference(kern: Kernels) {
    let mut rng = Rng::new(5);
    for &(rows, k, n) in FC_SIZES {
        let x = rng.vec(rows * k);
        let w = rng.vec(n * k);
        let dy = rng.vec(rows * n);
        // ks.start is always a multiple of 16, ks.end need not be (masked tail)
        for ks in [
            0..k,
            16..k,
            0..k - 16 * (k / 32),
            0..16,
            (k / 16 / 2) * 16..k,
            0..k - 5,
            0..3,
            16..k - 9,
        ] {
            let mut da = vec![42.0f32; rows * k];
            let mut dr = vec![42.0f32; rows * k];
            Fc::new(kern, rows, k, n).input_grad(&dy, &w, &mut da, ks.clone());
            Fc::new(Kernels::Reference, rows, k, n).input_grad(&dy, &w, &mut dr, ks.clone());
            close(&da, &dr, 1e-4 * (n as f32).sqrt());
            for r in 0..rows {
                for i in 0..k {
                    if !ks.contains(&i) {
                        assert_eq!(da[r * k + i], 42.0, "dx written outside ks");
                    }
                }
            }
        }
        for cols in [0..n, n / 3..n, 0..n.div_ceil(2), n / 2..n / 2 + 1] {
            let m = cols.len();
            let mut wa = vec![42.0f32; m * k + 5];
            let mut wr = vec![42.0f32; m * k + 5];
            let mut ba = vec![42.0f32; m + 3];
            let mut br = vec![42.0f32; m + 3];
            Fc::new(kern, rows, k, n).weight_grad(&x, &dy, &mut wa, &mut ba, cols.clone());
            Fc::new(Kernels::Reference, rows, k, n).weight_grad(
                &x,
                &dy,
                &mut wr,
                &mut br,
                cols.clone(),
            );
            close(&wa, &wr, 1e-5 * rows as f32);
            close(&ba, &br, 1e-5 * rows as f32);
            assert!(wa[m * k..].iter().all(|&v| v == 42.0));
            assert!(ba[m..].iter().all(|&v| v == 42.0));
        }
    }
}

#[test]
fn fc_backward_matches_reference() {
    for kern in checked_paths() {
        fc_backward_against_reference(kern);
    }
}

#[test]
fn fc_gradients_match_finite_differences() {
    // linear layer, L = sum_r,j g[r][j] * y[r][j]; dL/dx = input_grad(g), dL/dw = weight_grad
    let (rows, k, n) = (3, 32, 5);
    let [x, w, b, g] = fc_data(&mut Rng::new(6), rows, k, n);
    for &path in paths() {
        let lossf = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
            let mut y = vec![0.0f32; rows * n];
            Fc::new(path, rows, k, n).forward((x, w, b), false, 0..n, &mut y);
            y.iter().zip(&g).map(|(&y, &g)| y as f64 * g as f64).sum()
        };
        let mut dx = vec![0.0f32; rows * k];
        Fc::new(path, rows, k, n).input_grad(&g, &w, &mut dx, 0..k);
        let mut dw = vec![0.0f32; n * k];
        let mut db = vec![0.0f32; n];
        Fc::new(path, rows, k, n).weight_grad(&x, &g, &mut dw, &mut db, 0..n);
        // Central differences (step 1e-2) of every 5th input, 7th weight and each bias.
        let checks: [(&str, &[f32], &[f32], usize); 3] =
            [("dx", &dx, &x, 5), ("dw", &dw, &w, 7), ("db", &db, &b, 1)];
        for (name, grad, base, step) in checks {
            let h = 1e-2f32;
            for i in (0..base.len()).step_by(step) {
                let at = |e: f32| {
                    let mut p = base.to_vec();
                    p[i] += e;
                    match name {
                        "dx" => lossf(&p, &w, &b),
                        "dw" => lossf(&x, &p, &b),
                        _ => lossf(&x, &w, &p),
                    }
                };
                let d = (at(h) - at(-h)) / (2.0 * h as f64);
                assert!(
                    (d - grad[i] as f64).abs() < 2e-3,
                    "{path:?} {name}[{i}] fd {d} vs {}",
                    grad[i]
                );
            }
        }
    }
}

#[test]
fn fc_forward_hand_computed() {
    // x = [1, 2, 0, ...], w0 = [1, 1, ...] (16), w1 = [-1, ...]; bias [0.5, 0]
    let k = 16;
    let mut x = vec![0.0f32; k];
    x[0] = 1.0;
    x[1] = 2.0;
    let mut w = vec![1.0f32; k];
    w.extend(vec![-1.0f32; k]);
    let b = [0.5f32, 0.0];
    for &path in paths() {
        let mut y = [0.0f32; 2];
        Fc::new(path, 1, k, 2).forward((&x, &w, &b), false, 0..2, &mut y);
        assert_eq!(y, [3.5, -3.0]);
        Fc::new(path, 1, k, 2).forward((&x, &w, &b), true, 0..2, &mut y);
        assert_eq!(y, [3.5, 0.0]);
    }
}

// ---------------------------------------------------------------- activations, loss

#[test]
fn relu_backward_asm_matches_reference() {
    let mut rng = avx512_test_rng!("relu_backward", 7);
    for n in [1, 15, 16, 17, 33, 100, 4096] {
        let y: Vec<f32> = rng
            .vec(n)
            .into_iter()
            .map(|v| if v < -0.5 { 0.0 } else { v })
            .collect();
        let dy = rng.vec(n);
        let (mut a, mut r) = (dy.clone(), dy.clone());
        (fns(Kernels::Fast).relu_backward)(&y, &mut a);
        (fns(Kernels::Reference).relu_backward)(&y, &mut r);
        assert_eq!(a, r);
        for i in 0..n {
            assert_eq!(a[i], if y[i] > 0.0 { dy[i] } else { 0.0 });
        }
    }
}

#[test]
fn sigmoid_bce_reference_hand_computed() {
    let mut p = [0.0f32; 3];
    let mut dz = [0.0f32; 3];
    let l = (fns(Kernels::Reference).sigmoid_bce)(&[0.0, 0.0, 2.0], &[0, 1, 1], &mut p, &mut dz);
    assert_eq!(p[0], 0.5);
    assert_eq!(dz, [0.5, -0.5, 1.0 / (1.0 + (-2.0f32).exp()) - 1.0]);
    let want = 2.0 * std::f64::consts::LN_2 + (1.0 + (-2.0f64).exp()).ln();
    assert_relative_eq!(l as f64, want, max_relative = 1e-5);
    // extremes stay finite: loss saturates at -ln(1e-7)
    let l =
        (fns(Kernels::Reference).sigmoid_bce)(&[-100.0, 100.0], &[1, 0], &mut p[..2], &mut dz[..2]);
    assert_relative_eq!(l, 2.0 * 16.118_095, max_relative = 1e-4);
    let mut q = [0.0f32; 2];
    (fns(Kernels::Reference).sigmoid)(&[-100.0, 100.0], &mut q);
    assert!(q[0] >= 0.0 && q[0] < 1e-40 && q[1] == 1.0);
}

#[test]
fn sigmoid_bce_asm_matches_reference() {
    let mut rng = avx512_test_rng!("sigmoid_bce", 8);
    for n in [1, 2, 15, 16, 17, 31, 64, 100, 1000] {
        let z: Vec<f32> = (0..n)
            .map(|i| {
                if i % 10 == 3 {
                    rng.f() * 100.0
                } else {
                    rng.f() * 12.0
                }
            })
            .collect();
        let y: Vec<u8> = (0..n).map(|_| (rng.next_u64() >> 63) as u8).collect();
        let (mut pa, mut pr) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (mut da, mut dr) = (vec![0.0f32; n], vec![0.0f32; n]);
        let la = (fns(Kernels::Fast).sigmoid_bce)(&z, &y, &mut pa, &mut da);
        let lr = (fns(Kernels::Reference).sigmoid_bce)(&z, &y, &mut pr, &mut dr);
        for i in 0..n {
            assert!(
                (pa[i] - pr[i]).abs() <= 2.5e-7 * pr[i].abs().max(1e-30) + 1e-37,
                "p z={} {} vs {}",
                z[i],
                pa[i],
                pr[i]
            );
            assert!((da[i] - dr[i]).abs() <= 1e-6, "dz");
        }
        assert_relative_eq!(la, lr, max_relative = 1e-5);
        let mut ps = vec![0.0f32; n];
        (fns(Kernels::Fast).sigmoid)(&z, &mut ps);
        assert_eq!(ps, pa);
    }
}

#[test]
fn vector_exp_log_accuracy_over_a_sweep() {
    // sigmoid over a dense sweep of z and the loss of p near 0 and 1 stress exp and log
    if avx512_or_note("exp/log sweep").is_none() {
        return;
    }
    let n = 20001;
    let z: Vec<f32> = (0..n)
        .map(|i| -40.0 + 80.0 * i as f32 / (n - 1) as f32)
        .collect();
    let mut pa = vec![0.0f32; n];
    (fns(Kernels::Fast).sigmoid)(&z, &mut pa);
    let mut worst = 0.0f64;
    for i in 0..n {
        let exact = 1.0 / (1.0 + (-(z[i] as f64)).exp());
        worst = worst.max((pa[i] as f64 - exact).abs() / exact);
    }
    assert!(worst < 4e-7, "sigmoid worst relative error {worst}");
    for y in [0u8, 1] {
        let labels = vec![y; n];
        let (mut p, mut d) = (vec![0.0f32; n], vec![0.0f32; n]);
        for i in 0..n {
            let mut one_p = [0.0f32];
            let mut one_d = [0.0f32];
            let la = (fns(Kernels::Fast).sigmoid_bce)(
                &z[i..i + 1],
                &labels[..1],
                &mut one_p,
                &mut one_d,
            ) as f64;
            let pp = one_p[0] as f64;
            let exact = if y == 1 {
                -(pp + 1e-7).ln()
            } else {
                -(1.0 - pp + 1e-7).ln()
            };
            assert!(
                (la - exact).abs() <= 1e-6 * exact.abs() + 1e-6,
                "z={} loss {la} vs {exact}",
                z[i]
            );
        }
        let _ = (fns(Kernels::Fast).sigmoid_bce)(&z, &labels, &mut p, &mut d);
    }
}

#[test]
fn sigmoid_bce_dz_is_gradient_of_loss() {
    let z = [-3.0f32, -0.4, 0.0, 0.7, 2.5];
    let y = [1u8, 0, 1, 0, 1];
    for &path in paths() {
        let mut p = [0.0f32; 5];
        let mut dz = [0.0f32; 5];
        (fns(path).sigmoid_bce)(&z, &y, &mut p, &mut dz);
        for i in 0..5 {
            let f = |e: f32| {
                let mut p1 = [0.0f32];
                let mut d1 = [0.0f32];
                (fns(path).sigmoid_bce)(&[z[i] + e], &y[i..i + 1], &mut p1, &mut d1) as f64
            };
            let h = 1e-2;
            let fd = (f(h) - f(-h)) / (2.0 * h as f64);
            assert!(
                (fd - dz[i] as f64).abs() < 2e-3,
                "{path:?} z={}: fd {fd} vs dz {}",
                z[i],
                dz[i]
            );
        }
    }
}

// ---------------------------------------------------------------- update

#[test]
fn update_asm_matches_reference() {
    let mut rng = avx512_test_rng!("update", 9);
    for len in [1, 7, 16, 17, 100, 1000] {
        for slots in [1, 2, 3, 5] {
            let stride = len + 3;
            let src = rng.vec((slots - 1) * stride + len);
            let (mut a, mut r) = (vec![0.0f32; len + 1], vec![0.0f32; len + 1]);
            a[len] = 7.0;
            r[len] = 7.0;
            (fns(Kernels::Fast).sum_slots)(&src, slots, stride, &mut a[..len]);
            (fns(Kernels::Reference).sum_slots)(&src, slots, stride, &mut r[..len]);
            assert_eq!(a, r, "sum_slots len {len} slots {slots}");
            assert_eq!(a[len], 7.0);
        }
        let p0 = rng.vec(len);
        let g = rng.vec(len);
        let (mut pa, mut pr) = (p0.clone(), p0.clone());
        (fns(Kernels::Fast).sgd)(&mut pa, &g, 0.01 / 16.0);
        (fns(Kernels::Reference).sgd)(&mut pr, &g, 0.01 / 16.0);
        close(&pa, &pr, 1e-7);
        let v0 = rng.vec(len);
        let (mut pa, mut pr) = (p0.clone(), p0.clone());
        let (mut va, mut vr) = (v0.clone(), v0.clone());
        (fns(Kernels::Fast).sgd_momentum)(
            &mut pa,
            &g,
            &mut va,
            Momentum {
                lr: 0.05,
                scale: 1.0 / 16.0,
                momentum: 0.9,
                weight_decay: 1e-3,
            },
        );
        (fns(Kernels::Reference).sgd_momentum)(
            &mut pr,
            &g,
            &mut vr,
            Momentum {
                lr: 0.05,
                scale: 1.0 / 16.0,
                momentum: 0.9,
                weight_decay: 1e-3,
            },
        );
        close(&va, &vr, 1e-6);
        close(&pa, &pr, 1e-6);
    }
}

#[test]
fn update_hand_computed() {
    for &path in paths() {
        let mut p = [1.0f32, -2.0, 0.5];
        (fns(path).sgd)(&mut p, &[16.0, 32.0, -8.0], 0.01 / 16.0);
        assert_relative_eq!(p[0], 0.99, max_relative = 1e-6);
        assert_relative_eq!(p[1], -2.02, max_relative = 1e-6);
        assert_relative_eq!(p[2], 0.505, max_relative = 1e-6);
        // v = 0.9*1 + (0.5*2 + 0.1*1) = 2.0; p = 1 - 0.1*2 = 0.8
        let mut p = [1.0f32];
        let mut v = [1.0f32];
        (fns(path).sgd_momentum)(
            &mut p,
            &[2.0],
            &mut v,
            Momentum {
                lr: 0.1,
                scale: 0.5,
                momentum: 0.9,
                weight_decay: 0.1,
            },
        );
        assert_relative_eq!(v[0], 2.0, max_relative = 1e-6);
        assert_relative_eq!(p[0], 0.8, max_relative = 1e-6);
        let src = [1.0f32, 2.0, 10.0, 20.0, 100.0, 200.0];
        let mut d = [0.0f32; 2];
        (fns(path).sum_slots)(&src, 3, 2, &mut d);
        assert_eq!(d, [111.0, 222.0]);
    }
}

#[test]
fn fc_split_across_threads_matches_one_call() {
    // the trainer splits fc work by cols / ks ranges; two threads write one buffer at once
    if avx512_or_note("fc threads").is_none() {
        return;
    }
    #[derive(Clone, Copy)]
    struct P(*mut f32);
    unsafe impl Send for P {}
    unsafe impl Sync for P {}
    let (rows, k, n) = (16, 4096, 130);
    let [x, w, b, dy] = fc_data(&mut Rng::new(10), rows, k, n);
    let mut y1 = vec![0.0f32; rows * n];
    Fc::new(Kernels::Fast, rows, k, n).forward((&x, &w, &b), true, 0..n, &mut y1);
    let mut dx1 = vec![0.0f32; rows * k];
    Fc::new(Kernels::Fast, rows, k, n).input_grad(&dy, &w, &mut dx1, 0..k);
    for parts in [2usize, 3, 5] {
        let mut y2 = vec![0.0f32; rows * n];
        let mut dx2 = vec![0.0f32; rows * k];
        let (py, pdx) = (P(y2.as_mut_ptr()), P(dx2.as_mut_ptr()));
        std::thread::scope(|s| {
            for t in 0..parts {
                let (x, w, b, dy) = (&x, &w, &b, &dy);
                s.spawn(move || {
                    let (py, pdx) = (py, pdx);
                    let cols = n * t / parts..n * (t + 1) / parts;
                    let ks = (k / 16 * t / parts) * 16..(k / 16 * (t + 1) / parts) * 16;
                    unsafe {
                        (fns(Kernels::Fast).fc_forward)(
                            FcDims { rows, k, n },
                            FcForward::new(x, w, b, true, py.0, cols),
                        );
                        (fns(Kernels::Fast).fc_input_grad)(FcDims { rows, k, n }, dy, w, pdx.0, ks);
                    }
                });
            }
        });
        assert_eq!(y1, y2, "forward split in {parts}");
        assert_eq!(dx1, dx2, "input_grad split in {parts}");
    }
}

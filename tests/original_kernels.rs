//! The original tier (`src/core/original/`), routine by routine, and as a whole network.
//!
//! Every routine is checked two ways, on odd sizes (odd spatial sizes, odd filter and neuron
//! counts, so that the scalar tail paths run) and even ones:
//!
//! 1. against the plain scalar reference (`catdog::reference`), to a stated tolerance: the
//!    routine computes the right thing;
//! 2. bit for bit against a small scalar replica, in this file, of the routine's exact arithmetic
//!    (its FMA lanes, its reduction tree, its masks, its order of operations): the routine
//!    computes it the original's way. `replicas_are_sharp` shows that these replicas are sharp: a
//!    replica with a wrong mask, a wrong reduction order, a wrong stride or a misplaced FMA gives
//!    other bits on the same data.
//!
//! Then `OriginalNet::loss_and_gradients` against the fast tier's reference path and against
//! central differences of its own loss.
//!
//! Inputs fill whole buffers, borders included (the convolution reads its padded input's border
//! as it reads any other element), and outputs are pre-filled with a sentinel so that a routine
//! that writes too little or too much is caught. Without AVX-512 each test prints a note and
//! returns. `cargo test --release --test original_kernels`.
#![cfg(target_arch = "x86_64")]

use catdog::config::Kernels;
use catdog::config::{ConvDims, Hyper, PoolDims};
use catdog::dataset::{Dataset, Synthetic};
use catdog::layers::fc::{FcDims, FcForward, FcWeightGrads};
use catdog::layers::pool::{OutPlace, PoolOut};
use catdog::net::Net;
use catdog::network::Network;
use catdog::original::activation_functions::{relu, relu_backward, sigmoid};
use catdog::original::backward::accumulate_db;
use catdog::original::convolution::{conv2d, conv2d_backward};
use catdog::original::dense::{dense, dot_product, Activation};
use catdog::original::loader::load_sample;
use catdog::original::loss::compute_loss;
use catdog::original::matrix_ops::{matrix_vector_multiply, outer_product_add};
use catdog::original::maxpool::{mask_len, maxpool, maxpool_backward};
use catdog::original::padding::{add_padding, remove_padding};
use catdog::original::update_weights::{add_to_vector, fill_zero};
use catdog::original::OriginalNet;
use catdog::{parameters, reference, train};

#[path = "common/kernels.rs"]
mod kernels;
use kernels::{assert_close, avx512_or_note, avx512_rng, avx512_test_rng, dims, scale, Rng};

// The C library's functions the original calls (the replicas use the same ones).
extern "C" {
    fn expf(x: f32) -> f32;
    fn logf(x: f32) -> f32;
}

// ------------------------------------------------------------------------------------ helpers

/// A quiet NaN with a payload no routine produces: what "not written" looks like.
fn sentinel() -> f32 {
    f32::from_bits(0x7FC0_BEEF)
}

/// Truncates `buf` to its first `len` floats, after checking that the routine that filled them
/// wrote nothing after them (everything there still [`sentinel`]).
fn written_up_to(buf: &mut Vec<f32>, len: usize, what: &str) {
    assert!(
        buf[len..]
            .iter()
            .all(|v| v.to_bits() == sentinel().to_bits()),
        "{what}: wrote past"
    );
    buf.truncate(len);
}

/// Room left after every buffer a routine may read or write a little past (as the tier's own
/// buffers have, `original::buffer::ROOM`).
const ROOM: usize = 16;

/// Bitwise equality, reporting the first difference.
fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{what}: element {i}: routine {g:e} ({:#010x}) vs replica {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Number of elements whose bits differ.
fn bit_diffs(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count()
}

/// `|got - want| <= rel * scale` elementwise, `scale` the largest magnitude of `want` (at least
/// `floor`): float rounding of sums of terms of that size.
#[track_caller]
fn close(got: &[f32], want: &[f32], rel: f32, floor: f32, what: &str) {
    let s = scale(want, floor);
    assert_close(what, got, want, |_| rel * s, 0.0);
}

// ----------------------------------------------------------------- replicas of the arithmetic

/// What a replica may get wrong on purpose, to show that the bit-exact comparisons are sharp.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flaw {
    None,
    /// Sum the 16 lanes left to right instead of the original's tree.
    SequentialSum,
    /// Sum the lanes pairwise as neighbours, `((a0+a1)+(a2+a3))+...`, another tree.
    AdjacentTree,
    /// conv1's load mask one lane too wide (10 lanes instead of 9).
    WideMask,
    /// A row of the padded input one pixel longer than it is.
    WrongStride,
    /// Multiply and add separately where the routine fuses (and the reverse for tails).
    SwapFma,
    /// conv2d_backward's read-modify-writes under the load mask (the routine's are unmasked:
    /// for 3 channels they add `0 * g` to the 7 floats after each 9-float row).
    MaskedStore,
}

/// The horizontal sum of a ZMM accumulator: `vextractf32x8` + `vaddps` (`a[k] + a[k+8]`),
/// `vextractf128` + `vaddps` (`b[k] + b[k+4]`), two `haddps` (`(c0 + c1) + (c2 + c3)`).
fn hsum(a: &[f32; 16], flaw: Flaw) -> f32 {
    match flaw {
        Flaw::SequentialSum => a.iter().fold(0.0f32, |s, &v| s + v),
        Flaw::AdjacentTree => {
            let mut v = a.to_vec();
            while v.len() > 1 {
                v = v.chunks(2).map(|p| p[0] + p[1]).collect();
            }
            v[0]
        }
        _ => {
            let b: [f32; 8] = std::array::from_fn(|k| a[k] + a[k + 8]);
            let c: [f32; 4] = std::array::from_fn(|k| b[k] + b[k + 4]);
            (c[0] + c[1]) + (c[2] + c[3])
        }
    }
}

/// `relu_routine`: `maxss xmm0, +0.0` returns `+0.0` unless `x > 0` (so for `-0.0` and NaN too).
fn relu_replica(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// `sigmoid_routine`: `comiss` + `jb` sends `x < 0` and NaN to the second branch.
fn sigmoid_replica(x: f32) -> f32 {
    // SAFETY: C library calls on plain floats.
    unsafe {
        if x >= 0.0 {
            let e = expf(0.0 - x);
            1.0 / (e + 1.0)
        } else {
            let e = expf(x);
            e / (1.0 + e)
        }
    }
}

/// `compute_loss_routine`: `0 - ((1 - y) * logf((1 - p) + eps) + y * logf(p + eps))`, the
/// products rounded separately, the second term first in the sum.
fn loss_replica(y: f32, p: f32) -> f32 {
    let eps = 1.0e-7f32;
    // SAFETY: C library calls on plain floats.
    unsafe {
        let t1 = logf(p + eps) * y;
        let t2 = logf((1.0 - p) + eps) * (1.0 - y);
        0.0 - (t2 + t1)
    }
}

/// `dot_product_routine`: 16 lanes of FMAs in order, the tree, then `+ bias`.
fn dot_replica(x: &[f32], w: &[f32], bias: f32, flaw: Flaw) -> f32 {
    let mut acc = [0.0f32; 16];
    for (xs, ws) in x.chunks_exact(16).zip(w.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] = if flaw == Flaw::SwapFma {
                acc[l] + xs[l] * ws[l]
            } else {
                xs[l].mul_add(ws[l], acc[l])
            };
        }
    }
    hsum(&acc, flaw) + bias
}

/// Lanes a convolution step loads: 9 (`k1 = 0x1FF`) for 3 channels, else 16.
fn conv_lanes(c: usize, flaw: Flaw) -> usize {
    match (c, flaw) {
        (3, Flaw::WideMask) => 10,
        (3, _) => 9,
        _ => 16,
    }
}

/// 16-float steps per filter row: the do-while runs once for 3 channels, `3C/16` times else.
fn conv_steps(c: usize) -> usize {
    ((12 * c) >> 6).max(1)
}

/// Floats of a row of the padded input (`r10 / 4`), and that row with [`Flaw::WrongStride`].
fn pad_row(n: usize, c: usize, flaw: Flaw) -> usize {
    (n + 2 + (flaw == Flaw::WrongStride) as usize) * c
}

/// `conv2d_routine`: per output pixel (row-major) and filter, one accumulator of 16 lanes; per
/// step, rows 0, 1, 2 of the window FMA'd into it (masked lanes load zero); the tree; `+ bias`;
/// ReLU.
fn conv_replica(
    w: &[f32],
    x_pad: &[f32],
    n: usize,
    c: usize,
    f: usize,
    bias: &[f32],
    flaw: Flaw,
) -> Vec<f32> {
    let (lanes, steps, row) = (conv_lanes(c, flaw), conv_steps(c), pad_row(n, c, flaw));
    let mut out = vec![0.0f32; n * n * f];
    for i in 0..n {
        for j in 0..n {
            let xb = i * pad_row(n, c, Flaw::None) + j * c;
            for fi in 0..f {
                let wb = fi * 9 * c;
                let mut acc = [0.0f32; 16];
                for s in 0..steps {
                    for r in 0..3 {
                        for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                            let xv = x_pad[xb + r * row + s * 16 + l];
                            let wv = w[wb + r * 3 * c + s * 16 + l];
                            *a = if flaw == Flaw::SwapFma {
                                *a + xv * wv
                            } else {
                                xv.mul_add(wv, *a)
                            };
                        }
                    }
                }
                out[(i * n + j) * f + fi] = relu_replica(hsum(&acc, flaw) + bias[fi]);
            }
        }
    }
    out
}

/// `conv2d_backward_routine`: the whole-16-block `fill_zero` of the padded input gradient, then
/// per output pixel and filter, with `g` its output gradient, per step: the masked loads of the
/// three window rows and filter rows, `x * g` and `w * g` (multiplies), each added to the
/// *unmasked* 16 floats of the gradient rows (the three rows loaded, then added, then stored in
/// order 0, 1, 2), then `d_b[f] + g`. `d_w` and `d_x_pad` carry [`ROOM`] floats after them.
#[allow(clippy::too_many_arguments)]
fn conv_backward_replica(
    w: &[f32],
    x_pad: &[f32],
    d_out: &[f32],
    n: usize,
    c: usize,
    f: usize,
    d_w: &mut [f32],
    d_x_pad: &mut [f32],
    d_b: &mut [f32],
    flaw: Flaw,
) {
    let (lanes, steps, row) = (conv_lanes(c, flaw), conv_steps(c), pad_row(n, c, flaw));
    let padded = (n + 2) * (n + 2) * c;
    d_x_pad[..padded / 16 * 16].fill(0.0);
    for i in 0..n {
        for j in 0..n {
            let xb = i * pad_row(n, c, Flaw::None) + j * c;
            for fi in 0..f {
                let g = d_out[(i * n + j) * f + fi];
                let wb = fi * 9 * c;
                for s in 0..steps {
                    let mut xr = [[0.0f32; 16]; 3];
                    let mut wr = [[0.0f32; 16]; 3];
                    for r in 0..3 {
                        for l in 0..lanes {
                            xr[r][l] = x_pad[xb + r * row + s * 16 + l];
                            wr[r][l] = w[wb + r * 3 * c + s * 16 + l];
                        }
                    }
                    let rmw = |buf: &mut [f32], at: [usize; 3], v: &[[f32; 16]; 3]| {
                        let old: [[f32; 16]; 3] =
                            std::array::from_fn(|r| std::array::from_fn(|l| buf[at[r] + l]));
                        let stored = if flaw == Flaw::MaskedStore { lanes } else { 16 };
                        for r in 0..3 {
                            for l in 0..stored {
                                buf[at[r] + l] = if flaw == Flaw::SwapFma {
                                    v[r][l].mul_add(g, old[r][l])
                                } else {
                                    old[r][l] + v[r][l] * g
                                };
                            }
                        }
                    };
                    rmw(d_w, std::array::from_fn(|r| wb + r * 3 * c + s * 16), &xr);
                    rmw(d_x_pad, std::array::from_fn(|r| xb + r * row + s * 16), &wr);
                }
                d_b[fi] += g;
            }
        }
    }
}

/// `maxpool_routine` on one lane's window `[a, b, c, d]` (top-left, top-right, bottom-left,
/// bottom-right): `vmaxps` in that order (`x > y ? x : y`), then the four mask bits (`max >
/// position`, widened so that only the first maximal position is clear).
fn pool_window_replica(v: [f32; 4]) -> (f32, [bool; 4]) {
    let vmax = |x: f32, y: f32| if x > y { x } else { y };
    let m = vmax(vmax(vmax(v[0], v[1]), v[2]), v[3]);
    let k: [bool; 4] = std::array::from_fn(|t| m > v[t]);
    let k4 = k[0] && k[1];
    let k5 = k[2] && k4;
    (m, [k[0], k[1] || !k[0], k[2] || !k4, k[3] || !k5])
}

/// `maxpool_routine` on a whole tensor: output and the four `u16` masks per output pixel and
/// group of 16 channels. With [`Flaw::WrongStride`], windows read as if rows had one more pixel.
fn maxpool_replica(x: &[f32], n: usize, c: usize, flaw: Flaw) -> (Vec<f32>, Vec<u16>) {
    let h = n / 2;
    let row = (n + (flaw == Flaw::WrongStride) as usize) * c;
    let mut out = vec![0.0f32; h * h * c];
    let mut masks = vec![0u16; mask_len(n, c)];
    for i in 0..h {
        for j in 0..h {
            for g in 0..c / 16 {
                let mut bits = [0u16; 4];
                for l in 0..16 {
                    let at = |dy: usize, dx: usize| {
                        x[(2 * i + dy) * row + (2 * j + dx) * c + g * 16 + l]
                    };
                    let (m, k) = pool_window_replica([at(0, 0), at(0, 1), at(1, 0), at(1, 1)]);
                    out[(i * h + j) * c + g * 16 + l] = m;
                    for t in 0..4 {
                        bits[t] |= (k[t] as u16) << l;
                    }
                }
                masks[((i * h + j) * (c / 16) + g) * 4..][..4].copy_from_slice(&bits);
            }
        }
    }
    (out, masks)
}

/// `maxpool_backward_routine`: each of the four window positions gets the output gradient where
/// its mask bit is clear, `+0.0` where it is set.
fn maxpool_backward_replica(d_out: &[f32], masks: &[u16], n: usize, c: usize) -> Vec<f32> {
    let h = n / 2;
    let mut d_in = vec![0.0f32; n * n * c];
    for i in 0..h {
        for j in 0..h {
            for g in 0..c / 16 {
                let bits = &masks[((i * h + j) * (c / 16) + g) * 4..][..4];
                for l in 0..16 {
                    let v = d_out[(i * h + j) * c + g * 16 + l];
                    for (t, &b) in bits.iter().enumerate() {
                        let at = ((2 * i + t / 2) * n + 2 * j + t % 2) * c + g * 16 + l;
                        d_in[at] = if b >> l & 1 == 0 { v } else { 0.0 };
                    }
                }
            }
        }
    }
    d_in
}

// ------------------------------------------------------------------------- the convolution

/// `(size, channels, filters)`: odd sizes, odd filter counts, conv1's 3 channels (one masked
/// step), 16 to 48 channels (1 to 3 full steps per filter row), and even sizes.
const CONV_CASES: [(usize, usize, usize); 10] = [
    (5, 3, 5),
    (7, 3, 16),
    (1, 3, 1),
    (5, 16, 3),
    (7, 48, 7),
    (3, 32, 17),
    (8, 3, 16),
    (4, 16, 16),
    (6, 32, 32),
    (2, 48, 2),
];

/// The dimensions of one row of `k` inputs to `n` outputs (the original's dense layers and
/// matrix routines work on single samples).
fn one_row(k: usize, n: usize) -> FcDims {
    FcDims { rows: 1, k, n }
}

struct ConvCase {
    n: usize,
    c: usize,
    f: usize,
    w: Vec<f32>,
    x_pad: Vec<f32>,
    bias: Vec<f32>,
}

impl ConvCase {
    /// Everything random, the padded input's border included; buffers with [`ROOM`] after them.
    fn new(rng: &mut Rng, (n, c, f): (usize, usize, usize)) -> Self {
        let mut w = rng.vec(f * 9 * c + ROOM);
        w.iter_mut().for_each(|v| *v *= 0.5);
        Self {
            n,
            c,
            f,
            w,
            x_pad: rng.vec((n + 2) * (n + 3) * c + ROOM),
            bias: rng.vec(f).iter().map(|v| v * 0.3).collect(),
        }
    }
    fn dims(&self) -> ConvDims {
        dims(self.n, self.n, self.c, self.f)
    }
    /// The plain reference's forward of this case.
    fn reference_forward(&self) -> Vec<f32> {
        let mut want = vec![0.0f32; self.n * self.n * self.f];
        let d = self.dims();
        reference::conv::forward(
            &d,
            &self.x_pad,
            &self.w,
            Some(&self.bias),
            &mut want,
            0..d.h,
        );
        want
    }
    fn forward(&self) -> Vec<f32> {
        let len = self.n * self.n * self.f;
        let mut out = vec![sentinel(); len + ROOM];
        // SAFETY: AVX-512 checked by the caller; shapes as the wrapper documents.
        unsafe {
            conv2d(
                &self.w,
                &self.x_pad,
                &mut out,
                self.f,
                self.c,
                self.n,
                &self.bias,
            )
        };
        written_up_to(&mut out, len, "conv2d");
        out
    }
}

#[test]
fn conv2d_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("conv2d", 1);
    let (mut positive, mut clamped) = (0, 0);
    for case in CONV_CASES {
        let k = ConvCase::new(&mut rng, case);
        let what = format!("conv2d n={} c={} f={}", k.n, k.c, k.f);
        let got = k.forward();
        let want = k.reference_forward();
        close(&got, &want, 1e-5, 1.0, &what);
        positive += got.iter().filter(|&&v| v > 0.0).count();
        clamped += got.iter().filter(|&&v| v == 0.0).count();
        let replica = conv_replica(&k.w, &k.x_pad, k.n, k.c, k.f, &k.bias, Flaw::None);
        assert_bits(&got, &replica, &what);
    }
    assert!(
        positive > 500 && clamped > 500,
        "ReLU unexercised: {positive} positive, {clamped} clamped"
    );
}

/// Runs `conv2d_backward` from the given initial gradients (the routine adds into `d_w` and
/// `d_b` and overwrites `d_x_pad`, except the last `padded % 16` floats, which it adds into).
/// Random initial gradients for `conv2d_backward` (`[d_w, d_x_pad, d_b]` of `lens` floats), a
/// quarter of them `-0.0`, and `-0.0` in the room after `d_w` and `d_x_pad`: adding `+0.0` turns
/// a `-0.0` into `+0.0`, so the bits show where the routine's unmasked stores reach.
fn signed_zero_init(rng: &mut Rng, lens: [usize; 3]) -> [Vec<f32>; 3] {
    let mut init = lens.map(|l| rng.vec(l));
    for (t, v) in init.iter_mut().enumerate() {
        for x in v.iter_mut() {
            if rng.next_u64().is_multiple_of(4) {
                *x = -0.0;
            }
        }
        if t < 2 {
            let n = v.len();
            v[n - ROOM..].fill(-0.0);
        }
    }
    init
}

fn conv_backward_run(k: &ConvCase, d_out: &[f32], init: &[Vec<f32>; 3]) -> [Vec<f32>; 3] {
    let [mut d_w, mut d_x, mut d_b] = init.clone();
    // SAFETY: AVX-512 checked by the caller; every buffer has its room.
    unsafe {
        conv2d_backward(
            &k.w, &k.x_pad, d_out, k.f, k.c, k.n, &mut d_w, &mut d_x, &mut d_b,
        )
    };
    [d_w, d_x, d_b]
}

#[test]
fn conv2d_backward_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("conv2d_backward", 2);
    for case in CONV_CASES {
        let k = ConvCase::new(&mut rng, case);
        let (n, c, f) = (k.n, k.c, k.f);
        let what = format!("conv2d_backward n={n} c={c} f={f}");
        let d_out = rng.vec(n * n * f + 1);
        let padded = (n + 2) * (n + 2) * c;
        let lens = [f * 9 * c + ROOM, padded + ROOM, f];

        // From zero gradients: against the reference.
        let zeros = lens.map(|l| vec![0.0f32; l]);
        let got = conv_backward_run(&k, &d_out, &zeros);
        let d = k.dims();
        let mut dy_pad = vec![0.0f32; d.out_pad_len()];
        for y in 0..n {
            for x in 0..n {
                let at = ((y + 1) * (n + 2) + x + 1) * f;
                dy_pad[at..at + f].copy_from_slice(&d_out[(y * n + x) * f..][..f]);
            }
        }
        let mut dw_kc = vec![0.0f32; 9 * c * f];
        let mut db = vec![0.0f32; f];
        reference::weight_grad::weight_grad(&d, &k.x_pad, &dy_pad, &mut dw_kc, &mut db);
        let dw_ref: Vec<f32> = (0..f * 9 * c)
            .map(|i| {
                let (fi, kk, ic) = (i / (9 * c), i / c % 9, i % c);
                dw_kc[(kk * c + ic) * f + fi]
            })
            .collect();
        let mut dx = vec![0.0f32; n * n * c];
        reference::conv::input_grad(&d, &dy_pad, &k.w, &mut dx);
        let dx_got: Vec<f32> = (0..n * n * c)
            .map(|i| got[1][((i / c / n + 1) * (n + 2) + i / c % n + 1) * c + i % c])
            .collect();
        close(
            &got[0][..f * 9 * c],
            &dw_ref,
            1e-5,
            1.0,
            &format!("{what}: d_w"),
        );
        close(&got[2], &db, 1e-5, 1.0, &format!("{what}: d_b"));
        close(&dx_got, &dx, 1e-5, 1.0, &format!("{what}: d_x interior"));

        // From zero and from random gradients: the replica, every float (room included).
        let random = signed_zero_init(&mut rng, lens);
        for init in [zeros, random] {
            let got = conv_backward_run(&k, &d_out, &init);
            let [mut d_w, mut d_x, mut d_b] = init.clone();
            conv_backward_replica(
                &k.w,
                &k.x_pad,
                &d_out,
                n,
                c,
                f,
                &mut d_w,
                &mut d_x,
                &mut d_b,
                Flaw::None,
            );
            assert_bits(&got[0], &d_w, &format!("{what}: d_w"));
            assert_bits(&got[1], &d_x, &format!("{what}: d_x_pad"));
            assert_bits(&got[2], &d_b, &format!("{what}: d_b"));
        }
    }
}

// ----------------------------------------------------------------------------- max-pool

/// `(size, channels)`: pooled sizes 3, 1, 5 (odd) and 2, 4 (even); 16, 32 and 48 channels.
const POOL_CASES: [(usize, usize); 7] = [
    (6, 16),
    (6, 48),
    (2, 16),
    (10, 48),
    (4, 32),
    (8, 16),
    (14, 16),
];

fn pool_input(rng: &mut Rng, n: usize, c: usize, ties: bool) -> Vec<f32> {
    (0..n * n * c)
        .map(|_| {
            if ties {
                // A few distinct values: ties in most windows, some all-zero ones, and zeros of
                // both signs (which `vmaxps` picks by operand order).
                [-0.0, 0.0, 0.0, 0.5, 0.5, 1.0, -0.5, -0.0][(rng.next_u64() >> 61) as usize]
            } else {
                rng.f()
            }
        })
        .collect()
}

fn maxpool_run(x: &[f32], n: usize, c: usize) -> (Vec<f32>, Vec<u16>) {
    let len = n * n * c / 4;
    let mut out = vec![sentinel(); len + ROOM];
    let mut masks = vec![0xA5A5u16; mask_len(n, c) + 4];
    // SAFETY: AVX-512 checked by the caller; shapes as documented.
    unsafe { maxpool(x, &mut out, &mut masks, n, c) };
    written_up_to(&mut out, len, "maxpool");
    assert!(
        masks[mask_len(n, c)..].iter().all(|&m| m == 0xA5A5),
        "maxpool wrote past its masks"
    );
    masks.truncate(mask_len(n, c));
    (out, masks)
}

/// The reference's max-pool of the `n x n x c` tensor `x`: the pooled tensor (flat) and the
/// argmax codes.
fn reference_pool(x: &[f32], n: usize, c: usize) -> (Vec<f32>, Vec<u8>) {
    let d = PoolDims { h: n, w: n, c };
    let mut out = vec![0.0f32; d.out_len()];
    let mut argmax = vec![0u8; d.out_len()];
    let mut pool = PoolOut {
        out: &mut out,
        place: OutPlace::flat(&d),
        argmax: Some(&mut argmax),
    };
    reference::pool::forward(&d, x, &mut pool, 0..d.h / 2);
    (out, argmax)
}

#[test]
fn maxpool_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("maxpool", 3);
    for (n, c) in POOL_CASES {
        for ties in [false, true] {
            let what = format!("maxpool n={n} c={c} ties={ties}");
            let x = pool_input(&mut rng, n, c, ties);
            let (out, masks) = maxpool_run(&x, n, c);
            // The reference: the same maxima (exactly: a max rounds nothing), and the argmax it
            // keeps is the one position whose mask bit is clear (where the max is positive).
            let (want, argmax) = reference_pool(&x, n, c);
            close(&out, &want, 0.0, 1.0, &what);
            for (o, &code) in argmax.iter().enumerate() {
                let (p, ch) = (o / c, o % c);
                let bits = &masks[(p * (c / 16) + ch / 16) * 4..][..4];
                let clear: Vec<usize> = (0..4).filter(|&t| bits[t] >> (ch % 16) & 1 == 0).collect();
                assert_eq!(
                    clear.len(),
                    1,
                    "{what}: output {o}: clear positions {clear:?}"
                );
                if code < 4 {
                    assert_eq!(clear[0], code as usize, "{what}: output {o}: argmax");
                }
            }
            // The replica: output bits and every mask word.
            let (m_out, m_masks) = maxpool_replica(&x, n, c, Flaw::None);
            assert_bits(&out, &m_out, &what);
            assert_eq!(masks, m_masks, "{what}: masks");
        }
    }
}

#[test]
fn maxpool_backward_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("maxpool_backward", 4);
    for (n, c) in POOL_CASES {
        for ties in [false, true] {
            let what = format!("maxpool_backward n={n} c={c} ties={ties}");
            // A ReLU output, as in the network.
            let x: Vec<f32> = pool_input(&mut rng, n, c, ties)
                .iter()
                .map(|v| v.max(0.0))
                .collect();
            let (_, masks) = maxpool_run(&x, n, c);
            let d_out = rng.vec(n * n * c / 4);
            let mut got = vec![sentinel(); n * n * c + ROOM];
            // SAFETY: AVX-512 checked above; shapes as documented.
            unsafe { maxpool_backward(&mut got, &d_out, &masks, n, c) };
            written_up_to(&mut got, n * n * c, &what);
            assert_bits(&got, &maxpool_backward_replica(&d_out, &masks, n, c), &what);
            // The reference routes to its argmax (nothing where the max is <= 0); composed with
            // the ReLU gradient, as the network does, both must give the same (exactly).
            let (_, argmax) = reference_pool(&x, n, c);
            let mut dy_pad = vec![sentinel(); (n + 2) * (n + 2) * c];
            reference::pool::backward(&PoolDims { h: n, w: n, c }, &d_out, &argmax, &mut dy_pad);
            let want: Vec<f32> = (0..n * n * c)
                .map(|i| dy_pad[((i / c / n + 1) * (n + 2) + i / c % n + 1) * c + i % c])
                .collect();
            let mut got_relu = got.clone();
            reference::activations::relu_backward(&x, &mut got_relu);
            close(&got_relu, &want, 0.0, 1.0, &what);
            assert!(
                got_relu.iter().filter(|&&v| v != 0.0).count() >= d_out.len() / 8,
                "{what}: little routed"
            );
        }
    }
}

// ------------------------------------------------------------------------------ padding

/// `(size, channels)` with `size * channels` a multiple of 16 (the routines move rows in blocks
/// of 16 floats): conv1's 3 channels (a padded tensor of `(n+2)^2 * 3` floats whose last
/// `% 16` are not copied back), odd sizes with 16 channels.
const PAD_CASES: [(usize, usize); 8] = [
    (16, 3),
    (32, 3),
    (5, 16),
    (7, 16),
    (3, 48),
    (4, 32),
    (1, 16),
    (8, 64),
];

#[test]
fn padding_in_place_matches_replica_bits() {
    let mut rng = avx512_test_rng!("padding", 5);
    for (n, c) in PAD_CASES {
        let what = format!("add_padding n={n} c={c}");
        let padded = (n + 2) * (n + 2) * c;
        // The tensor at the start of a buffer of random garbage.
        let before = rng.vec(padded + ROOM);
        let mut t = before.clone();
        let mut temp = vec![sentinel(); padded + ROOM];
        // SAFETY: AVX-512 checked above; both buffers hold the padded tensor.
        unsafe { add_padding(&mut t, n, c, &mut temp) };
        // The plain padded tensor: zero border, the tensor inside.
        let mut plain = vec![0.0f32; padded];
        for y in 0..n {
            let at = ((y + 1) * (n + 2) + 1) * c;
            plain[at..at + n * c].copy_from_slice(&before[y * n * c..][..n * c]);
        }
        // temp holds exactly the padded tensor; whole blocks of it come back, the rest of the
        // buffer stays as it was.
        assert_bits(&temp[..padded], &plain, &format!("{what}: temp"));
        assert!(
            temp[padded..]
                .iter()
                .all(|v| v.to_bits() == sentinel().to_bits()),
            "{what}: temp overrun"
        );
        let mut replica = before.clone();
        let whole = padded / 16 * 16;
        replica[..whole].copy_from_slice(&plain[..whole]);
        assert_bits(&t, &replica, &what);
        assert!(padded % 16 == 0 || c == 3, "cases");

        // remove_padding moves the interior back to the front and touches nothing else.
        let what = format!("remove_padding n={n} c={c}");
        let before = rng.vec(padded + ROOM);
        let mut t = before.clone();
        // SAFETY: as above.
        unsafe { remove_padding(&mut t, n, c) };
        let mut replica = before.clone();
        for y in 0..n {
            let at = ((y + 1) * (n + 2) + 1) * c;
            replica[y * n * c..][..n * c].copy_from_slice(&before[at..at + n * c]);
        }
        assert_bits(&t, &replica, &what);
    }
}

// ------------------------------------------------------------------------- dense layers

#[test]
fn dot_product_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("dot_product", 6);
    for len in [16, 48, 432, 1152, 128] {
        let (x, w, bias) = (rng.vec(len), rng.vec(len), rng.f());
        // SAFETY: AVX-512 checked above; equal lengths, a multiple of 16.
        let got = unsafe { dot_product(&x, &w, bias) };
        let mut want = [0.0f32];
        // SAFETY: one row, one column, `want` holds it.
        unsafe {
            reference::fc::forward(
                one_row(len, 1),
                FcForward::new(&x, &w, &[bias], false, want.as_mut_ptr(), 0..1),
            )
        };
        let magnitude = x.iter().zip(&w).map(|(a, b)| (a * b).abs()).sum::<f32>() + bias.abs();
        assert!(
            (got - want[0]).abs() <= 1e-5 * magnitude,
            "dot_product len {len}: {got} vs {}",
            want[0]
        );
        assert_bits(
            &[got],
            &[dot_replica(&x, &w, bias, Flaw::None)],
            &format!("dot_product len {len}"),
        );
    }
}

#[test]
fn dense_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("dense", 7);
    for (inputs, neurons) in [(16, 5), (48, 37), (128, 16), (64, 1), (32, 7)] {
        for act in [Activation::Relu, Activation::Sigmoid] {
            let what = format!("dense {inputs}->{neurons} {act:?}");
            let (x, w) = (rng.vec(inputs), rng.vec(inputs * neurons));
            let b: Vec<f32> = rng.vec(neurons).iter().map(|v| v * 0.5).collect();
            let mut got = vec![sentinel(); neurons + ROOM];
            // SAFETY: AVX-512 checked above; shapes as documented.
            unsafe { dense(&x, &w, &b, &mut got[..neurons], act) };
            written_up_to(&mut got, neurons, &what);
            let mut want = vec![0.0f32; neurons];
            let relu = act == Activation::Relu;
            // SAFETY: one row of `neurons` outputs, `want` holds it.
            unsafe {
                reference::fc::forward(
                    one_row(inputs, neurons),
                    FcForward::new(&x, &w, &b, relu, want.as_mut_ptr(), 0..neurons),
                )
            };
            if !relu {
                want.iter_mut()
                    .for_each(|v| *v = reference::loss::sigmoid1(*v));
            }
            close(&got, &want, 1e-5, 1.0, &what);
            let replica: Vec<f32> = (0..neurons)
                .map(|j| {
                    let z = dot_replica(&x, &w[j * inputs..][..inputs], b[j], Flaw::None);
                    if relu {
                        relu_replica(z)
                    } else {
                        sigmoid_replica(z)
                    }
                })
                .collect();
            assert_bits(&got, &replica, &what);
        }
    }
}

/// `outer_product_add_routine`: per row, FMAs (`a * b + c`, one rounding) over whole blocks of
/// 16 columns, then `c + b * a` (two roundings) for the remaining columns.
fn outer_replica(a: &[f32], b: &[f32], c: &mut [f32], flaw: Flaw) {
    let full = b.len() / 16 * 16;
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let cij = &mut c[i * b.len() + j];
            let fused = (j < full) != (flaw == Flaw::SwapFma);
            *cij = if fused {
                ai.mul_add(bj, *cij)
            } else {
                *cij + bj * ai
            };
        }
    }
}

/// `matrix_vector_multiply_routine`: whole blocks of 16 outputs by FMAs over `i` from zero, the
/// remaining outputs by `s + x[i] * W[i][j]` (two roundings) from zero.
fn matvec_replica(x: &[f32], w: &[f32], ylen: usize, flaw: Flaw) -> Vec<f32> {
    let full = ylen / 16 * 16;
    (0..ylen)
        .map(|j| {
            let fused = (j < full) != (flaw == Flaw::SwapFma);
            x.iter().enumerate().fold(0.0f32, |s, (i, &xi)| {
                let wij = w[i * ylen + j];
                if fused {
                    xi.mul_add(wij, s)
                } else {
                    s + xi * wij
                }
            })
        })
        .collect()
}

/// `(rows or x length, columns or y length)`: tails of 5, 1 and 15 columns alone, after whole
/// blocks, and none.
const MATRIX_CASES: [(usize, usize); 8] = [
    (5, 37),
    (37, 5),
    (1, 16),
    (16, 1),
    (3, 48),
    (7, 31),
    (37, 37),
    (2, 128),
];

#[test]
fn outer_product_add_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("outer_product_add", 8);
    for (rows, cols) in MATRIX_CASES {
        let what = format!("outer_product_add {rows}x{cols}");
        let (a, b) = (rng.vec(rows), rng.vec(cols));
        let c0 = rng.vec(rows * cols + ROOM);
        let mut got = c0.clone();
        // SAFETY: AVX-512 checked above; `c` is `[rows][cols]`.
        unsafe { outer_product_add(&a, &b, &mut got[..rows * cols]) };
        assert_bits(
            &got[rows * cols..],
            &c0[rows * cols..],
            &format!("{what}: past the end"),
        );
        // The reference's weight gradient of one sample: `dw[i][j] = a[i] * b[j]`.
        let mut dw = vec![0.0f32; rows * cols];
        let mut db = vec![0.0f32; rows];
        reference::fc::weight_grad(
            one_row(cols, rows),
            FcWeightGrads::new(&b, &a, &mut dw, &mut db, 0..rows),
        );
        let want: Vec<f32> = c0.iter().zip(&dw).map(|(c, d)| c + d).collect();
        close(&got[..rows * cols], &want, 1e-5, 1.0, &what);
        let mut replica = c0.clone();
        outer_replica(&a, &b, &mut replica, Flaw::None);
        assert_bits(&got, &replica, &what);
    }
}

#[test]
fn matrix_vector_multiply_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("matrix_vector_multiply", 9);
    for (xlen, ylen) in MATRIX_CASES {
        let what = format!("matrix_vector_multiply {xlen}x{ylen}");
        let (x, w) = (rng.vec(xlen), rng.vec(xlen * ylen));
        let mut got = vec![sentinel(); ylen + ROOM];
        // SAFETY: AVX-512 checked above; `w` is `[xlen][ylen]`.
        unsafe { matrix_vector_multiply(&x, &w, &mut got[..ylen]) };
        written_up_to(&mut got, ylen, &what);
        let mut want = vec![0.0f32; ylen];
        // SAFETY: one row of `ylen` outputs, `want` holds it.
        unsafe {
            reference::fc::input_grad(one_row(ylen, xlen), &x, &w, want.as_mut_ptr(), 0..ylen)
        };
        close(&got, &want, 1e-5, 1.0, &what);
        assert_bits(&got, &matvec_replica(&x, &w, ylen, Flaw::None), &what);
    }
}

// ---------------------------------------------------------- activations, loss, small ones

/// Random values of every magnitude, and the special ones.
fn awkward_values(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-40,
        -1e-40,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        88.0,
        89.0,
        -87.0,
        -104.0,
        -110.0,
        20.0,
        -20.0,
    ];
    v.extend((0..n).map(|_| rng.f() * 30.0));
    v.extend((0..n).map(|_| rng.f() * 1e-3));
    v
}

#[test]
fn relu_and_sigmoid_match_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("relu, sigmoid", 10);
    let mut sigmoid_checked = 0;
    for x in awkward_values(&mut rng, 300) {
        let (r, s) = (relu(x), sigmoid(x));
        assert_bits(&[r], &[relu_replica(x)], &format!("relu({x:e})"));
        assert_bits(&[s], &[sigmoid_replica(x)], &format!("sigmoid({x:e})"));
        if !x.is_nan() {
            assert!(r == x.max(0.0), "relu({x:e}) = {r:e}");
            let want = reference::loss::sigmoid1(x);
            assert!(
                (s - want).abs() <= 1e-6 * want.abs(),
                "sigmoid({x:e}) = {s:e}, reference {want:e}"
            );
            sigmoid_checked += 1;
        }
    }
    assert!(sigmoid_checked > 600);
}

#[test]
fn relu_backward_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("relu_backward", 11);
    for len in [1, 5, 37, 16, 600] {
        let mut z = awkward_values(&mut rng, len);
        z.truncate(len.max(18));
        z.rotate_left(len % 7);
        let dz0 = rng.vec(z.len());
        let mut got = dz0.clone();
        relu_backward(&z, &mut got);
        let replica: Vec<f32> = z
            .iter()
            .zip(&dz0)
            .map(|(&zi, &d)| if zi > 0.0 { d } else { 0.0 })
            .collect();
        assert_bits(&got, &replica, &format!("relu_backward len {}", z.len()));
        // The reference (on NaN-free z: it passes a NaN's gradient through, the original not).
        let clean: Vec<f32> = z
            .iter()
            .map(|v| if v.is_nan() { -1.0 } else { *v })
            .collect();
        let mut got = dz0.clone();
        relu_backward(&clean, &mut got);
        let mut want = dz0.clone();
        reference::activations::relu_backward(&clean, &mut want);
        close(
            &got,
            &want,
            0.0,
            1.0,
            &format!("relu_backward len {}", z.len()),
        );
    }
}

#[test]
fn compute_loss_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("compute_loss", 12);
    let mut ps: Vec<f32> = vec![0.0, 1.0, 0.5, 1e-7, 1.0 - 1e-7, 1e-30, 0.999_999];
    ps.extend((0..400).map(|_| rng.f() * 0.5 + 0.5));
    for p in ps {
        for y in [0.0f32, 1.0] {
            let got = compute_loss(y, p);
            assert_bits(
                &[got],
                &[loss_replica(y, p)],
                &format!("compute_loss(y={y}, p={p:e})"),
            );
            let want = reference::loss::bce1(p, y);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-7,
                "compute_loss(y={y}, p={p:e}) = {got:e}, reference {want:e}"
            );
        }
    }
}

#[test]
fn add_to_vector_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("add_to_vector", 13);
    for (n, lr, batch) in [
        (1, 0.01f32, 16.0f32),
        (16, 0.01, 16.0),
        (48, 0.05, 3.0),
        (160, 0.013, 7.0),
    ] {
        let what = format!("add_to_vector n={n} lr={lr} batch={batch}");
        let inv = 1.0 / batch;
        // Small parameters, so that the update's own rounding shows in the result's bits.
        let p0: Vec<f32> = rng.vec(n).iter().map(|v| v * 1e-4).collect();
        let g0 = rng.vec(n);
        let mut g = g0.clone();
        g.push(sentinel());
        let mut p = p0.clone();
        p.push(sentinel());
        // SAFETY: AVX-512 checked above; n is 1 or a multiple of 16.
        unsafe { add_to_vector(&mut g[..n], &mut p[..n], lr, inv) };
        assert!(
            g[n].to_bits() == sentinel().to_bits() && p[n].to_bits() == sentinel().to_bits(),
            "{what}: wrote past"
        );
        let replica: Vec<f32> = p0
            .iter()
            .zip(&g0)
            .map(|(&pi, &gi)| pi - (gi * lr) * inv)
            .collect();
        assert_bits(&p[..n], &replica, &what);
        assert_bits(&g[..n], &vec![0.0; n], &format!("{what}: gradient zeroed"));
        let mut want = p0.clone();
        reference::update::sgd(&mut want, &g0, lr * inv);
        close(&p[..n], &want, 1e-6, 1.0, &what);
        assert!(bit_diffs(&p[..n], &p0) > n / 2, "{what}: nothing moved");
    }
}

#[test]
fn fill_zero_and_accumulate_db_match_replica_bits() {
    let mut rng = avx512_test_rng!("fill_zero, accumulate_db", 14);
    for n in [16, 37, 48, 53, 130] {
        // fill_zero: whole blocks of 16 only; the rest, and what follows, as it was.
        let before = rng.vec(n + ROOM);
        let mut x = before.clone();
        // SAFETY: AVX-512 checked above; n >= 16.
        unsafe { fill_zero(&mut x[..n]) };
        let mut replica = before.clone();
        replica[..n / 16 * 16].fill(0.0);
        assert_bits(&x, &replica, &format!("fill_zero n={n}"));
    }
    for n in [16, 48, 128] {
        // accumulate_db: db + g, elementwise (as the reference's sum in sample order).
        let (g, db0) = (rng.vec(n), rng.vec(n + 1));
        let mut db = db0.clone();
        // SAFETY: AVX-512 checked above; equal lengths, a multiple of 16.
        unsafe { accumulate_db(&g, &mut db[..n]) };
        let replica: Vec<f32> = db0[..n]
            .iter()
            .zip(&g)
            .map(|(d, gi)| d + gi)
            .chain([db0[n]])
            .collect();
        assert_bits(&db, &replica, &format!("accumulate_db n={n}"));
        let mut want = vec![0.0f32; n];
        let stacked: Vec<f32> = db0[..n].iter().chain(&g).copied().collect();
        reference::update::sum_slots(&stacked, 2, n, &mut want);
        close(&db[..n], &want, 0.0, 1.0, &format!("accumulate_db n={n}"));
    }
}

#[test]
#[allow(clippy::excessive_precision)] // the original's constant, as it writes it
fn load_sample_matches_reference_and_replica_bits() {
    let mut rng = avx512_test_rng!("load_sample", 15);
    let scale = 0.003_921_568_9f32;
    for (h, w) in [(4, 4), (16, 16), (7, 16), (1, 16), (16, 5)] {
        let count = h * w * 3;
        let what = format!("load_sample {h}x{w}");
        let mut bytes = rng.bytes(count + 48);
        bytes[0] = 255;
        bytes[1] = 0;
        for label in [0u8, 1] {
            let mut out = vec![sentinel(); count + ROOM];
            let mut got_label = 7u8;
            // SAFETY: AVX-512 checked above; 48 readable bytes after the image.
            unsafe { load_sample(&bytes, count, &label, &mut out[..count], &mut got_label) };
            assert_eq!(got_label, label, "{what}: label");
            written_up_to(&mut out, count, &what);
            let replica: Vec<f32> = bytes[..count].iter().map(|&b| b as f32 * scale).collect();
            assert_bits(&out, &replica, &what);
            let mut pad = vec![0.0f32; (h + 2) * (w + 2) * 3];
            reference::load::load_image(h, w, &bytes, &mut pad, false);
            let want: Vec<f32> = (0..count)
                .map(|i| pad[((i / 3 / w + 1) * (w + 2) + i / 3 % w + 1) * 3 + i % 3])
                .collect();
            close(&out, &want, 1e-6, 1.0, &what);
            assert_eq!(out[0], 1.0, "{what}: 255 gives 1");
        }
    }
}

// ------------------------------------------------------------------- the replicas are sharp

/// Each flaw a replica can be given changes bits on the very data the tests above use, so the
/// bit-exact comparisons would catch a routine with that flaw (a wrong mask, reduction order,
/// stride, or a misplaced FMA); and the routines are not bit-equal to the plain reference, so
/// "bit-exact against the replica" says more than "close to the reference".
#[test]
fn replicas_are_sharp() {
    let mut rng = avx512_test_rng!("replicas_are_sharp", 1);
    for case in CONV_CASES {
        let k = ConvCase::new(&mut rng, case);
        if k.n * k.n * k.f < 16 {
            continue;
        }
        let what = format!("conv2d n={} c={} f={}", k.n, k.c, k.f);
        let got = k.forward();
        let exact = conv_replica(&k.w, &k.x_pad, k.n, k.c, k.f, &k.bias, Flaw::None);
        assert_eq!(bit_diffs(&got, &exact), 0, "{what}");
        let mut flaws = vec![
            Flaw::SequentialSum,
            Flaw::AdjacentTree,
            Flaw::WrongStride,
            Flaw::SwapFma,
        ];
        if k.c == 3 {
            flaws.push(Flaw::WideMask);
        }
        for flaw in flaws {
            let bad = conv_replica(&k.w, &k.x_pad, k.n, k.c, k.f, &k.bias, flaw);
            assert!(
                bit_diffs(&got, &bad) > 0,
                "{what}: a replica with {flaw:?} would pass"
            );
        }
        let want = k.reference_forward();
        assert!(
            bit_diffs(&got, &want) > 0,
            "{what}: bit-equal to the plain reference"
        );

        // The backward replica, with a wrong mask, stride or fused add.
        let d_out = rng.vec(k.n * k.n * k.f + 1);
        let init = signed_zero_init(
            &mut rng,
            [
                k.f * 9 * k.c + ROOM,
                (k.n + 2) * (k.n + 2) * k.c + ROOM,
                k.f,
            ],
        );
        let got = conv_backward_run(&k, &d_out, &init);
        let mut flaws = vec![Flaw::None, Flaw::WrongStride, Flaw::SwapFma];
        if k.c == 3 {
            flaws.extend([Flaw::WideMask, Flaw::MaskedStore]);
        }
        for flaw in flaws {
            let [mut d_w, mut d_x, mut d_b] = init.clone();
            // A flawed replica may reach further: give it room, compare what the routine wrote.
            d_x.resize(d_x.len() + 3 * (k.n + 3) * k.c, 0.0);
            conv_backward_replica(
                &k.w, &k.x_pad, &d_out, k.n, k.c, k.f, &mut d_w, &mut d_x, &mut d_b, flaw,
            );
            let diffs = bit_diffs(&got[0], &d_w)
                + bit_diffs(&got[1], &d_x[..got[1].len()])
                + bit_diffs(&got[2], &d_b);
            if flaw == Flaw::None {
                assert_eq!(diffs, 0, "{what} backward");
            } else {
                assert!(
                    diffs > 0,
                    "{what} backward: a replica with {flaw:?} would pass"
                );
            }
        }
    }
    for len in [48, 432] {
        for flaw in [Flaw::SequentialSum, Flaw::AdjacentTree, Flaw::SwapFma] {
            // One dot product can round the same by luck: try a few.
            let caught = (0..8).any(|_| {
                let (x, w, b) = (rng.vec(len), rng.vec(len), rng.f());
                // SAFETY: AVX-512 checked above; equal lengths, a multiple of 16.
                let got = unsafe { dot_product(&x, &w, b) };
                got.to_bits() != dot_replica(&x, &w, b, flaw).to_bits()
            });
            assert!(
                caught,
                "dot_product len {len}: a replica with {flaw:?} would pass"
            );
        }
    }
    for (rows, cols) in [(5, 37), (37, 37), (3, 48)] {
        let (a, b, c0) = (rng.vec(rows), rng.vec(cols), rng.vec(rows * cols));
        let mut got = c0.clone();
        // SAFETY: AVX-512 checked above.
        unsafe { outer_product_add(&a, &b, &mut got) };
        let mut bad = c0.clone();
        outer_replica(&a, &b, &mut bad, Flaw::SwapFma);
        assert!(
            bit_diffs(&got, &bad) > 0,
            "outer_product_add {rows}x{cols}: SwapFma would pass"
        );
        let w = rng.vec(rows * cols);
        let mut y = vec![0.0f32; cols];
        // SAFETY: AVX-512 checked above.
        unsafe { matrix_vector_multiply(&a, &w, &mut y) };
        assert!(
            bit_diffs(&y, &matvec_replica(&a, &w, cols, Flaw::SwapFma)) > 0,
            "matrix_vector_multiply {rows}x{cols}: SwapFma would pass"
        );
    }
    for (n, c) in [(6, 16), (10, 48)] {
        let x = pool_input(&mut rng, n, c, false);
        let (out, _) = maxpool_run(&x, n, c);
        let mut roomy = x.clone();
        roomy.resize(x.len() + 2 * n * c, 0.5);
        let (bad, _) = maxpool_replica(&roomy, n, c, Flaw::WrongStride);
        assert!(
            bit_diffs(&out, &bad) > 0,
            "maxpool n={n} c={c}: WrongStride would pass"
        );
    }
}

// ------------------------------------------------------------------------ the whole tier

fn small_hyper() -> Hyper {
    Hyper {
        image: 16,
        widths: [16, 16, 32],
        batch: 4,
        ..catdog::testing::tiny_hyper()
    }
}

/// He-normal weights and small random biases (zero biases would leave the bias paths mostly
/// unexercised), in `parameters.raw` order.
fn init_params(h: &Hyper, seed: u64) -> Vec<f32> {
    let s = h.shapes().unwrap();
    let mut p = vec![0.0f32; s.param_count()];
    parameters::he_init(&s, &mut p, seed);
    let mut rng = Rng::new(seed);
    let mut off = 0;
    for (t, len) in s.param_lens().into_iter().enumerate() {
        if parameters::NAMES[t].ends_with("_b") {
            p[off..off + len]
                .iter_mut()
                .for_each(|v| *v = 0.05 * rng.f());
        }
        off += len;
    }
    p
}

fn tensor_ranges(h: &Hyper) -> Vec<(usize, usize)> {
    let mut off = 0;
    h.shapes()
        .unwrap()
        .param_lens()
        .into_iter()
        .map(|len| {
            off += len;
            (off - len, off)
        })
        .collect()
}

#[test]
fn original_net_matches_reference_path_and_finite_differences() {
    let Some(cpu) = avx512_or_note("OriginalNet") else {
        return;
    };
    let h = small_hyper();
    let data = Synthetic::new(8, h.image, 5);
    let idx = [0u32, 3, 5, 6];
    let params = init_params(&h, 17);
    assert!(
        idx.iter().any(|&i| data.labels()[i as usize] == 0)
            && idx.iter().any(|&i| data.labels()[i as usize] == 1)
    );

    let mut orig = OriginalNet::new(&h, cpu).unwrap();
    orig.params_mut().copy_from_slice(&params);
    let (loss, grads) = orig.loss_and_gradients(&data, &idx);
    // A second call gives the same bits (the routines pad and un-pad their buffers in place).
    let (loss2, grads2) = orig.loss_and_gradients(&data, &idx);
    assert!(
        loss.to_bits() == loss2.to_bits() && bit_diffs(&grads, &grads2) == 0,
        "not repeatable"
    );

    let mut fast = Net::new(&h, Kernels::Reference, false).unwrap();
    fast.params_mut().copy_from_slice(&params);
    fast.repack();
    let fast_loss = train::loss_and_gradients(&mut fast, &data, &idx, None);
    let fast_grads = fast.grads.all()[..params.len()].to_vec();
    assert!(
        (loss - fast_loss).abs() <= 1e-6,
        "loss: original {loss} vs reference path {fast_loss}"
    );
    assert!(loss.is_finite() && loss > 0.0);

    let ranges = tensor_ranges(&h);
    for (t, &(a, b)) in ranges.iter().enumerate() {
        let name = parameters::NAMES[t];
        let norm = fast_grads[a..b]
            .iter()
            .map(|&g| (g as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let err = grads[a..b]
            .iter()
            .zip(&fast_grads[a..b])
            .map(|(&g, &r)| ((g - r) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        eprintln!(
            "{name}: |grad| {norm:.3e}, |original - reference path| / |grad| {:.2e}",
            err / norm
        );
        assert!(norm > 1e-6, "{name}: no gradient to compare");
        assert!(
            err <= 1e-4 * norm,
            "{name}: relative L2 error {:.3e}",
            err / norm
        );
    }

    // Central differences of the original tier's own (mean) loss, for the parameters with the
    // largest gradients of each tensor; the step is 1e-2 of the tensor's scale.
    let batch = idx.len() as f64;
    let (mut checked, mut worst) = (0, 0.0f64);
    for (t, &(a, b)) in ranges.iter().enumerate() {
        let name = parameters::NAMES[t];
        let rms = (params[a..b]
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            / (b - a) as f64)
            .sqrt();
        let step = (1e-2 * rms.max(0.1)) as f32;
        let gmax = grads[a..b].iter().fold(0.0f32, |m, g| m.max(g.abs()));
        let mut picks: Vec<usize> = (a..b).collect();
        picks.sort_by(|&i, &j| grads[j].abs().total_cmp(&grads[i].abs()));
        picks.truncate(4);
        for i in picks {
            if grads[i].abs() < 0.2 * gmax {
                continue;
            }
            let at = |v: f32, net: &mut OriginalNet| {
                net.params_mut()[i] = v;
                net.loss_and_gradients(&data, &idx).0 as f64
            };
            let (lp, lm) = (
                at(params[i] + step, &mut orig),
                at(params[i] - step, &mut orig),
            );
            orig.params_mut()[i] = params[i];
            let dp = (params[i] + step) as f64 - (params[i] - step) as f64;
            let fd = (lp - lm) / dp;
            let g = grads[i] as f64 / batch;
            assert!(
                (fd - g).abs() <= 0.05 * g.abs(),
                "{name}[{}]: finite difference {fd:.6e} vs gradient {g:.6e} (step {step:e})",
                i - a
            );
            worst = worst.max((fd - g).abs() / g.abs());
            checked += 1;
        }
    }
    eprintln!("{checked} finite differences, worst relative error {worst:.2e}; loss {loss} vs {fast_loss}");
    assert!(checked >= 10, "only {checked} finite differences checked");
}

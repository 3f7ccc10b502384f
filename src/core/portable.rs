//! The portable kernels (`--kernels portable`): the fast path for CPUs without AVX-512, in
//! plain Rust. The GEMMs (the convolutions, [`crate::layers::conv::gemm`], and fc1/fc2 below) run
//! on `matrixmultiply`'s `sgemm`, which detects AVX2+FMA, AVX or SSE2 at run time and never
//! uses AVX-512. The element-wise loops (the optimizer step, the gradient sums, bias + ReLU, the
//! pools) are written so that LLVM vectorises them, and compiled twice by `multiversion!`: for
//! AVX2+FMA, chosen at run time where the CPU has it, and for the baseline x86-64 (SSE2).
//! Element-wise loops give the same bits either way (Rust never fuses a multiply and an add on
//! its own); the reductions keep their order.
//!
//! Same contracts as the asm drivers of [`crate::layers`] (see [`LayerFns`]): bitwise the same
//! result on any thread count (each output element is computed by one call whatever the split).

use crate::config::PoolDims;
use crate::layers::fc::{FcDims, FcForward, FcWeightGrads};
use crate::layers::pool::{OutPlace, PoolOut};
use crate::layers::LayerFns;
use crate::reference as r;
use crate::update::Momentum;
use std::ops::Range;

/// `multiversion!(fn name(args) { body })`: `name` runs `body` compiled for AVX2+FMA where this
/// CPU has them (detected once, then a cached branch), else compiled for the baseline.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        pub fn $name($($a: $t),*) {
            #[inline(always)]
            fn body($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) {
                    body($($a),*)
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (detected).
                    return unsafe { avx2($($a),*) };
                }
            }
            body($($a),*)
        }
    };
}

/// AVX2 and FMA, detected once.
#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

/// The portable table.
pub static PORTABLE: LayerFns = LayerFns {
    load_image: r::load::load_image,
    pool_forward,
    pool_backward,
    fc_forward,
    fc_forward_packed: None,
    relu_backward: r::activations::relu_backward,
    fc_input_grad,
    fc_weight_grad,
    fc_backward_fused_sgd: None,
    dropout: r::dropout::apply,
    sigmoid: r::loss::sigmoid,
    sigmoid_bce: r::loss::sigmoid_bce,
    sum_slots,
    sgd,
    sgd_momentum,
};

// ---------------------------------------------------------------------------------------------
// fc layers, as GEMMs. x [rows][k], w [n][k], b [n] -> y [rows][n]; dy [rows][n].

/// The forward pass ([`FcForward`]): `Y[:, cols] = X . W^T`, then bias and ReLU.
///
/// # Safety
/// `f.y` is valid for `rows * n` floats; no other thread touches `y[r][j]` for `j` in `f.cols`.
pub unsafe fn fc_forward(d: FcDims, f: FcForward) {
    f.check(d);
    let FcDims { rows, k, n } = d;
    let (x, w, b, relu, y, cols) = (f.x, f.w, f.bias, f.relu, f.y, f.cols);
    if cols.is_empty() || rows == 0 {
        return;
    }
    let (c0, nc) = (cols.start, cols.len());
    matrixmultiply::sgemm(
        rows,
        k,
        nc,
        1.0,
        x.as_ptr(),
        k as isize,
        1,
        w.as_ptr().add(c0 * k),
        1,
        k as isize,
        0.0,
        y.add(c0),
        n as isize,
        1,
    );
    for row in 0..rows {
        let yr = std::slice::from_raw_parts_mut(y.add(row * n + c0), nc);
        add_bias(yr, &b[cols.clone()], relu);
    }
}

multiversion! {
    /// `dst[p][c] = max(src[p][c] + bias[c], 0)`, pixel by pixel (the portable conv's output).
    fn bias_relu(src: &[f32], bias: &[f32], dst: &mut [f32]) {
        for (s, o) in src.chunks_exact(bias.len()).zip(dst.chunks_exact_mut(bias.len())) {
            for ((o, &s), &b) in o.iter_mut().zip(s).zip(bias) {
                *o = (s + b).max(0.0);
            }
        }
    }
}

multiversion! {
    /// `y[j] = y[j] + b[j]`, then `max(y, 0)` with `relu`.
    fn add_bias(y: &mut [f32], b: &[f32], relu: bool) {
        for (v, &bb) in y.iter_mut().zip(b) {
            let s = *v + bb;
            *v = if relu && s < 0.0 { 0.0 } else { s };
        }
    }
}

/// `dx[r][i] = sum_j dy[r][j] * w[j][i]` for `i` in `ks`: `dX[:, ks] = dY . W[:, ks]`.
///
/// # Safety
/// `dx` is valid for `rows * k` floats; no other thread touches `dx[r][i]` for `i` in `ks`.
pub unsafe fn fc_input_grad(d: FcDims, dy: &[f32], w: &[f32], dx: *mut f32, ks: Range<usize>) {
    let FcDims { rows, k, n } = d;
    assert!(ks.end <= k && dy.len() >= rows * n && w.len() >= n * k);
    if ks.is_empty() || rows == 0 {
        return;
    }
    matrixmultiply::sgemm(
        rows,
        n,
        ks.len(),
        1.0,
        dy.as_ptr(),
        n as isize,
        1,
        w.as_ptr().add(ks.start),
        k as isize,
        1,
        0.0,
        dx.add(ks.start),
        k as isize,
        1,
    );
}

/// The weight and bias gradients ([`FcWeightGrads`]): `dW[cols] = dY[:, cols]^T . X`, the
/// bias gradients summed over the rows in order.
pub fn fc_weight_grad(d: FcDims, g: FcWeightGrads) {
    g.check(d);
    let FcDims { rows, k, n } = d;
    let (m, c0) = (g.cols.len(), g.cols.start);
    if m == 0 {
        return;
    }
    // SAFETY: A = dY[:, cols]^T (m x rows) and B = X (rows x k) lie inside dy and x,
    // C = m x k inside dw_rows (asserted above).
    unsafe {
        matrixmultiply::sgemm(
            m,
            rows,
            k,
            1.0,
            g.dy.as_ptr().add(c0),
            1,
            n as isize,
            g.x.as_ptr(),
            k as isize,
            1,
            0.0,
            g.dw_rows.as_mut_ptr(),
            k as isize,
            1,
        );
    }
    for (db, j) in g.db_rows.iter_mut().zip(g.cols) {
        *db = (0..rows).fold(0.0f32, |s, row| s + g.dy[row * n + j]);
    }
}

// ---------------------------------------------------------------------------------------------
// 2x2 max-pool: the reference's rules (the first maximum of the window in order (0,0), (0,1),
// (1,0), (1,1); code 4 where the maximum is <= 0), a pixel's channels at a time.

/// [`crate::layers::pool::forward_asm`]'s contract.
pub fn pool_forward(d: &PoolDims, y_band: &[f32], pool: &mut PoolOut, rows: Range<usize>) {
    crate::layers::pool::check(d);
    let (out, place, argmax) = (&mut *pool.out, pool.place, pool.argmax.as_deref_mut());
    let (w, c, wo) = (d.w, d.c, d.w / 2);
    assert!(rows.end <= d.h / 2 && y_band.len() >= 2 * rows.len() * w * c);
    assert!(place.row_stride >= wo * c);
    assert!(rows.is_empty() || out.len() >= place.off + (rows.end - 1) * place.row_stride + wo * c);
    assert!(argmax.as_ref().is_none_or(|a| a.len() >= d.out_len()));
    pool_rows(w, c, y_band, out, place, argmax, rows);
}

multiversion! {
    fn pool_rows(
        w: usize,
        c: usize,
        y_band: &[f32],
        out: &mut [f32],
        place: OutPlace,
        argmax: Option<&mut [u8]>,
        rows: Range<usize>,
    ) {
        let wo = w / 2;
        let mut argmax = argmax;
        for i in rows.clone() {
            let top = &y_band[2 * (i - rows.start) * w * c..][..2 * w * c];
            let (r0, r1) = top.split_at(w * c);
            let o = &mut out[place.off + i * place.row_stride..][..wo * c];
            let mut codes = argmax.as_deref_mut().map(|a| &mut a[i * wo * c..][..wo * c]);
            for j in 0..wo {
                let (a, b) = (&r0[2 * j * c..][..c], &r0[(2 * j + 1) * c..][..c]);
                let (e, f) = (&r1[2 * j * c..][..c], &r1[(2 * j + 1) * c..][..c]);
                let oj = &mut o[j * c..][..c];
                match codes.as_deref_mut() {
                    Some(cd) => {
                        let cj = &mut cd[j * c..][..c];
                        for ch in 0..c {
                            let (mut m, mut code) = (a[ch], 0u8);
                            if b[ch] > m {
                                (m, code) = (b[ch], 1);
                            }
                            if e[ch] > m {
                                (m, code) = (e[ch], 2);
                            }
                            if f[ch] > m {
                                (m, code) = (f[ch], 3);
                            }
                            oj[ch] = m;
                            cj[ch] = if m <= 0.0 { 4 } else { code };
                        }
                    }
                    None => {
                        for ch in 0..c {
                            let mut m = a[ch];
                            if b[ch] > m {
                                m = b[ch];
                            }
                            if e[ch] > m {
                                m = e[ch];
                            }
                            if f[ch] > m {
                                m = f[ch];
                            }
                            oj[ch] = m;
                        }
                    }
                }
            }
        }
    }
}

/// [`crate::layers::pool::backward_asm`]'s contract: each pooled gradient to its argmax
/// position in the interior of `dy_pad`, zero at the other three (and all four for code 4).
pub fn pool_backward(d: &PoolDims, dout: &[f32], argmax: &[u8], dy_pad: &mut [f32]) {
    crate::layers::pool::check(d);
    assert!(dout.len() >= d.out_len() && argmax.len() >= d.out_len());
    assert!(dy_pad.len() >= (d.h + 2) * (d.w + 2) * d.c);
    unpool_rows(d.h, d.w, d.c, dout, argmax, dy_pad);
}

multiversion! {
    fn unpool_rows(h: usize, w: usize, c: usize, dout: &[f32], argmax: &[u8], dy_pad: &mut [f32]) {
        let (wo, prow) = (w / 2, (w + 2) * c);
        for i in 0..h / 2 {
            let (g, codes) = (&dout[i * wo * c..][..wo * c], &argmax[i * wo * c..][..wo * c]);
            let rows = &mut dy_pad[(2 * i + 1) * prow..][..2 * prow];
            let (top, bottom) = rows.split_at_mut(prow);
            for j in 0..wo {
                let (gj, cj) = (&g[j * c..][..c], &codes[j * c..][..c]);
                let (t0, t1) = top[(2 * j + 1) * c..][..2 * c].split_at_mut(c);
                let (b0, b1) = bottom[(2 * j + 1) * c..][..2 * c].split_at_mut(c);
                for ch in 0..c {
                    let (v, k) = (gj[ch], cj[ch]);
                    t0[ch] = if k == 0 { v } else { 0.0 };
                    t1[ch] = if k == 1 { v } else { 0.0 };
                    b0[ch] = if k == 2 { v } else { 0.0 };
                    b1[ch] = if k == 3 { v } else { 0.0 };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gradient sums and the optimizer step (the reference's arithmetic, element by element).

/// `dst[i] = src[i] + src[stride + i] + ...`, slots in order.
pub fn sum_slots(src: &[f32], slots: usize, stride: usize, dst: &mut [f32]) {
    crate::update::check_slots(src, slots, stride, dst);
    let n = dst.len();
    dst.copy_from_slice(&src[..n]);
    for s in 1..slots {
        add_into(dst, &src[s * stride..][..n]);
    }
}

multiversion! {
    fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

multiversion! {
    /// `p -= scale * g`.
    fn sgd(params: &mut [f32], grads: &[f32], scale: f32) {
        assert_eq!(params.len(), grads.len());
        for (p, &g) in params.iter_mut().zip(grads) {
            *p -= scale * g;
        }
    }
}

multiversion! {
    /// `v = momentum*v + (scale*g + weight_decay*p)`, `p -= lr*v`.
    fn sgd_momentum(params: &mut [f32], grads: &[f32], velocity: &mut [f32], m: Momentum) {
        assert_eq!(params.len(), grads.len());
        assert_eq!(params.len(), velocity.len());
        let Momentum { lr, scale, momentum, weight_decay } = m;
        for ((p, &g), v) in params.iter_mut().zip(grads).zip(velocity.iter_mut()) {
            *v = momentum * *v + (scale * g + weight_decay * *p);
            *p -= lr * *v;
        }
    }
}

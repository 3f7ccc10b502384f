//! Scalar reference of the fc layers: the plain loops of the original's `dense.asm`
//! (one dot product per neuron), `matrix_vector_multiply` and `outer_product_add`, batched.

use crate::layers::fc::{FcDims, FcForward, FcWeightGrads};
use std::ops::Range;

/// `y[r][j] = act(sum_i x[r][i] * w[j][i] + bias[j])` for `j` in `cols` ([`FcForward`]).
///
/// # Safety
/// `f.y` is valid for `rows * n` floats.
pub unsafe fn forward(d: FcDims, f: FcForward) {
    let FcDims { rows, k, n } = d;
    let (x, w, bias, relu, y) = (f.x, f.w, f.bias, f.relu, f.y);
    for r in 0..rows {
        let xr = &x[r * k..(r + 1) * k];
        for j in f.cols.clone() {
            let wj = &w[j * k..(j + 1) * k];
            let mut s = 0.0f32;
            for i in 0..k {
                s += xr[i] * wj[i];
            }
            s += bias[j];
            if relu && s < 0.0 {
                s = 0.0;
            }
            *y.add(r * n + j) = s;
        }
    }
}

/// `dx[r][i] = sum_j dy[r][j] * w[j][i]` for `i` in `ks`.
///
/// # Safety
/// `dx` is valid for `rows * k` floats.
pub unsafe fn input_grad(d: FcDims, dy: &[f32], w: &[f32], dx: *mut f32, ks: Range<usize>) {
    let FcDims { rows, k, n } = d;
    for r in 0..rows {
        for i in ks.clone() {
            let mut s = 0.0f32;
            for j in 0..n {
                s += dy[r * n + j] * w[j * k + i];
            }
            *dx.add(r * k + i) = s;
        }
    }
}

/// `dw_rows[j - cols.start][i] = sum_r dy[r][j] * x[r][i]`, `db_rows[j - cols.start] =
/// sum_r dy[r][j]`, rows summed in order ([`FcWeightGrads`]).
pub fn weight_grad(d: FcDims, g: FcWeightGrads) {
    let (FcDims { rows, k, n }, cols) = (d, g.cols);
    let (x, dy, dw_rows, db_rows) = (g.x, g.dy, g.dw_rows, g.db_rows);
    for (jj, j) in cols.enumerate() {
        let dwj = &mut dw_rows[jj * k..(jj + 1) * k];
        dwj.fill(0.0);
        let mut db = 0.0f32;
        for r in 0..rows {
            let g = dy[r * n + j];
            db += g;
            for i in 0..k {
                dwj[i] += g * x[r * k + i];
            }
        }
        db_rows[jj] = db;
    }
}

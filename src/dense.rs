//! Dense (fully connected) layers, batched over the samples of a batch (the original's
//! `dense.asm`, `dot_product.asm` and `matrix_ops.asm`).
//!
//! Shapes: `x [rows][k]` (one row per sample), `w [n][k]` (the original's `[neuron][input]`),
//! `bias [n]`, `y [rows][n]`. `k` is a multiple of 16; `rows` and `n` are any size >= 1.
//! Threads split the work by ranges of the output; the functions that write strided outputs
//! take raw pointers and write *only* inside their range, so that several threads may call them
//! on disjoint ranges of one buffer at the same time.

use crate::cpu::Path;
use std::ops::Range;

/// `y[r][j] = act(sum_k x[r][k] * w[j][k] + bias[j])` for every row `r` and `j` in `cols`;
/// `act` is ReLU when `relu`, identity otherwise.
///
/// # Safety
/// `y` is valid for `rows * n` floats; no other thread touches `y[r][j]` for `j` in `cols`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn forward(
    path: Path,
    rows: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    relu: bool,
    y: *mut f32,
    cols: Range<usize>,
) {
    let _ = (path, rows, k, n, x, w, bias, relu, y, cols);
    todo!()
}

/// Input gradient: `dx[r][i] = sum_j dy[r][j] * w[j][i]` for every row and `i` in `ks`
/// (`ks.start` a multiple of 16).
///
/// # Safety
/// `dx` is valid for `rows * k` floats; no other thread touches `dx[r][i]` for `i` in `ks`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn backward_data(
    path: Path,
    rows: usize,
    k: usize,
    n: usize,
    dy: &[f32],
    w: &[f32],
    dx: *mut f32,
    ks: Range<usize>,
) {
    let _ = (path, rows, k, n, dy, w, dx, ks);
    todo!()
}

/// Weight and bias gradients for neurons `cols`, *overwritten* and summed over the rows in
/// order: `dw_rows[(j - cols.start)][i] = sum_r dy[r][j] * x[r][i]`, `db_rows[j - cols.start] =
/// sum_r dy[r][j]`. `dw_rows` holds `cols.len() * k` floats (contiguous rows of the full `dw`).
#[allow(clippy::too_many_arguments)]
pub fn backward_weights(
    path: Path,
    rows: usize,
    k: usize,
    n: usize,
    x: &[f32],
    dy: &[f32],
    dw_rows: &mut [f32],
    db_rows: &mut [f32],
    cols: Range<usize>,
) {
    let _ = (path, rows, k, n, x, dy, dw_rows, db_rows, cols);
    todo!()
}

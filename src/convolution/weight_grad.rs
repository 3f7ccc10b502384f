//! Weight and bias gradients of the 3x3 convolution (part of the original's `conv2d_backward`).
//! Layouts as in the parent module's docs.

use crate::config::ConvDims;
use crate::cpu::Path;

/// Weight and bias gradients of one sample, *overwritten* (not accumulated):
/// `dw_kc[ky][kx][ic][oc] = sum_{y,x} x_pad[y+ky][x+kx][ic] * dy[y][x][oc]`, `db[oc] = sum dy`.
pub fn backward_weights(
    path: Path,
    d: &ConvDims,
    x_pad: &[f32],
    dy_pad: &[f32],
    dw_kc: &mut [f32],
    db: &mut [f32],
) {
    let _ = (path, d, x_pad, dy_pad, dw_kc, db);
    todo!()
}

/// KC layout `[3][3][cin][cout]` to the original layout `[cout][3][3][cin]`.
pub fn unpack_wgrad(d: &ConvDims, kc: &[f32], w: &mut [f32]) {
    let _ = (d, kc, w);
    todo!()
}

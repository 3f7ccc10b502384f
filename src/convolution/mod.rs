//! 3x3 convolution, pad 1, stride 1, + bias + ReLU (the original's `convolution.asm`).
//!
//! Layer-level drivers: loops over tiles that call the `asm!` micro-kernels in
//! [`crate::kernels::conv`], or the scalar reference in [`crate::reference::conv`].
//! All buffers are HWC floats. Shapes (see [`ConvDims`]):
//! - padded input `x_pad`: `(h+2) x (w+2) x cin`, zero border;
//! - weights `w`: the original's layout `[cout][3][3][cin]`; bias `[cout]`;
//! - output `y`: `h x w x cout`, after ReLU;
//! - padded output gradient `dy_pad`: `(h+2) x (w+2) x cout`, zero border (the interior is the
//!   gradient with respect to the conv's pre-activation output, ReLU mask already applied);
//! - weight gradient in "KC" layout `[3][3][cin][cout]` (see [`unpack_wgrad`]).

use crate::config::ConvDims;
use crate::cpu::Path;

mod weight_grad;
pub use weight_grad::{backward_weights, unpack_wgrad};

/// Floats of a packed weight buffer (forward or backward-data packing).
pub fn packed_len(d: &ConvDims) -> usize {
    todo!("contract: {d:?}")
}

/// Repacks original-layout weights `w` into the forward kernel's layout. Called once per batch
/// after the update (cheap), never inside a sample loop.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    todo!("contract: {d:?} {} {}", w.len(), out.len())
}

/// Repacks original-layout weights into the backward-data kernel's layout (flipped 3x3,
/// in/out channels swapped).
pub fn pack_backward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    todo!("contract: {d:?} {} {}", w.len(), out.len())
}

/// `y = relu(conv(x_pad, w) + bias)`. `w` is the original layout (used by the reference path),
/// `wpack` its [`pack_forward`] form (used by the asm path).
pub fn forward(
    path: Path,
    d: &ConvDims,
    x_pad: &[f32],
    w: &[f32],
    wpack: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    let _ = (path, d, x_pad, w, wpack, bias, y);
    todo!()
}

/// Input gradient `dx` (`h x w x cin`, unpadded) from `dy_pad`: a full convolution with the
/// flipped, transposed weights. `wpack_bwd` is the [`pack_backward`] form of `w`.
pub fn backward_data(
    path: Path,
    d: &ConvDims,
    dy_pad: &[f32],
    w: &[f32],
    wpack_bwd: &[f32],
    dx: &mut [f32],
) {
    let _ = (path, d, dy_pad, w, wpack_bwd, dx);
    todo!()
}

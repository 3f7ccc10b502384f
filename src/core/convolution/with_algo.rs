//! The asm passes of [`super`] with the algorithm given rather than chosen by
//! [`super::algo`]: the public functions of [`super`] call them with `algo(d)`; the tests and
//! benches reach them through [`crate::testing`] to run both algorithms on one shape.

use super::{pack, run_tiles, winograd, Algo};
use crate::config::ConvDims;

/// [`super::packed_len`] for a given algorithm.
pub fn packed_len_with(a: Algo, d: &ConvDims) -> usize {
    match a {
        Algo::Direct => d.weight_len(),
        Algo::Winograd => winograd::packed_len(d.cin, d.cout),
    }
}

/// [`super::pack_forward`] for a given algorithm.
pub fn pack_forward_with(a: Algo, d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let cin = d.cin;
    assert!(w.len() >= d.weight_len(), "weights too short");
    let f = |oc: usize, ky: usize, kx: usize, ic: usize| w[((oc * 3 + ky) * 3 + kx) * cin + ic];
    match a {
        Algo::Direct => pack(cin, d.cout, f, out),
        Algo::Winograd => winograd::pack(cin, d.cout, f, out),
    }
}

/// [`super::pack_backward`] for a given algorithm.
pub fn pack_backward_with(a: Algo, d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let cin = d.cin;
    assert!(
        cin.is_multiple_of(16),
        "backward_data needs cin.is_multiple_of(16) (got {cin})"
    );
    assert!(w.len() >= d.weight_len(), "weights too short");
    let f = |ic: usize, ky: usize, kx: usize, oc: usize| {
        w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic]
    };
    match a {
        Algo::Direct => pack(d.cout, cin, f, out),
        Algo::Winograd => winograd::pack(d.cout, cin, f, out),
    }
}

/// [`super::forward_rows_asm`] with a given algorithm (`wpack` packed for it).
#[allow(clippy::too_many_arguments)]
pub fn forward_rows_with(
    a: Algo,
    d: &ConvDims,
    x_pad: &[f32],
    wpack: &[f32],
    bias: &[f32],
    y_band: &mut [f32],
    rows: std::ops::Range<usize>,
    scratch: &mut [f32],
) {
    match a {
        Algo::Direct => run_tiles(d, x_pad, wpack, Some(bias), y_band, rows),
        Algo::Winograd => winograd::run(d, x_pad, wpack, Some(bias), y_band, rows, scratch),
    }
}

/// The asm path of [`super::backward_data`] with a given algorithm (`wpack_bwd` packed for it).
pub fn backward_data_with(
    a: Algo,
    d: &ConvDims,
    dy_pad: &[f32],
    wpack_bwd: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    assert!(
        d.cin.is_multiple_of(16),
        "backward_data needs cin % 16 == 0 (got {})",
        d.cin
    );
    let kernel_dims = ConvDims {
        cin: d.cout,
        cout: d.cin,
        ..*d
    };
    match a {
        Algo::Direct => run_tiles(&kernel_dims, dy_pad, wpack_bwd, None, dx, 0..d.h),
        Algo::Winograd => winograd::run(&kernel_dims, dy_pad, wpack_bwd, None, dx, 0..d.h, scratch),
    }
}

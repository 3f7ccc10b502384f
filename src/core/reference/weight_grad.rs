//! Scalar reference for the weight and bias gradients of the 3x3 convolution (pad 1, stride 1).
//!
//! This is the original's `conv2d_backward` weight/bias part in plain Rust: for every output
//! pixel, take the output gradient `dy[y][x][oc]` and add `x * dy` into every weight gradient of
//! the 3x3 window, and `dy` into the bias gradient. Written for clarity, not speed.
//!
//! Layouts (HWC floats, see [`crate::layers::conv`]):
//! - `x_pad`: `(h+2) x (w+2) x cin`, zero border;
//! - `dy_pad`: `(h+2) x (w+2) x cout`; only its interior `dy[y][x] = dy_pad[y+1][x+1]` is read;
//! - `dw_kc`: "KC" layout `[3][3][cin][cout]`; `db`: `[cout]`.

use crate::config::ConvDims;

/// `dw_kc[ky][kx][ic][oc] = sum_{y<h, x<w} x_pad[y+ky][x+kx][ic] * dy[y][x][oc]` and
/// `db[oc] = sum_{y,x} dy[y][x][oc]`, both *overwritten*. Works for any `cin`, `cout` >= 1.
pub fn weight_grad(d: &ConvDims, x_pad: &[f32], dy_pad: &[f32], dw_kc: &mut [f32], db: &mut [f32]) {
    let ConvDims { h, w, cin, cout } = *d;
    let wp = w + 2; // padded row length, in pixels
    assert!(x_pad.len() >= d.in_pad_len(), "x_pad too short");
    assert!(dy_pad.len() >= d.out_pad_len(), "dy_pad too short");
    assert!(dw_kc.len() >= 9 * cin * cout, "dw_kc too short");
    assert!(db.len() >= cout, "db too short");
    let dw_kc = &mut dw_kc[..9 * cin * cout];
    let db = &mut db[..cout];
    dw_kc.fill(0.0);
    db.fill(0.0);
    for y in 0..h {
        for x in 0..w {
            let dy = &dy_pad[((y + 1) * wp + x + 1) * cout..][..cout];
            for (b, &g) in db.iter_mut().zip(dy) {
                *b += g;
            }
            for ky in 0..3 {
                for kx in 0..3 {
                    for ic in 0..cin {
                        let xv = x_pad[((y + ky) * wp + x + kx) * cin + ic];
                        let row = &mut dw_kc[((ky * 3 + kx) * cin + ic) * cout..][..cout];
                        for (acc, &g) in row.iter_mut().zip(dy) {
                            *acc += xv * g;
                        }
                    }
                }
            }
        }
    }
}

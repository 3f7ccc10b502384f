//! Scalar reference of the 3x3 convolution (forward and backward-data), written for clarity in
//! the original's layouts: HWC activations, weights `[cout][3][3][cin]`. The asm kernels are
//! tested against these; CPUs without AVX-512 run them.

use crate::config::ConvDims;

/// `y[y][x][oc] = relu(bias[oc] + sum_{ky,kx,ic} x_pad[y+ky][x+kx][ic] * w[oc][ky][kx][ic])`.
/// `x_pad` is `(h+2) x (w+2) x cin` with a zero border, `y` is `h x w x cout`.
pub fn forward(d: &ConvDims, x_pad: &[f32], w: &[f32], bias: &[f32], y: &mut [f32]) {
    let (h, wd, cin, cout) = (d.h, d.w, d.cin, d.cout);
    assert!(x_pad.len() >= d.in_pad_len(), "x_pad too short");
    assert!(w.len() >= d.weight_len(), "weights too short");
    assert!(bias.len() >= cout, "bias too short");
    assert!(y.len() >= d.out_len(), "y too short");
    for oy in 0..h {
        for ox in 0..wd {
            for oc in 0..cout {
                let mut s = bias[oc];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let xi = ((oy + ky) * (wd + 2) + ox + kx) * cin;
                        let wi = ((oc * 3 + ky) * 3 + kx) * cin;
                        for ic in 0..cin {
                            s += x_pad[xi + ic] * w[wi + ic];
                        }
                    }
                }
                y[(oy * wd + ox) * cout + oc] = s.max(0.0);
            }
        }
    }
}

/// Input gradient: `dx[y][x][ic] = sum_{ky,kx,oc} dy_pad[y+ky][x+kx][oc] * w[oc][2-ky][2-kx][ic]`,
/// i.e. a "full" correlation of the output gradient with the flipped, transposed weights.
/// `dy_pad` is `(h+2) x (w+2) x cout` with a zero border, `dx` is `h x w x cin` (overwritten).
pub fn backward_data(d: &ConvDims, dy_pad: &[f32], w: &[f32], dx: &mut [f32]) {
    let (h, wd, cin, cout) = (d.h, d.w, d.cin, d.cout);
    assert!(dy_pad.len() >= d.out_pad_len(), "dy_pad too short");
    assert!(w.len() >= d.weight_len(), "weights too short");
    assert!(dx.len() >= h * wd * cin, "dx too short");
    for oy in 0..h {
        for ox in 0..wd {
            for ic in 0..cin {
                let mut s = 0.0f32;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let gi = ((oy + ky) * (wd + 2) + ox + kx) * cout;
                        for oc in 0..cout {
                            s += dy_pad[gi + oc]
                                * w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic];
                        }
                    }
                }
                dx[(oy * wd + ox) * cin + ic] = s;
            }
        }
    }
}

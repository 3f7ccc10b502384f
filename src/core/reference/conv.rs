//! Scalar reference of the 3x3 convolution (forward and input gradient), written for clarity in
//! the original's layouts: HWC activations, weights `[cout][3][3][cin]`. The asm kernels are
//! tested against these; CPUs without AVX-512 run them.

use crate::config::ConvDims;

/// `y[y][x][oc] = relu(bias[oc] + sum_{ky,kx,ic} x_pad[y+ky][x+kx][ic] * w[oc][ky][kx][ic])`
/// for the output rows `rows` (`0..h`: all), row `y` at `y - rows.start` of `y_rows`; with
/// `bias = None`, the plain sum (no bias, no ReLU). `x_pad` is `(h+2) x (w+2) x cin` with a zero
/// border, `y_rows` is `rows.len() x w x cout`.
pub fn forward(
    d: &ConvDims,
    x_pad: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y_rows: &mut [f32],
    rows: std::ops::Range<usize>,
) {
    let (wd, cin, cout) = (d.w, d.cin, d.cout);
    assert!(
        rows.end <= d.h,
        "rows {rows:?} past the output height {}",
        d.h
    );
    assert!(x_pad.len() >= d.in_pad_len(), "x_pad too short");
    assert!(w.len() >= d.weight_len(), "weights too short");
    assert!(bias.is_none_or(|b| b.len() >= cout), "bias too short");
    assert!(y_rows.len() >= rows.len() * wd * cout, "y too short");
    for oy in rows.clone() {
        for ox in 0..wd {
            for oc in 0..cout {
                let mut s = bias.map_or(0.0, |b| b[oc]);
                for ky in 0..3 {
                    for kx in 0..3 {
                        let xi = ((oy + ky) * (wd + 2) + ox + kx) * cin;
                        let wi = ((oc * 3 + ky) * 3 + kx) * cin;
                        for ic in 0..cin {
                            s += x_pad[xi + ic] * w[wi + ic];
                        }
                    }
                }
                y_rows[((oy - rows.start) * wd + ox) * cout + oc] =
                    if bias.is_some() { s.max(0.0) } else { s };
            }
        }
    }
}

/// Input gradient: `dx[y][x][ic] = sum_{ky,kx,oc} dy_pad[y+ky][x+kx][oc] * w[oc][2-ky][2-kx][ic]`,
/// i.e. a "full" correlation of the output gradient with the flipped, transposed weights.
/// `dy_pad` is `(h+2) x (w+2) x cout` with a zero border, `dx` is `h x w x cin` (overwritten).
pub fn input_grad(d: &ConvDims, dy_pad: &[f32], w: &[f32], dx: &mut [f32]) {
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

//! Scalar reference of `relu_backward` (the original's `activation_functions.asm`).

/// `dy[i] = 0` where `y[i] <= 0`.
pub fn relu_backward(y: &[f32], dy: &mut [f32]) {
    for (d, &v) in dy.iter_mut().zip(y) {
        if v <= 0.0 {
            *d = 0.0;
        }
    }
}

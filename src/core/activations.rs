//! Activation functions (the original's `activation_functions.asm`). ReLU forward is fused into
//! the conv and dense kernels; sigmoid lives with the loss in [`crate::loss`].

use crate::cpu::Path;

/// `dy[i] = 0` where `y[i] <= 0` (y is the stored post-ReLU output), as the original's
/// `relu_backward`.
pub fn relu_backward(path: Path, y: &[f32], dy: &mut [f32]) {
    assert_eq!(y.len(), dy.len());
    match path {
        Path::Reference => crate::reference::activations::relu_backward(y, dy),
        Path::Asm => {
            crate::cpu::assert_asm_ok();
            // SAFETY: equal lengths checked above.
            unsafe {
                crate::kernels::activations::relu_backward(y.as_ptr(), dy.as_mut_ptr(), y.len())
            }
        }
    }
}

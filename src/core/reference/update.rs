//! Scalar reference of the optimizer step (the original's `update_weights.asm`).

use crate::update::Momentum;

/// `dst[i] = sum over slots s in order of src[s*stride + i]`.
pub fn sum_slots(src: &[f32], slots: usize, stride: usize, dst: &mut [f32]) {
    crate::update::check_slots(src, slots, stride, dst);
    for (i, d) in dst.iter_mut().enumerate() {
        let mut s = src[i];
        for slot in 1..slots {
            s += src[slot * stride + i];
        }
        *d = s;
    }
}

/// `p -= scale * g`.
pub fn sgd(params: &mut [f32], grads: &[f32], scale: f32) {
    assert_eq!(params.len(), grads.len());
    for (p, &g) in params.iter_mut().zip(grads) {
        *p -= scale * g;
    }
}

/// `v = momentum*v + (scale*g + weight_decay*p)`, `p -= lr*v`.
pub fn sgd_momentum(params: &mut [f32], grads: &[f32], velocity: &mut [f32], m: Momentum) {
    assert_eq!(params.len(), grads.len());
    assert_eq!(params.len(), velocity.len());
    let Momentum {
        lr,
        scale,
        momentum,
        weight_decay,
    } = m;
    for ((p, &g), v) in params.iter_mut().zip(grads).zip(velocity.iter_mut()) {
        *v = momentum * *v + (scale * g + weight_decay * *p);
        *p -= lr * *v;
    }
}

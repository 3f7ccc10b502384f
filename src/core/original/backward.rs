//! `backward.asm`: the backward pass of one sample, layers in reverse order; every gradient is
//! *added* into the parameters' gradient buffers, which the SGD step empties after the batch.
//!
//! ```text
//! d_fc2_out [1] = output - label
//! d_fc2_w [fc1]   += d_fc2_out * fc1_out            (outer_product_add)
//! d_fc2_b         += d_fc2_out
//! d_fc1_out [fc1]  = d_fc2_out * fc2_w              (matrix_vector_multiply), then relu_backward
//! d_fc1_w [fc1][flat] += d_fc1_out^T pool3_out      (outer_product_add)
//! d_fc1_b         += d_fc1_out                      (accumulate_db)
//! d_pool3 [flat]   = d_fc1_out fc1_w                (matrix_vector_multiply)
//! for conv3, conv2, conv1:
//!   d_conv_out n x n x w = maxpool_backward(d_pool), then relu_backward on conv_out
//!   conv2d_backward: d_w += ..., d_b += ..., d_pool of the layer below (padded) = ...
//!   remove_padding of that input gradient and of the layer's (padded) input
//! ```
//!
//! Mirrors [`backward.asm` lines 19-185](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/blob/7f5085c/backward.asm#L19-L185).

use super::activation_functions::relu_backward;
use super::buffer::{with_room, Buffers, ROOM};
use super::convolution::conv2d_backward;
use super::matrix_ops::{matrix_vector_multiply, outer_product_add};
use super::maxpool::maxpool_backward;
use super::padding::remove_padding;
use super::{call_routine, routine};
use crate::config::Shapes;

routine! {
    /// `db[i] += g[i]` for `rcx` floats (a multiple of 16), 16 at a time.
    ///
    /// Registers (as the original): `rdi` g, `rdx` db, `rcx` count; uses `zmm0-1`.
    mirrors "backward.asm" lines 192-205;
    safety:
    /// AVX-512 F. `rcx` a nonzero multiple of 16 (a count below 16 would loop about 2^64 times);
    /// `rdi` readable and `rdx` readable and writable for `rcx` floats (no alignment needed).
    fn accumulate_db_routine {
        "shr rcx, 4",
        "2:", // .db_loop (backward.asm:194)
        "vmovups zmm0, [rdi]",
        "vmovups zmm1, [rdx]",
        "vaddps zmm1, zmm1, zmm0",
        "vmovups [rdx], zmm1",
        "add rdi, 64",
        "add rdx, 64",
        "dec rcx",
        "jnz 2b",
        "ret",
    }
}

/// `db += g` through [`accumulate_db_routine`] (equal lengths, a multiple of 16).
///
/// # Safety
/// AVX-512 F.
pub unsafe fn accumulate_db(g: &[f32], db: &mut [f32]) {
    assert!(g.len() == db.len() && g.len() >= 16 && g.len().is_multiple_of(16));
    call_routine!(accumulate_db_routine, rbx = 0usize; ;
        in("rdi") g.as_ptr(), in("rdx") db.as_mut_ptr(), in("rcx") g.len(),);
}

/// Runs the backward pass of the sample the last [`super::forward::forward_pass`] saw, whose
/// label is `label` (0 or 1), adding its gradients into the gradient buffers.
///
/// # Safety
/// AVX-512 F/BW/DQ/VL; `buf` sized for `s`; the forward pass of this sample just ran.
pub unsafe fn backward_pass(buf: &mut Buffers, s: &Shapes, label: u8) {
    let Buffers { f, masks, v, .. } = buf;
    // SAFETY (every get/get_mut below): the views of one call are distinct buffers of the arena.
    let (f, masks) = (f.shared(), masks.shared());
    let (p, g) = (&v.params, &v.grads);
    let d_fc2_out = f.get_mut(v.d_fc2_out);
    d_fc2_out[0] = f.get(v.output)[0] - label as f32;
    outer_product_add(d_fc2_out, f.get(v.fc1_out), f.get_mut(g.fc2_w));
    let d_fc2_b = f.get_mut(g.fc2_b);
    d_fc2_b[0] = d_fc2_out[0] + d_fc2_b[0];
    matrix_vector_multiply(d_fc2_out, f.get(p.fc2_w), f.get_mut(v.d_fc1_out));
    relu_backward(f.get(v.fc1_out), f.get_mut(v.d_fc1_out));
    outer_product_add(f.get(v.d_fc1_out), f.get(v.pool_out[2]), f.get_mut(g.fc1_w));
    accumulate_db(f.get(v.d_fc1_out), f.get_mut(g.fc1_b));
    matrix_vector_multiply(f.get(v.d_fc1_out), f.get(p.fc1_w), f.get_mut(v.d_pool[2]));
    // l = 2, 1, 0: the original's conv3, conv2, conv1; `d_pool[l]` is its `d_pool{l+1}`,
    // `d_pool[l - 1]` the input gradient this layer writes (see `buffer::Views`).
    for l in (0..3).rev() {
        let d = s.conv[l];
        maxpool_backward(
            f.get_mut(v.d_conv_out[l]),
            f.get(v.d_pool[l]),
            masks.get(v.argmax[l]),
            d.h,
            d.cout,
        );
        relu_backward(
            f.get(v.conv_out[l]),
            &mut f.get_mut(v.d_conv_out[l])[..d.out_len()],
        );
        let (x, d_x) = if l == 0 {
            (v.input, v.d_input_not_needed)
        } else {
            (v.pool_out[l - 1], v.d_pool[l - 1])
        };
        conv2d_backward(
            f.get(p.conv_w[l]),
            f.get(x),
            f.get(v.d_conv_out[l]),
            d.cout,
            d.cin,
            d.h,
            f.get_mut(with_room(g.conv_w[l], ROOM)),
            f.get_mut(d_x),
            f.get_mut(g.conv_b[l]),
        );
        if l > 0 {
            remove_padding(f.get_mut(d_x), d.h, d.cin);
            remove_padding(f.get_mut(x), d.h, d.cin);
        }
    }
}

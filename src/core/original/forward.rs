//! `forward.asm`: the forward pass of one sample, as the original chains its routines.
//!
//! ```text
//! input  S x S x 3        -- add_padding --> (S+2)^2 x 3
//!        -- conv2d(conv1) --> conv1_out S x S x w1 -- maxpool --> pool1_out S/2 x S/2 x w1
//! pool1_out               -- add_padding --> (S/2+2)^2 x w1
//!        -- conv2d(conv2) --> conv2_out S/2 x S/2 x w2 -- maxpool --> pool2_out S/4 x S/4 x w2
//! pool2_out               -- add_padding --> (S/4+2)^2 x w2
//!        -- conv2d(conv3) --> conv3_out S/4 x S/4 x w3 -- maxpool --> pool3_out (flat)
//! pool3_out -- dense(fc1, ReLU) --> fc1_out [fc1] -- dense(fc2, sigmoid) --> output [1]
//! ```
//!
//! Mirrors [`forward.asm` lines 20-120](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/blob/7f5085c/forward.asm#L20-L120).

use super::buffer::Buffers;
use super::convolution::conv2d;
use super::dense::{dense, Activation};
use super::maxpool::maxpool;
use super::padding::add_padding;
use crate::config::Shapes;

/// Runs the forward pass on the sample in `input` (loaded by [`super::loader::load_sample`]).
///
/// # Safety
/// AVX-512 F/BW/DQ/VL; `buf` sized for `s`.
pub unsafe fn forward_pass(buf: &mut Buffers, s: &Shapes) {
    let Buffers { f, masks, v, .. } = buf;
    // SAFETY (every get/get_mut below): the views of one call are distinct buffers of the arena.
    let (f, masks) = (f.shared(), masks.shared());
    let p = &v.params;
    // l = 0, 1, 2: the original's conv1, conv2, conv3 (and pool1..3; see `buffer::Views`).
    for l in 0..3 {
        let d = s.conv[l];
        let x = if l == 0 { v.input } else { v.pool_out[l - 1] };
        add_padding(f.get_mut(x), d.h, d.cin, f.get_mut(v.temp));
        conv2d(
            f.get(p.conv_w[l]),
            f.get(x),
            f.get_mut(v.conv_out[l]),
            d.cout,
            d.cin,
            d.h,
            f.get(p.conv_b[l]),
        );
        maxpool(
            f.get(v.conv_out[l]),
            f.get_mut(v.pool_out[l]),
            masks.get_mut(v.argmax[l]),
            d.h,
            d.cout,
        );
    }
    dense(
        f.get(v.pool_out[2]),
        f.get(p.fc1_w),
        f.get(p.fc1_b),
        f.get_mut(v.fc1_out),
        Activation::Relu,
    );
    dense(
        f.get(v.fc1_out),
        f.get(p.fc2_w),
        f.get(p.fc2_b),
        f.get_mut(v.output),
        Activation::Sigmoid,
    );
}

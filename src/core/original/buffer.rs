//! `buffer.asm`: every tensor of the original tier, as the original's static zero-initialised
//! buffers, but sized once from the hyperparameters: one float arena, one `u16` arena for the
//! max-pool masks, one byte arena for the staging image and its label.
//!
//! Two differences of layout, neither of which changes a bit: the parameters (and, separately,
//! their gradients) are contiguous in `parameters.raw` order, and every buffer that a routine
//! reads or writes past its end (see [`super::convolution::conv2d_backward_routine`], the
//! loader's 64-byte reads, the one-float read past an output gradient) has 16 elements of room
//! after it, where the original let those accesses run into its neighbour.

use crate::arena::{Arena, ArenaLayout, View};
use crate::config::Shapes;
use crate::net::ParamViews;

/// Room after a buffer that a routine reads or writes a little past.
pub const ROOM: usize = 16;

/// Where every buffer of the float arena is. Comments give the shapes (S = image size,
/// `n_l = S >> l` the size of conv layer `l`'s input and output, `w_l` its width).
///
/// Each `[View; 3]` is indexed by layer from 0, where the original's names count from 1: index
/// `l` is the original's layer `l + 1` (`conv_out[0]` is `conv1_out`, `pool_out[1]` is
/// `pool2_out`, `argmax[2]` is `pool3_argmax`, `d_pool[2]` is `d_pool3`).
#[derive(Clone, Debug)]
pub struct Views {
    /// The parameters, contiguous in `parameters.raw` order.
    pub params: ParamViews,
    pub all_params: View,
    /// Their gradients (`d_conv1_w` ... in the original), each with [`ROOM`] after it.
    pub grads: ParamViews,
    /// The sample: `S x S x 3`, padded in place to `(S+2)^2 x 3`.
    pub input: View,
    /// Conv outputs after ReLU, `n_l x n_l x w_l`: the original's `conv1_out`, `conv2_out`,
    /// `conv3_out`.
    pub conv_out: [View; 3],
    /// Pool outputs `n_l/2 x n_l/2 x w_l`; pool1's and pool2's padded in place to
    /// `(n_l/2 + 2)^2 x w_l` as the next conv's input. pool3's is fc1's input (`flat`). The
    /// original's `pool1_out`, `pool2_out`, `pool3_out`.
    pub pool_out: [View; 3],
    /// `[fc1]`, and the network's output probability `[1]`.
    pub fc1_out: View,
    pub output: View,
    /// Gradients of the output, of fc1's output, of pool3's output (`flat`).
    pub d_fc2_out: View,
    pub d_fc1_out: View,
    /// The gradients of the pool outputs, the original's `d_pool1`, `d_pool2`, `d_pool3`:
    /// `d_pool[2]` (`d_pool3`) `flat`; `d_pool[1]` (`d_pool2`) and `d_pool[0]` (`d_pool1`) padded
    /// like the inputs of conv3 and conv2, `(n+2)^2 x w` (conv3's and conv2's input gradients,
    /// un-padded in place afterwards).
    pub d_pool: [View; 3],
    /// Gradients of the conv outputs, `n_l x n_l x w_l`: the original's `d_conv1_out`,
    /// `d_conv2_out`, `d_conv3_out`.
    pub d_conv_out: [View; 3],
    /// conv1's input gradient, `(S+2)^2 x 3`: computed and never used, as in the original.
    pub d_input_not_needed: View,
    /// What `add_padding` builds a padded tensor in: the largest padded tensor.
    pub temp: View,
    /// Loss of each sample of the batch.
    pub losses: View,
    /// Length of the float arena.
    pub total: usize,
    /// Max-pool masks (the `u16` arena): `maxpool::mask_len(n_l, w_l)` each; the original's
    /// `pool1_argmax`, `pool2_argmax`, `pool3_argmax`.
    pub argmax: [View; 3],
    pub argmax_total: usize,
    /// The staging image `S x S x 3` bytes plus 64 of room, and the label byte (the byte arena).
    pub image: View,
    pub label: View,
    pub bytes_total: usize,
}

impl Views {
    pub fn new(s: &Shapes, batch: usize) -> Views {
        let mut l = ArenaLayout::new();
        let params = ParamViews::take(&mut l, s, 0);
        let all_params = View {
            off: 0,
            len: s.param_count(),
        };
        let grads = ParamViews::take(&mut l, s, ROOM);
        let c = s.conv;
        let padded = |n: usize, ch: usize| (n + 2) * (n + 2) * ch;
        let input = l.take(padded(c[0].h, 3) + ROOM);
        let mut conv_out = [View::default(); 3];
        let mut pool_out = [View::default(); 3];
        for i in 0..3 {
            conv_out[i] = l.take(c[i].out_len());
            let half = c[i].h / 2;
            pool_out[i] = l.take(if i < 2 {
                padded(half, c[i].cout)
            } else {
                s.flat
            });
        }
        let fc1_out = l.take(s.fc1);
        let output = l.take(1);
        let d_fc2_out = l.take(1);
        let d_fc1_out = l.take(s.fc1);
        // In the original's order: d_pool3, then per layer from conv3 down d_convN_out and
        // d_pool(N-1) (the original has no d_pool0: conv1's input gradient is
        // d_input_not_needed).
        let d_pool3 = l.take(s.flat);
        let mut d_conv_out = [View::default(); 3];
        let mut d_pool = [View::default(), View::default(), d_pool3];
        for i in (0..3).rev() {
            d_conv_out[i] = l.take(c[i].out_len() + ROOM);
            if i > 0 {
                d_pool[i - 1] = l.take(padded(c[i].h, c[i].cin) + ROOM);
            }
        }
        let d_input_not_needed = l.take(padded(c[0].h, 3) + ROOM);
        let temp = l.take(
            (0..3)
                .map(|i| padded(c[i].h, c[i].cin))
                .max()
                .expect("three layers"),
        );
        let losses = l.take(batch);
        let total = l.total() + ROOM;

        let mut m = ArenaLayout::new();
        let argmax = c.map(|d| m.take(super::maxpool::mask_len(d.h, d.cout)));
        let mut b = ArenaLayout::new();
        let image = b.take(c[0].h * c[0].w * 3 + 64);
        let label = b.take(1);
        Views {
            params,
            all_params,
            grads,
            input,
            conv_out,
            pool_out,
            fc1_out,
            output,
            d_fc2_out,
            d_fc1_out,
            d_pool,
            d_conv_out,
            d_input_not_needed,
            temp,
            losses,
            total,
            argmax,
            argmax_total: m.total(),
            image,
            label,
            bytes_total: b.total(),
        }
    }
}

/// The arenas and their views.
pub struct Buffers {
    pub f: Arena<f32>,
    pub masks: Arena<u16>,
    pub bytes: Arena<u8>,
    pub v: Views,
}

impl Buffers {
    pub fn new(s: &Shapes, batch: usize) -> Result<Buffers, String> {
        let v = Views::new(s, batch);
        Ok(Buffers {
            f: Arena::zeroed(v.total)?,
            masks: Arena::zeroed(v.argmax_total)?,
            bytes: Arena::zeroed(v.bytes_total)?,
            v,
        })
    }
    /// Bytes of the three arenas.
    pub fn bytes_used(&self) -> usize {
        self.f.bytes() + self.masks.bytes() + self.bytes.bytes()
    }
}

/// `view` extended by `extra` elements (the room after it).
pub fn with_room(view: View, extra: usize) -> View {
    View {
        off: view.off,
        len: view.len + extra,
    }
}

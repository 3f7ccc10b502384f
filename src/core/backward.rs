//! The backward pass (the original's `backward.asm`), in reverse layer order: loss and fc2 (one
//! thread), fc1 over the whole batch (threads split neurons and inputs), then the conv blocks per
//! sample, each writing its own gradient block; finally the blocks are summed in sample order,
//! so the result does not depend on how many threads ran.

use crate::activations;
use crate::convolution::{self, ConvWeights};
use crate::dense;
use crate::loss;
use crate::maxpool;
use crate::model::Ctx;
use crate::profile::{time, Section};
use crate::update;
use std::ops::Range;

/// Loss and fc2 backward over `rows` samples (one thread). Returns the summed loss.
/// Needs `logits` and `h1` from the forward pass; writes `probs`, `dlogits`, fc2's gradients,
/// and `dh1` (with fc1's ReLU mask applied).
/// With dropout on fc2's input (`keep = Some(k)`), fc1's output gradient also passes the mask.
pub fn head(c: &Ctx, rows: usize, labels: &[u8], keep: Option<f32>) -> f32 {
    let s = c.shapes;
    // SAFETY: single thread in this phase.
    unsafe {
        let logits = &c.acts.get(c.batch.logits)[..rows];
        let probs = &mut c.acts.get_mut(c.batch.probs)[..rows];
        let dlogits = &mut c.acts.get_mut(c.batch.dlogits)[..rows];
        let sum = loss::sigmoid_bce(c.path, logits, labels, probs, dlogits);
        let h1 = &c.acts.get(c.batch.h1)[..rows * s.fc1];
        dense::backward_weights(
            c.path,
            rows,
            s.fc1,
            1,
            h1,
            dlogits,
            c.grads.get_mut(c.param_views.fc2_w),
            c.grads.get_mut(c.param_views.fc2_b),
            0..1,
        );
        let dh1 = &mut c.acts.get_mut(c.batch.dh1)[..rows * s.fc1];
        dense::backward_data(
            c.path,
            rows,
            s.fc1,
            1,
            dlogits,
            c.params.get(c.param_views.fc2_w),
            dh1.as_mut_ptr(),
            0..s.fc1,
        );
        if let Some(k) = keep {
            let bits = &c.masks.get(c.batch.drop_h1)[..rows * s.fc1 / 8];
            crate::dropout::apply(c.path, dh1, bits, k);
        }
        activations::relu_backward(c.path, h1, dh1);
        sum
    }
}

/// fc1 backward for this thread's share: weight/bias gradients of neurons `cols`, input
/// gradient of inputs `ks`.
pub fn fc1(c: &Ctx, rows: usize, cols: Range<usize>, ks: Range<usize>) {
    let s = c.shapes;
    // SAFETY: reads fc_in, dh1, fc1_w; writes disjoint rows of the fc1 gradient and disjoint
    // columns of dflat.
    unsafe {
        let fc_in = &c.acts.get(c.batch.fc_in)[..rows * s.flat];
        let dh1 = &c.acts.get(c.batch.dh1)[..rows * s.fc1];
        if !cols.is_empty() {
            let dw = c.grads.get_mut(c.param_views.fc1_w);
            let db = c.grads.get_mut(c.param_views.fc1_b);
            dense::backward_weights(
                c.path,
                rows,
                s.flat,
                s.fc1,
                fc_in,
                dh1,
                &mut dw[cols.start * s.flat..cols.end * s.flat],
                &mut db[cols.clone()],
                cols,
            );
        }
        if !ks.is_empty() {
            let dflat = c.acts.get_mut(c.batch.dflat);
            dense::backward_data(
                c.path,
                rows,
                s.flat,
                s.fc1,
                dh1,
                c.params.get(c.param_views.fc1_w),
                dflat.as_mut_ptr(),
                ks,
            );
        }
    }
}

/// fc1 backward fused with fc1's plain SGD weight step (asm path, `flat % 64 == 0`, no
/// momentum or weight decay), for this thread's share: bias gradients of neurons `cols` (into
/// the gradient arena, updated later with the other parameters), and for inputs `ks` (multiples
/// of 64) the input gradient, then the weight gradient applied at once as
/// `w -= scale * g` ([`dense::backward_fused_sgd`]). fc1's weight gradient is not stored, and
/// the update step must skip fc1's weights.
pub fn fc1_fused_sgd(c: &Ctx, rows: usize, cols: Range<usize>, ks: Range<usize>, scale: f32) {
    let s = c.shapes;
    // SAFETY: reads fc_in and dh1; each thread writes disjoint entries of fc1_b's gradient and
    // disjoint input columns of dflat and of fc1_w (nobody else reads fc1_w in this phase).
    unsafe {
        let fc_in = &c.acts.get(c.batch.fc_in)[..rows * s.flat];
        let dh1 = &c.acts.get(c.batch.dh1)[..rows * s.fc1];
        if !cols.is_empty() {
            let db = c.grads.get_mut(c.param_views.fc1_b);
            update::sum_slots(
                c.path,
                &dh1[cols.start..],
                rows,
                s.fc1,
                &mut db[cols.clone()],
            );
        }
        if !ks.is_empty() {
            let w = c.params.get_mut(c.param_views.fc1_w);
            assert!(w.len() >= s.fc1 * s.flat);
            dense::backward_fused_sgd(
                rows,
                s.flat,
                s.fc1,
                fc_in,
                dh1,
                w.as_mut_ptr(),
                scale,
                c.acts.get_mut(c.batch.dflat).as_mut_ptr(),
                ks,
            );
        }
    }
}

/// The conv blocks of the sample in batch slot `slot`, backwards, with thread `t`'s scratch:
/// fills the slot's conv gradient block.
pub fn conv_blocks(c: &Ctx, slot: usize, t: usize) {
    let sample = &c.samples[slot];
    let thread = &c.threads[t];
    let s = c.shapes;
    // SAFETY: slot views belong to this slot, thread views to this thread; parameters, packed
    // weights and dflat are read-only in this phase.
    unsafe {
        for l in (0..3).rev() {
            let d = s.conv[l];
            let p = d.pool();
            let dout: &[f32] = if l == 2 {
                c.acts.get(c.batch.dflat.slot(slot, s.flat))
            } else {
                c.acts.get(thread.dx[l + 1])
            };
            let dy_pad = c.acts.get_mut(thread.dy_pad[l]);
            time(Section::PoolBackward(l), || {
                maxpool::backward(c.path, &p, dout, c.masks.get(sample.argmax[l]), dy_pad)
            });
            time(Section::ConvWeightGrad(l), || {
                convolution::backward_weights(
                    c.path,
                    &d,
                    c.acts.get(sample.x_pad[l]),
                    dy_pad,
                    c.acts.get_mut(sample.grads.dw_kc[l]),
                    c.acts.get_mut(sample.grads.db[l]),
                    c.acts.get_mut(thread.wino),
                )
            });
            if l > 0 {
                time(Section::ConvDataGrad(l), || {
                    convolution::backward_data(
                        c.path,
                        &d,
                        dy_pad,
                        ConvWeights {
                            original: c.params.get(c.param_views.conv_w[l]),
                            packed: c.packed.get(c.packed_bwd[l]),
                        },
                        c.acts.get_mut(thread.dx[l]),
                        c.acts.get_mut(thread.wino),
                    )
                });
            }
        }
    }
}

/// Sums the per-sample conv gradient blocks of `rows` slots into `conv_grad_sum`, for this
/// thread's `range` of the block (slot order fixed).
pub fn reduce_conv_grads(c: &Ctx, rows: usize, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    let first = &c.samples[0].grads;
    let base = first.dw_kc[0].off;
    let stride = if c.samples.len() > 1 {
        c.samples[1].grads.dw_kc[0].off - base
    } else {
        first.len
    };
    let src = crate::arena::View {
        off: base + range.start,
        len: (rows - 1) * stride + range.len(),
    };
    let sum = &c.batch.conv_grad_sum;
    let dst = crate::arena::View {
        off: sum.dw_kc[0].off + range.start,
        len: range.len(),
    };
    // SAFETY: slots are read-only now; threads write disjoint ranges of the sum.
    unsafe { update::sum_slots(c.path, c.acts.get(src), rows, stride, c.acts.get_mut(dst)) }
}

/// Moves the summed conv gradients into the gradient arena in the original layout (one thread).
pub fn store_conv_grads(c: &Ctx) {
    let sum = &c.batch.conv_grad_sum;
    // SAFETY: single thread in this phase.
    unsafe {
        for l in 0..3 {
            let d = c.shapes.conv[l];
            convolution::unpack_wgrad(
                &d,
                c.acts.get(sum.dw_kc[l]),
                c.grads.get_mut(c.param_views.conv_w[l]),
            );
            c.grads
                .get_mut(c.param_views.conv_b[l])
                .copy_from_slice(c.acts.get(sum.db[l]));
        }
    }
}

//! One batch through the network: the forward pass (the original's `forward.asm`), the backward
//! pass (`backward.asm`), and the inference pass, as phases that every thread of a [`Team`] runs,
//! separated by barriers. Each phase calls the layers ([`crate::layers`]) through the table and
//! plans chosen when the network was built ([`Ctx::fns`], [`Ctx::conv`]).
//!
//! Shapes for the default hyperparameters (S = 128), per sample:
//! image u8 128x128x3 -> `x_pad[0]` 130x130x3 -> conv1 128x128x32 -> pool1 -> `x_pad[1]`
//! 66x66x32 -> conv2 64x64x64 -> pool2 -> `x_pad[2]` 34x34x64 -> conv3 32x32x128 -> pool3 ->
//! fc_in row 16x16x128 = 32768 -> fc1 128 -> fc2 1 -> sigmoid. Checked:
//!
//! ```
//! let s = catdog_core::config::Hyper::default().shapes().unwrap();
//! let hwc = |d: &catdog_core::config::ConvDims| (d.h, d.w, d.cin, d.cout);
//! assert_eq!(hwc(&s.conv[0]), (128, 128, 3, 32)); // x_pad[0] is (128+2) x (128+2) x 3
//! assert_eq!(hwc(&s.conv[1]), (64, 64, 32, 64)); // x_pad[1] is 66 x 66 x 32
//! assert_eq!(hwc(&s.conv[2]), (32, 32, 64, 128)); // x_pad[2] is 34 x 34 x 64
//! assert_eq!((s.flat, s.fc1), (16 * 16 * 128, 128));
//! assert_eq!(s.flat, 32768);
//! // conv outputs: 2 MiB, 1 MiB, 0.5 MiB (conv1 and conv2 run banded, see ConvPlan::band)
//! let mib = |d: &catdog_core::config::ConvDims| d.out_len() as f64 * 4.0 / (1 << 20) as f64;
//! assert_eq!([mib(&s.conv[0]), mib(&s.conv[1]), mib(&s.conv[2])], [2.0, 1.0, 0.5]);
//! ```
//!
//! A training step ([`forward_backward`]) is seven phases:
//! 1. conv blocks forward, samples handed to whichever thread is free ([`Team::deal`]; each
//!    sample has its own slot, so which thread runs it does not matter); with crops on, each
//!    sample's warp ([`crate::augment`]) first, into the thread's byte buffer, timed as the load;
//! 2. fc1 forward, neurons split among threads;
//! 3. fc2, loss, fc2 backward (thread 0; tiny);
//! 4. fc1 backward: neurons split for the weight gradient, inputs split for the input gradient
//!    (with plain SGD on the asm path: inputs split for both, and fc1's weights take their SGD
//!    step right there, see [`crate::layers::fc::backward_fused_sgd`]);
//! 5. conv blocks backward per sample, each into the sample's own gradient block;
//! 6. per-sample conv gradients summed in sample order (threads split the block);
//! 7. (in `crate::train`) the SGD step over all parameters, then the weights are repacked.
//!
//! No phase's arithmetic depends on the number of threads, so any `--threads` gives the same
//! bits. `bench --profile` times the phases here, and the layers inside the per-sample phases,
//! with a [`Clock`] read at their boundaries.

use crate::arena::View;
use crate::dataset::Dataset;
use crate::layers::conv::{Forward, InputGrads, PoolOut, WeightGrads};
use crate::layers::fc::{self, FcDims, FcForward, FcWeightGrads};
use crate::layers::pool::OutPlace;
use crate::layers::FcPackedFn;
use crate::net::Ctx;
use crate::profile::{Clock, Section};
use crate::team::Team;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Per-batch augmentation and regularisation switches.
pub struct Augment {
    /// `Some(epoch)` when flips are on.
    pub flips: Option<usize>,
    /// `Some((epoch, smallest area in percent))` when random crops and colour jitter are on
    /// ([`crate::augment`]).
    pub crops: Option<(usize, u8)>,
    /// Label smoothing epsilon (0: none).
    pub smoothing: f32,
    pub dropout: bool,
    pub keep: f32,
    /// (seed, epoch, step): with the slot and layer, the key of a dropout mask.
    pub key: [u64; 3],
}

impl Augment {
    pub fn none() -> Self {
        Self {
            flips: None,
            crops: None,
            smoothing: 0.0,
            dropout: false,
            keep: 1.0,
            key: [0; 3],
        }
    }
    pub fn new(opts: &crate::network::EpochOptions, epoch: usize, step: usize) -> Self {
        Self {
            flips: opts.flips.then_some(epoch),
            crops: opts.crops.then_some((epoch, opts.crop_area)),
            smoothing: opts.label_smoothing,
            dropout: opts.dropout > 0.0,
            keep: 1.0 - opts.dropout,
            key: [opts.seed, epoch as u64, step as u64],
        }
    }
    fn dropout_key(&self, slot: usize, layer: u64) -> Option<[u64; 5]> {
        self.dropout
            .then_some([self.key[0], self.key[1], self.key[2], slot as u64, layer])
    }
}

/// Whether sample `i` is mirrored in `epoch` of a run seeded `seed` (a hash, so it needs no
/// state to resume).
pub fn flip_bit(seed: u64, epoch: usize, i: usize) -> bool {
    let mut r = crate::rng::Rng::new(
        seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ ((epoch as u64) << 32) ^ i as u64 ^ 0xF11F,
    );
    r.next_u64() & 1 == 1
}

/// A batch: which samples of which dataset, and with which augmentation.
pub struct Batch<'a> {
    pub data: &'a dyn Dataset,
    /// Sample indices, one per slot.
    pub idx: &'a [u32],
    pub aug: Augment,
}

/// Phases 1-6 for the batch `idx`, run by thread `t` of `team`. Thread 0 returns the batch's
/// mean loss (other threads `None`). Gradients end up in the gradient arena, in the parameter
/// file's layout, except with `fc1_sgd = Some(lr / batch)`: then fc1's weights take their plain
/// SGD step in phase 4 instead (unless the loss is not finite; thread 0 tells the others through
/// `loss_ok`) and their gradient is not stored.
pub fn forward_backward(
    c: &Ctx,
    team: &Team,
    t: usize,
    batch: &Batch,
    fc1_sgd: Option<f32>,
    loss_ok: &AtomicBool,
) -> Option<f32> {
    let &Batch { data, idx, ref aug } = batch;
    let (k, s, b) = (c.fns, c.shapes, idx.len());
    // 1. conv blocks forward (and dropout on the sample's fc1 input).
    for slot in team.deal(t, b) {
        let i = idx[slot] as usize;
        let flip = aug
            .flips
            .is_some_and(|epoch| flip_bit(aug.key[0], epoch, i));
        match aug.crops {
            None => conv_blocks_forward(c, slot, t, data.image(i), flip, true),
            Some((epoch, area)) => {
                let clock = Clock::start();
                let (h, w) = (s.conv[0].h, s.conv[0].w);
                let warp = crate::augment::Warp::draw(aug.key[0], epoch, i, (h, w), area, flip);
                // SAFETY: the thread's augmented-image buffer is this thread's alone.
                let img = unsafe { c.masks.get_mut(c.threads[t].augmented) };
                crate::augment::warp_image(data.image(i), img, h, w, &warp);
                clock.lap(Section::Load);
                // The mirror is in the warp.
                conv_blocks_forward(c, slot, t, img, false, true);
            }
        }
        if let Some(key) = aug.dropout_key(slot, 0) {
            // SAFETY: the slot's row of fc_in and of the mask belong to this thread now.
            unsafe {
                let (row, bits) = (
                    c.batch.fc_in.slot(slot, s.flat),
                    c.batch.drop_in.slot(slot, s.flat / 8),
                );
                crate::layers::dropout::draw_mask(c.masks.get_mut(bits), aug.keep, key);
                (k.dropout)(c.acts.get_mut(row), c.masks.get(bits), aug.keep);
            }
        }
    }
    team.sync();
    // 2. fc1 forward.
    let clock = Clock::start();
    fc1_forward(c, b, team.part(s.fc1, t, 4));
    clock.lap(Section::Fc1Forward);
    team.sync();
    // 3. head (thread 0): fc2, sigmoid, loss, fc2 backward.
    let mut loss = None;
    if t == 0 {
        // SAFETY: only thread 0 runs in this phase.
        let labels = unsafe { &mut c.masks.get_mut(c.batch.labels)[..b] };
        for (l, &i) in labels.iter_mut().zip(idx) {
            *l = data.labels()[i as usize];
        }
        if let Some(key) = aug.dropout_key(0, 1) {
            // SAFETY: only thread 0 runs in this phase.
            unsafe {
                let n = b * s.fc1;
                let bits = &mut c.masks.get_mut(c.batch.drop_h1)[..n / 8];
                crate::layers::dropout::draw_mask(bits, aug.keep, key);
                (k.dropout)(&mut c.acts.get_mut(c.batch.h1)[..n], bits, aug.keep);
            }
        }
        let clock = Clock::start();
        head_forward(c, b);
        let keep = aug.dropout.then_some(aug.keep);
        let mut l = head_backward(c, b, labels, keep, aug.smoothing) / b as f32;
        clock.lap(Section::Head);
        // The clamped log in the loss can hide diverged parameters; the logits cannot.
        // SAFETY: only thread 0 runs in this phase.
        if unsafe { c.acts.get(c.batch.logits) }[..b]
            .iter()
            .any(|z| !z.is_finite())
        {
            l = f32::NAN;
        }
        loss_ok.store(l.is_finite(), Ordering::SeqCst);
        loss = Some(l);
    }
    team.sync();
    // A non-finite loss stops training before any parameter changes: no fused step then.
    let fc1_sgd = fc1_sgd.filter(|_| loss_ok.load(Ordering::SeqCst));
    // 4. fc1 backward (with `fc1_sgd = Some(lr / batch)`: fused with fc1's weight step).
    let clock = Clock::start();
    let ks = team.part(s.flat, t, if fc1_sgd.is_some() { 64 } else { 16 });
    fc1_backward(c, b, team.part(s.fc1, t, 4), ks, fc1_sgd);
    clock.lap(Section::Fc1Backward);
    team.sync();
    // 5. conv blocks backward (after undoing dropout on the fc1 input gradient).
    for slot in team.deal(t, b) {
        if aug.dropout {
            // SAFETY: the slot's row of dflat belongs to this thread now.
            unsafe {
                let (row, bits) = (
                    c.batch.dflat.slot(slot, s.flat),
                    c.batch.drop_in.slot(slot, s.flat / 8),
                );
                (k.dropout)(c.acts.get_mut(row), c.masks.get(bits), aug.keep);
            }
        }
        conv_blocks_backward(c, slot, t);
    }
    team.sync();
    // 6. sum the per-sample conv gradients, and move them into the gradient arena.
    let clock = Clock::start();
    reduce_conv_grads(c, b, team.part(c.samples[0].grads.len, t, 16));
    clock.lap(Section::Reduce);
    team.sync();
    if t == 0 {
        let clock = Clock::start();
        store_conv_grads(c);
        clock.lap(Section::Reduce);
    }
    team.sync();
    loss
}

/// The inference pass over `rows` samples of `data` from `start`, each mirrored left-right
/// when `flip` (the forward phases 1-3 without the loss; fc1 on its packed weights where the
/// path has them, which the caller has packed:
/// [`crate::net::Net::pack_fc1_for_inference`]): leaves P(dog) in the batch's `probs`.
pub fn forward_only(
    c: &Ctx,
    team: &Team,
    t: usize,
    data: &dyn Dataset,
    start: usize,
    rows: usize,
    flip: bool,
) {
    for slot in team.deal(t, rows) {
        conv_blocks_forward(c, slot, t, data.image(start + slot), flip, false);
    }
    team.sync();
    match c.fns.fc_forward_packed {
        Some(f) => fc1_forward_packed(c, f, rows, team.part(c.shapes.fc1, t, 32)),
        None => fc1_forward(c, rows, team.part(c.shapes.fc1, t, 4)),
    }
    team.sync();
    if t == 0 {
        head_forward(c, rows);
    }
    team.sync();
}

// ---------------------------------------------------------------------------------------------
// Conv blocks (input, then conv + ReLU + pool three times), one sample, forward and backward.
// x_pad[l] [h+2][w+2][cin] -> conv -> y [h][w][cout] -> pool -> x_pad[l+1] interior (fc_in row
// [flat] after conv3); backward: dflat row or dx[l+1] -> pool -> dy_pad[l] -> dw, db, dx[l].

/// The conv blocks of one sample: `image` into batch slot `slot`, using thread `t`'s scratch.
/// Training (`train`) writes the slot's padded conv inputs, argmax codes and row of `fc_in`,
/// all that its backward pass needs; inference writes only the row of `fc_in`, with the conv
/// inputs in the thread's own buffers and no argmax codes. Each layer runs in bands of its
/// plan's `band` output rows: a band is pooled right after it is computed, while it is still
/// in cache (default network: conv1 8 rows, the bands of F(4,3) along rows; conv2, whole
/// F(4x4) tiles, 4 rows, 64 KiB), instead of the whole 1-2 MiB output being written out and
/// read back; where the plan has a fused kernel (`forward_pool`; in training only where
/// `fused_in_training`: conv1, not F(4x4)), the band is pooled in registers and never stored.
pub fn conv_blocks_forward(c: &Ctx, slot: usize, t: usize, image: &[u8], flip: bool, train: bool) {
    let (k, s) = (c.fns, c.shapes);
    let (sample, thread) = (&c.samples[slot], &c.threads[t]);
    let x_pads = if train { &sample.x_pad } else { &thread.x_pad };
    let clock = Clock::start();
    // SAFETY (all unsafe blocks here): slot views belong to this slot only and thread views to
    // this thread only; the parameter and packed views are read-only during this phase.
    unsafe {
        let x0 = c.acts.get_mut(x_pads[0]);
        (k.load_image)(s.conv[0].h, s.conv[0].w, image, x0, flip);
        clock.lap(Section::Load);
        for l in 0..3 {
            let (d, plan) = (s.conv[l], c.conv[l]);
            let p = d.pool();
            let (out, place) = if l < 2 {
                (c.acts.get_mut(x_pads[l + 1]), OutPlace::padded(&p))
            } else {
                (
                    c.acts.get_mut(fc1_input_row(c, slot, train)),
                    OutPlace::flat(&p),
                )
            };
            let argmax = train.then(|| c.masks.get_mut(sample.argmax[l]));
            let mut pool = PoolOut { out, place, argmax };
            let x_pad = c.acts.get(x_pads[l]);
            let wpack = c.packed.get(c.packed_fwd[l]);
            let bias = c.params.get(c.param_views.conv_b[l]);
            let scratch = c.acts.get_mut(thread.wino);
            for y0 in (0..d.h).step_by(plan.band) {
                let rows = y0..(y0 + plan.band).min(d.h);
                if let Some(fused) = plan
                    .forward_pool
                    .filter(|_| !train || plan.fused_in_training)
                {
                    fused(&d, x_pad, wpack, bias, rows, scratch, &mut pool);
                    continue;
                }
                let y_band = &mut c.acts.get_mut(thread.y)[..plan.band * d.w * d.cout];
                (plan.forward)(
                    &d,
                    Forward::new(x_pad, wpack, Some(bias), y_band, rows.clone(), scratch),
                );
                (k.pool_forward)(&p, y_band, &mut pool, rows.start / 2..rows.end / 2);
            }
            clock.lap(Section::ConvForward(l));
        }
    }
}

/// The conv blocks of the sample in batch slot `slot`, backwards, with thread `t`'s scratch:
/// fills the slot's conv gradient block.
pub fn conv_blocks_backward(c: &Ctx, slot: usize, t: usize) {
    let (k, s) = (c.fns, c.shapes);
    let (sample, thread) = (&c.samples[slot], &c.threads[t]);
    let clock = Clock::start();
    // SAFETY: slot views belong to this slot, thread views to this thread; parameters, packed
    // weights and dflat are read-only in this phase.
    unsafe {
        for l in (0..3).rev() {
            let (d, plan) = (s.conv[l], c.conv[l]);
            let dout: &[f32] = if l == 2 {
                c.acts.get(c.batch.dflat.slot(slot, s.flat))
            } else {
                c.acts.get(thread.dx[l + 1])
            };
            let dy_pad = c.acts.get_mut(thread.dy_pad[l]);
            let scratch = c.acts.get_mut(thread.wino);
            let codes = c.masks.get(sample.argmax[l]);
            let (dw, db) = (sample.grads.dw_kc[l], sample.grads.db[l]);
            let x_pad = c.acts.get(sample.x_pad[l]);
            let (dw, db) = (c.acts.get_mut(dw), c.acts.get_mut(db));
            // conv1 needs no input gradient, so where its plan can unpool inside the weight
            // gradient, the padded output gradient is never made.
            if let Some(fused) = plan.weight_grad_pooled.filter(|_| l == 0) {
                fused(&d, x_pad, dout, codes, dw, db, scratch);
                clock.lap(Section::ConvWeightGrad(l));
                continue;
            }
            (k.pool_backward)(&d.pool(), dout, codes, dy_pad);
            clock.lap(Section::PoolBackward(l));
            (plan.weight_grad)(&d, WeightGrads::new(x_pad, dy_pad, dw, db, scratch));
            clock.lap(Section::ConvWeightGrad(l));
            if l > 0 {
                let wpack = c.packed.get(c.packed_bwd[l]);
                let dx = c.acts.get_mut(thread.dx[l]);
                (plan.input_grad)(&d, InputGrads::new(dy_pad, wpack, dx, scratch));
                clock.lap(Section::ConvInputGrad(l));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fc1 + ReLU over the batch. fc_in [rows][flat], fc1_w [fc1][flat], fc1_b [fc1] -> h1 [rows][fc1];
// backward: dh1 [rows][fc1] (ReLU mask applied) -> dflat [rows][flat], dw [fc1][flat], db [fc1].

/// fc1 as a dense layer over `rows` samples.
fn fc1_dims(c: &Ctx, rows: usize) -> FcDims {
    FcDims {
        rows,
        k: c.shapes.flat,
        n: c.shapes.fc1,
    }
}

/// Where the conv blocks leave sample `slot`'s fc1 input (`flat` floats): its row of `fc_in`,
/// or in inference on a path with packed fc1 weights its row of `infer_in` (rows
/// `fc::infer_stride(flat)` apart).
fn fc1_input_row(c: &Ctx, slot: usize, train: bool) -> View {
    let flat = c.shapes.flat;
    if train || c.fns.fc_forward_packed.is_none() {
        c.batch.fc_in.slot(slot, flat)
    } else {
        let row = c.batch.infer_in.slot(slot, fc::infer_stride(flat));
        View { len: flat, ..row }
    }
}

/// fc1 in inference on the packed weights, for thread `t`'s share of the neurons (whole blocks
/// of 32): `h1 = relu(infer_in W1^T + b1)`.
fn fc1_forward_packed(c: &Ctx, f: FcPackedFn, rows: usize, cols: Range<usize>) {
    let d = fc1_dims(c, rows);
    let stride = fc::infer_stride(d.k);
    // SAFETY: reads infer_in, the packed weights and fc1's bias (none written in this phase);
    // each thread writes only its own columns of h1.
    unsafe {
        let h1 = c.acts.get_mut(c.batch.h1);
        f(
            d,
            (&c.acts.get(c.batch.infer_in)[..rows * stride], stride),
            c.packed.get(c.fc1_packed),
            c.params.get(c.param_views.fc1_b),
            h1.as_mut_ptr(),
            cols,
        );
    }
}

/// A fully connected layer through the kernel set's `fc_forward`: `out = act(input W^T + b)` over the
/// first `d.rows` rows of `input`, neurons `cols` (ReLU when `relu`); returns `out`.
///
/// # Safety
/// No thread writes `input` or the weights in this phase, nor another thread `out`'s columns
/// `cols`.
unsafe fn fc_forward_views<'c>(
    c: &Ctx<'c>,
    d: FcDims,
    input: View,
    (w, b): (View, View),
    relu: bool,
    out: View,
    cols: Range<usize>,
) -> &'c mut [f32] {
    let (x, out) = (&c.acts.get(input)[..d.rows * d.k], c.acts.get_mut(out));
    let (w, b) = (c.params.get(w), c.params.get(b));
    (c.fns.fc_forward)(d, FcForward::new(x, w, b, relu, out.as_mut_ptr(), cols));
    out
}

/// fc1 over `rows` samples for thread `t`'s share of the neurons: `h1 = relu(fc_in W1^T + b1)`.
pub fn fc1_forward(c: &Ctx, rows: usize, cols: Range<usize>) {
    let (d, p) = (fc1_dims(c, rows), &c.param_views);
    // SAFETY: reads fc_in and parameters (not written in this phase); each thread writes only
    // its own columns of h1.
    unsafe {
        fc_forward_views(
            c,
            d,
            c.batch.fc_in,
            (p.fc1_w, p.fc1_b),
            true,
            c.batch.h1,
            cols,
        )
    };
}

/// fc1 backward for this thread's share: the bias gradients of neurons `cols`, and the input
/// gradient of inputs `ks`. The weight gradient: with `fused_sgd = None`, of neurons `cols`,
/// into the gradient arena; with `Some(scale)` (plain SGD on a path whose table has
/// `fc_backward_fused_sgd`, `flat % 64 == 0`,
/// `ks` in multiples of 64), of inputs `ks`, applied at once as `w -= scale * g`
/// ([`crate::layers::fc::backward_fused_sgd`]) and never stored, so the update step must skip fc1's weights.
pub fn fc1_backward(
    c: &Ctx,
    rows: usize,
    cols: Range<usize>,
    ks: Range<usize>,
    fused_sgd: Option<f32>,
) {
    let (k, d) = (c.fns, fc1_dims(c, rows));
    // SAFETY: reads fc_in and dh1, and unfused fc1_w; threads write disjoint neurons of the fc1
    // gradients, disjoint columns of dflat and, fused, disjoint input columns of fc1_w (then
    // nobody reads fc1_w in this phase but through this call's columns).
    unsafe {
        let fc_in = &c.acts.get(c.batch.fc_in)[..rows * d.k];
        let dh1 = &c.acts.get(c.batch.dh1)[..rows * d.n];
        let db_rows = &mut c.grads.get_mut(c.param_views.fc1_b)[cols.clone()];
        let dflat = c.acts.get_mut(c.batch.dflat).as_mut_ptr();
        match fused_sgd {
            None => {
                if !cols.is_empty() {
                    let dw = c.grads.get_mut(c.param_views.fc1_w);
                    let dw_rows = &mut dw[cols.start * d.k..cols.end * d.k];
                    (k.fc_weight_grad)(d, FcWeightGrads::new(fc_in, dh1, dw_rows, db_rows, cols));
                }
                if !ks.is_empty() {
                    let w = c.params.get(c.param_views.fc1_w);
                    (k.fc_input_grad)(d, dh1, w, dflat, ks);
                }
            }
            Some(scale) => {
                if !cols.is_empty() {
                    (k.sum_slots)(&dh1[cols.start..], rows, d.n, db_rows);
                }
                if !ks.is_empty() {
                    let w = c.params.get_mut(c.param_views.fc1_w);
                    assert!(w.len() >= d.n * d.k);
                    let fused = k
                        .fc_backward_fused_sgd
                        .expect("fused SGD on a path without it");
                    fused(d, (fc_in, dh1), w.as_mut_ptr(), scale, dflat, ks);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Head: fc2 + sigmoid + loss (one thread). h1 [rows][fc1], fc2_w [fc1], fc2_b [1] -> logits
// [rows] -> probs [rows]; backward: labels [rows] -> dlogits [rows] -> dw2 [fc1], db2 [1],
// dh1 [rows][fc1].

/// fc2 and the sigmoid over `rows` samples (one thread): fills `logits` and `probs`.
pub fn head_forward(c: &Ctx, rows: usize) {
    let s = c.shapes;
    let d = FcDims {
        rows,
        k: s.fc1,
        n: 1,
    };
    let p = &c.param_views;
    // SAFETY: single thread in this phase.
    unsafe {
        let logits = fc_forward_views(
            c,
            d,
            c.batch.h1,
            (p.fc2_w, p.fc2_b),
            false,
            c.batch.logits,
            0..1,
        );
        let probs = &mut c.acts.get_mut(c.batch.probs)[..rows];
        (c.fns.sigmoid)(&logits[..rows], probs);
    }
}

/// Loss and fc2 backward over `rows` samples (one thread). Returns the summed loss.
/// Needs `logits` and `h1` from the forward pass; writes `probs`, `dlogits`, fc2's gradients,
/// and `dh1` (with fc1's ReLU mask applied).
/// With dropout on fc2's input (`keep = Some(k)`), fc1's output gradient also passes the mask.
/// With label smoothing `smoothing > 0`, the loss and gradient are against the smoothed targets
/// ([`smooth_labels`]).
pub fn head_backward(
    c: &Ctx,
    rows: usize,
    labels: &[u8],
    keep: Option<f32>,
    smoothing: f32,
) -> f32 {
    let (k, s) = (c.fns, c.shapes);
    let d = FcDims {
        rows,
        k: s.fc1,
        n: 1,
    };
    // SAFETY: single thread in this phase.
    unsafe {
        let logits = &c.acts.get(c.batch.logits)[..rows];
        let probs = &mut c.acts.get_mut(c.batch.probs)[..rows];
        let dlogits = &mut c.acts.get_mut(c.batch.dlogits)[..rows];
        let mut sum = (k.sigmoid_bce)(logits, labels, probs, dlogits);
        if smoothing > 0.0 {
            sum = smooth_labels(probs, labels, dlogits, smoothing);
        }
        let h1 = &c.acts.get(c.batch.h1)[..rows * s.fc1];
        let dw2 = c.grads.get_mut(c.param_views.fc2_w);
        let db2 = c.grads.get_mut(c.param_views.fc2_b);
        (k.fc_weight_grad)(d, FcWeightGrads::new(h1, dlogits, dw2, db2, 0..1));
        let dh1 = &mut c.acts.get_mut(c.batch.dh1)[..rows * s.fc1];
        let w2 = c.params.get(c.param_views.fc2_w);
        (k.fc_input_grad)(d, dlogits, w2, dh1.as_mut_ptr(), 0..s.fc1);
        if let Some(keep) = keep {
            let bits = &c.masks.get(c.batch.drop_h1)[..rows * s.fc1 / 8];
            (k.dropout)(dh1, bits, keep);
        }
        (k.relu_backward)(h1, dh1);
        sum
    }
}

/// Label smoothing after the loss kernel: with targets `y' = y (1 - eps) + eps / 2`, the
/// gradient of sigmoid + cross-entropy is `p - y' = (p - y) + eps (y - 1/2)`, so the kernel's
/// `dlogits` (`p - y`) are corrected in place; returns the summed loss against `y'` (the same
/// clamped logarithms as the kernel's), which is what training reports.
pub fn smooth_labels(probs: &[f32], labels: &[u8], dlogits: &mut [f32], eps: f32) -> f32 {
    let mut sum = 0.0f32;
    for ((&p, &l), d) in probs.iter().zip(labels).zip(dlogits.iter_mut()) {
        let y = l as f32;
        *d += eps * (y - 0.5);
        let t = y * (1.0 - eps) + 0.5 * eps;
        sum += -(t * (p + 1e-7).ln() + (1.0 - t) * (1.0 - p + 1e-7).ln());
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// Conv gradients of the batch: per-sample blocks [rows][block] -> conv_grad_sum [block] -> the
// gradient arena's conv weights (original layout) and biases.

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
    let src = View {
        off: base + range.start,
        len: (rows - 1) * stride + range.len(),
    };
    let sum = &c.batch.conv_grad_sum;
    let dst = View {
        off: sum.dw_kc[0].off + range.start,
        len: range.len(),
    };
    // SAFETY: slots are read-only now; threads write disjoint ranges of the sum.
    unsafe { (c.fns.sum_slots)(c.acts.get(src), rows, stride, c.acts.get_mut(dst)) }
}

/// Moves the summed conv gradients into the gradient arena in the original layout (one thread).
pub fn store_conv_grads(c: &Ctx) {
    let sum = &c.batch.conv_grad_sum;
    // SAFETY: single thread in this phase.
    unsafe {
        for l in 0..3 {
            let d = c.shapes.conv[l];
            crate::layers::conv::unpack_weight_grad(
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

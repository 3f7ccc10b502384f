//! The network's memory: every tensor in one of a few flat arenas, carved into named views once
//! from the hyperparameters (the original's `buffer.asm`, sized at start-up instead of at
//! assembly time). Shapes of every view are written next to it.

use crate::arena::{Arena, ArenaLayout, Shared, View};
use crate::config::Kernels;
use crate::config::{Hyper, Shapes};
use crate::layers::conv::{ConvChoice, ConvPlan};
use crate::layers::LayerFns;

/// The ten parameter tensors (or their gradients), in `parameters.raw` order; the original
/// tier's buffers (`original::buffer::Views`) use the same views.
#[derive(Clone, Copy, Debug)]
pub struct ParamViews {
    /// `[cout][3][3][cin]` each.
    pub conv_w: [View; 3],
    /// `[cout]` each.
    pub conv_b: [View; 3],
    /// `[fc1][flat]`.
    pub fc1_w: View,
    /// `[fc1]`.
    pub fc1_b: View,
    /// `[fc1]` (one neuron).
    pub fc2_w: View,
    /// `[1]`.
    pub fc2_b: View,
}

impl ParamViews {
    /// Carved from `l` in `parameters.raw` order, each with `room` elements after it.
    pub fn take(l: &mut ArenaLayout, s: &Shapes, room: usize) -> Self {
        let v = s.param_lens().map(|n| {
            let view = l.take_packed(n + room);
            View {
                off: view.off,
                len: n,
            }
        });
        Self {
            conv_w: [v[0], v[1], v[2]],
            conv_b: [v[3], v[4], v[5]],
            fc1_w: v[6],
            fc1_b: v[7],
            fc2_w: v[8],
            fc2_b: v[9],
        }
    }
    /// The ten views in `parameters.raw` order.
    pub fn in_file_order(&self) -> [View; 10] {
        let [w1, w2, w3] = self.conv_w;
        let [b1, b2, b3] = self.conv_b;
        [
            w1, w2, w3, b1, b2, b3, self.fc1_w, self.fc1_b, self.fc2_w, self.fc2_b,
        ]
    }
}

/// Per-sample conv weight/bias gradients, `[dw1 | dw2 | dw3 | db1 | db2 | db3]`, weights in KC
/// layout `[3][3][cin][cout]`. One such block per sample of a batch, summed in sample order.
#[derive(Clone, Debug)]
pub struct ConvGradViews {
    pub dw_kc: [View; 3],
    pub db: [View; 3],
    /// Floats of one block (a multiple of 16 so that every block is cache-line aligned).
    pub len: usize,
}

impl ConvGradViews {
    fn new(s: &Shapes) -> Self {
        let mut l = ArenaLayout::new();
        let dw = s.conv.map(|c| l.take_packed(c.weight_len()));
        let db = s.conv.map(|c| l.take_packed(c.cout));
        Self {
            dw_kc: dw,
            db,
            len: l.total(),
        }
    }
    /// The same views shifted into block `i` of a run of blocks starting at `base`.
    pub fn at(&self, base: usize, i: usize) -> ConvGradViews {
        let sh = |v: View| View {
            off: base + i * self.len + v.off,
            len: v.len,
        };
        ConvGradViews {
            dw_kc: self.dw_kc.map(sh),
            db: self.db.map(sh),
            len: self.len,
        }
    }
}

/// What one sample of a batch keeps from forward to backward.
#[derive(Clone, Debug)]
pub struct SampleViews {
    /// Padded conv inputs: `x_pad[0]` the image `(S+2)^2 x 3`, `x_pad[1]` pool1's output
    /// `(S/2+2)^2 x w1`, `x_pad[2]` pool2's output `(S/4+2)^2 x w2`; zero borders.
    pub x_pad: [View; 3],
    /// Argmax codes of pool1..3 (byte arena), `(h/2) x (w/2) x c` each.
    pub argmax: [View; 3],
    /// This sample's conv gradients.
    pub grads: ConvGradViews,
}

/// One thread's scratch, reused sample after sample.
#[derive(Clone, Debug)]
pub struct ThreadViews {
    /// Padded conv inputs as [`SampleViews::x_pad`], for the inference pass: nothing of a sample
    /// is kept for a backward pass, so the thread reuses one set, which stays in cache, instead
    /// of writing and reading every sample's own (1 MiB per sample in the default network).
    pub x_pad: [View; 3],
    /// A conv's output before pooling, `h x w x cout` (the largest of the three).
    pub y: View,
    /// Padded gradients of conv1..3 outputs, `(h+2) x (w+2) x cout`, zero borders.
    pub dy_pad: [View; 3],
    /// Input gradients of conv2 and conv3 (`dx[1]`: `S/2 x S/2 x w1`, `dx[2]`: `S/4 x S/4 x w2`;
    /// `dx[0]` is unused: conv1's input gradient is never needed).
    pub dx: [View; 3],
    /// Winograd scratch (transformed input and product tiles of one band), the largest any conv
    /// pass needs (`ConvPlan::scratch_len`; empty when no layer runs Winograd).
    pub wino: View,
    /// An augmented training image, `S x S x 3` (byte arena): [`crate::augment::warp_image`]
    /// writes it and the input layer reads it right after, in the same slot's turn.
    pub augmented: View,
}

/// Batch-level tensors: the fc layers run over the whole batch at once.
#[derive(Clone, Debug)]
pub struct BatchViews {
    /// fc1 input, `[batch][flat]` (pool3 outputs, HWC order).
    pub fc_in: View,
    /// fc1 input in inference where the path runs fc1 on packed weights
    /// ([`crate::layers::LayerFns::fc_forward_packed`]): `[batch][infer_stride(flat)]`, rows a
    /// cache line longer than `flat` ([`crate::layers::fc::infer_stride`]); else empty.
    pub infer_in: View,
    /// fc1 output after ReLU, `[batch][fc1]`.
    pub h1: View,
    /// fc2 output (logit), probability, and the logit's gradient, `[batch]` each.
    pub logits: View,
    pub probs: View,
    pub dlogits: View,
    /// Gradient of fc1's output, `[batch][fc1]`.
    pub dh1: View,
    /// Gradient of fc1's input, `[batch][flat]`.
    pub dflat: View,
    /// Sum over the batch of the per-sample conv gradients (one [`ConvGradViews`] block).
    pub conv_grad_sum: ConvGradViews,
    /// Dropout bit masks (byte arena, one bit per element) on fc1's input `[batch][flat]` and
    /// fc2's input `[batch][fc1]`; unused without dropout.
    pub drop_in: View,
    pub drop_h1: View,
    /// Labels of the batch's samples (byte arena), `[batch]`.
    pub labels: View,
}

/// Every arena of the network and the views into them.
pub struct Net {
    pub hyper: Hyper,
    pub shapes: Shapes,
    /// Which kernels run (`Fast`, `Portable` or `Reference`).
    pub kernels: Kernels,
    /// What runs, chosen once here: the kernels' layer functions and each conv layer's plan.
    pub fns: &'static LayerFns,
    pub conv: [ConvPlan; 3],
    /// Parameters and their gradients (same layout); the optimizer's velocity when momentum is on.
    pub params: Arena<f32>,
    pub grads: Arena<f32>,
    pub velocity: Arena<f32>,
    pub param_views: ParamViews,
    /// Conv weights repacked for the kernels: forward and input-gradient forms, per layer.
    pub packed: Arena<f32>,
    pub packed_fwd: [View; 3],
    pub packed_bwd: [View; 3],
    /// fc1's weights packed for inference ([`crate::layers::fc::pack_inference`]: neuron
    /// blocks of `[flat][32]`), where the path has `fc_forward_packed`; else empty. Packed by
    /// [`crate::infer::predict`] when `fc1_packed_current` is false: set false by
    /// [`Net::params_mut`] and by every training epoch, so the training loop never packs it.
    pub fc1_packed: View,
    pub fc1_packed_current: bool,
    /// Activations and gradients (samples, threads, batch).
    pub acts: Arena<f32>,
    pub masks: Arena<u8>,
    pub samples: Vec<SampleViews>,
    pub threads: Vec<ThreadViews>,
    pub batch: BatchViews,
}

/// Sizes of every arena, for `--dry-run` and for refusing what the machine cannot hold.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    pub params_bytes: usize,
    pub grads_bytes: usize,
    pub velocity_bytes: usize,
    pub packed_bytes: usize,
    pub acts_bytes: usize,
    pub masks_bytes: usize,
    acts_len: usize,
    masks_len: usize,
    packed_len: usize,
}

impl MemoryPlan {
    pub fn total(&self) -> usize {
        self.params_bytes
            + self.grads_bytes
            + self.velocity_bytes
            + self.packed_bytes
            + self.acts_bytes
            + self.masks_bytes
    }
    /// Lines for the user.
    pub fn report(&self) -> String {
        let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
        format!(
            "memory: parameters {:.1} MiB, gradients {:.1} MiB, velocity {:.1} MiB, packed weights {:.1} MiB, \
             activations {:.1} MiB, argmax masks {:.1} MiB; total {:.1} MiB",
            mib(self.params_bytes),
            mib(self.grads_bytes),
            mib(self.velocity_bytes),
            mib(self.packed_bytes),
            mib(self.acts_bytes),
            mib(self.masks_bytes),
            mib(self.total())
        )
    }
}

struct Carving {
    samples: Vec<SampleViews>,
    threads: Vec<ThreadViews>,
    batch: BatchViews,
    packed_fwd: [View; 3],
    packed_bwd: [View; 3],
    fc1_packed: View,
    plan: MemoryPlan,
}

/// Carves every view from the hyperparameters; `packs_fc1`: the path runs fc1 in inference on
/// packed weights (its `fc1_packed` and `infer_in` views are empty otherwise).
fn carve(h: &Hyper, s: &Shapes, conv: &[ConvPlan; 3], momentum: bool, packs_fc1: bool) -> Carving {
    let cg = ConvGradViews::new(s);
    let mut a = ArenaLayout::new();
    let mut m = ArenaLayout::new();
    let samples = (0..h.batch)
        .map(|_| SampleViews {
            x_pad: s.conv.map(|c| a.take(c.in_pad_len())),
            argmax: s.conv.map(|c| m.take(c.pool().out_len())),
            grads: cg.at(a.take(cg.len).off, 0),
        })
        .collect();
    let y_len = s.conv.iter().map(|c| c.out_len()).max().unwrap_or(0);
    let wino_len = conv.iter().map(|p| p.scratch_len).max().unwrap_or(0);
    let mut threads: Vec<ThreadViews> = (0..h.threads)
        .map(|_| ThreadViews {
            x_pad: [View::default(); 3], // carved last, below
            y: a.take(y_len),
            dy_pad: s.conv.map(|c| a.take(c.out_pad_len())),
            dx: [
                View::default(),
                a.take(s.conv[1].h * s.conv[1].w * s.conv[1].cin),
                a.take(s.conv[2].h * s.conv[2].w * s.conv[2].cin),
            ],
            wino: a.take(wino_len),
            augmented: m.take(s.image_bytes()),
        })
        .collect();
    let b = h.batch;
    let mut batch = BatchViews {
        fc_in: a.take(b * s.flat),
        h1: a.take(b * s.fc1),
        logits: a.take(b),
        probs: a.take(b),
        dlogits: a.take(b),
        dh1: a.take(b * s.fc1),
        dflat: a.take(b * s.flat),
        conv_grad_sum: cg.at(a.take(cg.len).off, 0),
        drop_in: m.take(b * s.flat / 8),
        drop_h1: m.take(b * s.fc1 / 8),
        labels: m.take(b),
        infer_in: View::default(), // carved last, below
    };
    // The threads' inference inputs, carved after every other view: carved first they moved
    // every training buffer, and unrelated backward passes ran up to 10% slower.
    for t in &mut threads {
        t.x_pad = s.conv.map(|c| a.take(c.in_pad_len()));
    }
    let packed_fc1_len = if packs_fc1 {
        batch.infer_in = a.take(b * crate::layers::fc::infer_stride(s.flat));
        crate::layers::fc::packed_inference_len(s.flat, s.fc1)
    } else {
        0
    };
    let mut p = ArenaLayout::new();
    let packed_fwd = conv.map(|c| p.take(c.packed_len));
    let packed_bwd = conv.map(|c| p.take(c.packed_len));
    let fc1_packed = p.take(packed_fc1_len);
    let n = s.param_count().div_ceil(16) * 16;
    let plan = MemoryPlan {
        params_bytes: n * 4,
        grads_bytes: n * 4,
        velocity_bytes: if momentum { n * 4 } else { 0 },
        packed_bytes: p.total() * 4,
        acts_bytes: a.total() * 4,
        masks_bytes: m.total(),
        acts_len: a.total(),
        masks_len: m.total(),
        packed_len: p.total(),
    };
    Carving {
        samples,
        threads,
        batch,
        packed_fwd,
        packed_bwd,
        fc1_packed,
        plan,
    }
}

/// Each conv layer's plan on `kernels`.
fn plans(kernels: Kernels, s: &Shapes, choice: ConvChoice) -> Result<[ConvPlan; 3], String> {
    let [a, b, c] = s.conv;
    Ok([
        ConvPlan::for_kernels(kernels, &a, choice)?,
        ConvPlan::for_kernels(kernels, &b, choice)?,
        ConvPlan::for_kernels(kernels, &c, choice)?,
    ])
}

/// Physical memory of this machine in bytes, if known.
pub fn physical_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Net {
    /// The memory a configuration needs, without allocating it.
    pub fn plan(h: &Hyper, kernels: Kernels, momentum: bool) -> Result<MemoryPlan, String> {
        let s = h.shapes()?;
        let conv = plans(kernels, &s, ConvChoice::Auto)?;
        let packs_fc1 = LayerFns::for_kernels(kernels)?.fc_forward_packed.is_some();
        Ok(carve(h, &s, &conv, momentum, packs_fc1).plan)
    }

    /// Sizes and allocates every arena (zeroed: padded borders stay zero forever after).
    /// Refuses, before allocating, a configuration larger than the machine's memory.
    pub fn new(h: &Hyper, kernels: Kernels, momentum: bool) -> Result<Net, String> {
        Net::new_with(h, kernels, momentum, ConvChoice::Auto)
    }

    /// [`Net::new`] with the conv algorithms limited by `conv` (`model --conv`).
    pub fn new_with(
        h: &Hyper,
        kernels: Kernels,
        momentum: bool,
        conv: ConvChoice,
    ) -> Result<Net, String> {
        // The asm table and plans exist only with an AVX-512 token: kernels this CPU cannot
        // run are refused here.
        let fns = LayerFns::for_kernels(kernels)?;
        let shapes = h.shapes()?;
        let conv = plans(kernels, &shapes, conv)?;
        let c = carve(h, &shapes, &conv, momentum, fns.fc_forward_packed.is_some());
        if let Some(phys) = physical_memory() {
            if c.plan.total() > phys / 10 * 9 {
                return Err(format!(
                    "this configuration needs {:.1} GiB but the machine has {:.1} GiB: use a smaller batch, image or widths",
                    c.plan.total() as f64 / (1u64 << 30) as f64,
                    phys as f64 / (1u64 << 30) as f64
                ));
            }
        }
        let np = shapes.param_count().div_ceil(16) * 16;
        Ok(Net {
            hyper: h.clone(),
            param_views: ParamViews::take(&mut ArenaLayout::new(), &shapes, 0),
            params: Arena::zeroed(np)?,
            grads: Arena::zeroed(np)?,
            velocity: Arena::zeroed(if momentum { np } else { 0 })?,
            packed: Arena::zeroed(c.plan.packed_len)?,
            packed_fwd: c.packed_fwd,
            packed_bwd: c.packed_bwd,
            fc1_packed: c.fc1_packed,
            fc1_packed_current: false,
            acts: Arena::zeroed(c.plan.acts_len)?,
            masks: Arena::zeroed(c.plan.masks_len)?,
            samples: c.samples,
            threads: c.threads,
            batch: c.batch,
            shapes,
            kernels,
            fns,
            conv,
        })
    }

    /// The parameters, in `parameters.raw` order.
    pub fn params(&self) -> &[f32] {
        &self.params.all()[..self.shapes.param_count()]
    }
    /// The parameters to change (marks fc1's inference packing stale).
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.fc1_packed_current = false;
        let n = self.shapes.param_count();
        &mut self.params.all_mut()[..n]
    }

    /// The optimizer's velocity (empty without momentum).
    pub fn velocity_values(&self) -> &[f32] {
        if self.velocity.is_empty() {
            &[]
        } else {
            &self.velocity.all()[..self.shapes.param_count()]
        }
    }
    pub fn velocity_values_mut(&mut self) -> &mut [f32] {
        let n = self.shapes.param_count();
        if self.velocity.is_empty() {
            &mut []
        } else {
            &mut self.velocity.all_mut()[..n]
        }
    }

    /// Refreshes the kernels' packed copies of the conv weights (after every update).
    /// fc1's inference packing is refreshed by the next [`crate::infer::predict`].
    pub fn repack(&mut self) {
        let c = self.ctx();
        for l in 0..3 {
            // SAFETY: `&mut self` excludes every other user of the arenas.
            unsafe { c.repack_layer(l) };
        }
    }

    /// Packs fc1's weights for inference ([`crate::layers::fc::pack_inference`]) unless the
    /// packing is current or the path has no use for it.
    pub fn pack_fc1_for_inference(&mut self) {
        if self.fc1_packed_current || self.fns.fc_forward_packed.is_none() {
            return;
        }
        let (k, n) = (self.shapes.flat, self.shapes.fc1);
        let w = self.params.get(self.param_views.fc1_w);
        crate::layers::fc::pack_inference(k, n, w, self.packed.get_mut(self.fc1_packed));
        self.fc1_packed_current = true;
    }
}

/// Everything a thread of the team needs during a batch: shared handles on the arenas and the
/// views into them. Which thread may touch which view when is the training loop's discipline
/// (see `train.rs`: phases separated by barriers).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub fns: &'static LayerFns,
    pub conv: &'a [ConvPlan; 3],
    pub shapes: &'a Shapes,
    pub param_views: &'a ParamViews,
    pub params: Shared<'a, f32>,
    pub grads: Shared<'a, f32>,
    pub velocity: Shared<'a, f32>,
    pub packed: Shared<'a, f32>,
    pub packed_fwd: &'a [View; 3],
    pub packed_bwd: &'a [View; 3],
    pub fc1_packed: View,
    pub acts: Shared<'a, f32>,
    pub masks: Shared<'a, u8>,
    pub samples: &'a [SampleViews],
    pub threads: &'a [ThreadViews],
    pub batch: &'a BatchViews,
}

impl Net {
    /// Shared handles for a parallel region.
    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            fns: self.fns,
            conv: &self.conv,
            shapes: &self.shapes,
            param_views: &self.param_views,
            params: self.params.shared(),
            grads: self.grads.shared(),
            velocity: self.velocity.shared(),
            packed: self.packed.shared(),
            packed_fwd: &self.packed_fwd,
            packed_bwd: &self.packed_bwd,
            fc1_packed: self.fc1_packed,
            acts: self.acts.shared(),
            masks: self.masks.shared(),
            samples: &self.samples,
            threads: &self.threads,
            batch: &self.batch,
        }
    }
}

impl Ctx<'_> {
    /// Repacks conv layer `l`'s weights for the kernels (both of its [`REPACK_UNITS`]).
    ///
    /// # Safety
    /// No other thread reads layer `l`'s packed weights or writes its parameters meanwhile.
    pub unsafe fn repack_layer(&self, l: usize) {
        for &(ul, fwd) in REPACK_UNITS.iter().filter(|u| u.0 == l) {
            self.repack_unit(ul, fwd);
        }
    }

    /// Repacks one packing of conv layer `l`: the forward one (`fwd`), else the input-gradient
    /// one (not for conv1, whose input gradient is never computed).
    ///
    /// # Safety
    /// As [`Ctx::repack_layer`].
    pub unsafe fn repack_unit(&self, l: usize, fwd: bool) {
        let (d, plan) = (self.shapes.conv[l], self.conv[l]);
        let w = self.params.get(self.param_views.conv_w[l]);
        if fwd {
            (plan.pack_forward)(&d, w, self.packed.get_mut(self.packed_fwd[l]));
        } else if l > 0 {
            (plan.pack_backward)(&d, w, self.packed.get_mut(self.packed_bwd[l]));
        }
    }
}

/// The separate packings done after every update, `(layer, forward?)`, most expensive first,
/// so that dealing them round-robin to the threads balances the work (with 2 threads: conv3's
/// forward, conv2's forward and conv1 to one; conv3's and conv2's input-gradient packings to
/// the other).
pub const REPACK_UNITS: [(usize, bool); 5] =
    [(2, true), (2, false), (1, true), (1, false), (0, true)];

//! `_start.asm`: the original's loops. For each epoch, for each batch, for each sample: load it,
//! run the forward pass, compute its loss, run the backward pass (which adds into the gradient
//! buffers); then the batch's mean loss (the 16 losses summed in order in f32, divided by 16) is
//! printed and the SGD step runs. After training, the test loop counts `output > 0.5 ==
//! label`.
//!
//! [`OriginalNet`] is the original tier behind [`crate::network::Network`]: the training loop
//! (`catdog::fit::fit`, in the product crate) drives it exactly as it drives the fast tier.
//!
//! Mirrors [`_start.asm` lines 16-157](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/blob/7f5085c/_start.asm#L16-L157).

use super::backward::backward_pass;
use super::buffer::Buffers;
use super::forward::forward_pass;
use super::loader::load_sample;
use super::loss::compute_loss;
use super::update_weights::add_to_vector;
use crate::config::Kernels;
use crate::config::{Hyper, Shapes};
use crate::cpu::Avx512;
use crate::dataset::Dataset;
use crate::network::Network;
use crate::network::{Epoch, EpochStats};
use std::time::Instant;

/// The network as the original keeps it: one set of buffers, one sample at a time, one thread.
pub struct OriginalNet {
    hyper: Hyper,
    shapes: Shapes,
    buf: Buffers,
    /// The loaded sample's label (the original's `label` byte).
    label: u8,
    /// Why the routines' `unsafe` calls may run: this CPU has AVX-512.
    _cpu: Avx512,
}

impl OriginalNet {
    /// Sizes the buffers for `h` (zeroed, as the original's `.bss`) on a CPU with AVX-512
    /// (`cpu`). Refuses shapes the original's routines cannot walk.
    pub fn new(h: &Hyper, cpu: Avx512) -> Result<OriginalNet, String> {
        let shapes = h.shapes()?;
        if !h.image.is_multiple_of(16) {
            return Err(format!(
                "image size {} is not usable with --kernels original: its padding routine moves image rows in blocks of 16 floats, so the size must be a multiple of 16 (e.g. 128)",
                h.image
            ));
        }
        let buf = Buffers::new(&shapes, h.batch)?;
        Ok(OriginalNet {
            hyper: h.clone(),
            shapes,
            buf,
            label: 0,
            _cpu: cpu,
        })
    }

    /// Memory the buffers take, for `--dry-run`.
    pub fn memory_report(&self) -> String {
        format!(
            "memory (original tier, one sample at a time): {:.1} MiB",
            self.buf.bytes_used() as f64 / (1u64 << 20) as f64
        )
    }

    /// Copies sample `i` into the staging buffer and converts it into `input` (`load_sample`).
    fn load(&mut self, data: &dyn Dataset, i: usize) {
        let v = &self.buf.v;
        let n = self.shapes.image_bytes();
        let bytes = self.buf.bytes.all_mut();
        bytes[v.image.off..v.image.off + n].copy_from_slice(data.image(i));
        bytes[v.label.off] = data.labels()[i];
        let (image, label, input) = (v.image, v.label.off, v.input);
        // SAFETY: AVX-512 checked in `new`; the image has its 64 bytes of room.
        unsafe {
            let bytes = self.buf.bytes.all();
            load_sample(
                &bytes[image.off..image.end()],
                n,
                &bytes[label],
                self.buf.f.get_mut(input),
                &mut self.label,
            );
        }
    }

    /// The mean loss of the batch `idx` and its summed gradients in `parameters.raw` order,
    /// without an SGD step (the gradient buffers are emptied again). For tests.
    pub fn loss_and_gradients(&mut self, data: &dyn Dataset, idx: &[u32]) -> (f32, Vec<f32>) {
        assert!(!idx.is_empty() && idx.len() <= self.hyper.batch);
        // The sample loop of `run_epoch`, without the SGD step.
        let losses_view = self.buf.v.losses;
        for (s, &i) in idx.iter().enumerate() {
            self.load(data, i as usize);
            // SAFETY: AVX-512 checked in `new`; buffers sized for these shapes.
            unsafe { forward_pass(&mut self.buf, &self.shapes) };
            let loss = compute_loss(self.label as f32, self.buf.f.get(self.buf.v.output)[0]);
            self.buf.f.get_mut(losses_view)[s] = loss;
            // SAFETY: as above; the forward pass of this sample just ran.
            unsafe { backward_pass(&mut self.buf, &self.shapes, self.label) };
        }
        let mut sum = 0.0f32;
        for &l in &self.buf.f.get(losses_view)[..idx.len()] {
            sum += l;
        }
        let loss = sum / idx.len() as f32;
        let mut grads = Vec::with_capacity(self.shapes.param_count());
        for v in self.buf.v.grads.in_file_order() {
            let g = self.buf.f.get_mut(v);
            grads.extend_from_slice(g);
            g.fill(0.0);
        }
        (loss, grads)
    }

    /// The SGD step over every parameter tensor, in the original's order, each gradient zeroed.
    ///
    /// Mirrors [`update_weights.asm` lines 15-84](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/blob/7f5085c/update_weights.asm#L15-L84).
    fn update_weights(&mut self, lr: f32, inv_batch: f32) {
        let (p, g) = (self.buf.v.params, self.buf.v.grads);
        let order = [
            (p.fc2_w, g.fc2_w),
            (p.fc2_b, g.fc2_b),
            (p.fc1_w, g.fc1_w),
            (p.fc1_b, g.fc1_b),
            (p.conv_w[2], g.conv_w[2]),
            (p.conv_b[2], g.conv_b[2]),
            (p.conv_w[1], g.conv_w[1]),
            (p.conv_b[1], g.conv_b[1]),
            (p.conv_w[0], g.conv_w[0]),
            (p.conv_b[0], g.conv_b[0]),
        ];
        let f = self.buf.f.shared();
        for (param, grad) in order {
            // SAFETY: AVX-512 checked in `new`; a parameter and its gradient are distinct views.
            unsafe { add_to_vector(f.get_mut(grad), f.get_mut(param), lr, inv_batch) };
        }
    }
}

impl Network for OriginalNet {
    fn dims(&self) -> (&Hyper, &Shapes) {
        (&self.hyper, &self.shapes)
    }
    fn kernels(&self) -> Kernels {
        Kernels::Original
    }
    fn describe(&self) -> String {
        "kernels original (asm, one thread)".into()
    }
    fn params(&self) -> &[f32] {
        self.buf.f.get(self.buf.v.all_params)
    }
    fn params_mut(&mut self) -> &mut [f32] {
        let v = self.buf.v.all_params;
        self.buf.f.get_mut(v)
    }
    fn velocity_values(&self) -> &[f32] {
        &[]
    }
    fn velocity_values_mut(&mut self) -> &mut [f32] {
        &mut []
    }
    fn repack(&mut self) {}

    fn run_epoch(&mut self, e: &Epoch) -> Result<EpochStats, String> {
        let (opts, order, epoch) = (e.opts, e.order, e.epoch);
        let extras = opts.crops || opts.label_smoothing != 0.0 || opts.flips;
        if extras || opts.dropout != 0.0 || opts.momentum != 0.0 || opts.weight_decay != 0.0 {
            return Err(crate::network::ORIGINAL_RECIPE_ONLY.into());
        }
        let b = self.hyper.batch;
        let steps = order.len() / b;
        let start = Instant::now();
        let mut losses = Vec::with_capacity(steps);
        let losses_view = self.buf.v.losses;
        // .batch_loop (_start.asm:32); the caller runs the epochs (.epoch_loop, _start.asm:29).
        for step in 0..steps {
            // .sample_loop (_start.asm:34): load, forward, loss, backward (gradients add up
            // over the batch).
            for s in 0..b {
                self.load(e.data, order[step * b + s] as usize);
                // SAFETY: AVX-512 checked in `new`; buffers sized for these shapes.
                unsafe { forward_pass(&mut self.buf, &self.shapes) };
                let loss = compute_loss(self.label as f32, self.buf.f.get(self.buf.v.output)[0]);
                self.buf.f.get_mut(losses_view)[s] = loss;
                // SAFETY: as above; the forward pass of this sample just ran.
                unsafe { backward_pass(&mut self.buf, &self.shapes, self.label) };
            }
            // The batch's mean loss: summed in order from +0.0 in f32, divided by the batch
            // (.sum_loop, _start.asm:76).
            let mut sum = 0.0f32;
            for &l in self.buf.f.get(losses_view) {
                sum += l;
            }
            let mean = sum / b as f32;
            if !mean.is_finite() {
                return Err(format!(
                    "the loss became {mean} at epoch {epoch}, step {step}"
                ));
            }
            losses.push(mean);
            crate::report::log_step(opts, epoch, step, mean)?;
            if let Some(f) = e.on_step {
                f(step + 1, mean);
            }
            self.update_weights(opts.lr, 1.0 / b as f32);
        }
        let mean_loss = losses.iter().map(|&l| l as f64).sum::<f64>() / steps.max(1) as f64;
        Ok(EpochStats {
            steps,
            samples: steps * b,
            mean_loss,
            seconds: start.elapsed().as_secs_f64(),
            losses,
        })
    }

    fn predict(&mut self, data: &dyn Dataset) -> Vec<f32> {
        // .test_loop (_start.asm:116), less its count of right answers (the caller's).
        (0..data.len())
            .map(|i| {
                self.load(data, i);
                // SAFETY: AVX-512 checked in `new`; buffers sized for these shapes.
                unsafe { forward_pass(&mut self.buf, &self.shapes) };
                self.buf.f.get(self.buf.v.output)[0]
            })
            .collect()
    }
}

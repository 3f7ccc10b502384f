//! Hyperparameters and the tensor shapes derived from them.
//!
//! The original fixed all of these as assemble-time constants in `buffer.asm`; here they are
//! values checked once at start-up, so that a bad combination is a clear error, not a crash.

/// Input channels of the network (RGB).
pub const IN_CHANNELS: usize = 3;

/// Which kernels a network runs: the one choice behind `--kernels` and `CATDOG_KERNELS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The assembly original's routines, in the original's order: its exact bits, at its speed
    /// (AVX-512; one thread; plain SGD).
    Original,
    /// Ours: register-blocked, Winograd, multi-threaded `asm!` on ZMM registers (AVX-512);
    /// bitwise the same on any thread count.
    Fast,
    /// Ours for CPUs without AVX-512: plain Rust and an implicit GEMM on `matrixmultiply`
    /// (AVX2+FMA or SSE2, chosen at run time), the same threads; [`crate::portable`].
    Portable,
    /// The scalar plain-Rust reference: slow, obviously correct; the oracle of the tests.
    Reference,
}

impl Kernels {
    /// Every choice, in `--help` order.
    pub const ALL: [Kernels; 4] = [
        Kernels::Original,
        Kernels::Fast,
        Kernels::Portable,
        Kernels::Reference,
    ];

    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Original => "original",
            Kernels::Fast => "fast",
            Kernels::Portable => "portable",
            Kernels::Reference => "reference",
        }
    }

    /// The default for this CPU: `fast` where it has AVX-512, else `portable`.
    pub fn default_for_cpu() -> Kernels {
        if crate::cpu::has_avx512() {
            Kernels::Fast
        } else {
            Kernels::Portable
        }
    }

    /// `explicit` (the `--kernels` flag) if given, else `CATDOG_KERNELS` if set, else
    /// [`Kernels::default_for_cpu`]; with the `note:` line to print when the kernels come from
    /// the environment or the default had to leave the fast kernels.
    pub fn resolve(explicit: Option<Kernels>) -> Result<(Kernels, Option<String>), String> {
        if let Some(k) = explicit {
            return Ok((k, None));
        }
        match std::env::var("CATDOG_KERNELS") {
            Ok(v) if !v.is_empty() => {
                let k: Kernels = v.parse().map_err(|e| format!("CATDOG_KERNELS: {e}"))?;
                Ok((
                    k,
                    Some(format!(
                        "note: CATDOG_KERNELS is set: running the {k} kernels"
                    )),
                ))
            }
            _ => {
                let k = Kernels::default_for_cpu();
                let note = (k != Kernels::Fast).then(|| {
                    "note: this CPU lacks AVX-512 F/BW/DQ/VL: running the portable kernels (--kernels portable)"
                        .to_string()
                });
                Ok((k, note))
            }
        }
    }
}

impl std::str::FromStr for Kernels {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kernels::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kernels::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown kernels '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that sizes or drives training.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyper {
    /// Input images are `image x image x 3`.
    pub image: usize,
    /// Output channels of conv1, conv2, conv3.
    pub widths: [usize; 3],
    /// Neurons of fc1.
    pub fc1: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
    pub threads: usize,
}

impl Default for Hyper {
    /// The original's network and recipe.
    fn default() -> Self {
        Self {
            image: 128,
            widths: [32, 64, 128],
            fc1: 128,
            epochs: 10,
            batch: 16,
            lr: 0.01,
            seed: 42,
            threads: 1,
        }
    }
}

/// A 3x3, pad 1, stride 1 convolution: input `h x w x cin` (stored padded to `(h+2) x (w+2) x
/// cin`), output `h x w x cout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
}

impl ConvDims {
    /// Floats of the padded input.
    pub fn in_pad_len(&self) -> usize {
        (self.h + 2) * (self.w + 2) * self.cin
    }
    /// Floats of the padded output-gradient buffer (same geometry as the output, plus border).
    pub fn out_pad_len(&self) -> usize {
        (self.h + 2) * (self.w + 2) * self.cout
    }
    /// Floats of the (unpadded) output.
    pub fn out_len(&self) -> usize {
        self.h * self.w * self.cout
    }
    /// Floats of the weights, `[cout][3][3][cin]`.
    pub fn weight_len(&self) -> usize {
        self.cout * 9 * self.cin
    }
    /// Multiply-adds of one forward pass for one sample.
    pub fn macs(&self) -> usize {
        self.h * self.w * self.cout * 9 * self.cin
    }
    /// The layer as its input gradient sees it: the same convolution run backwards, reading
    /// `cout` channels and writing `cin`.
    pub fn transposed(&self) -> ConvDims {
        ConvDims {
            cin: self.cout,
            cout: self.cin,
            ..*self
        }
    }
    /// The 2x2 max-pool that follows this conv.
    pub fn pool(&self) -> PoolDims {
        PoolDims {
            h: self.h,
            w: self.w,
            c: self.cout,
        }
    }
}

/// A 2x2, stride 2 max-pool over an `h x w x c` input (h, w even), output `h/2 x w/2 x c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl PoolDims {
    pub fn out_len(&self) -> usize {
        (self.h / 2) * (self.w / 2) * self.c
    }
}

/// How the learning rate evolves over the epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The same rate every epoch (the original).
    Constant,
    /// Cosine decay from `lr` at the first epoch to `lr * 0.01` at the last.
    Cosine,
}

/// The training recipe beyond the network: the original's (default) or an improved one.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// Visit samples in a fresh seeded order every epoch (the original: file order).
    pub shuffle: bool,
    /// Mirror each sample left-right with probability 1/2, decided per (epoch, sample).
    pub flips: bool,
    /// SGD momentum (0 = plain SGD, the original).
    pub momentum: f32,
    /// L2 weight decay added to the gradient (0 = none).
    pub weight_decay: f32,
    /// Dropout probability on the inputs of fc1 and fc2 (0 = none).
    pub dropout: f32,
    pub schedule: Schedule,
    /// A random resized crop and brightness, contrast and saturation jitter of every training
    /// sample, decided per (epoch, sample) ([`crate::augment`]).
    pub crops: bool,
    /// The crop box covers at least this percentage of the image's area
    /// ([`crate::augment::Warp::draw`]).
    pub crop_area: u8,
    /// Label smoothing epsilon: the targets are `y (1 - eps) + eps / 2` (0 = none).
    pub label_smoothing: f32,
    /// Epochs of linear warm-up before the schedule ([`crate::schedule::epoch_lr`]; 0 = none).
    pub warmup: usize,
}

impl Recipe {
    /// The original's recipe: plain SGD, constant rate, no augmentation or regularisation.
    pub fn faithful(shuffle: bool) -> Self {
        Self {
            shuffle,
            flips: false,
            momentum: 0.0,
            weight_decay: 0.0,
            dropout: 0.0,
            schedule: Schedule::Constant,
            crops: false,
            crop_area: crate::augment::CROP_AREA_PCT,
            label_smoothing: 0.0,
            warmup: 0,
        }
    }
    /// Our improved recipe.
    pub fn improved() -> Self {
        Self {
            shuffle: true,
            flips: true,
            momentum: 0.9,
            weight_decay: 5e-4,
            dropout: 0.2,
            schedule: Schedule::Cosine,
            crops: true,
            crop_area: crate::augment::CROP_AREA_PCT,
            label_smoothing: 0.1,
            warmup: 2,
        }
    }
    /// The epochs a run of the faithful recipe takes unless told otherwise (the original's).
    pub const FAITHFUL_EPOCHS: usize = 10;
    /// The epochs a run of the improved recipe takes unless told otherwise: its budget, 60
    /// epochs of 20,000 photos.
    pub const IMPROVED_EPOCHS: usize = 60;
}

/// All shapes of the network, derived from [`Hyper`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shapes {
    pub conv: [ConvDims; 3],
    /// fc1 inputs: pool3's output flattened in HWC order.
    pub flat: usize,
    pub fc1: usize,
}

impl Shapes {
    /// Floats of each parameter tensor in the order of the original's `parameters.raw`:
    /// conv1_w, conv2_w, conv3_w, conv1_b, conv2_b, conv3_b, fc1_w, fc1_b, fc2_w, fc2_b.
    pub fn param_lens(&self) -> [usize; 10] {
        let [c1, c2, c3] = self.conv;
        [
            c1.weight_len(),
            c2.weight_len(),
            c3.weight_len(),
            c1.cout,
            c2.cout,
            c3.cout,
            self.fc1 * self.flat,
            self.fc1,
            self.fc1,
            1,
        ]
    }
    /// Total parameter count.
    pub fn param_count(&self) -> usize {
        self.param_lens().iter().sum()
    }
    /// Bytes of one input image.
    pub fn image_bytes(&self) -> usize {
        self.conv[0].h * self.conv[0].w * IN_CHANNELS
    }
    /// Multiply-adds of one forward pass of one sample.
    pub fn forward_macs(&self) -> usize {
        self.conv.iter().map(|c| c.macs()).sum::<usize>() + self.flat * self.fc1 + self.fc1
    }
    /// Multiply-adds of one training step of one sample (forward, both gradients of conv2 and
    /// conv3 and the fc layers, only the weight gradient of conv1).
    pub fn train_macs(&self) -> usize {
        let [c1, c2, c3] = self.conv;
        self.forward_macs()
            + c1.macs()
            + 2 * (c2.macs() + c3.macs())
            + 2 * (self.flat * self.fc1 + self.fc1)
    }
}

/// `Err` naming `what` unless `1 <= v <= max`.
fn usable(what: &str, v: usize, max: usize) -> Result<(), String> {
    if v == 0 || v > max {
        return Err(format!(
            "{what} {v} is not usable: it must be between 1 and {max}"
        ));
    }
    Ok(())
}

impl Hyper {
    /// Checks every value and derives the shapes, or says what is wrong in one sentence.
    pub fn shapes(&self) -> Result<Shapes, String> {
        let s = self.image;
        if s < 8 || !s.is_multiple_of(8) {
            return Err(format!(
                "image size {s} is not usable: the three 2x2 pools need a positive multiple of 8 (e.g. 128)"
            ));
        }
        if s > 1024 {
            return Err(format!("image size {s} is too large (at most 1024)"));
        }
        for (i, &w) in self.widths.iter().enumerate() {
            if w == 0 || !w.is_multiple_of(16) || w > 1024 {
                return Err(format!(
                    "conv{} width {w} is not usable: the kernels hold 16 channels per ZMM register, \
                     so widths must be multiples of 16 between 16 and 1024",
                    i + 1
                ));
            }
        }
        if self.fc1 == 0 || !self.fc1.is_multiple_of(16) || self.fc1 > 4096 {
            return Err(format!(
                "fc1 width {} is not usable: it must be a multiple of 16 between 16 and 4096",
                self.fc1
            ));
        }
        usable("batch size", self.batch, 4096)?;
        usable("epochs", self.epochs, 100_000)?;
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Err(format!(
                "learning rate {} is not usable: it must be a positive finite number",
                self.lr
            ));
        }
        usable("--threads", self.threads, 256)?;
        let [w1, w2, w3] = self.widths;
        let conv = [
            ConvDims {
                h: s,
                w: s,
                cin: IN_CHANNELS,
                cout: w1,
            },
            ConvDims {
                h: s / 2,
                w: s / 2,
                cin: w1,
                cout: w2,
            },
            ConvDims {
                h: s / 4,
                w: s / 4,
                cin: w2,
                cout: w3,
            },
        ];
        Ok(Shapes {
            conv,
            flat: (s / 8) * (s / 8) * w3,
            fc1: self.fc1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shapes_match_the_original() {
        let s = Hyper::default().shapes().unwrap();
        assert_eq!(s.flat, 32768);
        assert_eq!(
            s.param_lens(),
            [864, 18432, 73728, 32, 64, 128, 4194304, 128, 128, 1]
        );
        // ORIGINAL.md: about 0.34 GFLOP forward, 0.99 GFLOP per training sample.
        let fwd = 2.0 * s.forward_macs() as f64 / 1e9;
        let train = 2.0 * s.train_macs() as f64 / 1e9;
        assert!((fwd - 0.34).abs() < 0.01, "{fwd}");
        assert!((train - 0.99).abs() < 0.02, "{train}");
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let bad = |f: fn(&mut Hyper)| {
            let mut h = Hyper::default();
            f(&mut h);
            h.shapes().unwrap_err()
        };
        assert!(bad(|h| h.image = 100).contains("multiple of 8"));
        assert!(bad(|h| h.widths[1] = 40).contains("conv2 width 40"));
        assert!(bad(|h| h.batch = 0).contains("batch"));
        assert!(bad(|h| h.lr = f32::NAN).contains("learning rate"));
        assert!(bad(|h| h.threads = 0).contains("--threads 0"));
        assert!(bad(|h| h.fc1 = 10).contains("fc1"));
    }
}

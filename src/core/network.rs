//! The seam between the loops and the kernels: a network is built once ([`crate::builder`]), with
//! one choice of [`Kernels`], and the training loop (`catdog::fit::fit`), evaluation and benchmarks drive it
//! through [`Network`] without knowing which kernels run.
//!
//! - [`Kernels::Fast`], [`Kernels::Portable`] and [`Kernels::Reference`]:
//!   [`crate::net::Net`], our layers on the `asm!` kernels (register-blocked, Winograd,
//!   multi-threaded), on the portable plain-Rust and GEMM kernels, or on the scalar reference.
//! - [`Kernels::Original`]: `crate::original::OriginalNet`, the assembly original's own
//!   routines, one sample at a time on one thread, bit for bit.

use crate::config::{Hyper, Kernels, Shapes};
use crate::dataset::Dataset;

/// One epoch's work for [`Network::run_epoch`]: the samples `order` of `data` (whole batches;
/// a remainder is skipped), as epoch number `epoch` (counting from 1), run as `opts` says;
/// `on_step(step, loss)`, when given, is called after every batch.
#[derive(Clone, Copy)]
pub struct Epoch<'a> {
    pub data: &'a dyn Dataset,
    pub order: &'a [u32],
    pub epoch: usize,
    pub opts: &'a EpochOptions,
    pub on_step: Option<&'a (dyn Fn(usize, f32) + Sync)>,
}

impl<'a> Epoch<'a> {
    /// An epoch without a step callback.
    pub fn new(
        data: &'a dyn Dataset,
        order: &'a [u32],
        epoch: usize,
        opts: &'a EpochOptions,
    ) -> Self {
        Self {
            data,
            order,
            epoch,
            opts,
            on_step: None,
        }
    }
}

/// How an epoch runs and reports.
#[derive(Clone, Debug)]
pub struct EpochOptions {
    /// Print the original's `Epoch: E, Step: S, Loss: L` line every this many steps (0 = never).
    pub log_every: usize,
    /// Mirror each sample left-right when [`crate::step::flip_bit`] says so for this epoch.
    pub flips: bool,
    /// Random resized crops and colour jitter of each sample ([`crate::augment`]).
    pub crops: bool,
    /// The smallest crop, in percent of the image's area.
    pub crop_area: u8,
    /// Label smoothing epsilon (0: none); the reported loss is the smoothed one.
    pub label_smoothing: f32,
    /// This epoch's learning rate.
    pub lr: f32,
    /// SGD momentum and L2 weight decay (0 and 0: the original's plain SGD).
    pub momentum: f32,
    pub weight_decay: f32,
    /// Dropout probability on the inputs of fc1 and fc2 (0: none), and the seed of its masks.
    pub dropout: f32,
    pub seed: u64,
}

impl EpochOptions {
    /// The original's recipe at learning rate `lr`.
    pub fn plain(lr: f32) -> Self {
        Self {
            log_every: 0,
            flips: false,
            crops: false,
            crop_area: crate::augment::CROP_AREA_PCT,
            label_smoothing: 0.0,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            dropout: 0.0,
            seed: 0,
        }
    }
}

/// What an epoch measured.
#[derive(Clone, Debug, Default)]
pub struct EpochStats {
    pub steps: usize,
    pub samples: usize,
    pub mean_loss: f64,
    pub seconds: f64,
    /// Mean loss of every batch, in order (what the per-batch lines print).
    pub losses: Vec<f32>,
}

/// Why the original tier refuses the improved recipe's parts.
pub const ORIGINAL_RECIPE_ONLY: &str = "--kernels original runs the original's plain SGD: flips, crops and colour jitter, label smoothing, dropout, momentum and weight decay have no kernels in that tier (use --kernels fast)";

/// A network with parameters, ready to train and predict.
pub trait Network {
    /// The hyperparameters it was built with and the shapes they give.
    fn dims(&self) -> (&Hyper, &Shapes);
    fn hyper(&self) -> &Hyper {
        self.dims().0
    }
    fn shapes(&self) -> &Shapes {
        self.dims().1
    }
    fn kernels(&self) -> Kernels;
    /// One line on what runs (for `bench`).
    fn describe(&self) -> String;
    /// The parameters, in `parameters.raw` order.
    fn params(&self) -> &[f32];
    fn params_mut(&mut self) -> &mut [f32];
    /// The optimizer's velocity (empty without momentum).
    fn velocity_values(&self) -> &[f32];
    fn velocity_values_mut(&mut self) -> &mut [f32];
    /// Call after writing parameters through [`Network::params_mut`].
    fn repack(&mut self);
    /// One epoch (see [`Epoch`]).
    fn run_epoch(&mut self, e: &Epoch) -> Result<EpochStats, String>;
    /// P(dog) of every sample of `data`.
    fn predict(&mut self, data: &dyn Dataset) -> Vec<f32>;
    /// P(dog) of every sample of `data` mirrored left-right (for test-time augmentation,
    /// [`crate::infer::predict_tta`]); `Err` where the kernels have no mirrored pass.
    fn predict_mirrored(&mut self, data: &dyn Dataset) -> Result<Vec<f32>, String> {
        let _ = data;
        Err(format!(
            "--tta mirrors each image, which the {} kernels cannot: use --kernels fast or portable",
            self.kernels()
        ))
    }
}

//! The seam between the loops and the kernels: a network is built once, with one kernel tier,
//! and the training loop (`catdog::fit::fit`), evaluation and benchmarks drive it through
//! [`Network`] without knowing which tier runs.
//!
//! - [`Tier::Fast`]: [`crate::model::Net`], our register-blocked, Winograd, multi-threaded
//!   kernels (or the scalar reference on CPUs without AVX-512).
//! - [`Tier::Original`]: `crate::original::OriginalNet`, the assembly original's own routines,
//!   one sample at a time on one thread, bit for bit.

use crate::config::{Hyper, Shapes};
use crate::dataset::Dataset;
use crate::layers::conv::ConvChoice;
use crate::train::{EpochOptions, EpochStats};

/// Which kernels a network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Ours: register-blocked, Winograd, multi-threaded; bitwise the same on any thread count.
    Fast,
    /// The original's routines, in the original's order: its exact bits, at its speed.
    Original,
}

/// Why the original tier refuses the improved recipe's parts.
pub const ORIGINAL_RECIPE_ONLY: &str = "--kernels original runs the original's plain SGD: flips, dropout, momentum and weight decay have no kernels in that tier (use --kernels fast)";

/// A network with parameters, ready to train and predict.
pub trait Network {
    fn hyper(&self) -> &Hyper;
    fn shapes(&self) -> &Shapes;
    fn tier(&self) -> Tier;
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
    /// One epoch over `order` (whole batches; a remainder is skipped). `epoch` counts from 1.
    /// `on_step(step, loss)` is called after every batch.
    fn run_epoch(
        &mut self,
        data: &dyn Dataset,
        order: &[u32],
        epoch: usize,
        opts: &EpochOptions,
        on_step: Option<&(dyn Fn(usize, f32) + Sync)>,
    ) -> Result<EpochStats, String>;
    /// P(dog) of every sample of `data`.
    fn predict(&mut self, data: &dyn Dataset) -> Vec<f32>;
}

/// Builds the network of `h` with `tier`'s kernels (the fast tier on the kernel path the CPU
/// allows, its conv algorithms limited by `conv`). `momentum` sizes the optimizer's velocity
/// (fast tier only).
pub fn build(
    h: &Hyper,
    tier: Tier,
    momentum: bool,
    conv: ConvChoice,
) -> Result<Box<dyn Network>, String> {
    match tier {
        Tier::Fast => {
            let path = crate::cpu::detect();
            if let Some(line) = crate::cpu::notice(path) {
                crate::errln!("{line}")?;
            }
            Ok(Box::new(crate::model::Net::new_with(
                h, path, momentum, conv,
            )?))
        }
        #[cfg(target_arch = "x86_64")]
        Tier::Original => {
            if momentum {
                return Err(ORIGINAL_RECIPE_ONLY.into());
            }
            if conv != ConvChoice::Auto {
                return Err("--conv chooses the fast tier's conv algorithm; the original tier has its own (drop --conv or use --kernels fast)".into());
            }
            Ok(Box::new(crate::original::OriginalNet::new(h)?))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Tier::Original => Err("--kernels original needs an x86-64 CPU with AVX-512".into()),
    }
}

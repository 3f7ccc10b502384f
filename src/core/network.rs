//! The seam between the loops and the kernels: a network is built once, with one choice of
//! [`Kernels`], and the training loop (`catdog::fit::fit`), evaluation and benchmarks drive it
//! through [`Network`] without knowing which kernels run.
//!
//! - [`Kernels::Fast`], [`Kernels::Portable`] and [`Kernels::Reference`]:
//!   [`crate::model::Net`], our layers on the `asm!` kernels (register-blocked, Winograd,
//!   multi-threaded), on the portable plain-Rust and GEMM kernels, or on the scalar reference.
//! - [`Kernels::Original`]: `crate::original::OriginalNet`, the assembly original's own
//!   routines, one sample at a time on one thread, bit for bit.

use crate::config::{Hyper, Shapes};
use crate::dataset::Dataset;
use crate::layers::conv::ConvChoice;
use crate::train::{EpochOptions, EpochStats};

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

/// Why the original tier refuses the improved recipe's parts.
pub const ORIGINAL_RECIPE_ONLY: &str = "--kernels original runs the original's plain SGD: flips, dropout, momentum and weight decay have no kernels in that tier (use --kernels fast)";

/// A network with parameters, ready to train and predict.
pub trait Network {
    fn hyper(&self) -> &Hyper;
    fn shapes(&self) -> &Shapes;
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

/// Builds the network of `h` on `kernels` (the fast kernels' conv algorithms limited by
/// `conv`). `momentum` sizes the optimizer's velocity (not the original's). Kernels this CPU
/// cannot run are refused here, with the error line for the user.
pub fn build(
    h: &Hyper,
    kernels: Kernels,
    momentum: bool,
    conv: ConvChoice,
) -> Result<Box<dyn Network>, String> {
    if conv != ConvChoice::Auto && kernels != Kernels::Fast {
        return Err(format!(
            "--conv chooses the fast kernels' conv algorithm; --kernels {kernels} has its own (drop --conv or use --kernels fast)"
        ));
    }
    match kernels {
        Kernels::Fast | Kernels::Portable | Kernels::Reference => Ok(Box::new(
            crate::model::Net::new_with(h, kernels, momentum, conv)?,
        )),
        Kernels::Original => {
            if momentum {
                return Err(ORIGINAL_RECIPE_ONLY.into());
            }
            original(h, crate::cpu::require_avx512("original")?)
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn original(h: &Hyper, cpu: crate::cpu::Avx512) -> Result<Box<dyn Network>, String> {
    Ok(Box::new(crate::original::OriginalNet::new(h, cpu)?))
}

#[cfg(not(target_arch = "x86_64"))]
fn original(_: &Hyper, _: crate::cpu::Avx512) -> Result<Box<dyn Network>, String> {
    unreachable!("no AVX-512 token exists off x86-64")
}

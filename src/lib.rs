//! catdog: the product around the network core ([`catdog_core`], re-exported here module by
//! module): the command line of `model`, checkpoints, metrics, plots, contact sheets and the
//! training run with its progress bar ([`fit`]).

#[cfg(target_arch = "x86_64")]
pub use catdog_core::original;
pub use catdog_core::{
    arena, blob, config, cpu, dataset, guard, infer, kernels, layers, model, network, parameters,
    profile, reference, report, rng, split, step, team, testing, train, update,
};
pub use catdog_core::{errln, out, outln};

pub mod checkpoint;
pub mod cli;
pub mod contact_sheet;
pub mod export;
pub mod fit;
pub mod metrics;
pub mod packer_cmd;
pub mod plot;
pub mod runs;

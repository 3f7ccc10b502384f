//! catdog: the product around the network core ([`catdog_core`], re-exported here module by
//! module): the command line of `model`, checkpoints, metrics, plots, contact sheets and the
//! training run with its progress bar ([`fit`]). [`guard`] is the process plumbing
//! (`catdog-guard`), shared with `tools/pack`.

#[cfg(target_arch = "x86_64")]
pub use catdog_core::original;
pub use catdog_core::{
    arena, augment, blob, builder, config, cpu, dataset, infer, kernels, layers, net, network,
    parameters, profile, reference, report, rng, schedule, split, step, team, testing, train,
    update,
};
pub use catdog_guard as guard;
pub use catdog_guard::{errln, out, outln};

pub mod checkpoint;
pub mod cli;
pub mod contact_sheet;
pub mod export;
pub mod fit;
pub mod metrics;
pub mod packer_cmd;
pub mod plot;
pub mod runs;

//! catdog-core: the network. Arenas, parameters, both kernel tiers (the original's routines in
//! [`original`], ours in [`kernels`] with their drivers), the scalar
//! [`reference`](mod@reference), the layers, the passes, the threads and the training loops; and
//! the dataset blob format that the trainer reads and `tools/pack` writes ([`blob`]). It depends
//! on nothing for images, plots, progress bars or the command line: reading this crate is
//! reading the whole network.
//!
//! Reading order, from `main` down: [`builder::network`] builds the network on the chosen
//! kernels, once; [`train`] runs the epochs (threads, the update) in the order and at the rates
//! of [`schedule`]; [`step`] runs one batch's phases through the layers in order; [`layers`]
//! holds one file per layer (forward and backward side by side, the asm driver and the table
//! that picks asm or reference once); the `asm!` micro-kernels are in [`kernels`], their scalar
//! twins in [`reference`](mod@reference). [`net`] is the memory: every tensor a named view into
//! a few arenas. Around them: [`augment`] (the improved recipe's crops and jitter), [`split`]
//! (the validation hold-out), [`infer`] (predictions, with or without the mirror), [`report`]
//! (the original's log lines, accuracy, loss, confusion, calibration).
//!
//! Module map (original file -> module): `buffer.asm` -> [`arena`], [`net`]; `loader.asm` ->
//! [`layers::input`]; `convolution.asm` -> [`layers::conv`]; `maxpool.asm` -> [`layers::pool`];
//! `dense.asm`, `dot_product.asm`, `matrix_ops.asm`, `activation_functions.asm` (ReLU) ->
//! [`layers::fc`]; `loss.asm` and the sigmoid -> [`layers::loss`]; `update_weights.asm` ->
//! [`update`]; `forward.asm`, `backward.asm` -> [`step`]; `_start.asm` -> [`train`], its log
//! lines -> [`report`]. The original tier, one module per original file, is in [`original`];
//! [`network`] is the seam the loops drive every tier through, and [`builder`] the one place a
//! tier is chosen.

pub mod arena;
pub mod augment;
pub mod blob;
pub mod builder;
pub mod config;
pub mod cpu;
pub mod dataset;
pub mod infer;
pub mod kernels;
pub mod layers;
pub mod net;
pub mod network;
#[cfg(target_arch = "x86_64")]
pub mod original;
pub mod parameters;
pub mod portable;
pub mod profile;
pub mod reference;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod split;
pub mod step;
pub mod team;
pub mod testing;
pub mod train;
pub mod update;

//! catdog-core: the network. Arenas, parameters, both kernel tiers (the original's routines in
//! [`original`], ours in [`kernels`] with their drivers), the scalar
//! [`reference`](mod@reference), the layers, the passes, the threads and the training loops; and
//! the dataset blob format that the trainer reads and `tools/pack` writes ([`blob`]). It depends
//! on nothing for images, plots, progress bars or the command line: reading this crate is
//! reading the whole network.
//!
//! Module map (original file -> module): `buffer.asm` -> [`arena`], [`model`]; `loader.asm` ->
//! [`loader`]; `convolution.asm` -> [`convolution`]; `maxpool.asm` -> [`maxpool`]; `dense.asm`,
//! `dot_product.asm`, `matrix_ops.asm` -> [`dense`]; `activation_functions.asm` ->
//! [`activations`]; `loss.asm` -> [`loss`]; `update_weights.asm` -> [`update`]; `forward.asm`,
//! `backward.asm` -> [`forward`], [`backward`]; `_start.asm` -> [`train`]. The fast tier's
//! `asm!` kernels are in [`kernels`], their scalar twins in [`reference`](mod@reference); the
//! original tier, one module per original file, in [`original`]; [`network`] is the seam that
//! picks a tier.

pub mod activations;
pub mod arena;
pub mod backward;
pub mod blob;
pub mod config;
pub mod convolution;
pub mod cpu;
pub mod dataset;
pub mod dense;
pub mod dropout;
pub mod forward;
pub mod guard;
pub mod kernels;
pub mod loader;
pub mod loss;
pub mod maxpool;
pub mod model;
pub mod network;
#[cfg(target_arch = "x86_64")]
pub mod original;
pub mod parameters;
pub mod profile;
pub mod reference;
pub mod report;
pub mod rng;
pub mod team;
pub mod testing;
pub mod train;
pub mod update;

//! catdog: a cat-vs-dog CNN trainer, ported from an x86-64 AVX-512 assembly original.
//!
//! Module map (original file -> module): `buffer.asm` -> [`arena`], `loader.asm` -> [`loader`],
//! `convolution.asm` -> [`convolution`], `maxpool.asm` -> [`maxpool`], `dense.asm` /
//! `dot_product.asm` / `matrix_ops.asm` -> [`dense`], `activation_functions.asm` ->
//! [`activations`], `loss.asm` -> [`loss`], `update_weights.asm` -> [`update`].
//! The `asm!` kernels are in [`kernels`], their scalar twins in [`reference`](mod@reference).

pub mod activations;
pub mod arena;
pub mod backward;
pub mod blob;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod contact_sheet;
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
pub mod metrics;
pub mod model;
pub mod network;
#[cfg(target_arch = "x86_64")]
// Its docs name its private `call_routine!` macro (read them with --document-private-items):
// the original tier is not edited, so the lint is allowed here.
#[allow(rustdoc::private_intra_doc_links)]
pub mod original;
pub mod packer_cmd;
pub mod parameters;
pub mod plot;
pub mod profile;
pub mod reference;
pub mod report;
pub mod rng;
pub mod runs;
pub mod team;
pub mod testing;
pub mod train;
pub mod update;

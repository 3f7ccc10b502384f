//! The network's layers, one file each, forward and backward side by side with their shapes:
//! [`input`] (image to floats), [`conv`] (3x3 conv + ReLU), [`pool`] (2x2 max-pool),
//! [`fc`] (fully connected + ReLU), [`dropout`], [`loss`] (sigmoid + cross-entropy). The optimizer step is
//! [`crate::update`]; the order the layers run in, a batch's phases, is [`crate::step`].
//!
//! Each layer has its asm driver here (`*_asm`, loops around the `asm!` kernels of
//! [`crate::kernels`]; each takes the [`Avx512`] token) and its scalar twin in
//! [`crate::reference`], with the same signature otherwise. Which of them runs is chosen once,
//! when a network is built: [`LayerFns`] is the table of one choice's functions
//! ([`LayerFns::for_kernels`]; the asm table only through [`Avx512::layer_fns`]), and each conv
//! layer gets its own [`conv::ConvPlan`] (the algorithm: direct, Winograd or the reference).
//! The passes call through them and never ask which kernels they are on.

/// An entry of an asm table ([`LayerFns`], the asm [`conv::ConvPlan`]s): a closure with the
/// table's signature that hands driver `$f` the [`Avx512`] token. Those tables are reachable only
/// with a token ([`Avx512::layer_fns`], [`conv::ConvPlan::with`]), so one exists.
macro_rules! asm_entry {
    ($f:path; $($a:ident),*) => {
        // SAFETY: this entry's table was reached with an `Avx512` token.
        |$($a),*| $f(unsafe { $crate::cpu::Avx512::assumed() }, $($a),*)
    };
}

/// `buffers! { /// doc  pub struct Name<'a> { pub field: Type, ... } }`: the struct of one pass's
/// buffers (what a table's function type takes instead of a long argument list) and its `new`,
/// which takes them in the order of the fields.
macro_rules! buffers {
    ($(#[$m:meta])* pub struct $name:ident<$l:lifetime> { $(pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name<$l> {
            $(pub $f: $t,)*
        }

        impl<$l> $name<$l> {
            /// The buffers in the order of the fields.
            #[allow(clippy::too_many_arguments)]
            pub fn new($($f: $t),*) -> Self {
                Self { $($f),* }
            }
        }
    };
}

pub mod conv;
pub mod dropout;
pub mod fc;
pub mod input;
pub mod loss;
pub mod pool;

use crate::config::Kernels;
use crate::config::PoolDims;
use crate::cpu::Avx512;
use crate::reference as r;
use crate::update::{self, Momentum};
use fc::FcDims;
use pool::PoolOut;
use std::ops::Range;

/// One choice of kernels' function for every layer but the convolutions (those are per layer:
/// [`conv::ConvPlan`]). Each field's contract is the doc of its asm function.
pub struct LayerFns {
    /// [`input::load_asm`]: `(h, w, image, x_pad, flip)`.
    pub load_image: fn(usize, usize, &[u8], &mut [f32], bool),
    /// [`pool::forward_asm`].
    pub pool_forward: fn(&PoolDims, &[f32], &mut PoolOut, Range<usize>),
    /// [`pool::backward_asm`].
    pub pool_backward: fn(&PoolDims, &[f32], &[u8], &mut [f32]),
    /// [`fc::forward_asm`].
    pub fc_forward: unsafe fn(FcDims, fc::FcForward),
    /// [`fc::forward_packed`], where the path has it: fc1 in inference, on weights packed once
    /// per change of the parameters, from rows [`fc::infer_stride`] apart (`None`: inference
    /// runs `fc_forward` as training does).
    pub fc_forward_packed: Option<FcPackedFn>,
    /// [`fc::relu_backward_asm`].
    pub relu_backward: fn(&[f32], &mut [f32]),
    /// [`fc::input_grad_asm`].
    pub fc_input_grad: unsafe fn(FcDims, &[f32], &[f32], *mut f32, Range<usize>),
    /// [`fc::weight_grad_asm`].
    pub fc_weight_grad: fn(FcDims, fc::FcWeightGrads),
    /// [`fc::backward_fused_sgd`], where the path has it (fc1's input and weight gradients with
    /// the plain SGD step in one sweep; `None`: the reference runs the three separately).
    pub fc_backward_fused_sgd: Option<FusedSgdFn>,
    /// [`dropout::apply_asm`].
    pub dropout: fn(&mut [f32], &[u8], f32),
    /// [`loss::sigmoid_asm`].
    pub sigmoid: fn(&[f32], &mut [f32]),
    /// [`loss::sigmoid_bce_asm`].
    pub sigmoid_bce: fn(&[f32], &[u8], &mut [f32], &mut [f32]) -> f32,
    /// [`update::sum_slots_asm`].
    pub sum_slots: fn(&[f32], usize, usize, &mut [f32]),
    /// [`update::sgd_asm`].
    pub sgd: fn(&mut [f32], &[f32], f32),
    /// [`update::sgd_momentum_asm`].
    pub sgd_momentum: fn(&mut [f32], &[f32], &mut [f32], Momentum),
}

/// [`fc::forward_packed`]'s signature.
pub type FcPackedFn = unsafe fn(FcDims, (&[f32], usize), &[f32], &[f32], *mut f32, Range<usize>);

/// [`fc::backward_fused_sgd`]'s signature.
pub type FusedSgdFn = unsafe fn(FcDims, (&[f32], &[f32]), *mut f32, f32, *mut f32, Range<usize>);

/// The asm drivers: reachable only through [`Avx512::layer_fns`].
static ASM: LayerFns = LayerFns {
    load_image: asm_entry!(input::load_asm; h, w, src, dst, flip),
    pool_forward: asm_entry!(pool::forward_asm; d, y, pool, rows),
    pool_backward: asm_entry!(pool::backward_asm; d, dout, argmax, dy_pad),
    fc_forward: fc::forward_asm,
    fc_forward_packed: Some(fc::forward_packed),
    relu_backward: asm_entry!(fc::relu_backward_asm; y, dy),
    fc_input_grad: fc::input_grad_asm,
    fc_weight_grad: asm_entry!(fc::weight_grad_asm; d, g),
    fc_backward_fused_sgd: Some(fc::backward_fused_sgd),
    dropout: asm_entry!(dropout::apply_asm; x, bits, keep),
    sigmoid: asm_entry!(loss::sigmoid_asm; z, p),
    sigmoid_bce: asm_entry!(loss::sigmoid_bce_asm; z, y, p, dz),
    sum_slots: asm_entry!(update::sum_slots_asm; src, slots, stride, dst),
    sgd: asm_entry!(update::sgd_asm; p, g, scale),
    sgd_momentum: asm_entry!(update::sgd_momentum_asm; p, g, v, m),
};

/// The scalar reference.
pub static REFERENCE: LayerFns = LayerFns {
    load_image: r::load::load_image,
    pool_forward: r::pool::forward,
    pool_backward: r::pool::backward,
    fc_forward: r::fc::forward,
    fc_forward_packed: None,
    relu_backward: r::activations::relu_backward,
    fc_input_grad: r::fc::input_grad,
    fc_weight_grad: r::fc::weight_grad,
    fc_backward_fused_sgd: None,
    dropout: r::dropout::apply,
    sigmoid: r::loss::sigmoid,
    sigmoid_bce: r::loss::sigmoid_bce,
    sum_slots: r::update::sum_slots,
    sgd: r::update::sgd,
    sgd_momentum: r::update::sgd_momentum,
};

impl Avx512 {
    /// The asm drivers' table.
    pub fn layer_fns(self) -> &'static LayerFns {
        &ASM
    }
}

impl LayerFns {
    /// The table of `kernels` (`Original` has none: its routines run whole passes).
    pub fn for_kernels(kernels: Kernels) -> Result<&'static LayerFns, String> {
        match kernels {
            Kernels::Fast => Ok(crate::cpu::require_avx512("fast")?.layer_fns()),
            Kernels::Reference => Ok(&REFERENCE),
            Kernels::Portable => Ok(&crate::portable::PORTABLE),
            Kernels::Original => Err("the original kernels have no layer table".into()),
        }
    }
}

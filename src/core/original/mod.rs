//! The *original* kernel tier: the assembly original's routines, one `asm!` routine per original
//! routine, with its loops, vector widths, masks, reduction order and registers, so that it
//! computes the same bits and a reader can hold the two side by side.
//!
//! The original is the public repository
//! [mohammad-ghaderi/cat-dog-asm-cnn](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn); every
//! routine here names the file and lines it mirrors at commit
//! [`7f5085c`](https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/tree/7f5085c) (the commit our
//! fidelity case was computed with). One module per original file:
//!
//! | original file | module |
//! |---|---|
//! | `buffer.asm` | [`buffer`] (the static buffers, sized from the hyperparameters) |
//! | `loader.asm` | [`loader`] |
//! | `padding.asm` | [`padding`] |
//! | `convolution.asm` | [`convolution`] |
//! | `maxpool.asm` | [`maxpool`] |
//! | `dense.asm`, `dot_product.asm` | [`dense`] |
//! | `matrix_ops.asm` | [`matrix_ops`] |
//! | `activation_functions.asm` | [`activation_functions`] |
//! | `loss.asm` | [`loss`] |
//! | `update_weights.asm` | [`update_weights`] |
//! | `forward.asm` | [`forward`] |
//! | `backward.asm` | [`backward`] |
//! | `_start.asm` | [`start`] (the sample, batch and epoch loops; the test loop) |
//!
//! How a routine is written: the original's routines pass their arguments in registers of their
//! own choosing (`rbx` for a channel count, `r14` for a bias pointer, `k1` for a load mask) and
//! call each other (`dense` calls `dot_product`, then `relu` or `sigmoid`, which calls the C
//! library's `expf`). So each computing routine is a naked function (`#[unsafe(naked)]`,
//! `*_routine`, declared by `routine!` below) whose body is the routine, taking its arguments in
//! the original's registers; routines call each other with `call`, exactly as in the original.
//! Where the original writes the same lines in two places (`sigmoid`'s two calls of `expf`, the
//! set-up and step of both max-pool walks), they are one `concat!` macro beside the routines,
//! used in both, each use with a comment naming its lines and the other's. The drivers are not
//! naked functions but plain Rust calling the routines in the original's order: `_start.asm`'s
//! loops ([`start`]), `forward_pass` and `backward_pass` ([`forward`], [`backward`]) and the
//! sequence of calls of `update_weights` (`OriginalNet::update_weights` in [`start`]).
//!
//! The tier keeps the original's file, routine and buffer names on purpose, so the two read side
//! by side; every numbered local label in a routine carries the original's label and line as a
//! comment (`"3:", // .filter_loop (convolution.asm:33)`). Rust arrays count layers from 0, the
//! original's names from 1: `conv_out[0]` is its `conv1_out`, `d_pool[2]` its `d_pool3`. A safe-to-read Rust wrapper beside each one loads the
//! registers and calls it (see `call_routine!` below). Rust reserves `rbx` for itself, so the wrappers
//! save and restore it around the call; inside the routine it plays the original's role.
//!
//! What the tier does not do: threads (it runs one sample at a time on one thread, as the
//! original; `--threads` is ignored), the improved recipe's flips, crops and colour jitter, label
//! smoothing, dropout, momentum and weight decay (the original has no kernels for them; its
//! warm-up and schedule are only learning rates, so they run), and CPUs without AVX-512.

pub mod activation_functions;
pub mod backward;
pub mod buffer;
pub mod convolution;
pub mod dense;
pub mod forward;
pub mod loader;
pub mod loss;
pub mod matrix_ops;
pub mod maxpool;
pub mod padding;
pub mod start;
pub mod update_weights;

pub use start::OriginalNet;

/// Calls an original routine (a naked function taking its arguments in registers) from Rust.
///
/// `rbx` is saved and loaded with the given value (Rust may not name it as an operand); the stack
/// is 16-byte aligned at the `call` (the System V convention; the two routines that call the C
/// library directly want another stack: `entry_rsp_16` below); every register the C ABI lets a callee clobber, and the given extra ones, are declared
/// clobbered; `vzeroupper` follows, so that the (SSE) Rust code after it does not stall on a dirty
/// upper vector state. Optional string literals before `;` run first (for example `"kmovw k1,
/// {mask:e}"`): before `rbx` is touched, because the compiler may have put one of the operands in
/// `rbx` (it may not be *named*, but it may be allocated); after the `push rbx`, only
/// `{rbx_value}` is read.
///
/// With `entry_rsp_16` after the `rbx` value, the routine is entered with `rsp` itself a multiple
/// of 16 (8 below the System V convention), as the original's `_start` enters
/// `compute_loss_routine` and as `dense_routine` enters `sigmoid_routine`: those two were written
/// for that stack, and only with it are their calls into the C library (`logf`, `expf`) aligned.
macro_rules! call_routine {
    ($routine:path, rbx = $rbx:expr; $($pre:literal),* ; $($operands:tt)*) => {
        $crate::original::call_routine!(
            @call $routine, $rbx, "sub rsp, 8", "add rsp, 8"; $($pre),* ; $($operands)*
        )
    };
    ($routine:path, rbx = $rbx:expr, entry_rsp_16; $($pre:literal),* ; $($operands:tt)*) => {
        // Empty template lines: no instruction, so `rsp` stays 16-aligned at the `call`.
        $crate::original::call_routine!(@call $routine, $rbx, "", ""; $($pre),* ; $($operands)*)
    };
    (@call $routine:path, $rbx:expr, $align:literal, $unalign:literal;
     $($pre:literal),* ; $($operands:tt)*) => {
        ::core::arch::asm!(
            $($pre,)*
            "push rbx",
            $align,
            "mov rbx, {rbx_value}",
            "call {routine}",
            $unalign,
            "pop rbx",
            "vzeroupper",
            routine = sym $routine,
            rbx_value = in(reg) $rbx,
            $($operands)*
            clobber_abi("C"),
        )
    };
}
pub(crate) use call_routine;

/// Declares an original routine: `#[unsafe(naked)] pub unsafe extern "C" fn name()` whose body
/// is the `naked_asm!` template and operands given, one instruction a line as in the original.
/// Its documentation is the description given, then a link to the lines of the original it
/// mirrors, then the safety contract every routine shares, continued by its own.
///
/// ```text
/// routine! {
///     /// What it computes; its registers.
///     mirrors "backward.asm" lines 192-205;
///     safety:
///     /// What its own contract adds (CPU features, buffer sizes).
///     fn accumulate_db_routine {
///         "shr rcx, 4",
///         ...
///     }
/// }
/// ```
macro_rules! routine {
    (
        $(#[doc = $doc:expr])*
        mirrors $file:literal lines $first:literal - $last:literal;
        safety:
        $(#[doc = $safety:expr])*
        fn $name:ident { $($body:tt)* }
    ) => {
        $(#[doc = $doc])*
        ///
        #[doc = concat!(
            "Mirrors [`", $file, "` lines ", $first, "-", $last, "](",
            $crate::original::source!(), "/", $file, "#L", $first, "-L", $last, ")."
        )]
        ///
        /// # Safety
        /// Reach it only with a `call` from `asm!` (as `call_routine!` and the other routines do),
        /// never through its Rust signature: its arguments and results are in the registers named
        /// above, and the caller must declare every register it writes as clobbered.
        $(#[doc = $safety])*
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            ::core::arch::naked_asm!($($body)*)
        }
    };
}
pub(crate) use routine;

/// The original's files at the pinned commit, as a literal (for `concat!`).
macro_rules! source {
    () => {
        "https://github.com/mohammad-ghaderi/cat-dog-asm-cnn/blob/7f5085c"
    };
}
pub(crate) use source;

/// A link to lines of a file of the original at the pinned commit (for doc comments and notes).
pub const SOURCE: &str = source!();

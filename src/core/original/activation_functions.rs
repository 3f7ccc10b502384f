//! `activation_functions.asm`: scalar ReLU, the two-branch sigmoid that calls the C library's
//! `expf`, and the ReLU gradient.

use super::{call_routine, routine};

// The C library's single-precision exponential, as the original links it.
#[allow(dead_code)]
extern "C" {
    pub(crate) fn expf(x: f32) -> f32;
}

/// The constant 1.0 the sigmoid reads from memory.
static ONE: f32 = 1.0;

/// `xmm0 = expf(xmm0)`, the integer registers the callers keep live (`rcx rdx rsi rdi r8-r11`)
/// pushed before and popped after: the lines the original writes in both branches of `sigmoid`
/// (activation_functions.asm:31-49 and 62-80). The template it stands in names `expf` as an
/// operand (`expf = sym expf`).
macro_rules! call_expf {
    () => {
        concat!(
            "push rcx\n",
            "push rdx\n",
            "push rsi\n",
            "push rdi\n",
            "push r8\n",
            "push r9\n",
            "push r10\n",
            "push r11\n",
            "call {expf}\n",
            "pop r11\n",
            "pop r10\n",
            "pop r9\n",
            "pop r8\n",
            "pop rdi\n",
            "pop rsi\n",
            "pop rdx\n",
            "pop rcx",
        )
    };
}

routine! {
    /// `xmm0 = max(xmm0, +0.0)` by `maxss` (so `-0.0` and NaN both give `+0.0`). Clobbers `xmm1`.
    mirrors "activation_functions.asm" lines 12-15;
    safety:
    /// SSE only; it touches no memory and no stack.
    fn relu_routine {
        "xorps xmm1, xmm1",
        "maxss xmm0, xmm1",
        "ret",
    }
}

routine! {
    /// `xmm0 = sigmoid(xmm0)`, in two branches so that `expf` only sees arguments <= 0: for `x >=
    /// 0`, `1 / (expf(0 - x) + 1)`; otherwise (and for NaN), `expf(x) / (1 + expf(x))`. The
    /// caller-saved integer registers the callers use (`rcx rdx rsi rdi r8-r11`) are kept on the
    /// stack around the `expf` call.
    mirrors "activation_functions.asm" lines 20-85;
    safety:
    /// SSE only. It calls the C library's `expf`, so the caller must also treat every register the
    /// C ABI lets a callee clobber as clobbered, and `rsp` must be a multiple of 16 on entry (one
    /// below the System V convention, as when `dense_routine` calls it), so that the `call` to
    /// `expf` after its eight pushes is aligned.
    fn sigmoid_routine {
        "xorps xmm1, xmm1",
        "comiss xmm0, xmm1",
        "jb 3f",
        // .x_positive (activation_functions.asm:26): x >= 0
        "xorps xmm1, xmm1",
        "subss xmm1, xmm0",
        "movaps xmm0, xmm1",
        // activation_functions.asm:31-49 (the same lines as the other branch, 62-80)
        call_expf!(),
        "movss xmm1, [rip + {one}]",
        "addss xmm0, xmm1",
        "movss xmm1, [rip + {one}]",
        "divss xmm1, xmm0",
        "movaps xmm0, xmm1",
        "ret",
        // x < 0
        "3:", // .x_negative (activation_functions.asm:60)
        // activation_functions.asm:62-80 (the same lines as the other branch, 31-49)
        call_expf!(),
        "movss xmm1, [rip + {one}]",
        "addss xmm1, xmm0",
        "divss xmm0, xmm1",
        "ret",
        expf = sym expf,
        one = sym ONE,
    }
}

routine! {
    /// In place, `dz[i] = 0` unless `z[i] > 0` (`comiss`, so NaN also zeroes), one float at a time;
    /// `z` is the layer's stored *post*-ReLU output.
    ///
    /// Registers: `rdi` z, `rsi` gradient (in place), `rcx` count; uses `rax`, `xmm0-1`.
    mirrors "activation_functions.asm" lines 92-108;
    safety:
    /// SSE only. `rcx >= 1` (the loop tests at its end); `rdi` readable and `rsi` readable and
    /// writable for `rcx` floats.
    fn relu_backward_routine {
        "xor rax, rax",
        "2:", // .relu_backward_loop (activation_functions.asm:94)
        "movss xmm0, [rdi + rax*4]",
        "xorps xmm1, xmm1",
        "comiss xmm0, xmm1",
        "jbe 3f",
        "movss xmm0, [rsi + rax*4]",
        "jmp 4f",
        "3:", // .zero_grad (activation_functions.asm:101)
        "xorps xmm0, xmm0",
        "4:", // .store_grad (activation_functions.asm:103)
        "movss [rsi + rax*4], xmm0",
        "inc rax",
        "cmp rax, rcx",
        "jl 2b",
        "ret",
    }
}

/// ReLU of one value through [`relu_routine`].
pub fn relu(x: f32) -> f32 {
    let y: f32;
    // SAFETY: SSE only; the routine touches xmm0-1.
    unsafe {
        call_routine!(relu_routine, rbx = 0usize; ; inout("xmm0") x => y,);
    }
    y
}

/// Sigmoid of one value through [`sigmoid_routine`].
pub fn sigmoid(x: f32) -> f32 {
    let y: f32;
    // SAFETY: SSE and a C library call, covered by the C-ABI clobbers; entered with the stack
    // the routine expects (`entry_rsp_16`).
    unsafe {
        call_routine!(sigmoid_routine, rbx = 0usize, entry_rsp_16; ; inout("xmm0") x => y,);
    }
    y
}

/// `dz[i] = if z[i] > 0 { dz[i] } else { 0 }` through [`relu_backward_routine`] (`z.len() ==
/// dz.len() >= 1`).
pub fn relu_backward(z: &[f32], dz: &mut [f32]) {
    assert!(z.len() == dz.len() && !z.is_empty());
    // SAFETY: SSE only; the routine reads z and rewrites dz, `len` floats each.
    unsafe {
        call_routine!(relu_backward_routine, rbx = 0usize; ;
            in("rdi") z.as_ptr(), in("rsi") dz.as_mut_ptr(), in("rcx") z.len(),);
    }
}

//! `dense.asm` and `dot_product.asm`: a dense layer as one dot product per neuron (16-wide FMAs
//! into one accumulator, the horizontal sum of [`super::convolution::conv2d_routine`], plus the
//! bias), then ReLU or the sigmoid.

use super::convolution::horizontal_sum;
use super::{call_routine, routine};

routine! {
    /// `xmm0 = dot(x, w) + bias` over `rcx` floats (a multiple of 16): FMAs into `zmm0` 16 lanes at
    /// a time in order, then the tree `a[k] + a[k+8]`, `+ [k+4]`, two `haddps`, then `+ [rdx]`.
    ///
    /// Registers (as the original): `rdi` x, `rsi` weights row, `rcx` length, `rdx` bias pointer;
    /// uses `rax` (index), `rbx` (16-float steps), `zmm0-2`.
    mirrors "dot_product.asm" lines 11-42;
    safety:
    /// AVX-512 F and DQ. `rcx` a nonzero multiple of 16; `rdi` and `rsi` readable for `rcx` floats,
    /// `rdx` for one. It overwrites `rbx`, which Rust reserves: save it around the call
    /// (`call_routine!` does).
    fn dot_product_routine {
        "xor rax, rax",
        "vxorps zmm0, zmm0, zmm0",
        "mov rbx, rcx",
        "shr rbx, 4",
        "2:", // .dp_loop (dot_product.asm:17)
        "vmovups zmm1, [rdi + rax*4]",
        "vmovups zmm2, [rsi + rax*4]",
        "vfmadd231ps zmm0, zmm1, zmm2",
        "add rax, 16",
        "dec rbx",
        "jnz 2b",
        // dot_product.asm:26-31 (the same lines in conv2d, convolution.asm:54-59)
        horizontal_sum!(),
        "movss xmm1, [rdx]", // .add_bias (dot_product.asm:39), never a jump target
        "addss xmm0, xmm1",
        "ret",
    }
}

routine! {
    /// For each of `r9` neurons: `out[n] = act(dot(x, W[n]) + b[n])`, `act` ReLU when `r12 = 0`,
    /// the sigmoid when `r12 = 1`.
    ///
    /// Registers (as the original): `rdi` x, `rsi` weights `[neurons][rcx]`, `rdx` biases, `r8`
    /// output, `r9` neuron count, `rcx` input length, `r12` activation flag; uses `r10`, `r11`.
    mirrors "dense.asm" lines 15-41;
    safety:
    /// AVX-512 F and DQ. `r9 >= 1`; `rcx` a nonzero multiple of 16; `rdi` readable for `rcx`
    /// floats, `rsi` for `r9 * rcx`, `rdx` for `r9`; `r8` writable for `r9` floats. `r12 = 1`
    /// selects the sigmoid, anything else ReLU. It calls
    /// [`super::activation_functions::sigmoid_routine`] and so the C library's `expf`: the caller
    /// must treat every register the C ABI lets a callee clobber, and `rbx`, as clobbered, and
    /// enter it the System V way (`rsp` a multiple of 16 at its `call`).
    fn dense_routine {
        "mov r10, r9",
        "imul r11, rcx, 4",
        "2:", // .layer_loop (dense.asm:18)
        "call {dot_product}",
        "cmp r12, 1",
        "je 3f",
        "call {relu}",
        "jmp 4f",
        "3:", // .no_relu (dense.asm:28)
        "call {sigmoid}",
        "4:", // .save_value (dense.asm:31)
        "movss [r8], xmm0",
        "add r8, 4",
        "add rsi, r11",
        "add rdx, 4",
        "dec r10",
        "jnz 2b",
        "ret",
        dot_product = sym dot_product_routine,
        relu = sym super::activation_functions::relu_routine,
        sigmoid = sym super::activation_functions::sigmoid_routine,
    }
}

/// The activation after a dense layer's dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu = 0,
    Sigmoid = 1,
}

/// `out = act(W x + b)` for one sample through [`dense_routine`].
///
/// Shapes: `x` `[inputs]` (a multiple of 16), `w` `[neurons][inputs]`, `b` and `out` `[neurons]`.
///
/// # Safety
/// AVX-512 F/DQ.
pub unsafe fn dense(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32], act: Activation) {
    let (inputs, neurons) = (x.len(), out.len());
    assert!(inputs >= 16 && inputs.is_multiple_of(16) && neurons >= 1);
    assert!(w.len() >= inputs * neurons && b.len() >= neurons);
    call_routine!(dense_routine, rbx = 0usize; ;
        in("rdi") x.as_ptr(),
        in("rsi") w.as_ptr(),
        in("rdx") b.as_ptr(),
        in("r8") out.as_mut_ptr(),
        in("r9") neurons,
        in("rcx") inputs,
        inout("r12") act as usize => _,
    );
}

/// `dot(x, w) + bias` through [`dot_product_routine`] (`x.len() == w.len()`, a multiple of 16).
///
/// # Safety
/// AVX-512 F/DQ.
pub unsafe fn dot_product(x: &[f32], w: &[f32], bias: f32) -> f32 {
    assert!(x.len() == w.len() && x.len() >= 16 && x.len().is_multiple_of(16));
    let out: f32;
    call_routine!(dot_product_routine, rbx = 0usize; ;
        in("rdi") x.as_ptr(),
        in("rsi") w.as_ptr(),
        in("rcx") x.len(),
        in("rdx") &bias as *const f32,
        out("xmm0") out,
    );
    out
}

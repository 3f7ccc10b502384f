//! `matrix_ops.asm`: the two matrix routines of the dense layers' backward pass.

use super::{call_routine, routine};

routine! {
    /// `C[i][j] += A[i] * B[j]` for `i < r9`, `j < rcx`: per row, 16 columns at a time with one FMA
    /// (fused: one rounding), then the remaining columns one at a time with a multiply and a
    /// separate add (two roundings).
    ///
    /// Registers (as the original): `rdi` A, `rsi` B, `rdx` C `[r9][rcx]`, `r9` rows, `rcx`
    /// columns; uses `r8` (i), `r10` (j), `r11`, `r12` (row pointer), `zmm0-2`.
    mirrors "matrix_ops.asm" lines 14-69;
    safety:
    /// AVX-512 F. `rdi` readable for `r9` floats, `rsi` for `rcx`; `rdx` readable and writable for
    /// `r9 * rcx` floats.
    fn outer_product_add_routine {
        "xor r8, r8",
        "2:", // .outer_loop (matrix_ops.asm:16)
        "cmp r8, r9",
        "jae 7f",
        "vbroadcastss zmm0, dword ptr [rdi + r8*4]",
        "mov r12, r8",
        "imul r12, rcx",
        "shl r12, 2",
        "add r12, rdx",
        "xor r10, r10",
        "cmp rcx, 16",
        "jb 4f",
        // 16 columns at a time
        "3:", // .inner_loop (matrix_ops.asm:32)
        "vmovups zmm1, [rsi + r10*4]",
        "vmovups zmm2, [r12 + r10*4]",
        "vfmadd231ps zmm2, zmm0, zmm1",
        "vmovups [r12 + r10*4], zmm2",
        "add r10, 16",
        "mov r11, rcx",
        "sub r11, r10",
        "cmp r11, 16",
        "jae 3b",
        // the remaining columns, one at a time
        "4:", // .tail_loop (matrix_ops.asm:46)
        "movss xmm0, dword ptr [rdi + r8*4]",
        "5:", // .tail_inner_loop (matrix_ops.asm:49)
        "cmp r10, rcx",
        "jge 6f",
        "movss xmm1, dword ptr [rsi + r10*4]",
        "mulss xmm1, xmm0",
        "movss xmm2, dword ptr [r12 + r10*4]",
        "addss xmm2, xmm1",
        "movss dword ptr [r12 + r10*4], xmm2",
        "inc r10",
        "jmp 5b",
        "6:", // .next_outer_i (matrix_ops.asm:64)
        "inc r8",
        "jmp 2b",
        "7:", // .outer_end (matrix_ops.asm:68)
        "ret",
    }
}

routine! {
    /// `y[j] = sum_i x[i] * W[i][j]` (`W` is `[rcx][r9]`, row-major): 16 outputs at a time, each
    /// accumulated by FMAs over `i` in order from zero; when fewer than 16 outputs remain, the rest
    /// one at a time with a multiply and a separate add per `i`.
    ///
    /// Registers (as the original): `rdi` x, `rsi` W, `rdx` y, `rcx` length of x, `r9` length of y;
    /// uses `r8` (j), `r10` (i), `r11`, `r12`, `r13`, `zmm0-2`.
    ///
    /// One instruction of the original is left out: its `.tail_end` (lines 154-155) is a lone jump
    /// to `.outer_end`, so the tail loop's exit jumps to `.outer_end` directly; the same path, the
    /// same bits.
    mirrors "matrix_ops.asm" lines 78-158;
    safety:
    /// AVX-512 F. `rdi` readable for `rcx` floats, `rsi` for `rcx * r9`; `rdx` writable for `r9`
    /// floats.
    fn matrix_vector_multiply_routine {
        "xor r8, r8",
        "2:", // .outer_loop (matrix_ops.asm:81)
        "cmp r8, r9",
        "jae 9f",
        "mov r11, r9",
        "sub r11, r8",
        "cmp r11, 16",
        "jb 5f",
        // 16 outputs: sum over i
        "vxorps zmm0, zmm0, zmm0",
        "xor r10, r10",
        "3:", // .inner_loop (matrix_ops.asm:92)
        "cmp r10, rcx",
        "jae 4f",
        "vbroadcastss zmm1, dword ptr [rdi + r10*4]",
        "mov r12, r10",
        "imul r12, r9",
        "shl r12, 2",
        "add r12, rsi",
        "vmovups zmm2, [r12 + r8*4]",
        "vfmadd231ps zmm0, zmm1, zmm2",
        "inc r10",
        "jmp 3b",
        "4:", // .store_inner (matrix_ops.asm:110)
        "vmovups [rdx + r8*4], zmm0",
        "add r8, 16",
        "jmp 2b",
        // fewer than 16 outputs left: one at a time
        "5:", // .tail_loop (matrix_ops.asm:116)
        "mov r13, r8",
        "6:", // .tail_loop_col (matrix_ops.asm:119)
        "cmp r13, r9",
        "jge 9f", // the original jumps to .tail_end (matrix_ops.asm:121, 154), which only jumps on to .outer_end; we jump there directly
        "pxor xmm0, xmm0",
        "xor r10, r10",
        "7:", // .tail_inner (matrix_ops.asm:128)
        "cmp r10, rcx",
        "jge 8f",
        "movss xmm1, dword ptr [rdi + r10*4]",
        "mov r12, r10",
        "imul r12, r9",
        "add r12, r13",
        "shl r12, 2",
        "add r12, rsi",
        "movss xmm2, dword ptr [r12]",
        "mulss xmm1, xmm2",
        "addss xmm0, xmm1",
        "inc r10",
        "jmp 7b",
        "8:", // .tail_store (matrix_ops.asm:148)
        "movss dword ptr [rdx + r13*4], xmm0",
        "inc r13",
        "jmp 6b",
        "9:", // .outer_end (matrix_ops.asm:157); .tail_end (matrix_ops.asm:154) is folded into it
        "ret",
    }
}

/// `c[i][j] += a[i] * b[j]` through [`outer_product_add_routine`] (`c` is `[a.len()][b.len()]`).
///
/// # Safety
/// AVX-512 F/DQ.
pub unsafe fn outer_product_add(a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(c.len() >= a.len() * b.len());
    call_routine!(outer_product_add_routine, rbx = 0usize; ;
        in("rdi") a.as_ptr(),
        in("rsi") b.as_ptr(),
        in("rdx") c.as_mut_ptr(),
        in("r9") a.len(),
        in("rcx") b.len(),
        out("r12") _,
    );
}

/// `y = x W` through [`matrix_vector_multiply_routine`] (`w` is `[x.len()][y.len()]`).
///
/// # Safety
/// AVX-512 F/DQ.
pub unsafe fn matrix_vector_multiply(x: &[f32], w: &[f32], y: &mut [f32]) {
    assert!(w.len() >= x.len() * y.len());
    call_routine!(matrix_vector_multiply_routine, rbx = 0usize; ;
        in("rdi") x.as_ptr(),
        in("rsi") w.as_ptr(),
        in("rdx") y.as_mut_ptr(),
        in("rcx") x.len(),
        in("r9") y.len(),
        out("r12") _, out("r13") _,
    );
}

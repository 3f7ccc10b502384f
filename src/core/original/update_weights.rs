//! `update_weights.asm`: the SGD step of every parameter tensor, each gradient zeroed after use,
//! and the global `fill_zero`.

use super::{call_routine, routine};

routine! {
    /// `w[i] -= (g[i] * lr) * inv_batch; g[i] = 0` for `rcx` floats (a multiple of 16: there is no
    /// tail), 16 at a time; `lr` and `inv_batch` are re-broadcast from memory every step.
    ///
    /// Registers: `rdi` gradient, `rsi` parameters, `rcx` count, `r10` the address of `[lr,
    /// inv_batch]` (the original reads two constants of its own, `0.01` and `0.0625`); uses
    /// `zmm0-2`.
    mirrors "update_weights.asm" lines 92-117;
    safety:
    /// AVX-512 F. `rcx` a nonzero multiple of 16; `rdi` and `rsi` readable and writable for `rcx`
    /// floats; `r10` readable for two floats.
    fn add_to_vector_routine {
        "shr rcx, 4",
        "2:", // .loop (update_weights.asm:94)
        "vmovups zmm1, [rdi]",
        "vbroadcastss zmm2, dword ptr [r10]",
        "vmulps zmm1, zmm1, zmm2",
        "vbroadcastss zmm2, dword ptr [r10 + 4]",
        "vmulps zmm1, zmm1, zmm2",
        "vmovups zmm0, [rsi]",
        "vsubps zmm0, zmm0, zmm1",
        "vmovups [rsi], zmm0",
        "vpxorq zmm1, zmm1, zmm1",
        "vmovups [rdi], zmm1",
        "add rsi, 64",
        "add rdi, 64",
        "dec rcx",
        "jnz 2b",
        "ret",
    }
}

routine! {
    /// The same step for one scalar (fc2's bias), as `update_weights` does it inline:
    /// `w -= (g * lr) * inv_batch; g = 0`.
    ///
    /// Registers: `rdi` gradient, `rsi` parameter, `r10` the address of `[lr, inv_batch]`; uses
    /// `xmm0-1`.
    mirrors "update_weights.asm" lines 23-33;
    safety:
    /// AVX (VEX-encoded scalar instructions). `rdi` and `rsi` readable and writable for one float;
    /// `r10` readable for two.
    fn update_scalar_routine {
        "vmovss xmm0, [rdi]",
        "vmulss xmm0, xmm0, [r10]",
        "vmulss xmm0, xmm0, [r10 + 4]",
        "vmovss xmm1, [rsi]",
        "vsubss xmm1, xmm1, xmm0",
        "vmovss [rsi], xmm1",
        "vxorps xmm1, xmm1, xmm1",
        "vmovss [rdi], xmm1",
        "ret",
    }
}

routine! {
    /// Zeroes `rcx / 16` whole blocks of 16 floats at `rdi` (a remainder is left as it was). Uses
    /// `zmm1`.
    mirrors "update_weights.asm" lines 122-132;
    safety:
    /// AVX-512 F. `rcx >= 16` (a count below 16 would loop about 2^64 times); `rdi` writable for
    /// `rcx / 16 * 16` floats.
    fn fill_zero_routine {
        "shr rcx, 4",
        "2:", // .loop (update_weights.asm:124)
        "vpxorq zmm1, zmm1, zmm1",
        "vmovups [rdi], zmm1",
        "add rdi, 64",
        "dec rcx",
        "jnz 2b",
        "ret",
    }
}

/// `params -= (grads * lr) * inv_batch`, then `grads = 0`, through [`add_to_vector_routine`]
/// (a multiple of 16 floats) or, for one float, [`update_scalar_routine`].
///
/// # Safety
/// AVX-512 F.
pub unsafe fn add_to_vector(grads: &mut [f32], params: &mut [f32], lr: f32, inv_batch: f32) {
    let n = params.len();
    assert!(grads.len() == n && (n == 1 || (n >= 16 && n.is_multiple_of(16))));
    let consts = [lr, inv_batch];
    if n == 1 {
        call_routine!(update_scalar_routine, rbx = 0usize; ;
            in("rdi") grads.as_mut_ptr(), in("rsi") params.as_mut_ptr(), in("r10") consts.as_ptr(),);
    } else {
        call_routine!(add_to_vector_routine, rbx = 0usize; ;
            in("rdi") grads.as_mut_ptr(), in("rsi") params.as_mut_ptr(), in("rcx") n,
            in("r10") consts.as_ptr(),);
    }
}

/// Zeroes the whole 16-float blocks of `x` through [`fill_zero_routine`] (`x.len() >= 16`).
///
/// # Safety
/// AVX-512 F.
pub unsafe fn fill_zero(x: &mut [f32]) {
    assert!(x.len() >= 16);
    call_routine!(fill_zero_routine, rbx = 0usize; ;
        in("rdi") x.as_mut_ptr(), in("rcx") x.len(),);
}

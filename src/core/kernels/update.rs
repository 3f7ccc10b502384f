//! Streaming kernels of the optimizer step (the original's `update_weights.asm` and
//! `accumulate_db`): one ZMM of 16 floats per step, then one masked step for the tail.
//!
//! Each takes the element count and computes its tail mask `(1 << (len % 16)) - 1` in the
//! wrapper; masked loads/stores never touch memory outside `len`.

use crate::kernels::stream_asm;

/// `dst[i] = src[i] + src[stride + i] + ... + src[(slots-1)*stride + i]` for `i < len`, the
/// slots added in order (deterministic, independent of who filled them).
///
/// Registers: zmm0 running sum, zmm1 masked tail loads, k1 tail mask.
///
/// # Safety
/// AVX-512 present; `slots >= 1`; `src` valid for `(slots-1)*stride + len` floats, `dst` for
/// `len`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn sum_slots(src: *const f32, slots: usize, stride: usize, dst: *mut f32, len: usize) {
    debug_assert!(slots >= 1);
    stream_asm!(
        len: len,
        consts: [],
        pointers: [
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            st = in(reg) stride * 4,
            slots = in(reg) slots,
            q = out(reg) _,
            c = out(reg) _,
        ],
        setup: [],
        // full vectors: slot 0, then slots 1.. in order
        step: [
            "vmovups zmm0, [{s}]",
            "lea {q}, [{s} + {st}]",
            "mov {c}, {slots}",
            "dec {c}",
            "jz 4f",
            "5:",
            "vaddps zmm0, zmm0, [{q}]",
            "add {q}, {st}",
            "dec {c}",
            "jnz 5b",
            "4:",
            "vmovups [{d}], zmm0",
            "add {s}, 64",
            "add {d}, 64",
        ],
        // masked tail
        tail: [
            "kortestw k1, k1",
            "jz 8f",
            "vmovups zmm0 {{k1}}{{z}}, [{s}]",
            "lea {q}, [{s} + {st}]",
            "mov {c}, {slots}",
            "dec {c}",
            "jz 7f",
            "6:",
            "vmovups zmm1 {{k1}}{{z}}, [{q}]",
            "vaddps zmm0, zmm0, zmm1",
            "add {q}, {st}",
            "dec {c}",
            "jnz 6b",
            "7:",
            "vmovups [{d}] {{k1}}, zmm0",
            "8:",
        ],
    );
}

/// `p[i] -= scale * g[i]` (one `vfnmadd231ps` per 16 parameters).
///
/// Registers: zmm0 params, zmm1 grads, zmm2 broadcast scale, k1 tail mask.
///
/// # Safety
/// AVX-512 present; both pointers valid for `len` floats.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn sgd(p: *mut f32, g: *const f32, len: usize, scale: f32) {
    stream_asm!(
        len: len,
        consts: [sc = in(reg) &scale as *const f32,],
        pointers: [p = inout(reg) p => _, g = inout(reg) g => _,],
        setup: ["vbroadcastss zmm2, dword ptr [{sc}]"],
        step: [
            "vmovups zmm0, [{p}]",
            "vfnmadd231ps zmm0, zmm2, [{g}]",
            "vmovups [{p}], zmm0",
            "add {p}, 64",
            "add {g}, 64",
        ],
        tail: [
            "vmovups zmm0 {{k1}}{{z}}, [{p}]",
            "vmovups zmm1 {{k1}}{{z}}, [{g}]",
            "vfnmadd231ps zmm0, zmm2, zmm1",
            "vmovups [{p}] {{k1}}, zmm0",
        ],
    );
}

/// Momentum step: `v = mu*v + (scale*g + wd*p)`, `p -= lr*v`.
///
/// Registers: zmm0 p, zmm1 g, zmm2 v, zmm3 temp; zmm4-7 broadcast scale, wd, mu, lr;
/// k1 tail mask. Per vector: `t = scale*g`, `t += wd*p`, `v = v*mu + t`, `p -= lr*v`.
///
/// # Safety
/// AVX-512 present; all pointers valid for `len` floats.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn sgd_momentum(
    p: *mut f32,
    g: *const f32,
    v: *mut f32,
    len: usize,
    coef: [f32; 4], // [scale, weight_decay, momentum, lr]
) {
    stream_asm!(
        len: len,
        consts: [c = in(reg) coef.as_ptr(),],
        pointers: [p = inout(reg) p => _, g = inout(reg) g => _, v = inout(reg) v => _,],
        setup: [
            "vbroadcastss zmm4, dword ptr [{c}]",
            "vbroadcastss zmm5, dword ptr [{c} + 4]",
            "vbroadcastss zmm6, dword ptr [{c} + 8]",
            "vbroadcastss zmm7, dword ptr [{c} + 12]",
        ],
        step: [
            "vmovups zmm0, [{p}]",
            "vmulps zmm3, zmm4, [{g}]",
            "vfmadd231ps zmm3, zmm5, zmm0",
            "vmovups zmm2, [{v}]",
            "vfmadd213ps zmm2, zmm6, zmm3",
            "vmovups [{v}], zmm2",
            "vfnmadd231ps zmm0, zmm7, zmm2",
            "vmovups [{p}], zmm0",
            "add {p}, 64",
            "add {g}, 64",
            "add {v}, 64",
        ],
        tail: [
            "kortestw k1, k1",
            "jz 4f",
            "vmovups zmm0 {{k1}}{{z}}, [{p}]",
            "vmovups zmm1 {{k1}}{{z}}, [{g}]",
            "vmulps zmm3, zmm4, zmm1",
            "vfmadd231ps zmm3, zmm5, zmm0",
            "vmovups zmm2 {{k1}}{{z}}, [{v}]",
            "vfmadd213ps zmm2, zmm6, zmm3",
            "vmovups [{v}] {{k1}}, zmm2",
            "vfnmadd231ps zmm0, zmm7, zmm2",
            "vmovups [{p}] {{k1}}, zmm0",
            "4:",
        ],
    );
}

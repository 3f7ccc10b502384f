//! ReLU backward (the original's `relu_backward` in `activation_functions.asm`, vectorised).

use crate::kernels::stream_asm;

/// `dy[i] = 0` where `y[i] <= 0`, for `i < len`: compare 16 stored outputs against zero
/// (`vcmpps` GT into k2), keep dy under that mask, zero the rest.
///
/// Registers: zmm0 y, zmm1 dy, zmm2 zero; k1 tail mask, k2 "y > 0".
///
/// # Safety
/// AVX-512 present; both pointers valid for `len` floats.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512vl"))]
pub unsafe fn relu_backward(y: *const f32, dy: *mut f32, len: usize) {
    stream_asm!(
        len: len,
        consts: [],
        pointers: [y = inout(reg) y => _, d = inout(reg) dy => _,],
        setup: ["vpxord zmm2, zmm2, zmm2"],
        step: [
            "vcmpps k2, zmm2, [{y}], 0x11", // 0 < y  (LT_OQ with operands swapped)
            "vmovups zmm1 {{k2}}{{z}}, [{d}]",
            "vmovups [{d}], zmm1",
            "add {y}, 64",
            "add {d}, 64",
        ],
        tail: [
            "vmovups zmm0 {{k1}}{{z}}, [{y}]",
            "vcmpps k2 {{k1}}, zmm0, zmm2, 0x1e", // y > 0 (GT_OQ), only tail lanes
            "vmovups zmm1 {{k2}}{{z}}, [{d}]",
            "vmovups [{d}] {{k1}}, zmm1",
        ],
    );
}

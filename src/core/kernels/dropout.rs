//! Dropout: multiply by a bit mask and the keep-scale (used in forward and backward alike).

use crate::kernels::asm_zmm;

/// `x[i] = bit(i) ? x[i] * scale : 0` for `i < 16 * groups`, where bit `i` is bit `i % 16` of
/// the little-endian u16 at `bits + 2 * (i / 16)`.
///
/// Registers: zmm0 the scale broadcast, zmm1 sixteen x values; k1 the group's 16 mask bits, loaded
/// straight from memory (`kmovw`), so dropped lanes are zeroed by the `{z}` of the multiply.
///
/// # Safety
/// AVX-512 present; `x` valid for `16 * groups` floats, `bits` for `2 * groups` bytes.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn apply_mask(x: *mut f32, bits: *const u8, groups: usize, scale: f32) {
    if groups == 0 {
        return;
    }
    asm_zmm!(
        "vpbroadcastd zmm0, {s:e}",
        "2:",
        "kmovw k1, word ptr [{b}]",
        "vmulps zmm1 {{k1}}{{z}}, zmm0, [{x}]",
        "vmovups [{x}], zmm1",
        "add {x}, 64",
        "add {b}, 2",
        "dec {n}",
        "jnz 2b",
        ;
        s = in(reg) scale.to_bits(),
        x = inout(reg) x => _,
        b = inout(reg) bits => _,
        n = inout(reg) groups => _,
    );
}

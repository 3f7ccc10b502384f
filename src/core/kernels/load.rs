//! Image loading (the original's `loader.asm` `load_sample`): u8 -> f32 `* (1/255)`, one image
//! row per call, into the interior of a padded buffer; optionally mirrored left-right.

use crate::kernels::{asm_zmm, stream_asm};
use std::mem::offset_of;

/// Constants of the kernels: the three `vpermi2d` index tables of the flip and 1/255.
///
/// A flip block is 16 pixels = 48 bytes. Output float q (pixel q/3, channel q%3) comes from
/// source byte `s(q) = 3*(15 - q/3) + q%3`. The 48 source bytes are widened to dwords in five
/// overlapping ZMMs: A = bytes 0-15, B = 16-31, C = 32-47, M1 = 8-23, M2 = 24-39; output vector
/// 0 (q 0-15, s 30..47) picks from (B, C), vector 1 (q 16-31, s 15..32) from (M1, M2),
/// vector 2 (q 32-47, s 0..17) from (A, B): each one two-table permute.
#[repr(C, align(64))]
pub struct LoadConsts {
    idx0: [i32; 16],
    idx1: [i32; 16],
    idx2: [i32; 16],
    scale: f32,
}

const fn src_of(q: usize) -> i32 {
    (3 * (15 - q / 3) + q % 3) as i32
}

const fn table(first_q: usize, base: i32) -> [i32; 16] {
    let mut t = [0i32; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = src_of(first_q + i) - base;
        i += 1;
    }
    t
}

static K: LoadConsts = LoadConsts {
    idx0: table(0, 16),
    idx1: table(16, 8),
    idx2: table(32, 0),
    scale: 1.0 / 255.0,
};

/// One row, no flip: `dst[i] = src[i] * (1/255)` for `i < len` bytes; 16 bytes per step
/// (`vpmovzxbd` zero-extends to dwords, `vcvtdq2ps`, `vmulps`), the tail via a masked byte
/// load (`vmovdqu8 {k1}{z}`) and a masked store.
///
/// Registers: zmm0 values, xmm1 tail bytes, zmm31 broadcast 1/255; k1 tail mask.
///
/// # Safety
/// AVX-512 present; `src` valid for `len` bytes, `dst` for `len` floats.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl")
)]
pub unsafe fn row(src: *const u8, dst: *mut f32, len: usize) {
    stream_asm!(
        len: len,
        consts: [
            k = in(reg) &K as *const LoadConsts,
            o_sc = const offset_of!(LoadConsts, scale),
        ],
        pointers: [s = inout(reg) src => _, d = inout(reg) dst => _,],
        setup: ["vbroadcastss zmm31, dword ptr [{k} + {o_sc}]"],
        step: [
            "vpmovzxbd zmm0, xmmword ptr [{s}]",
            "vcvtdq2ps zmm0, zmm0",
            "vmulps zmm0, zmm0, zmm31",
            "vmovups [{d}], zmm0",
            "add {s}, 16",
            "add {d}, 64",
        ],
        tail: [
            "vmovdqu8 xmm1 {{k1}}{{z}}, xmmword ptr [{s}]",
            "vpmovzxbd zmm0, xmm1",
            "vcvtdq2ps zmm0, zmm0",
            "vmulps zmm0, zmm0, zmm31",
            "vmovups [{d}] {{k1}}, zmm0",
        ],
    );
}

/// One row of `w` pixels, mirrored: `dst[3p + ch] = src[3(w-1-p) + ch] * (1/255)`.
///
/// Full blocks of 16 output pixels walk the source backwards 48 bytes at a time. The last
/// `rem = w % 16` output pixels come from source bytes `0 .. 3*rem`: a masked byte load copies
/// them to the end of the 48-byte scratch `tmp` (at `48 - 3*rem`), and the same block code runs
/// once more on `tmp` with the three stores masked to the first `3*rem` floats.
///
/// Registers: zmm0-4 the widened source (A, B, C, M1, M2), zmm5-7 the three output vectors,
/// zmm28-30 permute tables, zmm31 1/255; k1-k3 store masks, k4 tail byte mask.
///
/// # Safety
/// AVX-512 present; `src` valid for `3w` bytes, `dst` for `3w` floats, `tmp` for 64 bytes.
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx512f,avx512bw,avx512vl")
)]
pub unsafe fn row_flip(src: *const u8, dst: *mut f32, w: usize, tmp: *mut u8) {
    let nb = w / 16;
    let rem = w % 16;
    let tail_mask: u64 = (1u64 << (3 * rem)) - 1;
    // first full block: source pixels w-16 .. w-1
    let first = src.wrapping_add((3 * rem + 48 * nb).wrapping_sub(48));
    asm_zmm!(
        "vmovdqa32 zmm28, [{k} + {o_i0}]",
        "vmovdqa32 zmm29, [{k} + {o_i1}]",
        "vmovdqa32 zmm30, [{k} + {o_i2}]",
        "vbroadcastss zmm31, dword ptr [{k} + {o_sc}]",
        "kxnorw k1, k1, k1",
        "kxnorw k2, k2, k2",
        "kxnorw k3, k3, k3",
        "test {n}, {n}",
        "jz 3f",
        "2:",
        "vpmovzxbd zmm0, xmmword ptr [{s}]",      // A
        "vpmovzxbd zmm1, xmmword ptr [{s} + 16]", // B
        "vpmovzxbd zmm2, xmmword ptr [{s} + 32]", // C
        "vpmovzxbd zmm3, xmmword ptr [{s} + 8]",  // M1
        "vpmovzxbd zmm4, xmmword ptr [{s} + 24]", // M2
        "vmovdqa32 zmm5, zmm28",
        "vpermi2d zmm5, zmm1, zmm2",
        "vmovdqa32 zmm6, zmm29",
        "vpermi2d zmm6, zmm3, zmm4",
        "vmovdqa32 zmm7, zmm30",
        "vpermi2d zmm7, zmm0, zmm1",
        "vcvtdq2ps zmm5, zmm5",
        "vcvtdq2ps zmm6, zmm6",
        "vcvtdq2ps zmm7, zmm7",
        "vmulps zmm5, zmm5, zmm31",
        "vmulps zmm6, zmm6, zmm31",
        "vmulps zmm7, zmm7, zmm31",
        "vmovups [{d}] {{k1}}, zmm5",
        "vmovups [{d} + 64] {{k2}}, zmm6",
        "vmovups [{d} + 128] {{k3}}, zmm7",
        "sub {s}, 48",
        "add {d}, 192",
        "dec {n}",
        "jnz 2b",
        "3:",
        // tail (once): stage the first 3*rem source bytes at the end of tmp, run one block
        "kmovq k4, {lm}",
        "kortestq k4, k4",
        "jz 4f",
        "xor {lm:e}, {lm:e}",
        "vmovdqu8 zmm0 {{k4}}{{z}}, zmmword ptr [{row}]",
        "vmovdqu8 zmmword ptr [{tmp} + {off}] {{k4}}, zmm0",
        "mov {s}, {tmp}",
        "kmovw k1, k4",
        "kshiftrq k2, k4, 16",
        "kshiftrq k3, k4, 32",
        "mov {n:e}, 1",
        "jmp 2b",
        "4:",
        ;
        k = in(reg) &K as *const LoadConsts,
        o_i0 = const offset_of!(LoadConsts, idx0),
        o_i1 = const offset_of!(LoadConsts, idx1),
        o_i2 = const offset_of!(LoadConsts, idx2),
        o_sc = const offset_of!(LoadConsts, scale),
        n = inout(reg) nb => _,
        s = inout(reg) first => _,
        d = inout(reg) dst => _,
        lm = inout(reg) tail_mask => _,
        row = in(reg) src,
        tmp = in(reg) tmp,
        off = in(reg) 48 - 3 * rem,
    );
}

//! `maxpool.asm`: 2x2 stride-2 max-pool over an HWC tensor, 16 channels at a time, with the
//! argmax kept as four 16-bit lane masks per window.

use super::{call_routine, routine};

/// The walk's set-up, the same lines at the start of both routines (maxpool.asm:9-20 and
/// 89-100): `r8` windows left in the row and `r9` rows of windows left (`rax` keeps the count of
/// a row), `r10`, `r11` and `r12` the byte offsets of a window's top-right, bottom-left and
/// bottom-right pixels from its top-left one, `r13` the channels left at this window.
macro_rules! window_walk_setup {
    () => {
        concat!(
            "mov r8, rdi\n",
            "shr r8, 1\n",
            "mov r9, r8\n",
            "mov rax, r8\n",
            "imul r10, rcx, 4\n",
            "mov r11, r10\n",
            "imul r11, rdi\n",
            "mov r12, r10\n",
            "add r12, r11\n",
            "mov r13, rcx",
        )
    };
}

/// The walk's step, the same lines at the end of both routines (maxpool.asm:60-76 and 125-141):
/// the next 16 channels; after the last, the next window of the row (skipping the window's
/// right pixel); after the last, the next row of windows (skipping the windows' bottom row). Each
/// step jumps back to the routine's `2:` (`.loop`).
macro_rules! window_walk_next {
    () => {
        concat!(
            "add rsi, 64\n",
            "add rbx, 8\n",
            "add rdx, 64\n",
            "sub r13, 16\n",
            "jnz 2b\n",
            "mov r13, rcx\n",
            "add rdx, r10\n",
            "dec r8\n",
            "jnz 2b\n",
            "mov r8, rax\n",
            "add rdx, r11\n",
            "dec r9\n",
            "jnz 2b",
        )
    };
}

routine! {
    /// Pools `rdi x rdi x rcx` (channels a multiple of 16) into `rdi/2 x rdi/2 x rcx`.
    ///
    /// For each output pixel and group of 16 channels it loads the window's four positions
    /// (top-left, top-right, bottom-left, bottom-right), takes `vmaxps` in that order, stores the
    /// maximum, and stores four masks `m0..m3` computed with `vcmpps ... 0x0E` (max > position): a
    /// *set* bit means "the gradient does not go here". `m0` is "position 0 is not the max";
    /// `m1..m3` are widened so that only the first position holding the max (in window order) has a
    /// clear bit.
    ///
    /// Registers (as the original): `rdx` input, `rsi` output, `rdi` input size, `rcx` channels,
    /// `rbx` masks (four `u16` per window and 16 channels); uses `r8-r13`, `rax`, `zmm0-3`,
    /// `zmm16-19`, `k0-k6`.
    mirrors "maxpool.asm" lines 8-78;
    safety:
    /// AVX-512 F and BW. `rdi` even and at least 2, `rcx` a nonzero multiple of 16; `rdx` readable
    /// for `rdi^2 * rcx` floats; `rsi` writable for `rdi^2 * rcx / 4` floats and `rbx` for
    /// [`mask_len`] `u16`s. It overwrites `rbx`, which Rust reserves: save it around the call
    /// (`call_routine!` does).
    fn maxpool_routine {
        // maxpool.asm:9-20 (the same lines in maxpool_backward, 89-100)
        window_walk_setup!(),
        "2:", // .loop (maxpool.asm:21)
        "vmovdqu32 zmm0, [rdx]",
        "vmovdqu32 zmm1, [rdx + r10]",
        "vmovdqu32 zmm2, [rdx + r11]",
        "vmovdqu32 zmm3, [rdx + r12]",
        "vmovdqa32 zmm16, zmm0",
        "vmovdqa32 zmm17, zmm1",
        "vmovdqa32 zmm18, zmm2",
        "vmovdqa32 zmm19, zmm3",
        "vmaxps zmm0, zmm0, zmm1",
        "vmaxps zmm0, zmm0, zmm2",
        "vmaxps zmm0, zmm0, zmm3",
        "vmovdqu32 [rsi], zmm0",
        "vcmpps k0, zmm0, zmm16, 0x0E",
        "vcmpps k1, zmm0, zmm17, 0x0E",
        "vcmpps k2, zmm0, zmm18, 0x0E",
        "vcmpps k3, zmm0, zmm19, 0x0E",
        "kandw k4, k0, k1",
        "kandw k5, k2, k4",
        "knotw k6, k0",
        "korw k1, k1, k6",
        "knotw k6, k4",
        "korw k2, k2, k6",
        "knotw k6, k5",
        "korw k3, k3, k6",
        "kmovw [rbx], k0",
        "kmovw [rbx + 2], k1",
        "kmovw [rbx + 4], k2",
        "kmovw [rbx + 6], k3",
        // maxpool.asm:60-76 (the same lines in maxpool_backward, 125-141)
        window_walk_next!(),
        "ret",
    }
}

routine! {
    /// The gradient of [`maxpool_routine`]: each output gradient goes to the one window position
    /// whose mask bit is clear, zero to the three others (all four positions are written).
    ///
    /// Registers (as the original): `rdx` input gradient, `rsi` output gradient, `rdi` input size,
    /// `rcx` channels, `rbx` masks; uses `r8-r13`, `rax`, `zmm0-4`, `k1-k4`.
    mirrors "maxpool.asm" lines 88-143;
    safety:
    /// AVX-512 F and BW. Shapes as [`maxpool_routine`]; `rdx` writable for `rdi^2 * rcx` floats;
    /// `rsi` readable for `rdi^2 * rcx / 4` floats and `rbx` for [`mask_len`] `u16`s. It overwrites
    /// `rbx`, which Rust reserves: save it around the call (`call_routine!` does).
    fn maxpool_backward_routine {
        // maxpool.asm:89-100 (the same lines in maxpool, 9-20)
        window_walk_setup!(),
        "2:", // .loop (maxpool.asm:101)
        "kmovw k1, [rbx]",
        "kmovw k2, [rbx + 2]",
        "kmovw k3, [rbx + 4]",
        "kmovw k4, [rbx + 6]",
        "knotw k1, k1",
        "knotw k2, k2",
        "knotw k3, k3",
        "knotw k4, k4",
        "vmovdqu32 zmm0, [rsi]",
        "vmovaps zmm1 {{k1}}{{z}}, zmm0",
        "vmovaps zmm2 {{k2}}{{z}}, zmm0",
        "vmovaps zmm3 {{k3}}{{z}}, zmm0",
        "vmovaps zmm4 {{k4}}{{z}}, zmm0",
        "vmovdqu32 [rdx], zmm1",
        "vmovdqu32 [rdx + r10], zmm2",
        "vmovdqu32 [rdx + r11], zmm3",
        "vmovdqu32 [rdx + r12], zmm4",
        // maxpool.asm:125-141 (the same lines in maxpool, 60-76)
        window_walk_next!(),
        "ret",
    }
}

/// `u16` masks [`maxpool`] writes for a `size x size x channels` input: four per output pixel and
/// group of 16 channels.
pub fn mask_len(size: usize, channels: usize) -> usize {
    (size / 2) * (size / 2) * (channels / 16) * 4
}

fn check(size: usize, channels: usize) {
    assert!(
        size >= 2 && size.is_multiple_of(2) && channels >= 16 && channels.is_multiple_of(16),
        "the original's max-pool takes an even size and a multiple of 16 channels, not {size} and {channels}"
    );
}

/// Max-pool of one sample through [`maxpool_routine`]: `input` `size x size x channels`, `out`
/// `size/2 x size/2 x channels`, `masks` [`mask_len`] `u16`s.
///
/// # Safety
/// AVX-512 F/BW.
pub unsafe fn maxpool(
    input: &[f32],
    out: &mut [f32],
    masks: &mut [u16],
    size: usize,
    channels: usize,
) {
    check(size, channels);
    assert!(input.len() >= size * size * channels);
    assert!(out.len() >= size * size * channels / 4 && masks.len() >= mask_len(size, channels));
    call_routine!(maxpool_routine, rbx = masks.as_mut_ptr();
        ;
        in("rdx") input.as_ptr(),
        in("rsi") out.as_mut_ptr(),
        in("rdi") size,
        in("rcx") channels,
        out("r12") _, out("r13") _,
    );
}

/// The gradient of [`maxpool`] through [`maxpool_backward_routine`]: `d_input` `size x size x
/// channels` (every element written), `d_out` `size/2 x size/2 x channels`.
///
/// # Safety
/// AVX-512 F/BW.
pub unsafe fn maxpool_backward(
    d_input: &mut [f32],
    d_out: &[f32],
    masks: &[u16],
    size: usize,
    channels: usize,
) {
    check(size, channels);
    assert!(d_input.len() >= size * size * channels);
    assert!(d_out.len() >= size * size * channels / 4 && masks.len() >= mask_len(size, channels));
    call_routine!(maxpool_backward_routine, rbx = masks.as_ptr();
        ;
        in("rdx") d_input.as_mut_ptr(),
        in("rsi") d_out.as_ptr(),
        in("rdi") size,
        in("rcx") channels,
        out("r12") _, out("r13") _,
    );
}

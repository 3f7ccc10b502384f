//! `loader.asm`: one image's bytes to floats in `[0, 1]`, and its label.
//!
//! The original reads its whole raw data file into a static buffer once; we read images from the
//! memory-mapped blob instead, and copy one image into a staging buffer with 64 bytes of room
//! after it, because the routine reads 64 bytes at a time (and uses 16).

use super::{call_routine, routine};

/// The constant the original scales by: the decimal `0.0039215689`, i.e. `1/255` as f32.
static ONE_OVER_255: f32 = 0.003_921_568_9;

routine! {
    /// `out[i] = (float) bytes[i] * (1/255)` for `i < r10` (a multiple of 16), 16 at a time:
    /// zero-extend 16 bytes to 16 ints, convert, multiply; then copies the label byte.
    ///
    /// Registers: `rsi` the image's bytes, `rdi` its label byte, `r8` output floats, `r9` label
    /// destination, `r10` byte count; uses `rcx`, `zmm0-3`. The original finds the image and label
    /// by index in its static buffers (`rax`) and has the byte count as a constant; the loop is
    /// its.
    mirrors "loader.asm" lines 118-142;
    safety:
    /// AVX-512 F and BW. `r10` a multiple of 16; `rsi` readable for `r10 + 48` bytes (each step
    /// loads 64 bytes and uses 16), `rdi` for one byte; `r8` writable for `r10` floats, `r9` for
    /// one byte.
    fn load_sample_routine {
        "xor rcx, rcx",
        "2:", // .data_loop (loader.asm:125)
        "cmp rcx, r10",
        "jge 3f",
        "vmovdqu8 zmm0, [rsi + rcx]",
        "vpmovzxbd zmm1, xmm0",
        "vcvtdq2ps zmm2, zmm1",
        "vbroadcastss zmm3, dword ptr [rip + {one_over_255}]",
        "vmulps zmm2, zmm2, zmm3",
        "vmovups [r8 + rcx*4], zmm2",
        "add rcx, 16",
        "jmp 2b",
        "3:", // .data_done (loader.asm:138)
        "mov cl, [rdi]",
        "mov [r9], cl",
        "ret",
        one_over_255 = sym ONE_OVER_255,
    }
}

/// Converts `bytes` (HWC u8, a multiple of 16 long, with 48 readable bytes after it) into `out`
/// and copies `label_in` to `label_out`, through [`load_sample_routine`].
///
/// # Safety
/// AVX-512 F/BW.
pub unsafe fn load_sample(
    bytes: &[u8],
    count: usize,
    label_in: &u8,
    out: &mut [f32],
    label_out: &mut u8,
) {
    assert!(count.is_multiple_of(16) && bytes.len() >= count + 48 && out.len() >= count);
    call_routine!(load_sample_routine, rbx = 0usize; ;
        in("rsi") bytes.as_ptr(),
        in("rdi") label_in as *const u8,
        in("r8") out.as_mut_ptr(),
        in("r9") label_out as *mut u8,
        in("r10") count,
    );
}

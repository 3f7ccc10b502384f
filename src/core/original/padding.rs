//! `padding.asm`: the original pads a tensor *in place*: it writes the padded copy into a temp
//! buffer, then copies that back over the input; and un-pads in place by moving the interior
//! rows forward.

use super::{call_routine, routine};

/// `r11` = the blocks of 16 floats in a row of the unpadded tensor (`rsi * rdx / 16`): the lines
/// before the row copy in both routines (padding.asm:36-38 and 103-105).
macro_rules! row_block_count {
    () => {
        concat!("mov r11, rsi\n", "imul r11, rdx\n", "shr r11, 4")
    };
}

/// The row copy's loop body, the same lines in both routines (padding.asm:40-45 and 107-112):
/// one block of 16 floats from `rdi` to `r8`, both advanced; back to the routine's `3:` (its
/// `.middle_layer_loop` or `.middle_loop`) until `r11` blocks are done.
macro_rules! copy_row_blocks {
    () => {
        concat!(
            "vmovdqu32 zmm1, [rdi]\n",
            "vmovdqu32 [r8], zmm1\n",
            "add rdi, 64\n",
            "add r8, 64\n",
            "dec r11\n",
            "jnz 3b",
        )
    };
}

routine! {
    /// Writes `r10` zero floats at `r8` and advances `r8` past them: whole 16-float blocks, then
    /// the remaining `r10 % 16` under the mask `(1 << n) - 1` in `k1`. Uses `rax`, `rcx`, `zmm0`,
    /// `k1`.
    ///
    /// This is `padding.asm`'s own local `fill_zero` (a different routine from the global one in
    /// `update_weights.asm`, [`super::update_weights::fill_zero_routine`]).
    mirrors "padding.asm" lines 128-154;
    safety:
    /// AVX-512 F and BW (`kmovd`). `r8` writable for `r10` floats.
    fn padding_fill_zero_routine {
        "vpxord zmm0, zmm0, zmm0",
        "mov rax, r10",
        "shr rax, 4",
        "2:", // .full_block_loop (padding.asm:133)
        "test rax, rax",
        "jz 3f",
        "vmovdqu32 [r8], zmm0",
        "add r8, 64",
        "dec rax",
        "jmp 2b",
        "3:", // .tail (padding.asm:141)
        "and r10, 15",
        "jz 4f",
        "mov ecx, r10d",
        "mov eax, 1",
        "shl eax, cl",
        "dec eax",
        "kmovd k1, eax",
        "vmovdqu32 [r8] {{k1}}, zmm0",
        "4:", // .done (padding.asm:151)
        "shl r10, 2",
        "add r8, r10",
        "ret",
    }
}

routine! {
    /// Pads `rsi x rsi x rdx` at `rdi` to `(rsi+2)^2 x rdx` in place: builds the padded tensor in
    /// the temp buffer (a zero row; per row a zero pixel, the row's `rsi * rdx / 16` blocks of 16
    /// floats, a zero pixel; a zero row), then copies `(rsi+2)^2 * rdx / 16` whole blocks back. The
    /// blocks' remainder (12 floats for conv1's 130x130x3) is not copied back: it is border, and
    /// stays as it was (zero).
    ///
    /// Registers (as the original): `rdi` tensor, `rsi` size, `rdx` channels; the original takes
    /// its static `temp` buffer by address, ours comes in `r9`. Uses `rbx`, `r8`, `r10-r13`, `rax`,
    /// `rcx`, `zmm0-1`, `k1`.
    mirrors "padding.asm" lines 15-79;
    safety:
    /// AVX-512 F and BW. `rsi * rdx` a nonzero multiple of 16; `rdi` readable and writable for
    /// `(rsi+2)^2 * rdx` floats, and `r9` (the temp buffer, not overlapping it) writable for as
    /// many. It overwrites `rbx`, which Rust reserves: save it around the call (`call_routine!`
    /// does).
    fn add_padding_routine {
        "mov r8, r9",
        "mov r13, rdi",
        "mov rbx, rsi",
        "add rbx, 2",
        "imul rbx, rdx",
        // .loop (padding.asm:23), never a jump target: the top border row
        "mov r10, rbx",
        "call {fill_zero}",
        "mov r12, rsi",
        "2:", // .middle_layer (padding.asm:30)
        // left border pixel, the row, right border pixel
        "mov r10, rdx",
        "call {fill_zero}",
        // padding.asm:36-38 (the same lines in remove_padding, 103-105)
        row_block_count!(),
        "3:", // .middle_layer_loop (padding.asm:39)
        // padding.asm:40-45 (the same lines in remove_padding, 107-112)
        copy_row_blocks!(),
        "mov r10, rdx",
        "call {fill_zero}",
        "dec r12",
        "jnz 2b",
        // bottom border row
        "mov r10, rbx",
        "call {fill_zero}",
        // copy temp back over the tensor
        "mov r8, r9",
        "mov rdi, r13",
        "mov rbx, rsi",
        "add rbx, 2",
        "imul rbx, rbx",
        "imul rbx, rdx",
        "mov r13, rbx",
        "and r13, 15",
        "shr rbx, 4",
        "4:", // .replace_loop (padding.asm:70)
        "vmovdqu32 zmm1, [r8]",
        "vmovdqu32 [rdi], zmm1",
        "add r8, 64",
        "add rdi, 64",
        "dec rbx",
        "jnz 4b",
        "ret", // .done (padding.asm:78)
        fill_zero = sym padding_fill_zero_routine,
    }
}

routine! {
    /// Un-pads `(rsi+2)^2 x rdx` at `rdi` in place back to `rsi x rsi x rdx`: skips the top row,
    /// then per row skips a pixel, moves `rsi * rdx / 16` blocks of 16 floats forward, skips a
    /// pixel.
    ///
    /// Registers (as the original): `rdi` tensor, `rsi` size, `rdx` channels; uses `r8`, `rbx`,
    /// `r10-r12`, `zmm1`.
    mirrors "padding.asm" lines 84-123;
    safety:
    /// AVX-512 F. `rsi >= 1` and `rsi * rdx` a nonzero multiple of 16; `rdi` readable and writable
    /// for `(rsi+2)^2 * rdx` floats. It overwrites `rbx`, which Rust reserves: save it around the
    /// call (`call_routine!` does).
    fn remove_padding_routine {
        "mov r8, rdi",
        "mov rbx, rsi",
        "add rbx, 2",
        "imul rbx, rdx",
        "mov r10, rbx",
        "shl r10, 2",
        "add rdi, r10",
        "mov r12, rsi",
        "2:", // .loop (padding.asm:96)
        "mov r10, rdx",
        "shl r10, 2",
        "add rdi, r10",
        // padding.asm:103-105 (the same lines in add_padding, 36-38)
        row_block_count!(),
        "3:", // .middle_loop (padding.asm:106)
        // padding.asm:107-112 (the same lines in add_padding, 40-45)
        copy_row_blocks!(),
        "mov r10, rdx",
        "shl r10, 2",
        "add rdi, r10",
        "dec r12",
        "jnz 2b",
        "ret",
    }
}

fn check(size: usize, channels: usize) {
    assert!(
        size >= 1 && (size * channels).is_multiple_of(16),
        "the original's padding moves rows in blocks of 16 floats: size {size} x {channels} channels is not"
    );
}

/// Pads `size x size x channels` at the start of `tensor` in place (see
/// [`add_padding_routine`]), through `temp`.
///
/// Shapes: `tensor` and `temp` at least `(size+2)^2 x channels`.
///
/// # Safety
/// AVX-512 F.
pub unsafe fn add_padding(tensor: &mut [f32], size: usize, channels: usize, temp: &mut [f32]) {
    check(size, channels);
    let padded = (size + 2) * (size + 2) * channels;
    assert!(tensor.len() >= padded && temp.len() >= padded);
    call_routine!(add_padding_routine, rbx = 0usize; ;
        in("rdi") tensor.as_mut_ptr(),
        in("rsi") size,
        in("rdx") channels,
        in("r9") temp.as_mut_ptr(),
        out("r12") _, out("r13") _,
    );
}

/// Un-pads `(size+2)^2 x channels` at the start of `tensor` in place (see
/// [`remove_padding_routine`]).
///
/// # Safety
/// AVX-512 F.
pub unsafe fn remove_padding(tensor: &mut [f32], size: usize, channels: usize) {
    check(size, channels);
    assert!(tensor.len() >= (size + 2) * (size + 2) * channels);
    call_routine!(remove_padding_routine, rbx = 0usize; ;
        in("rdi") tensor.as_mut_ptr(),
        in("rsi") size,
        in("rdx") channels,
        out("r12") _,
    );
}

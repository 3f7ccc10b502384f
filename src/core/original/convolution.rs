//! `convolution.asm`: `conv2d` (forward, with bias and ReLU) and `conv2d_backward` (weight, bias
//! and input gradients), on a padded HWC input and `[filter][ky][kx][channel]` filters.
//!
//! Both walk the output pixel by pixel and, for each pixel, filter by filter. A filter's 3x3
//! window is three rows of `3 * C` contiguous floats (three pixels of `C` channels), read 16
//! floats at a time from the three input rows and the three filter rows. conv1 has `C = 3`, so a
//! row is 9 floats: one iteration under the mask `k1 = 0x1FF`; conv2 and conv3 run `3C/16`
//! iterations under the full mask. The iteration count is computed as `(12 C) >> 6` and the loop
//! is a do-while, which is why `C = 3` (count 0) still runs once.

use super::{call_routine, routine};

/// `r10` = the bytes of a padded input row (`(rax + 2) * rbx * 4`), `r12` = the bytes of a
/// filter row (`rbx * 12`, three pixels): the same lines in both routines (convolution.asm:22-25
/// and 120-123).
macro_rules! window_strides {
    () => {
        concat!(
            "lea r10, [rax + 2]\n",
            "imul r10, rbx\n",
            "imul r10, r10, 4\n",
            "imul r12, rbx, 12",
        )
    };
}

/// 16 floats (under the mask `k1`) of each of the window's three input rows into `zmm1-3` and of
/// the filter's three rows into `zmm4-6`: the same lines in both routines (convolution.asm:34-40
/// and 142-148).
macro_rules! load_window_rows {
    () => {
        concat!(
            "vmovdqu32 zmm1 {{k1}}{{z}}, [rsi]\n",
            "vmovdqu32 zmm2 {{k1}}{{z}}, [rsi + r10]\n",
            "vmovdqu32 zmm3 {{k1}}{{z}}, [rsi + r10*2]\n",
            "vmovdqu32 zmm4 {{k1}}{{z}}, [rdi]\n",
            "vmovdqu32 zmm5 {{k1}}{{z}}, [rdi + r12]\n",
            "vmovdqu32 zmm6 {{k1}}{{z}}, [rdi + r12*2]",
        )
    };
}

/// The horizontal sum of `zmm0` into the low lane of `xmm0` by the fixed tree `a[k] + a[k+8]`,
/// `+ [k+4]`, then two `haddps`: the lines the original writes in `conv2d` and in `dot_product`
/// (convolution.asm:54-59, dot_product.asm:26-31). Uses `zmm1`.
macro_rules! horizontal_sum {
    () => {
        concat!(
            "vextractf32x8 ymm1, zmm0, 1\n",
            "vaddps ymm0, ymm0, ymm1\n",
            "vextractf128 xmm1, ymm0, 1\n",
            "vaddps xmm0, xmm0, xmm1\n",
            "haddps xmm0, xmm0\n",
            "haddps xmm0, xmm0",
        )
    };
}
pub(crate) use horizontal_sum;

routine! {
    /// Forward convolution of one sample, ReLU included: for each output pixel `(i, j)` in
    /// row-major order and each filter `f`, one ZMM accumulator gathers the FMAs of the window
    /// (three rows per 16-float step), is reduced to a scalar by the fixed tree below, gets the
    /// bias added and goes through ReLU, then one float is stored to `out[i][j][f]`.
    ///
    /// Reduction tree of the accumulator `a[0..16]`: `b[k] = a[k] + a[k+8]` (8 lanes),
    /// `c[k] = b[k] + b[k+4]` (4 lanes), then two `haddps`: `(c0 + c1) + (c2 + c3)`.
    ///
    /// Registers (as the original): `rdi` filters, `rsi` padded input, `rdx` output, `rcx` filter
    /// count, `rbx` channels, `rax` output size (square), `r14` biases, `k1` the load mask. Uses
    /// `r8` (i), `r9` (j), `r10` (bytes of a padded input row), `r11` (16-float steps per filter
    /// row), `r12` (bytes of a filter row), `r13` (filter index), `r15`, `zmm0-6`.
    mirrors "convolution.asm" lines 19-102;
    safety:
    /// AVX-512 F and DQ. `rbx` is 3 (with `k1 = 0x1FF`) or a multiple of 16 (with `k1 = 0xFFFF`),
    /// `rax` and `rcx` at least 1; `rsi` readable for `(rax+2)^2 * rbx` floats, `rdi` for
    /// `rcx * 9 * rbx`, `r14` for `rcx`; `rdx` writable for `rax^2 * rcx` floats. Masked loads do
    /// not fault on masked lanes, so conv1's 9-float rows need no room after them.
    fn conv2d_routine {
        "xor r8, r8",
        "xor r9, r9",
        // convolution.asm:22-25 (the same lines in conv2d_backward, 120-123)
        window_strides!(),
        "mov r11, r12",
        "shr r11, 6",
        // a new output pixel
        "2:", // .next_i_j (convolution.asm:29)
        "xor r13, r13",
        "vxorps zmm0, zmm0, zmm0",
        // 16 floats of each of the three window rows (also the entry of the next filter)
        "3:", // .filter_loop (convolution.asm:33)
        // convolution.asm:34-40 (the same lines in conv2d_backward, 142-148)
        load_window_rows!(),
        "vfmadd231ps zmm0, zmm1, zmm4",
        "vfmadd231ps zmm0, zmm2, zmm5",
        "vfmadd231ps zmm0, zmm3, zmm6",
        "add rdi, 64",
        "add rsi, 64",
        "dec r11",
        "jg 3b",
        "mov r11, r12",
        "shr r11, 6",
        // convolution.asm:54-59 (the same lines in dot_product, dot_product.asm:26-31)
        horizontal_sum!(),
        "movss xmm1, [r14 + r13*4]",
        "addss xmm0, xmm1",
        "call {relu}",
        "movss [rdx], xmm0",
        "vxorps zmm0, zmm0, zmm0",
        "add rdx, 4",
        // next filter: its rows start 3 * r12 bytes further; the window goes back to its start
        // (both moved by r11 * 64 bytes, which is r12 rounded up to 64)
        "imul r15, r12, 3",
        "add rdi, r15",
        "lea r15, [r12 + 30]",
        "shr r15, 6",
        "shl r15, 6",
        "sub rdi, r15",
        "sub rsi, r15",
        "inc r13",
        "cmp r13, rcx",
        "jne 3b",
        // every filter done: next pixel of the row, filters back to the first
        "lea rsi, [rsi + rbx*4]",
        "imul r15, r12, 3",
        "imul r15, rcx",
        "sub rdi, r15",
        "inc r9",
        "cmp r9, rax",
        "jne 2b",
        // next row: skip the two border pixels
        "xor r9, r9",
        "lea rsi, [rsi + rbx*8]",
        "inc r8",
        "cmp r8, rax",
        "jne 2b",
        "ret", // .end_of_end (convolution.asm:101)
        relu = sym super::activation_functions::relu_routine,
    }
}

routine! {
    /// Gradients of one sample's convolution: for each output pixel `(i, j)` and filter `f`, with
    /// `g = dout[i][j][f]` broadcast to 16 lanes, each 16-float step of the window adds `x * g`
    /// into the filter's weight gradient and `w * g` into the padded input gradient (a multiply,
    /// then a separate add: not an FMA), by unmasked read-modify-write of 16 floats; then `g` is
    /// added to the filter's bias gradient. The input gradient is zeroed first (by
    /// [`super::update_weights::fill_zero_routine`], which clears whole 16-float blocks only).
    ///
    /// With `C = 3` the unmasked 16-float read-modify-writes reach 7 floats past each 9-float row
    /// (adding `0 * g`), so `d_w` and `d_x` need 16 floats of room after them.
    ///
    /// Registers (as the original): `rdi` filters, `rsi` padded input, `rdx` output gradient, `rcx`
    /// filter count, `rbx` channels, `rax` output size, `r14` weight gradient, `r8` padded input
    /// gradient, `r9` bias gradient, `k1` the load mask; `i` and `j` live on the stack. Uses
    /// `r10-r13`, `r15`, `zmm0-15`.
    mirrors "convolution.asm" lines 117-244;
    safety:
    /// AVX-512 F and DQ. Shapes and mask as [`conv2d_routine`]; besides, `r14` (`rcx * 9 * rbx`
    /// floats) and `r8` (`(rax+2)^2 * rbx` floats) readable and writable with 16 floats of room
    /// after each (the unmasked read-modify-writes run past a 9-float row), `r9` readable and
    /// writable for `rcx` floats, `rdx` readable for `rax^2 * rcx + 1` floats (the broadcast of the
    /// next gradient runs one past the last); it keeps its row and column counters on the stack.
    fn conv2d_backward_routine {
        "push 0",
        "push 0",
        // convolution.asm:120-123 (the same lines in conv2d, 22-25)
        window_strides!(),
        // clear the padded input gradient
        "push rcx",
        "push rdi",
        "lea rcx, [rax + 2]",
        "imul rcx, rcx",
        "imul rcx, rbx",
        "mov rdi, r8",
        "call {fill_zero}",
        "pop rdi",
        "pop rcx",
        "mov r11, r12",
        "shr r11, 6",
        // a new output pixel
        "2:", // .next_i_j (convolution.asm:137)
        "xor r13, r13",
        "vbroadcastss zmm0, [rdx]",
        "3:", // .filter_loop (convolution.asm:141)
        // convolution.asm:142-148 (the same lines in conv2d, 34-40)
        load_window_rows!(),
        // weight gradient += x * g
        "vmulps zmm7, zmm1, zmm0",
        "vmulps zmm8, zmm2, zmm0",
        "vmulps zmm9, zmm3, zmm0",
        "vmovups zmm13, [r14]",
        "vmovups zmm14, [r14 + r12]",
        "vmovups zmm15, [r14 + r12*2]",
        "vaddps zmm13, zmm13, zmm7",
        "vaddps zmm14, zmm14, zmm8",
        "vaddps zmm15, zmm15, zmm9",
        "vmovups [r14], zmm13",
        "vmovups [r14 + r12], zmm14",
        "vmovups [r14 + r12*2], zmm15",
        // input gradient += w * g
        "vmulps zmm10, zmm4, zmm0",
        "vmulps zmm11, zmm5, zmm0",
        "vmulps zmm12, zmm6, zmm0",
        "vmovups zmm13, [r8]",
        "vmovups zmm14, [r8 + r10]",
        "vmovups zmm15, [r8 + r10*2]",
        "vaddps zmm13, zmm13, zmm10",
        "vaddps zmm14, zmm14, zmm11",
        "vaddps zmm15, zmm15, zmm12",
        "vmovups [r8], zmm13",
        "vmovups [r8 + r10], zmm14",
        "vmovups [r8 + r10*2], zmm15",
        "add rdi, 64",
        "add r14, 64",
        "add rsi, 64",
        "add r8, 64",
        "dec r11",
        "jg 3b",
        "mov r11, r12",
        "shr r11, 6",
        // bias gradient += g
        "vmovss xmm1, [r9 + r13*4]",
        "vaddss xmm1, xmm1, xmm0",
        "vmovss [r9 + r13*4], xmm1",
        "add rdx, 4",
        "vbroadcastss zmm0, [rdx]",
        // next filter (pointers as in conv2d_routine, plus the two gradients)
        "imul r15, r12, 3",
        "add rdi, r15",
        "add r14, r15",
        "lea r15, [r12 + 30]",
        "shr r15, 6",
        "shl r15, 6",
        "sub rdi, r15",
        "sub r14, r15",
        "sub rsi, r15",
        "sub r8, r15",
        "inc r13",
        "cmp r13, rcx",
        "jne 3b",
        // every filter done: next pixel
        "lea rsi, [rsi + rbx*4]",
        "lea r8, [r8 + rbx*4]",
        "imul r15, r12, 3",
        "imul r15, rcx",
        "sub rdi, r15",
        "sub r14, r15",
        "pop r15",
        "inc r15",
        "push r15",
        "cmp r15, rax",
        "jne 2b",
        // next row
        "pop r15",
        "lea rsi, [rsi + rbx*8]",
        "lea r8, [r8 + rbx*8]",
        "pop r15", // .end_of_end (convolution.asm:241)
        "inc r15",
        "push r15",
        "push 0",
        "cmp r15, rax",
        "jne 2b",
        "pop r15",
        "pop r15",
        "ret",
        fill_zero = sym super::update_weights::fill_zero_routine,
    }
}

/// The load mask of a convolution with `channels` input channels: 9 lanes for 3 channels
/// (conv1's 9-float filter rows), all 16 otherwise.
pub fn load_mask(channels: usize) -> u16 {
    if channels == 3 {
        0x01FF
    } else {
        0xFFFF
    }
}

/// Checks the shapes the routines can walk: 3 channels, or a multiple of 16.
fn check_channels(channels: usize) {
    assert!(
        channels == 3 || channels.is_multiple_of(16),
        "the original's convolution takes 3 channels or a multiple of 16, not {channels}"
    );
}

/// Forward convolution + bias + ReLU of one sample (see [`conv2d_routine`]).
///
/// Shapes: `x_pad` `(size+2) x (size+2) x channels`, `filters` `[filter_count][3][3][channels]`,
/// `bias` `[filter_count]`, `out` `size x size x filter_count`.
///
/// # Safety
/// AVX-512 F/DQ/VL; the slices as above (checked by assertions).
pub unsafe fn conv2d(
    filters: &[f32],
    x_pad: &[f32],
    out: &mut [f32],
    filter_count: usize,
    channels: usize,
    size: usize,
    bias: &[f32],
) {
    check_channels(channels);
    assert!(x_pad.len() >= (size + 2) * (size + 2) * channels);
    assert!(filters.len() >= filter_count * 9 * channels && bias.len() >= filter_count);
    assert!(out.len() >= size * size * filter_count);
    call_routine!(conv2d_routine, rbx = channels;
        "kmovw k1, {mask:e}";
        mask = in(reg) load_mask(channels) as u32,
        in("rdi") filters.as_ptr(),
        in("rsi") x_pad.as_ptr(),
        in("rdx") out.as_mut_ptr(),
        in("rcx") filter_count,
        in("rax") size,
        in("r14") bias.as_ptr(),
        out("r12") _, out("r13") _, out("r15") _,
    );
}

/// Gradients of one sample's convolution (see [`conv2d_backward_routine`]): adds into `d_w` and
/// `d_b`, overwrites `d_x_pad`.
///
/// Shapes: `x_pad` and `d_x_pad` `(size+2)^2 x channels` (plus 16 floats of room after
/// `d_x_pad`), `filters` and `d_w` `[filter_count][3][3][channels]` (plus 16 floats after
/// `d_w`), `d_out` `size x size x filter_count` (plus one float), `d_b` `[filter_count]`.
///
/// # Safety
/// AVX-512 F/DQ/VL; the slices as above (checked by assertions).
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_backward(
    filters: &[f32],
    x_pad: &[f32],
    d_out: &[f32],
    filter_count: usize,
    channels: usize,
    size: usize,
    d_w: &mut [f32],
    d_x_pad: &mut [f32],
    d_b: &mut [f32],
) {
    check_channels(channels);
    let padded = (size + 2) * (size + 2) * channels;
    assert!(x_pad.len() >= padded && d_x_pad.len() >= padded + 16);
    assert!(filters.len() >= filter_count * 9 * channels);
    assert!(d_w.len() >= filter_count * 9 * channels + 16 && d_b.len() >= filter_count);
    assert!(d_out.len() > size * size * filter_count);
    call_routine!(conv2d_backward_routine, rbx = channels;
        "kmovw k1, {mask:e}";
        mask = in(reg) load_mask(channels) as u32,
        in("rdi") filters.as_ptr(),
        in("rsi") x_pad.as_ptr(),
        in("rdx") d_out.as_ptr(),
        in("rcx") filter_count,
        in("rax") size,
        inout("r14") d_w.as_mut_ptr() => _,
        in("r8") d_x_pad.as_mut_ptr(),
        in("r9") d_b.as_mut_ptr(),
        out("r12") _, out("r13") _, out("r15") _,
    );
}

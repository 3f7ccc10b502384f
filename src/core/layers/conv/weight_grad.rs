//! Weight and bias gradients of the 3x3 convolution (part of the original's `conv2d_backward`).
//! Layouts as in the parent module's docs.
//!
//! Where Winograd applies (conv2, conv3) the asm path runs
//! [`super::winograd::weight_grad`]; elsewhere (conv1, odd shapes) the direct path below.
//!
//! The direct asm path is a GEMM `dw_kc[ky][j][oc] = sum_pixels x_pad[y+ky][x][j] * dy[y][x][oc]`
//! (`j = kx*cin + ic`) driven tile by tile over the micro-kernels of
//! [`crate::kernels::weight_grad`]. Loop order, outermost first:
//!
//! 1. pixel blocks (`rows x cols` rectangles sized so that their output gradient, restricted to
//!    one channel slab, is about [`BLOCK_BYTES`]): it stays in L1 while every tile uses it;
//!    each row block first prefetches ([`prefetch_l2`]) the input rows only the next one reads;
//! 2. channel slabs of `NV*16` output channels (64, or a 16/32/48 tail);
//! 3. the bias gradient of the slab ([`bias_16`] per 16 channels; for conv1 it is fused into
//!    the kernel of the first tile instead), then
//! 4. kernel rows `ky` and tiles of `R` consecutive `j`: one micro-kernel call each, which
//!    overwrites its `R x NV*16` piece of `dw_kc` in the first block and adds to it after.

use crate::cpu::Avx512;

use super::WeightGrads;
use crate::config::ConvDims;
use crate::kernels::weight_grad::{
    bias_16, prefetch_l2, weight_grad_12x2, weight_grad_24x1, weight_grad_6x4, weight_grad_8x3,
    weight_grad_9x1, weight_grad_9x1_bias, weight_grad_9x2, weight_grad_9x2_bias, BiasCol, Tile,
};
use crate::reference::weight_grad as reference;

/// Target bytes of output gradient per block and channel slab: e.g. 128 pixels x 64 channels x
/// 4 bytes = 32 KiB, which stays in the 48 KiB L1 while all `9*cin/R` tiles of the slab stream
/// over it.
pub const BLOCK_BYTES: usize = 32 << 10;

/// Weight and bias gradients of one sample by the direct GEMM below, *overwritten*:
/// `dw_kc[ky][kx][ic][oc] = sum_{y,x} x_pad[y+ky][x+kx][ic] * dy[y][x][oc]`, `db[oc] = sum dy`
/// ([`super::WeightGradFn`]; no scratch). Shapes its kernels do not cover (never produced by
/// `Hyper::shapes`) fall back to the reference.
pub fn weight_grad_direct(cpu: Avx512, d: &ConvDims, g: WeightGrads) {
    let asm_shape = d.h >= 1
        && d.w >= 1
        && d.cout.is_multiple_of(16)
        && d.cout >= 16
        && (d.cin == 3 || (d.cin.is_multiple_of(16) && d.cin >= 16));
    if !asm_shape {
        // A shape the kernels do not cover (never produced by `Hyper::shapes`).
        return reference::weight_grad(d, g.x_pad, g.dy_pad, g.dw_kc, g.db);
    }
    // Pixels per block: the widest slab (64 channels, 32 for cin = 3) fills BLOCK_BYTES.
    let slab = d.cout.min(if d.cin == 3 { 32 } else { 64 });
    let block_pixels = BLOCK_BYTES / (slab * core::mem::size_of::<f32>());
    weight_grad_asm(cpu, d, g, block_pixels);
}

/// A micro-kernel and the tile it covers: `r` rows of `j` by `nv` ZMM vectors of channels.
/// `with_bias`: the variant that also sums the bias gradient (conv1), if there is one.
#[derive(Clone, Copy)]
struct Kernel {
    r: usize,
    nv: usize,
    run: unsafe fn(&Tile),
    with_bias: Option<unsafe fn(&Tile)>,
}

/// The kernel for a slab of `nv` vectors (1..=4) of output channels.
fn kernel_for(cin: usize, nv: usize) -> Kernel {
    type K = unsafe fn(&Tile);
    let (r, run, with_bias): (usize, K, Option<K>) = match (cin == 3, nv) {
        (false, 4) => (6, weight_grad_6x4, None),
        (false, 3) => (8, weight_grad_8x3, None),
        (false, 2) => (12, weight_grad_12x2, None),
        (false, 1) => (24, weight_grad_24x1, None),
        (true, 2) => (9, weight_grad_9x2, Some(weight_grad_9x2_bias)),
        (true, 1) => (9, weight_grad_9x1, Some(weight_grad_9x1_bias)),
        _ => unreachable!("no kernel for cin {cin}, {nv} vectors"),
    };
    Kernel {
        r,
        nv,
        run,
        with_bias,
    }
}

/// The channel slab starting at `oc0`: 64 channels (32 for conv1's cin = 3, whose 9-row tile
/// leaves room for only 2 vectors), or the narrower tail slab at the end.
fn slab_at(cin: usize, cout: usize, oc0: usize) -> Kernel {
    let widest = if cin == 3 { 2 } else { 4 };
    kernel_for(cin, ((cout - oc0) / 16).min(widest))
}

/// The asm path (no scratch); `block_pixels` is the pixel-block target.
fn weight_grad_asm(_cpu: Avx512, d: &ConvDims, g: WeightGrads, block_pixels: usize) {
    let ConvDims { h, w, cin, cout } = *d;
    // Every pointer the kernels form stays inside these four slices (see the loop below).
    g.check(d);
    let (x_pad, dy_pad, dw_kc, db) = (g.x_pad, g.dy_pad, g.dw_kc, g.db);
    let wp = w + 2;
    let jn = 3 * cin; // values of j per kernel row
                      // Block shape: whole rows when a row is short, else part of one row.
    let cb = w.min(block_pixels.max(1));
    let rb = (block_pixels / cb).clamp(1, h);

    let xp = x_pad.as_ptr();
    let dyp = dy_pad.as_ptr();
    let cp = dw_kc.as_mut_ptr();
    let dbp = db.as_mut_ptr();
    for y0 in (0..h).step_by(rb) {
        let rows = rb.min(h - y0);
        // Pull the padded input rows only the next row block reads (y0+rb+2 .. y0+2rb+2, all
        // columns) towards L2 while this block computes.
        let (p0, p1) = ((y0 + rb + 2).min(h + 2), (y0 + 2 * rb + 2).min(h + 2));
        // SAFETY: rows p0..p1 <= h+2 lie inside x_pad (checked above); prefetches never fault.
        unsafe { prefetch_l2(xp.add(p0 * wp * cin), ((p1 - p0) * wp * cin).div_ceil(16)) };
        for x0 in (0..w).step_by(cb) {
            let cols = cb.min(w - x0);
            let accumulate = y0 > 0 || x0 > 0;
            let mut oc0 = 0;
            while oc0 < cout {
                let k = slab_at(cin, cout, oc0);
                debug_assert!(jn % k.r == 0 && oc0 + k.nv * 16 <= cout);
                // Pixel (y0, x0) of dy, channel oc0: dy_pad[y0+1][x0+1][oc0].
                let dy_off = ((y0 + 1) * wp + x0 + 1) * cout + oc0;
                // Separate bias pass, unless the kernel of tile (ky 0, j0 0) fuses it.
                for v in 0..k.nv * usize::from(k.with_bias.is_none()) {
                    let a = BiasCol {
                        // SAFETY (pointer arithmetic): in bounds of dy_pad, checked above.
                        dy: unsafe { dyp.add(dy_off + 16 * v) },
                        db: unsafe { dbp.add(oc0 + 16 * v) },
                        rows,
                        cols,
                        dy_px: cout,
                        dy_row: wp * cout,
                        accumulate,
                    };
                    // SAFETY: the block's pixels are interior pixels of dy_pad (y0+rows <= h,
                    // x0+cols <= w), each read 16 floats from channel oc0+16v < cout; db has
                    // cout floats. AVX-512 was checked by the caller.
                    unsafe { bias_16(&a) };
                }
                for ky in 0..3 {
                    // x_pad[y0+ky][x0][0]: row ky of the window of pixel (y0, x0).
                    let x_off = ((y0 + ky) * wp + x0) * cin;
                    for j0 in (0..jn).step_by(k.r) {
                        let t = Tile {
                            x: unsafe { xp.add(x_off + j0) },
                            dy: unsafe { dyp.add(dy_off) },
                            c: unsafe { cp.add((ky * jn + j0) * cout + oc0) },
                            ldc: cout,
                            rows,
                            cols,
                            x_px: cin,
                            dy_px: cout,
                            x_row: wp * cin,
                            dy_row: wp * cout,
                            accumulate,
                            db: unsafe { dbp.add(oc0) },
                        };
                        let run = match k.with_bias {
                            Some(fused) if ky == 0 && j0 == 0 => fused,
                            _ => k.run,
                        };
                        // SAFETY: the kernel reads x_pad[y+ky][x][j0..j0+r] for pixels of the
                        // block, i.e. floats up to ((y0+rows-1+ky)*wp + x0+cols-1)*cin + 3*cin
                        // <= ((h+1)*wp + w+2)*cin = in_pad_len (x0+cols <= w, ky <= 2);
                        // dy as for the bias; C rows ky*jn+j0 .. +r (< 9*cin) x channels
                        // oc0 .. oc0+16*nv (<= cout) of dw_kc, and for the fused kernel
                        // db[oc0 .. oc0+16*nv]. AVX-512 checked by the caller.
                        unsafe { run(&t) };
                    }
                }
                oc0 += k.nv * 16;
            }
        }
    }
}

/// KC layout `[3][3][cin][cout]` to the original layout `[cout][3][3][cin]`.
pub fn unpack_weight_grad(d: &ConvDims, kc: &[f32], w: &mut [f32]) {
    let (cin, cout) = (d.cin, d.cout);
    assert!(kc.len() >= 9 * cin * cout, "kc too short");
    assert!(w.len() >= 9 * cin * cout, "w too short");
    for k in 0..9 {
        for ic in 0..cin {
            let src = &kc[(k * cin + ic) * cout..][..cout];
            for (oc, &g) in src.iter().enumerate() {
                w[(oc * 9 + k) * cin + ic] = g;
            }
        }
    }
}

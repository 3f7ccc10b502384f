//! 3x3 convolution, pad 1, stride 1, + bias + ReLU (the original's `convolution.asm`).
//!
//! Layer-level drivers: loops over tiles that call the `asm!` micro-kernels in
//! [`crate::kernels::conv`], or the scalar reference in [`crate::reference::conv`].
//! All buffers are HWC floats. Shapes (see [`ConvDims`]):
//! - padded input `x_pad`: `(h+2) x (w+2) x cin`, zero border;
//! - weights `w`: the original's layout `[cout][3][3][cin]`; bias `[cout]`;
//! - output `y`: `h x w x cout`, after ReLU;
//! - padded output gradient `dy_pad`: `(h+2) x (w+2) x cout`, zero border (the interior is the
//!   gradient with respect to the conv's pre-activation output, ReLU mask already applied);
//! - weight gradient in "KC" layout `[3][3][cin][cout]` (see [`unpack_wgrad`]).

use crate::config::ConvDims;
use crate::cpu::Path;
use crate::kernels::conv::{self, TileArgs, TileFn};
use crate::reference::conv as reference;

mod weight_grad;
pub use weight_grad::{backward_weights, unpack_wgrad};

/// Output-channel blocks of the packed layout and of the micro-kernels: `(first channel, NV)`,
/// each block `NV x 16` channels wide. Greedy: blocks of 64 while they fit, then 32, then 16.
/// `n` must be a multiple of 16.
pub fn channel_blocks(n: usize) -> Vec<(usize, usize)> {
    assert!(
        n.is_multiple_of(16),
        "{n} output channels: must be a multiple of 16"
    );
    let mut v = Vec::new();
    let mut c = 0;
    while c < n {
        let nv = match n - c {
            r if r >= 64 => 4,
            r if r >= 32 => 2,
            _ => 1,
        };
        v.push((c, nv));
        c += nv * 16;
    }
    v
}

/// Floats of a packed weight buffer (forward or backward-data packing): both hold the
/// `9*cin*cout` weights once, only reordered.
pub fn packed_len(d: &ConvDims) -> usize {
    d.weight_len()
}

/// The packed layout shared by both passes, for a convolution reading `n_in` channels and
/// writing `n_out` (a multiple of 16). For each output-channel block `(o0, NV)` of
/// [`channel_blocks`], starting at float `o0 * 9 * n_in`: `3 * 3*n_in` steps (`ky`, then
/// `j = kx*n_in + i`), each step `NV*16` consecutive floats = the weights of that block's output
/// channels for input element `(ky, kx, i)`. `f(o, ky, kx, i)` gives a weight.
fn pack(n_in: usize, n_out: usize, f: impl Fn(usize, usize, usize, usize) -> f32, out: &mut [f32]) {
    assert!(out.len() >= 9 * n_in * n_out, "packed buffer too short");
    for (o0, nv) in channel_blocks(n_out) {
        let nb = nv * 16;
        let block = &mut out[o0 * 9 * n_in..(o0 + nb) * 9 * n_in];
        for ky in 0..3 {
            for kx in 0..3 {
                for i in 0..n_in {
                    let step = (ky * 3 + kx) * n_in + i;
                    for c in 0..nb {
                        block[step * nb + c] = f(o0 + c, ky, kx, i);
                    }
                }
            }
        }
    }
}

/// Repacks original-layout weights `w` into the forward kernel's layout (see [`pack`]: output
/// channels of a block innermost, so one step is `NV` full ZMM loads). Called once per batch
/// after the update (cheap), never inside a sample loop.
pub fn pack_forward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let cin = d.cin;
    assert!(w.len() >= d.weight_len(), "weights too short");
    pack(
        cin,
        d.cout,
        |oc, ky, kx, ic| w[((oc * 3 + ky) * 3 + kx) * cin + ic],
        out,
    );
}

/// Repacks original-layout weights into the backward-data kernel's layout (flipped 3x3,
/// in/out channels swapped): the forward layout of the weights `wb[ic][ky][kx][oc] =
/// w[oc][2-ky][2-kx][ic]`, so that the input gradient is a forward-style convolution of `dy_pad`
/// (`cout` channels in) producing `cin` channels. Needs `cin % 16 == 0`.
pub fn pack_backward(d: &ConvDims, w: &[f32], out: &mut [f32]) {
    let cin = d.cin;
    assert!(
        cin.is_multiple_of(16),
        "backward_data needs cin % 16 == 0 (got {cin})"
    );
    assert!(w.len() >= d.weight_len(), "weights too short");
    pack(
        d.cout,
        cin,
        |ic, ky, kx, oc| w[((oc * 3 + (2 - ky)) * 3 + (2 - kx)) * cin + ic],
        out,
    );
}

/// How one output row of width `w` is covered by tiles: `(first pixel, kernel)` pairs.
/// Full tiles of the widest kernel; the rest by the exact-width kernel if there is one, else by
/// the narrowest kernel at least as wide, placed to end at the row's end (it overlaps the previous
/// tile and recomputes identical values), else (narrow rows) greedily by narrower kernels.
fn row_plan(w: usize, tiles: &[(usize, TileFn)]) -> Vec<(usize, TileFn)> {
    let (pmax, fmax) = tiles[0];
    let mut plan = Vec::new();
    let mut x = 0;
    while w - x >= pmax {
        plan.push((x, fmax));
        x += pmax;
    }
    let r = w - x;
    if r == 0 {
        return plan;
    }
    if let Some(&(_, f)) = tiles.iter().find(|t| t.0 == r) {
        plan.push((x, f));
        return plan;
    }
    if let Some(&(p, f)) = tiles.iter().rev().find(|t| t.0 > r && t.0 <= w) {
        plan.push((w - p, f));
        return plan;
    }
    while x < w {
        let &(p, f) = tiles
            .iter()
            .find(|t| t.0 <= w - x)
            .expect("a 1-pixel kernel exists");
        plan.push((x, f));
        x += p;
    }
    plan
}

/// The tiles of one output-channel block: first channel, and the row plan of its kernels.
type BlockPlan = (usize, Vec<(usize, TileFn)>);

/// Runs the micro-kernels over a whole layer as the kernels see it: `k.cin` channels read,
/// `k.cout` written (for backward-data: the layer's `cout` and `cin`). `inp` is
/// `(h+2) x (w+2) x k.cin` (zero border), `out` is `h x w x k.cout`, `wpack` in the [`pack`]
/// layout, `bias` (forward) or `None` (backward-data: no bias, no ReLU).
fn run_tiles(kd: &ConvDims, inp: &[f32], wpack: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let (h, w, n_in, n_out) = (kd.h, kd.w, kd.cin, kd.cout);
    assert!(
        inp.len() >= (h + 2) * (w + 2) * n_in,
        "padded input too short"
    );
    assert!(wpack.len() >= 9 * n_in * n_out, "packed weights too short");
    assert!(out.len() >= h * w * n_out, "output too short");
    if let Some(b) = bias {
        assert!(b.len() >= n_out, "bias too short");
    }
    crate::cpu::assert_asm_ok();
    let blocks: Vec<BlockPlan> = channel_blocks(n_out)
        .into_iter()
        .map(|(o0, nv)| (o0, row_plan(w, conv::tiles(nv))))
        .collect();
    let k = 3 * n_in;
    let s = n_in * 4;
    let row_skip = (((w + 2) * n_in - k) * 4) as isize;
    let (ip, wpp, op) = (inp.as_ptr(), wpack.as_ptr(), out.as_mut_ptr());
    for y in 0..h {
        for (o0, plan) in &blocks {
            for &(x0, f) in plan {
                // SAFETY: the asserts above bound every address of the tile: input pixels
                // (y+ky)*(w+2) + x0 + p + kx <= (h+2)*(w+2) - 1, output pixels y*w + x0 + p < h*w,
                // weight block o0*9*n_in + 9*n_in*NV*16 <= 9*n_in*n_out; AVX-512 is checked
                // by the caller (Path::Asm).
                unsafe {
                    let args = TileArgs {
                        k,
                        row_skip,
                        out: op.add((y * w + x0) * n_out + o0),
                        out_stride: n_out * 4,
                        bias: bias.map_or(std::ptr::null(), |b| b.as_ptr().add(*o0)),
                    };
                    f(
                        ip.add((y * (w + 2) + x0) * n_in),
                        s,
                        wpp.add(o0 * 9 * n_in),
                        &args,
                    );
                }
            }
        }
    }
}

/// `y = relu(conv(x_pad, w) + bias)`. `w` is the original layout (used by the reference path),
/// `wpack` its [`pack_forward`] form (used by the asm path).
pub fn forward(
    path: Path,
    d: &ConvDims,
    x_pad: &[f32],
    w: &[f32],
    wpack: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    match path {
        Path::Reference => reference::forward(d, x_pad, w, bias, y),
        Path::Asm => run_tiles(d, x_pad, wpack, Some(bias), y),
    }
}

/// Input gradient `dx` (`h x w x cin`, unpadded) from `dy_pad`: a full convolution with the
/// flipped, transposed weights. `wpack_bwd` is the [`pack_backward`] form of `w`.
/// Needs `cin % 16 == 0` (conv1's input gradient, `cin = 3`, is never needed).
pub fn backward_data(
    path: Path,
    d: &ConvDims,
    dy_pad: &[f32],
    w: &[f32],
    wpack_bwd: &[f32],
    dx: &mut [f32],
) {
    assert!(
        d.cin.is_multiple_of(16),
        "backward_data needs cin % 16 == 0 (got {})",
        d.cin
    );
    match path {
        Path::Reference => reference::backward_data(d, dy_pad, w, dx),
        Path::Asm => {
            let kd = ConvDims {
                cin: d.cout,
                cout: d.cin,
                ..*d
            };
            run_tiles(&kd, dy_pad, wpack_bwd, None, dx)
        }
    }
}

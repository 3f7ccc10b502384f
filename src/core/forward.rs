//! The forward pass (the original's `forward.asm`): for each sample, load, then conv + ReLU +
//! pool three times; then fc1 (+ReLU) and fc2 over the whole batch at once.
//!
//! Shapes for the default hyperparameters (S = 128):
//! image u8 128x128x3 -> `x_pad[0]` 130x130x3 -> conv1 128x128x32 -> pool1 -> `x_pad[1]`
//! 66x66x32 -> conv2 64x64x64 -> pool2 -> `x_pad[2]` 34x34x64 -> conv3 32x32x128 -> pool3 ->
//! fc_in row 16x16x128 = 32768 -> fc1 128 -> fc2 1 -> sigmoid. Checked:
//!
//! ```
//! let s = catdog_core::config::Hyper::default().shapes().unwrap();
//! let hwc = |d: &catdog_core::config::ConvDims| (d.h, d.w, d.cin, d.cout);
//! assert_eq!(hwc(&s.conv[0]), (128, 128, 3, 32)); // x_pad[0] is (128+2) x (128+2) x 3
//! assert_eq!(hwc(&s.conv[1]), (64, 64, 32, 64)); // x_pad[1] is 66 x 66 x 32
//! assert_eq!(hwc(&s.conv[2]), (32, 32, 64, 128)); // x_pad[2] is 34 x 34 x 64
//! assert_eq!((s.flat, s.fc1), (16 * 16 * 128, 128));
//! assert_eq!(s.flat, 32768);
//! // conv outputs: 2 MiB, 1 MiB, 0.5 MiB (see BAND_MIN_BYTES)
//! let mib = |d: &catdog_core::config::ConvDims| d.out_len() as f64 * 4.0 / (1 << 20) as f64;
//! assert_eq!([mib(&s.conv[0]), mib(&s.conv[1]), mib(&s.conv[2])], [2.0, 1.0, 0.5]);
//! ```

use crate::convolution::{self, ConvWeights};
use crate::cpu::Path;
use crate::dense;
use crate::loader;
use crate::loss;
use crate::maxpool::{self, OutPlace};
use crate::model::Ctx;
use crate::profile::{time, Section};

/// Conv output rows per band of the fused conv + pool forward (even: whole pooling windows).
const BAND: usize = 2;

/// Layers whose conv output is at least this large run conv + pool in bands (conv1 and conv2 of
/// the default network, 2 and 1 MiB). conv3 (0.5 MiB, 4 output-channel blocks whose weights
/// would be re-streamed for every band) runs whole, then pools.
const BAND_MIN_BYTES: usize = 1 << 20;

/// The conv blocks of one sample: `image` into batch slot `slot`, using thread `t`'s scratch.
/// Writes the slot's padded conv inputs, argmax codes and its row of `fc_in`.
pub fn conv_blocks(c: &Ctx, slot: usize, t: usize, image: &[u8], flip: bool) {
    let sample = &c.samples[slot];
    let thread = &c.threads[t];
    let s = c.shapes;
    // SAFETY (all unsafe blocks here): slot views belong to this slot only and thread views to
    // this thread only; the parameter and packed views are read-only during this phase.
    unsafe {
        let d0 = s.conv[0];
        time(Section::Load, || {
            loader::load_image(
                c.path,
                d0.h,
                d0.w,
                image,
                c.acts.get_mut(sample.x_pad[0]),
                flip,
            )
        });
        for l in 0..3 {
            let d = s.conv[l];
            let y = c.acts.get_mut(thread.y);
            let y = &mut y[..d.out_len()];
            let p = d.pool();
            let (out, place) = if l < 2 {
                (c.acts.get_mut(sample.x_pad[l + 1]), OutPlace::padded(&p))
            } else {
                (
                    c.acts.get_mut(c.batch.fc_in.slot(slot, s.flat)),
                    OutPlace::flat(&p),
                )
            };
            let argmax = c.masks.get_mut(sample.argmax[l]);
            if c.path == Path::Asm && d.out_len() * 4 >= BAND_MIN_BYTES {
                // Conv and pool band by band (BAND conv rows, BAND/2 pooled rows) through the
                // first rows of `y`: a band of conv output (2 rows: 32 KiB for conv1 and conv2
                // of the default network) is pooled while it is still in L1, instead of the
                // whole 1-2 MiB output being written out and read back.
                let (x_pad, wpack, bias) = (
                    c.acts.get(sample.x_pad[l]),
                    c.packed.get(c.packed_fwd[l]),
                    c.params.get(c.param_views.conv_b[l]),
                );
                let y_band = &mut y[..BAND.min(d.h) * d.w * d.cout];
                let scratch = c.acts.get_mut(thread.wino);
                for y0 in (0..d.h).step_by(BAND) {
                    let y1 = (y0 + BAND).min(d.h);
                    time(Section::ConvForward(l), || {
                        convolution::forward_rows_asm(
                            &d,
                            x_pad,
                            wpack,
                            bias,
                            y_band,
                            y0..y1,
                            scratch,
                        )
                    });
                    time(Section::PoolForward(l), || {
                        maxpool::forward_rows_asm(&p, y_band, out, place, argmax, y0 / 2..y1 / 2)
                    });
                }
                continue;
            }
            time(Section::ConvForward(l), || {
                convolution::forward(
                    c.path,
                    &d,
                    c.acts.get(sample.x_pad[l]),
                    ConvWeights {
                        original: c.params.get(c.param_views.conv_w[l]),
                        packed: c.packed.get(c.packed_fwd[l]),
                    },
                    c.params.get(c.param_views.conv_b[l]),
                    y,
                    c.acts.get_mut(thread.wino),
                )
            });
            time(Section::PoolForward(l), || {
                maxpool::forward(c.path, &p, y, out, place, argmax)
            });
        }
    }
}

/// fc1 over `rows` samples for thread `t`'s share of the neurons: `h1 = relu(fc_in W1^T + b1)`.
pub fn fc1(c: &Ctx, rows: usize, cols: std::ops::Range<usize>) {
    if cols.is_empty() {
        return;
    }
    let s = c.shapes;
    // SAFETY: reads fc_in and parameters (not written in this phase); each thread writes only
    // its own columns of h1.
    unsafe {
        let h1 = c.acts.get_mut(c.batch.h1);
        dense::forward(
            c.path,
            rows,
            s.flat,
            s.fc1,
            &c.acts.get(c.batch.fc_in)[..rows * s.flat],
            c.params.get(c.param_views.fc1_w),
            c.params.get(c.param_views.fc1_b),
            true,
            h1.as_mut_ptr(),
            cols,
        );
    }
}

/// fc2 and the sigmoid over `rows` samples (one thread): fills `logits` and `probs`.
pub fn head(c: &Ctx, rows: usize) {
    let s = c.shapes;
    // SAFETY: single thread in this phase.
    unsafe {
        let logits = c.acts.get_mut(c.batch.logits);
        dense::forward(
            c.path,
            rows,
            s.fc1,
            1,
            &c.acts.get(c.batch.h1)[..rows * s.fc1],
            c.params.get(c.param_views.fc2_w),
            c.params.get(c.param_views.fc2_b),
            false,
            logits.as_mut_ptr(),
            0..1,
        );
        loss::sigmoid(
            c.path,
            &logits[..rows],
            &mut c.acts.get_mut(c.batch.probs)[..rows],
        );
    }
}

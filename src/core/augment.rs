//! The improved recipe's geometric and photometric augmentation of a training sample: a random
//! resized crop of the stored image, resampled bilinearly back to the network's image size,
//! mirrored left-right where [`crate::step::flip_bit`] says so, with brightness, contrast and
//! saturation jitter, all in one pass into a u8 image that the unchanged input layer then loads
//! (so every kernel set gets the same augmented bytes). Not in the original.
//!
//! Every random draw comes from a hash of (seed, epoch, sample index), like the flips: the same
//! sample gets the same warp in the same epoch whatever the thread, slot or resume point, and
//! training and inference never share it (evaluation and prediction load the stored image).
//!
//! Shapes: `src [h][w][3]` u8 -> `dst [h][w][3]` u8, same size.

use crate::rng::Rng;

/// The crop box covers a fraction of the image's area drawn uniformly from `min_area_pct / 100`
/// to 1; this is the improved recipe's `min_area_pct` (`--crop-area`), chosen on validation
/// (benches/HISTORY.md).
pub const CROP_AREA_PCT: u8 = 50;
/// The smallest crop of runs whose checkpoints predate `--crop-area`.
pub const LEGACY_CROP_AREA_PCT: u8 = 35;
/// The smallest `--crop-area` taken: below it a crop of a 128-pixel image is a few dozen pixels.
pub const MIN_CROP_AREA_PCT: u8 = 5;
/// The crop box's width / height, drawn log-uniformly.
pub const RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
/// Brightness, contrast and saturation factors are each uniform in this range.
pub const JITTER: (f64, f64) = (0.7, 1.3);

/// One sample's augmentation: a crop box in source pixels, a mirror, and colour factors (1 = no
/// change).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warp {
    /// Left and top edges of the box, in pixels of the stored image (fractional).
    pub x0: f32,
    pub y0: f32,
    /// Width and height of the box, at most the image's.
    pub w: f32,
    pub h: f32,
    /// Mirror left-right (the box is taken from the mirrored image).
    pub flip: bool,
    /// Multiplies every channel.
    pub brightness: f32,
    /// Scales each pixel's distance from the box's mean grey value.
    pub contrast: f32,
    /// Scales each pixel's distance from its own grey value (0 = grey, 1 = unchanged).
    pub saturation: f32,
}

impl Warp {
    /// The whole `h x w` image, unchanged (mirrored with `flip`).
    pub fn identity(h: usize, w: usize, flip: bool) -> Warp {
        Warp {
            x0: 0.0,
            y0: 0.0,
            w: w as f32,
            h: h as f32,
            flip,
            brightness: 1.0,
            contrast: 1.0,
            saturation: 1.0,
        }
    }

    /// The warp of sample `i` in `epoch` of a run seeded `seed`, for an `h x w` image: a box of
    /// area fraction uniform in `min_area_pct / 100 ..= 1` and aspect ratio in [`RATIO`] at a
    /// uniform position (ten tries, as torchvision's RandomResizedCrop, then the whole image), and
    /// factors in [`JITTER`].
    pub fn draw(
        seed: u64,
        epoch: usize,
        i: usize,
        (h, w): (usize, usize),
        min_area_pct: u8,
        flip: bool,
    ) -> Warp {
        let mut r = Rng::new(
            seed.wrapping_mul(0x9FB2_1C65_1E98_DF25)
                ^ (epoch as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                ^ (i as u64).rotate_left(29)
                ^ 0xA06E_A7E5,
        );
        let (hf, wf) = (h as f64, w as f64);
        let mut warp = Warp::identity(h, w, flip);
        for _ in 0..10 {
            let lo = f64::from(min_area_pct) / 100.0;
            let area = hf * wf * (lo + (1.0 - lo) * r.uniform());
            let (l0, l1) = (RATIO.0.ln(), RATIO.1.ln());
            let ratio = (l0 + (l1 - l0) * r.uniform()).exp();
            let (bw, bh) = ((area * ratio).sqrt(), (area / ratio).sqrt());
            if bw <= wf && bh <= hf {
                warp.x0 = ((wf - bw) * r.uniform()) as f32;
                warp.y0 = ((hf - bh) * r.uniform()) as f32;
                warp.w = bw as f32;
                warp.h = bh as f32;
                break;
            }
        }
        let mut factor = || (JITTER.0 + (JITTER.1 - JITTER.0) * r.uniform()) as f32;
        warp.brightness = factor();
        warp.contrast = factor();
        warp.saturation = factor();
        warp
    }

    fn has_jitter(&self) -> bool {
        self.brightness != 1.0 || self.contrast != 1.0 || self.saturation != 1.0
    }
}

/// Grey value of an RGB pixel (ITU-R 601 luma, as PIL's `L` conversion).
#[inline]
fn grey(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Source sampling of one output coordinate: the two neighbours and the second's weight, for
/// an output of `n` pixels from a box at `start` of `len` pixels in a source of `n` pixels.
#[inline]
fn tap(out: usize, n: usize, start: f32, len: f32) -> (usize, usize, f32) {
    // Pixel centres map to pixel centres (half-pixel convention); a whole-image box maps every
    // output pixel exactly onto its source pixel, weight 0.
    let s = start + (out as f32 + 0.5) * (len / n as f32) - 0.5;
    let s = s.clamp(0.0, (n - 1) as f32);
    let i = s as usize; // floor, s >= 0
    let j = (i + 1).min(n - 1);
    (i, j, s - i as f32)
}

/// The widest image [`warp_image`] takes (the trainer's limit, `config::Hyper::shapes`).
pub const MAX_SIDE: usize = 1024;

/// Writes `src` (`h x w x 3`) through `warp` into `dst` (same size): bilinear resampling of the
/// box (mirrored first with `warp.flip`), then brightness, contrast (about the box's mean grey)
/// and saturation, rounded to u8. Allocates nothing. With [`Warp::identity`] the bytes are
/// copied (mirrored) exactly.
pub fn warp_image(src: &[u8], dst: &mut [u8], h: usize, w: usize, warp: &Warp) {
    assert!(src.len() >= h * w * 3 && dst.len() >= h * w * 3);
    assert!(h >= 1 && (1..=MAX_SIDE).contains(&w), "image width {w}");
    // Each output column's two source columns (byte offsets in a row) and weight, once.
    let mut cols = [(0u32, 0u32, 0.0f32); MAX_SIDE];
    for (ox, c) in cols[..w].iter_mut().enumerate() {
        let (mut x0, mut x1, fx) = tap(ox, w, warp.x0, warp.w);
        if warp.flip {
            (x0, x1) = (w - 1 - x0, w - 1 - x1);
        }
        *c = (3 * x0 as u32, 3 * x1 as u32, fx);
    }
    let jitter = warp.has_jitter();
    // Contrast pivots on the mean grey of the source pixels the box touches (after brightness).
    let pivot = if warp.contrast != 1.0 {
        let end = |start: f32, len: f32, n: usize| ((start + len).ceil() as usize).min(n);
        let mut xs = (warp.x0.floor() as usize).min(w - 1)..end(warp.x0, warp.w, w);
        if warp.flip {
            // The box is in mirrored coordinates: pixel x of the mirror is w - 1 - x.
            xs = w - xs.end..w - xs.start;
        }
        let ys = (warp.y0.floor() as usize).min(h - 1)..end(warp.y0, warp.h, h);
        // Every other row of the box: a pivot, not a measurement, needs no more.
        let rows = ys.step_by(2);
        let n = (xs.len() * rows.len()).max(1) as f64;
        let mut sum = [0u32; 3];
        for y in rows {
            for p in src[(y * w + xs.start) * 3..(y * w + xs.end) * 3].chunks_exact(3) {
                for c in 0..3 {
                    sum[c] += p[c] as u32; // at most 512 x 1024 x 255 < 2^32
                }
            }
        }
        let mean = grey(sum[0] as f32, sum[1] as f32, sum[2] as f32) as f64 / n;
        mean as f32 * warp.brightness
    } else {
        0.0
    };
    let (b, k, sat) = (warp.brightness, warp.contrast, warp.saturation);
    // One row at a time, in floats: the two source rows blended, then each pixel from its two
    // columns of the blend, then the colour factors, then bytes (loops the compiler vectorizes
    // where the data is contiguous).
    let n = 3 * w;
    // Only the columns the box reaches are blended.
    let lo = cols[..w].iter().map(|c| c.0.min(c.1)).min().unwrap_or(0) as usize;
    let hi = cols[..w].iter().map(|c| c.0.max(c.1)).max().unwrap_or(0) as usize + 3;
    let (mut blend, mut row) = ([0.0f32; 3 * MAX_SIDE], [0.0f32; 3 * MAX_SIDE]);
    for oy in 0..h {
        let (y0, y1, fy) = tap(oy, h, warp.y0, warp.h);
        let (r0, r1) = (&src[y0 * n..][lo..hi], &src[y1 * n..][lo..hi]);
        for ((t, &p), &q) in blend[lo..hi].iter_mut().zip(r0).zip(r1) {
            let (p, q) = (p as f32, q as f32);
            *t = p + fy * (q - p);
        }
        for (v, &(a, c, fx)) in row[..n].chunks_exact_mut(3).zip(&cols[..w]) {
            let (l, r) = (&blend[a as usize..][..3], &blend[c as usize..][..3]);
            for ch in 0..3 {
                v[ch] = l[ch] + fx * (r[ch] - l[ch]);
            }
        }
        if jitter {
            for x in &mut row[..n] {
                *x = pivot + k * (*x * b - pivot);
            }
            for v in row[..n].chunks_exact_mut(3) {
                let g = grey(v[0], v[1], v[2]);
                for x in v {
                    *x = g + sat * (*x - g);
                }
            }
        }
        for (o, &x) in dst[oy * n..][..n].iter_mut().zip(&row[..n]) {
            // In [0.5, 255.5] after the clamp: through i32, the conversion vectorizes.
            *o = (x.clamp(0.0, 255.0) + 0.5) as i32 as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_inside_the_image() {
        for i in 0..2000 {
            let w = Warp::draw(7, 3, i, (32, 48), CROP_AREA_PCT, i % 2 == 0);
            assert!(w.x0 >= 0.0 && w.y0 >= 0.0, "{w:?}");
            assert!(w.x0 + w.w <= 48.001 && w.y0 + w.h <= 32.001, "{w:?}");
            let area = (w.w * w.h) as f64 / (32.0 * 48.0);
            let lo = f64::from(CROP_AREA_PCT) / 100.0;
            assert!((lo - 1e-4..=1.0 + 1e-4).contains(&area), "{w:?}");
            for f in [w.brightness, w.contrast, w.saturation] {
                assert!((0.7..=1.3).contains(&f), "{w:?}");
            }
        }
        assert_eq!(
            Warp::draw(1, 2, 3, (64, 64), CROP_AREA_PCT, false),
            Warp::draw(1, 2, 3, (64, 64), CROP_AREA_PCT, false)
        );
        assert_ne!(
            Warp::draw(1, 2, 3, (64, 64), CROP_AREA_PCT, false),
            Warp::draw(1, 3, 3, (64, 64), CROP_AREA_PCT, false)
        );
        assert_ne!(
            Warp::draw(1, 2, 3, (64, 64), CROP_AREA_PCT, false),
            Warp::draw(1, 2, 4, (64, 64), CROP_AREA_PCT, false)
        );
    }
}

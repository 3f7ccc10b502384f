//! Contact sheets: a PNG grid of dataset images with captions, for looking at what the network
//! sees and what it gets wrong (e.g. the most confidently misclassified test images).
//!
//! Layout: a dark title bar across the top, then `columns` cells per row, filled left to right,
//! top to bottom. Each cell shows one image, scaled up by an integer factor (nearest neighbour,
//! so every source pixel stays a crisp block) until its larger side is at least [`MIN_SIDE`]
//! pixels, centred in the cell, with a thin frame, and up to [`CAPTION_LINES`] caption lines
//! under it. A caption line that does not fit is cut with an ellipsis: a path (a line with `/`
//! or `\`) keeps its end, the informative file name; other lines keep their start. More lines
//! than [`CAPTION_LINES`] are dropped, the last one shown ending in an ellipsis.
//!
//! Pixels come straight from the dataset blob (HWC RGB u8); nothing is decoded, only encoded.
//! All tiles of a sheet must have the same size, so that [`sheet_size`] and [`tile_origin`]
//! tell exactly where everything is.

use crate::guard::write_atomic;
use crate::plot::{fit, Canvas, ELLIPSIS};
use std::path::Path;

/// One image of a contact sheet.
pub struct Tile<'a> {
    /// HWC RGB u8 pixels, `h * w * 3` bytes.
    pub pixels: &'a [u8],
    pub h: usize,
    pub w: usize,
    /// Lines under the image, e.g. the file name, `"P(dog)=0.93 true: cat"`.
    pub caption: Vec<String>,
}

/// Images are scaled up by a whole factor until their larger side is at least this.
pub const MIN_SIDE: usize = 128;
/// Caption lines shown under each image.
pub const CAPTION_LINES: usize = 3;
/// Cells are at least this wide inside their padding, so captions have room (24 characters).
pub const MIN_TEXT_WIDTH: usize = 192;
const PAD: usize = 8;
const LINE_H: usize = 11;
const TITLE_H: usize = 36;
/// Largest sheet written, in pixels (width times height).
pub const MAX_PIXELS: u64 = 1 << 28;

const BG: [u8; 3] = [255, 255, 255];
const TITLE_BG: [u8; 3] = [48, 48, 48];
const TITLE_FG: [u8; 3] = [255, 255, 255];
const FRAME: [u8; 3] = [160, 160, 160];
const CAPTION: [u8; 3] = [0, 0, 0];

/// The whole factor an `h x w` image is scaled up by.
pub fn tile_scale(h: usize, w: usize) -> usize {
    let side = h.max(w).max(1);
    MIN_SIDE.div_ceil(side).max(1)
}

/// Cell width and height in pixels.
fn cell(h: usize, w: usize) -> (usize, usize) {
    let s = tile_scale(h, w);
    (
        (w * s).max(MIN_TEXT_WIDTH) + 2 * PAD,
        PAD + h * s + 4 + CAPTION_LINES * LINE_H + PAD,
    )
}

/// Columns actually used: at least 1, at most the number of tiles.
fn used_columns(n_tiles: usize, columns: usize) -> usize {
    columns.clamp(1, n_tiles.max(1))
}

/// Width and height of the sheet [`write_contact_sheet`] writes for `n_tiles` images of
/// `h x w` pixels in `columns` columns (saturating at `u32::MAX`).
pub fn sheet_size(n_tiles: usize, columns: usize, h: usize, w: usize) -> (u32, u32) {
    let cols = used_columns(n_tiles, columns);
    let rows = n_tiles.div_ceil(cols).max(1);
    let (cw, ch) = cell(h, w);
    let sat = |v: Option<usize>| v.map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
    (
        sat(cols.checked_mul(cw)),
        sat(rows.checked_mul(ch).and_then(|v| v.checked_add(TITLE_H))),
    )
}

/// Top-left pixel of the (scaled) image of tile `index` on the sheet.
pub fn tile_origin(index: usize, n_tiles: usize, columns: usize, h: usize, w: usize) -> (u32, u32) {
    let cols = used_columns(n_tiles, columns);
    let (cw, ch) = cell(h, w);
    let s = tile_scale(h, w);
    let (col, row) = (index % cols, index / cols);
    let x = col * cw + PAD + ((cw - 2 * PAD) - w * s) / 2;
    let y = TITLE_H + row * ch + PAD;
    (x as u32, y as u32)
}

/// A caption line cut to `max` characters: paths keep their end, other text its start.
fn fit_caption(line: &str, max: usize) -> String {
    let n = line.chars().count();
    if n <= max || max == 0 || !(line.contains('/') || line.contains('\\')) {
        return fit(line, max);
    }
    let tail: String = line.chars().skip(n - (max - 1)).collect();
    format!("{ELLIPSIS}{tail}")
}

/// Writes a contact sheet of `tiles` in `columns` columns under `title` to `path` (a PNG file,
/// written atomically).
pub fn write_contact_sheet(
    path: &Path,
    tiles: &[Tile],
    columns: usize,
    title: &str,
) -> Result<(), String> {
    let err = |m: String| format!("{}: cannot write contact sheet: {m}", path.display());
    let first = tiles.first().ok_or_else(|| err("no images given".into()))?;
    if columns == 0 {
        return Err(err("columns must be at least 1".into()));
    }
    let (h, w) = (first.h, first.w);
    for (i, t) in tiles.iter().enumerate() {
        if t.h == 0 || t.w == 0 {
            return Err(err(format!("image {i} is {}x{} pixels", t.h, t.w)));
        }
        if (t.h, t.w) != (h, w) {
            return Err(err(format!(
                "image {i} is {}x{} pixels, image 0 is {h}x{w}: all images of a sheet must have one size",
                t.h, t.w
            )));
        }
        let want = h.checked_mul(w).and_then(|v| v.checked_mul(3));
        if want != Some(t.pixels.len()) {
            return Err(err(format!(
                "image {i} has {} bytes of pixels, expected {h}x{w}x3 = {}",
                t.pixels.len(),
                h * w * 3
            )));
        }
    }
    let (sw, sh) = sheet_size(tiles.len(), columns, h, w);
    if sw as u64 * sh as u64 > MAX_PIXELS || sw == u32::MAX || sh == u32::MAX {
        return Err(err(format!(
            "a {sw}x{sh} sheet is too large; use fewer or smaller images"
        )));
    }
    let mut c = Canvas::new(sw as usize, sh as usize, BG);
    // Title bar.
    c.fill_rect(0, 0, sw as i64, TITLE_H as i64, TITLE_BG);
    let title = fit(title, (sw as usize).saturating_sub(2 * PAD) / 16);
    let tw = Canvas::text_width(&title, 2) as i64;
    c.text(
        (sw as i64 - tw) / 2,
        (TITLE_H as i64 - 16) / 2,
        &title,
        TITLE_FG,
        2,
    );
    let s = tile_scale(h, w);
    let (cw, _) = cell(h, w);
    let chars = (cw - 2 * PAD) / 8;
    let cols = used_columns(tiles.len(), columns);
    for (i, t) in tiles.iter().enumerate() {
        let (x0, y0) = tile_origin(i, tiles.len(), columns, h, w);
        let (x0, y0) = (x0 as usize, y0 as usize);
        // Frame, one pixel outside the image.
        c.fill_rect(
            x0 as i64 - 1,
            y0 as i64 - 1,
            (w * s + 2) as i64,
            (h * s + 2) as i64,
            FRAME,
        );
        // The image, each source pixel an s x s block.
        for y in 0..h * s {
            let src_row = &t.pixels[(y / s) * w * 3..(y / s + 1) * w * 3];
            let dst = 3 * ((y0 + y) * c.w + x0);
            let row = &mut c.rgb[dst..dst + 3 * w * s];
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let sx = x / s;
                px.copy_from_slice(&src_row[3 * sx..3 * sx + 3]);
            }
        }
        // Caption, left-aligned under the cell's text area.
        let tx = (i % cols) * cw + PAD;
        let ty = y0 + h * s + 4;
        let many = t.caption.len() > CAPTION_LINES;
        for (k, line) in t.caption.iter().take(CAPTION_LINES).enumerate() {
            let mut shown = fit_caption(line, chars);
            if many && k == CAPTION_LINES - 1 {
                shown = fit(&shown, chars.saturating_sub(1));
                if !shown.ends_with(ELLIPSIS) {
                    shown.push(ELLIPSIS);
                }
            }
            c.text(tx as i64, (ty + k * LINE_H + 1) as i64, &shown, CAPTION, 1);
        }
    }
    let bytes = c.encode_png().map_err(err)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_scaled_to_at_least_min_side() {
        assert_eq!(tile_scale(32, 32), 4);
        assert_eq!(tile_scale(128, 128), 1);
        assert_eq!(tile_scale(100, 60), 2);
        assert_eq!(tile_scale(300, 300), 1);
    }

    #[test]
    fn captions_keep_the_informative_end() {
        let p = "data/train/a/very/long/directory/cat.1234.jpg";
        let f = fit_caption(p, 20);
        assert_eq!(f.chars().count(), 20);
        assert!(
            f.starts_with(ELLIPSIS) && f.ends_with("cat.1234.jpg"),
            "{f}"
        );
        let t = fit_caption("P(dog)=0.93 true: cat, wrong", 20);
        assert!(t.starts_with("P(dog)=0.93") && t.ends_with(ELLIPSIS), "{t}");
        assert_eq!(fit_caption("short", 20), "short");
    }
}

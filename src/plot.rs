//! Training curves as a picture: PNG (rendered here, no system fonts) or SVG (hand-written).
//!
//! [`write_curves`] draws two stacked panels sharing the epoch axis: the top one the training
//! loss per epoch (and the test and validation losses where they were measured), the bottom one
//! the test (and validation) accuracy where it was measured. [`write_reliability`] draws
//! `model eval --plot`'s reliability diagram from the same primitives. Each panel has a frame, grid lines, tick labels, a legend; the picture
//! has a title. Both formats come from one layout (a list of drawing primitives), so the PNG and
//! the SVG show the same thing at the same coordinates; output is byte-for-byte deterministic.
//!
//! Records are plotted in epoch order. A non-finite value (a diverged loss) breaks its curve
//! into pieces rather than stretching the axis. An empty history gives empty axes with a note
//! ("no epochs recorded yet"), so a trainer may draw the picture before the first epoch ends.
//!
//! This module also holds the small RGB raster (`Canvas`) with an embedded 8x8 bitmap font
//! ([`font8x8`]) that [`crate::contact_sheet`] uses too.

use crate::guard::write_atomic;
use crate::metrics::EpochRecord;
use std::fmt::Write as _;
use std::path::Path;

/// Width and height of the picture, in pixels (PNG) or user units (SVG).
pub const PLOT_SIZE: (u32, u32) = (800, 600);

/// A rectangle `(left, top, right, bottom)`, edges included.
pub type Rect = (u32, u32, u32, u32);

/// The data area of the loss panel: the first epoch is drawn at `left`, the last at `right`.
pub const LOSS_AREA: Rect = (80, 70, 770, 280);
/// The data area of the accuracy panel.
pub const ACCURACY_AREA: Rect = (80, 350, 770, 540);

/// Colour of the training-loss curve.
pub const TRAIN_LOSS_COLOR: [u8; 3] = [31, 119, 180];
/// Colour of the test-loss curve.
pub const TEST_LOSS_COLOR: [u8; 3] = [255, 127, 14];
/// Colour of the test-accuracy curve.
pub const ACCURACY_COLOR: [u8; 3] = [44, 160, 44];
/// Colour of the validation curves (loss and accuracy).
pub const VAL_COLOR: [u8; 3] = [148, 103, 189];

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [225, 225, 225];
const NOTE: [u8; 3] = [120, 120, 120];

/// Writes the training curves of `history` to `path`; the format is chosen by the extension
/// (`.png` or `.svg`, any case). The file is written atomically.
pub fn write_curves(path: &Path, history: &[EpochRecord], title: &str) -> Result<(), String> {
    write_scene(path, &layout(history, title), title)
}

/// Colour of the reliability diagram's bars.
pub const RELIABILITY_COLOR: [u8; 3] = [31, 119, 180];
/// The data area of the reliability diagram: confidence 0..1 across, accuracy 0..1 up.
pub const RELIABILITY_AREA: Rect = (170, 70, 630, 530);

/// Writes a reliability diagram of `cal` to `path` (`.png` or `.svg`, atomically): one bar per
/// non-empty bin from its lower to its upper confidence, as high as its accuracy, over the
/// diagonal of perfect calibration, with the expected calibration error.
pub fn write_reliability(
    path: &Path,
    cal: &crate::report::Calibration,
    title: &str,
) -> Result<(), String> {
    write_scene(path, &reliability_layout(cal, title), title)
}

/// `scene` as PNG or SVG by `path`'s extension, written atomically.
fn write_scene(path: &Path, scene: &[Item], title: &str) -> Result<(), String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "png" => {
            let mut c = Canvas::new(PLOT_SIZE.0 as usize, PLOT_SIZE.1 as usize, WHITE);
            for item in scene {
                draw_png(&mut c, item);
            }
            c.encode_png()
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        "svg" => to_svg(scene, title).into_bytes(),
        _ => {
            return Err(format!(
                "{}: cannot tell the picture format: the file name must end in .png or .svg",
                path.display()
            ))
        }
    };
    write_atomic(path, &bytes)
}

/// Where text is anchored horizontally.
#[derive(Clone, Copy, PartialEq)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// Two corners of a rectangle, or the two ends of a line, in picture coordinates.
#[derive(Clone, Copy)]
struct Span {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

/// One drawing primitive, in picture coordinates.
enum Item {
    Rect {
        at: Span,
        fill: Option<[u8; 3]>,
        stroke: Option<[u8; 3]>,
    },
    Line {
        at: Span,
        color: [u8; 3],
    },
    /// A data curve: one connected piece.
    Curve {
        id: &'static str,
        points: Vec<(f64, f64)>,
        color: [u8; 3],
    },
    Text(Label),
}

/// A line of text: `y` is its top; `scale` 1 is 8 pixels high.
struct Label {
    x: f64,
    y: f64,
    text: String,
    color: [u8; 3],
    scale: usize,
    anchor: Anchor,
}

/// Tick positions covering `[lo, hi]` with a 1/2/5 step, and the range rounded out to them.
fn nice_range(mut lo: f64, mut hi: f64, target: usize) -> (f64, f64, f64) {
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= d;
        hi += d;
    }
    let raw = (hi - lo) / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// A tick label for `v` on an axis with tick spacing `step`.
fn tick_label(v: f64, step: f64, biggest: f64) -> String {
    if biggest >= 1e5 || step < 1e-4 {
        return format!("{v:.2e}");
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let s = format!("{v:.decimals$}");
    // No "-0.00".
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Maps data to one panel's area.
struct Axes {
    area: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn px(&self, x: f64) -> f64 {
        let (l, _, r, _) = self.area;
        l as f64 + (x - self.x.0) / (self.x.1 - self.x.0) * (r - l) as f64
    }
    fn py(&self, y: f64) -> f64 {
        let (_, t, _, b) = self.area;
        b as f64 - (y - self.y.0) / (self.y.1 - self.y.0) * (b - t) as f64
    }
}

/// A series to draw in a panel: legend label, id, colour, `(epoch, value)` per record.
struct Series {
    label: &'static str,
    id: &'static str,
    color: [u8; 3],
    values: Vec<(f64, Option<f64>)>,
}

fn text(x: f64, y: f64, s: impl Into<String>, color: [u8; 3], anchor: Anchor) -> Item {
    Item::Text(Label {
        x,
        y,
        text: s.into(),
        color,
        scale: 1,
        anchor,
    })
}

fn line((x0, y0): (f64, f64), (x1, y1): (f64, f64), color: [u8; 3]) -> Item {
    let at = Span { x0, y0, x1, y1 };
    Item::Line { at, color }
}

fn rect(
    (x0, y0): (f64, f64),
    (x1, y1): (f64, f64),
    fill: Option<[u8; 3]>,
    stroke: Option<[u8; 3]>,
) -> Item {
    let at = Span { x0, y0, x1, y1 };
    Item::Rect { at, fill, stroke }
}

/// What one panel shows.
struct Panel<'a> {
    area: Rect,
    ylabel: &'a str,
    series: &'a [Series],
    /// Said in the middle of the panel when no series has a finite value.
    note: &'a str,
    /// The y range when there are no finite values.
    default_y: (f64, f64),
}

/// One panel over epochs `xr`: grid, ticks, frame, curves, legend, or a note when there is
/// nothing to draw.
fn panel(out: &mut Vec<Item>, xr: (f64, f64), p: &Panel) {
    let Panel {
        area,
        ylabel,
        series,
        note,
        default_y,
    } = *p;
    let finite: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().filter_map(|v| v.1))
        .filter(|v| v.is_finite())
        .collect();
    let (ylo, yhi) = if finite.is_empty() {
        default_y
    } else {
        (
            finite.iter().cloned().fold(f64::INFINITY, f64::min),
            finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (ylo, yhi, ystep) = nice_range(ylo, yhi, 5);
    let ax = Axes {
        area,
        x: xr,
        y: (ylo, yhi),
    };
    let (l, t, r, b) = area;
    let (l, t, r, b) = (l as f64, t as f64, r as f64, b as f64);
    // Horizontal grid and y tick labels.
    let biggest = ylo.abs().max(yhi.abs());
    let n = ((yhi - ylo) / ystep).round() as usize;
    for i in 0..=n {
        let v = ylo + i as f64 * ystep;
        let y = ax.py(v).round();
        out.push(line((l, y), (r, y), GRID));
        out.push(line((l - 5.0, y), (l, y), BLACK));
        out.push(text(
            l - 8.0,
            y - 4.0,
            tick_label(v, ystep, biggest),
            BLACK,
            Anchor::End,
        ));
    }
    // Vertical grid at whole epochs, and x tick labels.
    let (_, _, raw_step) = nice_range(xr.0, xr.1, 8);
    let xstep = raw_step.max(1.0).round();
    let mut e = (xr.0 / xstep).ceil() * xstep;
    while e <= xr.1 + 1e-9 {
        let x = ax.px(e).round();
        out.push(line((x, t), (x, b), GRID));
        out.push(line((x, b), (x, b + 5.0), BLACK));
        out.push(text(x, b + 8.0, format!("{e:.0}"), BLACK, Anchor::Middle));
        e += xstep;
    }
    out.push(rect((l, t), (r, b), None, Some(BLACK)));
    out.push(text(l, t - 20.0, ylabel, BLACK, Anchor::Start));
    // Curves, broken at non-finite values.
    let mut shown = Vec::new();
    for s in series {
        let mut piece: Vec<(f64, f64)> = Vec::new();
        let mut any = false;
        for &(x, v) in &s.values {
            match v {
                Some(v) if v.is_finite() => {
                    piece.push((ax.px(x), ax.py(v)));
                    any = true;
                }
                Some(_) if !piece.is_empty() => {
                    out.push(Item::Curve {
                        id: s.id,
                        points: std::mem::take(&mut piece),
                        color: s.color,
                    });
                }
                _ => {}
            }
        }
        if !piece.is_empty() {
            out.push(Item::Curve {
                id: s.id,
                points: piece,
                color: s.color,
            });
        }
        if any {
            shown.push(s);
        }
    }
    if shown.is_empty() {
        out.push(text(
            (l + r) / 2.0,
            (t + b) / 2.0 - 4.0,
            note,
            NOTE,
            Anchor::Middle,
        ));
    }
    // Legend, right-aligned above the panel.
    let mut x = r;
    for s in shown.iter().rev() {
        let w = 8.0 * s.label.len() as f64;
        out.push(text(x, t - 20.0, s.label, BLACK, Anchor::End));
        x -= w + 8.0;
        out.push(rect(
            (x - 20.0, t - 18.0),
            (x, t - 15.0),
            Some(s.color),
            None,
        ));
        x -= 36.0;
    }
}

/// The whole picture as drawing primitives.
fn layout(history: &[EpochRecord], title: &str) -> Vec<Item> {
    let mut recs: Vec<&EpochRecord> = history.iter().collect();
    recs.sort_by_key(|r| r.epoch);
    let xr = match (recs.first(), recs.last()) {
        (Some(a), Some(b)) if a.epoch < b.epoch => (a.epoch as f64, b.epoch as f64),
        (Some(a), _) => (a.epoch as f64 - 1.0, a.epoch as f64 + 1.0),
        _ => (0.0, 1.0),
    };
    let h = PLOT_SIZE.1 as f64;
    let mut out = canvas(title);
    let series = |label, id, color, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        label,
        id,
        color,
        values: recs.iter().map(|r| (r.epoch as f64, f(r))).collect(),
    };
    let note = if recs.is_empty() {
        "no epochs recorded yet"
    } else {
        "no test accuracy recorded"
    };
    let mut loss = vec![series("train loss", "train_loss", TRAIN_LOSS_COLOR, &|r| {
        Some(r.train_loss)
    })];
    if recs.iter().any(|r| r.test_loss.is_some()) {
        loss.push(series("test loss", "test_loss", TEST_LOSS_COLOR, &|r| {
            r.test_loss
        }));
    }
    let val = recs.iter().any(|r| r.val_accuracy.is_some());
    if recs.iter().any(|r| r.val_loss.is_some()) {
        loss.push(series("val loss", "val_loss", VAL_COLOR, &|r| r.val_loss));
    }
    let loss_note = if recs.is_empty() {
        note
    } else {
        "no finite loss recorded"
    };
    let loss = Panel {
        area: LOSS_AREA,
        ylabel: "loss",
        series: &loss,
        note: loss_note,
        default_y: (0.0, 1.0),
    };
    panel(&mut out, xr, &loss);
    let mut acc = Vec::new();
    // A run without a test set (`--no-test`) draws only its validation accuracy.
    if !val || recs.iter().any(|r| r.test_accuracy.is_some()) {
        acc.push(series(
            "test accuracy",
            "test_accuracy",
            ACCURACY_COLOR,
            &|r| r.test_accuracy,
        ));
    }
    if val {
        acc.push(series("val accuracy", "val_accuracy", VAL_COLOR, &|r| {
            r.val_accuracy
        }));
    }
    let acc = Panel {
        area: ACCURACY_AREA,
        ylabel: if val { "accuracy" } else { "test accuracy" },
        series: &acc,
        note,
        default_y: (0.0, 1.0),
    };
    panel(&mut out, xr, &acc);
    out.push(text(
        (ACCURACY_AREA.0 + ACCURACY_AREA.2) as f64 / 2.0,
        h - 28.0,
        "epoch",
        BLACK,
        Anchor::Middle,
    ));
    out
}

/// A blank white plot with `title` centred at the top: where every plot's items start.
fn canvas(title: &str) -> Vec<Item> {
    let (w, h) = (PLOT_SIZE.0 as f64, PLOT_SIZE.1 as f64);
    vec![
        rect((0.0, 0.0), (w - 1.0, h - 1.0), Some(WHITE), None),
        Item::Text(Label {
            x: w / 2.0,
            y: 12.0,
            text: fit(title, (w as usize - 20) / 16),
            color: BLACK,
            scale: 2,
            anchor: Anchor::Middle,
        }),
    ]
}

/// The reliability diagram as drawing primitives.
fn reliability_layout(cal: &crate::report::Calibration, title: &str) -> Vec<Item> {
    let h = PLOT_SIZE.1 as f64;
    let mut out = canvas(title);
    let ax = Axes {
        area: RELIABILITY_AREA,
        x: (0.0, 1.0),
        y: (0.0, 1.0),
    };
    let (l, t, r, b) = RELIABILITY_AREA;
    let (l, t, r, b) = (l as f64, t as f64, r as f64, b as f64);
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let (x, y) = (ax.px(v).round(), ax.py(v).round());
        out.push(line((l, y), (r, y), GRID));
        out.push(line((x, t), (x, b), GRID));
        out.push(line((l - 5.0, y), (l, y), BLACK));
        out.push(line((x, b), (x, b + 5.0), BLACK));
        let label = tick_label(v, 0.1, 1.0);
        out.push(text(l - 8.0, y - 4.0, label.clone(), BLACK, Anchor::End));
        out.push(text(x, b + 8.0, label, BLACK, Anchor::Middle));
    }
    for bin in cal.bins.iter().filter(|bin| bin.count > 0) {
        let (x0, x1) = (ax.px(bin.lo), ax.px(bin.hi));
        out.push(rect(
            (x0, ax.py(bin.accuracy)),
            (x1, b),
            Some(RELIABILITY_COLOR),
            Some(BLACK),
        ));
    }
    out.push(line((l, b), (r, t), NOTE));
    out.push(rect((l, t), (r, b), None, Some(BLACK)));
    out.push(text(l, t - 20.0, "accuracy", BLACK, Anchor::Start));
    let n: usize = cal.bins.iter().map(|bin| bin.count).sum();
    let note = format!(
        "ECE {:.4} over {n} samples, {} bins",
        cal.ece(),
        cal.bins.len()
    );
    out.push(text(r, t - 20.0, note, BLACK, Anchor::End));
    if n == 0 {
        out.push(text(
            (l + r) / 2.0,
            (t + b) / 2.0 - 4.0,
            "no labeled samples",
            NOTE,
            Anchor::Middle,
        ));
    }
    out.push(text(
        (l + r) / 2.0,
        h - 36.0,
        "confidence: P(predicted class); grey: perfect calibration",
        BLACK,
        Anchor::Middle,
    ));
    out
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn fit(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_string()
    } else if max == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push(ELLIPSIS);
        t
    }
}

/// The ellipsis character, which the bitmap font draws as one cell.
pub(crate) const ELLIPSIS: char = '\u{2026}';

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c if (c as u32) < 0x20 => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn to_svg(scene: &[Item], title: &str) -> String {
    let (w, h) = PLOT_SIZE;
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace" font-size="13">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    for item in scene {
        match item {
            Item::Rect {
                at: Span { x0, y0, x1, y1 },
                fill,
                stroke,
            } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="{}" stroke="{}"/>"#,
                    x1 - x0,
                    y1 - y0,
                    fill.map(hex).unwrap_or("none".into()),
                    stroke.map(hex).unwrap_or("none".into())
                );
            }
            Item::Line {
                at: Span { x0, y0, x1, y1 },
                color,
            } => {
                let _ = writeln!(
                    s,
                    r#"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{}"/>"#,
                    hex(*color)
                );
            }
            Item::Curve { id, points, color } => {
                let pts: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{x:.2},{y:.2}"))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline class="{id}" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                    hex(*color),
                    pts.join(" ")
                );
                for (x, y) in points {
                    let _ = writeln!(
                        s,
                        r#"<circle class="{id}" cx="{x:.2}" cy="{y:.2}" r="2.5" fill="{}"/>"#,
                        hex(*color)
                    );
                }
            }
            Item::Text(t) => {
                let a = match t.anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let size = 13 * t.scale;
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" font-size="{size}" text-anchor="{a}" fill="{}">{}</text>"#,
                    t.x,
                    t.y + 8.0 * t.scale as f64,
                    hex(t.color),
                    escape(&t.text)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn draw_png(c: &mut Canvas, item: &Item) {
    let r = |v: f64| v.round() as i64;
    match item {
        Item::Rect { at, fill, stroke } => {
            let (a, b, cc, d) = (r(at.x0), r(at.y0), r(at.x1), r(at.y1));
            if let Some(f) = fill {
                c.fill_rect(a, b, cc - a + 1, d - b + 1, *f);
            }
            if let Some(s) = stroke {
                c.fill_rect(a, b, cc - a + 1, 1, *s);
                c.fill_rect(a, d, cc - a + 1, 1, *s);
                c.fill_rect(a, b, 1, d - b + 1, *s);
                c.fill_rect(cc, b, 1, d - b + 1, *s);
            }
        }
        Item::Line { at, color } => c.line(r(at.x0), r(at.y0), r(at.x1), r(at.y1), *color, 1),
        Item::Curve { points, color, .. } => {
            for w in points.windows(2) {
                c.line(r(w[0].0), r(w[0].1), r(w[1].0), r(w[1].1), *color, 2);
            }
            for &(x, y) in points {
                c.fill_rect(r(x) - 2, r(y) - 2, 5, 5, *color);
            }
        }
        Item::Text(t) => {
            let w = Canvas::text_width(&t.text, t.scale) as f64;
            let x = match t.anchor {
                Anchor::Start => t.x,
                Anchor::Middle => t.x - w / 2.0,
                Anchor::End => t.x - w,
            };
            c.text(r(x), r(t.y), &t.text, t.color, t.scale);
        }
    }
}

/// An RGB8 raster with clipped drawing and an 8x8 bitmap font.
pub(crate) struct Canvas {
    pub w: usize,
    pub h: usize,
    /// Row-major RGB, `3 * w * h` bytes.
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: [u8; 3]) -> Self {
        let mut rgb = Vec::with_capacity(3 * w * h);
        for _ in 0..w * h {
            rgb.extend_from_slice(&bg);
        }
        Canvas { w, h, rgb }
    }

    /// Sets one pixel; outside the canvas does nothing.
    pub fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = 3 * (y as usize * self.w + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fills a `w x h` rectangle at `(x, y)`, clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w).min(self.w as i64);
        let y1 = (y + h).min(self.h as i64);
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, c);
            }
        }
    }

    /// A straight line (Bresenham), `thick` pixels wide.
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3], thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let off = (thick - 1) / 2;
        loop {
            self.fill_rect(x - off, y - off, thick, thick, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Pixels of `s` drawn at `scale`: 8 per character.
    pub fn text_width(s: &str, scale: usize) -> usize {
        8 * scale * s.chars().count()
    }

    /// Draws `s` with its top-left corner at `(x, y)`; 8x8 cells times `scale`. Characters the
    /// font lacks are drawn as `?`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3], scale: usize) {
        let sc = scale as i64;
        for (i, ch) in s.chars().enumerate() {
            let glyph = glyph(ch);
            let gx = x + 8 * sc * i as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        self.fill_rect(gx + col * sc, y + row as i64 * sc, sc, sc, c);
                    }
                }
            }
        }
    }

    /// The canvas as PNG file bytes.
    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut wr = enc
                .write_header()
                .map_err(|e| format!("cannot encode PNG: {e}"))?;
            wr.write_image_data(&self.rgb)
                .map_err(|e| format!("cannot encode PNG: {e}"))?;
            wr.finish().map_err(|e| format!("cannot encode PNG: {e}"))?;
        }
        Ok(out)
    }
}

/// The 8x8 bitmap of `ch` (row bytes, bit 0 = leftmost column).
fn glyph(ch: char) -> [u8; 8] {
    if ch == ELLIPSIS {
        return [0, 0, 0, 0, 0, 0, 0x49, 0];
    }
    let i = ch as u32;
    if (0x20..0x7f).contains(&i) {
        font8x8::legacy::BASIC_LEGACY[i as usize]
    } else {
        font8x8::legacy::BASIC_LEGACY['?' as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ranges_cover_the_data_with_round_steps() {
        assert_eq!(nice_range(0.12, 0.93, 5), (0.0, 1.0, 0.2));
        let (lo, hi, step) = nice_range(0.5, 0.5, 5);
        assert!(lo < 0.5 && hi > 0.5 && step > 0.0);
        assert_eq!(nice_range(0.0, 0.0, 5).2, 0.5);
        assert_eq!(tick_label(0.4, 0.2, 1.0), "0.4");
        assert_eq!(tick_label(-0.0, 0.05, 1.0), "0.00");
        assert_eq!(tick_label(3e6, 1e6, 4e6), "3.00e6");
    }

    #[test]
    fn text_is_drawn_with_the_bitmap_font() {
        let mut c = Canvas::new(16, 8, WHITE);
        c.text(0, 0, "I", BLACK, 1);
        let dark = c.rgb.chunks(3).filter(|p| p[0] == 0).count();
        assert!(dark > 8, "{dark}");
        assert_eq!(fit("abcdef", 4).chars().count(), 4);
        assert!(fit("abcdef", 4).ends_with(ELLIPSIS));
        assert_eq!(fit("abc", 4), "abc");
    }
}

//! Pictures: training-curve plots (PNG and SVG) and contact sheets are valid files of the
//! expected size that show the data where the layout says.

mod common;
use catdog::contact_sheet::{self, sheet_size, tile_origin, tile_scale, Tile};
use catdog::metrics::EpochRecord;
use catdog::plot::{
    self, ACCURACY_AREA, ACCURACY_COLOR, LOSS_AREA, PLOT_SIZE, TEST_LOSS_COLOR, TRAIN_LOSS_COLOR,
};
use common::TempDir;
use std::collections::HashSet;
use std::path::Path;

/// A decoded RGB8 PNG.
struct Image {
    w: u32,
    h: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y * self.w + x) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
    /// Pixels of colour `c` inside the rectangle `(l, t, r, b)` (edges included).
    fn find(&self, c: [u8; 3], (l, t, r, b): (u32, u32, u32, u32)) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        for y in t..=b {
            for x in l..=r {
                if self.at(x, y) == c {
                    v.push((x, y));
                }
            }
        }
        v
    }
    fn colours(&self) -> usize {
        self.rgb
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Checks the PNG signature and IHDR by hand, then decodes with the `png` crate.
fn read_png(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    assert_eq!(u32::from_be_bytes(bytes[8..12].try_into().unwrap()), 13);
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(bytes[24], 8, "bit depth");
    assert_eq!(bytes[25], 2, "colour type RGB");
    assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    rgb.truncate(info.buffer_size());
    assert_eq!(rgb.len(), 3 * (w * h) as usize);
    Image { w, h, rgb }
}

/// Six epochs on exact lines: loss 1.0 down to 0.0, accuracy 0.0 up to 1.0, so both y axes
/// span exactly 0..1 and every point's pixel is known.
fn straight_history() -> Vec<EpochRecord> {
    (0..6)
        .map(|k| EpochRecord {
            epoch: k + 1,
            train_loss: 1.0 - 0.2 * k as f64,
            test_accuracy: Some(0.2 * k as f64),
            test_loss: Some(0.9 - 0.1 * k as f64),
            samples_per_s: 50.0,
            elapsed_s: 10.0 * (k + 1) as f64,
            lr: 0.01,
            val_accuracy: None,
            val_loss: None,
        })
        .collect()
}

/// True when colour `c` is within one pixel of `(x, y)`.
fn near(img: &Image, c: [u8; 3], x: u32, y: u32) -> bool {
    !img.find(c, (x - 1, y - 1, x + 1, y + 1)).is_empty()
}

#[test]
fn png_plot_has_the_size_and_draws_curves_where_the_axes_say() {
    let d = TempDir::new("pics", "png");
    let p = d.path("curves.png");
    plot::write_curves(&p, &straight_history(), "run 1: loss and accuracy").unwrap();
    let img = read_png(&p);
    assert_eq!((img.w, img.h), PLOT_SIZE);
    assert!(img.colours() >= 6, "{} colours", img.colours());
    let (l, t, r, b) = LOSS_AREA;
    // First epoch, loss 1.0: the top-left corner of the loss area; last, loss 0: bottom-right.
    assert!(near(&img, TRAIN_LOSS_COLOR, l + 1, t + 1));
    assert!(near(&img, TRAIN_LOSS_COLOR, r - 1, b - 1));
    // The straight line between them passes through the middle.
    assert!(near(&img, TRAIN_LOSS_COLOR, (l + r) / 2, (t + b) / 2));
    // It spans the area from the left edge to the right edge, and not beyond the markers.
    let pts = img.find(TRAIN_LOSS_COLOR, (l - 3, t - 3, r + 3, b + 3));
    let xmin = pts.iter().map(|p| p.0).min().unwrap();
    let xmax = pts.iter().map(|p| p.0).max().unwrap();
    assert!(
        xmin.abs_diff(l) <= 2 && xmax.abs_diff(r) <= 2,
        "{xmin}..{xmax}"
    );
    // Away from the line there is no curve colour (a point well above the diagonal).
    assert!(img
        .find(TRAIN_LOSS_COLOR, (r - 60, t + 5, r - 5, t + 60))
        .is_empty());
    // The test loss is drawn too, and the accuracy rises from bottom-left to top-right.
    assert!(!img.find(TEST_LOSS_COLOR, LOSS_AREA).is_empty());
    let (l, t, r, b) = ACCURACY_AREA;
    assert!(near(&img, ACCURACY_COLOR, l + 1, b - 1));
    assert!(near(&img, ACCURACY_COLOR, r - 1, t + 1));
    assert!(near(&img, ACCURACY_COLOR, (l + r) / 2, (t + b) / 2));
    // The frame is black, the background white, the title drawn in black above the panels.
    assert_eq!(img.at(l, (t + b) / 2), [0, 0, 0]);
    assert_eq!(img.at(2, 2), [255, 255, 255]);
    assert!(
        !img.find([0, 0, 0], (200, 5, 600, 35)).is_empty(),
        "no title"
    );
    // Tick labels left of the loss area (black text pixels).
    assert!(!img
        .find([0, 0, 0], (10, LOSS_AREA.1, LOSS_AREA.0 - 8, LOSS_AREA.3))
        .is_empty());
}

#[test]
fn svg_plot_has_one_polyline_point_per_epoch() {
    let d = TempDir::new("pics", "svg");
    let p = d.path("curves.SVG");
    let mut h = straight_history();
    for (k, r) in h.iter_mut().enumerate() {
        if k % 2 == 1 {
            r.test_accuracy = None;
        }
    }
    plot::write_curves(&p, &h, "loss & accuracy <run 1>").unwrap();
    let s = std::fs::read_to_string(&p).unwrap();
    assert!(s.starts_with("<?xml"));
    assert!(s.contains("<svg") && s.trim_end().ends_with("</svg>"));
    assert!(s.contains(&format!(
        r#"width="{}" height="{}""#,
        PLOT_SIZE.0, PLOT_SIZE.1
    )));
    assert!(s.contains("loss &amp; accuracy &lt;run 1&gt;"));
    let points = |class: &str| -> Vec<usize> {
        s.lines()
            .filter(|l| l.starts_with(&format!(r#"<polyline class="{class}""#)))
            .map(|l| {
                let pts = l
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                for xy in pts.split(' ') {
                    let (x, y) = xy.split_once(',').unwrap();
                    let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                    assert!((0.0..=800.0).contains(&x) && (0.0..=600.0).contains(&y));
                }
                pts.split(' ').count()
            })
            .collect()
    };
    assert_eq!(points("train_loss"), vec![6]);
    assert_eq!(points("test_loss"), vec![6]);
    assert_eq!(points("test_accuracy"), vec![3]);
    // The first training-loss point is the top-left corner of the loss area.
    assert!(s.contains(&format!(
        r#"points="{:.2},{:.2} "#,
        LOSS_AREA.0 as f64, LOSS_AREA.1 as f64
    )));
    // Every line is one element (a crude well-formedness check).
    for l in s.lines() {
        assert!(l.starts_with('<') && l.ends_with('>'), "{l}");
    }
    assert!(s.contains(">train loss<") && s.contains(">test accuracy<"));
}

#[test]
fn a_diverged_epoch_breaks_the_curve_instead_of_the_axis() {
    let d = TempDir::new("pics", "nan");
    let p = d.path("c.svg");
    let mut h = straight_history();
    h[2].train_loss = f64::NAN;
    h[3].train_loss = f64::INFINITY;
    plot::write_curves(&p, &h, "diverged").unwrap();
    let s = std::fs::read_to_string(&p).unwrap();
    let counts: Vec<usize> = s
        .lines()
        .filter(|l| l.starts_with(r#"<polyline class="train_loss""#))
        .map(|l| l.matches(',').count())
        .collect();
    assert_eq!(counts, vec![2, 2]);
    assert!(!s.contains("NaN") && !s.contains("inf"));
    let png = d.path("c.png");
    plot::write_curves(&png, &h, "diverged").unwrap();
    let img = read_png(&png);
    assert_eq!((img.w, img.h), PLOT_SIZE);
    assert!(!img.find(TRAIN_LOSS_COLOR, LOSS_AREA).is_empty());
}

#[test]
fn plots_are_deterministic() {
    let d = TempDir::new("pics", "det");
    for ext in ["png", "svg"] {
        let a = d.path(&format!("a.{ext}"));
        let b = d.path(&format!("b.{ext}"));
        plot::write_curves(&a, &straight_history(), "same").unwrap();
        plot::write_curves(&b, &straight_history(), "same").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}

#[test]
fn other_extensions_are_refused() {
    let d = TempDir::new("pics", "ext");
    for name in ["c.jpg", "c", "c.png.txt"] {
        let p = d.path(name);
        let e = plot::write_curves(&p, &straight_history(), "t").unwrap_err();
        assert!(
            e.contains(".png") && e.contains(".svg") && e.contains(name),
            "{e}"
        );
        assert!(!p.exists());
    }
    let e = plot::write_curves(&d.0, &straight_history(), "t").unwrap_err();
    assert!(!e.is_empty());
}

#[test]
fn empty_history_gives_empty_axes_with_a_note() {
    let d = TempDir::new("pics", "empty");
    let p = d.path("e.png");
    plot::write_curves(&p, &[], "nothing yet").unwrap();
    let img = read_png(&p);
    assert_eq!((img.w, img.h), PLOT_SIZE);
    for c in [TRAIN_LOSS_COLOR, TEST_LOSS_COLOR, ACCURACY_COLOR] {
        assert!(img.find(c, (0, 0, img.w - 1, img.h - 1)).is_empty());
    }
    // Frames and the grey note are drawn.
    assert_eq!(img.at(LOSS_AREA.0, LOSS_AREA.1 + 10), [0, 0, 0]);
    assert!(!img.find([120, 120, 120], LOSS_AREA).is_empty(), "no note");
    let s = d.path("e.svg");
    plot::write_curves(&s, &[], "nothing yet").unwrap();
    let s = std::fs::read_to_string(&s).unwrap();
    assert!(!s.contains("<polyline"));
    assert!(s.contains("no epochs recorded yet"));
    // A single epoch without test results: one marker, and a note in the accuracy panel.
    let one = vec![EpochRecord {
        test_accuracy: None,
        test_loss: None,
        ..straight_history()[0].clone()
    }];
    let p1 = d.path("one.svg");
    plot::write_curves(&p1, &one, "first epoch").unwrap();
    let s = std::fs::read_to_string(&p1).unwrap();
    assert_eq!(s.matches(r#"<circle class="train_loss""#).count(), 1);
    assert!(s.contains("no test accuracy recorded"));
}

/// A 32x32 test image: a gradient tinted by `k`, so every pixel and every tile differs.
fn image(k: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 * 32 * 3);
    for y in 0..32 {
        for x in 0..32 {
            v.extend_from_slice(&[(x * 8) as u8, (y * 8) as u8, (40 * k + 3) as u8]);
        }
    }
    v
}

#[test]
fn contact_sheet_has_the_size_and_the_source_pixels() {
    let d = TempDir::new("pics", "sheet");
    let p = d.path("sheet.png");
    let images: Vec<Vec<u8>> = (0..5).map(image).collect();
    let tiles: Vec<Tile> = images
        .iter()
        .enumerate()
        .map(|(k, px)| Tile {
            pixels: px,
            h: 32,
            w: 32,
            caption: vec![
                format!("data/test/a/very/long/folder/name/cat.{k}.jpg"),
                format!("P(dog)=0.{k}3 true: cat"),
            ],
        })
        .collect();
    contact_sheet::write_contact_sheet(&p, &tiles, 3, "most confident mistakes").unwrap();
    let img = read_png(&p);
    assert_eq!((img.w, img.h), sheet_size(5, 3, 32, 32));
    assert!(img.colours() > 1000);
    let s = tile_scale(32, 32) as u32;
    assert_eq!(s, 4);
    // Two rows of three cells: the sixth cell is empty, so the sheet is 3 cells wide.
    let (w1, _) = sheet_size(1, 1, 32, 32);
    assert_eq!(img.w, 3 * w1);
    for (k, src) in images.iter().enumerate() {
        let (x0, y0) = tile_origin(k, 5, 3, 32, 32);
        // Top-left pixel equals the source's, and every s x s block is one source pixel.
        assert_eq!(img.at(x0, y0), [src[0], src[1], src[2]]);
        for y in 0..32 * s {
            for x in 0..32 * s {
                let i = 3 * ((y / s) * 32 + x / s) as usize;
                assert_eq!(
                    img.at(x0 + x, y0 + y),
                    [src[i], src[i + 1], src[i + 2]],
                    "tile {k} at {x},{y}"
                );
            }
        }
        // Caption text (black) under the image, within the cell.
        let below = (
            x0.saturating_sub(40),
            y0 + 32 * s + 2,
            x0 + 32 * s + 40,
            y0 + 32 * s + 30,
        );
        assert!(
            !img.find([0, 0, 0], below).is_empty(),
            "no caption under tile {k}"
        );
    }
    // Tiles are laid out left to right, then top to bottom.
    let (a, b, c) = (
        tile_origin(0, 5, 3, 32, 32),
        tile_origin(2, 5, 3, 32, 32),
        tile_origin(3, 5, 3, 32, 32),
    );
    assert!(a.1 == b.1 && b.0 > a.0 && c.0 == a.0 && c.1 > a.1);
    // A dark title bar with light title text.
    let bar = img.at(1, 1);
    assert!(bar.iter().all(|&v| v < 100), "{bar:?}");
    assert!(
        !img.find([255, 255, 255], (0, 0, img.w - 1, 30)).is_empty(),
        "no title text"
    );
    // The empty sixth cell is background.
    let (x5, y5) = (img.w - w1 + 30, tile_origin(3, 5, 3, 32, 32).1 + 30);
    assert_eq!(img.at(x5, y5), [255, 255, 255]);
}

#[test]
fn large_images_are_not_scaled_and_columns_are_capped() {
    let d = TempDir::new("pics", "big");
    let p = d.path("big.png");
    let px: Vec<u8> = (0..160 * 200 * 3).map(|i| (i % 251) as u8).collect();
    let tiles = [
        Tile {
            pixels: &px,
            h: 160,
            w: 200,
            caption: vec!["one".into(), "two".into(), "three".into(), "four".into()],
        },
        Tile {
            pixels: &px,
            h: 160,
            w: 200,
            caption: vec![],
        },
    ];
    contact_sheet::write_contact_sheet(&p, &tiles, 10, "").unwrap();
    let img = read_png(&p);
    assert_eq!((img.w, img.h), sheet_size(2, 2, 160, 200));
    assert_eq!(sheet_size(2, 10, 160, 200), sheet_size(2, 2, 160, 200));
    assert_eq!(tile_scale(160, 200), 1);
    let (x0, y0) = tile_origin(1, 2, 10, 160, 200);
    assert_eq!(img.at(x0, y0), [px[0], px[1], px[2]]);
    let last = 3 * (160 * 200 - 1);
    assert_eq!(
        img.at(x0 + 199, y0 + 159),
        [px[last], px[last + 1], px[last + 2]]
    );
}

#[test]
fn contact_sheet_refuses_bad_input_with_reasons() {
    let d = TempDir::new("pics", "sheetbad");
    let p = d.path("s.png");
    let a = image(0);
    fn t(px: &[u8], h: usize, w: usize) -> Tile<'_> {
        Tile {
            pixels: px,
            h,
            w,
            caption: vec![],
        }
    }
    let e = contact_sheet::write_contact_sheet(&p, &[], 3, "x").unwrap_err();
    assert!(e.contains("no images"), "{e}");
    let e = contact_sheet::write_contact_sheet(&p, &[t(&a, 32, 32)], 0, "x").unwrap_err();
    assert!(e.contains("columns"), "{e}");
    let e = contact_sheet::write_contact_sheet(&p, &[t(&a[..100], 32, 32)], 1, "x").unwrap_err();
    assert!(e.contains("100 bytes") && e.contains("3072"), "{e}");
    let e = contact_sheet::write_contact_sheet(&p, &[t(&a, 32, 32), t(&a, 16, 64)], 1, "x")
        .unwrap_err();
    assert!(e.contains("image 1 is 16x64"), "{e}");
    let e = contact_sheet::write_contact_sheet(&p, &[t(&[], 0, 32)], 1, "x").unwrap_err();
    assert!(e.contains("0x32"), "{e}");
    assert!(!p.exists());
    assert!(e.contains("s.png"));
}

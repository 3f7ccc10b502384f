//! `pack-testgen`: writes the synthetic image files the packer's tests use (tests/pack.rs), so
//! no photo ever needs to be committed. Reads one request per line on stdin:
//!
//! ```text
//! FORMAT VARIANT WIDTH HEIGHT SEED OUT_PATH
//! ```
//!
//! FORMAT: jpg png bmp gif webp. VARIANT:
//! - `pattern`: an RGB gradient that depends on SEED (any format)
//! - `halves`: left half red, right half blue (any format)
//! - `exif6`: `halves` as a JPEG with EXIF orientation 6 (display = rotate 90 degrees clockwise)
//! - `gray`: solid grey 100 (jpg png bmp webp)
//! - `gray16`: 16-bit grey 0x8080 (png)
//! - `rgb16`: 16-bit solid red (png)
//! - `rgba`: left half transparent black, right half opaque red (png webp)
//! - `palette`: indexed colour, solid green (png; gif is always indexed)
//! - `cmyk`: solid C=0 M=255 Y=255 K=0, i.e. red, as a 4-channel Adobe JPEG (jpg)
//! - `anim`: an animated GIF, first frame red, second blue (gif)
//! - `bomb`: a valid PNG header claiming WIDTH x HEIGHT, with almost no data (png)

use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};
use std::io::BufRead;
use std::path::Path;

fn pattern(w: u32, h: u32, seed: u32) -> image::RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([
            ((x * 255 / w.max(1)) + seed * 37) as u8,
            ((y * 255 / h.max(1)) + seed * 11) as u8,
            ((x + y) / 2 + seed * 5) as u8,
        ])
    })
}

fn halves(w: u32, h: u32) -> image::RgbImage {
    ImageBuffer::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

fn save(img: image::DynamicImage, fmt: &str, out: &Path) -> Result<(), String> {
    let f = match fmt {
        "jpg" => image::ImageFormat::Jpeg,
        "png" => image::ImageFormat::Png,
        "bmp" => image::ImageFormat::Bmp,
        "gif" => image::ImageFormat::Gif,
        "webp" => image::ImageFormat::WebP,
        _ => return Err(format!("unknown format {fmt}")),
    };
    let img = if f == image::ImageFormat::Jpeg && img.color().has_alpha() {
        image::DynamicImage::ImageRgb8(img.into_rgb8())
    } else {
        img
    };
    img.save_with_format(out, f).map_err(|e| e.to_string())
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = crc32fast::Hasher::new();
    c.update(kind);
    c.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&c.finalize().to_be_bytes());
}

/// A JPEG with an APP1 EXIF segment carrying only the orientation tag, inserted after SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&seg);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn make(fmt: &str, variant: &str, w: u32, h: u32, seed: u32, out: &Path) -> Result<(), String> {
    use image::DynamicImage as D;
    match variant {
        "pattern" => save(D::ImageRgb8(pattern(w, h, seed)), fmt, out),
        "halves" => save(D::ImageRgb8(halves(w, h)), fmt, out),
        "gray" => save(
            D::ImageLuma8(ImageBuffer::from_pixel(w, h, Luma([100u8]))),
            fmt,
            out,
        ),
        "gray16" => save(
            D::ImageLuma16(ImageBuffer::from_pixel(w, h, Luma([0x8080u16]))),
            fmt,
            out,
        ),
        "rgb16" => save(
            D::ImageRgb16(ImageBuffer::from_pixel(w, h, Rgb([0xFFFFu16, 0, 0]))),
            fmt,
            out,
        ),
        "graya" => save(
            D::ImageLumaA8(ImageBuffer::from_pixel(w, h, LumaA([100u8, 255]))),
            fmt,
            out,
        ),
        "rgba" => save(
            D::ImageRgba8(ImageBuffer::from_fn(w, h, |x, _| {
                if x < w / 2 {
                    Rgba([0, 0, 0, 0])
                } else {
                    Rgba([255, 0, 0, 255])
                }
            })),
            fmt,
            out,
        ),
        "anim" => {
            // Two frames: red, then blue. The packer must take the first.
            let f = std::fs::File::create(out).map_err(|e| e.to_string())?;
            let mut enc = image::codecs::gif::GifEncoder::new(std::io::BufWriter::new(f));
            for c in [[255u8, 0, 0, 255], [0, 0, 255, 255]] {
                let frame = image::Frame::new(ImageBuffer::from_pixel(w, h, Rgba(c)));
                enc.encode_frame(frame).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "exif6" => {
            let mut buf = Vec::new();
            D::ImageRgb8(halves(w, h))
                .write_to(
                    &mut std::io::Cursor::new(&mut buf),
                    image::ImageFormat::Jpeg,
                )
                .map_err(|e| e.to_string())?;
            std::fs::write(out, with_exif_orientation(&buf, 6)).map_err(|e| e.to_string())
        }
        "palette" => {
            let f = std::fs::File::create(out).map_err(|e| e.to_string())?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_palette(vec![0, 0, 0, 0, 255, 0]);
            let mut wr = enc.write_header().map_err(|e| e.to_string())?;
            wr.write_image_data(&vec![1u8; (w * h) as usize])
                .map_err(|e| e.to_string())
        }
        "cmyk" => {
            // Ink amounts C, M, Y, K (as Pillow and zune-jpeg read jpeg-encoder's Adobe JPEG).
            let px: Vec<u8> = (0..w * h).flat_map(|_| [0u8, 255, 255, 0]).collect();
            let enc = jpeg_encoder::Encoder::new_file(out, 90).map_err(|e| e.to_string())?;
            enc.encode(&px, w as u16, h as u16, jpeg_encoder::ColorType::Cmyk)
                .map_err(|e| e.to_string())
        }
        "bomb" => {
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            let mut ihdr = Vec::new();
            ihdr.extend_from_slice(&w.to_be_bytes());
            ihdr.extend_from_slice(&h.to_be_bytes());
            ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
            png_chunk(&mut b, b"IHDR", &ihdr);
            png_chunk(
                &mut b,
                b"IDAT",
                &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
            );
            png_chunk(&mut b, b"IEND", &[]);
            std::fs::write(out, b).map_err(|e| e.to_string())
        }
        _ => Err(format!("unknown variant {variant}")),
    }
}

fn main() {
    let mut failed = false;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let f: Vec<&str> = line.splitn(6, ' ').collect();
        if line.trim().is_empty() {
            continue;
        }
        if f.len() != 6 {
            eprintln!("pack-testgen: bad request {line:?}");
            failed = true;
            continue;
        }
        let num = |s: &str| s.parse::<u32>().expect("number");
        if let Err(e) = make(f[0], f[1], num(f[2]), num(f[3]), num(f[4]), Path::new(f[5])) {
            eprintln!("pack-testgen: {line}: {e}");
            failed = true;
        }
    }
    std::process::exit(failed as i32);
}

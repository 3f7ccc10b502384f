//! The packer behind `tools/pack`: find the images in a folder, decode and resize them in
//! parallel, split them, and write dataset blobs ([`catdog_core::blob`]).
//!
//! Every step that can meet bad input returns a reason instead of failing the run: a file that
//! cannot be packed becomes one [`Skip`] line, and the run goes on.

use catdog_core::blob::{BlobMeta, BlobWriter, PendingBlob, Sibling, CLASS_NAMES, UNLABELED};
use fast_image_resize as fir;
use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub mod fetch;
pub mod photos;

/// File extensions (lower case) taken as images; anything else is skipped with a reason.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "bmp", "dib", "gif", "webp",
];

/// Default decompression-bomb guard: images with more pixels than this are skipped.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// Files bigger than this are not read at all (no real photo is; a bomb may be).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// How the input folder is laid out (what gives a file its label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `ROOT/cat.N.jpg`, `ROOT/dog.N.jpg` (also `cat_N`, `dog-N`): the label is the name's prefix.
    Kaggle,
    /// `ROOT/Cat/...`, `ROOT/Dog/...` (any case, also `cats`/`dogs`): the label is the folder.
    ClassFolders,
    /// Every image in ROOT, no labels.
    Unlabeled,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Kaggle => "kaggle (cat.N.jpg / dog.N.jpg)",
            Layout::ClassFolders => "class folders (Cat/, Dog/)",
            Layout::Unlabeled => "unlabeled",
        })
    }
}

/// One file to decode.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub path: PathBuf,
    /// 0 = cat, 1 = dog, or [`UNLABELED`].
    pub label: u8,
}

/// Something that was not packed, and why.
#[derive(Clone, Debug)]
pub struct Skip {
    pub path: PathBuf,
    /// The label the file would have had (for per-class counts), if any.
    pub label: Option<u8>,
    pub reason: String,
}

/// What [`scan`] found.
#[derive(Debug)]
pub struct Listing {
    pub layout: Layout,
    /// Sorted: by label, then by path bytes. Deterministic for a given folder.
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skip>,
}

/// The class a Kaggle-style name gives: `cat` or `dog` (any case) followed by `.`, `_`, `-` or a
/// space: `cat.12.jpg`, `Dog_7.png`. (`category.jpg` is not a cat.)
fn class_of_name(name: &str) -> Option<u8> {
    let l = name.as_bytes();
    let sep = |b: Option<&u8>| matches!(b, Some(b'.' | b'_' | b'-' | b' '));
    if l.len() < 4 || !sep(l.get(3)) {
        return None;
    }
    match l[..3].to_ascii_lowercase().as_slice() {
        b"cat" => Some(0),
        b"dog" => Some(1),
        _ => None,
    }
}

fn class_of_folder(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "cat" | "cats" => Some(0),
        "dog" | "dogs" => Some(1),
        _ => None,
    }
}

/// Why a file name is not taken as an image, or `None` if it is.
fn extension_problem(path: &Path) -> Option<String> {
    match path.extension() {
        None => Some("no file extension (not an image name)".into()),
        Some(e) => {
            let e = e.to_string_lossy().to_ascii_lowercase();
            if IMAGE_EXTENSIONS.contains(&e.as_str()) {
                None
            } else {
                Some(format!(
                    "unknown extension .{e} (not an image type this tool reads)"
                ))
            }
        }
    }
}

/// Sorted directory entries (by file-name bytes), with a reason for each unreadable entry.
fn sorted_entries(dir: &Path, skipped: &mut Vec<Skip>, label: Option<u8>) -> Vec<fs::DirEntry> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            skipped.push(Skip {
                path: dir.to_path_buf(),
                label,
                reason: format!("cannot list folder: {e}"),
            });
            return Vec::new();
        }
    };
    let mut v = Vec::new();
    for e in rd {
        match e {
            Ok(e) => v.push(e),
            Err(e) => skipped.push(Skip {
                path: dir.to_path_buf(),
                label,
                reason: format!("error while listing folder: {e}"),
            }),
        }
    }
    v.sort_by_key(|e| e.file_name());
    v
}

/// Is this entry a directory (following symlinks)? Broken links count as files (they fail later
/// with a reason).
fn is_dir(e: &fs::DirEntry) -> bool {
    match e.file_type() {
        // The type comes with the listing on most file systems: no stat needed.
        Ok(t) if !t.is_symlink() => t.is_dir(),
        _ => fs::metadata(e.path()).map(|m| m.is_dir()).unwrap_or(false),
    }
}

/// The other class folder (its canonical path) that a symbolic link `p` leads into, if any.
fn link_into<'a>(p: &Path, e: &fs::DirEntry, others: &'a [PathBuf]) -> Option<&'a PathBuf> {
    if !e.file_type().is_ok_and(|t| t.is_symlink()) {
        return None;
    }
    let target = fs::canonicalize(p).ok()?;
    others.iter().find(|o| target.starts_with(o))
}

/// Lists the images under the class folder `dir` (label `label`), recursively. A symbolic link
/// that leads into another class folder (`others`, canonical) is skipped: a photo's label comes
/// from the class folder it really lives in, not from an alias.
fn walk_class_folder(
    dir: &Path,
    label: u8,
    others: &[PathBuf],
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<Candidate>,
    skipped: &mut Vec<Skip>,
) {
    if let Ok(c) = fs::canonicalize(dir) {
        if !seen.insert(c) {
            skipped.push(Skip {
                path: dir.to_path_buf(),
                label: Some(label),
                reason: "folder already visited (symbolic link loop?)".into(),
            });
            return;
        }
    }
    for e in sorted_entries(dir, skipped, Some(label)) {
        let p = e.path();
        if let Some(o) = link_into(&p, &e, others) {
            skipped.push(Skip {
                path: p,
                label: Some(label),
                reason: format!(
                    "symbolic link into the other class folder {}: not followed (a photo is \
                     labeled by the folder it lives in)",
                    o.display()
                ),
            });
        } else if is_dir(&e) {
            walk_class_folder(&p, label, others, seen, out, skipped);
        } else if let Some(reason) = extension_problem(&p) {
            skipped.push(Skip {
                path: p,
                label: Some(label),
                reason,
            });
        } else {
            out.push(Candidate { path: p, label });
        }
    }
}

/// Lists the images under `root` and decides the layout. `force_unlabeled` packs every image of
/// a flat folder as unlabeled, whatever its name.
pub fn scan(root: &Path, force_unlabeled: bool) -> Result<Listing, String> {
    let meta = fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a folder", root.display()));
    }
    let mut skipped = Vec::new();
    let entries = sorted_entries(root, &mut skipped, None);
    let class_dirs: Vec<(u8, &fs::DirEntry)> = entries
        .iter()
        .filter(|e| is_dir(e))
        .filter_map(|e| class_of_folder(&e.file_name().to_string_lossy()).map(|c| (c, e)))
        .collect();
    let mut candidates = Vec::new();
    let layout;
    if !class_dirs.is_empty() && !force_unlabeled {
        layout = Layout::ClassFolders;
        let mut seen = HashSet::new();
        // Class folders by their real paths: one that is (or holds, or lies in) another
        // through a symbolic link would give its photos the label of whichever is read first.
        let roots: Vec<(u8, PathBuf, PathBuf)> = class_dirs
            .iter()
            .filter_map(|(c, d)| Some((*c, d.path(), fs::canonicalize(d.path()).ok()?)))
            .collect();
        for (i, (c1, p1, r1)) in roots.iter().enumerate() {
            for (c2, p2, r2) in &roots[i + 1..] {
                if c1 != c2 && (r1.starts_with(r2) || r2.starts_with(r1)) {
                    return Err(format!(
                        "{} and {} are the same folder, or one lies inside the other (through a \
                         symbolic link: {} and {}): their photos cannot be labeled; make them \
                         separate folders",
                        p1.display(),
                        p2.display(),
                        r1.display(),
                        r2.display()
                    ));
                }
            }
        }
        for e in &entries {
            let p = e.path();
            match class_dirs.iter().find(|(_, d)| d.path() == p) {
                Some(&(c, _)) => {
                    let others: Vec<PathBuf> = roots
                        .iter()
                        .filter(|r| r.0 != c)
                        .map(|r| r.2.clone())
                        .collect();
                    walk_class_folder(&p, c, &others, &mut seen, &mut candidates, &mut skipped)
                }
                None => skipped.push(Skip {
                    reason: if is_dir(e) {
                        "folder is not a class folder (expected Cat/ or Dog/); not searched".into()
                    } else {
                        "file is outside the Cat/ and Dog/ folders".into()
                    },
                    path: p,
                    label: None,
                }),
            }
        }
    } else {
        let any_named = entries
            .iter()
            .any(|e| !is_dir(e) && class_of_name(&e.file_name().to_string_lossy()).is_some());
        layout = if any_named && !force_unlabeled {
            Layout::Kaggle
        } else {
            Layout::Unlabeled
        };
        for e in &entries {
            let p = e.path();
            let label = match layout {
                Layout::Kaggle => class_of_name(&e.file_name().to_string_lossy()),
                _ => Some(UNLABELED),
            };
            if is_dir(e) {
                skipped.push(Skip {
                    path: p,
                    label: label.filter(|&l| l != UNLABELED),
                    reason: "subfolder (a flat folder's subfolders are not searched)".into(),
                });
            } else if let Some(reason) = extension_problem(&p) {
                skipped.push(Skip {
                    path: p,
                    label: label.filter(|&l| l != UNLABELED),
                    reason,
                });
            } else if let Some(label) = label {
                candidates.push(Candidate { path: p, label });
            } else {
                skipped.push(Skip {
                    path: p,
                    label: None,
                    reason: "name does not start with cat. or dog. (nor cat_, cat-, dog_, dog-); \
                             use --unlabeled to pack a folder without labels"
                        .into(),
                });
            }
        }
    }
    candidates.sort_by(|a, b| {
        (a.label, a.path.as_os_str().as_encoded_bytes())
            .cmp(&(b.label, b.path.as_os_str().as_encoded_bytes()))
    });
    Ok(Listing {
        layout,
        candidates,
        skipped,
    })
}

/// Resize settings.
#[derive(Clone, Copy, Debug)]
pub struct Resize {
    pub width: u32,
    pub height: u32,
    /// Centre-crop to the target aspect ratio first (else squash: aspect not kept).
    pub crop: bool,
    pub filter: fir::FilterType,
}

/// A decoded 8-bit RGB image.
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

fn orient(img: Rgb, o: image::metadata::Orientation) -> Rgb {
    use image::metadata::Orientation as O;
    if o == O::NoTransforms {
        return img;
    }
    let buf = image::RgbImage::from_raw(img.width, img.height, img.pixels).expect("buffer size");
    let mut d = image::DynamicImage::ImageRgb8(buf);
    d.apply_orientation(o);
    let b = d.into_rgb8();
    Rgb {
        width: b.width(),
        height: b.height(),
        pixels: b.into_raw(),
    }
}

fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), String> {
    let px = w as u64 * h as u64;
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    if px > max_pixels {
        return Err(format!(
            "absurd dimensions {w}x{h} ({px} pixels, over the limit of {max_pixels}): \
             possible decompression bomb"
        ));
    }
    Ok(())
}

/// A strict JPEG decoder of `bytes` (any size the format allows; the callers check the pixel
/// count) that outputs `out`.
fn jpeg_decoder(
    bytes: &[u8],
    out: zune_jpeg::zune_core::colorspace::ColorSpace,
) -> zune_jpeg::JpegDecoder<zune_jpeg::zune_core::bytestream::ZCursor<&[u8]>> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(u16::MAX as usize)
        .set_max_height(u16::MAX as usize)
        .jpeg_set_out_colorspace(out);
    zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts)
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<Rgb, String> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    let mut d = jpeg_decoder(bytes, ColorSpace::RGB);
    d.decode_headers()
        .map_err(|e| format!("corrupt JPEG header: {e}"))?;
    let info = d.info().ok_or("corrupt JPEG: no frame header")?;
    let (w, h) = (info.width as u32, info.height as u32);
    check_pixels(w, h, max_pixels)?;
    let orientation = d
        .exif()
        .and_then(|x| image::metadata::Orientation::from_exif_chunk(x))
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let pixels = d.decode().map_err(|e| {
        let e = e.to_string();
        if ["Premature end", "No more bytes", "EOF", "Exhausted data"]
            .iter()
            .any(|k| e.contains(k))
        {
            format!("truncated JPEG: {e}")
        } else {
            format!("corrupt JPEG: {e}")
        }
    })?;
    let (ow, oh) = d
        .dimensions()
        .map(|(a, b)| (a as u32, b as u32))
        .unwrap_or((w, h));
    if d.output_colorspace() != Some(ColorSpace::RGB)
        || pixels.len() != ow as usize * oh as usize * 3
    {
        return Err(format!(
            "JPEG decoded to an unexpected colour layout ({:?}, {} bytes for {ow}x{oh})",
            d.output_colorspace(),
            pixels.len()
        ));
    }
    Ok(orient(
        Rgb {
            width: ow,
            height: oh,
            pixels,
        },
        orientation,
    ))
}

/// Alpha composited over white; any depth, grey, palette: 8-bit RGB.
fn to_rgb8(img: image::DynamicImage) -> Rgb {
    let (w, h) = (img.width(), img.height());
    let pixels = if img.color().has_alpha() {
        let rgba = img.into_rgba8();
        let mut out = Vec::with_capacity(w as usize * h as usize * 3);
        for p in rgba.pixels() {
            let a = p[3] as u32;
            for c in 0..3 {
                out.push(((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8);
            }
        }
        out
    } else {
        img.into_rgb8().into_raw()
    };
    Rgb {
        width: w,
        height: h,
        pixels,
    }
}

fn decode_other(bytes: &[u8], max_pixels: u64) -> Result<Rgb, String> {
    use image::ImageDecoder;
    let format = image::guess_format(bytes).map_err(|_| {
        let head = &bytes[..bytes.len().min(64)];
        if !head.is_empty()
            && head
                .iter()
                .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        {
            "not an image: the file is text".to_string()
        } else {
            format!(
                "not an image: unrecognised content (starts with {:02x?})",
                &bytes[..bytes.len().min(8)]
            )
        }
    })?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let fmt = format!("{format:?}").to_uppercase();
    // A format this build cannot decode (AVIF, say) is not a corrupt file.
    let unsupported = |e: &image::ImageError| {
        matches!(e, image::ImageError::Unsupported(_)).then(|| {
            format!("unsupported image format {fmt} (this tool reads JPEG, PNG, BMP, GIF and WebP)")
        })
    };
    let mut dec = reader
        .into_decoder()
        .map_err(|e| unsupported(&e).unwrap_or_else(|| format!("corrupt {fmt}: {e}")))?;
    let (w, h) = dec.dimensions();
    check_pixels(w, h, max_pixels)?;
    let orientation = dec
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let img = image::DynamicImage::from_decoder(dec).map_err(|e| match e {
        image::ImageError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("truncated {fmt}: {e}")
        }
        _ => unsupported(&e).unwrap_or_else(|| format!("corrupt {fmt}: {e}")),
    })?;
    Ok(orient(to_rgb8(img), orientation))
}

/// Decodes any supported image file's bytes to 8-bit RGB, EXIF orientation applied.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Rgb, String> {
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes, max_pixels)
    } else {
        decode_other(bytes, max_pixels)
    }
}

/// Resizes `img` into `out` (`height * width * 3` bytes, HWC).
pub fn resize_into(
    resizer: &mut fir::Resizer,
    img: Rgb,
    r: &Resize,
    out: &mut [u8],
) -> Result<(), String> {
    let src =
        fir::images::Image::from_vec_u8(img.width, img.height, img.pixels, fir::PixelType::U8x3)
            .map_err(|e| format!("resize: {e}"))?;
    let mut dst = fir::images::Image::from_slice_u8(r.width, r.height, out, fir::PixelType::U8x3)
        .map_err(|e| format!("resize: {e}"))?;
    let mut opts = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(r.filter));
    if r.crop {
        opts = opts.fit_into_destination(Some((0.5, 0.5)));
    }
    resizer
        .resize(&src, &mut dst, &opts)
        .map_err(|e| format!("resize: {e}"))
}

/// Reads one file with the checks a real download needs: it must (still) exist, be a regular
/// file, and be of a sane size.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let m = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                    "broken symbolic link (its target does not exist)".into()
                } else {
                    "vanished: the file was deleted after the folder was listed".into()
                },
            )
        }
        Err(e) => return Err(format!("cannot stat: {e}")),
    };
    if !m.is_file() {
        return Err(if m.is_dir() {
            "is a folder, not a file".into()
        } else {
            "not a regular file (device, pipe or socket)".into()
        });
    }
    if m.len() > MAX_FILE_BYTES {
        return Err(format!(
            "file is {} bytes, more than the {MAX_FILE_BYTES}-byte limit",
            m.len()
        ));
    }
    // O_NONBLOCK: a FIFO swapped in after the check above cannot block the run (it is
    // refused below).
    let mut f = std::os::unix::fs::OpenOptionsExt::custom_flags(
        fs::OpenOptions::new().read(true),
        libc::O_NONBLOCK,
    )
    .open(path)
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "vanished: the file was deleted after the folder was listed".to_string()
        }
        std::io::ErrorKind::PermissionDenied => format!("unreadable: {e}"),
        _ => format!("cannot open: {e}"),
    })?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err("not a regular file (device, pipe or socket)".into());
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    f.by_ref()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("unreadable: {e}"))?;
    Ok(buf)
}

/// What [`load`] keeps from one image to the next on a thread: the pixel limit that refuses an
/// image before it is decoded, the resizer, and the buffers of the JPEG fast path (so that no
/// image pays for fresh memory).
pub struct Loader {
    max_pixels: u64,
    resizer: fir::Resizer,
    /// A decoded JPEG, 4 bytes a pixel (R, G, B, 255).
    rgbx: Vec<u8>,
    /// The same, resized.
    small: Vec<u8>,
}

impl Loader {
    /// Refusing images of more than `max_pixels` pixels.
    pub fn new(max_pixels: u64) -> Self {
        Loader {
            max_pixels,
            resizer: fir::Resizer::new(),
            rgbx: Vec::new(),
            small: Vec::new(),
        }
    }
}

/// The JPEG fast path of [`load`]: decoded to 4 bytes a pixel into a reused buffer, resized as
/// 4-byte pixels, the fourth byte dropped. Resizing 4-byte pixels is about twice as fast as
/// 3-byte ones, and gives the same bytes: every channel goes through the same integer
/// arithmetic (the colour conversion too), which `tests/pack.rs` checks against the general
/// path. `false` when the file needs the general path: a colour space other than YCbCr or
/// grey, an EXIF rotation, or any error (the general path then names it).
fn load_jpeg_rgbx(l: &mut Loader, bytes: &[u8], r: &Resize, out: &mut [u8]) -> bool {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    let mut d = jpeg_decoder(bytes, ColorSpace::RGBA);
    if d.decode_headers().is_err()
        || !matches!(
            d.input_colorspace(),
            Some(ColorSpace::YCbCr | ColorSpace::Luma)
        )
    {
        return false;
    }
    let Some(info) = d.info() else { return false };
    if check_pixels(info.width as u32, info.height as u32, l.max_pixels).is_err() {
        return false;
    }
    let rotated = d
        .exif()
        .and_then(|x| image::metadata::Orientation::from_exif_chunk(x))
        .is_some_and(|o| o != image::metadata::Orientation::NoTransforms);
    if rotated {
        return false;
    }
    let Some(len) = d.output_buffer_size() else {
        return false;
    };
    l.rgbx.resize(len, 0);
    if d.decode_into(&mut l.rgbx).is_err() || d.output_colorspace() != Some(ColorSpace::RGBA) {
        return false;
    }
    let Some((w, h)) = d.dimensions().map(|(a, b)| (a as u32, b as u32)) else {
        return false;
    };
    if len != w as usize * h as usize * 4 {
        return false;
    }
    let Ok(src) = fir::images::ImageRef::new(w, h, &l.rgbx, fir::PixelType::U8x4) else {
        return false;
    };
    l.small.resize(r.width as usize * r.height as usize * 4, 0);
    let Ok(mut dst) =
        fir::images::Image::from_slice_u8(r.width, r.height, &mut l.small, fir::PixelType::U8x4)
    else {
        return false;
    };
    // No alpha: the fourth byte is not a weight for the other three.
    let mut opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(r.filter))
        .use_alpha(false);
    if r.crop {
        opts = opts.fit_into_destination(Some((0.5, 0.5)));
    }
    if l.resizer.resize(&src, &mut dst, &opts).is_err() {
        return false;
    }
    drop_fourth(&l.small, out);
    true
}

/// `out` (3 bytes a pixel) from `src` (4 bytes a pixel, the fourth dropped): two pixels at a
/// time as one 8-byte word, stored whole (its last 2 bytes are overwritten by the next pair).
fn drop_fourth(src: &[u8], out: &mut [u8]) {
    let n = out.len() / 3;
    let pairs = n.saturating_sub(2) / 2; // the last 8-byte store ends at least 4 bytes early
    for (i, two) in src.chunks_exact(8).take(pairs).enumerate() {
        let v = u64::from_le_bytes(two.try_into().expect("8 bytes"));
        let w = (v & 0xFF_FFFF) | ((v >> 8) & 0xFFFF_FF00_0000);
        out[6 * i..6 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    for p in 2 * pairs..n {
        out[3 * p..3 * p + 3].copy_from_slice(&src[4 * p..4 * p + 3]);
    }
}

/// Reads, decodes and resizes one file into `out`.
pub fn load(l: &mut Loader, path: &Path, r: &Resize, out: &mut [u8]) -> Result<(), String> {
    load_bytes(l, &read_file(path)?, r, out)
}

/// [`load`] without the JPEG fast path: decoded to 3 bytes a pixel, EXIF orientation applied,
/// resized. Public so that tests can check the fast path against it.
pub fn load_general(
    l: &mut Loader,
    bytes: &[u8],
    r: &Resize,
    out: &mut [u8],
) -> Result<(), String> {
    let img = decode(bytes, l.max_pixels)?;
    resize_into(&mut l.resizer, img, r, out)
}

/// [`load`] on a file's bytes, already read (the tests compare it with [`load_general`]).
pub fn load_bytes(l: &mut Loader, bytes: &[u8], r: &Resize, out: &mut [u8]) -> Result<(), String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && load_jpeg_rgbx(l, bytes, r, out) {
        return Ok(());
    }
    load_general(l, bytes, r, out)
}

/// SplitMix64: a small, fully specified PRNG, so a seed means the same split on every platform
/// and every version of every crate.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), by rejection: no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// How many test samples to take.
#[derive(Clone, Copy, Debug)]
pub enum TestSize {
    Count(usize),
    Fraction(f64),
}

/// Splits `items` (label of each, in listing order) into (train, test) index lists, stratified by
/// label: every class gives its share of the test set (largest remainder), picked at random with
/// `seed`; both lists are then shuffled with the same generator. Deterministic.
pub fn split(
    labels: &[u8],
    test: Option<TestSize>,
    seed: u64,
    shuffle: bool,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let n = labels.len();
    let n_test = match test {
        None => 0,
        Some(TestSize::Count(k)) => k,
        Some(TestSize::Fraction(f)) => (f * n as f64).round() as usize,
    };
    if n_test > n {
        return Err(format!(
            "--test {n_test} asks for more samples than the {n} packed"
        ));
    }
    // An empty blob is of no use to the trainer, which refuses it: refused here, not later.
    if test.is_some() && n_test == 0 {
        return Err(format!(
            "the split puts no sample of the {n} packed in test.bin; ask for at least one \
             (--test N), or leave out --test and --test-fraction to write one blob"
        ));
    }
    if test.is_some() && n_test == n {
        return Err(format!(
            "the split puts all {n} packed samples in test.bin and none in train.bin; ask for \
             fewer (--test N below {n}), or leave out --test and --test-fraction to write one \
             blob"
        ));
    }
    let mut rng = SplitMix64(seed);
    let mut classes: Vec<u8> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let mut by_class: Vec<Vec<usize>> = classes
        .iter()
        .map(|&c| (0..n).filter(|&i| labels[i] == c).collect())
        .collect();
    // Largest-remainder allocation of n_test over the classes.
    let mut take: Vec<usize> = by_class
        .iter()
        .map(|v| v.len() * n_test / n.max(1))
        .collect();
    let mut rem: Vec<(usize, usize)> = by_class
        .iter()
        .enumerate()
        .map(|(c, v)| (v.len() * n_test % n.max(1), c))
        .collect();
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut short = n_test - take.iter().sum::<usize>();
    for &(_, c) in &rem {
        if short == 0 {
            break;
        }
        if take[c] < by_class[c].len() {
            take[c] += 1;
            short -= 1;
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (c, v) in by_class.iter_mut().enumerate() {
        rng.shuffle(v);
        test.extend_from_slice(&v[..take[c]]);
        train.extend_from_slice(&v[take[c]..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    if shuffle {
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
    }
    Ok((train, test))
}

/// The payload CRC-32 of the blob [`write_set`] writes for `order` (what a sibling records).
pub fn set_crc(staging: &[u8], image_len: usize, order: &[usize]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for &i in order {
        h.update(&staging[i * image_len..(i + 1) * image_len]);
    }
    h.finalize()
}

/// Writes one blob of RGB images from slots of a staging buffer (slot i = candidate i), under
/// its temporary name: [`PendingBlob::commit`] renames it into place. `sibling`: the other blob
/// of a train/test pair.
#[allow(clippy::too_many_arguments)]
pub fn write_set(
    path: &Path,
    staging: &[u8],
    (width, height): (u32, u32),
    sources: &[Vec<u8>],
    labels: &[u8],
    order: &[usize],
    note: String,
    sibling: Option<Sibling>,
) -> Result<PendingBlob, String> {
    let image_len = width as usize * height as usize * 3;
    let meta = BlobMeta {
        height,
        width,
        channels: 3,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        labels: order.iter().map(|&i| labels[i]).collect(),
        sources: order.iter().map(|&i| sources[i].clone()).collect(),
        note,
    };
    let mut w = BlobWriter::create_paired(path, &meta, sibling)?;
    for &i in order {
        w.push(&staging[i * image_len..(i + 1) * image_len])?;
    }
    w.finish_unrenamed()
}

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("bad size {s:?}: expected N or WxH, e.g. 128 or 128x128");
    let (w, h) = match s.split_once(['x', 'X']) {
        Some((w, h)) => (
            w.trim().parse().map_err(|_| bad())?,
            h.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(format!("bad size {s:?}: each side must be 1 to 8192"));
    }
    Ok((w, h))
}

/// `--filter` names.
pub fn parse_filter(s: &str) -> Result<fir::FilterType, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "box" => fir::FilterType::Box,
        "bilinear" | "triangle" => fir::FilterType::Bilinear,
        "hamming" => fir::FilterType::Hamming,
        "catmull-rom" | "catmullrom" | "bicubic" => fir::FilterType::CatmullRom,
        "mitchell" => fir::FilterType::Mitchell,
        "lanczos3" | "lanczos" => fir::FilterType::Lanczos3,
        _ => {
            return Err(format!(
                "unknown filter {s:?}: box, bilinear, hamming, catmull-rom, mitchell, lanczos3"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_exact() {
        let labels: Vec<u8> = (0..103).map(|i| (i % 3 == 0) as u8).collect();
        let (tr, te) = split(&labels, Some(TestSize::Count(10)), 7, true).unwrap();
        assert_eq!(te.len(), 10);
        assert_eq!(tr.len() + te.len(), 103);
        let dogs = te.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!(dogs, 3); // 35 dogs of 103: 3.4 -> 3
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert_eq!(
            split(&labels, Some(TestSize::Count(10)), 7, true).unwrap(),
            (tr, te)
        );
    }

    #[test]
    fn kaggle_names() {
        assert_eq!(class_of_name("cat.1.jpg"), Some(0));
        assert_eq!(class_of_name("DOG_7.png"), Some(1));
        assert_eq!(class_of_name("dog-x.gif"), Some(1));
        assert_eq!(class_of_name("category.jpg"), None);
        assert_eq!(class_of_name("cat"), None);
        assert_eq!(class_of_name("hotdog.jpg"), None);
        assert_eq!(class_of_name("çat.jpg"), None);
    }

    /// The JPEG fast path of `load` (4-byte pixels) gives the general path's bytes, for every
    /// chroma subsampling, grey, progressive, odd sizes, up- and downscaling, crop and filters.
    #[test]
    fn jpeg_fast_path_matches_general_path() {
        use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
        let mut fast = Loader::new(DEFAULT_MAX_PIXELS);
        let mut general = Loader::new(DEFAULT_MAX_PIXELS);
        let mut checked = 0;
        for (k, &(w, h)) in [(333u16, 251u16), (64, 48), (17, 129), (500, 374)]
            .iter()
            .enumerate()
        {
            // Smooth fields plus a hash: edges and noise, as photos have.
            let px: Vec<u8> = (0..w as usize * h as usize * 3)
                .map(|i| {
                    let (p, c) = (i / 3, i % 3);
                    let (x, y) = (p % w as usize, p / w as usize);
                    let noise = (p.wrapping_mul(2654435761) >> 13) % 48;
                    ((x * (c + 1) + y * 2 + noise) % 256) as u8
                })
                .collect();
            for (sampling, grey, progressive) in [
                (SamplingFactor::F_1_1, false, false),
                (SamplingFactor::F_2_1, false, false),
                (SamplingFactor::F_2_2, false, true),
                (SamplingFactor::F_1_2, false, false),
                (SamplingFactor::F_1_1, true, false),
            ] {
                let mut jpeg = Vec::new();
                let mut enc = Encoder::new(&mut jpeg, 85);
                enc.set_sampling_factor(sampling);
                enc.set_progressive(progressive);
                if grey {
                    let luma: Vec<u8> = px.chunks(3).map(|p| p[1]).collect();
                    enc.encode(&luma, w, h, ColorType::Luma).unwrap();
                } else {
                    enc.encode(&px, w, h, ColorType::Rgb).unwrap();
                }
                for (size, crop, filter) in [
                    (128, false, fir::FilterType::Bilinear),
                    (128, true, fir::FilterType::Lanczos3),
                    (40, false, fir::FilterType::Box),
                    (200, k % 2 == 0, fir::FilterType::CatmullRom),
                ] {
                    let r = Resize {
                        width: size,
                        height: size,
                        crop,
                        filter,
                    };
                    let n = size as usize * size as usize * 3;
                    let (mut a, mut b) = (vec![1u8; n], vec![2u8; n]);
                    assert!(load_jpeg_rgbx(&mut fast, &jpeg, &r, &mut a));
                    load_general(&mut general, &jpeg, &r, &mut b).unwrap();
                    assert!(
                        a == b,
                        "{w}x{h} {sampling:?} grey {grey} -> {size} {crop} {filter:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 80);
    }

    #[test]
    fn drop_fourth_keeps_three_bytes_a_pixel() {
        for n in 0..20 {
            let src: Vec<u8> = (0..4 * n as u8).map(|b| b ^ 0xA5).collect();
            let mut out = vec![0u8; 3 * n];
            drop_fourth(&src, &mut out);
            let want: Vec<u8> = src.chunks(4).flat_map(|p| p[..3].to_vec()).collect();
            assert_eq!(out, want, "{n} pixels");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("128").unwrap(), (128, 128));
        assert_eq!(parse_size("64x32").unwrap(), (64, 32));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12x").is_err());
    }
}

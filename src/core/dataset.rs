//! What the training loop reads samples from: a memory-mapped blob made by `tools/pack`, or
//! synthetic images for benchmarks and tests.

use crate::blob::Blob;
use crate::rng::Rng;
use std::path::Path;

/// Images (HWC u8, all the same size) and one label per image (0 cat, 1 dog, 255 unlabeled).
pub trait Dataset: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn image(&self, i: usize) -> &[u8];
    fn labels(&self) -> &[u8];
    /// `Err` naming the file and what changed when the data on disk is no longer what was
    /// opened (see [`Blob::check_unchanged`]); data in memory never changes.
    fn check_unchanged(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Dataset for Blob {
    fn len(&self) -> usize {
        Blob::len(self)
    }
    fn image(&self, i: usize) -> &[u8] {
        Blob::image(self, i)
    }
    fn labels(&self) -> &[u8] {
        Blob::labels(self)
    }
    fn check_unchanged(&self) -> Result<(), String> {
        Blob::check_unchanged(self).map_err(|e| {
            format!(
                "{}: the blob changed while this run was reading it: {e}",
                self.path().display()
            )
        })
    }
}

/// Images held in memory: random ones with a learnable signal ([`Synthetic::new`]: dogs are
/// brighter in the red channel), or given ones ([`Synthetic::from_images`]).
pub struct Synthetic {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    image_bytes: usize,
}

impl Synthetic {
    pub fn new(n: usize, size: usize, seed: u64) -> Self {
        let image_bytes = size * size * 3;
        let mut rng = Rng::new(seed);
        let mut pixels = vec![0u8; n * image_bytes];
        let mut labels = vec![0u8; n];
        for (i, img) in pixels.chunks_exact_mut(image_bytes).enumerate() {
            let dog = rng.next_u64() & 1;
            labels[i] = dog as u8;
            for (j, p) in img.iter_mut().enumerate() {
                let noise = (rng.next_u64() >> 57) as u8; // 0..127
                *p = noise + if j % 3 == 0 && dog == 1 { 100 } else { 40 };
            }
        }
        Self::from_images(pixels, labels, image_bytes)
    }

    /// `labels.len()` images of `image_bytes` each, one after the other in `pixels`.
    pub fn from_images(pixels: Vec<u8>, labels: Vec<u8>, image_bytes: usize) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * image_bytes,
            "pixels of every image"
        );
        Self {
            pixels,
            labels,
            image_bytes,
        }
    }
}

impl Dataset for Synthetic {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_bytes..(i + 1) * self.image_bytes]
    }
    fn labels(&self) -> &[u8] {
        &self.labels
    }
}

/// Opens a blob for training or evaluation at `image` x `image` (None: whatever the blob has),
/// with errors that tell the user what to do.
pub fn open_blob(path: &Path, what: &str, need_labels: bool) -> Result<Blob, String> {
    if let Err(e) = std::fs::metadata(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            // A symbolic link loop, a folder without permission: not "missing".
            return Err(format!("{}: cannot open {what} data: {e}", path.display()));
        }
        return Err(format!(
            "{}: {what} data not found; {}",
            path.display(),
            make_hint(path)
        ));
    }
    let blob = Blob::open(path).map_err(|e| e.to_string())?;
    if blob.is_empty() {
        return Err(format!(
            "{}: the {what} blob holds no samples",
            path.display()
        ));
    }
    let (h, w, c) = blob.dims();
    if c != 3 || h != w {
        return Err(format!(
            "{}: images are {h}x{w}x{c}; the network takes square RGB images",
            path.display()
        ));
    }
    if need_labels {
        if let Some(i) = blob.labels().iter().position(|&l| l > 1) {
            let l = blob.labels()[i];
            let is = if l == crate::blob::UNLABELED {
                "is unlabeled".to_string()
            } else {
                format!("has label {l}, a class this network does not have")
            };
            return Err(format!(
                "{}: sample {i} ({}) {is}; {what} needs data labeled 0 (cat) or 1 (dog)",
                path.display(),
                blob.source(i)
            ));
        }
    }
    Ok(blob)
}

/// A command that makes the blob `path` names from a folder of photos: a split into
/// `train.bin` and `test.bin` when it is one of those, else a single blob under that name.
pub fn make_hint(path: &Path) -> String {
    let dir = path
        .parent()
        .map(|p| p.display().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ".".into());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match name.as_deref() {
        Some("train.bin" | "test.bin") => format!(
            "make it (both train.bin and test.bin) from a folder of photos with \
             `tools/pack PHOTO_DIR --test-fraction 0.2 -o {dir}`, or download and pack \
             Microsoft's PetImages with `tools/pack --fetch petimages -o {dir}`"
        ),
        _ => format!(
            "make it from a folder of photos with `tools/pack PHOTO_DIR -o {}`",
            path.display()
        ),
    }
}

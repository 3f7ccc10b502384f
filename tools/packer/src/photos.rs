//! `tools/pack photos INPUT... -o OUT.bin`: photos and folders of photos, in the order given,
//! into one unlabeled blob. `model predict` uses it to read photos (the trainer has no decoder).

use crate::{load, scan, Loader, Resize, Skip};
use catdog_core::blob::{BlobMeta, BlobWriter, CLASS_NAMES, UNLABELED};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The image files named by `inputs`: a file as it is (decoded by content, whatever its name), a
/// folder's images in name order (flat; what is not an image is skipped with a reason).
pub fn list(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Skip>), String> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in inputs {
        let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.is_dir() {
            let l = scan(p, true)?;
            files.extend(l.candidates.into_iter().map(|c| c.path));
            skipped.extend(l.skipped);
        } else {
            files.push(p.clone());
        }
    }
    Ok((files, skipped))
}

/// Decodes `files` at `r`'s size and writes the ones that decode to `out` (unlabeled, sources
/// = the paths as given). Returns how many were packed and the files skipped, with reasons.
pub fn pack(
    files: &[PathBuf],
    r: &Resize,
    max_pixels: u64,
    out: &Path,
) -> Result<(usize, Vec<Skip>), String> {
    let il = r.width as usize * r.height as usize * 3;
    let decoded: Vec<Result<Vec<u8>, String>> = files
        .par_iter()
        .map_init(
            || Loader::new(max_pixels),
            |ld, p| {
                let mut px = vec![0u8; il];
                load(ld, p, r, &mut px).map(|()| px)
            },
        )
        .collect();
    let mut skipped = Vec::new();
    let mut good = Vec::new();
    for (p, d) in files.iter().zip(decoded) {
        match d {
            Ok(px) => good.push((p, px)),
            Err(reason) => skipped.push(Skip {
                path: p.clone(),
                label: None,
                reason,
            }),
        }
    }
    if good.is_empty() {
        return Ok((0, skipped));
    }
    let meta = BlobMeta {
        height: r.height,
        width: r.width,
        channels: 3,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        labels: vec![UNLABELED; good.len()],
        sources: good
            .iter()
            .map(|(p, _)| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
            .collect(),
        note: format!(
            "tools/pack {}: photos, {} given, {}x{}, squashed, unlabeled",
            env!("CARGO_PKG_VERSION"),
            files.len(),
            r.width,
            r.height
        ),
    };
    let mut w = BlobWriter::create(out, &meta)?;
    for (_, px) in &good {
        w.push(px)?;
    }
    w.finish()?;
    Ok((good.len(), skipped))
}

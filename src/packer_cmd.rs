//! The packer (`tools/pack`) from `model`: the trainer never decodes an image itself, so
//! fetching the default data set goes through the packer's binary, found beside `model`, and
//! reading photos for `predict` through the packer's library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The public data set fetched when the default data is missing.
pub const PETIMAGES_URL: &str = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip";

/// The packer's binary: `CATDOG_PACK` if set; else `pack` beside this executable
/// (`target/release/`), or under `target/release/` beside it (`./model` at the repository root,
/// as `build.sh` leaves it); else the `tools/pack` launcher there or in the current folder
/// (it builds the packer first).
pub fn find_packer() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CATDOG_PACK") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let mut candidates = vec![dir.join("pack"), dir.join("target/release/pack")];
    if let Some(t) = target {
        candidates.push(t.join("release/pack"));
    }
    candidates.push(dir.join("tools/pack"));
    candidates.push(PathBuf::from("tools/pack"));
    candidates.into_iter().find(|p| p.is_file())
}

/// The commands that do by hand what the first run does: download, unzip, pack.
pub fn manual_commands(out: &Path) -> String {
    format!(
        "to do it by hand: download {PETIMAGES_URL} , unzip it, then run `tools/pack DIR/PetImages \
         --test-fraction 0.2 -o {}`",
        out.display()
    )
}

/// Fetches and packs Microsoft's PetImages into `out` (`train.bin`, `test.bin`) with
/// `pack --fetch petimages -o OUT`. The packer prints its own progress and, on failure, its own
/// one-line error with the manual commands; then this returns `Err(None)`. `Err(Some(msg))`:
/// the packer could not be started.
pub fn fetch_default_data(out: &Path) -> Result<(), Option<String>> {
    let Some(pack) = find_packer() else {
        return Err(Some(format!(
            "cannot find the packer (target/release/pack) to fetch the data: build it with \
             ./build.sh; or {}",
            manual_commands(out)
        )));
    };
    let status = Command::new(&pack)
        .arg("--fetch")
        .arg("petimages")
        .arg("-o")
        .arg(out)
        .status()
        .map_err(|e| {
            Some(format!(
                "cannot run the packer {}: {e}; {}",
                pack.display(),
                manual_commands(out)
            ))
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(None)
    }
}

/// Packs photos and folders of photos into one unlabeled blob at `out`, decoded and resized
/// (squashed, bilinear) to `size` x `size` by the packer's library, as `pack photos` does;
/// skipped files are named on stderr. The trainer itself (the core crate) never decodes an
/// image: only this product-side command does, through the packer.
pub fn pack_photos(inputs: &[PathBuf], out: &Path, size: usize) -> Result<(), String> {
    let resize = packer::Resize {
        width: size as u32,
        height: size as u32,
        crop: false,
        filter: packer::parse_filter("bilinear")?,
    };
    let (files, mut skipped) = packer::photos::list(inputs)?;
    let (n, more) = packer::photos::pack(&files, &resize, packer::DEFAULT_MAX_PIXELS, out)?;
    skipped.extend(more);
    for s in &skipped {
        crate::errln!(
            "skipped {}: {}",
            crate::guard::escape_path(&s.path),
            s.reason
        )?;
    }
    if n == 0 {
        return Err(format!(
            "none of the {} files given could be read as an image",
            files.len()
        ));
    }
    Ok(())
}

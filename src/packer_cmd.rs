//! Running the packer (`tools/pack`) from `model`: the trainer never decodes an image itself, so
//! fetching the default data set and reading photos for `predict` go through the packer's
//! binary, found beside `model`.

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

/// Packs photos and folders of photos into one unlabeled blob at `out` with
/// `pack photos INPUT... -o OUT`; the packer reports skipped files on stderr.
pub fn pack_photos(inputs: &[PathBuf], out: &Path, size: usize) -> Result<(), String> {
    let pack = find_packer().ok_or_else(|| {
        "cannot find the packer (target/release/pack), which decodes photos for predict: build \
         it with ./build.sh, or pack them yourself with tools/pack FOLDER -o data/mine.bin"
            .to_string()
    })?;
    let o = Command::new(&pack)
        .arg("photos")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .arg("--size")
        .arg(size.to_string())
        .arg("--quiet")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run the packer {}: {e}", pack.display()))?;
    let err = String::from_utf8_lossy(&o.stderr);
    // Skipped files are worth seeing; the packer's own error line becomes ours.
    for line in err.lines().filter(|l| l.starts_with("skipped ")) {
        eprintln!("{line}");
    }
    if o.status.success() {
        Ok(())
    } else {
        let msg = err
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("pack: error: "))
            .unwrap_or("the packer failed");
        Err(msg.to_string())
    }
}

//! The `pack` binary for tests that drive `model` with photos: built (if needed) into the same
//! folder as `model`, where `model` looks for it, as `./model` finds target/release/pack.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn pack_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let model = PathBuf::from(env!("CARGO_BIN_EXE_model"));
        let profile_dir = model.parent().unwrap().to_path_buf();
        let target = profile_dir.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--release", "-q", "-p", "packer", "--bin", "pack"])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .status()
            .expect("run cargo");
        assert!(st.success(), "building the packer failed");
        let p = profile_dir.join("pack");
        assert!(p.is_file(), "{} was not built", p.display());
        p
    })
}

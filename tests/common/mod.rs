//! Fixtures shared by the integration tests that drive the `model` binary.

// Not every test crate that includes this module uses every fixture.
#![allow(dead_code)]

use catdog::blob::{write_blob, BlobMeta};
use catdog::dataset::{Dataset, Synthetic};
use std::path::{Path, PathBuf};

/// A fresh, empty temporary folder for one test.
pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("catdog-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh empty folder for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `catdog-TAG-PID-NAME` in the system's temporary folder.
    pub fn new(tag: &str, name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("catdog-{tag}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    /// The path of `f` inside the folder.
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A labeled blob of `n` synthetic `size` x `size` images (dogs redder), as `tools/pack` writes,
/// with sources named `synthetic/I.png`.
pub fn synthetic_blob(path: &Path, n: usize, size: usize, seed: u64) {
    let s = Synthetic::new(n, size, seed);
    let meta = BlobMeta {
        height: size as u32,
        width: size as u32,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: s.labels().to_vec(),
        sources: (0..n)
            .map(|i| format!("synthetic/{i}.png").into())
            .collect(),
        note: "synthetic".into(),
    };
    write_blob(path, &meta, (0..n).map(|i| s.image(i))).unwrap();
}

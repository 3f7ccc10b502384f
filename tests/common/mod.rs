//! Fixtures shared by the integration tests that drive the `model` binary.

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

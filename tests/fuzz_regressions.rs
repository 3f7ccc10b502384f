//! The fuzz corpora (`tests/fuzz/corpus/<target>/`, see `tests/fuzz/README.md`) replayed through
//! the fuzz targets' own checks (`tests/fuzz/checks.rs`), on every `cargo test`; any input a fuzzer ever crashed
//! on is kept in a corpus (named `crash-*`) or below as a case of its own. Also: the in-memory
//! entry points the targets use (`Blob::from_bytes`, `parameters::parse_raw`) agree with the
//! file readers.

#[path = "fuzz/checks.rs"]
mod checks;

use catdog::blob::{write_blob, Blob, BlobMeta, Verify};
use catdog::parameters::{parse_raw, read_raw};
use checks::small_shapes;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "{} is empty", d.display());
    v
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("catdog-fuzzreg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Replays corpus `target` through `check` (1 for an input it accepts, 0 for one it refuses
/// cleanly; a panic fails the test), and asserts that the corpus still holds some `accepted`.
fn replay(target: &str, check: impl Fn(&[u8]) -> usize, accepted: &str) {
    let n: usize = corpus(target).iter().map(|(_, b)| check(b)).sum();
    assert!(n > 0, "no {accepted} left in the corpus");
}

#[test]
fn blob_corpus_is_refused_or_read_in_bounds() {
    replay("blob", checks::blob, "valid blob");
}

#[test]
fn checkpoint_corpus_is_refused_or_consistent() {
    replay("checkpoint", checks::checkpoint, "valid checkpoint");
}

#[test]
fn parameter_corpus_is_refused_or_finite() {
    replay("parameters", checks::parameters, "valid parameter file");
}

#[test]
fn cli_corpus_parses_or_errs() {
    replay("cli", |b| checks::cli(b) as usize, "accepted command line");
}

/// `Blob::from_bytes` is `Blob::open` without the file: same verdicts and messages, for a
/// valid blob and every truncation of it.
#[test]
fn blob_from_bytes_agrees_with_open() {
    let d = tmp("blob");
    let p = d.join("a.bin");
    let meta = BlobMeta {
        height: 2,
        width: 3,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: vec![0, 1, 255],
        sources: vec!["a".into(), "bé".into(), "".into()],
        note: "n".into(),
    };
    let imgs = [[1u8; 18], [2; 18], [3; 18]];
    write_blob(&p, &meta, imgs.iter().map(|v| &v[..])).unwrap();
    let good = std::fs::read(&p).unwrap();
    let b = Blob::from_bytes(&good, &p, Verify::All).unwrap();
    assert_eq!(b.labels(), &meta.labels[..]);
    assert_eq!(b.source(1), "bé");
    assert_eq!(b.image(2), &imgs[2][..]);
    let q = d.join("b.bin");
    for len in 0..good.len() {
        std::fs::write(&q, &good[..len]).unwrap();
        let from_file = Blob::open(&q).unwrap_err();
        let from_bytes = Blob::from_bytes(&good[..len], &q, Verify::All).unwrap_err();
        assert_eq!(from_file, from_bytes, "truncated to {len}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// `parse_raw` is `read_raw` without the file; a too-short output buffer is an error, not a
/// panic.
#[test]
fn parse_raw_agrees_with_read_raw() {
    let shapes = small_shapes();
    let n = shapes.param_count();
    let d = tmp("params");
    let p = d.join("p.raw");
    let mut bytes: Vec<u8> = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
    std::fs::write(&p, &bytes).unwrap();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    read_raw(&p, &shapes, &mut a).unwrap();
    parse_raw(&bytes, &shapes, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(parse_raw(&bytes, &shapes, &mut vec![0.0; n - 1])
        .unwrap_err()
        .contains("room for"));
    bytes[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = read_raw(&p, &shapes, &mut a).unwrap_err();
    assert_eq!(
        e,
        format!(
            "{}: {}",
            p.display(),
            parse_raw(&bytes, &shapes, &mut b).unwrap_err()
        )
    );
    assert!(e.contains("value 2 (in conv1_w)"), "{e}");
    assert!(parse_raw(&bytes[1..], &shapes, &mut b).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

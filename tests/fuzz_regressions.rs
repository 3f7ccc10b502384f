//! The fuzz corpora (`tests/fuzz/corpus/<target>/`, see `tests/fuzz/README.md`) replayed through
//! the same checks as the fuzz targets, on every `cargo test`; any input a fuzzer ever crashed
//! on is kept in a corpus (named `crash-*`) or below as a case of its own. Also: the in-memory
//! entry points the targets use (`Blob::from_bytes`, `parameters::parse_raw`) agree with the
//! file readers.

use catdog::blob::{write_blob, Blob, BlobMeta, Verify};
use catdog::checkpoint::{check_compatible, decode};
use catdog::cli::{hyper, recipe, Cli, Command};
use catdog::config::{Hyper, Shapes};
use catdog::parameters::{parse_raw, read_raw};
use clap::Parser;
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

/// What the blob target checks of one input.
fn blob_case(data: &[u8]) -> bool {
    let mut ok = false;
    for verify in [Verify::All, Verify::MetadataOnly] {
        let Ok(b) = Blob::from_bytes(data, Path::new("fuzz.bin"), verify) else {
            continue;
        };
        ok = true;
        assert_eq!(b.labels().len(), b.len());
        assert_eq!(b.payload().len(), b.len() * b.image_len());
        for i in 0..b.len() {
            assert_eq!(b.image(i).len(), b.image_len());
            let _ = b.source(i);
        }
        let counts = b.label_counts();
        assert_eq!(counts.len(), b.class_names().len() + 1);
        assert_eq!(counts.iter().sum::<usize>(), b.len());
    }
    ok
}

fn small_shapes() -> Shapes {
    Hyper {
        image: 8,
        widths: [16, 16, 16],
        fc1: 16,
        ..Hyper::default()
    }
    .shapes()
    .unwrap()
}

#[test]
fn blob_corpus_is_refused_or_read_in_bounds() {
    let c = corpus("blob");
    let accepted = c.iter().filter(|(_, b)| blob_case(b)).count();
    assert!(accepted > 0, "no valid blob left in the corpus");
}

#[test]
fn checkpoint_corpus_is_refused_or_consistent() {
    let mut accepted = 0;
    for (p, data) in corpus("checkpoint") {
        if let Ok(ck) = decode(&data) {
            accepted += 1;
            let shapes = ck.hyper.shapes().unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!(ck.params.len(), shapes.param_count(), "{p:?}");
            assert!(ck.velocity.is_empty() || ck.velocity.len() == ck.params.len());
            let _ = check_compatible(&ck, &Hyper::default());
        }
    }
    assert!(accepted > 0, "no valid checkpoint left in the corpus");
}

#[test]
fn parameter_corpus_is_refused_or_finite() {
    let shapes = small_shapes();
    let n = shapes.param_count();
    let mut accepted = 0;
    for (_, data) in corpus("parameters") {
        let mut params = vec![0.0f32; n];
        if parse_raw(&data, &shapes, &mut params).is_ok() {
            accepted += 1;
            assert!(params.iter().all(|v| v.is_finite()));
        }
        assert!(parse_raw(&data, &shapes, &mut vec![0.0; n - 1]).is_err());
    }
    assert!(accepted > 0, "no valid parameter file left in the corpus");
}

#[test]
fn cli_corpus_parses_or_errs() {
    for (_, data) in corpus("cli") {
        let args = std::iter::once("model".to_string()).chain(
            data.split(|b| *b == 0 || b.is_ascii_whitespace())
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned()),
        );
        if let Ok(Cli {
            command: Some(Command::Train(a)),
        }) = Cli::try_parse_from(args)
        {
            if let Ok(mut h) = hyper(&a.arch, 128, a.batch_size) {
                h.epochs = a.epochs;
                h.lr = a.lr;
                let _ = h.shapes();
            }
            let _ = recipe(&a);
        }
    }
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

//! What each fuzz target checks of one input, shared by the targets in `fuzz_targets/` and by
//! `tests/fuzz_regressions.rs`, which replays the committed corpora through the same functions
//! on every `cargo test`. Every function panics only when a reader misbehaves.

#![allow(dead_code)] // each target uses one function

use catdog::blob::{Blob, Verify};
use catdog::checkpoint::{self, check_compatible, decode};
use catdog::cli::{hyper, recipe, Command};
use catdog::config::{ConvDims, Hyper, Shapes};
use catdog::parameters::parse_raw;
use std::path::Path;

/// The blob reader: each input as it is and, so that mutations get past the checksums, with
/// both CRCs recomputed. When a blob is accepted, every accessor must stay in bounds.
/// Returns how many of the variants were accepted.
pub fn blob(data: &[u8]) -> usize {
    let mut ok = blob_one(data);
    let mut sealed = data.to_vec();
    if sealed.len() >= 64 {
        let po = (u64::from_le_bytes(sealed[48..56].try_into().unwrap()) as usize)
            .clamp(16, sealed.len());
        let pc = crc32fast::hash(&sealed[po..]);
        sealed[56..60].copy_from_slice(&pc.to_le_bytes());
        let hc = crc32fast::hash(&sealed[16..po]);
        sealed[12..16].copy_from_slice(&hc.to_le_bytes());
    }
    if sealed != data {
        ok += blob_one(&sealed);
    }
    ok
}

fn blob_one(data: &[u8]) -> usize {
    let mut ok = 0;
    for verify in [Verify::All, Verify::MetadataOnly] {
        let Ok(b) = Blob::from_bytes(data, Path::new("fuzz.bin"), verify) else {
            continue;
        };
        ok += 1;
        let (h, w, c) = b.dims();
        assert_eq!(b.image_len(), h * w * c);
        assert_eq!(b.labels().len(), b.len());
        assert_eq!(b.payload().len(), b.len() * b.image_len());
        for i in 0..b.len() {
            assert_eq!(b.image(i).len(), b.image_len());
            std::hint::black_box(b.source(i));
        }
        let counts = b.label_counts();
        assert_eq!(counts.len(), b.class_names().len() + 1);
        assert_eq!(counts.iter().sum::<usize>(), b.len());
        std::hint::black_box((b.note(), b.header(), b.verify_payload().is_ok()));
    }
    ok
}

/// The checkpoint reader: each input as it is; with both CRCs recomputed; and, so that a short
/// input reaches the checks behind the size check, zero-extended (or cut) to the size its header
/// declares (up to 1 MiB) and resealed. An accepted checkpoint must be consistent with its own
/// hyperparameters. Returns how many of the variants were accepted.
pub fn checkpoint(data: &[u8]) -> usize {
    const H: usize = checkpoint::HEADER_LEN;
    let mut ok = checkpoint_one(data);
    let reseal = |b: &mut Vec<u8>| {
        if b.len() >= H {
            let hc = crc32fast::hash(&b[..H - 4]);
            b[H - 4..H].copy_from_slice(&hc.to_le_bytes());
        }
        if b.len() >= H + 4 {
            let body = b.len() - 4;
            let c = crc32fast::hash(&b[..body]);
            b[body..].copy_from_slice(&c.to_le_bytes());
        }
    };
    let mut sealed = data.to_vec();
    reseal(&mut sealed);
    if sealed != data {
        ok += checkpoint_one(&sealed);
    }
    if data.len() >= H {
        let count = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
        let (p, v, h) = (count(128), count(136), count(144));
        let want = p
            .checked_add(v)
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(h.checked_mul(checkpoint::RECORD_LEN as u64)?))
            .and_then(|n| n.checked_add(H as u64 + 4))
            .filter(|&n| n <= 1 << 20 && n != data.len() as u64);
        if let Some(want) = want {
            let mut sized = data.to_vec();
            sized.resize(want as usize, 0);
            reseal(&mut sized);
            ok += checkpoint_one(&sized);
        }
    }
    ok
}

fn checkpoint_one(data: &[u8]) -> usize {
    let Ok(ck) = decode(data) else { return 0 };
    let shapes = ck
        .hyper
        .shapes()
        .expect("decode accepted unusable hyperparameters");
    assert_eq!(ck.params.len(), shapes.param_count());
    assert!(ck.velocity.is_empty() || ck.velocity.len() == ck.params.len());
    let _ = check_compatible(&ck, &Hyper::default());
    let _ = check_compatible(&ck, &ck.hyper);
    1
}

/// The small network the parameter target reads: image 8, widths 16/16/16, fc1 16 (5,377
/// parameters, a 21,508-byte file), so that the exact size is reachable.
pub fn small_shapes() -> Shapes {
    catdog::testing::tiny_hyper().shapes().unwrap()
}

/// A tiny hand-made geometry (one channel per conv, fc1 2: 55 parameters, a 220-byte file)
/// that no `Hyper` yields, for `parse_raw` only: with it a short input reaches every tensor.
pub fn tiny_shapes() -> Shapes {
    let conv = |h, cin| ConvDims {
        h,
        w: h,
        cin,
        cout: 1,
    };
    Shapes {
        conv: [conv(8, 3), conv(4, 1), conv(2, 1)],
        flat: 1,
        fc1: 2,
    }
}

/// The `parameters.raw` reader, against [`small_shapes`] and [`tiny_shapes`]: `Ok` only for the
/// exact size and finite values; a too-short output buffer is `Err`. Returns how many of the
/// two accepted the input.
pub fn parameters(data: &[u8]) -> usize {
    let mut ok = 0;
    for shapes in [small_shapes(), tiny_shapes()] {
        let n = shapes.param_count();
        let mut params = vec![0.0f32; n + 1];
        if parse_raw(data, &shapes, &mut params).is_ok() {
            ok += 1;
            assert_eq!(data.len(), 4 * n);
            assert!(params[..n].iter().all(|v| v.is_finite()));
        }
        let mut short = vec![0.0f32; n - 1];
        assert!(parse_raw(data, &shapes, &mut short).is_err());
    }
    ok
}

/// The `model` command line: the input split on NUL and ASCII whitespace into arguments (lossy
/// UTF-8) after "model"; parsing and, per command, the checks the binary makes before it touches
/// a file (`hyper`, `recipe`, `Hyper::shapes`) must return, never panic. Returns whether clap
/// accepted the arguments.
pub fn cli(data: &[u8]) -> bool {
    let args = std::iter::once("model".to_string()).chain(
        data.split(|b| *b == 0 || b.is_ascii_whitespace())
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned()),
    );
    // As the binary parses (`model --flag` is `model train --flag`).
    let Ok(cli) = catdog::cli::parse_from(args) else {
        return false;
    };
    match cli.command {
        Some(Command::Train(a)) => {
            // As `train_cmd` in main.rs.
            if let Ok(mut h) = hyper(&a.arch, 128, a.batch_size) {
                h.epochs = a.epochs.unwrap_or(a.recipe.epochs());
                h.lr = a.lr;
                h.seed = a.seed;
                let _ = h.shapes();
            }
            let _ = recipe(&a);
        }
        Some(Command::Eval(a)) => {
            if let Ok(h) = hyper(&a.arch, 128, a.batch_size) {
                let _ = h.shapes();
            }
        }
        Some(Command::Predict(a)) => {
            if let Ok(h) = hyper(&a.arch, 128, a.batch_size) {
                let _ = h.shapes();
            }
        }
        Some(Command::Bench(a)) => {
            if let Ok(h) = hyper(&a.arch, a.image, a.batch_size) {
                let _ = h.shapes();
            }
        }
        Some(Command::Export(a)) => {
            if let Ok(h) = a.hyper(a.image.unwrap_or(128)) {
                let _ = h.shapes();
            }
        }
        Some(Command::Import(_)) => {}
        None => {}
    }
    true
}

//! Packing the shared Kaggle photos with `tools/pack` and training on them: held-out accuracy
//! must rise clearly above chance. Skipped (with a note) when `../shared/data` is absent; a failure
//! then under `CATDOG_REQUIRE_SHARED=1`.

mod common;

use catdog::config::Hyper;
use catdog::config::Kernels;
use catdog::dataset::open_blob;
use catdog::infer;
use catdog::net::Net;
use catdog::network::Network;
use catdog::network::{Epoch, EpochOptions};
use catdog::parameters;
use catdog::report;
use catdog::schedule;
use common::shared_or_skip;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The original network and recipe on `kernels`: `epochs` epochs on 4000 photos, then at least
/// `min_accuracy` on the 1000 held out.
fn learns(kernels: Kernels, epochs: usize, min_accuracy: f64) {
    let test = format!("training the {kernels} kernels on real photos");
    let Some(src) = shared_or_skip(&test, "data/dogs-vs-cats/train") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("catdog-real-{kernels}-{}", std::process::id()));
    let status = Command::new(repo().join("tools/pack"))
        .arg(&src)
        .args(["--test", "1000", "--seed", "1", "-o"])
        .arg(&out)
        .status()
        .expect("tools/pack runs");
    assert!(status.success(), "tools/pack failed");
    let train_blob = open_blob(&out.join("train.bin"), "training", true).unwrap();
    let test_blob = open_blob(&out.join("test.bin"), "test", true).unwrap();
    assert_eq!((train_blob.len(), test_blob.len()), (4000, 1000));

    // The original network and recipe (plain SGD, lr 0.01, batch 16), shuffled.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let h = Hyper {
        image: train_blob.dims().0,
        threads,
        seed: 1,
        ..Hyper::default()
    };
    let mut net = Net::new(&h, kernels, false).unwrap();
    let shapes = net.shapes.clone();
    parameters::he_init(&shapes, net.params_mut(), h.seed);
    net.repack();
    let before = report::accuracy(
        &infer::predict(&mut net, &test_blob, false),
        test_blob.labels(),
    );
    let opts = EpochOptions::plain(h.lr);
    let mut losses = Vec::new();
    for epoch in 1..=epochs {
        let order = schedule::epoch_order(train_blob.len(), true, h.seed, epoch);
        let st = net
            .run_epoch(&Epoch::new(&train_blob, &order, epoch, &opts))
            .unwrap();
        eprintln!(
            "epoch {epoch}: mean train loss {:.4}, {:.1} samples/s",
            st.mean_loss,
            st.samples as f64 / st.seconds
        );
        losses.push(st.mean_loss);
        let acc = report::accuracy(
            &infer::predict(&mut net, &test_blob, false),
            test_blob.labels(),
        );
        eprintln!("epoch {epoch}: held-out accuracy {acc:.3}");
    }
    let after = report::accuracy(
        &infer::predict(&mut net, &test_blob, false),
        test_blob.labels(),
    );
    eprintln!("{kernels}: held-out accuracy on 1000 real photos: {before:.3} before training, {after:.3} after {epochs} epochs");
    std::fs::remove_dir_all(&out).ok();
    assert!(
        losses[epochs - 1] < losses[0] - 0.03,
        "{kernels}: the training loss did not fall: {losses:?}"
    );
    assert!(
        after >= min_accuracy,
        "{kernels}: held-out accuracy {after:.3} after {epochs} epochs on 4000 photos (chance: 0.5)"
    );
}

#[test]
fn training_on_real_photos_beats_chance_clearly() {
    learns(Kernels::default_for_cpu(), 4, 0.62);
}

/// The portable kernels learn too (3 epochs: they are several times slower than the fast ones).
#[test]
fn portable_kernels_learn_on_real_photos() {
    learns(Kernels::Portable, 3, 0.60);
}

/// The improved recipe with its augmentation on (random resized crops, colour jitter, flips,
/// label smoothing, warm-up), through the command line, on the photos packed at 64x64: 5
/// epochs of 4000 photos must still learn (about half a minute on 2 cores).
#[test]
fn the_augmented_recipe_learns_on_real_photos() {
    let test = "training the augmented recipe on real photos";
    let Some(src) = shared_or_skip(test, "data/dogs-vs-cats/train") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("catdog-real-aug-{}", std::process::id()));
    let status = Command::new(repo().join("tools/pack"))
        .arg(&src)
        .args(["--test", "1000", "--seed", "1", "--size", "64", "-q", "-o"])
        .arg(&out)
        .status()
        .expect("tools/pack runs");
    assert!(status.success(), "tools/pack failed");
    let run = Command::new(env!("CARGO_BIN_EXE_model"))
        .current_dir(common::scratch_cwd())
        .args([
            "train", "--recipe", "improved", "--epochs", "5", "--seed", "1",
        ])
        .args(["--no-checkpoint", "--log-every", "0", "--train"])
        .arg(out.join("train.bin"))
        .arg("--test")
        .arg(out.join("test.bin"))
        .output()
        .expect("model runs");
    std::fs::remove_dir_all(&out).ok();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    eprintln!("{err}");
    // The per-epoch lines: `epoch E/5: train loss L, ...`.
    let losses: Vec<f64> = err
        .lines()
        .filter_map(|l| {
            l.split_once("train loss ")?
                .1
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(losses.len(), 5, "{err}");
    assert!(
        losses[4] < losses[0] - 0.03,
        "the training loss did not fall: {losses:?}"
    );
    let acc = common::final_accuracy(&String::from_utf8_lossy(&run.stdout));
    assert!(
        acc >= 0.60,
        "held-out accuracy {acc} after 5 epochs on 4000 photos at 64x64 (chance: 0.5)"
    );
}

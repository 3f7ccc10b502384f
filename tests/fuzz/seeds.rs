//! Writes the seed corpora into `corpus/<target>/` (synthetic data only, no photos):
//! `cargo run --release --example seeds` from `tests/fuzz`.

#[path = "checks.rs"]
mod checks;

use catdog::blob::{write_blob, BlobMeta, CLASS_NAMES, UNLABELED};
use catdog::checkpoint::{encode, CheckpointRef};
use catdog::config::Recipe;
use catdog::metrics::EpochRecord;
use catdog::parameters::{he_init, write_raw};
use std::path::{Path, PathBuf};

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn blob(name: &str, n: usize, (h, w, c): (u32, u32, u32), classes: &[&str], note: &str) {
    let meta = BlobMeta {
        height: h,
        width: w,
        channels: c,
        class_names: classes.iter().map(|s| s.to_string()).collect(),
        labels: (0..n)
            .map(|i| match classes.len() {
                0 => UNLABELED,
                k => [(i % k) as u8, UNLABELED][i % 2],
            })
            .collect(),
        sources: (0..n).map(|i| format!("photos/ç{i}.jpg").into()).collect(),
        note: note.into(),
    };
    let len = (h * w * c) as usize;
    let imgs: Vec<Vec<u8>> = (0..n).map(|i| vec![(i * 37) as u8; len]).collect();
    write_blob(
        &dir("blob").join(name),
        &meta,
        imgs.iter().map(|v| v.as_slice()),
    )
    .unwrap();
}

fn main() {
    blob("seed-3x2x2x3", 3, (2, 2, 3), &CLASS_NAMES, "seed");
    blob("seed-empty", 0, (1, 1, 1), &[], "");
    blob("seed-8x8x1-unlabeled", 2, (8, 8, 1), &[], "unlabeled");
    blob("seed-5x1x3x4", 5, (1, 3, 4), &["a", "b", "c"], "");

    let small = catdog::testing::tiny_hyper();
    let shapes = small.shapes().unwrap();
    let n = shapes.param_count();
    let mut params = vec![0.0f32; n];
    he_init(&shapes, &mut params, 1);
    write_raw(&dir("parameters").join("seed-he"), &shapes, &params).unwrap();
    let tiny = checks::tiny_shapes();
    let v: Vec<f32> = (0..tiny.param_count()).map(|i| i as f32 / 8.0).collect();
    write_raw(&dir("parameters").join("seed-tiny"), &tiny, &v).unwrap();
    // A non-finite value in each tensor, for every branch of the error message.
    let mut at = 0;
    for (name, len) in catdog::parameters::NAMES.iter().zip(tiny.param_lens()) {
        let mut b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        b[4 * at..4 * at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(dir("parameters").join(format!("seed-tiny-nan-{name}")), b).unwrap();
        at += len;
    }

    let rec = |epoch| EpochRecord {
        epoch,
        train_loss: 0.69,
        test_accuracy: Some(0.5),
        test_loss: (epoch % 2 == 0).then_some(0.7),
        samples_per_s: 100.0,
        elapsed_s: 1.5,
        lr: 0.01,
        val_accuracy: None,
        val_loss: None,
    };
    let ck = dir("checkpoint");
    let (faithful, improved) = (Recipe::faithful(true), Recipe::improved());
    let b = encode(&CheckpointRef {
        epochs_done: 1,
        rng_state: 7,
        history: &[rec(1)],
        ..CheckpointRef::new(&small, &faithful, &params)
    })
    .unwrap();
    std::fs::write(ck.join("seed-faithful"), b).unwrap();
    let b = encode(&CheckpointRef {
        epochs_done: 2,
        rng_state: 9,
        velocity: &params,
        history: &[rec(1), rec(2)],
        ..CheckpointRef::new(&small, &improved, &params)
    })
    .unwrap();
    // Header and history only: the checkpoint target zero-extends an input to the size its
    // header declares and reseals it, so this stands for the whole 43 KB file.
    let head = catdog::checkpoint::HEADER_LEN + 2 * catdog::checkpoint::RECORD_LEN;
    std::fs::write(ck.join("seed-improved-momentum-head"), &b[..head]).unwrap();

    // Real command lines (README.md), one argument per line.
    let lines = [
        "",
        "train",
        "train --epochs 3 --batch-size 8 --lr 0.05 --seed 7 --threads 2 --no-shuffle --limit 100",
        "train --init parameters.raw --save out.raw --log-every 0 --widths 16,32,64 --fc1 64",
        "train --recipe improved --flip --momentum 0.9 --weight-decay 5e-4 --dropout 0.5 --schedule cosine",
        "train --checkpoint c.ckpt --resume c.ckpt --metrics m.csv --plot p.svg --dry-run --no-checkpoint",
        "train --train data/train.bin --test data/test.bin --recipe faithful --schedule constant",
        "eval --params data/checkpoint.ckpt --data data/test.bin --errors errors.png --errors-count 8",
        "predict --params trained.raw data/unlabeled.bin --batch-size 4 --widths 32,64,128",
        "bench --threads 1 --batches 2 --image 64 --batch-size 16 --profile --fc1 128",
    ];
    for (i, l) in lines.iter().enumerate() {
        let args = l.split_whitespace().collect::<Vec<_>>().join("\n");
        std::fs::write(dir("cli").join(format!("seed-{i:02}")), args).unwrap();
    }
}

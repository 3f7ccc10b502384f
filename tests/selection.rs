//! Choosing the model without the test set: `--val-fraction` holds out a stratified, seeded,
//! disjoint part of the training data (a view, no copies); `--val PATH` a blob of its own;
//! `--save-best` keeps the best validation epoch's bits (best.raw, best.ckpt) and `--save`
//! writes them; `--val-tta` validates (and so chooses) with test-time augmentation; a resumed run keeps the split and the best epoch; the run ends with a summary
//! and keeps its metrics and curves; `--params last|best` find the newest run's model; bad
//! values are refused with exit 2.

mod common;
use catdog::checkpoint::{self, Validation};
use catdog::dataset::{Dataset, Synthetic};
use catdog::split::{stratified, Subset};
use common::{assert_ok, assert_refused, stderr_of, tmp_with_blobs, SMALL_NET};
use std::path::Path;
use std::process::{Command, Output};

/// `model ARGS` run in `dir` (so a default run folder is `dir/data/runs/N`).
fn model(dir: &Path, args: &[&str]) -> Output {
    model_env(dir, args, None)
}

fn model_env(dir: &Path, args: &[&str], abort_after: Option<usize>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(dir).args(args);
    if let Some(e) = abort_after {
        c.env("CATDOG_TEST_ABORT_AFTER_EPOCH", e.to_string());
    }
    c.output().unwrap()
}

/// `train` on `dir`'s blobs: the small network, batch 8, faithful recipe (a constant learning
/// rate, so the first E epochs of a longer run are a run of E epochs), one thread.
fn train(dir: &Path, extra: &[&str]) -> Output {
    let d = dir.display().to_string();
    let mut args: Vec<String> = [
        "train",
        "--train",
        &format!("{d}/train.bin"),
        "--test",
        &format!("{d}/test.bin"),
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--threads",
        "1",
        "--log-every",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(SMALL_NET.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    model(dir, &args)
}

/// [`train`] resuming checkpoint `ck` (in `dir`) up to `epochs` epochs, with `extra` flags.
fn resume(dir: &Path, ck: &str, epochs: usize, extra: &[&str]) -> Output {
    let epochs = epochs.to_string();
    train(
        dir,
        &[&["--resume", ck, "--epochs", &epochs][..], extra].concat(),
    )
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_split_is_stratified_disjoint_deterministic_and_a_view() {
    let data = Synthetic::new(203, 8, 5);
    let labels = data.labels();
    let n = 190; // as with --limit 190: the samples after it take no part
    let s = stratified(labels, n, 0.2, 42).unwrap();
    // Disjoint, and together exactly the first n samples.
    let mut all: Vec<u32> = s.train.iter().chain(&s.val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n as u32).collect::<Vec<_>>());
    // Stratified: each class gives round(0.2 * its count) samples.
    for class in 0..2u8 {
        let count = labels[..n].iter().filter(|&&l| l == class).count();
        let in_val = s
            .val
            .iter()
            .filter(|&&i| labels[i as usize] == class)
            .count();
        assert_eq!(
            in_val,
            (0.2 * count as f64).round() as usize,
            "class {class}"
        );
    }
    // Deterministic for a seed; another seed holds out other samples.
    assert_eq!(stratified(labels, n, 0.2, 42).unwrap(), s);
    assert_ne!(stratified(labels, n, 0.2, 43).unwrap().val, s.val);
    // The view reads the base's own bytes: no image is copied.
    let val = Subset::new(&data, s.val.clone());
    assert_eq!(val.len(), s.val.len());
    for (i, &k) in s.val.iter().enumerate() {
        assert!(std::ptr::eq(val.image(i), data.image(k as usize)));
        assert_eq!(val.labels()[i], labels[k as usize]);
    }
}

#[test]
fn save_best_keeps_the_best_validation_epoch_and_save_writes_it() {
    let dir = tmp_with_blobs("sel-best", 16, (96, 1), (24, 2));
    let o = train(
        &dir,
        &[
            "--epochs",
            "4",
            "--val-fraction",
            "0.25",
            "--save-best",
            "--save",
            "final.raw",
        ],
    );
    assert_ok(&o);
    let err = stderr_of(&o);
    let run = dir.join("data/runs/1");
    let ck = checkpoint::load(&run.join("checkpoint.ckpt")).unwrap();
    let sel = ck.selection.expect("a selection record");
    assert_eq!(sel.val, Validation::Fraction(0.25));
    assert!(sel.save_best);
    // The best epoch: the highest validation accuracy, the earliest of a tie.
    let accs: Vec<f64> = ck.history.iter().map(|r| r.val_accuracy.unwrap()).collect();
    let best = (0..accs.len()).fold(0, |b, i| if accs[i] > accs[b] { i } else { b });
    let (e, acc) = sel.best.unwrap();
    assert_eq!((e, acc), (best + 1, accs[best]), "{err}");
    assert!(
        err.contains(&format!("best so far: epoch {e} (val acc {acc:.4})")),
        "{err}"
    );
    assert!(
        err.contains("validation: 24 of 96 training samples held out"),
        "{err}"
    );
    // best.ckpt is that epoch's checkpoint, best.raw its parameters, --save wrote them.
    let b = checkpoint::load(&run.join("best.ckpt")).unwrap();
    assert_eq!(b.epochs_done, e);
    let raw = std::fs::read(run.join("best.raw")).unwrap();
    let raw_f: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(bits(&raw_f), bits(&b.params));
    assert!(std::fs::read(dir.join("final.raw")).unwrap() == raw);
    assert!(err.contains("saved the best epoch's parameters"), "{err}");
    // ... and the same bits as a run of exactly e epochs with the same flags.
    let o = train(
        &dir,
        &["--epochs", &e.to_string(), "--val-fraction", "0.25"],
    );
    assert_ok(&o);
    let again = checkpoint::load(&dir.join("data/runs/2/checkpoint.ckpt")).unwrap();
    assert_eq!(bits(&again.params), bits(&b.params));
    // The run folder keeps its metrics (with the validation columns) and curves.
    let m = catdog::metrics::read_csv(&run.join("metrics.csv")).unwrap();
    assert_eq!(m, ck.history);
    assert!(run.join("curves.png").is_file());
    // The summary names the best epoch, its files and the commands.
    for want in [
        "run summary: 4 of 4 epochs",
        &format!("best validation epoch: {e}"),
        "data/runs/1/best.raw",
        "last checkpoint: data/runs/1/checkpoint.ckpt (epoch 4)",
        "./model eval --params data/runs/1/best.ckpt --data",
        "./model predict --params data/runs/1/best.ckpt",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn no_test_trains_on_train_and_validation_data_only() {
    let dir = tmp_with_blobs("sel-notest", 16, (96, 1), (24, 2));
    // No test.bin anywhere it could be read from: the run must not look for one.
    std::fs::rename(dir.join("test.bin"), dir.join("other.bin")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "--train", "train.bin", "--batch-size", "8"];
        args.extend(["--lr", "0.05", "--threads", "1", "--log-every", "0"]);
        args.extend(["--val-fraction", "0.25", "--save-best"]);
        args.extend(SMALL_NET);
        args.extend(extra);
        model(&dir, &args)
    };
    let o = run(&["--no-test", "--epochs", "2", "--checkpoint", "a.ckpt"]);
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("Accuracy is"), "{out}");
    let err = stderr_of(&o);
    assert!(!err.contains("test"), "no test pass is reported: {err}");
    assert!(err.contains("val accuracy"), "{err}");
    assert!(
        err.contains("evaluate: ./model eval --params a.best.ckpt --data BLOB"),
        "{err}"
    );
    let ck = checkpoint::load(&dir.join("a.ckpt")).unwrap();
    assert_eq!(ck.run.unwrap().test, None);
    assert!(ck
        .history
        .iter()
        .all(|r| r.test_accuracy.is_none() && r.test_loss.is_none()));
    assert!(ck.history.iter().all(|r| r.val_accuracy.is_some()));
    // A test set is only looked at: the same run with one trains the same bits.
    let o = run(&[
        "--test",
        "other.bin",
        "--epochs",
        "2",
        "--checkpoint",
        "b.ckpt",
    ]);
    assert_ok(&o);
    let tested = checkpoint::load(&dir.join("b.ckpt")).unwrap();
    assert_eq!(bits(&tested.params), bits(&ck.params));
    assert!(tested.history.iter().all(|r| r.test_accuracy.is_some()));
    // Resuming keeps the run's data: a test blob it never had is refused; without --test the
    // run goes on without one (--no-test taken from the checkpoint, or given again).
    let o = run(&["--resume", "a.ckpt", "--epochs", "4", "--test", "other.bin"]);
    assert_refused(&o, &["the run had no test data (--no-test)", "other.bin"]);
    let o = run(&["--resume", "a.ckpt", "--epochs", "3"]);
    assert_ok(&o);
    assert!(!stderr_of(&o).contains("test"), "{}", stderr_of(&o));
    let o = run(&["--resume", "a.ckpt", "--epochs", "4", "--no-test"]);
    assert_ok(&o);
    let resumed = checkpoint::load(&dir.join("a.ckpt")).unwrap();
    assert_eq!((resumed.epochs_done, resumed.run.unwrap().test), (4, None));
    // ... and a tested run is not resumed without its test blob.
    let o = run(&["--resume", "b.ckpt", "--epochs", "3", "--no-test"]);
    assert_refused(
        &o,
        &["the run was tested on test data", "--no-test is given"],
    );
    let o = run(&["--no-test", "--test", "other.bin"]);
    assert_refused(&o, &["--no-test", "--test"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_resumed_run_keeps_its_split_and_its_best_epoch() {
    let dir = tmp_with_blobs("sel-resume", 16, (80, 3), (16, 4));
    let flags = ["--val-fraction", "0.3", "--save-best", "--checkpoint"];
    let whole = |name: &str| {
        let mut v: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        v.push(name.into());
        v
    };
    let args = |name: &str, epochs: &str| {
        let mut v = whole(name);
        v.extend(["--epochs".to_string(), epochs.to_string()]);
        v
    };
    let a = args("a.ckpt", "4");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    assert_ok(&train(&dir, &a));
    // The same run killed after epoch 2, then resumed without the selection flags.
    let b = args("b.ckpt", "4");
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let d = dir.display().to_string();
    let killed = model_env(
        &dir,
        &[
            &["train", "--train", &format!("{d}/train.bin"), "--test"][..],
            &[
                &format!("{d}/test.bin"),
                "--batch-size",
                "8",
                "--lr",
                "0.05",
            ],
            &["--threads", "1", "--log-every", "0"],
            &SMALL_NET,
            &b,
        ]
        .concat(),
        Some(2),
    );
    assert!(!killed.status.success());
    let mid = checkpoint::load(&dir.join("b.ckpt")).unwrap();
    assert_eq!(mid.epochs_done, 2);
    let mid_best = mid.selection.unwrap().best.unwrap();
    let o = resume(&dir, "b.ckpt", 4, &[]);
    assert_ok(&o);
    let (ca, cb) = (
        checkpoint::load(&dir.join("a.ckpt")).unwrap(),
        checkpoint::load(&dir.join("b.ckpt")).unwrap(),
    );
    assert_eq!(cb.selection, ca.selection);
    assert!(cb.selection.unwrap().best.unwrap().1 >= mid_best.1);
    assert_eq!(bits(&cb.params), bits(&ca.params));
    assert_eq!(
        cb.history
            .iter()
            .map(|r| r.val_accuracy)
            .collect::<Vec<_>>(),
        ca.history
            .iter()
            .map(|r| r.val_accuracy)
            .collect::<Vec<_>>()
    );
    assert!(
        std::fs::read(dir.join("b.best.raw")).unwrap()
            == std::fs::read(dir.join("a.best.raw")).unwrap()
    );
    // Resumed into another checkpoint file: the best epoch's files come along.
    let o = resume(&dir, "b.ckpt", 5, &["--checkpoint", "c.ckpt"]);
    assert_ok(&o);
    let cc = checkpoint::load(&dir.join("c.ckpt")).unwrap();
    let (e, _) = cc.selection.unwrap().best.unwrap();
    let best = checkpoint::load(&dir.join("c.best.ckpt")).unwrap();
    assert_eq!(best.epochs_done, e);
    let raw = std::fs::read(dir.join("c.best.raw")).unwrap();
    assert_eq!(raw.len(), 4 * best.params.len());
    assert!(raw
        .chunks_exact(4)
        .zip(&best.params)
        .all(|(c, p)| c == p.to_le_bytes()));
    // Another fraction, or validation on a blob, contradicts the run: refused.
    let o = resume(&dir, "b.ckpt", 5, &["--val-fraction", "0.2"]);
    assert_refused(&o, &["--val-fraction 0.3", "--val-fraction 0.2", "--force"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_validation_blob_is_evaluated_every_epoch() {
    let dir = tmp_with_blobs("sel-valblob", 16, (64, 5), (16, 6));
    common::synthetic_blob(&dir.join("val.bin"), 24, 16, 7);
    let o = train(
        &dir,
        &[
            "--epochs",
            "2",
            "--val",
            "val.bin",
            "--save-best",
            "--checkpoint",
            "c.ckpt",
        ],
    );
    assert_ok(&o);
    let err = stderr_of(&o);
    assert!(
        err.contains("val loss") && err.contains("val accuracy"),
        "{err}"
    );
    let ck = checkpoint::load(&dir.join("c.ckpt")).unwrap();
    assert!(matches!(
        ck.selection.unwrap().val,
        Validation::Blob(id) if id.count == 24
    ));
    assert!(ck.history.iter().all(|r| r.val_accuracy.is_some()));
    assert!(dir.join("c.best.raw").is_file() && dir.join("c.best.ckpt").is_file());
    // Resuming needs the blob again, and refuses another one.
    let o = resume(&dir, "c.ckpt", 3, &[]);
    assert_refused(&o, &["--val PATH"]);
    let o = resume(&dir, "c.ckpt", 3, &["--val", "test.bin"]);
    assert_refused(&o, &["--val", "test data"]);
    let o = resume(&dir, "c.ckpt", 3, &["--val", "val.bin"]);
    assert_ok(&o);
    std::fs::remove_dir_all(&dir).ok();
}

/// P(dog) of every sample of the blob at `data` by the network of checkpoint `ck`, as the
/// training run's validation pass computes it (its kernels, batch and threads): with `tta` the
/// mean over each image and its mirror.
fn val_probs(ck: &checkpoint::Checkpoint, data: &Path, tta: bool) -> (Vec<f32>, Vec<u8>) {
    use catdog::network::Network;
    let k = catdog::config::Kernels::resolve(None).unwrap().0;
    let mut net = catdog::net::Net::new(&ck.hyper, k, false).unwrap();
    net.params_mut().copy_from_slice(&ck.params);
    net.repack();
    let blob = catdog::blob::Blob::open(data).unwrap();
    let p = if tta {
        catdog::infer::predict_tta(&mut net, &blob).unwrap()
    } else {
        net.predict(&blob)
    };
    (p, blob.labels().to_vec())
}

#[test]
fn val_tta_records_and_chooses_on_the_mean_over_each_photo_and_its_mirror() {
    use catdog::report::accuracy;
    let dir = tmp_with_blobs("sel-valtta", 16, (64, 21), (16, 22));
    common::synthetic_blob(&dir.join("val.bin"), 40, 16, 23);
    let run = |name: &str, extra: &[&str]| {
        let mut a = vec!["--epochs", "4", "--val", "val.bin", "--save-best"];
        a.extend_from_slice(&["--checkpoint", name]);
        a.extend_from_slice(extra);
        let o = train(&dir, &a);
        assert_ok(&o);
        (stderr_of(&o), checkpoint::load(&dir.join(name)).unwrap())
    };
    let (err, ck) = run("t.ckpt", &["--val-tta"]);
    let (_, plain) = run("p.ckpt", &[]);
    // Validation never changes training: the same bits either way.
    assert_eq!(bits(&ck.params), bits(&plain.params));
    let sel = ck.selection.unwrap();
    assert!(sel.tta && !plain.selection.unwrap().tta);
    // Each run records what its validation pass measured, on the model as it stands.
    let val = dir.join("val.bin");
    for (c, tta) in [(&ck, true), (&plain, false)] {
        let (p, labels) = val_probs(c, &val, tta);
        let last = c.history.last().unwrap();
        assert_eq!(last.val_accuracy, Some(accuracy(&p, &labels)), "tta {tta}");
        assert_eq!(last.val_loss, Some(catdog::report::mean_bce(&p, &labels)));
    }
    // The best epoch is chosen on the TTA accuracy, and best.ckpt holds it.
    let accs: Vec<f64> = ck.history.iter().map(|r| r.val_accuracy.unwrap()).collect();
    let best = (0..accs.len()).fold(0, |b, i| if accs[i] > accs[b] { i } else { b });
    let (e, acc) = sel.best.unwrap();
    assert_eq!((e, acc), (best + 1, accs[best]));
    let b = checkpoint::load(&dir.join("t.best.ckpt")).unwrap();
    let (p, labels) = val_probs(&b, &val, true);
    assert_eq!(accuracy(&p, &labels), acc);
    for want in [
        "val accuracy",
        "(TTA)",
        &format!("best so far: epoch {e} (val acc {acc:.4} with TTA)"),
        &format!("best validation epoch: {e} (val accuracy {acc:.4} with TTA)"),
        "test.bin --tta",
        "./model predict --params t.best.ckpt --tta",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
    // A resume goes on with TTA; turning it on in a run without it is refused.
    let o = resume(&dir, "t.ckpt", 5, &["--val", "val.bin"]);
    assert_ok(&o);
    assert!(stderr_of(&o).contains("(TTA)"));
    let ck5 = checkpoint::load(&dir.join("t.ckpt")).unwrap();
    assert!(ck5.selection.unwrap().tta && ck5.epochs_done == 5);
    let o = resume(&dir, "p.ckpt", 5, &["--val", "val.bin", "--val-tta"]);
    assert_refused(&o, &["--val-tta", "it off", "it on"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_selection_values_are_refused_with_exit_2() {
    let dir = tmp_with_blobs("sel-bad", 16, (32, 8), (8, 9));
    for (args, want) in [
        (
            &["--val-fraction", "0"][..],
            &["--val-fraction 0", "between 0 and 1"][..],
        ),
        (
            &["--val-fraction", "1.5"],
            &["--val-fraction 1.5", "between 0 and 1"],
        ),
        (&["--val-fraction", "1"], &["between 0 and 1"]),
        (&["--val", "missing.bin"], &["missing.bin", "not found"]),
        (
            &["--save-best"],
            &["--save-best", "--val-fraction", "--val PATH"],
        ),
        (&["--val", "test.bin"], &["--val", "test data"]),
        (
            &["--save-best", "--val-fraction", "0.2", "--no-checkpoint"],
            &["--no-checkpoint"],
        ),
        (
            &["--val-tta"],
            &["--val-tta", "--val-fraction", "--val PATH"],
        ),
        (
            &[
                "--val-tta",
                "--val-fraction",
                "0.2",
                "--kernels",
                "original",
            ],
            &["--val-tta", "original kernels cannot"],
        ),
    ] {
        let mut a = vec!["--epochs", "1"];
        a.extend_from_slice(args);
        let o = train(&dir, &a);
        assert_refused(&o, want);
    }
    // Refused runs leave no run folder behind.
    assert!(!dir.join("data/runs/1").exists());
    // Both sources at once: clap's usage error, exit 2.
    let o = train(&dir, &["--val-fraction", "0.2", "--val", "test.bin"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `data`'s images mirrored left-right, in memory (what `--tta` must see without copying).
fn mirrored(data: &dyn Dataset, size: usize) -> Synthetic {
    let bytes = size * size * 3;
    let mut pixels = Vec::with_capacity(data.len() * bytes);
    for i in 0..data.len() {
        for row in data.image(i).chunks_exact(size * 3) {
            for px in row.chunks_exact(3).rev() {
                pixels.extend_from_slice(px);
            }
        }
    }
    Synthetic::from_images(pixels, data.labels().to_vec(), bytes)
}

#[path = "common/kernels.rs"]
mod kernels;

#[test]
fn tta_is_the_mean_of_the_image_and_its_mirror_on_every_kernel_set() {
    use catdog::network::Network;
    let data = Synthetic::new(37, 16, 11);
    let mirrored = mirrored(&data, 16);
    for &k in kernels::paths() {
        let h = catdog::config::Hyper {
            image: 16,
            batch: 8,
            threads: 2,
            ..catdog::testing::tiny_hyper()
        };
        let mut net = catdog::net::Net::new(&h, k, false).unwrap();
        let shapes = net.shapes.clone();
        catdog::parameters::he_init(&shapes, net.params_mut(), 3);
        net.repack();
        let plain = net.predict(&data);
        let flipped = catdog::infer::predict(&mut net, &mirrored, false);
        assert_ne!(
            bits(&plain),
            bits(&flipped),
            "{k}: the mirror changed nothing"
        );
        // The mirrored pass is the pass over mirrored images, bit for bit.
        assert_eq!(
            bits(&net.predict_mirrored(&data).unwrap()),
            bits(&flipped),
            "{k}"
        );
        let tta = catdog::infer::predict_tta(&mut net, &data).unwrap();
        let mean: Vec<f32> = plain
            .iter()
            .zip(&flipped)
            .map(|(a, b)| (a + b) * 0.5)
            .collect();
        assert_eq!(bits(&tta), bits(&mean), "{k}");
    }
}

/// Writes `data` as a labeled blob of `size` x `size` images.
fn write(path: &Path, data: &dyn Dataset, size: usize) {
    let meta = catdog::blob::BlobMeta {
        height: size as u32,
        width: size as u32,
        channels: 3,
        class_names: vec!["cat".into(), "dog".into()],
        labels: data.labels().to_vec(),
        sources: (0..data.len())
            .map(|i| format!("m/{i}.png").into())
            .collect(),
        note: "mirrored".into(),
    };
    catdog::blob::write_blob(path, &meta, (0..data.len()).map(|i| data.image(i))).unwrap();
}

/// `path<TAB>P(dog)<TAB>class` lines: the P(dog) column.
fn p_dog(o: &Output) -> Vec<f64> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn eval_and_predict_with_tta_calibration_and_params_last_or_best() {
    let dir = tmp_with_blobs("sel-tta", 16, (64, 12), (30, 13));
    // No run yet: --params last and best are refused, in every command.
    for cmd in [
        &["eval", "--params", "last"][..],
        &["predict", "--params", "best", "test.bin"],
        &["export", "--params", "last", "--onnx", "m.onnx"],
    ] {
        assert_refused(&model(&dir, cmd), &["--params", "no run", "--params FILE"]);
    }
    assert_ok(&train(&dir, &["--epochs", "2"]));
    let o = model(&dir, &["eval", "--params", "best", "--data", "test.bin"]);
    assert_refused(&o, &["--params best", "data/runs/1", "--save-best"]);
    assert_ok(&train(
        &dir,
        &["--epochs", "2", "--val-fraction", "0.25", "--save-best"],
    ));
    // last: the newest run's checkpoint; best: its best.ckpt.
    for (which, file) in [("last", "checkpoint.ckpt"), ("best", "best.ckpt")] {
        let o = model(&dir, &["predict", "--params", which, "test.bin"]);
        assert_ok(&o);
        let direct = format!("data/runs/2/{file}");
        let d = model(&dir, &["predict", "--params", &direct, "test.bin"]);
        assert_eq!(o.stdout, d.stdout, "--params {which}");
        assert!(stderr_of(&o).contains(&direct), "{}", stderr_of(&o));
        let o = model(&dir, &["export", "--params", which, "--onnx", "m.onnx"]);
        assert_ok(&o);
    }
    // --tta: the mean of the two passes, each computed on its own, and said so.
    let test = catdog::blob::Blob::open(&dir.join("test.bin")).unwrap();
    write(&dir.join("mirrored.bin"), &mirrored(&test, 16), 16);
    let p = |args: &[&str]| {
        let o = model(&dir, &[&["predict", "--params", "last"][..], args].concat());
        assert_ok(&o);
        o
    };
    let tta = p(&["--tta", "test.bin"]);
    assert!(stderr_of(&tta).contains("test-time augmentation"));
    let (a, b, t) = (p(&["test.bin"]), p(&["mirrored.bin"]), p_dog(&tta));
    for ((x, y), t) in p_dog(&a).iter().zip(p_dog(&b)).zip(t) {
        assert!(((x + y) / 2.0 - t).abs() <= 1.5e-6, "{x} {y} {t}");
    }
    // eval: calibration beside the confusion matrix, --tta stated, a reliability diagram.
    let o = model(
        &dir,
        &[
            "eval", "--params", "last", "--data", "test.bin", "--tta", "--plot", "rel.svg",
        ],
    );
    assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "test-time augmentation (--tta)",
        "confusion matrix",
        "expected calibration error",
        "15 equal-width bins of P(predicted class)",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    assert!(out.lines().last().unwrap().starts_with("Accuracy is: "));
    let svg = std::fs::read_to_string(dir.join("rel.svg")).unwrap();
    let bars = svg.matches(r##"fill="#1f77b4" stroke="#000000""##).count();
    let bins = out
        .lines()
        .skip_while(|l| !l.contains("mean confidence"))
        .skip(1)
        .take_while(|l| l.contains('-'))
        .count();
    assert!(bars >= 1 && bars == bins, "{bars} bars, {bins} bins: {out}");
    assert!(svg.contains("ECE"));
    let o = model(
        &dir,
        &[
            "eval", "--params", "last", "--data", "test.bin", "--plot", "r.txt",
        ],
    );
    assert_refused(&o, &["--plot r.txt", ".png or .svg"]);
    std::fs::remove_dir_all(&dir).ok();
}

//! Bad files are refused cleanly, and the forced reference path gives the asm path's losses.

mod common;
use catdog::parameters;
use catdog::rng::Rng;
use common::{assert_ok, synthetic_blob, tmp, tmp_with_blobs, SMALL_NET};
use std::path::Path;
use std::process::Command;

/// The parameter file has no header or checksum (it is the original's format), so a flipped bit
/// may give another valid float; what must never happen is a crash, a non-finite value slipping
/// through, or a truncated file being read.
#[test]
fn parameter_file_truncations_and_bit_flips_are_refused_or_read_cleanly() {
    let h = catdog::testing::tiny_hyper();
    let s = h.shapes().unwrap();
    let dir = tmp("params");
    let f = dir.join("p.raw");
    let mut p = vec![0.0f32; s.param_count()];
    parameters::he_init(&s, &mut p, 2);
    parameters::write_raw(&f, &s, &p).unwrap();
    let good = std::fs::read(&f).unwrap();
    let mut rng = Rng::new(5);
    let mut out = vec![0.0f32; s.param_count()];
    for _ in 0..200 {
        let cut = rng.below(good.len());
        std::fs::write(&f, &good[..cut]).unwrap();
        let e = parameters::read_raw(&f, &s, &mut out).unwrap_err();
        assert!(e.contains("expected") && e.contains("p.raw"), "{e}");
    }
    let (mut refused, mut read) = (0, 0);
    for _ in 0..300 {
        let mut bad = good.clone();
        let i = rng.below(bad.len());
        // Flip one of the exponent bits of a float now and then, to make non-finite values.
        let bit = if rng.below(3) == 0 { 6 } else { rng.below(8) };
        bad[i - i % 4 + 3] |= if bit == 6 { 0x7F } else { 0 };
        bad[i] ^= 1 << bit;
        std::fs::write(&f, &bad).unwrap();
        match parameters::read_raw(&f, &s, &mut out) {
            Ok(()) => {
                read += 1;
                assert!(out.iter().all(|v| v.is_finite()));
            }
            Err(e) => {
                refused += 1;
                assert!(e.contains("not a finite number"), "{e}");
            }
        }
    }
    assert!(refused > 0 && read > 0, "refused {refused}, read {read}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A blob's every truncation and random bit flips are refused with a message, by the trainer's
/// command line (exit code 2, one line, no panic).
#[test]
fn the_trainer_refuses_damaged_blobs_with_one_line() {
    let dir = tmp_with_blobs("blob", 8, (20, 1), (8, 2));
    let good = std::fs::read(dir.join("train.bin")).unwrap();
    let mut rng = Rng::new(9);
    for round in 0..12 {
        let mut bad = good.clone();
        if round % 2 == 0 {
            bad.truncate(rng.below(good.len()));
        } else {
            let i = rng.below(bad.len());
            bad[i] ^= 1 << rng.below(8);
        }
        std::fs::write(dir.join("bad.bin"), &bad).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_model"))
            .current_dir(common::scratch_cwd())
            .args([
                "train",
                "--batch-size",
                "4",
                "--epochs",
                "1",
                "--no-checkpoint",
            ])
            .args(SMALL_NET)
            .arg("--train")
            .arg(dir.join("bad.bin"))
            .arg("--test")
            .arg(dir.join("test.bin"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "round {round}: {err}");
        assert_eq!(err.lines().count(), 1, "round {round}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("bad.bin"),
            "round {round}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn losses(stdout: &[u8]) -> Vec<f64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split("Loss: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

/// `CATDOG_KERNELS=reference` runs the scalar reference with a one-line notice, and its
/// per-batch losses follow the fast kernels' (`--kernels fast`, which wins over the variable) to
/// float rounding (faithful mode: file order, one thread, same init).
#[test]
fn kernels_from_the_environment_print_a_notice_and_the_same_losses() {
    if catdog::testing::avx512_or_skip("reference against fast kernels").is_none() {
        return;
    }
    let dir = tmp_with_blobs("refpath", 16, (48, 3), (16, 4));
    let run = |reference: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
        c.current_dir(common::scratch_cwd());
        c.args([
            "train",
            "--widths",
            "16,32,16",
            "--fc1",
            "16",
            "--batch-size",
            "8",
            "--epochs",
            "2",
        ])
        .args([
            "--no-shuffle",
            "--threads",
            "1",
            "--no-checkpoint",
            "--log-every",
            "1",
        ])
        .arg("--train")
        .arg(dir.join("train.bin"))
        .arg("--test")
        .arg(dir.join("test.bin"));
        c.env("CATDOG_KERNELS", "reference");
        if !reference {
            c.args(["--kernels", "fast"]);
        }
        c.output().unwrap()
    };
    let r = run(true);
    let a = run(false);
    assert!(r.status.success() && a.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.lines()
            .next()
            .unwrap_or("")
            .contains("CATDOG_KERNELS is set: running the reference kernels"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&a.stderr).contains("note:"));
    let (lr, la) = (losses(&r.stdout), losses(&a.stdout));
    assert_eq!(lr.len(), 12);
    assert_eq!(lr.len(), la.len());
    for (s, (x, y)) in lr.iter().zip(&la).enumerate() {
        assert!(
            (x - y).abs() <= 2e-5 + 1e-4 * x.abs(),
            "step {s}: reference {x} vs asm {y}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn model_out(args: &[&str], extra: &[&Path]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c.args(args);
    for p in extra {
        c.arg(p);
    }
    c.output().unwrap()
}

/// A run that blows up stops with a message naming the epoch and step, and leaves the checkpoint
/// already on disk unchanged.
#[test]
fn a_diverging_run_stops_and_points_to_the_last_good_checkpoint() {
    let dir = tmp_with_blobs("diverge", 8, (32, 1), (8, 2));
    let ck = dir.join("c.ckpt");
    let base = [
        &["train", "--batch-size", "4", "--log-every", "0"][..],
        &SMALL_NET,
    ]
    .concat();
    let (train, test) = (dir.join("train.bin"), dir.join("test.bin"));
    // One good epoch with a checkpoint, then resume it with an absurd learning rate.
    let train_with = |extra: &[&str]| {
        model_out(
            &[&base[..], extra, &["--train"]].concat(),
            &[
                &train,
                Path::new("--test"),
                &test,
                Path::new("--checkpoint"),
                &ck,
            ],
        )
    };
    assert_ok(&train_with(&["--epochs", "1"]));
    let before = std::fs::read(&ck).unwrap();
    let bad = train_with(&["--epochs", "3", "--lr", "1e30"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("epoch 1") && err.contains("step") && err.contains("c.ckpt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the good checkpoint was touched"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A configuration larger than the machine is refused before allocating; `--dry-run` says what
/// a configuration needs; a directory given as data is refused by name.
#[test]
fn oversized_configurations_and_directories_are_refused() {
    let dir = tmp_with_blobs("sizes", 32, (4, 1), (4, 2));
    let out = model_out(
        &["train", "--dry-run", "--test"],
        &[
            &dir.join("test.bin"),
            Path::new("--train"),
            &dir.join("train.bin"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("activations") && text.contains("total"),
        "{text}"
    );
    synthetic_blob(&dir.join("big.bin"), 4, 1024, 1);
    let eval_big = [
        "eval",
        "--batch-size",
        "4096",
        "--params",
        "/nonexistent.raw",
        "--data",
    ];
    let out = model_out(&eval_big, &[&dir.join("big.bin")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs") && err.contains("GiB"), "{err}");
    let out = model_out(&["train", "--train"], &[&dir]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

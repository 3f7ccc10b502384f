//! Resuming a run: a run killed after a checkpoint, or SIGKILLed at any moment, resumes to the
//! bits of an uninterrupted run, and a damaged checkpoint is refused; `--resume` keeps its
//! promise: the checkpoint records what determines the result (hyper-parameters, recipe,
//! `--limit`, the blobs' checksums); a resume that contradicts it is refused with exit 2, naming
//! the difference and `--force`; fewer epochs than done are refused; a fresh run never destroys
//! an earlier run's checkpoint. (The checkpoint file format itself: `tests/checkpoint.rs`;
//! resuming under faults: `tests/faults.rs` and `tests/hardening.rs`.)

mod common;
use catdog::blob::Blob;
use catdog::checkpoint::{self, BlobId, CheckpointRef};
use common::{
    assert_ok, assert_refused, small_run, stderr_of, synthetic_blob, tmp_with_blobs, SMALL_NET,
};
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, extra: &[&str]) -> Output {
    let d = dir.display().to_string();
    let test = match extra.iter().position(|a| *a == "--test") {
        Some(i) => extra[i + 1].to_string(),
        None => format!("{d}/test.bin"),
    };
    let extra: Vec<&str> = match extra.iter().position(|a| *a == "--test") {
        Some(i) => [&extra[..i], &extra[i + 2..]].concat(),
        None => extra.to_vec(),
    };
    Command::new(env!("CARGO_BIN_EXE_model"))
        .current_dir(dir)
        .args([
            "train",
            "--train",
            &format!("{d}/train.bin"),
            "--test",
            &test,
            "--batch-size",
            "8",
            "--log-every",
            "0",
        ])
        .args(SMALL_NET)
        .args(&extra)
        .output()
        .unwrap()
}

#[test]
fn resume_refuses_what_contradicts_the_checkpoint_unless_forced() {
    let dir = tmp_with_blobs("promise", 16, (48, 1), (16, 2));
    synthetic_blob(&dir.join("other.bin"), 16, 16, 3);
    let ck = dir.join("c.ckpt");
    let cks = ck.display().to_string();
    let o = run(
        &dir,
        &[
            "--epochs",
            "2",
            "--limit",
            "40",
            "--lr",
            "0.02",
            "--checkpoint",
            &cks,
        ],
    );
    assert_ok(&o);
    // What the checkpoint records.
    let c = checkpoint::load(&ck).unwrap();
    let rec = c.run.expect("a run record");
    assert_eq!(rec.limit, Some(40));
    assert_eq!(
        rec.train,
        BlobId::of(&Blob::open(&dir.join("train.bin")).unwrap())
    );
    assert_eq!(
        rec.test,
        Some(BlobId::of(&Blob::open(&dir.join("test.bin")).unwrap()))
    );
    assert_eq!((c.hyper.lr, c.epochs_done), (0.02, 2));
    let before = std::fs::read(&ck).unwrap();

    // Conflicting flags: refused, each difference named, --force mentioned; nothing written.
    let o = run(
        &dir,
        &[
            "--resume", &cks, "--epochs", "3", "--lr", "0.5", "--seed", "9",
        ],
    );
    assert_refused(&o, &["--lr", "0.02", "0.5", "--seed", "--force"]);
    let o = run(&dir, &["--resume", &cks, "--epochs", "3", "--limit", "32"]);
    assert_refused(&o, &["--limit 40", "--limit 32"]);
    let o = run(&dir, &["--resume", &cks, "--epochs", "3", "--flip"]);
    assert_refused(&o, &["--flip", "flips off", "flips on"]);
    // Other data.
    let other = dir.join("other.bin").display().to_string();
    let o = run(&dir, &["--resume", &cks, "--epochs", "3", "--test", &other]);
    assert_refused(&o, &["test data", "other.bin", "--force"]);
    // Fewer epochs than done: refused, even with --force.
    let o = run(&dir, &["--resume", &cks, "--epochs", "1", "--force"]);
    assert_refused(&o, &["already done 2 epochs"]);
    assert!(
        std::fs::read(&ck).unwrap() == before,
        "a refused resume touched the checkpoint"
    );

    // The same flags, or none: fine; the limit and learning rate come from the checkpoint.
    let o = run(&dir, &["--resume", &cks, "--epochs", "3"]);
    assert_ok(&o);
    let c = checkpoint::load(&ck).unwrap();
    assert_eq!(
        (c.epochs_done, c.hyper.lr, c.run.unwrap().limit),
        (3, 0.02, Some(40))
    );

    // --force: the new value takes effect, and the run says so.
    let o = run(
        &dir,
        &["--resume", &cks, "--epochs", "4", "--lr", "0.01", "--force"],
    );
    assert_ok(&o);
    assert!(stderr_of(&o).contains("--force"), "{}", stderr_of(&o));
    assert_eq!(checkpoint::load(&ck).unwrap().hyper.lr, 0.01);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_fresh_run_moves_an_earlier_checkpoint_aside_and_old_checkpoints_need_force() {
    let dir = tmp_with_blobs("aside", 16, (32, 1), (16, 2));
    let ck = dir.join("c.ckpt");
    let cks = ck.display().to_string();
    let o = run(&dir, &["--epochs", "1", "--checkpoint", &cks]);
    assert_ok(&o);
    let first = std::fs::read(&ck).unwrap();
    let o = run(
        &dir,
        &["--epochs", "1", "--seed", "5", "--checkpoint", &cks],
    );
    assert_ok(&o);
    let aside = dir.join("c.1.ckpt");
    assert!(
        stderr_of(&o).contains(&aside.display().to_string()),
        "{}",
        stderr_of(&o)
    );
    assert!(
        std::fs::read(&aside).unwrap() == first,
        "the earlier checkpoint was not kept"
    );
    assert_eq!(checkpoint::load(&ck).unwrap().hyper.seed, 5);

    // A version 1 checkpoint records no data: resuming it needs --force.
    let c = checkpoint::load(&ck).unwrap();
    let v1 = dir.join("v1.ckpt");
    let version1 = CheckpointRef {
        run: None,
        ..c.view()
    };
    checkpoint::save(&v1, &version1).unwrap();
    assert!(checkpoint::load(&v1).unwrap().run.is_none());
    let v1s = v1.display().to_string();
    let o = run(&dir, &["--resume", &v1s, "--epochs", "2"]);
    assert_refused(&o, &["older version", "--force"]);
    let o = run(&dir, &["--resume", &v1s, "--epochs", "2", "--force"]);
    assert_ok(&o);
    assert!(checkpoint::load(&v1).unwrap().run.is_some());
    std::fs::remove_dir_all(&dir).ok();
}

fn model() -> Command {
    Command::new(env!("CARGO_BIN_EXE_model"))
}

/// `model` with `args`, then each `(flag, name)` as the flag and the file `name` in `dir`.
fn model_with(args: &[String], dir: &Path, files: &[(&str, &str)]) -> Command {
    let mut c = model();
    c.args(args);
    for (flag, name) in files {
        c.arg(flag).arg(dir.join(name));
    }
    c
}

/// The uninterrupted run of `args`, into checkpoint `NAME.ckpt` and parameters `NAME.raw` in
/// `dir`, which must succeed.
fn full_run(args: &[String], dir: &Path, name: &str) -> Output {
    let (ck, raw) = (format!("{name}.ckpt"), format!("{name}.raw"));
    let full = model_with(args, dir, &[("--checkpoint", &ck), ("--save", &raw)])
        .output()
        .unwrap();
    assert_ok(&full);
    full
}

#[test]
fn a_killed_run_resumes_to_the_same_bits_and_a_damaged_checkpoint_is_refused() {
    let dir = tmp_with_blobs("resume", 32, (96, 1), (32, 2));
    let args = small_run(&dir, 4);
    let full = full_run(&args, &dir, "a");
    // The same run, dying right after epoch 2's checkpoint, then resumed.
    let killed = model_with(&args, &dir, &[("--checkpoint", "b.ckpt")])
        .env("CATDOG_TEST_ABORT_AFTER_EPOCH", "2")
        .output()
        .unwrap();
    assert!(
        !killed.status.success(),
        "the test hook should have aborted the run"
    );
    let ck = catdog::checkpoint::load(&dir.join("b.ckpt")).unwrap();
    assert_eq!(ck.epochs_done, 2);
    // Resumed on another thread count: the bits do not depend on it.
    let mut one_thread = args.clone();
    common::set_flag(&mut one_thread, "--threads", "1");
    let resumed = model_with(
        &one_thread,
        &dir,
        &[
            ("--checkpoint", "b.ckpt"),
            ("--resume", "b.ckpt"),
            ("--save", "b.raw"),
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("resuming after epoch 2 of 4"), "{err}");
    assert!(!err.contains("epoch 2/4"), "epoch 2 ran again: {err}");
    let a = std::fs::read(dir.join("a.raw")).unwrap();
    let b = std::fs::read(dir.join("b.raw")).unwrap();
    assert!(
        a == b,
        "resumed parameters differ from the uninterrupted run's"
    );
    assert_eq!(
        String::from_utf8_lossy(&full.stdout),
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert_eq!(
        catdog::checkpoint::load(&dir.join("b.ckpt"))
            .unwrap()
            .history
            .len(),
        4
    );

    // Damage one byte in the middle of the checkpoint: refused, exit code 2, no panic.
    let mut bytes = std::fs::read(dir.join("b.ckpt")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(dir.join("bad.ckpt"), &bytes).unwrap();
    let out = model_with(&args, &dir, &[("--resume", "bad.ckpt")])
        .arg("--no-checkpoint")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("damaged") && err.contains("bad.ckpt"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Truncated: refused too.
    std::fs::write(dir.join("short.ckpt"), &bytes[..bytes.len() / 3]).unwrap();
    let out = model_with(&args, &dir, &[("--resume", "short.ckpt")])
        .arg("--no-checkpoint")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// SIGKILL at several moments of a run, then resume (or start again when no checkpoint was
/// written yet): the final parameters equal an uninterrupted run's, and no half-written file is
/// ever left under an output name.
#[test]
fn sigkill_at_any_moment_then_resume_gives_the_same_result() {
    let dir = tmp_with_blobs("sigkill", 32, (1200, 7), (32, 8));
    let args = small_run(&dir, 6);
    let metrics = dir.join("m.csv");
    full_run(&args, &dir, "full");
    let want = std::fs::read(dir.join("full.raw")).unwrap();
    let started = std::time::Instant::now();
    let _ = model().args(&args).arg("--no-checkpoint").output().unwrap();
    let run_ms = started.elapsed().as_millis() as u64;
    for (round, frac) in [0.15, 0.4, 0.65, 0.9].iter().enumerate() {
        let ck = dir.join(format!("k{round}.ckpt"));
        let out = dir.join(format!("k{round}.raw"));
        let mut child = model()
            .args(&args)
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--metrics")
            .arg(&metrics)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(
            (run_ms as f64 * frac) as u64,
        ));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever exists under an output name is whole.
        if ck.exists() {
            catdog::checkpoint::load(&ck).expect("a checkpoint left by a killed run loads");
        }
        if metrics.exists() {
            catdog::metrics::read_csv(&metrics).expect("a metrics file left by a killed run reads");
        }
        eprintln!(
            "killed at {:.0}% of a {run_ms} ms run: checkpoint {}",
            frac * 100.0,
            if ck.exists() {
                "present, resuming"
            } else {
                "absent, starting again"
            }
        );
        let mut again = model();
        again
            .args(&args)
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--save")
            .arg(&out);
        if ck.exists() {
            again.arg("--resume").arg(&ck);
        }
        let res = again.output().unwrap();
        assert_ok(&res);
        assert!(
            std::fs::read(&out).unwrap() == want,
            "kill at {frac} of the run: parameters differ"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    // A kill can land between writing a temporary file and renaming it; such a file never sits
    // under a real output name, and the next successful write of the same output replaces its
    // own temporary name.
    eprintln!("temporary files left by kills: {leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

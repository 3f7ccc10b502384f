//! `--resume` keeps its promise: the checkpoint records what determines the result (hyper-
//! parameters, recipe, `--limit`, the blobs' checksums); a resume that contradicts it is refused
//! with exit 2, naming the difference and `--force`; fewer epochs than done are refused; a fresh
//! run never destroys an earlier run's checkpoint.

mod common;
use catdog::blob::Blob;
use catdog::checkpoint::{self, BlobId, CheckpointRef};
use common::{assert_ok, assert_refused, stderr_of, synthetic_blob, tmp_with_blobs, SMALL_NET};
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
        BlobId::of(&Blob::open(&dir.join("test.bin")).unwrap())
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

//! The original tier against the assembly original's own outputs, on the fidelity case in
//! `../shared/fidelity` (a run the original computed itself: 160 training photos, 64 test photos,
//! 2 epochs, batch 16, lr 0.01, its parameters after training). `--kernels original` must print
//! the original's 20 loss lines and its accuracy line character for character, and save
//! parameters with the sha256 of the original's. The fast tier, on the same case, must print
//! the same format and follow the original's losses closely.
//!
//! Skipped, with a note, when `../shared/fidelity` is absent, when the CPU lacks AVX-512, and when
//! the inputs this machine's numpy and Pillow make differ from the ones the original was run on
//! (then the case proves nothing here: the note says so). Under `CATDOG_REQUIRE_SHARED=1` (and
//! `CATDOG_REQUIRE_AVX512=1` for the CPU) each of these is a failure instead.

mod common;
use catdog::testing::{avx512_or_skip, require};
use common::shared_or_skip;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `cmd`, asserting that it ran and succeeded (else: `what` failed, and its standard error).
fn output_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {err}");
    out
}

/// The fidelity case's inputs, packed: `(dir, train.bin, test.bin, parameters.raw)`, or `None`
/// (with a note printed) when the case cannot run here.
fn prepare(tag: &str) -> Option<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let test = format!("fidelity ({tag})");
    let fid = shared_or_skip(&test, "fidelity")?;
    let photos = shared_or_skip(&test, "data/dogs-vs-cats/train")?;
    avx512_or_skip(&test)?;
    let dir = std::env::temp_dir().join(format!("catdog-fidelity-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    output_ok(
        Command::new("python3")
            .arg(fid.join("make_inputs.py"))
            .arg(&photos)
            .arg(&dir)
            .args(["300", "7"]),
        "make_inputs.py (it needs numpy and Pillow: pip install numpy pillow)",
    );
    let expected = std::fs::read_to_string(fid.join("inputs.sha256")).unwrap();
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, name) = line.split_once(char::is_whitespace).unwrap();
        let got = sha256_hex(&dir.join(name.trim()));
        let lack = format!(
            "{name} made here has sha256 {got}, not the original's input {hash}: this machine's \
             numpy or Pillow resizes or draws differently, so the fidelity case cannot be \
             reproduced here"
        );
        require(got == hash, "CATDOG_REQUIRE_SHARED", &test, &lack).ok()?;
    }
    for stem in ["train", "test"] {
        let status = Command::new(repo().join("tools/pack"))
            .arg("--from-raw")
            .arg(dir.join(format!("{stem}_data.raw")))
            .arg(dir.join(format!("{stem}_label.raw")))
            .arg("-o")
            .arg(dir.join(format!("{stem}.bin")))
            .status()
            .expect("tools/pack runs");
        assert!(status.success(), "tools/pack --from-raw {stem} failed");
    }
    Some((
        dir.clone(),
        dir.join("train.bin"),
        dir.join("test.bin"),
        dir.join("parameters.raw"),
    ))
}

/// Runs `model train` on the case with extra flags; returns its stdout.
fn train(dir: &Path, train: &Path, test: &Path, init: &Path, extra: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_model"));
    cmd.arg("train")
        .arg("--train")
        .arg(train)
        .arg("--test")
        .arg(test)
        .arg("--init")
        .arg(init)
        .args([
            "--no-shuffle",
            "--limit",
            "160",
            "--epochs",
            "2",
            "--log-every",
            "1",
        ])
        .arg("--no-checkpoint")
        .args(extra)
        .current_dir(dir);
    String::from_utf8(output_ok(&mut cmd, "model train").stdout).unwrap()
}

fn original_trace() -> String {
    std::fs::read_to_string(repo().join("../shared/fidelity/original_trace.txt")).unwrap()
}

#[test]
fn original_tier_prints_the_originals_lines_and_saves_its_bits() {
    let Some((dir, tr, te, init)) = prepare("original") else {
        return;
    };
    let saved = dir.join("after.raw");
    let stdout = train(
        &dir,
        &tr,
        &te,
        &init,
        &[
            "--kernels",
            "original",
            "--threads",
            "1",
            "--save",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(
        stdout,
        original_trace(),
        "the log differs from the original's"
    );
    let want =
        std::fs::read_to_string(repo().join("../shared/fidelity/original_params_after.sha256"))
            .unwrap();
    let want = want.split_whitespace().next().unwrap();
    assert_eq!(
        sha256_hex(&saved),
        want,
        "the parameters after 2 epochs differ from the original's"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The loss of every `Epoch: E, Step: S, Loss: L` line, with its `Epoch: E, Step: S` prefix.
fn losses(log: &str) -> Vec<(String, f64)> {
    log.lines()
        .filter_map(|l| l.rsplit_once(", Loss: "))
        .map(|(head, loss)| (head.to_string(), loss.parse().unwrap()))
        .collect()
}

#[test]
fn fast_tier_prints_the_originals_format_and_follows_its_losses() {
    let Some((dir, tr, te, init)) = prepare("fast") else {
        return;
    };
    let stdout = train(
        &dir,
        &tr,
        &te,
        &init,
        &["--kernels", "fast", "--threads", "2"],
    );
    let (ours, theirs) = (losses(&stdout), losses(&original_trace()));
    assert_eq!(ours.len(), 20, "{stdout}");
    for ((head, a), (their_head, b)) in ours.iter().zip(&theirs) {
        assert_eq!(head, their_head, "the lines are numbered as the original's");
        assert!(
            (a - b).abs() < 2e-4,
            "{head}: loss {a} is too far from the original's {b}"
        );
    }
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("Accuracy is: 0."));
    let _ = std::fs::remove_dir_all(&dir);
}

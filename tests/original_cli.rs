//! `--kernels original` through the command line: it trains, evaluates, predicts and benches;
//! its predictions agree with its evaluation; it refuses what it has no kernels for; and it
//! follows the fast tier's losses closely (different summation order, same network).

mod common;
use catdog::testing::avx512_or_skip;
use common::{final_accuracy, synthetic_blob, tmp_with_blobs};
use std::path::Path;
use std::process::{Command, Output};

fn model(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c.args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    c.output().expect("model runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "model failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

const SMALL: [&str; 8] = [
    "--widths", "16,32,16", "--fc1", "16", "--epochs", "2", "--lr", "0.02",
];

fn losses(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|l| l.rsplit_once(", Loss: "))
        .map(|(_, l)| l.parse().unwrap())
        .collect()
}

#[test]
fn the_original_tier_trains_evaluates_predicts_and_benches() {
    if avx512_or_skip("the_original_tier_trains_evaluates_predicts_and_benches").is_none() {
        return;
    }
    let dir = tmp_with_blobs("original-cli", 16, (64, 1), (24, 2));
    let (train, test) = (dir.join("train.bin"), dir.join("test.bin"));
    let (orig_raw, fast_raw) = (dir.join("orig.raw"), dir.join("fast.raw"));
    let run = |kernels: &str, threads: &str, save: &Path| {
        let mut args = vec!["train", "--kernels", kernels, "--threads", threads];
        args.extend(SMALL);
        args.extend(["--no-shuffle", "--no-checkpoint", "--log-every", "1"]);
        ok(&model(
            &args,
            &[("--train", &train), ("--test", &test), ("--save", save)],
        ))
    };
    let orig = run("original", "1", &orig_raw);
    // Lines counted from 0 as the original prints them: 64 samples = 4 steps of 16 per epoch.
    let heads: Vec<&str> = orig
        .lines()
        .map(|l| l.split(", Loss").next().unwrap())
        .collect();
    assert_eq!(heads[0], "Epoch: 0, Step: 0");
    assert_eq!(heads[7], "Epoch: 1, Step: 3");
    assert!(orig.lines().last().unwrap().starts_with("Accuracy is: "));
    // The original tier ignores --threads: the same bits on 2.
    let orig2_raw = dir.join("orig2.raw");
    let orig2 = run("original", "2", &orig2_raw);
    assert_eq!(orig, orig2);
    assert_eq!(
        std::fs::read(&orig_raw).unwrap(),
        std::fs::read(&orig2_raw).unwrap()
    );
    // The fast tier computes the same network in another order: losses close, bits not equal.
    let fast = run("fast", "2", &fast_raw);
    let (a, b) = (losses(&orig), losses(&fast));
    assert_eq!(a.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-3, "original {x} vs fast {y}");
    }
    assert_ne!(
        std::fs::read(&orig_raw).unwrap(),
        std::fs::read(&fast_raw).unwrap()
    );

    // eval and predict with the original tier agree with each other.
    let arch = [
        "--widths",
        "16,32,16",
        "--fc1",
        "16",
        "--kernels",
        "original",
    ];
    let mut eval_args = vec!["eval"];
    eval_args.extend(arch);
    let eval = ok(&model(
        &eval_args,
        &[("--params", &orig_raw), ("--data", &test)],
    ));
    let acc: f64 = final_accuracy(&eval);
    let mut predict_args = vec!["predict"];
    predict_args.extend(arch);
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c.args(&predict_args)
        .arg("--params")
        .arg(&orig_raw)
        .arg(&test);
    let predicted = ok(&c.output().unwrap());
    let labels = catdog::dataset::open_blob(&test, "test", true).unwrap();
    let labels = catdog::dataset::Dataset::labels(&labels).to_vec();
    let rows: Vec<&str> = predicted.lines().collect();
    assert_eq!(rows.len(), 24);
    let correct = rows
        .iter()
        .zip(&labels)
        .filter(|(row, &l)| row.ends_with(if l == 1 { "\tdog" } else { "\tcat" }))
        .count();
    assert!(
        (acc - correct as f64 / 24.0).abs() < 1e-6,
        "{acc} vs {correct}/24"
    );

    // bench runs and prints its two last lines.
    let bench = ok(&model(
        &[
            "bench",
            "--kernels",
            "original",
            "--image",
            "16",
            "--widths",
            "16,16,16",
            "--fc1",
            "16",
            "--batches",
            "1",
        ],
        &[],
    ));
    let tail: Vec<&str> = bench.lines().rev().take(2).collect();
    assert!(
        tail[1].starts_with("train: ") && tail[0].starts_with("infer: "),
        "{bench}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_original_tier_refuses_what_it_has_no_kernels_for() {
    let dir = tmp_with_blobs("original-refusals", 16, (32, 1), (16, 2));
    let (train, test) = (dir.join("train.bin"), dir.join("test.bin"));
    for extra in [
        &["--recipe", "improved"][..],
        &["--momentum", "0.9"],
        &["--flip"],
        &["--dropout", "0.5"],
    ] {
        let mut args = vec!["train", "--kernels", "original", "--no-checkpoint"];
        args.extend(extra);
        let out = model(&args, &[("--train", &train), ("--test", &test)]);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--kernels original runs the original's plain SGD"),
            "{err}"
        );
    }
    // Image sizes its padding routine cannot walk (rows of 3 x 8 floats are not 16-float blocks).
    synthetic_blob(&dir.join("small.bin"), 32, 8, 1);
    let out = model(
        &[
            "train",
            "--kernels",
            "original",
            "--no-checkpoint",
            "--widths",
            "16,16,16",
        ],
        &[
            ("--train", &dir.join("small.bin")),
            ("--test", &dir.join("small.bin")),
        ],
    );
    if avx512_or_skip("the original tier's refusal of a batch not a multiple of 16").is_some() {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 16"));
    }
    let out = model(&["bench", "--kernels", "original", "--profile"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // --conv chooses among the fast tier's algorithms only.
    let out = model(&["bench", "--kernels", "original", "--conv", "direct"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--conv chooses the fast kernels' conv algorithm"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! `model` on CPUs without AVX-512, emulated by Debian's `qemu-user`: `qemu-x86_64 -cpu Haswell`
//! (AVX2 and FMA, no AVX-512: any EVEX instruction is an illegal instruction there) and
//! `-cpu Nehalem` (no AVX at all: the baseline build of the portable kernels). On both, the
//! default is the portable path (one `note:` line), a few training steps follow the scalar
//! reference's losses (run natively), `eval` and `predict` (on a photo) agree with the
//! reference, a tiny `bench` runs, and `--kernels fast` and `--kernels original` are refused with
//! one error line and exit code 2.
//!
//! Without `qemu-x86_64` on the PATH the test says so and is skipped, and fails instead under
//! `CATDOG_REQUIRE_QEMU=1`, which `.ci/run` sets after installing qemu-user.

mod common;
#[path = "common/http.rs"]
mod http;

use common::{assert_ok, assert_refused, final_accuracy, stderr_of, tmp_with_blobs, SMALL_NET};
use std::path::Path;
use std::process::{Command, Output};

/// `model ARGS` under `qemu-x86_64 -cpu CPU` (`None`: natively), without `CATDOG_KERNELS`.
fn model(cpu: Option<&str>, args: &[&str], files: &[&Path]) -> Output {
    let exe = env!("CARGO_BIN_EXE_model");
    let mut c = match cpu {
        Some(cpu) => {
            let mut c = Command::new("qemu-x86_64");
            c.args(["-cpu", cpu, exe]);
            c
        }
        None => Command::new(exe),
    };
    c.env_remove("CATDOG_KERNELS").args(args);
    for f in files {
        c.arg(f);
    }
    c.output().expect("run model")
}

fn losses(o: &Output) -> Vec<f32> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split("Loss: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

/// The `P(dog)` column of `predict`'s rows.
fn probabilities(o: &Output) -> Vec<f32> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect()
}

fn qemu_present() -> bool {
    Command::new("qemu-x86_64")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn portable_path_runs_without_avx512_and_matches_the_reference() {
    let test = "the emulated CPUs without AVX-512";
    let lack = "qemu-x86_64 is not installed (apt-get install qemu-user)";
    if catdog::testing::require(qemu_present(), "CATDOG_REQUIRE_QEMU", test, lack).is_err() {
        return;
    }
    let dir = tmp_with_blobs("qemu", 16, (24, 3), (12, 4));
    let (train, test_blob) = (dir.join("train.bin"), dir.join("test.bin"));
    let photo = dir.join("dog.png");
    std::fs::write(&photo, http::png(40, 30, true, 7)).unwrap();
    let train_args = [
        SMALL_NET.as_slice(),
        &[
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--no-shuffle",
            "--log-every",
            "1",
            "--threads",
            "2",
        ],
    ]
    .concat();
    let run_train = |cpu: Option<&str>, kernels: &[&str], save: &Path| {
        let mut args = vec!["train"];
        args.extend(kernels);
        args.extend(&train_args);
        let (t, s) = (train.to_str().unwrap(), save.to_str().unwrap());
        args.extend([
            "--train",
            t,
            "--test",
            test_blob.to_str().unwrap(),
            "--checkpoint",
            s,
        ]);
        model(cpu, &args, &[])
    };

    // The oracle, natively: the scalar reference.
    let ref_params = dir.join("reference.ckpt");
    let reference = run_train(None, &["--kernels", "reference"], &ref_params);
    assert_ok(&reference);
    let ref_losses = losses(&reference);
    assert_eq!(
        ref_losses.len(),
        6,
        "{}",
        String::from_utf8_lossy(&reference.stdout)
    );
    // `eval` or `predict` of the reference's parameters on `what`.
    let with_params = |cpu: Option<&str>, command: &str, kernels: &[&str], what: &[&str]| {
        let mut args = vec![command, "--params", ref_params.to_str().unwrap()];
        args.extend(SMALL_NET);
        args.extend(kernels);
        args.extend(what);
        model(cpu, &args, &[])
    };
    let data = ["--data", test_blob.to_str().unwrap()];
    let photo_arg = [photo.to_str().unwrap()];
    let ref_eval = with_params(None, "eval", &["--kernels", "reference"], &data);
    assert_ok(&ref_eval);
    let ref_predict = with_params(None, "predict", &["--kernels", "reference"], &photo_arg);
    assert_ok(&ref_predict);

    for cpu in ["Haswell", "Nehalem"] {
        // Training: the default is the portable path, said in one note line.
        let params = dir.join(format!("{cpu}.ckpt"));
        let o = run_train(Some(cpu), &[], &params);
        assert_ok(&o);
        let err = stderr_of(&o);
        let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note:")).collect();
        assert_eq!(notes.len(), 1, "{cpu}: {err}");
        assert!(
            notes[0].contains("running the portable kernels"),
            "{cpu}: {err}"
        );
        let l = losses(&o);
        assert_eq!(l.len(), ref_losses.len(), "{cpu}");
        for (s, (a, b)) in l.iter().zip(&ref_losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{cpu} step {s}: portable {a} vs reference {b}"
            );
        }

        // Evaluation and prediction, on the same parameters as the reference's.
        let e = with_params(Some(cpu), "eval", &[], &data);
        assert_ok(&e);
        let (acc, ref_acc) = (
            final_accuracy(&String::from_utf8_lossy(&e.stdout)),
            final_accuracy(&String::from_utf8_lossy(&ref_eval.stdout)),
        );
        assert_eq!(acc, ref_acc, "{cpu}: eval accuracy");
        let p = with_params(Some(cpu), "predict", &[], &photo_arg);
        assert_ok(&p);
        let (pp, rp) = (probabilities(&p), probabilities(&ref_predict));
        assert_eq!(pp.len(), 1, "{cpu}");
        assert!(
            (pp[0] - rp[0]).abs() <= 1e-5,
            "{cpu}: P(dog) {} vs reference {}",
            pp[0],
            rp[0]
        );

        // A tiny benchmark.
        let mut args = vec![
            "bench",
            "--image",
            "16",
            "--batches",
            "2",
            "--batch-size",
            "4",
        ];
        args.extend(["--infer-batch", "4"]);
        args.extend(SMALL_NET);
        let b = model(Some(cpu), &args, &[]);
        assert_ok(&b);
        let out = String::from_utf8_lossy(&b.stdout);
        assert!(out.contains("kernels portable"), "{cpu}: {out}");
        assert!(
            out.lines().any(|l| l.starts_with("infer: ")),
            "{cpu}: {out}"
        );

        // The AVX-512 kernels are refused, before any work.
        for k in ["fast", "original"] {
            let mut args = vec!["bench", "--kernels", k, "--image", "16", "--batches", "1"];
            args.extend(SMALL_NET);
            let o = model(Some(cpu), &args, &[]);
            assert_refused(
                &o,
                &[
                    &format!("--kernels {k} needs AVX-512"),
                    "--kernels portable",
                ],
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

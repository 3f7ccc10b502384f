//! The improved recipe's parts (dropout, flips) with their gradients, and the run lifecycle:
//! a killed run resumes to the same bits, a damaged checkpoint is refused, predict agrees with
//! eval.

mod common;
#[path = "common/net.rs"]
mod net;
use catdog::config::Hyper;
use catdog::cpu;
use catdog::dataset::{Dataset, Synthetic};
use catdog::layers::dropout;
use catdog::model::Net;
use catdog::network::Kernels;
use catdog::testing::fns;
use catdog::train::{self, EpochOptions};
use common::{assert_ok, final_accuracy, strings, tmp_with_blobs};
use net::{central_difference, he_net};
use std::path::Path;
use std::process::Command;

fn model() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c
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

fn small_run(dir: &Path) -> Vec<String> {
    let d = dir.display();
    strings(&[
        "train",
        "--train",
        &format!("{d}/train.bin"),
        "--test",
        &format!("{d}/test.bin"),
        "--widths",
        "16,32,16",
        "--fc1",
        "16",
        "--batch-size",
        "8",
        "--epochs",
        "4",
        "--lr",
        "0.02",
        "--recipe",
        "improved",
        "--threads",
        "2",
        "--log-every",
        "0",
    ])
}

#[test]
fn a_killed_run_resumes_to_the_same_bits_and_a_damaged_checkpoint_is_refused() {
    let dir = tmp_with_blobs("resume", 32, (96, 1), (32, 2));
    let args = small_run(&dir);
    let full = model_with(
        &args,
        &dir,
        &[("--checkpoint", "a.ckpt"), ("--save", "a.raw")],
    )
    .output()
    .unwrap();
    assert_ok(&full);
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
    let resumed = model_with(
        &args,
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

#[test]
fn predict_agrees_with_eval_and_names_every_file() {
    let dir = tmp_with_blobs("predict", 16, (64, 3), (40, 4));
    let mut args = small_run(&dir);
    let e = args.iter().position(|a| a == "--epochs").unwrap();
    args[e + 1] = "2".into();
    args.extend(["--no-checkpoint", "--save"].map(String::from));
    args.push(dir.join("p.raw").display().to_string());
    let out = model().args(&args).output().unwrap();
    assert_ok(&out);
    let arch = ["--widths", "16,32,16", "--fc1", "16"];
    let eval = model()
        .arg("eval")
        .arg("--params")
        .arg(dir.join("p.raw"))
        .arg("--data")
        .arg(dir.join("test.bin"))
        .args(arch)
        .output()
        .unwrap();
    assert_ok(&eval);
    let eval_out = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval_out.contains("confusion matrix") && eval_out.contains("precision"),
        "{eval_out}"
    );
    let acc: f64 = final_accuracy(&eval_out);
    let pred = model()
        .arg("predict")
        .arg("--params")
        .arg(dir.join("p.raw"))
        .arg(dir.join("test.bin"))
        .args(arch)
        .output()
        .unwrap();
    assert!(pred.status.success());
    let blob = catdog::blob::Blob::open(&dir.join("test.bin")).unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&pred.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 40);
    let mut right = 0;
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!(f[0], format!("synthetic/{i}.png"));
        let p: f32 = f[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(f[2], if p > 0.5 { "dog" } else { "cat" });
        right += ((f[2] == "dog") == (blob.labels()[i] == 1)) as usize;
    }
    // eval prints the accuracy as the original does: right / total in f32, truncated.
    let printed: f64 = train::original_decimal((right as f32 / 40.0) as f64)
        .parse()
        .unwrap();
    assert!(
        (printed - acc).abs() < 1e-9,
        "predict {right}/40 vs eval {acc}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dropout_kernel_matches_reference_and_keeps_the_asked_fraction() {
    let n = 16 * 1000;
    let mut bits = vec![0u8; dropout::mask_bytes(n)];
    dropout::draw_mask(&mut bits, 0.7, [1, 2, 3, 4, 5]);
    let kept = bits.iter().map(|b| b.count_ones() as usize).sum::<usize>();
    let frac = kept as f64 / n as f64;
    assert!((frac - 0.7).abs() < 0.02, "kept {frac}");
    // Another key, another mask; the same key, the same mask.
    let mut other = vec![0u8; bits.len()];
    dropout::draw_mask(&mut other, 0.7, [1, 2, 3, 4, 6]);
    assert_ne!(bits, other);
    dropout::draw_mask(&mut other, 0.7, [1, 2, 3, 4, 5]);
    assert_eq!(bits, other);
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut r = x.clone();
    (fns(Kernels::Reference).dropout)(&mut r, &bits, 0.7);
    for i in [0, 1, 17, 4095, n - 1] {
        let on = bits[i / 8] >> (i % 8) & 1 == 1;
        assert_eq!(r[i], if on { x[i] / 0.7 } else { 0.0 });
    }
    if cpu::has_avx512() {
        let mut a = x.clone();
        (fns(Kernels::Fast).dropout)(&mut a, &bits, 0.7);
        assert!(a == r, "asm dropout differs from the reference");
    } else {
        eprintln!("note: no AVX-512 here: asm dropout not checked");
    }
}

fn tiny_net(path: Kernels) -> Net {
    let h = Hyper {
        batch: 3,
        threads: 1,
        epochs: 1,
        lr: 0.05,
        seed: 3,
        ..catdog::testing::tiny_hyper()
    };
    he_net(&h, path, 17, false)
}

/// With dropout (fixed masks for a given step) and flips on, the gradients still match central
/// differences of the loss: the masks enter forward and backward alike.
#[test]
fn gradients_with_dropout_and_flips_match_finite_differences() {
    let paths = if cpu::has_avx512() {
        vec![Kernels::Reference, Kernels::Fast]
    } else {
        vec![Kernels::Reference]
    };
    for path in paths {
        let mut n = tiny_net(path);
        let data = Synthetic::new(3, 8, 5);
        let idx = [0u32, 1, 2];
        let opts = EpochOptions {
            flips: true,
            dropout: 0.4,
            seed: 9,
            ..EpochOptions::plain(0.05)
        };
        let aug = Some((&opts, 3, 1));
        train::loss_and_gradients(&mut n, &data, &idx, aug);
        let grads = n.grads.all()[..n.shapes.param_count()].to_vec();
        let lens = n.shapes.param_lens();
        let (mut off, mut good, mut total) = (0, 0, 0);
        for &len in &lens {
            for k in 0..len.min(6) {
                let i = off + k * len / len.min(6);
                let fd = central_difference(&mut n, i, 1e-3, |n| {
                    train::loss_and_gradients(n, &data, &idx, aug)
                });
                let g = grads[i] as f64 / 3.0;
                total += 1;
                if (fd - g).abs() <= 2e-3 + 0.05 * g.abs() {
                    good += 1;
                } else {
                    eprintln!("{path:?} param {i}: fd {fd:.6} vs grad {g:.6}");
                }
            }
            off += len;
        }
        assert!(
            good * 10 >= total * 9,
            "{path:?}: only {good}/{total} gradients agree"
        );
    }
}

/// A flipped sample trains exactly like its mirror image fed unflipped: same loss, same
/// gradient bits.
#[test]
fn flips_are_a_pure_input_transform() {
    let path = Kernels::default_for_cpu();
    let data = Synthetic::new(3, 8, 6);
    let opts = EpochOptions {
        flips: true,
        seed: 4,
        ..EpochOptions::plain(0.05)
    };
    let (epoch, idx) = (5, [0u32, 1, 2]);
    let flipped: Vec<bool> = (0..3).map(|i| train::flip_bit(4, epoch, i)).collect();
    assert!(
        flipped.iter().any(|&f| f),
        "pick a seed that flips something"
    );
    // The same data with the flipped samples mirrored in advance.
    struct Mirrored {
        images: Vec<Vec<u8>>,
        labels: Vec<u8>,
    }
    impl Dataset for Mirrored {
        fn len(&self) -> usize {
            self.labels.len()
        }
        fn image(&self, i: usize) -> &[u8] {
            &self.images[i]
        }
        fn labels(&self) -> &[u8] {
            &self.labels
        }
    }
    let images = (0..3)
        .map(|i| {
            let img = data.image(i);
            if !flipped[i] {
                return img.to_vec();
            }
            let mut m = vec![0u8; img.len()];
            for y in 0..8 {
                for x in 0..8 {
                    let (s, d) = ((y * 8 + x) * 3, (y * 8 + 7 - x) * 3);
                    m[d..d + 3].copy_from_slice(&img[s..s + 3]);
                }
            }
            m
        })
        .collect();
    let mirrored = Mirrored {
        images,
        labels: data.labels().to_vec(),
    };
    let mut a = tiny_net(path);
    let la = train::loss_and_gradients(&mut a, &data, &idx, Some((&opts, epoch, 0)));
    let mut b = tiny_net(path);
    let lb = train::loss_and_gradients(&mut b, &mirrored, &idx, None);
    assert_eq!(la, lb);
    assert!(a.grads.all() == b.grads.all());
    // And flipping does change something.
    let mut c = tiny_net(path);
    let lc = train::loss_and_gradients(&mut c, &data, &idx, None);
    assert_ne!(la, lc);
}

/// SIGKILL at several moments of a run, then resume (or start again when no checkpoint was
/// written yet): the final parameters equal an uninterrupted run's, and no half-written file is
/// ever left under an output name.
#[test]
fn sigkill_at_any_moment_then_resume_gives_the_same_result() {
    let dir = tmp_with_blobs("sigkill", 32, (1200, 7), (32, 8));
    let mut args = small_run(&dir);
    let e = args.iter().position(|a| a == "--epochs").unwrap();
    args[e + 1] = "6".into();
    let metrics = dir.join("m.csv");
    let full = model_with(
        &args,
        &dir,
        &[("--checkpoint", "full.ckpt"), ("--save", "full.raw")],
    )
    .output()
    .unwrap();
    assert_ok(&full);
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

//! The improved recipe's parts (dropout, flips) with their gradients, and predict agreeing with
//! eval on a run of that recipe. Resuming a run is tested in `tests/resume.rs`.

mod common;
#[path = "common/net.rs"]
mod net;
use catdog::config::Kernels;
use catdog::dataset::{Dataset, Synthetic};
use catdog::layers::dropout;
use catdog::network::EpochOptions;
use catdog::report;
use catdog::testing::{avx512_or_skip, fns};
use catdog::train;
use common::{assert_ok, final_accuracy, small_run, tmp_with_blobs};
use net::{assert_gradients_match_differences, tiny_net};
use std::process::Command;

fn model() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c
}

#[test]
fn predict_agrees_with_eval_and_names_every_file() {
    let dir = tmp_with_blobs("predict", 16, (64, 3), (40, 4));
    let mut args = small_run(&dir, 2);
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
    let printed: f64 = report::original_decimal((right as f32 / 40.0) as f64)
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
    if avx512_or_skip("the asm dropout kernel").is_some() {
        let mut a = x.clone();
        (fns(Kernels::Fast).dropout)(&mut a, &bits, 0.7);
        assert!(a == r, "asm dropout differs from the reference");
    }
}

/// With dropout (fixed masks for a given step) and flips on, the gradients still match central
/// differences of the loss: the masks enter forward and backward alike.
#[test]
fn gradients_with_dropout_and_flips_match_finite_differences() {
    let paths = if avx512_or_skip("gradients_with_dropout_and_flips on the fast kernels").is_some()
    {
        vec![Kernels::Reference, Kernels::Portable, Kernels::Fast]
    } else {
        vec![Kernels::Reference, Kernels::Portable]
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
        assert_gradients_match_differences(&mut n, &data, &idx, aug, &format!("{path:?}"));
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
    let flipped: Vec<bool> = (0..3)
        .map(|i| catdog::step::flip_bit(4, epoch, i))
        .collect();
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

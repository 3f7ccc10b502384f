//! The improved recipe's augmentation (random resized crops and colour jitter), label smoothing
//! and warm-up: the warp against the plain load and against bilinear resampling, determinism
//! and thread-count independence of training with them on, the smoothed gradient against
//! finite differences, the schedule's values, the command line's defaults, refusals and resume.

mod common;
#[path = "common/net.rs"]
mod net;
use catdog::augment::{warp_image, Warp, CROP_AREA_PCT};
use catdog::config::Kernels;
use catdog::config::{Hyper, Recipe, Schedule};
use catdog::dataset::Synthetic;
use catdog::network::Network;
use catdog::network::{Epoch, EpochOptions};
use catdog::schedule;
use catdog::schedule::epoch_lr;
use catdog::testing::{avx512_or_skip, fns};
use common::{assert_ok, assert_refused, final_accuracy, small_run, stderr_of, tmp_with_blobs};
use net::{assert_gradients_match_differences, he_net, tiny_net};
use std::process::Command;

fn model() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_model"));
    c.current_dir(common::scratch_cwd());
    c
}

/// Every kernel set with our layers that this CPU runs.
fn kernel_sets() -> Vec<Kernels> {
    let mut k = vec![Kernels::Reference, Kernels::Portable];
    if avx512_or_skip("the fast kernels with augmentation").is_some() {
        k.push(Kernels::Fast);
    }
    k
}

fn image(h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut r = catdog::rng::Rng::new(seed);
    (0..h * w * 3).map(|_| r.next_u64() as u8).collect()
}

/// The warp of the whole image without jitter is the identity (mirrored with the flip): the
/// bytes it writes load to exactly the floats the load kernel makes of the stored image, on
/// every kernel set.
#[test]
fn the_whole_box_without_jitter_is_the_plain_load() {
    for (h, w) in [(8, 8), (32, 32), (16, 24)] {
        let src = image(h, w, (h * w) as u64);
        for flip in [false, true] {
            let mut warped = vec![0u8; h * w * 3];
            warp_image(&src, &mut warped, h, w, &Warp::identity(h, w, flip));
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x };
                    let (d, s) = ((y * w + x) * 3, (y * w + sx) * 3);
                    assert_eq!(warped[d..d + 3], src[s..s + 3], "{h}x{w} flip {flip}");
                }
            }
            if h != w {
                continue; // the load kernels take the network's square images
            }
            for k in kernel_sets() {
                let pad = (h + 2) * (w + 2) * 3;
                let (mut a, mut b) = (vec![0.0f32; pad], vec![0.0f32; pad]);
                (fns(k).load_image)(h, w, &src, &mut a, flip);
                (fns(k).load_image)(h, w, &warped, &mut b, false);
                assert!(a == b, "{k}: {h}x{w}, flip {flip}: the loads differ");
            }
        }
    }
}

/// A crop is bilinear resampling of the box (pixel centres onto pixel centres), and the colour
/// factors do what they say: brightness scales, contrast keeps a flat image flat, saturation 0
/// makes grey.
#[test]
fn crops_resample_bilinearly_and_the_colour_factors_act_as_named() {
    let (h, w) = (16, 16);
    let src = image(h, w, 5);
    let warp = Warp {
        x0: 3.25,
        y0: 1.5,
        w: 9.0,
        h: 11.0,
        ..Warp::identity(h, w, false)
    };
    let mut out = vec![0u8; h * w * 3];
    warp_image(&src, &mut out, h, w, &warp);
    let px = |x: usize, y: usize, c: usize| src[(y * w + x) * 3 + c] as f64;
    for oy in 0..h {
        for ox in 0..w {
            let sx = (3.25 + (ox as f64 + 0.5) * 9.0 / 16.0 - 0.5).clamp(0.0, 15.0);
            let sy = (1.5 + (oy as f64 + 0.5) * 11.0 / 16.0 - 0.5).clamp(0.0, 15.0);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(15), (y0 + 1).min(15));
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            for c in 0..3 {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
                let bottom = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
                let want = top * (1.0 - fy) + bottom * fy;
                let got = out[(oy * w + ox) * 3 + c] as f64;
                assert!(
                    (got - want).abs() <= 0.51,
                    "({ox},{oy},{c}): {got} vs {want}"
                );
            }
        }
    }
    // Brightness scales; contrast moves each value towards the mean grey (after brightness),
    // so a flat grey stays as brightness made it and a flat colour moves towards its grey.
    let warp = Warp {
        brightness: 1.2,
        contrast: 0.7,
        ..Warp::identity(h, w, false)
    };
    let flat: Vec<u8> = vec![100; h * w * 3];
    warp_image(&flat, &mut out, h, w, &warp);
    assert!(out.iter().all(|&v| v == 120), "{:?}", &out[..6]);
    let flat: Vec<u8> = (0..h * w).flat_map(|_| [100u8, 60, 20]).collect();
    warp_image(&flat, &mut out, h, w, &warp);
    let pivot = (0.299 * 100.0 + 0.587 * 60.0 + 0.114 * 20.0) * 1.2;
    let want = [100.0, 60.0, 20.0].map(|c: f64| (pivot + 0.7 * (c * 1.2 - pivot)).round() as u8);
    assert!(
        out.chunks(3).all(|p| p == want),
        "{:?} vs {want:?}",
        &out[..3]
    );
    // Saturation 0: every pixel grey.
    let warp = Warp {
        saturation: 0.0,
        ..Warp::identity(h, w, true)
    };
    warp_image(&src, &mut out, h, w, &warp);
    assert!(out.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    // The drawn warps are crops of varying size with factors around 1, and the result differs
    // from the stored image.
    let draws: Vec<Warp> = (0..50)
        .map(|i| Warp::draw(3, 1, i, (h, w), CROP_AREA_PCT, false))
        .collect();
    assert!(draws.iter().any(|d| d.w < 12.0) && draws.iter().any(|d| d.w > 14.0));
    warp_image(&src, &mut out, h, w, &draws[0]);
    assert_ne!(out, src);
    // The smallest crop follows `--crop-area`: every box covers at least that share of the
    // image, and the smallest of many draws comes close to it.
    let area = |d: &Warp| (d.w * d.h) as f64 / (h * w) as f64;
    for pct in [CROP_AREA_PCT, 60, 100] {
        let areas: Vec<f64> = (0..400)
            .map(|i| area(&Warp::draw(5, 2, i, (h, w), pct, false)))
            .collect();
        let lo = f64::from(pct) / 100.0;
        let min = areas.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(min >= lo - 1e-6, "{pct}%: smallest crop {min}");
        assert!(min < lo + 0.05, "{pct}%: no crop near {lo}: smallest {min}");
    }
}

fn all_on(seed: u64) -> EpochOptions {
    EpochOptions {
        flips: true,
        crops: true,
        label_smoothing: 0.1,
        momentum: 0.9,
        weight_decay: 1e-3,
        dropout: 0.3,
        seed,
        ..EpochOptions::plain(0.02)
    }
}

/// Training with crops, jitter and label smoothing (and the rest of the improved recipe) on:
/// the same bits on 1, 2 and 7 threads and on a second run, and not the bits without crops.
#[test]
fn augmented_training_is_deterministic_on_any_thread_count() {
    let data = Synthetic::new(40, 16, 4);
    let order = schedule::epoch_order(40, true, 5, 1);
    let run = |kernels: Kernels, threads: usize, opts: &EpochOptions| {
        let h = Hyper {
            image: 16,
            widths: [32, 32, 16],
            fc1: 16,
            batch: 8,
            threads,
            epochs: 2,
            lr: 0.02,
            seed: 5,
        };
        let mut n = he_net(&h, kernels, 8, true);
        let mut losses = Vec::new();
        for e in 1..=2 {
            losses.push(
                n.run_epoch(&Epoch::new(&data, &order, e, opts))
                    .unwrap()
                    .mean_loss,
            );
        }
        (n.params().to_vec(), losses)
    };
    for kernels in kernel_sets() {
        let base = run(kernels, 1, &all_on(5));
        for threads in [2, 7, 1] {
            assert!(
                run(kernels, threads, &all_on(5)) == base,
                "{kernels}: {threads} threads differ from 1"
            );
        }
        let no_crops = EpochOptions {
            crops: false,
            ..all_on(5)
        };
        assert!(
            run(kernels, 2, &no_crops).0 != base.0,
            "{kernels}: crops changed nothing"
        );
    }
}

/// With label smoothing (and crops, flips, dropout) on, the gradients match central
/// differences of the smoothed loss.
#[test]
fn label_smoothed_gradients_match_finite_differences() {
    for path in kernel_sets() {
        let mut n = tiny_net(path);
        let data = Synthetic::new(3, 8, 5);
        let idx = [0u32, 1, 2];
        let opts = EpochOptions {
            label_smoothing: 0.2,
            dropout: 0.25,
            ..all_on(9)
        };
        let aug = Some((&opts, 3, 1));
        assert_gradients_match_differences(&mut n, &data, &idx, aug, &format!("{path:?}"));
    }
}

/// The correction after the loss kernel against the formula: `dz = p - y'` and the loss against
/// `y' = y (1 - eps) + eps / 2`.
#[test]
fn label_smoothing_matches_the_formula() {
    let probs = [0.03f32, 0.5, 0.91, 0.999, 0.2];
    let labels = [0u8, 1, 1, 0, 1];
    for eps in [0.0f32, 0.1, 0.3] {
        let mut d: Vec<f32> = probs
            .iter()
            .zip(&labels)
            .map(|(&p, &y)| p - y as f32)
            .collect();
        let sum = catdog::step::smooth_labels(&probs, &labels, &mut d, eps);
        let mut want_sum = 0.0f64;
        for i in 0..5 {
            let (p, y) = (probs[i] as f64, labels[i] as f64);
            let t = y * (1.0 - eps as f64) + eps as f64 / 2.0;
            assert!((d[i] as f64 - (p - t)).abs() < 1e-6, "eps {eps}, {i}");
            want_sum -= t * (p + 1e-7).ln() + (1.0 - t) * (1.0 - p + 1e-7).ln();
        }
        assert!((sum as f64 - want_sum).abs() < 1e-5, "{sum} vs {want_sum}");
    }
}

/// Linear warm-up to the rate, then the schedule over the remaining epochs; the warm-up is cut
/// to fit a short run.
#[test]
fn warmup_then_cosine_gives_the_stated_rates() {
    let lr = 0.03f32;
    let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-7;
    let rates: Vec<f32> = (1..=10)
        .map(|e| epoch_lr(lr, Schedule::Cosine, 2, e, 10))
        .collect();
    assert!(close(rates[0], 0.01) && close(rates[1], 0.02), "{rates:?}");
    assert_eq!(rates[2], lr);
    assert!(close(rates[9], 0.0003), "{rates:?}");
    for e in 3..10 {
        // the cosine of an 8-epoch run
        assert_eq!(rates[e - 1], epoch_lr(lr, Schedule::Cosine, 0, e - 2, 8));
        assert!(rates[e] < rates[e - 1]);
    }
    let constant: Vec<f32> = (1..=4)
        .map(|e| epoch_lr(lr, Schedule::Constant, 3, e, 4))
        .collect();
    assert!(close(constant[0], 0.0075) && close(constant[2], 0.0225));
    assert_eq!(constant[3], lr);
    // A 2-epoch run warms up one epoch, a 1-epoch run none.
    assert!(close(epoch_lr(lr, Schedule::Cosine, 2, 1, 2), 0.015));
    assert_eq!(epoch_lr(lr, Schedule::Cosine, 2, 2, 2), lr);
    assert_eq!(epoch_lr(lr, Schedule::Cosine, 2, 1, 1), lr);
    assert_eq!(epoch_lr(lr, Schedule::Cosine, 0, 1, 10), lr);
}

fn tiny_args(dir: &std::path::Path) -> Vec<String> {
    common::train_on_blobs(
        dir,
        "--widths 16,16,16 --fc1 16 --batch-size 8 --threads 2 --log-every 0",
    )
}

/// Trains with `args` into checkpoint `ck`, which must succeed; the checkpoint.
fn train_to_checkpoint(args: &[String], ck: &std::path::Path) -> catdog::checkpoint::Checkpoint {
    let out = model()
        .args(args)
        .arg("--checkpoint")
        .arg(ck)
        .output()
        .unwrap();
    assert_ok(&out);
    catdog::checkpoint::load(ck).unwrap()
}

/// `--recipe improved` without `--epochs` runs its own 60, the faithful recipe 10; a checkpoint
/// records the new parts, and a resume that contradicts one is refused by name.
#[test]
fn the_recipes_own_epochs_and_resume_refusals() {
    let dir = tmp_with_blobs("aug-epochs", 16, (16, 1), (8, 2));
    for (recipe, epochs) in [("improved", 60), ("faithful", 10)] {
        let mut args = tiny_args(&dir);
        args.extend(common::strings(&["--recipe", recipe, "--no-checkpoint"]));
        let out = model().args(&args).output().unwrap();
        assert_ok(&out);
        let err = stderr_of(&out);
        let last = format!("epoch {epochs}/{epochs}:");
        assert!(err.contains(&last), "{recipe}: {err}");
        assert!(!err.contains(&format!("epoch {}/", epochs + 1)), "{err}");
    }
    let ck = dir.join("a.ckpt");
    let mut args = tiny_args(&dir);
    args.extend(common::strings(&["--recipe", "improved", "--epochs", "3"]));
    let c = train_to_checkpoint(&args, &ck);
    assert_eq!(c.recipe, Recipe::improved());
    assert_eq!((c.recipe.crops, c.recipe.warmup), (true, 2));
    assert_eq!(c.recipe.crop_area, CROP_AREA_PCT);
    assert_eq!(c.recipe.label_smoothing, 0.1);
    // The warm-up cut to 2 of 3 epochs: lr/3, 2lr/3, lr.
    let lrs: Vec<f64> = c.history.iter().map(|r| r.lr as f64).collect();
    for (got, want) in lrs.iter().zip([0.01 / 3.0, 0.02 / 3.0, 0.01]) {
        assert!((got - want).abs() < 1e-9, "{lrs:?}");
    }
    for (flag, value, says) in [
        ("--augment", "flips", "crops and colour jitter on"),
        ("--label-smoothing", "0.2", "label smoothing 0.1"),
        ("--warmup", "1", "2 warm-up epochs"),
        ("--crop-area", "60", "crops of at least 50% of the area"),
        ("--epochs", "5", "--epochs (learning-rate schedule)"),
    ] {
        let out = model()
            .args(&args[..args.len() - 2])
            .arg("--resume")
            .arg(&ck)
            .args([flag, value])
            .output()
            .unwrap();
        assert_refused(&out, &[flag, says]);
    }
    // Flags that override single parts of a recipe: the faithful recipe with full augmentation.
    let mut args = tiny_args(&dir);
    args.extend(common::words(
        "--epochs 2 --augment full --label-smoothing 0.05 --warmup 1 --crop-area 70",
    ));
    let c = train_to_checkpoint(&args, &ck);
    let r = &c.recipe;
    assert_eq!(
        (r.flips, r.crops, r.label_smoothing, r.warmup),
        (true, true, 0.05, 1)
    );
    assert_eq!(r.crop_area, 70);
    assert_eq!(r.momentum, 0.0);
    for bad in ["--label-smoothing=1", "--label-smoothing=-0.1"] {
        let out = model().args(&tiny_args(&dir)).arg(bad).output().unwrap();
        assert_refused(&out, &["--label-smoothing"]);
    }
    for (bad, says) in [
        (
            &["--recipe", "improved", "--crop-area", "4"][..],
            "from 5 to 100",
        ),
        (
            &["--recipe", "improved", "--crop-area", "101"],
            "from 5 to 100",
        ),
        (&["--augment", "flips", "--crop-area", "50"], "needs crops"),
    ] {
        let out = model().args(&tiny_args(&dir)).args(bad).output().unwrap();
        assert_refused(&out, &["--crop-area", says]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The original tier runs the warm-up (only learning rates) and refuses crops and label
/// smoothing, for which it has no kernels.
#[test]
fn the_original_tier_runs_the_warmup_and_refuses_the_rest() {
    let dir = tmp_with_blobs("aug-original", 16, (32, 1), (16, 2));
    let args = common::train_on_blobs(
        &dir,
        "--widths 16,32,16 --fc1 16 --epochs 2 --kernels original --no-checkpoint",
    );
    for extra in [["--augment", "full"], ["--label-smoothing", "0.1"]] {
        let out = model().args(&args).args(extra).output().unwrap();
        assert_refused(&out, &["--kernels original runs the original's plain SGD"]);
    }
    if avx512_or_skip("the original tier with a warm-up").is_some() {
        let out = model()
            .args(&args)
            .args(["--warmup", "1"])
            .output()
            .unwrap();
        assert_ok(&out);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The improved recipe with its augmentation still learns: a few epochs on synthetic images
/// (dogs redder) reach a clear held-out accuracy.
#[test]
fn the_augmented_recipe_learns_synthetic_images() {
    let dir = tmp_with_blobs("aug-learns", 32, (256, 11), (64, 12));
    let mut args = small_run(&dir, 6);
    args.push("--no-checkpoint".into());
    let out = model().args(&args).output().unwrap();
    assert_ok(&out);
    let acc = final_accuracy(&String::from_utf8_lossy(&out.stdout));
    assert!(acc >= 0.9, "held-out accuracy {acc} after 6 epochs");
    std::fs::remove_dir_all(&dir).ok();
}

//! The whole network: gradients against finite differences, the asm path against the reference
//! path, thread-count independence, learning on synthetic data, and the parameter file.

use catdog::config::Hyper;
use catdog::config::Kernels;
use catdog::dataset::{Dataset, Synthetic};
use catdog::infer;
use catdog::net::Net;
use catdog::network::Network;
use catdog::network::{Epoch, EpochOptions};
use catdog::parameters;
use catdog::report;
use catdog::schedule;
use catdog::testing::avx512_or_skip;
use catdog::train;

#[path = "common/net.rs"]
mod net;
use net::{central_difference, he_net};

/// A small network; conv1's 32 channels give it the default network's conv1 algorithm on the
/// asm path (F(4,3) along rows, `Algo::WinogradRows`).
fn small(image: usize, batch: usize, threads: usize) -> Hyper {
    Hyper {
        image,
        widths: [32, 32, 16],
        fc1: 16,
        batch,
        threads,
        epochs: 1,
        lr: 0.05,
        seed: 3,
    }
}

fn net(h: &Hyper, path: Kernels, seed: u64) -> Net {
    net_with(h, path, seed, false)
}

fn net_with(h: &Hyper, path: Kernels, seed: u64, momentum: bool) -> Net {
    he_net(h, path, seed, momentum)
}

/// Every choice of kernels this CPU runs with our layers: the reference, portable, and the fast
/// kernels where AVX-512 is (a failure without it under `CATDOG_REQUIRE_AVX512=1`).
fn paths() -> Vec<Kernels> {
    let mut k = vec![Kernels::Reference, Kernels::Portable];
    if avx512_or_skip("the fast kernels' network").is_some() {
        k.push(Kernels::Fast);
    }
    k
}

/// Central differences of the batch loss against the analytic gradient, for a spread of
/// parameters of every tensor. ReLU and max-pool kinks can spoil a few differences, so each
/// tensor must agree on at least 80% of its checked entries (a wrong gradient agrees on none).
#[test]
fn whole_network_gradients_match_finite_differences() {
    for path in paths() {
        let h = small(8, 3, 1);
        let mut n = net(&h, path, 11);
        let data = Synthetic::new(3, 8, 5);
        let idx = [0u32, 1, 2];
        train::loss_and_gradients(&mut n, &data, &idx, None);
        let grads = n.grads.all()[..n.shapes.param_count()].to_vec();
        let lens = n.shapes.param_lens();
        let mut off = 0;
        for (t, &len) in lens.iter().enumerate() {
            let picks: Vec<usize> = (0..len.min(12))
                .map(|k| off + k * len / len.min(12))
                .collect();
            let mut good = 0;
            for &i in &picks {
                let fd = central_difference(&mut n, i, 1e-3, |n| {
                    train::loss_and_gradients(n, &data, &idx, None)
                });
                // The loss is the batch mean; the gradient arena holds the batch sum.
                let g = grads[i] as f64 / 3.0;
                if (fd - g).abs() <= 2e-3 + 0.05 * g.abs() {
                    good += 1;
                } else {
                    eprintln!(
                        "{path:?} {}[{}]: fd {fd:.6} vs grad {g:.6}",
                        parameters::NAMES[t],
                        i - off
                    );
                }
            }
            assert!(
                good * 5 >= picks.len() * 4,
                "{path:?} {}: only {good}/{} agree",
                parameters::NAMES[t],
                picks.len()
            );
            off += len;
        }
    }
}

/// The faithful mode's promise in small: from the same parameters, in file order, the fast and
/// the portable kernels follow the reference's per-batch losses to float rounding.
#[test]
fn fast_and_portable_kernels_follow_reference_losses() {
    let h = small(16, 4, 1);
    let data = Synthetic::new(32, 16, 9);
    let order: Vec<u32> = (0..32).collect();
    let opts = EpochOptions::plain(0.05);
    let mut losses = Vec::new();
    let mut finals = Vec::new();
    let kernels = paths();
    for &path in &kernels {
        let mut n = net(&h, path, 21);
        let mut l = Vec::new();
        for e in 1..=3 {
            l.extend(
                n.run_epoch(&Epoch::new(&data, &order, e, &opts))
                    .unwrap()
                    .losses,
            );
        }
        losses.push(l);
        finals.push(n.params().to_vec());
    }
    assert_eq!(losses[0].len(), 24);
    for i in 1..kernels.len() {
        let k = kernels[i];
        for (s, (a, b)) in losses[0].iter().zip(&losses[i]).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "step {s}: reference {a} vs {k} {b}"
            );
        }
        let worst = finals[0]
            .iter()
            .zip(&finals[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{k}: parameters drifted apart by {worst}");
    }
}

/// Gradients are summed in sample order whatever the thread count: bitwise equal parameters,
/// with every part of the improved recipe on (flips, dropout, momentum, weight decay).
#[test]
fn any_thread_count_gives_the_same_bits() {
    let data = Synthetic::new(40, 16, 4);
    let order = schedule::epoch_order(40, true, 5, 1);
    let opts = EpochOptions {
        flips: true,
        momentum: 0.9,
        weight_decay: 1e-3,
        dropout: 0.3,
        seed: 5,
        ..EpochOptions::plain(0.02)
    };
    for kernels in paths().into_iter().filter(|&k| k != Kernels::Reference) {
        let mut results = Vec::new();
        for threads in [1, 2, 7] {
            let h = small(16, 5, threads);
            let mut n = net_with(&h, kernels, 8, true);
            for e in 1..=2 {
                n.run_epoch(&Epoch::new(&data, &order, e, &opts)).unwrap();
            }
            results.push(n.params().to_vec());
        }
        assert!(results[0] == results[1], "{kernels}: 1 vs 2 threads differ");
        assert!(results[0] == results[2], "{kernels}: 1 vs 7 threads differ");
    }
}

/// Inference bits depend on neither the batch size nor the thread count (each sample's
/// forward pass is its own; fc1's tiles keep every output's sum order), and every conv
/// algorithm of `--conv` gives the same predictions up to its rounding, the default (F(4,3)
/// along rows on conv1, F(4x4) Winograd on the Winograd-shaped layers) within 1e-5 of the
/// direct convolution.
#[test]
fn inference_bits_do_not_depend_on_batch_or_threads_and_algorithms_agree() {
    use catdog::layers::conv::{Algo, ConvChoice};
    let data = Synthetic::new(70, 32, 9);
    for kernels in paths().into_iter().filter(|&k| k != Kernels::Reference) {
        let probs = |batch: usize, threads: usize| {
            let h = Hyper {
                widths: [32, 32, 48],
                ..small(32, batch, threads)
            };
            let mut n = Net::new_with(&h, kernels, false, ConvChoice::Auto).unwrap();
            let s = n.shapes.clone();
            parameters::he_init(&s, n.params_mut(), 5);
            n.repack();
            infer::predict(&mut n, &data, false)
        };
        let base = probs(16, 1);
        for (batch, threads) in [(64, 1), (64, 2), (7, 2), (70, 7)] {
            assert!(
                probs(batch, threads) == base,
                "{kernels}: batch {batch}, {threads} threads: other bits"
            );
        }
    }
    let probs = |batch: usize, threads: usize, conv: ConvChoice| {
        let h = Hyper {
            widths: [32, 32, 48],
            ..small(32, batch, threads)
        };
        let mut n = Net::new_with(&h, Kernels::default_for_cpu(), false, conv).unwrap();
        let s = n.shapes.clone();
        parameters::he_init(&s, n.params_mut(), 5);
        n.repack();
        (n.conv.map(|p| p.algo), infer::predict(&mut n, &data, false))
    };
    let (algos, base) = probs(16, 1, ConvChoice::Auto);
    for (batch, threads) in [(64, 1), (64, 2), (7, 2), (70, 7)] {
        let (_, p) = probs(batch, threads, ConvChoice::Auto);
        assert!(p == base, "batch {batch}, {threads} threads: other bits");
    }
    if Kernels::default_for_cpu() == Kernels::Fast {
        assert_eq!(
            algos,
            [Algo::WinogradRows, Algo::Winograd4, Algo::Winograd4]
        );
        let (a2, p2) = probs(16, 1, ConvChoice::Winograd2);
        let (ad, pd) = probs(16, 1, ConvChoice::Direct);
        assert_eq!(a2, [Algo::Direct, Algo::Winograd2, Algo::Winograd2]);
        assert_eq!(ad, [Algo::Direct; 3]);
        for (other, name) in [(&p2, "F(2x2)"), (&base, "F(4x4)")] {
            let worst = other
                .iter()
                .zip(&pd)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            eprintln!("{name} vs direct: worst probability difference {worst:.2e}");
            assert!(worst < 1e-5, "{name}: {worst}");
            assert!(
                other != &pd,
                "{name} gave the direct convolution's very bits"
            );
        }
    }
}

/// fc1's inference packing follows the parameters: after `params_mut` and after a training
/// epoch, `predict` gives the very bits of a fresh network loaded with the same parameters (on
/// the asm path it packs fc1's weights again; a stale packing would give the old outputs).
#[test]
fn predict_follows_every_change_of_the_parameters() {
    let data = Synthetic::new(24, 32, 6);
    let h = Hyper {
        fc1: 48, // a last neuron block of 16
        ..small(32, 8, 2)
    };
    for path in paths() {
        let fresh = |params: &[f32]| {
            let mut f = Net::new(&h, path, false).unwrap();
            f.params_mut().copy_from_slice(params);
            f.repack();
            infer::predict(&mut f, &data, false)
        };
        let mut n = net(&h, path, 8);
        let before = infer::predict(&mut n, &data, false);
        assert!(
            before == fresh(n.params()),
            "{path:?}: a fresh network differs"
        );
        let v = n.param_views.fc1_w;
        for w in &mut n.params_mut()[v.off..v.off + v.len] {
            *w *= -1.5;
        }
        let changed = infer::predict(&mut n, &data, false);
        assert!(
            changed != before,
            "{path:?}: fc1's new weights changed nothing"
        );
        assert!(
            changed == fresh(n.params()),
            "{path:?}: stale after params_mut"
        );
        let order = schedule::epoch_order(24, false, 1, 1);
        n.run_epoch(&Epoch::new(&data, &order, 1, &EpochOptions::plain(0.05)))
            .unwrap();
        let trained = infer::predict(&mut n, &data, false);
        assert!(trained != changed, "{path:?}: the epoch changed nothing");
        assert!(
            trained == fresh(n.params()),
            "{path:?}: stale after an epoch"
        );
    }
}

/// The network learns a simple signal (dogs are redder) well above chance.
#[test]
fn learns_synthetic_signal() {
    let h = Hyper {
        lr: 0.02,
        ..small(16, 8, 2)
    };
    let train_set = Synthetic::new(256, 16, 1);
    let test_set = Synthetic::new(128, 16, 2);
    let mut n = net(&h, Kernels::default_for_cpu(), 4);
    let before = report::accuracy(&infer::predict(&mut n, &test_set, false), test_set.labels());
    let opts = EpochOptions::plain(0.02);
    for e in 1..=4 {
        let order = schedule::epoch_order(256, true, 1, e);
        n.run_epoch(&Epoch::new(&train_set, &order, e, &opts))
            .unwrap();
    }
    let after = report::accuracy(&infer::predict(&mut n, &test_set, false), test_set.labels());
    eprintln!("synthetic accuracy: {before:.3} -> {after:.3}");
    assert!(after >= 0.9, "accuracy {after} after 4 epochs");
}

#[test]
fn parameter_file_round_trip_and_refusals() {
    let h = Hyper::default();
    let s = h.shapes().unwrap();
    let mut a = vec![0.0f32; s.param_count()];
    parameters::he_init(&s, &mut a, 1);
    let dir = std::env::temp_dir().join(format!("catdog-params-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("parameters.raw");
    parameters::write_raw(&f, &s, &a).unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 4 * 4_287_809);
    let mut b = vec![1.0f32; s.param_count()];
    parameters::read_raw(&f, &s, &mut b).unwrap();
    assert!(a == b);
    // The file is the original's order: conv1_w first, fc2_b last (zero after init).
    let bytes = std::fs::read(&f).unwrap();
    assert_eq!(f32::from_le_bytes(bytes[0..4].try_into().unwrap()), a[0]);
    // Wrong size: refused, saying what was expected.
    std::fs::write(&f, &bytes[..bytes.len() - 4]).unwrap();
    let err = parameters::read_raw(&f, &s, &mut b).unwrap_err();
    assert!(err.contains("expected 17151236"), "{err}");
    let err = parameters::read_raw(&dir, &s, &mut b).unwrap_err();
    assert!(err.contains("directory"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

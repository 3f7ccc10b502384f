//! The fast tier's network in tests (`network`, `recipe`): He-initialized, and central
//! differences of its loss in one parameter.
#![allow(dead_code)]

use catdog::config::Hyper;
use catdog::config::Kernels;
use catdog::dataset::Dataset;
use catdog::net::Net;
use catdog::network::EpochOptions;
use catdog::parameters;
use catdog::train;

/// A network for `h` on kernel `path` (with a momentum buffer if `momentum`), its parameters
/// He-initialized from `seed`.
pub fn he_net(h: &Hyper, path: Kernels, seed: u64, momentum: bool) -> Net {
    let mut n = Net::new(h, path, momentum).unwrap();
    let s = n.shapes.clone();
    parameters::he_init(&s, n.params_mut(), seed);
    n.repack();
    n
}

/// The tiny network of the gradient checks (`augment`, `recipe`) on kernel `path`: batch 3, one
/// thread, He-initialized from seed 17.
pub fn tiny_net(path: Kernels) -> Net {
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

/// `(L(p + eps) - L(p - eps)) / 2 eps` for parameter `i` of `n`, `L` the batch loss that `loss`
/// computes; the parameter is restored afterwards.
pub fn central_difference(
    n: &mut Net,
    i: usize,
    eps: f32,
    mut loss: impl FnMut(&mut Net) -> f32,
) -> f64 {
    let orig = n.params()[i];
    let mut loss_at = |v: f32| {
        n.params_mut()[i] = v;
        n.repack();
        loss(n) as f64
    };
    let (lp, lm) = (loss_at(orig + eps), loss_at(orig - eps));
    n.params_mut()[i] = orig;
    n.repack();
    (lp - lm) / (2.0 * eps as f64)
}

/// Checks the gradients `train::loss_and_gradients` leaves for batch `idx` (with the
/// augmentation and dropout of `aug`) against central differences of the same loss, in six
/// parameters of every tensor: at least 90% must agree within 2e-3 + 5%. `what` names the case.
pub fn assert_gradients_match_differences(
    n: &mut Net,
    data: &dyn Dataset,
    idx: &[u32],
    aug: Option<(&EpochOptions, usize, usize)>,
    what: &str,
) {
    train::loss_and_gradients(n, data, idx, aug);
    let grads = n.grads.all()[..n.shapes.param_count()].to_vec();
    let (mut off, mut good, mut total) = (0, 0, 0);
    for &len in &n.shapes.param_lens() {
        for k in 0..len.min(6) {
            let i = off + k * len / len.min(6);
            let fd =
                central_difference(n, i, 1e-3, |n| train::loss_and_gradients(n, data, idx, aug));
            let g = grads[i] as f64 / idx.len() as f64;
            total += 1;
            if (fd - g).abs() <= 2e-3 + 0.05 * g.abs() {
                good += 1;
            } else {
                eprintln!("{what} param {i}: fd {fd:.6} vs grad {g:.6}");
            }
        }
        off += len;
    }
    assert!(
        good * 10 >= total * 9,
        "{what}: only {good}/{total} gradients agree"
    );
}

//! The fast tier's network in tests (`network`, `recipe`): He-initialized, and central
//! differences of its loss in one parameter.
#![allow(dead_code)]

use catdog::config::Hyper;
use catdog::config::Kernels;
use catdog::net::Net;
use catdog::parameters;

/// A network for `h` on kernel `path` (with a momentum buffer if `momentum`), its parameters
/// He-initialized from `seed`.
pub fn he_net(h: &Hyper, path: Kernels, seed: u64, momentum: bool) -> Net {
    let mut n = Net::new(h, path, momentum).unwrap();
    let s = n.shapes.clone();
    parameters::he_init(&s, n.params_mut(), seed);
    n.repack();
    n
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

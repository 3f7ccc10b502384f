//! Where a network is built: the one choice of [`Kernels`] becomes a [`Network`] here, once.
//! `main` calls [`network`]; everything after it runs through the [`Network`] trait.

use crate::config::{Hyper, Kernels};
use crate::layers::conv::ConvChoice;
use crate::network::{Network, ORIGINAL_RECIPE_ONLY};

/// Builds the network of `h` on `kernels` (the fast kernels' conv algorithms limited by
/// `conv`). `momentum` sizes the optimizer's velocity (not the original's). Kernels this CPU
/// cannot run are refused here, with the error line for the user.
pub fn network(
    h: &Hyper,
    kernels: Kernels,
    momentum: bool,
    conv: ConvChoice,
) -> Result<Box<dyn Network>, String> {
    if conv != ConvChoice::Auto && kernels != Kernels::Fast {
        return Err(format!(
            "--conv chooses the fast kernels' conv algorithm; --kernels {kernels} has its own (drop --conv or use --kernels fast)"
        ));
    }
    match kernels {
        Kernels::Fast | Kernels::Portable | Kernels::Reference => Ok(Box::new(
            crate::net::Net::new_with(h, kernels, momentum, conv)?,
        )),
        Kernels::Original => {
            if momentum {
                return Err(ORIGINAL_RECIPE_ONLY.into());
            }
            original(h, crate::cpu::require_avx512("original")?)
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn original(h: &Hyper, cpu: crate::cpu::Avx512) -> Result<Box<dyn Network>, String> {
    Ok(Box::new(crate::original::OriginalNet::new(h, cpu)?))
}

#[cfg(not(target_arch = "x86_64"))]
fn original(_: &Hyper, _: crate::cpu::Avx512) -> Result<Box<dyn Network>, String> {
    unreachable!("no AVX-512 token exists off x86-64")
}

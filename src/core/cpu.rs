//! Which kernel path runs: the `asm!` AVX-512 kernels, or the scalar reference.
//!
//! The original assumed AVX-512 unconditionally. We check at start-up and fall back to the plain
//! Rust reference on CPUs without AVX-512 F/BW/DQ/VL, or when `CATDOG_REFERENCE=1` forces it.

/// The two implementations of every kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Hand-written `core::arch::asm!` kernels on ZMM registers.
    Asm,
    /// Scalar plain-Rust reference (slow, obviously correct).
    Reference,
}

/// True when this CPU has every AVX-512 subset the asm kernels use.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The path to use: `Asm` when the CPU allows it and `CATDOG_REFERENCE` is unset (or `0`).
pub fn detect() -> Path {
    let forced = std::env::var("CATDOG_REFERENCE")
        .map(|v| v != "0" && !v.is_empty())
        .unwrap_or(false);
    if forced || !has_avx512() {
        Path::Reference
    } else {
        Path::Asm
    }
}

/// One line for the user when we are not on the fast path, `None` when we are.
pub fn notice(path: Path) -> Option<&'static str> {
    match path {
        Path::Asm => None,
        Path::Reference if has_avx512() => {
            Some("note: CATDOG_REFERENCE is set: running the scalar reference kernels (slow)")
        }
        Path::Reference => Some(
            "note: this CPU lacks AVX-512 F/BW/DQ/VL: running the scalar reference kernels (slow)",
        ),
    }
}

/// Panics unless the asm path may run; every asm kernel wrapper calls it in debug builds.
#[inline]
pub fn assert_asm_ok() {
    debug_assert!(has_avx512(), "asm kernel called on a CPU without AVX-512");
}

//! What this CPU can run, as a value: [`Avx512`], which only [`avx512`] (run-time detection) can
//! make. Every safe function that executes an AVX-512 instruction takes one, and the asm tables
//! ([`Avx512::layer_fns`], the asm conv plans) are reachable only through one, so safe code
//! cannot reach an AVX-512 instruction on a CPU without AVX-512 F/BW/DQ/VL.
//!
//! The original assumed AVX-512 unconditionally; which kernels run is the user's choice
//! ([`crate::config::Kernels`]), checked against this value once, when a network is built.

/// Proof that this CPU has AVX-512 F, BW, DQ and VL, every subset the asm kernels use. Zero-sized
/// and `Copy`: pass it by value. Made only by [`avx512`] (and, inside this crate, by the asm
/// tables that one of them unlocked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Avx512 {
    _detected: (),
}

impl Avx512 {
    /// The token, without detection.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/BW/DQ/VL: call it only where an [`Avx512`] was already
    /// obtained from [`avx512`] (the asm tables, which only such a token hands out).
    #[inline(always)]
    pub(crate) const unsafe fn assumed() -> Avx512 {
        Avx512 { _detected: () }
    }
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

/// The AVX-512 token where this CPU has AVX-512 F/BW/DQ/VL, else `None`.
pub fn avx512() -> Option<Avx512> {
    // SAFETY: detected just now.
    has_avx512().then(|| unsafe { Avx512::assumed() })
}

/// The token, or the error line for a user who chose `what` (a `--kernels` value) on a CPU
/// without AVX-512.
pub fn require_avx512(what: &str) -> Result<Avx512, String> {
    avx512().ok_or_else(|| {
        format!("--kernels {what} needs AVX-512 F/BW/DQ/VL, which this CPU lacks (use --kernels portable)")
    })
}

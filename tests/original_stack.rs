//! The original tier calls the C library's `logf` and `expf` with the stack the System V ABI
//! (and the original) gives them: `rsp + 8` a multiple of 16 at the callee's first instruction.
//! This test binary interposes its own `logf` and `expf` (an executable's definition wins over
//! the C library's), which record `rsp mod 16` on entry and then jump to the C library's own
//! function (found with `dlsym`), so the routines run their own instructions and give
//! the C library's bits. One test only: the interposers record into process-wide statics.

use catdog::original::activation_functions::sigmoid;
use catdog::original::dense::{dense, Activation};
use catdog::original::loss::compute_loss;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// `rsp mod 16` at the last interposed call's entry.
static LAST_RSP_MOD16: AtomicU64 = AtomicU64::new(99);
/// Interposed calls so far (proves the interposers, not the C library, were reached).
static CALLS: AtomicU64 = AtomicU64::new(0);
/// The C library's `logf` and `expf`.
static REAL_LOGF: AtomicUsize = AtomicUsize::new(0);
static REAL_EXPF: AtomicUsize = AtomicUsize::new(0);

macro_rules! interposer {
    ($name:ident, $real:ident) => {
        /// Records `rsp mod 16` and counts the call, then jumps to the C library's function
        /// (`rax` is free: a C callee may clobber it; the argument in `xmm0` is untouched).
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(x: f32) -> f32 {
            core::arch::naked_asm!(
                "mov rax, rsp",
                "and rax, 15",
                "mov qword ptr [rip + {last}], rax",
                "lock inc qword ptr [rip + {calls}]",
                "jmp qword ptr [rip + {real}]",
                last = sym LAST_RSP_MOD16,
                calls = sym CALLS,
                real = sym $real,
            )
        }
    };
}
interposer!(logf, REAL_LOGF);
interposer!(expf, REAL_EXPF);

/// The C library's function `name` (from `libm.so.6`: with this executable defining both
/// functions, the linker need not have kept the library, so it is opened here).
fn libc_fn(name: &std::ffi::CStr) -> usize {
    // SAFETY: dlopen and dlsym with valid C strings; the handle is never closed.
    let f = unsafe {
        let m = libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW);
        assert!(!m.is_null(), "dlopen(libm.so.6)");
        libc::dlsym(m, name.as_ptr())
    };
    assert!(!f.is_null(), "dlsym(libm.so.6, {name:?})");
    f as usize
}

/// Runs `f`; asserts that it reached an interposer and that the last such call found the stack
/// as the ABI has it (`rsp mod 16 == 8` at the callee's entry).
fn check<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = CALLS.load(Ordering::SeqCst);
    LAST_RSP_MOD16.store(99, Ordering::SeqCst);
    let r = f();
    assert!(
        CALLS.load(Ordering::SeqCst) > before,
        "{what}: the C library call was not interposed"
    );
    let m = LAST_RSP_MOD16.load(Ordering::SeqCst);
    assert_eq!(
        m, 8,
        "{what}: rsp mod 16 = {m} at the C library's entry (the ABI wants 8)"
    );
    r
}

#[test]
fn logf_and_expf_are_entered_with_the_stack_aligned_and_give_the_c_librarys_bits() {
    if catdog::testing::avx512_or_skip("original tier stack alignment").is_none() {
        return;
    }
    REAL_LOGF.store(libc_fn(c"logf"), Ordering::SeqCst);
    REAL_EXPF.store(libc_fn(c"expf"), Ordering::SeqCst);
    // SAFETY: the C library's logf and expf, as found by dlsym.
    let (real_logf, real_expf): (extern "C" fn(f32) -> f32, extern "C" fn(f32) -> f32) = unsafe {
        (
            std::mem::transmute::<usize, extern "C" fn(f32) -> f32>(
                REAL_LOGF.load(Ordering::SeqCst),
            ),
            std::mem::transmute::<usize, extern "C" fn(f32) -> f32>(
                REAL_EXPF.load(Ordering::SeqCst),
            ),
        )
    };

    // compute_loss_routine: two logf calls, the original's formula in its order.
    for (y, p) in [
        (1.0f32, 0.73f32),
        (0.0, 0.73),
        (1.0, 1e-9),
        (0.0, 0.999_999),
    ] {
        let got = check("compute_loss", || compute_loss(y, p));
        let want = 0.0 - (real_logf((1.0 - p) + 1e-7) * (1.0 - y) + real_logf(p + 1e-7) * y);
        assert_eq!(got.to_bits(), want.to_bits(), "compute_loss({y}, {p})");
    }
    // sigmoid_routine entered from Rust, both branches.
    for x in [2.5f32, 0.0, -3.25] {
        let got = check("sigmoid", || sigmoid(x));
        let want = if x >= 0.0 {
            1.0 / (real_expf(0.0 - x) + 1.0)
        } else {
            let e = real_expf(x);
            e / (1.0 + e)
        };
        assert_eq!(got.to_bits(), want.to_bits(), "sigmoid({x})");
    }
    // sigmoid_routine entered from dense_routine (the original's own path to it).
    let x: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) * 0.01).collect();
    let w: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
    let b = [0.1f32, -0.2];
    let mut out = [0.0f32; 2];
    // SAFETY: AVX-512 checked above; shapes as `dense` asks.
    check("dense with sigmoid", || unsafe {
        dense(&x, &w, &b, &mut out, Activation::Sigmoid)
    });
    assert!(out.iter().all(|v| *v > 0.0 && *v < 1.0), "{out:?}");
}

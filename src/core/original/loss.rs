//! `loss.asm`: binary cross-entropy of one sample, with the C library's `logf`.

use super::{call_routine, routine};

#[allow(dead_code)]
extern "C" {
    pub(crate) fn logf(x: f32) -> f32;
}

static EPS: f32 = 1.0e-7;
static ONE: f32 = 1.0;

routine! {
    /// `xmm0 = 0 - ((1 - y) * logf((1 - p) + eps) + y * logf(p + eps))` with `y` in `xmm0` and `p`
    /// in `xmm1`, `eps = 1e-7`; `y` and the first term are kept on the stack across the `logf`
    /// calls.
    mirrors "loss.asm" lines 9-55;
    safety:
    /// SSE only. It calls the C library's `logf` twice, so the caller must treat every register the
    /// C ABI lets a callee clobber as clobbered, and `rsp` must be a multiple of 16 on entry (as
    /// when the original's `_start` calls it, three pushes deep), so that the `call`s to `logf`
    /// after its 32 bytes of stack are aligned.
    fn compute_loss_routine {
        "movss xmm4, xmm0",
        "movss xmm5, xmm1",
        // y * logf(p + eps)
        "movss xmm0, xmm5",
        "addss xmm0, [rip + {eps}]",
        "sub rsp, 32",
        "movups [rsp], xmm4",
        "movups [rsp + 16], xmm5",
        "call {logf}",
        "movups xmm4, [rsp]",
        "movups xmm5, [rsp + 16]",
        "add rsp, 32",
        "mulss xmm0, xmm4",
        "movss xmm6, xmm0",
        // (1 - y) * logf((1 - p) + eps)
        "movss xmm0, [rip + {one}]",
        "subss xmm0, xmm5",
        "addss xmm0, [rip + {eps}]",
        "sub rsp, 32",
        "movups [rsp], xmm4",
        "movups [rsp + 16], xmm6",
        "call {logf}",
        "movups xmm4, [rsp]",
        "movups xmm6, [rsp + 16]",
        "add rsp, 32",
        "movss xmm1, [rip + {one}]",
        "subss xmm1, xmm4",
        "mulss xmm0, xmm1",
        // the negated sum
        "addss xmm0, xmm6",
        "xorps xmm1, xmm1",
        "subss xmm1, xmm0",
        "movaps xmm0, xmm1",
        "ret",
        logf = sym logf,
        eps = sym EPS,
        one = sym ONE,
    }
}

/// The loss of prediction `p` for label `y` (0.0 or 1.0) through [`compute_loss_routine`].
pub fn compute_loss(y: f32, p: f32) -> f32 {
    let loss: f32;
    // SAFETY: SSE and C library calls, covered by the C-ABI clobbers; entered with the stack
    // the routine expects (`entry_rsp_16`).
    unsafe {
        call_routine!(compute_loss_routine, rbx = 0usize, entry_rsp_16; ;
            inout("xmm0") y => loss, in("xmm1") p,);
    }
    loss
}

//! `asm!` kernels of the Winograd F(4x4, 3x3) convolution: the input transform
//! ([`input_tile_row`]), the output transform ([`output_tile_row_relu`], [`output_tile_row_plain`];
//! with the 2x2 max-pool fused in, [`output_tile_row_pool_codes`], [`output_tile_row_pool`])
//! and, for the weight gradient, the adjoints of the output and weight transforms
//! ([`grad_tile_row`], [`weight_grad_transform`]). The 36 matrix products between them run on
//! the GEMM micro-kernel ([`crate::kernels::microkernel`]), driven by
//! `crate::layers::conv::winograd`.
//!
//! F(4x4, 3x3) computes a 4x4 block of outputs of a 3x3 correlation from a 6x6 block of inputs
//! with 36 multiplies instead of 144 (F(2x2, 3x3): 16 instead of 36), interpolating at the
//! points `0, 1, -1, 2, -2` and infinity (Lavin and Gray's matrices):
//!
//! ```text
//! Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
//!
//! B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0   |   A^T = | 1  1  1  1  1  0 |
//!       | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
//!       | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
//!       | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
//!       | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
//!       | 0  4  0 -5  0  1 |       |  0     0     1    |
//! ```
//!
//! Every element is a vector of 16 channels (one ZMM register). A 2-D transform `X^T d X` is
//! done in two 1-D passes: first every *column* of the block (`X^T d[:, c]`), the results
//! written to a small transit buffer ([`Transit`], 36 vectors, L1-resident), then every *row*
//! of that (`X^T t[i, :]^T`) into the destination. A 6x6 block is 36 vectors, more than the 32
//! ZMM registers, so the transit buffer replaces the register-only scheme of the F(2x2)
//! kernels (`crate::kernels::winograd2`); its stores are forwarded to the loads that follow.
//!
//! The 1-D transforms, with `K4` = 4.0 etc. broadcast in registers (FMAs for the scaled terms):
//!
//! ```text
//! B^T (6 -> 6):  c = d4 - d2, e = d3 - d1, a = d4 - 4 d2, b = d3 - 4 d1
//!                t0 = 4 (d0 - d2) + c, t1 = a + b, t2 = a - b, t3 = c + 2e, t4 = c - 2e,
//!                t5 = (d5 - d3) - 4e                                     (13 instructions)
//! A^T (6 -> 4):  y0 = m0 + (m1 + m2) + (m3 + m4), y1 = (m1 - m2) + 2 (m3 - m4),
//!                y2 = (m1 + m2) + 4 (m3 + m4), y3 = (m1 - m2) + m5 + 8 (m3 - m4)   (10)
//! A (4 -> 6):    m0 = y0, m1 = (y0 + y2) + (y1 + y3), m2 = (y0 + y2) - (y1 + y3),
//!                m3 = (y0 + 4 y2) + 2 (y1 + 4 y3), m4 = (y0 + 4 y2) - 2 (y1 + 4 y3), m5 = y3  (9)
//! G^T (6 -> 3):  r0 = x0/4 - (x1 + x2)/6 + (x3 + x4)/24, r1 = (x2 - x1)/6 + (x3 - x4)/12,
//!                r2 = ((x3 + x4) - (x1 + x2))/6 + x5                     (11)
//! ```
//!
//! Layout of the transformed tensors (a *band* is the set of tiles transformed together):
//! `V[pos][tile][channel]` and `M[pos][tile][channel]`, `pos = 6*i + j` the position in the
//! 6x6 transformed tile, tiles of a band numbered row-major. A tile's channels are contiguous, so
//! each of the 36 products `M[pos] = V[pos] U[pos]` is an ordinary `tiles x n_in` by
//! `n_in x n_out` matrix product.

use crate::kernels::asm_zmm;
use std::mem::offset_of;

/// The transit buffer of the two-pass transforms: 36 vectors of 16 floats (2,304 bytes), 64-byte
/// aligned. Its contents are meaningless between calls; the drivers keep one on the stack.
#[repr(C, align(64))]
pub struct Transit(pub [f32; 36 * 16]);

impl Transit {
    /// A zeroed transit buffer.
    pub const fn new() -> Self {
        Transit([0.0; 36 * 16])
    }
}

impl Default for Transit {
    fn default() -> Self {
        Self::new()
    }
}

/// The 1-D input transform `B^T`: `zmm0..5` (d0..d5, zmm3 and zmm4 clobbered) -> `zmm6..11`
/// (t0..t5); temps `zmm12` (c), `zmm13` (e); `zmm31` = 4.0.
macro_rules! bt6 {
    () => {
        concat!(
            "vsubps zmm12, zmm4, zmm2\n",         // c = d4 - d2
            "vsubps zmm6, zmm0, zmm2\n",          // d0 - d2
            "vfmadd213ps zmm6, zmm31, zmm12\n",   // t0 = 4 (d0 - d2) + c
            "vfnmadd231ps zmm4, zmm2, zmm31\n",   // a = d4 - 4 d2
            "vsubps zmm13, zmm3, zmm1\n",         // e = d3 - d1
            "vsubps zmm11, zmm5, zmm3\n",         // d5 - d3
            "vfnmadd231ps zmm11, zmm13, zmm31\n", // t5 = (d5 - d3) - 4e
            "vfnmadd231ps zmm3, zmm1, zmm31\n",   // b = d3 - 4 d1
            "vaddps zmm7, zmm4, zmm3\n",          // t1 = a + b
            "vsubps zmm8, zmm4, zmm3\n",          // t2 = a - b
            "vaddps zmm13, zmm13, zmm13\n",       // 2e
            "vaddps zmm9, zmm12, zmm13\n",        // t3 = c + 2e
            "vsubps zmm10, zmm12, zmm13\n",       // t4 = c - 2e
        )
    };
}
pub(crate) use bt6;

/// The 1-D output transform `A^T`: `zmm0..5` (m0..m5) -> y0 `zmm10`, y1 `zmm7`, y2 `zmm6`,
/// y3 `zmm11`; temps `zmm8` (m3 + m4), `zmm9` (m3 - m4); `zmm25, 26, 27` = 2.0, 4.0, 8.0.
macro_rules! at6 {
    () => {
        concat!(
            "vaddps zmm6, zmm1, zmm2\n",        // s12
            "vsubps zmm7, zmm1, zmm2\n",        // d12
            "vaddps zmm8, zmm3, zmm4\n",        // s34
            "vsubps zmm9, zmm3, zmm4\n",        // d34
            "vaddps zmm10, zmm0, zmm6\n",       // m0 + s12
            "vaddps zmm10, zmm10, zmm8\n",      // y0 = m0 + s12 + s34
            "vaddps zmm11, zmm7, zmm5\n",       // d12 + m5
            "vfmadd231ps zmm11, zmm9, zmm27\n", // y3 = d12 + m5 + 8 d34
            "vfmadd231ps zmm7, zmm9, zmm25\n",  // y1 = d12 + 2 d34
            "vfmadd231ps zmm6, zmm8, zmm26\n",  // y2 = s12 + 4 s34
        )
    };
}

/// Loads transit row `i` (the `.irp` symbol named by `$i`) into `zmm0..5`: vectors `6i .. 6i+5`.
#[rustfmt::skip]
macro_rules! transit_row {
    ($i:literal) => {
        concat!(
            "vmovaps zmm0, zmmword ptr [{tr} + 384*\\", $i, "]\n",
            "vmovaps zmm1, zmmword ptr [{tr} + 384*\\", $i, " + 64]\n",
            "vmovaps zmm2, zmmword ptr [{tr} + 384*\\", $i, " + 128]\n",
            "vmovaps zmm3, zmmword ptr [{tr} + 384*\\", $i, " + 192]\n",
            "vmovaps zmm4, zmmword ptr [{tr} + 384*\\", $i, " + 256]\n",
            "vmovaps zmm5, zmmword ptr [{tr} + 384*\\", $i, " + 320]"
        )
    };
}

/// The constants of [`at6`]: `zmm25, 26, 27` = 2.0, 4.0, 8.0 (via `{t}`).
macro_rules! at_constants {
    () => {
        concat!(
            "mov {t:e}, 0x40000000\nvpbroadcastd zmm25, {t:e}\n",
            "mov {t:e}, 0x40800000\nvpbroadcastd zmm26, {t:e}\n",
            "mov {t:e}, 0x41000000\nvpbroadcastd zmm27, {t:e}"
        )
    };
}

/// Pass 1 of the output transforms: columns `j` of the tile's `M` (positions `6i + j`, `{m}`
/// the tile, `{mps}` bytes between positions, `{mps6}`, `{mps18}` 6 and 18 of them) through
/// [`at6`] into transit vectors `6r + j`. Uses `{cp}`, `{t}`.
macro_rules! at_columns {
    () => {
        concat!(
            "mov {cp}, {m}\n",
            ".irp j, 0, 1, 2, 3, 4, 5\n",
            "vmovups zmm0, zmmword ptr [{cp}]\n",
            "vmovups zmm1, zmmword ptr [{cp} + {mps6}]\n",
            "vmovups zmm2, zmmword ptr [{cp} + {mps6}*2]\n",
            "lea {t}, [{cp} + {mps18}]\n",
            "vmovups zmm3, zmmword ptr [{t}]\n",
            "vmovups zmm4, zmmword ptr [{t} + {mps6}]\n",
            "vmovups zmm5, zmmword ptr [{t} + {mps6}*2]\n",
            at6!(),
            "\n",
            "vmovaps zmmword ptr [{tr} + 64*\\j], zmm10\n",
            "vmovaps zmmword ptr [{tr} + 64*\\j + 384], zmm7\n",
            "vmovaps zmmword ptr [{tr} + 64*\\j + 768], zmm6\n",
            "vmovaps zmmword ptr [{tr} + 64*\\j + 1152], zmm11\n",
            "add {cp}, {mps}\n",
            ".endr"
        )
    };
}

/// Input transform of one row of tiles, one group of 16 channels: for tiles `t = 0..tiles`,
/// `V[pos][t][0..16] = (B^T d_t B)[pos]`, where `d_t` is the 6x6 pixel block whose top-left
/// pixel is `inp + 4*t*pix_stride` bytes (neighbouring tiles overlap by two pixels).
///
/// - `inp`: top-left pixel of tile 0 (padded input row `4*ty`, column `4*tx0`), first channel of
///   the group; pixel `(r, c)` of tile `t` is at `inp + r*row_stride + (4*t + c)*pix_stride`.
/// - `out`: `V[0][t0][group]`; position `pos` of tile `t0 + t` is at
///   `out + pos*pos_stride + t*pix_stride` bytes (a band's tiles are `n_in` floats apart, the
///   same as the input's pixels).
/// - `tr`: the transit buffer; column pass writes `t[i][c]` to vector `6i + c`.
///
/// Registers: `zmm0..5` one column (pass 1) or one transit row (pass 2) of six vectors,
/// `zmm6..11` its transform, `zmm12, 13` temps, `zmm31` = 4.0. GPRs: `c0` the tile's top-left
/// pixel, `cp` the current column (pass 1) / positions 4, 5 of a row (pass 2), `t` rows 4, 5
/// (pass 1) / the current position row (pass 2), `q` position 0 of the tile in `V`.
/// Per tile and group: 36 + 36 loads, 12 x 13 transform instructions, 36 + 36 stores.
///
/// # Safety
/// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn input_tile_row(
    inp: *const f32,
    pix_stride: usize,
    row_stride: usize,
    out: *mut f32,
    pos_stride: usize,
    tiles: usize,
    tr: &mut Transit,
) {
    if tiles == 0 {
        return;
    }
    asm_zmm!(
        "mov {t:e}, 0x40800000",
        "vpbroadcastd zmm31, {t:e}",
        "2:",
        // Pass 1: columns c = 0..5 of the 6x6 block -> transit vectors 6i + c.
        "mov {cp}, {c0}",
        ".irp c, 0, 1, 2, 3, 4, 5",
        "vmovups zmm0, zmmword ptr [{cp}]",
        "vmovups zmm1, zmmword ptr [{cp} + {rs}]",
        "vmovups zmm2, zmmword ptr [{cp} + {rs}*2]",
        "vmovups zmm3, zmmword ptr [{cp} + {rs3}]",
        "lea {t}, [{cp} + {rs}*4]",
        "vmovups zmm4, zmmword ptr [{t}]",
        "vmovups zmm5, zmmword ptr [{t} + {rs}]",
        bt6!(),
        "vmovaps zmmword ptr [{tr} + 64*\\c], zmm6",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 384], zmm7",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 768], zmm8",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 1152], zmm9",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 1536], zmm10",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 1920], zmm11",
        "add {cp}, {ps}",
        ".endr",
        // Pass 2: transit rows i = 0..5 -> positions 6i + j of V.
        "mov {t}, {q}",
        ".irp i, 0, 1, 2, 3, 4, 5",
        transit_row!("i"),
        bt6!(),
        "vmovups zmmword ptr [{t}], zmm6",
        "vmovups zmmword ptr [{t} + {pso}], zmm7",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm8",
        "vmovups zmmword ptr [{t} + {pso3}], zmm9",
        "lea {cp}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{cp}], zmm10",
        "vmovups zmmword ptr [{cp} + {pso}], zmm11",
        "lea {t}, [{t} + {pso3}*2]",
        ".endr",
        // Next tile: four pixels right in the input, one tile on in V.
        "lea {c0}, [{c0} + {ps}*4]",
        "add {q}, {ps}",
        "dec {n}",
        "jnz 2b",
        ;
        c0 = inout(reg) inp => _,
        ps = in(reg) pix_stride,
        rs = in(reg) row_stride,
        rs3 = in(reg) 3 * row_stride,
        q = inout(reg) out => _,
        pso = in(reg) pos_stride,
        pso3 = in(reg) 3 * pos_stride,
        n = inout(reg) tiles => _,
        tr = in(reg) tr.0.as_mut_ptr(),
        cp = out(reg) _,
        t = out(reg) _,
    );
}

/// Emits the output transform, with or without the forward pass's bias + ReLU epilogue.
macro_rules! output_tile_row {
    ($(#[$doc:meta])* $name:ident, relu: $relu:tt) => {
        $(#[$doc])*
        ///
        /// For tiles `t = 0..tiles` of one row of tiles and one group of 16 channels: the 4x4
        /// outputs `A^T M_t A`, where `M_t[pos]` is at `m + pos*pos_stride + t*pix_stride`
        /// bytes, written to `y + r*row_stride + (4*t + c)*pix_stride` bytes, `r, c` in 0..4.
        /// `pix_stride` is both the output's pixel stride and M's tile stride (`n_out*4`).
        ///
        /// Registers: pass 1 (columns j of M: positions `6i + j`) and pass 2 (rows of the
        /// transit buffer) load six vectors into `zmm0..5` and transform them into y0 `zmm10`,
        /// y1 `zmm7`, y2 `zmm6`, y3 `zmm11` (temps `zmm8, 9`); pass 1 writes transit vector
        /// `6r + j`. `zmm25, 26, 27` = 2.0, 4.0, 8.0; `zmm28` bias, `zmm29` zero (ReLU variant
        /// only). GPRs: `m`, `y` walk the tiles, `cp` the column of M (pass 1) / output pixel 3
        /// (pass 2), `t` rows 3..5 of M (pass 1) / the output row (pass 2; the bias pointer on
        /// entry), `mps6`, `mps18` = 6 and 18 positions.
        /// Per tile and group: 36 + 24 loads, 10 x 10 transform instructions (+ 16 adds, 16
        /// max), 24 + 16 stores.
        ///
        /// # Safety
        /// AVX-512F available; every address above valid for 64 bytes (no alignment needed);
        /// `bias` valid for 64 bytes in the ReLU variant.
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $name(
            m: *const f32,
            pos_stride: usize,
            pix_stride: usize,
            y: *mut f32,
            row_stride: usize,
            tiles: usize,
            bias: *const f32,
            tr: &mut Transit,
        ) {
            if tiles == 0 {
                return;
            }
            asm_zmm!(
                output_tile_row!(@prologue $relu),
                at_constants!(),
                "2:",
                // Pass 1: columns j of M -> transit vectors 6r + j.
                at_columns!(),
                // Pass 2: transit rows r -> output row r.
                "mov {t}, {y}",
                ".irp r, 0, 1, 2, 3",
                transit_row!("r"),
                at6!(),
                output_tile_row!(@epilogue $relu),
                "vmovups zmmword ptr [{t}], zmm10",
                "vmovups zmmword ptr [{t} + {ps}], zmm7",
                "vmovups zmmword ptr [{t} + {ps}*2], zmm6",
                "lea {cp}, [{t} + {ps}*2]",
                "vmovups zmmword ptr [{cp} + {ps}], zmm11",
                "add {t}, {yrs}",
                ".endr",
                // Next tile: one tile on in M, four pixels right in the output.
                "add {m}, {ps}",
                "lea {y}, [{y} + {ps}*4]",
                "dec {n}",
                "jnz 2b",
                ;
                m = inout(reg) m => _,
                mps = in(reg) pos_stride,
                mps6 = in(reg) 6 * pos_stride,
                mps18 = in(reg) 18 * pos_stride,
                ps = in(reg) pix_stride,
                y = inout(reg) y => _,
                yrs = in(reg) row_stride,
                n = inout(reg) tiles => _,
                tr = in(reg) tr.0.as_mut_ptr(),
                t = inout(reg) bias => _,
                cp = out(reg) _,
            );
        }
    };
    (@prologue true) => {
        "vmovups zmm28, zmmword ptr [{t}]\nvpxord zmm29, zmm29, zmm29"
    };
    (@prologue false) => {
        "/* no bias */"
    };
    (@epilogue true) => {
        concat!(
            "vaddps zmm10, zmm10, zmm28\nvmaxps zmm10, zmm10, zmm29\n",
            "vaddps zmm7, zmm7, zmm28\nvmaxps zmm7, zmm7, zmm29\n",
            "vaddps zmm6, zmm6, zmm28\nvmaxps zmm6, zmm6, zmm29\n",
            "vaddps zmm11, zmm11, zmm28\nvmaxps zmm11, zmm11, zmm29"
        )
    };
    (@epilogue false) => {
        "/* no epilogue */"
    };
}

output_tile_row!(
    /// Output transform with the forward epilogue: `y = max(A^T M A + bias, 0)`, `bias` the 16
    /// floats of the group.
    output_tile_row_relu, relu: true
);

output_tile_row!(
    /// Output transform alone: `y = A^T M A` (the input gradient; `bias` is ignored).
    output_tile_row_plain, relu: false
);

/// The rows of the pooled output and of its argmax codes that
/// [`output_tile_row_pool`] and [`output_tile_row_pool_codes`] write (read from memory once
/// per tile; the kernels are short of general registers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PoolRows {
    /// Bytes between pooled rows of the output.
    pub out_row: usize,
    /// The codes of the group's first pooled pixel (`_codes` variant only).
    pub codes: *mut u8,
    /// Bytes between pooled rows of the codes.
    pub codes_row: usize,
    /// Bytes between pooled pixels of the codes (the channel count).
    pub codes_pix: usize,
}

/// Emits the output transform with bias, ReLU and the 2x2 max-pool fused in, with or without
/// the argmax codes.
macro_rules! output_tile_row_pool {
    ($(#[$doc:meta])* $name:ident, codes: $codes:tt) => {
        $(#[$doc])*
        ///
        /// For tiles `t = 0..tiles` of one row of tiles and one group of 16 channels: the 4x4
        /// outputs `max(A^T M_t A + bias, 0)` exactly as [`output_tile_row_relu`] computes them
        /// (`M_t[pos]` at `m + pos*pos_stride + t*pix_stride` bytes), never stored: each of the
        /// tile's four 2x2 windows is pooled in registers as
        /// [`crate::kernels::pool::forward_row`] (codes) or [`crate::kernels::pool::max_row`]
        /// (none) pools it, the same instructions in the same operand order, so the same bits
        /// and codes. Pooled pixel `(i, j)` (`i, j` in 0..2) of tile `t` goes to
        /// `out + i*rows.out_row + (2*t + j)*pix_stride` bytes, its 16 code bytes to
        /// `rows.codes + i*rows.codes_row + (2*t + j)*rows.codes_pix`. `pix_stride` is M's
        /// tile stride and the pooled output's pixel stride (`n_out*4`).
        ///
        /// Registers: pass 1 is [`output_tile_row_relu`]'s (columns j of M -> transit
        /// vectors `6r + j`); pass 2 loads transit row `r` into `zmm0..5`, transforms it into
        /// y0 `zmm10`, y1 `zmm7`, y2 `zmm6`, y3 `zmm11` (temps `zmm8, 9`), + bias, ReLU; an
        /// even row starts the left window (y0, y1) in `zmm12` and the right one (y2, y3) in
        /// `zmm13`, an odd row finishes them and stores. With codes: `zmm14`, `zmm15` the two
        /// windows' codes (dwords), `k1..k6` the compare masks, `zmm20..23` = 1, 2, 3, 4.
        /// `zmm25, 26, 27` = 2.0, 4.0, 8.0; `zmm28` bias, `zmm29` zero. GPRs: `m`, `y` (the
        /// pooled output) and `a` (the codes) walk the tiles, `cp` the column of M (pass 1) /
        /// a temp (pass 2), `t` rows 3..5 of M (pass 1) / pooled row 1 (pass 2; the bias
        /// pointer on entry), `st` the [`PoolRows`], `mps6`, `mps18` = 6 and 18 positions.
        /// Per tile and group: 36 + 24 loads, 10 x 10 transform instructions (+ 16 adds, 16
        /// max, 12 max of the pool; codes: + 14 compares and 14 masked moves), 24 stores to
        /// the transit buffer, 4 pooled stores (codes: + 4 `vpmovdb`).
        ///
        /// # Safety
        /// AVX-512F (and BW, VL for the codes) available; every address above valid for 64
        /// bytes (codes: 16 bytes), no alignment needed; `bias` valid for 64 bytes.
        #[cfg_attr(
            target_arch = "x86_64",
            target_feature(enable = "avx512f,avx512bw,avx512vl")
        )]
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn $name(
            m: *const f32,
            pos_stride: usize,
            pix_stride: usize,
            out: *mut f32,
            rows: &PoolRows,
            tiles: usize,
            bias: *const f32,
            tr: &mut Transit,
        ) {
            if tiles == 0 {
                return;
            }
            asm_zmm!(
                "vmovups zmm28, zmmword ptr [{t}]",
                "vpxord zmm29, zmm29, zmm29",
                output_tile_row_pool!(@constants $codes),
                at_constants!(),
                "2:",
                // Pass 1: columns j of M -> transit vectors 6r + j.
                at_columns!(),
                // Pass 2: transit rows r -> output row r, + bias, ReLU, pooled in pairs.
                ".irp r, 0, 1, 2, 3",
                transit_row!("r"),
                at6!(),
                output_tile_row!(@epilogue true),
                ".if \\r & 1",
                output_tile_row_pool!(@bottom $codes),
                ".if \\r == 1",
                // Pooled row 0.
                "vmovups zmmword ptr [{y}], zmm12",
                "vmovups zmmword ptr [{y} + {ps}], zmm13",
                output_tile_row_pool!(@store_codes0 $codes),
                ".else",
                // Pooled row 1.
                "mov {t}, qword ptr [{st} + {o_out_row}]",
                "add {t}, {y}",
                "vmovups zmmword ptr [{t}], zmm12",
                "vmovups zmmword ptr [{t} + {ps}], zmm13",
                output_tile_row_pool!(@store_codes1 $codes),
                ".endif",
                ".else",
                output_tile_row_pool!(@top $codes),
                ".endif",
                ".endr",
                // Next tile: one tile on in M, two pooled pixels right in the output (and
                // codes).
                "add {m}, {ps}",
                "lea {y}, [{y} + {ps}*2]",
                output_tile_row_pool!(@next_codes $codes),
                "dec {n}",
                "jnz 2b",
                ;
                m = inout(reg) m => _,
                mps = in(reg) pos_stride,
                mps6 = in(reg) 6 * pos_stride,
                mps18 = in(reg) 18 * pos_stride,
                ps = in(reg) pix_stride,
                y = inout(reg) out => _,
                a = inout(reg) rows.codes => _,
                st = in(reg) rows as *const PoolRows,
                o_out_row = const offset_of!(PoolRows, out_row),
                o_codes_row = const offset_of!(PoolRows, codes_row),
                o_codes_pix = const offset_of!(PoolRows, codes_pix),
                n = inout(reg) tiles => _,
                tr = in(reg) tr.0.as_mut_ptr(),
                t = inout(reg) bias => _,
                cp = out(reg) _,
            );
        }
    };
    (@constants true) => {
        concat!(
            "mov {t:e}, 1\nvpbroadcastd zmm20, {t:e}\n",
            "mov {t:e}, 2\nvpbroadcastd zmm21, {t:e}\n",
            "mov {t:e}, 3\nvpbroadcastd zmm22, {t:e}\n",
            "mov {t:e}, 4\nvpbroadcastd zmm23, {t:e}"
        )
    };
    (@constants false) => {
        // asm! refuses an operand it never uses; without codes the codes' offsets are not read.
        "/* no codes: {o_codes_row} {o_codes_pix} */"
    };
    // The windows' top-left and top-right: m = max(TL, TR), code 1 where TR > TL.
    (@top true) => {
        concat!(
            "vcmpps k1, zmm7, zmm10, 0x1e\n",
            "vmaxps zmm12, zmm10, zmm7\n",
            "vmovdqa32 zmm14 {{k1}}{{z}}, zmm20\n",
            "vcmpps k2, zmm11, zmm6, 0x1e\n",
            "vmaxps zmm13, zmm6, zmm11\n",
            "vmovdqa32 zmm15 {{k2}}{{z}}, zmm20"
        )
    };
    (@top false) => {
        "vmaxps zmm12, zmm10, zmm7\nvmaxps zmm13, zmm6, zmm11"
    };
    // Bottom-left, bottom-right: code 2, 3 where greater than m so far; code 4 where m <= 0.
    (@bottom true) => {
        concat!(
            "vcmpps k1, zmm10, zmm12, 0x1e\n",
            "vmaxps zmm12, zmm12, zmm10\n",
            "vmovdqa32 zmm14 {{k1}}, zmm21\n",
            "vcmpps k2, zmm6, zmm13, 0x1e\n",
            "vmaxps zmm13, zmm13, zmm6\n",
            "vmovdqa32 zmm15 {{k2}}, zmm21\n",
            "vcmpps k3, zmm7, zmm12, 0x1e\n",
            "vmaxps zmm12, zmm12, zmm7\n",
            "vmovdqa32 zmm14 {{k3}}, zmm22\n",
            "vcmpps k4, zmm11, zmm13, 0x1e\n",
            "vmaxps zmm13, zmm13, zmm11\n",
            "vmovdqa32 zmm15 {{k4}}, zmm22\n",
            "vcmpps k5, zmm12, zmm29, 0x12\n",
            "vmovdqa32 zmm14 {{k5}}, zmm23\n",
            "vcmpps k6, zmm13, zmm29, 0x12\n",
            "vmovdqa32 zmm15 {{k6}}, zmm23"
        )
    };
    (@bottom false) => {
        concat!(
            "vmaxps zmm12, zmm12, zmm10\nvmaxps zmm13, zmm13, zmm6\n",
            "vmaxps zmm12, zmm12, zmm7\nvmaxps zmm13, zmm13, zmm11"
        )
    };
    (@store_codes0 true) => {
        concat!(
            "vpmovdb xmmword ptr [{a}], zmm14\n",
            "mov {cp}, qword ptr [{st} + {o_codes_pix}]\n",
            "vpmovdb xmmword ptr [{a} + {cp}], zmm15"
        )
    };
    (@store_codes1 true) => {
        concat!(
            "mov {cp}, qword ptr [{st} + {o_codes_row}]\n",
            "add {cp}, {a}\n",
            "vpmovdb xmmword ptr [{cp}], zmm14\n",
            "add {cp}, qword ptr [{st} + {o_codes_pix}]\n",
            "vpmovdb xmmword ptr [{cp}], zmm15"
        )
    };
    (@next_codes true) => {
        "mov {cp}, qword ptr [{st} + {o_codes_pix}]\nlea {a}, [{a} + {cp}*2]"
    };
    (@store_codes0 false) => {
        "/* no codes */"
    };
    (@store_codes1 false) => {
        "/* no codes */"
    };
    (@next_codes false) => {
        "/* no codes ({a} unused) */"
    };
}

output_tile_row_pool!(
    /// Output transform, bias, ReLU and 2x2 max-pool with argmax codes (training): the pooled
    /// values and codes of [`output_tile_row_relu`] followed by
    /// [`crate::kernels::pool::forward_row`].
    output_tile_row_pool_codes, codes: true
);

output_tile_row_pool!(
    /// Output transform, bias, ReLU and 2x2 max-pool, no codes (inference): the pooled values
    /// of [`output_tile_row_relu`] followed by [`crate::kernels::pool::max_row`]
    /// (`rows.codes*` unused).
    output_tile_row_pool, codes: false
);

/// The 1-D output-gradient transform `A` (4 -> 6): `zmm0..3` (y0..y3; zmm1, zmm2 clobbered) ->
/// m0 `zmm0`, m1 `zmm6`, m2 `zmm7`, m3 `zmm8`, m4 `zmm9`, m5 `zmm3`; temps `zmm4, 5`;
/// `zmm31` = 4.0.
macro_rules! a6 {
    () => {
        concat!(
            "vaddps zmm4, zmm0, zmm2\n",       // e = y0 + y2
            "vaddps zmm5, zmm1, zmm3\n",       // o = y1 + y3
            "vaddps zmm6, zmm4, zmm5\n",       // m1 = e + o
            "vsubps zmm7, zmm4, zmm5\n",       // m2 = e - o
            "vfmadd213ps zmm2, zmm31, zmm0\n", // e2 = y0 + 4 y2
            "vfmadd231ps zmm1, zmm3, zmm31\n", // y1 + 4 y3
            "vaddps zmm1, zmm1, zmm1\n",       // o2 = 2 y1 + 8 y3
            "vaddps zmm8, zmm2, zmm1\n",       // m3 = e2 + o2
            "vsubps zmm9, zmm2, zmm1\n",       // m4 = e2 - o2
        )
    };
}
pub(crate) use a6;

/// Output-gradient transform of one row of tiles, one group of 16 channels, for the weight
/// gradient: for tiles `t = 0..tiles`, `dM[pos][t][0..16] = (A dY_t A^T)[pos]` (the adjoint of
/// the output transform `Y = A^T M A`), where `dY_t` is the 4x4 output-gradient block whose
/// top-left pixel is `dy + 4*t*pix_stride` bytes; and `db[0..16] += sum of the 4x4 blocks`
/// (A's row 1 is `[1, 1, 1, 1]`, so that sum is `dM[1][1]`, already computed).
///
/// - `dy`: pixel (row `4*ty`, column 0) of the output gradient, first channel of the group;
///   pixel `(r, c)` of tile `t` is at `dy + r*row_stride + (4*t + c)*pix_stride` bytes.
/// - `out`: `dM[0][t0][group]`; position `pos` of tile `t0 + t` is at
///   `out + pos*pos_stride + t*pix_stride` bytes (a band's tiles are `n_out` floats apart).
/// - `db`: the 16 bias-gradient sums of the group, read and written back.
///
/// Registers: pass 1 (columns c of `dY`) and pass 2 (rows of the transit buffer) load four
/// vectors into `zmm0..3` and transform them into m0 `zmm0`, m1 `zmm6`, m2 `zmm7`, m3 `zmm8`,
/// m4 `zmm9`, m5 `zmm3` (temps `zmm1, 2, 4, 5`); pass 1 writes transit vector `4i + c`.
/// `zmm30` the bias sum, `zmm31` = 4.0. GPRs: `c0` the tile's top-left pixel, `cp` the column
/// (pass 1) / positions 4, 5 (pass 2), `t` row 3 (pass 1) / the position row (pass 2), `q`
/// position 0 of the tile in `dM`.
/// Per tile and group: 16 + 24 loads, 10 x 9 transform instructions, 1 bias add, 24 + 36 stores.
///
/// # Safety
/// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
#[allow(clippy::too_many_arguments)]
pub unsafe fn grad_tile_row(
    dy: *const f32,
    pix_stride: usize,
    row_stride: usize,
    out: *mut f32,
    pos_stride: usize,
    tiles: usize,
    db: *mut f32,
    tr: &mut Transit,
) {
    if tiles == 0 {
        return;
    }
    asm_zmm!(
        "mov {t:e}, 0x40800000",
        "vpbroadcastd zmm31, {t:e}",
        "vmovups zmm30, zmmword ptr [{db}]",
        "2:",
        // Pass 1: columns c = 0..3 of the 4x4 block -> transit vectors 4i + c.
        "mov {cp}, {c0}",
        ".irp c, 0, 1, 2, 3",
        "vmovups zmm0, zmmword ptr [{cp}]",
        "vmovups zmm1, zmmword ptr [{cp} + {rs}]",
        "vmovups zmm2, zmmword ptr [{cp} + {rs}*2]",
        "lea {t}, [{cp} + {rs}*2]",
        "vmovups zmm3, zmmword ptr [{t} + {rs}]",
        a6!(),
        "vmovaps zmmword ptr [{tr} + 64*\\c], zmm0",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 256], zmm6",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 512], zmm7",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 768], zmm8",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 1024], zmm9",
        "vmovaps zmmword ptr [{tr} + 64*\\c + 1280], zmm3",
        "add {cp}, {ps}",
        ".endr",
        // Pass 2: transit rows i = 0..5 -> positions 6i + j of dM.
        "mov {t}, {q}",
        ".irp i, 0, 1, 2, 3, 4, 5",
        "vmovaps zmm0, zmmword ptr [{tr} + 256*\\i]",
        "vmovaps zmm1, zmmword ptr [{tr} + 256*\\i + 64]",
        "vmovaps zmm2, zmmword ptr [{tr} + 256*\\i + 128]",
        "vmovaps zmm3, zmmword ptr [{tr} + 256*\\i + 192]",
        a6!(),
        ".if \\i == 1",
        // Bias: dM[1][1] is the sum of the block.
        "vaddps zmm30, zmm30, zmm6",
        ".endif",
        "vmovups zmmword ptr [{t}], zmm0",
        "vmovups zmmword ptr [{t} + {pso}], zmm6",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm7",
        "vmovups zmmword ptr [{t} + {pso3}], zmm8",
        "lea {cp}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{cp}], zmm9",
        "vmovups zmmword ptr [{cp} + {pso}], zmm3",
        "lea {t}, [{t} + {pso3}*2]",
        ".endr",
        // Next tile: four pixels right in the output gradient, one tile on in dM.
        "lea {c0}, [{c0} + {ps}*4]",
        "add {q}, {ps}",
        "dec {n}",
        "jnz 2b",
        "vmovups zmmword ptr [{db}], zmm30",
        ;
        c0 = inout(reg) dy => _,
        ps = in(reg) pix_stride,
        rs = in(reg) row_stride,
        q = inout(reg) out => _,
        pso = in(reg) pos_stride,
        pso3 = in(reg) 3 * pos_stride,
        n = inout(reg) tiles => _,
        db = in(reg) db,
        tr = in(reg) tr.0.as_mut_ptr(),
        cp = out(reg) _,
        t = out(reg) _,
    );
}

/// The 1-D weight-gradient transform `G^T` (6 -> 3): `zmm0..5` (x0..x5) -> r0 `zmm10`,
/// r1 `zmm11`, r2 `zmm12`; temps `zmm6..9`; `zmm28..31` = 1/4, 1/6, 1/12, 1/24.
macro_rules! gt6 {
    () => {
        concat!(
            "vaddps zmm6, zmm1, zmm2\n",         // s12
            "vsubps zmm7, zmm2, zmm1\n",         // d21 = x2 - x1
            "vaddps zmm8, zmm3, zmm4\n",         // s34
            "vsubps zmm9, zmm3, zmm4\n",         // d34
            "vmulps zmm10, zmm0, zmm28\n",       // x0/4
            "vfnmadd231ps zmm10, zmm6, zmm29\n", //   - s12/6
            "vfmadd231ps zmm10, zmm8, zmm31\n",  //   + s34/24 = r0
            "vmulps zmm11, zmm7, zmm29\n",       // d21/6
            "vfmadd231ps zmm11, zmm9, zmm30\n",  //   + d34/12 = r1
            "vsubps zmm12, zmm8, zmm6\n",        // s34 - s12
            "vfmadd213ps zmm12, zmm29, zmm5\n",  // (s34 - s12)/6 + x5 = r2
        )
    };
}
pub(crate) use gt6;

/// The constants of [`gt6`]: `zmm28..31` = 1/4, 1/6, 1/12, 1/24 (the last three rounded to
/// f32), via `{t}`.
macro_rules! gt_constants {
    () => {
        concat!(
            "mov {t:e}, 0x3e800000\nvpbroadcastd zmm28, {t:e}\n",
            "mov {t:e}, 0x3e2aaaab\nvpbroadcastd zmm29, {t:e}\n",
            "mov {t:e}, 0x3daaaaab\nvpbroadcastd zmm30, {t:e}\n",
            "mov {t:e}, 0x3d2aaaab\nvpbroadcastd zmm31, {t:e}"
        )
    };
}
pub(crate) use gt_constants;

/// Weight-gradient transform `dg = G^T dU G` (6x6 -> 3x3, the adjoint of the weight transform
/// `U = G g G^T`), for `groups` consecutive groups of 16 floats: group `k` reads
/// `dU[pos] = du + pos*pos_stride + 64*k` bytes (`pos = 6i + j`, 36 positions) and writes tap
/// `(ky, kx)` to `dw + (3*ky + kx)*tap_stride + 64*k` bytes (overwrite).
///
/// Registers: pass 1 (columns j of dU: positions `6i + j`) and pass 2 (rows k of the transit
/// buffer) load six vectors into `zmm0..5` and transform them into `zmm10..12` (temps
/// `zmm6..9`); pass 1 writes transit vector `6k + j`. `zmm28..31` = 1/4, 1/6, 1/12, 1/24 (the
/// last three rounded to f32). GPRs: `p` walks the groups of dU, `d` those of dw, `cp` the
/// column of dU (pass 1), `t` rows 3..5 of dU (pass 1) / taps 3..8 (pass 2).
/// Per group: 36 + 18 loads, 9 x 11 transform instructions, 18 + 9 stores.
///
/// # Safety
/// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn weight_grad_transform(
    du: *const f32,
    pos_stride: usize,
    dw: *mut f32,
    tap_stride: usize,
    groups: usize,
    tr: &mut Transit,
) {
    if groups == 0 {
        return;
    }
    asm_zmm!(
        gt_constants!(),
        "2:",
        // Pass 1: columns j of dU -> transit vectors 6k + j.
        "mov {cp}, {p}",
        ".irp j, 0, 1, 2, 3, 4, 5",
        "vmovups zmm0, zmmword ptr [{cp}]",
        "vmovups zmm1, zmmword ptr [{cp} + {ps6}]",
        "vmovups zmm2, zmmword ptr [{cp} + {ps6}*2]",
        "lea {t}, [{cp} + {ps18}]",
        "vmovups zmm3, zmmword ptr [{t}]",
        "vmovups zmm4, zmmword ptr [{t} + {ps6}]",
        "vmovups zmm5, zmmword ptr [{t} + {ps6}*2]",
        gt6!(),
        "vmovaps zmmword ptr [{tr} + 64*\\j], zmm10",
        "vmovaps zmmword ptr [{tr} + 64*\\j + 384], zmm11",
        "vmovaps zmmword ptr [{tr} + 64*\\j + 768], zmm12",
        "add {cp}, {ps}",
        ".endr",
        // Pass 2: transit rows k = ky -> taps 3*ky + kx.
        ".irp k, 0, 1, 2",
        transit_row!("k"),
        gt6!(),
        ".if \\k == 0",
        "mov {t}, {d}",
        ".elseif \\k == 1",
        "lea {t}, [{d} + {ts3}]",
        ".else",
        "lea {t}, [{d} + {ts3}*2]",
        ".endif",
        "vmovups zmmword ptr [{t}], zmm10",
        "vmovups zmmword ptr [{t} + {ts}], zmm11",
        "vmovups zmmword ptr [{t} + {ts}*2], zmm12",
        ".endr",
        "add {p}, 64",
        "add {d}, 64",
        "dec {n}",
        "jnz 2b",
        ;
        p = inout(reg) du => _,
        ps = in(reg) pos_stride,
        ps6 = in(reg) 6 * pos_stride,
        ps18 = in(reg) 18 * pos_stride,
        d = inout(reg) dw => _,
        ts = in(reg) tap_stride,
        ts3 = in(reg) 3 * tap_stride,
        n = inout(reg) groups => _,
        tr = in(reg) tr.0.as_mut_ptr(),
        cp = out(reg) _,
        t = out(reg) _,
    );
}

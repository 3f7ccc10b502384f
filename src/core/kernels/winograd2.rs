//! `asm!` kernels of the Winograd F(2x2, 3x3) convolution: the input transform and the output
//! transform, and for the weight gradient the adjoints of the output and weight transforms
//! ([`grad_tile_row`], [`weight_grad_transform`]). (The 16 matrix products between them run on
//! the GEMM micro-kernel ([`crate::kernels::microkernel`]), driven by
//! `crate::layers::conv::winograd`.)
//!
//! F(2x2, 3x3) computes a 2x2 block of outputs of a 3x3 correlation from a 4x4 block of inputs
//! with 16 multiplies instead of 36:
//!
//! ```text
//! Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
//!
//! B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
//!       | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//!       | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
//!       | 0  1  0 -1 |       | 0    0    1   |
//! ```
//!
//! Here every element is a vector of 16 channels (one ZMM register), so a transform is a few
//! dozen `vaddps`/`vsubps` per tile and channel group; the weight transform `G g G^T` runs once
//! per batch in Rust (`crate::layers::conv::winograd::pack`), like the direct kernels' repacking.
//!
//! Layout of the transformed tensors (the *band* is the set of tiles transformed together):
//! `V[pos][tile][channel]` and `M[pos][tile][channel]`, `pos = 4*i + j` the position in the
//! 4x4 transformed tile, tiles of a band numbered row-major. A tile's channels are contiguous, so
//! each of the 16 products `M[pos] = V[pos] U[pos]` is an ordinary `tiles x n_in` by
//! `n_in x n_out` matrix product.

use crate::kernels::asm_zmm;

/// Input transform of one row of tiles, one group of 16 channels: for tiles `t = 0..tiles`,
/// `V[pos][t][0..16] = (B^T d_t B)[pos]`, where `d_t` is the 4x4 pixel block whose top-left
/// pixel is `inp + 2*t*pix_stride` bytes.
///
/// - `inp`: top-left pixel of tile 0 (padded input row `2*ty`, column 0), first channel of the
///   group; pixel `(r, c)` of tile `t` is at `inp + r*row_stride + (2*t + c)*pix_stride` bytes.
/// - `out`: `V[0][t0][group]`; position `pos` of tile `t0 + t` is at
///   `out + pos*pos_stride + t*pix_stride` bytes (a band's tiles are `n_in` floats apart, the
///   same as the input's pixels).
///
/// Registers: `zmm0..15` the 16 input vectors `d[r][c]` in `zmm(4c + r)`, reused for the
/// results; `zmm16..31` the row-transformed `t[i][c]` in `zmm(16 + 4i + c)`. GPRs: `c0..c3` the
/// tile's four column pointers, `q` the output position-0 pointer, `t` the position-row pointer.
/// Per tile and group: 16 loads, 32 add/sub, 16 stores.
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
) {
    if tiles == 0 {
        return;
    }
    asm_zmm!(
        "2:",
        "lea {c1}, [{c0} + {ps}]",
        "lea {c2}, [{c0} + {ps}*2]",
        "lea {c3}, [{c1} + {ps}*2]",
        // d[r][c] -> zmm(4c + r)
        "vmovups zmm0, zmmword ptr [{c0}]",
        "vmovups zmm1, zmmword ptr [{c0} + {rs}]",
        "vmovups zmm2, zmmword ptr [{c0} + {rs}*2]",
        "vmovups zmm3, zmmword ptr [{c0} + {rs3}]",
        "vmovups zmm4, zmmword ptr [{c1}]",
        "vmovups zmm5, zmmword ptr [{c1} + {rs}]",
        "vmovups zmm6, zmmword ptr [{c1} + {rs}*2]",
        "vmovups zmm7, zmmword ptr [{c1} + {rs3}]",
        "vmovups zmm8, zmmword ptr [{c2}]",
        "vmovups zmm9, zmmword ptr [{c2} + {rs}]",
        "vmovups zmm10, zmmword ptr [{c2} + {rs}*2]",
        "vmovups zmm11, zmmword ptr [{c2} + {rs3}]",
        "vmovups zmm12, zmmword ptr [{c3}]",
        "vmovups zmm13, zmmword ptr [{c3} + {rs}]",
        "vmovups zmm14, zmmword ptr [{c3} + {rs}*2]",
        "vmovups zmm15, zmmword ptr [{c3} + {rs3}]",
        // Rows, per column c: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3.
        "vsubps zmm16, zmm0, zmm2",
        "vaddps zmm20, zmm1, zmm2",
        "vsubps zmm24, zmm2, zmm1",
        "vsubps zmm28, zmm1, zmm3",
        "vsubps zmm17, zmm4, zmm6",
        "vaddps zmm21, zmm5, zmm6",
        "vsubps zmm25, zmm6, zmm5",
        "vsubps zmm29, zmm5, zmm7",
        "vsubps zmm18, zmm8, zmm10",
        "vaddps zmm22, zmm9, zmm10",
        "vsubps zmm26, zmm10, zmm9",
        "vsubps zmm30, zmm9, zmm11",
        "vsubps zmm19, zmm12, zmm14",
        "vaddps zmm23, zmm13, zmm14",
        "vsubps zmm27, zmm14, zmm13",
        "vsubps zmm31, zmm13, zmm15",
        // Columns, per row i: v0 = t0 - t2, v1 = t1 + t2, v2 = t2 - t1, v3 = t1 - t3.
        "vsubps zmm0, zmm16, zmm18",
        "vaddps zmm1, zmm17, zmm18",
        "vsubps zmm2, zmm18, zmm17",
        "vsubps zmm3, zmm17, zmm19",
        "vsubps zmm4, zmm20, zmm22",
        "vaddps zmm5, zmm21, zmm22",
        "vsubps zmm6, zmm22, zmm21",
        "vsubps zmm7, zmm21, zmm23",
        "vsubps zmm8, zmm24, zmm26",
        "vaddps zmm9, zmm25, zmm26",
        "vsubps zmm10, zmm26, zmm25",
        "vsubps zmm11, zmm25, zmm27",
        "vsubps zmm12, zmm28, zmm30",
        "vaddps zmm13, zmm29, zmm30",
        "vsubps zmm14, zmm30, zmm29",
        "vsubps zmm15, zmm29, zmm31",
        // v[i][j] -> position 4i + j.
        "vmovups zmmword ptr [{q}], zmm0",
        "vmovups zmmword ptr [{q} + {pso}], zmm1",
        "vmovups zmmword ptr [{q} + {pso}*2], zmm2",
        "vmovups zmmword ptr [{q} + {pso3}], zmm3",
        "lea {t}, [{q} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm4",
        "vmovups zmmword ptr [{t} + {pso}], zmm5",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm6",
        "vmovups zmmword ptr [{t} + {pso3}], zmm7",
        "lea {t}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm8",
        "vmovups zmmword ptr [{t} + {pso}], zmm9",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm10",
        "vmovups zmmword ptr [{t} + {pso3}], zmm11",
        "lea {t}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm12",
        "vmovups zmmword ptr [{t} + {pso}], zmm13",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm14",
        "vmovups zmmword ptr [{t} + {pso3}], zmm15",
        // Next tile: two pixels right in the input, one tile on in V.
        "lea {c0}, [{c0} + {ps}*2]",
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
        c1 = out(reg) _,
        c2 = out(reg) _,
        c3 = out(reg) _,
        t = out(reg) _,
    );
}

/// Emits the output transform, with or without the forward pass's bias + ReLU epilogue.
macro_rules! output_tile_row {
    ($(#[$doc:meta])* $name:ident, relu: $relu:tt) => {
        $(#[$doc])*
        ///
        /// For tiles `t = 0..tiles` of one row of tiles and one group of 16 channels:
        /// the 2x2 outputs `A^T M_t A`, where `M_t[pos]` is at `m + pos*pos_stride + t*pix_stride`
        /// bytes, written to `y + (r*row_stride) + (2*t + c)*pix_stride` bytes, `r, c` in 0..2.
        /// `pix_stride` is both the output's pixel stride and M's tile stride (`n_out*4`).
        ///
        /// Registers: `zmm0..15` the 16 products `M[i][j]` in `zmm(4i + j)`; `zmm16..19` the
        /// column sums `s0[j] = m0j + m1j + m2j`, `zmm20..23` `s1[j] = m1j - m2j - m3j`;
        /// `zmm24..27` the outputs `y00, y01, y10, y11`; `zmm28` bias, `zmm29` zero (ReLU
        /// variant only). GPRs: `m`, `y` walk the tiles, `t` addresses rows of M / of the output.
        /// Per tile and group: 16 loads, 24 add/sub (+ 4 adds, 4 max), 4 stores.
        ///
        /// # Safety
        /// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
        pub unsafe fn $name(
            m: *const f32,
            pos_stride: usize,
            pix_stride: usize,
            y: *mut f32,
            row_stride: usize,
            tiles: usize,
            bias: *const f32,
        ) {
            if tiles == 0 {
                return;
            }
            asm_zmm!(
                output_tile_row!(@prologue $relu),
                "2:",
                "vmovups zmm0, zmmword ptr [{m}]",
                "vmovups zmm1, zmmword ptr [{m} + {mps}]",
                "vmovups zmm2, zmmword ptr [{m} + {mps}*2]",
                "vmovups zmm3, zmmword ptr [{m} + {mps3}]",
                "lea {t}, [{m} + {mps}*4]",
                "vmovups zmm4, zmmword ptr [{t}]",
                "vmovups zmm5, zmmword ptr [{t} + {mps}]",
                "vmovups zmm6, zmmword ptr [{t} + {mps}*2]",
                "vmovups zmm7, zmmword ptr [{t} + {mps3}]",
                "lea {t}, [{t} + {mps}*4]",
                "vmovups zmm8, zmmword ptr [{t}]",
                "vmovups zmm9, zmmword ptr [{t} + {mps}]",
                "vmovups zmm10, zmmword ptr [{t} + {mps}*2]",
                "vmovups zmm11, zmmword ptr [{t} + {mps3}]",
                "lea {t}, [{t} + {mps}*4]",
                "vmovups zmm12, zmmword ptr [{t}]",
                "vmovups zmm13, zmmword ptr [{t} + {mps}]",
                "vmovups zmm14, zmmword ptr [{t} + {mps}*2]",
                "vmovups zmm15, zmmword ptr [{t} + {mps3}]",
                // Rows: s0[j] = m0j + m1j + m2j, s1[j] = m1j - m2j - m3j.
                "vaddps zmm16, zmm0, zmm4",
                "vaddps zmm16, zmm16, zmm8",
                "vsubps zmm20, zmm4, zmm8",
                "vsubps zmm20, zmm20, zmm12",
                "vaddps zmm17, zmm1, zmm5",
                "vaddps zmm17, zmm17, zmm9",
                "vsubps zmm21, zmm5, zmm9",
                "vsubps zmm21, zmm21, zmm13",
                "vaddps zmm18, zmm2, zmm6",
                "vaddps zmm18, zmm18, zmm10",
                "vsubps zmm22, zmm6, zmm10",
                "vsubps zmm22, zmm22, zmm14",
                "vaddps zmm19, zmm3, zmm7",
                "vaddps zmm19, zmm19, zmm11",
                "vsubps zmm23, zmm7, zmm11",
                "vsubps zmm23, zmm23, zmm15",
                // Columns: y[r][0] = s_r0 + s_r1 + s_r2, y[r][1] = s_r1 - s_r2 - s_r3.
                "vaddps zmm24, zmm16, zmm17",
                "vaddps zmm24, zmm24, zmm18",
                "vsubps zmm25, zmm17, zmm18",
                "vsubps zmm25, zmm25, zmm19",
                "vaddps zmm26, zmm20, zmm21",
                "vaddps zmm26, zmm26, zmm22",
                "vsubps zmm27, zmm21, zmm22",
                "vsubps zmm27, zmm27, zmm23",
                output_tile_row!(@epilogue $relu),
                "vmovups zmmword ptr [{y}], zmm24",
                "vmovups zmmword ptr [{y} + {ps}], zmm25",
                "lea {t}, [{y} + {yrs}]",
                "vmovups zmmword ptr [{t}], zmm26",
                "vmovups zmmword ptr [{t} + {ps}], zmm27",
                "add {m}, {ps}",
                "lea {y}, [{y} + {ps}*2]",
                "dec {n}",
                "jnz 2b",
                ;
                m = inout(reg) m => _,
                mps = in(reg) pos_stride,
                mps3 = in(reg) 3 * pos_stride,
                ps = in(reg) pix_stride,
                y = inout(reg) y => _,
                yrs = in(reg) row_stride,
                n = inout(reg) tiles => _,
                b = in(reg) bias,
                t = out(reg) _,
            );
        }
    };
    (@prologue true) => {
        "vmovups zmm28, zmmword ptr [{b}]\nvpxord zmm29, zmm29, zmm29"
    };
    (@prologue false) => {
        "/* no bias: {b} unused */"
    };
    (@epilogue true) => {
        concat!(
            "vaddps zmm24, zmm24, zmm28\nvmaxps zmm24, zmm24, zmm29\n",
            "vaddps zmm25, zmm25, zmm28\nvmaxps zmm25, zmm25, zmm29\n",
            "vaddps zmm26, zmm26, zmm28\nvmaxps zmm26, zmm26, zmm29\n",
            "vaddps zmm27, zmm27, zmm28\nvmaxps zmm27, zmm27, zmm29"
        )
    };
    (@epilogue false) => {
        ""
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

/// Output-gradient transform of one row of tiles, one group of 16 channels, for the weight
/// gradient: for tiles `t = 0..tiles`, `dM[pos][t][0..16] = (A dY_t A^T)[pos]` (the adjoint of
/// the output transform `Y = A^T M A`), where `dY_t` is the 2x2 output-gradient block whose
/// top-left pixel is `dy + 2*t*pix_stride` bytes; and `db[0..16] += sum of the 2x2 blocks`
/// (A's row 1 is `[1, 1]`, so that sum is `dM[1][1]`, already computed).
///
/// ```text
/// A = | 1  0 |   row step (per column c):  t0 = y0, t1 = y0 + y1, t2 = y0 - y1, t3 = -y1
///     | 1  1 |   column step (per row i):  m0 = t0, m1 = t0 + t1, m2 = t0 - t1, m3 = -t1
///     | 1 -1 |
///     | 0 -1 |
/// ```
///
/// - `dy`: pixel (row `2*ty`, column 0) of the output gradient, first channel of the group;
///   pixel `(r, c)` of tile `t` is at `dy + r*row_stride + (2*t + c)*pix_stride` bytes.
/// - `out`: `dM[0][t0][group]`; position `pos` of tile `t0 + t` is at
///   `out + pos*pos_stride + t*pix_stride` bytes (a band's tiles are `n_out` floats apart).
/// - `db`: the 16 bias-gradient sums of the group, read and written back.
///
/// Registers: `zmm0..3` the inputs `y00, y01, y10, y11` (and `t0c = y0c`); `zmm4, 5` `t1c`,
/// `zmm6, 7` `t2c`, `zmm8, 9` `t3c` (c = 0, 1); outputs `dM[i][0]` are `t_i0` (zmm0, 4, 6, 8),
/// `dM[i][1..3]` in `zmm(10 + 3i) .. zmm(12 + 3i)`; `zmm30` the bias sum, `zmm31` zero. GPRs:
/// `c0`, `c1` the tile's two input rows, `q` the output position-0 pointer, `t` the
/// position-row pointer. Per tile and group: 4 loads, 18 add/sub, 1 bias add, 16 stores.
///
/// # Safety
/// AVX-512F available; every address above valid for 64 bytes (no alignment needed).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
pub unsafe fn grad_tile_row(
    dy: *const f32,
    pix_stride: usize,
    row_stride: usize,
    out: *mut f32,
    pos_stride: usize,
    tiles: usize,
    db: *mut f32,
) {
    if tiles == 0 {
        return;
    }
    asm_zmm!(
        "vpxord zmm31, zmm31, zmm31",
        "vmovups zmm30, zmmword ptr [{db}]",
        "2:",
        "lea {c1}, [{c0} + {rs}]",
        "vmovups zmm0, zmmword ptr [{c0}]",
        "vmovups zmm1, zmmword ptr [{c0} + {ps}]",
        "vmovups zmm2, zmmword ptr [{c1}]",
        "vmovups zmm3, zmmword ptr [{c1} + {ps}]",
        // Rows: t1c = y0c + y1c, t2c = y0c - y1c, t3c = -y1c.
        "vaddps zmm4, zmm0, zmm2",
        "vaddps zmm5, zmm1, zmm3",
        "vsubps zmm6, zmm0, zmm2",
        "vsubps zmm7, zmm1, zmm3",
        "vsubps zmm8, zmm31, zmm2",
        "vsubps zmm9, zmm31, zmm3",
        // Columns, per row i (t_i0, t_i1): m1 = t0 + t1, m2 = t0 - t1, m3 = -t1.
        "vaddps zmm10, zmm0, zmm1",
        "vsubps zmm11, zmm0, zmm1",
        "vsubps zmm12, zmm31, zmm1",
        "vaddps zmm13, zmm4, zmm5",
        "vsubps zmm14, zmm4, zmm5",
        "vsubps zmm15, zmm31, zmm5",
        "vaddps zmm16, zmm6, zmm7",
        "vsubps zmm17, zmm6, zmm7",
        "vsubps zmm18, zmm31, zmm7",
        "vaddps zmm19, zmm8, zmm9",
        "vsubps zmm20, zmm8, zmm9",
        "vsubps zmm21, zmm31, zmm9",
        // Bias: dM[1][1] is the sum of the block.
        "vaddps zmm30, zmm30, zmm13",
        // dM[i][j] -> position 4i + j.
        "vmovups zmmword ptr [{q}], zmm0",
        "vmovups zmmword ptr [{q} + {pso}], zmm10",
        "vmovups zmmword ptr [{q} + {pso}*2], zmm11",
        "vmovups zmmword ptr [{q} + {pso3}], zmm12",
        "lea {t}, [{q} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm4",
        "vmovups zmmword ptr [{t} + {pso}], zmm13",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm14",
        "vmovups zmmword ptr [{t} + {pso3}], zmm15",
        "lea {t}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm6",
        "vmovups zmmword ptr [{t} + {pso}], zmm16",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm17",
        "vmovups zmmword ptr [{t} + {pso3}], zmm18",
        "lea {t}, [{t} + {pso}*4]",
        "vmovups zmmword ptr [{t}], zmm8",
        "vmovups zmmword ptr [{t} + {pso}], zmm19",
        "vmovups zmmword ptr [{t} + {pso}*2], zmm20",
        "vmovups zmmword ptr [{t} + {pso3}], zmm21",
        // Next tile: two pixels right in the output gradient, one tile on in dM.
        "lea {c0}, [{c0} + {ps}*2]",
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
        c1 = out(reg) _,
        t = out(reg) _,
    );
}

/// Weight-gradient transform `dg = G^T dU G` (4x4 -> 3x3, the adjoint of the weight transform
/// `U = G g G^T`), for `groups` consecutive groups of 16 floats: group `k` reads
/// `dU[pos] = du + pos*pos_stride + 64*k` bytes (pos = 4i + j, 16 positions) and writes tap
/// `(ky, kx)` to `dw + (3*ky + kx)*tap_stride + 64*k` bytes (overwrite).
///
/// ```text
/// G^T = | 1  1/2  1/2  0 |   per column j:  r0 = x0 + (x1 + x2)/2, r1 = (x1 - x2)/2,
///       | 0  1/2 -1/2  0 |                  r2 = x3 + (x1 + x2)/2; then the same per row.
///       | 0  1/2  1/2  1 |
/// ```
///
/// Registers: `zmm0..15` `dU[i][j]` in `zmm(4i + j)`; row step: `zmm16..19` `s_j = x1j + x2j`,
/// `zmm20..23` `d_j = x1j - x2j`, results `r0` in place in zmm0..3, `r1 = d/2` in zmm20..23,
/// `r2` in place in zmm12..15; column step per row k: sums in zmm16/18/24, differences in
/// zmm17/19/25, outputs (taps 0..8) zmm0, 17, 3 | 20, 19, 23 | 12, 25, 15; `zmm31` = 0.5.
/// GPRs: `p` walks the groups of dU, `d` those of dw, `t` addresses position / tap rows.
/// Per group: 16 loads, 18 add/sub, 12 FMA, 6 mul, 9 stores.
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
) {
    if groups == 0 {
        return;
    }
    asm_zmm!(
        "mov {t:e}, 0x3f000000",
        "vpbroadcastd zmm31, {t:e}",
        "2:",
        "vmovups zmm0, zmmword ptr [{p}]",
        "vmovups zmm1, zmmword ptr [{p} + {ps}]",
        "vmovups zmm2, zmmword ptr [{p} + {ps}*2]",
        "vmovups zmm3, zmmword ptr [{p} + {ps3}]",
        "lea {t}, [{p} + {ps}*4]",
        "vmovups zmm4, zmmword ptr [{t}]",
        "vmovups zmm5, zmmword ptr [{t} + {ps}]",
        "vmovups zmm6, zmmword ptr [{t} + {ps}*2]",
        "vmovups zmm7, zmmword ptr [{t} + {ps3}]",
        "lea {t}, [{t} + {ps}*4]",
        "vmovups zmm8, zmmword ptr [{t}]",
        "vmovups zmm9, zmmword ptr [{t} + {ps}]",
        "vmovups zmm10, zmmword ptr [{t} + {ps}*2]",
        "vmovups zmm11, zmmword ptr [{t} + {ps3}]",
        "lea {t}, [{t} + {ps}*4]",
        "vmovups zmm12, zmmword ptr [{t}]",
        "vmovups zmm13, zmmword ptr [{t} + {ps}]",
        "vmovups zmm14, zmmword ptr [{t} + {ps}*2]",
        "vmovups zmm15, zmmword ptr [{t} + {ps3}]",
        // Rows (over i), per column j: s = x1 + x2, d = x1 - x2.
        "vaddps zmm16, zmm4, zmm8",
        "vaddps zmm17, zmm5, zmm9",
        "vaddps zmm18, zmm6, zmm10",
        "vaddps zmm19, zmm7, zmm11",
        "vsubps zmm20, zmm4, zmm8",
        "vsubps zmm21, zmm5, zmm9",
        "vsubps zmm22, zmm6, zmm10",
        "vsubps zmm23, zmm7, zmm11",
        // r0 = x0 + s/2, r1 = d/2, r2 = x3 + s/2.
        "vfmadd231ps zmm0, zmm16, zmm31",
        "vfmadd231ps zmm1, zmm17, zmm31",
        "vfmadd231ps zmm2, zmm18, zmm31",
        "vfmadd231ps zmm3, zmm19, zmm31",
        "vmulps zmm20, zmm20, zmm31",
        "vmulps zmm21, zmm21, zmm31",
        "vmulps zmm22, zmm22, zmm31",
        "vmulps zmm23, zmm23, zmm31",
        "vfmadd231ps zmm12, zmm16, zmm31",
        "vfmadd231ps zmm13, zmm17, zmm31",
        "vfmadd231ps zmm14, zmm18, zmm31",
        "vfmadd231ps zmm15, zmm19, zmm31",
        // Columns (over j), per row: (a0..a3) -> a0 + s/2, d/2, a3 + s/2.
        "vaddps zmm16, zmm1, zmm2",
        "vsubps zmm17, zmm1, zmm2",
        "vfmadd231ps zmm0, zmm16, zmm31",
        "vmulps zmm17, zmm17, zmm31",
        "vfmadd231ps zmm3, zmm16, zmm31",
        "vaddps zmm18, zmm21, zmm22",
        "vsubps zmm19, zmm21, zmm22",
        "vfmadd231ps zmm20, zmm18, zmm31",
        "vmulps zmm19, zmm19, zmm31",
        "vfmadd231ps zmm23, zmm18, zmm31",
        "vaddps zmm24, zmm13, zmm14",
        "vsubps zmm25, zmm13, zmm14",
        "vfmadd231ps zmm12, zmm24, zmm31",
        "vmulps zmm25, zmm25, zmm31",
        "vfmadd231ps zmm15, zmm24, zmm31",
        // Taps 3*ky + kx.
        "vmovups zmmword ptr [{d}], zmm0",
        "vmovups zmmword ptr [{d} + {ts}], zmm17",
        "vmovups zmmword ptr [{d} + {ts}*2], zmm3",
        "vmovups zmmword ptr [{d} + {ts3}], zmm20",
        "lea {t}, [{d} + {ts}*4]",
        "vmovups zmmword ptr [{t}], zmm19",
        "vmovups zmmword ptr [{t} + {ts}], zmm23",
        "vmovups zmmword ptr [{t} + {ts}*2], zmm12",
        "vmovups zmmword ptr [{t} + {ts3}], zmm25",
        "vmovups zmmword ptr [{t} + {ts}*4], zmm15",
        "add {p}, 64",
        "add {d}, 64",
        "dec {n}",
        "jnz 2b",
        ;
        p = inout(reg) du => _,
        ps = in(reg) pos_stride,
        ps3 = in(reg) 3 * pos_stride,
        d = inout(reg) dw => _,
        ts = in(reg) tap_stride,
        ts3 = in(reg) 3 * tap_stride,
        n = inout(reg) groups => _,
        t = out(reg) _,
    );
}

/* gemm_packed.c — C = A op(B) (or C += it) with op(B) packed once and reused: a
 * weight multiplied by one micro-batch's rows at a time (see gemm.h).
 *
 * Why: a BLAS packs both operands on every call. For a micro-batch of 32 rows times a
 * 784 x 512 weight, OpenBLAS re-packed the whole weight for 32 rows of work, a third
 * of those GEMMs' time (docs/perf.md). A weight changes only at the update, so it is
 * packed once per step (by the update itself, cpu/stage.h) and every micro-batch's
 * product reads the panels.
 *
 * Layout: panel j holds columns [j NR, j NR + NR) of op(B) as k rows of NR floats,
 * zero beyond column n. A B that is not transposed is already panels (rows ldb apart,
 * panels NR floats apart) and is read in place, which saves the packing pass: on the
 * MLP's stage 1 that pass over a cold 512 x 512 weight took 0.26-0.48 ms a step. The
 * kernel keeps an MR x NR tile of C in AVX-512 registers
 * and runs over k in blocks of KC (a block of a panel stays in L1) and over rows in
 * blocks of MC (a block of A stays in L2 for every panel); between k blocks the
 * tile goes through C unchanged, so every C element is one FMA chain over k in order
 * (starting from C with `acc`, from 0 without). That chain does not depend on m or on
 * which rows share a call: splitting a batch into micro-batches gives the same bits.
 * A bias (one value per column) is added to the tile in registers after the last
 * block, before the store: each element is then its chain + bias, rounded once more,
 * as a separate add would compute it, without that add's pass over C.
 *
 * Only on x86-64 CPUs with AVX-512F (checked at run time); elsewhere
 * pml_cpu_gemm_packed_available() is 0 and callers use pml_cpu_gemm_f32. */
#include "core/vectorize.h" /* first: the bias loop below */
#include "gemm.h"

#include <string.h>

enum { NR = PML_CPU_GEMM_NR, MR = 8, KC = 256, MC = PML_CPU_GEMM_MC };

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_KERNEL 1
#define AVX512 __attribute__((target("avx512f")))
#else
#define HAVE_KERNEL 0
#endif

int pml_cpu_gemm_packed_available(void)
{
#if HAVE_KERNEL
    return pml_cpu_isa_offered() >= PML_ISA_AVX512;
#else
    return 0;
#endif
}

pml_cpu_gemm_panels pml_cpu_gemm_packed(const float *packed, int64_t k)
{
    return (pml_cpu_gemm_panels){packed, NR, NR * k};
}

pml_cpu_gemm_panels pml_cpu_gemm_in_place(const float *b, int64_t ldb) { return (pml_cpu_gemm_panels){b, ldb, NR}; }

size_t pml_cpu_gemm_packed_floats(int64_t k, int64_t n) { return (size_t)((n + NR - 1) / NR) * NR * (size_t)k; }

void pml_cpu_gemm_pack_b(int tb, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed)
{
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        float *panel = packed + j0 * k; /* panels are k x NR: panel j starts at j NR k */
        int64_t w = n - j0 < NR ? n - j0 : NR;
        if (w < NR) memset(panel, 0, sizeof(float) * NR * (size_t)k);
        if (tb) /* op(B)[p][j] = b[j][p]: a transpose, in blocks of 16 rows of the panel */
            for (int64_t p0 = 0; p0 < k; p0 += 16)
                for (int64_t c = 0; c < w; c++) {
                    const float *src = b + (j0 + c) * ldb + p0;
                    float *dst = panel + p0 * NR + c;
                    if (p0 + 16 <= k) /* a fixed count the compiler unrolls */
                        for (int q = 0; q < 16; q++) dst[q * NR] = src[q];
                    else
                        for (int64_t q = 0; q < k - p0; q++) dst[q * NR] = src[q];
                }
        else
            for (int64_t p = 0; p < k; p++) memcpy(panel + p * NR, b + p * ldb + j0, sizeof(float) * (size_t)w);
    }
}

#if HAVE_KERNEL
/* Rows [0, mr) of a C tile of w <= NR columns, over k rows [p0, p1) of the panel
 * (rows rs floats apart): starts from 0 when `fresh`, else from C; adds bias[0, w) to
 * each row before storing when bias is not NULL. mr and `full`
 * (w == NR) are constants after inlining: a partial panel is read with masked loads,
 * which do not read past column w (an in-place B's last row ends there) but cost ~10%. */
AVX512 static inline __attribute__((always_inline)) void tile(int mr, int full, int64_t p0, int64_t p1,
                                                              const float *a, int64_t lda, const float *panel,
                                                              int64_t rs, float *c, int64_t ldc, int64_t w, int fresh,
                                                              const float *bias)
{
    __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
    __mmask16 m1 = w >= 32 ? 0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
    __m512 c0[MR], c1[MR]; /* registers once the loops over i are unrolled */
    /* The tile's rows of C into L1 while the k loop runs: stored (or first read) after
     * it, they would otherwise miss then, cold as a micro-batch's output usually is
     * (3-4% on the GPT's products with cold operands, docs/perf.md). */
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        c0[i] = fresh ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m0, c + i * ldc);
        c1[i] = fresh ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    }
    for (int64_t p = p0; p < p1; p++) {
        __m512 b0 = full ? _mm512_loadu_ps(panel + p * rs) : _mm512_maskz_loadu_ps(m0, panel + p * rs);
        __m512 b1 = full ? _mm512_loadu_ps(panel + p * rs + 16) : _mm512_maskz_loadu_ps(m1, panel + p * rs + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 x = _mm512_set1_ps(a[i * lda + p]);
            c0[i] = _mm512_fmadd_ps(x, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(x, b1, c1[i]);
        }
    }
    if (bias) {
        __m512 v0 = _mm512_maskz_loadu_ps(m0, bias), v1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            c0[i] = _mm512_add_ps(c0[i], v0);
            c1[i] = _mm512_add_ps(c1[i], v1);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
}

/* Every row of C against one panel: tiles of MR rows, then 4, then 1. */
AVX512 static inline __attribute__((always_inline)) void rows_of(int full, int64_t m, int64_t p0, int64_t p1,
                                                                 const float *a, int64_t lda, const float *panel,
                                                                 int64_t rs, float *c, int64_t ldc, int64_t w,
                                                                 int fresh, const float *bias)
{
    int64_t i = 0;
    for (; i + MR <= m; i += MR) tile(MR, full, p0, p1, a + i * lda, lda, panel, rs, c + i * ldc, ldc, w, fresh, bias);
    for (; i + 4 <= m; i += 4) tile(4, full, p0, p1, a + i * lda, lda, panel, rs, c + i * ldc, ldc, w, fresh, bias);
    for (; i < m; i++) tile(1, full, p0, p1, a + i * lda, lda, panel, rs, c + i * ldc, ldc, w, fresh, bias);
}

/* Over k in blocks of KC, then rows in blocks of MC, then panels: the MC x KC block of
 * A (128 KiB) stays in L2 while every panel passes it. Panels outside rows (A streamed
 * once per panel) re-read all of A from L3 for each panel once A outgrew L2: at 16384 x
 * 128 x 384 (the GPT forward's qkv at 256 rows) 31 GMAC/s against 42-44 with the
 * blocks (docs/perf.md). Only the order of tiles changes, never a chain over k. */
AVX512 static void gemm_packed(int acc, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                               pml_cpu_gemm_panels b, float *c, int64_t ldc, const float *bias)
{
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        int64_t p1 = p0 + KC < k ? p0 + KC : k;
        int fresh = p0 == 0 && !acc, last = p1 == k;
        for (int64_t i0 = 0; i0 < m; i0 += MC) {
            int64_t h = m - i0 < MC ? m - i0 : MC;
            const float *ai = a + i0 * lda;
            float *ci = c + i0 * ldc;
            for (int64_t j0 = 0; j0 < n; j0 += NR) {
                const float *panel = b.data + j0 / NR * b.panel_stride, *bj = last && bias ? bias + j0 : NULL;
                int64_t w = n - j0 < NR ? n - j0 : NR, rs = b.row_stride;
                /* bias NULL as a constant: the products without one run the kernel as before */
                if (w == NR && bj)
                    rows_of(1, h, p0, p1, ai, lda, panel, rs, ci + j0, ldc, w, fresh, bj);
                else if (w == NR)
                    rows_of(1, h, p0, p1, ai, lda, panel, rs, ci + j0, ldc, w, fresh, NULL);
                else if (bj)
                    rows_of(0, h, p0, p1, ai, lda, panel, rs, ci + j0, ldc, w, fresh, bj);
                else
                    rows_of(0, h, p0, p1, ai, lda, panel, rs, ci + j0, ldc, w, fresh, NULL);
            }
        }
    }
}
#endif

void pml_cpu_gemm_packed_f32(int acc, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             pml_cpu_gemm_panels b, float *c, int64_t ldc, const float *bias)
{
#if HAVE_KERNEL
    if (k == 0) {
        for (int64_t i = 0; !acc && i < m; i++) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
        if (bias) pml_cpu_add_bias_f32(m, n, bias, c, ldc);
        return;
    }
    gemm_packed(acc, m, n, k, a, lda, b, c, ldc, bias);
#else
    (void)acc, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)c, (void)ldc, (void)bias;
#endif
}

PML_VECTOR_CLONES static void add_bias(int64_t m, int64_t n, const float *restrict bias, float *restrict c,
                                       int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] += bias[j];
}

void pml_cpu_add_bias_f32(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc)
{
    add_bias(m, n, bias, c, ldc);
}

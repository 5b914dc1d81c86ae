/* gemm_int8.c — int8 matrix products (gemm_int8.h). */
#include "gemm_int8.h"

#include "isa.h"

#include <math.h>
#include <string.h>

#if defined(PML_BLAS_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

enum { MAX_K = PML_CPU_GEMM_S8_MAX_K };

const char *pml_cpu_gemm_s8_provider(void)
{
#if defined(PML_BLAS_ONEDNN)
    return "onednn";
#else
    return "reference";
#endif
}

static void ref_s8s32(int64_t m, int64_t n, int64_t k, const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                      int32_t *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (int64_t p = 0; p < k; p++) s += (int32_t)a[i * lda + p] * b[j * ldb + p];
            c[i * ldc + j] = s;
        }
}

int pml_cpu_gemm_s8s32(int64_t m, int64_t n, int64_t k, const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                       int32_t *c, int64_t ldc)
{
    if (m < 0 || n < 0 || k < 0 || k > MAX_K || lda < k || ldb < k || ldc < n) return -1;
    if (m == 0 || n == 0) return 0;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, sizeof(int32_t) * (size_t)n);
        return 0;
    }
#if defined(PML_BLAS_ONEDNN)
    (void)pml_cpu_isa_offered(); /* PML_CPU_ISA caps oneDNN before its first call (isa.h) */
    /* Row-major, as dnnl_sgemm; B given transposed ([n, k]); no offsets (symmetric). */
    int32_t co = 0;
    if (dnnl_gemm_s8s8s32('N', 'T', 'F', m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, &co) == dnnl_success)
        return 0;
#endif
    ref_s8s32(m, n, k, a, lda, b, ldb, c, ldc);
    return 0;
}

size_t pml_cpu_linear_i8_scratch(int64_t m, int64_t n, int64_t k)
{
    size_t acc = sizeof(int32_t) * (size_t)(m * n), xs = sizeof(float) * (size_t)m;
    return acc + xs + (size_t)(m * k);
}

/* The per-row quantization and the dequantization around the int32 product, in plain C
 * and (where the CPU has it) AVX-512, which computes the same values: the largest |x| of
 * a row (exact either way), its reciprocal scale 127 / max, each x * inv rounded to the
 * nearest integer, ties to even (nearbyintf in the default mode, roundscale's
 * TO_NEAREST_INT), clamped to +-127; then (acc * s_row) * s_col + bias. The plain C of
 * these loops calls libm for every element: it took 2/3 of a 32 x 512 x 784 layer's
 * time next to oneDNN's 73 us int32 product (docs/perf.md). */
static float row_max_abs(const float *r, int64_t k)
{
    float mx = 0;
    for (int64_t p = 0; p < k; p++) mx = fmaxf(mx, fabsf(r[p]));
    return mx;
}

static void quantize_row(const float *r, int64_t k, float inv, int8_t *q)
{
    for (int64_t p = 0; p < k; p++) {
        float v = nearbyintf(r[p] * inv);
        q[p] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
}

static void dequant_row(const int32_t *acc, int64_t n, float s, const float *ws, const float *bias, float *y)
{
    for (int64_t j = 0; j < n; j++) {
        float t = (float)acc[j] * s;
        t = t * ws[j];
        y[j] = t + (bias ? bias[j] : 0.0f);
    }
}

/* Bytes of one packed panel of 16 columns over k (gemm_int8.h's packing, below). */
static size_t panel_bytes(int64_t k) { return 64 * (size_t)(1 + (k + 3) / 4); }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

static AVX512 float row_max_abs_avx512(const float *r, int64_t k)
{
    __m512 mx = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 16 <= k; p += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(r + p)));
    if (p < k) {
        __mmask16 t = (__mmask16)((1u << (k - p)) - 1);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(t, r + p)));
    }
    return _mm512_reduce_max_ps(mx);
}

static AVX512 void quantize_row_avx512(const float *r, int64_t k, float inv, int8_t *q)
{
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    for (int64_t p = 0; p < k; p += 16) {
        __mmask16 t = k - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - p)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(t, r + p), vinv);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        _mm512_mask_cvtsepi32_storeu_epi8(q + p, t, _mm512_cvtps_epi32(v));
    }
}

static AVX512 void dequant_row_avx512(const int32_t *acc, int64_t n, float s, const float *ws, const float *bias,
                                      float *y)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 t = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(t, acc + j)), vs);
        v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(t, ws + j));
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(t, bias + j));
        _mm512_mask_storeu_ps(y + j, t, v);
    }
}

static int has_avx512(void) { return pml_cpu_isa_offered() >= PML_ISA_AVX512; }

/* ---- The packed AVX512-VNNI product -------------------------------------------------
 * vpdpbusd multiplies unsigned by signed bytes, four at a time into an int32 lane. The
 * activations are signed, so each is read as x + 128 (its bits with the top one
 * flipped) and the product corrected by 128 * (sum of the column's weights), which the
 * packing stores: exact in int32, so the same sums as any other order. A panel is 16
 * columns: their 16 corrections (one 64-byte line), then for each 4 of k the 16
 * columns' 4 weights (64 bytes, one vector), zero past n and k. Panels follow each
 * other, so the columns from any multiple of 16 on are a pointer into the packing; three
 * zero panels after the last let every block read four (one kernel shape per row
 * count: sixteen made clang's sanitizer build take three minutes on this file). */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
enum { S8_MR = 4, S8_NP = 4 }; /* rows and panels a block: 16 accumulators */

/* y rows [0, mr) x the block's S8_NP panels; `cols` of its columns are real (<= 64),
 * the others are read (zero weights) and not stored. */
static inline __attribute__((always_inline)) VNNI void s8_block(int mr, int64_t k, const int8_t *a,
                                                                 int64_t lda, const char *pan, size_t pb,
                                                                 const float *xs, const float *ws,
                                                                 const float *bias, float *y, int64_t ldy,
                                                                 int64_t cols)
{
    __m512i acc[S8_MR][S8_NP];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < mr; r++)
        _Pragma("GCC unroll 4")
        for (int c = 0; c < S8_NP; c++) acc[r][c] = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
    int64_t quads = (k + 3) / 4;
    for (int64_t q = 0; q < quads; q++) {
        __m512i b[S8_NP];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < S8_NP; c++) b[c] = _mm512_load_si512((const void *)(pan + (size_t)c * pb + 64 + (size_t)q * 64));
        int whole = 4 * q + 4 <= k;
        _Pragma("GCC unroll 4")
        for (int r = 0; r < mr; r++) {
            int32_t v = 0; /* past k: any byte, against zero weights */
            if (whole)
                memcpy(&v, a + r * lda + 4 * q, 4);
            else
                for (int64_t p = 4 * q; p < k; p++) v |= (int32_t)((uint32_t)(uint8_t)a[r * lda + p] << (8 * (p - 4 * q)));
            __m512i x = _mm512_xor_si512(_mm512_set1_epi32(v), flip);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < S8_NP; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], x, b[c]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < S8_NP; c++) {
        int64_t left = cols - 16 * c;
        if (left <= 0) continue; /* a zero panel past the block's columns */
        __mmask16 t = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512i corr = _mm512_load_si512((const void *)(pan + (size_t)c * pb));
        __m512 w = _mm512_maskz_loadu_ps(t, ws + 16 * c), bv = _mm512_maskz_loadu_ps(t, bias ? bias + 16 * c : ws);
        _Pragma("GCC unroll 4")
        for (int r = 0; r < mr; r++) { /* dequant_row's arithmetic: (acc * s_row) * s_col + bias */
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][c], corr)), _mm512_set1_ps(xs[r]));
            v = _mm512_mul_ps(v, w);
            if (bias) v = _mm512_add_ps(v, bv);
            _mm512_mask_storeu_ps(y + r * ldy + 16 * c, t, v);
        }
    }
}

static VNNI void s8_packed(int64_t m, int64_t n, int64_t k, const int8_t *a, const void *packed, const float *xs,
                           const float *ws, const float *bias, float *y, int64_t ldy)
{
    size_t pb = panel_bytes(k);
    for (int64_t j = 0; j < n; j += 16 * S8_NP) {
        int64_t cols = n - j < 16 * S8_NP ? n - j : 16 * S8_NP;
        const char *pan = (const char *)packed + (size_t)(j / 16) * pb;
        const float *bj = bias ? bias + j : NULL;
        for (int64_t i = 0; i < m; i += S8_MR) {
            int mr = m - i < S8_MR ? (int)(m - i) : S8_MR;
            const int8_t *ai = a + i * k;
            float *yi = y + i * ldy + j;
            switch (mr) { /* constant row counts: the accumulators stay in registers */
            case 1:
                s8_block(1, k, ai, k, pan, pb, xs + i, ws + j, bj, yi, ldy, cols);
                break;
            case 2:
                s8_block(2, k, ai, k, pan, pb, xs + i, ws + j, bj, yi, ldy, cols);
                break;
            case 3:
                s8_block(3, k, ai, k, pan, pb, xs + i, ws + j, bj, yi, ldy, cols);
                break;
            default:
                s8_block(S8_MR, k, ai, k, pan, pb, xs + i, ws + j, bj, yi, ldy, cols);
            }
        }
    }
}

static int has_vnni(void) { return pml_cpu_isa_offered() >= PML_ISA_AVX512_VNNI; }
#else
static int has_avx512(void) { return 0; }
static int has_vnni(void) { return 0; }
#define row_max_abs_avx512 row_max_abs
#define quantize_row_avx512 quantize_row
#define dequant_row_avx512 dequant_row
static void s8_packed(int64_t m, int64_t n, int64_t k, const int8_t *a, const void *packed, const float *xs,
                      const float *ws, const float *bias, float *y, int64_t ldy)
{
    (void)m, (void)n, (void)k, (void)a, (void)packed, (void)xs, (void)ws, (void)bias, (void)y, (void)ldy;
}
#endif

const char *pml_cpu_linear_i8_kernel(void)
{
    if (has_vnni()) return "AVX512-VNNI on weights packed once";
    return strcmp(pml_cpu_gemm_s8_provider(), "onednn") ? "reference loop" : "oneDNN gemm_s8s8s32";
}

size_t pml_cpu_s8_packed_bytes(int64_t n, int64_t k)
{
    if (!has_vnni() || n < 1 || k < 1 || k > MAX_K) return 0;
    return (size_t)((n + 15) / 16 + 3) * panel_bytes(k); /* and three zero panels */
}

void pml_cpu_s8_pack(int64_t n, int64_t k, const int8_t *w, void *packed)
{
    size_t pb = panel_bytes(k);
    int64_t k4 = (k + 3) / 4 * 4;
    for (int64_t jb = 0; jb < (n + 15) / 16 + 3; jb++) {
        char *pan = (char *)packed + (size_t)jb * pb;
        int8_t *q = (int8_t *)(pan + 64);
        for (int c = 0; c < 16; c++) {
            int64_t j = jb * 16 + c;
            int32_t sum = 0;
            for (int64_t p = 0; p < k4; p++) {
                int8_t v = j < n && p < k ? w[j * k + p] : 0;
                q[(p / 4) * 64 + c * 4 + p % 4] = v;
                sum += v;
            }
            /* modulo 2^32, as vpdpbusd sums: the difference is exact wherever the true sum
             * fits an int32 (k <= MAX_K) */
            uint32_t corr = 128u * (uint32_t)sum;
            memcpy(pan + 4 * c, &corr, sizeof corr);
        }
    }
}

const void *pml_cpu_s8_packed_cols(const void *packed, int64_t k, int64_t j0)
{
    return (const char *)packed + (size_t)(j0 / 16) * panel_bytes(k);
}

int pml_cpu_linear_i8(int64_t m, int64_t n, int64_t k, const float *x, float xs_static, const int8_t *wq,
                      const void *wp, const float *ws, const float *bias, float *y, int64_t ldy, void *scratch)
{
    if (m < 0 || n < 0 || k < 0 || k > MAX_K || ldy < n || !wq == !wp || (wp && (!has_vnni() || k < 1))) return -1;
    int32_t *acc = scratch; /* the int32s first: the buffer's alignment suits them */
    float *xs = (float *)(acc + m * n);
    int8_t *xq = (int8_t *)(xs + m);
    int wide = has_avx512();
    for (int64_t i = 0; i < m; i++) {
        const float *r = x + i * k;
        float mx = xs_static > 0 ? 0.0f : wide ? row_max_abs_avx512(r, k) : row_max_abs(r, k);
        float inv = xs_static > 0 ? 1.0f / xs_static : mx > 0 ? 127.0f / mx : 0.0f;
        xs[i] = xs_static > 0 ? xs_static : mx > 0 ? mx / 127.0f : 0.0f;
        if (wide)
            quantize_row_avx512(r, k, inv, xq + i * k);
        else
            quantize_row(r, k, inv, xq + i * k);
    }
    if (wp) { /* the product and the dequantization in one pass, no int32 buffer */
        s8_packed(m, n, k, xq, wp, xs, ws, bias, y, ldy);
        return 0;
    }
    if (pml_cpu_gemm_s8s32(m, n, k, xq, k, wq, k, acc, n)) return -1;
    for (int64_t i = 0; i < m; i++)
        if (wide)
            dequant_row_avx512(acc + i * n, n, xs[i], ws, bias, y + i * ldy);
        else
            dequant_row(acc + i * n, n, xs[i], ws, bias, y + i * ldy);
    return 0;
}

/* gemm_int8_packed.c — int8 inference's own kernels (gemm_int8.h): the weights packed
 * for the AVX512-VNNI product, the per-row quantization and dequantization, and the
 * linear layer over them (through pml_cpu_gemm_s8s32, gemm_int8.c, for unpacked weights). */
#include "gemm_int8.h"

#include "isa.h"

#include <math.h>
#include <string.h>

enum { MAX_K = PML_CPU_GEMM_S8_MAX_K };

/* Columns of one packed block, and its bytes over k (gemm_int8.h's packing, below). */
enum { S8_NB = PML_CPU_S8_COLS };
static size_t block_bytes(int64_t k) { return 4 * S8_NB * (size_t)(1 + (k + 3) / 4); }

/* The k4 = k rounded up to 4 bytes of one quantized row, as the packed kernel reads it. */
static int64_t quad_len(int64_t k) { return (k + 3) / 4 * 4; }

size_t pml_cpu_linear_i8_scratch(int64_t m, int64_t n, int64_t k)
{
    size_t acc = sizeof(int32_t) * (size_t)(m * n), xs = sizeof(float) * (size_t)m;
    return acc + xs + (size_t)(m * quad_len(k));
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

/* flip: 0, or 0x80 for the packed kernel, which reads each value as unsigned x + 128 */
static void quantize_row(const float *r, int64_t k, float inv, int8_t *q, int flip)
{
    for (int64_t p = 0; p < k; p++) {
        float v = nearbyintf(r[p] * inv);
        q[p] = (int8_t)((int8_t)(v > 127 ? 127 : v < -127 ? -127 : v) ^ flip);
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

#define AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
static AVX512BW void quantize_row_avx512(const float *r, int64_t k, float inv, int8_t *q, int flip)
{
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m128i vflip = _mm_set1_epi8((char)flip);
    for (int64_t p = 0; p < k; p += 16) {
        __mmask16 t = k - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - p)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(t, r + p), vinv);
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo); /* in range first: the conversion then rounds exactly */
        __m128i b = _mm512_cvtepi32_epi8(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm_mask_storeu_epi8(q + p, t, _mm_xor_si128(b, vflip));
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
 * activations are signed, so each is quantized as x + 128 (its bits with the top one
 * flipped) and the product corrected by 128 * (sum of the column's weights), which the
 * packing stores: exact in int32, so the same sums as any other order. A block is 64
 * columns (four vectors of 16): their 64 corrections (256 bytes), then for each 4 of k
 * the 64 columns' 4 weights (256 bytes, four vectors), zero past n and k, so the inner
 * loop reads one run of memory; blocks follow each other, so the columns from any
 * multiple of 64 on are a pointer into the packing. The quantized rows are k rounded up
 * to 4 bytes long (the padding meets zero weights), so every step reads 4 whole bytes a
 * row. One kernel shape per row count (sixteen made clang's sanitizer build take three
 * minutes on this file). */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
enum { S8_MR = 4 }; /* rows a block: 16 accumulators (6 rows measured no faster) */

/* y rows [0, mr) x the block's 64 columns, of which `cols` are real (<= 64): the others
 * are computed (zero weights) and not stored. a: the rows' u8 values, lda apart; row r's
 * columns 16 c .. 16 c + 15 are stored at yr[r] + cofs[c]. */
static inline __attribute__((always_inline)) VNNI void s8_block(int mr, int64_t quads, const uint8_t *a,
                                                                 int64_t lda, const char *blk, const float *xs,
                                                                 const float *ws, const float *bias,
                                                                 float *const *yr, const int64_t *cofs, int64_t cols)
{
    __m512i acc[S8_MR][4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < mr; r++)
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_si512();
    const char *b = blk + 4 * S8_NB;
    for (int64_t q = 0; q < quads; q++, b += 4 * S8_NB, a += 4) {
        __m512i w[4];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) w[c] = _mm512_load_si512((const void *)(b + 64 * c));
        _Pragma("GCC unroll 4")
        for (int r = 0; r < mr; r++) {
            int32_t v;
            memcpy(&v, a + r * lda, 4);
            __m512i x = _mm512_set1_epi32(v);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], x, w[c]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < 4; c++) {
        int64_t left = cols - 16 * c;
        if (left <= 0) continue; /* zero columns past the block's end */
        __mmask16 t = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512i corr = _mm512_load_si512((const void *)(blk + 64 * c));
        __m512 wv = _mm512_maskz_loadu_ps(t, ws + 16 * c), bv = _mm512_maskz_loadu_ps(t, bias ? bias + 16 * c : ws);
        _Pragma("GCC unroll 4")
        for (int r = 0; r < mr; r++) { /* dequant_row's arithmetic: (acc * s_row) * s_col + bias */
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][c], corr)), _mm512_set1_ps(xs[r]));
            v = _mm512_mul_ps(v, wv);
            if (bias) v = _mm512_add_ps(v, bv);
            _mm512_mask_storeu_ps(yr[r] + cofs[c], t, v);
        }
    }
}

/* a: m rows of quad_len(k) u8 values (quantize_row with flip 0x80); y's element (i, j)
 * at out_at (gemm_int8.h's pml_cpu_i8_out). */
static VNNI void s8_packed(int64_t m, int64_t n, int64_t k, const uint8_t *a, const void *packed, const float *xs,
                           const float *ws, const float *bias, const pml_cpu_i8_out *o)
{
    size_t bb = block_bytes(k);
    int64_t lda = quad_len(k), quads = lda / 4;
    for (int64_t j = 0; j < n; j += S8_NB) {
        int64_t cols = n - j < S8_NB ? n - j : S8_NB, cofs[4];
        for (int c = 0; c < 4; c++) cofs[c] = o->col16 ? (16 * c < cols ? o->col16[j / 16 + c] : 0) : j + 16 * c;
        const char *blk = (const char *)packed + (size_t)(j / S8_NB) * bb;
        const float *bj = bias ? bias + j : NULL;
        for (int64_t i = 0; i < m; i += S8_MR) {
            int mr = m - i < S8_MR ? (int)(m - i) : S8_MR;
            float *yr[S8_MR];
            for (int r = 0; r < mr; r++) yr[r] = o->y + (o->row ? o->row[i + r] : (i + r) * o->ld);
            const uint8_t *ai = a + i * lda;
            switch (mr) { /* constant row counts: the accumulators stay in registers */
            case 1: s8_block(1, quads, ai, lda, blk, xs + i, ws + j, bj, yr, cofs, cols); break;
            case 2: s8_block(2, quads, ai, lda, blk, xs + i, ws + j, bj, yr, cofs, cols); break;
            case 3: s8_block(3, quads, ai, lda, blk, xs + i, ws + j, bj, yr, cofs, cols); break;
            default: s8_block(S8_MR, quads, ai, lda, blk, xs + i, ws + j, bj, yr, cofs, cols);
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
static void s8_packed(int64_t m, int64_t n, int64_t k, const uint8_t *a, const void *packed, const float *xs,
                      const float *ws, const float *bias, const pml_cpu_i8_out *o)
{
    (void)m, (void)n, (void)k, (void)a, (void)packed, (void)xs, (void)ws, (void)bias, (void)o;
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
    return (size_t)((n + S8_NB - 1) / S8_NB) * block_bytes(k);
}

void pml_cpu_s8_pack(int64_t n, int64_t k, const int8_t *w, void *packed)
{
    size_t bb = block_bytes(k);
    int64_t k4 = quad_len(k);
    for (int64_t jb = 0; jb < (n + S8_NB - 1) / S8_NB; jb++) {
        char *blk = (char *)packed + (size_t)jb * bb;
        int8_t *q = (int8_t *)(blk + 4 * S8_NB);
        for (int c = 0; c < S8_NB; c++) {
            int64_t j = jb * S8_NB + c;
            int32_t sum = 0;
            for (int64_t p = 0; p < k4; p++) {
                int8_t v = j < n && p < k ? w[j * k + p] : 0;
                q[(p / 4) * 4 * S8_NB + c * 4 + p % 4] = v;
                sum += v;
            }
            /* modulo 2^32, as vpdpbusd sums: the difference is exact wherever the true sum
             * fits an int32 (k <= MAX_K) */
            uint32_t corr = 128u * (uint32_t)sum;
            memcpy(blk + 4 * c, &corr, sizeof corr);
        }
    }
}

const void *pml_cpu_s8_packed_cols(const void *packed, int64_t k, int64_t j0)
{
    return (const char *)packed + (size_t)(j0 / S8_NB) * block_bytes(k);
}

int64_t pml_cpu_i8_row_bytes(int64_t k, int packed) { return packed ? quad_len(k) : k; }

/* Row i of x, gathered into x->tmp when x is scattered (gemm_int8.h's pml_cpu_i8_in). */
static const float *in_row(const pml_cpu_i8_in *x, int64_t i)
{
    if (x->make_rows) { /* four at a time */
        if (i % 4 == 0) x->make_rows(x->ctx, x->first + i, x->m - i < 4 ? (int)(x->m - i) : 4, x->tmp);
        return x->tmp + (i % 4) * x->k;
    }
    if (!x->row) return x->x + i * x->k;
    const float *r = x->x + x->row[i];
    for (int64_t c = 0; c < x->k / 16; c++) memcpy(x->tmp + 16 * c, r + x->col16[c], 16 * sizeof(float));
    return x->tmp;
}

void pml_cpu_quantize_i8(int64_t m, const pml_cpu_i8_in *x, float xs_static, int packed, int8_t *xq, float *xs)
{
    int64_t k = x->k, lq = pml_cpu_i8_row_bytes(k, packed);
    int wide = has_avx512(), flip = packed ? 0x80 : 0;
    pml_cpu_i8_in xm = *x;
    xm.m = m;
    for (int64_t i = 0; i < m; i++) {
        const float *r = in_row(&xm, i);
        float mx = xs_static > 0 ? 0.0f : wide ? row_max_abs_avx512(r, k) : row_max_abs(r, k);
        float inv = xs_static > 0 ? 1.0f / xs_static : mx > 0 ? 127.0f / mx : 0.0f;
        xs[i] = xs_static > 0 ? xs_static : mx > 0 ? mx / 127.0f : 0.0f;
        if (wide)
            quantize_row_avx512(r, k, inv, xq + i * lq, flip);
        else
            quantize_row(r, k, inv, xq + i * lq, flip);
        memset(xq + i * lq + k, flip, (size_t)(lq - k));
    }
}

int pml_cpu_linear_i8_rows(int64_t m, int64_t n, int64_t k, const int8_t *xq, const float *xs, const int8_t *wq,
                           const void *wp, const float *ws, const float *bias, const pml_cpu_i8_out *y, int32_t *acc)
{
    if (m < 0 || n < 0 || k < 0 || k > MAX_K || (!y->row && y->ld < n) || !wq == !wp || (wp && (!has_vnni() || k < 1)))
        return -1;
    if (wp) { /* the product and the dequantization in one pass, no int32 buffer */
        s8_packed(m, n, k, (const uint8_t *)xq, wp, xs, ws, bias, y);
        return 0;
    }
    if (pml_cpu_gemm_s8s32(m, n, k, xq, k, wq, k, acc, n)) return -1;
    int wide = has_avx512();
    for (int64_t i = 0; i < m; i++) {
        if (y->row) { /* scattered: element by element */
            float *yi = y->y + y->row[i];
            for (int64_t j = 0; j < n; j++) {
                float t = (float)acc[i * n + j] * xs[i];
                t = t * ws[j];
                yi[y->col16[j / 16] + j % 16] = t + (bias ? bias[j] : 0.0f);
            }
        } else if (wide)
            dequant_row_avx512(acc + i * n, n, xs[i], ws, bias, y->y + i * y->ld);
        else
            dequant_row(acc + i * n, n, xs[i], ws, bias, y->y + i * y->ld);
    }
    return 0;
}

int pml_cpu_linear_i8(int64_t m, int64_t n, int64_t k, const float *x, float xs_static, const int8_t *wq,
                      const void *wp, const float *ws, const float *bias, float *y, int64_t ldy, void *scratch)
{
    if (m < 0 || n < 0 || k < 0 || k > MAX_K || ldy < n || !wq == !wp || (wp && (!has_vnni() || k < 1))) return -1;
    int32_t *acc = scratch; /* the int32s first: the buffer's alignment suits them */
    float *xs = (float *)(acc + m * n);
    int8_t *xq = (int8_t *)(xs + m);
    pml_cpu_quantize_i8(m, &(pml_cpu_i8_in){.x = x, .k = k}, xs_static, wp != NULL, xq, xs);
    return pml_cpu_linear_i8_rows(m, n, k, xq, xs, wq, wp, ws, bias, &(pml_cpu_i8_out){.y = y, .ld = ldy}, acc);
}

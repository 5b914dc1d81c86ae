/* gemm_int8.h — the CPU backend's int8 matrix products, for int8 inference (quant/int8.h):
 *
 *   pml_cpu_gemm_s8s32: C[m, n] = A[m, k] B[n, k]^T exactly in int32 (A, B int8, row-major
 *   with leading dimensions lda, ldb >= k, ldc >= n). Through oneDNN's dnnl_gemm_s8s8s32
 *   (AVX512_VNNI where the CPU has it) when the build chose oneDNN, else a portable loop.
 *   Exact while k * 127 * 128 fits an int32 (k < 132,000): larger k is refused (-1).
 *
 *   pml_cpu_s8_pack: W [n, k] int8 (row-major, rows k apart) rearranged once for the
 *   AVX512-VNNI kernel (gemm_int8_packed.c: blocks of PML_CPU_S8_COLS columns with their sums), into
 *   pml_cpu_s8_packed_bytes(n, k) bytes, 64-byte aligned; that size is 0 where the CPU
 *   has no AVX512_VNNI (or k is 0 or too large): then serve wq as it is.
 *   pml_cpu_s8_packed_cols points at the packing's columns from j0 on (a multiple of
 *   PML_CPU_S8_COLS).
 *
 *   pml_cpu_linear_i8: y[m, n] = x[m, k] W^T (+ bias), y's rows ldy >= n apart (a block of
 *   a wider output's columns), for a linear layer whose weight is
 *   int8 per output channel (W[j, :] ~= wq[j, :] * ws[j]), given as wq (row-major, rows k
 *   apart; through pml_cpu_gemm_s8s32) or packed as wp (the other NULL; the product and
 *   the dequantization then run in one pass): each row of x is quantized on
 *   the fly, symmetric, s_i = max|x_i| / 127 (a zero row: all zeros), or, with a static
 *   activation scale xs_static > 0 (a calibrated file, quant/int8.h), s_i = xs_static for
 *   every row, x * (1 / xs_static) clamped to +-127; then the int32 product is
 *   dequantized, y[i, j] = acc[i, j] * s_i * ws[j] + bias[j], in f32. Scratch
 *   the caller owns: xq m * k bytes, xs m floats, acc m * n int32s (pml_cpu_linear_i8_scratch
 *   bytes in all, one buffer).
 *
 * Both return 0, or -1 when the sizes are out of range (nothing written). Each runs on
 * the calling thread and oneDNN's OpenMP setting for it; cpu/stage_int8.c splits a
 * product over a stage's pool, with one OpenMP thread per task. */
#ifndef PML_CPU_GEMM_INT8_H
#define PML_CPU_GEMM_INT8_H

#include <stddef.h>
#include <stdint.h>

/* The largest k the int32 sums hold exactly (k * 127 * 128 < 2^31). */
#define PML_CPU_GEMM_S8_MAX_K 132000

/* The columns of one block of packed weights: a column split starts at a multiple. */
#define PML_CPU_S8_COLS 64

int pml_cpu_gemm_s8s32(int64_t m, int64_t n, int64_t k, const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                       int32_t *c, int64_t ldc);

size_t pml_cpu_linear_i8_scratch(int64_t m, int64_t n, int64_t k);
size_t pml_cpu_s8_packed_bytes(int64_t n, int64_t k);
void pml_cpu_s8_pack(int64_t n, int64_t k, const int8_t *w, void *packed);
const void *pml_cpu_s8_packed_cols(const void *packed, int64_t k, int64_t j0);

int pml_cpu_linear_i8(int64_t m, int64_t n, int64_t k, const float *x, float xs_static, const int8_t *wq,
                      const void *wp, const float *ws, const float *bias, float *y, int64_t ldy, void *scratch);

/* pml_cpu_linear_i8 in its two halves, for a caller that quantizes the rows once for
 * several column blocks (cpu/stage_int8.c) or whose rows or outputs are not one
 * row-major matrix (a permute's values read or written in place):
 *
 *   pml_cpu_quantize_i8: rows [0, m) of x (pml_cpu_i8_in) into xq, rows
 *   pml_cpu_i8_row_bytes(k, packed) apart (packed: for wp; then stored as u8 x + 128,
 *   padded to 4 bytes), and their scales into xs, as pml_cpu_linear_i8 does.
 *
 *   pml_cpu_linear_i8_rows: the product of those rows and the dequantization into y
 *   (pml_cpu_i8_out); acc: m * n int32s of scratch for wq (unused for wp). Returns 0,
 *   or -1 when the sizes are out of range (nothing written).
 *
 * The values are pml_cpu_linear_i8's, bit for bit. */
typedef struct pml_cpu_i8_in {
    const float *x;
    int64_t k;
    /* NULL: row i at x + i k. Else row i's elements p .. p + 15 (p a multiple of 16; k must
     * then be one) at x + row[i] + col16[p / 16], gathered into tmp (k floats). */
    const int64_t *row, *col16;
    float *tmp;
    /* Or, when set, rows i .. i + rows - 1 (rows <= 4) made by make_rows(ctx, first + i,
     * rows, tmp) into tmp (4 k floats), k apart: rows computed for the product alone (a
     * layernorm's, cpu/stage_int8.c). */
    void (*make_rows)(const void *ctx, int64_t i, int rows, float *tmp);
    const void *ctx;
    int64_t first, m; /* m: set by pml_cpu_quantize_i8 */
} pml_cpu_i8_in;

typedef struct pml_cpu_i8_out {
    float *y;
    int64_t ld; /* row is NULL: element (i, j) at y + i ld + j */
    /* else at y + row[i] + col16[j / 16] + j % 16: the 16 columns from each multiple of 16 lie
     * together (a column block passed on starts at a multiple of PML_CPU_S8_COLS) */
    const int64_t *row, *col16;
} pml_cpu_i8_out;

int64_t pml_cpu_i8_row_bytes(int64_t k, int packed);
void pml_cpu_quantize_i8(int64_t m, const pml_cpu_i8_in *x, float xs_static, int packed, int8_t *xq, float *xs);
int pml_cpu_linear_i8_rows(int64_t m, int64_t n, int64_t k, const int8_t *xq, const float *xs, const int8_t *wq,
                           const void *wp, const float *ws, const float *bias, const pml_cpu_i8_out *y, int32_t *acc);

/* "onednn" or "reference": what pml_cpu_gemm_s8s32 runs on. */
const char *pml_cpu_gemm_s8_provider(void);

/* What serves an int8 linear layer on this CPU, in words: the packed AVX512-VNNI kernel,
 * oneDNN's gemm_s8s8s32 or the reference loop (for `pmlc infer`'s first line). */
const char *pml_cpu_linear_i8_kernel(void);

#endif

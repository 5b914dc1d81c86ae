/* gemm.h — the CPU backend's matrix product: C[m, n] = op(A)[m, k] op(B)[k, n], or
 * C += that product when `acc` is set, row-major, with leading dimensions (elements
 * between stored rows). op(X) is X, or X transposed when its flag (ta, tb) is set: then
 * A is stored k x m (lda >= m) and B n x k (ldb >= k). The flags let a matmul whose
 * operand is a transpose read it in place (see lower.h), and `acc` lets a weight
 * gradient be summed over micro-batches inside the GEMM. pml_cpu_gemm_* goes through the
 * provider the build chose (PML_BLAS: oneDNN, or OpenBLAS or BLIS via CBLAS) and falls
 * back to the portable blocked C GEMM, pml_cpu_gemm_ref_*, when there is none, the sizes
 * do not fit a BLAS int, or (oneDNN) the product is f64. The reference is always built:
 * it is the tests' oracle for the provider's path.
 *
 * Threads: `threads` (<= 1: one) is passed to the provider's thread setting, which
 * for OpenBLAS and BLIS is process-wide, not per call, and for oneDNN is the calling
 * thread's OpenMP setting; the reference splits rows of C over that many pthreads when
 * the product is large enough to repay starting them. */
#ifndef PML_CPU_GEMM_H
#define PML_CPU_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "isa.h"

/* How a product is laid out: the transpose flags and whether C accumulates. */
typedef struct pml_cpu_gemm_op {
    int ta, tb, acc;
} pml_cpu_gemm_op;

void pml_cpu_gemm_f32(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *c, int64_t ldc, int threads);
void pml_cpu_gemm_f64(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                      const double *b, int64_t ldb, double *c, int64_t ldc, int threads);

void pml_cpu_gemm_ref_f32(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc, int threads);
void pml_cpu_gemm_ref_f64(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                          const double *b, int64_t ldb, double *c, int64_t ldc, int threads);

/* ---- products with B in panels (gemm_packed.c) ------------------------------------
 * For an operand used in many products before it changes (a weight, once per step):
 * C = A op(B) (A m x k, not transposed; C += with `acc`) reading op(B) (k x n) as
 * panels of 32 columns: element [p][j] at data[(j / 32) panel_stride + p row_stride +
 * j % 32]. A transposed B is packed into that layout once (pml_cpu_gemm_pack_b into
 * pml_cpu_gemm_packed_floats(k, n) floats, owned by the caller); a B that is not
 * transposed already has it (row_stride ldb, panel_stride 32) and is read in place.
 * Each C element is one FMA chain over k in order, whatever m is. Only where
 * pml_cpu_gemm_packed_available() (AVX-512F). Panels are PML_CPU_GEMM_NR columns wide:
 * packing columns [j0, j0 + w) of op(B) alone (j0 a multiple of it: pass b at column j0
 * and packed + j0 k) writes just their panels, so a weight can be packed in pieces.
 * With `bias` (n floats; NULL: none), bias[j] is added to every row's column j after
 * the product, in registers before the store (cpu/lower.h: a GEMM epilogue), giving
 * the bits of the product followed by pml_cpu_add_bias_f32. */
enum { PML_CPU_GEMM_NR = 32 };
/* Rows of A the panel GEMM keeps in L2 while every panel passes them (gemm_packed.c);
 * also the rows of one task where a pool splits a product by rows (matmul.c). */
enum { PML_CPU_GEMM_MC = 128 };

typedef struct pml_cpu_gemm_panels {
    const float *data; /* NULL: none */
    int64_t row_stride, panel_stride;
} pml_cpu_gemm_panels;

int pml_cpu_gemm_packed_available(void);
size_t pml_cpu_gemm_packed_floats(int64_t k, int64_t n);
void pml_cpu_gemm_pack_b(int tb, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed);
pml_cpu_gemm_panels pml_cpu_gemm_packed(const float *packed, int64_t k);
pml_cpu_gemm_panels pml_cpu_gemm_in_place(const float *b, int64_t ldb);
void pml_cpu_gemm_packed_f32(int acc, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                             pml_cpu_gemm_panels b, float *c, int64_t ldc, const float *bias);

/* c[i][j] += bias[j] for m rows of n columns (rows ldc apart): a product's bias after a
 * GEMM that has no epilogue of its own (the BLAS's), while the rows are in cache. */
void pml_cpu_add_bias_f32(int64_t m, int64_t n, const float *bias, float *c, int64_t ldc);

/* Before a run whose GEMMs use `threads` each: sets the library's thread count now
 * and, with one thread, stops OpenBLAS's idle helper threads from polling for work
 * while the run's own threads compute. Process-wide like the thread count: a run
 * with more threads per GEMM in the same process restarts them. */
void pml_cpu_gemm_setup(int threads);

/* "onednn", "openblas", "blis" or "none": the library pml_cpu_gemm_* uses. */
const char *pml_cpu_blas_name(void);

/* The instruction-set level of the kernels pml_cpu_gemm_f32 runs on this CPU, as the
 * provider reports it (see gemm_blas.c): the widest one pml_cpu_isa_offered() names
 * unless the provider falls back (OpenBLAS on a CPU model it does not know, or a
 * limit such as ONEDNN_MAX_CPU_ISA). The reference GEMM counts as the baseline. */
pml_cpu_isa pml_cpu_gemm_isa(void);

/* ---- bf16 products (gemm_bf16.c) ---------------------------------------------------
 * C = op(A) op(B) (C += with op.acc), A and B bf16 (the bits, as core/half.h stores
 * them), C f32 or (c_bf16) bf16, products summed in f32 and C rounded once. Only where
 * pml_cpu_gemm_bf16_ready(): oneDNN's kernels for AVX512_BF16 on a CPU that has it.
 * Returns 1 when C is written, 0 when not (not ready, sizes out of range, or oneDNN
 * refused the shape): then C is untouched and the caller computes the product in f32
 * from the widened operands. pml_cpu_gemm_bf16_status() says which, as the end of a
 * line: "bf16 products: oneDNN <kernel>" or "f32 products of the widened bf16
 * operands: <why not bf16>". */
int pml_cpu_gemm_bf16(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                      const uint16_t *b, int64_t ldb, void *c, int c_bf16, int64_t ldc, int threads);
int pml_cpu_gemm_bf16_ready(void);
const char *pml_cpu_gemm_bf16_status(void);

#endif

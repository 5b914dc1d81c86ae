/* blas.h — matmuls on cuBLAS, loaded with dlopen (libcublas.so.13, .12) so the runtime
 * builds and starts without it. Row-major batched GEMM over device pointers on one
 * stream; f32, bf16 and f16 storage with f32 accumulation, TF32 only when asked.
 *
 * Ownership: pml_cuda_blas_create makes a handle bound to `stream` (one per stream);
 * pml_cuda_blas_destroy frees it (NULL-safe). Not thread-safe per handle. */
#ifndef PML_CUDA_BLAS_H
#define PML_CUDA_BLAS_H

#include "cuda/driver.h"

typedef struct pml_cuda_blas pml_cuda_blas;

pml_status pml_cuda_blas_create(pml_cuda_blas **out, pml_cu_stream stream, pml_err *err);
void pml_cuda_blas_destroy(pml_cuda_blas *b);

/* C[i] = A[i] @ B[i] (accumulate: C[i] += A[i] @ B[i]) for i < batch: A[i] is m x k at A + i*sa elements, B[i] k x n at
 * B + i*sb, C[i] m x n at C + i*sc, all row-major and contiguous; A and B of element type t (PML_F32, PML_BF16,
 * PML_F16), C of tc (t, or PML_F32 for 16-bit operands: tensor-core products kept in f32). A stride of 0 broadcasts
 * that operand. */
pml_status pml_cuda_gemm(pml_cuda_blas *b, pml_dtype t, pml_dtype tc, int64_t batch, int64_t m, int64_t n, int64_t k,
                         pml_cu_ptr A, int64_t sa, pml_cu_ptr B, int64_t sb, pml_cu_ptr C, int64_t sc, int accumulate,
                         int tf32, pml_err *err);

/* y += x over n f32 values, queued on the handle's stream. */
pml_status pml_cuda_axpy(pml_cuda_blas *b, int64_t n, pml_cu_ptr x, pml_cu_ptr y, pml_err *err);

/* The sum of x[i]^2 over n f32 values (partial sums in f32 on the device, added in f64
 * here); waits for the handle's stream. */
pml_status pml_cuda_sum_squares(pml_cuda_blas *b, int64_t n, pml_cu_ptr x, double *out, pml_err *err);

#endif

/* blas.c — see blas.h. cuBLAS is column-major: a row-major C = A B is the column-major
 * Cᵀ = Bᵀ Aᵀ, so B is passed first and m, n swap; no transposes are needed. The enum
 * values are cuBLAS's documented ones (cublas_api.h, library_types.h). */
#include "cuda/blas.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

enum { OP_N = 0, GEMM_DEFAULT = -1, COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77 };
enum { R_32F = 0, R_16F = 2, R_16BF = 14 };

typedef int blas_status; /* CUBLAS_STATUS_SUCCESS = 0 */

/* The handle's own workspace: with it, GEMMs captured into CUDA graphs never allocate
 * (32 MiB, what cuBLAS documents for Hopper). */
#define WORKSPACE ((size_t)32 << 20)

struct pml_cuda_blas {
    void *lib, *handle;
    const pml_cuda_driver *d;
    pml_cu_ptr workspace;
    blas_status (*Create)(void **);
    blas_status (*Destroy)(void *);
    blas_status (*SetStream)(void *, pml_cu_stream);
    blas_status (*Gemm)(void *, int, int, int, int, int, const void *, const void *, int, int, long long, const void *,
                        int, int, long long, const void *, void *, int, int, long long, int, int, int);
    blas_status (*Axpy)(void *, int, const float *, const float *, int, float *, int);
    blas_status (*Dot)(void *, int, const float *, int, const float *, int, float *);
    blas_status (*SetWorkspace)(void *, void *, size_t);
};

/* cuBLAS's level-1 calls count in int: longer vectors go in pieces of this many. */
#define CHUNK ((int64_t)1 << 30)

pml_status pml_cuda_blas_create(pml_cuda_blas **out, pml_cu_stream stream, pml_err *err)
{
    *out = NULL;
    pml_cuda_blas *b = calloc(1, sizeof *b);
    if (!b) return pml_err_set(err, PML_ERR_NOMEM, "cuBLAS: out of memory");
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (int i = 0; i < 3 && !b->lib; i++) b->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!b->lib) {
        free(b);
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "cuBLAS was not found (libcublas.so.13, .12): install the CUDA "
                           "toolkit's cuBLAS");
    }
    *(void **)&b->Create = dlsym(b->lib, "cublasCreate_v2");
    *(void **)&b->Destroy = dlsym(b->lib, "cublasDestroy_v2");
    *(void **)&b->SetStream = dlsym(b->lib, "cublasSetStream_v2");
    *(void **)&b->Gemm = dlsym(b->lib, "cublasGemmStridedBatchedEx");
    *(void **)&b->Axpy = dlsym(b->lib, "cublasSaxpy_v2");
    *(void **)&b->Dot = dlsym(b->lib, "cublasSdot_v2");
    *(void **)&b->SetWorkspace = dlsym(b->lib, "cublasSetWorkspace_v2");
    b->d = pml_cuda_driver_get(NULL);
    blas_status s = -1;
    if (b->d && b->d->MemAlloc(&b->workspace, WORKSPACE)) b->workspace = 0;
    if (b->Create && b->Destroy && b->SetStream && b->Gemm && b->Axpy && b->Dot && b->SetWorkspace && b->workspace &&
        !(s = b->Create(&b->handle)))
        if (!(s = b->SetStream(b->handle, stream))) /* after SetStream, which resets the workspace */
            s = b->SetWorkspace(b->handle, (void *)(uintptr_t)b->workspace, WORKSPACE);
    if (s) {
        pml_cuda_blas_destroy(b);
        return pml_err_set(err, PML_ERR_DEVICE, "cuBLAS could not start (status %d)", s);
    }
    *out = b;
    return PML_OK;
}

void pml_cuda_blas_destroy(pml_cuda_blas *b)
{
    if (!b) return;
    if (b->handle) b->Destroy(b->handle);
    if (b->workspace) b->d->MemFree(b->workspace);
    free(b); /* the library stays loaded, as NVRTC (compiler/src/gpu/nvrtc.c) and for the same reason */
}

/* cuBLAS's type of a PML storage type, or -1. */
static int blas_type(pml_dtype t) { return t == PML_F32 ? R_32F : t == PML_BF16 ? R_16BF : t == PML_F16 ? R_16F : -1; }

pml_status pml_cuda_gemm(pml_cuda_blas *b, pml_dtype t, pml_dtype tc, int64_t batch, int64_t m, int64_t n, int64_t k,
                         pml_cu_ptr A, int64_t sa, pml_cu_ptr B, int64_t sb, pml_cu_ptr C, int64_t sc, int accumulate,
                         int tf32, pml_err *err)
{
    int type = blas_type(t), ctype = blas_type(tc);
    if (type < 0 || ctype < 0 || (tc != t && tc != PML_F32))
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "matmul on CUDA: %s operands into %s are not supported",
                           pml_dtype_name(t), pml_dtype_name(tc));
    if (m <= 0 || n <= 0 || k <= 0 || batch <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX ||
        batch > INT32_MAX)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul on CUDA: sizes %lld x %lld x %lld, batch %lld",
                           (long long)m, (long long)n, (long long)k, (long long)batch);
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    blas_status s =
        b->Gemm(b->handle, OP_N, OP_N, (int)n, (int)m, (int)k, &one, (const void *)(uintptr_t)B, type, (int)n, sb,
                (const void *)(uintptr_t)A, type, (int)k, sa, &beta, (void *)(uintptr_t)C, ctype, (int)n, sc,
                (int)batch, tf32 && t == PML_F32 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F, GEMM_DEFAULT);
    if (s) return pml_err_set(err, PML_ERR_DEVICE, "cublasGemmStridedBatchedEx failed with status %d", s);
    return PML_OK;
}

pml_status pml_cuda_axpy(pml_cuda_blas *b, int64_t n, pml_cu_ptr x, pml_cu_ptr y, pml_err *err)
{
    const float one = 1.0f;
    for (int64_t i = 0; i < n; i += CHUNK) {
        int len = (int)(n - i < CHUNK ? n - i : CHUNK);
        blas_status s = b->Axpy(b->handle, len, &one, (const float *)(uintptr_t)x + i, 1, (float *)(uintptr_t)y + i, 1);
        if (s) return pml_err_set(err, PML_ERR_DEVICE, "cublasSaxpy failed with status %d", s);
    }
    return PML_OK;
}

pml_status pml_cuda_sum_squares(pml_cuda_blas *b, int64_t n, pml_cu_ptr x, double *out, pml_err *err)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i += CHUNK) {
        int len = (int)(n - i < CHUNK ? n - i : CHUNK);
        const float *p = (const float *)(uintptr_t)x + i;
        float part = 0;
        blas_status s = b->Dot(b->handle, len, p, 1, p, 1, &part); /* host pointer mode: waits */
        if (s) return pml_err_set(err, PML_ERR_DEVICE, "cublasSdot failed with status %d", s);
        sum += part;
    }
    *out = sum;
    return PML_OK;
}

/* gemm_int8.c — the int8 product through the GEMM provider, pml_cpu_gemm_s8s32
 * (gemm_int8.h): oneDNN's where the build chose it, else a portable loop. The packed
 * kernel, the quantization and the linear layer are gemm_int8_packed.c, which names no
 * provider and so is compiled once for every copy of the kernels (runtime/CMakeLists.txt). */
#include "gemm_int8.h"

#include "isa.h"

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

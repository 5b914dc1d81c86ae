/* gemm_int8.c — int8 matrix products (gemm_int8.h). */
#include "gemm_int8.h"

#include <math.h>
#include <string.h>

#if defined(PML_BLAS_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

enum { MAX_K = 132000 }; /* k * 127 * 128 < 2^31: the int32 sum cannot overflow */

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

int pml_cpu_linear_i8(int64_t m, int64_t n, int64_t k, const float *x, const int8_t *wq, const float *ws,
                      const float *bias, float *y, void *scratch)
{
    if (m < 0 || n < 0 || k < 0 || k > MAX_K) return -1;
    int32_t *acc = scratch; /* the int32s first: the buffer's alignment suits them */
    float *xs = (float *)(acc + m * n);
    int8_t *xq = (int8_t *)(xs + m);
    for (int64_t i = 0; i < m; i++) {
        const float *r = x + i * k;
        float mx = 0;
        for (int64_t p = 0; p < k; p++) mx = fmaxf(mx, fabsf(r[p]));
        float s = mx > 0 ? mx / 127.0f : 0.0f, inv = mx > 0 ? 127.0f / mx : 0.0f;
        xs[i] = s;
        for (int64_t p = 0; p < k; p++) {
            float v = nearbyintf(r[p] * inv);
            xq[i * k + p] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
    if (pml_cpu_gemm_s8s32(m, n, k, xq, k, wq, k, acc, n)) return -1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            y[i * n + j] = (float)acc[i * n + j] * xs[i] * ws[j] + (bias ? bias[j] : 0.0f);
    return 0;
}

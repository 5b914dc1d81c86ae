/* gemm_blas.c — pml_cpu_gemm_* through CBLAS when the build found a BLAS
 * (PML_BLAS_OPENBLAS or PML_BLAS_BLIS defined by runtime/CMakeLists.txt), else
 * through the reference GEMM.
 *
 * OpenBLAS 0.3.21 (Debian) identifies the 2-core AMD EPYC (Zen 4) it was measured on as
 * "Cooperlake" and runs its AVX-512 kernels; forcing OPENBLAS_CORETYPE=Zen or Haswell
 * changed sgemm speed by under 5% (bench/cpu_gemm), so the runtime leaves the variable
 * alone (and could not set it in time anyway: a linked OpenBLAS reads it while loading). */
#include "gemm.h"

#include <limits.h>
#include <stdatomic.h>

#if defined(PML_BLAS_OPENBLAS) || defined(PML_BLAS_BLIS)
/* BLIS's cblas.h defines static helpers it does not use. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <cblas.h>
#pragma GCC diagnostic pop
#define HAVE_BLAS 1
#else
#define HAVE_BLAS 0
#endif

#if defined(PML_BLAS_BLIS)
void bli_thread_set_num_threads(dim_t n_threads);
#endif
#if defined(PML_BLAS_OPENBLAS)
/* Not in cblas.h: the pthread server's shutdown (its fork handler). Weak, so a build
 * whose OpenBLAS lacks it (the OpenMP or serial variant) links and skips the parking. */
int blas_thread_shutdown_(void) __attribute__((weak));
#endif

const char *pml_cpu_blas_name(void)
{
#if defined(PML_BLAS_OPENBLAS)
    return "openblas";
#elif defined(PML_BLAS_BLIS)
    return "blis";
#else
    return "none";
#endif
}

#if HAVE_BLAS
/* The library's thread count is global: set it only when a call wants another. */
static void blas_threads(int threads)
{
    static atomic_int current;
    int want = threads > 1 ? threads : 1;
    if (atomic_exchange(&current, want) == want) return;
#if defined(PML_BLAS_OPENBLAS)
    openblas_set_num_threads(want);
#else
    bli_thread_set_num_threads(want);
#endif
}

/* OpenBLAS's helper threads start with the library and poll for work with sched_yield
 * for about 2^28 cycles before they sleep, and again after every threaded call. On two
 * cores that polling took a core from the stages for the first ~0.15 s of a run: MLP
 * steps 2-8 took 14-16 ms against 9 ms after (docs/perf.md). With one thread per call
 * they have nothing to do, so they are stopped once; a later threaded call restarts
 * them (OpenBLAS starts its server on demand). */
static void park_helpers(void)
{
#if defined(PML_BLAS_OPENBLAS)
    static atomic_flag parked = ATOMIC_FLAG_INIT;
    if (blas_thread_shutdown_ && !atomic_flag_test_and_set(&parked)) blas_thread_shutdown_();
#endif
}

static int fits_blas(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    return m > 0 && n > 0 && k > 0 && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
           ldb <= INT_MAX && ldc <= INT_MAX && lda >= (op.ta ? m : k) && ldb >= (op.tb ? k : n) && ldc >= n;
}

static enum CBLAS_TRANSPOSE trans(int t) { return t ? CblasTrans : CblasNoTrans; }
#endif

void pml_cpu_gemm_setup(int threads)
{
#if HAVE_BLAS
    blas_threads(threads);
    if (threads <= 1) park_helpers();
#else
    (void)threads;
#endif
}

void pml_cpu_gemm_f32(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *c, int64_t ldc, int threads)
{
#if HAVE_BLAS
    if (fits_blas(op, m, n, k, lda, ldb, ldc)) {
        blas_threads(threads);
        cblas_sgemm(CblasRowMajor, trans(op.ta), trans(op.tb), (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                    op.acc ? 1.0f : 0.0f, c, (int)ldc);
        return;
    }
#endif
    pml_cpu_gemm_ref_f32(op, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

void pml_cpu_gemm_f64(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                      const double *b, int64_t ldb, double *c, int64_t ldc, int threads)
{
#if HAVE_BLAS
    if (fits_blas(op, m, n, k, lda, ldb, ldc)) {
        blas_threads(threads);
        cblas_dgemm(CblasRowMajor, trans(op.ta), trans(op.tb), (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb,
                    op.acc ? 1.0 : 0.0, c, (int)ldc);
        return;
    }
#endif
    pml_cpu_gemm_ref_f64(op, m, n, k, a, lda, b, ldb, c, ldc, threads);
}

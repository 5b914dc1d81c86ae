/* gemm_blas.c — pml_cpu_gemm_* through the provider the build chose
 * (runtime/CMakeLists.txt, PML_BLAS): oneDNN (PML_BLAS_ONEDNN: dnnl_sgemm), OpenBLAS or
 * BLIS (PML_BLAS_OPENBLAS, PML_BLAS_BLIS: CBLAS), else the reference GEMM.
 *
 * Why oneDNN by default (docs/design.md, "The CPU's matrix products"): it picks its
 * kernels by the instruction sets CPUID reports, so a CPU newer than the library gets
 * its widest kernels; Debian's OpenBLAS 0.3.21 picks them by CPU model and ran its SSE3
 * "Prescott" kernels on Xeons it did not know (issue 14), and its core cannot be chosen
 * from here: a linked OpenBLAS reads OPENBLAS_CORETYPE while it loads, before any of
 * PML's code runs. oneDNN also has the int8 products (and, through its matmul, the bf16
 * ones) reduced precision needs, and it was the fastest on the examples' products
 * (bench/cpu_gemm, docs/perf.md). It has no f64 GEMM: f64 products use the reference.
 *
 * pml_cpu_gemm_isa() says which instruction set the provider's kernels use, from the
 * provider itself (oneDNN's effective ISA, OpenBLAS's core, BLIS's sub-configuration),
 * so a test can check it against what the CPU offers (isa.h). */
#include "gemm.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

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

#if defined(PML_BLAS_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
/* oneDNN (Debian's build) runs its threads with the OpenMP runtime it links; the
 * number a call uses is the calling thread's OpenMP setting. Declared here rather
 * than through omp.h, which only the OpenMP-enabled compilers ship. */
void omp_set_num_threads(int n);
#endif

#if defined(PML_BLAS_BLIS)
void bli_thread_set_num_threads(dim_t n_threads);
arch_t bli_arch_query_id(void);
const char *bli_arch_string(arch_t id);
#endif
#if defined(PML_BLAS_OPENBLAS)
/* Not in cblas.h: the pthread server's shutdown (its fork handler). Weak, so a build
 * whose OpenBLAS lacks it (the OpenMP or serial variant) links and skips the parking. */
int blas_thread_shutdown_(void) __attribute__((weak));
#endif

const char *pml_cpu_blas_name(void)
{
#if defined(PML_BLAS_ONEDNN)
    return "onednn";
#elif defined(PML_BLAS_OPENBLAS)
    return "openblas";
#elif defined(PML_BLAS_BLIS)
    return "blis";
#else
    return "none";
#endif
}

#if HAVE_BLAS
/* Which of the names `names` (NULL-terminated) `s` is, ignoring case; -1: none. */
static int name_index(const char *s, const char *const *names)
{
    for (int i = 0; s && names[i]; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    return -1;
}

/* The level of a provider's kernels, from the names it gives them: OpenBLAS's cores
 * and BLIS's sub-configurations are each built for one instruction set. A name not
 * listed (an older core, "generic") counts as the baseline, so a provider that falls
 * back fails the ISA test rather than passing it. */
static pml_cpu_isa isa_of_kernel_name(const char *name)
{
    static const char *const avx2[] = {"haswell", "zen", "zen2", "zen3", "knl", NULL};
    static const char *const avx512[] = {"skylakex", "skx", NULL};
    static const char *const avx512_bf16[] = {"cooperlake", "sapphirerapids", NULL};
    if (name_index(name, avx512_bf16) >= 0) return PML_ISA_AVX512_BF16;
    if (name_index(name, avx512) >= 0) return PML_ISA_AVX512;
    if (name_index(name, avx2) >= 0) return PML_ISA_AVX2;
    return PML_ISA_SSE2;
}
#endif

pml_cpu_isa pml_cpu_gemm_isa(void)
{
#if defined(PML_BLAS_ONEDNN)
    (void)pml_cpu_isa_offered(); /* PML_CPU_ISA caps oneDNN before it is first asked (isa.h) */
    /* oneDNN's ISA values are masks: each level includes the bits of those below. */
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return PML_ISA_AVX512_BF16;
    if ((isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni) return PML_ISA_AVX512_VNNI;
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return PML_ISA_AVX512;
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return PML_ISA_AVX2;
    if ((isa & dnnl_cpu_isa_sse41) == dnnl_cpu_isa_sse41) return PML_ISA_SSE41;
    return PML_ISA_SSE2;
#elif defined(PML_BLAS_OPENBLAS)
    return isa_of_kernel_name(openblas_get_corename());
#elif defined(PML_BLAS_BLIS)
    return isa_of_kernel_name(bli_arch_string(bli_arch_query_id()));
#else
    return PML_ISA_SSE2; /* the reference GEMM, compiled for the baseline */
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

#if defined(PML_BLAS_ONEDNN)
static int fits_dnnl(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc)
{
    return m > 0 && n > 0 && k > 0 && lda >= (op.ta ? m : k) && ldb >= (op.tb ? k : n) && ldc >= n;
}

/* The calling thread's OpenMP setting, set only when it changes (a thread-local). */
static void dnnl_threads(int threads)
{
    (void)pml_cpu_isa_offered(); /* every oneDNN call comes here first: PML_CPU_ISA caps it (isa.h) */
    static _Thread_local int current;
    int want = threads > 1 ? threads : 1;
    if (current == want) return;
    current = want;
    omp_set_num_threads(want);
}
#endif

void pml_cpu_gemm_setup(int threads)
{
#if defined(PML_BLAS_ONEDNN)
    dnnl_threads(threads);
#elif HAVE_BLAS
    blas_threads(threads);
    if (threads <= 1) park_helpers();
#else
    (void)threads;
#endif
}

void pml_cpu_gemm_f32(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *c, int64_t ldc, int threads)
{
#if defined(PML_BLAS_ONEDNN)
    if (fits_dnnl(op, m, n, k, lda, ldb, ldc)) {
        dnnl_threads(threads);
        /* row-major, like every oneDNN GEMM; fails only on arguments fits_dnnl checked */
        if (dnnl_sgemm(op.ta ? 'T' : 'N', op.tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, op.acc ? 1.0f : 0.0f, c,
                       ldc) == dnnl_success)
            return;
    }
#elif HAVE_BLAS
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

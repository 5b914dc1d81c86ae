/* bench_gemm.c — sgemm speed of every candidate provider on the examples' matrix
 * products, measured side by side in one interleaved run (docs/perf.md, "The GEMM
 * provider"). Prints a Markdown table: per shape the median GFLOP/s of each provider,
 * then each example's GEMM time per training step (every forward and both backward
 * products of every micro-batch, weighted by how often a step runs them).
 *   pml_bench_gemm [--threads N] [--reps N] [--lib NAME[,NAME...]]
 *
 * Providers (each only when found at configure time):
 *   openblas        Debian's OpenBLAS as it picks its core itself (by CPU model);
 *   openblas-cpuid  a second copy of the same library (dlmopen, its own namespace) loaded
 *                   after OPENBLAS_CORETYPE was set from the CPU's features
 *                   (pml_cpu_isa_offered): the only way to choose OpenBLAS's core, which
 *                   it reads once while it loads;
 *   blis            BLIS (its own feature-based dispatch);
 *   onednn          oneDNN's dnnl_sgemm (feature-based dispatch, dnnl_get_effective_cpu_isa);
 *   libxsmm         libxsmm's JIT kernels (libxsmm_smmdispatch; "-" where it makes none);
 *   panel           the runtime's panel GEMM (gemm_packed.c, B packed once; AVX-512 only);
 *   C               the runtime's blocked C GEMM (gemm_ref.c).
 * Each BLAS is dlopen'ed with RTLD_LOCAL: they all export cblas_sgemm. Interleaved: every
 * repetition times every shape with every provider in turn, so load from the machine's
 * other users falls on all of them alike; the load average is printed at start and end.
 * The peak is measured, not computed from a clock: a loop of independent FMAs at the
 * widest vector width the CPU offers, on one core. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#ifdef PML_BENCH_LIBXSMM
#include <libxsmm.h>
#endif

typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                               const float *b, int ldb, float beta, float *c, int ldc);
typedef int (*dnnl_sgemm_fn)(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* One product as the runtime issues it (gemm.h): C[m, n] (+)= op(A) op(B). */
typedef struct shape {
    const char *example;
    int ta, tb, m, n, k, acc;
    int per_step; /* how many a training step runs */
} shape;

/* The examples' products, as `pmlc train examples/X.pml --steps 1` issues them through
 * cblas_sgemm (logged with an LD_PRELOAD shim, 2026-12-05): forward (A B^T, the weight
 * stored out x in), input gradient (A B), weight gradient (A^T B, accumulated over the
 * micro-batches: k is rows x micro-batches) and the attention's per-head products. */
static const shape shapes[] = {
    {"mlp", 0, 1, 32, 512, 784, 0, 8},    {"mlp", 0, 1, 32, 512, 512, 0, 8},   {"mlp", 0, 1, 32, 10, 512, 0, 8},
    {"mlp", 0, 0, 32, 512, 512, 0, 8},    {"mlp", 0, 0, 32, 512, 10, 0, 8},    {"mlp", 1, 0, 512, 784, 224, 1, 1},
    {"mlp", 1, 0, 512, 512, 256, 1, 1},   {"mlp", 1, 0, 10, 512, 256, 1, 1},   {"gpt", 0, 1, 512, 384, 128, 0, 32},
    {"gpt", 0, 1, 512, 512, 128, 0, 32},  {"gpt", 0, 1, 512, 128, 512, 0, 32}, {"gpt", 0, 1, 512, 128, 128, 0, 32},
    {"gpt", 0, 1, 512, 65, 128, 0, 8},    {"gpt", 0, 0, 512, 128, 384, 0, 32}, {"gpt", 0, 0, 512, 512, 128, 0, 32},
    {"gpt", 0, 0, 512, 128, 512, 0, 32},  {"gpt", 0, 0, 512, 128, 128, 0, 32}, {"gpt", 0, 0, 512, 128, 65, 0, 8},
    {"gpt", 1, 0, 384, 128, 4096, 1, 4},  {"gpt", 1, 0, 128, 512, 4096, 1, 4}, {"gpt", 1, 0, 512, 128, 4096, 1, 4},
    {"gpt", 1, 0, 128, 128, 4096, 1, 4},  {"gpt", 1, 0, 65, 128, 4096, 1, 1},  {"gpt", 0, 1, 64, 64, 32, 0, 2048},
    {"gpt", 0, 0, 64, 32, 64, 0, 2048},   {"gpt", 1, 0, 64, 32, 64, 0, 2048},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

typedef struct provider {
    const char *name;
    cblas_sgemm_fn cblas; /* one of these three, or none: the C GEMM / panel GEMM */
    dnnl_sgemm_fn dnnl;
    int panel, xsmm;
    const char *note; /* the core / ISA it reports */
    char note_buf[64];
} provider;

static int g_threads = 1;

/* With one thread every provider computes on the calling thread, so its CPU time is
 * the product's time without the slices the machine's other users took: on a shared
 * machine a 30 ms product is preempted on almost every call, a 1 ms one rarely, and
 * wall time would rank shapes by length as much as by speed. With more threads, wall
 * time (and a quiet machine) is the only honest measure. */
static double now(void)
{
    struct timespec t;
    clock_gettime(g_threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "pml_bench_gemm: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- the operands of one shape (and its packed B for the panel GEMM) ---------------- */
typedef struct operands {
    float *a, *b, *c, *packed;
    int lda, ldb;
#ifdef PML_BENCH_LIBXSMM
    libxsmm_smmfunction xsmm;
#endif
} operands;

static operands make_operands(const shape *s)
{
    operands o = {0};
    size_t na = (size_t)s->m * (size_t)s->k, nb = (size_t)s->k * (size_t)s->n;
    o.a = xmalloc(sizeof(float) * na);
    o.b = xmalloc(sizeof(float) * nb);
    o.c = xmalloc(sizeof(float) * (size_t)s->m * (size_t)s->n);
    for (size_t i = 0; i < na; i++) o.a[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < nb; i++) o.b[i] = (float)(i % 7) * 0.1f - 0.3f;
    memset(o.c, 0, sizeof(float) * (size_t)s->m * (size_t)s->n);
    o.lda = s->ta ? s->m : s->k;
    o.ldb = s->tb ? s->k : s->n;
    if (pml_cpu_gemm_packed_available() && !s->ta) {
        o.packed = xmalloc(sizeof(float) * pml_cpu_gemm_packed_floats(s->k, s->n));
        pml_cpu_gemm_pack_b(s->tb, s->k, s->n, o.b, o.ldb, o.packed);
    }
#ifdef PML_BENCH_LIBXSMM
    /* column-major: C^T (n x m) = op(B)^T op(A)^T, so libxsmm's A is our B */
    int flags = (s->tb ? LIBXSMM_GEMM_FLAG_TRANS_A : 0) | (s->ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
    libxsmm_blasint lda = o.ldb, ldb = o.lda, ldc = s->n;
    float alpha = 1.0f, beta = s->acc ? 1.0f : 0.0f;
    o.xsmm = libxsmm_smmdispatch(s->n, s->m, s->k, &lda, &ldb, &ldc, &alpha, &beta, &flags, NULL);
#endif
    return o;
}

static void free_operands(operands *o)
{
    free(o->a);
    free(o->b);
    free(o->c);
    free(o->packed);
}

/* Runs the product once; 0 when this provider cannot run this shape. */
static int run(const provider *p, const shape *s, operands *o)
{
    if (p->cblas)
        p->cblas(101 /* row major */, s->ta ? 112 : 111, s->tb ? 112 : 111, s->m, s->n, s->k, 1.0f, o->a, o->lda, o->b,
                 o->ldb, s->acc ? 1.0f : 0.0f, o->c, s->n);
    else if (p->dnnl)
        p->dnnl(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->m, s->n, s->k, 1.0f, o->a, o->lda, o->b, o->ldb,
                s->acc ? 1.0f : 0.0f, o->c, s->n);
    else if (p->panel) {
        if (!o->packed) return 0;
        pml_cpu_gemm_packed_f32(s->acc, s->m, s->n, s->k, o->a, o->lda, pml_cpu_gemm_packed(o->packed, s->k), o->c,
                                s->n, NULL);
    } else if (p->xsmm) {
#ifdef PML_BENCH_LIBXSMM
        if (!o->xsmm) return 0;
        o->xsmm(o->b, o->a, o->c);
#else
        return 0;
#endif
    } else
        pml_cpu_gemm_ref_f32((pml_cpu_gemm_op){s->ta, s->tb, s->acc}, s->m, s->n, s->k, o->a, o->lda, o->b, o->ldb,
                             o->c, s->n, g_threads);
    return 1;
}

/* ---- loading the providers ---------------------------------------------------------- */
static void set_threads(void *h, const char *sym, int i64)
{
    void *set = h ? dlsym(h, sym) : NULL;
    if (set && i64)
        ((void (*)(long long))set)(g_threads);
    else if (set)
        ((void (*)(int))set)(g_threads);
}

static int load_cblas(provider *p, const char *name, void *h, const char *threads_sym, int i64)
{
    if (!h) {
        fprintf(stderr, "pml_bench_gemm: %s: %s\n", name, dlerror());
        return 0;
    }
    p->name = name;
    p->cblas = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
    if (!p->cblas) return 0;
    set_threads(h, threads_sym, i64);
    char *(*core)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
    if (core) snprintf(p->note_buf, sizeof p->note_buf, "core %s", core());
    const char *(*arch)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    int (*arch_id)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    if (arch && arch_id) snprintf(p->note_buf, sizeof p->note_buf, "arch %s", arch(arch_id()));
    p->note = p->note_buf;
    return 1;
}

/* OpenBLAS's core for the widest level the CPU offers: chosen by features, the
 * library's kernels named by what they need (SKYLAKEX: AVX-512 core; COOPERLAKE: + BF16;
 * HASWELL: AVX2 + FMA). NULL: let the library choose. */
static const char *openblas_core_for(pml_cpu_isa isa)
{
    switch (isa) {
    case PML_ISA_AVX512_BF16: return "COOPERLAKE";
    case PML_ISA_AVX512_VNNI:
    case PML_ISA_AVX512: return "SKYLAKEX";
    case PML_ISA_AVX2: return "HASWELL";
    case PML_ISA_SSE41:
    case PML_ISA_SSE2:
    case PML_ISA_COUNT: break;
    }
    return NULL;
}

static int wanted(const char *only, const char *name)
{
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

static int load_providers(provider *ps, const char *only)
{
    int n = 0;
    (void)ps;
#ifdef PML_BENCH_OPENBLAS
    unsetenv("OPENBLAS_CORETYPE");
    if (wanted(only, "openblas"))
        n += load_cblas(&ps[n], "openblas", dlopen(PML_BENCH_OPENBLAS, RTLD_NOW | RTLD_LOCAL),
                        "openblas_set_num_threads", 0);
    const char *core = openblas_core_for(pml_cpu_isa_offered());
    if (core && wanted(only, "openblas-cpuid")) {
        setenv("OPENBLAS_CORETYPE", core, 1);
        n += load_cblas(&ps[n], "openblas-cpuid", dlmopen(LM_ID_NEWLM, PML_BENCH_OPENBLAS, RTLD_NOW | RTLD_LOCAL),
                        "openblas_set_num_threads", 0);
        unsetenv("OPENBLAS_CORETYPE");
    }
#endif
#ifdef PML_BENCH_BLIS
    if (wanted(only, "blis"))
        n += load_cblas(&ps[n], "blis", dlopen(PML_BENCH_BLIS, RTLD_NOW | RTLD_LOCAL), "bli_thread_set_num_threads", 1);
#endif
#ifdef PML_BENCH_ONEDNN
    if (wanted(only, "onednn")) {
        void *h = dlopen(PML_BENCH_ONEDNN, RTLD_NOW | RTLD_LOCAL);
        dnnl_sgemm_fn f = h ? (dnnl_sgemm_fn)dlsym(h, "dnnl_sgemm") : NULL;
        int (*isa)(void) = h ? (int (*)(void))dlsym(h, "dnnl_get_effective_cpu_isa") : NULL;
        if (f) {
            ps[n] = (provider){.name = "onednn", .dnnl = f};
            set_threads(h, "omp_set_num_threads", 0); /* its OpenMP runtime, a dependency */
            if (isa) snprintf(ps[n].note_buf, sizeof ps[n].note_buf, "isa 0x%x", isa());
            ps[n].note = ps[n].note_buf;
            n++;
        } else
            fprintf(stderr, "pml_bench_gemm: onednn: %s\n", h ? "no dnnl_sgemm" : dlerror());
    }
#endif
#ifdef PML_BENCH_LIBXSMM
    if (wanted(only, "libxsmm") && g_threads == 1) { /* its JIT kernels run on the calling thread */
        libxsmm_init();
        ps[n++] = (provider){.name = "libxsmm", .xsmm = 1, .note = libxsmm_get_target_arch()};
    }
#endif
    if (wanted(only, "panel") && pml_cpu_gemm_packed_available() && g_threads == 1)
        ps[n++] = (provider){.name = "panel", .panel = 1, .note = "avx512"};
    if (wanted(only, "c")) ps[n++] = (provider){.name = "C", .note = "compiler's"};
    return n;
}

/* ---- the core's peak: independent FMAs at the widest width ------------------------- */
#if defined(__x86_64__) && defined(__GNUC__)
/* Twelve independent chains in named registers: enough to cover the FMA latency on two
 * pipes; an array of accumulators may live in memory and measure the store instead. */
#define PEAK_STEP(fma)                                                                                     \
    do {                                                                                                   \
        a0 = fma(a0, x, y), a1 = fma(a1, x, y), a2 = fma(a2, x, y), a3 = fma(a3, x, y);                    \
        a4 = fma(a4, x, y), a5 = fma(a5, x, y), a6 = fma(a6, x, y), a7 = fma(a7, x, y);                    \
        a8 = fma(a8, x, y), a9 = fma(a9, x, y), a10 = fma(a10, x, y), a11 = fma(a11, x, y);                \
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6),      \
                         "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));                             \
    } while (0)
#define PEAK_SUM(add) add(add(add(add(a0, a1), add(a2, a3)), add(add(a4, a5), add(a6, a7))), add(add(a8, a9), add(a10, a11)))
__attribute__((target("avx512f"))) static double peak_avx512(long iters)
{
    __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    __m512 a0 = x, a1 = y, a2 = x, a3 = y, a4 = x, a5 = y, a6 = x, a7 = y, a8 = x, a9 = y, a10 = x, a11 = y;
    double t0 = now();
    for (long it = 0; it < iters; it++) PEAK_STEP(_mm512_fmadd_ps);
    double t = now() - t0;
    float sink = _mm512_reduce_add_ps(PEAK_SUM(_mm512_add_ps));
    if (sink == 12345.0f) fputc(' ', stderr);
    return 12.0 * 16 * 2 * (double)iters / t * 1e-9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(long iters)
{
    __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    __m256 a0 = x, a1 = y, a2 = x, a3 = y, a4 = x, a5 = y, a6 = x, a7 = y, a8 = x, a9 = y, a10 = x, a11 = y;
    double t0 = now();
    for (long it = 0; it < iters; it++) PEAK_STEP(_mm256_fmadd_ps);
    double t = now() - t0;
    float lanes[8], sink = 0;
    _mm256_storeu_ps(lanes, PEAK_SUM(_mm256_add_ps));
    for (int j = 0; j < 8; j++) sink += lanes[j];
    if (sink == 12345.0f) fputc(' ', stderr);
    return 12.0 * 8 * 2 * (double)iters / t * 1e-9;
}
#endif

/* Best of 7 short runs: a peak, so the least disturbed run. 0: unknown. */
static double core_peak(void)
{
    double best = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    pml_cpu_isa isa = pml_cpu_isa_offered();
    for (int r = 0; r < 7; r++) {
        double g = isa >= PML_ISA_AVX512 ? peak_avx512(4000000) : isa >= PML_ISA_AVX2 ? peak_avx2(4000000) : 0;
        if (g > best) best = g;
    }
#endif
    return best;
}

static void print_load(const char *when)
{
    double l[3] = {0};
    if (getloadavg(l, 3) == 3) printf("load average %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
}

int main(int argc, char **argv)
{
    int reps = 15;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            g_threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--lib") == 0)
            only = argv[i + 1];
        else {
            fprintf(stderr, "usage: pml_bench_gemm [--threads N] [--reps N] [--lib NAME[,NAME...]]\n");
            return 2;
        }
    }
    if (g_threads < 1) g_threads = 1;
    if (reps < 1) reps = 1;
    provider ps[8];
    int np = load_providers(ps, only);
    double peak = core_peak() * g_threads;
    printf("sgemm, %d thread%s, median of %d interleaved repetitions; CPU offers %s; peak %.1f GFLOP/s (measured "
           "FMA loop x threads)\n",
           g_threads, g_threads > 1 ? "s" : "", reps, pml_cpu_isa_name(pml_cpu_isa_offered()), peak);
    for (int p = 0; p < np; p++) printf("  %s: %s\n", ps[p].name, ps[p].note ? ps[p].note : "");
    print_load("at start");

    operands *ops = xmalloc(sizeof *ops * N_SHAPES);
    double *t = xmalloc(sizeof(double) * (size_t)N_SHAPES * (size_t)np * (size_t)reps); /* seconds per call */
    int *inner = xmalloc(sizeof(int) * N_SHAPES);
    for (int s = 0; s < N_SHAPES; s++) {
        ops[s] = make_operands(&shapes[s]);
        double flops = 2.0 * shapes[s].m * shapes[s].n * shapes[s].k;
        inner[s] = flops >= 2e7 ? 1 : (int)(2e7 / flops); /* samples of >= ~1 ms at a few GFLOP/s */
        for (int p = 0; p < np; p++) run(&ps[p], &shapes[s], &ops[s]); /* warm-up: JIT, packing buffers */
    }
    for (int r = 0; r < reps; r++)
        for (int s = 0; s < N_SHAPES; s++)
            for (int p = 0; p < np; p++) {
                double t0 = now();
                int ok = 1;
                for (int i = 0; i < inner[s] && ok; i++) ok = run(&ps[p], &shapes[s], &ops[s]);
                t[((size_t)s * np + p) * reps + r] = ok ? (now() - t0) / inner[s] : -1;
            }
    print_load("at end");

    printf("\n| example | op(A) x op(B) -> C | calls/step |");
    for (int p = 0; p < np; p++) printf(" %s |", ps[p].name);
    printf("\n|---|---|---:|");
    for (int p = 0; p < np; p++) printf("---:|");
    printf("\n");
    double step[2][8] = {{0}};
    int step_ok[2][8];
    for (int p = 0; p < np; p++) step_ok[0][p] = step_ok[1][p] = 1;
    for (int s = 0; s < N_SHAPES; s++) {
        const shape *sh = &shapes[s];
        int e = strcmp(sh->example, "gpt") == 0;
        printf("| %s | %dx%d%s x %dx%d%s%s |  %d |", sh->example, sh->m, sh->k, sh->ta ? "ᵀ" : "", sh->k, sh->n,
               sh->tb ? "ᵀ" : "", sh->acc ? " (+=)" : "", sh->per_step);
        for (int p = 0; p < np; p++) {
            double *ts = &t[((size_t)s * np + p) * reps];
            qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
            double med = ts[reps / 2];
            if (ts[0] < 0) {
                printf(" - |");
                step_ok[e][p] = 0;
                continue;
            }
            double g = 2.0 * sh->m * sh->n * sh->k / med * 1e-9;
            step[e][p] += med * sh->per_step;
            printf(" %.1f (%.0f%%) |", g, peak > 0 ? 100 * g / peak : 0);
        }
        printf("\n");
    }
    for (int e = 0; e < 2; e++) {
        printf("| %s | GEMM ms per step | |", e ? "gpt" : "mlp");
        for (int p = 0; p < np; p++)
            if (step_ok[e][p])
                printf(" **%.2f** |", step[e][p] * 1e3);
            else
                printf(" - |");
        printf("\n");
    }
    printf("\nGFLOP/s (%% of the measured peak); '-': the provider has no kernel for that shape.\n");
    for (int s = 0; s < N_SHAPES; s++) free_operands(&ops[s]);
    free(ops);
    free(t);
    free(inner);
    return 0;
}

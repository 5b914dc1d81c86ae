/* bench_gemm.c — sgemm GFLOP/s (median of N runs) on the GPT example's matmul shapes
 * and 1024^3, for OpenBLAS, BLIS (each dlopen'ed when found at configure time) and the
 * runtime's blocked C GEMM. Prints a Markdown table.
 *   pml_bench_gemm [--threads N] [--reps N] [--lib openblas|blis|c]
 * With more than one thread, run one library per process (--lib): OpenBLAS's idle
 * workers spin for a while after each call and starve BLIS's OpenMP threads. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

typedef struct lib {
    const char *name;
    sgemm_fn sgemm; /* NULL: the C GEMM */
} lib;

static int g_threads = 1;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void run(const lib *l, int m, int k, int n, const float *a, const float *b, float *c)
{
    if (l->sgemm)
        l->sgemm(101 /* row major */, 111, 111 /* no transpose */, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    else
        pml_cpu_gemm_ref_f32((pml_cpu_gemm_op){0, 0, 0}, m, n, k, a, k, b, n, c, n, g_threads);
}

/* Median GFLOP/s of `reps` runs after one warm-up. */
static double bench(const lib *l, int m, int k, int n, int reps)
{
    float *a = malloc(sizeof(float) * (size_t)m * (size_t)k), *b = malloc(sizeof(float) * (size_t)k * (size_t)n),
          *c = malloc(sizeof(float) * (size_t)m * (size_t)n);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!a || !b || !c || !t) {
        fprintf(stderr, "pml_bench_gemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++) a[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < (size_t)k * (size_t)n; i++) b[i] = (float)(i % 7) * 0.1f - 0.3f;
    run(l, m, k, n, a, b, c);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run(l, m, k, n, a, b, c);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double gflops = 2.0 * m * n * k / t[reps / 2] * 1e-9;
    free(a);
    free(b);
    free(c);
    free(t);
    return gflops;
}

static int load(lib *l, const char *name, const char *path, const char *threads_sym, int threads_i64)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "pml_bench_gemm: %s: %s\n", name, dlerror());
        return 0;
    }
    l->name = name;
    l->sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    void *set = dlsym(h, threads_sym);
    if (!l->sgemm) return 0;
    if (set && threads_i64)
        ((void (*)(long long))set)(g_threads);
    else if (set)
        ((void (*)(int))set)(g_threads);
    if (strcmp(name, "openblas") == 0) {
        char *(*core)(void) = (char *(*)(void))dlsym(h, "openblas_get_corename");
        if (core) fprintf(stderr, "openblas core: %s\n", core());
    }
    return 1;
}

int main(int argc, char **argv)
{
    int reps = 21;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            g_threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--lib") == 0)
            only = argv[i + 1];
    }
    if (g_threads < 1) g_threads = 1;
    if (reps < 1) reps = 1;
    lib libs[3];
    int n_libs = 0;
#ifdef PML_BENCH_OPENBLAS
    if (!only || strcmp(only, "openblas") == 0)
        n_libs += load(&libs[n_libs], "openblas", PML_BENCH_OPENBLAS, "openblas_set_num_threads", 0);
#endif
#ifdef PML_BENCH_BLIS
    if (!only || strcmp(only, "blis") == 0)
        n_libs += load(&libs[n_libs], "blis", PML_BENCH_BLIS, "bli_thread_set_num_threads", 1);
#endif
    if (!only || strcmp(only, "c") == 0) libs[n_libs++] = (lib){"C GEMM", NULL};
    static const int shapes[][3] = {{512, 128, 384}, {512, 128, 512}, {512, 512, 128},
                                    {512, 128, 65},  {512, 384, 128}, {1024, 1024, 1024}};
    printf("sgemm GFLOP/s, median of %d, %d thread%s\n\n| m x k x n |", reps, g_threads, g_threads > 1 ? "s" : "");
    for (int l = 0; l < n_libs; l++) printf(" %s |", libs[l].name);
    printf("\n|---|");
    for (int l = 0; l < n_libs; l++) printf("---:|");
    printf("\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        printf("| %d x %d x %d |", m, k, n);
        for (int l = 0; l < n_libs; l++) {
            fflush(stdout);
            printf(" %.1f |", bench(&libs[l], m, k, n, m * k * n >= 1 << 30 ? (reps + 1) / 2 : reps));
        }
        printf("\n");
    }
    return 0;
}

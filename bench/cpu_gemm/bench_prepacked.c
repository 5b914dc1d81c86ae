/* bench_prepacked.c — a linear layer's forward for inference (y = x W^T + b, W fixed),
 * three ways, on the inference benchmark's shapes (bench/infer: the MLP example and the
 * wide MLP) at 1, 8, 32 and 256 rows, one thread, interleaved:
 *   panel: PML's panel GEMM with W packed once and the bias as its epilogue (gemm.h);
 *   sgemm: oneDNN's dnnl_sgemm (it packs W on every call), then the bias over the rows;
 *   prim:  a oneDNN matmul primitive made once per shape, W reordered once into the
 *          layout the primitive prefers (format_tag any), the bias its argument, a
 *          scratchpad of the caller's (issue 19's prepacked path).
 * Prints the median CPU time per call (this thread's) over --reps repetitions, and
 * checks that the three agree (largest difference over the largest |y| <= 1e-5: the
 * summation orders differ).
 *   build/bench/cpu_gemm/pml_bench_prepacked [--reps N] */
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"

void omp_set_num_threads(int n);

#define OK(x)                                                                  \
    do {                                                                       \
        dnnl_status_t s_ = (x);                                                \
        if (s_ != dnnl_success) {                                              \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x, (int)s_); \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct prim {
    dnnl_primitive_t p;
    dnnl_memory_t src, wei, bias, dst, pad;
    void *pad_data, *wei_data;
} prim;

/* A matmul primitive for [m, k] x [k, n] + bias[1, n], W (n x k, row-major: W^T read as
 * k x n with strides) reordered once into the primitive's layout. */
static void prim_make(prim *r, dnnl_engine_t eng, dnnl_stream_t st, int64_t m, int64_t k, int64_t n, float *x,
                      const float *w, float *b, float *y)
{
    dnnl_memory_desc_t src, wany, wuser, bias, dst;
    dnnl_dims_t ds = {m, k}, dw = {k, n}, db = {1, n}, dd = {m, n};
    OK(dnnl_memory_desc_init_by_tag(&src, 2, ds, dnnl_f32, dnnl_ab));
    OK(dnnl_memory_desc_init_by_tag(&wany, 2, dw, dnnl_f32, dnnl_format_tag_any));
    OK(dnnl_memory_desc_init_by_tag(&wuser, 2, dw, dnnl_f32, dnnl_ba)); /* W^T of a row-major W */
    OK(dnnl_memory_desc_init_by_tag(&bias, 2, db, dnnl_f32, dnnl_ab));
    OK(dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    OK(dnnl_matmul_desc_init(&md, &src, &wany, &bias, &dst));
    dnnl_primitive_attr_t attr;
    OK(dnnl_primitive_attr_create(&attr));
    OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t pd;
    OK(dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    r->wei_data = aligned_alloc(64, (dnnl_memory_desc_get_size(wmd) + 63) & ~(size_t)63);
    r->pad_data = aligned_alloc(64, (dnnl_memory_desc_get_size(pmd) + 64) & ~(size_t)63);
    OK(dnnl_memory_create(&r->wei, wmd, eng, r->wei_data));
    OK(dnnl_memory_create(&r->pad, pmd, eng, r->pad_data));
    dnnl_memory_t wu;
    OK(dnnl_memory_create(&wu, &wuser, eng, (void *)w));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    OK(dnnl_reorder_primitive_desc_create(&rpd, &wuser, eng, wmd, eng, NULL));
    OK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, r->wei}};
    OK(dnnl_primitive_execute(reorder, st, 2, ra));
    OK(dnnl_stream_wait(st));
    dnnl_primitive_destroy(reorder), dnnl_primitive_desc_destroy(rpd), dnnl_memory_destroy(wu);
    OK(dnnl_memory_create(&r->src, &src, eng, x));
    OK(dnnl_memory_create(&r->bias, &bias, eng, b));
    OK(dnnl_memory_create(&r->dst, &dst, eng, y));
    OK(dnnl_primitive_create(&r->p, pd));
    dnnl_primitive_desc_destroy(pd), dnnl_primitive_attr_destroy(attr);
}

static void prim_run(prim *r, dnnl_stream_t st)
{
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, r->src}, {DNNL_ARG_WEIGHTS, r->wei}, {DNNL_ARG_BIAS, r->bias},
                            {DNNL_ARG_DST, r->dst}, {DNNL_ARG_SCRATCHPAD, r->pad}};
    OK(dnnl_primitive_execute(r->p, st, 5, a));
}

int main(int argc, char **argv)
{
    int reps = 31;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    omp_set_num_threads(1);
    if (!pml_cpu_gemm_packed_available()) {
        fprintf(stderr, "no AVX-512F: no panel GEMM to compare\n");
        return 1;
    }
    static const int64_t kn[][2] = {{784, 512}, {512, 512}, {256, 1024}, {1024, 1024}};
    static const int64_t rows[] = {1, 8, 32, 256};
    dnnl_engine_t eng;
    dnnl_stream_t st;
    OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    OK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    printf("%5s %5s %5s %10s %10s %10s   (us per call, CPU time of 1 thread, median of %d)\n", "rows", "k", "n",
           "panel", "sgemm", "prim", reps);
    for (size_t s = 0; s < sizeof kn / sizeof kn[0]; s++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            int64_t m = rows[ri], k = kn[s][0], n = kn[s][1];
            float *x = malloc(sizeof(float) * (size_t)(m * k)), *w = malloc(sizeof(float) * (size_t)(n * k));
            float *b = malloc(sizeof(float) * (size_t)n), *y[3];
            for (int v = 0; v < 3; v++) y[v] = malloc(sizeof(float) * (size_t)(m * n));
            for (int64_t i = 0; i < m * k; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1;
            for (int64_t i = 0; i < n * k; i++) w[i] = (float)((i * 104729) % 1000) / 5000.0f - 0.1f;
            for (int64_t i = 0; i < n; i++) b[i] = (float)(i % 13) / 13.0f;
            float *packed = malloc(sizeof(float) * pml_cpu_gemm_packed_floats(k, n));
            pml_cpu_gemm_pack_b(1, k, n, w, k, packed);
            prim pr;
            prim_make(&pr, eng, st, m, k, n, x, w, b, y[2]);
            int calls = (int)(2e7 / (double)(m * k * n)) + 1; /* ~20 MFLOP... per timing */
            double *t[3];
            for (int v = 0; v < 3; v++) t[v] = malloc(sizeof(double) * (size_t)reps);
            for (int r = 0; r < reps; r++)
                for (int v0 = 0; v0 < 3; v0++) {
                    int v = (v0 + r) % 3;
                    double t0 = cpu_now();
                    for (int c = 0; c < calls; c++) {
                        if (v == 0)
                            pml_cpu_gemm_packed_f32(0, m, n, k, x, k, pml_cpu_gemm_packed(packed, k), y[0], n, b);
                        else if (v == 1) {
                            dnnl_sgemm('N', 'T', m, n, k, 1.0f, x, k, w, k, 0.0f, y[1], n);
                            pml_cpu_add_bias_f32(m, n, b, y[1], n);
                        } else {
                            prim_run(&pr, st);
                            dnnl_stream_wait(st);
                        }
                    }
                    t[v][r] = (cpu_now() - t0) / calls * 1e6;
                }
            double worst = 0, big = 0;
            for (int64_t i = 0; i < m * n; i++) big = fmax(big, fabs((double)y[0][i]));
            for (int v = 1; v < 3; v++)
                for (int64_t i = 0; i < m * n; i++) worst = fmax(worst, fabs((double)y[v][i] - y[0][i]) / big);
            for (int v = 0; v < 3; v++) qsort(t[v], (size_t)reps, sizeof(double), cmp);
            printf("%5lld %5lld %5lld %10.2f %10.2f %10.2f%s\n", (long long)m, (long long)k, (long long)n,
                   t[0][reps / 2], t[1][reps / 2], t[2][reps / 2], worst > 1e-5 ? "  MISMATCH" : "");
            for (int v = 0; v < 3; v++) free(t[v]), free(y[v]);
            dnnl_primitive_destroy(pr.p);
            dnnl_memory_destroy(pr.src), dnnl_memory_destroy(pr.wei), dnnl_memory_destroy(pr.bias);
            dnnl_memory_destroy(pr.dst), dnnl_memory_destroy(pr.pad);
            free(pr.pad_data), free(pr.wei_data), free(packed), free(x), free(w), free(b);
        }
    dnnl_stream_destroy(st), dnnl_engine_destroy(eng);
    return 0;
}

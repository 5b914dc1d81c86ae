/* bench_linear_i8.c — see CMakeLists.txt. For each shape, rounds of: one f32 call
 * (pml_cpu_gemm_f32, x W^T, then the bias), one int8 call with per-row dynamic
 * activation scales and one with a static scale (pml_cpu_linear_i8's xs_static: the
 * rows' max|x| / 127, as calibration on these rows gives), both on the weight as given
 * (oneDNN's s8 GEMM), and, where the CPU has AVX512_VNNI, one dynamic-scale call on the
 * packed weight (gemm_int8_packed.c's own kernel), in turn, each timed in thread CPU time;
 * prints the medians and f32 / int8 ratios. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/gemm.h"
#include "cpu/gemm_int8.h"
#include "quant/int8.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int reps = argc == 3 && !strcmp(argv[1], "--reps") ? atoi(argv[2]) : 2000;
    if (reps < 1) return 2;
    static const int64_t shapes[][3] = {{1, 512, 784},   {1, 512, 512},   {32, 512, 784},
                                        {32, 512, 512},  {1, 1024, 1024}, {32, 1024, 1024},
                                        /* the GPT example's at 1 and 32 rows of T = 64: qkv, fc, mlp proj */
                                        {64, 384, 128},  {2048, 384, 128}, {2048, 512, 128}, {2048, 128, 512}};
    double *tf = malloc(sizeof(double) * reps), *tq = malloc(sizeof(double) * reps),
           *ts = malloc(sizeof(double) * reps), *tp = malloc(sizeof(double) * reps);
    printf("%-16s %10s %12s %12s %12s %9s %9s %9s  (%s, thread CPU time, median of %d interleaved)\n", "m x n x k",
           "f32 us", "dynamic us", "static us", "packed us", "f32/dyn", "f32/stat", "f32/pack", pml_cpu_gemm_s8_provider(),
           reps);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k), *b = calloc(n, sizeof(float));
        float *y = malloc(sizeof(float) * m * n), *ws = malloc(sizeof(float) * n);
        int8_t *wq = malloc((size_t)(n * k));
        void *scratch = malloc(pml_cpu_linear_i8_scratch(m, n, k));
        size_t pbytes = pml_cpu_s8_packed_bytes(n, k);
        void *wp = pbytes ? aligned_alloc(64, (pbytes + 63) / 64 * 64) : NULL;
        for (int64_t i = 0; i < m * k; i++) x[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
        for (int64_t i = 0; i < n * k; i++) w[i] = (float)((i * 104729) % 2001 - 1000) / 30000.0f;
        pml_quant_rows_i8(w, n, k, wq, ws);
        if (wp) pml_cpu_s8_pack(n, k, wq, wp);
        float a = 0;
        for (int64_t i = 0; i < m * k; i++) a = fmaxf(a, fabsf(x[i]));
        a /= 127.0f;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            pml_cpu_gemm_f32((pml_cpu_gemm_op){0, 1, 0}, m, n, k, x, k, w, k, y, n, 1);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) y[i * n + j] += b[j];
            double t1 = now();
            pml_cpu_linear_i8(m, n, k, x, 0.0f, wq, NULL, ws, b, y, n, scratch);
            double t2 = now();
            pml_cpu_linear_i8(m, n, k, x, a, wq, NULL, ws, b, y, n, scratch);
            double t3 = now();
            if (wp) pml_cpu_linear_i8(m, n, k, x, 0.0f, NULL, wp, ws, b, y, n, scratch);
            tp[r] = wp ? now() - t3 : NAN;
            ts[r] = t3 - t2;
            tq[r] = t2 - t1;
            tf[r] = t1 - t0;
        }
        qsort(tf, reps, sizeof *tf, cmp);
        qsort(tq, reps, sizeof *tq, cmp);
        qsort(ts, reps, sizeof *ts, cmp);
        qsort(tp, reps, sizeof *tp, cmp);
        printf("%3lld x %4lld x %4lld %10.2f %12.2f %12.2f %12.2f %9.2f %9.2f %9.2f\n", (long long)m, (long long)n,
               (long long)k, tf[reps / 2] * 1e6, tq[reps / 2] * 1e6, ts[reps / 2] * 1e6, tp[reps / 2] * 1e6,
               tf[reps / 2] / tq[reps / 2], tf[reps / 2] / ts[reps / 2], tf[reps / 2] / tp[reps / 2]);
        free(x), free(w), free(b), free(y), free(ws), free(wq), free(scratch), free(wp);
    }
    free(tf), free(tq), free(ts), free(tp);
    return 0;
}

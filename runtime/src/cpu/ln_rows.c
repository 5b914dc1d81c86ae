/* ln_rows.c — a layernorm row as the CPU's fused row kernel computes it, for an int8
 * product that quantizes the normalised rows itself (cpu/stage_int8.c: the group that
 * would have written them is not run). Bit for bit the group's values: every element
 * goes through the op-by-op f32 expressions (no contraction: C11), and each mean is
 * reduce_tmpl.h's row_sum order (four f64 accumulators over k, k + 1, k + 2, k + 3,
 * then (s0 + s1) + (s2 + s3)) divided by n in f64 and rounded to f32. */
#include "core/vectorize.h"

#include "cpu.h"

#include <math.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* The sums of up to four rows of n (r[q] each), in row_sum's order with its four
 * accumulators as the lanes of one vector (as reduce_tmpl.h's row_sum4), the rows'
 * vectors independent so their add chains overlap; sq: of each element's square,
 * rounded to f32 first. */
static inline __attribute__((always_inline)) void row_sums(const float *const *r, int rows, int64_t n, int sq,
                                                           double *out)
{
    v4d s[4] = {{0}, {0}, {0}, {0}};
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (int q = 0; q < 4; q++) {
            v4f a;
            memcpy(&a, r[q < rows ? q : 0] + k, sizeof a);
            if (sq) a = a * a;
            s[q] += __builtin_convertvector(a, v4d);
        }
    for (; k < n; k++)
        for (int q = 0; q < rows; q++) s[q][0] += sq ? (double)(r[q][k] * r[q][k]) : (double)r[q][k];
    for (int q = 0; q < rows; q++) out[q] = (s[q][0] + s[q][1]) + (s[q][2] + s[q][3]);
}

PML_VECTOR_CLONES static void ln_rows(int rows, const float *a, const float *b, float *h, int64_t n, float eps,
                                      const float *w, const float *bias, float *out, const pml_cpu_ln_keep *keep)
{
    const float *x[4];
    float *o[4];
    for (int q = 0; q < rows; q++) {
        x[q] = a + q * n, o[q] = out + q * n;
        if (b) { /* h = a + b, the residual sum the group also materialises */
            for (int64_t c = 0; c < n; c++) h[q * n + c] = a[q * n + c] + b[q * n + c];
            x[q] = h + q * n;
        }
    }
    double sum[4], sq[4];
    row_sums(x, rows, n, 0, sum);
    for (int q = 0; q < rows; q++) {
        float mean = (float)(sum[q] / (double)n);
        if (keep && keep->mean) keep->mean[q] = mean;
        for (int64_t c = 0; c < n; c++) o[q][c] = x[q][c] - mean; /* xc */
    }
    row_sums((const float *const *)o, rows, n, 1, sq);
    float *norm = keep ? keep->norm : NULL;
    for (int q = 0; q < rows; q++) {
        float var = (float)(sq[q] / (double)n), r = 1.0f / sqrtf(var + eps);
        if (keep && keep->var) keep->var[q] = var;
        if (norm)
            for (int64_t c = 0; c < n; c++) {
                float t = o[q][c] * r;
                norm[q * n + c] = t;
                t = t * w[c];
                o[q][c] = t + bias[c];
            }
        else
            for (int64_t c = 0; c < n; c++) {
                float t = o[q][c] * r;
                t = t * w[c];
                o[q][c] = t + bias[c];
            }
    }
}

void pml_cpu_layernorm_rows(int rows, const float *a, const float *b, float *h, int64_t n, float eps, const float *w,
                            const float *bias, float *out, const pml_cpu_ln_keep *keep)
{
    ln_rows(rows, a, b, h, n, eps, w, bias, out, keep);
}

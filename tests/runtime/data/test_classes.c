/* test_classes.c — classes(features, classes, seed): balanced classes, a task that a
 * learner from samples gets right (1-NN, a small MLP) while a linear model clearly does
 * not, and an honest Bayes accuracy near the 98.5% it is designed for. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/synth.h"
#include "data_test.h"

static pml_synth *make(int64_t features, int64_t classes, uint64_t seed)
{
    pml_synth_params p = {.features = features, .classes = classes, .seed = seed};
    pml_synth *g = NULL;
    pml_err e = {0};
    if (pml_synth_create(&g, PML_SYNTH_CLASSES, &p, &e) != PML_OK) fprintf(stderr, "create: %s\n", e.msg);
    return g;
}

/* n samples from index `first`: inputs x[n][f] and labels y[n]. */
static void draw(const pml_synth *g, uint64_t first, int n, int f, float **x, int32_t **y)
{
    *x = malloc((size_t)n * (size_t)f * sizeof **x);
    *y = malloc((size_t)n * sizeof **y);
    for (int i = 0; i < n; i++) pml_synth_sample(g, first + (uint64_t)i, *x + (size_t)i * f, *y + i);
}

static void classes_are_balanced(void)
{
    enum { N = 100000, C = 10 };
    pml_synth *g = make(4, C, 1);
    int count[C] = {0};
    for (uint64_t i = 0; i < N; i++) {
        int32_t y = -1;
        pml_synth_sample(g, i, NULL, &y);
        if (y >= 0 && y < C) count[y]++;
    }
    int total = 0;
    for (int c = 0; c < C; c++) {
        total += count[c];
        CHECK(fabs((double)count[c] - N / C) < 5 * sqrt(N / C)); /* within 5 standard deviations */
    }
    CHECK(total == N);
    pml_synth_destroy(g);
}

/* Inputs have features of order 1 (what an MLP's initialisation expects). */
static void features_have_unit_scale(void)
{
    enum { N = 2000, F = 784 };
    pml_synth *g = make(F, 10, 1);
    float *x;
    int32_t *y;
    draw(g, 0, N, F, &x, &y);
    double sq = 0;
    int finite = 1;
    for (size_t k = 0; k < (size_t)N * F; k++) sq += (double)x[k] * x[k], finite &= isfinite(x[k]);
    double var = sq / ((double)N * F);
    printf("classes(784, 10, 1): mean square feature %.3f\n", var);
    CHECK(finite && var > 0.5 && var < 20);
    free(x), free(y);
    pml_synth_destroy(g);
}

/* The fraction of test samples whose nearest training sample has their label. */
static double nearest_neighbour(const float *x, const int32_t *y, int train, int test, int f)
{
    int right = 0;
    for (int t = train; t < train + test; t++) {
        double best = INFINITY;
        int32_t label = -1;
        for (int i = 0; i < train; i++) {
            double s = 0;
            for (int q = 0; q < f; q++) {
                double d = (double)x[(size_t)t * f + q] - x[(size_t)i * f + q];
                s += d * d;
            }
            if (s < best) best = s, label = y[i];
        }
        right += label == y[t];
    }
    return (double)right / test;
}

/* Ridge least squares onto one-hot labels (with a bias), the best linear classifier a
 * closed form gives; returns its test accuracy. Normal equations, by Cholesky. */
static double linear_least_squares(const float *x, const int32_t *y, int train, int test, int f, int classes)
{
    int d = f + 1;
    double *a = calloc((size_t)d * d, sizeof *a), *b = calloc((size_t)d * classes, sizeof *b);
    double *w = calloc((size_t)d * classes, sizeof *w), *z = calloc((size_t)d, sizeof *z);
    for (int i = 0; i < train; i++)
        for (int p = 0; p < d; p++) {
            double xp = p < f ? x[(size_t)i * f + p] : 1;
            for (int q = 0; q <= p; q++) a[p * d + q] += xp * (q < f ? x[(size_t)i * f + q] : 1);
            b[p * classes + y[i]] += xp;
        }
    for (int p = 0; p < d; p++) a[p * d + p] += 1e-3 * train;
    for (int j = 0; j < d; j++) { /* a = L L^T, L in the lower triangle */
        double s = a[j * d + j];
        for (int k = 0; k < j; k++) s -= a[j * d + k] * a[j * d + k];
        a[j * d + j] = sqrt(s);
        for (int i = j + 1; i < d; i++) {
            double t = a[i * d + j];
            for (int k = 0; k < j; k++) t -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = t / a[j * d + j];
        }
    }
    for (int c = 0; c < classes; c++) {
        for (int i = 0; i < d; i++) {
            double t = b[i * classes + c];
            for (int j = 0; j < i; j++) t -= a[i * d + j] * z[j];
            z[i] = t / a[i * d + i];
        }
        for (int i = d - 1; i >= 0; i--) {
            double t = z[i];
            for (int j = i + 1; j < d; j++) t -= a[j * d + i] * w[j * classes + c];
            w[i * classes + c] = t / a[i * d + i];
        }
    }
    int right = 0;
    for (int t = train; t < train + test; t++) {
        int best = 0;
        double best_score = -INFINITY;
        for (int c = 0; c < classes; c++) {
            double s = w[f * classes + c];
            for (int q = 0; q < f; q++) s += x[(size_t)t * f + q] * w[q * classes + c];
            if (s > best_score) best_score = s, best = c;
        }
        right += best == y[t];
    }
    free(a), free(b), free(w), free(z);
    return (double)right / test;
}

/* 1-NN on 2000 samples beats 90% on held-out ones; the best least-squares linear
 * classifier on the same samples is at least 8 points worse. */
static void learnable_but_not_linear(void)
{
    enum { TRAIN = 2000, TEST = 1000, F = 32, C = 10 };
    pml_synth *g = make(F, C, 1);
    float *x;
    int32_t *y;
    draw(g, 0, TRAIN + TEST, F, &x, &y);
    double nn = nearest_neighbour(x, y, TRAIN, TEST, F), lin = linear_least_squares(x, y, TRAIN, TEST, F, C);
    printf("classes(%d, %d, 1): 1-NN %.3f, linear least squares %.3f\n", F, C, nn, lin);
    CHECK(nn > 0.90);
    CHECK(lin < nn - 0.08);
    free(x), free(y);
    pml_synth_destroy(g);
}

/* A 784-64-10 ReLU MLP trained with Adam (batch 64, lr 1e-3) for 300 steps reaches at
 * least 95% on held-out samples: the promise the language's examples rely on. */
static void small_mlp_learns_it(void)
{
    enum { F = 784, C = 10, H = 64, B = 64, STEPS = 300, TEST = 1000 };
    pml_synth *g = make(F, C, 1);
    size_t np = (size_t)F * H + H + (size_t)H * C + C;
    float *w = calloc(np, sizeof *w), *gr = calloc(np, sizeof *gr), *m1 = calloc(np, sizeof *m1),
          *m2 = calloc(np, sizeof *m2);
    float *w1 = w, *b1 = w1 + F * H, *w2 = b1 + H, *b2 = w2 + H * C;
    float *g1 = gr, *gb1 = g1 + F * H, *g2 = gb1 + H, *gb2 = g2 + H * C;
    for (int k = 0; k < F * H; k++) w1[k] = (float)(pml_rng_normal(7, 1, (uint64_t)k) / sqrt(F));
    for (int k = 0; k < H * C; k++) w2[k] = (float)(pml_rng_normal(7, 2, (uint64_t)k) / sqrt(H));
    float x[F], h[H], o[C], dh[H];
    for (int s = 1; s <= STEPS + 1; s++) {
        int testing = s > STEPS, n = testing ? TEST : B, right = 0;
        memset(gr, 0, np * sizeof *gr);
        for (int b = 0; b < n; b++) {
            int32_t y;
            pml_synth_sample(g, testing ? (1ull << 40) + (uint64_t)b : (uint64_t)(s * B + b), x, &y);
            for (int j = 0; j < H; j++) {
                float a = b1[j];
                for (int i = 0; i < F; i++) a += x[i] * w1[i * H + j];
                h[j] = a > 0 ? a : 0;
            }
            float top = -INFINITY, sum = 0;
            int best = 0;
            for (int k = 0; k < C; k++) {
                o[k] = b2[k];
                for (int j = 0; j < H; j++) o[k] += h[j] * w2[j * C + k];
                if (o[k] > top) top = o[k], best = k;
            }
            right += best == y;
            if (testing) continue;
            for (int k = 0; k < C; k++) sum += o[k] = expf(o[k] - top);
            for (int k = 0; k < C; k++) o[k] = (o[k] / sum - (k == y)) / B; /* d loss / d logit */
            for (int j = 0; j < H; j++) {
                float d = 0;
                for (int k = 0; k < C; k++) d += o[k] * w2[j * C + k], g2[j * C + k] += h[j] * o[k];
                dh[j] = h[j] > 0 ? d : 0;
                gb1[j] += dh[j];
            }
            for (int k = 0; k < C; k++) gb2[k] += o[k];
            for (int i = 0; i < F; i++)
                for (int j = 0; j < H; j++) g1[i * H + j] += x[i] * dh[j];
        }
        if (testing) {
            printf("classes(784, 10, 1): MLP after %d steps: %.3f held-out accuracy\n", STEPS, (double)right / TEST);
            CHECK((double)right / TEST >= 0.95);
            break;
        }
        float c1 = 1 - powf(0.9f, (float)s), c2 = 1 - powf(0.999f, (float)s);
        for (size_t k = 0; k < np; k++) {
            m1[k] = 0.9f * m1[k] + 0.1f * gr[k];
            m2[k] = 0.999f * m2[k] + 0.001f * gr[k] * gr[k];
            w[k] -= 1e-3f * (m1[k] / c1) / (sqrtf(m2[k] / c2) + 1e-8f);
        }
    }
    free(w), free(gr), free(m1), free(m2);
    pml_synth_destroy(g);
}

/* The Monte Carlo Bayes accuracy is near the design's 98.5% at several sizes, and
 * repeatable (a pure function of the seed). */
static void bayes_accuracy_is_near_design(void)
{
    int64_t sizes[][2] = {{784, 10}, {2, 2}, {16, 100}, {64, 3}};
    for (int k = 0; k < 4; k++) {
        pml_synth *g = make(sizes[k][0], sizes[k][1], 1);
        double a = 0, again = 1;
        CHECK(pml_synth_bayes_accuracy(g, 20000, &a, NULL) == PML_OK);
        CHECK(pml_synth_bayes_accuracy(g, 20000, &again, NULL) == PML_OK && a == again);
        printf("classes(%lld, %lld, 1): Bayes accuracy %.4f (20000 samples)\n", (long long)sizes[k][0],
               (long long)sizes[k][1], a);
        CHECK(a > 0.97 && a < 0.995);
        pml_synth_destroy(g);
    }
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"classes_are_balanced", classes_are_balanced},
        {"features_have_unit_scale", features_have_unit_scale},
        {"learnable_but_not_linear", learnable_but_not_linear},
        {"small_mlp_learns_it", small_mlp_learns_it},
        {"bayes_accuracy_is_near_design", bayes_accuracy_is_near_design},
    };
    return data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
}

/* test_gemm_int8.c — cpu/gemm_int8.h against references computed here:
 *   exact   pml_cpu_gemm_s8s32 equals a plain int32 loop bit for bit on odd shapes
 *           (1x1x1 up to 33x67x785, padded leading dimensions, the int8 extremes),
 *           every output element poisoned first and the padding left alone
 *   linear  pml_cpu_linear_i8 equals the same per-row quantization done here, dequantized
 *           in double (to 1e-6 of |product| + |bias|: f32 rounding), and stays within 2% of the f32 product
 *   linear_static  the same with a static activation scale (one for every row, 1 / a,
 *           clamped to +-127), at the rows' own max|x| / 127 (within 3% of f32: the small
 *           rows get a coarser step) and at half of it (some inputs clamp; within 20%)
 *   packed  the AVX512-VNNI kernel on packed weights equals the weight-as-given path bit
 *           for bit (skipped, and said, on a CPU without AVX512_VNNI)
 *   mapped  pml_cpu_quantize_i8 reading rows gathered by offsets (runs of 16 in a
 *           shuffled order, rows reversed) and pml_cpu_linear_i8_rows writing through
 *           offsets (rows spread apart, 16-column runs shuffled, in column blocks) give
 *           pml_cpu_linear_i8's bits on the same matrix, on packed weights and as given,
 *           odd shapes, the output poisoned and every element it does not own left so */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemm_int8.h"

static int fails;
#define CHECK(c)                                                        \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #c); \
            fails++;                                                    \
        }                                                               \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static int next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int)(rng >> 33);
}

static void exact(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {1, 10, 784}, {7, 13, 33}, {33, 67, 785}, {5, 1, 64}, {2, 3, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], lda = k + 3, ldb = k + 5, ldc = n + 2;
        int8_t *a = malloc((size_t)(m * lda) + 1), *b = malloc((size_t)(n * ldb) + 1);
        int32_t *c = malloc(sizeof(int32_t) * (size_t)(m * ldc));
        for (int64_t i = 0; i < m * lda; i++) a[i] = (int8_t)(s == 4 ? -127 : next() % 255 - 127);
        for (int64_t i = 0; i < n * ldb; i++) b[i] = (int8_t)(s == 4 ? -127 : next() % 255 - 127);
        memset(c, 0x7f, sizeof(int32_t) * (size_t)(m * ldc)); /* poison: a missed element shows */
        CHECK(pml_cpu_gemm_s8s32(m, n, k, a, lda, b, ldb, c, ldc) == 0);
        int bad = 0;
        for (int64_t i = 0; i < m; i++) {
            for (int64_t j = 0; j < n; j++) {
                int32_t want = 0;
                for (int64_t p = 0; p < k; p++) want += (int32_t)a[i * lda + p] * b[j * ldb + p];
                bad += c[i * ldc + j] != want;
            }
            for (int64_t j = n; j < ldc; j++) bad += c[i * ldc + j] != 0x7f7f7f7f; /* padding untouched */
        }
        if (bad) fprintf(stderr, "%lldx%lldx%lld: %d wrong elements\n", (long long)m, (long long)n, (long long)k, bad);
        CHECK(bad == 0);
        free(a), free(b), free(c);
    }
    int32_t c1;
    int8_t one = 1;
    CHECK(pml_cpu_gemm_s8s32(1, 1, 200000, &one, 200000, &one, 200000, &c1, 1) == -1); /* could overflow */
    fprintf(stderr, "int8 GEMM provider: %s\n", pml_cpu_gemm_s8_provider());
}

/* fixed > 0: a static activation scale of `fixed` times the largest |x| / 127 (below 1:
 * the largest values clamp to +-127); 0: per-row dynamic scales. */
static void linear(float fixed)
{
    const int64_t m = 9, n = 37, k = 301;
    float *x = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k), *ws = malloc(sizeof(float) * n);
    float *b = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * m * n);
    int8_t *wq = malloc((size_t)(n * k));
    void *scratch = malloc(pml_cpu_linear_i8_scratch(m, n, k));
    for (int64_t i = 0; i < m * k; i++) x[i] = (float)(next() % 2001 - 1000) / 700.0f * (i / k == 3 ? 0 : 1);
    for (int64_t i = 0; i < n * k; i++) w[i] = (float)(next() % 2001 - 1000) / 9000.0f;
    for (int64_t j = 0; j < n; j++) b[j] = (float)j / 10 - 1;
    for (int64_t j = 0; j < n; j++) { /* per-channel weights, as quant/int8.c makes them */
        float mx = 0;
        for (int64_t p = 0; p < k; p++) mx = fmaxf(mx, fabsf(w[j * k + p]));
        ws[j] = mx / 127;
        for (int64_t p = 0; p < k; p++) wq[j * k + p] = (int8_t)nearbyintf(w[j * k + p] / ws[j]);
    }
    for (int64_t i = 0; i < m * n; i++) y[i] = NAN; /* poison */
    float all = 0;
    for (int64_t i = 0; i < m * k; i++) all = fmaxf(all, fabsf(x[i]));
    float a = fixed > 0 ? fixed * all / 127.0f : 0.0f;
    CHECK(pml_cpu_linear_i8(m, n, k, x, a, wq, NULL, ws, b, y, n, scratch) == 0);
    long clamped = 0;
    double worst_q = 0, worst_f = 0, big = 0;
    for (int64_t i = 0; i < m; i++) {
        float mx = 0;
        for (int64_t p = 0; p < k; p++) mx = fmaxf(mx, fabsf(x[i * k + p]));
        float s = mx > 0 ? mx / 127.0f : 0, inv = mx > 0 ? 127.0f / mx : 0;
        if (a > 0) s = a, inv = 1.0f / a;
        for (int64_t j = 0; j < n; j++) {
            long acc = 0;
            double f = b[j];
            for (int64_t p = 0; p < k; p++) {
                float v = nearbyintf(x[i * k + p] * inv);
                clamped += j == 0 && fabsf(v) > 127;
                acc += (long)fmaxf(-127.0f, fminf(127.0f, v)) * wq[j * k + p];
                f += (double)x[i * k + p] * w[j * k + p];
            }
            double want = (double)acc * s * ws[j] + b[j], got = y[i * n + j];
            worst_q = fmax(worst_q, fabs(got - want) / (fabs((double)acc * s * ws[j]) + fabs(b[j]) + 1e-30));
            worst_f = fmax(worst_f, fabs(got - f));
            big = fmax(big, fabs(f));
            CHECK(isfinite(got));
        }
    }
    fprintf(stderr, "static scale %g (%ld inputs clamped): vs the same quantization: %.2e relative; vs f32: %.4f of "
            "max |y| %.3f\n", (double)a, clamped, worst_q, worst_f, big);
    CHECK(worst_q < 1e-6);
    CHECK(fixed > 0 && fixed < 1 ? clamped > 0 : clamped == 0); /* the clamp is exercised where it should be */
    CHECK(worst_f < (fixed > 0 && fixed < 1 ? 0.2 : fixed > 0 ? 0.03 : 0.02) * big);
    for (int64_t j = 0; j < n; j++) CHECK(y[3 * n + j] == b[j]); /* a zero row: the bias alone */
    free(x), free(w), free(ws), free(b), free(y), free(wq), free(scratch);
}

/* The packed AVX512-VNNI path against the weight as given, bit for bit: odd shapes (n
 * not a multiple of 16 or 64, k not of 4, every row count of the kernel's 4-row blocks), with and without
 * a bias, dynamic and static scales, the int8 extremes, the whole product and column
 * blocks from a multiple of PML_CPU_S8_COLS into a wider output; outputs poisoned, padding kept. */
static void packed(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1},  {1, 10, 784}, {4, 16, 4},    {5, 17, 3},  {9, 37, 301},
                                        {3, 64, 128}, {7, 100, 257}, {33, 130, 65}, {2, 48, 2},
                                        {6, 64, 128}, {13, 200, 129}, {12, 65, 5},  {11, 192, 64}};
    if (!pml_cpu_s8_packed_bytes(16, 16)) {
        fprintf(stderr, "skipped: this CPU has no AVX512_VNNI, so int8 weights are served as given\n");
        int8_t w = 1;
        float x = 1, ws = 1, y = 0;
        char scratch[64];
        CHECK(pml_cpu_linear_i8(1, 1, 1, &x, 0, NULL, &w, &ws, NULL, &y, 1, scratch) == -1); /* refused */
        return;
    }
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int variant = 0; variant < 4; variant++) {
            int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ldy = n + 3;
            int extreme = s == 4 && variant == 3;
            float *x = malloc(sizeof(float) * m * k), *ws = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            float *want = malloc(sizeof(float) * m * ldy), *got = malloc(sizeof(float) * m * ldy);
            int8_t *wq = malloc((size_t)(n * k));
            void *wp = aligned_alloc(64, (pml_cpu_s8_packed_bytes(n, k) + 63) / 64 * 64);
            void *scratch = malloc(pml_cpu_linear_i8_scratch(m, n, k));
            for (int64_t i = 0; i < m * k; i++) x[i] = extreme ? -3.0f : (float)(next() % 2001 - 1000) / 300.0f;
            for (int64_t i = 0; i < n * k; i++) wq[i] = (int8_t)(extreme ? -127 : next() % 255 - 127);
            for (int64_t j = 0; j < n; j++) ws[j] = (float)(next() % 1000 + 1) / 1e5f, b[j] = (float)j / 7 - 2;
            pml_cpu_s8_pack(n, k, wq, wp);
            float xs = variant & 1 ? 2.5f / 127.0f : 0.0f; /* static: some inputs clamp */
            const float *bias = variant & 2 ? b : NULL;
            for (int64_t i = 0; i < m * ldy; i++) want[i] = got[i] = NAN;
            CHECK(pml_cpu_linear_i8(m, n, k, x, xs, wq, NULL, ws, bias, want, ldy, scratch) == 0);
            /* the whole product, then again in column blocks from every multiple of the packing's block */
            CHECK(pml_cpu_linear_i8(m, n, k, x, xs, NULL, wp, ws, bias, got, ldy, scratch) == 0);
            int bad = 0;
            for (int64_t i = 0; i < m * ldy; i++)
                bad += i % ldy < n ? memcmp(&want[i], &got[i], 4) != 0 : !isnan(got[i]);
            for (int64_t i = 0; i < m * ldy; i++) got[i] = NAN;
            for (int64_t j0 = 0; j0 < n; j0 += PML_CPU_S8_COLS) {
                int64_t w = n - j0 < PML_CPU_S8_COLS ? n - j0 : PML_CPU_S8_COLS;
                CHECK(pml_cpu_linear_i8(m, w, k, x, xs, NULL, pml_cpu_s8_packed_cols(wp, k, j0), ws + j0,
                                        bias ? bias + j0 : NULL, got + j0, ldy, scratch) == 0);
            }
            for (int64_t i = 0; i < m * ldy; i++)
                bad += i % ldy < n ? memcmp(&want[i], &got[i], 4) != 0 : !isnan(got[i]);
            if (bad)
                fprintf(stderr, "%lldx%lldx%lld variant %d: %d elements differ from the unpacked path\n",
                        (long long)m, (long long)n, (long long)k, variant, bad);
            CHECK(bad == 0);
            free(x), free(ws), free(b), free(want), free(got), free(wq), free(wp), free(scratch);
        }
}

/* A permutation of 0..n-1 (a fixed shuffle). */
static void shuffle(int64_t *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) v[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = next() % (i + 1), t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

static void mapped(void)
{
    static const int64_t shapes[][3] = {{1, 16, 16}, {15, 144, 48}, {5, 37, 32}, {9, 130, 192}, {4, 64, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int packed = 0; packed < 2; packed++) {
            int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], nc = (n + 15) / 16, kc = k / 16;
            if (packed && !pml_cpu_s8_packed_bytes(n, k)) continue;
            /* x: m rows in reverse order, each row's 16-runs at shuffled places of a wider buffer */
            int64_t *xrow = malloc(sizeof(int64_t) * m), *xcol = malloc(sizeof(int64_t) * kc), *perm = malloc(sizeof(int64_t) * (kc + nc));
            int64_t xw = k + 16; /* room between rows */
            float *xbig = malloc(sizeof(float) * m * xw), *x = malloc(sizeof(float) * m * k), *tmp = malloc(sizeof(float) * k);
            shuffle(perm, kc);
            for (int64_t c = 0; c < kc; c++) xcol[c] = 16 * perm[c];
            for (int64_t i = 0; i < m; i++) xrow[i] = (m - 1 - i) * xw;
            for (int64_t i = 0; i < m * xw; i++) xbig[i] = NAN; /* never read */
            for (int64_t i = 0; i < m; i++)
                for (int64_t p = 0; p < k; p++)
                    xbig[xrow[i] + xcol[p / 16] + p % 16] = x[i * k + p] = (float)(next() % 2001 - 1000) / 300.0f;
            /* y: rows 2 n + 32 apart, the 16-column runs shuffled within each row's first 16 nc */
            int64_t yw = 2 * 16 * nc + 32, *yrow = malloc(sizeof(int64_t) * m), *ycol = malloc(sizeof(int64_t) * nc);
            shuffle(perm, nc);
            for (int64_t c = 0; c < nc; c++) ycol[c] = 16 * perm[c];
            for (int64_t i = 0; i < m; i++) yrow[i] = i * yw + 7;
            float *ybig = malloc(sizeof(float) * m * yw), *want = malloc(sizeof(float) * m * n);
            int8_t *wq = malloc((size_t)(n * k) + 1), *xq = malloc((size_t)(m * pml_cpu_i8_row_bytes(k, 1)) + 1);
            float *ws = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *xs = malloc(sizeof(float) * m);
            void *wp = packed ? aligned_alloc(64, (pml_cpu_s8_packed_bytes(n, k) + 63) / 64 * 64) : NULL;
            void *scratch = malloc(pml_cpu_linear_i8_scratch(m, n, k));
            int32_t *acc = malloc(sizeof(int32_t) * (size_t)(m * n) + 4);
            for (int64_t i = 0; i < n * k; i++) wq[i] = (int8_t)(next() % 255 - 127);
            for (int64_t j = 0; j < n; j++) ws[j] = (float)(next() % 1000 + 1) / 1e5f, b[j] = (float)j / 7 - 2;
            if (wp) pml_cpu_s8_pack(n, k, wq, wp);
            CHECK(pml_cpu_linear_i8(m, n, k, x, 0.0f, wp ? NULL : wq, wp, ws, b, want, n, scratch) == 0);
            for (int64_t i = 0; i < m * yw; i++) ybig[i] = NAN;
            pml_cpu_quantize_i8(m, &(pml_cpu_i8_in){.x = xbig, .k = k, .row = xrow, .col16 = xcol, .tmp = tmp}, 0.0f,
                                packed, xq, xs);
            for (int64_t j0 = 0; j0 < n; j0 += PML_CPU_S8_COLS) { /* in column blocks, as a stage's tasks */
                int64_t w = n - j0 < PML_CPU_S8_COLS ? n - j0 : PML_CPU_S8_COLS;
                pml_cpu_i8_out o = {.y = ybig, .row = yrow, .col16 = ycol + j0 / 16};
                CHECK(pml_cpu_linear_i8_rows(m, w, k, xq, xs, wp ? NULL : wq + j0 * k,
                                             wp ? pml_cpu_s8_packed_cols(wp, k, j0) : NULL, ws + j0, b + j0, &o,
                                             acc) == 0);
            }
            int bad = 0, owned = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    float *at = &ybig[yrow[i] + ycol[j / 16] + j % 16];
                    bad += memcmp(at, &want[i * n + j], 4) != 0;
                    *at = INFINITY; /* counted */
                }
            for (int64_t i = 0; i < m * yw; i++) owned += ybig[i] == INFINITY, bad += ybig[i] != INFINITY && !isnan(ybig[i]);
            if (bad)
                fprintf(stderr, "mapped %lldx%lldx%lld (%s): %d elements wrong or written outside\n", (long long)m,
                        (long long)n, (long long)k, packed ? "packed" : "as given", bad);
            CHECK(bad == 0 && owned == m * n);
            free(xrow), free(xcol), free(perm), free(xbig), free(x), free(tmp), free(yrow), free(ycol), free(ybig);
            free(want), free(wq), free(xq), free(ws), free(b), free(xs), free(wp), free(scratch), free(acc);
        }
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    if (!strcmp(argv[1], "exact")) exact();
    else if (!strcmp(argv[1], "linear")) linear(0);
    else if (!strcmp(argv[1], "packed")) packed();
    else if (!strcmp(argv[1], "mapped")) mapped();
    else if (!strcmp(argv[1], "linear_static")) {
        linear(1.0f);  /* the scale calibration gives on these very rows: nothing clamps */
        linear(0.5f);  /* half of it: the largest inputs clamp to +-127 */
    }
    else return 2;
    if (fails) fprintf(stderr, "%d failure(s)\n", fails);
    return fails != 0;
}

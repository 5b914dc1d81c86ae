/* test_infer_calls.c — what a serving loop needs of pml_infer_run, through pml.h:
 *
 *   no_allocation   after two warm-up calls, a call allocates nothing in PML's code:
 *                   malloc and its kin are wrapped (below) and counted around 20
 *                   calls, at 1 and 2 threads
 *   threads_agree   the outputs at 2 and 3 threads are those at 1 within 1e-6 of their
 *                   largest magnitude (the GEMM provider may split a sum differently)
 *   threads_agree_two_stages  the same for the model cut into two stages, which share
 *                   one pool of threads (they run in turn)
 *   block_threads_agree  a transformer block's outputs (embedding, attention and its
 *                   copies, products of 1024 rows) at 2 and 3 threads are the bits of
 *                   those at 1, written over NaN: every op it runs splits without
 *                   reordering a sum (the panel GEMM, attention, fused groups, copies)
 *   int8_no_allocation  the same as no_allocation with int8 weights (pml_quantize_weights
 *                   of the initial weights): its 3 layers compute with int8 products, whose
 *                   scratch is the stage's, not a call's
 *   int8_calibrated_no_allocation  the same with static activation scales
 *                   (pml_quantize_weights_calibrated over 45 rows: a partial micro-batch),
 *                   the session's note saying so, on the model cut into two stages
 *
 * Usage: test_infer_calls BEHAVIOUR. Not built with sanitizers, which own malloc. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _DEFAULT_SOURCE   /* mkdtemp */
#include <ftw.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pml.h"
#include "pmlc.h"

/* ---- counting allocator ------------------------------------------------------------
 * The link wraps malloc and its kin (-Wl,--wrap, tests/runtime/infer/CMakeLists.txt) in
 * this program and the static libpml and compiler linked into it: PML's own calls are
 * counted, not those of the shared libraries it calls (oneDNN's sgemm takes a 16 KiB
 * packing buffer per call inside the library; docs/design.md says why that stays). */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t k);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **out, size_t align, size_t n);

static atomic_long allocations;
volatile int pml_test_counting; /* 1 around the counted calls: a breakpoint condition for finding an allocation */

void *__wrap_malloc(size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t k)
{
    atomic_fetch_add(&allocations, 1);
    return __real_calloc(n, k);
}

void *__wrap_realloc(void *p, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **out, size_t align, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __real_posix_memalign(out, align, n);
}

/* ---- the model: one stage, wide enough that GEMMs take threads; and the same model
 * cut into two stages, which an inference session runs in turn on one pool ---------- */
#define TRAIN                                                                                                         \
    "train wide {\n"                                                                                                  \
    "    data = classes(features = 64, classes = 16, seed = 1)\n"                                                     \
    "    loss = cross_entropy\n"                                                                                      \
    "    optimizer = sgd(lr = 0.1)\n"                                                                                 \
    "    batch = 32, microbatches = 1\n"                                                                              \
    "    steps = 1\n"                                                                                                 \
    "}\n"
static const char MODEL[] = "import \"nn\"\n"
                            "model wide(x: f32[B, 64]) -> f32[B, 16] {\n"
                            "    h = gelu(linear(x, 256) as fc1)\n"
                            "    h = layernorm(h) as norm\n"
                            "    h = gelu(linear(h, 256) as fc2)\n"
                            "    return linear(h, 16) as head\n"
                            "}\n" TRAIN;
static const char MODEL_TWO_STAGES[] = "import \"nn\"\n"
                                       "model wide(x: f32[B, 64]) -> f32[B, 16] {\n"
                                       "    stage 0 { h = layernorm(gelu(linear(x, 256) as fc1)) as norm }\n"
                                       "    stage 1 {\n"
                                       "        h = gelu(linear(h, 256) as fc2)\n"
                                       "        return linear(h, 16) as head\n"
                                       "    }\n"
                                       "}\n" TRAIN;
enum { ROWS = 32, F = 64, C = 16 };

/* ---- a transformer block: attention and the copies around it (the heads cut from the
 * qkv product and put back), split over the pool, and products of 16 x 64 = 1024 rows,
 * which a pool splits by blocks of rows -------------------------------------------- */
static const char MODEL_BLOCK[] = "import \"nn\"\n"
                                  "model gpt(idx: i32[B, T]) -> f32[B, T, 16] {\n"
                                  "    h = embedding(idx, 16, 64) as wte\n"
                                  "    h = block(h, 4) as b0\n"
                                  "    return linear(layernorm(h) as ln_f, 16) as head\n"
                                  "}\n"
                                  "train gpt {\n"
                                  "    data = markov(vocab = 16, order = 2, seed = 1)\n"
                                  "    loss = cross_entropy\n"
                                  "    optimizer = sgd(lr = 0.1)\n"
                                  "    batch = 16, microbatches = 1\n"
                                  "    steps = 1\n"
                                  "    T = 64\n"
                                  "}\n";
enum { SEQS = 16, TOKENS = 64 };

static pml_context *ctx;
static int failures;
static int want_static; /* the int8 file has static activation scales */

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "%s:%d: FAIL: %s (%s)\n", __FILE__, __LINE__, #cond, pml_context_error(ctx));            \
            failures++;                                                                                               \
        }                                                                                                             \
    } while (0)

static pml_plan *compile(const char *model)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *cs = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_plan *plan = NULL;
    if (!pmlc_session_check_text(cs, "wide.pml", model, strlen(model)) && !pmlc_session_plan_bytes(cs, &bytes, &len))
        pml_plan_open_memory(ctx, bytes, len, "wide.pml", &plan);
    pmlc_session_destroy(cs);
    free(bytes);
    return plan;
}

/* The outputs of the model's initial weights on fixed rows at `threads`; returns the
 * allocations made by 20 calls after two warm-up calls in *allocs. */
static int run(const pml_plan *plan, int threads, const char *weights, float *y, long *allocs)
{
    static float x[ROWS * F];
    for (int i = 0; i < ROWS * F; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    pml_buffer bx = {x, PML_F32, 2, {ROWS, F}, NULL};
    pml_infer *inf = NULL;
    if (pml_infer_create(ctx, plan, PML_BACKEND_CPU, threads, weights, &inf)) return 1;
    if (weights && (pml_infer_int8_served(inf) != 3 ||
                    !strstr(pml_infer_int8_note(inf), want_static ? "static calibrated" : "per-row"))) {
        fprintf(stderr, "FAIL: %d of %d int8 weights compute in int8: %s\n", pml_infer_int8_served(inf),
                pml_infer_int8_weights(inf), pml_infer_int8_note(inf));
        pml_infer_destroy(inf);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < 2; i++) bad |= pml_infer_run(inf, &bx, 1, y, sizeof(float) * ROWS * C) != PML_OK;
    long before = atomic_load(&allocations);
    pml_test_counting = 1;
    for (int i = 0; i < 20; i++) bad |= pml_infer_run(inf, &bx, 1, y, sizeof(float) * ROWS * C) != PML_OK;
    pml_test_counting = 0;
    *allocs = atomic_load(&allocations) - before;
    pml_infer_destroy(inf);
    return bad;
}

/* MODEL_BLOCK's outputs on fixed tokens at `threads` into y, poisoned (NaN) first, so a
 * part no task wrote would show. */
static int run_block(const pml_plan *plan, int threads, float *y, size_t n)
{
    static int32_t idx[SEQS * TOKENS];
    for (int i = 0; i < SEQS * TOKENS; i++) idx[i] = (i * 7 + i / 5) % 16;
    for (size_t i = 0; i < n; i++) y[i] = NAN;
    pml_buffer b = {idx, PML_I32, 2, {SEQS, TOKENS}, NULL};
    pml_infer *inf = NULL;
    if (pml_infer_create(ctx, plan, PML_BACKEND_CPU, threads, NULL, &inf)) return 1;
    int bad = 0;
    for (int i = 0; i < 2 && !bad; i++) bad = pml_infer_run(inf, &b, 1, y, sizeof(float) * n) != PML_OK;
    pml_infer_destroy(inf);
    return bad;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* An int8 file of the model's initial weights in a fresh folder under /tmp (its path in
 * q, the folder in dir, which the caller removes); calibrated: with static activation
 * scales from 45 rows. */
static int int8_weights(const pml_plan *plan, int calibrated, char *dir, char *q, size_t cap)
{
    static float rows[45 * F];
    pml_session *s = NULL;
    char ck[512], cal[512];
    if (!mkdtemp(dir)) return 1;
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(cal, sizeof cal, "%s/cal.npy", dir);
    snprintf(q, cap, "%s/q.safetensors", dir);
    for (int i = 0; i < 45 * F; i++) rows[i] = (float)((i * 53) % 97) / 40.0f - 1.2f;
    pml_buffer b = {rows, PML_F32, 2, {45, F}, NULL};
    int n = 0, bad = pml_session_create(ctx, plan, PML_BACKEND_CPU, 7, &s) || pml_session_save(s, ck) ||
                     pml_array_save(ctx, cal, &b) ||
                     pml_quantize_weights_calibrated(ctx, plan, ck, NULL, 0, NULL, calibrated ? cal : NULL, q, &n) ||
                     n != 3;
    pml_session_destroy(s);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_infer_calls no_allocation|int8_no_allocation|int8_calibrated_no_allocation|"
                        "threads_agree|threads_agree_two_stages|block_threads_agree\n");
        return 2;
    }
    if (pml_context_create(&ctx)) return 1;
    int calibrated = want_static = !strcmp(argv[1], "int8_calibrated_no_allocation");
    int two = !strcmp(argv[1], "threads_agree_two_stages") || calibrated, block = !strcmp(argv[1], "block_threads_agree");
    pml_plan *plan = compile(block ? MODEL_BLOCK : two ? MODEL_TWO_STAGES : MODEL);
    CHECK(plan != NULL);
    if (plan && (!strcmp(argv[1], "no_allocation") || !strcmp(argv[1], "int8_no_allocation") || calibrated)) {
        static float y[ROWS * C];
        char dir[] = "/tmp/pml_infer_int8_XXXXXX", q[600];
        int int8 = !strcmp(argv[1], "int8_no_allocation") || calibrated;
        CHECK(!int8 || !int8_weights(plan, calibrated, dir, q, sizeof q));
        for (int threads = 1; threads <= 2; threads++) {
            long allocs = -1;
            CHECK(!run(plan, threads, int8 ? q : NULL, y, &allocs));
            printf("%d thread(s)%s: %ld allocations in 20 calls\n", threads, int8 ? ", int8" : "", allocs);
            CHECK(allocs == 0);
        }
        if (int8) nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    } else if (plan && (!strcmp(argv[1], "threads_agree") || two)) { /* two: threads_agree_two_stages here */
        static float y1[ROWS * C], yt[ROWS * C];
        long allocs;
        CHECK(!run(plan, 1, NULL, y1, &allocs));
        for (int threads = 2; threads <= 3; threads++) {
            CHECK(!run(plan, threads, NULL, yt, &allocs));
            double worst = 0, scale = 1;
            for (int i = 0; i < ROWS * C; i++) {
                double d = fabs((double)y1[i] - (double)yt[i]), a = fabs((double)y1[i]);
                worst = d > worst ? d : worst;
                scale = a > scale ? a : scale;
            }
            printf("%d threads: largest difference from 1 thread %.3g (outputs up to %.3g)\n", threads, worst, scale);
            CHECK(worst <= 1e-6 * scale);
        }
    } else if (plan && block) {
        enum { N = SEQS * TOKENS * 16 };
        static float y1[N], yt[N];
        CHECK(!run_block(plan, 1, y1, N));
        int finite = 1;
        for (int i = 0; i < N; i++) finite &= isfinite(y1[i]) != 0;
        CHECK(finite);
        for (int threads = 2; threads <= 3; threads++) {
            CHECK(!run_block(plan, threads, yt, N));
            int differ = 0;
            for (int i = 0; i < N; i++) differ += memcmp(&y1[i], &yt[i], sizeof(float)) != 0;
            printf("%d threads: %d of %d outputs differ from 1 thread's bits\n", threads, differ, N);
            CHECK(differ == 0);
        }
    } else if (plan) {
        fprintf(stderr, "test_infer_calls: no behaviour '%s'\n", argv[1]);
        failures++;
    }
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    if (failures) return 1;
    printf("ok\n");
    return 0;
}

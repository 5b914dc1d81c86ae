/* test_device_ranks.c — ranks whose backend keeps its tensors on a device (a GPU
 * backend's case) move them through host copies (exec/staging.h), launched by
 * ranks_test.py under mpirun with 2 or 4 processes:
 *
 *   The device here is a stand-in: the CPU backend's slots under a device kind, whose
 *   boundary and gradient buffers it lists at addresses no process can read (the real
 *   address with its top bits flipped, as unreadable as a GPU pointer), copied only by
 *   its copy_buf. So a message or a gradient sum that skipped the host copy would crash,
 *   and one that skipped the copy back would train on stale bytes: the bits would differ.
 *
 *   Each rank trains, with the CPU backend and then with the stand-in, a plain 2-stage
 *   model (activations and gradients between the ranks; with 4 processes, 2 replicas
 *   whose gradients are summed) and a model whose weight is tied across its 2 stages
 *   (the copies' gradients added across the ranks), and checks that every weight of its
 *   own stages and every step's loss are the same bits both ways.
 *
 * Every rank prints its checks; rank 0 prints "RESULT ok" or "RESULT FAIL: ...", which
 * the runner reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ops.h"
#include "compile_plan.h"
#include "cpu/stage.h"
#include "exec/dist.h"
#include "exec/feed.h"
#include "exec/mpi/dist_mpi.h"
#include "exec/pipeline.h"
#include "exec/ranks.h"

enum { STEPS = 3 };

static const char plain_text[] = "import \"nn\"\n"
                                 "model m(x: f32[B, 16]) -> f32[B, 4] {\n"
                                 "    place = auto(stages = 2)\n"
                                 "    h = tanh(linear(x, 32) as l0)\n"
                                 "    h = gelu(layernorm(linear(h, 32) as l1) as n1)\n"
                                 "    return linear(h, 4) as head\n"
                                 "}\n"
                                 "train m {\n"
                                 "    data = classes(features = 16, classes = 4, seed = 3)\n"
                                 "    loss = cross_entropy\n"
                                 "    optimizer = adamw(lr = 0.01)\n"
                                 "    grad_clip = 0.5\n"
                                 "    batch = 16, microbatches = 4, schedule = 1f1b\n"
                                 "    steps = 3, seed = 5\n"
                                 "}\n";

static const char tied_text[] = "import \"nn\"\n"
                                "model gpt(idx: i32[B, T]) -> f32[B, T, 32] {\n"
                                "    place = auto(stages = 2)\n"
                                "    param wte: [32, 32] = normal(0.02)\n"
                                "    h = gather(wte, idx)\n"
                                "    h = h + embedding(arange(dim(idx, 1)), 8, 32) as wpe\n"
                                "    h = block(h, 2) as b0\n"
                                "    h = layernorm(h) as ln_f\n"
                                "    return h @ transpose(wte)\n"
                                "}\n"
                                "train gpt {\n"
                                "    data = markov(vocab = 32, order = 1, seed = 3)\n"
                                "    loss = cross_entropy\n"
                                "    optimizer = adamw(lr = 1e-2)\n"
                                "    grad_clip = 0.5\n"
                                "    batch = 8, microbatches = 4\n"
                                "    T = 8\n"
                                "    steps = 3, seed = 5\n"
                                "}\n";

/* ---- the stand-in device ---------------------------------------------------------- */

static const uintptr_t HIDE = (uintptr_t)0xA5 << 56; /* a non-canonical address: any read faults */

static void *hidden(void *p) { return (void *)((uintptr_t)p ^ HIDE); }

static pml_status dev_boundary(pml_backend_ctx *b, int s, int kind, int64_t mb, pml_backend_buf *out, int cap, int *n,
                               pml_err *err)
{
    pml_status st = pml_cpu_backend_ops.boundary(b, s, kind, mb, out, cap, n, err);
    for (int i = 0; !st && i < *n && i < cap; i++) out[i].data = hidden(out[i].data), out[i].device = PML_DEVICE_CUDA;
    return st;
}

static pml_status dev_grads(pml_backend_ctx *b, int s, pml_backend_buf *out, int cap, int *n, pml_err *err)
{
    pml_status st = pml_cpu_backend_ops.grads(b, s, out, cap, n, err);
    for (int i = 0; !st && i < *n && i < cap; i++) out[i].data = hidden(out[i].data), out[i].device = PML_DEVICE_CUDA;
    return st;
}

static long copies[2]; /* to the host, from it */

static pml_status dev_copy_buf(pml_backend_ctx *b, int s, const pml_backend_buf *buf, void *host, int to_host,
                               pml_err *err)
{
    (void)b, (void)s, (void)err;
    void *dev = hidden(buf->data);
    memcpy(to_host ? host : dev, to_host ? dev : host, buf->bytes);
    __atomic_fetch_add(&copies[!to_host], 1, __ATOMIC_RELAXED); /* stage threads copy concurrently */
    return PML_OK;
}

/* ---- one run ------------------------------------------------------------------------ */

static int failures;
static pml_dist *dist;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("rank %d: FAIL %s:%d: ", dist->rank, __FILE__, __LINE__); \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

typedef struct outcome {
    int ok;
    double loss[STEPS];
    float *w; /* this rank's stages' weights, parameter by parameter */
    size_t n;
} outcome;

static int own(const pml_plan *pl, int q)
{
    int s = pl->nodes[pl->params[q].node].stage;
    return s >= dist->first && s < dist->last;
}

static outcome run(const pml_plan *pl, const pml_backend_ops *ops)
{
    outcome o = {0};
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    if (pml_feed_create(pl, &feed, &err)) goto out;
    pml_pipeline_opts opts = {
        .seed = 5, .threads = 1, .feed = pml_feed_fill, .feed_ctx = feed, .backend = ops, .dist = dist};
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) goto out;
    for (int k = 0; k < STEPS; k++) {
        pml_step_stats st;
        if (pml_pipeline_step(pipe, &st, &err)) goto out;
        o.loss[k] = st.loss;
    }
    for (int q = 0; q < pl->n_params; q++) o.n += own(pl, q) ? (size_t)pl->nodes[pl->params[q].node].numel : 0;
    if (!(o.w = malloc(sizeof(float) * (o.n + 1)))) goto out;
    for (int q = 0, at = 0; q < pl->n_params; q++) {
        if (!own(pl, q)) continue;
        int64_t c = pl->nodes[pl->params[q].node].numel;
        memcpy(o.w + at, pml_pipeline_param(pipe, q), sizeof(float) * (size_t)c);
        at += (int)c;
    }
    o.ok = 1;
out:
    if (!o.ok) printf("rank %d: run with backend %s: %s\n", dist->rank, ops->name, err.msg);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    return o;
}

/* The model `pl` trained on the CPU and on the stand-in to the same bits. */
static void same_bits(const char *name, const pml_plan *pl, const pml_backend_ops *dev)
{
    long before[2] = {copies[0], copies[1]};
    outcome cpu = run(pl, &pml_cpu_backend_ops), staged = run(pl, dev);
    CHECK(cpu.ok && staged.ok, "%s: a run failed", name);
    if (cpu.ok && staged.ok) {
        CHECK(cpu.n == staged.n && cpu.n > 0 && !memcmp(cpu.w, staged.w, sizeof(float) * cpu.n),
              "%s: the weights differ", name);
        CHECK(!memcmp(cpu.loss, staged.loss, sizeof cpu.loss), "%s: the losses differ (%.9g vs %.9g at step 1)", name,
              cpu.loss[0], staged.loss[0]);
        /* every step, each rank sends and receives on the one link between the stages */
        CHECK(copies[0] - before[0] >= STEPS && copies[1] - before[1] >= STEPS,
              "%s: %ld copies to the host and %ld back", name, copies[0] - before[0], copies[1] - before[1]);
    }
    printf("rank %d: %s: weights and losses compared, %ld copies out, %ld in\n", dist->rank, name,
           copies[0] - before[0], copies[1] - before[1]);
    free(cpu.w), free(staged.w);
}

int main(void)
{
    pml_ranks env;
    pml_err err = {0};
    if (pml_ranks_from_env(&env, &err) || (env.world != 2 && env.world != 4)) {
        printf("RESULT FAIL: run me as 2 or 4 MPI ranks (%s)\n", err.msg);
        return 1;
    }
    pml_plan *plain = test_compile_plan("plain.pml", plain_text, NULL, &err);
    pml_plan *tied = plain ? test_compile_plan("tied.pml", tied_text, NULL, &err) : NULL;
    if (!tied || tied->conf.schedule != plain->conf.schedule) {
        printf("RESULT FAIL: rank %d: the models do not compile to plans of one schedule: %s\n", env.rank, err.msg);
        return 1;
    }
    pml_dist_mpi_conf conf = {.devices = 2,
                              .schedule = (int)plain->conf.schedule,
                              .rank = env.rank,
                              .world = env.world,
                              .replicas = env.world / 2};
    if (pml_dist_mpi_create(&conf, &dist, &err)) {
        printf("RESULT FAIL: rank %d cannot start: %s\n", env.rank, err.msg);
        return 1;
    }
    pml_backend_ops dev = pml_cpu_backend_ops;
    dev.name = "stand-in device";
    dev.device = PML_DEVICE_CUDA;
    dev.boundary = dev_boundary;
    dev.grads = dev_grads;
    dev.copy_buf = dev_copy_buf;
    same_bits("plain.pml", plain, &dev);
    same_bits("tied.pml", tied, &dev);
    /* A device backend that cannot copy its buffers to the host is refused before any
     * message, naming what it lacks. */
    dev.copy_buf = NULL;
    pml_pipeline *pipe = NULL;
    pml_pipeline_opts opts = {.seed = 5, .threads = 1, .backend = &dev, .dist = dist};
    CHECK(pml_pipeline_create(plain, &opts, &pipe, &err) == PML_ERR_UNSUPPORTED && !pipe &&
              strstr(err.msg, "no copies of its device buffers to the host"),
          "a backend without copy_buf: %s", err.msg);
    pml_plan_free(plain), pml_plan_free(tied);
    double bad = failures;
    if (dist->sum(dist, &bad, 1, &err)) {
        printf("RESULT FAIL: rank %d: %s\n", dist->rank, err.msg);
        return 1;
    }
    if (dist->rank == 0) printf(bad ? "RESULT FAIL: %.0f failed checks\n" : "RESULT ok\n", bad);
    fflush(stdout);
    pml_dist_destroy(dist);
    return bad != 0;
}

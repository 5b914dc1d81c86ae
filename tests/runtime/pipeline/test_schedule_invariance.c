/* test_schedule_invariance.c — pipelining is only a schedule: training a model for 10
 * steps with 1, 2 or 4 stages, 1, 2, 4 or 8 micro-batches, under GPipe, 1F1B and ZB-H1
 * (zero_bubble: backwards split into input and weight halves, the weight halves late), and
 * under interleaved 1F1B with 2 or 4 stages of 2 chunks each and 4 or 8 micro-batches,
 * gives the same weights as 1 stage and 1 micro-batch on the same global batches
 * (relative difference of every parameter <= 1e-5); interleaved 1F1B gives exactly the
 * weights of 1F1B over as many stages as it has chunks (the same sums in the same
 * order, only on fewer threads). Also: a failing stage stops every stage with its
 * error instead of hanging.
 *
 * With the argument `zbv`: ZB-V (zero_bubble_v: 2 or 4 stages of 2 chunks in a V, 4 or
 * 8 micro-batches) gives the 1-stage, 1-micro-batch weights likewise, and exactly
 * those of ZB-H1 over as many stages as it has chunks (the same split backwards, each
 * chunk's weight halves in micro-batch order, only on fewer threads).
 *
 * With the argument `dualpipev`: DualPipeV (dualpipe_v: the same V, 2 or 4 stages, 8 or
 * 16 micro-batches, at least one per chunk) gives the 1-stage, 1-micro-batch weights
 * likewise (its backwards whole, and split for the last ones).
 *
 * With the argument `tied`: a weight tied across stages keeps its copies equal, and a
 * backend outside host memory is refused (tied(), below).
 *
 * With the argument `fused`: running the plan's fused element-wise kernels as tiled
 * groups trains like running every node on its own (opts.unfused), on every stage
 * count and schedule, to 1e-6 (the same scalar expression per element; only the
 * vector/scalar split of a loop may move). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "cpu/stage.h"
#include "plan/plan.h"
#include "pmlc.h"
#include "train_weights.h"

static const char model_text[] = "import \"nn\"\n"
                                 "model m(x: f32[B, 16]) -> f32[B, 4] {\n"
                                 "    place = auto(stages = %d, chunks = %d)\n"
                                 "    h = tanh(linear(x, 32) as l0)\n"
                                 "    h = tanh(linear(h, 32) as l1)\n"
                                 "    h = tanh(linear(h, 32) as l3)\n"
                                 "    h = tanh(linear(h, 32) as l4)\n"
                                 "    h = tanh(linear(h, 32) as l5)\n"
                                 "    h = tanh(linear(h, 32) as l6)\n"
                                 "    h = gelu(layernorm(linear(h, 32) as l2) as n2)\n"
                                 "    return linear(h, 4) as head\n"
                                 "}\n"
                                 "train m {\n"
                                 "    data = classes(features = 16, classes = 4, seed = 3)\n"
                                 "    loss = cross_entropy\n"
                                 "    optimizer = sgd(lr = 0.1, momentum = 0.9)\n"
                                 "    batch = 16, microbatches = %d, schedule = %s\n"
                                 "    steps = 10, seed = 5\n"
                                 "}\n";

/* Trains the model for 10 steps on `stages` stages of `chunks` chunks each; returns its
 * parameters concatenated (malloc'ed). */
static float *train_chunks(int stages, int chunks, int mbs, const char *sched, int unfused, size_t *n_out)
{
    char text[2048];
    snprintf(text, sizeof text, model_text, stages, chunks, mbs, sched);
    float *all = test_train_weights("invariance.pml", text, 10, unfused, n_out);
    if (!all) fprintf(stderr, "stages %d of %d chunks, micro-batches %d, %s\n", stages, chunks, mbs, sched);
    return all;
}

static float *train(int stages, int mbs, const char *sched, int unfused, size_t *n_out)
{
    return train_chunks(stages, 1, mbs, sched, unfused, n_out);
}

static double rel_diff(const float *w, const float *ref, size_t n)
{
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        diff += ((double)w[i] - ref[i]) * ((double)w[i] - ref[i]);
        norm += (double)ref[i] * ref[i];
    }
    return sqrt(diff / norm);
}

static int fused_like_unfused(void)
{
    static const int stages[] = {1, 2, 4};
    double worst = 0;
    for (int b = 0; b < 3; b++) {
        size_t n1 = 0, n2 = 0;
        float *plain = train(stages[b], 4, "1f1b", 1, &n1), *fused = train(stages[b], 4, "1f1b", 0, &n2);
        CHECK(plain && fused && n1 == n2);
        if (plain && fused && n1 == n2) {
            double rel = rel_diff(fused, plain, n1);
            if (rel > worst) worst = rel;
            if (!(rel <= 1e-6)) fprintf(stderr, "%d stages: fused differs from unfused by %.3g\n", stages[b], rel);
            CHECK(rel <= 1e-6);
        }
        free(plain), free(fused);
    }
    printf("largest relative difference of fused from unfused: %.3g\n", worst);
    return check_summary("fused kernels train like unfused nodes");
}

/* `sched` on 2 and 4 stages of 2 chunks, 4 and 8 micro-batches: within 1e-5 of `ref`
 * (n_ref values) and the bits of `flat` over as many stages as it has chunks. Returns
 * the largest relative difference from `ref`. */
static double chunked_like_flat(const char *sched, const char *flat_sched, const float *ref, size_t n_ref)
{
    static const int il_stages[] = {2, 4}, il_mbs[] = {4, 8};
    double worst = 0;
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++) {
            size_t n = 0, n_flat = 0;
            float *w = train_chunks(il_stages[b], 2, il_mbs[c], sched, 0, &n);
            float *flat = train(il_stages[b] * 2, il_mbs[c], flat_sched, 0, &n_flat);
            CHECK(w && flat && n == n_ref && n_flat == n_ref);
            if (w && flat && n == n_ref && n_flat == n_ref) {
                double rel = rel_diff(w, ref, n);
                if (rel > worst) worst = rel;
                if (!(rel <= 1e-5))
                    fprintf(stderr, "%s, %d stages x 2 chunks, %d micro-batches: relative difference %.3g\n", sched,
                            il_stages[b], il_mbs[c], rel);
                CHECK(rel <= 1e-5);
                if (memcmp(w, flat, n * sizeof *w))
                    fprintf(stderr, "%s, %d stages x 2 chunks, %d micro-batches: not the bits of %s on %d stages\n",
                            sched, il_stages[b], il_mbs[c], flat_sched, 2 * il_stages[b]);
                CHECK(memcmp(w, flat, n * sizeof *w) == 0);
            }
            free(w), free(flat);
        }
    return worst;
}

/* The file's comment, `zbv`. */
static int zbv(void)
{
    size_t n_ref = 0;
    float *ref = train(1, 1, "gpipe", 0, &n_ref);
    CHECK(ref != NULL);
    if (!ref) return check_summary("ZB-V invariance");
    double worst = chunked_like_flat("zero_bubble_v", "zero_bubble", ref, n_ref);
    printf("ZB-V: largest relative difference from 1 stage x 1 micro-batch: %.3g\n", worst);
    free(ref);
    return check_summary("ZB-V invariance");
}

/* The file's comment, `dualpipev`. */
static int dualpipev(void)
{
    size_t n_ref = 0;
    float *ref = train(1, 1, "gpipe", 0, &n_ref);
    CHECK(ref != NULL);
    if (!ref) return check_summary("DualPipeV invariance");
    static const int stages[] = {2, 4}, mbs[] = {8, 16};
    double dpv = 0;
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 2; c++) {
            size_t n = 0;
            float *w = train_chunks(stages[b], 2, mbs[c], "dualpipe_v", 0, &n);
            CHECK(w && n == n_ref);
            if (w && n == n_ref) {
                double rel = rel_diff(w, ref, n);
                if (rel > dpv) dpv = rel;
                if (!(rel <= 1e-5))
                    fprintf(stderr, "dualpipe_v, %d stages x 2 chunks, %d micro-batches: relative difference %.3g\n",
                            stages[b], mbs[c], rel);
                CHECK(rel <= 1e-5);
            }
            free(w);
        }
    printf("DualPipeV: largest relative difference from 1 stage x 1 micro-batch: %.3g\n", dpv);
    free(ref);
    return check_summary("DualPipeV invariance");
}

/* `tied`: a weight read on two stages (the first's gather, the last's product) keeps its
 * copies equal to the bit over 10 steps of a 4-stage pipeline with SGD and momentum,
 * and a backend whose memory is not the host's is refused at create, naming the weight,
 * before it is made (the tied gradients are summed in host memory). */
static void create_refused_by_a_device_backend(const pml_plan *pl, pml_feed *feed)
{
    pml_backend_ops device_ops = pml_cpu_backend_ops;
    device_ops.device = PML_DEVICE_CUDA;
    device_ops.name = "device";
    pml_pipeline_opts o = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed, .backend = &device_ops};
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    pml_status st = pml_pipeline_create(pl, &o, &pipe, &err);
    CHECK(st == PML_ERR_UNSUPPORTED && !pipe && strstr(err.msg, "'emb'") && strstr(err.msg, "device backend"));
    if (st != PML_ERR_UNSUPPORTED) fprintf(stderr, "tied, device backend: %s\n", err.msg);
    pml_pipeline_destroy(pipe);
}

static int tied(void)
{
    static const char text[] = "import \"nn\"\n"
                               "model m(idx: i32[B, T]) -> f32[B, T, 8] {\n"
                               "    place = auto(stages = 4)\n"
                               "    param emb: [8, 16] = normal(0.1)\n"
                               "    h = gather(emb, idx)\n"
                               "    h = tanh(linear(h, 16) as l0)\n"
                               "    h = tanh(linear(h, 16) as l1)\n"
                               "    h = tanh(linear(h, 16) as l2)\n"
                               "    return h @ transpose(emb)\n"
                               "}\n"
                               "train m {\n"
                               "    data = markov(vocab = 8, order = 1, seed = 2)\n"
                               "    loss = cross_entropy\n"
                               "    optimizer = sgd(lr = 0.1, momentum = 0.9)\n"
                               "    batch = 8, microbatches = 4, T = 4\n"
                               "}\n";
    pml_err err = {0};
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_plan *pl = test_compile_plan("tied.pml", text, NULL, &err);
    CHECK(pl && !pml_feed_create(pl, &feed, &err));
    if (!pl || !feed) {
        fprintf(stderr, "tied: %s\n", err.msg);
        return check_summary("tied weights");
    }
    int copy = pl->n_params - 1, root = pl->params[copy].tie;
    CHECK(root == 0 && !strcmp(pl->params[0].name, "emb") && pml_plan_model_params(pl) == pl->n_params - 1);
    pml_pipeline_opts o = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed};
    CHECK(!pml_pipeline_create(pl, &o, &pipe, &err));
    size_t bytes = sizeof(float) * (size_t)pl->nodes[pl->params[0].node].numel; /* root 0, checked above */
    float *init = malloc(bytes), *now = malloc(bytes);
    if (pipe && root == 0 && init && now) {
        memcpy(init, pml_pipeline_param(pipe, root), bytes);
        for (int k = 0; k < 10; k++) CHECK(!pml_pipeline_step(pipe, NULL, &err));
        memcpy(now, pml_pipeline_param(pipe, root), bytes);
        float *c = pml_pipeline_param(pipe, copy);
        CHECK(c && !memcmp(now, c, bytes) && memcmp(now, init, bytes)); /* trained, and equal */
    }
    free(init), free(now);
    pml_pipeline_destroy(pipe);
    create_refused_by_a_device_backend(pl, feed);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return check_summary("tied weights");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "tied") == 0) return tied();
    if (argc > 1 && strcmp(argv[1], "dualpipev") == 0) return dualpipev();
    if (argc > 1 && strcmp(argv[1], "zbv") == 0) return zbv();
    if (argc > 1 && strcmp(argv[1], "fused") == 0) return fused_like_unfused();
    size_t n_ref = 0, n = 0;
    float *ref = train(1, 1, "gpipe", 0, &n_ref);
    CHECK(ref != NULL);
    if (!ref) return check_summary("schedule invariance");
    static const char *const scheds[] = {"gpipe", "1f1b", "zero_bubble"};
    static const int stages[] = {1, 2, 4}, mbs[] = {1, 2, 4, 8};
    double worst = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                float *w = train(stages[b], mbs[c], scheds[a], 0, &n);
                CHECK(w && n == n_ref);
                if (!w || n != n_ref) continue;
                double rel = rel_diff(w, ref, n);
                if (rel > worst) worst = rel;
                if (!(rel <= 1e-5))
                    fprintf(stderr, "%s, %d stages, %d micro-batches: relative difference %.3g\n", scheds[a], stages[b],
                            mbs[c], rel);
                CHECK(rel <= 1e-5);
                free(w);
            }
    double il = chunked_like_flat("interleaved_1f1b", "1f1b", ref, n_ref);
    if (il > worst) worst = il;
    printf("largest relative difference from 1 stage x 1 micro-batch: %.3g\n", worst);
    free(ref);
    return check_summary("schedule invariance");
}

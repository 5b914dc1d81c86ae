/* test_nonfinite.c — a non-finite value stops the step that makes it, named, and never
 * reaches a checkpoint (pipeline.h, checkpoint.h). One behaviour per argument:
 *
 *   loss      NaN fed into micro-batch 2 of step 2: the step fails with
 *             PML_ERR_NONFINITE naming step 2, micro-batch 2 and the loss's stage,
 *             and updates nothing (the weights are step 1's)
 *   gradient  a finite loss whose gradient is NaN (sqrt(h - h) at 0): the parameter
 *             nearest the loss with a NaN gradient, and its stage, are named
 *   weight    a weight made NaN between steps is named before the step's own finding
 *   forward   NaN fed through inference (pml_pipeline_forward) and evaluation comes out
 *             NaN where it went in, with no undefined behaviour (the sanitizer build
 *             runs this too)
 *   save      a checkpoint is never written with a NaN weight or optimizer state, as one
 *             file set or as shards: the save fails naming the tensor, the folder
 *             already there keeps its committed checkpoint, which still restores */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "ckpt/checkpoint.h"
#include "compile_plan.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "plan/plan.h"
#include "pmlc.h"

static const char model_text[] = "import \"nn\"\n"
                                 "model m(x: f32[B, 8]) -> f32[B, 4] {\n"
                                 "    stage 0 {\n"
                                 "        h = linear(x, 16) as l0\n"
                                 "        %s\n"
                                 "    }\n"
                                 "    stage 1 { return linear(tanh(h), 4) as head }\n"
                                 "}\n"
                                 "train m {\n"
                                 "    data = classes(features = 8, classes = 4, seed = 1)\n"
                                 "    loss = cross_entropy\n"
                                 "    optimizer = sgd(lr = 0.1, momentum = 0.9)\n"
                                 "    batch = 16, microbatches = 4, schedule = 1f1b\n"
                                 "    place = [cpu, cpu]\n"
                                 "    steps = 3\n"
                                 "}\n";

/* The generator's rows, with NaN in micro-batch 2 of step 1 (0-based) when asked. */
typedef struct poison_feed {
    pml_feed *feed;
    int poison;
} poison_feed;

static pml_status fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err)
{
    poison_feed *f = ctx;
    pml_status st = pml_feed_fill(f->feed, step, mb, input, dst, err);
    if (!st && f->poison && step == 1 && mb == 2 && input == 0) ((float *)dst)[5] = NAN;
    return st;
}

typedef struct run {
    pml_plan *pl;
    pml_feed *feed;
    poison_feed pf;
    pml_pipeline *pipe;
} run;

static int run_open(run *r, const char *stage0_line, int poison)
{
    char text[2048];
    pml_err err = {0};
    snprintf(text, sizeof text, model_text, stage0_line);
    memset(r, 0, sizeof *r);
    if (!(r->pl = test_compile_plan("nonfinite.pml", text, NULL, &err)) || pml_feed_create(r->pl, &r->feed, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    r->pf = (poison_feed){r->feed, poison};
    pml_pipeline_opts o = {.seed = 5, .threads = 2, .feed = fill, .feed_ctx = &r->pf};
    if (pml_pipeline_create(r->pl, &o, &r->pipe, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static void run_close(run *r)
{
    pml_pipeline_destroy(r->pipe);
    pml_feed_destroy(r->feed);
    pml_plan_free(r->pl);
}

static int param_index(const pml_plan *pl, const char *name)
{
    for (int q = 0; q < pl->n_params; q++)
        if (!strcmp(pl->params[q].name, name)) return q;
    return -1;
}

/* Every parameter's weights concatenated (malloc'ed). */
static float *weights(run *r, size_t *n)
{
    *n = 0;
    for (int q = 0; q < r->pl->n_params; q++) *n += (size_t)r->pl->nodes[r->pl->params[q].node].numel;
    float *all = malloc(sizeof(float) * *n);
    for (int q = 0, at = 0; all && q < r->pl->n_params; q++) {
        int64_t c = r->pl->nodes[r->pl->params[q].node].numel;
        memcpy(all + at, pml_pipeline_param(r->pipe, q), sizeof(float) * (size_t)c);
        at += (int)c;
    }
    return all;
}

static void behaviour_loss(void)
{
    run r;
    if (run_open(&r, "h = h", 1)) {
        CHECK(0);
        return;
    }
    pml_err err = {0};
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_OK);
    size_t n, n2;
    float *before = weights(&r, &n);
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_ERR_NONFINITE);
    fprintf(stderr, "reported: %s\n", err.msg);
    CHECK(strstr(err.msg, "step 2: the loss of micro-batch 2 is NaN (stage 1") != NULL);
    float *after = weights(&r, &n2);
    CHECK(before && after && n == n2 && !memcmp(before, after, sizeof(float) * n)); /* nothing updated */
    CHECK(pml_pipeline_steps_done(r.pipe) == 1);
    free(before), free(after);
    run_close(&r);
}

static void behaviour_gradient(void)
{
    run r;
    if (run_open(&r, "h = h + sqrt(h - h)", 0)) {
        CHECK(0);
        return;
    }
    pml_err err = {0};
    pml_step_stats st = {0};
    CHECK(pml_pipeline_step(r.pipe, &st, &err) == PML_ERR_NONFINITE);
    fprintf(stderr, "reported: %s\n", err.msg);
    CHECK(strstr(err.msg, "step 1: the gradient of parameter 'l0.bias' is NaN") != NULL);
    CHECK(strstr(err.msg, "(stage 0,") != NULL);
    run_close(&r);
}

static void behaviour_weight(void)
{
    run r;
    if (run_open(&r, "h = h", 0)) {
        CHECK(0);
        return;
    }
    pml_err err = {0};
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_OK);
    pml_pipeline_param(r.pipe, param_index(r.pl, "head.weight"))[3] = INFINITY;
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_ERR_NONFINITE);
    fprintf(stderr, "reported: %s\n", err.msg);
    CHECK(strstr(err.msg, "step 2: parameter 'head.weight' is inf at element 3 before the step") != NULL);
    run_close(&r);
}

static void behaviour_forward(void)
{
    run r;
    if (run_open(&r, "h = h", 1)) {
        CHECK(0);
        return;
    }
    const pml_plan_node *in = &r.pl->nodes[r.pl->input_nodes[0]], *out = &r.pl->nodes[r.pl->output];
    float *x = calloc((size_t)in->numel, sizeof *x), *y = calloc((size_t)out->numel, sizeof *y);
    pml_err err = {0};
    if (x && y) {
        x[8 + 3] = NAN; /* row 1 */
        const void *inputs[1] = {x};
        CHECK(pml_pipeline_forward(r.pipe, inputs, y, &err) == PML_OK);
        CHECK(isnan(y[4]) && isfinite(y[0]) && isfinite(y[8])); /* row 1 only: rows are independent */
    }
    double loss = 0, acc = 0;
    CHECK(pml_pipeline_evaluate(r.pipe, 1, &loss, &acc, &err) == PML_OK && isfinite(loss)); /* held-out rows are clean */
    free(x), free(y);
    run_close(&r);
}

static void behaviour_save(void)
{
    run r;
    if (run_open(&r, "h = h", 0)) {
        CHECK(0);
        return;
    }
    char dir[] = "/tmp/pml_nonfinite_XXXXXX", shards[4096];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(shards, sizeof shards, "%s/shards", dir);
    pml_err err = {0};
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_OK);
    CHECK(pml_ckpt_save(r.pl, r.pipe, 5, dir, &err) == PML_OK);
    size_t n, n2;
    float *saved = weights(&r, &n);
    int head = param_index(r.pl, "head.weight");
    CHECK(pml_pipeline_step(r.pipe, NULL, &err) == PML_OK);
    float *w = pml_pipeline_param(r.pipe, head), keep = w[7];
    w[7] = NAN;
    CHECK(pml_ckpt_save(r.pl, r.pipe, 5, dir, &err) == PML_ERR_NONFINITE);
    fprintf(stderr, "reported: %s\n", err.msg);
    CHECK(strstr(err.msg, "not written: tensor 'head.weight' is NaN at element 7 after step 2") != NULL);
    /* Sharded: the shard holding stage 1 refuses; nothing of it is written. */
    CHECK(pml_ckpt_check_finite(r.pl, r.pipe, shards, 0, 2, &err) == PML_OK);
    CHECK(pml_ckpt_save_shard(r.pl, r.pipe, shards, 1, 2, &err) == PML_ERR_NONFINITE);
    w[7] = keep;
    float *m = pml_pipeline_optim_state(r.pipe, head, 0);
    CHECK(m != NULL);
    if (m) m[0] = -INFINITY;
    CHECK(pml_ckpt_save(r.pl, r.pipe, 5, dir, &err) == PML_ERR_NONFINITE);
    CHECK(strstr(err.msg, "tensor 'head.weight.momentum_buffer' is -inf at element 0") != NULL);
    /* The folder still holds step 1's checkpoint, whole, and it restores. */
    run r2;
    pml_ckpt_info info = {0};
    CHECK(!run_open(&r2, "h = h", 0));
    CHECK(pml_ckpt_read_info(r2.pl, dir, &info, &err) == PML_OK && info.step == 1);
    CHECK(pml_ckpt_restore(r2.pl, r2.pipe, dir, &err) == PML_OK);
    float *restored = weights(&r2, &n2);
    CHECK(saved && restored && n == n2 && !memcmp(saved, restored, sizeof(float) * n));
    free(saved), free(restored);
    run_close(&r2);
    run_close(&r);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    const char *b = argc > 1 ? argv[1] : "";
    if (!strcmp(b, "loss")) behaviour_loss();
    else if (!strcmp(b, "gradient")) behaviour_gradient();
    else if (!strcmp(b, "weight")) behaviour_weight();
    else if (!strcmp(b, "forward")) behaviour_forward();
    else if (!strcmp(b, "save")) behaviour_save();
    else {
        fprintf(stderr, "usage: test_nonfinite loss|gradient|weight|forward|save\n");
        return 2;
    }
    return check_summary(b);
}

/* train_weights.h — for C tests: a PML program (text held in memory) compiled, trained
 * for some steps through the pipeline on its generated data, and its weights returned,
 * every parameter's concatenated in plan order. Header-only, beside compile_plan.h. */
#ifndef PML_TEST_TRAIN_WEIGHTS_H
#define PML_TEST_TRAIN_WEIGHTS_H

#include "compile_plan.h"
#include "exec/feed.h"
#include "exec/pipeline.h"

/* Trains `text` (named `path`) for `steps` steps with seed 5 on 2 threads (`unfused`:
 * every node on its own, pml_pipeline_opts.unfused). Returns the weights (malloc'ed;
 * *n_out floats), or NULL after printing why. */
static inline float *test_train_weights(const char *path, const char *text, int steps, int unfused, size_t *n_out)
{
    float *all = NULL;
    size_t n = 0;
    pml_plan *pl = NULL;
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    if (!(pl = test_compile_plan(path, text, NULL, &err)) || pml_feed_create(pl, &feed, &err)) goto out;
    pml_pipeline_opts o = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed, .unfused = unfused};
    if (pml_pipeline_create(pl, &o, &pipe, &err)) goto out;
    for (int k = 0; k < steps; k++)
        if (pml_pipeline_step(pipe, NULL, &err)) goto out;
    for (int q = 0; q < pl->n_params; q++) n += (size_t)pl->nodes[pl->params[q].node].numel;
    all = malloc(sizeof(float) * (n + 1));
    for (int q = 0, at = 0; all && q < pl->n_params; q++) {
        int64_t c = pl->nodes[pl->params[q].node].numel;
        memcpy(all + at, pml_pipeline_param(pipe, q), sizeof(float) * (size_t)c);
        at += (int)c;
    }
    *n_out = n;
out:
    if (!all) fprintf(stderr, "%s: %s\n", path, err.msg);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return all;
}

#endif

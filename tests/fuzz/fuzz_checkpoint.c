/* fuzz_checkpoint.c — libFuzzer target for the checkpoint folder reader
 * (runtime/src/ckpt/checkpoint.c): trainer.json, model.safetensors,
 * optimizer.safetensors and their shard indexes, read against one fixed small plan.
 *
 * The plan is compiled once, through the compiler library, from ckpt_model.pml (beside
 * this file: two stages, AdamW, an automatic freeze, so trainer.json carries the
 * freeze's state). Each input is unpacked into a folder (fuzz_files.h) and read as
 * `pmlc train --resume DIR` reads it, then as `--init DIR` does, into a fresh pipeline:
 *   - pml_ckpt_read_info, then pml_ckpt_restore; restore never accepts what read_info
 *     refused, and a refusal leaves the pipeline's weights and optimizer state as they
 *     were (checkpoint.h's promise);
 *   - a restored pipeline takes one training step, as a resumed run does next (at the
 *     restored step, with the restored freeze state): it may fail, but cleanly;
 *   - pml_ckpt_load_weights(DIR), with the same promise on refusal.
 * Every refusal is PML_ERR_FORMAT, _IO, _UNSUPPORTED or _NONFINITE (a NaN weight, say)
 * with a message naming the folder.
 * Seeds: checkpoints saved by `pmlc train` of ckpt_model.pml, whole and as shards
 * (make_seeds.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/compile_plan.h"
#include "ckpt/checkpoint.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "fuzz_files.h"

#ifndef PML_FUZZ_CKPT_MODEL
#error "PML_FUZZ_CKPT_MODEL: the path of ckpt_model.pml (CMake defines it)"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pml_plan *plan;
static pml_feed *feed;
static size_t state_floats; /* every parameter's weights and optimizer state, in floats */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pml_err err = {0};
    plan = test_compile_plan(PML_FUZZ_CKPT_MODEL, NULL, NULL, &err);
    if (!plan || pml_feed_create(plan, &feed, &err) != PML_OK) {
        fprintf(stderr, "fuzz_checkpoint: %s: %s\n", PML_FUZZ_CKPT_MODEL, err.msg);
        abort();
    }
    for (int q = 0; q < plan->n_params; q++) state_floats += 3 * (size_t)plan->nodes[plan->params[q].node].numel;
    return 0;
}

static void refused(pml_status st, const pml_err *err, const char *dir)
{
    if ((st != PML_ERR_FORMAT && st != PML_ERR_IO && st != PML_ERR_UNSUPPORTED && st != PML_ERR_NONFINITE) ||
        !strstr(err->msg, dir)) {
        fprintf(stderr, "fuzz_checkpoint: refused with status %d: %s\n", st, err->msg);
        abort();
    }
}

/* The pipeline's weights and optimizer state, one after another, into out[state_floats]. */
static void snapshot(pml_pipeline *p, float *out)
{
    for (int q = 0; q < plan->n_params; q++) {
        size_t n = (size_t)plan->nodes[plan->params[q].node].numel;
        for (int which = -1; which < 2; which++) {
            const float *src = which < 0 ? pml_pipeline_param(p, q) : pml_pipeline_optim_state(p, q, which);
            if (src)
                memcpy(out, src, n * sizeof *out);
            else
                memset(out, 0, n * sizeof *out);
            out += n;
        }
    }
}

static void unchanged_if_refused(pml_status st, const pml_err *err, const char *dir, pml_pipeline *p,
                                 const float *before, float *now)
{
    if (st == PML_OK) return;
    refused(st, err, dir);
    snapshot(p, now);
    if (memcmp(before, now, state_floats * sizeof *now)) {
        fprintf(stderr, "fuzz_checkpoint: a refused checkpoint changed the pipeline: %s\n", err->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_files_unpack(data, size);
    pml_err err = {0};
    pml_ckpt_info info;
    pml_status info_st = pml_ckpt_read_info(plan, dir, &info, &err);
    if (info_st != PML_OK) refused(info_st, &err, dir);

    pml_pipeline_opts opts = {.seed = 1, .threads = 1, .feed = pml_feed_fill, .feed_ctx = feed};
    pml_pipeline *p = NULL;
    float *before = malloc(2 * state_floats * sizeof *before);
    if (!before || pml_pipeline_create(plan, &opts, &p, &err) != PML_OK) abort();
    snapshot(p, before);

    pml_status st = pml_ckpt_restore(plan, p, dir, &err);
    if (info_st != PML_OK && st == PML_OK) abort();
    unchanged_if_refused(st, &err, dir, p, before, before + state_floats);
    if (st == PML_OK) {
        pml_step_stats stats;
        pml_pipeline_step(p, &stats, &err); /* may refuse (a diverged state, say), never crash */
        pml_pipeline_destroy(p);
        if (pml_pipeline_create(plan, &opts, &p, &err) != PML_OK) abort();
    }

    st = pml_ckpt_load_weights(plan, p, dir, &err);
    unchanged_if_refused(st, &err, dir, p, before, before + state_floats);

    pml_pipeline_destroy(p);
    free(before);
    return 0;
}

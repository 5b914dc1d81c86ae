/* teacher_unchanged.c — trains a distillation student for STEPS steps through the
 * library and checks that every teacher parameter in the pipeline still equals, bit for
 * bit, its tensor in the teacher's file, and that the student was trained (some student
 * parameter changed); first, that a pipeline whose teacher was not loaded refuses to
 * train. Usage: teacher_unchanged PROGRAM.pml TEACHER.safetensors STEPS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/checkpoint.h"
#include "compile_plan.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "formats/safetensors.h"
#include "plan/plan.h"
#include "pmlc.h"

/* Teacher parameters that differ from the file (-1: a tensor is missing). */
static int teacher_diffs(const pml_plan *pl, pml_pipeline *pipe, const pml_st_file *f, int *n_teacher)
{
    int bad = 0;
    for (int q = 0; q < pl->n_params; q++) {
        if (!pl->params[q].teacher) continue;
        ++*n_teacher;
        const pml_st_tensor *t = pml_st_find(f, pl->params[q].name + strlen("teacher."));
        if (!t) return -1;
        if (memcmp(t->data, pml_pipeline_param(pipe, q), t->nbytes)) {
            fprintf(stderr, "teacher parameter %s changed\n", pl->params[q].name);
            bad++;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 4) return fprintf(stderr, "usage: teacher_unchanged PROGRAM.pml TEACHER.safetensors STEPS\n"), 2;
    pml_plan *pl = NULL;
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_st_file *f = NULL;
    float *before = NULL;
    pml_err err = {0};
    int rc = 1;
    if (!(pl = test_compile_plan(argv[1], NULL, NULL, &err)) || pml_feed_create(pl, &feed, &err) ||
        pml_st_open(argv[2], &f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    pml_pipeline_opts po = {.seed = 1, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed};
    /* A pipeline whose teacher was not loaded refuses to train rather than distil from
     * random weights. */
    if (pml_pipeline_create(pl, &po, &pipe, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    if (pml_pipeline_step(pipe, NULL, &err) != PML_ERR_INVALID_ARG || !strstr(err.msg, "teacher")) {
        fprintf(stderr, "a step with the teacher not loaded was not refused (%s)\n", err.msg);
        goto out;
    }
    pml_pipeline_destroy(pipe);
    pipe = NULL;
    err = (pml_err){0};
    if (pml_pipeline_create(pl, &po, &pipe, &err) || pml_ckpt_load_teacher(pl, pipe, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    int student = -1, n_teacher = 0;
    for (int q = 0; q < pl->n_params && student < 0; q++)
        if (!pl->params[q].teacher) student = q;
    int64_t numel = pl->nodes[pl->params[student].node].numel;
    before = malloc(sizeof(float) * (size_t)numel);
    memcpy(before, pml_pipeline_param(pipe, student), sizeof(float) * (size_t)numel);
    for (int64_t step = 0; step < atoll(argv[3]); step++) {
        pml_step_stats st;
        if (pml_pipeline_step(pipe, &st, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            goto out;
        }
    }
    int diffs = teacher_diffs(pl, pipe, f, &n_teacher);
    int trained = memcmp(before, pml_pipeline_param(pipe, student), sizeof(float) * (size_t)numel) != 0;
    printf("%d teacher parameters, %d changed; student parameter %s %s\n", n_teacher, diffs,
           pl->params[student].name, trained ? "trained" : "NOT trained");
    rc = n_teacher > 0 && diffs == 0 && trained ? 0 : 1;
out:
    free(before);
    pml_st_close(f);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return rc;
}

/* infer_cmd.c — `pmlc infer FILE|PLAN --weights W --input X.npy --output Y.npy`: run
 * the model forward on the CPU (pml_pipeline_forward: dropout off, no loss) over every
 * row of X and write the outputs.
 *
 * The N rows of X (its first dimension) are cut into micro-batches of the plan's
 * micro-batch size; the last partial one is padded with zeros and its extra outputs
 * dropped. Each row must have the model input's shape without its batch dimension;
 * element types convert as the training feed converts them (feed.h). Y is f32
 * [N, output dims...], written atomically (or in place to a device or fifo:
 * formats/out_path.h), its path checked before any work. W is whatever --init takes
 * (pml_ckpt_load_weights, the one reader of both): a model.safetensors (every parameter,
 * by plan name), a shard index, or a folder holding either (a checkpoint, or plain
 * weights). --bench times repeated passes over X (at least one, and at least 1 s) and
 * prints the latency per micro-batch (median, p90) and the throughput in rows/s.
 *
 * Only models with one input for now. */
#define _DEFAULT_SOURCE /* clock_gettime */
#include "infer_cmd.h"

#include "build_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/npy.h"
#include "formats/out_path.h"
#include "plan/plan.h"
#include "train/checkpoint.h"
#include "train/feed.h"
#include "train/pipeline.h"
#include "cli_util.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Checks X against the model input `node`; returns 0 when it fits. */
static int check_input(const pml_npy_array *x, const char *path, const pml_plan_node *node, const char *name,
                       pml_dtype to)
{
    if (!pml_feed_converts(x->dtype, to)) {
        fprintf(stderr, "pmlc: error: %s: holds %s, which cannot feed the model's input '%s' of type %s\n", path,
                pml_dtype_name(x->dtype), name, pml_dtype_name((pml_dtype)node->dtype));
        return 1;
    }
    int same = x->rank >= 1 && x->rank == node->rank;
    for (int k = 1; same && k < x->rank; k++) same = x->shape[k] == node->dims[k];
    if (!same) {
        char got[200] = "(", want[200] = "(N";
        for (int k = 0; k < x->rank; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)x->shape[k]);
        for (int k = 1; k < node->rank; k++)
            snprintf(want + strlen(want), sizeof want - strlen(want), ", %lld", (long long)node->dims[k]);
        fprintf(stderr, "pmlc: error: %s: has shape %s), but the model's input '%s' needs rows of shape %s%s)\n", path,
                got, name, want, node->rank == 1 ? "," : "");
        return 1;
    }
    if (x->dtype == PML_I64 && to == PML_I32) {
        const int64_t *v = x->data;
        for (size_t i = 0; i < x->nbytes / sizeof *v; i++)
            if (v[i] < INT32_MIN || v[i] > INT32_MAX) {
                fprintf(stderr, "pmlc: error: %s: element %zu is %lld, which does not fit the model's i32 input\n",
                        path, i, (long long)v[i]);
                return 1;
            }
    }
    return 0;
}

/* One pass over X's N rows: outputs into y (when not NULL), each micro-batch's
 * latency appended to lat (when not NULL). */
static int pass(pml_pipeline *pipe, const pml_npy_array *x, pml_dtype to, int64_t n, int64_t mbs, size_t in_row,
                size_t out_row, int out_i32, void *in, void *out, float *y, double *lat, pml_err *err)
{
    for (int64_t r0 = 0, b = 0; r0 < n; r0 += mbs, b++) {
        int64_t rows = n - r0 < mbs ? n - r0 : mbs;
        double t0 = now();
        pml_feed_convert(in, to, x->data, x->dtype, (size_t)r0 * in_row, (size_t)rows * in_row);
        if (rows < mbs) memset((char *)in + (size_t)rows * in_row * 4, 0, (size_t)(mbs - rows) * in_row * 4);
        const void *inputs[1] = {in};
        if (pml_pipeline_forward(pipe, inputs, out, err)) return 1;
        if (y) {
            float *dst = y + (size_t)r0 * out_row;
            if (out_i32)
                for (size_t i = 0; i < (size_t)rows * out_row; i++) dst[i] = (float)((const int32_t *)out)[i];
            else
                memcpy(dst, out, (size_t)rows * out_row * sizeof(float));
        }
        if (lat) lat[b] = now() - t0;
    }
    return 0;
}

int pmlc_infer_main(const pmlc_infer_args *a)
{
    pml_plan *pl = NULL;
    if (pmlc_plan_from_file(a->file, &a->compile, a->backend, &pl)) return 1;
    int rc = 1;
    pml_pipeline *pipe = NULL;
    pml_npy_array x = {0};
    void *in = NULL, *out = NULL;
    float *y = NULL;
    double *lat = NULL;
    pml_err err = {0};
    if (a->output && pml_out_check(a->output, &err)) { /* before the work, not after it */
        pmlc_cli_fail("--output", &err);
        goto out;
    }
    if (pl->n_inputs != 1) {
        fprintf(stderr, "pmlc: error: %s: the model has %d inputs; pmlc infer supports models with one input for now\n",
                a->file, pl->n_inputs);
        goto out;
    }
    const pml_plan_node *inode = &pl->nodes[pl->input_nodes[0]];
    const pml_plan_node *onode = pl->output >= 0 ? &pl->nodes[pl->output] : NULL;
    int64_t mbs = inode->rank >= 1 ? inode->dims[0] : 0;
    if (mbs < 1 || !onode || onode->rank < 1 || onode->dims[0] != mbs) {
        fprintf(stderr, "pmlc: error: %s: the model's input and output need a batch dimension (their first)\n",
                a->file);
        goto out;
    }
    pml_backend backend;
    const pml_backend_ops *ops;
    if (pmlc_cli_backend(a->backend, pl, &backend, &ops)) goto out;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = a->threads > 0 ? a->threads : (int)(cpus > 0 ? cpus : 1);
    /* The stages run one after another here, so each gets every thread. */
    pml_pipeline_opts opts = {
        .seed = (uint64_t)pl->conf.seed, .threads = threads * (int)pl->conf.stages, .backend = ops};
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) {
        pmlc_cli_fail("cannot set up the model", &err);
        goto out;
    }
    if (pml_ckpt_load_weights(pl, pipe, a->weights, &err)) { /* the reader --init uses */
        pmlc_cli_fail("cannot load the weights", &err);
        goto out;
    }
    if (pml_npy_open(a->input, &x, &err)) {
        pmlc_cli_fail("cannot read the input", &err);
        goto out;
    }
    pml_dtype to = inode->dtype == PML_I32 ? PML_I32 : PML_F32;
    if (check_input(&x, a->input, inode, pl->input_names[0], to)) goto out;
    int64_t n = x.shape[0], batches = (n + mbs - 1) / mbs;
    size_t in_row = (size_t)(inode->numel / mbs), out_row = (size_t)(onode->numel / mbs);
    if (pml_feed_check_finite(&x, a->input, in_row, &err)) {
        pmlc_cli_fail("cannot read the input", &err);
        goto out;
    }
    in = malloc((size_t)inode->numel * 4 + 4);
    out = malloc((size_t)onode->numel * 4 + 4);
    y = malloc((size_t)n * out_row * sizeof(float) + 4);
    if (!in || !out || !y) {
        pmlc_cli_fail("out of memory for the rows", NULL);
        goto out;
    }
    int out_i32 = onode->dtype == PML_I32;
    double t0 = now();
    if (pass(pipe, &x, to, n, mbs, in_row, out_row, out_i32, in, out, y, NULL, &err)) {
        pmlc_cli_fail("inference failed", &err);
        goto out;
    }
    if (a->output) {
        int64_t shape[PML_NPY_MAX_RANK] = {n};
        for (int k = 1; k < onode->rank && k < PML_NPY_MAX_RANK; k++) shape[k] = onode->dims[k];
        if (pml_npy_write(a->output, PML_F32, onode->rank, shape, y, &err)) {
            pmlc_cli_fail("cannot write the output", &err);
            goto out;
        }
    }
    if (!a->quiet)
        fprintf(stderr, "inferred %lld rows in %lld micro-batches of %lld (%.1f ms)\n", (long long)n,
                (long long)batches, (long long)mbs, 1e3 * (now() - t0));
    if (a->bench) {
        if (n == 0) {
            fprintf(stderr, "pmlc: error: %s: holds no rows to time\n", a->input);
            goto out;
        }
        int64_t cap = 0, done = 0, passes = 0;
        double start = now();
        while (passes < 1 || now() - start < 1.0) {
            if (done + batches > cap) {
                cap = 2 * (done + batches);
                double *grown = realloc(lat, (size_t)cap * sizeof *lat);
                if (!grown) {
                    pmlc_cli_fail("out of memory for the timings", NULL);
                    goto out;
                }
                lat = grown;
            }
            if (pass(pipe, &x, to, n, mbs, in_row, out_row, out_i32, in, out, NULL, lat + done, &err)) {
                pmlc_cli_fail("inference failed", &err);
                goto out;
            }
            done += batches;
            passes++;
        }
        double total = now() - start;
        qsort(lat, (size_t)done, sizeof *lat, by_value);
        printf("bench: %lld passes over %lld rows, micro-batches of %lld, %d threads\n", (long long)passes,
               (long long)n, (long long)mbs, threads);
        printf("latency per micro-batch: median %.3f ms, p90 %.3f ms\n", 1e3 * lat[done / 2],
               1e3 * lat[(size_t)((double)(done - 1) * 0.9)]);
        printf("throughput: %.1f rows/s\n", (double)(passes * n) / total);
    }
    rc = 0;
out:
    free(lat);
    free(y);
    free(out);
    free(in);
    pml_npy_close(&x);
    pml_pipeline_destroy(pipe);
    pml_plan_free(pl);
    return rc;
}

/* infer_cmd.c — `pmlc infer FILE|PLAN --weights W --input X.npy --output Y.npy`: run
 * the model forward (dropout off, no loss) over every row of X and write the outputs,
 * through pml.h's inference session (pml_infer_run: api_infer.c), which any embedding
 * program gets too.
 *
 * The N rows of X (its first dimension) are cut into micro-batches of the plan's
 * micro-batch size; the last partial one is padded with zeros and its extra outputs
 * dropped. Each row must have the model input's shape without its batch dimension;
 * element types convert as the training feed converts them (pml_buffer). Y is f32
 * [N, output dims...], written by libpml's output rule (pml_array_save: atomically, or
 * in place to a device or fifo), its path checked before any work. W is whatever
 * --init takes (pml_infer_create reads it as pml_session_load_weights does): a
 * model.safetensors (every parameter, by plan name), a shard index, or a folder holding
 * either (a checkpoint, or plain weights), or a `pmlc quantize` file (int8 products: the
 * first line says for how many layers). --bench times repeated passes over X (at least
 * one, and at least 1 s) and prints the latency per micro-batch (wall: median, p90, p99;
 * and the process's CPU time, median, which a machine shared with other work does not
 * inflate) and the throughput in rows/s; running it with f32 weights and with their
 * int8 file compares the two. The run that writes Y comes first and warms up (weights
 * paged in, buffers touched).
 *
 * --trace FILE writes a Chrome trace (pml_infer_trace) of the forwards that are timed:
 * with --bench the first TRACE_FORWARDS of its micro-batches (their latency then
 * includes the clock reads, about a microsecond per op and thread; the rest read none),
 * else the first TRACE_FORWARDS micro-batches of the run that writes Y. Its path is
 * checked before any work; a backend that cannot time its ops is refused there too.
 *
 * SIGINT, SIGTERM and SIGUSR1 end it at once with 128 + the signal's number, leaving
 * no partial output (cli_signal.h).
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

#include "cli_signal.h"
#include "cli_util.h"

/* The most forwards a trace records: enough for medians per op, a file of a few MB. */
enum { TRACE_FORWARDS = 200 };

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The rows [r0, r0 + rows) of X, a buffer pml_infer_run reads in place. */
static pml_buffer rows_of(const pml_buffer *x, int64_t r0, int64_t rows)
{
    pml_buffer b = *x;
    size_t row_bytes = pml_dtype_size(x->dtype);
    for (int k = 1; k < x->rank; k++) row_bytes *= (size_t)x->dims[k];
    b.data = x->data ? (const char *)x->data + (size_t)r0 * row_bytes : NULL;
    b.dims[0] = rows;
    return b;
}

/* Reports the inference session's last error (a message about X starts with its path). */
static int infer_fail(const char *what, const pml_context *ctx)
{
    fprintf(stderr, "pmlc: error: %s: %s\n", what, pml_context_error(ctx));
    return 1;
}

int pmlc_infer_main(const pmlc_infer_args *a)
{
    if (pmlc_signal_end_at_once()) return pmlc_cli_fail("cannot handle signals", NULL);
    pml_context *ctx = NULL;
    if (pml_context_create(&ctx)) return pmlc_cli_fail("out of memory", NULL);
    if (pmlc_cli_devices(ctx, a->gpus, a->n_gpus, a->devices_local)) {
        pml_context_destroy(ctx);
        return 1;
    }
    pml_plan *pl = NULL;
    int rc = 1;
    pml_infer *inf = NULL;
    pml_array *xa = NULL;
    pml_buffer x = {0};
    void *y = NULL;
    double *lat = NULL, *cpu = NULL;
    int64_t traced = 0; /* forwards in the trace */
    if (pmlc_plan_from_file(ctx, a->file, &a->compile, a->backend, &pl)) goto out;
    if (a->output && pml_output_check(ctx, a->output)) { /* before the work, not after it */
        pmlc_cli_fail("--output", pml_context_error(ctx));
        goto out;
    }
    if (a->trace && pml_output_check(ctx, a->trace)) {
        pmlc_cli_fail("--trace", pml_context_error(ctx));
        goto out;
    }
    if (pml_plan_input_count(pl) != 1) {
        fprintf(stderr, "pmlc: error: %s: the model has %d inputs; pmlc infer supports models with one input for now\n",
                a->file, pml_plan_input_count(pl));
        goto out;
    }
    pml_backend backend;
    if (pmlc_cli_backend(ctx, a->backend, pl, &backend)) goto out;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = a->threads > 0 ? a->threads : (int)(cpus > 0 ? cpus : 1);
    pml_status st = pml_infer_create(ctx, pl, backend, threads, a->weights, &inf);
    if (st) {
        infer_fail(st == PML_ERR_UNSUPPORTED ? a->file : "cannot load the weights", ctx);
        goto out;
    }
    if (pml_infer_int8_note(inf) && !a->quiet) fprintf(stderr, "%s\n", pml_infer_int8_note(inf));
    if (a->trace && !a->bench && pml_infer_trace(inf, a->trace, TRACE_FORWARDS)) { /* the run's forwards */
        pmlc_cli_fail("--trace", pml_context_error(ctx));
        goto out;
    }
    if (pml_array_open(ctx, a->input, &x, &xa)) {
        pmlc_cli_fail("cannot read the input", pml_context_error(ctx));
        goto out;
    }
    int64_t n = x.rank >= 1 ? x.dims[0] : 0, mbs;
    pml_plan_batch(pl, NULL, &mbs);
    int64_t batches = (n + mbs - 1) / mbs;
    pml_tensor_info yi;
    pml_infer_output(inf, n, &yi);
    size_t out_row = 1;
    for (int k = 1; k < yi.rank; k++) out_row *= (size_t)yi.dims[k];
    size_t y_bytes = (size_t)n * out_row * sizeof(float);
    if (!(y = malloc(y_bytes + 4))) {
        pmlc_cli_fail("out of memory for the rows", NULL);
        goto out;
    }
    double t0 = now();
    pml_buffer all = rows_of(&x, 0, n);
    if (pml_infer_run(inf, &all, 1, y, y_bytes)) {
        infer_fail("cannot read the input", ctx);
        goto out;
    }
    if (yi.dtype == PML_I32) /* Y is f32 */
        for (size_t i = 0; i < (size_t)n * out_row; i++) ((float *)y)[i] = (float)((const int32_t *)y)[i];
    if (a->output) {
        pml_buffer yb = {y, PML_F32, yi.rank, {n}, NULL};
        for (int k = 1; k < yi.rank && k < PML_MAX_RANK; k++) yb.dims[k] = yi.dims[k];
        if (pml_array_save(ctx, a->output, &yb)) {
            pmlc_cli_fail("cannot write the output", pml_context_error(ctx));
            goto out;
        }
    }
    if (!a->bench) traced = batches < TRACE_FORWARDS ? batches : TRACE_FORWARDS;
    if (!a->quiet)
        fprintf(stderr, "inferred %lld rows in %lld micro-batches of %lld (%.1f ms)\n", (long long)n,
                (long long)batches, (long long)mbs, 1e3 * (now() - t0));
    if (a->bench) {
        if (n == 0) {
            fprintf(stderr, "pmlc: error: %s: holds no rows to time\n", a->input);
            goto out;
        }
        int64_t cap = 0, done = 0, passes = 0;
        if (a->trace && pml_infer_trace(inf, a->trace, TRACE_FORWARDS)) {
            pmlc_cli_fail("--trace", pml_context_error(ctx));
            goto out;
        }
        double start = now();
        while (passes < 1 || now() - start < 1.0) {
            if (done + batches > cap) {
                cap = 2 * (done + batches);
                double *grown = realloc(lat, (size_t)cap * sizeof *lat),
                       *grown_cpu = grown ? realloc(cpu, (size_t)cap * sizeof *cpu) : NULL;
                if (grown) lat = grown;
                if (grown_cpu) cpu = grown_cpu;
                if (!grown || !grown_cpu) {
                    pmlc_cli_fail("out of memory for the timings", NULL);
                    goto out;
                }
            }
            /* One run per micro-batch of rows: its latency. */
            for (int64_t r0 = 0; r0 < n; r0 += mbs) {
                int64_t rows = n - r0 < mbs ? n - r0 : mbs;
                pml_buffer part = rows_of(&x, r0, rows);
                double tb = now(), cb = clock_s(CLOCK_PROCESS_CPUTIME_ID);
                if (pml_infer_run(inf, &part, 1, y, y_bytes)) {
                    infer_fail("inference failed", ctx);
                    goto out;
                }
                lat[done] = now() - tb;
                cpu[done++] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cb;
            }
            passes++;
        }
        double total = now() - start;
        traced = done < TRACE_FORWARDS ? done : TRACE_FORWARDS;
        qsort(lat, (size_t)done, sizeof *lat, by_value);
        qsort(cpu, (size_t)done, sizeof *cpu, by_value);
        printf("bench: %lld passes over %lld rows, micro-batches of %lld, %d threads", (long long)passes, (long long)n,
               (long long)mbs, threads);
        if (pml_infer_int8_served(inf))
            printf(", int8 products for %d layer%s", pml_infer_int8_served(inf),
                   pml_infer_int8_served(inf) == 1 ? "" : "s");
        printf("\nlatency per micro-batch: median %.3f ms, p90 %.3f ms, p99 %.3f ms (wall); cpu median %.3f ms\n",
               1e3 * lat[done / 2], 1e3 * lat[(size_t)((double)(done - 1) * 0.9)],
               1e3 * lat[(size_t)((double)(done - 1) * 0.99)], 1e3 * cpu[done / 2]);
        printf("throughput: %.1f rows/s\n", (double)(passes * n) / total);
    }
    if (a->trace) {
        if (pml_infer_trace_save(inf)) {
            pmlc_cli_fail("cannot write the trace", pml_context_error(ctx));
            goto out;
        }
        if (!a->quiet)
            fprintf(stderr, "timeline of %lld forwards in %s\n", (long long)traced, a->trace);
    }
    rc = 0;
out:
    free(lat);
    free(cpu);
    free(y);
    pml_array_close(xa);
    pml_infer_destroy(inf);
    pml_plan_close(pl);
    pml_context_destroy(ctx);
    return rc;
}

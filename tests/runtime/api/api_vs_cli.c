/* api_vs_cli.c — the API's half of api_vs_cli_test.py: trains a model through pml.h on
 * caller buffers holding the rows `pmlc train` draws (pml_session_batch), the first half
 * of the steps by pml_session_train_batch and the rest through a feeder, then evaluates
 * and infers on rows read from raw files. Public headers only.
 *
 * Usage: api_vs_cli MODEL.pml SEED STEPS WEIGHTS XI.f32 NI EX.f32 EY.i32 NE OUTDIR
 * Prints "loss L" per step (the metrics callback) and "eval LOSS ACCURACY" (%.9g, as
 * pmlc's metrics); writes OUTDIR/params.f32 (every parameter in plan order, named by
 * "param NAME" lines), OUTDIR/session_infer.f32 (inference with the session's weights)
 * and OUTDIR/weights_infer.f32 (with WEIGHTS, as `pmlc infer --weights` reads them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml.h"
#include "pmlc.h"

static pml_context *ctx;

static int fail(const char *what)
{
    fprintf(stderr, "api_vs_cli: %s: %s\n", what, pml_context_error(ctx));
    return 1;
}

/* A raw file of n elements of `size` bytes, malloc'ed. */
static void *slurp(const char *path, size_t n, size_t size)
{
    void *buf = malloc(n * size + 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, size, n, f) != n) {
        fprintf(stderr, "api_vs_cli: cannot read %zu elements of %s\n", n, path);
        exit(1);
    }
    fclose(f);
    return buf;
}

static void spill(const char *dir, const char *name, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f)) {
        fprintf(stderr, "api_vs_cli: cannot write %s\n", path);
        exit(1);
    }
}

static int feed_from(void *reader, int64_t step, void *const *inputs, void *labels)
{
    return pml_session_batch(reader, step, inputs, labels) ? 1 : 0;
}

static int print_loss(void *user, const pml_step_metrics *m)
{
    printf("loss %.9g\n", m->loss);
    return 0;
}

/* Rows of the model's one input (or its labels) as a pml_buffer of n rows. */
static pml_buffer rows_like(const pml_tensor_info *t, const void *data, pml_dtype dtype, int64_t n)
{
    pml_buffer b = {data, dtype, t->rank, {0}, NULL};
    memcpy(b.dims, t->dims, sizeof b.dims);
    b.dims[0] = n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: api_vs_cli MODEL.pml SEED STEPS WEIGHTS XI.f32 NI EX.f32 EY.i32 NE OUTDIR\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[2], NULL, 10);
    int64_t steps = atoll(argv[3]), ni = atoll(argv[6]), ne = atoll(argv[9]);
    const char *out = argv[10];
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *cs = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (pmlc_session_check_file(cs, argv[1]) || pmlc_session_plan_bytes(cs, &bytes, &len)) return 1;
    pmlc_session_destroy(cs);
    pml_plan *plan;
    pml_session *reader, *s;
    if (pml_context_create(&ctx) || pml_plan_open_memory(ctx, bytes, len, argv[1], &plan) ||
        pml_session_create(ctx, plan, PML_BACKEND_CPU, seed, &reader) ||
        pml_session_create(ctx, plan, PML_BACKEND_CPU, seed, &s))
        return fail("setup");
    pml_tensor_info xt, yt, ot;
    pml_plan_input_info(plan, 0, &xt);
    pml_plan_labels_info(plan, &yt);
    size_t x_row = 1, o_row = 1;
    for (int k = 1; k < xt.rank; k++) x_row *= (size_t)xt.dims[k];
    float *x = malloc((size_t)xt.dims[0] * x_row * 4);
    int32_t *y = malloc((size_t)yt.dims[0] * 4);
    pml_session_set_metrics(s, print_loss, NULL);
    for (int64_t step = 0; step < steps / 2; step++) { /* caller buffers */
        void *in[1] = {x};
        pml_buffer bx = rows_like(&xt, x, xt.dtype, xt.dims[0]), by = rows_like(&yt, y, yt.dtype, yt.dims[0]);
        if (pml_session_batch(reader, step, in, y) || pml_session_train_batch(s, &bx, 1, &by, NULL))
            return fail("train_batch");
    }
    pml_session_set_feeder(s, feed_from, reader); /* then the feeder */
    if (pml_session_train(s, steps - steps / 2, NULL)) return fail("train with a feeder");
    for (int q = 0; q < pml_plan_param_count(plan); q++) {
        pml_tensor_info p;
        pml_plan_param_info(plan, q, &p);
        printf("param %s\n", p.name);
    }
    size_t total = 0;
    for (int q = 0; q < pml_plan_param_count(plan); q++) total += (size_t)pml_plan_param_numel(plan, q);
    float *w = malloc(total * 4), *at = w;
    for (int q = 0; q < pml_plan_param_count(plan); q++) {
        if (pml_session_read(s, pml_plan_param_name(plan, q), at, pml_plan_param_numel(plan, q))) return fail("read");
        at += pml_plan_param_numel(plan, q);
    }
    spill(out, "params.f32", w, total * 4);
    float *ex = slurp(argv[7], (size_t)ne * x_row, 4);
    int32_t *ey = slurp(argv[8], (size_t)ne, 4);
    pml_buffer bex = rows_like(&xt, ex, PML_F32, ne), bey = rows_like(&yt, ey, PML_I32, ne);
    pml_eval_result r;
    if (pml_session_evaluate(s, &bex, 1, &bey, &r)) return fail("evaluate");
    printf("eval %.9g %.9g\n", r.loss, r.accuracy);
    float *xi = slurp(argv[5], (size_t)ni * x_row, 4);
    pml_buffer bxi = rows_like(&xt, xi, PML_F32, ni);
    pml_infer *from_session, *from_weights;
    if (pml_infer_create_from_session(s, 1, &from_session) ||
        pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, argv[4], &from_weights))
        return fail("infer_create");
    pml_infer_output(from_session, ni, &ot);
    for (int k = 1; k < ot.rank; k++) o_row *= (size_t)ot.dims[k];
    size_t ob = (size_t)ni * o_row * 4;
    float *yi = malloc(ob + 4);
    if (pml_infer_run(from_session, &bxi, 1, yi, ob)) return fail("infer_run");
    spill(out, "session_infer.f32", yi, ob);
    if (pml_infer_run(from_weights, &bxi, 1, yi, ob)) return fail("infer_run");
    spill(out, "weights_infer.f32", yi, ob);
    pml_infer_destroy(from_session);
    pml_infer_destroy(from_weights);
    pml_session_destroy(s);
    pml_session_destroy(reader);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    free(bytes), free(x), free(y), free(w), free(ex), free(ey), free(xi), free(yi);
    return 0;
}

/* embed_serve — serving a PML classifier from your own C program, on your own data.
 *
 * Compiles a .pml classifier (input f32[B, F], output [B, C], class labels) with the
 * compiler library (pmlc.h), then takes its weights from a checkpoint that `pmlc train
 * --out DIR` wrote (any form `pmlc infer --weights` takes) or, without one, trains it
 * briefly in process on rows this program makes, handed to the library by a feeder
 * callback. It then serves: one reusable inference session (pml.h) runs the model on a
 * request of rows of any count, and it prints each row's predicted class. Build: see
 * CMakeLists.txt beside this file; run:
 *   embed_serve examples/mlp.pml                   # train 40 steps on its rows, then serve
 *   pmlc train examples/mlp.pml --steps 50 --out ckpt
 *   embed_serve examples/mlp.pml ckpt              # serve pmlc's checkpoint */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml.h"
#include "pmlc.h"

/* The program's data: a row of class c has a bump over features [c·F/C, (c+1)·F/C),
 * on top of a deterministic ripple that differs from row to row. */
static void make_row(float *x, int64_t features, int64_t classes, int64_t c, int64_t seed)
{
    for (int64_t j = 0; j < features; j++) {
        int on = j * classes / features == c;
        x[j] = (float)(0.3 * sin(0.7 * (double)j + 1.3 * (double)seed) + (on ? 1.0 : 0.0));
    }
}

/* What the feeder needs to know of the model. */
typedef struct shape {
    int64_t features, classes, batch;
} shape;

/* The feeder: the library asks for step `step`'s global batch (pml_plan_input_info's
 * shape, batch x features, and its labels) and this program makes it. */
static int feed(void *user, int64_t step, void *const *inputs, void *labels)
{
    const shape *sh = user;
    float *rows = inputs[0];
    int32_t *y = labels;
    for (int64_t i = 0; i < sh->batch; i++) {
        int64_t seed = step * sh->batch + i, c = (seed * 7 + 3) % sh->classes;
        make_row(rows + i * sh->features, sh->features, sh->classes, c, seed);
        y[i] = (int32_t)c;
    }
    return 0;
}

static int print_metrics(void *user, const pml_step_metrics *m)
{
    if (m->step % 10 == 0) printf("step %lld loss %.4f\n", (long long)m->step, m->loss);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: embed_serve MODEL.pml [WEIGHTS]\n");
        return 2;
    }
    const char *weights = argc == 3 ? argv[2] : NULL;

    /* 1. Compile: diagnostics go to stderr, like pmlc's. */
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *compiler = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (pmlc_session_check_file(compiler, argv[1]) || pmlc_session_plan_bytes(compiler, &bytes, &len)) {
        pmlc_session_destroy(compiler);
        return 1;
    }
    pmlc_session_destroy(compiler);

    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    pml_session *session = NULL;
    pml_infer *server = NULL;
    float *rows = NULL, *out = NULL;
    int rc = 1;
    if (pml_context_create(&ctx) || pml_plan_open_memory(ctx, bytes, len, argv[1], &plan)) goto fail;

    /* 2. What the model takes and gives. */
    pml_tensor_info in, outp;
    int64_t batch = 0;
    pml_plan_batch(plan, &batch, NULL);
    if (pml_plan_input_count(plan) != 1 || pml_plan_input_info(plan, 0, &in) || in.rank != 2 ||
        in.dtype != PML_F32 || pml_plan_output_info(plan, &outp) || outp.rank != 2) {
        fprintf(stderr, "embed_serve: %s is not a classifier of f32 rows (input f32[B, F], output [B, C])\n", argv[1]);
        goto out;
    }
    shape sh = {in.dims[1], outp.dims[1], batch};

    /* 3. Weights: a checkpoint pmlc wrote, or a short training on this program's rows. */
    if (weights) {
        if (pml_infer_create(ctx, plan, PML_BACKEND_AUTO, 0, weights, &server)) goto fail;
        printf("serving %s with the weights of %s\n", argv[1], weights);
    } else {
        if (pml_session_create(ctx, plan, PML_BACKEND_AUTO, 1234, &session) ||
            pml_session_set_feeder(session, feed, &sh) || pml_session_set_metrics(session, print_metrics, NULL) ||
            pml_session_train(session, 40, NULL) || pml_infer_create_from_session(session, 0, &server))
            goto fail;
        printf("serving %s after 40 steps on this program's rows\n", argv[1]);
    }

    /* 4. Serve a request: rows of any count (not a multiple of the micro-batch). */
    int64_t n = 25, hits = 0;
    pml_tensor_info answer; /* n rows of C scores */
    if (pml_infer_output(server, n, &answer)) goto fail;
    rows = malloc(sizeof(float) * (size_t)(n * sh.features));
    out = malloc(sizeof(float) * (size_t)(answer.dims[0] * answer.dims[1]));
    if (!rows || !out) goto out;
    for (int64_t i = 0; i < n; i++)
        make_row(rows + i * sh.features, sh.features, sh.classes, i % sh.classes, 1000 + i);
    pml_buffer request = {rows, PML_F32, 2, {n, sh.features}, "request"};
    if (pml_infer_run(server, &request, 1, out, sizeof(float) * (size_t)(n * sh.classes))) goto fail;
    for (int64_t i = 0; i < n; i++) {
        const float *o = out + i * sh.classes;
        int64_t best = 0;
        for (int64_t k = 1; k < sh.classes; k++)
            if (o[k] > o[best]) best = k;
        hits += best == i % sh.classes;
        printf("row %lld: predicted class %lld (made as class %lld)\n", (long long)i, (long long)best,
               (long long)(i % sh.classes));
    }
    printf("%lld of %lld rows predicted as made\n", (long long)hits, (long long)n);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "embed_serve: %s\n", ctx ? pml_context_error(ctx) : "out of memory");
out:
    free(rows);
    free(out);
    pml_infer_destroy(server);
    pml_session_destroy(session);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    free(bytes);
    return rc;
}

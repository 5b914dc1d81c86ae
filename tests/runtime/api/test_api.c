/* test_api.c — pml.h on caller data, through the public headers only (pml.h, and
 * pmlc.h to compile a model in memory): tensors described, steps on caller rows and a
 * feeder's equal the plan's own data's bit for bit, callbacks, evaluation, inference,
 * and every error path (bad shapes, NULLs, wrong dtypes, calls in the wrong order)
 * refused with a status and a message, leaving the session as it was.
 *
 * Usage: test_api BEHAVIOUR (see main). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pml.h"
#include "pmlc.h"

/* Two stages, 8 features, 3 classes; a global batch of 8 in 2 micro-batches of 4. */
#define MODEL(DATA)                                                              \
    "import \"nn\"\n"                                                            \
    "model m(x: f32[B, 8]) -> f32[B, 3] {\n"                                     \
    "    stage 0 { h = gelu(linear(x, 16) as fc1) }\n"                           \
    "    stage 1 { return linear(h, 3) as head }\n"                              \
    "}\n"                                                                        \
    "train m {\n" DATA "    loss = cross_entropy\n"                              \
    "    optimizer = adamw(lr = 1e-2)\n"                                         \
    "    batch = 8, microbatches = 2\n"                                          \
    "    steps = 10\n"                                                           \
    "}\n"
static const char *const WITH_DATA = MODEL("    data = classes(features = 8, classes = 3, seed = 1)\n");
static const char *const WITHOUT_DATA = MODEL("");

enum { B = 8, F = 8, C = 3 };

static pml_context *ctx;

static pml_plan *compile(const char *text)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *cs = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_plan *plan = NULL;
    if (!pmlc_session_check_text(cs, "api.pml", text, strlen(text)) && !pmlc_session_plan_bytes(cs, &bytes, &len))
        pml_plan_open_memory(ctx, bytes, len, "api.pml", &plan);
    pmlc_session_destroy(cs);
    free(bytes);
    if (!plan) fprintf(stderr, "cannot compile the test model: %s\n", pml_context_error(ctx));
    return plan;
}

static pml_session *session(const pml_plan *plan)
{
    pml_session *s = NULL;
    if (pml_session_create(ctx, plan, PML_BACKEND_CPU, 7, &s)) fprintf(stderr, "%s\n", pml_context_error(ctx));
    return s;
}

/* Every parameter's values, in plan order, in one malloc'ed array. */
static float *params(const pml_plan *plan, pml_session *s, size_t *n)
{
    size_t total = 0;
    for (int q = 0; q < pml_plan_param_count(plan); q++) total += (size_t)pml_plan_param_numel(plan, q);
    float *all = malloc(total * sizeof *all), *at = all;
    for (int q = 0; q < pml_plan_param_count(plan); q++) {
        int64_t k = pml_plan_param_numel(plan, q);
        CHECK(!pml_session_read(s, pml_plan_param_name(plan, q), at, k));
        at += k;
    }
    *n = total;
    return all;
}

static int same_params(const pml_plan *plan, pml_session *a, pml_session *b)
{
    size_t na, nb;
    float *pa = params(plan, a, &na), *pb = params(plan, b, &nb);
    int same = na == nb && !memcmp(pa, pb, na * sizeof *pa);
    free(pa);
    free(pb);
    return same;
}

static int says(const char *what)
{
    const char *msg = pml_context_error(ctx);
    if (strstr(msg, what)) return 1;
    fprintf(stderr, "the message '%s' does not say '%s'\n", msg, what);
    return 0;
}

static pml_buffer rows(const void *data, pml_dtype t, int rank, int64_t d0, int64_t d1)
{
    pml_buffer b = {data, t, rank, {d0, d1}, NULL};
    return b;
}

/* A deterministic global batch: x[i][j] and labels i % C. */
static void make_batch(float *x, int32_t *y, int64_t n, int seed)
{
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < F; j++) x[i * F + j] = (float)sin(0.37 * (double)(i * F + j) + seed) + (float)(i % C) * 0.5f;
        y[i] = (int32_t)(i % C);
    }
}

static void describes_the_model(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    int64_t batch = 0, mb = 0;
    pml_plan_batch(plan, &batch, &mb);
    CHECK(batch == B && mb == 4);
    pml_tensor_info t;
    CHECK(pml_plan_input_count(plan) == 1);
    CHECK(!pml_plan_input_info(plan, 0, &t) && !strcmp(t.name, "x") && t.dtype == PML_F32 && t.rank == 2 &&
          t.dims[0] == B && t.dims[1] == F);
    CHECK(!pml_plan_labels_info(plan, &t) && t.dtype == PML_I32 && t.rank == 1 && t.dims[0] == B);
    CHECK(!pml_plan_output_info(plan, &t) && t.dtype == PML_F32 && t.rank == 2 && t.dims[0] == B && t.dims[1] == C);
    CHECK(pml_plan_input_info(plan, 1, &t) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_input_info(plan, -1, &t) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_input_info(NULL, 0, &t) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_input_info(plan, 0, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_labels_info(plan, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_output_info(NULL, &t) == PML_ERR_INVALID_ARG);
    CHECK(pml_plan_param_count(plan) == 4);
    for (int q = 0; q < pml_plan_param_count(plan); q++) {
        CHECK(!pml_plan_param_info(plan, q, &t));
        int64_t n = 1;
        for (int k = 0; k < t.rank; k++) n *= t.dims[k];
        CHECK(n == pml_plan_param_numel(plan, q) && t.dtype == PML_F32 && !strcmp(t.name, pml_plan_param_name(plan, q)));
        CHECK(pml_plan_param_find(plan, t.name) == q);
    }
    CHECK(!pml_plan_param_info(plan, pml_plan_param_find(plan, "fc1.weight"), &t) && t.rank == 2 &&
          t.dims[0] * t.dims[1] == 16 * F);
    CHECK(pml_plan_param_find(plan, "nope") == -1 && pml_plan_param_find(plan, NULL) == -1);
    CHECK(pml_plan_param_info(plan, 4, &t) == PML_ERR_INVALID_ARG && pml_plan_param_info(plan, 0, NULL));
    pml_session *s = session(plan);
    float w[3];
    CHECK(pml_session_read(s, "head.bias", w, 2) == PML_ERR_INVALID_ARG && says("has 3 elements, not 2"));
    CHECK(pml_session_read(s, "nope", w, 3) == PML_ERR_INVALID_ARG && says("no parameter 'nope'"));
    CHECK(pml_session_read(s, NULL, w, 3) == PML_ERR_INVALID_ARG);
    CHECK(pml_session_read(s, "head.bias", NULL, 3) == PML_ERR_INVALID_ARG);
    CHECK(pml_session_write(s, "head.bias", NULL, 3) == PML_ERR_INVALID_ARG);
    CHECK(pml_session_read(NULL, "head.bias", w, 3) == PML_ERR_INVALID_ARG);
    pml_session_destroy(s);
    pml_plan_close(plan);
}

static int32_t reader_labels[B];
static float reader_x[B * F];
static int fed_steps;

/* A feeder serving the plan's own rows, read from another session. */
static int feed_from(void *user, int64_t step, void *const *inputs, void *labels)
{
    fed_steps++;
    return pml_session_batch(user, step, inputs, labels) ? 9 : 0;
}

static double seen_loss[16];
static int seen;

static int record_metrics(void *user, const pml_step_metrics *m)
{
    CHECK(m->samples == B && m->step == seen + 1 && m->seconds >= 0 && m->feed_seconds >= 0 && m->lr > 0 &&
          m->grad_norm > 0);
    if (seen < 16) seen_loss[seen] = m->loss;
    seen++;
    return user && seen >= *(int *)user; /* stop pml_session_train there */
}

static void caller_rows_train_as_the_plan_data_does(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *a = session(plan), *b = session(plan), *c = session(plan), *reader = session(plan);
    double loss_a[3], loss_b[3];
    for (int step = 0; step < 3; step++) {
        pml_step_metrics m;
        CHECK(!pml_session_train_step(a, &m) && m.step == step + 1);
        loss_a[step] = m.loss;
        void *in[1] = {reader_x};
        CHECK(!pml_session_batch(reader, step, in, reader_labels));
        pml_buffer x = rows(reader_x, PML_F32, 2, B, F), y = rows(reader_labels, PML_I32, 1, B, 0);
        CHECK(!pml_session_train_batch(b, &x, 1, &y, &m) && m.step == step + 1 && m.samples == B);
        loss_b[step] = m.loss;
    }
    CHECK(!memcmp(loss_a, loss_b, sizeof loss_a));
    CHECK(same_params(plan, a, b));
    CHECK(!pml_session_set_feeder(c, feed_from, reader) && !pml_session_set_metrics(c, record_metrics, NULL));
    int64_t done = -1;
    CHECK(!pml_session_train(c, 3, &done) && done == 3 && fed_steps == 3 && seen == 3);
    CHECK(!memcmp(seen_loss, loss_a, sizeof loss_a));
    CHECK(same_params(plan, a, c));
    pml_session_destroy(a);
    pml_session_destroy(b);
    pml_session_destroy(c);
    pml_session_destroy(reader);
    pml_plan_close(plan);
}

static void train_batch_refuses_what_does_not_fit(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *s = session(plan), *fresh = session(plan);
    float x[B * F + F], bad[B * F];
    int32_t y[B];
    int64_t y64[B];
    float yf[B];
    make_batch(x, y, B, 1);
    for (int i = 0; i < B; i++) y64[i] = y[i], yf[i] = (float)y[i];
    pml_buffer bx = rows(x, PML_F32, 2, B, F), by = rows(y, PML_I32, 1, B, 0), t;
    pml_step_metrics m = {0};
    CHECK(pml_session_train_batch(s, &bx, 0, &by, &m) == PML_ERR_INVALID_ARG && says("0 input buffers") &&
          says("has 1 input"));
    CHECK(pml_session_train_batch(s, NULL, 1, &by, &m) == PML_ERR_INVALID_ARG && says("inputs is NULL"));
    CHECK(pml_session_train_batch(s, &bx, 1, NULL, &m) == PML_ERR_INVALID_ARG && says("labels is NULL"));
    CHECK(pml_session_train_batch(NULL, &bx, 1, &by, &m) == PML_ERR_INVALID_ARG);
    t = rows(x, PML_F32, 2, B - 1, F);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("input 'x'") &&
          says("has 7 rows, but the call takes 8"));
    t = rows(x, PML_F32, 2, B, F - 1);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("has shape (8, 7)") &&
          says("the model's input 'x' needs shape (N, 8)"));
    t = rows(x, PML_F32, 3, B, F);
    t.dims[2] = 1;
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("has shape (8, 8, 1)"));
    t = rows(x, PML_F32, 0, B, F);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("rank 0"));
    t = rows(x, PML_F32, 2, B, -1);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("dimension 1 of -1"));
    t = rows(x, PML_F16, 2, B, F);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_UNSUPPORTED && says("holds f16") &&
          says("input 'x' of type f32"));
    t = rows(x, (pml_dtype)99, 2, B, F);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("no valid dtype"));
    t = rows(NULL, PML_F32, 2, B, F);
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_INVALID_ARG && says("has no data"));
    memcpy(bad, x, sizeof bad);
    bad[2 * F + 5] = NAN;
    t = rows(bad, PML_F32, 2, B, F);
    t.source = "mine.bin";
    CHECK(pml_session_train_batch(s, &t, 1, &by, &m) == PML_ERR_NONFINITE && says("mine.bin: row 2 (element 21)"));
    int32_t y_out[B];
    memcpy(y_out, y, sizeof y_out);
    y_out[5] = 3;
    t = rows(y_out, PML_I32, 1, B, 0);
    CHECK(pml_session_train_batch(s, &bx, 1, &t, &m) == PML_ERR_INVALID_ARG && says("row 5: label 3 is outside [0, 3)"));
    t = rows(yf, PML_F32, 1, B, 0);
    CHECK(pml_session_train_batch(s, &bx, 1, &t, &m) == PML_ERR_UNSUPPORTED && says("holds f32") &&
          says("save them as integers"));
    /* Nothing above took a step or touched a weight. */
    CHECK(same_params(plan, s, fresh));
    CHECK(m.step == 0);
    /* i64 labels and f64 rows convert, as a .npy file's do. */
    double x64[B * F];
    for (int i = 0; i < B * F; i++) x64[i] = x[i];
    pml_buffer bx64 = rows(x64, PML_F64, 2, B, F), by64 = rows(y64, PML_I64, 1, B, 0);
    CHECK(!pml_session_train_batch(s, &bx64, 1, &by64, &m) && m.step == 1);
    CHECK(!pml_session_train_batch(fresh, &bx, 1, &by, &m) && m.step == 1);
    CHECK(same_params(plan, s, fresh));
    y64[1] = INT64_C(1) << 40;
    CHECK(pml_session_train_batch(s, &bx, 1, &by64, &m) == PML_ERR_INVALID_ARG && says("label 1099511627776"));
    pml_session_destroy(s);
    pml_session_destroy(fresh);
    pml_plan_close(plan);
}

static int fail_feeder(void *user, int64_t step, void *const *inputs, void *labels) { return 5; }

static int nan_feeder(void *user, int64_t step, void *const *inputs, void *labels)
{
    make_batch(inputs[0], labels, B, 2);
    ((float *)inputs[0])[3 * F] = INFINITY;
    return 0;
}

static int good_feeder(void *user, int64_t step, void *const *inputs, void *labels)
{
    make_batch(inputs[0], labels, B, (int)step);
    return 0;
}

static void feeder_and_metrics_callbacks(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *s = session(plan), *fresh = session(plan);
    pml_step_metrics m = {0};
    seen = 0;
    CHECK(!pml_session_set_metrics(s, record_metrics, NULL));
    CHECK(!pml_session_set_feeder(s, fail_feeder, NULL));
    CHECK(pml_session_train_step(s, &m) == PML_ERR_INVALID_ARG && says("the feeder returned 5 at step 0"));
    CHECK(!pml_session_set_feeder(s, nan_feeder, NULL));
    CHECK(pml_session_train_step(s, &m) == PML_ERR_NONFINITE && says("the feeder's batch: row 3 (element 24) is inf"));
    int64_t done = -1;
    CHECK(pml_session_train(s, 4, &done) == PML_ERR_NONFINITE && done == 0);
    CHECK(seen == 0 && same_params(plan, s, fresh));
    /* The metrics callback stops pml_session_train. */
    int stop_at = 2;
    CHECK(!pml_session_set_feeder(s, good_feeder, NULL) && !pml_session_set_metrics(s, record_metrics, &stop_at));
    CHECK(!pml_session_train(s, 5, &done) && done == 2 && seen == 2);
    CHECK(pml_session_train(s, -1, &done) == PML_ERR_INVALID_ARG && done == 0);
    CHECK(!pml_session_train(s, 0, &done) && done == 0);
    /* Without the feeder, the plan's data again; without the callback, nothing is called. */
    CHECK(!pml_session_set_feeder(s, NULL, NULL) && !pml_session_set_metrics(s, NULL, NULL));
    CHECK(!pml_session_train_step(s, &m) && m.step == 3 && seen == 2);
    CHECK(pml_session_set_feeder(NULL, good_feeder, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_session_set_metrics(NULL, record_metrics, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_session_train(NULL, 1, &done) == PML_ERR_INVALID_ARG && done == 0);
    CHECK(pml_session_train_step(NULL, &m) == PML_ERR_INVALID_ARG);
    void *in[1] = {reader_x};
    CHECK(pml_session_batch(s, -1, in, reader_labels) == PML_ERR_INVALID_ARG && says("not a training step"));
    CHECK(pml_session_batch(s, 0, NULL, reader_labels) == PML_ERR_INVALID_ARG && says("inputs is NULL"));
    CHECK(pml_session_batch(s, 0, in, NULL) == PML_ERR_INVALID_ARG && says("labels is NULL"));
    in[0] = NULL;
    CHECK(pml_session_batch(s, 0, in, reader_labels) == PML_ERR_INVALID_ARG && says("inputs[0] (the input 'x') is NULL"));
    CHECK(pml_session_batch(NULL, 0, in, reader_labels) == PML_ERR_INVALID_ARG);
    pml_session_destroy(s);
    pml_session_destroy(fresh);
    pml_plan_close(plan);
}

static void a_plan_without_data_trains_on_caller_rows_only(void)
{
    pml_plan *plan = compile(WITHOUT_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *s = session(plan), *t = session(plan);
    if (!s || !t) {
        CHECK(0);
        return;
    }
    pml_step_metrics m = {0};
    CHECK(pml_session_train_step(s, &m) == PML_ERR_INVALID_ARG && says("names no data source") &&
          says("pml_session_train_batch"));
    void *in[1] = {reader_x};
    CHECK(pml_session_batch(s, 0, in, reader_labels) == PML_ERR_INVALID_ARG && says("names no data source"));
    float x[B * F];
    int32_t y[B];
    make_batch(x, y, B, 0);
    pml_buffer bx = rows(x, PML_F32, 2, B, F), by = rows(y, PML_I32, 1, B, 0);
    CHECK(!pml_session_train_batch(s, &bx, 1, &by, &m) && m.step == 1);
    CHECK(!pml_session_set_feeder(t, good_feeder, NULL) && !pml_session_train_step(t, &m) && m.step == 1);
    CHECK(same_params(plan, s, t));
    pml_session_destroy(s);
    pml_session_destroy(t);
    pml_plan_close(plan);
}

static void evaluation_on_caller_rows(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *s = session(plan), *twin = session(plan);
    pml_step_metrics m;
    for (int i = 0; i < 3; i++) CHECK(!pml_session_train_step(s, &m) && !pml_session_train_step(twin, &m));
    enum { N = 2 * B };
    float x[N * F];
    int32_t y[N];
    make_batch(x, y, N, 4);
    pml_buffer bx = rows(x, PML_F32, 2, N, F), by = rows(y, PML_I32, 1, N, 0), t;
    pml_eval_result r = {0};
    CHECK(!pml_session_evaluate(s, &bx, 1, &by, &r) && r.rows == N);
    /* The loss and accuracy are those of the outputs an inference gives. */
    pml_infer *inf = NULL;
    float out[N * C];
    CHECK(!pml_infer_create_from_session(s, 1, &inf) && !pml_infer_run(inf, &bx, 1, out, sizeof out));
    double loss = 0;
    int hits = 0;
    for (int i = 0; i < N; i++) {
        const float *o = out + i * C;
        double mx = o[0], sum = 0;
        int arg = 0;
        for (int k = 1; k < C; k++)
            if (o[k] > mx) mx = o[k], arg = k;
        for (int k = 0; k < C; k++) sum += exp(o[k] - mx);
        loss += mx + log(sum) - o[y[i]];
        hits += arg == y[i];
    }
    CHECK(fabs(r.loss - loss / N) < 1e-5 && r.accuracy == (double)hits / N);
    /* The weights, the optimizer and the step are as they were: the next step is the twin's. */
    CHECK(same_params(plan, s, twin));
    pml_step_metrics ms, mt;
    CHECK(!pml_session_train_step(s, &ms) && !pml_session_train_step(twin, &mt) && ms.step == 4 &&
          ms.loss == mt.loss && same_params(plan, s, twin));
    t = rows(x, PML_F32, 2, B + 4, F);
    pml_buffer ty = rows(y, PML_I32, 1, B + 4, 0);
    CHECK(pml_session_evaluate(s, &t, 1, &ty, &r) == PML_ERR_INVALID_ARG && says("whole global batches of 8"));
    t = rows(x, PML_F32, 2, 0, F), ty = rows(y, PML_I32, 1, 0, 0);
    CHECK(pml_session_evaluate(s, &t, 1, &ty, &r) == PML_ERR_INVALID_ARG && says("0 rows"));
    ty = rows(y, PML_I32, 1, B, 0);
    CHECK(pml_session_evaluate(s, &bx, 1, &ty, &r) == PML_ERR_INVALID_ARG && says("labels") &&
          says("has 8 rows, but the call takes 16"));
    CHECK(pml_session_evaluate(s, &bx, 1, NULL, &r) == PML_ERR_INVALID_ARG && says("labels is NULL"));
    CHECK(pml_session_evaluate(s, &bx, 1, &by, NULL) == PML_ERR_INVALID_ARG && says("out is NULL"));
    CHECK(pml_session_evaluate(NULL, &bx, 1, &by, &r) == PML_ERR_INVALID_ARG);
    pml_infer_destroy(inf);
    pml_session_destroy(s);
    pml_session_destroy(twin);
    pml_plan_close(plan);
}

static void inference_on_any_number_of_rows(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_session *s = session(plan);
    pml_step_metrics m;
    for (int i = 0; i < 2; i++) CHECK(!pml_session_train_step(s, &m));
    pml_infer *inf = NULL, *init = NULL;
    CHECK(!pml_infer_create_from_session(s, 0, &inf));
    enum { N = 13 };
    float x[N * F], all[N * C], one[C], later[N * C];
    int32_t y[N];
    make_batch(x, y, N, 3);
    pml_tensor_info t;
    CHECK(!pml_infer_output(inf, N, &t) && t.rank == 2 && t.dims[0] == N && t.dims[1] == C && t.dtype == PML_F32);
    pml_buffer bx = rows(x, PML_F32, 2, N, F), b;
    CHECK(!pml_infer_run(inf, &bx, 1, all, sizeof all));
    /* A row's output does not depend on its neighbours or on padding. */
    for (int i = 0; i < N; i++) {
        b = rows(x + i * F, PML_F32, 2, 1, F);
        CHECK(!pml_infer_run(inf, &b, 1, one, sizeof one) && !memcmp(one, all + i * C, sizeof one));
    }
    b = rows(NULL, PML_F32, 2, 0, F);
    CHECK(!pml_infer_run(inf, &b, 1, NULL, 0));
    /* The weights were copied: later training does not change them. */
    CHECK(!pml_session_train_step(s, &m));
    CHECK(!pml_infer_run(inf, &bx, 1, later, sizeof later) && !memcmp(later, all, sizeof all));
    /* Without weights: the initialisers'. */
    CHECK(!pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, NULL, &init));
    CHECK(!pml_infer_run(init, &bx, 1, later, sizeof later) && memcmp(later, all, sizeof all));
    /* Errors. */
    CHECK(pml_infer_run(inf, &bx, 1, all, sizeof all - 1) == PML_ERR_INVALID_ARG && says("holds 155 bytes") &&
          says("13 rows of output take 156"));
    CHECK(pml_infer_run(inf, &bx, 1, NULL, sizeof all) == PML_ERR_INVALID_ARG && says("pml_infer_run: out is NULL"));
    b = rows(x, PML_F32, 2, N, F + 1);
    CHECK(pml_infer_run(inf, &b, 1, all, sizeof all) == PML_ERR_INVALID_ARG && says("pml_infer_run: has shape (13, 9)"));
    CHECK(pml_infer_run(inf, &bx, 2, all, sizeof all) == PML_ERR_INVALID_ARG && says("2 input buffers"));
    CHECK(pml_infer_run(inf, NULL, 1, all, sizeof all) == PML_ERR_INVALID_ARG && says("inputs is NULL"));
    CHECK(pml_infer_run(NULL, &bx, 1, all, sizeof all) == PML_ERR_INVALID_ARG);
    CHECK(pml_infer_output(inf, -1, &t) == PML_ERR_INVALID_ARG && says("rows is -1"));
    CHECK(pml_infer_output(inf, 1, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_infer_output(NULL, 1, &t) == PML_ERR_INVALID_ARG);
    pml_infer *bad = (pml_infer *)1;
    CHECK(pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, "/nonexistent/w.safetensors", &bad) && bad == NULL &&
          says("/nonexistent/w.safetensors"));
    CHECK(pml_infer_create(ctx, plan, PML_BACKEND_CPU, -2, NULL, &bad) == PML_ERR_INVALID_ARG && says("threads is -2"));
    CHECK(pml_infer_create(ctx, NULL, PML_BACKEND_CPU, 1, NULL, &bad) == PML_ERR_INVALID_ARG);
    CHECK(pml_infer_create(ctx, plan, PML_BACKEND_CPU, 1, NULL, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_infer_create_from_session(s, 1, NULL) == PML_ERR_INVALID_ARG);
    CHECK(pml_infer_create_from_session(NULL, 1, &bad) == PML_ERR_INVALID_ARG);
    pml_infer_destroy(NULL);
    pml_infer_destroy(init);
    pml_infer_destroy(inf);
    pml_session_destroy(s);
    pml_plan_close(plan);
}

/* The device map through pml.h: pml_context_set_devices refuses a bad remap and keeps
 * the one before; pml_backend_choose follows the plan's `place` under AUTO (the CPU for
 * a cpu map; for a cuda map the GPU, or without one an error naming the map), refuses a
 * remap that does not fit the plan, and a session opens where it chose. */
static void devices_through_the_api(void)
{
    static const char *const cuda_text = "import \"nn\"\n"
                                         "model m(x: f32[B, 8]) -> f32[B, 3] {\n"
                                         "    stage 0 { h = gelu(linear(x, 16) as fc1) }\n"
                                         "    stage 1 { return linear(h, 3) as head }\n"
                                         "}\n"
                                         "train m {\n"
                                         "    data = classes(features = 8, classes = 3, seed = 1)\n"
                                         "    loss = cross_entropy\n"
                                         "    optimizer = adamw(lr = 1e-2)\n"
                                         "    batch = 8, microbatches = 2\n"
                                         "    place = [cuda:0, cuda:1]\n"
                                         "}\n";
    pml_plan *cpu = compile(WITH_DATA), *gpu = compile(cuda_text);
    CHECK(cpu && gpu);
    if (!cpu || !gpu) return;
    int good[2] = {0, 0}, negative[2] = {0, -1};
    CHECK(pml_context_set_devices(ctx, negative, 2) == PML_ERR_INVALID_ARG && says("gpus[1] is -1"));
    CHECK(pml_context_set_devices(ctx, NULL, 2) == PML_ERR_INVALID_ARG && says("NULL"));
    CHECK(pml_context_set_devices(ctx, good, -1) == PML_ERR_INVALID_ARG && says("n is -1"));
    CHECK(pml_context_set_devices(ctx, good, 1025) == PML_ERR_INVALID_ARG);
    pml_backend got = PML_BACKEND_AUTO;
    CHECK(pml_backend_choose(ctx, cpu, PML_BACKEND_AUTO, &got) == PML_OK && got == PML_BACKEND_CPU); /* no remap kept */
    pml_status on_gpu = pml_backend_choose(ctx, gpu, PML_BACKEND_AUTO, &got);
    char arch[16];
    if (pml_gpu_arch(arch, sizeof arch) == PML_OK) /* a machine with a GPU: two of them, or too few */
        CHECK((on_gpu == PML_OK && got == PML_BACKEND_CUDA) || (on_gpu == PML_ERR_UNSUPPORTED && says("--devices")));
    else
        CHECK(on_gpu == PML_ERR_UNSUPPORTED && says("no GPU for the plan's place [cuda:0, cuda:1]") &&
              says("--backend cpu"));
    CHECK(pml_backend_choose(ctx, gpu, PML_BACKEND_CPU, &got) == PML_OK && got == PML_BACKEND_CPU);
    CHECK(pml_context_set_devices(ctx, good, 1) == PML_OK); /* fits no plan of two GPUs */
    CHECK(pml_backend_choose(ctx, gpu, PML_BACKEND_AUTO, &got) == PML_ERR_INVALID_ARG &&
          says("--devices gives 1 GPU") && says("cuda:0 to cuda:1"));
    CHECK(pml_backend_choose(ctx, cpu, PML_BACKEND_AUTO, &got) == PML_ERR_INVALID_ARG && says("leave --devices out"));
    pml_session *s = NULL;
    CHECK(pml_session_create(ctx, gpu, PML_BACKEND_AUTO, 7, &s) == PML_ERR_INVALID_ARG && !s && says("--devices"));
    CHECK(pml_context_set_devices(ctx, NULL, 0) == PML_OK); /* no remap */
    CHECK(pml_session_create(ctx, cpu, PML_BACKEND_AUTO, 7, &s) == PML_OK && s);
    pml_session_destroy(s);
    pml_plan_close(cpu), pml_plan_close(gpu);
}

/* pml_infer_trace: the op spans of the next N micro-batch forwards, numbered 1..N, on
 * the handle's outputs unchanged; bad arguments and a path that cannot be written are
 * refused before any work, and a second trace on the handle too. */
static void inference_traces_its_forwards(void)
{
    pml_plan *plan = compile(WITH_DATA);
    if (!plan) {
        CHECK(0);
        return;
    }
    pml_infer *inf = NULL;
    CHECK(!pml_infer_create(ctx, plan, PML_BACKEND_CPU, 2, NULL, &inf));
    enum { N = 13 }; /* micro-batches of 4: four forwards a call */
    float x[N * F], plain[N * C], traced[N * C];
    int32_t y[N];
    make_batch(x, y, N, 5);
    pml_buffer bx = rows(x, PML_F32, 2, N, F);
    CHECK(!pml_infer_run(inf, &bx, 1, plain, sizeof plain));
    CHECK(pml_infer_trace_save(inf) == PML_ERR_INVALID_ARG && says("no trace was started"));
    CHECK(pml_infer_trace(inf, NULL, 5) == PML_ERR_INVALID_ARG && says("path is NULL"));
    CHECK(pml_infer_trace(inf, "/nonexistent/dir/t.json", 5) && says("/nonexistent/dir"));
    char dir[] = "/tmp/pml_api_trace_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/t.json", dir);
    CHECK(pml_infer_trace(inf, path, 0) == PML_ERR_INVALID_ARG && says("forwards is 0"));
    CHECK(pml_infer_trace(inf, path, 6) == PML_OK);
    CHECK(pml_infer_trace(inf, path, 6) == PML_ERR_INVALID_ARG && says("already traces"));
    CHECK(!pml_infer_run(inf, &bx, 1, traced, sizeof traced) && !memcmp(plain, traced, sizeof plain));
    CHECK(!pml_infer_run(inf, &bx, 1, traced, sizeof traced) && !memcmp(plain, traced, sizeof plain));
    CHECK(!pml_infer_trace_save(inf));
    FILE *fp = fopen(path, "rb");
    static char text[1 << 20];
    size_t len = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    text[len] = 0;
    if (fp) fclose(fp);
    CHECK(strstr(text, "\"traceEvents\"") && strstr(text, "\"cat\": \"op\"") && strstr(text, "\"name\": \"matmul"));
    CHECK(strstr(text, "\"step\": 6,") && !strstr(text, "\"step\": 7,") && strstr(text, "\"forwards\": 6"));
    remove(path);
    remove(dir); /* POSIX remove: an empty folder too */
    pml_infer_destroy(inf);
    pml_plan_close(plan);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"describes_the_model", describes_the_model},
                 {"caller_rows_train_as_the_plan_data_does", caller_rows_train_as_the_plan_data_does},
                 {"train_batch_refuses_what_does_not_fit", train_batch_refuses_what_does_not_fit},
                 {"feeder_and_metrics_callbacks", feeder_and_metrics_callbacks},
                 {"a_plan_without_data_trains_on_caller_rows_only", a_plan_without_data_trains_on_caller_rows_only},
                 {"evaluation_on_caller_rows", evaluation_on_caller_rows},
                 {"inference_on_any_number_of_rows", inference_on_any_number_of_rows},
                 {"inference_traces_its_forwards", inference_traces_its_forwards},
                 {"devices_through_the_api", devices_through_the_api}};
    if (argc != 2) {
        fprintf(stderr, "usage: test_api BEHAVIOUR\n");
        return 2;
    }
    if (pml_context_create(&ctx)) return 1;
    int found = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(argv[1], cases[i].name)) cases[i].fn(), found = 1;
    pml_context_destroy(ctx);
    if (!found) {
        fprintf(stderr, "test_api: no behaviour '%s'\n", argv[1]);
        return 2;
    }
    return check_summary(argv[1]);
}

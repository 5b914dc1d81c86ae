/* api_data.c — pml.h on caller data: the model's tensors described (inputs, labels,
 * output, parameters), optimizer steps on caller buffers or a feeder's, the metrics
 * callback, and evaluation on caller rows.
 *
 * One mechanism serves them all: every session's pipeline is fed by pml_api_fill,
 * which serves a step's micro-batches from rows in memory while a call has bound them
 * (session->rows) and from the plan's data source otherwise. Micro-batch m of a bound
 * global batch is its rows m·microbatch.., converted as the .npy feed converts (feed.h),
 * so the caller's rows train exactly as the same rows drawn by `pmlc train` do. Rows
 * are checked by the feed's own check (pml_feed_check_rows) before any is used, so a
 * bad buffer leaves the session as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_impl.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Model input `input` (-1: the labels) as pml.h describes it: dims[0] the global batch. */
static void describe(const pml_plan *plan, int input, pml_tensor_info *out)
{
    const pml_plan_node *node = &plan->nodes[input >= 0 ? plan->input_nodes[input] : input == -1 ? plan->labels
                                                                                                  : plan->output];
    memset(out, 0, sizeof *out);
    out->name = input >= 0 ? plan->input_names[input] : input == -1 ? "labels" : "output";
    out->dtype = (pml_dtype)node->dtype;
    out->rank = node->rank;
    memcpy(out->dims, node->dims, sizeof(int64_t) * (size_t)node->rank);
    if (node->rank >= 1) out->dims[0] = plan->conf.batch;
}

void pml_plan_batch(const pml_plan *plan, int64_t *batch, int64_t *microbatch)
{
    if (batch) *batch = plan ? plan->conf.batch : 0;
    if (microbatch) *microbatch = plan ? plan->conf.microbatch : 0;
}

int pml_plan_input_count(const pml_plan *plan) { return plan ? plan->n_inputs : -1; }

pml_status pml_plan_input_info(const pml_plan *plan, int i, pml_tensor_info *out)
{
    if (!plan || !out || i < 0 || i >= plan->n_inputs) return PML_ERR_INVALID_ARG;
    describe(plan, i, out);
    return PML_OK;
}

pml_status pml_plan_labels_info(const pml_plan *plan, pml_tensor_info *out)
{
    if (!plan || !out) return PML_ERR_INVALID_ARG;
    if (plan->labels < 0) return PML_ERR_UNSUPPORTED;
    describe(plan, -1, out);
    return PML_OK;
}

pml_status pml_plan_output_info(const pml_plan *plan, pml_tensor_info *out)
{
    if (!plan || !out) return PML_ERR_INVALID_ARG;
    if (plan->output < 0) return PML_ERR_UNSUPPORTED;
    describe(plan, -2, out);
    return PML_OK;
}

pml_status pml_plan_param_info(const pml_plan *plan, int i, pml_tensor_info *out)
{
    if (!plan || !out || i < 0 || i >= pml_plan_model_params(plan)) return PML_ERR_INVALID_ARG;
    const pml_plan_node *node = &plan->nodes[plan->params[i].node];
    memset(out, 0, sizeof *out);
    out->name = plan->params[i].name;
    out->dtype = PML_F32;
    out->rank = node->rank;
    memcpy(out->dims, node->dims, sizeof(int64_t) * (size_t)node->rank);
    return PML_OK;
}

int pml_plan_param_find(const pml_plan *plan, const char *name)
{
    for (int q = 0; plan && name && q < plan->n_params; q++)
        if (!strcmp(plan->params[q].name, name)) return q;
    return -1;
}

/* The model's name for input `input` (-1: the labels), for messages. */
static const char *input_name(const pml_plan *plan, int input, char *buf, size_t cap)
{
    if (input >= 0)
        snprintf(buf, cap, "input '%s'", plan->input_names[input]);
    else
        snprintf(buf, cap, "labels");
    return buf;
}

/* Checks caller buffer `b` for model input `input` (-1: the labels) with `rows` rows
 * (-1: any) and binds it into *out. */
static pml_status bind_one(const pml_plan *plan, const char *call, const pml_buffer *b, int input, int64_t rows,
                           pml_api_rows *out, pml_err *err)
{
    char what[160];
    input_name(plan, input, what, sizeof what);
    if (!b) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: labels is NULL", call);
    if ((unsigned)b->dtype >= PML_DTYPE_COUNT)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the %s's buffer has no valid dtype (%d)", call, what,
                           (int)b->dtype);
    if (b->rank < 1 || b->rank > PML_MAX_RANK)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the %s's buffer has rank %d; rows have rank 1 to %d", call,
                           what, b->rank, PML_MAX_RANK);
    size_t elems = 1;
    for (int k = 0; k < b->rank; k++) {
        if (b->dims[k] < 0 || (b->dims[k] > 0 && elems > SIZE_MAX / 16 / (size_t)b->dims[k]))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the %s's buffer has dimension %d of %lld", call, what, k,
                               (long long)b->dims[k]);
        elems *= (size_t)b->dims[k];
    }
    if (rows >= 0 && b->dims[0] != rows)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the %s's buffer has %lld rows, but the call takes %lld",
                           call, what, (long long)b->dims[0], (long long)rows);
    if (elems && !b->data)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the %s's buffer has no data (NULL)", call, what);
    pml_npy_array a = {.dtype = b->dtype, .rank = b->rank, .data = b->data, .nbytes = elems * pml_dtype_size(b->dtype)};
    memcpy(a.shape, b->dims, sizeof(int64_t) * (size_t)b->rank);
    pml_status st = pml_feed_check_rows(&a, b->source ? b->source : call, plan, input, err);
    if (st) return st;
    const pml_plan_node *node = &plan->nodes[input >= 0 ? plan->input_nodes[input] : plan->labels];
    *out = (pml_api_rows){b->data, b->dtype, node->dtype == PML_I32 ? PML_I32 : PML_F32,
                          b->dims[0] ? elems / (size_t)b->dims[0] : 0};
    return PML_OK;
}

pml_status pml_api_bind(const pml_plan *plan, const char *call, const pml_buffer *inputs, int n_inputs,
                        const pml_buffer *labels, int want_labels, int64_t rows, pml_api_rows *out, int64_t *n,
                        pml_err *err)
{
    if (n_inputs != plan->n_inputs)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: %d input buffers, but the model has %d input%s", call,
                           n_inputs, plan->n_inputs, plan->n_inputs == 1 ? "" : "s");
    if (!inputs && n_inputs > 0) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: inputs is NULL", call);
    if (want_labels && plan->labels < 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: the model has no labels (its train block gives no loss)",
                           call);
    /* Every buffer has the first one's rows when the call does not fix them. */
    if (rows < 0 && n_inputs > 0 && inputs[0].rank >= 1) rows = inputs[0].dims[0];
    pml_status st = PML_OK;
    for (int k = 0; k < n_inputs && !st; k++) st = bind_one(plan, call, &inputs[k], k, rows, &out[k], err);
    if (!st && want_labels) st = bind_one(plan, call, labels, -1, rows, &out[n_inputs], err);
    if (!st && n) *n = rows < 0 ? 0 : rows;
    return st;
}

pml_status pml_api_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err)
{
    pml_session *s = ctx;
    if (!s->rows) {
        if (!s->feed) return pml_err_set(err, PML_ERR_INTERNAL, "a step ran with no data bound");
        return pml_feed_fill(s->feed, step, mb, input, dst, err);
    }
    const pml_plan_config *c = &s->plan->conf;
    const pml_api_rows *r = &s->rows[input >= 0 ? input : s->plan->n_inputs];
    /* Evaluation's batch b is fed as step PML_EVAL_STEP0 + b (pipeline.h); a step's one batch as itself. */
    int64_t batch = step >= PML_EVAL_STEP0 ? step - PML_EVAL_STEP0 : 0;
    size_t first = (size_t)(batch * c->batch + mb * c->microbatch);
    pml_feed_convert(dst, r->to, r->data, r->dtype, first * r->row_elems, (size_t)c->microbatch * r->row_elems);
    return PML_OK;
}

void pml_api_data_free(pml_session *s)
{
    if (s->feeder_bufs)
        for (int k = 0; k <= s->plan->n_inputs; k++) free(s->feeder_bufs[k]);
    free(s->feeder_bufs);
}

/* One step on `rows` (NULL: the plan's data source), its metrics to *m and the callback. */
static pml_status take_step(pml_session *s, const pml_api_rows *rows, double feed_seconds, pml_step_metrics *m,
                            int *stop, pml_err *err)
{
    pml_step_stats st = {0};
    s->rows = rows;
    pml_status status = pml_pipeline_step(s->pipe, &st, err);
    s->rows = NULL;
    if (status) return status;
    pml_step_metrics out = {.step = st.step + 1,
                            .loss = st.loss,
                            .grad_norm = st.grad_norm,
                            .lr = st.lr,
                            .seconds = st.seconds,
                            .feed_seconds = feed_seconds,
                            .samples = s->plan->conf.batch,
                            .loss_scale = st.loss_scale,
                            .skipped = st.skipped};
    if (m) *m = out;
    s->busy = 1;
    if (s->on_metrics && s->on_metrics(s->metrics_user, &out) && stop) *stop = 1;
    s->busy = 0;
    return PML_OK;
}

/* Elements of model input `input` (-1: the labels) in one global batch. */
static size_t batch_elems(const pml_plan *plan, int input)
{
    const pml_plan_node *node = &plan->nodes[input >= 0 ? plan->input_nodes[input] : plan->labels];
    return (size_t)node->numel * (size_t)(plan->conf.batch / plan->conf.microbatch);
}

pml_status pml_session_train_batch(pml_session *s, const pml_buffer *inputs, int n_inputs, const pml_buffer *labels,
                                   pml_step_metrics *metrics)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    double t0 = now();
    pml_api_rows *rows = calloc((size_t)s->plan->n_inputs + 1, sizeof *rows);
    pml_status st = PML_CHECK_IDLE(&err, s);
    if (!st && !rows) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (!st)
        st = pml_api_bind(s->plan, "pml_session_train_batch", inputs, n_inputs, labels, 1, s->plan->conf.batch, rows,
                          NULL, &err);
    if (!st) st = take_step(s, rows, now() - t0, metrics, NULL, &err);
    free(rows);
    return pml_api_record(s->ctx, st, &err);
}

/* The feeder's buffers: one global batch per input and of the labels. */
static pml_status feeder_bufs(pml_session *s, pml_err *err)
{
    int n = s->plan->n_inputs;
    if (s->feeder_bufs) return PML_OK;
    if (!(s->feeder_bufs = calloc((size_t)n + 1, sizeof *s->feeder_bufs)))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int k = -1; k < n; k++) {
        if (k < 0 && s->plan->labels < 0) continue;
        void **slot = &s->feeder_bufs[k >= 0 ? k : n];
        if (!(*slot = calloc(batch_elems(s->plan, k), 4)))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the feeder's batch");
    }
    return PML_OK;
}

/* The next step from the feeder: asked for the batch, which is then checked and bound
 * as a caller's. */
static pml_status feeder_step(pml_session *s, pml_step_metrics *m, int *stop, pml_err *err)
{
    const pml_plan *plan = s->plan;
    int n = plan->n_inputs;
    double t0 = now();
    pml_status st = feeder_bufs(s, err);
    if (st) return st;
    int64_t step = pml_pipeline_steps_done(s->pipe);
    s->busy = 1;
    int rc = s->feeder(s->feeder_user, step, s->feeder_bufs, s->feeder_bufs[n]);
    s->busy = 0;
    if (rc)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "the feeder returned %d at step %lld: no step was taken", rc,
                           (long long)step);
    pml_buffer *bufs = calloc((size_t)n + 1, sizeof *bufs);
    pml_api_rows *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!bufs || !rows) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int k = -1; k < n && !st; k++) {
        if (k < 0 && plan->labels < 0) continue;
        pml_tensor_info t;
        describe(plan, k, &t);
        pml_buffer *b = &bufs[k >= 0 ? k : n];
        *b = (pml_buffer){s->feeder_bufs[k >= 0 ? k : n], t.dtype == PML_I32 ? PML_I32 : PML_F32, t.rank, {0},
                          "the feeder's batch"};
        memcpy(b->dims, t.dims, sizeof b->dims);
    }
    if (!st) st = pml_api_bind(plan, "the feeder's batch", bufs, n, &bufs[n], plan->labels >= 0, plan->conf.batch, rows, NULL, err);
    if (!st) st = take_step(s, rows, now() - t0, m, stop, err);
    free(rows);
    free(bufs);
    return st;
}

/* The next step: the feeder's batch, or the plan's data source's. */
static pml_status next_step(pml_session *s, pml_step_metrics *m, int *stop, pml_err *err)
{
    if (s->feeder) return feeder_step(s, m, stop, err);
    if (!s->feed)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "the plan names no data source: train on your rows with pml_session_train_batch, or set a "
                           "feeder (pml_session_set_feeder)");
    return take_step(s, NULL, 0, m, stop, err);
}

pml_status pml_api_next_step(pml_session *s, pml_step_metrics *m, pml_err *err)
{
    return next_step(s, m, NULL, err);
}

pml_status pml_session_train_step(pml_session *s, pml_step_metrics *metrics)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    if (PML_CHECK_IDLE(&err, s)) return pml_api_record(s->ctx, err.code, &err);
    return pml_api_record(s->ctx, next_step(s, metrics, NULL, &err), &err);
}

pml_status pml_session_train(pml_session *s, int64_t steps, int64_t *done)
{
    if (done) *done = 0;
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_IDLE(&err, s);
    pml_status st = PML_CHECK_NONNEG(&err, steps);
    int stop = 0;
    for (int64_t i = 0; i < steps && !st && !stop; i++) {
        st = next_step(s, NULL, &stop, &err);
        if (!st && done) ++*done;
    }
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_set_feeder(pml_session *s, pml_feeder_fn fn, void *user)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    if (PML_CHECK_IDLE(&err, s)) return pml_api_record(s->ctx, err.code, &err);
    s->feeder = fn;
    s->feeder_user = user;
    return pml_api_record(s->ctx, PML_OK, NULL);
}

pml_status pml_session_set_metrics(pml_session *s, pml_metrics_fn fn, void *user)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    if (PML_CHECK_IDLE(&err, s)) return pml_api_record(s->ctx, err.code, &err);
    s->on_metrics = fn;
    s->metrics_user = user;
    return pml_api_record(s->ctx, PML_OK, NULL);
}

pml_status pml_session_batch(pml_session *s, int64_t step, void *const *inputs, void *labels)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    const pml_plan *plan = s->plan;
    int n = plan->n_inputs;
    int64_t M = plan->conf.batch / plan->conf.microbatch;
    PML_CHECK_IDLE(&err, s);
    pml_api_check(&err, s->feed != NULL, __func__, "the plan names no data source");
    pml_api_check(&err, step >= 0 && step < PML_EVAL_STEP0, __func__, "step %lld is not a training step",
                  (long long)step);
    pml_api_check(&err, inputs || !n, __func__, "inputs is NULL");
    pml_api_check(&err, labels || plan->labels < 0, __func__, "labels is NULL");
    for (int k = 0; k < n && !err.code; k++)
        pml_api_check(&err, inputs[k] != NULL, __func__, "inputs[%d] (the input '%s') is NULL", k, plan->input_names[k]);
    pml_status st = err.code;
    for (int k = -1; k < n && !st; k++) {
        if (k < 0 && plan->labels < 0) continue;
        char *dst = k >= 0 ? inputs[k] : labels;
        size_t mb_bytes = batch_elems(plan, k) / (size_t)M * 4;
        for (int64_t mb = 0; mb < M && !st; mb++) st = pml_feed_fill(s->feed, step, mb, k, dst + (size_t)mb * mb_bytes, &err);
    }
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_evaluate(pml_session *s, const pml_buffer *inputs, int n_inputs, const pml_buffer *labels,
                                pml_eval_result *out)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    const pml_plan *plan = s->plan;
    int64_t rows = 0, batch = plan->conf.batch;
    pml_api_rows *bound = calloc((size_t)plan->n_inputs + 1, sizeof *bound);
    PML_CHECK_IDLE(&err, s);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    if (!st && !bound) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (!st && (plan->output < 0 || plan->loss < 0))
        st = pml_err_set(&err, PML_ERR_UNSUPPORTED, "pml_session_evaluate: the model has no loss to evaluate");
    if (!st)
        st = pml_api_bind(plan, "pml_session_evaluate", inputs, n_inputs, labels, 1, -1, bound, &rows, &err);
    if (!st && (rows < 1 || rows % batch))
        st = pml_err_set(&err, PML_ERR_INVALID_ARG,
                         "pml_session_evaluate: %lld rows; evaluation takes whole global batches of %lld rows",
                         (long long)rows, (long long)batch);
    if (!st) {
        double loss = 0, acc = 0;
        s->rows = bound;
        st = pml_pipeline_evaluate(s->pipe, rows / batch, &loss, &acc, &err);
        s->rows = NULL;
        if (!st) *out = (pml_eval_result){rows, loss, acc};
    }
    free(bound);
    return pml_api_record(s->ctx, st, &err);
}

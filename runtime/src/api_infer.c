/* api_infer.c — pml.h's inference sessions: the model forward on caller rows, the
 * mechanism of `pmlc infer`.
 *
 * A pml_infer owns a pipeline made for inference only (no feed) and one micro-batch of
 * each input and of the output. A run cuts the caller's N rows into micro-batches of the
 * plan's size in order; the last partial one is padded with zeros and its extra outputs
 * dropped, so a row's output never depends on N or on its neighbours' padding. The
 * stages run one after another (pml_pipeline_forward), so each gets every thread.
 *
 * A trace (pml_infer_trace) records the op spans of the next forwards, one per
 * micro-batch, each numbered as a step of its own, and writes them with the training
 * trace's writer (run/trace.h), so the same viewers and breakdowns read both. The
 * pipeline is made with its timeline on, which costs nothing until a forward is traced
 * (backend_ops.h's work_timed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_impl.h"
#include "exec/backend.h"
#include "ckpt/checkpoint.h"
#include "formats/atomic_file.h"
#include "cpu/gemm_int8.h"
#include "plan/onnx.h"
#include "quant/int8.h"
#include "run/trace.h"

struct pml_infer {
    pml_context *ctx;     /* held */
    const pml_plan *plan; /* held */
    pml_pipeline *pipe;
    void **in; /* per input: one micro-batch in the node's type (f32 or i32) */
    const void **from; /* per input: what a forward reads, inf->in's or the caller's rows in place */
    void *out; /* one micro-batch of output */
    size_t out_row; /* output elements per row */
    pml_api_rows *rows; /* per input (and one more): a call's bound buffers, kept so a call allocates nothing */
    int int8_weights;   /* how many weights came from an int8 file (quant/int8.h) */
    int int8_served;    /* how many of those the backend computes with in int8 (the rest: f32, dequantized) */
    pml_quant_i8 int8;  /* their int8 values and scales as read: what the ONNX export writes */
    int *stage_gpu;     /* CUDA: each stage device's GPU (exec/backend.h) */
    pml_backend backend; /* the one it runs on */
    pml_run_trace trace; /* path NULL: none asked */
    int64_t trace_left;  /* forwards still to trace */
    char int8_note[320];
};

void pml_infer_destroy(pml_infer *inf)
{
    if (!inf) return;
    for (int k = 0; inf->in && k < inf->plan->n_inputs; k++) free(inf->in[k]);
    free(inf->in);
    free(inf->from);
    free(inf->out);
    free(inf->rows);
    pml_pipeline_destroy(inf->pipe);
    pml_plan_free((pml_plan *)inf->plan);
    pml_quant_i8_free(&inf->int8);
    pml_run_trace_free(&inf->trace);
    free((char *)inf->trace.path);
    free(inf->stage_gpu);
    pml_api_release(inf->ctx);
    free(inf);
}

/* A pml_infer of `plan` on resolved backend `got` (each stage device's GPU in
 * stage_gpu, copied; NULL: GPU 0), its weights the initialisers'. */
static pml_status make(pml_context *ctx, const pml_plan *plan, pml_backend got, const int *stage_gpu, int threads,
                       pml_infer **out, pml_err *err)
{
    const pml_plan_node *onode = plan->output >= 0 ? &plan->nodes[plan->output] : NULL;
    int64_t mbs = plan->conf.microbatch;
    int batched = plan->n_inputs >= 1 && onode && onode->rank >= 1 && onode->dims[0] == mbs;
    for (int k = 0; batched && k < plan->n_inputs; k++) {
        const pml_plan_node *in = &plan->nodes[plan->input_nodes[k]];
        batched = in->rank >= 1 && in->dims[0] == mbs;
    }
    if (!batched)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "the model's inputs and output need a batch dimension (their first) for inference");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads == 0) threads = (int)(cpus > 0 ? cpus : 1);
    pml_infer *inf = calloc(1, sizeof *inf);
    if (!inf) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_api_hold(inf->ctx = ctx);
    pml_plan_hold(inf->plan = plan);
    inf->backend = got;
    inf->out_row = (size_t)(onode->numel / mbs);
    pml_status st = PML_OK;
    if (!(inf->in = calloc((size_t)plan->n_inputs, sizeof *inf->in)) ||
        !(inf->from = calloc((size_t)plan->n_inputs, sizeof *inf->from)) || !(inf->out = malloc((size_t)onode->numel * 4)) ||
        !(inf->rows = calloc((size_t)plan->n_inputs + 1, sizeof *inf->rows)) ||
        !(inf->stage_gpu = calloc((size_t)plan->conf.stages, sizeof *inf->stage_gpu)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int d = 0; !st && stage_gpu && d < plan->conf.stages / plan->conf.chunks; d++) inf->stage_gpu[d] = stage_gpu[d];
    for (int k = 0; k < plan->n_inputs && !st; k++)
        if (!(inf->in[k] = malloc((size_t)plan->nodes[plan->input_nodes[k]].numel * 4)))
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    /* The stages run one after another here, so each gets every thread, and the CPU
     * backend gives them one pool: a pool per stage would leave the last stage's
     * workers polling while the next stage's want the same cores. */
    pml_pipeline_opts opts = {.seed = (uint64_t)plan->conf.seed,
                              .threads = threads * (int)(plan->conf.stages > 0 ? plan->conf.stages : 1),
                              .stages_in_turn = 1,
                              .trace = 1, /* pml_infer_trace's; nothing is timed until asked */
                              .backend = pml_backend_ops_of(got),
                              .stage_gpu = inf->stage_gpu};
    if (!st) st = pml_pipeline_create(plan, &opts, &inf->pipe, err);
    if (!st) st = pml_ckpt_load_teacher(plan, inf->pipe, err); /* a distillation teacher's weights */
    if (st) {
        pml_infer_destroy(inf);
        return st;
    }
    *out = inf;
    return PML_OK;
}

/* The line pml_infer_int8_note returns: how the int8 weights are served, and why any
 * are not served in int8. */
static void int8_note(pml_infer *inf, pml_backend got, const char *weights)
{
    int n = inf->int8_weights, k = inf->int8_served, len, calibrated = 0;
    for (int q = 0; inf->int8.in_scale && q < inf->int8.n; q++) calibrated |= inf->int8.in_scale[q] > 0;
    const char *gemm = pml_cpu_linear_i8_kernel();
    if (!n) return;
    len = snprintf(inf->int8_note, sizeof inf->int8_note, "%d int8 weights from %s", n, weights);
    if (k && len > 0 && (size_t)len < sizeof inf->int8_note)
        len += snprintf(inf->int8_note + len, sizeof inf->int8_note - (size_t)len,
                        ": int8 products (%s, int32 sums, %s int8 activations) for %d layer%s", gemm,
                        calibrated ? "static calibrated" : "per-row", k, k == 1 ? "" : "s");
    if (k < n && len > 0 && (size_t)len < sizeof inf->int8_note)
        snprintf(inf->int8_note + len, sizeof inf->int8_note - (size_t)len, "%s%d served in f32, dequantized (%s)",
                 k ? "; " : ": ", n - k,
                 got != PML_BACKEND_CPU ? "this backend has no int8 products"
                                        : "no f32 linear product reads them: int8 products only replace those");
}

pml_status pml_infer_create(pml_context *ctx, const pml_plan *plan, pml_backend backend, int threads,
                            const char *weights, pml_infer **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_backend got;
    PML_CHECK_NONNULL(&err, plan);
    PML_CHECK_THREADS(&err, threads);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    int *stage_gpu = st ? NULL : calloc((size_t)plan->conf.stages, sizeof *stage_gpu);
    if (!st && !stage_gpu) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (!st) st = pml_backend_select(backend, plan, &ctx->gpus, &got, stage_gpu, &err);
    pml_infer *inf = NULL;
    if (!st) st = make(ctx, plan, got, stage_gpu, threads, &inf, &err);
    free(stage_gpu);
    if (!st && weights && pml_quant_is_quantized(weights)) { /* `pmlc quantize`'s file */
        st = pml_quant_load(plan, inf->pipe, weights, 1, &inf->int8, &inf->int8_weights, &inf->int8_served, &err);
        if (!st) int8_note(inf, got, weights);
    } else if (!st && weights)
        st = pml_ckpt_load_weights(plan, inf->pipe, weights, &err); /* the reader --init uses */
    if (st) {
        pml_infer_destroy(inf);
        return pml_api_record(ctx, st, &err);
    }
    *out = inf;
    return pml_api_record(ctx, PML_OK, &err);
}

pml_status pml_infer_create_from_session(pml_session *s, int threads, pml_infer **out)
{
    if (out) *out = NULL;
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_infer *inf = NULL;
    PML_CHECK_IDLE(&err, s);
    PML_CHECK_THREADS(&err, threads);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    if (!st) st = make(s->ctx, s->plan, s->backend, s->stage_gpu, threads, &inf, &err);
    if (!st) st = pml_pipeline_copy_params(inf->pipe, s->pipe, &err); /* the session's weights */
    if (st) {
        pml_infer_destroy(inf);
        return pml_api_record(s->ctx, st, &err);
    }
    *out = inf;
    return pml_api_record(s->ctx, PML_OK, &err);
}

pml_pipeline *pml_api_infer_pipeline(pml_infer *inf) { return inf->pipe; }

int pml_infer_int8_weights(const pml_infer *inf) { return inf ? inf->int8_weights : 0; }
int pml_infer_int8_served(const pml_infer *inf) { return inf ? inf->int8_served : 0; }
const char *pml_infer_int8_note(const pml_infer *inf) { return inf && inf->int8_weights ? inf->int8_note : NULL; }

pml_status pml_infer_output(pml_infer *inf, int64_t rows, pml_tensor_info *out)
{
    if (!inf) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNEG(&err, rows);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    if (!st) {
        pml_plan_output_info(inf->plan, out);
        out->dims[0] = rows;
        out->dtype = out->dtype == PML_I32 ? PML_I32 : PML_F32;
    }
    return pml_api_record(inf->ctx, st, &err);
}

pml_status pml_infer_run(pml_infer *inf, const pml_buffer *inputs, int n_inputs, void *out, size_t out_bytes)
{
    if (!inf) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    const pml_plan *plan = inf->plan;
    int n_in = plan->n_inputs;
    int64_t n = 0, mbs = plan->conf.microbatch;
    pml_api_rows *rows = inf->rows;
    pml_status st = pml_api_bind(plan, "pml_infer_run", inputs, n_inputs, NULL, 0, -1, rows, &n, &err);
    size_t row_bytes = inf->out_row * 4;
    if (!st && (size_t)n > out_bytes / (row_bytes ? row_bytes : 1))
        st = pml_err_set(&err, PML_ERR_INVALID_ARG,
                         "pml_infer_run: the output buffer holds %zu bytes, but %lld rows of output take %zu", out_bytes,
                         (long long)n, (size_t)n * row_bytes);
    else if (!st && n > 0 && !out)
        st = pml_err_set(&err, PML_ERR_INVALID_ARG, "pml_infer_run: out is NULL");
    for (int64_t r0 = 0; r0 < n && !st; r0 += mbs) {
        int64_t take = n - r0 < mbs ? n - r0 : mbs;
        /* A whole micro-batch of rows in the node's own type is read where it is, and its
         * outputs written where they go: each copy is serial time the stage's threads
         * wait through (256 rows of 784 floats: two 0.8 MB copies a call before). */
        for (int k = 0; k < n_in; k++) {
            const pml_api_rows *r = &rows[k];
            inf->from[k] = inf->in[k];
            if (take == mbs && r->dtype == r->to) {
                inf->from[k] = (const char *)r->data + (size_t)r0 * r->row_elems * 4;
                continue;
            }
            pml_feed_convert(inf->in[k], r->to, r->data, r->dtype, (size_t)r0 * r->row_elems,
                             (size_t)take * r->row_elems);
            if (take < mbs)
                memset((char *)inf->in[k] + (size_t)take * r->row_elems * 4, 0,
                       (size_t)(mbs - take) * r->row_elems * 4);
        }
        void *y = take == mbs ? (char *)out + (size_t)r0 * row_bytes : inf->out;
        int traced = inf->trace_left > 0;
        if (traced) pml_pipeline_trace_forward(inf->pipe, 1, inf->trace.steps++), inf->trace_left--;
        st = pml_pipeline_forward(inf->pipe, inf->from, y, &err);
        if (traced) pml_pipeline_trace_forward(inf->pipe, 0, 0);
        if (!st && y == inf->out) memcpy((char *)out + (size_t)r0 * row_bytes, inf->out, (size_t)take * row_bytes);
    }
    return pml_api_record(inf->ctx, st, &err);
}

pml_status pml_infer_trace(pml_infer *inf, const char *path, int64_t forwards)
{
    if (!inf) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_status st = PML_CHECK_PATH(&err, path);
    if (!st && forwards < 1)
        st = pml_err_set(&err, PML_ERR_INVALID_ARG, "pml_infer_trace: forwards is %lld, below 1", (long long)forwards);
    else if (!st && inf->trace.path)
        st = pml_err_set(&err, PML_ERR_INVALID_ARG, "pml_infer_trace: this handle already traces into %s",
                         inf->trace.path);
    else if (!st && inf->backend != PML_BACKEND_CPU)
        st = pml_err_set(&err, PML_ERR_UNSUPPORTED,
                         "a trace of inference needs the CPU backend: the CUDA backend does not time its ops");
    if (st) return pml_api_record(inf->ctx, st, &err);
    char *own = strdup(path);
    pml_run_trace t = {0};
    st = own ? pml_run_trace_begin(&t, own, NULL, NULL, &err) /* checks the path: fails before the work */
             : pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (st) {
        pml_run_trace_free(&t);
        free(own);
        return pml_api_record(inf->ctx, st, &err);
    }
    inf->trace = t;
    inf->trace.serving = 1;
    inf->trace_left = forwards;
    return pml_api_record(inf->ctx, PML_OK, &err);
}

pml_status pml_infer_trace_save(pml_infer *inf)
{
    if (!inf) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    if (!inf->trace.path)
        return pml_api_record(inf->ctx, pml_err_set(&err, PML_ERR_INVALID_ARG, "pml_infer_trace_save: no trace was "
                                                    "started (pml_infer_trace)"), &err);
    char *summary = NULL;
    int fatal = 0;
    pml_status st = pml_run_trace_finish(&inf->trace, NULL, inf->plan, inf->pipe, &summary, &fatal, &err);
    free(summary);
    return pml_api_record(inf->ctx, st, &err);
}

pml_status pml_infer_export_onnx(pml_infer *inf, const char *path)
{
    if (!inf) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    const pml_plan *plan = inf->plan;
    pml_pb model = {0};
    const float **params = calloc((size_t)plan->n_params + 1, sizeof *params);
    pml_status st = PML_CHECK_PATH(&err, path);
    if (!st && !params) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    /* The int8 weights export as int8 products (plan/onnx.h); one this handle serves in
     * f32 (dequantized) would export arithmetic it does not compute. */
    if (!st && inf->int8_served < inf->int8_weights)
        st = pml_err_set(&err, PML_ERR_UNSUPPORTED,
                         "%d of the %d int8 weights are served in f32 here (dequantized), and the ONNX export writes "
                         "int8 products for int8 weights: export the f32 weights the quantized file was made from",
                         inf->int8_weights - inf->int8_served, inf->int8_weights);
    for (int q = 0; !st && q < plan->n_params; q++)
        if (!(params[q] = pml_pipeline_param(inf->pipe, q)))
            st = pml_err_set(&err, PML_ERR_DEVICE, "cannot read parameter '%s' out of the inference session",
                             plan->params[q].name);
    if (!st)
        st = pml_onnx_model(plan, params, inf->int8_weights ? (const int8_t *const *)inf->int8.q : NULL,
                            inf->int8_weights ? (const float *const *)inf->int8.scale : NULL,
                            inf->int8_weights ? inf->int8.in_scale : NULL, &model, &err);
    if (!st) st = pml_atomic_write_file(path, model.bytes, model.len, &err);
    pml_pb_free(&model);
    free(params);
    return pml_api_record(inf->ctx, st, &err);
}

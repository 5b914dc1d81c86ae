/* api_quant.c — pml.h's pml_quantize_weights and pml_quantize_weights_calibrated: which
 * weights a quantization selects, and the calibration run that gives each selected
 * weight its static activation scale; the file itself is quant/int8.c's.
 *
 * Calibration runs the model through an inference session (the path `pmlc infer`
 * serves), with the CPU backend observing the inputs of exactly the products int8
 * serving will replace (backend_ops.h's observe_linear), so a scale is measured where it
 * is used. The rule is max |x| / 127 over every calibration row (docs/design.md says why
 * not a percentile). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "formats/npy.h"
#include "quant/int8.h"

/* Up to this many micro-batches of calibration rows per inference call. */
enum { CALIB_CHUNK_MBS = 64 };

/* The calibration rows at `path` fit the plan's one input, or what is wrong. */
static pml_status check_rows(const pml_plan *plan, const char *path, const pml_npy_array *a, size_t *row_elems,
                             pml_err *err)
{
    if (plan->n_inputs != 1)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: the model has %d inputs; calibration takes models with one",
                           path, plan->n_inputs);
    const pml_plan_node *in = &plan->nodes[plan->input_nodes[0]];
    pml_dtype want = in->dtype == PML_I32 ? PML_I32 : PML_F32;
    int same = a->rank == in->rank;
    *row_elems = 1;
    for (int d = 1; same && d < in->rank; d++) {
        same = a->shape[d] == in->dims[d];
        *row_elems *= (size_t)in->dims[d];
    }
    if (!same || a->dtype != want) {
        char got[160] = "", need[160] = "";
        for (int d = 0; d < a->rank; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)a->shape[d]);
        snprintf(need, sizeof need, "N");
        for (int d = 1; d < in->rank; d++)
            snprintf(need + strlen(need), sizeof need - strlen(need), ", %lld", (long long)in->dims[d]);
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "%s: holds %s [%s], but the model's input '%s' takes %s [%s] (calibration rows must be "
                           "the input's shape and dtype)",
                           path, pml_dtype_name(a->dtype), got, plan->input_names[0], pml_dtype_name(want), need);
    }
    if (a->shape[0] == 0)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: holds no rows (calibration needs one)", path);
    return pml_feed_check_finite(a, path, *row_elems, err);
}

/* Runs the f32 model of `weights` over the rows of `path` and sets in_scale[q] for every
 * selected q. */
static pml_status calibrate(pml_context *ctx, const pml_plan *plan, const char *weights, const char *path,
                            const uint8_t *select, float *in_scale, pml_err *err)
{
    pml_npy_array a = {0};
    pml_infer *inf = NULL;
    size_t row_elems = 0;
    void *y = NULL, *tail = NULL;
    pml_status st = pml_npy_open(path, &a, err);
    if (!st) st = check_rows(plan, path, &a, &row_elems, err);
    if (!st && pml_quant_is_quantized(weights))
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: already quantized (calibration runs the f32 weights)", weights);
    if (!st && pml_infer_create(ctx, plan, PML_BACKEND_CPU, 0, weights, &inf)) {
        *err = ctx->last;
        st = err->code;
    }
    pml_pipeline *pipe = st ? NULL : pml_api_infer_pipeline(inf);
    for (int q = 0; q < plan->n_params && !st; q++) {
        int seen = 0;
        if (select[q]) st = pml_pipeline_observe_linear(pipe, q, &seen, err);
        if (!st && select[q] && !seen)
            st = pml_err_set(err, PML_ERR_UNSUPPORTED,
                             "'%s': no f32 linear product reads it, so its input cannot be calibrated",
                             plan->params[q].name);
    }
    int64_t n = a.shape[0], mbs = plan->conf.microbatch, chunk = CALIB_CHUNK_MBS * mbs;
    size_t row_bytes = row_elems * pml_dtype_size(a.dtype), out_row = 1;
    pml_tensor_info yi = {0};
    if (!st) pml_infer_output(inf, 1, &yi);
    for (int d = 1; d < yi.rank; d++) out_row *= (size_t)yi.dims[d];
    if (!st && (!(y = malloc((size_t)chunk * out_row * 4 + 4)) || !(tail = malloc((size_t)mbs * row_bytes + 1))))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory for calibration");
    /* Whole micro-batches of the rows, then the last partial one filled with rows from
     * the start again (a copy changes no maximum; a zero row would, through biases). */
    for (int64_t r0 = 0; r0 < n && !st; r0 += chunk) {
        int64_t take = n - r0 < chunk ? n - r0 : chunk, whole = take / mbs * mbs;
        pml_buffer b = {(const char *)a.data + (size_t)r0 * row_bytes, a.dtype, a.rank, {whole}, path};
        for (int d = 1; d < a.rank; d++) b.dims[d] = a.shape[d];
        if (whole && pml_infer_run(inf, &b, 1, y, (size_t)chunk * out_row * 4)) break;
        if (whole == take) continue;
        for (int64_t i = 0; i < mbs; i++) {
            int64_t from = i < take - whole ? r0 + whole + i : (i - (take - whole)) % n;
            memcpy((char *)tail + (size_t)i * row_bytes, (const char *)a.data + (size_t)from * row_bytes, row_bytes);
        }
        b.data = tail, b.dims[0] = mbs;
        if (pml_infer_run(inf, &b, 1, y, (size_t)chunk * out_row * 4)) break;
    }
    if (!st && inf && ctx->last.code) *err = ctx->last, st = err->code; /* the run that broke off */
    for (int q = 0; q < plan->n_params && !st; q++) {
        float mx = 0;
        if (!select[q] || (st = pml_pipeline_observed_absmax(pipe, q, &mx, err))) continue;
        if (!isfinite(mx))
            st = pml_err_set(err, PML_ERR_NONFINITE, "%s: the f32 model's input to '%s' is not finite on these rows",
                             path, plan->params[q].name);
        else if (!(mx > 0))
            st = pml_err_set(err, PML_ERR_INVALID_ARG,
                             "%s: the input of '%s' is zero on every row, so no scale can be calibrated for it", path,
                             plan->params[q].name);
        else
            in_scale[q] = mx / 127.0f;
    }
    for (int q = 0; q < plan->n_params && !st; q++) { /* a tied weight, one file tensor: the widest input's scale */
        int r = plan->params[q].tie;
        if (r >= 0 && select[q] && in_scale[q] > in_scale[r]) in_scale[r] = in_scale[q];
    }
    free(y);
    free(tail);
    pml_infer_destroy(inf);
    pml_npy_close(&a);
    return st;
}

/* Both entry points after their argument checks. */
static pml_status quantize(pml_context *ctx, const pml_plan *plan, const char *weights, const char *const *patterns,
                           int n_patterns, pml_name_match_fn match, const char *calibrate_path, const char *out,
                           int *n_quantized, pml_err *err)
{
    pml_status st = PML_OK;
    if (n_patterns > 0 && (!patterns || !match))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "pml_quantize_weights: patterns need a match function");
    uint8_t *linear = malloc((size_t)plan->n_params + 1);
    uint8_t *select = calloc((size_t)plan->n_params + 1, 1);
    float *in_scale = calibrate_path ? calloc((size_t)plan->n_params + 1, sizeof *in_scale) : NULL;
    if (!linear || !select || (calibrate_path && !in_scale)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) pml_quant_linear_weights(plan, linear);
    for (int k = 0; k < n_patterns && !st; k++) {
        int hits = 0;
        for (int q = 0; q < plan->n_params; q++)
            if (linear[q] && match(patterns[k], plan->params[q].name)) select[q] = 1, hits++;
        if (!hits)
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "--layers pattern '%s' selects no linear layer's weight",
                             patterns[k]);
    }
    if (!st && n_patterns == 0)
        for (int q = 0; q < plan->n_params; q++) select[q] = linear[q];
    if (!st && calibrate_path) st = calibrate(ctx, plan, weights, calibrate_path, select, in_scale, err);
    if (!st) st = pml_quant_write(plan, weights, select, in_scale, out, n_quantized, err);
    free(linear);
    free(select);
    free(in_scale);
    return st;
}

/* Either entry point, `call` its name for the argument checks' messages. */
static pml_status entry(const char *call, pml_context *ctx, const pml_plan *plan, const char *weights,
                        const char *const *patterns, int n_patterns, pml_name_match_fn match, const char *calibrate,
                        const char *out, int *n_quantized)
{
    int done = 0;
    if (n_quantized) *n_quantized = 0;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_api_check(&err, plan != NULL, call, "plan is NULL");
    pml_api_check(&err, weights && *weights, call, "weights is %s", weights ? "\"\"" : "NULL");
    pml_api_check(&err, out && *out, call, "out is %s", out ? "\"\"" : "NULL");
    pml_status st = pml_api_check(&err, !calibrate || *calibrate, call, "calibrate is \"\"");
    if (!st) st = quantize(ctx, plan, weights, patterns, n_patterns, match, calibrate, out, &done, &err);
    if (!st && n_quantized) *n_quantized = done;
    return pml_api_record(ctx, st, &err);
}

pml_status pml_quantize_weights(pml_context *ctx, const pml_plan *plan, const char *weights,
                                const char *const *patterns, int n_patterns, pml_name_match_fn match,
                                const char *out, int *n_quantized)
{
    return entry(__func__, ctx, plan, weights, patterns, n_patterns, match, NULL, out, n_quantized);
}

pml_status pml_quantize_weights_calibrated(pml_context *ctx, const pml_plan *plan, const char *weights,
                                           const char *const *patterns, int n_patterns, pml_name_match_fn match,
                                           const char *calibrate, const char *out, int *n_quantized)
{
    return entry(__func__, ctx, plan, weights, patterns, n_patterns, match, calibrate, out, n_quantized);
}

/* api.c — the public API of pml.h over the internal modules: contexts, plans (plan/)
 * and sessions (made by api_run.c). Checkpoints are
 * api_checkpoint.c's, training and evaluation on caller data api_data.c's, inference
 * api_infer.c's. Each public call records its error message in the context it belongs to
 * (api_record.c). */
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "exec/ranks.h"
#include "formats/pending.h"
#include "plan/plan.h"

pml_status pml_context_create(pml_context **out)
{
    if (!out) return PML_ERR_INVALID_ARG;
    *out = calloc(1, sizeof **out);
    return *out ? PML_OK : PML_ERR_NOMEM;
}

pml_status pml_context_set_devices(pml_context *ctx, const int *gpus, int n)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_api_check(&err, n >= 0 && n <= PML_PLAN_MAX_GPU_INDEX + 1, __func__, "n is %d: 0 to %d GPUs", n,
                  PML_PLAN_MAX_GPU_INDEX + 1);
    if (!err.code && n) PML_CHECK_NONNULL(&err, gpus);
    for (int i = 0; !err.code && i < n; i++)
        pml_api_check(&err, gpus[i] >= 0, __func__, "gpus[%d] is %d: a GPU is numbered from 0", i, gpus[i]);
    if (!err.code) {
        ctx->gpus.n = n, ctx->gpus.local = 0;
        for (int i = 0; i < n; i++) ctx->gpus.gpu[i] = gpus[i];
    }
    return pml_api_record(ctx, err.code, &err);
}

pml_status pml_context_set_devices_local(pml_context *ctx)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    int local = 0;
    const char *from = NULL;
    if (!pml_ranks_local_from_env(&local, &from, &err))
        ctx->gpus.n = 0, ctx->gpus.local = 1, ctx->gpus.local_rank = local, ctx->gpus.local_from = from;
    return pml_api_record(ctx, err.code, &err);
}

void pml_api_hold(pml_context *ctx) { __atomic_fetch_add(&ctx->holders, 1, __ATOMIC_RELAXED); }

void pml_api_release(pml_context *ctx)
{
    if (ctx && __atomic_fetch_sub(&ctx->holders, 1, __ATOMIC_ACQ_REL) == 0) free(ctx);
}

void pml_context_destroy(pml_context *ctx) { pml_api_release(ctx); }
void pml_remove_partial_files(void) { pml_pending_remove_all(); }
const char *pml_context_error(const pml_context *ctx) { return ctx ? ctx->last.msg : ""; }

pml_status pml_plan_open(pml_context *ctx, const char *path, pml_plan **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, path);
    if (PML_CHECK_NONNULL(&err, out)) return pml_api_record(ctx, err.code, &err);
    return pml_api_record(ctx, pml_plan_load(path, out, &err), &err);
}

pml_status pml_plan_open_memory(pml_context *ctx, const void *bytes, size_t len, const char *name, pml_plan **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_api_check(&err, bytes || !len, __func__, "bytes is NULL, with len %zu", len);
    PML_CHECK_NONNULL(&err, name);
    if (PML_CHECK_NONNULL(&err, out)) return pml_api_record(ctx, err.code, &err);
    return pml_api_record(ctx, pml_plan_read(bytes ? bytes : "", len, name, out, &err), &err);
}

void pml_plan_close(pml_plan *plan) { pml_plan_free(plan); }
/* A weight tied across stages is one parameter here, as in files: its copies on other
 * stages (plan.h) follow it. */
int pml_plan_param_count(const pml_plan *plan) { return plan ? pml_plan_model_params(plan) : -1; }

const char *pml_plan_param_name(const pml_plan *plan, int i)
{
    return plan && i >= 0 && i < pml_plan_model_params(plan) ? plan->params[i].name : NULL;
}

int64_t pml_plan_param_numel(const pml_plan *plan, int i)
{
    return plan && i >= 0 && i < pml_plan_model_params(plan) ? plan->nodes[plan->params[i].node].numel : -1;
}

pml_status pml_session_create(pml_context *ctx, const pml_plan *plan, pml_backend backend, uint64_t seed,
                              pml_session **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, plan);
    if (PML_CHECK_NONNULL(&err, out)) return pml_api_record(ctx, err.code, &err);
    return pml_api_session_make(ctx, plan, &(pml_session_options){.backend = backend, .seed = -1}, seed, out);
}

void pml_session_destroy(pml_session *s)
{
    if (!s) return;
    pml_pipeline_destroy(s->pipe);
    pml_feed_destroy(s->feed);
    pml_api_data_free(s);
    pml_run_phases_free(&s->phases);
    pml_run_where_free(s->own_where);
    free(s->resumed_from);
    free(s->stage_gpu);
    pml_plan_free((pml_plan *)s->held);
    pml_api_release(s->ctx);
    free(s);
}

/* The parameter called `name` whose size is `count`, or an error naming `call`. */
static pml_status find_param(pml_session *s, const char *call, const char *name, int64_t count, int *out,
                             pml_err *err)
{
    for (int q = 0; q < s->plan->n_params; q++) {
        if (strcmp(s->plan->params[q].name, name)) continue;
        int64_t n = s->plan->nodes[s->plan->params[q].node].numel;
        if (n != count)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: parameter '%s' has %lld elements, not %lld", call,
                               name, (long long)n, (long long)count);
        *out = q;
        return PML_OK;
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the model has no parameter '%s'", call, name);
}

pml_status pml_session_read(pml_session *s, const char *name, float *dst, int64_t count)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_IDLE(&err, s);
    PML_CHECK_NONNULL(&err, name);
    PML_CHECK_NONNULL(&err, dst);
    PML_CHECK_NONNEG(&err, count);
    int q = -1; /* set by find_param on success; -O3 cannot see that */
    pml_status st = err.code ? err.code : find_param(s, __func__, name, count, &q, &err);
    if (!st) memcpy(dst, pml_pipeline_param(s->pipe, q), sizeof(float) * (size_t)count);
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_write(pml_session *s, const char *name, const float *src, int64_t count)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_IDLE(&err, s);
    PML_CHECK_NONNULL(&err, name);
    PML_CHECK_NONNULL(&err, src);
    PML_CHECK_NONNEG(&err, count);
    int q = -1; /* set by find_param on success; -O3 cannot see that */
    pml_status st = err.code ? err.code : find_param(s, __func__, name, count, &q, &err);
    for (int c = q; !st && c < s->plan->n_params; c++) /* the parameter, and its tied copies */
        if (c == q || s->plan->params[c].tie == q)
            memcpy(pml_pipeline_param(s->pipe, c), src, sizeof(float) * (size_t)count);
    return pml_api_record(s->ctx, st, &err);
}

/* api_run.c — pml.h's training driver: pml_session_open (a session as a run needs it:
 * threads, timeline, numerics checks, ranks, the weights it starts from, a resume) and
 * pml_session_run over run/driver.h, and pml_session_request_stop (an atomic store the
 * driver, and with ranks each step's exchange, reads). pml_session_create is
 * pml_session_open with its defaults, so every session is made in one place.
 *
 * Ranks: rank 0 alone reads the --init weights and the checkpoint resumed, checks them,
 * tells every rank the outcome (and the resume's seed and step), and sends each rank
 * its part of the model. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "ckpt/checkpoint.h"
#include "exec/backend.h"
#include "plan/plan.h"
#include "run/driver.h"
#include "run/ranks.h"

/* pml_session_request_stop is called from signal handlers: its store must not take a lock. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "pml_session_request_stop needs a lock-free atomic int");

/* Where a checkpoint resumes: read and checked by rank 0, then told to every rank. */
static pml_status resume_info(const pml_session_options *o, const pml_plan *plan, pml_ckpt_info *info, pml_err *err)
{
    pml_dist *d = o->dist;
    pml_err why = {0};
    pml_status st = PML_OK;
    if (!d || d->rank == 0) {
        if (pml_ckpt_read_info(plan, o->resume, info, &why))
            st = pml_err_set(err, why.code, "cannot resume: %s", why.msg);
        else if (o->seed >= 0 && (uint64_t)o->seed != info->seed)
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "cannot resume: %s was trained with seed %llu, not %lld",
                             o->resume, (unsigned long long)info->seed, (long long)o->seed);
    }
    if ((st = pml_run_agree(d, st, err))) return st;
    return pml_run_share(d, info, sizeof *info, err);
}

/* The weights the session starts from (init, resume): read by rank 0, then sent. */
static pml_status load(pml_session *s, const pml_session_options *o, int64_t step, pml_err *err)
{
    pml_dist *d = o->dist;
    pml_err why = {0};
    pml_status st = PML_OK;
    if (!d || d->rank == 0) {
        if (o->init && pml_ckpt_load_weights(s->plan, s->pipe, o->init, &why))
            st = pml_err_set(err, why.code, "cannot load the initial weights: %s", why.msg);
        else if (o->resume && pml_ckpt_restore(s->plan, s->pipe, o->resume, &why))
            st = pml_err_set(err, why.code, "cannot resume: %s", why.msg);
    }
    if ((st = pml_run_agree(d, st, err)) || (st = pml_run_scatter(d, s->plan, s->pipe, err))) return st;
    if (o->resume) pml_pipeline_set_step(s->pipe, step);
    return PML_OK;
}

static pml_status make(pml_session *s, const pml_session_options *o, uint64_t seed, pml_err *err)
{
    const pml_plan *plan = s->plan;
    pml_dist *d = o->dist;
    pml_status st;
    pml_backend got;
    if (!(s->stage_gpu = calloc((size_t)plan->conf.stages, sizeof *s->stage_gpu)))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if ((st = pml_backend_select(o->backend, plan, &s->ctx->gpus, &got, s->stage_gpu, err))) return st;
    s->backend = got;
    s->dist = d;
    /* A plan without a data source trains on caller data only (api_data.c). */
    pml_err why = {0};
    if (pml_feed_has_source(plan) && pml_feed_create(plan, &s->feed, &why))
        return pml_err_set(err, why.code, "the training data: %s", why.msg);
    if (d && d->world > 1 && got == PML_BACKEND_CUDA) /* NCCL between GPUs is not written yet */
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "ranks run on the CPU backend only (the MPI transport moves host memory): pass --backend "
                           "cpu");
    s->seed = o->seed >= 0 ? (uint64_t)o->seed : seed;
    pml_ckpt_info info = {0};
    if (o->resume) {
        if ((st = resume_info(o, plan, &info, err))) return st;
        s->seed = info.seed;
        s->resumed_at = info.step;
        s->freeze_afresh = info.freeze_afresh;
        if (!(s->resumed_from = strdup(o->resume))) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    int ok = 1;
    if (o->check_numerics && (s->own_where = pml_run_where_copy(o->node_where, &ok), !ok))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    s->where = s->own_where;
    s->opts = (pml_pipeline_opts){.seed = s->seed,
                                  .threads = o->threads > 0 ? o->threads : pml_run_default_threads(),
                                  .feed = pml_api_fill,
                                  .feed_ctx = s,
                                  .backend = pml_backend_ops_of(got),
                                  .stage_gpu = s->stage_gpu,
                                  .trace = o->trace,
                                  .dist = d,
                                  .check_numerics = o->check_numerics,
                                  .node_where = (const char *const *)s->where,
                                  .stop = &s->stop};
    if (pml_pipeline_create(plan, &s->opts, &s->pipe, &why) || pml_ckpt_load_teacher(plan, s->pipe, &why))
        return pml_err_set(err, why.code, "cannot set up training: %s", why.msg);
    return o->init || o->resume ? load(s, o, info.step, err) : PML_OK;
}

pml_status pml_api_session_make(pml_context *ctx, const pml_plan *plan, const pml_session_options *opts,
                                uint64_t seed, pml_session **out)
{
    pml_err err = {0};
    pml_session_options none = {.seed = -1};
    const pml_session_options *o = opts ? opts : &none;
    if (!out) return pml_api_record(ctx, pml_err_set(&err, PML_ERR_INVALID_ARG, "no pml_session ** (NULL)"), &err);
    *out = NULL;
    if (!plan) return pml_api_record(ctx, pml_err_set(&err, PML_ERR_INVALID_ARG, "no plan (NULL)"), &err);
    pml_session *s = calloc(1, sizeof *s);
    pml_status st = s ? PML_OK : pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (s) {
        pml_api_hold(s->ctx = ctx);
        pml_plan_hold(s->held = s->plan = plan);
        s->resumed_at = -1;
        st = make(s, o, seed, &err);
    }
    if (st) {
        /* The other ranks are told, and nothing waits for them (exec/dist.h). */
        if (o->dist) o->dist->abandon(o->dist, st == PML_ERR_PEER ? NULL : err.msg);
        pml_session_destroy(s);
        return pml_api_record(ctx, st, &err);
    }
    *out = s;
    return pml_api_record(ctx, PML_OK, &err);
}

pml_status pml_session_open(pml_context *ctx, const pml_plan *plan, const pml_session_options *opts,
                            pml_session **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, plan);
    PML_CHECK_NONNULL(&err, out);
    if (opts) {
        PML_CHECK_THREADS(&err, opts->threads);
        pml_api_check(&err, opts->seed >= -1, __func__, "opts->seed is %lld: -1 (the train block's) or a seed",
                      (long long)opts->seed);
        pml_api_check(&err, (unsigned)opts->backend <= PML_BACKEND_AUTO, __func__, "opts->backend is %d, no backend",
                      (int)opts->backend);
        pml_api_check(&err, !(opts->init && opts->resume), __func__,
                      "opts->init and opts->resume are both set: a resume brings its own weights");
    }
    if (err.code) return pml_api_record(ctx, err.code, &err);
    return pml_api_session_make(ctx, plan, opts, (uint64_t)plan->conf.seed, out);
}

int64_t pml_plan_steps(const pml_plan *plan) { return plan ? plan->conf.steps : -1; }

static pml_status run_step(void *ctx, pml_step_metrics *m, pml_err *err) { return pml_api_next_step(ctx, m, err); }

pml_status pml_session_run(pml_session *s, const pml_run_options *opts, pml_run_result *result)
{
    pml_err err = {0};
    pml_run_result res = {0};
    if (result) *result = res;
    if (!s) return PML_ERR_INVALID_ARG;
    PML_CHECK_IDLE(&err, s);
    PML_CHECK_NONNULL(&err, opts);
    if (opts) {
        pml_api_check(&err, opts->steps >= -1, __func__, "opts->steps is %lld: -1 (the train block's) or a step",
                      (long long)opts->steps);
        PML_CHECK_NONNEG(&err, opts->eval);
    }
    if (err.code) return pml_api_record(s->ctx, err.code, &err);
    pml_run_env env = {.plan = &s->plan,
                       .pipe = &s->pipe,
                       .opts = &s->opts,
                       .phases = &s->phases,
                       .where = &s->where,
                       .feed = s->feed,
                       .no_data = !s->feed && !s->feeder,
                       .dist = s->dist,
                       .backend = s->backend,
                       .seed = s->seed,
                       .resumed_at = s->resumed_at,
                       .resumed_from = s->resumed_from,
                       .note = s->freeze_afresh ? "the checkpoint predates saved 'freeze auto' state, so its checks "
                                                  "start afresh: the layers it froze before train again until a check "
                                                  "freezes them"
                                                : NULL,
                       .stop = &s->stop,
                       .step = run_step,
                       .step_ctx = s};
    s->resumed_at = -1; /* said and checked by the first run */
    s->freeze_afresh = 0;
    pml_status st = pml_run_drive(&env, opts, &res, &err);
    atomic_store(&s->stop, 0); /* acted on, or it came after the last step: the next run starts afresh */
    /* The other ranks are told, and nothing waits for them (exec/dist.h). */
    if (st && s->dist) s->dist->abandon(s->dist, st == PML_ERR_PEER ? NULL : err.msg);
    if (result) *result = res;
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_request_stop(pml_session *s, int signo)
{
    /* No message: a signal handler may be the caller, and the context is not its to touch. */
    if (!s || signo < 0 || signo == INT_MAX) return PML_ERR_INVALID_ARG;
    int none = 0;
    atomic_compare_exchange_strong(&s->stop, &none, signo + 1); /* the first request's reason stays */
    return PML_OK;
}

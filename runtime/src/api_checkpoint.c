/* api_checkpoint.c — pml.h's checkpoints over ckpt/checkpoint.h: the same files and
 * the same commit protocol as `pmlc train --out/--init/--resume`, for one process.
 * Each call records its outcome in the session's (or the given) context. */
#include "api_impl.h"
#include "ckpt/checkpoint.h"
#include "plan/plan.h"

pml_status pml_checkpoint_read_info(pml_context *ctx, const pml_plan *plan, const char *dir,
                                    pml_checkpoint_info *info)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_ckpt_info got = {0};
    PML_CHECK_NONNULL(&err, plan);
    PML_CHECK_NONNULL(&err, dir);
    pml_status st = PML_CHECK_NONNULL(&err, info);
    if (!st) st = pml_ckpt_read_info(plan, dir, &got, &err);
    if (!st) *info = (pml_checkpoint_info){got.step, got.seed, got.freeze_afresh};
    return pml_api_record(ctx, st, &err);
}

/* A folder or file argument: neither NULL nor "". */

pml_status pml_checkpoint_check_folder(pml_context *ctx, const char *dir)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_status st = PML_CHECK_PATH(&err, dir);
    if (!st) st = pml_ckpt_check_folder(dir, &err);
    return pml_api_record(ctx, st, &err);
}

pml_status pml_session_save(pml_session *s, const char *dir)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_IDLE(&err, s);
    pml_status st = PML_CHECK_PATH(&err, dir);
    if (!st) st = pml_ckpt_save(s->plan, s->pipe, s->seed, dir, &err);
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_resume(pml_session *s, const char *dir)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_ckpt_info info;
    PML_CHECK_IDLE(&err, s);
    pml_status st = PML_CHECK_PATH(&err, dir);
    if (!st) st = pml_ckpt_read_info(s->plan, dir, &info, &err);
    /* The seed is half of the run's state (with the step): another one would draw other
     * data and dropout masks from here on, and no longer continue the run. */
    if (!st && info.seed != s->seed)
        st = pml_err_set(&err, PML_ERR_INVALID_ARG,
                         "%s was trained with seed %llu, but the session was created with seed %llu "
                         "(create it with pml_checkpoint_read_info's seed)",
                         dir, (unsigned long long)info.seed, (unsigned long long)s->seed);
    if (!st) st = pml_ckpt_restore(s->plan, s->pipe, dir, &err);
    return pml_api_record(s->ctx, st, &err);
}

pml_status pml_session_load_weights(pml_session *s, const char *path)
{
    if (!s) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_IDLE(&err, s);
    pml_status st = PML_CHECK_PATH(&err, path);
    if (!st) st = pml_ckpt_load_weights(s->plan, s->pipe, path, &err);
    return pml_api_record(s->ctx, st, &err);
}

int64_t pml_session_steps_done(const pml_session *s) { return s ? pml_pipeline_steps_done(s->pipe) : -1; }
uint64_t pml_plan_seed(const pml_plan *plan) { return plan ? (uint64_t)plan->conf.seed : 0; }

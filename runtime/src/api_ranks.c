/* api_ranks.c — pml.h's ranks: the layout of a run decided before any communication
 * (exec/ranks.h), and what a program does over a pml_dist before step 1 (rank 0's bytes
 * to every rank, a barrier, the comparison of how the ranks were started:
 * exec/dist_agree.h). The handle itself comes from a communication library (pml_mpi.h).
 * Each call records its outcome in the given context. */
#include "api_impl.h"
#include "exec/dist_agree.h"
#include "exec/ranks.h"
#include "plan/plan.h"
#include "run/ranks.h"

pml_status pml_ranks_resolve(pml_context *ctx, const pml_plan *plan, int rank, int world, int replicas,
                             pml_ranks_layout *out)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, plan);
    pml_api_check(&err, (rank < 0) == (world <= 0), __func__, "rank is %d and world %d: give both, or -1 and 0", rank,
                  world);
    PML_CHECK_NONNEG(&err, replicas);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    pml_ranks env = {rank, world, "the caller"};
    pml_err why = {0};
    if (!st && rank < 0 && (st = pml_ranks_from_env(&env, &why)))
        pml_err_set(&err, st, "cannot tell this process's rank: %s", why.msg);
    if (!st && env.rank >= env.world)
        st = pml_err_set(&err, PML_ERR_INVALID_ARG, "rank %d does not exist in a world of %d", env.rank, env.world);
    /* One process is one pipeline whatever the plan says (it trains the same weights,
     * docs/design.md); the plan's replicas count with several. */
    int from_plan = !st && replicas == 0 && env.world > 1 && plan->conf.replicas > 1;
    int r = replicas > 0 ? replicas : env.world > 1 ? (int)plan->conf.replicas : 1;
    pml_rank_place place;
    if (!st && (st = pml_ranks_place(pml_plan_devices(plan), env.world, r > 0 ? r : 1, env.rank, &place, &why)))
        pml_err_set(&err, st, "cannot place the stages on the ranks%s: %s",
                    from_plan ? " (replicas = R comes from the model's place)" : "", why.msg);
    if (!st) *out = (pml_ranks_layout){env.rank, env.world, r > 0 ? r : 1, env.source};
    return pml_api_record(ctx, st, &err);
}

pml_status pml_ranks_share(pml_context *ctx, pml_dist *d, void *buf, size_t bytes)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, d);
    pml_status st = pml_api_check(&err, buf || !bytes, __func__, "buf is NULL, with bytes %zu", bytes);
    if (!st) st = pml_run_share(d, buf, bytes, &err);
    return pml_api_record(ctx, st, &err);
}

pml_status pml_ranks_barrier(pml_context *ctx, pml_dist *d)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_status st = PML_CHECK_NONNULL(&err, d);
    double none = 0; /* a sum every rank takes part in returns once all have */
    if (!st) st = d->sum(d, &none, 1, &err);
    return pml_api_record(ctx, st, &err);
}

pml_status pml_ranks_agree(pml_context *ctx, pml_dist *d, const pml_rank_fact *facts, int n)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, d);
    PML_CHECK_NONNEG(&err, n);
    pml_api_check(&err, facts || !n, __func__, "facts is NULL, with n %d", n);
    for (int i = 0; !err.code && i < n; i++)
        pml_api_check(&err, facts[i].key != NULL, __func__, "facts[%d].key is NULL", i);
    pml_status st = err.code;
    if (!st) st = pml_dist_agree(d, facts, n, &err);
    return pml_api_record(ctx, st, &err);
}

void pml_dist_destroy(pml_dist *d)
{
    if (d) d->destroy(d);
}

/* train_ranks.c — ranks for `pmlc train` (see train_ranks.h). Without MPI in the build
 * a multi-process launch is refused with a message rather than trained as N copies. */
#include "train_ranks.h"

#include <stdio.h>

#include "cli_util.h"
#include "exec/ranks.h"
#include "train_agree.h"
#ifdef PML_HAVE_MPI
#include "exec/mpi/dist_mpi.h"
#endif

int pmlc_ranks_open(const pmlc_train_args *a, const pml_plan *pl, uint64_t plan_hash, int64_t steps,
                    pml_backend backend, pmlc_ranks *out)
{
    *out = (pmlc_ranks){0, 1, NULL};
    pml_ranks env;
    pml_err err = {0};
    if (pml_ranks_from_env(&env, &err)) return pmlc_cli_fail("cannot tell this process's rank", &err);
    int rank = a->rank >= 0 ? a->rank : env.rank, world = a->world > 0 ? a->world : env.world;
    if (rank >= world) {
        fprintf(stderr, "pmlc: error: rank %d does not exist in a world of %d\n", rank, world);
        return 1;
    }
    out->rank = rank;
    out->world = world;
    /* --replicas overrides the plan's `replicas = R`; one process is one pipeline
     * whatever the plan says (it trains the same weights, see design.md). */
    int from_plan = a->replicas <= 0 && world > 1 && pl->conf.replicas > 1;
    int replicas = a->replicas > 0 ? a->replicas : world > 1 ? (int)pl->conf.replicas : 1;
    pml_rank_place place;
    if (pml_ranks_place((int)pl->conf.stages, world, replicas, rank, &place, &err))
        return pmlc_cli_fail(from_plan ? "cannot place the stages on the ranks (replicas = R comes from the model's "
                                         "place; --replicas overrides it)"
                                       : "cannot place the stages on the ranks",
                             &err);
    if (world == 1) return 0;
#ifdef PML_HAVE_MPI
    pml_dist_mpi_conf conf = {.stages = (int)pl->conf.stages,
                              .rank = rank,
                              .world = world,
                              .replicas = replicas,
                              .timeout_s = a->peer_timeout};
    char what[64];
    snprintf(what, sizeof what, "rank %d cannot join the run", rank);
    if (pml_dist_mpi_create(&conf, &out->dist, &err)) return pmlc_cli_fail(what, &err);
    pmlc_agree_run run = {pl, plan_hash, steps, backend, replicas};
    if (pmlc_agree(a, &run, out->dist)) {
        double met = 0; /* every rank has said why before any exits */
        out->dist->sum(out->dist, &met, 1, &err);
        pmlc_ranks_close(out);
        return 1;
    }
    return 0;
#else
    (void)plan_hash, (void)steps, (void)backend;
    fprintf(stderr,
            "pmlc: error: this is rank %d of %d (from %s), but this pmlc was built without MPI: "
            "install libopenmpi-dev and rebuild, or run one process\n",
            rank, world, a->world > 0 ? "--world" : env.source);
    return 1;
#endif
}

void pmlc_ranks_close(pmlc_ranks *r)
{
    pml_dist_destroy(r->dist);
    r->dist = NULL;
}

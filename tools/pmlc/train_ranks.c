/* train_ranks.c — ranks for `pmlc train` (see train_ranks.h). Without MPI in the build
 * an MPI launch is refused with a message rather than trained as N copies; ranks over
 * TCP need no MPI. */
#include "train_ranks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "train_agree.h"
#ifdef PML_HAVE_MPI
#include "pml_mpi.h"
#endif

/* Ranks meet over TCP when launched torchrun-style (RANK and WORLD_SIZE), or given by
 * --rank and --world with MASTER_ADDR and no mpirun around them; else over MPI. */
static int over_tcp(const pml_ranks_layout *lay)
{
    if (!strcmp(lay->source, "RANK/WORLD_SIZE")) return 1;
    const char *master = getenv("MASTER_ADDR");
    return !strcmp(lay->source, "the caller") && master && *master && !getenv("OMPI_COMM_WORLD_SIZE");
}

int pmlc_ranks_open(pml_context *ctx, const pmlc_train_args *a, const pml_plan *pl, uint64_t plan_hash,
                    int64_t steps, pml_backend backend, pmlc_ranks *out)
{
    *out = (pmlc_ranks){0, 1, NULL};
    pml_ranks_layout lay;
    if (pml_ranks_resolve(ctx, pl, a->rank, a->world, a->replicas, &lay)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", pml_context_error(ctx));
        /* The model's replicas failed where one pipeline would not: say how to choose. */
        int hint = a->replicas <= 0 && !pml_ranks_resolve(ctx, pl, a->rank, a->world, 1, &lay);
        fprintf(stderr, "pmlc: error: %s%s\n", why, hint ? "; --replicas overrides it" : "");
        return 1;
    }
    out->rank = lay.rank;
    out->world = lay.world;
    if (lay.world == 1) return 0;
    char what[64];
    snprintf(what, sizeof what, "rank %d cannot join the run", lay.rank);
    if (over_tcp(&lay)) {
        if (pml_tcp_create(ctx, pl, &lay, NULL, 0, a->peer_timeout, &out->dist))
            return pmlc_cli_fail(what, pml_context_error(ctx));
    } else {
#ifdef PML_HAVE_MPI
        if (pml_mpi_create(ctx, pl, &lay, a->peer_timeout, &out->dist))
            return pmlc_cli_fail(what, pml_context_error(ctx));
#else
        fprintf(stderr,
                "pmlc: error: this is rank %d of %d (from %s), but this pmlc was built without MPI: install "
                "libopenmpi-dev and rebuild, launch the ranks torchrun-style (RANK, WORLD_SIZE, MASTER_ADDR, "
                "MASTER_PORT), or run one process\n",
                lay.rank, lay.world, a->world > 0 ? "--world" : lay.source);
        return 1;
#endif
    }
    pmlc_agree_run run = {pl, plan_hash, steps, backend, lay.replicas};
    if (pmlc_agree(ctx, a, &run, lay.rank, out->dist)) {
        pml_ranks_barrier(ctx, out->dist); /* every rank has said why before any exits */
        pmlc_ranks_close(out);
        return 1;
    }
    return 0;
}

void pmlc_ranks_close(pmlc_ranks *r)
{
    pml_dist_destroy(r->dist);
    r->dist = NULL;
}

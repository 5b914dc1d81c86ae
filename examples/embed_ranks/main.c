/* embed_ranks — training a PML model as several processes from your own C program.
 *
 * Every rank compiles the same .pml file, finds who it is from the launcher's variables
 * (Open MPI's mpirun, Slurm's srun, RANK/WORLD_SIZE), joins the other ranks over MPI
 * (pml_mpi.h) and trains its share of the pipeline's stages. Started alone it trains the
 * whole pipeline as one process, to the same losses. Build: see CMakeLists.txt beside
 * this file and the README ("Embedding"); run:
 *   mpirun -np 2 embed_ranks examples/mlp.pml 3 */
#include <stdio.h>
#include <stdlib.h>

#include "pml.h"
#include "pml_mpi.h"
#include "pmlc.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: embed_ranks MODEL.pml STEPS\n");
        return 2;
    }
    int steps = atoi(argv[2]);

    /* 1. Compile, on every rank: each builds the same plan from the same file. */
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *compiler = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (pmlc_session_check_file(compiler, argv[1]) || pmlc_session_plan_bytes(compiler, &bytes, &len)) {
        pmlc_session_destroy(compiler);
        return 1;
    }
    pmlc_session_destroy(compiler);

    /* 2. Who this process is (-1, 0: the launcher's variables; 0 replicas: the plan's
     *    choice), then the other ranks over MPI when there are any. */
    pml_context *ctx = NULL;
    pml_plan *plan = NULL;
    pml_ranks_layout lay = {0};
    pml_dist *dist = NULL;
    pml_session *session = NULL;
    int rc = 1;
    if (pml_context_create(&ctx) || pml_plan_open_memory(ctx, bytes, len, argv[1], &plan) ||
        pml_ranks_resolve(ctx, plan, -1, 0, 0, &lay) ||
        (lay.world > 1 && pml_mpi_create(ctx, plan, &lay, 30.0, &dist))) {
        fprintf(stderr, "embed_ranks: %s\n", ctx ? pml_context_error(ctx) : "out of memory");
        goto out;
    }

    /* 3. A session over the ranks: every rank makes the same calls with the same options. */
    pml_session_options so = {0};
    so.seed = 1234;
    so.dist = dist;
    if (pml_session_open(ctx, plan, &so, &session)) {
        fprintf(stderr, "embed_ranks: rank %d: %s\n", lay.rank, pml_context_error(ctx));
        goto out;
    }

    /* 4. Train; each step's loss is the whole global batch's, on every rank. */
    pml_step_metrics m = {0};
    for (int i = 0; i < steps; i++) {
        if (pml_session_train_step(session, &m)) {
            fprintf(stderr, "embed_ranks: rank %d: %s\n", lay.rank, pml_context_error(ctx));
            goto out;
        }
        printf("rank %d of %d: step %lld loss %.9g\n", lay.rank, lay.world, (long long)m.step, m.loss);
    }
    rc = 0;
out:
    pml_session_destroy(session);
    pml_dist_destroy(dist);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    free(bytes);
    return rc;
}

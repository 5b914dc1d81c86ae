/* train_ranks.h — the ranks of `pmlc train` (train_ranks.c): whether this process is
 * one of several (launcher environment, or --rank/--world), the MPI group when it is,
 * and moving the model between rank 0 and the others (onto rank 0 to evaluate, from
 * it after it read --init or --resume). With one
 * process every function is a no-op that succeeds. Errors are printed (this is the
 * tool); each function returns the exit status, 0 or 1. */
#ifndef PMLC_TRAIN_RANKS_H
#define PMLC_TRAIN_RANKS_H

#include <stddef.h>
#include <stdint.h>

#include "exec/dist.h"
#include "exec/pipeline.h"
#include "train_cmd.h"

typedef struct pmlc_ranks {
    int rank, world;
    pml_dist *dist; /* NULL with one process */
} pmlc_ranks;

/* Rank and world from the flags in `a` (>= 0) or the environment; with more than one
 * process, joins the others (MPI) as the plan's replicas (place = auto(..., replicas
 * = R); --replicas overrides it) and checks that all were started alike: the plan
 * hashed `plan_hash`, `steps` and `backend` as this rank runs them, the options and
 * the --out folder (train_agree.h). */
int pmlc_ranks_open(const pmlc_train_args *a, const pml_plan *pl, uint64_t plan_hash, int64_t steps,
                    pml_backend backend, pmlc_ranks *out);
/* Leaves the run: the other ranks are told (the last error printed is the reason
 * abandon gives them, exec/dist.h) and MPI is finalized with them, unless
 * pmlc_ranks_abandon said this process failed: then nothing waits for them (mpirun
 * ends them). Call abandon before destroying the pipeline, whose transport would
 * finish its sends. */
void pmlc_ranks_abandon(pmlc_ranks *r);
void pmlc_ranks_close(pmlc_ranks *r);

/* CPU threads for this process by default: the machine's, shared by the ranks on it. */
int pmlc_ranks_default_threads(void);

/* The whole model (weights and optimizer state) onto rank 0 (for --eval), or from
 * rank 0 to the ranks that own each part (after it loaded weights). */
int pmlc_ranks_gather(pmlc_ranks *r, const pml_plan *pl, pml_pipeline *pipe);
int pmlc_ranks_scatter(pmlc_ranks *r, const pml_plan *pl, pml_pipeline *pipe);
/* Rank 0's `bytes` at `buf` into every rank's `buf`. */
int pmlc_ranks_share(pmlc_ranks *r, void *buf, size_t bytes);
/* Whether rank 0 succeeded at something only it does (rc is its exit status), told to
 * every rank so that all go on or all stop: 0 to go on. */
int pmlc_ranks_agree(pmlc_ranks *r, int rc);

#endif

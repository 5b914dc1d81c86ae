/* train_ranks.h — the ranks of `pmlc train` (train_ranks.c): whether this process is
 * one of several (launcher environment, or --rank/--world) and the group it joins when
 * it is (pml.h's pml_tcp_create, pml_mpi.h), which the training driver is handed. With one process
 * every function is a no-op that succeeds. Errors are printed (this is the tool); each
 * function returns the exit status, 0 or 1. */
#ifndef PMLC_TRAIN_RANKS_H
#define PMLC_TRAIN_RANKS_H

#include <stdint.h>

#include "pml.h"
#include "train_cmd.h"

typedef struct pmlc_ranks {
    int rank, world;
    pml_dist *dist; /* NULL with one process */
} pmlc_ranks;

/* Rank and world from the flags in `a` (>= 0) or the environment; with more than one
 * process, joins the others (over TCP for a torchrun-style launch, else MPI) as the
 * plan's replicas (place = auto(..., replicas = R); --replicas overrides it) and checks that all were started alike:
 * the plan hashed `plan_hash`, `steps` and `backend` as this rank runs them, the options and the --out folder
 * (train_agree.h). Messages of the library calls are in ctx's. */
int pmlc_ranks_open(pml_context *ctx, const pmlc_train_args *a, const pml_plan *pl, uint64_t plan_hash,
                    int64_t steps, pml_backend backend, pmlc_ranks *out);
/* Leaves the run: the other ranks are told (unless the driver said this process
 * failed, pml.h: then nothing waits for them) and the connections to them closed. */
void pmlc_ranks_close(pmlc_ranks *r);

#endif

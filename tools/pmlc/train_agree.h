/* train_agree.h — what the ranks of `pmlc train` compare before step 1, so that ranks
 * started differently are refused with the difference named ("rank 1 was started with
 * --seed 7, rank 0 with --seed 3") rather than trained into numbers or files nobody
 * asked for. Every option of `pmlc train` (pmlc.c) is in one of three classes:
 *
 *   option              class             compared as
 *   FILE                result-changing   the plan built from it (its hash): the path itself may differ
 *   -I DIR, --model,    result-changing   through the plan; --model and each --set KEY (its last value)
 *   --set KEY=VALUE                       also by name, so the message names the option
 *   --steps N           result-changing   the steps run (the train block's when not given)
 *   --seed S            result-changing   the seed asked for (the train block's when not given)
 *   --backend B         result-changing   the backend chosen
 *   --replicas R        result-changing   the replicas formed (the model's place when not given)
 *   --eval N            result-changing   the number (rank 0 evaluates, every rank takes part)
 *   --init W, --resume  input             the path as given: rank 0 alone reads it and sends each
 *                                         rank its part, so another rank's path would be ignored
 *   --metrics, --trace,
 *   --timeline          output-location   the path as given: rank 0 alone writes it
 *   --out DIR           output-location   the folder's identity, not its spelling: rank 0 writes a
 *                                         random token into its --out, and each rank must read the
 *                                         same token from its own (one folder every rank reaches)
 *   --threads, --quiet, local-only        not compared: this process's CPUs and printing (the
 *   --color,                              weights do not depend on the threads), and how long it
 *   --max-errors,                         waits for the others; the rank differs by definition and
 *   --peer-timeout,                       MPI checks the world
 *   --rank, --world
 *   (pmlc itself)       result-changing   the library version
 *
 * The token is the file TOKEN_NAME in --out, removed by rank 0 once every rank has read
 * it: a checkpoint reader never looks at it (it reads the files it names), and one left
 * by a killed start-up is replaced by the next. A rank that does not find rank 0's token
 * looks again for a few seconds (a shared file system may show a new file late) before
 * the run is refused. */
#ifndef PMLC_TRAIN_AGREE_H
#define PMLC_TRAIN_AGREE_H

#include <stdint.h>

#include "pml.h"
#include "train_cmd.h"

#define PMLC_AGREE_TOKEN_NAME ".pml-ranks-token"

/* The run this rank is about to train: what the ranks compare beyond the options. */
typedef struct pmlc_agree_run {
    const pml_plan *plan;
    uint64_t plan_hash; /* of the plan bytes */
    int64_t steps;      /* to run, the train block's unless --steps */
    pml_backend backend;
    int replicas;
} pmlc_agree_run;

/* Every rank (`rank` of the run) calls it after joining (d): 0 when every rank's facts
 * are rank 0's (pml_ranks_agree), else 1 on every rank, each having printed "rank R
 * cannot join the run: <difference>". */
int pmlc_agree(pml_context *ctx, const pmlc_train_args *a, const pmlc_agree_run *run, int rank, pml_dist *d);

#endif

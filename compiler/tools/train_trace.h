/* train_trace.h — `pmlc train --trace T.json`: the pipeline's timeline as one Chrome
 * trace (chrome://tracing, Perfetto), the measured bubble beside the analytic one, and
 * the share of step time spent waiting in transport.
 *
 * With ranks (train_ranks.h) every rank records its own stages; at start-up rank 0
 * estimates each rank's clock offset to its own (exec/dist_clock.h), and at the end
 * it gathers every rank's spans and measurements (exec/dist_gather.h) and writes one
 * trace: a process per rank, "rank r (replica k)", a thread per stage. Offsets and
 * their uncertainties are in the trace's otherData. One process writes what it always
 * wrote, with otherData.ranks added.
 *
 * Errors are printed (this is the tool); each function returns the exit status, 0 or 1,
 * agreed by every rank where it says so. */
#ifndef PMLC_TRAIN_TRACE_H
#define PMLC_TRAIN_TRACE_H

#include <stdint.h>

#include "exec/pipeline.h"
#include "train_ranks.h"

typedef struct pmlc_trace {
    const char *path;             /* NULL: no --trace, and every function is a no-op */
    double *offset, *uncertainty; /* rank 0: each rank's clock minus rank 0's, and its bound (s) */
    double bubble_sum, wait_sum;  /* this rank's, over the counted steps */
    int64_t steps;
} pmlc_trace;

/* Before training, on every rank: rank 0 checks that it can write `path` (naming it
 * and why not), then the clock offsets. Every rank learns the outcome. */
int pmlc_trace_begin(pmlc_trace *t, const char *path, pmlc_ranks *r);
/* After each step: `counted` steps enter the means (the first warms caches). */
void pmlc_trace_step(pmlc_trace *t, const pml_pipeline *pipe, int counted);
/* After training, on every rank: the summary line on stderr (unless `quiet`) and the
 * trace file, on rank 0. 1 when rank 0 could not write the file (the run's results
 * can still be saved), 2 when the ranks could not gather (the run cannot go on). */
int pmlc_trace_finish(pmlc_trace *t, pmlc_ranks *r, const pml_plan *pl, const pml_pipeline *pipe, int quiet);
void pmlc_trace_free(pmlc_trace *t);

#endif

/* trace.h — a run's timeline (pml_run_options.trace): the pipeline's spans as one
 * Chrome trace (chrome://tracing, Perfetto), the measured bubble beside the analytic
 * one, and the share of step time spent waiting in transport; and the picture of one
 * measured step (pml_run_options.timeline, run/timeline.h) from the same spans.
 *
 * With ranks every rank records its own stages; at start-up rank 0 estimates each
 * rank's clock offset to its own (exec/dist_clock.h), and at the end it gathers every
 * rank's spans and measurements (exec/dist_gather.h) and writes one trace: a process
 * per rank, "rank r (replica k)", a thread per stage. Offsets and their uncertainties
 * are in the trace's otherData. One process writes the trace it always wrote, with
 * otherData.ranks added. */
#ifndef PML_RUN_TRACE_H
#define PML_RUN_TRACE_H

#include <stdint.h>

#include "exec/dist.h"
#include "exec/pipeline.h"

typedef struct pml_run_trace {
    const char *path;             /* the Chrome trace; NULL: none */
    const char *svg;              /* the picture of one step (run/timeline.h); NULL: none. Neither: every
                                   * function is a no-op */
    double *offset, *uncertainty; /* rank 0: each rank's clock minus rank 0's, and its bound (s) */
    double bubble_sum, wait_sum;  /* this rank's, over the counted steps */
    int64_t steps;
    /* An inference's timeline (api_infer.c): op spans of `steps` traced forwards, each a
     * `step` of its own; otherData and the summary then say that, not the bubble. */
    int serving;
} pml_run_trace;

/* Before training, on every rank: rank 0 checks that it can write `path` and `svg`
 * (either may be NULL; naming it and why not: a bad path fails before the run, not
 * after it), then the clock offsets. Every rank learns the outcome (pml_run_agree). */
pml_status pml_run_trace_begin(pml_run_trace *t, const char *path, const char *svg, pml_dist *d, pml_err *err);
/* After each step: `counted` steps enter the means (the first warms caches). */
void pml_run_trace_step(pml_run_trace *t, const pml_pipeline *pipe, int counted);
/* After training, on every rank: gathers, and on rank 0 writes the file and puts the
 * summary line into *summary (malloc'ed, the caller frees; NULL elsewhere). *fatal is
 * set when the ranks could not gather (the run cannot go on); otherwise a failure is
 * rank 0's file alone and the run's results can still be saved. */
pml_status pml_run_trace_finish(pml_run_trace *t, pml_dist *d, const pml_plan *pl, const pml_pipeline *pipe,
                                char **summary, int *fatal, pml_err *err);
void pml_run_trace_free(pml_run_trace *t);

#endif

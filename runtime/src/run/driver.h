/* driver.h — the training driver: what `pmlc train` does between its options and its
 * printing, for any caller of pml_session_run (pml.h says what a run does). It drives a
 * pipeline it is handed (the session's) through the steps, with the checkpoint and
 * evaluation cadences, the metrics log, the trace, re-cuts at freezes (recut.h) and
 * ranks (ranks.h); it prints nothing, and tells its caller what happens through
 * pml_run_event.
 *
 * The loop is one step per iteration, and everything a step boundary does (re-cut,
 * step, metrics, evaluation, checkpoint) is in that order inside it, so a request to
 * stop (pml.h's pml_session_request_stop) is one check at the top of an iteration:
 * then the run saves the last completed step into its out folder as the final save
 * does, and ends with PML_OK and pml_run_result's stop fields. With ranks the check
 * acts only on what every rank agreed (driver.c's stop_due), never on this rank's own
 * flag, so all stop at the same step. */
#ifndef PML_RUN_DRIVER_H
#define PML_RUN_DRIVER_H

#include <stdatomic.h>
#include <stdio.h>

#include "exec/dist.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "run/recut.h"

/* What the driver works on: the session's, lent for the run. */
typedef struct pml_run_env {
    const pml_plan **plan;         /* the current phase's plan; a re-cut replaces it (and *pipe) */
    pml_pipeline **pipe;
    const pml_pipeline_opts *opts; /* how *pipe was made: a phase's pipeline is made alike */
    pml_run_phases *phases;        /* where a re-cut's plans are kept */
    char ***where;                 /* the current phase's node locations (opts->node_where) */
    pml_feed *feed;                /* the plan's data source (NULL: a feeder, or none) */
    int no_data;                   /* neither a data source nor a feeder: the run is refused */
    pml_dist *dist;                /* NULL: one process */
    pml_backend backend;
    uint64_t seed;
    int64_t resumed_at;            /* the resume's step (-1: not resumed) */
    const char *resumed_from;
    const char *note;              /* said once the run starts (NULL: nothing) */
    const atomic_int *stop;        /* the session's stop request: 0 none, else signo + 1 */
    /* One step: the session's (its feeder or its data source). */
    pml_status (*step)(void *ctx, pml_step_metrics *m, pml_err *err);
    void *step_ctx;
} pml_run_env;

pml_status pml_run_drive(pml_run_env *env, const pml_run_options *o, pml_run_result *result, pml_err *err);

#endif

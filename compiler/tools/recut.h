/* recut.h — `pmlc train FILE` re-cuts its pipeline at each scheduled freeze.
 *
 * From a freeze's step on, the stages holding the frozen layers have only forward work
 * left, so the cut planned for step 0 leaves them idle. When training a program (not a
 * plan file) on several stages, at each step where a scheduled freeze starts the
 * program is planned again as that phase (pmlc_options.freeze_from: the freezes begun
 * by then are static), so automatic placement balances the stages on the work left;
 * a new pipeline is made from that plan, every weight and the optimizer state of every
 * parameter still trained is copied into it (a layer that changes stage moves with it),
 * and it continues at the same step. Nothing is re-initialised, and the phase's plan
 * is the one a resume with the freeze made static would use, so the run computes what
 * the switch in place (plan/phase.h) computes. A plan file keeps its cut.
 *
 * Ownership: the plans made here are the recut's until pmlc_recut_free; the pipeline
 * replaced is destroyed. */
#ifndef PMLC_TOOLS_RECUT_H
#define PMLC_TOOLS_RECUT_H

#include <stdio.h>

#include "exec/pipeline.h"
#include "plan/plan.h"
#include "pmlc.h"

typedef struct pmlc_recut {
    const char *file;
    pmlc_options opt;
    int enabled; /* a program on more than one stage */
    pml_plan *plans[256];
    char **where[256]; /* with --check-numerics (opts.node_where): each plan's node locations */
    int n_plans;
} pmlc_recut;

void pmlc_recut_init(pmlc_recut *r, const char *file, const pmlc_options *opt, const pml_plan *pl);
/* Whether a freeze of `pl` starts at a step in 1..step, so the plan for `step` differs. */
int pmlc_recut_due(const pmlc_recut *r, const pml_plan *pl, int64_t step);
/* Replaces *pl and *pipe with the phase of `step`'s; writes one metrics record (when
 * `metrics`) and, unless quiet, one line saying where the layers now are. Returns
 * nonzero after reporting a failure (the old pipeline is then kept). */
int pmlc_recut_switch(pmlc_recut *r, int64_t step, const pml_pipeline_opts *opts, pml_plan **pl, pml_pipeline **pipe,
               FILE *metrics, int quiet);
void pmlc_recut_free(pmlc_recut *r);

#endif

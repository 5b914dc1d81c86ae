/* recut.h — a run re-cuts its pipeline at each scheduled freeze.
 *
 * From a freeze's step on, the stages holding the frozen layers have only forward work
 * left, so the cut planned for step 0 leaves them idle. When a run of several stages on
 * one process has a replan callback (pml.h: pmlc answers it by planning the program
 * again as that phase, pmlc_options.freeze_from, so that the freezes begun by then are
 * static and automatic placement balances the stages on the work left), at each step
 * where a scheduled freeze starts a new pipeline is made from the phase's plan, the
 * run's state is moved into it (every weight; the optimizer state of every parameter
 * still trained; the automatic freeze's state — a layer that changes stage moves with
 * it) and it continues at the same step. Nothing is re-initialised, and the phase's plan
 * is the one a resume with the freeze made static would use, so the run computes what
 * the switch in place (plan/phase.h) computes. Without the callback the cut stays.
 *
 * Ownership: the phases' plans and node locations belong to a pml_run_phases, which
 * the session keeps until it is destroyed (its current plan may be one of them). */
#ifndef PML_RUN_RECUT_H
#define PML_RUN_RECUT_H

#include <stddef.h>

#include "exec/pipeline.h"
#include "plan/plan.h"

#define PML_RUN_MAX_PHASES 256

typedef struct pml_run_phases {
    pml_plan *plans[PML_RUN_MAX_PHASES];
    char **where[PML_RUN_MAX_PHASES]; /* each plan's node locations (check_numerics), or NULL */
    int n;
} pml_run_phases;

/* Whether a freeze of `pl` starts at a step in 1..step, so the plan for `step` differs
 * (and a phase can still be kept). */
int pml_run_recut_due(const pml_run_phases *ph, const pml_plan *pl, int64_t step);
/* Weights, the optimizer state plan `b` keeps and the automatic freeze's state from
 * pipeline `from` (of plan `a`) into `to` (of plan `b`). */
pml_status pml_run_recut_move(const pml_plan *a, pml_pipeline *from, const pml_plan *b, pml_pipeline *to,
                              pml_err *err);
/* Where each layer's parameters are: "stage 0: stem..layers.3, stage 1: ...", into out[cap]. */
void pml_run_recut_describe(const pml_plan *pl, char *out, size_t cap);

/* A NULL-terminated copy of `where` (NULL when where is NULL or memory ran out: *ok 0). */
char **pml_run_where_copy(const char *const *where, int *ok);
void pml_run_where_free(char **where);
void pml_run_phases_free(pml_run_phases *ph);

#endif

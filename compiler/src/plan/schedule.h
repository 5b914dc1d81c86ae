/* schedule.h — the pipeline timetable: per stage, the ordered instructions the runtime
 * interprets (load a micro-batch, receive/send activations and gradients, run the
 * forward or backward of a micro-batch, apply the optimizer step).
 *
 * The policy lives here; the runtime only interprets. Before a timetable is accepted
 * it is simulated for all stages together with this plan's stage costs: every send
 * must meet its receive and no stage may wait forever, or the plan is refused with a
 * diagnostic instead of hanging at run time. The simulation also measures the bubble
 * and how many micro-batches' activations each stage holds at once. */
#ifndef PMLC_SCHEDULE_H
#define PMLC_SCHEDULE_H

#include "plan/placement.h"

typedef enum pmlc_instr_kind {
    PMLC_I_LOAD,     /* read this micro-batch's inputs (first stage) or labels (last) */
    PMLC_I_RECV_ACT, /* activations from the previous stage */
    PMLC_I_FWD,
    PMLC_I_SEND_ACT,  /* activations to the next stage */
    PMLC_I_RECV_GRAD, /* gradients from the next stage */
    PMLC_I_BWD,       /* input and weight gradients of the micro-batch */
    PMLC_I_SEND_GRAD, /* gradients to the previous stage */
    PMLC_I_STEP,      /* the optimizer update, after the last backward */
    PMLC_I_COUNT
} pmlc_instr_kind;

typedef struct pmlc_instr {
    pmlc_instr_kind kind;
    int32_t mb; /* micro-batch, -1 for STEP */
} pmlc_instr;

typedef struct pmlc_stage_timetable {
    PMLC_VEC(pmlc_instr) instr;
    int peak_in_flight; /* most micro-batches between their forward and backward at once */
    double busy;        /* simulated compute time (cost units) */
} pmlc_stage_timetable;

typedef struct pmlc_timetable {
    int n_stages;
    int64_t n_mb;
    pmlc_stage_timetable *stages;
    double makespan; /* simulated time of one step */
    double bubble;   /* 1 − busy / (stages × makespan) */
} pmlc_timetable;

/* Largest stages × micro-batches planned. */
#define PMLC_MAX_SCHEDULE_CELLS (1 << 22)

const char *pmlc_instr_name(pmlc_instr_kind k);

/* Builds and simulates the timetable of `pl`'s schedule. Forward and backward costs
 * per stage come from the plan. Schedules the runtime cannot run yet are planned
 * analytically only: NULL without an error (check P->diag.errors to tell apart). */
pmlc_timetable *pmlc_schedule_build(pmlc_program *P, const pmlc_plan *pl);

#endif

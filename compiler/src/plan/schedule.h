/* schedule.h — the pipeline timetable: per stage, the ordered instructions the runtime
 * interprets (load a micro-batch, receive/send activations and gradients, run the
 * forward or backward of a micro-batch, apply the optimizer step).
 *
 * The policy lives here; the runtime only interprets. A backward pass is one
 * instruction (BWD) or, in zero-bubble schedules, two: its input-gradient half
 * (BWD_INPUT, what the previous stage waits for) and its weight-gradient half
 * (BWD_WEIGHT, which nothing waits for, so it can fill a bubble).
 *
 * Every timetable is checked before it is accepted (pmlc_timetable_check): it is
 * simulated for all stages together with this plan's stage costs, and the plan is
 * refused with a diagnostic, instead of hanging or running out of memory at run
 * time, unless every send meets its receive, no stage waits forever, and no stage
 * holds more micro-batches' activations at once than its memory is planned for. The
 * simulation also measures the bubble and when each instruction starts (the
 * timeline picture, timeline.h).
 *
 * Under interleaved 1F1B and ZB-V each stage device runs several model chunks (the
 * plan's stages are the chunks): a device's list names the chunk of each instruction, a
 * chunk's messages go to the chunks before and after it, wherever they run (under ZB-V
 * the chunks make a V, pml_plan_chunk_device, and the last device sends its first
 * chunk's activations to its own second chunk). */
#ifndef PMLC_SCHEDULE_H
#define PMLC_SCHEDULE_H

#include "plan/placement.h"

/* Plan-file numbering (pml/plan_format.h): new kinds go at the end. */
typedef enum pmlc_instr_kind {
    PMLC_I_LOAD,     /* read this micro-batch's inputs (first stage) or labels (last) */
    PMLC_I_RECV_ACT, /* activations from the previous stage */
    PMLC_I_FWD,
    PMLC_I_SEND_ACT,   /* activations to the next stage */
    PMLC_I_RECV_GRAD,  /* gradients from the next stage */
    PMLC_I_BWD,        /* input and weight gradients of the micro-batch */
    PMLC_I_SEND_GRAD,  /* gradients to the previous stage */
    PMLC_I_STEP,       /* the optimizer update, after the last backward */
    PMLC_I_BWD_INPUT,  /* B: the input gradients only (then SEND_GRAD may follow) */
    PMLC_I_BWD_WEIGHT, /* W: the weight gradients of a micro-batch whose B has run */
    PMLC_I_COUNT
} pmlc_instr_kind;

/* An instruction of a stage device's list. `chunk` is the model piece it runs, one of
 * the plan's stages (pl->stages): the list's own index except with chunks, where
 * device d runs the chunks pmlc_chunk_device places on it (interleaved 1F1B: d, d + S,
 * d + 2S, ... of S devices; ZB-V: d and 2S − 1 − d); the step is the device's, its
 * chunk the device's index. */
typedef struct pmlc_instr {
    pmlc_instr_kind kind;
    int32_t chunk;
    int32_t mb; /* micro-batch, -1 for STEP */
} pmlc_instr;

typedef struct pmlc_stage_timetable {
    PMLC_VEC(pmlc_instr) instr;
    /* The memory the device is planned for: micro-batches between their forward and
     * their last backward instruction at once, over all its chunks (a value kept for
     * the backward pass has this many copies). 0: not limited. */
    int max_in_flight;
    /* Set by the check: */
    double *start;      /* per instruction: simulated start time */
    int peak_in_flight; /* most micro-batches between their forward and last backward at once */
    double busy;        /* simulated compute time */
} pmlc_stage_timetable;

/* A model chunk (one of the plan's stages) as the check sees it. */
typedef struct pmlc_chunk_timetable {
    /* What the check charges (cost units): a forward, an input-gradient and a
     * weight-gradient half (a whole BWD costs b + w); others cost nothing. */
    double f, b, w;
    int peak_in_flight; /* set by the check: the chunk's own micro-batches alive at once */
} pmlc_chunk_timetable;

typedef struct pmlc_timetable {
    int n_stages; /* stage devices, one instruction list each */
    int n_chunks; /* model chunks: a multiple of n_stages, placed by pmlc_chunk_device */
    int schedule; /* the plan's pmlc_schedule, which places the chunks */
    int64_t n_mb;
    pmlc_stage_timetable *stages;
    pmlc_chunk_timetable *chunks;
    double makespan; /* simulated time of one step */
    double bubble;   /* 1 − busy / (stages × makespan) */
} pmlc_timetable;

/* Largest stages × micro-batches planned. */
#define PMLC_MAX_SCHEDULE_CELLS (1 << 22)

const char *pmlc_instr_name(pmlc_instr_kind k);

/* The stage device that runs chunk c (pml_plan_chunk_device, the runtime's too). */
int pmlc_chunk_device(const pmlc_timetable *tt, int c);

/* Builds and checks the timetable of `pl`'s schedule. Forward and backward costs per
 * stage come from the plan. Schedules the runtime cannot run yet are planned
 * analytically only: NULL without an error (check P->diag.errors to tell apart); a
 * timetable that fails its check is reported as an error and NULL returned. */
pmlc_timetable *pmlc_schedule_build(pmlc_program *P, const pmlc_plan *pl);

/* The gate every timetable passes (schedule_check.c): simulates all stages together,
 * sends buffered and receives waiting for their message, and fills each stage's
 * start, peak_in_flight and busy and the timetable's makespan and bubble. Returns 0,
 * or 1 with what is wrong in why[cap]: an instruction out of place (a micro-batch out
 * of range, a send or receive past the pipeline's ends, a backward before its
 * forward, work done twice or not at all, the step not last and once), a send never
 * received or a receive never sent, a cycle of waits, or a stage holding more
 * micro-batches than its max_in_flight. Scratch memory from `A`. */
int pmlc_timetable_check(pmlc_arena *A, pmlc_timetable *tt, char *why, size_t cap);

/* The timetable seen per chunk: one list per chunk, its instructions in its device's
 * order, each list ending with a step. `tt` itself when every device runs one chunk.
 * For what looks at one model stage's work alone (the memory plan, the JSON). */
const pmlc_timetable *pmlc_timetable_by_chunk(pmlc_arena *A, const pmlc_timetable *tt);

#endif

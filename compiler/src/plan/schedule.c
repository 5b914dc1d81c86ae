/* schedule.c — the GPipe, 1F1B and ZB-H1 timetables (see schedule.h); their check is
 * schedule_check.c's.
 *
 * GPipe runs every forward, then every backward. 1F1B (PipeDream-Flush) runs
 * S − s − 1 warm-up forwards on stage s, then alternates one forward and one
 * backward, then drains the remaining backwards, so stage s never holds more than
 * S − s micro-batches of activations. ZB-H1 (Qi et al., "Zero Bubble Pipeline
 * Parallelism", 2023) is 1F1B with each backward split into its input-gradient half B,
 * which the previous stage waits for, and its weight-gradient half W, which nothing
 * waits for: stage s runs its first s B's without their W and from then on one W after
 * each B, oldest first, and the s W's still owed at the end after its last B. The last
 * stage, which 1F1B leaves idle while the gradients travel back up, spends that time on
 * its owed W's, and every stage's cool-down fills the gaps between B's with W's: the
 * bubble drops from (S − 1)(F + B + W) to about (S − 1)(F + B − W). A micro-batch's
 * activations live until its W, so every stage holds up to S of them — stage 0's 1F1B
 * peak, the pipeline's peak memory is unchanged. Every schedule ends with one
 * optimizer step, which is what makes pipelining a schedule and not a change of the
 * model. */
#include "plan/schedule.h"

#include <string.h>

static const char *const instr_names[] = {"load", "recv_act",  "fwd",  "send_act",  "recv_grad",
                                          "bwd",  "send_grad", "step", "bwd_input", "bwd_weight"};

_Static_assert(sizeof instr_names / sizeof *instr_names == PMLC_I_COUNT, "a name for every instruction kind");

const char *pmlc_instr_name(pmlc_instr_kind k) { return (unsigned)k < PMLC_I_COUNT ? instr_names[k] : "?"; }

static void push(pmlc_program *P, pmlc_stage_timetable *st, pmlc_instr_kind k, int64_t mb)
{
    pmlc_instr in = {k, (int32_t)mb};
    PMLC_PUSH(&P->arena, st->instr, in);
}

static void forward(pmlc_program *P, pmlc_stage_timetable *st, int s, int S, int64_t mb, int loads)
{
    if (loads) push(P, st, PMLC_I_LOAD, mb);
    if (s > 0) push(P, st, PMLC_I_RECV_ACT, mb);
    push(P, st, PMLC_I_FWD, mb);
    if (s < S - 1) push(P, st, PMLC_I_SEND_ACT, mb);
}

/* A micro-batch's backward: whole (BWD) or its input-gradient half (BWD_INPUT). */
static void backward(pmlc_program *P, pmlc_stage_timetable *st, int s, int S, int64_t mb, pmlc_instr_kind kind)
{
    if (s < S - 1) push(P, st, PMLC_I_RECV_GRAD, mb);
    push(P, st, kind, mb);
    if (s > 0) push(P, st, PMLC_I_SEND_GRAD, mb);
}

/* A stage loads data when it holds inputs (the first) or labels (the last). */
static int stage_loads(int s, int S) { return s == 0 || s == S - 1; }

static void emit_gpipe(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    for (int s = 0; s < S; s++) {
        pmlc_stage_timetable *st = &tt->stages[s];
        for (int64_t m = 0; m < tt->n_mb; m++) forward(P, st, s, S, m, stage_loads(s, S));
        for (int64_t m = 0; m < tt->n_mb; m++) backward(P, st, s, S, m, PMLC_I_BWD);
        push(P, st, PMLC_I_STEP, -1);
        st->max_in_flight = (int)tt->n_mb;
    }
}

/* 1F1B, and with `split` ZB-H1 (the file's comment). */
static void emit_1f1b(pmlc_program *P, pmlc_timetable *tt, int split)
{
    int S = tt->n_stages;
    int64_t M = tt->n_mb;
    pmlc_instr_kind bwd = split ? PMLC_I_BWD_INPUT : PMLC_I_BWD;
    for (int s = 0; s < S; s++) {
        pmlc_stage_timetable *st = &tt->stages[s];
        int64_t warmup = S - s - 1 < M ? S - s - 1 : M, f = 0, b = 0, w = 0;
        while (f < warmup) forward(P, st, s, S, f++, stage_loads(s, S));
        while (f < M || b < M) {
            if (f < M) forward(P, st, s, S, f++, stage_loads(s, S));
            backward(P, st, s, S, b++, bwd);
            if (split && b > s) push(P, st, PMLC_I_BWD_WEIGHT, w++);
        }
        while (split && w < M) push(P, st, PMLC_I_BWD_WEIGHT, w++);
        push(P, st, PMLC_I_STEP, -1);
        int64_t held = split ? S : S - s;
        st->max_in_flight = (int)(held < M ? held : M);
    }
}

pmlc_timetable *pmlc_schedule_build(pmlc_program *P, const pmlc_plan *pl)
{
    if (!pmlc_schedule_runnable(pl->schedule)) return NULL;
    if ((int64_t)pl->n_stages * pl->microbatches > PMLC_MAX_SCHEDULE_CELLS) {
        pmlc_error(&P->diag, pl->train ? pl->train->decl->name_loc : pl->g->decl->name_loc,
                   "%d stages x %lld micro-batches is too large a timetable to plan (the limit is %d)", pl->n_stages,
                   (long long)pl->microbatches, PMLC_MAX_SCHEDULE_CELLS);
        return NULL;
    }
    pmlc_timetable *tt = pmlc_arena_alloc(&P->arena, sizeof *tt);
    tt->n_stages = pl->n_stages;
    tt->n_mb = pl->microbatches;
    tt->stages = pmlc_arena_alloc(&P->arena, sizeof(pmlc_stage_timetable) * (size_t)pl->n_stages);
    for (int s = 0; s < pl->n_stages; s++) {
        /* Unit costs when the plan has none, so an empty model still schedules. */
        const pmlc_stage_cost *c = &pl->stages[s].cost;
        pmlc_stage_timetable *st = &tt->stages[s];
        st->f = c->fwd > 0 ? c->fwd : 1;
        st->b = c->bwd_b + c->bwd_w > 0 ? c->bwd_b : 1;
        st->w = c->bwd_b + c->bwd_w > 0 ? c->bwd_w : 1;
    }
    if (pl->schedule == PMLC_SCHED_GPIPE)
        emit_gpipe(P, tt);
    else
        emit_1f1b(P, tt, pl->schedule == PMLC_SCHED_ZERO_BUBBLE);
    char why[256];
    if (!pmlc_timetable_check(&P->arena, tt, why, sizeof why)) return tt;
    pmlc_error(&P->diag, pl->train ? pl->train->decl->name_loc : pl->g->decl->name_loc,
               "internal error: the %s timetable fails its check: %s", pmlc_schedule_name(pl->schedule), why);
    return NULL;
}

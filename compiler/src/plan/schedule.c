/* schedule.c — GPipe and 1F1B timetables and their simulation (see schedule.h).
 *
 * GPipe runs every forward, then every backward. 1F1B (PipeDream-Flush) runs
 * S − s − 1 warm-up forwards on stage s, then alternates one forward and one
 * backward, then drains the remaining backwards, so stage s never holds more than
 * S − s micro-batches of activations. Both end with one optimizer step, which is
 * what makes pipelining a schedule and not a change of the model. */
#include "plan/schedule.h"

#include <string.h>

static const char *const instr_names[PMLC_I_COUNT] = {"load",      "recv_act", "fwd",       "send_act",
                                                      "recv_grad", "bwd",      "send_grad", "step"};

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

static void backward(pmlc_program *P, pmlc_stage_timetable *st, int s, int S, int64_t mb)
{
    if (s < S - 1) push(P, st, PMLC_I_RECV_GRAD, mb);
    push(P, st, PMLC_I_BWD, mb);
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
        for (int64_t m = 0; m < tt->n_mb; m++) backward(P, st, s, S, m);
        push(P, st, PMLC_I_STEP, -1);
    }
}

static void emit_1f1b(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    int64_t M = tt->n_mb;
    for (int s = 0; s < S; s++) {
        pmlc_stage_timetable *st = &tt->stages[s];
        int64_t warmup = S - s - 1 < M ? S - s - 1 : M, f = 0, b = 0;
        while (f < warmup) forward(P, st, s, S, f++, stage_loads(s, S));
        while (f < M) {
            forward(P, st, s, S, f++, stage_loads(s, S));
            backward(P, st, s, S, b++);
        }
        while (b < M) backward(P, st, s, S, b++);
        push(P, st, PMLC_I_STEP, -1);
    }
}

/* Runs all stages together. Sends are buffered (they never block); a receive waits
 * for its message. Start times follow the data: an instruction starts when its stage
 * is free and its message has arrived. */
static int simulate(pmlc_program *P, const pmlc_plan *pl, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    int64_t M = tt->n_mb;
    size_t cells = (size_t)S * (size_t)M;
    double *act_at = pmlc_arena_alloc(&P->arena, sizeof(double) * cells); /* arrival at stage s of mb's activations */
    double *grad_at = pmlc_arena_alloc(&P->arena, sizeof(double) * cells);
    /* Per (stage, micro-batch): 1 once sent to that stage, 2 once received there. */
    uint8_t *act_sent = pmlc_arena_alloc(&P->arena, cells), *grad_sent = pmlc_arena_alloc(&P->arena, cells);
    int *pc = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)S);
    double *clock = pmlc_arena_alloc(&P->arena, sizeof(double) * (size_t)S);
    int *live = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)S);
    for (int progressed = 1; progressed;) {
        progressed = 0;
        for (int s = 0; s < S; s++) {
            pmlc_stage_timetable *st = &tt->stages[s];
            const pmlc_stage_cost *c = &pl->stages[s].cost;
            /* Unit costs when the plan has none, so an empty model still schedules. */
            double f = c->fwd > 0 ? c->fwd : 1, b = c->bwd_b + c->bwd_w > 0 ? c->bwd_b + c->bwd_w : 2;
            while (pc[s] < st->instr.n) {
                pmlc_instr in = st->instr.v[pc[s]];
                size_t here = (size_t)s * (size_t)M + (size_t)(in.mb < 0 ? 0 : in.mb);
                if (in.kind == PMLC_I_RECV_ACT) {
                    if (act_sent[here] != 1) break;
                    act_sent[here] = 2;
                    if (act_at[here] > clock[s]) clock[s] = act_at[here];
                } else if (in.kind == PMLC_I_RECV_GRAD) {
                    if (grad_sent[here] != 1) break;
                    grad_sent[here] = 2;
                    if (grad_at[here] > clock[s]) clock[s] = grad_at[here];
                } else if (in.kind == PMLC_I_SEND_ACT) {
                    act_sent[here + (size_t)M] = 1;
                    act_at[here + (size_t)M] = clock[s];
                } else if (in.kind == PMLC_I_SEND_GRAD) {
                    grad_sent[here - (size_t)M] = 1;
                    grad_at[here - (size_t)M] = clock[s];
                } else if (in.kind == PMLC_I_FWD) {
                    clock[s] += f;
                    st->busy += f;
                    if (++live[s] > st->peak_in_flight) st->peak_in_flight = live[s];
                } else if (in.kind == PMLC_I_BWD) {
                    clock[s] += b;
                    st->busy += b;
                    live[s]--;
                }
                pc[s]++;
                progressed = 1;
            }
        }
    }
    int stuck = 0;
    for (int s = 0; s < S; s++) {
        const pmlc_stage_timetable *st = &tt->stages[s];
        if (pc[s] == st->instr.n) continue;
        pmlc_instr in = st->instr.v[pc[s]];
        pmlc_error(&P->diag, pl->g->decl->name_loc,
                   "internal error: the %s timetable deadlocks: stage %d waits forever at %s of micro-batch %d",
                   pmlc_schedule_name(pl->schedule), s, pmlc_instr_name(in.kind), in.mb);
        stuck = 1;
        break;
    }
    for (size_t i = 0; !stuck && i < cells; i++) {
        if (act_sent[i] != 1 && grad_sent[i] != 1) continue;
        pmlc_error(&P->diag, pl->g->decl->name_loc,
                   "internal error: the %s timetable sends micro-batch %d to stage %d, which never receives it",
                   pmlc_schedule_name(pl->schedule), (int)(i % (size_t)M), (int)(i / (size_t)M));
        stuck = 1;
    }
    if (stuck) return 1;
    double busy = 0;
    for (int s = 0; s < S; s++) {
        busy += tt->stages[s].busy;
        if (clock[s] > tt->makespan) tt->makespan = clock[s];
    }
    tt->bubble = tt->makespan > 0 ? 1 - busy / (S * tt->makespan) : 0;
    return 0;
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
    if (pl->schedule == PMLC_SCHED_GPIPE)
        emit_gpipe(P, tt);
    else
        emit_1f1b(P, tt);
    return simulate(P, pl, tt) ? NULL : tt;
}

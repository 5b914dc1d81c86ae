/* schedule_check.c — the gate every timetable passes before a plan is accepted (see
 * schedule.h: pmlc_timetable_check).
 *
 * Two passes. The first reads each stage's list alone: every instruction in range and
 * in its place (a micro-batch's forward once, after its receive and load; its backward
 * once, whole or as an input half then a weight half, after its forward and its
 * gradients' receive; a send after the work that makes it; one step, last), and every
 * send matched by exactly one receive of the neighbour. The second runs all stages
 * together as the runtime does — a send is buffered and never blocks, a receive waits
 * for its message, an instruction starts when its stage is free and its message has
 * arrived — and finds a cycle of waits (every unfinished stage blocked), the time each
 * instruction starts and how many micro-batches each stage holds at once. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plan/schedule.h"

/* Per stage and micro-batch: where each kind of instruction is in the stage's list
 * (-1 none), and how many there are. */
typedef struct seen {
    int32_t at[PMLC_I_COUNT];
    uint8_t n[PMLC_I_COUNT];
} seen;

static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return 1;
}

/* Who does an instruction, for messages: "stage s" when every device runs one chunk,
 * else "stage d (chunk c)". */
static const char *who(const pmlc_timetable *tt, int c, char *buf, size_t cap)
{
    if (tt->n_chunks == tt->n_stages)
        snprintf(buf, cap, "stage %d", c);
    else
        snprintf(buf, cap, "stage %d (chunk %d)", pmlc_chunk_device(tt, c), c);
    return buf;
}

/* The first pass over stage device s: each instruction alone (the file's comment). */
static int check_list(const pmlc_timetable *tt, int s, seen *sv, char *why, size_t cap)
{
    const pmlc_stage_timetable *st = &tt->stages[s];
    int C = tt->n_chunks, steps = 0;
    int64_t M = tt->n_mb;
    char w[48];
    for (int i = 0; i < st->instr.n; i++) {
        pmlc_instr in = st->instr.v[i];
        if ((unsigned)in.kind >= PMLC_I_COUNT)
            return fail(why, cap, "stage %d has an instruction of unknown kind (%d)", s, (int)in.kind);
        const char *name = pmlc_instr_name(in.kind);
        if (in.kind == PMLC_I_STEP) {
            if (in.mb != -1 || ++steps > 1 || i != st->instr.n - 1)
                return fail(why, cap, "stage %d: the step must come once, last, for no micro-batch", s);
            continue;
        }
        if (in.chunk < 0 || in.chunk >= C || pmlc_chunk_device(tt, in.chunk) != s)
            return fail(why, cap, "stage %d: %s of micro-batch %d names chunk %d, which it does not run", s, name,
                        in.mb, in.chunk);
        who(tt, in.chunk, w, sizeof w);
        if (in.mb < 0 || in.mb >= M)
            return fail(why, cap, "%s: %s of micro-batch %d, which the step does not have", w, name, in.mb);
        if (((in.kind == PMLC_I_RECV_ACT || in.kind == PMLC_I_SEND_GRAD) && in.chunk == 0) ||
            ((in.kind == PMLC_I_SEND_ACT || in.kind == PMLC_I_RECV_GRAD) && in.chunk == C - 1))
            return fail(why, cap, "%s: %s of micro-batch %d goes past the pipeline's end", w, name, in.mb);
        seen *v = &sv[(size_t)in.chunk * (size_t)M + (size_t)in.mb];
        if (v->n[in.kind]++) return fail(why, cap, "%s runs %s of micro-batch %d twice", w, name, in.mb);
        v->at[in.kind] = i;
    }
    if (steps != 1) return fail(why, cap, "stage %d never steps", s);
    return 0;
}

/* The first pass over chunk c: its micro-batches' work in order (the file's comment).
 * Positions are in its device's list. */
static int check_chunk(const pmlc_timetable *tt, int c, const seen *sv, char *why, size_t cap)
{
    int C = tt->n_chunks;
    int64_t M = tt->n_mb;
    char s[48];
    who(tt, c, s, sizeof s);
    for (int64_t m = 0; m < M; m++) {
        const seen *v = &sv[(size_t)c * (size_t)M + (size_t)m];
        int32_t f = v->at[PMLC_I_FWD], whole = v->at[PMLC_I_BWD], bi = v->at[PMLC_I_BWD_INPUT],
                bw = v->at[PMLC_I_BWD_WEIGHT];
        int32_t b = whole >= 0 ? whole : bi; /* where the input gradients are made */
        if (f < 0) return fail(why, cap, "%s never runs the forward of micro-batch %d", s, (int)m);
        if ((whole >= 0) == (bi >= 0 || bw >= 0) || (whole < 0 && (bi < 0 || bw < 0)))
            return fail(why, cap,
                        "%s: micro-batch %d needs one backward, whole (bwd) or in two halves (bwd_input, "
                        "then bwd_weight)",
                        s, (int)m);
        if (b < f || (bw >= 0 && bw < bi))
            return fail(why, cap, "%s runs a backward of micro-batch %d before %s", s, (int)m,
                        b < f ? "its forward" : "its input half");
        if (v->at[PMLC_I_LOAD] > f) return fail(why, cap, "%s loads micro-batch %d after its forward", s, (int)m);
        if (c > 0 && !(v->at[PMLC_I_RECV_ACT] >= 0 && v->at[PMLC_I_RECV_ACT] < f))
            return fail(why, cap, "%s runs the forward of micro-batch %d without receiving its activations", s,
                        (int)m);
        if (c < C - 1 && !(v->at[PMLC_I_RECV_GRAD] >= 0 && v->at[PMLC_I_RECV_GRAD] < b))
            return fail(why, cap, "%s runs the backward of micro-batch %d without receiving its gradients", s,
                        (int)m);
        if (c < C - 1 && !(v->at[PMLC_I_SEND_ACT] > f))
            return fail(why, cap, "%s does not send the activations of micro-batch %d after its forward", s, (int)m);
        if (c > 0 && !(v->at[PMLC_I_SEND_GRAD] > b))
            return fail(why, cap, "%s does not send the gradients of micro-batch %d after its backward", s, (int)m);
    }
    return 0;
}

/* The second pass (the file's comment). */
static int simulate(pmlc_arena *A, pmlc_timetable *tt, char *why, size_t cap)
{
    int S = tt->n_stages, C = tt->n_chunks;
    int64_t M = tt->n_mb;
    size_t cells = (size_t)C * (size_t)M;
    double *act_at = pmlc_arena_alloc(A, sizeof(double) * cells); /* arrival at stage s of mb's activations */
    double *grad_at = pmlc_arena_alloc(A, sizeof(double) * cells);
    uint8_t *act_sent = pmlc_arena_alloc(A, cells), *grad_sent = pmlc_arena_alloc(A, cells);
    int *pc = pmlc_arena_alloc(A, sizeof(int) * (size_t)S), *live = pmlc_arena_alloc(A, sizeof(int) * (size_t)S);
    int *chunk_live = pmlc_arena_alloc(A, sizeof(int) * (size_t)C);
    for (int c = 0; c < C; c++) tt->chunks[c].peak_in_flight = 0;
    double *clock = pmlc_arena_alloc(A, sizeof(double) * (size_t)S);
    for (int s = 0; s < S; s++) {
        pmlc_stage_timetable *st = &tt->stages[s];
        st->start = pmlc_arena_alloc(A, sizeof(double) * (size_t)(st->instr.n ? st->instr.n : 1));
        st->busy = 0;
        st->peak_in_flight = 0;
    }
    for (int progressed = 1; progressed;) {
        progressed = 0;
        for (int s = 0; s < S; s++) {
            pmlc_stage_timetable *st = &tt->stages[s];
            while (pc[s] < st->instr.n) {
                pmlc_instr in = st->instr.v[pc[s]];
                size_t here = (size_t)in.chunk * (size_t)M + (size_t)(in.mb < 0 ? 0 : in.mb);
                pmlc_chunk_timetable *ch = &tt->chunks[in.kind == PMLC_I_STEP ? s : in.chunk];
                double cost = 0;
                if (in.kind == PMLC_I_RECV_ACT || in.kind == PMLC_I_RECV_GRAD) {
                    uint8_t *sent = in.kind == PMLC_I_RECV_ACT ? act_sent : grad_sent;
                    double at = (in.kind == PMLC_I_RECV_ACT ? act_at : grad_at)[here];
                    if (!sent[here]) break;
                    if (at > clock[s]) clock[s] = at;
                } else if (in.kind == PMLC_I_SEND_ACT) {
                    act_sent[here + (size_t)M] = 1;
                    act_at[here + (size_t)M] = clock[s];
                } else if (in.kind == PMLC_I_SEND_GRAD) {
                    grad_sent[here - (size_t)M] = 1;
                    grad_at[here - (size_t)M] = clock[s];
                } else if (in.kind == PMLC_I_FWD) {
                    cost = ch->f;
                    if (++live[s] > st->peak_in_flight) st->peak_in_flight = live[s];
                    if (++chunk_live[in.chunk] > ch->peak_in_flight) ch->peak_in_flight = chunk_live[in.chunk];
                } else if (in.kind == PMLC_I_BWD || in.kind == PMLC_I_BWD_WEIGHT) {
                    cost = in.kind == PMLC_I_BWD ? ch->b + ch->w : ch->w;
                    live[s]--; /* the micro-batch's last backward instruction frees its activations */
                    chunk_live[in.chunk]--;
                } else if (in.kind == PMLC_I_BWD_INPUT) {
                    cost = ch->b;
                }
                st->start[pc[s]] = clock[s];
                clock[s] += cost;
                st->busy += cost;
                pc[s]++;
                progressed = 1;
            }
        }
    }
    for (int s = 0; s < S; s++) {
        const pmlc_stage_timetable *st = &tt->stages[s];
        if (pc[s] < st->instr.n) {
            pmlc_instr in = st->instr.v[pc[s]];
            char w[48];
            snprintf(why, cap,
                     "the stages wait for each other in a cycle: %s waits forever at %s of micro-batch %d",
                     in.kind == PMLC_I_STEP ? who(tt, s, w, sizeof w) : who(tt, in.chunk, w, sizeof w),
                     pmlc_instr_name(in.kind), in.mb);
            return 1;
        }
        if (st->max_in_flight > 0 && st->peak_in_flight > st->max_in_flight) {
            snprintf(why, cap,
                     "stage %d holds %d micro-batches of activations at once, more than the %d its memory is "
                     "planned for",
                     s, st->peak_in_flight, st->max_in_flight);
            return 1;
        }
    }
    double busy = 0;
    tt->makespan = 0;
    for (int s = 0; s < S; s++) {
        busy += tt->stages[s].busy;
        if (clock[s] > tt->makespan) tt->makespan = clock[s];
    }
    tt->bubble = tt->makespan > 0 ? 1 - busy / (S * tt->makespan) : 0;
    return 0;
}

int pmlc_timetable_check(pmlc_arena *A, pmlc_timetable *tt, char *why, size_t cap)
{
    int S = tt->n_stages, C = tt->n_chunks;
    int64_t M = tt->n_mb;
    if (S < 1 || M < 1) {
        snprintf(why, cap, "%d stages and %lld micro-batches: a timetable needs at least one of each", S, (long long)M);
        return 1;
    }
    if (C < S || C % S) {
        snprintf(why, cap, "%d chunks do not divide among %d stages", C, S);
        return 1;
    }
    seen *sv = pmlc_arena_alloc(A, sizeof(seen) * (size_t)C * (size_t)M);
    for (size_t i = 0; i < (size_t)C * (size_t)M; i++)
        for (int k = 0; k < PMLC_I_COUNT; k++) sv[i].at[k] = -1;
    for (int s = 0; s < S; s++)
        if (check_list(tt, s, sv, why, cap)) return 1;
    for (int c = 0; c < C; c++)
        if (check_chunk(tt, c, sv, why, cap)) return 1;
    return simulate(A, tt, why, cap);
}

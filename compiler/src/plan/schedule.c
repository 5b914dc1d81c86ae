/* schedule.c — the GPipe, 1F1B, ZB-H1, interleaved 1F1B and ZB-V timetables (see
 * schedule.h); their check is schedule_check.c's.
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
 * peak, the pipeline's peak memory is unchanged. Interleaved 1F1B (Narayanan et al.,
 * "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
 * 2021) is emit_interleaved's comment, ZB-V emit_zbv's. Every schedule ends with one
 * optimizer step, which is what makes pipelining a schedule and not a change of the
 * model. */
#include "plan/schedule.h"

#include <string.h>

static const char *const instr_names[] = {"load", "recv_act",  "fwd",  "send_act",  "recv_grad",
                                          "bwd",  "send_grad", "step", "bwd_input", "bwd_weight"};

_Static_assert(sizeof instr_names / sizeof *instr_names == PMLC_I_COUNT, "a name for every instruction kind");

const char *pmlc_instr_name(pmlc_instr_kind k) { return (unsigned)k < PMLC_I_COUNT ? instr_names[k] : "?"; }

int pmlc_chunk_device(const pmlc_timetable *tt, int c) { return pml_plan_chunk_device(c, tt->n_stages, tt->schedule); }

static void push(pmlc_program *P, pmlc_stage_timetable *st, pmlc_instr_kind k, int c, int64_t mb)
{
    pmlc_instr in = {k, c, (int32_t)mb};
    PMLC_PUSH(&P->arena, st->instr, in);
}

/* A chunk loads data when it holds inputs (the first) or labels (the last). */
static int chunk_loads(int c, int C) { return c == 0 || c == C - 1; }

/* Chunk c's forward of a micro-batch, of C chunks in all. */
static void forward(pmlc_program *P, pmlc_stage_timetable *st, int c, int C, int64_t mb)
{
    if (chunk_loads(c, C)) push(P, st, PMLC_I_LOAD, c, mb);
    if (c > 0) push(P, st, PMLC_I_RECV_ACT, c, mb);
    push(P, st, PMLC_I_FWD, c, mb);
    if (c < C - 1) push(P, st, PMLC_I_SEND_ACT, c, mb);
}

/* A micro-batch's backward: whole (BWD) or its input-gradient half (BWD_INPUT). */
static void backward(pmlc_program *P, pmlc_stage_timetable *st, int c, int C, int64_t mb, pmlc_instr_kind kind)
{
    if (c < C - 1) push(P, st, PMLC_I_RECV_GRAD, c, mb);
    push(P, st, kind, c, mb);
    if (c > 0) push(P, st, PMLC_I_SEND_GRAD, c, mb);
}

static void emit_gpipe(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    for (int s = 0; s < S; s++) {
        pmlc_stage_timetable *st = &tt->stages[s];
        for (int64_t m = 0; m < tt->n_mb; m++) forward(P, st, s, S, m);
        for (int64_t m = 0; m < tt->n_mb; m++) backward(P, st, s, S, m, PMLC_I_BWD);
        push(P, st, PMLC_I_STEP, s, -1);
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
        while (f < warmup) forward(P, st, s, S, f++);
        while (f < M || b < M) {
            if (f < M) forward(P, st, s, S, f++);
            backward(P, st, s, S, b++, bwd);
            if (split && b > s) push(P, st, PMLC_I_BWD_WEIGHT, s, w++);
        }
        while (split && w < M) push(P, st, PMLC_I_BWD_WEIGHT, s, w++);
        push(P, st, PMLC_I_STEP, s, -1);
        int64_t held = split ? S : S - s;
        st->max_in_flight = (int)(held < M ? held : M);
    }
}

/* Interleaved 1F1B: device d runs chunks d, d + S, ..., d + (V − 1)S of the S·V, so a
 * micro-batch crosses every device V times. A device's work is M·V forward units and
 * as many backward ones; its k-th forward unit is of micro-batch (k / SV)·S + k mod S
 * on its (k mod SV) / S-th chunk — S micro-batches through its first chunk, the same S
 * through its second, and so on, the next group of S after the last chunk — and its
 * k-th backward unit the same with the chunks taken from the last. Device d warms up
 * with (V − 1)·S + 2·(S − 1 − d) forward units (the later chunks' inputs arrive only
 * after the earlier chunks have run on every device; the 2 per device below the last
 * keep one forward and one backward unit apart as in 1F1B), then alternates one forward
 * and one backward unit, then drains. Each device's idle time is (S − 1)·(f + b) / V
 * of a stage's whole-model cost, V times less than 1F1B's: bubble over work
 * (S − 1)/(V·M) with equal chunks, which the check's simulation measures. The price is
 * V times more messages and up to (V − 1)·S + 2(S − 1 − d) + 1 micro-batch-chunks held
 * (device 0, with chunks a V-th of a stage: ((V + 1)·S − 1)/(V·S) times 1F1B's
 * activation memory, about 1 + 1/V). */
static void emit_interleaved(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages, C = tt->n_chunks, V = C / S;
    int64_t M = tt->n_mb, N = M * V, SV = (int64_t)S * V;
    for (int d = 0; d < S; d++) {
        pmlc_stage_timetable *st = &tt->stages[d];
        int64_t warmup = (int64_t)(V - 1) * S + 2 * (S - 1 - d);
        if (warmup > N) warmup = N;
#define UNIT_MB(k) ((k) / SV * S + (k) % S)
#define UNIT_CHUNK(k, back) (((back) ? V - 1 - (int)((k) % SV / S) : (int)((k) % SV / S)) * S + d)
        int64_t f = 0, b = 0;
        while (f < warmup) f++, forward(P, st, UNIT_CHUNK(f - 1, 0), C, UNIT_MB(f - 1));
        while (b < N) {
            if (f < N) f++, forward(P, st, UNIT_CHUNK(f - 1, 0), C, UNIT_MB(f - 1));
            b++, backward(P, st, UNIT_CHUNK(b - 1, 1), C, UNIT_MB(b - 1), PMLC_I_BWD);
        }
#undef UNIT_MB
#undef UNIT_CHUNK
        push(P, st, PMLC_I_STEP, d, -1);
        st->max_in_flight = (int)(warmup + 1 < N ? warmup + 1 : N);
    }
}

/* ZB-V (Qi et al., "Zero Bubble Pipeline Parallelism", 2023, section 6; the order is
 * torch.distributed.pipelining's ScheduleZBVZeroBubble): device d runs chunk d on the
 * way down and chunk 2S − 1 − d on the way back up, each backward split into B and W.
 * Its lists are built for N = max(M, 2S − 1) micro-batches, the fewest that fill the
 * V, and the work of micro-batches past M left out (the order of what stays keeps
 * every dependency). On device d: 2(S − d) − 1 forwards of the first chunk; d pairs of
 * (second chunk's, first chunk's) forward; S − d times the second chunk's forward, B
 * and W; then, while forwards remain, one of each chunk each followed by its B and W;
 * then d pairs of B of each chunk with their W's owed, S − d B-W pairs of the first
 * chunk, and the owed W's (second chunk's, then first's). The last device turns each
 * micro-batch round on itself (its two chunks are neighbours) and the first starts the
 * backward as soon as the loss is computed, so no device waits the S − 1 forward
 * steps 1F1B's last stage waits: with F = B = W per chunk each device idles only for
 * the ramp up and down. A device holds at most 2S micro-batch-chunks (2 per
 * micro-batch in flight, half a stage each): 1F1B's stage 0 peak of S micro-batches. */
/* The W's a DualPipeV device owes at once: at most 2S (its last d + 1 pairs of B's),
 * S at most 512 (1024 chunks). */
#define DPV_OWED 1024

typedef struct zbv_dev {
    pmlc_program *P;
    pmlc_stage_timetable *st;
    int C;                    /* chunks in all: 2S */
    int chunk[2];             /* the device's: d and 2S − 1 − d */
    int64_t M;                /* real micro-batches: work past them is left out */
    int64_t f[2], b[2], w[2]; /* next forward, B and W per chunk */
} zbv_dev;

static void zbv_f(zbv_dev *z, int k)
{
    int64_t m = z->f[k]++;
    if (m < z->M) forward(z->P, z->st, z->chunk[k], z->C, m);
}

static void zbv_b(zbv_dev *z, int k)
{
    int64_t m = z->b[k]++;
    if (m < z->M) backward(z->P, z->st, z->chunk[k], z->C, m, PMLC_I_BWD_INPUT);
}

static void zbv_w(zbv_dev *z, int k)
{
    int64_t m = z->w[k]++;
    if (m < z->M) push(z->P, z->st, PMLC_I_BWD_WEIGHT, z->chunk[k], m);
}

static void emit_zbv(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    int64_t M = tt->n_mb, N = M > 2 * S - 1 ? M : 2 * S - 1;
    for (int d = 0; d < S; d++) {
        zbv_dev z = {P, &tt->stages[d], 2 * S, {d, 2 * S - 1 - d}, M, {0, 0}, {0, 0}, {0, 0}};
        for (int i = 0; i < 2 * (S - d) - 1; i++) zbv_f(&z, 0);
        for (int i = 0; i < d; i++) zbv_f(&z, 1), zbv_f(&z, 0);
        for (int i = 0; i < S - d; i++) zbv_f(&z, 1), zbv_b(&z, 1), zbv_w(&z, 1);
        while (z.f[1] < z.f[0] || z.f[0] < N) {
            if (z.f[0] < N) zbv_f(&z, 0);
            zbv_b(&z, 0), zbv_w(&z, 0);
            zbv_f(&z, 1), zbv_b(&z, 1), zbv_w(&z, 1);
        }
        for (int i = 0; i < d; i++) zbv_b(&z, 0), zbv_b(&z, 1);
        for (int i = 0; i < S - d; i++) zbv_b(&z, 0), zbv_w(&z, 0);
        while (z.w[1] < z.b[1]) zbv_w(&z, 1);
        while (z.w[0] < z.b[0]) zbv_w(&z, 0);
        push(P, z.st, PMLC_I_STEP, d, -1);
        z.st->max_in_flight = (int)(2 * (M < S ? M : S));
    }
}

/* DualPipeV (DeepSeek-V3's DualPipe cut in half; the order is torch.distributed.
 * pipelining's ScheduleDualPipeV): the same V as ZB-V, M >= 2S micro-batches. Device d
 * runs 2(S − d − 1) forwards of its first chunk; d + 1 pairs of forwards (first chunk,
 * second); S − d − 1 times B of the second chunk, the oldest owed W, the second
 * chunk's forward; then M − 2S + d + 1 times the main step, "F of the first chunk with
 * the whole backward of the second, F of the second with the whole backward of the
 * first" — DualPipe overlaps each such pair's forward with its backward on one device
 * (two streams, hiding the other's communication); here the pair runs forward then
 * backward, in the order given; then S − d − 1 times (whole backward of the second
 * chunk; F of the second with the whole backward of the first); then d + 1 pairs of
 * backwards (second chunk's, first's), whole until half-way and then split, their W's
 * owed (the odd devices switch one backward earlier); then S − d − 1 times (an owed W,
 * a backward of the first chunk); then the d + 1 W's still owed. Run one instruction
 * at a time, with F = B = W per chunk, its step is ZB-V's, 6M + S − 1 (the ramp), at
 * 2S + 1 micro-batch-chunks held: what DualPipe adds is the overlap, which needs a
 * device that runs a forward and a backward at once. */
typedef struct dpv_dev {
    zbv_dev z;
    int wq_chunk[DPV_OWED]; /* the W's owed, oldest first: chunk index k, micro-batch */
    int64_t wq_mb[DPV_OWED];
    int wq_head, wq_tail;
} dpv_dev;

static void dpv_bwd(dpv_dev *v, int k, int split)
{
    int64_t m = v->z.b[k]++;
    backward(v->z.P, v->z.st, v->z.chunk[k], v->z.C, m, split ? PMLC_I_BWD_INPUT : PMLC_I_BWD);
    if (!split) return;
    v->wq_chunk[v->wq_tail % (DPV_OWED)] = k;
    v->wq_mb[v->wq_tail++ % (DPV_OWED)] = m;
}

static void dpv_w(dpv_dev *v)
{
    if (v->wq_head == v->wq_tail) return;
    int k = v->wq_chunk[v->wq_head % (DPV_OWED)];
    push(v->z.P, v->z.st, PMLC_I_BWD_WEIGHT, v->z.chunk[k], v->wq_mb[v->wq_head++ % (DPV_OWED)]);
}

static void emit_dualpipev(pmlc_program *P, pmlc_timetable *tt)
{
    int S = tt->n_stages;
    int64_t M = tt->n_mb;
    for (int d = 0; d < S; d++) {
        dpv_dev v = {{P, &tt->stages[d], 2 * S, {d, 2 * S - 1 - d}, M, {0, 0}, {0, 0}, {0, 0}}, {0}, {0}, 0, 0};
        zbv_dev *z = &v.z;
        for (int i = 0; i < 2 * (S - d - 1); i++) zbv_f(z, 0);
        for (int i = 0; i < d + 1; i++) zbv_f(z, 0), zbv_f(z, 1);
        for (int i = 0; i < S - d - 1; i++) dpv_bwd(&v, 1, 1), dpv_w(&v), zbv_f(z, 1);
        for (int64_t i = 0; i < M - 2 * S + d + 1; i++) {
            zbv_f(z, 0), dpv_bwd(&v, 1, 0); /* the last device's first pair is not overlapped in DualPipe */
            zbv_f(z, 1), dpv_bwd(&v, 0, 0);
        }
        for (int i = 0; i < S - d - 1; i++) dpv_bwd(&v, 1, 0), zbv_f(z, 1), dpv_bwd(&v, 0, 0);
        int split = 0;
        for (int i = 0; i < d + 1; i++) {
            if (i == (d + 1) / 2 && d % 2 == 1) split = 1;
            dpv_bwd(&v, 1, split);
            if (i == (d + 1) / 2 && d % 2 == 0) split = 1;
            dpv_bwd(&v, 0, split);
        }
        for (int i = 0; i < S - d - 1; i++) dpv_w(&v), dpv_bwd(&v, 0, split);
        for (int i = 0; i < d + 1 || v.wq_head < v.wq_tail; i++) dpv_w(&v);
        push(P, z->st, PMLC_I_STEP, d, -1);
        z->st->max_in_flight = 2 * S + 1; /* one micro-batch-chunk more than ZB-V (the check measures it) */
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
    int V = pl->chunks > 1 ? pl->chunks : 1, vee = pml_plan_schedule_vee((int)pl->schedule);
    if (pl->n_stages % V || (V > 1) != (pl->schedule == PMLC_SCHED_INTERLEAVED_1F1B || vee) || (vee && V != 2) ||
        (V > 1 && !vee && pl->microbatches % (pl->n_stages / V)) ||
        (pl->schedule == PMLC_SCHED_DUALPIPE_V && pl->microbatches < pl->n_stages)) {
        pmlc_error(&P->diag, pl->train ? pl->train->decl->name_loc : pl->g->decl->name_loc,
                   "internal error: %d chunks of %d stages do not fit schedule %s with %lld micro-batches", V,
                   pl->n_stages, pmlc_schedule_name(pl->schedule), (long long)pl->microbatches);
        return NULL;
    }
    pmlc_timetable *tt = pmlc_arena_alloc(&P->arena, sizeof *tt);
    tt->n_stages = pl->n_stages / V;
    tt->n_chunks = pl->n_stages;
    tt->n_mb = pl->microbatches;
    tt->schedule = pl->schedule;
    tt->stages = pmlc_arena_alloc(&P->arena, sizeof(pmlc_stage_timetable) * (size_t)tt->n_stages);
    tt->chunks = pmlc_arena_alloc(&P->arena, sizeof(pmlc_chunk_timetable) * (size_t)tt->n_chunks);
    for (int s = 0; s < tt->n_chunks; s++) {
        /* Unit costs when the plan has none, so an empty model still schedules. */
        const pmlc_stage_cost *c = &pl->stages[s].cost;
        pmlc_chunk_timetable *ch = &tt->chunks[s];
        ch->f = c->fwd > 0 ? c->fwd : 1;
        ch->b = c->bwd_b + c->bwd_w > 0 ? c->bwd_b : 1;
        ch->w = c->bwd_b + c->bwd_w > 0 ? c->bwd_w : 1;
    }
    if (pl->schedule == PMLC_SCHED_GPIPE)
        emit_gpipe(P, tt);
    else if (pl->schedule == PMLC_SCHED_INTERLEAVED_1F1B)
        emit_interleaved(P, tt);
    else if (pl->schedule == PMLC_SCHED_ZERO_BUBBLE_V)
        emit_zbv(P, tt);
    else if (pl->schedule == PMLC_SCHED_DUALPIPE_V)
        emit_dualpipev(P, tt);
    else
        emit_1f1b(P, tt, pl->schedule == PMLC_SCHED_ZERO_BUBBLE);
    char why[256];
    if (!pmlc_timetable_check(&P->arena, tt, why, sizeof why)) return tt;
    pmlc_error(&P->diag, pl->train ? pl->train->decl->name_loc : pl->g->decl->name_loc,
               "internal error: the %s timetable fails its check: %s", pmlc_schedule_name(pl->schedule), why);
    return NULL;
}

const pmlc_timetable *pmlc_timetable_by_chunk(pmlc_arena *A, const pmlc_timetable *tt)
{
    if (!tt || tt->n_chunks == tt->n_stages) return tt;
    pmlc_timetable *ct = pmlc_arena_alloc(A, sizeof *ct);
    *ct = *tt;
    ct->n_stages = tt->n_chunks;
    ct->stages = pmlc_arena_alloc(A, sizeof(pmlc_stage_timetable) * (size_t)tt->n_chunks);
    for (int c = 0; c < tt->n_chunks; c++) {
        const pmlc_stage_timetable *dev = &tt->stages[pmlc_chunk_device(tt, c)];
        pmlc_stage_timetable *st = &ct->stages[c];
        for (int i = 0; i < dev->instr.n; i++)
            if (dev->instr.v[i].chunk == c && dev->instr.v[i].kind != PMLC_I_STEP) PMLC_PUSH(A, st->instr, dev->instr.v[i]);
        pmlc_instr step = {PMLC_I_STEP, c, -1};
        PMLC_PUSH(A, st->instr, step);
        st->peak_in_flight = tt->chunks[c].peak_in_flight;
        st->max_in_flight = st->peak_in_flight;
    }
    return ct;
}

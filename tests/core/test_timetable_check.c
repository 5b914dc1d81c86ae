/* test_timetable_check.c — the check every timetable passes before a plan is accepted
 * (schedule.h: pmlc_timetable_check) refuses broken ones, each with its reason: a
 * receive without its send and a send without its receive, a cycle of waits, a stage
 * holding more micro-batches than its memory is planned for, work done twice or not at
 * all, a backward before its forward, a weight half before its input half, the step
 * not last, a micro-batch the step does not have, a send past the pipeline's end. The
 * timetables are the planner's own, each broken by hand in one place; unbroken, they
 * pass.
 *
 * With the argument `interleaved`: interleaved 1F1B's timetables (S stages of V chunks,
 * M micro-batches, M a multiple of S) pass the check, hold at most the micro-batches
 * their devices are planned for, and with equal chunks the simulated bubble is the
 * analytic one: idle over work (S − 1)/(V·M), i.e. (S − 1)/(V·M + S − 1) of the step;
 * broken by hand, they are refused.
 *
 * With the argument `zbv`: ZB-V's timetables (S stages of 2 chunks in a V, any M)
 * pass the check, each device holding at most 2·min(S, M) micro-batch-chunks (1F1B's
 * stage-0 peak), and with equal F, B and W the simulated bubble is the analytic one
 * (pml/bubble.h); broken by hand (a receive dropped, a cycle of waits, a chunk on
 * the device the interleaved placement would give it), they are refused. DualPipeV's
 * (the same V, M >= 2S) pass with the same analytic bubble, holding at most 2S + 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plan/schedule.h"
#include "pml/bubble.h"

typedef struct fixture {
    pmlc_program P;
    pmlc_graph g;
    ast decl;
} fixture;

/* The planner's timetable of `sched` for S stage devices of V equal chunks each and M
 * micro-batches. */
static pmlc_timetable *make_chunks(fixture *fx, int S, int V, int M, pmlc_schedule sched)
{
    memset(fx, 0, sizeof *fx);
    fx->P.diag.arena = &fx->P.arena;
    fx->P.diag.sources = &fx->P.sources;
    fx->g.decl = &fx->decl;
    pmlc_plan *pl = pmlc_arena_alloc(&fx->P.arena, sizeof *pl);
    pl->g = &fx->g;
    pl->n_stages = S * V;
    pl->chunks = V;
    pl->microbatches = M;
    pl->schedule = sched;
    pl->stages = pmlc_arena_alloc(&fx->P.arena, sizeof(pmlc_stage_plan) * (size_t)(S * V));
    for (int s = 0; s < S * V; s++) pl->stages[s].cost = (pmlc_stage_cost){.fwd = 1, .bwd_b = 1, .bwd_w = 1};
    pmlc_timetable *tt = pmlc_schedule_build(&fx->P, pl);
    CHECK(tt != NULL);
    return tt;
}

/* The planner's timetable of `sched` for S equal stages and M micro-batches. */
static pmlc_timetable *make(fixture *fx, int S, int M, pmlc_schedule sched) { return make_chunks(fx, S, 1, M, sched); }

/* Where stage s has instruction (kind, mb), or -1. */
static int find(const pmlc_timetable *tt, int s, pmlc_instr_kind kind, int mb)
{
    const pmlc_stage_timetable *st = &tt->stages[s];
    for (int i = 0; i < st->instr.n; i++)
        if (st->instr.v[i].kind == kind && st->instr.v[i].mb == mb) return i;
    return -1;
}

static void drop(pmlc_timetable *tt, int s, int i)
{
    pmlc_stage_timetable *st = &tt->stages[s];
    memmove(&st->instr.v[i], &st->instr.v[i + 1], sizeof *st->instr.v * (size_t)(st->instr.n - i - 1));
    st->instr.n--;
}

/* Moves stage s's instruction at `from` to position `to` (after the others shift). */
static void move(pmlc_timetable *tt, int s, int from, int to)
{
    pmlc_stage_timetable *st = &tt->stages[s];
    pmlc_instr x = st->instr.v[from];
    drop(tt, s, from);
    memmove(&st->instr.v[to + 1], &st->instr.v[to], sizeof *st->instr.v * (size_t)(st->instr.n - to));
    st->instr.v[to] = x;
    st->instr.n++;
}

/* The check refuses `tt`, saying `reason`. */
static void refused(fixture *fx, pmlc_timetable *tt, const char *reason)
{
    char why[256] = "";
    int bad = pmlc_timetable_check(&fx->P.arena, tt, why, sizeof why);
    CHECK(bad == 1);
    if (!strstr(why, reason)) fprintf(stderr, "expected \"%s\", got \"%s\"\n", reason, why);
    CHECK(strstr(why, reason) != NULL);
    pmlc_arena_free(&fx->P.arena);
}

/* Where stage s has instruction (kind, chunk, mb), or -1. */
static int find_chunk(const pmlc_timetable *tt, int s, pmlc_instr_kind kind, int chunk, int mb)
{
    const pmlc_stage_timetable *st = &tt->stages[s];
    for (int i = 0; i < st->instr.n; i++)
        if (st->instr.v[i].kind == kind && st->instr.v[i].chunk == chunk && st->instr.v[i].mb == mb) return i;
    return -1;
}

static int interleaved(void)
{
    fixture fx;
    pmlc_timetable *tt;
    static const int Ss[] = {1, 2, 3, 4, 8}, Vs[] = {2, 3, 4}, groups[] = {1, 2, 4};
    double worst = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) {
                int S = Ss[a], V = Vs[b], M = S * groups[c];
                tt = make_chunks(&fx, S, V, M, PMLC_SCHED_INTERLEAVED_1F1B);
                if (!tt) {
                    fprintf(stderr, "S %d, V %d, M %d: refused\n", S, V, M);
                    pmlc_arena_free(&fx.P.arena);
                    continue;
                }
                CHECK(tt->n_stages == S && tt->n_chunks == S * V);
                /* Idle over work, every device busy 3·V·M (F 1, whole backward 2, per chunk). */
                double ratio = tt->bubble / (1 - tt->bubble), want = (double)(S - 1) / (V * M);
                if (fabs(ratio - want) > worst) worst = fabs(ratio - want);
                if (!(fabs(ratio - want) < 1e-9))
                    fprintf(stderr, "S %d, V %d, M %d: simulated idle/work %.6f, analytic %.6f\n", S, V, M, ratio,
                            want);
                CHECK(fabs(ratio - want) < 1e-9);
                for (int s = 0; s < S; s++) CHECK(tt->stages[s].peak_in_flight <= tt->stages[s].max_in_flight);
                pmlc_arena_free(&fx.P.arena);
            }
    printf("interleaved 1F1B: simulated idle/work within %.3g of (S-1)/(V*M)\n", worst);

    /* Broken by hand: a chunk's activations never sent on to the next chunk, which is on
     * the next device; a chunk's work on a device that does not run it. */
    tt = make_chunks(&fx, 2, 2, 4, PMLC_SCHED_INTERLEAVED_1F1B);
    drop(tt, 1, find_chunk(tt, 1, PMLC_I_SEND_ACT, 1, 3));
    refused(&fx, tt, "stage 1 (chunk 1) does not send the activations of micro-batch 3");
    tt = make_chunks(&fx, 2, 2, 4, PMLC_SCHED_INTERLEAVED_1F1B);
    tt->stages[0].instr.v[find_chunk(tt, 0, PMLC_I_FWD, 2, 0)].chunk = 3;
    refused(&fx, tt, "stage 0: fwd of micro-batch 0 names chunk 3, which it does not run");
    /* Its devices hold more than 1F1B's: planned for 1F1B's S − s, device 0 does not fit. */
    tt = make_chunks(&fx, 4, 2, 8, PMLC_SCHED_INTERLEAVED_1F1B);
    tt->stages[0].max_in_flight = 4;
    refused(&fx, tt, "stage 0 holds 11 micro-batches of activations at once, more than the 4");
    return check_summary("interleaved timetables");
}

static int zbv(void)
{
    fixture fx;
    pmlc_timetable *tt;
    static const int Ss[] = {1, 2, 3, 4, 8}, Ms[] = {1, 2, 3, 4, 7, 8, 15, 16, 32};
    double worst = 0;
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 9; c++) {
            int S = Ss[a], M = Ms[c];
            tt = make_chunks(&fx, S, 2, M, PMLC_SCHED_ZERO_BUBBLE_V);
            if (!tt) {
                fprintf(stderr, "S %d, M %d: refused\n", S, M);
                pmlc_arena_free(&fx.P.arena);
                continue;
            }
            CHECK(tt->n_stages == S && tt->n_chunks == 2 * S);
            double want = pml_analytic_bubble(PML_PLAN_SCHEDULE_ZERO_BUBBLE_V, S, 2, M);
            if (fabs(tt->bubble - want) > worst) worst = fabs(tt->bubble - want);
            if (!(fabs(tt->bubble - want) < 1e-9))
                fprintf(stderr, "S %d, M %d: simulated bubble %.6f, analytic %.6f\n", S, M, tt->bubble, want);
            CHECK(fabs(tt->bubble - want) < 1e-9);
            for (int s = 0; s < S; s++) {
                CHECK(tt->stages[s].peak_in_flight <= 2 * (M < S ? M : S));
                CHECK(tt->stages[s].peak_in_flight <= tt->stages[s].max_in_flight);
            }
            pmlc_arena_free(&fx.P.arena);
        }
    printf("ZB-V: simulated bubble within %.3g of the analytic\n", worst);
    /* DualPipeV (M >= 2S) on the same V: the same analytic bubble, one more micro-batch-chunk held. */
    worst = 0;
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 9; c++) {
            int S = Ss[a], M = Ms[c];
            if (M < 2 * S) continue;
            tt = make_chunks(&fx, S, 2, M, PMLC_SCHED_DUALPIPE_V);
            if (!tt) {
                fprintf(stderr, "DualPipeV, S %d, M %d: refused\n", S, M);
                pmlc_arena_free(&fx.P.arena);
                continue;
            }
            double want = pml_analytic_bubble(PML_PLAN_SCHEDULE_DUALPIPE_V, S, 2, M);
            if (fabs(tt->bubble - want) > worst) worst = fabs(tt->bubble - want);
            CHECK(fabs(tt->bubble - want) < 1e-9);
            for (int s = 0; s < S; s++) CHECK(tt->stages[s].peak_in_flight <= 2 * S + 1);
            pmlc_arena_free(&fx.P.arena);
        }
    printf("DualPipeV: simulated bubble within %.3g of the analytic\n", worst);
    tt = make_chunks(&fx, 4, 2, 8, PMLC_SCHED_DUALPIPE_V);
    move(tt, 0, find_chunk(tt, 0, PMLC_I_SEND_ACT, 0, 0), find_chunk(tt, 0, PMLC_I_RECV_GRAD, 0, 0));
    refused(&fx, tt, "wait for each other in a cycle");

    /* Broken by hand: the last device's second chunk never receives what its first
     * chunk sent it (the V's turn); device 0 sends micro-batch 0's activations only
     * after it waits for their gradients (each list alone is in order); a chunk on
     * the device interleaving would put it on (chunk 2 on device 0 of 2), not its V's. */
    tt = make_chunks(&fx, 4, 2, 8, PMLC_SCHED_ZERO_BUBBLE_V);
    drop(tt, 3, find_chunk(tt, 3, PMLC_I_RECV_ACT, 4, 5));
    refused(&fx, tt, "stage 3 (chunk 4) runs the forward of micro-batch 5 without receiving its activations");
    tt = make_chunks(&fx, 4, 2, 8, PMLC_SCHED_ZERO_BUBBLE_V);
    move(tt, 0, find_chunk(tt, 0, PMLC_I_SEND_ACT, 0, 0), find_chunk(tt, 0, PMLC_I_RECV_GRAD, 0, 0));
    refused(&fx, tt, "wait for each other in a cycle");
    tt = make_chunks(&fx, 2, 2, 4, PMLC_SCHED_ZERO_BUBBLE_V);
    tt->stages[0].instr.v[find_chunk(tt, 0, PMLC_I_FWD, 3, 0)].chunk = 2;
    refused(&fx, tt, "stage 0: fwd of micro-batch 0 names chunk 2, which it does not run");
    /* Planned for 1F1B's last stage (one micro-batch), device 3 holds more. */
    tt = make_chunks(&fx, 4, 2, 8, PMLC_SCHED_ZERO_BUBBLE_V);
    tt->stages[3].max_in_flight = 1;
    refused(&fx, tt, "stage 3 holds 8 micro-batches of activations at once, more than the 1");
    return check_summary("ZB-V timetables");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "interleaved") == 0) return interleaved();
    if (argc > 1 && strcmp(argv[1], "zbv") == 0) return zbv();
    fixture fx;
    pmlc_timetable *tt;
    char why[256];

    /* Unbroken, every schedule's timetable passes. */
    static const pmlc_schedule scheds[] = {PMLC_SCHED_GPIPE, PMLC_SCHED_1F1B, PMLC_SCHED_ZERO_BUBBLE};
    for (int k = 0; k < 3; k++) {
        tt = make(&fx, 3, 4, scheds[k]);
        CHECK(tt && pmlc_timetable_check(&fx.P.arena, tt, why, sizeof why) == 0);
        pmlc_arena_free(&fx.P.arena);
    }

    /* A send without its receive: stage 1 never takes micro-batch 2's activations. */
    tt = make(&fx, 3, 4, PMLC_SCHED_1F1B);
    drop(tt, 1, find(tt, 1, PMLC_I_RECV_ACT, 2));
    refused(&fx, tt, "stage 1 runs the forward of micro-batch 2 without receiving its activations");

    /* A receive without its send: stage 2 never sends micro-batch 1's gradients back. */
    tt = make(&fx, 3, 4, PMLC_SCHED_1F1B);
    drop(tt, 2, find(tt, 2, PMLC_I_SEND_GRAD, 1));
    refused(&fx, tt, "stage 2 does not send the gradients of micro-batch 1");

    /* A cycle of waits: stage 0 waits for micro-batch 0's gradients before it sends the
     * activations that make them. Each stage's list alone is in order. */
    tt = make(&fx, 3, 4, PMLC_SCHED_1F1B);
    move(tt, 0, find(tt, 0, PMLC_I_SEND_ACT, 0), find(tt, 0, PMLC_I_BWD, 0));
    refused(&fx, tt, "wait for each other in a cycle: stage 0 waits forever at recv_grad of micro-batch 0");

    /* Memory: GPipe's stage 0 holds all 4 micro-batches; planned for 2, it does not fit. */
    tt = make(&fx, 3, 4, PMLC_SCHED_GPIPE);
    tt->stages[0].max_in_flight = 2;
    refused(&fx, tt, "stage 0 holds 4 micro-batches of activations at once, more than the 2");

    /* ZB-H1 keeps its W's late; planned for 1F1B's memory on the last stage, it does not fit. */
    tt = make(&fx, 4, 8, PMLC_SCHED_ZERO_BUBBLE);
    tt->stages[3].max_in_flight = 1;
    refused(&fx, tt, "stage 3 holds 4 micro-batches of activations at once, more than the 1");

    /* Work done twice, and not at all. */
    tt = make(&fx, 2, 4, PMLC_SCHED_1F1B);
    tt->stages[1].instr.v[find(tt, 1, PMLC_I_FWD, 3)].mb = 2;
    refused(&fx, tt, "stage 1 runs fwd of micro-batch 2 twice");
    tt = make(&fx, 2, 4, PMLC_SCHED_ZERO_BUBBLE);
    drop(tt, 0, find(tt, 0, PMLC_I_BWD_WEIGHT, 3));
    refused(&fx, tt, "stage 0: micro-batch 3 needs one backward");

    /* Out of order: a backward before its forward, a weight half before its input half. */
    tt = make(&fx, 1, 2, PMLC_SCHED_GPIPE);
    move(tt, 0, find(tt, 0, PMLC_I_BWD, 1), 0);
    refused(&fx, tt, "stage 0 runs a backward of micro-batch 1 before its forward");
    tt = make(&fx, 2, 4, PMLC_SCHED_ZERO_BUBBLE);
    move(tt, 1, find(tt, 1, PMLC_I_BWD_WEIGHT, 2), find(tt, 1, PMLC_I_BWD_INPUT, 2));
    refused(&fx, tt, "stage 1 runs a backward of micro-batch 2 before its input half");

    /* The step not last; a micro-batch the step does not have; past the pipeline's end. */
    tt = make(&fx, 2, 2, PMLC_SCHED_1F1B);
    move(tt, 1, tt->stages[1].instr.n - 1, 0);
    refused(&fx, tt, "stage 1: the step must come once, last");
    tt = make(&fx, 2, 2, PMLC_SCHED_1F1B);
    tt->stages[0].instr.v[0].mb = 7;
    refused(&fx, tt, "of micro-batch 7, which the step does not have");
    tt = make(&fx, 2, 2, PMLC_SCHED_1F1B);
    tt->stages[0].instr.v[find(tt, 0, PMLC_I_FWD, 0)].kind = PMLC_I_RECV_ACT;
    refused(&fx, tt, "stage 0: recv_act of micro-batch 0 goes past the pipeline's end");

    return check_summary("timetable check");
}

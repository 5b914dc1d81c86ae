/* test_schedule.c — the GPipe, 1F1B and ZB-H1 timetables: they complete for every shape
 * of pipeline (every send meets its receive, no stage waits forever), each micro-batch
 * runs forward and backward exactly once per stage (ZB-H1: its input half, then its
 * weight half), the simulated bubble with equal stage costs is the analytic
 * (S-1)/(M+S-1) (ZB-H1, with F = B = W and M >= S: (S-1)/(3M+S-1)), 1F1B holds fewer
 * micro-batches of activations than GPipe, and ZB-H1 at most S, 1F1B's peak. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plan/schedule.h"

/* A plan with S equal stages (forward cost 1, backward 2) and M micro-batches. */
static pmlc_plan *equal_plan(pmlc_program *P, pmlc_graph *g, int S, int M, pmlc_schedule sched)
{
    pmlc_plan *pl = pmlc_arena_alloc(&P->arena, sizeof *pl);
    pl->g = g;
    pl->n_stages = S;
    pl->microbatches = M;
    pl->schedule = sched;
    pl->stages = pmlc_arena_alloc(&P->arena, sizeof(pmlc_stage_plan) * (size_t)S);
    for (int s = 0; s < S; s++) {
        pl->stages[s].cost.fwd = 1;
        pl->stages[s].cost.bwd_b = 1;
        pl->stages[s].cost.bwd_w = 1;
    }
    return pl;
}

static void each_microbatch_once(const pmlc_timetable *tt)
{
    for (int s = 0; s < tt->n_stages; s++) {
        int *fwd = calloc((size_t)tt->n_mb, sizeof(int)), *bwd = calloc((size_t)tt->n_mb, sizeof(int)), steps = 0;
        int *wgt = calloc((size_t)tt->n_mb, sizeof(int)), order_ok = 1;
        for (int i = 0; i < tt->stages[s].instr.n; i++) {
            pmlc_instr in = tt->stages[s].instr.v[i];
            if (in.kind == PMLC_I_FWD) fwd[in.mb]++;
            if (in.kind == PMLC_I_BWD || in.kind == PMLC_I_BWD_INPUT) order_ok &= fwd[in.mb] == 1, bwd[in.mb]++;
            if (in.kind == PMLC_I_BWD) wgt[in.mb]++;
            if (in.kind == PMLC_I_BWD_WEIGHT) order_ok &= bwd[in.mb] == 1, wgt[in.mb]++;
            if (in.kind == PMLC_I_STEP) steps++, order_ok &= i == tt->stages[s].instr.n - 1;
        }
        for (int m = 0; m < tt->n_mb; m++) CHECK(fwd[m] == 1 && bwd[m] == 1 && wgt[m] == 1);
        CHECK(steps == 1 && order_ok);
        free(fwd);
        free(bwd);
        free(wgt);
    }
}

static void timetables_complete_and_match_the_analytic_bubble(void)
{
    static const int stages[] = {1, 2, 3, 4, 8}, mbs[] = {1, 2, 4, 7, 8, 16};
    static const pmlc_schedule scheds[] = {PMLC_SCHED_GPIPE, PMLC_SCHED_1F1B, PMLC_SCHED_ZERO_BUBBLE};
    for (size_t k = 0; k < sizeof scheds / sizeof *scheds; k++) {
        pmlc_schedule sched = scheds[k];
        for (size_t a = 0; a < sizeof stages / sizeof *stages; a++) {
            for (size_t b = 0; b < sizeof mbs / sizeof *mbs; b++) {
                pmlc_program P = {0};
                P.diag.arena = &P.arena;
                P.diag.sources = &P.sources;
                pmlc_graph g = {0};
                ast decl = {0};
                g.decl = &decl;
                int S = stages[a], M = mbs[b];
                pmlc_timetable *tt = pmlc_schedule_build(&P, equal_plan(&P, &g, S, M, sched));
                CHECK(tt != NULL && P.diag.errors == 0);
                if (!tt) continue;
                each_microbatch_once(tt);
                int zb = sched == PMLC_SCHED_ZERO_BUBBLE;
                double analytic = (double)(S - 1) / ((zb ? 3 : 1) * M + S - 1);
                if (!zb || M >= S) CHECK(fabs(tt->bubble - analytic) < 1e-9);
                for (int s = 0; s < S; s++) {
                    int want = sched == PMLC_SCHED_GPIPE ? M : zb ? (M < S ? M : S) : (M < S - s ? M : S - s);
                    CHECK(tt->stages[s].peak_in_flight == want);
                }
                pmlc_arena_free(&P.arena);
            }
        }
    }
}

/* ZB-H1 against 1F1B on the same pipeline: a smaller bubble for every shape with more
 * than one stage, and the same peak memory (stage 0's, the largest). */
static void zero_bubble_beats_1f1b_at_its_peak_memory(void)
{
    static const int stages[] = {2, 3, 4, 8}, mbs[] = {1, 2, 4, 8, 16};
    for (size_t a = 0; a < sizeof stages / sizeof *stages; a++)
        for (size_t b = 0; b < sizeof mbs / sizeof *mbs; b++) {
            pmlc_program P = {0};
            P.diag.arena = &P.arena;
            P.diag.sources = &P.sources;
            pmlc_graph g = {0};
            ast decl = {0};
            g.decl = &decl;
            int S = stages[a], M = mbs[b];
            pmlc_timetable *fb = pmlc_schedule_build(&P, equal_plan(&P, &g, S, M, PMLC_SCHED_1F1B));
            pmlc_timetable *zb = pmlc_schedule_build(&P, equal_plan(&P, &g, S, M, PMLC_SCHED_ZERO_BUBBLE));
            CHECK(fb && zb);
            if (fb && zb) {
                CHECK(zb->bubble < fb->bubble);
                int peak = 0;
                for (int s = 0; s < S; s++) peak = zb->stages[s].peak_in_flight > peak ? zb->stages[s].peak_in_flight : peak;
                CHECK(peak == fb->stages[0].peak_in_flight);
            }
            pmlc_arena_free(&P.arena);
        }
}

static void one_f_one_b_holds_fewer_activations_than_gpipe(void)
{
    pmlc_program P = {0};
    P.diag.arena = &P.arena;
    P.diag.sources = &P.sources;
    pmlc_graph g = {0};
    ast decl = {0};
    g.decl = &decl;
    pmlc_timetable *gp = pmlc_schedule_build(&P, equal_plan(&P, &g, 4, 8, PMLC_SCHED_GPIPE));
    pmlc_timetable *fb = pmlc_schedule_build(&P, equal_plan(&P, &g, 4, 8, PMLC_SCHED_1F1B));
    CHECK(gp && fb);
    if (gp && fb)
        for (int s = 0; s < 4; s++) CHECK(fb->stages[s].peak_in_flight < gp->stages[s].peak_in_flight);
    pmlc_arena_free(&P.arena);
}

int main(void)
{
    timetables_complete_and_match_the_analytic_bubble();
    one_f_one_b_holds_fewer_activations_than_gpipe();
    zero_bubble_beats_1f1b_at_its_peak_memory();
    return check_summary("schedule");
}

/* test_schedule.c — the GPipe and 1F1B timetables: they complete for every shape of
 * pipeline (every send meets its receive, no stage waits forever), each micro-batch
 * runs forward and backward exactly once per stage, the simulated bubble with equal
 * stage costs is the analytic (S-1)/(M+S-1), and 1F1B holds fewer micro-batches of
 * activations than GPipe. */
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
        int order_ok = 1;
        for (int i = 0; i < tt->stages[s].instr.n; i++) {
            pmlc_instr in = tt->stages[s].instr.v[i];
            if (in.kind == PMLC_I_FWD) fwd[in.mb]++;
            if (in.kind == PMLC_I_BWD) order_ok &= fwd[in.mb] == 1, bwd[in.mb]++;
            if (in.kind == PMLC_I_STEP) steps++, order_ok &= i == tt->stages[s].instr.n - 1;
        }
        for (int m = 0; m < tt->n_mb; m++) CHECK(fwd[m] == 1 && bwd[m] == 1);
        CHECK(steps == 1 && order_ok);
        free(fwd);
        free(bwd);
    }
}

static void timetables_complete_and_match_the_analytic_bubble(void)
{
    static const int stages[] = {1, 2, 3, 4, 8}, mbs[] = {1, 2, 4, 7, 8, 16};
    for (int sched = PMLC_SCHED_GPIPE; sched <= PMLC_SCHED_1F1B; sched++) {
        for (size_t a = 0; a < sizeof stages / sizeof *stages; a++) {
            for (size_t b = 0; b < sizeof mbs / sizeof *mbs; b++) {
                pmlc_program P = {0};
                P.diag.arena = &P.arena;
                P.diag.sources = &P.sources;
                pmlc_graph g = {0};
                ast decl = {0};
                g.decl = &decl;
                int S = stages[a], M = mbs[b];
                pmlc_timetable *tt = pmlc_schedule_build(&P, equal_plan(&P, &g, S, M, (pmlc_schedule)sched));
                CHECK(tt != NULL && P.diag.errors == 0);
                if (!tt) continue;
                each_microbatch_once(tt);
                double analytic = (double)(S - 1) / (M + S - 1);
                CHECK(fabs(tt->bubble - analytic) < 1e-9);
                for (int s = 0; s < S; s++) {
                    int want = sched == PMLC_SCHED_GPIPE ? M : (M < S - s ? M : S - s);
                    CHECK(tt->stages[s].peak_in_flight == want);
                }
                pmlc_arena_free(&P.arena);
            }
        }
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
    return check_summary("schedule");
}

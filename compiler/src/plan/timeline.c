/* timeline.c — the timetable as an SVG picture (see timeline.h), drawn as
 * pml/timeline_svg.h draws every timetable. */
#include "plan/timeline.h"

#include "pml/timeline_svg.h"
#include "plan/schedule.h"

/* A timetable kind's box kind; 0 for kinds not drawn. */
static int drawn(pmlc_instr_kind k, pml_tl_kind *box)
{
    switch (k) {
    case PMLC_I_FWD:
        return *box = PML_TL_F, 1;
    case PMLC_I_BWD:
    case PMLC_I_BWD_INPUT:
        return *box = PML_TL_B, 1;
    case PMLC_I_BWD_WEIGHT:
        return *box = PML_TL_W, 1;
    default:
        return 0;
    }
}

static double cost_of(const pmlc_chunk_timetable *c, pmlc_instr_kind k)
{
    return k == PMLC_I_FWD ? c->f : k == PMLC_I_BWD ? c->b + c->w : k == PMLC_I_BWD_INPUT ? c->b : c->w;
}

void pmlc_plan_print_timeline(const pmlc_plan *pl, FILE *out)
{
    const pmlc_timetable *tt = pl->timetable;
    int S = tt->n_stages, V = tt->n_chunks / S, split = 0;
    pml_tl_begin(out, S);
    fprintf(out, "model '%s': %s, %d stage%s", pl->g->name, pmlc_schedule_name(pl->schedule), S, S == 1 ? "" : "s");
    if (V > 1) fprintf(out, " of %d chunks each", V);
    fprintf(out, ", %lld micro-batch%s", (long long)tt->n_mb, tt->n_mb == 1 ? "" : "es");
    pml_tl_title_end(out);
    for (int s = 0; s < S; s++) {
        const pmlc_stage_timetable *st = &tt->stages[s];
        pml_tl_row(out, s);
        for (int i = 0; i < st->instr.n; i++) {
            pmlc_instr in = st->instr.v[i];
            pml_tl_kind k;
            if (!drawn(in.kind, &k)) continue;
            split |= in.kind == PMLC_I_BWD_WEIGHT;
            double t0 = st->start[i], t1 = t0 + cost_of(&tt->chunks[in.chunk], in.kind);
            pml_tl_box(out, s, t0, t1, tt->makespan, k, pmlc_instr_name(in.kind), in.mb, in.chunk, in.chunk / S, V);
        }
    }
    pml_tl_legend(out, S, split, 0, V);
    fprintf(out,
            "bubble %.1f%% analytic, %.1f%% simulated with the plan's stage costs (step time %.3g, in FLOPs of "
            "the slowest path)",
            100 * pl->bubble, 100 * tt->bubble, tt->makespan);
    pml_tl_end(out);
}

/* timeline.c — one measured step as an SVG picture (see timeline.h). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "run/timeline.h"

#include <stdio.h>
#include <stdlib.h>

#include "formats/atomic_file.h"
#include "pml/timeline_svg.h"

/* A timetable kind's box kind and name; 0 for kinds not drawn (waits show as idle). */
static int drawn(int kind, pml_tl_kind *box, const char **name)
{
    switch (kind) {
    case PML_PLAN_I_FWD:
        return *box = PML_TL_F, *name = "fwd", 1;
    case PML_PLAN_I_BWD:
        return *box = PML_TL_B, *name = "bwd", 1;
    case PML_PLAN_I_BWD_INPUT:
        return *box = PML_TL_B, *name = "bwd_input", 1;
    case PML_PLAN_I_BWD_WEIGHT:
        return *box = PML_TL_W, *name = "bwd_weight", 1;
    case PML_PLAN_I_STEP:
        return *box = PML_TL_U, *name = "update", 1;
    default:
        return 0;
    }
}

/* A step's extent: its earliest start and latest end over every span of it. */
typedef struct extent {
    int64_t step;
    double t0, t1;
} extent;

static int by_length(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    double lx = x->t1 - x->t0, ly = y->t1 - y->t0;
    return lx < ly ? -1 : lx > ly ? 1 : x->step < y->step ? -1 : x->step > y->step;
}

/* The step to draw: of the traced steps after the first (when there are others), the
 * one of median length. */
static int pick_step(const pml_run_span *spans, size_t n, extent *out)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].step < lo) lo = spans[i].step;
        if (spans[i].step > hi) hi = spans[i].step;
    }
    if (!n) return 0;
    if (hi > lo) lo++; /* the first warms caches */
    size_t m = (size_t)(hi - lo + 1);
    extent *e = malloc(m * sizeof *e);
    if (!e) return -1;
    for (size_t k = 0; k < m; k++) e[k] = (extent){lo + (int64_t)k, 1e300, -1e300};
    for (size_t i = 0; i < n; i++) {
        if (spans[i].step < lo) continue;
        extent *x = &e[spans[i].step - lo];
        if (spans[i].t0 < x->t0) x->t0 = spans[i].t0;
        if (spans[i].t1 > x->t1) x->t1 = spans[i].t1;
    }
    size_t kept = 0; /* steps a rank traced no span of (none, in practice) are not drawn */
    for (size_t k = 0; k < m; k++)
        if (e[k].t1 >= e[k].t0) e[kept++] = e[k];
    if (kept) {
        qsort(e, kept, sizeof *e, by_length);
        *out = e[(kept - 1) / 2];
    }
    free(e);
    return kept ? 1 : 0;
}

static void draw(FILE *out, const pml_plan *pl, const pml_run_span *spans, size_t n, const extent *x,
                 int64_t micro_batches, double mean_bubble, int64_t mean_steps, double analytic)
{
    int D = pml_plan_devices(pl), V = (int)pl->conf.chunks, split = 0, update = 0;
    double span = x->t1 - x->t0, busy = 0;
    pml_tl_begin(out, D);
    fprintf(out, "measured: %s, %d stage%s", pml_plan_schedule_name((int)pl->conf.schedule), D, D == 1 ? "" : "s");
    if (V > 1) fprintf(out, " of %d chunks each", V);
    fprintf(out, ", %lld micro-batch%s; step %lld", (long long)micro_batches, micro_batches == 1 ? "" : "es",
            (long long)x->step + 1);
    pml_tl_title_end(out);
    for (int s = 0; s < D; s++) pml_tl_row(out, s);
    for (size_t i = 0; i < n; i++) {
        const pml_run_span *w = &spans[i];
        pml_tl_kind k;
        const char *name;
        if (w->step != x->step || w->device < 0 || w->device >= D || !drawn(w->kind, &k, &name)) continue;
        split |= w->kind == PML_PLAN_I_BWD_WEIGHT;
        update |= k == PML_TL_U;
        busy += w->t1 - w->t0;
        pml_tl_box(out, w->device, w->t0 - x->t0, w->t1 - x->t0, span, k, name, k == PML_TL_U ? -1 : w->mb, w->chunk,
                   w->chunk / D, V);
    }
    pml_tl_legend(out, D, split, update, V);
    fprintf(out,
            "step %lld: %.3g ms (the median of the traced steps), bubble %.1f%%; measured %.1f%% (mean of %lld "
            "step%s), %.1f%% analytic",
            (long long)x->step + 1, span / 1e3, span > 0 ? 100 * (1 - busy / (D * span)) : 0.0, 100 * mean_bubble,
            (long long)mean_steps, mean_steps == 1 ? "" : "s", 100 * analytic);
    pml_tl_end(out);
}

pml_status pml_run_timeline_write(const char *path, const pml_plan *pl, const pml_run_span *spans, size_t n,
                                  int64_t micro_batches, double mean_bubble, int64_t mean_steps, double analytic,
                                  pml_err *err)
{
    extent x;
    int found = pick_step(spans, n, &x);
    if (found < 0) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline picture");
    if (!found) return pml_err_set(err, PML_ERR_INVALID_ARG, "cannot draw %s: no step was traced", path);
    char *svg = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&svg, &len);
    if (!mem) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline picture");
    draw(mem, pl, spans, n, &x, micro_batches, mean_bubble, mean_steps, analytic);
    pml_status st = fclose(mem) ? pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline picture")
                                : pml_atomic_write_file(path, svg, len, err);
    free(svg);
    return st;
}

/* memplan.c — liveness and best-fit placement of one stage's values (see memplan.h). */
#include "plan/memplan.h"

#include <stdlib.h>

#include "pml/best_fit.h"

/* Past this many pairs of values to compare, values are stacked without reuse. */
#define MAX_PAIRS ((int64_t)1 << 28)

enum { UNUSED = -1, ALWAYS = -2 };

pml_mem_value pml_mem_value_init(size_t bytes, size_t align)
{
    pml_mem_value v = {bytes, align ? align : 1, UNUSED, UNUSED, 0};
    return v;
}

void pml_mem_live(pml_mem_value *v, int32_t tick)
{
    if (v->first == ALWAYS || tick < 0) return;
    if (v->first == UNUSED || tick < v->first) v->first = tick;
    if (v->last == UNUSED || tick > v->last) v->last = tick;
}

void pml_mem_always(pml_mem_value *v) { v->first = v->last = ALWAYS; }

int pml_mem_lives_throughout(const pml_mem_value *v, int32_t pass_end)
{
    return v->first < 0 || (v->first < pass_end && v->last >= pass_end);
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* A value to place by liveness, with what orders it. */
typedef struct item {
    int index;
    size_t bytes;
    int32_t first;
} item;

/* Largest first; then the earlier first tick, then the lower index (a total order, so
 * the placement is the same on every platform). */
static int by_size(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static int meet(const pml_mem_value *x, const pml_mem_value *y) { return !(x->last < y->first || y->last < x->first); }

pml_status pml_mem_plan(pml_mem_value *v, int n, int32_t pass_end, size_t *arena, pml_err *err)
{
    size_t end = 0;
    for (int k = 0; k < n; k++) { /* what lives throughout, at the bottom */
        if (!v[k].align) v[k].align = 1;
        if (!pml_mem_lives_throughout(&v[k], pass_end) || !v[k].bytes) continue;
        v[k].offset = align_up(end, v[k].align);
        end = v[k].offset + v[k].bytes;
    }
    size_t base = end;
    item *order = malloc(sizeof(item) * ((size_t)n + 1));
    pml_fit_range *taken = malloc(sizeof *taken * ((size_t)n + 1));
    if (!order || !taken) {
        free(order), free(taken);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory planning the memory");
    }
    int m = 0;
    for (int k = 0; k < n; k++) {
        if (!v[k].bytes) v[k].offset = 0;
        if (v[k].bytes && !pml_mem_lives_throughout(&v[k], pass_end)) order[m++] = (item){k, v[k].bytes, v[k].first};
    }
    qsort(order, (size_t)m, sizeof *order, by_size);
    int reuse = (int64_t)m * m <= MAX_PAIRS;
    for (int i = 0; i < m; i++) {
        pml_mem_value *x = &v[order[i].index];
        int t = 0;
        for (int j = 0; reuse && j < i; j++) {
            const pml_mem_value *y = &v[order[j].index];
            if (meet(x, y)) taken[t++] = (pml_fit_range){(int64_t)y->offset, (int64_t)(y->offset + y->bytes)};
        }
        x->offset = reuse ? (size_t)pml_best_fit(taken, t, (int64_t)base, (int64_t)x->bytes, (int64_t)x->align)
                          : align_up(end, x->align);
        if (x->offset + x->bytes > end) end = x->offset + x->bytes;
    }
    free(order), free(taken);
    *arena = end;
    return PML_OK;
}

pml_status pml_mem_plan_stages(const pml_plan *pl, pml_mem_value *val, const int32_t *pass_end, size_t align,
                               size_t *base, size_t *total, pml_err *err)
{
    int N = pl->n_nodes, S = (int)pl->conf.stages;
    int32_t *mine = malloc(sizeof *mine * ((size_t)N + 1));
    pml_mem_value *sv = malloc(sizeof *sv * ((size_t)N + 1));
    pml_status st = mine && sv ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory planning the memory");
    *total = 0;
    for (int s = 0; !st && s < S; s++) {
        int n = 0;
        for (int i = 0; i < N; i++)
            if (pl->nodes[i].stage == s) mine[n] = i, sv[n++] = val[i];
        size_t arena = 0;
        st = pml_mem_plan(sv, n, pass_end[s], &arena, err);
        for (int k = 0; !st && k < n; k++) val[mine[k]].offset = sv[k].offset;
        base[s] = *total;
        *total += align_up(arena, align);
    }
    free(mine), free(sv);
    return st;
}

/* Micro-batches between their forward and the instruction that frees them at once: the
 * last backward one (bwd, or bwd_weight), or with `input` the one making the input
 * gradients (bwd, or bwd_input). Model stage s's own: under interleaved 1F1B its
 * device's list holds other chunks' instructions too, which have their own slots. */
static int64_t in_flight_until(const pml_plan *pl, int s, int input)
{
    int64_t now = 0, most = 1;
    int d = pl->n_stages ? pml_plan_chunk_device(s, pl->n_stages, (int)pl->conf.schedule) : 0; /* chunk s's list */
    for (int i = 0; pl->n_stages && i < pl->n_instr[d]; i++) {
        if (pl->instr[d][i].chunk != s) continue;
        int k = pl->instr[d][i].kind;
        int frees = k == PML_PLAN_I_BWD || k == (input ? PML_PLAN_I_BWD_INPUT : PML_PLAN_I_BWD_WEIGHT);
        now += k == PML_PLAN_I_FWD ? 1 : frees ? -1 : 0;
        if (now > most) most = now;
    }
    return most < pl->conf.microbatches ? most : pl->conf.microbatches;
}

int64_t pml_mem_in_flight(const pml_plan *pl, int s) { return in_flight_until(pl, s, 0); }

int64_t pml_mem_in_flight_input(const pml_plan *pl, int s) { return in_flight_until(pl, s, 1); }

/* autosched.c — the memory limit and schedule = auto (see autosched.h). */
#include "plan/autosched.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan/memplan.h"
#include "plan/schedule.h"
#include "sema/elab.h"

#define DIAG (&P->diag)

int64_t pmlc_plan_device_need(const pmlc_plan *pl, int *device)
{
    if (!pl->memory) return -1;
    int D = pl->n_stages / pl->chunks;
    int64_t best = -1;
    for (int dev = 0; dev < D; dev++) {
        int64_t need = 0;
        for (int c = 0; c < pl->n_stages; c++)
            if (pmlc_plan_device_of(pl, c) == dev) need += pl->memory->stages[c].arena;
        if (need > best) best = need, *device = dev;
    }
    return best;
}

int pmlc_plan_check_memory(pmlc_program *P, const pmlc_plan *pl)
{
    const pmlc_train *t = pl->train;
    if (!t || !t->memory) return 0;
    char a[32], b[32];
    int dev = 0;
    int64_t need = pmlc_plan_device_need(pl, &dev);
    if (need < 0) {
        pmlc_error(DIAG, t->memory_loc,
                   "memory = %s cannot be checked: this plan's timetable is too large for a memory estimate",
                   pmlc_fmt_bytes(t->memory, a, sizeof a));
        return 1;
    }
    if (need <= t->memory) return 0;
    pmlc_error(DIAG, t->memory_loc,
               "stage %d needs %s (%s with %lld micro-batches%s), over memory = %s per stage device", dev,
               pmlc_fmt_bytes(need, a, sizeof a), pmlc_schedule_name(pl->schedule), (long long)pl->microbatches,
               t->recompute || t->recomputes.n ? " and recompute" : "", pmlc_fmt_bytes(t->memory, b, sizeof b));
    if (t->schedule_loc.file >= 0)
        pmlc_note(DIAG, t->schedule_loc, "the schedule is set here; schedule = auto searches for one that fits");
    return 1;
}

typedef struct candidate {
    pmlc_schedule schedule;
    int64_t mb;
    int recompute;
    pmlc_plan *pl; /* NULL: this candidate does not plan (its errors are not shown) */
    double step;
    int64_t need;
    int device;
} candidate;

static const char *candidate_str(const candidate *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s with %lld micro-batch%s%s", pmlc_schedule_name(c->schedule), (long long)c->mb,
             c->mb == 1 ? "" : "es", c->recompute ? " and recompute" : "");
    return buf;
}

/* Plans one candidate on a fresh graph with the diagnostics silenced: a candidate that
 * does not plan (interleaving without chunks, micro-batches the inputs' rows refuse) is
 * simply not a candidate. */
static void plan_candidate(pmlc_program *P, const pmlc_graph *g0, pmlc_train *t, pmlc_distill *d, candidate *c)
{
    pmlc_diag saved = P->diag;
    P->diag.out = NULL;
    P->diag.after_error = NULL;
    P->diag.max_errors = 0;
    t->schedule = c->schedule;
    t->microbatches = c->mb;
    if (t->recompute_loc.file < 0 && !t->recomputes.n) t->recompute = c->recompute;
    pmlc_plan *pl = NULL;
    pmlc_graph *g = pmlc_elab_model(P, g0->decl, t->loss_fn, t->loss_loc, d);
    if (g && !pmlc_train_bind(P, t, g)) pl = pmlc_plan_build(P, g, t, d, 0);
    int failed = P->diag.errors > saved.errors;
    P->diag = saved;
    c->pl = NULL;
    if (failed || !pl || !pl->timetable || !pl->memory) return;
    c->pl = pl;
    c->step = pl->timetable->makespan;
    c->need = pmlc_plan_device_need(pl, &c->device);
}

static int fits(const pmlc_train *t, const candidate *c) { return c->pl && (!t->memory || c->need <= t->memory); }

/* Whether a is better than b: faster, or as fast and smaller. */
static int better(const candidate *a, const candidate *b)
{
    double tol = 1e-9 * fmax(a->step, b->step);
    if (a->step < b->step - tol) return 1;
    if (a->step > b->step + tol) return 0;
    return a->need < b->need;
}

/* Whether `place` names a CUDA device: the CUDA backend runs whole backward passes only
 * (runtime/src/backend_ops.c refuses split ones), so zero_bubble is no candidate there. */
static int on_cuda(const pmlc_train *t)
{
    for (int i = 0; i < t->n_devices; i++)
        if (t->devices[i].cuda) return 1;
    return 0;
}

pmlc_plan *pmlc_plan_auto(pmlc_program *P, const pmlc_graph *g0, pmlc_train *t, pmlc_distill *d)
{
    pmlc_loc where = t->schedule_loc.file >= 0 ? t->schedule_loc : t->decl->name_loc;
    int V = g0->chunks > 1 ? g0->chunks : 1, D = g0->n_stages / V, R = g0->replicas > 1 ? g0->replicas : 1;
    static const pmlc_schedule plain[] = {PMLC_SCHED_GPIPE, PMLC_SCHED_1F1B, PMLC_SCHED_ZERO_BUBBLE};
    pmlc_schedule scheds[3];
    int n_sched = 0;
    if (V > 1) { /* chunks run under interleaving and ZB-V only (train_blocks.c) */
        scheds[n_sched++] = PMLC_SCHED_INTERLEAVED_1F1B;
        if (V == 2 && !on_cuda(t)) scheds[n_sched++] = PMLC_SCHED_ZERO_BUBBLE_V;
        if (V == 2 && !on_cuda(t)) scheds[n_sched++] = PMLC_SCHED_DUALPIPE_V;
    } else
        for (int i = 0; i < 3; i++)
            if (plain[i] != PMLC_SCHED_ZERO_BUBBLE || !on_cuda(t)) scheds[n_sched++] = plain[i];
    int64_t mbs[64];
    int n_mb = 0;
    if (t->microbatches_loc.file >= 0)
        mbs[n_mb++] = t->microbatches;
    else
        for (int64_t m = 1; m <= t->batch && m <= 4 * (int64_t)D * R && n_mb < 64; m++)
            if (t->batch % m == 0) mbs[n_mb++] = m;
    int rc_free = t->recompute_loc.file < 0 && !t->recomputes.n, n_rc = rc_free ? 2 : 1;
    int n = n_sched * n_mb * n_rc, k = 0;
    candidate *cs = pmlc_arena_alloc(&P->arena, sizeof(candidate) * (size_t)n);
    int user_rc = t->recompute;
    for (int s = 0; s < n_sched; s++)
        for (int i = 0; i < n_mb; i++)
            for (int r = 0; r < n_rc; r++) {
                candidate *c = &cs[k++];
                c->schedule = scheds[s];
                c->mb = mbs[i];
                c->recompute = rc_free ? r : user_rc || t->recomputes.n; /* patterns: as given */
                plan_candidate(P, g0, t, d, c);
            }
    const candidate *best = NULL, *smallest = NULL;
    int planned = 0, fitting = 0;
    for (int i = 0; i < n; i++) {
        if (!cs[i].pl) continue;
        planned++;
        if (!smallest || cs[i].need < smallest->need) smallest = &cs[i];
        if (!fits(t, &cs[i])) continue;
        fitting++;
        if (!best || better(&cs[i], best)) best = &cs[i];
    }
    char a[32], b[32], c1[96];
    if (!planned) {
        pmlc_error(DIAG, where,
                   "schedule = auto found no schedule that plans for model '%s': name one (schedule = 1f1b) to see why",
                   g0->name);
        return NULL;
    }
    if (!best) {
        pmlc_error(DIAG, t->memory_loc,
                   "nothing fits in %s per stage device: the smallest plan, %s, needs %s on stage %d",
                   pmlc_fmt_bytes(t->memory, a, sizeof a), candidate_str(smallest, c1, sizeof c1),
                   pmlc_fmt_bytes(smallest->need, b, sizeof b), smallest->device);
        pmlc_note(DIAG, where, "schedule = auto tried %d plan%s", planned, planned == 1 ? "" : "s");
        return NULL;
    }
    /* The line `pmlc plan` shows: the choice, then each other schedule's best that fits. */
    size_t cap = 1024;
    char *line = pmlc_arena_alloc(&P->arena, cap);
    int len = snprintf(line, cap, "%s, %lld micro-batch%s, %s: simulated step %.4g", pmlc_schedule_name(best->schedule),
                       (long long)best->mb, best->mb == 1 ? "" : "es", best->recompute ? "recompute" : "no recompute",
                       best->step);
    const char *sep = " (best of the others:";
    for (int s = 0; s < n_sched; s++) {
        if (scheds[s] == best->schedule) continue;
        const candidate *o = NULL;
        for (int i = 0; i < n; i++)
            if (cs[i].schedule == scheds[s] && fits(t, &cs[i]) && (!o || better(&cs[i], o))) o = &cs[i];
        if (len < (int)cap)
            len +=
                o ? snprintf(line + len, cap - (size_t)len, "%s %s %.4g", sep, pmlc_schedule_name(scheds[s]), o->step)
                  : snprintf(line + len, cap - (size_t)len, "%s %s none fits", sep, pmlc_schedule_name(scheds[s]));
        sep = ",";
    }
    if (len < (int)cap && strcmp(sep, ",") == 0) len += snprintf(line + len, cap - (size_t)len, ")");
    if (len < (int)cap) {
        if (t->memory)
            len += snprintf(line + len, cap - (size_t)len, "; needs %s of %s on stage %d, %d of %d plans fit",
                            pmlc_fmt_bytes(best->need, a, sizeof a), pmlc_fmt_bytes(t->memory, b, sizeof b),
                            best->device, fitting, planned);
        else
            len += snprintf(line + len, cap - (size_t)len, "; needs %s on stage %d, no memory limit, %d plans",
                            pmlc_fmt_bytes(best->need, a, sizeof a), best->device, planned);
    }
    if ((V == 1 || V == 2) && on_cuda(t) && len < (int)cap)
        snprintf(line + len, cap - (size_t)len,
                 "; %s left out: place names CUDA devices, whose backend runs whole backward passes only",
                 V == 1 ? "zero_bubble" : "zero_bubble_v and dualpipe_v");
    t->schedule = best->schedule;
    t->microbatches = best->mb;
    t->recompute = best->recompute;
    best->pl->auto_choice = line;
    return best->pl;
}

/* recut.c — moving a run into the pipeline of a re-planned phase (see recut.h). */
#include "run/recut.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/phase.h"

int pml_run_recut_due(const pml_run_phases *ph, const pml_plan *pl, int64_t step)
{
    if (ph->n == PML_RUN_MAX_PHASES) return 0;
    for (int q = 0; q < pl->n_params; q++)
        if (pl->params[q].frozen_from > 0 && pl->params[q].frozen_from <= step) return 1;
    return 0;
}

/* Weights, and the optimizer state the new plan keeps, from `from` into `to`. The
 * model's parameters are the same in both plans; the copies of weights tied across
 * stages (plan.h) may not be, as the cut moved: each of `b`'s takes its root's. */
static pml_status move_state(const pml_plan *a, pml_pipeline *from, const pml_plan *b, pml_pipeline *to, pml_err *err)
{
    int na = pml_plan_model_params(a);
    if (na != pml_plan_model_params(b))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "the phase's plan has other parameters");
    for (int k = 0; k < b->n_params; k++) {
        int q = b->params[k].tie >= 0 ? b->params[k].tie : k; /* a's index: the same for the model's own */
        int64_t numel = a->nodes[a->params[q].node].numel;
        if (strcmp(a->params[q].name, b->params[k].name) || numel != b->nodes[b->params[k].node].numel)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "the phase's plan has other parameters");
        if (b->params[k].teacher) continue; /* loaded from the teacher's file by the new pipeline */
        float *src = pml_pipeline_param(from, q), *dst = pml_pipeline_param(to, k);
        if (!src || !dst) return pml_err_set(err, PML_ERR_INTERNAL, "cannot reach the weights");
        memcpy(dst, src, sizeof(float) * (size_t)numel);
        for (int w = 0; w < 2; w++) {
            float *d = pml_pipeline_optim_state(to, k, w), *s = d ? pml_pipeline_optim_state(from, q, w) : NULL;
            if (d && !s) return pml_err_set(err, PML_ERR_INVALID_ARG, "the phase trains a parameter the run did not");
            if (d) memcpy(d, s, sizeof(float) * (size_t)numel);
        }
    }
    return PML_OK;
}

/* The automatic freeze's state (plan/phase.h), which the new pipeline would otherwise
 * start without: the layers it froze would train again. Taking the old phase runs a
 * check due at this step first, on the gradients of the step before, as a checkpoint
 * does (ckpt/freeze.h). */
static pml_status move_freeze(const pml_plan *b, pml_pipeline *from, pml_pipeline *to, pml_err *err)
{
    pml_phase *old, *now;
    pml_err why = {0};
    if (b->conf.freeze_every <= 0) return PML_OK;
    if (pml_pipeline_phase(from, &old, &why) || pml_pipeline_phase(to, &now, &why))
        return pml_err_set(err, why.code, "cannot carry the automatic freeze's state: %s", why.msg);
    if (old->n_layers != now->n_layers) return pml_err_set(err, PML_ERR_INVALID_ARG, "the phase's plan has other layers");
    pml_phase_auto_copy(now, old, b);
    return PML_OK;
}

pml_status pml_run_recut_move(const pml_plan *a, pml_pipeline *from, const pml_plan *b, pml_pipeline *to,
                              pml_err *err)
{
    pml_status st = move_state(a, from, b, to, err);
    return st ? st : move_freeze(b, from, to, err);
}

void pml_run_recut_describe(const pml_plan *pl, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = 0;
    for (int s = 0; s < (int)pl->conf.stages && at < cap; s++) {
        const char *lo = NULL, *hi = NULL;
        for (int q = 0; q < pl->n_params; q++) {
            if (pl->nodes[pl->params[q].node].stage != s || pl->params[q].teacher || pl->params[q].tie >= 0) continue;
            if (!lo) lo = pl->params[q].layer;
            hi = pl->params[q].layer;
        }
        int n = snprintf(out + at, cap - at, "%sstage %d: %s%s%s", s ? ", " : "", s, lo ? lo : "-",
                         lo && strcmp(lo, hi) ? ".." : "", lo && strcmp(lo, hi) ? hi : "");
        at += n > 0 ? (size_t)n : 0;
    }
}

char **pml_run_where_copy(const char *const *where, int *ok)
{
    *ok = 1;
    if (!where) return NULL;
    int n = 0;
    while (where[n]) n++;
    char **out = calloc((size_t)n + 1, sizeof *out);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = strdup(where[i]))) {
            pml_run_where_free(out);
            out = NULL;
        }
    *ok = out != NULL;
    return out;
}

void pml_run_where_free(char **where)
{
    for (int i = 0; where && where[i]; i++) free(where[i]);
    free(where);
}

void pml_run_phases_free(pml_run_phases *ph)
{
    for (int i = 0; i < ph->n; i++) pml_plan_free(ph->plans[i]), pml_run_where_free(ph->where[i]);
    ph->n = 0;
}

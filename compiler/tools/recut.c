/* recut.c — re-planning the pipeline at a scheduled freeze (see recut.h). */
#include "recut.h"

#include <inttypes.h>
#include <string.h>

#include "build_cmd.h"
#include "ckpt/checkpoint.h"
#include "cli_util.h"
#include "plan/phase.h"

void pmlc_recut_init(pmlc_recut *r, const char *file, const pmlc_options *opt, const pml_plan *pl)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    r->opt = *opt;
    r->enabled = pl->conf.stages > 1 && !pmlc_is_plan_file(file);
}

int pmlc_recut_due(const pmlc_recut *r, const pml_plan *pl, int64_t step)
{
    if (!r->enabled || r->n_plans == (int)(sizeof r->plans / sizeof *r->plans)) return 0;
    for (int q = 0; q < pl->n_params; q++)
        if (pl->params[q].frozen_from > 0 && pl->params[q].frozen_from <= step) return 1;
    return 0;
}

/* Weights, and the optimizer state the new plan keeps, from `from` into `to`. */
static int move_state(const pml_plan *a, pml_pipeline *from, const pml_plan *b, pml_pipeline *to)
{
    if (a->n_params != b->n_params) return pmlc_cli_fail("the phase's plan has other parameters", NULL);
    for (int q = 0; q < a->n_params; q++) {
        int64_t numel = a->nodes[a->params[q].node].numel;
        if (strcmp(a->params[q].name, b->params[q].name) || numel != b->nodes[b->params[q].node].numel)
            return pmlc_cli_fail("the phase's plan has other parameters", NULL);
        if (b->params[q].teacher) continue; /* loaded from the teacher's file by the new pipeline */
        float *src = pml_pipeline_param(from, q), *dst = pml_pipeline_param(to, q);
        if (!src || !dst) return pmlc_cli_fail("cannot reach the weights", NULL);
        memcpy(dst, src, sizeof(float) * (size_t)numel);
        for (int k = 0; k < 2; k++) {
            float *d = pml_pipeline_optim_state(to, q, k), *s = d ? pml_pipeline_optim_state(from, q, k) : NULL;
            if (d && !s) return pmlc_cli_fail("the phase trains a parameter the run did not", NULL);
            if (d) memcpy(d, s, sizeof(float) * (size_t)numel);
        }
    }
    return 0;
}

/* The automatic freeze's state (plan/phase.h), which the new pipeline would otherwise
 * start without: the layers it froze would train again. Taking the old phase runs a
 * check due at this step first, on the gradients of the step before, as a checkpoint
 * does (ckpt/freeze.h). */
static int move_freeze(const pml_plan *b, pml_pipeline *from, pml_pipeline *to)
{
    pml_phase *old, *now;
    pml_err err = {0};
    if (b->conf.freeze_every <= 0) return 0;
    if (pml_pipeline_phase(from, &old, &err) || pml_pipeline_phase(to, &now, &err))
        return pmlc_cli_fail("cannot carry the automatic freeze's state", &err);
    if (old->n_layers != now->n_layers) return pmlc_cli_fail("the phase's plan has other layers", NULL);
    pml_phase_auto_copy(now, old, b);
    return 0;
}

/* Where each layer's parameters are: "stage 0: stem..layers.3, stage 1: ...". */
static void describe(const pml_plan *pl, FILE *out)
{
    for (int s = 0; s < (int)pl->conf.stages; s++) {
        const char *lo = NULL, *hi = NULL;
        for (int q = 0; q < pl->n_params; q++) {
            if (pl->nodes[pl->params[q].node].stage != s || pl->params[q].teacher) continue;
            if (!lo) lo = pl->params[q].layer;
            hi = pl->params[q].layer;
        }
        fprintf(out, "%sstage %d: %s%s%s", s ? ", " : "", s, lo ? lo : "-", lo && strcmp(lo, hi) ? ".." : "",
                lo && strcmp(lo, hi) ? hi : "");
    }
}

int pmlc_recut_switch(pmlc_recut *r, int64_t step, const pml_pipeline_opts *opts, pml_plan **pl, pml_pipeline **pipe,
               FILE *metrics, int quiet)
{
    pmlc_options opt = r->opt;
    opt.freeze_from = step;
    pml_plan *np = NULL;
    pml_pipeline *npipe = NULL;
    pml_err err = {0};
    /* The phase runs where the first one did: compiled for the GPU when that was CUDA. */
    pml_backend where = opts->backend && !strcmp(opts->backend->name, "cuda") ? PML_BACKEND_CUDA : PML_BACKEND_CPU;
    char **at = NULL; /* the phase's plan numbers its nodes anew */
    if (pmlc_plan_from_file_where(r->file, &opt, where, &np, NULL, opts->node_where ? &at : NULL)) return 1;
    r->where[r->n_plans] = at;
    r->plans[r->n_plans++] = np;
    pml_pipeline_opts phase_opts = *opts;
    phase_opts.node_where = (const char *const *)at;
    if (pml_pipeline_create(np, &phase_opts, &npipe, &err))
        return pmlc_cli_fail("cannot set up the phase's pipeline", &err);
    if (pml_ckpt_load_teacher(np, npipe, &err)) {
        pml_pipeline_destroy(npipe);
        return pmlc_cli_fail("cannot set up the phase's pipeline", &err);
    }
    if (move_state(*pl, *pipe, np, npipe) || move_freeze(np, *pipe, npipe)) {
        pml_pipeline_destroy(npipe);
        return 1;
    }
    pml_pipeline_set_step(npipe, step);
    pml_pipeline_destroy(*pipe);
    *pipe = npipe;
    *pl = np;
    if (!quiet) {
        fprintf(stderr, "step %" PRId64 ": a freeze starts; stages re-cut: ", step);
        describe(np, stderr);
        fputc('\n', stderr);
    }
    if (metrics) {
        fprintf(metrics, "{\"recut_at_step\": %" PRId64 ", \"param_stages\": {", step);
        for (int q = 0; q < np->n_params; q++)
            fprintf(metrics, "%s\"%s\": %d", q ? ", " : "", np->params[q].name, (int)np->nodes[np->params[q].node].stage);
        fputs("}}\n", metrics);
    }
    return 0;
}

void pmlc_recut_free(pmlc_recut *r)
{
    for (int i = 0; i < r->n_plans; i++) pml_plan_free(r->plans[i]), pmlc_where_free(r->where[i]);
    r->n_plans = 0;
}

/* phase.c — the runnable backward work of a phase (see phase.h): a work list from the
 * trained parameters' gradient nodes back through backward inputs, taking whole
 * kernels, so each node and kernel is visited once. */
#include "plan/phase.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pml_status pml_phase_init(pml_phase *ph, const pml_plan *pl, pml_err *err)
{
    memset(ph, 0, sizeof *ph);
    size_t np = (size_t)pl->n_params + 1, nn = (size_t)pl->n_nodes + 1;
    ph->frozen = calloc(np, 1);
    ph->extra = calloc(np, 1);
    ph->runs = calloc(nn, 1);
    ph->stack = calloc(nn, sizeof *ph->stack);
    ph->kernel_done = calloc((size_t)pl->n_kernels + 1, 1);
    ph->sq = calloc(np, sizeof *ph->sq);
    ph->layer = calloc(np, sizeof *ph->layer);
    ph->norm = calloc(np, sizeof *ph->norm);
    ph->now = calloc(np, sizeof *ph->now);
    ph->first = calloc(np, sizeof *ph->first);
    ph->trained = calloc(np, 1);
    if (!ph->frozen || !ph->extra || !ph->runs || !ph->stack || !ph->kernel_done || !ph->sq || !ph->layer ||
        !ph->norm || !ph->now || !ph->first || !ph->trained) {
        pml_phase_free(ph);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    /* Layers by name in order of first appearance: parameters are in model order. */
    int32_t *first = ph->first;
    for (int q = 0; q < pl->n_params; q++) {
        int l = 0;
        while (l < ph->n_layers && strcmp(pl->params[first[l]].layer, pl->params[q].layer)) l++;
        if (l == ph->n_layers) first[ph->n_layers++] = q;
        ph->layer[q] = l;
    }
    for (int l = 0; l < ph->n_layers; l++) ph->norm[l] = -1;
    ph->checked = -1;
    memset(ph->frozen, 2, np); /* no phase yet: differs from every real one */
    pml_phase_at(ph, pl, 0);
    ph->last = -1;
    return PML_OK;
}

void pml_phase_free(pml_phase *ph)
{
    if (!ph) return;
    free(ph->frozen), free(ph->extra), free(ph->runs), free(ph->stack), free(ph->kernel_done);
    free(ph->sq), free(ph->layer), free(ph->norm), free(ph->now), free(ph->first), free(ph->trained);
    memset(ph, 0, sizeof *ph);
}

/* Marks node n runnable and queues it, so its inputs and kernel-mates follow. */
static void mark(pml_phase *ph, int n, int *top)
{
    if (ph->runs[n]) return;
    ph->runs[n] = 1;
    ph->stack[(*top)++] = n;
}

static void compute_runs(pml_phase *ph, const pml_plan *pl)
{
    int top = 0;
    memset(ph->kernel_done, 0, (size_t)pl->n_kernels + 1);
    for (int n = 0; n < pl->n_nodes; n++) ph->runs[n] = pl->nodes[n].pass == 0;
    for (int q = 0; q < pl->n_params; q++)
        if (!ph->frozen[q] && pl->params[q].grad >= 0) mark(ph, pl->params[q].grad, &top);
    while (top > 0) {
        int n = ph->stack[--top];
        const pml_plan_node *node = &pl->nodes[n];
        for (int k = 0; k < node->n_in; k++)
            if (pl->nodes[node->in[k]].pass != 0) mark(ph, node->in[k], &top);
        int kern = pl->n_kernels ? pl->node_kernel[n] : -1;
        if (kern >= 0 && !ph->kernel_done[kern]) {
            ph->kernel_done[kern] = 1;
            for (int i = 0; i < pl->kernels[kern].n_nodes; i++) mark(ph, pl->kernels[kern].nodes[i], &top);
        }
    }
}

int pml_phase_at(pml_phase *ph, const pml_plan *pl, int64_t step)
{
    int changed = 0;
    ph->n_frozen = 0;
    for (int q = 0; q < pl->n_params; q++) {
        int64_t from = pl->params[q].frozen_from;
        uint8_t f = (from >= 0 && step >= from) || ph->extra[q];
        changed |= f != ph->frozen[q];
        ph->frozen[q] = f;
        ph->n_frozen += f;
    }
    if (changed) compute_runs(ph, pl);
    ph->last = step;
    return changed;
}

pml_status pml_phase_auto_check(pml_phase *ph, const pml_plan *pl, int64_t step, float *const *acc, pml_err *err)
{
    if (!pml_phase_auto_due(ph, pl, step)) return PML_OK;
    double m2 = (double)pl->conf.microbatches * (double)pl->conf.microbatches; /* acc / M is the mean */
    for (int q = 0; q < pl->n_params; q++) {
        double sq = 0;
        for (int64_t i = 0; acc[q] && i < pl->nodes[pl->params[q].node].numel; i++)
            sq += (double)acc[q][i] * acc[q][i];
        ph->sq[q] = sq / m2;
    }
    return pml_phase_auto(ph, pl, step, err);
}

pml_status pml_phase_begin(pml_phase *ph, const pml_plan *pl, int64_t step, float *const *acc, pml_err *err)
{
    pml_status st = pml_phase_auto_check(ph, pl, step, acc, err);
    if (!st) pml_phase_at(ph, pl, step);
    return st;
}

int pml_phase_auto_due(const pml_phase *ph, const pml_plan *pl, int64_t step)
{
    int64_t k = pl->conf.freeze_every;
    return k > 0 && step > 0 && step % k == 0 && ph->last == step - 1 && ph->checked != step;
}

void pml_phase_auto_restore(pml_phase *ph, const pml_plan *pl, const uint8_t *frozen, const double *norm,
                            int64_t checked)
{
    ph->n_auto = 0;
    for (int l = 0; l < ph->n_layers; l++) {
        ph->norm[l] = norm[l];
        ph->n_auto += frozen[l] != 0;
    }
    for (int q = 0; q < pl->n_params; q++) ph->extra[q] = frozen[ph->layer[q]] != 0;
    ph->checked = checked;
}

void pml_phase_auto_copy(pml_phase *to, const pml_phase *from, const pml_plan *pl)
{
    memcpy(to->extra, from->extra, (size_t)pl->n_params);
    memcpy(to->norm, from->norm, sizeof *to->norm * (size_t)from->n_layers);
    to->n_auto = from->n_auto;
    to->checked = from->checked;
}

pml_status pml_phase_auto(pml_phase *ph, const pml_plan *pl, int64_t step, pml_err *err)
{
    if (ph->sum_sq) {
        pml_status st = ph->sum_sq(ph->sum_sq_ctx, ph->sq, pl->n_params, err);
        if (st) return st;
    }
    ph->checked = step;
    uint8_t *trained = ph->trained;
    int L = ph->n_layers, last = -1, frozen = 0;
    memset(trained, 0, (size_t)L);
    for (int l = 0; l < L; l++) ph->now[l] = 0;
    for (int q = 0; q < pl->n_params; q++) {
        if (ph->frozen[q] || pl->params[q].grad < 0 || pl->params[q].tie >= 0) continue; /* a tied copy: counted once */
        trained[ph->layer[q]] = 1;
        ph->now[ph->layer[q]] += ph->sq[q];
    }
    for (int l = 0; l < L; l++)
        if (trained[l]) last = l;
    for (int l = 0; l < last; l++) {
        if (!trained[l]) continue; /* frozen already: part of the prefix */
        double g = sqrt(ph->now[l]), prev = ph->norm[l];
        if (!(prev > 0 && fabs(g - prev) / prev < pl->conf.freeze_threshold)) break;
        for (int q = 0; q < pl->n_params; q++)
            if (ph->layer[q] == l) ph->extra[q] = 1;
        trained[l] = 0;
        frozen++;
    }
    for (int l = 0; l < L; l++) ph->norm[l] = trained[l] ? sqrt(ph->now[l]) : -1;
    ph->n_auto += frozen;
    return PML_OK;
}

uint8_t *pml_phase_serving(const pml_plan *pl)
{
    uint8_t *serves = calloc((size_t)pl->n_nodes + 1, 1);
    if (!serves) return NULL;
    if (pl->output >= 0) serves[pl->output] = 1;
    for (int i = pl->n_nodes - 1; i >= 0; i--) /* inputs come before their users */
        for (int k = 0; serves[i] && k < pl->nodes[i].n_in; k++)
            if (pl->nodes[pl->nodes[i].in[k]].pass == 0) serves[pl->nodes[i].in[k]] = 1;
    return serves;
}

/* liveness.c — observed-time silence (see liveness.h). */
#include "liveness.h"

#include <stdlib.h>

/* Observed seconds at `now`: the stretch since the last look, capped at the gap. */
static double observed_at(const pml_live *l, double now)
{
    double since = now - l->last_look;
    if (since < 0) since = 0;
    return l->observed + (since < l->gap ? since : l->gap);
}

pml_status pml_live_init(pml_live *l, int world, int self, double timeout, double gap, double now, pml_err *err)
{
    *l = (pml_live){.world = world, .self = self, .timeout = timeout, .gap = gap, .last_look = now};
    l->heard = calloc((size_t)(world > 0 ? world : 1), sizeof *l->heard);
    if (!l->heard) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    return PML_OK;
}

void pml_live_free(pml_live *l)
{
    if (!l) return;
    free(l->heard);
    l->heard = NULL;
}

void pml_live_look(pml_live *l, double now)
{
    l->observed = observed_at(l, now);
    if (now > l->last_look) l->last_look = now;
}

void pml_live_heard(pml_live *l, int rank, double now)
{
    pml_live_look(l, now);
    if (rank >= 0 && rank < l->world) l->heard[rank] = l->observed;
}

int pml_live_silent(const pml_live *l, double now, double *secs)
{
    double t = observed_at(l, now);
    for (int r = 0; r < l->world; r++)
        if (r != l->self && t - l->heard[r] > l->timeout) {
            *secs = t - l->heard[r];
            return r;
        }
    return -1;
}

/* dist_clock.c — clock offsets between ranks by ping-pong (see dist_clock.h). */
#include "exec/dist_clock.h"

#include <string.h>
#include <time.h>

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void pml_clock_best(const pml_clock_sample *s, int n, double *offset, double *uncertainty)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (s[i].back - s[i].sent < s[best].back - s[best].sent) best = i;
    *offset = s[best].peer - 0.5 * (s[best].sent + s[best].back);
    *uncertainty = 0.5 * (s[best].back - s[best].sent);
}

pml_status pml_dist_clock_offsets(pml_dist *d, int rounds, double *offset, double *uncertainty, pml_err *err)
{
    memset(offset, 0, sizeof *offset * (size_t)d->world);
    memset(uncertainty, 0, sizeof *uncertainty * (size_t)d->world);
    pml_clock_sample s[16];
    rounds = rounds < 1 ? 1 : rounds > 16 ? 16 : rounds;
    for (int r = 1; r < d->world; r++) {
        for (int k = 0; k < rounds; k++) {
            double ping = 0, peer = 0; /* the ping's value is not read: its arrival is the message */
            s[k].sent = d->rank == 0 ? mono_now() : 0;
            pml_status st = d->move(d, 0, r, &ping, sizeof ping, err);
            if (!st && d->rank == r) peer = mono_now();
            if (!st) st = d->move(d, r, 0, &peer, sizeof peer, err);
            if (st) return st;
            s[k].back = d->rank == 0 ? mono_now() : 0;
            s[k].peer = peer;
        }
        if (d->rank == 0) pml_clock_best(s, rounds, &offset[r], &uncertainty[r]);
    }
    return PML_OK;
}

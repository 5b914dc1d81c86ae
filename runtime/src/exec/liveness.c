/* liveness.c — observed-time silence (see liveness.h). */
#include "exec/liveness.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
    size_t n = (size_t)(world > 0 ? world : 1);
    l->heard = calloc(n, sizeof *l->heard);
    l->state = calloc(n, sizeof *l->state);
    l->why = calloc(n, sizeof *l->why);
    if (!l->heard || !l->state || !l->why) {
        pml_live_free(l);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    return PML_OK;
}

void pml_live_free(pml_live *l)
{
    if (!l) return;
    free(l->heard);
    free(l->state);
    free(l->why);
    l->heard = NULL;
    l->state = NULL;
    l->why = NULL;
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

void pml_live_left(pml_live *l, int rank, int failed, const char *why, double now)
{
    if (rank < 0 || rank >= l->world || rank == l->self) return;
    /* Heard now: an ended peer's timeout counts from its goodbye. */
    pml_live_heard(l, rank, now);
    l->state[rank] = failed ? PML_LIVE_FAILED : PML_LIVE_ENDED;
    snprintf(l->why[rank], sizeof l->why[rank], "%s", why && *why ? why : failed ? "it failed" : "it ended its run");
}

/* The first peer in `want` state (and `peer`, when >= 0) silent for the timeout. */
static int silent_in(const pml_live *l, pml_live_state want, int peer, double now, double *secs)
{
    double t = observed_at(l, now);
    for (int r = 0; r < l->world; r++)
        if (r != l->self && (peer < 0 || r == peer) && l->state[r] == want && t - l->heard[r] > l->timeout) {
            *secs = t - l->heard[r];
            return r;
        }
    return -1;
}

int pml_live_silent(const pml_live *l, double now, double *secs) { return silent_in(l, PML_LIVE_HERE, -1, now, secs); }

int pml_live_gone(const pml_live *l, int peer, double now, double *secs)
{
    for (int r = 0; r < l->world; r++)
        if (r != l->self && l->state[r] == PML_LIVE_FAILED) {
            *secs = 0;
            return r;
        }
    int r = pml_live_silent(l, now, secs);
    return r >= 0 ? r : silent_in(l, PML_LIVE_ENDED, peer, now, secs);
}

pml_status pml_live_blame(const pml_live *l, int peer, double now, const char *what, pml_err *err)
{
    double secs = 0;
    int r = pml_live_gone(l, peer, now, &secs);
    if (r < 0) return PML_OK;
    if (l->state[r] == PML_LIVE_FAILED)
        return pml_err_set(err, PML_ERR_IO, "rank %d stopped: %s (rank %d gave up %s)", r, l->why[r], l->self, what);
    if (l->state[r] == PML_LIVE_ENDED)
        return pml_err_set(err, PML_ERR_IO,
                           "rank %d stopped: %s, %.0f s ago, while rank %d was still %s (the ranks disagree about "
                           "the run)",
                           r, l->why[r], secs, l->self, what);
    return pml_err_set(err, PML_ERR_IO, "rank %d has not answered for %.0f s (stopped or dead); rank %d gave up %s", r,
                       secs, l->self, what);
}

double pml_live_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

pml_status pml_live_check(const pml_live_guard *g, int peer, const char *what, pml_err *err)
{
    pthread_mutex_lock(g->mu);
    pml_status st = pml_live_blame(g->live, peer, pml_live_now(), what, err);
    pthread_mutex_unlock(g->mu);
    if (st) atomic_store(g->failed, 1);
    return st;
}

pml_status pml_live_poll(const pml_live_guard *g, int (*ready)(void *ctx, pml_err *err), void *ctx, int peer,
                         const atomic_int *aborted, const char *what, pml_err *err)
{
    for (long spin = 0;; spin++) {
        int done = ready(ctx, err);
        if (done < 0) return err && err->code ? err->code : PML_ERR_IO;
        if (done) return PML_OK;
        if (aborted && atomic_load(aborted))
            return pml_err_set(err, PML_ERR_INTERNAL, "rank %d stopped: another stage failed", g->live->self);
        pml_status st = spin % 64 == 63 ? pml_live_check(g, peer, what, err) : PML_OK;
        if (st) return st;
        if (spin < 256) continue;
        if (spin < 4096) {
            sched_yield();
            continue;
        }
        struct timespec t = {0, 50 * 1000};
        nanosleep(&t, NULL);
    }
}

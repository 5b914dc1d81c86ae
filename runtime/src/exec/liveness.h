/* liveness.h — when a rank may call a peer gone: the rule behind the MPI heartbeat
 * (exec/mpi/dist_mpi.c), kept apart from MPI so it can be tested on made-up timelines.
 *
 * Silence is counted in *observed* time: time during which this rank's own listener
 * (the heartbeat thread) was running and could have heard a beat. The listener calls
 * pml_live_look at every turn of its loop; a stretch between two looks longer than
 * `gap` counts only as `gap`, because a beat that arrived in it would not have been
 * seen — the silence belongs to the observer (starved of CPU under load, or the whole
 * process held up), not to the peer. Without this rule an observer that was not
 * scheduled for longer than the timeout finds every peer silent at once and blames
 * whichever it checks first, a live one. A peer is gone once it has been silent for
 * `timeout` seconds of observed time; the listener of a loaded but running rank turns
 * often enough that this is the timeout in wall time.
 *
 * What the rule cannot do is tell a stopped peer from one whose every thread was
 * descheduled for the whole timeout: those look the same from outside, and the timeout
 * must exceed any stall a healthy process sees.
 *
 * Goodbyes: a rank that leaves says so first (pml_live_left), with its reason, so that
 * its silence afterwards is not taken for death. A peer that left because it failed is
 * gone at once, for every wait: the run cannot go on, and the message gives its reason.
 * A peer that ended its run normally is blamed by no wait on another peer; a wait on it
 * (or on no peer in particular, such as finishing sends) gives up once it has been gone
 * for the timeout, named as a peer that ended while this rank still waited for it — a
 * disagreement about the run, never "not answering".
 *
 * Not thread-safe but for the guarded calls at the end: the caller serialises the others
 * (the dists hold their mutex). */
#ifndef PML_TRAIN_LIVENESS_H
#define PML_TRAIN_LIVENESS_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/error.h"

/* Longest reason a goodbye carries, with its NUL. */
#define PML_LIVE_WHY 256

/* What a peer said last about itself. */
typedef enum pml_live_state { PML_LIVE_HERE, PML_LIVE_ENDED, PML_LIVE_FAILED } pml_live_state;

typedef struct pml_live {
    int world, self;
    double timeout;   /* observed seconds of silence after which a peer is gone */
    double gap;       /* the longest stretch between two looks that counts in full */
    double observed;  /* observed seconds up to the last look */
    double last_look; /* the clock at the last look */
    double *heard;    /* per rank: `observed` when it was last heard (NULL until init) */
    pml_live_state *state;     /* per rank */
    char (*why)[PML_LIVE_WHY]; /* per rank: the reason its goodbye gave */
} pml_live;

/* Starts the timeline at `now` with every peer just heard. */
pml_status pml_live_init(pml_live *l, int world, int self, double timeout, double gap, double now, pml_err *err);
void pml_live_free(pml_live *l); /* NULL-safe, and safe on a zeroed struct */

/* The listener ran at `now` (and has taken in every beat that had arrived). */
void pml_live_look(pml_live *l, double now);

/* A beat from `rank` was taken in at `now`; counts as a look too. */
void pml_live_heard(pml_live *l, int rank, double now);

/* `rank` said goodbye at `now`: it failed (`failed`) or ended its run, for reason `why`. */
void pml_live_left(pml_live *l, int rank, int failed, const char *why, double now);

/* The first peer that has not said goodbye and has been silent for the timeout at
 * `now` (its observed silence in *secs), or -1. The stretch since the last look counts
 * at most `gap`, as between two looks. */
int pml_live_silent(const pml_live *l, double now, double *secs);

/* The peer a wait on `peer` (-1: on no peer in particular) must give up for at `now`,
 * or -1: first one that failed, then one silent for the timeout (pml_live_silent), then
 * `peer` (any, for -1) gone for the timeout since it ended. *secs as for silent (0 for a
 * failed peer); its state and goodbye reason are l->state[r] and l->why[r]. */
int pml_live_gone(const pml_live *l, int peer, double now, double *secs);

/* The status a wait on `peer` (as for gone) by rank l->self, which was `what` (a
 * phrase: "waiting for ..."), gives up with at `now`, naming the rank and its goodbye's
 * reason; PML_OK while no peer is gone. Every transport words it alike. */
pml_status pml_live_blame(const pml_live *l, int peer, double now, const char *what, pml_err *err);

/* Seconds on CLOCK_MONOTONIC: the clock `now` is read from. */
double pml_live_now(void);

/* A dist's waits: its timeline under its lock, and the flag that says it failed (set
 * when a wait gives up, so that leaving does not wait for the peers). */
typedef struct pml_live_guard {
    pthread_mutex_t *mu;
    const pml_live *live;
    atomic_int *failed;
} pml_live_guard;

/* pml_live_blame now, under the lock; a failure sets *failed. */
pml_status pml_live_check(const pml_live_guard *g, int peer, const char *what, pml_err *err);

/* Waits until ready(ctx) is 1 (negative: it failed, with err set): spinning briefly (a
 * neighbour's message is often about to land), then yielding, then sleeping 50 us, as
 * the stage threads of this and other processes need the cores. Every 64 turns
 * pml_live_check on `peer` may end it; *aborted (may be NULL) ends it with "rank R
 * stopped: another stage failed". */
pml_status pml_live_poll(const pml_live_guard *g, int (*ready)(void *ctx, pml_err *err), void *ctx, int peer,
                         const atomic_int *aborted, const char *what, pml_err *err);

#endif

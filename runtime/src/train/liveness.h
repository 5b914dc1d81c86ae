/* liveness.h — when a rank may call a peer gone: the rule behind the MPI heartbeat
 * (train/mpi/dist_mpi.c), kept apart from MPI so it can be tested on made-up timelines.
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
 * Not thread-safe: the caller serialises the calls (the MPI dist holds its mutex). */
#ifndef PML_TRAIN_LIVENESS_H
#define PML_TRAIN_LIVENESS_H

#include "error.h"

typedef struct pml_live {
    int world, self;
    double timeout;   /* observed seconds of silence after which a peer is gone */
    double gap;       /* the longest stretch between two looks that counts in full */
    double observed;  /* observed seconds up to the last look */
    double last_look; /* the clock at the last look */
    double *heard;    /* per rank: `observed` when it was last heard (NULL until init) */
} pml_live;

/* Starts the timeline at `now` with every peer just heard. */
pml_status pml_live_init(pml_live *l, int world, int self, double timeout, double gap, double now, pml_err *err);
void pml_live_free(pml_live *l); /* NULL-safe, and safe on a zeroed struct */

/* The listener ran at `now` (and has taken in every beat that had arrived). */
void pml_live_look(pml_live *l, double now);

/* A beat from `rank` was taken in at `now`; counts as a look too. */
void pml_live_heard(pml_live *l, int rank, double now);

/* The first peer silent for the timeout at `now` (its observed silence in *secs), or
 * -1. The stretch since the last look counts at most `gap`, as between two looks. */
int pml_live_silent(const pml_live *l, double now, double *secs);

#endif

/* mpi_impl.h — what dist_mpi.c and transport_mpi.c share: the MPI dist's state, the
 * check macro for MPI calls and the one way this module waits for requests (polled,
 * so a silent peer or an abort ends the wait; MPI_Wait would block forever). */
#ifndef PML_TRAIN_MPI_IMPL_H
#define PML_TRAIN_MPI_IMPL_H

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>

#include "exec/liveness.h"
#include "exec/mpi/dist_mpi.h"

/* Tags on the control communicator; the data one uses kind·M + mb. */
enum { PML_MPI_TAG_GATHER = 1, PML_MPI_TAG_BCAST = 2, PML_MPI_TAG_MOVE = 3, PML_MPI_TAG_LINK = 6 };
/* Tags on the heartbeat communicator: a beat, and a goodbye (a byte '1' failed or '0'
 * ended, then the reason: PML_LIVE_WHY bytes in all). */
enum { PML_MPI_TAG_BEAT = 4, PML_MPI_TAG_BYE = 5 };
/* Gradient sums between replicas: one tag per stage, from this one up. */
enum { PML_MPI_TAG_REPLICAS = 16 };

typedef struct pml_mpi {
    pml_dist base;
    MPI_Comm data, ctl, beat; /* boundary messages; sums, moves and checks; heartbeats */
    int tag_ub;
    double timeout;
    int we_initialised; /* MPI_Init was ours, so MPI_Finalize is too */
    atomic_int failed;  /* a peer went silent or MPI failed: do not finalize */
    atomic_int stop;    /* the heartbeat thread's cue */
    atomic_int said_goodbye; /* to the other ranks (liveness.h), once */
    pthread_t beat_thread;
    int beating;
    pthread_mutex_t mu;
    pml_live live;      /* who was heard when, under mu (exec/liveness.h) */
} pml_mpi;

/* Records a failed MPI call `rc` made while `what`, as a status naming the peer. */
pml_status pml_mpi_fail(pml_mpi *m, int rc, int peer, const char *what, pml_err *err);

#define PML_MPI_CHECK(m, expr, peer, what, err)                                                          \
    do {                                                                                                 \
        int pml_mpi_rc_ = (expr);                                                                        \
        if (pml_mpi_rc_ != MPI_SUCCESS) return pml_mpi_fail((m), pml_mpi_rc_, (peer), (what), (err));   \
    } while (0)

/* Waits until the n requests complete, polling. Fails, naming the rank, when some rank
 * has been silent for the timeout, and with "another stage failed" once *aborted is
 * set (may be NULL). `peer` and `what` describe the wait in messages. */
pml_status pml_mpi_wait(pml_mpi *m, MPI_Request *reqs, int n, int peer, const atomic_int *aborted, const char *what,
                        pml_err *err);

/* Largest piece one MPI call moves: counts are ints. */
#define PML_MPI_CHUNK ((size_t)1 << 30)

pml_status pml_mpi_transport_create(pml_dist *d, pml_backend_inst *be, int stages, int64_t microbatches,
                                    pml_transport **out, pml_err *err);

#endif

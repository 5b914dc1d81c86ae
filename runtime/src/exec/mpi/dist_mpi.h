/* dist_mpi.h — the MPI implementation of pml_dist (dist.h): ranks are MPI processes,
 * boundary messages are MPI point-to-point transfers of the backend's boundary
 * buffers, and a heartbeat tells a silent rank from a busy one.
 *
 * This module is the library pml_mpi, built only when CMake finds MPI (PML_MPI), and
 * is the only code that includes mpi.h: libpml never depends on an MPI library, so a
 * program that embeds it without ranks needs none installed. pmlc links it.
 *
 * Start-up: MPI is initialised with MPI_THREAD_MULTIPLE (stage threads send and
 * receive concurrently) unless the program did so already. What the ranks compare
 * before step 1 (plan, options, output folder) is the program's, over any pml_dist
 * (exec/dist_agree.h).
 *
 * Failure: every rank sends a small heartbeat to every other rank several times per
 * timeout period from a thread of its own. Any wait on another rank fails, naming it,
 * once a rank has been silent for `timeout_s` (a process that is stopped or has died),
 * while a peer that is merely busy (a long stage, a checkpoint being written) keeps
 * beating and is waited for. Silence is counted only while this rank's own heartbeat
 * thread was running to hear it (exec/liveness.h), so a rank starved of CPU does not
 * blame a live peer for its own stall. A rank that leaves says goodbye first, on the
 * heartbeat's communicator: "failed: why" from abandon, "ended its run" from destroy,
 * so the others name its reason instead of waiting for it, and do not take the silence
 * of a rank that ended for death (liveness.h). After a failure destroy does not call MPI_Finalize,
 * which would wait for the missing rank; the program exits, and mpirun ends the rest
 * of the job. */
#ifndef PML_TRAIN_DIST_MPI_H
#define PML_TRAIN_DIST_MPI_H

#include <stdint.h>

#include "exec/dist.h"

typedef struct pml_dist_mpi_conf {
    int devices;         /* the plan's stage devices (timetable lists): its stages without chunks */
    int schedule;        /* the plan's conf.schedule, which places chunks on devices */
    int rank, world;     /* what the launcher's environment said (ranks.h); MPI must agree */
    int replicas;        /* data-parallel pipelines the world forms (ranks.h); 0 or 1: one */
    double timeout_s;    /* silence after which a rank counts as gone; <= 0: 60 */
} pml_dist_mpi_conf;

pml_status pml_dist_mpi_create(const pml_dist_mpi_conf *conf, pml_dist **out, pml_err *err);

#endif

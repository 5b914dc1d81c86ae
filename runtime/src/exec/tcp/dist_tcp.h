/* dist_tcp.h — pml_dist (dist.h) over TCP sockets, for processes started without MPI:
 * torchrun and the launchers that follow its convention (RANK, WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT: Kubernetes' PyTorchJob, a shell loop over ssh). It needs nothing but the
 * C library, so it is part of libpml.
 *
 * Start-up: rank 0 listens on master_port; every other rank listens on a port of its
 * own, connects to rank 0 at master_addr:master_port (trying again until the deadline,
 * since launchers start processes in no order) and says who it is and where it
 * listens. Once all have, rank 0 sends each the table of addresses — each as rank 0
 * saw it connect, so a rank reached through master_addr's network is reached through
 * it — and every rank connects to each lower rank but 0. One connection per pair of
 * ranks carries everything between them (tcp_impl.h). The whole start-up is bounded by
 * timeout_s; a rank that has not come by then is named.
 *
 * After it, the same contract as the MPI dist (dist_mpi.h): boundary messages of the
 * backend's buffers (device to device where the backend links the ends, NCCL's id
 * traded over TCP, exec/links.h; else through host copies, exec/staging.h), sums
 * through rank 0 in rank order, a heartbeat from a thread of its own with the
 * observed-time rule of exec/liveness.h, and goodbyes. A peer whose connection closes
 * without a goodbye has died (killed, crashed) and is named at once, not after the
 * timeout. */
#ifndef PML_TRAIN_DIST_TCP_H
#define PML_TRAIN_DIST_TCP_H

#include "exec/dist.h"

typedef struct pml_dist_tcp_conf {
    int devices;             /* the plan's stage devices (timetable lists) */
    int schedule;            /* the plan's conf.schedule, which places chunks on devices */
    int rank, world;         /* this process's place (ranks.h) */
    int replicas;            /* data-parallel pipelines the world forms; 0 or 1: one */
    const char *master_addr; /* where rank 0 listens: a host name or address */
    int master_port;         /* 1..65535 */
    const char *port_note;   /* said after the port in messages (how it was chosen), or NULL */
    double timeout_s;        /* start-up bound, and silence after which a rank is gone; <= 0: 60 */
} pml_dist_tcp_conf;

pml_status pml_dist_tcp_create(const pml_dist_tcp_conf *conf, pml_dist **out, pml_err *err);

#endif

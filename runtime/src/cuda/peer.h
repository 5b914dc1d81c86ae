/* peer.h — the CUDA backend's device-to-device links between GPU ranks (backend_ops.h's
 * peer_*), over NCCL (cuda/nccl.h): one two-rank communicator per link, made when both
 * ends join it, with a stream of its own on the end stage's GPU, so that a message
 * never waits behind the stage's later work nor holds it up. A send is queued on the
 * link's stream after an event on the sending stage's stream; a receive lands in this
 * process's copy of the sender's buffers, and the receiving stage's stream waits for it
 * before its next pass. peer_poll asks the link's last event, and NCCL's asynchronous
 * error. Two ranks of one GPU never link (their devices' UUIDs match: NCCL refuses
 * them); they go through the host (exec/staging.h).
 *
 * A stage's replica group (peer_group, peer_sum) is a link too, numbered 2 S + stage:
 * one communicator of every replica's copy of the stage, on which the stage's gradient
 * sums are all-reduced in place (f32, summed) on the group's stream after the stage's
 * backward work, and which the stage's stream waits for before grad_sq and the update.
 *
 * Private to cuda/stage*.c and peer.c; links live in the context (stage.h). */
#ifndef PML_CUDA_PEER_H
#define PML_CUDA_PEER_H

#include "backend_ops.h"
#include "cuda/nccl.h"

typedef struct pml_cuda_link {
    pml_nccl_comm comm; /* NULL: not made */
    pml_cu_stream stream;
    pml_cu_event ready, done;
    int stage; /* the stage of this end: the sender, or the receiver */
    int failed;
} pml_cuda_link;

pml_status pml_cuda_peer_id(pml_backend_ctx *b, int stage, void *dev, void *id, pml_err *err);
pml_status pml_cuda_peer_link(pml_backend_ctx *b, int link, int kind, int from, int sends, const void *id,
                              pml_err *err);
pml_status pml_cuda_peer_send(pml_backend_ctx *b, int link, int kind, int from, int64_t mb, pml_err *err);
pml_status pml_cuda_peer_recv(pml_backend_ctx *b, int link, int kind, int from, int to, int64_t mb, pml_err *err);
int pml_cuda_peer_poll(pml_backend_ctx *b, int link, pml_err *err);
pml_status pml_cuda_peer_group(pml_backend_ctx *b, int link, int stage, int rank, int size, const void *id,
                               pml_err *err);
pml_status pml_cuda_peer_sum(pml_backend_ctx *b, int link, int stage, pml_err *err);

/* Frees every link of the context (aborting those that failed). */
struct pml_cuda_ctx;
void pml_cuda_links_close(struct pml_cuda_ctx *p);

#endif

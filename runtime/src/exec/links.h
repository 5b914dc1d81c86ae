/* links.h — which boundary streams between two ranks go device to device (backend_ops.h's
 * peer_*: NCCL between GPUs), agreed the same way over any dist (dist.h). For each
 * message kind and sending stage whose two ends are this rank and another, in one order
 * on every rank, the sender offers whether it can link, its device and the new link's
 * identifier (NCCL's unique id: this exchange is its bootstrap), and the receiver
 * answers yes when both can and the devices differ (NCCL refuses one device at both
 * ends); both then join the link, or neither does. The transports carry the two
 * messages, each over its own control channel (MPI's, TCP's). */
#ifndef PML_EXEC_LINKS_H
#define PML_EXEC_LINKS_H

#include <stddef.h>

#include "backend_ops.h"
#include "exec/dist.h"

/* A transport's control channel: both calls return once the bytes are out or in. */
typedef struct pml_links_wire {
    void *ctx;
    pml_status (*send)(void *ctx, int peer, const void *buf, size_t bytes, pml_err *err);
    pml_status (*recv)(void *ctx, int peer, void *buf, size_t bytes, pml_err *err);
} pml_links_wire;

/* The link of stage `from`'s messages of `kind` in link[pml_links_index(S, kind, from)]:
 * that same number once joined, else -1 (also for every stream when the backend has no
 * peer_* slots). `d` places the stages (this rank's replica); S is the pipeline's stages. */
static inline int pml_links_index(int S, int kind, int from) { return kind * S + from; }
pml_status pml_links_make(pml_backend_inst *be, const pml_dist *d, int S, const pml_links_wire *w, int *link,
                          pml_err *err);

#endif

/* links.h — which boundary streams between two ranks go device to device (backend_ops.h's
 * peer_*: NCCL between GPUs), agreed the same way over any dist (dist.h), and how a
 * transport uses them. For each message kind and sending stage whose two ends are this
 * rank and another, in one order on every rank, the sender offers whether it can link,
 * its device and the new link's identifier (NCCL's unique id: this exchange is its
 * bootstrap), and the receiver answers yes when both can and the devices differ (NCCL
 * refuses one device at both ends); both then join the link, or neither does. The
 * transports carry the two messages, each over its own control channel (MPI's, TCP's).
 *
 * Then a send on a link is queued and not waited for; a receive waits, polled under the
 * dist's liveness rule (liveness.h), until its bytes are in; and the transport's reset
 * waits for every link's queued sends, before their buffers are written again.
 *
 * With data-parallel replicas, each stage's copies (one per replica) form a group the
 * same way (peer_group, peer_sum: NCCL's all-reduce), so that its gradient sums are
 * added device to device: member 0 (the stage's rank in replica 0) hears every other
 * member's offer (whether it can, its device) and answers all of them yes, with the
 * group's identifier, when every member can and no two share a device; then each joins.
 * A stage without a group sums through the host (dist.h's sum_replicas). */
#ifndef PML_EXEC_LINKS_H
#define PML_EXEC_LINKS_H

#include <stdatomic.h>
#include <stddef.h>

#include "backend_ops.h"
#include "exec/dist.h"
#include "exec/liveness.h"

/* A transport's control channel: both calls return once the bytes are out or in. */
typedef struct pml_links_wire {
    void *ctx;
    pml_status (*send)(void *ctx, int peer, const void *buf, size_t bytes, pml_err *err);
    pml_status (*recv)(void *ctx, int peer, void *buf, size_t bytes, pml_err *err);
} pml_links_wire;

/* A transport's links, for a pipeline of S stages. */
typedef struct pml_links {
    pml_backend_inst *be;
    int S;
    int *link;        /* [2 S], by (kind, sending stage): the joined link's number, or -1 */
    atomic_int *sent; /* [2 S]: sends are queued on it since the last pml_links_finish */
    unsigned char *grouped; /* [S]: the stage's replicas sum on group 2 S + stage */
} pml_links;

/* Agrees on the links and, with replicas, the groups (above) with the other ranks; `d`
 * places the stages. Without the backend's peer_* slots every stream is -1 (and without
 * peer_group and peer_sum no stage has a group). pml_links_free undoes it, also after a
 * failure. */
pml_status pml_links_make(pml_links *l, pml_backend_inst *be, const pml_dist *d, int S, const pml_links_wire *w,
                          pml_err *err);
void pml_links_free(pml_links *l);

/* The link stage `from`'s messages of `kind` take, or -1 (they go another way). */
int pml_links_of(const pml_links *l, int kind, int from);

/* Queues stage from's message of mb on `link`. */
pml_status pml_links_send(pml_links *l, int link, int kind, int from, int64_t mb, pml_err *err);

/* Receives stage from's message of mb for stage `to` on `link` and waits until its bytes
 * are in: pml_live_poll on `peer` under g, which *aborted (may be NULL) also ends. */
pml_status pml_links_recv(pml_links *l, const pml_live_guard *g, int link, int kind, int from, int to, int64_t mb,
                          int peer, const atomic_int *aborted, const char *what, pml_err *err);

/* Adds stage's gradient sums over its replica group and waits until they are in,
 * polled as pml_links_recv (naming whichever member falls silent; *aborted, may be
 * NULL, ends it too); *done 1. A stage without a group: *done 0 and nothing done. */
pml_status pml_links_sum(pml_links *l, const pml_live_guard *g, int stage, const atomic_int *aborted, int *done,
                         pml_err *err);

/* Waits for every link's sends queued since the last call; after a failure (in *err,
 * the first one) it only clears what was queued. */
void pml_links_finish(pml_links *l, const pml_live_guard *g, const char *what, pml_err *err);

#endif

/* peer.c — device-to-device links between GPU ranks over NCCL (see peer.h). */
#include "cuda/peer.h"

#include <stdlib.h>
#include <string.h>

#include "cuda/devices.h"
#include "cuda/stage.h"

static pml_status nccl_fail(const pml_nccl *n, int r, const char *what, pml_err *err)
{
    return pml_err_set(err, PML_ERR_DEVICE, "NCCL failed %s: %s (%d)", what, n->GetErrorString(r), r);
}

/* The link's slot, made on first use (a context has at most 3 S links: 2 S for the
 * messages, S for the replica groups). */
static pml_cuda_link *slot(pml_cuda_ctx *p, int link, pml_err *err)
{
    if (link < 0 || link >= 3 * p->S) return pml_err_set(err, PML_ERR_INVALID_ARG, "no link %d", link), NULL;
    if (!p->links && !(p->links = calloc((size_t)(3 * p->S), sizeof *p->links)))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory"), NULL;
    return &p->links[link];
}

pml_status pml_cuda_peer_id(pml_backend_ctx *b, int stage, void *dev, void *id, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    char why[256];
    const pml_nccl *n = pml_nccl_get(why, sizeof why);
    if (!n) return pml_err_set(err, PML_ERR_UNSUPPORTED, "no device links: %s", why);
    if (stage < 0 || stage >= p->S) return pml_err_set(err, PML_ERR_INVALID_ARG, "no stage %d", stage);
    memset(dev, 0, PML_BACKEND_PEER_DEV);
    PML_CHECK_CU(p->d, DeviceGetUuid(dev, p->gpus[p->stages[stage].gpu].dev), err);
    int r = id ? n->GetUniqueId((pml_nccl_id *)id) : PML_NCCL_SUCCESS;
    return r ? nccl_fail(n, r, "making a link's identifier", err) : PML_OK;
}

/* Joins `link` for `stage` as member `rank` of `size` with identifier id, then makes its
 * stream and events. */
static pml_status join(pml_cuda_ctx *p, int link, int stage, int rank, int size, const void *id, const char *what,
                       pml_err *err)
{
    const pml_nccl *n = pml_nccl_get(NULL, 0);
    pml_cuda_link *L = slot(p, link, err);
    if (!L) return err ? err->code : PML_ERR_INVALID_ARG;
    if (!n || stage < 0 || stage >= p->S || L->comm)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d cannot be made here", link);
    L->stage = stage;
    pml_status st = pml_cuda_use(p, stage, err); /* NCCL takes the current device as the communicator's */
    if (st) return st;
    /* The join first, which the other members are making too: a failure of this end's
     * own after it fails this rank's run, which the heartbeat then tells the others. */
    pml_nccl_id nid;
    memcpy(&nid, id, sizeof nid);
    int r = n->CommInitRank(&L->comm, size, nid, rank); /* returns once every member joined */
    if (r) {
        L->comm = NULL;
        return nccl_fail(n, r, what, err);
    }
    PML_CHECK_CU(p->d, StreamCreate(&L->stream, PML_CU_STREAM_NON_BLOCKING), err);
    PML_CHECK_CU(p->d, EventCreate(&L->ready, PML_CU_EVENT_DISABLE_TIMING), err);
    PML_CHECK_CU(p->d, EventCreate(&L->done, PML_CU_EVENT_DISABLE_TIMING), err);
    return PML_OK;
}

pml_status pml_cuda_peer_link(pml_backend_ctx *b, int link, int kind, int from, int sends, const void *id, pml_err *err)
{
    int to = kind == PML_MSG_ACT ? from + 1 : from - 1;
    if (link < 0 || link >= 2 * ((pml_cuda_ctx *)b)->S)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d is not a message's", link);
    return join((pml_cuda_ctx *)b, link, sends ? from : to, sends ? 0 : 1, 2, id, "joining a link between ranks", err);
}

pml_status pml_cuda_peer_group(pml_backend_ctx *b, int link, int stage, int rank, int size, const void *id,
                               pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    if (link != 2 * p->S + stage || rank < 0 || rank >= size)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d is not stage %d's replica group", link, stage);
    return join(p, link, stage, rank, size, id, "joining the replicas' gradient sums", err);
}

pml_status pml_cuda_peer_sum(pml_backend_ctx *b, int link, int stage, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_nccl *n = pml_nccl_get(NULL, 0);
    pml_cuda_link *L = slot(p, link, err);
    if (!L || !L->comm || L->stage != stage) return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d was not made", link);
    pml_status st = pml_cuda_use(p, stage, err);
    if (st) return st;
    PML_CHECK_CU(p->d, EventRecord(L->ready, p->stages[stage].stream), err); /* after the backward work */
    PML_CHECK_CU(p->d, StreamWaitEvent(L->stream, L->ready, 0), err);
    pml_backend_buf stack[64], *bufs = stack; /* the sums grad_sq and the update read */
    int nb = 0;
    st = pml_cuda_backend_ops.grads(b, stage, stack, 64, &nb, err);
    if (!st && nb > 64 && !(bufs = malloc(sizeof *bufs * (size_t)nb)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st && bufs != stack) st = pml_cuda_backend_ops.grads(b, stage, bufs, nb, &nb, err);
    int r = st ? PML_NCCL_SUCCESS : n->GroupStart();
    for (int i = 0; !st && !r && i < nb; i++)
        r = n->AllReduce(bufs[i].data, bufs[i].data, bufs[i].bytes / sizeof(float), PML_NCCL_FLOAT32, PML_NCCL_SUM,
                         L->comm, L->stream);
    int e = st ? PML_NCCL_SUCCESS : n->GroupEnd();
    if (bufs != stack) free(bufs);
    if (st) return st;
    if (r || e) return L->failed = 1, nccl_fail(n, r ? r : e, "adding gradients over the replicas", err);
    PML_CHECK_CU(p->d, EventRecord(L->done, L->stream), err);
    PML_CHECK_CU(p->d, StreamWaitEvent(p->stages[stage].stream, L->done, 0), err); /* before grad_sq and the update */
    return PML_OK;
}

/* Stage `from`'s message of `kind` for mb, this process's copies, on link L's stream:
 * each buffer sent to, or received from, the link's other end. */
static pml_status move(pml_cuda_ctx *p, pml_cuda_link *L, int kind, int from, int64_t mb, int send, pml_err *err)
{
    const pml_nccl *n = pml_nccl_get(NULL, 0);
    const pml_cuda_stage *sf = &p->stages[from];
    int r = n->GroupStart();
    for (int i = 0; !r && i < sf->n_sends[kind]; i++) {
        int v = sf->sends[kind][i];
        void *buf = (void *)(uintptr_t)pml_cuda_ctx_data(p, v, mb);
        r = send ? n->Send(buf, p->bytes[v], PML_NCCL_UINT8, 1, L->comm, L->stream)
                 : n->Recv(buf, p->bytes[v], PML_NCCL_UINT8, 0, L->comm, L->stream);
    }
    int e = n->GroupEnd();
    if (r || e) {
        L->failed = 1;
        return nccl_fail(n, r ? r : e, send ? "sending a boundary message" : "receiving a boundary message", err);
    }
    PML_CHECK_CU(p->d, EventRecord(L->done, L->stream), err);
    return PML_OK;
}

pml_status pml_cuda_peer_send(pml_backend_ctx *b, int link, int kind, int from, int64_t mb, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_cuda_link *L = slot(p, link, err);
    if (!L || !L->comm) return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d was not made", link);
    pml_status st = pml_cuda_use(p, from, err);
    if (st) return st;
    PML_CHECK_CU(p->d, EventRecord(L->ready, p->stages[from].stream), err); /* after the pass that made it */
    PML_CHECK_CU(p->d, StreamWaitEvent(L->stream, L->ready, 0), err);
    return move(p, L, kind, from, mb, 1, err);
}

pml_status pml_cuda_peer_recv(pml_backend_ctx *b, int link, int kind, int from, int to, int64_t mb, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_cuda_link *L = slot(p, link, err);
    if (!L || !L->comm || to < 0 || to >= p->S)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d was not made", link);
    pml_status st = pml_cuda_use(p, to, err);
    if (!st) st = move(p, L, kind, from, mb, 0, err);
    if (!st) PML_CHECK_CU(p->d, StreamWaitEvent(p->stages[to].stream, L->done, 0), err); /* before its next pass */
    return st;
}

int pml_cuda_peer_poll(pml_backend_ctx *b, int link, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_nccl *n = pml_nccl_get(NULL, 0);
    pml_cuda_link *L = slot(p, link, err);
    if (!L || !L->comm) return pml_err_set(err, PML_ERR_INVALID_ARG, "link %d was not made", link), -1;
    if (pml_cuda_use(p, L->stage, err)) return -1;
    pml_cu_result q = p->d->EventQuery(L->done);
    if (q == 0) return 1;
    if (q != PML_CU_NOT_READY)
        return L->failed = 1, pml_cuda_fail(p->d, q, "cuEventQuery", __FILE__, __LINE__, err), -1;
    int async = PML_NCCL_SUCCESS, r = n->CommGetAsyncError(L->comm, &async);
    if (r || (async != PML_NCCL_SUCCESS && async != PML_NCCL_IN_PROGRESS))
        return L->failed = 1, nccl_fail(n, r ? r : async, "on a link between ranks", err), -1;
    return 0;
}

void pml_cuda_links_close(pml_cuda_ctx *p)
{
    const pml_nccl *n = pml_nccl_get(NULL, 0);
    for (int i = 0; p->links && i < 3 * p->S; i++) {
        pml_cuda_link *L = &p->links[i];
        /* work still queued (a run that failed: its peer may never match it) is aborted,
         * not waited for */
        if (L->stream && !pml_cuda_use(p, L->stage, NULL)) {
            if (L->done && p->d->EventQuery(L->done) != 0) L->failed = 1;
            p->d->StreamDestroy(L->stream);
        }
        if (L->ready) p->d->EventDestroy(L->ready);
        if (L->done) p->d->EventDestroy(L->done);
        if (L->comm && n) (L->failed ? n->CommAbort : n->CommDestroy)(L->comm); /* a failed link's peer may be gone */
    }
    free(p->links);
    p->links = NULL;
}

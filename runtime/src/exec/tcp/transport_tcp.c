/* transport_tcp.c — the transport between ranks over TCP (transport.h, dist_tcp.h). A
 * message between two stages of this rank goes through the in-process transport; one
 * to or from another rank's stage is one DATA frame of the bytes of the sender's
 * boundary buffers (pml_backend_boundary), all of them in order, tagged kind·M + mb.
 * As over MPI, the receiver asks its own backend for the *sender's* buffers of that
 * message and fills them, so the receiving stage reads them as in one process, and
 * ranks own contiguous devices (ranks.h), so one tag needs no stage to match.
 *
 * A send writes its frame before it returns (the peer's reader takes it in whatever
 * that rank is doing, tcp_impl.h), so no frame is pending between steps. Device
 * buffers go device to device where the backend links the two ends (peer_*: NCCL),
 * agreed at create over CTL frames (exec/links.h: the NCCL id's bootstrap over TCP);
 * a receive then waits, polled, until the bytes are in, and reset until the link's
 * sends are out, as over MPI. Elsewhere they cross through host copies
 * (exec/staging.h): per sending stage, an area the send fills and the socket reads
 * before the send returns; per receiving stage, an area the frame lands in before it is
 * copied up. */
#include <stdio.h>
#include <stdlib.h>

#include "exec/links.h"
#include "exec/staging.h"
#include "exec/tcp/tcp_impl.h"

typedef struct ttcp {
    pml_transport base;
    pml_tcp *m;
    pml_transport *local;
    pml_backend_inst *be;
    int S;
    int64_t M;
    atomic_int aborted;
    pml_staging *out, *in; /* per sending stage; per receiving stage */
    pml_links links;       /* device to device (exec/links.h) */
    pml_err deferred; /* a failure finishing a link's sends in reset, for the next call */
} ttcp;

/* The dist's waits, for the links' (liveness.h). */
static pml_live_guard guard(ttcp *t) { return (pml_live_guard){&t->m->mu, &t->m->live, &t->m->failed}; }

/* The rank running `stage` in this rank's replica. */
static int owner(const ttcp *t, int stage) { return pml_dist_owner(&t->m->base, t->m->base.replica, stage); }

/* The message's buffers, their host copies (staged from the device when `sending`) and
 * byte counts, ready for one frame; *heap, *host and *len the caller frees when they
 * are not the stacks. */
typedef struct message {
    pml_backend_buf stack[PML_STAGING_BUFS], *bufs, *heap;
    void *hstack[PML_STAGING_BUFS], **host;
    size_t lstack[PML_STAGING_BUFS], *len;
    int n;
} message;

static pml_status message_open(ttcp *t, message *g, pml_staging *area, int stage, int from, int kind, int64_t mb,
                               int sending, const char *why, pml_err *err)
{
    g->heap = NULL;
    g->host = g->hstack;
    g->len = g->lstack;
    pml_status st = pml_staging_message(t->be, from, kind, mb, g->stack, &g->bufs, &g->heap, &g->n, err);
    if (!st && g->n > PML_STAGING_BUFS) {
        g->host = malloc(sizeof *g->host * (size_t)g->n);
        g->len = malloc(sizeof *g->len * (size_t)g->n);
        if (!g->host || !g->len) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < g->n && !st; i++) g->len[i] = g->bufs[i].bytes;
    if (!st) st = pml_staging_in(area, t->be, stage, g->bufs, g->n, sending, g->host, why, err);
    return st;
}

static void message_close(message *g)
{
    if (g->host != g->hstack) free(g->host);
    if (g->len != g->lstack) free(g->len);
    free(g->heap);
}

static void what_of(char *what, size_t size, int from, int kind, int64_t mb)
{
    snprintf(what, size, "waiting for stage %d's %s of micro-batch %lld", from,
             kind == PML_MSG_ACT ? "activations" : "gradients", (long long)mb);
}

static pml_status ttcp_send(pml_transport *tr, int from, int to, int kind, int64_t mb, pml_err *err)
{
    ttcp *t = (ttcp *)tr;
    int peer = to >= 0 && to < t->S ? owner(t, to) : t->m->base.rank;
    if (peer == t->m->base.rank) return t->local->send(t->local, from, to, kind, mb, err);
    if (t->deferred.code) {
        if (err) *err = t->deferred;
        return t->deferred.code;
    }
    int link = pml_links_of(&t->links, kind, from);
    if (link >= 0) return pml_links_send(&t->links, link, kind, from, mb, err); /* reset waits for it */
    message g;
    pml_status st =
        message_open(t, &g, &t->out[from], from, from, kind, mb, 1, "sending a boundary message to another rank", err);
    if (!st)
        st = pml_tcp_send(t->m, peer, PML_TCP_DATA, (uint64_t)kind * (uint64_t)t->M + (uint64_t)mb,
                          (const void *const *)g.host, g.len, g.n, "sending a boundary message", err);
    message_close(&g);
    return st;
}

static pml_status ttcp_recv(pml_transport *tr, int from, int to, int kind, int64_t mb, pml_err *err)
{
    ttcp *t = (ttcp *)tr;
    int peer = from >= 0 && from < t->S ? owner(t, from) : t->m->base.rank;
    if (peer == t->m->base.rank) return t->local->recv(t->local, from, to, kind, mb, err);
    if (to < 0 || to >= t->S) return pml_err_set(err, PML_ERR_INVALID_ARG, "no stage %d receives", to);
    if (t->deferred.code) {
        if (err) *err = t->deferred;
        return t->deferred.code;
    }
    message g;
    char what[96];
    what_of(what, sizeof what, from, kind, mb);
    int link = pml_links_of(&t->links, kind, from);
    if (link >= 0) { /* device to device, then waited for: a silent peer or an abort ends the wait */
        pml_live_guard gd = guard(t);
        return pml_links_recv(&t->links, &gd, link, kind, from, to, mb, peer, &t->aborted, what, err);
    }
    pml_status st = message_open(t, &g, &t->in[to], to, from, kind, mb, 0, "receiving a boundary message", err);
    if (!st)
        st = pml_tcp_recv(t->m, peer, PML_TCP_DATA, (uint64_t)kind * (uint64_t)t->M + (uint64_t)mb, g.host, g.len, g.n,
                          &t->aborted, what, err);
    if (!st) st = pml_staging_out(t->be, to, g.bufs, g.n, g.host, "receiving a boundary message", err);
    message_close(&g);
    return st;
}

static pml_status ttcp_sum_grads(pml_transport *tr, int stage, int *done, pml_err *err)
{
    ttcp *t = (ttcp *)tr;
    pml_live_guard g = guard(t);
    return pml_links_sum(&t->links, &g, stage, &t->aborted, done, err);
}

static void ttcp_reset(pml_transport *tr)
{
    ttcp *t = (ttcp *)tr;
    t->local->reset(t->local);
    pml_live_guard g = guard(t); /* the links' sends: their buffers are about to be rewritten */
    pml_links_finish(&t->links, &g, "finishing the last step's sends (device to device)", &t->deferred);
    atomic_store(&t->aborted, 0);
}

static void ttcp_abort(pml_transport *tr)
{
    ttcp *t = (ttcp *)tr;
    atomic_store(&t->aborted, 1);
    t->local->abort(t->local);
}

static void ttcp_destroy(pml_transport *tr)
{
    ttcp *t = (ttcp *)tr;
    if (!t) return;
    if (!atomic_load(&t->m->failed)) {
        pml_err ignored = {0};
        pml_live_guard g = guard(t);
        pml_links_finish(&t->links, &g, "finishing sends (device to device)", &ignored);
    }
    pml_links_free(&t->links);
    if (t->local) t->local->destroy(t->local);
    for (int s = 0; s < t->S; s++) {
        if (t->out) pml_staging_free(&t->out[s]);
        if (t->in) pml_staging_free(&t->in[s]);
    }
    free(t->out), free(t->in);
    free(t);
}

/* The control channel the links are agreed over (exec/links.h). */
static pml_status link_send(void *ctx, int peer, const void *buf, size_t bytes, pml_err *err)
{
    return pml_tcp_send(ctx, peer, PML_TCP_CTL, PML_TCP_TAG_LINK, &buf, &bytes, 1, "agreeing on a device link", err);
}

static pml_status link_recv(void *ctx, int peer, void *buf, size_t bytes, pml_err *err)
{
    return pml_tcp_recv(ctx, peer, PML_TCP_CTL, PML_TCP_TAG_LINK, &buf, &bytes, 1, NULL, "agreeing on a device link",
                        err);
}

pml_status pml_tcp_transport_create(pml_dist *d, pml_backend_inst *be, int stages, int64_t microbatches,
                                    pml_transport **out, pml_err *err)
{
    *out = NULL;
    ttcp *t = calloc(1, sizeof *t);
    if (!t) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    *t = (ttcp){.base = {.send = ttcp_send,
                         .recv = ttcp_recv,
                         .sum_grads = ttcp_sum_grads,
                         .reset = ttcp_reset,
                         .abort = ttcp_abort,
                         .destroy = ttcp_destroy},
                .m = (pml_tcp *)d,
                .be = be,
                .S = stages,
                .M = microbatches};
    pml_status st = pml_transport_local_create(stages, microbatches, &t->local, err);
    t->out = calloc((size_t)stages + 1, sizeof *t->out);
    t->in = calloc((size_t)stages + 1, sizeof *t->in);
    if (!st && (!t->out || !t->in)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_links_wire wire = {t->m, link_send, link_recv};
    if (!st) st = pml_links_make(&t->links, be, d, stages, &wire, err);
    if (st) {
        ttcp_destroy(&t->base);
        return st;
    }
    *out = &t->base;
    return PML_OK;
}

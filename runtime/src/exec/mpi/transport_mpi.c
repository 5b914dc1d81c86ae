/* transport_mpi.c — the transport between ranks (see transport.h, dist_mpi.h). A
 * message between two stages of this rank (with chunks: two chunks of its devices)
 * goes through the in-process transport; one to or from another rank's stage moves
 * the bytes of the backend's boundary buffers (pml_backend_boundary). Every process's
 * backend allocates every stage (the CPU's does), so the receiver asks its own backend
 * for the *sender's* boundary buffers of that message and receives straight into them:
 * the receiving stage then reads them exactly as it would in one process.
 *
 * A message is one MPI message per buffer, tagged kind·M + mb on the data
 * communicator; the ordering MPI keeps between one sender and one receiver on one tag
 * matches buffers to buffers. With chunks two ranks may share several boundaries of one
 * kind (interleaving's chunks 1→2 and 5→6 on 4 devices over 2 ranks), but ranks own
 * contiguous devices (ranks.h), so each such stream has one sending and one receiving
 * device, whose timetables order its messages alike (chunk 1's before chunk 5's for a
 * micro-batch, or the receiver would wait forever): the tag needs no stage. Sends are
 * nonblocking and never waited for in send (two neighbours each sending before
 * receiving would otherwise deadlock); they are
 * completed in reset, before the next step's work can rewrite their buffers, and in
 * destroy. Receives are polled (pml_mpi_wait), so abort and a silent peer end them.
 *
 * Device buffers (a GPU backend's) go device to device where the backend links the two
 * ends (backend_ops.h's peer_*: NCCL), agreed at create over the control communicator
 * (exec/links.h); a receive then waits, polled, until the bytes are in, and reset until
 * the sends are out. Elsewhere (no link: the same device on both ends, or no library)
 * they cross through host copies (exec/staging.h): a send copies the message into an
 * area of its own (stage, kind, micro-batch), kept until reset has completed the send;
 * a receive lands in the receiving stage's area and is copied up before it returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/links.h"
#include "exec/mpi/mpi_impl.h"
#include "exec/staging.h"

typedef struct tmpi {
    pml_transport base;
    pml_mpi *m;
    pml_transport *local;
    pml_backend_inst *be;
    int S;
    int64_t M;
    atomic_int aborted;
    pthread_mutex_t mu; /* guards the pending sends */
    MPI_Request *pending;
    int n_pending, cap_pending;
    pml_err deferred; /* a failure completing sends in reset, reported by the next call */
    /* Host copies of device buffers: per (stage, kind, micro-batch) sent, until its send
     * completes; per receiving stage (one receive at a time on its thread). */
    pml_staging *out, *in;
    pml_links links; /* device to device (exec/links.h) */
} tmpi;

/* The rank running `stage` in this rank's replica. */
static int owner(const tmpi *t, int stage) { return pml_dist_owner(&t->m->base, t->m->base.replica, stage); }

/* The dist's waits, for the links' (liveness.h). */
static pml_live_guard guard(tmpi *t) { return (pml_live_guard){&t->m->mu, &t->m->live, &t->m->failed}; }

/* The control channel the links are agreed over (exec/links.h). */
static pml_status link_send(void *ctx, int peer, const void *buf, size_t bytes, pml_err *err)
{
    pml_mpi *m = ctx;
    MPI_Request rq;
    PML_MPI_CHECK(m, MPI_Isend(buf, (int)bytes, MPI_BYTE, peer, PML_MPI_TAG_LINK, m->ctl, &rq), peer,
                  "agreeing on a device link", err);
    return pml_mpi_wait(m, &rq, 1, peer, NULL, "agreeing on a device link", err);
}

static pml_status link_recv(void *ctx, int peer, void *buf, size_t bytes, pml_err *err)
{
    pml_mpi *m = ctx;
    MPI_Request rq;
    PML_MPI_CHECK(m, MPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, PML_MPI_TAG_LINK, m->ctl, &rq), peer,
                  "agreeing on a device link", err);
    return pml_mpi_wait(m, &rq, 1, peer, NULL, "agreeing on a device link", err);
}

static pml_status check_tag(tmpi *t, int kind, int64_t mb, int *tag, pml_err *err)
{
    int64_t v = (int64_t)kind * t->M + mb;
    if (v > t->m->tag_ub)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "too many micro-batches (%lld) for this MPI's tags (at most %d)",
                           (long long)t->M, t->m->tag_ub / 2);
    *tag = (int)v;
    return PML_OK;
}

static pml_status tmpi_send(pml_transport *tr, int from, int to, int kind, int64_t mb, pml_err *err)
{
    tmpi *t = (tmpi *)tr;
    int peer = to >= 0 && to < t->S ? owner(t, to) : t->m->base.rank;
    if (peer == t->m->base.rank) return t->local->send(t->local, from, to, kind, mb, err);
    if (t->deferred.code) {
        if (err) *err = t->deferred;
        return t->deferred.code;
    }
    int link = pml_links_of(&t->links, kind, from);
    if (link >= 0) return pml_links_send(&t->links, link, kind, from, mb, err); /* reset waits for it */
    int tag = 0, n = 0;
    pml_backend_buf stack[PML_STAGING_BUFS], *bufs = stack, *heap = NULL;
    pml_status st = check_tag(t, kind, mb, &tag, err);
    if (!st) st = pml_staging_message(t->be, from, kind, mb, stack, &bufs, &heap, &n, err);
    void *hstack[PML_STAGING_BUFS], **host = n <= PML_STAGING_BUFS ? hstack : malloc(sizeof *host * (size_t)n);
    if (!st && !host) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) /* the area is this message's alone: nothing else touches it before reset */
        st = pml_staging_in(&t->out[((int64_t)from * 2 + kind) * t->M + mb], t->be, from, bufs, n, 1, host,
                            "sending a boundary message to another rank", err);
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < n && !st; i++) {
        for (size_t off = 0; off < bufs[i].bytes || (off == 0 && bufs[i].bytes == 0); off += PML_MPI_CHUNK) {
            if (t->n_pending == t->cap_pending) {
                int cap = t->cap_pending ? 2 * t->cap_pending : 64;
                MPI_Request *p = realloc(t->pending, sizeof *p * (size_t)cap);
                if (!p) {
                    st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
                    break;
                }
                t->pending = p;
                t->cap_pending = cap;
            }
            size_t left = bufs[i].bytes - off;
            int len = (int)(left < PML_MPI_CHUNK ? left : PML_MPI_CHUNK);
            int rc = MPI_Isend((char *)host[i] + off, len, MPI_BYTE, peer, tag, t->m->data, &t->pending[t->n_pending]);
            if (rc != MPI_SUCCESS) {
                st = pml_mpi_fail(t->m, rc, peer, "sending a boundary message", err);
                break;
            }
            t->n_pending++;
            if (bufs[i].bytes == 0) break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (host != hstack) free(host);
    free(heap);
    return st;
}

static pml_status tmpi_recv(pml_transport *tr, int from, int to, int kind, int64_t mb, pml_err *err)
{
    tmpi *t = (tmpi *)tr;
    int peer = from >= 0 && from < t->S ? owner(t, from) : t->m->base.rank;
    if (peer == t->m->base.rank) return t->local->recv(t->local, from, to, kind, mb, err);
    if (t->deferred.code) {
        if (err) *err = t->deferred;
        return t->deferred.code;
    }
    int tag = 0, n = 0, k = 0;
    pml_backend_buf stack[PML_STAGING_BUFS], *bufs = stack, *heap = NULL;
    pml_status st = to < 0 || to >= t->S ? pml_err_set(err, PML_ERR_INVALID_ARG, "no stage %d receives", to) : PML_OK;
    int link = st ? -1 : pml_links_of(&t->links, kind, from);
    if (link >= 0) { /* device to device, then waited for: a silent peer or an abort ends the wait */
        char what[96];
        snprintf(what, sizeof what, "waiting for stage %d's %s of micro-batch %lld (device to device)", from,
                 kind == PML_MSG_ACT ? "activations" : "gradients", (long long)mb);
        pml_live_guard g = guard(t);
        return pml_links_recv(&t->links, &g, link, kind, from, to, mb, peer, &t->aborted, what, err);
    }
    if (!st) st = check_tag(t, kind, mb, &tag, err);
    if (!st) st = pml_staging_message(t->be, from, kind, mb, stack, &bufs, &heap, &n, err);
    void *hstack[PML_STAGING_BUFS], **host = n <= PML_STAGING_BUFS ? hstack : malloc(sizeof *host * (size_t)n);
    if (!st && !host) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) st = pml_staging_in(&t->in[to], t->be, to, bufs, n, 0, host, "receiving a boundary message", err);
    size_t reqs = 0;
    for (int i = 0; i < n && !st; i++) reqs += bufs[i].bytes / PML_MPI_CHUNK + 1;
    MPI_Request *rq = st ? NULL : malloc(sizeof *rq * (reqs ? reqs : 1));
    if (!st && !rq) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        for (size_t off = 0; off < bufs[i].bytes || (off == 0 && bufs[i].bytes == 0); off += PML_MPI_CHUNK) {
            size_t left = bufs[i].bytes - off;
            int len = (int)(left < PML_MPI_CHUNK ? left : PML_MPI_CHUNK);
            int rc = MPI_Irecv((char *)host[i] + off, len, MPI_BYTE, peer, tag, t->m->data, &rq[k]);
            if (rc != MPI_SUCCESS) {
                st = pml_mpi_fail(t->m, rc, peer, "receiving a boundary message", err);
                break;
            }
            k++;
            if (bufs[i].bytes == 0) break;
        }
    }
    if (!st) {
        char what[96];
        snprintf(what, sizeof what, "waiting for stage %d's %s of micro-batch %lld", from,
                 kind == PML_MSG_ACT ? "activations" : "gradients", (long long)mb);
        st = pml_mpi_wait(t->m, rq, k, peer, &t->aborted, what, err);
    }
    if (!st) st = pml_staging_out(t->be, to, bufs, n, host, "receiving a boundary message", err);
    free(rq);
    if (host != hstack) free(host);
    free(heap);
    return st;
}

static pml_status tmpi_sum_grads(pml_transport *tr, int stage, int *done, pml_err *err)
{
    tmpi *t = (tmpi *)tr;
    pml_live_guard g = guard(t);
    return pml_links_sum(&t->links, &g, stage, &t->aborted, done, err);
}

/* Completes the sends of the step that ended: their buffers are about to be reused. */
static void tmpi_reset(pml_transport *tr)
{
    tmpi *t = (tmpi *)tr;
    t->local->reset(t->local);
    pthread_mutex_lock(&t->mu);
    if (t->n_pending && !t->deferred.code)
        pml_mpi_wait(t->m, t->pending, t->n_pending, -1, NULL, "finishing the last step's sends", &t->deferred);
    t->n_pending = 0;
    pml_live_guard g = guard(t);
    pml_links_finish(&t->links, &g, "finishing the last step's sends (device to device)", &t->deferred);
    pthread_mutex_unlock(&t->mu);
    atomic_store(&t->aborted, 0);
}

static void tmpi_abort(pml_transport *tr)
{
    tmpi *t = (tmpi *)tr;
    atomic_store(&t->aborted, 1);
    t->local->abort(t->local);
}

static void tmpi_destroy(pml_transport *tr)
{
    tmpi *t = (tmpi *)tr;
    if (!t) return;
    if (t->n_pending && !atomic_load(&t->m->failed)) {
        pml_err ignored = {0};
        pml_mpi_wait(t->m, t->pending, t->n_pending, -1, NULL, "finishing sends", &ignored);
    }
    if (!atomic_load(&t->m->failed)) { /* a link's sends, as reset finishes them */
        pml_err ignored = {0};
        pml_live_guard g = guard(t);
        pml_links_finish(&t->links, &g, "finishing sends (device to device)", &ignored);
    }
    pml_links_free(&t->links);
    if (t->local) t->local->destroy(t->local);
    for (int64_t i = 0; t->out && i < (int64_t)t->S * 2 * t->M; i++) pml_staging_free(&t->out[i]);
    for (int s = 0; t->in && s < t->S; s++) pml_staging_free(&t->in[s]);
    free(t->out), free(t->in);
    pthread_mutex_destroy(&t->mu);
    free(t->pending);
    free(t);
}

pml_status pml_mpi_transport_create(pml_dist *d, pml_backend_inst *be, int stages, int64_t microbatches,
                                    pml_transport **out, pml_err *err)
{
    *out = NULL;
    tmpi *t = calloc(1, sizeof *t);
    if (!t) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    t->m = (pml_mpi *)d;
    t->be = be;
    t->S = stages;
    t->M = microbatches;
    pthread_mutex_init(&t->mu, NULL);
    t->base.send = tmpi_send;
    t->base.recv = tmpi_recv;
    t->base.sum_grads = tmpi_sum_grads;
    t->base.reset = tmpi_reset;
    t->base.abort = tmpi_abort;
    t->base.destroy = tmpi_destroy;
    pml_status st = pml_transport_local_create(stages, microbatches, &t->local, err);
    t->out = calloc((size_t)stages * 2 * (size_t)microbatches, sizeof *t->out);
    t->in = calloc((size_t)stages, sizeof *t->in);
    if (!st && (!t->out || !t->in)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_links_wire wire = {t->m, link_send, link_recv};
    if (!st) st = pml_links_make(&t->links, be, d, stages, &wire, err);
    if (!st && 2 * microbatches - 1 > t->m->tag_ub)
        st = pml_err_set(err, PML_ERR_UNSUPPORTED, "too many micro-batches (%lld) for this MPI's tags (at most %d)",
                         (long long)microbatches, t->m->tag_ub / 2);
    if (st) {
        tmpi_destroy(&t->base);
        return st;
    }
    *out = &t->base;
    return PML_OK;
}

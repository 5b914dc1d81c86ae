/* links.c — device-to-device links agreed over a transport's control channel, and their
 * sends and waits (links.h). */
#include "exec/links.h"

#include <stdlib.h>
#include <string.h>

static int index_of(int S, int kind, int from) { return kind * S + from; }

/* Stage s's replica group, on this rank (which runs s): the agreement (links.h) over
 * the wire, then the join. */
static pml_status make_group(pml_links *l, const pml_dist *d, int s, const pml_links_wire *w, pml_err *err)
{
    const pml_backend_ops *ops = l->be->ops;
    int root = pml_dist_owner(d, 0, s), R = d->replicas;
    /* an offer: [0] this member can, then its device; the answer: [0] yes, then the id */
    unsigned char offer[1 + PML_BACKEND_PEER_DEV] = {0}, answer[1 + PML_BACKEND_PEER_ID] = {0};
    offer[0] = ops->peer_id(l->be->ctx, s, offer + 1, d->rank == root ? answer + 1 : NULL, NULL) == PML_OK;
    pml_status st = PML_OK;
    if (d->rank != root) {
        if ((st = w->send(w->ctx, root, offer, sizeof offer, err)) ||
            (st = w->recv(w->ctx, root, answer, sizeof answer, err)))
            return st;
    } else {
        unsigned char(*dev)[PML_BACKEND_PEER_DEV] = calloc((size_t)R, sizeof *dev), yes = offer[0];
        if (!dev) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        memcpy(dev[0], offer + 1, sizeof dev[0]);
        for (int k = 1; k < R && !st; k++) {
            unsigned char theirs[sizeof offer] = {0};
            st = w->recv(w->ctx, pml_dist_owner(d, k, s), theirs, sizeof theirs, err);
            memcpy(dev[k], theirs + 1, sizeof dev[k]);
            yes = yes && theirs[0];
            for (int j = 0; j < k && yes; j++) yes = memcmp(dev[j], dev[k], sizeof dev[k]) != 0; /* NCCL refuses */
        }
        free(dev);
        answer[0] = yes;
        for (int k = 1; k < R && !st; k++) st = w->send(w->ctx, pml_dist_owner(d, k, s), answer, sizeof answer, err);
        if (st) return st;
    }
    if (!answer[0]) return PML_OK;
    if ((st = ops->peer_group(l->be->ctx, 2 * l->S + s, s, d->replica, R, answer + 1, err))) return st;
    l->grouped[s] = 1;
    return PML_OK;
}

pml_status pml_links_make(pml_links *l, pml_backend_inst *be, const pml_dist *d, int S, const pml_links_wire *w,
                          pml_err *err)
{
    *l = (pml_links){be, S, malloc(sizeof *l->link * ((size_t)S * 2 + 1)), calloc((size_t)S * 2 + 1, sizeof *l->sent),
                     calloc((size_t)S + 1, 1)};
    if (!l->link || !l->sent || !l->grouped) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    const pml_backend_ops *ops = be->ops;
    for (int i = 0; i < 2 * S; i++) l->link[i] = -1;
    if (!ops->peer_id || !ops->peer_link || !ops->peer_send || !ops->peer_recv || !ops->peer_poll) return PML_OK;
    for (int kind = 0; kind < 2; kind++)
        for (int from = 0; from < S; from++) {
            int to = kind == PML_MSG_ACT ? from + 1 : from - 1;
            if (to < 0 || to >= S) continue;
            int a = pml_dist_owner(d, d->replica, from), b = pml_dist_owner(d, d->replica, to), me = d->rank;
            if (a == b || (me != a && me != b)) continue;
            int sends = me == a, peer = sends ? b : a;
            /* [0]: the sender can link; then its device, then the link's identifier */
            unsigned char msg[1 + PML_BACKEND_PEER_DEV + PML_BACKEND_PEER_ID] = {0}, dev[PML_BACKEND_PEER_DEV] = {0};
            unsigned char yes = ops->peer_id(be->ctx, sends ? from : to, dev,
                                             sends ? msg + 1 + PML_BACKEND_PEER_DEV : NULL, NULL) == PML_OK;
            pml_status st;
            if (sends) {
                msg[0] = yes;
                memcpy(msg + 1, dev, sizeof dev);
                if ((st = w->send(w->ctx, peer, msg, sizeof msg, err)) || (st = w->recv(w->ctx, peer, &yes, 1, err)))
                    return st;
            } else {
                if ((st = w->recv(w->ctx, peer, msg, sizeof msg, err))) return st;
                yes = yes && msg[0] && memcmp(msg + 1, dev, sizeof dev) != 0; /* one device: NCCL refuses it */
                if ((st = w->send(w->ctx, peer, &yes, 1, err))) return st;
            }
            if (!yes) continue;
            int id = index_of(S, kind, from);
            if ((st = ops->peer_link(be->ctx, id, kind, from, sends, msg + 1 + PML_BACKEND_PEER_DEV, err))) return st;
            l->link[id] = id;
        }
    if (d->replicas < 2 || !ops->peer_group || !ops->peer_sum) return PML_OK;
    for (int s = 0; s < S; s++) { /* this rank's stages, in one order on every replica */
        pml_status st = pml_dist_owner(d, d->replica, s) == d->rank ? make_group(l, d, s, w, err) : PML_OK;
        if (st) return st;
    }
    return PML_OK;
}

void pml_links_free(pml_links *l)
{
    free(l->link);
    free(l->sent);
    free(l->grouped);
    l->link = NULL;
    l->sent = NULL;
    l->grouped = NULL;
}

int pml_links_of(const pml_links *l, int kind, int from)
{
    return l->link && (kind == PML_MSG_ACT || kind == PML_MSG_GRAD) ? l->link[index_of(l->S, kind, from)] : -1;
}

pml_status pml_links_send(pml_links *l, int link, int kind, int from, int64_t mb, pml_err *err)
{
    atomic_store(&l->sent[link], 1);
    return l->be->ops->peer_send(l->be->ctx, link, kind, from, mb, err);
}

/* A link's wait (pml_live_poll): until what is queued on it is done. */
typedef struct link_wait {
    pml_links *l;
    int link;
} link_wait;

static int link_done(void *ctx, pml_err *err)
{
    link_wait *w = ctx;
    return w->l->be->ops->peer_poll(w->l->be->ctx, w->link, err);
}

pml_status pml_links_recv(pml_links *l, const pml_live_guard *g, int link, int kind, int from, int to, int64_t mb,
                          int peer, const atomic_int *aborted, const char *what, pml_err *err)
{
    pml_status st = l->be->ops->peer_recv(l->be->ctx, link, kind, from, to, mb, err);
    link_wait w = {l, link};
    return st ? st : pml_live_poll(g, link_done, &w, peer, aborted, what, err);
}

pml_status pml_links_sum(pml_links *l, const pml_live_guard *g, int stage, const atomic_int *aborted, int *done,
                         pml_err *err)
{
    *done = l->grouped && stage >= 0 && stage < l->S && l->grouped[stage];
    if (!*done) return PML_OK;
    int link = 2 * l->S + stage;
    pml_status st = l->be->ops->peer_sum(l->be->ctx, link, stage, err);
    link_wait w = {l, link};
    /* An all-reduce waits on every member: whichever falls silent is the one named (-1). */
    return st ? st
              : pml_live_poll(g, link_done, &w, -1, aborted, "adding gradients over the replicas (device to device)",
                              err);
}

void pml_links_finish(pml_links *l, const pml_live_guard *g, const char *what, pml_err *err)
{
    for (int i = 0; l->sent && i < 2 * l->S; i++) {
        if (!atomic_exchange(&l->sent[i], 0) || err->code) continue;
        link_wait w = {l, l->link[i]};
        pml_live_poll(g, link_done, &w, -1, NULL, what, err);
    }
}

/* links.c — device-to-device links agreed over a transport's control channel (links.h). */
#include "exec/links.h"

#include <string.h>

pml_status pml_links_make(pml_backend_inst *be, const pml_dist *d, int S, const pml_links_wire *w, int *link,
                          pml_err *err)
{
    const pml_backend_ops *ops = be->ops;
    for (int i = 0; i < 2 * S; i++) link[i] = -1;
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
            int id = pml_links_index(S, kind, from);
            if ((st = ops->peer_link(be->ctx, id, kind, from, sends, msg + 1 + PML_BACKEND_PEER_DEV, err))) return st;
            link[id] = id;
        }
    return PML_OK;
}

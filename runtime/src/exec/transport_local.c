/* transport_local.c — the in-process transport (see transport.h): one mailbox flag
 * per (destination stage, kind, micro-batch), one mutex and condition variable. */
#include <pthread.h>
#include <stdlib.h>

#include "exec/transport.h"

typedef struct local {
    pml_transport base;
    int stages;
    int64_t mbs;
    uint8_t *ready; /* [stage][kind][mb] */
    int aborted;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} local;

static uint8_t *slot(local *l, int to, int kind, int64_t mb)
{
    return &l->ready[((size_t)to * 2 + (size_t)kind) * (size_t)l->mbs + (size_t)mb];
}

static pml_status check(local *l, int from, int to, int kind, int64_t mb, pml_err *err)
{
    if (from < 0 || to < 0 || from >= l->stages || to >= l->stages || (kind != PML_MSG_ACT && kind != PML_MSG_GRAD) ||
        mb < 0 || mb >= l->mbs || (kind == PML_MSG_ACT ? to != from + 1 : to != from - 1))
        return pml_err_set(err, PML_ERR_INTERNAL, "transport: no channel from stage %d to stage %d", from, to);
    return PML_OK;
}

static pml_status local_send(pml_transport *t, int from, int to, int kind, int64_t mb, pml_err *err)
{
    local *l = (local *)t;
    pml_status st = check(l, from, to, kind, mb, err);
    if (st) return st;
    pthread_mutex_lock(&l->mu);
    *slot(l, to, kind, mb) = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return PML_OK;
}

static pml_status local_recv(pml_transport *t, int from, int to, int kind, int64_t mb, pml_err *err)
{
    local *l = (local *)t;
    pml_status st = check(l, from, to, kind, mb, err);
    if (st) return st;
    pthread_mutex_lock(&l->mu);
    while (!*slot(l, to, kind, mb) && !l->aborted) pthread_cond_wait(&l->cv, &l->mu);
    int aborted = l->aborted;
    pthread_mutex_unlock(&l->mu);
    return aborted ? pml_err_set(err, PML_ERR_INTERNAL, "stage %d stopped: another stage failed", to) : PML_OK;
}

static void local_reset(pml_transport *t)
{
    local *l = (local *)t;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < (size_t)l->stages * 2 * (size_t)l->mbs; i++) l->ready[i] = 0;
    l->aborted = 0;
    pthread_mutex_unlock(&l->mu);
}

static void local_abort(pml_transport *t)
{
    local *l = (local *)t;
    pthread_mutex_lock(&l->mu);
    l->aborted = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void local_destroy(pml_transport *t)
{
    local *l = (local *)t;
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->ready);
    free(l);
}

pml_status pml_transport_local_create(int stages, int64_t microbatches, pml_transport **out, pml_err *err)
{
    local *l = calloc(1, sizeof *l);
    if (l) l->ready = calloc((size_t)stages * 2 * (size_t)microbatches, 1);
    if (!l || !l->ready) {
        free(l);
        return pml_err_set(err, PML_ERR_NOMEM, "transport: out of memory");
    }
    l->stages = stages;
    l->mbs = microbatches;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->base.send = local_send;
    l->base.recv = local_recv;
    l->base.reset = local_reset;
    l->base.abort = local_abort;
    l->base.destroy = local_destroy;
    *out = &l->base;
    return PML_OK;
}

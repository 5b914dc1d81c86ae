/* dist_mpi.c — pml_dist over MPI (see dist_mpi.h): start-up, the heartbeat and goodbyes,
 * sums and moves between ranks, and the polled wait everything uses. Sums
 * go through rank 0 point to point rather than MPI_Allreduce so that every wait has a
 * known peer and a deadline, and every rank adds the same numbers in rank order. */

#include "exec/mpi/mpi_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/ranks.h"

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

pml_status pml_mpi_fail(pml_mpi *m, int rc, int peer, const char *what, pml_err *err)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    atomic_store(&m->failed, 1);
    if (peer >= 0)
        return pml_err_set(err, PML_ERR_IO, "rank %d: MPI failed while %s (rank %d): %s", m->base.rank, what, peer,
                           msg);
    return pml_err_set(err, PML_ERR_IO, "rank %d: MPI failed while %s: %s", m->base.rank, what, msg);
}

typedef struct requests {
    pml_mpi *m;
    MPI_Request *reqs;
    int n, peer;
    const char *what;
} requests;

static int all_done(void *ctx, pml_err *err)
{
    requests *r = ctx;
    int done = 0, rc = MPI_Testall(r->n, r->reqs, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return pml_mpi_fail(r->m, rc, r->peer, r->what, err), -1;
    return done;
}

pml_status pml_mpi_wait(pml_mpi *m, MPI_Request *reqs, int n, int peer, const atomic_int *aborted, const char *what,
                        pml_err *err)
{
    requests r = {m, reqs, n, peer, what};
    pml_live_guard g = {&m->mu, &m->live, &m->failed};
    return pml_live_poll(&g, all_done, &r, peer, aborted, what, err);
}

/* ---- heartbeat ------------------------------------------------------------------------ */

/* Beats go out several times per timeout, and a listener turn ten times per beat; a
 * stretch of one beat period between two turns still counts in full (liveness.h). */
static double beat_period(const pml_mpi *m) { return m->timeout / 10 < 0.5 ? m->timeout / 10 : 0.5; }

/* Takes in the goodbyes that have arrived (liveness.h); 0, or -1 when MPI failed. */
static int take_goodbyes(pml_mpi *m, MPI_Request *rq, char *bye)
{
    for (;;) {
        int flag = 0;
        MPI_Status s;
        if (MPI_Test(rq, &flag, &s) != MPI_SUCCESS) return -1;
        if (!flag) return 0;
        bye[PML_LIVE_WHY - 1] = 0;
        pthread_mutex_lock(&m->mu);
        pml_live_left(&m->live, s.MPI_SOURCE, bye[0] == '1', bye + 1, pml_live_now());
        pthread_mutex_unlock(&m->mu);
        if (MPI_Irecv(bye, PML_LIVE_WHY, MPI_CHAR, MPI_ANY_SOURCE, PML_MPI_TAG_BYE, m->beat, rq) != MPI_SUCCESS)
            return -1;
    }
}

static void cancel(MPI_Request *rq)
{
    if (*rq == MPI_REQUEST_NULL) return;
    MPI_Cancel(rq);
    MPI_Wait(rq, MPI_STATUS_IGNORE);
}

static void *beat_main(void *arg)
{
    pml_mpi *m = arg;
    static const int token = 0; /* sends read it; never written */
    int got = 0;
    char bye[PML_LIVE_WHY];
    double period = beat_period(m), next = 0;
    MPI_Request rq, bye_rq = MPI_REQUEST_NULL;
    if (MPI_Irecv(&got, 1, MPI_INT, MPI_ANY_SOURCE, PML_MPI_TAG_BEAT, m->beat, &rq) != MPI_SUCCESS ||
        MPI_Irecv(bye, PML_LIVE_WHY, MPI_CHAR, MPI_ANY_SOURCE, PML_MPI_TAG_BYE, m->beat, &bye_rq) != MPI_SUCCESS) {
        atomic_store(&m->failed, 1);
        return NULL;
    }
    while (!atomic_load(&m->stop)) {
        double now = pml_live_now();
        if (now >= next) {
            for (int r = 0; r < m->base.world; r++) {
                if (r == m->base.rank) continue;
                MPI_Request sr;
                /* Freed at once: a beat to a dead peer must not hold anything up. */
                if (MPI_Isend(&token, 1, MPI_INT, r, PML_MPI_TAG_BEAT, m->beat, &sr) == MPI_SUCCESS)
                    MPI_Request_free(&sr);
            }
            next = now + period;
        }
        for (;;) {
            int flag = 0;
            MPI_Status s;
            if (MPI_Test(&rq, &flag, &s) != MPI_SUCCESS || !flag) break;
            pthread_mutex_lock(&m->mu);
            pml_live_heard(&m->live, s.MPI_SOURCE, pml_live_now());
            pthread_mutex_unlock(&m->mu);
            if (MPI_Irecv(&got, 1, MPI_INT, MPI_ANY_SOURCE, PML_MPI_TAG_BEAT, m->beat, &rq) != MPI_SUCCESS) {
                rq = MPI_REQUEST_NULL;
                break;
            }
        }
        if (rq == MPI_REQUEST_NULL) break;
        /* After the beats: a peer's last beat must not count after its goodbye. */
        if (take_goodbyes(m, &bye_rq, bye)) {
            bye_rq = MPI_REQUEST_NULL;
            break;
        }
        /* Every beat that had arrived is in: this turn observed the peers. */
        pthread_mutex_lock(&m->mu);
        pml_live_look(&m->live, pml_live_now());
        pthread_mutex_unlock(&m->mu);
        sleep_s(period / 10);
    }
    cancel(&rq);
    cancel(&bye_rq);
    return NULL;
}

/* Tells every peer still here that this rank leaves (failed, or ended its run) and why,
 * waiting at most a second for the sends: a goodbye is small and goes out at once, and a
 * peer that does not take it still has the heartbeat's timeout. The text lives as long
 * as the process, since a send that did not complete may still read it. */
static void say_goodbye(pml_mpi *m, int failed, const char *why)
{
    static char bye[PML_LIVE_WHY];
    int W = m->base.world, n = 0;
    MPI_Request *rq = calloc((size_t)W, sizeof *rq);
    if (!rq || m->beat == MPI_COMM_NULL) {
        free(rq);
        return;
    }
    snprintf(bye, sizeof bye, "%c%s", failed ? '1' : '0', why ? why : "");
    for (int r = 0; r < W; r++) {
        pthread_mutex_lock(&m->mu);
        int here = m->live.state && m->live.state[r] == PML_LIVE_HERE;
        pthread_mutex_unlock(&m->mu);
        if (r != m->base.rank && here &&
            MPI_Isend(bye, PML_LIVE_WHY, MPI_CHAR, r, PML_MPI_TAG_BYE, m->beat, &rq[n]) == MPI_SUCCESS)
            n++;
    }
    int done = 0;
    for (double until = pml_live_now() + 1; n && !done && pml_live_now() < until;) {
        if (MPI_Testall(n, rq, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) break;
        if (!done) sleep_s(1e-3);
    }
    for (int i = 0; i < n && !done; i++)
        if (rq[i] != MPI_REQUEST_NULL) MPI_Request_free(&rq[i]);
    free(rq);
}

/* ---- collectives, point to point through rank 0 ------------------------------------- */

/* Every rank's `bytes` of `mine` into all[rank·bytes], on every rank. */
static pml_status all_gather(pml_mpi *m, const void *mine, void *all, int bytes, const char *what, pml_err *err)
{
    int me = m->base.rank, W = m->base.world;
    memcpy((char *)all + (size_t)me * (size_t)bytes, mine, (size_t)bytes);
    if (me == 0) {
        for (int r = 1; r < W; r++) { /* one at a time, so a silent rank is named */
            MPI_Request rq;
            PML_MPI_CHECK(m, MPI_Irecv((char *)all + (size_t)r * (size_t)bytes, bytes, MPI_BYTE, r, PML_MPI_TAG_GATHER,
                                       m->ctl, &rq),
                          r, what, err);
            pml_status st = pml_mpi_wait(m, &rq, 1, r, NULL, what, err);
            if (st) return st;
        }
        for (int r = 1; r < W; r++) {
            MPI_Request rq;
            PML_MPI_CHECK(m, MPI_Isend(all, bytes * W, MPI_BYTE, r, PML_MPI_TAG_BCAST, m->ctl, &rq), r, what, err);
            pml_status st = pml_mpi_wait(m, &rq, 1, r, NULL, what, err);
            if (st) return st;
        }
        return PML_OK;
    }
    MPI_Request rq[2];
    PML_MPI_CHECK(m, MPI_Isend(mine, bytes, MPI_BYTE, 0, PML_MPI_TAG_GATHER, m->ctl, &rq[0]), 0, what, err);
    PML_MPI_CHECK(m, MPI_Irecv(all, bytes * W, MPI_BYTE, 0, PML_MPI_TAG_BCAST, m->ctl, &rq[1]), 0, what, err);
    return pml_mpi_wait(m, rq, 2, 0, NULL, what, err);
}

static pml_status mpi_sum(pml_dist *d, double *x, int n, pml_err *err)
{
    pml_mpi *m = (pml_mpi *)d;
    double *all = malloc(sizeof(double) * (size_t)n * (size_t)d->world);
    if (!all) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status st = all_gather(m, x, all, (int)(sizeof(double) * (size_t)n), "summing the gradient norm", err);
    for (int i = 0; i < n && !st; i++) {
        x[i] = 0;
        for (int r = 0; r < d->world; r++) x[i] += all[(size_t)r * (size_t)n + (size_t)i];
    }
    free(all);
    return st;
}

/* A stage's buffers cut into the pieces one MPI call moves (counts are ints). */
typedef struct piece {
    float *x;
    int len;
} piece;

static pml_status cut_pieces(float *const *x, const size_t *len, int n, piece **out, int *count, pml_err *err)
{
    const size_t most = PML_MPI_CHUNK / sizeof(float);
    size_t k = 0;
    for (int i = 0; i < n; i++) k += (len[i] + most - 1) / most;
    piece *p = malloc(sizeof *p * (k + 1));
    if (!p || k >= INT_MAX) {
        free(p);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    k = 0;
    for (int i = 0; i < n; i++)
        for (size_t off = 0; off < len[i]; off += most)
            p[k++] = (piece){x[i] + off, (int)(len[i] - off < most ? len[i] - off : most)};
    *out = p;
    *count = (int)k;
    return PML_OK;
}

/* Sends (or receives, `recv`) every piece to (from) `peer` at once, and waits for all. */
static pml_status move_pieces(pml_mpi *m, const piece *p, int n, int peer, int tag, int recv, MPI_Request *rq,
                              pml_err *err)
{
    for (int i = 0; i < n; i++) {
        int rc = recv ? MPI_Irecv(p[i].x, p[i].len, MPI_FLOAT, peer, tag, m->ctl, &rq[i])
                      : MPI_Isend(p[i].x, p[i].len, MPI_FLOAT, peer, tag, m->ctl, &rq[i]);
        if (rc != MPI_SUCCESS) return pml_mpi_fail(m, rc, peer, "summing gradients", err); /* the run ends */
    }
    return pml_mpi_wait(m, rq, n, peer, NULL, "summing gradients over replicas", err);
}

/* Replica 0's rank of the stage receives every other replica's buffers whole, adds them
 * in replica order and sends the sums back; messages of one pair on one tag arrive in
 * the order they were posted, so pieces match pieces. */
static pml_status mpi_sum_replicas(pml_dist *d, int stage, float *const *x, const size_t *len, int n, pml_err *err)
{
    pml_mpi *m = (pml_mpi *)d;
    int root = pml_dist_owner(d, 0, stage), tag = PML_MPI_TAG_REPLICAS + stage, count = 0;
    if (tag > m->tag_ub) return pml_err_set(err, PML_ERR_UNSUPPORTED, "too many stages for this MPI's tags");
    piece *mine = NULL, *tmp_pieces = NULL;
    pml_status st = cut_pieces(x, len, n, &mine, &count, err);
    if (st) return st;
    MPI_Request *rq = malloc(sizeof *rq * (size_t)(count + 1));
    if (!rq) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st && d->rank != root) {
        st = move_pieces(m, mine, count, root, tag, 0, rq, err);
        if (!st) st = move_pieces(m, mine, count, root, tag, 1, rq, err);
    } else if (!st) {
        size_t total = 0, at = 0;
        for (int i = 0; i < n; i++) total += len[i];
        float *tmp = malloc(sizeof(float) * total + 1), **tx = malloc(sizeof *tx * (size_t)(n + 1));
        if (!tmp || !tx) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n && !st; i++) tx[i] = tmp + at, at += len[i];
        if (!st) st = cut_pieces(tx, len, n, &tmp_pieces, &count, err);
        for (int k = 1; k < d->replicas && !st; k++) {
            st = move_pieces(m, tmp_pieces, count, pml_dist_owner(d, k, stage), tag, 1, rq, err);
            for (int i = 0; i < n && !st; i++)
                for (size_t j = 0; j < len[i]; j++) x[i][j] += tx[i][j];
        }
        for (int k = 1; k < d->replicas && !st; k++)
            st = move_pieces(m, mine, count, pml_dist_owner(d, k, stage), tag, 0, rq, err);
        free(tmp);
        free(tx);
    }
    free(rq);
    free(mine);
    free(tmp_pieces);
    return st;
}

static pml_status mpi_move(pml_dist *d, int from, int to, void *buf, size_t bytes, pml_err *err)
{
    pml_mpi *m = (pml_mpi *)d;
    if (from == to || (d->rank != from && d->rank != to)) return PML_OK;
    int peer = d->rank == from ? to : from;
    for (size_t off = 0; off < bytes; off += PML_MPI_CHUNK) {
        int len = (int)(bytes - off < PML_MPI_CHUNK ? bytes - off : PML_MPI_CHUNK);
        MPI_Request rq;
        if (d->rank == from)
            PML_MPI_CHECK(m, MPI_Isend((char *)buf + off, len, MPI_BYTE, to, PML_MPI_TAG_MOVE, m->ctl, &rq), to,
                          "sending parameters", err);
        else
            PML_MPI_CHECK(m, MPI_Irecv((char *)buf + off, len, MPI_BYTE, from, PML_MPI_TAG_MOVE, m->ctl, &rq), from,
                          "receiving parameters", err);
        pml_status st = pml_mpi_wait(m, &rq, 1, peer, NULL, "moving parameters", err);
        if (st) return st;
    }
    return PML_OK;
}

/* ---- start-up and shutdown --------------------------------------------------------------- */

static void mpi_abandon(pml_dist *d, const char *why)
{
    pml_mpi *m = (pml_mpi *)d;
    if (!atomic_exchange(&m->said_goodbye, 1)) say_goodbye(m, 1, why);
    atomic_store(&m->failed, 1);
}

static void mpi_destroy(pml_dist *d)
{
    pml_mpi *m = (pml_mpi *)d;
    if (!m) return;
    if (m->beating && !atomic_load(&m->failed) && !atomic_exchange(&m->said_goodbye, 1))
        say_goodbye(m, 0, "it ended its run");
    if (m->beating) {
        atomic_store(&m->stop, 1);
        pthread_join(m->beat_thread, NULL);
    }
    /* After a failure a peer may be gone: freeing communicators or finalizing would
     * wait for it. The process is about to exit; mpirun ends the job. */
    if (!atomic_load(&m->failed)) {
        if (m->data != MPI_COMM_NULL) MPI_Comm_free(&m->data);
        if (m->ctl != MPI_COMM_NULL) MPI_Comm_free(&m->ctl);
        if (m->beat != MPI_COMM_NULL) MPI_Comm_free(&m->beat);
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (m->we_initialised && !finalized) MPI_Finalize();
    }
    pthread_mutex_destroy(&m->mu);
    pml_live_free(&m->live);
    free(m);
}

static pml_status start(pml_mpi *m, const pml_dist_mpi_conf *c, pml_err *err)
{
    int inited = 0, provided = 0, rank, world;
    MPI_Initialized(&inited);
    if (!inited) {
        PML_MPI_CHECK(m, MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided), -1, "starting MPI", err);
        m->we_initialised = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_MULTIPLE)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "this MPI library does not support MPI_THREAD_MULTIPLE, which the pipeline's stage "
                           "threads need");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    PML_MPI_CHECK(m, MPI_Comm_rank(MPI_COMM_WORLD, &rank), -1, "asking for the rank", err);
    PML_MPI_CHECK(m, MPI_Comm_size(MPI_COMM_WORLD, &world), -1, "asking for the world size", err);
    if (rank != c->rank || world != c->world)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "MPI says this is rank %d of %d, but the environment or flags say rank %d of %d", rank,
                           world, c->rank, c->world);
    m->base.rank = rank;
    m->base.world = world;
    pml_rank_place place;
    pml_status st = pml_ranks_place(c->devices, world, c->replicas > 1 ? c->replicas : 1, rank, &place, err);
    if (st) return st;
    m->base.first = place.first;
    m->base.last = place.last;
    m->base.replica = place.replica;
    m->base.replicas = place.replicas;
    PML_MPI_CHECK(m, MPI_Comm_dup(MPI_COMM_WORLD, &m->data), -1, "creating communicators", err);
    PML_MPI_CHECK(m, MPI_Comm_dup(MPI_COMM_WORLD, &m->ctl), -1, "creating communicators", err);
    PML_MPI_CHECK(m, MPI_Comm_dup(MPI_COMM_WORLD, &m->beat), -1, "creating communicators", err);
    int *ub = NULL, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
    m->tag_ub = flag && ub ? *ub : 32767;
    st = pml_live_init(&m->live, world, rank, m->timeout, beat_period(m), pml_live_now(), err);
    if (st) return st;
    if (pthread_create(&m->beat_thread, NULL, beat_main, m))
        return pml_err_set(err, PML_ERR_INTERNAL, "cannot start the heartbeat thread");
    m->beating = 1;
    return PML_OK;
}

pml_status pml_dist_mpi_create(const pml_dist_mpi_conf *conf, pml_dist **out, pml_err *err)
{
    *out = NULL;
    pml_mpi *m = calloc(1, sizeof *m);
    if (!m) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    m->data = m->ctl = m->beat = MPI_COMM_NULL;
    m->base.devices = conf->devices;
    m->base.schedule = conf->schedule;
    m->timeout = conf->timeout_s > 0 ? conf->timeout_s : 60;
    pthread_mutex_init(&m->mu, NULL);
    m->base.transport_create = pml_mpi_transport_create;
    m->base.sum = mpi_sum;
    m->base.sum_replicas = mpi_sum_replicas;
    m->base.move = mpi_move;
    m->base.abandon = mpi_abandon;
    m->base.destroy = mpi_destroy;
    pml_status st = start(m, conf, err);
    if (st) {
        mpi_destroy(&m->base);
        return st;
    }
    *out = &m->base;
    return PML_OK;
}

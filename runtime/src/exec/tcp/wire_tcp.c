/* wire_tcp.c — frames between ranks over one socket per pair (tcp_impl.h): the writers,
 * the reader threads and their queues, and the waits, which give up by the rule of
 * exec/liveness.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "exec/tcp/tcp_impl.h"

typedef struct frame_head {
    uint32_t magic, chan;
    uint64_t tag, len;
} frame_head;

/* The status a wait on `peer` gives up with now, if any (liveness.h). */
static pml_status blame(pml_tcp *m, int peer, const char *what, pml_err *err)
{
    pml_live_guard g = {&m->mu, &m->live, &m->failed};
    return pml_live_check(&g, peer, what, err);
}

/* Writes len bytes, waiting for room in the socket; gives up at `deadline` (> 0) or, with
 * none, when the peer is gone. Returns 0, or -1 with err set. */
static int write_all(pml_tcp *m, int peer, const void *buf, size_t len, double deadline, const char *what, pml_err *err)
{
    const char *p = buf;
    while (len) {
        ssize_t k = send(m->peer[peer].fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k, len -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            /* Most often the peer is gone, and its reader is about to say how (a goodbye,
             * or the end of its stream): that names the cause, not the broken pipe. */
            int e = errno;
            for (double until = pml_live_now() + 1; pml_live_now() < until;) {
                if (blame(m, peer, what, err)) return -1;
                struct timespec t = {0, 5 * 1000 * 1000};
                nanosleep(&t, NULL);
            }
            pml_err_set(err, PML_ERR_IO, "rank %d: the connection to rank %d broke while %s: %s", m->base.rank, peer,
                        what, strerror(e));
            return -1;
        }
        struct pollfd pf = {m->peer[peer].fd, POLLOUT, 0};
        poll(&pf, 1, 50);
        if (deadline > 0 && pml_live_now() > deadline) {
            pml_err_set(err, PML_ERR_IO, "rank %d: rank %d took nothing for too long while %s", m->base.rank, peer,
                        what);
            return -1;
        }
        if (deadline <= 0 && blame(m, peer, what, err)) return -1;
    }
    return 0;
}

/* One frame, the caller holding the peer's write lock. A frame cut off part-way leaves
 * the stream out of step: the connection is then unusable, and the run fails. */
static pml_status write_frame(pml_tcp *m, int peer, uint32_t chan, uint64_t tag, const void *const *part,
                              const size_t *len, int n, double deadline, const char *what, pml_err *err)
{
    pml_tcp_peer *q = &m->peer[peer];
    if (atomic_load(&q->broken))
        return pml_err_set(err, PML_ERR_IO, "rank %d: the connection to rank %d broke earlier; it was %s", m->base.rank,
                           peer, what);
    frame_head h = {PML_TCP_MAGIC, chan, tag, 0};
    for (int i = 0; i < n; i++) h.len += len[i];
    int bad = write_all(m, peer, &h, sizeof h, deadline, what, err);
    for (int i = 0; i < n && !bad; i++) bad = write_all(m, peer, part[i], len[i], deadline, what, err);
    if (!bad) return PML_OK;
    atomic_store(&q->broken, 1);
    return err && err->code ? err->code : PML_ERR_IO;
}

pml_status pml_tcp_send(pml_tcp *m, int peer, uint32_t chan, uint64_t tag, const void *const *part, const size_t *len,
                        int n, const char *what, pml_err *err)
{
    pthread_mutex_lock(&m->peer[peer].wmu);
    pml_status st = write_frame(m, peer, chan, tag, part, len, n, 0, what, err);
    pthread_mutex_unlock(&m->peer[peer].wmu);
    if (st) atomic_store(&m->failed, 1); /* the run cannot go on without the message */
    return st;
}

pml_status pml_tcp_recv(pml_tcp *m, int peer, uint32_t chan, uint64_t tag, void *const *part, const size_t *len, int n,
                        const atomic_int *aborted, const char *what, pml_err *err)
{
    pml_tcp_peer *q = &m->peer[peer];
    pml_tcp_msg *got = NULL;
    pml_status st = PML_OK;
    pthread_mutex_lock(&m->mu);
    while (!got && !st) {
        for (pml_tcp_msg **at = &q->head, *prev = NULL; *at; prev = *at, at = &(*at)->next) {
            if ((*at)->chan != chan || (*at)->tag != tag) continue;
            got = *at;
            *at = got->next;
            if (q->tail == got) q->tail = prev;
            break;
        }
        if (got) break;
        if (aborted && atomic_load(aborted)) {
            st = pml_err_set(err, PML_ERR_INTERNAL, "rank %d stopped: another stage failed", m->base.rank);
            break;
        }
        if ((st = pml_live_blame(&m->live, peer, pml_live_now(), what, err))) {
            atomic_store(&m->failed, 1);
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&m->arrived, &m->mu, &until);
    }
    pthread_mutex_unlock(&m->mu);
    if (st) return st;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += len[i];
    if (got->len != total) {
        atomic_store(&m->failed, 1);
        st = pml_err_set(err, PML_ERR_IO,
                         "rank %d sent %zu bytes where rank %d expected %zu, %s (the ranks disagree "
                         "about the run)",
                         peer, got->len, m->base.rank, total, what);
    }
    for (size_t i = 0, at = 0; !st && i < (size_t)n; at += len[i], i++)
        if (len[i]) memcpy(part[i], got->data + at, len[i]);
    free(got);
    return st;
}

/* ---- the reader thread ----------------------------------------------------------------- */

typedef struct reader_arg {
    pml_tcp *m;
    int peer;
} reader_arg;

/* Reads exactly len bytes, every read counting as hearing the peer; 0 at the end of
 * the stream or on an error. */
static int read_full(pml_tcp *m, int peer, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t k = read(m->peer[peer].fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        p += k, len -= (size_t)k;
        pthread_mutex_lock(&m->mu);
        pml_live_heard(&m->live, peer, pml_live_now());
        pthread_mutex_unlock(&m->mu);
    }
    return 1;
}

/* The peer is gone for `why` unless it said goodbye first or this rank is leaving. */
static void lost(pml_tcp *m, int peer, const char *why)
{
    pthread_mutex_lock(&m->mu);
    if (!atomic_load(&m->stop) && m->live.state[peer] == PML_LIVE_HERE)
        pml_live_left(&m->live, peer, 1, why, pml_live_now());
    pthread_cond_broadcast(&m->arrived);
    pthread_mutex_unlock(&m->mu);
}

/* Takes frames in until the stream ends or goes out of step. */
static void read_frames(pml_tcp *m, int peer)
{
    pml_tcp_peer *q = &m->peer[peer];
    for (;;) {
        frame_head h;
        if (!read_full(m, peer, &h, sizeof h)) break;
        if (h.magic != PML_TCP_MAGIC || h.chan < PML_TCP_CTL || h.chan > PML_TCP_BYE ||
            (h.chan == PML_TCP_BYE && h.len != PML_LIVE_WHY)) {
            lost(m, peer, "its connection carried bytes out of step (not a PML rank, or a broken stream)");
            return;
        }
        if (h.chan == PML_TCP_BEAT) continue;
        if (h.chan == PML_TCP_BYE) {
            char bye[PML_LIVE_WHY];
            if (!read_full(m, peer, bye, sizeof bye)) break;
            bye[PML_LIVE_WHY - 1] = 0;
            pthread_mutex_lock(&m->mu);
            pml_live_left(&m->live, peer, bye[0] == '1', bye + 1, pml_live_now());
            pthread_cond_broadcast(&m->arrived);
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        pml_tcp_msg *msg = h.len <= SIZE_MAX - sizeof *msg ? malloc(sizeof *msg + (size_t)h.len) : NULL;
        if (!msg) {
            lost(m, peer, "this rank had no memory for its message");
            return;
        }
        *msg = (pml_tcp_msg){NULL, h.chan, h.tag, (size_t)h.len};
        if (!read_full(m, peer, msg->data, msg->len)) {
            free(msg);
            break;
        }
        pthread_mutex_lock(&m->mu);
        if (q->tail)
            q->tail->next = msg;
        else
            q->head = msg;
        q->tail = msg;
        pthread_cond_broadcast(&m->arrived);
        pthread_mutex_unlock(&m->mu);
    }
    lost(m, peer, "its connection closed without a goodbye (the process ended or was killed)");
}

static void *reader_main(void *arg)
{
    reader_arg a = *(reader_arg *)arg;
    free(arg);
    read_frames(a.m, a.peer);
    atomic_store(&a.m->peer[a.peer].done, 1);
    return NULL;
}

pml_status pml_tcp_read_start(pml_tcp *m, int peer, pml_err *err)
{
    reader_arg *a = malloc(sizeof *a);
    if (!a) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    *a = (reader_arg){m, peer};
    if (pthread_create(&m->peer[peer].reader, NULL, reader_main, a)) {
        free(a);
        return pml_err_set(err, PML_ERR_INTERNAL, "cannot start the thread that reads rank %d's messages", peer);
    }
    m->peer[peer].reading = 1;
    return PML_OK;
}

/* ---- beats, goodbyes, closing ------------------------------------------------------------ */

void pml_tcp_beat(pml_tcp *m)
{
    for (int r = 0; r < m->base.world; r++) {
        pml_tcp_peer *q = &m->peer[r];
        if (r == m->base.rank || pthread_mutex_trylock(&q->wmu)) continue; /* a frame going out is a beat too */
        struct pollfd pf = {q->fd, POLLOUT, 0};
        pml_err ignored = {0};
        /* Room in the socket takes a header whole; the deadline only guards the rare
         * split write, so the heartbeat thread never waits on a stalled peer. */
        if (!atomic_load(&q->broken) && poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT))
            write_frame(m, r, PML_TCP_BEAT, 0, NULL, NULL, 0, pml_live_now() + 1, "beating", &ignored);
        pthread_mutex_unlock(&q->wmu);
    }
}

void pml_tcp_goodbye(pml_tcp *m, int failed, const char *why)
{
    char bye[PML_LIVE_WHY];
    snprintf(bye, sizeof bye, "%c%s", failed ? '1' : '0', why ? why : "");
    const void *part[1] = {bye};
    size_t len[1] = {sizeof bye};
    double until = pml_live_now() + 1;
    for (int r = 0; r < m->base.world; r++) {
        pthread_mutex_lock(&m->mu);
        int here = r != m->base.rank && m->live.state && m->live.state[r] == PML_LIVE_HERE;
        pthread_mutex_unlock(&m->mu);
        if (!here) continue;
        double left = until - pml_live_now();
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        left = left > 0 ? left : 0;
        t.tv_sec += (time_t)left;
        t.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
        if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
        if (pthread_mutex_timedlock(&m->peer[r].wmu, &t)) continue; /* a writer stuck on it: the peer has the timeout */
        pml_err ignored = {0};
        write_frame(m, r, PML_TCP_BYE, 0, part, len, 1, until, "saying goodbye", &ignored);
        pthread_mutex_unlock(&m->peer[r].wmu);
    }
}

void pml_tcp_close_all(pml_tcp *m, double linger)
{
    int W = m->base.world;
    atomic_store(&m->stop, 1);
    for (int r = 0; r < W; r++)
        if (m->peer[r].fd >= 0) shutdown(m->peer[r].fd, linger > 0 ? SHUT_WR : SHUT_RDWR);
    /* The peers close their ends when they leave too: each reader then sees the end of
     * its stream, having taken in everything before it. */
    for (double until = pml_live_now() + linger; linger > 0 && pml_live_now() < until;) {
        int open = 0;
        for (int r = 0; r < W; r++) open += m->peer[r].reading && !atomic_load(&m->peer[r].done);
        if (!open) break;
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    for (int r = 0; r < W; r++)
        if (m->peer[r].fd >= 0) shutdown(m->peer[r].fd, SHUT_RDWR);
    for (int r = 0; r < W; r++) {
        pml_tcp_peer *q = &m->peer[r];
        if (q->reading) pthread_join(q->reader, NULL);
        q->reading = 0;
        if (q->fd >= 0) close(q->fd);
        q->fd = -1;
        while (q->head) {
            pml_tcp_msg *next = q->head->next;
            free(q->head);
            q->head = next;
        }
        q->tail = NULL;
    }
}

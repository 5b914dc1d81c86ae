/* dist_tcp.c — pml_dist over TCP (see dist_tcp.h): start-up through rank 0, the
 * heartbeat, sums and moves between ranks, and leaving. Sums go through rank 0 in rank
 * order, as over MPI, so every rank adds the same numbers in the same order. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "exec/ranks.h"
#include "exec/tcp/tcp_impl.h"

enum { HELLO_VERSION = 1 };

/* What a rank says when it connects: who it is and where it listens. */
typedef struct hello {
    uint32_t magic, version;
    int32_t rank, world;
    uint32_t port, pad;
} hello;

/* Rank 0's answer to each rank: `world` addresses, or 0 and why not. */
typedef struct table_head {
    uint32_t count, pad;
    char why[PML_LIVE_WHY];
} table_head;

typedef struct addr {
    struct sockaddr_storage sa;
    uint32_t len, pad;
} addr;

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static int ms_until(double deadline)
{
    double left = deadline - pml_live_now();
    return left <= 0 ? 0 : left > 1 ? 1000 : (int)(left * 1000) + 1;
}

/* Moves exactly len bytes on a blocking socket by `deadline`: 0, or -1 (errno set;
 * ETIMEDOUT at the deadline, ECONNRESET at the end of the stream). */
static int xfer_until(int fd, void *buf, size_t len, int out, double deadline)
{
    char *p = buf;
    while (len) {
        struct pollfd pf = {fd, out ? POLLOUT : POLLIN, 0};
        if (poll(&pf, 1, ms_until(deadline)) == 0) {
            if (pml_live_now() >= deadline) return errno = ETIMEDOUT, -1;
            continue;
        }
        ssize_t k = out ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, p, len, MSG_DONTWAIT);
        if (k == 0 && !out) return errno = ECONNRESET, -1;
        if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (k < 0) return -1;
        p += k, len -= (size_t)k;
    }
    return 0;
}

/* The master's address, resolved for a stream socket. */
static pml_status resolve(const pml_dist_tcp_conf *c, addr *out, pml_err *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->master_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(c->master_addr, port, &hints, &res);
    if (rc || !res)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "rank %d cannot resolve MASTER_ADDR '%s': %s", c->rank,
                           c->master_addr, rc ? gai_strerror(rc) : "no address");
    memset(out, 0, sizeof *out);
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = (uint32_t)res->ai_addrlen;
    freeaddrinfo(res);
    return PML_OK;
}

static void set_port(addr *a, int port)
{
    if (a->sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&a->sa)->sin_port = htons((uint16_t)port);
}

/* A listening socket on every address of `family`, on `port` (0: any); *bound its port. */
static pml_status listen_on(int family, int port, const char *note, int backlog, int rank, int *fd, int *bound,
                            pml_err *err)
{
    addr a = {.len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)};
    a.sa.ss_family = (sa_family_t)family;
    if (family == AF_INET6)
        ((struct sockaddr_in6 *)&a.sa)->sin6_addr = in6addr_any;
    else
        ((struct sockaddr_in *)&a.sa)->sin_addr.s_addr = htonl(INADDR_ANY);
    set_port(&a, port);
    int one = 1;
    *fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0 || setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(*fd, (struct sockaddr *)&a.sa, a.len) || listen(*fd, backlog))
        return pml_err_set(err, PML_ERR_IO, "rank %d cannot listen on port %d%s: %s", rank, port, note ? note : "",
                           strerror(errno));
    socklen_t len = sizeof a.sa;
    if (getsockname(*fd, (struct sockaddr *)&a.sa, &len))
        return pml_err_set(err, PML_ERR_IO, "rank %d: getsockname: %s", rank, strerror(errno));
    *bound = ntohs(a.sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a.sa)->sin6_port
                                              : ((struct sockaddr_in *)&a.sa)->sin_port);
    return PML_OK;
}

static const char *show(const addr *a, char *buf, size_t size)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)&a->sa, a->len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(buf, size, "(an address)");
    else
        snprintf(buf, size, a->sa.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    return buf;
}

/* Connects to `a`, trying again until `deadline` (the listener may not be up yet). */
static pml_status connect_until(pml_tcp *m, const addr *a, int to, double deadline, int *out, pml_err *err)
{
    int last = 0;
    while (pml_live_now() < deadline) {
        int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return pml_err_set(err, PML_ERR_IO, "rank %d: socket: %s", m->base.rank, strerror(errno));
        int rc = connect(fd, (const struct sockaddr *)&a->sa, a->len);
        if (rc && errno == EINPROGRESS) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            poll(&pf, 1, ms_until(deadline));
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = pf.revents & POLLOUT && !soerr ? 0 : -1;
            errno = soerr ? soerr : ETIMEDOUT;
        }
        if (!rc) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            *out = fd;
            return PML_OK;
        }
        last = errno;
        close(fd);
        sleep_s(0.05);
    }
    char where[96];
    return pml_err_set(err, PML_ERR_IO, "rank %d could not connect to rank %d at %s within %.0f s: %s", m->base.rank,
                       to, show(a, where, sizeof where), m->timeout, last ? strerror(last) : "timed out");
}

/* ---- start-up ---------------------------------------------------------------------------- */

/* Rank 0: every other rank connects and says hello; each gets the table of addresses. */
static pml_status gather_ranks(pml_tcp *m, int lfd, double deadline, pml_err *err)
{
    int W = m->base.world, have = 0;
    addr *table = calloc((size_t)W, sizeof *table);
    if (!table) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    table_head th = {.count = (uint32_t)W};
    pml_status st = PML_OK;
    while (have < W - 1 && !st) {
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, ms_until(deadline)) <= 0) {
            if (pml_live_now() < deadline) continue;
            char missing[256] = "";
            size_t at = 0;
            for (int r = 1; r < W && at + 16 < sizeof missing; r++)
                if (m->peer[r].fd < 0)
                    at += (size_t)snprintf(missing + at, sizeof missing - at, "%s%d", at ? ", " : "", r);
            st = pml_err_set(err, PML_ERR_IO, "rank 0 waited %.0f s for the other ranks to connect; missing: %s",
                             m->timeout, missing);
            break;
        }
        addr from = {.len = sizeof from.sa};
        socklen_t len = sizeof from.sa;
        int fd = accept4(lfd, (struct sockaddr *)&from.sa, &len, SOCK_CLOEXEC);
        if (fd < 0) continue;
        from.len = len;
        hello h;
        char where[96];
        if (xfer_until(fd, &h, sizeof h, 0, deadline)) {
            close(fd); /* a stray connection, not a rank */
            continue;
        }
        if (h.magic != PML_TCP_MAGIC || h.version != HELLO_VERSION)
            snprintf(th.why, sizeof th.why, "a process at %s is not a PML rank of this version",
                     show(&from, where, sizeof where));
        else if (h.world != W)
            snprintf(th.why, sizeof th.why, "rank %d (at %s) says the world has %d ranks, rank 0 says %d", h.rank,
                     show(&from, where, sizeof where), h.world, W);
        else if (h.rank < 1 || h.rank >= W)
            snprintf(th.why, sizeof th.why, "a process at %s says it is rank %d of %d",
                     show(&from, where, sizeof where), h.rank, W);
        else if (m->peer[h.rank].fd >= 0)
            snprintf(th.why, sizeof th.why, "two processes say they are rank %d (one at %s)", h.rank,
                     show(&from, where, sizeof where));
        if (th.why[0]) {
            th.count = 0;
            xfer_until(fd, &th, sizeof th, 1, pml_live_now() + 1);
            close(fd);
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "%s", th.why);
            break;
        }
        table[h.rank] = from;
        set_port(&table[h.rank], (int)h.port);
        m->peer[h.rank].fd = fd;
        have++;
    }
    if (st) th.count = 0;
    if (st && !th.why[0])
        snprintf(th.why, sizeof th.why, "%.*s", (int)sizeof th.why - 1, err ? err->msg : "rank 0 failed to start");
    for (int r = 1; r < W; r++) { /* the table, or why there is none */
        if (m->peer[r].fd < 0) continue;
        int bad = xfer_until(m->peer[r].fd, &th, sizeof th, 1, deadline + 1) ||
                  (!st && xfer_until(m->peer[r].fd, table, sizeof *table * (size_t)W, 1, deadline + 1));
        if (bad && !st)
            st = pml_err_set(err, PML_ERR_IO, "rank 0 could not send rank %d the addresses: %s", r, strerror(errno));
    }
    free(table);
    return st;
}

/* Rank r > 0: hello to rank 0, the table back, then a connection to each rank in
 * [1, r) and one accepted from each rank above. */
static pml_status join_ranks(pml_tcp *m, const addr *master, int lfd, int port, double deadline, pml_err *err)
{
    int W = m->base.world, me = m->base.rank;
    hello h = {PML_TCP_MAGIC, HELLO_VERSION, me, W, (uint32_t)port, 0};
    pml_status st = connect_until(m, master, 0, deadline, &m->peer[0].fd, err);
    if (st) return st;
    table_head th;
    char where[96];
    if (xfer_until(m->peer[0].fd, &h, sizeof h, 1, deadline) ||
        xfer_until(m->peer[0].fd, &th, sizeof th, 0, deadline + 2))
        return pml_err_set(err, PML_ERR_IO, "rank %d: rank 0 at %s did not answer within %.0f s: %s", me,
                           show(master, where, sizeof where), m->timeout, strerror(errno));
    if (th.count != (uint32_t)W) {
        th.why[PML_LIVE_WHY - 1] = 0;
        return pml_err_set(err, PML_ERR_INVALID_ARG, "rank 0 refused rank %d: %s", me, th.why);
    }
    addr *table = calloc((size_t)W, sizeof *table);
    if (!table) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (xfer_until(m->peer[0].fd, table, sizeof *table * (size_t)W, 0, deadline + 2))
        st = pml_err_set(err, PML_ERR_IO, "rank %d: the addresses from rank 0 were cut off: %s", me, strerror(errno));
    for (int q = 1; q < me && !st; q++) {
        if (table[q].len > sizeof table[q].sa) {
            st = pml_err_set(err, PML_ERR_IO, "rank %d: rank 0 sent a damaged address for rank %d", me, q);
            break;
        }
        st = connect_until(m, &table[q], q, deadline, &m->peer[q].fd, err);
        if (!st && xfer_until(m->peer[q].fd, &h, sizeof h, 1, deadline))
            st = pml_err_set(err, PML_ERR_IO, "rank %d: rank %d did not take its hello: %s", me, q, strerror(errno));
    }
    free(table);
    for (int left = W - 1 - me; left > 0 && !st;) {
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, ms_until(deadline)) <= 0) {
            if (pml_live_now() < deadline) continue;
            st = pml_err_set(err, PML_ERR_IO, "rank %d waited %.0f s for %d higher ranks to connect", me, m->timeout,
                             left);
            break;
        }
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        hello got;
        if (fd < 0) continue;
        if (xfer_until(fd, &got, sizeof got, 0, deadline) || got.magic != PML_TCP_MAGIC || got.rank <= me ||
            got.rank >= W || m->peer[got.rank].fd >= 0) {
            close(fd);
            continue;
        }
        m->peer[got.rank].fd = fd;
        left--;
    }
    return st;
}

/* ---- heartbeat -------------------------------------------------------------------------- */

static double beat_period(const pml_tcp *m) { return m->timeout / 10 < 0.5 ? m->timeout / 10 : 0.5; }

static void *beat_main(void *arg)
{
    pml_tcp *m = arg;
    double period = beat_period(m), next = 0;
    while (!atomic_load(&m->stop)) {
        double now = pml_live_now();
        if (now >= next) {
            pml_tcp_beat(m);
            next = now + period;
        }
        pthread_mutex_lock(&m->mu);
        pml_live_look(&m->live, pml_live_now());
        pthread_mutex_unlock(&m->mu);
        sleep_s(period / 10);
    }
    return NULL;
}

/* ---- sums and moves ---------------------------------------------------------------------- */

static pml_status send1(pml_tcp *m, int peer, uint64_t tag, const void *buf, size_t bytes, const char *what,
                        pml_err *err)
{
    return pml_tcp_send(m, peer, PML_TCP_CTL, tag, &buf, &bytes, 1, what, err);
}

static pml_status recv1(pml_tcp *m, int peer, uint64_t tag, void *buf, size_t bytes, const char *what, pml_err *err)
{
    return pml_tcp_recv(m, peer, PML_TCP_CTL, tag, &buf, &bytes, 1, NULL, what, err);
}

static pml_status tcp_sum(pml_dist *d, double *x, int n, pml_err *err)
{
    pml_tcp *m = (pml_tcp *)d;
    const char *what = "summing the gradient norm";
    size_t bytes = sizeof(double) * (size_t)n;
    double *all = malloc(bytes * (size_t)d->world + 1);
    if (!all) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    memcpy(all + (size_t)d->rank * (size_t)n, x, bytes);
    pml_status st = PML_OK;
    if (d->rank == 0) { /* one rank at a time, so a silent one is named */
        for (int r = 1; r < d->world && !st; r++)
            st = recv1(m, r, PML_TCP_TAG_GATHER, all + (size_t)r * (size_t)n, bytes, what, err);
        for (int r = 1; r < d->world && !st; r++)
            st = send1(m, r, PML_TCP_TAG_BCAST, all, bytes * (size_t)d->world, what, err);
    } else {
        st = send1(m, 0, PML_TCP_TAG_GATHER, x, bytes, what, err);
        if (!st) st = recv1(m, 0, PML_TCP_TAG_BCAST, all, bytes * (size_t)d->world, what, err);
    }
    for (int i = 0; i < n && !st; i++) {
        x[i] = 0;
        for (int r = 0; r < d->world; r++) x[i] += all[(size_t)r * (size_t)n + (size_t)i];
    }
    free(all);
    return st;
}

/* Replica 0's rank of the stage takes every other replica's buffers in one message
 * each, adds them in replica order and sends the sums back. */
static pml_status tcp_sum_replicas(pml_dist *d, int stage, float *const *x, const size_t *len, int n, pml_err *err)
{
    pml_tcp *m = (pml_tcp *)d;
    const char *what = "summing gradients over replicas";
    int root = pml_dist_owner(d, 0, stage);
    uint64_t tag = PML_TCP_TAG_REPLICAS + (uint64_t)stage;
    size_t *bytes = malloc(sizeof *bytes * (size_t)(n + 1)), total = 0;
    if (!bytes) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) bytes[i] = sizeof(float) * len[i], total += len[i];
    pml_status st = PML_OK;
    if (d->rank != root) {
        st = pml_tcp_send(m, root, PML_TCP_CTL, tag, (const void *const *)x, bytes, n, what, err);
        if (!st) st = pml_tcp_recv(m, root, PML_TCP_CTL, tag, (void *const *)x, bytes, n, NULL, what, err);
        free(bytes);
        return st;
    }
    float *tmp = malloc(sizeof(float) * total + 1), **tx = malloc(sizeof *tx * (size_t)(n + 1));
    if (!tmp || !tx) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (size_t i = 0, at = 0; i < (size_t)n && !st; at += len[i], i++) tx[i] = tmp + at;
    for (int k = 1; k < d->replicas && !st; k++) {
        st = pml_tcp_recv(m, pml_dist_owner(d, k, stage), PML_TCP_CTL, tag, (void *const *)tx, bytes, n, NULL, what,
                          err);
        for (int i = 0; i < n && !st; i++)
            for (size_t j = 0; j < len[i]; j++) x[i][j] += tx[i][j];
    }
    for (int k = 1; k < d->replicas && !st; k++)
        st =
            pml_tcp_send(m, pml_dist_owner(d, k, stage), PML_TCP_CTL, tag, (const void *const *)x, bytes, n, what, err);
    free(tmp);
    free(tx);
    free(bytes);
    return st;
}

static pml_status tcp_move(pml_dist *d, int from, int to, void *buf, size_t bytes, pml_err *err)
{
    pml_tcp *m = (pml_tcp *)d;
    if (from == to || (d->rank != from && d->rank != to)) return PML_OK;
    return d->rank == from ? send1(m, to, PML_TCP_TAG_MOVE, buf, bytes, "sending parameters", err)
                           : recv1(m, from, PML_TCP_TAG_MOVE, buf, bytes, "receiving parameters", err);
}

/* ---- start and leave ---------------------------------------------------------------------- */

static void tcp_abandon(pml_dist *d, const char *why)
{
    pml_tcp *m = (pml_tcp *)d;
    if (m->beating && !atomic_exchange(&m->said_goodbye, 1)) pml_tcp_goodbye(m, 1, why);
    atomic_store(&m->failed, 1);
}

static void tcp_destroy(pml_dist *d)
{
    pml_tcp *m = (pml_tcp *)d;
    if (!m) return;
    if (m->beating && !atomic_load(&m->failed) && !atomic_exchange(&m->said_goodbye, 1))
        pml_tcp_goodbye(m, 0, "it ended its run");
    atomic_store(&m->stop, 1);
    if (m->beating) pthread_join(m->beat_thread, NULL);
    if (m->peer) pml_tcp_close_all(m, atomic_load(&m->failed) ? 0 : 2);
    for (int r = 0; m->peer && r < d->world; r++) pthread_mutex_destroy(&m->peer[r].wmu);
    free(m->peer);
    pthread_cond_destroy(&m->arrived);
    pthread_mutex_destroy(&m->mu);
    pml_live_free(&m->live);
    free(m);
}

static pml_status start(pml_tcp *m, const pml_dist_tcp_conf *c, pml_err *err)
{
    int W = c->world, me = c->rank, lfd = -1, port = 0;
    if (!c->master_addr || !c->master_addr[0] || c->master_port < 1 || c->master_port > 65535)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "rank %d of %d needs the address and port where rank 0 listens (MASTER_ADDR and "
                           "MASTER_PORT, 1 to 65535)",
                           me, W);
    pml_rank_place place;
    pml_status st = pml_ranks_place(c->devices, W, c->replicas > 1 ? c->replicas : 1, me, &place, err);
    if (st) return st;
    m->base.first = place.first;
    m->base.last = place.last;
    m->base.replica = place.replica;
    m->base.replicas = place.replicas;
    addr master;
    if ((st = resolve(c, &master, err))) return st;
    double deadline = pml_live_now() + m->timeout;
    st = listen_on(master.sa.ss_family, me == 0 ? c->master_port : 0, me == 0 ? c->port_note : NULL, W, me, &lfd, &port,
                   err);
    if (!st) st = me == 0 ? gather_ranks(m, lfd, deadline, err) : join_ranks(m, &master, lfd, port, deadline, err);
    if (lfd >= 0) close(lfd);
    if (st) return st;
    int one = 1;
    for (int r = 0; r < W; r++)
        if (r != me) setsockopt(m->peer[r].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((st = pml_live_init(&m->live, W, me, m->timeout, beat_period(m), pml_live_now(), err))) return st;
    for (int r = 0; r < W && !st; r++)
        if (r != me) st = pml_tcp_read_start(m, r, err);
    if (st) return st;
    if (pthread_create(&m->beat_thread, NULL, beat_main, m))
        return pml_err_set(err, PML_ERR_INTERNAL, "cannot start the heartbeat thread");
    m->beating = 1;
    return PML_OK;
}

pml_status pml_dist_tcp_create(const pml_dist_tcp_conf *conf, pml_dist **out, pml_err *err)
{
    *out = NULL;
    pml_tcp *m = calloc(1, sizeof *m);
    if (!m) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    m->base = (pml_dist){.rank = conf->rank,
                         .world = conf->world,
                         .devices = conf->devices,
                         .schedule = conf->schedule,
                         .transport_create = pml_tcp_transport_create,
                         .sum = tcp_sum,
                         .sum_replicas = tcp_sum_replicas,
                         .move = tcp_move,
                         .abandon = tcp_abandon,
                         .destroy = tcp_destroy};
    m->timeout = conf->timeout_s > 0 ? conf->timeout_s : 60;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->arrived, NULL);
    m->peer = conf->world > 0 ? calloc((size_t)conf->world, sizeof *m->peer) : NULL;
    if (!m->peer) {
        tcp_destroy(&m->base);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; r < conf->world; r++) {
        m->peer[r].fd = -1;
        pthread_mutex_init(&m->peer[r].wmu, NULL);
    }
    pml_status st = start(m, conf, err);
    if (st) {
        atomic_store(&m->failed, 1);
        tcp_destroy(&m->base);
        return st;
    }
    *out = &m->base;
    return PML_OK;
}

/* tcp_impl.h — what the TCP dist's files share (dist_tcp.h says what it does): the
 * state, and the wire (wire_tcp.c) every exchange goes through.
 *
 * The wire: one stream socket between each pair of ranks, carrying frames — a header
 * (PML_TCP_MAGIC, channel, tag, length) and that many bytes. A reader thread per peer
 * takes every frame in as it arrives, into that peer's queue of arrived messages, so a
 * sender never waits for its receiver to ask (two neighbours sending to each other
 * cannot deadlock) and a stopped receiver only stops its own reader. Every byte read
 * counts as hearing the peer (exec/liveness.h); a goodbye frame says why a peer leaves,
 * and a connection that closes without one is a peer that died, known at once.
 *
 * pml_tcp_send writes one frame from n parts, under the peer's write lock; it waits
 * only for room in the socket, and gives up when the peer is gone (liveness.h) or the
 * connection breaks. pml_tcp_recv takes the first arrived frame of (channel, tag) from
 * the peer, in arrival order, whose length must be the parts' total, and copies it into
 * the parts; it waits on a condition, giving up when the peer is gone or *aborted is
 * set. Frames of one sender on one (channel, tag) are taken in the order they were
 * sent, which is how messages match. Both are safe from any thread. */
#ifndef PML_TRAIN_TCP_IMPL_H
#define PML_TRAIN_TCP_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "exec/liveness.h"
#include "exec/tcp/dist_tcp.h"

#define PML_TCP_MAGIC 0x544c4d50u /* "PMLT": also tells a stream out of step */

/* Channels of a frame. CTL frames carry the dist's own exchanges (tags below), DATA
 * frames the transport's boundary messages (tag kind·M + mb). */
enum { PML_TCP_CTL = 1, PML_TCP_DATA = 2, PML_TCP_BEAT = 3, PML_TCP_BYE = 4 };
enum {
    PML_TCP_TAG_GATHER = 1,
    PML_TCP_TAG_BCAST = 2,
    PML_TCP_TAG_MOVE = 3,
    PML_TCP_TAG_LINK = 6,
    PML_TCP_TAG_REPLICAS = 16
};

typedef struct pml_tcp_msg {
    struct pml_tcp_msg *next;
    uint32_t chan;
    uint64_t tag;
    size_t len;
    unsigned char data[];
} pml_tcp_msg;

typedef struct pml_tcp_peer {
    int fd;              /* -1 for this rank's own entry */
    pthread_mutex_t wmu; /* one frame written at a time */
    pthread_t reader;
    int reading;              /* the reader thread was started */
    atomic_int done;          /* ... and has ended */
    atomic_int broken;        /* a write failed part-way: the stream is out of step */
    pml_tcp_msg *head, *tail; /* arrived, not yet taken (under pml_tcp.mu) */
} pml_tcp_peer;

typedef struct pml_tcp {
    pml_dist base;
    pml_tcp_peer *peer; /* [world] */
    double timeout;
    atomic_int failed;       /* a peer is gone or the wire broke: leave without waiting */
    atomic_int stop;         /* the threads' cue */
    atomic_int said_goodbye; /* to the other ranks, once */
    pthread_t beat_thread;
    int beating;
    pthread_mutex_t mu;     /* the queues and live */
    pthread_cond_t arrived; /* a frame came in, or a peer left */
    pml_live live;
} pml_tcp;

pml_status pml_tcp_send(pml_tcp *m, int peer, uint32_t chan, uint64_t tag, const void *const *part, const size_t *len,
                        int n, const char *what, pml_err *err);
pml_status pml_tcp_recv(pml_tcp *m, int peer, uint32_t chan, uint64_t tag, void *const *part, const size_t *len, int n,
                        const atomic_int *aborted, const char *what, pml_err *err);

/* Starts peer's reader thread on its connected socket. */
pml_status pml_tcp_read_start(pml_tcp *m, int peer, pml_err *err);

/* A beat to every peer whose socket has room now; never waits. */
void pml_tcp_beat(pml_tcp *m);

/* Tells every peer still here that this rank leaves (failed or ended its run) and why,
 * spending at most a second: a peer that does not take it still has the timeout. */
void pml_tcp_goodbye(pml_tcp *m, int failed, const char *why);

/* Ends every reader and closes the sockets. After a run that ended well the peers are
 * given up to `linger` seconds to close their ends first, so that nothing they sent is
 * cut off; after a failure nothing is waited for. */
void pml_tcp_close_all(pml_tcp *m, double linger);

pml_status pml_tcp_transport_create(pml_dist *d, pml_backend_inst *be, int stages, int64_t microbatches,
                                    pml_transport **out, pml_err *err);

#endif

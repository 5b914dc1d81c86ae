/* test_device_ranks.c — ranks whose backend keeps its tensors on a device (a GPU
 * backend's case) move them through host copies (exec/staging.h), launched by
 * ranks_test.py under mpirun with 2 or 4 processes:
 *
 *   The device here is a stand-in: the CPU backend's slots under a device kind, whose
 *   boundary and gradient buffers it lists at addresses no process can read (the real
 *   address with its top bits flipped, as unreadable as a GPU pointer), copied only by
 *   its copy_buf. So a message or a gradient sum that skipped the host copy would crash,
 *   and one that skipped the copy back would train on stale bytes: the bits would differ.
 *
 *   Each rank trains, with the CPU backend and then with the stand-in, a plain 2-stage
 *   model (activations and gradients between the ranks; with 4 processes, 2 replicas
 *   whose gradients are summed) and a model whose weight is tied across its 2 stages
 *   (the copies' gradients added across the ranks), and checks that every weight of its
 *   own stages and every step's loss are the same bits both ways.
 *
 *   Then again with the stand-in linking the two ends device to device (backend_ops.h's
 *   peer_*, as NCCL would; here MPI messages of the real buffers on a communicator of
 *   its own): the messages between the stages take the links, not host copies, in one
 *   order on both ends, to the same bits; with 2 replicas each stage's copies also form
 *   a group (peer_group, peer_sum: NCCL's all-reduce; here MPI messages adding them in
 *   replica order), and the plain model's gradient sums go device to device too: no
 *   host copy at all. Replicas that share a device form no group (NCCL refuses one
 *   device twice): their sums go through the host, to the same bits.
 *
 *   With the argument "tcp" the ranks meet over TCP instead (exec/tcp/dist_tcp.h, from
 *   MASTER_ADDR and MASTER_PORT): the same checks, the links agreed over its frames (the
 *   stand-in's own transfers still MPI messages, MPI started here for them).
 *
 * Every rank prints its checks; rank 0 prints "RESULT ok" or "RESULT FAIL: ...", which
 * the runner reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_ops.h"
#include "compile_plan.h"
#include "cpu/stage.h"
#include "exec/dist.h"
#include "exec/feed.h"
#include "exec/mpi/dist_mpi.h"
#include "exec/pipeline.h"
#include "exec/ranks.h"
#include "exec/tcp/dist_tcp.h"

#include <mpi.h>

enum { STEPS = 3 };

static const char plain_text[] = "import \"nn\"\n"
                                 "model m(x: f32[B, 16]) -> f32[B, 4] {\n"
                                 "    place = auto(stages = 2)\n"
                                 "    h = tanh(linear(x, 32) as l0)\n"
                                 "    h = gelu(layernorm(linear(h, 32) as l1) as n1)\n"
                                 "    return linear(h, 4) as head\n"
                                 "}\n"
                                 "train m {\n"
                                 "    data = classes(features = 16, classes = 4, seed = 3)\n"
                                 "    loss = cross_entropy\n"
                                 "    optimizer = adamw(lr = 0.01)\n"
                                 "    grad_clip = 0.5\n"
                                 "    batch = 16, microbatches = 4, schedule = 1f1b\n"
                                 "    steps = 3, seed = 5\n"
                                 "}\n";

static const char tied_text[] = "import \"nn\"\n"
                                "model gpt(idx: i32[B, T]) -> f32[B, T, 32] {\n"
                                "    place = auto(stages = 2)\n"
                                "    param wte: [32, 32] = normal(0.02)\n"
                                "    h = gather(wte, idx)\n"
                                "    h = h + embedding(arange(dim(idx, 1)), 8, 32) as wpe\n"
                                "    h = block(h, 2) as b0\n"
                                "    h = layernorm(h) as ln_f\n"
                                "    return h @ transpose(wte)\n"
                                "}\n"
                                "train gpt {\n"
                                "    data = markov(vocab = 32, order = 1, seed = 3)\n"
                                "    loss = cross_entropy\n"
                                "    optimizer = adamw(lr = 1e-2)\n"
                                "    grad_clip = 0.5\n"
                                "    batch = 8, microbatches = 4\n"
                                "    T = 8\n"
                                "    steps = 3, seed = 5\n"
                                "}\n";

/* ---- the stand-in device ---------------------------------------------------------- */

static const uintptr_t HIDE = (uintptr_t)0xA5 << 56; /* a non-canonical address: any read faults */

static void *hidden(void *p) { return (void *)((uintptr_t)p ^ HIDE); }

static pml_status dev_boundary(pml_backend_ctx *b, int s, int kind, int64_t mb, pml_backend_buf *out, int cap, int *n,
                               pml_err *err)
{
    pml_status st = pml_cpu_backend_ops.boundary(b, s, kind, mb, out, cap, n, err);
    for (int i = 0; !st && i < *n && i < cap; i++) out[i].data = hidden(out[i].data), out[i].device = PML_DEVICE_CUDA;
    return st;
}

static pml_status dev_grads(pml_backend_ctx *b, int s, pml_backend_buf *out, int cap, int *n, pml_err *err)
{
    pml_status st = pml_cpu_backend_ops.grads(b, s, out, cap, n, err);
    for (int i = 0; !st && i < *n && i < cap; i++) out[i].data = hidden(out[i].data), out[i].device = PML_DEVICE_CUDA;
    return st;
}

static long copies[2]; /* to the host, from it */

static pml_status dev_copy_buf(pml_backend_ctx *b, int s, const pml_backend_buf *buf, void *host, int to_host,
                               pml_err *err)
{
    (void)b, (void)s, (void)err;
    void *dev = hidden(buf->data);
    memcpy(to_host ? host : dev, to_host ? dev : host, buf->bytes);
    __atomic_fetch_add(&copies[!to_host], 1, __ATOMIC_RELAXED); /* stage threads copy concurrently */
    return PML_OK;
}

/* ---- one run ------------------------------------------------------------------------ */

static int failures;
static pml_dist *dist;

/* ---- the stand-in's links (peer_*): MPI messages of the real buffers ---------------- */

enum { LINKS = 8, MAX_BUFS = 8 };
static MPI_Comm link_comm;
static struct {
    int peer, sends;
    MPI_Request rq[4 * MAX_BUFS]; /* the queued messages (every micro-batch of a step at most 4) */
    int n;
} links[LINKS];
static long peer_sends, peer_sums;

static int replicas_share; /* 1: a stage's replicas run on one device (no group: NCCL refuses it) */

static pml_status dev_peer_id(pml_backend_ctx *b, int stage, void *dev, void *id, pml_err *err)
{
    (void)b, (void)stage, (void)err;
    int d = replicas_share ? dist->rank % (dist->world / dist->replicas) : dist->rank; /* else each its own */
    memset(dev, 0, PML_BACKEND_PEER_DEV);
    memcpy(dev, &d, sizeof d);
    if (id) memset(id, 0x5a, PML_BACKEND_PEER_ID);
    return PML_OK;
}

static pml_status dev_peer_link(pml_backend_ctx *b, int link, int kind, int from, int sends, const void *id,
                                pml_err *err)
{
    (void)b;
    const unsigned char *x = id;
    int to = kind == PML_MSG_ACT ? from + 1 : from - 1;
    if (link < 0 || link >= LINKS || x[0] != 0x5a)
        return pml_err_set(err, PML_ERR_INTERNAL, "link %d: not the sender's identifier", link);
    links[link].sends = sends;
    links[link].peer = pml_dist_owner(dist, dist->replica, sends ? to : from);
    links[link].n = 0;
    return PML_OK;
}

/* Stage from's message of kind for mb: its buffers, as the CPU backend holds them. */
static int message(pml_backend_ctx *b, int kind, int from, int64_t mb, pml_backend_buf *buf)
{
    int n = 0;
    pml_err err = {0};
    if (pml_cpu_backend_ops.boundary(b, from, kind, mb, buf, MAX_BUFS, &n, &err) || n > MAX_BUFS) return -1;
    return n;
}

static pml_status dev_peer_move(pml_backend_ctx *b, int link, int kind, int from, int64_t mb, int send, pml_err *err)
{
    pml_backend_buf buf[MAX_BUFS];
    int n = message(b, kind, from, mb, buf);
    if (n < 0 || links[link].sends != send || links[link].n + n > 4 * MAX_BUFS)
        return pml_err_set(err, PML_ERR_INTERNAL, "link %d: a message it cannot take", link);
    for (int i = 0; i < n; i++) {
        MPI_Request *rq = &links[link].rq[links[link].n++];
        int rc = send ? MPI_Isend(buf[i].data, (int)buf[i].bytes, MPI_BYTE, links[link].peer, link, link_comm, rq)
                      : MPI_Irecv(buf[i].data, (int)buf[i].bytes, MPI_BYTE, links[link].peer, link, link_comm, rq);
        if (rc != MPI_SUCCESS) return pml_err_set(err, PML_ERR_IO, "link %d: MPI failed", link);
    }
    if (send) __atomic_fetch_add(&peer_sends, 1, __ATOMIC_RELAXED);
    return PML_OK;
}

static pml_status dev_peer_send(pml_backend_ctx *b, int link, int kind, int from, int64_t mb, pml_err *err)
{
    return dev_peer_move(b, link, kind, from, mb, 1, err);
}

static pml_status dev_peer_recv(pml_backend_ctx *b, int link, int kind, int from, int to, int64_t mb, pml_err *err)
{
    (void)to;
    return dev_peer_move(b, link, kind, from, mb, 0, err);
}

static int dev_peer_poll(pml_backend_ctx *b, int link, pml_err *err)
{
    (void)b;
    int done = 0;
    if (MPI_Testall(links[link].n, links[link].rq, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        return pml_err_set(err, PML_ERR_IO, "link %d: MPI failed", link), -1;
    if (done) links[link].n = 0;
    return done;
}

/* A replica group: its members' ranks, in replica order, and this one's place. */
static struct {
    int member[4], size, rank, stage;
} groups[LINKS];

static pml_status dev_peer_group(pml_backend_ctx *b, int link, int stage, int rank, int size, const void *id,
                                 pml_err *err)
{
    (void)b;
    const unsigned char *x = id;
    if (link < 0 || link >= LINKS || size > 4 || x[0] != 0x5a || rank != dist->replica || size != dist->replicas)
        return pml_err_set(err, PML_ERR_INTERNAL, "group %d: not stage %d's replicas", link, stage);
    groups[link].size = size, groups[link].rank = rank, groups[link].stage = stage;
    for (int k = 0; k < size; k++) groups[link].member[k] = pml_dist_owner(dist, k, stage);
    links[link].n = 0;
    return PML_OK;
}

/* Member 0 adds the others' sums to its own in replica order, as the host's sum does,
 * and sends the totals back; done on return (the poll then finds nothing queued). */
static pml_status dev_peer_sum(pml_backend_ctx *b, int link, int stage, pml_err *err)
{
    pml_backend_buf buf[64];
    int n = 0, tag = 100 + link;
    if (pml_cpu_backend_ops.grads(b, stage, buf, 64, &n, err) || n > 64 || groups[link].stage != stage)
        return pml_err_set(err, PML_ERR_INTERNAL, "group %d: not stage %d's sums", link, stage);
    for (int i = 0; i < n; i++) {
        float *x = buf[i].data, *tmp = malloc(buf[i].bytes + 1);
        int len = (int)(buf[i].bytes / sizeof(float)), rc = tmp ? MPI_SUCCESS : MPI_ERR_NO_MEM;
        if (groups[link].rank == 0) {
            for (int k = 1; k < groups[link].size && rc == MPI_SUCCESS; k++) {
                rc = MPI_Recv(tmp, len, MPI_FLOAT, groups[link].member[k], tag, link_comm, MPI_STATUS_IGNORE);
                for (int j = 0; j < len && rc == MPI_SUCCESS; j++) x[j] += tmp[j];
            }
            for (int k = 1; k < groups[link].size && rc == MPI_SUCCESS; k++)
                rc = MPI_Send(x, len, MPI_FLOAT, groups[link].member[k], tag, link_comm);
        } else if (rc == MPI_SUCCESS) {
            rc = MPI_Send(x, len, MPI_FLOAT, groups[link].member[0], tag, link_comm);
            if (rc == MPI_SUCCESS)
                rc = MPI_Recv(x, len, MPI_FLOAT, groups[link].member[0], tag, link_comm, MPI_STATUS_IGNORE);
        }
        free(tmp);
        if (rc != MPI_SUCCESS) return pml_err_set(err, PML_ERR_IO, "group %d: MPI failed", link);
    }
    __atomic_fetch_add(&peer_sums, 1, __ATOMIC_RELAXED);
    return PML_OK;
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("rank %d: FAIL %s:%d: ", dist->rank, __FILE__, __LINE__); \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

typedef struct outcome {
    int ok;
    double loss[STEPS];
    float *w; /* this rank's stages' weights, parameter by parameter */
    size_t n;
} outcome;

static int own(const pml_plan *pl, int q)
{
    int s = pl->nodes[pl->params[q].node].stage;
    return s >= dist->first && s < dist->last;
}

static outcome run(const pml_plan *pl, const pml_backend_ops *ops)
{
    outcome o = {0};
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    if (pml_feed_create(pl, &feed, &err)) goto out;
    pml_pipeline_opts opts = {
        .seed = 5, .threads = 1, .feed = pml_feed_fill, .feed_ctx = feed, .backend = ops, .dist = dist};
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) goto out;
    for (int k = 0; k < STEPS; k++) {
        pml_step_stats st;
        if (pml_pipeline_step(pipe, &st, &err)) goto out;
        o.loss[k] = st.loss;
    }
    for (int q = 0; q < pl->n_params; q++) o.n += own(pl, q) ? (size_t)pl->nodes[pl->params[q].node].numel : 0;
    if (!(o.w = malloc(sizeof(float) * (o.n + 1)))) goto out;
    for (int q = 0, at = 0; q < pl->n_params; q++) {
        if (!own(pl, q)) continue;
        int64_t c = pl->nodes[pl->params[q].node].numel;
        memcpy(o.w + at, pml_pipeline_param(pipe, q), sizeof(float) * (size_t)c);
        at += (int)c;
    }
    o.ok = 1;
out:
    if (!o.ok) printf("rank %d: run with backend %s: %s\n", dist->rank, ops->name, err.msg);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    return o;
}

/* The model `pl` trained on the CPU and on the stand-in to the same bits; `linked`: the
 * stand-in links its ends device to device. */
static void same_bits(const char *name, const pml_plan *pl, const pml_backend_ops *dev, int linked)
{
    long before[2] = {copies[0], copies[1]}, sends = peer_sends, sums = peer_sums;
    outcome cpu = run(pl, &pml_cpu_backend_ops), staged = run(pl, dev);
    CHECK(cpu.ok && staged.ok, "%s: a run failed", name);
    if (cpu.ok && staged.ok) {
        CHECK(cpu.n == staged.n && cpu.n > 0 && !memcmp(cpu.w, staged.w, sizeof(float) * cpu.n),
              "%s: the weights differ", name);
        CHECK(!memcmp(cpu.loss, staged.loss, sizeof cpu.loss), "%s: the losses differ (%.9g vs %.9g at step 1)", name,
              cpu.loss[0], staged.loss[0]);
        /* every step, each rank sends and receives between the stages: through the host,
         * or on the links (then only gradient sums go through the host) */
        long out = copies[0] - before[0], in = copies[1] - before[1], linked_sends = peer_sends - sends;
        long linked_sums = peer_sums - sums;
        if (!linked)
            CHECK(out >= STEPS && in >= STEPS, "%s: %ld copies to the host and %ld back", name, out, in);
        else if (replicas_share) /* the links, but no groups: the sums go through the host */
            CHECK(linked_sends >= STEPS && linked_sums == 0 && out >= STEPS && in >= STEPS,
                  "%s: replicas on one device: %ld messages on the links, %ld sums on groups, %ld copies out", name,
                  linked_sends, linked_sums, out);
        else /* the tied weight's copies still meet through the host (the executor's add_ties) */
            CHECK(linked_sends >= STEPS && (!strstr(name, "plain") || out + in == 0) &&
                      (dist->replicas == 1 || linked_sums >= STEPS),
                  "%s: %ld messages on the links, %ld gradient sums on the groups, %ld copies to the host and %ld back",
                  name, linked_sends, linked_sums, out, in);
    }
    printf("rank %d: %s%s: weights and losses compared, %ld copies out, %ld in, %ld linked sends, %ld group sums\n",
           dist->rank, name, linked ? " (linked)" : "", copies[0] - before[0], copies[1] - before[1],
           peer_sends - sends, peer_sums - sums);
    free(cpu.w), free(staged.w);
}

int main(int argc, char **argv)
{
    int tcp = argc > 1 && !strcmp(argv[1], "tcp"), provided = 0;
    pml_ranks env;
    pml_err err = {0};
    if (pml_ranks_from_env(&env, &err) || (env.world != 2 && env.world != 4)) {
        printf("RESULT FAIL: run me as 2 or 4 MPI ranks (%s)\n", err.msg);
        return 1;
    }
    pml_plan *plain = test_compile_plan("plain.pml", plain_text, NULL, &err);
    pml_plan *tied = plain ? test_compile_plan("tied.pml", tied_text, NULL, &err) : NULL;
    if (!tied || tied->conf.schedule != plain->conf.schedule) {
        printf("RESULT FAIL: rank %d: the models do not compile to plans of one schedule: %s\n", env.rank, err.msg);
        return 1;
    }
    pml_status st;
    if (tcp) {
        const char *port = getenv("MASTER_PORT");
        pml_dist_tcp_conf conf = {.devices = 2,
                                  .schedule = (int)plain->conf.schedule,
                                  .rank = env.rank,
                                  .world = env.world,
                                  .replicas = env.world / 2,
                                  .master_addr = getenv("MASTER_ADDR"),
                                  .master_port = port ? atoi(port) : 0};
        MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided); /* the stand-in's links only */
        st = pml_dist_tcp_create(&conf, &dist, &err);
    } else {
        pml_dist_mpi_conf conf = {.devices = 2,
                                  .schedule = (int)plain->conf.schedule,
                                  .rank = env.rank,
                                  .world = env.world,
                                  .replicas = env.world / 2};
        st = pml_dist_mpi_create(&conf, &dist, &err);
    }
    if (st) {
        printf("RESULT FAIL: rank %d cannot start: %s\n", env.rank, err.msg);
        return 1;
    }
    pml_backend_ops dev = pml_cpu_backend_ops;
    dev.name = "stand-in device";
    dev.device = PML_DEVICE_CUDA;
    dev.boundary = dev_boundary;
    dev.grads = dev_grads;
    dev.copy_buf = dev_copy_buf;
    same_bits("plain.pml", plain, &dev, 0);
    same_bits("tied.pml", tied, &dev, 0);
    MPI_Comm_dup(MPI_COMM_WORLD, &link_comm); /* MPI is up: the dist or main started it */
    pml_backend_ops linked = dev;
    linked.peer_id = dev_peer_id, linked.peer_link = dev_peer_link, linked.peer_send = dev_peer_send;
    linked.peer_recv = dev_peer_recv, linked.peer_poll = dev_peer_poll;
    linked.peer_group = dev_peer_group, linked.peer_sum = dev_peer_sum;
    same_bits("plain.pml", plain, &linked, 1);
    same_bits("tied.pml", tied, &linked, 1);
    if (dist->replicas > 1) {
        replicas_share = 1;
        same_bits("plain.pml, replicas sharing a device,", plain, &linked, 1);
        replicas_share = 0;
    }
    MPI_Comm_free(&link_comm);
    /* A device backend that cannot copy its buffers to the host is refused before any
     * message, naming what it lacks. */
    dev.copy_buf = NULL;
    pml_pipeline *pipe = NULL;
    pml_pipeline_opts opts = {.seed = 5, .threads = 1, .backend = &dev, .dist = dist};
    CHECK(pml_pipeline_create(plain, &opts, &pipe, &err) == PML_ERR_UNSUPPORTED && !pipe &&
              strstr(err.msg, "no copies of its device buffers to the host"),
          "a backend without copy_buf: %s", err.msg);
    pml_plan_free(plain), pml_plan_free(tied);
    double bad = failures;
    if (dist->sum(dist, &bad, 1, &err)) {
        printf("RESULT FAIL: rank %d: %s\n", dist->rank, err.msg);
        return 1;
    }
    if (dist->rank == 0) printf(bad ? "RESULT FAIL: %.0f failed checks\n" : "RESULT ok\n", bad);
    fflush(stdout);
    pml_dist_destroy(dist);
    if (tcp) MPI_Finalize();
    return bad != 0;
}

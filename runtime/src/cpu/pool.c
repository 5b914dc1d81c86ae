/* pool.c — a stage's worker threads (pool.h).
 *
 * A run publishes its job (fn, ctx, tasks), opens it (`state`, release) and then bumps
 * `gen` under the mutex, so a worker asleep on `wake` cannot miss it (it checks `gen`
 * under the same mutex before it sleeps). A worker that sees a new generation enters
 * the open job by adding itself to `state` (acquire: it then sees the job), takes tasks
 * (chunks, below) and leaves; the last to leave a closed job wakes the caller asleep on
 * `done`. The caller takes tasks too, and when none is left it closes the job and waits
 * only for the workers inside it, each finishing a task it took: a worker that has not
 * entered by then never will (it sees the job closed, or enters the next one, whose
 * fields it reads only after entering), so a run never waits for a thread that another
 * process holds off the core or that has yet to wake. Before, the caller waited for
 * every worker to check in, even one with nothing left to do: on a shared machine a
 * run with all its tasks done still waited for a worker to be scheduled (docs/perf.md,
 * "Inference threads on a shared machine").
 *
 * Tasks are dealt in chunks: thread w owns the w-th of T contiguous ranges of the
 * tasks and takes its own in order, then the others' (from where their owners are), so a
 * thread that joins late or is held off costs the run nothing but its share. Contiguous
 * ranges keep a thread on the same rows from op to op: a product split by rows, then the
 * fused group over its output, each read mostly what the same core wrote, not every
 * other tile from the other core's cache (a shared counter dealt them alternately). */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle thread polls before it sleeps: about 100 microseconds (4000 pauses
 * took 98 us on the Zen 4 machine); then, while the other side is known to be running
 * a task, up to about one task's time more (the thread's own last task's, at most
 * BUSY_MAX seconds), since that task ends within it: a worker out of tasks while the
 * caller runs the run's last one (the next run follows it by microseconds), and the
 * caller waiting for a worker inside. Sleeping there cost runs a futex wake-up each:
 * with tasks of 100-250 us (a GEMM's blocks at 256 rows) a worker that had left a run
 * slept before the caller's last task ended, started the next run late, and the caller
 * then waited, asleep too, for the worker's last task (docs/perf.md, "Inference
 * scaling from one thread to two"). Bounded by a task's time, not spun out to a fixed
 * length: on a machine shared with other work the thread waited for may be off its
 * core, and a spin then only takes a core from whoever has it. */
enum { SPIN = 4000, CLOCK_EVERY = 64, CLOSED = 1 << 30 };
#define BUSY_MAX 2e-3

struct pml_cpu_pool {
    int threads;
    pthread_t *tid;
    int started; /* workers running */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;
    atomic_int stop;
    /* The job. */
    pml_cpu_task_fn fn;
    void *ctx;
    int64_t tasks;
    struct chunk *chunk; /* per thread: its range of the tasks */
    atomic_int state; /* the workers inside the job, | CLOSED once the caller has closed it */
    pml_status st; /* the first failure, under mu */
    pml_err err;
    int timed;               /* pml_cpu_pool_time: set before a job opens, read after entering */
    pml_cpu_pool_span *span; /* per thread, each written by its own worker inside a job */
};

/* A thread's range of a run's tasks [.., end), `next` the first not yet taken; a cache
 * line each, since every thread updates its own. */
struct chunk {
    _Alignas(64) atomic_llong next;
    int64_t end;
};

typedef struct worker_arg {
    pml_cpu_pool *pool;
    int id;
} worker_arg;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* The next task to take: from the worker's own chunk, else from the others' in turn;
 * -1 when none is left. */
static int64_t take(pml_cpu_pool *p, int worker)
{
    for (int k = 0; k < p->threads; k++) {
        struct chunk *c = &p->chunk[(worker + k) % p->threads];
        if (atomic_load_explicit(&c->next, memory_order_relaxed) >= c->end) continue;
        int64_t t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t < c->end) return t;
    }
    return -1;
}

/* Runs tasks until none is left; how many it ran. */
static int64_t run_tasks(pml_cpu_pool *p, int worker)
{
    for (int64_t ran = 0;; ran++) {
        int64_t t = take(p, worker);
        if (t < 0) return ran;
        pml_err e = {0};
        pml_status s = p->fn(p->ctx, t, worker, &e);
        if (s) {
            pthread_mutex_lock(&p->mu);
            if (!p->st) {
                p->st = s;
                p->err = e;
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Enters the published job unless it is closed; 1 when entered. */
static int enter(pml_cpu_pool *p)
{
    int s = atomic_load_explicit(&p->state, memory_order_relaxed);
    while (!(s & CLOSED))
        if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acquire, memory_order_relaxed))
            return 1;
    return 0;
}

static double seconds(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The time of one of the `ran` tasks run from t0 to t1, at most BUSY_MAX; 0 for none. */
static double task_time(double t0, double t1, int64_t ran)
{
    double t = ran ? (t1 - t0) / (double)ran : 0;
    return t < BUSY_MAX ? t : BUSY_MAX;
}

/* Whether the caller is still inside the last run (the job not yet closed). */
static int caller_busy(pml_cpu_pool *p) { return !(atomic_load_explicit(&p->state, memory_order_relaxed) & CLOSED); }

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    pml_cpu_pool *p = w->pool;
    int id = w->id;
    free(w);
    unsigned seen = 0;
    double busy_until = 0; /* after a run: when the caller's last task should have ended */
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen; i++) {
            if (i >= SPIN && !(caller_busy(p) && (i % CLOCK_EVERY || seconds(CLOCK_MONOTONIC) < busy_until))) break;
            relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->stop)) return NULL;
        if (!enter(p)) continue;
        int timed = p->timed;
        double t0 = seconds(CLOCK_MONOTONIC), c0 = timed ? seconds(CLOCK_THREAD_CPUTIME_ID) : 0;
        int64_t ran = run_tasks(p, id);
        double t1 = seconds(CLOCK_MONOTONIC);
        busy_until = t1 + task_time(t0, t1, ran);
        pml_cpu_pool_span *sp = &p->span[id];
        if (timed && ran) {
            if (!sp->tasks) sp->t0 = t0;
            sp->t1 = t1;
            sp->cpu += seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
            sp->tasks += ran;
        }
        if (atomic_fetch_sub_explicit(&p->state, 1, memory_order_acq_rel) == (CLOSED | 1)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

void pml_cpu_pool_destroy(pml_cpu_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->tid[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tid);
    free(p->span);
    free(p->chunk);
    free(p);
}

pml_status pml_cpu_pool_create(int threads, pml_cpu_pool **out, pml_err *err)
{
    *out = NULL;
    if (threads < 2) return pml_err_set(err, PML_ERR_INVALID_ARG, "a thread pool needs 2 threads or more, not %d", threads);
    pml_cpu_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tid = calloc((size_t)threads, sizeof *p->tid)) ||
        !(p->span = calloc((size_t)threads, sizeof *p->span)) ||
        !(p->chunk = aligned_alloc(64, sizeof *p->chunk * (size_t)threads))) {
        if (p) free(p->tid), free(p->span);
        free(p);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    p->threads = threads;
    for (int w = 0; w < threads; w++) atomic_init(&p->chunk[w].next, 0), p->chunk[w].end = 0;
    atomic_init(&p->state, CLOSED);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < threads; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (w) *w = (worker_arg){p, i};
        if (!w || pthread_create(&p->tid[p->started], NULL, worker_main, w)) {
            free(w);
            pml_cpu_pool_destroy(p);
            return pml_err_set(err, PML_ERR_NOMEM, "cannot start a stage's worker thread %d of %d", i, threads - 1);
        }
        p->started++;
    }
    *out = p;
    return PML_OK;
}

int pml_cpu_pool_threads(const pml_cpu_pool *p) { return p ? p->threads : 1; }

void pml_cpu_pool_time(pml_cpu_pool *p, int on)
{
    if (!p) return;
    if (on)
        for (int i = 0; i < p->threads; i++) p->span[i] = (pml_cpu_pool_span){0};
    p->timed = on;
}

const pml_cpu_pool_span *pml_cpu_pool_spans(const pml_cpu_pool *p) { return p ? p->span : NULL; }

pml_status pml_cpu_pool_run(pml_cpu_pool *p, int64_t tasks, pml_cpu_task_fn fn, void *ctx, pml_err *err)
{
    if (!p || tasks <= 1) { /* the caller alone: in order, stopping at the first failure */
        for (int64_t t = 0; t < tasks; t++) {
            pml_status s = fn(ctx, t, 0, err);
            if (s) return s;
        }
        return PML_OK;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->tasks = tasks;
    p->st = PML_OK;
    for (int w = 0; w < p->threads; w++) {
        atomic_store_explicit(&p->chunk[w].next, tasks * w / p->threads, memory_order_relaxed);
        p->chunk[w].end = tasks * (w + 1) / p->threads;
    }
    atomic_store_explicit(&p->state, 0, memory_order_release); /* open */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    double t0 = seconds(CLOCK_MONOTONIC);
    int64_t ran = run_tasks(p, 0);
    double t1 = seconds(CLOCK_MONOTONIC), until = t1 + task_time(t0, t1, ran);
    /* No task is left to take: close, then wait for the workers inside. */
    int inside = atomic_fetch_or_explicit(&p->state, CLOSED, memory_order_acq_rel);
    for (int i = 0; inside; i++) {
        if (i >= SPIN && !(i % CLOCK_EVERY) && seconds(CLOCK_MONOTONIC) >= until) break;
        relax();
        inside = atomic_load_explicit(&p->state, memory_order_acquire) & ~CLOSED;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->state, memory_order_acquire) & ~CLOSED) pthread_cond_wait(&p->done, &p->mu);
    pml_status st = p->st;
    if (st && err) *err = p->err;
    pthread_mutex_unlock(&p->mu);
    return st;
}

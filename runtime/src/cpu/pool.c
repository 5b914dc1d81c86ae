/* pool.c — a stage's worker threads (pool.h).
 *
 * A run publishes its job (fn, ctx, tasks) and then bumps `gen` under the mutex, so a
 * worker that sees the new generation (acquire) sees the job, and a worker asleep on
 * `wake` cannot miss it (it checks `gen` under the same mutex before it sleeps). Tasks
 * are taken from `next`; every worker reports back by decrementing `running`, the last
 * one under the mutex to the caller asleep on `done`. The caller waits for all workers,
 * including any that found no task left, so that none is still reading this job when
 * the next is published. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* How long an idle thread polls before it sleeps: about 10-50 microseconds. */
enum { SPIN = 4000 };

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
    atomic_llong next;
    atomic_int running;
    pml_status st; /* the first failure, under mu */
    pml_err err;
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

static void run_tasks(pml_cpu_pool *p, int worker)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->tasks) return;
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

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    pml_cpu_pool *p = w->pool;
    int id = w->id;
    free(w);
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN; i++) {
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
        run_tasks(p, id);
        if (atomic_fetch_sub_explicit(&p->running, 1, memory_order_acq_rel) == 1) {
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
    free(p);
}

pml_status pml_cpu_pool_create(int threads, pml_cpu_pool **out, pml_err *err)
{
    *out = NULL;
    if (threads < 2) return pml_err_set(err, PML_ERR_INVALID_ARG, "a thread pool needs 2 threads or more, not %d", threads);
    pml_cpu_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tid = calloc((size_t)threads, sizeof *p->tid))) {
        free(p);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    p->threads = threads;
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
    atomic_store(&p->next, 0);
    atomic_store(&p->running, p->threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    for (int i = 0; atomic_load_explicit(&p->running, memory_order_acquire) > 0 && i < SPIN; i++) relax();
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->running, memory_order_acquire) > 0) pthread_cond_wait(&p->done, &p->mu);
    pml_status st = p->st;
    if (st && err) *err = p->err;
    pthread_mutex_unlock(&p->mu);
    return st;
}

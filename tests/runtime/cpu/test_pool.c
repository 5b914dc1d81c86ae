/* test_pool.c — a stage's worker threads (runtime/src/cpu/pool.h): every task runs once
 * per run, over thousands of runs back to back (the workers' spin and sleep paths both);
 * a failing task's status and message come back while the others still run; no pool
 * runs the tasks in order on the caller and stops at the first failure; a run whose
 * tasks the caller did alone does not wait for a worker that never got a core. */
#define _GNU_SOURCE /* sched_getcpu, SCHED_IDLE, pthread_setaffinity_np */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu_test.h"
#include "cpu_tests.h"
#include "cpu/pool.h"

enum { MAX_TASKS = 97 };

typedef struct job {
    atomic_int ran[MAX_TASKS];
    atomic_int workers_seen[8];
    int fail_at; /* -1: none */
} job;

static pml_status count_task(void *ctx, int64_t task, int worker, pml_err *err)
{
    job *j = ctx;
    atomic_fetch_add(&j->ran[task], 1);
    if (worker >= 0 && worker < 8) atomic_store(&j->workers_seen[worker], 1);
    if (task == j->fail_at) return pml_err_set(err, PML_ERR_INVALID_ARG, "task %lld failed", (long long)task);
    return PML_OK;
}

void test_pool_runs_every_task_once_and_reports_the_first_failure(void)
{
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    TCHECK(pml_cpu_pool_create(1, &pool, &err) == PML_ERR_INVALID_ARG && !pool, "a pool of 1 is refused");
    TCHECK(pml_cpu_pool_create(3, &pool, &err) == PML_OK && pml_cpu_pool_threads(pool) == 3, "pool: %s", err.msg);
    static job j;
    int bad = 0, others = 0;
    for (int run = 0; run < 3000 && !bad; run++) {
        int tasks = 1 + run % MAX_TASKS;
        memset(&j, 0, sizeof j);
        j.fail_at = -1;
        if (run % 500 == 499) usleep(2000); /* idle long enough for the workers to sleep */
        bad |= pml_cpu_pool_run(pool, tasks, count_task, &j, &err) != PML_OK;
        for (int t = 0; t < MAX_TASKS; t++) bad |= atomic_load(&j.ran[t]) != (t < tasks);
        others += atomic_load(&j.workers_seen[1]) | atomic_load(&j.workers_seen[2]);
    }
    TCHECK(!bad, "every task runs exactly once in every run");
    TCHECK(others > 0, "the workers take tasks too (in %d of 3000 runs)", others);
    memset(&j, 0, sizeof j);
    j.fail_at = 7;
    TCHECK(pml_cpu_pool_run(pool, 40, count_task, &j, &err) == PML_ERR_INVALID_ARG && strstr(err.msg, "task 7 failed"),
           "the failure comes back: '%s'", err.msg);
    int all = 1;
    for (int t = 0; t < 40; t++) all &= atomic_load(&j.ran[t]) == 1;
    TCHECK(all, "and the other tasks still ran");
    pml_cpu_pool_destroy(pool);

    memset(&j, 0, sizeof j);
    j.fail_at = 5;
    TCHECK(pml_cpu_pool_run(NULL, 40, count_task, &j, &err) == PML_ERR_INVALID_ARG, "no pool: the failure comes back");
    TCHECK(atomic_load(&j.ran[5]) == 1 && atomic_load(&j.ran[6]) == 0, "and the caller stopped there");
    TCHECK(atomic_load(&j.workers_seen[0]) && !atomic_load(&j.workers_seen[1]), "on the caller alone");
}

/* Task 0 of a run that worker 1 takes moves that worker onto the caller's core at the
 * idle scheduling class: from then on it runs only while the caller sleeps. */
static atomic_int held_off, caller_cpu;

static pml_status hold_off_task(void *ctx, int64_t task, int worker, pml_err *err)
{
    (void)ctx, (void)task, (void)err;
    if (worker == 1 && !atomic_load(&held_off)) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(atomic_load(&caller_cpu), &one);
        struct sched_param none = {0};
        if (!pthread_setaffinity_np(pthread_self(), sizeof one, &one) &&
            !pthread_setschedparam(pthread_self(), SCHED_IDLE, &none))
            atomic_store(&held_off, 1);
    }
    if (worker == 0) usleep(200); /* leaves the worker time to take a task */
    return PML_OK;
}

static pml_status empty_task(void *ctx, int64_t task, int worker, pml_err *err)
{
    (void)ctx, (void)task, (void)worker, (void)err;
    return PML_OK;
}

static double thread_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A worker that never gets a core (here: pinned to the caller's at the idle class, so
 * it runs only while the caller sleeps) costs the caller nothing once the caller has
 * done every task: 2,000 runs of two empty tasks take about a millisecond of the
 * caller's CPU. A caller that waited for every worker to check in (the pool before)
 * polled ~100 us per run, then slept until the worker ran: 0.2 s of CPU. CPU time, not
 * wall, so a busy machine cannot fail it. */
void test_pool_run_does_not_wait_for_a_worker_held_off_its_core(void)
{
    cpu_set_t was, one;
    if (pthread_getaffinity_np(pthread_self(), sizeof was, &was)) return;
    pml_cpu_pool *pool = NULL;
    pml_err err = {0};
    TCHECK(pml_cpu_pool_create(2, &pool, &err) == PML_OK, "pool: %s", err.msg);
    if (!pool) return;
    int cpu = sched_getcpu();
    CPU_ZERO(&one);
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    atomic_store(&caller_cpu, cpu < 0 ? 0 : cpu);
    atomic_store(&held_off, 0);
    int pinned = !pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    for (int i = 0; i < 200 && pinned && !atomic_load(&held_off); i++)
        pml_cpu_pool_run(pool, 8, hold_off_task, NULL, &err);
    if (!pinned || !atomic_load(&held_off)) {
        printf("note: cannot pin threads or use SCHED_IDLE here, so no worker to hold off\n");
    } else {
        double t0 = thread_cpu_s();
        int bad = 0;
        for (int r = 0; r < 2000; r++) bad |= pml_cpu_pool_run(pool, 2, empty_task, NULL, &err) != PML_OK;
        double used = thread_cpu_s() - t0;
        printf("2000 runs with the worker held off: %.1f ms of the caller's CPU\n", used * 1e3);
        TCHECK(!bad, "every run succeeds");
        TCHECK(used < 0.05, "the caller spent %.1f ms of CPU waiting for a worker that never joined", used * 1e3);
    }
    pml_cpu_pool_destroy(pool); /* the caller sleeps in the join: the worker gets the core to leave */
    pthread_setaffinity_np(pthread_self(), sizeof was, &was);
}

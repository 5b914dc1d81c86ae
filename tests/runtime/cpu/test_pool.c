/* test_pool.c — a stage's worker threads (runtime/src/cpu/pool.h): every task runs once
 * per run, over thousands of runs back to back (the workers' spin and sleep paths both);
 * a failing task's status and message come back while the others still run; no pool
 * runs the tasks in order on the caller and stops at the first failure. */
#include <stdatomic.h>
#include <string.h>
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

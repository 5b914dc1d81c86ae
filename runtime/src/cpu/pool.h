/* pool.h — the threads one CPU stage splits an op's independent pieces over (a fused
 * group's tiles, cpu/group.c), so that a stage given several threads uses them beyond
 * its GEMMs (which the GEMM provider threads itself).
 *
 * A pool of T threads is the caller and T - 1 workers made at create. pml_cpu_pool_run
 * hands out tasks 0..n-1 one at a time, thread w first from the w-th of T contiguous
 * ranges of them, then from the others' (the caller takes its share too; pool.c), and
 * returns when all have run; which thread runs which task is not fixed, so a
 * task writes only its own part of the output and, for scratch, the part of `worker`
 * (0..T-1) — then the result is the same bits at any T. Idle workers spin briefly (a
 * serving loop's next call, a stage's next op, is usually microseconds away; while the
 * caller still runs a run's last task, up to about a task's time more) and then sleep on
 * a condition variable, so a pool costs nothing while the stage runs a GEMM on the
 * provider's own threads or waits for a neighbour stage.
 *
 * Timing (a trace: pml_cpu_pool_time): while on, each worker adds up where it took part
 * in runs, for a trace's span per thread; off, nothing is measured.
 *
 * Errors: the first failing task's status and message are returned; the other tasks
 * still run (they are independent) and their failures are dropped. One run at a time
 * per pool, from the thread that made it; create and destroy are not thread-safe. */
#ifndef PML_CPU_POOL_H
#define PML_CPU_POOL_H

#include <stdint.h>

#include "core/error.h"

/* The least work, in multiply-adds, that a matrix product splits over a pool for
 * (cpu/matmul.c, cpu/stage_int8.c): below it, waking the workers (microseconds) costs
 * more than the share they would take. */
enum { PML_CPU_POOL_SPLIT_MACS = 1 << 18 };

typedef struct pml_cpu_pool pml_cpu_pool;
typedef pml_status (*pml_cpu_task_fn)(void *ctx, int64_t task, int worker, pml_err *err);

/* A pool of `threads` (>= 2; the caller is one of them). */
pml_status pml_cpu_pool_create(int threads, pml_cpu_pool **out, pml_err *err);
void pml_cpu_pool_destroy(pml_cpu_pool *p);
/* Its thread count; 1 for NULL (no pool: the caller alone). */
int pml_cpu_pool_threads(const pml_cpu_pool *p);
/* Runs fn(ctx, t, worker, err) for t in 0..tasks-1 over the pool (NULL: on the caller). */
pml_status pml_cpu_pool_run(pml_cpu_pool *p, int64_t tasks, pml_cpu_task_fn fn, void *ctx, pml_err *err);

/* One worker's part in the runs since pml_cpu_pool_time(p, 1): from its first task's
 * start to its last task's end (CLOCK_MONOTONIC, seconds), the CPU time it spent in them
 * (its CLOCK_THREAD_CPUTIME_ID, seconds) and how many tasks it ran (0: none). */
typedef struct pml_cpu_pool_span {
    double t0, t1, cpu;
    int64_t tasks;
} pml_cpu_pool_span;

/* on: clears the spans and measures the next runs; off: stops measuring. Between runs,
 * from the thread that runs them. */
void pml_cpu_pool_time(pml_cpu_pool *p, int on);
/* The spans of threads 0..threads-1 (the caller's, 0, is not measured: its time is the
 * caller's own); NULL for NULL. Read between runs. */
const pml_cpu_pool_span *pml_cpu_pool_spans(const pml_cpu_pool *p);

#endif

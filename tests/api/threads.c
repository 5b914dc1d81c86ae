/* threads.c — the CPU thread counts a caller sets are applied, observed from outside:
 * as the threads the process has while the work runs (a watcher thread counts the
 * entries of /proc/self/task and keeps the peak), never as a timing. More kernel threads
 * per stage show as more threads of the process in every GEMM provider PML uses
 * (oneDNN's OpenMP team, OpenBLAS's pool, the reference GEMM's own pthreads), so a count
 * that is ignored leaves the peak where one thread puts it. */
#define _DEFAULT_SOURCE /* DIR, usleep */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "api_test.h"

typedef struct watch {
    atomic_int stop;
    int peak;
} watch;

/* Threads of this process now. */
static int tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void *count_tasks(void *arg)
{
    watch *w = arg;
    while (!atomic_load(&w->stop)) {
        int n = tasks();
        if (n > w->peak) w->peak = n;
        usleep(200);
    }
    return NULL;
}

typedef int (*work_fn)(void *arg);

/* The most threads the process had while `work` ran (-1 when it failed). */
static int peak_threads(work_fn work, void *arg)
{
    watch w = {0};
    pthread_t t;
    if (pthread_create(&t, NULL, count_tasks, &w)) return -1;
    int failed = work(arg);
    atomic_store(&w.stop, 1);
    pthread_join(t, NULL);
    return failed ? -1 : w.peak;
}

typedef struct infer_work {
    pml_infer *inf;
    const pml_buffer *x;
    float *y;
    size_t y_bytes;
} infer_work;

static int infer_passes(void *arg)
{
    infer_work *w = arg;
    for (int pass = 0; pass < 8; pass++)
        if (pml_infer_run(w->inf, w->x, 1, w->y, w->y_bytes)) return 1;
    return 0;
}

static int train_steps(void *arg) { return pml_session_train(arg, 3, NULL) != PML_OK; }

API_CASE(pml_session_open_trains_on_the_threads_asked)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0); /* two stages */
    int peak[2] = {0, 0}, threads[2] = {2, 8}; /* 1 and 4 per stage */
    for (int k = 0; k < 2; k++) { /* one thread first: a provider's pool, once started, stays */
        pml_session_options o = {.backend = PML_BACKEND_CPU, .seed = -1, .threads = threads[k]};
        pml_session *t = NULL;
        CHECK_STATUS(pml_session_open(ctx, plan, &o, &t), PML_OK);
        peak[k] = peak_threads(train_steps, t);
        pml_session_destroy(t);
        CHECK(peak[k] > 0);
    }
    if (peak[1] <= peak[0])
        api_failed(__FILE__, __LINE__, "training on %d threads peaked at %d threads of the process, on %d at %d",
                   threads[0], peak[0], threads[1], peak[1]);
    CHECK(peak[1] > peak[0]);
    pml_session_options bad = {.seed = -1, .threads = -1};
    pml_session *none = s;
    CHECK_STATUS(pml_session_open(ctx, plan, &bad, &none), PML_ERR_INVALID_ARG);
    CHECK(none == NULL);
    CHECK_ERROR_SAYS(ctx, "pml_session_open: opts->threads is -1, not 0 (every CPU) to 4096");
    bad.threads = PML_MAX_THREADS + 1;
    CHECK_STATUS(pml_session_open(ctx, plan, &bad, &none), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "opts->threads is 4097");
    bad.threads = 0, bad.seed = -2;
    CHECK_STATUS(pml_session_open(ctx, plan, &bad, &none), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "pml_session_open: opts->seed is -2");
    api_close_mlp(ctx, plan, s);
    return 0;
}

API_CASE(pml_infer_create_runs_its_kernels_on_the_threads_asked)
{
    pml_context *ctx;
    pml_plan *plan;
    pml_session *s;
    CHECK(api_open_mlp(&ctx, &plan, &s) == 0);
    enum { ROWS = 512, FEATURES = 784, CLASSES = 10 };
    float *x = calloc((size_t)ROWS * FEATURES, sizeof *x), *y = calloc((size_t)ROWS * CLASSES, sizeof *y);
    CHECK(x && y);
    for (size_t i = 0; i < (size_t)ROWS * FEATURES; i++) x[i] = (float)(i % 17) * 0.1f - 0.8f;
    pml_buffer bx = {x, PML_F32, 2, {ROWS, FEATURES}, NULL};
    int peak[2] = {0, 0}, threads[2] = {1, 4};
    for (int k = 0; k < 2; k++) { /* one thread first: a provider's pool, once started, stays */
        infer_work w = {NULL, &bx, y, sizeof(float) * ROWS * CLASSES};
        CHECK_STATUS(pml_infer_create(ctx, plan, PML_BACKEND_CPU, threads[k], NULL, &w.inf), PML_OK);
        peak[k] = peak_threads(infer_passes, &w);
        pml_infer_destroy(w.inf);
        CHECK(peak[k] > 0);
    }
    if (peak[1] <= peak[0])
        api_failed(__FILE__, __LINE__, "inference on %d threads peaked at %d threads of the process, on %d at %d",
                   threads[0], peak[0], threads[1], peak[1]);
    CHECK(peak[1] > peak[0]);
    free(x);
    free(y);
    api_close_mlp(ctx, plan, s);
    return 0;
}

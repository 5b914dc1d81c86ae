/* api_impl.h — what the files behind pml.h share (api.c: contexts, plans, sessions;
 * api_checkpoint.c: checkpoints; api_data.c: caller data; api_infer.c: inference;
 * api_run.c: opening a session for a run, and the run; api_record.c: argument checks and
 * outcomes): the objects' insides and how a call records its error in its context.
 * Private to libpml and to the pml_mpi library built beside it from the same tree
 * (api_mpi.c), which reads these insides and so runs with its own version's libpml only. */
#ifndef PML_API_IMPL_H
#define PML_API_IMPL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/error.h"
#include "exec/backend.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "pml.h"
#include "run/recut.h"

/* Lifetimes (pml.h): a session or inference handle holds its context and its plan until
 * it is destroyed, so the caller may destroy and close them in any order; each is freed
 * by the last release (pml_api_release, pml_plan_free). */
struct pml_context {
    pml_err last;
    int holders; /* handles made with it that are alive; atomic, as pml_plan's */
    pml_gpu_map gpus; /* pml_context_set_devices: read when a backend is chosen (exec/backend.h) */
};

/* A hold on ctx, or its release: the caller's pml_context_destroy is a release too, and
 * the one that finds no holder left frees it. */
void pml_api_hold(pml_context *ctx);
void pml_api_release(pml_context *ctx);

/* Rows of one model input (or the labels) that the session's feed serves from memory
 * (api_data.c): a caller's buffer, or the feeder's. */
typedef struct pml_api_rows {
    const void *data;
    pml_dtype dtype, to; /* the rows' type and the node's (f32 or i32) */
    size_t row_elems;
} pml_api_rows;

struct pml_session {
    pml_context *ctx;     /* held */
    const pml_plan *held; /* the caller's plan, held until the session is destroyed */
    const pml_plan *plan; /* the caller's, or after a run's re-cut the phase's (in phases) */
    uint64_t seed;        /* the pipeline's: a checkpoint records it */
    pml_backend backend;  /* the one that runs it (CPU or CUDA) */
    int *stage_gpu;       /* CUDA: each stage device's GPU (exec/backend.h), for opts.stage_gpu; owned */
    pml_feed *feed;       /* the plan's data source; NULL when it names none */
    pml_pipeline *pipe;
    pml_pipeline_opts opts; /* how pipe was made (a re-cut makes the phase's alike) */
    char **where;           /* opts.node_where: the session's copy, or a phase's */
    char **own_where;       /* the copy of pml_session_options.node_where */
    pml_run_phases phases;  /* the plans of a run's re-cuts */
    pml_dist *dist;         /* the caller's ranks; NULL: one process */
    int64_t resumed_at;     /* the step pml_session_options.resume continued (-1: none) */
    char *resumed_from;     /* its folder (owned) */
    int freeze_afresh; /* the resumed checkpoint predates saved 'freeze auto' state */
    /* api_data.c: while a step or an evaluation runs on rows in memory, one per model
     * input and the labels last (NULL: the plan's data source feeds it). */
    const pml_api_rows *rows;
    pml_feeder_fn feeder;
    void *feeder_user;
    void **feeder_bufs; /* the feeder's global batch: per input, then the labels */
    pml_metrics_fn on_metrics;
    void *metrics_user;
    /* 1 while a call trains or evaluates, callbacks included: a call the feeder or the
     * metrics callback makes back into the session is refused (pml_api_enter), not run
     * on a pipeline in the middle of a step. */
    int busy;
    /* pml_session_request_stop's request: 0 none, else the signo + 1; set from any
     * thread or signal handler, read by the run (and with ranks by each step's exchange:
     * pipeline.h's opts.stop). Lock-free, so async-signal-safe. */
    atomic_int stop;
};

/* The argument checks of pml.h's policy: when `ok` is false, PML_ERR_INVALID_ARG with
 * the message "CALL: <fmt...>". A check does nothing when err already holds a failure
 * (the first one wins) and returns err's code, so a call lists its checks one after
 * another and tests the code once. */
pml_status pml_api_check(pml_err *err, int ok, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define PML_CHECK_NONNULL(err, p) pml_api_check((err), (p) != NULL, __func__, "%s is NULL", #p)
#define PML_CHECK_NONNEG(err, n) pml_api_check((err), (n) >= 0, __func__, "%s is %lld, below 0", #n, (long long)(n))
/* A path: not NULL and not empty. */
#define PML_CHECK_PATH(err, p) pml_api_check((err), (p) && *(p), __func__, "%s is %s", #p, (p) ? "\"\"" : "NULL")
/* A thread count: 0 (the default) to PML_MAX_THREADS. */
#define PML_CHECK_THREADS(err, n)                                                                                     \
    pml_api_check((err), (n) >= 0 && (n) <= PML_MAX_THREADS, __func__, "%s is %d, not 0 (every CPU) to %d", #n, (n), \
                  PML_MAX_THREADS)

/* The first check of a call on a session, after `s` itself (NULL: PML_ERR_INVALID_ARG
 * with no message, as there is no context to hold one): refuses a call made from inside
 * the session's own callbacks. */
#define PML_CHECK_IDLE(err, s)                                                                                        \
    pml_api_check((err), !(s)->busy, __func__, "called from inside the session's feeder or metrics callback")

/* The checks every call that joins ranks makes (pml_mpi_create, pml_tcp_create) before
 * it reaches another process: plan, layout and out given, a finite timeout, and a
 * layout pml_ranks_resolve would have made. `call` names the call in the message. */
pml_status pml_api_check_join(pml_err *err, const char *call, const pml_plan *plan, const pml_ranks_layout *layout,
                              double timeout_s, pml_dist **out);

/* Records `st` (and, when it failed, err's message) as ctx's last outcome; returns st. */
pml_status pml_api_record(pml_context *ctx, pml_status st, const pml_err *err);

/* An inference session's pipeline (api_infer.c), for calibration (api_quant.c). */
pml_pipeline *pml_api_infer_pipeline(pml_infer *inf);

/* The pml_feed_fn of every session (ctx: the pml_session): its rows in memory when
 * set, else its feed. */
pml_status pml_api_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err);

/* Checks caller buffers against the plan's inputs (and, with want_labels, its labels)
 * and binds them into out[0..n_inputs] (labels last), as `call` was handed them. Every
 * buffer has `rows` rows (-1: as many as the first; the count to *n when not NULL). */
pml_status pml_api_bind(const pml_plan *plan, const char *call, const pml_buffer *inputs, int n_inputs,
                        const pml_buffer *labels, int want_labels, int64_t rows, pml_api_rows *out, int64_t *n,
                        pml_err *err);

/* Frees what api_data.c keeps in a session. */
void pml_api_data_free(pml_session *s);

/* A session of `plan` as `opts` says, with `seed` when opts->seed is -1 and nothing is
 * resumed (api_run.c; pml_session_create and pml_session_open). */
pml_status pml_api_session_make(pml_context *ctx, const pml_plan *plan, const pml_session_options *opts,
                                uint64_t seed, pml_session **out);

/* One training step of the session (its feeder's batch, or its data source's), as
 * pml_session_train_step without recording the outcome: the run's step (api_run.c). */
pml_status pml_api_next_step(pml_session *s, pml_step_metrics *m, pml_err *err);

#endif

/* pipeline.c — the pipeline executor (see pipeline.h): stage threads interpreting
 * their timetables, the transport between them, the gradient-norm barrier, metrics and
 * the trace. What a device does is the backend's (backend_ops.h); this file calls
 * nothing else of it.
 *
 * A thread runs one timetable list, a stage device's. Under interleaved 1F1B and ZB-V a
 * device runs several model chunks (the plan's stages; conf.chunks of them, chunk c on
 * list pml_plan_chunk_device(c, D, schedule)): each instruction names its chunk,
 * messages go between neighbouring chunks, and the device's one step updates all its
 * chunks after one barrier. Elsewhere list s runs stage s alone. With ranks a process
 * runs its rank's devices (dist.h), each with all its chunks: a message between two of
 * them stays in the process, one to another rank's chunk goes over the transport. */
#include "exec/pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/finite.h"
#include "cpu/stage.h"
#include "exec/dist.h"
#include "exec/staging.h"
#include "exec/transport.h"
#include "plan/optim.h"
#include "plan/phase.h"

/* The smallest loss scale backing off may reach: below it an overflow is not the
 * scale's doing (the gradients are NaN or infinite at any scale), and the step fails
 * as an f32 one would. */
#define MIN_SCALE 0x1p-24

enum {
    I_LOAD = PML_PLAN_I_LOAD,
    I_RECV_ACT = PML_PLAN_I_RECV_ACT,
    I_FWD = PML_PLAN_I_FWD,
    I_SEND_ACT = PML_PLAN_I_SEND_ACT,
    I_RECV_GRAD = PML_PLAN_I_RECV_GRAD,
    I_BWD = PML_PLAN_I_BWD,
    I_SEND_GRAD = PML_PLAN_I_SEND_GRAD,
    I_STEP = PML_PLAN_I_STEP,
    I_BWD_INPUT = PML_PLAN_I_BWD_INPUT,
    I_BWD_WEIGHT = PML_PLAN_I_BWD_WEIGHT
};

/* The stage device (timetable list) that runs model stage (chunk) s. */
#define device_of(p, s) pml_plan_chunk_device((s), (p)->D, (int)(p)->plan->conf.schedule)

/* Whether an instruction is a stage's own work (not a message or the step's end). */
static int is_work(int kind)
{
    return kind == I_LOAD || kind == I_FWD || kind == I_BWD || kind == I_BWD_INPUT || kind == I_BWD_WEIGHT;
}

typedef struct stage {
    double loss;         /* summed over this step's micro-batches (last stage) */
    int64_t bad_mb;      /* the first micro-batch of the step whose loss is not finite, or -1 */
    double bad_loss;     /* its loss */
    pml_trace_event *ev; /* the timeline, with opts.trace */
    int n_ev, cap_ev;
    double busy; /* compute time in the last step, with opts.trace */
    double wait; /* time blocked in receives in the last step, with opts.trace */
    pml_err err;
    pml_status status;
    pml_staging staging; /* host copies of its device gradients, summed over ranks */
} stage;

struct pml_pipeline {
    const pml_plan *plan;
    int teacher_ready; /* no teacher, or its weights were loaded (pml_pipeline_teacher_loaded) */
    struct timespec epoch; /* the timeline's zero */
    double last_bubble, last_wait;
    pml_pipeline_opts opts;
    int S; /* model stages (chunks): the backend's stages */
    int D; /* stage devices: timetable lists, one thread each; S unless chunks > 1 */
    int w_first, w_last; /* the lists it runs: all, or its rank's (opts.dist); it runs their chunks (owns) */
    int64_t M;
    int64_t mb_lo, mb_hi; /* the micro-batches it runs: all, or its replica's share */
    pml_backend_inst be;
    /* Host copies of the parameters: behind the device after a step (host_stale), or
     * ahead of it once handed out for writing (host_dirty). */
    int host_stale, host_dirty;
    stage *stages;
    pml_transport *tr;
    int64_t step;
    /* The synchronisation before the update, which any stage's failure releases. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived, generation, aborted;
    /* The cores: with a host backend and fewer threads than this process's stages, at
     * most `cores` stage threads compute at once (gate_take); 0: no limit. */
    int cores, computing;
    int64_t steps_taken; /* by this pipeline, since it was made */
    int time_ops;        /* in a step or forward whose units are traced (PML_TRACE_OP) */
    int trace_fwd;       /* pml_pipeline_trace_forward: forwards record their units */
    int64_t span_step;   /* the traced units' `step`: the step's, or the forward's number */
    pthread_mutex_t core_mu;
    pthread_cond_t core_cv;
    double sq_total;   /* the step's squared gradient norm, over every stage of every rank */
    double loss_total; /* the step's loss summed over micro-batches, likewise */
    int stop_asked;    /* the ranks with a stop request in the last step's sum (opts.stop) */
    /* f16's dynamic loss scaling: the scale (1: none) and the steps since it changed */
    int scaling;
    double scale;
    int64_t scale_good;
    int ties; /* the plan has weights tied across stages (plan.h's tie): add_ties before the norm */
    uint8_t *tied; /* with ties: per parameter, whether it is a tied weight's root or copy */
};

/* Whether this process runs model stage (chunk) s: whether it runs s's device. */
static int owns(const pml_pipeline *p, int s)
{
    int dev = device_of(p, s);
    return dev >= p->w_first && dev < p->w_last;
}

/* plan/phase.h's sum_sq: the automatic freeze's per-parameter squared norms summed
 * over the ranks. Each rank has its own stages' gradients (zeros elsewhere), and every
 * replica holds the same sums after sum_replicas, so only the first replica's ranks
 * add theirs, as for the gradient norm. */
static pml_status sum_freeze_norms(void *ctx, double *sq, int n, pml_err *err)
{
    pml_dist *d = ctx;
    if (d->replica != 0)
        for (int i = 0; i < n; i++) sq[i] = 0;
    return d->sum(d, sq, n, err);
}

/* Makes the backend's automatic freeze decide on the whole model's gradients. */
static pml_status share_freeze_norms(pml_pipeline *p, pml_err *err)
{
    struct pml_phase *ph;
    pml_status st = pml_backend_phase(&p->be, p->step, &ph, err); /* step 0: no check is due */
    if (st) return st;
    ph->sum_sq = sum_freeze_norms;
    ph->sum_sq_ctx = p->opts.dist;
    return PML_OK;
}

static void op_span(void *ctx, int s, int64_t mb, int unit, int op, int thread, double t0, double t1, double cpu);

pml_status pml_pipeline_create(const pml_plan *plan, const pml_pipeline_opts *opts, pml_pipeline **out, pml_err *err)
{
    *out = NULL;
    if (plan->n_stages == 0 || plan->loss < 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "this plan has no timetable to train with (a schedule the runtime "
                           "does not run yet, or no loss)");
    pml_pipeline *p = calloc(1, sizeof *p);
    if (!p) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    p->plan = plan;
    p->teacher_ready = plan->conf.teacher_path < 0;
    p->opts = *opts;
    clock_gettime(CLOCK_MONOTONIC, &p->epoch);
    if (p->opts.threads < 1) p->opts.threads = 1;
    p->S = (int)plan->conf.stages;
    p->D = plan->n_stages;
    p->M = plan->conf.microbatches;
    p->w_first = 0;
    p->w_last = p->D;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->core_mu, NULL);
    pthread_cond_init(&p->core_cv, NULL);
    pml_dist *d = opts->dist;
    pml_status st = PML_OK;
    if (d && (d->first < 0 || d->last > p->D || d->first >= d->last || d->devices != p->D ||
              d->schedule != (int)plan->conf.schedule))
        st = pml_err_set(err, PML_ERR_INVALID_ARG,
                         "rank %d is given stage devices %d to %d of %d under schedule %d, for a plan of %d under %d",
                         d->rank, d->first, d->last - 1, d->devices, d->schedule, p->D, (int)plan->conf.schedule);
    const pml_backend_ops *ops = opts->backend ? opts->backend : &pml_cpu_backend_ops;
    int model = pml_plan_model_params(plan); /* the tied weights' copies follow: the first names its weight */
    p->ties = model < plan->n_params;
    /* A device backend's gradients and boundary values cross ranks through host copies
     * (exec/staging.h): copy_buf moves them, grads lists the gradients. */
    int on_host = ops->device == PML_DEVICE_HOST, staged = ops->copy_buf && ops->grads;
    if (!st && p->ties && !on_host && !(ops->sum_ties && !d) && !staged)
        st = pml_err_set(err, PML_ERR_UNSUPPORTED,
                         "this plan ties a weight across stages (parameter '%s' is read on more than one stage), "
                         "which the %s backend does not run%s yet: use --backend cpu, or read the weight on one stage",
                         plan->params[model].name, ops->name ? ops->name : "?", d ? " across ranks" : "");
    const char *lacks = !ops->copy_buf                        ? "copies of its device buffers to the host"
                        : !ops->boundary                      ? "a list of a message's tensors"
                        : d && d->replicas > 1 && !ops->grads ? "a list of its gradients"
                                                              : NULL;
    if (!st && d && !on_host && lacks)
        st = pml_err_set(err, PML_ERR_UNSUPPORTED,
                         "ranks move the %s backend's tensors between processes, and it has no %s: run the ranks "
                         "with --backend cpu",
                         ops->name ? ops->name : "?", lacks);
    if (!st && p->ties && !(p->tied = calloc((size_t)plan->n_params, 1)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = model; !st && q < plan->n_params; q++) /* copies come last (plan.h) */
        p->tied[q] = p->tied[plan->params[q].tie] = 1;
    if (d && !st) p->w_first = d->first, p->w_last = d->last;
    p->mb_lo = 0;
    p->mb_hi = p->M;
    if (d && !st && d->replicas > 1) { /* replica k runs the k-th share of the micro-batches */
        if (p->M % d->replicas)
            st = pml_err_set(err, PML_ERR_INVALID_ARG,
                             "%lld micro-batches do not divide among %d replicas (set microbatches to a multiple)",
                             (long long)p->M, d->replicas);
        p->mb_lo = p->M / d->replicas * d->replica;
        p->mb_hi = p->mb_lo + p->M / d->replicas;
    }
    /* The backend shares `threads` among all the plan's devices; a rank runs only its
     * own, so they get its threads. */
    int threads = d ? (int)((int64_t)p->opts.threads * p->D / (p->w_last - p->w_first)) : p->opts.threads;
    /* A rank's backend knows every stage, but runs only its own: another rank's stage
     * device is only where its messages to this rank land, so it goes on the GPU of this
     * rank's nearest stage device, and the rank touches no GPU it does not run on... */
    int *gpu = NULL;
    if (!st && d && p->opts.stage_gpu && !(gpu = malloc(sizeof *gpu * (size_t)p->D)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int dev = 0; gpu && dev < p->D; dev++)
        gpu[dev] = p->opts.stage_gpu[dev < p->w_first ? p->w_first : dev >= p->w_last ? p->w_last - 1 : dev];
    /* ... and keeps of it only what its own stages need (backend_ops.h's runs). */
    uint8_t *runs = NULL;
    if (!st && d && !(runs = malloc((size_t)p->S + 1))) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int s = 0; runs && s < p->S; s++) runs[s] = (uint8_t)owns(p, s);
    pml_backend_conf conf = {.seed = p->opts.seed,
                             .threads = threads,
                             .unfused = p->opts.unfused,
                             .stages_in_turn = p->opts.stages_in_turn,
                             .stage_gpu = gpu ? gpu : p->opts.stage_gpu,
                             .runs = runs,
                             .check_numerics = p->opts.check_numerics,
                             .node_where = p->opts.node_where,
                             .mb_first = p->mb_lo,
                             .mb_count = p->mb_hi - p->mb_lo == p->M ? 0 : p->mb_hi - p->mb_lo};
    if (p->opts.trace) conf.on_work = op_span, conf.on_work_ctx = p, conf.work_timed = &p->time_ops;
    conf.time_calls = p->opts.trace;
    if (!st) st = pml_backend_create(ops, plan, &conf, &p->be, err);
    free(gpu), free(runs);
    p->scaling = plan->conf.precision == PML_F16;
    p->scale = p->scaling ? plan->conf.loss_scale : 1;
    if (!st && p->scaling && !ops->loss_scale)
        st = pml_err_set(err, PML_ERR_UNSUPPORTED,
                         "precision = f16 scales the loss, which backend '%s' cannot: use bf16, or the CPU backend",
                         ops->name);
    /* `threads` is what the caller lets this process use; a pipeline's stage threads are
     * one each, so with fewer threads than stages they take turns (gate_take). */
    if (ops->device == PML_DEVICE_HOST && p->opts.threads < p->w_last - p->w_first) p->cores = p->opts.threads;
    if (!st && !(p->stages = calloc((size_t)p->S, sizeof *p->stages)))
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) st = d ? d->transport_create(d, &p->be, p->S, p->M, &p->tr, err)
                    : pml_transport_local_create(p->S, p->M, &p->tr, err);
    if (!st && d && plan->conf.freeze_every > 0) st = share_freeze_norms(p, err);
    if (st) {
        pml_pipeline_destroy(p);
        return st;
    }
    *out = p;
    return PML_OK;
}

void pml_pipeline_destroy(pml_pipeline *p)
{
    if (!p) return;
    for (int s = 0; p->stages && s < p->S; s++) free(p->stages[s].ev), pml_staging_free(&p->stages[s].staging);
    if (p->tr) p->tr->destroy(p->tr);
    pml_backend_destroy(&p->be);
    free(p->stages);
    free(p->tied);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->core_mu);
    pthread_cond_destroy(&p->core_cv);
    free(p);
}

/* A host copy the caller may read or write: current first, sent back before the
 * backend next runs (params_ready). */
static float *host_param(pml_pipeline *p, int param, int which)
{
    if (p->host_stale) {
        if (pml_backend_params_download(&p->be, NULL)) return NULL;
        p->host_stale = 0;
    }
    float *x = pml_backend_host_param(&p->be, param, which);
    if (x) p->host_dirty = 1;
    return x;
}

/* Before the backend runs: parameters edited on the host go back to it. */
static pml_status params_ready(pml_pipeline *p, pml_err *err)
{
    if (!p->host_dirty) return PML_OK;
    pml_status st = pml_backend_params_upload(&p->be, err);
    if (!st) p->host_dirty = 0;
    return st;
}

float *pml_pipeline_param(pml_pipeline *p, int param) { return host_param(p, param, -1); }

pml_status pml_pipeline_copy_params(pml_pipeline *to, pml_pipeline *from, pml_err *err)
{
    const pml_plan *pl = from->plan;
    for (int q = 0; q < pl->n_params; q++) {
        const float *x = pml_pipeline_param(from, q);
        float *y = pml_pipeline_param(to, q);
        if (!x || !y) return pml_err_set(err, PML_ERR_DEVICE, "cannot copy parameter '%s'", pl->params[q].name);
        memcpy(y, x, sizeof(float) * (size_t)pl->nodes[pl->params[q].node].numel);
    }
    return PML_OK;
}

pml_status pml_pipeline_param_int8(pml_pipeline *p, int param, const int8_t *q, const float *scale, float in_scale,
                                   int *served, pml_err *err)
{
    return pml_backend_param_int8(&p->be, param, q, scale, in_scale, served, err);
}

pml_status pml_pipeline_observe_linear(pml_pipeline *p, int param, int *observed, pml_err *err)
{
    return pml_backend_observe_linear(&p->be, param, observed, err);
}

pml_status pml_pipeline_observed_absmax(pml_pipeline *p, int param, float *absmax, pml_err *err)
{
    return pml_backend_observed_absmax(&p->be, param, absmax, err);
}
int64_t pml_pipeline_steps_done(const pml_pipeline *p) { return p->step; }
int pml_pipeline_stop_asked(const pml_pipeline *p) { return p->stop_asked; }

float *pml_pipeline_optim_state(pml_pipeline *p, int param, int which)
{
    return which == 0 || which == 1 ? host_param(p, param, which) : NULL;
}

void pml_pipeline_set_step(pml_pipeline *p, int64_t step) { p->step = step; }

void pml_pipeline_loss_scale(const pml_pipeline *p, double *scale, int64_t *good)
{
    *scale = p->scale;
    *good = p->scale_good;
}

pml_status pml_pipeline_set_loss_scale(pml_pipeline *p, double scale, int64_t good, pml_err *err)
{
    if (!p->scaling) return pml_err_set(err, PML_ERR_INVALID_ARG, "only precision = f16 scales the loss");
    if (!(scale >= MIN_SCALE && scale <= 0x1p100) || good < 0 || good >= p->plan->conf.loss_scale_interval)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "loss scale %g after %lld good steps is out of range", scale,
                           (long long)good);
    p->scale = scale;
    p->scale_good = good;
    return PML_OK;
}

const char *pml_pipeline_precision_note(pml_pipeline *p) { return pml_backend_precision_note(&p->be); }

void pml_pipeline_devices(const pml_pipeline *p, int *first, int *last) { *first = p->w_first, *last = p->w_last; }

int pml_pipeline_memory(pml_pipeline *p, int dev, pml_backend_memory *out)
{
    memset(out, 0, sizeof *out);
    int counted = 0;
    for (int c = 0; c < p->S; c++) {
        if (device_of(p, c) != dev) continue; /* another device's chunk */
        pml_backend_memory m;
        if (!pml_backend_memory_of(&p->be, c, &m)) return 0;
        out->values += m.values, out->grads += m.grads, out->optimizer += m.optimizer;
        out->derived += m.derived, out->scratch += m.scratch, out->temporaries += m.temporaries;
        counted = 1;
    }
    return counted;
}

pml_status pml_pipeline_phase(pml_pipeline *p, struct pml_phase **out, pml_err *err)
{
    return pml_backend_phase(&p->be, p->step, out, err);
}

/* ---- one step --------------------------------------------------------------------- */

static void abort_all(pml_pipeline *p)
{
    p->tr->abort(p->tr);
    pthread_mutex_lock(&p->mu);
    p->aborted = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* A core to compute on, and giving it back (p->cores). Held only around a backend's
 * work, never across a receive or a barrier: a stage holding it while it waited for
 * another stage that needs it would wait forever. */
static void gate_take(pml_pipeline *p)
{
    if (!p->cores) return;
    pthread_mutex_lock(&p->core_mu);
    while (p->computing >= p->cores) pthread_cond_wait(&p->core_cv, &p->core_mu);
    p->computing++;
    pthread_mutex_unlock(&p->core_mu);
}

static void gate_give(pml_pipeline *p)
{
    if (!p->cores) return;
    pthread_mutex_lock(&p->core_mu);
    p->computing--;
    pthread_cond_signal(&p->core_cv);
    pthread_mutex_unlock(&p->core_mu);
}

/* Waits for every device thread of this process; the last to arrive runs fn before it
 * releases the others, which then all go on (or all fail, when fn failed or a stage
 * aborted the step). */
static pml_status barrier_run(pml_pipeline *p, pml_status (*fn)(pml_pipeline *, pml_err *), pml_err *err)
{
    pthread_mutex_lock(&p->mu);
    int gen = p->generation;
    pml_status st = PML_OK;
    if (++p->arrived == p->w_last - p->w_first) {
        pthread_mutex_unlock(&p->mu); /* fn may wait for other ranks */
        st = fn(p, err);
        pthread_mutex_lock(&p->mu);
        p->arrived = 0;
        if (st)
            p->aborted = 1;
        else
            p->generation++;
        pthread_cond_broadcast(&p->cv);
    }
    while (gen == p->generation && !p->aborted) pthread_cond_wait(&p->cv, &p->mu);
    int aborted = p->aborted && gen == p->generation;
    pthread_mutex_unlock(&p->mu);
    if (st) return st;
    return aborted ? pml_err_set(err, PML_ERR_INTERNAL, "stopped: another stage failed") : PML_OK;
}

/* With ranks: the process's norm and loss totals, and its stop requests, summed over
 * every rank (sync_norm's barrier function). */
static pml_status sum_norm_over_ranks(pml_pipeline *p, pml_err *err)
{
    if (!p->opts.dist) return PML_OK;
    double x[3] = {p->sq_total, p->loss_total, p->opts.stop && atomic_load(p->opts.stop) ? 1 : 0};
    pml_status st = p->opts.dist->sum(p->opts.dist, x, 3, err);
    p->sq_total = x[0];
    p->loss_total = x[1];
    p->stop_asked = !st && x[2] > 0;
    return st; /* failed: the others must not update with a partial norm (barrier_run aborts) */
}

/* Adds this stage's squared gradient norm and loss, and waits for every stage's. With
 * ranks, the last of this process's stages to arrive sums the process's totals over
 * every rank before it releases the others, which is also how the loss and the stop
 * requests (opts.stop) reach every rank. */
static pml_status sync_norm(pml_pipeline *p, double sq, double loss, double *total, double *loss_total, pml_err *err)
{
    pthread_mutex_lock(&p->mu);
    p->sq_total += sq;
    p->loss_total += loss;
    pthread_mutex_unlock(&p->mu);
    pml_status st = barrier_run(p, sum_norm_over_ranks, err);
    pthread_mutex_lock(&p->mu);
    *total = p->sq_total;
    *loss_total = p->loss_total;
    pthread_mutex_unlock(&p->mu);
    return st;
}

/* Stage s's gradient sums (backend_ops.h's grads) into *bufs: `stack` (room for 64)
 * or, for more, an allocation the caller frees when it is not `stack`. */
static pml_status list_grads(pml_pipeline *p, int s, pml_backend_buf *stack, pml_backend_buf **bufs, int *n,
                             pml_err *err)
{
    *bufs = stack;
    pml_status st = pml_backend_grads(&p->be, s, stack, 64, n, err);
    if (!st && *n > 64) {
        if (!(*bufs = malloc(sizeof **bufs * (size_t)*n))) {
            *bufs = stack;
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        }
        st = pml_backend_grads(&p->be, s, *bufs, *n, n, err);
    }
    return st;
}

/* back 0: g[q] for each tied weight's root and copies (p->tied), the gradient sums of
 * this process's stages on the host (a device's copied into the stage's staging area);
 * NULL for a parameter of another rank's stage or one not trained at this step.
 * back 1: the host sums g[q] written back to a device's buffers. */
static pml_status tied_grads(pml_pipeline *p, float **g, int back, pml_err *err)
{
    pml_status st = PML_OK;
    for (int s = 0; s < p->S && !st; s++) {
        if (!owns(p, s)) continue;
        pml_backend_buf stack[64], *bufs;
        void *hstack[64], **host = hstack;
        int n = 0, k = 0;
        st = list_grads(p, s, stack, &bufs, &n, err);
        if (!st && n > 64 && !(host = malloc(sizeof *host * (size_t)n)))
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n && !st; i++) /* the tied ones, in place */
            if (p->tied[bufs[i].param]) {
                bufs[k] = bufs[i];
                host[k++] = g[bufs[i].param];
            }
        if (!st && back)
            st = pml_staging_out(&p->be, s, bufs, k, host, "adding a tied weight's gradients across ranks", err);
        else if (!st)
            st = pml_staging_in(&p->stages[s].staging, &p->be, s, bufs, k, 1, host,
                                "adding a tied weight's gradients across ranks", err);
        for (int i = 0; i < k && !st && !back; i++) g[bufs[i].param] = host[i];
        if (bufs != stack) free(bufs);
        if (host != hstack) free(host);
    }
    return st;
}

/* Weights tied across stages (plan.h's tie): each copy's gradient sum and its root's
 * are added in stage order into the first stage's, and that sum goes to every one of
 * them, so the one update the copies then make keeps their bits equal. With ranks, a
 * replica's sums meet at the rank of its first stage holding the weight (dist->move,
 * which every rank calls in the same order); one process adds in place. Runs once per
 * process, from the barrier's last thread, before any stage reads its norm. */
static pml_status add_ties(pml_pipeline *p, pml_err *err)
{
    if (p->be.ops->sum_ties && !p->opts.dist) return pml_backend_sum_ties(&p->be, err); /* on the device */
    const pml_plan *pl = p->plan;
    pml_dist *d = p->opts.dist;
    int np = pl->n_params, replicas = d ? d->replicas : 1;
    float **g = calloc((size_t)np + 1, sizeof *g), *tmp = NULL;
    int *member = malloc(sizeof *member * ((size_t)np + 1));
    if (!g || !member || (d && !(tmp = malloc(sizeof(float) * (size_t)pml_plan_largest_tie(pl) + 1)))) {
        free(g), free(member);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the tied weights' gradients");
    }
    pml_status st = tied_grads(p, g, 0, err);
#define STAGE_OF(q) (pl->nodes[pl->params[q].node].stage)
    for (int r = 0; r < np && !st; r++) {
        if (pl->params[r].tie >= 0) continue;
        int n = pml_plan_tie_members(pl, r, member), frozen = 0;
        for (int i = 0; i < n; i++) /* the whole weight is, on every rank alike (its copies share its freezes) */
            frozen |= owns(p, STAGE_OF(member[i])) && !g[member[i]];
        if (n < 2 || frozen) continue;
        float *sum = g[member[0]];
        size_t count = (size_t)pl->nodes[pl->params[r].node].numel, bytes = count * sizeof(float);
        for (int rep = 0; rep < replicas && !st; rep++) {
            int home = d ? pml_dist_owner(d, rep, STAGE_OF(member[0])) : 0, here = d ? d->rank : 0;
            for (int i = 1; i < n && !st; i++) { /* every copy's sums to the first stage's, added in order */
                int m = member[i], from = d ? pml_dist_owner(d, rep, STAGE_OF(m)) : 0;
                const float *add = g[m];
                if (from != home) {
                    st = d->move(d, from, home, here == from ? (void *)g[m] : (void *)tmp, bytes, err);
                    add = tmp;
                }
                if (!st && here == home && sum && add)
                    for (size_t k = 0; k < count; k++) sum[k] += add[k];
            }
            for (int i = 1; i < n && !st; i++) { /* and the total back to each */
                int m = member[i], to = d ? pml_dist_owner(d, rep, STAGE_OF(m)) : 0;
                if (to != home)
                    st = d->move(d, home, to, here == home ? (void *)sum : (void *)g[m], bytes, err);
                else if (here == home && sum && g[m])
                    memcpy(g[m], sum, bytes);
            }
        }
    }
#undef STAGE_OF
    if (!st) st = tied_grads(p, g, 1, err);
    free(g), free(member), free(tmp);
    return st;
}

/* With replicas: stage s's gradient sums added over every replica's copy of the stage,
 * and the stage's squared norm of their mean, as grad_sq computes it: device to device
 * where the transport grouped the stage's copies (exec/links.h), else through the host. */
static pml_status sum_replicas(pml_pipeline *p, int s, double *sq, pml_err *err)
{
    int grouped = 0;
    pml_status st = p->tr->sum_grads ? p->tr->sum_grads(p->tr, s, &grouped, err) : PML_OK;
    if (st) return st;
    if (grouped) { /* the totals are on the device: their norm as grad_sq takes it */
        gate_take(p);
        st = pml_backend_grad_sq(&p->be, s, sq, err);
        gate_give(p);
        return st;
    }
    pml_backend_buf stack[64], *bufs;
    int n = 0;
    st = list_grads(p, s, stack, &bufs, &n, err);
    double total = 0, inv_m = 1.0 / (double)p->M;
    float **x = st ? NULL : malloc(sizeof *x * (size_t)(n + 1));
    size_t *len = st ? NULL : malloc(sizeof *len * (size_t)(n + 1));
    if (!st && (!x || !len)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st)
        st = pml_staging_in(&p->stages[s].staging, &p->be, s, bufs, n, 1, (void **)x,
                            "adding gradients over the replicas", err);
    for (int i = 0; i < n && !st; i++) len[i] = bufs[i].bytes / sizeof(float);
    if (!st) st = p->opts.dist->sum_replicas(p->opts.dist, s, x, len, n, err);
    if (!st) st = pml_staging_out(&p->be, s, bufs, n, (void *const *)x, "adding gradients over the replicas", err);
    for (int i = 0; i < n && !st; i++) /* a tied weight's copy: its root counts (cpu_grad_sq's rule) */
        total += p->plan->params[bufs[i].param].tie >= 0 ? 0 : pml_optim_sum_squares(x[i], len[i]);
    free(x);
    free(len);
    if (bufs != stack) free(bufs);
    *sq = total * inv_m * inv_m;
    return st;
}

/* Why stage s stops a step whose loss or gradient norm is not finite: the loss of its
 * first such micro-batch, else the gradient of its parameter nearest the loss (backward
 * reaches it first, so the others' may only have inherited the value) holding a
 * non-finite value, else another stage's fault. Runs only when the check fires. */
static pml_status nonfinite_step(pml_pipeline *p, int s, double sq, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const stage *st = &p->stages[s];
    long long step = (long long)p->step + 1;
    if (st->bad_mb >= 0)
        return pml_err_set(err, PML_ERR_NONFINITE, "step %lld: the loss of micro-batch %lld is %s (stage %d, node '%s')",
                           step, (long long)st->bad_mb, pml_finite_name(st->bad_loss), s,
                           pl->nodes[pl->loss].label ? pl->nodes[pl->loss].label : "loss");
    if (isfinite(sq))
        return pml_err_set(err, PML_ERR_NONFINITE,
                           "stopped: another stage failed (the step's loss or gradient norm is not finite there)");
    pml_backend_buf stack[64], *bufs;
    int n = 0, bad = 0, named = -1;
    size_t at = 0;
    double v = sq;
    if (list_grads(p, s, stack, &bufs, &n, NULL)) n = 0; /* a backend that cannot list them: the stage only */
    for (int i = 0; i < n; i++) {
        size_t len = bufs[i].bytes / sizeof(float), k;
        if (bufs[i].device != PML_DEVICE_HOST || (k = pml_finite_scan_f32(bufs[i].data, len)) == len) continue;
        bad++;
        if (named < 0 || bufs[i].param > named) named = bufs[i].param, at = k, v = ((const float *)bufs[i].data)[k];
    }
    if (bufs != stack) free(bufs);
    if (named < 0)
        return pml_err_set(err, PML_ERR_NONFINITE, "step %lld: stage %d's gradient norm is %s", step, s,
                           pml_finite_name(sq));
    return pml_err_set(err, PML_ERR_NONFINITE,
                       "step %lld: the gradient of parameter '%s' is %s at element %zu (stage %d, summed over the "
                       "micro-batches; %d of the stage's parameters have a non-finite gradient, this one nearest "
                       "the loss)",
                       step, pl->params[named].name, pml_finite_name(v), at, s, bad);
}

/* The step's end on one stage: its share of the squared gradient norm, the barrier
 * that sums every stage's, then the update with the clipped, scheduled rate. A step
 * whose loss or norm is not finite updates nothing, on any stage (every stage sees the
 * same sums): the weights stay those of the last good step, and the step fails
 * (nonfinite_step). Two sums already computed are checked: the cost is nil. With
 * replicas, each stage's gradients are first summed over the replicas (every replica
 * then holds the whole batch's); only the first replica's ranks count them in the
 * norm, while every replica adds the loss of its own micro-batches. */
static pml_status stage_update(pml_pipeline *p, int dev, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_dist *d = p->opts.dist;
    double sq = 0, sq_c[PML_PLAN_MAX_CHUNKS], total, loss = 0, own = 0;
    int n = 0, chunk[PML_PLAN_MAX_CHUNKS];
    for (int s = 0; s < p->S && n < PML_PLAN_MAX_CHUNKS; s++) /* the device's chunks */
        if (device_of(p, s) == dev) chunk[n++] = s;
    pml_status status = PML_OK;
    gate_take(p);
    for (int k = 0; k < n && !status; k++) {
        status = pml_backend_grad_sq(&p->be, chunk[k], &sq_c[k], err);
        if (!status) status = pml_backend_sync(&p->be, chunk[k], err);
        sq += status ? 0 : sq_c[k];
        own += p->stages[chunk[k]].loss;
    }
    gate_give(p);
    if (!status && p->ties) { /* the copies' sums are added first: the norm is of the totals */
        status = barrier_run(p, add_ties, err);
        sq = 0;
        gate_take(p);
        for (int k = 0; k < n && !status; k++) {
            status = pml_backend_grad_sq(&p->be, chunk[k], &sq_c[k], err);
            sq += status ? 0 : sq_c[k];
        }
        gate_give(p);
    }
    if (d && d->replicas > 1) { /* each chunk's sums, in chunk order as on every replica */
        sq = 0;
        for (int k = 0; k < n && !status; k++) {
            status = sum_replicas(p, chunk[k], &sq_c[k], err);
            sq += status ? 0 : sq_c[k];
        }
    }
    if (d && d->replica > 0) sq = 0;
    if (!status) status = sync_norm(p, sq, own, &total, &loss, err);
    if (status) return status;
    /* f16: gradients that overflowed (an infinite or NaN norm, a finite loss) skip the
     * step on every stage, which all see the same sums; the scale backs off after it. */
    if (p->scaling && !isfinite(total) && isfinite(loss) && p->scale * pl->conf.loss_scale_backoff >= MIN_SCALE)
        return PML_OK;
    if (!isfinite(total) || !isfinite(loss)) { /* the chunk that saw it, else the first: another stage's */
        for (int k = 0; k < n; k++)
            if (p->stages[chunk[k]].bad_mb >= 0 || !isfinite(sq_c[k])) return nonfinite_step(p, chunk[k], sq_c[k], err);
        return nonfinite_step(p, chunk[0], sq_c[0], err);
    }
    double norm = sqrt(total) / p->scale, scale = 1;
    if (pl->conf.grad_clip > 0 && norm > pl->conf.grad_clip) scale = pl->conf.grad_clip / norm;
    gate_take(p);
    for (int k = 0; k < n && !status; k++) {
        status = pml_backend_update(&p->be, chunk[k], pml_lr_at(&pl->conf, p->step), scale / p->scale, err);
        if (!status) status = pml_backend_sync(&p->be, chunk[k], err);
    }
    gate_give(p);
    return status;
}

/* Stage s's model inputs (and labels, with `labels`) of micro-batch mb: from the
 * caller's `inputs` (one per model input), or else from the feed at step `step`,
 * written into the backend's host copy and handed to the device. */
static pml_status load_inputs(pml_pipeline *p, int s, int64_t step, int64_t mb, const void *const *inputs, int labels,
                              pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_status st = PML_OK;
    for (int k = 0; k < pl->n_inputs && !st; k++) {
        int n = pl->input_nodes[k];
        if (pl->nodes[n].stage != s) continue;
        void *dst = pml_backend_host_value(&p->be, PML_BACKEND_VAL_INPUT, k, mb);
        if (inputs)
            memcpy(dst, inputs[k], (size_t)pl->nodes[n].numel * 4);
        else
            st = p->opts.feed(p->opts.feed_ctx, step, mb, k, dst, err);
        if (!st) st = pml_backend_upload(&p->be, PML_BACKEND_VAL_INPUT, k, mb, err);
    }
    if (!st && labels && pl->labels >= 0 && pl->nodes[pl->labels].stage == s) {
        st = p->opts.feed(p->opts.feed_ctx, step, mb, -1, pml_backend_host_value(&p->be, PML_BACKEND_VAL_LABELS, 0, mb),
                          err);
        if (!st) st = pml_backend_upload(&p->be, PML_BACKEND_VAL_LABELS, 0, mb, err);
    }
    return st;
}

/* The host copy of an f32 scalar or tensor value the executor reads (loss, output). */
static const float *read_value(pml_pipeline *p, pml_backend_value what, int64_t mb, pml_err *err)
{
    if (pml_backend_download(&p->be, what, 0, mb, err)) return NULL;
    const float *x = pml_backend_host_value(&p->be, what, 0, mb);
    if (!x) pml_err_set(err, PML_ERR_INTERNAL, "the backend has no host copy of value %d", (int)what);
    return x;
}

/* A send tells the receiver the values are complete: the device work comes first. */
static pml_status send(pml_pipeline *p, int from, int to, int kind, int64_t mb, pml_err *err)
{
    pml_status st = pml_backend_sync(&p->be, from, err);
    return st ? st : p->tr->send(p->tr, from, to, kind, mb, err);
}

/* Instruction `in` of list `dev`, on its chunk. */
static pml_status run_instr(pml_pipeline *p, int dev, const pml_plan_instr *in, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int s = in->chunk;
    stage *st = &p->stages[s];
    pml_status status;
    switch (in->kind) {
    case I_LOAD:
        return load_inputs(p, s, p->step, in->mb, NULL, 1, err);
    case I_RECV_ACT:
        return p->tr->recv(p->tr, s - 1, s, PML_MSG_ACT, in->mb, err);
    case I_SEND_ACT:
        return send(p, s, s + 1, PML_MSG_ACT, in->mb, err);
    case I_RECV_GRAD:
        return p->tr->recv(p->tr, s + 1, s, PML_MSG_GRAD, in->mb, err);
    case I_SEND_GRAD:
        return send(p, s, s - 1, PML_MSG_GRAD, in->mb, err);
    case I_FWD:
        status = pml_backend_forward(&p->be, s, in->mb, PML_BACKEND_FWD_TRAIN, err);
        if (!status && pl->nodes[pl->loss].stage == s) {
            const float *loss = read_value(p, PML_BACKEND_VAL_LOSS, in->mb, err);
            if (!loss) return err ? err->code : PML_ERR_INTERNAL;
            st->loss += *loss;
            if (!isfinite(*loss) && st->bad_mb < 0) st->bad_mb = in->mb, st->bad_loss = *loss;
        }
        return status;
    case I_BWD:
        return pml_backend_backward(&p->be, s, in->mb, err);
    case I_BWD_INPUT:
        return pml_backend_backward_half(&p->be, s, in->mb, PML_BACKEND_BWD_INPUT, err);
    case I_BWD_WEIGHT:
        return pml_backend_backward_half(&p->be, s, in->mb, PML_BACKEND_BWD_WEIGHT, err);
    case I_STEP:
        return stage_update(p, dev, err);
    default:
        return pml_err_set(err, PML_ERR_INTERNAL, "unknown timetable instruction %d", in->kind);
    }
}

typedef struct worker {
    pml_pipeline *p;
    int s;
} worker;

static double now_us(const pml_pipeline *p)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ((double)(t.tv_sec - p->epoch.tv_sec) * 1e6) + (double)(t.tv_nsec - p->epoch.tv_nsec) * 1e-3;
}

/* Appends an event to the stage's timeline. Memory failures drop spans rather than
 * fail the step: a timeline is an observation, not the work. */
static void append_event(stage *st, pml_trace_event e)
{
    if (st->n_ev == st->cap_ev) {
        int cap = st->cap_ev ? st->cap_ev * 2 : 256;
        pml_trace_event *ev = realloc(st->ev, sizeof *ev * (size_t)cap);
        if (!ev) return;
        st->ev = ev;
        st->cap_ev = cap;
    }
    st->ev[st->n_ev++] = e;
}

/* Appends an instruction's span; sends are instants and not recorded. */
static void record_span(pml_pipeline *p, stage *st, const pml_plan_instr *in, double t0, double t1)
{
    if (in->kind == I_SEND_ACT || in->kind == I_SEND_GRAD) return;
    if ((is_work(in->kind) && in->kind != I_LOAD) || in->kind == I_STEP) st->busy += t1 - t0;
    if (in->kind == I_RECV_ACT || in->kind == I_RECV_GRAD) st->wait += t1 - t0;
    append_event(st, (pml_trace_event){in->kind, in->mb, in->chunk, 0, p->step, t0, t1, -1, 0});
}

/* backend_ops.h's on_work: a unit of a stage's work, on the stage's own thread. */
static void op_span(void *ctx, int s, int64_t mb, int unit, int op, int thread, double t0, double t1, double cpu)
{
    pml_pipeline *p = ctx;
    if (!p->time_ops || !owns(p, s)) return;
    double zero = (double)p->epoch.tv_sec + 1e-9 * (double)p->epoch.tv_nsec;
    append_event(&p->stages[device_of(p, s)], /* the device's thread, which runs chunk s */
                 (pml_trace_event){PML_TRACE_OP, (int32_t)mb, unit, op, p->span_step, (t0 - zero) * 1e6,
                                   (t1 - zero) * 1e6, cpu >= 0 ? cpu * 1e6 : -1, thread});
}

static void *stage_main(void *arg)
{
    worker *w = arg;
    pml_pipeline *p = w->p;
    stage *st = &p->stages[w->s];
    for (int i = 0; i < p->plan->n_instr[w->s]; i++) {
        const pml_plan_instr *in = &p->plan->instr[w->s][i];
        if (in->kind != I_STEP && (in->mb < p->mb_lo || in->mb >= p->mb_hi)) continue; /* another replica's */
        /* The step's own work on a core (gate_take); its end takes one inside. */
        int computes = is_work(in->kind);
        if (computes) gate_take(p);
        double t0 = p->opts.trace ? now_us(p) : 0;
        st->status = run_instr(p, w->s, &p->plan->instr[w->s][i], &st->err);
        if (p->opts.trace && !st->status) record_span(p, st, &p->plan->instr[w->s][i], t0, now_us(p));
        if (computes) gate_give(p);
        if (st->status) {
            abort_all(p);
            break;
        }
    }
    return NULL;
}

/* After a step stopped on a non-finite value: a weight of this process's stages that
 * is not finite is the likelier cause (the last update overflowed, or the weights were
 * set so through pml_pipeline_param), so it is named before the step's own finding. */
static void name_bad_weight(pml_pipeline *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    for (int q = 0; q < pl->n_params && err; q++) {
        int on = pl->nodes[pl->params[q].node].stage;
        if (!owns(p, on)) continue;
        const float *w = pml_pipeline_param(p, q);
        size_t n = (size_t)pl->nodes[pl->params[q].node].numel, k = w ? pml_finite_scan_f32(w, n) : n;
        if (k == n) continue;
        char was[sizeof err->msg];
        snprintf(was, sizeof was, "%s", err->msg);
        pml_err_set(err, PML_ERR_NONFINITE, "step %lld: parameter '%s' is %s at element %zu before the step (the "
                    "previous update overflowed: lower the learning rate); then %s", (long long)p->step + 1,
                    pl->params[q].name, pml_finite_name(w[k]), k, was);
        return;
    }
}

/* A distillation's teacher is never run on random weights: its loader (the checkpoint
 * layer, above this one) must have filled it first. */
static pml_status teacher_check(const pml_pipeline *p, pml_err *err)
{
    if (p->teacher_ready) return PML_OK;
    return pml_err_set(err, PML_ERR_INVALID_ARG,
                       "the distillation teacher's weights were not loaded (pml_ckpt_load_teacher)");
}

void pml_pipeline_teacher_loaded(pml_pipeline *p) { p->teacher_ready = 1; }

/* With a backend whose work runs after its calls return (a GPU's), a pass's span on the
 * host is only its launch: the step's forward and backward spans take the device's
 * times instead (backend_ops.h's device_span), and each stage's busy time, hence the
 * measured bubble, is the sum of its passes on the device (the step's end on the host
 * would count again the work it waits for). */
static void device_spans(pml_pipeline *p)
{
    double epoch = pml_pipeline_trace_epoch(p);
    for (int d = p->w_first; d < p->w_last; d++) {
        stage *st = &p->stages[d];
        double busy = 0;
        for (int i = st->n_ev - 1; i >= 0 && st->ev[i].step == p->step; i--) {
            pml_trace_event *e = &st->ev[i];
            int k = e->kind;
            pml_backend_call call = k == I_FWD         ? PML_BACKEND_CALL_FWD
                                    : k == I_BWD       ? PML_BACKEND_CALL_BWD
                                    : k == I_BWD_INPUT ? PML_BACKEND_CALL_BWD_INPUT
                                                       : PML_BACKEND_CALL_BWD_WEIGHT;
            double a, b;
            if ((k != I_FWD && k != I_BWD && k != I_BWD_INPUT && k != I_BWD_WEIGHT) ||
                !p->be.ops->device_span(p->be.ctx, e->unit, call, e->mb, &a, &b))
                continue;
            e->t0 = (a - epoch) * 1e6, e->t1 = (b - epoch) * 1e6;
            busy += e->t1 - e->t0;
        }
        st->busy = busy;
    }
}

pml_status pml_pipeline_step(pml_pipeline *p, pml_step_stats *stats, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_status ts = teacher_check(p, err);
    if (ts) return ts;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The transport first: a cross-process one finishes the last step's sends, whose
     * buffers begin may rewrite. */
    p->tr->reset(p->tr);
    pml_status status = params_ready(p, err);
    if (!status && p->scaling) status = pml_backend_loss_scale(&p->be, p->scale, err);
    if (!status) status = pml_backend_begin(&p->be, p->step, 1, err);
    if (status) return status;
    p->aborted = 0;
    p->arrived = 0;
    p->time_ops = p->opts.trace && p->steps_taken >= 1 && p->steps_taken <= PML_TRACE_OP_STEPS;
    p->span_step = p->step;
    p->sq_total = 0;
    p->loss_total = 0;
    p->stop_asked = 0;
    worker *ws = calloc((size_t)p->S, sizeof *ws);
    pthread_t *tid = calloc((size_t)p->S, sizeof *tid);
    if (!ws || !tid) {
        free(ws), free(tid);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    int started = 0;
    for (int s = 0; s < p->S; s++) {
        p->stages[s].busy = 0;
        p->stages[s].wait = 0;
        p->stages[s].loss = 0;
        p->stages[s].bad_mb = -1;
        p->stages[s].status = PML_OK;
        ws[s] = (worker){p, s};
    }
    for (int s = p->w_first; s < p->w_last; s++) {
        if (pthread_create(&tid[s], NULL, stage_main, &ws[s])) {
            p->stages[s].status =
                pml_err_set(&p->stages[s].err, PML_ERR_INTERNAL, "cannot start a thread for stage %d", s);
            abort_all(p);
            break;
        }
        started++;
    }
    for (int s = p->w_first; s < p->w_first + started; s++) pthread_join(tid[s], NULL);
    free(ws), free(tid);
    p->time_ops = 0;
    p->steps_taken++;
    p->host_stale = 1; /* the backend updated its parameters */
    /* The first failure, by stage order, is the one to report. */
    for (int s = p->w_first; s < p->w_last; s++) {
        if (!p->stages[s].status) continue;
        if (err) *err = p->stages[s].err;
        for (int r = p->w_first; r < p->w_last; r++) /* prefer a real cause over "another stage failed" */
            if (p->stages[r].status && !strstr(p->stages[r].err.msg, "another stage failed") && err)
                *err = p->stages[r].err;
        if (p->stages[s].status == PML_ERR_NONFINITE) name_bad_weight(p, err);
        return err ? err->code : p->stages[s].status;
    }
    if (p->opts.trace && p->be.ops->device_span) device_spans(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = 1e6 * ((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec)), busy = 0,
           wait = 0;
    for (int s = p->w_first; s < p->w_last; s++) busy += p->stages[s].busy, wait += p->stages[s].wait;
    p->last_bubble = p->opts.trace && wall > 0 ? 1 - busy / ((p->w_last - p->w_first) * wall) : 0;
    p->last_wait = p->opts.trace && wall > 0 ? wait / ((p->w_last - p->w_first) * wall) : 0;
    double used = p->scale;
    int skipped = p->scaling && !isfinite(p->sq_total);
    if (skipped) { /* backed off (stage_update updated nothing) */
        p->scale *= pl->conf.loss_scale_backoff;
        p->scale_good = 0;
    } else if (p->scaling && ++p->scale_good == pl->conf.loss_scale_interval) {
        p->scale = fmin(p->scale * 2, 0x1p100); /* growth: 2, as PyTorch's GradScaler */
        p->scale_good = 0;
    }
    if (stats) {
        stats->step = p->step;
        stats->loss = p->loss_total / (double)p->M;
        stats->grad_norm = sqrt(p->sq_total) / used;
        stats->lr = pml_lr_at(&pl->conf, p->step);
        stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        stats->loss_scale = p->scaling ? used : 1;
        stats->skipped = skipped;
    }
    p->step++;
    return PML_OK;
}

const pml_trace_event *pml_pipeline_trace(const pml_pipeline *p, int s, int *n)
{
    *n = s >= 0 && s < p->S ? p->stages[s].n_ev : 0;
    return *n ? p->stages[s].ev : NULL;
}

void pml_pipeline_trace_forward(pml_pipeline *p, int on, int64_t number)
{
    p->trace_fwd = on && p->opts.trace;
    p->span_step = number;
}

double pml_pipeline_last_bubble(const pml_pipeline *p) { return p->last_bubble; }

double pml_pipeline_last_wait(const pml_pipeline *p) { return p->last_wait; }

double pml_pipeline_trace_epoch(const pml_pipeline *p)
{
    return (double)p->epoch.tv_sec + 1e-9 * (double)p->epoch.tv_nsec;
}

/* ---- evaluation -------------------------------------------------------------------- */

/* Rows of micro-batch `mb` whose largest output is their label. */
static pml_status correct_rows(pml_pipeline *p, int64_t mb, int64_t *hits, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *out = &pl->nodes[pl->output];
    int64_t classes = out->dims[out->rank - 1], rows = out->numel / (classes ? classes : 1);
    const float *y = read_value(p, PML_BACKEND_VAL_OUTPUT, mb, err);
    const int32_t *label = pml_backend_host_value(&p->be, PML_BACKEND_VAL_LABELS, 0, mb); /* written by load_inputs */
    if (!y) return err ? err->code : PML_ERR_INTERNAL;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (y[r * classes + c] > y[r * classes + best]) best = c;
        *hits += best == label[r];
    }
    return PML_OK;
}

/* One micro-batch's forward pass over every stage in order, with dropout off: what each
 * stage's load and forward would do. With `inputs` (the caller's, one per model input)
 * no labels are loaded and only the nodes the output depends on run (not the loss);
 * without, inputs and labels come from the feed at step `step` and every forward node
 * runs. */
static pml_status forward_mb(pml_pipeline *p, int64_t step, int64_t mb, const void *const *inputs, pml_err *err)
{
    pml_backend_fwd_mode mode = inputs ? PML_BACKEND_FWD_SERVE : PML_BACKEND_FWD_EVAL;
    for (int s = 0; s < p->S; s++) {
        pml_status st = load_inputs(p, s, step, mb, inputs, !inputs, err);
        if (!st) st = pml_backend_forward(&p->be, s, mb, mode, err);
        if (!st) st = pml_backend_sync(&p->be, s, err); /* the next stage reads its values */
        if (st) return st;
    }
    return PML_OK;
}

/* Before an evaluation or inference: host edits go to the backend, which recomputes
 * what depends on parameters only; dropout is off, so the step only names the run. */
static pml_status begin_forward(pml_pipeline *p, pml_err *err)
{
    pml_status st = params_ready(p, err);
    return st ? st : pml_backend_begin(&p->be, p->step, 0, err);
}

/* Whether this process's backend holds every stage (without ranks it does; a rank's
 * holds only what its own stages need: backend_ops.h's runs). */
static int holds_every_stage(const pml_pipeline *p) { return p->w_first == 0 && p->w_last == p->D; }

/* For an evaluation or inference on a rank, which runs every stage in this process (on
 * the host copies: pml_dist_params_gather brings the other ranks'): a one-process
 * pipeline of the whole model with this pipeline's weights, on this rank's first GPU
 * for a device backend, for the caller to free after the forward passes. */
static pml_status whole_model(pml_pipeline *p, pml_pipeline **out, pml_err *err)
{
    pml_pipeline_opts o = p->opts;
    o.dist = NULL, o.trace = 0, o.stop = NULL;
    int *gpu = NULL;
    if (p->opts.stage_gpu && !(gpu = malloc(sizeof *gpu * (size_t)p->D)))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int d = 0; gpu && d < p->D; d++) gpu[d] = p->opts.stage_gpu[p->w_first];
    o.stage_gpu = gpu;
    pml_status st = pml_pipeline_create(p->plan, &o, out, err);
    free(gpu);
    if (!st) st = pml_pipeline_copy_params(*out, p, err);
    if (!st) (*out)->teacher_ready = p->teacher_ready, (*out)->step = p->step;
    if (st) pml_pipeline_destroy(*out), *out = NULL;
    return st;
}

pml_status pml_pipeline_evaluate(pml_pipeline *p, int64_t batches, double *loss, double *accuracy, pml_err *err)
{
    pml_status ts = teacher_check(p, err);
    if (ts) return ts;
    if (!holds_every_stage(p)) {
        pml_pipeline *whole = NULL;
        pml_status st = whole_model(p, &whole, err);
        if (!st) st = pml_pipeline_evaluate(whole, batches, loss, accuracy, err);
        pml_pipeline_destroy(whole);
        return st;
    }
    const pml_plan *pl = p->plan;
    const pml_plan_node *out = &pl->nodes[pl->output], *lab = &pl->nodes[pl->labels];
    int classify = lab->dtype == PML_I32 && out->rank == lab->rank + 1 && out->rank >= 1;
    double loss_sum = 0;
    int64_t hits = 0, rows = 0;
    pml_status st = begin_forward(p, err);
    if (st) return st;
    for (int64_t b = 0; b < batches; b++) {
        for (int64_t mb = 0; mb < p->M; mb++) {
            st = forward_mb(p, PML_EVAL_STEP0 + b, mb, NULL, err);
            const float *l = st ? NULL : read_value(p, PML_BACKEND_VAL_LOSS, mb, err);
            if (!l) return st ? st : err ? err->code : PML_ERR_INTERNAL;
            loss_sum += *l;
            if (classify) {
                st = correct_rows(p, mb, &hits, err);
                if (st) return st;
                rows += lab->numel;
            }
        }
    }
    *loss = batches ? loss_sum / (double)(batches * p->M) : NAN;
    *accuracy = classify && rows ? (double)hits / (double)rows : NAN;
    return PML_OK;
}

pml_status pml_pipeline_forward(pml_pipeline *p, const void *const *inputs, void *output, pml_err *err)
{
    pml_status ts = teacher_check(p, err);
    if (ts) return ts;
    const pml_plan *pl = p->plan;
    if (pl->output < 0) return pml_err_set(err, PML_ERR_UNSUPPORTED, "the plan has no output");
    if (!holds_every_stage(p)) {
        pml_pipeline *whole = NULL;
        pml_status st = whole_model(p, &whole, err);
        if (!st) st = pml_pipeline_forward(whole, inputs, output, err);
        pml_pipeline_destroy(whole);
        return st;
    }
    pml_status st = begin_forward(p, err);
    p->time_ops = p->trace_fwd;
    if (!st) st = forward_mb(p, 0, 0, inputs, err);
    p->time_ops = 0;
    if (st) return st;
    const float *y = read_value(p, PML_BACKEND_VAL_OUTPUT, 0, err);
    if (!y) return err ? err->code : PML_ERR_INTERNAL;
    memcpy(output, y, (size_t)pl->nodes[pl->output].numel * 4);
    return PML_OK;
}

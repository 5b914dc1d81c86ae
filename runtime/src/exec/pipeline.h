/* pipeline.h — the pipeline executor: trains a loaded plan, one thread per stage, each
 * interpreting its timetable (plan.h) and running its device work through a backend
 * (backend_ops.h; the CPU's, cpu/stage.h, unless opts.backend names another).
 *
 * Per step, every micro-batch runs forward and backward on every stage; gradients of a
 * stage's parameters are summed over micro-batches and divided by their number, which
 * is the gradient of the global batch's mean loss. Then, after one synchronisation of
 * all stages for the global gradient norm (clipping), each stage updates its own
 * parameters. Stages hand tensors over through a pml_transport. What runs on a stage,
 * where its tensors live and how the optimizer is applied are the backend's.
 *
 * Non-finite values: a step whose loss or global gradient norm is not finite (two sums
 * the step computes anyway) updates nothing on any stage, so the weights stay those of
 * the last good step, and fails with PML_ERR_NONFINITE naming the step, the stage and
 * the culprit: the loss of the first such micro-batch, else the parameter whose
 * gradient is not finite nearest the loss, and, first, a weight that already was not
 * finite (an overflowing update). opts.check_numerics checks every op instead.
 *
 * Data comes from a callback, so the executor does not know about files or
 * generators: it asks for input k (or the labels) of micro-batch mb of step s.
 *
 * With opts.dist the pipeline is one rank's part of a multi-process run: the same
 * step, with the stages of other ranks run by those ranks; with data-parallel replicas
 * (dist->replicas > 1) this rank's pipeline runs only its replica's share of the
 * micro-batches, and each stage's gradients are summed over the replicas before the
 * update.
 *
 * Thread safety: one pml_pipeline is driven by one thread at a time (its stage
 * threads are internal). The library never prints. */
#ifndef PML_TRAIN_PIPELINE_H
#define PML_TRAIN_PIPELINE_H

#include <stdatomic.h>

#include "backend_ops.h"
#include "plan/plan.h"

typedef struct pml_dist pml_dist;

/* Fills `dst` (the input's numel elements of its dtype, f32 or i32) with input `input`
 * of micro-batch `mb` of step `step`; `input` is -1 for the labels. */
typedef pml_status (*pml_feed_fn)(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err);

typedef struct pml_pipeline_opts {
    uint64_t seed; /* parameter initialisation and dropout */
    int threads;   /* CPU threads in all; each stage's kernels get threads / stages (at least 1), and
                    * with a host backend and fewer threads than stages, the stages take turns */
    pml_feed_fn feed;
    void *feed_ctx;
    int trace;   /* record a timeline of every instruction (pml_pipeline_trace) */
    int unfused; /* run every node on its own, ignoring the plan's fused kernels (tests, comparisons) */
    /* The caller runs the stages one after another (pml_pipeline_forward only: an
     * inference session), never at once: the backend may let them share its threads. */
    int stages_in_turn;
    const pml_backend_ops *backend; /* what runs each stage's work; NULL: the CPU backend */
    const int *stage_gpu;           /* the backend's device per stage device (pml_backend_conf); not owned */
    /* The other processes of a multi-process run (dist.h): this process then runs only
     * stage devices [dist->first, dist->last) (its stages, or with chunks every chunk
     * of those devices), and the gradient norm and the loss are summed
     * over every rank. NULL: one process runs every stage. Not owned. The backend keeps
     * of the other ranks' stages only their parameters, optimizer state and messages
     * (backend_ops.h's runs). Evaluation, inference and the parameter accessors stay
     * local: they see this process's copies, current only for its own stages
     * (pml_dist_params_gather brings the rest), and evaluation and inference run on a
     * one-process pipeline of the whole model made for the call from those copies. */
    pml_dist *dist;
    /* Check every op's output and stop at the first non-finite value, naming the op and
     * node_where[node] (backend_ops.h's pml_backend_conf; the CPU backend checks, others
     * refuse). node_where: per plan node, its source location, or NULL; not owned. */
    int check_numerics;
    const char *const *node_where;
    /* With dist: this rank's stop request (non-zero: asked; the session's, pml.h's
     * pml_session_request_stop), added to the sum over the ranks that every step makes
     * for the gradient norm, so that all ranks learn in the same step whether any asked
     * (pml_pipeline_stop_asked) at the cost of one more number in a message already
     * sent. NULL: none. Not owned. */
    const atomic_int *stop;
} pml_pipeline_opts;

/* One span of a stage's timeline, in microseconds since the pipeline was created. */
typedef struct pml_trace_event {
    uint8_t kind; /* the timetable instruction: load, recv_act, fwd, ..., step; or PML_TRACE_OP */
    int32_t mb;
    int32_t unit; /* PML_TRACE_OP: the plan node (>= 0) or kernel k (-k - 1) that ran; else the
                   * instruction's chunk (plan stage), which differs from the list's own
                   * stage under interleaved 1F1B */
    int32_t op;   /* PML_TRACE_OP: the op run, or PML_WORK_FUSED / PML_WORK_UPDATE (backend_ops.h) */
    int64_t step;
    double t0, t1;
    double cpu; /* PML_TRACE_OP: the thread's CPU time in it (microseconds), or -1 */
    int32_t thread; /* PML_TRACE_OP: 0 the stage's thread, k >= 1 its backend's helper k (backend_ops.h) */
} pml_trace_event;

/* A span of one unit of a backend's work (a node or fused kernel of the plan, a
 * deferred weight gradient, a stage's update) inside a forward, backward or update span: recorded, where
 * the backend times its work, for the pipeline's steps 2 to PML_TRACE_OP_STEPS + 1 (the
 * first is warm-up), so that a long run's timeline stays small. */
enum { PML_TRACE_OP = 64, PML_TRACE_OP_STEPS = 4 }; /* past every timetable kind */

typedef struct pml_step_stats {
    int64_t step;     /* the step just taken, 0-based */
    double loss;      /* mean over the global batch */
    double grad_norm; /* global L2 norm of the gradient, before clipping */
    double lr;
    double seconds; /* wall time of the step */
    /* f16's dynamic loss scaling (1 and 0 otherwise): the scale the step ran with, and
     * whether its gradients overflowed, so that it updated nothing */
    double loss_scale;
    int skipped;
} pml_step_stats;

typedef struct pml_pipeline pml_pipeline;

/* A distillation plan's teacher weights come from a file, which is the checkpoint
 * layer's to read: after create, the caller runs pml_ckpt_load_teacher (ckpt/checkpoint.h),
 * which calls pml_pipeline_teacher_loaded. Until then step, evaluate and forward refuse
 * to run, so a teacher never runs on random weights. */
pml_status pml_pipeline_create(const pml_plan *plan, const pml_pipeline_opts *opts, pml_pipeline **out, pml_err *err);
void pml_pipeline_destroy(pml_pipeline *p);
void pml_pipeline_teacher_loaded(pml_pipeline *p);

/* One training step of the global batch. */
pml_status pml_pipeline_step(pml_pipeline *p, pml_step_stats *stats, pml_err *err);

/* A parameter's f32 master weights (numel elements; writable between steps): the
 * backend's host copy, made current first; edits reach the backend before it next
 * runs. NULL for an index out of range or when the backend cannot copy. */
float *pml_pipeline_param(pml_pipeline *p, int param);

/* Every parameter's weights of `from` into `to`, two pipelines of one plan (host copies,
 * pml_pipeline_param); PML_ERR_DEVICE naming the first a backend could not copy. */
pml_status pml_pipeline_copy_params(pml_pipeline *to, pml_pipeline *from, pml_err *err);

/* Serve parameter `param`'s linear products in int8 from q and scale (backend_ops.h's
 * param_int8: copied); *served: how many products will (0 where the backend has no
 * int8 products or none fits). The f32 weights stay what the caller wrote. Such a
 * pipeline serves only (step refuses). */
pml_status pml_pipeline_param_int8(pml_pipeline *p, int param, const int8_t *q, const float *scale, float in_scale,
                                   int *served, pml_err *err);
/* Calibration (backend_ops.h's observe_linear, observed_absmax): record the largest |x|
 * param's linear products read from now on; that maximum. */
pml_status pml_pipeline_observe_linear(pml_pipeline *p, int param, int *observed, pml_err *err);
pml_status pml_pipeline_observed_absmax(pml_pipeline *p, int param, float *absmax, pml_err *err);

/* Feed steps of held-out evaluation: a generator's rows from here on are never
 * trained on (a file dataset has no held-out rows: its evaluation reads training rows). */
#define PML_EVAL_STEP0 (INT64_C(1) << 32)

/* Evaluates the model, forward only with dropout off, on `batches` global batches fed
 * as steps PML_EVAL_STEP0, PML_EVAL_STEP0 + 1, ...: the mean loss, and, when the labels
 * are class indices of the output's last axis, the share of rows whose largest output
 * is the label (NaN otherwise). Call between steps. */
pml_status pml_pipeline_evaluate(pml_pipeline *p, int64_t batches, double *loss, double *accuracy, pml_err *err);

/* Inference: one micro-batch (conf.microbatch rows) forward, dropout off, no labels or
 * loss: only the forward nodes the output depends on run. inputs[k] holds model input
 * k's numel elements (f32 for a float input, i32 for an i32 one); `output` receives the
 * output's numel elements likewise (f32 for floats). opts.feed is not used. Call
 * between steps; a pipeline created with no feed serves inference only. */
pml_status pml_pipeline_forward(pml_pipeline *p, const void *const *inputs, void *output, pml_err *err);

/* With opts.trace: stage `s`'s spans recorded so far (all steps; PML_TRACE_OP ones
 * for the steps it says), and, over the stages
 * this process runs, the last step's measured bubble: 1 − (time stages spent
 * computing) / (stages × step time), and its transport wait: (time stages spent
 * blocked in receives, the wait for the sender's work included) / (stages × step
 * time). The spans' zero is pml_pipeline_trace_epoch, in CLOCK_MONOTONIC seconds. */
const pml_trace_event *pml_pipeline_trace(const pml_pipeline *p, int s, int *n);
/* With opts.trace: whether the next pml_pipeline_forward calls record their units' spans
 * (PML_TRACE_OP), and under which number (the spans' `step`): inference traces the
 * forwards it chooses (api_infer.c). Steps record their own, as above. */
void pml_pipeline_trace_forward(pml_pipeline *p, int on, int64_t number);
double pml_pipeline_last_bubble(const pml_pipeline *p);
double pml_pipeline_last_wait(const pml_pipeline *p);
double pml_pipeline_trace_epoch(const pml_pipeline *p);
int64_t pml_pipeline_steps_done(const pml_pipeline *p);
/* With opts.dist and opts.stop: whether any rank had a stop request when the last
 * step summed its gradient norm; the same answer on every rank. 0 otherwise. */
int pml_pipeline_stop_asked(const pml_pipeline *p);

/* For checkpoints (checkpoint.h). A parameter's optimizer state, numel f32 values
 * (writable between steps): `which` 0 is the first buffer (SGD's momentum, AdamW's
 * exp_avg), 1 the second (AdamW's exp_avg_sq). NULL when the optimizer keeps no such
 * buffer or the parameter is not trained (frozen from the start or unused). */
float *pml_pipeline_optim_state(pml_pipeline *p, int param, int which);

/* The backend's phase (plan/phase.h) with the automatic freeze's check due before the
 * next step run, for a checkpoint to save or restore the freeze's state; between steps. */
pml_status pml_pipeline_phase(pml_pipeline *p, struct pml_phase **out, pml_err *err);
/* f16's dynamic loss scaling (docs/language.md, "Precision"): the scale the next step
 * runs with and the good steps since it last changed, for checkpoints; set only between
 * steps. Without f16 the scale is 1 and setting it is refused. */
void pml_pipeline_loss_scale(const pml_pipeline *p, double *scale, int64_t *good);
pml_status pml_pipeline_set_loss_scale(pml_pipeline *p, double scale, int64_t good, pml_err *err);
/* How the backend runs the plan's 16-bit work (backend_ops.h's precision_note), or NULL. */
const char *pml_pipeline_precision_note(pml_pipeline *p);
/* The stage devices this process runs, [*first, *last): all, or its rank's. */
void pml_pipeline_devices(const pml_pipeline *p, int *first, int *last);
/* What stage device `dev` holds now (backend_ops.h's memory, summed over its chunks);
 * 0 and *out zeroed when the backend does not count. Between steps. */
int pml_pipeline_memory(pml_pipeline *p, int dev, pml_backend_memory *out);
/* Sets the number of steps taken, so the next step is step `step` (0-based): its data,
 * dropout, learning rate and optimizer step count follow. Only between steps. */
void pml_pipeline_set_step(pml_pipeline *p, int64_t step);

#endif

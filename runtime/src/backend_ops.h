/* backend_ops.h — the backend interface: what a device does for the pipeline executor,
 * as a table of function pointers over an opaque context (pml_backend_ops), and the
 * thin wrappers the executor calls (pml_backend_*). backend.h chooses which backend
 * runs; this is how the chosen one is driven. The CPU backend (cpu/stage.h) is always
 * built; a CUDA one plugs into the same table.
 *
 * The seam: the executor (exec/pipeline.c) owns everything about *when* — the stage
 * threads, the timetable, the transport, the gradient-norm barrier, the learning rate
 * and clipping, metrics and the trace. A backend owns everything about *where and how*
 * — a stage's memory, the forward and backward work of one micro-batch on one stage,
 * gradient accumulation, the optimizer update, parameters and optimizer state.
 *
 * One context serves a whole pipeline (all stages): the CPU shares one address space
 * between stages, and a CUDA context keeps one stream and its launches (CUBN) per stage.
 * Each backend decides at create which values it keeps (the CPU one after its lowering,
 * with a ring of micro-batch copies where a value outlives its pass; the CUDA one each
 * materialised value, a copy per micro-batch where it outlives its pass), and places
 * them with the runtime's one memory planner (plan/memplan.h): one arena per stage, in
 * one allocation, values never alive together sharing bytes. A plan file carries no
 * memory layout: docs/design.md, "One memory plan", says why. Calls that take `stage`
 * touch only that stage's memory.
 *
 * Threading. During a step each stage's worker thread calls the per-stage slots
 * (forward, backward, grad_sq, update, sync, upload/download of that stage's values)
 * for its own stage only, concurrently with the other workers; a backend needs no lock
 * for them. Everything else (create, destroy, begin, the parameter slots) is called by
 * the one thread driving the pipeline, between steps, with no worker running.
 *
 * Asynchrony and blocking. forward, backward and update may return before their work
 * is done (a CUDA backend queues it on the stage's stream). The executor calls `sync`
 * for a stage before it tells another stage, through the transport, that the stage's
 * values for a micro-batch are complete, and before the gradient-norm barrier. After
 * sync, the stage's values are complete for every reader the backend serves itself
 * (the other stages' passes): the CPU's are already; the CUDA backend records an event
 * that the reading pass's stream waits on, so the host does not wait. grad_sq returns
 * with the stage's work done. `download` makes a value's host copy current and waits.
 * No slot waits for another stage on the host: cross-stage waiting is the transport's
 * and the executor's. Bytes that leave the process go through host memory (copy_buf,
 * which waits for the stage's queued work: exec/staging.h).
 *
 * Values the executor touches. Inputs and labels are written, and the loss and output
 * read, through host memory the backend owns (host_value). A backend whose values live
 * in host memory hands out the value itself and leaves upload/download NULL: no copy.
 * Parameters and optimizer state are reached the same way, by plan parameter index,
 * for checkpoints and the C API (host_param, params_download/params_upload).
 * Boundary values (the tensors a stage hands the next one) are described as
 * (pointer, bytes, device) for a transport that moves bytes; the in-process transport
 * moves none, since stages share memory.
 *
 * Optional slots are NULL and mean "nothing to do"; only the wrappers below check
 * them. Required: create, destroy, begin, forward, backward, grad_sq, update,
 * host_value, host_param. Every slot returning pml_status reports failure in `err`;
 * none prints or exits. */
#ifndef PML_BACKEND_OPS_H
#define PML_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "plan/plan.h"

typedef struct pml_backend_ctx pml_backend_ctx;
struct pml_phase; /* plan/phase.h */

/* The kinds of message between stages: activations go forward to stage + 1, gradients
 * back to stage - 1. Backends name their boundary tensors by kind, transports carry
 * messages by kind (exec/transport.h). */
enum { PML_MSG_ACT = 0, PML_MSG_GRAD = 1 };

/* peer_id's sizes: a device's identity (a GPU's UUID) and a link's (NCCL's unique id). */
enum { PML_BACKEND_PEER_DEV = 16, PML_BACKEND_PEER_ID = 128 };

/* backward_half's halves of a backward pass. */
typedef enum pml_backend_bwd_half { PML_BACKEND_BWD_INPUT, PML_BACKEND_BWD_WEIGHT } pml_backend_bwd_half;

/* device_span's calls: a training forward, a backward, or one of its halves. */
typedef enum pml_backend_call {
    PML_BACKEND_CALL_FWD,
    PML_BACKEND_CALL_BWD,
    PML_BACKEND_CALL_BWD_INPUT,
    PML_BACKEND_CALL_BWD_WEIGHT,
    PML_BACKEND_CALLS /* how many */
} pml_backend_call;

/* on_work's `op` (below) for a fused kernel, and for a stage's optimizer update. */
enum { PML_WORK_FUSED = -1, PML_WORK_UPDATE = -2 };

/* What create needs besides the plan. */
typedef struct pml_backend_conf {
    uint64_t seed; /* parameter initialisation and dropout */
    int threads;   /* host threads for each stage's kernels (CPU) */
    int unfused;   /* run every node on its own, ignoring the plan's fused kernels */
    int stages_in_turn; /* no two stages ever run at once (pml_pipeline_opts): they may share threads */
    /* A device backend's physical device per stage device (timetable list, conf.stages /
     * conf.chunks of them), as exec/backend.h chose them from the plan's map; NULL: every
     * stage on device 0. Read at create only. */
    const int *stage_gpu;
    /* Per model stage (chunk): whether this process runs it (a rank runs its own,
     * exec/dist.h); NULL: every stage. Of a stage it does not run, a backend keeps only
     * what the stages it runs need: its parameters and optimizer state (ranks gather
     * them: exec/dist_params.h) and the values it sends them (a transport receives into
     * those); no activations, gradients, derived weights or scratch, so a rank holds
     * its own stages' memory, not the model's. Read at create only. */
    const uint8_t *runs;
    /* The micro-batches this process runs, for work done over all of them at once (a
     * data-parallel replica runs only its share); mb_count 0: all of them. */
    int64_t mb_first, mb_count;
    /* Check every op's output, forward and backward, and fail the pass at the first
     * non-finite value (PML_ERR_NONFINITE naming the op, its node, stage, micro-batch,
     * step and node_where[node]); a backend that cannot check refuses it at create.
     * node_where: per plan node, where the source made it ("path:line:col"; NULL or ""
     * when unknown: a plan file carries no locations); may be NULL; not owned. */
    int check_numerics;
    const char *const *node_where;
    /* Optional: told of each unit of work a stage ran, on the stage's thread, with its
     * start and end (CLOCK_MONOTONIC, seconds): `unit` is a plan node n (>= 0) or a
     * plan kernel k as -k - 1 (-1 for a stage's whole update); `op` the op the backend
     * ran for it (pml_opcode: a node's own, or what it became, such as the matmul a
     * weight gradient's transpose folds into) or PML_WORK_FUSED / PML_WORK_UPDATE; mb
     * its micro-batch, or the first of a deferred weight gradient's; cpu the CPU time
     * the calling thread spent in it (seconds), or -1 when not measured; `thread` 0.
     * Then, for each helper thread of the stage (thread >= 1: the CPU backend's pool
     * workers) that took part in the unit, the same call with its own span and CPU
     * time. NULL: nothing is timed (a backend that cannot time leaves it unused).
     * work_timed: with on_work, units are timed only while *work_timed is non-zero
     * (NULL: always), so that an untraced call reads no clocks. */
    void (*on_work)(void *ctx, int stage, int64_t mb, int unit, int op, int thread, double t0, double t1,
                    double cpu);
    /* Record where the device runs each training call, for device_span (a trace). */
    int time_calls;
    void *on_work_ctx;
    const int *work_timed;
} pml_backend_conf;

/* How forward runs a micro-batch. */
typedef enum pml_backend_fwd_mode {
    PML_BACKEND_FWD_TRAIN = 0, /* every forward node, dropout on, values kept for backward */
    PML_BACKEND_FWD_EVAL = 1,  /* every forward node (loss included), dropout off */
    PML_BACKEND_FWD_SERVE = 2  /* dropout off, only the nodes the output depends on */
} pml_backend_fwd_mode;

/* The values the executor reads or writes itself; `k` is the input's index for
 * PML_BACKEND_VAL_INPUT and 0 otherwise. Loss and output are f32, labels and inputs f32
 * or i32 as the plan says. */
typedef enum pml_backend_value {
    PML_BACKEND_VAL_INPUT = 0,
    PML_BACKEND_VAL_LABELS = 1,
    PML_BACKEND_VAL_LOSS = 2,
    PML_BACKEND_VAL_OUTPUT = 3
} pml_backend_value;

typedef enum pml_device_kind { PML_DEVICE_HOST = 0, PML_DEVICE_CUDA = 1 } pml_device_kind;

/* One tensor of a boundary message: where it lies and how many bytes it has. */
typedef struct pml_backend_buf {
    void *data;
    size_t bytes;
    pml_device_kind device;
    int32_t param; /* grads: the plan parameter whose gradient sums these are; boundary: -1 */
} pml_backend_buf;

/* What one stage holds in the backend's memory, in bytes, by what it is for (memory,
 * below). Their sum is what the stage holds at its peak: the CPU backend allocates all
 * of it at create but the thread temporaries, which grow to the largest call a stage's
 * threads have made and are kept (so after a step, the step's peak). */
typedef struct pml_backend_memory {
    size_t values;     /* the stage's arena: parameters, their 16-bit copies, values kept or temporary */
    size_t grads;      /* gradient accumulators */
    size_t optimizer;  /* optimizer state */
    size_t derived;    /* derived weight copies: packed panels, int8 weights */
    size_t scratch;    /* fused groups' and int8 products' scratch */
    size_t temporaries; /* thread temporaries (16-bit operands widened for a call) */
} pml_backend_memory;

/* The sum of every field of m. */
size_t pml_backend_memory_total(const pml_backend_memory *m);

typedef struct pml_backend_ops {
    const char *name;
    /* Where its kernels run. PML_DEVICE_HOST: on the calling stage thread (and the
     * helper threads it is given), so a stage thread that computes occupies a core and
     * the executor lets no more of them compute at once than the threads it was given;
     * a device backend's stage threads only launch work, and are not counted. */
    pml_device_kind device;

    /* Lowers the plan, allocates every stage's memory, initialises the parameters
     * (from conf->seed; a teacher's are loaded afterwards through host_param) and the
     * optimizer state, computes constants. The plan must outlive the context. */
    pml_status (*create)(const pml_plan *plan, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err);
    void (*destroy)(pml_backend_ctx *b); /* NULL-safe */

    /* Before a step (train 1) or an evaluation or inference (train 0): parameters may
     * have changed, so values that depend on them only are stale; `step` seeds
     * dropout and decides which parameters are frozen; with train, gradient
     * accumulators are zeroed. */
    pml_status (*begin)(pml_backend_ctx *b, int64_t step, int train, pml_err *err);

    /* The forward (or backward) work of micro-batch mb on `stage`; backward adds the
     * micro-batch's gradients to the stage's accumulators. */
    pml_status (*forward)(pml_backend_ctx *b, int stage, int64_t mb, pml_backend_fwd_mode mode, pml_err *err);
    pml_status (*backward)(pml_backend_ctx *b, int stage, int64_t mb, pml_err *err);
    /* Optional: one half of micro-batch mb's backward on `stage` (the timetable's
     * bwd_input and bwd_weight): its input gradients, which the previous stage is sent,
     * then, later, its weight gradients, added to the accumulators; the two together do
     * what backward does. NULL: the backend runs whole backwards only, and create
     * refuses a plan whose timetable splits them (schedule = zero_bubble). */
    pml_status (*backward_half)(pml_backend_ctx *b, int stage, int64_t mb, pml_backend_bwd_half half, pml_err *err);

    /* The stage's share of the squared global gradient norm: the squared L2 norm of its
     * trained parameters' mean gradient (accumulator / micro-batches), after any work
     * deferred to the step's end. Then update applies the optimizer with learning rate
     * `lr` to the gradient mean times `clip` (the executor's clipping factor). */
    pml_status (*grad_sq)(pml_backend_ctx *b, int stage, double *sq, pml_err *err);
    pml_status (*update)(pml_backend_ctx *b, int stage, double lr, double clip, pml_err *err);

    /* Optional: makes the values of the stage's last pass complete for the other stages'
     * later passes (above); NULL: every call is synchronous. */
    pml_status (*sync)(pml_backend_ctx *b, int stage, pml_err *err);

    /* Host memory of a value of micro-batch mb: the executor writes inputs and labels
     * there and reads loss and output. NULL when the plan has no such value. */
    void *(*host_value)(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb);
    /* Optional: host copy -> device after the executor wrote it (inputs, labels), and
     * device -> host copy before it reads (loss, output). Called on the value's stage. */
    pml_status (*upload)(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err);
    pml_status (*download)(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err);

    /* Host memory of parameter `param`'s f32 weights (which -1) or its optimizer state
     * (which 0: SGD's momentum or AdamW's exp_avg; 1: AdamW's exp_avg_sq), numel
     * values; NULL when there is no such buffer. */
    float *(*host_param)(pml_backend_ctx *b, int param, int which);
    /* Optional: make the host copies of every parameter and optimizer state current
     * (after steps), and send host edits back (before the next step). */
    pml_status (*params_download)(pml_backend_ctx *b, pml_err *err);
    pml_status (*params_upload)(pml_backend_ctx *b, pml_err *err);

    /* Optional: the tensors of the message `stage` sends for micro-batch mb (kind
     * PML_MSG_ACT to stage + 1, PML_MSG_GRAD to stage - 1): up to `cap` of them in
     * `out`, their number in *n (it may exceed cap: call again with more room). */
    pml_status (*boundary)(pml_backend_ctx *b, int stage, int kind, int64_t mb, pml_backend_buf *out, int cap, int *n,
                           pml_err *err);

    /* Optional: the gradient sums of the parameters `stage` updates at this step (f32,
     * summed over micro-batches), complete once grad_sq returned; data-parallel
     * replicas add theirs together here before the update. Listed like boundary. */
    pml_status (*grads)(pml_backend_ctx *b, int stage, pml_backend_buf *out, int cap, int *n, pml_err *err);
    /* Optional, required of a backend whose boundary or grads buffers lie on a device
     * when they must cross processes (exec/staging.h): copies buf's bytes (a buffer
     * boundary or grads listed) into `host` (to_host 1) or from it (0), ordered after
     * the work already queued for `stage` (the calling stage thread's), and complete on
     * return: the host bytes are current, or the device's are before the stage's next
     * pass. */
    pml_status (*copy_buf)(pml_backend_ctx *b, int stage, const pml_backend_buf *buf, void *host, int to_host,
                           pml_err *err);

    /* Optional, all five or none: messages between processes from device to device (the
     * CUDA backend's NCCL), where the two ends' devices differ; the transport uses a link
     * per (message kind, sending stage) whose ends are in two processes, and copy_buf
     * where there is none. peer_id: this process's device (PML_BACKEND_PEER_DEV bytes,
     * equal on two processes only when they share it) and, for a link this end will
     * send on, a new link's identifier (PML_BACKEND_PEER_ID bytes); UNSUPPORTED when it
     * cannot link now (the library is missing, or turned off). peer_link: link `link`
     * (0, 1, ... in the order every process makes them), this end sending (`sends`) or
     * receiving the messages of `kind` from stage `from`, with the sender's identifier;
     * returns once both ends joined. peer_send: stage `from`'s message of mb, after the
     * stage's queued work; peer_recv: into this process's copies of the sender's
     * boundary buffers, before stage `to`'s next pass; both may return before the bytes
     * moved. peer_poll: 1 when everything queued on the link is done, 0 not yet, or
     * negative with err set when the link failed. Stage threads call them for their own
     * links; peer_link comes from the driving thread between steps. */
    pml_status (*peer_id)(pml_backend_ctx *b, int stage, void *dev, void *id, pml_err *err);
    pml_status (*peer_link)(pml_backend_ctx *b, int link, int kind, int from, int sends, const void *id, pml_err *err);
    pml_status (*peer_send)(pml_backend_ctx *b, int link, int kind, int from, int64_t mb, pml_err *err);
    pml_status (*peer_recv)(pml_backend_ctx *b, int link, int kind, int from, int to, int64_t mb, pml_err *err);
    int (*peer_poll)(pml_backend_ctx *b, int link, pml_err *err);
    /* Optional, both or none, and only with the five above: a stage's gradient sums added
     * over the data-parallel replicas device to device (NCCL's all-reduce), where every
     * replica's copy of the stage lies on a device of its own. peer_group: join `link`
     * (numbered past the messages' links: 2 S + stage) as member `rank` (its replica) of
     * `size`, for stage `stage`, with the identifier member 0 made (peer_id); returns
     * once every member joined. peer_sum: adds the stage's gradient sums (as grads
     * lists them) over the group in place, every member getting the same bits, after the
     * stage's queued work and before its next; it may return before the sums are in
     * (peer_poll on `link` says when). From the stage's thread, like peer_send. */
    pml_status (*peer_group)(pml_backend_ctx *b, int link, int stage, int rank, int size, const void *id, pml_err *err);
    pml_status (*peer_sum)(pml_backend_ctx *b, int link, int stage, pml_err *err);
    /* Optional: weights tied across stages (plan.h's tie), in one process: every copy's
     * gradient sum and its root's added in stage order into each of them, after every
     * stage's grad_sq and before the next; returns with the work done. A backend
     * without it lists host gradients (grads) and the executor adds them. */
    pml_status (*sum_ties)(pml_backend_ctx *b, pml_err *err);

    /* Optional: the context's phase (plan/phase.h), after running the automatic
     * freeze's check due before `step` (the next step) if it has not run, so that the
     * phase holds all the state a checkpoint must save; a restore writes it back. */
    pml_status (*phase)(pml_backend_ctx *b, int64_t step, struct pml_phase **out, pml_err *err);

    /* Optional, required for a plan of precision f16: the factor the loss's gradient
     * starts every backward pass with from the next begin on (dynamic loss scaling;
     * 1 until set). Every gradient, gradient sum and grad_sq is then that many times
     * (squared for grad_sq) the loss's own; the executor passes update a `clip` that
     * undoes it. */
    pml_status (*loss_scale)(pml_backend_ctx *b, double scale, pml_err *err);

    /* Optional: how this backend runs the plan's 16-bit work, one line for `pmlc
     * train`'s first (NULL: the plan has none, or nothing to say). */
    const char *(*precision_note)(pml_backend_ctx *b);

    /* Optional: serve parameter `param`'s products in int8 (quant/int8.h): q [rows,
     * cols] and scale [rows] (W ~= q * scale per row), copied. The forward matmuls that
     * read the parameter transposed as their right operand (a linear layer, x @ W^T)
     * then compute in int8, accumulating in int32; *served says how many there are (0:
     * none fits, and the f32 weights serve it). The f32 weights (host_param) are left as
     * the caller wrote them (dequantized) and serve everything else. A context given
     * int8 weights serves only: begin with train refuses. Called between steps by the
     * driving thread; may allocate (once per parameter), so a call does not. NULL: the
     * backend has no int8 products (the wrapper says *served 0). in_scale > 0: the
     * products' activations use that static scale (a calibrated file) instead of each
     * row's max|x| / 127. */
    pml_status (*param_int8)(pml_backend_ctx *b, int param, const int8_t *q, const float *scale, float in_scale,
                             int *served, pml_err *err);

    /* Optional, both or neither (calibration, `pmlc quantize --calibrate`): from now on
     * every forward run of the products param_int8 would serve for `param` (still in
     * f32) records the largest |x| of its left operand; *observed: how many products
     * (0: none fits). observed_absmax: that maximum over them since, NaN where a
     * non-finite x was seen, 0 where none ran. */
    pml_status (*observe_linear)(pml_backend_ctx *b, int param, int *observed, pml_err *err);
    pml_status (*observed_absmax)(pml_backend_ctx *b, int param, float *absmax, pml_err *err);

    /* Optional, for a backend whose work runs after its calls return (a device's): when
     * the device ran stage's `call` for micro-batch mb in the training step that just
     * ended, from its start to its end, as CLOCK_MONOTONIC seconds; 0 where it has no
     * such time (conf.time_calls was off, or the call did not run). Asked after every
     * stage's grad_sq, with the device idle. */
    int (*device_span)(pml_backend_ctx *b, int stage, pml_backend_call call, int64_t mb, double *t0, double *t1);
    /* Optional: what `stage` holds now (pml_backend_memory), counted by the backend as it
     * allocates, for comparing with the plan's estimate and the train block's memory
     * limit. NULL: the backend does not count (the run checks nothing). */
    void (*memory)(pml_backend_ctx *b, int stage, pml_backend_memory *out);
} pml_backend_ops;

/* A backend at work: its table and its context. */
typedef struct pml_backend_inst {
    const pml_backend_ops *ops;
    pml_backend_ctx *ctx;
    const pml_plan *plan; /* the wrappers check stage and micro-batch arguments against it */
} pml_backend_inst;

/* Checks that every required slot is set, and that the backend runs what the plan's
 * timetable asks (split backwards need backward_half), then creates the context. */
pml_status pml_backend_create(const pml_backend_ops *ops, const pml_plan *plan, const pml_backend_conf *conf,
                              pml_backend_inst *out, pml_err *err);
void pml_backend_destroy(pml_backend_inst *b);

pml_status pml_backend_begin(pml_backend_inst *b, int64_t step, int train, pml_err *err);
pml_status pml_backend_forward(pml_backend_inst *b, int stage, int64_t mb, pml_backend_fwd_mode mode, pml_err *err);
pml_status pml_backend_backward(pml_backend_inst *b, int stage, int64_t mb, pml_err *err);
pml_status pml_backend_backward_half(pml_backend_inst *b, int stage, int64_t mb, pml_backend_bwd_half half,
                                     pml_err *err);
pml_status pml_backend_grad_sq(pml_backend_inst *b, int stage, double *sq, pml_err *err);
pml_status pml_backend_update(pml_backend_inst *b, int stage, double lr, double clip, pml_err *err);
pml_status pml_backend_sync(pml_backend_inst *b, int stage, pml_err *err);
void *pml_backend_host_value(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb);
pml_status pml_backend_upload(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb, pml_err *err);
pml_status pml_backend_download(pml_backend_inst *b, pml_backend_value what, int k, int64_t mb, pml_err *err);
float *pml_backend_host_param(pml_backend_inst *b, int param, int which);
pml_status pml_backend_params_download(pml_backend_inst *b, pml_err *err);
pml_status pml_backend_params_upload(pml_backend_inst *b, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED (a transport that moves bytes cannot work). A
 * stage, kind or micro-batch outside the plan is PML_ERR_INVALID_ARG here, so the
 * backends' slots need not check them. */
pml_status pml_backend_boundary(pml_backend_inst *b, int stage, int kind, int64_t mb, pml_backend_buf *out, int cap,
                                int *n, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED (the executor adds host gradients instead). */
pml_status pml_backend_sum_ties(pml_backend_inst *b, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED (replicas cannot sum gradients). */
pml_status pml_backend_grads(pml_backend_inst *b, int stage, pml_backend_buf *out, int cap, int *n, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED, naming what needed the bytes (`why`). A
 * host buffer is copied with memcpy without asking the backend. */
pml_status pml_backend_copy_buf(pml_backend_inst *b, int stage, const pml_backend_buf *buf, void *host, int to_host,
                                const char *why, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED (the automatic freeze's state cannot be saved). */
pml_status pml_backend_phase(pml_backend_inst *b, int64_t step, struct pml_phase **out, pml_err *err);
/* Without the slot: PML_ERR_UNSUPPORTED unless scale is 1. */
pml_status pml_backend_loss_scale(pml_backend_inst *b, double scale, pml_err *err);
const char *pml_backend_precision_note(pml_backend_inst *b); /* NULL without the slot */
/* Without the slot: 0, *out zeroed. */
int pml_backend_memory_of(pml_backend_inst *b, int stage, pml_backend_memory *out);
/* Without the slot: PML_OK, *served 0 (the f32 weights serve). */
pml_status pml_backend_param_int8(pml_backend_inst *b, int param, const int8_t *q, const float *scale, float in_scale,
                                  int *served, pml_err *err);
/* Without the slots: PML_OK, *observed 0; observed_absmax then PML_ERR_UNSUPPORTED. */
pml_status pml_backend_observe_linear(pml_backend_inst *b, int param, int *observed, pml_err *err);
pml_status pml_backend_observed_absmax(pml_backend_inst *b, int param, float *absmax, pml_err *err);

#endif

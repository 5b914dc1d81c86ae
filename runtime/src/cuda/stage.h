/* stage.h — the CUDA backend: the backend table (backend_ops.h) over a plan's GPU code
 * (its CUBN section), so the pipeline executor runs a plan's stages on a GPU.
 *
 * What runs: for each stage, the plan's kernels of that stage in running order — a
 * fused kernel as one launch of its compiled function (the launch contract of
 * compiler/src/gpu/cuda_codegen.h), a matmul as one cuBLAS GEMM (strided-batched when its
 * batch axes allow, else one per output matrix). Gradients are summed over
 * micro-batches on the device (a weight gradient's GEMM adds its product to the
 * accumulator; other gradients are added by cuBLAS axpy), the squared norm comes from cuBLAS, and
 * the optimizer is the plan's own update kernel (pml_adamw_f32 / pml_sgd_f32), in the
 * same arithmetic as plan/optim.c (TF32 GEMMs only when PML_CUDA_TF32=1). Values are
 * stored as the plan types them (compiler/src/ir/precision.h): f32 and i32, and bf16 or
 * f16 under precision = bf16 or f16, whose kernels compute in f32 and whose products run
 * on cuBLAS's 16-bit paths with f32 accumulation; parameters, gradients and optimizer
 * state stay f32. f16's loss scale is the executor's; this backend multiplies the loss
 * gradient's seed by it (loss_scale: the GPU code's pml_loss_scale and the seed's buffer).
 *
 * Streams and order: each stage has its own non-blocking stream and cuBLAS handle;
 * forward, backward, update and the copies of inputs and labels only queue work on it,
 * so stages overlap on the device as their threads overlap on the host, and nothing
 * inside a step waits on the host but the gradient norm. `sync`, which the executor
 * calls before a send, records an event after the stage's last pass; a pass of another
 * stage that reads those values (in place, in the same device memory) first makes its
 * stream wait for that event. The send happens after the record on the host, so the
 * wait always finds the event of this step. grad_sq drains the stage's stream, so after
 * the norm barrier every stream is idle and a new step may overwrite any value.
 *
 * Graphs: a training pass of a stage on a micro-batch is the same work with the same
 * pointers at every step, so it is captured once into a CUDA graph and replayed (one
 * launch instead of dozens: the many small kernels of a micro-batch were bound by
 * launch cost). Not for a stage whose kernels take the dropout seed (it changes every
 * step), nor with PML_CUDA_GRAPHS=0. A freeze (scheduled or automatic: plan/phase.h)
 * removes backward work from its step on; the backward graphs are then captured anew.
 *
 * Memory: every tensor lives in device memory; one buffer per micro-batch for a value
 * that outlives its pass (read by the backward pass or by another stage, or read and
 * written by the executor), one reused buffer otherwise — the stream's order makes the
 * reuse safe. All of them lie in one device allocation, every stage's arena in it,
 * each value where the runtime's memory planner puts it (plan/memplan.h): a value made
 * and read within one pass shares bytes with values of its stage that are never alive
 * with it, which the stream's order makes safe as well. Accumulators and optimizer
 * state are allocations of their own. Inputs, labels, loss and output have pinned host
 * copies per micro-batch; parameters and optimizer state have host copies made current
 * by params_download.
 *
 * Devices (cuda/devices.h): each stage runs on the GPU the plan's `place` map (after
 * --devices) gives it, in that GPU's primary context, its values in that GPU's arena.
 * Stages on one GPU hand over in place through events, as above; a stage reading a value
 * of a stage on another GPU reads a copy in its own GPU's memory, made on its stream
 * (cuMemcpyPeerAsync) after the event.
 *
 * Ranks (exec/dist.h): each process's context holds every stage, as the CPU backend's
 * does, but runs only its rank's; the executor places another rank's stages on the GPU
 * of this rank's nearest stage, where their messages to it land. Boundary values and
 * gradient sums cross processes through host copies (copy_buf, exec/staging.h), which
 * is what ranks sharing one GPU need (NCCL refuses them); boundary messages between
 * ranks on different GPUs go device to device over NCCL links (cuda/peer.h).
 *
 * The context's layout is private to cuda/stage*.c. */
#ifndef PML_CUDA_STAGE_H
#define PML_CUDA_STAGE_H

#include "backend_ops.h"
#include "cuda/blas.h"
#include "cuda/module.h"
#include "plan/phase.h"

extern const pml_backend_ops pml_cuda_backend_ops;

/* Every value starts where cuMemAlloc started each one before the arena (256 bytes). */
#define PML_CUDA_MEM_ALIGN 256

/* ---- private to cuda/stage*.c ----------------------------------------------------- */

/* How a matmul launch maps onto cuBLAS: `calls` GEMMs of `batch` matrices each. */
typedef struct pml_cuda_gemm_shape {
    int64_t m, n, k, batch;
    int64_t sa, sb, sc; /* batch strides in elements (0: broadcast) */
    int64_t calls;      /* > 1 when the batch axes broadcast partially: one call per output matrix */
    int rank;           /* of the output's batch axes, for the per-matrix offsets */
    int64_t dims[PML_PLAN_MAX_RANK], st_a[PML_PLAN_MAX_RANK], st_b[PML_PLAN_MAX_RANK];
} pml_cuda_gemm_shape;

/* The parts of a micro-batch's work on a stage, each a launch list, a captured graph
 * and an event: the forward pass, the backward (with a split timetable its input half:
 * zero bubble's bwd_input), and the weight half (bwd_weight; empty without a split). */
enum { PML_CUDA_FWD = 0, PML_CUDA_BWD = 1, PML_CUDA_WGT = 2, PML_CUDA_PASSES = 3 };

typedef struct pml_cuda_stage {
    int gpu;   /* its GPU: an index into the context's gpus */
    int group; /* stages of one group read each other's values in place (devices.h) */
    pml_cu_stream stream;
    pml_cuda_blas *blas;
    int *list[PML_CUDA_PASSES], n_list[PML_CUDA_PASSES]; /* per part: its launch indices (plan gpu_launches) */
    int *params, n_params;
    int *sends[2], n_sends[2];   /* roots of the values this stage sends, per message kind */
    pml_cu_ptr flag;             /* the index-error flag of its launches that check indices */
    int checks_index, seeded;    /* some launch checks indices / takes the dropout seed */
    pml_cu_graph_exec *graph[PML_CUDA_PASSES]; /* per part and micro-batch: captured work */
    pml_cu_event *done[PML_CUDA_PASSES];       /* per part and micro-batch: recorded by sync after it */
    int last_pass, pending;      /* the pass sync records (pending: one ran since the last sync) */
    int64_t last_mb;
    int *deps[PML_CUDA_PASSES], n_deps[PML_CUDA_PASSES]; /* per part: other stages' parts it reads (stage * 3 + part) */
    /* devices.h: roots this stage reads from another group, copied before each pass
     * (pulls, each in the first pass that reads it) or at begin (statics: parameters and
     * constants); mirror[root] is its copy (0: read in place), NULL when it has none. */
    int *pulls[PML_CUDA_PASSES], n_pulls[PML_CUDA_PASSES];
    int *statics, n_statics;
    pml_cu_ptr *mirror;
    pml_cu_ptr mirrors;     /* the one allocation the mirrors lie in */
    pml_cu_event published; /* recorded at begin after its update, for other groups' statics */
    /* With conf.time_calls: per training call (pml_backend_call) and micro-batch, timing
     * events at its start (once its inputs are ready) and end; timed[call][mb]: recorded
     * in this step (device_span). */
    pml_cu_event *span[PML_BACKEND_CALLS][2];
    uint8_t *timed[PML_BACKEND_CALLS];
} pml_cuda_stage;

/* One GPU of the context (devices.h). */
typedef struct pml_cuda_gpu {
    int ordinal; /* the machine's device number */
    pml_cu_device dev;
    pml_cu_context cu; /* its primary context, retained */
    int sms;
    pml_cuda_module mod; /* the plan's image for it, loaded in cu */
    pml_cu_ptr arena;    /* the values of its stages */
    size_t arena_bytes;
} pml_cuda_gpu;

typedef struct pml_cuda_ctx {
    const pml_plan *plan;
    pml_backend_conf conf;
    const pml_cuda_driver *d;
    pml_cuda_gpu *gpus; /* the GPUs the stages run on (devices.h) */
    int n_gpus;
    int S;
    int64_t M;
    int64_t step;
    int train_mode; /* begin's `train`: dropout on */
    int graphs;     /* capture training passes (see above) */
    int tf32;       /* PML_CUDA_TF32=1: f32 GEMMs on the tensor cores in TF32 (opt-in: ~1e-3 relative) */
    int loss_seed;  /* plan.h's pml_plan_loss_seed: the node f16's loss scale multiplies, or -1 */
    double loss_scale;         /* in every GPU's pml_loss_scale (the prelude's) and the seed's buffer, if any */
    int fn_adamw, fn_sgd;      /* module function indices of the optimizer kernels (every GPU's module) */
    int *fn_of;                /* per plan gpu function: its module function index */
    pml_cuda_gemm_shape *gemm; /* per launch (matmuls only) */
    int32_t *root;             /* per node: the node whose buffer holds its value (a reshape's source) */
    pml_cu_ptr *dbuf;          /* per root node: device buffer (in its stage's GPU's arena), per-micro-batch copies
                                * end to end */
    uint8_t *per_mb;
    size_t *bytes;   /* per node: one copy's size */
    void **host;     /* per node the executor reads or writes: pinned host copies, end to end */
    uint8_t *serves; /* per node: the output depends on it (FWD_SERVE) */
    int split;       /* the timetable splits backwards into halves (plan/halves.h) */
    uint8_t *runs;   /* per stage: this process runs it (backend_ops.h's runs; all without) */
    uint8_t *half;   /* per node: the part of a micro-batch's work that makes it (PML_CUDA_FWD..WGT) */
    pml_cu_ptr *acc, *m, *v;
    /* Per node: the accumulator its GEMM adds to (C += A B) instead of writing its own
     * buffer, for a weight gradient nothing else reads; such a parameter is `direct`. */
    pml_cu_ptr *acc_into;
    uint8_t *direct;
    float **h_param, **h_m, **h_v; /* host copies (host_param) */
    pml_cuda_stage *stages;
    pml_cu_ptr tie_scratch; /* a tied weight's gradient from another GPU, on its first stage's (sum_ties) */
    int tie_scratch_gpu;
    /* With conf.time_calls, per GPU: an event recorded at each training step's begin,
     * once its streams were idle, and the host clock (CLOCK_MONOTONIC seconds) when it
     * completed: the device's times on the host's clock (device_span). */
    pml_cu_event *clock_event;
    double *clock_host;
    struct pml_cuda_link *links; /* per link id (3 S), made on first use: NCCL links to other ranks (cuda/peer.h) */
    pml_phase phase; /* what is frozen this step, and which backward work runs (plan/phase.h) */
} pml_cuda_ctx;

/* stage_build.c */
pml_status pml_cuda_ctx_create(const pml_plan *plan, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err);
/* f16's loss scale: every GPU's pml_loss_scale (the prelude's), and the seed's buffer
 * where a kernel reads it as one (backend_ops.h's loss_scale). */
pml_status pml_cuda_loss_scale(pml_backend_ctx *b, double scale, pml_err *err);
void pml_cuda_ctx_destroy(pml_backend_ctx *b);

/* Device address of node n's value for micro-batch mb. */
pml_cu_ptr pml_cuda_ctx_data(const pml_cuda_ctx *p, int n, int64_t mb);

#endif

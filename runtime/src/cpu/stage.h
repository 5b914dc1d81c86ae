/* stage.h — the CPU backend: the backend table (backend_ops.h) over the CPU kernels, so
 * the pipeline executor runs a plan's stages on the host.
 *
 * What runs: the plan's graph as cpu/lower.h lowers it (transposes read in place by the
 * GEMM, reshapes as aliases), and each element-wise kernel of the plan's fusion (KERN)
 * as one tiled group whose unmaterialised values never get a buffer (cpu/kernels.h);
 * other kernels run node by node. A weight gradient made by a matmul is added to its
 * accumulator by the GEMM; when it is x^T dy of values kept for every micro-batch, that
 * GEMM is deferred to the step's end (grad_sq) and runs once over all micro-batches'
 * rows (the plan tags it weight-gradient work, which nothing waits on); on stage 0
 * most of it runs while the stage waits for its last gradient. A matmul by a
 * weight reads it as panels (cpu/gemm.h, gemm_packed.c) where the CPU has AVX-512,
 * instead of the BLAS re-packing it for every micro-batch: in place, or, when
 * transposed, packed by the weight's own update (packed_at below). A serving context
 * given int8 weights (param_int8) runs the forward linear products on them in int8
 * instead (stage_int8.c).
 *
 * Memory: a tensor gets its own buffer per micro-batch only when it must outlive the
 * micro-batch's pass on its stage (read by the backward pass or by another stage), in
 * a ring of as many copies as the stage has micro-batches in flight when only its own
 * backward pass reads it (copies below); every other tensor has one buffer reused by
 * each micro-batch. Where the buffers lie is the runtime's memory planner's
 * (plan/memplan.h): a value made and read within one pass lives from the unit that
 * writes it to the last that reads it, and values that are never alive together share
 * bytes; one allocation at create holds every stage's arena. All stages share the
 * host's memory, so every value is its own host copy: the table has no upload, download
 * or sync. Its one derived parameter copy is a transposed weight's packed panels;
 * params_upload marks them stale after host edits.
 *
 * The context's layout is private to cpu/stage*.c: stage_build.c makes it (lowering,
 * fusion, memory), stage.c runs it. */
#ifndef PML_CPU_STAGE_H
#define PML_CPU_STAGE_H

#include <stdatomic.h>

#include "backend_ops.h"
#include "cpu/kernels.h"
#include "cpu/lower.h"
#include "plan/phase.h"

extern const pml_backend_ops pml_cpu_backend_ops;

/* Every buffer starts on a cache line (and an AVX-512 vector). */
#define PML_CPU_MEM_ALIGN 64

/* ---- private to cpu/stage*.c ------------------------------------------------------ */

typedef struct pml_cpu_stage {
    /* What the forward and backward passes run, in order: a node n (n >= 0), or a fused
     * group, the plan's kernel k, as -(k + 1), run when node order reaches its last node
     * (valid, as plan.h says). */
    int *fwd, n_fwd;
    int *bwd, n_bwd; /* the whole backward pass, or, with `split`, its input half */
    int *wgt, n_wgt; /* with `split`: the weight half (empty otherwise) */
    pml_cpu_group_op *gops; /* a fused group's calls, and their input views */
    pml_view *gin;
    void *scratch; /* where a fused group keeps its intermediates, one tile at a time per thread */
    size_t scratch_bytes;
    struct pml_cpu_pool *pool; /* the stage's threads for its tiles and products (cpu/pool.h), one for all
                                * stages when they run in turn (conf.stages_in_turn); NULL: one thread */
    int *params, n_params;
    /* This step's forward passes, and backward passes (with split: weight halves) done
     * in micro-batch order; the
     * first micro-batch not yet in the deferred weight-gradient GEMMs. Stage 0 of
     * several sends no gradients, so once its forward passes are all done its deferred
     * GEMMs over the first wgrad_early micro-batches run while it waits for the last
     * gradient, instead of after it (0: all at the step's end). */
    int64_t fwd_done, bwd_done, wgrad_from, wgrad_early;
    /* The values this stage sends: roots of nodes another stage reads, per message kind */
    int *sends[2], n_sends[2];
    void *i8_scratch; /* its int8 products' quantized rows and int32 sums (stage_int8.c); NULL: none */
    size_t i8_scratch_bytes;
    size_t arena_bytes; /* its share of the context's arena */
    size_t temp_peak;   /* most bytes of thread temporaries its thread has held (cpu.h) */
    int serving;        /* the forward pass running is a serving one (cpu_forward) */
    int dropout_off;    /* ... or an evaluation's: attention's dropout off (backward passes: on) */
} pml_cpu_stage;

typedef struct pml_cpu_ctx {
    const pml_plan *plan;
    pml_backend_conf conf;
    int S, threads; /* stages; kernel threads per stage */
    uint8_t *runs;  /* per stage: this process runs it (conf.runs; all without) */
    int64_t M;
    int64_t step;        /* from begin: dropout seeds, freezing, the optimizer's step count */
    pml_cpu_node *low;   /* per node: what runs for it (cpu/lower.h) */
    unsigned char **buf; /* per node that owns one (low[n].alias == n): its buffer (per micro-batch
                            copies laid end to end when per_mb), inside `arena` */
    unsigned char *arena; /* every stage's arena, one after another (PML_CPU_MEM_ALIGN-aligned) */
    size_t arena_bytes;
    uint8_t *per_mb;
    /* Per node: how many copies its buffer holds; micro-batch mb uses copy mb % copies.
     * A value kept only from a micro-batch's forward pass to its backward pass on its
     * stage needs a copy per micro-batch the timetable has in flight there (1F1B: S - s
     * on stage s), not per micro-batch of the step: the ring stays in cache between the
     * two passes where M copies went cold (docs/perf.md); with split backwards, up to
     * the input half, or the weight half for a value it reads. Values another stage or the
     * executor reads, and the deferred GEMMs' operands (all_mb), keep all M. */
    int64_t *copies;
    uint8_t *all_mb;
    /* Per node kept per micro-batch: a weight half (split backwards) reads it, so its
     * ring counts micro-batches up to their weight half, not their input half. */
    uint8_t *weight_read;
    /* Per node: the parameter gradient accumulator its matmul adds its product to, instead
     * of writing a buffer that is then added (the parameter's `direct` is set). */
    float **acc_into;
    uint8_t *direct;
    /* Per parameter: its direct gradient is A^T B with A and B kept for every micro-batch,
     * so it is one GEMM over all of them at the step's end (sum_mb A_mb^T B_mb =
     * [A_1; ..; A_M]^T [B_1; ..; B_M]), with M times the depth of the per-micro-batch
     * GEMMs; its node is then not run in the backward pass (deferred_node). */
    uint8_t *deferred, *deferred_node;
    /* Per node: a direct gradient, which its GEMM adds to the accumulator (acc_into), so
     * it owns no buffer: one would be arena the plan's estimate does not count and no
     * kernel writes. */
    uint8_t *into_acc;
    /* The timetable splits each backward pass into an input half (bwd_input) and a
     * weight half (bwd_weight). Per node: the part of a micro-batch's work that runs it:
     * 0 forward, 1 backward (its input half), 2 the weight half (plan/halves.h). A
     * weight half runs its units, adds its gradients, and its
     * micro-batch's share of the deferred GEMMs, in micro-batch order. */
    int split;
    uint8_t *half;
    uint8_t *fused; /* per plan kernel: run as a tiled group (cpu/kernels.h), not node by node */
    int max_group;  /* nodes of the largest fused group */
    /* Per node: its value depends on parameters and constants only, so it is the same for
     * every micro-batch until the next update (transpose(weight), say): computed once per
     * step (or per evaluation), when computed_at[n] falls behind `version`. */
    uint8_t *invariant;
    int64_t *computed_at, version;
    /* Since the last begin (every stage thread's update sets it: atomic); the last
     * begin's train flag (stage.c). */
    atomic_int params_changed;
    int last_train;
    /* Per matmul node whose right operand is invariant (a weight): it runs on the panel
     * GEMM (cpu/gemm.h), reading that operand in place or, when transposed, packed into
     * packed[n], repacked when packed_at falls behind the operand's version: `version`,
     * or, when the operand is parameter q's own buffer on n's stage (pack_param[n] = q),
     * values_at[q]. The values of such a parameter change only in its update, which
     * repacks them panel by panel while they are in cache (the nodes pack_first[q],
     * pack_next[..] list), and by host edits (params_upload), which bump values_at. */
    uint8_t *panels;
    float **packed;
    int64_t *packed_at;
    int *pack_param, *pack_next, *pack_first;
    /* Per node: the matmul whose packed panels (and packed_at) it reads: itself, or the
     * stage's first matmul by the same transposed weight, whose copy it shares. */
    int *pack_owner;
    int64_t *values_at;
    uint8_t *serves;       /* per node: a forward node the output depends on (FWD_SERVE) */
    /* per node: a value of a fused group that only its own group reads in the forward
     * pass (not the group's last, not the output): the plan materialises it for the
     * backward pass, so a serving forward, which has none, leaves it in scratch */
    uint8_t *fwd_internal;
    size_t *bytes;         /* per node: one copy's size */
    float **acc, **m, **v; /* per parameter: summed gradient, optimizer state */
    /* Per attention node an attention_grad reads: its rows' log-sum-exps (pml_op_call's
     * lse), one micro-batch's after another (lse_rows each); NULL elsewhere. */
    float **lse;
    int64_t *lse_rows;
    pml_phase phase;       /* what is frozen this step, and which backward work runs (plan/phase.h) */
    /* The loss's gradient, the constant 1 every backward pass starts from (autodiff's
     * first backward node; -1 without one), written as loss_scale instead (f16's loss
     * scaling, backend_ops.h); and precision_note's line ("" for an f32 plan). */
    int seed;
    double loss_scale;
    char note[192];
    pml_cpu_stage *stages;
    /* int8 serving (stage_int8.c; NULL until param_int8): per parameter its int8 weight
     * and scales [out] (NULL: f32 only), the weight [out, in] as given or, with i8_bytes
     * > 0, packed for the CPU's int8 kernel (gemm_int8.h) in that many bytes; per node,
     * the parameter whose int8 copy its matmul computes with (-1: it runs as lowered). */
    void **i8;
    size_t *i8_bytes;
    float **i8_scale;
    float *i8_in_scale; /* per parameter: its static activation scale (0: per-row dynamic) */
    int *i8_param;
    /* Per node: the layout its int8 product reads and writes in place of copies around it
     * (stage_int8.c; NULL: row-major in its own buffers), and whether it is such a copy,
     * which the forward pass then skips. */
    struct pml_cpu_i8_layout **i8_layout;
    uint8_t *i8_skip;
    /* calibration (stage_int8.c; NULL until observe_linear): per node, the parameter whose
     * linear product's input it observes (-1: none) and the largest |x| seen (NaN once a
     * non-finite x was). Per node, so stages running at once never share one. */
    int *obs_param;
    float *obs_absmax;
} pml_cpu_ctx;

/* stage_build.c */
pml_status pml_cpu_ctx_create(const pml_plan *plan, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err);
void pml_cpu_ctx_destroy(pml_backend_ctx *b);
/* backend_ops.h's memory: what stage s allocated, by kind, counted from the allocations
 * themselves (arena share, accumulators, m and v, packed panels and int8 weights,
 * scratch), and its threads' temporaries at their largest so far. */
void pml_cpu_ctx_memory(pml_backend_ctx *b, int s, pml_backend_memory *out);

/* stage.c: node n's data for micro-batch mb (NULL when it has no buffer); node n run
 * for micro-batch mb; plan kernel k's calls for micro-batch mb (mb < 0: shapes only)
 * into `st`'s gops, *n_ops of them (its nodes but folded bias adds, cpu/lower.h). */
void *pml_cpu_ctx_data(const pml_cpu_ctx *c, int n, int64_t mb);
pml_status pml_cpu_ctx_run_node(pml_cpu_ctx *c, int n, int64_t mb, pml_err *err);
pml_status pml_cpu_ctx_group_calls(const pml_cpu_ctx *c, pml_cpu_stage *st, int k, int64_t mb, int *n_ops,
                                   pml_err *err);

/* stage_int8.c: backend_ops.h's param_int8; the parameter whose int8 weights node n's
 * product computes with (-1: none); whether node n is a copy such a product makes itself
 * (not run); that product of call c for micro-batch mb; freeing it all. */
pml_status pml_cpu_ctx_param_int8(pml_backend_ctx *b, int q, const int8_t *wq, const float *scale, float in_scale,
                                  int *served, pml_err *err);
/* backend_ops.h's observe_linear and observed_absmax; folding call c's left operand into
 * node n's observation, where n is observed (before its f32 product runs). */
pml_status pml_cpu_ctx_observe_linear(pml_backend_ctx *b, int q, int *observed, pml_err *err);
pml_status pml_cpu_ctx_observed_absmax(pml_backend_ctx *b, int q, float *absmax, pml_err *err);
void pml_cpu_ctx_observe(pml_cpu_ctx *p, int n, const pml_op_call *c);
int pml_cpu_ctx_int8_node(const pml_cpu_ctx *p, int n);
int pml_cpu_ctx_int8_skips(const pml_cpu_ctx *p, int n);
pml_status pml_cpu_ctx_run_int8(pml_cpu_ctx *p, int n, int64_t mb, const pml_op_call *c, pml_err *err);
void pml_cpu_ctx_free_int8(pml_cpu_ctx *p);

#endif

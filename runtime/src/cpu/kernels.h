/* kernels.h — the CPU backend's kernels: one entry point that runs any primitive op
 * (include/pml/ops.def) on contiguous row-major tensors.
 *
 * This is the contract between the executor and the kernels. Semantics of each op
 * (shapes are already checked by the compiler; kernels re-check only what the data
 * can break, such as indices):
 *   const: out = fval.  arange: out[i] = i (i32).  input, param: never run.
 *   the UNARY class of pml/ops.def (neg, exp, ..., abs): element-wise, f32 and f64.
 *   add sub mul div maximum minimum pow: NumPy broadcasting of both inputs to out.
 *   lt le gt ge eq ne: 1 or 0 in out's dtype, broadcasting.
 *   where(c, a, b): c != 0 ? a : b, broadcasting all three.
 *   cast: attr[0] is the target pml_dtype.
 *   dropout: fval = p, attr[0] = key; element j is kept when
 *            pml_rng_uniform_f32(call->seed, key, j) >= p and then scaled by 1/(1-p).
 *   causal_mask: x[..., i, j] with j > i replaced by fval (-inf forward, 0 backward).
 *   sum max mean: attr = [axis or -1 for all axes, keepdim].
 *   reshape: a copy.  permute: attr = perm (out axis k is in axis perm[k]).
 *   slice: attr = [axis, start, stop, step].  concat: attr = [axis], any number of inputs.
 *   gather(table[N, C], idx[...]): out[..., c] = table[idx[...], c].
 *   pick(x[..., V], idx[...]): out[...] = x[..., idx[...]].
 *   matmul(a[..., m, k], b[..., k, n]): batched; batch axes broadcast. With trans[i]
 *            set, input i is given with its last two axes swapped (a[..., k, m] or
 *            b[..., n, k]) and read in place; with accumulate, out += a b; a third
 *            input (f32, n values) is a bias added to every row of the product. Only
 *            the lowering (lower.h) sets these; a plan's matmul has none of them.
 *   expand: broadcast x to out's shape.  sum_to: sum x down to out's shape (expand's inverse).
 *   pad: attr = [axis, start, stop, step]; out is zero except the slice, which holds x.
 *   scatter_add(dy[..., C], idx[...]): out[N, C] = 0, then out[idx[...], c] += dy[..., c].
 *   unpick(dy[...], idx[...]): out[..., V] = 0, then out[..., idx[...]] = dy[...].
 *   attention, attention_qkv and their gradients: cpu/attention.c; with dropout
 *            (attr[2] key, attr[3] p) weight (b, r, c) is kept as dropout keeps
 *            element (b·T + r)·T + c, unless dropout_off.
 * Index out of range (gather, pick, scatter_add, unpick) is PML_ERR_INVALID_ARG with a
 * message naming the op, the index and the range. Floating-point ops run in f32 and
 * f64; comparisons, where, cast, arange, concat and the movement ops also take i32. */
#ifndef PML_CPU_KERNELS_H
#define PML_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gemm.h"
#include "plan/ops.h"


#define PML_MAX_RANK 8

/* A tensor as a kernel sees it: contiguous and row-major. */
typedef struct pml_view {
    void *data;
    pml_dtype dtype;
    int rank;
    int64_t dims[PML_MAX_RANK];
} pml_view;

typedef struct pml_op_call {
    pml_opcode op;
    const int64_t *attr;
    int n_attr;
    double fval;
    int n_in;
    const pml_view *in;
    pml_view out;  /* allocated by the caller with the right shape and dtype */
    uint64_t seed; /* this step's seed, for dropout */
    uint8_t dropout_off; /* attention's dropout off: an evaluation's or a serving forward */
    int threads;   /* how many threads the kernel may use; 0 or 1: the calling thread only */
    /* the stage's pool (cpu/pool.h; NULL: none), which a panel GEMM splits its columns
     * or rows over: the GEMMs a provider runs use `threads` of its own instead */
    struct pml_cpu_pool *pool;
    uint8_t trans[2];   /* matmul: input i has its last two axes swapped */
    uint8_t accumulate; /* matmul: add to out instead of overwriting it */
    /* matmul with a 2-D b and a not transposed: op(b) as panels (cpu/gemm.h), packed or
     * b in place, for the panel GEMM; data NULL: the BLAS reads b */
    pml_cpu_gemm_panels panels_b;
    /* attention: where each query row's log-sum-exp goes ([..., n] floats, the output's
     * rows); attention_grad: where to read them from, the forward's, instead of computing
     * them again (the same calls on the same values: the same bits). NULL: neither. */
    float *lse;
} pml_op_call;

/* Runs one op. Returns PML_OK, or an error with a message in `err`. */
pml_status pml_cpu_run(const pml_op_call *call, pml_err *err);


/* ---- fused element-wise groups (a plan's KERN kernels of kind elemwise) -------------
 * A group is ops over one iteration space, the last op's output shape, which every op
 * of the group produces; an op reads earlier ops of the group or outside values that
 * broadcast into the space. pml_cpu_run_group runs it in cache-sized tiles of the
 * first axis so that values not materialised (out.data NULL) never exist whole: they
 * live in `scratch` one tile at a time (cpu/group.c). */
#define PML_GROUP_MAX_IN 3
#define PML_GROUP_MAX_OPS 256

typedef struct pml_cpu_group_op {
    pml_op_call call;                /* out.data NULL: an intermediate; in[k] unused where from[k] >= 0 */
    int16_t from[PML_GROUP_MAX_IN];  /* input k is op from[k] of the group (an earlier one), or -1 */
} pml_cpu_group_op;

/* Whether the ops form a group pml_cpu_run_group can run: element-wise ops with no
 * dependence on an element's position (not dropout or causal_mask), each of the
 * space's shape, at most PML_GROUP_MAX_IN inputs, reading only earlier ops. */
int pml_cpu_group_tileable(const pml_cpu_group_op *ops, int n);
/* Bytes of scratch (64-byte aligned) pml_cpu_run_group needs for these ops on a pool
 * of `threads`: what the tiles share, and each thread's tile slots. */
size_t pml_cpu_group_scratch(const pml_cpu_group_op *ops, int n, int threads);
/* Runs the group's tiles over `pool`'s threads (NULL: the caller's alone) in `scratch`
 * of scratch_bytes, at least pml_cpu_group_scratch for the pool's thread count. */
struct pml_cpu_pool;
pml_status pml_cpu_run_group(const pml_cpu_group_op *ops, int n, struct pml_cpu_pool *pool, void *scratch,
                             size_t scratch_bytes, pml_err *err);

#endif

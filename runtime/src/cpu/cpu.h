/* cpu.h — what the CPU kernel files share: sizes of views, the broadcast iterator and
 * the entry points of each kernel family (one file each), which run.c dispatches to.
 *
 * The broadcast iterator describes up to four operands (the output first, then the
 * inputs) over the output's shape with per-operand element strides, 0 where an input
 * is broadcast. Size-1 axes are dropped and adjacent axes merged wherever every
 * operand is contiguous across them, so the common cases collapse: same shape is one
 * row, a scalar operand is one row with stride 0, a bias over the last axis is rows
 * with inner strides (1, 1) and outer strides (C, 0). Kernels then loop over rows with
 * an odometer (no division per element) and specialise the inner loop on its strides. */
#ifndef PML_CPU_H
#define PML_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define PML_ITER_MAX_OPS 4

typedef struct pml_cpu_iter {
    int rank;      /* >= 1 after init; dims[rank-1] is the row */
    int n_ops;     /* operands: 0 is the output, 1.. the inputs */
    int64_t numel; /* elements of the output */
    int64_t dims[PML_MAX_RANK];
    int64_t st[PML_ITER_MAX_OPS][PML_MAX_RANK];
    /* the cursor: the outer index and each operand's offset at the start of the row */
    int64_t idx[PML_MAX_RANK];
    int64_t off[PML_ITER_MAX_OPS];
} pml_cpu_iter;

/* Sets up `it` for `shape` (the output; operand 0, contiguous) and `n_in` inputs, each of
 * which must broadcast to it (NumPy rules); returns 0, or -1 and a message in `err`
 * naming `opname` when one does not. */
int pml_cpu_iter_init(pml_cpu_iter *it, const pml_view *shape, int n_in, const pml_view *const *in, const char *opname,
                      pml_err *err);

/* Sets up `it` from explicit strides: operand o's element k is at strides[o][k] (operand 0
 * is the one written, usually contiguous). */
void pml_cpu_iter_setup(pml_cpu_iter *it, int rank, const int64_t *dims, int n_ops, int64_t (*strides)[PML_MAX_RANK]);

/* Moves the cursor to the next row (the offsets of every operand). */
static inline void pml_cpu_iter_next(pml_cpu_iter *it)
{
    for (int k = it->rank - 2; k >= 0; k--) {
        for (int o = 0; o < it->n_ops; o++) it->off[o] += it->st[o][k];
        if (++it->idx[k] < it->dims[k]) return;
        for (int o = 0; o < it->n_ops; o++) it->off[o] -= it->st[o][k] * it->dims[k];
        it->idx[k] = 0;
    }
}

/* Rows the iterator visits and the length of each. */
static inline int64_t pml_cpu_iter_rows(const pml_cpu_iter *it)
{
    return it->numel ? it->numel / it->dims[it->rank - 1] : 0;
}

int64_t pml_cpu_numel(const pml_view *v);
/* Whether the views have the same rank and dims. */
int pml_cpu_same_shape(const pml_view *a, const pml_view *b);
/* "[2, 3, 4]" into buf, for messages. */
const char *pml_cpu_shape_str(const pml_view *v, char *buf, size_t cap);
/* The standard refusal: "<op>: <dtype> tensors are not supported on the CPU". */
pml_status pml_cpu_unsupported(const pml_op_call *c, pml_dtype t, pml_err *err);
/* The refusal of a kernel family given an op of another class (run.c routes by class,
 * so only a direct caller sees it): "<op>: not implemented on the CPU (dtype <t>)". */
pml_status pml_cpu_other_family(const pml_op_call *c, pml_err *err);

/* The kernel family of c's class, with no 16-bit operand (run.c); and any op with one:
 * 16-bit storage, f32 math (half.c). pml_cpu_run picks between them. */
pml_status pml_cpu_run_family(const pml_op_call *c, pml_err *err);
pml_status pml_cpu_run_half(const pml_op_call *c, pml_err *err);
/* The calling thread's temporaries (half.c) count towards *peak from now on: whenever
 * they grow, *peak becomes at least the bytes the thread holds (NULL: towards nothing).
 * A stage's thread sets its stage's before it works, so the backend can say what each
 * stage holds (backend_ops.h's memory). */
void pml_cpu_half_charge_to(size_t *peak);
/* The calling thread now also holds `bytes` of scratch outside half.c's buffers (the
 * oneDNN scratchpad of gemm_bf16.c), counted with them towards the charged peak. */
void pml_cpu_charge_scratch(size_t bytes);
/* A binary op (the binary class) whose inputs and output are bf16 and f32, converting
 * in registers (elementwise_half.c); half.c routes those calls here. */
pml_status pml_cpu_binary_bf16(const pml_op_call *c, pml_err *err);

/* Kernel families; each handles the ops of the classes run.c routes to it. */
pml_status pml_cpu_elementwise(const pml_op_call *c, pml_err *err); /* FILL UNARY BINARY ELEMWISE */
pml_status pml_cpu_reduce(const pml_op_call *c, pml_err *err);      /* REDUCE */
/* A unary op from bf16 to bf16 of one shape, converting in registers: the bits of
 * widening its input, the f32 kernel and rounding (half.c); _takes says which calls
 * it serves (not exp and sigmoid, whose f32 kernel is AVX-512's own). */
pml_status pml_cpu_unary_bf16(const pml_op_call *c, pml_err *err);
int pml_cpu_unary_bf16_takes(const pml_op_call *c);
/* n elements of an f32 op of the unary or binary class straight from pointers, with no
 * shape checks: o[i] = op(a[i * sa], b[i * sb]), sa and sb 0 or 1 (b unread for a unary
 * op, whose sa is 1); the same bits as pml_cpu_elementwise on those elements. For fused
 * groups (group.c), which run a strip of every op in turn. */
pml_status pml_cpu_f32_strip(pml_opcode op, float *o, const float *a, int64_t sa, const float *b, int64_t sb,
                             int64_t n);
/* ln_rows.c: `rows` (1 to 4) consecutive rows of n of a layernorm as the fused row
 * kernel computes nn's layernorm op by op, its bits: with b, h = a + b first (written to
 * h) and normalised; out = (((x - mean) * rsqrt(var + eps)) * w) + bias. out must not
 * alias a, b or h. `keep` (NULL: nothing) names where the values training keeps for the
 * backward pass go, each NULL when not wanted: per row its mean and its variance, and
 * the normalised rows (x - mean) * rsqrt(var + eps), n a row. */
typedef struct pml_cpu_ln_keep {
    float *mean, *var, *norm;
} pml_cpu_ln_keep;
void pml_cpu_layernorm_rows(int rows, const float *a, const float *b, float *h, int64_t n, float eps, const float *w,
                            const float *bias, float *out, const pml_cpu_ln_keep *keep);
pml_status pml_cpu_movement(const pml_op_call *c, pml_err *err);    /* MOVEMENT */
pml_status pml_cpu_index(const pml_op_call *c, pml_err *err);       /* GATHER */
/* How many tasks a copy of `bytes` in `outer` independent parts (rows) runs as over
 * `pool` (1: on the caller alone): none below the bytes whose share a woken worker
 * would not repay, about four a thread above (movement.c; index.c's gather too). */
struct pml_cpu_pool;
int64_t pml_cpu_copy_tasks(const struct pml_cpu_pool *pool, int64_t outer, size_t bytes);
pml_status pml_cpu_matmul(const pml_op_call *c, pml_err *err);      /* MATMUL */
/* A matmul of bf16 operands through the bf16 GEMM (gemm.h); *declined, with nothing
 * written, where that GEMM is not ready or refuses the shape (matmul.c). */
pml_status pml_cpu_matmul_bf16(const pml_op_call *c, int *declined, pml_err *err);
pml_status pml_cpu_xent(const pml_op_call *c, pml_err *err);        /* ROWLOSS */
pml_status pml_cpu_attention(const pml_op_call *c, pml_err *err);   /* ATTENTION (attention.c) */

/* PML_ERR_INVALID_ARG naming op `name`, the index and the range when an index of
 * idx[n] is outside [0, range) (index.c); PML_OK otherwise. */
pml_status pml_cpu_check_indices(const char *name, const int32_t *idx, int64_t n, int64_t range, pml_err *err);
/* Whether `a` without its last axis is `b` (the shapes of pick's values and indices). */
int pml_cpu_is_rows_of(const pml_view *a, const pml_view *b);

#endif

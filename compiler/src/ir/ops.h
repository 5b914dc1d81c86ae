/* ops.h — the primitive operations: the one table every pass reads.
 *
 * Each row names an op and gives its class, arity, flags, shape rule, cost per element
 * and which tensors its backward pass needs (so activation memory can be counted before
 * autodiff exists). All but the shape rule come from the op's row in pml/ops.def, and
 * so does the rule of a unary or binary op; an op of another class names its rule in
 * ops.c. */
#ifndef PMLC_OPS_H
#define PMLC_OPS_H

#include "ir/types.h"
#include "pml/ops.h"

typedef enum pmlc_opcode {
#define PML_OP(e, ...) OP_##e,
#include "pml/ops.def"
#undef PML_OP
    OP_COUNT
} pmlc_opcode;

typedef enum pmlc_op_class {
    PMLC_OPC_SOURCE,   /* inputs, parameters, constants: no work */
    PMLC_OPC_ELEMWISE, /* one output element from the same position of each input */
    PMLC_OPC_REDUCE,   /* along one axis */
    PMLC_OPC_MOVEMENT, /* data layout only */
    PMLC_OPC_GATHER,   /* indexed reads */
    PMLC_OPC_MATMUL,
    PMLC_OPC_ROWLOSS,  /* a loss per row of logits at i32 labels (xent and its backward) */
    PMLC_OPC_ATTENTION /* fused scaled dot-product attention and its backward */
} pmlc_op_class;

/* pml/ops.def's classes as the compiler sees them: every element-wise kind is one class
 * to fusion and costing, and every source one. */
#define PMLC_OPC_OF_LEAF PMLC_OPC_SOURCE
#define PMLC_OPC_OF_FILL PMLC_OPC_SOURCE
#define PMLC_OPC_OF_UNARY PMLC_OPC_ELEMWISE
#define PMLC_OPC_OF_BINARY PMLC_OPC_ELEMWISE
#define PMLC_OPC_OF_ELEMWISE PMLC_OPC_ELEMWISE
#define PMLC_OPC_OF_REDUCE PMLC_OPC_REDUCE
#define PMLC_OPC_OF_MOVEMENT PMLC_OPC_MOVEMENT
#define PMLC_OPC_OF_GATHER PMLC_OPC_GATHER
#define PMLC_OPC_OF_MATMUL PMLC_OPC_MATMUL
#define PMLC_OPC_OF_ROWLOSS PMLC_OPC_ROWLOSS
#define PMLC_OPC_OF_ATTENTION PMLC_OPC_ATTENTION

/* Arguments and results of a shape rule. On failure the rule sets `bad` (the operand
 * at fault, -1 for the call as a whole) and `msg`; the caller points the diagnostic
 * at that operand. */
typedef struct pmlc_infer {
    int n_in;
    const pmlc_shape *const *in;
    const pmlc_dtype *dt;
    const int64_t *attr;
    int n_attr;
    const pmlc_shape *target; /* reshape's requested shape */
    const pmlc_symtab *syms;  /* to print shapes in messages */
    const char *opname;       /* how the user wrote it: "+", "matmul" */
    pmlc_shape out;
    pmlc_dtype out_dt;
    int bad;
    char msg[400];
} pmlc_infer;

enum { PMLC_SAVES_OUT = PML_SAVES_OUT };

typedef struct pmlc_op_info {
    const char *name;
    pmlc_op_class cls;
    int min_in, max_in;         /* max_in < 0: any number */
    int (*infer)(pmlc_infer *); /* 0 on success; NULL for sources (the front end sets their shape) */
    float flops_per_elem;
    uint8_t saves;          /* bit i: input i is needed by the backward pass; PMLC_SAVES_OUT: the output */
    uint8_t differentiable; /* 0: no gradient flows through (PML_OPF_NOGRAD) */
    uint8_t flags;          /* PML_OPF_* */
    const char *doc;
    const char *attrs; /* the node's attributes (ir_node.attr, .fval), NULL when none */
} pmlc_op_info;

extern const pmlc_op_info pmlc_ops[OP_COUNT];

/* Concrete shape, with every symbol bound, for costing. */
typedef struct pmlc_cshape {
    int rank;
    int64_t d[PMLC_MAX_RANK];
} pmlc_cshape;

int64_t pmlc_cshape_numel(const pmlc_cshape *s);

/* Whether an op with these attributes draws random numbers per micro-batch (dropout, and
 * attention with dropout on its weights): its value is never a per-step invariant. */
static inline int pmlc_op_draws(pmlc_opcode op, const int64_t *attr, int n_attr)
{
    return op == OP_DROPOUT ||
           ((op == OP_ATTENTION || op == OP_ATTENTION_QKV) && pml_attention_dropout(attr, n_attr) > 0);
}

/* Forward FLOPs, and backward FLOPs spent on the gradient of each input (attr: the
 * node's, which attention_qkv's head count is among). */
void pmlc_op_cost(pmlc_opcode op, int n_in, const pmlc_cshape *in, const pmlc_cshape *out, const int64_t *attr,
                  int n_attr, double *fwd, double *bwd_per_input);

/* Bytes the forward op reads and writes, given each tensor's element size: what a
 * memory-bound kernel costs. A gather reads only the rows it returns. */
double pmlc_op_bytes(pmlc_opcode op, int n_in, const pmlc_cshape *in, const int *in_elem, const pmlc_cshape *out,
                     int out_elem);

#endif

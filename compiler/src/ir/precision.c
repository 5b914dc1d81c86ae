/* precision.c — the op table of mixed precision and the pass that applies it (see
 * precision.h). One pass over the nodes in order decides each node's storage dtype and
 * which values need a 16-bit copy; a second rebuilds the node list with the copies
 * right after what they convert, when there are any. */
#include "ir/precision.h"

#include <string.h>

/* The table: where each op's output is stored under a 16-bit precision. Element-wise
 * work and products keep activations in 16 bits, and products the gradients between
 * layers; what sums many values (reductions, scatter_add's row sums, the loss) keeps
 * its result in f32, so a norm's statistics, a softmax's denominator and a bias
 * gradient are not rounded; constants stay exact (an epsilon of 1e-5 is not a bf16
 * number). A backward rule's element-wise work stays f32: it is never kept, and its
 * intermediates overflow f16 where the values they make do not (layernorm's rsqrt
 * gradient multiplies by y^3, which passes 65504 at y = 41). */
pmlc_prec_rule pmlc_precision_rule(pmlc_opcode op, int backward)
{
    if (backward && op != OP_MATMUL && op != OP_XENT_GRAD && pmlc_precision_rule(op, 0) == PMLC_PREC_HALF)
        return PMLC_PREC_F32; /* a backward rule's element-wise work: transient, and f16 overflows in it */
    switch (op) {
    case OP_INPUT:
    case OP_PARAM:
    case OP_CAST:
        return PMLC_PREC_DECLARED;
    case OP_CONST:
    case OP_ARANGE:
    case OP_SUM:
    case OP_MAX:
    case OP_MEAN:
    case OP_SUM_TO:
    case OP_SCATTER_ADD:
    case OP_XENT:
    case OP_ATTENTION_GRAD: /* gradients, stacked and sliced: transient, like a rule's element-wise work */
    case OP_ATTENTION_QKV_GRAD: /* as attention_grad's: the qkv product's backward reads it */
        return PMLC_PREC_F32;
    case OP_RESHAPE:
    case OP_PERMUTE:
    case OP_SLICE:
    case OP_CONCAT:
    case OP_EXPAND:
    case OP_PAD:
    case OP_GATHER:
    case OP_PICK:
    case OP_UNPICK:
        return PMLC_PREC_FOLLOW;
#define PML_OP(...)
#define PML_UNARY(e, ...) case OP_##e:
#include "pml/ops.def"
#undef PML_OP
#undef PML_UNARY
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_MAXIMUM:
    case OP_MINIMUM:
    case OP_POW:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
    case OP_EQ:
    case OP_NE:
    case OP_WHERE:
    case OP_DROPOUT:
    case OP_CAUSAL_MASK:
    case OP_MATMUL:
    case OP_XENT_GRAD:
    case OP_GELU_TANH_GRAD: /* made only in the backward pass: f32 there (above) */
    case OP_ATTENTION: /* f32 math inside (runtime/src/cpu/attention.c widens its operands per matrix) */
    case OP_ATTENTION_QKV:
        return PMLC_PREC_HALF;
    case OP_COUNT:
        break;
    }
    return PMLC_PREC_F32;
}

const char *pmlc_precision_rule_name(pmlc_prec_rule r)
{
    static const char *const names[] = {"16-bit", "f32", "as operand", "as declared"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "?";
}

static int is_half(pmlc_dtype t) { return t == PMLC_BF16 || t == PMLC_F16; }

typedef struct prec {
    const pmlc_graph *g;
    pmlc_dtype precision, teacher_precision;
    pmlc_dtype *dt;   /* storage dtype per node */
    pmlc_dtype *copy; /* per node: the dtype of its 16-bit copy, or PMLC_F32 for none */
} prec;

/* The precision node i computes in: the teacher's for the teacher's nodes. */
static pmlc_dtype prec_of(const prec *p, int i)
{
    return i >= p->g->teacher_begin && i < p->g->teacher_end ? p->teacher_precision : p->precision;
}

/* Whether node i reads input x through x's 16-bit copy: every reader of a parameter
 * does, and a matrix product reads only 16-bit operands. */
static int reads_copy(const prec *p, int i, int x)
{
    if (!is_half(p->copy[x])) return 0;
    return p->g->nodes.v[x].op == OP_PARAM || p->g->nodes.v[i].op == OP_MATMUL;
}

static pmlc_dtype read_dtype(const prec *p, int i, int x) { return reads_copy(p, i, x) ? p->copy[x] : p->dt[x]; }

static void decide(prec *p, int i)
{
    const ir_node *n = &p->g->nodes.v[i];
    pmlc_dtype h = prec_of(p, i);
    if (!pmlc_dtype_is_float(n->dtype)) {
        p->dt[i] = n->dtype;
        return;
    }
    if (n->op == OP_PARAM) { /* the master stays f32; readers read a 16-bit copy */
        p->dt[i] = PMLC_F32;
        p->copy[i] = is_half(n->dtype) ? n->dtype : is_half(h) ? h : PMLC_F32;
        return;
    }
    if (n->op == OP_MATMUL && is_half(h))
        for (int k = 0; k < n->n_in; k++) {
            int x = n->in[k];
            if (p->dt[x] == PMLC_F32 && !is_half(p->copy[x])) p->copy[x] = h;
        }
    if (!is_half(h)) { /* f32: as elaborated */
        p->dt[i] = n->dtype;
        return;
    }
    switch (pmlc_precision_rule(n->op, n->pass != PMLC_PASS_FORWARD)) {
    case PMLC_PREC_HALF:
        p->dt[i] = h;
        break;
    case PMLC_PREC_F32:
        p->dt[i] = PMLC_F32;
        break;
    case PMLC_PREC_DECLARED:
        p->dt[i] = n->dtype;
        break;
    case PMLC_PREC_FOLLOW: {
        pmlc_dtype t = h;
        for (int k = 0; k < n->n_in; k++) {
            pmlc_dtype r = read_dtype(p, i, n->in[k]);
            if (r == PMLC_F32) t = PMLC_F32;
        }
        p->dt[i] = t;
        break;
    }
    }
}

int pmlc_precision_apply(pmlc_program *P, pmlc_graph *g, pmlc_dtype precision, pmlc_dtype teacher_precision,
                         int32_t **remap)
{
    int N = g->nodes.n;
    size_t nn = (size_t)(N ? N : 1);
    prec p = {g, precision, teacher_precision, pmlc_arena_alloc(&P->arena, sizeof(pmlc_dtype) * nn),
              pmlc_arena_alloc(&P->arena, sizeof(pmlc_dtype) * nn)};
    for (int i = 0; i < N; i++) p.copy[i] = PMLC_F32;
    for (int i = 0; i < N; i++) decide(&p, i);
    /* What the executor and the optimizer read stays f32. */
    int keep[3] = {g->output, g->loss, -1};
    for (int k = 0; k < 3; k++)
        if (keep[k] >= 0 && pmlc_dtype_is_float(p.dt[keep[k]])) p.dt[keep[k]] = PMLC_F32;
    for (int q = 0; g->param_grad && q < g->params.n; q++)
        if (g->param_grad[q] >= 0) p.dt[g->param_grad[q]] = PMLC_F32;

    int copies = 0;
    for (int i = 0; i < N; i++) copies += is_half(p.copy[i]);
    int32_t *to = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (nn + 1));
    if (remap) *remap = to;
    if (!copies) {
        for (int i = 0; i < N; i++) g->nodes.v[i].dtype = p.dt[i], to[i] = i;
        to[N] = N;
        return 0;
    }
    ir_node *v = pmlc_arena_alloc(&P->arena, sizeof(ir_node) * (size_t)(N + copies));
    int32_t *copy_at = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * nn);
    int m = 0;
    for (int i = 0; i < N; i++) {
        ir_node n = g->nodes.v[i];
        n.dtype = p.dt[i];
        if (n.n_in) {
            int32_t *in = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)n.n_in);
            for (int k = 0; k < n.n_in; k++) in[k] = reads_copy(&p, i, n.in[k]) ? copy_at[n.in[k]] : to[n.in[k]];
            n.in = in;
        }
        to[i] = m;
        v[m++] = n;
        if (!is_half(p.copy[i])) continue;
        ir_node c = n; /* the copy: on its value's stage, pass and unit, with its shape */
        c.op = OP_CAST;
        c.dtype = p.copy[i];
        c.n_in = 1;
        c.in = pmlc_arena_alloc(&P->arena, sizeof(int32_t));
        c.in[0] = to[i];
        c.n_attr = 1;
        c.attr = pmlc_arena_alloc(&P->arena, sizeof(int64_t));
        c.attr[0] = p.copy[i];
        c.fval = 0;
        c.param = -1;
        copy_at[i] = m;
        v[m++] = c;
    }
    to[N] = m;
    g->nodes.v = v;
    g->nodes.n = g->nodes.cap = m;
    pmlc_graph_remap(g, to, to); /* a copy comes after its value: the value starts its range */
    return copies;
}

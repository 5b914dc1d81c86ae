/* autodiff.c — reverse-mode differentiation of the graph IR (see autodiff.h).
 *
 * The backward rule of every op is written here in terms of primitive ops, so the
 * backward pass is an ordinary graph that fusion, placement, costing and the backends
 * treat like the forward one. Each backward node sits on the stage of the forward op it
 * differentiates, and is tagged input-gradient (B) or weight-gradient (W) work by what
 * the gradient flows to: an activation, or something computed from weights alone.
 *
 * Recomputation lives here too, as graph: a rule reads the forward values its op's
 * SAVES names (pml/ops.def) through value(), and when the op lies in a recomputed
 * segment (g->segment) and the value was made in the same segment, value() gives a
 * copy made in the backward pass instead — the copy of that value and of what it is
 * computed from in the segment, down to the segment's inputs, made once, the first time
 * the backward pass needs it (so just before). The forward values then read by the
 * backward pass are the segments' inputs, and every backend and memory plan sees that
 * without knowing about recomputation (docs/design.md, "Recomputation"). A copy of a
 * dropout keeps its key, so it draws the forward pass's mask.
 *
 * The same machinery recomputes cheap values whatever the recompute setting
 * (mark_cheap): an element-wise value that only element-wise ops of its stage read is
 * an intermediate of a fused kernel, never written to memory for the forward pass, so
 * keeping it for the backward pass would cost a write and a read of the whole tensor
 * (GELU's tanh kept five tensors of the hidden layer's size). Its backward copy is made
 * from the values it was made from, which fuse into the backward kernel; the bits are
 * the same, as the same ops run on the same inputs. */
#include "ir/autodiff.h"

#include <math.h>
#include <string.h>

typedef struct ad {
    pmlc_program *P;
    pmlc_graph *g;
    const int64_t *binding;
    int32_t *grad; /* per forward node: its accumulated gradient, or -1 */
    uint8_t *rg;   /* per forward node: needs a gradient */
    uint8_t *act;  /* per forward node: depends on the batch */
    uint8_t *varies; /* per forward node: differs between micro-batches (an input or a dropout is behind it) */
    uint8_t *cheap;  /* per forward node: recomputed in the backward pass in any case (mark_cheap) */
    uint8_t *from_param; /* per forward node: a parameter, or computed from one */
    int32_t *copy;   /* per forward node: its recomputed copy, or -1 */
    int32_t *stack;  /* recompute()'s work list */
    int seg;         /* the segment of the node being differentiated, -1 none */
    int stage, unit, pass;
    pmlc_loc loc;
    int failed;
    int32_t attn_of, attn_grad; /* the attention node whose attention_grad was made last, and that node */
} ad;

static void shape_of(const ad *A, int32_t n, pmlc_shape *out)
{
    const ir_node *x = &A->g->nodes.v[n];
    out->rank = x->rank;
    memcpy(out->d, x->shape, sizeof(pmlc_size) * (size_t)x->rank);
}

static int same_shape(const ad *A, int32_t a, const pmlc_shape *sh)
{
    pmlc_shape s;
    shape_of(A, a, &s);
    if (s.rank != sh->rank) return 0;
    for (int k = 0; k < s.rank; k++)
        if (!pmlc_size_eq(s.d[k], sh->d[k])) return 0;
    return 1;
}

/* Appends a node on the stage and pass being differentiated. */
static int32_t push(ad *A, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, int n_in, const int32_t *in,
                    const int64_t *attr, int n_attr, double fval)
{
    ir_node n = {0};
    n.op = op;
    n.dtype = dt;
    n.n_in = n_in;
    n.n_attr = n_attr;
    n.fval = fval;
    n.stage = A->stage;
    n.unit = A->unit;
    n.param = -1;
    n.loc = A->loc;
    n.pass = A->pass;
    return pmlc_graph_push(&A->P->arena, A->g, &n, sh, in, attr);
}

/* Appends one op after running its shape rule; a failure here is a bug in a rule. */
static int32_t emit(ad *A, pmlc_opcode op, int n_in, const int32_t *in, const int64_t *attr, int n_attr,
                    const pmlc_shape *target, double fval)
{
    if (A->failed) return -1;
    pmlc_shape scratch[5]; /* the most inputs of an op autodiff makes: attention_grad */
    pmlc_infer inf;
    if (pmlc_graph_infer(A->g, op, n_in, in, attr, n_attr, target, &A->P->syms, pmlc_ops[op].name, scratch, &inf) ||
        A->g->nodes.n >= 4 * PMLC_MAX_NODES_AD) {
        pmlc_error(&A->P->diag, A->loc, "internal error: the backward pass of this operation is ill-formed (%s)",
                   inf.msg[0] ? inf.msg : "too many operations");
        A->failed = 1;
        return -1;
    }
    return push(A, op, inf.out_dt, &inf.out, n_in, in, attr, n_attr, fval);
}

static int32_t un(ad *A, pmlc_opcode op, int32_t x) { return emit(A, op, 1, &x, NULL, 0, NULL, 0); }

static int32_t bin(ad *A, pmlc_opcode op, int32_t x, int32_t y)
{
    int32_t in[2] = {x, y};
    return emit(A, op, 2, in, NULL, 0, NULL, 0);
}

static int32_t cst(ad *A, double v, pmlc_dtype dt)
{
    pmlc_shape scalar = {0, {{0}}};
    return A->failed ? -1 : push(A, OP_CONST, dt, &scalar, 0, NULL, NULL, 0, v);
}

/* Whether forward node x is recomputed for the node being differentiated: made in its
 * segment, on its stage, by an op that runs (not a source) and differs between
 * micro-batches (what only parameters and constants feed is computed once per step). */
static int recomputed(const ad *A, int32_t x)
{
    const pmlc_graph *g = A->g;
    if (x < g->n_forward && A->cheap[x] && g->nodes.v[x].stage == A->stage) return 1;
    if (A->seg < 0 || x >= g->n_forward || g->segment[x] != A->seg) return 0;
    const ir_node *n = &g->nodes.v[x];
    return n->stage == A->stage && A->varies[x] && pmlc_ops[n->op].cls != PMLC_OPC_SOURCE;
}

/* The copy of forward node x made in the backward pass, with the copies of its inputs
 * that are recomputed before it (a work list: segments may be long chains). */
static int32_t recompute(ad *A, int32_t x)
{
    pmlc_graph *g = A->g;
    int top = 0;
    if (A->copy[x] < 0) A->stack[top++] = x;
    while (top > 0 && !A->failed) {
        int32_t z = A->stack[top - 1];
        const ir_node *n = &g->nodes.v[z];
        int pushed = 0;
        for (int k = 0; k < n->n_in && !pushed; k++)
            if (recomputed(A, n->in[k]) && A->copy[n->in[k]] < 0) A->stack[top++] = n->in[k], pushed = 1;
        if (pushed) continue; /* a DAG: what is pushed is not on the stack already */
        top--;
        ir_node c = *n; /* a copy: pushing may move the array */
        int32_t in[PMLC_GRAPH_MAX_IN];
        for (int k = 0; k < c.n_in; k++) in[k] = A->copy[c.in[k]] >= 0 && recomputed(A, c.in[k]) ? A->copy[c.in[k]] : c.in[k];
        pmlc_shape sh;
        shape_of(A, z, &sh);
        c.pass = PMLC_PASS_BWD_INPUT; /* before any work of its segment, B or W, that reads it */
        c.label = NULL;
        c.param = -1;
        if (g->nodes.n >= 4 * PMLC_MAX_NODES_AD) {
            pmlc_error(&A->P->diag, c.loc, "internal error: the backward pass is too large (too many operations)");
            A->failed = 1;
            return -1;
        }
        A->copy[z] = pmlc_graph_push(&A->P->arena, g, &c, &sh, in, c.attr);
    }
    return A->copy[x];
}

/* Forward value x as a rule reads it: its copy when it is recomputed. */
static int32_t value(ad *A, int32_t x) { return recomputed(A, x) ? recompute(A, x) : x; }

static int32_t with_shape(ad *A, pmlc_opcode op, int32_t x, const pmlc_shape *sh)
{
    return emit(A, op, 1, &x, NULL, 0, sh, 0);
}

/* dy summed down to x's shape: the gradient of a broadcast operand. */
static int32_t sum_to(ad *A, int32_t dy, int32_t x)
{
    pmlc_shape sh;
    shape_of(A, x, &sh);
    return same_shape(A, dy, &sh) ? dy : with_shape(A, OP_SUM_TO, dy, &sh);
}

static int32_t expand_to(ad *A, int32_t y, int32_t x)
{
    pmlc_shape sh;
    shape_of(A, x, &sh);
    return same_shape(A, y, &sh) ? y : with_shape(A, OP_EXPAND, y, &sh);
}

static int32_t swap_last(ad *A, int32_t x)
{
    int rank = A->g->nodes.v[x].rank;
    int64_t perm[PMLC_MAX_RANK];
    for (int k = 0; k < rank; k++) perm[k] = k;
    perm[rank - 2] = rank - 1;
    perm[rank - 1] = rank - 2;
    return emit(A, OP_PERMUTE, 1, &x, perm, rank, NULL, 0);
}

/* A reduction's output reshaped so it broadcasts against its input (keepdim form). */
static int32_t keepdim_form(ad *A, int32_t y, int32_t x, int64_t axis)
{
    pmlc_shape sh;
    shape_of(A, x, &sh);
    for (int k = 0; k < sh.rank; k++)
        if (axis < 0 || k == axis) sh.d[k] = pmlc_size_int(1);
    return same_shape(A, y, &sh) ? y : with_shape(A, OP_RESHAPE, y, &sh);
}

static double reduced_count(const ad *A, int32_t x, int64_t axis)
{
    const ir_node *n = &A->g->nodes.v[x];
    double count = 1;
    for (int k = 0; k < n->rank; k++) {
        int64_t v = 1;
        if (axis < 0 || k == axis) pmlc_size_eval(n->shape[k], A->binding, &v);
        count *= (double)v;
    }
    return count;
}

/* Input k's gradient of attention node i: one attention_grad gives all three, stacked
 * [3, ...] (made for the first input that needs a gradient, then shared), and each is
 * its slice, reshaped. */
static int32_t attention_grad(ad *A, int32_t i, const ir_node *n, int k, int32_t dy)
{
    if (A->attn_of != i) {
        int32_t in[5] = {value(A, n->in[0]), value(A, n->in[1]), value(A, n->in[2]), value(A, i), dy};
        int saved = A->pass;
        A->pass = PMLC_PASS_BWD_INPUT; /* q, k and v are activations, or it is W work of all three */
        A->attn_grad = emit(A, OP_ATTENTION_GRAD, 5, in, n->attr, n->n_attr, NULL, n->fval);
        A->pass = saved;
        A->attn_of = i;
    }
    pmlc_shape sh;
    shape_of(A, n->in[k], &sh);
    int64_t at[4] = {0, k, k + 1, 1};
    int32_t part = emit(A, OP_SLICE, 1, &A->attn_grad, at, 4, NULL, 0);
    return with_shape(A, OP_RESHAPE, part, &sh);
}

/* The gradient of attention_qkv node i to its packed input: one attention_qkv_grad, in
 * qkv's layout (nothing to slice). */
static int32_t attention_qkv_grad(ad *A, int32_t i, const ir_node *n, int32_t dy)
{
    int32_t in[3] = {value(A, n->in[0]), value(A, i), dy};
    int saved = A->pass;
    A->pass = PMLC_PASS_BWD_INPUT; /* as attention_grad's */
    int32_t g = emit(A, OP_ATTENTION_QKV_GRAD, 3, in, n->attr, n->n_attr, NULL, n->fval);
    A->pass = saved;
    return g;
}

static int32_t matmul_grad(ad *A, const ir_node *n, int k, int32_t dy)
{
    int32_t a = n->in[0], b = n->in[1];
    if (k == 0) return sum_to(A, bin(A, OP_MATMUL, dy, swap_last(A, value(A, b))), a);
    a = value(A, a);
    /* The weight of a linear layer: fold the batch axes of a and dy into one, so the
     * gradient is one [k, M] @ [M, n] product instead of a batch of them summed. */
    int ra = A->g->nodes.v[a].rank, rb = A->g->nodes.v[b].rank;
    if (rb == 2 && ra > 2) {
        pmlc_shape sa, sd, a2 = {2, {{0}}}, d2 = {2, {{0}}};
        shape_of(A, a, &sa);
        shape_of(A, dy, &sd);
        pmlc_size m = pmlc_size_int(1);
        for (int q = 0; q < ra - 1; q++) pmlc_size_mul(m, sa.d[q], &m);
        a2.d[0] = d2.d[0] = m;
        a2.d[1] = sa.d[ra - 1];
        d2.d[1] = sd.d[ra - 1];
        int32_t af = with_shape(A, OP_RESHAPE, a, &a2), df = with_shape(A, OP_RESHAPE, dy, &d2);
        return bin(A, OP_MATMUL, swap_last(A, af), df);
    }
    return sum_to(A, bin(A, OP_MATMUL, swap_last(A, a), dy), b);
}

/* The gradient flowing to input k of node i, given dy = d loss / d node i. A value it
 * reads (an input of node i, or y, its output) goes through value(); one it only takes
 * the shape of needs not. */
static int32_t rule(ad *A, int32_t i, int k, int32_t dy)
{
    const ir_node n = A->g->nodes.v[i]; /* a copy: emitting may move the array */
    int32_t x = n.in[k], y = i;
    pmlc_dtype dt = n.dtype;
    switch (n.op) {
/* Each unary op's rule, from its row in pml/ops.def. */
#define UN(op, a) un(A, OP_##op, a)
#define BIN(op, a, b) bin(A, OP_##op, a, b)
#define CST(v) cst(A, v, dt)
#define PML_OP(...)
#define PML_UNARY(e, name, flops, saves, doc, fold, grad) \
    case OP_##e:                                          \
        if ((saves) & PML_SAVES_IN(0)) x = value(A, x);   \
        if ((saves) & PML_SAVES_OUT) y = value(A, y);     \
        return grad;
#include "pml/ops.def"
#undef PML_UNARY
#undef PML_OP
#undef UN
#undef BIN
#undef CST
    case OP_ADD:
        return sum_to(A, dy, x);
    case OP_SUB:
        return sum_to(A, k == 0 ? dy : un(A, OP_NEG, dy), x);
    case OP_MUL:
        return sum_to(A, bin(A, OP_MUL, dy, value(A, n.in[1 - k])), x);
    case OP_DIV: {
        int32_t b = value(A, n.in[1]);
        if (k == 0) return sum_to(A, bin(A, OP_DIV, dy, b), x);
        y = value(A, y);
        return sum_to(A, un(A, OP_NEG, bin(A, OP_DIV, bin(A, OP_MUL, dy, y), b)), x);
    }
    case OP_MAXIMUM: /* ties go to the first operand */
    case OP_MINIMUM: {
        int32_t a = value(A, n.in[0]), b = value(A, n.in[1]);
        pmlc_opcode pick = n.op == OP_MAXIMUM ? (k == 0 ? OP_GE : OP_LT) : (k == 0 ? OP_LE : OP_GT);
        return sum_to(A, bin(A, OP_MUL, dy, bin(A, pick, a, b)), x);
    }
    case OP_POW: {
        int32_t a = value(A, n.in[0]);
        if (k == 0) { /* b a^(b-1) */
            int32_t b = value(A, n.in[1]);
            return sum_to(A, bin(A, OP_MUL, dy, bin(A, OP_MUL, b, bin(A, OP_POW, a, bin(A, OP_SUB, b, cst(A, 1, dt))))),
                          x);
        }
        y = value(A, y);
        return sum_to(A, bin(A, OP_MUL, dy, bin(A, OP_MUL, y, un(A, OP_LOG, a))), x);
    }
    case OP_WHERE: {
        int32_t zero = cst(A, 0, dt), in[3] = {value(A, n.in[0]), k == 1 ? dy : zero, k == 1 ? zero : dy};
        return sum_to(A, emit(A, OP_WHERE, 3, in, NULL, 0, NULL, 0), x);
    }
    case OP_CAST: {
        int64_t to = A->g->nodes.v[x].dtype;
        return emit(A, OP_CAST, 1, &dy, &to, 1, NULL, 0);
    }
    case OP_DROPOUT:
        return emit(A, OP_DROPOUT, 1, &dy, n.attr, n.n_attr, NULL, n.fval); /* the same mask */
    case OP_CAUSAL_MASK:
        return emit(A, OP_CAUSAL_MASK, 1, &dy, NULL, 0, NULL, 0.0);
    case OP_SUM:
        return expand_to(A, keepdim_form(A, dy, x, n.attr[0]), x);
    case OP_MEAN:
        return bin(A, OP_MUL, expand_to(A, keepdim_form(A, dy, x, n.attr[0]), x),
                   cst(A, 1.0 / reduced_count(A, x, n.attr[0]), dt));
    case OP_MAX: { /* to every element equal to the maximum */
        int32_t xv = value(A, x), yv = value(A, y);
        return bin(A, OP_MUL, expand_to(A, keepdim_form(A, dy, x, n.attr[0]), x),
                   bin(A, OP_EQ, xv, expand_to(A, keepdim_form(A, yv, x, n.attr[0]), x)));
    }
    case OP_RESHAPE:
    case OP_EXPAND: {
        pmlc_shape sh;
        shape_of(A, x, &sh);
        return n.op == OP_RESHAPE ? with_shape(A, OP_RESHAPE, dy, &sh) : sum_to(A, dy, x);
    }
    case OP_SUM_TO:
        return expand_to(A, dy, x);
    case OP_PERMUTE: {
        int64_t inv[PMLC_MAX_RANK];
        for (int q = 0; q < n.n_attr; q++) inv[n.attr[q]] = q;
        return emit(A, OP_PERMUTE, 1, &dy, inv, n.n_attr, NULL, 0);
    }
    case OP_SLICE: {
        pmlc_shape sh;
        shape_of(A, x, &sh);
        return emit(A, OP_PAD, 1, &dy, n.attr, n.n_attr, &sh, 0);
    }
    case OP_PAD:
        return emit(A, OP_SLICE, 1, &dy, n.attr, n.n_attr, NULL, 0);
    case OP_CONCAT: {
        int axis = (int)n.attr[0];
        int64_t start = 0;
        for (int q = 0; q < k; q++) {
            int64_t v;
            pmlc_size_eval(A->g->nodes.v[n.in[q]].shape[axis], A->binding, &v);
            start += v;
        }
        int64_t len;
        pmlc_size d = A->g->nodes.v[x].shape[axis];
        if (!pmlc_size_is_const(d) || !pmlc_size_is_const(A->g->nodes.v[i].shape[axis])) {
            pmlc_error(&A->P->diag, A->loc, "the gradient of 'concat' along a symbolic axis is not supported yet");
            A->failed = 1;
            return -1;
        }
        len = d.coef;
        int64_t attr[4] = {axis, start, start + len, 1};
        return emit(A, OP_SLICE, 1, &dy, attr, 4, NULL, 0);
    }
    case OP_GATHER: {
        pmlc_shape sh;
        shape_of(A, x, &sh);
        int32_t in[2] = {dy, value(A, n.in[1])};
        return emit(A, OP_SCATTER_ADD, 2, in, NULL, 0, &sh, 0);
    }
    case OP_PICK: {
        pmlc_shape sh;
        shape_of(A, x, &sh);
        int32_t in[2] = {dy, value(A, n.in[1])};
        return emit(A, OP_UNPICK, 2, in, NULL, 0, &sh, 0);
    }
    case OP_XENT: { /* to the logits only: labels are indices */
        if (k != 0) return -1;
        int32_t in[4] = {value(A, n.in[0]), value(A, n.in[1]), value(A, y), dy};
        return emit(A, OP_XENT_GRAD, 4, in, NULL, 0, NULL, 0);
    }
    case OP_MATMUL:
        return matmul_grad(A, &n, k, dy);
    case OP_ATTENTION:
        return attention_grad(A, i, &n, k, dy);
    case OP_ATTENTION_QKV:
        return attention_qkv_grad(A, i, &n, dy);
    /* Sources, comparisons and the ops autodiff itself makes have no rule. */
    case OP_INPUT:
    case OP_PARAM:
    case OP_CONST:
    case OP_ARANGE:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
    case OP_EQ:
    case OP_NE:
    case OP_SCATTER_ADD:
    case OP_UNPICK:
    case OP_XENT_GRAD:
    case OP_GELU_TANH_GRAD:
    case OP_ATTENTION_GRAD:
    case OP_ATTENTION_QKV_GRAD:
    case OP_COUNT:
        break;
    }
    pmlc_error(&A->P->diag, A->loc, "internal error: no gradient rule for '%s'", pmlc_ops[n.op].name);
    A->failed = 1;
    return -1;
}

/* Marks the forward values of the first nf nodes that the backward pass recomputes
 * rather than keeps: element-wise (not dropout, whose mask costs a hash per element),
 * differing between micro-batches, read only by element-wise ops on their own stage
 * (so no forward kernel writes them out), not the loss or the output, not the
 * teacher's, not a product's bias add (folded into the product's epilogue, its sum is
 * the product's output), not an operand or result of an op with a parameter's value as
 * an operand (layernorm's x̂ · weight: a weight-gradient rule reads it, and a copy made
 * for both gradients would tie input-gradient work to the weight's, which a freeze
 * must be able to drop alone), and made, through other such values, from at most one
 * value of their own size: the backward pass keeps that value instead, so memory never
 * grows; smaller ones (a row's mean) are kept as well. */
static void mark_cheap(ad *A, int nf)
{
    const pmlc_graph *g = A->g;
    uint8_t *only_ew = A->cheap; /* first: read only by element-wise ops of the same stage */
    int32_t *lead = A->stack;    /* then: the one value of its size a cheap value is made from, or -1 */
    for (int i = 0; i < nf; i++) only_ew[i] = 1;
    for (int j = 0; j < nf; j++) {
        const ir_node *n = &g->nodes.v[j];
        int ew = pmlc_ops[n->op].cls == PMLC_OPC_ELEMWISE, with_weight = 0;
        for (int k = 0; k < n->n_in; k++) {
            if (!ew || g->nodes.v[n->in[k]].stage != n->stage) only_ew[n->in[k]] = 0;
            with_weight |= A->from_param[n->in[k]] && !A->act[n->in[k]];
        }
        if (with_weight) {
            only_ew[j] = 0;
            for (int k = 0; k < n->n_in; k++) only_ew[n->in[k]] = 0;
        }
    }
    if (g->loss >= 0) only_ew[g->loss] = 0;
    if (g->output >= 0 && g->output < nf) only_ew[g->output] = 0;
    for (int i = 0; i < nf; i++) {
        const ir_node *n = &g->nodes.v[i];
        int ok = only_ew[i] && A->varies[i] && pmlc_ops[n->op].cls == PMLC_OPC_ELEMWISE && n->op != OP_DROPOUT &&
                 n->n_in > 0 && !(i >= g->teacher_begin && i < g->teacher_end);
        int32_t full = -1;
        for (int k = 0; k < n->n_in && ok; k++) {
            int32_t x = n->in[k];
            if (pmlc_ops[g->nodes.v[x].op].cls == PMLC_OPC_MATMUL) ok = 0;
            if (!A->varies[x]) continue;
            int32_t leaf = A->cheap[x] && x < i ? lead[x] : x;
            if (leaf < 0 || !pmlc_size_eq(pmlc_node_numel(&g->nodes.v[leaf]), pmlc_node_numel(n))) continue;
            if (full >= 0 && full != leaf) ok = 0;
            full = leaf;
        }
        A->cheap[i] = (uint8_t)ok;
        lead[i] = ok ? full : -1;
    }
}

static void accumulate(ad *A, int32_t x, int32_t dx)
{
    if (dx < 0) return;
    A->grad[x] = A->grad[x] < 0 ? dx : bin(A, OP_ADD, A->grad[x], dx);
}

int pmlc_autodiff(pmlc_program *P, pmlc_graph *g, const int64_t *binding, const uint8_t *frozen)
{
    if (g->loss < 0 || g->n_forward) return 0;
    int nf = g->nodes.n;
    ad A = {0};
    A.P = P;
    A.g = g;
    A.binding = binding;
    A.grad = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)nf);
    A.rg = pmlc_arena_alloc(&P->arena, (size_t)nf);
    A.act = pmlc_arena_alloc(&P->arena, (size_t)nf);
    A.varies = pmlc_arena_alloc(&P->arena, (size_t)nf);
    A.copy = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)nf);
    A.stack = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)nf);
    A.cheap = pmlc_arena_alloc(&P->arena, (size_t)nf);
    A.from_param = pmlc_arena_alloc(&P->arena, (size_t)nf);
    A.seg = -1;
    A.attn_of = -1;
    for (int i = 0; i < nf; i++) {
        const ir_node *n = &g->nodes.v[i];
        const pmlc_op_info *info = &pmlc_ops[n->op];
        uint8_t rg = n->op == OP_PARAM && !frozen[n->param], act = n->op == OP_INPUT;
        uint8_t varies = n->op == OP_INPUT || pmlc_op_draws(n->op, n->attr, n->n_attr), from_param = n->op == OP_PARAM;
        for (int k = 0; k < n->n_in; k++) {
            from_param |= A.from_param[n->in[k]];
            rg |= info->differentiable && A.rg[n->in[k]];
            act |= A.act[n->in[k]];
            varies |= A.varies[n->in[k]];
        }
        A.rg[i] = rg;
        A.act[i] = act;
        A.varies[i] = varies;
        A.from_param[i] = from_param;
        A.grad[i] = -1;
        A.copy[i] = -1;
    }
    g->n_forward = nf;
    mark_cheap(&A, nf);
    g->param_grad = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)(g->params.n ? g->params.n : 1));
    for (int p = 0; p < g->params.n; p++) g->param_grad[p] = -1;
    if (!A.rg[g->loss]) return 0; /* everything is frozen */

    /* d loss / d loss = 1, on the loss's stage. */
    const ir_node *loss = &g->nodes.v[g->loss];
    A.stage = loss->stage;
    A.unit = loss->unit;
    A.loc = loss->loc;
    A.pass = PMLC_PASS_BWD_INPUT;
    A.grad[g->loss] = cst(&A, 1.0, loss->dtype);

    for (int32_t i = nf - 1; i >= 0 && !A.failed; i--) {
        if (A.grad[i] < 0 || !A.rg[i]) continue;
        const ir_node *n = &g->nodes.v[i];
        A.stage = n->stage;
        A.unit = n->unit;
        A.loc = n->loc;
        A.seg = g->segment ? g->segment[i] : -1;
        int n_in = n->n_in;
        for (int k = 0; k < n_in && !A.failed; k++) {
            int32_t x = g->nodes.v[i].in[k];
            if (!A.rg[x]) continue;
            A.pass = A.act[x] ? PMLC_PASS_BWD_INPUT : PMLC_PASS_BWD_WEIGHT;
            accumulate(&A, x, rule(&A, i, k, A.grad[i]));
        }
    }
    if (A.failed) return 1;
    for (int p = 0; p < g->params.n; p++) g->param_grad[p] = A.grad[g->params.v[p].node];
    if (!g->segment) return 0;
    g->copy_of = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)g->nodes.n);
    for (int i = 0; i < g->nodes.n; i++) g->copy_of[i] = -1;
    for (int i = 0; i < nf; i++) /* a segment's copies: the cheap ones are the backward pass's own work */
        if (A.copy[i] >= 0 && g->segment[i] >= 0) g->copy_of[A.copy[i]] = i;
    return 0;
}

/* ops.c — the op table, its shape rules and its cost model (see ops.h).
 *
 * Shape rules never print; they fill pmlc_infer.msg with both operands' types so the
 * front end can point at the operand at fault. */
#include "ir/ops.h"

#include <stdio.h>
#include <string.h>

#define TA(i) type_of(a, (i), tb[0], sizeof tb[0])
#define TB(i) type_of(a, (i), tb[1], sizeof tb[1])
#define FAIL(operand, ...)                            \
    do {                                              \
        a->bad = (operand);                           \
        snprintf(a->msg, sizeof a->msg, __VA_ARGS__); \
        return 1;                                     \
    } while (0)

static const char *type_of(pmlc_infer *a, int i, char *buf, size_t cap)
{
    return pmlc_type_str(a->dt[i], a->in[i], a->syms, buf, cap);
}

static const char *size_of(pmlc_infer *a, pmlc_size s, char *buf, size_t cap)
{
    return pmlc_size_str(s, a->syms, buf, cap);
}

static int need_float(pmlc_infer *a, int i)
{
    char tb[2][160];
    if (!pmlc_dtype_is_float(a->dt[i])) FAIL(i, "'%s' needs a floating-point tensor, but this is %s", a->opname, TA(i));
    return 0;
}

static int same_dtype(pmlc_infer *a, int i, int j)
{
    char tb[2][160];
    if (a->dt[i] != a->dt[j]) FAIL(j, "element types differ in '%s': %s and %s (use cast)", a->opname, TA(i), TB(j));
    return 0;
}

static int check_numel(pmlc_infer *a)
{
    pmlc_size n;
    if (pmlc_shape_numel(&a->out, &n)) FAIL(-1, "the result of '%s' is too large (more than 2^48 elements)", a->opname);
    return 0;
}

/* NumPy broadcasting of a->out with input i. */
static int broadcast_into(pmlc_infer *a, int first, int i)
{
    char tb[2][160], s1[64], s2[64];
    const pmlc_shape *x = a->in[i];
    pmlc_shape r = {0};
    r.rank = a->out.rank > x->rank ? a->out.rank : x->rank;
    for (int k = 0; k < r.rank; k++) {
        int ko = a->out.rank - r.rank + k, kx = x->rank - r.rank + k;
        pmlc_size o = ko >= 0 ? a->out.d[ko] : pmlc_size_int(1);
        pmlc_size y = kx >= 0 ? x->d[kx] : pmlc_size_int(1);
        pmlc_size one = pmlc_size_int(1);
        if (pmlc_size_eq(o, y) || pmlc_size_eq(y, one))
            r.d[k] = o;
        else if (pmlc_size_eq(o, one))
            r.d[k] = y;
        else
            FAIL(i, "shapes do not broadcast in '%s': %s and %s differ at axis %d (%s vs %s)", a->opname, TA(first),
                 TB(i), k - r.rank, size_of(a, o, s1, sizeof s1), size_of(a, y, s2, sizeof s2));
    }
    a->out = r;
    return 0;
}

static int rule_unary_float(pmlc_infer *a)
{
    if (need_float(a, 0)) return 1;
    a->out = *a->in[0];
    a->out_dt = a->dt[0];
    return 0;
}

static int rule_binary(pmlc_infer *a)
{
    if (same_dtype(a, 0, 1)) return 1;
    a->out = *a->in[0];
    a->out_dt = a->dt[0];
    return broadcast_into(a, 0, 1) || check_numel(a);
}

static int rule_binary_float(pmlc_infer *a) { return need_float(a, 0) || rule_binary(a); }

static int rule_where(pmlc_infer *a)
{
    if (same_dtype(a, 1, 2)) return 1;
    a->out = *a->in[0];
    if (broadcast_into(a, 0, 1) || broadcast_into(a, 0, 2)) return 1;
    a->out_dt = a->dt[1];
    return check_numel(a);
}

static int rule_cast(pmlc_infer *a)
{
    a->out = *a->in[0];
    a->out_dt = (pmlc_dtype)a->attr[0];
    return 0;
}

static int rule_causal_mask(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *x = a->in[0];
    if (need_float(a, 0)) return 1;
    if (x->rank < 2 || !pmlc_size_eq(x->d[x->rank - 1], x->d[x->rank - 2]))
        FAIL(0, "'causal_mask' needs scores shaped [..., T, T], but this is %s", TA(0));
    a->out = *x;
    a->out_dt = a->dt[0];
    return 0;
}

static int rule_reduce(pmlc_infer *a)
{
    const pmlc_shape *x = a->in[0];
    int axis = (int)a->attr[0], keep = (int)a->attr[1];
    a->out_dt = a->dt[0];
    if (a->attr[0] < 0) { /* all axes */
        a->out.rank = keep ? x->rank : 0;
        for (int k = 0; k < a->out.rank; k++) a->out.d[k] = pmlc_size_int(1);
        return 0;
    }
    a->out.rank = 0;
    for (int k = 0; k < x->rank; k++) {
        if (k != axis)
            a->out.d[a->out.rank++] = x->d[k];
        else if (keep)
            a->out.d[a->out.rank++] = pmlc_size_int(1);
    }
    return 0;
}

static int rule_reshape(pmlc_infer *a)
{
    char tb[2][160], s1[96], s2[96];
    const pmlc_shape *x = a->in[0];
    pmlc_shape t = *a->target;
    pmlc_size have, want = pmlc_size_int(1);
    if (pmlc_shape_numel(x, &have)) FAIL(0, "tensor too large");
    int infer_at = -1;
    for (int k = 0; k < t.rank; k++) {
        if (pmlc_size_is_const(t.d[k]) && t.d[k].coef == -1) {
            if (infer_at >= 0) FAIL(-1, "'reshape' can infer only one dimension (two are -1)");
            infer_at = k;
            continue;
        }
        if (pmlc_size_is_const(t.d[k]) && t.d[k].coef <= 0)
            FAIL(-1, "'reshape' dimensions must be positive, got %lld", (long long)t.d[k].coef);
        if (pmlc_size_mul(want, t.d[k], &want)) FAIL(-1, "'reshape' target is too large");
    }
    if (infer_at >= 0) {
        if (pmlc_size_div(have, want, &t.d[infer_at]))
            FAIL(0, "cannot reshape %s: %s elements do not divide by %s", TA(0), size_of(a, have, s1, sizeof s1),
                 size_of(a, want, s2, sizeof s2));
    } else if (!pmlc_size_eq(have, want)) {
        FAIL(0, "cannot reshape %s (%s elements) to %s elements", TA(0), size_of(a, have, s1, sizeof s1),
             size_of(a, want, s2, sizeof s2));
    }
    a->out = t;
    a->out_dt = a->dt[0];
    return 0;
}

static int rule_permute(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *x = a->in[0];
    if (a->n_attr != x->rank) FAIL(-1, "'permute' of %s needs %d axes, got %d", TA(0), x->rank, a->n_attr);
    int seen[PMLC_MAX_RANK] = {0};
    for (int k = 0; k < x->rank; k++) {
        int64_t p = a->attr[k];
        if (p < 0 || p >= x->rank || seen[p]) FAIL(-1, "'permute' axes must be a permutation of 0..%d", x->rank - 1);
        seen[p] = 1;
        a->out.d[k] = x->d[p];
    }
    a->out.rank = x->rank;
    a->out_dt = a->dt[0];
    return 0;
}

/* attr: axis, start, stop, step — already normalised against a constant dimension. */
static int rule_slice(pmlc_infer *a)
{
    a->out = *a->in[0];
    int64_t start = a->attr[1], stop = a->attr[2], step = a->attr[3];
    a->out.d[a->attr[0]] = pmlc_size_int(stop > start ? (stop - start + step - 1) / step : 0);
    a->out_dt = a->dt[0];
    return 0;
}

static int rule_concat(pmlc_infer *a)
{
    char tb[2][160], s1[64], s2[64];
    int axis = (int)a->attr[0];
    a->out = *a->in[0];
    a->out_dt = a->dt[0];
    for (int i = 1; i < a->n_in; i++) {
        if (same_dtype(a, 0, i)) return 1;
        if (a->in[i]->rank != a->out.rank) FAIL(i, "'concat' needs tensors of one rank: %s and %s", TA(0), TB(i));
        for (int k = 0; k < a->out.rank; k++) {
            if (k == axis) continue;
            if (!pmlc_size_eq(a->in[i]->d[k], a->in[0]->d[k]))
                FAIL(i, "'concat' along axis %d needs the other axes equal: %s and %s differ at axis %d", axis, TA(0),
                     TB(i), k);
        }
        pmlc_size_err e = pmlc_size_add(a->out.d[axis], a->in[i]->d[axis], 1, &a->out.d[axis]);
        if (e == PMLC_SIZE_SYMBOLIC)
            FAIL(i, "'concat' cannot add sizes %s and %s along axis %d", size_of(a, a->out.d[axis], s1, sizeof s1),
                 size_of(a, a->in[i]->d[axis], s2, sizeof s2), axis);
        if (e) FAIL(i, "'concat' result is too large");
    }
    return check_numel(a);
}

static int rule_gather(pmlc_infer *a)
{
    char tb[2][160];
    if (a->in[0]->rank != 2) FAIL(0, "'gather' needs a table shaped [N, C], but this is %s", TA(0));
    if (need_float(a, 0)) return 1;
    if (a->dt[1] != PMLC_I32) FAIL(1, "'gather' needs i32 indices, but this is %s", TA(1));
    if (a->in[1]->rank + 1 > PMLC_MAX_RANK)
        FAIL(1, "'gather' result would have more than %d dimensions", PMLC_MAX_RANK);
    a->out = *a->in[1];
    a->out.d[a->out.rank++] = a->in[0]->d[1];
    a->out_dt = a->dt[0];
    return check_numel(a);
}

static int rule_pick(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *x = a->in[0], *i = a->in[1];
    if (need_float(a, 0)) return 1;
    if (a->dt[1] != PMLC_I32) FAIL(1, "'pick' needs i32 indices, but this is %s", TA(1));
    int ok = x->rank >= 1 && i->rank == x->rank - 1;
    for (int k = 0; ok && k < i->rank; k++) ok = pmlc_size_eq(x->d[k], i->d[k]);
    if (!ok) FAIL(1, "'pick' needs indices shaped like the values without their last axis: %s and %s", TA(0), TB(1));
    a->out = *i;
    a->out_dt = a->dt[0];
    return 0;
}

/* xent(logits[..., V], labels[...]) -> [...]: the labels are shaped like pick's indices. */
static int rule_xent(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *x = a->in[0], *i = a->in[1];
    if (need_float(a, 0)) return 1;
    if (a->dt[1] != PMLC_I32) FAIL(1, "'%s' needs i32 labels, but this is %s", a->opname, TA(1));
    int ok = x->rank >= 1 && i->rank == x->rank - 1;
    for (int k = 0; ok && k < i->rank; k++) ok = pmlc_size_eq(x->d[k], i->d[k]);
    if (!ok) FAIL(1, "'%s' needs labels shaped like the logits without their last axis: %s and %s", a->opname, TA(0), TB(1));
    a->out = *i;
    a->out_dt = a->dt[0];
    return 0;
}

/* xent_grad(logits, labels, loss, dloss) -> logits' shape: loss and dloss are per row. */
static int rule_xent_grad(pmlc_infer *a)
{
    char tb[2][160];
    if (rule_xent(a)) return 1;
    for (int k = 2; k < 4; k++) {
        if (same_dtype(a, 0, k)) return 1;
        if (a->in[k]->rank != a->out.rank) FAIL(k, "'%s' needs one value per row, but this is %s", a->opname, TA(k));
        for (int q = 0; q < a->out.rank; q++)
            if (!pmlc_size_eq(a->in[k]->d[q], a->out.d[q]))
                FAIL(k, "'%s' needs one value per row, but this is %s", a->opname, TA(k));
    }
    a->out = *a->in[0];
    return 0;
}

/* attention(q, k, v) -> q's shape: three tensors of one shape [..., T, d]; its backward
 * attention_grad(q, k, v, out, dout) -> [3, ..., T, d]. */
static int rule_attention(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *q = a->in[0];
    if (need_float(a, 0)) return 1;
    if (q->rank < 2) FAIL(0, "'%s' needs q, k and v shaped [..., T, d], but q is %s", a->opname, TA(0));
    for (int k = 1; k < a->n_in; k++) {
        if (same_dtype(a, 0, k)) return 1;
        int ok = a->in[k]->rank == q->rank;
        for (int d = 0; ok && d < q->rank; d++) ok = pmlc_size_eq(a->in[k]->d[d], q->d[d]);
        if (!ok) FAIL(k, "'%s' needs q, k and v of one shape: %s and %s", a->opname, TA(0), TB(k));
    }
    a->out = *q;
    a->out_dt = a->dt[0];
    if (a->n_in == 3) return check_numel(a);
    if (q->rank + 1 > PMLC_MAX_RANK) FAIL(0, "'%s' of %s would have more than %d dimensions", a->opname, TA(0), PMLC_MAX_RANK);
    a->out.rank = q->rank + 1;
    a->out.d[0] = pmlc_size_int(3);
    for (int d = 0; d < q->rank; d++) a->out.d[d + 1] = q->d[d];
    return check_numel(a);
}

/* attention_qkv(qkv) with attr [causal, heads]: qkv [..., T, 3·heads·d] -> [..., T,
 * heads·d]; its backward attention_qkv_grad(qkv, out, dout) -> qkv's shape. */
static int rule_attention_qkv(pmlc_infer *a)
{
    char tb[2][160];
    const pmlc_shape *x = a->in[0];
    if (need_float(a, 0)) return 1;
    if (a->n_attr < 2 || a->attr[1] < 1) FAIL(0, "'%s' needs a positive number of heads", a->opname);
    int64_t heads = a->attr[1];
    pmlc_size w = x->rank >= 2 ? x->d[x->rank - 1] : pmlc_size_int(0);
    if (x->rank < 2 || !pmlc_size_is_const(w) || w.coef < 1 || w.coef % (3 * heads))
        FAIL(0, "'%s' needs qkv shaped [..., T, 3·heads·d] with a known last axis (3 x %lld heads x d), but it is %s",
             a->opname, (long long)heads, TA(0));
    a->out = *x;
    a->out_dt = a->dt[0];
    if (a->n_in == 1) {
        a->out.d[x->rank - 1] = pmlc_size_int(w.coef / 3);
        return check_numel(a);
    }
    for (int k = 1; k < 3; k++) {
        if (same_dtype(a, 0, k)) return 1;
        const pmlc_shape *y = a->in[k];
        int ok = y->rank == x->rank && pmlc_size_eq(y->d[x->rank - 1], pmlc_size_int(w.coef / 3));
        for (int d = 0; ok && d < x->rank - 1; d++) ok = pmlc_size_eq(y->d[d], x->d[d]);
        if (!ok)
            FAIL(k, "'%s' needs its output and gradient shaped as qkv with a third of its columns: %s and %s",
                 a->opname, TA(0), TB(k));
    }
    return check_numel(a);
}

static int rule_matmul(pmlc_infer *a)
{
    char tb[2][160], s1[64], s2[64];
    const pmlc_shape *x = a->in[0], *y = a->in[1];
    if (need_float(a, 0) || same_dtype(a, 0, 1)) return 1;
    if (x->rank < 2) FAIL(0, "'%s' needs at least 2 dimensions on the left, but this is %s", a->opname, TA(0));
    if (y->rank < 2) FAIL(1, "'%s' needs at least 2 dimensions on the right, but this is %s", a->opname, TA(1));
    pmlc_size k1 = x->d[x->rank - 1], k2 = y->d[y->rank - 2];
    if (!pmlc_size_eq(k1, k2))
        FAIL(1, "inner dimensions differ in '%s': %s and %s (%s vs %s)", a->opname, TA(0), TB(1),
             size_of(a, k1, s1, sizeof s1), size_of(a, k2, s2, sizeof s2));
    /* Batch dimensions broadcast. */
    pmlc_shape bx = *x, by = *y;
    bx.rank -= 2;
    by.rank -= 2;
    const pmlc_shape *save[2] = {a->in[0], a->in[1]};
    const pmlc_shape *tmp[2] = {&bx, &by};
    a->in = tmp;
    a->out = bx;
    int bad = broadcast_into(a, 0, 1);
    a->in = save;
    if (bad) {
        snprintf(a->msg, sizeof a->msg, "batch dimensions do not broadcast in '%s': %s and %s", a->opname, TA(0),
                 TB(1));
        return 1;
    }
    a->out.d[a->out.rank++] = x->d[x->rank - 2];
    a->out.d[a->out.rank++] = y->d[y->rank - 1];
    a->out_dt = a->dt[0];
    return check_numel(a);
}

/* Ops made by autodiff carry their output shape in `target`; the rules check that it
 * fits the operands. */
/* Whether `from` broadcasts to exactly `to` (NumPy rules, aligned from the right). */
static int broadcasts_to(const pmlc_shape *from, const pmlc_shape *to)
{
    if (from->rank > to->rank) return 0;
    for (int k = 0; k < from->rank; k++) {
        pmlc_size f = from->d[from->rank - 1 - k], t = to->d[to->rank - 1 - k];
        if (!pmlc_size_eq(f, t) && !pmlc_size_eq(f, pmlc_size_int(1))) return 0;
    }
    return 1;
}

static int rule_expand(pmlc_infer *a)
{
    char tb[2][160];
    if (!broadcasts_to(a->in[0], a->target)) FAIL(0, "'expand' cannot broadcast %s to the requested shape", TA(0));
    a->out = *a->target;
    a->out_dt = a->dt[0];
    return check_numel(a);
}

static int rule_sum_to(pmlc_infer *a)
{
    char tb[2][160];
    if (!broadcasts_to(a->target, a->in[0])) FAIL(0, "'sum_to' cannot reduce %s to the requested shape", TA(0));
    a->out = *a->target;
    a->out_dt = a->dt[0];
    return 0;
}

static int rule_target(pmlc_infer *a)
{
    a->out = *a->target;
    a->out_dt = a->dt[0];
    return check_numel(a);
}

/* The shape rule of each class; a class whose ops differ names each op's rule. */
#define RULE_OF_LEAF(e, flags) NULL
#define RULE_OF_FILL(e, flags) NULL
#define RULE_OF_UNARY(e, flags) rule_unary_float
#define RULE_OF_BINARY(e, flags) ((flags) & PML_OPF_FLOAT ? rule_binary_float : rule_binary)
#define RULE_OF_ELEMWISE(e, flags) RULE_##e
#define RULE_OF_REDUCE(e, flags) RULE_##e
#define RULE_OF_MOVEMENT(e, flags) RULE_##e
#define RULE_OF_GATHER(e, flags) RULE_##e
#define RULE_OF_MATMUL(e, flags) RULE_##e
#define RULE_OF_ROWLOSS(e, flags) RULE_##e
#define RULE_OF_ATTENTION(e, flags) RULE_##e
#define RULE_ATTENTION rule_attention
#define RULE_ATTENTION_GRAD rule_attention
#define RULE_ATTENTION_QKV rule_attention_qkv
#define RULE_ATTENTION_QKV_GRAD rule_attention_qkv
#define RULE_WHERE rule_where
#define RULE_CAST rule_cast
#define RULE_DROPOUT rule_unary_float
#define RULE_CAUSAL_MASK rule_causal_mask
#define RULE_SUM rule_reduce
#define RULE_MAX rule_reduce
#define RULE_MEAN rule_reduce
#define RULE_SUM_TO rule_sum_to
#define RULE_RESHAPE rule_reshape
#define RULE_PERMUTE rule_permute
#define RULE_SLICE rule_slice
#define RULE_CONCAT rule_concat
#define RULE_EXPAND rule_expand
#define RULE_PAD rule_target
#define RULE_GATHER rule_gather
#define RULE_PICK rule_pick
#define RULE_SCATTER_ADD rule_target
#define RULE_UNPICK rule_target
#define RULE_MATMUL rule_matmul
#define RULE_XENT rule_xent
#define RULE_XENT_GRAD rule_xent_grad

const pmlc_op_info pmlc_ops[] = {
#define PML_OP(e, name, cls, min_in, max_in, flags, flops, saves, doc, attrs)                     \
    [OP_##e] = {name,  PMLC_OPC_OF_##cls, min_in, max_in, RULE_OF_##cls(e, flags), flops, saves, \
                !((flags) & PML_OPF_NOGRAD), flags, doc, attrs},
#include "pml/ops.def"
#undef PML_OP
};
_Static_assert(sizeof pmlc_ops / sizeof *pmlc_ops == OP_COUNT, "one row per op of pml/ops.def");

int64_t pmlc_cshape_numel(const pmlc_cshape *s)
{
    int64_t n = 1;
    for (int k = 0; k < s->rank; k++) n *= s->d[k];
    return n;
}

void pmlc_op_cost(pmlc_opcode op, int n_in, const pmlc_cshape *in, const pmlc_cshape *out, const int64_t *attr,
                  int n_attr, double *fwd, double *bwd)
{
    const pmlc_op_info *info = &pmlc_ops[op];
    double n_out = (double)pmlc_cshape_numel(out);
    for (int i = 0; i < n_in; i++) bwd[i] = 0;
    *fwd = 0;
    switch (info->cls) {
    case PMLC_OPC_SOURCE:
    case PMLC_OPC_MOVEMENT:
        break;
    case PMLC_OPC_ELEMWISE:
        *fwd = n_out * info->flops_per_elem;
        if (info->differentiable)
            for (int i = 0; i < n_in; i++) bwd[i] = n_out * (info->flops_per_elem > 1 ? info->flops_per_elem : 1);
        break;
    case PMLC_OPC_REDUCE:
        *fwd = (double)pmlc_cshape_numel(&in[0]);
        bwd[0] = (double)pmlc_cshape_numel(&in[0]);
        break;
    case PMLC_OPC_GATHER:
        bwd[0] = n_out; /* scatter-add into the table or the picked positions */
        break;
    case PMLC_OPC_ROWLOSS: /* max, exp and sum per element; the backward exp, scale and store */
        *fwd = (double)pmlc_cshape_numel(&in[0]) * info->flops_per_elem;
        if (info->differentiable) bwd[0] = (double)pmlc_cshape_numel(&in[0]) * 3;
        break;
    case PMLC_OPC_ATTENTION: { /* q kᵀ and p v: 4 T² d per matrix (half under the mask), the
                                  softmax ~5 T²; the backward recomputes q kᵀ and makes four more products */
        const pmlc_cshape *q = &in[0];
        int packed = op == OP_ATTENTION_QKV || op == OP_ATTENTION_QKV_GRAD,
            heads = packed && n_attr >= 2 ? (int)attr[1] : 1;
        double T = (double)q->d[q->rank - 2], d = (double)q->d[q->rank - 1] / (packed ? 3.0 * heads : 1.0);
        double mats = (double)pmlc_cshape_numel(q) / (packed ? 3.0 : 1.0) / (T * d > 0 ? T * d : 1);
        double full = mats * T * T * (4 * d + 5), part = info->differentiable ? full : 0;
        *fwd = op == OP_ATTENTION || op == OP_ATTENTION_QKV ? full : full * 2.5;
        if (packed)
            bwd[0] = part * 2.5;
        else
            for (int i = 0; i < n_in && i < 3; i++) bwd[i] = part * 2.5 / 3;
        break;
    }
    case PMLC_OPC_MATMUL: {
        double k = (double)in[0].d[in[0].rank - 1];
        *fwd = 2.0 * n_out * k;
        bwd[0] = bwd[1] = *fwd;
        break;
    }
    }
}

double pmlc_op_bytes(pmlc_opcode op, int n_in, const pmlc_cshape *in, const int *in_elem, const pmlc_cshape *out,
                     int out_elem)
{
    const pmlc_op_info *info = &pmlc_ops[op];
    double n_out = (double)pmlc_cshape_numel(out), bytes = n_out * out_elem;
    if (info->cls == PMLC_OPC_SOURCE) return 0;
    if (info->cls == PMLC_OPC_GATHER) /* the selected elements and the indices */
        return bytes + n_out * in_elem[0] + (double)pmlc_cshape_numel(&in[1]) * in_elem[1];
    for (int i = 0; i < n_in; i++) bytes += (double)pmlc_cshape_numel(&in[i]) * in_elem[i];
    return bytes;
}

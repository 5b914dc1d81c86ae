/* builtins.c — the functions PML provides without an import: the tensor primitives
 * of ops.h under their user-facing names, and compile-time helpers (dim, len, ...).
 * Each entry binds arguments by name like a user function, so keyword arguments,
 * missing arguments and typos get the same messages everywhere. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pml/gelu.h"
#include "sema/elab_int.h"

typedef struct builtin builtin;
typedef pmlc_value (*builtin_fn)(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given);

struct builtin {
    const char *name;
    const char *params[6];
    int n_params, n_required;
    builtin_fn fn;
    pmlc_opcode op;
    double (*math)(double); /* compile-time form of a unary op on numbers */
};

#define DIAG (&E->P->diag)

static int is_num(pmlc_value v) { return v.k == PMLC_V_FLOAT || (v.k == PMLC_V_INT && pmlc_size_is_const(v.i)); }

static pmlc_value emit1(E_t *E, const ast *call, pmlc_opcode op, int32_t t, pmlc_loc l, const int64_t *attr, int n_attr,
                        double fval, const char *name)
{
    return pmlc_v_tensor(pmlc_emit(E, op, 1, &t, &l, attr, n_attr, NULL, fval, call->loc, name));
}

static pmlc_value b_unary(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    if (is_num(v[0]) && b->math) {
        double x = v[0].k == PMLC_V_FLOAT ? v[0].f : (double)v[0].i.coef, r = b->math(x);
        if (!isfinite(r)) {
            pmlc_error(DIAG, call->loc, "'%s(%g)' is not a finite number", b->name, x);
            return pmlc_v_err;
        }
        return pmlc_v_float(r);
    }
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t)) return pmlc_v_err;
    return emit1(E, call, b->op, t, l[0], NULL, 0, 0, b->name);
}

/* Each unary op's value on a number, from its row in pml/ops.def: fold_NEG, ... */
#define PML_OP(...)
#define PML_UNARY(e, name, flops, saves, doc, fold, grad) \
    static double fold_##e(double x) { return fold; }
#include "pml/ops.def"
#undef PML_UNARY
#undef PML_OP

static pmlc_value b_binary(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    if (is_num(v[0]) && is_num(v[1])) {
        double x = v[0].k == PMLC_V_FLOAT ? v[0].f : (double)v[0].i.coef;
        double y = v[1].k == PMLC_V_FLOAT ? v[1].f : (double)v[1].i.coef;
        double r = b->op == OP_MAXIMUM ? fmax(x, y) : b->op == OP_MINIMUM ? fmin(x, y) : pow(x, y);
        if (!isfinite(r)) {
            pmlc_error(DIAG, call->loc, "'%s' of %g and %g is not a finite number", b->name, x, y);
            return pmlc_v_err;
        }
        return pmlc_v_float(r);
    }
    int32_t like = v[0].k == PMLC_V_TENSOR ? v[0].t : v[1].k == PMLC_V_TENSOR ? v[1].t : -1;
    int32_t in[2];
    if (pmlc_want_tensor(E, v[0], l[0], "the first argument", like, &in[0]) ||
        pmlc_want_tensor(E, v[1], l[1], "the second argument", like, &in[1]))
        return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, b->op, 2, in, l, NULL, 0, NULL, 0, call->loc, b->name));
}

static pmlc_value b_where(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t like = v[1].k == PMLC_V_TENSOR ? v[1].t : v[2].k == PMLC_V_TENSOR ? v[2].t : -1;
    int32_t in[3];
    if (pmlc_want_tensor(E, v[0], l[0], "the condition", -1, &in[0]) ||
        pmlc_want_tensor(E, v[1], l[1], "the second argument", like, &in[1]) ||
        pmlc_want_tensor(E, v[2], l[2], "the third argument", like, &in[2]))
        return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, OP_WHERE, 3, in, l, NULL, 0, NULL, 0, call->loc, "where"));
}

static pmlc_value b_cast(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    char d[200];
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t)) return pmlc_v_err;
    if (v[1].k != PMLC_V_DTYPE) {
        if (v[1].k != PMLC_V_ERR)
            pmlc_error(DIAG, l[1], "'cast' needs a type (f32, bf16, f16 or i32), not %s",
                       pmlc_value_desc(E->P, E->g, v[1], d, sizeof d));
        return pmlc_v_err;
    }
    int64_t dt = v[1].t;
    return emit1(E, call, OP_CAST, t, l[0], &dt, 1, 0, "cast");
}

static int want_prob(E_t *E, pmlc_value v, pmlc_loc l, double *p)
{
    if (pmlc_want_number(E, v, l, "a probability", p)) return 1;
    if (!(*p >= 0 && *p < 1)) {
        pmlc_error(DIAG, l, "a dropout probability must be in [0, 1), not %g", *p);
        return 1;
    }
    return 0;
}

static pmlc_value b_dropout(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    double p;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t) || want_prob(E, v[1], l[1], &p)) return pmlc_v_err;
    if (p == 0) return v[0]; /* dropout(x, 0) is x: no op, no RNG */
    /* The RNG stream of this dropout: the node's own index, stable for a given program,
     * so the backward pass regenerates the same mask from (seed, key, element). */
    int64_t key = E->g->nodes.n;
    return emit1(E, call, OP_DROPOUT, t, l[0], &key, 1, p, "dropout");
}

static pmlc_value b_reduce(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    /* max(a, b) on two numbers is the compile-time maximum: the second number arrives
     * in the `axis` slot. */
    if (b->op == OP_MAX && is_num(v[0])) {
        double x = v[0].k == PMLC_V_FLOAT ? v[0].f : (double)v[0].i.coef, y;
        if (!given[1] || pmlc_want_number(E, v[1], l[1], "the second argument", &y)) {
            if (!given[1]) pmlc_error(DIAG, call->loc, "'max' of a number needs a second number");
            return pmlc_v_err;
        }
        if (v[0].k == PMLC_V_INT && v[1].k == PMLC_V_INT) return x >= y ? v[0] : v[1];
        return pmlc_v_float(fmax(x, y));
    }
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t)) return pmlc_v_err;
    int64_t attr[2] = {-1, 0};
    if (given[1]) {
        int axis;
        if (pmlc_want_int(E, v[1], l[1], "an axis", &attr[0]) ||
            pmlc_axis(E, attr[0], E->g->nodes.v[t].rank, l[1], &axis))
            return pmlc_v_err;
        attr[0] = axis;
    }
    if (given[2]) {
        int keep;
        if (pmlc_want_bool(E, v[2], l[2], "'keepdim'", &keep)) return pmlc_v_err;
        attr[1] = keep;
    }
    return emit1(E, call, b->op, t, l[0], attr, 2, 0, b->name);
}

static pmlc_value b_min(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    double x, y;
    if (pmlc_want_number(E, v[0], l[0], "the first argument of 'min'", &x) ||
        pmlc_want_number(E, v[1], l[1], "the second argument of 'min'", &y))
        return pmlc_v_err;
    if (v[0].k == PMLC_V_INT && v[1].k == PMLC_V_INT) return x <= y ? v[0] : v[1];
    return pmlc_v_float(fmin(x, y));
}

static int want_list(E_t *E, pmlc_value v, pmlc_loc l, const char *what)
{
    char d[200];
    if (v.k == PMLC_V_LIST) return 0;
    if (v.k != PMLC_V_ERR)
        pmlc_error(DIAG, l, "%s must be a list, not %s", what, pmlc_value_desc(E->P, E->g, v, d, sizeof d));
    return 1;
}

static pmlc_value b_reshape(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t) || want_list(E, v[1], l[1], "the new shape"))
        return pmlc_v_err;
    if (v[1].n > PMLC_MAX_RANK) {
        pmlc_error(DIAG, l[1], "too many dimensions (%d; the limit is %d)", v[1].n, PMLC_MAX_RANK);
        return pmlc_v_err;
    }
    pmlc_shape target = {v[1].n, {{0}}};
    for (int k = 0; k < v[1].n; k++)
        if (pmlc_want_size(E, v[1].items[k], l[1], "a dimension", &target.d[k])) return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, OP_RESHAPE, 1, &t, &l[0], NULL, 0, &target, 0, call->loc, "reshape"));
}

static pmlc_value b_permute(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t) || want_list(E, v[1], l[1], "the axes"))
        return pmlc_v_err;
    int64_t perm[PMLC_MAX_RANK];
    int rank = E->g->nodes.v[t].rank, n = v[1].n;
    if (n != rank) {
        pmlc_error(DIAG, l[1], "'permute' needs %d axes for a tensor of rank %d, got %d", rank, rank, n);
        return pmlc_v_err;
    }
    for (int k = 0; k < n; k++) {
        int ax;
        if (pmlc_want_int(E, v[1].items[k], l[1], "an axis", &perm[k]) || pmlc_axis(E, perm[k], rank, l[1], &ax))
            return pmlc_v_err;
        perm[k] = ax;
    }
    return emit1(E, call, OP_PERMUTE, t, l[0], perm, n, 0, "permute");
}

static pmlc_value b_transpose(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t)) return pmlc_v_err;
    int rank = E->g->nodes.v[t].rank;
    if (rank < 2) {
        pmlc_error(DIAG, l[0], "'transpose' swaps the last two axes and needs a tensor of rank 2 or more");
        return pmlc_v_err;
    }
    int64_t perm[PMLC_MAX_RANK];
    for (int k = 0; k < rank; k++) perm[k] = k;
    perm[rank - 2] = rank - 1;
    perm[rank - 1] = rank - 2;
    return emit1(E, call, OP_PERMUTE, t, l[0], perm, rank, 0, "transpose");
}

static pmlc_value b_concat(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    if (want_list(E, v[0], l[0], "the tensors to join")) return pmlc_v_err;
    int n = v[0].n;
    if (n < 1 || n > 64) {
        pmlc_error(DIAG, l[0], "'concat' joins between 1 and 64 tensors, not %d", n);
        return pmlc_v_err;
    }
    int32_t in[64];
    pmlc_loc locs[64];
    /* Point at the element at fault when the list is written out in the call. */
    const ast *written = call->list.n && call->list.v[0]->kind == AST_LIST ? call->list.v[0] : NULL;
    for (int i = 0; i < n; i++) {
        locs[i] = written && written->list.n == n ? written->list.v[i]->loc : l[0];
        if (pmlc_want_tensor(E, v[0].items[i], l[0], "each element", -1, &in[i])) return pmlc_v_err;
    }
    int64_t axis = 0;
    int ax;
    if (given[1] && pmlc_want_int(E, v[1], l[1], "an axis", &axis)) return pmlc_v_err;
    if (pmlc_axis(E, axis, E->g->nodes.v[in[0]].rank, given[1] ? l[1] : call->loc, &ax)) return pmlc_v_err;
    axis = ax;
    return pmlc_v_tensor(pmlc_emit(E, OP_CONCAT, n, in, locs, &axis, 1, NULL, 0, call->loc, "concat"));
}

static pmlc_value b_pair(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t in[2];
    if (pmlc_want_tensor(E, v[0], l[0], "the first argument", -1, &in[0]) ||
        pmlc_want_tensor(E, v[1], l[1], "the second argument", -1, &in[1]))
        return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, b->op, 2, in, l, NULL, 0, NULL, 0, call->loc, b->name));
}

static pmlc_value b_mask(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    if (pmlc_want_tensor(E, v[0], l[0], "the argument", -1, &t)) return pmlc_v_err;
    return emit1(E, call, OP_CAUSAL_MASK, t, l[0], NULL, 0, -INFINITY, "causal_mask");
}

/* The scale, causal and dropout arguments of an attention call (at positions at, at + 1
 * and at + 2): the scale 1/sqrt(d) when not given, d being x's last axis divided by per
 * (1: q's; 3 · heads: a packed qkv's); attr[0] causal, and with dropout attr[2] the RNG
 * key and attr[3] p (pml/ops.def), *n_attr 4, else *n_attr as given. Returns nonzero
 * after reporting an error. */
static int attention_options(E_t *E, const char *name, pmlc_value *v, pmlc_loc *l, int *given, int at, int32_t x,
                             int64_t per, double *scale, int64_t *attr, int *n_attr)
{
    int c = 1;
    if (given[at + 1] && pmlc_want_bool(E, v[at + 1], l[at + 1], "'causal'", &c)) return 1;
    attr[0] = c;
    double p = 0;
    if (given[at + 2] && want_prob(E, v[at + 2], l[at + 2], &p)) return 1;
    if (p > 0) { /* the RNG stream: the node's own index, as dropout's (b_dropout) */
        attr[2] = E->g->nodes.n;
        attr[3] = pml_attention_dropout_attr(p);
        *n_attr = 4;
    }
    if (given[at]) {
        if (pmlc_want_number(E, v[at], l[at], "the scale", scale)) return 1;
        if (!isfinite(*scale)) {
            pmlc_error(DIAG, l[at], "'%s' needs a finite scale, not %g", name, *scale);
            return 1;
        }
        return 0;
    }
    const ir_node *q = &E->g->nodes.v[x];
    pmlc_size w = q->rank >= 1 ? q->shape[q->rank - 1] : pmlc_size_int(0);
    if (!pmlc_size_is_const(w) || w.coef < per || w.coef % per) {
        pmlc_error(DIAG, l[0],
                   "'%s' takes its default scale 1/sqrt(d) from %s's last axis, which is not a number here: "
                   "give scale = ...",
                   name, per == 1 ? "q" : "qkv");
        return 1;
    }
    *scale = 1.0 / sqrt((double)(w.coef / per));
    return 0;
}

/* attention(q, k, v, scale = 1/sqrt(d), causal = true, dropout = 0): q, k, v [..., T, d]. */
static pmlc_value b_attention(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    static const char *const what[3] = {"q", "k", "v"};
    int32_t in[3];
    for (int i = 0; i < 3; i++)
        if (pmlc_want_tensor(E, v[i], l[i], what[i], -1, &in[i])) return pmlc_v_err;
    double scale;
    int64_t attr[4] = {1, 0, 0, 0}; /* attr[1], heads, is attention_qkv's: 0 here */
    int n_attr = 1;
    if (attention_options(E, b->name, v, l, given, 3, in[0], 1, &scale, attr, &n_attr)) return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, OP_ATTENTION, 3, in, l, attr, n_attr, NULL, scale, call->loc, b->name));
}

/* attention_qkv(qkv, heads, scale = 1/sqrt(d), causal = true, dropout = 0): qkv [..., T, 3·heads·d],
 * the three thirds of its last axis q, k and v -> [..., T, heads·d]. */
static pmlc_value b_attention_qkv(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t x;
    int64_t attr[4] = {1, 0, 0, 0};
    int n_attr = 2;
    if (pmlc_want_tensor(E, v[0], l[0], "qkv", -1, &x) || pmlc_want_int(E, v[1], l[1], "the number of heads", &attr[1]))
        return pmlc_v_err;
    if (attr[1] < 1 || attr[1] > PMLC_MAX_ELEMS) {
        pmlc_error(DIAG, l[1], "'%s' needs a positive number of heads, not %lld", b->name, (long long)attr[1]);
        return pmlc_v_err;
    }
    const ir_node *q = &E->g->nodes.v[x];
    pmlc_size w = q->rank >= 1 ? q->shape[q->rank - 1] : pmlc_size_int(0);
    if (pmlc_size_is_const(w) && w.coef % (3 * attr[1])) {
        pmlc_error(DIAG, l[0],
                   "'%s' needs qkv shaped [..., T, 3·heads·d]: its last axis, %lld, does not split into 3 x %lld heads",
                   b->name, (long long)w.coef, (long long)attr[1]);
        return pmlc_v_err;
    }
    double scale;
    if (attention_options(E, b->name, v, l, given, 2, x, 3 * attr[1], &scale, attr, &n_attr)) return pmlc_v_err;
    return pmlc_v_tensor(pmlc_emit(E, OP_ATTENTION_QKV, 1, &x, l, attr, n_attr, NULL, scale, call->loc, b->name));
}

static pmlc_value b_arange(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    pmlc_shape sh = {1, {{0}}};
    if (pmlc_want_size(E, v[0], l[0], "the length", &sh.d[0])) return pmlc_v_err;
    if (sh.d[0].coef <= 0 || sh.d[0].coef > PMLC_MAX_ELEMS) {
        pmlc_error(DIAG, l[0], "'arange' needs a positive length below 2^48");
        return pmlc_v_err;
    }
    return pmlc_v_tensor(pmlc_emit_source(E, OP_ARANGE, PMLC_I32, &sh, 0, call->loc));
}

/* ---- compile-time helpers ------------------------------------------------------- */

static pmlc_value b_dim(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    int32_t t;
    int64_t axis;
    int ax;
    char d[200];
    if (v[0].k != PMLC_V_TENSOR) {
        if (v[0].k != PMLC_V_ERR)
            pmlc_error(DIAG, l[0], "'dim' needs a tensor, not %s", pmlc_value_desc(E->P, E->g, v[0], d, sizeof d));
        return pmlc_v_err;
    }
    t = v[0].t;
    if (pmlc_want_int(E, v[1], l[1], "an axis", &axis) || pmlc_axis(E, axis, E->g->nodes.v[t].rank, l[1], &ax))
        return pmlc_v_err;
    return pmlc_v_size(E->g->nodes.v[t].shape[ax]);
}

static pmlc_value b_rank(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    char d[200];
    if (v[0].k != PMLC_V_TENSOR) {
        if (v[0].k != PMLC_V_ERR)
            pmlc_error(DIAG, l[0], "'rank' needs a tensor, not %s", pmlc_value_desc(E->P, E->g, v[0], d, sizeof d));
        return pmlc_v_err;
    }
    return pmlc_v_int(E->g->nodes.v[v[0].t].rank);
}

static pmlc_value b_len(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    if (want_list(E, v[0], l[0], "the argument of 'len'")) return pmlc_v_err;
    return pmlc_v_int(v[0].n);
}

static pmlc_value b_float(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    double x;
    if (pmlc_want_number(E, v[0], l[0], "the argument of 'float'", &x)) return pmlc_v_err;
    return pmlc_v_float(x);
}

static pmlc_value b_int(E_t *E, const ast *call, const builtin *b, pmlc_value *v, pmlc_loc *l, int *given)
{
    double x;
    if (v[0].k == PMLC_V_INT) return v[0];
    if (pmlc_want_number(E, v[0], l[0], "the argument of 'int'", &x)) return pmlc_v_err;
    if (!(x > -9.2e18 && x < 9.2e18)) {
        pmlc_error(DIAG, l[0], "%g is out of the integer range", x);
        return pmlc_v_err;
    }
    return pmlc_v_int((int64_t)x);
}

#define BINARY(n, o)                           \
    {                                          \
        n, {"a", "b"}, 2, 2, b_binary, o, NULL \
    }

static const builtin builtins[] = {
/* every unary op of pml/ops.def, by its name */
#define PML_OP(...)
#define PML_UNARY(e, name, flops, saves, doc, fold, grad) {name, {"x"}, 1, 1, b_unary, OP_##e, fold_##e},
#include "pml/ops.def"
#undef PML_UNARY
#undef PML_OP
    BINARY("maximum", OP_MAXIMUM),
    BINARY("minimum", OP_MINIMUM),
    BINARY("pow", OP_POW),
    {"where", {"cond", "a", "b"}, 3, 3, b_where, OP_WHERE, NULL},
    {"cast", {"x", "dtype"}, 2, 2, b_cast, OP_CAST, NULL},
    {"dropout", {"x", "p"}, 2, 2, b_dropout, OP_DROPOUT, NULL},
    {"causal_mask", {"x"}, 1, 1, b_mask, OP_CAUSAL_MASK, NULL},
    {"sum", {"x", "axis", "keepdim"}, 3, 1, b_reduce, OP_SUM, NULL},
    {"max", {"x", "axis", "keepdim"}, 3, 1, b_reduce, OP_MAX, NULL},
    {"mean", {"x", "axis", "keepdim"}, 3, 1, b_reduce, OP_MEAN, NULL},
    {"reshape", {"x", "shape"}, 2, 2, b_reshape, OP_RESHAPE, NULL},
    {"permute", {"x", "axes"}, 2, 2, b_permute, OP_PERMUTE, NULL},
    {"transpose", {"x"}, 1, 1, b_transpose, OP_PERMUTE, NULL},
    {"concat", {"xs", "axis"}, 2, 1, b_concat, OP_CONCAT, NULL},
    {"gather", {"table", "idx"}, 2, 2, b_pair, OP_GATHER, NULL},
    {"pick", {"x", "idx"}, 2, 2, b_pair, OP_PICK, NULL},
    {"xent", {"logits", "labels"}, 2, 2, b_pair, OP_XENT, NULL},
    {"matmul", {"a", "b"}, 2, 2, b_pair, OP_MATMUL, NULL},
    {"attention", {"q", "k", "v", "scale", "causal", "dropout"}, 6, 3, b_attention, OP_ATTENTION, NULL},
    {"attention_qkv", {"qkv", "heads", "scale", "causal", "dropout"}, 5, 2, b_attention_qkv, OP_ATTENTION_QKV, NULL},
    {"arange", {"n"}, 1, 1, b_arange, OP_ARANGE, NULL},
    {"dim", {"x", "axis"}, 2, 2, b_dim, OP_COUNT, NULL},
    {"rank", {"x"}, 1, 1, b_rank, OP_COUNT, NULL},
    {"len", {"xs"}, 1, 1, b_len, OP_COUNT, NULL},
    {"float", {"x"}, 1, 1, b_float, OP_COUNT, NULL},
    {"int", {"x"}, 1, 1, b_int, OP_COUNT, NULL},
    {"min", {"a", "b"}, 2, 2, b_min, OP_COUNT, NULL},
};

enum { N_BUILTINS = sizeof builtins / sizeof *builtins };

int pmlc_builtin_find(const char *name)
{
    for (int i = 0; i < N_BUILTINS; i++)
        if (!strcmp(builtins[i].name, name)) return i;
    return -1;
}

int pmlc_builtin_names(const char **out, int cap)
{
    int n = 0;
    for (int i = 0; i < N_BUILTINS && n < cap; i++) out[n++] = builtins[i].name;
    return n;
}

pmlc_value pmlc_builtin_call(E_t *E, pmlc_frame *F, const ast *call, int which)
{
    const builtin *b = &builtins[which];
    pmlc_value v[6];
    pmlc_loc l[6];
    int given[6];
    if (pmlc_bind_args(E, F, call, b->name, b->params, b->n_params, v, l, given)) return pmlc_v_err;
    for (int i = 0; i < b->n_required; i++) {
        if (!given[i]) {
            pmlc_error(DIAG, call->loc, "missing argument '%s' in call to '%s'", b->params[i], b->name);
            return pmlc_v_err;
        }
    }
    return b->fn(E, call, b, v, l, given);
}

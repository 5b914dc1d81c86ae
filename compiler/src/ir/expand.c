/* expand.c — attention written out as primitives (see expand.h). */
#include "ir/expand.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda_attention.h"

typedef struct xp {
    pmlc_program *P;
    pmlc_graph *g;
    ir_node proto; /* the attention node: stage, unit, pass, loc of every node made for it */
    int failed;
} xp;

static int32_t op_to(xp *X, pmlc_opcode o, int n_in, const int32_t *in, const int64_t *attr, int n_attr, double fval,
                     const pmlc_shape *target)
{
    if (X->failed) return -1;
    pmlc_shape scratch[3];
    pmlc_infer inf;
    if (pmlc_graph_infer(X->g, o, n_in, in, attr, n_attr, target, &X->P->syms, pmlc_ops[o].name, scratch, &inf)) {
        pmlc_error(&X->P->diag, X->proto.loc, "internal error: attention written out as primitives is ill-formed (%s)",
                   inf.msg);
        X->failed = 1;
        return -1;
    }
    ir_node n = X->proto;
    n.op = o;
    n.dtype = inf.out_dt;
    n.n_in = n_in;
    n.n_attr = n_attr;
    n.fval = fval;
    n.param = -1;
    n.label = NULL;
    return pmlc_graph_push(&X->P->arena, X->g, &n, &inf.out, in, attr);
}

static int32_t op(xp *X, pmlc_opcode o, int n_in, const int32_t *in, const int64_t *attr, int n_attr, double fval)
{
    return op_to(X, o, n_in, in, attr, n_attr, fval, NULL);
}

static int32_t constant(xp *X, double v)
{
    ir_node n = X->proto;
    pmlc_shape scalar = {0, {{0}}};
    n.op = OP_CONST;
    n.n_in = n.n_attr = 0;
    n.fval = v;
    n.param = -1;
    n.label = NULL;
    return X->failed ? -1 : pmlc_graph_push(&X->P->arena, X->g, &n, &scalar, NULL, NULL);
}

/* softmax(q kᵀ · scale, masked) v, with dropout on the weights when the node has it, as
 * the stdlib wrote it; returns the last node. */
static int32_t write_out(xp *X, const int32_t *qkv)
{
    int rank = X->g->nodes.v[qkv[0]].rank;
    int64_t perm[PMLC_MAX_RANK], red[2] = {rank - 1, 1};
    for (int k = 0; k < rank; k++) perm[k] = k;
    perm[rank - 2] = rank - 1, perm[rank - 1] = rank - 2;
    int32_t kt = op(X, OP_PERMUTE, 1, &qkv[1], perm, rank, 0);
    int32_t in[2] = {qkv[0], kt};
    int32_t s = op(X, OP_MATMUL, 2, in, NULL, 0, 0);
    in[0] = s, in[1] = constant(X, X->proto.fval);
    s = op(X, OP_MUL, 2, in, NULL, 0, 0);
    if (X->proto.attr[0]) s = op(X, OP_CAUSAL_MASK, 1, &s, NULL, 0, -INFINITY);
    int32_t m = op(X, OP_MAX, 1, &s, red, 2, 0);
    in[0] = s, in[1] = m;
    int32_t e = op(X, OP_EXP, 1, (int32_t[]){op(X, OP_SUB, 2, in, NULL, 0, 0)}, NULL, 0, 0);
    in[0] = e, in[1] = op(X, OP_SUM, 1, &e, red, 2, 0);
    int32_t w = op(X, OP_DIV, 2, in, NULL, 0, 0);
    double p = pml_attention_dropout(X->proto.attr, X->proto.n_attr);
    if (p > 0) w = op(X, OP_DROPOUT, 1, &w, &X->proto.attr[2], 1, p); /* the op's own key: the same mask */
    in[0] = w, in[1] = qkv[2];
    return op(X, OP_MATMUL, 2, in, NULL, 0, 0);
}

/* attention_qkv(x) written out as the stdlib wrote it before the op existed, its leading
 * axes merged into one (L) so that any rank has room for the heads' axis: each third of
 * x's last axis sliced, reshaped to [L, T, heads, d] and permuted to [L, heads, T, d];
 * attention of the three written out (its weights [L, heads, T, T] are numbered as the
 * unmerged [..., heads, T, T]: dropout draws the same mask); permuted back and reshaped
 * to x's leading axes, T and heads·d. Returns the last node. */
static int32_t unpack(xp *X, int32_t x)
{
    const ir_node *n = &X->g->nodes.v[x];
    int rank = n->rank;
    int64_t heads = X->proto.attr[1], C = n->shape[rank - 1].coef / 3, perm[4] = {0, 2, 1, 3};
    pmlc_shape lead = {rank - 2, {{0}}};
    memcpy(lead.d, n->shape, sizeof(pmlc_size) * (size_t)(rank - 2));
    pmlc_size L = pmlc_size_int(1);
    if (pmlc_shape_numel(&lead, &L)) {
        pmlc_error(&X->P->diag, X->proto.loc, "attention_qkv's leading axes are too large to write out");
        X->failed = 1;
        return -1;
    }
    pmlc_shape split = {4, {L, n->shape[rank - 2], pmlc_size_int(heads), pmlc_size_int(C / heads)}};
    int32_t qkv[3];
    for (int p = 0; p < 3; p++) {
        int64_t at[4] = {rank - 1, p * C, (p + 1) * C, 1};
        int32_t part = op(X, OP_SLICE, 1, &x, at, 4, 0);
        part = op_to(X, OP_RESHAPE, 1, &part, NULL, 0, 0, &split);
        qkv[p] = op(X, OP_PERMUTE, 1, &part, perm, 4, 0); /* T and heads swap: its own inverse */
    }
    int32_t o = op(X, OP_PERMUTE, 1, (int32_t[]){write_out(X, qkv)}, perm, 4, 0);
    pmlc_shape merged = {rank, {{0}}};
    memcpy(merged.d, n->shape, sizeof(pmlc_size) * (size_t)rank);
    merged.d[rank - 1] = pmlc_size_int(C);
    return op_to(X, OP_RESHAPE, 1, &o, NULL, 0, 0, &merged);
}

/* Whether attention node n is written out: always under PML_CUDA_ATTENTION=expand, else
 * when the CUDA kernels do not take it (a head dimension they do not fit, or one not
 * known before the plan binds its sizes). */
static int written_out(const ir_node *n, int expand_all)
{
    pmlc_size d = n->shape[n->rank - 1];
    if (n->op == OP_ATTENTION_QKV) d.coef /= n->attr[1]; /* its output's columns are heads · d (known) */
    return expand_all || !pmlc_size_is_const(d) || !pmlc_cuda_attention_fits(d.coef);
}

static int is_attention(const ir_node *n) { return n->op == OP_ATTENTION || n->op == OP_ATTENTION_QKV; }

int pmlc_expand_attention(pmlc_program *P, pmlc_graph *g)
{
    int N = g->nodes.n, count = 0, expand_all = 0;
    for (int i = 0; i < N; i++) {
        if (!is_attention(&g->nodes.v[i])) continue;
        const char *mode = getenv("PML_CUDA_ATTENTION");
        if (mode && *mode && strcmp(mode, "kernel") && strcmp(mode, "expand")) {
            pmlc_error(&P->diag, g->nodes.v[i].loc,
                       "PML_CUDA_ATTENTION=%s: write 'kernel' (the fused attention kernels, the default) or 'expand' "
                       "(attention as matmuls and a softmax)",
                       mode);
            return -1;
        }
        expand_all |= mode && !strcmp(mode, "expand");
        break;
    }
    for (int i = 0; i < N; i++) count += is_attention(&g->nodes.v[i]) && written_out(&g->nodes.v[i], expand_all);
    if (!count) return 0;
    size_t nn = (size_t)N + 1;
    int32_t *to = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * nn);    /* the node that is old node i's value */
    int32_t *first = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * nn); /* the first node made for old node i */
    ir_node *old = g->nodes.v;
    int32_t *old_seg = g->segment;
    g->nodes.v = NULL;
    g->nodes.n = g->nodes.cap = 0;
    xp X = {P, g, {0}, 0};
    for (int i = 0; i < N && !X.failed; i++) {
        ir_node n = old[i];
        int32_t in[PMLC_GRAPH_MAX_IN];
        for (int k = 0; k < n.n_in; k++) in[k] = to[n.in[k]];
        pmlc_shape sh = {n.rank, {{0}}};
        memcpy(sh.d, n.shape, sizeof(pmlc_size) * (size_t)n.rank);
        first[i] = g->nodes.n;
        if (!is_attention(&n) || !written_out(&n, expand_all)) {
            to[i] = pmlc_graph_push(&P->arena, g, &n, &sh, in, n.attr);
            continue;
        }
        X.proto = n;
        to[i] = n.op == OP_ATTENTION_QKV ? unpack(&X, in[0]) : write_out(&X, in);
        if (to[i] >= 0) g->nodes.v[to[i]].label = n.label;
    }
    if (X.failed) return -1;
    first[N] = to[N] = g->nodes.n;
    if (old_seg) {
        g->segment = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)g->nodes.n);
        for (int i = 0; i < N; i++)
            for (int32_t j = first[i]; j <= to[i]; j++) g->segment[j] = old_seg[i];
    }
    pmlc_graph_remap(g, to, first);
    return count;
}

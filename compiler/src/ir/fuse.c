/* fuse.c — grouping ops into kernels (see fuse.h).
 *
 * One greedy pass in execution order: a fusible op joins the kernel of one of its
 * inputs when the kernel is on the same stage and pass, their iteration spaces fit
 * (element-wise: the same element count; row kernel: the same rows, or one value per
 * row) and the kernel is still open; otherwise it starts a kernel. A kernel closes
 * once another kernel reads one of its values: were it to grow after that, the reader
 * would need the kernel finished and the kernel would need what it joined after the
 * reader, a cycle. An op that reads values of several open kernels of its kind and
 * space joins them into one: none has a reader outside itself yet, so the union can
 * run where the op is (the backward pass recomputes a value just before the op that
 * reads it, and without this the copy of 0.5·x in GELU's backward started a kernel of
 * its own, and the op that combined the two had to read four tensors the other kernel
 * wrote). Closed this way, running kernels in the order of their last nodes
 * gives every kernel its inputs, so kernels are numbered in that order. Then a value
 * is materialised when any reader is in another kernel, or when it is the output,
 * the loss or a parameter's gradient. */
#include "ir/fuse.h"

typedef struct group_info {
    pmlc_kernel_kind kind;
    int stage, pass;
    pmlc_size space;       /* element-wise: elements per launch */
    pmlc_size rows, width; /* row kernel */
    int closed;            /* another kernel reads one of its values */
    int last;              /* its latest node */
} group_info;

static int is_view_or_source(const ir_node *n) { return pmlc_ops[n->op].cls == PMLC_OPC_SOURCE || n->op == OP_RESHAPE; }

/* A reduction over one axis (not all of them). */
static int axis_reduction(const ir_node *n)
{
    return (n->op == OP_SUM || n->op == OP_MAX || n->op == OP_MEAN) && n->n_attr >= 1 && n->attr[0] >= 0;
}

static pmlc_kernel_kind kind_of(const pmlc_graph *g, const ir_node *n)
{
    if (is_view_or_source(n)) return PMLC_KERNEL_NONE;
    if (pmlc_ops[n->op].cls == PMLC_OPC_ELEMWISE) return PMLC_KERNEL_ELEMWISE;
    if (axis_reduction(n) && n->attr[0] == g->nodes.v[n->in[0]].rank - 1) return PMLC_KERNEL_ROW;
    return PMLC_KERNEL_SINGLE;
}

/* Whether node n (of kind k) can run inside group `gi`. */
static int fits(const pmlc_graph *g, const group_info *gi, const ir_node *n, pmlc_kernel_kind k)
{
    if (gi->kind == PMLC_KERNEL_SINGLE || gi->kind == PMLC_KERNEL_NONE || gi->stage != n->stage || gi->pass != n->pass)
        return 0;
    if (k == PMLC_KERNEL_ELEMWISE) {
        pmlc_size e = pmlc_node_numel(n), full;
        if (gi->kind == PMLC_KERNEL_ELEMWISE) return pmlc_size_eq(e, gi->space);
        return !pmlc_size_mul(gi->rows, gi->width, &full) && (pmlc_size_eq(e, full) || pmlc_size_eq(e, gi->rows));
    }
    const ir_node *x = &g->nodes.v[n->in[0]];
    pmlc_size xe = pmlc_node_numel(x), width = x->shape[x->rank - 1], rows;
    if (pmlc_size_div(xe, width, &rows)) return 0;
    if (gi->kind == PMLC_KERNEL_ELEMWISE) return pmlc_size_eq(xe, gi->space);
    return pmlc_size_eq(rows, gi->rows) && pmlc_size_eq(width, gi->width);
}

static void become(const pmlc_graph *g, group_info *gi, const ir_node *n, pmlc_kernel_kind k)
{
    if (k == PMLC_KERNEL_ROW) {
        const ir_node *x = &g->nodes.v[n->in[0]];
        gi->kind = PMLC_KERNEL_ROW;
        gi->width = x->shape[x->rank - 1];
        pmlc_size_div(pmlc_node_numel(x), gi->width, &gi->rows);
    } else if (gi->kind == PMLC_KERNEL_NONE) {
        gi->kind = k;
        gi->space = pmlc_node_numel(n);
    }
}

/* Numbers the groups in the order of their last nodes (the order they run in). */
static void renumber(pmlc_arena *A, const group_info *gi, int n_groups, int N, pmlc_fusion *out)
{
    int32_t *order = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)(n_groups ? n_groups : 1));
    out->kind = pmlc_arena_alloc(A, sizeof(pmlc_kernel_kind) * (size_t)(n_groups ? n_groups : 1));
    int next = 0;
    for (int i = 0; i < N; i++)
        if (gi[out->group[i]].last == i) {
            order[out->group[i]] = next;
            out->kind[next++] = gi[out->group[i]].kind;
        }
    for (int i = 0; i < N; i++) out->group[i] = order[out->group[i]];
    out->n_groups = next; /* kernels joined into others hold no node */
}

void pmlc_fuse(pmlc_arena *A, const pmlc_graph *g, pmlc_fusion *out)
{
    int N = g->nodes.n;
    out->group = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)(N ? N : 1));
    out->materialized = pmlc_arena_alloc(A, (size_t)(N ? N : 1));
    PMLC_VEC(group_info) groups = {0};
    for (int i = 0; i < N; i++) {
        const ir_node *n = &g->nodes.v[i];
        pmlc_kernel_kind k = kind_of(g, n);
        int joined = -1;
        for (int j = 0; k != PMLC_KERNEL_SINGLE && k != PMLC_KERNEL_NONE && j < n->n_in && joined < 0; j++) {
            group_info *gp = &groups.v[out->group[n->in[j]]];
            if (!gp->closed && fits(g, gp, n, k)) joined = out->group[n->in[j]];
        }
        for (int j = 0; joined >= 0 && j < n->n_in; j++) { /* other open kernels it reads join it */
            int other = out->group[n->in[j]];
            group_info *go = &groups.v[other], *gj = &groups.v[joined];
            if (other == joined || go->closed || go->kind != gj->kind || !fits(g, go, n, k) ||
                (gj->kind == PMLC_KERNEL_ELEMWISE && !pmlc_size_eq(go->space, gj->space)) ||
                (gj->kind == PMLC_KERNEL_ROW && !(pmlc_size_eq(go->rows, gj->rows) && pmlc_size_eq(go->width, gj->width))))
                continue;
            for (int m = 0; m < i; m++)
                if (out->group[m] == other) out->group[m] = joined;
        }
        if (joined < 0) {
            group_info gi = {PMLC_KERNEL_NONE, n->stage, n->pass, {0, {0}}, {0, {0}}, {0, {0}}, 0, i};
            if (k == PMLC_KERNEL_SINGLE) gi.kind = PMLC_KERNEL_SINGLE;
            PMLC_PUSH(A, groups, gi);
            joined = groups.n - 1;
        }
        if (k == PMLC_KERNEL_ELEMWISE || k == PMLC_KERNEL_ROW) become(g, &groups.v[joined], n, k);
        groups.v[joined].last = i;
        out->group[i] = joined;
        for (int j = 0; j < n->n_in; j++)
            if (out->group[n->in[j]] != joined) groups.v[out->group[n->in[j]]].closed = 1;
    }
    renumber(A, groups.v, groups.n, N, out);
    /* What must be written to memory. */
    for (int i = 0; i < N; i++) {
        const ir_node *n = &g->nodes.v[i];
        for (int j = 0; j < n->n_in; j++)
            if (out->group[n->in[j]] != out->group[i]) out->materialized[n->in[j]] = 1;
    }
    if (g->output >= 0) out->materialized[g->output] = 1;
    if (g->loss >= 0) out->materialized[g->loss] = 1;
    for (int p = 0; g->param_grad && p < g->params.n; p++)
        if (g->param_grad[p] >= 0) out->materialized[g->param_grad[p]] = 1;
}

/* ir.c — building the graph IR: the two steps every pass that adds an op takes
 * (elaboration and autodiff alike), written once. */
#include "ir/ir.h"

#include <string.h>

int pmlc_graph_infer(const pmlc_graph *g, pmlc_opcode op, int n_in, const int32_t *in, const int64_t *attr, int n_attr,
                     const pmlc_shape *target, const pmlc_symtab *syms, const char *opname, pmlc_shape *scratch,
                     pmlc_infer *a)
{
    const pmlc_shape *ptrs[PMLC_GRAPH_MAX_IN];
    pmlc_dtype dts[PMLC_GRAPH_MAX_IN];
    for (int i = 0; i < n_in; i++) {
        const ir_node *x = &g->nodes.v[in[i]];
        scratch[i].rank = x->rank;
        memcpy(scratch[i].d, x->shape, sizeof(pmlc_size) * (size_t)x->rank);
        ptrs[i] = &scratch[i];
        dts[i] = x->dtype;
    }
    memset(a, 0, sizeof *a);
    a->n_in = n_in;
    a->in = ptrs;
    a->dt = dts;
    a->attr = attr;
    a->n_attr = n_attr;
    a->target = target;
    a->syms = syms;
    a->opname = opname;
    int bad = pmlc_ops[op].infer(a);
    a->in = NULL; /* the pointers were local */
    a->dt = NULL;
    return bad;
}

pmlc_size pmlc_node_numel(const ir_node *n)
{
    pmlc_shape sh = {n->rank, {{0}}};
    memcpy(sh.d, n->shape, sizeof(pmlc_size) * (size_t)n->rank);
    pmlc_size s = pmlc_size_int(1);
    pmlc_shape_numel(&sh, &s);
    return s;
}

int32_t pmlc_graph_push(pmlc_arena *A, pmlc_graph *g, const ir_node *proto, const pmlc_shape *shape, const int32_t *in,
                        const int64_t *attr)
{
    ir_node n = *proto;
    n.rank = shape->rank;
    n.shape = pmlc_arena_alloc(A, sizeof(pmlc_size) * (size_t)(n.rank ? n.rank : 1));
    memcpy(n.shape, shape->d, sizeof(pmlc_size) * (size_t)n.rank);
    n.in = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)(n.n_in ? n.n_in : 1));
    if (n.n_in) memcpy(n.in, in, sizeof(int32_t) * (size_t)n.n_in);
    n.attr = NULL;
    if (n.n_attr) {
        n.attr = pmlc_arena_alloc(A, sizeof(int64_t) * (size_t)n.n_attr);
        memcpy(n.attr, attr, sizeof(int64_t) * (size_t)n.n_attr);
    }
    PMLC_PUSH(A, g->nodes, n);
    return g->nodes.n - 1;
}

void pmlc_graph_remap(pmlc_graph *g, const int32_t *to, const int32_t *first)
{
    for (int q = 0; q < g->params.n; q++) g->params.v[q].node = to[g->params.v[q].node];
    for (int k = 0; k < g->inputs.n; k++) g->inputs.v[k].node = to[g->inputs.v[k].node];
    if (g->output >= 0) g->output = to[g->output];
    if (g->labels >= 0) g->labels = to[g->labels];
    if (g->loss >= 0) g->loss = to[g->loss];
    if (g->teacher_end > g->teacher_begin) g->teacher_begin = first[g->teacher_begin], g->teacher_end = first[g->teacher_end];
    for (int c = 0; c < g->scopes.n; c++)
        g->scopes.v[c].begin = first[g->scopes.v[c].begin], g->scopes.v[c].end = first[g->scopes.v[c].end];
    if (g->n_forward) g->n_forward = first[g->n_forward];
    for (int q = 0; g->param_grad && q < g->params.n; q++)
        if (g->param_grad[q] >= 0) g->param_grad[q] = to[g->param_grad[q]];
}

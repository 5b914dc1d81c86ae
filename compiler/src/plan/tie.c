/* tie.c — a copy of a parameter on each stage that reads it (see tie.h). */
#include "plan/tie.h"

#include <string.h>

int pmlc_tie_params(pmlc_program *P, pmlc_graph *g)
{
    int N = g->nodes.n, NP = g->params.n, S = g->n_stages > 0 ? g->n_stages : 1;
    /* unit[p·S + s]: the statement of the first read of parameter p on stage s, when
     * that stage is not p's own; -1: no such read. The copy is costed and re-cut with it. */
    size_t cells = (size_t)(NP ? NP : 1) * (size_t)S;
    int32_t *unit = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * cells);
    for (size_t k = 0; k < cells; k++) unit[k] = -1;
    int copies = 0;
    for (int i = 0; i < N; i++) {
        const ir_node *n = &g->nodes.v[i];
        for (int k = 0; k < n->n_in; k++) {
            const ir_node *src = &g->nodes.v[n->in[k]];
            if (src->op != OP_PARAM || src->stage == n->stage) continue;
            int32_t *u = &unit[(size_t)src->param * (size_t)S + (size_t)n->stage];
            if (*u < 0) *u = n->unit, copies++;
        }
    }
    if (!copies) return 0;

    size_t nn = (size_t)N + 1;
    int32_t *to = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * nn);
    int32_t *first = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * nn);
    int32_t *copy = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * cells); /* the copy's new node */
    ir_param *made = pmlc_arena_alloc(&P->arena, sizeof(ir_param) * (size_t)copies);
    int n_made = 0;
    ir_node *old = g->nodes.v;
    int32_t *old_seg = g->segment;
    g->nodes.v = NULL;
    g->nodes.n = g->nodes.cap = 0;
    for (int i = 0; i < N; i++) {
        ir_node n = old[i];
        int32_t in[PMLC_GRAPH_MAX_IN];
        for (int k = 0; k < n.n_in; k++) {
            const ir_node *src = &old[n.in[k]];
            in[k] = src->op == OP_PARAM && src->stage != n.stage
                        ? copy[(size_t)src->param * (size_t)S + (size_t)n.stage]
                        : to[n.in[k]];
        }
        pmlc_shape sh = {n.rank, {{0}}};
        memcpy(sh.d, n.shape, sizeof(pmlc_size) * (size_t)n.rank);
        first[i] = g->nodes.n;
        to[i] = pmlc_graph_push(&P->arena, g, &n, &sh, in, n.attr);
        if (n.op != OP_PARAM) continue;
        for (int s = 0; s < S; s++) {
            size_t at = (size_t)n.param * (size_t)S + (size_t)s;
            if (unit[at] < 0) continue;
            ir_node c = n;
            c.stage = s;
            c.unit = unit[at];
            c.param = NP + n_made;
            copy[at] = pmlc_graph_push(&P->arena, g, &c, &sh, in, n.attr);
            made[n_made] = g->params.v[n.param];
            made[n_made].tie = n.param;
            made[n_made].node = copy[at];
            n_made++;
        }
    }
    first[N] = to[N] = g->nodes.n;
    if (old_seg) { /* a parameter is a source, recomputed by no segment: its copies neither */
        g->segment = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)g->nodes.n);
        for (int j = 0; j < g->nodes.n; j++) g->segment[j] = -1;
        for (int i = 0; i < N; i++) g->segment[to[i]] = old_seg[i];
    }
    pmlc_graph_remap(g, to, first); /* before the copies join: their nodes are new already */
    for (int k = 0; k < n_made; k++) PMLC_PUSH(&P->arena, g->params, made[k]);
    return n_made;
}

/* lower.c — pml_cpu_lower (see lower.h). Passes over the nodes, which come after
 * their inputs: fold transposes into matmul operands and make reshapes aliases; fold a
 * transpose of a product into the product; fold bias adds into their products; and,
 * after each folding, from the last node back, count each node's readers and drop the
 * permutes nobody reads any more. */
#include "lower.h"

#include <stdlib.h>

/* A permute that swaps the last two axes and keeps the others in place. */
static int swaps_last_two(const pml_plan_node *n)
{
    int r = n->rank;
    if (n->op != PML_OP_PERMUTE || r < 2 || n->n_attr != r || n->n_in != 1) return 0;
    for (int k = 0; k < r - 2; k++)
        if (n->attr[k] != k) return 0;
    return n->attr[r - 2] == r - 1 && n->attr[r - 1] == r - 2;
}

/* Counts readers from the last node back, so a reshape's readers are known before its
 * input is counted, and stops running permutes that have none. */
static void count_readers(const pml_plan *pl, const uint8_t *keep, pml_cpu_node *l)
{
    for (int i = 0; i < pl->n_nodes; i++) l[i].readers = 0;
    for (int i = pl->n_nodes - 1; i >= 0; i--) {
        int kept = keep && keep[i];
        if (l[i].run && l[i].op == PML_OP_PERMUTE && l[i].readers == 0 && !kept) l[i].run = 0;
        int alias = pl->nodes[i].op == PML_OP_RESHAPE || l[i].folded;
        int live = l[i].run || (alias && (l[i].readers > 0 || kept));
        if (!live) continue;
        int n_in;
        const int32_t *in = pml_cpu_node_inputs(pl, l, i, &n_in);
        for (int k = 0; k < n_in; k++) l[in[k]].readers++;
    }
}

/* Whether add node i is add(product, bias) that the product's GEMM can finish (lower.h):
 * returns the product's node and sets *bias, else -1. Needs the readers counted. */
static int bias_add(const pml_plan *pl, const uint8_t *keep, const pml_cpu_node *l, int i, int32_t *bias)
{
    const pml_plan_node *n = &pl->nodes[i];
    if (n->op != PML_OP_ADD || n->n_in != 2 || !l[i].run || n->dtype != PML_F32 || (keep && keep[i])) return -1;
    for (int k = 0; k < 2; k++) {
        int j = n->in[k], b = n->in[1 - k], root = l[b].alias;
        const pml_plan_node *m = &pl->nodes[j], *bn = &pl->nodes[b];
        if (l[j].op != PML_OP_MATMUL || !l[j].run || l[j].alias != j || l[j].bias >= 0 || l[j].readers != 1 ||
            (keep && keep[j]) || m->dtype != PML_F32 || bn->dtype != PML_F32 || m->rank != n->rank || m->rank < 2 ||
            pl->nodes[m->in[0]].dtype != PML_F32 || pl->nodes[m->in[1]].dtype != PML_F32) /* not a 16-bit product */
            continue;
        int same = 1; /* the product already has the sum's shape: the bias broadcasts into it */
        for (int d = 0; d < m->rank; d++) same &= m->dims[d] == n->dims[d];
        int per_column = bn->rank >= 1 && bn->dims[bn->rank - 1] == m->dims[m->rank - 1];
        for (int d = 0; d + 1 < bn->rank; d++) per_column &= bn->dims[d] == 1;
        /* a parameter is there before the product runs, on the product's own stage */
        if (!same || !per_column || pl->nodes[root].op != PML_OP_PARAM || pl->nodes[root].stage != m->stage) continue;
        *bias = b;
        return j;
    }
    return -1;
}

pml_status pml_cpu_lower(const pml_plan *pl, const uint8_t *keep, int fold_bias, pml_cpu_node **out, pml_err *err)
{
    *out = NULL;
    int N = pl->n_nodes;
    pml_cpu_node *l = calloc((size_t)N + 1, sizeof *l);
    if (!l) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        l[i] = (pml_cpu_node){.run = 1, .op = n->op, .alias = i, .bias = -1};
        if (n->op == PML_OP_RESHAPE && n->n_in == 1 && pl->nodes[n->in[0]].dtype == n->dtype) {
            l[i].run = 0;
            l[i].alias = l[n->in[0]].alias;
        }
        if (n->op != PML_OP_MATMUL || n->n_in != 2) continue;
        for (int k = 0; k < 2; k++) {
            int src = n->in[k], t = 0;
            while (swaps_last_two(&pl->nodes[src]) && pl->nodes[pl->nodes[src].in[0]].dtype == pl->nodes[src].dtype) {
                t ^= 1;
                src = pl->nodes[src].in[0];
            }
            l[i].in[k] = src;
            l[i].trans[k] = (uint8_t)t;
        }
    }
    count_readers(pl, keep, l);
    for (int i = 0; i < N; i++) {
        if (!l[i].run || !swaps_last_two(&pl->nodes[i])) continue;
        int j = pl->nodes[i].in[0];
        if (l[j].op != PML_OP_MATMUL || !l[j].run || l[j].readers != 1 || (keep && keep[j])) continue;
        /* (op(A) op(B))^T = op(B)^T op(A)^T */
        l[i].op = PML_OP_MATMUL;
        l[i].in[0] = l[j].in[1], l[i].in[1] = l[j].in[0];
        l[i].trans[0] = !l[j].trans[1], l[i].trans[1] = !l[j].trans[0];
        l[j].run = 0;
    }
    count_readers(pl, keep, l);
    for (int i = 0; fold_bias && i < N; i++) {
        int32_t b;
        int j = bias_add(pl, keep, l, i, &b);
        if (j < 0) continue;
        l[j].bias = l[j].in[2] = b;
        l[i].run = 0, l[i].folded = 1, l[i].alias = j;
    }
    /* A reshape of a folded sum aliased the sum before the sum became an alias itself:
     * every alias names the buffer's owner (inputs come first, so one pass in order). */
    for (int i = 0; i < N; i++) l[i].alias = l[l[i].alias].alias;
    count_readers(pl, keep, l);
    *out = l;
    return PML_OK;
}

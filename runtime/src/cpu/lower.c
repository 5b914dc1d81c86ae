/* lower.c — pml_cpu_lower (see lower.h). Three passes over the nodes, which come after
 * their inputs: fold transposes into matmul operands and make reshapes aliases; fold a
 * transpose of a product into the product; then, from the last node back, count each
 * node's readers and drop the permutes nobody reads any more. */
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
        int live = l[i].run || (pl->nodes[i].op == PML_OP_RESHAPE && (l[i].readers > 0 || kept));
        if (!live) continue;
        int n_in;
        const int32_t *in = pml_cpu_node_inputs(pl, l, i, &n_in);
        for (int k = 0; k < n_in; k++) l[in[k]].readers++;
    }
}

pml_status pml_cpu_lower(const pml_plan *pl, const uint8_t *keep, pml_cpu_node **out, pml_err *err)
{
    *out = NULL;
    int N = pl->n_nodes;
    pml_cpu_node *l = calloc((size_t)N + 1, sizeof *l);
    if (!l) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        l[i] = (pml_cpu_node){.run = 1, .op = n->op, .alias = i};
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
    *out = l;
    return PML_OK;
}

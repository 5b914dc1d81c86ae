/* halves.c — the parts of a micro-batch's work (see halves.h). */
#include "plan/halves.h"

int pml_plan_splits_backward(const pml_plan *pl)
{
    for (int s = 0; s < pl->n_stages; s++) /* the timetable's lists: stage devices, each of conf.chunks stages */
        for (int i = 0; i < pl->n_instr[s]; i++)
            if (pl->instr[s][i].kind == PML_PLAN_I_BWD_WEIGHT) return 1;
    return 0;
}

void pml_plan_halves(const pml_plan *pl, int split, uint8_t *half)
{
    int N = pl->n_nodes;
    for (int i = 0; i < N; i++) half[i] = pl->nodes[i].pass == 0 ? 0 : split && pl->nodes[i].pass == 2 ? 2 : 1;
    for (int changed = split; changed;) {
        changed = 0;
        for (int i = N - 1; i >= 0; i--) { /* users before their inputs */
            const pml_plan_node *n = &pl->nodes[i];
            int k = pl->node_kernel ? pl->node_kernel[i] : -1;
            for (int j = 0; half[i] == 2 && k >= 0 && j < pl->kernels[k].n_nodes; j++)
                if (half[pl->kernels[k].nodes[j]] == 1) half[i] = 1, changed = 1;
            for (int j = 0; j < n->n_in; j++) {
                int x = n->in[j];
                if (half[x] == 2 && (half[i] == 1 || pl->nodes[x].stage != n->stage)) half[x] = 1, changed = 1;
            }
        }
    }
}

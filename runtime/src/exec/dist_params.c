/* dist_params.c — parameters between ranks (see dist_params.h): one move per
 * parameter buffer, in plan order, which every rank walks identically. */
#include "exec/dist_params.h"


static pml_status move_params(pml_dist *d, const pml_plan *plan, pml_pipeline *p, int root, int gather, pml_err *err)
{
    /* Replicas hold the same parameters: gather from the first, scatter to all. */
    for (int k = 0; k < (gather ? 1 : d->replicas); k++)
        for (int q = 0; q < plan->n_params; q++) {
            if (plan->params[q].teacher) continue;
            int owner = pml_dist_owner(d, k, plan->nodes[plan->params[q].node].stage);
            if (owner == root) continue;
            size_t bytes = (size_t)plan->nodes[plan->params[q].node].numel * sizeof(float);
            for (int which = -1; which <= 1; which++) {
                float *x = which < 0 ? pml_pipeline_param(p, q) : pml_pipeline_optim_state(p, q, which);
                if (!x && which < 0)
                    return pml_err_set(err, PML_ERR_INTERNAL, "no host copy of parameter '%s'", plan->params[q].name);
                if (!x) continue; /* the same on every rank: one plan, one optimizer */
                pml_status st =
                    gather ? d->move(d, owner, root, x, bytes, err) : d->move(d, root, owner, x, bytes, err);
                if (st) return st;
            }
        }
    return PML_OK;
}

pml_status pml_dist_params_gather(pml_dist *d, const pml_plan *plan, pml_pipeline *p, int root, pml_err *err)
{
    return move_params(d, plan, p, root, 1, err);
}

pml_status pml_dist_params_scatter(pml_dist *d, const pml_plan *plan, pml_pipeline *p, int root, pml_err *err)
{
    return move_params(d, plan, p, root, 0, err);
}

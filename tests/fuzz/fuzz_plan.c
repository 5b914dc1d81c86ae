/* fuzz_plan.c — libFuzzer target for the plan file reader (runtime/src/plan/plan_read.c,
 * format: include/pml/plan_format.h), from memory: pml_plan_read, which
 * pml_plan_load calls on a file's bytes.
 *
 * A refusal must be PML_ERR_FORMAT naming the input. An accepted plan is then walked as
 * a loader walks it, and every promise plan.h makes about a loaded plan is checked
 * (abort() when one is broken, so libFuzzer reports the input): every index in range,
 * inputs before their users, the kernels a partition of the nodes in running order,
 * every string readable. Then the plan's fingerprint (what a checkpoint is checked against) is
 * taken. Seeds: the examples built with `pmlc build --arch none` (make_seeds.py). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/checkpoint.h"
#include "plan/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(const char *s)
{
    if (s) sink += strlen(s);
}

static int node_ok(const pml_plan *pl, int32_t n, int may_be_none)
{
    return (n == -1 && may_be_none) || (n >= 0 && n < pl->n_nodes);
}

static void check_nodes(const pml_plan *pl)
{
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        if (n->rank > PML_PLAN_MAX_RANK || n->stage < 0 || n->stage >= pl->conf.stages || n->pass > 2) abort();
        int64_t numel = 1;
        for (int d = 0; d < n->rank; d++) {
            if (n->dims[d] < 0) abort();
            numel *= n->dims[d];
        }
        if (numel != n->numel || numel > (INT64_C(1) << 48)) abort();
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] < 0 || n->in[k] >= i) abort();
        for (int k = 0; k < n->n_attr; k++) sink += (size_t)n->attr[k];
        touch(n->label);
    }
}

static void check_params_and_inputs(const pml_plan *pl)
{
    for (int q = 0; q < pl->n_params; q++) {
        const pml_plan_param *p = &pl->params[q];
        if (!p->name || !node_ok(pl, p->node, 0) || !node_ok(pl, p->grad, 1)) abort();
        touch(p->name);
        touch(p->layer);
    }
    for (int i = 0; i < pl->n_inputs; i++) {
        if (!pl->input_names[i] || !node_ok(pl, pl->input_nodes[i], 0)) abort();
        touch(pl->input_names[i]);
    }
    if (!node_ok(pl, pl->output, 1) || !node_ok(pl, pl->labels, 1) || !node_ok(pl, pl->loss, 1)) abort();
    for (int s = 0; s < pl->n_strings; s++) touch(pl->strings[s]);
    for (int s = 0; s < pl->n_stages; s++)
        for (int k = 0; k < pl->n_instr[s]; k++)
            if (pl->instr[s][k].kind > PML_PLAN_I_BWD_WEIGHT) abort(); /* the last kind (plan.h) */
}

static void check_kernels(const pml_plan *pl)
{
    int32_t prev_last = -1;
    for (int k = 0; k < pl->n_kernels; k++) {
        const pml_plan_kernel *kn = &pl->kernels[k];
        if (kn->n_nodes < 1) abort();
        for (int j = 0; j < kn->n_nodes; j++) {
            int32_t i = kn->nodes[j];
            if (!node_ok(pl, i, 0) || (j && i <= kn->nodes[j - 1]) || pl->node_kernel[i] != k) abort();
            for (int q = 0; q < pl->nodes[i].n_in; q++)
                if (pl->node_kernel[pl->nodes[i].in[q]] > k) abort();
        }
        if (kn->nodes[kn->n_nodes - 1] <= prev_last) abort();
        prev_last = kn->nodes[kn->n_nodes - 1];
    }
    for (int i = 0; i < pl->n_nodes; i++)
        if (pl->node_kernel[i] < 0 || pl->node_kernel[i] >= pl->n_kernels) abort();
}

static void check_gpu(const pml_plan *pl)
{
    for (int i = 0; i < pl->n_gpu_images; i++) {
        touch(pl->gpu_images[i].target);
        for (int64_t k = 0; k < pl->gpu_images[i].size; k++) sink += pl->gpu_images[i].data[k];
    }
    for (int f = 0; f < pl->n_gpu_funcs; f++) touch(pl->gpu_funcs[f]);
    for (int l = 0; l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *g = &pl->gpu_launches[l];
        if (g->kernel < 0 || g->kernel >= pl->n_kernels || g->func < -1 || g->func >= pl->n_gpu_funcs) abort();
        if (g->func < 0 && !node_ok(pl, g->matmul, 0)) abort();
        for (int a = 0; a < g->n_args; a++)
            if (!node_ok(pl, g->args[a].node, 0)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pml_plan *pl = NULL;
    pml_err err;
    if (pml_plan_read(data, size, "fuzz.plan", &pl, &err) != PML_OK) {
        if (err.code != PML_ERR_FORMAT || strncmp(err.msg, "fuzz.plan: ", 11) != 0) abort();
        return 0;
    }
    check_nodes(pl);
    check_params_and_inputs(pl);
    check_kernels(pl);
    check_gpu(pl);
    char fp[17];
    pml_ckpt_fingerprint(pl, fp);
    pml_plan_free(pl);
    return 0;
}

/* plan_info.c — prints what a plan file holds, as libpml loads it, for build_test.py
 * and the CUDA build test: "stages S params P" (S: the training configuration's stage
 * count; P: the number of parameter elements), then "gpu TARGETS functions F launches L"
 * (TARGETS comma-separated, or "none"). Exit status 1 when the file does not load.
 * Usage: plan_info FILE */
#include <stdio.h>

#include "plan/plan.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: plan_info FILE.plan\n");
        return 2;
    }
    pml_plan *pl = NULL;
    pml_err err = {0};
    if (pml_plan_load(argv[1], &pl, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    long long params = 0;
    for (int q = 0; q < pl->n_params; q++) params += pl->nodes[pl->params[q].node].numel;
    printf("stages %lld params %lld\ngpu ", (long long)pl->conf.stages, params);
    for (int k = 0; k < pl->n_gpu_images; k++) printf("%s%s", k ? "," : "", pl->gpu_images[k].target);
    printf("%s functions %d launches %d\n", pl->n_gpu_images ? "" : "none", pl->n_gpu_funcs, pl->n_gpu_launches);
    pml_plan_free(pl);
    return 0;
}

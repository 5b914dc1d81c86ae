/* write.h — a plan as the bytes of a plan file (pml/plan_format.h). */
#ifndef PMLC_PLAN_WRITE_H
#define PMLC_PLAN_WRITE_H

#include "gpu/cuda_build.h"
#include "plan/placement.h"

/* The GPU code a plan file carries (CUBN): the rendered module and its compiled
 * images, every image holding every function of the module. */
typedef struct pmlc_plan_gpu {
    const pmlc_cuda_module *module;
    const pmlc_cuda_image *images;
    int n_images;
} pmlc_plan_gpu;

/* Serialises `pl` (graph, parameters, inputs, timetable, training configuration,
 * kernels, memory and, when `gpu` is not NULL, its GPU code) into a malloc'ed buffer
 * the caller frees. Returns nonzero after reporting an error. */
int pmlc_plan_serialize(pmlc_program *P, const pmlc_plan *pl, const pmlc_plan_gpu *gpu, unsigned char **out,
                        size_t *len);

#endif

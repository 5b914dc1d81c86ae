/* module.h — compiled kernels on a device: a CUBIN or PTX image (from the plan or
 * from NVRTC at load time) loaded through the dlopened driver, its functions looked up
 * by name once, and launches that check their result.
 *
 * Ownership: pml_cuda_module_load fills `m`, pml_cuda_module_free releases it (safe on
 * a zeroed or half-loaded module). The calling thread must have the device's context
 * current. */
#ifndef PML_CUDA_MODULE_H
#define PML_CUDA_MODULE_H

#include "cuda/driver.h"

typedef struct pml_cuda_module {
    const pml_cuda_driver *d;
    pml_cu_module mod;
    int n;
    pml_cu_function *fn; /* per name given to load */
} pml_cuda_module;

/* Loads `image` and finds each of `names` in it (an unknown name is an error naming it). */
pml_status pml_cuda_module_load(pml_cuda_module *m, const void *image, const char *const *names, int n, pml_err *err);
void pml_cuda_module_free(pml_cuda_module *m);

/* Launches function `f` with `params` (pointers to each argument, as cuLaunchKernel). */
pml_status pml_cuda_launch(const pml_cuda_module *m, int f, unsigned grid, unsigned block, void **params,
                           pml_cu_stream stream, pml_err *err);

#endif

/* module.c — see module.h. */
#include "cuda/module.h"

#include <stdlib.h>

pml_status pml_cuda_module_load(pml_cuda_module *m, const void *image, const char *const *names, int n, pml_err *err)
{
    m->mod = NULL, m->fn = NULL, m->n = 0;
    if (!(m->d = pml_cuda_driver_get(err))) return err ? err->code : PML_ERR_DEVICE;
    if (!image || n < 0) return pml_err_set(err, PML_ERR_INVALID_ARG, "cuda module: no image");
    PML_CHECK_CU(m->d, ModuleLoadData(&m->mod, image), err);
    m->fn = calloc((size_t)(n ? n : 1), sizeof *m->fn);
    if (!m->fn) {
        pml_cuda_module_free(m);
        return pml_err_set(err, PML_ERR_NOMEM, "cuda module: out of memory");
    }
    m->n = n;
    for (int i = 0; i < n; i++) {
        pml_cu_result r = m->d->ModuleGetFunction(&m->fn[i], m->mod, names[i]);
        if (r) {
            pml_status s = pml_cuda_fail(m->d, r, names[i], __FILE__, __LINE__, err);
            pml_cuda_module_free(m);
            return s;
        }
    }
    return PML_OK;
}

void pml_cuda_module_free(pml_cuda_module *m)
{
    if (!m) return;
    if (m->mod && m->d) m->d->ModuleUnload(m->mod);
    free(m->fn);
    m->mod = NULL, m->fn = NULL, m->n = 0;
}

pml_status pml_cuda_launch(const pml_cuda_module *m, int f, unsigned grid, unsigned block, void **params,
                           pml_cu_stream stream, pml_err *err)
{
    if (f < 0 || f >= m->n || !grid || !block)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "cuda launch: function %d of %d, grid %u, block %u", f, m->n,
                           grid, block);
    PML_CHECK_CU(m->d, LaunchKernel(m->fn[f], grid, 1, 1, block, 1, 1, 0, stream, params, NULL), err);
    return PML_OK;
}

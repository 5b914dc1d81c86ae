/* staging.c — host copies of device buffers (see staging.h). */
#include "exec/staging.h"

#include <stdlib.h>

enum { ALIGN = 64 }; /* each copy on its own cache lines */

static size_t rounded(size_t bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }

pml_status pml_staging_in(pml_staging *a, pml_backend_inst *be, int stage, const pml_backend_buf *bufs, int n, int fill,
                          void **host, const char *why, pml_err *err)
{
    size_t need = 0;
    for (int i = 0; i < n; i++)
        if (bufs[i].device != PML_DEVICE_HOST) need += rounded(bufs[i].bytes);
    if (need > a->cap) {
        free(a->mem);
        a->cap = 0;
        if (!(a->mem = aligned_alloc(ALIGN, need)))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for %zu bytes of host copies (%s)", need, why);
        a->cap = need;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (bufs[i].device == PML_DEVICE_HOST) {
            host[i] = bufs[i].data;
            continue;
        }
        host[i] = a->mem + at;
        at += rounded(bufs[i].bytes);
        pml_status st = fill ? pml_backend_copy_buf(be, stage, &bufs[i], host[i], 1, why, err) : PML_OK;
        if (st) return st;
    }
    return PML_OK;
}

pml_status pml_staging_out(pml_backend_inst *be, int stage, const pml_backend_buf *bufs, int n, void *const *host,
                           const char *why, pml_err *err)
{
    for (int i = 0; i < n; i++) {
        if (bufs[i].device == PML_DEVICE_HOST) continue;
        pml_status st = pml_backend_copy_buf(be, stage, &bufs[i], host[i], 0, why, err);
        if (st) return st;
    }
    return PML_OK;
}

void pml_staging_free(pml_staging *a)
{
    if (!a) return;
    free(a->mem);
    *a = (pml_staging){0};
}

pml_status pml_staging_message(pml_backend_inst *be, int from, int kind, int64_t mb, pml_backend_buf *stack,
                               pml_backend_buf **bufs, pml_backend_buf **heap, int *n, pml_err *err)
{
    *heap = NULL;
    *bufs = stack;
    pml_status st = pml_backend_boundary(be, from, kind, mb, stack, PML_STAGING_BUFS, n, err);
    if (st || *n <= PML_STAGING_BUFS) return st;
    if (!(*heap = malloc(sizeof **heap * (size_t)*n))) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    *bufs = *heap;
    int again;
    return pml_backend_boundary(be, from, kind, mb, *heap, *n, &again, err);
}

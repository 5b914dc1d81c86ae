/* api_files.c — pml.h's files and devices outside a session: choosing a backend, the
 * GPU target to compile for, outputs written by the one output rule (formats/out_path.h,
 * formats/atomic_file.h) and .npy arrays (formats/npy.h). What `pmlc build` and `pmlc
 * infer` need beside sessions, so that the CLI is a client of pml.h like any program.
 * Each call records its outcome in the given context. */
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "exec/backend.h"
#include "formats/atomic_file.h"
#include "formats/npy.h"
#include "formats/out_path.h"

/* A file argument: neither NULL nor "". */

pml_status pml_backend_choose(pml_context *ctx, const pml_plan *plan, pml_backend want, pml_backend *got)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_NONNULL(&err, plan);
    pml_api_check(&err, (unsigned)want <= PML_BACKEND_AUTO, __func__, "want is %d, not a pml_backend", (int)want);
    pml_status st = PML_CHECK_NONNULL(&err, got);
    if (!st) st = pml_backend_select(want, plan, &ctx->gpus, got, NULL, &err);
    return pml_api_record(ctx, st, &err);
}

pml_status pml_gpu_arch(char *buf, size_t cap)
{
    if (!buf || cap < 8) return PML_ERR_INVALID_ARG; /* "sm_100" and its NUL fit in 8 */
    return pml_backend_cuda_arch(buf, cap) ? PML_ERR_DEVICE : PML_OK;
}

pml_status pml_output_check(pml_context *ctx, const char *path)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_status st = PML_CHECK_PATH(&err, path);
    if (!st) st = pml_out_check(path, &err);
    return pml_api_record(ctx, st, &err);
}

pml_status pml_output_write(pml_context *ctx, const char *path, const void *bytes, size_t len)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_PATH(&err, path);
    pml_status st = pml_api_check(&err, bytes || !len, __func__, "bytes is NULL, with len %zu", len);
    if (!st) st = pml_atomic_write_file(path, bytes ? bytes : "", len, &err);
    return pml_api_record(ctx, st, &err);
}

struct pml_array {
    pml_npy_array npy;
};

void pml_array_close(pml_array *a)
{
    if (!a) return;
    pml_npy_close(&a->npy);
    free(a);
}

pml_status pml_array_open(pml_context *ctx, const char *path, pml_buffer *rows, pml_array **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_PATH(&err, path);
    PML_CHECK_NONNULL(&err, rows);
    pml_status st = PML_CHECK_NONNULL(&err, out);
    pml_array *a = st ? NULL : calloc(1, sizeof *a);
    if (!st && !a) st = pml_err_set(&err, PML_ERR_NOMEM, "out of memory");
    if (!st) st = pml_npy_open(path, &a->npy, &err);
    if (st) {
        pml_array_close(a);
        return pml_api_record(ctx, st, &err);
    }
    /* PML_NPY_MAX_RANK is PML_MAX_RANK: every array the reader takes fits a pml_buffer. */
    _Static_assert(PML_NPY_MAX_RANK == PML_MAX_RANK, "a .npy array's rank fits a pml_buffer");
    *rows = (pml_buffer){a->npy.data, a->npy.dtype, a->npy.rank, {0}, path};
    for (int k = 0; k < a->npy.rank; k++) rows->dims[k] = a->npy.shape[k];
    *out = a;
    return pml_api_record(ctx, PML_OK, &err);
}

pml_status pml_array_save(pml_context *ctx, const char *path, const pml_buffer *rows)
{
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    PML_CHECK_PATH(&err, path);
    pml_status st = PML_CHECK_NONNULL(&err, rows);
    if (!st) {
        pml_api_check(&err, rows->rank >= 0 && rows->rank <= PML_MAX_RANK, __func__, "rows->rank is %d, not 0 to %d",
                      rows->rank, PML_MAX_RANK);
        pml_api_check(&err, (unsigned)rows->dtype < PML_DTYPE_COUNT, __func__,
                      "rows->dtype is %d, not a pml_dtype", (int)rows->dtype);
        size_t n = 1;
        for (int k = 0; !err.code && k < rows->rank; k++) {
            pml_api_check(&err, rows->dims[k] >= 0, __func__, "rows->dims[%d] is %lld, below 0", k,
                          (long long)rows->dims[k]);
            n *= (size_t)rows->dims[k];
        }
        st = pml_api_check(&err, rows->data || !n, __func__, "rows->data is NULL");
    }
    if (!st) st = pml_npy_write(path, rows->dtype, rows->rank, rows->dims, rows->data, &err);
    return pml_api_record(ctx, st, &err);
}

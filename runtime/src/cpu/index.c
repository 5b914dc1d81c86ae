/* index.c — gather, pick and their inverses scatter_add and unpick. Every index is
 * checked before anything is written; one out of range fails the call with
 * PML_ERR_INVALID_ARG naming the op, the index and the range. A large gather is split
 * over the stage's pool (c->pool) by rows. */
#include "core/vectorize.h"

#include "cpu.h"
#include "pool.h"

#include <string.h>

pml_status pml_cpu_check_indices(const char *name, const int32_t *idx, int64_t n, int64_t range, pml_err *err)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= range)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: index %d is out of range [0, %lld)", name, (int)idx[i],
                               (long long)range);
    return PML_OK;
}

int pml_cpu_is_rows_of(const pml_view *a, const pml_view *b)
{
    if (a->rank != b->rank + 1) return 0;
    for (int k = 0; k < b->rank; k++)
        if (a->dims[k] != b->dims[k]) return 0;
    return 1;
}

#define SCATTER_ADD(T)                                       \
    do {                                                     \
        T *out = c->out.data;                                \
        const T *dy = c->in[0].data;                         \
        memset(out, 0, (size_t)(N * C) * sizeof(T));         \
        for (int64_t r = 0; r < rows; r++) {                 \
            T *orow = out + (int64_t)idx[r] * C;             \
            const T *d = dy + r * C;                         \
            for (int64_t j = 0; j < C; j++) orow[j] += d[j]; \
        }                                                    \
    } while (0)

/* A gather's rows in `tasks` even parts over the stage's pool (an embedding's lookup,
 * the one part of a GPT forward that ran on one thread): row copies, the same bits at
 * any thread count. */
typedef struct {
    const pml_op_call *c;
    size_t row; /* bytes */
    int64_t rows, tasks;
} gather_job;

static pml_status gather_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker, (void)err;
    const gather_job *j = ctx;
    const int32_t *idx = j->c->in[1].data;
    int64_t r0 = j->rows * t / j->tasks, r1 = j->rows * (t + 1) / j->tasks;
    for (int64_t r = r0; r < r1; r++)
        memcpy((char *)j->c->out.data + (size_t)r * j->row, (const char *)j->c->in[0].data + (size_t)idx[r] * j->row,
               j->row);
    return PML_OK;
}

pml_status pml_cpu_index(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    const pml_view *v = &c->in[0], *iv = &c->in[1], *o = &c->out;
    pml_dtype t = o->dtype;
    size_t es = pml_dtype_size(t);
    char s1[160], s2[160], s3[160];
    if (iv->dtype != PML_I32)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: indices must be i32, not %s", name,
                           pml_dtype_name(iv->dtype));
    if (es == 0 || v->dtype != t) return pml_cpu_unsupported(c, v->dtype, err);
    const int32_t *idx = iv->data;
    int64_t rows = pml_cpu_numel(iv);
    int shapes_ok = 0;
    switch (c->op) {
    case PML_OP_GATHER: /* table[N, C], idx[...] -> out[..., C] */
        shapes_ok = v->rank == 2 && pml_cpu_is_rows_of(o, iv) && o->dims[o->rank - 1] == v->dims[1];
        break;
    case PML_OP_PICK: /* x[..., V], idx[...] -> out[...] */
        shapes_ok = pml_cpu_is_rows_of(v, iv) && pml_cpu_same_shape(o, iv);
        break;
    case PML_OP_SCATTER_ADD: /* dy[..., C], idx[...] -> out[N, C] */
        shapes_ok = o->rank == 2 && pml_cpu_is_rows_of(v, iv) && v->dims[v->rank - 1] == o->dims[1];
        break;
    case PML_OP_UNPICK: /* dy[...], idx[...] -> out[..., V] */
        shapes_ok = pml_cpu_is_rows_of(o, iv) && pml_cpu_same_shape(v, iv);
        break;
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_GATHER
#include "pml/op_cases.h"
        return pml_cpu_other_family(c, err);
    }
    if (!shapes_ok)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: shapes %s, %s -> %s do not fit", name,
                           pml_cpu_shape_str(v, s1, sizeof s1), pml_cpu_shape_str(iv, s2, sizeof s2),
                           pml_cpu_shape_str(o, s3, sizeof s3));
    switch (c->op) {
    case PML_OP_GATHER: {
        int64_t N = v->dims[0];
        gather_job j = {c, (size_t)v->dims[1] * es, rows, 1};
        if (pml_cpu_check_indices(name, idx, rows, N, err)) return err ? err->code : PML_ERR_INVALID_ARG;
        j.tasks = pml_cpu_copy_tasks(c->pool, rows, j.row * (size_t)rows);
        return pml_cpu_pool_run(j.tasks > 1 ? c->pool : NULL, j.tasks, gather_task, &j, err);
    }
    case PML_OP_PICK:
    case PML_OP_UNPICK: {
        int pick = c->op == PML_OP_PICK;
        int64_t V = pick ? v->dims[v->rank - 1] : o->dims[o->rank - 1];
        if (pml_cpu_check_indices(name, idx, rows, V, err)) return err ? err->code : PML_ERR_INVALID_ARG;
        char *od = o->data;
        const char *vd = v->data;
        if (!pick) memset(od, 0, (size_t)pml_cpu_numel(o) * es);
        for (int64_t r = 0; r < rows; r++) {
            size_t wide = (size_t)(r * V + idx[r]) * es, narrow = (size_t)r * es;
            if (pick)
                memcpy(od + narrow, vd + wide, es);
            else
                memcpy(od + wide, vd + narrow, es);
        }
        return PML_OK;
    }
    case PML_OP_SCATTER_ADD: {
        int64_t N = o->dims[0], C = o->dims[1];
        if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
        if (pml_cpu_check_indices(name, idx, rows, N, err)) return err ? err->code : PML_ERR_INVALID_ARG;
        if (t == PML_F32)
            SCATTER_ADD(float);
        else
            SCATTER_ADD(double);
        return PML_OK;
    }
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_GATHER
#include "pml/op_cases.h"
        break;
    }
    return pml_cpu_other_family(c, err);
}

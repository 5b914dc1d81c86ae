/* iter.c — the broadcast iterator and small helpers shared by the kernels (see cpu.h). */
#include "cpu.h"

#include <stdio.h>

int64_t pml_cpu_numel(const pml_view *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->rank; k++) n *= v->dims[k];
    return n;
}

int pml_cpu_same_shape(const pml_view *a, const pml_view *b)
{
    if (a->rank != b->rank) return 0;
    for (int k = 0; k < a->rank; k++)
        if (a->dims[k] != b->dims[k]) return 0;
    return 1;
}

const char *pml_cpu_shape_str(const pml_view *v, char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int k = 0; k < v->rank && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, k ? ", %lld" : "%lld", (long long)v->dims[k]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

pml_status pml_cpu_unsupported(const pml_op_call *c, pml_dtype t, pml_err *err)
{
    return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: %s tensors are not supported on the CPU", pml_op_name(c->op),
                       pml_dtype_name(t));
}

pml_status pml_cpu_other_family(const pml_op_call *c, pml_err *err)
{
    return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: not implemented on the CPU (dtype %s)", pml_op_name(c->op),
                       pml_dtype_name(c->out.dtype));
}

int pml_cpu_iter_init(pml_cpu_iter *it, const pml_view *shape, int n_in, const pml_view *const *in, const char *opname,
                      pml_err *err)
{
    int R = shape->rank, n_ops = n_in + 1;
    int64_t st[PML_ITER_MAX_OPS][PML_MAX_RANK];
    /* Contiguous strides of every operand, aligned to the output from the right. */
    for (int o = 0; o < n_ops; o++) {
        const pml_view *v = o ? in[o - 1] : shape;
        char s1[160], s2[160];
        if (v->rank > R) goto mismatch;
        int64_t stride = 1;
        for (int k = R - 1; k >= 0; k--) {
            int kv = k - (R - v->rank);
            int64_t d = kv >= 0 ? v->dims[kv] : 1;
            if (d != shape->dims[k] && d != 1) goto mismatch;
            st[o][k] = d == 1 ? 0 : stride;
            stride *= d;
        }
        continue;
    mismatch:
        pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %d of shape %s does not broadcast to %s", opname, o - 1,
                    pml_cpu_shape_str(v, s1, sizeof s1), pml_cpu_shape_str(shape, s2, sizeof s2));
        return -1;
    }
    pml_cpu_iter_setup(it, R, shape->dims, n_ops, st);
    return 0;
}

void pml_cpu_iter_setup(pml_cpu_iter *it, int R, const int64_t *shape, int n_ops, int64_t (*strides)[PML_MAX_RANK])
{
    int64_t dims[PML_MAX_RANK], st[PML_ITER_MAX_OPS][PML_MAX_RANK];
    /* Drop size-1 axes, then merge neighbours that are contiguous for every operand. */
    int r = 0;
    for (int k = 0; k < R; k++) {
        if (shape[k] == 1) continue;
        if (r > 0) {
            int merge = 1;
            for (int o = 0; o < n_ops && merge; o++) merge = st[o][r - 1] == strides[o][k] * shape[k];
            if (merge) {
                dims[r - 1] *= shape[k];
                for (int o = 0; o < n_ops; o++) st[o][r - 1] = strides[o][k];
                continue;
            }
        }
        dims[r] = shape[k];
        for (int o = 0; o < n_ops; o++) st[o][r] = strides[o][k];
        r++;
    }
    if (r == 0) { /* a scalar, or all axes of size 1 */
        dims[0] = 1;
        for (int o = 0; o < n_ops; o++) st[o][0] = 0;
        r = 1;
    }
    it->rank = r;
    it->n_ops = n_ops;
    it->numel = 1;
    for (int k = 0; k < R; k++) it->numel *= shape[k];
    for (int k = 0; k < r; k++) {
        it->dims[k] = dims[k];
        it->idx[k] = 0;
        for (int o = 0; o < n_ops; o++) it->st[o][k] = st[o][k];
    }
    for (int o = 0; o < n_ops; o++) it->off[o] = 0;
}

/* matmul.c — batched matmul: a[..., m, k] x b[..., k, n] -> out[..., m, n] with NumPy
 * broadcasting of the batch axes, either input possibly given transposed in its last
 * two axes (c->trans) and the product possibly added to out (c->accumulate). One GEMM
 * per output matrix, a and b found through broadcast batch strides; when b has no
 * batch (a linear layer, [B, T, C] x [C, D]) and a is not transposed, the batch folds
 * into m and it is one GEMM, the panel GEMM when the caller gives b as panels.
 * A third input (f32 only) is a bias, one value per column of the product, added to
 * every row after the product (cpu/lower.h: the epilogue of a bias add): by the panel
 * GEMM before it stores a tile, else over the rows the BLAS just wrote. */
#include "cpu.h"
#include "gemm.h"

#include <string.h>

pml_status pml_cpu_matmul(const pml_op_call *c, pml_err *err)
{
    const pml_view *a = &c->in[0], *b = &c->in[1], *o = &c->out;
    pml_dtype t = o->dtype;
    char s1[160], s2[160], s3[160];
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    if (a->dtype != t || b->dtype != t)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul: inputs %s and %s, output %s: element types must match",
                           pml_dtype_name(a->dtype), pml_dtype_name(b->dtype), pml_dtype_name(t));
    int R = o->rank, B = R - 2;
    int ok = a->rank >= 2 && b->rank >= 2 && R >= 2 && a->rank <= R && b->rank <= R;
    int ta = c->trans[0] != 0, tb = c->trans[1] != 0;
    /* stored rows and columns of each input; op(a) is m x k and op(b) k x n */
    int64_t ar = ok ? a->dims[a->rank - 2] : 0, ac = ok ? a->dims[a->rank - 1] : 0;
    int64_t br = ok ? b->dims[b->rank - 2] : 0, bc = ok ? b->dims[b->rank - 1] : 0;
    int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc, kb = tb ? bc : br;
    ok = ok && kb == k && o->dims[R - 2] == m && o->dims[R - 1] == n;
    /* Batch strides in matrices, 0 where an operand is broadcast. */
    int64_t st[3][PML_MAX_RANK], sa = 1, sb = 1, so = 1, batch_a = 1, batch_b = 1;
    for (int d = B - 1; ok && d >= 0; d--) {
        int da = d - (R - a->rank), db = d - (R - b->rank);
        int64_t na = da >= 0 ? a->dims[da] : 1, nb = db >= 0 ? b->dims[db] : 1;
        ok = (na == o->dims[d] || na == 1) && (nb == o->dims[d] || nb == 1);
        st[0][d] = so;
        st[1][d] = na == 1 ? 0 : sa;
        st[2][d] = nb == 1 ? 0 : sb;
        so *= o->dims[d];
        sa *= na;
        sb *= nb;
        batch_a *= na;
        batch_b *= nb;
    }
    if (!ok)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul: shapes %s%s x %s%s -> %s do not fit",
                           pml_cpu_shape_str(a, s1, sizeof s1), ta ? "^T" : "", pml_cpu_shape_str(b, s2, sizeof s2),
                           tb ? "^T" : "", pml_cpu_shape_str(o, s3, sizeof s3));
    const pml_view *bias = c->n_in >= 3 ? &c->in[2] : NULL;
    const float *bv = bias ? bias->data : NULL;
    if (bias && (t != PML_F32 || bias->dtype != PML_F32 || pml_cpu_numel(bias) != n))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul: a bias %s %s for a %s product of %lld columns",
                           pml_dtype_name(bias->dtype), pml_cpu_shape_str(bias, s1, sizeof s1), pml_dtype_name(t),
                           (long long)n);
    int64_t batches = pml_cpu_numel(o) ? pml_cpu_numel(o) / (m * n) : 0;
    if (batches == 0) return PML_OK;
    size_t es = t == PML_F32 ? sizeof(float) : sizeof(double);
    if (k == 0) { /* an empty sum: zeros, or nothing to add */
        if (!c->accumulate) memset(o->data, 0, (size_t)(batches * m * n) * es);
        if (bv) pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
        return PML_OK;
    }
    pml_cpu_gemm_op op = {ta, tb, c->accumulate != 0};
#define GEMM(M, A, B, C)                                                                                        \
    do {                                                                                                        \
        if (t == PML_F32)                                                                                       \
            pml_cpu_gemm_f32(op, (M), n, k, (const float *)a->data + (A), ac, (const float *)b->data + (B), bc, \
                             (float *)o->data + (C), n, c->threads);                                            \
        else                                                                                                    \
            pml_cpu_gemm_f64(op, (M), n, k, (const double *)a->data + (A), ac, (const double *)b->data + (B),   \
                             bc, (double *)o->data + (C), n, c->threads);                                       \
    } while (0)
    if (batch_b == 1 && batch_a == batches && !ta) { /* b is one matrix: fold the batch into m */
        if (c->panels_b.data && t == PML_F32) {
            pml_cpu_gemm_packed_f32(op.acc, batches * m, n, k, a->data, ac, c->panels_b, o->data, n, bv);
            return PML_OK;
        }
        GEMM(batches * m, 0, 0, 0);
        if (bv) pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
        return PML_OK;
    }
    pml_cpu_iter it;
    pml_cpu_iter_setup(&it, B, o->dims, 3, st);
    int64_t rows = pml_cpu_iter_rows(&it), len = it.dims[it.rank - 1];
    int64_t ia = it.st[1][it.rank - 1], ib = it.st[2][it.rank - 1];
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(&it))
        for (int64_t i = 0; i < len; i++)
            GEMM(m, (it.off[1] + i * ia) * m * k, (it.off[2] + i * ib) * k * n, (it.off[0] + i) * m * n);
#undef GEMM
    if (bv) pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
    return PML_OK;
}

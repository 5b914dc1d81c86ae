/* matmul.c — batched matmul: a[..., m, k] x b[..., k, n] -> out[..., m, n] with NumPy
 * broadcasting of the batch axes, either input possibly given transposed in its last
 * two axes (c->trans) and the product possibly added to out (c->accumulate). One GEMM
 * per output matrix, a and b found through broadcast batch strides; when b has no
 * batch (a linear layer, [B, T, C] x [C, D]) and a is not transposed, the batch folds
 * into m and it is one GEMM, the panel GEMM when the caller gives b as panels.
 * A third input (f32 products only) is a bias, one value per column of the product,
 * added to every row after the product (cpu/lower.h: the epilogue of a bias add): by
 * the panel GEMM before it stores a tile, else over the rows the BLAS just wrote.
 *
 * Element types: f32 or f64 throughout, or (pml_cpu_matmul_bf16) bf16 operands into a
 * bf16 or f32 output through the bf16 GEMM (gemm.h), for cpu/half.c, which computes
 * the product in f32 from widened operands where that GEMM declines. */
#include "cpu.h"
#include "gemm.h"
#include "pool.h"

#include <string.h>

/* The panel GEMM over a stage's pool: columns in blocks of whole panels, or, for a
 * product too narrow for one block per thread (a classifier head), rows in blocks of
 * MR multiples. Every element is the same FMA chain whichever block computes it
 * (gemm.h), so the bits do not depend on the split. Below SPLIT_MACS multiply-adds a
 * product stays on the caller: waking the workers costs microseconds. */
enum { SPLIT_MACS = 1 << 18, ROW_BLOCK = 16 };

typedef struct {
    int acc;
    int64_t m, n, k, lda, ldc, cols, rows; /* cols/rows: a task's block, one of them 0 */
    const float *a, *bias;
    pml_cpu_gemm_panels b;
    float *c;
} split_gemm;

static pml_status split_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker, (void)err;
    const split_gemm *g = ctx;
    if (g->cols) {
        int64_t j0 = t * g->cols, w = g->n - j0 < g->cols ? g->n - j0 : g->cols;
        pml_cpu_gemm_panels b = {g->b.data + j0 / PML_CPU_GEMM_NR * g->b.panel_stride, g->b.row_stride,
                                 g->b.panel_stride};
        pml_cpu_gemm_packed_f32(g->acc, g->m, w, g->k, g->a, g->lda, b, g->c + j0, g->ldc, g->bias ? g->bias + j0 : NULL);
    } else {
        int64_t i0 = t * g->rows, h = g->m - i0 < g->rows ? g->m - i0 : g->rows;
        pml_cpu_gemm_packed_f32(g->acc, h, g->n, g->k, g->a + i0 * g->lda, g->lda, g->b, g->c + i0 * g->ldc, g->ldc,
                                g->bias);
    }
    return PML_OK;
}

static pml_status packed_gemm(pml_cpu_pool *pool, int acc, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                              pml_cpu_gemm_panels b, float *c, int64_t ldc, const float *bias, pml_err *err)
{
    int T = pml_cpu_pool_threads(pool);
    if (T < 2 || m * n * k < SPLIT_MACS) {
        pml_cpu_gemm_packed_f32(acc, m, n, k, a, lda, b, c, ldc, bias);
        return PML_OK;
    }
    split_gemm g = {acc, m, n, k, lda, ldc, 0, 0, a, bias, b, c};
    int64_t panels = (n + PML_CPU_GEMM_NR - 1) / PML_CPU_GEMM_NR;
    if (panels >= T) /* columns: each task whole panels, as even as they divide */
        g.cols = (panels + T - 1) / T * PML_CPU_GEMM_NR;
    else /* rows */
        g.rows = ((m + T - 1) / T + ROW_BLOCK - 1) / ROW_BLOCK * ROW_BLOCK;
    int64_t tasks = g.cols ? (n + g.cols - 1) / g.cols : (m + g.rows - 1) / g.rows;
    return pml_cpu_pool_run(pool, tasks, split_task, &g, err);
}

/* One GEMM of the call's element types, at element offsets A, B and C; 0 where the
 * bf16 GEMM declined (nothing written). */
static int gemm(const pml_op_call *c, pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, int64_t A, int64_t B,
                int64_t C)
{
    const pml_view *a = &c->in[0], *b = &c->in[1], *o = &c->out;
    int64_t ac = a->dims[a->rank - 1], bc = b->dims[b->rank - 1];
    if (o->dtype == PML_F32 && a->dtype == PML_F32)
        pml_cpu_gemm_f32(op, m, n, k, (const float *)a->data + A, ac, (const float *)b->data + B, bc,
                         (float *)o->data + C, n, c->threads);
    else if (o->dtype == PML_F64)
        pml_cpu_gemm_f64(op, m, n, k, (const double *)a->data + A, ac, (const double *)b->data + B, bc,
                         (double *)o->data + C, n, c->threads);
    else
        return pml_cpu_gemm_bf16(op, m, n, k, (const uint16_t *)a->data + A, ac, (const uint16_t *)b->data + B, bc,
                                 (char *)o->data + (size_t)C * pml_dtype_size(o->dtype), o->dtype == PML_BF16, n,
                                 c->threads);
    return 1;
}

/* The product for either entry point; *declined set where the bf16 GEMM declined its
 * first GEMM (every GEMM of a call has one shape, so it declines the first or none). */
static pml_status matmul(const pml_op_call *c, int *declined, pml_err *err)
{
    const pml_view *a = &c->in[0], *b = &c->in[1], *o = &c->out;
    pml_dtype t = o->dtype;
    char s1[160], s2[160], s3[160];
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
    if (bias && (t != PML_F32 || a->dtype != PML_F32 || b->dtype != PML_F32 || bias->dtype != PML_F32 ||
                 pml_cpu_numel(bias) != n))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul: a bias %s %s for a %s product of %lld columns",
                           pml_dtype_name(bias->dtype), pml_cpu_shape_str(bias, s1, sizeof s1), pml_dtype_name(t),
                           (long long)n);
    int64_t batches = pml_cpu_numel(o) ? pml_cpu_numel(o) / (m * n) : 0;
    if (batches == 0) return PML_OK;
    size_t es = pml_dtype_size(t);
    if (k == 0) { /* an empty sum: zeros, or nothing to add */
        if (!c->accumulate) memset(o->data, 0, (size_t)(batches * m * n) * es);
        if (bv) pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
        return PML_OK;
    }
    pml_cpu_gemm_op op = {ta, tb, c->accumulate != 0};
    if (batch_b == 1 && batch_a == batches && !ta) { /* b is one matrix: fold the batch into m */
        if (c->panels_b.data && t == PML_F32 && a->dtype == PML_F32) {
            return packed_gemm(c->pool, op.acc, batches * m, n, k, a->data, ac, c->panels_b, o->data, n, bv, err);
        }
        if (!gemm(c, op, batches * m, n, k, 0, 0, 0))
            *declined = 1;
        else if (bv)
            pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
        return PML_OK;
    }
    pml_cpu_iter it;
    pml_cpu_iter_setup(&it, B, o->dims, 3, st);
    int64_t rows = pml_cpu_iter_rows(&it), len = it.dims[it.rank - 1];
    int64_t ia = it.st[1][it.rank - 1], ib = it.st[2][it.rank - 1];
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(&it))
        for (int64_t i = 0; i < len; i++)
            if (!gemm(c, op, m, n, k, (it.off[1] + i * ia) * m * k, (it.off[2] + i * ib) * k * n,
                      (it.off[0] + i) * m * n)) {
                if (r == 0 && i == 0) {
                    *declined = 1;
                    return PML_OK;
                }
                return pml_err_set(err, PML_ERR_INTERNAL, "matmul: oneDNN's bf16 product failed part-way");
            }
    if (bv) pml_cpu_add_bias_f32(batches * m, n, bv, o->data, n);
    return PML_OK;
}

pml_status pml_cpu_matmul(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    if (t != PML_F32 && t != PML_F64) return pml_cpu_unsupported(c, t, err);
    if (c->in[0].dtype != t || c->in[1].dtype != t)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul: inputs %s and %s, output %s: element types must match",
                           pml_dtype_name(c->in[0].dtype), pml_dtype_name(c->in[1].dtype), pml_dtype_name(t));
    int declined = 0;
    return matmul(c, &declined, err);
}

pml_status pml_cpu_matmul_bf16(const pml_op_call *c, int *declined, pml_err *err)
{
    *declined = 0;
    if (c->in[0].dtype != PML_BF16 || c->in[1].dtype != PML_BF16 ||
        (c->out.dtype != PML_BF16 && c->out.dtype != PML_F32) || !pml_cpu_gemm_bf16_ready()) {
        *declined = 1;
        return PML_OK;
    }
    return matmul(c, declined, err);
}

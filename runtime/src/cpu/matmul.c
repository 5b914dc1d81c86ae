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

#include <stdatomic.h>
#include <string.h>

/* A call's products run as tasks over the stage's pool (c->pool; none: in order on the
 * caller): each product, or a block of one product's columns or rows, is a task, and the
 * GEMM provider is then asked for one thread (its own OpenMP threads would compete with
 * the pool's for the same cores; docs/design.md, "One set of threads per stage"). A block of
 * columns or rows is the same sums in the same order as the whole product in the panel
 * GEMM (gemm.h), so its bits do not depend on the thread count; a provider may block k
 * by shape. Below PML_CPU_POOL_SPLIT_MACS multiply-adds a call stays on the caller. */
enum { COL_ALIGN = 16, ROW_ALIGN = 16, PANEL_TASKS = 4 };

typedef struct {
    const pml_op_call *c;
    pml_cpu_gemm_op op;
    int64_t rows, n, k;        /* one product's shape: op(a) rows x k times k x n */
    int64_t rblock, rblocks;   /* each product in rblocks x cblocks blocks of rblock rows x */
    int64_t cblock, cblocks;   /* cblock columns, numbered row block by row block */
    int folded;                /* one product, the batch folded into its rows */
    int B, threads;            /* batch axes; the provider's threads per GEMM */
    const int64_t *dims;       /* the output's batch dims */
    const int64_t (*st)[PML_MAX_RANK]; /* batch strides in matrices: out, a, b */
    atomic_int declined, wrote;
} job;

/* Whether the call's product is the panel GEMM's (the caller gave b as panels, gemm.h),
 * which adds the bias itself. */
static int panel_gemm(const job *j)
{
    const pml_op_call *c = j->c;
    return j->folded && c->panels_b.data && c->out.dtype == PML_F32 && c->in[0].dtype == PML_F32;
}

/* One GEMM of the call's element types: op(a) (m x k at element offset A) times op(b)
 * (at B; its columns from col0 on) into m x n at C with rows ldc apart; 0 where the
 * bf16 GEMM declined (nothing written). */
static int gemm(const job *j, int64_t m, int64_t n, int64_t A, int64_t B, int64_t col0, int64_t C)
{
    const pml_op_call *c = j->c;
    const pml_view *a = &c->in[0], *b = &c->in[1], *o = &c->out;
    int64_t ac = a->dims[a->rank - 1], bc = b->dims[b->rank - 1], k = j->k, ldc = j->n;
    if (panel_gemm(j)) { /* col0 is a whole number of panels (run_products) */
        const pml_cpu_gemm_panels *p = &c->panels_b;
        pml_cpu_gemm_panels at = {p->data + col0 / PML_CPU_GEMM_NR * p->panel_stride, p->row_stride, p->panel_stride};
        const float *bias = c->n_in >= 3 ? (const float *)c->in[2].data + col0 : NULL;
        pml_cpu_gemm_packed_f32(j->op.acc, m, n, k, (const float *)a->data + A, ac, at, (float *)o->data + C, ldc, bias);
        return 1;
    }
    if (o->dtype == PML_F32 && a->dtype == PML_F32)
        pml_cpu_gemm_f32(j->op, m, n, k, (const float *)a->data + A, ac, (const float *)b->data + B, bc,
                         (float *)o->data + C, ldc, j->threads);
    else if (o->dtype == PML_F64)
        pml_cpu_gemm_f64(j->op, m, n, k, (const double *)a->data + A, ac, (const double *)b->data + B, bc,
                         (double *)o->data + C, ldc, j->threads);
    else
        return pml_cpu_gemm_bf16(j->op, m, n, k, (const uint16_t *)a->data + A, ac, (const uint16_t *)b->data + B, bc,
                                 (char *)o->data + (size_t)C * pml_dtype_size(o->dtype), o->dtype == PML_BF16, ldc,
                                 j->threads);
    return 1;
}

/* Task t: block t % blocks of product t / blocks (blocks = rblocks x cblocks), its row
 * block first. */
static pml_status product_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker;
    job *j = ctx;
    const pml_op_call *c = j->c;
    int64_t blocks = j->rblocks * j->cblocks, q = t / blocks, m = j->rows, n = j->n, k = j->k;
    int64_t rlo = t % blocks / j->cblocks * j->rblock, clo = t % blocks % j->cblocks * j->cblock;
    int64_t A = 0, B = 0, C = q * m * n; /* product q's matrices: q over the batch dims, row-major */
    int64_t r = q;
    for (int d = j->B - 1; d >= 0 && !j->folded; d--) {
        int64_t i = r % j->dims[d];
        r /= j->dims[d];
        A += i * j->st[1][d] * m * k;
        B += i * j->st[2][d] * k * n;
    }
    int64_t ac = c->in[0].dims[c->in[0].rank - 1], bc = c->in[1].dims[c->in[1].rank - 1];
    int64_t h = m - rlo < j->rblock ? m - rlo : j->rblock, w = n - clo < j->cblock ? n - clo : j->cblock;
    A += j->op.ta ? rlo : rlo * ac;
    B += j->op.tb ? clo * bc : clo;
    C += rlo * n + clo;
    if (!gemm(j, h, w, A, B, clo, C)) {
        atomic_store(&j->declined, 1);
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "matmul: the bf16 GEMM declined");
    }
    atomic_store(&j->wrote, 1);
    const float *bias = c->n_in >= 3 ? c->in[2].data : NULL;
    if (bias && !panel_gemm(j)) pml_cpu_add_bias_f32(h, w, bias + clo, (float *)c->out.data + C, n);
    return PML_OK;
}

/* Runs the products of a call (products of rows x n x k each) as the header says. */
static pml_status run_products(job *j, int64_t products, int *declined, pml_err *err)
{
    const pml_op_call *c = j->c;
    int T = pml_cpu_pool_threads(c->pool);
    pml_cpu_pool *pool = T >= 2 && products * j->rows * j->n * j->k >= PML_CPU_POOL_SPLIT_MACS ? c->pool : NULL;
    j->threads = c->pool ? 1 : c->threads;
    j->rblock = j->rows, j->rblocks = 1, j->cblock = j->n, j->cblocks = 1;
    if (pool && products < 2 * T) { /* too few products to share: split each */
        int panels = panel_gemm(j);
        int64_t panel = panels ? PML_CPU_GEMM_NR : COL_ALIGN;
        /* The panel GEMM's tasks are small, about PANEL_TASKS a thread, taken as threads
         * come free: a worker that wakes late, or a core another process holds for a
         * while, costs the call a task, not half of it. Many rows split by rows, into
         * the blocks the GEMM keeps in L2 (each reads all of B, which a weight's panels
         * fit); fewer by panels of columns (each reads all of A, a few rows); between
         * (a block of rows a thread or more, 256 rows on two threads), both: blocks of
         * rows, each in blocks of panels, so that the pool's contiguous ranges (pool.h)
         * give each thread whole row blocks — the rows it then has in cache for the next
         * op, which a split by columns leaves half in the other core's. */
        int64_t want = panels ? (int64_t)T * PANEL_TASKS : T;
        if (panels && j->rows >= want * PML_CPU_GEMM_MC / 2) {
            j->rblock = PML_CPU_GEMM_MC;
        } else if (j->n >= T * panel) {
            int64_t rblocks = panels && j->rows >= T * PML_CPU_GEMM_MC ? j->rows / PML_CPU_GEMM_MC : 1;
            int64_t n_panels = (j->n + panel - 1) / panel, per = (want + rblocks - 1) / rblocks;
            int64_t blocks = n_panels < per ? n_panels : per;
            if (rblocks > 1) j->rblock = (j->rows + rblocks - 1) / rblocks;
            j->cblock = (n_panels + blocks - 1) / blocks * panel;
        } else if (j->rows >= 2 * ROW_ALIGN) {
            j->rblock = ((j->rows + T - 1) / T + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
        }
        j->rblocks = (j->rows + j->rblock - 1) / j->rblock;
        j->cblocks = (j->n + j->cblock - 1) / j->cblock;
    }
    pml_status st = pml_cpu_pool_run(pool, products * j->rblocks * j->cblocks, product_task, j, err);
    if (atomic_load(&j->declined)) {
        /* all or nothing on one machine; half.c then computes the whole output in f32,
         * which only an accumulating product that has begun cannot take back */
        if (j->op.acc && atomic_load(&j->wrote))
            return pml_err_set(err, PML_ERR_INTERNAL, "matmul: oneDNN's bf16 product failed part-way");
        *declined = 1;
        if (err) *err = (pml_err){0}; /* the tasks' "declined" is no error of the call */
        return PML_OK;
    }
    return st;
}

/* The product for either entry point; *declined set where the bf16 GEMM declined
 * (run_products says when that is no error). */
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
    job jb = {.c = c, .op = {ta, tb, c->accumulate != 0}, .rows = m, .n = n, .k = k, .B = B, .dims = o->dims,
              .st = (const int64_t(*)[PML_MAX_RANK])st};
    if (batch_b == 1 && batch_a == batches && !ta) { /* b is one matrix: fold the batch into the rows */
        jb.folded = 1;
        jb.rows = batches * m;
        return run_products(&jb, 1, declined, err);
    }
    return run_products(&jb, batches, declined, err);
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

/* stage_int8.c — the CPU backend's int8 serving (backend_ops.h's param_int8): which
 * products of a context compute in int8, the int8 weights and scratch they read, and
 * running one. The one place that decides and dispatches int8 products; the kernel is
 * cpu/gemm_int8.h's pml_cpu_linear_i8.
 *
 * A matmul node computes in int8 when it is a forward linear layer on parameter q that
 * was given int8 weights: it runs (after cpu/lower.h's lowering), reads q's own buffer
 * (or an alias of it) transposed as its right operand, [rows, cols] = [out, in], and a
 * not transposed f32 left operand whose leading axes fold into the GEMM's m (x [..., in]
 * -> y [..., out], f32), adds into no accumulator, and k fits the int32 sum. A bias add
 * the lowering folded into it (in[2]) is passed on: y = acc * s_row * s_col + bias.
 * Everything else (a 16-bit plan's products, whose operands are casts, say) keeps
 * reading the f32 weights, which param_int8 leaves dequantized, and is not counted.
 *
 * Weights: where the CPU has AVX512_VNNI, param_int8 packs each int8 weight once for
 * gemm_int8.c's own kernel (panels of 16 columns), which serves it with the
 * dequantization in the same pass; elsewhere it keeps the weight as given for
 * oneDNN's s8 GEMM, which packs it on every call. The sums are exact either way, so the
 * outputs have the same bits.
 *
 * Threads: a stage with a pool (cpu/pool.h) splits a product into one task per thread,
 * by blocks of columns (each task quantizes the rows the same way and reads only its
 * columns' weights), or, for a product too
 * narrow for that, by rows (each row is quantized and summed alone): the bits do not
 * change. Products under PML_CPU_POOL_SPLIT_MACS multiply-adds stay on the caller.
 *
 * Static activation scales (a calibrated file, quant/int8.h): param_int8's in_scale > 0
 * replaces every row's max|x| / 127 for q's products (the kernel's xs_static).
 * Calibration (observe_linear): the same products, run in f32 as lowered, first fold
 * max|x| of their left operand into a per-node maximum, which observed_absmax reduces
 * per parameter; so a calibrated scale is read where it will be used, by definition.
 *
 * Memory: param_int8 copies q's int8 values and scales (one allocation each) and grows
 * each stage's scratch to a slot per pool thread (int8.h's pml_cpu_linear_i8_scratch
 * for the largest block of its largest int8 product over one micro-batch); a run
 * allocates nothing. Per stage, since stage threads may run at once; a stage runs its
 * nodes one after another. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "cpu/gemm_int8.h"
#include "cpu/pool.h"
#include "cpu/stage.h"

/* How a product of m rows and n columns splits over T threads: *cols per task (n for
 * a row split or none), *rows per task (m for a column split or none); returns the
 * task count. */
static int64_t split(int64_t m, int64_t n, int64_t k, int T, int64_t *rows, int64_t *cols)
{
    *rows = m, *cols = n;
    if (T < 2 || m * n * k < PML_CPU_POOL_SPLIT_MACS) return 1;
    if (n >= 16 * T) { /* columns in blocks of 16 */
        *cols = ((n + T - 1) / T + 15) / 16 * 16;
        return (n + *cols - 1) / *cols;
    }
    if (m < 2) return 1;
    *rows = (m + T - 1) / T;
    return (m + *rows - 1) / *rows;
}

/* One scratch slot of a product's task, 64-byte aligned. */
static size_t slot_bytes(int64_t rows, int64_t cols, int64_t k)
{
    return (pml_cpu_linear_i8_scratch(rows, cols, k) + PML_CPU_MEM_ALIGN - 1) / PML_CPU_MEM_ALIGN * PML_CPU_MEM_ALIGN;
}

/* The node whose buffer node i reads (its alias root). */
static int root(const pml_cpu_ctx *p, int i) { return p->low[i].alias; }

/* Whether matmul node n can compute in int8 on parameter q (above); *m: its rows per
 * micro-batch. */
static int fits(const pml_cpu_ctx *p, int n, int q, int64_t *m)
{
    const pml_plan *pl = p->plan;
    const pml_cpu_node *l = &p->low[n];
    const pml_plan_node *node = &pl->nodes[n], *w = &pl->nodes[pl->params[q].node];
    if (!l->run || l->op != PML_OP_MATMUL || node->pass != 0 || l->trans[0] || !l->trans[1] || p->acc_into[n] ||
        root(p, l->in[1]) != pl->params[q].node || w->rank != 2 || w->dtype != PML_F32)
        return 0;
    const pml_plan_node *a = &pl->nodes[l->in[0]];
    int64_t out = w->dims[0], k = w->dims[1];
    if (a->dtype != PML_F32 || node->dtype != PML_F32 || a->rank < 2 || node->rank < 2 || k > PML_CPU_GEMM_S8_MAX_K ||
        a->dims[a->rank - 1] != k || node->dims[node->rank - 1] != out || a->numel / k != node->numel / out)
        return 0;
    *m = node->numel / out;
    return 1;
}

/* The per-node map, allocated at the first int8 weight (a training context never has one). */
static pml_status ensure_map(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    if (p->i8_param) return PML_OK;
    p->i8_param = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1));
    p->i8 = calloc((size_t)pl->n_params + 1, sizeof *p->i8);
    p->i8_bytes = calloc((size_t)pl->n_params + 1, sizeof *p->i8_bytes);
    p->i8_scale = calloc((size_t)pl->n_params + 1, sizeof *p->i8_scale);
    p->i8_in_scale = calloc((size_t)pl->n_params + 1, sizeof *p->i8_in_scale);
    if (!p->i8_param || !p->i8 || !p->i8_bytes || !p->i8_scale || !p->i8_in_scale)
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pl->n_nodes; i++) p->i8_param[i] = -1;
    return PML_OK;
}

pml_status pml_cpu_ctx_param_int8(pml_backend_ctx *b, int q, const int8_t *wq, const float *scale, float in_scale,
                                  int *served, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    const pml_plan_node *w = &pl->nodes[pl->params[q].node];
    *served = 0;
    if (w->rank != 2) return PML_OK; /* only a matrix is a linear layer's weight */
    pml_status st = ensure_map(p, err);
    if (st) return st;
    size_t rows = (size_t)w->dims[0], cols = (size_t)w->dims[1];
    size_t packed = pml_cpu_s8_packed_bytes(w->dims[0], w->dims[1]);
    if (!p->i8[q]) {
        p->i8[q] = packed ? aligned_alloc(PML_CPU_MEM_ALIGN, (packed + PML_CPU_MEM_ALIGN - 1) / PML_CPU_MEM_ALIGN *
                                                                 PML_CPU_MEM_ALIGN)
                          : malloc(rows * cols + 1);
        p->i8_bytes[q] = packed;
        if (!p->i8[q] || !(p->i8_scale[q] = malloc(sizeof(float) * rows + 1)))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for int8 weight '%s'", pl->params[q].name);
    }
    if (packed)
        pml_cpu_s8_pack(w->dims[0], w->dims[1], wq, p->i8[q]);
    else
        memcpy(p->i8[q], wq, rows * cols);
    memcpy(p->i8_scale[q], scale, sizeof(float) * rows);
    p->i8_in_scale[q] = in_scale > 0 ? in_scale : 0.0f;
    for (int n = 0; n < pl->n_nodes; n++) {
        int64_t m;
        if (!fits(p, n, q, &m)) continue;
        pml_cpu_stage *s = &p->stages[pl->nodes[n].stage];
        int64_t br, bc, tasks = split(m, w->dims[0], w->dims[1], pml_cpu_pool_threads(s->pool), &br, &bc);
        size_t need = (size_t)tasks * slot_bytes(br, bc, w->dims[1]);
        if (need > s->i8_scratch_bytes) {
            void *grown = aligned_alloc(PML_CPU_MEM_ALIGN,
                                        (need + PML_CPU_MEM_ALIGN - 1) / PML_CPU_MEM_ALIGN * PML_CPU_MEM_ALIGN);
            if (!grown) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for int8 scratch");
            free(s->i8_scratch);
            s->i8_scratch = grown;
            s->i8_scratch_bytes = need;
        }
        p->i8_param[n] = q;
        ++*served;
    }
    return PML_OK;
}

int pml_cpu_ctx_int8_node(const pml_cpu_ctx *p, int n) { return p->i8_param ? p->i8_param[n] : -1; }

typedef struct {
    int64_t m, n, k, rows, cols;
    const float *x, *ws, *bias;
    float xs_static;
    const void *w; /* the weight: packed (gemm_int8.h) or as given */
    int packed;
    float *y;
    char *scratch;
    size_t slot;
    const char *name;
} int8_job;

/* Task t: columns [t cols, ...) of every row, or rows [t rows, ...) of every column, in
 * scratch slot t. */
static pml_status int8_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker;
    const int8_job *j = ctx;
    int64_t i0 = j->rows < j->m ? t * j->rows : 0, j0 = j->cols < j->n ? t * j->cols : 0;
    int64_t h = j->m - i0 < j->rows ? j->m - i0 : j->rows, w = j->n - j0 < j->cols ? j->n - j0 : j->cols;
    pml_cpu_gemm_setup(1); /* oneDNN's s8 GEMM on this thread alone: the pool is the stage's threads */
    const int8_t *wq = j->packed ? NULL : (const int8_t *)j->w + j0 * j->k;
    const void *wp = j->packed ? pml_cpu_s8_packed_cols(j->w, j->k, j0) : NULL;
    if (pml_cpu_linear_i8(h, w, j->k, j->x + i0 * j->k, j->xs_static, wq, wp, j->ws + j0, j->bias ? j->bias + j0 : NULL,
                          j->y + i0 * j->n + j0, j->n, j->scratch + (size_t)t * j->slot))
        return pml_err_set(err, PML_ERR_INTERNAL, "int8 product of '%s': sizes out of range", j->name);
    return PML_OK;
}

pml_status pml_cpu_ctx_run_int8(pml_cpu_ctx *p, int n, const pml_op_call *c, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int q = p->i8_param[n];
    const pml_plan_node *w = &pl->nodes[pl->params[q].node];
    const pml_cpu_stage *s = &p->stages[pl->nodes[n].stage];
    int8_job j = {.m = pml_cpu_numel(&c->out) / w->dims[0], .n = w->dims[0], .k = w->dims[1], .x = c->in[0].data,
                  .xs_static = p->i8_in_scale[q], .ws = p->i8_scale[q], .bias = c->n_in >= 3 ? c->in[2].data : NULL,
                  .w = p->i8[q], .packed = p->i8_bytes[q] > 0, .y = c->out.data, .scratch = s->i8_scratch, .name = pl->params[q].name};
    int64_t tasks = split(j.m, j.n, j.k, pml_cpu_pool_threads(s->pool), &j.rows, &j.cols);
    j.slot = slot_bytes(j.rows, j.cols, j.k);
    return pml_cpu_pool_run(tasks > 1 ? s->pool : NULL, tasks, int8_task, &j, err);
}

pml_status pml_cpu_ctx_observe_linear(pml_backend_ctx *b, int q, int *observed, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    *observed = 0;
    if (!p->obs_param) {
        p->obs_param = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1));
        p->obs_absmax = calloc((size_t)pl->n_nodes + 1, sizeof *p->obs_absmax);
        if (!p->obs_param || !p->obs_absmax) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        for (int i = 0; i < pl->n_nodes; i++) p->obs_param[i] = -1;
    }
    for (int n = 0; n < pl->n_nodes; n++) {
        int64_t m;
        if (!fits(p, n, q, &m)) continue;
        p->obs_param[n] = q;
        p->obs_absmax[n] = 0;
        ++*observed;
    }
    return PML_OK;
}

pml_status pml_cpu_ctx_observed_absmax(pml_backend_ctx *b, int q, float *absmax, pml_err *err)
{
    (void)err;
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    float mx = 0;
    for (int n = 0; p->obs_param && n < p->plan->n_nodes; n++)
        if (p->obs_param[n] == q) mx = isnan(p->obs_absmax[n]) || isnan(mx) ? NAN : fmaxf(mx, p->obs_absmax[n]);
    *absmax = mx;
    return PML_OK;
}

void pml_cpu_ctx_observe(pml_cpu_ctx *p, int n, const pml_op_call *c)
{
    const float *x = c->in[0].data;
    size_t len = (size_t)pml_cpu_numel(&c->in[0]);
    float mx = 0;
    int finite = 1;
    for (size_t i = 0; i < len; i++) {
        finite &= isfinite(x[i]) != 0;
        mx = fmaxf(mx, fabsf(x[i]));
    }
    if (!isnan(p->obs_absmax[n])) p->obs_absmax[n] = finite ? fmaxf(p->obs_absmax[n], mx) : NAN;
}

void pml_cpu_ctx_free_int8(pml_cpu_ctx *p)
{
    for (int q = 0; p->i8 && q < p->plan->n_params; q++) free(p->i8[q]), free(p->i8_scale[q]);
    free(p->i8_bytes);
    for (int s = 0; p->stages && s < p->S; s++) free(p->stages[s].i8_scratch);
    free(p->i8), free(p->i8_scale), free(p->i8_in_scale), free(p->i8_param);
    free(p->obs_param), free(p->obs_absmax);
}

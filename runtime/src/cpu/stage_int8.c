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
 * gemm_int8_packed.c's own kernel (blocks of 64 columns), which serves it with the
 * dequantization in the same pass; elsewhere it keeps the weight as given for
 * oneDNN's s8 GEMM, which packs it on every call. The sums are exact either way, so the
 * outputs have the same bits.
 *
 * Threads: a stage with a pool (cpu/pool.h) quantizes a product's rows once, split by
 * rows, and then splits the product into one task per thread, by blocks of whole
 * packing blocks of columns (each task reads only its columns' weights), or, for a
 * product too narrow for that, by rows (each row is summed alone): the bits do not
 * change. Products under PML_CPU_POOL_SPLIT_MACS multiply-adds stay on the caller.
 *
 * Layouts (stage_int8_layout.c): where a product's only readers are slices and permutes, or its left
 * operand is a permute only it reads, the product writes the permutes' values or reads
 * the permute's input itself and those copies are not run (not with conf.unfused, where
 * every node runs on its own).
 *
 * Static activation scales (a calibrated file, quant/int8.h): param_int8's in_scale > 0
 * replaces every row's max|x| / 127 for q's products (the kernel's xs_static).
 * Calibration (observe_linear): the same products, run in f32 as lowered, first fold
 * max|x| of their left operand into a per-node maximum, which observed_absmax reduces
 * per parameter; so a calibrated scale is read where it will be used, by definition.
 *
 * Memory: param_int8 copies q's int8 values and scales (one allocation each), makes the
 * layouts' offset tables, and grows each stage's scratch to its largest int8 product's
 * over one micro-batch (scratch_of: the quantized rows, four made rows per task, the
 * output's column offsets, int32 sums per task); a run allocates nothing. Per stage, since stage threads may run at once; a stage runs its
 * nodes one after another. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "cpu/gemm_int8.h"
#include "cpu/pool.h"
#include "cpu/stage.h"
#include "cpu/stage_int8.h"

/* How a product of m rows and n columns splits over T threads: *cols per task (n for
 * a row split or none), *rows per task (m for a column split or none); returns the
 * task count. */
static int64_t split(int64_t m, int64_t n, int64_t k, int T, int64_t *rows, int64_t *cols)
{
    *rows = m, *cols = n;
    if (T < 2 || m * n * k < PML_CPU_POOL_SPLIT_MACS) return 1;
    if (n >= PML_CPU_S8_COLS * T) { /* columns in whole blocks of the packing */
        *cols = ((n + T - 1) / T + PML_CPU_S8_COLS - 1) / PML_CPU_S8_COLS * PML_CPU_S8_COLS;
        return (n + *cols - 1) / *cols;
    }
    if (m < 2) return 1;
    *rows = (m + T - 1) / T;
    return (m + *rows - 1) / *rows;
}

static size_t aligned(size_t b) { return (b + PML_CPU_MEM_ALIGN - 1) / PML_CPU_MEM_ALIGN * PML_CPU_MEM_ALIGN; }

/* A product's scratch: the quantized rows (m of them) and their scales, four rows made
 * or gathered per task, the output's column offsets, then a slot of int32 sums per task (for the weight
 * as given; rows x cols of them). */
typedef struct i8_scratch {
    size_t xs, tmp, col, slots, slot, total; /* offsets (the quantized rows at 0) and sizes */
} i8_scratch;

static i8_scratch scratch_of(int64_t m, int64_t n, int64_t k, int packed, int64_t tasks, int64_t rows, int64_t cols)
{
    i8_scratch z;
    z.xs = aligned((size_t)(m * pml_cpu_i8_row_bytes(k, packed)));
    z.tmp = z.xs + aligned(sizeof(float) * (size_t)m);
    z.col = z.tmp + (size_t)tasks * aligned(4 * sizeof(float) * (size_t)k);
    z.slots = z.col + aligned(sizeof(int64_t) * (size_t)((n + 15) / 16));
    z.slot = packed ? 0 : aligned(sizeof(int32_t) * (size_t)(rows * cols));
    z.total = z.slots + (size_t)tasks * z.slot;
    return z;
}


/* Whether matmul node n can compute in int8 on parameter q (above); *m: its rows per
 * micro-batch. */
static int fits(const pml_cpu_ctx *p, int n, int q, int64_t *m)
{
    const pml_plan *pl = p->plan;
    const pml_cpu_node *l = &p->low[n];
    const pml_plan_node *node = &pl->nodes[n], *w = &pl->nodes[pl->params[q].node];
    if (!l->run || l->op != PML_OP_MATMUL || node->pass != 0 || l->trans[0] || !l->trans[1] || p->acc_into[n] ||
        pml_cpu_i8_root(p, l->in[1]) != pl->params[q].node || w->rank != 2 || w->dtype != PML_F32)
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
    p->i8_layout = calloc((size_t)pl->n_nodes + 1, sizeof *p->i8_layout);
    p->i8_skip = calloc((size_t)pl->n_nodes + 1, 1);
    if (!p->i8_param || !p->i8 || !p->i8_bytes || !p->i8_scale || !p->i8_in_scale || !p->i8_layout || !p->i8_skip)
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
        size_t need = scratch_of(m, w->dims[0], w->dims[1], packed > 0, tasks, br, bc).total;
        if (p->i8_param[n] < 0 && !p->conf.unfused) { /* unfused: every node runs on its own */
            st = pml_cpu_i8_choose_layout(p, n, m, w->dims[0], w->dims[1], err);
            if (st) return st;
        }
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

int pml_cpu_ctx_int8_skips(const pml_cpu_ctx *p, int n) { return p->i8_skip ? p->i8_skip[n] : 0; }

typedef struct {
    int64_t m, n, k, rows, cols, qrows; /* qrows: rows a quantizing task */
    pml_cpu_i8_in x;
    const float *ws, *bias;
    float xs_static;
    const void *w; /* the weight: packed (gemm_int8.h) or as given */
    int packed;
    pml_cpu_i8_out y;
    char *scratch;
    i8_scratch z;
    const char *name;
} int8_job;

/* A layernorm layout's rows (ln_layout), for pml_cpu_i8_in's make_row. */
typedef struct ln_rows {
    const float *a, *b, *w, *bias;
    float *h, eps;
    int64_t k;
} ln_rows;

static void ln_make_rows(const void *ctx, int64_t i, int rows, float *tmp)
{
    const ln_rows *r = ctx;
    pml_cpu_layernorm_rows(rows, r->a + i * r->k, r->b ? r->b + i * r->k : NULL, r->h ? r->h + i * r->k : NULL, r->k,
                           r->eps, r->w, r->bias, tmp, NULL);
}

/* Quantizing task t: rows [t qrows, ...), making or gathering them in its rows of tmp. */
static pml_status quantize_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker, (void)err;
    const int8_job *j = ctx;
    int64_t i0 = t * j->qrows, h = j->m - i0 < j->qrows ? j->m - i0 : j->qrows;
    pml_cpu_i8_in x = j->x;
    x.tmp = (float *)(j->scratch + j->z.tmp + (size_t)t * aligned(4 * sizeof(float) * (size_t)j->k));
    if (x.make_rows)
        x.first = i0;
    else if (x.row)
        x.row += i0;
    else
        x.x += i0 * j->k;
    pml_cpu_quantize_i8(h, &x, j->xs_static, j->packed, (int8_t *)j->scratch + i0 * pml_cpu_i8_row_bytes(j->k, j->packed),
                        (float *)(j->scratch + j->z.xs) + i0);
    return PML_OK;
}

/* Product task t: columns [t cols, ...) of every row, or rows [t rows, ...) of every
 * column, its int32 sums (weight as given) in slot t. */
static pml_status product_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker;
    const int8_job *j = ctx;
    int64_t i0 = j->rows < j->m ? t * j->rows : 0, j0 = j->cols < j->n ? t * j->cols : 0;
    int64_t h = j->m - i0 < j->rows ? j->m - i0 : j->rows, w = j->n - j0 < j->cols ? j->n - j0 : j->cols;
    pml_cpu_gemm_setup(1); /* oneDNN's s8 GEMM on this thread alone: the pool is the stage's threads */
    const int8_t *wq = j->packed ? NULL : (const int8_t *)j->w + j0 * j->k;
    const void *wp = j->packed ? pml_cpu_s8_packed_cols(j->w, j->k, j0) : NULL;
    pml_cpu_i8_out y = j->y;
    if (y.row)
        y.row += i0, y.col16 += j0 / 16;
    else
        y.y += i0 * y.ld + j0;
    if (pml_cpu_linear_i8_rows(h, w, j->k, (const int8_t *)j->scratch + i0 * pml_cpu_i8_row_bytes(j->k, j->packed),
                               (const float *)(j->scratch + j->z.xs) + i0, wq, wp, j->ws + j0,
                               j->bias ? j->bias + j0 : NULL, &y, (int32_t *)(j->scratch + j->z.slots + (size_t)t * j->z.slot)))
        return pml_err_set(err, PML_ERR_INTERNAL, "int8 product of '%s': sizes out of range", j->name);
    return PML_OK;
}

/* The rows are quantized first, all of them, and only then is any output written: so
 * an output may share bytes with the input (a layout's permute buffers may, as the
 * copies they stand in for did not yet exist when the product ran). */
pml_status pml_cpu_ctx_run_int8(pml_cpu_ctx *p, int n, int64_t mb, const pml_op_call *c, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int q = p->i8_param[n];
    const pml_plan_node *w = &pl->nodes[pl->params[q].node];
    const pml_cpu_stage *s = &p->stages[pl->nodes[n].stage];
    const pml_cpu_i8_layout *l = p->i8_layout[n];
    int8_job j = {.m = pml_cpu_numel(&c->out) / w->dims[0], .n = w->dims[0], .k = w->dims[1],
                  .x = {.x = c->in[0].data, .k = w->dims[1]}, .xs_static = p->i8_in_scale[q], .ws = p->i8_scale[q],
                  .bias = c->n_in >= 3 ? c->in[2].data : NULL, .w = p->i8[q], .packed = p->i8_bytes[q] > 0,
                  .y = {.y = c->out.data, .ld = w->dims[0]}, .scratch = s->i8_scratch, .name = pl->params[q].name};
    int T = pml_cpu_pool_threads(s->pool);
    int64_t tasks = split(j.m, j.n, j.k, T, &j.rows, &j.cols);
    j.z = scratch_of(j.m, j.n, j.k, j.packed, tasks, j.rows, j.cols);
    if (l && l->src >= 0) j.x = (pml_cpu_i8_in){.x = pml_cpu_ctx_data(p, l->src, mb), .k = j.k, .row = l->xrow, .col16 = l->xcol16};
    ln_rows ln;
    if (l && l->ln_a >= 0) {
        ln = (ln_rows){.a = pml_cpu_ctx_data(p, l->ln_a, mb), .b = l->ln_b >= 0 ? pml_cpu_ctx_data(p, l->ln_b, mb) : NULL,
                       .w = pml_cpu_ctx_data(p, l->ln_w, mb), .bias = pml_cpu_ctx_data(p, l->ln_bias, mb),
                       .h = l->ln_h >= 0 ? pml_cpu_ctx_data(p, l->ln_h, mb) : NULL, .eps = l->ln_eps, .k = j.k};
        j.x = (pml_cpu_i8_in){.k = j.k, .make_rows = ln_make_rows, .ctx = &ln};
    }
    if (l && l->n_dest) {
        float *base = pml_cpu_ctx_data(p, l->dest[0], mb);
        int64_t *col = (int64_t *)(j.scratch + j.z.col);
        for (int64_t c16 = 0; c16 < (j.n + 15) / 16; c16++)
            col[c16] = ((float *)pml_cpu_ctx_data(p, l->dest[l->cdest[c16]], mb) - base) + l->col16[c16];
        j.y = (pml_cpu_i8_out){.y = base, .row = l->row, .col16 = col};
    }
    if (j.m == 0) return PML_OK;
    j.qrows = (j.m + tasks - 1) / tasks;
    pml_status st = pml_cpu_pool_run(tasks > 1 ? s->pool : NULL, (j.m + j.qrows - 1) / j.qrows, quantize_task, &j, err);
    return st ? st : pml_cpu_pool_run(tasks > 1 ? s->pool : NULL, tasks, product_task, &j, err);
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
    for (int n = 0; p->i8_layout && n < p->plan->n_nodes; n++) pml_cpu_i8_free_layout(p->i8_layout[n]);
    free(p->i8_layout), free(p->i8_skip);
    free(p->i8), free(p->i8_scale), free(p->i8_in_scale), free(p->i8_param);
    free(p->obs_param), free(p->obs_absmax);
}

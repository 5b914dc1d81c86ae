/* movement.c — reshape, permute, slice, concat, expand and pad: copies that move whole
 * elements, so they work for any element type by its size (f32, f64, i32, ...). Rows
 * that are contiguous on both sides are memcpy'd; a permute that moves the last axis is
 * copied in tiles; the rest go through the iterator.
 *
 * A large permute or slice is split over the stage's pool (c->pool) by its outermost
 * axis, each task copying whole rows of it: the copies around attention (the heads cut
 * out of the qkv product and put back) would otherwise be the one part of a GPT
 * forward that a second thread leaves alone (docs/perf.md). A copy moves the same
 * elements wherever it runs, so the bits cannot depend on the thread count. */
#include "core/vectorize.h"

#include "cpu.h"
#include "pool.h"

#include <string.h>

#define TILE 32

/* The least bytes a copy splits over a pool for, and about how many a task moves:
 * below them waking a worker costs more than the share it would take. */
enum { SPLIT_BYTES = 64 << 10, TASK_BYTES = 16 << 10, TASKS_PER_THREAD = 4 };

int64_t pml_cpu_copy_tasks(const struct pml_cpu_pool *pool, int64_t outer, size_t bytes)
{
    int64_t T = pml_cpu_pool_threads(pool);
    if (T < 2 || bytes < SPLIT_BYTES || outer < 2) return 1;
    int64_t n = T * TASKS_PER_THREAD, by_size = (int64_t)(bytes / TASK_BYTES);
    if (n > by_size) n = by_size;
    return n < outer ? (n < 2 ? 1 : n) : outer;
}

/* A copy whose output rows read the input with a stride (a permute that moves the last
 * axis) walks the input one cache line per element. Here axis `k` is the one the input
 * is contiguous along: the (k, last) plane is copied in TILE x TILE blocks, so both
 * sides stay in cache (perf: the row-by-row gather was 8% of a GPT step). */
static void tiled_transpose(const pml_cpu_iter *it, int k, char *out, const char *in, size_t es)
{
    int R = it->rank;
    int64_t A = it->dims[k], B = it->dims[R - 1];
    int64_t sok = it->st[0][k], sib = it->st[1][R - 1];
    int64_t idx[PML_MAX_RANK] = {0}, bo = 0, bi = 0, planes = it->numel / (A * B);
    for (int64_t p = 0; p < planes; p++) {
#define BLOCKS(E)                                                                               \
    do {                                                                                        \
        E *o = (E *)out + bo;                                                                   \
        const E *x = (const E *)in + bi;                                                        \
        for (int64_t i0 = 0; i0 < A; i0 += TILE)                                                \
            for (int64_t j0 = 0; j0 < B; j0 += TILE) {                                          \
                int64_t i1 = i0 + TILE < A ? i0 + TILE : A, j1 = j0 + TILE < B ? j0 + TILE : B; \
                for (int64_t i = i0; i < i1; i++)                                               \
                    for (int64_t j = j0; j < j1; j++) o[i * sok + j] = x[i + j * sib];          \
            }                                                                                   \
    } while (0)
        switch (es) {
        case 1:
            BLOCKS(uint8_t);
            break;
        case 2:
            BLOCKS(uint16_t);
            break;
        case 4:
            BLOCKS(uint32_t);
            break;
        default:
            BLOCKS(uint64_t);
            break;
        }
#undef BLOCKS
        /* the next plane: an odometer over every axis but k and the last */
        for (int d = R - 2; d >= 0; d--) {
            if (d == k) continue;
            bo += it->st[0][d];
            bi += it->st[1][d];
            if (++idx[d] < it->dims[d]) break;
            bo -= it->st[0][d] * it->dims[d];
            bi -= it->st[1][d] * it->dims[d];
            idx[d] = 0;
        }
    }
}

/* Copies rows described by `it` (operand 0: out, operand 1: in) element by element. A
 * row that repeats one value into contiguous output (an expand along the last axis:
 * layernorm's backward) is a fill, which the compiler vectorises; with the output's
 * stride left variable it stored one element at a time. */
static void strided_copy(pml_cpu_iter *it, char *out, const char *in, size_t es)
{
    int64_t rows = pml_cpu_iter_rows(it), len = it->dims[it->rank - 1];
    int64_t so = it->st[0][it->rank - 1], si = it->st[1][it->rank - 1];
    if (so == 1 && si > 1 && len > 1 && es <= 8)
        for (int k = it->rank - 2; k >= 0; k--)
            if (it->st[1][k] == 1 && it->dims[k] > 1) {
                tiled_transpose(it, k, out, in, es);
                return;
            }
#define COPY(E)                                                      \
    for (int64_t r = 0; r < rows; r++, pml_cpu_iter_next(it)) {      \
        E *o = (E *)out + it->off[0];                                \
        const E *x = (const E *)in + it->off[1];                     \
        if (so == 1 && si == 1)                                      \
            memcpy(o, x, (size_t)len * sizeof(E));                   \
        else if (so == 1 && si == 0) {                               \
            E v = x[0];                                              \
            for (int64_t i = 0; i < len; i++) o[i] = v;              \
        } else if (si == 0)                                          \
            for (int64_t i = 0; i < len; i++) o[i * so] = x[0];      \
        else                                                         \
            for (int64_t i = 0; i < len; i++) o[i * so] = x[i * si]; \
    }
    switch (es) {
    case 1:
        COPY(uint8_t) break;
    case 2:
        COPY(uint16_t) break;
    case 4:
        COPY(uint32_t) break;
    default:
        COPY(uint64_t) break;
    }
#undef COPY
}

/* [outer, n, inner] around `axis`. */
static void split_at(const pml_view *v, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++) *outer *= v->dims[k];
    for (int k = axis + 1; k < v->rank; k++) *inner *= v->dims[k];
    *n = v->dims[axis];
}

/* A permute's copy, its output's first axis cut into `tasks` ranges. */
typedef struct permute_job {
    int R;
    const int64_t *dims;
    int64_t (*st)[PML_MAX_RANK]; /* element strides: out, in */
    char *out;
    const char *in;
    size_t es;
    int64_t tasks;
} permute_job;

static pml_status permute_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker, (void)err;
    const permute_job *j = ctx;
    int64_t n = j->dims[0], lo = n * t / j->tasks, hi = n * (t + 1) / j->tasks;
    int64_t dims[PML_MAX_RANK];
    memcpy(dims, j->dims, sizeof(int64_t) * (size_t)j->R);
    dims[0] = hi - lo;
    pml_cpu_iter it;
    pml_cpu_iter_setup(&it, j->R, dims, 2, j->st);
    strided_copy(&it, j->out + (size_t)(lo * j->st[0][0]) * j->es, j->in + (size_t)(lo * j->st[1][0]) * j->es, j->es);
    return PML_OK;
}

static pml_status permute(const pml_op_call *c, size_t es, pml_err *err)
{
    const pml_view *x = &c->in[0], *o = &c->out;
    int R = x->rank, seen[PML_MAX_RANK] = {0};
    int64_t in_st[PML_MAX_RANK], st[2][PML_MAX_RANK];
    if (c->n_attr != R || o->rank != R) goto bad;
    for (int64_t s = 1, k = R - 1; k >= 0; k--) {
        in_st[k] = s;
        s *= x->dims[k];
    }
    for (int64_t s = 1, k = R - 1; k >= 0; k--) {
        int64_t p = c->attr[k];
        if (p < 0 || p >= R || seen[p] || o->dims[k] != x->dims[p]) goto bad;
        seen[p] = 1;
        st[0][k] = s;
        st[1][k] = in_st[p];
        s *= o->dims[k];
    }
    permute_job j = {.R = R, .dims = o->dims, .st = st, .out = o->data, .in = x->data, .es = es};
    j.tasks = pml_cpu_copy_tasks(c->pool, o->dims[0], (size_t)pml_cpu_numel(o) * es);
    return pml_cpu_pool_run(j.tasks > 1 ? c->pool : NULL, j.tasks, permute_task, &j, err);
bad:
    return pml_err_set(err, PML_ERR_INVALID_ARG, "permute: attr is not a permutation taking the input to the output");
}

/* A slice's or pad's copy between [outer, n, inner] (big) and [outer, m, inner] (small),
 * rows start + k step of big; outer cut into `tasks` ranges. */
typedef struct slice_job {
    int pad;
    int64_t outer, n, m, start, step;
    char *bd, *sd;
    size_t row; /* bytes of one [inner] row */
    int64_t tasks;
} slice_job;

static pml_status slice_task(void *ctx, int64_t t, int worker, pml_err *err)
{
    (void)worker, (void)err;
    const slice_job *j = ctx;
    int64_t n = j->n, m = j->m, start = j->start, step = j->step;
    size_t row = j->row;
    for (int64_t p = j->outer * t / j->tasks; p < j->outer * (t + 1) / j->tasks; p++) {
        if (step == 1) {
            char *b = j->bd + (size_t)(p * n + start) * row, *s = j->sd + (size_t)(p * m) * row;
            if (j->pad)
                memcpy(b, s, row * (size_t)m);
            else
                memcpy(s, b, row * (size_t)m);
            continue;
        }
        for (int64_t k = 0; k < m; k++) {
            char *b = j->bd + (size_t)(p * n + start + k * step) * row, *s = j->sd + (size_t)(p * m + k) * row;
            if (j->pad)
                memcpy(b, s, row);
            else
                memcpy(s, b, row);
        }
    }
    return PML_OK;
}

/* slice (x into out) and pad (x into zeros at the slice of out). */
static pml_status slice_or_pad(const pml_op_call *c, size_t es, pml_err *err)
{
    int pad = c->op == PML_OP_PAD;
    const pml_view *big = pad ? &c->out : &c->in[0], *small = pad ? &c->in[0] : &c->out;
    const char *name = pml_op_name(c->op);
    if (c->n_attr < 4 || big->rank != small->rank || c->attr[0] < 0 || c->attr[0] >= big->rank) goto bad;
    int axis = (int)c->attr[0];
    int64_t start = c->attr[1], step = c->attr[3], outer, n, inner, m = small->dims[axis];
    for (int k = 0; k < big->rank; k++)
        if (k != axis && big->dims[k] != small->dims[k]) goto bad;
    split_at(big, axis, &outer, &n, &inner);
    if (step <= 0 || start < 0 || (m > 0 && start + (m - 1) * step >= n)) goto bad;
    if (pad) memset(big->data, 0, (size_t)pml_cpu_numel(big) * es);
    slice_job j = {pad, outer, n, m, start, step, big->data, small->data, (size_t)inner * es, 1};
    if (!pad) j.tasks = pml_cpu_copy_tasks(c->pool, outer, (size_t)pml_cpu_numel(small) * es);
    return pml_cpu_pool_run(j.tasks > 1 ? c->pool : NULL, j.tasks, slice_task, &j, err);
bad:
    return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: attr [axis, start, stop, step] does not fit the shapes", name);
}

static pml_status concat(const pml_op_call *c, size_t es, pml_err *err)
{
    const pml_view *o = &c->out;
    if (c->n_attr < 1 || c->attr[0] < 0 || c->attr[0] >= o->rank)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "concat: attr[0] is not an axis of the output");
    int axis = (int)c->attr[0];
    int64_t total = 0, outer, n, inner;
    for (int i = 0; i < c->n_in; i++) {
        const pml_view *x = &c->in[i];
        int ok = x->rank == o->rank && x->dtype == o->dtype;
        for (int k = 0; ok && k < o->rank; k++) ok = k == axis || x->dims[k] == o->dims[k];
        if (!ok) return pml_err_set(err, PML_ERR_INVALID_ARG, "concat: input %d does not fit the output", i);
        total += x->dims[axis];
    }
    if (total != o->dims[axis])
        return pml_err_set(err, PML_ERR_INVALID_ARG, "concat: inputs add up to %lld along axis %d, output has %lld",
                           (long long)total, axis, (long long)o->dims[axis]);
    split_at(o, axis, &outer, &n, &inner);
    char *od = o->data;
    for (int64_t p = 0; p < outer; p++)
        for (int i = 0; i < c->n_in; i++) {
            size_t block = (size_t)(c->in[i].dims[axis] * inner) * es;
            memcpy(od, (const char *)c->in[i].data + (size_t)p * block, block);
            od += block;
        }
    return PML_OK;
}

pml_status pml_cpu_movement(const pml_op_call *c, pml_err *err)
{
    pml_dtype t = c->out.dtype;
    size_t es = pml_dtype_size(t);
    const char *name = pml_op_name(c->op);
    if (es == 0 || es > 8 || (es & (es - 1))) return pml_cpu_unsupported(c, t, err);
    if (c->in[0].dtype != t)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: input %s, output %s: element types must match", name,
                           pml_dtype_name(c->in[0].dtype), pml_dtype_name(t));
    if (pml_cpu_numel(&c->out) == 0) return PML_OK;
    switch (c->op) {
    case PML_OP_RESHAPE:
        if (pml_cpu_numel(&c->in[0]) != pml_cpu_numel(&c->out))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "reshape: input and output differ in size");
        if (c->out.data != c->in[0].data) memcpy(c->out.data, c->in[0].data, (size_t)pml_cpu_numel(&c->out) * es);
        return PML_OK;
    case PML_OP_PERMUTE:
        return permute(c, es, err);
    case PML_OP_SLICE:
    case PML_OP_PAD:
        return slice_or_pad(c, es, err);
    case PML_OP_CONCAT:
        return concat(c, es, err);
    case PML_OP_EXPAND: {
        const pml_view *x = &c->in[0];
        pml_cpu_iter it;
        if (pml_cpu_iter_init(&it, &c->out, 1, &x, name, err)) return err ? err->code : PML_ERR_INVALID_ARG;
        strided_copy(&it, c->out.data, x->data, es);
        return PML_OK;
    }
#define PML_CASE(e) case PML_OP_##e:
#define PML_OWN_MOVEMENT
#include "pml/op_cases.h"
        break;
    }
    return pml_cpu_other_family(c, err);
}

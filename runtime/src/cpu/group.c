/* group.c — a fused group run in tiles (see kernels.h, pml_cpu_group_op): an
 * element-wise kernel of the plan, or a row kernel (element-wise ops around reductions
 * over the last axes, such as layernorm and log-softmax).
 *
 * Every op's output has the group's first axis, and the group is cut along it into
 * tiles of about TILE_ELEMS elements of its widest op. For each tile every op runs, in
 * order, through the ordinary kernels on tile-sized views: an intermediate lives in a
 * scratch slot that stays in L1/L2 for the next op instead of a buffer of the whole
 * tensor, and a materialised value is written into its rows of the real buffer. A
 * reduction keeps its axes and never reduces the first one, so a tile holds whole rows
 * and reduces each as the whole tensor would. An input from outside the group is cut
 * to the tile's rows when it has the op's rank and the first axis; otherwise (smaller
 * rank, or a first axis of 1) it broadcasts over that axis and every tile reads all of
 * it. Each element goes through the same scalar expression, and each row through the
 * same reduction order, as unfused, so results do not change. Tiles are independent:
 * a stage's pool (pool.h) runs them on its threads, each worker with scratch of its
 * own, and the bits are the same at any thread count. */
#include "cpu.h"

#include <string.h>

#include "pool.h"

enum { TILE_ELEMS = 4096 };

static size_t elem_size(pml_dtype t) { return pml_dtype_size(t); }

/* Ops a tile can run: element-wise, with no dependence on an element's position, and
 * sum, max and mean over one axis other than the first, keeping it. */
static int tileable_op(const pml_op_call *c)
{
    pml_opcode op = c->op;
    if ((unsigned)op >= PML_OP_COUNT) return 0;
    if (op == PML_OP_SUM || op == PML_OP_MAX || op == PML_OP_MEAN)
        return c->n_attr >= 2 && c->attr[0] >= 1 && c->attr[0] < c->in[0].rank && c->attr[1] != 0;
    pml_op_class cls = pml_op_class_of(op);
    if (cls == PML_OPC_UNARY || cls == PML_OPC_BINARY) return 1;
    /* not const and arange (FILL: sources); dropout's mask is keyed by the element's
     * index in the tensor; causal_mask depends on the row and column */
    return op == PML_OP_WHERE || op == PML_OP_CAST;
}

int pml_cpu_group_tileable(const pml_cpu_group_op *ops, int n)
{
    if (n < 1) return 0;
    const pml_view *s = &ops[n - 1].call.out;
    int64_t widest[PML_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        const pml_op_call *c = &ops[i].call;
        if (!tileable_op(c) || c->n_in > PML_GROUP_MAX_IN || c->out.rank != s->rank) return 0;
        if (s->rank > 0 && c->out.dims[0] != s->dims[0]) return 0;
        for (int d = 1; d < s->rank; d++)
            if (c->out.dims[d] > widest[d]) widest[d] = c->out.dims[d];
        for (int k = 0; k < c->n_in; k++)
            if (ops[i].from[k] >= i) return 0; /* an op reads only earlier ones */
    }
    /* past the first axis, every op spans the widest extent or 1 (a reduced axis) */
    for (int i = 0; i < n; i++)
        for (int d = 1; d < s->rank; d++)
            if (ops[i].call.out.dims[d] != widest[d] && ops[i].call.out.dims[d] != 1) return 0;
    return 1;
}

/* How a group is cut into tiles. Its first `lead` axes, over which every op spans the
 * whole space, are read as one axis of `rows` indexes (their product) of `row` elements
 * each, the widest op's: a [B, T, C] group whose every op spans B and T tiles over B·T
 * rows of C, not over B rows of T·C, which for a long T left no tile small enough to
 * stay in cache. An outside input is then either cut with the op (it spans those axes
 * too) or read whole by every tile (it spans none of them: a bias, a leading 1); one
 * that spans some but not others (a [T, C] position table) keeps the axes apart, so
 * `lead` is the largest count that keeps every input one or the other. */
typedef struct group_space {
    int rank, lead;
    int64_t ext[PML_MAX_RANK]; /* the space's extent on each axis: its widest op's */
    int64_t rows, row;
} group_space;

enum { CUT = 1, WHOLE = 2 };

/* A reduction's axis (pml_cpu_group_tileable allows only those with one), else -1. */
static int64_t reduced_axis(const pml_op_call *c)
{
    return c->n_attr >= 2 && pml_op_class_of(c->op) == PML_OPC_REDUCE ? c->attr[0] : -1;
}

/* Input x's form against the first `lead` axes of a space of rank R and extents ext
 * (broadcasting aligns shapes at their last axes): CUT, WHOLE, or 0 for neither. */
static int input_form(const pml_view *x, int R, const int64_t *ext, int lead)
{
    int cut = x->rank == R, whole = 1;
    for (int d = 0; d < lead; d++) {
        int64_t have = d >= R - x->rank ? x->dims[d - (R - x->rank)] : -1; /* -1: x lacks axis d */
        if (have != ext[d]) cut = 0;
        if (have != 1 && have != -1) whole = 0;
    }
    return cut ? CUT : whole ? WHOLE : 0;
}

static group_space space_of(const pml_cpu_group_op *ops, int n)
{
    group_space g = {.rank = ops[n - 1].call.out.rank, .rows = 1};
    int R = g.rank;
    for (int d = 0; d < R; d++)
        for (int i = 0; i < n; i++)
            if (ops[i].call.out.dims[d] > g.ext[d]) g.ext[d] = ops[i].call.out.dims[d];
    g.lead = R > 0 ? 1 : 0; /* the first axis always works (pml_cpu_group_tileable) */
    for (int k = 2; k <= R; k++) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            const pml_op_call *c = &ops[i].call;
            int64_t axis = reduced_axis(c);
            if (c->out.dims[k - 1] != g.ext[k - 1] || (axis >= 0 && axis < k)) ok = 0;
            for (int j = 0; j < c->n_in && ok; j++)
                if (ops[i].from[j] < 0 && !input_form(&c->in[j], R, g.ext, k)) ok = 0;
        }
        if (!ok) break;
        g.lead = k;
    }
    for (int d = 0; d < g.lead; d++) g.rows *= g.ext[d];
    for (int i = 0; i < n && g.rows > 0; i++) {
        int64_t r = pml_cpu_numel(&ops[i].call.out) / g.rows;
        if (r > g.row) g.row = r;
    }
    return g;
}

/* Rows of the space per tile, and the scratch a group of n ops needs: a tile-sized slot
 * per op, of the widest element type. */
static int64_t tile_rows(const group_space *g) { return g->row > 0 && g->row < TILE_ELEMS ? TILE_ELEMS / g->row : 1; }

static size_t scratch_of(const group_space *g, int n) { return (size_t)n * (size_t)(tile_rows(g) * g->row) * 8; }

/* v with its first `lead` axes as one (a CUT value), or without them (a WHOLE one). */
static pml_view flat_view(const pml_view *v, int R, int lead, int form)
{
    pml_view f = *v;
    int skip = form == CUT ? lead : lead - (R - v->rank); /* axes of v among the first `lead` */
    if (skip < 0) skip = 0;
    f.rank = v->rank - skip + (form == CUT ? 1 : 0);
    int at = 0;
    if (form == CUT) {
        f.dims[at] = 1;
        for (int d = 0; d < lead; d++) f.dims[at] *= v->dims[d];
        at++;
    }
    for (int d = skip; d < v->rank; d++) f.dims[at++] = v->dims[d];
    return f;
}

static size_t run_bytes(int n);

size_t pml_cpu_group_scratch(const pml_cpu_group_op *ops, int n, int threads)
{
    if (n < 1) return 0;
    group_space g = space_of(ops, n);
    return run_bytes(n) + scratch_of(&g, n) * (size_t)(threads > 1 ? threads : 1);
}

/* One run of a group: everything its tiles share, made once (group_task reads it). It
 * lives at the start of the caller's scratch, its arrays after it (carve), so a run
 * allocates nothing; the workers' slots follow. */
typedef struct group_run {
    const pml_cpu_group_op *ops;
    int n;
    int64_t rows, per; /* rows of the space; rows a tile */
    size_t slot;       /* bytes of one op's tile in scratch */
    char *scratch;     /* per worker: n slots, worker_bytes apart */
    size_t worker_bytes;
    /* Every op's call over the flattened space: its output and its outside inputs (CUT
     * ones are sliced per tile); a reduction's axis moves with them. */
    pml_op_call *flat;
    pml_view (*flat_in)[PML_GROUP_MAX_IN];
    uint8_t (*cut)[PML_GROUP_MAX_IN];
    int64_t (*axis_attr)[2];
} group_run;

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Bytes of a group_run of n ops and its arrays, a multiple of 64. */
static size_t run_bytes(int n)
{
    size_t k = (size_t)n;
    return round64(sizeof(group_run)) + round64(k * sizeof(pml_op_call)) +
           round64(k * sizeof(pml_view[PML_GROUP_MAX_IN])) + round64(k * PML_GROUP_MAX_IN) +
           round64(k * sizeof(int64_t[2]));
}

/* The group_run at `at` with its arrays laid out after it. */
static group_run *carve(char *at, int n)
{
    size_t k = (size_t)n;
    group_run *G = (group_run *)at;
    at += round64(sizeof(group_run));
    G->flat = (pml_op_call *)at;
    at += round64(k * sizeof(pml_op_call));
    G->flat_in = (pml_view(*)[PML_GROUP_MAX_IN])at;
    at += round64(k * sizeof(pml_view[PML_GROUP_MAX_IN]));
    G->cut = (uint8_t(*)[PML_GROUP_MAX_IN])at;
    at += round64(k * PML_GROUP_MAX_IN);
    G->axis_attr = (int64_t(*)[2])at;
    return G;
}

/* Tile `task` (rows task * per on) on `worker`'s scratch: every op of the group in order. */
static pml_status group_task(void *ctx, int64_t task, int worker, pml_err *err)
{
    const group_run *G = ctx;
    const pml_cpu_group_op *ops = G->ops;
    int64_t rows = G->rows, r0 = task * G->per, t = r0 + G->per < rows ? G->per : rows - r0;
    char *scratch = G->scratch + (size_t)worker * G->worker_bytes;
    pml_view tile_out[PML_GROUP_MAX_OPS];
    for (int i = 0; i < G->n; i++) {
        pml_op_call c = G->flat[i];
        pml_view in[PML_GROUP_MAX_IN];
        for (int k = 0; k < c.n_in; k++) {
            const pml_view *x = &G->flat_in[i][k];
            if (ops[i].from[k] >= 0)
                in[k] = tile_out[ops[i].from[k]];
            else if (G->cut[i][k]) {
                in[k] = *x; /* this tile's rows of an input that spans the space's first axes */
                in[k].dims[0] = t;
                in[k].data = (char *)x->data + (size_t)(r0 * (pml_cpu_numel(x) / rows)) * elem_size(x->dtype);
            } else
                in[k] = *x;
        }
        c.in = in;
        if (c.out.rank > 0) c.out.dims[0] = t;
        int64_t own = rows > 0 ? pml_cpu_numel(&G->flat[i].out) / rows : 0; /* this op's elements per row */
        c.out.data = c.out.data ? (char *)c.out.data + (size_t)(r0 * own) * elem_size(c.out.dtype)
                                : scratch + (size_t)i * G->slot;
        tile_out[i] = c.out;
        pml_status st = pml_cpu_run(&c, err);
        if (st) return st;
    }
    return PML_OK;
}

pml_status pml_cpu_run_group(const pml_cpu_group_op *ops, int n, pml_cpu_pool *pool, void *scratch,
                             size_t scratch_bytes, pml_err *err)
{
    if (!pml_cpu_group_tileable(ops, n))
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "fused group of %d ops: not element-wise and row ops over one first axis", n);
    group_space g = space_of(ops, n);
    int threads = pml_cpu_pool_threads(pool);
    if (n > PML_GROUP_MAX_OPS) return pml_err_set(err, PML_ERR_UNSUPPORTED, "fused group of %d ops is too long", n);
    size_t worker_bytes = scratch_of(&g, n), need = run_bytes(n) + worker_bytes * (size_t)threads;
    if (!scratch || scratch_bytes < need)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "fused group: %zu bytes of scratch, %zu needed for %d threads",
                           scratch_bytes, need, threads);
    if ((uintptr_t)scratch % 64)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "fused group: scratch is not 64-byte aligned");
    int R = g.rank;
    group_run *G = carve(scratch, n);
    G->ops = ops;
    G->n = n;
    G->rows = g.rows;
    G->per = tile_rows(&g);
    G->slot = (size_t)(G->per * g.row) * 8;
    G->scratch = (char *)scratch + run_bytes(n);
    G->worker_bytes = worker_bytes;
    for (int i = 0; i < n; i++) {
        const pml_op_call *c = &ops[i].call;
        G->flat[i] = *c;
        G->flat[i].out = g.lead ? flat_view(&c->out, R, g.lead, CUT) : c->out;
        for (int k = 0; k < c->n_in; k++) {
            int form = ops[i].from[k] >= 0 || !g.lead ? 0 : input_form(&c->in[k], R, g.ext, g.lead);
            G->cut[i][k] = form == CUT && g.rows > 1;
            G->flat_in[i][k] = form ? flat_view(&c->in[k], R, g.lead, form) : c->in[k];
        }
        if (reduced_axis(c) >= 0) {
            G->axis_attr[i][0] = reduced_axis(c) - (g.lead - 1);
            G->axis_attr[i][1] = c->attr[1];
            G->flat[i].attr = G->axis_attr[i];
            G->flat[i].n_attr = 2;
        }
    }
    int64_t tiles = G->per > 0 ? (G->rows + G->per - 1) / G->per : 0;
    return pml_cpu_pool_run(pool, tiles, group_task, G, err);
}

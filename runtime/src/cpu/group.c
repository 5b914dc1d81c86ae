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
 * it. A group of unary and binary ops (f32 or 16-bit storage) whose outside inputs are
 * whole or scalars (GELU and its backward) runs a tile a strip at a time instead: every
 * op on a strip of a few hundred elements, through the f32 kernels' row loops directly,
 * so a value passes from op to op in L1 (strip_task). Each element goes through the same scalar expression, and each
 * row through the same reduction order, as unfused, so results do not change. Tiles are independent:
 * a stage's pool (pool.h) runs them on its threads, each worker with scratch of its
 * own, and the bits are the same at any thread count. */
#include "cpu.h"

#include <string.h>

#include "convert.h"
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

/* Rows of the space per tile. */
static int64_t tile_rows(const group_space *g) { return g->row > 0 && g->row < TILE_ELEMS ? TILE_ELEMS / g->row : 1; }

/* strip_task runs a tile STRIP elements at a time, its ops' strips STRIP_STRIDE floats
 * apart where the tile's slots are: 512 floats of each op stay in L1 through most of a
 * group, and the odd count of lines between two spreads them over L1's sets. */
enum { STRIP = 512, STRIP_STRIDE = STRIP + 16 };

/* Bytes from one op's slot to the next: a tile of the widest element type, and five
 * 64-byte lines more, so that slots do not start at addresses 4 KiB apart (loads from
 * one and stores to another then falsely wait on each other: 22% of the GPT example's
 * fused-group time), and room for a strip. */
static size_t slot_of(const group_space *g)
{
    size_t tile = (size_t)(tile_rows(g) * g->row) * 8 + 320, strip = STRIP_STRIDE * sizeof(float);
    return tile > strip ? tile : strip;
}

/* The scratch a group of n ops needs per thread: a slot per op, and three strips more
 * (strip_task's widened inputs and a rounded output). */
static size_t scratch_of(const group_space *g, int n)
{
    return (size_t)n * slot_of(g) + 3 * STRIP_STRIDE * sizeof(float);
}

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
    int64_t row;          /* elements of the space per row */
    int strips;           /* every op f32, unary or binary, of the space's size: strip_task runs it */
    struct strip_op *sop; /* then: each op as strip_task reads it */
    int ln;               /* ops ln .. ln + 8 are a layernorm that ln_rows.c computes (-1: none) */
    int64_t ln_len;       /* its rows' length: the last axis */
} group_run;

/* An op as strip_task runs it: input k is op from[k]'s strip, or in[k] + the strip's
 * first element times st[k] (0: a scalar) of dtype in_t[k]; its output, NULL for an
 * intermediate, of dtype out_t. */
typedef struct strip_op {
    pml_opcode op;
    int n_in;
    int16_t from[2];
    pml_dtype in_t[2], out_t;
    const void *in[2];
    int64_t st[2];
    void *out;
} strip_op;

static size_t round64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Bytes of a group_run of n ops and its arrays, a multiple of 64. */
static size_t run_bytes(int n)
{
    size_t k = (size_t)n;
    return round64(sizeof(group_run)) + round64(k * sizeof(pml_op_call)) +
           round64(k * sizeof(pml_view[PML_GROUP_MAX_IN])) + round64(k * PML_GROUP_MAX_IN) +
           round64(k * sizeof(int64_t[2])) + round64(k * sizeof(strip_op));
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
    at += round64(k * sizeof(int64_t[2]));
    G->sop = (strip_op *)at;
    return G;
}

static int strip_dtype(pml_dtype t) { return t == PML_F32 || pml_cpu_is_half(t); }

/* Whether every op is a unary or binary op over the whole space, f32 or 16-bit, each
 * outside input a scalar or the op's size: then a tile is a flat run of elements, and
 * G->sop says how strip_task reads each op. */
static int runs_in_strips(group_run *G, int64_t space)
{
    for (int i = 0; i < G->n; i++) {
        const pml_op_call *c = &G->ops[i].call;
        pml_op_class cls = pml_op_class_of(c->op);
        if ((cls != PML_OPC_UNARY && cls != PML_OPC_BINARY) || !strip_dtype(c->out.dtype) || c->n_in > 2 ||
            pml_cpu_numel(&c->out) != space)
            return 0;
        strip_op *o = &G->sop[i];
        *o = (strip_op){
            .op = c->op, .n_in = c->n_in, .from = {-1, -1}, .st = {1, 1}, .out = c->out.data, .out_t = c->out.dtype};
        for (int k = 0; k < c->n_in; k++) {
            int64_t e = G->ops[i].from[k] >= 0 ? space : pml_cpu_numel(&c->in[k]);
            if (!strip_dtype(c->in[k].dtype) || (e != 1 && e != space)) return 0;
            o->from[k] = G->ops[i].from[k];
            o->in[k] = c->in[k].data;
            o->in_t[k] = c->in[k].dtype;
            o->st[k] = e == 1 ? 0 : 1;
        }
    }
    return 1;
}

/* Tile `task` a strip at a time: every op of the group runs on a strip of STRIP
 * elements, in order, before the next strip, so what one op writes the next reads
 * from L1 (a tile of every op in turn, as group_task does, keeps them in L2). Values
 * pass between ops in f32: a 16-bit input from outside is widened into a strip of
 * scratch, and a 16-bit result is rounded to its dtype (into its output, if it has
 * one) and widened back, so the next op reads what it would read from storage. Each
 * element sees the same ops and roundings as unfused, so the bits are the same. */
static pml_status strip_task(const group_run *G, int64_t r0, int64_t t, int worker, pml_err *err)
{
    float *scratch = (float *)(G->scratch + (size_t)worker * G->worker_bytes);
    float *widened[2] = {scratch + (size_t)G->n * STRIP_STRIDE, scratch + (size_t)(G->n + 1) * STRIP_STRIDE};
    uint16_t *rounded = (uint16_t *)(scratch + (size_t)(G->n + 2) * STRIP_STRIDE);
    float *at[PML_GROUP_MAX_OPS]; /* each op's strip: in scratch, or in its f32 output */
    int64_t e1 = (r0 + t) * G->row;
    for (int64_t e = r0 * G->row; e < e1; e += STRIP) {
        int64_t len = e1 - e < STRIP ? e1 - e : STRIP;
        for (int i = 0; i < G->n; i++) {
            const strip_op *o = &G->sop[i];
            const float *in[2] = {NULL, NULL};
            for (int k = 0; k < o->n_in; k++) {
                if (o->from[k] >= 0)
                    in[k] = at[o->from[k]];
                else if (o->in_t[k] == PML_F32)
                    in[k] = (const float *)o->in[k] + e * o->st[k];
                else {
                    const char *x = (const char *)o->in[k] + (size_t)(e * o->st[k]) * 2;
                    pml_cpu_widen(widened[k], x, o->in_t[k], (size_t)(o->st[k] ? len : 1));
                    in[k] = widened[k];
                }
            }
            int direct = o->out_t == PML_F32 && o->out;
            at[i] = direct ? (float *)o->out + e : scratch + (size_t)i * STRIP_STRIDE;
            if (pml_cpu_f32_strip(o->op, at[i], in[0], o->st[0], in[1], o->st[1], len))
                return pml_err_set(err, PML_ERR_UNSUPPORTED, "fused group: %s has no strip kernel", pml_op_name(o->op));
            if (o->out_t != PML_F32) {
                uint16_t *to = o->out ? (uint16_t *)o->out + e : rounded;
                pml_cpu_narrow(to, o->out_t, at[i], (size_t)len);
                pml_cpu_widen(at[i], to, o->out_t, (size_t)len);
            }
        }
    }
    return PML_OK;
}

/* Whether group op o is `op` storing f32, its outside inputs f32 too. */
static int is_f32_op(const pml_cpu_group_op *o, pml_opcode op)
{
    if (o->call.op != op || o->call.out.dtype != PML_F32) return 0;
    for (int k = 0; k < o->call.n_in; k++)
        if (o->call.in[k].dtype != PML_F32 && o->from[k] < 0) return 0;
    return 1;
}

/* Whether outside input k of op o spans the last axis alone, all n of it (a weight or
 * bias every row of the layernorm reads). */
static int last_axis_input(const pml_cpu_group_op *o, int k, int64_t n)
{
    const pml_view *v = &o->call.in[k];
    return o->from[k] < 0 && v->rank >= 1 && v->dims[v->rank - 1] == n && pml_cpu_numel(v) == n;
}

/* The first op of nn's layernorm written op for op over the last axis (mean, sub, mul,
 * mean, add eps, rsqrt, mul, mul weight, add bias: stdlib/nn.pml), f32 throughout, whose
 * eight intermediates nothing outside those nine ops reads and no output keeps but the
 * three a backward pass keeps (the mean, the variance, the normalised rows); -1 if the
 * group has none. Such a run of ops goes to pml_cpu_layernorm_rows (cpu/ln_rows.c), which
 * computes the same expressions in the same order (same bits) four rows at a time,
 * where the tile otherwise ran nine kernels with a pass over the tile each. */
static int layernorm_at(const pml_cpu_group_op *ops, int n, const group_space *g)
{
    for (int j = 0; j + 9 <= n; j++) {
        const pml_cpu_group_op *o = ops + j;
        int R = g->rank;
        int64_t len = R > 0 ? g->ext[R - 1] : 0; /* a layernorm row: the last axis */
        int ok = len > 0 && is_f32_op(&o[0], PML_OP_MEAN) && o[0].call.n_attr >= 2 && o[0].call.attr[0] == R - 1 &&
                 o[0].call.attr[1] != 0 && o[0].call.in[0].rank == R;
        ok = ok && is_f32_op(&o[1], PML_OP_SUB) && o[1].from[1] == j && o[1].from[0] == o[0].from[0] &&
             (o[0].from[0] >= 0 || o[1].call.in[0].data == o[0].call.in[0].data);
        ok = ok && is_f32_op(&o[2], PML_OP_MUL) && o[2].from[0] == j + 1 && o[2].from[1] == j + 1;
        ok = ok && is_f32_op(&o[3], PML_OP_MEAN) && o[3].from[0] == j + 2 && o[3].call.n_attr >= 2 &&
             o[3].call.attr[0] == R - 1 && o[3].call.attr[1] != 0;
        ok = ok && is_f32_op(&o[4], PML_OP_ADD) && o[4].from[0] == j + 3 && o[4].from[1] < 0 &&
             pml_cpu_numel(&o[4].call.in[1]) == 1;
        ok = ok && is_f32_op(&o[5], PML_OP_RSQRT) && o[5].from[0] == j + 4;
        ok = ok && is_f32_op(&o[6], PML_OP_MUL) && o[6].from[0] == j + 1 && o[6].from[1] == j + 5;
        ok = ok && is_f32_op(&o[7], PML_OP_MUL) && o[7].from[0] == j + 6 && last_axis_input(&o[7], 1, len);
        ok = ok && is_f32_op(&o[8], PML_OP_ADD) && o[8].from[0] == j + 7 && last_axis_input(&o[8], 1, len);
        /* the input: an earlier op's value or an outside one of the space's shape */
        ok = ok && (o[0].from[0] >= 0 || input_form(&o[0].call.in[0], R, g->ext, g->lead) == CUT);
        /* kept for a backward pass: the mean, the variance, the normalised rows alone */
        for (int i = j; ok && i < j + 8; i++) ok = ops[i].call.out.data == NULL || i == j || i == j + 3 || i == j + 6;
        for (int i = j + 9; ok && i < n; i++)
            for (int k = 0; k < ops[i].call.n_in; k++)
                if (ops[i].from[k] >= j && ops[i].from[k] < j + 8) ok = 0;
        if (ok) return j;
    }
    return -1;
}

/* The layernorm at G->ln on a tile of t rows of the space: its input is `x` (a view of
 * the tile), its output written to `out`; each space row holds G->row / ln_len rows of
 * the layernorm (more than one when the space keeps a leading axis apart). */
static void layernorm_tile(const group_run *G, const pml_view *x, const pml_view *out, int64_t r0, int64_t t)
{
    const pml_op_call *eps = &G->flat[G->ln + 4], *w = &G->flat[G->ln + 7], *b = &G->flat[G->ln + 8];
    int64_t n = G->ln_len, per = G->row / n, rows = t * per;
    const float *a = x->data;
    float *o = out->data;
    /* the kept values' rows of this tile: the mean and variance one a row, the
     * normalised rows n a row */
    float *mean = G->flat[G->ln].out.data, *var = G->flat[G->ln + 3].out.data, *norm = G->flat[G->ln + 6].out.data;
    for (int64_t r = 0; r < rows; r += 4) {
        int64_t at = r0 * per + r;
        pml_cpu_ln_keep keep = {mean ? mean + at : NULL, var ? var + at : NULL, norm ? norm + at * n : NULL};
        pml_cpu_layernorm_rows(rows - r < 4 ? (int)(rows - r) : 4, a + r * n, NULL, NULL, n,
                               *(const float *)eps->in[1].data, w->in[1].data, b->in[1].data, o + r * n, &keep);
    }
}

/* Tile `task` (rows task * per on) on `worker`'s scratch: every op of the group in order. */
static pml_status group_task(void *ctx, int64_t task, int worker, pml_err *err)
{
    const group_run *G = ctx;
    const pml_cpu_group_op *ops = G->ops;
    int64_t rows = G->rows, r0 = task * G->per, t = r0 + G->per < rows ? G->per : rows - r0;
    if (G->strips) return strip_task(G, r0, t, worker, err);
    char *scratch = G->scratch + (size_t)worker * G->worker_bytes;
    pml_view tile_out[PML_GROUP_MAX_OPS];
    for (int i = 0; i < G->n; i++) {
        if (i == G->ln) { /* nine ops as one: ln_rows.c, making the last one's value and those kept */
            pml_view x = ops[i].from[0] >= 0 ? tile_out[ops[i].from[0]] : G->flat_in[i][0];
            if (ops[i].from[0] < 0) x.data = (char *)x.data + (size_t)(r0 * G->row) * sizeof(float);
            int last = i + 8;
            pml_view o = G->flat[last].out;
            if (o.rank > 0) o.dims[0] = t;
            o.data = o.data ? (char *)o.data + (size_t)(r0 * G->row) * sizeof(float) : scratch + (size_t)last * G->slot;
            layernorm_tile(G, &x, &o, r0, t);
            tile_out[last] = o;
            i = last;
            continue;
        }
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
    G->slot = slot_of(&g);
    G->scratch = (char *)scratch + run_bytes(n);
    G->worker_bytes = worker_bytes;
    G->row = g.row;
    G->strips = runs_in_strips(G, g.rows * g.row);
    G->ln = G->strips ? -1 : layernorm_at(ops, n, &g);
    G->ln_len = R > 0 ? g.ext[R - 1] : 0;
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

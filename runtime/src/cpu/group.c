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
 * same reduction order, as unfused, so results do not change. */
#include "cpu.h"

#include <string.h>

enum { TILE_ELEMS = 4096 };

static size_t elem_size(pml_dtype t) { return t == PML_F64 ? 8 : 4; }

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

/* The group's first axis (`rows`) and the elements per index of it of its widest op. */
static void space_rows(const pml_cpu_group_op *ops, int n, int64_t *rows, int64_t *row)
{
    const pml_view *s = &ops[n - 1].call.out;
    *rows = s->rank > 0 ? s->dims[0] : 1;
    *row = 0;
    for (int i = 0; i < n && *rows > 0; i++) {
        int64_t r = pml_cpu_numel(&ops[i].call.out) / *rows;
        if (r > *row) *row = r;
    }
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

size_t pml_cpu_group_scratch(const pml_cpu_group_op *ops, int n)
{
    if (n < 1) return 0;
    int64_t rows, row;
    space_rows(ops, n, &rows, &row);
    int64_t per = row > 0 && row < TILE_ELEMS ? TILE_ELEMS / row : 1;
    return (size_t)n * (size_t)(per * row) * 8;
}

pml_status pml_cpu_run_group(const pml_cpu_group_op *ops, int n, void *scratch, size_t scratch_bytes, pml_err *err)
{
    if (!pml_cpu_group_tileable(ops, n))
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "fused group of %d ops: not element-wise and row ops over one first axis", n);
    if (scratch_bytes < pml_cpu_group_scratch(ops, n))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "fused group: %zu bytes of scratch, %zu needed", scratch_bytes,
                           pml_cpu_group_scratch(ops, n));
    int64_t rows, row;
    space_rows(ops, n, &rows, &row);
    int64_t per = row > 0 && row < TILE_ELEMS ? TILE_ELEMS / row : 1;
    size_t slot = (size_t)(per * row) * 8;
    pml_view tile_out[PML_GROUP_MAX_OPS];
    if (n > PML_GROUP_MAX_OPS) return pml_err_set(err, PML_ERR_UNSUPPORTED, "fused group of %d ops is too long", n);
    for (int64_t r0 = 0; r0 < rows; r0 += per) {
        int64_t t = r0 + per < rows ? per : rows - r0;
        for (int i = 0; i < n; i++) {
            pml_op_call c = ops[i].call;
            pml_view in[PML_GROUP_MAX_IN];
            for (int k = 0; k < c.n_in; k++) {
                const pml_view *x = &ops[i].call.in[k];
                if (ops[i].from[k] >= 0)
                    in[k] = tile_out[ops[i].from[k]];
                else if (x->rank == c.out.rank && x->rank > 0 && x->dims[0] == rows && rows > 1) {
                    in[k] = *x; /* this tile's rows of an input of the space's first axis */
                    in[k].dims[0] = t;
                    in[k].data = (char *)x->data + (size_t)(r0 * (pml_cpu_numel(x) / rows)) * elem_size(x->dtype);
                } else
                    in[k] = *x;
            }
            c.in = in;
            if (c.out.rank > 0) c.out.dims[0] = t;
            int64_t own = rows > 0 ? pml_cpu_numel(&ops[i].call.out) / rows : 0; /* this op's elements per row */
            c.out.data = c.out.data ? (char *)c.out.data + (size_t)(r0 * own) * elem_size(c.out.dtype)
                                    : (char *)scratch + (size_t)i * slot;
            tile_out[i] = c.out;
            pml_status st = pml_cpu_run(&c, err);
            if (st) return st;
        }
    }
    return PML_OK;
}

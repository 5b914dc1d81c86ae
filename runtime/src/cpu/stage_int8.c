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
 * gemm_int8.c's own kernel (blocks of 64 columns), which serves it with the
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
 * Layouts (below): where a product's only readers are slices and permutes, or its left
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

/* ---- Copies an int8 product makes itself (layouts) ---------------------------------
 * A transformer's qkv product is read only by three slices of its columns, each
 * reshaped and permuted to [B, heads, T, hd] for the attention, and the attention's
 * output is permuted back and reshaped into the next product's rows: seven copies of
 * the activations per block. An int8 product can do them itself, with no copy: it writes
 * each output element where the permutes would have put it (its epilogue stores each
 * run of 16 columns there), and it quantizes its rows gathered from the permute's input.
 * Both are offsets: element (i, j) of the product (or of its left operand) lies at
 * row[i] + col16[j / 16] + j % 16 of one base; taken only when the layout has that form
 * (checked element by element at load), and the copies, now not run, are what the
 * permutes compute, so the values are the same. */
#define I8_MAX_DEST 4

typedef struct pml_cpu_i8_layout {
    /* Output: written at the buffers of dest[], the product's permutes; (i, j) at
     * dest[cdest[j / 16]]'s data + row[i] + col16[j / 16] + j % 16 (n_dest = 0: none). */
    int n_dest, dest[I8_MAX_DEST];
    int64_t *row, *col16;
    uint8_t *cdest;
    /* Input: read from node src's buffer (the permute's input; -1: none), row i's
     * elements from p at xrow[i] + xcol16[p / 16] + p % 16. */
    int src;
    int64_t *xrow, *xcol16;
    /* Or its rows a layernorm's (ln_rows.c) of node ln_a's rows, or of ln_a + ln_b's,
     * whose sum it writes to node ln_h, as the fused row group it stands in for (not
     * run) would: weight and bias the param nodes ln_w, ln_bias (ln_a -1: none). */
    int ln_a, ln_b, ln_h, ln_w, ln_bias;
    float ln_eps;
} pml_cpu_i8_layout;

static void free_layout(pml_cpu_i8_layout *l)
{
    if (l) free(l->row), free(l->col16), free(l->cdest), free(l->xrow), free(l->xcol16);
    free(l);
}

/* The run forward nodes that read node r's value (through aliases): up to cap into
 * out; returns how many (more than cap: cap + 1). */
static int readers_of(const pml_cpu_ctx *p, int r, int *out, int cap)
{
    const pml_plan *pl = p->plan;
    int count = 0;
    for (int u = 0; u < pl->n_nodes; u++) {
        if (!p->low[u].run || pl->nodes[u].pass != 0) continue;
        int n_in;
        const int32_t *ins = pml_cpu_node_inputs(pl, p->low, u, &n_in);
        for (int k = 0; k < n_in; k++)
            if (root(p, ins[k]) == r) {
                if (count < cap) out[count] = u;
                if (++count > cap) return count;
                break;
            }
    }
    return count;
}

/* Where the element at flat index f of permute P's input lands in P's value (flat). */
static int64_t permuted(const pml_plan_node *P, const pml_plan_node *in, int64_t f)
{
    int64_t idx[PML_PLAN_MAX_RANK], at = 0, stride = 1;
    for (int a = in->rank - 1; a >= 0; a--) idx[a] = f % in->dims[a], f /= in->dims[a];
    for (int a = P->rank - 1; a >= 0; a--) at += idx[P->attr[a]] * stride, stride *= P->dims[a];
    return at;
}

/* Where the element at flat index f of permute P's value comes from in its input (flat). */
static int64_t unpermuted(const pml_plan_node *P, const pml_plan_node *in, int64_t f)
{
    int64_t idx[PML_PLAN_MAX_RANK], at = 0, stride[PML_PLAN_MAX_RANK];
    for (int64_t s = 1, a = in->rank - 1; a >= 0; a--) stride[a] = s, s *= in->dims[a];
    for (int a = P->rank - 1; a >= 0; a--) idx[a] = f % P->dims[a], f /= P->dims[a];
    for (int a = 0; a < P->rank; a++) at += idx[a] * stride[P->attr[a]];
    return at;
}

/* A permute node u of n's stage that the forward pass runs as a copy and the executor
 * does not read itself. */
static int plain_permute(const pml_cpu_ctx *p, int u, int stage)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *P = &pl->nodes[u];
    if (P->op != PML_OP_PERMUTE || !p->low[u].run || p->low[u].alias != u || P->pass != 0 || P->stage != stage ||
        P->dtype != PML_F32 || P->n_attr != P->rank || u == pl->output || u == pl->loss || p->invariant[u])
        return 0;
    const pml_plan_node *in = &pl->nodes[P->in[0]];
    return in->numel == P->numel && in->rank == P->rank;
}

/* Whether the units of n's stage from n's to the last of list[0..k) are n, list's and
 * aliases only (so nothing else runs while the product stands in for the copies), and
 * n comes first (after: n comes last). */
static int adjacent(const pml_cpu_ctx *p, int n, const int *list, int k, int after)
{
    const pml_cpu_stage *st = &p->stages[p->plan->nodes[n].stage];
    int seen = 0, on = 0;
    for (int i = after ? st->n_fwd - 1 : 0; after ? i >= 0 : i < st->n_fwd; i += after ? -1 : 1) {
        int u = st->fwd[i];
        if (u == n) {
            on = 1;
            continue;
        }
        if (!on) continue;
        if (u < 0) return 0;
        int mine = 0;
        for (int q = 0; q < k; q++) mine |= list[q] == u;
        if (mine) {
            if (++seen == k) return 1;
        } else if (p->low[u].alias == u)
            return 0;
    }
    return 0;
}

/* Fills l's output side for int8 product n ([m, out]): every forward reader of its
 * value is a slice of whole columns (16 at a time), each read only by a permute through
 * reshapes, together covering the columns once; returns 1 and marks them skipped. */
static int output_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t out, pml_cpu_i8_layout *l)
{
    const pml_plan *pl = p->plan;
    int sl[I8_MAX_DEST], list[2 * I8_MAX_DEST], ns = readers_of(p, n, sl, I8_MAX_DEST), stage = pl->nodes[n].stage;
    if (ns < 1 || ns > I8_MAX_DEST || n == pl->output) return 0;
    int64_t covered = 0;
    for (int d = 0; d < ns; d++) {
        const pml_plan_node *S = &pl->nodes[sl[d]];
        int r = S->rank, P;
        if (S->op != PML_OP_SLICE || !p->low[sl[d]].run || S->stage != stage || S->n_attr < 4 || S->attr[0] != r - 1 ||
            S->attr[3] != 1 || S->attr[1] % 16 || S->numel != m * S->dims[r - 1] || S->dims[r - 1] % 16 ||
            sl[d] == pl->output || readers_of(p, sl[d], &P, 1) != 1 || !plain_permute(p, P, stage) ||
            root(p, pl->nodes[P].in[0]) != sl[d])
            return 0;
        l->dest[d] = P;
        list[2 * d] = sl[d], list[2 * d + 1] = P;
        covered += S->dims[r - 1];
    }
    int64_t chunks = (out + 15) / 16;
    if (covered != out || !adjacent(p, n, list, 2 * ns, 0)) return 0;
    l->row = malloc(sizeof(int64_t) * (size_t)m), l->col16 = malloc(sizeof(int64_t) * (size_t)chunks);
    l->cdest = malloc((size_t)chunks);
    if (!l->row || !l->col16 || !l->cdest) return 0;
    int64_t *where = malloc(sizeof(int64_t) * (size_t)out);
    int8_t *dest = malloc((size_t)out);
    int ok = where && dest;
    for (int64_t j = 0; ok && j < out; j++) dest[j] = -1;
    for (int d = 0; ok && d < ns; d++) { /* column j: dest[j] at where[j] for row 0 */
        const pml_plan_node *S = &pl->nodes[sl[d]], *P = &pl->nodes[l->dest[d]];
        int64_t w = S->dims[S->rank - 1];
        for (int64_t c = 0; ok && c < w; c++) {
            ok = dest[S->attr[1] + c] < 0;
            dest[S->attr[1] + c] = (int8_t)d;
            where[S->attr[1] + c] = permuted(P, &pl->nodes[P->in[0]], c);
        }
    }
    for (int64_t i = 0; ok && i < m; i++) {
        const pml_plan_node *S = &pl->nodes[sl[0]], *P = &pl->nodes[l->dest[0]];
        int64_t w = S->dims[S->rank - 1];
        l->row[i] = permuted(P, &pl->nodes[P->in[0]], i * w) - where[S->attr[1]];
    }
    for (int64_t c = 0; ok && c < chunks; c++) {
        l->cdest[c] = (uint8_t)dest[16 * c], l->col16[c] = where[16 * c];
        for (int64_t j = 16 * c; ok && j < out && j < 16 * c + 16; j++)
            ok = dest[j] == dest[16 * c] && where[j] == where[16 * c] + j % 16;
    }
    /* every element where the permutes put it */
    for (int d = 0; ok && d < ns; d++) {
        const pml_plan_node *S = &pl->nodes[sl[d]], *P = &pl->nodes[l->dest[d]];
        int64_t w = S->dims[S->rank - 1];
        for (int64_t i = 0; ok && i < m; i++)
            for (int64_t c = 0; ok && c < w; c++) {
                int64_t j = S->attr[1] + c;
                ok = permuted(P, &pl->nodes[P->in[0]], i * w + c) == l->row[i] + l->col16[j / 16] + j % 16;
            }
    }
    free(where), free(dest);
    if (!ok) return 0;
    l->n_dest = ns;
    return 1;
}

/* Fills l's input side for int8 product n (rows of k): its left operand is a permute's
 * value (through reshapes) that only n reads, laid out in runs of 16; returns 1. */
static int input_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t k, pml_cpu_i8_layout *l)
{
    const pml_plan *pl = p->plan;
    int P = root(p, p->low[n].in[0]), r;
    if (k % 16 || !plain_permute(p, P, pl->nodes[n].stage) || readers_of(p, P, &r, 1) != 1 || r != n ||
        !adjacent(p, n, &P, 1, 1))
        return 0;
    const pml_plan_node *PN = &pl->nodes[P], *in = &pl->nodes[PN->in[0]];
    if (PN->numel != m * k) return 0;
    l->xrow = malloc(sizeof(int64_t) * (size_t)m), l->xcol16 = malloc(sizeof(int64_t) * (size_t)(k / 16));
    if (!l->xrow || !l->xcol16) return 0;
    int64_t first = unpermuted(PN, in, 0);
    for (int64_t c = 0; c < k / 16; c++) l->xcol16[c] = unpermuted(PN, in, 16 * c) - first;
    for (int64_t i = 0; i < m; i++) l->xrow[i] = unpermuted(PN, in, i * k) - l->xcol16[0];
    for (int64_t i = 0; i < m; i++)
        for (int64_t q = 0; q < k; q++)
            if (unpermuted(PN, in, i * k + q) != l->xrow[i] + l->xcol16[q / 16] + q % 16) return 0;
    l->src = root(p, PN->in[0]);
    p->i8_skip[P] = 1;
    return 1;
}

/* Whether node x is one of ops[0..n). */
static int among(int x, const int *ops, int n)
{
    for (int i = 0; i < n; i++)
        if (ops[i] == x) return 1;
    return 0;
}

/* Fills l's layernorm input for int8 product n (rows of k): its left operand is the
 * last node of a fused row group that is nn's layernorm op for op (mean, sub, mul,
 * mean, add eps, rsqrt, mul, mul weight, add bias over the last axis), perhaps after a
 * residual add of two [m, k] values whose sum the group materialises; that group runs
 * right before n, and nothing but n reads its values (the sum aside). Returns 1 and
 * marks the group's last node skipped. */
static int ln_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t k, pml_cpu_i8_layout *l)
{
    const pml_plan *pl = p->plan;
    int a = root(p, p->low[n].in[0]), kk = pl->node_kernel ? pl->node_kernel[a] : -1, ops[10], no = 0, r;
    if (kk < 0 || !p->fused[kk] || pl->kernels[kk].nodes[pl->kernels[kk].n_nodes - 1] != a || readers_of(p, a, &r, 1) != 1)
        return 0;
    const pml_plan_kernel *K = &pl->kernels[kk];
    for (int i = 0; i < K->n_nodes; i++) {
        if (p->low[K->nodes[i]].folded) continue;
        if (no == 10) return 0;
        ops[no++] = K->nodes[i];
    }
    if (no != 9 && no != 10) return 0;
    const pml_plan_node *N[10];
    for (int i = 0; i < no; i++) {
        N[i] = &pl->nodes[ops[i]];
        if (N[i]->dtype != PML_F32) return 0;
    }
    int b = no - 9, h;
#define IN(i, j) (N[i]->n_in > (j) ? N[i]->in[j] : -1)
#define OUTSIDE_ROWS(x) ((x) >= 0 && !among((x), ops, no) && pl->nodes[x].dtype == PML_F32 && pl->nodes[x].numel == m * k &&                          pl->nodes[x].rank >= 1 && pl->nodes[x].dims[pl->nodes[x].rank - 1] == k)
#define PARAM_K(x) ((x) >= 0 && pl->nodes[x].op == PML_OP_PARAM && pl->nodes[x].rank == 1 && pl->nodes[x].dims[0] == k &&                     pl->nodes[x].dtype == PML_F32)
    if (b) { /* h = x + y, materialised */
        h = ops[0];
        if (N[0]->op != PML_OP_ADD || N[0]->n_in != 2 || !OUTSIDE_ROWS(IN(0, 0)) || !OUTSIDE_ROWS(IN(0, 1)) ||
            !pl->materialised[h] || p->low[h].alias != h || N[0]->numel != m * k)
            return 0;
    } else if (!OUTSIDE_ROWS(IN(0, 0)))
        return 0;
    else
        h = IN(0, 0);
    const pml_plan_node *M1 = N[b], *M2 = N[b + 3], *C = IN(b + 4, 1) >= 0 ? &pl->nodes[IN(b + 4, 1)] : NULL;
    int ok = M1->op == PML_OP_MEAN && IN(b, 0) == h && M1->n_attr >= 2 && M1->attr[0] == pl->nodes[h].rank - 1 &&
             M1->attr[1] != 0 && N[b + 1]->op == PML_OP_SUB && IN(b + 1, 0) == h && IN(b + 1, 1) == ops[b] &&
             N[b + 2]->op == PML_OP_MUL && IN(b + 2, 0) == ops[b + 1] && IN(b + 2, 1) == ops[b + 1] &&
             M2->op == PML_OP_MEAN && IN(b + 3, 0) == ops[b + 2] && M2->n_attr >= 2 && M2->attr[0] == M1->attr[0] &&
             M2->attr[1] != 0 && N[b + 4]->op == PML_OP_ADD && IN(b + 4, 0) == ops[b + 3] && C &&
             C->op == PML_OP_CONST && C->numel == 1 && !among(IN(b + 4, 1), ops, no) && N[b + 5]->op == PML_OP_RSQRT &&
             IN(b + 5, 0) == ops[b + 4] && N[b + 6]->op == PML_OP_MUL && IN(b + 6, 0) == ops[b + 1] &&
             IN(b + 6, 1) == ops[b + 5] && N[b + 7]->op == PML_OP_MUL && IN(b + 7, 0) == ops[b + 6] &&
             PARAM_K(IN(b + 7, 1)) && N[b + 8]->op == PML_OP_ADD && IN(b + 8, 0) == ops[b + 7] && PARAM_K(IN(b + 8, 1)) &&
             ops[b + 8] == a;
    /* the intermediates are read by the group alone (the training plan may keep some) */
    for (int i = b; ok && i < no - 1; i++) {
        int rd[12], nr = readers_of(p, ops[i], rd, 12);
        ok = nr <= 12;
        for (int j = 0; ok && j < nr; j++) ok = among(rd[j], ops, no);
    }
    if (!ok) return 0;
    const pml_cpu_stage *st = &p->stages[pl->nodes[n].stage];
    int unit = -kk - 1, before = 0;
    for (int i = 0; i < st->n_fwd && st->fwd[i] != n; i++) /* the unit before n, aliases aside */
        if (st->fwd[i] < 0 || p->low[st->fwd[i]].alias == st->fwd[i]) before = st->fwd[i];
    if (before != unit) return 0;
    l->ln_a = root(p, b ? IN(0, 0) : h), l->ln_b = b ? root(p, IN(0, 1)) : -1, l->ln_h = b ? h : -1;
    l->ln_w = IN(b + 7, 1), l->ln_bias = IN(b + 8, 1), l->ln_eps = (float)C->fval;
    p->i8_skip[a] = 1;
    return 1;
#undef IN
#undef OUTSIDE_ROWS
#undef PARAM_K
}

/* Node n's layout (above), or NULL when it has neither side. */
static pml_status choose_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t out, int64_t k, pml_err *err)
{
    pml_cpu_i8_layout *l = calloc(1, sizeof *l);
    if (!l) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    l->src = -1, l->ln_a = -1;
    if (!output_layout(p, n, m, out, l)) {
        free(l->row), free(l->col16), free(l->cdest);
        l->row = l->col16 = NULL, l->cdest = NULL, l->n_dest = 0;
    }
    for (int d = 0; d < l->n_dest; d++) {
        p->i8_skip[l->dest[d]] = 1;
        p->i8_skip[p->low[p->plan->nodes[l->dest[d]].in[0]].alias] = 1; /* its slice */
    }
    if (!input_layout(p, n, m, k, l)) {
        free(l->xrow), free(l->xcol16);
        l->xrow = l->xcol16 = NULL, l->src = -1;
    }
    if (l->src < 0) ln_layout(p, n, m, k, l);
    if (!l->n_dest && l->src < 0 && l->ln_a < 0) free(l), l = NULL;
    p->i8_layout[n] = l;
    return PML_OK;
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
            st = choose_layout(p, n, m, w->dims[0], w->dims[1], err);
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
                           r->eps, r->w, r->bias, tmp);
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
    for (int n = 0; p->i8_layout && n < p->plan->n_nodes; n++) free_layout(p->i8_layout[n]);
    free(p->i8_layout), free(p->i8_skip);
    free(p->i8), free(p->i8_scale), free(p->i8_in_scale), free(p->i8_param);
    free(p->obs_param), free(p->obs_absmax);
}

/* stage_int8_layout.c — the work around an int8 product that the product does itself
 * (cpu/stage_int8.h's layouts), decided once per product at param_int8.
 *
 * A transformer written with attention(q, k, v) (a model of one's own: the stdlib's
 * block reads the packed product with attention_qkv and makes none of these copies) has
 * its qkv product read only by three slices of its columns, each reshaped and permuted
 * to [B, heads, T, hd] for the attention, and the attention's output permuted back and
 * reshaped into the next product's rows: seven copies of the activations per block. An int8 product can do them itself, with no copy: it writes
 * each output element where the permutes would have put it (its epilogue stores each
 * run of 16 columns there), and it quantizes its rows gathered from the permute's input.
 * Both are offsets: element (i, j) of the product (or of its left operand) lies at
 * row[i] + col16[j / 16] + j % 16 of one base; taken only when the layout has that form
 * (checked element by element at load), and the copies, now not run, are what the
 * permutes compute, so the values are the same.
 *
 * Besides those copies, a layernorm: a product whose rows come out of a fused row group
 * that is nn's layernorm op for op (perhaps after a residual add) makes them itself
 * (ln_layout, cpu/ln_rows.c), in the group's order and rounding. */
#include <stdlib.h>

#include "cpu/cpu.h"
#include "cpu/stage.h"
#include "cpu/stage_int8.h"

void pml_cpu_i8_free_layout(pml_cpu_i8_layout *l)
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
            if (pml_cpu_i8_root(p, ins[k]) == r) {
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
            pml_cpu_i8_root(p, pl->nodes[P].in[0]) != sl[d])
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
    int P = pml_cpu_i8_root(p, p->low[n].in[0]), r;
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
    l->src = pml_cpu_i8_root(p, PN->in[0]);
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
    int a = pml_cpu_i8_root(p, p->low[n].in[0]), kk = pl->node_kernel ? pl->node_kernel[a] : -1, ops[10], no = 0, r;
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
#define OUTSIDE_ROWS(x)                                                                                        \
    ((x) >= 0 && !among((x), ops, no) && pl->nodes[x].dtype == PML_F32 && pl->nodes[x].numel == m * k &&           \
     pl->nodes[x].rank >= 1 && pl->nodes[x].dims[pl->nodes[x].rank - 1] == k)
#define PARAM_K(x)                                                                                             \
    ((x) >= 0 && pl->nodes[x].op == PML_OP_PARAM && pl->nodes[x].rank == 1 && pl->nodes[x].dims[0] == k &&          \
     pl->nodes[x].dtype == PML_F32)
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
    l->ln_a = pml_cpu_i8_root(p, b ? IN(0, 0) : h), l->ln_b = b ? pml_cpu_i8_root(p, IN(0, 1)) : -1, l->ln_h = b ? h : -1;
    l->ln_w = IN(b + 7, 1), l->ln_bias = IN(b + 8, 1), l->ln_eps = (float)C->fval;
    p->i8_skip[a] = 1;
    return 1;
#undef IN
#undef OUTSIDE_ROWS
#undef PARAM_K
}

/* cpu/stage_int8.h: node n's layout, any of the three above. */
pml_status pml_cpu_i8_choose_layout(pml_cpu_ctx *p, int n, int64_t m, int64_t out, int64_t k, pml_err *err)
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


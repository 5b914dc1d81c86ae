/* stage_build.c — making the CPU backend's context (see cpu/stage.h): lowering, which
 * kernels run fused, which gradients the GEMM adds directly or defers, buffers, each
 * stage's forward and backward lists, parameters and optimizer state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/gemm.h"
#include "cpu/pool.h"
#include "cpu/stage.h"
#include "plan/halves.h"
#include "plan/memplan.h"
#include "plan/optim.h"

/* Memory a step reads or writes: zeroed now, so that its pages are faulted in at create
 * and not one by one in the first step (m and v, calloc's untouched zero pages, also
 * took a copy-on-write fault with a TLB shootdown at the first update). */
static void *alloc_touched(size_t bytes)
{
    void *x = malloc(bytes);
    if (x) memset(x, 0, bytes);
    return x;
}

static int constant_node(uint16_t op) { return op == PML_OP_CONST || op == PML_OP_ARANGE; }

/* Whether node n draws random numbers per micro-batch (dropout, attention with dropout
 * on its weights): never a per-step invariant, as compiler/src/ir/ops.h's pmlc_op_draws says. */
static int draws(const pml_plan_node *n)
{
    return n->op == PML_OP_DROPOUT || ((n->op == PML_OP_ATTENTION || n->op == PML_OP_ATTENTION_QKV) &&
                                       pml_attention_dropout(n->attr, n->n_attr) > 0);
}

/* The nodes the executor reads or writes itself, which the lowering must keep. */
static pml_status lower_graph(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    uint8_t *keep = calloc((size_t)pl->n_nodes + 1, 1);
    if (!keep) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    int32_t special[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3; k++)
        if (special[k] >= 0) keep[special[k]] = 1;
    for (int k = 0; k < pl->n_inputs; k++) keep[pl->input_nodes[k]] = 1;
    for (int q = 0; q < pl->n_params; q++) {
        keep[pl->params[q].node] = 1;
        if (pl->params[q].grad >= 0) keep[pl->params[q].grad] = 1;
    }
    pml_status st = pml_cpu_lower(pl, keep, !p->conf.unfused, &p->low, err);
    free(keep);
    return st;
}

/* Which part of a micro-batch's work runs each node (stage.h: half; plan/halves.h). */
static pml_status choose_halves(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->half = calloc((size_t)pl->n_nodes + 1, 1);
    if (!p->half) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    p->split = pml_plan_splits_backward(pl);
    pml_plan_halves(pl, p->split, p->half);
    return PML_OK;
}

/* Whether a value made at node `src` must outlive its micro-batch's pass because node
 * `user` reads it: on another stage, or in a later part of the micro-batch's work (the
 * backward pass, or its weight half, reading a forward value; the weight half reading
 * the input half's). */
static int outlives_pass(const pml_cpu_ctx *p, int src, int user)
{
    const pml_plan_node *a = &p->plan->nodes[src], *b = &p->plan->nodes[user];
    if (a->op == PML_OP_PARAM || constant_node(a->op)) return 0;
    return a->stage != b->stage || p->half[src] < p->half[user];
}

/* Which of the plan's element-wise and row kernels run fused: those the tiled group
 * runner takes (cpu/group.c) whose nodes all run after lowering, but for bias adds
 * folded into their products, which the group reads instead (not its last node, where
 * the group runs). Needs the lowering. */
static int fusable_kind(uint8_t kind) { return kind == PML_PLAN_KERNEL_ELEMWISE || kind == PML_PLAN_KERNEL_ROW; }

static pml_status choose_fused(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->fused = calloc((size_t)pl->n_kernels + 1, 1);
    if (!p->fused) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    int longest = 0;
    for (int k = 0; k < pl->n_kernels; k++)
        if (fusable_kind(pl->kernels[k].kind) && pl->kernels[k].n_nodes > longest)
            longest = pl->kernels[k].n_nodes;
    if (p->conf.unfused || longest < 2) return PML_OK;
    if (longest > PML_GROUP_MAX_OPS) longest = PML_GROUP_MAX_OPS;
    pml_cpu_stage probe = {0}; /* shape-only calls need no stage of their own */
    probe.gops = calloc((size_t)longest, sizeof *probe.gops);
    probe.gin = calloc((size_t)longest * PML_GROUP_MAX_IN, sizeof *probe.gin);
    pml_status st = probe.gops && probe.gin ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int k = 0; !st && k < pl->n_kernels; k++) {
        const pml_plan_kernel *K = &pl->kernels[k];
        if (!fusable_kind(K->kind) || K->n_nodes < 2 || K->n_nodes > longest) continue;
        int ok = 1;
        for (int i = 0; i < K->n_nodes; i++) ok &= p->low[K->nodes[i]].run || p->low[K->nodes[i]].folded;
        ok &= p->low[K->nodes[K->n_nodes - 1]].run;
        for (int i = 0; ok && i < K->n_nodes; i++) { /* at most PML_GROUP_MAX_IN inputs each */
            int n_in;
            pml_cpu_node_inputs(pl, p->low, K->nodes[i], &n_in);
            ok = n_in <= PML_GROUP_MAX_IN;
        }
        if (!ok) continue;
        int n_ops;
        st = pml_cpu_ctx_group_calls(p, &probe, k, -1, &n_ops, err);
        if (!st && pml_cpu_group_tileable(probe.gops, n_ops)) {
            p->fused[k] = 1;
            if (K->n_nodes > p->max_group) p->max_group = K->n_nodes;
        }
    }
    free(probe.gops), free(probe.gin);
    return st;
}

/* A node of a fused group that the plan does not materialise has no buffer. */
static int lives_in_scratch(const pml_cpu_ctx *p, int n)
{
    return p->plan->node_kernel && p->fused[p->plan->node_kernel[n]] && !p->plan->materialised[n];
}

/* Which gradients the GEMM adds to the accumulator (direct), and which of those wait
 * for the step's end to run once over every micro-batch (deferred); marks the deferred
 * GEMMs' operands as kept for every micro-batch. Needs the lowering and invariance. */
static pml_status choose_direct(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->direct = calloc((size_t)pl->n_params + 1, 1);
    p->deferred = calloc((size_t)pl->n_params + 1, 1);
    p->deferred_node = calloc((size_t)pl->n_nodes + 1, 1);
    p->into_acc = calloc((size_t)pl->n_nodes + 1, 1);
    if (!p->direct || !p->deferred || !p->deferred_node || !p->into_acc) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < pl->n_params; q++) {
        int g = pl->params[q].grad, shared = 0;
        if (g < 0) continue;
        const pml_cpu_node *l = &p->low[g];
        if (l->op != PML_OP_MATMUL || !l->run || l->readers || p->invariant[g]) continue;
        for (int r = 0; r < pl->n_params; r++) shared |= r != q && pl->params[r].grad == g;
        if (shared) continue;
        p->direct[q] = 1;
        p->into_acc[g] = 1;
        /* deferred when op(A) = A^T and op(B) = B, both 2-D with the same rows, made per
         * micro-batch (not parameters or constants, which are the same in every one) */
        const pml_plan_node *a = &pl->nodes[l->in[0]], *b = &pl->nodes[l->in[1]];
        int ra = p->low[l->in[0]].alias, rb = p->low[l->in[1]].alias;
        if (!l->trans[0] || l->trans[1] || a->rank != 2 || b->rank != 2 || pl->nodes[g].rank != 2 ||
            a->dims[0] != b->dims[0] || p->invariant[ra] || p->invariant[rb] || pl->nodes[ra].op == PML_OP_PARAM ||
            pl->nodes[rb].op == PML_OP_PARAM || lives_in_scratch(p, ra) || lives_in_scratch(p, rb))
            continue;
        p->deferred[q] = 1;
        p->deferred_node[g] = 1;
        p->per_mb[ra] = p->per_mb[rb] = 1;
        p->all_mb[ra] = p->all_mb[rb] = 1; /* read end to end, all micro-batches at once */
    }
    return PML_OK;
}

/* The parameter whose own buffer, in its own shape, node n's packed operand is, when
 * n runs on the parameter's stage (so its update, on the same thread, may repack it);
 * else -1. */
static int packed_param(const pml_cpu_ctx *p, int n)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *b = &pl->nodes[p->low[n].in[1]], *w = &pl->nodes[p->low[p->low[n].in[1]].alias];
    if (w->rank != 2 || w->dims[0] != b->dims[0] || w->dims[1] != b->dims[1] || w->stage != pl->nodes[n].stage)
        return -1;
    for (int q = 0; q < pl->n_params; q++)
        if (&pl->nodes[pl->params[q].node] == w) return q;
    return -1;
}

/* Which matmuls run on the panel GEMM (cpu/gemm.h): f32 products by a 2-D
 * invariant operand (a weight) with a not transposed, run per micro-batch, at least
 * PACK_MIN_N columns wide (narrower ones waste most of a packed panel: a 10-column head
 * ran at a third of OpenBLAS's speed). Needs the lowering and invariance. */
enum { PACK_MIN_N = 128 };

/* The columns of matmul i's weight operand, and the bytes of its packed panels. */
static int64_t packed_n(const pml_cpu_ctx *p, int i)
{
    const pml_plan_node *b = &p->plan->nodes[p->low[i].in[1]];
    return p->low[i].trans[1] ? b->dims[0] : b->dims[1];
}

static size_t packed_bytes(const pml_cpu_ctx *p, int i)
{
    const pml_plan_node *b = &p->plan->nodes[p->low[i].in[1]];
    return sizeof(float) * pml_cpu_gemm_packed_floats(p->low[i].trans[1] ? b->dims[1] : b->dims[0], packed_n(p, i));
}

static pml_status choose_packed(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->panels = calloc((size_t)pl->n_nodes + 1, 1);
    p->packed = calloc((size_t)pl->n_nodes + 1, sizeof *p->packed);
    p->packed_at = calloc((size_t)pl->n_nodes + 1, sizeof *p->packed_at);
    p->pack_param = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1));
    p->pack_next = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1));
    p->pack_first = malloc(sizeof(int) * ((size_t)pl->n_params + 1));
    p->values_at = calloc((size_t)pl->n_params + 1, sizeof *p->values_at);
    p->pack_owner = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1));
    int *by_operand = malloc(sizeof(int) * ((size_t)pl->n_nodes + 1)); /* the matmul that packed it first */
    if (!p->panels || !p->packed || !p->packed_at || !p->pack_param || !p->pack_next || !p->pack_first || !p->values_at ||
        !p->pack_owner || !by_operand) {
        free(by_operand);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < pl->n_nodes; i++) p->pack_param[i] = p->pack_next[i] = by_operand[i] = -1, p->pack_owner[i] = i;
    for (int q = 0; q < pl->n_params; q++) p->pack_first[q] = -1;
    for (int i = 0; pml_cpu_gemm_packed_available() && i < pl->n_nodes; i++) {
        const pml_cpu_node *l = &p->low[i];
        p->packed_at[i] = -1;
        if (!l->run || l->op != PML_OP_MATMUL || l->trans[0] || p->invariant[i] || p->deferred_node[i] ||
            !p->runs[pl->nodes[i].stage])
            continue;
        const pml_plan_node *b = &pl->nodes[l->in[1]];
        if (!p->invariant[l->in[1]] || b->rank != 2 || b->dtype != PML_F32) continue; /* panels are f32 */
        if (packed_n(p, i) < PACK_MIN_N) continue;
        p->panels[i] = 1;
        if (!l->trans[1]) continue; /* read in place */
        /* A second matmul of the stage by the same weight (a recomputed forward one)
         * reads the first one's panels: one packed copy per weight and stage. */
        int j = by_operand[l->in[1]];
        if (j >= 0 && pl->nodes[j].stage == pl->nodes[i].stage) {
            p->packed[i] = p->packed[j], p->pack_owner[i] = j;
            continue;
        }
        by_operand[l->in[1]] = i;
        p->packed[i] = alloc_touched(packed_bytes(p, i));
        if (!p->packed[i]) {
            free(by_operand);
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for a packed weight");
        }
        int q = packed_param(p, i);
        if (q < 0) continue;
        p->pack_param[i] = q;
        p->pack_next[i] = p->pack_first[q];
        p->pack_first[q] = i;
    }
    free(by_operand);
    return PML_OK;
}

/* How many copies node i's buffer holds (stage.h: copies). Needs per_mb and all_mb. */
static int64_t copies_of(const pml_cpu_ctx *p, int i)
{
    const pml_plan *pl = p->plan;
    if (!p->per_mb[i]) return 1;
    if (p->all_mb[i]) return p->M;
    int s = pl->nodes[i].stage; /* a value no weight half reads is free after the input half */
    return p->weight_read[i] ? pml_mem_in_flight(pl, s) : pml_mem_in_flight_input(pl, s);
}

/* Whether node i has a buffer of its own: it runs, is no alias, and is no intermediate
 * of a fused group. */
static int owns_buffer(const pml_cpu_ctx *p, int i)
{
    return p->low[i].alias == i && p->low[i].run && !lives_in_scratch(p, i) && !p->into_acc[i];
}

/* Which values exist, and how many copies each keeps: lowering, fusion, invariance,
 * direct and deferred gradients, packed weights. Where they lie is place_buffers'. */
static pml_status plan_memory(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int N = pl->n_nodes;
    p->buf = calloc((size_t)N, sizeof *p->buf);
    p->per_mb = calloc((size_t)N, 1);
    p->bytes = calloc((size_t)N, sizeof *p->bytes);
    p->invariant = calloc((size_t)N, 1);
    p->computed_at = calloc((size_t)N, sizeof *p->computed_at);
    p->acc_into = calloc((size_t)N, sizeof *p->acc_into);
    p->copies = calloc((size_t)N, sizeof *p->copies);
    p->all_mb = calloc((size_t)N, 1);
    p->weight_read = calloc((size_t)N, 1);
    if (!p->weight_read || !p->buf || !p->per_mb || !p->bytes || !p->invariant || !p->computed_at || !p->acc_into || !p->copies ||
        !p->all_mb)
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status st = lower_graph(p, err);
    if (!st) st = choose_fused(p, err);
    if (!st) st = choose_halves(p, err);
    if (st) return st;
    const pml_cpu_node *low = p->low;
    for (int i = 0; i < N; i++) { /* nodes come after their inputs */
        const pml_plan_node *n = &pl->nodes[i];
        int inv = n->op == PML_OP_PARAM || constant_node(n->op) || (n->op != PML_OP_INPUT && !draws(n) && n->n_in > 0);
        for (int k = 0; inv && k < n->n_in && n->op != PML_OP_PARAM; k++) inv = p->invariant[n->in[k]];
        p->invariant[i] = (uint8_t)inv;
        p->computed_at[i] = -1;
    }
    st = choose_direct(p, err);
    if (!st) st = choose_packed(p, err);
    if (st) return st;
    /* A value outlives its micro-batch's pass when the backward pass or another stage
     * reads it, as the lowered graph reads it: through aliases, which share the buffer of
     * the node they alias (its `root`), and past folded transposes. Nodes the executor
     * reads itself count as read where they stand. */
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        if (low[i].alias != i && outlives_pass(p, low[i].alias, i)) {
            p->per_mb[low[i].alias] = 1;
            p->weight_read[low[i].alias] |= p->half[i] == 2;
            p->all_mb[low[i].alias] |= pl->nodes[low[i].alias].stage != n->stage;
        }
        if (n->op == PML_OP_INPUT) p->per_mb[i] = 1;
        if (!low[i].run) continue;
        int n_in;
        const int32_t *in = pml_cpu_node_inputs(pl, low, i, &n_in);
        for (int k = 0; k < n_in; k++) {
            int root = low[in[k]].alias;
            if (!outlives_pass(p, root, i)) continue;
            p->per_mb[root] = 1;
            p->weight_read[root] |= p->half[i] == 2;
            p->all_mb[root] |= pl->nodes[root].stage != n->stage; /* another stage reads it on its own time */
        }
    }
    for (int i = 0; i < N; i++)
        if (p->invariant[i]) p->per_mb[i] = 0; /* one value serves every micro-batch */
    /* the executor writes the inputs and reads the loss and output of any micro-batch */
    int32_t seen[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3; k++)
        if (seen[k] >= 0) p->all_mb[low[seen[k]].alias] = 1;
    for (int k = 0; k < pl->n_inputs; k++) p->all_mb[low[pl->input_nodes[k]].alias] = 1;
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        p->bytes[i] = (size_t)(n->numel ? n->numel : 1) * pml_dtype_size((pml_dtype)n->dtype); /* as stored */
        p->copies[i] = copies_of(p, i);
    }
    return PML_OK;
}

/* Whether node i's value must live throughout (plan/memplan.h): it is kept across
 * passes or micro-batches (parameters, constants, invariants, the ring and all-micro-batch
 * copies), or the executor or another stage reads or writes it on its own time. */
static int lives_throughout(const pml_cpu_ctx *p, int i)
{
    const pml_plan *pl = p->plan;
    uint16_t op = pl->nodes[i].op;
    if (p->invariant[i] || p->per_mb[i] || p->all_mb[i] || op == PML_OP_PARAM || op == PML_OP_INPUT ||
        constant_node(op))
        return 1;
    int32_t io[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3; k++)
        if (io[k] >= 0 && p->low[io[k]].alias == i) return 1;
    return 0;
}

/* Node i (running at `tick` of stage s) reads or writes node x's buffer. */
static void buffer_used(const pml_cpu_ctx *p, pml_mem_value *val, int s, int x, int32_t tick)
{
    int r = p->low[x].alias;
    if (p->plan->nodes[r].stage == s)
        pml_mem_live(&val[r], tick);
    else /* another stage's time: kept for all micro-batches anyway (plan_memory) */
        pml_mem_always(&val[r]);
}

/* Per node: whether this process keeps its buffer (backend_ops.h's runs): every node of
 * a stage it runs; of another stage, the parameters and every value another stage reads
 * (what it sends: a transport receives into them, and both ends list the same ones,
 * find_sends) or a stage it runs reads in place (constants). NULL: out of memory. */
static uint8_t *kept_buffers(const pml_cpu_ctx *p)
{
    const pml_plan *pl = p->plan;
    uint8_t *kept = malloc((size_t)pl->n_nodes + 1);
    for (int i = 0; kept && i < pl->n_nodes; i++)
        kept[i] = p->runs[pl->nodes[i].stage] || pl->nodes[i].op == PML_OP_PARAM;
    for (int i = 0; kept && i < pl->n_nodes; i++) {
        if (!p->low[i].run) continue;
        int n_in, s = pl->nodes[i].stage;
        const int32_t *in = pml_cpu_node_inputs(pl, p->low, i, &n_in);
        for (int k = 0; k < n_in; k++) {
            int root = p->low[in[k]].alias;
            kept[root] |= p->runs[s] || pl->nodes[root].stage != s;
        }
    }
    return kept;
}

/* Where each buffer lies: every stage's values placed by the runtime's planner
 * (plan/memplan.h) over that stage's ticks (its forward list's units, then its
 * backward list's), in one allocation that holds every stage's arena. Needs the
 * stages' lists. */
static pml_status place_buffers(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int N = pl->n_nodes;
    pml_mem_value *val = malloc(sizeof *val * ((size_t)N + 1));
    int32_t *tick = malloc(sizeof *tick * ((size_t)N + 1)); /* per node: its unit's tick, -1 none */
    size_t *base = calloc((size_t)p->S + 1, sizeof *base);
    int32_t *pass_end = malloc(sizeof *pass_end * ((size_t)p->S + 1));
    uint8_t *kept = kept_buffers(p);
    pml_status st = val && tick && base && pass_end && kept ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < N; i++) {
        size_t bytes = owns_buffer(p, i) && kept[i] ? p->bytes[i] * (size_t)p->copies[i] : 0;
        val[i] = pml_mem_value_init(bytes, PML_CPU_MEM_ALIGN);
        tick[i] = -1;
        if (lives_throughout(p, i)) pml_mem_always(&val[i]);
    }
    for (int s = 0; !st && s < p->S; s++) {
        const pml_cpu_stage *ss = &p->stages[s];
        for (int t = 0; t < ss->n_fwd + ss->n_bwd + ss->n_wgt; t++) {
            int u = t < ss->n_fwd ? ss->fwd[t] : t < ss->n_fwd + ss->n_bwd ? ss->bwd[t - ss->n_fwd]
                                                                         : ss->wgt[t - ss->n_fwd - ss->n_bwd];
            if (u >= 0) {
                tick[u] = t;
                continue;
            }
            const pml_plan_kernel *K = &pl->kernels[-u - 1];
            for (int k = 0; k < K->n_nodes; k++) tick[K->nodes[k]] = t;
        }
    }
    for (int i = 0; !st && i < N; i++) {
        if (tick[i] < 0) continue;
        int s = pl->nodes[i].stage, n_in;
        buffer_used(p, val, s, i, tick[i]);
        const int32_t *in = pml_cpu_node_inputs(pl, p->low, i, &n_in);
        for (int k = 0; k < n_in; k++) buffer_used(p, val, s, in[k], tick[i]);
    }
    /* A parameter's gradient is added to its accumulator at the end of the backward pass
     * (of its half, counted here as the end of both). */
    for (int q = 0; !st && q < pl->n_params; q++) {
        int g = pl->params[q].grad, s = g >= 0 ? pl->nodes[g].stage : 0;
        const pml_cpu_stage *ss = &p->stages[s];
        if (g >= 0) buffer_used(p, val, s, g, ss->n_fwd + ss->n_bwd + ss->n_wgt - 1);
    }
    size_t total = 0;
    for (int s = 0; !st && s < p->S; s++) pass_end[s] = p->stages[s].n_fwd;
    if (!st) st = pml_mem_plan_stages(pl, val, pass_end, PML_CPU_MEM_ALIGN, base, &total, err);
    if (!st) {
        p->arena_bytes = total;
        /* An arena of 2 MiB or more is whole 2 MiB pages where the kernel has them
         * (transparent huge pages on request, the usual setting): every op sweeps
         * megabytes of it, and 4 KiB pages cost a TLB miss per page (GPT step -2%,
         * MLP -4%, docs/perf.md). Smaller ones stay as they are. */
        size_t huge = (size_t)2 << 20, bytes = total + PML_CPU_MEM_ALIGN, align = PML_CPU_MEM_ALIGN;
        if (bytes >= huge) bytes = (bytes + huge - 1) / huge * huge, align = huge;
        p->arena = aligned_alloc(align, bytes);
        if (!p->arena) {
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory for the activations (%zu bytes)", total);
        } else { /* touched now: see alloc_touched */
#ifdef MADV_HUGEPAGE
            if (align == huge) (void)madvise(p->arena, bytes, MADV_HUGEPAGE); /* a refusal only costs speed */
#endif
            memset(p->arena, 0, bytes);
        }
    }
    for (int i = 0; !st && i < N; i++)
        if (val[i].bytes) p->buf[i] = p->arena + base[pl->nodes[i].stage] + val[i].offset;
    for (int s = 0; !st && s < p->S; s++) p->stages[s].arena_bytes = (s + 1 < p->S ? base[s + 1] : total) - base[s];
    free(val), free(tick), free(base), free(pass_end), free(kept);
    return st;
}

/* An earlier model chunk on the same stage device as stage s (chunks > 1), or -1. */
static int chunk_sibling(const pml_cpu_ctx *p, int s)
{
    const pml_plan *pl = p->plan;
    int V = pl->conf.chunks > 1 ? (int)pl->conf.chunks : 1, D = p->S / V;
    if (V < 2) return -1;
    int dev = pml_plan_chunk_device(s, D, (int)pl->conf.schedule);
    for (int e = 0; e < s; e++)
        if (pml_plan_chunk_device(e, D, (int)pl->conf.schedule) == dev) return e;
    return -1;
}

/* cpu/stage.h's fwd_internal, or NULL when out of memory: a node of a fused group no
 * forward node outside the group reads (through any view of it). */
static uint8_t *find_fwd_internal(const pml_cpu_ctx *p)
{
    const pml_plan *pl = p->plan;
    uint8_t *outside = calloc((size_t)pl->n_nodes + 1, 1), *in = calloc((size_t)pl->n_nodes + 1, 1);
    if (!outside || !in) return free(outside), free(in), NULL;
    for (int u = 0; u < pl->n_nodes; u++) {
        if (!p->low[u].run || pl->nodes[u].pass != 0) continue;
        int n_in, ku = pl->node_kernel ? pl->node_kernel[u] : -1;
        const int32_t *ins = pml_cpu_node_inputs(pl, p->low, u, &n_in);
        for (int j = 0; j < n_in; j++) {
            int r = p->low[ins[j]].alias;
            if (ku < 0 || pl->node_kernel[r] != ku || !p->fused[ku]) outside[r] = 1;
        }
    }
    for (int k = 0; pl->node_kernel && k < pl->n_kernels; k++) {
        const pml_plan_kernel *K = &pl->kernels[k];
        if (!p->fused[k] || K->pass != 0) continue;
        for (int i = 0; i + 1 < K->n_nodes; i++) {
            int n = K->nodes[i];
            in[n] = !outside[n] && n != pl->output && p->low[n].alias == n;
        }
    }
    free(outside);
    return in;
}

static pml_status build_stages(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->stages = calloc((size_t)p->S, sizeof *p->stages);
    if (!p->stages) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int s = 0; s < p->S; s++) {
        pml_cpu_stage *st = &p->stages[s];
        st->fwd = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1));
        st->bwd = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1));
        st->wgt = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1));
        st->params = malloc(sizeof(int) * (size_t)(pl->n_params + 1));
        st->gops = calloc((size_t)p->max_group + 1, sizeof *st->gops);
        st->gin = calloc(((size_t)p->max_group + 1) * PML_GROUP_MAX_IN, sizeof *st->gin);
        if (!st->fwd || !st->bwd || !st->wgt || !st->params || !st->gops || !st->gin)
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        pml_cpu_stage *st = &p->stages[n->stage];
        if (n->op == PML_OP_INPUT || n->op == PML_OP_PARAM || constant_node(n->op) || !p->low[i].run ||
            p->deferred_node[i])
            continue;
        int unit = i, k = pl->node_kernel ? pl->node_kernel[i] : -1;
        if (k >= 0 && p->fused[k]) {
            const pml_plan_kernel *K = &pl->kernels[k];
            if (K->nodes[K->n_nodes - 1] != i) continue; /* the group runs at its last node */
            unit = -k - 1;
            int n_ops;
            pml_status s = pml_cpu_ctx_group_calls(p, st, k, -1, &n_ops, err);
            if (s) return s;
            size_t need = pml_cpu_group_scratch(st->gops, n_ops, p->threads);
            if (need > st->scratch_bytes) st->scratch_bytes = need;
        }
        if (p->half[i] == 0)
            st->fwd[st->n_fwd++] = unit;
        else if (p->half[i] == 1)
            st->bwd[st->n_bwd++] = unit;
        else
            st->wgt[st->n_wgt++] = unit;
    }
    for (int s = 0; s < p->S; s++) {
        pml_cpu_stage *st = &p->stages[s];
        if (!p->runs[s]) continue; /* another process's: no scratch, no threads */
        if (st->scratch_bytes && !(st->scratch = aligned_alloc(64, (st->scratch_bytes + 63) & ~(size_t)63)))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        if (st->scratch) memset(st->scratch, 0, st->scratch_bytes);
        /* A stage of several threads splits its fused groups' tiles and its products
         * over them (cpu/pool.h); stages that never run at once share one pool: all of
         * them when stages take turns, else the chunks of one stage device (its one
         * thread runs them one after another). */
        int sib = chunk_sibling(p, s);
        if (p->threads > 1 && s > 0 && p->conf.stages_in_turn) {
            st->pool = p->stages[0].pool;
        } else if (p->threads > 1 && sib >= 0) {
            st->pool = p->stages[sib].pool;
        } else if (p->threads > 1) {
            pml_status ps = pml_cpu_pool_create(p->threads, &st->pool, err);
            if (ps) return ps;
        }
    }
    if (!(p->serves = pml_phase_serving(pl))) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!(p->fwd_internal = find_fwd_internal(p))) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < pl->n_params; q++) {
        pml_cpu_stage *st = &p->stages[pl->nodes[pl->params[q].node].stage];
        st->params[st->n_params++] = q;
    }
    return PML_OK;
}

/* Stage 0's early deferred weight gradients (stage.h): with several stages, every
 * micro-batch's but the last's, once its forward passes are done. Stage 0 otherwise
 * idles while the next stage runs its last forward and backward passes, then runs the
 * whole weight-gradient GEMM after them: the step's tail after the last backward pass
 * of the MLP's stage 1 went from 5.5-6.4 to 3.1-5.1 ms (load 4, docs/perf.md). */
static void choose_wgrad_early(pml_cpu_ctx *p)
{
    const pml_plan *pl = p->plan;
    if (p->S < 2 || p->M < 2 || p->split) return; /* split: the weight halves place this work */
    for (int q = 0; q < pl->n_params; q++)
        if (p->deferred[q] && pl->nodes[pl->params[q].node].stage == 0) p->stages[0].wgrad_early = p->M - 1;
}

/* The values each stage sends (backend boundary): the buffers of nodes of stage s that
 * a node of stage s + 1 (activations) or s - 1 (gradients) reads, each once. */
static pml_status find_sends(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    uint8_t *seen = calloc((size_t)pl->n_nodes + 1, 1);
    if (!seen) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int s = 0; s < p->S; s++)
        for (int kind = 0; kind < 2; kind++)
            if (!(p->stages[s].sends[kind] = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1)))) {
                free(seen);
                return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
            }
    for (int i = 0; i < pl->n_nodes; i++) {
        if (!p->low[i].run) continue;
        int n_in;
        const int32_t *in = pml_cpu_node_inputs(pl, p->low, i, &n_in);
        for (int k = 0; k < n_in; k++) {
            int root = p->low[in[k]].alias, from = pl->nodes[root].stage, to = pl->nodes[i].stage;
            if (from == to || !p->buf[root] || seen[root]) continue;
            seen[root] = 1;
            pml_cpu_stage *st = &p->stages[from];
            int kind = to > from ? PML_MSG_ACT : PML_MSG_GRAD;
            st->sends[kind][st->n_sends[kind]++] = root;
        }
    }
    free(seen);
    return PML_OK;
}

/* Parameters (initialised from the seed; a teacher's are loaded later by the executor),
 * gradient accumulators and optimizer state. */
static pml_status make_params(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *plan = p->plan;
    int state = pml_optim_state_per_elem(&plan->conf);
    p->acc = calloc((size_t)plan->n_params + 1, sizeof *p->acc);
    p->m = calloc((size_t)plan->n_params + 1, sizeof *p->m);
    p->v = calloc((size_t)plan->n_params + 1, sizeof *p->v);
    if (!p->acc || !p->m || !p->v) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < plan->n_params; q++) {
        const pml_plan_param *prm = &plan->params[q];
        const pml_plan_node *n = &plan->nodes[prm->node];
        if (!prm->teacher) pml_param_init(prm, n->rank, n->dims, n->numel, p->conf.seed, (float *)p->buf[prm->node]);
        if (prm->grad < 0) continue;
        /* another process's stage: its optimizer state only, which ranks gather */
        if (p->runs[n->stage] && !(p->acc[q] = alloc_touched(((size_t)n->numel + 1) * sizeof(float))))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the gradients");
        if (state >= 1) p->m[q] = alloc_touched(((size_t)n->numel + 1) * sizeof(float));
        if (state >= 2) p->v[q] = alloc_touched(((size_t)n->numel + 1) * sizeof(float));
        if ((state >= 1 && !p->m[q]) || (state >= 2 && !p->v[q]))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the optimizer state");
    }
    /* A gradient made by a matmul that nothing else reads is added to the accumulator by
     * the GEMM itself (C += A B), saving a buffer and a pass over it per micro-batch. */
    for (int q = 0; q < plan->n_params; q++)
        if (p->direct[q] && p->acc[q]) p->acc_into[plan->params[q].grad] = p->acc[q];
    return PML_OK;
}

/* The bytes of node n's kept log-sum-exps (stage.h's lse): every micro-batch's. */
static size_t lse_bytes(const pml_cpu_ctx *p, int n) { return sizeof(float) * ((size_t)(p->lse_rows[n] * p->M) + 1); }

/* The log-sum-exps each attention keeps for its backward (stage.h's lse): for every
 * attention (attention_qkv) node that an attention_grad (attention_qkv_grad) reads as
 * its forward output. */
static pml_status keep_lse(pml_cpu_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    if (!(p->lse = calloc((size_t)pl->n_nodes + 1, sizeof *p->lse)) ||
        !(p->lse_rows = calloc((size_t)pl->n_nodes + 1, sizeof *p->lse_rows)))
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *g = &pl->nodes[i];
        int packed = g->op == PML_OP_ATTENTION_QKV_GRAD;
        if (g->op != PML_OP_ATTENTION_GRAD && !packed) continue;
        if (g->n_in != (packed ? 3 : 5)) continue;
        int o = g->in[packed ? 1 : 3];
        const pml_plan_node *a = &pl->nodes[o];
        int64_t heads = packed && a->n_attr >= 2 ? a->attr[1] : 1, d = a->rank >= 2 ? a->dims[a->rank - 1] / heads : 0;
        if (a->op != (packed ? PML_OP_ATTENTION_QKV : PML_OP_ATTENTION) || p->lse[o] || !d || heads < 1 ||
            !p->runs[a->stage])
            continue;
        p->lse_rows[o] = a->numel / d; /* one per query row of every matrix */
        if (!(p->lse[o] = alloc_touched(lse_bytes(p, o))))
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the attention's kept log-sum-exps");
    }
    return PML_OK;
}

/* The loss's gradient seed (plan.h's pml_plan_loss_seed); and what precision_note says. */
static void find_seed(pml_cpu_ctx *p)
{
    const pml_plan *pl = p->plan;
    p->seed = pml_plan_loss_seed(pl);
    p->loss_scale = 1;
    pml_dtype half = PML_F32;
    for (int i = 0; i < pl->n_nodes && half == PML_F32; i++)
        if (pl->nodes[i].dtype == PML_BF16 || pl->nodes[i].dtype == PML_F16) half = (pml_dtype)pl->nodes[i].dtype;
    /* The first line of a training run says how its products are computed: bf16 ones
     * on oneDNN's AVX512_BF16 kernels, or in f32 from the widened 16-bit operands (f16
     * always: oneDNN 2.6 has no f16 product on a CPU), and why. */
    if (half == PML_BF16)
        snprintf(p->note, sizeof p->note, "bf16 storage, f32 math; %s", pml_cpu_gemm_bf16_status());
    else if (half != PML_F32)
        snprintf(p->note, sizeof p->note,
                 "%s storage, f32 math; f32 products of the widened operands: oneDNN 2.6 has no f16 product on a CPU",
                 pml_dtype_name(half));
}

pml_status pml_cpu_ctx_create(const pml_plan *plan, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err)
{
    *out = NULL;
    pml_cpu_ctx *p = calloc(1, sizeof *p);
    if (!p) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    p->plan = plan;
    p->conf = *conf;
    atomic_store(&p->params_changed, 1);     /* the first begin computes the invariants */
    p->conf.unfused |= conf->check_numerics; /* every op's output in memory, to be checked */
    if (p->conf.threads < 1) p->conf.threads = 1;
    p->S = (int)plan->conf.stages;
    p->M = plan->conf.microbatches;
    /* conf.threads is for every stage device; a device's chunks run one at a time, so
     * each chunk gets its device's share, not a share of the chunks. */
    int devices = p->S / (plan->conf.chunks > 1 ? (int)plan->conf.chunks : 1);
    p->threads = p->conf.threads / devices > 1 ? p->conf.threads / devices : 1;
    pml_cpu_gemm_setup(p->threads);
    pml_status st = (p->runs = malloc((size_t)p->S + 1)) ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int s = 0; !st && s < p->S; s++) p->runs[s] = !conf->runs || conf->runs[s];
    if (!st) st = plan_memory(p, err);
    if (!st) st = build_stages(p, err);
    if (!st) st = place_buffers(p, err);
    if (!st) st = find_sends(p, err);
    if (!st) choose_wgrad_early(p);
    if (!st) st = make_params(p, err);
    if (!st) st = keep_lse(p, err);
    if (!st) st = pml_phase_init(&p->phase, plan, err);
    if (!st) find_seed(p);
    /* Constants and ranges never change (but for the loss scale's seed): computed once. */
    for (int i = 0; !st && i < plan->n_nodes; i++)
        if (constant_node(plan->nodes[i].op) && p->buf[p->low[i].alias]) st = pml_cpu_ctx_run_node(p, i, 0, err);
    if (st) {
        pml_cpu_ctx_destroy((pml_backend_ctx *)p);
        return st;
    }
    *out = (pml_backend_ctx *)p;
    return PML_OK;
}

void pml_cpu_ctx_memory(pml_backend_ctx *b, int s, pml_backend_memory *out)
{
    const pml_cpu_ctx *p = (const pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    const pml_cpu_stage *st = &p->stages[s];
    memset(out, 0, sizeof *out);
    out->values = st->arena_bytes;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        size_t f32 = ((size_t)pl->nodes[pl->params[q].node].numel + 1) * sizeof(float); /* make_params' */
        out->grads += p->acc[q] ? f32 : 0;
        out->optimizer += (p->m[q] ? f32 : 0) + (p->v[q] ? f32 : 0);
        const pml_plan_node *w = &pl->nodes[pl->params[q].node];
        if (p->i8 && p->i8[q])
            out->derived += (p->i8_bytes[q] ? p->i8_bytes[q] : (size_t)w->dims[0] * (size_t)w->dims[1] + 1) +
                            sizeof(float) * (size_t)w->dims[0] + 1;
    }
    for (int i = 0; i < pl->n_nodes; i++)
        if (p->packed[i] && p->pack_owner[i] == i && pl->nodes[i].stage == s) out->derived += packed_bytes(p, i);
    out->scratch = (st->scratch ? (st->scratch_bytes + 63) & ~(size_t)63 : 0) + (st->i8_scratch ? st->i8_scratch_bytes : 0);
    for (int i = 0; p->lse && i < pl->n_nodes; i++)
        if (p->lse[i] && pl->nodes[i].stage == s) out->scratch += lse_bytes(p, i);
    out->temporaries = __atomic_load_n(&st->temp_peak, __ATOMIC_RELAXED);
}

void pml_cpu_ctx_destroy(pml_backend_ctx *b)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    if (!p) return;
    pml_cpu_ctx_free_int8(p);
    free(p->arena);
    for (int i = 0; p->packed && p->pack_owner && i < p->plan->n_nodes; i++)
        if (p->pack_owner[i] == i) free(p->packed[i]);
    for (int i = 0; p->lse && i < p->plan->n_nodes; i++) free(p->lse[i]);
    free(p->lse), free(p->lse_rows);
    for (int q = 0; q < p->plan->n_params; q++) {
        if (p->acc) free(p->acc[q]);
        if (p->m) free(p->m[q]);
        if (p->v) free(p->v[q]);
    }
    for (int s = 0; p->stages && s < p->S; s++) {
        pml_cpu_stage *st = &p->stages[s];
        free(st->fwd), free(st->bwd), free(st->wgt), free(st->params), free(st->sends[0]), free(st->sends[1]);
        free(st->gops), free(st->gin), free(st->scratch);
        int shared = 0; /* a pool is destroyed with the first stage that has it */
        for (int e = 0; e < s && !shared; e++) shared = st->pool && p->stages[e].pool == st->pool;
        if (!shared) pml_cpu_pool_destroy(st->pool);
    }
    free(p->half), free(p->runs), free(p->invariant), free(p->computed_at), free(p->low), free(p->acc_into),
        free(p->direct), free(p->fused), free(p->deferred), free(p->deferred_node), free(p->into_acc), free(p->panels),
        free(p->packed), free(p->packed_at);
    free(p->pack_param), free(p->pack_next), free(p->pack_first), free(p->values_at), free(p->pack_owner);
    pml_phase_free(&p->phase);
    free(p->buf), free(p->per_mb), free(p->copies), free(p->all_mb), free(p->weight_read), free(p->serves), free(p->fwd_internal), free(p->bytes), free(p->acc),
        free(p->m), free(p->v), free(p->stages);
    free(p);
}

/* pipeline.c — the pipeline executor (see pipeline.h). */
#include "pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "cpu/kernels.h"
#include "cpu/lower.h"
#include "optim.h"
#include "rng.h"
#include "transport.h"

enum { I_LOAD, I_RECV_ACT, I_FWD, I_SEND_ACT, I_RECV_GRAD, I_BWD, I_SEND_GRAD, I_STEP };

typedef struct stage {
    /* What the forward and backward instructions run, in order: a node n (n >= 0), or
     * a fused group, the plan's kernel k, as -(k + 1), run when node order reaches its
     * last node (valid, as plan.h says). */
    int *fwd, n_fwd;
    int *bwd, n_bwd;
    pml_cpu_group_op *gops; /* a fused group's calls, and their input views */
    pml_view *gin;
    void *scratch; /* where a fused group keeps its intermediates, one tile at a time */
    size_t scratch_bytes;
    int *params, n_params;
    double loss;         /* summed over this step's micro-batches (last stage) */
    double sq;           /* this stage's squared gradient norm */
    pml_trace_event *ev; /* the timeline, with opts.trace */
    int n_ev, cap_ev;
    double busy; /* compute time in the last step, with opts.trace */
    pml_err err;
    pml_status status;
} stage;

struct pml_pipeline {
    const pml_plan *plan;
    struct timespec epoch; /* the timeline's zero */
    double last_bubble;
    pml_pipeline_opts opts;
    int S;
    int64_t M;
    pml_cpu_node *low;   /* per node: what runs for it (cpu/lower.h) */
    unsigned char **buf; /* per node that owns one (low[n].alias == n): its buffer (per micro-batch
                            copies laid end to end when per_mb) */
    uint8_t *per_mb;
    /* Per node: the parameter gradient accumulator its matmul adds its product to, instead
     * of writing a buffer that is then added (the parameter's `direct` is set). */
    float **acc_into;
    uint8_t *direct;
    /* Per parameter: its direct gradient is A^T B with A and B kept for every micro-batch,
     * so it is one GEMM over all of them at the step's end (sum_mb A_mb^T B_mb =
     * [A_1; ..; A_M]^T [B_1; ..; B_M]), with M times the depth of the per-micro-batch
     * GEMMs; its node is then not run in the backward pass (deferred_node). */
    uint8_t *deferred, *deferred_node;
    uint8_t *fused; /* per plan kernel: run as a tiled group (cpu/kernels.h), not node by node */
    int max_group;  /* nodes of the largest fused group */
    /* Per node: its value depends on parameters and constants only, so it is the same for
     * every micro-batch until the next update (transpose(weight), say): computed once per
     * step (or per evaluation), when computed_at[n] falls behind `version`. */
    uint8_t *invariant;
    int64_t *computed_at, version;
    uint8_t *serves;       /* per node: a forward node the output depends on (pml_pipeline_forward) */
    size_t *bytes;         /* per node: one copy's size */
    float **acc, **m, **v; /* per parameter: summed gradient, optimizer state */
    stage *stages;
    pml_transport *tr;
    int64_t step;
    /* The synchronisation before the update, which any stage's failure releases. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived, generation, aborted;
    double sq_total;
};

static int is_float(uint8_t dt) { return dt != PML_I32; }

static void *view_data(const pml_pipeline *p, int n, int64_t mb)
{
    n = p->low[n].alias;
    if (!p->buf[n]) return NULL; /* folded away, or an intermediate of a fused group */
    return p->buf[n] + (p->per_mb[n] ? (size_t)mb * p->bytes[n] : 0);
}

/* Node n's tensor for micro-batch mb; with mb < 0 its shape only (data NULL). */
static pml_view view_of(const pml_pipeline *p, int n, int64_t mb)
{
    const pml_plan_node *node = &p->plan->nodes[n];
    pml_view v = {0};
    v.data = mb >= 0 ? view_data(p, n, mb) : NULL;
    v.dtype = is_float(node->dtype) ? PML_F32 : PML_I32; /* the CPU computes floats in f32 */
    v.rank = node->rank;
    memcpy(v.dims, node->dims, sizeof(int64_t) * node->rank);
    return v;
}

/* Node n's kernel call for micro-batch mb (mb < 0: shapes only), its input views in
 * `in` (room for `cap`). */
static pml_status make_call(const pml_pipeline *p, int n, int64_t mb, pml_op_call *c, pml_view *in, int cap,
                            pml_err *err)
{
    static const int64_t f32 = PML_F32;
    const pml_plan_node *node = &p->plan->nodes[n];
    const pml_cpu_node *low = &p->low[n];
    int n_in;
    const int32_t *ins = pml_cpu_node_inputs(p->plan, p->low, n, &n_in);
    if (n_in > cap) return pml_err_set(err, PML_ERR_UNSUPPORTED, "an op with more than %d inputs", cap);
    for (int k = 0; k < n_in; k++) in[k] = view_of(p, ins[k], mb);
    *c = (pml_op_call){0};
    c->op = (pml_opcode)low->op;
    c->trans[0] = low->trans[0], c->trans[1] = low->trans[1];
    c->attr = node->attr;
    c->n_attr = node->n_attr;
    if (node->op == PML_OP_CAST && is_float((uint8_t)node->attr[0])) c->attr = &f32;
    c->fval = node->fval;
    c->n_in = n_in;
    c->in = in;
    c->out = view_of(p, n, mb);
    if (p->acc_into[n]) {
        c->out.data = mb >= 0 ? p->acc_into[n] : NULL;
        c->accumulate = 1;
    }
    c->seed = pml_rng_u64(p->opts.seed, (uint64_t)p->step, (uint64_t)(mb >= 0 ? mb : 0));
    c->threads = p->opts.threads / p->S > 1 ? p->opts.threads / p->S : 1;
    return PML_OK;
}

static pml_status run_node(pml_pipeline *p, int n, int64_t mb, pml_err *err)
{
    pml_view in[64];
    pml_op_call c;
    pml_status st = make_call(p, n, mb, &c, in, 64, err);
    return st ? st : pml_cpu_run(&c, err);
}

/* Fills st->gops with the calls of plan kernel k for micro-batch mb (mb < 0: shapes
 * only): inputs from the kernel's own nodes by position, values it does not
 * materialise left without a buffer. */
static pml_status group_calls(const pml_pipeline *p, stage *st, int k, int64_t mb, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_plan_kernel *K = &pl->kernels[k];
    for (int i = 0; i < K->n_nodes; i++) {
        int n = K->nodes[i];
        pml_cpu_group_op *g = &st->gops[i];
        pml_status s = make_call(p, n, mb, &g->call, &st->gin[i * PML_GROUP_MAX_IN], PML_GROUP_MAX_IN, err);
        if (s) return s;
        int n_in;
        const int32_t *ins = pml_cpu_node_inputs(pl, p->low, n, &n_in);
        for (int j = 0; j < n_in; j++) {
            int at = -1;
            for (int q = 0; q < i && pl->node_kernel[ins[j]] == k; q++)
                if (K->nodes[q] == ins[j]) at = q;
            g->from[j] = (int16_t)at;
        }
        if (!pl->materialised[n]) g->call.out.data = NULL;
    }
    return PML_OK;
}

static pml_status run_group(pml_pipeline *p, stage *st, int k, int64_t mb, pml_err *err)
{
    const pml_plan_kernel *K = &p->plan->kernels[k];
    int inv = 1;
    for (int i = 0; i < K->n_nodes; i++) inv &= p->invariant[K->nodes[i]];
    if (inv) { /* the whole group depends on parameters only: once per version */
        int last = K->nodes[K->n_nodes - 1];
        if (p->computed_at[last] == p->version) return PML_OK;
        for (int i = 0; i < K->n_nodes; i++) p->computed_at[K->nodes[i]] = p->version;
    }
    pml_status s = group_calls(p, st, k, mb, err);
    return s ? s : pml_cpu_run_group(st->gops, K->n_nodes, st->scratch, st->scratch_bytes, err);
}

/* Runs node n for micro-batch mb, or not at all when it is invariant and already
 * computed in this step (or evaluation). */
static pml_status run_or_reuse(pml_pipeline *p, int n, int64_t mb, pml_err *err)
{
    if (p->invariant[n]) {
        if (p->computed_at[n] == p->version) return PML_OK;
        p->computed_at[n] = p->version;
    }
    return run_node(p, n, mb, err);
}

/* Runs one entry of a stage's fwd or bwd list. */
static pml_status run_unit(pml_pipeline *p, stage *st, int u, int64_t mb, pml_err *err)
{
    return u >= 0 ? run_or_reuse(p, u, mb, err) : run_group(p, st, -u - 1, mb, err);
}

/* ---- building ------------------------------------------------------------------- */

static int constant_node(uint16_t op) { return op == PML_OP_CONST || op == PML_OP_ARANGE; }

/* The nodes the executor reads or writes itself, which the lowering must keep. */
static pml_status lower_graph(pml_pipeline *p, pml_err *err)
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
    pml_status st = pml_cpu_lower(pl, keep, &p->low, err);
    free(keep);
    return st;
}

/* Whether a value made at node `src` must outlive its micro-batch's pass because node
 * `user` reads it: on another stage, or in the backward pass of a forward value. */
static int outlives_pass(const pml_plan_node *src, const pml_plan_node *user)
{
    if (src->op == PML_OP_PARAM || constant_node(src->op)) return 0;
    return src->stage != user->stage || (src->pass == 0 && user->pass != 0);
}

/* Which of the plan's element-wise kernels run fused: those the tiled group runner
 * takes (cpu/group.c) whose nodes all run after lowering. Needs the lowering. */
static pml_status choose_fused(pml_pipeline *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->fused = calloc((size_t)pl->n_kernels + 1, 1);
    if (!p->fused) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    int longest = 0;
    for (int k = 0; k < pl->n_kernels; k++)
        if (pl->kernels[k].kind == PML_PLAN_KERNEL_ELEMWISE && pl->kernels[k].n_nodes > longest)
            longest = pl->kernels[k].n_nodes;
    if (p->opts.unfused || longest < 2) return PML_OK;
    if (longest > PML_GROUP_MAX_OPS) longest = PML_GROUP_MAX_OPS;
    stage probe = {0}; /* shape-only calls need no stage of their own */
    probe.gops = calloc((size_t)longest, sizeof *probe.gops);
    probe.gin = calloc((size_t)longest * PML_GROUP_MAX_IN, sizeof *probe.gin);
    pml_status st = probe.gops && probe.gin ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int k = 0; !st && k < pl->n_kernels; k++) {
        const pml_plan_kernel *K = &pl->kernels[k];
        if (K->kind != PML_PLAN_KERNEL_ELEMWISE || K->n_nodes < 2 || K->n_nodes > longest) continue;
        int ok = 1;
        for (int i = 0; i < K->n_nodes; i++) ok &= p->low[K->nodes[i]].run;
        for (int i = 0; ok && i < K->n_nodes; i++) { /* at most PML_GROUP_MAX_IN inputs each */
            int n_in;
            pml_cpu_node_inputs(pl, p->low, K->nodes[i], &n_in);
            ok = n_in <= PML_GROUP_MAX_IN;
        }
        if (!ok) continue;
        st = group_calls(p, &probe, k, -1, err);
        if (!st && pml_cpu_group_tileable(probe.gops, K->n_nodes)) {
            p->fused[k] = 1;
            if (K->n_nodes > p->max_group) p->max_group = K->n_nodes;
        }
    }
    free(probe.gops), free(probe.gin);
    return st;
}

/* A node of a fused group that the plan does not materialise has no buffer. */
static int lives_in_scratch(const pml_pipeline *p, int n)
{
    return p->plan->node_kernel && p->fused[p->plan->node_kernel[n]] && !p->plan->materialised[n];
}

/* Which gradients the GEMM adds to the accumulator (direct), and which of those wait
 * for the step's end to run once over every micro-batch (deferred); marks the deferred
 * GEMMs' operands as kept for every micro-batch. Needs the lowering and invariance. */
static pml_status choose_direct(pml_pipeline *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->direct = calloc((size_t)pl->n_params + 1, 1);
    p->deferred = calloc((size_t)pl->n_params + 1, 1);
    p->deferred_node = calloc((size_t)pl->n_nodes + 1, 1);
    if (!p->direct || !p->deferred || !p->deferred_node) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < pl->n_params; q++) {
        int g = pl->params[q].grad, shared = 0;
        if (g < 0) continue;
        const pml_cpu_node *l = &p->low[g];
        if (l->op != PML_OP_MATMUL || !l->run || l->readers || p->invariant[g]) continue;
        for (int r = 0; r < pl->n_params; r++) shared |= r != q && pl->params[r].grad == g;
        if (shared) continue;
        p->direct[q] = 1;
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
    }
    return PML_OK;
}

static pml_status plan_memory(pml_pipeline *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int N = pl->n_nodes;
    p->buf = calloc((size_t)N, sizeof *p->buf);
    p->per_mb = calloc((size_t)N, 1);
    p->bytes = calloc((size_t)N, sizeof *p->bytes);
    p->invariant = calloc((size_t)N, 1);
    p->computed_at = calloc((size_t)N, sizeof *p->computed_at);
    p->acc_into = calloc((size_t)N, sizeof *p->acc_into);
    if (!p->buf || !p->per_mb || !p->bytes || !p->invariant || !p->computed_at || !p->acc_into)
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status st = lower_graph(p, err);
    if (!st) st = choose_fused(p, err);
    if (st) return st;
    const pml_cpu_node *low = p->low;
    for (int i = 0; i < N; i++) { /* nodes come after their inputs */
        const pml_plan_node *n = &pl->nodes[i];
        int inv = n->op == PML_OP_PARAM || constant_node(n->op) ||
                  (n->op != PML_OP_INPUT && n->op != PML_OP_DROPOUT && n->n_in > 0);
        for (int k = 0; inv && k < n->n_in && n->op != PML_OP_PARAM; k++) inv = p->invariant[n->in[k]];
        p->invariant[i] = (uint8_t)inv;
        p->computed_at[i] = -1;
    }
    st = choose_direct(p, err);
    if (st) return st;
    /* A value outlives its micro-batch's pass when the backward pass or another stage
     * reads it, as the lowered graph reads it: through aliases, which share the buffer of
     * the node they alias (its `root`), and past folded transposes. Nodes the executor
     * reads itself count as read where they stand. */
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        if (low[i].alias != i && outlives_pass(&pl->nodes[low[i].alias], n)) p->per_mb[low[i].alias] = 1;
        if (n->op == PML_OP_INPUT) p->per_mb[i] = 1;
        if (!low[i].run) continue;
        int n_in;
        const int32_t *in = pml_cpu_node_inputs(pl, low, i, &n_in);
        for (int k = 0; k < n_in; k++) {
            int root = low[in[k]].alias;
            if (outlives_pass(&pl->nodes[root], n)) p->per_mb[root] = 1;
        }
    }
    for (int i = 0; i < N; i++)
        if (p->invariant[i]) p->per_mb[i] = 0; /* one value serves every micro-batch */
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        p->bytes[i] = (size_t)(n->numel ? n->numel : 1) * 4; /* f32 and i32 alike */
        if (low[i].alias != i || !low[i].run || lives_in_scratch(p, i)) continue; /* no buffer of its own */
        size_t total = p->bytes[i] * (p->per_mb[i] ? (size_t)p->M : 1);
        p->buf[i] = malloc(total);
        if (!p->buf[i]) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the activations (%zu bytes)", total);
    }
    return PML_OK;
}

static pml_status build_stages(pml_pipeline *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->stages = calloc((size_t)p->S, sizeof *p->stages);
    if (!p->stages) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int s = 0; s < p->S; s++) {
        stage *st = &p->stages[s];
        st->fwd = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1));
        st->bwd = malloc(sizeof(int) * (size_t)(pl->n_nodes + 1));
        st->params = malloc(sizeof(int) * (size_t)(pl->n_params + 1));
        st->gops = calloc((size_t)p->max_group + 1, sizeof *st->gops);
        st->gin = calloc(((size_t)p->max_group + 1) * PML_GROUP_MAX_IN, sizeof *st->gin);
        if (!st->fwd || !st->bwd || !st->params || !st->gops || !st->gin)
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        stage *st = &p->stages[n->stage];
        if (n->op == PML_OP_INPUT || n->op == PML_OP_PARAM || constant_node(n->op) || !p->low[i].run ||
            p->deferred_node[i])
            continue;
        int unit = i, k = pl->node_kernel ? pl->node_kernel[i] : -1;
        if (k >= 0 && p->fused[k]) {
            const pml_plan_kernel *K = &pl->kernels[k];
            if (K->nodes[K->n_nodes - 1] != i) continue; /* the group runs at its last node */
            unit = -k - 1;
            pml_status s = group_calls(p, st, k, -1, err);
            if (s) return s;
            size_t need = pml_cpu_group_scratch(st->gops, K->n_nodes);
            if (need > st->scratch_bytes) st->scratch_bytes = need;
        }
        if (n->pass == 0)
            st->fwd[st->n_fwd++] = unit;
        else
            st->bwd[st->n_bwd++] = unit;
    }
    for (int s = 0; s < p->S; s++) {
        stage *st = &p->stages[s];
        st->scratch = st->scratch_bytes ? malloc(st->scratch_bytes) : NULL;
        if (st->scratch_bytes && !st->scratch) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    /* The forward nodes the output depends on: inputs come before their users. */
    p->serves = calloc((size_t)pl->n_nodes + 1, 1);
    if (!p->serves) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (pl->output >= 0) p->serves[pl->output] = 1;
    for (int i = pl->n_nodes - 1; i >= 0; i--)
        for (int k = 0; p->serves[i] && k < pl->nodes[i].n_in; k++)
            if (pl->nodes[pl->nodes[i].in[k]].pass == 0) p->serves[pl->nodes[i].in[k]] = 1;
    for (int q = 0; q < pl->n_params; q++) {
        stage *st = &p->stages[pl->nodes[pl->params[q].node].stage];
        st->params[st->n_params++] = q;
    }
    return PML_OK;
}

pml_status pml_pipeline_create(const pml_plan *plan, const pml_pipeline_opts *opts, pml_pipeline **out, pml_err *err)
{
    *out = NULL;
    if (plan->n_stages == 0 || plan->loss < 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "this plan has no timetable to train with (a schedule the runtime "
                           "does not run yet, or no loss)");
    pml_pipeline *p = calloc(1, sizeof *p);
    if (!p) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    p->plan = plan;
    p->opts = *opts;
    clock_gettime(CLOCK_MONOTONIC, &p->epoch);
    if (p->opts.threads < 1) p->opts.threads = 1;
    p->S = (int)plan->conf.stages;
    p->M = plan->conf.microbatches;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pml_status st = plan_memory(p, err);
    if (!st) st = build_stages(p, err);
    if (!st) st = pml_transport_local_create(p->S, p->M, &p->tr, err);
    int state = pml_optim_state_per_elem(&plan->conf);
    p->acc = calloc((size_t)plan->n_params + 1, sizeof *p->acc);
    p->m = calloc((size_t)plan->n_params + 1, sizeof *p->m);
    p->v = calloc((size_t)plan->n_params + 1, sizeof *p->v);
    if (!st && (!p->acc || !p->m || !p->v)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; !st && q < plan->n_params; q++) {
        const pml_plan_param *prm = &plan->params[q];
        const pml_plan_node *n = &plan->nodes[prm->node];
        if (!prm->teacher) pml_param_init(prm, n->rank, n->dims, n->numel, opts->seed, (float *)p->buf[prm->node]);
        if (prm->grad < 0) continue;
        p->acc[q] = calloc((size_t)n->numel + 1, sizeof(float));
        if (state >= 1) p->m[q] = calloc((size_t)n->numel + 1, sizeof(float));
        if (state >= 2) p->v[q] = calloc((size_t)n->numel + 1, sizeof(float));
        if (!p->acc[q] || (state >= 1 && !p->m[q]) || (state >= 2 && !p->v[q]))
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory for the optimizer state");
    }
    /* A gradient made by a matmul that nothing else reads is added to the accumulator by
     * the GEMM itself (C += A B), saving a buffer and a pass over it per micro-batch. */
    for (int q = 0; !st && q < plan->n_params; q++)
        if (p->direct[q]) p->acc_into[plan->params[q].grad] = p->acc[q];
    if (!st) st = pml_ckpt_load_teacher(plan, p, err); /* a distillation teacher's weights */
    /* Constants and ranges never change: computed once. */
    for (int i = 0; !st && i < plan->n_nodes; i++)
        if (constant_node(plan->nodes[i].op)) st = run_node(p, i, 0, err);
    if (st) {
        pml_pipeline_destroy(p);
        return st;
    }
    *out = p;
    return PML_OK;
}

void pml_pipeline_destroy(pml_pipeline *p)
{
    if (!p) return;
    for (int i = 0; p->buf && i < p->plan->n_nodes; i++) free(p->buf[i]);
    for (int q = 0; q < p->plan->n_params; q++) {
        if (p->acc) free(p->acc[q]);
        if (p->m) free(p->m[q]);
        if (p->v) free(p->v[q]);
    }
    for (int s = 0; p->stages && s < p->S; s++) {
        free(p->stages[s].fwd);
        free(p->stages[s].bwd);
        free(p->stages[s].params);
        free(p->stages[s].ev);
        free(p->stages[s].gops), free(p->stages[s].gin), free(p->stages[s].scratch);
    }
    if (p->tr) p->tr->destroy(p->tr);
    free(p->invariant), free(p->computed_at), free(p->low), free(p->acc_into), free(p->direct), free(p->fused), free(p->deferred),
        free(p->deferred_node);
    free(p->buf), free(p->per_mb), free(p->serves), free(p->bytes), free(p->acc), free(p->m), free(p->v),
        free(p->stages);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

float *pml_pipeline_param(pml_pipeline *p, int param) { return (float *)p->buf[p->plan->params[param].node]; }
int64_t pml_pipeline_steps_done(const pml_pipeline *p) { return p->step; }

float *pml_pipeline_optim_state(pml_pipeline *p, int param, int which)
{
    if (param < 0 || param >= p->plan->n_params) return NULL;
    return which == 0 ? p->m[param] : which == 1 ? p->v[param] : NULL;
}

void pml_pipeline_set_step(pml_pipeline *p, int64_t step) { p->step = step; }

/* ---- one step --------------------------------------------------------------------- */

static void abort_all(pml_pipeline *p)
{
    p->tr->abort(p->tr);
    pthread_mutex_lock(&p->mu);
    p->aborted = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Adds this stage's squared gradient norm and waits for every stage's. */
static pml_status sync_norm(pml_pipeline *p, double sq, double *total, pml_err *err)
{
    pthread_mutex_lock(&p->mu);
    p->sq_total += sq;
    int gen = p->generation;
    if (++p->arrived == p->S) {
        p->arrived = 0;
        p->generation++;
        pthread_cond_broadcast(&p->cv);
    }
    while (gen == p->generation && !p->aborted) pthread_cond_wait(&p->cv, &p->mu);
    *total = p->sq_total;
    int aborted = p->aborted && gen == p->generation;
    pthread_mutex_unlock(&p->mu);
    return aborted ? pml_err_set(err, PML_ERR_INTERNAL, "stopped: another stage failed") : PML_OK;
}

/* Frozen from this step on (a scheduled `freeze ... after N steps`). */
static int frozen_now(const pml_pipeline *p, int q)
{
    int64_t from = p->plan->params[q].frozen_from;
    return from >= 0 && p->step >= from;
}

/* A deferred weight gradient: one GEMM over every micro-batch's rows, added to the
 * accumulator. Its operands' per-micro-batch copies lie end to end from micro-batch 0. */
static pml_status run_deferred(pml_pipeline *p, int q, pml_err *err)
{
    pml_view in[2];
    pml_op_call c;
    pml_status st = make_call(p, p->plan->params[q].grad, 0, &c, in, 2, err);
    if (st) return st;
    in[0].dims[0] *= p->M;
    in[1].dims[0] *= p->M;
    return pml_cpu_run(&c, err);
}

static pml_status stage_update(pml_pipeline *p, stage *st, pml_err *err)
{
    const pml_plan *pl = p->plan;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->deferred[q] || frozen_now(p, q)) continue;
        pml_status s = run_deferred(p, q, err);
        if (s) return s;
    }
    /* acc holds sums over micro-batches: the mean is acc / M, applied in the update */
    double inv_m = 1.0 / (double)p->M, sq = 0;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue;
        sq += pml_optim_sum_squares(p->acc[q], (size_t)pl->nodes[pl->params[q].node].numel);
    }
    sq *= inv_m * inv_m;
    double total;
    pml_status status = sync_norm(p, sq, &total, err);
    if (status) return status;
    double norm = sqrt(total), scale = 1;
    if (pl->conf.grad_clip > 0 && norm > pl->conf.grad_clip) scale = pl->conf.grad_clip / norm;
    double lr = pml_lr_at(&pl->conf, p->step);
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue;
        int64_t n = pl->nodes[pl->params[q].node].numel;
        pml_optim_update(&pl->conf, lr, p->step + 1, pml_pipeline_param(p, q), p->acc[q], inv_m * scale, p->m[q],
                         p->v[q], (size_t)n);
    }
    st->sq = total;
    return PML_OK;
}

static pml_status run_instr(pml_pipeline *p, int s, const pml_plan_instr *in, pml_err *err)
{
    const pml_plan *pl = p->plan;
    stage *st = &p->stages[s];
    pml_status status = PML_OK;
    switch (in->kind) {
    case I_LOAD:
        for (int k = 0; k < pl->n_inputs && !status; k++)
            if (pl->nodes[pl->input_nodes[k]].stage == s)
                status =
                    p->opts.feed(p->opts.feed_ctx, p->step, in->mb, k, view_data(p, pl->input_nodes[k], in->mb), err);
        if (!status && pl->labels >= 0 && pl->nodes[pl->labels].stage == s)
            status = p->opts.feed(p->opts.feed_ctx, p->step, in->mb, -1, view_data(p, pl->labels, in->mb), err);
        return status;
    case I_RECV_ACT:
        return p->tr->recv(p->tr, s - 1, s, PML_MSG_ACT, in->mb, err);
    case I_SEND_ACT:
        return p->tr->send(p->tr, s, s + 1, PML_MSG_ACT, in->mb, err);
    case I_RECV_GRAD:
        return p->tr->recv(p->tr, s + 1, s, PML_MSG_GRAD, in->mb, err);
    case I_SEND_GRAD:
        return p->tr->send(p->tr, s, s - 1, PML_MSG_GRAD, in->mb, err);
    case I_FWD:
        for (int k = 0; k < st->n_fwd && !status; k++) status = run_unit(p, st, st->fwd[k], in->mb, err);
        if (!status && pl->nodes[pl->loss].stage == s) st->loss += *(const float *)view_data(p, pl->loss, in->mb);
        return status;
    case I_BWD:
        for (int k = 0; k < st->n_bwd && !status; k++) status = run_unit(p, st, st->bwd[k], in->mb, err);
        for (int k = 0; k < st->n_params && !status; k++) {
            int q = st->params[k];
            if (!p->acc[q] || p->direct[q]) continue;
            const float *g = view_data(p, pl->params[q].grad, in->mb);
            float *acc = p->acc[q];
            for (int64_t i = 0; i < pl->nodes[pl->params[q].node].numel; i++) acc[i] += g[i];
        }
        return status;
    case I_STEP:
        return stage_update(p, st, err);
    default:
        return pml_err_set(err, PML_ERR_INTERNAL, "unknown timetable instruction %d", in->kind);
    }
}

typedef struct worker {
    pml_pipeline *p;
    int s;
} worker;

static double now_us(const pml_pipeline *p)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ((double)(t.tv_sec - p->epoch.tv_sec) * 1e6) + (double)(t.tv_nsec - p->epoch.tv_nsec) * 1e-3;
}

/* Appends a span; sends are instants and not recorded. Memory failures drop spans
 * rather than fail the step: a timeline is an observation, not the work. */
static void record_span(pml_pipeline *p, stage *st, const pml_plan_instr *in, double t0, double t1)
{
    if (in->kind == I_SEND_ACT || in->kind == I_SEND_GRAD) return;
    if (in->kind == I_FWD || in->kind == I_BWD || in->kind == I_STEP) st->busy += t1 - t0;
    if (st->n_ev == st->cap_ev) {
        int cap = st->cap_ev ? st->cap_ev * 2 : 256;
        pml_trace_event *ev = realloc(st->ev, sizeof *ev * (size_t)cap);
        if (!ev) return;
        st->ev = ev;
        st->cap_ev = cap;
    }
    st->ev[st->n_ev++] = (pml_trace_event){in->kind, in->mb, p->step, t0, t1};
}

static void *stage_main(void *arg)
{
    worker *w = arg;
    pml_pipeline *p = w->p;
    stage *st = &p->stages[w->s];
    for (int i = 0; i < p->plan->n_instr[w->s]; i++) {
        double t0 = p->opts.trace ? now_us(p) : 0;
        st->status = run_instr(p, w->s, &p->plan->instr[w->s][i], &st->err);
        if (p->opts.trace && !st->status) record_span(p, st, &p->plan->instr[w->s][i], t0, now_us(p));
        if (st->status) {
            abort_all(p);
            break;
        }
    }
    return NULL;
}

pml_status pml_pipeline_step(pml_pipeline *p, pml_step_stats *stats, pml_err *err)
{
    p->version++; /* parameters changed since the last step: invariants are recomputed */
    const pml_plan *pl = p->plan;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    p->tr->reset(p->tr);
    p->aborted = 0;
    p->arrived = 0;
    p->sq_total = 0;
    for (int q = 0; q < pl->n_params; q++)
        if (p->acc[q]) memset(p->acc[q], 0, sizeof(float) * (size_t)pl->nodes[pl->params[q].node].numel);
    worker *ws = calloc((size_t)p->S, sizeof *ws);
    pthread_t *tid = calloc((size_t)p->S, sizeof *tid);
    if (!ws || !tid) {
        free(ws), free(tid);
        return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    }
    int started = 0;
    for (int s = 0; s < p->S; s++) {
        p->stages[s].busy = 0;
        p->stages[s].loss = 0;
        p->stages[s].status = PML_OK;
        ws[s] = (worker){p, s};
    }
    for (int s = 0; s < p->S; s++) {
        if (pthread_create(&tid[s], NULL, stage_main, &ws[s])) {
            p->stages[s].status =
                pml_err_set(&p->stages[s].err, PML_ERR_INTERNAL, "cannot start a thread for stage %d", s);
            abort_all(p);
            break;
        }
        started++;
    }
    for (int s = 0; s < started; s++) pthread_join(tid[s], NULL);
    free(ws), free(tid);
    /* The first failure, by stage order, is the one to report. */
    for (int s = 0; s < p->S; s++) {
        if (!p->stages[s].status) continue;
        if (err) *err = p->stages[s].err;
        for (int r = 0; r < p->S; r++) /* prefer a real cause over "another stage failed" */
            if (p->stages[r].status && !strstr(p->stages[r].err.msg, "another stage failed") && err)
                *err = p->stages[r].err;
        return err ? err->code : p->stages[s].status;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = 1e6 * ((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec)), busy = 0;
    for (int s = 0; s < p->S; s++) busy += p->stages[s].busy;
    p->last_bubble = p->opts.trace && wall > 0 ? 1 - busy / (p->S * wall) : 0;
    if (stats) {
        stats->step = p->step;
        stats->loss = p->stages[pl->nodes[pl->loss].stage].loss / (double)p->M;
        stats->grad_norm = sqrt(p->stages[0].sq);
        stats->lr = pml_lr_at(&pl->conf, p->step);
        stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    p->step++;
    return PML_OK;
}

const pml_trace_event *pml_pipeline_trace(const pml_pipeline *p, int s, int *n)
{
    *n = s >= 0 && s < p->S ? p->stages[s].n_ev : 0;
    return *n ? p->stages[s].ev : NULL;
}

double pml_pipeline_last_bubble(const pml_pipeline *p) { return p->last_bubble; }

/* ---- evaluation -------------------------------------------------------------------- */

/* Rows of micro-batch `mb` whose largest output is their label. */
static int64_t correct_rows(const pml_pipeline *p, int64_t mb)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *out = &pl->nodes[pl->output];
    int64_t classes = out->dims[out->rank - 1], rows = out->numel / (classes ? classes : 1), hits = 0;
    const float *y = view_data(p, pl->output, mb);
    const int32_t *label = view_data(p, pl->labels, mb);
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t c = 1; c < classes; c++)
            if (y[r * classes + c] > y[r * classes + best]) best = c;
        hits += best == label[r];
    }
    return hits;
}

/* One micro-batch's forward pass over every stage in order, with dropout off: what each
 * stage's load and forward would do. With `inputs` (the caller's, one per model input)
 * no labels are loaded and only the nodes the output depends on run (not the loss);
 * without, inputs and labels come from the feed at step `step` and every forward node runs. */
static pml_status forward_mb(pml_pipeline *p, int64_t step, int64_t mb, const void *const *inputs, pml_err *err)
{
    const pml_plan *pl = p->plan;
    for (int s = 0; s < p->S; s++) {
        for (int k = 0; k < pl->n_inputs; k++) {
            int n = pl->input_nodes[k];
            if (pl->nodes[n].stage != s) continue;
            if (inputs) {
                memcpy(view_data(p, n, mb), inputs[k], (size_t)pl->nodes[n].numel * 4);
                continue;
            }
            pml_status st = p->opts.feed(p->opts.feed_ctx, step, mb, k, view_data(p, n, mb), err);
            if (st) return st;
        }
        if (!inputs && pl->nodes[pl->labels].stage == s) {
            pml_status st = p->opts.feed(p->opts.feed_ctx, step, mb, -1, view_data(p, pl->labels, mb), err);
            if (st) return st;
        }
        stage *st = &p->stages[s];
        for (int k = 0; k < st->n_fwd; k++) {
            int u = st->fwd[k];
            /* a node, or a fused group (never holding dropout): the group's last node serves
             * the output when any of its nodes does */
            int n = u >= 0 ? u : pl->kernels[-u - 1].nodes[pl->kernels[-u - 1].n_nodes - 1];
            const pml_plan_node *node = &pl->nodes[n];
            if (inputs && u < 0) {
                const pml_plan_kernel *K = &pl->kernels[-u - 1];
                int any = 0;
                for (int i = 0; i < K->n_nodes; i++) any |= p->serves[K->nodes[i]];
                if (!any) continue;
            } else if (inputs && !p->serves[n])
                continue;
            if (u >= 0 && node->op == PML_OP_DROPOUT) {
                memcpy(view_data(p, n, mb), view_data(p, node->in[0], mb), (size_t)node->numel * 4);
                continue;
            }
            pml_status r = run_unit(p, st, u, mb, err);
            if (r) return r;
        }
    }
    return PML_OK;
}

pml_status pml_pipeline_evaluate(pml_pipeline *p, int64_t batches, double *loss, double *accuracy, pml_err *err)
{
    p->version++;
    const pml_plan *pl = p->plan;
    const pml_plan_node *out = &pl->nodes[pl->output], *lab = &pl->nodes[pl->labels];
    int classify = lab->dtype == PML_I32 && out->rank == lab->rank + 1 && out->rank >= 1;
    double loss_sum = 0;
    int64_t hits = 0, rows = 0;
    for (int64_t b = 0; b < batches; b++) {
        for (int64_t mb = 0; mb < p->M; mb++) {
            pml_status st = forward_mb(p, PML_EVAL_STEP0 + b, mb, NULL, err);
            if (st) return st;
            loss_sum += *(const float *)view_data(p, pl->loss, mb);
            if (classify) {
                hits += correct_rows(p, mb);
                rows += lab->numel;
            }
        }
    }
    *loss = batches ? loss_sum / (double)(batches * p->M) : NAN;
    *accuracy = classify && rows ? (double)hits / (double)rows : NAN;
    return PML_OK;
}

pml_status pml_pipeline_forward(pml_pipeline *p, const void *const *inputs, void *output, pml_err *err)
{
    p->version++; /* the parameters may have been written since */
    const pml_plan *pl = p->plan;
    if (pl->output < 0) return pml_err_set(err, PML_ERR_UNSUPPORTED, "the plan has no output");
    pml_status st = forward_mb(p, 0, 0, inputs, err);
    if (st) return st;
    memcpy(output, view_data(p, pl->output, 0), (size_t)pl->nodes[pl->output].numel * 4);
    return PML_OK;
}

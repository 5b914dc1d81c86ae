/* stage.c — the CPU backend at work (see cpu/stage.h): a stage's forward and backward
 * passes as kernel calls over the context's buffers, gradient accumulation, the
 * deferred weight-gradient GEMMs and the optimizer update, and the backend table. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/finite.h"
#include "core/rng.h"
#include "cpu/convert.h"
#include "cpu/cpu.h"
#include "cpu/gemm.h"
#include "cpu/pool.h"
#include "cpu/stage.h"
#include "plan/optim.h"

static int is_float(uint8_t dt) { return dt != PML_I32; }

void *pml_cpu_ctx_data(const pml_cpu_ctx *p, int n, int64_t mb)
{
    n = p->low[n].alias;
    if (!p->buf[n]) return NULL; /* folded away, or an intermediate of a fused group */
    return p->buf[n] + (size_t)(mb % p->copies[n]) * p->bytes[n];
}

/* Node n's tensor for micro-batch mb; with mb < 0 its shape only (data NULL). */
static pml_view view_of(const pml_cpu_ctx *p, int n, int64_t mb)
{
    const pml_plan_node *node = &p->plan->nodes[n];
    pml_view v = {0};
    v.data = mb >= 0 ? pml_cpu_ctx_data(p, n, mb) : NULL;
    v.dtype = (pml_dtype)node->dtype; /* as stored: f32, bf16, f16 (cpu/half.c) or i32 */
    v.rank = node->rank;
    memcpy(v.dims, node->dims, sizeof(int64_t) * node->rank);
    return v;
}

/* Node n's kernel call for micro-batch mb (mb < 0: shapes only), its input views in
 * `in` (room for `cap`). */
static pml_status make_call(const pml_cpu_ctx *p, int n, int64_t mb, pml_op_call *c, pml_view *in, int cap,
                            pml_err *err)
{
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
    c->fval = n == p->seed ? node->fval * p->loss_scale : node->fval;
    c->n_in = n_in;
    c->in = in;
    c->out = view_of(p, n, mb);
    if (p->acc_into[n]) {
        c->out.data = mb >= 0 ? p->acc_into[n] : NULL;
        c->accumulate = 1;
    }
    c->seed = pml_rng_u64(p->conf.seed, (uint64_t)p->step, (uint64_t)(mb >= 0 ? mb : 0));
    c->dropout_off = p->stages && p->stages[node->stage].dropout_off;
    c->threads = p->threads;
    c->pool = p->stages ? p->stages[node->stage].pool : NULL; /* none yet while the memory is planned */
    /* a training forward keeps its log-sum-exps for the backward (a serving one has none) */
    int serving = p->stages && p->stages[node->stage].serving;
    int fwd = node->op == PML_OP_ATTENTION || node->op == PML_OP_ATTENTION_QKV;
    int kept = fwd && !serving                         ? n
               : node->op == PML_OP_ATTENTION_GRAD     ? node->in[3]
               : node->op == PML_OP_ATTENTION_QKV_GRAD ? node->in[1]
                                                       : -1;
    if (kept >= 0 && mb >= 0 && p->lse && p->lse[kept]) c->lse = p->lse[kept] + mb * p->lse_rows[kept];
    return PML_OK;
}

/* The version of node n's packed operand's values (stage.h): its parameter's, or the
 * step's for an invariant computed from parameters. */
static int64_t *operand_version(pml_cpu_ctx *p, int n)
{
    return p->pack_param[n] >= 0 ? &p->values_at[p->pack_param[n]] : &p->version;
}

/* Node n's right operand as panels for the panel GEMM (cpu/gemm.h): read in place when
 * not transposed, else packed, again when its values have changed since; none (data
 * NULL) when n does not use that GEMM. Only n's stage runs n, so no lock. */
static pml_cpu_gemm_panels panels_operand(pml_cpu_ctx *p, int n, const pml_op_call *c)
{
    const pml_view *b = &c->in[1];
    int64_t rows = b->dims[0], cols = b->dims[1];
    if (!p->panels[n]) return (pml_cpu_gemm_panels){0};
    if (!c->trans[1]) return pml_cpu_gemm_in_place(b->data, cols);
    int o = p->pack_owner[n]; /* the panels are its */
    if (p->packed_at[o] != *operand_version(p, o)) {
        pml_cpu_gemm_pack_b(1, cols, rows, b->data, cols, p->packed[o]);
        p->packed_at[o] = *operand_version(p, o);
    }
    return pml_cpu_gemm_packed(p->packed[o], cols);
}

pml_status pml_cpu_ctx_run_node(pml_cpu_ctx *p, int n, int64_t mb, pml_err *err)
{
    pml_view in[64];
    pml_op_call c;
    pml_status st = make_call(p, n, mb, &c, in, 64, err);
    if (!st && pml_cpu_ctx_int8_node(p, n) >= 0) return pml_cpu_ctx_run_int8(p, n, mb, &c, err);
    if (!st && p->obs_param && p->obs_param[n] >= 0) pml_cpu_ctx_observe(p, n, &c);
    if (!st) c.panels_b = panels_operand(p, n, &c);
    return st ? st : pml_cpu_run(&c, err);
}

/* Fills st->gops with the calls of plan kernel k for micro-batch mb (mb < 0: shapes
 * only), *n_ops of them: inputs from the kernel's own nodes by position, values it does
 * not materialise left without a buffer. A bias add folded into its product (lower.h)
 * is no op of the group: its readers read the product's buffer, which holds its value. */
pml_status pml_cpu_ctx_group_calls(const pml_cpu_ctx *p, pml_cpu_stage *st, int k, int64_t mb, int *n_ops, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_plan_kernel *K = &pl->kernels[k];
    int ops = 0;
    for (int i = 0; i < K->n_nodes; i++) {
        int n = K->nodes[i];
        if (p->low[n].folded) continue;
        pml_cpu_group_op *g = &st->gops[ops];
        pml_status s = make_call(p, n, mb, &g->call, &st->gin[ops * PML_GROUP_MAX_IN], PML_GROUP_MAX_IN, err);
        if (s) return s;
        int n_in;
        const int32_t *ins = pml_cpu_node_inputs(pl, p->low, n, &n_in);
        for (int j = 0; j < n_in; j++) {
            int at = -1;
            for (int q = 0, o = 0; q < i && pl->node_kernel[ins[j]] == k; q++) {
                if (p->low[K->nodes[q]].folded) continue;
                if (K->nodes[q] == ins[j]) at = o;
                o++;
            }
            g->from[j] = (int16_t)at;
        }
        if (!pl->materialised[n] || (st->serving && p->fwd_internal[n])) g->call.out.data = NULL;
        g->call.pool = NULL; /* a group's ops run inside the pool's tasks */
        ops++;
    }
    *n_ops = ops;
    return PML_OK;
}

static pml_status run_group(pml_cpu_ctx *p, pml_cpu_stage *st, int k, int64_t mb, pml_err *err)
{
    const pml_plan_kernel *K = &p->plan->kernels[k];
    int inv = 1;
    for (int i = 0; i < K->n_nodes; i++) inv &= p->invariant[K->nodes[i]];
    if (inv) { /* the whole group depends on parameters only: once per version */
        int last = K->nodes[K->n_nodes - 1];
        if (p->computed_at[last] == p->version) return PML_OK;
        for (int i = 0; i < K->n_nodes; i++) p->computed_at[K->nodes[i]] = p->version;
    }
    int n_ops;
    pml_status s = pml_cpu_ctx_group_calls(p, st, k, mb, &n_ops, err);
    return s ? s : pml_cpu_run_group(st->gops, n_ops, st->pool, st->scratch, st->scratch_bytes, err);
}

/* With conf.check_numerics (backend_ops.h): node n's output for micro-batch mb (for a
 * gradient added into its accumulator, the accumulator: its earlier sums were checked
 * too), or PML_ERR_NONFINITE naming the op and where the source made it. `mbs` > 1: a
 * deferred weight gradient over micro-batches mb..mb + mbs - 1. Runs unfused, so every
 * op's output is in memory; views (reshapes, transposes read in place) are their
 * source's values and are not looked at again. */
static pml_status check_output(const pml_cpu_ctx *p, int n, int64_t mb, int64_t mbs, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *node = &pl->nodes[n];
    if (!p->conf.check_numerics || !is_float(node->dtype) || p->low[n].alias != n) return PML_OK;
    pml_dtype t = p->acc_into[n] ? PML_F32 : (pml_dtype)node->dtype;
    const void *x = p->acc_into[n] ? p->acc_into[n] : pml_cpu_ctx_data(p, n, mb);
    size_t len = (size_t)node->numel, k = x ? pml_cpu_scan_finite(x, t, len) : len;
    if (k == len) return PML_OK;
    static const char *const passes[] = {"forward", "backward (input gradient)", "backward (weight gradient)"};
    const char *where = p->conf.node_where && p->conf.node_where[n] && p->conf.node_where[n][0]
                            ? p->conf.node_where[n]
                            : "no source location (a plan file carries none: train the .pml to see it)";
    char mbs_str[64];
    snprintf(mbs_str, sizeof mbs_str, mbs > 1 ? "micro-batches %lld-%lld" : "micro-batch %lld", (long long)mb,
             (long long)(mb + mbs - 1));
    return pml_err_set(err, PML_ERR_NONFINITE,
                       "--check-numerics: op '%s' (node %d%s%s%s) made %s at element %zu: step %lld, stage %d, %s, %s "
                       "pass; made at %s",
                       pml_op_name((pml_opcode)node->op), n, node->label ? ", '" : "", node->label ? node->label : "",
                       node->label ? "'" : "", pml_finite_name(pml_cpu_element(x, t, k)), k, (long long)p->step + 1, (int)node->stage,
                       mbs_str, passes[node->pass < 3 ? node->pass : 0], where);
}

/* Runs node n for micro-batch mb, or not at all when it is invariant and already
 * computed in this step (or evaluation). */
static pml_status run_or_reuse(pml_cpu_ctx *p, int n, int64_t mb, pml_err *err)
{
    if (p->invariant[n]) {
        if (p->computed_at[n] == p->version) return PML_OK;
        p->computed_at[n] = p->version;
    }
    pml_status st = pml_cpu_ctx_run_node(p, n, mb, err);
    return st ? st : check_output(p, n, mb, 1, err);
}

/* A unit's start for conf.on_work: the wall clock and the thread's CPU clock (the CPU
 * time is what a breakdown can trust on a machine shared with other work); `on` when the
 * unit is timed, which also has the stage's pool measure its workers' parts. */
typedef struct work_clock {
    double wall, cpu;
    int on;
} work_clock;

static double seconds(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static work_clock work_start(const pml_cpu_ctx *p, int stage)
{
    if (!p->conf.on_work || (p->conf.work_timed && !*p->conf.work_timed)) return (work_clock){0};
    pml_cpu_pool_time(p->stages[stage].pool, 1);
    return (work_clock){seconds(CLOCK_MONOTONIC), seconds(CLOCK_THREAD_CPUTIME_ID), 1};
}

/* The unit's span on the stage's thread, then one per pool worker that took part. */
static void work_done(const pml_cpu_ctx *p, int stage, int64_t mb, int unit, int op, work_clock t0)
{
    if (!t0.on) return;
    double cpu = seconds(CLOCK_THREAD_CPUTIME_ID);
    p->conf.on_work(p->conf.on_work_ctx, stage, mb, unit, op, 0, t0.wall, seconds(CLOCK_MONOTONIC), cpu - t0.cpu);
    pml_cpu_pool *pool = p->stages[stage].pool;
    const pml_cpu_pool_span *w = pml_cpu_pool_spans(pool);
    for (int k = 1; w && k < pml_cpu_pool_threads(pool); k++)
        if (w[k].tasks) p->conf.on_work(p->conf.on_work_ctx, stage, mb, unit, op, k, w[k].t0, w[k].t1, w[k].cpu);
    pml_cpu_pool_time(pool, 0);
}

/* Runs one entry of a stage's fwd or bwd list, timed for conf.on_work. */
static pml_status run_unit(pml_cpu_ctx *p, pml_cpu_stage *st, int u, int64_t mb, pml_err *err)
{
    work_clock t0 = work_start(p, (int)(st - p->stages));
    pml_status s = u >= 0 ? run_or_reuse(p, u, mb, err) : run_group(p, st, -u - 1, mb, err);
    if (!s) work_done(p, (int)(st - p->stages), mb, u, u >= 0 ? p->low[u].op : PML_WORK_FUSED, t0);
    return s;
}

/* ---- the table ---------------------------------------------------------------------- */

static pml_status cpu_begin(pml_backend_ctx *b, int64_t step, int train, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    if (train && p->i8_param) /* backend_ops.h: int8 products have no gradient */
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "a context serving int8 weights cannot train");
    /* Invariants are recomputed when parameters may have changed (an update or a host
     * edit since the last begin) and around training steps, whose dropout differs from
     * evaluation's; back-to-back inference calls reuse them (transposed weights, say). */
    int changed = atomic_exchange(&p->params_changed, 0);
    if (train || changed || p->last_train) p->version++;
    p->last_train = train;
    p->step = step;
    /* A data-parallel replica runs micro-batches from conf.mb_first on. */
    int64_t first = p->conf.mb_count ? p->conf.mb_first : 0;
    for (int s = 0; s < p->S; s++) {
        p->stages[s].fwd_done = 0;
        p->stages[s].bwd_done = p->stages[s].wgrad_from = first;
    }
    if (!train) return PML_OK;
    pml_status st = pml_phase_begin(&p->phase, pl, step, p->acc, err); /* a freeze from this step removes work */
    if (st) return st;
    for (int q = 0; q < pl->n_params; q++)
            if (p->acc[q]) memset(p->acc[q], 0, sizeof(float) * (size_t)pl->nodes[pl->params[q].node].numel);
    return PML_OK;
}

/* Training runs every forward unit. Evaluation and serving turn dropout into a copy;
 * serving skips units the output does not depend on (a fused group, never holding
 * dropout, serves when any of its nodes does). */
static pml_status cpu_forward(pml_backend_ctx *b, int s, int64_t mb, pml_backend_fwd_mode mode, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    pml_cpu_stage *st = &p->stages[s];
    pml_cpu_half_charge_to(&st->temp_peak);
    st->serving = mode == PML_BACKEND_FWD_SERVE; /* its groups' values for backward stay in scratch */
    st->dropout_off = mode != PML_BACKEND_FWD_TRAIN;
    for (int k = 0; k < st->n_fwd; k++) {
        int u = st->fwd[k];
        if (mode != PML_BACKEND_FWD_TRAIN) {
            int n = u >= 0 ? u : pl->kernels[-u - 1].nodes[pl->kernels[-u - 1].n_nodes - 1];
            const pml_plan_node *node = &pl->nodes[n];
            if (pml_cpu_ctx_int8_skips(p, n)) continue; /* an int8 product made its value (a group's: its last) */
            if (mode == PML_BACKEND_FWD_SERVE && u < 0) {
                const pml_plan_kernel *K = &pl->kernels[-u - 1];
                int any = 0;
                for (int i = 0; i < K->n_nodes; i++) any |= p->serves[K->nodes[i]];
                if (!any) continue;
            } else if (mode == PML_BACKEND_FWD_SERVE && !p->serves[n])
                continue;
            if (u >= 0 && node->op == PML_OP_DROPOUT) {
                memcpy(pml_cpu_ctx_data(p, n, mb), pml_cpu_ctx_data(p, node->in[0], mb), p->bytes[n]);
                continue;
            }
        }
        pml_status r = run_unit(p, st, u, mb, err);
        if (r) return r;
    }
    if (mode == PML_BACKEND_FWD_TRAIN) st->fwd_done++;
    return PML_OK;
}

/* Frozen in this step (a scheduled or automatic freeze; set by begin). */
static int frozen_now(const pml_cpu_ctx *p, int q) { return p->phase.frozen[q]; }

/* A deferred weight gradient over micro-batches [from, to): one GEMM over their rows,
 * added to the accumulator. Its operands' per-micro-batch copies lie end to end. */
static pml_status run_deferred(pml_cpu_ctx *p, int q, int64_t from, int64_t to, pml_err *err)
{
    pml_view in[2];
    pml_op_call c;
    int n = p->plan->params[q].grad;
    work_clock t0 = work_start(p, p->plan->nodes[n].stage);
    pml_status st = make_call(p, n, from, &c, in, 2, err);
    if (st) return st;
    in[0].dims[0] *= to - from;
    in[1].dims[0] *= to - from;
    st = pml_cpu_run(&c, err);
    if (!st) work_done(p, p->plan->nodes[n].stage, from, n, c.op, t0);
    return st ? st : check_output(p, n, from, to - from, err);
}

/* The stage's deferred weight gradients over the micro-batches not yet in them whose
 * backward pass has run: [wgrad_from, bwd_done). */
static pml_status run_deferred_upto(pml_cpu_ctx *p, pml_cpu_stage *st, pml_err *err)
{
    if (st->bwd_done == st->wgrad_from) return PML_OK;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->deferred[q] || frozen_now(p, q)) continue;
        pml_status r = run_deferred(p, q, st->wgrad_from, st->bwd_done, err);
        if (r) return r;
    }
    st->wgrad_from = st->bwd_done;
    return PML_OK;
}

/* Units `list[0..n)` of micro-batch mb's backward on stage s, then the gradients they
 * make (of the parameters whose gradient node runs in `half`) added to the
 * accumulators; the GEMM adds direct ones itself. */
static pml_status run_backward(pml_cpu_ctx *p, pml_cpu_stage *st, const int *list, int n, int half, int64_t mb,
                               pml_err *err)
{
    st->dropout_off = 0; /* a training step's, whatever ran between its passes */
    const pml_plan *pl = p->plan;
    pml_status status = PML_OK;
    pml_cpu_half_charge_to(&st->temp_peak);
    for (int k = 0; k < n && !status; k++)
        if (pml_phase_runs(&p->phase, pl, list[k])) status = run_unit(p, st, list[k], mb, err);
    for (int k = 0; k < st->n_params && !status; k++) {
        int q = st->params[k];
        if (!p->acc[q] || p->direct[q] || p->phase.frozen[q] || p->half[pl->params[q].grad] != half) continue;
        const float *g = pml_cpu_ctx_data(p, pl->params[q].grad, mb);
        float *acc = p->acc[q];
        for (int64_t i = 0; i < pl->nodes[pl->params[q].node].numel; i++) acc[i] += g[i];
    }
    return status;
}

/* The end of micro-batch mb's backward (its weight half, when split): backward passes
 * are counted while they come in micro-batch order (every timetable's), and the
 * deferred GEMMs follow, in the weight halves at once, else early on stage 0
 * (stage.h's wgrad_early, waiting for every forward pass) or at the step's end. */
static pml_status backward_done(pml_cpu_ctx *p, pml_cpu_stage *st, int64_t mb, pml_err *err)
{
    if (mb == st->bwd_done) st->bwd_done++;
    if (p->split || (st->wgrad_early && st->bwd_done == st->wgrad_early && st->fwd_done == p->M))
        return run_deferred_upto(p, st, err);
    return PML_OK;
}

static pml_status cpu_backward(pml_backend_ctx *b, int s, int64_t mb, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    pml_cpu_stage *st = &p->stages[s];
    pml_status status = run_backward(p, st, st->bwd, st->n_bwd, 1, mb, err);
    if (!status) status = run_backward(p, st, st->wgt, st->n_wgt, 2, mb, err);
    return status ? status : backward_done(p, st, mb, err);
}

static pml_status cpu_backward_half(pml_backend_ctx *b, int s, int64_t mb, pml_backend_bwd_half half, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    pml_cpu_stage *st = &p->stages[s];
    if (half == PML_BACKEND_BWD_INPUT) return run_backward(p, st, st->bwd, st->n_bwd, 1, mb, err);
    pml_status status = run_backward(p, st, st->wgt, st->n_wgt, 2, mb, err);
    return status ? status : backward_done(p, st, mb, err);
}

static pml_status cpu_grad_sq(pml_backend_ctx *b, int s, double *out, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    pml_cpu_stage *st = &p->stages[s];
    pml_cpu_half_charge_to(&st->temp_peak); /* the deferred GEMMs may widen */
    /* every backward pass has run (of this replica's micro-batches, conf.mb_count) */
    st->bwd_done = p->conf.mb_count ? p->conf.mb_first + p->conf.mb_count : p->M;
    pml_status r = run_deferred_upto(p, st, err);
    if (r) return r;
    /* acc holds sums over micro-batches: the mean is acc / M, applied in the update */
    double inv_m = 1.0 / (double)p->M, sq = 0;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q) || pl->params[q].tie >= 0) continue; /* a tied copy: its root counts */
        sq += pml_optim_sum_squares(p->acc[q], (size_t)pl->nodes[pl->params[q].node].numel);
    }
    *out = sq * (inv_m * inv_m);
    return PML_OK;
}

/* Parameter q's optimizer update with gradient scale `gscale`. When matmuls read it
 * transposed as packed panels (stage.h), the update runs one panel's rows at a time
 * and packs them right after, while they are in cache: packing the whole weight in
 * the next forward pass read it cold (0.44-0.98 ms a step for the MLP's 512 x 512
 * fc2, docs/perf.md). The update is element-wise, so the pieces give the same bits. */
static void update_param(pml_cpu_ctx *p, int q, double lr, double gscale)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *w = &pl->nodes[pl->params[q].node];
    float *x = (float *)p->buf[pl->params[q].node], *g = p->acc[q], *m = p->m[q], *v = p->v[q];
    int64_t t = p->step + 1;
    p->values_at[q]++;
    atomic_store(&p->params_changed, 1);
    if (p->pack_first[q] < 0) {
        pml_optim_update(&pl->conf, lr, t, x, g, gscale, m, v, (size_t)w->numel);
        return;
    }
    int64_t rows = w->dims[0], cols = w->dims[1]; /* op(B) = x^T: its columns are x's rows */
    for (int64_t r0 = 0; r0 < rows; r0 += PML_CPU_GEMM_NR) {
        int64_t h = rows - r0 < PML_CPU_GEMM_NR ? rows - r0 : PML_CPU_GEMM_NR, at = r0 * cols;
        pml_optim_update(&pl->conf, lr, t, x + at, g + at, gscale, m ? m + at : NULL, v ? v + at : NULL,
                         (size_t)(h * cols));
        for (int n = p->pack_first[q]; n >= 0; n = p->pack_next[n])
            pml_cpu_gemm_pack_b(1, cols, h, x + at, cols, p->packed[n] + at);
    }
    for (int n = p->pack_first[q]; n >= 0; n = p->pack_next[n]) p->packed_at[n] = p->values_at[q];
}

static pml_status cpu_update(pml_backend_ctx *b, int s, double lr, double clip, pml_err *err)
{
    (void)err;
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    pml_cpu_stage *st = &p->stages[s];
    double inv_m = 1.0 / (double)p->M;
    work_clock t0 = work_start(p, s);
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue;
        update_param(p, q, lr, inv_m * clip);
    }
    work_done(p, s, 0, -1, PML_WORK_UPDATE, t0);
    return PML_OK;
}

/* The host may have written any parameter (stage.h): their packed copies are stale. */
static pml_status cpu_params_upload(pml_backend_ctx *b, pml_err *err)
{
    (void)err;
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    for (int q = 0; q < p->plan->n_params; q++) p->values_at[q]++;
    atomic_store(&p->params_changed, 1);
    return PML_OK;
}

static void *cpu_host_value(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_plan *pl = p->plan;
    int n = what == PML_BACKEND_VAL_INPUT    ? (k >= 0 && k < pl->n_inputs ? pl->input_nodes[k] : -1)
            : what == PML_BACKEND_VAL_LABELS ? pl->labels
            : what == PML_BACKEND_VAL_LOSS   ? pl->loss
            : what == PML_BACKEND_VAL_OUTPUT ? pl->output
                                             : -1;
    return n >= 0 && mb >= 0 && mb < p->M ? pml_cpu_ctx_data(p, n, mb) : NULL;
}

static float *cpu_host_param(pml_backend_ctx *b, int q, int which)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    if (q < 0 || q >= p->plan->n_params) return NULL;
    return which == -1 ? (float *)p->buf[p->plan->params[q].node] : which == 0 ? p->m[q] : which == 1 ? p->v[q] : NULL;
}

static pml_status cpu_boundary(pml_backend_ctx *b, int s, int kind, int64_t mb, pml_backend_buf *out, int cap, int *n,
                               pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    const pml_cpu_stage *st = &p->stages[s];
    *n = st->n_sends[kind];
    for (int i = 0; i < *n && i < cap; i++) {
        int v = st->sends[kind][i];
        out[i] = (pml_backend_buf){pml_cpu_ctx_data(p, v, mb), p->bytes[v], PML_DEVICE_HOST, -1};
    }
    return PML_OK;
}

static pml_status cpu_grads(pml_backend_ctx *b, int s, pml_backend_buf *out, int cap, int *n, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    if (s < 0 || s >= p->S) return pml_err_set(err, PML_ERR_INVALID_ARG, "no stage %d", s);
    const pml_cpu_stage *st = &p->stages[s];
    *n = 0;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue; /* as grad_sq and update skip them */
        size_t bytes = (size_t)p->plan->nodes[p->plan->params[q].node].numel * sizeof(float);
        if (*n < cap) out[*n] = (pml_backend_buf){p->acc[q], bytes, PML_DEVICE_HOST, q};
        ++*n;
    }
    return PML_OK;
}

static pml_status cpu_phase(pml_backend_ctx *b, int64_t step, pml_phase **out, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    *out = &p->phase;
    return pml_phase_auto_check(&p->phase, p->plan, step, p->acc, err);
}

/* f16's loss scale: the seed constant is computed once (stage_build.c), so again now. */
static pml_status cpu_loss_scale(pml_backend_ctx *b, double scale, pml_err *err)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    if (!(scale > 0) || !isfinite(scale))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "loss scale %g is not a positive number", scale);
    if (scale == p->loss_scale) return PML_OK;
    if (p->seed < 0) return pml_err_set(err, PML_ERR_UNSUPPORTED, "the plan has no loss gradient to scale");
    p->loss_scale = scale;
    return pml_cpu_ctx_run_node(p, p->seed, 0, err);
}

static const char *cpu_precision_note(pml_backend_ctx *b)
{
    pml_cpu_ctx *p = (pml_cpu_ctx *)b;
    return p->note[0] ? p->note : NULL;
}

/* Host memory is the only memory: no sync, upload or download; params_upload only marks
 * the packed weights stale. */
const pml_backend_ops pml_cpu_backend_ops = {
    .name = "cpu",
    .device = PML_DEVICE_HOST,
    .create = pml_cpu_ctx_create,
    .destroy = pml_cpu_ctx_destroy,
    .begin = cpu_begin,
    .forward = cpu_forward,
    .backward = cpu_backward,
    .backward_half = cpu_backward_half,
    .grad_sq = cpu_grad_sq,
    .update = cpu_update,
    .host_value = cpu_host_value,
    .host_param = cpu_host_param,
    .params_upload = cpu_params_upload,
    .boundary = cpu_boundary,
    .grads = cpu_grads,
    .phase = cpu_phase,
    .loss_scale = cpu_loss_scale,
    .precision_note = cpu_precision_note,
    .param_int8 = pml_cpu_ctx_param_int8,
    .observe_linear = pml_cpu_ctx_observe_linear,
    .observed_absmax = pml_cpu_ctx_observed_absmax,
    .memory = pml_cpu_ctx_memory,
};

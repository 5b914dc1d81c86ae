/* placement.c — placing a graph on stages and costing it (see placement.h).
 *
 * Automatic placement cuts the model between its top-level statements ("units") into
 * contiguous stages, minimising the slowest stage: a binary search on the largest
 * stage cost with a greedy fill, which is optimal for contiguous partitions. */
#include "plan/placement.h"

#include "ir/autodiff.h"
#include "ir/expand.h"
#include "ir/fuse.h"
#include "ir/precision.h"
#include "plan/memplan.h"
#include "plan/schedule.h"
#include "plan/tie.h"
#include "pml/bubble.h"
#include "sema/elab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DIAG (&P->diag)

typedef struct coster {
    pmlc_program *P;
    pmlc_graph *g;
    pmlc_cshape *shape; /* concrete shape per node */
    pmlc_dtype precision;
    int stored; /* node dtypes are storage dtypes (ir/precision.h has run) */
    double *fwd, *bwd_b, *bwd_w, *bytes;
    uint8_t *rg;  /* requires a gradient */
    uint8_t *act; /* depends on the batch: an activation, not a weight */
} coster;

/* Element size of a node as stored: its dtype once the precision pass has given it its
 * storage dtype; before, floating-point tensors in the training precision. */
static int elem_bytes(const coster *c, int n)
{
    pmlc_dtype dt = c->g->nodes.v[n].dtype;
    return pmlc_dtype_is_float(dt) && !c->stored ? pmlc_dtype_bytes(c->precision) : pmlc_dtype_bytes(dt);
}

static int64_t node_bytes(const coster *c, int n) { return pmlc_cshape_numel(&c->shape[n]) * elem_bytes(c, n); }

/* Concrete shapes with every symbol bound; reports a tensor that becomes too large. */
static int bind_shapes(pmlc_program *P, pmlc_graph *g, const int64_t *binding, pmlc_cshape **out)
{
    pmlc_cshape *sh = pmlc_arena_alloc(&P->arena, sizeof *sh * (size_t)(g->nodes.n ? g->nodes.n : 1));
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        sh[i].rank = n->rank;
        int64_t total = 1;
        for (int k = 0; k < n->rank; k++) {
            if (pmlc_size_eval(n->shape[k], binding, &sh[i].d[k]) || sh[i].d[k] <= 0 ||
                __builtin_mul_overflow(total, sh[i].d[k], &total) || total > PMLC_MAX_ELEMS) {
                pmlc_error(DIAG, n->loc,
                           "this tensor is too large once its symbolic dimensions are bound "
                           "(more than 2^48 elements)");
                return 1;
            }
        }
    }
    *out = sh;
    return 0;
}

static void mark_activations(coster *c)
{
    const pmlc_graph *g = c->g;
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        uint8_t a = n->op == OP_INPUT;
        for (int k = 0; k < n->n_in; k++) a |= c->act[n->in[k]];
        c->act[i] = a;
    }
}

/* FLOPs of every node with the parameters in `frozen` taking no gradient. */
static void cost_nodes(coster *c, const uint8_t *frozen)
{
    pmlc_graph *g = c->g;
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        const pmlc_op_info *info = &pmlc_ops[n->op];
        uint8_t rg = 0;
        if (n->op == OP_PARAM) rg = !frozen[n->param];
        for (int k = 0; k < n->n_in && info->differentiable; k++) rg |= c->rg[n->in[k]];
        c->rg[i] = rg;
        pmlc_cshape in[64];
        int in_elem[64];
        double bwd[64] = {0};
        int n_in = n->n_in < 64 ? n->n_in : 64;
        for (int k = 0; k < n_in; k++) in[k] = c->shape[n->in[k]], in_elem[k] = elem_bytes(c, n->in[k]);
        pmlc_op_cost(n->op, n_in, in, &c->shape[i], n->attr, n->n_attr, &c->fwd[i], bwd);
        c->bytes[i] = pmlc_op_bytes(n->op, n_in, in, in_elem, &c->shape[i], elem_bytes(c, i));
        c->bwd_b[i] = c->bwd_w[i] = 0;
        for (int k = 0; k < n_in; k++) {
            int src = n->in[k];
            if (!c->rg[src]) continue;
            /* The gradient of an activation is input-gradient (B) work; that of a
             * weight, or of anything computed from weights alone (transpose(w)), is
             * weight-gradient (W) work that zero-bubble schedules can defer. */
            if (c->act[src])
                c->bwd_b[i] += bwd[k];
            else
                c->bwd_w[i] += bwd[k];
        }
    }
}

/* Shapes, activations and FLOPs of every node of the graph as it is now, with the
 * parameters frozen from step 0 (*frozen, per parameter) taking no gradient. */
static int cost_graph(coster *c, const int64_t *binding, uint8_t **frozen)
{
    pmlc_program *P = c->P;
    pmlc_graph *g = c->g;
    if (bind_shapes(P, g, binding, &c->shape)) return 1;
    size_t nn = (size_t)(g->nodes.n ? g->nodes.n : 1);
    c->fwd = pmlc_arena_alloc(&P->arena, sizeof(double) * nn);
    c->bwd_b = pmlc_arena_alloc(&P->arena, sizeof(double) * nn);
    c->bwd_w = pmlc_arena_alloc(&P->arena, sizeof(double) * nn);
    c->bytes = pmlc_arena_alloc(&P->arena, sizeof(double) * nn);
    c->rg = pmlc_arena_alloc(&P->arena, nn);
    c->act = pmlc_arena_alloc(&P->arena, nn);
    mark_activations(c);
    *frozen = pmlc_arena_alloc(&P->arena, (size_t)(g->params.n ? g->params.n : 1));
    for (int p = 0; p < g->params.n; p++) (*frozen)[p] = g->params.v[p].frozen_from == 0;
    cost_nodes(c, *frozen);
    return 0;
}

static int is_source_free(const ir_node *n) { return n->op == OP_CONST || n->op == OP_ARANGE; }

/* Per-stage totals for the current costs and placement. */
static void stage_costs(coster *c, int n_stages, pmlc_stage_cost *out, const uint8_t *frozen)
{
    pmlc_graph *g = c->g;
    memset(out, 0, sizeof *out * (size_t)n_stages);
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        pmlc_stage_cost *s = &out[n->stage];
        s->fwd += c->fwd[i];
        s->fwd_bytes += c->bytes[i];
        s->bwd_b += c->bwd_b[i];
        s->bwd_w += c->bwd_w[i];
        if (n->op == OP_PARAM && !frozen[n->param]) s->trainable += g->params.v[n->param].numel;
    }
}

static double total(const pmlc_stage_cost *s) { return s->fwd + s->bwd_b + s->bwd_w; }

/* A forward value that, read by the backward pass, stays in memory from a micro-batch's
 * forward pass to its backward pass: one that differs between micro-batches (not a
 * parameter, a constant, or what only they feed, which is one value per step). */
static int kept_value(const coster *c, int x) { return x < c->g->n_forward && c->act[x]; }

/* After autodiff, before the stages take their costs from the first phase, for every
 * phase: the bytes each stage keeps between a micro-batch's
 * passes (act_bytes), read off the backward graph as it runs in the phase (the nodes a
 * still-trained parameter's gradient needs, as runtime/src/plan/phase.h runs them): the
 * forward values those nodes read, on the reader's stage. For the first phase also
 * what the stages would keep without recomputation (the values the gradient rules
 * read, recomputed copies taken back to their originals) and the FLOPs recomputing
 * costs them, which count as the phase's input-gradient work. */
static void kept_bytes(coster *c, pmlc_plan *pl)
{
    pmlc_graph *g = c->g;
    int nf = g->n_forward, N = g->nodes.n, S = pl->n_stages;
    pmlc_arena *A = &c->P->arena;
    size_t cells = (size_t)nf * (size_t)S + 1;
    uint8_t *runs = pmlc_arena_alloc(A, (size_t)N + 1);
    uint8_t *with = pmlc_arena_alloc(A, cells), *plain = pmlc_arena_alloc(A, cells);
    int32_t *stack = pmlc_arena_alloc(A, sizeof(int32_t) * ((size_t)N + 1));
    for (int i = 0; i < pl->phases.n; i++) {
        pmlc_phase *ph = &pl->phases.v[i];
        memset(runs, 0, (size_t)N + 1);
        memset(with, 0, cells);
        memset(plain, 0, cells);
        int top = 0;
        for (int p = 0; p < g->params.n; p++) {
            int64_t from = g->params.v[p].frozen_from;
            int gr = g->param_grad[p];
            if (gr >= 0 && !(from >= 0 && from <= ph->step) && !runs[gr]) runs[gr] = 1, stack[top++] = gr;
        }
        while (top > 0) {
            const ir_node *n = &g->nodes.v[stack[--top]];
            for (int k = 0; k < n->n_in; k++)
                if (n->in[k] >= nf && !runs[n->in[k]]) runs[n->in[k]] = 1, stack[top++] = n->in[k];
        }
        for (int s = 0; s < S; s++) ph->stages[s].act_bytes = 0;
        for (int b = nf; b < N; b++) {
            const ir_node *n = &g->nodes.v[b];
            if (!runs[b]) continue;
            int copy = g->copy_of && g->copy_of[b] >= 0;
            size_t at = (size_t)n->stage * (size_t)nf;
            if (copy) ph->stages[n->stage].bwd_b += c->fwd[g->copy_of[b]]; /* before what reads it */
            if (copy && i == 0) pl->stages[n->stage].recompute_flops += c->fwd[g->copy_of[b]];
            for (int k = 0; k < n->n_in; k++) {
                int x = n->in[k], orig = x < nf ? x : g->copy_of ? g->copy_of[x] : -1;
                if (kept_value(c, x) && !with[at + (size_t)x]) {
                    with[at + (size_t)x] = 1;
                    ph->stages[n->stage].act_bytes += node_bytes(c, x);
                }
                if (i == 0 && !copy && orig >= 0 && kept_value(c, orig) && !plain[at + (size_t)orig]) {
                    plain[at + (size_t)orig] = 1;
                    pl->stages[n->stage].act_bytes_plain += node_bytes(c, orig);
                }
            }
        }
    }
}

/* Fewest stages holding the units with no stage above `limit`. */
static int stages_needed(const double *cost, int n, double limit)
{
    int stages = 1;
    double acc = 0;
    for (int i = 0; i < n; i++) {
        if (acc + cost[i] > limit && acc > 0) {
            stages++;
            acc = 0;
        }
        acc += cost[i];
    }
    return stages;
}

/* The contiguous cut of the units into the graph's stage count with the current costs
 * (unit_stage[u]); nonzero when there are fewer units that compute than stages, after
 * reporting it when `report`. */
static int cut_units(pmlc_program *P, coster *c, int *unit_stage, int report)
{
    pmlc_graph *g = c->g;
    int S = g->n_stages, U = g->n_units;
    double *ucost = pmlc_arena_alloc(&P->arena, sizeof(double) * (size_t)U);
    int *has = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)U);
    /* A unit with work is a place to cut; one holding only inputs or parameter
     * declarations goes with the next unit that computes something. */
    for (int i = 0; i < g->nodes.n; i++) {
        int u = g->nodes.v[i].unit;
        ucost[u] += c->fwd[i] + c->bwd_b[i] + c->bwd_w[i];
        has[u] |= pmlc_ops[g->nodes.v[i].op].cls != PMLC_OPC_SOURCE;
    }
    int *order = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)U);
    double *cost = pmlc_arena_alloc(&P->arena, sizeof(double) * (size_t)U);
    int K = 0;
    double lo = 0, hi = 0;
    for (int u = 0; u < U; u++) {
        if (!has[u]) continue;
        order[K] = u;
        cost[K++] = ucost[u];
        if (ucost[u] > lo) lo = ucost[u];
        hi += ucost[u];
    }
    if (K < S) {
        if (!report) return 1;
        pmlc_error(DIAG, g->place_loc,
                   "cannot cut model '%s' into %d stages: it has only %d model-level statement%s that compute", g->name,
                   S, K, K == 1 ? "" : "s");
        return 1;
    }
    for (int it = 0; it < 200 && hi - lo > 1e-9 * (hi > 1 ? hi : 1); it++) {
        double mid = (lo + hi) / 2;
        if (stages_needed(cost, K, mid) <= S)
            hi = mid;
        else
            lo = mid;
    }
    int stage = 0, in_stage = 0;
    double acc = 0;
    for (int j = 0; j < K; j++) {
        int must_open = K - j == S - 1 - stage; /* one unit left for each stage still to open */
        if (in_stage && stage < S - 1 && (acc + cost[j] > hi || must_open)) {
            stage++;
            acc = 0;
            in_stage = 0;
        }
        acc += cost[j];
        in_stage++;
        unit_stage[order[j]] = stage;
    }
    for (int u = U - 1, carry = S - 1; u >= 0; u--) {
        if (has[u])
            carry = unit_stage[u];
        else
            unit_stage[u] = carry;
    }
    return 0;
}

static int place_auto(pmlc_program *P, coster *c)
{
    pmlc_graph *g = c->g;
    int *unit_stage = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)(g->n_units ? g->n_units : 1));
    if (cut_units(P, c, unit_stage, 1)) return 1;
    for (int i = 0; i < g->nodes.n; i++) g->nodes.v[i].stage = unit_stage[g->nodes.v[i].unit];
    return 0;
}

/* A phase's per-stage cost (forward + backward FLOPs, in `fwd`) if automatic placement
 * cut again with its costs, as `pmlc train` does at the phase's step (recut.h). */
static pmlc_stage_cost *recut_costs(pmlc_program *P, coster *c, int n_stages)
{
    pmlc_graph *g = c->g;
    int *unit_stage = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)(g->n_units ? g->n_units : 1));
    if (cut_units(P, c, unit_stage, 0)) return NULL;
    pmlc_stage_cost *out = pmlc_arena_alloc(&P->arena, sizeof *out * (size_t)n_stages);
    memset(out, 0, sizeof *out * (size_t)n_stages);
    for (int i = 0; i < g->nodes.n; i++) {
        pmlc_stage_cost *s = &out[unit_stage[g->nodes.v[i].unit]];
        s->fwd += c->fwd[i];
        s->bwd_b += c->bwd_b[i];
        s->bwd_w += c->bwd_w[i];
    }
    return out;
}

static const char *tensor_name(pmlc_program *P, const pmlc_graph *g, int n)
{
    const ir_node *node = &g->nodes.v[n];
    return node->label ? node->label : pmlc_arena_printf(&P->arena, "%s#%d", pmlc_ops[node->op].name, n);
}

/* What the forward graph (nodes [0, nf)) sends to later stages. */
static void find_sends(pmlc_program *P, coster *c, pmlc_plan *pl, int nf)
{
    pmlc_graph *g = c->g;
    int *sent = pmlc_arena_alloc(&P->arena, sizeof(int) * (size_t)(nf ? nf : 1));
    for (int i = 0; i < nf; i++) sent[i] = g->nodes.v[i].stage - 1;
    for (int i = 0; i < nf; i++) {
        const ir_node *n = &g->nodes.v[i];
        for (int k = 0; k < n->n_in; k++) {
            int src = n->in[k];
            const ir_node *sn = &g->nodes.v[src];
            if (sn->op == OP_PARAM || is_source_free(sn)) continue;
            for (int b = sent[src] + 1; b < n->stage; b++) {
                pmlc_send s = {src, tensor_name(P, g, src), pmlc_dtype_is_float(sn->dtype) ? c->precision : sn->dtype,
                               c->shape[src], node_bytes(c, src)};
                PMLC_PUSH(&P->arena, pl->stages[b].sends, s);
                sent[src] = b;
            }
        }
    }
}

/* Where a symbolic dimension is first written in the model's input types. */
static pmlc_loc symbol_loc(const pmlc_graph *g, const char *name)
{
    for (int i = 0; i < g->decl->list.n; i++) {
        const ast *ty = g->decl->list.v[i]->a;
        for (int k = 0; ty && k < ty->list.n; k++)
            if (ty->list.v[k]->kind == AST_NAME && !strcmp(ty->list.v[k]->name, name)) return ty->list.v[k]->loc;
    }
    return g->decl->name_loc;
}

/* A size given by --set NAME=N for a model planned without a train block. */
static int bind_from_set(pmlc_program *P, int sym, int64_t *out)
{
    for (int i = P->set_fields.n - 1; i >= 0; i--) {
        const ast *f = P->set_fields.v[i];
        if (strcmp(f->name, P->syms.names[sym])) continue;
        pmlc_value v = pmlc_eval_const(P, f->a);
        if (v.k != PMLC_V_INT || !pmlc_size_is_const(v.i) || v.i.coef < 1 || v.i.coef > (1 << 30)) {
            pmlc_error(DIAG, f->a->loc, "the size of '%s' must be an integer from 1 to 2^30", f->name);
            *out = 1;
            return 1;
        }
        *out = v.i.coef;
        return 1;
    }
    return 0;
}

static int bind_symbols(pmlc_program *P, pmlc_plan *pl, int lenient)
{
    pmlc_graph *g = pl->g;
    pmlc_train *t = pl->train;
    int bad = 0;
    for (int s = 0; s < PMLC_MAX_SYMS; s++) {
        pl->binding[s] = 1;
        if (s == g->batch_sym) {
            pl->binding[s] = pl->microbatch;
            continue;
        }
        if (t && t->dim_set[s]) {
            pl->binding[s] = t->dims[s];
            continue;
        }
        int used = 0;
        for (int k = 0; k < g->inputs.n; k++) {
            const ir_node *n = &g->nodes.v[g->inputs.v[k].node];
            for (int d = 0; d < n->rank; d++) used |= n->shape[d].pow[s] != 0;
        }
        if (!used || lenient) continue;
        if (bind_from_set(P, s, &pl->binding[s])) continue;
        pmlc_loc where = symbol_loc(g, P->syms.names[s]);
        if (t)
            pmlc_error(DIAG, where,
                       "symbolic dimension '%s' of model '%s' has no size: set it in the train block "
                       "(%s = 64) or with --set %s=64",
                       P->syms.names[s], g->name, P->syms.names[s], P->syms.names[s]);
        else
            pmlc_error(DIAG, where, "symbolic dimension '%s' of model '%s' has no size: plan it with --set %s=64",
                       P->syms.names[s], g->name, P->syms.names[s]);
        bad = 1;
    }
    return bad;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void add_phases(pmlc_program *P, coster *c, pmlc_plan *pl, uint8_t *frozen)
{
    pmlc_graph *g = pl->g;
    int64_t steps[256];
    int n = 0;
    steps[n++] = 0;
    for (int i = 0; pl->train && i < pl->train->freezes.n && n < 256; i++)
        if (!pl->train->freezes.v[i].is_auto) steps[n++] = pl->train->freezes.v[i].after;
    qsort(steps, (size_t)n, sizeof *steps, cmp_i64);
    for (int i = 0; i < n; i++) {
        if (i > 0 && steps[i] == steps[i - 1]) continue;
        pmlc_phase ph = {steps[i], 0, NULL, NULL};
        for (int p = 0; p < g->params.n; p++) {
            const ir_param *prm = &g->params.v[p];
            frozen[p] = prm->frozen_from >= 0 && prm->frozen_from <= steps[i];
            if (frozen[p]) ph.frozen += prm->numel;
        }
        cost_nodes(c, frozen);
        ph.stages = pmlc_arena_alloc(&P->arena, sizeof(pmlc_stage_cost) * (size_t)pl->n_stages);
        stage_costs(c, pl->n_stages, ph.stages, frozen);
        if (i > 0 && g->auto_place && pl->n_stages > 1) ph.recut = recut_costs(P, c, pl->n_stages);
        PMLC_PUSH(&P->arena, pl->phases, ph);
    }
}

/* The teacher's work per stage, as placed: its forward FLOPs, and the backward FLOPs
 * the cost model gives its nodes (none, since nothing of the teacher takes a gradient:
 * computed rather than assumed, so `pmlc plan` shows it). */
static void teacher_costs(coster *c, pmlc_plan *pl)
{
    const pmlc_graph *g = c->g;
    for (int i = g->teacher_begin; i < g->teacher_end; i++) {
        pmlc_stage_plan *st = &pl->stages[g->nodes.v[i].stage];
        if (pmlc_ops[g->nodes.v[i].op].cls != PMLC_OPC_SOURCE) st->n_teacher_ops++;
        st->teacher_fwd += c->fwd[i];
        st->teacher_bwd += c->bwd_b[i] + c->bwd_w[i];
        pl->teacher_fwd += c->fwd[i];
    }
}

pmlc_plan *pmlc_plan_build(pmlc_program *P, pmlc_graph *g, pmlc_train *t, pmlc_distill *d, int lenient)
{
    if (g->n_forward) { /* placement and costing read the forward graph only */
        pmlc_error(DIAG, g->decl->name_loc, "internal error: model '%s' is planned twice", g->name);
        return NULL;
    }
    /* On CUDA, attention the fused kernels do not take is the primitives it fuses (ir/expand.h). */
    int cuda = P->opt.gpu_code;
    for (int k = 0; t && k < t->n_devices; k++) cuda |= t->devices[k].cuda;
    if (cuda && pmlc_expand_attention(P, g) < 0) return NULL;
    pmlc_plan *pl = pmlc_arena_alloc(&P->arena, sizeof *pl);
    pl->g = g;
    pl->train = t;
    pl->distill = d;
    pl->batch = t ? t->batch : 1;
    pl->microbatches = t ? t->microbatches : 1;
    pl->microbatch = pl->batch / pl->microbatches;
    pl->schedule = t ? t->schedule : PMLC_SCHED_1F1B;
    pl->precision = t ? t->precision : PMLC_F32;
    pl->n_stages = g->n_stages;
    pl->chunks = g->chunks > 1 ? g->chunks : 1;
    pl->replicas = g->replicas > 0 ? g->replicas : 1;
    if (bind_symbols(P, pl, lenient)) return NULL;

    coster c = {P, g, NULL, pl->precision, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    uint8_t *frozen;
    if (cost_graph(&c, pl->binding, &frozen)) return NULL;
    if (t && pmlc_train_check_rows(P, t, g, c.shape)) return NULL;
    if (g->auto_place && place_auto(P, &c)) return NULL;
    /* Weights tied across stages: a copy on each reading stage, costed like the rest. */
    if (pmlc_tie_params(P, g) && cost_graph(&c, pl->binding, &frozen)) return NULL;

    int S = pl->n_stages;
    pl->stages = pmlc_arena_alloc(&P->arena, sizeof(pmlc_stage_plan) * (size_t)S);
    teacher_costs(&c, pl);
    add_phases(P, &c, pl, frozen);
    /* The backward pass, for the parameters trained from step 0: before the timetable,
     * which simulates the phases' costs with what it keeps and recomputes. */
    if (t && g->loss >= 0) {
        for (int p = 0; p < g->params.n; p++) frozen[p] = g->params.v[p].frozen_from == 0;
        if (pmlc_autodiff(P, g, pl->binding, frozen)) return NULL;
        for (int i = g->n_forward; i < g->nodes.n; i++) pl->stages[g->nodes.v[i].stage].n_bwd_ops++;
        kept_bytes(&c, pl);
        for (int p = 0; p < g->params.n; p++)
            if (g->params.v[p].teacher && g->param_grad[p] >= 0)
                pl->stages[g->nodes.v[g->params.v[p].node].stage].teacher_grads += g->params.v[p].numel;
    }
    int nf = g->n_forward ? g->n_forward : g->nodes.n; /* the forward graph */
    double sum = 0, max = 0;
    for (int s = 0; s < S; s++) {
        pmlc_stage_plan *st = &pl->stages[s];
        st->index = s;
        st->cost = pl->phases.v[0].stages[s];
        if (t && t->n_devices) st->device = t->devices[pmlc_plan_device_of(pl, s)];
        st->in_flight = pl->schedule == PMLC_SCHED_GPIPE ? (int)pl->microbatches
                                                         : (int)(pl->microbatches < S - s ? pl->microbatches : S - s);
        sum += total(&st->cost);
        if (total(&st->cost) > max) max = total(&st->cost);
    }
    pl->imbalance = sum > 0 ? max / (sum / S) - 1 : 0;
    pl->bubble = pml_analytic_bubble((int)pl->schedule, S / pl->chunks, pl->chunks, pl->microbatches);
    int before = P->diag.errors;
    pl->timetable = pmlc_schedule_build(P, pl);
    if (P->diag.errors > before) return NULL;
    pl->by_chunk = pmlc_timetable_by_chunk(&P->arena, pl->timetable);
    for (int s = 0; pl->timetable && s < S; s++) pl->stages[s].in_flight = pl->timetable->chunks[s].peak_in_flight;

    int state = 0;
    if (t && t->opt == PMLC_OPT_ADAMW)
        state = 2;
    else if (t && t->momentum > 0)
        state = 1;
    for (int p = 0; p < g->params.n; p++) {
        const ir_param *prm = &g->params.v[p];
        pmlc_stage_plan *st = &pl->stages[g->nodes.v[prm->node].stage];
        st->params += prm->numel;
        st->param_bytes += prm->numel * 4; /* f32 masters, whatever the declared dtype (ir/precision.h) */
        int64_t opt = prm->frozen_from != 0 ? prm->numel * 4 * state : 0;
        st->opt_bytes += opt;
        if (prm->teacher) {
            st->teacher_params += prm->numel;
            st->teacher_opt_bytes += opt;
        }
        if (prm->tie >= 0) continue; /* a copy of a weight tied across stages: its stage holds it, once in the model */
        pl->total_params += prm->numel;
        pl->teacher_params += prm->teacher ? prm->numel : 0;
        if (!st->layers.n || strcmp(st->layers.v[st->layers.n - 1], prm->layer))
            PMLC_PUSH(&P->arena, st->layers, prm->layer);
    }
    for (int i = 0; i < nf; i++)
        if (pmlc_ops[g->nodes.v[i].op].cls != PMLC_OPC_SOURCE) pl->stages[g->nodes.v[i].stage].n_ops++;
    find_sends(P, &c, pl, nf);

    /* Storage dtypes and 16-bit copies (ir/precision.h); the sends carry what is stored. */
    int32_t *to = NULL;
    pl->casts = pmlc_precision_apply(P, g, pl->precision, d ? d->teacher_precision : PMLC_F32, &to);
    if (bind_shapes(P, g, pl->binding, &c.shape)) return NULL;
    c.stored = 1;
    for (int s = 0; s < S; s++)
        for (int k = 0; k < pl->stages[s].sends.n; k++) {
            pmlc_send *snd = &pl->stages[s].sends.v[k];
            snd->node = to[snd->node];
            snd->dtype = g->nodes.v[snd->node].dtype;
            snd->bytes = node_bytes(&c, snd->node);
        }

    /* Kernels after fusion, and what the forward pass still writes to memory. */
    pmlc_fusion fu;
    pmlc_fuse(&P->arena, g, &fu);
    pl->fusion = fu;
    uint8_t *counted = pmlc_arena_alloc(&P->arena, (size_t)(fu.n_groups ? fu.n_groups : 1));
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        pmlc_stage_plan *st = &pl->stages[n->stage];
        if (fu.kind[fu.group[i]] == PMLC_KERNEL_NONE) continue;
        if (!counted[fu.group[i]]) {
            counted[fu.group[i]] = 1;
            if (n->pass == PMLC_PASS_FORWARD)
                st->n_kernels++;
            else
                st->n_bwd_kernels++;
        }
        if (i >= (g->n_forward ? g->n_forward : g->nodes.n)) continue;
        st->fwd_written_unfused += node_bytes(&c, i);
        if (fu.materialized[i]) st->fwd_written += node_bytes(&c, i);
    }
    pl->memory = pmlc_memplan_build(&P->arena, pl);

    return pl;
}

/* memplan.c — liveness over each stage's timetable and the arena placement (see
 * memplan.h).
 *
 * A buffer's lifetime is the same for every micro-batch up to where its instructions
 * sit in the timetable, so it is kept as "written by instruction kind K at kernel k,
 * last read by instruction kind K' at kernel k'" and turned into ticks per micro-batch
 * through the table of where each (kind, micro-batch) instruction starts. Slots follow
 * from those intervals: when micro-batches start and end in order (GPipe and 1F1B) the
 * ones alive at once are consecutive, so m % slots never puts two of them together. */
#include "plan/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "plan/schedule.h"
#include "pml/best_fit.h"

/* Work limits. Past the first two (millions of micro-batches) memory is not planned;
 * past the third (thousands) slots are stacked without reuse. */
#define MAX_TICKS (1 << 24)
#define MAX_CELLS ((int64_t)1 << 26) /* micro-batches x (nodes + kernels) */
#define MAX_PLACED_PAIRS ((int64_t)1 << 28)

typedef struct ival {
    int32_t a, b; /* ticks, inclusive */
} ival;

/* A buffer being planned: where it is written and last read, per instruction kind. */
typedef struct pbuf {
    pmlc_buffer out;
    int pinned;                 /* a CPU stage keeps its slots throughout the step (cpu_rules) */
    pmlc_instr_kind def_kind;
    int32_t def_pos;
    int32_t last[PMLC_I_COUNT]; /* per kind: the last kernel position that reads it, -1 none */
    ival *live;                 /* per micro-batch */
} pbuf;

typedef struct planner {
    pmlc_arena *A;
    const pmlc_plan *pl;
    const pmlc_graph *g;
    int S;
    int64_t M;
    int32_t *root;          /* per node: whose memory it is (a reshape is its input's) */
    uint8_t *invariant;     /* per node: computed from parameters and constants alone */
    int32_t *pos;           /* per kernel: its place within its instruction */
    int32_t *n_fwd, *n_bwd; /* per stage: kernels of one forward / backward instruction */
    int32_t *n_bww;         /* per stage, with `split`: kernels of one weight-gradient half (n_bwd: the input half) */
    const pmlc_timetable *tt; /* one list per stage (per chunk under interleaved 1F1B) */
    int split;              /* the timetable splits backwards into input and weight halves (schedule.h) */
    int32_t **at;           /* per stage: [kind * M + mb] the instruction's first tick, -1 none */
    int32_t **instr_of;     /* per stage, per tick: the instruction */
    int32_t *n_ticks;
    int32_t *value; /* per node: its value buffer, -1 none */
    int32_t *recv;  /* per stage * node: the received copy, -1 none */
    uint8_t *all_mb; /* per node on a CPU stage: kept for every micro-batch of the step (cpu_rules) */
    uint8_t *direct; /* per node on a CPU stage: a weight gradient its GEMM adds to the accumulator */
    uint8_t *elided; /* per node on a CPU stage: a transpose its matmuls read in place */
    PMLC_VEC(pbuf) bufs;
} planner;

static int is_view(const ir_node *n) { return n->op == OP_RESHAPE; }

static int64_t numel_of(const planner *p, int i)
{
    const ir_node *n = &p->g->nodes.v[i];
    int64_t e = 1;
    for (int k = 0; k < n->rank; k++) {
        int64_t d = 0;
        pmlc_size_eval(n->shape[k], p->pl->binding, &d);
        e *= d;
    }
    return e;
}

static int64_t value_bytes(const planner *p, int i)
{
    const ir_node *n = &p->g->nodes.v[i];
    return numel_of(p, i) * pmlc_dtype_bytes(n->dtype); /* as stored (ir/precision.h) */
}

static int64_t align_up(int64_t v) { return (v + PMLC_MEM_ALIGN - 1) / PMLC_MEM_ALIGN * PMLC_MEM_ALIGN; }

/* The same rule as the runtime's: parameters, constants, and what only they feed. */
static void mark_invariant(planner *p)
{
    for (int i = 0; i < p->g->nodes.n; i++) {
        const ir_node *n = &p->g->nodes.v[i];
        int inv = n->op == OP_PARAM || n->op == OP_CONST || n->op == OP_ARANGE ||
                  (n->op != OP_INPUT && !pmlc_op_draws(n->op, n->attr, n->n_attr) && n->n_in > 0);
        for (int k = 0; inv && n->op != OP_PARAM && k < n->n_in; k++) inv = p->invariant[n->in[k]];
        p->invariant[i] = (uint8_t)inv;
        p->root[i] = is_view(n) ? p->root[n->in[0]] : i;
    }
}

static int on_cpu(const planner *p, int s) { return !p->pl->stages[s].device.cuda; }

static int64_t dim_of(const planner *p, int i, int k)
{
    int64_t d = 0;
    pmlc_size_eval(p->g->nodes.v[i].shape[k], p->pl->binding, &d);
    return d;
}

/* Whether node i permutes its input's last two axes (a transpose), keeping the others. */
static int is_transpose(const ir_node *n)
{
    if (n->op != OP_PERMUTE || n->rank < 2 || n->n_attr != n->rank) return 0;
    for (int k = 0; k < n->rank - 2; k++)
        if (n->attr[k] != k) return 0;
    return n->attr[n->rank - 2] == n->rank - 1 && n->attr[n->rank - 1] == n->rank - 2;
}

/* A lowered weight-gradient product (runtime/src/cpu/lower.h): operand k's root and
 * whether it is read transposed. */
typedef struct operand {
    int node, root, trans; /* node: what the GEMM reads (a reshape of root, say) */
} operand;

static operand operand_of(const planner *p, int x, int flip)
{
    const ir_node *n = &p->g->nodes.v[x];
    operand o = {x, p->root[x], flip};
    if (is_transpose(n)) o.node = n->in[0], o.root = p->root[n->in[0]], o.trans = !flip;
    return o;
}

/* What the CPU backend keeps that the plan's materialised values alone do not say
 * (runtime/src/cpu/lower.h and stage_build.c's plan_memory and choose_direct;
 * docs/design.md, "The memory estimate follows the CPU backend"). On a CPU stage:
 *   - a transpose of a per-micro-batch value that only matmuls read is read in place
 *     through the GEMM's transpose flag: no buffer of its own;
 *   - add(matmul, bias) of f32 values, the product read by that add alone and the bias
 *     a parameter of its stage with one value per column, is the GEMM's epilogue
 *     (cpu/lower.h's fold_bias): the sum is the product's buffer;
 *   - a value another stage reads, and the inputs, labels, loss and output (which the
 *     executor reads or writes on its own time), are kept for every micro-batch of the
 *     step, on the stage that makes them; the reader reads that copy in place (one
 *     process shares its memory), so no received copy is counted;
 *   - a parameter's gradient made by a matmul that nothing else reads (or by a
 *     transpose of one, which the lowering turns into the product with its operands
 *     exchanged) is added to its accumulator by the GEMM: no buffer; when the product
 *     is A^T B of two per-micro-batch 2-D values in memory, it is deferred to the
 *     step's end over every micro-batch's rows, so A and B are kept for every
 *     micro-batch. */
/* Whether add node i is a bias add its product's GEMM finishes (cpu/lower.h's
 * bias_add, on the graph): returns the product, else -1. */
static int folded_bias(const planner *p, const int32_t *readers, int i)
{
    const pmlc_graph *g = p->g;
    const ir_node *n = &g->nodes.v[i];
    if (n->op != OP_ADD || n->n_in != 2 || n->dtype != PMLC_F32) return -1;
    for (int k = 0; k < 2; k++) {
        int j = n->in[k], b = n->in[1 - k], root = p->root[b];
        const ir_node *m = &g->nodes.v[j], *bn = &g->nodes.v[b];
        if (m->op != OP_MATMUL || readers[j] != 1 || m->dtype != PMLC_F32 || bn->dtype != PMLC_F32 ||
            m->rank != n->rank || m->rank < 2 || g->nodes.v[m->in[0]].dtype != PMLC_F32 ||
            g->nodes.v[m->in[1]].dtype != PMLC_F32 || g->nodes.v[root].op != OP_PARAM ||
            g->nodes.v[root].stage != m->stage)
            continue;
        int same = 1, per_column = bn->rank >= 1 && dim_of(p, b, bn->rank - 1) == dim_of(p, j, m->rank - 1);
        for (int d = 0; d < m->rank; d++) same &= dim_of(p, j, d) == dim_of(p, i, d);
        for (int d = 0; d + 1 < bn->rank; d++) per_column &= dim_of(p, b, d) == 1;
        if (same && per_column) return j;
    }
    return -1;
}

static void cpu_rules(planner *p)
{
    const pmlc_graph *g = p->g;
    const pmlc_fusion *fu = &p->pl->fusion;
    int N = g->nodes.n;
    int32_t *readers = pmlc_arena_alloc(p->A, sizeof(int32_t) * (size_t)(N ? N : 1));
    int32_t *by_matmul = pmlc_arena_alloc(p->A, sizeof(int32_t) * (size_t)(N ? N : 1));
    for (int i = 0; i < N; i++) readers[i] = by_matmul[i] = 0;
    for (int i = 0; i < N; i++) {
        const ir_node *r = &g->nodes.v[i];
        for (int k = 0; k < r->n_in; k++) readers[r->in[k]]++, by_matmul[r->in[k]] += r->op == OP_MATMUL;
    }
    int ends[3] = {g->output, g->loss, g->labels};
    for (int i = 0; i < N; i++) { /* transposes folded into their matmuls are views */
        const ir_node *n = &g->nodes.v[i];
        int end = 0;
        for (int k = 0; k < 3; k++) end |= ends[k] == i;
        if (on_cpu(p, n->stage) && is_transpose(n) && !p->invariant[i] && readers[i] && readers[i] == by_matmul[i] &&
            !end)
            p->elided[i] = 1;
        p->root[i] = is_view(n) || p->elided[i] ? p->root[n->in[0]] : i;
        int product = on_cpu(p, n->stage) && !end && !p->invariant[i] ? folded_bias(p, readers, i) : -1;
        if (product >= 0 && p->pl->fusion.materialized[i] && p->pl->fusion.materialized[product]) {
            p->elided[i] = 1; /* read where the product is */
            p->root[i] = p->root[product];
        }
    }
    for (int i = 0; i < N; i++) {
        const ir_node *r = &g->nodes.v[i];
        for (int k = 0; k < r->n_in && !is_view(r) && !p->elided[i]; k++) {
            int x = p->root[r->in[k]];
            if (g->nodes.v[x].stage != r->stage && on_cpu(p, g->nodes.v[x].stage)) p->all_mb[x] = 1;
        }
        if (r->op == OP_INPUT && on_cpu(p, r->stage)) p->all_mb[i] = 1;
    }
    for (int k = 0; k < 3; k++)
        if (ends[k] >= 0 && on_cpu(p, g->nodes.v[ends[k]].stage)) p->all_mb[p->root[ends[k]]] = 1;
    for (int q = 0; g->param_grad && q < g->params.n; q++) {
        int gr = g->param_grad[q], shared = 0, inner = -1;
        if (gr < 0) continue;
        const ir_node *n = &g->nodes.v[gr];
        if (!on_cpu(p, n->stage) || readers[gr] || p->invariant[gr]) continue;
        for (int r = 0; r < g->params.n; r++) shared |= r != q && g->param_grad[r] == gr;
        operand a, b;
        if (n->op == OP_MATMUL) {
            a = operand_of(p, n->in[0], 0), b = operand_of(p, n->in[1], 0);
        } else if (is_transpose(n) && g->nodes.v[n->in[0]].op == OP_MATMUL && readers[n->in[0]] == 1) {
            inner = n->in[0]; /* (P Q)^T = Q^T P^T */
            a = operand_of(p, g->nodes.v[inner].in[1], 1), b = operand_of(p, g->nodes.v[inner].in[0], 1);
        } else {
            continue;
        }
        if (shared) continue;
        p->direct[gr] = 1;
        if (inner >= 0) p->direct[inner] = 1;
        const ir_node *an = &g->nodes.v[a.node], *bn = &g->nodes.v[b.node];
        if (!a.trans || b.trans || an->rank != 2 || bn->rank != 2 || n->rank != 2 ||
            dim_of(p, a.node, 0) != dim_of(p, b.node, 0))
            continue;
        int kept = 1;
        for (int k = 0; k < 2; k++) {
            int x = k ? b.root : a.root;
            const ir_node *xn = &g->nodes.v[x];
            kept &= !p->invariant[x] && xn->op != OP_PARAM && (fu->materialized[x] || xn->op == OP_INPUT);
        }
        if (kept) p->all_mb[a.root] = p->all_mb[b.root] = 1;
    }
}

/* Ticks of one instruction: a forward or backward one runs its stage's kernels of that
 * pass one per tick; anything else is one tick. */
static int32_t instr_ticks(const planner *p, int s, pmlc_instr_kind kind)
{
    int32_t k = kind == PMLC_I_FWD                                 ? p->n_fwd[s]
                : kind == PMLC_I_BWD || kind == PMLC_I_BWD_INPUT ? p->n_bwd[s]
                : kind == PMLC_I_BWD_WEIGHT                      ? p->n_bww[s]
                                                                 : 1;
    return k ? k : 1;
}

/* Kernel positions within their instruction, and where each instruction starts. */
static int lay_out_time(planner *p)
{
    const pmlc_fusion *fu = &p->pl->fusion;
    int K = fu->n_groups;
    /* A node of each kernel tells its stage and pass. */
    int32_t *seen = pmlc_arena_alloc(p->A, sizeof(int32_t) * (size_t)(K ? K : 1));
    for (int k = 0; k < K; k++) seen[k] = -1;
    for (int i = 0; i < p->g->nodes.n; i++) seen[fu->group[i]] = i;
    for (int k = 0; k < K; k++) {
        const ir_node *n = &p->g->nodes.v[seen[k]];
        if (fu->kind[k] == PMLC_KERNEL_NONE) continue;
        p->pos[k] = n->pass == PMLC_PASS_FORWARD                  ? p->n_fwd[n->stage]++
                    : p->split && n->pass == PMLC_PASS_BWD_WEIGHT ? p->n_bww[n->stage]++
                                                                  : p->n_bwd[n->stage]++;
    }
    const pmlc_timetable *tt = p->tt;
    for (int s = 0; s < p->S; s++) {
        p->at[s] = pmlc_arena_alloc(p->A, sizeof(int32_t) * (size_t)(PMLC_I_COUNT * p->M));
        for (int64_t c = 0; c < PMLC_I_COUNT * p->M; c++) p->at[s][c] = -1;
        int64_t t = 0;
        for (int k = 0; k < tt->stages[s].instr.n; k++) {
            pmlc_instr in = tt->stages[s].instr.v[k];
            if (in.mb >= 0) p->at[s][in.kind * p->M + in.mb] = (int32_t)t;
            t += instr_ticks(p, s, in.kind);
            if (t > MAX_TICKS) return 1;
        }
        p->n_ticks[s] = (int32_t)t;
        p->instr_of[s] = pmlc_arena_alloc(p->A, sizeof(int32_t) * (size_t)(t ? t : 1));
        for (int k = 0, u = 0; k < tt->stages[s].instr.n; k++) {
            pmlc_instr in = tt->stages[s].instr.v[k];
            for (int j = instr_ticks(p, s, in.kind); j > 0; j--) p->instr_of[s][u++] = k;
        }
    }
    return 0;
}

static int add_buffer(planner *p, int stage, int node, pmlc_buf_role role, int per_step, int64_t bytes)
{
    pbuf b;
    memset(&b, 0, sizeof b);
    b.out.stage = stage;
    b.out.node = node;
    b.out.role = role;
    b.out.per_step = per_step;
    b.out.slots = 1;
    b.out.bytes = bytes;
    for (int k = 0; k < PMLC_I_COUNT; k++) b.last[k] = -1;
    PMLC_PUSH(p->A, p->bufs, b);
    return p->bufs.n - 1;
}

static void use(planner *p, int b, pmlc_instr_kind kind, int32_t pos)
{
    if (b >= 0 && p->bufs.v[b].last[kind] < pos) p->bufs.v[b].last[kind] = pos;
}

/* The instruction that runs node n: its pass's, or its half's when backwards are split. */
static pmlc_instr_kind pass_instr(const planner *p, const ir_node *n)
{
    if (n->pass == PMLC_PASS_FORWARD) return PMLC_I_FWD;
    if (!p->split) return PMLC_I_BWD;
    return n->pass == PMLC_PASS_BWD_WEIGHT ? PMLC_I_BWD_WEIGHT : PMLC_I_BWD_INPUT;
}

/* Every buffer, where it is written, and its reads. */
static void find_buffers(planner *p)
{
    const pmlc_graph *g = p->g;
    const pmlc_fusion *fu = &p->pl->fusion;
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = &g->nodes.v[i];
        p->value[i] = -1;
        if (is_view(n) || p->elided[i] || !(fu->materialized[i] || n->op == OP_PARAM || n->op == OP_INPUT) || p->direct[i])
            continue;
        int b = p->value[i] = add_buffer(p, n->stage, i, PMLC_BUF_VALUE, p->invariant[i], value_bytes(p, i));
        p->bufs.v[b].def_kind = n->op == OP_INPUT ? PMLC_I_LOAD : pass_instr(p, n);
        p->bufs.v[b].def_pos = n->op == OP_INPUT ? 0 : p->pos[fu->group[i]];
    }
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *r = &g->nodes.v[i];
        if (is_view(r) || p->elided[i]) continue; /* its readers read its input */
        for (int j = 0; j < r->n_in; j++) {
            int x = p->root[r->in[j]];
            const ir_node *xn = &g->nodes.v[x];
            int32_t at = p->pos[fu->group[i]];
            if (xn->stage == r->stage) {
                use(p, p->value[x], pass_instr(p, r), at);
                continue;
            }
            /* Sent by x's stage, received by r's, read there (on CPUs: read in place). */
            use(p, p->value[x], xn->pass == PMLC_PASS_FORWARD ? PMLC_I_SEND_ACT : PMLC_I_SEND_GRAD, 0);
            if (on_cpu(p, xn->stage) && on_cpu(p, r->stage)) continue;
            int32_t *rb = &p->recv[(size_t)r->stage * (size_t)g->nodes.n + (size_t)x];
            if (*rb < 0) {
                *rb = add_buffer(p, r->stage, x, PMLC_BUF_RECV, p->invariant[x], value_bytes(p, x));
                p->bufs.v[*rb].def_kind = xn->pass == PMLC_PASS_FORWARD ? PMLC_I_RECV_ACT : PMLC_I_RECV_GRAD;
            }
            use(p, *rb, pass_instr(p, r), at);
        }
    }
    /* Read at the end of their instruction: the loss and output (reported), and the
     * gradients (summed into their accumulators). */
    int ends[2] = {g->output, g->loss};
    for (int k = 0; k < 2; k++)
        if (ends[k] >= 0 && p->value[ends[k]] >= 0)
            use(p, p->value[ends[k]], PMLC_I_FWD, p->n_fwd[g->nodes.v[ends[k]].stage] - 1);
    int state = 0;
    if (p->pl->train && p->pl->train->opt == PMLC_OPT_ADAMW)
        state = 2;
    else if (p->pl->train && p->pl->train->momentum > 0)
        state = 1;
    for (int q = 0; q < g->params.n; q++) {
        const ir_param *prm = &g->params.v[q];
        int s = g->nodes.v[prm->node].stage, grad = g->param_grad ? g->param_grad[q] : -1;
        if (grad >= 0) {
            if (p->value[grad] < 0) /* added to the accumulator by its GEMM */
                ;
            else if (p->split)
                use(p, p->value[grad], PMLC_I_BWD_WEIGHT, p->n_bww[s] - 1);
            else
                use(p, p->value[grad], PMLC_I_BWD, p->n_bwd[s] - 1);
            add_buffer(p, s, prm->node, PMLC_BUF_GRAD_ACC, 1, prm->numel * 4);
        }
        if (prm->frozen_from == 0) continue;
        for (int k = 0; k < state; k++) add_buffer(p, s, prm->node, PMLC_BUF_OPT_M + k, 1, prm->numel * 4);
    }
}

/* The interval of buffer b for micro-batch m; a = -1 when it has none. */
static ival interval(const planner *p, const pbuf *b, int64_t m)
{
    const int32_t *at = p->at[b->out.stage];
    ival v = {-1, -1};
    int32_t def = at[b->def_kind * p->M + m];
    if (def >= 0) v.a = v.b = def + b->def_pos;
    for (int k = 0; k < PMLC_I_COUNT; k++) {
        int32_t t = b->last[k] >= 0 ? at[k * p->M + m] : -1;
        if (t < 0) continue;
        t += b->last[k];
        if (v.a < 0 || t < v.a) v.a = t; /* written by an instruction this stage lacks */
        if (t > v.b) v.b = t;
    }
    return v;
}

/* Per-micro-batch lifetimes and the slots they need. */
static void count_slots(planner *p, pbuf *b)
{
    int64_t M = p->M;
    b->live = pmlc_arena_alloc(p->A, sizeof(ival) * (size_t)M);
    int ordered = 1;
    for (int64_t m = 0; m < M; m++) {
        b->live[m] = interval(p, b, m);
        if (m > 0 && (b->live[m].a <= b->live[m - 1].a || b->live[m].b <= b->live[m - 1].b)) ordered = 0;
    }
    if (b->live[0].a < 0) return; /* never alive (every micro-batch runs the same instructions) */
    /* The CPU backend's planner (runtime/src/plan/memplan.h) keeps a value that outlives
     * its instruction, and its slots, for the whole step. */
    if (on_cpu(p, b->out.stage)) {
        const int32_t *of = p->instr_of[b->out.stage];
        b->pinned = (b->out.role == PMLC_BUF_VALUE && p->all_mb[b->out.node]) || of[b->live[0].a] != of[b->live[0].b];
        if (b->out.role == PMLC_BUF_VALUE && p->all_mb[b->out.node]) {
            b->out.slots = (int)M;
            return;
        }
    }
    if (!ordered) {
        b->out.slots = (int)M;
        return;
    }
    int64_t most = 1;
    for (int64_t m = 0, last = 0; m < M; m++) { /* last: the latest micro-batch started before m ends */
        if (last < m) last = m;
        while (last + 1 < M && b->live[last + 1].a <= b->live[m].b) last++;
        if (last - m + 1 > most) most = last - m + 1;
    }
    b->out.slots = (int)most;
}

/* A slot: a buffer's micro-batches m = first, first + step, ... (sorted, disjoint). */
typedef struct item {
    pbuf *b;
    int slot;
    int64_t size;
    ival span;
} item;

static int items_meet(const planner *p, const item *x, const item *y)
{
    if (x->span.b < y->span.a || y->span.b < x->span.a) return 0;
    int64_t i = x->slot, j = y->slot, sx = x->b->out.slots, sy = y->b->out.slots;
    while (i < p->M && j < p->M) {
        ival u = x->b->live[i], v = y->b->live[j];
        if (u.b < v.a)
            i += sx;
        else if (v.b < u.a)
            j += sy;
        else
            return 1;
    }
    return 0;
}

static int by_size(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return (x->span.a > y->span.a) - (x->span.a < y->span.a);
}

/* Places stage s's per-micro-batch slots above `base`; returns the arena's end. */
static int64_t place(planner *p, int s, int64_t base)
{
    int n = 0;
    for (int k = 0; k < p->bufs.n; k++)
        if (p->bufs.v[k].out.stage == s && !p->bufs.v[k].out.per_step && !p->bufs.v[k].pinned) n += p->bufs.v[k].out.slots;
    item *it = calloc((size_t)n + 1, sizeof *it);
    pml_fit_range *taken = calloc((size_t)n + 1, sizeof *taken);
    int64_t end = base;
    if (!it || !taken) {
        free(it), free(taken);
        return -1;
    }
    n = 0;
    for (int k = 0; k < p->bufs.n; k++) {
        pbuf *b = &p->bufs.v[k];
        if (b->out.stage != s || b->out.per_step || b->pinned) continue;
        b->out.offset = pmlc_arena_alloc(p->A, sizeof(int64_t) * (size_t)b->out.slots);
        for (int j = 0; j < b->out.slots; j++) {
            item x = {b, j, align_up(b->out.bytes > 0 ? b->out.bytes : 1), {INT32_MAX, -1}};
            for (int64_t m = j; m < p->M; m += b->out.slots) {
                if (b->live[m].a < x.span.a) x.span.a = b->live[m].a;
                if (b->live[m].b > x.span.b) x.span.b = b->live[m].b;
            }
            it[n++] = x;
        }
    }
    qsort(it, (size_t)n, sizeof *it, by_size);
    int reuse = (int64_t)n * n <= MAX_PLACED_PAIRS;
    for (int k = 0; k < n; k++) {
        int t = 0;
        for (int j = 0; reuse && j < k; j++)
            if (items_meet(p, &it[k], &it[j])) {
                taken[t].lo = it[j].b->out.offset[it[j].slot];
                taken[t].hi = taken[t].lo + it[j].size;
                t++;
            }
        int64_t off = reuse ? pml_best_fit(taken, t, base, it[k].size, 1) : end;
        it[k].b->out.offset[it[k].slot] = off;
        if (off + it[k].size > end) end = off + it[k].size;
    }
    free(it), free(taken);
    return end;
}

/* Peaks over the stage's ticks: values outliving their instruction, values within one,
 * and micro-batches with values outliving their instruction. */
static void measure(const planner *p, int s, pmlc_stage_memory *mem)
{
    int32_t T = p->n_ticks[s];
    int64_t *act = calloc((size_t)T + 1, sizeof *act), *tmp = calloc((size_t)T + 1, sizeof *tmp);
    int32_t *flight = calloc((size_t)T + 1, sizeof *flight);
    ival *mb = malloc(sizeof(ival) * (size_t)p->M);
    if (!act || !tmp || !flight || !mb) goto done;
    for (int64_t m = 0; m < p->M; m++) mb[m].a = INT32_MAX, mb[m].b = -1;
    for (int k = 0; k < p->bufs.n; k++) {
        const pbuf *b = &p->bufs.v[k];
        if (b->out.stage != s || b->out.per_step) continue;
        for (int64_t m = 0; m < p->M; m++) {
            ival v = b->live[m];
            if (v.a < 0) continue;
            int crosses = p->instr_of[s][v.a] != p->instr_of[s][v.b];
            int64_t *d = crosses ? act : tmp;
            d[v.a] += b->out.bytes;
            d[v.b + 1] -= b->out.bytes;
            if (crosses && v.a < mb[m].a) mb[m].a = v.a;
            if (crosses && v.b > mb[m].b) mb[m].b = v.b;
        }
    }
    for (int64_t m = 0; m < p->M; m++)
        if (mb[m].b >= 0) flight[mb[m].a]++, flight[mb[m].b + 1]--;
    int64_t a = 0, t = 0;
    int32_t f = 0;
    for (int32_t k = 0; k < T; k++) {
        a += act[k], t += tmp[k], f += flight[k];
        if (a > mem->activations) mem->activations = a;
        if (t > mem->temporaries) mem->temporaries = t;
        if (a + t > mem->peak) mem->peak = a + t;
        if (f > mem->in_flight) mem->in_flight = f;
    }
done:
    free(act), free(tmp), free(flight), free(mb);
}

static int by_key(const void *a, const void *b)
{
    const pmlc_buffer *x = &((const pbuf *)a)->out, *y = &((const pbuf *)b)->out;
    if (x->stage != y->stage) return x->stage < y->stage ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return (x->role > y->role) - (x->role < y->role);
}

pmlc_memplan *pmlc_memplan_build(pmlc_arena *A, const pmlc_plan *pl)
{
    if (!pl->timetable || pl->timetable->n_mb * (pl->g->nodes.n + pl->fusion.n_groups) > MAX_CELLS) return NULL;
    planner p;
    memset(&p, 0, sizeof p);
    p.A = A, p.pl = pl, p.g = pl->g, p.S = pl->n_stages, p.M = pl->timetable->n_mb;
    p.tt = pl->by_chunk;
    size_t N = (size_t)(p.g->nodes.n ? p.g->nodes.n : 1), K = (size_t)(pl->fusion.n_groups ? pl->fusion.n_groups : 1);
    p.root = pmlc_arena_alloc(A, sizeof(int32_t) * N);
    p.invariant = pmlc_arena_alloc(A, N);
    p.pos = pmlc_arena_alloc(A, sizeof(int32_t) * K);
    p.value = pmlc_arena_alloc(A, sizeof(int32_t) * N);
    p.recv = pmlc_arena_alloc(A, sizeof(int32_t) * N * (size_t)p.S);
    p.all_mb = pmlc_arena_alloc(A, N);
    p.direct = pmlc_arena_alloc(A, N);
    p.elided = pmlc_arena_alloc(A, N);
    memset(p.all_mb, 0, N), memset(p.direct, 0, N), memset(p.elided, 0, N);
    for (size_t i = 0; i < N * (size_t)p.S; i++) p.recv[i] = -1;
    p.n_fwd = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)p.S);
    p.n_bwd = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)p.S);
    p.n_bww = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)p.S);
    for (int s = 0; s < p.S; s++)
        for (int k = 0; k < p.tt->stages[s].instr.n; k++) p.split |= p.tt->stages[s].instr.v[k].kind == PMLC_I_BWD_WEIGHT;
    p.n_ticks = pmlc_arena_alloc(A, sizeof(int32_t) * (size_t)p.S);
    p.at = pmlc_arena_alloc(A, sizeof(int32_t *) * (size_t)p.S);
    p.instr_of = pmlc_arena_alloc(A, sizeof(int32_t *) * (size_t)p.S);
    mark_invariant(&p);
    if (lay_out_time(&p)) return NULL;
    cpu_rules(&p);
    find_buffers(&p);
    for (int k = 0; k < p.bufs.n; k++)
        if (!p.bufs.v[k].out.per_step) count_slots(&p, &p.bufs.v[k]);
    qsort(p.bufs.v, (size_t)p.bufs.n, sizeof *p.bufs.v, by_key);

    pmlc_memplan *mp = pmlc_arena_alloc(A, sizeof *mp);
    mp->n_stages = p.S;
    mp->stages = pmlc_arena_alloc(A, sizeof(pmlc_stage_memory) * (size_t)p.S);
    for (int s = 0; s < p.S; s++) {
        pmlc_stage_memory *mem = &mp->stages[s];
        for (int k = 0; k < p.bufs.n; k++) {
            pmlc_buffer *b = &p.bufs.v[k].out;
            if (b->stage != s || !b->per_step) continue;
            b->offset = pmlc_arena_alloc(A, sizeof(int64_t));
            b->offset[0] = mem->state;
            mem->state += align_up(b->bytes > 0 ? b->bytes : 1);
        }
        int64_t kept = mem->state; /* then the slots kept throughout, end to end */
        for (int k = 0; k < p.bufs.n; k++) {
            pbuf *b = &p.bufs.v[k];
            if (b->out.stage != s || b->out.per_step || !b->pinned) continue;
            b->out.offset = pmlc_arena_alloc(A, sizeof(int64_t) * (size_t)b->out.slots);
            for (int j = 0; j < b->out.slots; j++) b->out.offset[j] = kept, kept += align_up(b->out.bytes > 0 ? b->out.bytes : 1);
        }
        mem->kept = kept - mem->state;
        mem->arena = place(&p, s, kept);
        if (mem->arena < 0) return NULL;
        measure(&p, s, mem);
    }
    mp->n_buffers = p.bufs.n;
    mp->buffers = pmlc_arena_alloc(A, sizeof(pmlc_buffer) * (size_t)(p.bufs.n ? p.bufs.n : 1));
    for (int k = 0; k < p.bufs.n; k++) mp->buffers[k] = p.bufs.v[k].out;
    mp->root = p.root, mp->direct = p.direct;
    return mp;
}

/* stage_build.c — making the CUDA backend's context (see cuda/stage.h): the GPUs and
 * their modules (cuda/devices.h), how each matmul maps onto cuBLAS, which
 * values need a buffer per micro-batch, each stage's launch lists, device memory,
 * parameters (initialised on the host exactly as the CPU backend does, then copied),
 * optimizer state and constants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "cuda/devices.h"
#include "cuda/peer.h"
#include "cuda/stage.h"
#include "plan/halves.h"
#include "plan/memplan.h"
#include "plan/ops.h" /* pml_opcode, the runtime's one list of ops */
#include "plan/optim.h"

#define NOMEM(err) pml_err_set((err), PML_ERR_NOMEM, "out of memory")

static int constant_node(uint16_t op) { return op == PML_OP_CONST || op == PML_OP_ARANGE; }
static int source_node(uint16_t op) { return op == PML_OP_PARAM || op == PML_OP_INPUT || constant_node(op); }

/* How matmul launch l maps onto cuBLAS: a[..., m, k] x b[..., k, n] -> out[..., m, n]
 * with NumPy broadcasting of the batch axes (inputs are stored row-major: transposes
 * are kernels of their own in the plan). One strided-batched call when each input's
 * batch is either whole or broadcast as a block; else one call per output matrix. */
static pml_status plan_gemm(pml_cuda_ctx *p, int l, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_plan_node *o = &pl->nodes[pl->gpu_launches[l].matmul];
    const pml_plan_node *a = &pl->nodes[o->in[0]], *b = &pl->nodes[o->in[1]];
    pml_cuda_gemm_shape *g = &p->gemm[l];
    int R = o->rank, B = R - 2;
    if (R < 2 || a->rank < 2 || b->rank < 2 || a->rank > R || b->rank > R || o->dtype != PML_F32)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "matmul %d on CUDA: ranks %d x %d -> %d (%s)",
                           pl->gpu_launches[l].matmul, a->rank, b->rank, R, pml_dtype_name((pml_dtype)o->dtype));
    g->m = a->dims[a->rank - 2], g->k = a->dims[a->rank - 1], g->n = b->dims[b->rank - 1];
    if (b->dims[b->rank - 2] != g->k || o->dims[R - 2] != g->m || o->dims[R - 1] != g->n)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul %d: shapes do not fit", pl->gpu_launches[l].matmul);
    int64_t batches = 1, sa = 1, sb = 1;
    int a_full = 1, b_full = 1, a_none = 1, b_none = 1;
    g->rank = B;
    for (int d = B - 1; d >= 0; d--) {
        int da = d - (R - a->rank), db = d - (R - b->rank);
        int64_t na = da >= 0 ? a->dims[da] : 1, nb = db >= 0 ? b->dims[db] : 1, no = o->dims[d];
        if ((na != no && na != 1) || (nb != no && nb != 1))
            return pml_err_set(err, PML_ERR_INVALID_ARG, "matmul %d: batch axes do not broadcast",
                               pl->gpu_launches[l].matmul);
        g->dims[d] = no;
        g->st_a[d] = na == 1 ? 0 : sa;
        g->st_b[d] = nb == 1 ? 0 : sb;
        sa *= na, sb *= nb, batches *= no;
        a_full &= na == no, b_full &= nb == no, a_none &= na == 1, b_none &= nb == 1;
    }
    g->sc = g->m * g->n;
    if ((a_full || a_none) && (b_full || b_none)) {
        g->calls = 1, g->batch = batches;
        g->sa = a_none ? 0 : g->m * g->k;
        g->sb = b_none ? 0 : g->k * g->n;
        if (b_none && a_full) { /* a linear layer: the batch folds into m, one larger GEMM */
            g->m *= batches, g->batch = 1, g->sa = g->sc = 0;
        }
    } else {
        g->calls = batches, g->batch = 1, g->sa = g->sb = 0;
    }
    return PML_OK;
}

/* The part of the work launch l runs in: its kernel's nodes share one (halves.h). */
static int launch_half(const pml_cuda_ctx *p, int l)
{
    const pml_plan_kernel *K = &p->plan->kernels[p->plan->gpu_launches[l].kernel];
    return K->n_nodes ? p->half[K->nodes[K->n_nodes - 1]] : K->pass != 0;
}

/* Which values need a buffer per micro-batch, and each node's buffer owner. */
static pml_status plan_buffers(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int N = pl->n_nodes;
    p->root = malloc(sizeof *p->root * (size_t)(N + 1));
    p->per_mb = calloc((size_t)N + 1, 1);
    p->bytes = calloc((size_t)N + 1, sizeof *p->bytes);
    p->dbuf = calloc((size_t)N + 1, sizeof *p->dbuf);
    p->host = calloc((size_t)N + 1, sizeof *p->host);
    p->half = calloc((size_t)N + 1, 1);
    if (!p->root || !p->per_mb || !p->bytes || !p->dbuf || !p->host || !p->half) return NOMEM(err);
    p->split = pml_plan_splits_backward(pl);
    pml_plan_halves(pl, p->split, p->half);
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        p->root[i] = n->op == PML_OP_RESHAPE ? p->root[n->in[0]] : i;
        p->bytes[i] = (size_t)(n->numel ? n->numel : 1) * pml_dtype_size((pml_dtype)n->dtype); /* as stored */
    }
    /* A launch's input outlives its part of the work when the launch is on another
     * stage, or in a later part (backward work reading a forward value, the weight half
     * reading the input half's). */
    for (int l = 0; l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        const pml_plan_kernel *K = &pl->kernels[L->kernel];
        for (int a = 0; a < L->n_args; a++) {
            int r = p->root[L->args[a].node];
            const pml_plan_node *src = &pl->nodes[r];
            if (L->args[a].out || src->op == PML_OP_PARAM || constant_node(src->op)) continue;
            if (src->stage != K->stage || p->half[r] < launch_half(p, l)) p->per_mb[r] = 1;
        }
    }
    int32_t io[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3; k++)
        if (io[k] >= 0) p->per_mb[p->root[io[k]]] = 1;
    for (int k = 0; k < pl->n_inputs; k++) p->per_mb[pl->input_nodes[k]] = 1;
    for (int q = 0; q < pl->n_params; q++) {
        int g = pl->params[q].grad;
        if (g >= 0 && !pl->materialised[g] && pl->nodes[g].op != PML_OP_RESHAPE)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "parameter %s: its gradient is not materialised",
                               pl->params[q].name);
    }
    return PML_OK;
}

/* A launch of stage s, at `tick`, reads or writes node x's memory (plan/memplan.h). */
static void value_used(const pml_cuda_ctx *p, pml_mem_value *val, int s, int x, int32_t tick)
{
    int r = p->root[x];
    if (p->plan->nodes[r].stage == s)
        pml_mem_live(&val[r], tick);
    else /* read on another stream's time: kept per micro-batch anyway (plan_buffers) */
        pml_mem_always(&val[r]);
}

/* Device memory for every value some launch or the executor touches: one allocation,
 * every stage's arena in it, each value where the runtime's planner puts it
 * (plan/memplan.h) over its stage's ticks, the launches of its forward list, then of
 * its backward list, then of its weight half's (one stream runs each list whole, and a
 * value one reads from another is kept per micro-batch: plan_buffers). Values kept per
 * micro-batch, sources, and what the executor reads live throughout. Then the pinned
 * host copies. Needs the stages' launch lists. */
static pml_status place_buffers(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int N = pl->n_nodes;
    pml_mem_value *val = malloc(sizeof *val * ((size_t)N + 1));
    int32_t *pass_end = malloc(sizeof *pass_end * ((size_t)p->S + 1));
    size_t *base = calloc((size_t)p->S + 1, sizeof *base), total = 0;
    if (!val || !pass_end || !base) return free(val), free(pass_end), free(base), NOMEM(err);
    /* Of a stage this process does not run: its parameters and what other stages read
     * (the messages a transport receives into), as the CPU backend keeps them. */
    uint8_t *kept = malloc((size_t)N + 1);
    if (!kept) return free(val), free(pass_end), free(base), NOMEM(err);
    for (int i = 0; i < N; i++) kept[i] = p->runs[pl->nodes[i].stage] || pl->nodes[i].op == PML_OP_PARAM;
    for (int l = 0; l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        int s = pl->kernels[L->kernel].stage;
        for (int a = 0; a < L->n_args; a++) { /* a GEMM's operands among them */
            int r = p->root[L->args[a].node];
            kept[r] |= p->runs[s] || pl->nodes[r].stage != s;
        }
    }
    for (int i = 0; i < N; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        int owns = p->root[i] == i && (pl->materialised[i] || source_node(n->op)) && kept[i];
        val[i] = pml_mem_value_init(owns ? p->bytes[i] * (p->per_mb[i] ? (size_t)p->M : 1) : 0, PML_CUDA_MEM_ALIGN);
        if (p->per_mb[i] || source_node(n->op)) pml_mem_always(&val[i]);
    }
    for (int s = 0; s < p->S; s++) {
        const pml_cuda_stage *st = &p->stages[s];
        int32_t t = 0;
        for (int pass = 0; pass < PML_CUDA_PASSES; pass++)
            for (int k = 0; k < st->n_list[pass]; k++, t++) {
                const pml_plan_gpu_launch *L = &pl->gpu_launches[st->list[pass][k]];
                for (int a = 0; a < L->n_args; a++) value_used(p, val, s, L->args[a].node, t);
                if (L->func < 0) { /* a GEMM: its operands and product, as run_gemm reads them */
                    const pml_plan_node *o = &pl->nodes[L->matmul];
                    value_used(p, val, s, o->in[0], t), value_used(p, val, s, o->in[1], t);
                    value_used(p, val, s, L->matmul, t);
                }
            }
    }
    for (int q = 0; q < pl->n_params; q++) { /* summed into the accumulator at the end of its part */
        int g = pl->params[q].grad, s = g >= 0 ? pl->nodes[g].stage : 0;
        const pml_cuda_stage *st = &p->stages[s];
        int32_t end = st->n_list[PML_CUDA_FWD] + st->n_list[PML_CUDA_BWD];
        if (g >= 0)
            value_used(p, val, s, g, (p->half[p->root[g]] == PML_CUDA_WGT ? end + st->n_list[PML_CUDA_WGT] : end) - 1);
    }
    for (int s = 0; s < p->S; s++) pass_end[s] = p->stages[s].n_list[PML_CUDA_FWD];
    pml_status st = pml_mem_plan_stages(pl, val, pass_end, PML_CUDA_MEM_ALIGN, base, &total, err);
    /* One arena per GPU holding its stages' arenas one after another (at[s]: where
     * stage s's starts in it); the planner's bases are aligned, so are these. */
    size_t *at = st ? NULL : calloc((size_t)p->S + 1, sizeof *at);
    if (!st && !at) st = NOMEM(err);
    for (int s = 0; !st && s < p->S; s++) {
        pml_cuda_gpu *g = &p->gpus[p->stages[s].gpu];
        at[s] = g->arena_bytes;
        g->arena_bytes += (s + 1 < p->S ? base[s + 1] : total) - base[s];
    }
    for (int g = 0; !st && g < p->n_gpus; g++) {
        pml_cuda_gpu *gpu = &p->gpus[g];
        pml_cu_result r = p->d->CtxSetCurrent(gpu->cu);
        if (!r) r = p->d->MemAlloc(&gpu->arena, gpu->arena_bytes ? gpu->arena_bytes : PML_CUDA_MEM_ALIGN);
        if (r) st = pml_cuda_fail(p->d, r, "cuMemAlloc (values)", __FILE__, __LINE__, err);
    }
    for (int i = 0; !st && i < N; i++) {
        int s = pl->nodes[i].stage;
        if (val[i].bytes) p->dbuf[i] = p->gpus[p->stages[s].gpu].arena + at[s] + val[i].offset;
    }
    free(val), free(pass_end), free(base), free(at), free(kept);
    if (st) return st;
    /* Pinned host copies of what the executor writes and reads. */
    int32_t io[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3 + pl->n_inputs; k++) {
        int n = k < 3 ? io[k] : pl->input_nodes[k - 3];
        if (n < 0 || p->host[n] || !p->runs[pl->nodes[n].stage]) continue; /* the executor's, where it runs */
        if (!p->dbuf[p->root[n]])
            return pml_err_set(err, PML_ERR_INVALID_ARG, "node %d (loss, output, labels or input) has no buffer", n);
        if ((st = pml_cuda_use(p, pl->nodes[n].stage, err))) return st; /* pinned for its GPU's copies */
        pml_cu_result e = p->d->MemAllocHost(&p->host[n], p->bytes[n] * (size_t)p->M);
        if (e) return pml_cuda_fail(p->d, e, "cuMemAllocHost", __FILE__, __LINE__, err);
        memset(p->host[n], 0, p->bytes[n] * (size_t)p->M);
    }
    return PML_OK;
}

static pml_status push(int **v, int *n, int x, int cap, pml_err *err)
{
    if (!*v && !(*v = malloc(sizeof(int) * (size_t)(cap + 1)))) return NOMEM(err);
    (*v)[(*n)++] = x;
    return PML_OK;
}

/* Each stage's stream, cuBLAS handle, launch lists, parameters and sent values. */
static pml_status build_stages(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->gemm = calloc((size_t)pl->n_gpu_launches + 1, sizeof *p->gemm);
    if (!p->gemm) return NOMEM(err);
    for (int s = 0; s < p->S; s++) {
        pml_cuda_stage *st = &p->stages[s];
        pml_status used = pml_cuda_use(p, s, err); /* its stream, events and cuBLAS handle live in its GPU's context */
        if (used) return used;
        for (int k = 0; k < PML_CUDA_PASSES; k++) {
            st->graph[k] = calloc((size_t)p->M, sizeof *st->graph[k]);
            st->done[k] = calloc((size_t)p->M, sizeof *st->done[k]);
            if (!st->graph[k] || !st->done[k]) return NOMEM(err);
            for (int64_t mb = 0; mb < p->M; mb++)
                PML_CHECK_CU(p->d, EventCreate(&st->done[k][mb], PML_CU_EVENT_DISABLE_TIMING), err);
        }
        for (int c = 0; p->conf.time_calls && c < PML_BACKEND_CALLS; c++) { /* device_span's, with timing */
            if (!(st->timed[c] = calloc((size_t)p->M, 1))) return NOMEM(err);
            for (int e = 0; e < 2; e++) {
                if (!(st->span[c][e] = calloc((size_t)p->M, sizeof *st->span[c][e]))) return NOMEM(err);
                for (int64_t mb = 0; mb < p->M; mb++) PML_CHECK_CU(p->d, EventCreate(&st->span[c][e][mb], 0), err);
            }
        }
        PML_CHECK_CU(p->d, StreamCreate(&st->stream, PML_CU_STREAM_NON_BLOCKING), err);
        /* another process's stage runs no GEMM here: no handle, no workspace */
        pml_status r = p->runs[s] ? pml_cuda_blas_create(&st->blas, st->stream, err) : PML_OK;
        if (r) return r;
        PML_CHECK_CU(p->d, MemAlloc(&st->flag, 4), err);
        PML_CHECK_CU(p->d, MemsetD8Async(st->flag, 0, 4, st->stream), err);
    }
    for (int l = 0; l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        const pml_plan_kernel *K = &pl->kernels[L->kernel];
        pml_cuda_stage *st = &p->stages[K->stage];
        pml_status r = L->func < 0 ? plan_gemm(p, l, err) : PML_OK;
        if (!r && L->func >= 0 && (L->func == 0 || L->func >= pl->n_gpu_funcs))
            r = pml_err_set(err, PML_ERR_INVALID_ARG, "launch %d names function %d", l, L->func);
        int part = launch_half(p, l);
        if (!r) r = push(&st->list[part], &st->n_list[part], l, pl->n_gpu_launches, err);
        if (r) return r;
        st->checks_index |= (L->flags & PML_PLAN_GPU_INDEX_CHECK) != 0;
        st->seeded |= (L->flags & PML_PLAN_GPU_SEED) != 0;
    }
    for (int q = 0; q < pl->n_params; q++) {
        pml_cuda_stage *st = &p->stages[pl->nodes[pl->params[q].node].stage];
        pml_status r = push(&st->params, &st->n_params, q, pl->n_params, err);
        if (r) return r;
    }
    if (!(p->serves = pml_phase_serving(pl))) return NOMEM(err);
    /* Each pass's dependencies on other stages' passes (stage.h: events). */
    for (int l = 0; l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        const pml_plan_kernel *K = &pl->kernels[L->kernel];
        pml_cuda_stage *st = &p->stages[K->stage];
        int pass = launch_half(p, l);
        for (int a = 0; a < L->n_args; a++) {
            int root = p->root[L->args[a].node];
            const pml_plan_node *src = &pl->nodes[root];
            if (L->args[a].out || src->stage == K->stage || src->op == PML_OP_PARAM || constant_node(src->op)) continue;
            int dep = src->stage * PML_CUDA_PASSES + p->half[root], known = 0;
            for (int k = 0; k < st->n_deps[pass]; k++) known |= st->deps[pass][k] == dep;
            if (known) continue;
            pml_status r = push(&st->deps[pass], &st->n_deps[pass], dep, PML_CUDA_PASSES * p->S, err);
            if (r) return r;
        }
    }
    /* Sent values: roots read by a launch of another stage, each once. */
    uint8_t *seen = calloc((size_t)pl->n_nodes + 1, 1);
    if (!seen) return NOMEM(err);
    pml_status r = PML_OK;
    for (int l = 0; l < pl->n_gpu_launches && !r; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        int to = pl->kernels[L->kernel].stage;
        for (int a = 0; a < L->n_args && !r; a++) {
            int root = p->root[L->args[a].node], from = pl->nodes[root].stage;
            if (L->args[a].out || from == to || seen[root] || !p->per_mb[root]) continue;
            seen[root] = 1;
            int kind = to > from ? PML_MSG_ACT : PML_MSG_GRAD;
            pml_cuda_stage *st = &p->stages[from];
            r = push(&st->sends[kind], &st->n_sends[kind], root, pl->n_nodes, err);
        }
    }
    free(seen);
    return r;
}

/* Constant node i's buffer (on its stage's GPU, current after) filled with v, or with its
 * indices for an arange, in its dtype. */
static pml_status upload_constant(pml_cuda_ctx *p, int i, double v, pml_err *err)
{
    const pml_plan_node *n = &p->plan->nodes[i];
    pml_status used = pml_cuda_use(p, n->stage, err);
    if (used) return used;
    void *h = malloc(p->bytes[i]);
    if (!h) return NOMEM(err);
    for (int64_t e = 0; e < n->numel; e++) {
        double x = n->op == PML_OP_CONST ? v : (double)e;
        if (n->dtype == PML_I32)
            ((int32_t *)h)[e] = (int32_t)x;
        else if (n->dtype == PML_BF16)
            ((uint16_t *)h)[e] = pml_f32_to_bf16((float)x);
        else if (n->dtype == PML_F16)
            ((uint16_t *)h)[e] = pml_f32_to_f16((float)x);
        else
            ((float *)h)[e] = (float)x;
    }
    pml_cu_result r = p->d->MemcpyHtoD(p->dbuf[i], h, p->bytes[i]);
    free(h);
    return r ? pml_cuda_fail(p->d, r, "cuMemcpyHtoD (constants)", __FILE__, __LINE__, err) : PML_OK;
}

/* Parameters (initialised on the host from the seed, as the CPU backend does, so both
 * start from the same weights; a teacher's are loaded later), accumulators, optimizer
 * state, and the constants, all copied to the device once. */
static pml_status make_params(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int state = pml_optim_state_per_elem(&pl->conf);
    int Q = pl->n_params;
    p->acc = calloc((size_t)Q + 1, sizeof *p->acc);
    p->m = calloc((size_t)Q + 1, sizeof *p->m);
    p->v = calloc((size_t)Q + 1, sizeof *p->v);
    p->h_param = calloc((size_t)Q + 1, sizeof *p->h_param);
    p->h_m = calloc((size_t)Q + 1, sizeof *p->h_m);
    p->h_v = calloc((size_t)Q + 1, sizeof *p->h_v);
    if (!p->acc || !p->m || !p->v || !p->h_param || !p->h_m || !p->h_v) return NOMEM(err);
    for (int q = 0; q < Q; q++) {
        const pml_plan_param *prm = &pl->params[q];
        const pml_plan_node *n = &pl->nodes[prm->node];
        size_t bytes = sizeof(float) * (size_t)(n->numel ? n->numel : 1);
        if (!(p->h_param[q] = calloc(1, bytes))) return NOMEM(err);
        if (!prm->teacher) pml_param_init(prm, n->rank, n->dims, n->numel, p->conf.seed, p->h_param[q]);
        if (prm->grad < 0) continue;
        pml_status used = pml_cuda_use(p, n->stage, err); /* on its stage's GPU, as the update that reads them */
        if (used) return used;
        if (p->runs[n->stage]) /* another process's stage: its optimizer state only, which ranks gather */
            PML_CHECK_CU(p->d, MemAlloc(&p->acc[q], bytes), err);
        pml_cu_ptr *dev[2] = {&p->m[q], &p->v[q]};
        float **host[2] = {&p->h_m[q], &p->h_v[q]};
        for (int k = 0; k < state && k < 2; k++) {
            PML_CHECK_CU(p->d, MemAlloc(dev[k], bytes), err);
            if (!(*host[k] = calloc(1, bytes))) return NOMEM(err);
        }
    }
    for (int i = 0; i < pl->n_nodes; i++) {
        pml_status r =
            constant_node(pl->nodes[i].op) && p->dbuf[i] ? upload_constant(p, i, pl->nodes[i].fval, err) : PML_OK;
        if (r) return r;
    }
    return pml_cuda_backend_ops.params_upload((pml_backend_ctx *)p, err);
}

pml_status pml_cuda_loss_scale(pml_backend_ctx *b, double scale, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    if (!(scale > 0) || !(scale <= 0x1p100))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "loss scale %g is not a positive number to 2^100", scale);
    if (scale == p->loss_scale) return PML_OK;
    if (p->loss_seed < 0) return pml_err_set(err, PML_ERR_UNSUPPORTED, "the plan has no loss gradient to scale");
    float f = (float)scale;
    for (int g = 0; g < p->n_gpus; g++) {
        pml_cu_ptr at = 0;
        size_t size = 0;
        PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[g].cu), err);
        PML_CHECK_CU(p->d, ModuleGetGlobal(&at, &size, p->gpus[g].mod.mod, "pml_loss_scale"), err);
        if (size != sizeof f)
            return pml_err_set(err, PML_ERR_INTERNAL, "the GPU code's pml_loss_scale is %zu bytes, not 4", size);
        PML_CHECK_CU(p->d, MemcpyHtoD(at, &f, sizeof f), err);
    }
    pml_status r = p->dbuf[p->loss_seed] ? upload_constant(p, p->loss_seed, scale, err) : PML_OK;
    if (!r) p->loss_scale = scale;
    return r;
}

/* Which weight gradients the GEMM adds straight to the accumulator: those made by a
 * matmul launch whose value no other launch reads, of one parameter only. */
static pml_status choose_direct(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    p->acc_into = calloc((size_t)pl->n_nodes + 1, sizeof *p->acc_into);
    p->direct = calloc((size_t)pl->n_params + 1, 1);
    int *readers = calloc((size_t)pl->n_nodes + 1, sizeof *readers),
        *owners = calloc((size_t)pl->n_nodes + 1, sizeof(int));
    uint8_t *by_gemm = calloc((size_t)pl->n_nodes + 1, 1);
    pml_status st = p->acc_into && p->direct && readers && owners && by_gemm ? PML_OK : NOMEM(err);
    for (int l = 0; !st && l < pl->n_gpu_launches; l++) {
        const pml_plan_gpu_launch *L = &pl->gpu_launches[l];
        if (L->func < 0) by_gemm[L->matmul] = 1;
        for (int a = 0; a < L->n_args; a++)
            if (!L->args[a].out) readers[p->root[L->args[a].node]]++;
    }
    for (int q = 0; !st && q < pl->n_params; q++)
        if (pl->params[q].grad >= 0) owners[pl->params[q].grad]++;
    for (int q = 0; !st && q < pl->n_params; q++) {
        int g = pl->params[q].grad;
        if (g < 0 || !p->acc[q] || !by_gemm[g] || readers[g] || owners[g] != 1 || p->root[g] != g) continue;
        p->direct[q] = 1;
        p->acc_into[g] = p->acc[q];
    }
    free(readers), free(owners), free(by_gemm);
    return st;
}

/* With conf.time_calls: each GPU's clock event (stage.h), with timing. */
static pml_status make_clocks(pml_cuda_ctx *p, pml_err *err)
{
    p->clock_event = calloc((size_t)p->n_gpus + 1, sizeof *p->clock_event);
    p->clock_host = calloc((size_t)p->n_gpus + 1, sizeof *p->clock_host);
    if (!p->clock_event || !p->clock_host) return NOMEM(err);
    for (int g = 0; g < p->n_gpus; g++) {
        PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[g].cu), err);
        PML_CHECK_CU(p->d, EventCreate(&p->clock_event[g], 0), err);
    }
    return PML_OK;
}

pml_status pml_cuda_ctx_create(const pml_plan *plan, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err)
{
    *out = NULL;
    if (conf->check_numerics) /* refused, not ignored: the kernels are fused and asynchronous */
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "--check-numerics checks each op's output on the CPU backend only: run with --backend cpu");
    pml_cuda_ctx *p = calloc(1, sizeof *p);
    if (!p) return NOMEM(err);
    p->plan = plan;
    p->loss_seed = pml_plan_loss_seed(plan);
    p->loss_scale = 1;
    p->conf = *conf;
    p->S = (int)plan->conf.stages;
    p->M = plan->conf.microbatches;
    const char *g = getenv("PML_CUDA_GRAPHS");
    p->graphs = !(g && !strcmp(g, "0"));
    const char *t = getenv("PML_CUDA_TF32");
    p->tf32 = t && !strcmp(t, "1");
    pml_status st = p->S >= 1 && p->M >= 1 && plan->materialised
                        ? PML_OK
                        : pml_err_set(err, PML_ERR_INVALID_ARG, "the plan has no timetable or no kernels to run");
    if (!st && !(p->runs = malloc((size_t)p->S + 1))) st = NOMEM(err);
    for (int s = 0; !st && s < p->S; s++) p->runs[s] = !conf->runs || conf->runs[s];
    if (!st) st = pml_cuda_gpus_open(p, err);
    if (!st) st = plan_buffers(p, err);
    if (!st) st = build_stages(p, err);
    if (!st && conf->time_calls) st = make_clocks(p, err);
    if (!st) st = place_buffers(p, err);
    if (!st) st = make_params(p, err);
    if (!st) st = pml_cuda_mirrors_make(p, err);
    if (!st) st = choose_direct(p, err);
    if (!st) st = pml_phase_init(&p->phase, plan, err);
    for (int s = 0; !st && s < p->S; s++)
        if ((st = pml_cuda_use(p, s, err)) || p->d->StreamSynchronize(p->stages[s].stream))
            st = pml_err_set(err, PML_ERR_DEVICE, "GPU %d failed while setting up", p->gpus[p->stages[s].gpu].ordinal);
    if (st) {
        pml_cuda_ctx_destroy((pml_backend_ctx *)p);
        return st;
    }
    *out = (pml_backend_ctx *)p;
    return PML_OK;
}

void pml_cuda_ctx_destroy(pml_backend_ctx *b)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    if (!p) return;
    const pml_plan *pl = p->plan;
    if (p->stages && p->gpus) pml_cuda_links_close(p); /* first: their streams wait on the stages' */
    for (int s = 0; p->stages && p->gpus && s < p->S; s++) {
        pml_cuda_stage *st = &p->stages[s];
        if (p->gpus[st->gpu].cu) p->d->CtxSetCurrent(p->gpus[st->gpu].cu);
        if (st->stream) p->d->StreamSynchronize(st->stream);
        pml_cuda_blas_destroy(st->blas);
        if (st->stream) p->d->StreamDestroy(st->stream);
        if (st->flag) p->d->MemFree(st->flag);
        for (int k = 0; k < PML_CUDA_PASSES; k++) {
            for (int64_t mb = 0; mb < p->M; mb++) {
                if (st->graph[k] && st->graph[k][mb]) p->d->GraphExecDestroy(st->graph[k][mb]);
                if (st->done[k] && st->done[k][mb]) p->d->EventDestroy(st->done[k][mb]);
            }
            free(st->graph[k]), free(st->done[k]), free(st->deps[k]), free(st->list[k]);
        }
        for (int c = 0; c < PML_BACKEND_CALLS; c++) {
            for (int e = 0; e < 2; e++) {
                for (int64_t mb = 0; st->span[c][e] && mb < p->M; mb++)
                    if (st->span[c][e][mb]) p->d->EventDestroy(st->span[c][e][mb]);
                free(st->span[c][e]);
            }
            free(st->timed[c]);
        }
        free(st->params), free(st->sends[0]), free(st->sends[1]);
    }
    for (int i = 0; p->host && i < pl->n_nodes; i++)
        if (p->host[i]) p->d->MemFreeHost(p->host[i]);
    for (int q = 0; q < pl->n_params; q++) {
        pml_cu_ptr dev[3] = {p->acc ? p->acc[q] : 0, p->m ? p->m[q] : 0, p->v ? p->v[q] : 0};
        if (dev[0]) pml_cuda_use(p, pl->nodes[pl->params[q].node].stage, NULL);
        for (int k = 0; k < 3; k++)
            if (dev[k]) p->d->MemFree(dev[k]);
        if (p->h_param) free(p->h_param[q]);
        if (p->h_m) free(p->h_m[q]);
        if (p->h_v) free(p->h_v[q]);
    }
    if (p->tie_scratch && !p->d->CtxSetCurrent(p->gpus[p->tie_scratch_gpu].cu)) p->d->MemFree(p->tie_scratch);
    for (int g = 0; p->clock_event && g < p->n_gpus; g++)
        if (p->clock_event[g] && !p->d->CtxSetCurrent(p->gpus[g].cu)) p->d->EventDestroy(p->clock_event[g]);
    free(p->clock_event), free(p->clock_host);
    pml_phase_free(&p->phase);
    if (p->d) pml_cuda_gpus_close(p);
    free(p->fn_of), free(p->gemm), free(p->acc_into), free(p->direct), free(p->root), free(p->dbuf), free(p->per_mb),
        free(p->half), free(p->runs), free(p->bytes), free(p->host), free(p->serves), free(p->acc), free(p->m),
        free(p->v), free(p->h_param), free(p->h_m), free(p->h_v), free(p->stages);
    free(p);
}

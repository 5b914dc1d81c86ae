/* stage.c — the CUDA backend at work (see cuda/stage.h): a stage's passes as launches
 * and GEMMs queued on its stream, gradient accumulation, the norm, the optimizer
 * update, copies between host and device, and the backend table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "cuda/devices.h"
#include "cuda/peer.h"
#include "cuda/stage.h"
#include "plan/optim.h"

pml_cu_ptr pml_cuda_ctx_data(const pml_cuda_ctx *p, int n, int64_t mb)
{
    int r = p->root[n];
    if (!p->dbuf[r]) return 0;
    return p->dbuf[r] + (p->per_mb[r] ? (pml_cu_ptr)mb * p->bytes[r] : 0);
}

/* Stage s's GPU (devices.h). */
static const pml_cuda_gpu *gpu_of(const pml_cuda_ctx *p, const pml_cuda_stage *st) { return &p->gpus[st->gpu]; }

/* Blocks for a launch of `work` threads on stage st's GPU: enough to fill it, the rest
 * grid-strides. */
static unsigned grid_for(const pml_cuda_ctx *p, const pml_cuda_stage *st, int64_t work, unsigned block)
{
    int64_t blocks = (work + block - 1) / block, most = (int64_t)gpu_of(p, st)->sms * 32;
    return (unsigned)(blocks < 1 ? 1 : blocks > most ? most : blocks);
}

static pml_status run_gemm(pml_cuda_ctx *p, pml_cuda_stage *st, int l, int64_t mb, pml_err *err)
{
    const pml_plan *pl = p->plan;
    const pml_cuda_gemm_shape *g = &p->gemm[l];
    int o = pl->gpu_launches[l].matmul, at = (int)(st - p->stages); /* operands as this stage reads them */
    pml_cu_ptr A = pml_cuda_ctx_data_at(p, at, pl->nodes[o].in[0], mb);
    pml_cu_ptr B = pml_cuda_ctx_data_at(p, at, pl->nodes[o].in[1], mb);
    pml_cu_ptr C = p->acc_into[o] ? p->acc_into[o] : pml_cuda_ctx_data(p, o, mb);
    int add = p->acc_into[o] != 0;
    /* operands as stored (ir/precision.h gives a matmul's two one type), the product in
     * its own type, or into an f32 accumulator */
    pml_dtype t = (pml_dtype)pl->nodes[pl->nodes[o].in[0]].dtype, tc = add ? PML_F32 : (pml_dtype)pl->nodes[o].dtype;
    size_t es = pml_dtype_size(t), cs = pml_dtype_size(tc);
    if (g->calls == 1)
        return pml_cuda_gemm(st->blas, t, tc, g->batch, g->m, g->n, g->k, A, g->sa, B, g->sb, C, g->sc, add, p->tf32,
                             err);
    for (int64_t c = 0; c < g->calls; c++) { /* partial broadcast: one GEMM per output matrix */
        int64_t rest = c, oa = 0, ob = 0;
        for (int d = g->rank - 1; d >= 0; d--) {
            int64_t i = rest % g->dims[d];
            rest /= g->dims[d];
            oa += i * g->st_a[d], ob += i * g->st_b[d];
        }
        pml_status s = pml_cuda_gemm(st->blas, t, tc, 1, g->m, g->n, g->k, A + (pml_cu_ptr)(oa * g->m * g->k) * es, 0,
                                     B + (pml_cu_ptr)(ob * g->k * g->n) * es, 0, C + (pml_cu_ptr)(c * g->sc) * cs, 0,
                                     add, p->tf32, err);
        if (s) return s;
    }
    return PML_OK;
}

/* Launch l for micro-batch mb (the codegen's launch contract, cuda_codegen.h). */
static pml_status run_launch(pml_cuda_ctx *p, pml_cuda_stage *st, int l, int64_t mb, unsigned long long seed,
                             pml_err *err)
{
    const pml_plan_gpu_launch *L = &p->plan->gpu_launches[l];
    if (L->func < 0) return run_gemm(p, st, l, mb, err);
    enum { CAP = 64 };
    pml_cu_ptr vals_s[CAP];
    void *params_s[CAP + 2];
    pml_cu_ptr *vals = L->n_args <= CAP ? vals_s : malloc(sizeof *vals * (size_t)L->n_args);
    void **params = L->n_args <= CAP ? params_s : malloc(sizeof *params * (size_t)(L->n_args + 2));
    pml_status s = vals && params ? PML_OK : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    int np = 0;
    for (int a = 0; !s && a < L->n_args; a++) {
        int n = L->args[a].node;
        vals[a] = pml_cuda_ctx_data_at(p, (int)(st - p->stages), n, mb); /* a copy when another GPU's (devices.h) */
        params[np++] = &vals[a];
        if (L->args[a].out && (L->flags & PML_PLAN_GPU_ZERO_OUTPUT) &&
            p->d->MemsetD8Async(vals[a], 0, p->bytes[p->root[n]], st->stream))
            s = pml_err_set(err, PML_ERR_DEVICE, "cuMemsetD8Async failed");
    }
    if (L->flags & PML_PLAN_GPU_SEED) params[np++] = &seed;
    if (L->flags & PML_PLAN_GPU_INDEX_CHECK) params[np++] = &st->flag;
    if (!s)
        s = pml_cuda_launch(&gpu_of(p, st)->mod, p->fn_of[L->func], grid_for(p, st, L->work, L->block), L->block,
                            params, st->stream, err);
    if (vals != vals_s) free(vals);
    if (params != params_s) free(params);
    return s;
}

/* Whether a forward launch computes anything the output depends on. */
static int serves(const pml_cuda_ctx *p, int l)
{
    const pml_plan_kernel *K = &p->plan->kernels[p->plan->gpu_launches[l].kernel];
    for (int i = 0; i < K->n_nodes; i++)
        if (p->serves[K->nodes[i]]) return 1;
    return 0;
}

/* Frozen this step (static, scheduled or automatic freeze: plan/phase.h). */
static int frozen_now(const pml_cuda_ctx *p, int q) { return p->phase.frozen[q]; }

static int node_of(const pml_plan *pl, pml_backend_value what, int k)
{
    return what == PML_BACKEND_VAL_INPUT    ? (k >= 0 && k < pl->n_inputs ? pl->input_nodes[k] : -1)
           : what == PML_BACKEND_VAL_LABELS ? pl->labels
           : what == PML_BACKEND_VAL_LOSS   ? pl->loss
           : what == PML_BACKEND_VAL_OUTPUT ? pl->output
                                            : -1;
}

/* ---- the table ---------------------------------------------------------------------- */

/* plan/phase.h's pml_phase_auto_check with the gradient norms taken on the device. */
static pml_status auto_check(pml_cuda_ctx *p, int64_t step, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_phase *ph = &p->phase;
    if (!pml_phase_auto_due(ph, pl, step)) return PML_OK;
    double m2 = (double)p->M * (double)p->M; /* acc / M is the mean */
    for (int q = 0; q < pl->n_params; q++) {
        const pml_plan_node *n = &pl->nodes[pl->params[q].node];
        double sq = 0;
        pml_status r = p->acc[q] ? pml_cuda_use(p, n->stage, err) : PML_OK;
        if (!r && p->acc[q]) r = pml_cuda_sum_squares(p->stages[n->stage].blas, n->numel, p->acc[q], &sq, err);
        if (r) return r;
        ph->sq[q] = sq / m2;
    }
    return pml_phase_auto(ph, pl, step, err);
}

/* plan/phase.h's pml_phase_begin: the automatic freeze's check when due, then this
 * step's frozen set. When the set changes, the backward graphs no longer match the work
 * and are dropped. */
static pml_status phase_begin(pml_cuda_ctx *p, int64_t step, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_phase *ph = &p->phase;
    pml_status r = auto_check(p, step, err);
    if (r) return r;
    if (!pml_phase_at(ph, pl, step)) return PML_OK;
    for (int s = 0; s < p->S; s++) {
        pml_cuda_stage *st = &p->stages[s];
        if ((r = pml_cuda_use(p, s, err))) return r;
        PML_CHECK_CU(p->d, StreamSynchronize(st->stream), err);
        for (int k = PML_CUDA_BWD; k < PML_CUDA_PASSES; k++)
            for (int64_t mb = 0; mb < p->M; mb++)
                if (st->graph[k][mb]) p->d->GraphExecDestroy(st->graph[k][mb]), st->graph[k][mb] = NULL;
    }
    return PML_OK;
}

/* With conf.time_calls, before a training step's work: no call timed yet, and each GPU's
 * clock event recorded behind what its streams hold and waited for, so that a later
 * event's time since it, added to the host clock then, is its time on the host's clock
 * (within the wait's latency, a few microseconds). */
static pml_status clocks_begin(pml_cuda_ctx *p, pml_err *err)
{
    for (int s = 0; s < p->S; s++)
        for (int c = 0; c < PML_BACKEND_CALLS; c++) memset(p->stages[s].timed[c], 0, (size_t)p->M);
    for (int g = 0; g < p->n_gpus; g++) {
        int s = 0;
        while (s < p->S && p->stages[s].gpu != g) s++;
        if (s == p->S) continue;
        pml_status r = pml_cuda_use(p, s, err);
        if (r) return r;
        PML_CHECK_CU(p->d, EventRecord(p->clock_event[g], p->stages[s].stream), err);
        PML_CHECK_CU(p->d, EventSynchronize(p->clock_event[g]), err);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        p->clock_host[g] = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    return PML_OK;
}

/* The start (end 0) or end of stage s's training call on mb, on its stream (stage.h). */
static pml_status time_mark(pml_cuda_ctx *p, int s, pml_backend_call call, int64_t mb, int end, pml_err *err)
{
    pml_cuda_stage *st = &p->stages[s];
    if (!p->conf.time_calls) return PML_OK;
    PML_CHECK_CU(p->d, EventRecord(st->span[call][end][mb], st->stream), err);
    if (end) st->timed[call][mb] = 1;
    return PML_OK;
}

/* backend_ops.h's device_span, from the call's events and its GPU's clock event. */
static int cuda_device_span(pml_backend_ctx *b, int s, pml_backend_call call, int64_t mb, double *t0, double *t1)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    if (s < 0 || s >= p->S || mb < 0 || mb >= p->M || (int)call < 0 || call >= PML_BACKEND_CALLS) return 0;
    const pml_cuda_stage *st = &p->stages[s];
    if (!p->conf.time_calls || !st->timed[call][mb] || pml_cuda_use(p, s, NULL)) return 0;
    float a, e;
    if (p->d->EventElapsedTime(&a, p->clock_event[st->gpu], st->span[call][0][mb]) ||
        p->d->EventElapsedTime(&e, p->clock_event[st->gpu], st->span[call][1][mb]))
        return 0;
    *t0 = p->clock_host[st->gpu] + 1e-3 * (double)a, *t1 = p->clock_host[st->gpu] + 1e-3 * (double)e;
    return 1;
}

static pml_status cuda_begin(pml_backend_ctx *b, int64_t step, int train, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_plan *pl = p->plan;
    pml_status s = PML_OK;
    p->step = step;
    p->train_mode = train;
    if (train) s = phase_begin(p, step, err);
    if (!s && train && p->conf.time_calls) s = clocks_begin(p, err);
    for (int q = 0; !s && train && q < pl->n_params; q++) {
        if (!p->acc[q]) continue;
        const pml_plan_node *n = &pl->nodes[pl->params[q].node];
        if ((s = pml_cuda_use(p, n->stage, err))) return s;
        PML_CHECK_CU(p->d, MemsetD8Async(p->acc[q], 0, sizeof(float) * (size_t)n->numel, p->stages[n->stage].stream),
                     err);
    }
    return s ? s : pml_cuda_pull_statics(p, err); /* other GPUs' parameters, as updated */
}

/* Training seeds dropout per (seed, step, micro-batch), as the CPU backend; all ones
 * means "dropout off" to the kernels, so a training seed never is. */
static unsigned long long dropout_seed(const pml_cuda_ctx *p, int64_t mb, pml_backend_fwd_mode mode)
{
    if (mode != PML_BACKEND_FWD_TRAIN) return ~0ull;
    unsigned long long s = pml_rng_u64(p->conf.seed, (uint64_t)p->step, (uint64_t)mb);
    return s == ~0ull ? s - 1 : s;
}

/* The launches of one part of stage s's work on micro-batch mb (PML_CUDA_FWD, _BWD
 * or _WGT; backward parts: then the gradient sums they made). */
static pml_status run_pass(pml_cuda_ctx *p, int s, int64_t mb, int pass, pml_backend_fwd_mode mode, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_cuda_stage *st = &p->stages[s];
    unsigned long long seed = dropout_seed(p, mb, mode);
    int n = st->n_list[pass], *list = st->list[pass];
    pml_status r = PML_OK;
    for (int k = 0; !r && k < n; k++) {
        if (pass && !pml_phase_runs(&p->phase, pl, -(pl->gpu_launches[list[k]].kernel + 1))) continue; /* frozen */
        if (mode != PML_BACKEND_FWD_SERVE || serves(p, list[k])) r = run_launch(p, st, list[k], mb, seed, err);
    }
    for (int k = 0; !r && pass && k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || p->direct[q] || frozen_now(p, q) || p->half[p->root[pl->params[q].grad]] != pass) continue;
        r = pml_cuda_axpy(st->blas, pl->nodes[pl->params[q].node].numel, pml_cuda_ctx_data(p, pl->params[q].grad, mb),
                          p->acc[q], err);
    }
    return r;
}

/* A training pass: replayed from its graph, captured the first time (stage.h). */
static pml_status run_training_pass(pml_cuda_ctx *p, int s, int64_t mb, int pass, pml_err *err)
{
    pml_cuda_stage *st = &p->stages[s];
    if (!p->graphs || st->seeded || !st->n_list[pass]) /* an empty part: its gradient sums at most */
        return run_pass(p, s, mb, pass, PML_BACKEND_FWD_TRAIN, err);
    pml_cu_graph_exec *exec = &st->graph[pass][mb];
    if (!*exec) {
        pml_cu_graph g = NULL;
        PML_CHECK_CU(p->d, StreamBeginCapture(st->stream, PML_CU_CAPTURE_THREAD_LOCAL), err);
        pml_status r = run_pass(p, s, mb, pass, PML_BACKEND_FWD_TRAIN, err);
        pml_cu_result e = p->d->StreamEndCapture(st->stream, &g); /* always ends the capture */
        if (!r && e) r = pml_cuda_fail(p->d, e, "cuStreamEndCapture", __FILE__, __LINE__, err);
        if (!r && (e = p->d->GraphInstantiate(exec, g, 0)))
            r = pml_cuda_fail(p->d, e, "cuGraphInstantiate", __FILE__, __LINE__, err);
        if (g) p->d->GraphDestroy(g);
        if (r) return r;
    }
    PML_CHECK_CU(p->d, GraphLaunch(*exec, st->stream), err);
    return PML_OK;
}

/* Before a pass of stage s on mb: its stream waits for the other stages' passes on mb
 * whose values it reads (their events, recorded by sync before they sent). */
static pml_status wait_for_inputs(pml_cuda_ctx *p, int s, int64_t mb, int pass, pml_err *err)
{
    pml_cuda_stage *st = &p->stages[s];
    for (int k = 0; k < st->n_deps[pass]; k++) {
        int dep = st->deps[pass][k];
        PML_CHECK_CU(p->d,
                     StreamWaitEvent(st->stream, p->stages[dep / PML_CUDA_PASSES].done[dep % PML_CUDA_PASSES][mb], 0),
                     err);
    }
    st->last_pass = pass, st->last_mb = mb, st->pending = 1;
    return pml_cuda_pull(p, s, pass, mb, err); /* copies of what it reads from other GPUs (devices.h) */
}

static pml_status cuda_forward(pml_backend_ctx *b, int s, int64_t mb, pml_backend_fwd_mode mode, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_status r = pml_cuda_use(p, s, err);
    if (!r) r = wait_for_inputs(p, s, mb, PML_CUDA_FWD, err);
    if (r) return r;
    if (mode != PML_BACKEND_FWD_TRAIN) return run_pass(p, s, mb, PML_CUDA_FWD, mode, err);
    r = time_mark(p, s, PML_BACKEND_CALL_FWD, mb, 0, err);
    if (!r) r = run_training_pass(p, s, mb, PML_CUDA_FWD, err);
    return r ? r : time_mark(p, s, PML_BACKEND_CALL_FWD, mb, 1, err);
}

static pml_status cuda_sync(pml_backend_ctx *b, int s, pml_err *err);

/* One backward part of micro-batch mb on stage s, which `opens` and `closes` the timing
 * of its call (time_mark). A whole backward without a split is the input part alone
 * (its list holds every backward launch); with one, its two halves in turn, the first
 * published on its own (the previous stage waits for the input half's event, which
 * sync would not record once the weight half ran). */
static pml_status backward_part(pml_cuda_ctx *p, int s, int64_t mb, int pass, pml_backend_call call, int opens,
                                int closes, pml_err *err)
{
    pml_status r = pml_cuda_use(p, s, err);
    if (!r) r = wait_for_inputs(p, s, mb, pass, err);
    if (!r && opens) r = time_mark(p, s, call, mb, 0, err);
    if (!r) r = run_training_pass(p, s, mb, pass, err);
    return r || !closes ? r : time_mark(p, s, call, mb, 1, err);
}

static pml_status cuda_backward(pml_backend_ctx *b, int s, int64_t mb, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_status r = backward_part(p, s, mb, PML_CUDA_BWD, PML_BACKEND_CALL_BWD, 1, !p->split, err);
    if (!r && p->split) r = cuda_sync(b, s, err);
    return r || !p->split ? r : backward_part(p, s, mb, PML_CUDA_WGT, PML_BACKEND_CALL_BWD, 0, 1, err);
}

/* backend_ops.h's backward_half: zero bubble's bwd_input and bwd_weight. */
static pml_status cuda_backward_half(pml_backend_ctx *b, int s, int64_t mb, pml_backend_bwd_half half, pml_err *err)
{
    int input = half == PML_BACKEND_BWD_INPUT;
    return backward_part((pml_cuda_ctx *)b, s, mb, input ? PML_CUDA_BWD : PML_CUDA_WGT,
                         input ? PML_BACKEND_CALL_BWD_INPUT : PML_BACKEND_CALL_BWD_WEIGHT, 1, 1, err);
}

/* Publishes the stage's last pass to the other stages (stage.h): no host wait. */
static pml_status cuda_sync(pml_backend_ctx *b, int s, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_cuda_stage *st = &p->stages[s];
    pml_status r = pml_cuda_use(p, s, err);
    if (r || !st->pending) return r;
    st->pending = 0;
    PML_CHECK_CU(p->d, EventRecord(st->done[st->last_pass][st->last_mb], st->stream), err);
    return PML_OK;
}

/* The index-error flags of every stage, read once the work that could set them is done. */
static pml_status check_indices(pml_cuda_ctx *p, pml_err *err)
{
    for (int s = 0; s < p->S; s++) {
        unsigned flag = 0;
        if (!p->stages[s].checks_index) continue;
        pml_status r = pml_cuda_use(p, s, err);
        if (r) return r;
        PML_CHECK_CU(p->d, MemcpyDtoH(&flag, p->stages[s].flag, sizeof flag), err);
        if (flag)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "stage %d: an index was out of range on the GPU (an embedding or gather got an index "
                               "outside its table; check the data's labels and token ids)",
                               s);
    }
    return PML_OK;
}

static pml_status cuda_grad_sq(pml_backend_ctx *b, int s, double *out, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_plan *pl = p->plan;
    pml_cuda_stage *st = &p->stages[s];
    pml_status r = pml_cuda_use(p, s, err);
    double sq = 0;
    for (int k = 0; !r && k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q) || pl->params[q].tie >= 0) continue; /* a tied copy: its root counts */
        double part = 0;
        r = pml_cuda_sum_squares(st->blas, pl->nodes[pl->params[q].node].numel, p->acc[q], &part, err);
        sq += part;
    }
    double inv_m = 1.0 / (double)p->M; /* acc holds sums over micro-batches */
    *out = sq * inv_m * inv_m;
    if (!r && p->d->StreamSynchronize(st->stream)) /* the step's work is done: see stage.h */
        r = pml_err_set(err, PML_ERR_DEVICE, "stage %d: the GPU failed during the step", s);
    if (!r) r = check_indices(p, err);
    return r ? r : pml_cuda_use(p, s, err); /* check_indices visits the other stages' GPUs */
}

static pml_status cuda_update(pml_backend_ctx *b, int s, double lr, double clip, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_plan *pl = p->plan;
    const pml_plan_config *c = &pl->conf;
    pml_cuda_stage *st = &p->stages[s];
    pml_status r = pml_cuda_use(p, s, err);
    double t = (double)(p->step + 1), gscale = clip / (double)p->M;
    double c1 = 1 - pow(c->beta1, t), c2 = 1 - pow(c->beta2, t), decay = 1 - lr * c->weight_decay;
    double b1 = c->beta1, b2 = c->beta2, eps = c->eps, wd = c->weight_decay, mom = c->momentum;
    int nesterov = (int)c->nesterov, first = p->step == 0;
    for (int k = 0; !r && k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue;
        long long n = (long long)pl->nodes[pl->params[q].node].numel;
        pml_cu_ptr w = pml_cuda_ctx_data(p, pl->params[q].node, 0);
        unsigned grid = grid_for(p, st, n, 256);
        if (c->optimizer == PML_OPT_ADAMW) {
            void *args[] = {&w, &p->acc[q], &p->m[q], &p->v[q], &n, &lr, &b1, &b2, &c1, &c2, &eps, &decay, &gscale};
            r = pml_cuda_launch(&gpu_of(p, st)->mod, p->fn_adamw, grid, 256, args, st->stream, err);
        } else {
            void *args[] = {&w, &p->acc[q], &p->m[q], &n, &lr, &wd, &mom, &nesterov, &first, &gscale};
            r = pml_cuda_launch(&gpu_of(p, st)->mod, p->fn_sgd, grid, 256, args, st->stream, err);
        }
    }
    return r;
}

static void *cuda_host_value(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    int n = node_of(p->plan, what, k);
    if (n < 0 || mb < 0 || mb >= p->M || !p->host[n]) return NULL;
    return (unsigned char *)p->host[n] + (size_t)mb * p->bytes[n];
}

static pml_status copy_value(pml_cuda_ctx *p, pml_backend_value what, int k, int64_t mb, int up, pml_err *err)
{
    int n = node_of(p->plan, what, k);
    void *h = cuda_host_value((pml_backend_ctx *)p, what, k, mb);
    if (!h)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "no value %d/%d for micro-batch %lld", (int)what, k,
                           (long long)mb);
    pml_cuda_stage *st = &p->stages[p->plan->nodes[n].stage];
    pml_cu_ptr dv = pml_cuda_ctx_data(p, n, mb);
    pml_status r = pml_cuda_use(p, p->plan->nodes[n].stage, err);
    if (r) return r;
    if (up) {
        PML_CHECK_CU(p->d, MemcpyHtoDAsync(dv, h, p->bytes[n], st->stream), err);
        return PML_OK;
    }
    PML_CHECK_CU(p->d, MemcpyDtoHAsync(h, dv, p->bytes[n], st->stream), err);
    PML_CHECK_CU(p->d, StreamSynchronize(st->stream), err);
    r = check_indices(p, err); /* the value read depends on all the work before it */
    return r ? r : pml_cuda_use(p, p->plan->nodes[n].stage, err);
}

static pml_status cuda_upload(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    return copy_value((pml_cuda_ctx *)b, what, k, mb, 1, err);
}

static pml_status cuda_download(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    return copy_value((pml_cuda_ctx *)b, what, k, mb, 0, err);
}

static float *cuda_host_param(pml_backend_ctx *b, int q, int which)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    if (q < 0 || q >= p->plan->n_params) return NULL;
    return which == -1 ? p->h_param[q] : which == 0 ? p->h_m[q] : which == 1 ? p->h_v[q] : NULL;
}

/* Parameters and optimizer state between their host copies and the device, with every
 * stage's stream idle (the copies go through the default stream, which does not wait
 * for ours). */
static pml_status copy_params(pml_cuda_ctx *p, int up, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_status r = PML_OK;
    for (int s = 0; !r && s < p->S; s++) {
        if ((r = pml_cuda_use(p, s, err))) return r;
        PML_CHECK_CU(p->d, StreamSynchronize(p->stages[s].stream), err);
    }
    for (int q = 0; !r && q < pl->n_params; q++) {
        size_t bytes = sizeof(float) * (size_t)pl->nodes[pl->params[q].node].numel;
        if ((r = pml_cuda_use(p, pl->nodes[pl->params[q].node].stage, err))) return r; /* its GPU's context */
        pml_cu_ptr dev[3] = {pml_cuda_ctx_data(p, pl->params[q].node, 0), p->m[q], p->v[q]};
        float *host[3] = {p->h_param[q], p->h_m[q], p->h_v[q]};
        for (int k = 0; k < 3; k++) {
            if (!dev[k] || !host[k]) continue;
            if (up)
                PML_CHECK_CU(p->d, MemcpyHtoD(dev[k], host[k], bytes), err);
            else
                PML_CHECK_CU(p->d, MemcpyDtoH(host[k], dev[k], bytes), err);
        }
    }
    return r;
}

static pml_status cuda_params_download(pml_backend_ctx *b, pml_err *err)
{
    return copy_params((pml_cuda_ctx *)b, 0, err);
}
static pml_status cuda_params_upload(pml_backend_ctx *b, pml_err *err)
{
    return copy_params((pml_cuda_ctx *)b, 1, err);
}

static pml_status cuda_boundary(pml_backend_ctx *b, int s, int kind, int64_t mb, pml_backend_buf *out, int cap, int *n,
                                pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_cuda_stage *st = &p->stages[s];
    *n = st->n_sends[kind];
    for (int i = 0; i < *n && i < cap; i++) {
        int v = st->sends[kind][i];
        out[i] = (pml_backend_buf){(void *)(uintptr_t)pml_cuda_ctx_data(p, v, mb), p->bytes[v], PML_DEVICE_CUDA, -1};
    }
    return PML_OK;
}

/* backend_ops.h's grads: the accumulators of the parameters stage s updates now. */
static pml_status cuda_grads(pml_backend_ctx *b, int s, pml_backend_buf *out, int cap, int *n, pml_err *err)
{
    (void)err;
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_cuda_stage *st = &p->stages[s];
    *n = 0;
    for (int k = 0; k < st->n_params; k++) {
        int q = st->params[k];
        if (!p->acc[q] || frozen_now(p, q)) continue; /* as grad_sq and update skip them */
        size_t bytes = (size_t)p->plan->nodes[p->plan->params[q].node].numel * sizeof(float);
        if (*n < cap) out[*n] = (pml_backend_buf){(void *)(uintptr_t)p->acc[q], bytes, PML_DEVICE_CUDA, q};
        ++*n;
    }
    return PML_OK;
}

/* backend_ops.h's copy_buf: on stage s's stream, after its queued work, and waited for
 * (the host bytes are about to be sent, or the device's read by the stage's next pass).
 * The pointer may be another GPU's (a stage placed beside this one): the copy is
 * between host and device memory, which unified addressing resolves. */
static pml_status cuda_copy_buf(pml_backend_ctx *b, int s, const pml_backend_buf *buf, void *host, int to_host,
                                pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    pml_cuda_stage *st = &p->stages[s];
    pml_cu_ptr dev = (pml_cu_ptr)(uintptr_t)buf->data;
    pml_status r = pml_cuda_use(p, s, err);
    if (r || !buf->bytes) return r;
    if (to_host)
        PML_CHECK_CU(p->d, MemcpyDtoHAsync(host, dev, buf->bytes, st->stream), err);
    else
        PML_CHECK_CU(p->d, MemcpyHtoDAsync(dev, host, buf->bytes, st->stream), err);
    if (p->d->StreamSynchronize(st->stream))
        return pml_err_set(err, PML_ERR_DEVICE, "stage %d: the GPU failed copying %zu bytes %s the host", s, buf->bytes,
                           to_host ? "to" : "from");
    return PML_OK;
}

/* The device memory of a tied weight's gradient from another GPU, on GPU `gpu`: one
 * buffer of the largest tied weight, kept (freed with the context). */
static pml_status tie_scratch(pml_cuda_ctx *p, int gpu, pml_err *err)
{
    if (p->tie_scratch && p->tie_scratch_gpu == gpu) return PML_OK;
    size_t most = (size_t)pml_plan_largest_tie(p->plan) * sizeof(float);
    if (p->tie_scratch) {
        PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[p->tie_scratch_gpu].cu), err);
        p->d->MemFree(p->tie_scratch);
        p->tie_scratch = 0;
    }
    PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[gpu].cu), err);
    PML_CHECK_CU(p->d, MemAlloc(&p->tie_scratch, most), err);
    p->tie_scratch_gpu = gpu;
    return PML_OK;
}

/* backend_ops.h's sum_ties: for each tied weight, on the stream of its first stage
 * (in stage order), every copy's gradient sum is added to that stage's (cuBLAS axpy:
 * y + 1·x, the sum the CPU makes), one of another copy group (another GPU, devices.h)
 * through the scratch buffer (cuMemcpyPeerAsync), and the total is copied back to each
 * copy. grad_sq drained every stream, so the sums are complete and nothing else runs;
 * this drains its own. */
static pml_status cuda_sum_ties(pml_backend_ctx *b, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    const pml_plan *pl = p->plan;
    int *member = malloc(sizeof *member * ((size_t)pl->n_params + 1));
    if (!member) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_status r = PML_OK;
#define STAGE_OF(q) (pl->nodes[pl->params[q].node].stage)
    for (int root = 0; !r && root < pl->n_params; root++) {
        if (pl->params[root].tie >= 0 || !p->acc[root] || frozen_now(p, root)) continue;
        int n = pml_plan_tie_members(pl, root, member);
        if (n < 2) continue;
        const pml_cuda_stage *home = &p->stages[STAGE_OF(member[0])];
        int64_t count = pl->nodes[pl->params[root].node].numel;
        size_t bytes = (size_t)count * sizeof(float);
        pml_cu_ptr sum = p->acc[member[0]];
        pml_cu_context here = p->gpus[home->gpu].cu;
        r = pml_cuda_use(p, STAGE_OF(member[0]), err); /* its stream's context current for every copy */
        for (int i = 1; i < n && !r; i++) {
            const pml_cuda_stage *st = &p->stages[STAGE_OF(member[i])];
            pml_cu_ptr add = p->acc[member[i]];
            if (st->group != home->group) { /* another GPU (or, PML_CUDA_PEER_COPIES=1, treated as one) */
                if ((r = tie_scratch(p, home->gpu, err)) || (r = pml_cuda_use(p, STAGE_OF(member[0]), err))) break;
                if (p->d->MemcpyPeerAsync(p->tie_scratch, here, add, p->gpus[st->gpu].cu, bytes, home->stream)) {
                    r = pml_err_set(err, PML_ERR_DEVICE, "copying a tied weight's gradient between GPUs failed");
                    break;
                }
                add = p->tie_scratch;
            }
            r = pml_cuda_axpy(home->blas, count, add, sum, err);
        }
        for (int i = 1; i < n && !r; i++) {
            const pml_cuda_stage *st = &p->stages[STAGE_OF(member[i])];
            if (p->d->MemcpyPeerAsync(p->acc[member[i]], p->gpus[st->gpu].cu, sum, here, bytes, home->stream))
                r = pml_err_set(err, PML_ERR_DEVICE, "copying a tied weight's gradient sum failed");
        }
        if (!r && p->d->StreamSynchronize(home->stream))
            r = pml_err_set(err, PML_ERR_DEVICE, "the GPU failed summing the gradients of tied weight '%s'",
                            pl->params[root].name);
    }
#undef STAGE_OF
    free(member);
    return r;
}

static pml_status cuda_phase(pml_backend_ctx *b, int64_t step, pml_phase **out, pml_err *err)
{
    pml_cuda_ctx *p = (pml_cuda_ctx *)b;
    *out = &p->phase;
    return auto_check(p, step, err);
}

const pml_backend_ops pml_cuda_backend_ops = {
    .name = "cuda",
    .device = PML_DEVICE_CUDA,
    .create = pml_cuda_ctx_create,
    .destroy = pml_cuda_ctx_destroy,
    .begin = cuda_begin,
    .forward = cuda_forward,
    .backward = cuda_backward,
    .backward_half = cuda_backward_half,
    .grad_sq = cuda_grad_sq,
    .update = cuda_update,
    .sync = cuda_sync,
    .host_value = cuda_host_value,
    .upload = cuda_upload,
    .download = cuda_download,
    .host_param = cuda_host_param,
    .params_download = cuda_params_download,
    .params_upload = cuda_params_upload,
    .boundary = cuda_boundary,
    .grads = cuda_grads,
    .copy_buf = cuda_copy_buf,
    .phase = cuda_phase,
    .loss_scale = pml_cuda_loss_scale,
    .sum_ties = cuda_sum_ties,
    .device_span = cuda_device_span,
    .peer_id = pml_cuda_peer_id,
    .peer_link = pml_cuda_peer_link,
    .peer_send = pml_cuda_peer_send,
    .peer_recv = pml_cuda_peer_recv,
    .peer_poll = pml_cuda_peer_poll,
    .peer_group = pml_cuda_peer_group,
    .peer_sum = pml_cuda_peer_sum,
};

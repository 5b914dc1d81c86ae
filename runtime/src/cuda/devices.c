/* devices.c — the GPUs of a CUDA context and the copies between stages on different
 * ones (see devices.h). */
#include "cuda/devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/ops.h"

#define NOMEM(err) pml_err_set((err), PML_ERR_NOMEM, "out of memory")

int pml_cuda_peer_copies_forced(void)
{
    const char *v = getenv("PML_CUDA_PEER_COPIES");
    return v && !strcmp(v, "1");
}

/* The plan's image for a device of compute capability major.minor: its own CUBIN, or
 * else the newest PTX the driver can compile for it. */
static const pml_plan_gpu_image *pick_image(const pml_plan *pl, int major, int minor)
{
    char want[16];
    snprintf(want, sizeof want, "sm_%d%d", major, minor);
    const pml_plan_gpu_image *best = NULL;
    int best_cc = -1;
    for (int i = 0; i < pl->n_gpu_images; i++) {
        const pml_plan_gpu_image *im = &pl->gpu_images[i];
        if (!strcmp(im->target, want)) return im;
        int cc;
        if (sscanf(im->target, "compute_%d", &cc) == 1 && cc <= major * 10 + minor && cc > best_cc)
            best = im, best_cc = cc;
    }
    return best;
}

/* GPU g: its primary context, current from here on, and the plan's module in it.
 * Function 0 of the plan stands for the optimizer source; its kernels are named. */
static pml_status open_gpu(pml_cuda_ctx *p, pml_cuda_gpu *g, pml_err *err)
{
    const pml_plan *pl = p->plan;
    int major = 0, minor = 0;
    PML_CHECK_CU(p->d, DeviceGet(&g->dev, g->ordinal), err);
    PML_CHECK_CU(p->d, DeviceGetAttribute(&major, PML_CU_ATTR_CC_MAJOR, g->dev), err);
    PML_CHECK_CU(p->d, DeviceGetAttribute(&minor, PML_CU_ATTR_CC_MINOR, g->dev), err);
    PML_CHECK_CU(p->d, DeviceGetAttribute(&g->sms, PML_CU_ATTR_SM_COUNT, g->dev), err);
    PML_CHECK_CU(p->d, DevicePrimaryCtxRetain(&g->cu, g->dev), err);
    PML_CHECK_CU(p->d, CtxSetCurrent(g->cu), err);
    if (!pl->n_gpu_images || !pl->n_gpu_launches)
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "the plan has no GPU code: build it with `pmlc build --arch sm_%d%d` (or train the .pml "
                           "file with --backend cuda)",
                           major, minor);
    const pml_plan_gpu_image *im = pick_image(pl, major, minor);
    if (!im) {
        char have[256] = "";
        for (int i = 0; i < pl->n_gpu_images; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", pl->gpu_images[i].target);
        return pml_err_set(err, PML_ERR_UNSUPPORTED,
                           "the plan's GPU code (%s) does not run on GPU %d (sm_%d%d): rebuild it with `pmlc build "
                           "--arch sm_%d%d`",
                           have, g->ordinal, major, minor, major, minor);
    }
    int n = pl->n_gpu_funcs;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) return NOMEM(err);
    for (int f = 0; f < n; f++) names[f] = pl->gpu_funcs[f];
    names[0] = "pml_adamw_f32";
    names[n] = "pml_sgd_f32";
    pml_status st = pml_cuda_module_load(&g->mod, im->data, names, n + 1, err);
    free(names);
    return st;
}

pml_status pml_cuda_gpus_open(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    if (!(p->d = pml_cuda_driver_get(err))) return err ? err->code : PML_ERR_DEVICE;
    p->gpus = calloc((size_t)p->S, sizeof *p->gpus);
    p->stages = calloc((size_t)p->S, sizeof *p->stages);
    p->fn_of = calloc((size_t)pl->n_gpu_funcs + 1, sizeof *p->fn_of);
    if (!p->gpus || !p->stages || !p->fn_of) return NOMEM(err);
    for (int f = 0; f < pl->n_gpu_funcs; f++) p->fn_of[f] = f;
    p->fn_adamw = 0, p->fn_sgd = pl->n_gpu_funcs;
    int forced = pml_cuda_peer_copies_forced();
    int devices = pml_plan_devices(pl);
    for (int s = 0; s < p->S; s++) { /* model stage (chunk) s runs on its stage device's GPU */
        int dev = pml_plan_chunk_device(s, devices, (int)pl->conf.schedule);
        int ordinal = p->conf.stage_gpu ? p->conf.stage_gpu[dev] : 0, g = 0;
        while (g < p->n_gpus && p->gpus[g].ordinal != ordinal) g++;
        if (g == p->n_gpus) {
            p->gpus[p->n_gpus++].ordinal = ordinal;
            pml_status st = open_gpu(p, &p->gpus[g], err);
            if (st) return st;
        }
        p->stages[s].gpu = g;
        p->stages[s].group = forced ? s : g;
    }
    /* Direct copies where the hardware allows; elsewhere cuMemcpyPeerAsync stages them
     * through the host (devices.h), so a refusal here only costs speed. */
    for (int a = 0; a < p->n_gpus; a++)
        for (int b = 0; b < p->n_gpus; b++) {
            int can = 0;
            if (a == b || p->d->DeviceCanAccessPeer(&can, p->gpus[a].dev, p->gpus[b].dev) || !can) continue;
            PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[a].cu), err);
            pml_cu_result r = p->d->CtxEnablePeerAccess(p->gpus[b].cu, 0);
            (void)r; /* success, already enabled by another user of the context, or staged copies */
        }
    return pml_cuda_use(p, 0, err);
}

void pml_cuda_gpus_close(pml_cuda_ctx *p)
{
    for (int s = 0; p->stages && s < p->S; s++) {
        pml_cuda_stage *st = &p->stages[s];
        if (p->gpus && (st->mirrors || st->published)) p->d->CtxSetCurrent(p->gpus[st->gpu].cu);
        if (st->mirrors) p->d->MemFree(st->mirrors);
        if (st->published) p->d->EventDestroy(st->published);
        for (int k = 0; k < PML_CUDA_PASSES; k++) free(st->pulls[k]);
        free(st->statics), free(st->mirror);
    }
    for (int g = 0; p->gpus && g < p->n_gpus; g++) {
        pml_cuda_gpu *gpu = &p->gpus[g];
        if (!gpu->cu) continue;
        p->d->CtxSetCurrent(gpu->cu);
        if (gpu->arena) p->d->MemFree(gpu->arena);
        pml_cuda_module_free(&gpu->mod);
        p->d->CtxSetCurrent(NULL);
        p->d->DevicePrimaryCtxRelease(gpu->dev);
    }
    free(p->gpus);
    p->gpus = NULL;
}

pml_status pml_cuda_use(const pml_cuda_ctx *p, int s, pml_err *err)
{
    PML_CHECK_CU(p->d, CtxSetCurrent(p->gpus[p->stages[s].gpu].cu), err);
    return PML_OK;
}

static int static_node(uint16_t op) { return op == PML_OP_PARAM || op == PML_OP_CONST || op == PML_OP_ARANGE; }

/* Bytes of root r's buffer (a copy per micro-batch, or one). */
static size_t buffer_bytes(const pml_cuda_ctx *p, int r)
{
    return p->bytes[r] * (p->per_mb[r] ? (size_t)p->M : 1);
}

static pml_status push(int **v, int *n, int x, int cap, pml_err *err)
{
    if (!*v && !(*v = malloc(sizeof(int) * (size_t)(cap + 1)))) return NOMEM(err);
    (*v)[(*n)++] = x;
    return PML_OK;
}

/* Stage s's reads from other groups: each root once, in the first part of the work
 * that reads it (a micro-batch's forward runs before its backward on the same stage,
 * and its input half before its weight half), or as a static; then their mirrors, in
 * one allocation on its GPU. */
static pml_status stage_mirrors(pml_cuda_ctx *p, int s, uint8_t *seen, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_cuda_stage *st = &p->stages[s];
    int N = pl->n_nodes;
    memset(seen, 0, (size_t)N);
    for (int pass = 0; pass < PML_CUDA_PASSES; pass++)
        for (int t = 0; t < st->n_list[pass]; t++) {
            const pml_plan_gpu_launch *L = &pl->gpu_launches[st->list[pass][t]];
            for (int a = 0; a < L->n_args; a++) {
                int r = p->root[L->args[a].node];
                const pml_plan_node *src = &pl->nodes[r];
                if (L->args[a].out || seen[r] || p->stages[src->stage].group == st->group) continue;
                if (!p->dbuf[r])
                    return pml_err_set(err, PML_ERR_INVALID_ARG,
                                       "stage %d reads node %d of stage %d, which has no buffer", s, r, src->stage);
                seen[r] = 1;
                pml_status e = static_node(src->op) ? push(&st->statics, &st->n_statics, r, N, err)
                                                    : push(&st->pulls[pass], &st->n_pulls[pass], r, N, err);
                if (e) return e;
            }
        }
    int any = st->n_statics;
    for (int k = 0; k < PML_CUDA_PASSES; k++) any |= st->n_pulls[k];
    if (!any) return PML_OK;
    size_t total = 0, align = PML_CUDA_MEM_ALIGN;
    for (int r = 0; r < N; r++)
        if (seen[r]) total += (buffer_bytes(p, r) + align - 1) / align * align;
    if (!(st->mirror = calloc((size_t)N, sizeof *st->mirror))) return NOMEM(err);
    pml_status e = pml_cuda_use(p, s, err);
    if (e) return e;
    PML_CHECK_CU(p->d, MemAlloc(&st->mirrors, total), err);
    size_t at = 0;
    for (int r = 0; r < N; r++)
        if (seen[r]) {
            st->mirror[r] = st->mirrors + (pml_cu_ptr)at;
            at += (buffer_bytes(p, r) + align - 1) / align * align;
        }
    return PML_OK;
}

pml_status pml_cuda_mirrors_make(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    for (int q = 0; q < pl->n_params; q++) {
        int g = pl->params[q].grad, owner = pl->nodes[pl->params[q].node].stage;
        if (g < 0) continue;
        int maker = pl->nodes[p->root[g]].stage;
        if (p->stages[maker].group != p->stages[owner].group)
            return pml_err_set(err, PML_ERR_UNSUPPORTED,
                               "parameter %s lives on stage %d (GPU %d) but its gradient is made on stage %d (GPU %d): "
                               "the CUDA backend sums gradients on one GPU only; place the two stages on one GPU",
                               pl->params[q].name, owner, p->gpus[p->stages[owner].gpu].ordinal, maker,
                               p->gpus[p->stages[maker].gpu].ordinal);
    }
    uint8_t *seen = malloc((size_t)pl->n_nodes + 1);
    if (!seen) return NOMEM(err);
    pml_status st = PML_OK;
    for (int s = 0; !st && s < p->S; s++) /* another process's stage reads nothing here */
        if (p->runs[s]) st = stage_mirrors(p, s, seen, err);
    free(seen);
    /* The order of a stage's statics after its owners' updates (pml_cuda_pull_statics). */
    for (int s = 0; !st && s < p->S; s++) {
        if (!(st = pml_cuda_use(p, s, err)))
            if (p->d->EventCreate(&p->stages[s].published, PML_CU_EVENT_DISABLE_TIMING))
                st = pml_err_set(err, PML_ERR_DEVICE, "cuEventCreate failed");
    }
    return st;
}

pml_cu_ptr pml_cuda_ctx_data_at(const pml_cuda_ctx *p, int s, int n, int64_t mb)
{
    const pml_cuda_stage *st = &p->stages[s];
    int r = p->root[n]; /* a reshape's value is its root's buffer, whole (pml_cuda_ctx_data) */
    if (!st->mirror || !st->mirror[r]) return pml_cuda_ctx_data(p, n, mb);
    return st->mirror[r] + (p->per_mb[r] ? (pml_cu_ptr)mb * p->bytes[r] : 0);
}

/* Root r's value for micro-batch mb (a static has one: mb 0) from its stage's buffer
 * into stage s's mirror, on s's stream, s's context current. */
static pml_status copy_in(pml_cuda_ctx *p, int s, int r, int64_t mb, pml_err *err)
{
    const pml_cuda_stage *st = &p->stages[s];
    int from = p->plan->nodes[r].stage;
    pml_cu_ptr off = p->per_mb[r] ? (pml_cu_ptr)mb * p->bytes[r] : 0;
    PML_CHECK_CU(p->d,
                 MemcpyPeerAsync(st->mirror[r] + off, p->gpus[st->gpu].cu, p->dbuf[r] + off,
                                 p->gpus[p->stages[from].gpu].cu, p->bytes[r], st->stream),
                 err);
    return PML_OK;
}

pml_status pml_cuda_pull(pml_cuda_ctx *p, int s, int pass, int64_t mb, pml_err *err)
{
    const pml_cuda_stage *st = &p->stages[s];
    pml_status r = PML_OK;
    for (int k = 0; !r && k < st->n_pulls[pass]; k++) r = copy_in(p, s, st->pulls[pass][k], mb, err);
    return r;
}

pml_status pml_cuda_pull_statics(pml_cuda_ctx *p, pml_err *err)
{
    const pml_plan *pl = p->plan;
    pml_status r = PML_OK;
    for (int s = 0; !r && s < p->S; s++) /* after each stage's last update */
        if (!(r = pml_cuda_use(p, s, err)))
            PML_CHECK_CU(p->d, EventRecord(p->stages[s].published, p->stages[s].stream), err);
    for (int s = 0; !r && s < p->S; s++) {
        const pml_cuda_stage *st = &p->stages[s];
        if (!st->n_statics) continue;
        r = pml_cuda_use(p, s, err);
        for (int k = 0; !r && k < st->n_statics; k++) {
            int from = pl->nodes[st->statics[k]].stage;
            PML_CHECK_CU(p->d, StreamWaitEvent(st->stream, p->stages[from].published, 0), err);
            r = copy_in(p, s, st->statics[k], 0, err);
        }
    }
    return r;
}

/* backend.c — choosing the backend and the GPUs (see backend.h). */
#include "exec/backend.h"

#include <stdio.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/stage.h"
#include "cuda/device.h"
#include "cuda/devices.h"
#include "cuda/stage.h"

static const char *const names[] = {
    [PML_BACKEND_CPU] = "cpu", [PML_BACKEND_CUDA] = "cuda", [PML_BACKEND_AUTO] = "auto"};

pml_status pml_backend_parse(const char *name, pml_backend *out)
{
    for (int b = PML_BACKEND_CPU; b <= PML_BACKEND_AUTO && name && out; b++)
        if (!strcmp(name, names[b])) return *out = (pml_backend)b, PML_OK;
    return PML_ERR_INVALID_ARG;
}

const char *pml_backend_map_text(const pml_plan *plan, char *buf, size_t cap)
{
    if (!plan || !plan->n_devices) {
        snprintf(buf, cap, "(none: the plan predates device maps)");
        return buf;
    }
    size_t at = 0;
    enum { SHOWN = 6 };
    for (int d = 0; d < plan->n_devices && at < cap; d++) {
        const pml_plan_device *dv = &plan->devices[d];
        int n;
        if (d == SHOWN && plan->n_devices > SHOWN + 1) {
            n = snprintf(buf + at, cap - at, ", ... (%d in all)", plan->n_devices);
            at += n > 0 ? (size_t)n : 0;
            break;
        }
        if (dv->kind == PML_PLAN_DEVICE_CUDA)
            n = snprintf(buf + at, cap - at, "%scuda:%d", d ? ", " : "[", dv->index);
        else if (dv->index >= 0)
            n = snprintf(buf + at, cap - at, "%scpu:%d", d ? ", " : "[", dv->index);
        else
            n = snprintf(buf + at, cap - at, "%scpu", d ? ", " : "[");
        at += n > 0 ? (size_t)n : 0;
    }
    if (at < cap) snprintf(buf + at, cap - at, "]");
    return buf;
}

/* Whether the plan's map places its stages on GPUs (1), on the CPU (0), or is unknown (-1). */
static int map_kind(const pml_plan *plan)
{
    if (!plan || !plan->n_devices) return -1;
    return plan->devices[0].kind == PML_PLAN_DEVICE_CUDA;
}

/* The largest N of the plan's cuda:N (-1: none). */
static int top_gpu(const pml_plan *plan)
{
    int top = -1;
    for (int d = 0; map_kind(plan) == 1 && d < plan->n_devices; d++)
        if (plan->devices[d].index > top) top = plan->devices[d].index;
    return top;
}

/* A remap fits the plan, whatever the machine: the plan names cuda devices, and the
 * remap gives one GPU for each cuda:N from 0 to the largest N. */
static pml_status remap_fits(const pml_plan *plan, const pml_gpu_map *map, pml_err *err)
{
    char where[160];
    int cuda = map_kind(plan) == 1, top = top_gpu(plan);
    if (map && map->local) return PML_OK; /* one GPU for every stage device: fits any plan */
    if (map && map->n && !cuda)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "--devices maps the plan's cuda:N devices onto GPUs, but the plan places its stages on %s: "
                           "leave --devices out",
                           pml_backend_map_text(plan, where, sizeof where));
    if (map && map->n && map->n != top + 1)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "--devices gives %d GPU%s, but the plan's map %s names cuda:0 to cuda:%d: give one GPU for "
                           "each of the %d",
                           map->n, map->n == 1 ? "" : "s", pml_backend_map_text(plan, where, sizeof where), top,
                           top + 1);
    return PML_OK;
}

/* The CPU backend's settings from the environment, refused when they name nothing. */
static pml_status cpu_usable(pml_err *err)
{
    char why[200];
    if (pml_cpu_isa_check(why, sizeof why)) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s", why);
    return PML_OK;
}

pml_status pml_backend_place(const pml_plan *plan, const pml_gpu_map *map, int have, int *stage_gpu, pml_err *err)
{
    char where[160];
    int cuda = map_kind(plan) == 1, top = top_gpu(plan);
    int D = plan ? (int)(plan->conf.stages / plan->conf.chunks) : 0;
    if (map && map->local) {
        if (map->local_rank >= have)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "--devices local puts this process's stages on the GPU of its local rank, but %s is %d "
                               "and this machine has %d GPU%s (numbered from 0): start at most %d process%s per host",
                               map->local_from, map->local_rank, have, have == 1 ? "" : "s", have,
                               have == 1 ? "" : "es");
        for (int d = 0; stage_gpu && d < D; d++) stage_gpu[d] = map->local_rank;
        return PML_OK;
    }
    for (int i = 0; map && i < map->n; i++)
        if (map->gpu[i] < 0 || map->gpu[i] >= have)
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "--devices maps cuda:%d onto GPU %d, but this machine has %d GPU%s (numbered from 0)",
                               i, map->gpu[i], have, have == 1 ? "" : "s");
    if (cuda && !(map && map->n) && top >= have) {
        char zeros[64] = "";
        for (int i = 0; i <= top && strlen(zeros) + 3 < sizeof zeros; i++) strcat(zeros, i ? ",0" : "0");
        return pml_err_set(
            err, PML_ERR_UNSUPPORTED,
            "the plan places its stages on %s, but this machine has %d GPU%s: remap them with "
            "--devices (pmlc train/infer; pml_context_set_devices), e.g. --devices %s, or with ranks --devices "
            "local (each process on its local rank's GPU)",
            pml_backend_map_text(plan, where, sizeof where), have, have == 1 ? "" : "s", zeros);
    }
    for (int d = 0; stage_gpu && d < D; d++) {
        int n = cuda ? plan->devices[d].index : 0;
        stage_gpu[d] = map && map->n ? map->gpu[n] : n;
    }
    return PML_OK;
}

pml_status pml_backend_select(pml_backend want, const pml_plan *plan, const pml_gpu_map *map, pml_backend *got,
                              int *stage_gpu, pml_err *err)
{
    char why[256], where[160];
    int kind = map_kind(plan), have = 0;
    pml_status st = cpu_usable(err); /* the CPU runs parts of every run (data, checks), so always */
    if (st) return st;
    if (want == PML_BACKEND_AUTO && kind == -1) /* no map: as before maps existed (backend.h) */
        want = pml_cuda_device_count(NULL, 0) > 0 && (!plan || plan->n_gpu_images > 0) ? PML_BACKEND_CUDA
                                                                                         : PML_BACKEND_CPU;
    if (want == PML_BACKEND_AUTO) want = kind ? PML_BACKEND_CUDA : PML_BACKEND_CPU;
    switch (want) {
    case PML_BACKEND_CPU:
        if (remap_fits(plan, map, err)) return PML_ERR_INVALID_ARG; /* a cpu map: nothing to remap */
        if (map && (map->n || map->local))
            return pml_err_set(err, PML_ERR_INVALID_ARG,
                               "--devices maps the plan's cuda:N devices onto GPUs, but this run is on the CPU: leave "
                               "--devices out");
        *got = PML_BACKEND_CPU;
        return PML_OK;
    case PML_BACKEND_CUDA:
        if ((st = remap_fits(plan, map, err))) return st;
        if ((have = pml_cuda_device_count(why, sizeof why)) == 0) {
            if (kind == 1)
                return pml_err_set(err, PML_ERR_UNSUPPORTED,
                                   "no GPU for the plan's place %s: %s; run it on the CPU with --backend cpu (or build "
                                   "it with place = cpu)",
                                   pml_backend_map_text(plan, where, sizeof where), why);
            return pml_err_set(err, PML_ERR_UNSUPPORTED, "no GPU: %s; use the CPU backend (--backend cpu)", why);
        }
        st = pml_backend_place(plan, map, have, stage_gpu, err);
        if (!st) *got = PML_BACKEND_CUDA;
        return st;
    case PML_BACKEND_AUTO:
        break;
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG, "unknown backend %d", (int)want);
}

const char *pml_backend_placed_text(const pml_plan *plan, pml_backend got, const int *stage_gpu, char *buf,
                                    size_t cap)
{
    char where[160];
    int kind = map_kind(plan);
    if (got != PML_BACKEND_CUDA) {
        if (kind != 1) return NULL;
        snprintf(buf, cap, "the CPU as asked, not the plan's place %s", pml_backend_map_text(plan, where, sizeof where));
        return buf;
    }
    int D = (int)(plan->conf.stages / plan->conf.chunks), at = snprintf(buf, cap, "stage devices on GPU%s", D > 1 ? "s" : "");
    for (int d = 0; d < D && at > 0 && (size_t)at < cap; d++) {
        if (d == 8 && D > 9) {
            at += snprintf(buf + at, cap - (size_t)at, ", ...");
            break;
        }
        at += snprintf(buf + at, cap - (size_t)at, "%s%d", d ? ", " : " ", stage_gpu ? stage_gpu[d] : 0);
    }
    if (at > 0 && (size_t)at < cap)
        at += snprintf(buf + at, cap - (size_t)at, " (place %s)", pml_backend_map_text(plan, where, sizeof where));
    if (pml_cuda_peer_copies_forced() && at > 0 && (size_t)at < cap)
        snprintf(buf + at, cap - (size_t)at, ", each stage handing over by copies (PML_CUDA_PEER_COPIES=1)");
    return buf;
}

const pml_backend_ops *pml_backend_ops_of(pml_backend b)
{
    return b == PML_BACKEND_CUDA ? &pml_cuda_backend_ops : &pml_cpu_backend_ops;
}

int pml_backend_cuda_arch(char *buf, size_t cap)
{
    pml_cuda_device_info info;
    if (pml_cuda_device_count(NULL, 0) == 0 || pml_cuda_device_info_get(0, &info, NULL)) return -1;
    snprintf(buf, cap, "sm_%d%d", info.cc_major, info.cc_minor);
    return 0;
}

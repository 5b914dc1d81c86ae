/* gpu_model.h — what the GPU test drivers (gpu_kernels.c, gpu_attention.c) share: device
 * 0 made current, a model's kernels rendered and compiled by NVRTC for its
 * architecture, and the module loaded (function f of the module is kernel function f;
 * function 0, the optimizer source, stands as pml_adamw_f32).
 *
 * gpu_model_open (with n_sets "key=value" train fields, as pmlc's --set) returns 0 when ready; without a GPU it prints
 * "SKIP: no GPU: <why>" and returns 77 (CTest: skipped), or 1 under PML_REQUIRE_GPU=1; 1 after a failure (printed as
 * "FAIL: ..."). gpu_model_close releases what open made. gpu_model_median_ms times launches with CUDA events. */
#ifndef PML_TESTS_GPU_MODEL_H
#define PML_TESTS_GPU_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/device.h"
#include "cuda/module.h"
#include "gpu/cuda_build.h"
#include "session_int.h"

typedef struct gpu_model {
    const pml_cuda_driver *d;
    pmlc_session *s;
    const pmlc_plan *pl;
    pmlc_graph *g;
    pmlc_cuda_module m; /* the rendered kernels */
    pmlc_cuda_image *im;
    int n_im;
    const char **names; /* per module function */
    pml_cuda_module mod;
} gpu_model;

static inline int gpu_model_fail(const char *what, const char *msg)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, msg);
    return 1;
}

static inline int gpu_model_open(gpu_model *x, const char *path, const char *const *sets, int n_sets)
{
    char why[1024];
    memset(x, 0, sizeof *x);
    if (pml_cuda_device_count(why, sizeof why) == 0) {
        const char *req = getenv("PML_REQUIRE_GPU");
        printf("SKIP: no GPU: %s\n", why);
        return req && strcmp(req, "0") ? 1 : 77;
    }
    pml_err err = {0};
    pml_cuda_device_info info;
    x->d = pml_cuda_driver_get(&err);
    if (!x->d || pml_cuda_device_info_get(0, &info, &err)) return gpu_model_fail("device 0", err.msg);
    char arch[16];
    snprintf(arch, sizeof arch, "sm_%d%d", info.cc_major, info.cc_minor);
    printf("device 0: %s (%s, %d SMs)\n", info.name, arch, info.sms);
    pml_cu_device dev;
    pml_cu_context ctx;
    if (x->d->DeviceGet(&dev, 0) || x->d->DevicePrimaryCtxRetain(&ctx, dev) || x->d->CtxSetCurrent(ctx))
        return gpu_model_fail("device 0", "cannot make its context current");
    pmlc_options opt = {0};
    opt.sets = sets, opt.n_sets = n_sets;
    opt.gpu_code = 1;
    opt.diag_out = stderr;
    x->s = pmlc_session_create(&opt);
    if (pmlc_session_check_file(x->s, path) || pmlc_session_cuda_build(x->s, arch, &x->m, &x->im, &x->n_im))
        return gpu_model_fail(path, "codegen or NVRTC failed");
    x->g = pmlc_session_graph(x->s, &x->pl);
    x->names = calloc((size_t)x->m.n_funcs, sizeof *x->names);
    if (!x->names) return gpu_model_fail(path, "out of memory");
    for (int f = 1; f < x->m.n_funcs; f++) x->names[f] = x->m.funcs[f].name;
    x->names[0] = "pml_adamw_f32"; /* the optimizer source holds several; one stands for it */
    if (pml_cuda_module_load(&x->mod, x->im[0].data, x->names, x->m.n_funcs, &err))
        return gpu_model_fail("module load", err.msg);
    return 0;
}

static inline int gpu_model_by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Median milliseconds of `runs` (at most 64) runs of launch(ctx) after one to warm up,
 * timed with events on the default stream; -1 when launch fails. */
static inline double gpu_model_median_ms(const pml_cuda_driver *d, int runs, int (*launch)(void *), void *ctx)
{
    float ms[64];
    pml_cu_event a, b;
    if (runs < 1 || runs > 64 || d->EventCreate(&a, 0) || d->EventCreate(&b, 0)) return -1;
    int bad = launch(ctx);
    for (int r = 0; r < runs && !bad; r++) {
        d->EventRecord(a, NULL);
        bad = launch(ctx);
        d->EventRecord(b, NULL);
        d->EventSynchronize(b);
        d->EventElapsedTime(&ms[r], a, b);
    }
    d->EventDestroy(a), d->EventDestroy(b);
    if (bad) return -1;
    qsort(ms, (size_t)runs, sizeof *ms, gpu_model_by_value);
    return ms[runs / 2];
}

static inline void gpu_model_close(gpu_model *x)
{
    pml_cuda_module_free(&x->mod);
    pmlc_cuda_images_free(x->im, x->n_im);
    free(x->names);
    if (x->s) pmlc_session_destroy(x->s);
}

#endif

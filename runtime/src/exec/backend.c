/* backend.c — choosing the backend (see backend.h). */
#include "exec/backend.h"

#include <stdio.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/stage.h"
#include "cuda/device.h"
#include "cuda/stage.h"

static const char *const names[] = {
    [PML_BACKEND_CPU] = "cpu", [PML_BACKEND_CUDA] = "cuda", [PML_BACKEND_AUTO] = "auto"};

pml_status pml_backend_parse(const char *name, pml_backend *out)
{
    for (int b = PML_BACKEND_CPU; b <= PML_BACKEND_AUTO && name && out; b++)
        if (!strcmp(name, names[b])) return *out = (pml_backend)b, PML_OK;
    return PML_ERR_INVALID_ARG;
}

/* Whether the CUDA backend can run here; if not, why, in err (the driver's own reason). */
static pml_status cuda_usable(pml_err *err)
{
    char why[256];
    if (pml_cuda_device_count(why, sizeof why) == 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "no GPU: %s; use the CPU backend (--backend cpu)", why);
    return PML_OK;
}

/* The CPU backend's settings from the environment, refused when they name nothing. */
static pml_status cpu_usable(pml_err *err)
{
    char why[200];
    if (pml_cpu_isa_check(why, sizeof why)) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s", why);
    return PML_OK;
}

pml_status pml_backend_select(pml_backend want, const pml_plan *plan, pml_backend *got, pml_err *err)
{
    pml_status st = cpu_usable(err); /* the CPU runs parts of every run (data, checks), so always */
    if (st) return st;
    switch (want) {
    case PML_BACKEND_CPU:
        *got = PML_BACKEND_CPU;
        return PML_OK;
    case PML_BACKEND_CUDA: {
        st = cuda_usable(err);
        if (!st) *got = PML_BACKEND_CUDA;
        return st;
    }
    case PML_BACKEND_AUTO:
        *got = cuda_usable(NULL) == PML_OK && (!plan || plan->n_gpu_images > 0) ? PML_BACKEND_CUDA : PML_BACKEND_CPU;
        return PML_OK;
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG, "unknown backend %d", (int)want);
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

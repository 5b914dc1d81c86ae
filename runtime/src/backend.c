/* backend.c — choosing the backend (see backend.h). */
#include "backend.h"

#include <string.h>

#include "cuda/device.h"

static const char *const names[] = {[PML_BACKEND_CPU] = "cpu", [PML_BACKEND_CUDA] = "cuda", [PML_BACKEND_AUTO] = "auto"};

int pml_backend_parse(const char *name, pml_backend *out)
{
    for (int b = PML_BACKEND_CPU; b <= PML_BACKEND_AUTO; b++)
        if (!strcmp(name, names[b])) return *out = (pml_backend)b, 0;
    return -1;
}

/* Whether the CUDA backend can take a plan here; if not, why, in err. A machine
 * without a usable GPU says so first (the driver's own reason); with one, this
 * release still has no CUDA executor — its kernels compile (pmlc build) but plans run
 * on the CPU — and says that. */
static pml_status cuda_usable(pml_err *err)
{
    char why[256];
    if (pml_cuda_device_count(why, sizeof why) == 0)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "no GPU: %s; use the CPU backend (--backend cpu)", why);
    return pml_err_set(err, PML_ERR_UNSUPPORTED,
                       "the CUDA backend cannot run plans in this build of libpml yet; use the CPU backend "
                       "(--backend cpu)");
}

pml_status pml_backend_select(pml_backend want, pml_backend *got, pml_err *err)
{
    switch (want) {
    case PML_BACKEND_CPU:
        *got = PML_BACKEND_CPU;
        return PML_OK;
    case PML_BACKEND_CUDA: {
        pml_status st = cuda_usable(err);
        if (!st) *got = PML_BACKEND_CUDA;
        return st;
    }
    case PML_BACKEND_AUTO:
        *got = cuda_usable(NULL) == PML_OK ? PML_BACKEND_CUDA : PML_BACKEND_CPU;
        return PML_OK;
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG, "unknown backend %d", (int)want);
}

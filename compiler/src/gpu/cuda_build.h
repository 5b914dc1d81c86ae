/* cuda_build.h — from a checked model to GPU binaries: render the kernels
 * (cuda_codegen.h), compile them with NVRTC (nvrtc.h) for each target through the
 * kernel cache (kcache.h), and report compile errors at the .pml source of the op
 * that wrote the failing line (`file:line:col: error: CUDA C: ...`).
 *
 * One NVRTC program per target holds every function of the model (the prelude, the
 * optimizer kernels, one function per distinct fused kernel), so a target is one
 * CUBIN (or PTX) and one cache entry. */
#ifndef PMLC_CUDA_BUILD_H
#define PMLC_CUDA_BUILD_H

#include "gpu/cuda_codegen.h"
#include "gpu/kcache.h"
#include "gpu/nvrtc.h"

/* The targets `pmlc build` compiles for by default: CUBINs for A100 and H100 and
 * PTX that newer devices compile when they load it. */
#define PMLC_CUDA_DEFAULT_ARCHS "sm_80,sm_90,compute_90"

typedef struct pmlc_cuda_image {
    char arch[16];       /* "sm_80" (CUBIN) or "compute_90" (PTX) */
    unsigned char *data; /* malloc'ed */
    size_t size;
    int from_cache;
    double compile_ms; /* 0 when from the cache */
} pmlc_cuda_image;

/* The CUDA C of `m`: the prelude and function `func`, or every function (func < 0);
 * malloc'ed. */
char *pmlc_cuda_source(const pmlc_cuda_module *m, int func);

/* Whether `arch` is a target spelling NVRTC takes: sm_NN, sm_NNa, compute_NN. */
int pmlc_cuda_arch_valid(const char *arch);

/* Compiles the module for each of `archs` (comma-separated; NULL: the default),
 * using `kc` (may be NULL: no cache) and `nv` (NULL: opened here). Fills *images
 * (malloc'ed array of *n_images; free with pmlc_cuda_images_free). Returns 0, or the
 * number of errors reported through P's diagnostics (bad arch, no NVRTC, compile
 * errors pointing at the .pml source). */
int pmlc_cuda_build(pmlc_program *P, const pmlc_cuda_module *m, const char *archs, pmlc_nvrtc *nv, pmlc_kcache *kc,
                    pmlc_cuda_image **images, int *n_images);

void pmlc_cuda_images_free(pmlc_cuda_image *images, int n);

#endif

/* cuda_codegen.h — the CUDA backend's kernels as CUDA C source, one `extern "C"
 * __global__` function per fused group (fuse.h), rendered from the graph with every
 * shape bound (the plan's binding), so sizes are constants the compiler folds.
 *
 * The text uses no #include (NVRTC compiles it fast): the prelude (cuda_prelude.c)
 * defines bf16/f16 conversions, the counter RNG of runtime/src/core/rng.h and the warp and
 * block reductions. Matmuls are cuBLAS calls, not generated; their kernels have
 * func = -1. Identical kernels (same code, e.g. the same layer repeated) share one
 * function, so a 12-layer model compiles each distinct kernel once.
 *
 * Every line of a function's text remembers the op that wrote it (line_loc), so a
 * compiler error in line L points back at the .pml source that made it.
 *
 * Launch contract (what the runtime must do): kernel k runs func[k.func] with one
 * pointer per arg in order (inputs are the buffers of the named nodes; a reshape's
 * buffer is its source's), then `unsigned long long seed` when uses_seed (all ones: dropout
 * off, for evaluation and serving; a training seed is never all ones), then
 * `unsigned int *err` (a device flag, nonzero after an out-of-range index) when
 * checks_index; blockDim = block, gridDim = any count >= 1 (all kernels are
 * grid-stride), at most ceil(work / rows_per_block); zero_output: memset the output
 * to 0 first. Every buffer is 16-byte aligned. Kernels run in list order; one group
 * may have several in a row (attention_grad: cuda_attention.c), each a launch of its own,
 * each after the one before it. */
#ifndef PMLC_CUDA_CODEGEN_H
#define PMLC_CUDA_CODEGEN_H

#include "ir/fuse.h"
#include "plan/placement.h"

typedef struct pmlc_cuda_arg {
    int32_t node; /* the buffer: a materialised node (never a view) */
    uint8_t out;  /* 1: written by the kernel */
} pmlc_cuda_arg;

typedef struct pmlc_cuda_func {
    const char *name; /* pml_<hash of the code> */
    const char *text; /* location comments + the function */
    int n_lines;
    pmlc_loc *line_loc; /* per line of text: the op that wrote it (file -1: none) */
} pmlc_cuda_func;

typedef struct pmlc_cuda_kernel {
    int group; /* fusion group */
    pmlc_kernel_kind kind;
    int stage, pass;
    int func; /* index into funcs; -1: a matmul (cuBLAS) */
    int32_t node; /* matmul kernels: the matmul node */
    int n_args;
    pmlc_cuda_arg *args;
    int uses_seed, checks_index, zero_output;
    int64_t work;   /* threads wanted in all: block * blocks */
    uint32_t block; /* threads per block */
} pmlc_cuda_kernel;

typedef struct pmlc_cuda_module {
    const char *prelude; /* shared definitions, first in every program */
    int prelude_lines;
    int n_funcs;
    pmlc_cuda_func *funcs; /* the optimizer kernels first (pml_adamw_f32, ...), then the groups' */
    int n_kernels;
    pmlc_cuda_kernel *kernels; /* in fusion's numbering (a group's several in a row): an order they can run in */
} pmlc_cuda_module;

/* Renders every kernel of the plan's fusion (pl->fusion, over its graph pl->g: after
 * autodiff, when it has a loss) as CUDA C, into the program's arena. Returns 0, or the
 * number of errors reported (an op or dtype the CUDA backend does not support,
 * pointing at the op). */
int pmlc_cuda_codegen(pmlc_program *P, const pmlc_plan *pl, pmlc_cuda_module *out);

/* The prelude and the optimizer kernels, whatever the model (cuda_prelude.c).
 * Optimizer kernels, per gradient type T in f32, bf16, f16:
 *   pml_adamw_T(float *p, const T *g, float *m, float *v, long long n, double lr, double b1,
 *               double b2, double c1, double c2, double eps, double decay, double gscale)
 *     g' = g * gscale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
 *     p = p * decay - lr (m/c1) / (sqrt(v/c2) + eps)        (decay = 1 - lr * weight_decay)
 *   pml_sgd_T(float *p, const T *g, float *m, long long n, double lr, double wd, double mom,
 *             int nesterov, int first, double gscale)
 *     g' = g * gscale + wd p; with momentum: m = first ? g' : mom m + g',
 *     g' = nesterov ? g' + mom m : m; p -= lr g'
 * exactly as runtime/src/plan/optim.c, in double. */
extern const char pmlc_cuda_prelude[];
extern const char pmlc_cuda_optim_src[];

#endif

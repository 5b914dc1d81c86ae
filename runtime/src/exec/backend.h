/* backend.h — which backend runs a plan, and on which GPUs: the one place that turns a
 * requested pml_backend (cpu, cuda, auto) and the plan's stage -> device map (its DEVS
 * section, the train block's `place`) into the backend that will run and the physical
 * GPU of each stage device, or a clear reason why the request cannot be met. Used by
 * pml_backend_choose, pml_session_open (pml_session_create) and pml_infer_create.
 *
 * The rule (docs/language.md, "Devices"):
 * - cpu runs any plan on the CPU (the user asked for it); a GPU map given with it is
 *   refused, since nothing would apply it.
 * - cuda runs any plan on GPUs: a cuda map's cuda:N on GPU N, or on map[N] when a map
 *   is given; a cpu map's stages all on GPU 0 (no map may be given then). It needs a
 *   usable GPU, every GPU named must exist, and a map must give one GPU for each N from
 *   0 to the largest the plan names.
 * - auto follows the plan's map: the CPU for a map of cpu devices, CUDA for a map of
 *   cuda devices, with every check of cuda: a cuda-placed plan on a machine without a
 *   (usable) GPU is an error naming the map, the reason, and `--backend cpu`. Never a
 *   silent fall back to the CPU. A plan older than the map (version < 15, devices
 *   unknown) is chosen for as before the map existed: CUDA when a GPU is usable and the
 *   plan has GPU code, else the CPU.
 * The driver is dlopened, so every build has the CUDA backend; "no GPU" is a message. */
#ifndef PML_BACKEND_H
#define PML_BACKEND_H

#include <stddef.h>

#include "backend_ops.h"
#include "core/error.h"
#include "pml.h"

/* pml_backend_parse (the names "cpu", "cuda", "auto") is public: pml.h. */

/* A remap of the plan's GPU numbers onto this machine's (pmlc --devices 0,0,0,0,
 * pml_context_set_devices): the plan's cuda:N runs on GPU gpu[N]. n 0: none given.
 * Or, with `local` set (pmlc --devices local, pml_context_set_devices_local), every
 * stage device of the process on one GPU, the launcher's local rank `local_rank`, read
 * from the variable `local_from`: torchrun's one GPU per process, whatever the plan's
 * cuda:N and on a cpu-placed plan run with --backend cuda alike; n is then 0. */
typedef struct pml_gpu_map {
    int n;
    int gpu[PML_PLAN_MAX_GPU_INDEX + 1];
    int local, local_rank;
    const char *local_from; /* "LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID" */
} pml_gpu_map;

/* Resolves `want` for running `plan` (NULL: any plan; auto then takes CUDA when a GPU is
 * usable) with the remap `map` (NULL: none) into *got (PML_BACKEND_CPU or
 * PML_BACKEND_CUDA) and, for CUDA when stage_gpu is not NULL, the physical GPU of each
 * stage device into stage_gpu[0 .. conf.stages / conf.chunks). On failure returns
 * PML_ERR_UNSUPPORTED (no GPU, too few) or PML_ERR_INVALID_ARG (a bad remap) with the
 * reason in err. */
pml_status pml_backend_select(pml_backend want, const pml_plan *plan, const pml_gpu_map *map, pml_backend *got,
                              int *stage_gpu, pml_err *err);

/* The GPU of each stage device into stage_gpu[0 .. conf.stages / conf.chunks) (NULL:
 * only the checks) for a CUDA run of `plan` with `map` (NULL: none) on a machine of
 * `have` GPUs (pml_backend_select's last step, apart so that it can be checked without
 * one): PML_ERR_UNSUPPORTED (too few GPUs for the plan) or PML_ERR_INVALID_ARG (a remap
 * naming a GPU the machine lacks) with the reason in err. */
pml_status pml_backend_place(const pml_plan *plan, const pml_gpu_map *map, int have, int *stage_gpu, pml_err *err);

/* "[cuda:0, cuda:1]": the plan's map as `place` writes it (shortened past a few
 * entries), for messages; "(none: the plan predates device maps)" without one. */
const char *pml_backend_map_text(const pml_plan *plan, char *buf, size_t cap);

/* What pml_run_event's `placed` says of a run on resolved backend `got` with each stage
 * device's GPU in stage_gpu (NULL: GPU 0): the GPUs and the plan's map for CUDA, the
 * plan's unused cuda map for the CPU; NULL when the map places the run on the CPU. */
const char *pml_backend_placed_text(const pml_plan *plan, pml_backend got, const int *stage_gpu, char *buf,
                                    size_t cap);

/* The table that runs a resolved backend (CPU or CUDA). */
const pml_backend_ops *pml_backend_ops_of(pml_backend b);

/* The GPU target of device 0 ("sm_90"), for compiling a model's kernels for it; returns
 * 0, or -1 when there is no usable device. */
int pml_backend_cuda_arch(char *buf, size_t cap);

#endif

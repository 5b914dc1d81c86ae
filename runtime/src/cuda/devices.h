/* devices.h — the GPUs a CUDA context runs its stages on, and the handovers between
 * stages on different ones (cuda/stage.h, "Devices").
 *
 * Each stage runs on the GPU the backend conf gives it (pml_backend_conf.stage_gpu, from
 * the plan's `place` map and --devices: exec/backend.h). Per GPU: its primary context
 * (retained, so the context is the one every other user of that GPU in the process
 * shares), the plan's image loaded into it, and one arena for the values of its stages.
 * Per stage: its stream, cuBLAS handle and events, made in its GPU's context.
 *
 * Handovers. Stages of one group read each other's values in place, ordered by events
 * (stage.h); the group is the GPU, or, with PML_CUDA_PEER_COPIES=1, the stage itself
 * (stages on one GPU then hand over as if on different GPUs: the cross-device path,
 * testable on one GPU). A stage that reads a value of another group reads its own copy
 * (a mirror, in its GPU's memory): values a pass reads from another stage's pass are
 * copied on the reading stage's stream just before that pass, after the wait for the
 * producer's event (pml_cuda_pull); parameters and constants of another group, which
 * change only between steps, are copied at begin (pml_cuda_pull_statics), after an
 * event recorded on the owner's stream. The copies are cuMemcpyPeerAsync: direct over
 * NVLink or PCIe where cuDeviceCanAccessPeer allows and peer access is enabled at
 * create, else staged through host memory by the driver itself (the CUDA programming
 * guide, "Peer-to-Peer Memory Copy"); within one GPU, a device-to-device copy.
 * A parameter whose gradient is made on another group than its own stage's is refused
 * at create (its accumulation would read across GPUs without an order). */
#ifndef PML_CUDA_DEVICES_H
#define PML_CUDA_DEVICES_H

#include "cuda/stage.h"

/* PML_CUDA_PEER_COPIES=1: every stage its own group (above). 0 or unset: groups are GPUs. */
int pml_cuda_peer_copies_forced(void);

/* Retains each GPU's primary context, loads the plan's image for it, enables peer
 * access between GPUs whose stages hand over, and sets each stage's gpu and group. */
pml_status pml_cuda_gpus_open(pml_cuda_ctx *p, pml_err *err);
/* Releases what pml_cuda_gpus_open and pml_cuda_mirrors_make made (NULL-safe parts). */
void pml_cuda_gpus_close(pml_cuda_ctx *p);

/* The calling thread works in stage s's GPU's context. */
pml_status pml_cuda_use(const pml_cuda_ctx *p, int s, pml_err *err);

/* Which values each stage copies from other groups (per pass, and the statics), and
 * their mirrors in its GPU's memory; refuses a gradient made on another group. Needs
 * the stages' launch lists and the values' buffers. */
pml_status pml_cuda_mirrors_make(pml_cuda_ctx *p, pml_err *err);

/* Device address of node n's value for micro-batch mb as stage s reads it: its mirror
 * when n's stage is of another group, else pml_cuda_ctx_data. */
pml_cu_ptr pml_cuda_ctx_data_at(const pml_cuda_ctx *p, int s, int n, int64_t mb);

/* Before pass `pass` of stage s on mb (after its waits): copies in the values it reads
 * from other groups' passes, on its stream. */
pml_status pml_cuda_pull(pml_cuda_ctx *p, int s, int pass, int64_t mb, pml_err *err);
/* At begin: every stage's copies of other groups' parameters and constants. */
pml_status pml_cuda_pull_statics(pml_cuda_ctx *p, pml_err *err);

#endif

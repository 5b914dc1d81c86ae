/* cuda_attention.h — which attention ops the CUDA backend's fused attention kernels
 * take (cuda_attention.c), for the expansion that writes the others out as primitives
 * (ir/expand.h).
 *
 * The kernels compute in f32 on the CUDA cores, but where q, k and v are bf16 or f16: then
 * the products of the forward and backward passes run on the tensor cores (16-bit in,
 * f32 accumulators: mma.m16n8k16, sm_80 and later; the backward's in bf16).
 * They take [..., T, d] operands with any T and a head dimension d from 2 to 128 (d is padded to a multiple of
 * 16 in shared memory; a block's tiles fit the 48 KiB of static shared memory up to
 * d = 128; the backward pass keeps two numbers per row in its dq output, hence d >= 2).
 *
 * PML_CUDA_ATTENTION (read when a plan is made for CUDA) chooses: `kernel` (the
 * default: these kernels where they fit) or `expand` (every attention written out as
 * matmuls, a masked softmax and permutes, as before the kernels existed: to compare the
 * two, or to step around a kernel that fails). Any other value is an error. */
#ifndef PMLC_CUDA_ATTENTION_H
#define PMLC_CUDA_ATTENTION_H

#include <stdint.h>

#define PMLC_CUDA_ATTENTION_MIN_D 2
#define PMLC_CUDA_ATTENTION_MAX_D 128

/* Tiles (constant expressions, for the code generator and for tests/cuda's CPU
 * emulation of the same templates): the head dimension padded in shared memory, the
 * forward pass's query and key tiles, the backward pass's square tile. Each keeps a
 * block's static shared memory under 48 KiB up to d = 128. */
#define PMLC_CUDA_ATT_DP(d) (((d) + 15) / 16 * 16)
#define PMLC_CUDA_ATT_FWD_BQ 64
#define PMLC_CUDA_ATT_FWD_BK(dp) ((dp) <= 32 ? 64 : (dp) <= 64 ? 32 : 16)
#define PMLC_CUDA_ATT_BWD_B(dp) ((dp) <= 64 ? 32 : 16)
/* The tensor-core kernels' tile: 16 rows (queries, or keys in the dk/dv launch) for each
 * of a block's 8 warps; the dq launch's key tile, 64 keys, 32 past a padded head dim of
 * 64 (its k, v and kᵀ tiles in the static shared memory). */
#define PMLC_CUDA_ATT_TC_BQ 128
#define PMLC_CUDA_ATT_TC_Q_BK(dp) ((dp) <= 64 ? 64 : 32)

/* Whether the kernels take a head dimension of d. */
static inline int pmlc_cuda_attention_fits(int64_t d)
{
    return d >= PMLC_CUDA_ATTENTION_MIN_D && d <= PMLC_CUDA_ATTENTION_MAX_D;
}

/* The kernels' CUDA C templates (after the prelude when a model has attention). */
extern const char pmlc_cuda_attention_src[];

#endif

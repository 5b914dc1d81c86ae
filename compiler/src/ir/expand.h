/* expand.h — fused ops written out as the primitives they fuse, for backends that have
 * no kernel for the fused op (docs/design.md, "Fused attention").
 *
 * The CUDA backend's attention kernels (gpu/cuda_attention.h) take f32, bf16 and f16
 * with a head dimension from 2 to 128 known when the graph is made. A plan placed on CUDA
 * devices gets every other `attention(q, k, v)` and `attention_qkv(qkv, heads)` node —
 * every one under PML_CUDA_ATTENTION=expand, none but those with another value, which is
 * an error — replaced, before autodiff and costing, by the graph the stdlib wrote before the
 * primitives existed: matmul(q, kᵀ) · scale, causal_mask when causal, softmax as
 * max/sub/exp/sum/div over the last axis, dropout with the node's key and p when it has
 * them (the same mask the kernels draw), matmul with v; for attention_qkv, q, k and v
 * sliced off its input and permuted to [..., heads, T, d] first, the result permuted
 * back and its heads merged after. The new
 * nodes take the attention node's stage, unit, pass, location and recomputation
 * segment; the last of them its label. Every index into the node list (parameters,
 * inputs, output, labels, loss, the teacher's range, scopes, segments) is remapped. */
#ifndef PMLC_EXPAND_H
#define PMLC_EXPAND_H

#include "front/program.h"
#include "ir/ir.h"

/* Replaces g's attention nodes as above (g is not yet differentiated). Returns how many
 * were replaced, or -1 after reporting an error (a bad PML_CUDA_ATTENTION, or an internal
 * one). */
int pmlc_expand_attention(pmlc_program *P, pmlc_graph *g);

#endif

/* lower.h — the CPU backend's load-time lowering of a plan's graph: what the executor
 * actually runs for each node, decided once when a pipeline is created.
 *
 * A plan spells a linear layer's backward pass with explicit transposes: matmul(
 * permute(x), dy) and then permute(...) of the product to the weight's layout. Run as
 * written, each permute is a strided copy per micro-batch (24% of an MLP step). The
 * lowering removes them without changing a value:
 *   - A matmul operand that is a permute swapping the last two axes (batch axes kept)
 *     is read in place through the GEMM's transpose flag (chains of such permutes fold
 *     too: a double transpose is no transpose).
 *   - A permute swapping the last two axes of a matmul's product that nothing else
 *     reads becomes the matmul itself with its operands exchanged and their flags
 *     flipped ((A B)^T = B^T A^T), and the inner matmul is not run.
 *   - A reshape is not a copy: its node shares its input's buffer (`alias`).
 *   - A permute whose every reader folded it, and that the executor does not read
 *     itself (`keep`), is not run.
 *   - With `fold_bias`, add(matmul, bias) of f32 values, where the matmul's product is
 *     read by that add alone and the bias is a parameter of the matmul's stage holding
 *     one value per output column ([n], or [1, ..., 1, n]), is the GEMM's epilogue: the
 *     matmul adds the bias to each row as it stores the product (in[2], `bias`), and the
 *     add is an alias of the matmul (`folded`) that does not run. Each element is still
 *     (its dot product) + bias, rounded as the add rounded it, so the values do not
 *     change; what goes is a pass of the broadcast add over the whole product.
 * The products are computed with the same operands as written, so results differ
 * from the unlowered graph only by the GEMM's summation order.
 *
 * Ownership: pml_cpu_lower returns one array the caller frees with free(). */
#ifndef PML_CPU_LOWER_H
#define PML_CPU_LOWER_H

#include <stdint.h>

#include "kernels.h"
#include "plan/plan.h"

typedef struct pml_cpu_node {
    uint8_t run;      /* 1: the executor runs it; 0: folded into its readers, or an alias */
    uint16_t op;      /* what runs: a permute folded with its matmul input runs as matmul */
    uint8_t trans[2]; /* a matmul's: operand i is read with its last two axes swapped */
    uint8_t folded;   /* an add(matmul, bias) whose matmul adds the bias: an alias of it */
    int32_t bias;     /* a matmul's: the node it adds to each row of its product, or -1 */
    int32_t in[3];    /* a matmul's operands after folding, then its bias (other ops keep node->in) */
    int32_t alias;    /* the node whose buffer holds this one's value: itself but for reshapes */
    int32_t readers;  /* run nodes that read this node's value (through aliases too) */
} pml_cpu_node;

/* Lowers `plan`; keep[n] (may be NULL) marks nodes the executor reads itself (loss,
 * output, parameter gradients), which must still be computed; fold_bias: make bias adds
 * GEMM epilogues (off when every node runs on its own). *out gets plan->n_nodes
 * entries. */
pml_status pml_cpu_lower(const pml_plan *plan, const uint8_t *keep, int fold_bias, pml_cpu_node **out, pml_err *err);

/* The inputs a lowered node reads: its lowered operands (and bias) for a matmul, else
 * its own. */
static inline const int32_t *pml_cpu_node_inputs(const pml_plan *plan, const pml_cpu_node *l, int n, int *n_in)
{
    if (l[n].op == PML_OP_MATMUL) {
        *n_in = l[n].bias >= 0 ? 3 : 2;
        return l[n].in;
    }
    *n_in = plan->nodes[n].n_in;
    return plan->nodes[n].in;
}

#endif

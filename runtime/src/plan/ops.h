/* ops.h — what the runtime knows of each primitive op apart from running it: its
 * opcode (in plan order, from pml/ops.def), its name for messages and how many inputs
 * it takes. The plan reader checks nodes against it and every backend names ops with
 * it, so it sits in the plan layer, below the backends. */
#ifndef PML_PLAN_OPS_H
#define PML_PLAN_OPS_H

/* Opcodes in plan order: PML_OP_ADD, ... */
typedef enum pml_opcode {
#define PML_OP(e, name) PML_OP_##e,
#include "pml/ops.def"
#undef PML_OP
    PML_OP_COUNT
} pml_opcode;

/* The op's name, for messages ("matmul"); "?" for an unknown opcode. */
const char *pml_op_name(pml_opcode op);
/* How many inputs the op takes: from *lo to *hi (-1: any number). pml_cpu_run refuses
 * another count, and the plan reader a node with another (a plan file is user input). */
void pml_op_arity(pml_opcode op, int *lo, int *hi);

#endif

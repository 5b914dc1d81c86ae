/* ops.h — what the runtime knows of each primitive op apart from running it, all of it
 * from pml/ops.def: its opcode (in plan order), its name for messages, how many inputs
 * it takes, its class and flags. The plan reader checks nodes against it and every
 * backend names and dispatches ops by it, so it sits in the plan layer, below the
 * backends. */
#ifndef PML_PLAN_OPS_H
#define PML_PLAN_OPS_H

#include "pml/ops.h"

/* Opcodes in plan order: PML_OP_ADD, ... */
typedef enum pml_opcode {
#define PML_OP(e, ...) PML_OP_##e,
#include "pml/ops.def"
#undef PML_OP
    PML_OP_COUNT
} pml_opcode;

/* pml/ops.def's classes (its header says what each holds). */
typedef enum pml_op_class {
    PML_OPC_LEAF,
    PML_OPC_FILL,
    PML_OPC_UNARY,
    PML_OPC_BINARY,
    PML_OPC_ELEMWISE,
    PML_OPC_REDUCE,
    PML_OPC_MOVEMENT,
    PML_OPC_GATHER,
    PML_OPC_MATMUL,
    PML_OPC_ROWLOSS,
    PML_OPC_ATTENTION
} pml_op_class;

/* The op's name, for messages ("matmul"); "?" for an unknown opcode. */
const char *pml_op_name(pml_opcode op);
/* How many inputs the op takes: from *lo to *hi (-1: any number). pml_cpu_run refuses
 * another count, and the plan reader a node with another (a plan file is user input).
 * An unknown opcode gets 1 and 1; callers refuse it by its number. */
void pml_op_arity(pml_opcode op, int *lo, int *hi);
/* The op's class; callers check the opcode is known (< PML_OP_COUNT) first. */
pml_op_class pml_op_class_of(pml_opcode op);
/* PML_OPF_* (pml/ops.h); 0 for an unknown opcode. */
unsigned pml_op_flags(pml_opcode op);

#endif

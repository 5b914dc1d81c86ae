/* ops.c — each op's name, arity, class and flags, one row per row of pml/ops.def (see
 * ops.h). */
#include "plan/ops.h"

#include <stdint.h>

static const struct op_facts {
    const char *name;
    int8_t lo, hi;
    uint8_t flags;
    pml_op_class cls;
} op_facts[] = {
#define PML_OP(e, name, cls, lo, hi, flags, ...) [PML_OP_##e] = {name, lo, hi, flags, PML_OPC_##cls},
#include "pml/ops.def"
#undef PML_OP
};
_Static_assert(sizeof op_facts / sizeof *op_facts == PML_OP_COUNT, "one row per op of pml/ops.def");

const char *pml_op_name(pml_opcode op) { return (unsigned)op < PML_OP_COUNT ? op_facts[op].name : "?"; }

void pml_op_arity(pml_opcode op, int *lo, int *hi)
{
    *lo = *hi = 1;
    if ((unsigned)op >= PML_OP_COUNT) return;
    *lo = op_facts[op].lo;
    *hi = op_facts[op].hi;
}

pml_op_class pml_op_class_of(pml_opcode op) { return op_facts[op].cls; }

unsigned pml_op_flags(pml_opcode op) { return (unsigned)op < PML_OP_COUNT ? op_facts[op].flags : 0; }

/* ops.c — op names and arities (see ops.h). */
#include "plan/ops.h"

static const char *const op_names[PML_OP_COUNT] = {
#define PML_OP(e, name) [PML_OP_##e] = name,
#include "pml/ops.def"
#undef PML_OP
};

const char *pml_op_name(pml_opcode op) { return (unsigned)op < PML_OP_COUNT ? op_names[op] : "?"; }

void pml_op_arity(pml_opcode op, int *lo, int *hi)
{
    *lo = *hi = 1;
    switch (op) {
    case PML_OP_INPUT:
    case PML_OP_PARAM:
    case PML_OP_CONST:
    case PML_OP_ARANGE:
        *lo = *hi = 0;
        break;
    case PML_OP_ADD:
    case PML_OP_SUB:
    case PML_OP_MUL:
    case PML_OP_DIV:
    case PML_OP_MAXIMUM:
    case PML_OP_MINIMUM:
    case PML_OP_POW:
    case PML_OP_LT:
    case PML_OP_LE:
    case PML_OP_GT:
    case PML_OP_GE:
    case PML_OP_EQ:
    case PML_OP_NE:
    case PML_OP_GATHER:
    case PML_OP_PICK:
    case PML_OP_MATMUL:
    case PML_OP_SCATTER_ADD:
    case PML_OP_UNPICK:
    case PML_OP_XENT:
        *lo = *hi = 2;
        break;
    case PML_OP_WHERE:
        *lo = *hi = 3;
        break;
    case PML_OP_XENT_GRAD:
        *lo = *hi = 4;
        break;
    case PML_OP_CONCAT:
        *hi = -1;
        break;
    default:
        break;
    }
}

/* run.c — pml_cpu_run: checks what every op needs (a known opcode, its inputs) and
 * routes the call to its kernel family (pml_cpu_family, the one place that says which
 * family runs an op); pml_op_name. */
#include "cpu.h"

static const char *const op_names[PML_OP_COUNT] = {
#define PML_OP(e, name) [PML_OP_##e] = name,
#include "pml_ops.def"
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

pml_cpu_family_kind pml_cpu_family(pml_opcode op)
{
    switch (op) {
    case PML_OP_INPUT:
    case PML_OP_PARAM:
        return PML_CPU_SOURCE;
    case PML_OP_SUM:
    case PML_OP_MAX:
    case PML_OP_MEAN:
    case PML_OP_SUM_TO:
        return PML_CPU_REDUCE;
    case PML_OP_RESHAPE:
    case PML_OP_PERMUTE:
    case PML_OP_SLICE:
    case PML_OP_CONCAT:
    case PML_OP_EXPAND:
    case PML_OP_PAD:
        return PML_CPU_MOVEMENT;
    case PML_OP_GATHER:
    case PML_OP_PICK:
    case PML_OP_SCATTER_ADD:
    case PML_OP_UNPICK:
        return PML_CPU_INDEX;
    case PML_OP_MATMUL:
        return PML_CPU_MATMUL;
    case PML_OP_XENT:
    case PML_OP_XENT_GRAD:
        return PML_CPU_XENT;
    default:
        return PML_CPU_ELEMENTWISE;
    }
}

pml_status pml_cpu_run(const pml_op_call *c, pml_err *err)
{
    if (!c) return pml_err_set(err, PML_ERR_INVALID_ARG, "pml_cpu_run: no call");
    if ((unsigned)c->op >= PML_OP_COUNT)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "pml_cpu_run: unknown op %d (dtype %s)", (int)c->op,
                           pml_dtype_name(c->out.dtype));
    const char *name = pml_op_name(c->op);
    int lo, hi;
    pml_op_arity(c->op, &lo, &hi);
    if (c->n_in < lo || (hi >= 0 && c->n_in > hi))
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: takes %d inputs, got %d", name, lo, c->n_in);
    if (c->n_in > 0 && !c->in) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: no inputs given", name);
    for (int i = -1; i < c->n_in; i++) {
        const pml_view *v = i < 0 ? &c->out : &c->in[i];
        if (v->rank < 0 || v->rank > PML_MAX_RANK)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: rank %d is outside [0, %d]", name, v->rank, PML_MAX_RANK);
        for (int k = 0; k < v->rank; k++)
            if (v->dims[k] < 0)
                return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: negative dimension %lld", name,
                                   (long long)v->dims[k]);
        if (!v->data && pml_cpu_numel(v) > 0)
            return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: %s %d has no data", name, i < 0 ? "output" : "input",
                               i < 0 ? 0 : i);
    }
    switch (pml_cpu_family(c->op)) {
    case PML_CPU_SOURCE:
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: source nodes are filled by the executor, not run", name);
    case PML_CPU_REDUCE:
        return pml_cpu_reduce(c, err);
    case PML_CPU_MOVEMENT:
        return pml_cpu_movement(c, err);
    case PML_CPU_INDEX:
        return pml_cpu_index(c, err);
    case PML_CPU_MATMUL:
        return pml_cpu_matmul(c, err);
    case PML_CPU_XENT:
        return pml_cpu_xent(c, err);
    default:
        return pml_cpu_elementwise(c, err);
    }
}

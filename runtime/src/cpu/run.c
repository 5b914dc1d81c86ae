/* run.c — pml_cpu_run: checks what every op needs (a known opcode, its inputs), sends
 * a call with 16-bit operands to cpu/half.c, and routes the others to the kernel family
 * of their class (pml/ops.def), the one place that says which family runs an op. */
#include "cpu.h"
#include "convert.h"

pml_status pml_cpu_run_family(const pml_op_call *c, pml_err *err)
{
    const char *name = pml_op_name(c->op);
    switch (pml_op_class_of(c->op)) {
    case PML_OPC_LEAF:
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: source nodes are filled by the executor, not run", name);
    case PML_OPC_FILL:
    case PML_OPC_UNARY:
    case PML_OPC_BINARY:
    case PML_OPC_ELEMWISE:
        return pml_cpu_elementwise(c, err);
    case PML_OPC_REDUCE:
        return pml_cpu_reduce(c, err);
    case PML_OPC_MOVEMENT:
        return pml_cpu_movement(c, err);
    case PML_OPC_GATHER:
        return pml_cpu_index(c, err);
    case PML_OPC_MATMUL:
        return pml_cpu_matmul(c, err);
    case PML_OPC_ROWLOSS:
        return pml_cpu_xent(c, err);
    case PML_OPC_ATTENTION:
        return pml_cpu_attention(c, err);
    }
    return pml_err_set(err, PML_ERR_UNSUPPORTED, "%s: no CPU kernel family", name); /* not reached */
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
    if (c->op == PML_OP_MATMUL) hi = 3; /* a bias the lowering folded into the product (cpu/lower.h) */
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
    if (pml_cpu_is_half(c->out.dtype)) return pml_cpu_run_half(c, err);
    for (int k = 0; k < c->n_in; k++)
        if (pml_cpu_is_half(c->in[k].dtype)) return pml_cpu_run_half(c, err);
    return pml_cpu_run_family(c, err);
}

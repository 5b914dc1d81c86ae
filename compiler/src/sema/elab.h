/* elab.h — elaboration: running a model's body at compile time. Imports are already
 * resolved; this inlines every function call under its scope name, unrolls loops,
 * takes compile-time `if`s, evaluates constants, infers every shape, and emits the
 * graph IR of primitive ops. Errors are reported with the operand at fault.
 *
 * Limits that keep any input from exhausting time or memory: PMLC_MAX_NODES
 * operations per model, PMLC_MAX_LOOP iterations per loop, PMLC_MAX_CALL_DEPTH
 * nested calls, and PMLC_MAX_WORK evaluation steps in all. */
#ifndef PMLC_ELAB_H
#define PMLC_ELAB_H

#include "front/program.h"

#define PMLC_MAX_NODES 1000000
#define PMLC_MAX_LOOP 1000000
#define PMLC_MAX_CALL_DEPTH 64
#define PMLC_MAX_WORK 50000000

typedef enum pmlc_vkind {
    PMLC_V_ERR, /* an error was already reported: propagate silently */
    PMLC_V_NONE,
    PMLC_V_INT, /* a size: constant or symbolic */
    PMLC_V_FLOAT,
    PMLC_V_BOOL,
    PMLC_V_STR,
    PMLC_V_DTYPE,
    PMLC_V_LIST,
    PMLC_V_TENSOR,
    PMLC_V_DEVICE /* s = "cuda" | "cpu", i = index */
} pmlc_vkind;

typedef struct pmlc_value {
    pmlc_vkind k;
    int n;       /* list length */
    pmlc_size i; /* INT, DEVICE index, BOOL (coef) */
    double f;
    const char *s;
    struct pmlc_value *items; /* list elements */
    int32_t t;                /* tensor: graph node; DTYPE: the dtype */
} pmlc_value;

struct pmlc_distill;

/* Elaborates `model`. With `loss_fn` (an AST_FN) it also adds the labels input and the
 * scalar loss, on the last stage; `loss_loc` is where the loss was named. With a
 * distillation `d` (and a loss) the teacher's forward pass joins the graph, its
 * parameters named teacher.NAME and frozen, and the loss becomes kd_loss of the
 * standard library. Returns NULL when errors were reported. */
pmlc_graph *pmlc_elab_model(pmlc_program *P, const ast *model, const ast *loss_fn, pmlc_loc loss_loc,
                            const struct pmlc_distill *d);

/* Evaluates a compile-time expression in the global scope (constants and built-in
 * helpers visible; no tensors). Returns PMLC_V_ERR after reporting an error. */
pmlc_value pmlc_eval_const(pmlc_program *P, const ast *e);

/* Binds and evaluates the arguments of a configuration call such as adamw(lr = 3e-4)
 * in the global scope (see pmlc_bind_args in elab_int.h). Returns 0 on success. */
int pmlc_eval_args(pmlc_program *P, const ast *call, const char *fname, const char *const *names, int n,
                   pmlc_value *vals, pmlc_loc *locs, int *given);

/* Describes a value's kind for messages: "an integer", "a tensor f32[B, 10]". */
const char *pmlc_value_desc(pmlc_program *P, const pmlc_graph *g, pmlc_value v, char *buf, size_t cap);

#endif

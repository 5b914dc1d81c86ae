/* elab_int.h — what elab.c shares with builtins.c; not used elsewhere. */
#ifndef PMLC_ELAB_INT_H
#define PMLC_ELAB_INT_H

#include "sema/elab.h"

/* A naming scope: one per function call (and the model root, path NULL). */
typedef struct pmlc_scope {
    const char *path;     /* "blocks.3.attn"; NULL at the model root */
    const char *layer;    /* the model-level scope containing it */
    pmlc_strmap used;     /* names taken here → pmlc_loc* of their first use */
    pmlc_strmap counters; /* function name → int* automatic-name counter */
} pmlc_scope;

/* Variables of one function activation (or of the model body, or of a constant). */
typedef struct pmlc_frame {
    pmlc_strmap vars; /* name → pmlc_value* */
    pmlc_scope *scope;
    int is_model;
    int no_tensors;          /* evaluating a constant */
    int bind_symbols;        /* unknown names become symbolic dimensions (model input types) */
    PMLC_VEC(int64_t) loops; /* indices of the enclosing loops of this frame */
    pmlc_value ret;
    int returned;
    pmlc_loc ret_loc;
} pmlc_frame;

typedef struct pmlc_elab {
    pmlc_program *P;
    pmlc_arena *A;
    pmlc_graph *g; /* NULL while evaluating constants */
    int cur_stage;
    int next_stage;
    int in_stage;
    pmlc_loc first_stage_loc;
    int unit;
    int stage_err_unit;
    pmlc_loc model_stmt; /* the model-level statement running: where placement errors point */
    int64_t work;
    int aborted; /* a limit was hit: unwind without further messages */
    int call_depth;
    const ast *calls[PMLC_MAX_CALL_DEPTH]; /* the active user-function calls, outermost first */
    pmlc_strmap active;                    /* functions being called → 1, to refuse recursion */
    int teacher; /* running a distillation teacher's body inside the student's graph (elab.c):
                  * its stage blocks and placement are ignored, its names get "teacher." */
    pmlc_strmap named; /* scope path of each call named with `as` → int32_t* its tensor result: the
                        * hidden states a distillation's match(...) may name */
} pmlc_elab;

typedef pmlc_elab E_t;

pmlc_value pmlc_eval(E_t *E, pmlc_frame *F, const ast *e);

/* Emits one op after running its shape rule; reports at the operand at fault.
 * Returns the node or -1. */
int32_t pmlc_emit(E_t *E, pmlc_opcode op, int n_in, const int32_t *in, const pmlc_loc *in_locs, const int64_t *attr,
                  int n_attr, const pmlc_shape *target, double fval, pmlc_loc loc, const char *opname);
/* A source node (input, param, const, arange) of the given type; -1 when over the limit. */
int32_t pmlc_emit_source(E_t *E, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, double fval, pmlc_loc loc);
void pmlc_node_shape(const E_t *E, int32_t t, pmlc_shape *out);

/* Conversions with errors at `loc`; they return 0 on success. */
int pmlc_want_int(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int64_t *out);
int pmlc_want_size(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, pmlc_size *out);
int pmlc_want_number(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, double *out);
int pmlc_want_bool(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int *out);
/* A tensor, or a number made a scalar constant of dtype `like` (a tensor node or -1 for f32). */
int pmlc_want_tensor(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int32_t like, int32_t *out);

pmlc_value pmlc_v_int(int64_t v);
pmlc_value pmlc_v_size(pmlc_size s);
pmlc_value pmlc_v_float(double f);
pmlc_value pmlc_v_bool(int b);
pmlc_value pmlc_v_tensor(int32_t t);
extern const pmlc_value pmlc_v_err, pmlc_v_none;

/* Calls `fn` as `fn(args...) as label` (label NULL: named automatically), written at
 * `loc`; the arguments are names of variables of F. */
pmlc_value pmlc_call_at(E_t *E, pmlc_frame *F, const ast *fn, pmlc_loc loc, const char *label, const char *const *args,
                        int n);

/* The loss plus the distillation's hidden-state match terms (elab_match.c). */
pmlc_value pmlc_elab_matches(E_t *E, pmlc_frame *F, const struct pmlc_distill *d, pmlc_value loss);

/* Binds a call's arguments to `names`: positional first, then by keyword. Values of
 * arguments not given are PMLC_V_NONE with given[i] = 0. Returns 0 on success. */
int pmlc_bind_args(E_t *E, pmlc_frame *F, const ast *call, const char *fname, const char *const *names, int n,
                   pmlc_value *vals, pmlc_loc *locs, int *given);

/* Built-in calls (builtins.c). */
int pmlc_builtin_find(const char *name);
pmlc_value pmlc_builtin_call(E_t *E, pmlc_frame *F, const ast *call, int which);
/* All built-in names, for suggestions. */
int pmlc_builtin_names(const char **out, int cap);

/* Shared between the elab_*.c files. */
const char *pmlc_desc(E_t *E, pmlc_value v, char *buf, size_t cap);
int pmlc_over_limit(E_t *E, pmlc_loc loc); /* counts a step; 1 when the work limit is hit */
void pmlc_set_var(E_t *E, pmlc_frame *F, const char *name, pmlc_value v);
const char *pmlc_join(E_t *E, const char *path, const char *name);
int pmlc_claim(E_t *E, pmlc_scope *S, const char *name, pmlc_loc loc, const char *what);
pmlc_value pmlc_eval_call(E_t *E, pmlc_frame *F, const ast *call);
int pmlc_exec_block(E_t *E, pmlc_frame *F, const ast *block);
int pmlc_eval_type(E_t *E, pmlc_frame *F, const ast *ty, pmlc_dtype dt_default, pmlc_dtype *dt, pmlc_shape *sh);

/* Normalises an axis against a rank; reports at loc. Returns 0 on success. */
int pmlc_axis(E_t *E, int64_t axis, int rank, pmlc_loc loc, int *out);

#endif

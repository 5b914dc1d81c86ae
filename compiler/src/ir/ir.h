/* ir.h — the graph IR: primitive ops (ops.h) over typed tensors, with named
 * parameters, per-node source locations, and where each node sits in the model
 * (its top-level statement "unit" and, once placed, its stage).
 *
 * Nodes are in creation order, which is a topological order. Everything lives in the
 * session arena. */
#ifndef PMLC_IR_H
#define PMLC_IR_H

#include "front/ast.h"
#include "ir/ops.h"

typedef struct ir_node {
    pmlc_opcode op;
    pmlc_dtype dtype;
    int rank;
    int n_in;
    int32_t *in;
    pmlc_size *shape;
    int64_t *attr;
    int n_attr;
    double fval; /* constant value, dropout probability */
    int stage;   /* -1 until placed */
    int unit;    /* the model-level statement that made it */
    int param;   /* index into params, or -1 */
    pmlc_loc loc;
    const char *label; /* the variable it was last assigned to at model level */
    int pass;          /* PMLC_PASS_FORWARD, or the backward work it belongs to */
} ir_node;

/* Which pass a node belongs to. Backward work is split as zero-bubble schedules need:
 * gradients of activations (B) must flow to the previous stage at once; gradients of
 * weights (W) can wait. */
enum { PMLC_PASS_FORWARD = 0, PMLC_PASS_BWD_INPUT = 1, PMLC_PASS_BWD_WEIGHT = 2 };

typedef enum pmlc_init {
    PMLC_INIT_ZEROS,
    PMLC_INIT_ONES,
    PMLC_INIT_NORMAL,
    PMLC_INIT_UNIFORM,
    PMLC_INIT_KAIMING_UNIFORM,
    PMLC_INIT_XAVIER_UNIFORM
} pmlc_init;

typedef struct ir_param {
    const char *name;  /* blocks.3.attn.qkv.weight */
    const char *layer; /* the model-level scope it belongs to: blocks.3 */
    int node;
    pmlc_dtype dtype;
    int rank;
    int64_t dims[PMLC_MAX_RANK];
    int64_t numel;
    pmlc_init init;
    double init_a, init_b; /* normal: std, mean; uniform: low, high */
    pmlc_loc loc;
    int frozen_from; /* step from which it is frozen; -1: trained throughout */
    int teacher;     /* a distillation teacher's: frozen from step 0, loaded from its file, never saved */
    int apart;       /* trained with the model but saved apart from its model file: a distillation's
                      * match projection (distill.matchI.proj.*), which the student does not own */
    int tie;         /* the parameter this one is a copy of on another stage (plan/tie.h), or -1 */
} ir_param;

typedef struct ir_input {
    const char *name;
    int node;
    pmlc_loc loc;
} ir_input;

/* One function call: its scope path and the nodes it made, [begin, end) in creation
 * order (a call's body runs whole, so they are contiguous; nested calls lie inside). */
/* Most model chunks per stage device (place = auto(..., chunks = V)). */
#define PMLC_MAX_CHUNKS 64

typedef struct ir_scope {
    const char *path; /* blocks.3.attn */
    pmlc_loc loc;     /* the call */
    int32_t begin, end;
} ir_scope;

typedef struct pmlc_graph {
    const char *name;
    const ast *decl;
    PMLC_VEC(ir_node) nodes;
    PMLC_VEC(ir_param) params;
    PMLC_VEC(ir_input) inputs;
    int output; /* node returned by the model */
    int labels; /* labels input node, or -1 */
    int loss;   /* scalar loss node, or -1 */
    int n_units;
    int staged;     /* stage blocks were written */
    int n_stages;   /* written or requested by place = auto(...) (stages x chunks); 1 otherwise */
    int chunks;     /* model chunks per stage device, place = auto(..., chunks = V); 0 or 1: one */
    pmlc_loc chunks_loc;
    int auto_place; /* place = auto(stages = N) */
    pmlc_loc place_loc;
    int replicas;          /* data-parallel pipelines, from place = auto(..., replicas = R); 0: not given (1) */
    pmlc_loc replicas_loc; /* where R was given */
    int batch_sym;       /* symbol of the batch dimension, -1 when the first input has none */
    int n_forward;       /* nodes before autodiff appended the backward pass (0: none yet) */
    int32_t *param_grad; /* after autodiff: per parameter, the node of d loss / d param, or -1 */
    int teacher_begin, teacher_end; /* forward nodes [begin, end) run the distillation teacher; 0, 0: none */
    PMLC_VEC(ir_scope) scopes;      /* every call of the model's own (not the teacher's), in the order they end */
    /* Recomputation (autodiff.h): per forward node, the segment whose forward pass the
     * backward pass recomputes, or -1 (NULL: none); set by pmlc_train_bind. After
     * autodiff, per node: the forward node it recomputes, or -1 (NULL: nothing is). */
    int32_t *segment;
    int32_t *copy_of;
} pmlc_graph;

const char *pmlc_init_name(pmlc_init i);

/* Most inputs one op may take. */
#define PMLC_GRAPH_MAX_IN 64

/* Runs `op`'s shape rule on graph nodes `in` (n_in <= PMLC_GRAPH_MAX_IN; `scratch`
 * holds n_in shapes): fills `a` (out, out_dt, or bad and msg) and returns nonzero when
 * the operands do not fit. */
int pmlc_graph_infer(const pmlc_graph *g, pmlc_opcode op, int n_in, const int32_t *in, const int64_t *attr, int n_attr,
                     const pmlc_shape *target, const pmlc_symtab *syms, const char *opname, pmlc_shape *scratch,
                     pmlc_infer *a);

/* After a pass rebuilt g's node list: points every index into it (parameters, inputs,
 * output, labels, loss, the teacher's range, scopes, n_forward, parameter gradients) at
 * the new list, where old node i's value is node to[i] and the first node made for it
 * is first[i] (a range [begin, end) becomes [first[begin], first[end])). Both arrays
 * have an entry per old node and one more, the new node count. */
void pmlc_graph_remap(pmlc_graph *g, const int32_t *to, const int32_t *first);

/* Node n's element count, symbolic (1 when it does not fit: pmlc_shape_numel). */
pmlc_size pmlc_node_numel(const ir_node *n);

/* Appends a node like `proto` (its n_in and n_attr say how many inputs and attributes
 * to copy; shape, inputs and attributes are copied into the arena). Returns its index. */
int32_t pmlc_graph_push(pmlc_arena *A, pmlc_graph *g, const ir_node *proto, const pmlc_shape *shape, const int32_t *in,
                        const int64_t *attr);

#endif

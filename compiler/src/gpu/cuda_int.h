/* cuda_int.h — what the CUDA code generator's files share: the state of one kernel
 * being rendered, and the helpers that turn a node into a C expression
 * (cuda_expr.c) and a group into a kernel body (cuda_codegen.c, cuda_single.c). */
#ifndef PMLC_CUDA_INT_H
#define PMLC_CUDA_INT_H

#include "front/program.h"
#include "gpu/cuda_codegen.h"

/* A growing text with the op location of each line. */
typedef struct cg_text {
    char *s;
    size_t len, cap;
    PMLC_VEC(pmlc_loc) lines;
} cg_text;

typedef struct cg {
    pmlc_program *P;
    const pmlc_graph *g;
    const pmlc_fusion *fu;
    pmlc_cshape *shape; /* per node, every symbol bound */
    int64_t *numel;     /* per node */
    /* the kernel being rendered */
    int group;
    cg_text *t;
    pmlc_loc loc; /* the op whose code is being written */
    PMLC_VEC(pmlc_cuda_arg) args;
    int uses_seed, checks_index, zero_output;
    int errors;
    int32_t *local; /* per node: its position in the group being rendered: registers are v<local>, so
                       the same layer twice is the same code */
    /* element-wise kernels' vector path: loads of whole vectors replace identity loads */
    int vec;          /* 0: scalar code; else elements per thread */
    uint8_t *vloaded; /* per arg: preloaded as a vector */
    int part;         /* which of an op's launches is being rendered (cg_attention_launches) */
    int32_t loss_seed; /* the loss gradient's seed, which reads the loss scale (pml_loss_scale), or -1 */
} cg;

/* Appends formatted text; each newline records cg->loc as that line's op. */
void cg_emit(cg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The buffer behind node n (a reshape's source, repeatedly); its arg index, added
 * on first use. */
int cg_arg(cg *c, int32_t node, int out);

/* C type of a node's values in registers ("float" or "int") and in memory. */
const char *cg_ctype(pmlc_dtype t);
const char *cg_mtype(pmlc_dtype t);
/* `v` (a value of register type) converted for storing as dtype t, and a load back. */
const char *cg_to_mem(cg *c, pmlc_dtype t, const char *v);
const char *cg_from_mem(cg *c, pmlc_dtype t, const char *m);

/* Offset into operand `in` of the element at linear index `idx` of node `n`'s shape,
 * by NumPy broadcasting. */
const char *cg_bcast_offset(cg *c, int32_t n, int32_t in, const char *idx);

/* The value of node `in` at element offset `off` of its buffer: a register when it is
 * computed in this kernel, a literal for constants, the offset for arange, else a load
 * (in the vector path, offset "i" reads the preloaded vector). */
const char *cg_value_at(cg *c, int32_t in, const char *off);

/* The expression for operand k of node n at n's linear index `idx`: a register
 * (v<node>) when the operand is computed in this kernel, a literal for constants, the
 * index for arange, else a load. */
const char *cg_operand(cg *c, int32_t n, int k, const char *idx);

/* The expression computing element-wise node n from its operands (register type).
 * Reports an error for what the backend cannot do. */
const char *cg_node_expr(cg *c, int32_t n, const char *idx);

/* A float literal that round-trips exactly (hex float; infinities and NaN spelled out). */
const char *cg_float_lit(cg *c, double v);

/* The kernels that are one op each: movement, gather/pick and their inverses, and
 * reductions other than over the last axis (cuda_single.c). Writes the body; returns
 * the threads it wants. */
int64_t cg_single(cg *c, int32_t n);

/* xent and xent_grad, a team of threads per row (cuda_xent.c). Writes the body;
 * returns the threads it wants (blocks of 256). */
int64_t cg_xent(cg *c, int32_t n);

/* attention and attention_grad (cuda_attention.c): how many launches node n takes (one
 * kernel each, run in order), and launch `part`'s body; returns the threads it wants
 * (blocks of 256). */
int cg_attention_launches(const cg *c, int32_t n);
int64_t cg_attention(cg *c, int32_t n, int part);

/* The register number of node n in the kernel being rendered. */
static inline int cg_v(const cg *c, int32_t n) { return c->local[n]; }

/* Whether node n is computed in the kernel being rendered. */
static inline int cg_in_group(const cg *c, int32_t n) { return c->fu->group[n] == c->group; }

#endif

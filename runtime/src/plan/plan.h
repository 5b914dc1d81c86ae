/* plan.h — a loaded plan: everything the runtime needs to train or serve a model,
 * as read from a plan file (format: include/pml/plan_format.h).
 *
 * Every index in a pml_plan has been validated by the reader: node inputs come before
 * their users, stages are below `stages`, strings and parameter nodes exist, every
 * shape's element count fits in 2^48, the kernels partition the nodes as the format
 * says (each value read by another kernel is marked materialised). A plan carries no
 * memory layout: each backend places the values it keeps with plan/memplan.h. One
 * allocation owns it all; pml_plan_free releases it (once every hold is released). A
 * plan is immutable once loaded and may be shared between threads. */
#ifndef PML_PLAN_H
#define PML_PLAN_H

#include <stdint.h>

#include "core/error.h"
#include "formats/mapped_file.h"
#include "plan/ops.h"
#include "pml/plan_format.h"

#define PML_PLAN_MAX_RANK 8
#define PML_PLAN_MAX_CHUNKS 64 /* model chunks per stage device (conf.chunks) */

typedef struct pml_plan_config {
#define PML_CONF_I(name) int64_t name;
#define PML_CONF_F(name) double name;
    PML_PLAN_CONF_FIELDS(PML_CONF_I, PML_CONF_F)
    PML_PLAN_CONF_FIELDS_12(PML_CONF_I, PML_CONF_F)
    PML_PLAN_CONF_FIELDS_13(PML_CONF_I, PML_CONF_F)
    PML_PLAN_CONF_FIELDS_14(PML_CONF_I, PML_CONF_F)
#undef PML_CONF_I
#undef PML_CONF_F
} pml_plan_config;

typedef struct pml_plan_node {
    uint16_t op;   /* pml/ops.def order */
    uint8_t dtype; /* pml_dtype: f32, bf16, f16 or i32 */
    uint8_t rank;
    uint8_t pass; /* 0 forward, 1 input-gradient, 2 weight-gradient */
    uint16_t n_in, n_attr;
    int32_t stage;
    const char *label; /* NULL when none */
    int64_t dims[PML_PLAN_MAX_RANK];
    int64_t numel;
    const int32_t *in;
    const int64_t *attr;
    double fval;
} pml_plan_node;

typedef struct pml_plan_param {
    const char *name, *layer;
    int32_t node, grad; /* grad: -1 when frozen or unused */
    int32_t init;       /* zeros, ones, normal, uniform, kaiming_uniform, xavier_uniform */
    double init_a, init_b;
    int64_t frozen_from; /* -1: trained throughout */
    int32_t teacher;     /* 1: a distillation teacher's (conf.teacher_path): loaded, never trained or saved */
    int32_t apart;       /* 1: trained, but saved apart from the model file (checkpoint.h): a distillation's
                          * match projection; PARM's teacher field 2 */
    int32_t tie;         /* a weight tied across stages: the parameter this is a copy of (its root, of
                          * the same name, on another stage), kept equal to it; -1: none (PARM, version 16) */
} pml_plan_param;

/* A timetable instruction's kind, in the plan file's numbering. */
enum {
    PML_PLAN_I_LOAD,
    PML_PLAN_I_RECV_ACT,
    PML_PLAN_I_FWD,
    PML_PLAN_I_SEND_ACT,
    PML_PLAN_I_RECV_GRAD,
    PML_PLAN_I_BWD,
    PML_PLAN_I_SEND_GRAD,
    PML_PLAN_I_STEP,
    PML_PLAN_I_BWD_INPUT, /* a backward's input-gradient half (what the previous stage waits for) */
    PML_PLAN_I_BWD_WEIGHT /* its weight-gradient half, after the input half */
};

typedef struct pml_plan_instr {
    uint8_t kind;  /* PML_PLAN_I_* */
    uint16_t chunk; /* the model stage it runs (plan_format.h's TIME): its list's index unless chunks > 1 */
    int32_t mb;
} pml_plan_instr;

/* A fused kernel (KERN section): nodes of one stage and pass that run as one unit. */
typedef struct pml_plan_kernel {
    uint8_t kind; /* pml_plan_kernel_kind: none (a source or reshape), elemwise, row, single */
    uint8_t pass; /* of all its nodes */
    int32_t stage;
    int32_t n_nodes;
    const int32_t *nodes; /* ascending; the last is the kernel's place in node order */
} pml_plan_kernel;

/* GPU code (CUBN section): compiled images, their functions, and how to launch each
 * kernel that has code (the contract of compiler/src/gpu/cuda_codegen.h). */
typedef struct pml_plan_gpu_image {
    const char *target; /* "sm_90": a CUBIN; "compute_90": PTX */
    const unsigned char *data;
    int64_t size;
} pml_plan_gpu_image;

typedef struct pml_plan_gpu_arg {
    int32_t node; /* a materialised value, never a view */
    uint8_t out;  /* 1: written by the launch */
} pml_plan_gpu_arg;

typedef struct pml_plan_gpu_launch {
    int32_t kernel; /* KERN index */
    int32_t func;   /* index into gpu_funcs; -1: a matmul (cuBLAS) of node `matmul` */
    int32_t matmul;
    uint32_t block; /* threads per block */
    int64_t work;   /* threads in all */
    uint8_t flags;  /* PML_PLAN_GPU_SEED | _INDEX_CHECK | _ZERO_OUTPUT */
    int32_t n_args;
    const pml_plan_gpu_arg *args;
} pml_plan_gpu_launch;

/* One stage device of the DEVS map (plan_format.h): the train block's `place` entry. */
typedef struct pml_plan_device {
    uint8_t kind;  /* PML_PLAN_DEVICE_CPU or PML_PLAN_DEVICE_CUDA, the same for every entry */
    int32_t index; /* cuda:N's N (0..PML_PLAN_MAX_GPU_INDEX); cpu:N's N, or -1 for a plain cpu */
} pml_plan_device;

typedef struct pml_plan {
    pml_plan_config conf;
    int n_strings;
    const char **strings;
    int n_nodes;
    pml_plan_node *nodes;
    int n_params;
    pml_plan_param *params;
    int n_inputs;
    const char **input_names;
    int32_t *input_nodes;
    int32_t output, labels, loss; /* -1 when absent */
    int n_stages;                 /* of the timetable (stage devices, conf.stages / conf.chunks); 0: none */
    int *n_instr;
    pml_plan_instr **instr;
    /* Fusion. Kernels are in running order: each reads only kernels before it (and its
     * own earlier nodes), and their last nodes ascend, so running a kernel when node
     * order reaches its last node is also valid. */
    int n_kernels;
    pml_plan_kernel *kernels;
    int32_t *node_kernel;  /* per node: its kernel */
    uint8_t *materialised; /* per node: 1 when its value must be in memory after its kernel */
    /* GPU code: none when the plan was built without it (pmlc build --arch none). */
    int n_gpu_images;
    pml_plan_gpu_image *gpu_images;
    int n_gpu_funcs;
    const char **gpu_funcs;
    int n_gpu_launches;
    pml_plan_gpu_launch *gpu_launches; /* by ascending kernel (an attention_grad: several in a row) */
    /* The stage -> device map, per stage device (timetable list, conf.stages / conf.chunks
     * of them); 0 and NULL for a plan older than the map (version < 15), whose devices
     * are unknown. */
    int n_devices;
    pml_plan_device *devices;
    void *block;          /* owns everything above */
    int holders;          /* handles that hold it besides its owner (pml_plan_hold); atomic */
} pml_plan;

/* A plan holds a graph, its timetable and GPU code, never weights: a file larger than
 * this is not a plan, and is refused before it is read. */
#define PML_PLAN_MAX_BYTES ((size_t)1 << 30)
/* The bounds the compiler puts on a train block's batch and micro-batch count. */
#define PML_PLAN_MAX_BATCH (INT64_C(1) << 30)
#define PML_PLAN_MAX_MICROBATCHES (INT64_C(1) << 20)

/* Reads a plan from memory; `name` (a path) prefixes every error message. */
pml_status pml_plan_read(const void *bytes, size_t len, const char *name, pml_plan **out, pml_err *err);
/* Maps a plan file read-only (formats/mapped_file.h: a regular file, or refused at
 * once), refusing one larger than PML_PLAN_MAX_BYTES before a byte is read. Mapped, not
 * read: pml_plan_read touches only the pages it gets to, so a huge file that is not a
 * plan fails at its first section without being read, and a caller that also hashes
 * the bytes (pmlc) reads the file once. Unmap with pml_unmap_file. */
pml_status pml_plan_map(const char *path, pml_mapped_file *m, pml_err *err);
/* Reads a plan file: pml_plan_map, then pml_plan_read. */
pml_status pml_plan_load(const char *path, pml_plan **out, pml_err *err);
/* Releases the owner's hold: the plan is freed now, or by the last pml_plan_free of a
 * handle that holds it (pml_plan_hold), whichever comes last. Any thread. */
void pml_plan_free(pml_plan *p);
/* Another hold on `p` (a session or inference handle made from it: pml.h's lifetimes),
 * released by pml_plan_free. Immutable as the plan is otherwise, so const. Any thread. */
void pml_plan_hold(const pml_plan *p);

/* The model's own parameters, params[0, n): the tied weights' copies (tie >= 0), which
 * the reader requires to come last, are not counted. What the public API and files see. */
static inline int pml_plan_model_params(const pml_plan *p)
{
    int n = p->n_params;
    while (n > 0 && p->params[n - 1].tie >= 0) n--;
    return n;
}

/* The most elements of a tied weight (0: the plan ties none): the room one copy's
 * gradient needs on its way to the root's. */
static inline int64_t pml_plan_largest_tie(const pml_plan *p)
{
    int64_t most = 0;
    for (int q = pml_plan_model_params(p); q < p->n_params; q++)
        if (p->nodes[p->params[q].node].numel > most) most = p->nodes[p->params[q].node].numel;
    return most;
}

/* A tied weight's parameters, `root` (tie -1) and its copies, in stage order (the
 * order their gradients are summed in) into out[]; returns how many (1: not tied). */
static inline int pml_plan_tie_members(const pml_plan *p, int root, int *out)
{
    int n = 0;
    for (int q = 0; q < p->n_params; q++) {
        if (q != root && p->params[q].tie != root) continue;
        int j = n++;
        for (; j > 0 && p->nodes[p->params[out[j - 1]].node].stage > p->nodes[p->params[q].node].stage; j--)
            out[j] = out[j - 1];
        out[j] = q;
    }
    return n;
}

/* The plan's stage devices: its stages without chunks, each device running conf.chunks
 * of them with (the timetable's lists, also when the plan has no timetable). What ranks
 * split (exec/ranks.h). */
static inline int pml_plan_devices(const pml_plan *p) { return (int)(p->conf.stages / p->conf.chunks); }

/* The seed of the loss's gradient: autodiff's first backward node, the constant 1 on the
 * loss's stage (compiler/src/ir/autodiff.c), which f16's loss scale multiplies; -1 when
 * the plan has none. */
static inline int pml_plan_loss_seed(const pml_plan *p)
{
    for (int i = 0; i < p->n_nodes; i++) {
        const pml_plan_node *n = &p->nodes[i];
        if (n->pass == 0) continue;
        return n->op == PML_OP_CONST && n->fval == 1 && p->loss >= 0 && n->stage == p->nodes[p->loss].stage ? i : -1;
    }
    return -1;
}

#endif

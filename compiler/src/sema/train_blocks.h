/* train_blocks.h — the checked contents of `train` and `distill` blocks.
 *
 * Checking happens in two steps because some fields can only be judged against the
 * elaborated model: pmlc_train_read reads and validates every field on its own (and
 * applies --set overrides), pmlc_train_bind then checks the fields against the graph
 * (stage count vs devices, data vs inputs, symbolic dimensions, freeze and recompute
 * patterns). A
 * distill block is read before its student is elaborated, because the student's graph
 * holds the teacher (elab.h checks that their inputs and outputs agree). */
#ifndef PMLC_TRAIN_H
#define PMLC_TRAIN_H

#include "front/program.h"

typedef enum pmlc_schedule {
    PMLC_SCHED_GPIPE,
    PMLC_SCHED_1F1B,
    PMLC_SCHED_INTERLEAVED_1F1B,
    PMLC_SCHED_ZERO_BUBBLE,
    PMLC_SCHED_ZERO_BUBBLE_V, /* ZB-V: two chunks per stage in a V (pml_plan_chunk_device) */
    PMLC_SCHED_DUALPIPE_V,    /* DualPipeV: the same V, DeepSeek's order (schedule.c) */
    PMLC_SCHED_AUTO,          /* schedule = auto: the planner picks (plan/autosched.h); never in a plan */
    PMLC_SCHED_COUNT
} pmlc_schedule;
typedef enum pmlc_data_kind {
    PMLC_DATA_NONE,
    PMLC_DATA_FILE,
    PMLC_DATA_CLASSES,
    PMLC_DATA_MARKOV,
    PMLC_DATA_TOKENS /* tokens("train.bin"): windows of a token file (runtime/src/data/tokens.h) */
} pmlc_data_kind;
typedef enum pmlc_opt_kind { PMLC_OPT_SGD, PMLC_OPT_ADAMW } pmlc_opt_kind;
typedef enum pmlc_lr_kind { PMLC_LR_CONSTANT, PMLC_LR_WARMUP_COSINE } pmlc_lr_kind;

const char *pmlc_schedule_name(pmlc_schedule s);
/* Whether the runtime executes the schedule: every one since interleaved 1F1B runs
 * (plan JSON's schedule_runnable); a schedule added later may be planned only. `auto`
 * is not a schedule a plan runs: the planner replaces it with the one it picks. */
int pmlc_schedule_runnable(pmlc_schedule s);

typedef struct pmlc_device {
    int cuda;  /* 0: cpu */
    int index; /* -1: plain `cpu` */
} pmlc_device;

typedef struct pmlc_freeze {
    ast_list patterns; /* AST_STRING */
    int64_t after;     /* 0: from the start */
    int is_auto;
    int64_t every;
    double threshold;
    pmlc_loc loc;
} pmlc_freeze;

typedef struct pmlc_train {
    const ast *decl;
    const ast *model;
    pmlc_data_kind data;
    const char *data_path, *labels_path;
    /* Held-out data: eval_data (and eval_labels for .npy data), or a holdout fraction of
     * the training file; eval_every: steps between evaluations during training (0: none). */
    const char *eval_data_path, *eval_labels_path;
    int eval_tokens; /* eval_data = tokens(...) */
    double holdout;
    int64_t eval_every;
    int64_t features, classes, vocab, order, data_seed;
    const ast *loss_fn;
    pmlc_loc loss_loc;
    pmlc_opt_kind opt;
    double lr, momentum, beta1, beta2, eps, weight_decay;
    int nesterov;
    pmlc_lr_kind lr_kind;
    int64_t warmup;
    double min_lr;
    double grad_clip; /* 0: off */
    int64_t batch, microbatches;
    pmlc_schedule schedule;
    pmlc_dtype precision;
    /* f16's dynamic loss scaling: the first scale, the good steps after which it doubles,
     * and what multiplies it after a step whose gradients overflow */
    double loss_scale;
    int64_t loss_scale_interval;
    double loss_scale_backoff;
    int n_devices; /* 0: not given (every stage on the CPU) */
    int all_cpu;   /* place = cpu */
    pmlc_device devices[1024];
    pmlc_loc place_loc;
    int64_t steps, epochs, seed, checkpoint_every;
    int recompute;                   /* recompute = true: every model-level statement (ir.h, segment) */
    /* memory = "8GiB": bytes a stage device may hold (the compiler's estimate, memplan.h);
     * 0: no limit. */
    int64_t memory;
    /* Where schedule, microbatches, memory and recompute were given (file -1: not given);
     * schedule = auto searches only what the user left out (plan/autosched.h). */
    pmlc_loc schedule_loc, microbatches_loc, memory_loc, recompute_loc;
    PMLC_VEC(const ast *) recomputes; /* `recompute PATTERN, ...` statements (AST_RECOMPUTE) */
    ast_list dim_fields; /* fields naming symbolic dimensions, bound later */
    int64_t dims[PMLC_MAX_SYMS];
    int dim_set[PMLC_MAX_SYMS];
    PMLC_VEC(pmlc_freeze) freezes;
    pmlc_loc field_loc[32]; /* where each known field was given (file -1: not given) */
    int bad;                /* errors were reported while reading */
} pmlc_train;

/* One `match(student = "NAME", teacher = "NAME", loss = mse | cosine, weight = w)`:
 * the outputs of two named calls (`... as NAME`) whose distance joins the loss. */
typedef struct pmlc_match {
    const char *student, *teacher; /* scope paths as written: "fc1", "blocks.3" */
    pmlc_loc student_loc, teacher_loc, loc;
    int cosine; /* 0: mean squared error */
    double weight;
} pmlc_match;

typedef struct pmlc_distill {
    const ast *decl;
    const ast *student, *teacher;
    const char *weights;
    double temperature, alpha;
    pmlc_dtype teacher_precision;
    PMLC_VEC(pmlc_match) matches;
    int bad; /* errors were reported while reading */
} pmlc_distill;

/* Reads a train block, with the program's --set fields overriding its own. Errors are
 * reported and leave `bad` set; the result still says what could be read, so the
 * model is checked too and every mistake shows in one run. */
pmlc_train *pmlc_train_read(pmlc_program *P, const ast *decl);
/* Checks the train block against its elaborated model; marks frozen parameters and the
 * recomputed segments (g->segment): with recompute = true each model-level statement
 * but the loss's, with `recompute PATTERN, ...` each call whose scope path a pattern
 * matches (as freeze patterns match names; a call inside a matched call belongs to the
 * outer one). A pattern that matches no call is an error. */
int pmlc_train_bind(pmlc_program *P, pmlc_train *t, pmlc_graph *g);
/* Checks that every model input and the labels have one micro-batch of rows once the
 * symbols are bound (`sh`: each node's bound shape), as the data feed fills them. */
int pmlc_train_check_rows(pmlc_program *P, const pmlc_train *t, const pmlc_graph *g, const pmlc_cshape *sh);
/* Reads a distill block; like pmlc_train_read, errors leave `bad` set. */
pmlc_distill *pmlc_distill_read(pmlc_program *P, const ast *decl);

/* Whether a freeze pattern matches a parameter name (or a dotted prefix of it). */
int pmlc_pattern_match(const char *pattern, const char *name);

#endif

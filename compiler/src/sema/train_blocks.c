/* train_blocks.c — reading and checking `train` and `distill` blocks (see train_blocks.h).
 *
 * Every field is described once in `fields`; unknown fields get a "did you mean".
 * Values that name things (schedules, precisions, generators, optimizers) are read
 * from the syntax directly rather than evaluated, so `1f1b` and `adamw` need no
 * definitions. */
#include "sema/train_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml/plan_format.h"
#include "sema/elab.h"

#define DIAG (&P->diag)

enum {
    F_DATA,
    F_LABELS,
    F_LOSS,
    F_OPTIMIZER,
    F_LR_SCHEDULE,
    F_GRAD_CLIP,
    F_BATCH,
    F_MICROBATCHES,
    F_SCHEDULE,
    F_PRECISION,
    F_PLACE,
    F_STEPS,
    F_EPOCHS,
    F_SEED,
    F_CHECKPOINT_EVERY,
    F_RECOMPUTE,
    F_EVAL_DATA,
    F_EVAL_LABELS,
    F_HOLDOUT,
    F_EVAL_EVERY,
    F_LOSS_SCALE,
    F_LOSS_SCALE_GROWTH_INTERVAL,
    F_LOSS_SCALE_BACKOFF,
    F_MEMORY,
    F_COUNT
};
static const char *const fields[F_COUNT] = {"data",      "labels",    "loss",         "optimizer", "lr_schedule",
                                            "grad_clip", "batch",     "microbatches", "schedule",  "precision",
                                            "place",     "steps",     "epochs",       "seed",      "checkpoint_every",
                                            "recompute", "eval_data", "eval_labels",  "holdout",   "eval_every",
                                            "loss_scale", "loss_scale_growth_interval", "loss_scale_backoff", "memory"};

static const char *const schedules[PMLC_SCHED_COUNT] = {
    "gpipe", "1f1b", "interleaved_1f1b", "zero_bubble", "zero_bubble_v", "dualpipe_v", "auto"};
_Static_assert(PMLC_SCHED_ZERO_BUBBLE_V == PML_PLAN_SCHEDULE_ZERO_BUBBLE_V, "the plan file's number of zero_bubble_v");
_Static_assert(PMLC_SCHED_DUALPIPE_V == PML_PLAN_SCHEDULE_DUALPIPE_V, "the plan file's number of dualpipe_v");
_Static_assert(F_COUNT <= (int)(sizeof((pmlc_train *)0)->field_loc / sizeof(pmlc_loc)), "a location per field");

const char *pmlc_schedule_name(pmlc_schedule s) { return (unsigned)s < PMLC_SCHED_COUNT ? schedules[s] : "?"; }
int pmlc_schedule_runnable(pmlc_schedule s) { return (unsigned)s < PMLC_SCHED_COUNT && s != PMLC_SCHED_AUTO; }

static int pick_name(pmlc_program *P, const ast *v, const char *what, const char *const *names, int n, int *out)
{
    int named = v->kind == AST_NAME || v->kind == AST_CALL;
    if (named) {
        for (int i = 0; i < n; i++) {
            if (!strcmp(v->name, names[i])) {
                *out = i;
                return 0;
            }
        }
    }
    char list[256] = "", use[300];
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (i == n - 1 ? " or " : ", ") : "",
                 names[i]);
    snprintf(use, sizeof use, " (use %s)", list);
    if (named)
        pmlc_error_unknown(DIAG, v->name_loc, v->name, names, n, use, "unknown %s '%s'", what, v->name);
    else
        pmlc_error(DIAG, v->loc, "%s must be one of %s", what, list);
    return 1;
}

static int get_int(pmlc_program *P, const ast *e, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    pmlc_value v = pmlc_eval_const(P, e);
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_INT || !pmlc_size_is_const(v.i)) {
        pmlc_error(DIAG, e->loc, "%s must be an integer, not %s", what, pmlc_value_desc(P, NULL, v, d, sizeof d));
        return 1;
    }
    if (v.i.coef < lo || v.i.coef > hi) {
        if (hi >= INT64_MAX / 2)
            pmlc_error(DIAG, e->loc, "%s must be at least %lld, not %lld", what, (long long)lo, (long long)v.i.coef);
        else
            pmlc_error(DIAG, e->loc, "%s must be between %lld and %lld, not %lld", what, (long long)lo, (long long)hi,
                       (long long)v.i.coef);
        return 1;
    }
    *out = v.i.coef;
    return 0;
}

static int check_num(pmlc_program *P, pmlc_value v, pmlc_loc l, const char *what, double lo, double hi, int lo_open,
                     double *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k == PMLC_V_FLOAT)
        *out = v.f;
    else if (v.k == PMLC_V_INT && pmlc_size_is_const(v.i))
        *out = (double)v.i.coef;
    else {
        pmlc_error(DIAG, l, "%s must be a number, not %s", what, pmlc_value_desc(P, NULL, v, d, sizeof d));
        return 1;
    }
    if (*out < lo || (lo_open && *out == lo) || *out > hi) {
        if (isinf(hi))
            pmlc_error(DIAG, l, "%s must be %s %g, not %g", what, lo_open ? "greater than" : "at least", lo, *out);
        else
            pmlc_error(DIAG, l, "%s must be in %c%g, %g], not %g", what, lo_open ? '(' : '[', lo, hi, *out);
        return 1;
    }
    return 0;
}

static int get_num(pmlc_program *P, const ast *e, const char *what, double lo, double hi, int lo_open, double *out)
{
    return check_num(P, pmlc_eval_const(P, e), e->loc, what, lo, hi, lo_open, out);
}

static int get_bool(pmlc_program *P, const ast *e, const char *what, int *out)
{
    pmlc_value v = pmlc_eval_const(P, e);
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_BOOL) {
        pmlc_error(DIAG, e->loc, "%s must be true or false, not %s", what, pmlc_value_desc(P, NULL, v, d, sizeof d));
        return 1;
    }
    *out = (int)v.i.coef;
    return 0;
}

static int get_string(pmlc_program *P, const ast *e, const char *what, const char **out)
{
    if (e->kind != AST_STRING) {
        pmlc_error(DIAG, e->loc, "%s must be a file path in quotes", what);
        return 1;
    }
    if (!*e->name) {
        pmlc_error(DIAG, e->loc, "%s is an empty path", what);
        return 1;
    }
    *out = e->name;
    return 0;
}

/* The arguments of a call-shaped value, e.g. adamw(lr = 3e-4); a bare name has none. */
typedef struct call_args {
    pmlc_value v[8];
    pmlc_loc l[8];
    int given[8];
} call_args;

static int read_call(pmlc_program *P, const ast *e, const char *fname, const char *const *names, int n, int n_required,
                     call_args *a)
{
    if (e->kind == AST_NAME) {
        for (int i = 0; i < n; i++) a->given[i] = 0, a->v[i] = (pmlc_value){.k = PMLC_V_NONE}, a->l[i] = e->loc;
    } else if (pmlc_eval_args(P, e, fname, names, n, a->v, a->l, a->given)) {
        return 1;
    }
    for (int i = 0; i < n_required; i++) {
        if (!a->given[i]) {
            pmlc_error(DIAG, e->loc, "'%s' needs '%s'", fname, names[i]);
            return 1;
        }
    }
    return 0;
}

static int arg_int(pmlc_program *P, call_args *a, int i, const char *what, int64_t lo, int64_t hi, int64_t dflt,
                   int64_t *out)
{
    *out = dflt;
    if (!a->given[i]) return 0;
    char d[200];
    pmlc_value v = a->v[i];
    if (v.k != PMLC_V_INT || !pmlc_size_is_const(v.i)) {
        pmlc_error(DIAG, a->l[i], "%s must be an integer, not %s", what, pmlc_value_desc(P, NULL, v, d, sizeof d));
        return 1;
    }
    if (v.i.coef < lo || v.i.coef > hi) {
        if (hi >= INT64_MAX / 2)
            pmlc_error(DIAG, a->l[i], "%s must be at least %lld, not %lld", what, (long long)lo, (long long)v.i.coef);
        else
            pmlc_error(DIAG, a->l[i], "%s must be between %lld and %lld, not %lld", what, (long long)lo, (long long)hi,
                       (long long)v.i.coef);
        return 1;
    }
    *out = v.i.coef;
    return 0;
}

static int arg_num(pmlc_program *P, call_args *a, int i, const char *what, double lo, double hi, int lo_open,
                   double dflt, double *out)
{
    *out = dflt;
    return a->given[i] ? check_num(P, a->v[i], a->l[i], what, lo, hi, lo_open, out) : 0;
}

/* tokens("train.bin"): the path of a token file (runtime/src/data/tokens.h). */
static int read_tokens(pmlc_program *P, const ast *e, const char *what, const char **out)
{
    static const char *const names[] = {"path"};
    call_args a;
    char d[200];
    if (read_call(P, e, "tokens", names, 1, 1, &a)) return 1;
    if (a.v[0].k != PMLC_V_STR || !*a.v[0].s) {
        pmlc_error(DIAG, a.l[0], "%s: tokens(...) takes a token file's path in quotes, not %s", what,
                   pmlc_value_desc(P, NULL, a.v[0], d, sizeof d));
        return 1;
    }
    *out = a.v[0].s;
    return 0;
}

static int read_data(pmlc_program *P, pmlc_train *t, const ast *e)
{
    if (e->kind == AST_STRING) {
        t->data = PMLC_DATA_FILE;
        return get_string(P, e, "'data'", &t->data_path);
    }
    static const char *const gens[] = {"classes", "markov", "tokens"};
    int which;
    if (e->kind != AST_CALL && e->kind != AST_NAME) {
        pmlc_error(DIAG, e->loc,
                   "'data' is a .npy path, a token file tokens(\"train.bin\") or a generator: "
                   "classes(features, classes) or markov(vocab)");
        return 1;
    }
    if (pick_name(P, e, "data source", gens, 3, &which)) return 1;
    if (which == 2) {
        t->data = PMLC_DATA_TOKENS;
        return read_tokens(P, e, "'data'", &t->data_path);
    }
    call_args a;
    if (which == 0) {
        static const char *const names[] = {"features", "classes", "seed"};
        t->data = PMLC_DATA_CLASSES;
        return read_call(P, e, "classes", names, 3, 2, &a) ||
               arg_int(P, &a, 0, "'features'", 1, 1 << 24, 0, &t->features) ||
               arg_int(P, &a, 1, "'classes'", 2, 1 << 24, 0, &t->classes) ||
               arg_int(P, &a, 2, "'seed'", 0, INT64_MAX, 0, &t->data_seed);
    }
    static const char *const names[] = {"vocab", "order", "seed"};
    t->data = PMLC_DATA_MARKOV;
    if (read_call(P, e, "markov", names, 3, 1, &a) || arg_int(P, &a, 0, "'vocab'", 2, 1 << 20, 0, &t->vocab) ||
        arg_int(P, &a, 1, "'order'", 1, 8, 2, &t->order) || arg_int(P, &a, 2, "'seed'", 0, INT64_MAX, 0, &t->data_seed))
        return 1;
    double states = pow((double)t->vocab, (double)t->order);
    if (states > (double)(1 << 24)) {
        pmlc_error(DIAG, e->loc, "markov(vocab = %lld, order = %lld) has %.3g contexts; the limit is 2^24",
                   (long long)t->vocab, (long long)t->order, states);
        return 1;
    }
    return 0;
}

static int read_optimizer(pmlc_program *P, pmlc_train *t, const ast *e)
{
    static const char *const opts[] = {"sgd", "adamw"};
    int which;
    if ((e->kind != AST_CALL && e->kind != AST_NAME) || pick_name(P, e, "optimizer", opts, 2, &which)) {
        if (e->kind != AST_CALL && e->kind != AST_NAME)
            pmlc_error(DIAG, e->loc, "'optimizer' is sgd(lr, ...) or adamw(lr, ...)");
        return 1;
    }
    call_args a;
    t->opt = (pmlc_opt_kind)which;
    if (which == PMLC_OPT_SGD) {
        static const char *const names[] = {"lr", "momentum", "nesterov", "weight_decay"};
        if (read_call(P, e, "sgd", names, 4, 1, &a) || arg_num(P, &a, 0, "'lr'", 0, 1e3, 1, 0, &t->lr) ||
            arg_num(P, &a, 1, "'momentum'", 0, 1, 0, 0, &t->momentum) ||
            arg_num(P, &a, 3, "'weight_decay'", 0, 1e3, 0, 0, &t->weight_decay))
            return 1;
        if (t->momentum >= 1) {
            pmlc_error(DIAG, a.l[1], "'momentum' must be below 1");
            return 1;
        }
        if (a.given[2]) {
            if (a.v[2].k != PMLC_V_BOOL) {
                pmlc_error(DIAG, a.l[2], "'nesterov' must be true or false");
                return 1;
            }
            t->nesterov = (int)a.v[2].i.coef;
            if (t->nesterov && t->momentum == 0) {
                pmlc_error(DIAG, a.l[2], "nesterov momentum needs 'momentum' above 0");
                return 1;
            }
        }
        return 0;
    }
    static const char *const names[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
    if (read_call(P, e, "adamw", names, 5, 1, &a) || arg_num(P, &a, 0, "'lr'", 0, 1e3, 1, 0, &t->lr) ||
        arg_num(P, &a, 1, "'beta1'", 0, 1, 0, 0.9, &t->beta1) ||
        arg_num(P, &a, 2, "'beta2'", 0, 1, 0, 0.999, &t->beta2) || arg_num(P, &a, 3, "'eps'", 0, 1, 1, 1e-8, &t->eps) ||
        arg_num(P, &a, 4, "'weight_decay'", 0, 1e3, 0, 0.01, &t->weight_decay))
        return 1;
    if (t->beta1 >= 1 || t->beta2 >= 1) {
        pmlc_error(DIAG, a.l[t->beta1 >= 1 ? 1 : 2], "AdamW betas must be below 1");
        return 1;
    }
    return 0;
}

static int read_lr_schedule(pmlc_program *P, pmlc_train *t, const ast *e)
{
    static const char *const kinds[] = {"constant", "warmup_cosine"};
    int which;
    if (pick_name(P, e, "learning-rate schedule", kinds, 2, &which)) return 1;
    t->lr_kind = (pmlc_lr_kind)which;
    call_args a;
    if (which == PMLC_LR_CONSTANT) {
        if (e->kind == AST_CALL) {
            pmlc_error(DIAG, e->loc, "'constant' takes no arguments");
            return 1;
        }
        return 0;
    }
    static const char *const names[] = {"warmup", "min_lr"};
    return read_call(P, e, "warmup_cosine", names, 2, 1, &a) ||
           arg_int(P, &a, 0, "'warmup'", 0, INT64_MAX / 2, 0, &t->warmup) ||
           arg_num(P, &a, 1, "'min_lr'", 0, 1e3, 0, 0, &t->min_lr);
}

static int read_place(pmlc_program *P, pmlc_train *t, const ast *e)
{
    t->place_loc = e->loc;
    if (e->kind == AST_NAME && !strcmp(e->name, "cpu")) {
        t->all_cpu = 1;
        return 0;
    }
    if (e->kind != AST_LIST) {
        pmlc_error(DIAG, e->loc, "'place' is cpu or a list of devices, one per stage: [cuda:0, cuda:1]");
        return 1;
    }
    if (e->list.n == 0 || e->list.n > 1024) {
        pmlc_error(DIAG, e->loc, "'place' lists between 1 and 1024 devices");
        return 1;
    }
    for (int i = 0; i < e->list.n; i++) {
        const ast *d = e->list.v[i];
        pmlc_device dev = {0, -1}; /* plain cpu: no index */
        if (d->kind == AST_DEVICE) {
            dev.cuda = !strcmp(d->name, "cuda");
            if (d->ival > PML_PLAN_MAX_GPU_INDEX) { /* the plan file's bound (pml/plan_format.h, DEVS) */
                pmlc_error(DIAG, d->loc, "a device number is at most %d", PML_PLAN_MAX_GPU_INDEX);
                return 1;
            }
            dev.index = (int)d->ival;
        } else if (!(d->kind == AST_NAME && !strcmp(d->name, "cpu"))) {
            pmlc_error(DIAG, d->loc, "a device is cpu, cpu:N or cuda:N");
            return 1;
        }
        if (i > 0 && dev.cuda != t->devices[0].cuda) {
            pmlc_error(DIAG, d->loc, "a pipeline runs on one kind of device: this list mixes cpu and cuda");
            return 1;
        }
        t->devices[t->n_devices++] = dev;
    }
    return 0;
}

static int read_loss(pmlc_program *P, pmlc_train *t, const ast *e)
{
    if (e->kind != AST_NAME) {
        pmlc_error(DIAG, e->loc, "'loss' names a function such as cross_entropy or mse");
        return 1;
    }
    const ast *fn = pmlc_strmap_get(&P->globals, e->name);
    if (!fn || fn->kind != AST_FN) {
        const char *cands[256];
        int n = 0;
        for (int i = 0; i < P->globals.cap && n < 256; i++)
            if (P->globals.keys[i] && ((const ast *)P->globals.vals[i])->kind == AST_FN)
                cands[n++] = P->globals.keys[i];
        pmlc_error_unknown(DIAG, e->loc, e->name, cands, n, " (did you import \"nn\"?)", "unknown loss function '%s'",
                           e->name);
        return 1;
    }
    t->loss_fn = fn;
    t->loss_loc = e->loc;
    return 0;
}

static int read_freeze(pmlc_program *P, pmlc_train *t, const ast *it)
{
    pmlc_freeze f = {0};
    f.loc = it->loc;
    if (it->b) { /* freeze auto(every = K, threshold = x) */
        const ast *c = it->b;
        if (strcmp(c->name, "auto")) {
            pmlc_error(DIAG, c->name_loc, "expected a name pattern or auto(...) after 'freeze'");
            return 1;
        }
        static const char *const names[] = {"every", "threshold"};
        call_args a;
        f.is_auto = 1;
        for (int i = 0; i < t->freezes.n; i++)
            if (t->freezes.v[i].is_auto) {
                pmlc_error(DIAG, c->name_loc, "a train block takes at most one 'freeze auto(...)'");
                pmlc_note(DIAG, t->freezes.v[i].loc, "the first is here");
                return 1;
            }
        if (read_call(P, c, "auto", names, 2, 1, &a) || arg_int(P, &a, 0, "'every'", 1, INT64_MAX / 2, 0, &f.every) ||
            arg_num(P, &a, 1, "'threshold'", 0, 1e9, 1, 0.01, &f.threshold))
            return 1;
    } else {
        f.patterns = it->list;
        if (it->a) {
            if (strcmp(it->name, "steps")) {
                pmlc_error(DIAG, it->name_loc, "expected 'steps' after the step count, as in 'after 500 steps'");
                return 1;
            }
            if (get_int(P, it->a, "a freeze step", 1, INT64_MAX / 2, &f.after)) return 1;
        }
    }
    PMLC_PUSH(&P->arena, t->freezes, f);
    return 0;
}

/* memory = 8GiB: an integer and a unit, binary (KiB, MiB, GiB, TiB) or decimal (kB, MB,
 * GB, TB), or B — read from the syntax like `1f1b`, an identifier that starts with a
 * digit; "1.5GiB" in quotes for a fraction; or an integer number of bytes. */
static int read_memory(pmlc_program *P, pmlc_train *t, const ast *v)
{
    int text = v->kind == AST_STRING || (v->kind == AST_NAME && v->name[0] >= '0' && v->name[0] <= '9');
    if (!text) {
        int64_t b;
        if (get_int(P, v, "'memory'", 1, INT64_MAX / 2, &b)) return 1;
        t->memory = b;
        return 0;
    }
    static const struct {
        const char *name;
        double scale;
    } units[] = {{"B", 1},    {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
                 {"kB", 1e3}, {"MB", 1e6},     {"GB", 1e9},        {"TB", 1e12}};
    char *end;
    double x = strtod(v->name, &end);
    while (*end == ' ') end++;
    double scale = 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(end, units[i].name)) scale = units[i].scale;
    if (end == v->name || !scale || !(x > 0) || x * scale >= 9.2e18 || x * scale < 1) {
        pmlc_error(DIAG, v->loc,
                   "'memory' must be a size such as 8GiB, 512MiB or \"1.5GiB\" (units B, KiB, MiB, GiB, TiB, kB, MB, "
                   "GB, TB), not %s%s%s",
                   v->kind == AST_STRING ? "\"" : "'", v->name, v->kind == AST_STRING ? "\"" : "'");
        return 1;
    }
    t->memory = (int64_t)(x * scale);
    return 0;
}

static int read_field(pmlc_program *P, pmlc_train *t, const ast *f, int which)
{
    const ast *v = f->a;
    int b;
    switch (which) {
    case F_DATA:
        return read_data(P, t, v);
    case F_LABELS:
        return get_string(P, v, "'labels'", &t->labels_path);
    case F_LOSS:
        return read_loss(P, t, v);
    case F_OPTIMIZER:
        return read_optimizer(P, t, v);
    case F_LR_SCHEDULE:
        return read_lr_schedule(P, t, v);
    case F_GRAD_CLIP:
        return get_num(P, v, "'grad_clip'", 0, INFINITY, 1, &t->grad_clip);
    case F_BATCH:
        return get_int(P, v, "'batch'", 1, 1 << 30, &t->batch);
    case F_MICROBATCHES:
        return get_int(P, v, "'microbatches'", 1, 1 << 20, &t->microbatches);
    case F_SCHEDULE: {
        int s;
        if (pick_name(P, v, "schedule", schedules, PMLC_SCHED_COUNT, &s)) return 1;
        t->schedule = (pmlc_schedule)s;
        return 0;
    }
    case F_PRECISION: {
        static const char *const precisions[] = {"f32", "bf16", "f16"};
        int s;
        if (pick_name(P, v, "precision", precisions, 3, &s)) return 1;
        t->precision = (pmlc_dtype)s;
        return 0;
    }
    case F_PLACE:
        return read_place(P, t, v);
    case F_STEPS:
        return get_int(P, v, "'steps'", 0, INT64_MAX / 2, &t->steps);
    case F_EPOCHS:
        return get_int(P, v, "'epochs'", 1, 1 << 30, &t->epochs);
    case F_SEED:
        return get_int(P, v, "'seed'", 0, INT64_MAX, &t->seed);
    case F_CHECKPOINT_EVERY:
        return get_int(P, v, "'checkpoint_every'", 1, INT64_MAX / 2, &t->checkpoint_every);
    case F_MEMORY:
        return read_memory(P, t, v);
    case F_RECOMPUTE:
        if (get_bool(P, v, "'recompute'", &b)) return 1;
        t->recompute = b;
        return 0;
    case F_EVAL_DATA:
        if (v->kind == AST_CALL && !strcmp(v->name, "tokens")) {
            t->eval_tokens = 1;
            return read_tokens(P, v, "'eval_data'", &t->eval_data_path);
        }
        if (v->kind != AST_STRING) {
            pmlc_error(DIAG, v->loc, "'eval_data' is a .npy path in quotes, or a token file tokens(\"val.bin\")");
            return 1;
        }
        return get_string(P, v, "'eval_data'", &t->eval_data_path);
    case F_EVAL_LABELS:
        return get_string(P, v, "'eval_labels'", &t->eval_labels_path);
    case F_HOLDOUT:
        if (get_num(P, v, "'holdout'", 0, INFINITY, 1, &t->holdout)) return 1;
        if (t->holdout >= 1) {
            pmlc_error(DIAG, v->loc, "'holdout' is the fraction of the data kept out of training: below 1, not %g",
                       t->holdout);
            return 1;
        }
        return 0;
    case F_EVAL_EVERY:
        return get_int(P, v, "'eval_every'", 0, INT64_MAX / 2, &t->eval_every); /* 0: off */
    case F_LOSS_SCALE: /* f16's dynamic loss scaling (docs/language.md, "Precision") */
        return get_num(P, v, "'loss_scale'", 0, 0x1p100, 1, &t->loss_scale);
    case F_LOSS_SCALE_GROWTH_INTERVAL:
        return get_int(P, v, "'loss_scale_growth_interval'", 1, INT64_MAX / 2, &t->loss_scale_interval);
    case F_LOSS_SCALE_BACKOFF:
        if (get_num(P, v, "'loss_scale_backoff'", 0, 1, 1, &t->loss_scale_backoff)) return 1;
        if (t->loss_scale_backoff >= 1) {
            pmlc_error(DIAG, v->loc, "'loss_scale_backoff' multiplies the scale after an overflow: below 1, not %g",
                       t->loss_scale_backoff);
            return 1;
        }
        return 0;
    }
    return 1;
}

/* The held-out fields against the data source: .npy data takes eval_data and
 * eval_labels files (both), a token file tokens(...) as eval_data (no labels), and
 * either takes a holdout fraction instead; a generator draws fresh samples and takes
 * none of them. */
static void check_held_out(pmlc_program *P, pmlc_train *t)
{
    pmlc_loc ed = t->field_loc[F_EVAL_DATA], el = t->field_loc[F_EVAL_LABELS], ho = t->field_loc[F_HOLDOUT];
    int generator = t->data == PMLC_DATA_CLASSES || t->data == PMLC_DATA_MARKOV;
    if (generator && (ed.file >= 0 || el.file >= 0 || ho.file >= 0)) {
        pmlc_loc at = ed.file >= 0 ? ed : el.file >= 0 ? el : ho;
        pmlc_error(DIAG, at, "a data generator evaluates on fresh samples it never trained on: remove '%s'",
                   ed.file >= 0   ? "eval_data"
                   : el.file >= 0 ? "eval_labels"
                                  : "holdout");
        return;
    }
    if (el.file >= 0 && ed.file < 0) {
        pmlc_error(DIAG, el, "'eval_labels' needs 'eval_data': the held-out inputs they label");
        return;
    }
    if (ho.file >= 0 && ed.file >= 0) {
        pmlc_error(DIAG, ho, "give 'eval_data' or 'holdout', not both");
        pmlc_note(DIAG, ed, "'eval_data' is given here");
        return;
    }
    if (ed.file < 0 || !t->eval_data_path) return;
    if (t->data == PMLC_DATA_TOKENS && !t->eval_tokens)
        pmlc_error(DIAG, ed, "the data is a token file: its held-out set is one too, eval_data = tokens(\"%s\")",
                   t->eval_data_path);
    else if (t->data == PMLC_DATA_FILE && t->eval_tokens)
        pmlc_error(DIAG, ed,
                   "the data is a .npy file: its held-out set is too, eval_data = \"x_val.npy\" "
                   "with eval_labels = \"y_val.npy\"");
    else if (t->data == PMLC_DATA_FILE && el.file < 0)
        pmlc_error(DIAG, ed, "'eval_data' from a .npy file needs 'eval_labels' from a file too");
    else if (t->data == PMLC_DATA_TOKENS && el.file >= 0)
        pmlc_error(DIAG, el, "a token file makes its own labels (the next tokens): remove 'eval_labels'");
}

static int field_index(const char *name)
{
    for (int i = 0; i < F_COUNT; i++)
        if (!strcmp(fields[i], name)) return i;
    return -1;
}

static const ast *find_model(pmlc_program *P, const char *name, pmlc_loc loc)
{
    const ast *m = pmlc_strmap_get(&P->globals, name);
    if (m && m->kind == AST_MODEL) return m;
    const char *cands[64];
    int n = 0;
    for (int i = 0; i < P->models.n && n < 64; i++) cands[n++] = P->models.v[i]->name;
    pmlc_error_unknown(DIAG, loc, name, cands, n, "", "unknown model '%s'", name);
    return NULL;
}

pmlc_train *pmlc_train_read(pmlc_program *P, const ast *decl)
{
    pmlc_train *t = pmlc_arena_alloc(&P->arena, sizeof *t);
    int before = P->diag.errors;
    t->decl = decl;
    t->microbatches = 1;
    t->schedule = PMLC_SCHED_1F1B;
    t->precision = PMLC_F32;
    t->loss_scale = 65536; /* 2^16, PyTorch's GradScaler's defaults */
    t->loss_scale_interval = 2000;
    t->loss_scale_backoff = 0.5;
    t->steps = -1;
    for (int i = 0; i < F_COUNT; i++) t->field_loc[i] = PMLC_NOLOC;
    t->model = find_model(P, decl->name, decl->name_loc);

    /* The block's fields, each overridden by a --set of the same key. */
    ast_list items = decl->list;
    for (int k = 0; k < P->set_fields.n; k++) {
        ast *s = P->set_fields.v[k];
        int replaced = 0;
        for (int i = 0; i < items.n; i++) {
            if (items.v[i]->kind == AST_FIELD && !strcmp(items.v[i]->name, s->name)) {
                if (!replaced) {
                    ast_list copy = {0};
                    for (int j = 0; j < items.n; j++) PMLC_PUSH(&P->arena, copy, items.v[j]);
                    items = copy;
                }
                items.v[i] = s;
                replaced = 1;
            }
        }
        if (!replaced) {
            ast_list copy = {0};
            for (int j = 0; j < items.n; j++) PMLC_PUSH(&P->arena, copy, items.v[j]);
            PMLC_PUSH(&P->arena, copy, s);
            items = copy;
        }
    }
    for (int i = 0; i < items.n && !P->diag.stop; i++) {
        const ast *it = items.v[i];
        if (it->kind == AST_FREEZE) {
            read_freeze(P, t, it);
            continue;
        }
        if (it->kind == AST_RECOMPUTE) {
            PMLC_PUSH(&P->arena, t->recomputes, it);
            continue;
        }
        if (it->kind == AST_CALL) {
            pmlc_error(DIAG, it->name_loc, "'%s(...)' is not a train block field%s", it->name,
                       strcmp(it->name, "match") ? " (fields are written name = value)"
                                                 : ": it belongs in a distill block");
            continue;
        }
        int which = field_index(it->name);
        if (which < 0) { /* perhaps a symbolic dimension: decided once the model is known */
            PMLC_PUSH(&P->arena, t->dim_fields, (ast *)it);
            continue;
        }
        if (t->field_loc[which].file >= 0) {
            pmlc_error(DIAG, it->name_loc, "field '%s' is given twice", it->name);
            pmlc_note(DIAG, t->field_loc[which], "first given here");
            continue;
        }
        t->field_loc[which] = it->name_loc;
        read_field(P, t, it, which);
    }

    /* 'data' may be left out: such a plan trains on rows an embedding program hands
     * libpml (pml.h's pml_session_train_batch or feeder); `pmlc train` refuses it. */
    static const int required[] = {F_LOSS, F_OPTIMIZER, F_BATCH};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (t->field_loc[required[i]].file < 0)
            pmlc_error(DIAG, decl->name_loc, "train block for '%s' needs '%s'", decl->name, fields[required[i]]);
    if (t->data == PMLC_DATA_FILE && !t->labels_path)
        pmlc_error(DIAG, t->field_loc[F_DATA], "'data' from a file needs 'labels' from a file too");
    if (t->data != PMLC_DATA_FILE && t->data != PMLC_DATA_NONE && t->labels_path)
        pmlc_error(DIAG, t->field_loc[F_LABELS], "a %s makes its own labels: remove 'labels'",
                   t->data == PMLC_DATA_TOKENS ? "token file" : "data generator");
    check_held_out(P, t);
    for (int f = F_LOSS_SCALE; f <= F_LOSS_SCALE_BACKOFF; f++) /* applied or refused: f16 only */
        if (t->field_loc[f].file >= 0 && t->precision != PMLC_F16) {
            pmlc_error(DIAG, t->field_loc[f],
                       "'%s' is for precision = f16, whose small range needs the loss scaled; this train block's "
                       "precision is %s, which needs no scaling",
                       fields[f], pmlc_dtype_name(t->precision));
            break;
        }
    if (t->field_loc[F_STEPS].file >= 0 && t->field_loc[F_EPOCHS].file >= 0)
        pmlc_error(DIAG, t->field_loc[F_EPOCHS], "give 'steps' or 'epochs', not both");
    if (t->batch > 0 && t->microbatches > 0 && t->batch % t->microbatches)
        pmlc_error(DIAG, t->field_loc[F_MICROBATCHES],
                   "microbatches = %lld does not divide batch = %lld: each micro-batch needs a whole number of samples",
                   (long long)t->microbatches, (long long)t->batch);
    if (t->lr_kind == PMLC_LR_WARMUP_COSINE && t->min_lr > t->lr)
        pmlc_error(DIAG, t->field_loc[F_LR_SCHEDULE], "'min_lr' (%g) is above the optimizer's lr (%g)", t->min_lr,
                   t->lr);
    if (t->lr_kind == PMLC_LR_WARMUP_COSINE && t->steps >= 0 && t->warmup > t->steps)
        pmlc_error(DIAG, t->field_loc[F_LR_SCHEDULE], "the warmup (%lld steps) is longer than training (%lld steps)",
                   (long long)t->warmup, (long long)t->steps);
    t->schedule_loc = t->field_loc[F_SCHEDULE];
    t->microbatches_loc = t->field_loc[F_MICROBATCHES];
    t->memory_loc = t->field_loc[F_MEMORY];
    t->recompute_loc = t->field_loc[F_RECOMPUTE];
    t->bad = P->diag.errors > before;
    return t;
}

static int type_is(const pmlc_graph *g, int node, pmlc_dtype dt, int rank)
{
    return g->nodes.v[node].dtype == dt && g->nodes.v[node].rank == rank;
}

/* The generator's tensors against the model's: classes gives f32[B, features] and
 * i32[B]; markov gives i32[B, T] tokens and next tokens. */
static int bind_data(pmlc_program *P, pmlc_train *t, pmlc_graph *g)
{
    if (t->data != PMLC_DATA_CLASSES && t->data != PMLC_DATA_MARKOV && t->data != PMLC_DATA_TOKENS) return 0;
    pmlc_loc where = t->field_loc[F_DATA];
    const ir_node *out = &g->nodes.v[g->output];
    if (g->inputs.n != 1) {
        pmlc_error(DIAG, where, "this data %s feeds one input, but model '%s' has %d",
                   t->data == PMLC_DATA_TOKENS ? "file" : "generator", g->name, g->inputs.n);
        return 1;
    }
    int in = g->inputs.v[0].node;
    const ir_node *x = &g->nodes.v[in];
    if (t->data == PMLC_DATA_CLASSES) {
        if (!type_is(g, in, PMLC_F32, 2) || !pmlc_size_eq(x->shape[1], pmlc_size_int(t->features))) {
            pmlc_error(DIAG, where, "classes(features = %lld) gives f32[B, %lld], which does not fit input '%s'",
                       (long long)t->features, (long long)t->features, g->inputs.v[0].name);
            pmlc_note(DIAG, g->inputs.v[0].loc, "the input is declared here");
            return 1;
        }
        if (out->rank != 2 || !pmlc_size_eq(out->shape[1], pmlc_size_int(t->classes))) {
            pmlc_error(DIAG, where, "classes(classes = %lld) needs a model output shaped [B, %lld]",
                       (long long)t->classes, (long long)t->classes);
            pmlc_note(DIAG, g->decl->a->loc, "the output type is declared here");
            return 1;
        }
    } else if (t->data == PMLC_DATA_TOKENS) {
        /* The vocabulary is the output's last axis; the file's tokens are checked
         * against it when training opens the file. */
        if (!type_is(g, in, PMLC_I32, 2) || out->rank != 3) {
            pmlc_error(DIAG, where,
                       "tokens(...) gives windows of token ids i32[B, T] and their next tokens as labels: input "
                       "'%s' must be i32[B, T] and the output [B, T, vocab]",
                       g->inputs.v[0].name);
            pmlc_note(DIAG, g->inputs.v[0].loc, "the input is declared here");
            return 1;
        }
    } else {
        if (!type_is(g, in, PMLC_I32, 2)) {
            pmlc_error(DIAG, where, "markov(...) gives token ids i32[B, T], which does not fit input '%s'",
                       g->inputs.v[0].name);
            pmlc_note(DIAG, g->inputs.v[0].loc, "the input is declared here");
            return 1;
        }
        if (out->rank != 3 || !pmlc_size_eq(out->shape[2], pmlc_size_int(t->vocab))) {
            pmlc_error(DIAG, where, "markov(vocab = %lld) needs a model output shaped [B, T, %lld]",
                       (long long)t->vocab, (long long)t->vocab);
            pmlc_note(DIAG, g->decl->a->loc, "the output type is declared here");
            return 1;
        }
    }
    if (g->labels >= 0 && g->nodes.v[g->labels].dtype != PMLC_I32) {
        pmlc_error(DIAG, t->loss_loc,
                   "this data source gives class labels (i32), but the loss '%s' expects labels "
                   "like the output; annotate its labels parameter as i32",
                   t->loss_fn->name);
        return 1;
    }
    return 0;
}

static void bind_dims(pmlc_program *P, pmlc_train *t, pmlc_graph *g)
{
    /* From scratch: schedule = auto binds the block to each candidate's graph. */
    memset(t->dim_set, 0, sizeof t->dim_set);
    for (int i = 0; i < t->dim_fields.n; i++) {
        const ast *f = t->dim_fields.v[i];
        int sym = -1;
        for (int s = 0; s < P->syms.n; s++)
            if (!strcmp(P->syms.names[s], f->name)) sym = s;
        int used = 0;
        for (int k = 0; sym >= 0 && k < g->inputs.n; k++) {
            const ir_node *n = &g->nodes.v[g->inputs.v[k].node];
            for (int d = 0; d < n->rank; d++) used |= n->shape[d].pow[sym] != 0;
        }
        if (!used) {
            const char *cands[F_COUNT + PMLC_MAX_SYMS];
            int n = 0;
            for (int k = 0; k < F_COUNT; k++) cands[n++] = fields[k];
            for (int s = 0; s < P->syms.n; s++) cands[n++] = P->syms.names[s];
            char why[160];
            snprintf(why, sizeof why, " (neither a train field nor a symbolic dimension of '%s')", g->name);
            pmlc_error_unknown(DIAG, f->name_loc, f->name, cands, n, why, "unknown field '%s'", f->name);
            continue;
        }
        if (sym == g->batch_sym) {
            pmlc_error(DIAG, f->name_loc, "'%s' is the batch dimension: it is set by 'batch' / 'microbatches'",
                       f->name);
            continue;
        }
        if (t->dim_set[sym]) {
            pmlc_error(DIAG, f->name_loc, "'%s' is given twice", f->name);
            continue;
        }
        if (get_int(P, f->a, "a dimension size", 1, 1 << 30, &t->dims[sym])) continue;
        t->dim_set[sym] = 1;
    }
}

static void bind_freezes(pmlc_program *P, pmlc_train *t, pmlc_graph *g)
{
    for (int i = 0; i < t->freezes.n; i++) {
        pmlc_freeze *f = &t->freezes.v[i];
        if (t->steps >= 0 && f->after >= t->steps && !f->is_auto)
            pmlc_warning(DIAG, f->loc, "this freeze starts at step %lld, after training ends (steps = %lld)",
                         (long long)f->after, (long long)t->steps);
        for (int k = 0; k < f->patterns.n; k++) {
            const ast *pat = f->patterns.v[k];
            int hits = 0;
            for (int p = 0; p < g->params.n; p++) {
                if (!pmlc_pattern_match(pat->name, g->params.v[p].name)) continue;
                hits++;
                ir_param *prm = &g->params.v[p];
                int64_t after = f->after <= P->opt.freeze_from ? 0 : f->after; /* a later phase's plan */
                if (prm->frozen_from < 0 || after < prm->frozen_from) prm->frozen_from = (int)after;
            }
            if (hits) continue;
            const char **cands = pmlc_arena_alloc(&P->arena, sizeof(char *) * (size_t)(2 * g->params.n + 1));
            int n = 0;
            for (int p = 0; p < g->params.n; p++) cands[n++] = g->params.v[p].name, cands[n++] = g->params.v[p].layer;
            pmlc_error_unknown(DIAG, pat->loc, pat->name, cands, n, " (see the names with 'pmlc plan')",
                               "'%s' matches no parameter of '%s'", pat->name, g->name);
        }
    }
}

/* A segment per model-level statement, but the loss's (its backward pass follows its
 * forward pass at once) and the distillation teacher's (it takes no gradient). */
static void segment_statements(pmlc_graph *g)
{
    int loss_unit = g->loss >= 0 ? g->nodes.v[g->loss].unit : -1;
    for (int i = 0; i < g->nodes.n; i++) {
        int u = g->nodes.v[i].unit;
        g->segment[i] = u == loss_unit || (i >= g->teacher_begin && i < g->teacher_end) ? -1 : u;
    }
}

/* A segment per call that a pattern matches, outer calls first: an outer call ends
 * after its inner ones, so walking the calls from the last to end finds it first. */
static void segment_calls(pmlc_program *P, const pmlc_train *t, pmlc_graph *g)
{
    for (int r = 0; r < t->recomputes.n; r++) {
        const ast *st = t->recomputes.v[r];
        for (int k = 0; k < st->list.n; k++) {
            const ast *pat = st->list.v[k];
            int hits = 0;
            for (int c = g->scopes.n - 1; c >= 0; c--) {
                const ir_scope *sc = &g->scopes.v[c];
                if (!pmlc_pattern_match(pat->name, sc->path)) continue;
                hits++;
                for (int32_t i = sc->begin; i < sc->end; i++)
                    if (g->segment[i] < 0) g->segment[i] = c;
            }
            if (hits) continue;
            const char **cands = pmlc_arena_alloc(&P->arena, sizeof(char *) * (size_t)(g->scopes.n + 1));
            for (int c = 0; c < g->scopes.n; c++) cands[c] = g->scopes.v[c].path;
            pmlc_error_unknown(DIAG, pat->loc, pat->name, cands, g->scopes.n,
                               " (a pattern names calls by their scope path, such as blocks.*.attn)",
                               "'%s' matches no call of '%s'", pat->name, g->name);
        }
    }
}

static void bind_recompute(pmlc_program *P, pmlc_train *t, pmlc_graph *g)
{
    if (!t->recompute && !t->recomputes.n) return;
    if (t->recompute && t->recomputes.n) {
        pmlc_error(DIAG, t->recomputes.v[0]->loc,
                   "'recompute = true' recomputes every model-level statement already: give it or patterns, "
                   "not both");
        pmlc_note(DIAG, t->field_loc[F_RECOMPUTE], "'recompute = true' is here");
        return;
    }
    g->segment = pmlc_arena_alloc(&P->arena, sizeof(int32_t) * (size_t)(g->nodes.n ? g->nodes.n : 1));
    for (int i = 0; i < g->nodes.n; i++) g->segment[i] = -1;
    if (t->recompute)
        segment_statements(g);
    else
        segment_calls(P, t, g);
}

/* Model chunks (place = auto(..., chunks = V)) are what interleaved 1F1B, ZB-V and
 * DualPipeV run, and they run nothing else: each needs the other. Interleaved 1F1B's
 * timetable walks the micro-batches in groups of S (schedule.c), so their number must
 * be a multiple of S; ZB-V's and DualPipeV's V is two chunks per stage, and DualPipeV's
 * order needs a micro-batch per chunk at least. */
static void bind_chunks(pmlc_program *P, pmlc_train *t, pmlc_graph *g, int S, int V)
{
    pmlc_loc sched = t->field_loc[F_SCHEDULE].file >= 0 ? t->field_loc[F_SCHEDULE] : t->decl->name_loc;
    if (t->schedule == PMLC_SCHED_AUTO) return; /* each candidate is bound on its own (plan/autosched.c) */
    const char *name = pmlc_schedule_name(t->schedule);
    int vee = pml_plan_schedule_vee((int)t->schedule);
    if (t->schedule != PMLC_SCHED_INTERLEAVED_1F1B && !vee) {
        if (V > 1)
            pmlc_error(DIAG, g->chunks_loc,
                       "chunks = %d runs several model chunks on each stage, which only schedule = "
                       "interleaved_1f1b, zero_bubble_v or dualpipe_v runs (this train block's schedule is %s)",
                       V, name);
        return;
    }
    if (vee && V != 2) {
        if (V < 2)
            pmlc_error(DIAG, sched,
                       "schedule = %s runs two model chunks on each stage, in a V: give them in the model with "
                       "place = auto(stages = S, chunks = 2)",
                       name);
        else
            pmlc_error(DIAG, g->chunks_loc,
                       "schedule = %s runs exactly two model chunks on each stage (its V), not %d: use chunks = 2, "
                       "or schedule = interleaved_1f1b for more",
                       name, V);
        return;
    }
    if (V < 2) {
        pmlc_error(DIAG, sched,
                   "schedule = interleaved_1f1b runs several model chunks on each stage: give them in the model "
                   "with place = auto(stages = S, chunks = V), V at least 2");
        return;
    }
    if (!vee && t->microbatches % S) {
        pmlc_error(DIAG, sched,
                   "schedule = interleaved_1f1b runs micro-batches in groups of one per stage: microbatches = %lld "
                   "is not a multiple of the %d stages",
                   (long long)t->microbatches, S);
        pmlc_note(DIAG, g->place_loc, "the stages are placed here");
    }
    if (t->schedule == PMLC_SCHED_DUALPIPE_V && t->microbatches < 2 * S)
        pmlc_error(DIAG, sched,
                   "schedule = dualpipe_v needs at least a micro-batch per chunk: microbatches = %lld is fewer than "
                   "the %d chunks",
                   (long long)t->microbatches, 2 * S);
}

int pmlc_train_bind(pmlc_program *P, pmlc_train *t, pmlc_graph *g)
{
    int before = P->diag.errors;
    bind_dims(P, t, g);
    bind_data(P, t, g);
    bind_freezes(P, t, g);
    bind_recompute(P, t, g);
    /* Under schedule = auto without microbatches the search tries only multiples. */
    int mb_free = t->schedule == PMLC_SCHED_AUTO && t->field_loc[F_MICROBATCHES].file < 0;
    if (g->replicas > 1 && t->microbatches % g->replicas && !mb_free)
        pmlc_error(DIAG, g->replicas_loc,
                   "%d replicas cannot share microbatches = %lld: each replica runs an equal share of the "
                   "micro-batches",
                   g->replicas, (long long)t->microbatches);
    int V = g->chunks > 1 ? g->chunks : 1, S = g->n_stages / V;
    if (t->n_devices && t->n_devices != S) {
        pmlc_error(DIAG, t->place_loc, "'place' lists %d device%s but model '%s' has %d stage%s", t->n_devices,
                   t->n_devices == 1 ? "" : "s", g->name, S, S == 1 ? "" : "s");
    }
    bind_chunks(P, t, g, S, V);
    return P->diag.errors > before;
}

/* The data feed writes a micro-batch of batch / microbatches rows into each model input
 * and into the labels, so each must have exactly that many rows (its first dimension,
 * `sh` being every node's shape with the symbols bound). A batch dimension spelled B is
 * bound to the micro-batch and always agrees; a constant one (x: f32[4, 784]) must
 * match it. The plan reader checks the same again for plan files (plan_read.c). */
int pmlc_train_check_rows(pmlc_program *P, const pmlc_train *t, const pmlc_graph *g, const pmlc_cshape *sh)
{
    int64_t mb = t->batch / t->microbatches;
    int which = t->field_loc[F_MICROBATCHES].file >= 0 ? F_MICROBATCHES : F_BATCH;
    for (int k = 0; k <= g->inputs.n; k++) {
        int node = k < g->inputs.n ? g->inputs.v[k].node : g->labels;
        if (node < 0) continue;
        int64_t rows = sh[node].rank ? sh[node].d[0] : 0;
        if (rows == mb) continue;
        if (k < g->inputs.n)
            pmlc_error(DIAG, g->inputs.v[k].loc,
                       "input '%s' has %lld rows per micro-batch (its first dimension), but batch = %lld and "
                       "microbatches = %lld give micro-batches of %lld rows",
                       g->inputs.v[k].name, (long long)rows, (long long)t->batch, (long long)t->microbatches,
                       (long long)mb);
        else
            pmlc_error(DIAG, t->loss_loc,
                       "the labels of this loss have %lld rows per micro-batch (their first dimension), but batch = "
                       "%lld and microbatches = %lld give micro-batches of %lld rows",
                       (long long)rows, (long long)t->batch, (long long)t->microbatches, (long long)mb);
        pmlc_note(DIAG, t->field_loc[which], "the micro-batch size is set here");
        return 1;
    }
    return 0;
}

/* ---- distill ------------------------------------------------------------------------ */

/* The name of a hidden state: a quoted scope path such as "blocks.3". */
static int get_layer_name(pmlc_program *P, call_args *a, int i, const char *what, const char **out)
{
    char d[200];
    if (!a->given[i]) return 0;
    if (a->v[i].k != PMLC_V_STR || !*a->v[i].s) {
        pmlc_error(DIAG, a->l[i],
                   "%s must be the name of a call in quotes, such as \"fc1\" for "
                   "`linear(x, 48) as fc1`, not %s",
                   what, pmlc_value_desc(P, NULL, a->v[i], d, sizeof d));
        return 1;
    }
    *out = a->v[i].s;
    return 0;
}

/* match(student = "NAME", teacher = "NAME", loss = mse | cosine, weight = w). `loss`
 * names a kind (read from the syntax, like a precision), so it is taken out of the call
 * before the other arguments are evaluated, and is keyword-only. */
static void read_match(pmlc_program *P, pmlc_distill *d, const ast *call)
{
    static const char *const names[] = {"student", "teacher", "weight"};
    static const char *const kinds[] = {"mse", "cosine"};
    pmlc_match m = {0};
    m.loc = call->loc;
    m.weight = 1.0;
    ast rest = *call;
    rest.list = (ast_list){0};
    int bad = 0, pos = 0;
    for (int i = 0; i < call->list.n; i++) {
        const ast *arg = call->list.v[i];
        int kw = arg->kind == AST_KWARG;
        const ast *x = kw ? arg->a : arg;
        int names_state = kw ? !strcmp(arg->name, "student") || !strcmp(arg->name, "teacher") : pos++ < 2;
        if (names_state && x->kind == AST_NAME) { /* a bare name would be looked up as a constant */
            pmlc_error(DIAG, x->loc, "a matched state is named in quotes: \"%s\"", x->name);
            bad = 1;
        } else if (kw && !strcmp(arg->name, "loss")) {
            int k;
            if (pick_name(P, arg->a, "match loss", kinds, 2, &k))
                bad = 1;
            else
                m.cosine = k;
        } else {
            PMLC_PUSH(&P->arena, rest.list, (ast *)arg);
        }
    }
    call_args a;
    if (bad || read_call(P, &rest, "match", names, 3, 2, &a) || get_layer_name(P, &a, 0, "'student'", &m.student) ||
        get_layer_name(P, &a, 1, "'teacher'", &m.teacher) || arg_num(P, &a, 2, "'weight'", 0, 1e6, 1, 1.0, &m.weight))
        return;
    m.student_loc = a.l[0];
    m.teacher_loc = a.l[1];
    PMLC_PUSH(&P->arena, d->matches, m);
}

pmlc_distill *pmlc_distill_read(pmlc_program *P, const ast *decl)
{
    pmlc_distill *d = pmlc_arena_alloc(&P->arena, sizeof *d);
    int before = P->diag.errors;
    d->decl = decl;
    d->temperature = 1.0;
    d->alpha = 0.5;
    d->teacher_precision = PMLC_F32;
    d->student = find_model(P, decl->name, decl->name_loc);
    d->teacher = find_model(P, decl->label, decl->label_loc);
    if (d->student && d->student == d->teacher) pmlc_error(DIAG, decl->label_loc, "a model cannot distill from itself");
    if (decl->list2.n != 1 || decl->list2.v[0]->kind != AST_STRING) {
        pmlc_error(DIAG, decl->label_loc, "the teacher takes its weights file: %s(\"teacher.safetensors\")",
                   decl->label);
    } else {
        get_string(P, decl->list2.v[0], "the teacher's weights", &d->weights);
    }
    static const char *const dfields[] = {"temperature", "alpha", "teacher_precision"};
    static const char *const calls[] = {"match"};
    pmlc_loc seen[3] = {PMLC_NOLOC, PMLC_NOLOC, PMLC_NOLOC};
    for (int i = 0; i < decl->list.n; i++) {
        const ast *f = decl->list.v[i];
        if (f->kind == AST_CALL && !strcmp(f->name, "match")) {
            read_match(P, d, f);
            continue;
        }
        if (f->kind == AST_CALL) {
            pmlc_error_unknown(DIAG, f->name_loc, f->name, calls, 1, " (use match(student = \"NAME\", ...))",
                               "unknown distill item '%s(...)'", f->name);
            continue;
        }
        if (f->kind != AST_FIELD) {
            pmlc_error(DIAG, f->loc, "'%s' belongs in a train block", f->kind == AST_RECOMPUTE ? "recompute" : "freeze");
            continue;
        }
        int which = -1;
        for (int k = 0; k < 3; k++)
            if (!strcmp(f->name, dfields[k])) which = k;
        if (which < 0) {
            pmlc_error_unknown(DIAG, f->name_loc, f->name, dfields, 3, " (use temperature, alpha, teacher_precision)",
                               "unknown distill field '%s'", f->name);
            continue;
        }
        if (seen[which].file >= 0) {
            pmlc_error(DIAG, f->name_loc, "field '%s' is given twice", f->name);
            pmlc_note(DIAG, seen[which], "first given here");
            continue;
        }
        seen[which] = f->name_loc;
        int s;
        static const char *const precisions[] = {"f32", "bf16", "f16"};
        if (which == 0)
            get_num(P, f->a, "'temperature'", 0, 1e6, 1, &d->temperature);
        else if (which == 1)
            get_num(P, f->a, "'alpha'", 0, 1, 0, &d->alpha);
        else if (!pick_name(P, f->a, "precision", precisions, 3, &s))
            d->teacher_precision = (pmlc_dtype)s;
    }
    d->bad = P->diag.errors > before;
    return d;
}

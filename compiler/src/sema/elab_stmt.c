/* elab_stmt.c — running statements: assignments, parameters with their
 * initializers, compile-time if, loops, stage blocks, placement and assertions. Each
 * model-level statement starts a new "unit", the place where automatic placement may
 * cut the model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml_parser.h"
#include "sema/elab_int.h"

/* ---- statements ------------------------------------------------------------------ */

static const char *const init_names[] = {"zeros", "ones", "normal", "uniform", "kaiming_uniform", "xavier_uniform"};

const char *pmlc_init_name(pmlc_init i) { return (unsigned)i < 6 ? init_names[i] : "?"; }

static int param_init(E_t *E, pmlc_frame *F, const ast *init, ir_param *p)
{
    const char *name = init->kind == AST_NAME || init->kind == AST_CALL ? init->name : NULL;
    int which = -1;
    for (int i = 0; name && i < 6; i++)
        if (!strcmp(name, init_names[i])) which = i;
    if (which < 0) {
        static const char use[] = " (use zeros, ones, normal(std), uniform(a, b), kaiming_uniform or xavier_uniform)";
        if (name)
            pmlc_error_unknown(&E->P->diag, init->loc, name, init_names, 6, use, "unknown initializer '%s'", name);
        else
            pmlc_error(&E->P->diag, init->loc, "unknown initializer%s", use);
        return 1;
    }
    p->init = (pmlc_init)which;
    int takes_args = p->init == PMLC_INIT_NORMAL || p->init == PMLC_INIT_UNIFORM;
    if (!takes_args) {
        if (init->kind == AST_CALL) {
            pmlc_error(&E->P->diag, init->loc, "initializer '%s' takes no arguments", name);
            return 1;
        }
        if ((p->init == PMLC_INIT_KAIMING_UNIFORM || p->init == PMLC_INIT_XAVIER_UNIFORM) && p->rank < 2) {
            pmlc_error(&E->P->diag, init->loc, "'%s' needs a parameter with at least 2 dimensions (it uses fan-in%s)",
                       name, p->init == PMLC_INIT_XAVIER_UNIFORM ? " and fan-out" : "");
            return 1;
        }
        return 0;
    }
    if (init->kind != AST_CALL) {
        pmlc_error(&E->P->diag, init->loc, "initializer '%s' needs arguments: %s", name,
                   p->init == PMLC_INIT_NORMAL ? "normal(std) or normal(std, mean)" : "uniform(low, high)");
        return 1;
    }
    static const char *const normal_args[] = {"std", "mean"}, *const uniform_args[] = {"low", "high"};
    pmlc_value v[2];
    pmlc_loc l[2];
    int given[2];
    const char *const *names = p->init == PMLC_INIT_NORMAL ? normal_args : uniform_args;
    if (pmlc_bind_args(E, F, init, name, names, 2, v, l, given)) return 1;
    double a = 0, b = 0;
    if (!given[0] || (p->init == PMLC_INIT_UNIFORM && !given[1])) {
        pmlc_error(&E->P->diag, init->loc, "missing argument '%s' of '%s'", !given[0] ? names[0] : names[1], name);
        return 1;
    }
    if (pmlc_want_number(E, v[0], l[0], names[0], &a) || (given[1] && pmlc_want_number(E, v[1], l[1], names[1], &b)))
        return 1;
    if (p->init == PMLC_INIT_NORMAL && !(a > 0)) {
        pmlc_error(&E->P->diag, l[0], "the standard deviation of 'normal' must be positive");
        return 1;
    }
    if (p->init == PMLC_INIT_UNIFORM && !(a < b)) {
        pmlc_error(&E->P->diag, init->loc, "'uniform(low, high)' needs low < high");
        return 1;
    }
    p->init_a = a;
    p->init_b = b;
    return 0;
}

/* Evaluates a written tensor type. `dt_default` applies when no dtype is written. */
int pmlc_eval_type(E_t *E, pmlc_frame *F, const ast *ty, pmlc_dtype dt_default, pmlc_dtype *dt, pmlc_shape *sh)
{
    *dt = dt_default;
    if (ty->name) {
        int d = pmlc_dtype_from_name(ty->name);
        if (d < 0) {
            static const char *const dts[] = {"f32", "bf16", "f16", "i32"};
            pmlc_error_unknown(&E->P->diag, ty->name_loc, ty->name, dts, 4, " (types are f32, bf16, f16, i32)",
                               "unknown type '%s'", ty->name);
            return 1;
        }
        *dt = (pmlc_dtype)d;
    }
    if (ty->list.n > PMLC_MAX_RANK) {
        pmlc_error(&E->P->diag, ty->loc, "too many dimensions (%d; the limit is %d)", ty->list.n, PMLC_MAX_RANK);
        return 1;
    }
    sh->rank = ty->list.n;
    for (int k = 0; k < ty->list.n; k++) {
        const ast *d = ty->list.v[k];
        pmlc_value v = pmlc_eval(E, F, d);
        if (pmlc_want_size(E, v, d->loc, "a dimension", &sh->d[k])) return 1;
        if (sh->d[k].coef <= 0) {
            pmlc_error(&E->P->diag, d->loc, "dimensions must be positive, got %lld", (long long)sh->d[k].coef);
            return 1;
        }
    }
    pmlc_size n;
    if (pmlc_shape_numel(sh, &n)) {
        pmlc_error(&E->P->diag, ty->loc, "tensor type is too large (more than 2^48 elements)");
        return 1;
    }
    return 0;
}

static int exec_param(E_t *E, pmlc_frame *F, const ast *st)
{
    pmlc_graph *g = E->g;
    if (!g) {
        pmlc_error(&E->P->diag, st->loc, "parameters belong in functions and models");
        return 1;
    }
    ir_param p = {0};
    pmlc_shape sh;
    if (pmlc_eval_type(E, F, st->a, PMLC_F32, &p.dtype, &sh)) return 1;
    if (!pmlc_dtype_is_float(p.dtype)) {
        pmlc_error(&E->P->diag, st->a->loc, "parameters must have a floating-point type, not %s",
                   pmlc_dtype_name(p.dtype));
        return 1;
    }
    char s[96];
    p.rank = sh.rank;
    p.numel = 1;
    for (int k = 0; k < sh.rank; k++) {
        if (!pmlc_size_is_const(sh.d[k])) {
            pmlc_error(&E->P->diag, st->a->list.v[k]->loc, "parameter dimensions must be constant; %s is symbolic",
                       pmlc_size_str(sh.d[k], &E->P->syms, s, sizeof s));
            return 1;
        }
        p.dims[k] = sh.d[k].coef;
        p.numel *= p.dims[k];
    }
    if (param_init(E, F, st->b, &p)) return 1;
    if (pmlc_claim(E, F->scope, st->name, st->name_loc, "parameter name")) return 1;
    p.name = pmlc_join(E, F->scope->path, st->name);
    p.layer = F->is_model ? p.name : F->scope->layer;
    p.loc = st->loc;
    p.frozen_from = -1;
    p.tie = -1;
    int32_t t = pmlc_emit_source(E, OP_PARAM, p.dtype, &sh, 0, st->loc);
    if (t < 0) return 1;
    p.node = t;
    g->nodes.v[t].param = g->params.n;
    g->nodes.v[t].label = p.name;
    PMLC_PUSH(E->A, g->params, p);
    pmlc_set_var(E, F, st->name, pmlc_v_tensor(t));
    return 0;
}

static int exec_stage(E_t *E, pmlc_frame *F, const ast *st)
{
    pmlc_graph *g = E->g;
    if (E->teacher && F->is_model) return pmlc_exec_block(E, F, st->b); /* the student's plan places it */
    if (!F->is_model) {
        pmlc_error(&E->P->diag, st->loc, "stage blocks belong in a model body, not in a function");
        return 1;
    }
    if (E->in_stage) {
        pmlc_error(&E->P->diag, st->loc, "stage blocks cannot be nested");
        return 1;
    }
    int64_t idx;
    if (pmlc_want_int(E, pmlc_eval(E, F, st->a), st->a->loc, "a stage number", &idx)) return 1;
    if (idx != E->next_stage) {
        pmlc_error(&E->P->diag, st->a->loc, "stages must be numbered in order from 0: expected stage %d here, not %lld",
                   E->next_stage, (long long)idx);
        return 1;
    }
    if (E->next_stage == 0) E->first_stage_loc = st->loc;
    E->next_stage++;
    g->n_stages = E->next_stage;
    E->in_stage = 1;
    E->cur_stage = (int)idx;
    int rc = pmlc_exec_block(E, F, st->b);
    E->in_stage = 0;
    E->cur_stage = -1;
    return rc;
}

static int exec_place(E_t *E, pmlc_frame *F, const ast *st)
{
    pmlc_graph *g = E->g;
    const ast *v = st->a;
    if (!F->is_model) {
        pmlc_error(&E->P->diag, st->loc, "'place' belongs in a model body");
        return 1;
    }
    if (E->teacher) return 0; /* a teacher is placed with its student */
    if (g->staged) {
        pmlc_error(&E->P->diag, st->loc, "'place = auto(...)' cannot be combined with stage blocks");
        return 1;
    }
    if (g->auto_place) {
        pmlc_error(&E->P->diag, st->loc, "placement is already given");
        pmlc_note(&E->P->diag, g->place_loc, "first given here");
        return 1;
    }
    if (v->kind != AST_CALL || strcmp(v->name, "auto") || v->label) {
        pmlc_error(&E->P->diag, v->loc,
                   "a model's placement is 'auto(stages = N)', with 'replicas = R' or 'chunks = V' optionally (or "
                   "write stage blocks)");
        return 1;
    }
    /* replicas: how many copies of the pipeline train on shares of each batch (data
     * parallelism over ranks); the runtime's --replicas overrides it. chunks: how many
     * model chunks each stage's device runs (interleaved 1F1B): the model is cut into
     * stages x chunks pieces, and piece c runs on device c mod stages. */
    static const char *const names[] = {"stages", "replicas", "chunks"};
    pmlc_value val[3];
    pmlc_loc l[3];
    int given[3];
    if (pmlc_bind_args(E, F, v, "auto", names, 3, val, l, given)) return 1;
    int64_t n, r = 1, V = 1;
    if (!given[0]) {
        pmlc_error(&E->P->diag, v->loc, "missing argument 'stages' of 'auto'");
        return 1;
    }
    if (pmlc_want_int(E, val[0], l[0], "the number of stages", &n)) return 1;
    if (n < 1 || n > 1024) {
        pmlc_error(&E->P->diag, l[0], "the number of stages must be between 1 and 1024, not %lld", (long long)n);
        return 1;
    }
    if (given[1] && pmlc_want_int(E, val[1], l[1], "the number of replicas", &r)) return 1;
    if (r < 1 || r > 1024) {
        pmlc_error(&E->P->diag, l[1], "the number of replicas must be between 1 and 1024, not %lld", (long long)r);
        return 1;
    }
    if (given[2] && pmlc_want_int(E, val[2], l[2], "the number of chunks", &V)) return 1;
    if (V < 1 || V > PMLC_MAX_CHUNKS || n * V > 1024) {
        pmlc_error(&E->P->diag, l[2],
                   "the number of chunks must be between 1 and %d, with at most 1024 chunks in all, not %lld",
                   PMLC_MAX_CHUNKS, (long long)V);
        return 1;
    }
    g->auto_place = 1;
    g->n_stages = (int)(n * V);
    g->chunks = (int)V;
    g->chunks_loc = given[2] ? l[2] : PMLC_NOLOC;
    g->place_loc = st->loc;
    g->replicas = given[1] ? (int)r : 0;
    g->replicas_loc = given[1] ? l[1] : PMLC_NOLOC;
    return 0;
}

static int exec_loop(E_t *E, pmlc_frame *F, const ast *st)
{
    int64_t lo = 0, hi = 0;
    pmlc_value list = pmlc_v_none;
    if (st->kind == AST_REPEAT) {
        if (pmlc_want_int(E, pmlc_eval(E, F, st->a), st->a->loc, "a repeat count", &hi)) return 1;
        if (hi < 0) {
            pmlc_error(&E->P->diag, st->a->loc, "a repeat count cannot be negative (%lld)", (long long)hi);
            return 1;
        }
    } else if (st->c) {
        if (pmlc_want_int(E, pmlc_eval(E, F, st->a), st->a->loc, "a range start", &lo) ||
            pmlc_want_int(E, pmlc_eval(E, F, st->c), st->c->loc, "a range end", &hi))
            return 1;
    } else {
        char d[200];
        list = pmlc_eval(E, F, st->a);
        if (list.k == PMLC_V_ERR) return 1;
        if (list.k != PMLC_V_LIST) {
            pmlc_error(&E->P->diag, st->a->loc, "'for' runs over a list or a range a..b, not %s",
                       pmlc_desc(E, list, d, sizeof d));
            return 1;
        }
        hi = list.n;
    }
    if (hi - lo > PMLC_MAX_LOOP || (hi > 0 && lo < 0 && hi > INT64_MAX + lo)) {
        pmlc_error(&E->P->diag, st->loc, "loop of %lld iterations is over the limit of %d", (long long)(hi - lo),
                   PMLC_MAX_LOOP);
        return 1;
    }
    PMLC_PUSH(E->A, F->loops, 0);
    int depth = F->loops.n - 1, rc = 0;
    for (int64_t i = lo; i < hi && !rc && !F->returned && !E->aborted; i++) {
        F->loops.v[depth] = i;
        if (st->kind == AST_FOR) pmlc_set_var(E, F, st->name, list.k == PMLC_V_LIST ? list.items[i] : pmlc_v_int(i));
        rc = pmlc_exec_block(E, F, st->b);
    }
    F->loops.n--;
    return rc;
}

/* A failed assertion is the caller's mistake: the error points at the outermost call
 * (the user's line), and notes lead through the calls in between to the assertion. */
static void assert_failed(E_t *E, const ast *st, const char *msg)
{
    if (E->call_depth == 0) {
        pmlc_error(&E->P->diag, st->a->loc, "%s", msg);
        return;
    }
    pmlc_error(&E->P->diag, E->calls[0]->loc, "%s", msg);
    for (int i = 1; i < E->call_depth; i++)
        pmlc_note(&E->P->diag, E->calls[i]->name_loc, "in the call of '%s' made here", E->calls[i]->name);
    pmlc_note(&E->P->diag, st->a->loc, "asserted here, in '%s'", E->calls[E->call_depth - 1]->name);
}

static int exec_stmt(E_t *E, pmlc_frame *F, const ast *st)
{
    if (pmlc_over_limit(E, st->loc)) return 1;
    int simple = st->kind == AST_ASSIGN || st->kind == AST_EXPR_STMT || st->kind == AST_RETURN || st->kind == AST_PARAM;
    if (F->is_model && simple) {
        E->unit++;
        E->model_stmt = st->loc;
    }
    switch (st->kind) {
    case AST_ASSIGN: {
        pmlc_value v = pmlc_eval(E, F, st->a);
        if (v.k == PMLC_V_NONE) {
            pmlc_error(&E->P->diag, st->a->loc, "this call returns no value to assign to '%s'", st->name);
            v = pmlc_v_err;
        }
        if (v.k == PMLC_V_TENSOR && F->is_model) E->g->nodes.v[v.t].label = pmlc_join(E, F->scope->path, st->name);
        pmlc_set_var(E, F, st->name, v);
        return 0;
    }
    case AST_EXPR_STMT:
        pmlc_eval(E, F, st->a);
        return 0;
    case AST_RETURN:
        F->ret = st->a ? pmlc_eval(E, F, st->a) : pmlc_v_none;
        F->ret_loc = st->a ? st->a->loc : st->loc;
        F->returned = 1;
        return 0;
    case AST_PARAM:
        if (exec_param(E, F, st)) {
            pmlc_set_var(E, F, st->name, pmlc_v_err); /* later uses stay quiet */
            return 1;
        }
        return 0;
    case AST_IF: {
        int c;
        if (pmlc_want_bool(E, pmlc_eval(E, F, st->a), st->a->loc, "an 'if' condition", &c)) return 1;
        if (c) return pmlc_exec_block(E, F, st->b);
        if (!st->c) return 0;
        return st->c->kind == AST_IF ? exec_stmt(E, F, st->c) : pmlc_exec_block(E, F, st->c);
    }
    case AST_REPEAT:
    case AST_FOR:
        return exec_loop(E, F, st);
    case AST_STAGE:
        return exec_stage(E, F, st);
    case AST_PLACE:
        return exec_place(E, F, st);
    case AST_ASSERT: {
        int c;
        if (pmlc_want_bool(E, pmlc_eval(E, F, st->a), st->a->loc, "an assertion", &c)) return 1;
        if (c) return 0;
        const char *msg = "assertion failed";
        if (st->b) {
            pmlc_value m = pmlc_eval(E, F, st->b);
            if (m.k == PMLC_V_STR) msg = m.s;
        }
        assert_failed(E, st, msg);
        F->ret = pmlc_v_err; /* the call fails here: nothing after the assertion runs */
        F->returned = 1;
        return 1;
    }
    default:
        pmlc_error(&E->P->diag, st->loc, "a %s is not a statement here", ast_kind_name(st->kind));
        return 1;
    }
}

/* Runs statements until a return. Errors in one statement do not stop the next, so
 * independent mistakes are all reported; a hit limit does. */
int pmlc_exec_block(E_t *E, pmlc_frame *F, const ast *block)
{
    int bad = 0;
    for (int i = 0; i < block->list.n && !F->returned && !E->aborted && !E->P->diag.stop; i++)
        bad |= exec_stmt(E, F, block->list.v[i]);
    return bad || E->aborted;
}

/* elab.c — running model bodies at compile time (see elab.h).
 *
 * A tree-walking evaluator: compile-time values are computed directly, tensor values
 * are graph nodes. Every call of a user function runs its body in a fresh frame and a
 * fresh naming scope, which is what inlines it and names its parameters. Errors
 * produce PMLC_V_ERR, which every operation passes on silently, so one mistake is
 * reported once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elab_int.h"
#include "pml_parser.h"

const pmlc_value pmlc_v_err = {PMLC_V_ERR, 0, {0, {0}}, 0, NULL, NULL, -1};
const pmlc_value pmlc_v_none = {PMLC_V_NONE, 0, {0, {0}}, 0, NULL, NULL, -1};

pmlc_value pmlc_v_size(pmlc_size s)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_INT;
    v.i = s;
    return v;
}
pmlc_value pmlc_v_int(int64_t i) { return pmlc_v_size(pmlc_size_int(i)); }
pmlc_value pmlc_v_float(double f)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_FLOAT;
    v.f = f;
    return v;
}
pmlc_value pmlc_v_bool(int b)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_BOOL;
    v.i.coef = b != 0;
    return v;
}
pmlc_value pmlc_v_tensor(int32_t t)
{
    pmlc_value v = pmlc_v_none;
    v.k = t < 0 ? PMLC_V_ERR : PMLC_V_TENSOR;
    v.t = t;
    return v;
}

/* ---- messages ------------------------------------------------------------------- */

const char *pmlc_value_desc(pmlc_program *P, const pmlc_graph *g, pmlc_value v, char *buf, size_t cap)
{
    char t[256];
    switch (v.k) {
    case PMLC_V_ERR: snprintf(buf, cap, "an erroneous value"); break;
    case PMLC_V_NONE: snprintf(buf, cap, "nothing (a call that returns no value)"); break;
    case PMLC_V_INT:
        snprintf(buf, cap, "%s %s", pmlc_size_is_const(v.i) ? "the integer" : "the size",
                 pmlc_size_str(v.i, &P->syms, t, sizeof t));
        break;
    case PMLC_V_FLOAT: snprintf(buf, cap, "the number %g", v.f); break;
    case PMLC_V_BOOL: snprintf(buf, cap, "the boolean %s", v.i.coef ? "true" : "false"); break;
    case PMLC_V_STR: snprintf(buf, cap, "a string"); break;
    case PMLC_V_DTYPE: snprintf(buf, cap, "the type %s", pmlc_dtype_name((pmlc_dtype)v.t)); break;
    case PMLC_V_LIST: snprintf(buf, cap, "a list of %d", v.n); break;
    case PMLC_V_DEVICE: snprintf(buf, cap, "the device %s:%lld", v.s, (long long)v.i.coef); break;
    case PMLC_V_TENSOR: {
        const ir_node *n = &g->nodes.v[v.t];
        pmlc_shape sh = {n->rank, {{0}}};
        memcpy(sh.d, n->shape, sizeof(pmlc_size) * (size_t)n->rank);
        snprintf(buf, cap, "a tensor %s", pmlc_type_str(n->dtype, &sh, &P->syms, t, sizeof t));
        break;
    }
    }
    return buf;
}

static const char *desc(E_t *E, pmlc_value v, char *buf, size_t cap)
{
    return pmlc_value_desc(E->P, E->g, v, buf, cap);
}

static int over_limit(E_t *E, pmlc_loc loc)
{
    if (E->aborted) return 1;
    if (++E->work > PMLC_MAX_WORK) {
        pmlc_error(&E->P->diag, loc, "compile-time work limit reached (%d steps): the program is too large",
                   PMLC_MAX_WORK);
        E->aborted = 1;
        return 1;
    }
    return 0;
}

/* ---- conversions ---------------------------------------------------------------- */

int pmlc_want_size(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, pmlc_size *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_INT) {
        pmlc_error(&E->P->diag, loc, "%s must be an integer, not %s", what, desc(E, v, d, sizeof d));
        return 1;
    }
    *out = v.i;
    return 0;
}

int pmlc_want_int(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int64_t *out)
{
    char d[200];
    pmlc_size s;
    if (pmlc_want_size(E, v, loc, what, &s)) return 1;
    if (!pmlc_size_is_const(s)) {
        pmlc_error(&E->P->diag, loc, "%s must be a constant integer, not %s", what, desc(E, v, d, sizeof d));
        return 1;
    }
    *out = s.coef;
    return 0;
}

int pmlc_want_number(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, double *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k == PMLC_V_FLOAT) *out = v.f;
    else if (v.k == PMLC_V_INT && pmlc_size_is_const(v.i)) *out = (double)v.i.coef;
    else {
        pmlc_error(&E->P->diag, loc, "%s must be a number, not %s", what, desc(E, v, d, sizeof d));
        return 1;
    }
    return 0;
}

int pmlc_want_bool(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_BOOL) {
        pmlc_error(&E->P->diag, loc, "%s must be true or false, not %s", what, desc(E, v, d, sizeof d));
        return 1;
    }
    *out = (int)v.i.coef;
    return 0;
}

int pmlc_want_tensor(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int32_t like, int32_t *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k == PMLC_V_TENSOR) {
        *out = v.t;
        return 0;
    }
    double f;
    if ((v.k == PMLC_V_FLOAT || (v.k == PMLC_V_INT && pmlc_size_is_const(v.i))) && E->g) {
        f = v.k == PMLC_V_FLOAT ? v.f : (double)v.i.coef;
        pmlc_dtype dt = like >= 0 ? E->g->nodes.v[like].dtype : PMLC_F32;
        pmlc_shape scalar = {0, {{0}}};
        *out = pmlc_emit_source(E, OP_CONST, dt, &scalar, f, loc);
        return *out < 0;
    }
    pmlc_error(&E->P->diag, loc, "%s must be a tensor, not %s", what, desc(E, v, d, sizeof d));
    return 1;
}

int pmlc_axis(E_t *E, int64_t axis, int rank, pmlc_loc loc, int *out)
{
    if (axis < -rank || axis >= rank) {
        pmlc_error(&E->P->diag, loc, "axis %lld is out of range for a tensor of rank %d (use %d..%d)", (long long)axis,
                   rank, -rank, rank - 1);
        return 1;
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

/* ---- emitting nodes ----------------------------------------------------------- */

void pmlc_node_shape(const E_t *E, int32_t t, pmlc_shape *out)
{
    const ir_node *n = &E->g->nodes.v[t];
    out->rank = n->rank;
    memcpy(out->d, n->shape, sizeof(pmlc_size) * (size_t)n->rank);
}

static int node_stage(E_t *E, pmlc_loc loc)
{
    pmlc_graph *g = E->g;
    if (g->staged && E->cur_stage < 0) {
        if (E->stage_err_unit != E->unit) {
            E->stage_err_unit = E->unit;
            pmlc_error(&E->P->diag, E->model_stmt,
                       "this operation is outside every stage block; in a model with stage blocks every "
                       "operation belongs to a stage");
        }
        return -2;
    }
    return E->cur_stage < 0 ? 0 : E->cur_stage;
}

static int32_t add_node(E_t *E, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, pmlc_loc loc)
{
    pmlc_graph *g = E->g;
    if (!g || g->nodes.n >= PMLC_MAX_NODES) {
        if (!E->aborted)
            pmlc_error(&E->P->diag, loc, "model too large: more than %d operations", PMLC_MAX_NODES);
        E->aborted = 1;
        return -1;
    }
    int stage = node_stage(E, loc);
    if (stage == -2) return -1;
    ir_node n = {0};
    n.op = op;
    n.dtype = dt;
    n.rank = sh->rank;
    n.shape = pmlc_arena_alloc(E->A, sizeof(pmlc_size) * (size_t)(sh->rank ? sh->rank : 1));
    memcpy(n.shape, sh->d, sizeof(pmlc_size) * (size_t)sh->rank);
    n.stage = stage;
    n.unit = E->unit;
    n.param = -1;
    n.loc = loc;
    PMLC_PUSH(E->A, g->nodes, n);
    return g->nodes.n - 1;
}

int32_t pmlc_emit_source(E_t *E, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, double fval, pmlc_loc loc)
{
    if (!E->g) {
        pmlc_error(&E->P->diag, loc, "a constant must be a compile-time value, not a tensor");
        return -1;
    }
    int32_t id = add_node(E, op, dt, sh, loc);
    if (id >= 0) E->g->nodes.v[id].fval = fval;
    return id;
}

int32_t pmlc_emit(E_t *E, pmlc_opcode op, int n_in, const int32_t *in, const pmlc_loc *in_locs, const int64_t *attr,
                  int n_attr, const pmlc_shape *target, double fval, pmlc_loc loc, const char *opname)
{
    if (E->aborted) return -1;
    if (!E->g) {
        pmlc_error(&E->P->diag, loc, "a constant must be a compile-time value, not a tensor");
        return -1;
    }
    enum { MAX_IN = 64 };
    pmlc_shape shapes[MAX_IN];
    const pmlc_shape *ptrs[MAX_IN];
    pmlc_dtype dts[MAX_IN];
    if (n_in > MAX_IN) {
        pmlc_error(&E->P->diag, loc, "'%s' takes at most %d tensors", opname, MAX_IN);
        return -1;
    }
    for (int i = 0; i < n_in; i++) {
        pmlc_node_shape(E, in[i], &shapes[i]);
        ptrs[i] = &shapes[i];
        dts[i] = E->g->nodes.v[in[i]].dtype;
    }
    pmlc_infer a = {0};
    a.n_in = n_in;
    a.in = ptrs;
    a.dt = dts;
    a.attr = attr;
    a.n_attr = n_attr;
    a.target = target;
    a.syms = &E->P->syms;
    a.opname = opname;
    if (pmlc_ops[op].infer(&a)) {
        pmlc_loc where = a.bad >= 0 && a.bad < n_in && in_locs ? in_locs[a.bad] : loc;
        pmlc_error(&E->P->diag, where, "%s", a.msg);
        return -1;
    }
    int32_t id = add_node(E, op, a.out_dt, &a.out, loc);
    if (id < 0) return -1;
    ir_node *n = &E->g->nodes.v[id];
    n->n_in = n_in;
    n->in = pmlc_arena_alloc(E->A, sizeof(int32_t) * (size_t)(n_in ? n_in : 1));
    memcpy(n->in, in, sizeof(int32_t) * (size_t)n_in);
    if (n_attr) {
        n->attr = pmlc_arena_alloc(E->A, sizeof(int64_t) * (size_t)n_attr);
        memcpy(n->attr, attr, sizeof(int64_t) * (size_t)n_attr);
        n->n_attr = n_attr;
    }
    n->fval = fval;
    return id;
}

/* ---- frames, scopes, names ---------------------------------------------------- */

static void set_var(E_t *E, pmlc_frame *F, const char *name, pmlc_value v)
{
    pmlc_value *slot = pmlc_strmap_get(&F->vars, name);
    if (!slot) {
        slot = pmlc_arena_alloc(E->A, sizeof *slot);
        pmlc_strmap_put(E->A, &F->vars, name, slot);
    }
    *slot = v;
}

static const char *join(E_t *E, const char *path, const char *name)
{
    return path ? pmlc_arena_printf(E->A, "%s.%s", path, name) : name;
}

/* Claims `name` in scope S; reports a clash with its first use. */
static int claim(E_t *E, pmlc_scope *S, const char *name, pmlc_loc loc, const char *what)
{
    pmlc_loc *prev = pmlc_strmap_get(&S->used, name);
    if (prev) {
        pmlc_error(&E->P->diag, loc, "%s '%s' is already used in %s%s%s", what, join(E, S->path, name),
                   S->path ? "scope '" : "the model", S->path ? S->path : "", S->path ? "'" : "");
        pmlc_note(&E->P->diag, *prev, "first used here");
        return 1;
    }
    pmlc_loc *l = pmlc_arena_alloc(E->A, sizeof *l);
    *l = loc;
    pmlc_strmap_put(E->A, &S->used, pmlc_arena_strdup(E->A, name), l);
    return 0;
}

static pmlc_scope *child_scope(E_t *E, pmlc_frame *F, const ast *call)
{
    pmlc_scope *parent = F->scope, *S = pmlc_arena_alloc(E->A, sizeof *S);
    const char *name;
    if (call->label) {
        name = call->label;
        for (int i = 0; i < F->loops.n; i++)
            name = pmlc_arena_printf(E->A, "%s.%lld", name, (long long)F->loops.v[i]);
        if (claim(E, parent, name, call->label_loc, "name")) return NULL;
    } else {
        int *counter = pmlc_strmap_get(&parent->counters, call->name);
        if (!counter) {
            counter = pmlc_arena_alloc(E->A, sizeof *counter);
            pmlc_strmap_put(E->A, &parent->counters, call->name, counter);
        }
        do name = pmlc_arena_printf(E->A, "%s_%d", call->name, (*counter)++);
        while (pmlc_strmap_get(&parent->used, name));
        claim(E, parent, name, call->name_loc, "name");
    }
    S->path = join(E, parent->path, name);
    S->layer = F->is_model ? S->path : parent->layer;
    return S;
}

/* ---- names -------------------------------------------------------------------- */

static void unknown_name(E_t *E, pmlc_frame *F, const ast *n)
{
    pmlc_program *P = E->P;
    PMLC_VEC(const char *) cands = {0};
    for (int i = 0; i < F->vars.cap; i++)
        if (F->vars.keys[i]) PMLC_PUSH(E->A, cands, F->vars.keys[i]);
    for (int i = 0; i < P->globals.cap; i++)
        if (P->globals.keys[i]) PMLC_PUSH(E->A, cands, P->globals.keys[i]);
    const char *sugg = pmlc_suggest(n->name, cands.v, cands.n);
    if (sugg) pmlc_error(&P->diag, n->loc, "unknown name '%s'; did you mean '%s'?", n->name, sugg);
    else pmlc_error(&P->diag, n->loc, "unknown name '%s'", n->name);
    for (int i = 0; i < P->syms.n; i++)
        if (!strcmp(P->syms.names[i], n->name) && !F->is_model)
            pmlc_note(&P->diag, PMLC_NOLOC,
                      "symbolic dimensions are visible in model bodies only; in a function use dim(x, axis)");
}

static pmlc_value eval_const_decl(E_t *E, const ast *decl);

static pmlc_value eval_name(E_t *E, pmlc_frame *F, const ast *n)
{
    pmlc_value *v = pmlc_strmap_get(&F->vars, n->name);
    if (v) return *v;
    const ast *g = pmlc_strmap_get(&E->P->globals, n->name);
    if (g && g->kind == AST_CONST) return eval_const_decl(E, g);
    int dt = pmlc_dtype_from_name(n->name);
    if (dt >= 0) {
        pmlc_value r = pmlc_v_none;
        r.k = PMLC_V_DTYPE;
        r.t = dt;
        return r;
    }
    if (g) {
        pmlc_error(&E->P->diag, n->loc, "'%s' is a %s; %s", n->name, g->kind == AST_FN ? "function" : "model",
                   g->kind == AST_FN ? "call it with arguments" : "a model cannot be used as a value");
        return pmlc_v_err;
    }
    if (pmlc_builtin_find(n->name) >= 0) {
        pmlc_error(&E->P->diag, n->loc, "'%s' is a built-in operation; call it with arguments", n->name);
        return pmlc_v_err;
    }
    if (F->bind_symbols) {
        int s = pmlc_symbol(E->P, n->name);
        if (s < 0) {
            pmlc_error(&E->P->diag, n->loc, "too many symbolic dimensions (the limit is %d)", PMLC_MAX_SYMS);
            return pmlc_v_err;
        }
        pmlc_value r = pmlc_v_size(pmlc_size_sym(s));
        set_var(E, F, n->name, r);
        return r;
    }
    unknown_name(E, F, n);
    return pmlc_v_err;
}

/* Constants are evaluated once per program, on first use; a cycle is an error. */
static pmlc_value eval_const_decl(E_t *E, const ast *decl)
{
    pmlc_program *P = E->P;
    pmlc_value *cached = pmlc_strmap_get(&P->const_cache, decl->name);
    if (cached) {
        if (cached->k == PMLC_V_NONE) {
            pmlc_error(&P->diag, decl->name_loc, "constant '%s' is defined in terms of itself", decl->name);
            return *cached = pmlc_v_err;
        }
        return *cached;
    }
    cached = pmlc_arena_alloc(E->A, sizeof *cached);
    *cached = pmlc_v_none; /* "being evaluated" */
    pmlc_strmap_put(E->A, &P->const_cache, decl->name, cached);
    /* Constants are evaluated without a graph, in a frame of their own. */
    E_t sub = {0};
    sub.P = P;
    sub.A = E->A;
    sub.cur_stage = -1;
    pmlc_frame F = {0};
    F.no_tensors = 1;
    pmlc_value v = pmlc_eval(&sub, &F, decl->a);
    char d[200];
    if (v.k == PMLC_V_NONE || v.k == PMLC_V_TENSOR) {
        pmlc_error(&P->diag, decl->a->loc, "a constant must be a compile-time value, not %s", desc(&sub, v, d, sizeof d));
        v = pmlc_v_err;
    }
    if (sub.aborted) E->aborted = 1;
    *cached = v;
    return v;
}

/* ---- arithmetic ------------------------------------------------------------------ */

static int is_number(pmlc_value v)
{
    return v.k == PMLC_V_FLOAT || (v.k == PMLC_V_INT && pmlc_size_is_const(v.i));
}

static double num(pmlc_value v) { return v.k == PMLC_V_FLOAT ? v.f : (double)v.i.coef; }

static pmlc_value size_result(E_t *E, pmlc_size_err err, pmlc_size r, const ast *e, pmlc_value a, pmlc_value b)
{
    char s1[128], s2[128];
    switch (err) {
    case PMLC_SIZE_OK: return pmlc_v_size(r);
    case PMLC_SIZE_OVERFLOW: pmlc_error(&E->P->diag, e->loc, "integer overflow in '%s'", ast_op_text(e->op)); break;
    case PMLC_SIZE_ZERO: pmlc_error(&E->P->diag, e->b->loc, "division by zero"); break;
    case PMLC_SIZE_INEXACT:
        pmlc_error(&E->P->diag, e->loc, "%s does not divide evenly by %s (use float(a) / b for a fraction)",
                   pmlc_size_str(a.i, &E->P->syms, s1, sizeof s1), pmlc_size_str(b.i, &E->P->syms, s2, sizeof s2));
        break;
    case PMLC_SIZE_SYMBOLIC:
        pmlc_error(&E->P->diag, e->loc, "cannot compute %s %s %s: sizes with different symbolic dimensions",
                   pmlc_size_str(a.i, &E->P->syms, s1, sizeof s1), ast_op_text(e->op),
                   pmlc_size_str(b.i, &E->P->syms, s2, sizeof s2));
        break;
    }
    return pmlc_v_err;
}

static pmlc_value compare(E_t *E, const ast *e, pmlc_value a, pmlc_value b)
{
    int op = e->op, r;
    if (a.k == PMLC_V_INT && b.k == PMLC_V_INT && !(pmlc_size_is_const(a.i) && pmlc_size_is_const(b.i))) {
        if (op != TOK_EQ && op != TOK_NE) goto symbolic;
        if (!pmlc_size_eq(a.i, b.i) && !(pmlc_size_is_const(a.i) || pmlc_size_is_const(b.i))) goto symbolic;
        if (!pmlc_size_eq(a.i, b.i)) goto symbolic;
        return pmlc_v_bool(op == TOK_EQ);
    }
    if (is_number(a) && is_number(b)) {
        double x = num(a), y = num(b);
        switch (op) {
        case '<': r = x < y; break;
        case '>': r = x > y; break;
        case TOK_LE: r = x <= y; break;
        case TOK_GE: r = x >= y; break;
        case TOK_EQ: r = x == y; break;
        default: r = x != y; break;
        }
        return pmlc_v_bool(r);
    }
    if (op == TOK_EQ || op == TOK_NE) {
        if (a.k == b.k && (a.k == PMLC_V_BOOL || a.k == PMLC_V_DTYPE)) {
            r = a.k == PMLC_V_BOOL ? a.i.coef == b.i.coef : a.t == b.t;
            return pmlc_v_bool(op == TOK_EQ ? r : !r);
        }
        if (a.k == PMLC_V_STR && b.k == PMLC_V_STR) {
            r = !strcmp(a.s, b.s);
            return pmlc_v_bool(op == TOK_EQ ? r : !r);
        }
    }
    char d1[200], d2[200];
    pmlc_error(&E->P->diag, e->loc, "cannot compare %s with %s", desc(E, a, d1, sizeof d1), desc(E, b, d2, sizeof d2));
    return pmlc_v_err;
symbolic:
    pmlc_error(&E->P->diag, e->loc, "cannot decide '%s' at compile time: it depends on a symbolic dimension",
               ast_op_text(op));
    return pmlc_v_err;
}

static pmlc_value tensor_binary(E_t *E, const ast *e, pmlc_value a, pmlc_value b)
{
    static const struct { int tok; pmlc_opcode op; } map[] = {
        {'+', OP_ADD}, {'-', OP_SUB}, {'*', OP_MUL}, {'/', OP_DIV}, {'@', OP_MATMUL},
        {'<', OP_LT}, {'>', OP_GT}, {TOK_LE, OP_LE}, {TOK_GE, OP_GE}, {TOK_EQ, OP_EQ}, {TOK_NE, OP_NE}};
    pmlc_opcode op = OP_COUNT;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (map[i].tok == e->op) op = map[i].op;
    char d[200];
    if (op == OP_COUNT) {
        pmlc_error(&E->P->diag, e->loc, "'%s' is not defined on tensors", ast_op_text(e->op));
        return pmlc_v_err;
    }
    if (op == OP_MATMUL && (a.k != PMLC_V_TENSOR || b.k != PMLC_V_TENSOR)) {
        const ast *bad = a.k != PMLC_V_TENSOR ? e->a : e->b;
        pmlc_error(&E->P->diag, bad->loc, "'@' needs tensors on both sides, not %s",
                   desc(E, a.k != PMLC_V_TENSOR ? a : b, d, sizeof d));
        return pmlc_v_err;
    }
    int32_t like = a.k == PMLC_V_TENSOR ? a.t : b.t;
    int32_t in[2];
    if (pmlc_want_tensor(E, a, e->a->loc, "the left operand", like, &in[0]) ||
        pmlc_want_tensor(E, b, e->b->loc, "the right operand", like, &in[1]))
        return pmlc_v_err;
    pmlc_loc locs[2] = {e->a->loc, e->b->loc};
    return pmlc_v_tensor(pmlc_emit(E, op, 2, in, locs, NULL, 0, NULL, 0, e->loc, ast_op_text(e->op)));
}

static pmlc_value eval_binary(E_t *E, pmlc_frame *F, const ast *e)
{
    int op = e->op;
    pmlc_value a = pmlc_eval(E, F, e->a);
    if (op == TOK_AND || op == TOK_OR) { /* short-circuit, so guards like `n > 0 and m % n == 0` work */
        int x, y;
        if (pmlc_want_bool(E, a, e->a->loc, "the left operand of 'and'/'or'", &x)) return pmlc_v_err;
        if (op == TOK_AND && !x) return pmlc_v_bool(0);
        if (op == TOK_OR && x) return pmlc_v_bool(1);
        pmlc_value b = pmlc_eval(E, F, e->b);
        if (pmlc_want_bool(E, b, e->b->loc, "the right operand of 'and'/'or'", &y)) return pmlc_v_err;
        return pmlc_v_bool(y);
    }
    pmlc_value b = pmlc_eval(E, F, e->b);
    if (a.k == PMLC_V_ERR || b.k == PMLC_V_ERR) return pmlc_v_err;
    if (a.k == PMLC_V_TENSOR || b.k == PMLC_V_TENSOR) return tensor_binary(E, e, a, b);
    if (op == '<' || op == '>' || op == TOK_LE || op == TOK_GE || op == TOK_EQ || op == TOK_NE)
        return compare(E, e, a, b);
    if (a.k == PMLC_V_INT && b.k == PMLC_V_INT) {
        pmlc_size r = {0, {0}};
        pmlc_size_err err;
        switch (op) {
        case '+': err = pmlc_size_add(a.i, b.i, 1, &r); break;
        case '-': err = pmlc_size_add(a.i, b.i, -1, &r); break;
        case '*': err = pmlc_size_mul(a.i, b.i, &r); break;
        case '/': err = pmlc_size_div(a.i, b.i, &r); break;
        case '%': err = pmlc_size_mod(a.i, b.i, &r); break;
        default: goto bad;
        }
        return size_result(E, err, r, e, a, b);
    }
    if (is_number(a) && is_number(b)) {
        double x = num(a), y = num(b), r;
        switch (op) {
        case '+': r = x + y; break;
        case '-': r = x - y; break;
        case '*': r = x * y; break;
        case '/':
            if (y == 0) {
                pmlc_error(&E->P->diag, e->b->loc, "division by zero");
                return pmlc_v_err;
            }
            r = x / y;
            break;
        default: goto bad;
        }
        if (!isfinite(r)) {
            pmlc_error(&E->P->diag, e->loc, "the result of '%s' is out of range", ast_op_text(op));
            return pmlc_v_err;
        }
        return pmlc_v_float(r);
    }
bad:;
    char d1[200], d2[200];
    pmlc_error(&E->P->diag, e->loc, "'%s' is not defined for %s and %s", ast_op_text(op), desc(E, a, d1, sizeof d1),
               desc(E, b, d2, sizeof d2));
    return pmlc_v_err;
}

static pmlc_value eval_unary(E_t *E, pmlc_frame *F, const ast *e)
{
    pmlc_value a = pmlc_eval(E, F, e->a);
    char d[200];
    if (a.k == PMLC_V_ERR) return a;
    if (e->op == TOK_NOT) {
        int b;
        if (pmlc_want_bool(E, a, e->a->loc, "the operand of 'not'", &b)) return pmlc_v_err;
        return pmlc_v_bool(!b);
    }
    if (a.k == PMLC_V_INT) {
        pmlc_size r;
        if (pmlc_size_mul(a.i, pmlc_size_int(-1), &r)) {
            pmlc_error(&E->P->diag, e->loc, "integer overflow in '-'");
            return pmlc_v_err;
        }
        return pmlc_v_size(r);
    }
    if (a.k == PMLC_V_FLOAT) return pmlc_v_float(-a.f);
    if (a.k == PMLC_V_TENSOR) {
        pmlc_loc l = e->a->loc;
        return pmlc_v_tensor(pmlc_emit(E, OP_NEG, 1, &a.t, &l, NULL, 0, NULL, 0, e->loc, "-"));
    }
    pmlc_error(&E->P->diag, e->loc, "'-' is not defined for %s", desc(E, a, d, sizeof d));
    return pmlc_v_err;
}

/* ---- indexing ------------------------------------------------------------------ */

static int index_int(E_t *E, pmlc_frame *F, const ast *x, int64_t dflt, int64_t *out)
{
    if (!x) {
        *out = dflt;
        return 0;
    }
    return pmlc_want_int(E, pmlc_eval(E, F, x), x->loc, "an index", out);
}

static pmlc_value eval_index(E_t *E, pmlc_frame *F, const ast *e)
{
    pmlc_value base = pmlc_eval(E, F, e->a);
    char d[200], s[96];
    if (base.k == PMLC_V_ERR) return base;
    if (base.k == PMLC_V_LIST) {
        int64_t i;
        if (e->list.n != 1 || e->list.v[0]->kind == AST_SLICE) {
            pmlc_error(&E->P->diag, e->loc, "a list takes one integer index");
            return pmlc_v_err;
        }
        if (index_int(E, F, e->list.v[0], 0, &i)) return pmlc_v_err;
        if (i < -base.n || i >= base.n) {
            pmlc_error(&E->P->diag, e->list.v[0]->loc, "index %lld is out of range for a list of %d", (long long)i, base.n);
            return pmlc_v_err;
        }
        return base.items[i < 0 ? i + base.n : i];
    }
    if (base.k != PMLC_V_TENSOR) {
        pmlc_error(&E->P->diag, e->a->loc, "%s cannot be indexed", desc(E, base, d, sizeof d));
        return pmlc_v_err;
    }
    pmlc_shape sh;
    pmlc_node_shape(E, base.t, &sh);
    if (e->list.n > sh.rank) {
        pmlc_error(&E->P->diag, e->loc, "too many indices (%d) for %s", e->list.n, desc(E, base, d, sizeof d));
        return pmlc_v_err;
    }
    int32_t t = base.t;
    pmlc_shape target = sh;
    int dropped = 0;
    target.rank = 0;
    for (int k = 0; k < sh.rank; k++) {
        const ast *it = k < e->list.n ? e->list.v[k] : NULL;
        int is_slice = !it || it->kind == AST_SLICE;
        if (is_slice && (!it || (!it->a && !it->b && !it->c))) { /* ':' keeps the axis */
            target.d[target.rank++] = sh.d[k];
            continue;
        }
        if (!pmlc_size_is_const(sh.d[k])) {
            pmlc_error(&E->P->diag, it->loc, "cannot index axis %d: its size %s is symbolic", k,
                       pmlc_size_str(sh.d[k], &E->P->syms, s, sizeof s));
            return pmlc_v_err;
        }
        int64_t n = sh.d[k].coef, start, stop, step = 1;
        if (is_slice) {
            if (index_int(E, F, it->a, 0, &start) || index_int(E, F, it->b, n, &stop) || index_int(E, F, it->c, 1, &step))
                return pmlc_v_err;
            if (step <= 0) {
                pmlc_error(&E->P->diag, it->c->loc, "a slice step must be positive");
                return pmlc_v_err;
            }
            if (start < 0) start += n;
            if (stop < 0) stop += n;
            if (start < 0) start = 0;
            if (stop > n) stop = n;
            if (start > n) start = n;
            if (stop <= start) {
                pmlc_error(&E->P->diag, it->loc, "slice of axis %d (size %lld) is empty", k, (long long)n);
                return pmlc_v_err;
            }
        } else {
            if (index_int(E, F, it, 0, &start)) return pmlc_v_err;
            if (start < -n || start >= n) {
                pmlc_error(&E->P->diag, it->loc, "index %lld is out of range for axis %d of size %lld", (long long)start,
                           k, (long long)n);
                return pmlc_v_err;
            }
            if (start < 0) start += n;
            stop = start + 1;
            dropped = 1;
        }
        int64_t attr[4] = {k, start, stop, step};
        pmlc_loc l = e->a->loc;
        t = pmlc_emit(E, OP_SLICE, 1, &t, &l, attr, 4, NULL, 0, e->loc, "slice");
        if (t < 0) return pmlc_v_err;
        if (is_slice) target.d[target.rank++] = E->g->nodes.v[t].shape[k];
    }
    if (dropped) {
        pmlc_loc l = e->loc;
        t = pmlc_emit(E, OP_RESHAPE, 1, &t, &l, NULL, 0, &target, 0, e->loc, "index");
    }
    return pmlc_v_tensor(t);
}

/* ---- calls ---------------------------------------------------------------------- */

int pmlc_bind_args(E_t *E, pmlc_frame *F, const ast *call, const char *fname, const char *const *names, int n,
                   pmlc_value *vals, pmlc_loc *locs, int *given)
{
    int bad = 0, pos = 0, seen_kw = 0;
    for (int i = 0; i < n; i++) {
        vals[i] = pmlc_v_none;
        given[i] = 0;
        locs[i] = call->loc;
    }
    for (int k = 0; k < call->list.n; k++) {
        const ast *arg = call->list.v[k];
        int slot;
        if (arg->kind == AST_KWARG) {
            seen_kw = 1;
            for (slot = 0; slot < n && strcmp(names[slot], arg->name); slot++) {}
            if (slot == n) {
                const char *s = pmlc_suggest(arg->name, names, n);
                if (s) pmlc_error(&E->P->diag, arg->name_loc, "'%s' has no parameter '%s'; did you mean '%s'?", fname, arg->name, s);
                else pmlc_error(&E->P->diag, arg->name_loc, "'%s' has no parameter '%s'", fname, arg->name);
                bad = 1;
                continue;
            }
        } else {
            if (seen_kw) {
                pmlc_error(&E->P->diag, arg->loc, "a positional argument cannot follow keyword arguments");
                bad = 1;
                continue;
            }
            slot = pos++;
            if (slot >= n) {
                pmlc_error(&E->P->diag, arg->loc, "too many arguments: '%s' takes %d", fname, n);
                bad = 1;
                continue;
            }
        }
        if (given[slot]) {
            pmlc_error(&E->P->diag, arg->loc, "argument '%s' of '%s' is given twice", names[slot], fname);
            bad = 1;
            continue;
        }
        const ast *x = arg->kind == AST_KWARG ? arg->a : arg;
        vals[slot] = pmlc_eval(E, F, x);
        locs[slot] = x->loc;
        given[slot] = 1;
        if (vals[slot].k == PMLC_V_ERR) bad = 1;
    }
    return bad;
}

static int check_annotation(E_t *E, const ast *fp, pmlc_value v, pmlc_loc loc, const char *fname)
{
    if (!fp->a || v.k == PMLC_V_ERR) return 0;
    const ast *ty = fp->a;
    int dt = ty->name ? pmlc_dtype_from_name(ty->name) : -1;
    char d[200];
    if (ty->name && dt < 0) {
        pmlc_error(&E->P->diag, ty->loc, "unknown type '%s' (types are f32, bf16, f16, i32)", ty->name);
        return 1;
    }
    if (v.k != PMLC_V_TENSOR || (dt >= 0 && (int)E->g->nodes.v[v.t].dtype != dt)) {
        pmlc_error(&E->P->diag, loc, "argument '%s' of '%s' must be a %s tensor, not %s", fp->name, fname,
                   dt >= 0 ? ty->name : "", desc(E, v, d, sizeof d));
        pmlc_note(&E->P->diag, fp->loc, "'%s' is declared here", fp->name);
        return 1;
    }
    return 0;
}

static int exec_block(E_t *E, pmlc_frame *F, const ast *block);

static pmlc_value call_fn(E_t *E, pmlc_frame *F, const ast *call, const ast *fn)
{
    pmlc_program *P = E->P;
    if (pmlc_strmap_get(&E->active, fn->name)) {
        pmlc_error(&P->diag, call->name_loc, "recursive call of '%s': functions are inlined, so they cannot recurse",
                   fn->name);
        return pmlc_v_err;
    }
    if (E->call_depth >= PMLC_MAX_CALL_DEPTH) {
        pmlc_error(&P->diag, call->loc, "calls nested too deeply (the limit is %d)", PMLC_MAX_CALL_DEPTH);
        E->aborted = 1;
        return pmlc_v_err;
    }
    int n = fn->list.n;
    const char **names = pmlc_arena_alloc(E->A, sizeof(char *) * (size_t)(n + 1));
    pmlc_value *vals = pmlc_arena_alloc(E->A, sizeof(pmlc_value) * (size_t)(n + 1));
    pmlc_loc *locs = pmlc_arena_alloc(E->A, sizeof(pmlc_loc) * (size_t)(n + 1));
    int *given = pmlc_arena_alloc(E->A, sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) names[i] = fn->list.v[i]->name;
    if (pmlc_bind_args(E, F, call, fn->name, names, n, vals, locs, given)) return pmlc_v_err;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!given[i] && !fn->list.v[i]->b) {
            pmlc_error(&P->diag, call->loc, "missing argument '%s' in call to '%s'", names[i], fn->name);
            pmlc_note(&P->diag, fn->name_loc, "'%s' is defined here", fn->name);
            bad = 1;
        }
    }
    if (bad) return pmlc_v_err;
    pmlc_scope *S = child_scope(E, F, call);
    if (!S) return pmlc_v_err;

    pmlc_frame callee = {0};
    callee.scope = S;
    for (int i = 0; i < n; i++) {
        const ast *fp = fn->list.v[i];
        pmlc_value v = vals[i];
        if (!given[i]) { /* defaults see the parameters before them */
            v = pmlc_eval(E, &callee, fp->b);
            locs[i] = fp->b->loc;
        }
        if (v.k == PMLC_V_ERR || check_annotation(E, fp, v, locs[i], fn->name)) return pmlc_v_err;
        set_var(E, &callee, fp->name, v);
    }
    pmlc_strmap_put(E->A, &E->active, fn->name, (void *)fn);
    E->call_depth++;
    exec_block(E, &callee, fn->b);
    E->call_depth--;
    pmlc_strmap_put(E->A, &E->active, fn->name, NULL);
    if (E->aborted) return pmlc_v_err;
    return callee.returned ? callee.ret : pmlc_v_none;
}

static pmlc_value eval_call(E_t *E, pmlc_frame *F, const ast *call)
{
    pmlc_program *P = E->P;
    const ast *fn = pmlc_strmap_get(&P->globals, call->name);
    if (fn && fn->kind == AST_FN) return call_fn(E, F, call, fn);
    int b = pmlc_builtin_find(call->name);
    if (b >= 0) {
        if (call->label) {
            pmlc_error(&P->diag, call->label_loc, "'%s' is a built-in operation: it has no parameters to name",
                       call->name);
            return pmlc_v_err;
        }
        return pmlc_builtin_call(E, F, call, b);
    }
    if (fn) {
        pmlc_error(&P->diag, call->name_loc, "'%s' is a %s, not a function", call->name,
                   fn->kind == AST_MODEL ? "model" : "constant");
        return pmlc_v_err;
    }
    const char *cands[512];
    int nc = pmlc_builtin_names(cands, 256);
    for (int i = 0; i < P->globals.cap && nc < 512; i++)
        if (P->globals.keys[i] && ((const ast *)P->globals.vals[i])->kind == AST_FN) cands[nc++] = P->globals.keys[i];
    const char *s = pmlc_suggest(call->name, cands, nc);
    if (s) pmlc_error(&P->diag, call->name_loc, "unknown function '%s'; did you mean '%s'?", call->name, s);
    else pmlc_error(&P->diag, call->name_loc, "unknown function '%s'", call->name);
    return pmlc_v_err;
}

/* ---- expressions ----------------------------------------------------------------- */

pmlc_value pmlc_eval(E_t *E, pmlc_frame *F, const ast *e)
{
    if (over_limit(E, e->loc)) return pmlc_v_err;
    pmlc_value v = pmlc_v_none;
    switch (e->kind) {
    case AST_INT: return pmlc_v_int(e->ival);
    case AST_FLOAT: return pmlc_v_float(e->fval);
    case AST_BOOL: return pmlc_v_bool((int)e->ival);
    case AST_STRING:
        v.k = PMLC_V_STR;
        v.s = e->name;
        return v;
    case AST_DEVICE:
        v.k = PMLC_V_DEVICE;
        v.s = e->name;
        v.i = pmlc_size_int(e->ival);
        return v;
    case AST_NAME: return eval_name(E, F, e);
    case AST_UNARY: return eval_unary(E, F, e);
    case AST_BINARY: return eval_binary(E, F, e);
    case AST_CALL: return eval_call(E, F, e);
    case AST_INDEX: return eval_index(E, F, e);
    case AST_LIST:
        v.k = PMLC_V_LIST;
        v.n = e->list.n;
        v.items = pmlc_arena_alloc(E->A, sizeof(pmlc_value) * (size_t)(v.n ? v.n : 1));
        for (int i = 0; i < v.n; i++) {
            v.items[i] = pmlc_eval(E, F, e->list.v[i]);
            if (v.items[i].k == PMLC_V_ERR) return pmlc_v_err;
        }
        return v;
    default:
        pmlc_error(&E->P->diag, e->loc, "a %s is not an expression", ast_kind_name(e->kind));
        return pmlc_v_err;
    }
}

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
        const char *s = name ? pmlc_suggest(name, init_names, 6) : NULL;
        if (s) pmlc_error(&E->P->diag, init->loc, "unknown initializer '%s'; did you mean '%s'?", name, s);
        else
            pmlc_error(&E->P->diag, init->loc, "unknown initializer%s%s%s (use zeros, ones, normal(std), uniform(a, b), "
                       "kaiming_uniform or xavier_uniform)", name ? " '" : "", name ? name : "", name ? "'" : "");
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
static int eval_type(E_t *E, pmlc_frame *F, const ast *ty, pmlc_dtype dt_default, pmlc_dtype *dt, pmlc_shape *sh)
{
    *dt = dt_default;
    if (ty->name) {
        int d = pmlc_dtype_from_name(ty->name);
        if (d < 0) {
            static const char *const dts[] = {"f32", "bf16", "f16", "i32"};
            const char *s = pmlc_suggest(ty->name, dts, 4);
            if (s) pmlc_error(&E->P->diag, ty->name_loc, "unknown type '%s'; did you mean '%s'?", ty->name, s);
            else pmlc_error(&E->P->diag, ty->name_loc, "unknown type '%s' (types are f32, bf16, f16, i32)", ty->name);
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
    if (eval_type(E, F, st->a, PMLC_F32, &p.dtype, &sh)) return 1;
    if (!pmlc_dtype_is_float(p.dtype)) {
        pmlc_error(&E->P->diag, st->a->loc, "parameters must have a floating-point type, not %s", pmlc_dtype_name(p.dtype));
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
    if (claim(E, F->scope, st->name, st->name_loc, "parameter name")) return 1;
    p.name = join(E, F->scope->path, st->name);
    p.layer = F->is_model ? p.name : F->scope->layer;
    p.loc = st->loc;
    p.frozen_from = -1;
    int32_t t = pmlc_emit_source(E, OP_PARAM, p.dtype, &sh, 0, st->loc);
    if (t < 0) return 1;
    p.node = t;
    g->nodes.v[t].param = g->params.n;
    g->nodes.v[t].label = p.name;
    PMLC_PUSH(E->A, g->params, p);
    set_var(E, F, st->name, pmlc_v_tensor(t));
    return 0;
}

static int exec_stage(E_t *E, pmlc_frame *F, const ast *st)
{
    pmlc_graph *g = E->g;
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
    int rc = exec_block(E, F, st->b);
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
        pmlc_error(&E->P->diag, v->loc, "a model's placement is 'auto(stages = N)' (or write stage blocks)");
        return 1;
    }
    static const char *const names[] = {"stages"};
    pmlc_value val;
    pmlc_loc l;
    int given;
    if (pmlc_bind_args(E, F, v, "auto", names, 1, &val, &l, &given)) return 1;
    int64_t n;
    if (!given) {
        pmlc_error(&E->P->diag, v->loc, "missing argument 'stages' of 'auto'");
        return 1;
    }
    if (pmlc_want_int(E, val, l, "the number of stages", &n)) return 1;
    if (n < 1 || n > 1024) {
        pmlc_error(&E->P->diag, l, "the number of stages must be between 1 and 1024, not %lld", (long long)n);
        return 1;
    }
    g->auto_place = 1;
    g->n_stages = (int)n;
    g->place_loc = st->loc;
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
            pmlc_error(&E->P->diag, st->a->loc, "'for' runs over a list or a range a..b, not %s", desc(E, list, d, sizeof d));
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
        if (st->kind == AST_FOR) set_var(E, F, st->name, list.k == PMLC_V_LIST ? list.items[i] : pmlc_v_int(i));
        rc = exec_block(E, F, st->b);
    }
    F->loops.n--;
    return rc;
}

static int exec_stmt(E_t *E, pmlc_frame *F, const ast *st)
{
    if (over_limit(E, st->loc)) return 1;
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
        if (v.k == PMLC_V_TENSOR && F->is_model) E->g->nodes.v[v.t].label = st->name;
        set_var(E, F, st->name, v);
        return 0;
    }
    case AST_EXPR_STMT: pmlc_eval(E, F, st->a); return 0;
    case AST_RETURN:
        F->ret = st->a ? pmlc_eval(E, F, st->a) : pmlc_v_none;
        F->ret_loc = st->a ? st->a->loc : st->loc;
        F->returned = 1;
        return 0;
    case AST_PARAM:
        if (exec_param(E, F, st)) {
            set_var(E, F, st->name, pmlc_v_err); /* later uses stay quiet */
            return 1;
        }
        return 0;
    case AST_IF: {
        int c;
        if (pmlc_want_bool(E, pmlc_eval(E, F, st->a), st->a->loc, "an 'if' condition", &c)) return 1;
        if (c) return exec_block(E, F, st->b);
        if (!st->c) return 0;
        return st->c->kind == AST_IF ? exec_stmt(E, F, st->c) : exec_block(E, F, st->c);
    }
    case AST_REPEAT:
    case AST_FOR: return exec_loop(E, F, st);
    case AST_STAGE: return exec_stage(E, F, st);
    case AST_PLACE: return exec_place(E, F, st);
    case AST_ASSERT: {
        int c;
        if (pmlc_want_bool(E, pmlc_eval(E, F, st->a), st->a->loc, "an assertion", &c)) return 1;
        if (c) return 0;
        const char *msg = "assertion failed";
        if (st->b) {
            pmlc_value m = pmlc_eval(E, F, st->b);
            if (m.k == PMLC_V_STR) msg = m.s;
        }
        pmlc_error(&E->P->diag, st->a->loc, "%s", msg);
        return 1;
    }
    default:
        pmlc_error(&E->P->diag, st->loc, "a %s is not a statement here", ast_kind_name(st->kind));
        return 1;
    }
}

/* Runs statements until a return. Errors in one statement do not stop the next, so
 * independent mistakes are all reported; a hit limit does. */
static int exec_block(E_t *E, pmlc_frame *F, const ast *block)
{
    int bad = 0;
    for (int i = 0; i < block->list.n && !F->returned && !E->aborted && !E->P->diag.stop; i++)
        bad |= exec_stmt(E, F, block->list.v[i]);
    return bad || E->aborted;
}

/* ---- models ------------------------------------------------------------------- */

static int has_stage_block(const ast *b)
{
    if (!b) return 0;
    for (int i = 0; i < b->list.n; i++) {
        const ast *s = b->list.v[i];
        if (s->kind == AST_STAGE) return 1;
        if ((s->kind == AST_IF || s->kind == AST_REPEAT || s->kind == AST_FOR) &&
            (has_stage_block(s->b) || (s->c && s->c->kind == AST_BLOCK && has_stage_block(s->c)) ||
             (s->c && s->c->kind == AST_IF && has_stage_block(s->c->b))))
            return 1;
    }
    return 0;
}

static int same_type(E_t *E, int32_t t, pmlc_dtype dt, const pmlc_shape *sh)
{
    const ir_node *n = &E->g->nodes.v[t];
    if (n->dtype != dt || n->rank != sh->rank) return 0;
    for (int k = 0; k < sh->rank; k++)
        if (!pmlc_size_eq(n->shape[k], sh->d[k])) return 0;
    return 1;
}

/* Adds labels and the loss after the model output, on the last stage. */
static int add_loss(E_t *E, pmlc_frame *F, const ast *loss_fn, pmlc_loc loss_loc)
{
    pmlc_graph *g = E->g;
    pmlc_program *P = E->P;
    char d[200];
    if (loss_fn->list.n < 2) {
        pmlc_error(&P->diag, loss_loc, "the loss '%s' must take (output, labels)", loss_fn->name);
        pmlc_note(&P->diag, loss_fn->name_loc, "'%s' is defined here", loss_fn->name);
        return 1;
    }
    const ir_node *out = &g->nodes.v[g->output];
    pmlc_shape sh = {out->rank, {{0}}};
    memcpy(sh.d, out->shape, sizeof(pmlc_size) * (size_t)out->rank);
    pmlc_dtype dt = out->dtype;
    const ast *ann = loss_fn->list.v[1]->a;
    if (ann && ann->name && !strcmp(ann->name, "i32")) {
        dt = PMLC_I32;
        if (sh.rank > 0) sh.rank--;
    }
    E->unit++;
    E->cur_stage = g->staged ? g->n_stages - 1 : -1;
    g->labels = pmlc_emit_source(E, OP_INPUT, dt, &sh, 0, loss_loc);
    if (g->labels < 0) return 1;
    g->nodes.v[g->labels].label = "labels";
    set_var(E, F, "labels", pmlc_v_tensor(g->labels));
    set_var(E, F, "output", pmlc_v_tensor(g->output));
    /* Call it as `loss(output, labels)` written at the train block's loss field. */
    ast *call = ast_new(E->A, AST_CALL, loss_loc);
    call->name = loss_fn->name;
    call->name_loc = loss_loc;
    call->label = "loss";
    call->label_loc = loss_loc;
    ast *a0 = ast_new(E->A, AST_NAME, loss_loc), *a1 = ast_new(E->A, AST_NAME, loss_loc);
    a0->name = "output";
    a1->name = "labels";
    PMLC_PUSH(E->A, call->list, a0);
    PMLC_PUSH(E->A, call->list, a1);
    pmlc_value v = call_fn(E, F, call, loss_fn);
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_TENSOR || g->nodes.v[v.t].rank != 0 || !pmlc_dtype_is_float(g->nodes.v[v.t].dtype)) {
        pmlc_error(&P->diag, loss_loc, "the loss '%s' must return a scalar (shape []), but it returns %s", loss_fn->name,
                   desc(E, v, d, sizeof d));
        return 1;
    }
    g->loss = v.t;
    g->nodes.v[v.t].label = "loss";
    return 0;
}

pmlc_graph *pmlc_elab_model(pmlc_program *P, const ast *model, const ast *loss_fn, pmlc_loc loss_loc)
{
    E_t E = {0};
    E.P = P;
    E.A = &P->arena;
    E.cur_stage = -1;
    E.stage_err_unit = -1;
    pmlc_graph *g = pmlc_arena_alloc(E.A, sizeof *g);
    g->name = model->name;
    g->decl = model;
    g->output = g->labels = g->loss = -1;
    g->n_stages = 1;
    g->batch_sym = -1;
    g->staged = has_stage_block(model->b);
    E.g = g;

    pmlc_scope *root = pmlc_arena_alloc(E.A, sizeof *root);
    pmlc_frame F = {0};
    F.scope = root;
    F.is_model = 1;
    int bad = 0;

    /* Inputs: unknown names in their types become symbolic dimensions. */
    F.bind_symbols = 1;
    for (int i = 0; i < model->list.n; i++) {
        const ast *in = model->list.v[i];
        pmlc_dtype dt;
        pmlc_shape sh;
        if (!in->a) {
            pmlc_error(&P->diag, in->loc, "model input '%s' needs a type, such as f32[B, 784]", in->name);
            bad = 1;
            continue;
        }
        if (in->b) pmlc_error(&P->diag, in->b->loc, "model inputs cannot have default values");
        if (eval_type(&E, &F, in->a, PMLC_F32, &dt, &sh)) {
            bad = 1;
            continue;
        }
        if (!in->a->ival || sh.rank == 0) {
            pmlc_error(&P->diag, in->a->loc, "model input '%s' needs a shape with a batch dimension, such as %s[B, ...]",
                       in->name, pmlc_dtype_name(dt));
            bad = 1;
            continue;
        }
        if (pmlc_strmap_get(&F.vars, in->name) && !pmlc_strmap_get(&root->used, in->name)) {
            pmlc_error(&P->diag, in->name_loc, "'%s' is already a symbolic dimension", in->name);
            bad = 1;
            continue;
        }
        if (claim(&E, root, in->name, in->name_loc, "input")) {
            bad = 1;
            continue;
        }
        E.cur_stage = 0;
        int32_t t = pmlc_emit_source(&E, OP_INPUT, dt, &sh, 0, in->loc);
        E.cur_stage = -1;
        if (t < 0) return NULL;
        g->nodes.v[t].label = in->name;
        ir_input rec = {in->name, t, in->loc};
        PMLC_PUSH(E.A, g->inputs, rec);
        set_var(&E, &F, in->name, pmlc_v_tensor(t));
        if (i == 0) {
            pmlc_size b0 = sh.d[0];
            int n_sym = 0, sym = -1;
            for (int s = 0; s < PMLC_MAX_SYMS; s++)
                if (b0.pow[s]) n_sym += b0.pow[s], sym = s;
            if (n_sym == 1 && b0.coef == 1) g->batch_sym = sym;
        }
    }
    F.bind_symbols = 0;
    if (bad || P->diag.stop) return NULL; /* the output type may use the inputs' symbols */
    pmlc_dtype out_dt = PMLC_F32;
    pmlc_shape out_sh = {0, {{0}}};
    if (eval_type(&E, &F, model->a, PMLC_F32, &out_dt, &out_sh) || P->diag.stop) return NULL;

    bad = exec_block(&E, &F, model->b);
    if (E.aborted || P->diag.stop) return NULL;
    if (g->staged && E.next_stage == 0) bad = 1;
    if (!F.returned) {
        if (!bad) pmlc_error(&P->diag, model->name_loc, "model '%s' does not return its output", model->name);
        return NULL;
    }
    char d1[200], d2[256];
    if (F.ret.k != PMLC_V_TENSOR) {
        if (F.ret.k != PMLC_V_ERR)
            pmlc_error(&P->diag, F.ret_loc, "a model returns a tensor, not %s", desc(&E, F.ret, d1, sizeof d1));
        return NULL;
    }
    if (!same_type(&E, F.ret.t, out_dt, &out_sh)) {
        pmlc_error(&P->diag, F.ret_loc, "model '%s' returns %s but declares %s", model->name,
                   desc(&E, F.ret, d1, sizeof d1), pmlc_type_str(out_dt, &out_sh, &P->syms, d2, sizeof d2));
        pmlc_note(&P->diag, model->a->loc, "the output type is declared here");
        return NULL;
    }
    g->output = F.ret.t;
    if (bad) return NULL;
    if (loss_fn && add_loss(&E, &F, loss_fn, loss_loc)) return NULL;
    if (E.aborted) return NULL;
    g->n_units = E.unit + 1;
    return g;
}

pmlc_value pmlc_eval_const(pmlc_program *P, const ast *e)
{
    E_t E = {0};
    E.P = P;
    E.A = &P->arena;
    E.cur_stage = -1;
    pmlc_frame F = {0};
    F.no_tensors = 1;
    return pmlc_eval(&E, &F, e);
}

int pmlc_eval_args(pmlc_program *P, const ast *call, const char *fname, const char *const *names, int n,
                   pmlc_value *vals, pmlc_loc *locs, int *given)
{
    E_t E = {0};
    E.P = P;
    E.A = &P->arena;
    E.cur_stage = -1;
    pmlc_frame F = {0};
    F.no_tensors = 1;
    return pmlc_bind_args(&E, &F, call, fname, names, n, vals, locs, given);
}

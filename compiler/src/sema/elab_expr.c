/* elab_expr.c — evaluating expressions: names and constants, arithmetic on numbers,
 * sizes and tensors, comparisons, and indexing/slicing. Tensor arithmetic emits ops
 * through pmlc_emit, which runs the op table's shape rules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml_parser.h"
#include "sema/elab_int.h"

/* ---- names -------------------------------------------------------------------- */

static void unknown_name(E_t *E, pmlc_frame *F, const ast *n)
{
    pmlc_program *P = E->P;
    PMLC_VEC(const char *) cands = {0};
    for (int i = 0; i < F->vars.cap; i++)
        if (F->vars.keys[i]) PMLC_PUSH(E->A, cands, F->vars.keys[i]);
    for (int i = 0; i < P->globals.cap; i++)
        if (P->globals.keys[i]) PMLC_PUSH(E->A, cands, P->globals.keys[i]);
    pmlc_error_unknown(&P->diag, n->loc, n->name, cands.v, cands.n, "", "unknown name '%s'", n->name);
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
        pmlc_set_var(E, F, n->name, r);
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
        pmlc_error(&P->diag, decl->a->loc, "a constant must be a compile-time value, not %s",
                   pmlc_desc(&sub, v, d, sizeof d));
        v = pmlc_v_err;
    }
    if (sub.aborted) E->aborted = 1;
    *cached = v;
    return v;
}

/* ---- arithmetic ------------------------------------------------------------------ */

static int is_number(pmlc_value v) { return v.k == PMLC_V_FLOAT || (v.k == PMLC_V_INT && pmlc_size_is_const(v.i)); }

static double num(pmlc_value v) { return v.k == PMLC_V_FLOAT ? v.f : (double)v.i.coef; }

static pmlc_value size_result(E_t *E, pmlc_size_err err, pmlc_size r, const ast *e, pmlc_value a, pmlc_value b)
{
    char s1[128], s2[128];
    switch (err) {
    case PMLC_SIZE_OK:
        return pmlc_v_size(r);
    case PMLC_SIZE_OVERFLOW:
        pmlc_error(&E->P->diag, e->loc, "integer overflow in '%s'", ast_op_text(e->op));
        break;
    case PMLC_SIZE_ZERO:
        pmlc_error(&E->P->diag, e->b->loc, "division by zero");
        break;
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
        case '<':
            r = x < y;
            break;
        case '>':
            r = x > y;
            break;
        case TOK_LE:
            r = x <= y;
            break;
        case TOK_GE:
            r = x >= y;
            break;
        case TOK_EQ:
            r = x == y;
            break;
        default:
            r = x != y;
            break;
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
    pmlc_error(&E->P->diag, e->loc, "cannot compare %s with %s", pmlc_desc(E, a, d1, sizeof d1),
               pmlc_desc(E, b, d2, sizeof d2));
    return pmlc_v_err;
symbolic:
    pmlc_error(&E->P->diag, e->loc, "cannot decide '%s' at compile time: it depends on a symbolic dimension",
               ast_op_text(op));
    return pmlc_v_err;
}

static pmlc_value tensor_binary(E_t *E, const ast *e, pmlc_value a, pmlc_value b)
{
    static const struct {
        int tok;
        pmlc_opcode op;
    } map[] = {{'+', OP_ADD}, {'-', OP_SUB},   {'*', OP_MUL},   {'/', OP_DIV},   {'@', OP_MATMUL}, {'<', OP_LT},
               {'>', OP_GT},  {TOK_LE, OP_LE}, {TOK_GE, OP_GE}, {TOK_EQ, OP_EQ}, {TOK_NE, OP_NE}};
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
                   pmlc_desc(E, a.k != PMLC_V_TENSOR ? a : b, d, sizeof d));
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
        case '+':
            err = pmlc_size_add(a.i, b.i, 1, &r);
            break;
        case '-':
            err = pmlc_size_add(a.i, b.i, -1, &r);
            break;
        case '*':
            err = pmlc_size_mul(a.i, b.i, &r);
            break;
        case '/':
            err = pmlc_size_div(a.i, b.i, &r);
            break;
        case '%':
            err = pmlc_size_mod(a.i, b.i, &r);
            break;
        default:
            goto bad;
        }
        return size_result(E, err, r, e, a, b);
    }
    if (is_number(a) && is_number(b)) {
        double x = num(a), y = num(b), r;
        switch (op) {
        case '+':
            r = x + y;
            break;
        case '-':
            r = x - y;
            break;
        case '*':
            r = x * y;
            break;
        case '/':
            if (y == 0) {
                pmlc_error(&E->P->diag, e->b->loc, "division by zero");
                return pmlc_v_err;
            }
            r = x / y;
            break;
        default:
            goto bad;
        }
        if (!isfinite(r)) {
            pmlc_error(&E->P->diag, e->loc, "the result of '%s' is out of range", ast_op_text(op));
            return pmlc_v_err;
        }
        return pmlc_v_float(r);
    }
bad:;
    char d1[200], d2[200];
    pmlc_error(&E->P->diag, e->loc, "'%s' is not defined for %s and %s", ast_op_text(op),
               pmlc_desc(E, a, d1, sizeof d1), pmlc_desc(E, b, d2, sizeof d2));
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
    pmlc_error(&E->P->diag, e->loc, "'-' is not defined for %s", pmlc_desc(E, a, d, sizeof d));
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
            pmlc_error(&E->P->diag, e->list.v[0]->loc, "index %lld is out of range for a list of %d", (long long)i,
                       base.n);
            return pmlc_v_err;
        }
        return base.items[i < 0 ? i + base.n : i];
    }
    if (base.k != PMLC_V_TENSOR) {
        pmlc_error(&E->P->diag, e->a->loc, "%s cannot be indexed", pmlc_desc(E, base, d, sizeof d));
        return pmlc_v_err;
    }
    pmlc_shape sh;
    pmlc_node_shape(E, base.t, &sh);
    if (e->list.n > sh.rank) {
        pmlc_error(&E->P->diag, e->loc, "too many indices (%d) for %s", e->list.n, pmlc_desc(E, base, d, sizeof d));
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
            if (index_int(E, F, it->a, 0, &start) || index_int(E, F, it->b, n, &stop) ||
                index_int(E, F, it->c, 1, &step))
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
                pmlc_error(&E->P->diag, it->loc, "index %lld is out of range for axis %d of size %lld",
                           (long long)start, k, (long long)n);
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

/* ---- expressions ----------------------------------------------------------------- */

pmlc_value pmlc_eval(E_t *E, pmlc_frame *F, const ast *e)
{
    if (pmlc_over_limit(E, e->loc)) return pmlc_v_err;
    pmlc_value v = pmlc_v_none;
    switch (e->kind) {
    case AST_INT:
        return pmlc_v_int(e->ival);
    case AST_FLOAT:
        return pmlc_v_float(e->fval);
    case AST_BOOL:
        return pmlc_v_bool((int)e->ival);
    case AST_STRING:
        v.k = PMLC_V_STR;
        v.s = e->name;
        return v;
    case AST_DEVICE:
        v.k = PMLC_V_DEVICE;
        v.s = e->name;
        v.i = pmlc_size_int(e->ival);
        return v;
    case AST_NAME:
        return eval_name(E, F, e);
    case AST_UNARY:
        return eval_unary(E, F, e);
    case AST_BINARY:
        return eval_binary(E, F, e);
    case AST_CALL:
        return pmlc_eval_call(E, F, e);
    case AST_INDEX:
        return eval_index(E, F, e);
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

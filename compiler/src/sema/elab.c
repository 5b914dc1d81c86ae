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

#include "pml_parser.h"
#include "sema/elab_int.h"
#include "sema/train_blocks.h"

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

/* Appends an op on the current stage and unit; -1 past the size limit. */
static int32_t add_node(E_t *E, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, pmlc_loc loc, int n_in,
                        const int32_t *in, const int64_t *attr, int n_attr, double fval)
{
    pmlc_graph *g = E->g;
    if (!g || g->nodes.n >= PMLC_MAX_NODES) {
        if (!E->aborted) pmlc_error(&E->P->diag, loc, "model too large: more than %d operations", PMLC_MAX_NODES);
        E->aborted = 1;
        return -1;
    }
    int stage = node_stage(E, loc);
    if (stage == -2) return -1;
    ir_node n = {0};
    n.op = op;
    n.dtype = dt;
    n.n_in = n_in;
    n.n_attr = n_attr;
    n.fval = fval;
    n.stage = stage;
    n.unit = E->unit;
    n.param = -1;
    n.loc = loc;
    return pmlc_graph_push(E->A, g, &n, sh, in, attr);
}

int32_t pmlc_emit_source(E_t *E, pmlc_opcode op, pmlc_dtype dt, const pmlc_shape *sh, double fval, pmlc_loc loc)
{
    if (!E->g) {
        pmlc_error(&E->P->diag, loc, "a constant must be a compile-time value, not a tensor");
        return -1;
    }
    return add_node(E, op, dt, sh, loc, 0, NULL, NULL, 0, fval);
}

int32_t pmlc_emit(E_t *E, pmlc_opcode op, int n_in, const int32_t *in, const pmlc_loc *in_locs, const int64_t *attr,
                  int n_attr, const pmlc_shape *target, double fval, pmlc_loc loc, const char *opname)
{
    if (E->aborted) return -1;
    if (!E->g) {
        pmlc_error(&E->P->diag, loc, "a constant must be a compile-time value, not a tensor");
        return -1;
    }
    if (n_in > PMLC_GRAPH_MAX_IN) {
        pmlc_error(&E->P->diag, loc, "'%s' takes at most %d tensors", opname, PMLC_GRAPH_MAX_IN);
        return -1;
    }
    pmlc_shape scratch[PMLC_GRAPH_MAX_IN];
    pmlc_infer a;
    if (pmlc_graph_infer(E->g, op, n_in, in, attr, n_attr, target, &E->P->syms, opname, scratch, &a)) {
        pmlc_loc where = a.bad >= 0 && a.bad < n_in && in_locs ? in_locs[a.bad] : loc;
        pmlc_error(&E->P->diag, where, "%s", a.msg);
        return -1;
    }
    return add_node(E, op, a.out_dt, &a.out, loc, n_in, in, attr, n_attr, fval);
}

/* ---- frames, scopes, names ---------------------------------------------------- */

void pmlc_set_var(E_t *E, pmlc_frame *F, const char *name, pmlc_value v)
{
    pmlc_value *slot = pmlc_strmap_get(&F->vars, name);
    if (!slot) {
        slot = pmlc_arena_alloc(E->A, sizeof *slot);
        pmlc_strmap_put(E->A, &F->vars, name, slot);
    }
    *slot = v;
}

const char *pmlc_join(E_t *E, const char *path, const char *name)
{
    return path ? pmlc_arena_printf(E->A, "%s.%s", path, name) : name;
}

/* Claims `name` in scope S; reports a clash with its first use. */
int pmlc_claim(E_t *E, pmlc_scope *S, const char *name, pmlc_loc loc, const char *what)
{
    pmlc_loc *prev = pmlc_strmap_get(&S->used, name);
    if (prev) {
        pmlc_error(&E->P->diag, loc, "%s '%s' is already used in %s%s%s", what, pmlc_join(E, S->path, name),
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
        for (int i = 0; i < F->loops.n; i++) name = pmlc_arena_printf(E->A, "%s.%lld", name, (long long)F->loops.v[i]);
        if (pmlc_claim(E, parent, name, call->label_loc, "name")) return NULL;
    } else {
        int *counter = pmlc_strmap_get(&parent->counters, call->name);
        if (!counter) {
            counter = pmlc_arena_alloc(E->A, sizeof *counter);
            pmlc_strmap_put(E->A, &parent->counters, call->name, counter);
        }
        do name = pmlc_arena_printf(E->A, "%s_%d", call->name, (*counter)++);
        while (pmlc_strmap_get(&parent->used, name));
        pmlc_claim(E, parent, name, call->name_loc, "name");
    }
    S->path = pmlc_join(E, parent->path, name);
    S->layer = F->is_model ? S->path : parent->layer;
    return S;
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
                pmlc_error_unknown(&E->P->diag, arg->name_loc, arg->name, names, n, "", "'%s' has no parameter '%s'",
                                   fname, arg->name);
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
        const char *what = !ty->name            ? "a"
                           : ty->name[0] == 'b' ? "a bf16"
                           : dt == PMLC_I32     ? "an i32"
                           : dt == PMLC_F16     ? "an f16"
                                                : "an f32";
        pmlc_error(&E->P->diag, loc, "argument '%s' of '%s' must be %s tensor, not %s", fp->name, fname, what,
                   pmlc_desc(E, v, d, sizeof d));
        pmlc_note(&E->P->diag, fp->loc, "'%s' is declared here", fp->name);
        return 1;
    }
    return 0;
}

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
        pmlc_set_var(E, &callee, fp->name, v);
    }
    pmlc_strmap_put(E->A, &E->active, fn->name, (void *)fn);
    E->calls[E->call_depth++] = call;
    int32_t begin = E->g ? E->g->nodes.n : 0;
    pmlc_exec_block(E, &callee, fn->b);
    E->call_depth--;
    if (E->g && !E->teacher) { /* what `recompute PATTERN` may name (train_blocks.h) */
        ir_scope rec = {S->path, call->loc, begin, E->g->nodes.n};
        PMLC_PUSH(E->A, E->g->scopes, rec);
    }
    pmlc_strmap_put(E->A, &E->active, fn->name, NULL);
    if (E->aborted) return pmlc_v_err;
    if (call->label && callee.returned && callee.ret.k == PMLC_V_TENSOR) { /* a hidden state to match */
        int32_t *t = pmlc_arena_alloc(E->A, sizeof *t);
        *t = callee.ret.t;
        pmlc_strmap_put(E->A, &E->named, S->path, t);
    }
    return callee.returned ? callee.ret : pmlc_v_none;
}

pmlc_value pmlc_eval_call(E_t *E, pmlc_frame *F, const ast *call)
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
    pmlc_error_unknown(&P->diag, call->name_loc, call->name, cands, nc, "", "unknown function '%s'", call->name);
    return pmlc_v_err;
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

pmlc_value pmlc_call_at(E_t *E, pmlc_frame *F, const ast *fn, pmlc_loc loc, const char *label, const char *const *args,
                        int n)
{
    ast *call = ast_new(E->A, AST_CALL, loc);
    call->name = fn->name;
    call->name_loc = loc;
    call->label = label;
    call->label_loc = loc;
    for (int i = 0; i < n; i++) {
        ast *a = ast_new(E->A, AST_NAME, loc);
        a->name = args[i];
        PMLC_PUSH(E->A, call->list, a);
    }
    pmlc_value v = call_fn(E, F, call, fn);
    if (label) pmlc_strmap_put(E->A, &E->named, label, NULL); /* the compiler's calls are no states to match */
    return v;
}

/* The distillation loss, kd_loss of the standard library (stdlib/nn.pml), around the
 * hard-label loss. The names it reads hold spaces so no model variable can shadow them. */
static pmlc_value distill_loss(E_t *E, pmlc_frame *F, const pmlc_distill *d, int32_t teacher_out, pmlc_value hard)
{
    pmlc_program *P = E->P;
    const ast *kd = pmlc_strmap_get(&P->globals, "kd_loss");
    if (!kd || kd->kind != AST_FN) {
        pmlc_error(&P->diag, d->decl->loc, "distillation trains with 'kd_loss' of the standard library: add import \"nn\"");
        return pmlc_v_err;
    }
    pmlc_set_var(E, F, "teacher output", pmlc_v_tensor(teacher_out));
    pmlc_set_var(E, F, "hard loss", hard);
    pmlc_set_var(E, F, "temperature", pmlc_v_float(d->temperature));
    pmlc_set_var(E, F, "alpha", pmlc_v_float(d->alpha));
    static const char *const args[] = {"output", "teacher output", "hard loss", "temperature", "alpha"};
    return pmlc_call_at(E, F, kd, d->decl->loc, "kd_loss", args, 5);
}

/* Adds labels and the loss after the model output, on the last stage; with a
 * distillation, the loss is kd_loss of the output, the teacher's and the train block's. */
static int add_loss(E_t *E, pmlc_frame *F, const ast *loss_fn, pmlc_loc loss_loc, const pmlc_distill *d,
                    int32_t teacher_out)
{
    pmlc_graph *g = E->g;
    pmlc_program *P = E->P;
    char d1[200];
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
    pmlc_set_var(E, F, "labels", pmlc_v_tensor(g->labels));
    pmlc_set_var(E, F, "output", pmlc_v_tensor(g->output));
    /* Call it as `loss(output, labels)` written at the train block's loss field. */
    static const char *const args[] = {"output", "labels"};
    pmlc_value v = pmlc_call_at(E, F, loss_fn, loss_loc, "loss", args, 2);
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_TENSOR || g->nodes.v[v.t].rank != 0 || !pmlc_dtype_is_float(g->nodes.v[v.t].dtype)) {
        pmlc_error(&P->diag, loss_loc, "the loss '%s' must return a scalar (shape []), but it returns %s",
                   loss_fn->name, pmlc_desc(E, v, d1, sizeof d1));
        return 1;
    }
    if (d) {
        g->nodes.v[v.t].label = "hard_loss";
        v = distill_loss(E, F, d, teacher_out, v);
        if (v.k != PMLC_V_ERR) v = pmlc_elab_matches(E, F, d, v);
        if (v.k == PMLC_V_ERR) return 1;
    }
    g->loss = v.t;
    g->nodes.v[v.t].label = "loss";
    return 0;
}

static void refuse_teacher(E_t *E, const pmlc_distill *d, const char *what)
{
    pmlc_error(&E->P->diag, d->decl->loc, "student '%s' and teacher '%s' must %s", d->student->name,
               d->teacher->name, what);
    pmlc_note(&E->P->diag, d->teacher->name_loc, "the teacher is defined here");
}

/* Runs the teacher's body inside the student's graph (docs/design.md, "Distillation"):
 * it reads the student's inputs, its parameters are teacher.NAME and frozen from step
 * 0 (so autodiff gives them no gradient and the optimizer no state), and its
 * statements are units after the student's, placed by the student's plan. Returns the
 * teacher's output node, or -1 after reporting an error. */
static int32_t elab_teacher(E_t *E, pmlc_frame *student, const pmlc_distill *d)
{
    pmlc_program *P = E->P;
    pmlc_graph *g = E->g;
    const ast *model = d->teacher;
    char d1[200], d2[256];
    pmlc_loc *taken = pmlc_strmap_get(&student->scope->used, "teacher");
    if (taken) {
        pmlc_error(&P->diag, d->decl->label_loc,
                   "student '%s' uses the name 'teacher', which distillation gives the teacher's parameters "
                   "(teacher.NAME): rename it",
                   d->student->name);
        pmlc_note(&P->diag, *taken, "'teacher' is used here");
        return -1;
    }
    pmlc_claim(E, student->scope, "teacher", d->decl->label_loc, "name");
    if (model->list.n != g->inputs.n) {
        refuse_teacher(E, d, "take the same inputs");
        return -1;
    }
    pmlc_scope *root = pmlc_arena_alloc(E->A, sizeof *root);
    root->path = root->layer = "teacher";
    pmlc_frame F = {0};
    F.scope = root;
    F.is_model = 1;
    F.bind_symbols = 1; /* the teacher's input types name the student's symbols */
    for (int i = 0; i < model->list.n; i++) {
        const ast *in = model->list.v[i];
        pmlc_dtype dt;
        pmlc_shape sh;
        if (!in->a || pmlc_eval_type(E, &F, in->a, PMLC_F32, &dt, &sh)) return -1;
        int32_t t = g->inputs.v[i].node;
        if (!same_type(E, t, dt, &sh)) {
            refuse_teacher(E, d, "take the same inputs");
            return -1;
        }
        if (pmlc_claim(E, root, in->name, in->name_loc, "input")) return -1;
        pmlc_set_var(E, &F, in->name, pmlc_v_tensor(t));
    }
    F.bind_symbols = 0;
    pmlc_dtype out_dt;
    pmlc_shape out_sh;
    if (pmlc_eval_type(E, &F, model->a, PMLC_F32, &out_dt, &out_sh)) return -1;
    if (!same_type(E, g->output, out_dt, &out_sh)) {
        pmlc_shape s_sh;
        pmlc_node_shape(E, g->output, &s_sh);
        pmlc_error(&P->diag, d->decl->loc, "student '%s' returns %s but teacher '%s' returns %s: they must match",
                   d->student->name, pmlc_type_str(g->nodes.v[g->output].dtype, &s_sh, &P->syms, d1, sizeof d1),
                   d->teacher->name, pmlc_type_str(out_dt, &out_sh, &P->syms, d2, sizeof d2));
        pmlc_note(&P->diag, model->a->loc, "the teacher's output type is declared here");
        return -1;
    }
    int first_param = g->params.n;
    g->teacher_begin = g->nodes.n;
    E->teacher = 1;
    E->cur_stage = g->staged ? g->n_stages - 1 : -1;
    int bad = pmlc_exec_block(E, &F, model->b);
    E->teacher = 0;
    E->cur_stage = -1;
    g->teacher_end = g->nodes.n;
    if (bad || E->aborted || P->diag.stop || !F.returned || F.ret.k != PMLC_V_TENSOR) {
        if (!bad && !E->aborted && F.ret.k != PMLC_V_ERR)
            pmlc_error(&P->diag, model->name_loc, "teacher '%s' does not return a tensor", model->name);
        return -1;
    }
    for (int p = first_param; p < g->params.n; p++) {
        g->params.v[p].teacher = 1;
        g->params.v[p].frozen_from = 0;
    }
    g->nodes.v[F.ret.t].label = "teacher.output";
    return F.ret.t;
}

/* An error inside another file (a library function) also names the user's call that
 * led there, so the line to change is visible. */
static void note_user_call(void *ctx, pmlc_loc loc)
{
    E_t *E = ctx;
    if (E->call_depth == 0 || loc.file == E->calls[0]->loc.file) return;
    pmlc_note(&E->P->diag, E->calls[0]->loc, "in the call of '%s' made here", E->calls[0]->name);
}

static pmlc_graph *elab_model(E_t *E, const ast *model, const ast *loss_fn, pmlc_loc loss_loc,
                              const pmlc_distill *d);

pmlc_graph *pmlc_elab_model(pmlc_program *P, const ast *model, const ast *loss_fn, pmlc_loc loss_loc,
                            const pmlc_distill *d)
{
    E_t E = {0};
    E.P = P;
    E.A = &P->arena;
    P->diag.after_error = note_user_call;
    P->diag.after_error_ctx = &E;
    pmlc_graph *g = elab_model(&E, model, loss_fn, loss_loc, d);
    P->diag.after_error = NULL;
    P->diag.after_error_ctx = NULL;
    return g;
}

static pmlc_graph *elab_model(E_t *E, const ast *model, const ast *loss_fn, pmlc_loc loss_loc,
                              const pmlc_distill *d)
{
    pmlc_program *P = E->P;
    E->cur_stage = -1;
    E->stage_err_unit = -1;
    pmlc_graph *g = pmlc_arena_alloc(E->A, sizeof *g);
    g->name = model->name;
    g->decl = model;
    g->output = g->labels = g->loss = -1;
    g->n_stages = 1;
    g->batch_sym = -1;
    g->staged = has_stage_block(model->b);
    E->g = g;

    pmlc_scope *root = pmlc_arena_alloc(E->A, sizeof *root);
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
        if (pmlc_eval_type(E, &F, in->a, PMLC_F32, &dt, &sh)) {
            bad = 1;
            continue;
        }
        if (!in->a->ival || sh.rank == 0) {
            pmlc_error(&P->diag, in->a->loc,
                       "model input '%s' needs a shape with a batch dimension, such as %s[B, ...]", in->name,
                       pmlc_dtype_name(dt));
            bad = 1;
            continue;
        }
        if (pmlc_strmap_get(&F.vars, in->name) && !pmlc_strmap_get(&root->used, in->name)) {
            pmlc_error(&P->diag, in->name_loc, "'%s' is already a symbolic dimension", in->name);
            bad = 1;
            continue;
        }
        if (pmlc_claim(E, root, in->name, in->name_loc, "input")) {
            bad = 1;
            continue;
        }
        E->cur_stage = 0;
        int32_t t = pmlc_emit_source(E, OP_INPUT, dt, &sh, 0, in->loc);
        E->cur_stage = -1;
        if (t < 0) return NULL;
        g->nodes.v[t].label = in->name;
        ir_input rec = {in->name, t, in->loc};
        PMLC_PUSH(E->A, g->inputs, rec);
        pmlc_set_var(E, &F, in->name, pmlc_v_tensor(t));
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
    if (pmlc_eval_type(E, &F, model->a, PMLC_F32, &out_dt, &out_sh) || P->diag.stop) return NULL;

    bad = pmlc_exec_block(E, &F, model->b);
    if (E->aborted || P->diag.stop) return NULL;
    if (g->staged && E->next_stage == 0) bad = 1;
    if (!F.returned) {
        if (!bad) pmlc_error(&P->diag, model->name_loc, "model '%s' does not return its output", model->name);
        return NULL;
    }
    char d1[200], d2[256];
    if (F.ret.k != PMLC_V_TENSOR) {
        if (F.ret.k != PMLC_V_ERR)
            pmlc_error(&P->diag, F.ret_loc, "a model returns a tensor, not %s", pmlc_desc(E, F.ret, d1, sizeof d1));
        return NULL;
    }
    if (!same_type(E, F.ret.t, out_dt, &out_sh)) {
        pmlc_error(&P->diag, F.ret_loc, "model '%s' returns %s but declares %s", model->name,
                   pmlc_desc(E, F.ret, d1, sizeof d1), pmlc_type_str(out_dt, &out_sh, &P->syms, d2, sizeof d2));
        pmlc_note(&P->diag, model->a->loc, "the output type is declared here");
        return NULL;
    }
    g->output = F.ret.t;
    if (bad) return NULL;
    int32_t teacher_out = -1;
    if (d && loss_fn && (teacher_out = elab_teacher(E, &F, d)) < 0) return NULL;
    if (loss_fn && add_loss(E, &F, loss_fn, loss_loc, loss_fn && d ? d : NULL, teacher_out)) return NULL;
    if (E->aborted) return NULL;
    g->n_units = E->unit + 1;
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

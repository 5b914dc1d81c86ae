/* elab_match.c — a distillation's hidden-state matching terms (`match(...)` in a
 * distill block; docs/language.md, "Distillation").
 *
 * Each match names the output of a call of the student (`linear(x, 48) as fc1` makes
 * "fc1") and one of the teacher (elaborated under "teacher.", so "teacher.fc2"); both
 * are found in E->named, which call_fn fills. The term is stdlib's
 * hidden_match(loss, student, teacher, weight, cosine), added to the loss in the
 * order the matches are written. When the last axes differ, the student's state first
 * goes through `linear(h, teacher width, has_bias = false) as distill.matchI.proj`: a
 * learned projection that trains with the student, sits on the loss's stage, and is
 * marked `apart` so checkpoints keep it out of the student's model file. No name of
 * the student can clash with "distill.": `distill` is a keyword. */
#include <stdio.h>
#include <string.h>

#include "sema/elab_int.h"
#include "sema/train_blocks.h"

#define TEACHER_PREFIX "teacher."

/* The named states of one side: the teacher's (prefix stripped) or the student's. */
static int named_list(E_t *E, int teacher, const char **out, int cap)
{
    int n = 0;
    for (int i = 0; i < E->named.cap && n < cap; i++) {
        const char *k = E->named.keys[i];
        if (!k || !E->named.vals[i]) continue;
        int is_teacher = !strncmp(k, TEACHER_PREFIX, strlen(TEACHER_PREFIX));
        if (is_teacher == teacher) out[n++] = teacher ? k + strlen(TEACHER_PREFIX) : k;
    }
    return n;
}

/* The node of a named state, or -1 after an error with a "did you mean". */
static int32_t find_state(E_t *E, const pmlc_distill *d, const char *name, pmlc_loc loc, int teacher)
{
    const char *key = teacher ? pmlc_arena_printf(E->A, TEACHER_PREFIX "%s", name) : name;
    const int32_t *t = pmlc_strmap_get(&E->named, key);
    if (t) return *t;
    const char *cands[256];
    int n = named_list(E, teacher, cands, 256);
    const char *model = teacher ? d->teacher->name : d->student->name;
    pmlc_error_unknown(&E->P->diag, loc, name, cands, n, " (a match names a call of the model written `... as NAME`)",
                       "%s '%s' has no call named '%s'", teacher ? "teacher" : "student", model, name);
    return -1;
}

/* Both states must agree in dtype and every axis but the last. */
static int check_shapes(E_t *E, const pmlc_match *m, int32_t s, int32_t t)
{
    const ir_node *a = &E->g->nodes.v[s], *b = &E->g->nodes.v[t];
    int same = a->dtype == b->dtype && a->rank == b->rank && a->rank > 0;
    for (int k = 0; same && k + 1 < a->rank; k++) same = pmlc_size_eq(a->shape[k], b->shape[k]);
    if (same) return 0;
    pmlc_shape sa, sb;
    pmlc_node_shape(E, s, &sa);
    pmlc_node_shape(E, t, &sb);
    char d1[200], d2[200];
    pmlc_error(&E->P->diag, m->loc,
               "the student's '%s' is %s and the teacher's '%s' is %s: matched states may differ only in "
               "their last axis",
               m->student, pmlc_type_str(a->dtype, &sa, &E->P->syms, d1, sizeof d1), m->teacher,
               pmlc_type_str(b->dtype, &sb, &E->P->syms, d2, sizeof d2));
    return 1;
}

/* The student's state in the teacher's width: itself, or through a new projection. */
static int32_t project(E_t *E, pmlc_frame *F, const pmlc_match *m, int i, int32_t s, int32_t t)
{
    const ir_node *a = &E->g->nodes.v[s], *b = &E->g->nodes.v[t];
    pmlc_size width = b->shape[b->rank - 1];
    if (pmlc_size_eq(a->shape[a->rank - 1], width)) return s;
    const ast *linear = pmlc_strmap_get(&E->P->globals, "linear");
    if (!linear || linear->kind != AST_FN) {
        pmlc_error(&E->P->diag, m->loc,
                   "a match of states of different widths projects with 'linear' of the "
                   "standard library: add import \"nn\"");
        return -1;
    }
    pmlc_set_var(E, F, "match state", pmlc_v_tensor(s));
    pmlc_set_var(E, F, "match width", pmlc_v_size(width));
    pmlc_set_var(E, F, "match bias", pmlc_v_bool(0));
    static const char *const args[] = {"match state", "match width", "match bias"};
    int first = E->g->params.n;
    pmlc_value v = pmlc_call_at(E, F, linear, m->loc, pmlc_arena_printf(E->A, "distill.match%d.proj", i), args, 3);
    for (int p = first; p < E->g->params.n; p++) E->g->params.v[p].apart = 1;
    return v.k == PMLC_V_TENSOR ? v.t : -1;
}

pmlc_value pmlc_elab_matches(E_t *E, pmlc_frame *F, const pmlc_distill *d, pmlc_value loss)
{
    if (!d->matches.n) return loss;
    pmlc_program *P = E->P;
    const ast *fn = pmlc_strmap_get(&P->globals, "hidden_match");
    if (!fn || fn->kind != AST_FN) {
        pmlc_error(&P->diag, d->matches.v[0].loc,
                   "matching hidden states uses 'hidden_match' of the standard library: add import \"nn\"");
        return pmlc_v_err;
    }
    int bad = 0;
    for (int i = 0; i < d->matches.n; i++) {
        const pmlc_match *m = &d->matches.v[i];
        int32_t s = find_state(E, d, m->student, m->student_loc, 0);
        int32_t t = find_state(E, d, m->teacher, m->teacher_loc, 1);
        if (s < 0 || t < 0 || check_shapes(E, m, s, t) || bad || (s = project(E, F, m, i, s, t)) < 0) {
            bad = 1; /* the other matches are still checked, so every mistake shows */
            continue;
        }
        pmlc_set_var(E, F, "match loss", loss);
        pmlc_set_var(E, F, "match student", pmlc_v_tensor(s));
        pmlc_set_var(E, F, "match teacher", pmlc_v_tensor(t));
        pmlc_set_var(E, F, "match weight", pmlc_v_float(m->weight));
        pmlc_set_var(E, F, "match cosine", pmlc_v_bool(m->cosine));
        static const char *const args[] = {"match loss", "match student", "match teacher", "match weight",
                                           "match cosine"};
        loss = pmlc_call_at(E, F, fn, m->loc, pmlc_arena_printf(E->A, "distill.match%d", i), args, 5);
        if (loss.k != PMLC_V_TENSOR) bad = 1;
    }
    return bad ? pmlc_v_err : loss;
}

/* session.c — the compiler library's public face (pmlc.h): one session checks one
 * program (the main file, its imports, --set overrides), elaborates every model of the
 * main file, reads its train and distill blocks, and builds the stage plans.
 *
 * The passes, in the order a compile runs them (one folder each under compiler/src):
 *   front/  source text -> AST: the lexer and parser (grammar/), imports (module.c),
 *           locations and diagnostics, the arena everything lives in
 *   sema/   AST -> checked program: train/distill blocks read (train_blocks.c), each
 *           model elaborated into the graph IR (elab*.c, builtins.c)
 *   ir/     the graph IR itself: the op table (ops.c), types and sizes, and the two
 *           graph-to-graph passes autodiff.c and fuse.c
 *   plan/   graph -> stage plan: placement and cost (placement.c, which also runs
 *           autodiff and fusion on the placed graph), the timetable (schedule.c), the
 *           memory estimate `pmlc plan` reports (memplan.c); then the plan file
 *           (write.c) or a view (print.c)
 *   gpu/    plan -> CUDA kernels: render (cuda_codegen.c), compile with NVRTC, cache
 * check_program and plan_model below call them in this order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/parse.h"
#include "gpu/cuda_build.h"
#include "gpu/nvrtc.h"
#include "ir/ops.h"
#include "plan/autosched.h"
#include "plan/placement.h"
#include "plan/timeline.h"
#include "plan/write.h"
#include "sema/elab.h"
#include "session_int.h"

struct pmlc_session {
    pmlc_program P;
    int used;
    /* per main-file model, by index in P.models */
    pmlc_graph **graphs;
    pmlc_train **trains;
    pmlc_distill **distills;
    pmlc_plan **plans;
};

const char *pmlc_version(void) { return PMLC_VERSION; }

/* pmlc.h's argument policy: a call refuses a bad argument by returning -1 (NULL for
 * pmlc_session_create), after reporting "CALL: what is wrong" as an error diagnostic
 * of the session when there is one. */
static int refuse(pmlc_session *s, const char *call, const char *what)
{
    if (s) pmlc_error(&s->P.diag, PMLC_NOLOC, "%s: %s", call, what);
    return -1;
}

int pmlc_gpu_available(char *why, size_t cap)
{
    if (!why && cap) return -1;
    pmlc_nvrtc *nv = pmlc_nvrtc_open(why, cap);
    int found = nv != NULL;
    pmlc_nvrtc_close(nv);
    return found;
}

int pmlc_op_describe(int i, pmlc_op_desc *out)
{
    static const char *const classes[] = {"source", "elementwise", "reduce", "movement", "gather", "matmul", "row loss",
                                          "attention"};
    _Static_assert(sizeof classes / sizeof *classes == PMLC_OPC_ATTENTION + 1, "a name for every op class");
    if (i < 0 || i >= OP_COUNT || !out) return -1;
    const pmlc_op_info *o = &pmlc_ops[i];
    *out = (pmlc_op_desc){o->name, classes[o->cls], o->min_in, o->max_in, o->doc};
    return 0;
}

/* What is wrong with `opt`, or NULL. */
static const char *bad_options(const pmlc_options *opt)
{
    if (opt->n_include_dirs < 0) return "n_include_dirs is below 0";
    if (opt->n_include_dirs && !opt->include_dirs) return "include_dirs is NULL";
    for (int i = 0; i < opt->n_include_dirs; i++)
        if (!opt->include_dirs[i]) return "an entry of include_dirs is NULL";
    if (opt->n_sets < 0) return "n_sets is below 0";
    if (opt->n_sets && !opt->sets) return "sets is NULL";
    for (int i = 0; i < opt->n_sets; i++)
        if (!opt->sets[i]) return "an entry of sets is NULL";
    if (opt->max_errors < 0) return "max_errors is below 0";
    if (opt->freeze_from < 0) return "freeze_from is below 0";
    return NULL;
}

pmlc_session *pmlc_session_create(const pmlc_options *opt)
{
    const char *bad = opt ? bad_options(opt) : NULL;
    if (bad) {
        if (opt->diag_out) fprintf(opt->diag_out, "pmlc: error: pmlc_session_create: %s\n", bad);
        return NULL;
    }
    pmlc_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pmlc_program *P = &s->P;
    if (opt) P->opt = *opt;
    P->diag.arena = &P->arena;
    P->diag.sources = &P->sources;
    P->diag.out = P->opt.diag_out;
    P->diag.color = P->opt.color;
    P->diag.max_errors = P->opt.max_errors > 0 ? P->opt.max_errors : 20;
    P->include_dirs = (const char **)P->opt.include_dirs;
    P->n_include_dirs = P->opt.n_include_dirs;
    return s;
}

void pmlc_session_destroy(pmlc_session *s)
{
    if (!s) return;
    pmlc_arena_free(&s->P.arena);
    free(s);
}

int pmlc_session_errors(const pmlc_session *s) { return s ? s->P.diag.errors : -1; }

/* --set key=value: each becomes a one-field source of its own, named "--set". */
static void parse_sets(pmlc_program *P)
{
    for (int i = 0; i < P->opt.n_sets; i++) {
        const char *text = P->opt.sets[i];
        if (!strchr(text, '=')) {
            pmlc_error(&P->diag, PMLC_NOLOC, "--set expects key=value, got '%s'", text);
            continue;
        }
        const char *why;
        size_t len = strlen(text);
        if (pmlc_utf8_check(text, len, &why) < len) {
            pmlc_error(&P->diag, PMLC_NOLOC, "--set value is not valid UTF-8");
            continue;
        }
        int file = pmlc_sources_add(&P->arena, &P->sources, "--set", text, len);
        ast *f = pmlc_parse(&P->arena, &P->diag, &P->sources, file, PMLC_PARSE_FIELD);
        if (f && f->kind == AST_FIELD) PMLC_PUSH(&P->arena, P->set_fields, f);
    }
}

static int model_index(pmlc_program *P, const char *name)
{
    for (int i = 0; i < P->models.n; i++)
        if (!strcmp(P->models.v[i]->name, name)) return i;
    return -1;
}

static int in_main_file(pmlc_program *P, const ast *d) { return d->loc.file == P->modules.v[0].file; }

/* Every constant is evaluated, used or not: `const HEAD = 128 / 3` is an error even
 * before anything reads it. */
static void check_constants(pmlc_program *P)
{
    for (int m = 0; m < P->modules.n && !P->diag.stop; m++) {
        const ast *root = P->modules.v[m].root;
        for (int i = 0; root && i < root->list.n; i++) {
            const ast *d = root->list.v[i];
            if (d->kind != AST_CONST || pmlc_strmap_get(&P->globals, d->name) != d) continue;
            ast *use = ast_new(&P->arena, AST_NAME, d->name_loc);
            use->name = d->name;
            pmlc_eval_const(P, use);
        }
    }
}

/* With no train block, --set can only size symbolic dimensions (for plan). */
static void check_sets_without_train(pmlc_program *P)
{
    if (P->trains.n) return;
    for (int i = 0; i < P->set_fields.n; i++) {
        const ast *f = P->set_fields.v[i];
        int sym = 0;
        for (int k = 0; k < P->syms.n; k++) sym |= !strcmp(P->syms.names[k], f->name);
        if (!sym)
            pmlc_error(&P->diag, f->name_loc,
                       "--set %s: this program has no train block; without one, --set can only size a symbolic "
                       "dimension",
                       f->name);
    }
}

static void check_program(pmlc_session *s)
{
    pmlc_program *P = &s->P;
    check_constants(P);
    int n = P->models.n;
    s->graphs = pmlc_arena_alloc(&P->arena, sizeof(void *) * (size_t)(n + 1));
    s->trains = pmlc_arena_alloc(&P->arena, sizeof(void *) * (size_t)(n + 1));
    s->distills = pmlc_arena_alloc(&P->arena, sizeof(void *) * (size_t)(n + 1));
    s->plans = pmlc_arena_alloc(&P->arena, sizeof(void *) * (size_t)(n + 1));
    for (int i = 0; i < P->trains.n && !P->diag.stop; i++) {
        const ast *decl = P->trains.v[i];
        pmlc_train *t = pmlc_train_read(P, decl);
        int m = model_index(P, decl->name);
        if (m < 0) continue;
        if (s->trains[m]) {
            pmlc_error(&P->diag, decl->name_loc, "model '%s' has two train blocks", decl->name);
            pmlc_note(&P->diag, s->trains[m]->decl->name_loc, "the first is here");
            continue;
        }
        s->trains[m] = t;
    }
    /* Distillations are read before the models are elaborated: a student's graph
     * holds its teacher's forward pass (elab.h). */
    for (int i = 0; i < P->distills.n && !P->diag.stop; i++) {
        pmlc_distill *d = pmlc_distill_read(P, P->distills.v[i]);
        if (!d->student || !d->teacher) continue;
        int ms = model_index(P, d->student->name);
        if (s->distills[ms]) {
            pmlc_error(&P->diag, d->decl->loc, "model '%s' is distilled twice", d->student->name);
            pmlc_note(&P->diag, s->distills[ms]->decl->loc, "the first distillation is here");
            continue;
        }
        if (!s->trains[ms]) {
            pmlc_error(&P->diag, d->decl->name_loc,
                       "distilling '%s' needs a train block for it (its data, loss and optimizer)",
                       d->student->name);
            continue;
        }
        if (!d->bad) s->distills[ms] = d;
    }
    /* The main file's models, and imported ones that it trains. */
    for (int m = 0; m < n && !P->diag.stop; m++) {
        const ast *model = P->models.v[m];
        pmlc_train *t = s->trains[m];
        if (!in_main_file(P, model) && !t) continue;
        s->graphs[m] = pmlc_elab_model(P, model, t ? t->loss_fn : NULL, t ? t->loss_loc : PMLC_NOLOC, s->distills[m]);
        if (s->graphs[m] && t) pmlc_train_bind(P, t, s->graphs[m]);
    }
    check_sets_without_train(P);
}

static pmlc_plan *plan_model(pmlc_session *s, int m, int lenient)
{
    pmlc_program *P = &s->P;
    if (s->plans[m]) return s->plans[m];
    if (!s->graphs[m]) s->graphs[m] = pmlc_elab_model(P, P->models.v[m], NULL, PMLC_NOLOC, NULL);
    if (!s->graphs[m]) return NULL;
    pmlc_train *t = s->trains[m];
    pmlc_plan *pl;
    if (t && t->schedule == PMLC_SCHED_AUTO && !lenient) {
        /* The search plans fresh graphs; the chosen plan's becomes the model's. */
        pl = pmlc_plan_auto(P, s->graphs[m], t, s->distills[m]);
        if (pl) s->graphs[m] = pl->g;
    } else {
        pl = pmlc_plan_build(P, s->graphs[m], t, s->distills[m], lenient);
        if (pl && !lenient && pmlc_plan_check_memory(P, pl)) pl = NULL;
    }
    if (!lenient) s->plans[m] = pl; /* a lenient plan's costs are placeholders: never shown */
    return pl;
}

static int run_check(pmlc_session *s, const char *path, const char *text, size_t len)
{
    pmlc_program *P = &s->P;
    if (s->used++) {
        pmlc_error(&P->diag, PMLC_NOLOC, "a compiler session checks one program; create another session");
        return P->diag.errors;
    }
    parse_sets(P);
    if (pmlc_load_program(P, path, text, len) || P->diag.errors) return P->diag.errors;
    check_program(s);
    /* Planning is part of checking: placement and costs can fail. A model without a
     * train block is placed with its unsized dimensions taken as 1. */
    for (int m = 0; m < P->models.n && !P->diag.errors; m++)
        if (s->graphs[m]) plan_model(s, m, !s->trains[m]);
    P->checked = P->diag.errors == 0;
    return P->diag.errors;
}

int pmlc_session_check_file(pmlc_session *s, const char *path)
{
    if (!s || !path) return refuse(s, __func__, "path is NULL");
    return run_check(s, path, NULL, 0);
}

int pmlc_session_check_text(pmlc_session *s, const char *path, const char *text, size_t len)
{
    if (!s || !path) return refuse(s, __func__, "path is NULL");
    if (!text && len) return refuse(s, __func__, "text is NULL with a length above 0");
    return run_check(s, path, text ? text : "", len);
}

/* The checks every call after a check makes: the session was given a program. */
static int unchecked(pmlc_session *s, const char *call)
{
    if (!s) return -1;
    if (!s->used) return refuse(s, call, "no program was checked (pmlc_session_check_file or _text comes first)");
    return 0;
}

/* The model `pmlc plan` shows: --model, else the one trained (or distilled), else the
 * only model of the main file. */
static int choose_model(pmlc_session *s)
{
    pmlc_program *P = &s->P;
    const char *want = P->opt.model;
    if (want) {
        int m = model_index(P, want);
        if (m >= 0) return m;
        const char *cands[64];
        int n = 0;
        for (int i = 0; i < P->models.n && n < 64; i++) cands[n++] = P->models.v[i]->name;
        pmlc_error_unknown(&P->diag, PMLC_NOLOC, want, cands, n, "", "no model '%s' in this program", want);
        return -1;
    }
    int found = -1, count = 0;
    for (int m = 0; m < P->models.n; m++)
        if (s->trains[m]) found = m, count++;
    if (count == 1) return found;
    const char *what = count ? "trains" : "defines";
    if (!count) {
        for (int m = 0; m < P->models.n; m++)
            if (in_main_file(P, P->models.v[m])) found = m, count++;
        if (count == 1) return found;
    }
    if (!count) {
        pmlc_error(&P->diag, PMLC_NOLOC, "%s defines no model to plan", P->modules.v[0].path);
        return -1;
    }
    const char *list = "";
    for (int m = 0; m < P->models.n; m++)
        if (count && (s->trains[m] || (!strcmp(what, "defines") && in_main_file(P, P->models.v[m]))))
            list = pmlc_arena_printf(&P->arena, "%s%s%s", list, *list ? ", " : "", P->models.v[m]->name);
    pmlc_error(&P->diag, PMLC_NOLOC, "%s %s several models (%s): choose one with --model NAME", P->modules.v[0].path,
               what, list);
    return -1;
}

int pmlc_session_plan(pmlc_session *s, pmlc_plan_format fmt, FILE *out)
{
    if (unchecked(s, __func__)) return -1;
    if (fmt != PMLC_PLAN_TEXT && fmt != PMLC_PLAN_JSON && fmt != PMLC_PLAN_DOT && fmt != PMLC_PLAN_TIMELINE)
        return refuse(s, __func__, "fmt is no pmlc_plan_format");
    if (!out) return refuse(s, __func__, "out is NULL");
    pmlc_program *P = &s->P;
    if (!P->checked) return P->diag.errors ? P->diag.errors : 1;
    int before = P->diag.errors;
    int m = choose_model(s);
    if (m < 0) return P->diag.errors - before;
    pmlc_plan *pl = plan_model(s, m, 0);
    if (!pl) return P->diag.errors - before ? P->diag.errors - before : 1;
    switch (fmt) {
    case PMLC_PLAN_TEXT:
        pmlc_plan_print_text(P, pl, out);
        break;
    case PMLC_PLAN_JSON:
        pmlc_plan_print_json(P, pl, out);
        break;
    case PMLC_PLAN_DOT:
        pmlc_plan_print_dot(P, pl, out);
        break;
    case PMLC_PLAN_TIMELINE:
        if (!pl->timetable) {
            pmlc_error(&P->diag, pl->train ? pl->train->decl->name_loc : pl->g->decl->name_loc,
                       "schedule %s is planned only: there is no timetable to draw",
                       pmlc_schedule_name(pl->schedule));
            return P->diag.errors - before;
        }
        pmlc_plan_print_timeline(pl, out);
        break;
    }
    return 0;
}

pmlc_graph *pmlc_session_graph(pmlc_session *s, const pmlc_plan **plan)
{
    pmlc_program *P = &s->P;
    if (!P->checked) return NULL;
    int m = choose_model(s);
    pmlc_plan *pl = m < 0 ? NULL : plan_model(s, m, 0);
    if (plan) *plan = pl;
    return pl ? s->graphs[m] : NULL;
}

pmlc_program *pmlc_session_program(pmlc_session *s) { return &s->P; }

int pmlc_session_node_where(pmlc_session *s, int node, char *buf, size_t cap)
{
    if (!buf && cap) return refuse(s, __func__, "buf is NULL with cap above 0");
    if (unchecked(s, __func__)) return -1;
    pmlc_program *P = &s->P;
    const pmlc_plan *pl = NULL;
    if (cap) buf[0] = 0;
    if (!pmlc_session_graph(s, &pl) || node < 0 || node >= pl->g->nodes.n) return -1;
    pmlc_loc loc = pl->g->nodes.v[node].loc;
    if (loc.file < 0 || loc.file >= P->sources.files.n) return 1;
    pmlc_source *src = &P->sources.files.v[loc.file];
    int line, col;
    pmlc_source_linecol(&P->arena, src, loc.begin, &line, &col);
    snprintf(buf, cap, "%s:%d:%d", src->path, line, col);
    return 0;
}

int pmlc_session_plan_bytes(pmlc_session *s, unsigned char **bytes, size_t *len)
{
    if (bytes) *bytes = NULL;
    if (!bytes || !len) return refuse(s, __func__, bytes ? "len is NULL" : "bytes is NULL");
    if (unchecked(s, __func__)) return -1;
    pmlc_program *P = &s->P;
    int before = P->diag.errors;
    const pmlc_plan *pl = NULL;
    *bytes = NULL;
    *len = 0;
    if (!pmlc_session_graph(s, &pl)) return P->diag.errors - before ? P->diag.errors - before : 1;
    return pmlc_plan_serialize(P, pl, NULL, bytes, len) ? P->diag.errors - before : 0;
}

int pmlc_session_plan_bytes_gpu(pmlc_session *s, const char *archs, unsigned char **bytes, size_t *len, char *summary,
                                size_t cap)
{
    if (bytes) *bytes = NULL;
    if (!bytes || !len) return refuse(s, __func__, bytes ? "len is NULL" : "bytes is NULL");
    if (!summary && cap) return refuse(s, __func__, "summary is NULL with cap above 0");
    if (unchecked(s, __func__)) return -1;
    pmlc_program *P = &s->P;
    int before = P->diag.errors;
    const pmlc_plan *pl = NULL;
    *bytes = NULL;
    *len = 0;
    if (cap) summary[0] = 0;
    if (!pmlc_session_graph(s, &pl)) return P->diag.errors - before ? P->diag.errors - before : 1;
    pmlc_cuda_module m;
    pmlc_cuda_image *im = NULL;
    int n = 0;
    if (pmlc_session_cuda_build(s, archs, &m, &im, &n)) return P->diag.errors - before ? P->diag.errors - before : 1;
    size_t at = 0;
    for (int k = 0; k < n && at < cap; k++) {
        int w = im[k].from_cache ? snprintf(summary + at, cap - at, "%s%s (cache)", k ? ", " : "", im[k].arch)
                                 : snprintf(summary + at, cap - at, "%s%s (%.1f s)", k ? ", " : "", im[k].arch,
                                            im[k].compile_ms / 1000);
        at += w > 0 ? (size_t)w : 0;
    }
    if (at < cap) snprintf(summary + at, cap - at, "; %d kernels, %d functions", m.n_kernels, m.n_funcs);
    pmlc_plan_gpu gpu = {&m, im, n};
    int rc = pmlc_plan_serialize(P, pl, &gpu, bytes, len);
    pmlc_cuda_images_free(im, n);
    return rc ? P->diag.errors - before : 0;
}

int pmlc_session_cuda_build(pmlc_session *s, const char *archs, pmlc_cuda_module *m, pmlc_cuda_image **images,
                            int *n_images)
{
    *images = NULL, *n_images = 0;
    const pmlc_plan *pl = NULL;
    pmlc_graph *g = pmlc_session_graph(s, &pl);
    pmlc_program *P = pmlc_session_program(s);
    if (!g) return P->diag.errors ? P->diag.errors : 1;
    int errors = pmlc_cuda_codegen(P, pl, m);
    if (errors) return errors;
    pmlc_kcache kc;
    pmlc_kcache_init(&kc);
    return pmlc_cuda_build(P, m, archs, NULL, &kc, images, n_images);
}

/* run.c — conformance cases of pml.h's training driver (pml_session_open,
 * pml_session_run): a C program that drives a run gets the files `pmlc train` writes
 * with the same options, bit for bit, and a refused run names what is wrong. The model
 * is written into the case's scratch folder: two stages, AdamW, dropout, a checkpoint
 * and an evaluation every 2 of its 6 steps. */
#define _DEFAULT_SOURCE /* DT_DIR */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api_test.h"

static const char MODEL[] =
    "import \"nn\"\n"
    "model net(x: f32[B, 16]) -> f32[B, 4] {\n"
    "    stage 0 { h = gelu(linear(x, 32) as fc1) }\n"
    "    stage 1 {\n"
    "        h = dropout(h, 0.1)\n"
    "        return linear(h, 4) as head\n"
    "    }\n"
    "}\n"
    "train net {\n"
    "    data = classes(features = 16, classes = 4, seed = 3)\n"
    "    loss = cross_entropy\n"
    "    optimizer = adamw(lr = 1e-3, weight_decay = 0.01)\n"
    "    batch = 32, microbatches = 4\n"
    "    schedule = 1f1b\n"
    "    place = [cpu, cpu]\n"
    "    steps = 6\n"
    "    checkpoint_every = 2\n"
    "    eval_every = 2\n"
    "}\n";

/* The model's file in the scratch folder, written afresh with the folders the case
 * compares removed (a scratch folder may hold an earlier run's). */
static const char *model_file(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/cli* '%s'/api*", api_work(), api_work());
    if (system(cmd)) return NULL;
    const char *path = api_work_path("run.pml");
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    int bad = fputs(MODEL, f) < 0;
    return fclose(f) || bad ? NULL : path;
}

/* `pmlc train FILE --quiet --threads 2 ARGS` (0: it succeeded). */
static int pmlc_train(const char *file, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' train '%s' --quiet --threads 2 %s", api_pmlc(), file, args);
    return system(cmd);
}

static pml_plan *compile(pml_context *ctx, const char *file)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *c = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_plan *plan = NULL;
    if (c && !pmlc_session_check_file(c, file) && !pmlc_session_plan_bytes(c, &bytes, &len))
        pml_plan_open_memory(ctx, bytes, len, file, &plan);
    free(bytes);
    pmlc_session_destroy(c);
    return plan;
}

/* Whether the files a and b hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    if (!same) fprintf(stderr, "%s and %s differ\n", a, b);
    return same;
}

/* Whether folders a and b hold the same names, and the same bytes in each file. */
static int same_tree(const char *a, const char *b)
{
    DIR *da = opendir(a);
    if (!da) return 0;
    int same = 1, n = 0;
    struct dirent *e;
    while (same && (e = readdir(da))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char pa[4096], pb[4096];
        snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
        same = e->d_type == DT_DIR ? same_tree(pa, pb) : same_file(pa, pb);
        n++;
    }
    closedir(da);
    DIR *db = opendir(b); /* and b holds nothing more */
    int m = 0;
    while (db && (e = readdir(db)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) m++;
    if (db) closedir(db);
    if (same && n != m) fprintf(stderr, "%s has %d entries, %s %d\n", a, n, b, m);
    return same && n == m && n > 0;
}

/* The metrics log's evaluation records (they hold no timings), one string. */
static int eval_records(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t at = 0;
    out[0] = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "\"eval_samples\"") && at + strlen(line) < cap) at += (size_t)sprintf(out + at, "%s", line);
    if (f) fclose(f);
    return f != NULL;
}

typedef struct seen {
    int start, steps, evals, final_evals, errors;
    int64_t last_step, first_step;
} seen;

static void count(void *user, const pml_run_event *ev)
{
    seen *s = user;
    if (ev->kind == PML_RUN_START) s->start++, s->first_step = ev->start.first_step;
    if (ev->kind == PML_RUN_STEP) s->steps++, s->last_step = ev->at_step;
    if (ev->kind == PML_RUN_EVAL) ev->at_step < 0 ? s->final_evals++ : s->evals++;
    if (ev->kind == PML_RUN_ERROR) s->errors++;
}

API_CASE(a_run_writes_the_checkpoints_and_eval_records_pmlc_train_writes)
{
    const char *file = model_file();
    CHECK(file);
    char args[4096];
    snprintf(args, sizeof args, "--eval 2 --out '%s' --metrics '%s'", api_work_path("cli"),
             api_work_path("cli.jsonl"));
    CHECK(pmlc_train(file, args) == 0);

    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    pml_plan *plan = compile(ctx, file);
    CHECK(plan);
    pml_session *s;
    pml_session_options so = {.backend = PML_BACKEND_CPU, .seed = -1, .threads = 2};
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    seen got = {0};
    pml_run_options ro = {.steps = -1,
                          .out = api_work_path("api"),
                          .eval = 2,
                          .metrics = api_work_path("api.jsonl"),
                          .on_event = count,
                          .event_user = &got};
    pml_run_result result;
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(result.steps_done == 6 && !result.log_incomplete && pml_session_steps_done(s) == 6);
    CHECK(got.start == 1 && got.steps == 6 && got.last_step == 6 && got.evals == 3 && got.final_evals == 1 &&
          got.errors == 0);
    CHECK(same_tree(api_work_path("cli"), api_work_path("api"))); /* step-000002..6 and the final one */
    static char cli[8192], api[8192];
    CHECK(eval_records(api_work_path("cli.jsonl"), cli, sizeof cli) && eval_records(api_work_path("api.jsonl"), api, sizeof api));
    CHECK(strstr(cli, "\"eval_at_step\": 4") && !strcmp(cli, api));
    pml_session_destroy(s);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(a_resumed_run_equals_pmlc_train_resume_bit_for_bit)
{
    const char *file = model_file();
    CHECK(file);
    char args[4096];
    snprintf(args, sizeof args, "--out '%s'", api_work_path("cli"));
    CHECK(pmlc_train(file, args) == 0);
    snprintf(args, sizeof args, "--resume '%s/step-000002' --out '%s'", api_work_path("cli"),
             api_work_path("cli_resumed"));
    CHECK(pmlc_train(file, args) == 0);

    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    pml_plan *plan = compile(ctx, file);
    CHECK(plan);
    char from[4096];
    snprintf(from, sizeof from, "%s/step-000002", api_work_path("cli"));
    pml_session *s;
    pml_session_options so = {.seed = -1, .threads = 2, .resume = from};
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    CHECK(pml_session_steps_done(s) == 2);
    seen got = {0};
    pml_run_options ro = {.steps = -1, .out = api_work_path("api_resumed"), .on_event = count, .event_user = &got};
    pml_run_result result;
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(result.steps_done == 4 && got.first_step == 2 && got.steps == 4 && got.evals == 2);
    CHECK(same_tree(api_work_path("cli_resumed"), api_work_path("api_resumed"))); /* step-000004, 6, the final */
    pml_session_destroy(s);
    /* Another seed than the checkpoint's is refused, naming both. */
    so.seed = 7;
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_ERR_INVALID_ARG);
    CHECK(s == NULL);
    CHECK_ERROR_SAYS(ctx, "was trained with seed");
    CHECK_ERROR_SAYS(ctx, "not 7");
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return 0;
}

/* An event callback that asks its session to stop after step `at`, and what it saw. */
typedef struct stopper {
    pml_session *s;
    int64_t at;
    int stop_events;
    int64_t stopped_at;
    const char *saving_to;
} stopper;

static void stop_after(void *user, const pml_run_event *ev)
{
    stopper *st = user;
    if (ev->kind == PML_RUN_STEP && ev->at_step == st->at) pml_session_request_stop(st->s, 10);
    if (ev->kind == PML_RUN_STOP) st->stop_events++, st->stopped_at = ev->at_step, st->saving_to = ev->text;
}

/* Whether two checkpoints hold the same weights and optimizer state, bit for bit. */
static int same_state(const char *a, const char *b)
{
    char fa[4096], fb[4096];
    int same = 1;
    for (int k = 0; k < 2; k++) {
        const char *f = k ? "optimizer.safetensors" : "model.safetensors";
        snprintf(fa, sizeof fa, "%s/%s", a, f);
        snprintf(fb, sizeof fb, "%s/%s", b, f);
        same = same && same_file(fa, fb);
    }
    return same;
}

API_CASE(a_stop_request_from_an_event_callback_saves_that_step_and_resumes_bit_for_bit)
{
    const char *file = model_file();
    CHECK(file);
    char args[8192], cli[4096], api[4096];
    snprintf(cli, sizeof cli, "%s", api_work_path("cli"));
    snprintf(api, sizeof api, "%s", api_work_path("api"));
    snprintf(args, sizeof args, "--out '%s'", cli);
    CHECK(pmlc_train(file, args) == 0); /* the 6 steps without a stop */

    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    pml_plan *plan = compile(ctx, file);
    CHECK(plan);
    pml_session *s;
    pml_session_options so = {.seed = -1, .threads = 2};
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    stopper st = {.s = s, .at = 3};
    pml_run_options ro = {.steps = -1, .out = api, .on_event = stop_after, .event_user = &st};
    pml_run_result result;
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(result.stopped && result.stop_step == 3 && result.steps_done == 3 && result.stop_signal == 10 &&
          result.stop_rank == 0 && result.stop_saved && !result.failed_in_step);
    CHECK(st.stop_events == 1 && st.stopped_at == 3 && st.saving_to && !strcmp(st.saving_to, api));
    CHECK(pml_session_steps_done(s) == 3);
    pml_checkpoint_info info;
    CHECK_STATUS(pml_checkpoint_read_info(ctx, plan, api, &info), PML_OK);
    CHECK(info.step == 3);
    pml_session_destroy(s);

    /* A request made before the run stops it before its first step; the run consumes
     * it, so the next run on the session goes to the end: the uninterrupted run's
     * state, bit for bit. */
    so.resume = api;
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    CHECK_STATUS(pml_session_request_stop(s, 0), PML_OK);
    ro = (pml_run_options){.steps = -1, .out = api_work_path("api_before")};
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(result.stopped && result.stop_step == 3 && result.steps_done == 0 && result.stop_signal == 0 &&
          result.stop_saved);
    ro.out = api_work_path("api_end");
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(!result.stopped && result.steps_done == 3 && pml_session_steps_done(s) == 6);
    CHECK(same_state(cli, api_work_path("api_end")));
    pml_session_destroy(s);

    /* Without an out folder the result says that nothing was saved. */
    so.resume = NULL;
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    st = (stopper){.s = s, .at = 1};
    ro = (pml_run_options){.steps = -1, .on_event = stop_after, .event_user = &st};
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_OK);
    CHECK(result.stopped && result.stop_step == 1 && !result.stop_saved && st.saving_to == NULL);
    pml_session_destroy(s);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return 0;
}

API_CASE(pml_session_run_refuses_what_it_cannot_do_before_the_first_step)
{
    const char *file = model_file();
    CHECK(file);
    char args[4096];
    snprintf(args, sizeof args, "--steps 4 --out '%s'", api_work_path("cli"));
    CHECK(pmlc_train(file, args) == 0);
    pml_context *ctx;
    CHECK_STATUS(pml_context_create(&ctx), PML_OK);
    pml_plan *plan = compile(ctx, file);
    CHECK(plan && pml_plan_steps(plan) == 6);
    pml_session *s;
    pml_session_options so = {.seed = -1, .threads = 2};
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    pml_run_result result;
    CHECK_STATUS(pml_session_run(s, NULL, &result), PML_ERR_INVALID_ARG);
    /* An output folder that cannot be made: named, before any step. */
    pml_run_options ro = {.steps = -1, .out = "/proc/pml-no-such-folder/out"};
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_ERR_IO);
    CHECK_ERROR_SAYS(ctx, "/proc/pml-no-such-folder");
    CHECK(result.steps_done == 0 && pml_session_steps_done(s) == 0);
    /* A trace needs the timeline, which the session records only when opened for it. */
    ro = (pml_run_options){.steps = 1, .trace = api_work_path("api.trace.json")};
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "pml_session_options.trace");
    pml_session_destroy(s);
    /* A resume past the steps asked for. */
    char from[4096];
    snprintf(from, sizeof from, "%s", api_work_path("cli"));
    so.resume = from;
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_OK);
    ro = (pml_run_options){.steps = 2};
    CHECK_STATUS(pml_session_run(s, &ro, &result), PML_ERR_INVALID_ARG);
    CHECK_ERROR_SAYS(ctx, "past the 2 steps");
    CHECK(pml_session_steps_done(s) == 4);
    pml_session_destroy(s);
    /* A missing checkpoint is named. */
    so.resume = "/nonexistent/pml-ckpt";
    CHECK_STATUS(pml_session_open(ctx, plan, &so, &s), PML_ERR_IO);
    CHECK_ERROR_SAYS(ctx, "cannot resume: /nonexistent/pml-ckpt");
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return 0;
}

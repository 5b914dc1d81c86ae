/* checkpoint_api.c — trains and resumes through pml.h's checkpoints alone, as an
 * embedding program would (only the public headers pml.h and pmlc.h), so that
 * checkpoint_api_test.py can compare the folders with `pmlc train`'s bit for bit:
 *
 *   checkpoint_api FILE.pml train  STEPS EVERY OUT        from the initialisers
 *   checkpoint_api FILE.pml resume STEPS EVERY OUT FROM   from the checkpoint FROM
 *   checkpoint_api FILE.pml init   STEPS EVERY OUT W      from the weights W
 *   checkpoint_api FILE.pml refuse OTHER_CKPT CKPT        the error paths (below)
 *
 * Each saves a checkpoint every EVERY steps into OUT/step-NNNNNN and the last into OUT,
 * the cadence of the train block's checkpoint_every. Exit 0 when all went as asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml.h"
#include "pmlc.h"

static int fail(const char *what, pml_context *ctx)
{
    fprintf(stderr, "checkpoint_api: %s: %s\n", what, ctx ? pml_context_error(ctx) : "");
    return 1;
}

/* The plan of FILE, compiled in this process. */
static pml_plan *compile(pml_context *ctx, const char *file)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *c = pmlc_session_create(&opt);
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_plan *plan = NULL;
    if (c && !pmlc_session_check_file(c, file) && !pmlc_session_plan_bytes(c, &bytes, &len) &&
        pml_plan_open_memory(ctx, bytes, len, file, &plan))
        fail("the plan does not open", ctx);
    free(bytes);
    pmlc_session_destroy(c);
    return plan;
}

/* Trains `s` on to `steps`, saving every `every` steps and at the end. */
static int train(pml_context *ctx, pml_session *s, int64_t steps, int64_t every, const char *out)
{
    for (int64_t k = pml_session_steps_done(s); k < steps; k++) {
        pml_step_metrics m;
        if (pml_session_train_step(s, &m)) return fail("a step failed", ctx);
        if (m.step != k + 1) return fail("the step count is off", NULL);
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/step-%06lld", out, (long long)m.step);
        if (every > 0 && m.step % every == 0 && pml_session_save(s, dir)) return fail("a periodic save failed", ctx);
    }
    return pml_session_save(s, out) ? fail("the final save failed", ctx) : 0;
}

/* A call that must fail with `want`, its message containing `says`. */
static int refused(pml_context *ctx, pml_status got, pml_status want, const char *says, const char *what)
{
    if (got == want && strstr(pml_context_error(ctx), says)) return 0;
    fprintf(stderr, "checkpoint_api: %s: got '%s' (%s), wanted '%s' with '%s'\n", what, pml_status_name(got),
            pml_context_error(ctx), pml_status_name(want), says);
    return 1;
}

/* The error paths: each refusal names what is wrong and leaves the session as it was. */
static int refusals(pml_context *ctx, const pml_plan *plan, const char *other, const char *ckpt)
{
    pml_checkpoint_info info;
    pml_session *s = NULL;
    int bad = 0;
    if (pml_session_create(ctx, plan, PML_BACKEND_CPU, pml_plan_seed(plan) + 1, &s)) return fail("no session", ctx);
    bad |= refused(ctx, pml_checkpoint_read_info(ctx, plan, other, &info), PML_ERR_FORMAT, other,
                   "another model's checkpoint");
    bad |= refused(ctx, pml_checkpoint_read_info(ctx, plan, NULL, &info), PML_ERR_INVALID_ARG, "dir is NULL",
                   "read_info without a folder");
    bad |= refused(ctx, pml_session_resume(s, ckpt), PML_ERR_INVALID_ARG, "was trained with seed",
                   "a resume with another seed");
    bad |= refused(ctx, pml_session_resume(s, "/nonexistent/pml-ckpt"), PML_ERR_IO, "/nonexistent/pml-ckpt",
                   "a resume from a missing folder");
    bad |= refused(ctx, pml_session_load_weights(s, other), PML_ERR_FORMAT, other, "another model's weights");
    bad |= refused(ctx, pml_session_load_weights(s, ""), PML_ERR_INVALID_ARG, "path is \"\"", "weights without a path");
    bad |= refused(ctx, pml_session_save(s, NULL), PML_ERR_INVALID_ARG, "dir is NULL", "a save without a folder");
    bad |= refused(ctx, pml_checkpoint_check_folder(ctx, "/proc/pml-no-such-folder"), PML_ERR_IO,
                   "/proc/pml-no-such-folder", "an output folder that cannot be made");
    if (pml_session_steps_done(s) != 0) bad |= fail("a refusal moved the step", NULL);
    if (pml_checkpoint_read_info(ctx, plan, ckpt, &info) || info.step <= 0 || info.seed != pml_plan_seed(plan))
        bad |= fail("the checkpoint's info", ctx);
    pml_session_destroy(s);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fputs("usage: checkpoint_api FILE.pml train|resume|init|refuse ...\n", stderr);
        return 2;
    }
    pml_context *ctx;
    if (pml_context_create(&ctx)) return fail("no context", NULL);
    pml_plan *plan = compile(ctx, argv[1]);
    const char *mode = argv[2];
    int rc = 1;
    if (!plan) {
        rc = 1;
    } else if (!strcmp(mode, "refuse")) {
        rc = refusals(ctx, plan, argv[3], argv[4]);
    } else if (argc >= 6) {
        int64_t steps = atoll(argv[3]), every = atoll(argv[4]);
        const char *out = argv[5], *from = argc > 6 ? argv[6] : NULL;
        int resume = !strcmp(mode, "resume"), init = !strcmp(mode, "init");
        pml_checkpoint_info info = {0, pml_plan_seed(plan), 0};
        pml_session *s = NULL;
        if ((resume || init) && !from)
            rc = fail("resume and init need a checkpoint or weights", NULL);
        else if (resume && pml_checkpoint_read_info(ctx, plan, from, &info))
            rc = fail("the checkpoint's info", ctx);
        else if (pml_session_create(ctx, plan, PML_BACKEND_CPU, info.seed, &s))
            rc = fail("no session", ctx);
        else if (resume && pml_session_resume(s, from))
            rc = fail("the resume failed", ctx);
        else if (init && pml_session_load_weights(s, from))
            rc = fail("the weights do not load", ctx);
        else if (pml_session_steps_done(s) != info.step)
            rc = fail("the session is not at the checkpoint's step", NULL);
        else
            rc = train(ctx, s, steps, every, out);
        pml_session_destroy(s);
    }
    pml_plan_close(plan);
    pml_context_destroy(ctx);
    return rc;
}

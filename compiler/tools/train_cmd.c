/* train_cmd.c — `pmlc train`: compile a program, train it on the CPU as a micro-batch
 * pipeline, and write the final weights.
 *
 * The compiled plan goes through the plan-file bytes even in one process, so what is
 * trained is exactly what `pmlc build` would write. Progress is one line per report:
 * redrawn in place with a bar on a terminal, plain lines otherwise; --metrics writes
 * one JSON record per step. */
#define _DEFAULT_SOURCE /* isatty, mkdir */
#include "train_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "plan/plan.h"
#include "plan_write.h"
#include "session_int.h"
#include "train/feed.h"
#include "train/pipeline.h"

static int fail(const char *what, const pml_err *err)
{
    fprintf(stderr, "pmlc: error: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

/* Compiles the program and reads its plan back from the plan-file bytes. */
static int compile_plan(const pmlc_train_args *a, pml_plan **out)
{
    pmlc_session *s = pmlc_session_create(&a->compile);
    if (!s) return fail("out of memory", NULL);
    const pmlc_plan *plan = NULL;
    int rc = 1;
    if (!pmlc_session_check_file(s, a->file) && pmlc_session_graph(s, &plan)) {
        unsigned char *bytes = NULL;
        size_t len = 0;
        if (!pmlc_plan_serialize(pmlc_session_program(s), plan, &bytes, &len)) {
            pml_err err = {0};
            rc = pml_plan_read(bytes, len, a->file, out, &err) ? fail("the compiled plan does not load", &err) : 0;
        }
        free(bytes);
    }
    if (pmlc_session_errors(s))
        fprintf(stderr, "%d error%s generated.\n", pmlc_session_errors(s), pmlc_session_errors(s) == 1 ? "" : "s");
    pmlc_session_destroy(s);
    return rc;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "pmlc: error: cannot create '%s': %s\n", dir, strerror(errno));
    return 1;
}

/* DIR/model.safetensors: every parameter under its plan name, as f32. */
static int write_weights(const pml_plan *pl, pml_pipeline *pipe, const char *dir, int64_t steps)
{
    if (make_dir(dir)) return 1;
    pml_st_tensor *ts = calloc((size_t)pl->n_params + 1, sizeof *ts);
    if (!ts) return fail("out of memory", NULL);
    for (int q = 0; q < pl->n_params; q++) {
        const pml_plan_node *n = &pl->nodes[pl->params[q].node];
        ts[q].name = pl->params[q].name;
        ts[q].dtype = PML_F32;
        ts[q].rank = n->rank;
        memcpy(ts[q].shape, n->dims, sizeof(int64_t) * n->rank);
        ts[q].data = pml_pipeline_param(pipe, q);
        ts[q].nbytes = (size_t)n->numel * sizeof(float);
    }
    char path[4096], step[32];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(step, sizeof step, "%lld", (long long)steps);
    pml_st_meta meta[2] = {{"format", "pt"}, {"pml_step", step}};
    pml_err err = {0};
    int rc = pml_st_write(path, ts, (size_t)pl->n_params, meta, 2, &err) ? fail("cannot write the weights", &err) : 0;
    free(ts);
    return rc;
}

static void progress(const pml_step_stats *st, int64_t total, int64_t samples, int tty, double elapsed)
{
    double rate = st->seconds > 0 ? (double)samples / st->seconds : 0;
    double eta = st->step + 1 < total ? elapsed / (double)(st->step + 1) * (double)(total - st->step - 1) : 0;
    char bar[32] = "";
    if (tty) {
        int filled = (int)(20.0 * (double)(st->step + 1) / (double)total);
        for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
        bar[20] = 0;
    }
    fprintf(stderr, "%s%s%sstep %lld/%lld  loss %.4f  lr %.2e  |g| %.3g  %.0f samples/s  %.1f ms/step  ETA %d:%02d%s",
            tty ? "\r" : "", tty ? bar : "", tty ? " " : "", (long long)st->step + 1, (long long)total, st->loss,
            st->lr, st->grad_norm, rate, 1e3 * st->seconds, (int)eta / 60, (int)eta % 60, tty ? "   " : "\n");
}

int pmlc_train_main(const pmlc_train_args *a)
{
    pml_plan *pl = NULL;
    if (compile_plan(a, &pl)) return 1;
    int64_t steps = a->steps >= 0 ? a->steps : pl->conf.steps;
    int rc = 1;
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    FILE *metrics = NULL;
    pml_err err = {0};
    if (steps < 0) {
        fail("the train block gives no 'steps': set it there or with --steps N", NULL);
        goto out;
    }
    if (pml_feed_create(pl, &feed, &err)) {
        fail("the training data", &err);
        goto out;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pml_pipeline_opts opts = {a->seed >= 0 ? (uint64_t)a->seed : (uint64_t)pl->conf.seed,
                              a->threads > 0 ? a->threads : (int)(cpus > 0 ? cpus : 1), pml_feed_fill, feed};
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) {
        fail("cannot set up training", &err);
        goto out;
    }
    if (a->metrics && !(metrics = fopen(a->metrics, "w"))) {
        fprintf(stderr, "pmlc: error: cannot write '%s': %s\n", a->metrics, strerror(errno));
        goto out;
    }
    int tty = isatty(STDERR_FILENO);
    if (!a->quiet) {
        double best = pml_feed_best_loss(feed);
        fprintf(stderr, "training %s: %d stage%s, %lld micro-batches of %lld, %lld steps", a->file,
                (int)pl->conf.stages, pl->conf.stages == 1 ? "" : "s", (long long)pl->conf.microbatches,
                (long long)pl->conf.microbatch, (long long)steps);
        if (!isnan(best)) fprintf(stderr, "; the data's entropy, the best possible loss, is %.4f", best);
        fputc('\n', stderr);
    }
    double elapsed = 0;
    int64_t every = steps >= 20 ? steps / 20 : 1;
    for (int64_t s = 0; s < steps; s++) {
        pml_step_stats st = {0};
        if (pml_pipeline_step(pipe, &st, &err)) {
            if (tty && !a->quiet) fputc('\n', stderr);
            fail("training failed", &err);
            goto out;
        }
        elapsed += st.seconds;
        if (!isfinite(st.loss)) {
            fprintf(stderr, "%spmlc: error: the loss is %g at step %lld: training diverged (lower the learning rate)\n",
                    tty ? "\n" : "", st.loss, (long long)s + 1);
            goto out;
        }
        if (metrics)
            fprintf(metrics,
                    "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.6g, "
                    "\"step_ms\": %.6g}\n",
                    (long long)s + 1, st.loss, st.lr, st.grad_norm,
                    st.seconds > 0 ? (double)pl->conf.batch / st.seconds : 0, 1e3 * st.seconds);
        if (!a->quiet && (tty || (s + 1) % every == 0 || s + 1 == steps))
            progress(&st, steps, pl->conf.batch, tty, elapsed);
    }
    if (tty && !a->quiet && steps) fputc('\n', stderr);
    rc = a->out ? write_weights(pl, pipe, a->out, steps) : 0;
out:
    if (metrics && fclose(metrics)) rc = fail("cannot finish the metrics file", NULL);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return rc;
}

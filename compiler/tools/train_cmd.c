/* train_cmd.c — `pmlc train`: compile a program (or load a plan file), train it on the CPU as a micro-batch
 * pipeline, and write the final weights.
 *
 * Checkpoints (train/checkpoint.h): --out DIR receives the final checkpoint
 * (model.safetensors, optimizer.safetensors, trainer.json) and, every checkpoint_every
 * steps of the train block, one in DIR/step-NNNNNN/. --init W.safetensors starts from
 * those weights instead of the initialisers; --resume DIR restores weights, optimizer
 * state, seed and step, and trains on to the --steps total (the step counts from the
 * start of the run).
 *
 * The compiled plan goes through the plan-file bytes even in one process, so what is
 * trained is exactly what `pmlc build` would write. Progress is one line per report:
 * redrawn in place with a bar on a terminal, plain lines otherwise; --metrics writes
 * one JSON record per step. */
#define _DEFAULT_SOURCE /* isatty, mkdir */
#include "train_cmd.h"

#include "build_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan/plan.h"
#include "train/checkpoint.h"
#include "train/feed.h"
#include "train/pipeline.h"

static int fail(const char *what, const pml_err *err)
{
    fprintf(stderr, "pmlc: error: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "pmlc: error: cannot create '%s': %s\n", dir, strerror(errno));
    return 1;
}

/* A checkpoint in `dir` (its parent must exist). */
static int save(const pml_plan *pl, pml_pipeline *pipe, uint64_t seed, const char *dir)
{
    pml_err err = {0};
    return pml_ckpt_save(pl, pipe, seed, dir, &err) ? fail("cannot write the checkpoint", &err) : 0;
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
    if (pmlc_plan_from_file(a->file, &a->compile, &pl)) return 1;
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
    pml_ckpt_info resume = {0, 0};
    if (a->resume) {
        if (pml_ckpt_read_info(pl, a->resume, &resume, &err)) {
            fail("cannot resume", &err);
            goto out;
        }
        if (a->seed >= 0 && (uint64_t)a->seed != resume.seed) {
            fprintf(stderr, "pmlc: error: cannot resume: %s was trained with seed %llu, not %lld\n", a->resume,
                    (unsigned long long)resume.seed, (long long)a->seed);
            goto out;
        }
        if (resume.step > steps) {
            fprintf(stderr, "pmlc: error: cannot resume: %s is at step %lld, past the %lld steps asked for\n",
                    a->resume, (long long)resume.step, (long long)steps);
            goto out;
        }
        opts.seed = resume.seed;
    }
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) {
        fail("cannot set up training", &err);
        goto out;
    }
    if (a->init && pml_ckpt_load_weights(pl, pipe, a->init, &err)) {
        fail("cannot load the initial weights", &err);
        goto out;
    }
    if (a->resume && pml_ckpt_restore(pl, pipe, a->resume, &err)) {
        fail("cannot resume", &err);
        goto out;
    }
    int64_t first = pml_pipeline_steps_done(pipe);
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
    for (int64_t s = first; s < steps; s++) {
        pml_step_stats st = {0};
        if (pml_pipeline_step(pipe, &st, &err)) {
            if (tty && !a->quiet) fputc('\n', stderr);
            fail("training failed", &err);
            goto out;
        }
        elapsed += st.seconds; /* progress's ETA counts from step 0: close enough on a resume */
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
        if (a->out && pl->conf.checkpoint_every > 0 && (s + 1) % pl->conf.checkpoint_every == 0) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/step-%06lld", a->out, (long long)s + 1);
            if (make_dir(a->out) || save(pl, pipe, opts.seed, dir)) goto out;
        }
    }
    if (tty && !a->quiet && steps > first) fputc('\n', stderr);
    rc = a->out ? save(pl, pipe, opts.seed, a->out) : 0;
out:
    if (metrics && fclose(metrics)) rc = fail("cannot finish the metrics file", NULL);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    pml_plan_free(pl);
    return rc;
}

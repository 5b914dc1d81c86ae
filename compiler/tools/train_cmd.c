/* train_cmd.c — `pmlc train`: compile a program (or load a plan file), train it on the CPU as a micro-batch
 * pipeline, and write the final weights.
 *
 * Checkpoints (ckpt/checkpoint.h): --out DIR receives the final checkpoint
 * (model.safetensors, optimizer.safetensors, trainer.json) and, every checkpoint_every
 * steps of the train block, one in DIR/step-NNNNNN/. --init W.safetensors starts from
 * those weights instead of the initialisers; --resume DIR restores weights, optimizer
 * state, seed and step, and trains on to the --steps total (the step counts from the
 * start of the run).
 *
 * The compiled plan goes through the plan-file bytes even in one process, so what is
 * trained is exactly what `pmlc build` would write. Progress is one line per report:
 * redrawn in place with a bar on a terminal, plain lines otherwise; --metrics writes
 * one JSON record per step.
 *
 * Evaluation (--eval N at the end, eval_every = K during training) draws what the feed
 * calls held-out (feed.h: eval files, a holdout, a generator's fresh samples) and, when
 * nothing is held out, training rows, which it says; one metrics record each.
 *
 * Ranks (train_ranks.h): launched as N processes (`mpirun -np N pmlc train ...`), each
 * runs its share of the stages; rank 0 alone prints, writes metrics and the timeline
 * (of every rank's stages, gathered: train_trace.h), evaluates (on the model gathered
 * onto it) and reads --init and --resume (then sends each rank its part). Checkpoints are sharded: each rank of
 * the first replica writes the stages it runs, and rank 0 commits (save_all). */
#define _DEFAULT_SOURCE /* isatty, fdopen */
#include "train_cmd.h"

#include "build_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/checkpoint.h"
#include "cli_util.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "formats/out_path.h"
#include "plan/plan.h"
#include "recut.h"
#include "train_ranks.h"
#include "train_trace.h"

/* A checkpoint of the whole model in `dir` (ckpt/checkpoint.h: written beside the
 * one there, then committed at once). One process writes one file of each kind; ranks
 * write shards: rank 0 begins the save and tells every rank its stage folder, each rank
 * of replica 0 writes the stages it runs into it, every rank learns whether all did,
 * and only then rank 0 commits. */
static int save_all(pmlc_ranks *r, const pml_plan *pl, pml_pipeline *pipe, uint64_t seed, const char *dir)
{
    pml_err err = {0};
    if (!r->dist)
        return pml_ckpt_save(pl, pipe, seed, dir, &err) ? pmlc_cli_fail("cannot write the checkpoint", &err) : 0;
    int lead = r->rank == 0, rc = 0;
    /* An automatic freeze check due now runs before rank 0 writes its state, and on
     * every rank at once: it sums the layers' norms over the ranks (plan/phase.h). */
    struct pml_phase *ph;
    if (pl->conf.freeze_every > 0 && pml_pipeline_phase(pipe, &ph, &err))
        return pmlc_cli_fail("cannot run the automatic freeze's check", &err);
    int per = r->world / r->dist->replicas;
    /* Every shard is finite before rank 0 begins anything (checkpoint.h). */
    if (r->dist->replica == 0 && pml_ckpt_check_finite(pl, pipe, dir, r->rank, per, &err))
        rc = pmlc_cli_fail("cannot write the checkpoint", &err);
    if (pmlc_ranks_agree(r, rc)) return 1;
    char stage[4096] = "";
    if (lead && pml_ckpt_begin(dir, stage, sizeof stage, &err)) rc = pmlc_cli_fail("cannot write the checkpoint", &err);
    if (pmlc_ranks_agree(r, rc) || pmlc_ranks_share(r, stage, sizeof stage)) return 1;
    if (r->dist->replica == 0 && pml_ckpt_save_shard(pl, pipe, stage, r->rank, per, &err)) {
        char what[64];
        snprintf(what, sizeof what, "rank %d cannot write its checkpoint shard", r->rank);
        rc = pmlc_cli_fail(what, &err);
    }
    double failed = rc != 0;
    if (r->dist->sum(r->dist, &failed, 1, &err)) return pmlc_cli_fail("cannot reach the other ranks", &err);
    if (failed > 0) {
        if (lead) fprintf(stderr, "pmlc: error: %s was not committed: %.0f rank(s) could not write\n", dir, failed);
        if (lead) pml_out_remove_folder(stage);
        return 1;
    }
    if (lead && pml_ckpt_commit(pl, pipe, seed, dir, stage, per, &err))
        rc = pmlc_cli_fail("cannot commit the checkpoint", &err);
    return pmlc_ranks_agree(r, rc);
}

/* Every output is checked before the first step (formats/out_path.h), on rank 0, which
 * writes them: a path that cannot be written fails now, with the path and why, rather
 * than after the run. --out is created here (as mkdir -p), after the inputs were found
 * good, so a refused input leaves nothing behind. --trace is checked by
 * pmlc_trace_begin. */
static int check_outputs(const pmlc_train_args *a, pmlc_ranks *r)
{
    pml_err err = {0};
    int rc = 0;
    if (r->rank == 0 && a->out && pml_ckpt_check_folder(a->out, &err)) rc = pmlc_cli_fail("--out", &err);
    if (r->rank == 0 && !rc && a->metrics && pml_out_check(a->metrics, &err)) rc = pmlc_cli_fail("--metrics", &err);
    return pmlc_ranks_agree(r, rc);
}

/* --metrics: a log written as training goes, so in place (out_path.h's rule for streams). */
static FILE *open_metrics(const char *path)
{
    pml_err err = {0};
    int fd;
    FILE *f = NULL;
    if (pml_out_open_stream(path, &fd, &err)) {
        pmlc_cli_fail("--metrics", &err);
    } else if (!(f = fdopen(fd, "w"))) {
        fprintf(stderr, "pmlc: error: --metrics: %s: %s\n", path, strerror(errno));
        close(fd);
    }
    return f;
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

/* An evaluation of `batches` batches (pipeline.h's PML_EVAL_STEP0 on): loss (with the
 * data's loss floor, when known) and accuracy for classification, said with what it
 * was drawn from — held-out data, or training rows when nothing is held out (never
 * called held-out then) — and one record in the metrics: "eval_at_step" during
 * training (at_step >= 0), the final one without it. */
static int evaluate(const pml_plan *pl, pml_pipeline *pipe, const pml_feed *feed, int64_t batches, int64_t at_step,
                    int quiet, FILE *metrics)
{
    double loss, acc;
    pml_err err = {0};
    if (pml_pipeline_evaluate(pipe, batches, &loss, &acc, &err)) return pmlc_cli_fail("evaluation failed", &err);
    int64_t rows = 0, samples = batches * pl->conf.batch;
    const char *path = NULL;
    pml_feed_eval src = pml_feed_eval_source(feed, &rows, &path);
    static const char *const source_names[] = {"fresh", "held_out", "held_out", "training"};
    if (!quiet) {
        double best = pml_feed_best_loss(feed);
        if (at_step >= 0)
            fprintf(stderr, "eval at step %lld: ", (long long)at_step);
        else
            fputs("eval: ", stderr);
        if (src == PML_FEED_EVAL_TRAINING)
            fprintf(stderr, "%lld samples of the training %s (nothing is held out: give eval_data or holdout)",
                    (long long)samples, rows ? "rows" : "tokens");
        else if (src == PML_FEED_EVAL_FRESH)
            fprintf(stderr, "%lld held-out samples (fresh from the generator)", (long long)samples);
        else if (rows)
            fprintf(stderr, "%lld held-out samples (%lld rows %s %s)", (long long)samples, (long long)rows,
                    src == PML_FEED_EVAL_FILES ? "of" : "held out of", path);
        else
            fprintf(stderr, "%lld held-out windows (%s %s)", (long long)samples,
                    src == PML_FEED_EVAL_FILES ? "of" : "the tokens held out of", path);
        fprintf(stderr, ", loss %.4f", loss);
        if (!isnan(best))
            fprintf(stderr, " (the data's entropy is %.4f: %.1f%% above it)", best, 100 * (loss / best - 1));
        if (!isnan(acc)) fprintf(stderr, ", accuracy %.2f%%", 100 * acc);
        fputc('\n', stderr);
    }
    if (metrics) {
        char accuracy[32] = "null", held[32] = "null", at[48] = ""; /* JSON has no NaN */
        if (!isnan(acc)) snprintf(accuracy, sizeof accuracy, "%.9g", acc);
        if (isfinite(loss)) snprintf(held, sizeof held, "%.9g", loss);
        if (at_step >= 0) snprintf(at, sizeof at, "\"eval_at_step\": %lld, ", (long long)at_step);
        fprintf(metrics,
                "{%s\"eval_samples\": %lld, \"eval_loss\": %s, \"eval_accuracy\": %s, \"eval_source\": \"%s\"}\n", at,
                (long long)samples, held, accuracy, source_names[src]);
    }
    return 0;
}

/* Batches per evaluation during training: --eval N when given, else enough to cover a
 * held-out set of rows once, else one. */
static int64_t eval_every_batches(const pmlc_train_args *a, const pml_plan *pl, const pml_feed *feed)
{
    int64_t rows = 0;
    pml_feed_eval_source(feed, &rows, NULL);
    if (a->eval > 0) return a->eval;
    return rows > 0 ? (rows + pl->conf.batch - 1) / pl->conf.batch : 1;
}

/* Where a checkpoint resumes: read and checked by rank 0, then told to every rank. */
static int resume_info(const pmlc_train_args *a, const pml_plan *pl, pmlc_ranks *r, int64_t steps,
                       pml_ckpt_info *info)
{
    int rc = 0;
    pml_err err = {0};
    if (r->rank == 0) {
        if (pml_ckpt_read_info(pl, a->resume, info, &err)) {
            rc = pmlc_cli_fail("cannot resume", &err);
        } else if (a->seed >= 0 && (uint64_t)a->seed != info->seed) {
            fprintf(stderr, "pmlc: error: cannot resume: %s was trained with seed %llu, not %lld\n", a->resume,
                    (unsigned long long)info->seed, (long long)a->seed);
            rc = 1;
        } else if (info->step > steps) {
            fprintf(stderr, "pmlc: error: cannot resume: %s is at step %lld, past the %lld steps asked for\n",
                    a->resume, (long long)info->step, (long long)steps);
            rc = 1;
        }
    }
    return pmlc_ranks_agree(r, rc) || pmlc_ranks_share(r, info, sizeof *info);
}

int pmlc_train_main(const pmlc_train_args *a)
{
    pml_plan *pl = NULL;
    uint64_t plan_hash = 0;
    char **where = NULL; /* --check-numerics names each op's source line */
    /* --check-numerics runs on the CPU: auto picks it; cuda is refused (as its backend does: backend_ops.h) */
    if (a->check_numerics && a->backend == PML_BACKEND_CUDA)
        return pmlc_cli_fail("--check-numerics checks each op's output on the CPU backend only: run with --backend "
                             "cpu (or auto)",
                             NULL);
    pml_backend want = a->check_numerics && a->backend == PML_BACKEND_AUTO ? PML_BACKEND_CPU : a->backend;
    if (pmlc_plan_from_file_where(a->file, &a->compile, want, &pl, &plan_hash, a->check_numerics ? &where : NULL))
        return 1;
    pml_plan *pl0 = pl; /* the feed's; later phases' plans are the recut's */
    pmlc_recut recut;
    pmlc_recut_init(&recut, a->file, &a->compile, pl);
    int64_t steps = a->steps >= 0 ? a->steps : pl->conf.steps;
    int rc = 1;
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    FILE *metrics = NULL;
    pml_err err = {0};
    pmlc_ranks ranks = {0, 1, NULL};
    pmlc_trace trace = {0};
    if (steps < 0) {
        pmlc_cli_fail("the train block gives no 'steps': set it there or with --steps N", NULL);
        goto out;
    }
    pml_backend backend;
    const pml_backend_ops *ops;
    if (pmlc_cli_backend(want, pl, &backend, &ops)) goto out;
    if (pml_feed_create(pl, &feed, &err)) {
        pmlc_cli_fail("the training data", &err);
        goto out;
    }
    if (pmlc_ranks_open(a, pl, plan_hash, steps, backend, &ranks) || pmlc_trace_begin(&trace, a->trace, &ranks)) goto out;
    /* Ranks keep the step-0 cut: a re-cut would move stages between processes. The
     * freezes still happen, in place (plan/phase.h). */
    if (ranks.world > 1) recut.enabled = 0;
    if (ranks.world > 1 && pl->conf.eval_every > 0) { /* evaluation needs the whole model on one process */
        if (ranks.rank == 0)
            fprintf(stderr,
                    "pmlc: error: eval_every = %lld evaluates during training in one process; with ranks, "
                    "evaluate at the end with --eval N (--set eval_every=0 turns it off)\n",
                    (long long)pl->conf.eval_every);
        goto out;
    }
    if (ranks.world > 1 && backend == PML_BACKEND_CUDA) { /* NCCL between GPUs is not written yet */
        fprintf(stderr, "pmlc: error: ranks run on the CPU backend only (the MPI transport moves host memory): "
                        "pass --backend cpu\n");
        goto out;
    }
    int lead = ranks.rank == 0, quiet = a->quiet || !lead;
    pml_pipeline_opts opts = {.seed = a->seed >= 0 ? (uint64_t)a->seed : (uint64_t)pl->conf.seed,
                              .threads = a->threads > 0 ? a->threads : pmlc_ranks_default_threads(),
                              .feed = pml_feed_fill,
                              .feed_ctx = feed,
                              .backend = ops,
                              .trace = a->trace != NULL,
                              .dist = ranks.dist,
                              .check_numerics = a->check_numerics,
                              .node_where = (const char *const *)where};
    pml_ckpt_info resume = {0};
    if (a->resume && resume_info(a, pl, &ranks, steps, &resume)) goto out;
    if (a->resume) opts.seed = resume.seed;
    if (a->resume && resume.freeze_afresh && !quiet)
        fprintf(stderr, "pmlc: note: the checkpoint predates saved 'freeze auto' state, so its checks start afresh: "
                        "the layers it froze before train again until a check freezes them\n");
    if (pml_pipeline_create(pl, &opts, &pipe, &err) || pml_ckpt_load_teacher(pl, pipe, &err)) {
        pmlc_cli_fail("cannot set up training", &err);
        goto out;
    }
    if (a->init || a->resume) {
        int loaded = 0;
        if (lead && a->init && pml_ckpt_load_weights(pl, pipe, a->init, &err))
            loaded = pmlc_cli_fail("cannot load the initial weights", &err);
        if (lead && a->resume && pml_ckpt_restore(pl, pipe, a->resume, &err))
            loaded = pmlc_cli_fail("cannot resume", &err);
        if (pmlc_ranks_agree(&ranks, loaded) || pmlc_ranks_scatter(&ranks, pl, pipe)) goto out;
        if (a->resume) pml_pipeline_set_step(pipe, resume.step);
    }
    if (check_outputs(a, &ranks)) goto out; /* the inputs are good: now the outputs, still before step 1 */
    int64_t first = pml_pipeline_steps_done(pipe);
    if (lead && a->metrics && !(metrics = open_metrics(a->metrics))) goto out;
    int tty = isatty(STDERR_FILENO);
    if (!quiet) {
        double best = pml_feed_best_loss(feed);
        fprintf(stderr, "training %s on the %s: %d stage%s, %lld micro-batches of %lld, %lld steps", a->file,
                backend == PML_BACKEND_CUDA ? "GPU" : "CPU", (int)pl->conf.stages, pl->conf.stages == 1 ? "" : "s",
                (long long)pl->conf.microbatches, (long long)pl->conf.microbatch, (long long)steps);
        if (ranks.world > 1) fprintf(stderr, ", on %d ranks", ranks.world);
        if (ranks.dist && ranks.dist->replicas > 1)
            fprintf(stderr, " as %d replicas of %d", ranks.dist->replicas, ranks.world / ranks.dist->replicas);
        if (!isnan(best)) fprintf(stderr, "; the data's entropy, the best possible loss, is %.4f", best);
        fputc('\n', stderr);
    }
    double elapsed = 0;
    int64_t every = steps >= 20 ? steps / 20 : 1;
    for (int64_t s = first; s < steps; s++) {
        pml_step_stats st = {0};
        if (pmlc_recut_due(&recut, pl, s)) { /* a freeze starts: re-plan the stages (recut.h) */
            if (tty && !a->quiet) fputc('\n', stderr);
            if (pmlc_recut_switch(&recut, s, &opts, &pl, &pipe, metrics, a->quiet)) goto out;
        }
        if (pml_pipeline_step(pipe, &st, &err)) {
            if (tty && !quiet) fputc('\n', stderr);
            char what[64];
            snprintf(what, sizeof what, ranks.world > 1 ? "training failed on rank %d" : "training failed", ranks.rank);
            pmlc_cli_fail(what, &err);
            /* The step updated nothing (pipeline.h); the files were checked at load. */
            if (err.code == PML_ERR_NONFINITE && !quiet)
                fprintf(stderr, "pmlc: note: the step was not applied and no checkpoint of it was written%s\n",
                        a->check_numerics ? ""
                                          : "; a diverging run needs a lower learning rate, and --check-numerics "
                                            "names the op that first makes a non-finite value");
            goto out;
        }
        elapsed += st.seconds; /* progress's ETA counts from step 0: close enough on a resume */
        /* The first step warms caches and allocators: the means leave it out. */
        pmlc_trace_step(&trace, pipe, s > first);
        if (metrics)
            fprintf(metrics,
                    "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"samples_per_s\": %.6g, "
                    "\"step_ms\": %.6g}\n",
                    (long long)s + 1, st.loss, st.lr, st.grad_norm,
                    st.seconds > 0 ? (double)pl->conf.batch / st.seconds : 0, 1e3 * st.seconds);
        if (!quiet && (tty || (s + 1) % every == 0 || s + 1 == steps))
            progress(&st, steps, pl->conf.batch, tty, elapsed);
        if (pl->conf.eval_every > 0 && (s + 1) % pl->conf.eval_every == 0) {
            if (tty && !quiet) fputc('\n', stderr);
            if (evaluate(pl, pipe, feed, eval_every_batches(a, pl, feed), s + 1, quiet, metrics)) goto out;
        }
        if (a->out && pl->conf.checkpoint_every > 0 && (s + 1) % pl->conf.checkpoint_every == 0) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/step-%06lld", a->out, (long long)s + 1);
            if (save_all(&ranks, pl, pipe, opts.seed, dir)) goto out;
        }
    }
    if (tty && !quiet && steps > first) fputc('\n', stderr);
    /* A timeline that cannot be written still leaves the checkpoint written. */
    int trace_rc = pmlc_trace_finish(&trace, &ranks, pl, pipe, a->quiet);
    if (trace_rc == 2) goto out;
    /* Rank 0 evaluates on the whole model, gathered from the others; every rank takes
     * part in writing the final checkpoint. */
    if (a->eval > 0 && pmlc_ranks_gather(&ranks, pl, pipe)) goto out;
    if (pmlc_ranks_agree(&ranks, lead && a->eval > 0 && evaluate(pl, pipe, feed, a->eval, -1, 0, metrics))) goto out;
    rc = (a->out ? save_all(&ranks, pl, pipe, opts.seed, a->out) : 0) || trace_rc;
out:
    if (metrics && fclose(metrics)) rc = pmlc_cli_fail("cannot finish the metrics file", NULL);
    if (rc) pmlc_ranks_abandon(&ranks);
    pml_pipeline_destroy(pipe);
    pmlc_ranks_close(&ranks);
    pmlc_trace_free(&trace);
    pml_feed_destroy(feed);
    pml_plan_free(pl0);
    pmlc_recut_free(&recut);
    pmlc_where_free(where);
    return rc;
}

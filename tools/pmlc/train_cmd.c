/* train_cmd.c — `pmlc train`: compile a program (or load a plan file) and train it as a
 * micro-batch pipeline through pml.h's training driver (pml_session_open,
 * pml_session_run), printing what the run tells.
 *
 * Checkpoints: --out DIR receives the final checkpoint (model.safetensors,
 * optimizer.safetensors, trainer.json) and, every checkpoint_every steps of the train
 * block, one in DIR/step-NNNNNN/. --init W.safetensors starts from those weights instead
 * of the initialisers; --resume DIR restores weights, optimizer state, seed and step,
 * and trains on to the --steps total (the step counts from the start of the run).
 *
 * The compiled plan goes through the plan-file bytes even in one process, so what is
 * trained is exactly what `pmlc build` would write. Progress is one line per report:
 * redrawn in place with a bar on a terminal, plain lines otherwise; --metrics writes
 * one JSON record per step.
 *
 * Evaluation (--eval N at the end, eval_every = K during training) draws what the feed
 * calls held-out (eval files, a holdout, a generator's fresh samples) and, when nothing
 * is held out, training rows, which it says; one metrics record each.
 *
 * A re-cut at each scheduled freeze (a program on several stages, one process): the
 * driver asks for the phase's plan, which is the program planned again with
 * pmlc_options.freeze_from (a plan file keeps its cut).
 *
 * Ranks (train_ranks.h): launched as N processes (`mpirun -np N pmlc train ...`, or
 * torchrun-style over TCP), each runs its share of the stages; rank 0 alone prints, and
 * the driver does the rest.
 *
 * Signals (cli_signal.h): SIGINT, SIGTERM and SIGUSR1 stop the run at the next step
 * boundary with its step saved into --out; pmlc then says how to resume and exits
 * with 128 + the signal's number. A second one ends at once. */
#define _DEFAULT_SOURCE /* isatty */
#include "train_cmd.h"

#include "build_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_signal.h"
#include "cli_util.h"
#include "train_ranks.h"

/* What the run's events print. */
typedef struct printer {
    const pmlc_train_args *a;
    int tty, quiet; /* quiet: --quiet, or not rank 0 */
    int midline;    /* a progress bar was drawn and its line is still open */
    int64_t every;  /* steps between progress lines off a terminal */
} printer;

/* Closes a progress bar's line before anything else is printed under it. */
static void end_line(printer *p)
{
    if (p->midline) fputc('\n', stderr);
    p->midline = 0;
}

static void start(printer *p, const pml_run_event *ev)
{
    p->every = ev->steps >= 20 ? ev->steps / 20 : 1;
    if (p->quiet) return;
    fprintf(stderr, "training %s on the %s: %d stage%s, %lld micro-batches of %lld, %lld steps", p->a->file,
            ev->start.backend == PML_BACKEND_CUDA ? "GPU" : "CPU", ev->start.stages, ev->start.stages == 1 ? "" : "s",
            (long long)ev->start.microbatches, (long long)ev->start.microbatch, (long long)ev->steps);
    if (ev->start.world > 1) fprintf(stderr, ", on %d ranks", ev->start.world);
    if (ev->start.replicas > 1)
        fprintf(stderr, " as %d replicas of %d", ev->start.replicas, ev->start.world / ev->start.replicas);
    if (!isnan(ev->start.best_loss))
        fprintf(stderr, "; the data's entropy, the best possible loss, is %.4f", ev->start.best_loss);
    if (ev->start.precision) fprintf(stderr, "; %s", ev->start.precision);
    if (ev->placed) fprintf(stderr, "; %s", ev->placed);
    fputc('\n', stderr);
}

static void progress(printer *p, const pml_run_event *ev)
{
    const pml_step_metrics *st = ev->metrics;
    int64_t total = ev->steps, step = ev->at_step - 1; /* 0-based */
    if (p->quiet || !(p->tty || ev->at_step % p->every == 0 || ev->at_step == total)) return;
    double rate = st->seconds > 0 ? (double)st->samples / st->seconds : 0;
    /* The ETA counts from step 0: close enough on a resume. */
    double eta = step + 1 < total ? ev->elapsed / (double)(step + 1) * (double)(total - step - 1) : 0;
    char bar[32] = "";
    if (p->tty) {
        int filled = (int)(20.0 * (double)(step + 1) / (double)total);
        for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
        bar[20] = 0;
    }
    char skipped[80] = ""; /* f16's loss scaling skipped the step */
    if (st->skipped) snprintf(skipped, sizeof skipped, "  skipped (gradients overflow at loss scale %g)", st->loss_scale);
    fprintf(stderr, "%s%s%sstep %lld/%lld  loss %.4f  lr %.2e  |g| %.3g%s  %.0f samples/s  %.1f ms/step  ETA %d:%02d%s",
            p->tty ? "\r" : "", p->tty ? bar : "", p->tty ? " " : "", (long long)step + 1, (long long)total, st->loss,
            st->lr, st->grad_norm, skipped, rate, 1e3 * st->seconds, (int)eta / 60, (int)eta % 60,
            p->tty ? "   " : "\n");
    p->midline = p->tty;
}

/* An evaluation: loss (with the data's loss floor, when known) and accuracy for
 * classification, said with what it was drawn from — held-out data, or training rows
 * when nothing is held out (never called held-out then). The one after training is
 * printed even with --quiet. */
static void eval(printer *p, const pml_run_event *ev)
{
    end_line(p);
    if (ev->at_step >= 0 && p->quiet) return;
    const pml_eval_result *r = &ev->eval.result;
    long long samples = (long long)r->rows, rows = (long long)ev->eval.source_rows;
    const char *path = ev->eval.source_path;
    pml_eval_source src = ev->eval.source;
    if (ev->at_step >= 0)
        fprintf(stderr, "eval at step %lld: ", (long long)ev->at_step);
    else
        fputs("eval: ", stderr);
    if (src == PML_EVAL_TRAINING)
        fprintf(stderr, "%lld samples of the training %s (nothing is held out: give eval_data or holdout)", samples,
                rows ? "rows" : "tokens");
    else if (src == PML_EVAL_FRESH)
        fprintf(stderr, "%lld held-out samples (fresh from the generator)", samples);
    else if (rows)
        fprintf(stderr, "%lld held-out samples (%lld rows %s %s)", samples, rows,
                src == PML_EVAL_FILES ? "of" : "held out of", path);
    else
        fprintf(stderr, "%lld held-out windows (%s %s)", samples, src == PML_EVAL_FILES ? "of" : "the tokens held out of",
                path);
    fprintf(stderr, ", loss %.4f", r->loss);
    double best = ev->eval.best_loss;
    if (!isnan(best)) fprintf(stderr, " (the data's entropy is %.4f: %.1f%% above it)", best, 100 * (r->loss / best - 1));
    if (!isnan(r->accuracy)) fprintf(stderr, ", accuracy %.2f%%", 100 * r->accuracy);
    fputc('\n', stderr);
}

static void on_event(void *user, const pml_run_event *ev)
{
    printer *p = user;
    switch (ev->kind) {
    case PML_RUN_START: start(p, ev); break;
    case PML_RUN_STEP: progress(p, ev); break;
    case PML_RUN_EVAL: eval(p, ev); break;
    case PML_RUN_RECUT:
        if (p->tty && !p->a->quiet) fputc('\n', stderr);
        p->midline = 0;
        if (!p->a->quiet) fprintf(stderr, "step %lld: a freeze starts; stages re-cut: %s\n", (long long)ev->at_step, ev->text);
        break;
    case PML_RUN_NOTE:
        end_line(p);
        if (!p->quiet) fprintf(stderr, "pmlc: note: %s\n", ev->text);
        break;
    case PML_RUN_TRACE:
        end_line(p);
        if (!p->a->quiet) fprintf(stderr, "%s\n", ev->text);
        break;
    case PML_RUN_ERROR:
        end_line(p);
        fprintf(stderr, "pmlc: error: %s\n", ev->text);
        break;
    case PML_RUN_STOP:
        end_line(p);
        if (!p->quiet && ev->text)
            fprintf(stderr, "pmlc: stopping at step %lld: saving it to %s (a second signal ends at once, keeping the "
                    "checkpoint before it)\n", (long long)ev->at_step, ev->text);
        break;
    }
}

/* The re-cut's phase plans: the program planned again from the freeze's step on. */
typedef struct replanner {
    pml_context *ctx;
    const pmlc_train_args *a;
    char **where; /* the last phase's node locations, until the next (the driver copies them) */
} replanner;

static int replan(void *user, int64_t step, pml_backend backend, pml_plan **plan, const char *const **where)
{
    replanner *r = user;
    pmlc_options opt = r->a->compile;
    opt.freeze_from = step;
    pmlc_where_free(r->where);
    r->where = NULL;
    if (pmlc_plan_from_file_where(r->ctx, r->a->file, &opt, backend, plan, NULL, r->a->check_numerics ? &r->where : NULL))
        return 1;
    *where = (const char *const *)r->where;
    return 0;
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
    /* Until the session is open a signal ends pmlc at once; then it stops the run. */
    if (pmlc_signal_end_at_once()) return pmlc_cli_fail("cannot handle signals", NULL);
    pml_backend want = a->check_numerics && a->backend == PML_BACKEND_AUTO ? PML_BACKEND_CPU : a->backend;
    pml_context *ctx = NULL;
    if (pml_context_create(&ctx)) return pmlc_cli_fail("out of memory", NULL);
    int rc = 1;
    if (pmlc_cli_devices(ctx, a->gpus, a->n_gpus, a->devices_local)) {
        pml_context_destroy(ctx);
        return 1;
    }
    pml_session *s = NULL;
    pmlc_ranks ranks = {0, 1, NULL};
    replanner re = {ctx, a, NULL};
    pml_backend backend;
    if (pmlc_plan_from_file_where(ctx, a->file, &a->compile, want, &pl, &plan_hash, a->check_numerics ? &where : NULL))
        goto out;
    int64_t steps = a->steps >= 0 ? a->steps : pml_plan_steps(pl);
    if (steps < 0) {
        pmlc_cli_fail("the train block gives no 'steps': set it there or with --steps N", NULL);
        goto out;
    }
    if (pmlc_cli_backend(ctx, want, pl, &backend) || pmlc_ranks_open(ctx, a, pl, plan_hash, steps, backend, &ranks))
        goto out;
    pml_session_options so = {.backend = backend,
                              .seed = a->seed,
                              .threads = a->threads,
                              .trace = a->trace || a->timeline,
                              .check_numerics = a->check_numerics,
                              .node_where = (const char *const *)where,
                              .dist = ranks.dist,
                              .init = a->init,
                              .resume = a->resume};
    pml_status opened = pml_session_open(ctx, pl, &so, &s);
    if (opened) { /* another rank's failure (PML_ERR_PEER) was said there */
        if (opened != PML_ERR_PEER) pmlc_cli_fail(pml_context_error(ctx), NULL);
        goto out;
    }
    printer p = {.a = a, .tty = isatty(STDERR_FILENO), .quiet = a->quiet || ranks.rank != 0};
    pml_run_options ro = {.steps = steps,
                          .out = a->out,
                          .eval = a->eval,
                          .metrics = a->metrics,
                          .trace = a->trace,
                          .timeline = a->timeline,
                          .on_event = on_event,
                          .event_user = &p,
                          .replan = pmlc_is_plan_file(a->file) ? NULL : replan,
                          .replan_user = &re};
    pml_run_result result;
    pmlc_signal_watch(s);
    pml_status st = pml_session_run(s, &ro, &result);
    pmlc_signal_watch(NULL);
    if (st && result.failed_in_step) {
        if (p.tty && !p.quiet) fputc('\n', stderr);
        p.midline = 0;
    }
    end_line(&p);
    if (st && st != PML_ERR_PEER) pmlc_cli_fail(pml_context_error(ctx), NULL);
    /* The step updated nothing (pml.h); the files were checked at load. */
    if (st == PML_ERR_NONFINITE && result.failed_in_step && !p.quiet)
        fprintf(stderr, "pmlc: note: the step was not applied and no checkpoint of it was written%s\n",
                a->check_numerics ? ""
                                  : "; a diverging run needs a lower learning rate, and --check-numerics "
                                    "names the op that first makes a non-finite value");
    if (!st && result.stopped && ranks.rank == 0) pmlc_signal_say_stopped(&result, a->argc, a->argv, a->out, ranks.world);
    /* A failed run's last periodic checkpoint is where it resumes: OUT itself holds the
     * previous run's final one, or none. A diverged run would diverge again as typed. */
    if (st && a->out && result.periodic_step > 0 && ranks.rank == 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/step-%06lld", a->out, (long long)result.periodic_step);
        fprintf(stderr, "pmlc: the last checkpoint is %s", dir);
        if (st == PML_ERR_NONFINITE) {
            fputs("\n", stderr);
        } else {
            fputs("; ", stderr);
            pmlc_cli_say_resume(a->argc, a->argv, dir, ranks.world);
        }
    }
    /* Progress that could not reach stderr (a closed pipe) is a log lost too; it cannot be said. */
    int lost = result.log_incomplete || ferror(stderr);
    rc = st ? 1 : result.stopped ? 128 + result.stop_signal : lost ? 3 : 0;
out:
    pml_session_destroy(s);
    pmlc_ranks_close(&ranks);
    pml_plan_close(pl);
    pml_context_destroy(ctx);
    pmlc_where_free(re.where);
    pmlc_where_free(where);
    return rc;
}

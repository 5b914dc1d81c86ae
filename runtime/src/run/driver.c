/* driver.c — the training driver (see driver.h): a run's checks before step 1, its
 * loop, and what follows the last step (trace, final evaluation, final checkpoint).
 *
 * Ranks: every rank runs this with the same options; rank 0 alone writes the metrics
 * and the trace (of every rank's stages, gathered: trace.h), evaluates (on the model
 * gathered onto it) and gets the events. Checkpoints are sharded: each rank of the
 * first replica writes the stages it runs, and rank 0 commits (save). */
#include "run/driver.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/checkpoint.h"
#include "exec/backend.h"
#include "formats/out_path.h"
#include "run/memory.h"
#include "run/ranks.h"
#include "run/trace.h"

/* One run's state beside its environment. */
typedef struct run {
    pml_run_env *env;
    const pml_run_options *o;
    pml_run_result *result;
    pml_dist *dist;
    int rank, world, lead;
    FILE *metrics;     /* rank 0, with o->metrics */
    int metrics_error; /* a write failed: said once, and the log is incomplete */
} run;

static void event(run *r, pml_run_event *ev)
{
    if (r->o->on_event) r->o->on_event(r->o->event_user, ev);
}

/* An error said where it happens (every rank), while the run goes on or the ranks
 * decide together; the run's own failure is its status. */
static void say_error(run *r, const pml_err *err)
{
    pml_run_event ev = {.kind = PML_RUN_ERROR, .text = err->msg};
    event(r, &ev);
}

/* One line of the metrics log; a failed write is said once (naming the file and the
 * system's reason) and the log marked incomplete, and training goes on. Each line is
 * flushed as it is written, so that a failure (a full disk, a pipe whose reader left)
 * is said when it happens, not at the end of the run, and a reader following the log
 * sees every step: one write per record, nothing beside a step's work. */
static void log_line(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(run *r, const char *fmt, ...)
{
    if (!r->metrics || r->metrics_error) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(r->metrics, fmt, ap);
    va_end(ap);
    if (n >= 0 && fflush(r->metrics) == 0) return;
    pml_err err = {0};
    pml_err_set(&err, PML_ERR_IO, "cannot write the metrics file %s: %s", r->o->metrics, strerror(errno));
    r->metrics_error = 1;
    r->result->log_incomplete = 1;
    say_error(r, &err);
}

/* A checkpoint of the whole model in `dir` (ckpt/checkpoint.h: written beside the one
 * there, then committed at once). One process writes one file of each kind; ranks write
 * shards: rank 0 begins the save and tells every rank its stage folder, each rank of
 * replica 0 writes the stages it runs into it, every rank learns whether all did, and
 * only then rank 0 commits. */
static pml_status save(run *r, const char *dir, pml_err *err)
{
    const pml_plan *pl = *r->env->plan;
    pml_pipeline *pipe = *r->env->pipe;
    pml_dist *d = r->dist;
    pml_err why = {0};
    if (!d) {
        if (pml_ckpt_save(pl, pipe, r->env->seed, dir, &why))
            return pml_err_set(err, why.code, "cannot write the checkpoint: %s", why.msg);
        return PML_OK;
    }
    pml_status st = PML_OK;
    /* An automatic freeze check due now runs before rank 0 writes its state, and on
     * every rank at once: it sums the layers' norms over the ranks (plan/phase.h). */
    struct pml_phase *ph;
    if (pl->conf.freeze_every > 0 && pml_pipeline_phase(pipe, &ph, &why))
        return pml_err_set(err, why.code, "cannot run the automatic freeze's check: %s", why.msg);
    int per = d->world / d->replicas;
    /* Every shard is finite before rank 0 begins anything (checkpoint.h). */
    if (d->replica == 0 && pml_ckpt_check_finite(pl, pipe, dir, d->rank, per, &why))
        st = pml_err_set(err, why.code, "cannot write the checkpoint: %s", why.msg);
    pml_status mine = st;
    if (st && !r->lead) say_error(r, err); /* its own; rank 0's comes back as the run's failure */
    if ((st = pml_run_agree(d, st, err))) return st;
    char stage[4096] = "";
    if (r->lead && pml_ckpt_begin(dir, stage, sizeof stage, &why))
        st = pml_err_set(err, why.code, "cannot write the checkpoint: %s", why.msg);
    if ((st = pml_run_agree(d, st, err)) || (st = pml_run_share(d, stage, sizeof stage, err))) return st;
    if (!mine && d->replica == 0 && pml_ckpt_save_shard(pl, pipe, stage, d->rank, per, &why)) {
        pml_err_set(err, why.code, "rank %d cannot write its checkpoint shard: %s", d->rank, why.msg);
        say_error(r, err);
        mine = why.code;
    }
    double failed = mine != PML_OK;
    if (d->sum(d, &failed, 1, &why)) return pml_err_set(err, why.code, "cannot reach the other ranks: %s", why.msg);
    if (failed > 0) {
        if (r->lead) pml_out_remove_folder(stage);
        return pml_err_set(err, r->lead ? PML_ERR_IO : PML_ERR_PEER, "%s was not committed: %.0f rank(s) could not write",
                           dir, failed);
    }
    if (r->lead && pml_ckpt_commit(pl, pipe, r->env->seed, dir, stage, per, &why))
        st = pml_err_set(err, why.code, "cannot commit the checkpoint: %s", why.msg);
    return pml_run_agree(d, st, err);
}

/* Every output is checked before the first step (formats/out_path.h), on rank 0, which
 * writes them: a path that cannot be written fails now, with the path and why, rather
 * than after the run. The checkpoint folder is created here (as mkdir -p), after the
 * inputs were found good, so a refused input leaves nothing behind. The trace is
 * checked by pml_run_trace_begin. */
static pml_status check_outputs(run *r, pml_err *err)
{
    pml_err why = {0};
    pml_status st = PML_OK;
    if (r->lead && r->o->out && pml_ckpt_check_folder(r->o->out, &why))
        st = pml_err_set(err, why.code, "--out: %s", why.msg);
    if (r->lead && !st && r->o->metrics && pml_out_check(r->o->metrics, &why))
        st = pml_err_set(err, why.code, "--metrics: %s", why.msg);
    return pml_run_agree(r->dist, st, err);
}

/* The metrics log: written as training goes, so in place (out_path.h's rule for streams). */
static pml_status open_metrics(run *r, pml_err *err)
{
    pml_err why = {0};
    int fd;
    if (pml_out_open_stream(r->o->metrics, &fd, &why)) return pml_err_set(err, why.code, "--metrics: %s", why.msg);
    if (!(r->metrics = fdopen(fd, "w"))) {
        pml_err_set(err, PML_ERR_IO, "--metrics: %s: %s", r->o->metrics, strerror(errno));
        close(fd);
        return PML_ERR_IO;
    }
    return PML_OK;
}

/* An evaluation of `batches` batches (pipeline.h's PML_EVAL_STEP0 on): loss and, for
 * classification, accuracy, with what it was drawn from — held-out data, or training
 * rows when nothing is held out — as an event and one metrics record: "eval_at_step"
 * during training (at_step >= 0), the final one without it. */
static pml_status evaluate(run *r, int64_t batches, int64_t at_step, int64_t steps, pml_err *err)
{
    const pml_plan *pl = *r->env->plan;
    double loss, acc;
    pml_err why = {0};
    if (pml_pipeline_evaluate(*r->env->pipe, batches, &loss, &acc, &why))
        return pml_err_set(err, why.code, "evaluation failed: %s", why.msg);
    int64_t rows = 0, samples = batches * pl->conf.batch;
    const char *path = NULL;
    pml_feed *feed = r->env->feed;
    pml_eval_source src = PML_EVAL_CALLER;
    if (feed) {
        static const pml_eval_source of[] = {PML_EVAL_FRESH, PML_EVAL_FILES, PML_EVAL_HOLDOUT, PML_EVAL_TRAINING};
        src = of[pml_feed_eval_source(feed, &rows, &path)];
    }
    pml_run_event ev = {.kind = PML_RUN_EVAL, .steps = steps, .at_step = at_step};
    ev.eval.result = (pml_eval_result){samples, loss, acc};
    ev.eval.source = src;
    ev.eval.source_rows = rows;
    ev.eval.source_path = path;
    ev.eval.best_loss = feed ? pml_feed_best_loss(feed) : NAN;
    event(r, &ev);
    static const char *const source_names[] = {"fresh", "held_out", "held_out", "training", "caller"};
    char accuracy[32] = "null", held[32] = "null", at[48] = ""; /* JSON has no NaN */
    if (!isnan(acc)) snprintf(accuracy, sizeof accuracy, "%.9g", acc);
    if (isfinite(loss)) snprintf(held, sizeof held, "%.9g", loss);
    if (at_step >= 0) snprintf(at, sizeof at, "\"eval_at_step\": %lld, ", (long long)at_step);
    log_line(r, "{%s\"eval_samples\": %lld, \"eval_loss\": %s, \"eval_accuracy\": %s, \"eval_source\": \"%s\"}\n", at,
             (long long)samples, held, accuracy, source_names[src]);
    return PML_OK;
}

/* Batches per evaluation during training: o->eval when given, else enough to cover a
 * held-out set of rows once, else one. */
static int64_t eval_every_batches(run *r)
{
    int64_t rows = 0;
    if (r->env->feed) pml_feed_eval_source(r->env->feed, &rows, NULL);
    if (r->o->eval > 0) return r->o->eval;
    int64_t batch = (*r->env->plan)->conf.batch;
    return rows > 0 ? (rows + batch - 1) / batch : 1;
}

/* A freeze starts at `step`: the phase's plan from the caller, a pipeline made from it
 * as the session's was, the run's state moved into it (recut.h). On failure the old
 * pipeline is kept. */
static pml_status recut(run *r, int64_t step, int64_t steps, pml_err *err)
{
    pml_run_env *e = r->env;
    pml_plan *np = NULL;
    const char *const *at = NULL;
    if (r->o->replan(r->o->replan_user, step, e->backend, &np, &at) || !np) {
        pml_plan_free(np);
        return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan of the phase that starts at step %lld could not be made",
                           (long long)step);
    }
    int ok = 1;
    char **where = e->opts->check_numerics ? pml_run_where_copy(at, &ok) : NULL;
    pml_run_phases *ph = e->phases;
    ph->where[ph->n] = where; /* the phases keep them, used or not */
    ph->plans[ph->n++] = np;
    if (!ok) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_pipeline_opts opts = *e->opts;
    opts.node_where = (const char *const *)where;
    pml_pipeline *npipe = NULL;
    pml_err why = {0};
    if (pml_pipeline_create(np, &opts, &npipe, &why) || pml_ckpt_load_teacher(np, npipe, &why)) {
        pml_pipeline_destroy(npipe);
        return pml_err_set(err, why.code, "cannot set up the phase's pipeline: %s", why.msg);
    }
    if (pml_run_recut_move(*e->plan, *e->pipe, np, npipe, err)) {
        pml_pipeline_destroy(npipe);
        return err->code;
    }
    pml_pipeline_set_step(npipe, step);
    pml_pipeline_destroy(*e->pipe);
    *e->pipe = npipe;
    *e->plan = np;
    *e->where = where;
    char text[4096];
    pml_run_recut_describe(np, text, sizeof text);
    pml_run_event ev = {.kind = PML_RUN_RECUT, .steps = steps, .at_step = step, .text = text};
    event(r, &ev);
    if (r->metrics) {
        log_line(r, "{\"recut_at_step\": %lld, \"param_stages\": {", (long long)step);
        for (int q = 0; q < pml_plan_model_params(np); q++) /* a tied weight: its first stage */
            log_line(r, "%s\"%s\": %d", q ? ", " : "", np->params[q].name, (int)np->nodes[np->params[q].node].stage);
        log_line(r, "}}\n");
    }
    return PML_OK;
}

/* Before step 1, on every rank: the steps, the resume's step, the trace, what ranks
 * cannot do, the outputs; then the start event. */
static pml_status begin(run *r, int64_t steps, pml_run_trace *trace, pml_err *err)
{
    pml_run_env *e = r->env;
    const pml_plan *pl = *e->plan;
    pml_status st;
    if (steps < 0)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "the train block gives no 'steps': set it there or in pml_run_options.steps");
    if (e->no_data)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "the training data: the train block names no data to train on: give 'data' (or --set "
                           "data=...), or set a feeder (pml_session_set_feeder)");
    if (e->resumed_at > steps)
        return pml_err_set(err, r->lead ? PML_ERR_INVALID_ARG : PML_ERR_PEER,
                           "cannot resume: %s is at step %lld, past the %lld steps asked for", e->resumed_from,
                           (long long)e->resumed_at, (long long)steps);
    if (e->note && r->lead) {
        pml_run_event ev = {.kind = PML_RUN_NOTE, .steps = steps, .text = e->note};
        event(r, &ev);
    }
    if ((r->o->trace || r->o->timeline) && !e->opts->trace)
        return pml_err_set(err, PML_ERR_INVALID_ARG,
                           "a trace or timeline picture needs the session's timeline: open it with "
                           "pml_session_options.trace");
    if ((st = pml_run_trace_begin(trace, r->o->trace, r->o->timeline, r->dist, err))) return st;
    if (r->world > 1 && pl->conf.eval_every > 0) /* evaluation needs the whole model on one process */
        return pml_err_set(err, r->lead ? PML_ERR_UNSUPPORTED : PML_ERR_PEER,
                           "eval_every = %lld evaluates during training in one process; with ranks, evaluate at the "
                           "end with --eval N (--set eval_every=0 turns it off)",
                           (long long)pl->conf.eval_every);
    if ((st = check_outputs(r, err))) return st; /* the inputs are good: now the outputs, still before step 1 */
    if (r->lead && r->o->metrics && (st = open_metrics(r, err))) return st;
    st = pml_run_memory_check(*e->pipe, pl, "before step 1", err);
    if ((st = pml_run_agree(r->dist, st, err))) return st;
    if (r->lead) {
        pml_run_event ev = {.kind = PML_RUN_START, .steps = steps};
        ev.start.backend = e->backend;
        ev.start.stages = pml_plan_devices(pl);
        ev.start.world = r->world;
        ev.start.replicas = r->dist ? r->dist->replicas : 1;
        ev.start.microbatches = pl->conf.microbatches;
        ev.start.microbatch = pl->conf.microbatch;
        ev.start.first_step = pml_pipeline_steps_done(*e->pipe);
        ev.start.best_loss = e->feed ? pml_feed_best_loss(e->feed) : NAN;
        ev.start.precision = pml_pipeline_precision_note(*e->pipe);
        char placed[400];
        ev.placed = pml_backend_placed_text(pl, e->backend, e->opts->stage_gpu, placed, sizeof placed);
        event(r, &ev);
    }
    return PML_OK;
}

/* A stop request due at this step boundary: *why 0, or the request (signo + 1) and
 * *by the rank that made it. One process reads its own. Ranks must stop at the same
 * boundary, so they act only on what they agreed: the requests summed by the step just
 * taken (pipeline.h's opts.stop), or before the first step a sum of their own. Once
 * one is due, every rank's request goes into one more sum, a slot per rank, so that
 * all name the same one: the lowest rank's. */
static pml_status stop_due(run *r, int before_first, int *why, int *by, pml_err *err)
{
    pml_dist *d = r->dist;
    *why = *by = 0;
    if (!d) {
        *why = r->env->stop ? atomic_load(r->env->stop) : 0;
        return PML_OK;
    }
    if (!before_first && !pml_pipeline_stop_asked(*r->env->pipe)) return PML_OK;
    double *x = calloc((size_t)d->world, sizeof *x);
    if (!x) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    x[d->rank] = r->env->stop ? atomic_load(r->env->stop) : 0;
    pml_err e = {0};
    pml_status st = d->sum(d, x, d->world, &e);
    if (st) st = pml_err_set(err, e.code, "cannot reach the other ranks to agree on stopping: %s", e.msg);
    for (int k = 0; k < d->world && !st && !*why; k++)
        if (x[k] > 0) *why = (int)x[k], *by = k;
    free(x);
    return st;
}

/* The run stops before step `s` (it has taken s steps) at request `why` of rank `by`. */
static void stop_at(run *r, int64_t s, int64_t steps, int why, int by)
{
    pml_run_result *res = r->result;
    res->stopped = 1;
    res->stop_step = s;
    res->stop_signal = why - 1;
    res->stop_rank = by;
    if (r->lead) {
        pml_run_event ev = {.kind = PML_RUN_STOP, .steps = steps, .at_step = s, .text = r->o->out};
        event(r, &ev);
    }
}

/* After the run's first step: the memory limit checked again with the temporaries
 * the step grew (run/memory.h). */
static pml_status memory_after(run *r, int64_t step, pml_err *err)
{
    char when[64];
    snprintf(when, sizeof when, "after step %lld", (long long)step);
    pml_status st = pml_run_memory_check(*r->env->pipe, *r->env->plan, when, err);
    return pml_run_agree(r->dist, st, err);
}

/* The steps, from where the pipeline is to `steps`, or to a stop request. */
static pml_status loop(run *r, int64_t steps, pml_run_trace *trace, pml_err *err)
{
    pml_run_env *e = r->env;
    /* Ranks keep the step-0 cut: a re-cut would move stages between processes. The
     * freezes still happen, in place (plan/phase.h). */
    int recuts = r->o->replan && (*e->plan)->conf.stages > 1 && r->world == 1;
    int64_t first = pml_pipeline_steps_done(*e->pipe);
    double elapsed = 0;
    pml_status st;
    for (int64_t s = first; s < steps; s++) {
        int asked, by;
        if ((st = stop_due(r, s == first, &asked, &by, err))) return st;
        if (asked) {
            stop_at(r, s, steps, asked, by);
            return PML_OK;
        }
        if (recuts && pml_run_recut_due(e->phases, *e->plan, s) && (st = recut(r, s, steps, err))) return st;
        pml_step_metrics m = {0};
        pml_err why = {0};
        if ((st = e->step(e->step_ctx, &m, &why))) {
            r->result->failed_in_step = 1;
            if (r->world > 1)
                return pml_err_set(err, st, "training failed on rank %d: %s", r->rank, why.msg);
            return pml_err_set(err, st, "training failed: %s", why.msg);
        }
        r->result->steps_done++;
        elapsed += m.seconds;
        /* The first step warms caches and allocators: the means leave it out. */
        pml_run_trace_step(trace, *e->pipe, s > first);
        /* f16 reports its loss scaling; a skipped step's norm is not finite: null in JSON */
        char norm[40], scaling[80] = "";
        snprintf(norm, sizeof norm, isfinite(m.grad_norm) ? "%.9g" : "null", m.grad_norm);
        if ((*e->plan)->conf.precision == PML_F16)
            snprintf(scaling, sizeof scaling, ", \"loss_scale\": %.9g, \"skipped\": %s", m.loss_scale,
                     m.skipped ? "true" : "false");
        /* The run's first step's record also says what its stage devices hold. */
        char *memory = NULL;
        size_t cap = 256 * ((size_t)(*e->plan)->conf.stages + 1);
        if (r->metrics && s == first && (memory = malloc(cap)))
            pml_run_memory_record(*e->pipe, *e->plan, memory, cap);
        log_line(r,
                 "{\"step\": %lld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %s, \"samples_per_s\": %.6g, "
                 "\"step_ms\": %.6g%s%s%s}\n",
                 (long long)m.step, m.loss, m.lr, norm, m.seconds > 0 ? (double)m.samples / m.seconds : 0,
                 1e3 * m.seconds, scaling, memory && memory[0] ? ", \"memory\": " : "", memory ? memory : "");
        free(memory);
        if (r->lead) {
            pml_run_event ev = {.kind = PML_RUN_STEP, .steps = steps, .at_step = s + 1, .metrics = &m, .elapsed = elapsed};
            event(r, &ev);
        }
        const pml_plan *pl = *e->plan;
        if (s == first && (st = memory_after(r, s + 1, err))) return st;
        if (pl->conf.eval_every > 0 && (s + 1) % pl->conf.eval_every == 0 &&
            (st = evaluate(r, eval_every_batches(r), s + 1, steps, err)))
            return st;
        if (r->o->out && pl->conf.checkpoint_every > 0 && (s + 1) % pl->conf.checkpoint_every == 0) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/step-%06lld", r->o->out, (long long)s + 1);
            if ((st = save(r, dir, err))) return st;
            r->result->periodic_step = s + 1;
        }
    }
    return PML_OK;
}

/* After the last step: the trace, the final evaluation (rank 0, on the whole model
 * gathered from the others), the final checkpoint (every rank takes part). A trace
 * that cannot be written still leaves the checkpoint written. After a stop request the
 * evaluation is skipped (the time after a SIGTERM is the batch system's grace period:
 * it goes to the checkpoint), and the checkpoint is the stopped step's. */
static pml_status end(run *r, int64_t steps, pml_run_trace *trace, pml_err *err)
{
    pml_run_env *e = r->env;
    char *summary = NULL;
    int fatal = 0;
    pml_status st = pml_run_trace_finish(trace, r->dist, *e->plan, *e->pipe, &summary, &fatal, err);
    if (summary) {
        pml_run_event ev = {.kind = PML_RUN_TRACE, .steps = steps, .text = summary};
        event(r, &ev);
        free(summary);
    }
    if (st && fatal) return st;
    if (st) { /* the timeline alone is lost */
        say_error(r, err);
        r->result->log_incomplete = 1;
    }
    int eval = r->result->stopped ? 0 : r->o->eval > 0;
    if (eval && (st = pml_run_gather(r->dist, *e->plan, *e->pipe, err))) return st;
    st = r->lead && eval ? evaluate(r, r->o->eval, -1, steps, err) : PML_OK;
    if ((st = pml_run_agree(r->dist, st, err))) return st;
    if (r->o->out && (st = save(r, r->o->out, err))) return st;
    r->result->stop_saved = r->result->stopped && r->o->out;
    return PML_OK;
}

pml_status pml_run_drive(pml_run_env *env, const pml_run_options *o, pml_run_result *result, pml_err *err)
{
    run r = {.env = env, .o = o, .result = result, .dist = env->dist};
    r.rank = env->dist ? env->dist->rank : 0;
    r.world = env->dist ? env->dist->world : 1;
    r.lead = r.rank == 0;
    int64_t steps = o->steps >= 0 ? o->steps : (*env->plan)->conf.steps;
    pml_run_trace trace = {0};
    pml_status st = begin(&r, steps, &trace, err);
    if (!st) st = loop(&r, steps, &trace, err);
    if (!st) st = end(&r, steps, &trace, err);
    if (r.metrics && fclose(r.metrics) && !r.metrics_error) { /* a failure already said is not said again */
        pml_err why = {0};
        pml_err_set(&why, PML_ERR_IO, "cannot finish the metrics file %s: %s", o->metrics, strerror(errno));
        say_error(&r, &why);
        result->log_incomplete = 1;
    }
    pml_run_trace_free(&trace);
    return st;
}

/* trace.c — a run's timeline over every rank (see trace.h). Each rank packs its
 * measurements and spans into bytes (the same library on every rank, checked at
 * start-up, so the structs below mean the same everywhere); rank 0 places every rank's
 * spans on its own clock and writes the JSON. */
#include "run/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/dist_clock.h"
#include "exec/dist_gather.h"
#include "formats/atomic_file.h"
#include "formats/json.h"
#include "formats/out_path.h"
#include "pml/bubble.h"
#include "plan/ops.h"
#include "run/ranks.h"
#include "run/timeline.h"

enum { CLOCK_ROUNDS = 8 }; /* ping-pongs per rank; the shortest round trip counts */

/* What a rank sends rank 0: this, then `spans` wire_spans, its stages in order. */
typedef struct rank_head {
    int32_t rank, replica, first, last; /* its stage devices [first, last): its stages without chunks */
    double epoch;                       /* its spans' zero on its own clock (s) */
    double bubble, wait;                /* means over the counted steps, of its stages */
    int64_t steps, spans;
} rank_head;

typedef struct wire_span {
    double t0, t1; /* microseconds since the rank's epoch */
    double cpu;    /* PML_TRACE_OP's CPU time (microseconds), or -1 */
    int64_t step;
    int32_t mb, stage, kind;
    int32_t unit, op, thread; /* PML_TRACE_OP's (pipeline.h) */
} wire_span;

pml_status pml_run_trace_begin(pml_run_trace *t, const char *path, const char *svg, pml_dist *d, pml_err *err)
{
    *t = (pml_run_trace){.path = path, .svg = svg};
    if (!path && !svg) return PML_OK;
    int world = d ? d->world : 1;
    pml_err why = {0};
    pml_status st = PML_OK;
    if ((!d || d->rank == 0) && path && pml_out_check(path, &why)) /* fail before training, not after it */
        st = pml_err_set(err, why.code, "cannot write the timeline: %s", why.msg);
    else if ((!d || d->rank == 0) && svg && pml_out_check(svg, &why))
        st = pml_err_set(err, why.code, "cannot write the timeline picture: %s", why.msg);
    if ((st = pml_run_agree(d, st, err))) return st;
    t->offset = calloc((size_t)world, sizeof *t->offset);
    t->uncertainty = calloc((size_t)world, sizeof *t->uncertainty);
    if (!t->offset || !t->uncertainty) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline");
    if (d && pml_dist_clock_offsets(d, CLOCK_ROUNDS, t->offset, t->uncertainty, &why))
        return pml_err_set(err, why.code, "cannot compare the ranks' clocks: %s", why.msg);
    return PML_OK;
}

void pml_run_trace_step(pml_run_trace *t, const pml_pipeline *pipe, int counted)
{
    if ((!t->path && !t->svg) || !counted) return;
    t->bubble_sum += pml_pipeline_last_bubble(pipe);
    t->wait_sum += pml_pipeline_last_wait(pipe);
    t->steps++;
}

/* This rank's head and spans, malloc'ed. */
static char *pack(const pml_run_trace *t, const pml_dist *d, const pml_plan *pl, const pml_pipeline *pipe,
                  size_t *len)
{
    rank_head h = {.rank = d ? d->rank : 0,
                   .replica = d ? d->replica : 0,
                   .first = d ? d->first : 0,
                   .last = d ? d->last : pml_plan_devices(pl),
                   .epoch = pml_pipeline_trace_epoch(pipe),
                   /* one step only: that step, warm-up or not */
                   .bubble = t->steps ? t->bubble_sum / (double)t->steps : pml_pipeline_last_bubble(pipe),
                   .wait = t->steps ? t->wait_sum / (double)t->steps : pml_pipeline_last_wait(pipe),
                   .steps = t->steps ? t->steps : 1};
    for (int s = h.first; s < h.last; s++) {
        int n = 0;
        pml_pipeline_trace(pipe, s, &n);
        h.spans += n;
    }
    *len = sizeof h + sizeof(wire_span) * (size_t)h.spans;
    char *buf = malloc(*len);
    if (!buf) return NULL;
    memcpy(buf, &h, sizeof h);
    wire_span *w = (wire_span *)(buf + sizeof h);
    for (int s = h.first; s < h.last; s++) {
        int n = 0;
        const pml_trace_event *ev = pml_pipeline_trace(pipe, s, &n);
        for (int i = 0; i < n; i++)
            *w++ = (wire_span){ev[i].t0,   ev[i].t1,   ev[i].cpu, ev[i].step, ev[i].mb,
                               s,          ev[i].kind, ev[i].unit, ev[i].op,  ev[i].thread};
    }
    return buf;
}

/* Rank r's head in the gathered bytes, checked against its length. */
static const rank_head *head_of(const char *all, const size_t *lens, int r)
{
    size_t at = 0;
    for (int k = 0; k < r; k++) at += lens[k];
    const rank_head *h = (const rank_head *)(all + at);
    if (lens[r] < sizeof *h || lens[r] != sizeof *h + sizeof(wire_span) * (size_t)h->spans) return NULL;
    return h;
}

/* The track of stage s's thread k: the stage's own for k = 0 (as before helpers had
 * tracks), else one past every stage's. */
static int tid_of(int s, int k) { return k ? 1000 * k + s : s; }

/* A unit's span (PML_TRACE_OP): named by the op the backend ran (a fused kernel by its
 * size) and the name the source gave its node, with the node's pass and shape, so that
 * a breakdown (bench/cpu_train/ops.py) can sum by any of them. The stage thread's span
 * is an "op" on the stage's track; a helper thread's part in it an "op_thread" on a
 * track of its own (tid_of), so that sums over "op" count each unit once. */
static void put_op(pml_json_buf *b, const pml_plan *pl, const wire_span *w, int pid, double shift)
{
    static const char *const passes[] = {"forward", "input gradient", "weight gradient"};
    char name[48], shape[160] = "", unit[32] = "", cpu[40] = "";
    pml_json_buf ops = {0}; /* a fused kernel's "ops" argument: as long as the kernel */
    if (w->cpu >= 0) snprintf(cpu, sizeof cpu, ", \"cpu_us\": %.3f", w->cpu);
    int pass = -1;
    const pml_plan_node *node = NULL;
    if (w->op == PML_WORK_UPDATE)
        snprintf(name, sizeof name, "update");
    else {
        int k = w->unit < 0 ? -w->unit - 1 : -1;
        if ((k < 0 && w->unit >= pl->n_nodes) || k >= pl->n_kernels || (k >= 0 && pl->kernels[k].n_nodes < 1)) return;
        node = &pl->nodes[k >= 0 ? pl->kernels[k].nodes[pl->kernels[k].n_nodes - 1] : w->unit];
        pass = node->pass < 3 ? node->pass : 0;
        if (k >= 0) {
            snprintf(name, sizeof name, "fused %d ops", pl->kernels[k].n_nodes);
            /* what the kernel is made of, in order, each op with its stored dtype */
            pml_json_buf_puts(&ops, "\"ops\": \"");
            for (int i = 0; i < pl->kernels[k].n_nodes; i++) {
                const pml_plan_node *n = &pl->nodes[pl->kernels[k].nodes[i]];
                pml_json_buf_printf(&ops, "%s%s:%s", i ? " " : "",
                                    n->op < PML_OP_COUNT ? pml_op_name((pml_opcode)n->op) : "unknown",
                                    pml_dtype_name((pml_dtype)n->dtype));
            }
            pml_json_buf_puts(&ops, "\", ");
            if (ops.failed) b->failed = 1;
        } else
            snprintf(name, sizeof name, "%s",
                     w->op >= 0 && w->op < PML_OP_COUNT ? pml_op_name((pml_opcode)w->op) : "unknown");
        snprintf(unit, sizeof unit, "\"%s\": %d, ", k >= 0 ? "kernel" : "node", k >= 0 ? k : w->unit);
        for (int d = 0, at = 0; d < node->rank && at < (int)sizeof shape - 24; d++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", d ? ", " : "", (long long)node->dims[d]);
    }
    pml_json_buf_printf(b,
                        ",\n{\"name\": \"%s%s%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, "
                        "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %lld, \"microbatch\": %d, %s%s"
                        "\"pass\": \"%s\", \"shape\": [%s]%s}}",
                        name, node && node->label ? " " : "", node && node->label ? node->label : "",
                        w->thread ? "op_thread" : "op", pid, tid_of(w->stage, w->thread), w->t0 + shift,
                        w->t1 - w->t0, (long long)w->step + 1, w->mb, unit, ops.data && !ops.failed ? ops.data : "",
                        pass >= 0 ? passes[pass] : "update", shape, cpu);
    pml_json_buf_free(&ops);
}

/* Rank h's thread names and spans, `shift` microseconds later on the shared clock;
 * every event after the first starts with a comma (*first says which comes first). */
static void put_spans(pml_json_buf *b, const pml_plan *pl, const rank_head *h, double shift, int *first)
{
    static const char *const kinds[] = {"load",      "recv_act", "fwd",       "send_act",  "recv_grad",
                                        "bwd",       "send_grad", "step",     "bwd_input", "bwd_weight"};
    enum { N_KINDS = sizeof kinds / sizeof *kinds };
    const wire_span *w = (const wire_span *)(h + 1);
    int pid = h->rank + 1;
    for (int s = h->first; s < h->last; s++) {
        pml_json_buf_printf(b,
                            "%s{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                            "\"args\": {\"name\": \"stage %d\"}}",
                            *first ? "" : ",\n", pid, s, s);
        *first = 0;
        int helpers = 0;
        for (const wire_span *v = w; v < (const wire_span *)(h + 1) + h->spans && v->stage == s; v++)
            if (v->kind == PML_TRACE_OP && v->thread > helpers) helpers = v->thread;
        for (int k = 1; k <= helpers; k++)
            pml_json_buf_printf(b,
                                ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                                "\"args\": {\"name\": \"stage %d thread %d\"}}",
                                pid, tid_of(s, k), s, k);
        for (; w < (const wire_span *)(h + 1) + h->spans && w->stage == s; w++) {
            if (w->kind == PML_TRACE_OP) {
                put_op(b, pl, w, pid, shift);
                continue;
            }
            int k = w->kind >= 0 && w->kind < N_KINDS ? w->kind : 7;
            char name[32];
            if (k == 2 || k == 5 || k == 8 || k == 9)
                snprintf(name, sizeof name, "%c%d", k == 2 ? 'F' : k == 9 ? 'W' : 'B', w->mb);
            else if (k == 1 || k == 4)
                snprintf(name, sizeof name, "wait %s %d", k == 1 ? "act" : "grad", w->mb);
            else
                snprintf(name, sizeof name, "%s", kinds[k]);
            pml_json_buf_printf(b,
                                ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, "
                                "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %lld, \"microbatch\": %d, "
                                "\"chunk\": %d}}",
                                name, kinds[k], pid, s, w->t0 + shift, w->t1 - w->t0, (long long)w->step + 1, w->mb,
                                w->unit);
        }
    }
}

/* Rank 0: the picture of one step from replica 0's timetable spans, each rank's on
 * rank 0's clock (`zero` its earliest). */
static pml_status write_picture(const pml_run_trace *t, const pml_plan *pl, const rank_head *const *h, int W, int R,
                                double zero, double measured, double analytic, pml_err *err)
{
    size_t n = 0;
    for (int k = 0; k < W; k++)
        if (h[k]->replica == 0) n += (size_t)h[k]->spans;
    pml_run_span *spans = malloc((n ? n : 1) * sizeof *spans);
    if (!spans) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline picture");
    n = 0;
    for (int k = 0; k < W; k++) {
        const wire_span *w = (const wire_span *)(h[k] + 1);
        double shift = 1e6 * (h[k]->epoch - t->offset[k] - zero);
        for (int64_t i = 0; i < h[k]->spans && h[k]->replica == 0; i++)
            if (w[i].kind != PML_TRACE_OP)
                spans[n++] = (pml_run_span){w[i].t0 + shift, w[i].t1 + shift, w[i].step, w[i].mb,
                                            w[i].stage,      w[i].kind,       w[i].unit};
    }
    pml_status st =
        pml_run_timeline_write(t->svg, pl, spans, n, pl->conf.microbatches / R, measured, h[0]->steps, analytic, err);
    free(spans);
    return st;
}

/* The training timeline's otherData (the bubble, each rank's stages, waits and clock)
 * and its summary line (*summary, malloc'ed; NULL when out of memory). */
static void put_other(pml_json_buf *b, const pml_run_trace *t, const rank_head *const *h, int W, int D,
                      double measured, double analytic, char **summary)
{
    pml_json_buf_printf(b, "\n], \"otherData\": {\"measured_bubble\": %.6f, \"analytic_bubble\": %.6f, \"ranks\": [",
                        measured, analytic);
    for (int k = 0; k < W; k++) {
        pml_json_buf_printf(b, "%s{\"rank\": %d, \"replica\": %d, \"stages\": [", k ? ", " : "", k, h[k]->replica);
        for (int s = h[k]->first; s < h[k]->last; s++) pml_json_buf_printf(b, "%s%d", s > h[k]->first ? ", " : "", s);
        pml_json_buf_printf(b,
                            "], \"transport_wait\": %.6f, \"clock_offset_us\": %.3f, \"clock_uncertainty_us\": %.3f}",
                            h[k]->wait, 1e6 * t->offset[k], 1e6 * t->uncertainty[k]);
    }
    pml_json_buf_puts(b, "]}}\n");
    pml_json_buf line = {0};
    pml_json_buf_printf(&line, "bubble: %.1f%% measured ", 100 * measured);
    if (W > 1) pml_json_buf_printf(&line, "over the %d stages of replica 0 ", D);
    pml_json_buf_printf(&line, "(mean of %lld steps), %.1f%% analytic; ", (long long)h[0]->steps, 100 * analytic);
    for (int k = 0; k < W && W > 1; k++)
        pml_json_buf_printf(&line, "%s rank %d %.1f%%%s", k ? "," : "waiting in transport:", k, 100 * h[k]->wait,
                            k + 1 == W ? "; " : "");
    if (t->path) pml_json_buf_printf(&line, "timeline in %s%s", t->path, t->svg ? ", " : "");
    if (t->svg) pml_json_buf_printf(&line, "picture of a step in %s", t->svg);
    if (line.failed) pml_json_buf_free(&line);
    *summary = line.failed ? NULL : line.data;
}

/* Rank 0: the summary line (into *summary) and the files, from every rank's bytes. */
static pml_status write_all(const pml_run_trace *t, const pml_dist *d, const pml_plan *pl, const char *all,
                            const size_t *lens, char **summary, pml_err *err)
{
    int W = d ? d->world : 1, D = pml_plan_devices(pl), R = d ? d->replicas : 1;
    const rank_head **h = calloc((size_t)W, sizeof *h);
    if (!h) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline");
    double zero = 0, measured = 0;
    for (int k = 0; k < W; k++) {
        if (!(h[k] = head_of(all, lens, k)) || h[k]->rank != k) {
            free(h);
            return pml_err_set(err, PML_ERR_FORMAT, "rank %d sent a malformed timeline", k);
        }
        double at = h[k]->epoch - t->offset[k]; /* its zero on rank 0's clock */
        if (k == 0 || at < zero) zero = at;
        if (h[k]->replica == 0) measured += (h[k]->last - h[k]->first) * h[k]->bubble;
    }
    measured /= D;
    /* Each replica's pipeline runs M / R micro-batches, over D stage devices of V chunks
     * each. */
    double analytic = pml_analytic_bubble((int)pl->conf.schedule, D, (int)pl->conf.chunks, pl->conf.microbatches / R);
    pml_json_buf b = {0};
    pml_json_buf_puts(&b, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
    int first = 1;
    for (int k = 0; k < W; k++) {
        if (W > 1) /* one process keeps the trace it always wrote */
            pml_json_buf_printf(&b,
                                "%s{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, "
                                "\"args\": {\"name\": \"rank %d (replica %d)\"}}",
                                first ? "" : ",\n", k + 1, k, h[k]->replica);
        first = first && W == 1;
        put_spans(&b, pl, h[k], 1e6 * (h[k]->epoch - t->offset[k] - zero), &first);
    }
    *summary = NULL;
    if (t->serving)
        pml_json_buf_printf(&b, "\n], \"otherData\": {\"forwards\": %lld}}\n", (long long)t->steps);
    else
        put_other(&b, t, h, W, D, measured, analytic, summary);
    pml_err why = {0};
    pml_status st = PML_OK;
    if (!t->path)
        pml_json_buf_free(&b);
    else if (pml_json_buf_save(&b, t->path, &why))
        st = pml_err_set(err, why.code, "cannot write the timeline: %s", why.msg);
    if (!st && t->svg) st = write_picture(t, pl, h, W, R, zero, measured, analytic, err);
    free(h);
    return st;
}

pml_status pml_run_trace_finish(pml_run_trace *t, pml_dist *d, const pml_plan *pl, const pml_pipeline *pipe,
                                char **summary, int *fatal, pml_err *err)
{
    *summary = NULL;
    *fatal = 0;
    if (!t->path && !t->svg) return PML_OK;
    size_t len = 0, one = 0;
    char *mine = pack(t, d, pl, pipe, &len);
    *fatal = 1; /* until the bytes are on rank 0: rank 0 waits for them */
    if (!mine) return pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline");
    void *all = mine;
    size_t *lens = d ? calloc((size_t)d->world, sizeof *lens) : &one;
    pml_err why = {0};
    pml_status st = PML_OK;
    if (!lens)
        st = pml_err_set(err, PML_ERR_NOMEM, "out of memory for the timeline");
    else if (d && pml_dist_gather_bytes(d, 0, mine, len, &all, lens, &why))
        st = pml_err_set(err, why.code, "cannot gather the timeline on rank 0: %s", why.msg);
    one = len;
    if (!st) {
        *fatal = 0;
        if (!d || d->rank == 0) st = write_all(t, d, pl, all, lens, summary, err);
    }
    if (all != mine) free(all);
    if (lens != &one) free(lens);
    free(mine);
    return st;
}

void pml_run_trace_free(pml_run_trace *t)
{
    free(t->offset);
    free(t->uncertainty);
    t->offset = t->uncertainty = NULL;
}

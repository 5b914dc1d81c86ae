/* train_trace.c — the timeline of `pmlc train` over every rank (see train_trace.h).
 * Each rank packs its measurements and spans into bytes (the same pmlc on every rank,
 * checked at start-up, so the structs below mean the same everywhere); rank 0 places
 * every rank's spans on its own clock and writes the JSON. */
#include "train_trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "exec/dist_clock.h"
#include "exec/dist_gather.h"
#include "formats/atomic_file.h"
#include "formats/json.h"
#include "formats/out_path.h"

enum { CLOCK_ROUNDS = 8 }; /* ping-pongs per rank; the shortest round trip counts */

/* What a rank sends rank 0: this, then `spans` wire_spans, its stages in order. */
typedef struct rank_head {
    int32_t rank, replica, first, last; /* its stages [first, last) */
    double epoch;                       /* its spans' zero on its own clock (s) */
    double bubble, wait;                /* means over the counted steps, of its stages */
    int64_t steps, spans;
} rank_head;

typedef struct wire_span {
    double t0, t1; /* microseconds since the rank's epoch */
    int64_t step;
    int32_t mb, stage, kind, pad;
} wire_span;

int pmlc_trace_begin(pmlc_trace *t, const char *path, pmlc_ranks *r)
{
    *t = (pmlc_trace){.path = path};
    if (!path) return 0;
    int rc = 0;
    pml_err err = {0};
    if (r->rank == 0 && pml_out_check(path, &err)) /* fail before training, not after it */
        rc = pmlc_cli_fail("cannot write the timeline", &err);
    if (pmlc_ranks_agree(r, rc)) return 1;
    t->offset = calloc((size_t)r->world, sizeof *t->offset);
    t->uncertainty = calloc((size_t)r->world, sizeof *t->uncertainty);
    if (!t->offset || !t->uncertainty) return pmlc_cli_fail("out of memory for the timeline", NULL);
    if (r->dist && pml_dist_clock_offsets(r->dist, CLOCK_ROUNDS, t->offset, t->uncertainty, &err))
        return pmlc_cli_fail("cannot compare the ranks' clocks", &err);
    return 0;
}

void pmlc_trace_step(pmlc_trace *t, const pml_pipeline *pipe, int counted)
{
    if (!t->path || !counted) return;
    t->bubble_sum += pml_pipeline_last_bubble(pipe);
    t->wait_sum += pml_pipeline_last_wait(pipe);
    t->steps++;
}

/* This rank's head and spans, malloc'ed. */
static char *pack(const pmlc_trace *t, const pmlc_ranks *r, const pml_plan *pl, const pml_pipeline *pipe, size_t *len)
{
    rank_head h = {.rank = r->rank,
                   .replica = r->dist ? r->dist->replica : 0,
                   .first = r->dist ? r->dist->first : 0,
                   .last = r->dist ? r->dist->last : (int32_t)pl->conf.stages,
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
        for (int i = 0; i < n; i++) *w++ = (wire_span){ev[i].t0, ev[i].t1, ev[i].step, ev[i].mb, s, ev[i].kind, 0};
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

/* Rank h's thread names and spans, `shift` microseconds later on the shared clock;
 * every event after the first starts with a comma (*first says which comes first). */
static void put_spans(pml_json_buf *b, const rank_head *h, double shift, int *first)
{
    static const char *const kinds[] = {"load", "recv_act", "fwd", "send_act", "recv_grad", "bwd", "send_grad", "step"};
    const wire_span *w = (const wire_span *)(h + 1);
    int pid = h->rank + 1;
    for (int s = h->first; s < h->last; s++) {
        pml_json_buf_printf(b,
                            "%s{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                            "\"args\": {\"name\": \"stage %d\"}}",
                            *first ? "" : ",\n", pid, s, s);
        *first = 0;
        for (; w < (const wire_span *)(h + 1) + h->spans && w->stage == s; w++) {
            int k = w->kind >= 0 && w->kind < 8 ? w->kind : 7;
            char name[32];
            if (k == 2 || k == 5)
                snprintf(name, sizeof name, "%c%d", k == 2 ? 'F' : 'B', w->mb);
            else if (k == 1 || k == 4)
                snprintf(name, sizeof name, "wait %s %d", k == 1 ? "act" : "grad", w->mb);
            else
                snprintf(name, sizeof name, "%s", kinds[k]);
            pml_json_buf_printf(b,
                                ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, "
                                "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %lld, \"microbatch\": %d}}",
                                name, kinds[k], pid, s, w->t0 + shift, w->t1 - w->t0, (long long)w->step + 1, w->mb);
        }
    }
}

/* Rank 0: the summary line and the file, from every rank's bytes. */
static int write_all(const pmlc_trace *t, const pmlc_ranks *r, const pml_plan *pl, const char *all, const size_t *lens,
                     int quiet)
{
    int W = r->world, S = (int)pl->conf.stages, R = r->dist ? r->dist->replicas : 1;
    const rank_head **h = calloc((size_t)W, sizeof *h);
    if (!h) return pmlc_cli_fail("out of memory for the timeline", NULL);
    double zero = 0, measured = 0;
    for (int k = 0; k < W; k++) {
        if (!(h[k] = head_of(all, lens, k)) || h[k]->rank != k) {
            fprintf(stderr, "pmlc: error: rank %d sent a malformed timeline\n", k);
            free(h);
            return 1;
        }
        double at = h[k]->epoch - t->offset[k]; /* its zero on rank 0's clock */
        if (k == 0 || at < zero) zero = at;
        if (h[k]->replica == 0) measured += (h[k]->last - h[k]->first) * h[k]->bubble;
    }
    measured /= S;
    /* Each replica's pipeline runs M / R micro-batches. */
    double M = (double)pl->conf.microbatches / R, analytic = (S - 1) / (M + S - 1);
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
        put_spans(&b, h[k], 1e6 * (h[k]->epoch - t->offset[k] - zero), &first);
    }
    pml_json_buf_printf(&b, "\n], \"otherData\": {\"measured_bubble\": %.6f, \"analytic_bubble\": %.6f, \"ranks\": [",
                        measured, analytic);
    for (int k = 0; k < W; k++) {
        pml_json_buf_printf(&b, "%s{\"rank\": %d, \"replica\": %d, \"stages\": [", k ? ", " : "", k, h[k]->replica);
        for (int s = h[k]->first; s < h[k]->last; s++) pml_json_buf_printf(&b, "%s%d", s > h[k]->first ? ", " : "", s);
        pml_json_buf_printf(&b,
                            "], \"transport_wait\": %.6f, \"clock_offset_us\": %.3f, \"clock_uncertainty_us\": %.3f}",
                            h[k]->wait, 1e6 * t->offset[k], 1e6 * t->uncertainty[k]);
    }
    pml_json_buf_puts(&b, "]}}\n");
    if (!quiet) {
        fprintf(stderr, "bubble: %.1f%% measured ", 100 * measured);
        if (W > 1) fprintf(stderr, "over the %d stages of replica 0 ", S);
        fprintf(stderr, "(mean of %lld steps), %.1f%% analytic; ", (long long)h[0]->steps, 100 * analytic);
        for (int k = 0; k < W && W > 1; k++)
            fprintf(stderr, "%s rank %d %.1f%%%s", k ? "," : "waiting in transport:", k, 100 * h[k]->wait,
                    k + 1 == W ? "; " : "");
        fprintf(stderr, "timeline in %s\n", t->path);
    }
    free(h);
    pml_err err = {0};
    return pml_json_buf_save(&b, t->path, &err) ? pmlc_cli_fail("cannot write the timeline", &err) : 0;
}

int pmlc_trace_finish(pmlc_trace *t, pmlc_ranks *r, const pml_plan *pl, const pml_pipeline *pipe, int quiet)
{
    if (!t->path) return 0;
    size_t len = 0, one = 0;
    char *mine = pack(t, r, pl, pipe, &len);
    if (!mine) return 2 * pmlc_cli_fail("out of memory for the timeline", NULL); /* rank 0 waits for it */
    void *all = mine;
    size_t *lens = r->dist ? calloc((size_t)r->world, sizeof *lens) : &one;
    pml_err err = {0};
    int rc = 0;
    if (!lens)
        rc = 2 * pmlc_cli_fail("out of memory for the timeline", NULL);
    else if (r->dist && pml_dist_gather_bytes(r->dist, 0, mine, len, &all, lens, &err))
        rc = 2 * pmlc_cli_fail("cannot gather the timeline on rank 0", &err);
    one = len;
    if (!rc && r->rank == 0) rc = write_all(t, r, pl, all, lens, quiet);
    if (all != mine) free(all);
    if (lens != &one) free(lens);
    free(mine);
    return rc;
}

void pmlc_trace_free(pmlc_trace *t)
{
    free(t->offset);
    free(t->uncertainty);
    t->offset = t->uncertainty = NULL;
}

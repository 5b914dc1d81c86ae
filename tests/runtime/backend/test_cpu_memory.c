/* test_cpu_memory.c — how the CPU backend keeps values between uses (cpu/stage.h):
 *   host_write_between_steps_is_seen: after a step (whose update repacked the
 *     transposed weights) the host rewrites every parameter through
 *     pml_pipeline_param; the next forward pass gives the same bits as a fresh
 *     pipeline given those values, so the stale panels the update made were not used.
 *     The layers are 128 wide, so their forward matmuls use packed panels where the
 *     CPU has AVX-512 (elsewhere the test still checks the values);
 *   kept_values_have_a_copy_per_micro_batch_in_flight: a value kept from a
 *     micro-batch's forward pass to its backward pass on its stage has as many copies
 *     as the stage's timetable has micro-batches in flight (1F1B: S - s; GPipe: M),
 *     while values another stage reads keep one per micro-batch;
 *   zero_bubble_keeps_only_what_the_weight_half_reads_longer: with backwards split
 *     (ZB-H1), a kept value that a weight half reads has a copy per micro-batch
 *     between its forward and its weight half (min(M, S) on every stage), every other
 *     one only up to its input half, as 1F1B keeps it (S - s on stage s);
 *   buffers_share_bytes_only_when_never_alive_together: every buffer lies in the
 *     context's one arena; two that share a byte are both made and read within one
 *     pass (never a parameter, input, loss, output, labels, an invariant or a value kept
 *     per micro-batch), at ticks of the stage's forward-then-backward lists that never
 *     meet (a gradient read at the backward pass's end, where it is summed); and some
 *     do share, so the arena is smaller than the buffers laid end to end;
 *   bias_adds_fold_into_their_products: every linear layer's bias add (x W^T + b) is
 *     folded into its matmul's epilogue (cpu/lower.h) on both stages, and none when
 *     every node runs on its own (unfused); a micro-batch's output and the weights
 *     after 3 steps equal the unfused run's to 1e-6 relative (the fused groups may
 *     move a loop's vector/scalar split; the epilogue itself rounds as the add did);
 *   a_rank_holds_only_what_its_stages_need: a backend told it runs one stage of two
 *     (backend_ops.h's runs) holds for it what a whole one does, and of the other only
 *     its parameters, optimizer state and the values it sends, which it lists;
 *   random_draws_are_never_per_step_invariants: attention of parameters alone is
 *     computed once a step (an invariant), but with dropout on its weights it draws a
 *     mask per micro-batch, as dropout does, so it and what it feeds are not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "backend_ops.h"
#include "compile_plan.h"
#include "cpu/gemm.h"
#include "cpu/stage.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "plan/plan.h"

enum { MB_ROWS = 4, FEATURES = 16, CLASSES = 4 };

/* The model, trained with `schedule` (1f1b or gpipe). */
static const char model_fmt[] = "import \"nn\"\n"
                                "model m(x: f32[B, 16]) -> f32[B, 4] {\n"
                                "    stage 0 { h = gelu(linear(x, 128) as l0) }\n"
                                "    stage 1 {\n"
                                "        h = gelu(linear(h, 128) as l1)\n"
                                "        return linear(h, 4) as head\n"
                                "    }\n"
                                "}\n"
                                "train m {\n"
                                "    data = classes(features = 16, classes = 4, seed = 3)\n"
                                "    loss = cross_entropy\n"
                                "    optimizer = adamw(lr = 0.01)\n"
                                "    batch = 16, microbatches = 4, schedule = %s\n"
                                "    place = [cpu, cpu]\n"
                                "    steps = 3, seed = 5\n"
                                "}\n";
enum { MBS = 4, STAGES = 2 };

static pml_plan *compile_with(const char *schedule)
{
    char text[1024];
    snprintf(text, sizeof text, model_fmt, schedule);
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("memory.pml", text, NULL, &err);
    if (!pl) fprintf(stderr, "cannot make the plan: %s\n", err.msg);
    return pl;
}

typedef struct run {
    pml_feed *feed;
    pml_pipeline *pipe;
} run;

static int run_open(const pml_plan *pl, run *r, pml_err *err)
{
    *r = (run){0};
    if (pml_feed_create(pl, &r->feed, err)) return 0;
    pml_pipeline_opts opts = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = r->feed};
    return pml_pipeline_create(pl, &opts, &r->pipe, err) == PML_OK;
}

static void run_close(run *r)
{
    pml_pipeline_destroy(r->pipe);
    pml_feed_destroy(r->feed);
}

/* One micro-batch's output for a fixed input. */
static int forward(run *r, float *y, pml_err *err)
{
    float x[MB_ROWS * FEATURES];
    for (int i = 0; i < MB_ROWS * FEATURES; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    const void *in[1] = {x};
    return pml_pipeline_forward(r->pipe, in, y, err) == PML_OK;
}

static int host_write_between_steps_is_seen(const pml_plan *pl)
{
    if (!pml_cpu_gemm_packed_available()) printf("note: no AVX-512F here, so no packed panels to go stale\n");
    pml_err err = {0};
    run a = {0}, b = {0};
    int opened = run_open(pl, &a, &err) && run_open(pl, &b, &err);
    CHECK(opened);
    pml_step_stats st;
    if (!opened || pml_pipeline_step(a.pipe, &st, &err)) {
        CHECK(!"one training step");
        goto done;
    }
    /* rewrite every parameter of a (scaled and shifted: a different matrix, not a
     * reordering), then give b the same values */
    for (int q = 0; q < pl->n_params; q++) {
        float *wa = pml_pipeline_param(a.pipe, q), *wb = pml_pipeline_param(b.pipe, q);
        CHECK(wa && wb);
        if (!wa || !wb) break;
        int64_t n = pl->nodes[pl->params[q].node].numel;
        for (int64_t i = 0; i < n; i++) wa[i] = 0.75f * wa[i] + 0.01f * (float)sin((double)i);
        memcpy(wb, wa, sizeof(float) * (size_t)n);
    }
    float ya[MB_ROWS * CLASSES] = {0}, yb[MB_ROWS * CLASSES] = {1};
    CHECK(forward(&a, ya, &err) && forward(&b, yb, &err));
    CHECK(memcmp(ya, yb, sizeof ya) == 0);
done:
    if (err.msg[0]) fprintf(stderr, "%s\n", err.msg);
    run_close(&a), run_close(&b);
    return check_summary("a host write between steps is seen by the packed weights");
}

/* Every value kept per micro-batch on stage s: checks its copies; counts those kept
 * only for s's own backward pass (ring) and those another stage reads (all). */
static void count_copies(const pml_cpu_ctx *c, int s, int64_t ring_want, int *ring, int *all)
{
    const pml_plan *pl = c->plan;
    for (int i = 0; i < pl->n_nodes; i++) {
        if (pl->nodes[i].stage != s || !c->per_mb[i] || !c->buf[i]) continue;
        if (c->all_mb[i]) {
            CHECK(c->copies[i] == MBS);
            ++*all;
        } else {
            CHECK(c->copies[i] == ring_want);
            ++*ring;
        }
    }
}

static int kept_values_have_a_copy_per_micro_batch_in_flight(const pml_plan *unused)
{
    (void)unused;
    const char *schedules[2] = {"1f1b", "gpipe"};
    for (int k = 0; k < 2; k++) {
        pml_plan *pl = compile_with(schedules[k]);
        CHECK(pl != NULL);
        if (!pl) continue;
        pml_backend_inst b;
        pml_backend_conf conf = {.seed = 5, .threads = 2};
        pml_err err = {0};
        CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK);
        if (b.ctx) {
            const pml_cpu_ctx *c = (const pml_cpu_ctx *)b.ctx;
            for (int s = 0; s < STAGES; s++) {
                int ring = 0, all = 0;
                count_copies(c, s, k == 0 ? STAGES - s : MBS, &ring, &all);
                /* gelu's and the layers' values for their backward passes; stage 0's h,
                 * which stage 1 reads */
                CHECK(ring > 0);
                CHECK(s > 0 || all > 0);
            }
        }
        pml_backend_destroy(&b);
        pml_plan_free(pl);
    }
    return check_summary("kept values have a copy per micro-batch in flight");
}

static int zero_bubble_keeps_only_what_the_weight_half_reads_longer(const pml_plan *unused)
{
    (void)unused;
    pml_plan *pl = compile_with("zero_bubble");
    CHECK(pl != NULL);
    if (!pl) return check_summary("zero bubble keeps only what the weight half reads longer");
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 2};
    pml_err err = {0};
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK);
    const pml_cpu_ctx *c = (const pml_cpu_ctx *)b.ctx;
    int short_lived = 0;
    for (int i = 0; c && i < pl->n_nodes; i++) {
        int s = pl->nodes[i].stage;
        if (!c->per_mb[i] || !c->buf[i] || c->all_mb[i]) continue;
        CHECK(c->copies[i] == (c->weight_read[i] ? (MBS < STAGES ? MBS : STAGES) : STAGES - s));
        short_lived += s == STAGES - 1 && c->copies[i] == 1;
    }
    CHECK(short_lived > 0); /* the last stage keeps values for its input half alone */
    pml_backend_destroy(&b);
    pml_plan_free(pl);
    return check_summary("zero bubble keeps only what the weight half reads longer");
}

/* Node i's buffer, as [lo, hi) bytes from the arena's start (hi = lo: none). */
static void byte_range(const pml_cpu_ctx *c, int i, size_t *lo, size_t *hi)
{
    *lo = *hi = 0;
    if (!c->buf[i]) return;
    *lo = (size_t)(c->buf[i] - c->arena);
    *hi = *lo + c->bytes[i] * (size_t)c->copies[i];
}

static void widen(int32_t *a, int32_t *b, int i, int32_t t)
{
    if (a[i] < 0 || t < a[i]) a[i] = t;
    if (t > b[i]) b[i] = t;
}

static int buffers_share_bytes_only_when_never_alive_together(const pml_plan *pl)
{
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 2};
    pml_err err = {0};
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK);
    if (!b.ctx) return check_summary("buffers share bytes only when never alive together");
    const pml_cpu_ctx *c = (const pml_cpu_ctx *)b.ctx;
    int N = pl->n_nodes;
    int32_t *first = malloc(sizeof(int32_t) * (size_t)N), *last = malloc(sizeof(int32_t) * (size_t)N);
    uint8_t *pinned = calloc((size_t)N, 1); /* alive throughout */
    for (int i = 0; i < N; i++) first[i] = last[i] = -1;
    int32_t io[3] = {pl->loss, pl->output, pl->labels};
    for (int k = 0; k < 3; k++)
        if (io[k] >= 0) pinned[c->low[io[k]].alias] = 1;
    for (int i = 0; i < N; i++) {
        uint16_t op = pl->nodes[i].op;
        pinned[i] |= op == PML_OP_PARAM || op == PML_OP_INPUT || op == PML_OP_CONST || op == PML_OP_ARANGE ||
                     c->invariant[i] || c->per_mb[i] || c->all_mb[i];
    }
    /* Ticks: each stage's forward units, then its backward units (with split backwards:
     * the input half's, then the weight half's); every node of a unit reads its inputs
     * and writes itself there. */
    for (int s = 0; s < c->S; s++) {
        const pml_cpu_stage *st = &c->stages[s];
        int n_units = st->n_fwd + st->n_bwd + st->n_wgt;
        for (int t = 0; t < n_units; t++) {
            int u = t < st->n_fwd ? st->fwd[t] : t < st->n_fwd + st->n_bwd ? st->bwd[t - st->n_fwd]
                                                                          : st->wgt[t - st->n_fwd - st->n_bwd];
            const int32_t *nodes = u >= 0 ? &u : pl->kernels[-u - 1].nodes;
            int n_nodes = u >= 0 ? 1 : pl->kernels[-u - 1].n_nodes;
            for (int j = 0; j < n_nodes; j++) {
                int n = nodes[j], n_in;
                widen(first, last, c->low[n].alias, t);
                const int32_t *in = pml_cpu_node_inputs(pl, c->low, n, &n_in);
                for (int k = 0; k < n_in; k++) {
                    int r = c->low[in[k]].alias;
                    if (pl->nodes[r].stage != s) pinned[r] = 1;
                    widen(first, last, r, t);
                }
            }
        }
        for (int q = 0; q < pl->n_params; q++) {
            int g = pl->params[q].grad;
            if (g >= 0 && pl->nodes[g].stage == s) widen(first, last, c->low[g].alias, n_units - 1);
        }
    }
    size_t end_to_end = 0;
    int shared = 0;
    for (int i = 0; i < N; i++) {
        size_t lo, hi;
        byte_range(c, i, &lo, &hi);
        if (hi == lo) continue;
        end_to_end += (hi - lo + PML_CPU_MEM_ALIGN - 1) / PML_CPU_MEM_ALIGN * PML_CPU_MEM_ALIGN; /* each aligned, as placed */
        CHECK(hi <= c->arena_bytes && lo % PML_CPU_MEM_ALIGN == 0);
        int fwd_i = c->stages[pl->nodes[i].stage].n_fwd;
        for (int j = 0; j < i; j++) {
            size_t lo2, hi2;
            byte_range(c, j, &lo2, &hi2);
            if (hi2 == lo2 || pl->nodes[i].stage != pl->nodes[j].stage || hi <= lo2 || hi2 <= lo) continue;
            shared++;
            int ok = !pinned[i] && !pinned[j] && first[i] >= 0 && first[j] >= 0 &&
                     (last[i] < first[j] || last[j] < first[i]) && (last[i] < fwd_i || first[i] >= fwd_i) &&
                     (last[j] < fwd_i || first[j] >= fwd_i);
            if (!ok)
                fprintf(stderr, "nodes %d [%d, %d] and %d [%d, %d] share bytes\n", i, first[i], last[i], j, first[j],
                        last[j]);
            CHECK(ok);
        }
    }
    CHECK(shared > 0 && c->arena_bytes < end_to_end);
    printf("CPU arena %zu bytes; the same buffers end to end %zu bytes\n", c->arena_bytes, end_to_end);
    free(first), free(last), free(pinned);
    pml_backend_destroy(&b);
    return check_summary("buffers share bytes only when never alive together");
}

/* How many bias adds the CPU backend folded into products for `pl` (-1: no backend). */
static int count_folded(const pml_plan *pl, int unfused)
{
    pml_backend_inst b = {0};
    pml_backend_conf conf = {.seed = 5, .threads = 2, .unfused = unfused};
    pml_err err = {0};
    if (pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const pml_cpu_ctx *c = (const pml_cpu_ctx *)b.ctx;
    int folded = 0;
    for (int i = 0; i < pl->n_nodes; i++)
        if (c->low[i].folded) {
            int j = c->low[i].alias;
            CHECK(c->low[j].op == PML_OP_MATMUL && c->low[j].run && c->low[j].bias >= 0 && !c->low[i].run);
            folded++;
        }
    pml_backend_destroy(&b);
    return folded;
}

/* The weights after `steps` steps and one micro-batch's output, fused or not. */
static int train_and_forward(const pml_plan *pl, int unfused, int steps, float *w, float *y, pml_err *err)
{
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    int ok = pml_feed_create(pl, &feed, err) == PML_OK;
    pml_pipeline_opts o = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed, .unfused = unfused};
    ok = ok && pml_pipeline_create(pl, &o, &pipe, err) == PML_OK;
    for (int k = 0; ok && k < steps; k++) ok = pml_pipeline_step(pipe, NULL, err) == PML_OK;
    for (int q = 0, at = 0; ok && q < pl->n_params; q++) {
        int64_t c = pl->nodes[pl->params[q].node].numel;
        memcpy(w + at, pml_pipeline_param(pipe, q), sizeof(float) * (size_t)c);
        at += (int)c;
    }
    if (ok) {
        run r = {feed, pipe};
        ok = forward(&r, y, err);
    }
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    return ok;
}

static double rel_diff(const float *a, const float *ref, size_t n)
{
    double d = 0, norm = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]), norm += (double)ref[i] * ref[i];
    return norm > 0 ? sqrt(d / norm) : sqrt(d);
}

static int bias_adds_fold_into_their_products(const pml_plan *pl)
{
    int folded = count_folded(pl, 0);
    printf("bias adds folded: %d\n", folded);
    CHECK(folded == 2); /* l0 and l1; not the head, whose sum is the output the executor reads */
    CHECK(count_folded(pl, 1) == 0);
    size_t n = 0;
    for (int q = 0; q < pl->n_params; q++) n += (size_t)pl->nodes[pl->params[q].node].numel;
    float *w[2] = {malloc(sizeof(float) * n), malloc(sizeof(float) * n)};
    float y[2][MB_ROWS * CLASSES];
    pml_err err = {0};
    int ok = w[0] && w[1] && train_and_forward(pl, 0, 3, w[0], y[0], &err) && train_and_forward(pl, 1, 3, w[1], y[1], &err);
    CHECK(ok);
    if (ok) {
        double dw = rel_diff(w[0], w[1], n), dy = rel_diff(y[0], y[1], MB_ROWS * CLASSES);
        printf("folded against unfused: weights differ by %.3g, outputs by %.3g (relative)\n", dw, dy);
        CHECK(dw <= 1e-6 && dy <= 1e-6);
    } else
        fprintf(stderr, "%s\n", err.msg);
    free(w[0]), free(w[1]);
    return check_summary("bias adds fold into their products");
}

/* A backend made for a rank that runs stage `mine` of 2 (conf.runs), beside one that
 * runs both: `mine` holds what it holds in the whole one; the other stage only its
 * parameters, optimizer state and the values it sends `mine` (listed, and received into). */
static int rank_backend(const pml_plan *pl, int mine)
{
    int other = 1 - mine, kind = other < mine ? PML_MSG_ACT : PML_MSG_GRAD;
    uint8_t runs[STAGES] = {0};
    runs[mine] = 1;
    pml_backend_conf all = {.seed = 5, .threads = 1}, rank = all;
    rank.runs = runs;
    pml_backend_inst whole, part;
    pml_err err = {0};
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &all, &whole, &err) == PML_OK);
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &rank, &part, &err) == PML_OK);
    if (!whole.ops || !part.ops) return fprintf(stderr, "%s\n", err.msg), 1;
    pml_backend_memory w[STAGES], r[STAGES];
    for (int s = 0; s < STAGES; s++) pml_backend_memory_of(&whole, s, &w[s]), pml_backend_memory_of(&part, s, &r[s]);
    CHECK(!memcmp(&w[mine], &r[mine], sizeof w[mine])); /* the stage it runs: as in one process */
    size_t params = 0, sends = 0;
    for (int q = 0; q < pl->n_params; q++)
        if (pl->nodes[pl->params[q].node].stage == other)
            params += sizeof(float) * (size_t)pl->nodes[pl->params[q].node].numel;
    for (int64_t mb = 0; mb < MBS; mb++) {
        pml_backend_buf buf[8];
        int n = 0;
        CHECK(pml_backend_boundary(&part, other, kind, mb, buf, 8, &n, &err) == PML_OK && n >= 1 && n <= 8);
        for (int i = 0; i < n && i < 8; i++) {
            CHECK(buf[i].data != NULL && buf[i].bytes > 0);
            sends += buf[i].bytes;
        }
    }
    printf("stage %d of a rank running stage %d: values %zu bytes (whole: %zu; its parameters %zu, its messages %zu), "
           "gradients %zu (%zu), optimizer %zu (%zu), derived %zu (%zu), scratch %zu (%zu)\n",
           other, mine, r[other].values, w[other].values, params, sends, r[other].grads, w[other].grads,
           r[other].optimizer, w[other].optimizer, r[other].derived, w[other].derived, r[other].scratch,
           w[other].scratch);
    CHECK(r[other].values >= params + sends && r[other].values <= params + sends + 4096);
    CHECK(r[other].values < w[other].values);
    CHECK(r[other].grads == 0 && w[other].grads > 0);
    CHECK(r[other].optimizer == w[other].optimizer); /* ranks gather it (exec/dist_params.h) */
    CHECK(r[other].derived == 0 && r[other].scratch == 0);
    pml_backend_destroy(&whole), pml_backend_destroy(&part);
    return 0;
}

static int random_draws_are_never_per_step_invariants(const pml_plan *unused)
{
    (void)unused;
    static const char text[] = "import \"nn\"\n"
                               "model m(x: f32[B, 6]) -> f32[B, 6] {\n"
                               "    param w: [4, 18] = normal(0.5)\n"
                               "    a = attention_qkv(w, 3)\n"
                               "    d = attention_qkv(w, 3, dropout = 0.5)\n"
                               "    return x + sum(a) * 0.1 + sum(d) * 0.1\n"
                               "}\n"
                               "train m {\n"
                               "    data = \"x.npy\", labels = \"y.npy\"\n"
                               "    loss = mse\n"
                               "    optimizer = sgd(lr = 0.1)\n"
                               "    batch = 4, microbatches = 2\n"
                               "}\n";
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("draws.pml", text, NULL, &err);
    if (!pl) return fprintf(stderr, "%s\n", err.msg), 1;
    pml_backend_conf conf = {.seed = 3, .threads = 1};
    pml_backend_inst b;
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK);
    if (!b.ops) return pml_plan_free(pl), fprintf(stderr, "%s\n", err.msg), 1;
    const pml_cpu_ctx *c = (const pml_cpu_ctx *)b.ctx;
    int plain = 0, drawn = 0;
    for (int i = 0; i < pl->n_nodes; i++) {
        const pml_plan_node *n = &pl->nodes[i];
        if (n->op != PML_OP_ATTENTION_QKV || n->pass) continue;
        if (n->n_attr >= 4) {
            drawn++;
            CHECK(!c->invariant[i]);
        } else {
            plain++;
            CHECK(c->invariant[i]);
        }
    }
    CHECK(plain == 1 && drawn == 1);
    pml_backend_destroy(&b);
    pml_plan_free(pl);
    return check_summary("random draws are never per-step invariants");
}

static int a_rank_holds_only_what_its_stages_need(const pml_plan *pl)
{
    rank_backend(pl, 0);
    rank_backend(pl, 1);
    return check_summary("a rank holds only what its stages need");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const pml_plan *);
    } tests[] = {
        {"host_write_between_steps_is_seen", host_write_between_steps_is_seen},
        {"kept_values_have_a_copy_per_micro_batch_in_flight", kept_values_have_a_copy_per_micro_batch_in_flight},
        {"buffers_share_bytes_only_when_never_alive_together", buffers_share_bytes_only_when_never_alive_together},
        {"zero_bubble_keeps_only_what_the_weight_half_reads_longer",
         zero_bubble_keeps_only_what_the_weight_half_reads_longer},
        {"zero_bubble_buffers_share_bytes_only_when_never_alive_together",
         buffers_share_bytes_only_when_never_alive_together},
        {"bias_adds_fold_into_their_products", bias_adds_fold_into_their_products},
        {"a_rank_holds_only_what_its_stages_need", a_rank_holds_only_what_its_stages_need},
        {"random_draws_are_never_per_step_invariants", random_draws_are_never_per_step_invariants},
    };
    if (argc != 2) {
        fprintf(stderr, "usage: %s TEST\n", argv[0]);
        return 2;
    }
    pml_plan *pl = compile_with(strncmp(argv[1], "zero_bubble", 11) ? "1f1b" : "zero_bubble");
    if (!pl) return 1;
    int rc = -1;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(argv[1], tests[i].name)) rc = tests[i].fn(pl);
    if (rc < 0) fprintf(stderr, "unknown test %s\n", argv[1]);
    pml_plan_free(pl);
    return rc < 0 ? 2 : rc;
}

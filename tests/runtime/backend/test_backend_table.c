/* test_backend_table.c — the backend table is complete and is the pipeline's only way
 * to a device:
 *   counting_backend_trains_bit_identically_to_cpu: a backend that wraps the CPU's and
 *     counts every call trains, evaluates and serves exactly like the CPU backend (the
 *     same bits), and the counts are what the timetable implies — so every piece of
 *     device work went through the table;
 *   missing_required_slot_is_an_error: a table without `update` is refused with a
 *     message, at create, not by a crash mid-step;
 *   null_optional_slots_mean_nothing_to_do: the wrappers treat NULL optional slots as
 *     no-ops (boundary: unsupported), and a backend leaving them NULL trains;
 *   cpu_boundary_lists_what_crosses_stages: the CPU backend's boundary slot lists, per
 *     stage and direction, the host buffers another stage reads;
 *   split_backwards_need_backward_half: a zero_bubble plan (backwards in input and
 *     weight halves) is refused at create, naming the schedule, by a backend without
 *     backward_half, and trained by the CPU's;
 *   chunks_run_on_a_device_backend_as_on_the_cpu: an interleaved 1F1B plan (2 stages of
 *     2 chunks) trains on the CPU backend, and on a device backend (the CPU's slots under
 *     a device kind: the executor treats its chunks as stages, as the CUDA backend's)
 *     to the same bits; a rank given the chunks as its devices is refused;
 *   device_spans_replace_the_launch_times: with a trace, a device backend's forward and
 *     backward spans are the device's times it reports (device_span), not the host's
 *     launch times, and the measured bubble counts them; the CPU's stay the host's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "backend_ops.h"
#include "compile_plan.h"
#include "cpu/stage.h"
#include "exec/dist.h"
#include "exec/feed.h"
#include "exec/pipeline.h"
#include "exec/transport.h"
#include "plan/plan.h"
#include "pmlc.h"

enum { STAGES = 2, MBS = 4, STEPS = 3, EVAL_BATCHES = 2 };

static const char model_text[] = "import \"nn\"\n"
                                 "model m(x: f32[B, 16]) -> f32[B, 4] {\n"
                                 "    place = auto(stages = 2)\n"
                                 "    h = tanh(linear(x, 32) as l0)\n"
                                 "    h = gelu(layernorm(linear(h, 32) as l1) as n1)\n"
                                 "    h = dropout(h, 0.1)\n"
                                 "    return linear(h, 4) as head\n"
                                 "}\n"
                                 "train m {\n"
                                 "    data = classes(features = 16, classes = 4, seed = 3)\n"
                                 "    loss = cross_entropy\n"
                                 "    optimizer = adamw(lr = 0.01)\n"
                                 "    batch = 16, microbatches = 4, schedule = 1f1b\n"
                                 "    steps = 3, seed = 5\n"
                                 "}\n";

static pml_plan *compile_plan(void)
{
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("table.pml", model_text, NULL, &err);
    if (!pl) fprintf(stderr, "cannot make the plan: %s\n", err.msg);
    return pl;
}

/* ---- the counting backend: the CPU's table, every call counted ------------------- */

enum { C_CREATE, C_BEGIN, C_FWD, C_BWD, C_GRAD_SQ, C_UPDATE, C_SYNC, C_UPLOAD, C_DOWNLOAD, C_PDOWN, C_PUP, C_N };
static long counts[C_N];
static const pml_backend_ops *inner = &pml_cpu_backend_ops;

static pml_status c_create(const pml_plan *pl, const pml_backend_conf *conf, pml_backend_ctx **out, pml_err *err)
{
    counts[C_CREATE]++;
    return inner->create(pl, conf, out, err);
}
static void c_destroy(pml_backend_ctx *b) { inner->destroy(b); }
static pml_status c_begin(pml_backend_ctx *b, int64_t step, int train, pml_err *err)
{
    counts[C_BEGIN]++;
    return inner->begin(b, step, train, err);
}
static pml_status c_forward(pml_backend_ctx *b, int s, int64_t mb, pml_backend_fwd_mode mode, pml_err *err)
{
    __atomic_fetch_add(&counts[C_FWD], 1, __ATOMIC_RELAXED); /* stage workers call concurrently */
    return inner->forward(b, s, mb, mode, err);
}
static pml_status c_backward(pml_backend_ctx *b, int s, int64_t mb, pml_err *err)
{
    __atomic_fetch_add(&counts[C_BWD], 1, __ATOMIC_RELAXED);
    return inner->backward(b, s, mb, err);
}
static pml_status c_grad_sq(pml_backend_ctx *b, int s, double *sq, pml_err *err)
{
    __atomic_fetch_add(&counts[C_GRAD_SQ], 1, __ATOMIC_RELAXED);
    return inner->grad_sq(b, s, sq, err);
}
static pml_status c_update(pml_backend_ctx *b, int s, double lr, double clip, pml_err *err)
{
    __atomic_fetch_add(&counts[C_UPDATE], 1, __ATOMIC_RELAXED);
    return inner->update(b, s, lr, clip, err);
}
static pml_status c_sync(pml_backend_ctx *b, int s, pml_err *err)
{
    (void)b, (void)s, (void)err;
    __atomic_fetch_add(&counts[C_SYNC], 1, __ATOMIC_RELAXED);
    return PML_OK;
}
static void *c_host_value(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb)
{
    return inner->host_value(b, what, k, mb);
}
static pml_status c_upload(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    (void)b, (void)what, (void)k, (void)mb, (void)err;
    __atomic_fetch_add(&counts[C_UPLOAD], 1, __ATOMIC_RELAXED);
    return PML_OK;
}
static pml_status c_download(pml_backend_ctx *b, pml_backend_value what, int k, int64_t mb, pml_err *err)
{
    (void)b, (void)what, (void)k, (void)mb, (void)err;
    __atomic_fetch_add(&counts[C_DOWNLOAD], 1, __ATOMIC_RELAXED);
    return PML_OK;
}
static float *c_host_param(pml_backend_ctx *b, int q, int which) { return inner->host_param(b, q, which); }
static pml_status c_params_download(pml_backend_ctx *b, pml_err *err)
{
    (void)b, (void)err;
    counts[C_PDOWN]++;
    return PML_OK;
}
static pml_status c_params_upload(pml_backend_ctx *b, pml_err *err)
{
    counts[C_PUP]++;
    return inner->params_upload(b, err);
}

static const pml_backend_ops counting_ops = {
    .name = "counting",
    .create = c_create,
    .destroy = c_destroy,
    .begin = c_begin,
    .forward = c_forward,
    .backward = c_backward,
    .grad_sq = c_grad_sq,
    .update = c_update,
    .sync = c_sync,
    .host_value = c_host_value,
    .upload = c_upload,
    .download = c_download,
    .host_param = c_host_param,
    .params_download = c_params_download,
    .params_upload = c_params_upload,
};

/* What one run leaves: every parameter's bits, the step losses, evaluation and one
 * inference output. */
typedef struct outcome {
    float *w;
    size_t n;
    double loss[STEPS], eval_loss, eval_acc;
    float y[64];
    int ok;
} outcome;

static outcome run(const pml_plan *pl, const pml_backend_ops *ops)
{
    outcome o = {0};
    pml_feed *feed = NULL;
    pml_pipeline *pipe = NULL;
    pml_err err = {0};
    if (pml_feed_create(pl, &feed, &err)) goto out;
    pml_pipeline_opts opts = {.seed = 5, .threads = 2, .feed = pml_feed_fill, .feed_ctx = feed, .backend = ops};
    if (pml_pipeline_create(pl, &opts, &pipe, &err)) goto out;
    for (int k = 0; k < STEPS; k++) {
        pml_step_stats st;
        if (pml_pipeline_step(pipe, &st, &err)) goto out;
        o.loss[k] = st.loss;
    }
    for (int q = 0; q < pl->n_params; q++) o.n += (size_t)pl->nodes[pl->params[q].node].numel;
    o.w = malloc(sizeof(float) * o.n);
    for (int q = 0, at = 0; q < pl->n_params; q++) {
        int64_t c = pl->nodes[pl->params[q].node].numel;
        memcpy(o.w + at, pml_pipeline_param(pipe, q), sizeof(float) * (size_t)c);
        (void)pml_pipeline_param(pipe, q); /* a second look copies nothing more */
        at += (int)c;
    }
    if (pml_pipeline_evaluate(pipe, EVAL_BATCHES, &o.eval_loss, &o.eval_acc, &err)) goto out;
    float x[4 * 16];
    for (int i = 0; i < 4 * 16; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    const void *in[1] = {x};
    if (pml_pipeline_forward(pipe, in, o.y, &err)) goto out;
    o.ok = 1;
out:
    if (!o.ok) fprintf(stderr, "run with backend %s: %s\n", ops ? ops->name : "default", err.msg);
    pml_pipeline_destroy(pipe);
    pml_feed_destroy(feed);
    return o;
}

static int counting_backend_trains_bit_identically_to_cpu(const pml_plan *pl)
{
    CHECK(pl->conf.stages == STAGES && pl->conf.microbatches == MBS && pl->n_inputs == 1);
    CHECK(pl->nodes[pl->output].numel <= 64);
    outcome cpu = run(pl, NULL), counted = run(pl, &counting_ops);
    CHECK(cpu.ok && counted.ok && cpu.n == counted.n);
    if (!cpu.ok || !counted.ok || cpu.n != counted.n) return check_summary("counting backend");
    CHECK(memcmp(cpu.w, counted.w, sizeof(float) * cpu.n) == 0);
    CHECK(memcmp(cpu.loss, counted.loss, sizeof cpu.loss) == 0);
    CHECK(cpu.eval_loss == counted.eval_loss && cpu.eval_acc == counted.eval_acc);
    CHECK(memcmp(cpu.y, counted.y, sizeof cpu.y) == 0);
    long S = STAGES, M = MBS, T = STEPS, E = EVAL_BATCHES;
    CHECK(counts[C_CREATE] == 1);
    CHECK(counts[C_BEGIN] == T + 2);                   /* each step, the evaluation, the inference */
    CHECK(counts[C_FWD] == T * M * S + E * M * S + S); /* training, evaluation, inference */
    CHECK(counts[C_BWD] == T * M * S);
    CHECK(counts[C_GRAD_SQ] == T * S && counts[C_UPDATE] == T * S);
    /* before each send (activations and gradients over S-1 links), around the norm
     * barrier and after the update, after each stage's forward outside training */
    CHECK(counts[C_SYNC] == T * (2 * M * (S - 1) + 2 * S) + E * M * S + S);
    CHECK(counts[C_UPLOAD] == T * M * 2 + E * M * 2 + 1); /* input and labels; inference: the input */
    CHECK(counts[C_DOWNLOAD] == T * M + E * M * 2 + 1);   /* loss; loss and output; output */
    CHECK(counts[C_PDOWN] == 1);                          /* parameters read once after the steps */
    CHECK(counts[C_PUP] == 1);                            /* handed out, so sent back before evaluating */
    for (int c = 0; c < C_N; c++) printf("count %d: %ld\n", c, counts[c]);
    free(cpu.w), free(counted.w);
    return check_summary("a counting backend trains bit-identically to the CPU backend");
}

static int missing_required_slot_is_an_error(const pml_plan *pl)
{
    pml_backend_ops broken = pml_cpu_backend_ops;
    broken.update = NULL;
    pml_pipeline_opts opts = {.seed = 5, .threads = 1, .backend = &broken};
    pml_pipeline *pipe = (pml_pipeline *)&broken; /* create must clear it */
    pml_err err = {0};
    pml_status st = pml_pipeline_create(pl, &opts, &pipe, &err);
    CHECK(st == PML_ERR_INVALID_ARG);
    CHECK(pipe == NULL);
    CHECK(strstr(err.msg, "backend 'cpu' lacks a required operation") != NULL);
    return check_summary("a table missing a required slot is refused");
}

static int null_optional_slots_mean_nothing_to_do(const pml_plan *pl)
{
    /* the CPU table leaves every copy and wait slot NULL but params_upload (which marks
     * its packed weights stale); this one leaves that NULL too */
    const pml_backend_ops *cpu = &pml_cpu_backend_ops;
    CHECK(!cpu->sync && !cpu->upload && !cpu->download && !cpu->params_download && cpu->params_upload);
    pml_backend_ops bare = pml_cpu_backend_ops;
    bare.boundary = NULL;
    bare.params_upload = NULL;
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 1};
    pml_err err = {0};
    CHECK(pml_backend_create(&bare, pl, &conf, &b, &err) == PML_OK);
    CHECK(pml_backend_sync(&b, 0, &err) == PML_OK);
    CHECK(pml_backend_upload(&b, PML_BACKEND_VAL_INPUT, 0, 0, &err) == PML_OK);
    CHECK(pml_backend_download(&b, PML_BACKEND_VAL_LOSS, 0, 0, &err) == PML_OK);
    CHECK(pml_backend_params_download(&b, &err) == PML_OK && pml_backend_params_upload(&b, &err) == PML_OK);
    pml_backend_buf buf[4];
    int n = -1;
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_ACT, 0, buf, 4, &n, &err) == PML_ERR_UNSUPPORTED && n == 0);
    CHECK(strstr(err.msg, "cannot list") != NULL);
    CHECK(pml_backend_host_value(&b, PML_BACKEND_VAL_INPUT, 7, 0) == NULL);  /* no input 7 */
    CHECK(pml_backend_host_value(&b, PML_BACKEND_VAL_LOSS, 0, MBS) == NULL); /* no micro-batch MBS */
    CHECK(pml_backend_host_param(&b, pl->n_params, -1) == NULL);
    pml_backend_destroy(&b);
    pml_backend_destroy(&b); /* twice is harmless */
    /* and training through such a table works: the outcome test's CPU run has it */
    outcome o = run(pl, &bare);
    CHECK(o.ok);
    free(o.w);
    return check_summary("NULL optional slots mean nothing to do");
}

static int cpu_boundary_lists_what_crosses_stages(const pml_plan *pl)
{
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 1};
    pml_err err = {0};
    CHECK(pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK);
    if (!b.ops) return check_summary("cpu boundary");
    pml_backend_buf act0[8], act1[8], grad1[8], none[8];
    int n_act0, n_act1, n_grad1, n;
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_ACT, 0, act0, 8, &n_act0, &err) == PML_OK);
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_ACT, 1, act1, 8, &n_act1, &err) == PML_OK);
    CHECK(pml_backend_boundary(&b, 1, PML_MSG_GRAD, 0, grad1, 8, &n_grad1, &err) == PML_OK);
    CHECK(n_act0 >= 1 && n_act0 <= 8 && n_act1 == n_act0 && n_grad1 >= 1 && n_grad1 <= 8);
    for (int i = 0; i < n_act0 && i < 8; i++) {
        CHECK(act0[i].data && act0[i].device == PML_DEVICE_HOST && act0[i].bytes > 0 && act0[i].bytes % 4 == 0);
        /* kept per micro-batch: micro-batch 1's copy follows micro-batch 0's */
        CHECK((char *)act1[i].data == (char *)act0[i].data + act0[i].bytes);
    }
    /* the first stage sends no gradients, the last no activations */
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_GRAD, 0, none, 8, &n, &err) == PML_OK && n == 0);
    CHECK(pml_backend_boundary(&b, 1, PML_MSG_ACT, 0, none, 8, &n, &err) == PML_OK && n == 0);
    /* too little room: the count still tells how much is needed */
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_ACT, 0, none, 0, &n, &err) == PML_OK && n == n_act0);
    CHECK(pml_backend_boundary(&b, 2, PML_MSG_ACT, 0, none, 8, &n, &err) == PML_ERR_INVALID_ARG);
    CHECK(pml_backend_boundary(&b, 0, PML_MSG_ACT, MBS, none, 8, &n, &err) == PML_ERR_INVALID_ARG);
    pml_backend_destroy(&b);
    return check_summary("the CPU backend lists what crosses stages");
}

static int split_backwards_need_backward_half(const pml_plan *pl)
{
    (void)pl;
    char text[sizeof model_text + 16];
    const char *at = strstr(model_text, "schedule = 1f1b");
    snprintf(text, sizeof text, "%.*sschedule = zero_bubble%s", (int)(at - model_text), model_text,
             at + strlen("schedule = 1f1b"));
    pml_err err = {0};
    pml_plan *zb = test_compile_plan("zb.pml", text, NULL, &err);
    CHECK(zb != NULL);
    if (!zb) return check_summary("split backwards need backward_half");
    pml_backend_ops whole = pml_cpu_backend_ops;
    whole.name = "whole";
    whole.backward_half = NULL;
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 1};
    CHECK(pml_backend_create(&whole, zb, &conf, &b, &err) == PML_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "the whole backend runs whole backward passes only") && strstr(err.msg, "zero_bubble"));
    CHECK(pml_backend_create(&whole, pl, &conf, &b, &err) == PML_OK); /* 1F1B's whole backwards: fine */
    pml_backend_destroy(&b);
    outcome o = run(zb, NULL);
    CHECK(o.ok);
    free(o.w);
    pml_plan_free(zb);
    return check_summary("split backwards need backward_half");
}

static int chunks_run_on_a_device_backend_as_on_the_cpu(const pml_plan *pl)
{
    (void)pl;
    char text[sizeof model_text + 64];
    const char *place = strstr(model_text, "auto(stages = 2)"), *sched = strstr(model_text, "schedule = 1f1b");
    snprintf(text, sizeof text, "%.*sauto(stages = 2, chunks = 2)%.*sschedule = interleaved_1f1b%s",
             (int)(place - model_text), model_text, (int)(sched - place - strlen("auto(stages = 2)")),
             place + strlen("auto(stages = 2)"), sched + strlen("schedule = 1f1b"));
    pml_err err = {0};
    pml_plan *il = test_compile_plan("il.pml", text, NULL, &err);
    CHECK(il != NULL);
    if (!il) return fprintf(stderr, "%s\n", err.msg), check_summary("chunks run on a device backend");
    CHECK(il->conf.chunks == 2 && il->conf.stages == 4 && il->n_stages == 2);
    outcome o = run(il, NULL);
    CHECK(o.ok);
    pml_backend_ops dev = pml_cpu_backend_ops;
    dev.name = "device";
    dev.device = PML_DEVICE_CUDA;
    outcome on_dev = run(il, &dev);
    CHECK(on_dev.ok && on_dev.n == o.n && o.w && on_dev.w && !memcmp(on_dev.w, o.w, sizeof(float) * o.n));
    free(o.w), free(on_dev.w);
    pml_pipeline_opts opts = {.seed = 5, .threads = 2};
    pml_pipeline *pipe = NULL;
    /* Ranks split the stage devices, not the chunks: a rank given 4 "stages" of this
     * plan's 2 devices was placed by the wrong rule, and is refused before anything runs. */
    pml_dist d = {.rank = 0,
                  .world = 2,
                  .first = 0,
                  .last = 4,
                  .replica = 0,
                  .replicas = 1,
                  .devices = 4,
                  .schedule = (int)il->conf.schedule};
    opts.dist = &d;
    CHECK(pml_pipeline_create(il, &opts, &pipe, &err) == PML_ERR_INVALID_ARG && !pipe);
    CHECK(strstr(err.msg, "stage devices 0 to 3 of 4") && strstr(err.msg, "for a plan of 2"));
    pml_plan_free(il);
    return check_summary("chunks run on a device backend");
}

/* The stand-in device's times: call `call` of stage s on mb ran 0.5 ms from
 * 1000 s + s + mb / 100 + call / 1000 on the host's clock. */
static int fake_span(pml_backend_ctx *b, int s, pml_backend_call call, int64_t mb, double *t0, double *t1)
{
    (void)b;
    *t0 = 1000.0 + s + (double)mb / 100 + (double)call / 1000;
    *t1 = *t0 + 0.0005;
    return 1;
}

static int device_spans_replace_the_launch_times(const pml_plan *pl)
{
    pml_backend_ops dev = pml_cpu_backend_ops;
    dev.name = "device";
    dev.device = PML_DEVICE_CUDA;
    dev.device_span = fake_span;
    for (int with = 0; with < 2; with++) {
        pml_feed *feed = NULL;
        pml_pipeline *pipe = NULL;
        pml_err err = {0};
        pml_pipeline_opts opts = {
            .seed = 5, .threads = 2, .feed = pml_feed_fill, .trace = 1, .backend = with ? &dev : NULL};
        CHECK(pml_feed_create(pl, &feed, &err) == PML_OK);
        opts.feed_ctx = feed;
        CHECK(pml_pipeline_create(pl, &opts, &pipe, &err) == PML_OK);
        pml_step_stats stats;
        CHECK(pipe && pml_pipeline_step(pipe, &stats, &err) == PML_OK);
        double epoch = pipe ? pml_pipeline_trace_epoch(pipe) : 0;
        int passes = 0, device = 0;
        for (int s = 0; pipe && s < STAGES; s++) {
            int n = 0;
            const pml_trace_event *ev = pml_pipeline_trace(pipe, s, &n);
            for (int i = 0; i < n; i++) {
                const pml_trace_event *e = &ev[i];
                int call = e->kind == PML_PLAN_I_FWD   ? PML_BACKEND_CALL_FWD
                           : e->kind == PML_PLAN_I_BWD ? PML_BACKEND_CALL_BWD
                                                       : -1;
                if (call < 0) continue;
                passes++;
                double want = (1000.0 + e->unit + (double)e->mb / 100 + (double)call / 1000 - epoch) * 1e6;
                device += fabs(e->t0 - want) < 1e-3 && fabs(e->t1 - e->t0 - 500) < 1e-3;
            }
        }
        printf("%s: %d passes, %d at the device's times; bubble %.3f\n", with ? "device" : "cpu", passes, device,
               pipe ? pml_pipeline_last_bubble(pipe) : 0);
        CHECK(passes == 2 * STAGES * MBS);
        CHECK(device == (with ? passes : 0));
        /* the stages' busy time is their passes' on the device: 2 MBS x 0.5 ms each */
        if (with) CHECK(pipe && pml_pipeline_last_bubble(pipe) < 1 - 0.9 * 2 * MBS * 500 / (1e6 * stats.seconds));
        pml_pipeline_destroy(pipe);
        pml_feed_destroy(feed);
    }
    return check_summary("device spans replace the launch times");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const pml_plan *);
    } tests[] = {
        {"counting_backend_trains_bit_identically_to_cpu", counting_backend_trains_bit_identically_to_cpu},
        {"missing_required_slot_is_an_error", missing_required_slot_is_an_error},
        {"null_optional_slots_mean_nothing_to_do", null_optional_slots_mean_nothing_to_do},
        {"cpu_boundary_lists_what_crosses_stages", cpu_boundary_lists_what_crosses_stages},
        {"split_backwards_need_backward_half", split_backwards_need_backward_half},
        {"chunks_run_on_a_device_backend_as_on_the_cpu", chunks_run_on_a_device_backend_as_on_the_cpu},
        {"device_spans_replace_the_launch_times", device_spans_replace_the_launch_times},
    };
    if (argc != 2) return fprintf(stderr, "usage: test_backend_table NAME\n"), 2;
    pml_plan *pl = compile_plan();
    if (!pl) return 1;
    int rc = 2;
    for (size_t t = 0; t < sizeof tests / sizeof *tests; t++)
        if (!strcmp(argv[1], tests[t].name)) rc = tests[t].fn(pl);
    if (rc == 2) fprintf(stderr, "no test named %s\n", argv[1]);
    pml_plan_free(pl);
    return rc;
}

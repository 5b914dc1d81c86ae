/* test_recompute.c — recomputation (autodiff.h, docs/design.md "Recomputation") changes
 * where the backward pass gets its forward values, never what it computes:
 *   weights_are_bit_identical_with_and_without_recompute SCHEDULE (gpipe, 1f1b,
 *     zero_bubble): a small transformer
 *     with dropout trained 3 steps on 1 and 2 stages, 1 and 4 micro-batches, with
 *     `recompute = true` and with `recompute blocks.*.attn` (attention only), ends with
 *     the same bits as without recomputation; and the backward pass did recompute
 *     (its graph holds copies: of the dropouts and the attention);
 *   peak_activation_memory_falls_by_the_planned_amount: the bytes the CPU backend
 *     allocates for its stages' values (their arenas: every value, kept or temporary)
 *     fall by what the compiler's memory estimate (`pmlc plan`'s "memory" lines) says
 *     they fall, within 10%, for whole-model and attention-only recomputation, and by
 *     more than a fifth and a twentieth, under GPipe (the whole arenas against each
 *     other, per stage and every schedule, are tests/runtime/memory's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/check.h"
#include "backend_ops.h"
#include "cpu/stage.h"
#include "plan/memplan.h"
#include "session_int.h"
#include "train_weights.h"

/* %d stages, %d micro-batches, schedule %s, T = %d, recompute (a train-block line). */
static const char model_fmt[] = "import \"nn\"\n"
                                "model gpt(idx: i32[B, T]) -> f32[B, T, 17] {\n"
                                "    place = auto(stages = %d)\n"
                                "    h = embedding(idx, 17, 16) as wte\n"
                                "    h = h + embedding(arange(dim(idx, 1)), 64, 16) as wpe\n"
                                "    repeat 2 { h = block(h, 2, 0.1) as blocks }\n"
                                "    return linear(layernorm(h) as ln_f, 17, has_bias = false) as lm_head\n"
                                "}\n"
                                "train gpt {\n"
                                "    data = markov(vocab = 17, order = 2, seed = 1)\n"
                                "    loss = cross_entropy\n"
                                "    optimizer = adamw(lr = 0.01)\n"
                                "    batch = 8, microbatches = %d, schedule = %s\n"
                                "    steps = 3, seed = 5, T = %d\n"
                                "    %s\n"
                                "}\n";

static const char *const modes[3] = {"", "recompute = true", "recompute blocks.*.attn"};

static void program(char *text, size_t cap, int stages, int mbs, const char *sched, int T, int mode)
{
    snprintf(text, cap, model_fmt, stages, mbs, sched, T, modes[mode]);
}

/* Nodes of the plan's backward pass that recompute a forward value: the same op as a
 * forward node, which only copies are (a backward rule makes its own ops, but never a
 * dropout with a forward node's key, a forward attention or a matmul of two forward
 * values' copies): backward dropouts beyond the one per forward dropout that its rule
 * makes, and backward attention (its gradient is another op). */
static int recomputed_copies(const pml_plan *pl)
{
    int fwd = 0, bwd = 0, attention = 0;
    for (int i = 0; i < pl->n_nodes; i++) {
        uint16_t op = pl->nodes[i].op;
        if (op == PML_OP_DROPOUT) *(pl->nodes[i].pass ? &bwd : &fwd) += 1;
        attention += pl->nodes[i].pass && (op == PML_OP_ATTENTION || op == PML_OP_ATTENTION_QKV);
    }
    return bwd - fwd + attention;
}

/* Trains 3 steps; returns every parameter concatenated (malloc'ed), or NULL; and the
 * plan's recomputed dropouts. */
static float *train(const char *text, size_t *n_out, int *recomputed)
{
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("recompute.pml", text, NULL, &err);
    *recomputed = pl ? recomputed_copies(pl) : -1;
    pml_plan_free(pl);
    return test_train_weights("recompute.pml", text, 3, 0, n_out);
}

static int bit_identical(const char *sched)
{
    static const int stages[2] = {1, 2}, mbs[2] = {1, 4};
    char text[4096];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            size_t n0 = 0, n = 0;
            int copies = 0;
            program(text, sizeof text, stages[a], mbs[b], sched, 8, 0);
            float *plain = train(text, &n0, &copies);
            CHECK(plain != NULL && copies == 0);
            for (int mode = 1; plain && mode < 3; mode++) {
                program(text, sizeof text, stages[a], mbs[b], sched, 8, mode);
                float *w = train(text, &n, &copies);
                CHECK(w && n == n0);
                CHECK(copies > 0); /* the attention is recomputed in both modes */
                int same = w && n == n0 && !memcmp(w, plain, sizeof(float) * n);
                if (!same)
                    fprintf(stderr, "%s, %d stages, %d micro-batches, '%s': weights differ\n", sched, stages[a],
                            mbs[b], modes[mode]);
                CHECK(same);
                free(w);
            }
            free(plain);
        }
    return check_summary("weights are bit-identical with and without recompute");
}

/* The compiler's estimate of every stage's arena, summed; -1 when it has none. */
static int64_t planned_arena(const char *text)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    const pmlc_plan *pl = NULL;
    int64_t sum = -1;
    if (s && !pmlc_session_check_text(s, "recompute.pml", text, strlen(text)) && pmlc_session_graph(s, &pl) &&
        pl->memory) {
        sum = 0;
        for (int k = 0; k < pl->memory->n_stages; k++) sum += pl->memory->stages[k].arena;
    }
    pmlc_session_destroy(s);
    return sum;
}

/* The bytes the CPU backend allocates for every stage's values. */
static int64_t measured_arena(const char *text)
{
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("recompute.pml", text, NULL, &err);
    if (!pl) return -1;
    pml_backend_inst b;
    pml_backend_conf conf = {.seed = 5, .threads = 2};
    int64_t bytes = -1;
    if (pml_backend_create(&pml_cpu_backend_ops, pl, &conf, &b, &err) == PML_OK)
        bytes = (int64_t)((const pml_cpu_ctx *)b.ctx)->arena_bytes;
    else
        fprintf(stderr, "%s\n", err.msg);
    pml_backend_destroy(&b);
    pml_plan_free(pl);
    return bytes;
}

static int memory_falls_as_planned(void)
{
    char text[4096];
    program(text, sizeof text, 2, 4, "gpipe", 64, 0);
    int64_t plan0 = planned_arena(text), run0 = measured_arena(text);
    CHECK(plan0 > 0 && run0 > 0);
    for (int mode = 1; mode < 3; mode++) {
        program(text, sizeof text, 2, 4, "gpipe", 64, mode);
        int64_t plan = planned_arena(text), run = measured_arena(text);
        CHECK(plan > 0 && run > 0);
        double planned = (double)(plan0 - plan), measured = (double)(run0 - run);
        printf("'%s': planned arena %lld -> %lld bytes (-%.0f), measured %lld -> %lld (-%.0f)\n", modes[mode],
               (long long)plan0, (long long)plan, planned, (long long)run0, (long long)run, measured);
        /* whole-model recomputation saves more than a fifth; attention alone (fused: it
         * keeps its input and output, no [T, T] weights) more than a twentieth */
        CHECK(planned > (mode == 1 ? 0.2 : 0.05) * (double)plan0);
        CHECK(fabs(measured - planned) <= 0.1 * planned);
    }
    return check_summary("peak activation memory falls by the planned amount");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "bit_identical")) return bit_identical(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "memory")) return memory_falls_as_planned();
    fprintf(stderr, "usage: test_recompute bit_identical SCHEDULE | memory\n");
    return 2;
}

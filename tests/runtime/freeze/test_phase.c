/* test_phase.c — a scheduled freeze removes work at its boundary (plan/phase.h).
 *
 * The same residual MLP is compiled twice: with `freeze stem, layers.[0-1].* after 3
 * steps` and with the freeze static. From step 3 the scheduled plan must run exactly
 * the backward work of the static plan: per pass (input-gradient, weight-gradient) and
 * per stage, as many backward nodes as the static plan has, none for a frozen
 * parameter's gradient, none at all on a stage holding only frozen layers; before
 * step 3, all of its backward work. Placement is explicit so both plans cut alike. */
#include <stdio.h>
#include <string.h>

#include "../../core/compile_plan.h"
#include "plan/phase.h"

#define MODEL                                                                                      \
    "import \"nn\"\n"                                                                              \
    "fn residual(x, hidden) { return x + mlp(layernorm(x) as norm, hidden) as mlp }\n"             \
    "model deep(x: f32[B, 32]) -> f32[B, 4] {\n"                                                   \
    "    stage 0 { h0 = residual(gelu(linear(x, 48) as stem), 96) as l0 }\n"                    \
    "    stage 1 { h1 = residual(residual(h0, 96) as l1, 96) as l2 }\n"                         \
    "    stage 2 { return linear(layernorm(h1) as norm, 4) as head }\n"                         \
    "}\n"                                                                                          \
    "train deep {\n"                                                                               \
    "    data = classes(features = 32, classes = 4)\n"                                             \
    "    loss = cross_entropy\n"                                                                   \
    "    optimizer = sgd(lr = 0.1)\n"                                                              \
    "    batch = 64, microbatches = 4\n"                                                           \
    "    steps = 10\n"                                                                             \
    "    %s\n"                                                                                     \
    "}\n"

static int failures;

static void check(int cond, const char *what)
{
    if (!cond) {
        failures++;
        printf("FAIL: %s\n", what);
    }
}

static pml_plan *compile(const char *freeze)
{
    char text[4096];
    snprintf(text, sizeof text, MODEL, freeze);
    pml_err err = {0};
    pml_plan *pl = test_compile_plan("freeze.pml", text, NULL, &err);
    if (!pl) printf("cannot compile: %s\n", err.msg);
    return pl;
}

/* Backward nodes per stage and pass (1: input-gradient, 2: weight-gradient) that run. */
static void count(const pml_plan *pl, const uint8_t *runs, int out[3][3])
{
    memset(out, 0, sizeof(int) * 9);
    for (int n = 0; n < pl->n_nodes; n++)
        if (pl->nodes[n].pass && (!runs || runs[n])) out[pl->nodes[n].stage][pl->nodes[n].pass]++;
}

int main(void)
{
    pml_plan *sched = compile("freeze stem, l0.*, l1.* after 3 steps"), *stat = compile("freeze stem, l0.*, l1.*");
    if (!sched || !stat || sched->conf.stages != 3 || stat->conf.stages != 3) return 1;
    pml_phase ph;
    pml_err err = {0};
    if (pml_phase_init(&ph, sched, &err)) return 1;
    int all[3][3], before[3][3], after[3][3], want[3][3];
    count(sched, NULL, all);
    count(stat, NULL, want);
    check(!pml_phase_at(&ph, sched, 2), "nothing changes before the boundary");
    count(sched, ph.runs, before);
    check(!memcmp(all, before, sizeof all), "before the boundary every backward node runs");
    check(pml_phase_at(&ph, sched, 3), "the phase changes at step 3");
    count(sched, ph.runs, after);
    for (int s = 0; s < 3; s++)
        printf("stage %d: backward nodes B/W: all %d/%d, from step 3 %d/%d, static plan %d/%d\n", s, all[s][1],
               all[s][2], after[s][1], after[s][2], want[s][1], want[s][2]);
    check(!memcmp(after, want, sizeof want), "from step 3 the backward work is the static freeze's, per stage and pass");
    check(after[0][1] + after[0][2] == 0, "stage 0 (all frozen) runs forward only");
    check(after[1][1] + after[1][2] > 0 && after[1][1] + after[1][2] < all[1][1] + all[1][2],
          "stage 1 (half frozen) runs part of its backward work");
    int64_t frozen = 0;
    for (int q = 0; q < sched->n_params; q++) {
        int is_frozen = sched->params[q].frozen_from == 3;
        frozen += is_frozen;
        check(ph.frozen[q] == is_frozen, "the frozen set is the schedule's");
        check(sched->params[q].grad < 0 || ph.runs[sched->params[q].grad] == !is_frozen,
              "exactly the trained parameters' gradients run");
    }
    check(frozen > 0 && ph.n_frozen == frozen, "the phase counts the frozen parameters");
    check(!pml_phase_at(&ph, sched, 9), "nothing changes after the boundary");
    pml_phase_free(&ph);
    pml_plan_free(sched);
    pml_plan_free(stat);
    printf("freeze phases: %d failed\n", failures);
    return failures != 0;
}

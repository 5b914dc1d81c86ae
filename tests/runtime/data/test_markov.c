/* test_markov.c — markov(vocab, order, seed): an exact entropy rate (checked by hand on
 * a tiny source and against the mean loss of the true model on generated text), a
 * stationary distribution, labels that are the inputs shifted by one, and a test hook
 * that refuses tables that are not distributions. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"
#include "data_test.h"

static pml_synth *make(int64_t vocab, int64_t order, int64_t length, uint64_t seed)
{
    pml_synth_params p = {.vocab = vocab, .order = order, .length = length, .seed = seed};
    pml_synth *g = NULL;
    pml_err e = {0};
    if (pml_synth_create(&g, PML_SYNTH_MARKOV, &p, &e) != PML_OK) fprintf(stderr, "create: %s\n", e.msg);
    return g;
}

static double h2(double p) { return -p * log(p) - (1 - p) * log(1 - p); }

/* P = [[0.9, 0.1], [0.2, 0.8]]: pi = (2/3, 1/3), H = 2/3 h(0.1) + 1/3 h(0.2). */
static void two_state_entropy_by_hand(void)
{
    pml_synth *g = make(2, 1, 8, 0);
    const double p[] = {0.9, 0.1, 0.2, 0.8};
    CHECK(pml_synth_markov_set_table(g, p, NULL) == PML_OK);
    double want = 2.0 / 3 * h2(0.1) + 1.0 / 3 * h2(0.2);
    printf("two states: H = %.12f, by hand %.12f\n", pml_synth_entropy(g), want);
    CHECK(fabs(pml_synth_entropy(g) - want) < 1e-8);
    CHECK(fabs(pml_synth_markov_stationary(g, 0) - 2.0 / 3) < 1e-9);
    CHECK(fabs(pml_synth_markov_stationary(g, 1) - 1.0 / 3) < 1e-9);
    CHECK(fabs(pml_synth_markov_prob(g, 1, 0) - 0.2) < 1e-9);
    pml_synth_destroy(g);
}

/* The same chain written as an order-2 source (the older token ignored) has the same
 * entropy, and pi(a, b) = pi(a) P(b | a): contexts are numbered oldest token first. */
static void order_two_context_numbering(void)
{
    pml_synth *g = make(2, 2, 8, 0);
    const double p[] = {0.9, 0.1, 0.2, 0.8, 0.9, 0.1, 0.2, 0.8}; /* contexts 00, 01, 10, 11 */
    CHECK(pml_synth_markov_set_table(g, p, NULL) == PML_OK);
    CHECK(fabs(pml_synth_entropy(g) - (2.0 / 3 * h2(0.1) + 1.0 / 3 * h2(0.2))) < 1e-8);
    CHECK(fabs(pml_synth_markov_stationary(g, 0 * 2 + 1) - 2.0 / 3 * 0.1) < 1e-9); /* a = 0 then b = 1 */
    CHECK(fabs(pml_synth_markov_stationary(g, 1 * 2 + 0) - 1.0 / 3 * 0.2) < 1e-9);
    CHECK(fabs(pml_synth_markov_stationary(g, 1 * 2 + 1) - 1.0 / 3 * 0.8) < 1e-9);
    pml_synth_destroy(g);
}

/* pi sums to 1, is positive, and is stationary: pi P = pi. */
static void stationary_distribution_is_stationary(void)
{
    const int64_t v = 65;
    pml_synth *g = make(v, 2, 16, 1);
    uint64_t n = pml_synth_markov_contexts(g);
    CHECK(n == 65 * 65);
    double *pi = malloc(n * sizeof *pi), *next = calloc(n, sizeof *next), sum = 0, change = 0;
    int positive = 1;
    for (uint64_t c = 0; c < n; c++) pi[c] = pml_synth_markov_stationary(g, c), sum += pi[c], positive &= pi[c] > 0;
    for (uint64_t c = 0; c < n; c++)
        for (int32_t x = 0; x < v; x++)
            next[c % (uint64_t)v * (uint64_t)v + (uint64_t)x] += pi[c] * pml_synth_markov_prob(g, c, x);
    for (uint64_t c = 0; c < n; c++) change += fabs(next[c] - pi[c]);
    printf("markov(65, 2, 1): sum pi = %.15f, |pi P - pi|_1 = %.3g\n", sum, change);
    CHECK(fabs(sum - 1) < 1e-12 && positive);
    CHECK(change < 1e-10);
    free(pi), free(next);
    pml_synth_destroy(g);
}

/* Each context favours a few tokens: the entropy rate is well below log(vocab). */
static void entropy_is_well_below_uniform(void)
{
    pml_synth *g = make(65, 2, 16, 1);
    double h = pml_synth_entropy(g);
    printf("markov(65, 2, 1): entropy rate %.6f nats/token (log 65 = %.6f)\n", h, log(65.0));
    CHECK(h > 0.5 && h < 0.6 * log(65.0));
    pml_synth_destroy(g);
}

/* A model that sees only the last token cannot get close: the best such model's loss,
 * H(next | last token) under the stationary distribution, is far above the entropy
 * rate, so reaching the rate means looking two tokens back. */
static void last_token_alone_is_not_enough(void)
{
    enum { V = 65 };
    pml_synth *g = make(V, 2, 16, 1);
    double h1 = 0;
    for (uint64_t b = 0; b < V; b++) {
        double pb = 0, q[V] = {0};
        for (uint64_t a = 0; a < V; a++) {
            double pi = pml_synth_markov_stationary(g, a * V + b);
            pb += pi;
            for (int x = 0; x < V; x++) q[x] += pi * pml_synth_markov_prob(g, a * V + b, x);
        }
        for (int x = 0; x < V; x++) h1 -= q[x] * log(q[x] / pb);
    }
    printf("markov(65, 2, 1): H(next | last token) %.6f, entropy rate %.6f\n", h1, pml_synth_entropy(g));
    CHECK(h1 > 1.25 * pml_synth_entropy(g));
    pml_synth_destroy(g);
}

/* The true model's mean loss on 10^6 generated tokens (positions that see `order`
 * tokens) is the exact entropy rate, within sampling error. */
static void entropy_matches_generated_text(void)
{
    enum { V = 65, ORDER = 2, T = 1000, SAMPLES = 1000 };
    pml_synth *g = make(V, ORDER, T, 1);
    int32_t *in = malloc(T * sizeof *in), *label = malloc(T * sizeof *label);
    double loss = 0;
    long tokens = 0;
    for (uint64_t i = 0; i < SAMPLES; i++) {
        pml_synth_sample(g, i, in, label);
        for (int t = ORDER - 1; t < T; t++) { /* label[t] follows in[t-ORDER+1..t] */
            uint64_t ctx = 0;
            for (int q = t - ORDER + 1; q <= t; q++) ctx = ctx * V + (uint64_t)in[q];
            loss -= log(pml_synth_markov_prob(g, ctx, label[t]));
            tokens++;
        }
    }
    loss /= (double)tokens;
    printf("markov(65, 2, 1): exact H %.6f, true model's loss on %ld tokens %.6f\n", pml_synth_entropy(g), tokens,
           loss);
    CHECK(fabs(loss - pml_synth_entropy(g)) < 0.01);
    free(in), free(label);
    pml_synth_destroy(g);
}

/* label[t] = input[t + 1], and every token is a valid id. */
static void labels_are_inputs_shifted_by_one(void)
{
    enum { T = 50 };
    int64_t vocabs[] = {2, 7, 65}, orders[] = {1, 3, 2};
    for (int k = 0; k < 3; k++) {
        pml_synth *g = make(vocabs[k], orders[k], T, 5);
        int32_t in[T], label[T];
        int shifted = 1, valid = 1;
        for (uint64_t i = 0; i < 200; i++) {
            pml_synth_sample(g, i, in, label);
            for (int t = 0; t + 1 < T; t++) shifted &= label[t] == in[t + 1];
            for (int t = 0; t < T; t++)
                valid &= in[t] >= 0 && in[t] < vocabs[k] && label[t] >= 0 && label[t] < vocabs[k];
        }
        CHECK(shifted && valid);
        pml_synth_destroy(g);
    }
    pml_synth *g = make(5, 3, 1, 5); /* T shorter than the order: the context's first tokens */
    int32_t in, label;
    pml_synth_sample(g, 0, &in, &label);
    CHECK(in >= 0 && in < 5 && label >= 0 && label < 5);
    pml_synth_destroy(g);
}

/* A sample's first `order` tokens are its starting context, drawn from pi. */
static void starts_follow_the_stationary_distribution(void)
{
    enum { V = 3, N = 90000 };
    pml_synth *g = make(V, 2, 4, 2);
    int count[V * V] = {0};
    for (uint64_t i = 0; i < N; i++) {
        int32_t in[4];
        pml_synth_sample(g, i, in, NULL);
        count[in[0] * V + in[1]]++;
    }
    for (int c = 0; c < V * V; c++) {
        double want = N * pml_synth_markov_stationary(g, (uint64_t)c);
        CHECK(fabs(count[c] - want) < 5 * sqrt(want) + 1);
    }
    pml_synth_destroy(g);
}

/* The language's example source, markov(65, 3, 1), is within the limits. */
static void order_three_example_source(void)
{
    pml_synth *g = make(65, 3, 64, 1);
    CHECK(g != NULL);
    if (g) printf("markov(65, 3, 1): entropy rate %.6f nats/token\n", pml_synth_entropy(g));
    pml_synth_destroy(g);
}

static void bad_tables_are_refused(void)
{
    pml_synth *g = make(2, 1, 8, 0);
    double h = pml_synth_entropy(g);
    const double zero[] = {1.0, 0.0, 0.5, 0.5}, unnormalised[] = {0.5, 0.5, 0.5, 0.6};
    CHECK_ERR(pml_synth_markov_set_table(g, zero, err), PML_ERR_INVALID_ARG,
              "markov: P(1 | context 0) = 0; every probability must be in (0, 1]");
    CHECK_ERR(pml_synth_markov_set_table(g, unnormalised, err), PML_ERR_INVALID_ARG,
              "markov: the row of context 1 sums to 1.1, not 1");
    CHECK(pml_synth_entropy(g) == h); /* unchanged */
    pml_synth_destroy(g);
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"two_state_entropy_by_hand", two_state_entropy_by_hand},
        {"order_two_context_numbering", order_two_context_numbering},
        {"stationary_distribution_is_stationary", stationary_distribution_is_stationary},
        {"entropy_is_well_below_uniform", entropy_is_well_below_uniform},
        {"last_token_alone_is_not_enough", last_token_alone_is_not_enough},
        {"entropy_matches_generated_text", entropy_matches_generated_text},
        {"labels_are_inputs_shifted_by_one", labels_are_inputs_shifted_by_one},
        {"starts_follow_the_stationary_distribution", starts_follow_the_stationary_distribution},
        {"order_three_example_source", order_three_example_source},
        {"bad_tables_are_refused", bad_tables_are_refused},
    };
    return data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
}

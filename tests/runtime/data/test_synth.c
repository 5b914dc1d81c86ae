/* test_synth.c — the generator interface (data/synth.h) for both kinds: shapes, pure
 * function of (seed, i), random access and threads, and errors for bad parameters. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"
#include "data_test.h"

#define T 32

static pml_synth *make(pml_synth_kind kind, uint64_t seed)
{
    pml_synth_params p = {.features = 20, .classes = 5, .vocab = 7, .order = 2, .length = T, .seed = seed};
    pml_synth *g = NULL;
    pml_err e = {0};
    if (pml_synth_create(&g, kind, &p, &e) != PML_OK) fprintf(stderr, "create: %s\n", e.msg);
    return g;
}

static void shapes_are_per_sample(void)
{
    pml_synth *g = make(PML_SYNTH_CLASSES, 1);
    pml_synth_shape in, label;
    pml_synth_shapes(g, &in, &label);
    CHECK(in.dtype == PML_F32 && in.rank == 1 && in.dims[0] == 20);
    CHECK(label.dtype == PML_I32 && label.rank == 0);
    CHECK(pml_synth_input_bytes(g) == 80 && pml_synth_label_bytes(g) == 4);
    CHECK(pml_synth_kind_of(g) == PML_SYNTH_CLASSES);
    pml_synth_destroy(g);

    g = make(PML_SYNTH_MARKOV, 1);
    pml_synth_shapes(g, &in, &label);
    CHECK(in.dtype == PML_I32 && in.rank == 1 && in.dims[0] == T);
    CHECK(label.dtype == PML_I32 && label.rank == 1 && label.dims[0] == T);
    CHECK(pml_synth_input_bytes(g) == 4 * T && pml_synth_label_bytes(g) == 4 * T);
    CHECK(pml_synth_kind_of(g) == PML_SYNTH_MARKOV);
    pml_synth_destroy(g);
}

/* Sample i's bytes (input then label) into buf. */
static void bytes_of(const pml_synth *g, uint64_t i, unsigned char *buf)
{
    pml_synth_sample(g, i, buf, buf + pml_synth_input_bytes(g));
}

static void same_seed_same_bytes(void)
{
    for (int kind = 0; kind < 2; kind++) {
        pml_synth *a = make((pml_synth_kind)kind, 42), *b = make((pml_synth_kind)kind, 42);
        size_t n = pml_synth_input_bytes(a) + pml_synth_label_bytes(a);
        unsigned char x[256], y[256];
        uint64_t idx[] = {0, 1, 2, 1000, UINT64_MAX};
        for (int k = 0; k < 5; k++) {
            bytes_of(a, idx[k], x);
            bytes_of(b, idx[k], y);
            CHECK(!memcmp(x, y, n));
            bytes_of(a, idx[k], y); /* and again on the same generator */
            CHECK(!memcmp(x, y, n));
        }
        pml_synth_destroy(a);
        pml_synth_destroy(b);
    }
}

static void different_seeds_or_indices_differ(void)
{
    for (int kind = 0; kind < 2; kind++) {
        pml_synth *a = make((pml_synth_kind)kind, 1), *b = make((pml_synth_kind)kind, 2);
        size_t n = pml_synth_input_bytes(a);
        unsigned char x[256], y[256];
        bytes_of(a, 7, x);
        bytes_of(b, 7, y);
        CHECK(memcmp(x, y, n));
        bytes_of(a, 8, y);
        CHECK(memcmp(x, y, n));
        pml_synth_destroy(a);
        pml_synth_destroy(b);
    }
}

/* A batch over indices in any order holds exactly the samples one by one. */
static void random_access_equals_sequential(void)
{
    enum { N = 64 };
    for (int kind = 0; kind < 2; kind++) {
        pml_synth *g = make((pml_synth_kind)kind, 3);
        size_t in = pml_synth_input_bytes(g), lb = pml_synth_label_bytes(g);
        unsigned char *seq_in = malloc(N * in), *seq_lb = malloc(N * lb), *bat_in = malloc(N * in),
                      *bat_lb = malloc(N * lb);
        for (uint64_t i = 0; i < N; i++) pml_synth_sample(g, i, seq_in + i * in, seq_lb + i * lb);
        uint64_t idx[N];
        for (uint64_t k = 0; k < N; k++) idx[k] = (k * 37 + 11) % N; /* a scrambled order */
        pml_synth_batch(g, idx, N, bat_in, bat_lb);
        int same = 1;
        for (uint64_t k = 0; k < N; k++)
            same &= !memcmp(bat_in + k * in, seq_in + idx[k] * in, in) &&
                    !memcmp(bat_lb + k * lb, seq_lb + idx[k] * lb, lb);
        CHECK(same);
        /* Only the label, or only the input, is the same as both. */
        unsigned char label[4 * T];
        pml_synth_sample(g, 5, NULL, label);
        CHECK(!memcmp(label, seq_lb + 5 * lb, lb));
        pml_synth_sample(g, 5, bat_in, NULL);
        CHECK(!memcmp(bat_in, seq_in + 5 * in, in));
        free(seq_in), free(seq_lb), free(bat_in), free(bat_lb);
        pml_synth_destroy(g);
    }
}

typedef struct job {
    const pml_synth *g;
    uint64_t first;
    unsigned char *out;
} job;

static void *fill(void *arg)
{
    job *j = arg;
    size_t n = pml_synth_input_bytes(j->g) + pml_synth_label_bytes(j->g);
    for (uint64_t k = 0; k < 100; k++) bytes_of(j->g, j->first + k, j->out + k * n);
    return NULL;
}

/* Four threads sampling one generator at once get the single-threaded bytes. */
static void concurrent_samples_match(void)
{
    for (int kind = 0; kind < 2; kind++) {
        pml_synth *g = make((pml_synth_kind)kind, 9);
        size_t n = pml_synth_input_bytes(g) + pml_synth_label_bytes(g);
        unsigned char *par = malloc(400 * n), *seq = malloc(400 * n);
        pthread_t th[4];
        job jobs[4];
        for (int t = 0; t < 4; t++) {
            jobs[t] = (job){g, (uint64_t)t * 100, par + (size_t)t * 100 * n};
            pthread_create(&th[t], NULL, fill, &jobs[t]);
        }
        for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
        for (uint64_t i = 0; i < 400; i++) bytes_of(g, i, seq + i * n);
        CHECK(!memcmp(par, seq, 400 * n));
        free(par), free(seq);
        pml_synth_destroy(g);
    }
}

static pml_status create(pml_synth_kind kind, int64_t a, int64_t b, int64_t c, pml_err *err)
{
    pml_synth_params p = {.seed = 0};
    if (kind == PML_SYNTH_CLASSES)
        p.features = a, p.classes = b;
    else
        p.vocab = a, p.order = b, p.length = c;
    static char sentinel;
    pml_synth *g = (pml_synth *)&sentinel; /* create must set it to NULL on failure */
    pml_status s = pml_synth_create(&g, kind, &p, err);
    CHECK((s == PML_OK) == (g != NULL));
    pml_synth_destroy(g);
    return s;
}

static void bad_parameters_are_errors(void)
{
    CHECK_ERR(create(PML_SYNTH_MARKOV, 1, 2, 8, err), PML_ERR_INVALID_ARG, "markov: vocab must be at least 2, got 1");
    CHECK_ERR(create(PML_SYNTH_MARKOV, 65, 0, 8, err), PML_ERR_INVALID_ARG, "markov: order must be at least 1, got 0");
    CHECK_ERR(create(PML_SYNTH_MARKOV, 65, 2, 0, err), PML_ERR_INVALID_ARG,
              "markov: the sequence length T must be in 1..2147483647, got 0");
    CHECK_ERR(create(PML_SYNTH_MARKOV, 65, 5, 8, err), PML_ERR_INVALID_ARG,
              "markov: vocab^order = 65^5 contexts is more than the limit of 2^24 (16777216)");
    CHECK_ERR(create(PML_SYNTH_MARKOV, INT64_MAX, 2, 8, err), PML_ERR_INVALID_ARG,
              "markov: vocab^order = 9223372036854775807^2 contexts is more than the limit of 2^24 (16777216)");
    CHECK_ERR(create(PML_SYNTH_MARKOV, 1000, 2, 8, err), PML_ERR_INVALID_ARG,
              "markov: vocab 1000, order 2 needs 3830 MiB for its transition table, more than the 512 MiB limit");
    CHECK_ERR(create(PML_SYNTH_CLASSES, 0, 10, 0, err), PML_ERR_INVALID_ARG,
              "classes: features must be at least 1, got 0");
    CHECK_ERR(create(PML_SYNTH_CLASSES, 784, 1, 0, err), PML_ERR_INVALID_ARG,
              "classes: classes must be at least 2, got 1");
    CHECK_ERR(create(PML_SYNTH_CLASSES, INT64_MAX, INT64_MAX, 0, err), PML_ERR_INVALID_ARG,
              "classes: 9223372036854775807 features and 9223372036854775807 classes need more than the 512 MiB "
              "limit for the embedding and cluster centres");
    CHECK_ERR(create((pml_synth_kind)7, 2, 2, 2, err), PML_ERR_INVALID_ARG, "data generator: unknown kind 7");
}

static void kinds_have_names(void)
{
    pml_synth_kind k;
    CHECK(pml_synth_kind_parse("classes", &k, NULL) == PML_OK && k == PML_SYNTH_CLASSES);
    CHECK(pml_synth_kind_parse("markov", &k, NULL) == PML_OK && k == PML_SYNTH_MARKOV);
    CHECK(!strcmp(pml_synth_kind_name(PML_SYNTH_MARKOV), "markov"));
    CHECK_ERR(pml_synth_kind_parse("mnist", &k, err), PML_ERR_INVALID_ARG,
              "unknown data generator 'mnist'; the generators are classes and markov");
}

/* Each kind answers only its own question. */
static void kind_specific_queries(void)
{
    pml_synth *c = make(PML_SYNTH_CLASSES, 1), *m = make(PML_SYNTH_MARKOV, 1);
    double a = -1;
    CHECK(isnan(pml_synth_entropy(c)));
    CHECK(pml_synth_entropy(m) > 0);
    CHECK_ERR(pml_synth_bayes_accuracy(m, 100, &a, err), PML_ERR_INVALID_ARG,
              "markov: the Bayes accuracy is defined for classes() only");
    CHECK_ERR(pml_synth_bayes_accuracy(c, 0, &a, err), PML_ERR_INVALID_ARG,
              "classes: the Bayes accuracy needs samples >= 1");
    CHECK(pml_synth_markov_contexts(c) == 0 && pml_synth_markov_contexts(m) == 49);
    CHECK(isnan(pml_synth_markov_prob(c, 0, 0)) && isnan(pml_synth_markov_prob(m, 49, 0)));
    CHECK(isnan(pml_synth_markov_prob(m, 0, 7)) && isnan(pml_synth_markov_stationary(m, 49)));
    CHECK_ERR(pml_synth_markov_set_table(c, NULL, err), PML_ERR_INVALID_ARG,
              "classes: only a markov source has a transition table");
    pml_synth_destroy(c);
    pml_synth_destroy(m);
    pml_synth_destroy(NULL);
}

int main(int argc, char **argv)
{
    static const data_test tests[] = {
        {"shapes_are_per_sample", shapes_are_per_sample},
        {"same_seed_same_bytes", same_seed_same_bytes},
        {"different_seeds_or_indices_differ", different_seeds_or_indices_differ},
        {"random_access_equals_sequential", random_access_equals_sequential},
        {"concurrent_samples_match", concurrent_samples_match},
        {"bad_parameters_are_errors", bad_parameters_are_errors},
        {"kinds_have_names", kinds_have_names},
        {"kind_specific_queries", kind_specific_queries},
    };
    return data_test_main(argc, argv, tests, (int)(sizeof tests / sizeof tests[0]));
}

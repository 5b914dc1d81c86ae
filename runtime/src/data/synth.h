/* synth.h — the built-in synthetic data sources, so every example trains with no files.
 *
 * A generator (pml_synth) is made once from a kind, integer parameters and a seed, and
 * then fills any sample i into caller buffers. A sample is a pure function of (seed, i),
 * computed with rng.h: samples can be drawn in any order, by any thread, on any number
 * of stages, and a run is reproducible whatever the batch layout.
 *
 * The kinds are the language's `data = ...` generators (docs/language.md, "Training"):
 *
 *   classes(features, classes, seed)  one sample: input f32[features], label i32[] (a class)
 *   markov(vocab, order, seed), T     one sample: input i32[T] tokens, label i32[T] the next
 *                                     token at each position (input shifted by one)
 *
 * Shapes are per sample, without the batch dimension; a batch is a loop over indices
 * (pml_synth_batch). Each kind also says how well a model can possibly do on it, so
 * training can print "the best possible loss is X": pml_synth_entropy for markov,
 * pml_synth_bayes_accuracy for classes.
 *
 * Ownership: pml_synth_create allocates the generator; pml_synth_destroy frees it (NULL
 * allowed). Nothing returned points into caller memory or needs freeing.
 *
 * Thread safety: a created generator is read-only. Every function taking a
 * `const pml_synth *` may be called concurrently on one generator from any number of
 * threads. pml_synth_markov_set_table (a test hook) changes the generator and must not
 * overlap any other call on it. */
#ifndef PML_DATA_SYNTH_H
#define PML_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "data/generator.h"
#include "pml.h"

typedef enum pml_synth_kind { PML_SYNTH_CLASSES, PML_SYNTH_MARKOV } pml_synth_kind;

typedef struct pml_synth pml_synth;

/* "classes" or "markov" to a kind; PML_ERR_INVALID_ARG (with a message) for other names. */
pml_status pml_synth_kind_parse(const char *name, pml_synth_kind *kind, pml_err *err);
const char *pml_synth_kind_name(pml_synth_kind kind);

/* Makes a generator of `kind` from `params`. On success *out owns it; on failure *out is
 * NULL and err says which parameter is wrong ("markov: vocab must be at least 2, got 1").
 * A markov source's stationary distribution and entropy are computed here, which takes
 * time proportional to vocab^(order+1) (markov(65, 3): about a second). */
pml_status pml_synth_create(pml_synth **out, pml_synth_kind kind, const pml_synth_params *params, pml_err *err);
void pml_synth_destroy(pml_synth *g);

pml_synth_kind pml_synth_kind_of(const pml_synth *g);
/* One sample's input and label shapes, and their sizes in bytes. */
void pml_synth_shapes(const pml_synth *g, pml_synth_shape *input, pml_synth_shape *label);
size_t pml_synth_input_bytes(const pml_synth *g);
size_t pml_synth_label_bytes(const pml_synth *g);

/* Fills sample i: `input` gets pml_synth_input_bytes, `label` pml_synth_label_bytes
 * (either may be NULL to skip it). The bytes depend only on the parameters, the seed
 * and i. Any i is valid: a generator is an endless dataset; use pml_shuffle_index to
 * visit a finite one in a random order. */
void pml_synth_sample(const pml_synth *g, uint64_t i, void *input, void *label);
/* Fills n samples, sample k of the batch being index indices[k], one after another in
 * `input` and `label` (a [n, ...] batch). */
void pml_synth_batch(const pml_synth *g, const uint64_t *indices, size_t n, void *input, void *label);

/* markov: the source's exact entropy rate in nats per token, H = sum over contexts of
 * pi(ctx) * H(next | ctx). This is the expected loss of the true model at every position
 * that sees `order` earlier tokens, so no model's mean loss can be below it (the first
 * `order` positions of a sample see less context and are a little harder). NaN for
 * other kinds. */
double pml_synth_entropy(const pml_synth *g);

/* classes: a Monte Carlo estimate of the best possible test accuracy, that of the Bayes
 * classifier using the true mixture densities, over `samples` fresh samples (its
 * standard error is about sqrt(a(1-a)/samples)). PML_ERR_INVALID_ARG for other kinds or
 * samples == 0. */
pml_status pml_synth_bayes_accuracy(const pml_synth *g, uint64_t samples, double *accuracy, pml_err *err);

/* markov internals, for tests and tools. A context is the last `order` tokens as a
 * base-vocab number, the most recent token least significant. These answer 0 (contexts)
 * or NaN for another kind or an argument out of range. */
uint64_t pml_synth_markov_contexts(const pml_synth *g);
/* P(next | ctx) as the sampler uses it (a multiple of 2^-32). */
double pml_synth_markov_prob(const pml_synth *g, uint64_t ctx, int32_t next);
/* The stationary probability of a context. */
double pml_synth_markov_stationary(const pml_synth *g, uint64_t ctx);
/* Test hook: replaces the transition table by `probs` ([contexts][vocab], each row
 * positive and summing to 1 within 1e-6), then recomputes the stationary distribution
 * and the entropy. */
pml_status pml_synth_markov_set_table(pml_synth *g, const double *probs, pml_err *err);

#endif

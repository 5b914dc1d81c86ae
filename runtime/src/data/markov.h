/* markov.h — the markov(vocab, order, seed) generator kind (markov.c): its transition
 * table and stationary distribution, made once, and sample i as a pure function of
 * (seed, i). synth.c owns one and dispatches to it. */
#ifndef PML_DATA_MARKOV_H
#define PML_DATA_MARKOV_H

#include "core/error.h"
#include "data/generator.h"

typedef struct pml_synth_markov {
    int64_t vocab, order, length;
    uint64_t contexts; /* vocab^order */
    uint64_t tail;     /* vocab^(order-1): contexts / vocab */
    /* [contexts][vocab]: table[c*vocab + x] = 2^32 * P(next < x | c), so row c starts at
     * 0 and token x has weight table[..x+1] - table[..x] (2^32 - table[..x] for the last). */
    uint32_t *table;
    double *cdf; /* [contexts]: the stationary distribution's running sum; cdf[last] = 1 */
    double entropy;
} pml_synth_markov;

/* Fills m from p (vocab, order, length, seed) and the sample shapes, or returns an
 * error; the caller frees m with pml_markov_free either way. */
pml_status pml_markov_init(pml_synth_markov *m, const pml_synth_params *p, pml_synth_shape *input,
                           pml_synth_shape *label, pml_err *err);
void pml_markov_sample(const pml_synth_markov *m, uint64_t seed, uint64_t i, int32_t *input, int32_t *label);
void pml_markov_free(pml_synth_markov *m);
/* P(next | ctx), the stationary probability of ctx (NaN out of range), and the test hook
 * that replaces the table (synth.h says each). */
double pml_markov_prob(const pml_synth_markov *m, uint64_t ctx, int32_t next);
double pml_markov_stationary(const pml_synth_markov *m, uint64_t ctx);
pml_status pml_markov_set_table(pml_synth_markov *m, const double *probs, pml_err *err);

#endif

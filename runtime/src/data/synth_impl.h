/* synth_impl.h — the generator's private layout, shared by synth.c (the interface) and
 * one file per kind (classes.c, markov.c). Nothing outside runtime/src/data includes it. */
#ifndef PML_DATA_SYNTH_IMPL_H
#define PML_DATA_SYNTH_IMPL_H

#include "data/synth.h"

/* Streams of rng.h that the generators use, one per role, so no two roles ever share a
 * random number. The values spell their role in ASCII. */
#define PML_SYNTH_STREAM_CENTRES 0x636c732d63656e74ull /* "cls-cent" */
#define PML_SYNTH_STREAM_EMBED 0x636c732d656d6264ull   /* "cls-embd" */
#define PML_SYNTH_STREAM_CLASS 0x636c732d636c6173ull   /* "cls-clas" */
#define PML_SYNTH_STREAM_MODE 0x636c732d6d6f6465ull    /* "cls-mode" */
#define PML_SYNTH_STREAM_NOISE 0x636c732d6e6f6973ull   /* "cls-nois" */
#define PML_SYNTH_STREAM_TABLE 0x6d6b762d7461626cull   /* "mkv-tabl" */
#define PML_SYNTH_STREAM_START 0x6d6b762d73746172ull   /* "mkv-star" */
#define PML_SYNTH_STREAM_STEP 0x6d6b762d73746570ull    /* "mkv-step" */

/* classes: modes (cluster centres) per class, and the most latent dimensions (classes.c
 * says why). */
#define PML_SYNTH_MODES 2
#define PML_SYNTH_LATENT 16

typedef struct pml_synth_classes {
    int64_t features, classes;
    int latent;     /* k = min(features, PML_SYNTH_LATENT) */
    float *centres; /* [classes][PML_SYNTH_MODES][latent], in latent space */
    float *embed;   /* [latent][features]: orthogonal columns of norm sqrt(features / latent), each contiguous */
} pml_synth_classes;

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

struct pml_synth {
    pml_synth_kind kind;
    uint64_t seed;
    pml_synth_shape input, label;
    pml_synth_classes cls;
    pml_synth_markov mkv;
};

/* Each kind: init fills g (kind, seed and params are set) or returns an error; the
 * caller frees g with pml_synth_destroy either way. */
pml_status pml_synth_classes_init(pml_synth *g, const pml_synth_params *p, pml_err *err);
void pml_synth_classes_sample(const pml_synth *g, uint64_t i, float *input, int32_t *label);
void pml_synth_classes_free(pml_synth *g);

pml_status pml_synth_markov_init(pml_synth *g, const pml_synth_params *p, pml_err *err);
void pml_synth_markov_sample(const pml_synth *g, uint64_t i, int32_t *input, int32_t *label);
void pml_synth_markov_free(pml_synth *g);

#endif

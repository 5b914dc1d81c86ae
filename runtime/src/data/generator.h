/* generator.h — what synth.c and each generator kind (classes.c, markov.c) share: the
 * parameters a kind is made from, the shape of one sample, the size limits, and the
 * rng streams. The kinds include this and their own header only, never synth.h, so the
 * interface (synth.c) sits above the kinds it dispatches to. */
#ifndef PML_DATA_GENERATOR_H
#define PML_DATA_GENERATOR_H

#include <stdint.h>

#include "pml.h"

/* The parameters, named as in the language. A kind reads only its own fields. */
typedef struct pml_synth_params {
    int64_t features, classes;    /* classes(features, classes): features >= 1, classes >= 2 */
    int64_t vocab, order, length; /* markov(vocab, order) with length T: vocab >= 2, order >= 1, T >= 1 */
    uint64_t seed;
} pml_synth_params;

/* One sample's input or label: dtype and dims, rank 0 (a scalar) or 1. */
typedef struct pml_synth_shape {
    pml_dtype dtype;
    int rank;
    int64_t dims[1];
} pml_synth_shape;

/* Limits: a generator's tables take at most PML_SYNTH_MAX_BYTES, and a markov source has
 * at most PML_SYNTH_MAX_CONTEXTS = vocab^order contexts; larger configurations are
 * refused with PML_ERR_INVALID_ARG and a message giving the size. */
#define PML_SYNTH_MAX_BYTES ((uint64_t)512 << 20)
#define PML_SYNTH_MAX_CONTEXTS ((uint64_t)1 << 24)

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

#endif

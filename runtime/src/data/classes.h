/* classes.h — the classes(features, classes, seed) generator kind (classes.c): its
 * state, made once, and sample i as a pure function of (seed, i). synth.c owns one and
 * dispatches to it. */
#ifndef PML_DATA_CLASSES_H
#define PML_DATA_CLASSES_H

#include "core/error.h"
#include "data/generator.h"

typedef struct pml_synth_classes {
    int64_t features, classes;
    int latent;     /* k = min(features, PML_SYNTH_LATENT) */
    float *centres; /* [classes][PML_SYNTH_MODES][latent], in latent space */
    float *embed;   /* [latent][features]: orthogonal columns of norm sqrt(features / latent), each contiguous */
} pml_synth_classes;

/* Fills c from p (features, classes, seed) and the sample shapes, or returns an error;
 * the caller frees c with pml_classes_free either way. */
pml_status pml_classes_init(pml_synth_classes *c, const pml_synth_params *p, pml_synth_shape *input,
                            pml_synth_shape *label, pml_err *err);
void pml_classes_sample(const pml_synth_classes *c, uint64_t seed, uint64_t i, float *input, int32_t *label);
void pml_classes_free(pml_synth_classes *c);
/* The Bayes classifier's accuracy over `samples` fresh samples (synth.h). */
pml_status pml_classes_bayes_accuracy(const pml_synth_classes *c, uint64_t seed, uint64_t samples, double *accuracy,
                                      pml_err *err);

#endif

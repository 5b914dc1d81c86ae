/* synth.c — the generator interface of synth.h: creation, shapes and sample filling,
 * dispatching to one file per kind (classes.c, markov.c). */
#include "data/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/classes.h"
#include "data/markov.h"

struct pml_synth {
    pml_synth_kind kind;
    uint64_t seed;
    pml_synth_shape input, label;
    pml_synth_classes cls;
    pml_synth_markov mkv;
};

static const char *const kind_names[] = {"classes", "markov"};

pml_status pml_synth_kind_parse(const char *name, pml_synth_kind *kind, pml_err *err)
{
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (name && !strcmp(name, kind_names[k])) {
            *kind = (pml_synth_kind)k;
            return PML_OK;
        }
    }
    return pml_err_set(err, PML_ERR_INVALID_ARG, "unknown data generator '%s'; the generators are classes and markov",
                       name ? name : "(null)");
}

const char *pml_synth_kind_name(pml_synth_kind kind)
{
    return (unsigned)kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "?";
}

pml_status pml_synth_create(pml_synth **out, pml_synth_kind kind, const pml_synth_params *params, pml_err *err)
{
    *out = NULL;
    if (!params) return pml_err_set(err, PML_ERR_INVALID_ARG, "data generator: no parameters given");
    if (kind != PML_SYNTH_CLASSES && kind != PML_SYNTH_MARKOV)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "data generator: unknown kind %d", (int)kind);
    pml_synth *g = calloc(1, sizeof *g);
    if (!g) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory", pml_synth_kind_name(kind));
    g->kind = kind;
    g->seed = params->seed;
    pml_status s =
        kind == PML_SYNTH_CLASSES ? pml_classes_init(&g->cls, params, &g->input, &g->label, err)
                                  : pml_markov_init(&g->mkv, params, &g->input, &g->label, err);
    if (s != PML_OK) {
        pml_synth_destroy(g);
        return s;
    }
    *out = g;
    return PML_OK;
}

void pml_synth_destroy(pml_synth *g)
{
    if (!g) return;
    pml_classes_free(&g->cls);
    pml_markov_free(&g->mkv);
    free(g);
}

pml_synth_kind pml_synth_kind_of(const pml_synth *g) { return g->kind; }

void pml_synth_shapes(const pml_synth *g, pml_synth_shape *input, pml_synth_shape *label)
{
    if (input) *input = g->input;
    if (label) *label = g->label;
}

static size_t shape_bytes(const pml_synth_shape *s)
{
    size_t n = pml_dtype_size(s->dtype);
    for (int d = 0; d < s->rank; d++) n *= (size_t)s->dims[d];
    return n;
}

size_t pml_synth_input_bytes(const pml_synth *g) { return shape_bytes(&g->input); }
size_t pml_synth_label_bytes(const pml_synth *g) { return shape_bytes(&g->label); }

void pml_synth_sample(const pml_synth *g, uint64_t i, void *input, void *label)
{
    if (g->kind == PML_SYNTH_CLASSES)
        pml_classes_sample(&g->cls, g->seed, i, input, label);
    else
        pml_markov_sample(&g->mkv, g->seed, i, input, label);
}

void pml_synth_batch(const pml_synth *g, const uint64_t *indices, size_t n, void *input, void *label)
{
    size_t in_bytes = pml_synth_input_bytes(g), label_bytes = pml_synth_label_bytes(g);
    for (size_t k = 0; k < n; k++)
        pml_synth_sample(g, indices[k], input ? (char *)input + k * in_bytes : NULL,
                         label ? (char *)label + k * label_bytes : NULL);
}

double pml_synth_entropy(const pml_synth *g) { return g->kind == PML_SYNTH_MARKOV ? g->mkv.entropy : NAN; }

pml_status pml_synth_bayes_accuracy(const pml_synth *g, uint64_t samples, double *accuracy, pml_err *err)
{
    if (g->kind != PML_SYNTH_CLASSES)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: the Bayes accuracy is defined for classes() only",
                           pml_synth_kind_name(g->kind));
    return pml_classes_bayes_accuracy(&g->cls, g->seed, samples, accuracy, err);
}

uint64_t pml_synth_markov_contexts(const pml_synth *g) { return g->kind == PML_SYNTH_MARKOV ? g->mkv.contexts : 0; }

double pml_synth_markov_prob(const pml_synth *g, uint64_t ctx, int32_t next)
{
    return g->kind == PML_SYNTH_MARKOV ? pml_markov_prob(&g->mkv, ctx, next) : NAN;
}

double pml_synth_markov_stationary(const pml_synth *g, uint64_t ctx)
{
    return g->kind == PML_SYNTH_MARKOV ? pml_markov_stationary(&g->mkv, ctx) : NAN;
}

pml_status pml_synth_markov_set_table(pml_synth *g, const double *probs, pml_err *err)
{
    if (g->kind != PML_SYNTH_MARKOV)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: only a markov source has a transition table",
                           pml_synth_kind_name(g->kind));
    return pml_markov_set_table(&g->mkv, probs, err);
}

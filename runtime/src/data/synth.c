/* synth.c — the generator interface of synth.h: creation, shapes and sample filling,
 * dispatching to one file per kind (classes.c, markov.c). */
#include "data/synth_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        kind == PML_SYNTH_CLASSES ? pml_synth_classes_init(g, params, err) : pml_synth_markov_init(g, params, err);
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
    pml_synth_classes_free(g);
    pml_synth_markov_free(g);
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
        pml_synth_classes_sample(g, i, input, label);
    else
        pml_synth_markov_sample(g, i, input, label);
}

void pml_synth_batch(const pml_synth *g, const uint64_t *indices, size_t n, void *input, void *label)
{
    size_t in_bytes = pml_synth_input_bytes(g), label_bytes = pml_synth_label_bytes(g);
    for (size_t k = 0; k < n; k++)
        pml_synth_sample(g, indices[k], input ? (char *)input + k * in_bytes : NULL,
                         label ? (char *)label + k * label_bytes : NULL);
}

double pml_synth_entropy(const pml_synth *g) { return g->kind == PML_SYNTH_MARKOV ? g->mkv.entropy : NAN; }

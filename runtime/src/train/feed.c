/* feed.c — see feed.h. */
#include "feed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"

enum { DATA_NONE, DATA_FILE, DATA_CLASSES, DATA_MARKOV };

struct pml_feed {
    const pml_plan *plan;
    pml_synth *synth;
};

pml_status pml_feed_create(const pml_plan *plan, pml_feed **out, pml_err *err)
{
    *out = NULL;
    const pml_plan_config *c = &plan->conf;
    if (c->data == DATA_FILE)
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "training from .npy files is not wired to the trainer yet");
    if (c->data != DATA_CLASSES && c->data != DATA_MARKOV)
        return pml_err_set(err, PML_ERR_INVALID_ARG, "the plan has no data source to train on");
    pml_feed *f = calloc(1, sizeof *f);
    if (!f) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    f->plan = plan;
    pml_synth_params sp = {0};
    sp.features = c->features;
    sp.classes = c->classes;
    sp.vocab = c->vocab;
    sp.order = c->order;
    sp.length = c->seq_len;
    sp.seed = (uint64_t)c->data_seed;
    pml_status st =
        pml_synth_create(&f->synth, c->data == DATA_CLASSES ? PML_SYNTH_CLASSES : PML_SYNTH_MARKOV, &sp, err);
    /* The model's input and labels must be exactly one generator batch. */
    if (!st) {
        pml_synth_shape in, lab;
        pml_synth_shapes(f->synth, &in, &lab);
        int64_t want_in = c->microbatch * (in.rank ? in.dims[0] : 1),
                want_lab = c->microbatch * (lab.rank ? lab.dims[0] : 1);
        if (plan->n_inputs != 1 || plan->nodes[plan->input_nodes[0]].numel != want_in || plan->labels < 0 ||
            plan->nodes[plan->labels].numel != want_lab)
            st = pml_err_set(err, PML_ERR_INVALID_ARG,
                             "the data generator's samples do not fit the model's input and labels");
    }
    if (st) {
        pml_feed_destroy(f);
        return st;
    }
    *out = f;
    return PML_OK;
}

void pml_feed_destroy(pml_feed *f)
{
    if (!f) return;
    pml_synth_destroy(f->synth);
    free(f);
}

pml_status pml_feed_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err)
{
    pml_feed *f = ctx;
    const pml_plan_config *c = &f->plan->conf;
    (void)err;
    /* Rows are fixed by the global batch, whatever the micro-batching. Each stage's
     * thread fills its own tensors, so the index list is local to the call. */
    uint64_t local_rows[256] = {0},
             *rows = c->microbatch <= 256 ? local_rows : malloc(sizeof(uint64_t) * (size_t)c->microbatch);
    if (!rows) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; j < c->microbatch; j++) rows[j] = (uint64_t)(step * c->batch + mb * c->microbatch + j);
    pml_synth_batch(f->synth, rows, (size_t)c->microbatch, input >= 0 ? dst : NULL, input >= 0 ? NULL : dst);
    if (rows != local_rows) free(rows);
    return PML_OK;
}

double pml_feed_best_loss(const pml_feed *f)
{
    return f->synth && pml_synth_kind_of(f->synth) == PML_SYNTH_MARKOV ? pml_synth_entropy(f->synth) : NAN;
}

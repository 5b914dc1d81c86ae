/* feed.h — the data a plan trains on, delivered micro-batch by micro-batch to the
 * pipeline (pipeline.h's pml_feed_fn).
 *
 * The sample rows of micro-batch mb of step s are the global batch's rows
 * s·batch + mb·microbatch + j, so which samples a step sees does not depend on how
 * the batch is cut into micro-batches. A generator (classes, markov) is an endless
 * dataset read in that order; a .npy dataset of N rows is read in a new random order
 * every epoch (pml_shuffle_index with the training seed). */
#ifndef PML_TRAIN_FEED_H
#define PML_TRAIN_FEED_H

#include "plan/plan.h"

typedef struct pml_feed pml_feed;

/* Opens the plan's data source and checks it fits the model's inputs and labels. */
pml_status pml_feed_create(const pml_plan *plan, pml_feed **out, pml_err *err);
void pml_feed_destroy(pml_feed *f);

/* The pml_feed_fn for pml_pipeline_opts (ctx: a pml_feed). */
pml_status pml_feed_fill(void *ctx, int64_t step, int64_t mb, int input, void *dst, pml_err *err);

/* What a model can achieve at best on a generator: the entropy rate of a markov source
 * in nats per token (a loss floor), or NaN when unknown. */
double pml_feed_best_loss(const pml_feed *f);

#endif

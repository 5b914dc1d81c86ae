/* autodiff.h — reverse-mode differentiation of a model's graph.
 *
 * pmlc_autodiff appends to `g` the backward pass of its loss: for every parameter
 * not frozen, g->param_grad[p] becomes the node holding d loss / d parameter (-1 when
 * the loss does not depend on it, or it is frozen). Nothing is computed for frozen
 * parameters, and no input-gradient is computed below a frozen prefix: a node gets a
 * gradient only if some trainable parameter feeds it. Backward nodes are tagged
 * PMLC_PASS_BWD_INPUT or PMLC_PASS_BWD_WEIGHT and placed on the stage of the forward op
 * they differentiate; a gradient computed on stage s and used on an earlier stage is
 * a gradient send.
 *
 * `binding` sizes the symbolic dimensions (a mean's 1/n needs n). The loss is
 * differentiated as written: combining micro-batches into the global batch's mean is
 * the runtime's business. Runs once per graph; returns nonzero after reporting an
 * error (only a bug in a rule can cause one). */
#ifndef PMLC_AUTODIFF_H
#define PMLC_AUTODIFF_H

#include "front/program.h"

/* Backward nodes allowed per forward node limit: the backward pass is a few times the
 * forward one, so 4 × PMLC_MAX_NODES_AD bounds the whole graph. */
#define PMLC_MAX_NODES_AD 1000000

int pmlc_autodiff(pmlc_program *P, pmlc_graph *g, const int64_t *binding, const uint8_t *frozen);

#endif

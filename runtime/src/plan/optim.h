/* optim.h — parameter initialisation, the learning-rate schedule and the optimizers the
 * plan's train block defines, on f32 master weights.
 *
 * Initialisation is a pure function of (seed, parameter name, element), so a
 * parameter's initial values do not depend on how the model is cut into stages or in
 * what order stages start. Updates follow PyTorch's definitions so results compare:
 * SGD with coupled weight decay, momentum (first step: the buffer is the gradient)
 * and Nesterov; AdamW with decoupled weight decay and bias correction. */
#ifndef PML_TRAIN_OPTIM_H
#define PML_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "plan/plan.h"

/* pml_plan_config.optimizer (the compiler's PMLC_OPT_* order). */
enum { PML_OPT_SGD, PML_OPT_ADAMW };

/* Fills a parameter's `numel` values according to its initializer. fan_in and
 * fan_out are computed from `dims` as torch.nn.init does: dims[1..] × receptive field
 * and dims[0] × receptive field. kaiming_uniform is U(±sqrt(6 / fan_in)) (gain √2),
 * xavier_uniform U(±sqrt(6 / (fan_in + fan_out))). */
void pml_param_init(const pml_plan_param *p, int rank, const int64_t *dims, int64_t numel, uint64_t seed, float *out);

/* The learning rate of step `step` (0-based) under the plan's schedule. */
double pml_lr_at(const pml_plan_config *c, int64_t step);

/* One optimizer update of n values whose gradient is grad[i] * gscale (the mean over
 * micro-batches and the clipping folded into one factor). `m` and `v` are the optimizer
 * state (v only for AdamW; NULL when the optimizer keeps none); `t` is the 1-based step
 * count. AdamW computes in f32 like PyTorch; SGD in f64. */
void pml_optim_update(const pml_plan_config *c, double lr, int64_t t, float *param, const float *grad, double gscale,
                      float *m, float *v, size_t n);

/* The sum of g[i]^2 in f64. */
double pml_optim_sum_squares(const float *g, size_t n);

/* Floats of optimizer state per parameter element: 0, 1 (SGD with momentum) or 2 (AdamW). */
int pml_optim_state_per_elem(const pml_plan_config *c);

#endif

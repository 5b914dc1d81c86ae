/* optim.c — see optim.h.
 *
 * The update loops are vectorised (core/vectorize.h; libpml builds with -fno-math-errno
 * so sqrtf is the vector square root) and cloned for AVX2 and AVX-512: the AdamW
 * update was 17% of an MLP step while it ran one double at a time. */
#include "core/vectorize.h"

#include "plan/optim.h"

#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "pml/hash.h"

enum { INIT_ZEROS, INIT_ONES, INIT_NORMAL, INIT_UNIFORM, INIT_KAIMING, INIT_XAVIER };

/* The stream of a parameter: FNV-1a of its name, so names, not positions, decide. */
static uint64_t name_stream(const char *s) { return pml_fnv1a_str(PML_FNV1A_SEED, s); }

void pml_param_init(const pml_plan_param *p, int rank, const int64_t *dims, int64_t numel, uint64_t seed, float *out)
{
    uint64_t stream = name_stream(p->name);
    double receptive = 1;
    for (int k = 2; k < rank; k++) receptive *= (double)dims[k];
    double fan_in = rank >= 2 ? (double)dims[1] * receptive : (double)(rank ? dims[0] : 1);
    double fan_out = rank >= 1 ? (double)dims[0] * receptive : 1;
    double lo = 0, hi = 0;
    switch (p->init) {
    case INIT_ZEROS:
        memset(out, 0, sizeof(float) * (size_t)numel);
        return;
    case INIT_ONES:
        for (int64_t i = 0; i < numel; i++) out[i] = 1;
        return;
    case INIT_NORMAL:
        for (int64_t i = 0; i < numel; i++)
            out[i] = (float)(p->init_b + p->init_a * pml_rng_normal(seed, stream, (uint64_t)i));
        return;
    case INIT_UNIFORM:
        lo = p->init_a, hi = p->init_b;
        break;
    case INIT_KAIMING:
        hi = sqrt(6.0 / fan_in), lo = -hi;
        break;
    default:
        hi = sqrt(6.0 / (fan_in + fan_out)), lo = -hi;
        break;
    }
    for (int64_t i = 0; i < numel; i++) out[i] = (float)(lo + (hi - lo) * pml_rng_uniform(seed, stream, (uint64_t)i));
}

double pml_lr_at(const pml_plan_config *c, int64_t step)
{
    if (c->lr_schedule != 1) return c->lr;
    if (step < c->warmup) return c->lr * (double)(step + 1) / (double)c->warmup;
    if (c->steps <= c->warmup) return c->lr;
    double progress = (double)(step - c->warmup) / (double)(c->steps - c->warmup);
    if (progress > 1) progress = 1;
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1 + cos(3.141592653589793 * progress));
}

int pml_optim_state_per_elem(const pml_plan_config *c)
{
    if (c->optimizer == PML_OPT_ADAMW) return 2;
    return c->momentum > 0 ? 1 : 0;
}

/* The vector clones are static, each behind a plain function (vectorize.h says why). */
PML_VECTOR_CLONES static double sum_squares(const float *g, size_t n)
{
    enum { LANES = 8 }; /* independent partial sums, so the loop vectorises */
    double part[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) part[l] += (double)g[i + l] * g[i + l];
    double s = 0;
    for (; i < n; i++) s += (double)g[i] * g[i];
    for (int l = 0; l < LANES; l++) s += part[l];
    return s;
}

double pml_optim_sum_squares(const float *g, size_t n) { return sum_squares(g, n); }

PML_VECTOR_CLONES static void update(const pml_plan_config *c, double lr, int64_t t, float *param, const float *grad,
                                     double gscale, float *m, float *v, size_t n)
{
    if (c->optimizer == PML_OPT_ADAMW) { /* in f32 and in PyTorch's order of operations */
        float b1 = (float)c->beta1, b2 = (float)c->beta2, decay = (float)(1 - lr * c->weight_decay);
        float step = (float)(lr / (1 - pow(c->beta1, (double)t)));
        float inv_sqrt_c2 = (float)(1 / sqrt(1 - pow(c->beta2, (double)t))), eps = (float)c->eps, gs = (float)gscale;
        for (size_t i = 0; i < n; i++) {
            float g = grad[i] * gs;
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            param[i] = param[i] * decay - step * m[i] / (sqrtf(v[i]) * inv_sqrt_c2 + eps);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] * gscale + c->weight_decay * param[i];
        if (c->momentum > 0) {
            m[i] = (float)(t == 1 ? g : c->momentum * m[i] + g);
            g = c->nesterov ? g + c->momentum * m[i] : m[i];
        }
        param[i] = (float)(param[i] - lr * g);
    }
}

void pml_optim_update(const pml_plan_config *c, double lr, int64_t t, float *param, const float *grad, double gscale,
                      float *m, float *v, size_t n)
{
    update(c, lr, t, param, grad, gscale, m, v, n);
}

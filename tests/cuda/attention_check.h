/* attention_check.h — what the tests of the fused attention kernels share
 * (gpu_attention.c on a GPU, test_attention_emulated.c on the CPU): operands, the CPU
 * backend's attention op as the oracle, and the comparison.
 *
 * att_case: M matrices [T, D] (shape dims[0..rank)), causal, scale, and dropout p on the
 * weights (0: none) with its key and the step's seed. att_reference (on bf16 or f16
 * values where asked) fills
 * in[3] (o) with the CPU's forward output when grad, then ref with the CPU's
 * attention (grad: attention_grad, [3, ...]). att_compare passes when no output is NaN
 * (the outputs start poisoned: an element left unwritten shows) and
 * max |got - ref| <= 1e-4 · max |ref|, and prints one line. */
#ifndef PML_TESTS_ATTENTION_CHECK_H
#define PML_TESTS_ATTENTION_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/half.h"
#include "cpu/kernels.h"
#include "gpu/cuda_attention.h"
#include "pml/ops.h"

typedef struct att_case {
    int rank;
    int64_t dims[PML_MAX_RANK];
    int causal;
    double scale;
    double dropout;
    uint64_t key, seed;
} att_case;

static inline int64_t att_numel(const att_case *c)
{
    int64_t n = 1;
    for (int k = 0; k < c->rank; k++) n *= c->dims[k];
    return n;
}

/* Uniform in [-amp, amp], from a fixed sequence. */
static inline float att_uniform(uint64_t *s, float amp)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return amp * ((float)(*s >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
}

/* q and k spread wide (peaked rows), v and dout narrower. */
static inline void att_operands(float **in, int n_in, int64_t ne, uint64_t *s)
{
    for (int j = 0; j < n_in; j++)
        for (int64_t e = 0; e < ne; e++) in[j][e] = att_uniform(s, j < 2 ? 2.0f : 1.0f);
}

/* How the kernels' 16-bit operands are stored (f32: none are). */
typedef enum att_fmt { ATT_F32, ATT_BF16, ATT_F16 } att_fmt;

/* x as fmt's bits, rounded to nearest even as the CUDA backend stores it (f32: unused). */
static inline uint16_t att_bits(att_fmt fmt, float x)
{
    return fmt == ATT_F16 ? pml_f32_to_f16(x) : pml_f32_to_bf16(x);
}

/* The value of fmt's bits h (a 16-bit format). */
static inline float att_value(att_fmt fmt, uint16_t h)
{
    return fmt == ATT_F16 ? pml_f16_to_f32(h) : pml_bf16_to_f32(h);
}

/* x rounded to fmt (f32: x). */
static inline float att_round(att_fmt fmt, float x) { return fmt == ATT_F32 ? x : att_value(fmt, att_bits(fmt, x)); }

/* The tensor cores' tolerance, of max |cpu|: the weights (forward), or the weights and dS
 * (backward), are rounded for the products that take them, and the forward's output once
 * as stored, each by at most 2^-8 of its value in bf16, 2^-11 in f16. The products are
 * in the operands' format forward, in bf16 backward (f16's too: cuda_attention.c's
 * pml_att_fmt). */
#define ATT_TC_TOL (2.0 / 256)
#define ATT_TC_TOL_F16 (2.0 / 2048)

/* The tolerance of a launch's outputs: ATT_TC_TOL(_F16) where the tensor cores run it
 * (16-bit operands), else 1e-4 (f32 on the CUDA cores). */
static inline double att_tolerance(att_fmt fmt, int grad)
{
    if (fmt == ATT_F32) return 1e-4;
    return fmt == ATT_F16 && !grad ? ATT_TC_TOL_F16 : ATT_TC_TOL;
}

static inline pml_status att_cpu(const att_case *c, int grad, float **in, float *out, pml_err *err)
{
    pml_view v[5];
    for (int j = 0; j < (grad ? 5 : 3); j++) {
        memset(&v[j], 0, sizeof v[j]);
        v[j].data = in[j], v[j].dtype = PML_F32, v[j].rank = c->rank;
        memcpy(v[j].dims, c->dims, sizeof c->dims);
    }
    int64_t attr[4] = {c->causal, 0, (int64_t)c->key, pml_attention_dropout_attr(c->dropout)};
    pml_op_call call;
    memset(&call, 0, sizeof call);
    call.op = grad ? PML_OP_ATTENTION_GRAD : PML_OP_ATTENTION;
    call.attr = attr, call.n_attr = c->dropout > 0 ? 4 : 1, call.fval = c->scale, call.n_in = grad ? 5 : 3, call.in = v;
    call.seed = c->seed;
    call.out.data = out, call.out.dtype = PML_F32, call.out.rank = c->rank + grad;
    if (grad) call.out.dims[0] = 3;
    memcpy(call.out.dims + grad, c->dims, sizeof c->dims[0] * (size_t)c->rank);
    return pml_cpu_run(&call, err);
}

/* Operand j stored in 16 bits (bit j of half) is rounded to fmt first, and o (bit 3) after
 * the CPU makes it: the reference takes the values the kernels read. */
static inline pml_status att_reference(const att_case *c, int grad, att_fmt fmt, unsigned half, float **in, float *ref,
                                       pml_err *err)
{
    int64_t ne = att_numel(c);
    for (int j = 0; j < (grad ? 5 : 3); j++)
        for (int64_t e = 0; (half >> j & 1) && e < ne; e++) in[j][e] = att_round(fmt, in[j][e]);
    pml_status s = grad ? att_cpu(c, 0, in, in[3], err) : PML_OK;
    for (int64_t e = 0; (half >> 3 & 1) && grad && !s && e < ne; e++) in[3][e] = att_round(fmt, in[3][e]);
    return s ? s : att_cpu(c, grad, in, ref, err);
}

/* Moves matrices between parts of [L, H, T, D] (parts of L H T D elements each: q, k, v,
 * or dq, dk, dv; or one: o, dout) and attention_qkv's rows [L, T, parts · H · D], packing
 * (pack) or unpacking. */
static inline void att_qkv_move(float *packed, float *const *split, int parts, int64_t L, int64_t H, int64_t T,
                                int64_t D, int pack)
{
    int64_t C = H * D;
    for (int p = 0; p < parts; p++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t r = 0; r < T; r++)
                    for (int64_t j = 0; j < D; j++) {
                        float *a = &packed[(l * T + r) * parts * C + p * C + h * D + j];
                        float *b = &split[p][((l * H + h) * T + r) * D + j];
                        if (pack)
                            *a = *b;
                        else
                            *b = *a;
                    }
}

/* Prints "<what> [dims] causal|not causal, <how>: ..." and returns 1 on failure: a NaN, or
 * an element off by more than tol times the largest |cpu| (att_compare: 1e-4). */
static inline int att_compare_to(const char *what, const att_case *c, const char *how, const float *got,
                                 const float *ref, size_t n, double tol)
{
    size_t nan = 0;
    double worst = 0, big = 0;
    for (size_t e = 0; e < n; e++) {
        if (isnan(got[e])) nan++;
        double d = fabs((double)got[e] - (double)ref[e]);
        if (d > worst) worst = d;
        if (fabs((double)ref[e]) > big) big = fabs((double)ref[e]);
    }
    int ok = !nan && worst <= tol * big;
    char shape[128] = "";
    for (int k = 0; k < c->rank; k++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", k ? ", " : "", (long long)c->dims[k]);
    char drop[32] = "";
    if (c->dropout > 0) snprintf(drop, sizeof drop, ", dropout %g", c->dropout);
    printf("%s [%s] %s%s, %s: max |got - cpu| %.3g of max |cpu| %.3g, %zu NaN: %s\n", what, shape,
           c->causal ? "causal" : "not causal", drop, how, worst, big, nan, ok ? "ok" : "FAIL");
    return !ok;
}

static inline int att_compare(const char *what, const att_case *c, const char *how, const float *got, const float *ref,
                              size_t n)
{
    return att_compare_to(what, c, how, got, ref, n, 1e-4);
}

#endif

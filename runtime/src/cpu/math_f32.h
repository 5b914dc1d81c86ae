/* math_f32.h — scalar math the element-wise kernels share (elementwise.c and, for the
 * 16-bit binary kernels, elementwise_half.c), inline so each vector clone of a kernel
 * loop vectorises it: tanh without libm, and GELU's tanh form and its gradient. */
#ifndef PML_CPU_MATH_F32_H
#define PML_CPU_MATH_F32_H

#include <math.h>

#include "pml/gelu.h"

/* tanh for f32 as a rational function (Eigen's generic_fast_tanh_float): no branch and no
 * libm call, so the loop vectorises. Error is within a few ulp on the clamped range; past
 * +-7.9 tanhf is +-1 in f32 anyway, and below 4e-4 tanh(x) rounds to x. glibc's tanhf
 * (through expm1f) was 13% of a GPT step, in GELU. */
static inline float pml_tanhf(float x)
{
    const float clamp = 7.90531110763549805f;
    float c = x > clamp ? clamp : x < -clamp ? -clamp : x, x2 = c * c;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * c;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    float ax = x < 0 ? -x : x;
    return ax < 0.0004f ? x : p / q;
}

/* GELU's tanh form and its gradient (pml/ops.def, gelu_tanh), in the order of the
 * stdlib's former definition in primitives, 0.5 * x * (1.0 + tanh(k * (x + 0.044715 *
 * x * x * x))), and of the backward pass autodiff made of it: every product and sum
 * is the one that definition's nodes computed, rounded to f32 as each node stored it,
 * so the op gives those nodes' bits (C11 does not fuse a * b + c here: no contraction
 * in ISO mode). The constants (pml/gelu.h) are the stdlib's doubles stored as f32, as
 * its nodes did. */

static inline float pml_gelu_tanhf(float x)
{
    float h = 0.5f * x, a0 = (float)PML_GELU_C * x, a1 = a0 * x, a2 = a1 * x, a3 = x + a2;
    float t = pml_tanhf((float)PML_GELU_K * a3);
    return h * (1.0f + t);
}

static inline float pml_gelu_tanh_gradf(float x, float dy)
{
    const float k = (float)PML_GELU_K, c = (float)PML_GELU_C;
    float a0 = c * x, a1 = a0 * x, a2 = a1 * x, t = pml_tanhf(k * (x + a2));
    float dh = dy * (1.0f + t), da4 = dy * (0.5f * x), du = da4 * (1.0f - t * t), da3 = du * k;
    float da1 = da3 * x, s1 = da3 + da3 * a1, da0 = da1 * x, s2 = s1 + da1 * a0, s3 = s2 + da0 * c;
    return s3 + dh * 0.5f;
}

/* The same in double (the f64 kernels: references and tests). */
static inline double pml_gelu_tanh(double x)
{
    double t = tanh(PML_GELU_K * (x + ((PML_GELU_C * x) * x) * x));
    return (0.5 * x) * (1.0 + t);
}

static inline double pml_gelu_tanh_grad(double x, double dy)
{
    double a0 = PML_GELU_C * x, a1 = a0 * x, t = tanh(PML_GELU_K * (x + a1 * x));
    double da3 = ((dy * (0.5 * x)) * (1.0 - t * t)) * PML_GELU_K, da1 = da3 * x;
    return (((da3 + da3 * a1) + da1 * a0) + (da1 * x) * PML_GELU_C) + (dy * (1.0 + t)) * 0.5;
}

#endif

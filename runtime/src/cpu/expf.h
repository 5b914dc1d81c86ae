/* expf.h — the f32 e^x the fused row kernels (xent.c, attention.c) share: written
 * without branches or libm calls so their row loops vectorise.
 *
 * e^x for x <= 0 (x - max; -inf and anything below -87 give e^-87 ~ 1.6e-38, which adds
 * nothing to a sum holding at least 1): Cody-Waite reduction x = n ln2 + r with n
 * rounded to nearest by the 1.5 * 2^23 trick, Cephes' degree-6 polynomial for e^r on
 * [-ln2/2, ln2/2] (about 1 ulp), and 2^n put in the exponent bits. The reduction runs
 * on x clamped to [-87, 88] (a NaN clamps too), so n always fits the exponent and its
 * conversion to int is defined: a NaN (a diverged logit) made it undefined behaviour.
 * The answer for a NaN or +inf is then chosen by a select, so NaN stays NaN and the
 * loop still vectorises.
 *
 * Not the exp op's: elementwise.c's fast_expf serves the whole f32 range (subnormal
 * results included) through a double polynomial, at about twice this one's cost. A
 * softmax row's terms are at most 1 and sum to at least 1, where neither difference
 * shows, so the row kernels keep this cheaper form. */
#ifndef PML_CPU_EXPF_H
#define PML_CPU_EXPF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float pml_cpu_expf(float x0)
{
    float x = x0 > -87.0f ? x0 : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float n = (x * 1.44269504088896341f + magic) - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = x0 < 88.0f ? p * scale : (float)INFINITY;
    return x0 == x0 ? y : x0;
}

#endif

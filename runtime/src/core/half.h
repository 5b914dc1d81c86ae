/* half.h — one element between f32 and the 16-bit floating-point formats: bf16 (f32's
 * sign, exponent and top 7 mantissa bits) and IEEE binary16 "f16" (5-bit exponent, 10
 * mantissa bits). f32 -> 16 bits rounds to nearest, ties to even, as every hardware
 * conversion does (AVX512-BF16's vcvtneps2bf16, F16C's vcvtps2ph with rounding mode 0),
 * so a value converted here and by the fast paths has the same bits. NaN stays NaN
 * (quiet), infinities stay, and f16 overflows to infinity past 65504 and keeps its
 * subnormals. 16 bits -> f32 is exact. The bulk loops over arrays are the CPU
 * backend's (cpu/convert.h). Also the one rule for a float to i32 (pml_i32_of), which
 * the CPU cast and the ONNX export both follow. */
#ifndef PML_CORE_HALF_H
#define PML_CORE_HALF_H

#include <stdint.h>
#include <string.h>

/* A float as PML's cast to i32 makes it: toward zero, saturated, NaN 0. */
static inline int32_t pml_i32_of(double x)
{
    if (x != x) return 0;
    if (x >= 2147483647.0) return INT32_MAX;
    if (x <= -2147483648.0) return INT32_MIN;
    return (int32_t)x;
}

static inline uint32_t pml_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float pml_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t pml_f32_to_bf16(float f)
{
    uint32_t u = pml_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);                                            /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static inline float pml_bf16_to_f32(uint16_t h) { return pml_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t pml_f32_to_f16(float f)
{
    uint32_t u = pml_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);   /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  /* 65520 and up round to infinity */
    if (a < 0x38800000u) {                                     /* below 2^-14: an f16 subnormal (or 0) */
        float k = pml_f32_from_bits(a) * 16777216.0f;          /* in units of 2^-24, exact */
        k = (k + 8388608.0f) - 8388608.0f;                     /* + 2^23 rounds to an integer, ties to even */
        return (uint16_t)(sign | (uint32_t)k);                 /* k = 1024 is the smallest normal: right */
    }
    a += 0xfffu + ((a >> 13) & 1u); /* round the 13 dropped bits; a carry moves into the exponent */
    return (uint16_t)(sign | ((a - 0x38000000u) >> 13)); /* exponent bias 127 -> 15 */
}

static inline float pml_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f); /* m * 2^-24, exact */
        return sign ? -v : v;
    }
    if (e == 31) return pml_f32_from_bits(sign | 0x7f800000u | (m << 13));
    return pml_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

#endif

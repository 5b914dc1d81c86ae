/* convert.c — pml_cpu_widen and pml_cpu_narrow (see convert.h). The bf16 loops are
 * integer work the compiler vectorises (and clones for AVX2 and AVX-512); f16 takes
 * F16C's instructions when the CPU has them. */
#include "core/vectorize.h"

#include "convert.h"
#include "isa.h"

#include <string.h>

#include "core/finite.h"
#include "core/half.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define PML_HAVE_F16C_BUILD 1

__attribute__((target("avx,f16c"))) static void f16_widen_f16c(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = pml_f16_to_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void f16_narrow_f16c(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = pml_f32_to_f16(src[i]);
}
#endif

int pml_cpu_convert_f16c(void)
{
#ifdef PML_HAVE_F16C_BUILD
    /* AVX (with the OS saving its registers) and CPUID.1:ECX bit 29; by CPUID, not
     * __builtin_cpu_supports("f16c"), which clang does not know */
    __builtin_cpu_init();
    unsigned a, b, c, d;
    return pml_cpu_isa_offered() >= PML_ISA_AVX2 && __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) &&
           (c >> 29 & 1u);
#else
    return 0;
#endif
}

PML_VECTOR_CLONES static void bf16_widen(float *restrict dst, const uint16_t *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = pml_bf16_to_f32(src[i]);
}

PML_VECTOR_CLONES static void bf16_narrow(uint16_t *restrict dst, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = pml_f32_to_bf16(src[i]);
}

static int f16c(void)
{
    static int known = -1; /* every thread that finds it unset computes the same answer */
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k < 0) __atomic_store_n(&known, k = pml_cpu_convert_f16c(), __ATOMIC_RELAXED);
    return k;
}

void pml_cpu_widen(float *dst, const void *src, pml_dtype t, size_t n)
{
    if (t == PML_BF16) {
        bf16_widen(dst, src, n);
    } else if (t == PML_F16) {
#ifdef PML_HAVE_F16C_BUILD
        if (f16c()) {
            f16_widen_f16c(dst, src, n);
            return;
        }
#endif
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = pml_f16_to_f32(s[i]);
    } else if (dst != src) {
        memmove(dst, src, n * sizeof(float));
    }
}

void pml_cpu_narrow(void *dst, pml_dtype t, const float *src, size_t n)
{
    if (t == PML_BF16) {
        bf16_narrow(dst, src, n);
    } else if (t == PML_F16) {
#ifdef PML_HAVE_F16C_BUILD
        if (f16c()) {
            f16_narrow_f16c(dst, src, n);
            return;
        }
#endif
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = pml_f32_to_f16(src[i]);
    } else if (dst != src) {
        memmove(dst, src, n * sizeof(float));
    }
}

size_t pml_cpu_scan_finite(const void *x, pml_dtype t, size_t n)
{
    if (!pml_cpu_is_half(t)) return pml_finite_scan_f32(x, n);
    const uint16_t *h = x;
    uint16_t e = t == PML_BF16 ? 0x7f80u : 0x7c00u; /* the exponent: all ones is inf or NaN */
    for (size_t i = 0; i < n; i++)
        if ((h[i] & e) == e) return i;
    return n;
}

float pml_cpu_element(const void *x, pml_dtype t, size_t i)
{
    if (t == PML_BF16) return pml_bf16_to_f32(((const uint16_t *)x)[i]);
    if (t == PML_F16) return pml_f16_to_f32(((const uint16_t *)x)[i]);
    float v;
    memcpy(&v, (const char *)x + i * sizeof v, sizeof v);
    return v;
}

/* convert.h — arrays between f32 and the storage dtypes of mixed precision (bf16, f16),
 * for the kernels that read and write 16-bit storage with f32 math (cpu/half.c) and
 * the matrix products' 16-bit operands. Rounding is core/half.h's (to nearest, ties to
 * even); f16 uses F16C's vcvtps2ph/vcvtph2ps where the CPU has them (checked at run
 * time), which give the same bits as the scalar code. */
#ifndef PML_CPU_CONVERT_H
#define PML_CPU_CONVERT_H

#include <stddef.h>

#include "kernels.h"

/* Whether t is a 16-bit floating-point storage dtype. */
static inline int pml_cpu_is_half(pml_dtype t) { return t == PML_BF16 || t == PML_F16; }

/* dst[i] = src[i] as f32, src of dtype t (f32, bf16 or f16). */
void pml_cpu_widen(float *dst, const void *src, pml_dtype t, size_t n);
/* dst[i] = src[i] rounded to dtype t (f32: copied). */
void pml_cpu_narrow(void *dst, pml_dtype t, const float *src, size_t n);
/* The index of the first non-finite element of x[0..n) of dtype t (f32, bf16, f16), or
 * n; and element i as f32. */
size_t pml_cpu_scan_finite(const void *x, pml_dtype t, size_t n);
float pml_cpu_element(const void *x, pml_dtype t, size_t i);
/* Whether f16 conversions run on F16C (for tests and `pmlc train`'s first line). */
int pml_cpu_convert_f16c(void);

#endif

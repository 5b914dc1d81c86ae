/* gelu.h — the constants of GELU's tanh form, 0.5 x (1 + tanh(K (x + C x^3))), as the
 * gelu_tanh op has them (pml/ops.def): its fold in the compiler, the CPU kernels
 * (runtime/src/cpu/math_f32.h), the CUDA device functions (compiler/src/gpu/
 * cuda_prelude.c, through PML_GELU_STR) and the ONNX export (runtime/src/plan/onnx.c).
 * Doubles, as the stdlib's definition folded them; the f32 kernels store them as f32. */
#ifndef PML_GELU_H
#define PML_GELU_H

#define PML_GELU_K 0.7978845608028654 /* sqrt(2 / pi) */
#define PML_GELU_C 0.044715

/* A constant's spelling, for generated source: PML_GELU_STR(PML_GELU_K). */
#define PML_GELU_STR_(x) #x
#define PML_GELU_STR(x) PML_GELU_STR_(x)

#endif

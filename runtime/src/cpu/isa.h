/* isa.h — the x86 vector instruction sets PML's CPU matrix products care about, in
 * order of width, and which of them this CPU offers (read from CPUID at run time,
 * never from a table of model numbers: the project's machines and its users' change
 * CPU model from run to run).
 *
 * A level includes every level below it. AVX512 is "AVX-512 core" (F, BW, DQ, VL: the
 * set every AVX-512 BLAS kernel needs); VNNI and BF16 add the int8 and bf16 dot
 * products on top of it. The GEMM path reports the level its kernels use
 * (pml_cpu_gemm_isa, gemm.h); a test checks that it is pml_cpu_isa_offered(). */
#ifndef PML_CPU_ISA_H
#define PML_CPU_ISA_H

#include <stddef.h>

typedef enum pml_cpu_isa {
    PML_ISA_SSE2,        /* the x86-64 baseline (and every other architecture) */
    PML_ISA_SSE41,       /* SSE4.1 */
    PML_ISA_AVX2,        /* AVX2 + FMA */
    PML_ISA_AVX512,      /* AVX-512 F, BW, DQ, VL */
    PML_ISA_AVX512_VNNI, /* + AVX512_VNNI (int8 dot products) */
    PML_ISA_AVX512_BF16, /* + AVX512_BF16 (bf16 dot products) */
    PML_ISA_COUNT
} pml_cpu_isa;

/* The widest level this CPU (and its OS: the vector registers' state is saved) offers,
 * at most the PML_CPU_ISA environment variable's level when it names one (read once):
 * every choice of PML's own kernels by instruction set goes through this, and oneDNN is
 * capped to the same level, so a machine can run, and test, the paths of a narrower CPU
 * (the compiler's per-function clones, core/vectorize.h, still pick by the CPU itself).
 * pml_cpu_isa_detected: the CPU's own level; pml_cpu_isa_capped: 1 when the variable
 * lowered it. pml_cpu_isa_check: 0, or -1 with a message in why when PML_CPU_ISA is set
 * to something that is not a level's name (then nothing is capped). */
pml_cpu_isa pml_cpu_isa_offered(void);
pml_cpu_isa pml_cpu_isa_detected(void);
int pml_cpu_isa_capped(void);
int pml_cpu_isa_check(char *why, size_t cap);

/* "sse2", "sse4.1", "avx2", "avx512", "avx512_vnni", "avx512_bf16"; NULL out of range. */
const char *pml_cpu_isa_name(pml_cpu_isa isa);

#endif

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

typedef enum pml_cpu_isa {
    PML_ISA_SSE2,        /* the x86-64 baseline (and every other architecture) */
    PML_ISA_SSE41,       /* SSE4.1 */
    PML_ISA_AVX2,        /* AVX2 + FMA */
    PML_ISA_AVX512,      /* AVX-512 F, BW, DQ, VL */
    PML_ISA_AVX512_VNNI, /* + AVX512_VNNI (int8 dot products) */
    PML_ISA_AVX512_BF16, /* + AVX512_BF16 (bf16 dot products) */
    PML_ISA_COUNT
} pml_cpu_isa;

/* The widest level this CPU (and its OS: the vector registers' state is saved) offers. */
pml_cpu_isa pml_cpu_isa_offered(void);

/* "sse2", "sse4.1", "avx2", "avx512", "avx512_vnni", "avx512_bf16"; NULL out of range. */
const char *pml_cpu_isa_name(pml_cpu_isa isa);

#endif

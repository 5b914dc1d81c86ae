/* isa.c — which of PML's instruction-set levels (isa.h) this CPU offers, by
 * __builtin_cpu_supports (CPUID, with the OS's XSAVE state checked by libgcc). */
#include "isa.h"

pml_cpu_isa pml_cpu_isa_offered(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.1")) return PML_ISA_SSE2;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return PML_ISA_SSE41;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return PML_ISA_AVX2;
    if (!__builtin_cpu_supports("avx512vnni")) return PML_ISA_AVX512;
    if (!__builtin_cpu_supports("avx512bf16")) return PML_ISA_AVX512_VNNI;
    return PML_ISA_AVX512_BF16;
#else
    return PML_ISA_SSE2;
#endif
}

const char *pml_cpu_isa_name(pml_cpu_isa isa)
{
    static const char *const names[PML_ISA_COUNT] = {"sse2", "sse4.1", "avx2", "avx512", "avx512_vnni", "avx512_bf16"};
    return isa >= 0 && isa < PML_ISA_COUNT ? names[isa] : 0;
}

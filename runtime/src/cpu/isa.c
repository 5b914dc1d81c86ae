/* isa.c — which of PML's instruction-set levels (isa.h) this CPU offers, by
 * __builtin_cpu_supports (CPUID, with the OS's XSAVE state checked by libgcc), and the
 * PML_CPU_ISA cap on it. */
#include "isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(PML_BLAS_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

pml_cpu_isa pml_cpu_isa_detected(void)
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

static pml_cpu_isa offered = PML_ISA_SSE2;
static int cap_bad;           /* PML_CPU_ISA names no level */
static char cap_value[32];    /* its value, for the message */
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(PML_BLAS_ONEDNN)
/* oneDNN's own cap for a level: its kernels follow PML's choice (isa.h). */
static void cap_onednn(pml_cpu_isa isa)
{
    static const dnnl_cpu_isa_t of[PML_ISA_COUNT] = {
        [PML_ISA_SSE2] = dnnl_cpu_isa_sse41, /* oneDNN's lowest; below it oneDNN runs reference code */
        [PML_ISA_SSE41] = dnnl_cpu_isa_sse41,
        [PML_ISA_AVX2] = dnnl_cpu_isa_avx2,
        [PML_ISA_AVX512] = dnnl_cpu_isa_avx512_core,
        [PML_ISA_AVX512_VNNI] = dnnl_cpu_isa_avx512_core_vnni,
        [PML_ISA_AVX512_BF16] = dnnl_cpu_isa_avx512_core_bf16};
    dnnl_set_max_cpu_isa(of[isa]); /* refused once oneDNN has dispatched: nothing has yet */
}
#endif

static void init(void)
{
    offered = pml_cpu_isa_detected();
    const char *v = getenv("PML_CPU_ISA");
    if (!v || !*v) return;
    snprintf(cap_value, sizeof cap_value, "%s", v);
    int cap = -1;
    for (int i = 0; i < PML_ISA_COUNT; i++)
        if (!strcmp(v, pml_cpu_isa_name((pml_cpu_isa)i))) cap = i;
    if (cap < 0) {
        cap_bad = 1; /* refused by pml_cpu_isa_check; until then, no cap */
        return;
    }
    if ((pml_cpu_isa)cap < offered) offered = (pml_cpu_isa)cap;
#if defined(PML_BLAS_ONEDNN)
    cap_onednn(offered);
#endif
}

pml_cpu_isa pml_cpu_isa_offered(void)
{
    pthread_once(&once, init);
    return offered;
}

int pml_cpu_isa_capped(void)
{
    pthread_once(&once, init);
    return offered < pml_cpu_isa_detected();
}

int pml_cpu_isa_check(char *why, size_t cap)
{
    pthread_once(&once, init);
    if (!cap_bad) return 0;
    snprintf(why, cap, "PML_CPU_ISA=%s is not an instruction-set level: use sse2, sse4.1, avx2, avx512, avx512_vnni "
             "or avx512_bf16 (or unset it)", cap_value);
    return -1;
}

/* vectorize.h — asks GCC to vectorise the loops of the kernel file that includes it.
 *
 * The project builds at -O2, where GCC 12 vectorises only loops that need no run-time
 * alias check and no scalar epilogue ("very cheap" cost model), so the element-wise,
 * reduction and copy loops ran one scalar at a time (perf: movss stores). Vectorising
 * an element-wise loop never changes a result; reductions stay in their written order
 * because -ffast-math is not set, so results are bit-identical either way. Include it
 * first, before any function is defined. Clang vectorises at -O2 already.
 *
 * The build targets baseline x86-64 (SSE2), so a hot loop marked PML_VECTOR_CLONES is
 * also compiled for x86-64-v3 (AVX2, FMA) and v4 (AVX-512), and the loader picks the
 * best the CPU runs (GCC's target_clones, an ifunc). Elsewhere it is empty.
 *
 * Mark static functions only: GCC gives the ifunc of a clone with external linkage
 * default visibility whatever -fvisibility or a visibility attribute says, so it would
 * leak into libpml.so's exports (install.the_shared_libraries_export_exactly_the_public_api).
 * A function other files call is a plain one that calls its static clone. */
#ifndef PML_CPU_VECTORIZE_H
#define PML_CPU_VECTORIZE_H

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
#define PML_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PML_VECTOR_CLONES
#endif

#endif

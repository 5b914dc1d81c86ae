/* cuda_prelude.c — the CUDA C every generated program starts with, and the optimizer
 * kernels (see cuda_codegen.h). No #include: NVRTC provides the math functions and
 * intrinsics; everything else (bf16/f16 bits, the RNG) is spelled out here.
 *
 * The RNG is runtime/src/core/rng.h's pml_rng_u64 word for word, so dropout keeps the
 * same elements on the GPU as on the CPU. */
#include "gpu/cuda_codegen.h"

#include "pml/gelu.h"

const char pmlc_cuda_prelude[] =
    "// PML generated CUDA C: prelude\n"
    "typedef unsigned long long pml_u64;\n"
    "// f16's loss scale, which the seed of the loss's gradient is multiplied by: set by the\n"
    "// runtime between steps (cuModuleGetGlobal), 1 otherwise.\n"
    "__device__ float pml_loss_scale = 1.0f;\n"
    "__device__ __forceinline__ float pml_bf2f(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }\n"
    "__device__ __forceinline__ unsigned short pml_f2bf(float f) {\n"
    "  unsigned u = __float_as_uint(f);\n"
    "  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u); // NaN stays NaN\n"
    "  u += 0x7fffu + ((u >> 16) & 1u); // round to nearest even\n"
    "  return (unsigned short)(u >> 16);\n"
    "}\n"
    "__device__ __forceinline__ float pml_h2f(unsigned short h) { float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : "
    "\"h\"(h)); return f; }\n"
    "__device__ __forceinline__ unsigned short pml_f2h(float f) { unsigned short h; asm(\"cvt.rn.f16.f32 %0, %1;\" : "
    "\"=h\"(h) : \"f\"(f)); return h; }\n"
    "// float to i32: truncation toward zero, saturating, NaN is 0 (as the CPU backend)\n"
    "__device__ __forceinline__ int pml_f2i(float x) {\n"
    "  if (x != x) return 0;\n"
    "  if (x >= 2147483647.0f) return 2147483647;\n"
    "  if (x <= -2147483648.0f) return -2147483647 - 1;\n"
    "  return (int)x;\n"
    "}\n"
    "__device__ __forceinline__ pml_u64 pml_mix64(pml_u64 z) {\n"
    "  z += 0x9e3779b97f4a7c15ull;\n"
    "  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
    "  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
    "  return z ^ (z >> 31);\n"
    "}\n"
    "__device__ __forceinline__ pml_u64 pml_rng_u64(pml_u64 seed, pml_u64 stream, pml_u64 counter) {\n"
    "  return pml_mix64(pml_mix64(pml_mix64(seed) ^ stream) ^ counter);\n"
    "}\n"
    "// GELU's tanh form and its gradient, in the CPU kernel's order (runtime/src/cpu/math_f32.h)\n"
    "#define PML_GELU_K ((float)" PML_GELU_STR(
        PML_GELU_K) ")\n"
                    "#define PML_GELU_C ((float)" PML_GELU_STR(
                        PML_GELU_C) ")\n"
                                    "__device__ __forceinline__ float pml_gelu_tanh(float x) {\n"
                                    "  float a = ((PML_GELU_C * x) * x) * x;\n"
                                    "  return (0.5f * x) * (1.0f + tanhf(PML_GELU_K * (x + a)));\n"
                                    "}\n"
                                    "__device__ __forceinline__ float pml_gelu_tanh_grad(float x, float dy) {\n"
                                    "  float a0 = PML_GELU_C * x, a1 = a0 * x, t = tanhf(PML_GELU_K * (x + a1 * x));\n"
                                    "  float da3 = (dy * (0.5f * x)) * (1.0f - t * t) * PML_GELU_K, da1 = da3 * x;\n"
                                    "  return ((da3 + da3 * a1) + da1 * a0) + (da1 * x) * PML_GELU_C + (dy * (1.0f + "
                                    "t)) * 0.5f;\n"
                                    "}\n"
                                    "// max that lets a NaN win, as the CPU's reductions\n"
                                    "__device__ __forceinline__ float pml_maxn(float a, float b) { return b > a || b "
                                    "!= b ? b : a; }\n"
                                    "__device__ __forceinline__ float pml_warp_sum(float v) {\n"
                                    "  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n"
                                    "  return v;\n"
                                    "}\n"
                                    "__device__ __forceinline__ float pml_warp_max(float v) {\n"
                                    "  for (int o = 16; o > 0; o >>= 1) v = pml_maxn(v, __shfl_xor_sync(0xffffffffu, "
                                    "v, o));\n"
                                    "  return v;\n"
                                    "}\n"
                                    "// Block-wide reductions for rows wider than a warp can hold: every thread of "
                                    "the\n"
                                    "// block calls them (a uniform row loop) and every thread gets the result.\n"
                                    "__device__ __forceinline__ float pml_block_sum(float v, float *sh) {\n"
                                    "  v = pml_warp_sum(v);\n"
                                    "  __syncthreads();\n"
                                    "  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;\n"
                                    "  __syncthreads();\n"
                                    "  float r = 0.0f;\n"
                                    "  for (unsigned k = 0; k < (blockDim.x >> 5); k++) r += sh[k];\n"
                                    "  return r;\n"
                                    "}\n"
                                    "__device__ __forceinline__ float pml_block_max(float v, float *sh) {\n"
                                    "  v = pml_warp_max(v);\n"
                                    "  __syncthreads();\n"
                                    "  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;\n"
                                    "  __syncthreads();\n"
                                    "  float r = sh[0];\n"
                                    "  for (unsigned k = 1; k < (blockDim.x >> 5); k++) r = pml_maxn(r, sh[k]);\n"
                                    "  return r;\n"
                                    "}\n"
                                    "// Tensor cores (sm_80 and later): d += a b for a 16 x 16 tile a (row-major: "
                                    "a[0..3] the\n"
                                    "// thread's pairs of rows g, g + 8 at columns 2t, 2t + 8; g = lane / 4, t = lane "
                                    "% 4) and a\n"
                                    "// 16 x 8 tile b (its pairs of rows 2t, 2t + 8 at column g), d the f32 16 x 8 "
                                    "tile (rows g,\n"
                                    "// g + 8 at columns 2t, 2t + 1): PTX's mma.m16n8k16 fragments, a pair's lower "
                                    "index in the\n"
                                    "// low half; a and b bf16 (pml_mma16816) or f16 (pml_mma16816_f16), laid out "
                                    "alike.\n"
                                    "#define PML_MMA16816(NAME, AB) \\\n"
                                    "  __device__ __forceinline__ void NAME(float (&d)[4], const unsigned (&a)[4], "
                                    "unsigned b0, \\\n"
                                    "                                       unsigned b1) { \\\n"
                                    "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.\" AB \".\" AB \".f32 \" "
                                    "\\\n"
                                    "                 \"{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, "
                                    "%3};\" \\\n"
                                    "                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3]) \\\n"
                                    "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), "
                                    "\"r\"(b1)); \\\n"
                                    "  }\n"
                                    "PML_MMA16816(pml_mma16816, \"bf16\")\n"
                                    "PML_MMA16816(pml_mma16816_f16, \"f16\")\n"
                                    "// atomic add into a 16-bit float (bf16 or f16) through its 32-bit word\n"
                                    "__device__ void pml_atomic_add16(unsigned short *p, float v, int bf16) {\n"
                                    "  unsigned *w = (unsigned *)((pml_u64)p & ~(pml_u64)3);\n"
                                    "  unsigned shift = ((pml_u64)p & 2) ? 16u : 0u, old = *w, assumed;\n"
                                    "  do {\n"
                                    "    assumed = old;\n"
                                    "    unsigned short h = (unsigned short)(assumed >> shift);\n"
                                    "    float f = (bf16 ? pml_bf2f(h) : pml_h2f(h)) + v;\n"
                                    "    unsigned short n = bf16 ? pml_f2bf(f) : pml_f2h(f);\n"
                                    "    old = atomicCAS(w, assumed, (assumed & ~(0xffffu << shift)) | ((unsigned)n << "
                                    "shift));\n"
                                    "  } while (old != assumed);\n"
                                    "}\n";

/* The optimizer updates: one thread per element, grid-stride, double math as optim.c. */
#define OPTIM(T, LOAD)                                                                                            \
    "extern \"C\" __global__ void pml_adamw_" #T "(float *__restrict__ p, const " T_##T " *__restrict__ g,\n"      \
    "    float *__restrict__ m, float *__restrict__ v, long long n, double lr, double b1, double b2, double c1,\n" \
    "    double c2, double eps, double decay, double gscale) {\n"                                                  \
    "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * "    \
    "blockDim.x) {\n"                                                                                              \
    "    double gi = (double)" LOAD " * gscale;\n"                                                                 \
    "    float mi = (float)(b1 * m[i] + (1.0 - b1) * gi), vi = (float)(b2 * v[i] + (1.0 - b2) * gi * gi);\n"       \
    "    m[i] = mi;\n"                                                                                             \
    "    v[i] = vi;\n"                                                                                             \
    "    p[i] = (float)(p[i] * decay - lr * (mi / c1) / (sqrt(vi / c2) + eps));\n"                                 \
    "  }\n"                                                                                                        \
    "}\n"                                                                                                          \
    "extern \"C\" __global__ void pml_sgd_" #T "(float *__restrict__ p, const " T_##T " *__restrict__ g,\n"        \
    "    float *__restrict__ m, long long n, double lr, double wd, double mom, int nesterov, int first,\n"         \
    "    double gscale) {\n"                                                                                       \
    "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * "    \
    "blockDim.x) {\n"                                                                                              \
    "    double gi = (double)" LOAD " * gscale + wd * p[i];\n"                                                     \
    "    if (mom > 0) {\n"                                                                                         \
    "      float mi = (float)(first ? gi : mom * m[i] + gi);\n"                                                    \
    "      m[i] = mi;\n"                                                                                           \
    "      gi = nesterov ? gi + mom * mi : (double)mi;\n"                                                          \
    "    }\n"                                                                                                      \
    "    p[i] = (float)(p[i] - lr * gi);\n"                                                                        \
    "  }\n"                                                                                                        \
    "}\n"
#define T_f32 "float"
#define T_bf16 "unsigned short"
#define T_f16 "unsigned short"

const char pmlc_cuda_optim_src[] = "// PML optimizer updates (runtime/src/plan/optim.c on the GPU)\n" OPTIM(
    f32, "g[i]") OPTIM(bf16, "pml_bf2f(g[i])") OPTIM(f16, "pml_h2f(g[i])");

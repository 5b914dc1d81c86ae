/* cuda_attention.c — the fused attention kernels of the CUDA backend (cuda_attention.h):
 * flash-attention's algorithm (FlashAttention-2's loop order) in f32 on the CUDA cores,
 * its operands f32 or bf16 (read into f32 tiles; a bf16 output rounded once, as stored).
 *
 * attention is one launch: a block per BQ = 64 query rows of a matrix keeps its q tile
 * in shared memory and walks the key tiles (BK = 64, 32 or 16 keys as d grows, so the
 * tiles fit 48 KiB) with an online softmax (running max and sum per row, the
 * accumulator rescaled when the max grows); under the causal mask the key tiles wholly
 * above the diagonal are never visited and the tile on it is masked. No [T, T] value
 * exists anywhere: a tile's scores live in registers and one [BQ, BK] block of shared
 * memory.
 *
 * attention_grad is three launches over one output g = [3, ..., T, d] (dq, dk, dv):
 *  1. statistics: the forward loop without v, writing each row's log-sum-exp (log2
 *     domain) and D = Σ dout ∘ o into the first two floats of the row's dq slot (the
 *     plan keeps one value per op, so the forward pass cannot hand its log-sum-exp over:
 *     recomputing it costs the forward pass's q kᵀ once more);
 *  2. dk, dv: a block per B keys walks the query tiles that see them, recomputing the
 *     probabilities p = exp(s - lse) and dS = p (dP - D) · scale tile by tile:
 *     dv += pᵀ dout, dk += dSᵀ q;
 *  3. dq: a block per B queries walks its key tiles: dq += dS k, after reading its rows'
 *     statistics from the slots it then overwrites.
 * Splitting dq from dk/dv keeps every output written by one block (no atomics, the same
 * bits on every run) at the price of recomputing q kᵀ and dout vᵀ in both.
 *
 * Dropout on the weights (the op's key and p) is drawn where a weight is made, from the
 * counter-based RNG, on the launch's seed: the forward's tile that multiplies v, and the
 * backward's p and dS tiles draw the same decisions again, so no mask is stored
 * (docs/design.md, "Dropout on the attention weights, inside the kernel").
 *
 * With bf16 q, k and v the forward runs on the tensor cores instead (pml_att_fwd_tc: a warp
 * per 16 query rows, q in registers, the weights handed from one product's accumulators
 * to the next one's operands without leaving registers); the backward stays as below.
 *
 * A tile product is a thread's few rows by few columns in registers (256 threads as a
 * 16 x 16 grid), its operands read from shared memory 16 bytes at a time where rows are
 * contiguous. Sizes are constants of the generated call (the plan binds every shape);
 * the templates are the text below, compiled by NVRTC with the rest of the model (and
 * for the CPU by tests/cuda/attention_emulated.cpp). Launch contract as cuda_codegen.h:
 * 256 threads, any grid (the blocks stride over the tiles). */
#include "gpu/cuda_attention.h"

#include <math.h>
#include <string.h>

#include "gpu/cuda_int.h"
#include "pml/ops.h"

const char pmlc_cuda_attention_src[] =
    "// ---- fused attention: compiler/src/gpu/cuda_attention.c ----\n"
    "// Every matrix is [T][D] (f32 or bf16), row-major: M of them end to end (H = 0), or (H heads,\n"
    "// attention_qkv) head m % H of leading index m / H in rows that hold P parts of H heads of D\n"
    "// (P = 3: q, k, v, or dq, dk, dv; P = 1: the output, o, dout). 256 threads as a 16 x 16\n"
    "// grid (tx = threadIdx.x % 16, ty = threadIdx.x / 16): in a tile product a thread owns\n"
    "// rows ty + 16 r and columns tx + 16 c, so a row's 16 threads are lanes of one half warp\n"
    "// and a row's max and sum are shuffles. Shared rows are 16-byte aligned and padded by\n"
    "// four floats: a row's four consecutive floats are one 16-byte load, and the rows that\n"
    "// 16 threads read at once fall in different banks. Scores are kept in the log2 domain: z = s * scale * log2 e.\n"
    "#define PML_ATT_NEG_INF (-__int_as_float(0x7f800000))\n"
    "__device__ __forceinline__ float pml_att_max16(float v) {\n"
    "  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
    "  return v;\n"
    "}\n"
    "__device__ __forceinline__ float pml_att_sum16(float v) {\n"
    "  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n"
    "  return v;\n"
    "}\n"
    "// Where matrix m's row 0 lies, in elements, in a tensor of the layout above (P parts).\n"
    "template <int D, int H, int P>\n"
    "__device__ __forceinline__ long long pml_att_base(long long m, int T) {\n"
    "  return H ? m / H * T * (long long)(P * H * D) + m % H * D : m * T * (long long)D;\n"
    "}\n"
    "// An element as stored, f32 or bf16 bits (the prelude's pml_bf2f, pml_f2bf), and back.\n"
    "__device__ __forceinline__ float pml_att_get(float x) { return x; }\n"
    "__device__ __forceinline__ float pml_att_get(unsigned short x) { return pml_bf2f(x); }\n"
    "__device__ __forceinline__ void pml_att_set(float *p, float v) { *p = v; }\n"
    "__device__ __forceinline__ void pml_att_set(unsigned short *p, float v) { *p = pml_f2bf(v); }\n"
    "// Rows r0.. of a [T][D] matrix, its rows LD elements apart, into sh[R][DP + 4] (in f32),\n"
    "// zeros past T and past D.\n"
    "template <int D, int DP, int R, int LD, typename X>\n"
    "__device__ __forceinline__ void pml_att_load(float (*sh)[DP + 4], const X *__restrict__ x, int r0, int T) {\n"
    "  for (int e = threadIdx.x; e < R * DP; e += 256) {\n"
    "    const int r = e / DP, c = e % DP;\n"
    "    sh[r][c] = r0 + r < T && c < D ? pml_att_get(x[(long long)(r0 + r) * LD + c]) : 0.0f;\n"
    "  }\n"
    "}\n"
    "// acc[r][c] += a[ty + 16 r] . b[tx + 16 c] over D: a tile of a bᵀ, four columns at a\n"
    "// time (the columns from D to a multiple of 4 are zeros: pml_att_load).\n"
    "template <int D, int DP, int RA, int RB>\n"
    "__device__ __forceinline__ void pml_att_abt(float (&acc)[RA][RB], const float (*a)[DP + 4],\n"
    "                                            const float (*b)[DP + 4]) {\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;\n"
    "#pragma unroll 1\n"
    "  for (int x = 0; x < (D + 3) / 4 * 4; x += 4) {\n"
    "    float4 av[RA], bv[RB];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < RA; r++) av[r] = *reinterpret_cast<const float4 *>(&a[ty + 16 * r][x]);\n"
    "#pragma unroll\n"
    "    for (int c = 0; c < RB; c++) bv[c] = *reinterpret_cast<const float4 *>(&b[tx + 16 * c][x]);\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < RA; r++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RB; c++) {\n"
    "        acc[r][c] = fmaf(av[r].x, bv[c].x, acc[r][c]);\n"
    "        acc[r][c] = fmaf(av[r].y, bv[c].y, acc[r][c]);\n"
    "        acc[r][c] = fmaf(av[r].z, bv[c].z, acc[r][c]);\n"
    "        acc[r][c] = fmaf(av[r].w, bv[c].w, acc[r][c]);\n"
    "      }\n"
    "  }\n"
    "}\n"
    "// acc[r][c] += Σ_j p[j][ty + 16 r] b[j][tx + 16 c] (TRANS: p read as pᵀ) or\n"
    "// Σ_j p[ty + 16 r][j] b[j][tx + 16 c]: a tile of pᵀ b or p b (then four j of a p row at a\n"
    "// time; J is a multiple of 16).\n"
    "template <int DP, int BP, int J, int RA, bool TRANS>\n"
    "__device__ __forceinline__ void pml_att_pb(float (&acc)[RA][DP / 16], const float (*p)[BP + 4],\n"
    "                                           const float (*b)[DP + 4]) {\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;\n"
    "#pragma unroll 1\n"
    "  for (int j = 0; j < J; j += 4) {\n"
    "    float av[RA][4], bv[4][DP / 16];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < RA; r++) {\n"
    "      if constexpr (TRANS) {\n"
    "#pragma unroll\n"
    "        for (int u = 0; u < 4; u++) av[r][u] = p[j + u][ty + 16 * r];\n"
    "      } else {\n"
    "        const float4 w = *reinterpret_cast<const float4 *>(&p[ty + 16 * r][j]);\n"
    "        av[r][0] = w.x, av[r][1] = w.y, av[r][2] = w.z, av[r][3] = w.w;\n"
    "      }\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int u = 0; u < 4; u++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < DP / 16; c++) bv[u][c] = b[j + u][tx + 16 * c];\n"
    "#pragma unroll\n"
    "    for (int u = 0; u < 4; u++)\n"
    "#pragma unroll\n"
    "      for (int r = 0; r < RA; r++)\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < DP / 16; c++) acc[r][c] = fmaf(av[r][u], bv[u][c], acc[r][c]);\n"
    "  }\n"
    "}\n"
    "\n"
    "// Whether key `col` is hidden from query `row` (past the end, or above the diagonal).\n"
    "template <bool CAUSAL>\n"
    "__device__ __forceinline__ bool pml_att_hidden(int row, int col, int T) {\n"
    "  return col >= T || (CAUSAL && col > row);\n"
    "}\n"
    "\n"
    "// Dropout on the weights (the op's attr [causal, heads, key, p]): weight (row, col) of\n"
    "// matrix m is kept, and scaled by zs = 1/(1 - p), when pml_rng_u64(seed, key, (m T + row) T\n"
    "// + col) >> 40 >= kmin = ceil(p 2^24): the element the dropout op keeps of the [..., T, T]\n"
    "// weights (pml_rng_uniform_f32 >= p). The kernels take it where their DROP argument is\n"
    "// true; seed all ones is evaluation and serving: nothing dropped.\n"
    "struct pml_att_drop { pml_u64 seed, key; unsigned kmin; float zs; };\n"
    "// The factor weight (row, col) of matrix m is multiplied by: zs or 0.\n"
    "__device__ __forceinline__ float pml_att_keep(const pml_att_drop &z, long long m, int T, int row, int col) {\n"
    "  const pml_u64 e = (pml_u64)((m * T + row) * (long long)T + col);\n"
    "  if (z.seed == ~0ull) return 1.0f;\n"
    "  return (pml_rng_u64(z.seed, z.key, e) >> 40) >= z.kmin ? z.zs : 0.0f;\n"
    "}\n"
    "\n"
    "// Forward: out = softmax(q kᵀ · scale) v per matrix, one block per BQ query rows (the\n"
    "// last tiles first: under the causal mask they have the most keys). Online softmax over\n"
    "// key tiles of BK; under the mask a tile wholly above the diagonal is never visited.\n"
    "// STATS (the backward pass's first launch): no v, and instead of the output, row r's\n"
    "// slot out[r][0..1] gets its log2-domain log-sum-exp and D = Σ dout ∘ o.\n"
    "// TQ .. TOUT: each operand's element type (pml_att_get); H: the layout (above); DROP:\n"
    "// dropout z on the weights that multiply v (the statistics are those of the weights before it).\n"
    "template <int D, int DP, int BQ, int BK, bool CAUSAL, bool STATS, typename TQ, typename TK, typename TV,\n"
    "          typename TO, typename TD, typename TOUT, int H = 0, bool DROP = false>\n"
    "__device__ __forceinline__ void pml_att_fwd(const TQ *__restrict__ q, const TK *__restrict__ k,\n"
    "                                            const TV *__restrict__ v, const TO *__restrict__ o,\n"
    "                                            const TD *__restrict__ dout, TOUT *__restrict__ out, int T,\n"
    "                                            int M, float zscale, pml_att_drop z = pml_att_drop()) {\n"
    "  __align__(16) __shared__ float qs[BQ][DP + 4];\n"
    "  __align__(16) __shared__ float kv[BK][DP + 4];\n"
    "  __align__(16) __shared__ float ps[BQ][BK + 4];\n"
    "  constexpr int RM = BQ / 16, RN = BK / 16, RD = DP / 16, LI = H ? 3 * H * D : D, LO = H ? H * D : D;\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, tiles = (T + BQ - 1) / BQ;\n"
    "  for (long long w = blockIdx.x; w < (long long)M * tiles; w += gridDim.x) {\n"
    "    const int i0 = (tiles - 1 - (int)(w % tiles)) * BQ;\n"
    "    const long long bi = pml_att_base<D, H, 3>(w / tiles, T), bo = pml_att_base<D, H, 1>(w / tiles, T);\n"
    "    __syncthreads(); // the last tile's readers of qs are done\n"
    "    pml_att_load<D, DP, BQ, LI>(qs, q + bi, i0, T);\n"
    "    float m[RM], l[RM], acc[RM][RD];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < RM; r++) {\n"
    "      m[r] = PML_ATT_NEG_INF, l[r] = 0.0f;\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RD; c++) acc[r][c] = 0.0f;\n"
    "    }\n"
    "    const int jend = CAUSAL ? min(T, i0 + BQ) : T;\n"
    "    for (int j0 = 0; j0 < jend; j0 += BK) {\n"
    "      __syncthreads(); // kv and ps are free\n"
    "      pml_att_load<D, DP, BK, LI>(kv, k + bi, j0, T);\n"
    "      __syncthreads();\n"
    "      float s[RM][RN];\n"
    "#pragma unroll\n"
    "      for (int r = 0; r < RM; r++)\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < RN; c++) s[r][c] = 0.0f;\n"
    "      pml_att_abt<D, DP, RM, RN>(s, qs, kv);\n"
    "#pragma unroll\n"
    "      for (int r = 0; r < RM; r++) {\n"
    "        const int row = i0 + ty + 16 * r;\n"
    "        float mx = PML_ATT_NEG_INF;\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < RN; c++) {\n"
    "          s[r][c] = pml_att_hidden<CAUSAL>(row, j0 + tx + 16 * c, T) ? PML_ATT_NEG_INF : s[r][c] * zscale;\n"
    "          mx = fmaxf(mx, s[r][c]); // a NaN is passed over, as the CPU's\n"
    "        }\n"
    "        const float mn = fmaxf(m[r], pml_att_max16(mx));\n"
    "        const float mu = mn == PML_ATT_NEG_INF ? 0.0f : mn; // no key seen yet: every weight 0\n"
    "        const float corr = exp2f(m[r] - mu);\n"
    "        float sum = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < RN; c++) sum += s[r][c] = exp2f(s[r][c] - mu);\n"
    "        l[r] = l[r] * corr + pml_att_sum16(sum);\n"
    "        m[r] = mn;\n"
    "        if constexpr (!STATS) {\n"
    "#pragma unroll\n"
    "          for (int c = 0; c < RD; c++) acc[r][c] *= corr;\n"
    "        }\n"
    "      }\n"
    "      if constexpr (!STATS) {\n"
    "#pragma unroll\n"
    "        for (int r = 0; r < RM; r++)\n"
    "#pragma unroll\n"
    "          for (int c = 0; c < RN; c++) {\n"
    "            float f = 1.0f;\n"
    "            if constexpr (DROP) f = pml_att_keep(z, w / tiles, T, i0 + ty + 16 * r, j0 + tx + 16 * c);\n"
    "            ps[ty + 16 * r][tx + 16 * c] = s[r][c] * f;\n"
    "          }\n"
    "        __syncthreads(); // k's readers are done, p is written\n"
    "        pml_att_load<D, DP, BK, LI>(kv, v + bi, j0, T);\n"
    "        __syncthreads();\n"
    "        pml_att_pb<DP, BK, BK, RM, false>(acc, ps, kv);\n"
    "      }\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < RM; r++) {\n"
    "      const int row = i0 + ty + 16 * r;\n"
    "      if constexpr (!STATS) {\n"
    "        const float inv = 1.0f / l[r];\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < RD; c++)\n"
    "          if (row < T && tx + 16 * c < D) pml_att_set(&out[bo + (long long)row * LO + tx + 16 * c], acc[r][c] * "
    "inv);\n"
    "        continue;\n"
    "      }\n"
    "      float dd = 0.0f;\n"
    "      for (int c = tx; c < D && row < T; c += 16)\n"
    "        dd = fmaf(pml_att_get(dout[bo + (long long)row * LO + c]), pml_att_get(o[bo + (long long)row * LO + "
    "c]), dd);\n"
    "      dd = pml_att_sum16(dd);\n"
    "      if (row < T && tx == 0) {\n"
    "        pml_att_set(&out[bi + (long long)row * LI], m[r] + log2f(l[r])); // the dq slot: P = 3\n"
    "        pml_att_set(&out[bi + (long long)row * LI + 1], dd);\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n"
    "\n"
    "// Elements (row, col) and (row, col + 1) of a bf16 [T][D] matrix, its rows LD apart, as one\n"
    "// 32-bit pair, the first in the low half (zeros past T and past D).\n"
    "template <int D>\n"
    "__device__ __forceinline__ unsigned pml_att_pair(const unsigned short *x, int LD, int row, int col, int T) {\n"
    "  const long long at = (long long)row * LD + col;\n"
    "  const unsigned lo = row < T && col < D ? x[at] : 0u, hi = row < T && col + 1 < D ? x[at + 1] : 0u;\n"
    "  return lo | hi << 16;\n"
    "}\n"
    "// Two f32 rounded to bf16, as such a pair.\n"
    "__device__ __forceinline__ unsigned pml_att_bf2(float lo, float hi) {\n"
    "  return pml_f2bf(lo) | (unsigned)pml_f2bf(hi) << 16;\n"
    "}\n"
    "\n"
    "// Forward on the tensor cores, for bf16 q, k and v: the same online softmax with the two\n"
    "// products on mma.m16n8k16 (pml_mma16816), f32 accumulators. A block of 8 warps takes BQ =\n"
    "// 128 query rows, warp w rows 16 w .. 16 w + 15, whose q stays in registers as the\n"
    "// products' a fragments; key tiles of 64 keys go to shared memory as bf16, k row-major\n"
    "// and v transposed, so that each b fragment pair is one 32-bit read (row strides of\n"
    "// DP + 8 and 72 elements: the 32 lanes' reads fall in 32 banks). The scores live in the\n"
    "// accumulators of S = q kᵀ (a thread holds rows g and g + 8 of its warp's 16, columns 2t,\n"
    "// 2t + 1 of each 8: a row's max and sum are shuffles across its 4 lanes), and the\n"
    "// weights, rounded to bf16 as FlashAttention-2 does, are the a fragments of P v straight\n"
    "// from them (the accumulator pairs of two 8-column tiles are one 16-column a tile).\n"
    "// TOUT: the output's type; H, DROP: as pml_att_fwd's.\n"
    "template <int D, int DP, int BQ, bool CAUSAL, typename TOUT, int H = 0, bool DROP = false>\n"
    "__device__ __forceinline__ void pml_att_fwd_tc(const unsigned short *__restrict__ q,\n"
    "                                               const unsigned short *__restrict__ k,\n"
    "                                               const unsigned short *__restrict__ v, TOUT *__restrict__ out, int "
    "T,\n"
    "                                               int M, float zscale, pml_att_drop z = pml_att_drop()) {\n"
    "  static_assert(BQ == 16 * 8, \"a warp per 16 query rows\");\n"
    "  constexpr int BK = 64, KC = DP / 16, ND = DP / 8, KS = DP + 8, VS = BK + 8;\n"
    "  constexpr int LI = H ? 3 * H * D : D, LO = H ? H * D : D;\n"
    "  __align__(16) __shared__ unsigned short ks[BK * KS];\n"
    "  __align__(16) __shared__ unsigned short vt[DP * VS];\n"
    "  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, tiles = (T + BQ - 1) / BQ;\n"
    "  for (long long w = blockIdx.x; w < (long long)M * tiles; w += gridDim.x) {\n"
    "    const int i0 = (tiles - 1 - (int)(w % tiles)) * BQ, r0 = i0 + 16 * (threadIdx.x >> 5) + g;\n"
    "    const long long mat = w / tiles, bi = pml_att_base<D, H, 3>(mat, T), bo = pml_att_base<D, H, 1>(mat, T);\n"
    "    unsigned qa[KC][4];\n"
    "#pragma unroll\n"
    "    for (int c = 0; c < KC; c++)\n"
    "#pragma unroll\n"
    "      for (int u = 0; u < 4; u++)\n"
    "        qa[c][u] = pml_att_pair<D>(q + bi, LI, r0 + 8 * (u & 1), 16 * c + 8 * (u >> 1) + 2 * t, T);\n"
    "    float m[2] = {PML_ATT_NEG_INF, PML_ATT_NEG_INF}, l[2] = {0.0f, 0.0f}, acc[ND][4];\n"
    "#pragma unroll\n"
    "    for (int n = 0; n < ND; n++)\n"
    "      acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;\n"
    "    const int jend = CAUSAL ? min(T, i0 + BQ) : T;\n"
    "    for (int j0 = 0; j0 < jend; j0 += BK) {\n"
    "      __syncthreads(); // the last tile's readers of ks and vt are done\n"
    "      for (int e = threadIdx.x; e < BK * DP; e += 256) {\n"
    "        const int r = e / DP, c = e % DP;\n"
    "        const bool in = j0 + r < T && c < D;\n"
    "        ks[r * KS + c] = in ? k[bi + (long long)(j0 + r) * LI + c] : (unsigned short)0;\n"
    "        vt[c * VS + r] = in ? v[bi + (long long)(j0 + r) * LI + c] : (unsigned short)0;\n"
    "      }\n"
    "      __syncthreads();\n"
    "      float s[BK / 8][4];\n"
    "#pragma unroll\n"
    "      for (int n = 0; n < BK / 8; n++) {\n"
    "        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < KC; c++) {\n"
    "          const unsigned short *b = &ks[(8 * n + g) * KS + 16 * c + 2 * t];\n"
    "          pml_mma16816(s[n], qa[c], *reinterpret_cast<const unsigned *>(b),\n"
    "                       *reinterpret_cast<const unsigned *>(b + 8));\n"
    "        }\n"
    "      }\n"
    "#pragma unroll\n"
    "      for (int h = 0; h < 2; h++) { // rows r0 and r0 + 8: accumulator elements 2 h, 2 h + 1\n"
    "        const int row = r0 + 8 * h;\n"
    "        float mx = PML_ATT_NEG_INF;\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < BK / 8; n++)\n"
    "#pragma unroll\n"
    "          for (int e = 0; e < 2; e++) {\n"
    "            float &x = s[n][2 * h + e];\n"
    "            x = pml_att_hidden<CAUSAL>(row, j0 + 8 * n + 2 * t + e, T) ? PML_ATT_NEG_INF : x * zscale;\n"
    "            mx = fmaxf(mx, x); // a NaN is passed over, as the CPU's\n"
    "          }\n"
    "        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));\n"
    "        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
    "        const float mn = fmaxf(m[h], mx), mu = mn == PML_ATT_NEG_INF ? 0.0f : mn, corr = exp2f(m[h] - mu);\n"
    "        float sum = 0.0f;\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < BK / 8; n++)\n"
    "#pragma unroll\n"
    "          for (int e = 0; e < 2; e++) {\n"
    "            float &x = s[n][2 * h + e];\n"
    "            sum += x = exp2f(x - mu);\n"
    "            if constexpr (DROP)\n"
    "              x *= pml_att_keep(z, mat, T, row, j0 + 8 * n + 2 * t + e);\n"
    "          }\n"
    "        sum += __shfl_xor_sync(0xffffffffu, sum, 1);\n"
    "        sum += __shfl_xor_sync(0xffffffffu, sum, 2);\n"
    "        l[h] = l[h] * corr + sum;\n"
    "        m[h] = mn;\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < ND; n++)\n"
    "          acc[n][2 * h] *= corr, acc[n][2 * h + 1] *= corr;\n"
    "      }\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < BK / 16; c++) { // keys 16 c ..: the accumulators of tiles 2 c, 2 c + 1\n"
    "        const unsigned pa[4] = {pml_att_bf2(s[2 * c][0], s[2 * c][1]), pml_att_bf2(s[2 * c][2], s[2 * c][3]),\n"
    "                                pml_att_bf2(s[2 * c + 1][0], s[2 * c + 1][1]),\n"
    "                                pml_att_bf2(s[2 * c + 1][2], s[2 * c + 1][3])};\n"
    "#pragma unroll\n"
    "        for (int n = 0; n < ND; n++) {\n"
    "          const unsigned short *b = &vt[(8 * n + g) * VS + 16 * c + 2 * t];\n"
    "          pml_mma16816(acc[n], pa, *reinterpret_cast<const unsigned *>(b),\n"
    "                       *reinterpret_cast<const unsigned *>(b + 8));\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int h = 0; h < 2; h++) {\n"
    "      const int row = r0 + 8 * h;\n"
    "      const float inv = 1.0f / l[h];\n"
    "#pragma unroll\n"
    "      for (int n = 0; n < ND; n++)\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < 2; e++)\n"
    "          if (row < T && 8 * n + 2 * t + e < D)\n"
    "            pml_att_set(&out[bo + (long long)row * LO + 8 * n + 2 * t + e], acc[n][2 * h + e] * inv);\n"
    "    }\n"
    "  }\n"
    "}\n"
    "\n"
    "// The probabilities and dS = P (dP - D) · scale of a B x B tile (rows i0 + ty + 16 r, keys\n"
    "// j0 + tx + 16 c) from q, dout (qs, ds) and k, v (ks, vs) in shared memory, and each row's\n"
    "// log-sum-exp and D (lse, dd). Under dropout (DROP: z on matrix mat) with f each weight's\n"
    "// factor (pml_att_keep), p is the weights after it, P f, and dS = P (dP f - D) · scale.\n"
    "template <int D, int DP, int B, bool CAUSAL, bool DROP>\n"
    "__device__ __forceinline__ void pml_att_tile_ds(float (&p)[B / 16][B / 16], float (&ds)[B / 16][B / 16],\n"
    "                                                const float (*qs)[DP + 4], const float (*dos)[DP + 4],\n"
    "                                                const float (*ks)[DP + 4], const float (*vs)[DP + 4],\n"
    "                                                const float *lse, const float *dd, int i0, int j0, int T,\n"
    "                                                float zscale, float scale, const pml_att_drop &z, long long mat) "
    "{\n"
    "  constexpr int R = B / 16;\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;\n"
    "#pragma unroll\n"
    "  for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "    for (int c = 0; c < R; c++) p[r][c] = 0.0f, ds[r][c] = 0.0f;\n"
    "  pml_att_abt<D, DP, R, R>(p, qs, ks);\n"
    "  pml_att_abt<D, DP, R, R>(ds, dos, vs);\n"
    "#pragma unroll\n"
    "  for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "    for (int c = 0; c < R; c++) {\n"
    "      const int row = ty + 16 * r;\n"
    "      const bool hidden = i0 + row >= T || pml_att_hidden<CAUSAL>(i0 + row, j0 + tx + 16 * c, T);\n"
    "      p[r][c] = hidden ? 0.0f : exp2f(p[r][c] * zscale - lse[row]);\n"
    "      if constexpr (DROP) {\n"
    "        const float f = pml_att_keep(z, mat, T, i0 + row, j0 + tx + 16 * c);\n"
    "        ds[r][c] = p[r][c] * (ds[r][c] * f - dd[row]) * scale;\n"
    "        p[r][c] *= f;\n"
    "      } else\n"
    "        ds[r][c] = p[r][c] * (ds[r][c] - dd[row]) * scale;\n"
    "    }\n"
    "}\n"
    "\n"
    "// A B x B tile held as v[r][c] (rows ty + 16 r, columns tx + 16 c) into shared memory.\n"
    "template <int B>\n"
    "__device__ __forceinline__ void pml_att_put(float (*sh)[B + 4], const float (&v)[B / 16][B / 16]) {\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;\n"
    "#pragma unroll\n"
    "  for (int r = 0; r < B / 16; r++)\n"
    "#pragma unroll\n"
    "    for (int c = 0; c < B / 16; c++) sh[ty + 16 * r][tx + 16 * c] = v[r][c];\n"
    "}\n"
    "\n"
    "// Row r's log-sum-exp and D from the slot the STATS launch wrote (g's dq part), rows i0..\n"
    "template <int D, int B, int LD>\n"
    "__device__ __forceinline__ void pml_att_load_stats(float *lse, float *dd, const float *g, int i0, int T) {\n"
    "  for (int r = threadIdx.x; r < B; r += 256) {\n"
    "    const bool in = i0 + r < T;\n"
    "    lse[r] = in ? g[(long long)(i0 + r) * LD] : 0.0f;\n"
    "    dd[r] = in ? g[(long long)(i0 + r) * LD + 1] : 0.0f;\n"
    "  }\n"
    "}\n"
    "\n"
    "// Backward, second launch: dk and dv, one block per B keys, over the query tiles that see\n"
    "// them; g is dq, dk, dv ([3][M][T][D], or qkv's layout), its dq part holding the rows' statistics.\n"
    "template <int D, int DP, int B, bool CAUSAL, typename TQ, typename TK, typename TV, typename TD, int H = 0,\n"
    "          bool DROP = false>\n"
    "__device__ __forceinline__ void pml_att_bwd_kv(const TQ *__restrict__ q, const TK *__restrict__ k,\n"
    "                                               const TV *__restrict__ v, const TD *__restrict__ dout,\n"
    "                                               float *__restrict__ g, int T, int M, float zscale, float scale,\n"
    "                                               pml_att_drop z = pml_att_drop()) {\n"
    "  __align__(16) __shared__ float ks[B][DP + 4];\n"
    "  __align__(16) __shared__ float vs[B][DP + 4];\n"
    "  __align__(16) __shared__ float qs[B][DP + 4];\n"
    "  __align__(16) __shared__ float dos[B][DP + 4];\n"
    "  __align__(16) __shared__ float ps[B][B + 4];\n"
    "  __align__(16) __shared__ float dss[B][B + 4];\n"
    "  __shared__ float lse[B], dd[B];\n"
    "  constexpr int R = B / 16, RD = DP / 16, LI = H ? 3 * H * D : D, LO = H ? H * D : D;\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, tiles = (T + B - 1) / B;\n"
    "  const long long part = H ? (long long)H * D : (long long)M * T * D; // dq to dk, dk to dv\n"
    "  for (long long w = blockIdx.x; w < (long long)M * tiles; w += gridDim.x) {\n"
    "    const int j0 = (int)(w % tiles) * B; // the first key tiles first: under the mask they see the most queries\n"
    "    const long long bi = pml_att_base<D, H, 3>(w / tiles, T), bo = pml_att_base<D, H, 1>(w / tiles, T);\n"
    "    __syncthreads();\n"
    "    pml_att_load<D, DP, B, LI>(ks, k + bi, j0, T);\n"
    "    pml_att_load<D, DP, B, LI>(vs, v + bi, j0, T);\n"
    "    float dk[R][RD], dv[R][RD];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RD; c++) dk[r][c] = 0.0f, dv[r][c] = 0.0f;\n"
    "    for (int i0 = CAUSAL ? j0 : 0; i0 < T; i0 += B) {\n"
    "      __syncthreads(); // qs, dos, ps, dss are free\n"
    "      pml_att_load<D, DP, B, LI>(qs, q + bi, i0, T);\n"
    "      pml_att_load<D, DP, B, LO>(dos, dout + bo, i0, T);\n"
    "      pml_att_load_stats<D, B, LI>(lse, dd, g + bi, i0, T);\n"
    "      __syncthreads();\n"
    "      float p[R][R], ds[R][R];\n"
    "      pml_att_tile_ds<D, DP, B, CAUSAL, DROP>(p, ds, qs, dos, ks, vs, lse, dd, i0, j0, T, zscale, scale, z,\n"
    "                                              w / tiles);\n"
    "      pml_att_put<B>(ps, p);\n"
    "      pml_att_put<B>(dss, ds);\n"
    "      __syncthreads();\n"
    "      pml_att_pb<DP, B, B, R, true>(dv, ps, dos); // dv += pᵀ dout (p after dropout)\n"
    "      pml_att_pb<DP, B, B, R, true>(dk, dss, qs); // dk += dsᵀ q\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RD; c++) {\n"
    "        const int row = j0 + ty + 16 * r, col = tx + 16 * c;\n"
    "        if (row < T && col < D) {\n"
    "          g[part + bi + (long long)row * LI + col] = dk[r][c];\n"
    "          g[2 * part + bi + (long long)row * LI + col] = dv[r][c];\n"
    "        }\n"
    "      }\n"
    "  }\n"
    "}\n"
    "\n"
    "// Backward, third launch: dq, one block per B queries over the key tiles they see; reads\n"
    "// its rows' statistics from their dq slots before overwriting them.\n"
    "template <int D, int DP, int B, bool CAUSAL, typename TQ, typename TK, typename TV, typename TD, int H = 0,\n"
    "          bool DROP = false>\n"
    "__device__ __forceinline__ void pml_att_bwd_q(const TQ *__restrict__ q, const TK *__restrict__ k,\n"
    "                                              const TV *__restrict__ v, const TD *__restrict__ dout,\n"
    "                                              float *__restrict__ g, int T, int M, float zscale, float scale,\n"
    "                                              pml_att_drop z = pml_att_drop()) {\n"
    "  __align__(16) __shared__ float ks[B][DP + 4];\n"
    "  __align__(16) __shared__ float vs[B][DP + 4];\n"
    "  __align__(16) __shared__ float qs[B][DP + 4];\n"
    "  __align__(16) __shared__ float dos[B][DP + 4];\n"
    "  __align__(16) __shared__ float dss[B][B + 4];\n"
    "  __shared__ float lse[B], dd[B];\n"
    "  constexpr int R = B / 16, RD = DP / 16, LI = H ? 3 * H * D : D, LO = H ? H * D : D;\n"
    "  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, tiles = (T + B - 1) / B;\n"
    "  for (long long w = blockIdx.x; w < (long long)M * tiles; w += gridDim.x) {\n"
    "    const int i0 = (tiles - 1 - (int)(w % tiles)) * B;\n"
    "    const long long bi = pml_att_base<D, H, 3>(w / tiles, T), bo = pml_att_base<D, H, 1>(w / tiles, T);\n"
    "    __syncthreads();\n"
    "    pml_att_load<D, DP, B, LI>(qs, q + bi, i0, T);\n"
    "    pml_att_load<D, DP, B, LO>(dos, dout + bo, i0, T);\n"
    "    pml_att_load_stats<D, B, LI>(lse, dd, g + bi, i0, T);\n"
    "    float dq[R][RD];\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RD; c++) dq[r][c] = 0.0f;\n"
    "    const int jend = CAUSAL ? min(T, i0 + B) : T;\n"
    "    for (int j0 = 0; j0 < jend; j0 += B) {\n"
    "      __syncthreads(); // ks, vs, dss are free (and the statistics are read)\n"
    "      pml_att_load<D, DP, B, LI>(ks, k + bi, j0, T);\n"
    "      pml_att_load<D, DP, B, LI>(vs, v + bi, j0, T);\n"
    "      __syncthreads();\n"
    "      float p[R][R], ds[R][R];\n"
    "      pml_att_tile_ds<D, DP, B, CAUSAL, DROP>(p, ds, qs, dos, ks, vs, lse, dd, i0, j0, T, zscale, scale, z,\n"
    "                                              w / tiles);\n"
    "      pml_att_put<B>(dss, ds);\n"
    "      __syncthreads();\n"
    "      pml_att_pb<DP, B, B, R, false>(dq, dss, ks); // dq += ds k\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < R; r++)\n"
    "#pragma unroll\n"
    "      for (int c = 0; c < RD; c++) {\n"
    "        const int row = i0 + ty + 16 * r, col = tx + 16 * c;\n"
    "        if (row < T && col < D) g[bi + (long long)row * LI + col] = dq[r][c];\n"
    "      }\n"
    "  }\n"
    "}\n";

/* The tile sizes for a head dimension padded to dp (cuda_attention.h). */
static int fwd_bk(int dp) { return PMLC_CUDA_ATT_FWD_BK(dp); }
static int bwd_b(int dp) { return PMLC_CUDA_ATT_BWD_B(dp); }
enum { FWD_BQ = PMLC_CUDA_ATT_FWD_BQ };

int cg_attention_launches(const cg *c, int32_t n)
{
    pmlc_opcode op = c->g->nodes.v[n].op;
    return op == OP_ATTENTION_GRAD || op == OP_ATTENTION_QKV_GRAD ? 3 : 1;
}

int64_t cg_attention(cg *c, int32_t n, int part)
{
    const ir_node *x = &c->g->nodes.v[n];
    const pmlc_cshape *qs = &c->shape[x->in[0]];
    int packed = x->op == OP_ATTENTION_QKV || x->op == OP_ATTENTION_QKV_GRAD;
    int grad = x->op == OP_ATTENTION_GRAD || x->op == OP_ATTENTION_QKV_GRAD;
    int64_t H = packed && x->n_attr >= 2 ? x->attr[1] : 0, W = qs->rank >= 2 ? qs->d[qs->rank - 1] : 0;
    int64_t T = qs->rank >= 2 ? qs->d[qs->rank - 2] : 0, D = packed ? (H ? W / (3 * H) : 0) : W;
    /* Operands f32 or bf16 (the kernels compute in f32); the gradient, whose dq slots hold
     * the statistics, f32 (ir/precision.h keeps it so). */
    int typed = x->dtype == PMLC_F32 || (x->dtype == PMLC_BF16 && !grad);
    for (int k = 0; k < x->n_in; k++) {
        pmlc_dtype t = c->g->nodes.v[x->in[k]].dtype;
        typed &= t == PMLC_F32 || t == PMLC_BF16;
    }
    if (!typed || !pmlc_cuda_attention_fits(D)) {
        pmlc_error(&c->P->diag, x->loc,
                   "internal error: the CUDA attention kernels take f32 or bf16 operands, an f32 gradient and a head "
                   "dimension from %d to %d, not %s and %lld (such attention is planned as primitives: ir/expand.h)",
                   PMLC_CUDA_ATTENTION_MIN_D, PMLC_CUDA_ATTENTION_MAX_D, pmlc_dtype_name(x->dtype), (long long)D);
        c->errors++;
        return 0;
    }
    /* The operands: q, k, v, and the gradient's o and dout; packed, q, k and v are one
     * argument at column offsets 0, C and 2C, o and dout its inputs 1 and 2. */
    int src[5] = {0, 1, 2, 3, 4};
    int64_t at[5] = {0};
    if (packed) {
        src[1] = src[2] = 0, src[3] = 1, src[4] = 2;
        at[1] = H * D, at[2] = 2 * H * D;
    }
    const char *ty[5], *arg[5];
    for (int k = 0; k < 5; k++) {
        int used = k < 3 || grad;
        ty[k] = used ? cg_mtype(c->g->nodes.v[x->in[src[k]]].dtype) : "float";
        int a = used ? cg_arg(c, x->in[src[k]], 0) : -1;
        arg[k] = !used   ? "nullptr"
                 : at[k] ? pmlc_arena_printf(&c->P->arena, "a%d + %lld", a, (long long)at[k])
                         : pmlc_arena_printf(&c->P->arena, "a%d", a);
    }
    int64_t M = T && D ? c->numel[x->in[0]] / (T * D) / (packed ? 3 : 1) : 0;
    if (T > INT32_MAX || M > INT32_MAX) { /* the kernels count rows and matrices in int */
        pmlc_error(&c->P->diag, x->loc,
                   "the CUDA attention kernels take fewer than 2^31 rows and matrices, not T = %lld and %lld "
                   "matrices",
                   (long long)T, (long long)M);
        c->errors++;
        return 0;
    }
    int dp = (int)PMLC_CUDA_ATT_DP(D), causal = x->n_attr >= 1 && x->attr[0] != 0;
    /* Dropout on the weights: the kernels draw the dropout op's mask (pml_att_keep), on
     * the launch's seed (all ones outside training). */
    double p = pml_attention_dropout(x->attr, x->n_attr);
    if (!(p >= 0 && p < 1)) {
        pmlc_error(&c->P->diag, x->loc, "internal error: attention's dropout is %g, not in [0, 1)", p);
        c->errors++;
        return 0;
    }
    const char *drop = "", *z = ""; /* the DROP template argument and the call's last, or nothing */
    if (p > 0) {
        c->uses_seed = 1;
        drop = ", true";
        z = pmlc_arena_printf(&c->P->arena, ", pml_att_drop{seed, %lluull, %lluu, %s}", (unsigned long long)x->attr[2],
                              (unsigned long long)ceil(p * 16777216.0),
                              cg_float_lit(c, (double)(float)(1.0 / (1.0 - p))));
    }
    const char *zscale = cg_float_lit(c, (double)(float)(x->fval * 1.4426950408889634)); /* scale · log2 e */
    const char *scale = cg_float_lit(c, (double)(float)x->fval);
    int ay = cg_arg(c, n, 1);
    const char *cz = causal ? "true" : "false";
    int tensor_cores = !strcmp(ty[0], "unsigned short") && !strcmp(ty[1], "unsigned short") &&
                       !strcmp(ty[2], "unsigned short"); /* bf16 q, k, v (typed above: bf16 or f32) */
    if (!grad && tensor_cores) {
        cg_emit(c, "  pml_att_fwd_tc<%lld, %d, %d, %s, %s, %lld%s>(%s, %s, %s, a%d, %lld, %lld, %s%s);\n", (long long)D,
                dp, PMLC_CUDA_ATT_TC_BQ, cz, cg_mtype(x->dtype), (long long)H, drop, arg[0], arg[1], arg[2], ay,
                (long long)T, (long long)M, zscale, z);
        return M * ((T + PMLC_CUDA_ATT_TC_BQ - 1) / PMLC_CUDA_ATT_TC_BQ) * 256;
    }
    if (!grad) {
        cg_emit(c,
                "  pml_att_fwd<%lld, %d, %d, %d, %s, false, %s, %s, %s, float, float, %s, %lld%s>(%s, %s, %s, nullptr, "
                "nullptr, a%d, %lld, %lld, %s%s);\n",
                (long long)D, dp, FWD_BQ, fwd_bk(dp), cz, ty[0], ty[1], ty[2], cg_mtype(x->dtype), (long long)H, drop,
                arg[0], arg[1], arg[2], ay, (long long)T, (long long)M, zscale, z);
        return M * ((T + FWD_BQ - 1) / FWD_BQ) * 256;
    }
    /* the gradient (q, k, v, o, dout) -> g */
    if (part == 0) {
        cg_emit(
            c,
            "  pml_att_fwd<%lld, %d, %d, %d, %s, true, %s, %s, float, %s, %s, float, %lld>(%s, %s, nullptr, %s, %s, "
            "a%d, %lld, %lld, %s);\n",
            (long long)D, dp, FWD_BQ, fwd_bk(dp), cz, ty[0], ty[1], ty[3], ty[4], (long long)H, arg[0], arg[1], arg[3],
            arg[4], ay, (long long)T, (long long)M, zscale);
        return M * ((T + FWD_BQ - 1) / FWD_BQ) * 256;
    }
    int b = bwd_b(dp);
    cg_emit(c,
            "  pml_att_bwd_%s<%lld, %d, %d, %s, %s, %s, %s, %s, %lld%s>(%s, %s, %s, %s, a%d, %lld, %lld, %s, %s%s);\n",
            part == 1 ? "kv" : "q", (long long)D, dp, b, cz, ty[0], ty[1], ty[2], ty[4], (long long)H, drop, arg[0],
            arg[1], arg[2], arg[4], ay, (long long)T, (long long)M, zscale, scale, z);
    return M * ((T + b - 1) / b) * 256;
}

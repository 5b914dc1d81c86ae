/* attention_emulated.cpp — the fused attention kernels' CUDA C templates
 * (compiler/src/gpu/cuda_attention.c), the very text NVRTC compiles (dumped at build
 * time into cuda_attention_src.cuh), compiled for the CPU and run there, so that their
 * tiling, masks, online softmax, grid-stride loops and launch order are checked without
 * a GPU (test_attention_emulated.c).
 *
 * The emulation: a block's 256 threads are 256 fibers (ucontext) on the calling thread,
 * run round-robin: each runs until its next __syncthreads, then hands over to the next,
 * so when thread 0 passes a barrier every thread has reached it (the kernels reach
 * their barriers uniformly, as CUDA requires). A missing barrier therefore shows
 * deterministically whenever a thread reads what a later-numbered thread writes.
 * __shfl_xor_sync is an exchange through memory between two barriers (the kernels call
 * it only where every thread of the block does); __shared__ arrays are statics (blocks
 * run one after another); float4 is four floats (read through a cast, hence
 * -fno-strict-aliasing). Tiles are cuda_attention.h's, as the code generator picks
 * them; the launches are cuda_attention.c's: attention one, attention_grad statistics,
 * dk/dv, dq, with dropout's constants as it writes them. Warps do not exist here, so what this cannot see is a race
 * that only lockstep execution would hide, or the GPU's own arithmetic (exp2f, FMA contraction); gpu_attention checks
 * those on a GPU. */
#include <math.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "gpu/cuda_attention.h"

namespace
{
const unsigned kThreads = 256;
const size_t kStack = 128 * 1024;

struct Dim {
    unsigned x;
};

ucontext_t scheduler, fiber[kThreads];
std::vector<char> stacks(kThreads *kStack);
const std::function<void()> *block_body;
float exchange[kThreads];
} // namespace

static Dim threadIdx, blockIdx, gridDim; /* threadIdx: the fiber running */

/* Hands over to the next thread (after the last, back to the first). */
static void next_thread()
{
    unsigned me = threadIdx.x;
    threadIdx.x = (me + 1) % kThreads;
    swapcontext(&fiber[me], &fiber[threadIdx.x]);
}

/* A thread's life: the body, then the next thread's turn (the last returns to launch). */
static void thread_main()
{
    (*block_body)();
    unsigned me = threadIdx.x;
    if (me + 1 == kThreads) {
        swapcontext(&fiber[me], &scheduler);
        return;
    }
    threadIdx.x = me + 1;
    swapcontext(&fiber[me], &fiber[me + 1]);
}

#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) alignas(n)
struct float4 {
    float x, y, z, w;
};
static inline void __syncthreads() { next_thread(); }
static inline float __int_as_float(int i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
static inline float __shfl_xor_sync(unsigned, float v, int lane_mask)
{
    exchange[threadIdx.x] = v;
    __syncthreads();
    float r = exchange[threadIdx.x ^ (unsigned)lane_mask];
    __syncthreads();
    return r;
}
using std::min;
/* The prelude's type, RNG (core/rng.h's, word for word) and bf16 and f16 conversions
 * (compiler/src/gpu/cuda_prelude.c: core/half.h's rounding, to nearest even, as PTX's cvt.rn),
 * which the kernels call. */
typedef unsigned long long pml_u64;
static inline float pml_bf2f(unsigned short h) { return pml_bf16_to_f32(h); }
static inline unsigned short pml_f2bf(float f) { return pml_f32_to_bf16(f); }
static inline float pml_h2f(unsigned short h) { return pml_f16_to_f32(h); }
static inline unsigned short pml_f2h(float f) { return pml_f32_to_f16(f); }

/* The prelude's tensor-core products (PTX mma.m16n8k16, bf16 or f16 in: DEC decodes an
 * element; f32 accumulators) from their fragments as PTX's ISA lays them out: every
 * thread of the block calls one (the kernels do, uniformly), hands its fragments over
 * through memory, and computes its own accumulators from its warp's 32 threads' fragments. Sums in k order, in f32. One
 * barrier a call: the fragments alternate between two buffers, and a buffer is written
 * again only after the next call's barrier, which every reader of it has passed. */
namespace
{
unsigned mma_a[2][kThreads][4], mma_b[2][kThreads][2], mma_call[kThreads];
}
template <float (*DEC)(unsigned short)>
static void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    const unsigned me = threadIdx.x, warp = me & ~31u, g = (me & 31) >> 2, t = me & 3, k = mma_call[me]++ & 1;
    unsigned(*fa)[4] = mma_a[k], (*fb)[2] = mma_b[k];
    memcpy(fa[me], a, sizeof fa[me]);
    fb[me][0] = b0, fb[me][1] = b1;
    __syncthreads();
    for (unsigned i = 0; i < 4; i++) {
        const unsigned row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float acc = d[i];
        for (unsigned kk = 0; kk < 16; kk++) {
            /* a: lane (row % 8) · 4 + (kk % 8) / 2, register (row >= 8) + 2 (kk >= 8), half kk % 2;
             * b: lane col · 4 + (kk % 8) / 2, register kk >= 8, half kk % 2 */
            unsigned wa = fa[warp + (row & 7) * 4 + ((kk & 7) >> 1)][(row >= 8) + 2 * (kk >= 8)];
            unsigned wb = fb[warp + col * 4 + ((kk & 7) >> 1)][kk >= 8];
            acc += DEC((unsigned short)(wa >> 16 * (kk & 1))) * DEC((unsigned short)(wb >> 16 * (kk & 1)));
        }
        d[i] = acc;
    }
}
static void pml_mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    mma16816<pml_bf2f>(d, a, b0, b1);
}
static void pml_mma16816_f16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    mma16816<pml_h2f>(d, a, b0, b1);
}

#include "cuda_attention_src.cuh"

/* Thread t's fiber, to start at thread_main. Out of line: getcontext returns twice in
 * GCC's eyes, and a caller's loop counter around it draws -Wclobbered. */
static __attribute__((noinline)) void make_fiber(unsigned t)
{
    getcontext(&fiber[t]);
    fiber[t].uc_stack.ss_sp = &stacks[t * kStack];
    fiber[t].uc_stack.ss_size = kStack;
    fiber[t].uc_link = &scheduler;
    makecontext(&fiber[t], thread_main, 0);
}

/* Runs body as `grid` blocks of 256 threads, one block at a time. */
template <class F> static void launch(unsigned grid, const F &body)
{
    const std::function<void()> f = body;
    block_body = &f;
    gridDim.x = grid;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < kThreads; t++) make_fiber(t);
        threadIdx.x = 0;
        swapcontext(&scheduler, &fiber[0]);
    }
}

static unsigned grid_of(int M, int T, int tile, unsigned cap)
{
    long long blocks = (long long)M * ((T + tile - 1) / tile);
    return (unsigned)std::max(1LL, std::min<long long>(blocks, cap));
}

/* Whether the kernels take X as a 16-bit format of the tensor cores (bf16 bits as unsigned
 * short, or f16 as pml_att_f16). */
template <typename X>
constexpr bool kHalf = std::is_same<X, unsigned short>::value || std::is_same<X, pml_att_f16>::value;

/* X: the operands' stored type (float, or a 16-bit format: kHalf); the forward's
 * output is stored as X too, dout and the gradient in f32, as cuda_attention.c calls them
 * in 16-bit plans (dout is a gradient: ir/precision.h keeps it f32). H: the
 * layout (0: matrices end to end; heads: attention_qkv's packed rows, q, k and v then
 * pointers into one qkv tensor at columns 0, C and 2C). z: dropout, when z.kmin (0: none;
 * the statistics launch takes none, as cuda_attention.c calls it). */
template <int D, bool C, typename X, int H, bool DROP>
static void run_drop(int grad, const X *q, const X *k, const X *v, const X *o, const float *dout, X *y, float *g, int T,
                     int M, float zscale, float scale, pml_att_drop z, unsigned cap)
{
    constexpr int DP = PMLC_CUDA_ATT_DP(D), BQ = PMLC_CUDA_ATT_FWD_BQ, BK = PMLC_CUDA_ATT_FWD_BK(DP),
                  B = PMLC_CUDA_ATT_BWD_B(DP);
    if (!grad && kHalf<X>) { /* 16-bit: the tensor cores, as cuda_attention.c */
        constexpr int TQ = PMLC_CUDA_ATT_TC_BQ;
        launch(grid_of(M, T, TQ, cap), [&] {
            if constexpr (kHalf<X>)
                pml_att_fwd_tc<D, DP, TQ, C, false, float, float, X, H, DROP>(q, k, v, nullptr, nullptr, y, T, M,
                                                                              zscale, z);
        });
        return;
    }
    if (!grad) {
        launch(grid_of(M, T, BQ, cap), [&] {
            pml_att_fwd<D, DP, BQ, BK, C, false, X, X, X, float, float, X, H, DROP>(q, k, v, nullptr, nullptr, y, T, M,
                                                                                    zscale, z);
        });
        return;
    }
    if constexpr (kHalf<X>) { /* 16-bit: the tensor cores, as cuda_attention.c */
        constexpr int TQ = PMLC_CUDA_ATT_TC_BQ, QBK = PMLC_CUDA_ATT_TC_Q_BK(DP);
        launch(grid_of(M, T, TQ, cap), [&] {
            pml_att_fwd_tc<D, DP, TQ, C, true, X, float, float, H>(q, k, nullptr, o, dout, g, T, M, zscale);
        });
        launch(grid_of(M, T, TQ, cap),
               [&] { pml_att_bwd_kv_tc<D, DP, TQ, C, float, H, DROP>(q, k, v, dout, g, T, M, zscale, scale, z); });
        launch(grid_of(M, T, TQ, cap),
               [&] { pml_att_bwd_q_tc<D, DP, TQ, QBK, C, float, H, DROP>(q, k, v, dout, g, T, M, zscale, scale, z); });
        return;
    }
    launch(grid_of(M, T, BQ, cap), [&] {
        pml_att_fwd<D, DP, BQ, BK, C, true, X, X, float, X, float, float, H>(q, k, nullptr, o, dout, g, T, M, zscale);
    });
    launch(grid_of(M, T, B, cap),
           [&] { pml_att_bwd_kv<D, DP, B, C, X, X, X, float, H, DROP>(q, k, v, dout, g, T, M, zscale, scale, z); });
    launch(grid_of(M, T, B, cap),
           [&] { pml_att_bwd_q<D, DP, B, C, X, X, X, float, H, DROP>(q, k, v, dout, g, T, M, zscale, scale, z); });
}

/* DR: whether the case is built with dropout too (each instantiation costs compile time). */
template <int D, bool C, bool DR, typename X, int H = 0>
static void run(int grad, const X *q, const X *k, const X *v, const X *o, const float *dout, X *y, float *g, int T,
                int M, float zscale, float scale, pml_att_drop z, unsigned cap)
{
    if constexpr (DR)
        if (z.kmin) return run_drop<D, C, X, H, true>(grad, q, k, v, o, dout, y, g, T, M, zscale, scale, z, cap);
    run_drop<D, C, X, H, false>(grad, q, k, v, o, dout, y, g, T, M, zscale, scale, z, cap);
}

/* Dropout p on key `key` and seed `seed`, as cuda_attention.c writes it into the call. */
static pml_att_drop drop_of(double p, unsigned long long seed, unsigned long long key)
{
    if (p <= 0) return pml_att_drop();
    return pml_att_drop{seed, key, (unsigned)ceil(p * 16777216.0), (float)(1.0 / (1.0 - p))};
}

/* The formats (attention_check.h's att_fmt: 0 f32, 1 bf16, 2 f16) as the kernels store them:
 * from f32 (rounded) and back. */
static void to16(float x, unsigned short *h) { *h = pml_f2bf(x); }
static void to16(float x, pml_att_f16 *h) { h->h = pml_f2h(x); }
static float from16(unsigned short h) { return pml_bf2f(h); }
static float from16(pml_att_f16 h) { return pml_h2f(h.h); }

/* n floats as X (none for a null pointer). */
template <typename X> static std::vector<X> half_of(const float *x, size_t n)
{
    std::vector<X> r(x ? n : 0);
    for (size_t e = 0; x && e < n; e++) to16(x[e], &r[e]);
    return r;
}

/* Pointer to v's data, or null when v is empty. */
template <typename X> static const X *data_or_null(const std::vector<X> &v) { return v.empty() ? nullptr : v.data(); }

/* as(X()) for the 16-bit format fmt asks for (1: bf16, 2: f16) and 1, or 0 when fmt is not
 * among those the case is built for (F16: whether f16 is; each instantiation costs
 * compile time). */
template <bool F16, class F> static int by_format(int fmt, const F &as)
{
    if (fmt == 1) {
        as((unsigned short)0);
        return 1;
    }
    if constexpr (F16)
        if (fmt == 2) {
            as(pml_att_f16{0});
            return 1;
        }
    return 0;
}

/* run<D, C> on f32 operands, or on q, k, v and o's 16-bit values as X (fmt: which, as
 * by_format; dout stays f32), the output back in f32. */
template <int D, bool C, bool DR, bool F16>
static int run_as(int fmt, int grad, const float *q, const float *k, const float *v, const float *o, const float *dout,
                  float *out, int T, int M, float zscale, float scale, pml_att_drop z, unsigned cap)
{
    if (fmt == 0) {
        run<D, C, DR, float>(grad, q, k, v, o, dout, out, out, T, M, zscale, scale, z, cap);
        return 1;
    }
    auto as = [&](auto x) {
        using X = decltype(x);
        size_t n = (size_t)M * T * D;
        std::vector<X> in[4] = {half_of<X>(q, n), half_of<X>(k, n), half_of<X>(v, n), half_of<X>(o, n)},
                       y(grad ? 0 : n);
        run<D, C, DR, X>(grad, data_or_null(in[0]), data_or_null(in[1]), data_or_null(in[2]), data_or_null(in[3]), dout,
                         y.data(), out, T, M, zscale, scale, z, cap);
        for (size_t e = 0; !grad && e < n; e++) out[e] = from16(y[e]);
    };
    return by_format<F16>(fmt, as);
}

/* The cases the test runs, (head dim, causal, with dropout too, in f16 too): templates need
 * them as constants, and only these are instantiated (the emulation's compile time is
 * theirs). */
#define PML_EMU_CASES(X)                                                                                 \
    X(2, true, false, true)                                                                              \
    X(8, false, false, false)                                                                            \
    X(16, false, true, true) X(16, true, true, false) X(64, false, false, false) X(64, true, true, true) \
        X(100, false, true, true) X(100, true, false, false) X(128, true, false, false)
#define PML_EMU_QKV_CASES(X) X(2, true, false, false) X(16, false, false, false) X(64, true, true, true)

extern "C" int pml_emu_attention(int d, int causal, int grad, int fmt, const float *q, const float *k, const float *v,
                                 const float *o, const float *dout, float *out, int T, int M, double scale_d, double p,
                                 unsigned long long seed, unsigned long long key, unsigned grid_cap)
{
    /* as cuda_attention.c writes the constants into the call */
    float zscale = (float)(scale_d * 1.4426950408889634), scale = (float)scale_d;
    pml_att_drop z = drop_of(p, seed, key);
#define PML_EMU_CASE(D, C, DR, F16)                 \
    if (d == D && !causal == !C && (DR || !z.kmin)) \
        return run_as<D, C, DR, F16>(fmt, grad, q, k, v, o, dout, out, T, M, zscale, scale, z, grid_cap);
    PML_EMU_CASES(PML_EMU_CASE)
#undef PML_EMU_CASE
    return 0;
}

template <int D, bool C, bool DR, bool F16>
static int run_qkv(int fmt, int grad, const float *qkv, const float *o, const float *dout, float *out, int T, int M,
                   float zscale, float scale, pml_att_drop z, unsigned cap)
{
    if (fmt == 0) {
        run<D, C, DR, float, 3>(grad, qkv, qkv + 3 * D, qkv + 6 * D, o, dout, out, out, T, M, zscale, scale, z, cap);
        return 1;
    }
    auto as = [&](auto h) {
        using X = decltype(h);
        size_t n = (size_t)M * T * D; /* of o, dout and the forward's output; qkv has 3 n */
        std::vector<X> x = half_of<X>(qkv, 3 * n), xo = half_of<X>(o, n), y(grad ? 0 : n);
        run<D, C, DR, X, 3>(grad, x.data(), x.data() + 3 * D, x.data() + 6 * D, data_or_null(xo), dout, y.data(), out,
                            T, M, zscale, scale, z, cap);
        for (size_t e = 0; !grad && e < n; e++) out[e] = from16(y[e]);
    };
    return by_format<F16>(fmt, as);
}

/* attention_qkv's launches, f32 or on the operands' 16-bit values (fmt as pml_emu_attention's;
 * the forward's output back in f32), 3 heads (the layout's one template argument: the tests take that
 * count): qkv [..., T, 9 d], o and dout [..., T, 3 d], out [..., T, 3 d] or, for the
 * gradient, qkv's shape. M counts matrices, heads included. */
extern "C" int pml_emu_attention_qkv(int d, int causal, int grad, int fmt, const float *qkv, const float *o,
                                     const float *dout, float *out, int T, int M, double scale_d, double p,
                                     unsigned long long seed, unsigned long long key, unsigned grid_cap)
{
    float zscale = (float)(scale_d * 1.4426950408889634), scale = (float)scale_d;
    pml_att_drop z = drop_of(p, seed, key);
#define PML_EMU_CASE(D, C, DR, F16)                 \
    if (d == D && !causal == !C && (DR || !z.kmin)) \
        return run_qkv<D, C, DR, F16>(fmt, grad, qkv, o, dout, out, T, M, zscale, scale, z, grid_cap);
    PML_EMU_QKV_CASES(PML_EMU_CASE)
#undef PML_EMU_CASE
    return 0;
}

/* test_attention_emulated.c — the fused attention kernels' own CUDA C, run on the CPU
 * (attention_emulated.cpp), against the CPU backend's attention op: forward and
 * backward, outputs poisoned first, in shapes that exercise every tile size (head dims
 * 2 to 128, 100 padded to 112), T below, across and not a multiple of the tiles, causal
 * and not, once with a block per tile and once with 2 blocks striding over all tiles;
 * with dropout on the weights (the kernels draw the CPU's mask: a weight of the wrong
 * mask is off by far more than the tolerance); in f32, and with bf16 operands (the CUDA backend's 16-bit storage: the
 * CPU given the same values, within the tensor cores' roundings: att_tolerance), and on some cases with f16 operands
 * (mma's f16 form forward, bf16 backward: f16_backward_range). dout is f32, as 16-bit plans pass it. No GPU needed;
 * gpu_attention runs the same comparison on a GPU. */
#include <stdio.h>
#include <stdlib.h>

#include "attention_check.h"

int pml_emu_attention(int d, int causal, int grad, int fmt, const float *q, const float *k, const float *v,
                      const float *o, const float *dout, float *out, int T, int M, double scale, double p,
                      unsigned long long seed, unsigned long long key, unsigned grid_cap);
int pml_emu_attention_qkv(int d, int causal, int grad, int fmt, const float *qkv, const float *o, const float *dout,
                          float *out, int T, int M, double scale, double p, unsigned long long seed,
                          unsigned long long key, unsigned grid_cap);

enum { QKV_HEADS = 3 }; /* the heads of the packed cases (attention_emulated.cpp's template argument) */

/* A case, and whether it runs with f16 operands too (attention_emulated.cpp instantiates
 * f16 for few cases: each costs compile time). */
typedef struct emu_case {
    att_case c;
    int f16;
} emu_case;

/* "<op>[ (3 heads)], <fmt> operands" for the comparison's line. */
static const char *what_of(int grad, int packed, att_fmt fmt)
{
    static char buf[96];
    static const char *const fmts[] = {"", ", bf16 operands", ", f16 operands"};
    snprintf(buf, sizeof buf, "%s%s%s",
             grad ? (packed ? "attention_qkv_grad" : "attention_grad") : (packed ? "attention_qkv" : "attention"),
             packed ? " (3 heads)" : "", fmts[fmt]);
    return buf;
}

/* attention_qkv's launches on the packed operands of case c ([L, 3, T, D]) against the
 * CPU's attention on the split ones: forward and backward, in f32 and on 16-bit operands
 * (the tensor cores); a block per tile and 2. */
static int packed_case(const emu_case *ec, uint64_t *seed)
{
    const att_case *c = &ec->c;
    int64_t ne = att_numel(c), T = c->dims[2], D = c->dims[3], L = c->dims[0], M = ne / (T * D);
    int failures = 0;
    for (int run = 0; run < (ec->f16 ? 6 : 4); run++) {
        int grad = run & 1;
        att_fmt fmt = (att_fmt)(run >> 1);
        size_t out_n = (size_t)ne * (grad ? 3 : 1);
        float *in[5], *ref = malloc(sizeof(float) * out_n), *got = malloc(sizeof(float) * out_n);
        float *qkv = malloc(sizeof(float) * (size_t)ne * 3), *po = malloc(sizeof(float) * (size_t)ne),
              *pd = malloc(sizeof(float) * (size_t)ne), *pout = malloc(sizeof(float) * out_n);
        for (int j = 0; j < 5; j++) in[j] = malloc(sizeof(float) * (size_t)ne);
        att_operands(in, 5, ne, seed);
        pml_err err = {0};
        if (att_reference(c, grad, fmt, fmt ? 0x0fu : 0, in, ref, &err)) {
            fprintf(stderr, "FAIL: CPU attention: %s\n", err.msg);
            return 1;
        }
        att_qkv_move(qkv, in, 3, L, QKV_HEADS, T, D, 1);
        att_qkv_move(po, &in[3], 1, L, QKV_HEADS, T, D, 1);
        att_qkv_move(pd, &in[4], 1, L, QKV_HEADS, T, D, 1);
        for (int pass = 0; pass < 2; pass++) {
            memset(pout, 0xFF, sizeof(float) * out_n); /* NaN: an unwritten element shows */
            if (!pml_emu_attention_qkv((int)D, c->causal, grad, fmt, qkv, po, pd, pout, (int)T, (int)M, c->scale,
                                       c->dropout, c->seed, c->key, pass ? 2 : 1u << 30)) {
                fprintf(stderr,
                        "FAIL: head dim %lld, causal %d, dropout %g, format %d is not among attention_emulated.cpp's "
                        "cases\n",
                        (long long)D, c->causal, c->dropout, (int)fmt);
                return 1;
            }
            float *parts[3] = {got, got + ne, got + 2 * ne};
            att_qkv_move(pout, parts, grad ? 3 : 1, L, QKV_HEADS, T, D, 0);
            failures += att_compare_to(what_of(grad, 1, fmt), c, pass ? "2 blocks" : "a block per tile", got, ref,
                                       out_n, att_tolerance(fmt, grad));
        }
        for (int j = 0; j < 5; j++) free(in[j]);
        free(ref), free(got), free(qkv), free(po), free(pd), free(pout);
    }
    return failures;
}

/* Case c's launches (the gradient's when grad) on operands in fmt, dout times dout_scale,
 * against the CPU's attention on the same values: with a block per tile, and with 2 blocks
 * when passes is 2. what names the run (NULL: what_of's name). Returns the failures. */
static int split_run(const att_case *c, int grad, att_fmt fmt, float dout_scale, int passes, const char *what,
                     uint64_t *seed)
{
    int64_t ne = att_numel(c), T = c->dims[c->rank - 2], D = c->dims[c->rank - 1], M = ne / (T * D);
    size_t out_n = (size_t)ne * (grad ? 3 : 1);
    float *in[5], *ref = malloc(sizeof(float) * out_n), *got = malloc(sizeof(float) * out_n);
    for (int j = 0; j < 5; j++) in[j] = malloc(sizeof(float) * (size_t)ne);
    att_operands(in, 5, ne, seed);
    for (int64_t e = 0; dout_scale != 1 && e < ne; e++) in[4][e] *= dout_scale;
    pml_err err = {0};
    int failures = 0;
    if (att_reference(c, grad, fmt, fmt ? 0x0fu : 0, in, ref, &err)) {
        fprintf(stderr, "FAIL: CPU attention: %s\n", err.msg);
        failures = 1;
    }
    for (int pass = 0; pass < passes && !failures; pass++) {
        memset(got, 0xFF, sizeof(float) * out_n); /* NaN: an unwritten element shows */
        if (!pml_emu_attention((int)D, c->causal, grad, fmt, in[0], in[1], in[2], in[3], in[4], got, (int)T, (int)M,
                               c->scale, c->dropout, c->seed, c->key, pass ? 2 : 1u << 30)) {
            fprintf(stderr,
                    "FAIL: head dim %lld, causal %d, dropout %g, format %d is not among attention_emulated.cpp's "
                    "cases\n",
                    (long long)D, c->causal, c->dropout, (int)fmt);
            failures = 1;
            break;
        }
        /* 16-bit: the same operand values, on the tensor cores where they run it */
        failures += att_compare_to(what ? what : what_of(grad, 0, fmt), c, pass ? "2 blocks" : "a block per tile", got,
                                   ref, out_n, att_tolerance(fmt, grad));
    }
    for (int j = 0; j < 5; j++) free(in[j]);
    free(ref), free(got);
    return failures;
}

/* f16's backward keeps f32's range: dout, an f32 gradient times f16's loss scale, here far
 * past f16's largest value (65504), gives a finite gradient within bf16's tolerance, as the
 * CPU's f32 arithmetic does (the backward's products are bf16: cuda_attention.c's
 * pml_att_fmt; in f16, dout and dS would round to infinity). */
static int f16_backward_range(uint64_t *seed)
{
    const att_case c = {3, {2, 50, 16}, 0, 0.25, 0, 0, 0};
    return split_run(&c, 1, ATT_F16, 1e6f, 1, "attention_grad, f16 operands, dout 1e6 times larger", seed);
}

int main(void)
{
    /* f16 on the tensor cores at d 64, 16 and 100 (padded to 112: the dq launch's key
     * tiles of 32), with dropout, and the smallest head */
    const emu_case cases[] = {
        {{4, {2, 3, 77, 64}, 1, 0.125, 0, 0, 0}, 0},
        {{3, {2, 77, 64}, 0, 0.3, 0, 0, 0}, 0},
        {{4, {1, 2, 130, 128}, 1, 0.0883883, 0, 0, 0}, 0},
        {{3, {3, 33, 100}, 1, 0.1, 0, 0, 0}, 0},
        {{3, {2, 50, 16}, 0, 0.25, 0, 0, 0}, 0},
        {{3, {1, 5, 2}, 1, 0.7071, 0, 0, 0}, 1},
        {{3, {3, 1, 8}, 0, 0.5, 0, 0, 0}, 0},
        {{3, {1, 70, 16}, 1, 0.25, 0, 0, 0}, 0},
        /* dropout on the weights: each tile size, causal and not */
        {{4, {2, 3, 77, 64}, 1, 0.125, 0.1, 17, 0x5eed}, 1},
        {{3, {3, 33, 100}, 0, 0.1, 0.5, 3, 42}, 1},
        {{3, {1, 70, 16}, 1, 0.25, 0.3, 9, 7}, 0},
        /* several of the tensor cores' 128-row tiles (and of the dk/dv launch's 32-query ones) */
        {{3, {1, 140, 16}, 1, 0.125, 0, 0, 0}, 0},
        {{3, {2, 260, 16}, 0, 0.25, 0.2, 5, 3}, 1},
    };
    int failures = 0;
    uint64_t seed = 11;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int run = 0; run < (cases[i].f16 ? 6 : 4); run++)
            failures += split_run(&cases[i].c, run & 1, (att_fmt)(run >> 1), 1, 2, NULL, &seed);
    /* attention_qkv's layout: [L, 3 heads, T, D] as packed rows */
    const emu_case packed[] = {{{4, {2, 3, 77, 64}, 1, 0.125, 0, 0, 0}, 0},
                               {{4, {1, 3, 33, 16}, 0, 0.25, 0, 0, 0}, 0},
                               {{4, {2, 3, 5, 2}, 1, 0.7, 0, 0, 0}, 0},
                               {{4, {2, 3, 77, 64}, 1, 0.125, 0.2, 11, 99}, 1}};
    for (size_t i = 0; i < sizeof packed / sizeof *packed; i++) failures += packed_case(&packed[i], &seed);
    failures += f16_backward_range(&seed);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}

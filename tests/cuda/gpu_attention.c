/* gpu_attention.c — on a GPU: the fused attention kernels (compiler/src/gpu/
 * cuda_attention.c) of a model, compiled by NVRTC for the device, against the CPU
 * backend's attention op (runtime/src/cpu/attention.c) on the same random operands.
 * For every attention node its launch, for every attention_grad its three launches in
 * order (attention_qkv and its gradient likewise, on packed operands against the CPU's
 * attention on the heads split out), with the outputs poisoned first (all-ones bytes: NaN, so an element left
 * unwritten shows), once with a block per tile and once with 3 blocks (every block then
 * strides over many tiles). The backward pass's o is the CPU's forward output; a node
 * with dropout runs on one seed on both sides (the kernels draw the CPU's mask). Passes
 * when no output is NaN and max |gpu - cpu| <= 1e-4 · max |cpu| for every output
 * (ATT_TC_TOL for what the tensor cores run: attention_check.h's att_tolerance).
 *
 * Without a GPU it prints "SKIP: no GPU: <why>" and exits 77 (CTest: skipped);
 * PML_REQUIRE_GPU=1 makes that a failure.
 *
 * `--set KEY=VALUE` sets a train field (as pmlc's; `precision=bf16` or `f16` gives the
 * kernels 16-bit operands). `gpu_attention --bench MODEL.pml` (bench/gpu/run.sh) instead times each op (CUDA
 * events, median of 11 runs) and prints its TFLOP/s, counting as FlashAttention's
 * papers do: 4 T² d per matrix forward (q kᵀ and p v), half of it under the causal
 * mask, and 2.5 times that backward, whatever the kernels recompute. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention_check.h"
#include "gpu_model.h"

enum { MAX_IN = 5, MAX_ARGS = 8 };

#define fail gpu_model_fail

/* One attention, attention_grad, attention_qkv or attention_qkv_grad node: its launches
 * m.kernels[first .. first + n). A packed node (attention_qkv's) is checked as attention
 * on its heads split out: c's shape is then [L, heads, T, d], L its leading axes'. */
typedef struct att_op {
    int first, n;
    int32_t node;
    int packed;
    att_case c;    /* q's shape, causal, scale */
    int64_t numel; /* of q */
} att_op;

typedef struct run_ctx {
    const pml_cuda_driver *d;
    const pml_cuda_module *mod;
    const pmlc_cuda_module *m;
    const att_op *op;
    pml_cu_ptr buf[MAX_ARGS * 3]; /* per launch, per argument */
    unsigned grid_cap;
    unsigned long long seed; /* dropout's, for the launches that take one */
} run_ctx;

/* Queues the op's launches in order; 0 on success. */
static int run_op(void *p)
{
    run_ctx *r = p;
    for (int l = 0; l < r->op->n; l++) {
        const pmlc_cuda_kernel *kn = &r->m->kernels[r->op->first + l];
        void *params[MAX_ARGS + 1];
        for (int a = 0; a < kn->n_args; a++) params[a] = &r->buf[l * MAX_ARGS + a];
        if (kn->uses_seed) params[kn->n_args] = &r->seed;
        int64_t blocks = (kn->work + kn->block - 1) / kn->block;
        unsigned grid = (unsigned)(blocks < 1 ? 1 : blocks > r->grid_cap ? r->grid_cap : blocks);
        pml_err err = {0};
        if (pml_cuda_launch(r->mod, kn->func, grid, kn->block, params, NULL, &err)) return fail("launch", err.msg);
    }
    return 0;
}

/* The buffer behind node n, as the code generator names it (a reshape's source). */
static int32_t root_of(const pmlc_graph *g, int32_t n)
{
    while (g->nodes.v[n].op == OP_RESHAPE) n = g->nodes.v[n].in[0];
    return n;
}

/* n floats copied to device memory at *p (allocated), as fmt's bits when 16-bit (x holds
 * such values already: att_round); 0 on success. */
static int upload(const pml_cuda_driver *d, pml_cu_ptr *p, const float *x, size_t n, att_fmt fmt)
{
    size_t bytes = (fmt != ATT_F32 ? 2 : 4) * (n ? n : 1);
    uint16_t *h = fmt != ATT_F32 ? malloc(bytes) : NULL;
    for (size_t e = 0; h && e < n; e++) h[e] = att_bits(fmt, x[e]);
    int bad = (fmt != ATT_F32 && !h) || d->MemAlloc(p, bytes) || d->MemcpyHtoD(*p, h ? (const void *)h : x, bytes);
    free(h);
    return bad;
}

/* How node n is stored (the kernels read and write bf16 or f16 bits where 16-bit). */
static att_fmt fmt_of(const pmlc_graph *g, int32_t n)
{
    pmlc_dtype t = g->nodes.v[n].dtype;
    return t == PMLC_BF16 ? ATT_BF16 : t == PMLC_F16 ? ATT_F16 : ATT_F32;
}

/* The node input that holds operand j (q, k, v, o, dout) of x: its own input j, or for a
 * packed node q, k and v in input 0 and o, dout in inputs 1, 2. */
static int32_t operand_node(const ir_node *x, int packed, int j) { return x->in[packed ? (j < 3 ? 0 : j - 2) : j]; }

/* Checks op on the device against the CPU; returns the number of failures. Operands
 * stored in 16 bits are given such values on both sides (the CPU's o too); what the tensor
 * cores run is compared within ATT_TC_TOL(_F16) (att_tolerance). A packed node's
 * operands are packed for the device (att_qkv_move) and its output unpacked. */
static int check_op(const pml_cuda_driver *d, const pml_cuda_module *mod, const pmlc_cuda_module *m,
                    const pmlc_graph *g, const att_op *op)
{
    static uint64_t seed = 1;
    const ir_node *x = &g->nodes.v[op->node];
    int grad = x->op == OP_ATTENTION_GRAD || x->op == OP_ATTENTION_QKV_GRAD, n_in = grad ? 5 : 3, failures = 0;
    int packed = op->packed, n_dev = packed ? (grad ? 3 : 1) : n_in; /* the node's inputs */
    size_t ne = (size_t)op->numel, out_n = ne * (grad ? 3 : 1);
    float *in[MAX_IN] = {0}, *ref = malloc(sizeof(float) * (out_n ? out_n : 1)),
          *got = malloc(sizeof(float) * (out_n ? out_n : 1)), *unpacked = packed ? malloc(sizeof(float) * out_n) : NULL;
    pml_err err = {0};
    for (int j = 0; j < n_in; j++) in[j] = malloc(sizeof(float) * (ne ? ne : 1));
    att_operands(in, n_in, (int64_t)ne, &seed);
    /* Inputs that are one buffer in the kernel (the same node twice) get the same data. */
    for (int j = 0; j < n_in && !packed; j++)
        for (int i = 0; i < j; i++)
            if (root_of(g, x->in[i]) == root_of(g, x->in[j])) memcpy(in[j], in[i], sizeof(float) * ne);
    unsigned half = 0; /* the operands stored in 16 bits, all of q's format */
    att_fmt fmt = fmt_of(g, x->in[0]), out_fmt = fmt_of(g, op->node);
    for (int j = 0; j < n_in; j++) half |= (unsigned)(fmt_of(g, operand_node(x, packed, j)) != ATT_F32) << j;
    if (att_reference(&op->c, grad, fmt, half, in, ref, &err)) return fail("CPU attention", err.msg);
    run_ctx r = {d, mod, m, op, {0}, 0, op->c.seed};
    size_t out_bytes = (out_fmt != ATT_F32 ? 2 : 4) * out_n;
    pml_cu_ptr dev_in[MAX_IN] = {0}, dev_out = 0;
    if (d->MemAlloc(&dev_out, out_bytes ? out_bytes : 16)) return fail("device memory", "cuMemAlloc failed");
    int64_t L = op->c.dims[0], H = op->c.dims[1], T = op->c.dims[2], D = op->c.dims[3];
    for (int j = 0; j < n_dev; j++) { /* node input j: operand j, or packed q, k, v (j 0), o, dout */
        size_t n = packed && j == 0 ? 3 * ne : ne;
        float *host = packed ? malloc(sizeof(float) * (n ? n : 1)) : in[j];
        if (packed) att_qkv_move(host, j == 0 ? in : &in[j + 2], j == 0 ? 3 : 1, L, H, T, D, 1);
        int bad = !host || upload(d, &dev_in[j], host, n, fmt_of(g, x->in[j]));
        if (packed) free(host);
        if (bad) return fail("device memory", "cuMemAlloc/cuMemcpyHtoD failed");
    }
    for (int l = 0; l < op->n; l++) {
        const pmlc_cuda_kernel *kn = &m->kernels[op->first + l];
        for (int a = 0; a < kn->n_args; a++) {
            int32_t node = kn->args[a].node;
            pml_cu_ptr *b = &r.buf[l * MAX_ARGS + a];
            if (kn->args[a].out) *b = dev_out;
            for (int j = 0; j < n_dev && !kn->args[a].out; j++)
                if (root_of(g, x->in[j]) == node) *b = dev_in[j];
            if (!*b) failures += fail("launch arguments", "an argument is neither an input nor the output");
        }
    }
    char what[64];
    snprintf(what, sizeof what, "%s v%d", pmlc_ops[x->op].name, op->node);
    for (int pass = 0; pass < 2 && !failures; pass++) {
        r.grid_cap = pass ? 3 : 65535;
        d->MemsetD8Async(dev_out, 0xFF, out_bytes, NULL);
        if (run_op(&r) || d->StreamSynchronize(NULL)) {
            failures += fail(what, "the launches failed");
            break;
        }
        d->MemcpyDtoH(got, dev_out, out_bytes);
        for (size_t e = out_n; out_fmt != ATT_F32 && e-- > 0;) /* 16-bit in the first half: widened from the end */
            got[e] = att_value(out_fmt, ((const uint16_t *)got)[e]);
        if (packed) { /* [L, T, parts · H · D] rows into the reference's [parts, L, H, T, D] */
            float *parts[3] = {unpacked, unpacked + ne, unpacked + 2 * ne};
            att_qkv_move(got, parts, grad ? 3 : 1, L, H, T, D, 0);
        }
        failures += att_compare_to(what, &op->c, pass ? "3 blocks" : "a block per tile", packed ? unpacked : got, ref,
                                   out_n, att_tolerance(fmt, grad));
    }
    for (int j = 0; j < n_dev; j++) d->MemFree(dev_in[j]);
    for (int j = 0; j < n_in; j++) free(in[j]);
    d->MemFree(dev_out);
    free(ref), free(got), free(unpacked);
    return failures;
}

/* Times op's launches on uninitialised-but-finite operands and prints its TFLOP/s. */
static int bench_op(const pml_cuda_driver *d, const pml_cuda_module *mod, const pmlc_cuda_module *m,
                    const pmlc_graph *g, const att_op *op, double *fwd_ms)
{ /* fwd_ms: per node, the forward's time (the backward's line adds it) */
    const ir_node *x = &g->nodes.v[op->node];
    int grad = x->op == OP_ATTENTION_GRAD || x->op == OP_ATTENTION_QKV_GRAD;
    size_t bytes = sizeof(float) * (size_t)op->numel * (op->packed ? 3 : 1); /* the largest operand */
    run_ctx r = {d, mod, m, op, {0}, 65535, op->c.seed};
    pml_cu_ptr in = 0, out = 0;
    if (d->MemAlloc(&in, bytes) || d->MemAlloc(&out, bytes * 3)) return fail("device memory", "cuMemAlloc failed");
    float *h = malloc(bytes);
    uint64_t seed = 7;
    att_operands(&h, 1, op->numel, &seed);
    att_fmt fmt = fmt_of(g, x->in[0]);
    if (fmt != ATT_F32) { /* every input is the one buffer: 16-bit values as their bits */
        d->MemFree(in);
        if (upload(d, &in, h, (size_t)op->numel, fmt)) return fail("device memory", "cuMemAlloc failed");
    } else
        d->MemcpyHtoD(in, h, bytes);
    d->MemsetD8Async(out, 0, bytes * 3, NULL);
    free(h);
    for (int l = 0; l < op->n; l++) { /* every input is the one buffer: timing does not care */
        const pmlc_cuda_kernel *kn = &m->kernels[op->first + l];
        for (int a = 0; a < kn->n_args; a++) r.buf[l * MAX_ARGS + a] = kn->args[a].out ? out : in;
    }
    double ms = gpu_model_median_ms(d, 11, run_op, &r);
    d->MemFree(in), d->MemFree(out);
    if (ms <= 0) return fail(pmlc_ops[x->op].name, "timing failed");
    int64_t T = op->c.dims[op->c.rank - 2], D = op->c.dims[op->c.rank - 1], M = op->numel / (T * D);
    double flops = 4.0 * (double)M * (double)T * (double)T * (double)D * (x->attr[0] ? 0.5 : 1.0);
    double fwd = grad ? fwd_ms[root_of(g, operand_node(x, op->packed, 3))] : 0;
    if (!grad) {
        fwd_ms[op->node] = ms;
        printf("attention M=%lld T=%lld d=%lld %s: forward %.3f ms, %.2f TFLOP/s\n", (long long)M, (long long)T,
               (long long)D, x->attr[0] ? "causal" : "full", ms, flops / ms / 1e9);
    } else {
        printf("attention M=%lld T=%lld d=%lld %s: backward %.3f ms, %.2f TFLOP/s", (long long)M, (long long)T,
               (long long)D, x->attr[0] ? "causal" : "full", ms, 2.5 * flops / ms / 1e9);
        if (fwd > 0) printf("; forward+backward %.2f TFLOP/s", 3.5 * flops / (ms + fwd) / 1e9);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *sets[8];
    int bench = 0, n_sets = 0, i = 1;
    for (; i < argc - 1; i++) {
        if (!strcmp(argv[i], "--bench"))
            bench = 1;
        else if (!strcmp(argv[i], "--set") && i + 2 < argc && n_sets < 8)
            sets[n_sets++] = argv[++i];
        else
            break;
    }
    if (i != argc - 1) return fprintf(stderr, "usage: gpu_attention [--bench] [--set KEY=VALUE]... MODEL.pml\n"), 2;
    gpu_model X;
    int rc = gpu_model_open(&X, argv[argc - 1], sets, n_sets);
    if (rc) return rc;
    const pmlc_graph *g = X.g;
    const pmlc_cuda_module *m = &X.m;

    int failures = 0, ops = 0;
    double *fwd_ms = calloc((size_t)g->nodes.n + 1, sizeof *fwd_ms);
    for (int k = 0; k < m->n_kernels;) {
        const pmlc_cuda_kernel *kn = &m->kernels[k];
        const ir_node *x = &g->nodes.v[kn->node];
        int packed = x->op == OP_ATTENTION_QKV || x->op == OP_ATTENTION_QKV_GRAD;
        if (kn->func < 0 || (x->op != OP_ATTENTION && x->op != OP_ATTENTION_GRAD && !packed)) {
            k++;
            continue;
        }
        /* dropout, where the node has it, on a training step's seed */
        double p = pml_attention_dropout(x->attr, x->n_attr);
        att_op op = {
            k, 0, kn->node, packed, {0, {0}, x->attr[0] != 0, x->fval, p, p > 0 ? (uint64_t)x->attr[2] : 0, 0x5eed}, 1};
        while (k < m->n_kernels && m->kernels[k].group == kn->group) op.n++, k++;
        const ir_node *q = &g->nodes.v[x->in[0]];
        int64_t dims[PML_MAX_RANK];
        for (int r = 0; r < q->rank; r++) pmlc_size_eval(q->shape[r], X.pl->binding, &dims[r]);
        if (packed) { /* [..., T, 3 heads d] as [L, heads, T, d] */
            int64_t L = 1, H = x->n_attr >= 2 ? x->attr[1] : 0, T = dims[q->rank - 2], W = dims[q->rank - 1];
            for (int r = 0; r < q->rank - 2; r++) L *= dims[r];
            op.c.rank = 4;
            op.c.dims[0] = L, op.c.dims[1] = H, op.c.dims[2] = T, op.c.dims[3] = H > 0 ? W / (3 * H) : 0;
        } else {
            op.c.rank = q->rank;
            memcpy(op.c.dims, dims, sizeof(int64_t) * (size_t)q->rank);
        }
        for (int r = 0; r < op.c.rank; r++) op.numel *= op.c.dims[r];
        int forward = x->op == OP_ATTENTION || x->op == OP_ATTENTION_QKV;
        if (op.n != (forward ? 1 : 3) || kn->n_args > MAX_ARGS) {
            failures += fail(pmlc_ops[x->op].name, "not the launches cuda_attention.c makes");
            continue;
        }
        ops++;
        failures += bench ? bench_op(X.d, &X.mod, m, g, &op, fwd_ms) : check_op(X.d, &X.mod, m, g, &op);
    }
    if (!ops) failures += fail(argv[argc - 1], "no fused attention kernel in the model");
    printf("%d attention ops, %d failures\n", ops, failures);
    gpu_model_close(&X);
    free(fwd_ms);
    return failures ? 1 : 0;
}

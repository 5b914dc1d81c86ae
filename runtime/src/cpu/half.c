/* half.c — pml_cpu_run_half: any op whose operands include 16-bit storage (bf16, f16;
 * docs/design.md, "Mixed precision is storage"). Every op computes in f32 from its
 * operands as stored and rounds its output to its own dtype when it stores it, so the
 * f32 kernels are the arithmetic and this file is the loads and stores around them:
 *   - layout and indexed reads (reshape ... pad, gather, pick, unpick) whose input and
 *     output have the same dtype move bytes and convert nothing: their kernels take
 *     any element size;
 *   - a cast from or to f32 converts once; between 16-bit types, in cache-sized chunks;
 *   - a binary op whose operands and output are bf16 and f32 converts in registers
 *     (elementwise_half.c), at any size, and so does a unary op from bf16 to bf16
 *     (elementwise.c; not exp and sigmoid), and sum_to from bf16 into f32 (reduce.c);
 *   - an element-wise or row op that a tile can run (unary, binary, where, and sum, max
 *     and mean over an axis past the first) runs as a one-op fused group
 *     (pml_cpu_run_group), whose tiles come back here small: each tile's 16-bit
 *     operands are widened into f32 scratch that stays in cache, the f32 kernel runs,
 *     and its output is rounded into place. The conversion is part of the tile loop,
 *     never a whole f32 copy of a tensor;
 *   - attention and its gradient widen one matrix at a time themselves (cpu/attention.c);
 *   - a matrix product of bf16 operands runs on the bf16 GEMM (gemm.h: oneDNN on
 *     AVX512_BF16), which reads them as stored and writes the output's dtype;
 *   - the rest (matrix products that GEMM declines or of f16 operands, reductions over the first axis or all axes, the row
 *     loss, scatter_add, dropout, causal_mask, concat) widen their 16-bit operands into
 *     temporary f32 arrays for the call and round the result back: the f32 GEMM on
 *     f32 panels of 16-bit operands is the fallback of cpu/matmul.c's 16-bit products.
 * Temporaries live in two buffers per thread (the one-op group's scratch and the widened
 * operands: a group's tiles widen while its scratch is in use), grown to the largest call
 * the thread has made and kept until it ends, so steady-state steps allocate nothing
 * here. They are not in the compiler's memory estimate: at most the largest call's
 * temporaries per stage thread, as when they were malloc'd per call; the backend counts
 * them per stage (pml_cpu_half_charge_to) and reports them as its stages' temporaries. */
#include "cpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

/* A tile of a one-op group is at most this many elements of its widest operand, so a
 * call this small widens directly (and a group's tiles never recurse). */
enum { DIRECT_ELEMS = 1 << 14, CHUNK = 1024 };

static int has_half(const pml_op_call *c)
{
    if (pml_cpu_is_half(c->out.dtype)) return 1;
    for (int k = 0; k < c->n_in; k++)
        if (pml_cpu_is_half(c->in[k].dtype)) return 1;
    return 0;
}

/* Whether every operand is bf16 or f32 (has_half: one at least is bf16). */
static int bf16_and_f32(const pml_op_call *c)
{
    for (int k = 0; k < c->n_in; k++)
        if (c->in[k].dtype != PML_BF16 && c->in[k].dtype != PML_F32) return 0;
    return c->out.dtype == PML_BF16 || c->out.dtype == PML_F32;
}

static int is_floating(pml_dtype t) { return t == PML_F32 || pml_cpu_is_half(t); }

/* Layout ops and indexed reads over one element type. */
static int moves_bytes(const pml_op_call *c)
{
    pml_op_class cls = pml_op_class_of(c->op);
    if (cls != PML_OPC_MOVEMENT && !(cls == PML_OPC_GATHER && c->op != PML_OP_SCATTER_ADD)) return 0;
    int n = cls == PML_OPC_GATHER ? 1 : c->n_in; /* a gather's second input is its i32 indices */
    for (int k = 0; k < n; k++)
        if (c->in[k].dtype != c->out.dtype) return 0;
    return 1;
}

static pml_status cast_half(const pml_op_call *c, pml_err *err)
{
    const pml_view *x = &c->in[0];
    if (!is_floating(x->dtype) || !is_floating(c->out.dtype))
        return pml_err_set(err, PML_ERR_UNSUPPORTED, "cast: %s to %s is not supported on the CPU",
                           pml_dtype_name(x->dtype), pml_dtype_name(c->out.dtype));
    if (!pml_cpu_same_shape(x, &c->out)) return pml_err_set(err, PML_ERR_INVALID_ARG, "cast: shapes differ");
    size_t n = (size_t)pml_cpu_numel(x), si = pml_dtype_size(x->dtype), so = pml_dtype_size(c->out.dtype);
    /* from or to f32: one conversion, with no copy through the chunk */
    if (x->dtype == PML_F32 || c->out.dtype == PML_F32) {
        if (x->dtype == PML_F32)
            pml_cpu_narrow(c->out.data, c->out.dtype, x->data, n);
        else
            pml_cpu_widen(c->out.data, x->data, x->dtype, n);
        return PML_OK;
    }
    float buf[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        pml_cpu_widen(buf, (const char *)x->data + i * si, x->dtype, m);
        pml_cpu_narrow((char *)c->out.data + i * so, c->out.dtype, buf, m);
    }
    return PML_OK;
}

/* The ops a tile of a fused group runs (group.c's rule, for one op). */
static int tileable(const pml_op_call *c)
{
    pml_cpu_group_op g = {.call = *c, .from = {-1, -1, -1}};
    return c->out.rank >= 1 && c->n_in <= PML_GROUP_MAX_IN && pml_cpu_group_tileable(&g, 1);
}

enum { GROUP_BUF, WIDE_BUF, N_BUF };

typedef struct thread_bufs {
    void *p[N_BUF];
    size_t bytes[N_BUF];
} thread_bufs;

static _Thread_local thread_bufs bufs;
static pthread_key_t bufs_key;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;

static void bufs_free(void *v)
{
    thread_bufs *b = v;
    for (int i = 0; i < N_BUF; i++) free(b->p[i]), b->p[i] = NULL, b->bytes[i] = 0;
}

static void bufs_init(void) { (void)pthread_key_create(&bufs_key, bufs_free); }

static _Thread_local size_t *charge; /* pml_cpu_half_charge_to's */
static _Thread_local size_t other;   /* pml_cpu_charge_scratch's */

void pml_cpu_half_charge_to(size_t *peak) { charge = peak; }

/* *charge becomes at least what this thread holds (its stage's threads may race). */
static void charge_held(void)
{
    if (!charge) return;
    size_t held = other, was = __atomic_load_n(charge, __ATOMIC_RELAXED);
    for (int i = 0; i < N_BUF; i++) held += bufs.bytes[i];
    while (held > was && !__atomic_compare_exchange_n(charge, &was, held, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* This thread's buffer `which`, at least `bytes` long and 64-byte aligned; NULL when
 * out of memory. */
void pml_cpu_charge_scratch(size_t bytes)
{
    other = bytes;
    charge_held();
}

static void *thread_buf(int which, size_t bytes)
{
    bytes = (bytes + 64) & ~(size_t)63;
    if (bufs.bytes[which] >= bytes) return bufs.p[which];
    pthread_once(&bufs_once, bufs_init);
    void *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    free(bufs.p[which]);
    bufs.p[which] = p, bufs.bytes[which] = bytes;
    charge_held();
    (void)pthread_setspecific(bufs_key, &bufs); /* frees both when the thread ends */
    return p;
}

/* Set while a one-op group runs on this thread: its tiles widen directly, even a tile
 * of one row longer than DIRECT_ELEMS. */
static _Thread_local int in_group;

static pml_status as_group(const pml_op_call *c, pml_err *err)
{
    pml_cpu_group_op g = {.call = *c, .from = {-1, -1, -1}};
    size_t bytes = pml_cpu_group_scratch(&g, 1, 1);
    void *scratch = thread_buf(GROUP_BUF, bytes);
    if (!scratch) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory for a tile", pml_op_name(c->op));
    in_group = 1;
    pml_status s = pml_cpu_run_group(&g, 1, NULL, scratch, bytes, err);
    in_group = 0;
    return s;
}

/* Widens the 16-bit operands into f32 temporaries, runs the f32 kernel and rounds its
 * output into place (an accumulating product first widens what it adds to). */
static pml_status widened(const pml_op_call *c, pml_err *err)
{
    enum { MAX_IN = 64 };
    if (c->n_in > MAX_IN) return pml_err_set(err, PML_ERR_UNSUPPORTED, "an op with more than %d inputs", MAX_IN);
    pml_view in[MAX_IN];
    size_t off[MAX_IN + 1], total = 0, no = (size_t)pml_cpu_numel(&c->out);
    /* offsets of the f32 copies in this thread's buffer, each 64-byte aligned */
    for (int k = 0; k <= c->n_in; k++) {
        int half = k < c->n_in ? pml_cpu_is_half(c->in[k].dtype) : pml_cpu_is_half(c->out.dtype);
        size_t n = k < c->n_in ? (size_t)pml_cpu_numel(&c->in[k]) : no;
        off[k] = half ? total : SIZE_MAX;
        if (half) total += (n * sizeof(float) + 63) & ~(size_t)63;
    }
    static float empty; /* where empty copies point (total 0): nothing is read or written there */
    char *buf = total ? thread_buf(WIDE_BUF, total) : (char *)&empty;
    if (!buf) return pml_err_set(err, PML_ERR_NOMEM, "%s: out of memory widening its operands", pml_op_name(c->op));
    pml_op_call w = *c;
    w.in = in;
    for (int k = 0; k < c->n_in; k++) {
        in[k] = c->in[k];
        if (off[k] == SIZE_MAX) continue;
        pml_cpu_widen((float *)(buf + off[k]), in[k].data, in[k].dtype, (size_t)pml_cpu_numel(&in[k]));
        in[k].data = buf + off[k], in[k].dtype = PML_F32;
    }
    float *out = off[c->n_in] == SIZE_MAX ? NULL : (float *)(buf + off[c->n_in]);
    if (out) {
        if (c->accumulate) pml_cpu_widen(out, c->out.data, c->out.dtype, no);
        w.out.data = out, w.out.dtype = PML_F32;
    }
    /* a product's right operand as panels is f32 only; the widened one is read in place */
    w.panels_b = (pml_cpu_gemm_panels){0};
    pml_status s = pml_cpu_run(&w, err);
    if (!s && out) pml_cpu_narrow(c->out.data, c->out.dtype, out, no);
    return s;
}

pml_status pml_cpu_run_half(const pml_op_call *c, pml_err *err)
{
    if (!has_half(c)) return pml_err_set(err, PML_ERR_INVALID_ARG, "%s: no 16-bit operand", pml_op_name(c->op));
    if (moves_bytes(c)) return pml_cpu_run_family(c, err);
    if (c->op == PML_OP_CAST) return cast_half(c, err);
    if (bf16_and_f32(c) && pml_op_class_of(c->op) == PML_OPC_BINARY && c->n_in == 2 && !c->accumulate)
        return pml_cpu_binary_bf16(c, err);
    if (pml_cpu_unary_bf16_takes(c)) return pml_cpu_unary_bf16(c, err);
    if (c->op == PML_OP_SUM_TO && c->in[0].dtype == PML_BF16 && c->out.dtype == PML_F32)
        return pml_cpu_reduce(c, err); /* widens in registers */
    if (pml_op_class_of(c->op) == PML_OPC_ATTENTION) return pml_cpu_attention(c, err); /* widens per matrix */
    if (c->op == PML_OP_MATMUL) {
        int declined = 0;
        pml_status s = pml_cpu_matmul_bf16(c, &declined, err);
        if (s || !declined) return s;
    }
    if (!in_group && pml_cpu_numel(&c->out) > DIRECT_ELEMS && tileable(c)) return as_group(c, err);
    return widened(c, err);
}

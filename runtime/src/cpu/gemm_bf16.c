/* gemm_bf16.c — bf16 matrix products with f32 accumulation through oneDNN's matmul
 * primitive (gemm.h, "bf16 products").
 *
 * Why the matmul primitive: Debian's oneDNN 2.6 has no public bf16 GEMM
 * (dnnl_gemm_bf16bf16f32 is internal there; dnnl.h declares only the f32 and int8
 * ones), and its matmul picks the brgemm kernels built on vdpbf16ps where the CPU has
 * AVX512_BF16. It writes bf16 or f32 directly, and accumulates with a sum post-op, so
 * no f32 copy of an operand or of the result is ever made.
 *
 * A primitive costs tens of microseconds to create: each thread keeps the last CACHE
 * it made, keyed by everything that shapes one (sizes, leading dimensions, transposes,
 * accumulate, output dtype, threads), with the three memory objects it runs on, whose
 * data handles are set per call. The cache and its stream are freed when the thread
 * ends (a pthread key's destructor).
 *
 * Used only where oneDNN's effective ISA (which honours ONEDNN_MAX_CPU_ISA) includes
 * AVX512_BF16 and a probe primitive builds: below that oneDNN emulates bf16 on
 * AVX512_CORE, slower than the f32 GEMM, so the caller widens to f32 instead
 * (cpu/half.c) and pml_cpu_gemm_bf16_status() says why. */
#include "gemm.h"

#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(PML_BLAS_ONEDNN)
#include <oneapi/dnnl/dnnl.h>

enum { CACHE = 32 };

typedef struct key {
    int64_t m, n, k, lda, ldb, ldc;
    int ta, tb, acc, c_bf16, threads;
} key;

typedef struct entry {
    key k;
    dnnl_primitive_t prim; /* NULL: a free slot */
    dnnl_memory_t a, b, c;
    dnnl_memory_t sp; /* its scratchpad (NULL: it needs none), on the thread's buffer */
    size_t sp_bytes;
} entry;

typedef struct cache {
    dnnl_stream_t stream;
    entry e[CACHE];
    int next;       /* the slot replaced next when all are full (round robin) */
    void *scratch;  /* the scratchpad of every primitive of the thread, grown to the largest */
    size_t scratch_bytes;
} cache;

static dnnl_engine_t engine;
static pthread_key_t cache_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int ready;             /* 1: bf16 products through oneDNN */
static char status_line[160]; /* how products of bf16 operands are computed */

static void drop(entry *e)
{
    if (!e->prim) return;
    dnnl_primitive_destroy(e->prim);
    dnnl_memory_destroy(e->a), dnnl_memory_destroy(e->b), dnnl_memory_destroy(e->c);
    if (e->sp) dnnl_memory_destroy(e->sp);
    memset(e, 0, sizeof *e);
}

static void cache_free(void *v)
{
    cache *C = v;
    for (int i = 0; i < CACHE; i++) drop(&C->e[i]);
    if (C->stream) dnnl_stream_destroy(C->stream);
    free(C->scratch);
    free(C);
}

/* The memory descriptor of a stored rows x cols matrix read as op(X) (r x c). */
static dnnl_status_t md_of(dnnl_memory_desc_t *md, int64_t r, int64_t c, int64_t ld, int t, dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {r, c}, strides = {t ? 1 : ld, t ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

/* A primitive for `k`, and the name of the kernel oneDNN chose copied into impl[cap]
 * (when impl is not NULL: the name belongs to the descriptor, destroyed here). */
static dnnl_status_t build(const key *k, entry *e, char *impl, size_t cap)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_status_t s = md_of(&a, k->m, k->k, k->lda, k->ta, dnnl_bf16);
    if (s == dnnl_success) s = md_of(&b, k->k, k->n, k->ldb, k->tb, dnnl_bf16);
    if (s == dnnl_success) s = md_of(&c, k->m, k->n, k->ldc, 0, k->c_bf16 ? dnnl_bf16 : dnnl_f32);
    dnnl_matmul_desc_t d;
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&d, &a, &b, NULL, &c);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (s == dnnl_success) s = dnnl_primitive_attr_create(&attr);
    /* The scratchpad (oneDNN's blocked copies of the operands, proportional to them) on
     * a buffer of ours, so that the stage counts it (cpu.h, pml_cpu_charge_scratch):
     * in oneDNN's own it was memory no figure showed (docs/design.md). */
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && k->acc) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_primitive_desc_t pd = NULL;
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return s;
    const char *name = NULL;
    if (impl)
        snprintf(impl, cap, "%s",
                 dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name ? name
                                                                                                           : "?");
    memset(e, 0, sizeof *e);
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->sp_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    s = dnnl_primitive_create(&e->prim, pd);
    if (s == dnnl_success) s = dnnl_memory_create(&e->a, &a, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&e->b, &b, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&e->c, &c, engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success && e->sp_bytes) s = dnnl_memory_create(&e->sp, sp, engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        if (e->prim) dnnl_primitive_destroy(e->prim);
        if (e->a) dnnl_memory_destroy(e->a);
        if (e->b) dnnl_memory_destroy(e->b);
        if (e->c) dnnl_memory_destroy(e->c);
        memset(e, 0, sizeof *e);
    }
    return s;
}

/* Decides `ready` once: oneDNN's ISA, then a probe product of odd sizes whose kernel
 * must be one of the AVX512_BF16 ones (its name says so). */
static void init(void)
{
    pml_cpu_isa isa = pml_cpu_gemm_isa(), cpu = pml_cpu_isa_offered();
    if (cpu < PML_ISA_AVX512_BF16) {
        snprintf(status_line, sizeof status_line, "f32 products of the widened bf16 operands: %s %s",
                 pml_cpu_isa_capped() ? "PML_CPU_ISA limits PML to" : "the CPU lacks AVX512_BF16: it offers",
                 pml_cpu_isa_name(cpu));
        return;
    }
    if (isa < PML_ISA_AVX512_BF16) {
        snprintf(status_line, sizeof status_line,
                 "f32 products of the widened bf16 operands: oneDNN is limited to %s (ONEDNN_MAX_CPU_ISA?), below the "
                 "CPU's AVX512_BF16",
                 pml_cpu_isa_name(isa));
        return;
    }
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success || pthread_key_create(&cache_key, cache_free) != 0) {
        snprintf(status_line, sizeof status_line,
                 "f32 products of the widened bf16 operands: oneDNN's CPU engine could not be created");
        return;
    }
    key k = {.m = 7, .n = 33, .k = 65, .lda = 65, .ldb = 33, .ldc = 33, .threads = 1};
    entry e;
    char impl[64];
    dnnl_status_t s = build(&k, &e, impl, sizeof impl);
    if (s != dnnl_success) {
        snprintf(status_line, sizeof status_line,
                 "f32 products of the widened bf16 operands: oneDNN has no bf16 matmul here (status %d)", (int)s);
        return;
    }
    snprintf(status_line, sizeof status_line, "bf16 products: oneDNN %s", impl);
    drop(&e);
    ready = 1;
}

static cache *thread_cache(void)
{
    cache *C = pthread_getspecific(cache_key);
    if (C) return C;
    if (!(C = calloc(1, sizeof *C))) return NULL;
    if (dnnl_stream_create(&C->stream, engine, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(cache_key, C) != 0) {
        cache_free(C);
        return NULL;
    }
    return C;
}

int pml_cpu_gemm_bf16(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                      const uint16_t *b, int64_t ldb, void *c, int c_bf16, int64_t ldc, int threads)
{
    pthread_once(&once, init);
    if (!ready || m <= 0 || n <= 0 || k <= 0 || lda < (op.ta ? m : k) || ldb < (op.tb ? k : n) || ldc < n) return 0;
    cache *C = thread_cache();
    if (!C) return 0;
    key want = {m, n, k, lda, ldb, ldc, op.ta, op.tb, op.acc != 0, c_bf16 != 0, threads > 1 ? threads : 1};
    pml_cpu_gemm_setup(want.threads); /* the calling thread's OpenMP count, before build and run */
    entry *e = NULL;
    for (int i = 0; i < CACHE && !e; i++)
        if (C->e[i].prim && memcmp(&C->e[i].k, &want, sizeof want) == 0) e = &C->e[i];
    if (!e) {
        for (int i = 0; i < CACHE && !e; i++)
            if (!C->e[i].prim) e = &C->e[i];
        if (!e) {
            e = &C->e[C->next];
            C->next = (C->next + 1) % CACHE;
            drop(e);
        }
        if (build(&want, e, NULL, 0) != dnnl_success) return 0;
        e->k = want;
    }
    dnnl_memory_set_data_handle(e->a, (void *)a);
    dnnl_memory_set_data_handle(e->b, (void *)b);
    dnnl_memory_set_data_handle(e->c, c);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}, {DNNL_ARG_SCRATCHPAD, e->sp}};
    if (e->sp_bytes > C->scratch_bytes) {
        size_t bytes = (e->sp_bytes + 63) & ~(size_t)63;
        void *grown = aligned_alloc(64, bytes);
        if (!grown) return 0;
        free(C->scratch);
        C->scratch = grown, C->scratch_bytes = bytes;
        pml_cpu_charge_scratch(bytes);
    }
    if (e->sp) dnnl_memory_set_data_handle(e->sp, C->scratch);
    if (dnnl_primitive_execute(e->prim, C->stream, e->sp ? 4 : 3, args) != dnnl_success) return 0;
    return dnnl_stream_wait(C->stream) == dnnl_success;
}

int pml_cpu_gemm_bf16_ready(void)
{
    pthread_once(&once, init);
    return ready;
}

const char *pml_cpu_gemm_bf16_status(void)
{
    pthread_once(&once, init);
    return status_line;
}

#else /* no oneDNN: no bf16 kernels */

int pml_cpu_gemm_bf16(pml_cpu_gemm_op op, int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                      const uint16_t *b, int64_t ldb, void *c, int c_bf16, int64_t ldc, int threads)
{
    (void)op, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)c_bf16, (void)ldc;
    (void)threads;
    return 0;
}

int pml_cpu_gemm_bf16_ready(void) { return 0; }

const char *pml_cpu_gemm_bf16_status(void)
{
    return "f32 products of the widened bf16 operands: the build has no oneDNN (PML_BLAS)";
}

#endif

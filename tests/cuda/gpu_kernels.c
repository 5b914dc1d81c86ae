/* gpu_kernels.c — on a GPU: every generated kernel of a model, compiled by NVRTC for
 * the device's architecture, loads, launches and writes every element of each output
 * (outputs are poisoned with 0xFF bytes first, so an unwritten element shows), and
 * the device's index-error flag stays clear on valid indices.
 *
 * Without a GPU (no driver, or no device) it prints "SKIP: no GPU: <why>" and exits
 * 77, which CTest reports as skipped; PML_REQUIRE_GPU=1 turns that into a failure.
 * Values are checked end to end against the CPU backend by gpu_train_test.py.
 *
 * `gpu_kernels --bench MODEL.pml` (bench/gpu/run.sh) also times every element-wise and
 * row kernel and the fused cross-entropy's (CUDA events, median of 21 launches) and
 * prints its bandwidth counting each argument once (inputs read, outputs written: the
 * fewest bytes it can move) against a device-to-device copy measured in the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/device.h"
#include "cuda/module.h"
#include "gpu/cuda_build.h"
#include "session_int.h"

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, msg);
    return 1;
}

static int64_t numel(const pmlc_graph *g, const pmlc_plan *pl, int32_t node)
{
    int64_t n = 1, v;
    for (int k = 0; k < g->nodes.v[node].rank; k++) n *= pmlc_size_eval(g->nodes.v[node].shape[k], pl->binding, &v) ? 0 : v;
    return n;
}

/* ---- --bench: bandwidth of the memory-bound kernels ---------------------------------- */

typedef struct timing {
    const char *name;
    const char *kind; /* "elemwise", "row", "xent" */
    double bytes, us;
} timing;

static int by_bytes(const void *a, const void *b)
{
    double x = ((const timing *)a)->bytes, y = ((const timing *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* What --bench times: element-wise and row kernels, and the fused cross-entropy's
 * (single kernels that write an xent or xent_grad); NULL for the rest. */
static const char *timed_kind(const pmlc_graph *g, const pmlc_cuda_kernel *kn)
{
    if (kn->zero_output) return NULL;
    if (kn->kind == PMLC_KERNEL_ELEMWISE) return "elemwise";
    if (kn->kind == PMLC_KERNEL_ROW) return "row";
    for (int a = 0; a < kn->n_args; a++)
        if (kn->args[a].out && pmlc_ops[g->nodes.v[kn->args[a].node].op].cls == PMLC_OPC_ROWLOSS) return "xent";
    return NULL;
}

/* Median microseconds of 21 runs of launch(ctx), timed with events on the default stream. */
static double time_us(const pml_cuda_driver *d, int (*launch)(void *), void *ctx)
{
    enum { RUNS = 21 };
    float ms[RUNS];
    pml_cu_event a, b;
    if (d->EventCreate(&a, 0) || d->EventCreate(&b, 0)) return -1;
    launch(ctx); /* warm */
    for (int r = 0; r < RUNS; r++) {
        d->EventRecord(a, NULL);
        if (launch(ctx)) return -1;
        d->EventRecord(b, NULL);
        d->EventSynchronize(b);
        d->EventElapsedTime(&ms[r], a, b);
    }
    d->EventDestroy(a), d->EventDestroy(b);
    qsort(ms, RUNS, sizeof *ms, by_value);
    return 1e3 * ms[RUNS / 2];
}

typedef struct copy_ctx {
    const pml_cuda_driver *d;
    pml_cu_ptr dst, src;
    size_t bytes;
} copy_ctx;

static int run_copy(void *p)
{
    copy_ctx *c = p;
    return c->d->MemcpyDtoD(c->dst, c->src, c->bytes) != 0;
}

typedef struct launch_ctx {
    const pml_cuda_module *mod;
    int f;
    unsigned grid, block;
    void **params;
} launch_ctx;

static int run_kernel(void *p)
{
    launch_ctx *c = p;
    return pml_cuda_launch(c->mod, c->f, c->grid, c->block, c->params, NULL, NULL) != PML_OK;
}

/* Prints the biggest kernels and the byte-weighted share of copy bandwidth. */
static void report(const pml_cuda_driver *d, timing *t, int n)
{
    copy_ctx c = {d, 0, 0, (size_t)512 << 20};
    if (d->MemAlloc(&c.dst, c.bytes) || d->MemAlloc(&c.src, c.bytes)) return;
    d->MemsetD8Async(c.src, 1, c.bytes, NULL);
    double copy_us = time_us(d, run_copy, &c), copy_gbs = 2.0 * (double)c.bytes / copy_us / 1e3;
    d->MemFree(c.dst), d->MemFree(c.src);
    qsort(t, (size_t)n, sizeof *t, by_bytes);
    printf("device-to-device copy: %.0f GB/s (512 MiB, read + write)\n", copy_gbs);
    printf("%-24s %-8s %10s %10s %8s %7s\n", "kernel", "kind", "MB moved", "us", "GB/s", "of copy");
    double big_bytes = 0, big_us = 0;
    for (int i = 0; i < n; i++) {
        double gbs = t[i].bytes / t[i].us / 1e3;
        if (i < 15)
            printf("%-24.24s %-8s %10.1f %10.1f %8.0f %6.0f%%\n", t[i].name,
                   t[i].kind, t[i].bytes / 1e6, t[i].us, gbs,
                   100 * gbs / copy_gbs);
        if (t[i].bytes >= 16e6) big_bytes += t[i].bytes, big_us += t[i].us;
    }
    if (big_us > 0)
        printf("kernels moving >= 16 MB: %.0f GB/s together, %.0f%% of the copy\n", big_bytes / big_us / 1e3,
               100 * big_bytes / big_us / 1e3 / copy_gbs);
}

int main(int argc, char **argv)
{
    char why[1024];
    int bench = argc == 3 && !strcmp(argv[1], "--bench");
    if (bench) argv++, argc--;
    if (argc != 2) return fprintf(stderr, "usage: gpu_kernels [--bench] MODEL.pml\n"), 2;
    if (pml_cuda_device_count(why, sizeof why) == 0) {
        const char *req = getenv("PML_REQUIRE_GPU");
        printf("SKIP: no GPU: %s\n", why);
        return req && strcmp(req, "0") ? 1 : 77;
    }
    pml_err err = {0};
    pml_cuda_device_info info;
    const pml_cuda_driver *d = pml_cuda_driver_get(&err);
    if (pml_cuda_device_info_get(0, &info, &err)) return fail("device 0", err.msg);
    char arch[16];
    snprintf(arch, sizeof arch, "sm_%d%d", info.cc_major, info.cc_minor);
    printf("device 0: %s (%s, %d SMs)\n", info.name, arch, info.sms);
    pml_cu_device dev;
    pml_cu_context ctx;
    if (d->DeviceGet(&dev, 0) || d->DevicePrimaryCtxRetain(&ctx, dev) || d->CtxSetCurrent(ctx))
        return fail("device 0", "cannot make its context current");

    pmlc_options opt = {0};
    opt.gpu_code = 1;
    opt.diag_out = stderr;
    pmlc_session *s = pmlc_session_create(&opt);
    const pmlc_plan *pl = NULL;
    pmlc_cuda_module m;
    pmlc_cuda_image *im = NULL;
    int n_im = 0;
    if (pmlc_session_check_file(s, argv[1]) || pmlc_session_cuda_build(s, arch, &m, &im, &n_im))
        return fail(argv[1], "codegen or NVRTC failed");
    pmlc_graph *g = pmlc_session_graph(s, &pl);
    const char **names = calloc((size_t)m.n_funcs, sizeof *names);
    for (int f = 1; f < m.n_funcs; f++) names[f] = m.funcs[f].name;
    names[0] = "pml_adamw_f32"; /* the optimizer source holds several; one stands for it */
    pml_cuda_module mod;
    if (pml_cuda_module_load(&mod, im[0].data, names, m.n_funcs, &err)) return fail("module load", err.msg);

    int failures = 0, ran = 0, n_timed = 0;
    timing *timed = calloc((size_t)m.n_kernels + 1, sizeof *timed);
    pml_cu_ptr flag;
    unsigned zero = 0, flag_host = 0;
    if (d->MemAlloc(&flag, 4) || d->MemcpyHtoD(flag, &zero, 4)) return fail("device memory", "cuMemAlloc failed");
    unsigned char *timed_func = calloc((size_t)m.n_funcs + 1, 1);
    for (int k = 0; k < m.n_kernels; k++) {
        const pmlc_cuda_kernel *kn = &m.kernels[k];
        if (kn->func < 0) continue; /* matmuls are cuBLAS */
        if (bench && timed_func && timed_func[kn->func]++) continue; /* once per distinct function */
        pml_cu_ptr *buf = calloc((size_t)kn->n_args, sizeof *buf);
        void **params = calloc((size_t)kn->n_args + 2, sizeof *params);
        size_t *bytes = calloc((size_t)kn->n_args, sizeof *bytes);
        unsigned long long seed = 1234;
        int np = 0;
        for (int a = 0; a < kn->n_args; a++) {
            const ir_node *x = &g->nodes.v[kn->args[a].node];
            bytes[a] = (size_t)numel(g, pl, kn->args[a].node) * (size_t)pmlc_dtype_bytes(x->dtype);
            unsigned char *host = malloc(bytes[a] ? bytes[a] : 1);
            if (kn->args[a].out) /* poison: all-ones bytes are NaN (floats) and -1 (i32) */
                memset(host, kn->zero_output ? 0 : 0xFF, bytes[a]);
            else if (x->dtype == PMLC_I32) /* index 0 is valid for every indexed op */
                memset(host, 0, bytes[a]);
            else
                for (size_t b = 0; b < bytes[a]; b++) /* finite floats of either sign, fast to make */
                    host[b] = (unsigned char)(b % 4 == 3 ? 0x3e | (b * 2654435761u >> 24 & 0x80) : b * 2654435761u >> 13);
            if (d->MemAlloc(&buf[a], bytes[a] ? bytes[a] : 16) || d->MemcpyHtoD(buf[a], host, bytes[a]))
                return fail("device memory", "cuMemAlloc/cuMemcpyHtoD failed");
            free(host);
            params[np++] = &buf[a];
        }
        if (kn->uses_seed) params[np++] = &seed;
        if (kn->checks_index) params[np++] = &flag;
        int64_t blocks = (kn->work + kn->block - 1) / kn->block;
        unsigned grid = (unsigned)(blocks < 1 ? 1 : blocks > 65535 ? 65535 : blocks);
        if (pml_cuda_launch(&mod, kn->func, grid, kn->block, params, NULL, &err) || d->StreamSynchronize(NULL)) {
            failures += fail(names[kn->func], err.msg[0] ? err.msg : "the kernel faulted");
            break;
        }
        ran++;
        if (bench && timed && timed_kind(g, kn)) {
            launch_ctx lc = {&mod, kn->func, grid, kn->block, params};
            timing *t = &timed[n_timed++];
            t->name = names[kn->func], t->kind = timed_kind(g, kn), t->us = time_us(d, run_kernel, &lc);
            for (int a = 0; a < kn->n_args; a++) t->bytes += (double)bytes[a];
            if (t->us <= 0) n_timed--;
        }
        for (int a = 0; a < kn->n_args; a++) {
            if (kn->args[a].out) {
                unsigned char *host = malloc(bytes[a] ? bytes[a] : 1);
                d->MemcpyDtoH(host, buf[a], bytes[a]);
                int elem = pmlc_dtype_bytes(g->nodes.v[kn->args[a].node].dtype);
                for (size_t e = 0; e < bytes[a]; e += (size_t)elem) {
                    int poisoned = 1;
                    for (int b = 0; b < elem; b++) poisoned &= host[e + (size_t)b] == 0xFF;
                    if (poisoned) {
                        char msg[160];
                        snprintf(msg, sizeof msg, "kernel %d left element %zu of output v%d unwritten", k,
                                 e / (size_t)elem, kn->args[a].node);
                        failures += fail(names[kn->func], msg);
                        break;
                    }
                }
                free(host);
            }
            d->MemFree(buf[a]);
        }
        free(buf), free(params), free(bytes);
    }
    d->MemcpyDtoH(&flag_host, flag, 4);
    if (flag_host) failures += fail("index flag", "set by valid (zero) indices");
    printf("%d kernels launched, %d failures\n", ran, failures);
    if (bench) report(d, timed, n_timed);
    free(timed), free(timed_func);
    pml_cuda_module_free(&mod);
    pmlc_cuda_images_free(im, n_im);
    free(names);
    pmlc_session_destroy(s);
    return failures ? 1 : 0;
}

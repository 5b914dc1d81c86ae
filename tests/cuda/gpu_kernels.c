/* gpu_kernels.c — on a GPU: every generated kernel of a model, compiled by NVRTC for
 * the device's architecture, loads, launches and writes every element of each output
 * (outputs are poisoned with 0xFF bytes first, so an unwritten element shows; a group
 * of several launches, attention_grad's, runs them all on shared buffers first), and
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

#include "gpu_model.h"

#define fail gpu_model_fail

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
    double copy_us = 1e3 * gpu_model_median_ms(d, 21, run_copy, &c);
    double copy_gbs = 2.0 * (double)c.bytes / copy_us / 1e3;
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
    int bench = argc == 3 && !strcmp(argv[1], "--bench");
    if (bench) argv++, argc--;
    if (argc != 2) return fprintf(stderr, "usage: gpu_kernels [--bench] MODEL.pml\n"), 2;
    gpu_model X;
    int rc = gpu_model_open(&X, argv[1], NULL, 0);
    if (rc) return rc;
    const pml_cuda_driver *d = X.d;
    const pmlc_plan *pl = X.pl;
    const pmlc_graph *g = X.g;
    const pmlc_cuda_module m = X.m;
    const char **names = X.names;
    const pml_cuda_module mod = X.mod;
    pml_err err = {0};

    int failures = 0, ran = 0, n_timed = 0;
    timing *timed = calloc((size_t)m.n_kernels + 1, sizeof *timed);
    pml_cu_ptr flag;
    unsigned zero = 0, flag_host = 0;
    if (d->MemAlloc(&flag, 4) || d->MemcpyHtoD(flag, &zero, 4)) return fail("device memory", "cuMemAlloc failed");
    unsigned char *timed_func = calloc((size_t)m.n_funcs + 1, 1);
    for (int k = 0; k < m.n_kernels; k++) {
        const pmlc_cuda_kernel *kn = &m.kernels[k];
        if (kn->func < 0) continue; /* matmuls are cuBLAS */
        /* A group's launches in a row (attention_grad's three) share their buffers and
         * are checked after the last. */
        int last = k;
        while (last + 1 < m.n_kernels && m.kernels[last + 1].group == kn->group) last++;
        if (bench && timed_func && timed_func[kn->func]++) {
            k = last;
            continue; /* once per distinct function */
        }
        int n_nodes = 0, cap = 0;
        for (int l = k; l <= last; l++) cap += m.kernels[l].n_args;
        int32_t *node = calloc((size_t)cap + 1, sizeof *node);
        uint8_t *is_out = calloc((size_t)cap + 1, 1);
        pml_cu_ptr *buf = calloc((size_t)cap + 1, sizeof *buf);
        size_t *bytes = calloc((size_t)cap + 1, sizeof *bytes);
        void **params = calloc((size_t)cap + 2, sizeof *params);
        pml_cu_ptr *args = calloc((size_t)cap + 1, sizeof *args);
        unsigned long long seed = 1234;
        for (int l = k; l <= last; l++)
            for (int a = 0; a < m.kernels[l].n_args; a++) {
                int32_t x = m.kernels[l].args[a].node, i = 0;
                while (i < n_nodes && node[i] != x) i++;
                if (i == n_nodes) node[n_nodes++] = x;
                is_out[i] |= m.kernels[l].args[a].out;
            }
        for (int i = 0; i < n_nodes; i++) {
            const ir_node *x = &g->nodes.v[node[i]];
            bytes[i] = (size_t)numel(g, pl, node[i]) * (size_t)pmlc_dtype_bytes(x->dtype);
            unsigned char *host = malloc(bytes[i] ? bytes[i] : 1);
            if (is_out[i]) /* poison: all-ones bytes are NaN (floats) and -1 (i32) */
                memset(host, kn->zero_output ? 0 : 0xFF, bytes[i]);
            else if (x->dtype == PMLC_I32) /* index 0 is valid for every indexed op */
                memset(host, 0, bytes[i]);
            else
                for (size_t b = 0; b < bytes[i]; b++) /* finite floats of either sign, fast to make */
                    host[b] = (unsigned char)(b % 4 == 3 ? 0x3e | (b * 2654435761u >> 24 & 0x80) : b * 2654435761u >> 13);
            if (d->MemAlloc(&buf[i], bytes[i] ? bytes[i] : 16) || d->MemcpyHtoD(buf[i], host, bytes[i]))
                return fail("device memory", "cuMemAlloc/cuMemcpyHtoD failed");
            free(host);
        }
        int ok = 1;
        for (int l = k; l <= last && ok; l++) {
            const pmlc_cuda_kernel *kl = &m.kernels[l];
            int np = 0;
            for (int a = 0; a < kl->n_args; a++) {
                int i = 0;
                while (node[i] != kl->args[a].node) i++;
                args[a] = buf[i];
                params[np++] = &args[a];
            }
            if (kl->uses_seed) params[np++] = &seed;
            if (kl->checks_index) params[np++] = &flag;
            int64_t blocks = (kl->work + kl->block - 1) / kl->block;
            unsigned grid = (unsigned)(blocks < 1 ? 1 : blocks > 65535 ? 65535 : blocks);
            if (pml_cuda_launch(&mod, kl->func, grid, kl->block, params, NULL, &err) || d->StreamSynchronize(NULL)) {
                failures += fail(names[kl->func], err.msg[0] ? err.msg : "the kernel faulted");
                ok = 0;
            }
            ran++;
            if (ok && bench && timed && timed_kind(g, kl)) {
                launch_ctx lc = {&mod, kl->func, grid, kl->block, params};
                timing *t = &timed[n_timed++];
                t->name = names[kl->func], t->kind = timed_kind(g, kl);
                t->us = 1e3 * gpu_model_median_ms(d, 21, run_kernel, &lc);
                for (int i = 0; i < n_nodes; i++) t->bytes += (double)bytes[i];
                if (t->us <= 0) n_timed--;
            }
        }
        if (!ok) break;
        for (int i = 0; i < n_nodes; i++) {
            if (is_out[i]) {
                unsigned char *host = malloc(bytes[i] ? bytes[i] : 1);
                d->MemcpyDtoH(host, buf[i], bytes[i]);
                int elem = pmlc_dtype_bytes(g->nodes.v[node[i]].dtype);
                for (size_t e = 0; e < bytes[i]; e += (size_t)elem) {
                    int poisoned = 1;
                    for (int b = 0; b < elem; b++) poisoned &= host[e + (size_t)b] == 0xFF;
                    if (poisoned) {
                        char msg[160];
                        snprintf(msg, sizeof msg, "kernel %d left element %zu of output v%d unwritten", last,
                                 e / (size_t)elem, node[i]);
                        failures += fail(names[m.kernels[last].func], msg);
                        break;
                    }
                }
                free(host);
            }
            d->MemFree(buf[i]);
        }
        free(node), free(is_out), free(buf), free(bytes), free(params), free(args);
        k = last;
    }
    d->MemcpyDtoH(&flag_host, flag, 4);
    if (flag_host) failures += fail("index flag", "set by valid (zero) indices");
    printf("%d kernels launched, %d failures\n", ran, failures);
    if (bench) report(d, timed, n_timed);
    free(timed), free(timed_func);
    gpu_model_close(&X);
    return failures ? 1 : 0;
}

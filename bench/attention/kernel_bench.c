/* kernel_bench.c — the fused attention kernel alone (cpu/attention.c), forward and
 * backward of one call at the GPT example's shape ([8, 4, 64, 32]: micro-batch 8, 4
 * heads, T = 64, d = 32, causal) by default, in three ways, interleaved:
 *   f32        f32 operands, f32 output and gradient;
 *   bf16       bf16 q, k, v, o and do (the kernel widens each matrix in its scratch),
 *              bf16 output, f32 gradient (the op table's dtypes);
 *   bf16-whole the same values widened whole into f32 tensors first and the output
 *              rounded after, as cpu/half.c ran 16-bit attention before the kernel took
 *              16-bit operands (issue 15, 2026-12-07).
 * Prints the CPU microseconds (this process's CPU time, so a shared machine's other
 * work counts less than in wall time) of one forward + backward, each way's median over
 * the rounds. Built with the runtime, never run as a test:
 *   build/bench/attention/pml_bench_attention [ROUNDS [REPS [n [d]]]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cpu/convert.h"
#include "cpu/cpu.h"

static double cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return 1e6 * (double)t.tv_sec + 1e-3 * (double)t.tv_nsec;
}

static pml_view tensor(pml_dtype t, int rank, const int64_t *dims)
{
    pml_view v = {.dtype = t, .rank = rank};
    size_t n = 1;
    for (int i = 0; i < rank; i++) v.dims[i] = dims[i], n *= (size_t)dims[i];
    v.data = calloc(n, pml_dtype_size(t));
    if (!v.data) exit((fprintf(stderr, "out of memory\n"), 1));
    return v;
}

static void run(pml_opcode op, const pml_view *in, int n_in, pml_view out)
{
    int64_t causal = 1;
    pml_op_call c = {.op = op, .attr = &causal, .n_attr = 1, .fval = 0.17, .n_in = n_in, .in = in, .out = out};
    pml_err err = {0};
    if (pml_cpu_run(&c, &err)) exit((fprintf(stderr, "%s: %s\n", pml_op_name(op), err.msg), 1));
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7, reps = argc > 2 ? atoi(argv[2]) : 100;
    int64_t n = argc > 3 ? atoll(argv[3]) : 64, d = argc > 4 ? atoll(argv[4]) : 32;
    if (rounds < 1 || rounds > 99 || reps < 1 || n < 1 || d < 1)
        return fprintf(stderr, "usage: %s [ROUNDS 1-99 [REPS [n [d]]]]\n", argv[0]), 2;
    int64_t dims[4] = {8, 4, n, d}, gdims[5] = {3, 8, 4, n, d};
    size_t all = (size_t)(32 * n * d);
    pml_view f32[5], b16[5], wide[5];
    for (int i = 0; i < 5; i++) {
        f32[i] = tensor(PML_F32, 4, dims), b16[i] = tensor(PML_BF16, 4, dims), wide[i] = tensor(PML_F32, 4, dims);
        for (size_t x = 0; x < all; x++) ((float *)f32[i].data)[x] = (float)rand() / (float)RAND_MAX * 2 - 1;
        pml_cpu_narrow(b16[i].data, PML_BF16, f32[i].data, all);
    }
    pml_view o32 = tensor(PML_F32, 4, dims), o16 = tensor(PML_BF16, 4, dims), g = tensor(PML_F32, 5, gdims);
    double t[3][99];
    for (int r = 0; r < rounds; r++)
        for (int way = 0; way < 3; way++) {
            double t0 = cpu_us();
            for (int k = 0; k < reps; k++) {
                if (way == 0) {
                    run(PML_OP_ATTENTION, f32, 3, o32), run(PML_OP_ATTENTION_GRAD, f32, 5, g);
                } else if (way == 1) {
                    run(PML_OP_ATTENTION, b16, 3, o16), run(PML_OP_ATTENTION_GRAD, b16, 5, g);
                } else {
                    for (int i = 0; i < 3; i++) pml_cpu_widen(wide[i].data, b16[i].data, PML_BF16, all);
                    run(PML_OP_ATTENTION, wide, 3, o32);
                    pml_cpu_narrow(o16.data, PML_BF16, o32.data, all);
                    for (int i = 0; i < 5; i++) pml_cpu_widen(wide[i].data, b16[i].data, PML_BF16, all);
                    run(PML_OP_ATTENTION_GRAD, wide, 5, g);
                }
            }
            t[way][r] = (cpu_us() - t0) / reps;
        }
    static const char *const names[3] = {"f32", "bf16", "bf16-whole"};
    printf("attention forward + backward, [8, 4, %lld, %lld] causal, median of %d rounds of %d:\n", (long long)n,
           (long long)d, rounds, reps);
    for (int way = 0; way < 3; way++) {
        qsort(t[way], (size_t)rounds, sizeof(double), by_value);
        printf("  %-10s %8.1f CPU us\n", names[way], t[way][rounds / 2]);
    }
    return 0;
}

/* cpu_test.c — the harness (see cpu_test.h) and main: `test_cpu NAME` runs one test. */
#include "cpu_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "cpu_tests.h"

int t_failures, t_checks;
const pml_dtype t_float_types[2] = {PML_F32, PML_F64};
static uint64_t t_state = 1;

void t_seed(uint64_t s) { t_state = s * 0x9e3779b97f4a7c15ull + 1; }

uint64_t t_u64(void)
{
    uint64_t z = (t_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int t_int(int lo, int hi) { return lo + (int)(t_u64() % (uint64_t)(hi - lo + 1)); }
double t_unit(void) { return (double)(t_u64() >> 11) * 0x1.0p-53; }

int64_t t_numel(const pml_view *v)
{
    int64_t n = 1;
    for (int k = 0; k < v->rank; k++) n *= v->dims[k];
    return n;
}

pml_view t_new(pml_dtype t, int rank, const int64_t *dims)
{
    pml_view v = {0};
    v.dtype = t;
    v.rank = rank;
    for (int k = 0; k < rank; k++) v.dims[k] = dims[k];
    int64_t n = t_numel(&v);
    v.data = malloc((size_t)(n ? n : 1) * pml_dtype_size(t));
    if (!v.data) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) t_set(&v, i, NAN);
    return v;
}

void t_free(pml_view *v)
{
    free(v->data);
    v->data = NULL;
}

double t_get(const pml_view *v, int64_t i)
{
    switch (v->dtype) {
    case PML_F32:
        return ((const float *)v->data)[i];
    case PML_F64:
        return ((const double *)v->data)[i];
    case PML_BF16:
        return pml_bf16_to_f32(((const uint16_t *)v->data)[i]);
    case PML_F16:
        return pml_f16_to_f32(((const uint16_t *)v->data)[i]);
    default:
        return ((const int32_t *)v->data)[i];
    }
}

void t_set(pml_view *v, int64_t i, double x)
{
    switch (v->dtype) {
    case PML_F32:
        ((float *)v->data)[i] = (float)x;
        break;
    case PML_F64:
        ((double *)v->data)[i] = x;
        break;
    case PML_BF16:
        ((uint16_t *)v->data)[i] = pml_f32_to_bf16((float)x);
        break;
    case PML_F16:
        ((uint16_t *)v->data)[i] = pml_f32_to_f16((float)x);
        break;
    default:
        ((int32_t *)v->data)[i] = x != x ? INT32_MIN + 7 : (int32_t)x;
        break;
    }
}

void t_fill_rand(pml_view *v, double lo, double hi)
{
    int64_t n = t_numel(v);
    for (int64_t i = 0; i < n; i++)
        t_set(v, i, v->dtype == PML_I32 ? (double)t_int((int)lo, (int)hi) : lo + (hi - lo) * t_unit());
}

void t_rand_dims(int rank, int64_t *dims, int lo, int hi)
{
    for (int k = 0; k < rank; k++) dims[k] = t_int(lo, hi);
}

const char *t_dims_str(int rank, const int64_t *dims)
{
    static char buf[8][128];
    static int slot;
    char *b = buf[slot++ & 7];
    int n = snprintf(b, 128, "[");
    for (int k = 0; k < rank; k++) n += snprintf(b + n, (size_t)(128 - n), k ? ",%lld" : "%lld", (long long)dims[k]);
    snprintf(b + n, (size_t)(128 - n), "]");
    return b;
}

void t_unravel(int64_t i, int rank, const int64_t *dims, int64_t *idx)
{
    for (int k = rank - 1; k >= 0; k--) {
        idx[k] = dims[k] ? i % dims[k] : 0;
        i = dims[k] ? i / dims[k] : 0;
    }
}

int64_t t_bcast_index(const pml_view *v, int rank, const int64_t *idx)
{
    int64_t off = 0;
    for (int k = 0; k < v->rank; k++) {
        int64_t i = idx[rank - v->rank + k];
        off = off * v->dims[k] + (v->dims[k] == 1 ? 0 : i);
    }
    return off;
}

pml_status t_run(pml_opcode op, const pml_view *in, int n_in, pml_view *out, const int64_t *attr, int n_attr,
                 double fval, pml_err *err)
{
    pml_op_call c = {0};
    c.op = op;
    c.attr = attr;
    c.n_attr = n_attr;
    c.fval = fval;
    c.n_in = n_in;
    c.in = in;
    c.out = *out;
    c.seed = 1234;
    c.threads = t_int(0, 2);
    return pml_cpu_run(&c, err);
}

int t_run_ok(pml_opcode op, const pml_view *in, int n_in, pml_view *out, const int64_t *attr, int n_attr, double fval)
{
    pml_err err = {0};
    pml_status s = t_run(op, in, n_in, out, attr, n_attr, fval, &err);
    TCHECK(s == PML_OK, "%s failed: %s", pml_op_name(op), err.msg);
    return s == PML_OK;
}

int t_compare(const char *what, const pml_view *out, const double *ref, double tol, double eps)
{
    int64_t n = t_numel(out);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = t_get(out, i), r = ref[i];
        int ok;
        if (out->dtype == PML_I32)
            ok = g == r;
        else if (r != r)
            ok = g != g;
        else if (isinf(r))
            ok = g == r;
        else
            ok = fabs(g - r) <= tol + fabs(r) * eps;
        if (!ok && bad++ < 5)
            fprintf(stderr, "  %s (%s): element %lld: got %.9g, want %.9g\n", what, pml_dtype_name(out->dtype),
                    (long long)i, g, r);
    }
    TCHECK(bad == 0, "%s: %d of %lld elements differ", what, bad, (long long)n);
    return bad;
}

int t_compare_default(const char *what, const pml_view *out, const double *ref)
{
    if (out->dtype == PML_F32) return t_compare(what, out, ref, 1e-5, 1e-5);
    return t_compare(what, out, ref, 1e-12, 1e-12);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
#define CPU_TEST(name) {#name, test_##name},
#include "cpu_tests.def"
#undef CPU_TEST
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_cpu NAME | --list\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (strcmp(argv[1], "--list") == 0)
            printf("%s\n", tests[i].name);
        else if (strcmp(argv[1], tests[i].name) == 0) {
            t_seed(i + 1);
            tests[i].fn();
            printf("cpu.%s: %d checks, %d failed\n", tests[i].name, t_checks, t_failures);
            return t_failures != 0;
        }
    }
    if (strcmp(argv[1], "--list") == 0) return 0;
    fprintf(stderr, "test_cpu: no test '%s'\n", argv[1]);
    return 2;
}

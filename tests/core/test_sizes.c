/* test_sizes.c — symbolic size arithmetic (types.c): products and exact quotients
 * of sizes with symbols, sums only between like sizes, overflow caught everywhere,
 * and the text forms diagnostics print. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "ir/ops.h"
#include "ir/types.h"

static pmlc_symtab syms = {{"B", "T"}, 2};

static const char *str(pmlc_size s)
{
    static char buf[64];
    return pmlc_size_str(s, &syms, buf, sizeof buf);
}

static void products_and_quotients(void)
{
    pmlc_size B = pmlc_size_sym(0), T = pmlc_size_sym(1), r, q;
    CHECK(pmlc_size_mul(B, T, &r) == PMLC_SIZE_OK);
    CHECK(pmlc_size_mul(r, pmlc_size_int(768), &r) == PMLC_SIZE_OK);
    CHECK(!strcmp(str(r), "768*B*T"));
    CHECK(pmlc_size_div(r, pmlc_size_int(12), &q) == PMLC_SIZE_OK && !strcmp(str(q), "64*B*T"));
    CHECK(pmlc_size_div(r, T, &q) == PMLC_SIZE_OK && !strcmp(str(q), "768*B"));
    CHECK(pmlc_size_div(B, T, &q) == PMLC_SIZE_INEXACT);
    CHECK(pmlc_size_div(pmlc_size_int(10), pmlc_size_int(4), &q) == PMLC_SIZE_INEXACT);
    CHECK(pmlc_size_div(pmlc_size_int(10), pmlc_size_int(0), &q) == PMLC_SIZE_ZERO);
    CHECK(pmlc_size_eq(B, pmlc_size_sym(0)) && !pmlc_size_eq(B, T) && !pmlc_size_eq(B, pmlc_size_int(1)));
}

static void sums_need_like_sizes(void)
{
    pmlc_size B = pmlc_size_sym(0), T = pmlc_size_sym(1), r;
    CHECK(pmlc_size_add(B, B, 1, &r) == PMLC_SIZE_OK && !strcmp(str(r), "2*B"));
    CHECK(pmlc_size_add(B, B, -1, &r) == PMLC_SIZE_OK && pmlc_size_is_const(r) && r.coef == 0);
    CHECK(pmlc_size_add(B, T, 1, &r) == PMLC_SIZE_SYMBOLIC);
    CHECK(pmlc_size_add(T, pmlc_size_int(1), 1, &r) == PMLC_SIZE_SYMBOLIC);
    CHECK(pmlc_size_add(pmlc_size_int(0), T, 1, &r) == PMLC_SIZE_OK && pmlc_size_eq(r, T));
    CHECK(pmlc_size_mod(pmlc_size_int(128), pmlc_size_int(5), &r) == PMLC_SIZE_OK && r.coef == 3);
    CHECK(pmlc_size_mod(T, pmlc_size_int(5), &r) == PMLC_SIZE_SYMBOLIC);
}

static void overflow_is_an_error(void)
{
    pmlc_size big = pmlc_size_int(INT64_MAX / 2 + 1), r;
    CHECK(pmlc_size_mul(big, pmlc_size_int(2), &r) == PMLC_SIZE_OVERFLOW);
    CHECK(pmlc_size_add(pmlc_size_int(INT64_MAX), pmlc_size_int(1), 1, &r) == PMLC_SIZE_OVERFLOW);
    CHECK(pmlc_size_div(pmlc_size_int(INT64_MIN), pmlc_size_int(-1), &r) == PMLC_SIZE_OVERFLOW);
    pmlc_shape sh = {2, {pmlc_size_int(1 << 30), pmlc_size_int(1 << 30)}};
    CHECK(pmlc_shape_numel(&sh, &r) == PMLC_SIZE_OVERFLOW); /* 2^60 elements is past the 2^48 limit */
    int64_t binding[PMLC_MAX_SYMS] = {INT64_MAX, 2}, v;
    CHECK(pmlc_size_eval(pmlc_size_sym(0), binding, &v) == PMLC_SIZE_OK && v == INT64_MAX);
    pmlc_size bt;
    CHECK(pmlc_size_mul(pmlc_size_sym(0), pmlc_size_sym(1), &bt) == PMLC_SIZE_OK);
    CHECK(pmlc_size_eval(bt, binding, &v) == PMLC_SIZE_OVERFLOW);
}

static void types_print_as_written(void)
{
    char buf[128];
    pmlc_shape sh = {3, {pmlc_size_sym(0), pmlc_size_sym(1), pmlc_size_int(65)}};
    CHECK(!strcmp(pmlc_type_str(PMLC_BF16, &sh, &syms, buf, sizeof buf), "bf16[B, T, 65]"));
    pmlc_shape scalar = {0, {{0}}};
    CHECK(!strcmp(pmlc_type_str(PMLC_F32, &scalar, &syms, buf, sizeof buf), "f32[]"));
    CHECK(pmlc_dtype_from_name("i32") == PMLC_I32 && pmlc_dtype_from_name("f64") == -1);
    CHECK(pmlc_dtype_bytes(PMLC_BF16) == 2 && pmlc_dtype_bytes(PMLC_F32) == 4);
}

/* The op table and the shared op list (pml/ops.def) agree row by row, and every row
 * has a shape rule unless it is a source. */
static void op_table_matches_shared_list(void)
{
    static const char *const names[] = {
#define PML_OP(e, name, ...) name,
#include "pml/ops.def"
#undef PML_OP
    };
    CHECK(sizeof names / sizeof *names == OP_COUNT);
    for (int i = 0; i < OP_COUNT; i++) {
        CHECK(pmlc_ops[i].name && !strcmp(pmlc_ops[i].name, names[i]));
        CHECK(pmlc_ops[i].cls == PMLC_OPC_SOURCE || pmlc_ops[i].infer != NULL);
    }
}

int main(void)
{
    op_table_matches_shared_list();
    products_and_quotients();
    sums_need_like_sizes();
    overflow_is_an_error();
    types_print_as_written();
    return check_summary("sizes");
}

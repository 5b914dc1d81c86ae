/* types.c — see types.h. */
#include "ir/types.h"

#include <stdio.h>
#include <string.h>

static const char *const dtype_names[] = {"f32", "bf16", "f16", "i32"};
static const int dtype_bytes[] = {4, 2, 2, 4};

const char *pmlc_dtype_name(pmlc_dtype t) { return (unsigned)t < PMLC_DTYPE_COUNT ? dtype_names[t] : "?"; }
int pmlc_dtype_bytes(pmlc_dtype t) { return (unsigned)t < PMLC_DTYPE_COUNT ? dtype_bytes[t] : 0; }

int pmlc_dtype_from_name(const char *name)
{
    for (int i = 0; i < PMLC_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_names[i])) return i;
    return -1;
}

pmlc_size pmlc_size_sym(int sym)
{
    pmlc_size s = pmlc_size_int(1);
    s.pow[sym] = 1;
    return s;
}

int pmlc_size_is_const(pmlc_size s)
{
    for (int i = 0; i < PMLC_MAX_SYMS; i++)
        if (s.pow[i]) return 0;
    return 1;
}

static int same_syms(pmlc_size a, pmlc_size b) { return !memcmp(a.pow, b.pow, sizeof a.pow); }

int pmlc_size_eq(pmlc_size a, pmlc_size b) { return a.coef == b.coef && same_syms(a, b); }

pmlc_size_err pmlc_size_mul(pmlc_size a, pmlc_size b, pmlc_size *out)
{
    pmlc_size r;
    if (__builtin_mul_overflow(a.coef, b.coef, &r.coef)) return PMLC_SIZE_OVERFLOW;
    for (int i = 0; i < PMLC_MAX_SYMS; i++) {
        if (a.pow[i] + b.pow[i] > 60) return PMLC_SIZE_OVERFLOW;
        r.pow[i] = (uint8_t)(a.pow[i] + b.pow[i]);
    }
    *out = r;
    return PMLC_SIZE_OK;
}

pmlc_size_err pmlc_size_div(pmlc_size a, pmlc_size b, pmlc_size *out)
{
    if (b.coef == 0) return PMLC_SIZE_ZERO;
    if (b.coef == -1 && a.coef == INT64_MIN) return PMLC_SIZE_OVERFLOW;
    if (a.coef % b.coef) return PMLC_SIZE_INEXACT;
    pmlc_size r;
    r.coef = a.coef / b.coef;
    for (int i = 0; i < PMLC_MAX_SYMS; i++) {
        if (a.pow[i] < b.pow[i]) return PMLC_SIZE_INEXACT;
        r.pow[i] = (uint8_t)(a.pow[i] - b.pow[i]);
    }
    *out = r;
    return PMLC_SIZE_OK;
}

pmlc_size_err pmlc_size_mod(pmlc_size a, pmlc_size b, pmlc_size *out)
{
    if (!pmlc_size_is_const(a) || !pmlc_size_is_const(b)) return PMLC_SIZE_SYMBOLIC;
    if (b.coef == 0) return PMLC_SIZE_ZERO;
    if (b.coef == -1) {
        *out = pmlc_size_int(0);
        return PMLC_SIZE_OK;
    }
    *out = pmlc_size_int(a.coef % b.coef);
    return PMLC_SIZE_OK;
}

pmlc_size_err pmlc_size_add(pmlc_size a, pmlc_size b, int sign, pmlc_size *out)
{
    /* 0 is the one size that adds to anything. */
    if (a.coef != 0 && b.coef != 0 && !same_syms(a, b)) return PMLC_SIZE_SYMBOLIC;
    pmlc_size r = a.coef != 0 ? a : b;
    int64_t v;
    if (sign > 0 ? __builtin_add_overflow(a.coef, b.coef, &v) : __builtin_sub_overflow(a.coef, b.coef, &v))
        return PMLC_SIZE_OVERFLOW;
    r.coef = v;
    if (v == 0) memset(r.pow, 0, sizeof r.pow);
    *out = r;
    return PMLC_SIZE_OK;
}

pmlc_size_err pmlc_size_eval(pmlc_size s, const int64_t *binding, int64_t *out)
{
    int64_t v = s.coef;
    for (int i = 0; i < PMLC_MAX_SYMS; i++)
        for (int k = 0; k < s.pow[i]; k++)
            if (__builtin_mul_overflow(v, binding[i], &v)) return PMLC_SIZE_OVERFLOW;
    *out = v;
    return PMLC_SIZE_OK;
}

char *pmlc_size_str(pmlc_size s, const pmlc_symtab *syms, char *buf, size_t cap)
{
    size_t n = 0;
    int any = 0;
    buf[0] = 0;
    if (s.coef != 1 || pmlc_size_is_const(s)) {
        n += (size_t)snprintf(buf + n, cap - n, "%lld", (long long)s.coef);
        any = 1;
    }
    for (int i = 0; i < PMLC_MAX_SYMS && n < cap; i++) {
        for (int k = 0; k < s.pow[i] && n < cap; k++) {
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", any ? "*" : "", syms && i < syms->n ? syms->names[i] : "?");
            any = 1;
        }
    }
    return buf;
}

char *pmlc_type_str(pmlc_dtype t, const pmlc_shape *sh, const pmlc_symtab *syms, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s[", pmlc_dtype_name(t));
    for (int i = 0; i < sh->rank && n < cap; i++) {
        char d[96];
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", pmlc_size_str(sh->d[i], syms, d, sizeof d));
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

pmlc_size_err pmlc_shape_numel(const pmlc_shape *sh, pmlc_size *out)
{
    pmlc_size r = pmlc_size_int(1);
    for (int i = 0; i < sh->rank; i++) {
        pmlc_size_err e = pmlc_size_mul(r, sh->d[i], &r);
        if (e) return e;
        if (r.coef > PMLC_MAX_ELEMS || r.coef < 0) return PMLC_SIZE_OVERFLOW;
    }
    *out = r;
    return PMLC_SIZE_OK;
}

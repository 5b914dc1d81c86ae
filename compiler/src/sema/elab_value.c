/* elab_value.c — compile-time values: constructors, descriptions for messages, and
 * the checked conversions every other part of elaboration uses ("must be an integer,
 * not a tensor f32[B, 10]"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pml_parser.h"
#include "sema/elab_int.h"

const pmlc_value pmlc_v_err = {PMLC_V_ERR, 0, {0, {0}}, 0, NULL, NULL, -1};
const pmlc_value pmlc_v_none = {PMLC_V_NONE, 0, {0, {0}}, 0, NULL, NULL, -1};

pmlc_value pmlc_v_size(pmlc_size s)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_INT;
    v.i = s;
    return v;
}
pmlc_value pmlc_v_int(int64_t i) { return pmlc_v_size(pmlc_size_int(i)); }
pmlc_value pmlc_v_float(double f)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_FLOAT;
    v.f = f;
    return v;
}
pmlc_value pmlc_v_bool(int b)
{
    pmlc_value v = pmlc_v_none;
    v.k = PMLC_V_BOOL;
    v.i.coef = b != 0;
    return v;
}
pmlc_value pmlc_v_tensor(int32_t t)
{
    pmlc_value v = pmlc_v_none;
    v.k = t < 0 ? PMLC_V_ERR : PMLC_V_TENSOR;
    v.t = t;
    return v;
}

/* ---- messages ------------------------------------------------------------------- */

const char *pmlc_value_desc(pmlc_program *P, const pmlc_graph *g, pmlc_value v, char *buf, size_t cap)
{
    char t[256];
    switch (v.k) {
    case PMLC_V_ERR:
        snprintf(buf, cap, "an erroneous value");
        break;
    case PMLC_V_NONE:
        snprintf(buf, cap, "nothing (a call that returns no value)");
        break;
    case PMLC_V_INT:
        snprintf(buf, cap, "%s %s", pmlc_size_is_const(v.i) ? "the integer" : "the size",
                 pmlc_size_str(v.i, &P->syms, t, sizeof t));
        break;
    case PMLC_V_FLOAT:
        snprintf(buf, cap, "the number %g", v.f);
        break;
    case PMLC_V_BOOL:
        snprintf(buf, cap, "the boolean %s", v.i.coef ? "true" : "false");
        break;
    case PMLC_V_STR:
        snprintf(buf, cap, "a string");
        break;
    case PMLC_V_DTYPE:
        snprintf(buf, cap, "the type %s", pmlc_dtype_name((pmlc_dtype)v.t));
        break;
    case PMLC_V_LIST:
        snprintf(buf, cap, "a list of %d", v.n);
        break;
    case PMLC_V_DEVICE:
        snprintf(buf, cap, "the device %s:%lld", v.s, (long long)v.i.coef);
        break;
    case PMLC_V_TENSOR: {
        const ir_node *n = &g->nodes.v[v.t];
        pmlc_shape sh = {n->rank, {{0}}};
        memcpy(sh.d, n->shape, sizeof(pmlc_size) * (size_t)n->rank);
        snprintf(buf, cap, "a tensor %s", pmlc_type_str(n->dtype, &sh, &P->syms, t, sizeof t));
        break;
    }
    }
    return buf;
}

const char *pmlc_desc(E_t *E, pmlc_value v, char *buf, size_t cap) { return pmlc_value_desc(E->P, E->g, v, buf, cap); }

int pmlc_over_limit(E_t *E, pmlc_loc loc)
{
    if (E->aborted) return 1;
    if (++E->work > PMLC_MAX_WORK) {
        pmlc_error(&E->P->diag, loc, "compile-time work limit reached (%d steps): the program is too large",
                   PMLC_MAX_WORK);
        E->aborted = 1;
        return 1;
    }
    return 0;
}

/* ---- conversions ---------------------------------------------------------------- */

int pmlc_want_size(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, pmlc_size *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_INT) {
        pmlc_error(&E->P->diag, loc, "%s must be an integer, not %s", what, pmlc_desc(E, v, d, sizeof d));
        return 1;
    }
    *out = v.i;
    return 0;
}

int pmlc_want_int(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int64_t *out)
{
    char d[200];
    pmlc_size s;
    if (pmlc_want_size(E, v, loc, what, &s)) return 1;
    if (!pmlc_size_is_const(s)) {
        pmlc_error(&E->P->diag, loc, "%s must be a constant integer, not %s", what, pmlc_desc(E, v, d, sizeof d));
        return 1;
    }
    *out = s.coef;
    return 0;
}

int pmlc_want_number(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, double *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k == PMLC_V_FLOAT)
        *out = v.f;
    else if (v.k == PMLC_V_INT && pmlc_size_is_const(v.i))
        *out = (double)v.i.coef;
    else {
        pmlc_error(&E->P->diag, loc, "%s must be a number, not %s", what, pmlc_desc(E, v, d, sizeof d));
        return 1;
    }
    return 0;
}

int pmlc_want_bool(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k != PMLC_V_BOOL) {
        pmlc_error(&E->P->diag, loc, "%s must be true or false, not %s", what, pmlc_desc(E, v, d, sizeof d));
        return 1;
    }
    *out = (int)v.i.coef;
    return 0;
}

int pmlc_want_tensor(E_t *E, pmlc_value v, pmlc_loc loc, const char *what, int32_t like, int32_t *out)
{
    char d[200];
    if (v.k == PMLC_V_ERR) return 1;
    if (v.k == PMLC_V_TENSOR) {
        *out = v.t;
        return 0;
    }
    double f;
    if ((v.k == PMLC_V_FLOAT || (v.k == PMLC_V_INT && pmlc_size_is_const(v.i))) && E->g) {
        f = v.k == PMLC_V_FLOAT ? v.f : (double)v.i.coef;
        pmlc_dtype dt = like >= 0 ? E->g->nodes.v[like].dtype : PMLC_F32;
        pmlc_shape scalar = {0, {{0}}};
        *out = pmlc_emit_source(E, OP_CONST, dt, &scalar, f, loc);
        return *out < 0;
    }
    pmlc_error(&E->P->diag, loc, "%s must be a tensor, not %s", what, pmlc_desc(E, v, d, sizeof d));
    return 1;
}

int pmlc_axis(E_t *E, int64_t axis, int rank, pmlc_loc loc, int *out)
{
    if (axis < -rank || axis >= rank) {
        pmlc_error(&E->P->diag, loc, "axis %lld is out of range for a tensor of rank %d (use %d..%d)", (long long)axis,
                   rank, -rank, rank - 1);
        return 1;
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

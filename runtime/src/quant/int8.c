/* int8.c — int8 weights files: quantize, write, check and read back (int8.h). */
#include "quant/int8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/finite.h"
#include "formats/safetensors.h"
#include "formats/st_shards.h"
#include "plan/ops.h"

void pml_quant_rows_i8(const float *w, int64_t rows, int64_t cols, int8_t *q, float *scale)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        float m = 0;
        for (int64_t i = 0; i < cols; i++) m = fmaxf(m, fabsf(x[i]));
        float s = m > 0 ? m / 127.0f : 1.0f; /* an all-zero row: any positive scale is exact */
        scale[r] = s;
        for (int64_t i = 0; i < cols; i++) {
            float v = nearbyintf(x[i] / s);
            q[r * cols + i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

void pml_quant_dequant_rows_i8(const int8_t *q, const float *scale, int64_t rows, int64_t cols, float *w)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < cols; i++) w[r * cols + i] = (float)q[r * cols + i] * scale[r];
}

static int swaps_2d(const pml_plan_node *n)
{
    return n->op == PML_OP_PERMUTE && n->rank == 2 && n->n_in == 1 && n->n_attr == 2 && n->attr[0] == 1 &&
           n->attr[1] == 0;
}

void pml_quant_linear_weights(const pml_plan *plan, uint8_t *is_linear)
{
    memset(is_linear, 0, (size_t)plan->n_params);
    for (int i = 0; i < plan->n_nodes; i++) {
        const pml_plan_node *n = &plan->nodes[i];
        if (n->op != PML_OP_MATMUL || n->pass != 0 || n->n_in != 2) continue;
        const pml_plan_node *b = &plan->nodes[n->in[1]];
        if (!swaps_2d(b)) continue;
        for (int q = 0; q < plan->n_params; q++)
            if (plan->params[q].node == b->in[0] && plan->nodes[b->in[0]].rank == 2 && !plan->params[q].teacher)
                is_linear[q] = 1;
    }
    /* A weight tied across stages is one tensor in the files: linear only when every
     * stage reads it as one (an output projection tied to an embedding's gather is not). */
    for (int q = 0; q < plan->n_params; q++)
        if (plan->params[q].tie >= 0 && !is_linear[q]) is_linear[plan->params[q].tie] = 0;
    for (int q = 0; q < plan->n_params; q++)
        if (plan->params[q].tie >= 0) is_linear[q] = is_linear[plan->params[q].tie];
}

int pml_quant_is_quantized(const char *path)
{
    struct stat sb;
    pml_st_file *f = NULL;
    pml_err err = {0};
    if (stat(path, &sb) || S_ISDIR(sb.st_mode) || pml_st_open(path, &f, &err)) return 0;
    const char *v = pml_st_metadata(f, PML_QUANT_KEY);
    int yes = v != NULL; /* any value: the loader refuses a format it does not know */
    pml_st_close(f);
    return yes;
}

static int model_param(const pml_plan_param *p) { return !p->teacher && !p->apart; }

static int same_shape(const pml_st_tensor *t, const pml_plan_node *n)
{
    int same = t->rank == n->rank;
    for (int d = 0; same && d < n->rank; d++) same = t->shape[d] == n->dims[d];
    return same;
}

/* A tensor of positive finite F32 scales, `count` of them (rank 1), or what is wrong. */
static pml_status check_scales(const pml_st_tensor *s, const char *path, int64_t count, const char *what, pml_err *err)
{
    if (s->dtype != PML_F32 || s->rank != 1 || s->shape[0] != count)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' must be F32 [%lld] (%s)", path, s->name,
                           (long long)count, what);
    for (int64_t r = 0; r < count; r++) {
        float v;
        memcpy(&v, (const float *)s->data + r, sizeof v); /* the file aligns data as it likes */
        if (!isfinite(v) || !(v > 0))
            return pml_err_set(err, PML_ERR_FORMAT,
                               "%s: tensor '%s' element %lld is %g (scales must be finite and > 0)", path, s->name,
                               (long long)r, (double)v);
    }
    return PML_OK;
}

/* The checks of int8.h's "Reading" for parameter q; *scale set for an int8 one, and
 * *in_scale where it has a static activation scale. */
static pml_status check_param(const pml_plan *plan, const pml_st_file *f, const char *path, int q,
                              const uint8_t *linear, const pml_st_tensor **scale, const pml_st_tensor **in_scale,
                              pml_err *err)
{
    const pml_plan_param *prm = &plan->params[q];
    const pml_plan_node *n = &plan->nodes[prm->node];
    const pml_st_tensor *t = pml_st_find(f, prm->name);
    char sname[1024];
    snprintf(sname, sizeof sname, "%s%s", prm->name, PML_QUANT_INPUT_SCALE_SUFFIX);
    const pml_st_tensor *a = pml_st_find(f, sname);
    *scale = *in_scale = NULL;
    if (!t) return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is missing", path, prm->name);
    if (!same_shape(t, n))
        return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' does not have the plan's shape", path, prm->name);
    if (a && t->dtype != PML_I8)
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: tensor '%s' is a static activation scale, but '%s' is not an int8 weight", path, sname,
                           prm->name);
    if (t->dtype == PML_F32) {
        size_t k = pml_finite_scan_f32(t->data, t->nbytes / 4);
        if (k < t->nbytes / 4)
            return pml_err_set(err, PML_ERR_NONFINITE, "%s: tensor '%s' is %s at element %zu", path, prm->name,
                               pml_finite_name_f32(t->data, k), k);
        return PML_OK;
    }
    const char *dt = pml_st_dtype_name(t->dtype);
    if (t->dtype != PML_I8)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32 or I8", path, prm->name,
                           dt ? dt : "?");
    if (!linear[q])
        return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is I8, but it is not a linear layer's weight", path,
                           prm->name);
    snprintf(sname, sizeof sname, "%s%s", prm->name, PML_QUANT_SCALE_SUFFIX);
    const pml_st_tensor *s = pml_st_find(f, sname);
    if (!s) return pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is I8 but '%s' is missing", path, prm->name, sname);
    pml_status st = check_scales(s, path, n->dims[0], "one scale per output channel", err);
    if (!st && a) st = check_scales(a, path, 1, "one static scale for the layer's input", err);
    *scale = s;
    *in_scale = a;
    return st;
}

/* Whether `name` is parameter prm's name followed by `suffix`. */
static int named_for(const char *name, const pml_plan_param *prm, const char *suffix)
{
    size_t len = strlen(prm->name);
    return !strncmp(name, prm->name, len) && !strcmp(name + len, suffix);
}

void pml_quant_i8_free(pml_quant_i8 *k)
{
    for (int q = 0; q < k->n; q++) {
        if (k->q) free(k->q[q]);
        if (k->scale) free(k->scale[q]);
    }
    free(k->q), free(k->scale), free(k->in_scale);
    *k = (pml_quant_i8){0};
}

pml_status pml_quant_load(const pml_plan *plan, pml_pipeline *p, const char *path, int serve_int8, pml_quant_i8 *keep,
                          int *n_int8, int *n_served, pml_err *err)
{
    pml_st_file *f = NULL;
    *n_int8 = 0;
    if (n_served) *n_served = 0;
    if (keep) {
        *keep = (pml_quant_i8){.n = plan->n_params};
        keep->q = calloc((size_t)plan->n_params + 1, sizeof *keep->q);
        keep->scale = calloc((size_t)plan->n_params + 1, sizeof *keep->scale);
        keep->in_scale = calloc((size_t)plan->n_params + 1, sizeof *keep->in_scale);
        if (!keep->q || !keep->scale || !keep->in_scale) {
            pml_quant_i8_free(keep);
            return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
        }
    }
    pml_status st = pml_st_open(path, &f, err);
    if (st) {
        if (keep) pml_quant_i8_free(keep);
        return st;
    }
    const char *fmt = pml_st_metadata(f, PML_QUANT_KEY);
    uint8_t *linear = malloc((size_t)plan->n_params + 1);
    const pml_st_tensor **scales = calloc((size_t)plan->n_params + 1, sizeof *scales);
    const pml_st_tensor **in_scales = calloc((size_t)plan->n_params + 1, sizeof *in_scales);
    if (!linear || !scales || !in_scales) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st && (!fmt || strcmp(fmt, PML_QUANT_FORMAT)))
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: metadata %s is '%.60s', expected '%s'", path, PML_QUANT_KEY,
                         fmt ? fmt : "", PML_QUANT_FORMAT);
    if (!st) pml_quant_linear_weights(plan, linear);
    size_t known = 0;
    int with = -1, without = -1; /* an int8 weight with a static activation scale, one without */
    for (int q = 0; q < plan->n_params && !st; q++)
        if (model_param(&plan->params[q])) {
            st = check_param(plan, f, path, q, linear, &scales[q], &in_scales[q], err);
            known += 1 + (scales[q] != NULL) + (in_scales[q] != NULL);
            if (scales[q] && in_scales[q]) with = q;
            if (scales[q] && !in_scales[q]) without = q;
        }
    if (!st && with >= 0 && without >= 0)
        st = pml_err_set(err, PML_ERR_FORMAT,
                         "%s: '%s' has a static activation scale but '%s%s' is missing (a calibrated file has one for "
                         "every int8 weight)",
                         path, plan->params[with].name, plan->params[without].name, PML_QUANT_INPUT_SCALE_SUFFIX);
    const char *act = st ? NULL : pml_st_metadata(f, PML_QUANT_ACT_KEY);
    const char *act_want = with >= 0 ? PML_QUANT_ACT_STATIC : PML_QUANT_ACT_DYNAMIC;
    if (!st && (with >= 0 || act) && (!act || strcmp(act, act_want)))
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: metadata %s is '%.60s', but the file's int8 weights %s, so '%s'",
                         path, PML_QUANT_ACT_KEY, act ? act : "",
                         with >= 0 ? "have static activation scales" : "have none", act_want);
    if (!st && known != pml_st_count(f)) /* something the model does not have */
        for (size_t i = 0; i < pml_st_count(f) && !st; i++) {
            const char *name = pml_st_tensor_at(f, i)->name;
            int used = 0;
            for (int q = 0; q < plan->n_params && !used; q++)
                used = model_param(&plan->params[q]) &&
                       (!strcmp(name, plan->params[q].name) ||
                        (scales[q] && named_for(name, &plan->params[q], PML_QUANT_SCALE_SUFFIX)) ||
                        (in_scales[q] && named_for(name, &plan->params[q], PML_QUANT_INPUT_SCALE_SUFFIX)));
            if (!used)
                st = pml_err_set(err, PML_ERR_FORMAT, "%s: unknown tensor '%s' (not part of this model)", path, name);
        }
    for (int q = 0; q < plan->n_params && !st; q++) { /* all checked: now write */
        if (!model_param(&plan->params[q])) continue;
        const pml_plan_node *n = &plan->nodes[plan->params[q].node];
        const pml_st_tensor *t = pml_st_find(f, plan->params[q].name);
        float *to = pml_pipeline_param(p, q);
        if (!to) {
            st = pml_err_set(err, PML_ERR_DEVICE, "cannot write parameter '%s'", plan->params[q].name);
            break;
        }
        if (!scales[q]) {
            memcpy(to, t->data, t->nbytes);
            continue;
        }
        float *s = malloc(sizeof(float) * (size_t)n->dims[0]);
        if (!s) {
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(s, scales[q]->data, sizeof(float) * (size_t)n->dims[0]);
        pml_quant_dequant_rows_i8(t->data, s, n->dims[0], n->dims[1], to);
        int served = 0;
        float a = 0;
        if (in_scales[q]) memcpy(&a, in_scales[q]->data, sizeof a);
        if (serve_int8) st = pml_pipeline_param_int8(p, q, t->data, s, a, &served, err);
        if (keep) keep->in_scale[q] = a;
        if (!st && keep) { /* the scales' allocation moves into `keep` */
            if (!(keep->q[q] = malloc(t->nbytes + 1))) {
                st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
            } else {
                memcpy(keep->q[q], t->data, t->nbytes);
                keep->scale[q] = s;
                s = NULL;
            }
        }
        free(s);
        ++*n_int8;
        if (n_served && served > 0) ++*n_served;
    }
    free(linear);
    free(scales);
    free(in_scales);
    pml_st_close(f);
    if (st && keep) pml_quant_i8_free(keep);
    return st;
}

pml_status pml_quant_write(const pml_plan *plan, const char *weights, const uint8_t *select, const float *in_scale,
                           const char *out, int *n_done, pml_err *err)
{
    pml_sts *f = NULL;
    *n_done = 0;
    uint8_t *linear = malloc((size_t)plan->n_params + 1);
    if (!linear) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    pml_quant_linear_weights(plan, linear);
    pml_status st = PML_OK;
    for (int q = 0; q < plan->n_params && !st; q++)
        if (select[q] && !linear[q])
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "'%s' is not a linear layer's weight (only those are quantized)",
                             plan->params[q].name);
        else if (select[q] && in_scale && !(isfinite(in_scale[q]) && in_scale[q] > 0))
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "'%s': static activation scale %g is not finite and > 0",
                             plan->params[q].name, (double)in_scale[q]);
    if (!st) st = pml_sts_open(weights, "model", &f, err);
    if (!st && pml_sts_metadata(f, PML_QUANT_KEY))
        st = pml_err_set(err, PML_ERR_FORMAT, "%s: already quantized", pml_sts_path(f));
    size_t n_in = st ? 0 : pml_sts_count(f), n_out = 0;
    pml_st_tensor *ts = calloc(3 * n_in + 1, sizeof *ts);
    void **owned = calloc(4 * n_in + 1, sizeof *owned); /* per tensor: int8 values, scales, the two scale names */
    if (!st && (!ts || !owned)) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    for (int q = 0; q < plan->n_params && !st; q++) { /* every selected weight present, F32, its shape, finite */
        if (!select[q]) continue;
        const pml_plan_node *n = &plan->nodes[plan->params[q].node];
        const pml_st_tensor *t = pml_sts_find(f, plan->params[q].name);
        if (!t || t->dtype != PML_F32 || !same_shape(t, n))
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: tensor '%s' is %s", pml_sts_path(f), plan->params[q].name,
                             t ? "not F32 of the plan's shape" : "missing");
        else if (pml_finite_scan_f32(t->data, t->nbytes / 4) < t->nbytes / 4)
            st = pml_err_set(err, PML_ERR_NONFINITE, "%s: tensor '%s' is not finite", pml_sts_path(f),
                             plan->params[q].name);
    }
    for (size_t i = 0; i < n_in && !st; i++) {
        const pml_st_tensor *t = pml_sts_tensor_at(f, i);
        int q = 0;
        while (q < plan->n_params && (!select[q] || strcmp(plan->params[q].name, t->name))) q++;
        ts[n_out] = *t;
        if (q == plan->n_params) { /* copied as is */
            n_out++;
            continue;
        }
        int64_t rows = t->shape[0], cols = t->shape[1];
        size_t len = strlen(t->name) + sizeof PML_QUANT_SCALE_SUFFIX;
        float *w = malloc(t->nbytes + 1), *s = malloc(sizeof(float) * (size_t)rows + 1);
        int8_t *qv = malloc((size_t)(rows * cols) + 1);
        char *sname = malloc(len);
        char *aname = in_scale ? malloc(len + sizeof PML_QUANT_INPUT_SCALE_SUFFIX) : NULL;
        owned[4 * i] = qv;
        owned[4 * i + 1] = s;
        owned[4 * i + 2] = sname;
        owned[4 * i + 3] = aname;
        if (!w || !s || !qv || !sname || (in_scale && !aname)) {
            free(w);
            st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(w, t->data, t->nbytes); /* aligned */
        pml_quant_rows_i8(w, rows, cols, qv, s);
        free(w);
        snprintf(sname, len, "%s%s", t->name, PML_QUANT_SCALE_SUFFIX);
        if (aname)
            snprintf(aname, len + sizeof PML_QUANT_INPUT_SCALE_SUFFIX, "%s%s", t->name, PML_QUANT_INPUT_SCALE_SUFFIX);
        const char *clash = pml_sts_find(f, sname) ? sname : aname && pml_sts_find(f, aname) ? aname : NULL;
        if (clash) {
            st = pml_err_set(err, PML_ERR_FORMAT, "%s: already holds a tensor '%s'", pml_sts_path(f), clash);
            break;
        }
        ts[n_out].dtype = PML_I8;
        ts[n_out].data = qv;
        ts[n_out++].nbytes = (size_t)(rows * cols);
        ts[n_out] = (pml_st_tensor){.name = sname, .dtype = PML_F32, .rank = 1, .shape = {rows}, .data = s,
                                    .nbytes = sizeof(float) * (size_t)rows};
        n_out++;
        if (aname) /* the static activation scale: one float, the writer copies it */
            ts[n_out++] = (pml_st_tensor){.name = aname, .dtype = PML_F32, .rank = 1, .shape = {1},
                                          .data = &in_scale[q], .nbytes = sizeof(float)};
        ++*n_done;
    }
    pml_st_meta meta[] = {{PML_QUANT_KEY, PML_QUANT_FORMAT},
                          {PML_QUANT_ACT_KEY, in_scale ? PML_QUANT_ACT_STATIC : PML_QUANT_ACT_DYNAMIC}};
    if (!st) st = pml_st_write(out, ts, n_out, meta, 2, err);
    for (size_t i = 0; owned && i < 4 * n_in; i++) free(owned[i]);
    free(ts);
    free(owned);
    free(linear);
    pml_sts_close(f);
    return st;
}

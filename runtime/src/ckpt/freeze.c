/* ckpt_freeze.c — the automatic freeze's state in trainer.json (see ckpt_freeze.h). */
#include "ckpt/freeze.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "plan/phase.h"

static const char *layer_name(const pml_plan *plan, const pml_phase *ph, int l)
{
    return plan->params[ph->first[l]].layer;
}

/* Whether a check froze layer l: its parameters are in `extra`. */
static int auto_frozen(const pml_phase *ph, int l) { return ph->extra[ph->first[l]] != 0; }

pml_status pml_ckpt_freeze_write(const pml_plan *plan, pml_pipeline *p, pml_json_buf *b, pml_err *err)
{
    if (plan->conf.freeze_every <= 0) return PML_OK;
    pml_phase *ph;
    pml_status st = pml_pipeline_phase(p, &ph, err);
    if (st) return st;
    pml_json_buf_puts(b, ",\n  \"auto_freeze\": {\"layers\": [");
    for (int l = 0; l < ph->n_layers; l++) {
        const char *name = layer_name(plan, ph, l);
        if (l) pml_json_buf_puts(b, ", ");
        pml_json_buf_string(b, name, strlen(name));
    }
    pml_json_buf_puts(b, "], \"frozen\": [");
    for (int l = 0, n = 0; l < ph->n_layers; l++) {
        if (!auto_frozen(ph, l)) continue;
        const char *name = layer_name(plan, ph, l);
        if (n++) pml_json_buf_puts(b, ", ");
        pml_json_buf_string(b, name, strlen(name));
    }
    pml_json_buf_puts(b, "], \"norms\": [");
    for (int l = 0; l < ph->n_layers; l++) pml_json_buf_printf(b, "%s%.17g", l ? ", " : "", ph->norm[l]);
    pml_json_buf_printf(b, "], \"checked\": %" PRId64 "}", ph->checked);
    return PML_OK;
}

/* The array member `key` of `v`, each item a string (names) or a number. */
static pml_status get_array(const pml_json *v, const char *path, const char *key, int numbers, const pml_json **out,
                            pml_err *err)
{
    *out = pml_json_get(v, key);
    if (!*out || (*out)->kind != PML_JSON_ARRAY)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\" has no array \"%s\"", path, key);
    for (size_t i = 0; i < (*out)->u.arr.n; i++) {
        pml_json_kind k = (*out)->u.arr.items[i].kind;
        if (numbers ? k != PML_JSON_INT && k != PML_JSON_DOUBLE : k != PML_JSON_STRING)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\".\"%s\" holds a %s, expected %s", path, key,
                               pml_json_kind_name(k), numbers ? "numbers" : "layer names");
    }
    return PML_OK;
}

/* Validates `v` against the phase and fills frozen[] and norm[] (per layer). */
static pml_status parse(const pml_plan *plan, const pml_phase *ph, const pml_json *v, const char *path,
                        uint8_t *frozen, double *norm, int64_t *checked, pml_err *err)
{
    const pml_json *layers, *names, *norms, *chk;
    if (v->kind != PML_JSON_OBJECT) return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\" is not an object", path);
    pml_status st = get_array(v, path, "layers", 0, &layers, err);
    if (!st) st = get_array(v, path, "frozen", 0, &names, err);
    if (!st) st = get_array(v, path, "norms", 1, &norms, err);
    if (st) return st;
    int same = layers->u.arr.n == (size_t)ph->n_layers && norms->u.arr.n == (size_t)ph->n_layers;
    for (int l = 0; same && l < ph->n_layers; l++) same = !strcmp(layers->u.arr.items[l].u.str.s, layer_name(plan, ph, l));
    if (!same)
        return pml_err_set(err, PML_ERR_FORMAT,
                           "%s: \"auto_freeze\" describes %zu layers (%zu norms), not this model's %d in its order",
                           path, layers->u.arr.n, norms->u.arr.n, ph->n_layers);
    memset(frozen, 0, (size_t)ph->n_layers);
    for (size_t i = 0; i < names->u.arr.n; i++) {
        int l = 0;
        while (l < ph->n_layers && strcmp(names->u.arr.items[i].u.str.s, layer_name(plan, ph, l))) l++;
        if (l == ph->n_layers)
            return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\" freezes '%.64s', which is not a layer", path,
                               names->u.arr.items[i].u.str.s);
        frozen[l] = 1;
    }
    for (int l = 0; l < ph->n_layers; l++) {
        const pml_json *x = &norms->u.arr.items[l];
        norm[l] = x->kind == PML_JSON_INT ? (double)x->u.i : x->u.d;
    }
    chk = pml_json_get(v, "checked");
    if (!chk || chk->kind != PML_JSON_INT || chk->u.i < -1)
        return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\" has no integer \"checked\" >= -1", path);
    *checked = chk->u.i;
    return PML_OK;
}

pml_status pml_ckpt_freeze_read(const pml_plan *plan, pml_pipeline *p, const pml_json *v, const char *path, int old,
                                int apply, pml_err *err)
{
    if (plan->conf.freeze_every <= 0) {
        if (v) return pml_err_set(err, PML_ERR_FORMAT, "%s: \"auto_freeze\" state, but the model has no 'freeze auto'", path);
        return PML_OK;
    }
    if (!v) {
        if (old) return PML_OK; /* written before the state was saved: the checks start afresh */
        return pml_err_set(err, PML_ERR_FORMAT, "%s: no \"auto_freeze\" state for the model's 'freeze auto'", path);
    }
    pml_phase *ph;
    pml_status st = pml_pipeline_phase(p, &ph, err);
    if (st) return st;
    uint8_t *frozen = malloc((size_t)ph->n_layers + 1);
    double *norm = malloc(sizeof *norm * ((size_t)ph->n_layers + 1));
    int64_t checked = -1;
    if (!frozen || !norm) st = pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    if (!st) st = parse(plan, ph, v, path, frozen, norm, &checked, err);
    if (!st && apply) pml_phase_auto_restore(ph, plan, frozen, norm, checked);
    free(frozen);
    free(norm);
    return st;
}

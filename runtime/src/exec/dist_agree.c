/* dist_agree.c — the ranks compare their facts (see dist_agree.h): each rank writes
 * its facts as NUL-terminated strings, rank 0 gathers them (dist_gather.h), finds the
 * first difference and sends the verdict back to every rank. */
#include "exec/dist_agree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/dist_gather.h"

/* A fact as read back: pointers into the gathered bytes. */
typedef struct fact {
    const char *key, *value, *shown, *hint; /* value NULL: absent; hint "" : none */
} fact;

/* One string and its NUL onto buf (NULL: count only). */
static size_t put(char *buf, size_t at, const char *s)
{
    size_t n = strlen(s) + 1;
    if (buf) memcpy(buf + at, s, n);
    return at + n;
}

/* The facts as bytes: per fact its key, '+' and the value or '-', how it is shown (the
 * default filled in) and its hint; the length in *len (buf NULL: count only). */
static size_t encode(const pml_dist_fact *f, int n, char *buf)
{
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        at = put(buf, at, f[i].key);
        if (buf) buf[at] = f[i].value ? '+' : '-';
        at = put(buf, at + 1, f[i].value ? f[i].value : "");
        if (f[i].shown || !f[i].value) {
            at = put(buf, at, f[i].shown ? f[i].shown : f[i].key);
        } else { /* "KEY VALUE" */
            char shown[512];
            snprintf(shown, sizeof shown, "%s %s", f[i].key, f[i].value);
            at = put(buf, at, shown);
        }
        at = put(buf, at, f[i].hint ? f[i].hint : "");
    }
    return at;
}

/* Reads back what encode wrote; *out is malloc'ed, *count its length; -1: malformed. */
static int decode(const char *buf, size_t len, fact **out, int *count)
{
    *out = NULL;
    *count = 0;
    size_t at = 0;
    int n = 0, cap = 0;
    fact *v = NULL;
    while (at < len) {
        const char *s[4];
        for (int k = 0; k < 4; k++) {
            const char *end = memchr(buf + at, 0, len - at);
            if (!end || (k == 1 && end == buf + at)) { /* the value needs its flag */
                free(v);
                return -1;
            }
            s[k] = buf + at;
            at = (size_t)(end - buf) + 1;
        }
        if (n == cap) {
            fact *w = realloc(v, sizeof *v * (size_t)(cap = cap ? 2 * cap : 16));
            if (!w) {
                free(v);
                return -1;
            }
            v = w;
        }
        v[n++] = (fact){s[0], s[1][0] == '+' ? s[1] + 1 : NULL, s[2], s[3]};
    }
    *out = v;
    *count = n;
    return 0;
}

static const fact *find(const fact *v, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].key, key)) return &v[i];
    return NULL;
}

static int same(const fact *a, const fact *b)
{
    const char *x = a ? a->value : NULL, *y = b ? b->value : NULL;
    return x == y || (x && y && !strcmp(x, y));
}

/* How a rank's value of `key` shows: "with" its own words, or "without KEY". */
static void shown(const fact *f, const char *key, char *out, size_t cap)
{
    if (f && f->value)
        snprintf(out, cap, "with %s", f->shown);
    else
        snprintf(out, cap, "without %s", key);
}

/* A fact of rank r's that rank 0 lacks, given (a difference), among mine[from, to). */
static const fact *extra(const fact *zero, int nz, const fact *mine, int from, int to)
{
    for (int k = from; k < to; k++)
        if (mine[k].value && !find(zero, nz, mine[k].key)) return &mine[k];
    return NULL;
}

/* The first of rank r's facts (`mine`) that differs from rank 0's (`zero`), or NULL:
 * its key and the two ranks' facts (either may be NULL). The facts are walked in the
 * order both lists share, so a fact only rank r has is named where it stands. */
static const char *first_difference(const fact *zero, int nz, const fact *mine, int nm, const fact **a,
                                    const fact **b)
{
    int done = 0; /* mine[0, done) walked */
    for (int i = 0; i < nz; i++) {
        const fact *f = find(mine, nm, zero[i].key), *e = f ? extra(zero, nz, mine, done, (int)(f - mine)) : NULL;
        if (e) return *a = NULL, *b = e, e->key;
        if (!same(&zero[i], f)) return *a = &zero[i], *b = f, zero[i].key;
        if (f && (int)(f - mine) + 1 > done) done = (int)(f - mine) + 1;
    }
    const fact *e = extra(zero, nz, mine, done, nm);
    return e ? (*a = NULL, *b = e, e->key) : NULL;
}

/* On rank 0: compares every rank's facts with its own; the verdict into `err`. */
static pml_status judge(int world, const char *all, const size_t *lens, pml_err *err)
{
    fact *zero = NULL, *mine = NULL;
    int nz = 0, nm = 0, differ = 0;
    pml_status st = PML_OK;
    if (decode(all, lens[0], &zero, &nz)) return pml_err_set(err, PML_ERR_INTERNAL, "rank 0's facts do not read back");
    size_t at = lens[0];
    for (int r = 1; r < world && !st; at += lens[r++]) {
        if (decode(all + at, lens[r], &mine, &nm)) {
            st = pml_err_set(err, PML_ERR_INVALID_ARG, "rank %d sent start-up facts that do not read back "
                                                       "(is it the same pmlc?)", r);
            break;
        }
        const fact *a, *b;
        const char *key = first_difference(zero, nz, mine, nm, &a, &b);
        if (key && !differ++) {
            char was[400], want[400];
            shown(b, key, was, sizeof was);
            shown(a, key, want, sizeof want);
            const char *hint = a && *a->hint ? a->hint : b && *b->hint ? b->hint : "";
            pml_err_set(err, PML_ERR_INVALID_ARG, "rank %d was started %s, rank 0 %s%s%s", r, was, want,
                        *hint ? ": " : "", hint);
        }
        free(mine);
        mine = NULL;
    }
    free(zero);
    if (st) return st;
    if (differ > 1) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len, " (and %d more rank%s differ%s from rank 0)", differ - 1,
                 differ == 2 ? "" : "s", differ == 2 ? "s" : "");
    }
    return differ ? PML_ERR_INVALID_ARG : PML_OK;
}

pml_status pml_dist_agree(pml_dist *d, const pml_dist_fact *facts, int n, pml_err *err)
{
    size_t len = encode(facts, n, NULL);
    char *mine = malloc(len + 1);
    if (!mine) return pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    encode(facts, n, mine);
    size_t *lens = calloc((size_t)d->world, sizeof *lens);
    void *all = NULL;
    pml_status st = lens ? pml_dist_gather_bytes(d, 0, mine, len, &all, lens, err)
                         : pml_err_set(err, PML_ERR_NOMEM, "out of memory");
    free(mine);
    if (st) {
        free(lens);
        return st;
    }
    /* The verdict travels as the status and the message, the same on every rank. */
    struct {
        int32_t code;
        char msg[sizeof err->msg];
    } verdict = {0, ""};
    if (d->rank == 0) {
        pml_err v = {0};
        verdict.code = (int32_t)judge(d->world, all, lens, &v);
        memcpy(verdict.msg, v.msg, sizeof v.msg);
    }
    free(all);
    free(lens);
    for (int r = 1; r < d->world && !st; r++) st = d->move(d, 0, r, &verdict, sizeof verdict, err);
    if (st) return st;
    return verdict.code ? pml_err_set(err, (pml_status)verdict.code, "%s", verdict.msg) : PML_OK;
}

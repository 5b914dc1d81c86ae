/* cuda_build.c — see cuda_build.h. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strtok_r, O_CLOEXEC, fsync */
#include "gpu/cuda_build.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "front/program.h"

char *pmlc_cuda_source(const pmlc_cuda_module *m, int func)
{
    size_t n = strlen(m->prelude) + 1;
    for (int f = 0; f < m->n_funcs; f++)
        if (func < 0 || f == func) n += strlen(m->funcs[f].text);
    char *s = malloc(n);
    if (!s) return NULL;
    size_t at = 0;
    at += (size_t)sprintf(s, "%s", m->prelude);
    for (int f = 0; f < m->n_funcs; f++)
        if (func < 0 || f == func) at += (size_t)sprintf(s + at, "%s", m->funcs[f].text);
    return s;
}

int pmlc_cuda_arch_valid(const char *a)
{
    const char *d = !strncmp(a, "sm_", 3) ? a + 3 : !strncmp(a, "compute_", 8) ? a + 8 : NULL;
    if (!d || !isdigit((unsigned char)d[0]) || !isdigit((unsigned char)d[1])) return 0;
    d += 2;
    if (isdigit((unsigned char)*d)) d++;
    if (*d == 'a' || *d == 'f') d++;
    return *d == 0 && strlen(a) < 16;
}

/* The .pml location of line `line` (1-based) of the whole-module source. */
static pmlc_loc line_loc(const pmlc_cuda_module *m, int line)
{
    line -= m->prelude_lines;
    for (int f = 0; f < m->n_funcs && line > 0; f++) {
        if (line <= m->funcs[f].n_lines) return m->funcs[f].line_loc[line - 1];
        line -= m->funcs[f].n_lines;
    }
    return PMLC_NOLOC;
}

/* NVRTC's log, "NAME(LINE): error: MESSAGE" per error, as diagnostics at the ops. */
static int report_log(pmlc_program *P, const pmlc_cuda_module *m, const char *arch, const char *log)
{
    int errors = 0;
    for (const char *l = log; *l;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        const char *open = memchr(l, '(', len), *tag = NULL;
        for (const char *p = l; p + 9 <= l + len && !tag; p++)
            if (!memcmp(p, "): error: ", 10) || !memcmp(p, "): error : ", 11)) tag = p;
        if (open && tag && open < tag) {
            int line = atoi(open + 1);
            const char *msg = tag + (tag[8] == ':' ? 10 : 11); /* "): error: " or "): error : " */
            pmlc_error(&P->diag, line_loc(m, line), "CUDA C (%s, generated line %d): %.*s", arch, line,
                       (int)(l + len - msg), msg);
            errors++;
        }
        l += len + (end ? 1 : 0);
    }
    if (!errors) {
        pmlc_error(&P->diag, PMLC_NOLOC, "NVRTC failed for %s: %s", arch, log);
        errors = 1;
    }
    return errors;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void pmlc_cuda_images_free(pmlc_cuda_image *images, int n)
{
    for (int i = 0; images && i < n; i++) free(images[i].data);
    free(images);
}

int pmlc_cuda_build(pmlc_program *P, const pmlc_cuda_module *m, const char *archs, pmlc_nvrtc *nv, pmlc_kcache *kc,
                    pmlc_cuda_image **images, int *n_images)
{
    *images = NULL, *n_images = 0;
    if (!archs) archs = PMLC_CUDA_DEFAULT_ARCHS;
    char list[256];
    if (strlen(archs) >= sizeof list) {
        pmlc_error(&P->diag, PMLC_NOLOC, "too many CUDA targets: '%s'", archs);
        return 1;
    }
    strcpy(list, archs);
    int n = 1;
    for (char *p = list; *p; p++) n += *p == ',';
    pmlc_cuda_image *im = calloc((size_t)n, sizeof *im);
    char *src = pmlc_cuda_source(m, -1);
    int errors = 0, own = !nv;
    char msg[512];
    if (!im || !src) {
        pmlc_error(&P->diag, PMLC_NOLOC, "out of memory");
        errors = 1;
    }
    if (!errors && own && !(nv = pmlc_nvrtc_open(msg, sizeof msg))) {
        pmlc_error(&P->diag, PMLC_NOLOC, "cannot build CUDA kernels: %s", msg);
        errors = 1;
    }
    int k = 0;
    for (char *save = NULL, *a = errors ? NULL : strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        if (!pmlc_cuda_arch_valid(a)) {
            pmlc_error(&P->diag, PMLC_NOLOC, "'%s' is not a CUDA target; write sm_80, sm_90 or compute_90", a);
            errors++;
            continue;
        }
        pmlc_cuda_image *img = &im[k];
        snprintf(img->arch, sizeof img->arch, "%s", a);
        char opts[256];
        char *key = pmlc_kcache_key(pmlc_nvrtc_version(nv), a, pmlc_nvrtc_options(a, opts, sizeof opts), src);
        if (key && kc && pmlc_kcache_get(kc, key, &img->data, &img->size)) {
            img->from_cache = 1;
        } else {
            char *log = NULL;
            double t0 = now_ms();
            if (pmlc_nvrtc_compile(nv, src, "pml_kernels.cu", a, &img->data, &img->size, &log)) {
                errors += report_log(P, m, a, log ? log : "no log");
            } else {
                img->compile_ms = now_ms() - t0;
                if (key && kc) pmlc_kcache_put(kc, key, img->data, img->size);
            }
            free(log);
        }
        free(key);
        if (img->data) k++;
    }
    free(src);
    if (own) pmlc_nvrtc_close(nv);
    if (errors) {
        pmlc_cuda_images_free(im, k);
        return errors;
    }
    *images = im, *n_images = k;
    return 0;
}

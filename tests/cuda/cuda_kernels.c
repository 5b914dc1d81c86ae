/* cuda_kernels.c — the test driver of the CUDA code generator and NVRTC build: for
 * each .pml file, render its kernels and compile them for the targets through the
 * kernel cache, and print what happened, one line each, for the test scripts:
 *   FILE: K kernels, F functions, L lines of CUDA C
 *   FILE: ARCH: compiled in MS ms, B bytes | from the cache, B bytes
 *   cache: H hits, M misses, S stores, R rejected
 * Options: --archs LIST (default sm_80,sm_90,compute_90), --dump PATH (the CUDA C of
 * the last file), --per-func (time compiling each function as its own program instead;
 * no cache), --break-line (make one generated line invalid, to see the error reach
 * the .pml source), --no-build (codegen only), --set KEY=VALUE (a train field, as
 * pmlc's --set; up to 8). Exit 0, or 1 after errors (diagnostics on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/cuda_build.h"
#include "session_int.h"

static double now_ms(void)
{
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Compiles every function as its own program: the comparison for one program. */
static int per_func(const pmlc_cuda_module *m, const char *archs)
{
    char msg[512], list[256];
    pmlc_nvrtc *nv = pmlc_nvrtc_open(msg, sizeof msg);
    if (!nv) return fprintf(stderr, "%s\n", msg), 1;
    snprintf(list, sizeof list, "%s", archs);
    for (char *a = strtok(list, ","); a; a = strtok(NULL, ",")) {
        double t0 = now_ms();
        for (int f = 0; f < m->n_funcs; f++) {
            char *src = pmlc_cuda_source(m, f), *log = NULL;
            unsigned char *bin = NULL;
            size_t size;
            if (pmlc_nvrtc_compile(nv, src, "f.cu", a, &bin, &size, &log)) fprintf(stderr, "%s\n", log);
            free(src), free(log), free(bin);
        }
        printf("per-function: %s: %d programs in %.0f ms\n", a, m->n_funcs, now_ms() - t0);
    }
    pmlc_nvrtc_close(nv);
    return 0;
}

/* Appends an undefined name to the first line a fused op wrote. */
static void break_line(pmlc_program *P, pmlc_cuda_module *m)
{
    for (int f = 1; f < m->n_funcs; f++) {
        pmlc_cuda_func *fn = &m->funcs[f];
        const char *line = fn->text;
        for (int l = 0; l < fn->n_lines; l++, line = strchr(line, '\n') + 1) {
            if (fn->line_loc[l].file < 0 || !strncmp(line, "//", 2)) continue;
            const char *nl = strchr(line, '\n');
            size_t at = (size_t)(nl - fn->text);
            fn->text = pmlc_arena_printf(&P->arena, "%.*s pml_not_defined += 1;%s", (int)at, fn->text, nl);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    const char *archs = NULL, *dump = NULL, *sets[8];
    int timing = 0, breakit = 0, bad = 0, n_sets = 0;
    pmlc_kcache kc;
    pmlc_kcache_init(&kc);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--archs") && i + 1 < argc) {
            archs = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
            dump = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--per-func")) {
            timing = 1;
            continue;
        }
        if (!strcmp(argv[i], "--no-build")) {
            archs = "";
            continue;
        }
        if (!strcmp(argv[i], "--break-line")) {
            breakit = 1;
            continue;
        }
        if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 8) {
            sets[n_sets++] = argv[++i];
            continue;
        }
        pmlc_options opt = {0};
        opt.sets = sets, opt.n_sets = n_sets;
        opt.gpu_code = 1;
        opt.diag_out = stderr;
        pmlc_session *s = pmlc_session_create(&opt);
        const pmlc_plan *pl = NULL;
        pmlc_graph *g = pmlc_session_check_file(s, argv[i]) ? NULL : pmlc_session_graph(s, &pl);
        pmlc_program *P = pmlc_session_program(s);
        pmlc_cuda_module m;
        if (!g || pmlc_cuda_codegen(P, pl, &m)) {
            bad = 1;
            pmlc_session_destroy(s);
            continue;
        }
        if (breakit) break_line(P, &m);
        char *src = pmlc_cuda_source(&m, -1);
        int lines = 0;
        for (const char *p = src; *p; p++) lines += *p == '\n';
        printf("%s: %d kernels, %d functions, %d lines of CUDA C\n", argv[i], m.n_kernels, m.n_funcs, lines);
        if (dump) {
            FILE *f = fopen(dump, "w");
            if (f) fputs(src, f), fclose(f);
        }
        free(src);
        if (archs && !*archs) {
            /* codegen only */
        } else if (timing) {
            bad |= per_func(&m, archs ? archs : PMLC_CUDA_DEFAULT_ARCHS);
        } else {
            pmlc_cuda_image *im;
            int n;
            if (pmlc_cuda_build(P, &m, archs, NULL, &kc, &im, &n)) bad = 1;
            for (int k = 0; k < n; k++) {
                if (im[k].from_cache)
                    printf("%s: %s: from the cache, %zu bytes\n", argv[i], im[k].arch, im[k].size);
                else
                    printf("%s: %s: compiled in %.0f ms, %zu bytes\n", argv[i], im[k].arch, im[k].compile_ms,
                           im[k].size);
            }
            pmlc_cuda_images_free(im, n);
        }
        pmlc_session_destroy(s);
    }
    printf("cache: %d hits, %d misses, %d stores, %d rejected\n", kc.hits, kc.misses, kc.stores, kc.rejected);
    return bad;
}

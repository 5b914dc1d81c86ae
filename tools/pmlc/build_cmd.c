/* build_cmd.c — `pmlc build`: compile a program into the plan file libpml loads
 * (format: pml_plan_format.h), and pmlc_plan_from_file, which gives the commands that
 * run a plan the same plan from a .plan file or from a .pml program. */
#include "build_cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "exec/backend.h"
#include "formats/atomic_file.h"
#include "formats/input_file.h"
#include "formats/out_path.h"

void pmlc_where_free(char **where)
{
    for (int i = 0; where && where[i]; i++) free(where[i]);
    free(where);
}

/* Each plan node's source location from a session that made the plan, NULL-terminated
 * ("" for a node without one); NULL when out of memory. */
static char **node_where(pmlc_session *s)
{
    char at[1024];
    int n = 0;
    while (pmlc_session_node_where(s, n, at, sizeof at) >= 0) n++;
    char **where = calloc((size_t)n + 1, sizeof *where);
    for (int i = 0; where && i < n; i++) {
        pmlc_session_node_where(s, i, at, sizeof at);
        if ((where[i] = malloc(strlen(at) + 1))) memcpy(where[i], at, strlen(at) + 1);
        if (!where[i]) {
            pmlc_where_free(where);
            return NULL;
        }
    }
    return where;
}

/* Compiles `file` into plan-file bytes (malloc'ed, the caller frees them). `gpu`
 * says whether to put GPU code in: 0 no, 1 for `archs` (NULL: the default targets).
 * With `where`, also the source location of each of the plan's `n_nodes` nodes. */
static int compile_bytes(const char *file, const pmlc_options *opt, int gpu, const char *archs, unsigned char **bytes,
                         size_t *len, char ***where)
{
    *bytes = NULL;
    *len = 0;
    pmlc_session *s = pmlc_session_create(opt);
    if (!s) return pmlc_cli_fail("out of memory", NULL);
    char summary[512] = "";
    int rc = pmlc_session_check_file(s, file) ? 1 : 0;
    if (!rc)
        rc = gpu ? pmlc_session_plan_bytes_gpu(s, archs, bytes, len, summary, sizeof summary)
                 : pmlc_session_plan_bytes(s, bytes, len);
    if (!rc && where && !(*where = node_where(s))) rc = pmlc_cli_fail("out of memory", NULL);
    if (pmlc_session_errors(s))
        fprintf(stderr, "%d error%s generated.\n", pmlc_session_errors(s), pmlc_session_errors(s) == 1 ? "" : "s");
    else if (gpu)
        fprintf(stderr, "pmlc: GPU code: %s\n", summary);
    pmlc_session_destroy(s);
    if (rc) {
        free(*bytes);
        *bytes = NULL;
    }
    return rc;
}

/* Whether `file` starts with the plan-file magic. Only a regular file can be a plan
 * (input_file.h); anything else, or a file that cannot be opened, is not one:
 * compiling it reports why. */
int pmlc_is_plan_file(const char *file)
{
    int fd;
    size_t len;
    pml_err err = {0};
    if (pml_input_open(file, &fd, &len, &err)) return 0;
    char head[sizeof PML_PLAN_MAGIC];
    int yes = len >= sizeof head && read(fd, head, sizeof head) == (ssize_t)sizeof head &&
              !memcmp(head, PML_PLAN_MAGIC, sizeof head);
    close(fd);
    return yes;
}

/* The GPU target to compile a program for when it will run on backend `want`, or 0
 * when it will not run on a GPU (auto without NVRTC: the CPU runs it). */
static int run_arch(pml_backend want, char *arch, size_t cap)
{
    if (want == PML_BACKEND_CPU || pml_backend_cuda_arch(arch, cap)) return 0;
    if (want == PML_BACKEND_CUDA) return 1; /* NVRTC missing is then an error, from the compiler */
    char why[256];
    return pmlc_gpu_available(why, sizeof why);
}

/* FNV-1a, 64 bits, continued from `h` over `len` bytes. */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * UINT64_C(1099511628211);
    return h;
}

#define FNV_SEED UINT64_C(14695981039346656037)

int pmlc_plan_from_file_where(const char *file, const pmlc_options *opt, pml_backend want, pml_plan **out,
                              uint64_t *hash, char ***where)
{
    *out = NULL;
    if (where) *where = NULL;
    pml_err err = {0};
    unsigned char *bytes = NULL;
    size_t len = 0;
    if (pmlc_is_plan_file(file)) { /* read once: the plan, then its hash, from one mapping */
        pml_mapped_file m;
        int rc = pml_plan_map(file, &m, &err) || pml_plan_read(m.data, m.len, file, out, &err);
        if (!rc && hash) *hash = fnv1a(FNV_SEED, m.data, m.len);
        pml_unmap_file(&m);
        return rc ? pmlc_cli_fail("cannot load the plan", &err) : 0;
    }
    char arch[16];
    int gpu = run_arch(want, arch, sizeof arch);
    if (compile_bytes(file, opt, gpu, gpu ? arch : NULL, &bytes, &len, where)) return 1;
    if (hash) *hash = fnv1a(FNV_SEED, bytes, len);
    int rc = pml_plan_read(bytes, len, file, out, &err) ? pmlc_cli_fail("the compiled plan does not load", &err) : 0;
    free(bytes);
    if (rc && where) {
        pmlc_where_free(*where);
        *where = NULL;
    }
    return rc;
}

int pmlc_plan_from_file_hash(const char *file, const pmlc_options *opt, pml_backend want, pml_plan **out,
                             uint64_t *hash)
{
    return pmlc_plan_from_file_where(file, opt, want, out, hash, NULL);
}

int pmlc_plan_from_file(const char *file, const pmlc_options *opt, pml_backend want, pml_plan **out)
{
    return pmlc_plan_from_file_hash(file, opt, want, out, NULL);
}

/* Whether to put GPU code in the plan: --arch none says no; no --arch asks for the
 * default targets when NVRTC is found and notes, when it is not, that the plan has no
 * GPU code (a CPU-only machine builds plans too); an explicit list needs NVRTC. */
static int want_gpu(const char *arch)
{
    if (arch) return strcmp(arch, "none") != 0;
    char why[256];
    if (pmlc_gpu_available(why, sizeof why)) return 1;
    fprintf(stderr, "pmlc: note: the plan has no GPU code: %s (pass --arch to require it)\n", why);
    return 0;
}

int pmlc_build_main(const char *file, const pmlc_options *opt, const char *out, const char *arch)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    pml_err err = {0};
    if (pml_out_check(out, &err)) return pmlc_cli_fail("-o", &err); /* before compiling */
    if (compile_bytes(file, opt, want_gpu(arch), arch, &bytes, &len, NULL)) return 1;
    /* Check the bytes load before writing them: a plan file libpml refuses is a bug. */
    pml_plan *check = NULL;
    int rc = 1;
    if (pml_plan_read(bytes, len, file, &check, &err)) {
        pmlc_cli_fail("the compiled plan does not load", &err);
    } else {
        pml_atomic_file f;
        if (pml_atomic_open(&f, out, &err))
            pmlc_cli_fail("cannot write the plan", &err);
        else if (pml_atomic_write(&f, bytes, len, &err)) {
            pml_atomic_abort(&f);
            pmlc_cli_fail("cannot write the plan", &err);
        } else if (pml_atomic_commit(&f, &err))
            pmlc_cli_fail("cannot write the plan", &err);
        else
            rc = 0;
    }
    pml_plan_free(check);
    free(bytes);
    return rc;
}

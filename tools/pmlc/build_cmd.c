/* build_cmd.c — `pmlc build`: compile a program into the plan file libpml loads
 * (format: include/pml/plan_format.h), and pmlc_plan_from_file, which gives the commands
 * that run a plan the same plan from a .plan file or from a .pml program. */
#define _DEFAULT_SOURCE /* O_CLOEXEC */
#include "build_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "pml/hash.h"
#include "pml/plan_format.h"

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
    pmlc_options o = opt ? *opt : (pmlc_options){0};
    o.gpu_code = gpu != 0; /* fused ops the CUDA backend has no kernel for are planned as primitives */
    pmlc_session *s = pmlc_session_create(&o);
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

/* Opens `file` read-only when it is a regular file, without blocking on a fifo (as
 * libpml opens what it reads), its size in *len; -1 with errno set, and *len 0, otherwise. */
static int open_regular(const char *file, size_t *len)
{
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    *len = 0;
    if (fd < 0) return -1;
    int e = fstat(fd, &sb) ? errno : S_ISREG(sb.st_mode) ? 0 : EINVAL;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    *len = (size_t)sb.st_size;
    return fd;
}

/* Whether `file` starts with the plan-file magic. Only a regular file can be a plan;
 * anything else, or a file that cannot be opened, is not one: compiling it reports why. */
int pmlc_is_plan_file(const char *file)
{
    size_t len = 0;
    int fd = open_regular(file, &len);
    if (fd < 0) return 0;
    char head[sizeof PML_PLAN_MAGIC];
    int yes = len >= sizeof head && read(fd, head, sizeof head) == (ssize_t)sizeof head &&
              !memcmp(head, PML_PLAN_MAGIC, sizeof head);
    close(fd);
    return yes;
}

/* Maps the plan file `file` read-only (*len bytes at *bytes, for munmap): mapped, not
 * read, because the plan reader touches only the pages it gets to, so a huge file that
 * is not a plan fails at its first section without being read; and the hash, taken
 * once the plan has loaded, reads the same bytes. Prints why not and returns 1. */
static int map_plan_file(const char *file, void **bytes, size_t *len)
{
    int fd = open_regular(file, len);
    *bytes = fd < 0 ? MAP_FAILED : mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    const char *why = *bytes == MAP_FAILED ? strerror(errno) : NULL;
    if (fd >= 0) close(fd);
    if (!why) return 0;
    fprintf(stderr, "pmlc: error: cannot load the plan: %s: %s\n", file, why);
    return 1;
}

/* The GPU target to compile a program for when it will run on backend `want`, or 0
 * when it will not run on a GPU (auto without NVRTC: the CPU runs it). */
static int run_arch(pml_backend want, char *arch, size_t cap)
{
    if (want == PML_BACKEND_CPU || pml_gpu_arch(arch, cap)) return 0;
    if (want == PML_BACKEND_CUDA) return 1; /* NVRTC missing is then an error, from the compiler */
    char why[256];
    return pmlc_gpu_available(why, sizeof why);
}

int pmlc_plan_from_file_where(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                              pml_plan **out, uint64_t *hash, char ***where)
{
    *out = NULL;
    if (where) *where = NULL;
    if (pmlc_is_plan_file(file)) {
        void *map;
        size_t len;
        if (map_plan_file(file, &map, &len)) return 1;
        int rc = pml_plan_open_memory(ctx, map, len, file, out);
        if (rc)
            pmlc_cli_fail("cannot load the plan", pml_context_error(ctx));
        else if (hash)
            *hash = pml_fnv1a(PML_FNV1A_OFFSET_BASIS, map, len);
        munmap(map, len);
        return rc != 0;
    }
    unsigned char *bytes = NULL;
    size_t len = 0;
    char arch[16];
    int gpu = run_arch(want, arch, sizeof arch);
    if (compile_bytes(file, opt, gpu, gpu ? arch : NULL, &bytes, &len, where)) return 1;
    if (hash) *hash = pml_fnv1a(PML_FNV1A_OFFSET_BASIS, bytes, len);
    int rc = 0;
    if (pml_plan_open_memory(ctx, bytes, len, file, out))
        rc = pmlc_cli_fail("the compiled plan does not load", pml_context_error(ctx));
    free(bytes);
    if (rc && where) {
        pmlc_where_free(*where);
        *where = NULL;
    }
    return rc;
}

int pmlc_plan_from_file_hash(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                             pml_plan **out, uint64_t *hash)
{
    return pmlc_plan_from_file_where(ctx, file, opt, want, out, hash, NULL);
}

int pmlc_plan_from_file(pml_context *ctx, const char *file, const pmlc_options *opt, pml_backend want,
                        pml_plan **out)
{
    return pmlc_plan_from_file_hash(ctx, file, opt, want, out, NULL);
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
    pml_context *ctx = NULL;
    pml_plan *check = NULL;
    int rc = 1;
    if (pml_context_create(&ctx))
        pmlc_cli_fail("out of memory", NULL);
    else if (pml_output_check(ctx, out)) /* before compiling */
        pmlc_cli_fail("-o", pml_context_error(ctx));
    else if (compile_bytes(file, opt, want_gpu(arch), arch, &bytes, &len, NULL))
        ; /* said why */
    else if (pml_plan_open_memory(ctx, bytes, len, file, &check)) /* a plan file libpml refuses is a bug */
        pmlc_cli_fail("the compiled plan does not load", pml_context_error(ctx));
    else if (pml_output_write(ctx, out, bytes, len))
        pmlc_cli_fail("cannot write the plan", pml_context_error(ctx));
    else
        rc = 0;
    pml_plan_close(check);
    pml_context_destroy(ctx);
    free(bytes);
    return rc;
}

/* module.c — loading the main file and its imports into one program.
 *
 * `import "nn"` names a module, never a path: segments of letters, digits, '_' and
 * '-' joined by '/'. That rules out escapes (`..`, absolute paths) by construction.
 * The module is searched for in the importer's folder, the -I folders, PML_PATH, and
 * the standard library, and loaded once; an import of a module still loading is a
 * cycle, reported with the chain. */
#define _DEFAULT_SOURCE /* realpath, strtok_r */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front/parse.h"
#include "front/program.h"

#define PMLC_MAX_IMPORT_DEPTH 64

int pmlc_symbol(pmlc_program *P, const char *name)
{
    for (int i = 0; i < P->syms.n; i++)
        if (!strcmp(P->syms.names[i], name)) return i;
    if (P->syms.n >= PMLC_MAX_SYMS) return -1;
    P->syms.names[P->syms.n] = pmlc_arena_strdup(&P->arena, name);
    return P->syms.n++;
}

/* Reads a whole file — a regular file, or a pipe such as <(generate) read to its end —
 * up to PMLC_MAX_SOURCE_BYTES; on failure returns NULL with a reason in `why`.
 * Nothing here waits on a fifo nobody writes to: the open does not block (O_NONBLOCK),
 * and a read finds such a fifo at its end at once; only a pipe whose writer is still
 * there is waited for (poll), as `pmlc check <(generate)` needs. The runtime refuses
 * every non-regular input (runtime/src/formats/input_file.h); a program may come from
 * a pipe, and this is the compiler's own reader because pmlc_core does not link libpml. */
static char *read_file(pmlc_program *P, const char *path, size_t *len, const char **why)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = strerror(errno);
        if (fd >= 0) close(fd);
        return NULL;
    }
    const char *bad = S_ISDIR(st.st_mode)                                                   ? "it is a directory"
                      : S_ISREG(st.st_mode) && (uint64_t)st.st_size > PMLC_MAX_SOURCE_BYTES ? "larger than 64 MiB"
                      : S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode) ? "it is a device or socket, not a file"
                                                                    : NULL;
    if (bad) {
        close(fd);
        *why = bad;
        return NULL;
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 64 * 1024, n = 0;
    char *buf = malloc(cap + 1);
    int err = 0;
    while (buf && !err && n <= PMLC_MAX_SOURCE_BYTES) {
        if (n == cap) {
            char *grown = realloc(buf, cap * 2 + 1); /* the file grew, or it is a pipe */
            if (!grown) break;
            buf = grown;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got > 0) {
            n += (size_t)got;
        } else if (got == 0) {
            break;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a pipe whose writer is not done */
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, -1) < 0 && errno != EINTR) err = errno;
        } else if (errno != EINTR) {
            err = errno;
        }
    }
    close(fd);
    if (!buf || err || n > PMLC_MAX_SOURCE_BYTES || (n == 0 && S_ISFIFO(st.st_mode))) {
        *why = !buf                        ? "out of memory"
               : err                       ? strerror(err)
               : n > PMLC_MAX_SOURCE_BYTES ? "larger than 64 MiB"
                                           : "it is a fifo or pipe that nobody writes to";
        free(buf);
        return NULL;
    }
    char *text = pmlc_arena_strndup(&P->arena, buf, n);
    free(buf);
    *len = n;
    return text;
}

static int valid_module_name(const char *s)
{
    if (!*s || strlen(s) > 200) return 0;
    int seg = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '/') {
            if (seg == 0) return 0;
            seg = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                   *c == '-') {
            seg++;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *candidate(pmlc_program *P, const char *dir, const char *name)
{
    if (!strcmp(dir, ".")) return pmlc_arena_printf(&P->arena, "%s.pml", name);
    size_t n = strlen(dir);
    return pmlc_arena_printf(&P->arena, "%s%s%s.pml", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* An installed pmlc finds its stdlib beside itself, at ../share/pml/stdlib, so an
 * install moved elsewhere (or made with --prefix) still works. NULL off Linux. */
static const char *exe_relative_stdlib(pmlc_program *P)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    return pmlc_arena_printf(&P->arena, "%s/../share/pml/stdlib", exe);
}

/* The folders searched for an import, in order; `labels` say where each came from. */
static int search_dirs(pmlc_program *P, const char *importer_dir, const char **dirs, const char **labels, int cap)
{
    int n = 0;
    dirs[n] = importer_dir, labels[n++] = "the importing file's folder";
    for (int i = 0; i < P->n_include_dirs && n < cap - 3; i++) dirs[n] = P->include_dirs[i], labels[n++] = "-I";
    const char *env = getenv("PML_PATH");
    if (env && *env) {
        char *copy = pmlc_arena_strdup(&P->arena, env), *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok && n < cap - 2; tok = strtok_r(NULL, ":", &save))
            dirs[n] = tok, labels[n++] = "PML_PATH";
    }
    dirs[n] = PMLC_SOURCE_STDLIB, labels[n++] = "the standard library";
    dirs[n] = PMLC_INSTALL_STDLIB, labels[n++] = "the standard library";
    const char *rel = exe_relative_stdlib(P);
    if (rel) dirs[n] = rel, labels[n++] = "the standard library";
    return n;
}

static int load_module(pmlc_program *P, const char *path, const char *text, size_t len, int parent, pmlc_loc import_loc,
                       int depth);

static void report_cycle(pmlc_program *P, int from, int target, pmlc_loc loc)
{
    /* Walk the chain of importers from `from` back to `target`. */
    const char *chain = P->modules.v[target].path;
    int k = from, steps = 0;
    const char *tail = "";
    while (k >= 0 && k != target && steps++ < PMLC_MAX_IMPORT_DEPTH) {
        tail = pmlc_arena_printf(&P->arena, " -> %s%s", P->modules.v[k].path, tail);
        k = P->modules.v[k].parent;
    }
    pmlc_error(&P->diag, loc, "import cycle: %s%s -> %s", chain, tail, P->modules.v[target].path);
}

static void resolve_import(pmlc_program *P, int importer, const ast *imp, int depth)
{
    const char *name = imp->name;
    if (!valid_module_name(name)) {
        pmlc_error(&P->diag, imp->name_loc,
                   "'%s' is not a module name: use names like \"nn\" or \"models/gpt\" (letters, digits, '_', '-' "
                   "and '/'; no '..', no absolute path, no extension)",
                   name);
        return;
    }
    const char *dirs[80], *labels[80];
    int n = search_dirs(P, P->sources.files.v[P->modules.v[importer].file].dir, dirs, labels, 80);
    for (int i = 0; i < n; i++) {
        const char *path = candidate(P, dirs[i], name);
        if (!is_file(path)) continue;
        char real[PATH_MAX];
        const char *key = realpath(path, real) ? pmlc_arena_strdup(&P->arena, real) : path;
        intptr_t known = (intptr_t)pmlc_strmap_get(&P->module_by_path, key);
        if (known) {
            int m = (int)known - 1;
            if (P->modules.v[m].state == 0) report_cycle(P, importer, m, imp->name_loc);
            return;
        }
        if (depth >= PMLC_MAX_IMPORT_DEPTH) {
            pmlc_error(&P->diag, imp->name_loc, "imports nested too deeply (the limit is %d)", PMLC_MAX_IMPORT_DEPTH);
            return;
        }
        const char *why = NULL;
        size_t len = 0;
        char *text = read_file(P, path, &len, &why);
        if (!text) {
            pmlc_error(&P->diag, imp->name_loc, "cannot read module '%s' at %s: %s", name, path, why);
            return;
        }
        load_module(P, path, text, len, importer, imp->name_loc, depth + 1);
        return;
    }
    pmlc_error(&P->diag, imp->name_loc, "cannot find module '%s' (no file %s.pml)", name, name);
    const char *where = "";
    for (int i = 0; i < n; i++) {
        if (i > 0 && !strcmp(labels[i], labels[i - 1]) && !strcmp(labels[i], "the standard library"))
            continue; /* its folders read as one */
        const char *d = !strcmp(labels[i], "-I") || !strcmp(labels[i], "PML_PATH")
                            ? pmlc_arena_printf(&P->arena, "%s (%s)", dirs[i], labels[i])
                            : labels[i];
        where = pmlc_arena_printf(&P->arena, "%s%s%s", where, i ? ", " : "", d);
    }
    pmlc_note(&P->diag, PMLC_NOLOC, "searched: %s", where);
}

static void define_global(pmlc_program *P, ast *d)
{
    ast *prev = pmlc_strmap_get(&P->globals, d->name);
    if (prev) {
        pmlc_error(&P->diag, d->name_loc, "'%s' is defined twice", d->name);
        pmlc_note(&P->diag, prev->name_loc, "first defined here");
        return;
    }
    pmlc_strmap_put(&P->arena, &P->globals, d->name, d);
}

static int load_module(pmlc_program *P, const char *path, const char *text, size_t len, int parent, pmlc_loc import_loc,
                       int depth)
{
    const char *why = NULL;
    size_t bad = pmlc_utf8_check(text, len, &why);
    int file = pmlc_sources_add(&P->arena, &P->sources, path, text, len);
    if (bad < len) {
        pmlc_error(&P->diag, ((pmlc_loc){file, (uint32_t)bad, (uint32_t)bad + 1}),
                   "%s (byte 0x%02X); PML source is UTF-8", why, (unsigned char)text[bad]);
        return 1;
    }
    pmlc_module m = {0};
    char real[PATH_MAX];
    m.path = P->sources.files.v[file].path;
    m.file = file;
    m.parent = parent;
    m.import_loc = import_loc;
    PMLC_PUSH(&P->arena, P->modules, m);
    int idx = P->modules.n - 1;
    const char *key = realpath(path, real) ? pmlc_arena_strdup(&P->arena, real) : m.path;
    pmlc_strmap_put(&P->arena, &P->module_by_path, key, (void *)(intptr_t)(idx + 1));

    ast *root = pmlc_parse(&P->arena, &P->diag, &P->sources, file, PMLC_PARSE_FILE);
    P->modules.v[idx].root = root;
    if (root) {
        for (int i = 0; i < root->list.n && !P->diag.stop; i++) {
            ast *d = root->list.v[i];
            switch (d->kind) {
            case AST_IMPORT:
                resolve_import(P, idx, d, depth);
                break;
            case AST_FN:
            case AST_CONST:
            case AST_MODEL:
                define_global(P, d);
                if (d->kind == AST_MODEL) PMLC_PUSH(&P->arena, P->models, d);
                break;
            case AST_TRAIN:
            case AST_DISTILL:
                if (parent >= 0) {
                    pmlc_warning(&P->diag, d->loc,
                                 "%s block in an imported module is ignored: only the main file "
                                 "trains",
                                 d->kind == AST_TRAIN ? "train" : "distill");
                } else if (d->kind == AST_TRAIN) {
                    PMLC_PUSH(&P->arena, P->trains, d);
                } else {
                    PMLC_PUSH(&P->arena, P->distills, d);
                }
                break;
            default:
                break;
            }
        }
    }
    P->modules.v[idx].state = 1;
    return root ? 0 : 1;
}

int pmlc_load_program(pmlc_program *P, const char *path, const char *text, size_t len)
{
    if (!text) {
        const char *why = NULL;
        text = read_file(P, path, &len, &why);
        if (!text) {
            pmlc_error(&P->diag, PMLC_NOLOC, "cannot read '%s': %s", path, why);
            return 1;
        }
    } else if (len > PMLC_MAX_SOURCE_BYTES) {
        pmlc_error(&P->diag, PMLC_NOLOC, "'%s' is larger than 64 MiB", path);
        return 1;
    }
    int before = P->diag.errors;
    load_module(P, path, text, len, -1, PMLC_NOLOC, 0);
    const ast *root = P->modules.n ? P->modules.v[0].root : NULL;
    if (P->diag.errors == before && (!root || root->list.n == 0))
        pmlc_error(&P->diag, ((pmlc_loc){P->modules.v[0].file, 0, 0}),
                   "'%s' is empty: a PML file holds import, const, fn, model, train or distill declarations", path);
    return P->diag.errors > before;
}

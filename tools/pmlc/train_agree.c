/* train_agree.c — the facts the ranks of `pmlc train` compare before step 1 (see
 * train_agree.h for the table of options) and the token that proves --out is one
 * folder; the comparison itself is the runtime's (pml_ranks_agree). */
#define _GNU_SOURCE /* asprintf, O_NOFOLLOW, nanosleep */
#include "train_agree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"

enum { TOKEN_HEX = 32, TOKEN_LOOK_MS = 3000 };

/* The facts and the strings they point to (freed together). */
typedef struct facts {
    pml_rank_fact *v;
    int n, cap;
    char **owned;
    int n_owned, cap_owned;
} facts;

/* A formatted string owned by `f` (NULL: out of memory). */
static const char *own(facts *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *own(facts *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = f->owned && f->n_owned < f->cap_owned ? vasprintf(&s, fmt, ap) : -1;
    va_end(ap);
    if (n < 0) return NULL;
    f->owned[f->n_owned++] = s;
    return s;
}

static void add(facts *f, const char *key, const char *value, const char *shown, const char *hint)
{
    if (key && f->v && f->n < f->cap) f->v[f->n++] = (pml_rank_fact){key, value, shown, hint};
}

/* "--set KEY" of a --set KEY=VALUE (whitespace around KEY and VALUE left out). */
static const char *set_key(facts *f, const char *set, const char **value)
{
    const char *eq = strchr(set, '='), *k = set, *e = eq ? eq : set + strlen(set);
    while (*k == ' ' || *k == '\t') k++;
    while (e > k && (e[-1] == ' ' || e[-1] == '\t')) e--;
    const char *v = eq ? eq + 1 : "";
    while (*v == ' ' || *v == '\t') v++;
    *value = v;
    return own(f, "--set %.*s", (int)(e - k), k);
}

/* A path option: compared as given; rank 0 alone uses it. */
static void add_path(facts *f, const char *key, const char *path, const char *hint)
{
    add(f, key, path, path ? own(f, "%s '%s'", key, path) : NULL, hint);
}

/* ---- the --out token --------------------------------------------------------------- */

static char *token_path(const char *out)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", out, PMLC_AGREE_TOKEN_NAME) < 0 ? NULL : p;
}

/* Rank 0: a fresh random token into `out` (created when missing: *made), replacing
 * whatever a killed start-up left there without following it. 0, or 1 having printed why. */
static int token_write(const char *out, char token[TOKEN_HEX + 1], int *made)
{
    unsigned char raw[TOKEN_HEX / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        fprintf(stderr, "pmlc: error: cannot draw a random token for --out: %s\n", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < sizeof raw; i++) snprintf(token + 2 * i, 3, "%02x", raw[i]);
    *made = mkdir(out, 0777) == 0;
    if (!*made && errno != EEXIST) {
        fprintf(stderr, "pmlc: error: cannot create --out '%s': %s\n", out, strerror(errno));
        return 1;
    }
    char *path = token_path(out);
    int fd = -1, rc = 0;
    if (!path || (unlink(path) && errno != ENOENT) ||
        (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0 ||
        write(fd, token, TOKEN_HEX) != TOKEN_HEX) {
        fprintf(stderr, "pmlc: error: cannot write the ranks' token into --out '%s' (%s): %s\n", out,
                path ? path : "?", strerror(errno));
        rc = 1;
    }
    if (fd >= 0 && close(fd) && !rc) {
        fprintf(stderr, "pmlc: error: cannot write the ranks' token into --out '%s': %s\n", out, strerror(errno));
        rc = 1;
    }
    if (rc && path) unlink(path);
    free(path);
    return rc;
}

/* Another rank: the token in its own `out`, looked for until it is rank 0's `want` or
 * the time is up; what was found ("" when nothing) goes to `got`. */
static void token_read(const char *out, const char *want, char got[TOKEN_HEX + 1])
{
    char *path = token_path(out);
    for (int waited = 0; path; waited += 50) {
        got[0] = 0;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && !fstat(fd, &sb) && S_ISREG(sb.st_mode)) {
            ssize_t n = read(fd, got, TOKEN_HEX);
            got[n == TOKEN_HEX ? n : 0] = 0;
        }
        if (fd >= 0) close(fd);
        if (!strcmp(got, want) || waited >= TOKEN_LOOK_MS) break;
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    free(path);
}

/* ---- the comparison ---------------------------------------------------------------- */

int pmlc_agree(pml_context *ctx, const pmlc_train_args *a, const pmlc_agree_run *run, int rank, pml_dist *d)
{
    const int lead = rank == 0, n_sets = a->compile.n_sets;
    facts f = {calloc((size_t)n_sets + 16, sizeof *f.v), 0, n_sets + 16,
               calloc(2 * (size_t)n_sets + 32, sizeof(char *)), 0, 2 * n_sets + 32};
    const char **keys = calloc((size_t)n_sets + 1, sizeof *keys), **values = calloc((size_t)n_sets + 1, sizeof *values);
    char what[64], token[TOKEN_HEX + 1] = "", found[TOKEN_HEX + 1] = "";
    snprintf(what, sizeof what, "rank %d cannot join the run", rank);
    int rc = !f.v || !f.owned || !keys || !values;
    if (rc) fprintf(stderr, "pmlc: error: out of memory\n");

    /* --out first: rank 0 writes its token, every rank learns whether it could and
     * the token, and the others look for it in their own --out. */
    int32_t wrote = 0;
    int made = 0;
    if (!rc && lead && a->out) wrote = token_write(a->out, token, &made) ? -1 : 1;
    if (!rc && (pml_ranks_share(ctx, d, &wrote, sizeof wrote) || pml_ranks_share(ctx, d, token, sizeof token)))
        rc = pmlc_cli_fail(what, pml_context_error(ctx));
    if (!rc && wrote < 0) rc = 1; /* rank 0 said why */
    if (!rc && !lead && a->out) token_read(a->out, token, found);

    const char *all_same = "every rank must run the same plan", *rank0_reads =
        "rank 0 alone reads it and sends each rank its part, so every rank must be given the same",
               *rank0_writes = "rank 0 alone writes it, so every rank must be given the same";
    int64_t seed = a->seed >= 0 ? a->seed : (int64_t)pml_plan_seed(run->plan);
    add(&f, "pmlc", pml_version(), own(&f, "pmlc %s", pml_version()), "every rank must run the same pmlc");
    add(&f, "--model", a->compile.model, NULL, NULL);
    for (int i = 0; i < n_sets && !rc; i++) keys[i] = set_key(&f, a->compile.sets[i], &values[i]);
    for (int i = 0; i < n_sets && !rc; i++) {
        int last = keys[i] != NULL; /* a later --set of the key wins, as in the compiler */
        for (int j = i + 1; j < n_sets && last; j++) last = !keys[j] || strcmp(keys[j], keys[i]);
        if (last) add(&f, keys[i], values[i], own(&f, "%s=%s", keys[i], values[i]), NULL);
    }
    add(&f, "--steps", own(&f, "%lld", (long long)run->steps),
        own(&f, "--steps %lld%s", (long long)run->steps, a->steps < 0 ? " (the train block's)" : ""), NULL);
    add(&f, "--seed", own(&f, "%lld", (long long)seed),
        own(&f, "--seed %lld%s", (long long)seed, a->seed < 0 ? " (the train block's)" : ""), NULL);
    add(&f, "--backend", run->backend == PML_BACKEND_CUDA ? "cuda" : "cpu", NULL, NULL);
    add(&f, "--replicas", own(&f, "%d", run->replicas), NULL, NULL);
    add(&f, "--eval", a->eval > 0 ? own(&f, "%lld", (long long)a->eval) : NULL, NULL, NULL);
    add_path(&f, "--init", a->init, rank0_reads);
    add_path(&f, "--resume", a->resume, rank0_reads);
    add_path(&f, "--metrics", a->metrics, rank0_writes);
    add_path(&f, "--trace", a->trace, rank0_writes);
    add_path(&f, "--timeline", a->timeline, rank0_writes);
    add(&f, "--out", a->out ? (lead ? token : own(&f, "%s", *found ? found : "no token")) : NULL,
        a->out ? own(&f, "--out '%s'", a->out) : NULL,
        "the ranks' --out must be one folder that every rank reaches (rank 0 wrote a token into its --out and the "
        "other rank did not find it in its own: different folders, or a folder not shared between the hosts)");
    add(&f, "plan", own(&f, "%016llx", (unsigned long long)run->plan_hash),
        own(&f, "the plan of '%s' (hash %016llx)", a->file, (unsigned long long)run->plan_hash), all_same);

    if (!rc && pml_ranks_agree(ctx, d, f.v, f.n)) rc = pmlc_cli_fail(what, pml_context_error(ctx));
    /* Every rank has read the token (the comparison needed all of them): it goes, and
     * leaves nothing behind. */
    if (lead && wrote > 0) {
        char *path = token_path(a->out);
        if (path) unlink(path);
        free(path);
    }
    /* Nor does the folder made for it stay: the run creates --out when it writes (and a
     * refused one leaves none). */
    if (lead && made) rmdir(a->out);
    for (int i = 0; i < f.n_owned; i++) free(f.owned[i]);
    free(f.owned);
    free(f.v);
    free(keys);
    free(values);
    return rc;
}

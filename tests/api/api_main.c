/* api_main.c — the conformance program's main: `api_conformance --list` prints every case,
 * `api_conformance --examples DIR --work DIR --pmlc PATH CASE` runs one (exit 0: passed).
 * See api_test.h. */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "api_test.h"

enum { MAX_CASES = 1024 };
static struct {
    const char *name;
    api_case_fn fn;
} cases[MAX_CASES];
static int n_cases;
static const char *examples_dir = ".", *work_dir = ".", *pmlc_path = "pmlc";

void api_register(const char *name, api_case_fn fn)
{
    if (n_cases == MAX_CASES) {
        fprintf(stderr, "api_conformance: more than %d cases; raise MAX_CASES\n", MAX_CASES);
        exit(2);
    }
    cases[n_cases].name = name, cases[n_cases++].fn = fn;
}

const char *api_examples(void) { return examples_dir; }
const char *api_work(void) { return work_dir; }
const char *api_pmlc(void) { return pmlc_path; }

static const char *joined(const char *dir, const char *name)
{
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

const char *api_example_path(const char *name) { return joined(examples_dir, name); }
const char *api_work_path(const char *name) { return joined(work_dir, name); }

int api_compile_example(const char *name, unsigned char **bytes, size_t *len)
{
    pmlc_options opt = {0};
    opt.diag_out = stderr;
    pmlc_session *c = pmlc_session_create(&opt);
    if (!c) return 1;
    int errors = pmlc_session_check_file(c, api_example_path(name));
    if (!errors) errors = pmlc_session_plan_bytes(c, bytes, len);
    pmlc_session_destroy(c);
    return errors;
}

int api_open_mlp(pml_context **ctx, pml_plan **plan, pml_session **s)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    CHECK(api_compile_example("mlp.pml", &bytes, &len) == 0);
    CHECK_STATUS(pml_context_create(ctx), PML_OK);
    CHECK_STATUS(pml_plan_open_memory(*ctx, bytes, len, "mlp.pml", plan), PML_OK);
    free(bytes);
    CHECK_STATUS(pml_session_create(*ctx, *plan, PML_BACKEND_CPU, 1234, s), PML_OK);
    return 0;
}

void api_close_mlp(pml_context *ctx, pml_plan *plan, pml_session *s)
{
    pml_session_destroy(s);
    pml_plan_close(plan);
    pml_context_destroy(ctx);
}

void api_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int main(int argc, char **argv)
{
    const char *which = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            for (int c = 0; c < n_cases; c++) printf("%s\n", cases[c].name);
            return 0;
        }
        if (i + 1 < argc && !strcmp(argv[i], "--examples")) examples_dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--work")) work_dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--pmlc")) pmlc_path = argv[++i];
        else if (argv[i][0] != '-' && !which) which = argv[i];
        else {
            fprintf(stderr, "usage: api_conformance --list | [--examples DIR] [--work DIR] [--pmlc PATH] CASE\n");
            return 2;
        }
    }
    if (!which) {
        fprintf(stderr, "api_conformance: name a case (--list prints them)\n");
        return 2;
    }
    for (int c = 0; c < n_cases; c++) {
        if (strcmp(cases[c].name, which)) continue;
        mkdir(work_dir, 0777); /* the test's own scratch folder; it may exist */
        int failed = cases[c].fn();
        printf("%s: %s\n", which, failed ? "FAILED" : "passed");
        return failed ? 1 : 0;
    }
    fprintf(stderr, "api_conformance: no case '%s' (--list prints them)\n", which);
    return 2;
}

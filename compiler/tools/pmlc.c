/* pmlc.c — the command line: check programs and print their stage plans.
 *
 * Exit status: 0 success, 1 errors in the input, 2 wrong usage. Help and version go
 * to stdout; diagnostics to stderr. */
#define _DEFAULT_SOURCE /* isatty */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/ops.h"
#include "pmlc.h"

static const char usage_text[] =
    "usage: pmlc <command> [options] FILE...\n"
    "\n"
    "commands:\n"
    "  check FILE...     parse and check PML programs\n"
    "  plan FILE         print the stage plan of a program's model\n"
    "  ops               list the primitive operations\n"
    "  version           print the version\n"
    "  help              print this help\n"
    "\n"
    "options:\n"
    "  -I DIR              look for imports in DIR too (repeatable)\n"
    "  --set KEY=VALUE     override a train field, e.g. --set batch=128 (repeatable)\n"
    "  --model NAME        the model to plan (default: the trained one)\n"
    "  --json              plan as JSON (format: docs/plan-json.md)\n"
    "  --dot               plan as a Graphviz drawing\n"
    "  --color=WHEN        colour diagnostics: auto (default), always, never; NO_COLOR is honoured\n"
    "  --max-errors N      stop after N errors (default 20)\n"
    "  -h, --help          print this help\n"
    "  --version           print the version\n"
    "\n"
    "environment:\n"
    "  PML_PATH            ':'-separated folders searched for imports after -I\n"
    "\n"
    "exit status: 0 success, 1 errors in the input, 2 wrong usage\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("pmlc: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage: pmlc <command> [options] FILE...  (pmlc help for more)\n", stderr);
    return 2;
}

static void print_ops(void)
{
    static const char *const classes[] = {"source", "elementwise", "reduce", "movement", "gather", "matmul"};
    printf("%-12s %-12s %-6s %s\n", "op", "class", "inputs", "meaning");
    for (int i = 0; i < OP_COUNT; i++) {
        const pmlc_op_info *o = &pmlc_ops[i];
        char arity[16];
        if (o->max_in < 0)
            snprintf(arity, sizeof arity, "%d+", o->min_in);
        else
            snprintf(arity, sizeof arity, "%d", o->min_in);
        printf("%-12s %-12s %-6s %s\n", o->name, classes[o->cls], arity, o->doc);
    }
}

/* Value of an option written as "--opt VALUE" or "--opt=VALUE". */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
    if (!strcmp(argv[*i], name)) return *i + 1 < argc ? argv[++*i] : NULL;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *cmd = NULL, *color = "auto", *model = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    const char **includes = calloc((size_t)argc + 1, sizeof *includes);
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int n_files = 0, n_inc = 0, n_sets = 0, max_errors = 0, only_files = 0;
    pmlc_plan_format fmt = PMLC_PLAN_TEXT;
    if (!files || !includes || !sets) return 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (only_files || a[0] != '-' || !a[1]) {
            if (!cmd)
                cmd = a;
            else
                files[n_files++] = a;
        } else if (!strcmp(a, "--")) {
            only_files = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("pmlc %s\n", pmlc_version());
            return 0;
        } else if (!strcmp(a, "--json")) {
            fmt = PMLC_PLAN_JSON;
        } else if (!strcmp(a, "--dot")) {
            fmt = PMLC_PLAN_DOT;
        } else if (!strncmp(a, "-I", 2) && a[2]) {
            includes[n_inc++] = a + 2;
        } else if (!strcmp(a, "-I")) {
            if (i + 1 >= argc) return usage_error("%s needs a folder", a);
            includes[n_inc++] = argv[++i];
        } else if (!strncmp(a, "--set", 5) && (a[5] == 0 || a[5] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--set"))) return usage_error("%s needs KEY=VALUE", a);
            sets[n_sets++] = v;
        } else if (!strncmp(a, "--model", 7) && (a[7] == 0 || a[7] == '=')) {
            if (!(v = option_value(argc, argv, &i, "--model")) || !*v) return usage_error("%s needs a model name", a);
            model = v;
        } else if (!strncmp(a, "--max-errors", 12) && (a[12] == 0 || a[12] == '=')) {
            char *end;
            if (!(v = option_value(argc, argv, &i, "--max-errors"))) return usage_error("%s needs a number", a);
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 1 || n > 1000000)
                return usage_error("--max-errors needs a number from 1, not '%s'", v);
            max_errors = (int)n;
        } else if (!strcmp(a, "--color")) {
            color = "always";
        } else if (!strncmp(a, "--color=", 8)) {
            color = a + 8;
            if (strcmp(color, "auto") && strcmp(color, "always") && strcmp(color, "never"))
                return usage_error("--color takes auto, always or never, not '%s'", color);
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (!cmd) return usage_error("%s", "no command given");
    if (!strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "version")) {
        printf("pmlc %s\n", pmlc_version());
        return 0;
    }
    if (!strcmp(cmd, "ops")) {
        print_ops();
        return 0;
    }
    int is_plan = !strcmp(cmd, "plan");
    if (!is_plan && strcmp(cmd, "check")) return usage_error("unknown command '%s'", cmd);
    if (n_files == 0) return usage_error("'%s' needs a file", cmd);
    if (is_plan && n_files > 1) return usage_error("%s", "'plan' takes one file");

    const char *no_color = getenv("NO_COLOR");
    int use_color =
        !strcmp(color, "always") || (!strcmp(color, "auto") && isatty(STDERR_FILENO) && !(no_color && *no_color));
    pmlc_options opt = {includes, n_inc, stderr, use_color, max_errors, sets, n_sets, model};
    int failed = 0;
    for (int f = 0; f < n_files; f++) {
        pmlc_session *s = pmlc_session_create(&opt);
        if (!s) {
            fputs("pmlc: out of memory\n", stderr);
            return 1;
        }
        int errors = pmlc_session_check_file(s, files[f]);
        if (!errors && is_plan) errors = pmlc_session_plan(s, fmt, stdout);
        errors = pmlc_session_errors(s);
        if (errors) {
            int limit = max_errors ? max_errors : 20;
            if (errors > limit)
                fprintf(stderr, "%d error%s shown, more suppressed (--max-errors %d).\n", limit, limit == 1 ? "" : "s",
                        limit);
            else if (errors == limit)
                fprintf(stderr, "%d error%s generated; stopped at the limit (--max-errors %d).\n", errors,
                        errors == 1 ? "" : "s", limit);
            else
                fprintf(stderr, "%d error%s generated.\n", errors, errors == 1 ? "" : "s");
            failed = 1;
        }
        pmlc_session_destroy(s);
    }
    free(files);
    free(includes);
    free(sets);
    return failed;
}

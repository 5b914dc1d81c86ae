/* cli_util.c — see cli_util.h. */
#include "cli_util.h"

#include <stdio.h>
#include <string.h>

int pmlc_cli_fail(const char *what, const char *why)
{
    fprintf(stderr, "pmlc: error: %s%s%s\n", what, why ? ": " : "", why ? why : "");
    return 1;
}

int pmlc_cli_devices(pml_context *ctx, const int *gpus, int n, int local)
{
    if (local ? pml_context_set_devices_local(ctx) : pml_context_set_devices(ctx, gpus, n))
        return pmlc_cli_fail("--devices", pml_context_error(ctx));
    return 0;
}

int pmlc_cli_backend(pml_context *ctx, pml_backend want, const pml_plan *plan, pml_backend *got)
{
    if (pml_backend_choose(ctx, plan, want, got)) return pmlc_cli_fail("the backend", pml_context_error(ctx));
    return 0;
}

/* `arg` as one shell word: as is when it holds only characters no shell treats
 * specially, else in single quotes (a ' inside written '\''). */
static void put_word(FILE *f, const char *arg)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%";
    if (*arg && strspn(arg, plain) == strlen(arg)) {
        fputs(arg, f);
        return;
    }
    fputc('\'', f);
    for (const char *c = arg; *c; c++)
        if (*c == '\'')
            fputs("'\\''", f);
        else
            fputc(*c, f);
    fputc('\'', f);
}

/* Whether argv[i] is `name` with its value in the next argument, or name=VALUE. */
static int option_is(const char *arg, const char *name, int *takes_next)
{
    size_t n = strlen(name);
    *takes_next = !strcmp(arg, name);
    return *takes_next || (!strncmp(arg, name, n) && arg[n] == '=');
}

void pmlc_cli_say_resume(int argc, char *const *argv, const char *dir, int world)
{
    fputs("resume with: ", stderr);
    /* The command as typed, less what a resume replaces: --resume, and --init (a resume
     * brings its own weights). */
    for (int i = 0; i < argc; i++) {
        int next = 0;
        if (i > 0 && (option_is(argv[i], "--resume", &next) || option_is(argv[i], "--init", &next))) {
            i += next;
            continue;
        }
        if (i) fputc(' ', stderr);
        put_word(stderr, argv[i]);
    }
    fputs(" --resume ", stderr);
    put_word(stderr, dir);
    fputs(world > 1 ? " (under the launcher, on any number of ranks)\n" : "\n", stderr);
}

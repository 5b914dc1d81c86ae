/* data_test.h — what the data tests share: CHECK (tests/core/check.h) and a runner that
 * runs the behaviour named on the command line, so each is its own CTest test. */
#ifndef PML_DATA_TEST_H
#define PML_DATA_TEST_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/error.h"

typedef struct data_test {
    const char *name;
    void (*run)(void);
} data_test;

/* Runs tests[name] for the name in argv[1] (all of them without one); the exit status
 * is the failure count, 2 for an unknown name. */
static int data_test_main(int argc, char **argv, const data_test *tests, int n)
{
    int ran = 0;
    for (int k = 0; k < n; k++) {
        if (argc > 1 && strcmp(argv[1], tests[k].name)) continue;
        tests[k].run();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "%s: no behaviour named '%s'\n", argv[0], argc > 1 ? argv[1] : "");
        return 2;
    }
    return check_summary(argc > 1 ? argv[1] : argv[0]);
}

/* CHECK that a call failed with `code` and exactly the message `msg`. */
#define CHECK_ERR(call, code, want)                                                             \
    do {                                                                                        \
        pml_err e_ = {0};                                                                       \
        pml_err *err = &e_;                                                                     \
        CHECK((call) == (code));                                                                \
        CHECK(!strcmp(e_.msg, (want)));                                                         \
        if (strcmp(e_.msg, (want))) fprintf(stderr, "  got: %s\n  want: %s\n", e_.msg, (want)); \
    } while (0)

#endif

/* fuzz_frontend.c — libFuzzer target for the compiler front end and planner.
 *
 * Each input is one PML source text named "fuzz.pml". It is checked with diagnostics
 * discarded and, when the check finds no error, planned as text into /dev/null. Any
 * crash, hang, leak or sanitizer report is a finding; errors in the input are not. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pmlc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        if (!devnull)
            return 0;
    }
    pmlc_options opt = {0};
    opt.diag_out = NULL;
    pmlc_session *s = pmlc_session_create(&opt);
    if (!s)
        return 0;
    if (pmlc_session_check_text(s, "fuzz.pml", (const char *)data, size) == 0)
        pmlc_session_plan(s, PMLC_PLAN_TEXT, devnull);
    pmlc_session_destroy(s);
    return 0;
}

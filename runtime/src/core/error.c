/* error.c — see error.h. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

pml_status pml_err_set(pml_err *e, pml_status code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

/* memory.c — the run's memory checks and record (see memory.h). */
#include "run/memory.h"

#include <inttypes.h>
#include <stdio.h>

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

pml_status pml_run_memory_check(pml_pipeline *p, const pml_plan *pl, const char *when, pml_err *err)
{
    if (pl->conf.memory <= 0) return PML_OK;
    int first, last;
    pml_pipeline_devices(p, &first, &last);
    for (int d = first; d < last; d++) {
        pml_backend_memory m;
        if (!pml_pipeline_memory(p, d, &m)) return PML_OK;
        size_t total = pml_backend_memory_total(&m);
        if (total <= (size_t)pl->conf.memory) continue;
        return pml_err_set(err, PML_ERR_NOMEM,
                           "stage %d holds %.1f MiB %s (values %.1f, gradients %.1f, optimizer state %.1f, weight "
                           "copies %.1f, scratch %.1f, temporaries %.1f MiB), over memory = %.1f MiB per stage device: "
                           "raise the limit, or lower what the stage keeps (more micro-batches, recompute)",
                           d, mib(total), when, mib(m.values), mib(m.grads), mib(m.optimizer), mib(m.derived),
                           mib(m.scratch), mib(m.temporaries), mib((size_t)pl->conf.memory));
    }
    return PML_OK;
}

void pml_run_memory_record(pml_pipeline *p, const pml_plan *pl, char *out, size_t cap)
{
    int first, last, len = 0;
    pml_pipeline_devices(p, &first, &last);
    out[0] = 0;
    for (int d = first; d < last && len >= 0 && (size_t)len < cap; d++) {
        pml_backend_memory m;
        if (!pml_pipeline_memory(p, d, &m)) {
            out[0] = 0;
            return;
        }
        if (d == first)
            len += snprintf(out + len, cap - (size_t)len, "{\"limit_bytes\": %" PRId64 ", \"stages\": [",
                            pl->conf.memory);
        if (len < 0 || (size_t)len >= cap) break;
        len += snprintf(out + len, cap - (size_t)len,
                        "%s{\"stage\": %d, \"bytes\": %zu, \"values\": %zu, \"grads\": %zu, \"optimizer\": %zu, "
                        "\"derived\": %zu, \"scratch\": %zu, \"temporaries\": %zu}",
                        d > first ? ", " : "", d, pml_backend_memory_total(&m), m.values, m.grads, m.optimizer,
                        m.derived, m.scratch, m.temporaries);
    }
    if (len > 0 && (size_t)len < cap) len += snprintf(out + len, cap - (size_t)len, "]}");
    if (len < 0 || (size_t)len >= cap) out[0] = 0; /* too many stages for `cap`: no record rather than half of one */
}

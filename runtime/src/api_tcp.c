/* api_tcp.c — pml.h's pml_tcp_create over exec/tcp/dist_tcp.h: ranks over TCP, part of
 * libpml (it needs nothing but the C library). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "exec/tcp/dist_tcp.h"
#include "plan/plan.h"

pml_status pml_tcp_create(pml_context *ctx, const pml_plan *plan, const pml_ranks_layout *layout,
                          const char *master_addr, int master_port, double timeout_s, pml_dist **out)
{
    if (out) *out = NULL;
    if (!ctx) return PML_ERR_INVALID_ARG;
    pml_err err = {0};
    pml_status st = pml_api_check_join(&err, __func__, plan, layout, timeout_s, out);
    const char *addr = master_addr ? master_addr : getenv("MASTER_ADDR");
    const char *port_var = master_port ? NULL : getenv("MASTER_PORT");
    long port = master_port;
    if (!st && port_var) {
        char *end = NULL;
        errno = 0;
        port = strtol(port_var, &end, 10);
        if (errno || end == port_var || *end) port = -1;
    }
    if (!st)
        pml_api_check(&err, addr && *addr, __func__, "no address of rank 0: master_addr is NULL and MASTER_ADDR is %s",
                      addr ? "empty" : "not set");
    /* Under torchrun the agent's own store (torch.distributed's rendezvous) listens on
     * MASTER_PORT, and it says so to its workers: rank 0 takes the port after it. */
    const char *agent = getenv("TORCHELASTIC_USE_AGENT_STORE");
    int after_agent = port_var && agent && !strcmp(agent, "True") && port >= 1 && port < 65535;
    if (after_agent) port++;
    char given[32];
    snprintf(given, sizeof given, "%d", master_port);
    if (!st && !err.code)
        pml_api_check(&err, port >= 1 && port <= 65535, __func__, "%s is %s, not a port (1 to 65535)",
                      port_var ? "MASTER_PORT" : "master_port",
                      port_var      ? port_var
                      : master_port ? given
                                    : "0 and MASTER_PORT is not set");
    st = err.code;
    if (!st) {
        pml_dist_tcp_conf conf = {.devices = pml_plan_devices(plan),
                                  .schedule = (int)plan->conf.schedule,
                                  .rank = layout->rank,
                                  .world = layout->world,
                                  .replicas = layout->replicas,
                                  .master_addr = addr,
                                  .master_port = (int)port,
                                  .port_note =
                                      after_agent ? " (MASTER_PORT + 1: torchrun's agent holds MASTER_PORT)" : "",
                                  .timeout_s = timeout_s};
        st = pml_dist_tcp_create(&conf, out, &err);
    }
    return pml_api_record(ctx, st, &err);
}

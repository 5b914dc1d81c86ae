/* session_int.h — for tests and the runtime's in-process compile path only: the
 * elaborated graph and plan behind a checked session (see pmlc.h for the session). */
#ifndef PMLC_SESSION_INT_H
#define PMLC_SESSION_INT_H

#include "plan/placement.h"

/* The graph and plan of the model pmlc_session_plan would print (after a successful
 * check), or NULL after reporting why. Owned by the session. */
pmlc_graph *pmlc_session_graph(pmlc_session *s, const pmlc_plan **plan);

/* The program behind a session: its sources, diagnostics and symbol names. */
pmlc_program *pmlc_session_program(pmlc_session *s);

#endif

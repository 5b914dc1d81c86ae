/* pml.h — the one public header of libpml, the PML runtime.
 *
 * This is the runtime's first brick: its version. Loading plans, sessions, training
 * and inference arrive with the CPU backend (see docs/design.md); they will all be
 * declared here, in C99, behind opaque handles.
 *
 * Thread safety: pml_version() may be called from any thread. */
#ifndef PML_H
#define PML_H

#ifdef __cplusplus
extern "C" {
#endif

#define PML_VERSION_MAJOR 0
#define PML_VERSION_MINOR 1
#define PML_VERSION_PATCH 0

/* The version of the library linked, as "MAJOR.MINOR.PATCH". */
const char *pml_version(void);

#ifdef __cplusplus
}
#endif
#endif

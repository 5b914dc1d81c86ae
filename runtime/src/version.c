/* version.c — the runtime's version (pml.h). */
#include "pml.h"

const char *pml_version(void) { return PML_VERSION_STRING; }

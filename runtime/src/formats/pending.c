/* pending.c — see pending.h. A slot is free (0), being filled (1) or holds a name (2);
 * a handler reads only names in state 2. */
#include "formats/pending.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static atomic_int state[PML_PENDING_MAX];
static char names[PML_PENDING_MAX][PATH_MAX];

int pml_pending_add(const char *path)
{
    size_t n = strlen(path);
    if (n >= PATH_MAX) return 0;
    for (int i = 0; i < PML_PENDING_MAX; i++) {
        int free_slot = 0;
        if (!atomic_compare_exchange_strong(&state[i], &free_slot, 1)) continue;
        memcpy(names[i], path, n + 1);
        atomic_store(&state[i], 2);
        return i + 1;
    }
    return 0;
}

void pml_pending_drop(int ticket)
{
    if (ticket > 0 && ticket <= PML_PENDING_MAX) atomic_store(&state[ticket - 1], 0);
}

void pml_pending_remove_all(void)
{
    for (int i = 0; i < PML_PENDING_MAX; i++)
        if (atomic_load(&state[i]) == 2) unlink(names[i]);
}

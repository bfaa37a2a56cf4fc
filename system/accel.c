/*
 * Accelerator registry: engines register themselves from their own files.
 */
#include "kestrel/accel.h"

#include <string.h>

static const AccelOps *accels[8];
static int n_accels;

void accel_register(const AccelOps *ops)
{
    g_assert(n_accels < (int)ARRAY_LEN(accels));
    accels[n_accels++] = ops;
}

const AccelOps *accel_find(const char *name)
{
    for (int i = 0; i < n_accels; i++)
        if (!strcmp(accels[i]->name, name))
            return accels[i];
    return NULL;
}

void accel_list(FILE *out)
{
    fprintf(out, "Accelerators:\n");
    for (int i = 0; i < n_accels; i++) {
        char *why = NULL;
        bool ok = !accels[i]->probe || accels[i]->probe(&why);
        char *caveat = ok && accels[i]->caveat ? accels[i]->caveat() : NULL;
        if (caveat)
            fprintf(out, "  %-6s available, but %s\n", accels[i]->name, caveat);
        else
            fprintf(out, "  %-6s %s\n", accels[i]->name,
                    ok ? "available" : why ? why : "unavailable");
        g_free(caveat);
        g_free(why);
    }
}

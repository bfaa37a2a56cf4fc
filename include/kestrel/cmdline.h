/*
 * Command-line parsing (system/vl.c): QEMU's option syntax into MachineConfig.
 */
#ifndef KESTREL_CMDLINE_H
#define KESTREL_CMDLINE_H

#include "kestrel/machine.h"

typedef enum {
    CMDLINE_OK,          /* run the machine */
    CMDLINE_EXIT_OK,     /* -help, -version, "help" queries: exit 0 */
    CMDLINE_ERROR,       /* errp set: print it, exit 1 */
} CmdlineResult;

CmdlineResult cmdline_parse(int argc, char **argv, MachineConfig *cfg, GError **errp);
void machine_config_init(MachineConfig *cfg);

#endif

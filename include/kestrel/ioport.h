/*
 * The 64K x86 I/O port space: a dispatch table filled from per-device port
 * ranges.  Handlers see the offset from the start of their range.  Unclaimed
 * ports read as all-ones and ignore writes (logged under -d unimp).
 */
#ifndef KESTREL_IOPORT_H
#define KESTREL_IOPORT_H

#include "kestrel/common.h"

typedef struct IoPortOps {
    uint32_t (*read)(void *opaque, uint16_t offset, unsigned size);
    void (*write)(void *opaque, uint16_t offset, uint32_t value, unsigned size);
    /*
     * Widest access the handler takes (1, 2 or 4; 0 means 1).  Wider guest
     * accesses are split into consecutive narrower ones, little-endian.
     */
    unsigned max_access;
} IoPortOps;

typedef struct IoPortRange IoPortRange;

/* Claims [base, base+count); fails with an error naming both owners on overlap. */
IoPortRange *ioport_register(uint16_t base, unsigned count, const IoPortOps *ops,
                             void *opaque, const char *name, GError **errp);
void ioport_unregister(IoPortRange *range);
/* Move a claimed range (PCI I/O BARs); false on overlap (range left where it was). */
bool ioport_move(IoPortRange *range, uint16_t new_base);

uint32_t ioport_read(uint16_t port, unsigned size);
void ioport_write(uint16_t port, uint32_t value, unsigned size);

/* Owner name of a port, or NULL (for dumps and tests). */
const char *ioport_owner(uint16_t port);

#endif

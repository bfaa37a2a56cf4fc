/*
 * POST diagnostic port 0x80 ("ioport80").
 *
 * BIOSes write progress codes here and OSes use "out %al, $0x80" as a short
 * I/O delay (Linux's outb_p).  As on QEMU (pc-platform.md §1), writes are
 * ignored and reads return 0xff; -d ioport shows the codes if wanted.
 * Nothing else is modelled: there is no state.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"

#define IOPORT80_ADDR   0x80

static uint32_t ioport80_read(void *opaque, uint16_t offset, unsigned size)
{
    return 0xffffffffu >> (32 - 8 * (size ? size : 1));
}

static void ioport80_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
}

static const IoPortOps ioport80_ops = {
    .read = ioport80_read,
    .write = ioport80_write,
    .max_access = 1,
};

static void ioport80_reset(void *opaque)
{
}

static void *ioport80_create(Machine *m, const DeviceProps *props, GError **errp)
{
    /* No state; the range handle doubles as the device state pointer. */
    IoPortRange *r = ioport_register(IOPORT80_ADDR, 1, &ioport80_ops, NULL, "ioport80", errp);
    return r;
}

static const PropDef ioport80_props[] = {
    { NULL }
};

static const DeviceType ioport80_type = {
    .name = "ioport80",
    .desc = "POST diagnostic port 0x80 (writes ignored, reads 0xff)",
    .bus = "isa",
    .user_creatable = false,
    .props = ioport80_props,
    .create = ioport80_create,
    .reset = ioport80_reset,
};

DEVICE_TYPE_REGISTER(ioport80_type)

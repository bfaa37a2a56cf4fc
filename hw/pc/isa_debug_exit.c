/*
 * isa-debug-exit: a test device with no hardware counterpart.  A write of
 * value v (any width) to its port range ends the emulator with exit status
 * (v << 1) | 1, so a test guest can report pass/fail and status 0 never
 * collides with a normal shutdown.  Reads return 0.
 *
 * Behaviour follows QEMU's isa-debug-exit (hw/misc/debugexit.c), as
 * summarised in docs/pc-platform.md (port 0x501-0x502 by default); test
 * kernels commonly use -device isa-debug-exit,iobase=0xf4,iosize=4.
 */
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

#define DEBUG_EXIT_IOBASE_DEFAULT   "0x501"
#define DEBUG_EXIT_IOSIZE_DEFAULT   "2"
/* Any access from 1 to 4 bytes is one write, as QEMU accepts. */
#define DEBUG_EXIT_MAX_ACCESS       4

typedef struct DebugExitState {
    uint16_t iobase;
    uint16_t iosize;
    IoPortRange *io;
} DebugExitState;

static uint32_t debug_exit_read(void *opaque, uint16_t offset, unsigned size)
{
    return 0;
}

static void debug_exit_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    /* The process exit status keeps only the low 8 bits, as in QEMU. */
    machine_request_exit((int)(((uint64_t)value << 1) | 1));
}

static const IoPortOps debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
    .max_access = DEBUG_EXIT_MAX_ACCESS,
};

static void *debug_exit_create(Machine *m, const DeviceProps *props, GError **errp)
{
    uint64_t base = device_props_get_uint(props, "iobase");
    uint64_t size = device_props_get_uint(props, "iosize");
    if (base > 0xffff || size == 0 || size > 0x10000 - base) {
        kestrel_set_error(errp, "isa-debug-exit: iobase=0x%" G_GINT64_MODIFIER "x "
                          "iosize=0x%" G_GINT64_MODIFIER "x does not fit in the "
                          "I/O port space (iosize must be 1 or more)", base, size);
        return NULL;
    }
    DebugExitState *s = g_new0(DebugExitState, 1);
    s->iobase = (uint16_t)base;
    s->iosize = (uint16_t)size;
    s->io = ioport_register(s->iobase, (unsigned)size, &debug_exit_ops, s,
                            "isa-debug-exit", errp);
    if (!s->io) {
        g_free(s);
        return NULL;
    }
    return s;
}

static const PropDef debug_exit_props[] = {
    { "iobase", PROP_UINT, DEBUG_EXIT_IOBASE_DEFAULT, "first I/O port" },
    { "iosize", PROP_UINT, DEBUG_EXIT_IOSIZE_DEFAULT, "number of I/O ports" },
    { NULL },
};

static const DeviceType debug_exit_type = {
    .name = "isa-debug-exit",
    .desc = "test device: a port write exits with status (value << 1) | 1",
    .bus = "isa",
    .user_creatable = true,
    .props = debug_exit_props,
    .create = debug_exit_create,
};

DEVICE_TYPE_REGISTER(debug_exit_type)

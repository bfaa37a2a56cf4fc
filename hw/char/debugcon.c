/*
 * isa-debugcon: the Bochs/QEMU debug console port.  Every byte the guest
 * writes goes to a character backend; a read returns a fixed "readback"
 * byte.  SeaBIOS writes its log to port 0x402 and only does so after it
 * reads 0xE9 back from that port (docs/pc-platform.md, port table [SB]);
 * Bochs' own debug port is 0xE9, the default here.
 *
 * One port, byte wide: a wider access is split by the I/O layer into
 * consecutive byte accesses, so only its low byte reaches this port.
 * Not modelled: nothing else exists on the real thing.
 */
#include "kestrel/chardev.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

#define DEBUGCON_IOBASE_DEFAULT     "0xe9"
#define DEBUGCON_READBACK_DEFAULT   "0xe9"

typedef struct DebugconState {
    uint8_t readback;
    uint16_t iobase;
    CharFrontend *fe;
    IoPortRange *io;
} DebugconState;

static uint32_t debugcon_read(void *opaque, uint16_t offset, unsigned size)
{
    DebugconState *s = opaque;
    return s->readback;
}

static void debugcon_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    DebugconState *s = opaque;
    uint8_t byte = (uint8_t)value;
    /* Output to a slow or closed backend is the backend's problem; never stall here. */
    char_fe_write(s->fe, &byte, 1);
}

static const IoPortOps debugcon_ops = {
    .read = debugcon_read,
    .write = debugcon_write,
    .max_access = 1,
};

/* The debug console takes no input: the guest has no way to read it. */
static int debugcon_can_receive(void *opaque)
{
    return 0;
}

static void debugcon_receive(void *opaque, const uint8_t *buf, int len)
{
}

static const CharFrontendOps debugcon_fe_ops = {
    .can_receive = debugcon_can_receive,
    .receive = debugcon_receive,
};

static void *debugcon_create(Machine *m, const DeviceProps *props, GError **errp)
{
    uint64_t base = device_props_get_uint(props, "iobase");
    uint64_t readback = device_props_get_uint(props, "readback");
    const char *chr_id = device_props_get_str(props, "chardev");
    if (base > 0xffff) {
        kestrel_set_error(errp, "isa-debugcon: iobase=0x%" G_GINT64_MODIFIER "x is not "
                          "an I/O port (0..0xffff)", base);
        return NULL;
    }
    if (readback > 0xff) {
        kestrel_set_error(errp, "isa-debugcon: readback=0x%" G_GINT64_MODIFIER "x does "
                          "not fit in a byte", readback);
        return NULL;
    }
    if (!chr_id) {
        kestrel_set_error(errp, "isa-debugcon: needs chardev=ID (a -chardev) or use "
                          "-debugcon SPEC");
        return NULL;
    }
    Chardev *chr = chardev_find(chr_id);
    if (!chr) {
        kestrel_set_error(errp, "isa-debugcon: no -chardev with id '%s'", chr_id);
        return NULL;
    }

    DebugconState *s = g_new0(DebugconState, 1);
    s->readback = (uint8_t)readback;
    s->iobase = (uint16_t)base;
    s->fe = chardev_attach(chr, &debugcon_fe_ops, s, errp);
    if (!s->fe) {
        g_free(s);
        return NULL;
    }
    s->io = ioport_register(s->iobase, 1, &debugcon_ops, s, "isa-debugcon", errp);
    if (!s->io) {
        char_fe_detach(s->fe);
        g_free(s);
        return NULL;
    }
    return s;
}

static const PropDef debugcon_props[] = {
    { "iobase", PROP_UINT, DEBUGCON_IOBASE_DEFAULT, "I/O port" },
    { "chardev", PROP_CHARDEV, NULL, "backend that receives the output" },
    { "readback", PROP_UINT, DEBUGCON_READBACK_DEFAULT, "byte returned by a port read" },
    { NULL },
};

static const DeviceType debugcon_type = {
    .name = "isa-debugcon",
    .desc = "debug console port: bytes written go to a chardev",
    .bus = "isa",
    .user_creatable = true,
    .props = debugcon_props,
    .create = debugcon_create,
};

DEVICE_TYPE_REGISTER(debugcon_type)

/*
 * PC reset port ("pc-reset-ports"): 0x92, PS/2 System Control Port A (IBM
 * PS/2 Technical Reference; PIIX3 datasheet 290550 "Port 92h"): bit 0
 * ALT_RST (fast reset on a 0->1 transition), bit 1 ALT_A20_GATE.  SeaBIOS
 * read-modify-writes bit 1 to switch A20, so the register reads back what
 * was written.
 *
 * The reset becomes machine_request_reset() (exit 0 under -no-reboot).  A20
 * is always enabled in Kestrel: turning it off is logged under -d unimp and
 * otherwise ignored.
 *
 * The other reset port, 0xCF9 (PIIX3 Reset Control Register), belongs to
 * the PIIX3 model (hw/pc/piix3.c).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

/* ---- Register table ---- */

#define PORT92_ADDR             0x92
#define PORT92_ALT_RST          0x01
#define PORT92_ALT_A20_GATE     0x02
#define PORT92_WRITABLE         (PORT92_ALT_RST | PORT92_ALT_A20_GATE)

/* ---- State ---- */

typedef struct PcResetPorts {
    uint8_t port92;

    IoPortRange *port92_range;
} PcResetPorts;

/* ---- Behaviour ---- */

static uint32_t port92_read(void *opaque, uint16_t offset, unsigned size)
{
    PcResetPorts *s = opaque;
    return s->port92;
}

static void port92_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PcResetPorts *s = opaque;
    uint8_t old = s->port92;
    uint8_t v = value & PORT92_WRITABLE;

    if ((old & PORT92_ALT_A20_GATE) && !(v & PORT92_ALT_A20_GATE))
        LOG(LOG_UNIMP, "port 0x92: guest turned A20 off; A20 stays enabled\n");
    if (value & ~PORT92_WRITABLE)
        LOG(LOG_GUEST_ERROR, "port 0x92: write 0x%02x sets reserved bits\n", value & 0xff);
    s->port92 = v;
    if (!(old & PORT92_ALT_RST) && (v & PORT92_ALT_RST))
        machine_request_reset();
}

static const IoPortOps port92_ops = {
    .read = port92_read,
    .write = port92_write,
    .max_access = 1,
};

/* Power-on: 0 (A20 is nevertheless on, as on QEMU). */
static void reset_ports_reset(void *opaque)
{
    PcResetPorts *s = opaque;

    s->port92 = 0;
}

/* ---- Registration ---- */

static void *reset_ports_create(Machine *m, const DeviceProps *props, GError **errp)
{
    PcResetPorts *s = g_new0(PcResetPorts, 1);

    s->port92_range = ioport_register(PORT92_ADDR, 1, &port92_ops, s, "port92", errp);
    if (!s->port92_range)
        goto fail;
    reset_ports_reset(s);
    return s;

fail:
    g_free(s);
    return NULL;
}

static const PropDef reset_ports_props[] = {
    { NULL }
};

static const DeviceType reset_ports_type = {
    .name = "pc-reset-ports",
    .desc = "PC reset port 0x92 (system control port A)",
    .bus = "isa",
    .user_creatable = false,
    .props = reset_ports_props,
    .create = reset_ports_create,
    .reset = reset_ports_reset,
};

DEVICE_TYPE_REGISTER(reset_ports_type)

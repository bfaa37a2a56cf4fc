/*
 * PC reset ports ("pc-reset-ports"):
 *  - 0x92, PS/2 System Control Port A (IBM PS/2 Technical Reference; PIIX3
 *    datasheet 290550 "Port 92h"): bit 0 ALT_RST (fast reset on a 0->1
 *    transition), bit 1 ALT_A20_GATE.  SeaBIOS read-modify-writes bit 1 to
 *    switch A20, so the register reads back what was written.
 *  - 0xCF9, PIIX3 Reset Control Register (290550 "RC—Reset Control Register",
 *    byte access only): bit 1 SYS_RST selects a hard (system) rather than a
 *    soft (CPU) reset, bit 2 RST_CPU starts the reset on a 0->1 transition.
 *    SeaBIOS writes 0x02 then 0x06; Linux's reboot=pci writes 0x02, 0x06 too.
 *
 * Either reset becomes machine_request_reset() (exit 0 under -no-reboot);
 * hard and soft resets are the same for us.  A20 is always enabled in
 * Kestrel: turning it off is logged under -d unimp and otherwise ignored.
 *
 * Port map placement: 0xCF9 sits inside the PCI configuration window
 * 0xCF8-0xCFF; the PCI host must claim 0xCF8 (32-bit accesses only) and
 * 0xCFC-0xCFF, leaving 0xCF9 to this device.
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

#define RCR_ADDR                0xcf9
#define RCR_SYS_RST             0x02
#define RCR_RST_CPU             0x04
#define RCR_WRITABLE            (RCR_SYS_RST | RCR_RST_CPU)

/* ---- State ---- */

typedef struct PcResetPorts {
    uint8_t port92;
    uint8_t rcr;

    IoPortRange *port92_range;
    IoPortRange *rcr_range;
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

static uint32_t rcr_read(void *opaque, uint16_t offset, unsigned size)
{
    PcResetPorts *s = opaque;
    return s->rcr;
}

static void rcr_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PcResetPorts *s = opaque;
    uint8_t old = s->rcr;

    s->rcr = value & RCR_WRITABLE;
    if (!(old & RCR_RST_CPU) && (s->rcr & RCR_RST_CPU)) {
        machine_request_reset();
        /* RST_CPU is not a sticky bit: the next 0->1 write resets again. */
        s->rcr &= ~RCR_RST_CPU;
    }
}

static const IoPortOps port92_ops = {
    .read = port92_read,
    .write = port92_write,
    .max_access = 1,
};

static const IoPortOps rcr_ops = {
    .read = rcr_read,
    .write = rcr_write,
    .max_access = 1,
};

/* Power-on: both registers 0 (A20 is nevertheless on, as on QEMU). */
static void reset_ports_reset(void *opaque)
{
    PcResetPorts *s = opaque;

    s->port92 = 0;
    s->rcr = 0;
}

/* ---- Registration ---- */

static void *reset_ports_create(Machine *m, const DeviceProps *props, GError **errp)
{
    PcResetPorts *s = g_new0(PcResetPorts, 1);

    s->port92_range = ioport_register(PORT92_ADDR, 1, &port92_ops, s, "port92", errp);
    if (!s->port92_range)
        goto fail;
    s->rcr_range = ioport_register(RCR_ADDR, 1, &rcr_ops, s, "piix3-rcr", errp);
    if (!s->rcr_range) {
        ioport_unregister(s->port92_range);
        goto fail;
    }
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
    .desc = "PC reset ports: 0x92 system control port A, 0xcf9 PIIX3 reset control",
    .bus = "isa",
    .user_creatable = false,
    .props = reset_ports_props,
    .create = reset_ports_create,
    .reset = reset_ports_reset,
};

DEVICE_TYPE_REGISTER(reset_ports_type)

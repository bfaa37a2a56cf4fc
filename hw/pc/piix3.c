/*
 * Intel 82371SB PIIX3 PCI-to-ISA bridge ("PIIX3"), function 00:01.0,
 * 8086:7000, class 060100, multi-function (IDE at 00:01.1 and, as on
 * QEMU's -M pc, the PIIX4 power management function at 00:01.3).
 * Datasheet: Intel 82371FB/82371SB PIIX/PIIX3 (290550), "PCI to ISA Bridge
 * Configuration Registers" and "Reset Control Register".
 *
 * Modelled:
 *  - PIRQRC[A:D] (0x60-0x63): route the bus's PIRQA-D levels onto ISA IRQs
 *    (bit 7 IRQROUTEN disables, bits 3:0 the IRQ; 0-2, 8 and 13 are
 *    reserved and route nowhere).  Several PIRQs on one IRQ are ORed, and a
 *    level that is high when its routing changes moves with it.
 *  - RC, the Reset Control Register at I/O 0xCF9 (byte access): bit 1
 *    SYS_RST is stored; a 0->1 write of bit 2 RST_CPU resets the machine
 *    (SeaBIOS writes 0x02 then 0x06, Linux reboot=pci too).  The host bridge
 *    forwards the port to us (hw/pc/piix3.h).
 *  - The other ISA-bridge registers (IORT, XBCS, TOM, MBIRQ, MBDMA, PCSC,
 *    SMI registers...) are plain storage with their datasheet defaults.
 *
 * Not here: the ELCR at 0x4D0/0x4D1 (hw/pc/i8259.c owns it), the DMA
 * controllers, SMI generation, the APIC chip select (XBCS bit 8).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/pci.h"
#include "hw/pc/piix3.h"

/* ---- Register table ---- */

#define PIIX3_VENDOR             0x8086
#define PIIX3_DEVICE             0x7000
#define PIIX3_REVISION           0x00
#define PIIX3_CLASS              0x060100     /* bridge, PCI-to-ISA */
#define PIIX3_DEVFN              PCI_DEVFN(1, 0)

#define PIIX3_PCICMD_DEFAULT     0x0007       /* I/O, memory, bus master */
#define PIIX3_PCISTS_DEFAULT     0x0200       /* DEVSEL# medium */

#define PIIX3_IORT               0x4c         /* ISA I/O recovery timer */
#define PIIX3_XBCS               0x4e         /* X-bus chip select, 16 bits */
#define PIIX3_PIRQRC             0x60         /* PIRQRC[A:D] 0x60-0x63 */
#define  PIRQRC_IRQROUTEN         0x80        /* 1 = routing disabled */
#define  PIRQRC_IRQ_MASK          0x0f
#define  PIRQRC_WRITABLE          0x8f
#define  PIRQRC_DEFAULT           0x80
#define PIIX3_TOM                0x69         /* top of memory */
#define PIIX3_MSTAT              0x6a         /* miscellaneous status, 16 bits */
#define PIIX3_MBIRQ0             0x70         /* motherboard device IRQ route 0 */
#define PIIX3_MBIRQ1             0x71
#define PIIX3_MBDMA0             0x76         /* motherboard device DMA 0 */
#define PIIX3_MBDMA1             0x77
#define PIIX3_PCSC               0x78         /* programmable chip select, 16 bits */
#define PIIX3_APICBASE           0x80
#define PIIX3_DLC                0x82         /* deterministic latency control */
#define PIIX3_SMICNTL            0xa0
#define PIIX3_SMIEN              0xa2         /* 16 bits */
#define PIIX3_SEE                0xa4         /* system event enable, 32 bits */
#define PIIX3_FTMR               0xa8         /* fast off timer */
#define PIIX3_SMIREQ             0xaa         /* 16 bits */
#define PIIX3_CTLTMR             0xac
#define PIIX3_CTHTMR             0xae

/* RC, I/O port 0xCF9 */
#define RCR_SYS_RST              0x02
#define RCR_RST_CPU              0x04
#define RCR_WRITABLE             (RCR_SYS_RST | RCR_RST_CPU)

#define PIIX3_NUM_PIRQ           4
#define ISA_NUM_IRQS             16

/* ---- State ---- */

typedef struct PIIX3State {
    PCIDevice dev;                       /* config space, PIRQRC included */
    uint8_t rcr;                         /* RC at 0xCF9 */
    bool isa_level[ISA_NUM_IRQS];        /* what the PIRQs drive on each ISA IRQ */

    Machine *machine;
} PIIX3State;

/* The one PIIX3 of the machine, for the host bridge's 0xCF9 forwarding. */
static PIIX3State *piix3_instance;

/* ---- Behaviour ---- */

/* ISA IRQ a PIRQRC value routes to, or -1 (disabled or a reserved IRQ). */
static int piix3_pirq_target(uint8_t pirqrc)
{
    int irq = pirqrc & PIRQRC_IRQ_MASK;
    if (pirqrc & PIRQRC_IRQROUTEN)
        return -1;
    /* 290550 PIRQRC bits 3:0: 0000-0010, 1000 and 1101 are reserved. */
    if (irq <= 2 || irq == 8 || irq == 13)
        return -1;
    return irq;
}

/* Recompute every ISA IRQ the PIRQs drive and change the lines that differ. */
static void piix3_update_irqs(PIIX3State *s)
{
    bool want[ISA_NUM_IRQS] = { false };
    PCIBus *bus = s->dev.bus;

    for (int p = 0; p < PIIX3_NUM_PIRQ; p++) {
        int irq = piix3_pirq_target(s->dev.config[PIIX3_PIRQRC + p]);
        if (irq >= 0 && pci_bus_pirq_level(bus, p))
            want[irq] = true;
    }
    for (int irq = 0; irq < ISA_NUM_IRQS; irq++) {
        if (want[irq] == s->isa_level[irq])
            continue;
        s->isa_level[irq] = want[irq];
        irq_set_level(machine_isa_irq(s->machine, irq), want[irq]);
    }
}

static void piix3_route(void *opaque, int pirq, int level)
{
    piix3_update_irqs(opaque);
}

static void piix3_config_write(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len)
{
    PIIX3State *s = (PIIX3State *)d;        /* dev is the first member */

    if (addr < PIIX3_PIRQRC + PIIX3_NUM_PIRQ && addr + len > PIIX3_PIRQRC) {
        for (int p = 0; p < PIIX3_NUM_PIRQ; p++) {
            uint8_t v = d->config[PIIX3_PIRQRC + p];
            if (!(v & PIRQRC_IRQROUTEN) && piix3_pirq_target(v) < 0)
                LOG(LOG_GUEST_ERROR, "piix3: PIRQRC%c = 0x%02x routes to reserved IRQ %d\n",
                    'A' + p, v, v & PIRQRC_IRQ_MASK);
        }
        piix3_update_irqs(s);
    }
}

bool piix3_rcr_read(uint8_t *value)
{
    if (!piix3_instance)
        return false;
    *value = piix3_instance->rcr;
    return true;
}

void piix3_rcr_write(uint8_t value)
{
    PIIX3State *s = piix3_instance;
    if (!s)
        return;
    uint8_t old = s->rcr;
    s->rcr = value & RCR_WRITABLE;
    if (!(old & RCR_RST_CPU) && (s->rcr & RCR_RST_CPU)) {
        /* Hard (SYS_RST) and soft resets are the same for us: a system reset. */
        machine_request_reset();
        /* RST_CPU does not stick: the next 0->1 write resets again, and reads show SYS_RST. */
        s->rcr &= ~RCR_RST_CPU;
    }
}

static void piix3_reset(void *opaque)
{
    PIIX3State *s = opaque;
    uint8_t *c = s->dev.config;

    pci_device_reset(&s->dev);
    pci_set_word(c + PCI_COMMAND, PIIX3_PCICMD_DEFAULT);
    pci_set_word(c + PCI_STATUS, PIIX3_PCISTS_DEFAULT);
    /* 290550 register defaults. */
    c[PIIX3_IORT] = 0x4d;
    pci_set_word(c + PIIX3_XBCS, 0x0003);
    for (int p = 0; p < PIIX3_NUM_PIRQ; p++)
        c[PIIX3_PIRQRC + p] = PIRQRC_DEFAULT;
    c[PIIX3_TOM] = 0x02;
    pci_set_word(c + PIIX3_MSTAT, 0x0000);
    c[PIIX3_MBIRQ0] = 0x80;
    c[PIIX3_MBIRQ1] = 0x80;
    c[PIIX3_MBDMA0] = 0x0c;
    c[PIIX3_MBDMA1] = 0x0c;
    pci_set_word(c + PIIX3_PCSC, 0x0002);
    c[PIIX3_APICBASE] = 0x00;
    c[PIIX3_DLC] = 0x00;
    c[PIIX3_SMICNTL] = 0x08;
    pci_set_word(c + PIIX3_SMIEN, 0x0000);
    pci_set_long(c + PIIX3_SEE, 0x00000000);
    c[PIIX3_FTMR] = 0x0f;
    pci_set_word(c + PIIX3_SMIREQ, 0x0000);
    c[PIIX3_CTLTMR] = 0x00;
    c[PIIX3_CTHTMR] = 0x00;
    s->rcr = 0;
    piix3_update_irqs(s);
}

/* ---- Registration ---- */

static void *piix3_create(Machine *m, const DeviceProps *props, GError **errp)
{
    PCIBus *bus = machine_pci_bus(m);
    if (!bus) {
        kestrel_set_error(errp, "PIIX3: needs the i440FX host bridge (no PCI bus)");
        return NULL;
    }
    if (piix3_instance) {
        kestrel_set_error(errp, "PIIX3: the machine already has one");
        return NULL;
    }
    PIIX3State *s = g_new0(PIIX3State, 1);
    PCIDevice *d = &s->dev;
    s->machine = m;

    pci_config_set_ids(d, PIIX3_VENDOR, PIIX3_DEVICE, PIIX3_REVISION, PIIX3_CLASS);
    d->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_MULTI_FUNCTION;
    static const struct { uint8_t reg, len; } storage[] = {
        { PIIX3_IORT, 1 }, { PIIX3_XBCS, 2 }, { PIIX3_TOM, 1 }, { PIIX3_MSTAT, 2 },
        { PIIX3_MBIRQ0, 2 }, { PIIX3_MBDMA0, 2 }, { PIIX3_PCSC, 2 }, { PIIX3_APICBASE, 1 },
        { PIIX3_DLC, 1 }, { PIIX3_SMICNTL, 1 }, { PIIX3_SMIEN, 2 }, { PIIX3_SEE, 4 },
        { PIIX3_FTMR, 1 }, { PIIX3_SMIREQ, 2 }, { PIIX3_CTLTMR, 1 }, { PIIX3_CTHTMR, 1 },
    };
    for (size_t i = 0; i < ARRAY_LEN(storage); i++)
        for (unsigned b = 0; b < storage[i].len; b++)
            d->wmask[storage[i].reg + b] = 0xff;
    for (int p = 0; p < PIIX3_NUM_PIRQ; p++)
        d->wmask[PIIX3_PIRQRC + p] = PIRQRC_WRITABLE;
    d->config_write = piix3_config_write;
    if (!pci_device_register(bus, d, PIIX3_DEVFN, "PIIX3", errp)) {
        g_free(s);
        return NULL;
    }
    pci_bus_set_irq_router(bus, piix3_route, s);
    piix3_instance = s;
    piix3_reset(s);
    return s;
}

static const PropDef piix3_props[] = {
    { NULL }
};

static const DeviceType piix3_type = {
    .name = "PIIX3",
    .desc = "Intel 82371SB PIIX3 PCI-to-ISA bridge (PIRQ routing, reset control 0xcf9)",
    .bus = "sys",
    .user_creatable = false,
    .props = piix3_props,
    .create = piix3_create,
    .reset = piix3_reset,
};

DEVICE_TYPE_REGISTER(piix3_type)

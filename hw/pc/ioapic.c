/*
 * I/O APIC ("ioapic", created by irqchip_userspace_init) at 0xFEC00000:
 * 24 input pins, each with a 64-bit redirection entry that turns a pin
 * into an APIC bus message for the local APICs (apic_deliver).
 *
 * Follows the Intel 82093AA I/O APIC datasheet (order no. 290566): §3.0
 * "Register Description" (IOREGSEL at +0x00, IOWIN at +0x10; IOAPICID 0x00,
 * IOAPICVER 0x01, IOAPICARB 0x02, IOREDTBL[0:23] 0x10-0x3F), §3.2.4
 * "IOREDTBL" (field layout, Remote IRR, Delivery Status, Interrupt Mask:
 * "edge-sensitive interrupts signaled on a masked interrupt pin are
 * ignored").  Like QEMU's -M pc (pc-platform.md §11) it reports version 0x20
 * — the later ICH-style part, which adds the directed EOI register at +0x40
 * (IOEOI: writing a vector clears Remote IRR of the matching entries).
 *
 * Level-triggered pins deliver while asserted and unmasked with Remote IRR
 * clear, set Remote IRR on delivery, and redeliver after the local APIC
 * broadcasts the EOI of that vector if the line is still asserted.
 *
 * Not modelled: pin polarity (the board's lines are active-high as the
 * devices drive them, and QEMU ignores the bit too; it is stored and read
 * back), delivery status (messages are delivered at once, so it reads 0).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/irqchip.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "hw/pc/irqchip_internal.h"

#include <inttypes.h>

/* ---- Register table ---- */

#define IOAPIC_NUM_PINS         24
#define IOAPIC_MMIO_SIZE        0x1000

/* Memory-mapped registers */
#define IOAPIC_IOREGSEL         0x00
#define IOAPIC_IOWIN            0x10
#define IOAPIC_IOEOI            0x40    /* version 0x20 parts */

/* Indirect registers (IOREGSEL values) */
#define IOAPIC_REG_ID           0x00
#define IOAPIC_ID_SHIFT         24
#define IOAPIC_ID_MASK          (0xfu << IOAPIC_ID_SHIFT)
#define IOAPIC_REG_VER          0x01
#define IOAPIC_VERSION          0x20
#define IOAPIC_VER_MRE_SHIFT    16      /* maximum redirection entry */
#define IOAPIC_REG_ARB          0x02
#define IOAPIC_REG_REDTBL       0x10    /* + 2n low dword, + 2n + 1 high dword */

/* IOREDTBL fields (§3.2.4) */
#define IOREDTBL_VECTOR         0xffull
#define IOREDTBL_DELMOD_SHIFT   8
#define IOREDTBL_DELMOD_MASK    (7ull << IOREDTBL_DELMOD_SHIFT)
#define IOREDTBL_DESTMOD        (1ull << 11)   /* 1 = logical */
#define IOREDTBL_DELIVS         (1ull << 12)   /* RO */
#define IOREDTBL_INTPOL         (1ull << 13)   /* 1 = active low */
#define IOREDTBL_REMOTE_IRR     (1ull << 14)   /* RO */
#define IOREDTBL_TRIGGER        (1ull << 15)   /* 1 = level */
#define IOREDTBL_MASK           (1ull << 16)
#define IOREDTBL_DEST_SHIFT     56
#define IOREDTBL_WRITABLE       (IOREDTBL_VECTOR | IOREDTBL_DELMOD_MASK | IOREDTBL_DESTMOD | \
                                 IOREDTBL_INTPOL | IOREDTBL_TRIGGER | IOREDTBL_MASK | \
                                 (0xffull << IOREDTBL_DEST_SHIFT))

/* Delivery modes (§3.2.4 bits 10:8) */
#define IOAPIC_DM_FIXED         0
#define IOAPIC_DM_LOWEST        1
#define IOAPIC_DM_SMI           2
#define IOAPIC_DM_NMI           4
#define IOAPIC_DM_INIT          5
#define IOAPIC_DM_EXTINT        7

/* ---- State ---- */

typedef struct IoApic {
    uint8_t ioregsel;
    uint32_t id;                             /* IOAPICID register value */
    uint64_t redtbl[IOAPIC_NUM_PINS];
    uint32_t lines;                          /* pin levels */

    MemoryRegion *mmio;
} IoApic;

static IoApic *ioapic;

/* ---- Delivery ---- */

static void ioapic_service_pin(IoApic *s, int pin)
{
    uint64_t e = s->redtbl[pin];
    bool level = e & IOREDTBL_TRIGGER;

    if (e & IOREDTBL_MASK)
        return;
    if (level) {
        if (!(s->lines & (1u << pin)) || (e & IOREDTBL_REMOTE_IRR))
            return;
    }
    unsigned dm = (unsigned)((e & IOREDTBL_DELMOD_MASK) >> IOREDTBL_DELMOD_SHIFT);
    uint8_t vector = (uint8_t)(e & IOREDTBL_VECTOR);
    /*
     * Remote IRR is set when a local APIC accepts a level interrupt (fixed or
     * lowest priority) and cleared by its EOI; other modes have no EOI.
     */
    if (level && (dm == IOAPIC_DM_FIXED || dm == IOAPIC_DM_LOWEST))
        s->redtbl[pin] |= IOREDTBL_REMOTE_IRR;
    LOG(LOG_INT, "ioapic: pin %d -> vector 0x%02x mode %u dest 0x%02x%s\n", pin, vector, dm,
        (unsigned)(e >> IOREDTBL_DEST_SHIFT), (e & IOREDTBL_DESTMOD) ? " logical" : "");
    apic_deliver((uint8_t)(e >> IOREDTBL_DEST_SHIFT), e & IOREDTBL_DESTMOD, (uint8_t)dm, vector,
                 true, level);
}

void ioapic_set_pin(int pin, int level)
{
    IoApic *s = ioapic;
    if (!s || pin < 0 || pin >= IOAPIC_NUM_PINS)
        return;
    uint32_t bit = 1u << pin;
    bool old = s->lines & bit;
    if (level)
        s->lines |= bit;
    else
        s->lines &= ~bit;
    if (s->redtbl[pin] & IOREDTBL_TRIGGER) {
        if (level)
            ioapic_service_pin(s, pin);
    } else if (level && !old) {
        ioapic_service_pin(s, pin);   /* masked: ignored, not held (§3.2.4) */
    }
}

void ioapic_eoi_broadcast(uint8_t vector)
{
    IoApic *s = ioapic;
    if (!s)
        return;
    for (int pin = 0; pin < IOAPIC_NUM_PINS; pin++) {
        uint64_t e = s->redtbl[pin];
        if ((e & IOREDTBL_VECTOR) != vector || !(e & IOREDTBL_REMOTE_IRR))
            continue;
        s->redtbl[pin] &= ~IOREDTBL_REMOTE_IRR;
        if (e & IOREDTBL_TRIGGER)
            ioapic_service_pin(s, pin);
    }
}

/* ---- Registers ---- */

static uint32_t ioapic_reg_read(IoApic *s)
{
    uint8_t sel = s->ioregsel;

    switch (sel) {
    case IOAPIC_REG_ID:
        return s->id;
    case IOAPIC_REG_VER:
        return IOAPIC_VERSION | (IOAPIC_NUM_PINS - 1) << IOAPIC_VER_MRE_SHIFT;
    case IOAPIC_REG_ARB:
        /* The arbitration ID is loaded from the APIC ID (§3.2.3). */
        return s->id & IOAPIC_ID_MASK;
    }
    if (sel >= IOAPIC_REG_REDTBL && sel < IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
        int pin = (sel - IOAPIC_REG_REDTBL) >> 1;
        uint64_t e = s->redtbl[pin];
        return (sel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    LOG(LOG_GUEST_ERROR, "ioapic: read of undefined register 0x%02x\n", sel);
    return 0xffffffff;
}

static void ioapic_reg_write(IoApic *s, uint32_t v)
{
    uint8_t sel = s->ioregsel;

    if (sel == IOAPIC_REG_ID) {
        s->id = v & IOAPIC_ID_MASK;
        return;
    }
    if (sel == IOAPIC_REG_VER || sel == IOAPIC_REG_ARB)
        return;                                /* read-only */
    if (sel < IOAPIC_REG_REDTBL || sel >= IOAPIC_REG_REDTBL + 2 * IOAPIC_NUM_PINS) {
        LOG(LOG_GUEST_ERROR, "ioapic: write 0x%08x to undefined register 0x%02x\n", v, sel);
        return;
    }
    int pin = (sel - IOAPIC_REG_REDTBL) >> 1;
    uint64_t e = s->redtbl[pin];
    uint64_t nv = (sel & 1) ? ((uint64_t)v << 32) | (e & 0xffffffffull)
                            : (e & 0xffffffff00000000ull) | v;
    s->redtbl[pin] = (nv & IOREDTBL_WRITABLE) | (e & (IOREDTBL_DELIVS | IOREDTBL_REMOTE_IRR));
    /* An edge entry has no Remote IRR. */
    if (!(s->redtbl[pin] & IOREDTBL_TRIGGER))
        s->redtbl[pin] &= ~IOREDTBL_REMOTE_IRR;
    /* Unmasking a still-asserted level pin delivers it now. */
    if ((s->redtbl[pin] & IOREDTBL_TRIGGER) && !(s->redtbl[pin] & IOREDTBL_MASK))
        ioapic_service_pin(s, pin);
}

static uint64_t ioapic_mmio_read(void *opaque, hwaddr offset, unsigned size)
{
    IoApic *s = opaque;

    switch (offset) {
    case IOAPIC_IOREGSEL:
        return s->ioregsel;
    case IOAPIC_IOWIN:
        return ioapic_reg_read(s);
    }
    return 0;
}

static void ioapic_mmio_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    IoApic *s = opaque;

    switch (offset) {
    case IOAPIC_IOREGSEL:
        s->ioregsel = (uint8_t)value;
        break;
    case IOAPIC_IOWIN:
        ioapic_reg_write(s, (uint32_t)value);
        break;
    case IOAPIC_IOEOI:
        ioapic_eoi_broadcast((uint8_t)value);
        break;
    default:
        LOG(LOG_GUEST_ERROR, "ioapic: write to offset 0x%" PRIx64 "\n", (uint64_t)offset);
        break;
    }
}

static const MemoryRegionOps ioapic_mmio_ops = {
    .read = ioapic_mmio_read,
    .write = ioapic_mmio_write,
    .min_access = 4,
    .max_access = 4,
};

/* Power-on: every entry masked, ID from the property (hw/pc/mptable.c: ncpus). */
static void ioapic_reset(void *opaque)
{
    IoApic *s = opaque;
    s->ioregsel = 0;
    for (int i = 0; i < IOAPIC_NUM_PINS; i++)
        s->redtbl[i] = IOREDTBL_MASK;
}

/* ---- Registration ---- */

static void *ioapic_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (ioapic) {
        kestrel_set_error(errp, "ioapic: only one I/O APIC is supported");
        return NULL;
    }
    IoApic *s = g_new0(IoApic, 1);
    /* The MP table names the IOAPIC id = number of CPUs (mptable.c); the 82093AA has 4 bits. */
    uint64_t id = device_props_has(props, "id") ? device_props_get_uint(props, "id")
                                                 : (uint64_t)(m->smp_cpus > 0 ? m->smp_cpus : 1);
    s->id = (uint32_t)(id & 0xf) << IOAPIC_ID_SHIFT;
    s->mmio = memory_region_new_mmio("ioapic", IOAPIC_MMIO_SIZE, &ioapic_mmio_ops, s);
    memory_region_add_subregion(m->system_memory, IOAPIC_DEFAULT_BASE, s->mmio, 1);
    ioapic_reset(s);
    ioapic = s;
    return s;
}

static const PropDef ioapic_props[] = {
    { "id", PROP_UINT, NULL, "IOAPIC id (default: the number of CPUs, as the MP table says)" },
    { NULL }
};

static const DeviceType ioapic_type = {
    .name = "ioapic",
    .desc = "Intel 82093AA-style I/O APIC, 24 pins, version 0x20 (0xfec00000)",
    .bus = "sys",
    .user_creatable = false,
    .props = ioapic_props,
    .create = ioapic_create,
    .reset = ioapic_reset,
};

DEVICE_TYPE_REGISTER(ioapic_type)

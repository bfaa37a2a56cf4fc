/*
 * pc-testdev: QEMU's ISA test device for x86 (no hardware counterpart),
 * used by kvm-unit-tests to inject interrupts and to exercise port and MMIO
 * emulation.  The guest-visible contract, as QEMU's hw/misc/pc-testdev.c
 * defines it:
 *   0xE0-0xE3    "ioport": a 32-bit latch; an access of any width at
 *                0xE0+n reads or writes bytes n.. of it (little-endian).
 *   0xE4-0xE7    "flush-page": a 32-bit write names a guest-physical page;
 *                QEMU drops and re-creates the host mapping of that page
 *                (contents kept).  Here it is a no-op: the guest sees the
 *                same memory either way.  Other widths are ignored; reads 0.
 *   0xE8-0xEB    "ioport-byte": the same latch as 0xE0, reached one byte at
 *                a time (wider accesses are split into bytes).
 *   0x2000-0x2017  "irq-line": a byte write of v to 0x2000+n drives
 *                interrupt controller input n (0-15 ISA IRQs, which reach
 *                both the PIC and the IOAPIC; 16-23 IOAPIC-only GSIs) to
 *                level !!v.  Reads return 0.
 *   0xFF000000   "iomem": 64 KiB of MMIO that behaves like RAM (every access
 *                width reads back what was written).
 *
 * Deliberately different from QEMU: QEMU asserts (aborts) on a write to
 * lines 16-23 (its ISA bus has 16 IRQs); here they reach the IOAPIC's PCI
 * GSIs.  QEMU has no reset for this device; here a system reset returns to
 * the power-on state (latch and iomem zero, every line this device raised
 * lowered), which no test can tell apart from a fresh start.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"

#include <string.h>

/* ---- Register table ---- */

#define PC_TESTDEV_IOPORT           0xe0        /* 32-bit latch, any width */
#define PC_TESTDEV_IOPORT_SIZE      4
#define PC_TESTDEV_FLUSH_PAGE       0xe4        /* 32-bit writes only */
#define PC_TESTDEV_FLUSH_PAGE_SIZE  4
#define PC_TESTDEV_IOPORT_BYTE      0xe8        /* same latch, byte accesses */
#define PC_TESTDEV_IOPORT_BYTE_SIZE 4
#define PC_TESTDEV_IRQ_LINE         0x2000      /* + line number, byte writes */
#define PC_TESTDEV_IRQ_LINES        24
#define PC_TESTDEV_IOMEM_BASE       0xff000000ULL
#define PC_TESTDEV_IOMEM_SIZE       0x10000

/* ---- State ---- */

typedef struct PCTestdev {
    uint32_t ioport_data;                   /* the 0xE0/0xE8 latch */
    uint32_t irq_levels;                    /* bit n: this device drives line n high */
    uint8_t iomem[PC_TESTDEV_IOMEM_SIZE];

    Machine *m;
    IoPortRange *ioport_range, *flush_range, *ioport_byte_range, *irq_range;
    MemoryRegion *iomem_mr;
} PCTestdev;

/* ---- Behaviour ---- */

/* Byte lanes offset..offset+size-1 of the 4-byte latch; lanes past byte 3 do not exist. */
static uint32_t pc_testdev_latch_read(void *opaque, uint16_t offset, unsigned size)
{
    PCTestdev *s = opaque;
    uint32_t v = 0;
    for (unsigned i = 0; i < size && offset + i < 4; i++)
        v |= ((s->ioport_data >> ((offset + i) * 8)) & 0xff) << (i * 8);
    return v;
}

static void pc_testdev_latch_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PCTestdev *s = opaque;
    for (unsigned i = 0; i < size && offset + i < 4; i++) {
        unsigned shift = (offset + i) * 8;
        s->ioport_data = (s->ioport_data & ~(0xffu << shift)) |
                         ((value >> (i * 8)) & 0xff) << shift;
    }
}

static const IoPortOps pc_testdev_ioport_ops = {
    .read = pc_testdev_latch_read,
    .write = pc_testdev_latch_write,
    .max_access = 4,
};

static const IoPortOps pc_testdev_ioport_byte_ops = {
    .read = pc_testdev_latch_read,
    .write = pc_testdev_latch_write,
    .max_access = 1,
};

static uint32_t pc_testdev_flush_read(void *opaque, uint16_t offset, unsigned size)
{
    return 0;
}

static void pc_testdev_flush_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    /* QEMU accepts only 4-byte accesses at the port itself. */
    if (size != 4 || offset != 0) {
        LOG(LOG_GUEST_ERROR, "pc-testdev: %u-byte write to flush-page port 0x%x ignored "
            "(needs a 32-bit write to 0x%x)\n", size, PC_TESTDEV_FLUSH_PAGE + offset,
            PC_TESTDEV_FLUSH_PAGE);
        return;
    }
    /*
     * Nothing to drop: guest RAM has no host mapping of its own to zap, and
     * the page keeps its contents in QEMU too.
     */
}

static const IoPortOps pc_testdev_flush_ops = {
    .read = pc_testdev_flush_read,
    .write = pc_testdev_flush_write,
    .max_access = 4,
};

static uint32_t pc_testdev_irq_read(void *opaque, uint16_t offset, unsigned size)
{
    return 0;
}

static void pc_testdev_irq_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PCTestdev *s = opaque;
    if (offset >= PC_TESTDEV_IRQ_LINES)
        return;
    int level = value != 0;
    if (level)
        s->irq_levels |= 1u << offset;
    else
        s->irq_levels &= ~(1u << offset);
    irq_set_level(machine_isa_irq(s->m, offset), level);
}

static const IoPortOps pc_testdev_irq_ops = {
    .read = pc_testdev_irq_read,
    .write = pc_testdev_irq_write,
    .max_access = 1,
};

static uint64_t pc_testdev_iomem_read(void *opaque, hwaddr offset, unsigned size)
{
    PCTestdev *s = opaque;
    uint64_t v = 0;
    for (unsigned i = 0; i < size && offset + i < PC_TESTDEV_IOMEM_SIZE; i++)
        v |= (uint64_t)s->iomem[offset + i] << (i * 8);
    return v;
}

static void pc_testdev_iomem_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    PCTestdev *s = opaque;
    for (unsigned i = 0; i < size && offset + i < PC_TESTDEV_IOMEM_SIZE; i++)
        s->iomem[offset + i] = (uint8_t)(value >> (i * 8));
}

static const MemoryRegionOps pc_testdev_iomem_ops = {
    .read = pc_testdev_iomem_read,
    .write = pc_testdev_iomem_write,
    .min_access = 1,
    .max_access = 8,
};

static void pc_testdev_reset(void *opaque)
{
    PCTestdev *s = opaque;
    s->ioport_data = 0;
    memset(s->iomem, 0, sizeof(s->iomem));
    for (int n = 0; n < PC_TESTDEV_IRQ_LINES; n++)
        if (s->irq_levels & (1u << n))
            irq_lower(machine_isa_irq(s->m, n));
    s->irq_levels = 0;
}

/* ---- Registration ---- */

static void pc_testdev_unregister(PCTestdev *s)
{
    if (s->ioport_range)
        ioport_unregister(s->ioport_range);
    if (s->flush_range)
        ioport_unregister(s->flush_range);
    if (s->ioport_byte_range)
        ioport_unregister(s->ioport_byte_range);
    if (s->irq_range)
        ioport_unregister(s->irq_range);
}

static void *pc_testdev_create(Machine *m, const DeviceProps *props, GError **errp)
{
    PCTestdev *s = g_new0(PCTestdev, 1);
    s->m = m;
    s->ioport_range = ioport_register(PC_TESTDEV_IOPORT, PC_TESTDEV_IOPORT_SIZE,
                                      &pc_testdev_ioport_ops, s, "pc-testdev-ioport", errp);
    if (s->ioport_range)
        s->flush_range = ioport_register(PC_TESTDEV_FLUSH_PAGE, PC_TESTDEV_FLUSH_PAGE_SIZE,
                                         &pc_testdev_flush_ops, s, "pc-testdev-flush-page",
                                         errp);
    if (s->flush_range)
        s->ioport_byte_range = ioport_register(PC_TESTDEV_IOPORT_BYTE,
                                               PC_TESTDEV_IOPORT_BYTE_SIZE,
                                               &pc_testdev_ioport_byte_ops, s,
                                               "pc-testdev-ioport-byte", errp);
    if (s->ioport_byte_range)
        s->irq_range = ioport_register(PC_TESTDEV_IRQ_LINE, PC_TESTDEV_IRQ_LINES,
                                       &pc_testdev_irq_ops, s, "pc-testdev-irq-line", errp);
    if (!s->irq_range) {
        pc_testdev_unregister(s);
        g_free(s);
        return NULL;
    }
    s->iomem_mr = memory_region_new_mmio("pc-testdev-iomem", PC_TESTDEV_IOMEM_SIZE,
                                         &pc_testdev_iomem_ops, s);
    memory_region_add_subregion(m->system_memory, PC_TESTDEV_IOMEM_BASE, s->iomem_mr, 1);
    pc_testdev_reset(s);
    return s;
}

static const PropDef pc_testdev_props[] = {
    { NULL }
};

static const DeviceType pc_testdev_type = {
    .name = "pc-testdev",
    .desc = "test device: latch at 0xe0/0xe8, IRQ lines at 0x2000-0x2017, 64K iomem at 0xff000000",
    .bus = "isa",
    .user_creatable = true,
    .props = pc_testdev_props,
    .create = pc_testdev_create,
    .reset = pc_testdev_reset,
};

DEVICE_TYPE_REGISTER(pc_testdev_type)

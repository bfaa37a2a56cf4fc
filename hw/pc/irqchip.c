/*
 * The userspace interrupt controllers as a whole: creation, GSI routing and
 * the engine's kick hook (include/kestrel/irqchip.h).
 *
 * Routing follows QEMU's "-M pc" (pc-platform.md §2): board line n < 16 is
 * ISA IRQ n and reaches 8259 input n and IOAPIC pin n, except ISA IRQ 0 (the
 * PIT), which the MP table (hw/pc/mptable.c) and the MADT override declare on
 * IOAPIC pin 2; ISA IRQ 2 is the slave cascade and reaches neither.  Lines
 * 16-23 are PCI GSIs and reach the IOAPIC only.
 *
 * The chips are ordinary non-user-creatable device types, so a system reset
 * (devices_reset_all) returns them to their power-on state.
 */
#include "kestrel/irqchip.h"
#include "kestrel/device.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "hw/pc/irqchip_internal.h"

__thread int irqchip_current_cpu = -1;

static Machine *irqchip_m;
static void (*irqchip_kick_fn)(Machine *m, int cpu);

void irqchip_set_kick(void (*kick)(Machine *m, int cpu))
{
    irqchip_kick_fn = kick;
}

void irqchip_kick(int cpu)
{
    if (irqchip_kick_fn && irqchip_m)
        irqchip_kick_fn(irqchip_m, cpu);
}

Machine *irqchip_machine(void)
{
    return irqchip_m;
}

bool irqchip_userspace_init(Machine *m, GError **errp)
{
    irqchip_m = m;
    /* The LAPICs first: the PIC and IOAPIC deliver into them from reset on. */
    if (!device_create(m, "apic", NULL, errp) ||
        !device_create(m, "isa-i8259", NULL, errp) ||
        !device_create(m, "ioapic", NULL, errp))
        return false;
    return true;
}

void irqchip_set_gsi(Machine *m, int gsi, int level)
{
    (void)m;
    if (gsi < 0 || gsi >= MACHINE_NUM_GSI) {
        LOG(LOG_GUEST_ERROR, "irqchip: GSI %d out of range\n", gsi);
        return;
    }
    if (gsi < 16) {
        if (gsi == 2) {
            /* The cascade input: no ISA device can own it on a PC/AT. */
            LOG(LOG_GUEST_ERROR, "irqchip: ISA IRQ 2 is the 8259 cascade; ignored\n");
            return;
        }
        pic_set_input(gsi, level);
        ioapic_set_pin(gsi == 0 ? 2 : gsi, level);
    } else {
        ioapic_set_pin(gsi, level);
    }
}

/*
 * Private glue between the userspace interrupt controllers and the PIT
 * (hw/pc/i8259.c, ioapic.c, apic.c, irqchip.c, i8254.c, port61.c).  Each
 * chip exists at most once per machine, so each file keeps its one instance
 * in a file-static pointer and these functions are no-ops while it is absent
 * (KVM with its in-kernel irqchip never creates them).  Everything here runs
 * with the big lock held.
 */
#ifndef HW_PC_IRQCHIP_INTERNAL_H
#define HW_PC_IRQCHIP_INTERNAL_H

#include "kestrel/common.h"

typedef struct Machine Machine;

/* hw/pc/i8259.c: the master/slave pair ("isa-i8259"). */
void pic_set_input(int irq, int level);        /* ISA IRQ 0-15 */
bool pic_int_output(void);                     /* the master's INT pin */
int pic_intack(void);                          /* INTA cycle: the vector (spurious: IRQ7/15) */

/* hw/pc/ioapic.c ("ioapic"). */
void ioapic_set_pin(int pin, int level);       /* pins 0-23 */
void ioapic_eoi_broadcast(uint8_t vector);     /* a LAPIC EOI'd a level-triggered vector */

/* hw/pc/apic.c ("apic", all local APICs): the 8259's INT pin changed. */
void apic_pic_output_changed(bool level);

/* hw/pc/irqchip.c */
void irqchip_kick(int cpu);                    /* tell the engine cpu has new work */
Machine *irqchip_machine(void);

/* hw/pc/i8254.c: channel 2 as seen from port 0x61. */
void pit_channel2_set_gate(bool gate);
bool pit_channel2_get_gate(void);
bool pit_channel2_get_out(void);

#endif

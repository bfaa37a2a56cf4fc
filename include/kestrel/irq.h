/*
 * IRQ lines: a device raises and lowers a line without knowing who listens.
 * A line is a sink callback plus argument; boards wire lines at build time.
 * Lines remember their level so a sink is only called on a change, except
 * for irq_pulse, which always delivers 1 then 0.
 */
#ifndef KESTREL_IRQ_H
#define KESTREL_IRQ_H

#include "kestrel/common.h"

typedef void (*IrqHandler)(void *opaque, int n, int level);
typedef struct IrqLine IrqLine;

IrqLine *irq_line_new(IrqHandler handler, void *opaque, int n);
void irq_line_free(IrqLine *line);
/* A line that forwards each level change to both a and b (ISA -> PIC and IOAPIC). */
IrqLine *irq_line_new_split(IrqLine *a, IrqLine *b);
/* Retarget a line's sink (the qtest accelerator watches lines this way). */
void irq_line_set_handler(IrqLine *line, IrqHandler handler, void *opaque, int n);

/* NULL-safe: an unwired device line is a no-op. */
void irq_set_level(IrqLine *line, int level);
static inline void irq_raise(IrqLine *line) { irq_set_level(line, 1); }
static inline void irq_lower(IrqLine *line) { irq_set_level(line, 0); }
void irq_pulse(IrqLine *line);
int irq_get_level(const IrqLine *line);

#endif

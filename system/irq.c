/*
 * IRQ lines (include/kestrel/irq.h).  A line remembers its level so that a
 * sink sees only changes: a device may call irq_set_level with the level it
 * already drives without generating spurious edges.
 */
#include "kestrel/irq.h"

struct IrqLine {
    IrqHandler handler;
    void *opaque;
    int n;
    int level;
};

IrqLine *irq_line_new(IrqHandler handler, void *opaque, int n)
{
    IrqLine *line = g_new0(IrqLine, 1);
    line->handler = handler;
    line->opaque = opaque;
    line->n = n;
    return line;
}

void irq_line_free(IrqLine *line)
{
    g_free(line);
}

static void irq_split_handler(void *opaque, int n, int level)
{
    IrqLine **pair = opaque;
    irq_set_level(pair[0], level);
    irq_set_level(pair[1], level);
}

IrqLine *irq_line_new_split(IrqLine *a, IrqLine *b)
{
    IrqLine **pair = g_new(IrqLine *, 2);
    pair[0] = a;
    pair[1] = b;
    return irq_line_new(irq_split_handler, pair, 0);
}

void irq_line_set_handler(IrqLine *line, IrqHandler handler, void *opaque, int n)
{
    line->handler = handler;
    line->opaque = opaque;
    line->n = n;
}

void irq_set_level(IrqLine *line, int level)
{
    if (!line)
        return;
    level = !!level;
    if (line->level == level)
        return;
    line->level = level;
    if (line->handler)
        line->handler(line->opaque, line->n, level);
}

void irq_pulse(IrqLine *line)
{
    if (!line)
        return;
    /* A pulse is an edge even if the line was already high. */
    if (line->level)
        irq_set_level(line, 0);
    irq_set_level(line, 1);
    irq_set_level(line, 0);
}

int irq_get_level(const IrqLine *line)
{
    return line ? line->level : 0;
}

/*
 * The x86 I/O port space (include/kestrel/ioport.h).
 *
 * A 65536-entry table of range pointers: dispatch is one load.  Accesses
 * wider than a handler accepts are split into consecutive narrower ones,
 * little-endian, as a 16-bit ISA device sees a 32-bit IN on a real PC.
 * Accesses that run past the end of the port space wrap, as on hardware.
 */
#include "kestrel/ioport.h"
#include "kestrel/log.h"

struct IoPortRange {
    uint16_t base;
    unsigned count;
    const IoPortOps *ops;
    void *opaque;
    char *name;
};

static IoPortRange *ioport_table[65536];

static bool ioport_range_free(uint16_t base, unsigned count, const IoPortRange *self,
                              const IoPortRange **clash)
{
    for (unsigned i = 0; i < count; i++) {
        const IoPortRange *r = ioport_table[(uint16_t)(base + i)];
        if (r && r != self) {
            *clash = r;
            return false;
        }
    }
    return true;
}

IoPortRange *ioport_register(uint16_t base, unsigned count, const IoPortOps *ops,
                             void *opaque, const char *name, GError **errp)
{
    const IoPortRange *clash;

    if (count == 0 || base + count > 65536) {
        kestrel_set_error(errp, "%s: I/O range 0x%x+%u is outside the port space", name,
                          base, count);
        return NULL;
    }
    if (!ioport_range_free(base, count, NULL, &clash)) {
        kestrel_set_error(errp, "%s: I/O ports 0x%x-0x%x overlap %s (0x%x-0x%x)", name, base,
                          base + count - 1, clash->name, clash->base,
                          clash->base + clash->count - 1);
        return NULL;
    }
    IoPortRange *r = g_new0(IoPortRange, 1);
    r->base = base;
    r->count = count;
    r->ops = ops;
    r->opaque = opaque;
    r->name = g_strdup(name);
    for (unsigned i = 0; i < count; i++)
        ioport_table[base + i] = r;
    return r;
}

static void ioport_clear(IoPortRange *r)
{
    for (unsigned i = 0; i < r->count; i++)
        if (ioport_table[(uint16_t)(r->base + i)] == r)
            ioport_table[(uint16_t)(r->base + i)] = NULL;
}

void ioport_unregister(IoPortRange *r)
{
    if (!r)
        return;
    ioport_clear(r);
    g_free(r->name);
    g_free(r);
}

bool ioport_move(IoPortRange *r, uint16_t new_base)
{
    const IoPortRange *clash;

    if (new_base + r->count > 65536 || !ioport_range_free(new_base, r->count, r, &clash))
        return false;
    ioport_clear(r);
    r->base = new_base;
    for (unsigned i = 0; i < r->count; i++)
        ioport_table[new_base + i] = r;
    return true;
}

const char *ioport_owner(uint16_t port)
{
    return ioport_table[port] ? ioport_table[port]->name : NULL;
}

static unsigned ioport_max_access(const IoPortRange *r)
{
    unsigned m = r->ops->max_access;
    return (m == 2 || m == 4) ? m : 1;
}

uint32_t ioport_read(uint16_t port, unsigned size)
{
    IoPortRange *r = ioport_table[port];
    uint32_t value;

    if (size != 1 && size != 2 && size != 4)
        size = 1;
    if (!r || !r->ops->read) {
        LOG(LOG_UNIMP, "ioport: read%u from unassigned port 0x%04x\n", size, port);
        value = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    } else if (size <= ioport_max_access(r) && port + size <= r->base + r->count) {
        value = r->ops->read(r->opaque, port - r->base, size);
    } else {
        /* Split: each piece dispatches on its own port (may cross into another device). */
        unsigned piece = size == 4 && ioport_max_access(r) >= 2 ? 2 : 1;
        value = 0;
        for (unsigned done = 0; done < size; done += piece)
            value |= ioport_read((uint16_t)(port + done), piece) << (done * 8);
    }
    if (size < 4)
        value &= (1u << (size * 8)) - 1;
    LOG(LOG_IOPORT, "ioport: in%u 0x%04x -> 0x%x\n", size, port, value);
    return value;
}

void ioport_write(uint16_t port, uint32_t value, unsigned size)
{
    IoPortRange *r = ioport_table[port];

    if (size != 1 && size != 2 && size != 4)
        size = 1;
    if (size < 4)
        value &= (1u << (size * 8)) - 1;
    LOG(LOG_IOPORT, "ioport: out%u 0x%04x <- 0x%x\n", size, port, value);
    if (!r || !r->ops->write) {
        LOG(LOG_UNIMP, "ioport: write%u 0x%x to unassigned port 0x%04x\n", size, value, port);
    } else if (size <= ioport_max_access(r) && port + size <= r->base + r->count) {
        r->ops->write(r->opaque, port - r->base, value, size);
    } else {
        unsigned piece = size == 4 && ioport_max_access(r) >= 2 ? 2 : 1;
        for (unsigned done = 0; done < size; done += piece)
            ioport_write((uint16_t)(port + done), (value >> (done * 8)) & ((1u << (piece * 8)) - 1),
                         piece);
    }
}

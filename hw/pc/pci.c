/*
 * PCI core: bus 0 of the i440FX PC (include/kestrel/pci.h).
 *
 * Follows the PCI Local Bus Specification 3.0: §6.1 the type 0
 * configuration header, §6.2.2 COMMAND/STATUS, §6.2.5 base address
 * registers (sizing by writing all-ones, decoding gated by COMMAND.IO/MEM),
 * §6.2.5.2 the expansion ROM BAR, §6.7 capability lists, §6.8.1 MSI, and
 * §2.2.6 INTx.  The slot-to-PIRQ swizzle is the one SeaBIOS and QEMU use on
 * the PC's bus 0 (pc-platform.md §2): PIRQ = (slot + pin - 2) mod 4, pin 1 =
 * INTA.
 *
 * Placement rules (QEMU's, which SeaBIOS and Linux expect):
 *  - an I/O BAR decodes only if COMMAND.IO is set, the address is not 0 and
 *    the range fits below 64 KiB;
 *  - a memory (or ROM) BAR decodes only if COMMAND.MEM is set (and, for the
 *    ROM, its enable bit), the address is not 0 and, for 32-bit BARs, the
 *    range ends below 0xFFFFFFFF - so the all-ones value left by sizing never
 *    maps anything over the BIOS;
 *  - memory BARs are placed below RAM and the BIOS in priority, so a BAR
 *    programmed over RAM cannot hide RAM (it is simply not reachable).
 *
 * Not modelled: bridges and other buses, MSI-X, per-vector MSI masking,
 * parity/SERR signalling, the extended (PCIe) configuration space.
 */
#include "kestrel/pci.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

#include <string.h>

/* ---- Register table (beyond pci.h) ---- */

/* COMMAND bits a driver may set (§6.2.2); the others are hard-wired 0 here. */
#define PCI_COMMAND_PARITY       0x0040
#define PCI_COMMAND_WMASK        (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
                                  PCI_COMMAND_PARITY | PCI_COMMAND_SERR | \
                                  PCI_COMMAND_INTX_DISABLE)
/* STATUS error bits are write-1-to-clear: 8 master data parity, 11-15 aborts/errors. */
#define PCI_STATUS_W1C           0xf900

#define PCI_ROM_ADDR_MASK        0xfffff800u
#define PCI_ROM_MIN_SIZE         0x800u
#define PCI_BAR_MEM_MIN_SIZE     0x10u
#define PCI_BAR_IO_MIN_SIZE      0x4u
#define PCI_IO_SPACE_END         0x10000u

/* MSI capability (§6.8.1): offsets from the capability start. */
#define PCI_MSI_FLAGS            0x02
#define  PCI_MSI_FLAGS_ENABLE     0x0001
#define  PCI_MSI_FLAGS_QMASK      0x000e     /* Multiple Message Capable, log2 */
#define  PCI_MSI_FLAGS_QSIZE      0x0070     /* Multiple Message Enable, log2 */
#define  PCI_MSI_FLAGS_64BIT      0x0080
#define PCI_MSI_ADDRESS_LO       0x04
#define PCI_MSI_ADDRESS_HI       0x08       /* 64-bit capability only */
#define PCI_MSI_DATA_32          0x08
#define PCI_MSI_DATA_64          0x0c
#define PCI_MSI_CAP_SIZE_32      0x0a
#define PCI_MSI_CAP_SIZE_64      0x0e

#define PCI_CAP_AREA_START       0x40
#define PCI_NUM_PIRQ             4

/* ---- State ---- */

struct PCIBus {
    Machine *machine;
    MemoryRegion *mem;                     /* where memory BARs go */
    PCIDevice *devices[256];               /* by devfn */
    int pirq_count[PCI_NUM_PIRQ];          /* functions asserting each PIRQ */
    void (*route)(void *opaque, int pirq, int level);
    void *route_opaque;
};

/*
 * Which config bytes capabilities occupy, per device, so pci_add_capability
 * can find free room (PCIDevice has no field for it; devices are never freed).
 */
static GHashTable *pci_cap_used;

static uint8_t *pci_cap_bitmap(PCIDevice *d)
{
    if (!pci_cap_used)
        pci_cap_used = g_hash_table_new(g_direct_hash, g_direct_equal);
    uint8_t *map = g_hash_table_lookup(pci_cap_used, d);
    if (!map) {
        map = g_new0(uint8_t, PCI_CONFIG_SPACE_SIZE / 8);
        g_hash_table_insert(pci_cap_used, d, map);
    }
    return map;
}

/* ---- Bus ---- */

PCIBus *pci_bus_new(Machine *m, MemoryRegion *address_space_mem)
{
    PCIBus *bus = g_new0(PCIBus, 1);
    bus->machine = m;
    bus->mem = address_space_mem;
    /* The first bus of a machine is its root bus (machine_pci_bus). */
    if (m && !m->pci_bus)
        m->pci_bus = bus;
    return bus;
}

PCIBus *machine_pci_bus(Machine *m)
{
    return m ? m->pci_bus : NULL;
}

PCIDevice *pci_bus_find_device(PCIBus *bus, uint8_t devfn)
{
    return bus ? bus->devices[devfn] : NULL;
}

void pci_bus_foreach(PCIBus *bus, void (*fn)(PCIDevice *d, void *opaque), void *opaque)
{
    if (!bus)
        return;
    for (int i = 0; i < 256; i++)
        if (bus->devices[i])
            fn(bus->devices[i], opaque);
}

void pci_bus_set_irq_router(PCIBus *bus, void (*route)(void *opaque, int pirq, int level),
                            void *opaque)
{
    bus->route = route;
    bus->route_opaque = opaque;
}

int pci_bus_pirq_level(PCIBus *bus, int pirq)
{
    if (!bus || pirq < 0 || pirq >= PCI_NUM_PIRQ)
        return 0;
    return bus->pirq_count[pirq] > 0;
}

/* ---- INTx ---- */

static uint16_t pci_command(const PCIDevice *d)
{
    return pci_get_word(d->config + PCI_COMMAND);
}

/* The PIRQ a function's pin lands on, or -1 if it has no pin. */
static int pci_intx_pirq(const PCIDevice *d)
{
    unsigned pin = d->config[PCI_INTERRUPT_PIN];
    if (pin < 1 || pin > 4)
        return -1;
    return (int)((PCI_SLOT(d->devfn) + pin - 2) & 3);
}

/* Whether this function currently contributes to its PIRQ's count. */
static bool pci_intx_driving(const PCIDevice *d, uint16_t command)
{
    return d->intx_level && !(command & PCI_COMMAND_INTX_DISABLE);
}

static void pci_bus_pirq_change(PCIBus *bus, int pirq, int delta)
{
    int old = bus->pirq_count[pirq];
    bus->pirq_count[pirq] += delta;
    if (bus->pirq_count[pirq] < 0)          /* cannot happen; never go negative */
        bus->pirq_count[pirq] = 0;
    bool was = old > 0, now = bus->pirq_count[pirq] > 0;
    if (was != now && bus->route)
        bus->route(bus->route_opaque, pirq, now);
}

/* Apply a change of (intx_level, command) from 'was_driving' to the current state. */
static void pci_intx_update(PCIDevice *d, bool was_driving)
{
    bool now = pci_intx_driving(d, pci_command(d));
    int pirq = pci_intx_pirq(d);

    if (!d->bus || pirq < 0 || was_driving == now)
        return;
    pci_bus_pirq_change(d->bus, pirq, now ? 1 : -1);
}

void pci_set_irq(PCIDevice *d, int level)
{
    bool was = pci_intx_driving(d, pci_command(d));
    uint16_t status = pci_get_word(d->config + PCI_STATUS);

    d->intx_level = level != 0;
    /* §6.2.3: STATUS.INTERRUPT shows the internal request even when INTX_DISABLE masks it. */
    if (d->intx_level)
        status |= PCI_STATUS_INTERRUPT;
    else
        status &= ~PCI_STATUS_INTERRUPT;
    pci_set_word(d->config + PCI_STATUS, status);
    pci_intx_update(d, was);
}

/* ---- BARs ---- */

static uint64_t pci_pow2_ceil(uint64_t v, uint64_t min)
{
    uint64_t p = min;
    while (p < v && p < (1ULL << 63))
        p <<= 1;
    return p;
}

void pci_register_bar_io(PCIDevice *d, int bar, uint32_t size, const IoPortOps *ops,
                         void *opaque)
{
    g_assert(bar >= 0 && bar < PCI_NUM_BARS);
    PCIBar *b = &d->bars[bar];
    uint64_t sz = pci_pow2_ceil(size, PCI_BAR_IO_MIN_SIZE);
    if (sz > PCI_IO_SPACE_END)
        sz = PCI_IO_SPACE_END;
    unsigned reg = pci_bar_reg(bar);

    b->type = PCI_BAR_IO;
    b->prefetch = false;
    b->size = sz;
    b->io_ops = ops;
    b->io_opaque = opaque;
    b->addr = PCI_BAR_UNMAPPED;
    pci_set_long(d->config + reg, PCI_BASE_ADDRESS_SPACE_IO);
    /* All 32 bits take the address, as QEMU does: sizing then reads ~(size-1)|1. */
    pci_set_long(d->wmask + reg, (uint32_t)~(sz - 1) & PCI_BAR_IO_ADDR_MASK);
}

void pci_register_bar_mem(PCIDevice *d, int bar, PCIBarType type, bool prefetch,
                          MemoryRegion *mr)
{
    bool is64 = type == PCI_BAR_MEM64;
    g_assert(bar >= 0 && bar < PCI_NUM_BARS && (!is64 || bar + 1 < PCI_NUM_BARS));
    g_assert(type == PCI_BAR_MEM32 || type == PCI_BAR_MEM64);
    PCIBar *b = &d->bars[bar];
    uint64_t sz = pci_pow2_ceil(memory_region_size(mr), PCI_BAR_MEM_MIN_SIZE);
    unsigned reg = pci_bar_reg(bar);
    uint32_t flags = (is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
                     (prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);

    if (!is64 && sz > (1ULL << 31))
        sz = 1ULL << 31;
    b->type = type;
    b->prefetch = prefetch;
    b->size = sz;
    b->mr = mr;
    b->addr = PCI_BAR_UNMAPPED;
    pci_set_long(d->config + reg, flags);
    pci_set_long(d->wmask + reg, (uint32_t)~(sz - 1) & PCI_BAR_MEM_ADDR_MASK);
    if (is64) {
        PCIBar *hi = &d->bars[bar + 1];
        memset(hi, 0, sizeof(*hi));
        hi->addr = PCI_BAR_UNMAPPED;
        pci_set_long(d->config + reg + 4, 0);
        pci_set_long(d->wmask + reg + 4, (uint32_t)(~(sz - 1) >> 32));
    }
}

void pci_register_rom(PCIDevice *d, MemoryRegion *rom)
{
    PCIBar *b = &d->bars[PCI_ROM_SLOT];
    uint64_t sz = pci_pow2_ceil(memory_region_size(rom), PCI_ROM_MIN_SIZE);

    if (sz > (1ULL << 31))
        sz = 1ULL << 31;
    b->type = PCI_BAR_MEM32;
    b->prefetch = false;
    b->size = sz;
    b->mr = rom;
    b->addr = PCI_BAR_UNMAPPED;
    pci_set_long(d->config + PCI_ROM_ADDRESS, 0);
    pci_set_long(d->wmask + PCI_ROM_ADDRESS,
                 ((uint32_t)~(sz - 1) & PCI_ROM_ADDR_MASK) | PCI_ROM_ADDRESS_ENABLE);
}

uint64_t pci_bar_address(const PCIDevice *d, int bar)
{
    if (bar < 0 || bar > PCI_ROM_SLOT)
        return PCI_BAR_UNMAPPED;
    return d->bars[bar].addr;
}

/* Where the BAR should decode now, from config space and COMMAND. */
static uint64_t pci_bar_wanted(const PCIDevice *d, int bar)
{
    const PCIBar *b = &d->bars[bar];
    uint16_t cmd = pci_command(d);
    unsigned reg = pci_bar_reg(bar);
    uint32_t lo = pci_get_long(d->config + reg);
    uint64_t addr;

    switch (b->type) {
    case PCI_BAR_IO:
        if (!(cmd & PCI_COMMAND_IO))
            return PCI_BAR_UNMAPPED;
        addr = lo & PCI_BAR_IO_ADDR_MASK & ~(uint32_t)(b->size - 1);
        if (addr == 0 || addr + b->size > PCI_IO_SPACE_END)
            return PCI_BAR_UNMAPPED;
        return addr;
    case PCI_BAR_MEM32:
    case PCI_BAR_MEM64:
        if (!(cmd & PCI_COMMAND_MEMORY))
            return PCI_BAR_UNMAPPED;
        if (bar == PCI_ROM_SLOT) {
            if (!(lo & PCI_ROM_ADDRESS_ENABLE))
                return PCI_BAR_UNMAPPED;
            addr = lo & PCI_ROM_ADDR_MASK;
        } else {
            addr = lo & PCI_BAR_MEM_ADDR_MASK;
        }
        addr &= ~(b->size - 1);
        if (b->type == PCI_BAR_MEM64 && bar != PCI_ROM_SLOT) {
            addr |= (uint64_t)pci_get_long(d->config + reg + 4) << 32;
            addr &= ~(b->size - 1);
            if (addr == 0 || addr + b->size < addr)
                return PCI_BAR_UNMAPPED;
            return addr;
        }
        /* A 32-bit BAR touching 0xFFFFFFFF is the all-ones sizing value: not decoded. */
        if (addr == 0 || addr + b->size - 1 >= 0xffffffffULL)
            return PCI_BAR_UNMAPPED;
        return addr;
    case PCI_BAR_NONE:
        break;
    }
    return PCI_BAR_UNMAPPED;
}

static void pci_bar_update(PCIDevice *d, int bar)
{
    PCIBar *b = &d->bars[bar];
    uint64_t want = pci_bar_wanted(d, bar);

    if (b->type == PCI_BAR_NONE || want == b->addr)
        return;

    if (b->type == PCI_BAR_IO) {
        if (want == PCI_BAR_UNMAPPED) {
            ioport_unregister(b->io_range);
            b->io_range = NULL;
        } else if (b->io_range) {
            if (!ioport_move(b->io_range, (uint16_t)want)) {
                LOG(LOG_GUEST_ERROR, "pci %s: I/O BAR%d at 0x%" G_GINT64_MODIFIER
                    "x overlaps other ports; BAR disabled\n", d->name, bar, want);
                ioport_unregister(b->io_range);
                b->io_range = NULL;
                want = PCI_BAR_UNMAPPED;
            }
        } else {
            GError *err = NULL;
            char *name = g_strdup_printf("%s-bar%d", d->name ? d->name : "pci", bar);
            b->io_range = ioport_register((uint16_t)want, (unsigned)b->size, b->io_ops,
                                          b->io_opaque, name, &err);
            g_free(name);
            if (!b->io_range) {
                LOG(LOG_GUEST_ERROR, "pci %s: I/O BAR%d not mapped: %s\n", d->name, bar,
                    err->message);
                g_error_free(err);
                want = PCI_BAR_UNMAPPED;
            }
        }
        b->addr = want;
        return;
    }

    /* Memory or ROM BAR. */
    if (!d->bus || !d->bus->mem || !b->mr)
        return;
    if (b->addr != PCI_BAR_UNMAPPED && want != PCI_BAR_UNMAPPED) {
        memory_region_set_address(b->mr, want);
    } else if (want == PCI_BAR_UNMAPPED) {
        memory_region_del_subregion(d->bus->mem, b->mr);
    } else {
        /* Priority -1: below RAM (0) and the BIOS, so a misplaced BAR never hides them. */
        memory_region_add_subregion(d->bus->mem, want, b->mr, -1);
    }
    b->addr = want;
}

static void pci_update_mappings(PCIDevice *d)
{
    for (int i = 0; i <= PCI_ROM_SLOT; i++)
        pci_bar_update(d, i);
}

/* ---- Configuration space ---- */

void pci_config_set_ids(PCIDevice *d, uint16_t vendor, uint16_t device, uint8_t revision,
                        uint32_t class_code)
{
    pci_set_word(d->config + PCI_VENDOR_ID, vendor);
    pci_set_word(d->config + PCI_DEVICE_ID, device);
    d->config[PCI_REVISION_ID] = revision;
    d->config[PCI_CLASS_PROG] = (uint8_t)class_code;
    pci_set_word(d->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
}

void pci_config_set_interrupt_pin(PCIDevice *d, uint8_t pin)
{
    d->config[PCI_INTERRUPT_PIN] = pin <= 4 ? pin : 0;
}

static uint32_t pci_config_read_generic(const PCIDevice *d, uint32_t addr, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)(addr + i < PCI_CONFIG_SPACE_SIZE ? d->config[addr + i] : 0xff) << (8 * i);
    return v;
}

static bool ranges_overlap(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
    return a < b + blen && b < a + alen;
}

static void pci_config_write_generic(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len)
{
    uint16_t old_cmd = pci_command(d);
    bool was_driving = pci_intx_driving(d, old_cmd);

    for (unsigned i = 0; i < len && addr + i < PCI_CONFIG_SPACE_SIZE; i++) {
        unsigned a = addr + i;
        uint8_t b = (uint8_t)(val >> (8 * i));
        uint8_t wm = d->wmask[a], w1c = d->w1cmask[a];
        d->config[a] = (uint8_t)((d->config[a] & ~wm) | (b & wm));
        d->config[a] &= (uint8_t)~(b & w1c);
    }

    if (ranges_overlap(addr, len, PCI_BASE_ADDRESS_0, 4 * PCI_NUM_BARS) ||
        ranges_overlap(addr, len, PCI_ROM_ADDRESS, 4) ||
        ranges_overlap(addr, len, PCI_COMMAND, 2))
        pci_update_mappings(d);
    if (ranges_overlap(addr, len, PCI_COMMAND, 2))
        pci_intx_update(d, was_driving);
}

uint32_t pci_bus_config_read(PCIBus *bus, uint8_t bus_nr, uint8_t devfn, uint8_t reg,
                             unsigned len)
{
    uint32_t ones = len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
    if (len != 1 && len != 2 && len != 4)
        return 0xffffffffu;
    PCIDevice *d = bus && bus_nr == 0 ? bus->devices[devfn] : NULL;
    if (!d)
        return ones;
    uint32_t v = d->config_read ? d->config_read(d, reg, len)
                                : pci_config_read_generic(d, reg, len);
    return v & ones;
}

void pci_bus_config_write(PCIBus *bus, uint8_t bus_nr, uint8_t devfn, uint8_t reg,
                          uint32_t val, unsigned len)
{
    if (len != 1 && len != 2 && len != 4)
        return;
    PCIDevice *d = bus && bus_nr == 0 ? bus->devices[devfn] : NULL;
    if (!d)
        return;
    if (len < 4)
        val &= (1u << (8 * len)) - 1;
    pci_config_write_generic(d, reg, val, len);
    if (d->config_write)
        d->config_write(d, reg, val, len);
}

/* ---- Capabilities ---- */

uint8_t pci_add_capability(PCIDevice *d, uint8_t cap_id, uint8_t offset, uint8_t size)
{
    uint8_t *used = pci_cap_bitmap(d);

    if (size < 2)
        size = 2;
    if (offset == 0) {
        for (unsigned o = PCI_CAP_AREA_START; o + size <= PCI_CONFIG_SPACE_SIZE; o += 4) {
            bool free = true;
            for (unsigned i = o; i < o + size && free; i++)
                free = !(used[i / 8] & (1u << (i % 8)));
            if (free) {
                offset = (uint8_t)o;
                break;
            }
        }
        if (offset == 0)
            return 0;
    } else {
        if (offset < PCI_CAP_AREA_START || (offset & 3) ||
            offset + size > PCI_CONFIG_SPACE_SIZE)
            return 0;
        for (unsigned i = offset; i < (unsigned)offset + size; i++)
            if (used[i / 8] & (1u << (i % 8)))
                return 0;
    }
    for (unsigned i = offset; i < (unsigned)offset + size; i++)
        used[i / 8] |= (uint8_t)(1u << (i % 8));

    /* New capabilities go first in the list (§6.7: order is not significant). */
    d->config[offset] = cap_id;
    d->config[offset + 1] = d->config[PCI_CAPABILITY_LIST];
    d->wmask[offset] = d->wmask[offset + 1] = 0;
    d->config[PCI_CAPABILITY_LIST] = offset;
    pci_set_word(d->config + PCI_STATUS,
                 pci_get_word(d->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return offset;
}

/* ---- MSI ---- */

uint8_t pci_msi_init(PCIDevice *d, uint8_t offset, unsigned nr_vectors, bool msi64)
{
    uint8_t size = msi64 ? PCI_MSI_CAP_SIZE_64 : PCI_MSI_CAP_SIZE_32;
    unsigned log2 = 0;

    if (nr_vectors < 1)
        nr_vectors = 1;
    if (nr_vectors > 32)
        nr_vectors = 32;
    while ((1u << log2) < nr_vectors)
        log2++;
    uint8_t cap = pci_add_capability(d, PCI_CAP_ID_MSI, offset, size);
    if (!cap)
        return 0;
    uint16_t flags = (uint16_t)(log2 << 1) | (msi64 ? PCI_MSI_FLAGS_64BIT : 0);
    pci_set_word(d->config + cap + PCI_MSI_FLAGS, flags);
    pci_set_word(d->wmask + cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    pci_set_long(d->wmask + cap + PCI_MSI_ADDRESS_LO, 0xfffffffcu);
    if (msi64) {
        pci_set_long(d->wmask + cap + PCI_MSI_ADDRESS_HI, 0xffffffffu);
        pci_set_word(d->wmask + cap + PCI_MSI_DATA_64, 0xffff);
    } else {
        pci_set_word(d->wmask + cap + PCI_MSI_DATA_32, 0xffff);
    }
    d->msi_cap = cap;
    return cap;
}

bool pci_msi_enabled(const PCIDevice *d)
{
    return d->msi_cap &&
           (pci_get_word(d->config + d->msi_cap + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE);
}

bool pci_msi_notify(PCIDevice *d, unsigned vector)
{
    if (!pci_msi_enabled(d))
        return false;
    /* The message is a memory write by the function: no bus mastering, no MSI (§6.8.1). */
    if (!(pci_command(d) & PCI_COMMAND_MASTER)) {
        LOG(LOG_GUEST_ERROR, "pci %s: MSI with bus mastering disabled dropped\n", d->name);
        return false;
    }
    const uint8_t *cap = d->config + d->msi_cap;
    uint16_t flags = pci_get_word(cap + PCI_MSI_FLAGS);
    bool msi64 = flags & PCI_MSI_FLAGS_64BIT;
    unsigned mme = (flags & PCI_MSI_FLAGS_QSIZE) >> 4;
    unsigned mmc = (flags & PCI_MSI_FLAGS_QMASK) >> 1;
    if (mme > mmc)              /* software enabled more than offered: use what was offered */
        mme = mmc;
    uint32_t nvec = 1u << mme;
    uint64_t addr = pci_get_long(cap + PCI_MSI_ADDRESS_LO);
    if (msi64)
        addr |= (uint64_t)pci_get_long(cap + PCI_MSI_ADDRESS_HI) << 32;
    uint32_t data = pci_get_word(cap + (msi64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32));
    if (vector >= nvec) {
        LOG(LOG_GUEST_ERROR, "pci %s: MSI vector %u beyond the %u enabled\n", d->name, vector,
            nvec);
        return false;
    }
    /* Multiple messages: the function replaces the low log2(nvec) bits of the data. */
    data = (data & ~(nvec - 1)) | vector;
    if (d->bus && d->bus->machine)
        machine_send_msi(d->bus->machine, addr, data);
    return true;
}

/* ---- Registration and reset ---- */

bool pci_device_register(PCIBus *bus, PCIDevice *d, int devfn, const char *name,
                         GError **errp)
{
    if (!bus) {
        kestrel_set_error(errp, "%s: no PCI bus on this machine", name);
        return false;
    }
    if (devfn < 0) {
        for (int slot = 1; slot < 32 && devfn < 0; slot++) {
            bool free = true;
            for (int fn = 0; fn < 8; fn++)
                free = free && !bus->devices[PCI_DEVFN(slot, fn)];
            if (free)
                devfn = PCI_DEVFN(slot, 0);
        }
        if (devfn < 0) {
            kestrel_set_error(errp, "%s: no free PCI slot on bus 0", name);
            return false;
        }
    }
    if (devfn > 255) {
        kestrel_set_error(errp, "%s: PCI address devfn 0x%x is out of range", name, devfn);
        return false;
    }
    if (bus->devices[devfn]) {
        kestrel_set_error(errp, "%s: PCI address %02x.%d is already taken by %s", name,
                          PCI_SLOT(devfn), PCI_FUNC(devfn), bus->devices[devfn]->name);
        return false;
    }

    d->bus = bus;
    d->devfn = (uint8_t)devfn;
    d->name = g_strdup(name);
    d->intx_level = false;

    if (!pci_get_word(d->config + PCI_SUBSYSTEM_VENDOR_ID) &&
        !pci_get_word(d->config + PCI_SUBSYSTEM_ID)) {
        pci_set_word(d->config + PCI_SUBSYSTEM_VENDOR_ID, PCI_SUBVENDOR_DEFAULT);
        pci_set_word(d->config + PCI_SUBSYSTEM_ID, PCI_SUBDEVICE_DEFAULT);
    }
    pci_set_word(d->wmask + PCI_COMMAND, pci_get_word(d->wmask + PCI_COMMAND) | PCI_COMMAND_WMASK);
    pci_set_word(d->w1cmask + PCI_STATUS, pci_get_word(d->w1cmask + PCI_STATUS) | PCI_STATUS_W1C);
    d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    d->wmask[PCI_LATENCY_TIMER] = 0xff;
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    for (int i = 0; i <= PCI_ROM_SLOT; i++)
        if (d->bars[i].type == PCI_BAR_NONE)
            d->bars[i].addr = PCI_BAR_UNMAPPED;
        else if (d->bars[i].size == 0)
            d->bars[i].type = PCI_BAR_NONE;

    bus->devices[devfn] = d;
    return true;
}

void pci_device_reset(PCIDevice *d)
{
    bool was_driving = pci_intx_driving(d, pci_command(d));

    /* §6.2.2: COMMAND resets to 0 (no decoding, no mastering); STATUS errors clear. */
    pci_set_word(d->config + PCI_COMMAND, 0);
    pci_set_word(d->config + PCI_STATUS, pci_get_word(d->config + PCI_STATUS) &
                 (uint16_t)~(PCI_STATUS_W1C | PCI_STATUS_INTERRUPT));
    d->config[PCI_CACHE_LINE_SIZE] = 0;
    d->config[PCI_INTERRUPT_LINE] = 0;
    for (int i = 0; i <= PCI_ROM_SLOT; i++) {
        PCIBar *b = &d->bars[i];
        unsigned reg = pci_bar_reg(i);
        if (b->type == PCI_BAR_NONE)
            continue;
        /* Address bits (the writable ones) back to 0; type bits stay. */
        pci_set_long(d->config + reg,
                     pci_get_long(d->config + reg) & ~pci_get_long(d->wmask + reg));
        if (b->type == PCI_BAR_MEM64 && i < PCI_NUM_BARS - 1)
            pci_set_long(d->config + reg + 4, 0);
    }
    if (d->msi_cap)
        pci_set_word(d->config + d->msi_cap + PCI_MSI_FLAGS,
                     pci_get_word(d->config + d->msi_cap + PCI_MSI_FLAGS) &
                     (uint16_t)~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE));
    pci_update_mappings(d);
    d->intx_level = false;
    pci_intx_update(d, was_driving);
}

/* ---- -device addr= ---- */

int pci_parse_devfn(const char *addr, GError **errp)
{
    char *end;
    unsigned long slot, fn = 0;

    if (!addr || !*addr)
        return -1;
    /* QEMU's syntax: slot in hex ("0x" optional), then optionally "." and a function 0-7. */
    slot = strtoul(addr, &end, 16);
    if (end == addr || addr[0] == '-' || addr[0] == '+' || slot > 0x1f)
        goto bad;
    if (*end == '.') {
        const char *f = end + 1;
        if (*f < '0' || *f > '7')
            goto bad;
        fn = strtoul(f, &end, 10);
        if (fn > 7)
            goto bad;
    }
    if (*end)
        goto bad;
    return PCI_DEVFN(slot, fn);

bad:
    kestrel_set_error(errp, "addr=%s: not a PCI address (want slot[.function], slot 0x0-0x1f, "
                      "function 0-7)", addr);
    return -2;
}

/* ---- DMA ---- */

static bool pci_dma_allowed(PCIDevice *d, const char *what, hwaddr addr, uint64_t len)
{
    if (!(pci_command(d) & PCI_COMMAND_MASTER)) {
        LOG(LOG_GUEST_ERROR, "pci %s: DMA %s of %" G_GUINT64_FORMAT " bytes at 0x%"
            G_GINT64_MODIFIER "x with bus mastering disabled refused\n", d->name, what, len,
            addr);
        return false;
    }
    return d->bus && d->bus->machine && d->bus->machine->as;
}

bool pci_dma_read(PCIDevice *d, hwaddr addr, void *buf, uint64_t len)
{
    if (!pci_dma_allowed(d, "read", addr, len)) {
        memset(buf, 0xff, len);
        return false;
    }
    return address_space_read(d->bus->machine->as, addr, buf, len) == MEMTX_OK;
}

bool pci_dma_write(PCIDevice *d, hwaddr addr, const void *buf, uint64_t len)
{
    if (!pci_dma_allowed(d, "write", addr, len))
        return false;
    /* address_space_write notifies the software CPU of every RAM byte it changes. */
    return address_space_write(d->bus->machine->as, addr, buf, len) == MEMTX_OK;
}

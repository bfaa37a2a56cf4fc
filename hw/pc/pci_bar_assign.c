/*
 * PCI resource assignment for direct boot (-kernel without -bios): what
 * SeaBIOS does before it starts a kernel under QEMU, so that kernels which
 * take BARs as the firmware left them (kvm-unit-tests' pci-testdev test,
 * small Multiboot test kernels) find them mapped, as they would under QEMU.
 *
 * Each unassigned BAR of every function on bus 0 gets a naturally aligned
 * address (PCI Local Bus Spec 3.0 §6.2.5.1: a BAR decodes a power-of-two
 * block aligned to its size): I/O from 0xC000 up, as SeaBIOS starts there;
 * memory (32- and 64-bit BARs alike, below 4 GiB) downward from the top of
 * the PCI hole, 0xFEC00000 where the IOAPIC starts, as SeaBIOS does, but
 * never below the end of low RAM.  Largest BARs first keep the alignment
 * padding small.  A function that got a BAR gets COMMAND.IO / COMMAND.MEM
 * set, as the firmware leaves it.  Expansion ROM BARs stay off.
 *
 * Writes go through the host bridge's config path, so the core maps the
 * BARs exactly as a guest's config writes would.
 */
#include "kestrel/log.h"
#include "kestrel/pci.h"

#define PCI_IO_ASSIGN_START     0xc000u
#define PCI_IO_ASSIGN_END       0x10000u
#define PCI_MEM_ASSIGN_END      0xfec00000ull   /* IOAPIC and up are not PCI memory */

typedef struct BarRequest {
    PCIDevice *dev;
    int bar;
} BarRequest;

typedef struct AssignState {
    PCIBus *bus;
    GArray *requests;               /* of BarRequest */
} AssignState;

static void collect_bars(PCIDevice *d, void *opaque)
{
    AssignState *st = opaque;
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        PCIBar *b = &d->bars[i];
        if (b->type == PCI_BAR_NONE || b->size == 0)
            continue;
        uint32_t cur = pci_get_long(d->config + pci_bar_reg(i));
        uint32_t addr = cur & (b->type == PCI_BAR_IO ? PCI_BAR_IO_ADDR_MASK : PCI_BAR_MEM_ADDR_MASK);
        bool upper = b->type == PCI_BAR_MEM64 && pci_get_long(d->config + pci_bar_reg(i) + 4);
        if (addr == 0 && !upper) {
            BarRequest r = { d, i };
            g_array_append_val(st->requests, r);
        }
        if (b->type == PCI_BAR_MEM64)
            i++;                    /* the upper half is not a BAR of its own */
    }
}

static gint bar_larger_first(gconstpointer a, gconstpointer b)
{
    const BarRequest *x = a, *y = b;
    uint64_t sx = x->dev->bars[x->bar].size, sy = y->dev->bars[y->bar].size;
    return sx > sy ? -1 : sx < sy ? 1 : 0;
}

static uint16_t command_enable_for(PCIBarType type)
{
    return type == PCI_BAR_IO ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
}

void pci_bus_assign_unassigned_bars(PCIBus *bus, uint64_t low_ram_end)
{
    if (!bus)
        return;
    AssignState st = { bus, g_array_new(false, false, sizeof(BarRequest)) };
    pci_bus_foreach(bus, collect_bars, &st);
    g_array_sort(st.requests, bar_larger_first);

    uint32_t io_next = PCI_IO_ASSIGN_START;
    uint64_t mem_top = PCI_MEM_ASSIGN_END;
    for (guint k = 0; k < st.requests->len; k++) {
        BarRequest *r = &g_array_index(st.requests, BarRequest, k);
        PCIDevice *d = r->dev;
        PCIBar *b = &d->bars[r->bar];
        uint64_t addr;
        if (b->type == PCI_BAR_IO) {
            addr = (io_next + b->size - 1) & ~(b->size - 1);
            if (addr + b->size > PCI_IO_ASSIGN_END) {
                LOG(LOG_UNIMP, "pci: no I/O space left for %s BAR%d (%" PRIu64 " bytes)\n",
                    d->name, r->bar, b->size);
                continue;
            }
            io_next = (uint32_t)(addr + b->size);
        } else {
            if (b->size > mem_top) {
                continue;
            }
            addr = (mem_top - b->size) & ~(b->size - 1);
            if (addr < low_ram_end) {
                LOG(LOG_UNIMP, "pci: no memory space left below 4 GiB for %s BAR%d "
                    "(%" PRIu64 " bytes)\n", d->name, r->bar, b->size);
                continue;
            }
            mem_top = addr;
        }
        /* The type bits below the address are read-only (not in wmask): they stay. */
        pci_bus_config_write(bus, 0, d->devfn, (uint8_t)pci_bar_reg(r->bar), (uint32_t)addr, 4);
        if (b->type == PCI_BAR_MEM64)
            pci_bus_config_write(bus, 0, d->devfn, (uint8_t)(pci_bar_reg(r->bar) + 4), 0, 4);
        uint16_t cmd = pci_get_word(d->config + PCI_COMMAND);
        cmd |= command_enable_for(b->type);
        pci_bus_config_write(bus, 0, d->devfn, PCI_COMMAND, cmd, 2);
    }
    g_array_free(st.requests, true);
}

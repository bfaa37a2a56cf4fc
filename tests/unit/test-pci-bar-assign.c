/*
 * Direct-boot BAR assignment (hw/pc/pci_bar_assign.c) on a RAM-only machine
 * with the real i440FX, PIIX3 and pci-testdev plus a fake function with an
 * I/O BAR, a 32-bit and a 64-bit memory BAR and a ROM: every unassigned BAR
 * gets a naturally aligned address (I/O from 0xC000 up, memory downward
 * from 0xFEC00000, largest first), decoding is turned on, ROMs stay off,
 * BARs a guest or firmware already set are kept.
 */
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/machine.h"
#include "kestrel/pci.h"
#include "tests/testlib.h"

#include <string.h>

#define MiB (1024ull * 1024)
#define FAKE_DEVFN  PCI_DEVFN(3, 0)

static uint32_t fake_io_read(void *opaque, uint16_t offset, unsigned size) { return 0; }
static void fake_io_write(void *opaque, uint16_t offset, uint32_t v, unsigned size) { }
static const IoPortOps fake_io_ops = { .read = fake_io_read, .write = fake_io_write };
static uint64_t fake_mmio_read(void *opaque, hwaddr off, unsigned size) { return 0; }
static void fake_mmio_write(void *opaque, hwaddr off, uint64_t v, unsigned size) { }
static const MemoryRegionOps fake_mmio_ops = { .read = fake_mmio_read, .write = fake_mmio_write };

static Machine *machine;
static PCIBus *bus;

static void setup_board(uint64_t ram)
{
    GError *err = NULL;
    Machine *m = g_new0(Machine, 1);
    m->cfg = g_new0(MachineConfig, 1);
    m->cfg->ram_size = ram;
    m->cfg->smp_cpus = m->smp_cpus = 1;
    m->ram_below_4g = ram;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", ram, NULL);
    CHECK(m->ram != NULL);
    memory_region_add_subregion(m->system_memory, 0, m->ram, 0);
    m->as = address_space_new("memory", m->system_memory);
    m->firmware_boot = false;
    machine = m;
    CHECK_MSG(device_create(m, "i440FX-pcihost", NULL, &err), "i440FX: %s",
              err ? err->message : "?");
    CHECK_MSG(device_create(m, "PIIX3", NULL, &err), "PIIX3: %s", err ? err->message : "?");
    bus = machine_pci_bus(m);
    CHECK(bus != NULL);
}

static PCIDevice *fake_new(void)
{
    PCIDevice *d = g_new0(PCIDevice, 1);
    GError *err = NULL;
    pci_config_set_ids(d, 0x1234, 0x5678, 1, 0xff0000);
    pci_register_bar_io(d, 0, 16, &fake_io_ops, NULL);
    pci_register_bar_mem(d, 1, PCI_BAR_MEM32, false,
                         memory_region_new_mmio("fake-mmio", 0x1000, &fake_mmio_ops, NULL));
    pci_register_bar_mem(d, 2, PCI_BAR_MEM64, true,
                         memory_region_new_mmio("fake-mmio64", MiB, &fake_mmio_ops, NULL));
    pci_register_rom(d, memory_region_new_rom("fake-rom", 0x10000, NULL));
    CHECK_MSG(pci_device_register(bus, d, FAKE_DEVFN, "fake", &err), "register: %s",
              err ? err->message : "?");
    return d;
}

static uint32_t cfg_rd(int devfn, uint8_t reg, unsigned len)
{
    return pci_bus_config_read(bus, 0, (uint8_t)devfn, reg, len);
}

static int testdev_devfn(void)
{
    for (int slot = 0; slot < 32; slot++)
        if (cfg_rd(PCI_DEVFN(slot, 0), 0, 4) == 0x00051b36)
            return PCI_DEVFN(slot, 0);
    return -1;
}

static void test_bars_get_aligned_addresses_largest_first(void)
{
    GError *err = NULL;
    setup_board(64 * MiB);
    CHECK_MSG(device_create(machine, "pci-testdev", NULL, &err), "pci-testdev: %s",
              err ? err->message : "?");
    fake_new();
    int td = testdev_devfn();
    CHECK(td >= 0);
    pci_bus_assign_unassigned_bars(bus, machine->ram_below_4g);

    /* Memory, top down from 0xFEC00000: the 1 MiB BAR, then the two 4 KiB ones. */
    CHECK_EQ("fake 64-bit BAR2 low (1 MiB, prefetchable, 64-bit type bits kept)",
             0xfeb0000cu, cfg_rd(FAKE_DEVFN, 0x18, 4));
    CHECK_EQ("fake 64-bit BAR2 high dword", 0, cfg_rd(FAKE_DEVFN, 0x1c, 4));
    uint32_t a = cfg_rd(td, 0x10, 4), b = cfg_rd(FAKE_DEVFN, 0x14, 4);
    CHECK_MSG((a == 0xfeaff000u && b == 0xfeafe000u) || (a == 0xfeafe000u && b == 0xfeaff000u),
              "4 KiB BARs at 0x%08x (pci-testdev) and 0x%08x (fake), expected the two pages "
              "below 0xfeb00000", a, b);
    /* I/O from 0xC000: pci-testdev's 256 bytes first, then the fake's 16. */
    CHECK_EQ("pci-testdev BAR1 (256 bytes of I/O)", 0xc001, cfg_rd(td, 0x14, 4));
    CHECK_EQ("fake BAR0 (16 bytes of I/O)", 0xc101, cfg_rd(FAKE_DEVFN, 0x10, 4));
    CHECK_EQ("fake ROM BAR stays off", 0, cfg_rd(FAKE_DEVFN, 0x30, 4) & 1);
    CHECK_EQ("pci-testdev COMMAND IO|MEM", PCI_COMMAND_IO | PCI_COMMAND_MEMORY,
             cfg_rd(td, PCI_COMMAND, 2) & 3);
    CHECK_EQ("fake COMMAND IO|MEM", PCI_COMMAND_IO | PCI_COMMAND_MEMORY,
             cfg_rd(FAKE_DEVFN, PCI_COMMAND, 2) & 3);
    CHECK_MSG(ioport_owner(0xc000) != NULL, "pci-testdev's I/O BAR does not decode at 0xc000");
    /* pci-testdev's BAR0 decodes: select test 0, its width byte reads 1. */
    uint8_t zero = 0, width = 0;
    address_space_write(machine->as, a, &zero, 1);
    address_space_read(machine->as, a + 1, &width, 1);
    CHECK_EQ("pci-testdev width byte through the assigned BAR0", 1, width);
}

static void test_assigned_bars_are_kept(void)
{
    setup_board(64 * MiB);
    fake_new();
    pci_bus_config_write(bus, 0, FAKE_DEVFN, 0x10, 0xd000, 4);
    pci_bus_config_write(bus, 0, FAKE_DEVFN, 0x14, 0xe0000000u, 4);
    pci_bus_assign_unassigned_bars(bus, machine->ram_below_4g);
    CHECK_EQ("BAR0 set before", 0xd001, cfg_rd(FAKE_DEVFN, 0x10, 4));
    CHECK_EQ("BAR1 set before", 0xe0000000u, cfg_rd(FAKE_DEVFN, 0x14, 4));
    CHECK_EQ("BAR2 was unset: assigned", 0xfeb0000cu, cfg_rd(FAKE_DEVFN, 0x18, 4));
}

static void test_memory_bars_never_overlap_low_ram(void)
{
    setup_board(64 * MiB);
    fake_new();
    /* Pretend RAM reaches 0xFEB80000: the 1 MiB BAR cannot fit above it. */
    pci_bus_assign_unassigned_bars(bus, 0xfeb80000ull);
    CHECK_EQ("1 MiB BAR left unassigned", 0x0000000cu, cfg_rd(FAKE_DEVFN, 0x18, 4));
    uint32_t b = cfg_rd(FAKE_DEVFN, 0x14, 4);
    CHECK_MSG(b >= 0xfeb80000u && b < 0xfec00000u && !(b & 0xfff),
              "4 KiB BAR at 0x%08x, expected an aligned page in [0xfeb80000, 0xfec00000)", b);
}

static const TestCase cases[] = {
    TEST_CASE(test_bars_get_aligned_addresses_largest_first),
    TEST_CASE(test_assigned_bars_are_kept),
    TEST_CASE(test_memory_bars_never_overlap_low_ram),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pci-bar-assign", cases, argc, argv);
}

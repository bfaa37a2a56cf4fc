/*
 * The PCI core (hw/pc/pci.c) with the real i440FX and PIIX3 on a RAM-only
 * machine, and a fake function in slot 3 with an I/O BAR, a 32-bit memory
 * BAR, a 64-bit prefetchable BAR, an expansion ROM, INTA and MSI: BAR
 * sizing, mapping and unmapping through COMMAND, placement below RAM, the
 * INTx swizzle through PIIX3's PIRQRC onto ISA IRQs, DMA gating, MSI
 * capability layout and devfn parsing.
 */
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/machine.h"
#include "kestrel/pci.h"
#include "tests/testlib.h"

#include <string.h>

#define MiB (1024ull * 1024)

#define FAKE_SLOT   3
#define FAKE_DEVFN  PCI_DEVFN(FAKE_SLOT, 0)
#define PIIX3_DEVFN PCI_DEVFN(1, 0)
#define PIRQRC      0x60

static int gsi_level[MACHINE_NUM_GSI];
static int gsi_changes;

static void gsi_sink(void *opaque, int n, int level)
{
    gsi_level[n] = level;
    gsi_changes++;
}

typedef struct FakeDev {
    PCIDevice dev;
    MemoryRegion *mmio, *mmio64, *rom;
    uint16_t last_io_offset;
    hwaddr last_mmio_offset;
} FakeDev;

static uint32_t fake_io_read(void *opaque, uint16_t offset, unsigned size)
{
    FakeDev *f = opaque;
    f->last_io_offset = offset;
    return 0xa0 + offset;
}

static void fake_io_write(void *opaque, uint16_t offset, uint32_t v, unsigned size)
{
    FakeDev *f = opaque;
    f->last_io_offset = offset;
}

static const IoPortOps fake_io_ops = { .read = fake_io_read, .write = fake_io_write,
                                       .max_access = 4 };

static uint64_t fake_mmio_read(void *opaque, hwaddr off, unsigned size)
{
    FakeDev *f = opaque;
    f->last_mmio_offset = off;
    return 0x5a5a0000u | (uint32_t)off;
}

static void fake_mmio_write(void *opaque, hwaddr off, uint64_t v, unsigned size)
{
    FakeDev *f = opaque;
    f->last_mmio_offset = off;
}

static const MemoryRegionOps fake_mmio_ops = { .read = fake_mmio_read, .write = fake_mmio_write,
                                               .min_access = 4, .max_access = 4 };

static Machine *machine;
static PCIBus *bus;

static Machine *test_machine(uint64_t ram)
{
    Machine *m = g_new0(Machine, 1);
    m->cfg = g_new0(MachineConfig, 1);
    m->cfg->ram_size = ram;
    m->cfg->smp_cpus = 1;
    m->smp_cpus = 1;
    m->ram_below_4g = ram;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", ram, NULL);
    CHECK(m->ram != NULL);
    memory_region_add_subregion(m->system_memory, 0, m->ram, 0);
    m->as = address_space_new("memory", m->system_memory);
    for (int i = 0; i < MACHINE_NUM_GSI; i++)
        m->gsi[i] = irq_line_new(gsi_sink, m, i);
    m->firmware_boot = false;
    return m;
}

static void setup_board(void)
{
    GError *err = NULL;
    machine = test_machine(64 * MiB);
    CHECK_MSG(device_create(machine, "i440FX-pcihost", NULL, &err) != NULL, "i440FX: %s",
              err ? err->message : "?");
    CHECK_MSG(device_create(machine, "PIIX3", NULL, &err) != NULL, "PIIX3: %s",
              err ? err->message : "?");
    bus = machine_pci_bus(machine);
    CHECK(bus != NULL);
}

static FakeDev *fake_new(int devfn, uint8_t pin)
{
    FakeDev *f = g_new0(FakeDev, 1);
    GError *err = NULL;
    pci_config_set_ids(&f->dev, 0x1234, 0x5678, 1, 0xff0000);
    pci_config_set_interrupt_pin(&f->dev, pin);
    pci_register_bar_io(&f->dev, 0, 16, &fake_io_ops, f);
    f->mmio = memory_region_new_mmio("fake-mmio", 0x1000, &fake_mmio_ops, f);
    pci_register_bar_mem(&f->dev, 1, PCI_BAR_MEM32, false, f->mmio);
    f->mmio64 = memory_region_new_mmio("fake-mmio64", 0x100000, &fake_mmio_ops, f);
    pci_register_bar_mem(&f->dev, 2, PCI_BAR_MEM64, true, f->mmio64);
    f->rom = memory_region_new_rom("fake-rom", 0x10000, NULL);
    memory_region_host_ptr(f->rom)[0] = 0x55;
    memory_region_host_ptr(f->rom)[1] = 0xaa;
    pci_register_rom(&f->dev, f->rom);
    CHECK_MSG(pci_device_register(bus, &f->dev, devfn, "fake", &err), "register: %s",
              err ? err->message : "?");
    return f;
}

static uint32_t cfg_rd(int devfn, uint8_t reg, unsigned len)
{
    return pci_bus_config_read(bus, 0, (uint8_t)devfn, reg, len);
}

static void cfg_wr(int devfn, uint8_t reg, uint32_t v, unsigned len)
{
    pci_bus_config_write(bus, 0, (uint8_t)devfn, reg, v, len);
}

static uint32_t size_bar(int devfn, uint8_t reg)
{
    uint32_t old = cfg_rd(devfn, reg, 4);
    cfg_wr(devfn, reg, 0xffffffffu, 4);
    uint32_t v = cfg_rd(devfn, reg, 4);
    cfg_wr(devfn, reg, old, 4);
    return v;
}

static void test_registration_sets_defaults(void)
{
    setup_board();
    FakeDev *f = fake_new(-1, 1);
    CHECK_EQ("first free slot", PCI_DEVFN(2, 0), f->dev.devfn);
    CHECK_EQ("subsystem vendor", PCI_SUBVENDOR_DEFAULT, cfg_rd(f->dev.devfn, 0x2c, 2));
    CHECK_EQ("subsystem id", PCI_SUBDEVICE_DEFAULT, cfg_rd(f->dev.devfn, 0x2e, 2));
    CHECK_EQ("interrupt pin", 1, cfg_rd(f->dev.devfn, PCI_INTERRUPT_PIN, 1));
    GError *err = NULL;
    FakeDev *g = g_new0(FakeDev, 1);
    CHECK_MSG(!pci_device_register(bus, &g->dev, PCI_DEVFN(1, 0), "dup", &err),
              "registering at the PIIX3's devfn succeeded");
    CHECK_MSG(err && strstr(err->message, "PIIX3"), "error does not name the owner: %s",
              err ? err->message : "(none)");
}

static void test_bar_sizing_reads_size_mask(void)
{
    setup_board();
    fake_new(FAKE_DEVFN, 1);
    CHECK_EQ("I/O BAR0 of 16 bytes", 0xfffffff1u, size_bar(FAKE_DEVFN, 0x10));
    CHECK_EQ("32-bit memory BAR1 of 4 KiB", 0xfffff000u, size_bar(FAKE_DEVFN, 0x14));
    CHECK_EQ("64-bit prefetchable BAR2 of 1 MiB (low)", 0xfff0000cu, size_bar(FAKE_DEVFN, 0x18));
    CHECK_EQ("64-bit BAR2 high dword", 0xffffffffu, size_bar(FAKE_DEVFN, 0x1c));
    CHECK_EQ("unimplemented BAR4", 0, size_bar(FAKE_DEVFN, 0x20));
    CHECK_EQ("ROM BAR of 64 KiB", 0xffff0001u, size_bar(FAKE_DEVFN, 0x30));
    CHECK_EQ("BAR0 back after sizing", 0x1, cfg_rd(FAKE_DEVFN, 0x10, 4));
}

static void test_io_bar_maps_with_command_io(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, 0x10, 0xc000, 4);
    CHECK_MSG(ioport_owner(0xc000) == NULL, "I/O BAR decoded before COMMAND.IO");
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_IO, 2);
    CHECK_MSG(ioport_owner(0xc000) != NULL, "I/O BAR not decoded with COMMAND.IO");
    CHECK_EQ("pci_bar_address(BAR0)", 0xc000, pci_bar_address(&f->dev, 0));
    CHECK_EQ("inb 0xc004 via the BAR", 0xa4, ioport_read(0xc004, 1));
    CHECK_EQ("handler saw offset 4", 4, f->last_io_offset);
    CHECK_MSG(ioport_owner(0xc010) == NULL, "BAR claims more than 16 ports");

    cfg_wr(FAKE_DEVFN, 0x10, 0xc100, 4);
    CHECK_MSG(ioport_owner(0xc000) == NULL, "old BAR0 range still claimed after the move");
    CHECK_EQ("inb 0xc10f after the move", 0xaf, ioport_read(0xc10f, 1));

    cfg_wr(FAKE_DEVFN, PCI_COMMAND, 0, 2);
    CHECK_MSG(ioport_owner(0xc100) == NULL, "I/O BAR still decoded after COMMAND.IO cleared");
    CHECK_EQ("pci_bar_address(BAR0) when off", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, 0));
    CHECK_EQ("unclaimed port reads all-ones", 0xff, ioport_read(0xc100, 1));
}

static void test_io_bar_over_taken_ports_is_refused(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, 0x10, 0xcf0, 4);     /* 0xCF0-0xCFF overlaps CONFADD/CONFDATA */
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_IO, 2);
    CHECK_EQ("BAR over the config ports stays unmapped", PCI_BAR_UNMAPPED,
             pci_bar_address(&f->dev, 0));
    CHECK_EQ("config mechanism still works", 0x1237, cfg_rd(0, 2, 2));
    CHECK_MSG(ioport_owner(0xcf8) && strcmp(ioport_owner(0xcf8), "pci-conf-idx") == 0,
              "0xCF8 lost its owner");
    cfg_wr(FAKE_DEVFN, 0x10, 0xd000, 4);
    CHECK_EQ("BAR0 maps once moved to free ports", 0xd000, pci_bar_address(&f->dev, 0));
}

static void test_mem_bar_maps_with_command_mem(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, 0x14, 0xfebf0000u, 4);
    CHECK_EQ("MMIO before COMMAND.MEM", 0xffffffffu, address_space_ld(machine->as, 0xfebf0010, 4));
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    CHECK_EQ("MMIO read via BAR1", 0x5a5a0010u, address_space_ld(machine->as, 0xfebf0010, 4));
    CHECK_EQ("device saw offset 0x10", 0x10, f->last_mmio_offset);
    cfg_wr(FAKE_DEVFN, 0x14, 0xfebe0000u, 4);
    CHECK_EQ("old address after the move", 0xffffffffu,
             address_space_ld(machine->as, 0xfebf0010, 4));
    CHECK_EQ("new address after the move", 0x5a5a0020u,
             address_space_ld(machine->as, 0xfebe0020, 4));
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, 0, 2);
    CHECK_EQ("MMIO after COMMAND.MEM cleared", 0xffffffffu,
             address_space_ld(machine->as, 0xfebe0020, 4));
    CHECK_EQ("pci_bar_address(BAR1) when off", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, 1));
}

static void test_mem_bar_over_ram_does_not_hide_ram(void)
{
    setup_board();
    fake_new(FAKE_DEVFN, 1);
    address_space_st(machine->as, 0x200000, 0x13572468u, 4);
    cfg_wr(FAKE_DEVFN, 0x14, 0x200000u, 4);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    CHECK_EQ("RAM under a BAR placed over it", 0x13572468u,
             address_space_ld(machine->as, 0x200000, 4));
}

static void test_sizing_value_does_not_map_32bit_bar(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    cfg_wr(FAKE_DEVFN, 0x14, 0xffffffffu, 4);
    cfg_wr(FAKE_DEVFN, 0x10, 0xffffffffu, 4);
    CHECK_EQ("BAR1 with the all-ones sizing value", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, 1));
    CHECK_EQ("BAR0 with the all-ones sizing value", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, 0));
}

static void test_64bit_bar_maps_above_4g(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, 0x18, 0x00000000u, 4);
    cfg_wr(FAKE_DEVFN, 0x1c, 0x00000008u, 4);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    CHECK_EQ("pci_bar_address(BAR2)", 0x800000000ULL, pci_bar_address(&f->dev, 2));
    CHECK_EQ("MMIO via the 64-bit BAR", 0x5a5a0100u,
             address_space_ld(machine->as, 0x800000100ULL, 4));
    cfg_wr(FAKE_DEVFN, 0x18, 0xe0000000u, 4);
    CHECK_EQ("low dword moves it", 0x8e0000000ULL, pci_bar_address(&f->dev, 2));
    CHECK_EQ("BAR2 low dword keeps its type bits", 0xe000000cu, cfg_rd(FAKE_DEVFN, 0x18, 4));
}

static void test_rom_bar_needs_enable_and_mem(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    cfg_wr(FAKE_DEVFN, PCI_ROM_ADDRESS, 0xfeb00000u, 4);
    CHECK_EQ("ROM without its enable bit", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, PCI_ROM_SLOT));
    cfg_wr(FAKE_DEVFN, PCI_ROM_ADDRESS, 0xfeb00001u, 4);
    CHECK_EQ("ROM with enable", 0xfeb00000u, pci_bar_address(&f->dev, PCI_ROM_SLOT));
    CHECK_EQ("ROM signature", 0xaa55, address_space_ld(machine->as, 0xfeb00000u, 2));
    address_space_st(machine->as, 0xfeb00000u, 0, 2);
    CHECK_EQ("ROM is read-only", 0xaa55, address_space_ld(machine->as, 0xfeb00000u, 2));
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, 0, 2);
    CHECK_EQ("ROM with COMMAND.MEM clear", PCI_BAR_UNMAPPED, pci_bar_address(&f->dev, PCI_ROM_SLOT));
}

static void test_reset_unmaps_and_clears_bars(void)
{
    setup_board();
    FakeDev *f = fake_new(FAKE_DEVFN, 1);
    cfg_wr(FAKE_DEVFN, 0x10, 0xc000, 4);
    cfg_wr(FAKE_DEVFN, 0x14, 0xfebf0000u, 4);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
    pci_device_reset(&f->dev);
    CHECK_EQ("COMMAND after reset", 0, cfg_rd(FAKE_DEVFN, PCI_COMMAND, 2));
    CHECK_EQ("BAR0 after reset (type bit only)", 0x1, cfg_rd(FAKE_DEVFN, 0x10, 4));
    CHECK_EQ("BAR2 after reset (type bits only)", 0xc, cfg_rd(FAKE_DEVFN, 0x18, 4));
    CHECK_MSG(ioport_owner(0xc000) == NULL, "I/O BAR decoded after reset");
    CHECK_EQ("MMIO after reset", 0xffffffffu, address_space_ld(machine->as, 0xfebf0000, 4));
}

static void test_intx_swizzle_and_pirq_routing(void)
{
    setup_board();
    /* Slot 3 INTA -> PIRQ (3 + 1 - 2) mod 4 = C; slot 3 INTB -> D. */
    FakeDev *a = fake_new(FAKE_DEVFN, 1);
    FakeDev *b = fake_new(PCI_DEVFN(FAKE_SLOT, 1), 2);
    cfg_wr(PIIX3_DEVFN, PIRQRC, 0x0b0b0a0au, 4);       /* SeaBIOS: 10, 10, 11, 11 */
    pci_set_irq(&a->dev, 1);
    CHECK_EQ("PIRQC level", 1, pci_bus_pirq_level(bus, 2));
    CHECK_EQ("IRQ11 with 03.0 INTA asserted", 1, gsi_level[11]);
    CHECK_EQ("IRQ10 untouched", 0, gsi_level[10]);
    CHECK_EQ("STATUS.INTERRUPT", PCI_STATUS_INTERRUPT,
             cfg_rd(FAKE_DEVFN, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    pci_set_irq(&b->dev, 1);
    CHECK_EQ("PIRQD level", 1, pci_bus_pirq_level(bus, 3));
    pci_set_irq(&a->dev, 0);
    CHECK_EQ("IRQ11 stays high while 03.1 (PIRQD, also IRQ11) holds it", 1, gsi_level[11]);
    pci_set_irq(&b->dev, 0);
    CHECK_EQ("IRQ11 low when both are released", 0, gsi_level[11]);
}

static void test_intx_shared_pirq_counts(void)
{
    setup_board();
    /* Slot 3 INTA and slot 7 INTA both land on PIRQC (7 + 1 - 2 = 6 = 2 mod 4). */
    FakeDev *a = fake_new(FAKE_DEVFN, 1);
    FakeDev *c = fake_new(PCI_DEVFN(7, 0), 1);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x0b, 1);
    pci_set_irq(&a->dev, 1);
    pci_set_irq(&c->dev, 1);
    pci_set_irq(&a->dev, 1);               /* repeated level: no double count */
    pci_set_irq(&a->dev, 0);
    CHECK_EQ("IRQ11 with 07.0 still asserting", 1, gsi_level[11]);
    pci_set_irq(&c->dev, 0);
    CHECK_EQ("IRQ11 after both lowered", 0, gsi_level[11]);
}

static void test_intx_disable_masks_the_pin(void)
{
    setup_board();
    FakeDev *a = fake_new(FAKE_DEVFN, 1);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x0b, 1);
    pci_set_irq(&a->dev, 1);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    CHECK_EQ("IRQ11 with INTX_DISABLE", 0, gsi_level[11]);
    CHECK_EQ("STATUS.INTERRUPT still shows the request", PCI_STATUS_INTERRUPT,
             cfg_rd(FAKE_DEVFN, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, 0, 2);
    CHECK_EQ("IRQ11 after INTX_DISABLE cleared", 1, gsi_level[11]);
    pci_device_reset(&a->dev);
    CHECK_EQ("IRQ11 after the function reset", 0, gsi_level[11]);
    CHECK_EQ("PIRQC count after reset", 0, pci_bus_pirq_level(bus, 2));
}

static void test_pirq_rerouting_moves_a_high_level(void)
{
    setup_board();
    FakeDev *a = fake_new(FAKE_DEVFN, 1);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x0b, 1);
    pci_set_irq(&a->dev, 1);
    CHECK_EQ("IRQ11 before re-routing", 1, gsi_level[11]);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x05, 1);
    CHECK_EQ("IRQ11 after PIRQC moved to 5", 0, gsi_level[11]);
    CHECK_EQ("IRQ5 after PIRQC moved to 5", 1, gsi_level[5]);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x85, 1);
    CHECK_EQ("IRQ5 after PIRQC routing disabled", 0, gsi_level[5]);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x0d, 1);    /* reserved IRQ 13: nowhere */
    CHECK_EQ("IRQ13 never driven by a PIRQ", 0, gsi_level[13]);
    cfg_wr(PIIX3_DEVFN, PIRQRC + 2, 0x0a, 1);
    CHECK_EQ("IRQ10 after enabling PIRQC -> 10", 1, gsi_level[10]);
    pci_set_irq(&a->dev, 0);
    CHECK_EQ("IRQ10 after the pin drops", 0, gsi_level[10]);
}

static void test_dma_needs_bus_master(void)
{
    setup_board();
    FakeDev *a = fake_new(FAKE_DEVFN, 1);
    uint32_t v = 0x12345678u, r = 0;
    CHECK_MSG(!pci_dma_write(&a->dev, 0x1000, &v, 4), "DMA write without bus master accepted");
    CHECK_EQ("RAM after a refused DMA write", 0, address_space_ld(machine->as, 0x1000, 4));
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    CHECK_MSG(pci_dma_write(&a->dev, 0x1000, &v, 4), "DMA write with bus master refused");
    CHECK_MSG(pci_dma_read(&a->dev, 0x1000, &r, 4), "DMA read with bus master refused");
    CHECK_EQ("DMA round trip", v, r);
    CHECK_MSG(!pci_dma_read(&a->dev, 0xfff00000u, &r, 4), "DMA read from nothing reported OK");
}

static void test_msi_capability_layout(void)
{
    setup_board();
    FakeDev *a = g_new0(FakeDev, 1);
    pci_config_set_ids(&a->dev, 0x1234, 0x5678, 1, 0xff0000);
    uint8_t pm = pci_add_capability(&a->dev, PCI_CAP_ID_PM, 0, 8);
    uint8_t msi = pci_msi_init(&a->dev, 0, 4, true);
    CHECK_MSG(pci_device_register(bus, &a->dev, FAKE_DEVFN, "msi", NULL), "register failed");
    CHECK_EQ("PM capability at 0x40", 0x40, pm);
    CHECK_EQ("MSI after PM", 0x48, msi);
    CHECK_EQ("STATUS.CAP_LIST", PCI_STATUS_CAP_LIST, cfg_rd(FAKE_DEVFN, PCI_STATUS, 2) & 0x10);
    CHECK_EQ("capability pointer -> MSI", msi, cfg_rd(FAKE_DEVFN, PCI_CAPABILITY_LIST, 1));
    CHECK_EQ("MSI id", PCI_CAP_ID_MSI, cfg_rd(FAKE_DEVFN, msi, 1));
    CHECK_EQ("MSI next -> PM", pm, cfg_rd(FAKE_DEVFN, msi + 1, 1));
    CHECK_EQ("PM next -> end", 0, cfg_rd(FAKE_DEVFN, pm + 1, 1));
    CHECK_EQ("MSI flags: 64-bit, 4 vectors capable", 0x0084, cfg_rd(FAKE_DEVFN, msi + 2, 2));
    CHECK_EQ("explicit overlapping offset refused", 0,
             pci_add_capability(&a->dev, PCI_CAP_ID_VNDR, 0x48, 4));

    CHECK_MSG(!pci_msi_notify(&a->dev, 0), "MSI sent while disabled");
    cfg_wr(FAKE_DEVFN, msi + 4, 0xfee00003u, 4);
    CHECK_EQ("MSI address bits 1:0 read 0", 0xfee00000u, cfg_rd(FAKE_DEVFN, msi + 4, 4));
    cfg_wr(FAKE_DEVFN, msi + 12, 0x4041, 2);
    cfg_wr(FAKE_DEVFN, msi + 2, 0xffff, 2);
    CHECK_EQ("MSI flags after enable (MME writable, MMC/64 read-only)", 0x00f5,
             cfg_rd(FAKE_DEVFN, msi + 2, 2));
    CHECK_MSG(pci_msi_enabled(&a->dev), "MSI not enabled");
    CHECK_MSG(!pci_msi_notify(&a->dev, 1), "MSI sent without bus mastering");
    cfg_wr(FAKE_DEVFN, PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    CHECK_MSG(pci_msi_notify(&a->dev, 1), "MSI vector 1 not sent");
    CHECK_MSG(!pci_msi_notify(&a->dev, 4), "MSI vector beyond the capable count sent");
    pci_device_reset(&a->dev);
    CHECK_MSG(!pci_msi_enabled(&a->dev), "MSI still enabled after reset");
}

static void test_parse_devfn(void)
{
    GError *err = NULL;
    CHECK_EQ("\"5\"", PCI_DEVFN(5, 0), pci_parse_devfn("5", NULL));
    CHECK_EQ("\"0x5\"", PCI_DEVFN(5, 0), pci_parse_devfn("0x5", NULL));
    CHECK_EQ("\"05.1\"", PCI_DEVFN(5, 1), pci_parse_devfn("05.1", NULL));
    CHECK_EQ("\"1f.7\"", PCI_DEVFN(31, 7), pci_parse_devfn("1f.7", NULL));
    CHECK_EQ("\"10\" is hex", PCI_DEVFN(16, 0), pci_parse_devfn("10", NULL));
    CHECK_EQ("NULL", -1, pci_parse_devfn(NULL, NULL));
    CHECK_EQ("empty", -1, pci_parse_devfn("", NULL));
    static const char *const bad[] = { "20", "5.8", "x", "5.", "5.1x", "-1", "3:1", NULL };
    for (int i = 0; bad[i]; i++) {
        err = NULL;
        int r = pci_parse_devfn(bad[i], &err);
        CHECK_MSG(r < -1, "\"%s\" parsed as %d", bad[i], r);
        CHECK_MSG(err && strstr(err->message, bad[i]), "error for \"%s\" does not name it",
                  bad[i]);
        g_error_free(err);
    }
}

static void test_config_access_edges(void)
{
    setup_board();
    CHECK_EQ("bus 1 reads all-ones", 0xffffffffu, pci_bus_config_read(bus, 1, 0, 0, 4));
    CHECK_EQ("width 3 refused", 0xffffffffu, pci_bus_config_read(bus, 0, 0, 0, 3));
    pci_bus_config_write(bus, 0, 0, 0xfe, 0xffffffffu, 4);   /* runs off the end */
    CHECK_EQ("byte read at 0xff", 0, pci_bus_config_read(bus, 0, 0, 0xff, 1));
    CHECK_EQ("absent devfn byte read", 0xff, pci_bus_config_read(bus, 0, 0x30, 0, 1));
    /* STATUS error bits are write-1-to-clear and never set by a write. */
    pci_bus_config_write(bus, 0, 0, PCI_STATUS, 0xffff, 2);
    CHECK_EQ("STATUS after writing all-ones", 0, pci_bus_config_read(bus, 0, 0, PCI_STATUS, 2));
}

static const TestCase cases[] = {
    TEST_CASE(test_registration_sets_defaults),
    TEST_CASE(test_bar_sizing_reads_size_mask),
    TEST_CASE(test_io_bar_maps_with_command_io),
    TEST_CASE(test_io_bar_over_taken_ports_is_refused),
    TEST_CASE(test_mem_bar_maps_with_command_mem),
    TEST_CASE(test_mem_bar_over_ram_does_not_hide_ram),
    TEST_CASE(test_sizing_value_does_not_map_32bit_bar),
    TEST_CASE(test_64bit_bar_maps_above_4g),
    TEST_CASE(test_rom_bar_needs_enable_and_mem),
    TEST_CASE(test_reset_unmaps_and_clears_bars),
    TEST_CASE(test_intx_swizzle_and_pirq_routing),
    TEST_CASE(test_intx_shared_pirq_counts),
    TEST_CASE(test_intx_disable_masks_the_pin),
    TEST_CASE(test_pirq_rerouting_moves_a_high_level),
    TEST_CASE(test_dma_needs_bus_master),
    TEST_CASE(test_msi_capability_layout),
    TEST_CASE(test_parse_devfn),
    TEST_CASE(test_config_access_edges),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pci-core", cases, argc, argv);
}

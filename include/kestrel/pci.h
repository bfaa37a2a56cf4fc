/*
 * PCI: one conventional bus (bus 0) behind the i440FX host bridge.
 *
 * The core (hw/pc/pci.c) owns each function's 256-byte configuration space
 * and does what is generic: read-only vs writable bits, BAR sizing and
 * mapping (I/O BARs into the port space, memory BARs into system memory,
 * the expansion ROM BAR), the COMMAND register's IO/MEM/bus-master gates,
 * capability lists, MSI, and INTx.  A device model embeds a PCIDevice in its
 * state struct and fills it before pci_device_register().
 *
 * INTx: a function raises its pin (config 0x3D); the core swizzles
 * (slot + pin - 2) mod 4 (pin 1 = INTA) onto PIRQA..D and calls the bus's router (PIIX3,
 * whose PIRQRC registers pick the ISA IRQ).  Levels are counted per PIRQ, so
 * shared lines stay high while any function holds them.
 *
 * Config accesses reach a function only through pci_bus_config_read/write
 * (the host bridge's 0xCF8/0xCFC ports and qtest), under the big lock.
 * Absent functions read all-ones.
 */
#ifndef KESTREL_PCI_H
#define KESTREL_PCI_H

#include "kestrel/common.h"
#include "kestrel/ioport.h"
#include "kestrel/memory.h"

typedef struct Machine Machine;
typedef struct PCIBus PCIBus;
typedef struct PCIDevice PCIDevice;

/* Type 0 configuration header (PCI Local Bus Spec 3.0, §6.1). */
#define PCI_VENDOR_ID            0x00
#define PCI_DEVICE_ID            0x02
#define PCI_COMMAND              0x04
#define  PCI_COMMAND_IO           0x0001
#define  PCI_COMMAND_MEMORY       0x0002
#define  PCI_COMMAND_MASTER       0x0004
#define  PCI_COMMAND_SERR         0x0100
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS               0x06
#define  PCI_STATUS_INTERRUPT     0x0008
#define  PCI_STATUS_CAP_LIST      0x0010
#define PCI_REVISION_ID          0x08
#define PCI_CLASS_PROG           0x09
#define PCI_CLASS_DEVICE         0x0a     /* 16 bits: class << 8 | subclass */
#define PCI_CACHE_LINE_SIZE      0x0c
#define PCI_LATENCY_TIMER        0x0d
#define PCI_HEADER_TYPE          0x0e
#define  PCI_HEADER_TYPE_MULTI_FUNCTION 0x80
#define PCI_BASE_ADDRESS_0       0x10     /* BAR n at 0x10 + 4n, n = 0..5 */
#define  PCI_BASE_ADDRESS_SPACE_IO     0x01
#define  PCI_BASE_ADDRESS_MEM_TYPE_64  0x04
#define  PCI_BASE_ADDRESS_MEM_PREFETCH 0x08
#define PCI_SUBSYSTEM_VENDOR_ID  0x2c
#define PCI_SUBSYSTEM_ID         0x2e
#define PCI_ROM_ADDRESS          0x30
#define  PCI_ROM_ADDRESS_ENABLE   0x01
#define PCI_CAPABILITY_LIST      0x34
#define PCI_INTERRUPT_LINE       0x3c
#define PCI_INTERRUPT_PIN        0x3d     /* 1 = INTA .. 4 = INTD, 0 = none */

#define PCI_CAP_ID_PM            0x01
#define PCI_CAP_ID_MSI           0x05
#define PCI_CAP_ID_VNDR          0x09
#define PCI_CAP_ID_MSIX          0x11

#define PCI_CONFIG_SPACE_SIZE    256
#define PCI_NUM_BARS             6
#define PCI_ROM_SLOT             6        /* index of the ROM BAR in PCIDevice.bars */
#define PCI_BAR_IO_ADDR_MASK     0xfffffffcu      /* address bits of an I/O BAR */
#define PCI_BAR_MEM_ADDR_MASK    0xfffffff0u      /* address bits of a memory BAR */
#define PCI_BAR_UNMAPPED         UINT64_MAX

#define PCI_DEVFN(slot, fn)      ((uint8_t)(((slot) << 3) | (fn)))
#define PCI_SLOT(devfn)          (((devfn) >> 3) & 0x1f)
#define PCI_FUNC(devfn)          ((devfn) & 7)

/* QEMU's subsystem IDs on every function; SeaBIOS checks them (firmware-seabios.md §3). */
#define PCI_SUBVENDOR_DEFAULT    0x1af4
#define PCI_SUBDEVICE_DEFAULT    0x1100

typedef enum {
    PCI_BAR_NONE = 0,
    PCI_BAR_IO,
    PCI_BAR_MEM32,
    PCI_BAR_MEM64,
} PCIBarType;

typedef struct PCIBar {
    PCIBarType type;
    bool prefetch;
    uint64_t size;                 /* power of two; 0 = BAR not implemented */
    /* I/O BAR */
    const IoPortOps *io_ops;
    void *io_opaque;
    IoPortRange *io_range;         /* claimed while mapped */
    /* memory or ROM BAR */
    MemoryRegion *mr;
    uint64_t addr;                 /* where it is mapped now, or PCI_BAR_UNMAPPED */
} PCIBar;

struct PCIDevice {
    uint8_t config[PCI_CONFIG_SPACE_SIZE];
    uint8_t wmask[PCI_CONFIG_SPACE_SIZE];    /* bits a config write may change */
    uint8_t w1cmask[PCI_CONFIG_SPACE_SIZE];  /* write-1-to-clear bits (STATUS) */
    PCIBar bars[PCI_NUM_BARS + 1];           /* [PCI_ROM_SLOT] = expansion ROM */

    /*
     * Optional device hooks.  config_read replaces the generic read for
     * registers the device computes on the fly; config_write runs after the
     * generic write has stored the value (old values are passed for PAM &
     * co.).  Either may be NULL.
     */
    uint32_t (*config_read)(PCIDevice *d, uint32_t addr, unsigned len);
    void (*config_write)(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len);

    /* Core-private after registration. */
    PCIBus *bus;
    uint8_t devfn;
    const char *name;
    bool intx_level;               /* what this function drives on its pin */
    uint8_t msi_cap;               /* offset of the MSI capability, 0 = none */
};

/* The machine's root bus (created by the i440FX host bridge); NULL before. */
PCIBus *pci_bus_new(Machine *m, MemoryRegion *address_space_mem);
PCIBus *machine_pci_bus(Machine *m);

/*
 * Host-bridge side: configuration cycles (bus number, devfn, register,
 * width 1/2/4, naturally aligned).  Unknown bus or function: reads ~0.
 */
uint32_t pci_bus_config_read(PCIBus *bus, uint8_t bus_nr, uint8_t devfn, uint8_t reg,
                             unsigned len);
void pci_bus_config_write(PCIBus *bus, uint8_t bus_nr, uint8_t devfn, uint8_t reg,
                          uint32_t val, unsigned len);
PCIDevice *pci_bus_find_device(PCIBus *bus, uint8_t devfn);
void pci_bus_foreach(PCIBus *bus, void (*fn)(PCIDevice *d, void *opaque), void *opaque);

/*
 * INTx router: PIIX3 installs this; pirq 0..3 = PIRQA..D, level = whether
 * any function on that PIRQ asserts.
 */
void pci_bus_set_irq_router(PCIBus *bus, void (*route)(void *opaque, int pirq, int level),
                            void *opaque);
int pci_bus_pirq_level(PCIBus *bus, int pirq);

/*
 * Device side.  Before registering, a device sets its IDs and BARs with the
 * helpers below.  devfn < 0 picks the first free slot from 1 up, function 0.
 * Registration sets subsystem IDs 1AF4:1100, the default writable masks
 * (COMMAND, latency, INTERRUPT_LINE, BARs) and fails if devfn is taken.
 */
void pci_config_set_ids(PCIDevice *d, uint16_t vendor, uint16_t device, uint8_t revision,
                        uint32_t class_code /* class << 16 | subclass << 8 | prog-if */);
void pci_config_set_interrupt_pin(PCIDevice *d, uint8_t pin /* 1..4, 0 none */);
void pci_register_bar_io(PCIDevice *d, int bar, uint32_t size, const IoPortOps *ops,
                         void *opaque);
/* type PCI_BAR_MEM32 or PCI_BAR_MEM64 (uses bar and bar+1); size = region size. */
void pci_register_bar_mem(PCIDevice *d, int bar, PCIBarType type, bool prefetch,
                          MemoryRegion *mr);
void pci_register_rom(PCIDevice *d, MemoryRegion *rom);
bool pci_device_register(PCIBus *bus, PCIDevice *d, int devfn, const char *name,
                         GError **errp);
/*
 * Parse a "-device ...,addr=" value: "5", "0x5", "05.1" (slot[.fn]); -1 for
 * NULL/empty.  Errors name the value.
 */
int pci_parse_devfn(const char *addr, GError **errp);

/* Where a BAR is mapped now (bus address), or PCI_BAR_UNMAPPED. */
uint64_t pci_bar_address(const PCIDevice *d, int bar);

/* Generic reset: COMMAND/STATUS cleared, BARs unmapped, INTx lowered, MSI off. */
void pci_device_reset(PCIDevice *d);

/*
 * Direct boot (no firmware): give every unassigned BAR on the bus an
 * address and turn decoding on, as SeaBIOS would (hw/pc/pci_bar_assign.c).
 * Memory BARs go below 0xFEC00000 and not below low_ram_end.
 */
void pci_bus_assign_unassigned_bars(PCIBus *bus, uint64_t low_ram_end);

/* Config-space offset of BAR bar (PCI_ROM_SLOT: the expansion ROM BAR). */
static inline unsigned pci_bar_reg(int bar)
{
    return bar == PCI_ROM_SLOT ? PCI_ROM_ADDRESS : PCI_BASE_ADDRESS_0 + 4u * (unsigned)bar;
}

/* Config-space helpers (little-endian). */
static inline uint16_t pci_get_word(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pci_get_long(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void pci_set_word(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void pci_set_long(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/*
 * Add a capability of size bytes at offset (0 = first free dword-aligned
 * space from 0x40) and link it into the list.  Returns its offset, 0 if no
 * room.
 */
uint8_t pci_add_capability(PCIDevice *d, uint8_t cap_id, uint8_t offset, uint8_t size);

/* INTx: drive the function's interrupt pin (gated by COMMAND.INTX_DISABLE). */
void pci_set_irq(PCIDevice *d, int level);

/* MSI (PCI 3.0 §6.8.1): capability with 1..32 vectors, 64-bit address if msi64. */
uint8_t pci_msi_init(PCIDevice *d, uint8_t offset, unsigned nr_vectors, bool msi64);
bool pci_msi_enabled(const PCIDevice *d);
/* Send vector's message (data | vector) if MSI is enabled; returns false if not. */
bool pci_msi_notify(PCIDevice *d, unsigned vector);

/*
 * Bus-master DMA.  Refused (false, logged under guest_errors) when
 * COMMAND.MASTER is clear; otherwise goes through the machine's address
 * space, which clamps to what is mapped.  Writes notify the software CPU.
 */
bool pci_dma_read(PCIDevice *d, hwaddr addr, void *buf, uint64_t len);
bool pci_dma_write(PCIDevice *d, hwaddr addr, const void *buf, uint64_t len);

#endif

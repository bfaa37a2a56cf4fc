/*
 * Intel 82441FX PCI and Memory Controller (i440FX host bridge,
 * "i440FX-pcihost"), function 00:00.0, 8086:1237 revision 02, class 060000,
 * as QEMU's -M pc presents it (pc-platform.md §4, firmware-seabios.md §3).
 *
 * It owns the PCI bus (m->pci_bus) and PCI configuration mechanism #1
 * (82441FX datasheet 290549, "PCI Configuration Registers"; PCI 3.0
 * §3.2.2.3.2): CONFADD at 0xCF8 takes 32-bit accesses only, CONFDATA at
 * 0xCFC-0xCFF takes 8/16/32-bit accesses at 0xCFC + (register & 3).  The
 * PIIX3 Reset Control Register 0xCF9 lies inside CONFADD; byte accesses
 * there are handed to hw/pc/piix3.c (see hw/pc/piix3.h for why).
 *
 * PAM (Programmable Attribute Map, 0x59-0x5F) decides, per 16 KiB segment
 * of 0xC0000-0xEFFFF and for the 64 KiB 0xF0000-0xFFFFF, whether the CPU
 * sees shadow RAM or what lies behind it (the BIOS flash alias for
 * 0xE0000-0xFFFFF, the option-ROM area for 0xC0000-0xDFFFF).  We follow
 * QEMU's model, which SeaBIOS is tested against: mode 0 (RE=WE=0) = ROM/PCI,
 * mode 1 (RE only) = RAM with writes dropped, modes 2 and 3 = RAM
 * read-write.  (The datasheet's mode 2, "writes to RAM, reads from ROM",
 * is not modelled; SeaBIOS never uses it.)
 *
 * Each segment is an alias onto the same bytes of RAM, above the flash
 * alias in priority, enabled in modes 1-3 and read-only in mode 1.  The
 * option-ROM area below is a 128 KiB zero-filled ROM ("pc.rom", like QEMU's)
 * so that mode 0 really hides the RAM there.
 *
 * SMRAM (0x72): stored (C_BASE_SEG reads 010b) but not modelled: the board
 * has no SMM, and the PIIX4 PM function tells SeaBIOS so (APMC_EN).
 * Config 0x57 holds the RAM size in 8 MiB units (a QEMU extension read by
 * old coreboot).  Not modelled: DRAM controller registers, the PCI arbiter,
 * error reporting.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/pc_bios.h"
#include "kestrel/pci.h"
#include "hw/pc/piix3.h"

/* ---- Register table ---- */

#define I440FX_VENDOR            0x8086
#define I440FX_DEVICE            0x1237
#define I440FX_REVISION          0x02
#define I440FX_CLASS             0x060000     /* bridge, host */

/* I/O ports */
#define I440FX_CONFADD           0xcf8        /* 32-bit only */
#define I440FX_CONFADD_SIZE      4
#define  CONFADD_CONE             0x80000000u /* configuration enable */
#define  CONFADD_BUS_SHIFT        16
#define  CONFADD_DEVFN_SHIFT      8
#define  CONFADD_REG_MASK         0xfcu
#define  CONFADD_WRITABLE         0x80fffffcu /* bits 30:24 and 1:0 reserved */
#define I440FX_RCR_OFFSET        1            /* 0xCF9 inside CONFADD: PIIX3's */
#define I440FX_CONFDATA          0xcfc
#define I440FX_CONFDATA_SIZE     4

/* Configuration registers */
#define I440FX_RAMSIZE           0x57         /* QEMU: RAM size / 8 MiB, max 255 */
#define I440FX_PAM0              0x59         /* high nibble: 0xF0000-0xFFFFF */
#define I440FX_PAM_COUNT         7            /* PAM0-PAM6 */
#define  PAM_RE                   0x1         /* per nibble: reads go to DRAM */
#define  PAM_WE                   0x2         /* per nibble: writes go to DRAM */
#define  PAM0_WRITABLE            0x30
#define  PAM_WRITABLE             0x33
#define I440FX_SMRAM             0x72
#define  SMRAM_C_BASE_SEG         0x02        /* 010b: SMRAM at 0xA0000 */
#define  SMRAM_G_SMRAME           0x08
#define  SMRAM_D_LCK              0x10
#define  SMRAM_D_CLS              0x20
#define  SMRAM_D_OPEN             0x40
#define  SMRAM_WRITABLE           0x78

/* PAM segments: 0xC0000-0xEFFFF in 16 KiB steps (PAM1-6), then 0xF0000-0xFFFFF (PAM0). */
#define PAM_SEG_BASE             0xc0000u
#define PAM_SEG_SIZE             0x4000u
#define PAM_NUM_SMALL            12
#define PAM_BIOS_BASE            0xf0000u
#define PAM_BIOS_SIZE            0x10000u
#define PAM_NUM_SEGS             (PAM_NUM_SMALL + 1)

#define PC_ROM_BASE              0xc0000u     /* option-ROM area below the BIOS alias */
#define PC_ROM_SIZE              0x20000u

/* ---- State ---- */

typedef struct I440FXState {
    PCIDevice dev;                       /* config space: PAM, SMRAM, 0x57 */
    uint32_t confadd;                    /* CONFADD, 0xCF8 */
    uint8_t pam_mode[PAM_NUM_SEGS];      /* mode now applied to each segment */

    Machine *machine;
    PCIBus *bus;
    MemoryRegion *pam[PAM_NUM_SEGS];
    MemoryRegion *pc_rom;
    IoPortRange *confadd_range, *confdata_range;
} I440FXState;

/* ---- Behaviour ---- */

/* The PAM nibble (RE|WE) that controls segment seg. */
static unsigned pam_seg_attr(const I440FXState *s, int seg)
{
    if (seg == PAM_NUM_SMALL)
        return (s->dev.config[I440FX_PAM0] >> 4) & 3;
    uint8_t reg = s->dev.config[I440FX_PAM0 + 1 + seg / 2];
    return (seg & 1 ? reg >> 4 : reg) & 3;
}

static void i440fx_pam_update(I440FXState *s)
{
    for (int seg = 0; seg < PAM_NUM_SEGS; seg++) {
        unsigned mode = pam_seg_attr(s, seg);
        if (mode == s->pam_mode[seg])
            continue;
        s->pam_mode[seg] = (uint8_t)mode;
        /* QEMU's model: 0 = ROM/PCI, 1 = RAM read-only, 2/3 = RAM read-write. */
        memory_region_set_readonly(s->pam[seg], mode == PAM_RE);
        memory_region_set_enabled(s->pam[seg], mode != 0);
    }
}

static void i440fx_config_write(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len)
{
    I440FXState *s = (I440FXState *)d;      /* dev is the first member */

    if (addr < I440FX_PAM0 + I440FX_PAM_COUNT && addr + len > I440FX_PAM0)
        i440fx_pam_update(s);
    if (addr <= I440FX_SMRAM && addr + len > I440FX_SMRAM &&
        (d->config[I440FX_SMRAM] & (SMRAM_G_SMRAME | SMRAM_D_OPEN)))
        LOG(LOG_UNIMP, "i440fx: SMRAM 0x%02x: SMRAM is not modelled (no SMM)\n",
            d->config[I440FX_SMRAM]);
}

/* CONFADD: only 32-bit accesses at 0xCF8 (QEMU; Linux and SeaBIOS use outl/inl). */
static uint32_t confadd_read(void *opaque, uint16_t offset, unsigned size)
{
    I440FXState *s = opaque;
    uint8_t v;

    if (offset == 0 && size == 4)
        return s->confadd;
    if (offset == I440FX_RCR_OFFSET && size == 1)
        return piix3_rcr_read(&v) ? v : 0xff;
    LOG(LOG_GUEST_ERROR, "i440fx: %u-byte read at port 0x%x ignored (CONFADD is 32-bit)\n",
        size, I440FX_CONFADD + offset);
    return 0xffffffffu;
}

static void confadd_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    I440FXState *s = opaque;

    if (offset == 0 && size == 4) {
        s->confadd = value & CONFADD_WRITABLE;
        return;
    }
    if (offset == I440FX_RCR_OFFSET && size == 1) {
        piix3_rcr_write((uint8_t)value);
        return;
    }
    LOG(LOG_GUEST_ERROR, "i440fx: %u-byte write 0x%x at port 0x%x ignored (CONFADD is 32-bit)\n",
        size, value, I440FX_CONFADD + offset);
}

static bool confdata_target(const I440FXState *s, uint8_t *bus, uint8_t *devfn, uint8_t *reg)
{
    if (!(s->confadd & CONFADD_CONE))
        return false;
    *bus = (uint8_t)(s->confadd >> CONFADD_BUS_SHIFT);
    *devfn = (uint8_t)(s->confadd >> CONFADD_DEVFN_SHIFT);
    *reg = (uint8_t)(s->confadd & CONFADD_REG_MASK);
    return true;
}

static uint32_t confdata_read(void *opaque, uint16_t offset, unsigned size)
{
    I440FXState *s = opaque;
    uint8_t bus, devfn, reg;

    if (!confdata_target(s, &bus, &devfn, &reg))
        return 0xffffffffu;
    /* Unaligned (e.g. a word at 0xCFD): one byte at a time, so functions see aligned cycles. */
    if (offset & (size - 1)) {
        uint32_t v = 0;
        for (unsigned i = 0; i < size; i++)
            v |= pci_bus_config_read(s->bus, bus, devfn, (uint8_t)(reg + offset + i), 1) << (8 * i);
        return v;
    }
    return pci_bus_config_read(s->bus, bus, devfn, (uint8_t)(reg + offset), size);
}

static void confdata_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    I440FXState *s = opaque;
    uint8_t bus, devfn, reg;

    if (!confdata_target(s, &bus, &devfn, &reg))
        return;
    if (offset & (size - 1)) {
        for (unsigned i = 0; i < size; i++)
            pci_bus_config_write(s->bus, bus, devfn, (uint8_t)(reg + offset + i),
                                 (value >> (8 * i)) & 0xff, 1);
        return;
    }
    pci_bus_config_write(s->bus, bus, devfn, (uint8_t)(reg + offset), value, size);
}

static const IoPortOps confadd_ops = {
    .read = confadd_read,
    .write = confadd_write,
    .max_access = 4,
};

static const IoPortOps confdata_ops = {
    .read = confdata_read,
    .write = confdata_write,
    .max_access = 4,
};

static void i440fx_reset(void *opaque)
{
    I440FXState *s = opaque;
    uint8_t *c = s->dev.config;

    pci_device_reset(&s->dev);
    s->confadd = 0;
    c[I440FX_SMRAM] = SMRAM_C_BASE_SEG;
    /*
     * PAM keeps its value across a system reset when firmware runs: QEMU's
     * i440FX has no reset for it, and SeaBIOS relies on that - after a
     * reboot it finds itself already shadowed and takes its resume path
     * (firmware-seabios.md §2).  The power-on value (all ROM) is set in
     * create.  Without firmware (-kernel), the guest expects RAM throughout
     * 0xC0000-0xFFFFF, as if a BIOS had shadowed itself: all read-write.
     */
    if (!s->machine->firmware_boot) {
        c[I440FX_PAM0] = PAM0_WRITABLE;
        for (int i = 1; i < I440FX_PAM_COUNT; i++)
            c[I440FX_PAM0 + i] = PAM_WRITABLE;
    }
    i440fx_pam_update(s);
}

/* ---- Registration ---- */

static void *i440fx_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (m->pci_bus) {
        kestrel_set_error(errp, "i440FX-pcihost: the machine already has a PCI host bridge");
        return NULL;
    }
    I440FXState *s = g_new0(I440FXState, 1);
    s->machine = m;
    s->bus = pci_bus_new(m, m->system_memory);

    s->confadd_range = ioport_register(I440FX_CONFADD, I440FX_CONFADD_SIZE, &confadd_ops, s,
                                       "pci-conf-idx", errp);
    if (!s->confadd_range)
        goto fail;
    s->confdata_range = ioport_register(I440FX_CONFDATA, I440FX_CONFDATA_SIZE, &confdata_ops,
                                        s, "pci-conf-data", errp);
    if (!s->confdata_range)
        goto fail_ports;

    PCIDevice *d = &s->dev;
    pci_config_set_ids(d, I440FX_VENDOR, I440FX_DEVICE, I440FX_REVISION, I440FX_CLASS);
    uint64_t units = m->cfg ? m->cfg->ram_size / (8u << 20) : 0;
    d->config[I440FX_RAMSIZE] = (uint8_t)(units > 255 ? 255 : units);
    d->wmask[I440FX_PAM0] = PAM0_WRITABLE;
    for (int i = 1; i < I440FX_PAM_COUNT; i++)
        d->wmask[I440FX_PAM0 + i] = PAM_WRITABLE;
    d->wmask[I440FX_SMRAM] = SMRAM_WRITABLE;
    d->config[I440FX_SMRAM] = SMRAM_C_BASE_SEG;
    d->config_write = i440fx_config_write;
    if (!pci_device_register(s->bus, d, PCI_DEVFN(0, 0), "i440FX", errp))
        goto fail_data;

    /* What PAM mode 0 shows below the BIOS alias: an empty, read-only option-ROM area. */
    s->pc_rom = memory_region_new_rom("pc.rom", PC_ROM_SIZE, errp);
    if (!s->pc_rom)
        goto fail_data;
    memory_region_add_subregion(m->system_memory, PC_ROM_BASE, s->pc_rom, PC_ISA_ROM_PRIORITY);

    for (int seg = 0; seg < PAM_NUM_SEGS; seg++) {
        hwaddr base = seg < PAM_NUM_SMALL ? PAM_SEG_BASE + (hwaddr)seg * PAM_SEG_SIZE
                                          : PAM_BIOS_BASE;
        uint64_t size = seg < PAM_NUM_SMALL ? PAM_SEG_SIZE : PAM_BIOS_SIZE;
        char *name = g_strdup_printf("pam-ram-%05" G_GINT64_MODIFIER "x", base);
        s->pam[seg] = memory_region_new_alias(name, m->ram, base, size);
        g_free(name);
        /* Power-on: mode 0 everywhere, the segment shows what lies below. */
        memory_region_set_enabled(s->pam[seg], false);
        memory_region_add_subregion(m->system_memory, base, s->pam[seg], PC_PAM_PRIORITY);
    }

    /* Loaders run before the first system reset: apply the direct-boot PAM now. */
    i440fx_reset(s);
    return s;

fail_data:
    ioport_unregister(s->confdata_range);
fail_ports:
    ioport_unregister(s->confadd_range);
fail:
    m->pci_bus = NULL;          /* pci_bus_new made it the root bus */
    g_free(s);
    return NULL;
}

static const PropDef i440fx_props[] = {
    { NULL }
};

static const DeviceType i440fx_type = {
    .name = "i440FX-pcihost",
    .desc = "Intel 82441FX PCI host bridge and memory controller (PCI bus 0, PAM)",
    .bus = "sys",
    .user_creatable = false,
    .props = i440fx_props,
    .create = i440fx_create,
    .reset = i440fx_reset,
};

DEVICE_TYPE_REGISTER(i440fx_type)

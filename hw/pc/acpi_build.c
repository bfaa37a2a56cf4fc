/*
 * ACPI tables for the PC board, handed to SeaBIOS through fw_cfg with QEMU's
 * table-loader script, or written straight into guest memory for a
 * firmware-less boot.  One builder serves both.
 *
 * Follows the ACPI specification 6.x (tables at their ACPI 2.0/3.0 revisions
 * so every OS since 2000 reads them): §5.2.5 RSDP (revision 2: RSDT and
 * XSDT), §5.2.6 table header, §5.2.7 RSDT, §5.2.8 XSDT, §5.2.9 FADT
 * (revision 3, 244 bytes), §5.2.10 FACS, §5.2.11.1 DSDT, §5.2.12 MADT;
 * the IA-PC HPET specification 1.0a §3.2.4 for the HPET table.  Register
 * blocks are the PIIX4 PM as QEMU models it and SeaBIOS programs it with a
 * table-loader present (pc-platform.md §7, firmware-seabios.md §6): PM base
 * 0x600, SCI IRQ 9, APM command port 0xB2, GPE0 at 0xAFE0.  The DSDT is
 * hw/pc/dsdt.asl, compiled by iasl at build time; the builder patches the
 * few per-machine integers it declares.
 *
 * Table-loader script (firmware-seabios.md §6): ALLOCATE etc/acpi/rsdp in
 * the F segment and etc/acpi/tables in high memory, ADD_POINTER for every
 * table-to-table pointer (the field holds the target's offset inside its
 * file and the firmware adds the file's address), ADD_CHECKSUM for every
 * table after its pointers are final.
 *
 * Layout of etc/acpi/tables: FACS first (it needs 64-byte alignment, the
 * file is allocated 64-aligned), then DSDT, FADT, MADT ("APIC"), HPET, RSDT,
 * XSDT, each 8-byte aligned.
 *
 * Not built: SSDT (no CPU hotplug, no PCI hotplug), SRAT/SLIT (no NUMA),
 * MCFG (no PCIe), processor objects (CPUs come from the MADT), S3/S4.
 */
#include "kestrel/common.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"

#include "hw/pc/fw_tables.h"
#include "build/hw/pc/dsdt_aml.h"

#include <string.h>

/* ---- Table layouts (ACPI 6.x chapter 5) ---- */

#define ACPI_OEM_ID             "KESTRL"        /* 6 bytes */
#define ACPI_OEM_TABLE_ID       "KESTREL "      /* 8 bytes */
#define ACPI_OEM_REVISION       1
#define ACPI_CREATOR_ID         "KSTL"
#define ACPI_CREATOR_REVISION   1

/* §5.2.6 System Description Table Header */
#define HDR_SIGNATURE           0
#define HDR_LENGTH              4
#define HDR_REVISION            8
#define HDR_CHECKSUM            9
#define HDR_OEM_ID              10
#define HDR_OEM_TABLE_ID        16
#define HDR_OEM_REVISION        24
#define HDR_CREATOR_ID          28
#define HDR_CREATOR_REVISION    32
#define HDR_SIZE                36

/* §5.2.5.3 RSDP */
#define RSDP_SIGNATURE          "RSD PTR "
#define RSDP_CHECKSUM           8       /* over the first 20 bytes */
#define RSDP_OEM_ID             9
#define RSDP_REVISION           15      /* 2 = ACPI 2.0+ */
#define RSDP_RSDT_ADDRESS       16
#define RSDP_LENGTH             20
#define RSDP_XSDT_ADDRESS       24
#define RSDP_EXT_CHECKSUM       32      /* over all 36 bytes */
#define RSDP_V1_SIZE            20
#define RSDP_SIZE               36

/* §5.2.9 FADT, revision 3 */
#define FADT_REVISION           3
#define FADT_FIRMWARE_CTRL      36
#define FADT_DSDT               40
#define FADT_PREFERRED_PM_PROFILE 45
#define FADT_SCI_INT            46
#define FADT_SMI_CMD            48
#define FADT_ACPI_ENABLE        52
#define FADT_ACPI_DISABLE       53
#define FADT_PM1A_EVT_BLK       56
#define FADT_PM1A_CNT_BLK       64
#define FADT_PM_TMR_BLK         76
#define FADT_GPE0_BLK           80
#define FADT_PM1_EVT_LEN        88
#define FADT_PM1_CNT_LEN        89
#define FADT_PM_TMR_LEN         91
#define FADT_GPE0_BLK_LEN       92
#define FADT_P_LVL2_LAT         96
#define FADT_P_LVL3_LAT         98
#define FADT_CENTURY            108
#define FADT_IAPC_BOOT_ARCH     109
#define FADT_FLAGS              112
#define FADT_RESET_REG          116     /* GAS */
#define FADT_RESET_VALUE        128
#define FADT_X_FIRMWARE_CTRL    132
#define FADT_X_DSDT             140
#define FADT_X_PM1A_EVT_BLK     148
#define FADT_X_PM1A_CNT_BLK     172
#define FADT_X_PM_TMR_BLK       208
#define FADT_X_GPE0_BLK         220
#define FADT_SIZE               244

/* FADT Flags (Table 5.10) */
#define FADT_F_WBINVD           (1u << 0)
#define FADT_F_PROC_C1          (1u << 2)
#define FADT_F_SLP_BUTTON       (1u << 5)   /* sleep button is not a fixed feature */
#define FADT_F_RTC_S4           (1u << 7)
#define FADT_F_RESET_REG_SUP    (1u << 10)
#define FADT_F_USE_PLATFORM_CLOCK (1u << 15)

/* IA-PC boot architecture flags (Table 5.11) */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042          (1u << 1)

/* P_LVLx latencies above 100 / 1000 us mean "C2 / C3 not supported". */
#define FADT_C2_UNSUPPORTED     0x0fff
#define FADT_C3_UNSUPPORTED     0x0fff

/* §5.2.3.2 Generic Address Structure (12 bytes) */
#define GAS_SPACE_MEMORY        0
#define GAS_SPACE_IO            1
#define GAS_ACCESS_BYTE         1
#define GAS_SIZE                12

/* §5.2.10 FACS */
#define FACS_SIGNATURE          0
#define FACS_LENGTH             4
#define FACS_VERSION            32
#define FACS_SIZE               64
#define FACS_ALIGN              64

/* §5.2.12 MADT */
#define MADT_REVISION           1
#define MADT_LAPIC_ADDRESS      36
#define MADT_FLAGS              40
#define MADT_PCAT_COMPAT        (1u << 0)
#define MADT_TYPE_LAPIC         0       /* 8 bytes */
#define MADT_TYPE_IOAPIC        1       /* 12 bytes */
#define MADT_TYPE_ISO           2       /* 10 bytes: interrupt source override */
#define MADT_TYPE_LAPIC_NMI     4       /* 6 bytes */
#define MADT_LAPIC_ENABLED      (1u << 0)
/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2 */
#define MPS_INTI_ACTIVE_HIGH    0x1
#define MPS_INTI_LEVEL          (0x3 << 2)
#define MADT_NMI_ALL_PROCESSORS 0xff

/* IA-PC HPET specification §3.2.4 */
#define HPET_TABLE_EVENT_TIMER_ID 36
#define HPET_TABLE_BASE_ADDRESS 40      /* GAS */
#define HPET_TABLE_NUMBER       52
#define HPET_TABLE_MIN_TICK     53
#define HPET_TABLE_PAGE_PROT    55
#define HPET_TABLE_SIZE         56

/* ---- The board's values (pc-platform.md §2, §7, §11) ---- */

#define PC_LAPIC_BASE           0xFEE00000u
#define PC_IOAPIC_BASE          0xFEC00000u
#define PC_IOAPIC_ID            0       /* as QEMU's pc and SeaBIOS's own tables */
#define PC_HPET_BASE            0xFED00000u
#define PC_HPET_ID              0x8086A201u  /* QEMU's HPET: 3 timers, 64-bit, legacy */
#define PC_HPET_MIN_TICK        0x80
#define PC_SCI_IRQ              9
#define PC_SMI_CMD              0xB2
#define PC_ACPI_ENABLE          0xF1
#define PC_ACPI_DISABLE         0xF0
#define PC_PM_BASE              0x600
#define PC_PM1A_EVT_BLK         (PC_PM_BASE + 0)
#define PC_PM1A_CNT_BLK         (PC_PM_BASE + 4)
#define PC_PM_TMR_BLK           (PC_PM_BASE + 8)
#define PC_PM1_EVT_LEN          4
#define PC_PM1_CNT_LEN          2
#define PC_PM_TMR_LEN           4
#define PC_GPE0_BLK             0xAFE0
#define PC_GPE0_BLK_LEN         4
#define PC_RESET_PORT           0xCF9
#define PC_RESET_VALUE          0x06    /* PIIX3 RCR: SYS_RST | RST_CPU */
#define PC_CMOS_CENTURY         0x32
#define PC_PCI_HOLE_END         0xFEC00000ull  /* the IOAPIC and up are not PCI space */

static const uint8_t pc_level_irqs[] = { 5, 9, 10, 11 };  /* PCI links and the SCI */

/* ---- Table-loader script ---- */

static void loader_name(uint8_t *cmd, size_t off, const char *name)
{
    g_strlcpy((char *)cmd + off, name, LOADER_NAME_LEN);
}

static void loader_allocate(GByteArray *l, const char *file, uint32_t align, uint8_t zone)
{
    uint8_t c[LOADER_CMD_SIZE] = { 0 };
    st32_le(c, LOADER_CMD_ALLOCATE);
    loader_name(c, 4, file);
    st32_le(c + 60, align);
    c[64] = zone;
    g_byte_array_append(l, c, sizeof(c));
}

static void loader_add_pointer(GByteArray *l, const char *dest, const char *src,
                               uint32_t offset, uint8_t size)
{
    uint8_t c[LOADER_CMD_SIZE] = { 0 };
    st32_le(c, LOADER_CMD_ADD_POINTER);
    loader_name(c, 4, dest);
    loader_name(c, 60, src);
    st32_le(c + 116, offset);
    c[120] = size;
    g_byte_array_append(l, c, sizeof(c));
}

static void loader_add_checksum(GByteArray *l, const char *file, uint32_t result,
                                uint32_t start, uint32_t length)
{
    uint8_t c[LOADER_CMD_SIZE] = { 0 };
    st32_le(c, LOADER_CMD_ADD_CHECKSUM);
    loader_name(c, 4, file);
    st32_le(c + 60, result);
    st32_le(c + 64, start);
    st32_le(c + 68, length);
    g_byte_array_append(l, c, sizeof(c));
}

/* ---- Builder helpers ---- */

static void acpi_align(GByteArray *b, unsigned align)
{
    static const uint8_t zero[64];
    while (b->len % align)
        g_byte_array_append(b, zero, 1);
}

/* Append a zeroed table of len bytes with its header filled; returns its offset. */
static uint32_t acpi_table_start(GByteArray *b, const char *sig, uint32_t len, uint8_t rev)
{
    acpi_align(b, 8);
    uint32_t off = b->len;
    g_byte_array_set_size(b, off + len);
    uint8_t *t = b->data + off;
    memset(t, 0, len);
    memcpy(t + HDR_SIGNATURE, sig, 4);
    st32_le(t + HDR_LENGTH, len);
    t[HDR_REVISION] = rev;
    memcpy(t + HDR_OEM_ID, ACPI_OEM_ID, 6);
    memcpy(t + HDR_OEM_TABLE_ID, ACPI_OEM_TABLE_ID, 8);
    st32_le(t + HDR_OEM_REVISION, ACPI_OEM_REVISION);
    memcpy(t + HDR_CREATOR_ID, ACPI_CREATOR_ID, 4);
    st32_le(t + HDR_CREATOR_REVISION, ACPI_CREATOR_REVISION);
    return off;
}

static void acpi_gas(uint8_t *p, uint8_t space, uint8_t bit_width, uint8_t access,
                     uint64_t addr)
{
    p[0] = space;
    p[1] = bit_width;
    p[2] = 0;
    p[3] = access;
    st64_le(p + 4, addr);
}

/* A pointer field inside etc/acpi/tables to another table in the same file. */
static void acpi_link(AcpiTables *t, uint32_t field, uint8_t size, uint32_t target)
{
    if (size == 4)
        st32_le(t->tables->data + field, target);
    else
        st64_le(t->tables->data + field, target);
    loader_add_pointer(t->loader, ACPI_FILE_TABLES, ACPI_FILE_TABLES, field, size);
}

static void acpi_checksum(AcpiTables *t, uint32_t table)
{
    uint32_t len = ld32_le(t->tables->data + table + HDR_LENGTH);
    loader_add_checksum(t->loader, ACPI_FILE_TABLES, table + HDR_CHECKSUM, table, len);
}

/*
 * Patch "Name (NAME, const)" in the AML: NameOp 0x08, the 4-char name, then
 * the constant with the opcode given (0x0C DWordPrefix + 4 bytes, or the
 * one-byte ZeroOp/OneOp).  Exactly one match is required: the DSDT source
 * promises these names (hw/pc/dsdt.asl header).
 */
static void acpi_dsdt_patch(GByteArray *d, const char *name, const uint8_t *pat_tail,
                            size_t tail_len, const uint8_t *value, size_t value_len)
{
    uint8_t pat[16];
    size_t plen = 1 + 4 + tail_len;
    long found = -1;
    int hits = 0;

    pat[0] = 0x08;
    memcpy(pat + 1, name, 4);
    memcpy(pat + 5, pat_tail, tail_len);
    for (size_t i = 0; i + plen <= d->len; i++) {
        if (memcmp(d->data + i, pat, plen) == 0) {
            found = (long)i;
            hits++;
        }
    }
    if (hits != 1) {
        /* A build problem, not a user one: dsdt.asl lost or duplicated the name. */
        error_report("acpi: DSDT name %.4s found %d times; not patched", name, hits);
        return;
    }
    /* DWord: value follows the 0x0C prefix; One/Zero: the opcode byte is the value. */
    size_t at = (size_t)found + 5 + (tail_len == 1 && pat_tail[0] == 0x0C ? 1 : 0);
    memcpy(d->data + at, value, value_len);
}

static void acpi_dsdt_patch_dword(GByteArray *d, const char *name, uint32_t v)
{
    static const uint8_t dword_prefix = 0x0C;
    uint8_t b[4];
    st32_le(b, v);
    acpi_dsdt_patch(d, name, &dword_prefix, 1, b, 4);
}

static void acpi_dsdt_patch_bool(GByteArray *d, const char *name, bool v)
{
    /* Compiled as OneOp (0x01); ZeroOp (0x00) has the same size. */
    static const uint8_t one_op = 0x01;
    uint8_t b = v ? 0x01 : 0x00;
    acpi_dsdt_patch(d, name, &one_op, 1, &b, 1);
}

static uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--)
        s += *p++;
    return s;
}

GByteArray *acpi_build_dsdt(const AcpiBuildParams *p)
{
    GByteArray *d = g_byte_array_sized_new(sizeof(dsdt_aml));
    g_byte_array_append(d, dsdt_aml, sizeof(dsdt_aml));

    uint64_t hole = p->pci_hole_start;
    if (hole > PC_PCI_HOLE_END)
        hole = PC_PCI_HOLE_END;
    acpi_dsdt_patch_dword(d, "PHLO", (uint32_t)hole);
    acpi_dsdt_patch_bool(d, "FDEN", p->has_fdc);
    acpi_dsdt_patch_bool(d, "C1EN", p->has_com1);
    d->data[HDR_CHECKSUM] = 0;
    d->data[HDR_CHECKSUM] = (uint8_t)-acpi_sum(d->data, d->len);
    return d;
}

/* ---- The tables ---- */

static uint32_t acpi_build_facs(AcpiTables *t)
{
    acpi_align(t->tables, FACS_ALIGN);
    uint32_t off = t->tables->len;
    g_byte_array_set_size(t->tables, off + FACS_SIZE);
    uint8_t *f = t->tables->data + off;
    memset(f, 0, FACS_SIZE);
    memcpy(f + FACS_SIGNATURE, "FACS", 4);
    st32_le(f + FACS_LENGTH, FACS_SIZE);
    f[FACS_VERSION] = 1;                 /* ACPI 2.0 layout (64-bit waking vector) */
    return off;                          /* the FACS has no checksum */
}

static uint32_t acpi_build_fadt(AcpiTables *t, uint32_t facs, uint32_t dsdt)
{
    uint32_t off = acpi_table_start(t->tables, "FACP", FADT_SIZE, FADT_REVISION);
    uint8_t *f = t->tables->data + off;

    f[FADT_PREFERRED_PM_PROFILE] = 0;    /* unspecified */
    st16_le(f + FADT_SCI_INT, PC_SCI_IRQ);
    st32_le(f + FADT_SMI_CMD, PC_SMI_CMD);
    f[FADT_ACPI_ENABLE] = PC_ACPI_ENABLE;
    f[FADT_ACPI_DISABLE] = PC_ACPI_DISABLE;
    st32_le(f + FADT_PM1A_EVT_BLK, PC_PM1A_EVT_BLK);
    st32_le(f + FADT_PM1A_CNT_BLK, PC_PM1A_CNT_BLK);
    st32_le(f + FADT_PM_TMR_BLK, PC_PM_TMR_BLK);
    st32_le(f + FADT_GPE0_BLK, PC_GPE0_BLK);
    f[FADT_PM1_EVT_LEN] = PC_PM1_EVT_LEN;
    f[FADT_PM1_CNT_LEN] = PC_PM1_CNT_LEN;
    f[FADT_PM_TMR_LEN] = PC_PM_TMR_LEN;
    f[FADT_GPE0_BLK_LEN] = PC_GPE0_BLK_LEN;
    st16_le(f + FADT_P_LVL2_LAT, FADT_C2_UNSUPPORTED);
    st16_le(f + FADT_P_LVL3_LAT, FADT_C3_UNSUPPORTED);
    f[FADT_CENTURY] = PC_CMOS_CENTURY;
    st16_le(f + FADT_IAPC_BOOT_ARCH, FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042);
    st32_le(f + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON |
            FADT_F_RTC_S4 | FADT_F_RESET_REG_SUP | FADT_F_USE_PLATFORM_CLOCK);
    acpi_gas(f + FADT_RESET_REG, GAS_SPACE_IO, 8, GAS_ACCESS_BYTE, PC_RESET_PORT);
    f[FADT_RESET_VALUE] = PC_RESET_VALUE;
    /* 64-bit copies of the register blocks, identical to the 32-bit ones. */
    acpi_gas(f + FADT_X_PM1A_EVT_BLK, GAS_SPACE_IO, PC_PM1_EVT_LEN * 8, 0, PC_PM1A_EVT_BLK);
    acpi_gas(f + FADT_X_PM1A_CNT_BLK, GAS_SPACE_IO, PC_PM1_CNT_LEN * 8, 0, PC_PM1A_CNT_BLK);
    acpi_gas(f + FADT_X_PM_TMR_BLK, GAS_SPACE_IO, PC_PM_TMR_LEN * 8, 0, PC_PM_TMR_BLK);
    acpi_gas(f + FADT_X_GPE0_BLK, GAS_SPACE_IO, PC_GPE0_BLK_LEN * 8, 0, PC_GPE0_BLK);

    /*
     * FACS through the 32-bit FIRMWARE_CTRL only (X_FIRMWARE_CTRL stays 0:
     * §5.2.9 allows one of the two); the DSDT through both DSDT and X_DSDT,
     * which then agree.
     */
    acpi_link(t, off + FADT_FIRMWARE_CTRL, 4, facs);
    acpi_link(t, off + FADT_DSDT, 4, dsdt);
    acpi_link(t, off + FADT_X_DSDT, 8, dsdt);
    acpi_checksum(t, off);
    return off;
}

static uint32_t acpi_build_madt(AcpiTables *t, int ncpus)
{
    uint32_t len = HDR_SIZE + 8 + 8 * ncpus + 12 + 10 * (1 + ARRAY_LEN(pc_level_irqs)) + 6;
    uint32_t off = acpi_table_start(t->tables, "APIC", len, MADT_REVISION);
    uint8_t *m = t->tables->data + off;
    uint8_t *e = m + HDR_SIZE + 8;

    st32_le(m + MADT_LAPIC_ADDRESS, PC_LAPIC_BASE);
    st32_le(m + MADT_FLAGS, MADT_PCAT_COMPAT);     /* dual 8259s present */
    for (int i = 0; i < ncpus; i++, e += 8) {
        e[0] = MADT_TYPE_LAPIC;
        e[1] = 8;
        e[2] = (uint8_t)i;                          /* ACPI processor UID */
        e[3] = (uint8_t)i;                          /* APIC id */
        st32_le(e + 4, MADT_LAPIC_ENABLED);
    }
    e[0] = MADT_TYPE_IOAPIC;
    e[1] = 12;
    e[2] = PC_IOAPIC_ID;
    st32_le(e + 4, PC_IOAPIC_BASE);
    st32_le(e + 8, 0);                              /* GSI base */
    e += 12;
    /* ISA IRQ0 (PIT) is wired to IOAPIC pin 2 (pc-platform.md §2). */
    e[0] = MADT_TYPE_ISO;
    e[1] = 10;
    e[2] = 0;                                       /* bus: ISA */
    e[3] = 0;
    st32_le(e + 4, 2);
    st16_le(e + 8, 0);                              /* conforms to the bus */
    e += 10;
    for (size_t i = 0; i < ARRAY_LEN(pc_level_irqs); i++, e += 10) {
        e[0] = MADT_TYPE_ISO;
        e[1] = 10;
        e[2] = 0;
        e[3] = pc_level_irqs[i];
        st32_le(e + 4, pc_level_irqs[i]);
        st16_le(e + 8, MPS_INTI_ACTIVE_HIGH | MPS_INTI_LEVEL);
    }
    e[0] = MADT_TYPE_LAPIC_NMI;
    e[1] = 6;
    e[2] = MADT_NMI_ALL_PROCESSORS;
    st16_le(e + 3, 0);                              /* conforms */
    e[5] = 1;                                       /* LINT1 */
    acpi_checksum(t, off);
    return off;
}

static uint32_t acpi_build_hpet(AcpiTables *t)
{
    uint32_t off = acpi_table_start(t->tables, "HPET", HPET_TABLE_SIZE, 1);
    uint8_t *h = t->tables->data + off;

    st32_le(h + HPET_TABLE_EVENT_TIMER_ID, PC_HPET_ID);
    acpi_gas(h + HPET_TABLE_BASE_ADDRESS, GAS_SPACE_MEMORY, 64, 0, PC_HPET_BASE);
    h[HPET_TABLE_NUMBER] = 0;
    st16_le(h + HPET_TABLE_MIN_TICK, PC_HPET_MIN_TICK);
    h[HPET_TABLE_PAGE_PROT] = 0;
    acpi_checksum(t, off);
    return off;
}

/* RSDT (4-byte entries) or XSDT (8-byte entries) listing the tables given. */
static uint32_t acpi_build_sdt(AcpiTables *t, const char *sig, unsigned entry_size,
                               const uint32_t *tables, unsigned n)
{
    uint32_t off = acpi_table_start(t->tables, sig, HDR_SIZE + entry_size * n, 1);
    for (unsigned i = 0; i < n; i++)
        acpi_link(t, off + HDR_SIZE + entry_size * i, (uint8_t)entry_size, tables[i]);
    acpi_checksum(t, off);
    return off;
}

static void acpi_build_rsdp(AcpiTables *t, uint32_t rsdt, uint32_t xsdt)
{
    uint8_t r[RSDP_SIZE] = { 0 };

    memcpy(r, RSDP_SIGNATURE, 8);
    memcpy(r + RSDP_OEM_ID, ACPI_OEM_ID, 6);
    r[RSDP_REVISION] = 2;
    st32_le(r + RSDP_RSDT_ADDRESS, rsdt);
    st32_le(r + RSDP_LENGTH, RSDP_SIZE);
    st64_le(r + RSDP_XSDT_ADDRESS, xsdt);
    g_byte_array_append(t->rsdp, r, sizeof(r));
    loader_add_pointer(t->loader, ACPI_FILE_RSDP, ACPI_FILE_TABLES, RSDP_RSDT_ADDRESS, 4);
    loader_add_pointer(t->loader, ACPI_FILE_RSDP, ACPI_FILE_TABLES, RSDP_XSDT_ADDRESS, 8);
    /* The 20-byte checksum first: the extended one covers its result. */
    loader_add_checksum(t->loader, ACPI_FILE_RSDP, RSDP_CHECKSUM, 0, RSDP_V1_SIZE);
    loader_add_checksum(t->loader, ACPI_FILE_RSDP, RSDP_EXT_CHECKSUM, 0, RSDP_SIZE);
}

void acpi_build(const AcpiBuildParams *p, AcpiTables *t)
{
    int ncpus = p->ncpus > 0 ? MIN(p->ncpus, 255) : 1;

    t->tables = g_byte_array_new();
    t->rsdp = g_byte_array_new();
    t->loader = g_byte_array_new();

    loader_allocate(t->loader, ACPI_FILE_RSDP, 16, LOADER_ZONE_FSEG);
    loader_allocate(t->loader, ACPI_FILE_TABLES, FACS_ALIGN, LOADER_ZONE_HIGH);

    uint32_t facs = acpi_build_facs(t);

    acpi_align(t->tables, 8);
    uint32_t dsdt = t->tables->len;
    GByteArray *aml = acpi_build_dsdt(p);
    g_byte_array_append(t->tables, aml->data, aml->len);
    g_byte_array_free(aml, TRUE);
    acpi_checksum(t, dsdt);

    uint32_t list[3];
    list[0] = acpi_build_fadt(t, facs, dsdt);
    list[1] = acpi_build_madt(t, ncpus);
    list[2] = acpi_build_hpet(t);
    uint32_t rsdt = acpi_build_sdt(t, "RSDT", 4, list, ARRAY_LEN(list));
    uint32_t xsdt = acpi_build_sdt(t, "XSDT", 8, list, ARRAY_LEN(list));
    acpi_build_rsdp(t, rsdt, xsdt);
}

void acpi_tables_free(AcpiTables *t)
{
    if (t->tables)
        g_byte_array_free(t->tables, TRUE);
    if (t->rsdp)
        g_byte_array_free(t->rsdp, TRUE);
    if (t->loader)
        g_byte_array_free(t->loader, TRUE);
    memset(t, 0, sizeof(*t));
}

void acpi_build_params_from_machine(Machine *m, AcpiBuildParams *p)
{
    memset(p, 0, sizeof(*p));
    p->ncpus = m->smp_cpus > 0 ? m->smp_cpus : 1;
    p->pci_hole_start = m->ram_below_4g;
    /* Devices that may be absent (-nodefaults): ask the port space who answers. */
    p->has_fdc = ioport_owner(0x3f2) != NULL;
    p->has_com1 = ioport_owner(0x3f8) != NULL;
}

bool acpi_setup_fw_cfg(Machine *m, FWCfgState *s, GError **errp)
{
    AcpiBuildParams p;
    AcpiTables t;

    acpi_build_params_from_machine(m, &p);
    acpi_build(&p, &t);
    bool ok = fw_cfg_add_file(s, ACPI_FILE_TABLES, t.tables->data, t.tables->len, errp) &&
              fw_cfg_add_file(s, ACPI_FILE_RSDP, t.rsdp->data, t.rsdp->len, errp) &&
              fw_cfg_add_file(s, ACPI_FILE_LOADER, t.loader->data, t.loader->len, errp);
    acpi_tables_free(&t);
    return ok;
}

/* ---- Our own run of the table-loader script (firmware-less boots) ---- */

typedef struct LoaderFile {
    const char *name;
    GByteArray *data;
    uint64_t addr;               /* guest address; 0 until allocated */
} LoaderFile;

static LoaderFile *loader_file(LoaderFile *f, size_t n, const uint8_t *name)
{
    char buf[LOADER_NAME_LEN + 1];
    memcpy(buf, name, LOADER_NAME_LEN);
    buf[LOADER_NAME_LEN] = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, buf))
            return &f[i];
    return NULL;
}

/*
 * Apply ADD_POINTER/ADD_CHECKSUM to host copies of the files whose guest
 * addresses are already chosen (ALLOCATE only checks the file is known).
 * The script is ours, so a malformed command is a builder bug: refuse it.
 */
static bool acpi_loader_apply(const GByteArray *script, LoaderFile *files, size_t nfiles,
                              GError **errp)
{
    for (size_t off = 0; off + LOADER_CMD_SIZE <= script->len; off += LOADER_CMD_SIZE) {
        const uint8_t *c = script->data + off;
        uint32_t cmd = ld32_le(c);
        LoaderFile *dst = cmd >= 1 && cmd <= 3 ? loader_file(files, nfiles, c + 4) : NULL;

        if (cmd == LOADER_CMD_ALLOCATE) {
            if (!dst || !dst->addr)
                goto bad;
        } else if (cmd == LOADER_CMD_ADD_POINTER) {
            LoaderFile *src = loader_file(files, nfiles, c + 60);
            uint32_t at = ld32_le(c + 116);
            uint8_t size = c[120];
            if (!dst || !src || (size != 1 && size != 2 && size != 4 && size != 8) ||
                at > dst->data->len || size > dst->data->len - at)
                goto bad;
            uint8_t *p = dst->data->data + at;
            uint64_t v = 0;
            for (int i = size - 1; i >= 0; i--)
                v = v << 8 | p[i];
            v += src->addr;
            for (int i = 0; i < size; i++)
                p[i] = (uint8_t)(v >> (8 * i));
        } else if (cmd == LOADER_CMD_ADD_CHECKSUM) {
            uint32_t res = ld32_le(c + 60), start = ld32_le(c + 64), len = ld32_le(c + 68);
            if (!dst || res >= dst->data->len || start > dst->data->len ||
                len > dst->data->len - start)
                goto bad;
            dst->data->data[res] -= acpi_sum(dst->data->data + start, len);
        }
        continue;
bad:
        kestrel_set_error(errp, "acpi: table-loader command %u at +0x%zx is malformed",
                          cmd, off);
        return false;
    }
    return true;
}

bool acpi_install_direct(Machine *m, GError **errp)
{
    AcpiBuildParams p;
    AcpiTables t;
    bool ok = false;

    acpi_build_params_from_machine(m, &p);
    acpi_build(&p, &t);
    LoaderFile files[] = {
        { ACPI_FILE_RSDP, t.rsdp, ACPI_DIRECT_RSDP_ADDR },
        { ACPI_FILE_TABLES, t.tables, ACPI_DIRECT_TABLES_ADDR },
    };
    G_STATIC_ASSERT(ACPI_DIRECT_RSDP_ADDR + RSDP_SIZE <= ACPI_DIRECT_TABLES_ADDR);
    G_STATIC_ASSERT(ACPI_DIRECT_TABLES_ADDR % FACS_ALIGN == 0);

    if (ACPI_DIRECT_TABLES_ADDR + t.tables->len > ACPI_DIRECT_END) {
        kestrel_set_error(errp, "acpi: tables (%u bytes) do not fit below 1 MiB",
                          t.tables->len);
        goto out;
    }
    if (!acpi_loader_apply(t.loader, files, ARRAY_LEN(files), errp))
        goto out;
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        if (!address_space_write_rom(m->as, files[i].addr, files[i].data->data,
                                     files[i].data->len)) {
            kestrel_set_error(errp, "acpi: 0x%" G_GINT64_MODIFIER "x is not guest memory "
                              "(ACPI tables need RAM at 0xE0000-0xFFFFF)", files[i].addr);
            goto out;
        }
        /* address_space_write_rom already told the CPU engine about the write. */
    }
    ok = true;
out:
    acpi_tables_free(&t);
    return ok;
}

/*
 * Private to the firmware-table builders (hw/pc/acpi_build.c, smbios.c,
 * pc_fw_cfg.c) and their unit tests: ACPI tables with the QEMU table-loader
 * script that places them, and SMBIOS, each built from a few machine facts
 * so the tests can build them without a machine.
 */
#ifndef KESTREL_HW_PC_FW_TABLES_H
#define KESTREL_HW_PC_FW_TABLES_H

#include "kestrel/common.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/machine.h"

/* ---- ACPI (hw/pc/acpi_build.c) ---- */

/* fw_cfg file names (firmware-seabios.md §4, §6) */
#define ACPI_FILE_TABLES  "etc/acpi/tables"
#define ACPI_FILE_RSDP    "etc/acpi/rsdp"
#define ACPI_FILE_LOADER  "etc/table-loader"

/* Table-loader script: 128-byte little-endian commands (firmware-seabios.md §6). */
#define LOADER_CMD_SIZE         128
#define LOADER_CMD_ALLOCATE     1
#define LOADER_CMD_ADD_POINTER  2
#define LOADER_CMD_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH        1
#define LOADER_ZONE_FSEG        2
#define LOADER_NAME_LEN         56

typedef struct AcpiBuildParams {
    int ncpus;                   /* LAPIC entries, APIC ids 0..ncpus-1 */
    uint64_t pci_hole_start;     /* end of RAM below 4 GiB: start of the 32-bit PCI window */
    bool has_fdc;                /* floppy controller at 0x3F0 (DSDT FDC0._STA) */
    bool has_com1;               /* UART at 0x3F8 (DSDT COM1._STA) */
} AcpiBuildParams;

typedef struct AcpiTables {
    GByteArray *tables;          /* etc/acpi/tables: FACS, DSDT, FADT, APIC, HPET, RSDT, XSDT */
    GByteArray *rsdp;            /* etc/acpi/rsdp: the 36-byte ACPI 2.0 RSDP */
    GByteArray *loader;          /* etc/table-loader */
} AcpiTables;

void acpi_build_params_from_machine(Machine *m, AcpiBuildParams *p);
void acpi_build(const AcpiBuildParams *p, AcpiTables *out);
void acpi_tables_free(AcpiTables *t);
/* The embedded DSDT with the per-machine values patched, checksum valid. */
GByteArray *acpi_build_dsdt(const AcpiBuildParams *p);

/* Add etc/acpi/tables, etc/acpi/rsdp and etc/table-loader to fw_cfg. */
bool acpi_setup_fw_cfg(Machine *m, FWCfgState *s, GError **errp);

/*
 * Firmware-less boots: write the same tables into guest memory with our own
 * run of the table-loader script: RSDP at ACPI_DIRECT_RSDP_ADDR (0xE0000,
 * where Linux scans for it), the other tables right after it.  The area is
 * in the 640K-1M hole, which Linux always treats as reserved.
 */
#define ACPI_DIRECT_RSDP_ADDR   0xE0000
#define ACPI_DIRECT_TABLES_ADDR 0xE0040
#define ACPI_DIRECT_END         0x100000
bool acpi_install_direct(Machine *m, GError **errp);

/* ---- SMBIOS (hw/pc/smbios.c) ---- */

#define SMBIOS_FILE_ANCHOR "etc/smbios/smbios-anchor"
#define SMBIOS_FILE_TABLES "etc/smbios/smbios-tables"

typedef struct SmbiosParams {
    int ncpus;                   /* one type 4 per CPU */
    uint64_t ram_below_4g, ram_above_4g;
    bool with_type0;             /* SeaBIOS adds its own type 0 when absent */
} SmbiosParams;

/*
 * SMBIOS 2.8 structure table and its 31-byte "_SM_" entry point (table
 * address 0: the firmware fills it and fixes the checksums).
 */
void smbios_build(const SmbiosParams *p, GByteArray **anchor, GByteArray **tables);
bool smbios_setup_fw_cfg(Machine *m, FWCfgState *s, GError **errp);

#endif

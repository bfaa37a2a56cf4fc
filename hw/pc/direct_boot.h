/*
 * Private to the direct-boot loaders (hw/pc/direct_boot.c, e820.c, mptable.c,
 * linux_boot.c, multiboot.c): the low-memory layout they share and small
 * helpers.  The public entry points are in include/kestrel/boot.h.
 *
 * Low memory after a direct boot (no firmware ran):
 *   0x00000-0x004FF  real-mode IVT and BIOS data area; we fill only the two
 *                    BDA words OSes read to find memory and the EBDA
 *                    (0x40E EBDA segment, 0x413 base memory in KiB)
 *   0x01000-0x0FFFF  loader scratch: GDT, page tables, Linux zero page
 *                    (Linux keeps the first 64 KiB reserved, and it copies
 *                    what it needs before reusing any of it)
 *   0x9F000-0x9FFFF  reserved in e820: the MP configuration table at 0x9F000,
 *                    the MP floating pointer in the last 16 bytes; the BDA
 *                    EBDA pointer says 0x9FC00 so that pointer sits in the
 *                    "EBDA" too (mptable.c)
 *   0xE0000-0xFFFFF  ACPI: the RSDP at 0xE0000, the tables from 0xE0040
 *                    (acpi_build.c acpi_install_direct; RAM because the
 *                    i440FX opens PAM read-write when no firmware runs)
 */
#ifndef KESTREL_HW_PC_DIRECT_BOOT_H
#define KESTREL_HW_PC_DIRECT_BOOT_H

#include "kestrel/boot.h"

/* End of conventional memory (the VGA window starts at 0xA0000). */
#define PC_LOW_MEM_END   0xA0000
/*
 * The reserved area below 640 KiB for the MP table: 4 KiB leaves room for
 * ~190 processor entries.  The EBDA proper is its last KiB.
 */
#define PC_EBDA_BASE     0x9F000
#define PC_EBDA_SIZE     0x1000
#define PC_EBDA_SEGMENT  0x9FC0
#define PC_HIGH_MEM_BASE 0x100000
#define PC_4G            0x100000000ULL

/* BIOS data area words (IBM PC/AT Technical Reference, BDA layout). */
#define BDA_EBDA_SEGMENT 0x40E
#define BDA_BASE_MEM_KB  0x413

/* Copy into guest RAM/ROM; a clear error naming 'what' if the range is not memory. */
bool boot_write(Machine *m, hwaddr addr, const void *buf, uint64_t len, const char *what,
                GError **errp);
/* Zero guest RAM (bss), in chunks so a huge bogus size costs no host memory. */
bool boot_zero(Machine *m, hwaddr addr, uint64_t len, const char *what, GError **errp);
/* BDA words and the MP table in the EBDA: what every direct boot needs. */
bool boot_setup_low_memory(Machine *m, GError **errp);
/* Read a whole file for a loader; 'what' names the option in errors ("-kernel"). */
bool boot_read_file(const char *path, const char *what, uint8_t **buf, size_t *len,
                    GError **errp);

#endif

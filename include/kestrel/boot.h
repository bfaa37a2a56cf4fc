/*
 * Direct boot without firmware (hw/pc/linux_boot.c, hw/pc/multiboot.c,
 * hw/pc/mptable.c, hw/pc/e820.c).  Loaders write guest RAM through
 * machine_ram_ptr()/address_space_write_rom and fill m->bsp_state.
 */
#ifndef KESTREL_BOOT_H
#define KESTREL_BOOT_H

#include "kestrel/common.h"
#include "kestrel/machine.h"

/* e820 map of the PC board (hw/pc/e820.c) */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4

typedef struct E820Entry {
    uint64_t addr, size;
    uint32_t type;
} E820Entry;

/* Entries for m's RAM layout (low RAM minus the 640K-1M hole, high RAM). */
size_t pc_e820_build(Machine *m, E820Entry *out, size_t max);

/* Is this file a Multiboot-1 image (header in the first 8 KiB)? */
bool multiboot_probe(const uint8_t *buf, size_t len);
/*
 * Load a Multiboot-1 kernel (ELF or a.out kludge).  modules is the -initrd
 * string "path args,path2 args" (',,' is a literal comma), may be NULL.
 */
bool multiboot_load(Machine *m, const char *kernel, const char *cmdline,
                    const char *modules, GError **errp);
/* Load a Linux bzImage per the x86 boot protocol (64-bit entry when supported). */
bool linux_boot_load(Machine *m, const char *kernel, const char *initrd,
                     const char *cmdline, GError **errp);
/* Dispatcher used by the board: multiboot if it has the header, else Linux. */
bool pc_direct_boot(Machine *m, GError **errp);

/* Intel MultiProcessor Spec 1.4 tables for smp_cpus CPUs and an IOAPIC (hw/pc/mptable.c). */
bool mptable_build(Machine *m, hwaddr addr, size_t max_len, GError **errp);

#endif

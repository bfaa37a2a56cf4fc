/*
 * The PC's BIOS flash (hw/pc/pc_bios.c) and the priorities of the regions
 * that decide what the CPU sees at 0xC0000-0xFFFFF (hw/pc/i440fx.c).
 *
 * In system memory, from the bottom up:
 *   PCI BARs (-1) < RAM, BIOS flash at 4 GiB - size (0)
 *   < the isa-bios alias at 0xE0000 and the option-ROM area at 0xC0000
 *     (PC_ISA_ROM_PRIORITY): what PAM mode 0 shows
 *   < the i440FX PAM windows onto RAM (PC_PAM_PRIORITY), enabled in modes 1-3.
 */
#ifndef KESTREL_PC_BIOS_H
#define KESTREL_PC_BIOS_H

#include "kestrel/common.h"
#include "kestrel/machine.h"

#define PC_ISA_ROM_PRIORITY  1
#define PC_PAM_PRIORITY      2

#define PC_BIOS_DEFAULT_FILE "bios-256k.bin"
#define PC_BIOS_MAX_SIZE     (16u << 20)
#define PC_ISA_BIOS_SIZE     0x20000u     /* the last 128 KiB appear at 0xE0000 */

/*
 * Load -bios FILE (default CONFIG_SEABIOS_DIR/bios-256k.bin): a non-zero
 * multiple of 64 KiB, at most 16 MiB, mapped read-only at 4 GiB - size
 * (m->bios), with its last 128 KiB (or all of it, if smaller) aliased to
 * end at 0xFFFFF.
 */
bool pc_bios_load(Machine *m, GError **errp);

#endif

/*
 * -kernel through the firmware: when the machine runs the BIOS (-kernel
 * together with -bios), the bzImage is not loaded by Kestrel but handed to
 * the guest through fw_cfg, and Kestrel's option ROM (roms/linuxboot.S,
 * fw_cfg file "genroms/linuxboot.bin", first in the boot order) copies it
 * into memory and enters the kernel's real-mode setup code, the way a boot
 * loader does.  hw/pc/linuxboot_fw.c.
 */
#ifndef KESTREL_LINUXBOOT_FW_H
#define KESTREL_LINUXBOOT_FW_H

#include "kestrel/common.h"

typedef struct Machine Machine;

/*
 * Read m->cfg->kernel (and -initrd, -append), fill fw_cfg keys 0x07-0x18,
 * add the option ROM and its bootorder entry.  Call once, after the fw_cfg
 * device exists and before the bootorder file is written.  Fails (with a
 * one-line error) for anything but a Linux bzImage of boot protocol 2.02+,
 * a missing file, or a kernel/initrd that does not fit in RAM.
 */
bool pc_linuxboot_fw_setup(Machine *m, GError **errp);

/* The option ROM image built into this binary (for tests). */
const uint8_t *linuxboot_fw_rom(size_t *len);

#endif

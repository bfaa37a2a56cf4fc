/*
 * fw_cfg: QEMU's firmware configuration interface (QEMU docs/specs/fw_cfg.rst;
 * ../shared/docs/firmware-seabios.md §4).  Selector 0x510, data 0x511, DMA
 * 0x514/0x518.  Items are either legacy keys (integers little-endian) or
 * named files in the directory at key 0x19 (selectors from 0x20, sorted by
 * name).  All add functions copy the data.
 */
#ifndef KESTREL_FW_CFG_H
#define KESTREL_FW_CFG_H

#include "kestrel/common.h"

typedef struct Machine Machine;
typedef struct FWCfgState FWCfgState;

/* Well-known keys (firmware-seabios.md §4, boot-protocols.md). */
#define FW_CFG_SIGNATURE      0x00
#define FW_CFG_ID             0x01
#define FW_CFG_UUID           0x02
#define FW_CFG_RAM_SIZE       0x03
#define FW_CFG_NOGRAPHIC      0x04
#define FW_CFG_NB_CPUS        0x05
#define FW_CFG_MACHINE_ID     0x06
#define FW_CFG_KERNEL_ADDR    0x07
#define FW_CFG_KERNEL_SIZE    0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR    0x0a
#define FW_CFG_INITRD_SIZE    0x0b
#define FW_CFG_BOOT_DEVICE    0x0c
#define FW_CFG_NUMA           0x0d
#define FW_CFG_BOOT_MENU      0x0e
#define FW_CFG_MAX_CPUS       0x0f
#define FW_CFG_KERNEL_ENTRY   0x10
#define FW_CFG_KERNEL_DATA    0x11
#define FW_CFG_INITRD_DATA    0x12
#define FW_CFG_CMDLINE_ADDR   0x13
#define FW_CFG_CMDLINE_SIZE   0x14
#define FW_CFG_CMDLINE_DATA   0x15
#define FW_CFG_SETUP_ADDR     0x16
#define FW_CFG_SETUP_SIZE     0x17
#define FW_CFG_SETUP_DATA     0x18
#define FW_CFG_FILE_DIR       0x19
#define FW_CFG_FILE_FIRST     0x20
#define FW_CFG_ARCH_LOCAL     0x8000
#define FW_CFG_ACPI_TABLES    (FW_CFG_ARCH_LOCAL + 0)
#define FW_CFG_SMBIOS_ENTRIES (FW_CFG_ARCH_LOCAL + 1)
#define FW_CFG_IRQ0_OVERRIDE  (FW_CFG_ARCH_LOCAL + 2)
#define FW_CFG_E820_TABLE     (FW_CFG_ARCH_LOCAL + 3)
#define FW_CFG_HPET           (FW_CFG_ARCH_LOCAL + 4)

#define FW_CFG_MAX_FILE_NAME  56

/* The machine's fw_cfg device (created by the board), or NULL. */
FWCfgState *machine_fw_cfg(Machine *m);

void fw_cfg_add_bytes(FWCfgState *s, uint16_t key, const void *data, size_t len);
void fw_cfg_add_i16(FWCfgState *s, uint16_t key, uint16_t value);
void fw_cfg_add_i32(FWCfgState *s, uint16_t key, uint32_t value);
void fw_cfg_add_i64(FWCfgState *s, uint16_t key, uint64_t value);
void fw_cfg_add_string(FWCfgState *s, uint16_t key, const char *value);  /* with NUL */
/* New file; false (with error) if the name exists or is too long. */
bool fw_cfg_add_file(FWCfgState *s, const char *name, const void *data, size_t len,
                     GError **errp);
/* Add or replace a file's contents. */
void fw_cfg_set_file(FWCfgState *s, const char *name, const void *data, size_t len);
/* A file's current contents (NULL if absent); for tests and the board. */
const uint8_t *fw_cfg_get_file(FWCfgState *s, const char *name, size_t *len);

/*
 * Boot order: devices with bootindex= (and the -boot/-kernel logic) register
 * their OpenFirmware path ("/pci@i0cf8/ide@1,1/drive@0/disk@0",
 * firmware-seabios.md §5); the board writes the sorted list to the
 * "bootorder" file when the machine is complete.  bootindex < 0 = not listed.
 */
void fw_cfg_bootorder_add(FWCfgState *s, int bootindex, const char *of_path);

/* ---- Additions by the fw_cfg implementation (hw/pc/fw_cfg.c, pc_fw_cfg.c) ---- */

typedef struct AddressSpace AddressSpace;

/*
 * A free-standing fw_cfg store with no ports (unit tests, table builders);
 * dma_as is where DMA would go (NULL: no DMA bit in FW_CFG_ID).  The board
 * uses device type "fw_cfg" instead, which also claims the ports.
 */
FWCfgState *fw_cfg_new(AddressSpace *dma_as);
/* Let the guest DMA-write into an existing file (QEMU's writable files). */
bool fw_cfg_set_file_writable(FWCfgState *s, const char *name, bool writable);
/* Called from the device's reset (system reset), after its own reset. */
void fw_cfg_set_reset_hook(FWCfgState *s, void (*fn)(void *opaque), void *opaque);
/* The "bootorder" contents: registered paths by bootindex, then "HALT" if asked. */
char *fw_cfg_bootorder_text(FWCfgState *s, bool halt);

/*
 * Fill the machine's fw_cfg once every device exists (hw/pc/pc_fw_cfg.c):
 * CPU count, RAM and e820, ACPI tables and SMBIOS, -boot (CMOS boot order,
 * boot menu, "bootorder"), -fw_cfg blobs.  False on a bad -boot/-fw_cfg.
 */
bool pc_fw_cfg_setup(Machine *m, GError **errp);

#endif

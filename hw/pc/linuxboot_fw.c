/*
 * -kernel with firmware: hand a Linux bzImage to the BIOS's boot path.
 *
 * Spec: Linux Documentation/arch/x86/boot.rst ("The Real-Mode Kernel
 * Header", "Loading the Rest of the Kernel", "Sample Boot Configuration",
 * "Running the Kernel"), summarised in ../shared/docs/boot-protocols.md
 * §1-§6; fw_cfg keys 0x07-0x18 per QEMU docs/specs/fw_cfg.rst.
 *
 * We act as the loader half of a 16-bit boot loader: parse the setup
 * header, fill in the fields the loader owns (type_of_loader, loadflags
 * CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr, ramdisk_image/size, vid_mode),
 * choose the addresses, and publish everything through fw_cfg.  The guest
 * half is the option ROM roms/linuxboot.S: SeaBIOS runs it first (bootorder
 * "/rom@genroms/linuxboot.bin"), it copies the pieces to those addresses and
 * jumps to the real-mode setup code, which then asks the BIOS for the memory
 * map and video mode itself -- unlike hw/pc/linux_boot.c, which skips the
 * setup code and fills boot_params on its own.
 *
 * Layout (boot.rst "Sample Boot Configuration" for a protocol >= 2.02
 * bzImage loaded at X = 0x10000, as QEMU's -kernel also does):
 *   0x10000   boot sector + setup code (setup_sects + 1 sectors, <= 32 KiB)
 *             heap up to 0x1FE00 (heap_end_ptr 0xFC00 past the setup start
 *             + 0x200), the ROM's stack just below 0x20000
 *   0x20000   command line (cmdline_size + 1 bytes at most)
 *   0x100000  protected-mode kernel (code32_start)
 *   top       initrd: page-aligned, at most initrd_addr_max, below the last
 *             MiB of low RAM, which SeaBIOS keeps for its own tables and the
 *             ACPI tables (its "high zone"); the ROM moves it further down if
 *             the BIOS reports less memory (INT 15h E801).
 *
 * Not supported: zImage and protocol < 2.02 (setup at 0x90000 and the old
 * command-line magic; no kernel of this century needs them), Multiboot and
 * PVH kernels (the firmware path would need their own ROMs), setup_data.
 */
#include "kestrel/linuxboot_fw.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/machine.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "direct_boot.h"

/* Setup header offsets in the file (boot.rst table). */
#define HDR_SETUP_SECTS         0x1F1
#define HDR_VID_MODE            0x1FA
#define HDR_BOOT_FLAG           0x1FE   /* 0xAA55 */
#define HDR_JUMP                0x200
#define HDR_HEADER              0x202   /* "HdrS" */
#define HDR_VERSION             0x206
#define HDR_TYPE_OF_LOADER      0x210
#define HDR_LOADFLAGS           0x211
#define HDR_RAMDISK_IMAGE       0x218
#define HDR_RAMDISK_SIZE        0x21C
#define HDR_HEAP_END_PTR        0x224
#define HDR_CMD_LINE_PTR        0x228
#define HDR_INITRD_ADDR_MAX     0x22C
#define HDR_CMDLINE_SIZE        0x238

#define HDR_MAGIC               0x53726448u     /* "HdrS" */
#define BOOT_FLAG_MAGIC         0xAA55

/* loadflags */
#define LOADED_HIGH             (1u << 0)
#define CAN_USE_HEAP            (1u << 7)

/* vid_mode values (boot.rst "vga=" handling) */
#define VID_MODE_NORMAL         0xFFFF
#define VID_MODE_EXTENDED       0xFFFE
#define VID_MODE_ASK            0xFFFD

/* boot.rst: 0xFF = a boot loader without an assigned id (as linux_boot.c). */
#define LOADER_TYPE_UNDEFINED   0xFF
/* Protocol < 2.03 kernels leave initrd_addr_max unset; boot.rst says assume this. */
#define INITRD_ADDR_MAX_OLD     0x37FFFFFFu
/* Protocol < 2.06: the command line is at most 255 characters. */
#define CMDLINE_SIZE_OLD        255
/* boot.rst "Memory Layout": the real-mode code is at most 32 KiB. */
#define SETUP_MAX               0x8000

/* Our placement (header comment). */
#define LBF_SETUP_ADDR          0x10000
#define LBF_CMDLINE_ADDR        0x20000
#define LBF_KERNEL_ADDR         0x100000
#define LBF_HIGH_RESERVE        0x100000        /* last MiB of low RAM: SeaBIOS's */
#define LBF_PAGE                0x1000

#define LBF_ROM_FILE            "genroms/linuxboot.bin"
#define LBF_ROM_BOOTPATH        "/rom@" LBF_ROM_FILE

/*
 * The ROM: roms/linuxboot.S, assembled and checksummed by the Makefile into
 * build/roms/linuxboot.bin and turned into this array by roms/romsum.
 */
#include "build/roms/linuxboot_rom.h"

const uint8_t *linuxboot_fw_rom(size_t *len)
{
    *len = sizeof(linuxboot_rom);
    return linuxboot_rom;
}

/* "vga=" on the command line -> vid_mode (boot.rst: normal, ext, ask or a number). */
static uint16_t linuxboot_fw_vid_mode(const char *cmdline)
{
    const char *p = cmdline;

    while ((p = strstr(p, "vga=")) != NULL) {
        if (p == cmdline || p[-1] == ' ')
            break;
        p += 4;
    }
    if (!p)
        return VID_MODE_NORMAL;
    p += 4;
    if (!strncmp(p, "normal", 6))
        return VID_MODE_NORMAL;
    if (!strncmp(p, "ext", 3))
        return VID_MODE_EXTENDED;
    if (!strncmp(p, "ask", 3))
        return VID_MODE_ASK;
    char *end;
    unsigned long v = strtoul(p, &end, 0);
    if (end == p || v > 0xFFFF)
        return VID_MODE_NORMAL;
    return (uint16_t)v;
}

bool pc_linuxboot_fw_setup(Machine *m, GError **errp)
{
    MachineConfig *cfg = m->cfg;
    const char *path = cfg->kernel;
    const char *cmdline = cfg->append ? cfg->append : "";
    FWCfgState *fw = machine_fw_cfg(m);
    uint8_t *buf = NULL, *initrd = NULL;
    size_t len = 0, initrd_len = 0, rom_len;
    const uint8_t *rom = linuxboot_fw_rom(&rom_len);
    bool ok = false;

    if (!path) {
        kestrel_set_error(errp, "internal error: firmware -kernel boot without -kernel");
        return false;
    }
    if (!fw) {
        kestrel_set_error(errp, "-kernel %s with -bios: the machine has no fw_cfg device", path);
        return false;
    }
    if (!boot_read_file(path, "-kernel", &buf, &len, errp))
        return false;

    /* The setup header: "HdrS", boot flag, protocol >= 2.02, a bzImage. */
    if (len < 0x400 || ld32_le(buf + HDR_HEADER) != HDR_MAGIC ||
        ld16_le(buf + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
        kestrel_set_error(errp, "-kernel %s with -bios: only Linux bzImage kernels boot "
                          "through the firmware", path);
        goto out;
    }
    uint16_t version = ld16_le(buf + HDR_VERSION);
    if (version < 0x0202) {
        kestrel_set_error(errp, "-kernel %s: Linux boot protocol %u.%02u is too old (booting "
                          "through the firmware needs 2.02 or later)", path, version >> 8,
                          version & 0xff);
        goto out;
    }
    if (!(buf[HDR_LOADFLAGS] & LOADED_HIGH)) {
        kestrel_set_error(errp, "-kernel %s: a zImage (loaded low) is not supported; "
                          "use a bzImage", path);
        goto out;
    }
    unsigned sects = buf[HDR_SETUP_SECTS] ? buf[HDR_SETUP_SECTS] : 4;   /* boot.rst: 0 means 4 */
    size_t setup_size = (size_t)(sects + 1) * 512;
    if (buf[HDR_JUMP] != 0xEB || HDR_HEADER + (size_t)buf[HDR_JUMP + 1] > setup_size ||
        setup_size > SETUP_MAX || setup_size >= len) {
        kestrel_set_error(errp, "-kernel %s: truncated or corrupt bzImage (setup %zu bytes, "
                          "file %zu bytes)", path, setup_size, len);
        goto out;
    }
    uint32_t initrd_addr_max = version >= 0x0203 ? ld32_le(buf + HDR_INITRD_ADDR_MAX)
                                                 : INITRD_ADDR_MAX_OLD;
    uint32_t cmdline_max = version >= 0x0206 ? ld32_le(buf + HDR_CMDLINE_SIZE) : CMDLINE_SIZE_OLD;
    size_t cmdline_len = strlen(cmdline);
    /* The command line ends before the end of conventional memory, whatever the header says. */
    if (cmdline_len > cmdline_max || LBF_CMDLINE_ADDR + cmdline_len + 1 > PC_LOW_MEM_END) {
        kestrel_set_error(errp, "-append: the command line is %zu characters; this kernel "
                          "takes at most %u", cmdline_len, cmdline_max);
        goto out;
    }

    uint64_t kernel_size = len - setup_size;
    uint64_t low_ram = m->ram_below_4g;
    if (low_ram < LBF_KERNEL_ADDR + kernel_size + LBF_HIGH_RESERVE) {
        kestrel_set_error(errp, "-kernel %s: the kernel (%" PRIu64 " KiB) does not fit in "
                          "%" PRIu64 " MiB of RAM (-m)", path, kernel_size >> 10, low_ram >> 20);
        goto out;
    }

    /* initrd: as high as the header and the RAM below the firmware's tables allow. */
    uint32_t initrd_addr = 0;
    if (cfg->initrd) {
        if (!boot_read_file(cfg->initrd, "-initrd", &initrd, &initrd_len, errp))
            goto out;
        uint64_t top = MIN((uint64_t)initrd_addr_max + 1, low_ram - LBF_HIGH_RESERVE);
        uint64_t lowest = LBF_KERNEL_ADDR + kernel_size;
        if (initrd_len > top || ((top - initrd_len) & ~(uint64_t)(LBF_PAGE - 1)) < lowest) {
            kestrel_set_error(errp, "-initrd %s: %zu KiB do not fit between the kernel and "
                              "the top of usable RAM (%" PRIu64 " MiB; try a larger -m)",
                              cfg->initrd, initrd_len >> 10, top >> 20);
            goto out;
        }
        initrd_addr = (uint32_t)((top - initrd_len) & ~(uint64_t)(LBF_PAGE - 1));
    }

    /* The loader's fields in the setup header (boot.rst "Details of Header Fields"). */
    uint8_t *setup = buf;
    setup[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    setup[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    st16_le(setup + HDR_HEAP_END_PTR, LBF_CMDLINE_ADDR - LBF_SETUP_ADDR - 0x200);
    st32_le(setup + HDR_CMD_LINE_PTR, LBF_CMDLINE_ADDR);
    st32_le(setup + HDR_RAMDISK_IMAGE, initrd_addr);
    st32_le(setup + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
    st16_le(setup + HDR_VID_MODE, linuxboot_fw_vid_mode(cmdline));

    fw_cfg_add_i32(fw, FW_CFG_SETUP_ADDR, LBF_SETUP_ADDR);
    fw_cfg_add_i32(fw, FW_CFG_SETUP_SIZE, (uint32_t)setup_size);
    fw_cfg_add_bytes(fw, FW_CFG_SETUP_DATA, setup, setup_size);
    fw_cfg_add_i32(fw, FW_CFG_KERNEL_ADDR, LBF_KERNEL_ADDR);
    fw_cfg_add_i32(fw, FW_CFG_KERNEL_SIZE, (uint32_t)kernel_size);
    fw_cfg_add_bytes(fw, FW_CFG_KERNEL_DATA, buf + setup_size, kernel_size);
    fw_cfg_add_i32(fw, FW_CFG_CMDLINE_ADDR, LBF_CMDLINE_ADDR);
    fw_cfg_add_i32(fw, FW_CFG_CMDLINE_SIZE, (uint32_t)cmdline_len + 1);
    fw_cfg_add_bytes(fw, FW_CFG_CMDLINE_DATA, cmdline, cmdline_len + 1);
    fw_cfg_add_i32(fw, FW_CFG_INITRD_ADDR, initrd_addr);
    fw_cfg_add_i32(fw, FW_CFG_INITRD_SIZE, (uint32_t)initrd_len);
    if (initrd_len)
        fw_cfg_add_bytes(fw, FW_CFG_INITRD_DATA, initrd, initrd_len);

    if (!fw_cfg_add_file(fw, LBF_ROM_FILE, rom, rom_len, errp))
        goto out;
    fw_cfg_bootorder_add(fw, 0, LBF_ROM_BOOTPATH);
    ok = true;
out:
    g_free(buf);
    g_free(initrd);
    return ok;
}

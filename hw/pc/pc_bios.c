/*
 * The PC BIOS flash: the firmware image (SeaBIOS's bios-256k.bin by
 * default) as read-only memory just below 4 GiB, where the CPU's reset
 * vector 0xFFFFFFF0 lands, plus the "isa-bios" alias of its last 128 KiB at
 * 0xE0000-0xFFFFF, where real-mode code runs it (firmware-seabios.md §2,
 * QEMU's x86_bios_rom_init layout).
 *
 * The alias sits above RAM (PC_ISA_ROM_PRIORITY) so the legacy BIOS area
 * shows the flash until the i440FX PAM registers switch a segment to shadow
 * RAM (hw/pc/i440fx.c).
 *
 * Not modelled: writable flash (pflash), flash command sets, a separate
 * variable store.
 */
#include "kestrel/pc_bios.h"
#include "kestrel/log.h"
#include "config.h"

#include <string.h>

#define PC_BIOS_SIZE_UNIT    0x10000u      /* images come in 64 KiB steps */
#define PC_ISA_BIOS_END      0x100000ULL   /* the alias ends at 0xFFFFF */
#define PC_4G                0x100000000ULL

bool pc_bios_load(Machine *m, GError **errp)
{
    const char *path = m->cfg && m->cfg->bios ? m->cfg->bios : NULL;
    char *def = NULL;
    gchar *data = NULL;
    gsize size = 0;
    GError *err = NULL;

    if (!path)
        path = def = g_build_filename(CONFIG_SEABIOS_DIR, PC_BIOS_DEFAULT_FILE, NULL);
    if (!g_file_get_contents(path, &data, &size, &err)) {
        kestrel_set_error(errp, "-bios %s: cannot read the firmware image: %s%s", path,
                          err->message,
                          def ? " (install Debian's seabios package or give -bios FILE)" : "");
        g_error_free(err);
        g_free(def);
        return false;
    }
    if (size == 0 || size % PC_BIOS_SIZE_UNIT || size > PC_BIOS_MAX_SIZE) {
        kestrel_set_error(errp, "-bios %s: image size %zu bytes is not a non-zero multiple of "
                          "64 KiB up to 16 MiB", path, (size_t)size);
        g_free(data);
        g_free(def);
        return false;
    }

    MemoryRegion *rom = memory_region_new_rom("pc.bios", size, errp);
    if (!rom) {
        g_free(data);
        g_free(def);
        return false;
    }
    memcpy(memory_region_host_ptr(rom), data, size);
    g_free(data);
    g_free(def);
    memory_region_add_subregion(m->system_memory, PC_4G - size, rom, 0);
    m->bios = rom;

    uint64_t isa_size = size < PC_ISA_BIOS_SIZE ? size : PC_ISA_BIOS_SIZE;
    MemoryRegion *isa = memory_region_new_alias("isa-bios", rom, size - isa_size, isa_size);
    memory_region_add_subregion(m->system_memory, PC_ISA_BIOS_END - isa_size, isa,
                                PC_ISA_ROM_PRIORITY);
    /* The image is in place before any CPU runs; a software CPU has nothing cached. */
    memory_notify_ram_write(PC_4G - size, size);
    return true;
}

/*
 * The e820 memory map a firmware-less boot hands to the OS (Linux zero page
 * e820_table, Multiboot mmap).  Types are the ACPI "System Address Map" ones.
 *
 * Layout (docs/pc-platform.md §3 and direct_boot.h):
 *   [0, 0x9F000)                    RAM (conventional memory)
 *   [0x9F000, 0xA0000)              reserved: our EBDA holding the MP table
 *   [0xA0000, 0x100000)             absent: VGA window, option ROMs, BIOS
 *   [0x100000, ram_below_4g)        RAM
 *   [0xFEFFC000, 0xFF000000)        reserved: KVM's identity-map page and
 *                                   real-mode TSS (kvm-api.md §1.3), kept out of
 *                                   the guest's way as QEMU's pc does
 *   [4 GiB, 4 GiB + ram_above_4g)   RAM
 * The board decides the below/above-4G split (QEMU's rule: all RAM low when
 * under 3.5 GiB, else 3 GiB low and the rest from 4 GiB); this file only
 * reports it.  The direct boot's ACPI tables live at 0xE0000-0xFFFFF, which
 * is outside every e820 RAM range here (Linux also reserves 0xA0000-0xFFFFF
 * on its own); firmware boots get SeaBIOS's own map through fw_cfg
 * (pc_fw_cfg.c), not this one.
 */
#include "direct_boot.h"

static size_t e820_add(E820Entry *out, size_t n, size_t max, uint64_t addr, uint64_t size,
                       uint32_t type)
{
    if (size == 0 || n >= max)
        return n;
    out[n].addr = addr;
    out[n].size = size;
    out[n].type = type;
    return n + 1;
}

size_t pc_e820_build(Machine *m, E820Entry *out, size_t max)
{
    uint64_t low = m->ram_below_4g;
    size_t n = 0;

    /* Conventional memory stops at the EBDA, or earlier on a tiny machine. */
    uint64_t conv = MIN(low, (uint64_t)PC_EBDA_BASE);
    n = e820_add(out, n, max, 0, conv, E820_RAM);
    if (low > PC_EBDA_BASE)
        n = e820_add(out, n, max, PC_EBDA_BASE, PC_EBDA_SIZE, E820_RESERVED);
    if (low > PC_HIGH_MEM_BASE)
        n = e820_add(out, n, max, PC_HIGH_MEM_BASE, low - PC_HIGH_MEM_BASE, E820_RAM);
    n = e820_add(out, n, max, PC_ACCEL_RESERVED_BASE, PC_ACCEL_RESERVED_SIZE, E820_RESERVED);
    n = e820_add(out, n, max, PC_4G, m->ram_above_4g, E820_RAM);
    return n;
}

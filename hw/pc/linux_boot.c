/*
 * Linux x86 boot protocol loader for -kernel bzImage without firmware.
 *
 * Spec: Linux Documentation/arch/x86/boot.rst ("32-bit Boot Protocol",
 * "64-bit Boot Protocol"), zero-page.rst, uapi/asm/bootparam.h, as summarised
 * in docs/boot-protocols.md §1-§6.  The kernel's 16-bit setup code is never
 * run (it needs a BIOS): we do its job -- fill boot_params ("zero page") with
 * the setup header, the e820 map, the command line and initrd -- and enter
 * the protected-mode kernel directly: at load address + 0x200 in long mode
 * when the kernel advertises XLF_KERNEL_64, else at code32_start in flat
 * 32-bit protected mode.
 *
 * Guest memory we use (see direct_boot.h for the low-memory map):
 *   0x01000  GDT: 0x10 flat code (64-bit or 32-bit), 0x18 flat data
 *   0x02000  PML4, 0x03000 PDPT, 0x04000-0x07FFF four page directories of
 *            2 MiB pages: an identity map of the first 4 GiB (64-bit entry)
 *   0x08000  boot_params (zero page)
 *   0x10000  boot sector + setup code (first 32 KiB), as a BIOS loader leaves them
 *   0x20000  command line
 *   0x100000 protected-mode kernel (the compressed bzImage payload)
 *   top      initrd: page-aligned, as high as initrd_addr_max and RAM allow
 * None of the low pages is e820-reserved: Linux reserves the first 64 KiB
 * itself (CONFIG_X86_RESERVE_LOW), copies boot_params and the command line
 * into its own memory before reusing low RAM, and its decompressor switches
 * to its own page tables and GDT before it could overwrite ours.
 *
 * Not supported: zImage / protocol < 2.02 (they need the real-mode path),
 * loading above 4 GiB, setup_data (DTB, E820_EXT: 128 entries are plenty),
 * "vga=" (vid_mode stays "normal"), ACPI RSDP (a direct boot has no tables;
 * the kernel finds CPUs and the IOAPIC in the MP table).
 */
#include <string.h>

#include "direct_boot.h"

/* Setup header, offsets in the file and in boot_params (boot.rst table). */
#define HDR_SETUP_SECTS         0x1F1
#define HDR_VID_MODE            0x1FA
#define HDR_BOOT_FLAG           0x1FE   /* 0xAA55 */
#define HDR_JUMP                0x200   /* 0xEB, disp8: header ends at 0x202 + disp8 */
#define HDR_HEADER              0x202   /* "HdrS" */
#define HDR_VERSION             0x206
#define HDR_TYPE_OF_LOADER      0x210
#define HDR_LOADFLAGS           0x211
#define HDR_CODE32_START        0x214
#define HDR_RAMDISK_IMAGE       0x218
#define HDR_RAMDISK_SIZE        0x21C
#define HDR_HEAP_END_PTR        0x224
#define HDR_CMD_LINE_PTR        0x228
#define HDR_INITRD_ADDR_MAX     0x22C
#define HDR_KERNEL_ALIGNMENT    0x230
#define HDR_RELOCATABLE_KERNEL  0x234
#define HDR_XLOADFLAGS          0x236
#define HDR_CMDLINE_SIZE        0x238
#define HDR_HARDWARE_SUBARCH    0x23C
#define HDR_SETUP_DATA          0x250
#define HDR_PREF_ADDRESS        0x258
#define HDR_INIT_SIZE           0x260

#define HDR_MAGIC               0x53726448u     /* "HdrS" */
#define BOOT_FLAG_MAGIC         0xAA55

/* loadflags */
#define LOADED_HIGH             (1u << 0)
#define CAN_USE_HEAP            (1u << 7)
/* xloadflags */
#define XLF_KERNEL_64           (1u << 0)

#define VID_MODE_NORMAL         0xFFFF
/* boot.rst: 0xFF = boot loader without an assigned id. */
#define LOADER_TYPE_UNDEFINED   0xFF

/* boot_params outside the header (zero-page.rst) */
#define BP_ALT_MEM_K            0x1E0
#define BP_E820_ENTRIES         0x1E8
#define BP_SENTINEL             0x1EF   /* must stay 0: we never copy it */
#define BP_E820_TABLE           0x2D0
#define BP_E820_MAX             128
#define BP_E820_ENTRY_SIZE      20
#define BP_SIZE                 0x1000

/* Our placement (header comment). */
#define LB_GDT_ADDR             0x1000
#define LB_PML4_ADDR            0x2000
#define LB_PDPT_ADDR            0x3000
#define LB_PD_ADDR              0x4000
#define LB_ZERO_PAGE_ADDR       0x8000
#define LB_SETUP_ADDR           0x10000
#define LB_CMDLINE_ADDR         0x20000
/* Real-mode code is at most 32 KiB (boot.rst memory layout); nothing runs it here. */
#define LB_SETUP_MAX            0x8000
#define LB_KERNEL_ADDR          0x100000
/* Protocol < 2.03 kernels leave initrd_addr_max unset; boot.rst says assume this. */
#define INITRD_ADDR_MAX_OLD     0x37FFFFFFu
/* Protocol < 2.06: the command line is at most 255 characters. */
#define CMDLINE_SIZE_OLD        255
#define PAGE_SIZE               0x1000

/* Page-table entry bits (SDM vol. 3A §4.5) */
#define PTE_P                   (1ull << 0)
#define PTE_RW                  (1ull << 1)
#define PTE_PS                  (1ull << 7)
#define PAGE_2M                 0x200000ull

/* GDT descriptors, base 0, limit 0xFFFFF pages (SDM vol. 3A §3.4.5). */
#define GDT_CODE64              0x00AF9B000000FFFFull   /* P S type=B, G L */
#define GDT_CODE32              0x00CF9B000000FFFFull   /* P S type=B, G D */
#define GDT_DATA                0x00CF93000000FFFFull   /* P S type=3, G B */
#define SEL_CODE                0x10
#define SEL_DATA                0x18

typedef struct LinuxImage {
    const uint8_t *buf;
    size_t len;
    uint16_t version;
    size_t setup_size;          /* boot sector + setup code */
    size_t hdr_end;             /* end of the setup header in the file */
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    uint16_t xloadflags;
    uint64_t window_start, window_end;   /* where the kernel decompresses itself */
} LinuxImage;

static bool linux_parse(LinuxImage *k, const char *path, GError **errp)
{
    const uint8_t *b = k->buf;

    if (k->len < 0x400 || ld32_le(b + HDR_HEADER) != HDR_MAGIC ||
        ld16_le(b + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
        kestrel_set_error(errp, "-kernel %s: not a bzImage (no Linux setup header)", path);
        return false;
    }
    k->version = ld16_le(b + HDR_VERSION);
    if (k->version < 0x0202) {
        kestrel_set_error(errp, "-kernel %s: Linux boot protocol %u.%02u is too old "
                          "(direct boot needs 2.02 or later)", path, k->version >> 8,
                          k->version & 0xff);
        return false;
    }
    if (!(b[HDR_LOADFLAGS] & LOADED_HIGH)) {
        kestrel_set_error(errp, "-kernel %s: a zImage (loaded low) is not supported; "
                          "use a bzImage", path);
        return false;
    }
    unsigned sects = b[HDR_SETUP_SECTS] ? b[HDR_SETUP_SECTS] : 4;   /* boot.rst: 0 means 4 */
    k->setup_size = (size_t)(sects + 1) * 512;
    k->hdr_end = HDR_HEADER + b[HDR_JUMP + 1];
    if (b[HDR_JUMP] != 0xEB || k->hdr_end > k->setup_size || k->setup_size >= k->len) {
        kestrel_set_error(errp, "-kernel %s: truncated or corrupt bzImage (setup %zu bytes, "
                          "file %zu bytes)", path, k->setup_size, k->len);
        return false;
    }
    k->initrd_addr_max = k->version >= 0x0203 ? ld32_le(b + HDR_INITRD_ADDR_MAX)
                                              : INITRD_ADDR_MAX_OLD;
    k->cmdline_size = k->version >= 0x0206 ? ld32_le(b + HDR_CMDLINE_SIZE) : CMDLINE_SIZE_OLD;
    k->xloadflags = k->version >= 0x020C ? ld16_le(b + HDR_XLOADFLAGS) : 0;

    /*
     * Where the kernel will decompress itself and how much it needs there
     * (boot.rst pref_address/init_size): a relocatable kernel runs at the
     * load address rounded up to kernel_alignment but not below
     * pref_address (= its LOAD_PHYSICAL_ADDR); others at pref_address.
     * Before 2.10 there is no init_size: assume the image runs in place.
     */
    uint64_t pm_size = k->len - k->setup_size;
    if (k->version >= 0x020A) {
        uint64_t pref = ld64_le(b + HDR_PREF_ADDRESS);
        uint64_t align = ld32_le(b + HDR_KERNEL_ALIGNMENT);
        uint64_t start = pref;
        if (b[HDR_RELOCATABLE_KERNEL] && align && !(align & (align - 1))) {
            start = (LB_KERNEL_ADDR + align - 1) & ~(align - 1);
            start = MAX(start, pref);
        }
        k->window_start = start;
        k->window_end = start + ld32_le(b + HDR_INIT_SIZE);
    } else {
        k->window_start = LB_KERNEL_ADDR;
        k->window_end = LB_KERNEL_ADDR + pm_size;
    }
    k->window_end = MAX(k->window_end, LB_KERNEL_ADDR + pm_size);
    return true;
}

/* Identity map of [0, 4 GiB) with 2 MiB pages: PML4[0] -> PDPT[0..3] -> 4 PDs. */
static bool linux_build_page_tables(Machine *m, GError **errp)
{
    uint8_t *pt = g_malloc0(6 * PAGE_SIZE);    /* PML4, PDPT, PD0-3: 0x2000-0x7FFF */
    st64_le(pt, LB_PDPT_ADDR | PTE_P | PTE_RW);
    for (int i = 0; i < 4; i++) {
        st64_le(pt + PAGE_SIZE + i * 8, (LB_PD_ADDR + i * PAGE_SIZE) | PTE_P | PTE_RW);
        for (int j = 0; j < 512; j++) {
            uint64_t phys = ((uint64_t)i * 512 + j) * PAGE_2M;
            st64_le(pt + (2 + i) * PAGE_SIZE + j * 8, phys | PTE_P | PTE_RW | PTE_PS);
        }
    }
    bool ok = boot_write(m, LB_PML4_ADDR, pt, 6 * PAGE_SIZE, "page tables", errp);
    g_free(pt);
    return ok;
}

static bool linux_write_gdt(Machine *m, bool long_mode, GError **errp)
{
    uint8_t gdt[32] = { 0 };
    st64_le(gdt + SEL_CODE, long_mode ? GDT_CODE64 : GDT_CODE32);
    st64_le(gdt + SEL_DATA, GDT_DATA);
    return boot_write(m, LB_GDT_ADDR, gdt, sizeof(gdt), "GDT", errp);
}

static void linux_set_cpu_state(Machine *m, bool long_mode, uint64_t entry)
{
    X86CPUState *s = &m->bsp_state;

    x86_cpu_state_reset(s, true);
    x86_cpu_state_flat32(s, (uint32_t)entry);
    s->gdt.base = LB_GDT_ADDR;
    s->gdt.limit = 4 * 8 - 1;
    /* No IDT: an early fault triple-faults visibly instead of running garbage. */
    s->idt.base = 0;
    s->idt.limit = 0;
    /* boot.rst: ESI/RSI = boot_params; EBP = EDI = EBX = 0 */
    memset(s->regs, 0, sizeof(s->regs));
    s->regs[R_ESI] = LB_ZERO_PAGE_ADDR;
    if (long_mode) {
        s->seg[SEG_CS].l = 1;
        s->seg[SEG_CS].db = 0;
        s->cr0 |= X86_CR0_PE | X86_CR0_PG;
        s->cr3 = LB_PML4_ADDR;
        s->cr4 = X86_CR4_PAE;
        s->efer = X86_EFER_LME | X86_EFER_LMA;
    }
    m->bsp_state_valid = true;
}

bool linux_boot_load(Machine *m, const char *kernel, const char *initrd,
                     const char *cmdline, GError **errp)
{
    LinuxImage k = { 0 };
    uint8_t *file = NULL, *rd = NULL, *bp = NULL;
    size_t file_len = 0, rd_len = 0;
    bool ok = false;

    if (!boot_read_file(kernel, "-kernel", &file, &file_len, errp))
        return false;
    k.buf = file;
    k.len = file_len;
    if (!linux_parse(&k, kernel, errp))
        goto out;

    uint64_t low = m->ram_below_4g;
    uint64_t pm_size = k.len - k.setup_size;
    if (k.window_end > low) {
        kestrel_set_error(errp, "-kernel %s: the kernel needs %" G_GUINT64_FORMAT " MiB of RAM "
                          "below 4 GiB to unpack itself, the machine has %" G_GUINT64_FORMAT
                          " MiB (use a larger -m)", kernel, (k.window_end + 0xFFFFF) >> 20,
                          low >> 20);
        goto out;
    }

    if (!cmdline)
        cmdline = "";
    size_t cmd_len = strlen(cmdline);
    /* The command line lives between 0x20000 and the EBDA. */
    uint64_t cmd_max = MIN((uint64_t)k.cmdline_size, PC_EBDA_BASE - LB_CMDLINE_ADDR - 1);
    if (cmd_len > cmd_max) {
        kestrel_set_error(errp, "-append: the command line is %zu bytes, this kernel accepts "
                          "at most %" G_GUINT64_FORMAT, cmd_len, cmd_max);
        goto out;
    }

    /* boot_params: zeroed, then the setup header copied from the file (boot.rst). */
    bp = g_malloc0(BP_SIZE);
    size_t hdr_copy_end = MIN(k.hdr_end, (size_t)BP_E820_TABLE);
    memcpy(bp + HDR_SETUP_SECTS, file + HDR_SETUP_SECTS, hdr_copy_end - HDR_SETUP_SECTS);
    /* The sentinel byte 0x1EF is outside the copied header, so it stays 0. */
    st16_le(bp + HDR_VID_MODE, VID_MODE_NORMAL);
    bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    /* Heap end as a 16-bit offset from the setup base, minus 0x200 (boot.rst). */
    st16_le(bp + HDR_HEAP_END_PTR, LB_CMDLINE_ADDR - LB_SETUP_ADDR - 0x200);
    st32_le(bp + HDR_CODE32_START, LB_KERNEL_ADDR);
    st32_le(bp + HDR_CMD_LINE_PTR, LB_CMDLINE_ADDR);
    if (k.version >= 0x0207)
        st32_le(bp + HDR_HARDWARE_SUBARCH, 0);      /* PC */
    if (k.version >= 0x0209)
        st64_le(bp + HDR_SETUP_DATA, 0);

    if (initrd) {
        if (!boot_read_file(initrd, "-initrd", &rd, &rd_len, errp))
            goto out;
        /* Highest byte the initrd may occupy: the header's limit and RAM below 4 GiB. */
        uint64_t top = MIN((uint64_t)k.initrd_addr_max, low - 1) + 1;
        uint64_t bottom = MAX(k.window_end, LB_KERNEL_ADDR + pm_size);
        uint64_t addr = rd_len <= top ? (top - rd_len) & ~(uint64_t)(PAGE_SIZE - 1) : 0;
        if (rd_len > top || addr < bottom) {
            kestrel_set_error(errp, "-initrd %s: %zu bytes do not fit between the kernel "
                              "(ends at 0x%" G_GINT64_MODIFIER "x) and the initrd limit "
                              "0x%" G_GINT64_MODIFIER "x (use a larger -m)", initrd, rd_len,
                              bottom, top - 1);
            goto out;
        }
        if (!boot_write(m, addr, rd, rd_len, "-initrd", errp))
            goto out;
        st32_le(bp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
        st32_le(bp + HDR_RAMDISK_SIZE, (uint32_t)rd_len);
    }

    E820Entry e820[BP_E820_MAX];
    size_t n = pc_e820_build(m, e820, BP_E820_MAX);
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;
        st64_le(e, e820[i].addr);
        st64_le(e + 8, e820[i].size);
        st32_le(e + 16, e820[i].type);
    }
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    /* E801-style "KiB above 1 MiB", for kernels that look before e820. */
    uint64_t alt_k = ((low - PC_HIGH_MEM_BASE) + m->ram_above_4g) >> 10;
    st32_le(bp + BP_ALT_MEM_K, (uint32_t)MIN(alt_k, (uint64_t)UINT32_MAX));

    bool long_mode = (k.xloadflags & XLF_KERNEL_64) != 0;
    if (!boot_setup_low_memory(m, errp) ||
        !boot_write(m, LB_KERNEL_ADDR, file + k.setup_size, pm_size, "-kernel", errp) ||
        !boot_write(m, LB_SETUP_ADDR, file, MIN(k.setup_size, (size_t)LB_SETUP_MAX),
                    "Linux setup code", errp) ||
        !boot_write(m, LB_CMDLINE_ADDR, cmdline, cmd_len + 1, "-append", errp) ||
        !boot_write(m, LB_ZERO_PAGE_ADDR, bp, BP_SIZE, "boot_params", errp) ||
        !linux_write_gdt(m, long_mode, errp) ||
        (long_mode && !linux_build_page_tables(m, errp)))
        goto out;

    /* boot.rst: the 64-bit entry is startup_32 + 0x200; the 32-bit one code32_start. */
    linux_set_cpu_state(m, long_mode, long_mode ? LB_KERNEL_ADDR + 0x200 : LB_KERNEL_ADDR);
    ok = true;
out:
    g_free(file);
    g_free(rd);
    g_free(bp);
    return ok;
}

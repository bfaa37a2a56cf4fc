/*
 * Multiboot 1 loader for -kernel without firmware.
 *
 * Spec: The Multiboot Specification 0.6.96 (§3.1 OS image format, §3.2
 * machine state, §3.3 boot information format), summarised in
 * docs/boot-protocols.md §7.  Behaviour a QEMU user expects is kept:
 * the info structure's command line is "<kernel path> <-append>", -initrd
 * is a comma-separated module list ("file args,file2", ",," = a literal
 * comma) loaded page-aligned after the kernel, and a video-mode request
 * (header flags bit 2) is ignored.  Both ELF (program headers, p_paddr;
 * ELF64 too, if every segment is below 4 GiB) and the a.out kludge
 * (flags bit 16) load.  Every header field is checked against the file and
 * guest RAM: a bogus image is an error, never a crash.
 *
 * Guest memory: the GDT at 0x1000 (flat code 0x10, data 0x18 -- the spec lets
 * GDTR be invalid, we give a usable one), the boot information (structure,
 * module list, memory map, strings) from 0x10000 up to the EBDA, the MP table
 * in the EBDA (direct_boot.h); the kernel must load at or above 1 MiB.
 * Not provided: boot_device (no BIOS disk), symbols, drives, APM, VBE/framebuffer.
 */
#include <string.h>

#include "kestrel/log.h"
#include "direct_boot.h"

/* §3.1.1 header */
#define MB_HEADER_MAGIC         0x1BADB002u
#define MB_SEARCH_END           8192
#define MB_HDR_MAGIC            0
#define MB_HDR_FLAGS            4
#define MB_HDR_CHECKSUM         8
#define MB_HDR_HEADER_ADDR      12
#define MB_HDR_LOAD_ADDR        16
#define MB_HDR_LOAD_END_ADDR    20
#define MB_HDR_BSS_END_ADDR     24
#define MB_HDR_ENTRY_ADDR       28
#define MB_HDR_AOUT_SIZE        32
/* §3.1.2 header flags: bits 0-15 must be honoured, 16-31 are optional. */
#define MB_FLAG_PAGE_ALIGN      (1u << 0)
#define MB_FLAG_MEMORY_INFO     (1u << 1)
#define MB_FLAG_VIDEO_MODE      (1u << 2)
#define MB_FLAG_AOUT_KLUDGE     (1u << 16)
#define MB_FLAGS_REQUIRED_MASK  0xFFFFu
#define MB_FLAGS_UNDERSTOOD     (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE)

/* §3.2 machine state */
#define MB_BOOTLOADER_MAGIC     0x2BADB002u

/* §3.3 boot information structure */
#define MBI_FLAGS               0
#define MBI_MEM_LOWER           4
#define MBI_MEM_UPPER           8
#define MBI_CMDLINE             16
#define MBI_MODS_COUNT          20
#define MBI_MODS_ADDR           24
#define MBI_MMAP_LENGTH         44
#define MBI_MMAP_ADDR           48
#define MBI_BOOT_LOADER_NAME    64
#define MBI_SIZE                116     /* through the framebuffer fields */
#define MBI_INFO_MEMORY         (1u << 0)
#define MBI_INFO_CMDLINE        (1u << 2)
#define MBI_INFO_MODS           (1u << 3)
#define MBI_INFO_MEM_MAP        (1u << 6)
#define MBI_INFO_LOADER_NAME    (1u << 9)
#define MB_MOD_SIZE             16      /* mod_start, mod_end, string, reserved */
#define MB_MMAP_ENTRY_SIZE      24      /* size, base_addr, length, type */

/* ELF (System V ABI; ELF-64 Object File Format) */
#define EI_CLASS                4
#define EI_DATA                 5
#define ELFCLASS32              1
#define ELFCLASS64              2
#define ELFDATA2LSB             1
#define EM_386                  3
#define EM_X86_64               62
#define PT_LOAD                 1
#define ELF_MAX_PHDRS           256

/* Our placement */
#define MB_GDT_ADDR             0x1000
#define MB_INFO_ADDR            0x10000
#define MB_INFO_END             PC_EBDA_BASE
#define MB_PAGE_SIZE            0x1000
#define GDT_CODE32              0x00CF9B000000FFFFull
#define GDT_DATA                0x00CF93000000FFFFull

/* One piece of the image: file bytes then zeroes, at a physical address. */
typedef struct MbSegment {
    uint64_t paddr, offset, filesz, memsz;
} MbSegment;

typedef struct MbImage {
    const uint8_t *buf;
    size_t len;
    size_t hdr_off;
    uint32_t flags;
    MbSegment seg[ELF_MAX_PHDRS];
    unsigned nseg;
    uint64_t entry;
} MbImage;

static bool multiboot_find_header(const uint8_t *buf, size_t len, size_t *off)
{
    /* §3.1: within the first 8192 bytes, 32-bit aligned, all 12 bytes inside. */
    size_t end = MIN(len, (size_t)MB_SEARCH_END);
    for (size_t o = 0; o + 12 <= end; o += 4) {
        uint32_t magic = ld32_le(buf + o + MB_HDR_MAGIC);
        if (magic != MB_HEADER_MAGIC)
            continue;
        uint32_t sum = magic + ld32_le(buf + o + MB_HDR_FLAGS) + ld32_le(buf + o + MB_HDR_CHECKSUM);
        if (sum == 0) {
            *off = o;
            return true;
        }
    }
    return false;
}

bool multiboot_probe(const uint8_t *buf, size_t len)
{
    size_t off;
    return buf && multiboot_find_header(buf, len, &off);
}

/* §3.1.3: the address fields say where the file's bytes go. */
static bool multiboot_parse_aout(MbImage *k, const char *path, GError **errp)
{
    const uint8_t *h = k->buf + k->hdr_off;
    if (k->hdr_off + MB_HDR_AOUT_SIZE > k->len) {
        kestrel_set_error(errp, "-kernel %s: Multiboot header truncated", path);
        return false;
    }
    uint64_t header_addr = ld32_le(h + MB_HDR_HEADER_ADDR);
    uint64_t load_addr = ld32_le(h + MB_HDR_LOAD_ADDR);
    uint64_t load_end = ld32_le(h + MB_HDR_LOAD_END_ADDR);
    uint64_t bss_end = ld32_le(h + MB_HDR_BSS_END_ADDR);

    if (load_addr > header_addr || header_addr - load_addr > k->hdr_off) {
        kestrel_set_error(errp, "-kernel %s: Multiboot load_addr 0x%" G_GINT64_MODIFIER "x does "
                          "not fit header_addr 0x%" G_GINT64_MODIFIER "x and the header's file "
                          "offset %zu", path, load_addr, header_addr, k->hdr_off);
        return false;
    }
    uint64_t file_off = k->hdr_off - (header_addr - load_addr);
    uint64_t size;
    if (load_end == 0) {
        size = k->len - file_off;                   /* 0 = the rest of the file */
    } else {
        if (load_end < load_addr || load_end - load_addr > k->len - file_off) {
            kestrel_set_error(errp, "-kernel %s: Multiboot load_end_addr 0x%" G_GINT64_MODIFIER
                              "x is outside the file", path, load_end);
            return false;
        }
        size = load_end - load_addr;
    }
    uint64_t memsz = size;
    if (bss_end != 0) {
        if (bss_end < load_addr + size) {
            kestrel_set_error(errp, "-kernel %s: Multiboot bss_end_addr 0x%" G_GINT64_MODIFIER
                              "x is below the end of the loaded image", path, bss_end);
            return false;
        }
        memsz = bss_end - load_addr;
    }
    k->seg[0] = (MbSegment){ load_addr, file_off, size, memsz };
    k->nseg = 1;
    k->entry = ld32_le(h + MB_HDR_ENTRY_ADDR);
    return true;
}

static bool multiboot_parse_elf(MbImage *k, const char *path, GError **errp)
{
    const uint8_t *b = k->buf;
    bool is64;

    if (k->len < 52 || memcmp(b, "\x7f" "ELF", 4) != 0) {
        kestrel_set_error(errp, "-kernel %s: Multiboot kernel is neither ELF nor uses the "
                          "a.out kludge (header flags bit 16)", path);
        return false;
    }
    if (b[EI_DATA] != ELFDATA2LSB ||
        !((b[EI_CLASS] == ELFCLASS32 && ld16_le(b + 18) == EM_386) ||
          (b[EI_CLASS] == ELFCLASS64 && ld16_le(b + 18) == EM_X86_64))) {
        kestrel_set_error(errp, "-kernel %s: Multiboot ELF is not a little-endian i386 or "
                          "x86-64 executable", path);
        return false;
    }
    is64 = b[EI_CLASS] == ELFCLASS64;
    if (is64 && k->len < 64) {
        kestrel_set_error(errp, "-kernel %s: ELF header truncated", path);
        return false;
    }
    uint64_t entry = is64 ? ld64_le(b + 24) : ld32_le(b + 24);
    uint64_t phoff = is64 ? ld64_le(b + 32) : ld32_le(b + 28);
    unsigned phentsize = ld16_le(b + (is64 ? 54 : 42));
    unsigned phnum = ld16_le(b + (is64 ? 56 : 44));
    unsigned phmin = is64 ? 56 : 32;

    if (phnum == 0 || phnum > ELF_MAX_PHDRS || phentsize < phmin || phoff > k->len ||
        (uint64_t)phnum * phentsize > k->len - phoff) {
        kestrel_set_error(errp, "-kernel %s: ELF program headers are missing or outside the "
                          "file", path);
        return false;
    }
    k->nseg = 0;
    bool entry_mapped = false;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = b + phoff + (uint64_t)i * phentsize;
        if (ld32_le(ph) != PT_LOAD)
            continue;
        uint64_t off, vaddr, paddr, filesz, memsz;
        if (is64) {
            off = ld64_le(ph + 8); vaddr = ld64_le(ph + 16); paddr = ld64_le(ph + 24);
            filesz = ld64_le(ph + 32); memsz = ld64_le(ph + 40);
        } else {
            off = ld32_le(ph + 4); vaddr = ld32_le(ph + 8); paddr = ld32_le(ph + 12);
            filesz = ld32_le(ph + 16); memsz = ld32_le(ph + 20);
        }
        if (memsz == 0)
            continue;
        if (filesz > memsz || off > k->len || filesz > k->len - off) {
            kestrel_set_error(errp, "-kernel %s: ELF segment %u lies outside the file", path, i);
            return false;
        }
        if (paddr >= PC_4G || memsz > PC_4G - paddr) {
            kestrel_set_error(errp, "-kernel %s: ELF segment %u at 0x%" G_GINT64_MODIFIER "x is "
                              "not below 4 GiB (Multiboot enters in 32-bit mode)", path, i, paddr);
            return false;
        }
        /* The entry is a virtual address: translate through its segment. */
        if (!entry_mapped && entry >= vaddr && entry - vaddr < memsz) {
            k->entry = entry - vaddr + paddr;
            entry_mapped = true;
        }
        k->seg[k->nseg++] = (MbSegment){ paddr, off, filesz, memsz };
    }
    if (k->nseg == 0) {
        kestrel_set_error(errp, "-kernel %s: ELF has no loadable segment", path);
        return false;
    }
    if (!entry_mapped)
        k->entry = entry;
    if (k->entry >= PC_4G) {
        kestrel_set_error(errp, "-kernel %s: entry point 0x%" G_GINT64_MODIFIER "x is not "
                          "below 4 GiB", path, k->entry);
        return false;
    }
    return true;
}

/* Split "-initrd" into module entries: ',' separates, ",," is a literal comma. */
static GPtrArray *multiboot_split_modules(const char *spec)
{
    GPtrArray *mods = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    for (const char *p = spec;; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',' || *p == '\0') {
            g_ptr_array_add(mods, g_string_free(cur, FALSE));
            if (*p == '\0')
                break;
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    return mods;
}

/* Append a NUL-terminated string to the info blob; return its guest address. */
static uint32_t blob_add_string(GByteArray *blob, const char *s)
{
    uint32_t addr = MB_INFO_ADDR + blob->len;
    g_byte_array_append(blob, (const guint8 *)s, strlen(s) + 1);
    return addr;
}

bool multiboot_load(Machine *m, const char *kernel, const char *cmdline,
                    const char *modules, GError **errp)
{
    MbImage *k = g_new0(MbImage, 1);
    uint8_t *file = NULL;
    size_t file_len = 0;
    GPtrArray *mods = NULL;
    GByteArray *blob = NULL;
    bool ok = false;

    if (!boot_read_file(kernel, "-kernel", &file, &file_len, errp))
        goto out;
    k->buf = file;
    k->len = file_len;
    if (!multiboot_find_header(file, file_len, &k->hdr_off)) {
        kestrel_set_error(errp, "-kernel %s: no Multiboot header in the first 8 KiB", kernel);
        goto out;
    }
    k->flags = ld32_le(file + k->hdr_off + MB_HDR_FLAGS);
    uint32_t unknown = k->flags & MB_FLAGS_REQUIRED_MASK & ~MB_FLAGS_UNDERSTOOD;
    if (unknown) {
        kestrel_set_error(errp, "-kernel %s: Multiboot kernel requires features (header flags "
                          "0x%x) this loader does not provide", kernel, unknown);
        goto out;
    }
    if (k->flags & MB_FLAG_VIDEO_MODE)
        LOG(LOG_UNIMP, "multiboot: video mode request ignored (no framebuffer info)\n");
    if (k->flags & MB_FLAG_AOUT_KLUDGE) {
        if (!multiboot_parse_aout(k, kernel, errp))
            goto out;
    } else if (!multiboot_parse_elf(k, kernel, errp)) {
        goto out;
    }

    /* Place and check every segment before writing anything. */
    uint64_t low = m->ram_below_4g;
    uint64_t kernel_end = 0;
    for (unsigned i = 0; i < k->nseg; i++) {
        MbSegment *s = &k->seg[i];
        if (s->paddr < PC_HIGH_MEM_BASE) {
            kestrel_set_error(errp, "-kernel %s: loads at 0x%" G_GINT64_MODIFIER "x, below "
                              "1 MiB where the loader keeps the boot information", kernel,
                              s->paddr);
            goto out;
        }
        if (s->paddr + s->memsz > low) {
            kestrel_set_error(errp, "-kernel %s: image ends at 0x%" G_GINT64_MODIFIER "x, beyond "
                              "the %" G_GUINT64_FORMAT " MiB of RAM below 4 GiB (use a larger -m)",
                              kernel, s->paddr + s->memsz, low >> 20);
            goto out;
        }
        kernel_end = MAX(kernel_end, s->paddr + s->memsz);
    }
    if (!boot_setup_low_memory(m, errp))
        goto out;
    for (unsigned i = 0; i < k->nseg; i++) {
        MbSegment *s = &k->seg[i];
        if (!boot_write(m, s->paddr, file + s->offset, s->filesz, "-kernel", errp) ||
            !boot_zero(m, s->paddr + s->filesz, s->memsz - s->filesz, "-kernel bss", errp))
            goto out;
    }

    /*
     * Boot information blob at MB_INFO_ADDR: the structure, the module list,
     * the memory map, then the strings.
     */
    E820Entry e820[32];
    size_t ne820 = pc_e820_build(m, e820, ARRAY_LEN(e820));
    mods = modules && *modules ? multiboot_split_modules(modules) : g_ptr_array_new();
    blob = g_byte_array_new();
    size_t mods_off = MBI_SIZE;
    size_t mmap_off = mods_off + mods->len * MB_MOD_SIZE;
    g_byte_array_set_size(blob, mmap_off + ne820 * MB_MMAP_ENTRY_SIZE);
    memset(blob->data, 0, blob->len);

    uint64_t next = (kernel_end + MB_PAGE_SIZE - 1) & ~(uint64_t)(MB_PAGE_SIZE - 1);
    for (guint i = 0; i < mods->len; i++) {
        const char *entry = g_ptr_array_index(mods, i);
        char *path = g_strndup(entry, strcspn(entry, " "));
        uint8_t *data = NULL;
        size_t size = 0;
        if (!*path) {
            kestrel_set_error(errp, "-initrd: module %u has no file name", i + 1);
            g_free(path);
            goto out;
        }
        bool read = boot_read_file(path, "-initrd", &data, &size, errp);
        g_free(path);
        if (!read)
            goto out;
        if (next + size > low) {
            kestrel_set_error(errp, "-initrd: module %s (%zu bytes) does not fit in RAM below "
                              "4 GiB after the kernel (use a larger -m)", entry, size);
            g_free(data);
            goto out;
        }
        bool wrote = boot_write(m, next, data, size, "-initrd", errp);
        g_free(data);
        if (!wrote)
            goto out;
        /* mod_end is exclusive, as QEMU and GRUB set it. */
        uint32_t string = blob_add_string(blob, entry);
        uint8_t *mod = blob->data + mods_off + i * MB_MOD_SIZE;
        st32_le(mod + 0, (uint32_t)next);
        st32_le(mod + 4, (uint32_t)(next + size));
        st32_le(mod + 8, string);
        next = (next + size + MB_PAGE_SIZE - 1) & ~(uint64_t)(MB_PAGE_SIZE - 1);
    }

    for (size_t i = 0; i < ne820; i++) {
        /* 'size' (20) counts the entry without itself (§3.3). */
        uint8_t *e = blob->data + mmap_off + i * MB_MMAP_ENTRY_SIZE;
        st32_le(e, MB_MMAP_ENTRY_SIZE - 4);
        st64_le(e + 4, e820[i].addr);
        st64_le(e + 12, e820[i].size);
        st32_le(e + 20, e820[i].type);
    }
    /* QEMU's convention: "<kernel path> <args>", the space even without args. */
    char *full_cmdline = g_strdup_printf("%s %s", kernel, cmdline ? cmdline : "");
    uint32_t cmdline_addr = blob_add_string(blob, full_cmdline);
    g_free(full_cmdline);
    uint32_t name_addr = blob_add_string(blob, "kestrel");
    /* The array may have moved while growing: take the pointer only now. */
    uint8_t *mbi = blob->data;

    st32_le(mbi + MBI_FLAGS, MBI_INFO_MEMORY | MBI_INFO_CMDLINE | MBI_INFO_MODS |
                             MBI_INFO_MEM_MAP | MBI_INFO_LOADER_NAME);
    /* Lower memory is the RAM below our EBDA; upper is from 1 MiB to the PCI hole. */
    st32_le(mbi + MBI_MEM_LOWER, PC_EBDA_BASE >> 10);
    st32_le(mbi + MBI_MEM_UPPER, (uint32_t)((low - PC_HIGH_MEM_BASE) >> 10));
    st32_le(mbi + MBI_CMDLINE, cmdline_addr);
    st32_le(mbi + MBI_MODS_COUNT, mods->len);
    st32_le(mbi + MBI_MODS_ADDR, MB_INFO_ADDR + mods_off);
    st32_le(mbi + MBI_MMAP_LENGTH, (uint32_t)(ne820 * MB_MMAP_ENTRY_SIZE));
    st32_le(mbi + MBI_MMAP_ADDR, MB_INFO_ADDR + mmap_off);
    st32_le(mbi + MBI_BOOT_LOADER_NAME, name_addr);

    if (MB_INFO_ADDR + blob->len > MB_INFO_END) {
        kestrel_set_error(errp, "-append/-initrd: boot information is %u bytes, more than the "
                          "%u bytes of low memory reserved for it", blob->len,
                          MB_INFO_END - MB_INFO_ADDR);
        goto out;
    }
    uint8_t gdt[32] = { 0 };
    st64_le(gdt + 0x10, GDT_CODE32);
    st64_le(gdt + 0x18, GDT_DATA);
    if (!boot_write(m, MB_INFO_ADDR, blob->data, blob->len, "Multiboot information", errp) ||
        !boot_write(m, MB_GDT_ADDR, gdt, sizeof(gdt), "GDT", errp))
        goto out;

    /* §3.2: EAX magic, EBX info, flat 32-bit protected mode, paging and IF off. */
    X86CPUState *s = &m->bsp_state;
    x86_cpu_state_reset(s, true);
    x86_cpu_state_flat32(s, (uint32_t)k->entry);
    memset(s->regs, 0, sizeof(s->regs));
    s->regs[R_EAX] = MB_BOOTLOADER_MAGIC;
    s->regs[R_EBX] = MB_INFO_ADDR;
    s->gdt.base = MB_GDT_ADDR;
    s->gdt.limit = sizeof(gdt) - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    m->bsp_state_valid = true;
    ok = true;
out:
    if (mods)
        g_ptr_array_free(mods, TRUE);
    if (blob)
        g_byte_array_free(blob, TRUE);
    g_free(file);
    g_free(k);
    return ok;
}

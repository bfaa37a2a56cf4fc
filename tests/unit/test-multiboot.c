/*
 * Multiboot 1 loader (hw/pc/multiboot.c): synthetic ELF and a.out-kludge
 * kernels are loaded into a RAM-only machine and the image, the boot
 * information structure and the entry state are checked against the
 * Multiboot Specification 0.6.96 §3; malformed images must be refused with
 * an error, never crash.
 */
#include "kestrel/boot.h"
#include "kestrel/machine.h"
#include "tests/testlib.h"

#include <string.h>
#include <unistd.h>

#define MiB (1024ull * 1024)

#define MB_MAGIC        0x1BADB002u
#define MBI_ADDR        0x10000     /* multiboot.c's placement */

static Machine *test_machine(uint64_t ram)
{
    Machine *m = g_new0(Machine, 1);
    m->cfg = g_new0(MachineConfig, 1);
    m->cfg->ram_size = ram;
    m->cfg->smp_cpus = 1;
    m->smp_cpus = 1;
    m->ram_below_4g = ram;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", ram, NULL);
    CHECK(m->ram != NULL);
    memory_region_add_subregion(m->system_memory, 0, m->ram, 0);
    m->as = address_space_new("memory", m->system_memory);
    return m;
}

static uint8_t *guest(Machine *m, hwaddr addr, uint64_t len)
{
    uint8_t *p = machine_ram_ptr(m, addr, len);
    CHECK_MSG(p != NULL, "guest 0x%" PRIx64 "+0x%" PRIx64 " is not RAM", addr, len);
    return p;
}

static char *write_tmp(const void *buf, size_t len)
{
    char *path = g_strdup("/tmp/kestrel-test-mb.XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, buf, len) == (ssize_t)len);
    close(fd);
    return path;
}

static void put_header(uint8_t *h, uint32_t flags)
{
    st32_le(h, MB_MAGIC);
    st32_le(h + 4, flags);
    st32_le(h + 8, -(MB_MAGIC + flags));
}

/*
 * ELF32: one PT_LOAD of 0x200 file bytes (header at +0x10) and 0x3000 of
 * memory, linked at virtual 0xC0200000 / physical 0x200000; entry virtual
 * 0xC0200040.
 */
#define ELF_SEG_OFF    0x100
#define ELF_SEG_FILESZ 0x200
#define ELF_SEG_MEMSZ  0x3000
#define ELF_PADDR      0x200000
#define ELF_VADDR      0xC0200000u

static uint8_t *synth_elf32(size_t *len)
{
    *len = ELF_SEG_OFF + ELF_SEG_FILESZ;
    uint8_t *b = g_malloc0(*len);
    memcpy(b, "\x7f" "ELF", 4);
    b[4] = 1; b[5] = 1; b[6] = 1;
    st16_le(b + 16, 2);             /* ET_EXEC */
    st16_le(b + 18, 3);             /* EM_386 */
    st32_le(b + 20, 1);
    st32_le(b + 24, ELF_VADDR + 0x40);
    st32_le(b + 28, 52);            /* e_phoff */
    st16_le(b + 40, 52);
    st16_le(b + 42, 32);
    st16_le(b + 44, 1);
    uint8_t *ph = b + 52;
    st32_le(ph + 0, 1);             /* PT_LOAD */
    st32_le(ph + 4, ELF_SEG_OFF);
    st32_le(ph + 8, ELF_VADDR);
    st32_le(ph + 12, ELF_PADDR);
    st32_le(ph + 16, ELF_SEG_FILESZ);
    st32_le(ph + 20, ELF_SEG_MEMSZ);
    put_header(b + ELF_SEG_OFF + 0x10, 0x3);
    for (int i = 0x40; i < ELF_SEG_FILESZ; i++)
        b[ELF_SEG_OFF + i] = (uint8_t)i;
    return b;
}

static void test_probe_finds_header_only_in_first_8k(void)
{
    uint8_t *b = g_malloc0(16384);
    CHECK(!multiboot_probe(b, 16384));
    put_header(b + 8180, 0);                        /* ends exactly at 8192 */
    CHECK(multiboot_probe(b, 16384));
    memset(b, 0, 16384);
    put_header(b + 8184, 0);                        /* crosses 8192 */
    CHECK(!multiboot_probe(b, 16384));
    memset(b, 0, 16384);
    put_header(b + 64, 0);
    st32_le(b + 64 + 8, 0);                         /* bad checksum */
    CHECK(!multiboot_probe(b, 16384));
    put_header(b + 66, 0);                          /* not 32-bit aligned */
    CHECK(!multiboot_probe(b, 16384));
    CHECK(!multiboot_probe(b, 5));
    g_free(b);
}

static void test_elf_load_info_and_entry_state(void)
{
    Machine *m = test_machine(64 * MiB);
    size_t len;
    uint8_t *elf = synth_elf32(&len);
    char *kernel = write_tmp(elf, len);
    /* Dirty the bss area: the loader must zero it (a reset reloads over old RAM). */
    memset(guest(m, ELF_PADDR + ELF_SEG_FILESZ, ELF_SEG_MEMSZ - ELF_SEG_FILESZ), 0xAA,
           ELF_SEG_MEMSZ - ELF_SEG_FILESZ);
    char *mod_a = write_tmp("hello", 5);
    char *mod_b = write_tmp("0123456789", 10);
    char *mods = g_strdup_printf("%s arg1,,x,%s", mod_a, mod_b);
    GError *err = NULL;
    CHECK_MSG(multiboot_load(m, kernel, "one two", mods, &err), "%s", err ? err->message : "");

    CHECK(memcmp(guest(m, ELF_PADDR, ELF_SEG_FILESZ), elf + ELF_SEG_OFF, ELF_SEG_FILESZ) == 0);
    const uint8_t *bss = guest(m, ELF_PADDR + ELF_SEG_FILESZ, ELF_SEG_MEMSZ - ELF_SEG_FILESZ);
    for (int i = 0; i < ELF_SEG_MEMSZ - ELF_SEG_FILESZ; i++)
        CHECK_MSG(bss[i] == 0, "bss byte %d is 0x%02x, expected 0", i, bss[i]);

    X86CPUState *s = &m->bsp_state;
    CHECK(m->bsp_state_valid);
    CHECK_EQ("EAX", 0x2BADB002, s->regs[R_EAX]);
    CHECK_EQ("EIP (virtual entry translated to physical)", ELF_PADDR + 0x40, s->rip);
    CHECK_EQ("CR0.PE", X86_CR0_PE, s->cr0 & X86_CR0_PE);
    CHECK_EQ("CR0.PG", 0, s->cr0 & X86_CR0_PG);
    CHECK_EQ("EFLAGS.IF", 0, s->rflags & X86_RFLAGS_IF);
    CHECK_EQ("CS.D", 1, s->seg[SEG_CS].db);
    CHECK_EQ("CS limit", 0xFFFFFFFF, s->seg[SEG_CS].limit);

    uint32_t mbi_addr = (uint32_t)s->regs[R_EBX];
    const uint8_t *mbi = guest(m, mbi_addr, 116);
    uint32_t flags = ld32_le(mbi);
    CHECK_EQ("mbi flags mem|cmdline|mods|mmap|loader", 0x24D, flags);
    CHECK_EQ("mem_lower (KiB below the EBDA)", 636, ld32_le(mbi + 4));
    CHECK_EQ("mem_upper", (64 * MiB - MiB) / 1024, ld32_le(mbi + 8));
    char *want_cmd = g_strdup_printf("%s one two", kernel);
    CHECK_STREQ("cmdline", want_cmd, (const char *)guest(m, ld32_le(mbi + 16), 1));
    CHECK_STREQ("boot_loader_name", "kestrel", (const char *)guest(m, ld32_le(mbi + 64), 1));

    CHECK_EQ("mods_count", 2, ld32_le(mbi + 20));
    const uint8_t *mod = guest(m, ld32_le(mbi + 24), 32);
    uint32_t a_start = ld32_le(mod), a_end = ld32_le(mod + 4);
    uint32_t b_start = ld32_le(mod + 16), b_end = ld32_le(mod + 20);
    CHECK_EQ("module 0 page aligned", 0, a_start & 0xFFF);
    CHECK_MSG(a_start >= ELF_PADDR + ELF_SEG_MEMSZ, "module 0 at 0x%x overlaps the kernel",
              a_start);
    CHECK_EQ("module 0 size", 5, a_end - a_start);
    CHECK(memcmp(guest(m, a_start, 5), "hello", 5) == 0);
    char *want_a = g_strdup_printf("%s arg1,x", mod_a);
    CHECK_STREQ("module 0 string (\",,\" is a comma)", want_a,
                (const char *)guest(m, ld32_le(mod + 8), 1));
    CHECK_EQ("module 1 page aligned", 0, b_start & 0xFFF);
    CHECK_MSG(b_start >= a_end, "module 1 overlaps module 0");
    CHECK_EQ("module 1 size", 10, b_end - b_start);
    CHECK(memcmp(guest(m, b_start, 10), "0123456789", 10) == 0);
    CHECK_STREQ("module 1 string", mod_b, (const char *)guest(m, ld32_le(mod + 24), 1));

    /* mmap mirrors the e820 map; 'size' at offset 0 excludes itself. */
    E820Entry e[8];
    size_t n = pc_e820_build(m, e, 8);
    uint32_t mmap_len = ld32_le(mbi + 44);
    const uint8_t *mm = guest(m, ld32_le(mbi + 48), mmap_len);
    size_t i = 0;
    for (uint32_t off = 0; off < mmap_len; i++) {
        CHECK(i < n);
        CHECK_EQ("mmap base", e[i].addr, ld64_le(mm + off + 4));
        CHECK_EQ("mmap length", e[i].size, ld64_le(mm + off + 12));
        CHECK_EQ("mmap type", e[i].type, ld32_le(mm + off + 20));
        off += ld32_le(mm + off) + 4;
    }
    CHECK_EQ("mmap entries", n, i);
    unlink(kernel); unlink(mod_a); unlink(mod_b);
}

/* Flat a.out-kludge image: header at file offset 0x20, loaded at 0x100000. */
static uint8_t *synth_aout(size_t *len, uint32_t load_end, uint32_t bss_end)
{
    *len = 0x400;
    uint8_t *b = g_malloc0(*len);
    for (size_t i = 0; i < *len; i++)
        b[i] = (uint8_t)(i * 13);
    uint8_t *h = b + 0x20;
    put_header(h, (1u << 16) | 0x2);
    st32_le(h + 12, 0x100020);      /* header_addr */
    st32_le(h + 16, 0x100000);      /* load_addr */
    st32_le(h + 20, load_end);
    st32_le(h + 24, bss_end);
    st32_le(h + 28, 0x100100);      /* entry_addr */
    return b;
}

static void test_aout_kludge_loads_file_and_bss(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b = synth_aout(&len, 0, 0x102000);
    char *kernel = write_tmp(b, len);
    memset(guest(m, 0x100400, 0x1C00), 0x55, 0x1C00);
    GError *err = NULL;
    CHECK_MSG(multiboot_load(m, kernel, NULL, NULL, &err), "%s", err ? err->message : "");
    CHECK(memcmp(guest(m, 0x100000, len), b, len) == 0);
    const uint8_t *bss = guest(m, 0x100400, 0x1C00);
    for (int i = 0; i < 0x1C00; i++)
        CHECK_MSG(bss[i] == 0, "bss byte %d not zeroed", i);
    CHECK_EQ("EIP (entry_addr)", 0x100100, m->bsp_state.rip);
    const uint8_t *mbi = guest(m, m->bsp_state.regs[R_EBX], 116);
    CHECK_EQ("mods_count", 0, ld32_le(mbi + 20));
    char *want = g_strdup_printf("%s ", kernel);   /* QEMU keeps the space */
    CHECK_STREQ("cmdline without -append", want, (const char *)guest(m, ld32_le(mbi + 16), 1));
    unlink(kernel);
}

static void test_aout_kludge_load_end_limits_the_copy(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b = synth_aout(&len, 0x100200, 0);
    char *kernel = write_tmp(b, len);
    memset(guest(m, 0x100200, 0x200), 0x77, 0x200);
    GError *err = NULL;
    CHECK_MSG(multiboot_load(m, kernel, NULL, NULL, &err), "%s", err ? err->message : "");
    CHECK(memcmp(guest(m, 0x100000, 0x200), b, 0x200) == 0);
    CHECK_EQ("byte after load_end untouched", 0x77, *guest(m, 0x100200, 1));
    unlink(kernel);
}

static void expect_error(Machine *m, const uint8_t *img, size_t len, const char *mods,
                         const char *needle)
{
    char *kernel = write_tmp(img, len);
    GError *err = NULL;
    bool ok = multiboot_load(m, kernel, NULL, mods, &err);
    unlink(kernel);
    CHECK_MSG(!ok, "load succeeded, expected an error containing \"%s\"", needle);
    CHECK_MSG(err && strstr(err->message, needle), "error \"%s\" does not mention \"%s\"",
              err ? err->message : "(none)", needle);
    CHECK(!m->bsp_state_valid);
}

static void test_bogus_aout_fields_are_errors(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b;

    b = synth_aout(&len, 0, 0);
    st32_le(b + 0x20 + 16, 0x100040);               /* load_addr > header_addr */
    expect_error(m, b, len, NULL, "load_addr");
    b = synth_aout(&len, 0, 0);
    st32_le(b + 0x20 + 16, 0x0FF000);               /* would start before the file */
    expect_error(m, b, len, NULL, "load_addr");
    b = synth_aout(&len, 0x100800, 0);              /* load_end beyond the file */
    expect_error(m, b, len, NULL, "load_end_addr");
    b = synth_aout(&len, 0x100200, 0x100100);       /* bss ends before the image */
    expect_error(m, b, len, NULL, "bss_end_addr");
    b = synth_aout(&len, 0, 0xFFFFF000u);           /* bss far beyond RAM */
    expect_error(m, b, len, NULL, "RAM");
    b = synth_aout(&len, 0, 0);
    st32_le(b + 0x20 + 12, 0x20);                   /* below 1 MiB */
    st32_le(b + 0x20 + 16, 0x0);
    expect_error(m, b, len, NULL, "1 MiB");
}

static void test_bogus_elf_is_an_error(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b;

    b = synth_elf32(&len);
    st32_le(b + 52 + 16, 0x10000);                  /* filesz beyond the file */
    st32_le(b + 52 + 20, 0x10000);
    expect_error(m, b, len, NULL, "outside the file");
    b = synth_elf32(&len);
    st32_le(b + 52 + 16, 0x400);                    /* filesz > memsz */
    st32_le(b + 52 + 20, 0x300);
    expect_error(m, b, len, NULL, "outside the file");
    b = synth_elf32(&len);
    st16_le(b + 44, 0);                             /* no program headers */
    expect_error(m, b, len, NULL, "program headers");
    b = synth_elf32(&len);
    st32_le(b + 28, 0xFFFFFFF0u);                   /* e_phoff outside the file */
    expect_error(m, b, len, NULL, "program headers");
    b = synth_elf32(&len);
    st32_le(b + 52 + 12, 0x3F000000);               /* paddr beyond 16 MiB of RAM */
    expect_error(m, b, len, NULL, "RAM");
    b = synth_elf32(&len);
    st32_le(b + 52 + 12, 0xFFFFF000u);              /* wraps past 4 GiB */
    expect_error(m, b, len, NULL, "4 GiB");
    b = synth_elf32(&len);
    st16_le(b + 18, 40);                            /* EM_ARM */
    expect_error(m, b, len, NULL, "i386");
    b = synth_elf32(&len);
    memcpy(b, "\x7f" "ELX", 4);                     /* neither ELF nor kludge */
    expect_error(m, b, len, NULL, "a.out kludge");
}

static void test_unknown_required_flag_is_refused(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b = synth_elf32(&len);
    put_header(b + ELF_SEG_OFF + 0x10, 0x3 | (1u << 5));
    expect_error(m, b, len, NULL, "requires features");
}

static void test_missing_module_is_an_error(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b = synth_elf32(&len);
    expect_error(m, b, len, "/nonexistent/module arg", "/nonexistent/module");
    expect_error(m, b, len, ",x", "no file name");
}

static void test_elf64_with_low_segments_loads(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len = 0x200;
    uint8_t *b = g_malloc0(len);
    memcpy(b, "\x7f" "ELF", 4);
    b[4] = 2; b[5] = 1; b[6] = 1;
    st16_le(b + 16, 2);
    st16_le(b + 18, 62);            /* EM_X86_64 */
    st64_le(b + 24, 0x100120);      /* entry */
    st64_le(b + 32, 64);            /* e_phoff */
    st16_le(b + 54, 56);
    st16_le(b + 56, 1);
    uint8_t *ph = b + 64;
    st32_le(ph, 1);
    st64_le(ph + 8, 0x100);         /* offset */
    st64_le(ph + 16, 0x100100);     /* vaddr */
    st64_le(ph + 24, 0x100100);     /* paddr */
    st64_le(ph + 32, 0x100);
    st64_le(ph + 40, 0x1000);
    put_header(b + 0x100, 0x2);
    char *kernel = write_tmp(b, len);
    GError *err = NULL;
    CHECK_MSG(multiboot_load(m, kernel, "", NULL, &err), "%s", err ? err->message : "");
    CHECK_EQ("EIP", 0x100120, m->bsp_state.rip);
    CHECK_EQ("header landed", MB_MAGIC, ld32_le(guest(m, 0x100100, 4)));
    unlink(kernel);
}

static void test_corrupted_images_never_crash(void)
{
    Machine *m = test_machine(16 * MiB);
    GRand *r = g_rand_new_with_seed(42);
    for (int iter = 0; iter < 400; iter++) {
        size_t len;
        uint8_t *b = iter & 1 ? synth_elf32(&len) : synth_aout(&len, 0, 0x102000);
        for (int k = 0; k < 3; k++) {
            /* Hit the ELF/program headers or the Multiboot header fields. */
            size_t off = iter & 1 ? (size_t)g_rand_int_range(r, 0, 84)
                                  : 0x2C + (size_t)g_rand_int_range(r, 0, 20);
            b[off] = (uint8_t)g_rand_int(r);
        }
        char *kernel = write_tmp(b, len);
        GError *err = NULL;
        if (!multiboot_load(m, kernel, "x", NULL, &err))
            CHECK(err != NULL);
        g_clear_error(&err);
        unlink(kernel);
        g_free(kernel);
        g_free(b);
    }
    g_rand_free(r);
}

static void test_direct_boot_picks_multiboot(void)
{
    Machine *m = test_machine(16 * MiB);
    size_t len;
    uint8_t *b = synth_aout(&len, 0, 0);
    m->cfg->kernel = write_tmp(b, len);
    m->cfg->append = g_strdup("hi");
    GError *err = NULL;
    CHECK_MSG(pc_direct_boot(m, &err), "%s", err ? err->message : "");
    CHECK_EQ("EAX", 0x2BADB002, m->bsp_state.regs[R_EAX]);
    unlink(m->cfg->kernel);
}

static const TestCase cases[] = {
    TEST_CASE(test_probe_finds_header_only_in_first_8k),
    TEST_CASE(test_elf_load_info_and_entry_state),
    TEST_CASE(test_aout_kludge_loads_file_and_bss),
    TEST_CASE(test_aout_kludge_load_end_limits_the_copy),
    TEST_CASE(test_bogus_aout_fields_are_errors),
    TEST_CASE(test_bogus_elf_is_an_error),
    TEST_CASE(test_unknown_required_flag_is_refused),
    TEST_CASE(test_missing_module_is_an_error),
    TEST_CASE(test_elf64_with_low_segments_loads),
    TEST_CASE(test_corrupted_images_never_crash),
    TEST_CASE(test_direct_boot_picks_multiboot),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("multiboot", cases, argc, argv);
}

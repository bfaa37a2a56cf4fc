/*
 * Direct Linux boot (hw/pc/linux_boot.c), the e820 map (hw/pc/e820.c), the
 * MP table (hw/pc/mptable.c) and the -kernel dispatcher: synthetic bzImage
 * files are loaded into a RAM-only machine and the zero page, guest memory
 * and boot CPU state are checked against the Linux x86 boot protocol
 * (Documentation/arch/x86/boot.rst) and MPS 1.4.
 */
#include "kestrel/boot.h"
#include "kestrel/machine.h"
#include "tests/testlib.h"

#include <string.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* Zero page offsets (zero-page.rst, boot.rst). */
#define BP_E820_ENTRIES     0x1E8
#define BP_SENTINEL         0x1EF
#define BP_E820_TABLE       0x2D0
#define HDR_VID_MODE        0x1FA
#define HDR_TYPE_OF_LOADER  0x210
#define HDR_LOADFLAGS       0x211
#define HDR_RAMDISK_IMAGE   0x218
#define HDR_RAMDISK_SIZE    0x21C
#define HDR_HEAP_END_PTR    0x224
#define HDR_CMD_LINE_PTR    0x228
#define HDR_INIT_SIZE       0x260
#define ZERO_PAGE           0x8000      /* where linux_boot.c puts it (its header comment) */
#define EBDA                0x9F000     /* reserved area: table at its start */
#define MPF_ADDR            0x9FFF0     /* floating pointer in its last 16 bytes */

/* A machine with only RAM, split at the PCI hole by the board's rule (QEMU's). */
static Machine *test_machine(uint64_t ram, int cpus)
{
    Machine *m = g_new0(Machine, 1);
    m->cfg = g_new0(MachineConfig, 1);
    m->cfg->ram_size = ram;
    m->cfg->smp_cpus = cpus;
    m->smp_cpus = cpus;
    m->ram_below_4g = ram >= 0xE0000000ull ? 0xC0000000ull : ram;
    m->ram_above_4g = ram - m->ram_below_4g;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", ram, NULL);
    CHECK(m->ram != NULL);
    memory_region_add_subregion(m->system_memory, 0,
        memory_region_new_alias("low", m->ram, 0, m->ram_below_4g), 0);
    if (m->ram_above_4g)
        memory_region_add_subregion(m->system_memory, 4 * GiB,
            memory_region_new_alias("high", m->ram, m->ram_below_4g, m->ram_above_4g), 0);
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
    char *path = g_strdup("/tmp/kestrel-test-lb.XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, buf, len) == (ssize_t)len);
    close(fd);
    return path;
}

/* A bzImage shaped like Debian's 6.1 (boot-protocols.md §2), with a small payload. */
#define SYN_SETUP_SECTS 7
#define SYN_SETUP_SIZE  ((SYN_SETUP_SECTS + 1) * 512)
#define SYN_PM_SIZE     0x10000

static uint8_t *synth_bzimage(size_t *len, uint16_t version, uint16_t xloadflags)
{
    *len = SYN_SETUP_SIZE + SYN_PM_SIZE;
    uint8_t *b = g_malloc0(*len);
    b[0x1EF] = 0xFF;                        /* the sentinel quirk: 0xFF in the file */
    b[0x1F1] = SYN_SETUP_SECTS;
    st16_le(b + 0x1FE, 0xAA55);
    b[0x200] = 0xEB;
    b[0x201] = 0x6A;                        /* header ends at 0x26C */
    st32_le(b + 0x202, 0x53726448);
    st16_le(b + 0x206, version);
    b[0x211] = 0x01;                        /* LOADED_HIGH */
    st32_le(b + 0x214, 0x100000);
    st32_le(b + 0x22C, 0x7FFFFFFF);
    st32_le(b + 0x230, 0x200000);
    b[0x234] = 1;
    b[0x235] = 21;
    st16_le(b + 0x236, xloadflags);
    st32_le(b + 0x238, 2047);
    st64_le(b + 0x258, 0x1000000);
    st32_le(b + HDR_INIT_SIZE, 0x2000000);  /* 32 MiB from 16 MiB */
    for (size_t i = 0; i < SYN_PM_SIZE; i++)
        b[SYN_SETUP_SIZE + i] = (uint8_t)(i * 7 + 3);
    return b;
}

static char *synth_bzimage_file(uint16_t version, uint16_t xloadflags)
{
    size_t len;
    uint8_t *b = synth_bzimage(&len, version, xloadflags);
    char *path = write_tmp(b, len);
    g_free(b);
    return path;
}

/* ---- e820 ---- */

static void check_e820(const E820Entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
    CHECK_EQ("e820 addr", addr, e->addr);
    CHECK_EQ("e820 size", size, e->size);
    CHECK_EQ("e820 type", type, e->type);
}

static void test_e820_128m_has_low_hole_and_ebda(void)
{
    Machine *m = test_machine(128 * MiB, 1);
    E820Entry e[16];
    size_t n = pc_e820_build(m, e, 16);
    CHECK_EQ("entries", 4, n);
    check_e820(&e[0], 0, EBDA, E820_RAM);
    check_e820(&e[1], EBDA, 0x1000, E820_RESERVED);
    check_e820(&e[2], 0x100000, 127 * MiB, E820_RAM);
    /* the accelerator's private pages below the BIOS flash (machine.h) */
    check_e820(&e[3], 0xFEFFC000, 0x4000, E820_RESERVED);
}

static void test_e820_3500m_stays_below_4g(void)
{
    /* QEMU keeps RAM under 3.5 GiB contiguous (pc-platform.md §3: -m 3500 -> 0xDAC00000 low). */
    Machine *m = test_machine(3500 * MiB, 1);
    E820Entry e[16];
    size_t n = pc_e820_build(m, e, 16);
    CHECK_EQ("entries", 4, n);
    check_e820(&e[2], 0x100000, 0xDAC00000ull - 0x100000, E820_RAM);
    check_e820(&e[3], 0xFEFFC000, 0x4000, E820_RESERVED);
}

static void test_e820_4g_splits_at_3g(void)
{
    Machine *m = test_machine(4 * GiB, 1);
    E820Entry e[16];
    size_t n = pc_e820_build(m, e, 16);
    CHECK_EQ("entries", 5, n);
    check_e820(&e[2], 0x100000, 3 * GiB - 0x100000, E820_RAM);
    check_e820(&e[3], 0xFEFFC000, 0x4000, E820_RESERVED);
    check_e820(&e[4], 4 * GiB, 1 * GiB, E820_RAM);
}

static void test_e820_truncates_to_max(void)
{
    Machine *m = test_machine(4 * GiB, 1);
    E820Entry e[2];
    CHECK_EQ("entries", 2, pc_e820_build(m, e, 2));
}

/* ---- MP table ---- */

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static void test_mptable_checksums_and_entries(void)
{
    Machine *m = test_machine(64 * MiB, 4);
    GError *err = NULL;
    CHECK_MSG(mptable_build(m, EBDA, 0x1000, &err), "%s", err ? err->message : "");
    /* Linux finds it in 639K-640K and in the EBDA's first KiB (0x40E -> 0x9FC00). */
    const uint8_t *mpf = guest(m, MPF_ADDR, 16);
    CHECK(memcmp(mpf, "_MP_", 4) == 0);
    CHECK_EQ("MPF length", 1, mpf[8]);
    CHECK_EQ("MPF spec_rev", 4, mpf[9]);
    CHECK_EQ("MPF checksum sum", 0, sum8(mpf, 16));
    uint32_t mpc_addr = ld32_le(mpf + 4);
    CHECK_EQ("MP config table address", EBDA, mpc_addr);
    const uint8_t *mpc = guest(m, mpc_addr, 44);
    CHECK(memcmp(mpc, "PCMP", 4) == 0);
    uint16_t len = ld16_le(mpc + 4);
    mpc = guest(m, mpc_addr, len);
    CHECK_EQ("PCMP checksum sum", 0, sum8(mpc, len));
    CHECK_EQ("LAPIC address", 0xFEE00000, ld32_le(mpc + 36));
    uint16_t count = ld16_le(mpc + 34);
    CHECK_EQ("entry count", 4 + 1 + 1 + 15 + 2, count);

    const uint8_t *p = mpc + 44;
    int cpus = 0, bsps = 0, ioapics = 0, ioints = 0, irq0_pin = -1, lint_extint = -1, lint_nmi = -1;
    bool irq2_seen = false;
    for (unsigned i = 0; i < count; i++) {
        CHECK_MSG(p < mpc + len, "entry %u beyond the table", i);
        switch (p[0]) {
        case 0:
            CHECK_EQ("processor APIC id", cpus, p[1]);
            CHECK(p[3] & 1);
            bsps += (p[3] & 2) != 0;
            if (p[3] & 2)
                CHECK_EQ("BSP APIC id", 0, p[1]);
            cpus++;
            p += 20;
            continue;
        case 1:
            CHECK(memcmp(p + 2, "ISA   ", 6) == 0);
            break;
        case 2:
            CHECK_EQ("IOAPIC id", 4, p[1]);
            CHECK_EQ("IOAPIC address", 0xFEC00000, ld32_le(p + 4));
            ioapics++;
            break;
        case 3:
            ioints++;
            if (p[5] == 0)
                irq0_pin = p[7];
            else if (p[5] == 2)
                irq2_seen = true;
            else
                CHECK_EQ("ISA IRQ identity pin", p[5], p[7]);
            CHECK_EQ("IOAPIC id of I/O interrupt", 4, p[6]);
            break;
        case 4:
            if (p[1] == 3)
                lint_extint = p[7];
            if (p[1] == 1)
                lint_nmi = p[7];
            break;
        default:
            CHECK_MSG(false, "unknown entry type %u", p[0]);
        }
        p += 8;
    }
    CHECK_EQ("processors", 4, cpus);
    CHECK_EQ("BSP flags", 1, bsps);
    CHECK_EQ("IOAPICs", 1, ioapics);
    CHECK_EQ("I/O interrupt entries", 15, ioints);
    CHECK_EQ("ISA IRQ0 -> IOAPIC pin", 2, irq0_pin);
    CHECK(!irq2_seen);
    CHECK_EQ("ExtINT on LINT", 0, lint_extint);
    CHECK_EQ("NMI on LINT", 1, lint_nmi);
}

static void test_mptable_too_small_is_an_error(void)
{
    Machine *m = test_machine(64 * MiB, 8);
    GError *err = NULL;
    CHECK(!mptable_build(m, EBDA, 64, &err));
    CHECK(err && strstr(err->message, "MP table"));
}

/* ---- Linux loader ---- */

static void test_bzimage_zero_page_and_64bit_entry(void)
{
    Machine *m = test_machine(128 * MiB, 2);
    char *kernel = synth_bzimage_file(0x020F, 0x7F);
    uint8_t rd[10000];
    for (size_t i = 0; i < sizeof(rd); i++)
        rd[i] = (uint8_t)(i ^ 0x5A);
    char *initrd = write_tmp(rd, sizeof(rd));
    GError *err = NULL;
    CHECK_MSG(linux_boot_load(m, kernel, initrd, "console=ttyS0 quiet", &err), "%s",
              err ? err->message : "");

    const uint8_t *bp = guest(m, ZERO_PAGE, 4096);
    CHECK_EQ("type_of_loader", 0xFF, bp[HDR_TYPE_OF_LOADER]);
    CHECK_EQ("loadflags (LOADED_HIGH|CAN_USE_HEAP)", 0x81, bp[HDR_LOADFLAGS]);
    CHECK_EQ("vid_mode", 0xFFFF, ld16_le(bp + HDR_VID_MODE));
    CHECK_EQ("sentinel", 0, bp[BP_SENTINEL]);
    CHECK_EQ("header copied: init_size", 0x2000000, ld32_le(bp + HDR_INIT_SIZE));
    CHECK_EQ("heap_end_ptr", 0xFE00, ld16_le(bp + HDR_HEAP_END_PTR));
    uint32_t cmd = ld32_le(bp + HDR_CMD_LINE_PTR);
    CHECK_STREQ("command line", "console=ttyS0 quiet", (const char *)guest(m, cmd, 20));

    uint32_t rd_addr = ld32_le(bp + HDR_RAMDISK_IMAGE);
    CHECK_EQ("ramdisk_size", sizeof(rd), ld32_le(bp + HDR_RAMDISK_SIZE));
    CHECK_EQ("ramdisk_image (top of RAM, page aligned)", (128 * MiB - sizeof(rd)) & ~0xFFFull,
             rd_addr);
    CHECK(memcmp(guest(m, rd_addr, sizeof(rd)), rd, sizeof(rd)) == 0);

    CHECK_EQ("e820_entries", 4, bp[BP_E820_ENTRIES]);
    const uint8_t *e = bp + BP_E820_TABLE + 2 * 20;
    CHECK_EQ("e820[2].addr", 0x100000, ld64_le(e));
    CHECK_EQ("e820[2].size", 127 * MiB, ld64_le(e + 8));
    CHECK_EQ("e820[2].type", 1, ld32_le(e + 16));

    const uint8_t *pm = guest(m, 0x100000, SYN_PM_SIZE);
    CHECK_EQ("kernel byte 0", 3, pm[0]);
    CHECK_EQ("kernel last byte", (uint8_t)((SYN_PM_SIZE - 1) * 7 + 3), pm[SYN_PM_SIZE - 1]);

    /* 64-bit boot protocol state */
    X86CPUState *s = &m->bsp_state;
    CHECK(m->bsp_state_valid);
    CHECK_EQ("RIP (startup_64)", 0x100200, s->rip);
    CHECK_EQ("RSI (boot_params)", ZERO_PAGE, s->regs[R_ESI]);
    CHECK_EQ("EFER", X86_EFER_LME | X86_EFER_LMA, s->efer);
    CHECK_EQ("CR0.PG|PE", X86_CR0_PG | X86_CR0_PE, s->cr0 & (X86_CR0_PG | X86_CR0_PE));
    CHECK_EQ("CR4.PAE", X86_CR4_PAE, s->cr4 & X86_CR4_PAE);
    CHECK_EQ("CS selector", 0x10, s->seg[SEG_CS].selector);
    CHECK_EQ("CS.L", 1, s->seg[SEG_CS].l);
    CHECK_EQ("CS.D", 0, s->seg[SEG_CS].db);
    CHECK_EQ("DS selector", 0x18, s->seg[SEG_DS].selector);
    CHECK_EQ("RFLAGS.IF", 0, s->rflags & X86_RFLAGS_IF);

    /* The GDT in guest memory matches the cached segments: 0x10 is 64-bit code. */
    uint64_t code = ld64_le(guest(m, s->gdt.base + 0x10, 8));
    CHECK_EQ("GDT[0x10] L bit", 1, (code >> 53) & 1);
    CHECK_EQ("GDT[0x18] type (data r/w)", 3, (ld64_le(guest(m, s->gdt.base + 0x18, 8)) >> 40) & 0xF);

    /* Walk the page tables: identity map with 2 MiB pages up to 4 GiB. */
    uint64_t probes[] = { 0, 0x100000, 0x1234567, 0x7FFFFFF, 0xBFFFF000ull, 0xFFFFF000ull };
    for (size_t i = 0; i < ARRAY_LEN(probes); i++) {
        uint64_t va = probes[i];
        uint64_t pml4e = ld64_le(guest(m, (s->cr3 & ~0xFFFull) + ((va >> 39) & 511) * 8, 8));
        CHECK_EQ("PML4E present", 1, pml4e & 1);
        uint64_t pdpte = ld64_le(guest(m, (pml4e & 0xFFFFFFFFF000ull) + ((va >> 30) & 511) * 8, 8));
        CHECK_EQ("PDPTE present", 1, pdpte & 1);
        uint64_t pde = ld64_le(guest(m, (pdpte & 0xFFFFFFFFF000ull) + ((va >> 21) & 511) * 8, 8));
        CHECK_EQ("PDE present|rw|ps", 0x83, pde & 0x83);
        CHECK_EQ("identity mapping", va, (pde & 0xFFFFFFE00000ull) | (va & 0x1FFFFF));
    }

    /* MP table and BDA pointer for Linux's search. */
    CHECK_EQ("BDA EBDA segment", 0x9FC0, ld16_le(guest(m, 0x40E, 2)));
    CHECK_EQ("BDA base memory KiB", 636, ld16_le(guest(m, 0x413, 2)));
    CHECK(memcmp(guest(m, MPF_ADDR, 4), "_MP_", 4) == 0);
    unlink(kernel);
    unlink(initrd);
}

static void test_bzimage_without_xlf_kernel_64_uses_32bit_entry(void)
{
    Machine *m = test_machine(128 * MiB, 1);
    char *kernel = synth_bzimage_file(0x020F, 0);
    GError *err = NULL;
    CHECK_MSG(linux_boot_load(m, kernel, NULL, NULL, &err), "%s", err ? err->message : "");
    X86CPUState *s = &m->bsp_state;
    CHECK_EQ("EIP (code32_start)", 0x100000, s->rip);
    CHECK_EQ("ESI", ZERO_PAGE, s->regs[R_ESI]);
    CHECK_EQ("EBX", 0, s->regs[R_EBX]);
    CHECK_EQ("CR0.PG", 0, s->cr0 & X86_CR0_PG);
    CHECK_EQ("CR0.PE", X86_CR0_PE, s->cr0 & X86_CR0_PE);
    CHECK_EQ("EFER", 0, s->efer);
    CHECK_EQ("CS.D", 1, s->seg[SEG_CS].db);
    CHECK_EQ("ramdisk_image without initrd", 0, ld32_le(guest(m, ZERO_PAGE + HDR_RAMDISK_IMAGE, 4)));
    CHECK_STREQ("empty command line", "",
                (const char *)guest(m, ld32_le(guest(m, ZERO_PAGE + HDR_CMD_LINE_PTR, 4)), 1));
    unlink(kernel);
}

static void test_initrd_respects_initrd_addr_max_on_4g_machine(void)
{
    /* 4 GiB: 3 GiB low; initrd_addr_max 0x7FFFFFFF keeps the initrd below 2 GiB. */
    Machine *m = test_machine(4 * GiB, 1);
    char *kernel = synth_bzimage_file(0x020F, 0x7F);
    uint8_t rd[5000] = { 1 };
    char *initrd = write_tmp(rd, sizeof(rd));
    GError *err = NULL;
    CHECK_MSG(linux_boot_load(m, kernel, initrd, "", &err), "%s", err ? err->message : "");
    const uint8_t *bp = guest(m, ZERO_PAGE, 4096);
    CHECK_EQ("ramdisk_image", (0x80000000ull - sizeof(rd)) & ~0xFFFull,
             ld32_le(bp + HDR_RAMDISK_IMAGE));
    CHECK_EQ("e820_entries", 5, bp[BP_E820_ENTRIES]);
    CHECK_EQ("e820[4].addr", 4 * GiB, ld64_le(bp + BP_E820_TABLE + 4 * 20));
    unlink(kernel);
    unlink(initrd);
}

static void expect_load_error(Machine *m, const char *kernel, const char *initrd,
                              const char *cmdline, const char *needle)
{
    GError *err = NULL;
    bool ok = linux_boot_load(m, kernel, initrd, cmdline, &err);
    CHECK_MSG(!ok, "load succeeded, expected an error containing \"%s\"", needle);
    CHECK_MSG(err && strstr(err->message, needle), "error \"%s\" does not mention \"%s\"",
              err ? err->message : "(none)", needle);
    CHECK(!m->bsp_state_valid);
}

static void test_initrd_too_big_is_an_error(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    char *kernel = synth_bzimage_file(0x020F, 0x7F);
    /* 64 MiB RAM, the kernel unpacks into 16-48 MiB: 20 MiB of initrd cannot fit. */
    size_t len = 20 * MiB;
    uint8_t *rd = g_malloc0(len);
    char *initrd = write_tmp(rd, len);
    expect_load_error(m, kernel, initrd, "", "-initrd");
    unlink(kernel);
    unlink(initrd);
}

static void test_kernel_needing_more_ram_is_an_error(void)
{
    Machine *m = test_machine(32 * MiB, 1);
    char *kernel = synth_bzimage_file(0x020F, 0x7F);
    expect_load_error(m, kernel, NULL, "", "RAM");
    unlink(kernel);
}

static void test_non_bzimage_is_rejected(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    uint8_t junk[4096];
    memset(junk, 0x90, sizeof(junk));
    char *path = write_tmp(junk, sizeof(junk));
    expect_load_error(m, path, NULL, "", "not a bzImage");
    unlink(path);
}

static void test_old_protocol_is_rejected(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    char *kernel = synth_bzimage_file(0x0201, 0);
    expect_load_error(m, kernel, NULL, "", "too old");
    unlink(kernel);
}

static void test_zimage_is_rejected(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    size_t len;
    uint8_t *b = synth_bzimage(&len, 0x020F, 0);
    b[0x211] = 0;                           /* not LOADED_HIGH */
    char *path = write_tmp(b, len);
    expect_load_error(m, path, NULL, "", "zImage");
    unlink(path);
    g_free(b);
}

static void test_truncated_bzimage_is_rejected(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    size_t len;
    uint8_t *b = synth_bzimage(&len, 0x020F, 0);
    char *path = write_tmp(b, SYN_SETUP_SIZE - 512);    /* cut inside the setup code */
    expect_load_error(m, path, NULL, "", "truncated");
    unlink(path);
    g_free(b);
}

static void test_overlong_command_line_is_an_error(void)
{
    Machine *m = test_machine(128 * MiB, 1);
    char *kernel = synth_bzimage_file(0x020F, 0x7F);
    char *cmd = g_strnfill(3000, 'x');      /* cmdline_size is 2047 */
    expect_load_error(m, kernel, NULL, cmd, "-append");
    unlink(kernel);
}

static void test_missing_kernel_file_is_an_error(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    expect_load_error(m, "/nonexistent/bzImage", NULL, "", "/nonexistent/bzImage");
}

static void test_corrupted_headers_never_crash(void)
{
    /* Flip header bytes at random: every load either succeeds or errors. */
    Machine *m = test_machine(128 * MiB, 1);
    size_t len;
    uint8_t *orig = synth_bzimage(&len, 0x020F, 0x7F);
    GRand *r = g_rand_new_with_seed(1234);
    for (int iter = 0; iter < 300; iter++) {
        uint8_t *b = g_memdup2(orig, len);
        for (int k = 0; k < 4; k++)
            b[0x1F1 + g_rand_int_range(r, 0, 0x7F)] = (uint8_t)g_rand_int(r);
        char *path = write_tmp(b, len);
        GError *err = NULL;
        if (!linux_boot_load(m, path, NULL, "x", &err))
            CHECK(err != NULL);
        g_clear_error(&err);
        unlink(path);
        g_free(path);
        g_free(b);
    }
    g_rand_free(r);
    g_free(orig);
}

static void test_debian_bzimage_loads_with_64bit_entry(void)
{
    /* The real kernel the boot tests use, when tests/guests/build-all has fetched it. */
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char *kernel = g_strdup_printf("%s/guests/bzImage", build);
    char *initrd = g_strdup_printf("%s/guests/initramfs.cpio.gz", build);
    if (access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0)
        test_skip("%s or the initramfs not built (make guests)", kernel);
    Machine *m = test_machine(1 * GiB, 2);
    GError *err = NULL;
    CHECK_MSG(linux_boot_load(m, kernel, initrd, "console=ttyS0", &err), "%s",
              err ? err->message : "");
    const uint8_t *bp = guest(m, ZERO_PAGE, 4096);
    CHECK_MSG(ld16_le(bp + 0x206) >= 0x020C, "protocol 0x%x", ld16_le(bp + 0x206));
    CHECK_EQ("RIP (64-bit entry)", 0x100200, m->bsp_state.rip);
    uint32_t rd = ld32_le(bp + HDR_RAMDISK_IMAGE);
    CHECK_EQ("initrd page aligned", 0, rd & 0xFFF);
    CHECK_MSG(rd + ld32_le(bp + HDR_RAMDISK_SIZE) <= 1 * GiB, "initrd beyond RAM");
    CHECK_MSG(rd >= 0x1000000 + ld32_le(bp + HDR_INIT_SIZE), "initrd inside the unpack window");
}

/*
 * End-to-end check of the loader's memory image with a real kernel, on a
 * machine without KVM: QEMU boots a tiny Multiboot stub that copies three
 * modules (our low 640 KiB, the loaded kernel, the initrd) to where the
 * loader put them, then sets the CPU state the loader chose (GDT, CR3,
 * CR4.PAE, EFER.LME, CR0.PG|PE, RSI) and jumps to the 64-bit entry.  With
 * acpi=off Linux must use our e820 map and MP table (2 CPUs).
 */
static const char stub_src[] =
    "    .text\n"                                    /* header first: inside the first 8 KiB */
    "    .align 4\n"
    "    .long 0x1BADB002, 0, -0x1BADB002\n"
    "    .code32\n"
    "    .globl _start\n"
    "_start:\n"
    "    cli\n"
    "    movl $stack_top, %esp\n"
    "    movl 24(%ebx), %ebp\n"                       /* mods_addr */
    "    movl $mods, %edi\n"
    "    movl %ebp, %esi\n"
    "    movl $12, %ecx\n"
    "    cld\n"
    "    rep movsl\n"                                 /* 3 entries: read before overwriting */
    "    movl mods+16, %esi; movl mods+20, %ecx; subl %esi, %ecx; movl $DEST1, %edi; rep movsb\n"
    "    movl mods+32, %esi; movl mods+36, %ecx; subl %esi, %ecx; movl $DEST2, %edi; rep movsb\n"
    "    movl mods+0, %esi; movl mods+4, %ecx; subl %esi, %ecx; movl $0, %edi; rep movsb\n"
    "    lgdt gdtr\n"
    "    movw $0x18, %ax\n"
    "    movw %ax, %ds; movw %ax, %es; movw %ax, %ss; movw %ax, %fs; movw %ax, %gs\n"
    "    movl $CR4V, %eax; movl %eax, %cr4\n"
    "    movl $CR3V, %eax; movl %eax, %cr3\n"
    "    movl $0xC0000080, %ecx; rdmsr; orl $EFERV, %eax; andl $~0x400, %eax; wrmsr\n"
    "    movl $CR0V, %eax; movl %eax, %cr0\n"
    "    movl $ZP, %esi\n"
    "    xorl %ebx, %ebx; xorl %ebp, %ebp; xorl %edi, %edi\n"
    "    ljmp $0x10, $ENTRY\n"
    "    .data\n"
    "gdtr: .word GDTL\n"
    "    .long GDTB\n"
    "mods: .skip 48\n"
    "    .bss\n"
    "    .skip 4096\n"
    "stack_top:\n";

static bool run_tool(const char *cmdline, char **out, int *status)
{
    GError *err = NULL;
    char *argv[] = { "/bin/sh", "-c", (char *)cmdline, NULL };
    bool ok = g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, out, NULL,
                           status, &err);
    g_clear_error(&err);
    return ok;
}

static void test_loaded_image_boots_debian_linux_under_qemu(void)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char *kernel = g_strdup_printf("%s/guests/bzImage", build);
    char *initrd = g_strdup_printf("%s/guests/initramfs.cpio.gz", build);
    if (access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0)
        test_skip("%s or the initramfs not built (make guests)", kernel);
    char *out = NULL;
    int status;
    if (!run_tool("command -v qemu-system-x86_64 && command -v as && command -v ld", &out,
                  &status) || status != 0)
        test_skip("needs qemu-system-x86_64 and binutils");

    Machine *m = test_machine(1 * GiB, 2);
    GError *err = NULL;
    const char *cmd = "console=ttyS0 acpi=off quiet kestrel.noshell "
                      "kestrel.cmd=\"echo NPROC=$(nproc); reboot -f\"";
    CHECK_MSG(linux_boot_load(m, kernel, initrd, cmd, &err), "%s", err ? err->message : "");
    X86CPUState *s = &m->bsp_state;
    const uint8_t *bp = guest(m, s->regs[R_ESI], 4096);
    uint32_t rd = ld32_le(bp + HDR_RAMDISK_IMAGE), rd_size = ld32_le(bp + HDR_RAMDISK_SIZE);
    gsize klen;
    gchar *kfile;
    CHECK(g_file_get_contents(kernel, &kfile, &klen, NULL));
    size_t pm_off = ((uint8_t)kfile[0x1F1] + 1) * 512;

    char *dir = g_dir_make_tmp("kestrel-lbq-XXXXXX", NULL);
    CHECK(dir != NULL);
    char *p_low = g_build_filename(dir, "low.bin", NULL);
    char *p_kern = g_build_filename(dir, "kern.bin", NULL);
    char *p_rd = g_build_filename(dir, "rd.bin", NULL);
    char *p_src = g_build_filename(dir, "stub.S", NULL);
    CHECK(g_file_set_contents(p_low, (char *)guest(m, 0, 0xA0000), 0xA0000, NULL));
    CHECK(g_file_set_contents(p_kern, (char *)guest(m, 0x100000, klen - pm_off), klen - pm_off,
                              NULL));
    CHECK(g_file_set_contents(p_rd, (char *)guest(m, rd, rd_size), rd_size, NULL));
    char *src = g_strdup_printf(
        "    .set DEST1, 0x100000\n    .set DEST2, 0x%x\n    .set ENTRY, 0x%" PRIx64 "\n"
        "    .set ZP, 0x%" PRIx64 "\n    .set CR0V, 0x%" PRIx64 "\n    .set CR3V, 0x%" PRIx64 "\n"
        "    .set CR4V, 0x%" PRIx64 "\n    .set EFERV, 0x%" PRIx64 "\n"
        "    .set GDTB, 0x%" PRIx64 "\n    .set GDTL, 0x%x\n%s",
        rd, s->rip, s->regs[R_ESI], s->cr0 & 0xFFFFFFFF, s->cr3, s->cr4, s->efer, s->gdt.base,
        s->gdt.limit, stub_src);
    CHECK(g_file_set_contents(p_src, src, -1, NULL));
    /* The stub runs from 96 MiB: above everything the loader placed except the initrd. */
    char *sh = g_strdup_printf(
        "cd %s && as --32 -o stub.o stub.S 2>&1 && "
        "ld -m elf_i386 -nostdlib -Ttext 0x6000000 -e _start -o stub.elf stub.o 2>&1 && "
        "timeout 180 qemu-system-x86_64 -accel tcg -m 1G -smp 2 -nodefaults -display none "
        "-serial stdio -monitor none -no-reboot -kernel stub.elf "
        "-initrd low.bin,kern.bin,rd.bin < /dev/null", dir);
    CHECK(run_tool(sh, &out, &status));
    CHECK_MSG(g_spawn_check_wait_status(status, NULL), "stub build or QEMU failed (status 0x%x): %.600s",
              status, out);
    CHECK_MSG(strstr(out, "KESTREL-INIT-OK") != NULL, "no init marker; serial: %.800s", out);
    CHECK_MSG(strstr(out, "NPROC=2") != NULL, "Linux did not bring up both CPUs from our MP "
              "table; serial: %.800s", out);
    char *rm = g_strdup_printf("rm -rf %s", dir);
    run_tool(rm, &out, &status);
}

/* ---- dispatcher ---- */

static void test_direct_boot_without_kernel_does_nothing(void)
{
    Machine *m = test_machine(16 * MiB, 1);
    GError *err = NULL;
    CHECK(pc_direct_boot(m, &err));
    CHECK(!m->bsp_state_valid);
    CHECK_MSG(!m->cpu_mtrr_valid, "MTRRs given without a direct boot (firmware programs them)");
}

static void test_direct_boot_rejects_unknown_format(void)
{
    Machine *m = test_machine(64 * MiB, 1);
    uint8_t junk[1024] = { 0x7F, 'E', 'L', 'F' };
    m->cfg->kernel = write_tmp(junk, sizeof(junk));
    GError *err = NULL;
    CHECK(!pc_direct_boot(m, &err));
    CHECK_MSG(err && strstr(err->message, "not a bzImage or Multiboot kernel"), "got \"%s\"",
              err ? err->message : "(none)");
    CHECK(!m->cpu_mtrr_valid);
    unlink(m->cfg->kernel);
}

static void test_direct_boot_picks_linux(void)
{
    Machine *m = test_machine(128 * MiB, 1);
    m->cfg->kernel = synth_bzimage_file(0x020F, 0x7F);
    m->cfg->append = g_strdup("root=/dev/null");
    GError *err = NULL;
    CHECK_MSG(pc_direct_boot(m, &err), "%s", err ? err->message : "");
    CHECK_EQ("RIP", 0x100200, m->bsp_state.rip);
    unlink(m->cfg->kernel);
}

/*
 * No firmware runs, so the loader hands every CPU the MTRRs SeaBIOS's
 * mtrr_setup would have left (else Linux skips PAT: "MTRRs disabled"):
 * enabled with fixed ranges, default WB; RAM below 640K WB, the VGA window
 * UC, C0000-FFFFF WP; the PCI hole from 2 GiB up UC in variable range 0.
 */
static void test_direct_boot_gives_cpus_firmware_mtrrs(void)
{
    Machine *m = test_machine(128 * MiB, 2);
    m->cfg->kernel = synth_bzimage_file(0x020F, 0x7F);
    GError *err = NULL;
    CHECK_MSG(pc_direct_boot(m, &err), "%s", err ? err->message : "");
    unlink(m->cfg->kernel);
    CHECK_MSG(m->cpu_mtrr_valid, "direct boot left the MTRRs to a firmware that does not run");
    const X86MTRRState *t = &m->cpu_mtrr;
    CHECK_EQ("MTRR_DEF_TYPE (E | FE | WB)", 0xc06, t->def_type);
    CHECK_EQ("FIX64K_00000 (WB)", 0x0606060606060606ull, t->fixed[0]);
    CHECK_EQ("FIX16K_80000 (WB)", 0x0606060606060606ull, t->fixed[1]);
    CHECK_EQ("FIX16K_A0000 (UC)", 0, t->fixed[2]);
    for (unsigned i = 3; i < X86_MTRR_FIXED_COUNT; i++)
        CHECK_EQ("FIX4K_xxxxx (WP)", 0x0505050505050505ull, t->fixed[i]);
    CHECK_EQ("fixed[10] is MSR 0x26F", 0x26f, x86_mtrr_fixed_msr(10));
    CHECK_EQ("PHYSBASE0 (2 GiB, UC)", 0x80000000ull, t->var[0]);
    /* Full 64-bit mask; each accelerator clips it to its MAXPHYADDR. */
    CHECK_EQ("PHYSMASK0 (2 GiB, V)", 0xFFFFFFFF80000800ull, t->var[1]);
    for (unsigned i = 2; i < 2 * X86_MTRR_VAR_COUNT; i++)
        CHECK_EQ("unused variable range", 0, t->var[i]);
}

/* Where the UC hole starts, as SeaBIOS picks it on the i440FX, and its split into aligned ranges. */
static void test_firmware_mtrrs_cover_the_pci_hole(void)
{
    X86MTRRState t;
    x86_mtrr_state_firmware(&t, 2 * GiB);                  /* at most 2 GiB: from 2 GiB */
    CHECK_EQ("2G: PHYSBASE0", 0x80000000ull, t.var[0]);
    CHECK_EQ("2G: no second range", 0, t.var[3]);
    x86_mtrr_state_firmware(&t, 3 * GiB);                  /* -m 4G (3 GiB low): from 3 GiB */
    CHECK_EQ("3G: PHYSBASE0", 0xC0000000ull, t.var[0]);
    CHECK_EQ("3G: PHYSMASK0", 0xFFFFFFFFC0000800ull, t.var[1]);
    CHECK_EQ("3G: no second range", 0, t.var[3]);
    /*
     * -m 3500M: the hole 0xDAC00000-4G is 4M + 16M + 64M + 512M, each range
     * naturally aligned (base & ~mask clear); no RAM below it is covered.
     */
    x86_mtrr_state_firmware(&t, 3500 * MiB);
    static const uint64_t base[] = { 0xDAC00000ull, 0xDB000000ull, 0xDC000000ull, 0xE0000000ull };
    static const uint64_t size[] = { 4 * MiB, 16 * MiB, 64 * MiB, 512 * MiB };
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ("3500M: PHYSBASEn", base[i], t.var[2 * i]);
        CHECK_EQ("3500M: PHYSMASKn", ~(size[i] - 1) | 0x800, t.var[2 * i + 1]);
    }
    CHECK_EQ("3500M: no fifth range", 0, t.var[9]);
}

static const TestCase cases[] = {
    TEST_CASE(test_e820_128m_has_low_hole_and_ebda),
    TEST_CASE(test_e820_3500m_stays_below_4g),
    TEST_CASE(test_e820_4g_splits_at_3g),
    TEST_CASE(test_e820_truncates_to_max),
    TEST_CASE(test_mptable_checksums_and_entries),
    TEST_CASE(test_mptable_too_small_is_an_error),
    TEST_CASE(test_bzimage_zero_page_and_64bit_entry),
    TEST_CASE(test_bzimage_without_xlf_kernel_64_uses_32bit_entry),
    TEST_CASE(test_initrd_respects_initrd_addr_max_on_4g_machine),
    TEST_CASE(test_initrd_too_big_is_an_error),
    TEST_CASE(test_kernel_needing_more_ram_is_an_error),
    TEST_CASE(test_non_bzimage_is_rejected),
    TEST_CASE(test_old_protocol_is_rejected),
    TEST_CASE(test_zimage_is_rejected),
    TEST_CASE(test_truncated_bzimage_is_rejected),
    TEST_CASE(test_overlong_command_line_is_an_error),
    TEST_CASE(test_missing_kernel_file_is_an_error),
    TEST_CASE(test_corrupted_headers_never_crash),
    TEST_CASE(test_debian_bzimage_loads_with_64bit_entry),
    TEST_CASE(test_loaded_image_boots_debian_linux_under_qemu),
    TEST_CASE(test_direct_boot_without_kernel_does_nothing),
    TEST_CASE(test_direct_boot_rejects_unknown_format),
    TEST_CASE(test_direct_boot_picks_linux),
    TEST_CASE(test_direct_boot_gives_cpus_firmware_mtrrs),
    TEST_CASE(test_firmware_mtrrs_cover_the_pci_hole),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("linux-boot", cases, argc, argv);
}

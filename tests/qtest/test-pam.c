/*
 * The BIOS flash and i440FX PAM shadowing (firmware-seabios.md §2-3):
 * bios-256k.bin at 4 GiB - 256 KiB and its last 128 KiB at 0xE0000, PAM
 * mode 0 showing the flash (writes dropped), mode 3 shadow RAM read-write,
 * mode 1 shadow RAM with writes dropped, 16 KiB granularity in
 * 0xC0000-0xEFFFF, PAM kept over a system reset, and -bios errors.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONFADD         0xcf8
#define CONFDATA        0xcfc
#define I440FX_PAM0     0x59

#define SEABIOS         "/usr/share/seabios/bios-256k.bin"
#define BIOS_SIZE       0x40000u
#define FLASH_BASE      (0x100000000ULL - BIOS_SIZE)

static uint8_t bios[BIOS_SIZE];

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void load_bios_or_skip(void)
{
    FILE *f = fopen(SEABIOS, "rb");
    if (!f)
        test_skip("%s not installed (Debian package seabios)", SEABIOS);
    size_t n = fread(bios, 1, sizeof(bios), f);
    int extra = fgetc(f);
    fclose(f);
    if (n != BIOS_SIZE || extra != EOF)
        test_skip("%s is not 256 KiB", SEABIOS);
}

static void pam_write(QTest *qt, int pam, uint8_t v)
{
    qtest_pci_cfg_writeb(qt, 0, I440FX_PAM0 + pam, v);
}

static uint8_t pam_read(QTest *qt, int pam)
{
    return qtest_pci_cfg_readb(qt, 0, I440FX_PAM0 + pam);
}

static void test_reset_vector_reads_the_flash(void)
{
    load_bios_or_skip();
    QTest *qt = qtest_start("");
    uint8_t buf[16];
    qtest_memread(qt, 0xfffffff0ULL, buf, 16);
    CHECK_MSG(memcmp(buf, bios + BIOS_SIZE - 16, 16) == 0,
              "0xFFFFFFF0 does not hold the last 16 bytes of %s", SEABIOS);
    qtest_memread(qt, FLASH_BASE, buf, 16);
    CHECK_MSG(memcmp(buf, bios, 16) == 0, "0xFFFC0000 does not hold the first bytes of the image");
    qtest_memread(qt, 0xffff0, buf, 16);
    CHECK_MSG(memcmp(buf, bios + BIOS_SIZE - 16, 16) == 0,
              "0xFFFF0 does not hold the last 16 bytes of %s (isa-bios alias)", SEABIOS);
    /* The alias covers the last 128 KiB: 0xE0000 = image offset 0x20000. */
    qtest_memread(qt, 0xe0000, buf, 16);
    CHECK_MSG(memcmp(buf, bios + BIOS_SIZE - 0x20000, 16) == 0,
              "0xE0000 does not hold image offset 0x20000");
    CHECK_EQ("PAM0 at power-on", 0x00, pam_read(qt, 0));
    qtest_quit(qt);
}

static void test_mode0_drops_writes_to_bios_area(void)
{
    load_bios_or_skip();
    QTest *qt = qtest_start("");
    uint8_t orig = bios[BIOS_SIZE - 16];
    qtest_writeb(qt, 0xffff0, (uint8_t)~orig);
    CHECK_EQ("0xFFFF0 after a write in PAM mode 0", orig, qtest_readb(qt, 0xffff0));
    qtest_writeb(qt, 0xfffffff0ULL, (uint8_t)~orig);
    CHECK_EQ("0xFFFFFFF0 after a write (flash is read-only)", orig,
             qtest_readb(qt, 0xfffffff0ULL));
    qtest_quit(qt);
}

static void test_mode3_shadow_ram_read_write(void)
{
    load_bios_or_skip();
    QTest *qt = qtest_start("");
    pam_write(qt, 0, 0x30);
    CHECK_EQ("PAM0 read back", 0x30, pam_read(qt, 0));
    qtest_writel(qt, 0xffff0, 0xdeadbeefu);
    CHECK_EQ("0xFFFF0 in PAM mode 3 (RAM)", 0xdeadbeefu, qtest_readl(qt, 0xffff0));
    CHECK_EQ("0xFFFFFFF0 still reads the flash", le32(bios + BIOS_SIZE - 16),
             qtest_readl(qt, 0xfffffff0ULL));
    /* PAM0 covers only 0xF0000-0xFFFFF: 0xE0000 still shows the flash and drops writes. */
    qtest_writeb(qt, 0xe0000, (uint8_t)~bios[BIOS_SIZE - 0x20000]);
    CHECK_EQ("0xE0000 with PAM5 still 0", bios[BIOS_SIZE - 0x20000], qtest_readb(qt, 0xe0000));
    qtest_quit(qt);
}

static void test_mode1_reads_ram_drops_writes(void)
{
    load_bios_or_skip();
    QTest *qt = qtest_start("");
    pam_write(qt, 0, 0x30);
    qtest_writel(qt, 0xf1000, 0x11223344u);
    pam_write(qt, 0, 0x10);
    CHECK_EQ("0xF1000 in PAM mode 1 reads RAM", 0x11223344u, qtest_readl(qt, 0xf1000));
    qtest_writel(qt, 0xf1000, 0x55667788u);
    CHECK_EQ("0xF1000 after a write in PAM mode 1 (dropped)", 0x11223344u,
             qtest_readl(qt, 0xf1000));
    /* Back to mode 0: the flash again; the RAM below keeps its value. */
    pam_write(qt, 0, 0x00);
    CHECK_EQ("0xF1000 in mode 0 shows the flash", le32(bios + BIOS_SIZE - 0x10000 + 0x1000),
             qtest_readl(qt, 0xf1000));
    pam_write(qt, 0, 0x30);
    CHECK_EQ("shadow RAM kept its value while hidden", 0x11223344u, qtest_readl(qt, 0xf1000));
    qtest_quit(qt);
}

static void test_option_rom_area_16k_segments(void)
{
    QTest *qt = qtest_start("");
    /* Mode 0 below 0xE0000: the (empty) option-ROM area, RAM hidden, writes dropped. */
    qtest_writel(qt, 0xc0000, 0xcafef00du);
    CHECK_EQ("0xC0000 in PAM mode 0", 0, qtest_readl(qt, 0xc0000));
    /* PAM1 low nibble: 0xC0000-0xC3FFF only. */
    pam_write(qt, 1, 0x03);
    qtest_writel(qt, 0xc0000, 0xcafef00du);
    qtest_writel(qt, 0xc3ffc, 0x12345678u);
    qtest_writel(qt, 0xc4000, 0x9abcdef0u);
    CHECK_EQ("0xC0000 with PAM1 = 0x03", 0xcafef00du, qtest_readl(qt, 0xc0000));
    CHECK_EQ("0xC3FFC with PAM1 = 0x03", 0x12345678u, qtest_readl(qt, 0xc3ffc));
    CHECK_EQ("0xC4000 (PAM1 high nibble still 0)", 0, qtest_readl(qt, 0xc4000));
    /* PAM6 high nibble: 0xEC000-0xEFFFF. */
    pam_write(qt, 6, 0x30);
    qtest_writel(qt, 0xec000, 0x0badcafeu);
    CHECK_EQ("0xEC000 with PAM6 = 0x30", 0x0badcafeu, qtest_readl(qt, 0xec000));
    qtest_quit(qt);
}

static void test_pam_survives_system_reset(void)
{
    load_bios_or_skip();
    QTest *qt = qtest_start("");
    pam_write(qt, 0, 0x30);
    qtest_writel(qt, 0xffff0, 0xfeedfaceu);
    pam_write(qt, 0, 0x10);
    qtest_system_reset(qt);
    CHECK_EQ("PAM0 after a system reset (kept, as on QEMU)", 0x10, pam_read(qt, 0));
    CHECK_EQ("0xFFFF0 after a system reset: shadow RAM", 0xfeedfaceu, qtest_readl(qt, 0xffff0));
    CHECK_EQ("0xFFFFFFF0 after a system reset: the flash", le32(bios + BIOS_SIZE - 16),
             qtest_readl(qt, 0xfffffff0ULL));
    qtest_quit(qt);
}

static void test_bogus_pam_values_do_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (int v = 0; v < 256; v += 7)
        for (int p = 0; p < 7; p++) {
            pam_write(qt, p, (uint8_t)v);
            qtest_readl(qt, 0xc0000 + (uint32_t)p * 0x8000);
            qtest_writel(qt, 0xc0000 + (uint32_t)p * 0x8000, (uint32_t)v);
        }
    pam_write(qt, 0, 0xff);
    CHECK_EQ("PAM0 reserved bits read 0", 0x30, pam_read(qt, 0));
    pam_write(qt, 3, 0xff);
    CHECK_EQ("PAM3 reserved bits read 0", 0x33, pam_read(qt, 3));
    /* A dword write over 0x58-0x5B and a word straddling into PAM. */
    qtest_outl(qt, CONFADD, 0x80000058u);
    qtest_outl(qt, CONFDATA, 0xffffffffu);
    qtest_outw(qt, CONFDATA + 1, 0xffff);
    qtest_writel(qt, 0xf0000, 0x01020304u);
    CHECK_EQ("0xF0000 with PAM0 = 0x30", 0x01020304u, qtest_readl(qt, 0xf0000));
    qtest_quit(qt);
}

static void test_bios_size_not_64k_multiple_is_refused(void)
{
    char path[] = "/tmp/kestrel-bios-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    static uint8_t junk[0x10001];
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    const char *args[] = { "-bios", path, NULL };
    qtest_expect_user_error(args, "64 KiB");
    unlink(path);
}

static void test_missing_bios_is_refused(void)
{
    const char *args[] = { "-bios", "/nonexistent/bios.bin", NULL };
    qtest_expect_user_error(args, "/nonexistent/bios.bin");
}

static const TestCase cases[] = {
    TEST_CASE(test_reset_vector_reads_the_flash),
    TEST_CASE(test_mode0_drops_writes_to_bios_area),
    TEST_CASE(test_mode3_shadow_ram_read_write),
    TEST_CASE(test_mode1_reads_ram_drops_writes),
    TEST_CASE(test_option_rom_area_16k_segments),
    TEST_CASE(test_pam_survives_system_reset),
    TEST_CASE(test_bogus_pam_values_do_not_crash),
    TEST_CASE(test_bios_size_not_64k_multiple_is_refused),
    TEST_CASE(test_missing_bios_is_refused),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pam", cases, argc, argv);
}

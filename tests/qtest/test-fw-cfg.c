/*
 * fw_cfg (hw/pc/fw_cfg.c) and what the board puts in it (hw/pc/pc_fw_cfg.c):
 * the traditional and DMA interfaces per QEMU's docs/specs/fw_cfg.rst, the
 * sorted big-endian file directory, reads past the end, DMA errors for
 * addresses outside RAM, -fw_cfg and -boot.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FW_CFG_SELECTOR     0x510
#define FW_CFG_DATA         0x511
#define FW_CFG_DMA_HIGH     0x514
#define FW_CFG_DMA_LOW      0x518

#define KEY_SIGNATURE       0x00
#define KEY_ID              0x01
#define KEY_NOGRAPHIC       0x04
#define KEY_NB_CPUS         0x05
#define KEY_BOOT_MENU       0x0e
#define KEY_MAX_CPUS        0x0f
#define KEY_FILE_DIR        0x19
#define KEY_FILE_FIRST      0x20

#define DMA_CTL_ERROR       0x01
#define DMA_CTL_READ        0x02
#define DMA_CTL_SKIP        0x04
#define DMA_CTL_SELECT      0x08
#define DMA_CTL_WRITE       0x10

#define CMOS_INDEX          0x70
#define CMOS_DATA           0x71

#define DESC                0x1000      /* descriptor in guest RAM */
#define BUF                 0x2000      /* DMA buffer */

static void cfg_select(QTest *qt, uint16_t key)
{
    qtest_outw(qt, FW_CFG_SELECTOR, key);
}

static void cfg_read(QTest *qt, void *buf, size_t n)
{
    uint8_t *b = buf;
    for (size_t i = 0; i < n; i++)
        b[i] = qtest_inb(qt, FW_CFG_DATA);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* Look a file up in the directory: selector and size, or false. */
static bool cfg_find_file(QTest *qt, const char *name, uint16_t *sel, uint32_t *size)
{
    uint8_t cnt[4], e[64];
    cfg_select(qt, KEY_FILE_DIR);
    cfg_read(qt, cnt, 4);
    for (uint32_t i = 0; i < be32(cnt); i++) {
        cfg_read(qt, e, 64);
        if (!strncmp((char *)e + 8, name, 56)) {
            *sel = (uint16_t)(e[4] << 8 | e[5]);
            *size = be32(e);
            return true;
        }
    }
    return false;
}

/* A whole file (NUL-terminated for convenience); NULL if absent. */
static uint8_t *cfg_read_file(QTest *qt, const char *name, uint32_t *size)
{
    uint16_t sel;
    if (!cfg_find_file(qt, name, &sel, size))
        return NULL;
    uint8_t *buf = calloc(1, *size + 1);
    cfg_select(qt, sel);
    cfg_read(qt, buf, *size);
    return buf;
}

static void dma_desc(QTest *qt, uint64_t at, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t d[16];
    for (int i = 0; i < 4; i++) {
        d[i] = (uint8_t)(control >> (24 - 8 * i));
        d[4 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++)
        d[8 + i] = (uint8_t)(addr >> (56 - 8 * i));
    qtest_memwrite(qt, at, d, sizeof(d));
}

/* Start a transfer the way SeaBIOS does: the byte-swapped address at 0x518. */
static void dma_kick(QTest *qt, uint64_t desc)
{
    qtest_outl(qt, FW_CFG_DMA_HIGH, __builtin_bswap32((uint32_t)(desc >> 32)));
    qtest_outl(qt, FW_CFG_DMA_LOW, __builtin_bswap32((uint32_t)desc));
}

static uint32_t dma_control(QTest *qt, uint64_t desc)
{
    uint8_t c[4];
    qtest_memread(qt, desc, c, 4);
    return be32(c);
}

static uint8_t cmos_read(QTest *qt, uint8_t idx)
{
    qtest_outb(qt, CMOS_INDEX, idx);
    return qtest_inb(qt, CMOS_DATA);
}

/* ---- Traditional interface ---- */

static void test_signature_reads_qemu(void)
{
    QTest *qt = qtest_start("");
    char sig[5] = { 0 };
    cfg_select(qt, KEY_SIGNATURE);
    cfg_read(qt, sig, 4);
    CHECK_STREQ("signature", "QEMU", sig);
    /* An 8-bit read of the selector port also streams data (QEMU's combined port). */
    cfg_select(qt, KEY_SIGNATURE);
    CHECK_EQ("byte read at 0x510", 'Q', qtest_inb(qt, FW_CFG_SELECTOR));
    CHECK_EQ("then 0x511", 'E', qtest_inb(qt, FW_CFG_DATA));
    qtest_quit(qt);
}

static void test_id_has_traditional_and_dma(void)
{
    QTest *qt = qtest_start("");
    uint8_t id[4];
    cfg_select(qt, KEY_ID);
    cfg_read(qt, id, 4);
    CHECK_EQ("FW_CFG_ID (LE)", 3, id[0] | id[1] << 8 | id[2] << 16 | (uint32_t)id[3] << 24);
    qtest_quit(qt);
}

static void test_file_dir_sorted_big_endian(void)
{
    QTest *qt = qtest_start("");
    uint8_t cnt[4], e[64];
    char prev[57] = "";
    cfg_select(qt, KEY_FILE_DIR);
    cfg_read(qt, cnt, 4);
    uint32_t n = be32(cnt);
    CHECK_MSG(n >= 8 && n < 100, "file count %u (big-endian) out of range", n);
    for (uint32_t i = 0; i < n; i++) {
        cfg_read(qt, e, 64);
        char name[57] = { 0 };
        memcpy(name, e + 8, 56);
        CHECK_EQ("selector (big-endian)", KEY_FILE_FIRST + i, e[4] << 8 | e[5]);
        CHECK_MSG(strcmp(prev, name) < 0, "directory not sorted: \"%s\" before \"%s\"", prev,
                  name);
        strcpy(prev, name);
    }
    /* Sizes are big-endian too: the RSDP file is 36 bytes. */
    uint16_t sel;
    uint32_t size;
    CHECK(cfg_find_file(qt, "etc/acpi/rsdp", &sel, &size));
    CHECK_EQ("etc/acpi/rsdp size", 36, size);
    qtest_quit(qt);
}

static void test_read_past_end_is_zero(void)
{
    QTest *qt = qtest_start("");
    uint8_t b[8];
    memset(b, 0xAA, sizeof(b));
    cfg_select(qt, KEY_SIGNATURE);
    cfg_read(qt, b, 8);
    CHECK_EQ("byte 3", 'U', b[3]);
    for (int i = 4; i < 8; i++)
        CHECK_EQ("byte past the end", 0, b[i]);
    /* An unknown selector is an empty item (SeaBIOS selects 0x8001). */
    cfg_select(qt, 0x8001);
    CHECK_EQ("unknown selector", 0, qtest_inb(qt, FW_CFG_DATA));
    cfg_select(qt, 0x7fff);
    CHECK_EQ("file selector past the last file", 0, qtest_inb(qt, FW_CFG_DATA));
    qtest_quit(qt);
}

static void test_cpu_count_keys(void)
{
    QTest *qt = qtest_start("-smp 4");
    uint8_t b[2];
    cfg_select(qt, KEY_NB_CPUS);
    cfg_read(qt, b, 2);
    CHECK_EQ("NB_CPUS", 4, b[0] | b[1] << 8);
    cfg_select(qt, KEY_MAX_CPUS);
    cfg_read(qt, b, 2);
    CHECK_EQ("MAX_CPUS", 4, b[0] | b[1] << 8);
    cfg_select(qt, KEY_NOGRAPHIC);
    cfg_read(qt, b, 2);
    CHECK_EQ("NOGRAPHIC without -nographic", 0, b[0] | b[1] << 8);
    qtest_quit(qt);
}

static void test_e820_file_has_low_ram(void)
{
    QTest *qt = qtest_start("-m 128");
    uint32_t size;
    uint8_t *f = cfg_read_file(qt, "etc/e820", &size);
    CHECK_MSG(f != NULL, "etc/e820 missing");
    CHECK_MSG(size >= 20 && size % 20 == 0, "etc/e820 size %u", size);
    uint64_t addr = 0, len = 0;
    for (int i = 7; i >= 0; i--) {
        addr = addr << 8 | f[i];
        len = len << 8 | f[8 + i];
    }
    CHECK_EQ("first entry address", 0, addr);
    CHECK_EQ("first entry length", 128u << 20, len);
    CHECK_EQ("first entry type", 1, f[16]);
    free(f);
    qtest_quit(qt);
}

static void test_acpi_and_smbios_files(void)
{
    QTest *qt = qtest_start("");
    uint16_t sel;
    uint32_t size;
    CHECK(cfg_find_file(qt, "etc/table-loader", &sel, &size));
    CHECK_MSG(size > 0 && size % 128 == 0, "table-loader size %u", size);
    CHECK(cfg_find_file(qt, "etc/acpi/tables", &sel, &size));
    CHECK_MSG(size > 1000, "etc/acpi/tables size %u", size);
    CHECK(cfg_find_file(qt, "etc/smbios/smbios-anchor", &sel, &size));
    CHECK_EQ("smbios-anchor size", 31, size);
    uint8_t anchor[31];
    cfg_select(qt, sel);
    cfg_read(qt, anchor, 31);
    CHECK(!memcmp(anchor, "_SM_", 4));
    uint32_t tsize;
    CHECK(cfg_find_file(qt, "etc/smbios/smbios-tables", &sel, &tsize));
    CHECK_EQ("smbios table length = file size", tsize, anchor[22] | anchor[23] << 8);
    CHECK(cfg_find_file(qt, "etc/boot-fail-wait", &sel, &size));
    CHECK_EQ("boot-fail-wait size", 4, size);
    qtest_quit(qt);
}

/* ---- DMA ---- */

static void test_dma_signature_register(void)
{
    QTest *qt = qtest_start("");
    /* "QEMU CFG" big-endian: port 0x514 holds 'Q'. */
    CHECK_EQ("inl 0x514", 0x554D4551u, qtest_inl(qt, FW_CFG_DMA_HIGH));
    CHECK_EQ("inl 0x518", 0x47464320u, qtest_inl(qt, FW_CFG_DMA_LOW));
    qtest_quit(qt);
}

static void test_dma_select_and_read(void)
{
    QTest *qt = qtest_start("");
    char buf[8] = { 0 };
    qtest_memwrite(qt, BUF, "xxxxxxx", 8);
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 4, BUF);
    dma_kick(qt, DESC);
    CHECK_EQ("control after transfer", 0, dma_control(qt, DESC));
    qtest_memread(qt, BUF, buf, 7);
    CHECK_STREQ("DMA read", "QEMUxxx", buf);
    qtest_quit(qt);
}

static void test_dma_skip_then_read(void)
{
    QTest *qt = qtest_start("");
    char buf[3] = { 0 };
    cfg_select(qt, KEY_SIGNATURE);
    dma_desc(qt, DESC, DMA_CTL_SKIP, 2, 0);
    dma_kick(qt, DESC);
    CHECK_EQ("skip control", 0, dma_control(qt, DESC));
    dma_desc(qt, DESC, DMA_CTL_READ, 2, BUF);
    dma_kick(qt, DESC);
    qtest_memread(qt, BUF, buf, 2);
    CHECK_STREQ("after skipping 2", "MU", buf);
    /* The traditional interface shares the offset: the item is now exhausted. */
    CHECK_EQ("data port after the end", 0, qtest_inb(qt, FW_CFG_DATA));
    qtest_quit(qt);
}

static void test_dma_read_past_end_zero_fills(void)
{
    QTest *qt = qtest_start("");
    uint8_t buf[16];
    memset(buf, 0xAA, sizeof(buf));
    qtest_memwrite(qt, BUF, buf, sizeof(buf));
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 12, BUF);
    dma_kick(qt, DESC);
    CHECK_EQ("control", 0, dma_control(qt, DESC));
    qtest_memread(qt, BUF, buf, sizeof(buf));
    CHECK_EQ("byte 3", 'U', buf[3]);
    for (int i = 4; i < 12; i++)
        CHECK_EQ("zero fill past the item", 0, buf[i]);
    CHECK_EQ("untouched after the length", 0xAA, buf[12]);
    qtest_quit(qt);
}

static void test_dma_buffer_outside_ram_sets_error(void)
{
    QTest *qt = qtest_start("-m 128");
    /* The PCI hole: not RAM. */
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 4, 0xF0000000u);
    dma_kick(qt, DESC);
    CHECK_EQ("control (error bit)", DMA_CTL_ERROR, dma_control(qt, DESC));
    /* Crossing the end of RAM is refused too, and writes nothing. */
    qtest_writel(qt, 0x7fffffc, 0x11223344);
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 8, 0x7fffffc);
    dma_kick(qt, DESC);
    CHECK_EQ("control (range crossing RAM end)", DMA_CTL_ERROR, dma_control(qt, DESC));
    CHECK_EQ("RAM untouched", 0x11223344, qtest_readl(qt, 0x7fffffc));
    /* Address wrap-around. */
    dma_desc(qt, DESC, DMA_CTL_READ, 0x100, 0xFFFFFFFFFFFFFF80ull);
    dma_kick(qt, DESC);
    CHECK_EQ("control (wrap-around)", DMA_CTL_ERROR, dma_control(qt, DESC));
    qtest_quit(qt);
}

static void test_dma_huge_length_no_crash(void)
{
    QTest *qt = qtest_start("-m 128");
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 0xFFFFFFFFu, BUF);
    dma_kick(qt, DESC);
    CHECK_EQ("control (4 GiB read into 128 MiB)", DMA_CTL_ERROR, dma_control(qt, DESC));
    /* A read over the 640K-1M hole is refused (not RAM)... */
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 0x100000, BUF);
    dma_kick(qt, DESC);
    CHECK_EQ("control (read across 0xA0000)", DMA_CTL_ERROR, dma_control(qt, DESC));
    /* ...and a long valid one zero-fills the rest of the buffer. */
    qtest_writeb(qt, 0x200000 + 0x1000000 - 1, 0xAA);
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_READ, 0x1000000,
             0x200000);
    dma_kick(qt, DESC);
    CHECK_EQ("control (16 MiB read)", 0, dma_control(qt, DESC));
    CHECK_EQ("first byte", 'Q', qtest_readb(qt, 0x200000));
    CHECK_EQ("last byte zero-filled", 0, qtest_readb(qt, 0x200000 + 0x1000000 - 1));
    qtest_quit(qt);
}

static void test_dma_descriptor_outside_ram_ignored(void)
{
    QTest *qt = qtest_start("-m 128");
    /* Nowhere to write the status: nothing happens, and the device still works. */
    dma_kick(qt, 0xF0000000u);
    dma_kick(qt, 0x7fffff8);        /* descriptor straddling the end of RAM */
    char sig[5] = { 0 };
    cfg_select(qt, KEY_SIGNATURE);
    cfg_read(qt, sig, 4);
    CHECK_STREQ("signature after bad descriptors", "QEMU", sig);
    qtest_quit(qt);
}

static void test_dma_write_to_read_only_item_fails(void)
{
    QTest *qt = qtest_start("");
    dma_desc(qt, DESC, KEY_SIGNATURE << 16 | DMA_CTL_SELECT | DMA_CTL_WRITE, 4, BUF);
    dma_kick(qt, DESC);
    CHECK_EQ("control", DMA_CTL_ERROR, dma_control(qt, DESC));
    char sig[5] = { 0 };
    cfg_select(qt, KEY_SIGNATURE);
    cfg_read(qt, sig, 4);
    CHECK_STREQ("signature unchanged", "QEMU", sig);
    qtest_quit(qt);
}

/* ---- -fw_cfg ---- */

static void test_user_blob_string(void)
{
    QTest *qt = qtest_start("-fw_cfg name=opt/kestrel/greeting,string=hello");
    uint32_t size;
    uint8_t *f = cfg_read_file(qt, "opt/kestrel/greeting", &size);
    CHECK_MSG(f != NULL, "opt/kestrel/greeting missing");
    CHECK_EQ("size (no NUL)", 5, size);
    CHECK_STREQ("contents", "hello", (char *)f);
    free(f);
    qtest_quit(qt);
}

static void test_user_blob_file(void)
{
    char path[] = "/tmp/kestrel-fwcfg-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "blob\n\0x", 7) == 7);
    close(fd);
    char args[128];
    snprintf(args, sizeof(args), "-fw_cfg name=opt/blob,file=%s", path);
    QTest *qt = qtest_start(args);
    uint32_t size;
    uint8_t *f = cfg_read_file(qt, "opt/blob", &size);
    unlink(path);
    CHECK_MSG(f != NULL, "opt/blob missing");
    CHECK_EQ("size", 7, size);
    CHECK(!memcmp(f, "blob\n\0x", 7));
    free(f);
    qtest_quit(qt);
}

static void test_user_blob_missing_file_is_an_error(void)
{
    const char *args[] = { "-fw_cfg", "name=opt/x,file=/nonexistent/kestrel-blob", NULL };
    qtest_expect_user_error(args, "/nonexistent/kestrel-blob");
}

static void test_user_blob_needs_file_or_string(void)
{
    const char *args[] = { "-fw_cfg", "name=opt/x", NULL };
    qtest_expect_user_error(args, "-fw_cfg");
}

/* ---- -boot ---- */

static void test_boot_order_sets_cmos(void)
{
    QTest *qt = qtest_start("-boot order=dc");
    CHECK_EQ("CMOS 0x3D (d=3 first, c=2 second)", 0x23, cmos_read(qt, 0x3d));
    CHECK_EQ("CMOS 0x38 (no third, floppy check on)", 0x00, cmos_read(qt, 0x38));
    qtest_quit(qt);
}

static void test_boot_default_order_cad(void)
{
    QTest *qt = qtest_start("");
    CHECK_EQ("CMOS 0x3D", 0x12, cmos_read(qt, 0x3d));
    CHECK_EQ("CMOS 0x38", 0x30, cmos_read(qt, 0x38));
    qtest_quit(qt);
}

static void test_boot_legacy_form_and_menu(void)
{
    QTest *qt = qtest_start("-boot n,menu=on,splash-time=1234,reboot-timeout=5000,strict=on");
    CHECK_EQ("CMOS 0x3D (network)", 0x04, cmos_read(qt, 0x3d));
    uint8_t b[4];
    cfg_select(qt, KEY_BOOT_MENU);
    cfg_read(qt, b, 2);
    CHECK_EQ("BOOT_MENU", 1, b[0] | b[1] << 8);
    uint32_t size;
    uint8_t *f = cfg_read_file(qt, "etc/boot-menu-wait", &size);
    CHECK_MSG(f && size == 2, "etc/boot-menu-wait missing or not 2 bytes");
    CHECK_EQ("boot-menu-wait", 1234, f[0] | f[1] << 8);
    free(f);
    f = cfg_read_file(qt, "etc/boot-fail-wait", &size);
    CHECK_MSG(f && size == 4, "etc/boot-fail-wait missing");
    CHECK_EQ("boot-fail-wait", 5000, f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24);
    free(f);
    f = cfg_read_file(qt, "bootorder", &size);
    CHECK_MSG(f != NULL, "bootorder missing");
    CHECK_MSG(strstr((char *)f, "HALT\n") != NULL, "strict=on: no HALT in \"%s\"", f);
    free(f);
    qtest_quit(qt);
}

static void test_boot_fail_wait_default_never(void)
{
    QTest *qt = qtest_start("");
    uint32_t size;
    uint8_t *f = cfg_read_file(qt, "etc/boot-fail-wait", &size);
    CHECK_MSG(f && size == 4, "etc/boot-fail-wait missing");
    CHECK_EQ("boot-fail-wait", 0xFFFFFFFFu,
             f[0] | f[1] << 8 | f[2] << 16 | (uint32_t)f[3] << 24);
    free(f);
    f = cfg_read_file(qt, "bootorder", &size);
    CHECK_MSG(f != NULL, "bootorder missing");
    CHECK_MSG(strstr((char *)f, "HALT") == NULL, "HALT without strict=on");
    free(f);
    qtest_quit(qt);
}

static void test_boot_once_reverts_after_reset(void)
{
    QTest *qt = qtest_start("-boot order=c,once=d");
    CHECK_EQ("CMOS 0x3D first boot", 0x03, cmos_read(qt, 0x3d));
    qtest_system_reset(qt);
    CHECK_EQ("CMOS 0x3D after reset", 0x02, cmos_read(qt, 0x3d));
    qtest_quit(qt);
}

static void test_boot_bad_values_are_errors(void)
{
    const char *bad_dev[] = { "-boot", "order=z", NULL };
    qtest_expect_user_error(bad_dev, "-boot order=z");
    const char *twice[] = { "-boot", "order=cc", NULL };
    qtest_expect_user_error(twice, "twice");
    const char *many[] = { "-boot", "order=cdan", NULL };
    qtest_expect_user_error(many, "too many");
    const char *menu[] = { "-boot", "menu=maybe", NULL };
    qtest_expect_user_error(menu, "-boot");
    const char *timeout[] = { "-boot", "reboot-timeout=70000", NULL };
    qtest_expect_user_error(timeout, "reboot-timeout");
    const char *unknown[] = { "-boot", "order=c,colour=blue", NULL };
    qtest_expect_user_error(unknown, "colour");
}

static const TestCase cases[] = {
    TEST_CASE(test_signature_reads_qemu),
    TEST_CASE(test_id_has_traditional_and_dma),
    TEST_CASE(test_file_dir_sorted_big_endian),
    TEST_CASE(test_read_past_end_is_zero),
    TEST_CASE(test_cpu_count_keys),
    TEST_CASE(test_e820_file_has_low_ram),
    TEST_CASE(test_acpi_and_smbios_files),
    TEST_CASE(test_dma_signature_register),
    TEST_CASE(test_dma_select_and_read),
    TEST_CASE(test_dma_skip_then_read),
    TEST_CASE(test_dma_read_past_end_zero_fills),
    TEST_CASE(test_dma_buffer_outside_ram_sets_error),
    TEST_CASE(test_dma_huge_length_no_crash),
    TEST_CASE(test_dma_descriptor_outside_ram_ignored),
    TEST_CASE(test_dma_write_to_read_only_item_fails),
    TEST_CASE(test_user_blob_string),
    TEST_CASE(test_user_blob_file),
    TEST_CASE(test_user_blob_missing_file_is_an_error),
    TEST_CASE(test_user_blob_needs_file_or_string),
    TEST_CASE(test_boot_order_sets_cmos),
    TEST_CASE(test_boot_default_order_cad),
    TEST_CASE(test_boot_legacy_form_and_menu),
    TEST_CASE(test_boot_fail_wait_default_never),
    TEST_CASE(test_boot_once_reverts_after_reset),
    TEST_CASE(test_boot_bad_values_are_errors),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("fw-cfg", cases, argc, argv);
}

/*
 * pc-testdev (hw/pc/pc_testdev.c), QEMU's x86 ISA test device as
 * kvm-unit-tests uses it: the 32-bit latch at 0xE0 (any width, byte lanes)
 * and its byte-wide window at 0xE8, the flush-page port 0xE4, the IRQ-line
 * ports 0x2000+n driving interrupt controller input n, and 64 KiB of
 * RAM-like MMIO at 0xFF000000.  Facts: QEMU hw/misc/pc-testdev.c.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <string.h>

#define TESTDEV_IOPORT      0xe0
#define TESTDEV_FLUSH_PAGE  0xe4
#define TESTDEV_IOPORT_BYTE 0xe8
#define TESTDEV_IRQ_LINE    0x2000
#define TESTDEV_IOMEM       0xff000000ULL
#define TESTDEV_IOMEM_SIZE  0x10000

/* 8259A (pc-platform.md): ICW/OCW ports and ELCR */
#define PIC_M_CMD   0x20
#define PIC_M_DATA  0x21
#define PIC_S_CMD   0xa0
#define PIC_S_DATA  0xa1
#define ELCR_M      0x4d0
#define OCW3_READ_IRR 0x0a

static QTest *start(void)
{
    return qtest_start("-device pc-testdev");
}

static void test_ioport_latch_reads_back_32bit_write(void)
{
    QTest *qt = start();
    CHECK_EQ("latch at power-on", 0, qtest_inl(qt, TESTDEV_IOPORT));
    qtest_outl(qt, TESTDEV_IOPORT, 0xdeadbeef);
    CHECK_EQ("inl 0xe0 after outl 0xdeadbeef", 0xdeadbeef, qtest_inl(qt, TESTDEV_IOPORT));
    CHECK_EQ("inw 0xe0 (bytes 0-1)", 0xbeef, qtest_inw(qt, TESTDEV_IOPORT));
    CHECK_EQ("inw 0xe2 (bytes 2-3)", 0xdead, qtest_inw(qt, TESTDEV_IOPORT + 2));
    CHECK_EQ("inb 0xe1 (byte 1)", 0xbe, qtest_inb(qt, TESTDEV_IOPORT + 1));
    CHECK_EQ("inb 0xe3 (byte 3)", 0xde, qtest_inb(qt, TESTDEV_IOPORT + 3));
    qtest_quit(qt);
}

static void test_ioport_narrow_write_replaces_only_its_bytes(void)
{
    QTest *qt = start();
    qtest_outl(qt, TESTDEV_IOPORT, 0x11223344);
    qtest_outb(qt, TESTDEV_IOPORT + 2, 0xaa);
    CHECK_EQ("latch after outb 0xaa to 0xe2", 0x11aa3344, qtest_inl(qt, TESTDEV_IOPORT));
    qtest_outw(qt, TESTDEV_IOPORT, 0x5566);
    CHECK_EQ("latch after outw 0x5566 to 0xe0", 0x11aa5566, qtest_inl(qt, TESTDEV_IOPORT));
    qtest_outw(qt, TESTDEV_IOPORT + 1, 0x7788);
    CHECK_EQ("latch after outw 0x7788 to 0xe1", 0x117788 << 8 | 0x66,
             qtest_inl(qt, TESTDEV_IOPORT));
    qtest_quit(qt);
}

static void test_ioport_byte_window_shares_the_latch(void)
{
    QTest *qt = start();
    qtest_outl(qt, TESTDEV_IOPORT_BYTE, 0xcafef00d);
    CHECK_EQ("inl 0xe0 after outl to 0xe8", 0xcafef00d, qtest_inl(qt, TESTDEV_IOPORT));
    CHECK_EQ("inl 0xe8", 0xcafef00d, qtest_inl(qt, TESTDEV_IOPORT_BYTE));
    qtest_outb(qt, TESTDEV_IOPORT_BYTE + 3, 0x12);
    CHECK_EQ("inl 0xe0 after outb 0x12 to 0xeb", 0x12fef00d, qtest_inl(qt, TESTDEV_IOPORT));
    CHECK_EQ("inw 0xe9", 0xfef0, qtest_inw(qt, TESTDEV_IOPORT_BYTE + 1));
    qtest_quit(qt);
}

static void test_flush_page_write_keeps_ram_and_latch(void)
{
    QTest *qt = start();
    qtest_writel(qt, 0x5000, 0x600dcafe);
    qtest_outl(qt, TESTDEV_IOPORT, 0x01020304);
    qtest_outl(qt, TESTDEV_FLUSH_PAGE, 0x5000);
    qtest_outb(qt, TESTDEV_FLUSH_PAGE, 0x50);          /* wrong width: ignored */
    CHECK_EQ("RAM at 0x5000 after flush-page", 0x600dcafe, qtest_readl(qt, 0x5000));
    CHECK_EQ("latch after flush-page", 0x01020304, qtest_inl(qt, TESTDEV_IOPORT));
    CHECK_EQ("inl 0xe4 reads 0", 0, qtest_inl(qt, TESTDEV_FLUSH_PAGE));
    qtest_quit(qt);
}

static void test_irq_line_write_raises_and_lowers_gsi(void)
{
    QTest *qt = start();
    qtest_irq_intercept(qt);
    static const int lines[] = { 3, 10, 14, 20, 23 };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int n = lines[i];
        CHECK_MSG(!qtest_get_irq(qt, n), "GSI %d high before any write", n);
        qtest_outb(qt, TESTDEV_IRQ_LINE + n, 1);
        CHECK_MSG(qtest_get_irq(qt, n), "GSI %d low after writing 1 to port 0x%x", n,
                  TESTDEV_IRQ_LINE + n);
        qtest_outb(qt, TESTDEV_IRQ_LINE + n, 0x80);     /* any non-zero value is "high" */
        CHECK_MSG(qtest_get_irq(qt, n), "GSI %d low after writing 0x80", n);
        qtest_outb(qt, TESTDEV_IRQ_LINE + n, 0);
        CHECK_MSG(!qtest_get_irq(qt, n), "GSI %d still high after writing 0 to port 0x%x",
                  n, TESTDEV_IRQ_LINE + n);
    }
    CHECK_EQ("inb 0x2003 reads 0", 0, qtest_inb(qt, TESTDEV_IRQ_LINE + 3));
    qtest_quit(qt);
}

static void test_irq_line_reaches_the_pic(void)
{
    QTest *qt = start();
    /* Master PIC: vectors 0x20.., IRQ 5 level-triggered (ELCR) and unmasked. */
    qtest_outb(qt, PIC_M_CMD, 0x11);
    qtest_outb(qt, PIC_M_DATA, 0x20);
    qtest_outb(qt, PIC_M_DATA, 0x04);
    qtest_outb(qt, PIC_M_DATA, 0x01);
    qtest_outb(qt, PIC_M_DATA, 0xdf);
    qtest_outb(qt, ELCR_M, 1u << 5);
    qtest_outb(qt, PIC_M_CMD, OCW3_READ_IRR);
    CHECK_EQ("master IRR before the write", 0, qtest_inb(qt, PIC_M_CMD) & (1u << 5));
    qtest_outb(qt, TESTDEV_IRQ_LINE + 5, 1);
    qtest_outb(qt, PIC_M_CMD, OCW3_READ_IRR);
    CHECK_EQ("master IRR bit 5 after raising line 5", 1u << 5,
             qtest_inb(qt, PIC_M_CMD) & (1u << 5));
    qtest_outb(qt, TESTDEV_IRQ_LINE + 5, 0);
    qtest_outb(qt, PIC_M_CMD, OCW3_READ_IRR);
    CHECK_EQ("master IRR bit 5 after lowering line 5 (level mode)", 0,
             qtest_inb(qt, PIC_M_CMD) & (1u << 5));
    qtest_quit(qt);
}

static void test_iomem_is_ram_like_at_every_width(void)
{
    QTest *qt = start();
    CHECK_EQ("iomem at power-on", 0, qtest_readq(qt, TESTDEV_IOMEM));
    qtest_writeb(qt, TESTDEV_IOMEM, 0x5a);
    CHECK_EQ("readb after writeb", 0x5a, qtest_readb(qt, TESTDEV_IOMEM));
    qtest_writew(qt, TESTDEV_IOMEM + 0x100, 0xbeef);
    CHECK_EQ("readw after writew", 0xbeef, qtest_readw(qt, TESTDEV_IOMEM + 0x100));
    qtest_writel(qt, TESTDEV_IOMEM + 0x1000, 0x12345678);
    CHECK_EQ("readl after writel", 0x12345678, qtest_readl(qt, TESTDEV_IOMEM + 0x1000));
    CHECK_EQ("readb of the writel's byte 2", 0x34, qtest_readb(qt, TESTDEV_IOMEM + 0x1002));
    qtest_writeq(qt, TESTDEV_IOMEM + TESTDEV_IOMEM_SIZE - 8, 0x0102030405060708ULL);
    CHECK_EQ("readq at the last 8 bytes", 0x0102030405060708ULL,
             qtest_readq(qt, TESTDEV_IOMEM + TESTDEV_IOMEM_SIZE - 8));
    uint8_t buf[64], back[64];
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    qtest_memwrite(qt, TESTDEV_IOMEM + 0x8000, buf, sizeof(buf));
    qtest_memread(qt, TESTDEV_IOMEM + 0x8000, back, sizeof(back));
    CHECK_MSG(memcmp(buf, back, sizeof(buf)) == 0, "64-byte block read back differs");
    qtest_quit(qt);
}

static void test_iomem_is_not_guest_ram(void)
{
    QTest *qt = qtest_start("");
    /* Without the device nothing decodes there: writes vanish. */
    qtest_writel(qt, TESTDEV_IOMEM, 0x12345678);
    CHECK_MSG(qtest_readl(qt, TESTDEV_IOMEM) != 0x12345678,
              "0xff000000 kept a value without -device pc-testdev");
    qtest_quit(qt);
}

static void test_system_reset_clears_latch_iomem_and_lines(void)
{
    QTest *qt = start();
    qtest_irq_intercept(qt);
    qtest_outl(qt, TESTDEV_IOPORT, 0xfeedface);
    qtest_writel(qt, TESTDEV_IOMEM + 4, 0xabcdef01);
    qtest_outb(qt, TESTDEV_IRQ_LINE + 7, 1);
    CHECK_MSG(qtest_get_irq(qt, 7), "GSI 7 low after raising it");
    qtest_system_reset(qt);
    CHECK_EQ("latch after system reset", 0, qtest_inl(qt, TESTDEV_IOPORT));
    CHECK_EQ("iomem after system reset", 0, qtest_readl(qt, TESTDEV_IOMEM + 4));
    CHECK_MSG(!qtest_get_irq(qt, 7), "GSI 7 still high after system reset");
    qtest_quit(qt);
}

static void test_second_instance_is_a_user_error(void)
{
    const char *args[] = { "-device", "pc-testdev", "-device", "pc-testdev", NULL };
    qtest_expect_user_error(args, "pc-testdev");
}

static const TestCase cases[] = {
    TEST_CASE(test_ioport_latch_reads_back_32bit_write),
    TEST_CASE(test_ioport_narrow_write_replaces_only_its_bytes),
    TEST_CASE(test_ioport_byte_window_shares_the_latch),
    TEST_CASE(test_flush_page_write_keeps_ram_and_latch),
    TEST_CASE(test_irq_line_write_raises_and_lowers_gsi),
    TEST_CASE(test_irq_line_reaches_the_pic),
    TEST_CASE(test_iomem_is_ram_like_at_every_width),
    TEST_CASE(test_iomem_is_not_guest_ram),
    TEST_CASE(test_system_reset_clears_latch_iomem_and_lines),
    TEST_CASE(test_second_instance_is_a_user_error),
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    return test_main("pc-testdev", cases, argc, argv);
}

/*
 * PCI configuration mechanism #1 through the i440FX (0xCF8/0xCFC), the
 * host bridge 00:00.0 and the PIIX3 ISA bridge 00:01.0: IDs, subsystem IDs,
 * read-only fields, byte/word accesses at 0xCFC+n, PIIX3 PIRQ routing
 * registers, the 0xCF9 reset control register, and robustness against odd
 * accesses.  Facts: pc-platform.md §4, firmware-seabios.md §3 and §7.
 *
 * BAR sizing/mapping and INTx routing of a function that raises its pin are
 * covered by tests/unit/test-pci.c (no board function has BARs or INTx yet).
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <string.h>

#define CONFADD         0xcf8
#define CONFDATA        0xcfc
#define RCR             0xcf9
#define CONE            0x80000000u

#define PCI_VENDOR_ID   0x00
#define PCI_DEVICE_ID   0x02
#define PCI_COMMAND     0x04
#define PCI_STATUS      0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG  0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_SUBSYS_VID  0x2c
#define PCI_SUBSYS_ID   0x2e
#define PCI_INT_LINE    0x3c

#define I440FX_RAMSIZE  0x57
#define I440FX_PAM0     0x59
#define I440FX_SMRAM    0x72
#define PIIX3_PIRQRC    0x60

#define DEVFN(slot, fn) (((slot) << 3) | (fn))

static QTest *start(void)
{
    return qtest_start("-no-reboot");
}

static void test_confadd_reads_back_0x80000000(void)
{
    QTest *qt = start();
    /* SeaBIOS's probe (src/hw/pci.c): write 0x80000000, read it back. */
    qtest_outl(qt, CONFADD, 0x80000000u);
    CHECK_EQ("CONFADD after writing 0x80000000", 0x80000000u, qtest_inl(qt, CONFADD));
    qtest_outl(qt, CONFADD, 0x80001234u);
    CHECK_EQ("CONFADD keeps bus/dev/fn/reg, not bits 1:0", 0x80001234u, qtest_inl(qt, CONFADD));
    qtest_outl(qt, CONFADD, 0xffffffffu);
    CHECK_EQ("CONFADD reserved bits 30:24 and 1:0 read 0", 0x80fffffcu, qtest_inl(qt, CONFADD));
    qtest_quit(qt);
}

static void test_host_bridge_ids(void)
{
    QTest *qt = start();
    CHECK_EQ("00:00.0 vendor:device", 0x12378086u, qtest_pci_cfg_readl(qt, 0, PCI_VENDOR_ID));
    CHECK_EQ("00:00.0 revision", 0x02, qtest_pci_cfg_readb(qt, 0, PCI_REVISION_ID));
    CHECK_EQ("00:00.0 class code (host bridge)", 0x060000u,
             qtest_pci_cfg_readl(qt, 0, PCI_REVISION_ID) >> 8);
    CHECK_EQ("00:00.0 header type", 0x00, qtest_pci_cfg_readb(qt, 0, PCI_HEADER_TYPE));
    CHECK_EQ("00:00.0 subsystem vendor", 0x1af4, qtest_pci_cfg_readw(qt, 0, PCI_SUBSYS_VID));
    CHECK_EQ("00:00.0 subsystem id", 0x1100, qtest_pci_cfg_readw(qt, 0, PCI_SUBSYS_ID));
    CHECK_EQ("00:00.0 SMRAM at reset", 0x02, qtest_pci_cfg_readb(qt, 0, I440FX_SMRAM));
    qtest_quit(qt);
}

static void test_host_bridge_ramsize_in_8mib_units(void)
{
    QTest *qt = qtest_start("-m 256");
    CHECK_EQ("i440FX 0x57 = RAM / 8 MiB", 32, qtest_pci_cfg_readb(qt, 0, I440FX_RAMSIZE));
    qtest_quit(qt);
}

static void test_isa_bridge_ids(void)
{
    QTest *qt = start();
    CHECK_EQ("00:01.0 vendor:device", 0x70008086u, qtest_pci_cfg_readl(qt, DEVFN(1, 0), PCI_VENDOR_ID));
    CHECK_EQ("00:01.0 class code (ISA bridge)", 0x060100u,
             qtest_pci_cfg_readl(qt, DEVFN(1, 0), PCI_REVISION_ID) >> 8);
    CHECK_EQ("00:01.0 header type multi-function", 0x80,
             qtest_pci_cfg_readb(qt, DEVFN(1, 0), PCI_HEADER_TYPE));
    CHECK_EQ("00:01.0 subsystem", 0x11001af4u, qtest_pci_cfg_readl(qt, DEVFN(1, 0), PCI_SUBSYS_VID));
    for (int p = 0; p < 4; p++)
        CHECK_EQ("PIRQRC at reset (routing disabled)", 0x80,
                 qtest_pci_cfg_readb(qt, DEVFN(1, 0), PIIX3_PIRQRC + p));
    qtest_quit(qt);
}

static void test_absent_function_reads_all_ones(void)
{
    QTest *qt = start();
    CHECK_EQ("00:1f.0 dword", 0xffffffffu, qtest_pci_cfg_readl(qt, DEVFN(31, 0), 0));
    CHECK_EQ("00:1f.7 word", 0xffff, qtest_pci_cfg_readw(qt, DEVFN(31, 7), 2));
    CHECK_EQ("00:1f.0 byte", 0xff, qtest_pci_cfg_readb(qt, DEVFN(31, 0), 3));
    /* Bus 1 does not exist. */
    qtest_outl(qt, CONFADD, CONE | 1u << 16);
    CHECK_EQ("bus 1 00.0", 0xffffffffu, qtest_inl(qt, CONFDATA));
    /* Writes there go nowhere and hurt nothing. */
    qtest_pci_cfg_writel(qt, DEVFN(31, 0), PCI_COMMAND, 0xffffffffu);
    CHECK_EQ("00:00.0 still answers", 0x12378086u, qtest_pci_cfg_readl(qt, 0, 0));
    qtest_quit(qt);
}

static void test_confdata_without_cone_reads_all_ones(void)
{
    QTest *qt = start();
    qtest_outl(qt, CONFADD, 0x00000000u);    /* bit 31 clear: no configuration cycle */
    CHECK_EQ("CONFDATA with CONE clear", 0xffffffffu, qtest_inl(qt, CONFDATA));
    qtest_outl(qt, CONFDATA, 0x12345678u);   /* ignored */
    qtest_outl(qt, CONFADD, 0x00000000u | I440FX_PAM0);
    qtest_outb(qt, CONFDATA + 1, 0x33);
    CHECK_EQ("PAM1 untouched by a write with CONE clear", 0x00,
             qtest_pci_cfg_readb(qt, 0, I440FX_PAM0 + 1));
    qtest_quit(qt);
}

static void test_byte_and_word_access_at_cfc_plus_n(void)
{
    QTest *qt = start();
    qtest_outl(qt, CONFADD, CONE);   /* bus 0, device 0, register 0 */
    CHECK_EQ("byte at 0xCFC (vendor low)", 0x86, qtest_inb(qt, CONFDATA));
    CHECK_EQ("byte at 0xCFD (vendor high)", 0x80, qtest_inb(qt, CONFDATA + 1));
    CHECK_EQ("byte at 0xCFE (device low)", 0x37, qtest_inb(qt, CONFDATA + 2));
    CHECK_EQ("byte at 0xCFF (device high)", 0x12, qtest_inb(qt, CONFDATA + 3));
    CHECK_EQ("word at 0xCFC", 0x8086, qtest_inw(qt, CONFDATA));
    CHECK_EQ("word at 0xCFE", 0x1237, qtest_inw(qt, CONFDATA + 2));
    CHECK_EQ("unaligned word at 0xCFD", 0x3780, qtest_inw(qt, CONFDATA + 1));

    /* PAM1..PAM3 (0x5A-0x5C) through bytes and a word, read back as a dword at 0x58. */
    qtest_pci_cfg_writeb(qt, 0, I440FX_PAM0 + 1, 0x11);
    qtest_pci_cfg_writew(qt, 0, I440FX_PAM0 + 3, 0x3311);     /* 0x5C-0x5D */
    uint32_t d = qtest_pci_cfg_readl(qt, 0, 0x58);
    CHECK_EQ("PAM1 via byte write at 0xCFE", 0x11, (d >> 16) & 0xff);
    CHECK_EQ("PAM2 untouched", 0x00, (d >> 24) & 0xff);
    CHECK_EQ("PAM3 via word write at 0xCFC", 0x11, qtest_pci_cfg_readb(qt, 0, 0x5c));
    CHECK_EQ("PAM4 via the high byte of that word", 0x33, qtest_pci_cfg_readb(qt, 0, 0x5d));
    qtest_quit(qt);
}

static void test_read_only_fields_stay_read_only(void)
{
    QTest *qt = start();
    static const int devfns[] = { DEVFN(0, 0), DEVFN(1, 0) };
    for (int i = 0; i < 2; i++) {
        int df = devfns[i];
        uint32_t id = qtest_pci_cfg_readl(qt, df, PCI_VENDOR_ID);
        uint32_t class = qtest_pci_cfg_readl(qt, df, PCI_REVISION_ID);
        uint32_t hdr = qtest_pci_cfg_readl(qt, df, 0x0c) & 0x00ff0000u;
        uint32_t sub = qtest_pci_cfg_readl(qt, df, PCI_SUBSYS_VID);
        qtest_pci_cfg_writel(qt, df, PCI_VENDOR_ID, 0);
        qtest_pci_cfg_writel(qt, df, PCI_REVISION_ID, 0xffffffffu);
        qtest_pci_cfg_writel(qt, df, 0x0c, 0xffffffffu);
        qtest_pci_cfg_writel(qt, df, PCI_SUBSYS_VID, 0);
        qtest_pci_cfg_writeb(qt, df, PCI_HEADER_TYPE, 0x00);
        CHECK_EQ("vendor/device after writes", id, qtest_pci_cfg_readl(qt, df, PCI_VENDOR_ID));
        CHECK_EQ("revision/class after writes", class, qtest_pci_cfg_readl(qt, df, PCI_REVISION_ID));
        CHECK_EQ("header type after writes", hdr, qtest_pci_cfg_readl(qt, df, 0x0c) & 0x00ff0000u);
        CHECK_EQ("subsystem after writes", sub, qtest_pci_cfg_readl(qt, df, PCI_SUBSYS_VID));
        /* No BARs on either bridge: BAR0 reads 0 whatever is written. */
        qtest_pci_cfg_writel(qt, df, PCI_BAR0, 0xffffffffu);
        CHECK_EQ("BAR0 of a function without BARs", 0, qtest_pci_cfg_readl(qt, df, PCI_BAR0));
    }
    /* SMRAM: C_BASE_SEG (bits 2:0) is hard-wired to 010b. */
    qtest_pci_cfg_writeb(qt, 0, I440FX_SMRAM, 0x00);
    CHECK_EQ("SMRAM C_BASE_SEG after writing 0", 0x02, qtest_pci_cfg_readb(qt, 0, I440FX_SMRAM));
    qtest_pci_cfg_writeb(qt, 0, I440FX_SMRAM, 0x0a);
    CHECK_EQ("SMRAM G_SMRAME settable", 0x0a, qtest_pci_cfg_readb(qt, 0, I440FX_SMRAM));
    qtest_quit(qt);
}

static void test_command_and_interrupt_line_writable(void)
{
    QTest *qt = start();
    qtest_pci_cfg_writeb(qt, 0, PCI_INT_LINE, 0x0b);
    CHECK_EQ("INTERRUPT_LINE of 00:00.0", 0x0b, qtest_pci_cfg_readb(qt, 0, PCI_INT_LINE));
    qtest_pci_cfg_writew(qt, 0, PCI_COMMAND, 0x0107);
    CHECK_EQ("COMMAND IO|MEM|MASTER|SERR", 0x0107, qtest_pci_cfg_readw(qt, 0, PCI_COMMAND));
    qtest_pci_cfg_writew(qt, 0, PCI_COMMAND, 0xffff);
    CHECK_EQ("COMMAND reserved bits stay 0", 0, qtest_pci_cfg_readw(qt, 0, PCI_COMMAND) & 0xf800);
    qtest_quit(qt);
}

static void test_pirqrc_writable_bits(void)
{
    QTest *qt = start();
    /* SeaBIOS: PIRQA-D <- 10, 10, 11, 11. */
    qtest_pci_cfg_writel(qt, DEVFN(1, 0), PIIX3_PIRQRC, 0x0b0b0a0au);
    CHECK_EQ("PIRQRC A-D", 0x0b0b0a0au, qtest_pci_cfg_readl(qt, DEVFN(1, 0), PIIX3_PIRQRC));
    qtest_pci_cfg_writeb(qt, DEVFN(1, 0), PIIX3_PIRQRC + 2, 0xff);
    CHECK_EQ("PIRQRC reserved bits 6:4 stay 0", 0x8f, qtest_pci_cfg_readb(qt, DEVFN(1, 0), PIIX3_PIRQRC + 2));
    qtest_quit(qt);
}

static void test_pirqrc_resets_but_pam_survives_reset(void)
{
    QTest *qt = qtest_start("");
    qtest_pci_cfg_writeb(qt, DEVFN(1, 0), PIIX3_PIRQRC, 0x0a);
    qtest_pci_cfg_writeb(qt, 0, I440FX_PAM0 + 1, 0x33);
    qtest_system_reset(qt);
    CHECK_EQ("PIRQRCA after a system reset", 0x80, qtest_pci_cfg_readb(qt, DEVFN(1, 0), PIIX3_PIRQRC));
    /* QEMU keeps PAM over a reset and SeaBIOS relies on it (firmware-seabios.md §2). */
    CHECK_EQ("PAM1 after a system reset", 0x33, qtest_pci_cfg_readb(qt, 0, I440FX_PAM0 + 1));
    qtest_quit(qt);
}

static void test_pirq_routing_raises_nothing_without_sources(void)
{
    QTest *qt = start();
    qtest_irq_intercept(qt);
    qtest_pci_cfg_writel(qt, DEVFN(1, 0), PIIX3_PIRQRC, 0x0b0b0a0au);
    qtest_outb(qt, 0x80, 0);              /* sync */
    CHECK_MSG(!qtest_get_irq(qt, 10), "IRQ10 high with no PCI function asserting INTx");
    CHECK_MSG(!qtest_get_irq(qt, 11), "IRQ11 high with no PCI function asserting INTx");
    qtest_quit(qt);
}

static void test_rcr_reads_back_sys_rst(void)
{
    QTest *qt = start();
    CHECK_EQ("RCR at power-on", 0x00, qtest_inb(qt, RCR));
    qtest_outb(qt, RCR, 0x02);
    CHECK_EQ("RCR after SYS_RST", 0x02, qtest_inb(qt, RCR));
    /* CONFADD stays a separate 32-bit register around it. */
    qtest_outl(qt, CONFADD, 0x80000000u);
    CHECK_EQ("CONFADD next to RCR", 0x80000000u, qtest_inl(qt, CONFADD));
    CHECK_EQ("RCR after a CONFADD write", 0x02, qtest_inb(qt, RCR));
    qtest_quit(qt);
}

static void test_rcr_rst_cpu_resets(void)
{
    QTest *qt = start();
    qtest_outb(qt, RCR, 0x02);
    qtest_outb(qt, RCR, 0x06);
    int st = qtest_wait_exit(qt, test_timeout(30));
    CHECK_MSG(st == 0, "0xCF9 = 0x06 under -no-reboot: expected exit 0, got %d", st);
    qtest_quit(qt);
}

static void test_odd_accesses_do_not_crash(void)
{
    QTest *qt = qtest_start("");
    uint32_t x = 12345;
    for (int i = 0; i < 6000; i++) {
        x = x * 1103515245u + 12345u;
        uint16_t port = (uint16_t)(0xcf8 + ((x >> 12) & 7));
        unsigned size = 1u << ((x >> 20) % 3);
        uint32_t v = x ^ (x << 7);
        /* Mostly config cycles to the two bridges, some to nowhere; never RST_CPU. */
        if (port == CONFADD && size == 4 && ((x >> 24) & 1))
            v = CONE | ((x >> 8) & 0x0f00) | (v & 0xff);
        if (port == RCR)
            v &= ~0x04u;
        switch (((x >> 28) & 1) ? size : 0) {
        case 0: if (size == 1) qtest_inb(qt, port);
                else if (size == 2) qtest_inw(qt, port);
                else qtest_inl(qt, port);
                break;
        case 1: qtest_outb(qt, port, (uint8_t)v); break;
        case 2: qtest_outw(qt, port, (uint16_t)v); break;
        default: qtest_outl(qt, port, v); break;
        }
    }
    CHECK_EQ("00:00.0 still answers", 0x12378086u, qtest_pci_cfg_readl(qt, 0, 0));
    CHECK_EQ("00:01.0 still answers", 0x70008086u, qtest_pci_cfg_readl(qt, DEVFN(1, 0), 0));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_confadd_reads_back_0x80000000),
    TEST_CASE(test_host_bridge_ids),
    TEST_CASE(test_host_bridge_ramsize_in_8mib_units),
    TEST_CASE(test_isa_bridge_ids),
    TEST_CASE(test_absent_function_reads_all_ones),
    TEST_CASE(test_confdata_without_cone_reads_all_ones),
    TEST_CASE(test_byte_and_word_access_at_cfc_plus_n),
    TEST_CASE(test_read_only_fields_stay_read_only),
    TEST_CASE(test_command_and_interrupt_line_writable),
    TEST_CASE(test_pirqrc_writable_bits),
    TEST_CASE(test_pirqrc_resets_but_pam_survives_reset),
    TEST_CASE(test_pirq_routing_raises_nothing_without_sources),
    TEST_CASE(test_rcr_reads_back_sys_rst),
    TEST_CASE(test_rcr_rst_cpu_resets),
    TEST_CASE(test_odd_accesses_do_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pci", cases, argc, argv);
}

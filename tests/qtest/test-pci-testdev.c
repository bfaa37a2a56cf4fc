/*
 * pci-testdev (hw/pc/pci_testdev.c), QEMU's PCI test device as
 * kvm-unit-tests' lib/pci-testdev.c drives it: IDs and class in config
 * space, BAR sizing (4 KiB memory, 256 bytes I/O), the six-entry test table
 * read through either BAR, and the write counting (byte writes of the test's
 * data at the test's offset; writes absorbed by the "eventfd" tests'
 * notifier are not counted, as in QEMU).  Facts: QEMU hw/misc/pci-testdev.c.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <string.h>


#define PCI_VENDOR_ID   0x00
#define PCI_DEVICE_ID   0x02
#define PCI_COMMAND     0x04
#define  PCI_COMMAND_IO  0x1
#define  PCI_COMMAND_MEM 0x2
#define PCI_REVISION_ID 0x08
#define PCI_BAR0        0x10
#define PCI_BAR1        0x14
#define PCI_BAR2        0x18
#define PCI_INT_PIN     0x3d

#define TESTDEV_VENDOR  0x1b36
#define TESTDEV_DEVICE  0x0005
#define DEVFN(slot, fn) (((slot) << 3) | (fn))

/* Where the tests map the BARs. */
#define MMIO_BASE       0xe0000000u
#define PIO_BASE        0xc000u

/* Test header (QEMU's PCITestDevHdr) */
#define HDR_TEST        0
#define HDR_WIDTH       1
#define HDR_OFFSET      4
#define HDR_DATA        8
#define HDR_COUNT       12
#define HDR_NAME        16

/* The testdev's devfn, scanning bus 0 as a guest would; -1 if absent. */
static int find_testdev(QTest *qt)
{
    for (int slot = 0; slot < 32; slot++) {
        uint32_t id = qtest_pci_cfg_readl(qt, DEVFN(slot, 0), PCI_VENDOR_ID);
        if (id == (TESTDEV_VENDOR | (uint32_t)TESTDEV_DEVICE << 16))
            return DEVFN(slot, 0);
    }
    return -1;
}

/* Start with the device, BAR0 at MMIO_BASE, BAR1 at PIO_BASE, decoding on. */
static QTest *start_mapped(int *devfn_out)
{
    QTest *qt = qtest_start("-device pci-testdev");
    int devfn = find_testdev(qt);
    CHECK_MSG(devfn >= 0, "no 1b36:0005 function on bus 0");
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR0, MMIO_BASE);
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR1, PIO_BASE);
    qtest_pci_cfg_writel(qt, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEM);
    if (devfn_out)
        *devfn_out = devfn;
    return qt;
}

static uint8_t mem_rb(QTest *qt, unsigned off) { return qtest_readb(qt, MMIO_BASE + off); }
static uint32_t mem_rl(QTest *qt, unsigned off) { return qtest_readl(qt, MMIO_BASE + off); }
static void mem_wb(QTest *qt, unsigned off, uint8_t v) { qtest_writeb(qt, MMIO_BASE + off, v); }
static uint8_t pio_rb(QTest *qt, unsigned off) { return qtest_inb(qt, PIO_BASE + off); }
static uint32_t pio_rl(QTest *qt, unsigned off) { return qtest_inl(qt, PIO_BASE + off); }
static void pio_wb(QTest *qt, unsigned off, uint8_t v) { qtest_outb(qt, PIO_BASE + off, v); }

static void read_name(QTest *qt, bool pio, char *buf, size_t len)
{
    size_t i;
    for (i = 0; i + 1 < len; i++) {
        buf[i] = (char)(pio ? pio_rb(qt, HDR_NAME + i) : mem_rb(qt, HDR_NAME + i));
        if (!buf[i])
            break;
    }
    buf[i] = 0;
}

static void test_config_ids_class_and_no_interrupt_pin(void)
{
    QTest *qt = qtest_start("-device pci-testdev");
    /* QEMU with -nodefaults: 00.0 host bridge, 01.x PIIX, the first -device at 02.0. */
    int devfn = find_testdev(qt);
    CHECK_EQ("pci-testdev devfn (slot 2, as under QEMU)", DEVFN(2, 0), devfn);
    CHECK_EQ("vendor:device", 0x00051b36, qtest_pci_cfg_readl(qt, devfn, PCI_VENDOR_ID));
    CHECK_EQ("revision and class code (00 FF 00, rev 0)", 0x00ff0000,
             qtest_pci_cfg_readl(qt, devfn, PCI_REVISION_ID));
    CHECK_EQ("interrupt pin", 0, qtest_pci_cfg_readb(qt, devfn, PCI_INT_PIN));
    CHECK_EQ("BAR2 (not implemented)", 0, qtest_pci_cfg_readl(qt, devfn, PCI_BAR2));
    qtest_quit(qt);
}

static void test_bar_sizing_4k_memory_and_256_byte_io(void)
{
    QTest *qt = qtest_start("-device pci-testdev");
    int devfn = find_testdev(qt);
    CHECK_EQ("BAR0 at reset (32-bit memory, unassigned)", 0, qtest_pci_cfg_readl(qt, devfn, PCI_BAR0));
    CHECK_EQ("BAR1 at reset (I/O, unassigned)", 1, qtest_pci_cfg_readl(qt, devfn, PCI_BAR1));
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR0, 0xffffffff);
    CHECK_EQ("BAR0 sizing: 4 KiB, 32-bit, not prefetchable", 0xfffff000,
             qtest_pci_cfg_readl(qt, devfn, PCI_BAR0));
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR1, 0xffffffff);
    CHECK_EQ("BAR1 sizing: 256 bytes of I/O", 0xffffff01, qtest_pci_cfg_readl(qt, devfn, PCI_BAR1));
    qtest_quit(qt);
}

static void test_addr_property_places_the_function(void)
{
    QTest *qt = qtest_start("-device pci-testdev,addr=05");
    CHECK_EQ("pci-testdev devfn with addr=05", DEVFN(5, 0), find_testdev(qt));
    qtest_quit(qt);
}

static void test_no_test_selected_reads_zero(void)
{
    QTest *qt = start_mapped(NULL);
    CHECK_EQ("MMIO header dword 0 before selecting", 0, mem_rl(qt, 0));
    CHECK_EQ("I/O header dword 4 before selecting", 0, pio_rl(qt, HDR_OFFSET));
    /* Selecting a test number past the table deselects. */
    mem_wb(qt, HDR_TEST, 0);
    CHECK_EQ("width with mmio-no-eventfd selected", 1, mem_rb(qt, HDR_WIDTH));
    pio_wb(qt, HDR_TEST, 0xff);
    CHECK_EQ("MMIO header dword 0 after selecting 0xff", 0, mem_rl(qt, 0));
    qtest_quit(qt);
}

/* The table kvm-unit-tests walks: test k of each BAR type until width reads 0. */
static void test_table_contents_through_both_bars(void)
{
    static const struct {
        const char *name;
        uint32_t offset;
        uint8_t data;
    } want[2][3] = {
        { { "mmio-no-eventfd", 2048, 0xfa }, { "mmio-wildcard-eventfd", 2049, 0xce },
          { "mmio-datamatch-eventfd", 2050, 0xfa } },
        { { "portio-no-eventfd", 131, 0xfa }, { "portio-wildcard-eventfd", 132, 0xce },
          { "portio-datamatch-eventfd", 133, 0xfa } },
    };
    QTest *qt = start_mapped(NULL);
    char name[64], what[96];
    for (int type = 0; type < 2; type++) {
        bool pio = type == 1;
        for (int k = 0; k < 3; k++) {
            if (pio)
                pio_wb(qt, HDR_TEST, (uint8_t)k);
            else
                mem_wb(qt, HDR_TEST, (uint8_t)k);
            uint8_t (*rb)(QTest *, unsigned) = pio ? pio_rb : mem_rb;
            uint32_t (*rl)(QTest *, unsigned) = pio ? pio_rl : mem_rl;
            snprintf(what, sizeof(what), "%s test byte", want[type][k].name);
            CHECK_EQ(what, type * 3 + k, rb(qt, HDR_TEST));
            snprintf(what, sizeof(what), "%s width", want[type][k].name);
            CHECK_EQ(what, 1, rb(qt, HDR_WIDTH));
            snprintf(what, sizeof(what), "%s offset", want[type][k].name);
            CHECK_EQ(what, want[type][k].offset, rl(qt, HDR_OFFSET));
            snprintf(what, sizeof(what), "%s data (as a dword read)", want[type][k].name);
            CHECK_EQ(what, want[type][k].data, rl(qt, HDR_DATA));
            snprintf(what, sizeof(what), "%s count", want[type][k].name);
            CHECK_EQ(what, 0, rl(qt, HDR_COUNT));
            read_name(qt, pio, name, sizeof(name));
            CHECK_STREQ("test name", want[type][k].name, name);
            /* QEMU: the NUL and everything after read 0. */
            unsigned end = HDR_NAME + (unsigned)strlen(want[type][k].name);
            snprintf(what, sizeof(what), "%s byte past the name", want[type][k].name);
            CHECK_EQ(what, 0, rb(qt, end + 1));
        }
        /* Selecting 3 selects nothing: the walk stops at width 0. */
        if (pio)
            pio_wb(qt, HDR_TEST, 3);
        else
            mem_wb(qt, HDR_TEST, 3);
        CHECK_EQ("width after selecting test 3", 0,
                 pio ? pio_rb(qt, HDR_WIDTH) : mem_rb(qt, HDR_WIDTH));
    }
    qtest_quit(qt);
}

static void test_no_eventfd_counts_matching_byte_writes(void)
{
    QTest *qt = start_mapped(NULL);
    mem_wb(qt, HDR_TEST, 0);                            /* mmio-no-eventfd */
    for (int i = 0; i < 16; i++)
        mem_wb(qt, 2048, 0xfa);
    CHECK_EQ("mmio-no-eventfd count after 16 writes of 0xfa", 16, mem_rl(qt, HDR_COUNT));
    mem_wb(qt, 2048, 0x11);                             /* wrong data */
    mem_wb(qt, 2047, 0xfa);                             /* wrong offset */
    mem_wb(qt, 2049, 0xfa);
    CHECK_EQ("count after non-matching writes", 16, mem_rl(qt, HDR_COUNT));
    /* A dword write reaches the device byte by byte: its low byte 0xfa counts. */
    qtest_writel(qt, MMIO_BASE + 2048, 0x000000fa);
    CHECK_EQ("count after a dword write with low byte 0xfa", 17, mem_rl(qt, HDR_COUNT));
    /* Reselecting zeroes the count. */
    mem_wb(qt, HDR_TEST, 0);
    CHECK_EQ("count after reselecting", 0, mem_rl(qt, HDR_COUNT));

    pio_wb(qt, HDR_TEST, 0);                            /* portio-no-eventfd */
    for (int i = 0; i < 16; i++)
        pio_wb(qt, 131, 0xfa);
    CHECK_EQ("portio-no-eventfd count after 16 writes of 0xfa", 16, pio_rl(qt, HDR_COUNT));
    pio_wb(qt, 131, 0xce);
    CHECK_EQ("portio count after a write of 0xce", 16, pio_rl(qt, HDR_COUNT));
    qtest_quit(qt);
}

static void test_eventfd_tests_absorb_matching_writes(void)
{
    QTest *qt = start_mapped(NULL);
    mem_wb(qt, HDR_TEST, 1);                            /* mmio-wildcard-eventfd */
    for (int i = 0; i < 16; i++)
        mem_wb(qt, 2049, 0xce);
    mem_wb(qt, 2049, 0x42);                             /* wildcard: any byte */
    CHECK_EQ("mmio-wildcard-eventfd count (notifier takes byte writes)", 0,
             mem_rl(qt, HDR_COUNT));

    pio_wb(qt, HDR_TEST, 2);                            /* portio-datamatch-eventfd */
    for (int i = 0; i < 16; i++)
        pio_wb(qt, 133, 0xfa);
    CHECK_EQ("portio-datamatch-eventfd count (notifier takes 0xfa)", 0,
             pio_rl(qt, HDR_COUNT));
    pio_wb(qt, 133, 0x01);
    CHECK_EQ("count after a non-matching byte (not the notifier's, not the test's)", 0,
             pio_rl(qt, HDR_COUNT));
    /* A word write does not match the 1-byte notifier: its low byte counts. */
    qtest_outw(qt, PIO_BASE + 133, 0x00fa);
    CHECK_EQ("count after a word write with low byte 0xfa", 1, pio_rl(qt, HDR_COUNT));
    qtest_quit(qt);
}

static void test_decoding_off_hides_the_bars(void)
{
    int devfn;
    QTest *qt = start_mapped(&devfn);
    mem_wb(qt, HDR_TEST, 0);
    CHECK_EQ("width with decoding on", 1, mem_rb(qt, HDR_WIDTH));
    qtest_pci_cfg_writel(qt, devfn, PCI_COMMAND, 0);
    CHECK_MSG(pio_rb(qt, HDR_WIDTH) == 0xff, "I/O BAR still decodes with COMMAND.IO clear");
    CHECK_MSG(mem_rb(qt, HDR_WIDTH) != 1, "memory BAR still decodes with COMMAND.MEM clear");
    qtest_quit(qt);
}

static void test_system_reset_deselects_and_unmaps(void)
{
    int devfn;
    QTest *qt = start_mapped(&devfn);
    mem_wb(qt, HDR_TEST, 0);
    mem_wb(qt, 2048, 0xfa);
    qtest_system_reset(qt);
    CHECK_EQ("COMMAND after reset", 0, qtest_pci_cfg_readl(qt, devfn, PCI_COMMAND) & 0xffff);
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR0, MMIO_BASE);
    qtest_pci_cfg_writel(qt, devfn, PCI_BAR1, PIO_BASE);
    qtest_pci_cfg_writel(qt, devfn, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEM);
    CHECK_EQ("header after reset (no test selected)", 0, mem_rl(qt, HDR_OFFSET));
    qtest_quit(qt);
}

static void test_bad_addr_is_a_user_error(void)
{
    const char *args[] = { "-device", "pci-testdev,addr=zz", NULL };
    qtest_expect_user_error(args, "zz");
}

static const TestCase cases[] = {
    TEST_CASE(test_config_ids_class_and_no_interrupt_pin),
    TEST_CASE(test_bar_sizing_4k_memory_and_256_byte_io),
    TEST_CASE(test_addr_property_places_the_function),
    TEST_CASE(test_no_test_selected_reads_zero),
    TEST_CASE(test_table_contents_through_both_bars),
    TEST_CASE(test_no_eventfd_counts_matching_byte_writes),
    TEST_CASE(test_eventfd_tests_absorb_matching_writes),
    TEST_CASE(test_decoding_off_hides_the_bars),
    TEST_CASE(test_system_reset_deselects_and_unmaps),
    TEST_CASE(test_bad_addr_is_a_user_error),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pci-testdev", cases, argc, argv);
}

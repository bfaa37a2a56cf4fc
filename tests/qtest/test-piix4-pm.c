/*
 * The PIIX4 power-management function ("piix4-pm", hw/pc/piix4_pm.c, PCI
 * 00:01.3): its configuration registers through the host bridge's 0xCF8/
 * 0xCFC, PMBASE decoding, the ACPI PM timer at 3.579545 MHz and its
 * overflow status/SCI (IRQ 9), PM1 status write-1-to-clear, S5 soft-off,
 * the APM ACPI-enable handshake on 0xB2, GPE0, the SMBus host's "no device"
 * error, hostile base addresses, and the direct-boot default PMBASE 0x600.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PM_DEVFN        ((1 << 3) | 3)

#define PMBA            0x40
#define DEVACTB3        0x5b
#define PMREGMISC       0x80
#define SMBBA           0x90
#define SMBHSTCFG       0xd2

#define PMBASE          0x600
#define PM1_STS         (PMBASE + 0)
#define PM1_EN          (PMBASE + 2)
#define PM1_CNT         (PMBASE + 4)
#define PM_TMR          (PMBASE + 8)
#define  STS_TMR         0x0001
#define  EN_TMR          0x0001
#define  CNT_SCI_EN      0x0001
#define  CNT_SLP_EN      0x2000
#define  CNT_SLP_TYP(t)  ((t) << 10)
#define GPE0            0xafe0
#define SCI_IRQ         9

#define SMBBASE         0x700
#define SMBHSTSTS       (SMBBASE + 0)
#define SMBHSTCNT       (SMBBASE + 2)
#define SMBHSTCMD       (SMBBASE + 3)
#define SMBHSTADD       (SMBBASE + 4)
#define  HSTSTS_BUSY     0x01
#define  HSTSTS_INTR     0x02
#define  HSTSTS_DEV_ERR  0x04

#define PM_TMR_HZ       3579545ULL
#define S               1000000000LL
#define MS              1000000LL

/* What SeaBIOS does (firmware-seabios.md §7), with PMBASE 0x600. */
static void pm_enable(QTest *qt, uint16_t base)
{
    qtest_pci_cfg_writel(qt, PM_DEVFN, PMBA, base | 1);
    qtest_pci_cfg_writeb(qt, PM_DEVFN, PMREGMISC, 0x01);
}

static uint32_t pm_ticks(int64_t ns)
{
    return (uint32_t)((unsigned __int128)ns * PM_TMR_HZ / S) & 0xffffff;
}

/* First virtual time at which PM_TMR bit 23 next toggles after 'now'. */
static int64_t next_toggle_ns(int64_t now)
{
    uint64_t t = (uint64_t)((unsigned __int128)now * PM_TMR_HZ / S);
    uint64_t next = (t | 0x7fffff) + 1;
    return (int64_t)(((unsigned __int128)next * S + PM_TMR_HZ - 1) / PM_TMR_HZ);
}

/* The host bridge must answer before anything else here makes sense. */
static QTest *start(const char *args)
{
    QTest *qt = qtest_start(args);
    if (qtest_pci_cfg_readl(qt, PM_DEVFN, 0x00) != 0x71138086) {
        uint32_t id = qtest_pci_cfg_readl(qt, PM_DEVFN, 0x00);
        qtest_quit(qt);
        test_fail(__FILE__, __LINE__, "00:01.3 vendor/device: expected 0x71138086, got 0x%08x",
                  id);
    }
    return qt;
}

static void test_config_identity_and_defaults(void)
{
    QTest *qt = start("");
    CHECK_EQ("class code / revision", 0x06800003, qtest_pci_cfg_readl(qt, PM_DEVFN, 0x08));
    CHECK_EQ("subsystem 1af4:1100", 0x11001af4, qtest_pci_cfg_readl(qt, PM_DEVFN, 0x2c));
    CHECK_EQ("INTERRUPT_PIN (INTA)", 1, qtest_pci_cfg_readb(qt, PM_DEVFN, 0x3d));
    CHECK_EQ("PMBA after reset (I/O indicator only)", 0x00000001, qtest_pci_cfg_readl(qt, PM_DEVFN, PMBA));
    CHECK_EQ("DEVACTB byte 3: APMC_EN preset (no SMM)", 0x02, qtest_pci_cfg_readb(qt, PM_DEVFN, DEVACTB3));
    CHECK_EQ("PMREGMISC after reset", 0, qtest_pci_cfg_readb(qt, PM_DEVFN, PMREGMISC));
    CHECK_EQ("SMBBA after reset", 0x00000001, qtest_pci_cfg_readl(qt, PM_DEVFN, SMBBA));
    qtest_pci_cfg_writel(qt, PM_DEVFN, PMBA, 0xffffffff);
    CHECK_EQ("PMBA writable bits 15:6, bit 0 reads 1", 0x0000ffc1, qtest_pci_cfg_readl(qt, PM_DEVFN, PMBA));
    qtest_pci_cfg_writel(qt, PM_DEVFN, SMBBA, 0xffffffff);
    CHECK_EQ("SMBBA writable bits 15:4, bit 0 reads 1", 0x0000fff1, qtest_pci_cfg_readl(qt, PM_DEVFN, SMBBA));
    qtest_quit(qt);
}

static void test_pmbase_decodes_only_when_enabled(void)
{
    QTest *qt = start("");
    CHECK_EQ("PM_TMR before PMBASE is programmed", 0xffffffff, qtest_inl(qt, PM_TMR));
    qtest_pci_cfg_writel(qt, PM_DEVFN, PMBA, PMBASE | 1);
    CHECK_EQ("PM_TMR with PMIOSE still clear", 0xffffffff, qtest_inl(qt, PM_TMR));
    qtest_pci_cfg_writeb(qt, PM_DEVFN, PMREGMISC, 0x01);
    CHECK_MSG(qtest_inl(qt, PM_TMR) <= 0xffffff, "PM_TMR not a 24-bit value once decoded");
    pm_enable(qt, 0x1000);
    CHECK_EQ("old PMBASE released after a move", 0xffffffff, qtest_inl(qt, PM_TMR));
    CHECK_MSG(qtest_inl(qt, 0x1008) <= 0xffffff, "PM_TMR not at the new PMBASE 0x1000");
    qtest_pci_cfg_writeb(qt, PM_DEVFN, PMREGMISC, 0x00);
    CHECK_EQ("PM block after PMIOSE cleared", 0xffffffff, qtest_inl(qt, 0x1008));
    qtest_quit(qt);
}

static void test_pm_timer_counts_at_3_579545_mhz(void)
{
    QTest *qt = start("");
    pm_enable(qt, PMBASE);
    int64_t now = qtest_clock_step(qt, 0);
    CHECK_EQ("PM_TMR at the current virtual time", pm_ticks(now), qtest_inl(qt, PM_TMR));
    uint32_t t0 = qtest_inl(qt, PM_TMR);
    now = qtest_clock_step(qt, 1 * S);
    CHECK_EQ("PM_TMR advance over 1 s (mod 2^24)", (t0 + 3579545) & 0xffffff,
             qtest_inl(qt, PM_TMR));
    now = qtest_clock_step(qt, 1234567);
    CHECK_EQ("PM_TMR after 1.234567 ms more", pm_ticks(now), qtest_inl(qt, PM_TMR));
    CHECK_EQ("PM_TMR word read = low half", pm_ticks(now) & 0xffff, qtest_inw(qt, PM_TMR));
    CHECK_EQ("PM_TMR byte +2", (pm_ticks(now) >> 16) & 0xff, qtest_inb(qt, PM_TMR + 2));
    qtest_outl(qt, PM_TMR, 0);
    CHECK_EQ("PM_TMR is read-only", pm_ticks(now), qtest_inl(qt, PM_TMR));
    qtest_quit(qt);
}

static void test_tmr_overflow_sets_sts_and_raises_sci(void)
{
    QTest *qt = start("");
    qtest_irq_intercept(qt);
    pm_enable(qt, PMBASE);
    qtest_outw(qt, PM1_EN, EN_TMR);
    CHECK_EQ("PM1_EN readback", EN_TMR, qtest_inw(qt, PM1_EN));
    int64_t now = qtest_clock_step(qt, 0);
    int64_t toggle = next_toggle_ns(now);
    qtest_clock_set(qt, toggle - 1);
    CHECK_EQ("TMR_STS before bit 23 toggles", 0, qtest_inw(qt, PM1_STS) & STS_TMR);
    CHECK_MSG(!qtest_get_irq(qt, SCI_IRQ), "SCI raised before the overflow");
    qtest_clock_step(qt, 1);
    CHECK_MSG(qtest_get_irq(qt, SCI_IRQ), "SCI (IRQ 9) not raised when bit 23 toggled");
    CHECK_EQ("TMR_STS after the toggle", STS_TMR, qtest_inw(qt, PM1_STS) & STS_TMR);
    CHECK_EQ("PM_TMR bit 23 toggled", (pm_ticks(toggle - 1) ^ 0x800000) & 0x800000,
             qtest_inl(qt, PM_TMR) & 0x800000);
    /* Next toggle: bit 23 falls again 2^23 ticks (~2.34 s) later, with SCI still level. */
    qtest_outw(qt, PM1_STS, STS_TMR);
    CHECK_MSG(!qtest_get_irq(qt, SCI_IRQ), "SCI still high after TMR_STS was cleared");
    qtest_clock_set(qt, next_toggle_ns(toggle));
    CHECK_MSG(qtest_get_irq(qt, SCI_IRQ), "SCI not raised at the second toggle");
    qtest_quit(qt);
}

static void test_tmr_sts_without_enable_and_w1c(void)
{
    QTest *qt = start("");
    qtest_irq_intercept(qt);
    pm_enable(qt, PMBASE);
    int64_t now = qtest_clock_step(qt, 0);
    qtest_clock_set(qt, next_toggle_ns(now));
    CHECK_EQ("TMR_STS set with TMR_EN clear", STS_TMR, qtest_inw(qt, PM1_STS));
    CHECK_MSG(!qtest_get_irq(qt, SCI_IRQ), "SCI raised with TMR_EN clear");
    qtest_outw(qt, PM1_STS, 0xfffe);
    CHECK_EQ("writing 0 to TMR_STS keeps it", STS_TMR, qtest_inw(qt, PM1_STS));
    qtest_outw(qt, PM1_EN, EN_TMR);
    CHECK_MSG(qtest_get_irq(qt, SCI_IRQ), "SCI not raised when TMR_EN set with TMR_STS pending");
    qtest_outb(qt, PM1_STS, STS_TMR);
    CHECK_EQ("TMR_STS after writing 1 (byte access)", 0, qtest_inw(qt, PM1_STS));
    CHECK_MSG(!qtest_get_irq(qt, SCI_IRQ), "SCI high after W1C");
    qtest_quit(qt);
}

static void test_slp_en_s5_exits_process(void)
{
    QTest *qt = start("");
    pm_enable(qt, PMBASE);
    qtest_outw(qt, PM1_CNT, CNT_SLP_EN | CNT_SLP_TYP(0));
    CHECK_EQ("exit status after S5", 0, qtest_wait_exit(qt, test_timeout(10)));
    qtest_quit(qt);
}

static void test_slp_en_s5_with_no_shutdown_stays(void)
{
    QTest *qt = start("-no-shutdown");
    pm_enable(qt, PMBASE);
    qtest_outw(qt, PM1_CNT, CNT_SLP_EN | CNT_SLP_TYP(0));
    usleep(200 * 1000);
    CHECK_EQ("still answering after S5 with -no-shutdown (PMBA)", PMBASE | 1,
             qtest_pci_cfg_readl(qt, PM_DEVFN, PMBA));
    CHECK_EQ("SLP_EN reads 0", 0, qtest_inw(qt, PM1_CNT) & CNT_SLP_EN);
    qtest_quit(qt);
}

static void test_other_sleep_types_ignored(void)
{
    QTest *qt = start("");
    pm_enable(qt, PMBASE);
    for (int typ = 1; typ < 8; typ++)
        qtest_outw(qt, PM1_CNT, CNT_SLP_EN | CNT_SLP_TYP(typ));
    usleep(200 * 1000);
    CHECK_EQ("SLP_TYP kept, SLP_EN not", CNT_SLP_TYP(7), qtest_inw(qt, PM1_CNT));
    qtest_quit(qt);
}

static void test_apmc_acpi_enable_disable(void)
{
    QTest *qt = start("");
    pm_enable(qt, PMBASE);
    CHECK_EQ("SCI_EN after reset", 0, qtest_inw(qt, PM1_CNT) & CNT_SCI_EN);
    qtest_outb(qt, 0xb2, 0xf1);
    CHECK_EQ("SCI_EN after APMC 0xF1", CNT_SCI_EN, qtest_inw(qt, PM1_CNT) & CNT_SCI_EN);
    qtest_outb(qt, 0xb2, 0x00);                  /* would be an SMI: logged only */
    CHECK_EQ("SCI_EN unchanged by another APMC value", CNT_SCI_EN,
             qtest_inw(qt, PM1_CNT) & CNT_SCI_EN);
    qtest_outb(qt, 0xb2, 0xf0);
    CHECK_EQ("SCI_EN after APMC 0xF0", 0, qtest_inw(qt, PM1_CNT) & CNT_SCI_EN);
    CHECK_EQ("APMC reads back", 0xf0, qtest_inb(qt, 0xb2));
    qtest_outb(qt, 0xb3, 0x5a);
    CHECK_EQ("APMS scratch", 0x5a, qtest_inb(qt, 0xb3));
    qtest_quit(qt);
}

static void test_gpe0_block(void)
{
    QTest *qt = start("");
    qtest_irq_intercept(qt);
    qtest_outb(qt, GPE0 + 2, 0xa5);
    qtest_outb(qt, GPE0 + 3, 0x3c);
    CHECK_EQ("GPE0_EN bytes", 0x3ca5, qtest_inw(qt, GPE0 + 2));
    CHECK_EQ("GPE0_STS (nothing raises GPEs)", 0, qtest_inw(qt, GPE0));
    qtest_outw(qt, GPE0, 0xffff);
    CHECK_EQ("GPE0_STS after W1C", 0, qtest_inw(qt, GPE0));
    CHECK_MSG(!qtest_get_irq(qt, SCI_IRQ), "SCI raised without a GPE status");
    qtest_quit(qt);
}

static void test_bogus_pmbase_values(void)
{
    QTest *qt = start("");
    pm_enable(qt, 0x0000);                       /* over the DMA controller */
    pm_enable(qt, 0xffff);                       /* 0xFFC0: top of the port space */
    CHECK_MSG(qtest_inl(qt, 0xffc8) <= 0xffffff, "PM_TMR not decoded at PMBASE 0xFFC0");
    pm_enable(qt, 0x0060);                       /* 0x40-0x7F: PIT, i8042, RTC */
    CHECK_EQ("nothing decoded at 0x48 (overlap refused)", 0xffffffff, qtest_inl(qt, 0xffc8));
    qtest_outb(qt, 0x70, 0x0d);
    CHECK_EQ("RTC register D still reachable", 0x80, qtest_inb(qt, 0x71) & 0x80);
    pm_enable(qt, PMBASE);
    CHECK_MSG(qtest_inl(qt, PM_TMR) <= 0xffffff, "PM_TMR not decoded after a sane PMBASE");
    qtest_quit(qt);
}

static void test_smbus_transaction_ends_with_dev_err(void)
{
    QTest *qt = start("");
    qtest_pci_cfg_writel(qt, PM_DEVFN, SMBBA, SMBBASE | 1);
    qtest_pci_cfg_writeb(qt, PM_DEVFN, SMBHSTCFG, 0x09);
    CHECK_EQ("SMBus not decoded with COMMAND.IO clear", 0xff, qtest_inb(qt, SMBHSTSTS));
    qtest_pci_cfg_writeb(qt, PM_DEVFN, 0x04, 0x01);                  /* COMMAND: I/O space */
    CHECK_EQ("SMBHSTSTS idle", 0, qtest_inb(qt, SMBHSTSTS));
    qtest_outb(qt, SMBHSTADD, 0x50 << 1 | 1);    /* read from an SPD EEPROM address */
    qtest_outb(qt, SMBHSTCMD, 0x00);
    qtest_outb(qt, SMBHSTCNT, 0x48);             /* START, byte-data protocol */
    uint8_t sts = qtest_inb(qt, SMBHSTSTS);
    CHECK_EQ("SMBHSTSTS: DEV_ERR, not busy", HSTSTS_DEV_ERR, sts & (HSTSTS_DEV_ERR | HSTSTS_BUSY));
    CHECK_EQ("SMBHSTCNT: START reads 0", 0x08, qtest_inb(qt, SMBHSTCNT));
    qtest_outb(qt, SMBHSTSTS, 0x1e);
    CHECK_EQ("SMBHSTSTS after W1C", 0, qtest_inb(qt, SMBHSTSTS));
    qtest_pci_cfg_writeb(qt, PM_DEVFN, SMBHSTCFG, 0x00);
    CHECK_EQ("SMBus undecoded once disabled", 0xff, qtest_inb(qt, SMBHSTSTS));
    qtest_quit(qt);
}

static void test_reset_unmaps_pmbase_and_restores_config(void)
{
    QTest *qt = start("");
    pm_enable(qt, PMBASE);
    qtest_outw(qt, PM1_EN, EN_TMR);
    qtest_pci_cfg_writeb(qt, PM_DEVFN, DEVACTB3, 0x00);
    qtest_system_reset(qt);
    CHECK_EQ("PMBA after reset", 0x00000001, qtest_pci_cfg_readl(qt, PM_DEVFN, PMBA));
    CHECK_EQ("APMC_EN after reset", 0x02, qtest_pci_cfg_readb(qt, PM_DEVFN, DEVACTB3));
    CHECK_EQ("PM block after reset", 0xffffffff, qtest_inl(qt, PM_TMR));
    pm_enable(qt, PMBASE);
    CHECK_EQ("PM1_EN after reset", 0, qtest_inw(qt, PM1_EN));
    qtest_quit(qt);
}

/*
 * Direct boot (-kernel, no firmware): nobody programs the function, so it
 * decodes at 0x600 from reset, where the ACPI tables put PM1a and PM_TMR.
 * The kernel is a minimal Multiboot a.out-kludge image: qtest runs no CPU.
 */
static void test_direct_boot_maps_pmbase_0x600(void)
{
    char path[] = "/tmp/kestrel-piix4-mbXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    uint32_t hdr[12] = { 0x1badb002, 0x00010000, 0, 0x100000, 0x100000, 0, 0, 0x100020 };
    hdr[2] = (uint32_t)-(hdr[0] + hdr[1]);
    CHECK(write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
    close(fd);
    char args[128];
    snprintf(args, sizeof(args), "-kernel %s", path);
    QTest *qt = start(args);
    unlink(path);
    CHECK_EQ("PMBA for a direct boot", 0x601, qtest_pci_cfg_readl(qt, PM_DEVFN, PMBA));
    CHECK_EQ("PMREGMISC for a direct boot", 0x01, qtest_pci_cfg_readb(qt, PM_DEVFN, PMREGMISC));
    CHECK_MSG(qtest_inl(qt, PM_TMR) <= 0xffffff, "PM_TMR not at 0x608 in a direct boot");
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_config_identity_and_defaults),
    TEST_CASE(test_pmbase_decodes_only_when_enabled),
    TEST_CASE(test_pm_timer_counts_at_3_579545_mhz),
    TEST_CASE(test_tmr_overflow_sets_sts_and_raises_sci),
    TEST_CASE(test_tmr_sts_without_enable_and_w1c),
    TEST_CASE(test_slp_en_s5_exits_process),
    TEST_CASE(test_slp_en_s5_with_no_shutdown_stays),
    TEST_CASE(test_other_sleep_types_ignored),
    TEST_CASE(test_apmc_acpi_enable_disable),
    TEST_CASE(test_gpe0_block),
    TEST_CASE(test_bogus_pmbase_values),
    TEST_CASE(test_smbus_transaction_ends_with_dev_err),
    TEST_CASE(test_reset_unmaps_pmbase_and_restores_config),
    TEST_CASE(test_direct_boot_maps_pmbase_0x600),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("piix4-pm", cases, argc, argv);
}

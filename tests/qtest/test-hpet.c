/*
 * The HPET ("hpet", hw/pc/hpet.c) at 0xFED00000 (IA-PC HPET 1.0a): the
 * capability and period registers, the main counter on the virtual clock
 * (running only while ENABLE_CNF is set), one-shot and periodic timers in
 * legacy replacement (IRQ 0 / IRQ 8) and routed to a GSI, level-mode status
 * and its write-1-to-clear, 32-bit mode wrap-around, and robustness.
 *
 * IRQ numbering: qtest reports the board's lines, where n < 16 is ISA IRQ n
 * (the board itself routes ISA IRQ 0 to IOAPIC pin 2) and 16-23 are GSIs.
 * Edge interrupts are counted through the 8259's poll command, since a
 * pulse leaves no level behind for qtest to see.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#define HPET            0xfed00000ULL
#define GCAP_ID         (HPET + 0x000)
#define GEN_CONF        (HPET + 0x010)
#define  CONF_ENABLE     0x1
#define  CONF_LEG_RT     0x2
#define GINTR_STA       (HPET + 0x020)
#define MAIN_CNT        (HPET + 0x0f0)
#define TN_CONF(n)      (HPET + 0x100 + 0x20 * (n))
#define TN_CMP(n)       (HPET + 0x108 + 0x20 * (n))
#define TN_FSB(n)       (HPET + 0x110 + 0x20 * (n))
#define  TN_INT_LEVEL    (1u << 1)
#define  TN_INT_ENB      (1u << 2)
#define  TN_PERIODIC     (1u << 3)
#define  TN_PER_INT_CAP  (1u << 4)
#define  TN_SIZE_CAP     (1u << 5)
#define  TN_VAL_SET      (1u << 6)
#define  TN_32MODE       (1u << 8)
#define  TN_ROUTE(g)     ((uint32_t)(g) << 9)
#define  TN_FSB_EN       (1u << 14)
#define  TN_FSB_CAP      (1u << 15)

#define NS_PER_TICK     10            /* 100 MHz */
#define US              1000LL
#define MS              1000000LL

/* Master 8259 at base 0x20, IRQ0 only unmasked; the PIT's counter 0 stopped. */
static void pic_init_quiet_pit(QTest *qt)
{
    qtest_outb(qt, 0x20, 0x11);
    qtest_outb(qt, 0x21, 0x20);
    qtest_outb(qt, 0x21, 0x04);
    qtest_outb(qt, 0x21, 0x01);
    qtest_outb(qt, 0x21, 0xfe);
    /* PIT counter 0 in mode 0 with no count written: OUT stays low, no edges. */
    qtest_outb(qt, 0x43, 0x30);
    qtest_outb(qt, 0x20, 0x0c);
    if (qtest_inb(qt, 0x20) & 0x80)
        qtest_outb(qt, 0x20, 0x20);
}

/* One 8259 poll: true if IRQ0 was requested (and acknowledge it). */
static bool irq0_polled(QTest *qt)
{
    qtest_outb(qt, 0x20, 0x0c);
    uint8_t v = qtest_inb(qt, 0x20);
    if (v & 0x80) {
        qtest_outb(qt, 0x20, 0x20);
        return (v & 7) == 0;
    }
    return false;
}

static void test_capabilities_and_period(void)
{
    QTest *qt = qtest_start("");
    CHECK_EQ("GCAP_ID low dword (vendor 8086, legacy, 64-bit, 3 timers, rev 1)",
             0x8086a201, qtest_readl(qt, GCAP_ID));
    CHECK_EQ("COUNTER_CLK_PERIOD (fs)", 10000000, qtest_readl(qt, GCAP_ID + 4));
    CHECK_EQ("GCAP_ID as one qword", 0x009896808086a201ULL, qtest_readq(qt, GCAP_ID));
    for (int n = 0; n < 3; n++) {
        uint32_t cap = qtest_readl(qt, TN_CONF(n));
        CHECK_EQ("Tn_CONF capability bits (periodic, 64-bit, no FSB as in QEMU)",
                 TN_PER_INT_CAP | TN_SIZE_CAP, cap & (TN_PER_INT_CAP | TN_SIZE_CAP | TN_FSB_CAP));
        CHECK_EQ("Tn_INT_ROUTE_CAP (GSI 2, 16-23)", 0x00ff0004, qtest_readl(qt, TN_CONF(n) + 4));
        CHECK_EQ("Tn_COMPARATOR after reset", UINT64_MAX, qtest_readq(qt, TN_CMP(n)));
    }
    CHECK_EQ("GEN_CONF after reset", 0, qtest_readq(qt, GEN_CONF));
    CHECK_EQ("reserved offset 0x3f8", 0, qtest_readl(qt, HPET + 0x3f8));
    qtest_writel(qt, GCAP_ID, 0);
    CHECK_EQ("GCAP_ID is read-only", 0x8086a201, qtest_readl(qt, GCAP_ID));
    qtest_quit(qt);
}

static void test_counter_runs_only_while_enabled(void)
{
    QTest *qt = qtest_start("");
    qtest_clock_step(qt, 1 * MS);
    CHECK_EQ("MAIN_CNT while halted", 0, qtest_readq(qt, MAIN_CNT));
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 1 * MS + 15);
    CHECK_EQ("MAIN_CNT after 1 ms + 15 ns at 100 MHz", 100001, qtest_readq(qt, MAIN_CNT));
    qtest_writel(qt, GEN_CONF, 0);
    uint64_t frozen = qtest_readq(qt, MAIN_CNT);
    qtest_clock_step(qt, 5 * MS);
    CHECK_EQ("MAIN_CNT frozen by ENABLE_CNF=0", frozen, qtest_readq(qt, MAIN_CNT));
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 10 * US);
    CHECK_EQ("MAIN_CNT resumes from the frozen value", frozen + 1000, qtest_readq(qt, MAIN_CNT));
    qtest_quit(qt);
}

static void test_counter_writable_while_halted(void)
{
    QTest *qt = qtest_start("");
    qtest_writeq(qt, MAIN_CNT, 0x123456789abcULL);
    CHECK_EQ("MAIN_CNT qword write", 0x123456789abcULL, qtest_readq(qt, MAIN_CNT));
    qtest_writel(qt, MAIN_CNT + 4, 0x1);
    CHECK_EQ("MAIN_CNT high dword write", 0x156789abcULL, qtest_readq(qt, MAIN_CNT));
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 1 * US);
    CHECK_EQ("MAIN_CNT low dword after 100 ticks", 0x56789abcu + 100, qtest_readl(qt, MAIN_CNT));
    CHECK_EQ("MAIN_CNT high dword", 0x1, qtest_readl(qt, MAIN_CNT + 4));
    qtest_quit(qt);
}

static void test_legacy_timer0_oneshot_edge_on_irq0(void)
{
    QTest *qt = qtest_start("");
    pic_init_quiet_pit(qt);
    qtest_writel(qt, TN_CONF(0), TN_INT_ENB);
    qtest_writeq(qt, TN_CMP(0), 1000);                 /* 10 us */
    qtest_writel(qt, GEN_CONF, CONF_ENABLE | CONF_LEG_RT);
    qtest_clock_step(qt, 9990);
    CHECK_MSG(!irq0_polled(qt), "IRQ0 requested one tick before the comparator match");
    qtest_clock_step(qt, 10);
    CHECK_MSG(irq0_polled(qt), "no IRQ0 at the comparator match in legacy mode");
    CHECK_EQ("GINTR_STA stays 0 for an edge timer", 0, qtest_readl(qt, GINTR_STA));
    qtest_clock_step(qt, 100 * MS);
    CHECK_MSG(!irq0_polled(qt), "a 64-bit one-shot fired again");
    qtest_quit(qt);
}

static void test_legacy_timer1_level_on_irq8(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writel(qt, TN_CONF(1), TN_INT_ENB | TN_INT_LEVEL | TN_ROUTE(20));
    qtest_writeq(qt, TN_CMP(1), 500);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE | CONF_LEG_RT);
    qtest_clock_step(qt, 4990);
    CHECK_MSG(!qtest_get_irq(qt, 8), "IRQ8 high before the match");
    qtest_clock_step(qt, 10);
    CHECK_MSG(qtest_get_irq(qt, 8), "IRQ8 low after timer 1 matched in legacy mode");
    CHECK_MSG(!qtest_get_irq(qt, 20), "legacy mode still used timer 1's own route");
    CHECK_EQ("GINTR_STA", 0x2, qtest_readl(qt, GINTR_STA));
    qtest_writel(qt, GINTR_STA, 0x2);
    CHECK_EQ("GINTR_STA after writing 1", 0, qtest_readl(qt, GINTR_STA));
    CHECK_MSG(!qtest_get_irq(qt, 8), "IRQ8 still high after clearing the status");
    qtest_quit(qt);
}

static void test_routed_gsi_oneshot_level_and_w1c(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writel(qt, TN_CONF(2), TN_INT_ENB | TN_INT_LEVEL | TN_ROUTE(17));
    qtest_writeq(qt, TN_CMP(2), 2000);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 19990);
    CHECK_MSG(!qtest_get_irq(qt, 17), "GSI 17 high before the match");
    qtest_clock_step(qt, 10);
    CHECK_MSG(qtest_get_irq(qt, 17), "GSI 17 low after timer 2 matched");
    CHECK_EQ("GINTR_STA", 0x4, qtest_readl(qt, GINTR_STA));
    qtest_writel(qt, GINTR_STA, 0x3);                  /* other bits: no effect */
    CHECK_EQ("GINTR_STA after writing 1s elsewhere", 0x4, qtest_readl(qt, GINTR_STA));
    CHECK_MSG(qtest_get_irq(qt, 17), "GSI 17 dropped without its status being cleared");
    qtest_writeq(qt, GINTR_STA, 0x4);
    CHECK_MSG(!qtest_get_irq(qt, 17), "GSI 17 still high after clearing the status");
    qtest_clock_step(qt, 1000 * MS);
    CHECK_EQ("one-shot did not match again", 0, qtest_readl(qt, GINTR_STA));
    qtest_quit(qt);
}

static void test_level_status_set_with_interrupt_disabled(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writel(qt, TN_CONF(2), TN_INT_LEVEL | TN_ROUTE(16));
    qtest_writeq(qt, TN_CMP(2), 100);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 1 * US);
    CHECK_EQ("GINTR_STA set by the match with INT_ENB clear", 0x4, qtest_readl(qt, GINTR_STA));
    CHECK_MSG(!qtest_get_irq(qt, 16), "GSI 16 raised with Tn_INT_ENB_CNF clear");
    qtest_writel(qt, TN_CONF(2), TN_INT_LEVEL | TN_INT_ENB | TN_ROUTE(16));
    CHECK_MSG(qtest_get_irq(qt, 16), "GSI 16 not raised once INT_ENB set with status pending");
    qtest_writel(qt, GEN_CONF, 0);
    CHECK_MSG(!qtest_get_irq(qt, 16), "GSI 16 held while the HPET is disabled");
    qtest_quit(qt);
}

static void test_periodic_timer_refires_on_irq0(void)
{
    QTest *qt = qtest_start("");
    pic_init_quiet_pit(qt);
    /* Linux's sequence: VAL_SET, first write = comparator, second = period. */
    qtest_writel(qt, TN_CONF(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET);
    qtest_writeq(qt, TN_CMP(0), 100000);               /* first match at 1 ms */
    qtest_writeq(qt, TN_CMP(0), 100000);               /* then every 1 ms */
    CHECK_EQ("VAL_SET clears itself", 0, qtest_readl(qt, TN_CONF(0)) & TN_VAL_SET);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE | CONF_LEG_RT);
    int got = 0;
    for (int i = 0; i < 20; i++) {
        qtest_clock_step(qt, 500 * US);
        got += irq0_polled(qt);
    }
    CHECK_EQ("IRQ0 requests in 10 ms of a 1 ms periodic timer", 10, got);
    CHECK_EQ("comparator advanced to the next period", 1100000, qtest_readq(qt, TN_CMP(0)));
    qtest_quit(qt);
}

static void test_periodic_level_reasserts_after_clear(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writel(qt, TN_CONF(1), TN_INT_ENB | TN_INT_LEVEL | TN_PERIODIC | TN_VAL_SET |
                 TN_ROUTE(22));
    qtest_writeq(qt, TN_CMP(1), 5000);
    qtest_writeq(qt, TN_CMP(1), 5000);                 /* 50 us period */
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    for (int i = 0; i < 4; i++) {
        qtest_clock_step(qt, 50 * US);
        CHECK_MSG(qtest_get_irq(qt, 22), "GSI 22 low after a period elapsed");
        qtest_writel(qt, GINTR_STA, 0x2);
        CHECK_MSG(!qtest_get_irq(qt, 22), "GSI 22 still high after clearing the status");
    }
    qtest_quit(qt);
}

static void test_32bit_mode_comparator_wraps(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writeq(qt, MAIN_CNT, 0xfffffff0ULL);
    qtest_writel(qt, TN_CONF(2), TN_INT_ENB | TN_INT_LEVEL | TN_32MODE | TN_ROUTE(16));
    qtest_writeq(qt, TN_CMP(2), 0xabcd00000010ULL);
    CHECK_EQ("32-bit mode comparator keeps only the low dword", 0x10, qtest_readq(qt, TN_CMP(2)));
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 0x1f * NS_PER_TICK);
    CHECK_MSG(!qtest_get_irq(qt, 16), "fired before the 32-bit counter wrapped to 0x10");
    qtest_clock_step(qt, NS_PER_TICK);
    CHECK_MSG(qtest_get_irq(qt, 16), "no interrupt when the low 32 bits reached 0x10");
    CHECK_EQ("the main counter itself is 64-bit", 0x100000010ULL, qtest_readq(qt, MAIN_CNT));
    /* A 32-bit one-shot matches again after a full 2^32-tick wrap (~42.9 s). */
    qtest_writel(qt, GINTR_STA, 0x4);
    qtest_clock_step(qt, ((1LL << 32) - 1) * NS_PER_TICK);
    CHECK_MSG(!qtest_get_irq(qt, 16), "32-bit one-shot fired early");
    qtest_clock_step(qt, NS_PER_TICK);
    CHECK_MSG(qtest_get_irq(qt, 16), "32-bit one-shot did not match after the wrap");
    qtest_quit(qt);
}

static void test_comparator_in_the_past_fires_once(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 100 * US);                    /* counter at 10000 */
    qtest_writel(qt, TN_CONF(0), TN_INT_ENB | TN_INT_LEVEL | TN_ROUTE(18));
    qtest_writeq(qt, TN_CMP(0), 10);
    qtest_clock_step(qt, 0);
    CHECK_MSG(qtest_get_irq(qt, 18), "a comparator already passed did not fire at once");
    qtest_writel(qt, GINTR_STA, 0x1);
    qtest_clock_step(qt, 1000 * MS);
    CHECK_EQ("fired again after the one match", 0, qtest_readl(qt, GINTR_STA));
    qtest_quit(qt);
}

static void test_unrouted_gsi_raises_nothing(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    /* GSI 5 is not in Tn_INT_ROUTE_CAP: nothing is driven. */
    qtest_writel(qt, TN_CONF(2), TN_INT_ENB | TN_INT_LEVEL | TN_ROUTE(5));
    qtest_writeq(qt, TN_CMP(2), 10);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    qtest_clock_step(qt, 1 * US);
    CHECK_EQ("status still set by the match", 0x4, qtest_readl(qt, GINTR_STA));
    for (int g = 1; g < 24; g++)           /* line 0 is the PIT's square wave */
        CHECK_MSG(!qtest_get_irq(qt, g), "line %d raised by a timer routed outside its cap", g);
    /* Without the msi property FSB_EN cannot be set. */
    qtest_writel(qt, TN_CONF(1), TN_FSB_EN);
    CHECK_EQ("Tn_FSB_EN_CNF without FSB capability", 0, qtest_readl(qt, TN_CONF(1)) & TN_FSB_EN);
    qtest_quit(qt);
}

/* hpet.msi=on: FSB delivery writes the message to the LAPIC (IRR of CPU 0). */
static void test_fsb_delivery_with_msi_property(void)
{
    QTest *qt = qtest_start("-global hpet.msi=on");
    qtest_irq_intercept(qt);
    CHECK_EQ("Tn_FSB_INT_DEL_CAP with msi=on", TN_FSB_CAP, qtest_readl(qt, TN_CONF(1)) & TN_FSB_CAP);
    qtest_writel(qt, 0xfee000f0, 0x1ff);                /* LAPIC software enable */
    qtest_writel(qt, TN_CONF(1), TN_INT_ENB | TN_FSB_EN | TN_ROUTE(19));
    qtest_writeq(qt, TN_FSB(1), 0xfee00000ULL << 32 | 0x45);
    CHECK_EQ("FSB route readback", 0xfee0000000000045ULL, qtest_readq(qt, TN_FSB(1)));
    qtest_writeq(qt, TN_CMP(1), 10);
    qtest_writel(qt, GEN_CONF, CONF_ENABLE);
    CHECK_EQ("LAPIC IRR before the match", 0, qtest_readl(qt, 0xfee00220) & (1u << 5));
    qtest_clock_step(qt, 1 * US);
    CHECK_EQ("LAPIC IRR bit for vector 0x45", 1u << 5, qtest_readl(qt, 0xfee00220) & (1u << 5));
    CHECK_MSG(!qtest_get_irq(qt, 19), "FSB timer also raised its routed GSI");
    qtest_quit(qt);
}

static void test_all_ones_writes_do_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (uint64_t off = 0; off < 0x400; off += 4)
        qtest_writel(qt, HPET + off, 0xffffffff);
    qtest_clock_step(qt, 10 * MS);
    for (uint64_t off = 0; off < 0x400; off += 8)
        qtest_writeq(qt, HPET + off, UINT64_MAX);
    qtest_clock_step(qt, 10 * MS);
    /* Unaligned and narrow accesses are widened or refused by the core, never fatal. */
    qtest_writeb(qt, HPET + 0x101, 0xff);
    qtest_readw(qt, HPET + 0x10e);
    qtest_clock_step(qt, 10 * MS);
    CHECK_EQ("GCAP_ID unchanged", 0x8086a201, qtest_readl(qt, GCAP_ID));
    CHECK_EQ("GEN_CONF keeps only ENABLE and LEG_RT", 0x3, qtest_readq(qt, GEN_CONF));
    qtest_system_reset(qt);
    CHECK_EQ("GEN_CONF after reset", 0, qtest_readq(qt, GEN_CONF));
    CHECK_EQ("MAIN_CNT after reset", 0, qtest_readq(qt, MAIN_CNT));
    CHECK_EQ("T0 config after reset", 0, qtest_readl(qt, TN_CONF(0)) & 0x7f4e);
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_capabilities_and_period),
    TEST_CASE(test_counter_runs_only_while_enabled),
    TEST_CASE(test_counter_writable_while_halted),
    TEST_CASE(test_legacy_timer0_oneshot_edge_on_irq0),
    TEST_CASE(test_legacy_timer1_level_on_irq8),
    TEST_CASE(test_routed_gsi_oneshot_level_and_w1c),
    TEST_CASE(test_level_status_set_with_interrupt_disabled),
    TEST_CASE(test_periodic_timer_refires_on_irq0),
    TEST_CASE(test_periodic_level_reasserts_after_clear),
    TEST_CASE(test_32bit_mode_comparator_wraps),
    TEST_CASE(test_comparator_in_the_past_fires_once),
    TEST_CASE(test_unrouted_gsi_raises_nothing),
    TEST_CASE(test_fsb_delivery_with_msi_property),
    TEST_CASE(test_all_ones_writes_do_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("hpet", cases, argc, argv);
}

/*
 * The local APIC page at 0xfee00000 ("apic", hw/pc/apic.c) as CPU 0 sees
 * it (qtest has no CPU; its accesses count as CPU 0's): ID and version,
 * power-on register values, TPR/PPR, SVR software enable and its effect
 * on the LVT masks, DFR/LDR, ESR, and the timer in one-shot and periodic
 * modes against the virtual clock.  The CPU-side functions (pending, ack,
 * EOI, IPIs) are in tests/unit/test-irqchip.c.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#define LAPIC       0xfee00000ull
#define ID          0x020
#define VERSION     0x030
#define TPR         0x080
#define PPR         0x0a0
#define LDR         0x0d0
#define DFR         0x0e0
#define SVR         0x0f0
#define IRR         0x200
#define ESR         0x280
#define ICR_LO      0x300
#define ICR_HI      0x310
#define LVT_TIMER   0x320
#define LVT_LINT0   0x350
#define LVT_LINT1   0x360
#define LVT_ERROR   0x370
#define TIMER_ICR   0x380
#define TIMER_CCR   0x390
#define TIMER_DCR   0x3e0

#define LVT_MASKED  0x10000u
#define US          1000LL

static uint32_t rd(QTest *qt, unsigned reg)
{
    return qtest_readl(qt, LAPIC + reg);
}

static void wr(QTest *qt, unsigned reg, uint32_t v)
{
    qtest_writel(qt, LAPIC + reg, v);
}

static bool irr_bit(QTest *qt, int vec)
{
    return rd(qt, IRR + 0x10 * (vec >> 5)) & (1u << (vec & 31));
}

static void test_id_version_and_reset_values(void)
{
    QTest *qt = qtest_start("-smp 2");
    CHECK_EQ("APIC ID of CPU 0", 0x00000000, rd(qt, ID));
    CHECK_EQ("version (0x14, 6 LVT entries)", 0x00050014, rd(qt, VERSION));
    CHECK_EQ("SVR at reset (software disabled)", 0x000000ff, rd(qt, SVR));
    CHECK_EQ("DFR at reset (flat)", 0xffffffff, rd(qt, DFR));
    CHECK_EQ("TPR at reset", 0, rd(qt, TPR));
    CHECK_EQ("LVT timer at reset", LVT_MASKED, rd(qt, LVT_TIMER));
    CHECK_EQ("LVT LINT1 at reset", LVT_MASKED, rd(qt, LVT_LINT1));
    CHECK_EQ("BSP LVT LINT0: ExtINT virtual wire", 0x00000700, rd(qt, LVT_LINT0));
    qtest_quit(qt);
}

static void test_tpr_sets_ppr(void)
{
    QTest *qt = qtest_start("");
    wr(qt, TPR, 0x5f);
    CHECK_EQ("TPR", 0x5f, rd(qt, TPR));
    CHECK_EQ("PPR with nothing in service", 0x5f, rd(qt, PPR));
    wr(qt, TPR, 0x1ff);
    CHECK_EQ("TPR keeps 8 bits", 0xff, rd(qt, TPR));
    qtest_quit(qt);
}

static void test_svr_enable_and_lvt_masks(void)
{
    QTest *qt = qtest_start("");
    wr(qt, LVT_TIMER, 0x40);
    CHECK_EQ("LVT mask cannot be cleared while software disabled", LVT_MASKED | 0x40,
             rd(qt, LVT_TIMER));
    wr(qt, SVR, 0x1ff);
    CHECK_EQ("SVR enabled", 0x1ff, rd(qt, SVR));
    wr(qt, LVT_TIMER, 0x40);
    CHECK_EQ("LVT timer unmasked once enabled", 0x40, rd(qt, LVT_TIMER));
    wr(qt, LVT_ERROR, 0xfffffff);
    CHECK_EQ("LVT error keeps vector and mask only", 0x100ff, rd(qt, LVT_ERROR));
    wr(qt, SVR, 0x0ff);
    CHECK_EQ("software disable masks every LVT", LVT_MASKED | 0x40, rd(qt, LVT_TIMER));
    qtest_quit(qt);
}

static void test_ldr_dfr_writable_bits(void)
{
    QTest *qt = qtest_start("");
    wr(qt, LDR, 0xffffffff);
    CHECK_EQ("LDR bits 31:24", 0xff000000, rd(qt, LDR));
    wr(qt, DFR, 0x00000000);
    CHECK_EQ("DFR cluster model (low bits read 1)", 0x0fffffff, rd(qt, DFR));
    qtest_quit(qt);
}

static void test_timer_one_shot(void)
{
    QTest *qt = qtest_start("");
    wr(qt, SVR, 0x1ff);
    wr(qt, TIMER_DCR, 0x0b);                           /* divide by 1: 1 GHz */
    wr(qt, LVT_TIMER, 0x40);
    wr(qt, TIMER_ICR, 1000000);                        /* 1 ms */
    CHECK_EQ("initial count reads back", 1000000, rd(qt, TIMER_ICR));
    qtest_clock_step(qt, 250 * US);
    CHECK_EQ("current count after 250 us", 750000, rd(qt, TIMER_CCR));
    CHECK_MSG(!irr_bit(qt, 0x40), "timer vector early");
    qtest_clock_step(qt, 750 * US);
    CHECK_EQ("current count at expiry", 0, rd(qt, TIMER_CCR));
    CHECK_MSG(irr_bit(qt, 0x40), "timer vector not in IRR at expiry");
    qtest_quit(qt);
}

static void test_timer_periodic_and_divider(void)
{
    QTest *qt = qtest_start("");
    wr(qt, SVR, 0x1ff);
    wr(qt, TIMER_DCR, 0x03);                           /* divide by 16 */
    wr(qt, LVT_TIMER, 0x20041);                        /* periodic */
    wr(qt, TIMER_ICR, 1000);                           /* 16 us period */
    qtest_clock_step(qt, 40 * US);                     /* 2.5 periods */
    CHECK_EQ("current count 2.5 periods in", 500, rd(qt, TIMER_CCR));
    CHECK_MSG(irr_bit(qt, 0x41), "periodic vector not delivered");
    wr(qt, TIMER_ICR, 0);
    CHECK_EQ("count 0 stops the timer", 0, rd(qt, TIMER_CCR));
    qtest_quit(qt);
}

static void test_esr_latches_on_write(void)
{
    QTest *qt = qtest_start("");
    wr(qt, SVR, 0x1ff);
    wr(qt, ICR_HI, 0);
    wr(qt, ICR_LO, 0x00040003);                        /* self IPI, illegal vector 3 */
    CHECK_EQ("ESR before the latching write", 0, rd(qt, ESR));
    wr(qt, ESR, 0);
    CHECK_EQ("ESR: send illegal vector", 0x20, rd(qt, ESR));
    wr(qt, ESR, 0);
    CHECK_EQ("ESR cleared by the next write", 0, rd(qt, ESR));
    qtest_quit(qt);
}

static void test_self_ipi_lands_in_irr(void)
{
    QTest *qt = qtest_start("");
    wr(qt, SVR, 0x1ff);
    wr(qt, ICR_LO, 0x00040063);
    CHECK_MSG(irr_bit(qt, 0x63), "self IPI 0x63 not in IRR");
    CHECK_EQ("ICR low reads back (delivery status idle)", 0x00040063, rd(qt, ICR_LO));
    wr(qt, ICR_HI, 0x42000000);
    wr(qt, ICR_LO, 0x00000064);                        /* to absent APIC 0x42 */
    CHECK_MSG(!irr_bit(qt, 0x64), "IPI for an absent APIC landed on CPU 0");
    qtest_quit(qt);
}

static void test_garbage_does_not_crash(void)
{
    QTest *qt = qtest_start("-smp 2");
    for (unsigned i = 0; i < 1024; i++) {
        unsigned reg = (i * 0x34) & 0xffc;
        qtest_writel(qt, LAPIC + reg, i * 0x9e3779b9u);
        qtest_readl(qt, LAPIC + ((i * 0x58) & 0xffc));
    }
    qtest_clock_step(qt, 10000 * US);
    CHECK_EQ("version after garbage", 0x00050014, rd(qt, VERSION));
    qtest_quit(qt);
}

static void test_system_reset_restores_power_on_state(void)
{
    QTest *qt = qtest_start("");
    wr(qt, SVR, 0x1ff);
    wr(qt, TPR, 0x30);
    wr(qt, LVT_TIMER, 0x20040);
    wr(qt, TIMER_ICR, 1000000);
    qtest_system_reset(qt);
    CHECK_EQ("SVR after reset", 0xff, rd(qt, SVR));
    CHECK_EQ("TPR after reset", 0, rd(qt, TPR));
    CHECK_EQ("LVT timer after reset", LVT_MASKED, rd(qt, LVT_TIMER));
    CHECK_EQ("timer count after reset", 0, rd(qt, TIMER_CCR));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_id_version_and_reset_values),
    TEST_CASE(test_tpr_sets_ppr),
    TEST_CASE(test_svr_enable_and_lvt_masks),
    TEST_CASE(test_ldr_dfr_writable_bits),
    TEST_CASE(test_timer_one_shot),
    TEST_CASE(test_timer_periodic_and_divider),
    TEST_CASE(test_esr_latches_on_write),
    TEST_CASE(test_self_ipi_lands_in_irr),
    TEST_CASE(test_garbage_does_not_crash),
    TEST_CASE(test_system_reset_restores_power_on_state),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("apic", cases, argc, argv);
}

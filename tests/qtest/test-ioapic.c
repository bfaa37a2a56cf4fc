/*
 * The I/O APIC ("ioapic", hw/pc/ioapic.c) at 0xfec00000: ID, version and
 * arbitration registers, redirection entries with their read-only and
 * reserved bits, masking, level pins with Remote IRR and the EOI register.
 * Deliveries are observed in CPU 0's local APIC IRR (qtest accesses to the
 * LAPIC page act as CPU 0); the PIT on ISA IRQ 0 = IOAPIC pin 2 is the
 * interrupt source the test controls.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#define IOREGSEL    0xfec00000ull
#define IOWIN       0xfec00010ull
#define IOEOI       0xfec00040ull
#define LAPIC_IRR   0xfee00200ull
#define LAPIC_TMR   0xfee00180ull

#define REG_ID      0x00
#define REG_VER     0x01
#define REG_ARB     0x02
#define REDTBL(n)   (0x10 + 2 * (n))

#define RTE_LEVEL       (1u << 15)
#define RTE_REMOTE_IRR  (1u << 14)
#define RTE_MASKED      (1u << 16)

#define PIT_PIN     2
#define MS          1000000LL

static uint32_t rd(QTest *qt, uint8_t reg)
{
    qtest_writel(qt, IOREGSEL, reg);
    return qtest_readl(qt, IOWIN);
}

static void wr(QTest *qt, uint8_t reg, uint32_t v)
{
    qtest_writel(qt, IOREGSEL, reg);
    qtest_writel(qt, IOWIN, v);
}

static bool lapic_bit(QTest *qt, uint64_t base, int vec)
{
    return qtest_readl(qt, base + 0x10 * (vec >> 5)) & (1u << (vec & 31));
}

/* PIT counter 0, mode 0: OUT (IRQ 0) low now, high from ~84 us on. */
static void pit_fire_once(QTest *qt)
{
    qtest_outb(qt, 0x43, 0x30);
    qtest_outb(qt, 0x40, 100);
    qtest_outb(qt, 0x40, 0);
    qtest_clock_step(qt, MS);
}

static void pit_out_low(QTest *qt)
{
    qtest_outb(qt, 0x43, 0x30);            /* mode 0 control word: OUT low */
}

static void test_version_and_id_registers(void)
{
    QTest *qt = qtest_start("-smp 2");
    CHECK_EQ("IOAPICVER: version 0x20, 24 entries", 0x00170020, rd(qt, REG_VER));
    CHECK_EQ("IOAPICID: the MP table's id (number of CPUs)", 0x02000000, rd(qt, REG_ID));
    wr(qt, REG_ID, 0xffffffff);
    CHECK_EQ("IOAPICID after writing ones (bits 27:24 only)", 0x0f000000, rd(qt, REG_ID));
    CHECK_EQ("IOAPICARB follows the ID", 0x0f000000, rd(qt, REG_ARB));
    wr(qt, REG_VER, 0);
    CHECK_EQ("IOAPICVER is read-only", 0x00170020, rd(qt, REG_VER));
    qtest_writel(qt, IOREGSEL, 0x3f);
    CHECK_EQ("IOREGSEL reads back", 0x3f, qtest_readl(qt, IOREGSEL));
    qtest_quit(qt);
}

static void test_redirection_entry_bits(void)
{
    QTest *qt = qtest_start("");
    for (int pin = 0; pin < 24; pin++)
        CHECK_EQ("entry low dword after reset (masked)", RTE_MASKED, rd(qt, REDTBL(pin)));
    wr(qt, REDTBL(7), 0xffffffff);
    wr(qt, REDTBL(7) + 1, 0xffffffff);
    CHECK_EQ("low dword: delivery status and Remote IRR read-only", 0x0001afff,
             rd(qt, REDTBL(7)));
    CHECK_EQ("high dword: destination only", 0xff000000, rd(qt, REDTBL(7) + 1));
    wr(qt, REDTBL(23), 0x00000a55);
    CHECK_EQ("entry 23 (the last)", 0x00000a55, rd(qt, REDTBL(23)));
    CHECK_EQ("entry 22 untouched", RTE_MASKED, rd(qt, REDTBL(22)));
    /* Beyond entry 23: no register, nothing breaks. */
    wr(qt, REDTBL(24), 0x12345678);
    rd(qt, REDTBL(24));
    qtest_quit(qt);
}

static void test_edge_pin_delivers_to_lapic(void)
{
    QTest *qt = qtest_start("");
    wr(qt, REDTBL(PIT_PIN) + 1, 0x00000000);           /* physical APIC 0 */
    wr(qt, REDTBL(PIT_PIN), 0x44);                     /* fixed, edge, unmasked */
    pit_fire_once(qt);
    CHECK_MSG(lapic_bit(qt, LAPIC_IRR, 0x44), "vector 0x44 not in LAPIC IRR");
    CHECK_MSG(!lapic_bit(qt, LAPIC_TMR, 0x44), "TMR set for an edge interrupt");
    qtest_quit(qt);
}

static void test_masked_pin_does_not_deliver(void)
{
    QTest *qt = qtest_start("");
    wr(qt, REDTBL(PIT_PIN), 0x45 | RTE_MASKED);
    pit_fire_once(qt);
    CHECK_MSG(!lapic_bit(qt, LAPIC_IRR, 0x45), "masked pin delivered");
    wr(qt, REDTBL(PIT_PIN), 0x45);
    CHECK_MSG(!lapic_bit(qt, LAPIC_IRR, 0x45), "edge seen while masked delivered on unmask");
    /* Absent destination: nothing anywhere, no crash. */
    wr(qt, REDTBL(PIT_PIN) + 1, 0x77000000);
    pit_out_low(qt);
    pit_fire_once(qt);
    CHECK_MSG(!lapic_bit(qt, LAPIC_IRR, 0x45), "delivered to APIC id 0x77 that does not exist");
    qtest_quit(qt);
}

static void test_level_pin_remote_irr_and_eoi_register(void)
{
    QTest *qt = qtest_start("");
    wr(qt, REDTBL(PIT_PIN), 0x46 | RTE_LEVEL);
    pit_fire_once(qt);                                 /* OUT stays high in mode 0 */
    CHECK_MSG(lapic_bit(qt, LAPIC_IRR, 0x46), "level vector not delivered");
    CHECK_MSG(lapic_bit(qt, LAPIC_TMR, 0x46), "TMR clear for a level interrupt");
    CHECK_MSG(rd(qt, REDTBL(PIT_PIN)) & RTE_REMOTE_IRR, "Remote IRR clear after delivery");
    /* EOI of another vector leaves it alone. */
    qtest_writel(qt, IOEOI, 0x47);
    CHECK_MSG(rd(qt, REDTBL(PIT_PIN)) & RTE_REMOTE_IRR, "EOI of 0x47 cleared Remote IRR");
    /* Line still high: EOI clears Remote IRR and the pin fires again (setting it). */
    qtest_writel(qt, IOEOI, 0x46);
    CHECK_MSG(rd(qt, REDTBL(PIT_PIN)) & RTE_REMOTE_IRR, "still-asserted pin not re-delivered");
    pit_out_low(qt);
    qtest_writel(qt, IOEOI, 0x46);
    CHECK_MSG(!(rd(qt, REDTBL(PIT_PIN)) & RTE_REMOTE_IRR), "Remote IRR set with the line low");
    qtest_quit(qt);
}

static void test_garbage_does_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (unsigned i = 0; i < 300; i++) {
        qtest_writel(qt, IOREGSEL, i * 7);
        qtest_writel(qt, IOWIN, i * 0x9e3779b9u);
        qtest_readl(qt, IOWIN);
        qtest_writel(qt, IOREGSEL + 4 * (i % 32), i);
        qtest_readl(qt, IOREGSEL + 4 * (i % 32));
    }
    CHECK_EQ("version after garbage", 0x00170020, rd(qt, REG_VER));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_version_and_id_registers),
    TEST_CASE(test_redirection_entry_bits),
    TEST_CASE(test_edge_pin_delivers_to_lapic),
    TEST_CASE(test_masked_pin_does_not_deliver),
    TEST_CASE(test_level_pin_remote_irr_and_eoi_register),
    TEST_CASE(test_garbage_does_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("ioapic", cases, argc, argv);
}

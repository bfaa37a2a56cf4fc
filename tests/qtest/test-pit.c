/*
 * The 8254 PIT ("isa-pit", hw/pc/i8254.c) and port 0x61 ("port61"): counts
 * against the virtual clock at 1.193182 MHz in modes 0, 2 and 3, the
 * counter latch and read-back commands, LSB/MSB access, BCD, counter 2's
 * gate and OUT on port 0x61, the refresh toggle, and IRQ 0.
 *
 * IRQ numbering: qtest's "irq_intercept_in ioapic" reports the board's
 * interrupt lines, where line n < 16 is ISA IRQ n (so the PIT is "IRQ 0"),
 * not IOAPIC pins: the board routes ISA IRQ 0 to IOAPIC pin 2 itself.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#define CH0     0x40
#define CH2     0x42
#define CTRL    0x43
#define PORT61  0x61

#define P61_GATE2   0x01
#define P61_REFRESH 0x10
#define P61_OUT2    0x20

#define PIT_HZ  1193182ull
#define US      1000LL
#define MS      1000000LL

/* Clocks counted after ns of virtual time (what the model computes). */
static uint64_t ticks(int64_t ns)
{
    return (uint64_t)ns * PIT_HZ / 1000000000ull;
}

static void program(QTest *qt, int ch, uint8_t mode_bits, uint16_t count)
{
    qtest_outb(qt, CTRL, (uint8_t)(ch << 6 | 0x30 | mode_bits));   /* LSB then MSB */
    qtest_outb(qt, CH0 + ch, count & 0xff);
    qtest_outb(qt, CH0 + ch, count >> 8);
}

static uint16_t latch_read(QTest *qt, int ch)
{
    qtest_outb(qt, CTRL, (uint8_t)(ch << 6));          /* counter latch command */
    uint8_t lo = qtest_inb(qt, CH0 + ch);
    uint8_t hi = qtest_inb(qt, CH0 + ch);
    return (uint16_t)(lo | hi << 8);
}

static void test_mode2_counts_down_at_pit_rate(void)
{
    QTest *qt = qtest_start("");
    program(qt, 0, 0x04, 0x4000);                      /* mode 2 */
    qtest_clock_step(qt, 3 * MS + 123 * US);
    uint64_t d = ticks(3 * MS + 123 * US);
    CHECK_EQ("counter 0 after 3.123 ms", 0x4000 - d % 0x4000, latch_read(qt, 0));
    qtest_quit(qt);
}

static void test_latch_freezes_value_until_read(void)
{
    QTest *qt = qtest_start("");
    program(qt, 0, 0x04, 0xffff);
    qtest_clock_step(qt, 1 * MS);
    qtest_outb(qt, CTRL, 0x00);
    qtest_clock_step(qt, 5 * MS);
    qtest_outb(qt, CTRL, 0x00);                        /* second latch: ignored */
    uint8_t lo = qtest_inb(qt, CH0), hi = qtest_inb(qt, CH0);
    CHECK_EQ("latched count is from the first latch", 0xffff - ticks(1 * MS),
             (unsigned)(lo | hi << 8));
    qtest_quit(qt);
}

static void test_read_back_status_and_count(void)
{
    QTest *qt = qtest_start("");
    program(qt, 0, 0x04, 1000);                        /* mode 2, binary */
    qtest_clock_step(qt, 100 * US);
    qtest_outb(qt, CTRL, 0xc2);                        /* read-back: count + status, ch0 */
    uint8_t status = qtest_inb(qt, CH0);
    CHECK_EQ("status: OUT high, RW=11, mode 2, binary", 0xb4, status);
    uint8_t lo = qtest_inb(qt, CH0), hi = qtest_inb(qt, CH0);
    CHECK_EQ("read-back count", 1000 - ticks(100 * US), (unsigned)(lo | hi << 8));
    /* Status alone; null count set by a control word until a count is written. */
    qtest_outb(qt, CTRL, 0x30);
    qtest_outb(qt, CTRL, 0xe2);                        /* status only */
    CHECK_EQ("status after control word: OUT low, null count, mode 0", 0x70, qtest_inb(qt, CH0));
    qtest_quit(qt);
}

static void test_lsb_only_and_msb_only_access(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, CTRL, 0x14);                        /* ch0, LSB only, mode 2 */
    qtest_outb(qt, CH0, 200);
    qtest_clock_step(qt, 50 * US);
    CHECK_EQ("LSB-only read", 200 - ticks(50 * US), qtest_inb(qt, CH0));
    qtest_outb(qt, CTRL, 0x24);                        /* ch0, MSB only, mode 2 */
    qtest_outb(qt, CH0, 0x10);                         /* count 0x1000 */
    qtest_clock_step(qt, 1 * MS);
    CHECK_EQ("MSB-only read", (0x1000 - ticks(1 * MS)) >> 8, qtest_inb(qt, CH0));
    qtest_quit(qt);
}

static void test_bcd_counting(void)
{
    QTest *qt = qtest_start("");
    program(qt, 0, 0x01, 0x1000);                      /* mode 0, BCD 1000 */
    qtest_clock_step(qt, 200 * US);
    unsigned left = 1000 - (unsigned)ticks(200 * US);
    unsigned bcd = (left / 100) << 8 | (left / 10 % 10) << 4 | left % 10;
    CHECK_EQ("BCD count after 200 us", bcd, latch_read(qt, 0));
    qtest_quit(qt);
}

static void test_port61_out2_follows_mode0_with_gate(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, PORT61, P61_GATE2);
    CHECK_EQ("port 0x61 gate bit reads back", P61_GATE2, qtest_inb(qt, PORT61) & P61_GATE2);
    program(qt, 2, 0x00, 1193);                        /* mode 0: ~999.85 us */
    CHECK_EQ("OUT2 right after the count", 0, qtest_inb(qt, PORT61) & P61_OUT2);
    qtest_clock_step(qt, 999 * US);
    CHECK_EQ("OUT2 at 999 us", 0, qtest_inb(qt, PORT61) & P61_OUT2);
    qtest_clock_step(qt, 1 * US);
    CHECK_EQ("OUT2 at 1000 us", P61_OUT2, qtest_inb(qt, PORT61) & P61_OUT2);
    /* Gate low suspends counting in mode 0. */
    program(qt, 2, 0x00, 1193);
    qtest_outb(qt, PORT61, 0);
    qtest_clock_step(qt, 5 * MS);
    CHECK_EQ("OUT2 with the gate low", 0, qtest_inb(qt, PORT61) & P61_OUT2);
    qtest_outb(qt, PORT61, P61_GATE2);
    qtest_clock_step(qt, 1 * MS);
    CHECK_EQ("OUT2 1 ms after the gate went high", P61_OUT2, qtest_inb(qt, PORT61) & P61_OUT2);
    qtest_quit(qt);
}

static void test_port61_refresh_bit_toggles(void)
{
    QTest *qt = qtest_start("");
    uint8_t a = qtest_inb(qt, PORT61), b = qtest_inb(qt, PORT61);
    CHECK_MSG((a ^ b) & P61_REFRESH, "bit 4 did not change between reads (0x%02x, 0x%02x)", a, b);
    qtest_quit(qt);
}

static void test_mode3_square_wave_on_irq0(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    program(qt, 0, 0x06, 1193);                        /* mode 3, ~1 ms period */
    qtest_clock_step(qt, 250 * US);
    CHECK_MSG(qtest_get_irq(qt, 0), "IRQ0 low in the first half period");
    qtest_clock_step(qt, 500 * US);
    CHECK_MSG(!qtest_get_irq(qt, 0), "IRQ0 high in the second half period");
    qtest_clock_step(qt, 500 * US);
    CHECK_MSG(qtest_get_irq(qt, 0), "IRQ0 low after a full period");
    qtest_quit(qt);
}

/* Mode 2 IRQ pulses counted through the 8259: one every 1193 clocks (~1 ms). */
static void test_mode2_irq0_every_millisecond(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, 0x20, 0x11);
    qtest_outb(qt, 0x21, 0x20);
    qtest_outb(qt, 0x21, 0x04);
    qtest_outb(qt, 0x21, 0x01);
    qtest_outb(qt, 0x21, 0xfe);
    program(qt, 0, 0x04, 1193);
    qtest_outb(qt, 0x20, 0x0c);                        /* poll away the load edge, if any */
    if (qtest_inb(qt, 0x20))
        qtest_outb(qt, 0x20, 0x20);
    int got = 0;
    for (int i = 0; i < 20; i++) {
        qtest_clock_step(qt, 500 * US);
        qtest_outb(qt, 0x20, 0x0c);
        if (qtest_inb(qt, 0x20) == 0x80) {
            got++;
            qtest_outb(qt, 0x20, 0x20);
        }
    }
    CHECK_EQ("IRQ0 requests in 10 ms", 10, got);
    qtest_quit(qt);
}

static void test_mode0_irq0_once(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    program(qt, 0, 0x00, 1193);
    CHECK_MSG(!qtest_get_irq(qt, 0), "IRQ0 high right after a mode 0 count");
    qtest_clock_step(qt, 999 * US);
    CHECK_MSG(!qtest_get_irq(qt, 0), "IRQ0 high before terminal count");
    qtest_clock_step(qt, 1 * US);
    CHECK_MSG(qtest_get_irq(qt, 0), "IRQ0 low after terminal count");
    qtest_clock_step(qt, 100 * MS);
    CHECK_MSG(qtest_get_irq(qt, 0), "mode 0 OUT fell again without a new count");
    qtest_quit(qt);
}

static void test_garbage_does_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (unsigned v = 0; v < 512; v++) {
        qtest_outb(qt, CTRL, (uint8_t)(v * 37));
        qtest_outb(qt, CH0 + v % 3, (uint8_t)v);
        qtest_inb(qt, CH0 + (v / 3) % 4);
        qtest_outb(qt, PORT61, (uint8_t)(v * 11));
        if (v % 64 == 0)
            qtest_clock_step(qt, v * US);
    }
    program(qt, 0, 0x04, 0x4000);
    qtest_clock_step(qt, 1 * MS);
    CHECK_EQ("counter 0 still counts", 0x4000 - ticks(1 * MS), latch_read(qt, 0));
    qtest_quit(qt);
}

static void test_system_reset_restarts_bios_default(void)
{
    QTest *qt = qtest_start("");
    program(qt, 0, 0x00, 5);                           /* mode 0 */
    qtest_outb(qt, PORT61, P61_GATE2);
    qtest_system_reset(qt);
    qtest_outb(qt, CTRL, 0xe2);                        /* status of counter 0 */
    CHECK_EQ("counter 0 status after reset: mode 3, LSB/MSB", 0x36, qtest_inb(qt, CH0) & 0x3f);
    CHECK_EQ("port 0x61 gate after reset", 0, qtest_inb(qt, PORT61) & P61_GATE2);
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_mode2_counts_down_at_pit_rate),
    TEST_CASE(test_latch_freezes_value_until_read),
    TEST_CASE(test_read_back_status_and_count),
    TEST_CASE(test_lsb_only_and_msb_only_access),
    TEST_CASE(test_bcd_counting),
    TEST_CASE(test_port61_out2_follows_mode0_with_gate),
    TEST_CASE(test_port61_refresh_bit_toggles),
    TEST_CASE(test_mode3_square_wave_on_irq0),
    TEST_CASE(test_mode2_irq0_every_millisecond),
    TEST_CASE(test_mode0_irq0_once),
    TEST_CASE(test_garbage_does_not_crash),
    TEST_CASE(test_system_reset_restarts_bios_default),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pit", cases, argc, argv);
}

/*
 * The 8259A pair ("isa-i8259", hw/pc/i8259.c) through its ports: the ICW
 * sequence, IMR and OCW3 IRR/ISR readback, the poll command (an INTA cycle
 * the test can issue), non-specific and specific EOI, the ELCR, priority
 * rotation and the cascade.  Interrupt sources are the PIT (IRQ 0) and the
 * RTC (IRQ 8), the two devices a test can make interrupt on demand; the
 * CPU side (ExtINT into the local APIC) is covered by tests/unit/test-irqchip.c.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#define M_CMD   0x20
#define M_DATA  0x21
#define S_CMD   0xa0
#define S_DATA  0xa1
#define ELCR_M  0x4d0
#define ELCR_S  0x4d1

#define OCW3_READ_IRR   0x0a
#define OCW3_READ_ISR   0x0b
#define OCW3_POLL       0x0c
#define OCW2_NS_EOI     0x20
#define OCW2_S_EOI(l)   (0x60 | (l))
#define OCW2_SET_PRIO(l) (0xc0 | (l))
#define POLL_INT        0x80

#define PIT_CTRL        0x43
#define PIT_CH0         0x40
#define RTC_INDEX       0x70
#define RTC_DATA        0x71

#define MS              1000000LL

static void pic_init(QTest *qt, uint8_t mimr, uint8_t simr)
{
    qtest_outb(qt, M_CMD, 0x11);        /* ICW1: edge, cascade, ICW4 */
    qtest_outb(qt, M_DATA, 0x20);       /* ICW2: vectors 0x20-0x27 */
    qtest_outb(qt, M_DATA, 0x04);       /* ICW3: slave on IR2 */
    qtest_outb(qt, M_DATA, 0x01);       /* ICW4: 8086 mode */
    qtest_outb(qt, S_CMD, 0x11);
    qtest_outb(qt, S_DATA, 0x28);
    qtest_outb(qt, S_DATA, 0x02);
    qtest_outb(qt, S_DATA, 0x01);
    qtest_outb(qt, M_DATA, mimr);
    qtest_outb(qt, S_DATA, simr);
}

static uint8_t read_irr(QTest *qt, uint16_t cmd)
{
    qtest_outb(qt, cmd, OCW3_READ_IRR);
    return qtest_inb(qt, cmd);
}

static uint8_t read_isr(QTest *qt, uint16_t cmd)
{
    qtest_outb(qt, cmd, OCW3_READ_ISR);
    return qtest_inb(qt, cmd);
}

static uint8_t poll(QTest *qt, uint16_t cmd)
{
    qtest_outb(qt, cmd, OCW3_POLL);
    return qtest_inb(qt, cmd);
}

/* Counter 0 in mode 0 with a short count: one IRQ 0 rising edge after ~84 us. */
static void pit_one_shot(QTest *qt)
{
    qtest_outb(qt, PIT_CTRL, 0x30);
    qtest_outb(qt, PIT_CH0, 100);
    qtest_outb(qt, PIT_CH0, 0);
    qtest_clock_step(qt, MS);
}

/* RTC periodic interrupt on (IRQ 8 stays high until register C is read). */
static void rtc_raise_irq8(QTest *qt)
{
    qtest_outb(qt, RTC_INDEX, 0x0b);
    qtest_outb(qt, RTC_DATA, 0x42);     /* PIE, 24 h */
    qtest_clock_step(qt, 2 * MS);       /* 1024 Hz default rate */
}

static void test_icw_sequence_sets_imr_and_clears_state(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0xfb, 0xff);
    CHECK_EQ("master IMR (OCW1 after ICW4)", 0xfb, qtest_inb(qt, M_DATA));
    CHECK_EQ("slave IMR", 0xff, qtest_inb(qt, S_DATA));
    CHECK_EQ("master ISR after init", 0x00, read_isr(qt, M_CMD));
    /* ICW1 clears the IMR again. */
    qtest_outb(qt, M_CMD, 0x11);
    CHECK_EQ("master IMR right after ICW1", 0x00, qtest_inb(qt, M_DATA));
    qtest_quit(qt);
}

static void test_irr_shows_masked_request_and_poll_acks(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0xff, 0xff);
    pit_one_shot(qt);
    CHECK_EQ("master IRR with IRQ0 masked", 0x01, read_irr(qt, M_CMD) & 0x01);
    CHECK_EQ("poll with everything masked", 0x00, poll(qt, M_CMD));
    qtest_outb(qt, M_DATA, 0xfe);
    CHECK_EQ("poll word for IRQ0", POLL_INT | 0, poll(qt, M_CMD));
    CHECK_EQ("ISR after the poll acknowledge", 0x01, read_isr(qt, M_CMD));
    CHECK_EQ("IRR after the acknowledge (edge)", 0x00, read_irr(qt, M_CMD) & 0x01);
    qtest_outb(qt, M_CMD, OCW2_NS_EOI);
    CHECK_EQ("ISR after non-specific EOI", 0x00, read_isr(qt, M_CMD));
    CHECK_EQ("poll with nothing pending", 0x00, poll(qt, M_CMD));
    qtest_quit(qt);
}

static void test_specific_eoi_clears_only_its_level(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0x00, 0x00);
    pit_one_shot(qt);
    rtc_raise_irq8(qt);
    CHECK_EQ("first poll: IRQ0", POLL_INT | 0, poll(qt, M_CMD));
    /* Without an EOI, IR2 (lower priority) still waits. */
    CHECK_EQ("poll behind IRQ0 in service", 0x00, poll(qt, M_CMD));
    qtest_outb(qt, M_CMD, OCW2_S_EOI(2));            /* wrong level: nothing */
    CHECK_EQ("ISR after specific EOI of level 2", 0x01, read_isr(qt, M_CMD));
    qtest_outb(qt, M_CMD, OCW2_S_EOI(0));
    CHECK_EQ("ISR after specific EOI of level 0", 0x00, read_isr(qt, M_CMD));
    CHECK_EQ("poll: cascade IR2", POLL_INT | 2, poll(qt, M_CMD));
    qtest_quit(qt);
}

static void test_cascade_irq8_shows_on_master_ir2(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0x00, 0x00);
    rtc_raise_irq8(qt);
    CHECK_EQ("slave IRR (IRQ8)", 0x01, read_irr(qt, S_CMD) & 0x01);
    CHECK_EQ("master IRR (cascade IR2)", 0x04, read_irr(qt, M_CMD) & 0x04);
    CHECK_EQ("master poll", POLL_INT | 2, poll(qt, M_CMD));
    CHECK_EQ("slave poll", POLL_INT | 0, poll(qt, S_CMD));
    CHECK_EQ("master ISR", 0x04, read_isr(qt, M_CMD));
    CHECK_EQ("slave ISR", 0x01, read_isr(qt, S_CMD));
    /* Masking IRQ8 on the slave removes the cascade request. */
    qtest_outb(qt, S_CMD, OCW2_NS_EOI);
    qtest_outb(qt, M_CMD, OCW2_NS_EOI);
    qtest_outb(qt, S_DATA, 0x01);
    CHECK_EQ("master IRR with IRQ8 masked", 0x00, read_irr(qt, M_CMD) & 0x04);
    qtest_quit(qt);
}

static void test_elcr_writable_masks_and_edge_latch(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, ELCR_M, 0xff);
    qtest_outb(qt, ELCR_S, 0xff);
    CHECK_EQ("ELCR1 (IRQ0-2 edge only)", 0xf8, qtest_inb(qt, ELCR_M));
    CHECK_EQ("ELCR2 (IRQ8, IRQ13 edge only)", 0xde, qtest_inb(qt, ELCR_S));
    qtest_outb(qt, ELCR_M, 0x00);
    qtest_outb(qt, ELCR_S, 0x00);

    /* Edge: the RTC's IRQ8 latch survives the line going low; level: it does not. */
    pic_init(qt, 0x00, 0xff);
    rtc_raise_irq8(qt);
    qtest_outb(qt, RTC_INDEX, 0x0b);
    qtest_outb(qt, RTC_DATA, 0x02);
    qtest_outb(qt, RTC_INDEX, 0x0c);
    qtest_inb(qt, RTC_DATA);                          /* IRQ8 goes low */
    CHECK_EQ("edge IRQ8 latched after the line fell", 0x01, read_irr(qt, S_CMD) & 0x01);
    qtest_quit(qt);
}

/* COM1's THRE interrupt (IRQ 4) can be raised and lowered at will: IER, then IIR read. */
static void test_level_irq_follows_line(void)
{
    QTest *qt = qtest_start("-serial null");
    pic_init(qt, 0x00, 0x00);
    qtest_outb(qt, ELCR_M, 0x10);                     /* IRQ4 level */
    qtest_outb(qt, 0x3fc, 0x08);                      /* MCR.OUT2 gates the IRQ on a PC */
    qtest_outb(qt, 0x3f9, 0x02);                      /* IER: THRE interrupt */
    CHECK_EQ("level IRQ4 in IRR while the UART asserts it", 0x10, read_irr(qt, M_CMD) & 0x10);
    qtest_inb(qt, 0x3fa);                             /* IIR read clears THRE: line low */
    CHECK_EQ("level IRQ4 gone from IRR with the line low", 0x00, read_irr(qt, M_CMD) & 0x10);
    qtest_outb(qt, ELCR_M, 0x00);                     /* edge */
    qtest_outb(qt, 0x3f9, 0x00);
    qtest_outb(qt, 0x3f9, 0x02);
    qtest_inb(qt, 0x3fa);
    CHECK_EQ("edge IRQ4 latched after the line fell", 0x10, read_irr(qt, M_CMD) & 0x10);
    CHECK_EQ("poll IRQ4", POLL_INT | 4, poll(qt, M_CMD));
    qtest_quit(qt);
}

static void test_rotation_changes_priority(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0x00, 0x00);
    pit_one_shot(qt);
    rtc_raise_irq8(qt);
    /* IR0 lowest: IR1..IR7 come first, so the cascade (IR2) beats IRQ0. */
    qtest_outb(qt, M_CMD, OCW2_SET_PRIO(0));
    CHECK_EQ("poll with IR0 lowest", POLL_INT | 2, poll(qt, M_CMD));
    CHECK_EQ("slave poll", POLL_INT | 0, poll(qt, S_CMD));
    qtest_outb(qt, M_CMD, OCW2_NS_EOI);
    CHECK_EQ("poll next", POLL_INT | 0, poll(qt, M_CMD));
    /* Rotate on non-specific EOI: IR0 becomes lowest again. */
    qtest_outb(qt, M_CMD, 0xa0);
    CHECK_EQ("ISR after rotate-on-EOI", 0x00, read_isr(qt, M_CMD));
    qtest_quit(qt);
}

static void test_auto_eoi_leaves_isr_clear(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, M_CMD, 0x11);
    qtest_outb(qt, M_DATA, 0x20);
    qtest_outb(qt, M_DATA, 0x04);
    qtest_outb(qt, M_DATA, 0x03);                    /* ICW4: AEOI, 8086 */
    qtest_outb(qt, M_DATA, 0x00);
    pit_one_shot(qt);
    CHECK_EQ("poll IRQ0", POLL_INT | 0, poll(qt, M_CMD));
    CHECK_EQ("ISR in AEOI mode", 0x00, read_isr(qt, M_CMD));
    qtest_quit(qt);
}

static void test_special_mask_mode_lets_lower_levels_in(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0x00, 0x00);
    pit_one_shot(qt);
    CHECK_EQ("poll IRQ0", POLL_INT | 0, poll(qt, M_CMD));
    rtc_raise_irq8(qt);
    CHECK_EQ("IR2 blocked by IR0 in service", 0x00, poll(qt, M_CMD));
    qtest_outb(qt, M_DATA, 0x01);                    /* mask the in-service IR0 */
    qtest_outb(qt, M_CMD, 0x68);                     /* OCW3: set special mask */
    CHECK_EQ("IR2 in special mask mode", POLL_INT | 2, poll(qt, M_CMD));
    qtest_quit(qt);
}

static void test_garbage_writes_do_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (unsigned v = 0; v < 256; v++) {
        qtest_outb(qt, M_CMD, (uint8_t)v);
        qtest_outb(qt, M_DATA, (uint8_t)(v * 7));
        qtest_outb(qt, S_CMD, (uint8_t)(v * 13));
        qtest_outb(qt, S_DATA, (uint8_t)(v * 3));
        qtest_inb(qt, M_CMD);
        qtest_inb(qt, S_CMD);
    }
    pic_init(qt, 0xfe, 0xff);
    CHECK_EQ("IMR after re-initialisation", 0xfe, qtest_inb(qt, M_DATA));
    qtest_quit(qt);
}

static void test_system_reset_clears_pic(void)
{
    QTest *qt = qtest_start("");
    pic_init(qt, 0xfb, 0xff);
    qtest_outb(qt, ELCR_M, 0x08);
    qtest_system_reset(qt);
    CHECK_EQ("master IMR after reset", 0x00, qtest_inb(qt, M_DATA));
    CHECK_EQ("ELCR1 after reset", 0x00, qtest_inb(qt, ELCR_M));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_icw_sequence_sets_imr_and_clears_state),
    TEST_CASE(test_irr_shows_masked_request_and_poll_acks),
    TEST_CASE(test_specific_eoi_clears_only_its_level),
    TEST_CASE(test_cascade_irq8_shows_on_master_ir2),
    TEST_CASE(test_elcr_writable_masks_and_edge_latch),
    TEST_CASE(test_level_irq_follows_line),
    TEST_CASE(test_rotation_changes_priority),
    TEST_CASE(test_auto_eoi_leaves_isr_clear),
    TEST_CASE(test_special_mask_mode_lets_lower_levels_in),
    TEST_CASE(test_garbage_writes_do_not_crash),
    TEST_CASE(test_system_reset_clears_pic),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("pic", cases, argc, argv);
}

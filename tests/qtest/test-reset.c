/*
 * Reset paths and the small PC board devices: the 8042 keyboard controller
 * (pulse 0xFE, output-port write, its command set without a keyboard),
 * port 0x92 (fast reset, A20 read-back), PIIX3 0xCF9 and POST port 0x80.
 *
 * With -no-reboot a guest reset ends kestrel with status 0; without it the
 * machine resets its devices and keeps running, which is visible as the
 * UART scratch register returning to 0 while the CMOS NVRAM survives.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_WAIT_S     30

#define KBD_DATA        0x60
#define KBD_CMD         0x64
#define KBD_STATUS      0x64
#define STR_OBF         0x01
#define STR_IBF         0x02
#define STR_SYSFLAG     0x04
#define STR_CMDDAT      0x08
#define STR_AUXDATA     0x20
#define STR_TIMEOUT     0x40

#define COM1_SCR        0x3ff
#define RTC_INDEX       0x70
#define RTC_DATA        0x71

static QTest *start_no_reboot(void)
{
    return qtest_start("-no-reboot");
}

static void expect_reset_exit(QTest *qt, const char *what)
{
    int st = qtest_wait_exit(qt, EXIT_WAIT_S);
    CHECK_MSG(st == 0, "%s under -no-reboot: expected exit status 0, got %d", what, st);
    qtest_quit(qt);
}

static void test_8042_pulse_0xfe_resets(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_CMD, 0xfe);
    expect_reset_exit(qt, "8042 command 0xfe");
}

static void test_8042_output_port_bit0_low_resets(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_CMD, 0xd1);
    qtest_outb(qt, KBD_DATA, 0x02);         /* A20 on, reset line low */
    expect_reset_exit(qt, "8042 output port write 0x02");
}

static void test_cf9_rst_cpu_resets(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, 0xcf9, 0x02);
    qtest_outb(qt, 0xcf9, 0x06);
    expect_reset_exit(qt, "0xcf9 write 0x06");
}

static void test_port92_fast_reset(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, 0x92, 0x01);
    expect_reset_exit(qt, "port 0x92 write 0x01");
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The reset request is handled by the main loop: poll for its effect. */
static bool wait_scr_cleared(QTest *qt)
{
    int64_t deadline = now_ms() + test_timeout(10) * 1000LL;
    while (now_ms() < deadline) {
        if (qtest_inb(qt, COM1_SCR) == 0)
            return true;
        usleep(5000);
    }
    return false;
}

static void check_reset_keeps_running(uint16_t port, uint8_t v, const char *what)
{
    QTest *qt = qtest_start("-device isa-serial,index=0");
    qtest_outb(qt, RTC_INDEX, 0x50);
    qtest_outb(qt, RTC_DATA, 0xa7);
    qtest_outb(qt, COM1_SCR, 0x5a);
    CHECK_EQ("UART SCR before reset", 0x5a, qtest_inb(qt, COM1_SCR));
    qtest_outb(qt, port, v);
    CHECK_MSG(wait_scr_cleared(qt), "%s: UART SCR not reset to 0 (no system reset seen)", what);
    qtest_outb(qt, RTC_INDEX, 0x50);
    CHECK_EQ("CMOS NVRAM 0x50 survives the reset", 0xa7, qtest_inb(qt, RTC_DATA));
    qtest_quit(qt);
}

static void test_8042_reset_resets_devices_and_keeps_running(void)
{
    check_reset_keeps_running(KBD_CMD, 0xfe, "8042 pulse 0xfe");
}

static void test_cf9_reset_resets_devices_and_keeps_running(void)
{
    check_reset_keeps_running(0xcf9, 0x06, "0xcf9 = 0x06");
}

static void test_port92_reset_resets_devices_and_keeps_running(void)
{
    check_reset_keeps_running(0x92, 0x01, "port 0x92 = 0x01");
}

static void test_cf9_sys_rst_alone_reads_back_and_does_not_reset(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, 0xcf9, 0x02);
    CHECK_EQ("0xcf9 after writing SYS_RST", 0x02, qtest_inb(qt, 0xcf9));
    qtest_outb(qt, 0xcf9, 0x00);
    CHECK_EQ("0xcf9 after writing 0", 0x00, qtest_inb(qt, 0xcf9));
    qtest_outb(qt, 0x80, 0x00);             /* still alive */
    qtest_quit(qt);
}

static void test_port92_a20_bit_reads_back(void)
{
    QTest *qt = start_no_reboot();
    CHECK_EQ("port 0x92 at power-on", 0x00, qtest_inb(qt, 0x92));
    qtest_outb(qt, 0x92, 0x02);
    CHECK_EQ("port 0x92 after setting A20", 0x02, qtest_inb(qt, 0x92));
    qtest_outb(qt, 0x92, 0x00);
    CHECK_EQ("port 0x92 after clearing A20", 0x00, qtest_inb(qt, 0x92));
    qtest_quit(qt);
}

static void test_port80_reads_ff_and_ignores_writes(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, 0x80, 0x42);
    CHECK_EQ("port 0x80", 0xff, qtest_inb(qt, 0x80));
    qtest_quit(qt);
}

static void test_8042_self_test_replies_0x55(void)
{
    QTest *qt = start_no_reboot();
    CHECK_EQ("status before any command (no OBF, no IBF)", 0,
             qtest_inb(qt, KBD_STATUS) & (STR_OBF | STR_IBF));
    qtest_outb(qt, KBD_CMD, 0xaa);
    uint8_t st = qtest_inb(qt, KBD_STATUS);
    CHECK_EQ("status OBF after 0xaa", STR_OBF, st & (STR_OBF | STR_AUXDATA));
    CHECK_EQ("status system flag after self-test", STR_SYSFLAG, st & STR_SYSFLAG);
    CHECK_EQ("status 'last write was a command'", STR_CMDDAT, st & STR_CMDDAT);
    CHECK_EQ("self-test reply", 0x55, qtest_inb(qt, KBD_DATA));
    CHECK_EQ("status OBF after reading", 0, qtest_inb(qt, KBD_STATUS) & STR_OBF);
    qtest_quit(qt);
}

static void test_8042_command_byte_read_write(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_CMD, 0x60);
    qtest_outb(qt, KBD_DATA, 0x65);
    qtest_outb(qt, KBD_CMD, 0x20);
    CHECK_EQ("command byte", 0x65, qtest_inb(qt, KBD_DATA));
    qtest_outb(qt, KBD_CMD, 0xad);          /* disable keyboard: CTR bit 4 */
    qtest_outb(qt, KBD_CMD, 0xa8);          /* enable mouse: CTR bit 5 clear */
    qtest_outb(qt, KBD_CMD, 0x20);
    CHECK_EQ("command byte after 0xad, 0xa8", 0x55, qtest_inb(qt, KBD_DATA));
    qtest_outb(qt, KBD_CMD, 0xae);
    qtest_outb(qt, KBD_CMD, 0xa7);
    qtest_outb(qt, KBD_CMD, 0x20);
    CHECK_EQ("command byte after 0xae, 0xa7", 0x65, qtest_inb(qt, KBD_DATA));
    qtest_quit(qt);
}

static void test_8042_keyboard_byte_without_keyboard_times_out(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_DATA, 0xf2);         /* "identify" to the keyboard */
    uint8_t st = qtest_inb(qt, KBD_STATUS);
    CHECK_EQ("status OBF|TIMEOUT, not AUX", STR_OBF | STR_TIMEOUT,
             st & (STR_OBF | STR_TIMEOUT | STR_AUXDATA));
    CHECK_EQ("reply from the empty keyboard port", 0xfe, qtest_inb(qt, KBD_DATA));
    CHECK_EQ("status after reading", 0, qtest_inb(qt, KBD_STATUS) & (STR_OBF | STR_TIMEOUT));
    qtest_outb(qt, KBD_CMD, 0xab);
    CHECK_MSG(qtest_inb(qt, KBD_DATA) != 0x00, "keyboard interface test passed with no keyboard");
    qtest_quit(qt);
}

static void test_8042_aux_loopback_and_irq12(void)
{
    QTest *qt = start_no_reboot();
    qtest_irq_intercept(qt);
    qtest_outb(qt, KBD_CMD, 0x60);
    qtest_outb(qt, KBD_DATA, 0x03);         /* IRQ1 and IRQ12 enabled */
    qtest_outb(qt, KBD_CMD, 0xd3);
    qtest_outb(qt, KBD_DATA, 0x5a);
    CHECK_EQ("status OBF|AUXDATA", STR_OBF | STR_AUXDATA,
             qtest_inb(qt, KBD_STATUS) & (STR_OBF | STR_AUXDATA));
    CHECK_MSG(qtest_get_irq(qt, 12), "IRQ12 low with aux data and CTR bit 1");
    CHECK_MSG(!qtest_get_irq(qt, 1), "IRQ1 high for aux data");
    CHECK_EQ("aux loopback byte", 0x5a, qtest_inb(qt, KBD_DATA));
    CHECK_MSG(!qtest_get_irq(qt, 12), "IRQ12 high after the data was read");
    qtest_outb(qt, KBD_CMD, 0xd2);
    qtest_outb(qt, KBD_DATA, 0x1c);
    CHECK_MSG(qtest_get_irq(qt, 1), "IRQ1 low with keyboard data and CTR bit 0");
    CHECK_EQ("keyboard loopback byte", 0x1c, qtest_inb(qt, KBD_DATA));
    CHECK_MSG(!qtest_get_irq(qt, 1), "IRQ1 high after the data was read");
    qtest_quit(qt);
}

static void test_8042_output_port_reads_back(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_CMD, 0xd0);
    CHECK_EQ("output port reset|A20", 0x03, qtest_inb(qt, KBD_DATA) & 0x03);
    qtest_outb(qt, KBD_CMD, 0xdd);          /* A20 off: logged, stored */
    qtest_outb(qt, KBD_CMD, 0xd0);
    CHECK_EQ("output port after 0xdd", 0x01, qtest_inb(qt, KBD_DATA) & 0x03);
    qtest_outb(qt, KBD_CMD, 0xdf);
    qtest_outb(qt, KBD_CMD, 0xd0);
    CHECK_EQ("output port after 0xdf", 0x03, qtest_inb(qt, KBD_DATA) & 0x03);
    qtest_quit(qt);
}

static void test_8042_odd_pulse_commands_do_not_reset(void)
{
    QTest *qt = start_no_reboot();
    qtest_outb(qt, KBD_CMD, 0xff);          /* pulses nothing */
    qtest_outb(qt, KBD_CMD, 0xf1);
    qtest_outb(qt, KBD_CMD, 0xaa);
    CHECK_EQ("controller still answers", 0x55, qtest_inb(qt, KBD_DATA));
    qtest_quit(qt);
}

static void test_garbage_does_not_crash(void)
{
    /* No -no-reboot: random writes may well reset the machine; it must survive. */
    QTest *qt = qtest_start("-device isa-serial,index=0");
    uint32_t x = 777;
    static const uint16_t ports[] = { 0x60, 0x64, 0x92, 0xcf9, 0x80 };
    for (int i = 0; i < 4000; i++) {
        x = x * 1103515245u + 12345u;
        uint16_t port = ports[(x >> 16) % 5];
        if ((x >> 8) & 1)
            qtest_outb(qt, port, (uint8_t)(x >> 24));
        else
            qtest_inb(qt, port);
    }
    for (int c = 0; c < 256; c++) {
        qtest_outb(qt, KBD_CMD, (uint8_t)c);
        qtest_outb(qt, KBD_DATA, 0xff);
        qtest_inb(qt, KBD_DATA);
    }
    qtest_outb(qt, COM1_SCR, 0x33);
    usleep(100000);
    qtest_outb(qt, COM1_SCR, 0x33);
    CHECK_EQ("UART SCR after garbage (still alive)", 0x33, qtest_inb(qt, COM1_SCR));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_8042_pulse_0xfe_resets),
    TEST_CASE(test_8042_output_port_bit0_low_resets),
    TEST_CASE(test_cf9_rst_cpu_resets),
    TEST_CASE(test_port92_fast_reset),
    TEST_CASE(test_8042_reset_resets_devices_and_keeps_running),
    TEST_CASE(test_cf9_reset_resets_devices_and_keeps_running),
    TEST_CASE(test_port92_reset_resets_devices_and_keeps_running),
    TEST_CASE(test_cf9_sys_rst_alone_reads_back_and_does_not_reset),
    TEST_CASE(test_port92_a20_bit_reads_back),
    TEST_CASE(test_port80_reads_ff_and_ignores_writes),
    TEST_CASE(test_8042_self_test_replies_0x55),
    TEST_CASE(test_8042_command_byte_read_write),
    TEST_CASE(test_8042_keyboard_byte_without_keyboard_times_out),
    TEST_CASE(test_8042_aux_loopback_and_irq12),
    TEST_CASE(test_8042_output_port_reads_back),
    TEST_CASE(test_8042_odd_pulse_commands_do_not_reset),
    TEST_CASE(test_garbage_does_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("reset", cases, argc, argv);
}

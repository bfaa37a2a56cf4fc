/*
 * MC146818A RTC / CMOS ("mc146818rtc", always on the pc board): time from
 * the host, BCD/binary and 12/24-hour formats, SET, register C, periodic,
 * alarm and update-ended interrupts and UIP on the virtual clock, NVRAM and
 * the memory-size bytes.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RTC_INDEX   0x70
#define RTC_DATA    0x71
#define RTC_IRQ     8

#define SEC         0x00
#define SEC_ALARM   0x01
#define MIN         0x02
#define MIN_ALARM   0x03
#define HOUR        0x04
#define HOUR_ALARM  0x05
#define WDAY        0x06
#define MDAY        0x07
#define MONTH       0x08
#define YEAR        0x09
#define REG_A       0x0a
#define REG_B       0x0b
#define REG_C       0x0c
#define REG_D       0x0d
#define CENTURY     0x32

#define A_UIP       0x80
#define B_SET       0x80
#define B_PIE       0x40
#define B_AIE       0x20
#define B_UIE       0x10
#define B_DM        0x04
#define B_24H       0x02
#define C_IRQF      0x80
#define C_PF        0x40
#define C_AF        0x20
#define C_UF        0x10

#define MS          1000000LL
#define S           1000000000LL

static uint8_t cmos_read(QTest *qt, uint8_t idx)
{
    qtest_outb(qt, RTC_INDEX, idx);
    return qtest_inb(qt, RTC_DATA);
}

static void cmos_write(QTest *qt, uint8_t idx, uint8_t v)
{
    qtest_outb(qt, RTC_INDEX, idx);
    qtest_outb(qt, RTC_DATA, v);
}

static unsigned bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 0xf);
}

/* Set the clock (BCD, 24 h) to the given date with SET, then let it run. */
static void set_time_bcd(QTest *qt, uint8_t cent, uint8_t year, uint8_t mon, uint8_t mday,
                         uint8_t hour, uint8_t min, uint8_t sec, uint8_t run_b)
{
    cmos_write(qt, REG_B, B_SET | B_24H);
    cmos_write(qt, SEC, sec);
    cmos_write(qt, MIN, min);
    cmos_write(qt, HOUR, hour);
    cmos_write(qt, MDAY, mday);
    cmos_write(qt, MONTH, mon);
    cmos_write(qt, YEAR, year);
    cmos_write(qt, CENTURY, cent);
    cmos_write(qt, REG_B, run_b);
}

/* Restart the divider chain: the next second boundary is exactly 500 ms away. */
static void restart_divider(QTest *qt, uint8_t rate)
{
    cmos_write(qt, REG_A, 0x60 | rate);
    cmos_write(qt, REG_A, 0x20 | rate);
}

static void test_power_on_status_registers(void)
{
    QTest *qt = qtest_start("");
    CHECK_EQ("register A (without UIP)", 0x26, cmos_read(qt, REG_A) & ~A_UIP);
    CHECK_EQ("register B (24 h, BCD)", 0x02, cmos_read(qt, REG_B));
    CHECK_EQ("register C", 0x00, cmos_read(qt, REG_C));
    CHECK_EQ("register D (VRT)", 0x80, cmos_read(qt, REG_D));
    qtest_quit(qt);
}

static void test_time_matches_host_time(void)
{
    QTest *qt = qtest_start("");
    uint8_t sec = cmos_read(qt, SEC), min = cmos_read(qt, MIN), hour = cmos_read(qt, HOUR);
    uint8_t mday = cmos_read(qt, MDAY), mon = cmos_read(qt, MONTH);
    uint8_t year = cmos_read(qt, YEAR), cent = cmos_read(qt, CENTURY);
    time_t host = time(NULL);
    struct tm tm = {
        .tm_sec = (int)bcd(sec), .tm_min = (int)bcd(min), .tm_hour = (int)bcd(hour),
        .tm_mday = (int)bcd(mday), .tm_mon = (int)bcd(mon) - 1,
        .tm_year = (int)(bcd(cent) * 100 + bcd(year)) - 1900,
    };
    time_t guest = timegm(&tm);
    long diff = labs((long)(guest - host));
    CHECK_MSG(diff <= 5, "RTC %02x%02x-%02x-%02x %02x:%02x:%02x is %ld s away from host UTC",
              cent, year, mon, mday, hour, min, sec, diff);
    struct tm htm;
    gmtime_r(&guest, &htm);
    CHECK_EQ("day of week (1 = Sunday)", htm.tm_wday + 1, cmos_read(qt, WDAY));
    qtest_quit(qt);
}

static void test_base_date_property(void)
{
    QTest *qt = qtest_start("-global mc146818rtc.base=2006-06-17T16:01:21");
    CHECK_EQ("year", 0x06, cmos_read(qt, YEAR));
    CHECK_EQ("century", 0x20, cmos_read(qt, CENTURY));
    CHECK_EQ("month", 0x06, cmos_read(qt, MONTH));
    CHECK_EQ("day of month", 0x17, cmos_read(qt, MDAY));
    CHECK_EQ("hours", 0x16, cmos_read(qt, HOUR));
    CHECK_EQ("minutes", 0x01, cmos_read(qt, MIN));
    CHECK_EQ("day of week (Saturday)", 7, cmos_read(qt, WDAY));
    qtest_quit(qt);
}

static void test_bad_base_is_a_user_error(void)
{
    const char *junk[] = { "-global", "mc146818rtc.base=yesterday", NULL };
    qtest_expect_user_error(junk, "base='yesterday'");
    const char *month13[] = { "-global", "mc146818rtc.base=2006-13-01", NULL };
    qtest_expect_user_error(month13, "base='2006-13-01'");
}

static void test_binary_and_bcd_formats(void)
{
    QTest *qt = qtest_start("");
    set_time_bcd(qt, 0x20, 0x24, 0x07, 0x15, 0x12, 0x34, 0x56, B_24H);
    CHECK_EQ("seconds (BCD)", 0x56, cmos_read(qt, SEC));
    cmos_write(qt, REG_B, B_24H | B_DM);
    CHECK_EQ("seconds (binary)", 56, cmos_read(qt, SEC));
    CHECK_EQ("minutes (binary)", 34, cmos_read(qt, MIN));
    CHECK_EQ("hours (binary)", 12, cmos_read(qt, HOUR));
    CHECK_EQ("day of month (binary)", 15, cmos_read(qt, MDAY));
    CHECK_EQ("month (binary)", 7, cmos_read(qt, MONTH));
    CHECK_EQ("year (binary)", 24, cmos_read(qt, YEAR));
    CHECK_EQ("century (binary)", 20, cmos_read(qt, CENTURY));
    cmos_write(qt, REG_B, B_24H);
    CHECK_EQ("hours (BCD again)", 0x12, cmos_read(qt, HOUR));
    CHECK_EQ("year (BCD again)", 0x24, cmos_read(qt, YEAR));
    qtest_quit(qt);
}

static void test_twelve_hour_mode(void)
{
    QTest *qt = qtest_start("");
    set_time_bcd(qt, 0x20, 0x24, 0x01, 0x02, 0x13, 0x05, 0x00, B_24H);
    cmos_write(qt, REG_B, 0);
    CHECK_EQ("13:05 in 12-hour BCD (PM|1)", 0x81, cmos_read(qt, HOUR));
    set_time_bcd(qt, 0x20, 0x24, 0x01, 0x02, 0x00, 0x05, 0x00, B_24H);
    cmos_write(qt, REG_B, 0);
    CHECK_EQ("00:05 in 12-hour BCD (AM 12)", 0x12, cmos_read(qt, HOUR));
    /* Writing a 12-hour time with SET and reading it back in 24-hour mode. */
    cmos_write(qt, REG_B, B_SET);
    cmos_write(qt, HOUR, 0x80 | 0x11);      /* 11 PM */
    cmos_write(qt, REG_B, 0);
    cmos_write(qt, REG_B, B_24H);
    CHECK_EQ("11 PM read in 24-hour mode", 0x23, cmos_read(qt, HOUR));
    qtest_quit(qt);
}

static void test_set_bit_freezes_and_sets_the_clock(void)
{
    QTest *qt = qtest_start("");
    cmos_write(qt, REG_B, B_SET | B_24H);
    uint8_t s0 = cmos_read(qt, SEC);
    qtest_clock_step(qt, 3 * S);
    CHECK_EQ("seconds while SET = 1 after 3 s", s0, cmos_read(qt, SEC));
    cmos_write(qt, SEC, 0x59);
    cmos_write(qt, MIN, 0x59);
    cmos_write(qt, HOUR, 0x23);
    cmos_write(qt, MDAY, 0x29);
    cmos_write(qt, MONTH, 0x02);
    cmos_write(qt, YEAR, 0x20);
    cmos_write(qt, CENTURY, 0x20);
    qtest_clock_step(qt, 2 * S);
    CHECK_EQ("written seconds while SET = 1", 0x59, cmos_read(qt, SEC));
    cmos_write(qt, REG_B, B_24H);
    CHECK_EQ("seconds right after SET = 0", 0x59, cmos_read(qt, SEC));
    qtest_clock_step(qt, 1 * S);
    CHECK_EQ("seconds 1 s later", 0x00, cmos_read(qt, SEC));
    CHECK_EQ("minutes", 0x00, cmos_read(qt, MIN));
    CHECK_EQ("hours", 0x00, cmos_read(qt, HOUR));
    CHECK_EQ("day (leap year: Feb 29 -> Mar 1)", 0x01, cmos_read(qt, MDAY));
    CHECK_EQ("month", 0x03, cmos_read(qt, MONTH));
    CHECK_EQ("day of week (2020-03-01 was a Sunday)", 1, cmos_read(qt, WDAY));
    qtest_quit(qt);
}

static void test_century_rolls_over(void)
{
    QTest *qt = qtest_start("");
    set_time_bcd(qt, 0x20, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59, B_24H);
    qtest_clock_step(qt, 1 * S);
    CHECK_EQ("year after 2099-12-31 23:59:59 + 1 s", 0x00, cmos_read(qt, YEAR));
    CHECK_EQ("century", 0x21, cmos_read(qt, CENTURY));
    CHECK_EQ("month", 0x01, cmos_read(qt, MONTH));
    CHECK_EQ("day", 0x01, cmos_read(qt, MDAY));
    qtest_quit(qt);
}

static void test_update_interrupt_each_second_and_c_clears_on_read(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    cmos_write(qt, REG_A, 0x20);            /* no periodic rate: PF stays 0 */
    cmos_write(qt, REG_B, B_UIE | B_24H);
    cmos_read(qt, REG_C);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 high right after reading C");
    qtest_clock_step(qt, 1 * S);
    CHECK_MSG(qtest_get_irq(qt, RTC_IRQ), "IRQ8 low one second after enabling UIE");
    CHECK_EQ("register C (IRQF|UF)", C_IRQF | C_UF, cmos_read(qt, REG_C));
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 still high after reading C");
    CHECK_EQ("register C read again", 0, cmos_read(qt, REG_C));
    qtest_clock_step(qt, 1 * S);
    CHECK_EQ("register C after another second", C_IRQF | C_UF, cmos_read(qt, REG_C));
    qtest_quit(qt);
}

static void test_uf_set_without_uie_but_no_irq(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 1 * S);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 raised with UIE off");
    CHECK_EQ("register C (UF only, no IRQF)", C_UF, cmos_read(qt, REG_C) & (C_IRQF | C_UF));
    qtest_quit(qt);
}

static void test_periodic_interrupt_after_one_period_not_before(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    restart_divider(qt, 6);                 /* RS = 6: 1024 Hz, 976562.5 ns */
    cmos_write(qt, REG_B, B_PIE | B_24H);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 976000);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 high 976.0 us into a 976.6 us period");
    CHECK_EQ("register C before the period", 0, cmos_read(qt, REG_C));
    qtest_clock_step(qt, 1000);
    CHECK_MSG(qtest_get_irq(qt, RTC_IRQ), "IRQ8 low after one 1024 Hz period");
    CHECK_EQ("register C (IRQF|PF)", C_IRQF | C_PF, cmos_read(qt, REG_C) & (C_IRQF | C_PF));
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 high after reading C");
    qtest_clock_step(qt, 977000);           /* second edge at 1953125 ns */
    CHECK_MSG(qtest_get_irq(qt, RTC_IRQ), "IRQ8 low after the second period");
    qtest_quit(qt);
}

static void test_periodic_rate_2hz(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    restart_divider(qt, 15);                /* RS = 15: 2 Hz */
    cmos_write(qt, REG_B, B_PIE | B_24H);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 499 * MS);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 high before 500 ms at 2 Hz");
    qtest_clock_step(qt, 1 * MS);
    CHECK_MSG(qtest_get_irq(qt, RTC_IRQ), "IRQ8 low at 500 ms at 2 Hz");
    qtest_quit(qt);
}

static void test_periodic_flag_without_pie_and_rate_zero(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    restart_divider(qt, 6);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 2 * MS);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 raised with PIE off");
    CHECK_EQ("PF set with PIE off", C_PF, cmos_read(qt, REG_C) & (C_PF | C_IRQF));
    restart_divider(qt, 0);
    cmos_write(qt, REG_B, B_PIE | B_24H);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 10 * MS);
    CHECK_EQ("PF with rate select 0", 0, cmos_read(qt, REG_C) & C_PF);
    qtest_quit(qt);
}

static void test_alarm_interrupt_with_dont_care(void)
{
    QTest *qt = qtest_start("");
    qtest_irq_intercept(qt);
    cmos_write(qt, SEC_ALARM, 0x00);
    cmos_write(qt, MIN_ALARM, 0xc0);        /* don't care */
    cmos_write(qt, HOUR_ALARM, 0xff);       /* don't care */
    cmos_write(qt, REG_A, 0x20);            /* no periodic rate: PF stays 0 */
    set_time_bcd(qt, 0x20, 0x24, 0x03, 0x10, 0x08, 0x30, 0x58, B_AIE | B_24H);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 1 * S);
    CHECK_MSG(!qtest_get_irq(qt, RTC_IRQ), "IRQ8 high at :59 with the alarm at :00");
    CHECK_EQ("register C at :59 (UF only)", C_UF, cmos_read(qt, REG_C));
    qtest_clock_step(qt, 1 * S);
    CHECK_MSG(qtest_get_irq(qt, RTC_IRQ), "IRQ8 low at :00 with the alarm at :00");
    CHECK_EQ("register C at :00 (IRQF|AF|UF)", C_IRQF | C_AF | C_UF, cmos_read(qt, REG_C));
    qtest_clock_step(qt, 1 * S);
    CHECK_EQ("register C at :01 (UF only)", C_UF, cmos_read(qt, REG_C));
    qtest_quit(qt);
}

static void test_alarm_exact_match_needs_all_fields(void)
{
    QTest *qt = qtest_start("");
    cmos_write(qt, SEC_ALARM, 0x00);
    cmos_write(qt, MIN_ALARM, 0x31);
    cmos_write(qt, HOUR_ALARM, 0x09);       /* hour does not match */
    set_time_bcd(qt, 0x20, 0x24, 0x03, 0x10, 0x08, 0x30, 0x59, B_AIE | B_24H);
    cmos_read(qt, REG_C);
    qtest_clock_step(qt, 1 * S);
    CHECK_EQ("AF with the hour not matching", 0, cmos_read(qt, REG_C) & C_AF);
    qtest_quit(qt);
}

static void test_uip_set_in_the_last_244us_before_an_update(void)
{
    QTest *qt = qtest_start("");
    restart_divider(qt, 6);                 /* next update exactly 500 ms away */
    uint8_t s0 = cmos_read(qt, SEC);
    qtest_clock_step(qt, 500 * MS - 300000);
    CHECK_EQ("UIP 300 us before the update", 0, cmos_read(qt, REG_A) & A_UIP);
    qtest_clock_step(qt, 100000);
    CHECK_EQ("UIP 200 us before the update", A_UIP, cmos_read(qt, REG_A) & A_UIP);
    CHECK_EQ("seconds not yet updated", s0, cmos_read(qt, SEC));
    qtest_clock_step(qt, 200000);
    CHECK_EQ("UIP after the update", 0, cmos_read(qt, REG_A) & A_UIP);
    CHECK_MSG(cmos_read(qt, SEC) != s0, "seconds did not change at the update");
    cmos_write(qt, REG_B, B_SET | B_24H);
    qtest_clock_step(qt, 1 * S - 100000);
    CHECK_EQ("UIP with SET = 1", 0, cmos_read(qt, REG_A) & A_UIP);
    qtest_quit(qt);
}

static void test_nvram_reads_back_and_index_bit7_is_nmi_mask(void)
{
    QTest *qt = qtest_start("");
    cmos_write(qt, 0x40, 0x5a);
    cmos_write(qt, 0x7f, 0xa5);
    CHECK_EQ("NVRAM 0x40", 0x5a, cmos_read(qt, 0x40));
    CHECK_EQ("NVRAM 0x7f", 0xa5, cmos_read(qt, 0x7f));
    CHECK_EQ("NVRAM 0x40 via index 0xc0 (NMI mask bit)", 0x5a, cmos_read(qt, 0xc0));
    cmos_write(qt, REG_D, 0x00);
    CHECK_EQ("register D is read-only", 0x80, cmos_read(qt, REG_D));
    qtest_quit(qt);
}

static void test_memory_size_bytes(void)
{
    QTest *qt = qtest_start("-m 32");
    CHECK_EQ("base memory KiB (0x15/0x16)", 640,
             cmos_read(qt, 0x15) | cmos_read(qt, 0x16) << 8);
    CHECK_EQ("extended KiB (0x17/0x18)", 31 * 1024,
             cmos_read(qt, 0x17) | cmos_read(qt, 0x18) << 8);
    CHECK_EQ("extended KiB (0x30/0x31)", 31 * 1024,
             cmos_read(qt, 0x30) | cmos_read(qt, 0x31) << 8);
    CHECK_EQ("64K units above 16M (0x34/0x35)", 16 * 16,
             cmos_read(qt, 0x34) | cmos_read(qt, 0x35) << 8);
    CHECK_EQ("64K units above 4G (0x5b-0x5d)", 0,
             cmos_read(qt, 0x5b) | cmos_read(qt, 0x5c) << 8 | cmos_read(qt, 0x5d) << 16);
    qtest_quit(qt);

    qt = qtest_start("-m 4G");
    CHECK_EQ("extended KiB capped (0x30/0x31)", 0xffff,
             cmos_read(qt, 0x30) | cmos_read(qt, 0x31) << 8);
    CHECK_EQ("64K units above 16M, 3G low RAM (0x34/0x35)", (3072 - 16) * 16,
             cmos_read(qt, 0x34) | cmos_read(qt, 0x35) << 8);
    CHECK_EQ("64K units above 4G, 1G high RAM (0x5b-0x5d)", 1024 * 16,
             cmos_read(qt, 0x5b) | cmos_read(qt, 0x5c) << 8 | cmos_read(qt, 0x5d) << 16);
    qtest_quit(qt);
}

static void test_system_reset_keeps_nvram_and_clears_enables(void)
{
    QTest *qt = qtest_start("");
    cmos_write(qt, 0x40, 0x77);
    cmos_write(qt, REG_B, B_PIE | B_AIE | B_UIE | B_24H | B_DM);
    qtest_system_reset(qt);
    CHECK_EQ("NVRAM 0x40 after reset", 0x77, cmos_read(qt, 0x40));
    CHECK_EQ("register B after reset (enables cleared, DM kept)", B_24H | B_DM,
             cmos_read(qt, REG_B));
    CHECK_EQ("register C after reset", 0, cmos_read(qt, REG_C));
    qtest_quit(qt);
}

static void test_garbage_does_not_crash(void)
{
    QTest *qt = qtest_start("");
    for (int i = 0; i < 256; i++)
        cmos_write(qt, (uint8_t)i, 0xff);
    for (int i = 0; i < 128; i++)
        cmos_read(qt, (uint8_t)i);
    qtest_clock_step(qt, 3 * S);
    uint32_t x = 4242;
    for (int i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        uint8_t idx = (x >> 16) & 0x0f;     /* the clock and status registers */
        if ((x >> 8) & 1)
            cmos_write(qt, idx, (uint8_t)(x >> 24));
        else
            cmos_read(qt, idx);
        if (i % 300 == 0)
            qtest_clock_step(qt, (int64_t)(x % 1500) * MS);
    }
    qtest_outb(qt, RTC_INDEX, 0x00);
    CHECK_EQ("index port reads 0xff", 0xff, qtest_inb(qt, RTC_INDEX));
    cmos_write(qt, 0x41, 0x3c);
    CHECK_EQ("NVRAM after garbage (still alive)", 0x3c, cmos_read(qt, 0x41));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_power_on_status_registers),
    TEST_CASE(test_time_matches_host_time),
    TEST_CASE(test_base_date_property),
    TEST_CASE(test_bad_base_is_a_user_error),
    TEST_CASE(test_binary_and_bcd_formats),
    TEST_CASE(test_twelve_hour_mode),
    TEST_CASE(test_set_bit_freezes_and_sets_the_clock),
    TEST_CASE(test_century_rolls_over),
    TEST_CASE(test_update_interrupt_each_second_and_c_clears_on_read),
    TEST_CASE(test_uf_set_without_uie_but_no_irq),
    TEST_CASE(test_periodic_interrupt_after_one_period_not_before),
    TEST_CASE(test_periodic_rate_2hz),
    TEST_CASE(test_periodic_flag_without_pie_and_rate_zero),
    TEST_CASE(test_alarm_interrupt_with_dont_care),
    TEST_CASE(test_alarm_exact_match_needs_all_fields),
    TEST_CASE(test_uip_set_in_the_last_244us_before_an_update),
    TEST_CASE(test_nvram_reads_back_and_index_bit7_is_nmi_mask),
    TEST_CASE(test_memory_size_bytes),
    TEST_CASE(test_system_reset_keeps_nvram_and_clears_enables),
    TEST_CASE(test_garbage_does_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("rtc", cases, argc, argv);
}

/*
 * The qtest protocol itself (tests/libqtest.h): every line gets one reply,
 * malformed lines get FAIL without ending the session, memory and the
 * virtual clock behave as documented.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <string.h>

#define RAM_TEST_ADDR 0x1000

static void check_fails(QTest *qt, const char *line)
{
    char *r = qtest_raw(qt, line);
    CHECK_MSG(r != NULL, "'%s': kestrel went away instead of replying FAIL", line);
    CHECK_MSG(strncmp(r, "FAIL", 4) == 0, "'%s': expected a FAIL reply, got '%s'", line, r);
    free(r);
}

static void check_ok(QTest *qt, const char *line)
{
    char *r = qtest_raw(qt, line);
    CHECK_MSG(r != NULL, "'%s': kestrel went away", line);
    CHECK_MSG(strncmp(r, "OK", 2) == 0, "'%s': expected OK, got '%s'", line, r);
    free(r);
}

static void test_unknown_command_fails_and_session_continues(void)
{
    QTest *qt = qtest_start("-m 16");
    check_fails(qt, "frobnicate");
    check_fails(qt, "outq 0x80 1");
    check_fails(qt, "in 0x80");
    qtest_writeb(qt, RAM_TEST_ADDR, 0x5a);
    CHECK_EQ("RAM byte after bad commands", 0x5a, qtest_readb(qt, RAM_TEST_ADDR));
    qtest_quit(qt);
}

static void test_malformed_arguments_fail(void)
{
    QTest *qt = qtest_start("-m 16");
    check_fails(qt, "");
    check_fails(qt, "outb");
    check_fails(qt, "outb 0x80");
    check_fails(qt, "outb 0x10000 1");          /* port out of range */
    check_fails(qt, "outb 0x80 0x100");         /* value wider than a byte */
    check_fails(qt, "outw 0x80 zz");
    check_fails(qt, "inb 0x80 0x1");
    check_fails(qt, "writeb 0x1000");
    check_fails(qt, "writel 0x1000 0x100000000");
    check_fails(qt, "readq nowhere");
    check_fails(qt, "read 0x1000 0");
    check_fails(qt, "read 0x1000 0x40000000");  /* more than the per-command cap */
    check_fails(qt, "write 0x1000 2 0xabc");    /* 3 digits for 2 bytes */
    check_fails(qt, "write 0x1000 1 0xgg");
    check_fails(qt, "clock_step -5");
    check_fails(qt, "clock_step 1 2");
    check_fails(qt, "clock_set");
    check_fails(qt, "irq_intercept_in pic");
    check_fails(qt, "system_reset now");
    check_ok(qt, "inb 0x80");
    qtest_quit(qt);
}

static void test_overlong_line_fails_and_session_continues(void)
{
    QTest *qt = qtest_start("-m 16");
    size_t len = 3u << 20;
    char *line = malloc(len + 1);
    memset(line, 'x', len);
    line[len] = '\0';
    check_fails(qt, line);
    free(line);
    qtest_writel(qt, RAM_TEST_ADDR, 0xcafef00d);
    CHECK_EQ("RAM dword after an overlong line", 0xcafef00d, qtest_readl(qt, RAM_TEST_ADDR));
    qtest_quit(qt);
}

static void test_ram_sized_accesses_round_trip(void)
{
    QTest *qt = qtest_start("-m 16");
    qtest_writeb(qt, RAM_TEST_ADDR, 0xa5);
    CHECK_EQ("readb", 0xa5, qtest_readb(qt, RAM_TEST_ADDR));
    qtest_writew(qt, RAM_TEST_ADDR + 2, 0xbeef);
    CHECK_EQ("readw", 0xbeef, qtest_readw(qt, RAM_TEST_ADDR + 2));
    qtest_writel(qt, RAM_TEST_ADDR + 4, 0x12345678);
    CHECK_EQ("readl", 0x12345678, qtest_readl(qt, RAM_TEST_ADDR + 4));
    qtest_writeq(qt, RAM_TEST_ADDR + 8, 0x0123456789abcdefull);
    CHECK_EQ("readq", 0x0123456789abcdefull, qtest_readq(qt, RAM_TEST_ADDR + 8));
    /* Little-endian: the low byte of the dword sits at the lowest address. */
    CHECK_EQ("readb of the dword's first byte", 0x78, qtest_readb(qt, RAM_TEST_ADDR + 4));
    CHECK_EQ("readw of the qword's top half", 0x0123, qtest_readw(qt, RAM_TEST_ADDR + 14));
    qtest_quit(qt);
}

static void test_ram_block_write_read_round_trip(void)
{
    QTest *qt = qtest_start("-m 16");
    /* Longer than libqtest's chunk so the split path runs too. */
    size_t len = 10000;
    uint8_t *in = malloc(len), *out = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    qtest_memwrite(qt, RAM_TEST_ADDR, in, len);
    memset(out, 0, len);
    qtest_memread(qt, RAM_TEST_ADDR, out, len);
    for (size_t i = 0; i < len; i++)
        CHECK_MSG(in[i] == out[i], "byte %zu at 0x%zx: wrote 0x%02x, read 0x%02x",
                  i, RAM_TEST_ADDR + i, in[i], out[i]);
    /* The sized view agrees with the block view. */
    CHECK_EQ("readl at block start", 0x18110a03, qtest_readl(qt, RAM_TEST_ADDR));
    qtest_quit(qt);
}

static void test_clock_step_and_set_advance_virtual_clock(void)
{
    QTest *qt = qtest_start("-m 16");
    int64_t t0 = qtest_clock_step(qt, 0);
    int64_t t1 = qtest_clock_step(qt, 1000);
    CHECK_EQ("virtual clock after clock_step 1000", t0 + 1000, t1);
    int64_t t2 = qtest_clock_step(qt, 1000000000);
    CHECK_EQ("virtual clock after clock_step 1 s", t1 + 1000000000, t2);
    int64_t t3 = qtest_clock_set(qt, t2 + 5000);
    CHECK_EQ("virtual clock after clock_set", t2 + 5000, t3);
    /* The clock does not move by itself between commands. */
    CHECK_EQ("virtual clock after clock_step 0", t3, qtest_clock_step(qt, 0));
    qtest_quit(qt);
}

static void test_clock_step_to_deadline_never_goes_back(void)
{
    QTest *qt = qtest_start("-m 16");
    int64_t t0 = qtest_clock_step(qt, 12345);
    int64_t t1 = qtest_clock_step(qt, -1);
    CHECK_MSG(t1 >= t0, "clock_step to the next deadline went back: 0x%" PRIx64 " -> 0x%" PRIx64,
              (uint64_t)t0, (uint64_t)t1);
    qtest_quit(qt);
}

static void test_irq_intercept_and_reset_reply_ok(void)
{
    QTest *qt = qtest_start("-m 16");
    qtest_irq_intercept(qt);
    /* Nothing in this machine drives GSI 15 (the secondary IDE line). */
    CHECK_EQ("GSI 15 level", 0, qtest_get_irq(qt, 15));
    qtest_writeb(qt, RAM_TEST_ADDR, 0x77);
    qtest_system_reset(qt);
    /* The session survives a reset and RAM is not cleared by it. */
    CHECK_EQ("RAM byte after system_reset", 0x77, qtest_readb(qt, RAM_TEST_ADDR));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_unknown_command_fails_and_session_continues),
    TEST_CASE(test_malformed_arguments_fail),
    TEST_CASE(test_overlong_line_fails_and_session_continues),
    TEST_CASE(test_ram_sized_accesses_round_trip),
    TEST_CASE(test_ram_block_write_read_round_trip),
    TEST_CASE(test_clock_step_and_set_advance_virtual_clock),
    TEST_CASE(test_clock_step_to_deadline_never_goes_back),
    TEST_CASE(test_irq_intercept_and_reset_reply_ok),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("qtest-protocol", cases, argc, argv);
}

/*
 * isa-debug-exit: a write of v ends kestrel with status (v << 1) | 1
 * (QEMU's semantics, docs/pc-platform.md port table); reads return 0.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_WAIT_S 30

static void test_outl_0x10_at_0xf4_exits_with_0x21(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit,iobase=0xf4,iosize=4");
    qtest_outl(qt, 0xf4, 0x10);
    CHECK_EQ("exit status after writing 0x10", 0x21, qtest_wait_exit(qt, EXIT_WAIT_S));
    qtest_quit(qt);
}

static void test_default_iobase_0x501_outb_exits(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit");
    qtest_outb(qt, 0x501, 0x02);
    CHECK_EQ("exit status after writing 0x02 to 0x501", 0x05, qtest_wait_exit(qt, EXIT_WAIT_S));
    qtest_quit(qt);
}

static void test_write_to_second_port_of_range_exits(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit");
    qtest_outw(qt, 0x502, 0x0000);
    CHECK_EQ("exit status after writing 0 to 0x502", 0x01, qtest_wait_exit(qt, EXIT_WAIT_S));
    qtest_quit(qt);
}

static void test_exit_status_keeps_low_eight_bits(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit,iobase=0xf4,iosize=4");
    /* (0x83 << 1) | 1 = 0x107; the host sees 0x07. */
    qtest_outl(qt, 0xf4, 0x83);
    CHECK_EQ("exit status after writing 0x83", 0x07, qtest_wait_exit(qt, EXIT_WAIT_S));
    qtest_quit(qt);
}

static void test_read_returns_zero_and_does_not_exit(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit,iobase=0xf4,iosize=4");
    CHECK_EQ("inb 0xf4", 0, qtest_inb(qt, 0xf4));
    CHECK_EQ("inl 0xf4", 0, qtest_inl(qt, 0xf4));
    /* Still alive: the session answers. */
    qtest_writeb(qt, 0x1000, 0x11);
    CHECK_EQ("RAM after reading the exit port", 0x11, qtest_readb(qt, 0x1000));
    qtest_quit(qt);
}

static void test_ports_outside_range_do_not_exit(void)
{
    QTest *qt = qtest_start("-device isa-debug-exit,iobase=0xf4,iosize=1");
    qtest_outb(qt, 0xf5, 0x10);
    CHECK_EQ("RAM after writing next to the exit port", 0, qtest_readb(qt, 0x2000));
    qtest_outb(qt, 0xf4, 0x00);
    CHECK_EQ("exit status after writing 0 to 0xf4", 0x01, qtest_wait_exit(qt, EXIT_WAIT_S));
    qtest_quit(qt);
}

static void test_zero_iosize_is_a_user_error(void)
{
    const char *args[] = { "-device", "isa-debug-exit,iosize=0", NULL };
    char err[2048];
    CHECK_EQ("kestrel exit status with iosize=0", 1, qtest_run_expect_exit(args, err, sizeof(err)));
    CHECK_MSG(strstr(err, "isa-debug-exit") && strstr(err, "iosize"),
              "error message should name isa-debug-exit and iosize, got: %s", err);
}

static const TestCase cases[] = {
    TEST_CASE(test_outl_0x10_at_0xf4_exits_with_0x21),
    TEST_CASE(test_default_iobase_0x501_outb_exits),
    TEST_CASE(test_write_to_second_port_of_range_exits),
    TEST_CASE(test_exit_status_keeps_low_eight_bits),
    TEST_CASE(test_read_returns_zero_and_does_not_exit),
    TEST_CASE(test_ports_outside_range_do_not_exit),
    TEST_CASE(test_zero_iosize_is_a_user_error),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("debugexit", cases, argc, argv);
}

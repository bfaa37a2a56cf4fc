/*
 * 16550A UART ("isa-serial"): register reset values (PC16550D Table I),
 * divisor latch, THRE interrupt rules, loopback, FIFO trigger levels and the
 * character timeout, OUT2 gating of the ISA IRQ, and data to a file chardev
 * and from a unix-socket chardev.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COM1        0x3f8
#define COM2        0x2f8
#define COM1_IRQ    4
#define COM2_IRQ    3

#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define IER_ERBFI   0x01
#define IER_ETBEI   0x02
#define IIR_NO_INT  0x01
#define IIR_THRE    0x02
#define IIR_RDA     0x04
#define IIR_CTI     0x0c
#define IIR_FIFOS   0xc0
#define LCR_8N1     0x03
#define LCR_DLAB    0x80
#define MCR_DTR     0x01
#define MCR_RTS     0x02
#define MCR_OUT1    0x04
#define MCR_OUT2    0x08
#define MCR_LOOP    0x10
#define LSR_DR      0x01
#define LSR_OE      0x02
#define LSR_THRE    0x20
#define LSR_TEMT    0x40
#define FCR_ENABLE  0x01

/* Start with one UART at COM1 and nothing attached. */
static QTest *start_com1(void)
{
    return qtest_start("-device isa-serial,index=0");
}

static void make_tmpdir(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/kestrel-serial-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", dir, strerror(errno));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll LSR until DR is set; false on timeout. */
static bool wait_data_ready(QTest *qt, uint16_t base, int seconds)
{
    int64_t deadline = now_ms() + test_timeout(seconds) * 1000LL;
    while (now_ms() < deadline) {
        if (qtest_inb(qt, base + LSR) & LSR_DR)
            return true;
        usleep(2000);
    }
    return false;
}

static void test_registers_after_reset(void)
{
    QTest *qt = start_com1();
    CHECK_EQ("IER", 0x00, qtest_inb(qt, COM1 + IER));
    CHECK_EQ("IIR (no interrupt, FIFOs off)", 0x01, qtest_inb(qt, COM1 + IIR));
    CHECK_EQ("LCR", 0x00, qtest_inb(qt, COM1 + LCR));
    CHECK_EQ("MCR", 0x00, qtest_inb(qt, COM1 + MCR));
    CHECK_EQ("LSR (THRE|TEMT)", 0x60, qtest_inb(qt, COM1 + LSR));
    CHECK_EQ("MSR (DCD|DSR|CTS, no deltas)", 0xb0, qtest_inb(qt, COM1 + MSR));
    CHECK_EQ("SCR", 0x00, qtest_inb(qt, COM1 + SCR));
    qtest_quit(qt);
}

static void test_scratch_register_reads_back(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + SCR, 0xa5);
    CHECK_EQ("SCR after writing 0xa5", 0xa5, qtest_inb(qt, COM1 + SCR));
    qtest_outb(qt, COM1 + SCR, 0x5a);
    CHECK_EQ("SCR after writing 0x5a", 0x5a, qtest_inb(qt, COM1 + SCR));
    qtest_quit(qt);
}

static void test_ier_and_mcr_unused_bits_read_zero(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + IER, 0xff);
    CHECK_EQ("IER after writing 0xff", 0x0f, qtest_inb(qt, COM1 + IER));
    qtest_outb(qt, COM1 + MCR, 0xff);
    CHECK_EQ("MCR after writing 0xff", 0x1f, qtest_inb(qt, COM1 + MCR));
    qtest_quit(qt);
}

static void test_divisor_latch_behind_dlab(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + IER, 0x05);
    qtest_outb(qt, COM1 + LCR, LCR_DLAB | LCR_8N1);
    qtest_outb(qt, COM1 + DLL, 0x34);
    qtest_outb(qt, COM1 + DLM, 0x12);
    CHECK_EQ("DLL", 0x34, qtest_inb(qt, COM1 + DLL));
    CHECK_EQ("DLM", 0x12, qtest_inb(qt, COM1 + DLM));
    CHECK_EQ("LCR with DLAB", LCR_DLAB | LCR_8N1, qtest_inb(qt, COM1 + LCR));
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    CHECK_EQ("IER after DLAB cleared (not DLM)", 0x05, qtest_inb(qt, COM1 + IER));
    CHECK_EQ("LSR after DLAB cleared (RBR read did not happen)", 0x60,
             qtest_inb(qt, COM1 + LSR));
    qtest_outb(qt, COM1 + LCR, LCR_DLAB);
    CHECK_EQ("DLL kept across DLAB toggles", 0x34, qtest_inb(qt, COM1 + DLL));
    CHECK_EQ("DLM kept across DLAB toggles", 0x12, qtest_inb(qt, COM1 + DLM));
    qtest_quit(qt);
}

static void test_thre_interrupt_raised_by_ier_and_cleared_by_iir_read(void)
{
    QTest *qt = start_com1();
    qtest_irq_intercept(qt);
    qtest_outb(qt, COM1 + MCR, MCR_OUT2);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 high before any interrupt was enabled");
    qtest_outb(qt, COM1 + IER, IER_ETBEI);
    CHECK_MSG(qtest_get_irq(qt, COM1_IRQ), "IRQ4 low after enabling ETBEI with THR empty");
    CHECK_EQ("IER (SeaBIOS probe)", IER_ETBEI, qtest_inb(qt, COM1 + IER));
    CHECK_EQ("IIR reports THRE", IIR_THRE, qtest_inb(qt, COM1 + IIR));
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 still high after IIR read cleared THRE");
    CHECK_EQ("IIR after the THRE indication was read", IIR_NO_INT, qtest_inb(qt, COM1 + IIR));
    qtest_quit(qt);
}

static void test_thre_interrupt_reraised_by_thr_write(void)
{
    QTest *qt = start_com1();
    qtest_irq_intercept(qt);
    qtest_outb(qt, COM1 + MCR, MCR_OUT2);
    qtest_outb(qt, COM1 + IER, IER_ETBEI);
    qtest_inb(qt, COM1 + IIR);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 high after IIR read");
    qtest_outb(qt, COM1 + THR, 'x');
    CHECK_MSG(qtest_get_irq(qt, COM1_IRQ), "IRQ4 low after THR write drained");
    CHECK_EQ("LSR after transmit (THRE|TEMT)", LSR_THRE | LSR_TEMT,
             qtest_inb(qt, COM1 + LSR) & (LSR_THRE | LSR_TEMT));
    qtest_outb(qt, COM1 + IER, 0);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 high after disabling ETBEI");
    qtest_outb(qt, COM1 + IER, IER_ETBEI);
    CHECK_MSG(qtest_get_irq(qt, COM1_IRQ), "IRQ4 low after re-enabling ETBEI (Linux THRE test)");
    qtest_quit(qt);
}

static void test_irq_line_gated_by_out2(void)
{
    QTest *qt = start_com1();
    qtest_irq_intercept(qt);
    qtest_outb(qt, COM1 + IER, IER_ETBEI);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 driven although MCR.OUT2 = 0");
    qtest_outb(qt, COM1 + MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
    CHECK_MSG(qtest_get_irq(qt, COM1_IRQ), "IRQ4 low after setting OUT2 with THRE pending");
    qtest_outb(qt, COM1 + MCR, MCR_DTR | MCR_RTS);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 high after clearing OUT2");
    CHECK_EQ("IIR still shows THRE while the line is gated", IIR_THRE,
             qtest_inb(qt, COM1 + IIR));
    qtest_quit(qt);
}

static void test_loopback_echoes_thr_to_rbr(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP);
    qtest_outb(qt, COM1 + THR, 0x41);
    CHECK_EQ("LSR.DR after loopback write", LSR_DR, qtest_inb(qt, COM1 + LSR) & LSR_DR);
    CHECK_EQ("RBR", 0x41, qtest_inb(qt, COM1 + RBR));
    CHECK_EQ("LSR.DR after RBR read", 0, qtest_inb(qt, COM1 + LSR) & LSR_DR);
    qtest_quit(qt);
}

static void test_loopback_modem_lines(void)
{
    QTest *qt = start_com1();
    /* Linux's 8250 autoconfig: LOOP|RTS|OUT2 must read CTS|DCD. */
    qtest_outb(qt, COM1 + MCR, MCR_LOOP | MCR_RTS | MCR_OUT2);
    CHECK_EQ("MSR status with LOOP|RTS|OUT2", 0x90, qtest_inb(qt, COM1 + MSR) & 0xf0);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
    uint8_t msr = qtest_inb(qt, COM1 + MSR);
    CHECK_EQ("MSR status with LOOP|DTR|OUT1 (DSR|RI)", 0x60, msr & 0xf0);
    CHECK_EQ("MSR deltas (DCTS|DDSR|DDCD)", 0x0b, msr & 0x0f);
    CHECK_EQ("MSR deltas cleared by read", 0, qtest_inb(qt, COM1 + MSR) & 0x0f);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP | MCR_DTR);
    CHECK_EQ("MSR TERI after RI fell", 0x04, qtest_inb(qt, COM1 + MSR) & 0x0f);
    qtest_quit(qt);
}

static void test_fifo_trigger_levels(void)
{
    static const uint8_t trig_bits[4] = { 0x00, 0x40, 0x80, 0xc0 };
    static const int levels[4] = { 1, 4, 8, 14 };
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP);
    qtest_outb(qt, COM1 + IER, IER_ERBFI);
    for (int t = 0; t < 4; t++) {
        qtest_outb(qt, COM1 + FCR, FCR_ENABLE | 0x02 | 0x04 | trig_bits[t]);
        CHECK_EQ("IIR with an empty FIFO", IIR_FIFOS | IIR_NO_INT, qtest_inb(qt, COM1 + IIR));
        for (int i = 0; i < levels[t] - 1; i++)
            qtest_outb(qt, COM1 + THR, (uint8_t)i);
        if (levels[t] > 1)
            CHECK_EQ("IIR one byte below the trigger level", IIR_FIFOS | IIR_NO_INT,
                     qtest_inb(qt, COM1 + IIR));
        qtest_outb(qt, COM1 + THR, 0x55);
        CHECK_EQ("IIR at the trigger level", IIR_FIFOS | IIR_RDA, qtest_inb(qt, COM1 + IIR));
        qtest_inb(qt, COM1 + RBR);
        if (levels[t] > 1)
            CHECK_EQ("IIR after one RBR read (below trigger)", IIR_FIFOS | IIR_NO_INT,
                     qtest_inb(qt, COM1 + IIR));
    }
    qtest_quit(qt);
}

static void test_fifo_holds_16_bytes_then_overruns(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP);
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE);
    for (int i = 0; i < 17; i++)
        qtest_outb(qt, COM1 + THR, (uint8_t)(0x30 + i));
    uint8_t lsr = qtest_inb(qt, COM1 + LSR);
    CHECK_EQ("LSR.OE after 17 bytes into a 16-byte FIFO", LSR_OE, lsr & LSR_OE);
    CHECK_EQ("LSR.OE cleared by reading LSR", 0, qtest_inb(qt, COM1 + LSR) & LSR_OE);
    for (int i = 0; i < 16; i++)
        CHECK_EQ("RBR in FIFO order", 0x30 + i, qtest_inb(qt, COM1 + RBR));
    CHECK_EQ("LSR.DR after draining 16", 0, qtest_inb(qt, COM1 + LSR) & LSR_DR);
    qtest_quit(qt);
}

static void test_character_timeout_after_four_char_times(void)
{
    QTest *qt = start_com1();
    /* 115200 baud 8N1: one character is 10 bits = 86806 ns. */
    qtest_outb(qt, COM1 + LCR, LCR_DLAB | LCR_8N1);
    qtest_outb(qt, COM1 + DLL, 1);
    qtest_outb(qt, COM1 + DLM, 0);
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP);
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE | 0xc0);     /* trigger 14 */
    qtest_outb(qt, COM1 + IER, IER_ERBFI);
    qtest_outb(qt, COM1 + THR, 'a');
    qtest_outb(qt, COM1 + THR, 'b');
    qtest_clock_step(qt, 300000);
    CHECK_EQ("IIR before 4 character times", IIR_FIFOS | IIR_NO_INT,
             qtest_inb(qt, COM1 + IIR));
    qtest_clock_step(qt, 60000);
    CHECK_EQ("IIR after 4 character times (timeout)", IIR_FIFOS | IIR_CTI,
             qtest_inb(qt, COM1 + IIR));
    CHECK_EQ("RBR", 'a', qtest_inb(qt, COM1 + RBR));
    CHECK_EQ("IIR after one RBR read", IIR_FIFOS | IIR_NO_INT, qtest_inb(qt, COM1 + IIR));
    qtest_clock_step(qt, 400000);
    CHECK_EQ("IIR timeout again for the remaining byte", IIR_FIFOS | IIR_CTI,
             qtest_inb(qt, COM1 + IIR));
    CHECK_EQ("RBR", 'b', qtest_inb(qt, COM1 + RBR));
    qtest_clock_step(qt, 1000000);
    CHECK_EQ("IIR with the FIFO empty", IIR_FIFOS | IIR_NO_INT, qtest_inb(qt, COM1 + IIR));
    qtest_quit(qt);
}

static void test_fcr_enable_reports_fifos_in_iir(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE);
    CHECK_EQ("IIR bits 7:6 with FIFOs on", IIR_FIFOS, qtest_inb(qt, COM1 + IIR) & 0xf0);
    qtest_outb(qt, COM1 + FCR, 0);
    CHECK_EQ("IIR bits 7:6 with FIFOs off", 0, qtest_inb(qt, COM1 + IIR) & 0xf0);
    qtest_quit(qt);
}

static void test_com2_uses_0x2f8_and_irq3(void)
{
    QTest *qt = qtest_start("-device isa-serial,index=1");
    qtest_irq_intercept(qt);
    qtest_outb(qt, COM2 + SCR, 0x77);
    CHECK_EQ("COM2 SCR", 0x77, qtest_inb(qt, COM2 + SCR));
    CHECK_EQ("COM1 port unclaimed", 0xff, qtest_inb(qt, COM1 + SCR));
    qtest_outb(qt, COM2 + MCR, MCR_OUT2);
    qtest_outb(qt, COM2 + IER, IER_ETBEI);
    CHECK_MSG(qtest_get_irq(qt, COM2_IRQ), "IRQ3 low with COM2 THRE pending");
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 high for a COM2 interrupt");
    qtest_quit(qt);
}

static void test_iobase_and_irq_override_index(void)
{
    QTest *qt = qtest_start("-device isa-serial,index=0,iobase=0x2e8,irq=5");
    qtest_irq_intercept(qt);
    qtest_outb(qt, 0x2e8 + SCR, 0x42);
    CHECK_EQ("SCR at iobase 0x2e8", 0x42, qtest_inb(qt, 0x2e8 + SCR));
    qtest_outb(qt, 0x2e8 + MCR, MCR_OUT2);
    qtest_outb(qt, 0x2e8 + IER, IER_ETBEI);
    CHECK_MSG(qtest_get_irq(qt, 5), "IRQ5 low with THRE pending");
    qtest_quit(qt);
}

static void test_system_reset_restores_power_on_values(void)
{
    QTest *qt = start_com1();
    qtest_outb(qt, COM1 + SCR, 0x5a);
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP | MCR_OUT2);
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE);
    qtest_outb(qt, COM1 + THR, 0x11);
    qtest_system_reset(qt);
    CHECK_EQ("SCR after system reset", 0, qtest_inb(qt, COM1 + SCR));
    CHECK_EQ("LCR after system reset", 0, qtest_inb(qt, COM1 + LCR));
    CHECK_EQ("MCR after system reset", 0, qtest_inb(qt, COM1 + MCR));
    CHECK_EQ("IIR after system reset", IIR_NO_INT, qtest_inb(qt, COM1 + IIR));
    CHECK_EQ("LSR after system reset", 0x60, qtest_inb(qt, COM1 + LSR));
    qtest_quit(qt);
}

static void test_thr_bytes_reach_file_chardev(void)
{
    char dir[256], path[300], args[700];
    make_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/out.txt", dir);
    snprintf(args, sizeof(args),
             "-chardev file,id=c,path=%s -device isa-serial,index=0,chardev=c", path);
    QTest *qt = qtest_start(args);
    const char *msg = "hello, 16550\n";
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    for (const char *p = msg; *p; p++)
        qtest_outb(qt, COM1 + THR, (uint8_t)*p);
    qtest_quit(qt);

    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "chardev file %s missing: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    unlink(path);
    rmdir(dir);
    CHECK_STREQ("file chardev contents", msg, buf);
}

static int connect_unix(const char *path, int seconds)
{
    int64_t deadline = now_ms() + test_timeout(seconds) * 1000LL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    while (now_ms() < deadline) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        if (fd >= 0)
            close(fd);
        usleep(10000);
    }
    return -1;
}

static void test_socket_input_lands_in_rbr_with_interrupt(void)
{
    char dir[256], sock[300], args[700];
    make_tmpdir(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    snprintf(args, sizeof(args),
             "-chardev socket,id=c,path=%s,server=on,wait=off "
             "-device isa-serial,index=0,chardev=c", sock);
    QTest *qt = qtest_start(args);
    qtest_irq_intercept(qt);
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
    qtest_outb(qt, COM1 + IER, IER_ERBFI);
    int fd = connect_unix(sock, 10);
    CHECK_MSG(fd >= 0, "could not connect to the chardev socket %s", sock);
    CHECK_EQ("bytes sent", 2, write(fd, "xy", 2));
    CHECK_MSG(wait_data_ready(qt, COM1, 10), "LSR.DR never set after sending to the socket");
    CHECK_MSG(qtest_get_irq(qt, COM1_IRQ), "IRQ4 low with received data and ERBFI");
    CHECK_EQ("IIR", IIR_RDA, qtest_inb(qt, COM1 + IIR));
    CHECK_EQ("RBR first byte", 'x', qtest_inb(qt, COM1 + RBR));
    CHECK_MSG(wait_data_ready(qt, COM1, 10), "second byte never arrived");
    CHECK_EQ("RBR second byte", 'y', qtest_inb(qt, COM1 + RBR));
    CHECK_EQ("LSR.DR after draining", 0, qtest_inb(qt, COM1 + LSR) & LSR_DR);
    CHECK_MSG(!qtest_get_irq(qt, COM1_IRQ), "IRQ4 still high after draining");
    close(fd);
    qtest_quit(qt);
    unlink(sock);
    rmdir(dir);
}

static void test_socket_input_is_flow_controlled_without_overrun(void)
{
    char dir[256], sock[300], args[700];
    make_tmpdir(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    snprintf(args, sizeof(args),
             "-chardev socket,id=c,path=%s,server=on,wait=off "
             "-device isa-serial,index=0,chardev=c", sock);
    QTest *qt = qtest_start(args);
    qtest_outb(qt, COM1 + LCR, LCR_8N1);
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE | 0xc0);
    int fd = connect_unix(sock, 10);
    CHECK_MSG(fd >= 0, "could not connect to the chardev socket %s", sock);
    enum { N = 100 };
    uint8_t out[N];
    for (int i = 0; i < N; i++)
        out[i] = (uint8_t)(i * 7 + 1);
    CHECK_EQ("bytes sent", N, write(fd, out, N));
    for (int i = 0; i < N; i++) {
        CHECK_MSG(wait_data_ready(qt, COM1, 10), "byte %d of %d never arrived", i, N);
        uint8_t lsr = qtest_inb(qt, COM1 + LSR);
        CHECK_EQ("LSR.OE while receiving", 0, lsr & LSR_OE);
        CHECK_EQ("received byte", out[i], qtest_inb(qt, COM1 + RBR));
    }
    close(fd);
    qtest_quit(qt);
    unlink(sock);
    rmdir(dir);
}

static void test_register_garbage_does_not_crash(void)
{
    QTest *qt = start_com1();
    for (int dlab = 0; dlab < 2; dlab++) {
        for (int r = 0; r < 8; r++) {
            qtest_outb(qt, COM1 + LCR, dlab ? 0xff : 0x7f);
            qtest_outb(qt, COM1 + r, 0xff);
        }
        for (int r = 0; r < 8; r++)
            qtest_inb(qt, COM1 + r);
    }
    /* Pseudo-random writes and reads, including divisor 0 with the timeout armed. */
    uint32_t x = 12345;
    for (int i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        int reg = (x >> 16) & 7;
        if ((x >> 8) & 1)
            qtest_outb(qt, COM1 + reg, (uint8_t)(x >> 24));
        else
            qtest_inb(qt, COM1 + reg);
        if (i % 500 == 0)
            qtest_clock_step(qt, 10 * 1000 * 1000);
    }
    qtest_outb(qt, COM1 + LCR, LCR_DLAB);
    qtest_outb(qt, COM1 + DLL, 0);
    qtest_outb(qt, COM1 + DLM, 0);
    qtest_outb(qt, COM1 + LCR, 0);
    qtest_outb(qt, COM1 + MCR, MCR_LOOP);
    qtest_outb(qt, COM1 + FCR, FCR_ENABLE);
    qtest_outb(qt, COM1 + THR, 1);
    qtest_clock_step(qt, -1);
    qtest_outb(qt, COM1 + SCR, 0x3c);
    CHECK_EQ("SCR after garbage (still alive)", 0x3c, qtest_inb(qt, COM1 + SCR));
    qtest_quit(qt);
}

static void test_bad_properties_are_user_errors(void)
{
    const char *index4[] = { "-device", "isa-serial,index=4", NULL };
    qtest_expect_user_error(index4, "index=4");
    const char *irq16[] = { "-device", "isa-serial,irq=16", NULL };
    qtest_expect_user_error(irq16, "irq=16");
    const char *nochr[] = { "-device", "isa-serial,chardev=nosuch", NULL };
    qtest_expect_user_error(nochr, "'nosuch' not found");
    const char *twice[] = { "-device", "isa-serial,index=0", "-device", "isa-serial,index=0",
                            NULL };
    qtest_expect_user_error(twice, "overlap");
}

static const TestCase cases[] = {
    TEST_CASE(test_registers_after_reset),
    TEST_CASE(test_scratch_register_reads_back),
    TEST_CASE(test_ier_and_mcr_unused_bits_read_zero),
    TEST_CASE(test_divisor_latch_behind_dlab),
    TEST_CASE(test_thre_interrupt_raised_by_ier_and_cleared_by_iir_read),
    TEST_CASE(test_thre_interrupt_reraised_by_thr_write),
    TEST_CASE(test_irq_line_gated_by_out2),
    TEST_CASE(test_loopback_echoes_thr_to_rbr),
    TEST_CASE(test_loopback_modem_lines),
    TEST_CASE(test_fifo_trigger_levels),
    TEST_CASE(test_fifo_holds_16_bytes_then_overruns),
    TEST_CASE(test_character_timeout_after_four_char_times),
    TEST_CASE(test_fcr_enable_reports_fifos_in_iir),
    TEST_CASE(test_com2_uses_0x2f8_and_irq3),
    TEST_CASE(test_iobase_and_irq_override_index),
    TEST_CASE(test_system_reset_restores_power_on_values),
    TEST_CASE(test_thr_bytes_reach_file_chardev),
    TEST_CASE(test_socket_input_lands_in_rbr_with_interrupt),
    TEST_CASE(test_socket_input_is_flow_controlled_without_overrun),
    TEST_CASE(test_register_garbage_does_not_crash),
    TEST_CASE(test_bad_properties_are_user_errors),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("serial", cases, argc, argv);
}

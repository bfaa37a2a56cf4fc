/*
 * The qtest accelerator: no CPU at all.  A test program drives the machine
 * over a character device (-qtest unix:PATH) with a line protocol: port and
 * memory accesses, the virtual clock, and interception of interrupt lines.
 * The protocol is written down in tests/libqtest.h, the client side.
 *
 * The virtual clock is in manual mode: it moves only on clock_step and
 * clock_set, so device timing under test is exact and repeatable.
 *
 * Every line gets exactly one reply, "OK [value]" or "FAIL reason"; a bad
 * line never ends the session.  Asynchronous "IRQ raise N" / "IRQ lower N"
 * lines are sent on GSI level changes once irq_intercept_in was issued.
 * When the peer closes the connection the machine exits with status 0.
 *
 * Not modelled: QEMU's other qtest commands (endianness queries, QOM
 * property access, irq_intercept_out, module_load, set_irq_in).
 */
#include "kestrel/accel.h"
#include "kestrel/chardev.h"
#include "kestrel/clock.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * A write of LEN bytes is 2*LEN hex digits on one line; cap both so that a
 * bogus peer cannot make us buffer or allocate without bound.
 */
#define QTEST_MAX_MEM_LEN   (1u << 20)
#define QTEST_MAX_LINE      (2 * QTEST_MAX_MEM_LEN + 256)
#define QTEST_MAX_ARGS      8

typedef struct QtestState {
    Machine *m;
    CharFrontend *fe;
    GString *line;                  /* partial command line */
    bool line_overflow;             /* discarding until the next newline */
    bool irq_intercept;             /* irq_intercept_in issued */
    int irq_level[MACHINE_NUM_GSI];
} QtestState;

static QtestState *qtest_state;

/* ---- replies ------------------------------------------------------------ */

static void qtest_send(QtestState *s, const char *text)
{
    if (s->fe)
        char_fe_write(s->fe, (const uint8_t *)text, (int)strlen(text));
}

static void qtest_reply(QtestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void qtest_reply(QtestState *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    GString *out = g_string_new(text);
    g_string_append_c(out, '\n');
    qtest_send(s, out->str);
    g_string_free(out, TRUE);
    g_free(text);
}

/* ---- argument parsing -------------------------------------------------- */

/* C-syntax unsigned number (0x.., 0.., decimal); no sign, no trailing junk. */
static bool qtest_parse_u64(const char *str, uint64_t *out)
{
    if (!str || !*str || *str == '-' || *str == '+' || *str == ' ')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(str, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool qtest_parse_port(QtestState *s, const char *str, uint16_t *port)
{
    uint64_t v;
    if (!qtest_parse_u64(str, &v) || v > 0xffff) {
        qtest_reply(s, "FAIL bad port '%s' (0..0xffff)", str ? str : "");
        return false;
    }
    *port = (uint16_t)v;
    return true;
}

static bool qtest_parse_value(QtestState *s, const char *str, unsigned size, uint64_t *v)
{
    uint64_t max = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    if (!qtest_parse_u64(str, v) || *v > max) {
        qtest_reply(s, "FAIL bad %u-byte value '%s'", size, str ? str : "");
        return false;
    }
    return true;
}

static bool qtest_parse_addr(QtestState *s, const char *str, hwaddr *addr)
{
    uint64_t v;
    if (!qtest_parse_u64(str, &v)) {
        qtest_reply(s, "FAIL bad address '%s'", str ? str : "");
        return false;
    }
    *addr = v;
    return true;
}

static bool qtest_parse_len(QtestState *s, const char *str, hwaddr addr, uint64_t *len)
{
    if (!qtest_parse_u64(str, len) || *len == 0 || *len > QTEST_MAX_MEM_LEN) {
        qtest_reply(s, "FAIL bad length '%s' (1..0x%x)", str ? str : "", QTEST_MAX_MEM_LEN);
        return false;
    }
    if (addr + *len - 1 < addr) {
        qtest_reply(s, "FAIL access wraps the address space");
        return false;
    }
    return true;
}

static bool qtest_parse_ns(QtestState *s, const char *str, int64_t *ns)
{
    uint64_t v;
    if (!qtest_parse_u64(str, &v) || v > INT64_MAX) {
        qtest_reply(s, "FAIL bad time in ns '%s'", str ? str : "");
        return false;
    }
    *ns = (int64_t)v;
    return true;
}

static int qtest_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- commands ---------------------------------------------------------- */

static unsigned qtest_size_suffix(char c)
{
    switch (c) {
    case 'b': return 1;
    case 'w': return 2;
    case 'l': return 4;
    case 'q': return 8;
    default:  return 0;
    }
}

static bool qtest_check_argc(QtestState *s, int argc, int want, const char *usage)
{
    if (argc != want) {
        qtest_reply(s, "FAIL usage: %s", usage);
        return false;
    }
    return true;
}

static AddressSpace *qtest_as(QtestState *s)
{
    return s->m ? s->m->as : NULL;
}

static void qtest_cmd_out(QtestState *s, unsigned size, int argc, char **argv)
{
    uint16_t port;
    uint64_t v;
    if (!qtest_check_argc(s, argc, 3, "outb|outw|outl PORT VALUE") ||
        !qtest_parse_port(s, argv[1], &port) || !qtest_parse_value(s, argv[2], size, &v))
        return;
    ioport_write(port, (uint32_t)v, size);
    qtest_reply(s, "OK");
}

static void qtest_cmd_in(QtestState *s, unsigned size, int argc, char **argv)
{
    uint16_t port;
    if (!qtest_check_argc(s, argc, 2, "inb|inw|inl PORT") || !qtest_parse_port(s, argv[1], &port))
        return;
    uint32_t v = ioport_read(port, size);
    if (size < 4)
        v &= (1u << (8 * size)) - 1;
    qtest_reply(s, "OK 0x%x", v);
}

static void qtest_cmd_write_sized(QtestState *s, unsigned size, int argc, char **argv)
{
    hwaddr addr;
    uint64_t v;
    if (!qtest_check_argc(s, argc, 3, "writeb|writew|writel|writeq ADDR VALUE") ||
        !qtest_parse_addr(s, argv[1], &addr) || !qtest_parse_value(s, argv[2], size, &v))
        return;
    AddressSpace *as = qtest_as(s);
    if (!as) {
        qtest_reply(s, "FAIL no address space yet");
        return;
    }
    address_space_st(as, addr, v, size);
    memory_notify_ram_write(addr, size);
    qtest_reply(s, "OK");
}

static void qtest_cmd_read_sized(QtestState *s, unsigned size, int argc, char **argv)
{
    hwaddr addr;
    if (!qtest_check_argc(s, argc, 2, "readb|readw|readl|readq ADDR") ||
        !qtest_parse_addr(s, argv[1], &addr))
        return;
    AddressSpace *as = qtest_as(s);
    if (!as) {
        qtest_reply(s, "FAIL no address space yet");
        return;
    }
    uint64_t v = address_space_ld(as, addr, size);
    if (size < 8)
        v &= (1ull << (8 * size)) - 1;
    qtest_reply(s, "OK 0x%" PRIx64, v);
}

static void qtest_cmd_read(QtestState *s, int argc, char **argv)
{
    hwaddr addr;
    uint64_t len;
    if (!qtest_check_argc(s, argc, 3, "read ADDR LEN") || !qtest_parse_addr(s, argv[1], &addr) ||
        !qtest_parse_len(s, argv[2], addr, &len))
        return;
    AddressSpace *as = qtest_as(s);
    if (!as) {
        qtest_reply(s, "FAIL no address space yet");
        return;
    }
    uint8_t *buf = g_malloc(len);
    address_space_read(as, addr, buf, len);
    static const char hex[] = "0123456789abcdef";
    GString *out = g_string_sized_new(2 * len + 8);
    g_string_append(out, "OK 0x");
    for (uint64_t i = 0; i < len; i++) {
        g_string_append_c(out, hex[buf[i] >> 4]);
        g_string_append_c(out, hex[buf[i] & 15]);
    }
    g_string_append_c(out, '\n');
    qtest_send(s, out->str);
    g_string_free(out, TRUE);
    g_free(buf);
}

static void qtest_cmd_write(QtestState *s, int argc, char **argv)
{
    hwaddr addr;
    uint64_t len;
    if (!qtest_check_argc(s, argc, 4, "write ADDR LEN 0xHEXBYTES") ||
        !qtest_parse_addr(s, argv[1], &addr) || !qtest_parse_len(s, argv[2], addr, &len))
        return;
    const char *h = argv[3];
    if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
        h += 2;
    if (strlen(h) != 2 * len) {
        qtest_reply(s, "FAIL write: LEN is %" PRIu64 " but %zu hex digits given",
                    len, strlen(h));
        return;
    }
    AddressSpace *as = qtest_as(s);
    if (!as) {
        qtest_reply(s, "FAIL no address space yet");
        return;
    }
    uint8_t *buf = g_malloc(len);
    for (uint64_t i = 0; i < len; i++) {
        int hi = qtest_hexval(h[2 * i]), lo = qtest_hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            qtest_reply(s, "FAIL write: bad hex digit at byte %" PRIu64, i);
            g_free(buf);
            return;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    address_space_write(as, addr, buf, len);
    memory_notify_ram_write(addr, len);
    g_free(buf);
    qtest_reply(s, "OK");
}

static void qtest_cmd_clock_step(QtestState *s, int argc, char **argv)
{
    int64_t ns;
    if (argc > 2) {
        qtest_reply(s, "FAIL usage: clock_step [NS]");
        return;
    }
    if (argc == 2) {
        if (!qtest_parse_ns(s, argv[1], &ns))
            return;
    } else {
        /* To the next virtual timer deadline; with no timer armed the clock stays. */
        int64_t deadline = clock_virtual_next_deadline();
        int64_t cur = clock_get_ns(CLOCK_VIRTUAL);
        ns = deadline > cur ? deadline - cur : 0;
    }
    /* Saturate rather than overflow the clock on an absurd step. */
    int64_t base = clock_get_ns(CLOCK_VIRTUAL);
    if (ns > INT64_MAX - base)
        ns = INT64_MAX - base;
    int64_t now = clock_virtual_step(ns);
    qtest_reply(s, "OK 0x%" PRIx64, (uint64_t)now);
}

static void qtest_cmd_clock_set(QtestState *s, int argc, char **argv)
{
    int64_t ns;
    if (!qtest_check_argc(s, argc, 2, "clock_set NS") || !qtest_parse_ns(s, argv[1], &ns))
        return;
    int64_t now = clock_virtual_set(ns);
    qtest_reply(s, "OK 0x%" PRIx64, (uint64_t)now);
}

static void qtest_cmd_irq_intercept_in(QtestState *s, int argc, char **argv)
{
    if (!qtest_check_argc(s, argc, 2, "irq_intercept_in ioapic"))
        return;
    if (strcmp(argv[1], "ioapic") != 0) {
        qtest_reply(s, "FAIL irq_intercept_in: only 'ioapic' (the GSIs) can be intercepted");
        return;
    }
    /* Bring the client in sync with lines that are already high. */
    if (!s->irq_intercept) {
        s->irq_intercept = true;
        for (int i = 0; i < MACHINE_NUM_GSI; i++)
            if (s->irq_level[i])
                qtest_reply(s, "IRQ raise %d", i);
    }
    qtest_reply(s, "OK");
}

static void qtest_execute(QtestState *s, char *line)
{
    char *argv[QTEST_MAX_ARGS + 1];
    int argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == QTEST_MAX_ARGS) {
            qtest_reply(s, "FAIL too many arguments");
            return;
        }
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    if (argc == 0) {
        qtest_reply(s, "FAIL empty command");
        return;
    }

    const char *cmd = argv[0];
    size_t cl = strlen(cmd);
    unsigned size = cl ? qtest_size_suffix(cmd[cl - 1]) : 0;

    if (cl == 4 && strncmp(cmd, "out", 3) == 0 && size && size <= 4)
        qtest_cmd_out(s, size, argc, argv);
    else if (cl == 3 && strncmp(cmd, "in", 2) == 0 && size && size <= 4)
        qtest_cmd_in(s, size, argc, argv);
    else if (cl == 6 && strncmp(cmd, "write", 5) == 0 && size)
        qtest_cmd_write_sized(s, size, argc, argv);
    else if (cl == 5 && strncmp(cmd, "read", 4) == 0 && size)
        qtest_cmd_read_sized(s, size, argc, argv);
    else if (strcmp(cmd, "read") == 0)
        qtest_cmd_read(s, argc, argv);
    else if (strcmp(cmd, "write") == 0)
        qtest_cmd_write(s, argc, argv);
    else if (strcmp(cmd, "clock_step") == 0)
        qtest_cmd_clock_step(s, argc, argv);
    else if (strcmp(cmd, "clock_set") == 0)
        qtest_cmd_clock_set(s, argc, argv);
    else if (strcmp(cmd, "irq_intercept_in") == 0)
        qtest_cmd_irq_intercept_in(s, argc, argv);
    else if (strcmp(cmd, "system_reset") == 0) {
        if (qtest_check_argc(s, argc, 1, "system_reset")) {
            machine_request_reset();
            qtest_reply(s, "OK");
        }
    } else {
        /* Do not echo an arbitrarily long token back. */
        qtest_reply(s, "FAIL unknown command '%.40s'", cmd);
    }
}

/* ---- chardev frontend ---------------------------------------------------- */

static int qtest_can_receive(void *opaque)
{
    return 4096;
}

static void qtest_receive(void *opaque, const uint8_t *buf, int len)
{
    QtestState *s = opaque;
    for (int i = 0; i < len; i++) {
        char c = (char)buf[i];
        if (c != '\n') {
            if (s->line_overflow)
                continue;
            if (s->line->len >= QTEST_MAX_LINE) {
                s->line_overflow = true;
                g_string_truncate(s->line, 0);
                continue;
            }
            g_string_append_c(s->line, c);
            continue;
        }
        if (s->line_overflow) {
            s->line_overflow = false;
            qtest_reply(s, "FAIL line longer than %u bytes", QTEST_MAX_LINE);
            continue;
        }
        if (s->line->len && s->line->str[s->line->len - 1] == '\r')
            g_string_truncate(s->line, s->line->len - 1);
        if (memchr(s->line->str, '\0', s->line->len)) {
            qtest_reply(s, "FAIL NUL byte in command");
        } else {
            qtest_execute(s, s->line->str);
        }
        g_string_truncate(s->line, 0);
    }
}

static void qtest_event(void *opaque, CharEvent event)
{
    QtestState *s = opaque;
    switch (event) {
    case CHR_EVENT_OPENED:
        g_string_truncate(s->line, 0);
        s->line_overflow = false;
        break;
    case CHR_EVENT_CLOSED:
        /* The test is done with us. */
        machine_request_exit(0);
        break;
    default:
        break;
    }
}

static const CharFrontendOps qtest_fe_ops = {
    .can_receive = qtest_can_receive,
    .receive = qtest_receive,
    .event = qtest_event,
};

/* ---- AccelOps ---------------------------------------------------------- */

static bool qtest_probe(char **why)
{
    return true;
}

static bool qtest_init(Machine *m, GError **errp)
{
    QtestState *s = g_new0(QtestState, 1);
    s->m = m;
    s->line = g_string_new(NULL);
    m->accel_state = s;
    qtest_state = s;

    clock_virtual_set_manual(true);

    const char *spec = m->cfg ? m->cfg->qtest_spec : NULL;
    if (!spec)
        return true;        /* -accel qtest alone: a machine that only idles */
    Chardev *chr = chardev_new_from_shorthand(spec, "qtest", errp);
    if (!chr) {
        if (errp && !*errp)
            kestrel_set_error(errp, "-qtest %s: no character device", spec);
        return false;
    }
    s->fe = chardev_attach(chr, &qtest_fe_ops, s, errp);
    return s->fe != NULL;
}

static bool qtest_vcpu_init(Machine *m, int id, GError **errp)
{
    return true;
}

static void qtest_vcpu_thread_init(Machine *m, int id)
{
}

static VcpuRunResult qtest_vcpu_run(Machine *m, int id)
{
    return VCPU_RUN_HALTED;
}

static void qtest_vcpu_kick(Machine *m, int id)
{
}

static void qtest_set_irq(Machine *m, int gsi, int level)
{
    QtestState *s = m && m->accel_state ? m->accel_state : qtest_state;
    if (!s || gsi < 0 || gsi >= MACHINE_NUM_GSI)
        return;
    level = level != 0;
    if (s->irq_level[gsi] == level)
        return;
    s->irq_level[gsi] = level;
    if (s->irq_intercept)
        qtest_reply(s, "IRQ %s %d", level ? "raise" : "lower", gsi);
}

static void qtest_reset(Machine *m)
{
}

static bool qtest_get_regs(Machine *m, int id, X86CPUState *st)
{
    return false;
}

static bool qtest_set_regs(Machine *m, int id, const X86CPUState *st)
{
    /* No CPU: boot state is accepted and ignored. */
    return true;
}

static void qtest_cleanup(Machine *m)
{
    QtestState *s = m->accel_state;
    if (!s)
        return;
    if (s->fe)
        char_fe_detach(s->fe);
    g_string_free(s->line, TRUE);
    g_free(s);
    m->accel_state = NULL;
    qtest_state = NULL;
}

static const AccelOps qtest_accel_ops = {
    .name = "qtest",
    .probe = qtest_probe,
    .init = qtest_init,
    .vcpu_init = qtest_vcpu_init,
    .vcpu_thread_init = qtest_vcpu_thread_init,
    .vcpu_run = qtest_vcpu_run,
    .vcpu_kick = qtest_vcpu_kick,
    .set_irq = qtest_set_irq,
    .reset = qtest_reset,
    .get_regs = qtest_get_regs,
    .set_regs = qtest_set_regs,
    .cleanup = qtest_cleanup,
    .single_thread = true,
    .has_cpu = false,
};

ACCEL_REGISTER(qtest_accel_ops)

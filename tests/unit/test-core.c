/*
 * The machine core's small pieces: I/O port dispatch, IRQ lines, option and
 * size parsing, the virtual clock and timers, and the device registry.
 */
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/opts.h"
#include "tests/testlib.h"

#include <string.h>

/* ---- I/O ports ---- */

static uint8_t byte_regs[8];
static int byte_accesses;

static uint32_t byte_read(void *opaque, uint16_t off, unsigned size)
{
    byte_accesses++;
    return byte_regs[off];
}

static void byte_write(void *opaque, uint16_t off, uint32_t v, unsigned size)
{
    byte_accesses++;
    byte_regs[off] = v;
}

static const IoPortOps byte_ops = { .read = byte_read, .write = byte_write, .max_access = 1 };

static void test_ioport_wide_access_splits_into_bytes(void)
{
    GError *err = NULL;
    IoPortRange *r = ioport_register(0x300, 8, &byte_ops, NULL, "bytes", &err);
    CHECK(r);
    ioport_write(0x300, 0x44332211, 4);
    CHECK_EQ("accesses", 4, byte_accesses);
    CHECK_EQ("byte 3", 0x44, byte_regs[3]);
    CHECK_EQ("word read", 0x3322, ioport_read(0x301, 2));
    ioport_unregister(r);
}

static void test_ioport_unassigned_reads_ones(void)
{
    CHECK_EQ("inb", 0xff, ioport_read(0x1234, 1));
    CHECK_EQ("inw", 0xffff, ioport_read(0x1234, 2));
    CHECK_EQ("inl", 0xffffffff, ioport_read(0x1234, 4));
    ioport_write(0x1234, 5, 1);               /* ignored, no crash */
}

static void test_ioport_overlap_is_an_error(void)
{
    GError *err = NULL;
    IoPortRange *a = ioport_register(0x3f8, 8, &byte_ops, NULL, "com1", &err);
    CHECK(a);
    CHECK(!ioport_register(0x3fc, 2, &byte_ops, NULL, "clash", &err));
    CHECK(err && strstr(err->message, "com1"));
    CHECK(!ioport_register(0xfffe, 4, &byte_ops, NULL, "past-end", NULL));
}

static void test_ioport_access_straddling_range_end(void)
{
    IoPortRange *r = ioport_register(0x400, 2, &byte_ops, NULL, "two", NULL);
    byte_regs[1] = 0x5a;
    /* a 16-bit read at the last port gets one byte from us, one from nobody */
    CHECK_EQ("straddle", 0xff5a, ioport_read(0x401, 2));
    ioport_unregister(r);
}

/* ---- IRQ lines ---- */

static int irq_calls, irq_last;
static void irq_sink(void *opaque, int n, int level) { irq_calls++; irq_last = level; }

static void test_irq_line_reports_changes_only(void)
{
    IrqLine *l = irq_line_new(irq_sink, NULL, 3);
    irq_raise(l);
    irq_raise(l);
    CHECK_EQ("calls after two raises", 1, irq_calls);
    irq_lower(l);
    CHECK_EQ("level", 0, irq_last);
    irq_pulse(l);
    CHECK_EQ("calls after pulse", 4, irq_calls);
    irq_set_level(NULL, 1);                   /* unwired line */
}

static void test_irq_split_reaches_both(void)
{
    int before = irq_calls;
    IrqLine *a = irq_line_new(irq_sink, NULL, 0), *b = irq_line_new(irq_sink, NULL, 1);
    IrqLine *s = irq_line_new_split(a, b);
    irq_raise(s);
    CHECK_EQ("sinks called", before + 2, irq_calls);
}

/* ---- parsing ---- */

static void test_parse_size_suffixes(void)
{
    uint64_t v;
    CHECK(parse_size("512", 'M', &v));
    CHECK_EQ("512 (MiB default)", 512ULL << 20, v);
    CHECK(parse_size("2G", 'M', &v));
    CHECK_EQ("2G", 2ULL << 30, v);
    CHECK(parse_size("1.5G", 'M', &v));
    CHECK_EQ("1.5G", 3ULL << 29, v);
    CHECK(parse_size("64KiB", 0, &v));
    CHECK_EQ("64KiB", 64 << 10, v);
    CHECK(!parse_size("12Q", 'M', &v));
    CHECK(!parse_size("-1", 'M', &v));
    CHECK(!parse_size("", 'M', &v));
    CHECK(!parse_size("99999999999999T", 'M', &v));
}

static void test_kopts_implied_key_flags_and_commas(void)
{
    GError *err = NULL;
    KOpts *o = kopts_parse("socket,id=c0,path=/tmp/a,,b,server,nowait", "backend", &err);
    CHECK(o);
    CHECK_STREQ("backend", "socket", kopts_get(o, "backend"));
    CHECK_STREQ("path with escaped comma", "/tmp/a,b", kopts_get(o, "path"));
    CHECK_STREQ("bare flag", "on", kopts_get(o, "server"));
    CHECK_STREQ("nowait", "off", kopts_get(o, "wait"));
    CHECK(!kopts_check_all_used(o, "-chardev", &err));    /* id never asked for */
    CHECK(err && strstr(err->message, "'id'"));
    kopts_free(o);
    CHECK(!kopts_parse("a=1,,,=2", NULL, NULL));
}

/* ---- clock ---- */

static int fired[3], fire_order[3], fire_n;
static void timer_cb(void *opaque)
{
    int i = (int)(intptr_t)opaque;
    fired[i] = 1;
    fire_order[fire_n++] = i;
}

static void test_manual_clock_runs_timers_in_order(void)
{
    clock_virtual_set_manual(true);
    int64_t now = clock_get_ns(CLOCK_VIRTUAL);
    Timer *t0 = timer_new(CLOCK_VIRTUAL, timer_cb, (void *)0);
    Timer *t1 = timer_new(CLOCK_VIRTUAL, timer_cb, (void *)1);
    Timer *t2 = timer_new(CLOCK_VIRTUAL, timer_cb, (void *)2);
    timer_mod(t0, now + 300);
    timer_mod(t1, now + 100);
    timer_mod(t2, now + 1000);
    CHECK_EQ("next deadline", now + 100, clock_virtual_next_deadline());
    clock_virtual_step(99);
    CHECK_EQ("nothing before deadline", 0, fire_n);
    CHECK_EQ("clock moved", now + 99, clock_get_ns(CLOCK_VIRTUAL));
    clock_virtual_step(201);
    CHECK_EQ("two fired", 2, fire_n);
    CHECK_EQ("first", 1, fire_order[0]);
    CHECK_EQ("second", 0, fire_order[1]);
    CHECK(timer_pending(t2));
    timer_del(t2);
    clock_virtual_step(10000);
    CHECK_EQ("deleted timer did not fire", 0, fired[2]);
}

/* ---- device registry ---- */

static int created_with_base;
static void *fake_create(Machine *m, const DeviceProps *p, GError **errp)
{
    created_with_base = (int)device_props_get_uint(p, "iobase");
    return g_new0(int, 1);
}

static const PropDef fake_props[] = {
    { "iobase", PROP_UINT, "0x501", "port" },
    { "verbose", PROP_BOOL, "off", "noise" },
    { NULL },
};
static const DeviceType fake_type = {
    .name = "fake-dev", .desc = "test", .bus = "isa", .user_creatable = true,
    .props = fake_props, .create = fake_create,
};
DEVICE_TYPE_REGISTER(fake_type)

static void test_device_props_defaults_globals_and_errors(void)
{
    GError *err = NULL;
    CHECK(device_create_from_opts(NULL, "fake-dev", &err));
    CHECK_EQ("default iobase", 0x501, created_with_base);
    CHECK(device_create_from_opts(NULL, "fake-dev,iobase=0xf4,id=d1", &err));
    CHECK_EQ("given iobase", 0xf4, created_with_base);
    CHECK(device_find_by_id("d1"));
    CHECK(!device_create_from_opts(NULL, "fake-dev,iobase=zz", &err));
    CHECK(err && strstr(err->message, "iobase"));
    g_clear_error(&err);
    CHECK(!device_create_from_opts(NULL, "fake-dev,colour=red", &err));
    CHECK(err && strstr(err->message, "colour"));
    g_clear_error(&err);
    CHECK(!device_create_from_opts(NULL, "no-such-dev", &err));
    g_clear_error(&err);
    CHECK(!device_create_from_opts(NULL, "fake-dev,id=d1", &err));     /* duplicate id */
    g_clear_error(&err);
    CHECK(device_set_global("fake-dev.iobase=0x99", &err));
    CHECK(device_create_from_opts(NULL, "fake-dev", &err));
    CHECK_EQ("global iobase", 0x99, created_with_base);
    CHECK(!device_set_global("fake-dev.nope=1", &err));
}

static const TestCase cases[] = {
    TEST_CASE(test_ioport_wide_access_splits_into_bytes),
    TEST_CASE(test_ioport_unassigned_reads_ones),
    TEST_CASE(test_ioport_overlap_is_an_error),
    TEST_CASE(test_ioport_access_straddling_range_end),
    TEST_CASE(test_irq_line_reports_changes_only),
    TEST_CASE(test_irq_split_reaches_both),
    TEST_CASE(test_parse_size_suffixes),
    TEST_CASE(test_kopts_implied_key_flags_and_commas),
    TEST_CASE(test_manual_clock_runs_timers_in_order),
    TEST_CASE(test_device_props_defaults_globals_and_errors),
    { 0 },
};

int main(int argc, char **argv)
{
    return test_main("core", cases, argc, argv);
}

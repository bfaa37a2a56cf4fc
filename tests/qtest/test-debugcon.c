/*
 * isa-debugcon: bytes written to the port reach the chardev; a read returns
 * the readback byte (0xE9 by default, which is how SeaBIOS detects the
 * debug port at 0x402 — docs/pc-platform.md port table).
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct TmpFile {
    char dir[PATH_MAX - 32];
    char path[PATH_MAX];
} TmpFile;

static void tmpfile_make(TmpFile *t)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof(t->dir), "%s/kestrel-debugcon-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK_MSG(mkdtemp(t->dir) != NULL, "mkdtemp %s failed", t->dir);
    snprintf(t->path, sizeof(t->path), "%s/out", t->dir);
}

static void tmpfile_remove(TmpFile *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

/* Whole file as a string (caller frees); "" if missing. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 4097);
    if (f) {
        size_t n = fread(buf, 1, 4096, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static QTest *start_with_file(const TmpFile *t, const char *device_opts)
{
    char args[PATH_MAX + 256];
    snprintf(args, sizeof(args), "-chardev file,id=d,path=%s -device %s", t->path, device_opts);
    return qtest_start(args);
}

static void test_bytes_written_to_0x402_reach_chardev_file(void)
{
    TmpFile t;
    tmpfile_make(&t);
    QTest *qt = start_with_file(&t, "isa-debugcon,iobase=0x402,chardev=d");
    const char *msg = "SeaBIOS says hi\n";
    for (const char *p = msg; *p; p++)
        qtest_outb(qt, 0x402, (uint8_t)*p);
    /* The write is done once the reply came back: no flush at exit needed. */
    char *got = slurp(t.path);
    CHECK_STREQ("file contents while kestrel runs", msg, got);
    free(got);
    qtest_quit(qt);
    tmpfile_remove(&t);
}

static void test_read_of_0x402_returns_0xe9(void)
{
    TmpFile t;
    tmpfile_make(&t);
    QTest *qt = start_with_file(&t, "isa-debugcon,iobase=0x402,chardev=d");
    CHECK_EQ("inb 0x402 (readback)", 0xe9, qtest_inb(qt, 0x402));
    qtest_quit(qt);
    tmpfile_remove(&t);
}

static void test_readback_property_sets_read_value(void)
{
    TmpFile t;
    tmpfile_make(&t);
    QTest *qt = start_with_file(&t, "isa-debugcon,iobase=0x402,chardev=d,readback=0x42");
    CHECK_EQ("inb 0x402 with readback=0x42", 0x42, qtest_inb(qt, 0x402));
    qtest_quit(qt);
    tmpfile_remove(&t);
}

static void test_default_iobase_is_0xe9(void)
{
    TmpFile t;
    tmpfile_make(&t);
    QTest *qt = start_with_file(&t, "isa-debugcon,chardev=d");
    qtest_outb(qt, 0xe9, 'k');
    CHECK_EQ("inb 0xe9", 0xe9, qtest_inb(qt, 0xe9));
    char *got = slurp(t.path);
    CHECK_STREQ("file contents after outb 0xe9", "k", got);
    free(got);
    qtest_quit(qt);
    tmpfile_remove(&t);
}

static void test_word_write_sends_only_low_byte(void)
{
    TmpFile t;
    tmpfile_make(&t);
    QTest *qt = start_with_file(&t, "isa-debugcon,iobase=0x402,chardev=d");
    /* The port is one byte wide; the high byte goes to 0x403, which is not ours. */
    qtest_outw(qt, 0x402, 0x4241);
    char *got = slurp(t.path);
    CHECK_STREQ("file contents after outw 0x4241", "A", got);
    free(got);
    qtest_quit(qt);
    tmpfile_remove(&t);
}

static void test_missing_chardev_is_a_user_error(void)
{
    char err[2048];
    const char *args[] = { "-device", "isa-debugcon,iobase=0x402", NULL };
    CHECK_EQ("kestrel exit status without chardev=", 1,
             qtest_run_expect_exit(args, err, sizeof(err)));
    CHECK_MSG(strstr(err, "isa-debugcon") && strstr(err, "chardev"),
              "error message should name isa-debugcon and chardev, got: %s", err);
    const char *args2[] = { "-device", "isa-debugcon,chardev=nosuch", NULL };
    CHECK_EQ("kestrel exit status with an unknown chardev", 1,
             qtest_run_expect_exit(args2, err, sizeof(err)));
    CHECK_MSG(strstr(err, "nosuch"), "error message should name the chardev id, got: %s", err);
}

static const TestCase cases[] = {
    TEST_CASE(test_bytes_written_to_0x402_reach_chardev_file),
    TEST_CASE(test_read_of_0x402_returns_0xe9),
    TEST_CASE(test_readback_property_sets_read_value),
    TEST_CASE(test_default_iobase_is_0xe9),
    TEST_CASE(test_word_write_sends_only_low_byte),
    TEST_CASE(test_missing_chardev_is_a_user_error),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("debugcon", cases, argc, argv);
}

/*
 * Character backends (chardev/): option and shorthand parsing, the file,
 * null, stdio, pty and socket backends, the mux with Ctrl-A commands, and
 * flow control.  The glib main context is driven by hand: each helper
 * iterates main_loop_context() until what it waits for happens or a
 * deadline passes.
 */
#include "kestrel/chardev.h"
#include "kestrel/machine.h"
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* ---- helpers ---- */

static void stdio_on_pipes(int *to_stdin, int *from_stdout);

typedef struct TestFe {
    GString *rx;
    int can;                    /* what can_receive() says; < 0: plenty */
    int max_chunk;              /* largest receive() */
    int receives;
    int events[8];              /* count per CharEvent */
    GString *event_log;         /* "O" opened, "C" closed, "B" break, "I" mux-in, "X" mux-out */
} TestFe;

static int fe_can_receive(void *opaque)
{
    TestFe *t = opaque;
    return t->can < 0 ? 4096 : t->can;
}

static void fe_receive(void *opaque, const uint8_t *buf, int len)
{
    TestFe *t = opaque;
    if (t->can >= 0 && len > t->can)
        test_fail(__FILE__, __LINE__, "receive() got %d bytes after can_receive() said %d",
                  len, t->can);
    g_string_append_len(t->rx, (const char *)buf, len);
    if (len > t->max_chunk)
        t->max_chunk = len;
    t->receives++;
}

static void fe_event(void *opaque, CharEvent ev)
{
    TestFe *t = opaque;
    static const char names[] = "OCBIX";
    t->events[ev]++;
    g_string_append_c(t->event_log, names[ev]);
}

static const CharFrontendOps fe_ops = {
    .can_receive = fe_can_receive,
    .receive = fe_receive,
    .event = fe_event,
};

static TestFe *fe_new(int can)
{
    TestFe *t = g_new0(TestFe, 1);
    t->rx = g_string_new(NULL);
    t->event_log = g_string_new(NULL);
    t->can = can;
    return t;
}

static CharFrontend *attach(Chardev *chr, TestFe *t)
{
    GError *err = NULL;
    CharFrontend *fe = chardev_attach(chr, &fe_ops, t, &err);
    CHECK_MSG(fe, "attach failed: %s", err ? err->message : "?");
    return fe;
}

static Chardev *make_chr(const char *opts)
{
    GError *err = NULL;
    Chardev *chr = chardev_new_from_opts(opts, &err);
    CHECK_MSG(chr, "-chardev %s: %s", opts, err ? err->message : "no error set");
    return chr;
}

static void iterate_ms(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end) {
        while (g_main_context_iteration(main_loop_context(), FALSE))
            ;
        g_usleep(1000);
    }
}

/* Iterate the main context until cond(arg) or the deadline; returns cond. */
static bool iterate_until(bool (*cond)(void *), void *arg, int seconds)
{
    gint64 end = g_get_monotonic_time() + (gint64)test_timeout(seconds) * 1000000;
    for (;;) {
        while (g_main_context_iteration(main_loop_context(), FALSE))
            ;
        if (cond(arg))
            return true;
        if (g_get_monotonic_time() > end)
            return false;
        g_usleep(1000);
    }
}

typedef struct RxWant {
    TestFe *t;
    size_t len;
} RxWant;

static bool rx_has(void *opaque)
{
    RxWant *w = opaque;
    return w->t->rx->len >= w->len;
}

static void wait_rx(TestFe *t, size_t len)
{
    RxWant w = { t, len };
    CHECK_MSG(iterate_until(rx_has, &w, 5), "expected %zu bytes of input, got %zu (\"%s\")",
              len, t->rx->len, t->rx->str);
}

typedef struct EvWant {
    TestFe *t;
    CharEvent ev;
    int count;
} EvWant;

static bool ev_has(void *opaque)
{
    EvWant *w = opaque;
    return w->t->events[w->ev] >= w->count;
}

static void wait_event(TestFe *t, CharEvent ev, int count)
{
    EvWant w = { t, ev, count };
    CHECK_MSG(iterate_until(ev_has, &w, 5), "expected event %d x%d, event log \"%s\"",
              ev, count, t->event_log->str);
}

static char *tmpdir(void)
{
    char *dir = g_dir_make_tmp("kestrel-chardev-XXXXXX", NULL);
    CHECK(dir);
    return dir;
}

static void write_all(int fd, const void *buf, size_t len)
{
    CHECK_EQ("bytes written by the test", len, write(fd, buf, len));
}

/* Read from fd (non-blocking poll loop, while iterating the context) until 'len' bytes. */
static GString *read_fd_until(int fd, size_t len, int seconds)
{
    GString *s = g_string_new(NULL);
    gint64 end = g_get_monotonic_time() + (gint64)test_timeout(seconds) * 1000000;
    while (s->len < len && g_get_monotonic_time() < end) {
        while (g_main_context_iteration(main_loop_context(), FALSE))
            ;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10) > 0 && (p.revents & POLLIN)) {
            char buf[512];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            g_string_append_len(s, buf, n);
        }
    }
    return s;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    CHECK_MSG(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
              "connect(%s): %s", path, strerror(errno));
    return fd;
}

/* A unix server chardev plus a raw client socket connected to it. */
static Chardev *unix_server_pair(const char *id, const char *extra, int *client, char **pathp)
{
    char *dir = tmpdir();
    char *path = g_strdup_printf("%s/sock", dir);
    char *opts = g_strdup_printf("socket,id=%s,path=%s,server=on,wait=off%s", id, path, extra);
    Chardev *chr = make_chr(opts);
    *client = unix_connect(path);
    g_free(opts);
    g_free(dir);
    if (pathp)
        *pathp = path;
    else
        g_free(path);
    return chr;
}

/* ---- parsing ---- */

static void test_chardev_opts_accepts_qemu_syntax(void)
{
    char *dir = tmpdir();
    GError *err = NULL;

    Chardev *n = make_chr("null,id=n0");
    CHECK(chardev_find("n0") == n);
    CHECK_STREQ("chardev_id", "n0", chardev_id(n));
    CHECK(!chardev_is_stdio(n));

    /* ",," is a literal comma inside a value. */
    char *opts = g_strdup_printf("file,id=f0,path=%s/a,,b,append=off", dir);
    make_chr(opts);
    char *want = g_strdup_printf("%s/a,b", dir);
    CHECK_MSG(g_file_test(want, G_FILE_TEST_EXISTS), "file %s was not created", want);

    /* Legacy boolean spellings: bare "server", negated "nowait". */
    char *sopts = g_strdup_printf("socket,id=s0,path=%s/s0,server,nowait", dir);
    make_chr(sopts);
    char *spath = g_strdup_printf("%s/s0", dir);
    struct stat st;
    CHECK_MSG(stat(spath, &st) == 0 && S_ISSOCK(st.st_mode), "no listening socket at %s", spath);

    /* A TCP server on an ephemeral port, any address, written both ways. */
    make_chr("socket,id=t0,host=127.0.0.1,port=0,server=on,wait=off");
    make_chr("socket,id=t1,port=0,server,nowait,nodelay");
    CHECK(!err);
}

static void test_chardev_shorthand_forms(void)
{
    char *dir = tmpdir();
    GError *err = NULL;

    CHECK(chardev_new_from_shorthand("none", "serial0", &err) == NULL);
    CHECK_MSG(!err, "\"none\" set an error: %s", err ? err->message : "");

    Chardev *n = chardev_new_from_shorthand("null", "serial1", &err);
    CHECK_MSG(n, "null: %s", err ? err->message : "");
    CHECK_STREQ("id", "serial1", chardev_id(n));

    char *spec = g_strdup_printf("file:%s/out,txt", dir);
    Chardev *f = chardev_new_from_shorthand(spec, "serial2", &err);
    CHECK_MSG(f, "%s: %s", spec, err ? err->message : "");
    char *fpath = g_strdup_printf("%s/out,txt", dir);
    CHECK_MSG(g_file_test(fpath, G_FILE_TEST_EXISTS), "file: did not create %s", fpath);

    char *uspec = g_strdup_printf("unix:%s/u,server,nowait", dir);
    CHECK_MSG(chardev_new_from_shorthand(uspec, "serial3", &err), "%s: %s", uspec,
              err ? err->message : "");

    CHECK_MSG(chardev_new_from_shorthand("tcp:127.0.0.1:0,server=on,wait=off", "tcp0", &err),
              "tcp server: %s", err ? err->message : "");
    CHECK_MSG(chardev_new_from_shorthand("tcp::0,server,nowait", "tcp1", &err),
              "tcp::PORT: %s", err ? err->message : "");
    CHECK_MSG(chardev_new_from_shorthand("tcp:[::1]:0,server,nowait", "tcp2", &err) ||
              (err && strstr(err->message, "::1")), "tcp v6: %s", err ? err->message : "");
    g_clear_error(&err);

    /* chardev:ID names an existing backend. */
    CHECK(chardev_new_from_shorthand("chardev:serial1", "ignored", &err) == n);

    /* Without an id the backend still gets a unique one. */
    Chardev *a = chardev_new_from_shorthand("null", NULL, &err);
    Chardev *b = chardev_new_from_shorthand("null", NULL, &err);
    CHECK(a && b && a != b);
    CHECK(strcmp(chardev_id(a), chardev_id(b)) != 0);
}

static void test_chardev_bad_specs_name_the_problem(void)
{
    char *dir = tmpdir();
    char *missing = g_strdup_printf("socket,id=x5,path=%s/nobody-listens", dir);
    char *longpath = g_strdup_printf("socket,id=x8,server,nowait,path=%s/%0200d", dir, 0);
    struct { const char *spec; const char *want; } opt_cases[] = {
        { "bogus,id=x", "bogus" },
        { "null,id=x1,frob=1", "frob" },
        { "file,id=x2", "path" },
        { "socket,id=x3,path=/tmp/q,server=maybe", "maybe" },
        { "null", "id" },
        { "null,id=9bad", "invalid id" },
        { "socket,id=x4", "port" },
        { missing, "cannot connect" },
        { "null,id=x6,server", "server" },
        { "null,id=x7,bareword", "bareword" },
        { longpath, "too long" },
        { "id=x9,null", "backend" },
        { "socket,id=x10,path=/tmp/p,port=4", "not both" },
        { "file,id=x12,path=/nonexistent-dir/f", "/nonexistent-dir/f" },
    };
    for (size_t i = 0; i < ARRAY_LEN(opt_cases); i++) {
        GError *err = NULL;
        Chardev *chr = chardev_new_from_opts(opt_cases[i].spec, &err);
        CHECK_MSG(!chr, "-chardev %s was accepted", opt_cases[i].spec);
        CHECK_MSG(err, "-chardev %s: no error set", opt_cases[i].spec);
        CHECK_MSG(strstr(err->message, opt_cases[i].want),
                  "-chardev %s: message \"%s\" does not mention \"%s\"",
                  opt_cases[i].spec, err->message, opt_cases[i].want);
        CHECK_MSG(!strchr(err->message, '\n'), "message is not one line: %s", err->message);
        g_error_free(err);
    }

    GError *err = NULL;
    make_chr("null,id=dup");
    CHECK(!chardev_new_from_opts("null,id=dup", &err));
    CHECK_MSG(err && strstr(err->message, "duplicate"), "duplicate id: %s",
              err ? err->message : "no error");
    g_clear_error(&err);

    struct { const char *spec; const char *want; } short_cases[] = {
        { "bogus", "bogus" },
        { "tcp:nohostport", "tcp:" },
        { "tcp:host:", "tcp:" },
        { "chardev:nope", "nope" },
        { "mon:chardev:dup", "mux=on" },
        { "file:", "path" },
        { "telnet::4444", "telnet" },
        { "unix:", "unix:" },
        { "tcp:127.0.0.1:0,server,frob=1", "frob" },
    };
    for (size_t i = 0; i < ARRAY_LEN(short_cases); i++) {
        Chardev *chr = chardev_new_from_shorthand(short_cases[i].spec, "bad", &err);
        CHECK_MSG(!chr, "-serial %s was accepted", short_cases[i].spec);
        CHECK_MSG(err, "-serial %s: no error set", short_cases[i].spec);
        CHECK_MSG(strstr(err->message, short_cases[i].want),
                  "-serial %s: message \"%s\" does not mention \"%s\"",
                  short_cases[i].spec, err->message, short_cases[i].want);
        g_clear_error(&err);
    }
}

/* ---- file and null ---- */

static char *slurp(const char *path)
{
    char *buf = NULL;
    CHECK_MSG(g_file_get_contents(path, &buf, NULL, NULL), "cannot read %s", path);
    return buf;
}

static void test_file_backend_writes_land_in_file(void)
{
    char *dir = tmpdir();
    char *path = g_strdup_printf("%s/serial.log", dir);
    g_file_set_contents(path, "old", -1, NULL);

    char *opts = g_strdup_printf("file,id=f,path=%s", path);
    CharFrontend *fe = attach(make_chr(opts), fe_new(-1));
    CHECK_EQ("char_fe_write return", 6, char_fe_write(fe, (const uint8_t *)"hello\n", 6));
    CHECK_EQ("char_fe_write return", 3, char_fe_write(fe, (const uint8_t *)"bye", 3));
    CHECK(char_fe_connected(fe));
    CHECK_STREQ("file contents (truncated, then written)", "hello\nbye", slurp(path));

    char *opts2 = g_strdup_printf("file,id=f2,path=%s,append=on", path);
    CharFrontend *fe2 = attach(make_chr(opts2), fe_new(-1));
    char_fe_write(fe2, (const uint8_t *)"+more", 5);
    CHECK_STREQ("file contents with append=on", "hello\nbye+more", slurp(path));
}

static void test_null_backend_swallows_output(void)
{
    CharFrontend *fe = attach(make_chr("null,id=nul"), fe_new(-1));
    CHECK_EQ("char_fe_write return", 4, char_fe_write(fe, (const uint8_t *)"abcd", 4));
    CHECK(char_fe_connected(fe));
}

static void test_plain_backend_takes_one_frontend(void)
{
    GError *err = NULL;
    Chardev *chr = make_chr("null,id=one");
    attach(chr, fe_new(-1));
    CHECK(!chardev_attach(chr, &fe_ops, fe_new(-1), &err));
    CHECK_MSG(err && strstr(err->message, "mux=on"), "second attach: %s",
              err ? err->message : "no error");
}

/* ---- sockets ---- */

static void test_socket_unix_round_trip(void)
{
    char *dir = tmpdir();
    char *srv = g_strdup_printf("socket,id=srv,path=%s/rt,server=on,wait=off", dir);
    char *cli = g_strdup_printf("socket,id=cli,path=%s/rt", dir);
    TestFe *ts = fe_new(-1), *tc = fe_new(-1);

    CharFrontend *fs = attach(make_chr(srv), ts);
    CHECK(!char_fe_connected(fs));
    CHECK_EQ("write with no client", 0, char_fe_write(fs, (const uint8_t *)"lost", 4));

    CharFrontend *fc = attach(make_chr(cli), tc);
    CHECK_EQ("client OPENED at attach", 1, tc->events[CHR_EVENT_OPENED]);
    wait_event(ts, CHR_EVENT_OPENED, 1);
    CHECK(char_fe_connected(fs) && char_fe_connected(fc));

    CHECK_EQ("client write", 4, char_fe_write(fc, (const uint8_t *)"ping", 4));
    wait_rx(ts, 4);
    CHECK_STREQ("server received", "ping", ts->rx->str);

    CHECK_EQ("server write", 5, char_fe_write(fs, (const uint8_t *)"pong!", 5));
    wait_rx(tc, 5);
    CHECK_STREQ("client received", "pong!", tc->rx->str);
}

static void test_tcp_round_trip(void)
{
    /* Let the kernel pick a free port, then hand it to the server backend. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    CHECK(bind(probe, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CHECK(getsockname(probe, (struct sockaddr *)&sin, &len) == 0);
    int port = ntohs(sin.sin_port);
    close(probe);

    GError *err = NULL;
    char *srv = g_strdup_printf("tcp:127.0.0.1:%d,server=on,wait=off,nodelay", port);
    Chardev *s = chardev_new_from_shorthand(srv, "ts", &err);
    CHECK_MSG(s, "%s: %s", srv, err ? err->message : "");
    TestFe *ts = fe_new(-1), *tc = fe_new(-1);
    CharFrontend *fs = attach(s, ts);
    char *cli = g_strdup_printf("socket,id=tc,host=127.0.0.1,port=%d", port);
    CharFrontend *fc = attach(make_chr(cli), tc);
    wait_event(ts, CHR_EVENT_OPENED, 1);

    char_fe_write(fc, (const uint8_t *)"over tcp", 8);
    wait_rx(ts, 8);
    CHECK_STREQ("server received", "over tcp", ts->rx->str);
    char_fe_write(fs, (const uint8_t *)"back", 4);
    wait_rx(tc, 4);
    CHECK_STREQ("client received", "back", tc->rx->str);
}

static void test_socket_second_client_after_disconnect(void)
{
    int client;
    char *path;
    TestFe *t = fe_new(-1);
    CharFrontend *fe = attach(unix_server_pair("re2", "", &client, &path), t);
    wait_event(t, CHR_EVENT_OPENED, 1);
    close(client);
    wait_event(t, CHR_EVENT_CLOSED, 1);
    CHECK(!char_fe_connected(fe));
    CHECK_EQ("write after the peer left", 0, char_fe_write(fe, (const uint8_t *)"x", 1));

    client = unix_connect(path);
    wait_event(t, CHR_EVENT_OPENED, 2);
    write_all(client, "again", 5);
    wait_rx(t, 5);
    CHECK_STREQ("input from the second client", "again", t->rx->str);
    char_fe_write(fe, (const uint8_t *)"hi", 2);
    GString *got = read_fd_until(client, 2, 5);
    CHECK_STREQ("output to the second client", "hi", got->str);
}

static void test_socket_wait_on_blocks_until_client(void)
{
    char *dir = tmpdir();
    char *path = g_strdup_printf("%s/w", dir);
    char *opts = g_strdup_printf("socket,id=w,path=%s,server=on", path);   /* wait defaults on */
    TestFe *t = fe_new(-1);
    CharFrontend *fe = attach(make_chr(opts), t);
    CHECK(!char_fe_connected(fe));

    /* connect() completes from the listen backlog before anyone accepts. */
    int client = unix_connect(path);
    GError *err = NULL;
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);       /* the "waiting for connection" notice */
    bool ok = chardevs_wait_for_clients(&err);
    dup2(saved, 2);
    CHECK_MSG(ok, "chardevs_wait_for_clients: %s", err ? err->message : "");
    CHECK(char_fe_connected(fe));
    CHECK_EQ("OPENED events", 1, t->events[CHR_EVENT_OPENED]);
    write_all(client, "z", 1);
    wait_rx(t, 1);
}

/* ---- flow control ---- */

static void test_flow_control_holds_input_until_accept(void)
{
    int client;
    TestFe *t = fe_new(0);                  /* device full */
    CharFrontend *fe = attach(unix_server_pair("fc", "", &client, NULL), t);
    wait_event(t, CHR_EVENT_OPENED, 1);

    write_all(client, "abcdefghij", 10);
    iterate_ms(200);
    CHECK_EQ("receive() calls while can_receive() is 0", 0, t->receives);

    /* Room for 3 at a time: every chunk respects it (fe_receive checks), nothing lost. */
    t->can = 3;
    char_fe_accept_input(fe);
    wait_rx(t, 10);
    CHECK_STREQ("input after accept", "abcdefghij", t->rx->str);
    CHECK_EQ("largest chunk", 3, t->max_chunk);
}

static void test_flow_control_stops_reading_the_fd(void)
{
    int client;
    TestFe *t = fe_new(0);
    attach(unix_server_pair("fc2", "", &client, NULL), t);
    wait_event(t, CHR_EVENT_OPENED, 1);

    /*
     * Fill the socket until the kernel refuses more: that only happens if the
     * backend is not draining it behind the device's back.
     */
    fcntl(client, F_SETFL, O_NONBLOCK);
    static char block[65536];
    size_t total = 0;
    for (int i = 0; i < 1000; i++) {
        ssize_t n = write(client, block, sizeof(block));
        iterate_ms(1);
        if (n < 0 && errno == EAGAIN)
            break;
        CHECK(n > 0);
        total += n;
    }
    CHECK_MSG(total < 1000 * sizeof(block), "wrote %zu bytes without back-pressure", total);
    CHECK_EQ("receive() calls", 0, t->receives);
}

static void test_socket_peer_not_reading_drops_after_bounded_wait(void)
{
    int client;
    TestFe *t = fe_new(-1);
    CharFrontend *fe = attach(unix_server_pair("slow", "", &client, NULL), t);
    wait_event(t, CHR_EVENT_OPENED, 1);

    /* The client never reads: the socket fills, then output is dropped, not stalled on. */
    static uint8_t chunk[65536];
    gint64 start = g_get_monotonic_time();
    int64_t written = 0, offered = 0;
    for (int i = 0; i < 64; i++) {
        written += char_fe_write(fe, chunk, sizeof(chunk));
        offered += sizeof(chunk);
    }
    double secs = (g_get_monotonic_time() - start) / 1e6;
    CHECK_MSG(written < offered, "all %" PRId64 " bytes fit in the socket?", offered);
    CHECK_MSG(secs < 10, "64 writes to a stuck peer took %.1f s", secs);
    CHECK(char_fe_connected(fe));
}

typedef struct SlowReader {
    int fd;
    GString *got;
} SlowReader;

static gpointer slow_reader(gpointer opaque)
{
    SlowReader *r = opaque;
    char buf[1024];
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        g_string_append_len(r->got, buf, n);
        g_usleep(3000);             /* ~300 KB/s: the 64 KiB pipe fills up */
    }
    return NULL;
}

static void test_stdio_slow_stdout_loses_nothing(void)
{
    int to_stdin, from_stdout;
    stdio_on_pipes(&to_stdin, &from_stdout);
    /* Even a non-blocking stdout (EAGAIN) must not lose a byte. */
    fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
    CharFrontend *fe = attach(make_chr("stdio,id=con"), fe_new(-1));

    SlowReader r = { .fd = from_stdout, .got = g_string_new(NULL) };
    GThread *th = g_thread_new("reader", slow_reader, &r);
    GString *sent = g_string_new(NULL);
    for (int i = 0; i < 12000; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "line %d\r\n", i);
        CHECK_EQ("char_fe_write return", n, char_fe_write(fe, (const uint8_t *)line, n));
        g_string_append_len(sent, line, n);
    }
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);               /* EOF for the reader */
    g_thread_join(th);
    CHECK_EQ("bytes through the pipe", sent->len, r.got->len);
    CHECK(memcmp(sent->str, r.got->str, sent->len) == 0);
}

static void test_mux_detach_moves_focus(void)
{
    int client;
    TestFe *a = fe_new(-1), *b = fe_new(-1);
    Chardev *chr = unix_server_pair("mxd", ",mux=on", &client, NULL);
    attach(chr, a);
    CharFrontend *fb = attach(chr, b);
    wait_event(b, CHR_EVENT_OPENED, 1);
    char_fe_detach(fb);
    CHECK_EQ("A MUX_IN after B left", 2, a->events[CHR_EVENT_MUX_IN]);
    write_all(client, "q", 1);
    wait_rx(a, 1);
    CHECK_EQ("B input", 0, b->rx->len);

    /* A plain backend is free again after its frontend detaches. */
    Chardev *n = make_chr("null,id=again");
    char_fe_detach(attach(n, fe_new(-1)));
    attach(n, fe_new(-1));
}

/* ---- mux and escapes ---- */

static void test_mux_focus_switching(void)
{
    int client;
    TestFe *a = fe_new(-1), *b = fe_new(-1);
    Chardev *chr = unix_server_pair("mx", ",mux=on", &client, NULL);
    CharFrontend *fa = attach(chr, a);
    CharFrontend *fb = attach(chr, b);
    wait_event(b, CHR_EVENT_OPENED, 1);

    /* The newest frontend has the focus. */
    CHECK_STREQ("A's events", "IXO", a->event_log->str);
    CHECK_STREQ("B's events", "IO", b->event_log->str);
    write_all(client, "1", 1);
    wait_rx(b, 1);

    /* Ctrl-A c moves input to A; Ctrl-A Ctrl-A sends one literal Ctrl-A. */
    write_all(client, "\001c2\001\001", 5);
    wait_rx(a, 2);
    CHECK_STREQ("A got", "2\001", a->rx->str);
    CHECK_STREQ("B got", "1", b->rx->str);
    CHECK_EQ("B MUX_OUT", 1, b->events[CHR_EVENT_MUX_OUT]);
    CHECK_EQ("A MUX_IN", 2, a->events[CHR_EVENT_MUX_IN]);

    /* Ctrl-A b is a break for the focused frontend only. */
    write_all(client, "\001b", 2);
    wait_event(a, CHR_EVENT_BREAK, 1);
    CHECK_EQ("B breaks", 0, b->events[CHR_EVENT_BREAK]);

    /* And around again. */
    write_all(client, "\001c3", 3);
    wait_rx(b, 2);
    CHECK_STREQ("B got", "13", b->rx->str);

    /* Both frontends write to the one backend. */
    char_fe_write(fa, (const uint8_t *)"A", 1);
    char_fe_write(fb, (const uint8_t *)"B", 1);
    GString *out = read_fd_until(client, 2, 5);
    CHECK_STREQ("output", "AB", out->str);
}

static void test_mux_ctrl_a_h_prints_help(void)
{
    int client;
    Chardev *chr = unix_server_pair("hlp", ",mux=on", &client, NULL);
    TestFe *t = fe_new(-1);
    attach(chr, t);
    wait_event(t, CHR_EVENT_OPENED, 1);
    write_all(client, "\001h", 2);
    GString *out = read_fd_until(client, 60, 5);
    CHECK_MSG(strstr(out->str, "C-a x") && strstr(out->str, "C-a c"), "help text: \"%s\"",
              out->str);
    CHECK_EQ("input delivered", 0, t->rx->len);
}

static void test_plain_socket_passes_ctrl_a_through(void)
{
    int client;
    TestFe *t = fe_new(-1);
    attach(unix_server_pair("raw", "", &client, NULL), t);
    wait_event(t, CHR_EVENT_OPENED, 1);
    write_all(client, "\001c\001x", 4);
    wait_rx(t, 4);
    CHECK(memcmp(t->rx->str, "\001c\001x", 4) == 0);
}

static void alarm_fail(int sig)
{
    static const char msg[] = "Ctrl-A x did not request an exit\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

static void test_ctrl_a_x_requests_exit(void)
{
    int client;
    TestFe *t = fe_new(-1);
    attach(unix_server_pair("ex", ",mux=on", &client, NULL), t);
    wait_event(t, CHR_EVENT_OPENED, 1);
    write_all(client, "\001x", 2);
    GString *out = read_fd_until(client, 10, 5);
    CHECK_MSG(strstr(out->str, "terminated"), "exit message: \"%s\"", out->str);

    /* With an exit pending the main loop returns at once with status 0. */
    MachineConfig cfg = { 0 };
    Machine m = { .cfg = &cfg };
    signal(SIGALRM, alarm_fail);
    alarm(test_timeout(10));
    CHECK_EQ("main_loop_run status", 0, main_loop_run(&m));
    alarm(0);
}

/* ---- stdio (on pipes inside the test's own process) ---- */

static void stdio_on_pipes(int *to_stdin, int *from_stdout)
{
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0);
    CHECK(dup2(in[0], 0) == 0 && dup2(out[1], 1) == 1);
    close(in[0]);
    close(out[1]);
    *to_stdin = in[1];
    *from_stdout = out[0];
}

static void test_stdio_escapes_and_output(void)
{
    int to_stdin, from_stdout;
    stdio_on_pipes(&to_stdin, &from_stdout);
    Chardev *chr = make_chr("stdio,id=con");
    CHECK(chardev_is_stdio(chr));
    TestFe *t = fe_new(-1);
    CharFrontend *fe = attach(chr, t);
    CHECK_EQ("OPENED at attach", 1, t->events[CHR_EVENT_OPENED]);

    write_all(to_stdin, "ab\001\001\001h", 6);
    wait_rx(t, 3);
    CHECK(memcmp(t->rx->str, "ab\001", 3) == 0);
    GString *help = read_fd_until(from_stdout, 60, 5);
    CHECK_MSG(strstr(help->str, "C-a x"), "help on stdout: \"%s\"", help->str);

    CHECK_EQ("write", 7, char_fe_write(fe, (const uint8_t *)"console", 7));
    GString *out = read_fd_until(from_stdout, 7, 5);
    CHECK_STREQ("stdout", "console", out->str);

    /* EOF on stdin stops input without disturbing output. */
    close(to_stdin);
    iterate_ms(50);
    CHECK_EQ("write after stdin EOF", 2, char_fe_write(fe, (const uint8_t *)"ok", 2));

    GError *err = NULL;
    CHECK(!chardev_new_from_opts("stdio,id=con2", &err));
    CHECK_MSG(err && strstr(err->message, "con"), "second stdio: %s",
              err ? err->message : "no error");
}

static void test_mon_stdio_is_a_mux(void)
{
    int to_stdin, from_stdout;
    stdio_on_pipes(&to_stdin, &from_stdout);
    GError *err = NULL;
    Chardev *chr = chardev_new_from_shorthand("mon:stdio", "serial0", &err);
    CHECK_MSG(chr, "mon:stdio: %s", err ? err->message : "");
    CHECK(chardev_is_stdio(chr));
    TestFe *mon = fe_new(-1), *ser = fe_new(-1);
    attach(chr, mon);
    attach(chr, ser);
    write_all(to_stdin, "s\001cm", 4);
    wait_rx(mon, 1);
    CHECK_STREQ("monitor got", "m", mon->rx->str);
    CHECK_STREQ("serial got", "s", ser->rx->str);
    CHECK(chardev_new_from_shorthand("chardev:serial0", NULL, &err) == chr);
}

/* ---- pty ---- */

static void test_pty_announces_path_and_carries_data(void)
{
    int errpipe[2];
    CHECK(pipe(errpipe) == 0);
    int saved = dup(2);
    dup2(errpipe[1], 2);
    GError *err = NULL;
    Chardev *chr = chardev_new_from_opts("pty,id=pt", &err);
    dup2(saved, 2);
    close(errpipe[1]);
    if (!chr && err && strstr(err->message, "cannot create a pty"))
        test_skip("no ptys here: %s", err->message);
    CHECK_MSG(chr, "pty: %s", err ? err->message : "");

    char msg[256] = { 0 };
    CHECK(read(errpipe[0], msg, sizeof(msg) - 1) > 0);
    char path[200];
    CHECK_MSG(sscanf(msg, "char device redirected to %199s (label pt)", path) == 1 &&
              strstr(msg, "(label pt)\n"), "announcement: \"%s\"", msg);

    TestFe *t = fe_new(-1);
    CharFrontend *fe = attach(chr, t);
    CHECK_MSG(!char_fe_connected(fe), "connected before anyone opened %s", path);
    CHECK_EQ("write with nobody on the pty", 0, char_fe_write(fe, (const uint8_t *)"lost", 4));

    int slave = open(path, O_RDWR | O_NOCTTY);
    CHECK_MSG(slave >= 0, "open %s: %s", path, strerror(errno));
    wait_event(t, CHR_EVENT_OPENED, 1);
    CHECK_EQ("write", 5, char_fe_write(fe, (const uint8_t *)"out\r\n", 5));
    GString *got = read_fd_until(slave, 5, 5);
    CHECK_STREQ("slave read (raw: no translation, nothing from before)", "out\r\n", got->str);

    write_all(slave, "in\n", 3);
    wait_rx(t, 3);
    CHECK_STREQ("received", "in\n", t->rx->str);

    close(slave);
    wait_event(t, CHR_EVENT_CLOSED, 1);
    CHECK(!char_fe_connected(fe));
}

/* ---- cleanup ---- */

static void test_cleanup_is_idempotent_and_removes_sockets(void)
{
    int client;
    char *path;
    unix_server_pair("cl", "", &client, &path);
    CHECK(g_file_test(path, G_FILE_TEST_EXISTS));
    chardevs_cleanup();
    chardevs_cleanup();
    CHECK_MSG(!g_file_test(path, G_FILE_TEST_EXISTS), "%s still exists after cleanup", path);
}

static const TestCase cases[] = {
    TEST_CASE(test_chardev_opts_accepts_qemu_syntax),
    TEST_CASE(test_chardev_shorthand_forms),
    TEST_CASE(test_chardev_bad_specs_name_the_problem),
    TEST_CASE(test_file_backend_writes_land_in_file),
    TEST_CASE(test_null_backend_swallows_output),
    TEST_CASE(test_plain_backend_takes_one_frontend),
    TEST_CASE(test_socket_unix_round_trip),
    TEST_CASE(test_tcp_round_trip),
    TEST_CASE(test_socket_second_client_after_disconnect),
    TEST_CASE(test_socket_wait_on_blocks_until_client),
    TEST_CASE(test_flow_control_holds_input_until_accept),
    TEST_CASE(test_flow_control_stops_reading_the_fd),
    TEST_CASE(test_socket_peer_not_reading_drops_after_bounded_wait),
    TEST_CASE(test_mux_focus_switching),
    TEST_CASE(test_mux_detach_moves_focus),
    TEST_CASE(test_mux_ctrl_a_h_prints_help),
    TEST_CASE(test_plain_socket_passes_ctrl_a_through),
    TEST_CASE(test_ctrl_a_x_requests_exit),
    TEST_CASE(test_stdio_escapes_and_output),
    TEST_CASE(test_mon_stdio_is_a_mux),
    TEST_CASE(test_stdio_slow_stdout_loses_nothing),
    TEST_CASE(test_pty_announces_path_and_carries_data),
    TEST_CASE(test_cleanup_is_idempotent_and_removes_sockets),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("chardev", cases, argc, argv);
}

/*
 * Client side of the qtest protocol (tests/libqtest.h).
 *
 * libqtest listens on a unix socket in a fresh temporary directory and
 * starts kestrel with "-accel qtest -qtest unix:PATH", which connects back.
 * Commands are lines; each gets exactly one reply line ("OK ..." or
 * "FAIL reason").  Between and before replies kestrel may send asynchronous
 * "IRQ raise N" / "IRQ lower N" lines, which are consumed here and recorded.
 *
 * Failure policy: a FAIL reply, a missing reply or a dead kestrel ends the
 * current test case through test_fail(), naming the command.  One exception:
 * a port or memory *write* after which kestrel exits normally (isa-debug-exit,
 * reset under -no-reboot, ACPI poweroff) is not a failure; the exit status
 * is kept for qtest_wait_exit().  A kestrel killed by a signal always fails.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QTEST_MAX_GSI            256
#define QTEST_CONNECT_TIMEOUT_S  30
#define QTEST_REPLY_TIMEOUT_S    60
#define QTEST_QUIT_GRACE_MS      2000
/* Bytes per read/write command: keeps every line far below kestrel's cap. */
#define QTEST_MEM_CHUNK          4096

struct QTest {
    pid_t pid;
    int fd;                         /* connected socket, -1 once closed */
    char dir[512];                  /* temp dir holding the socket */
    char sock_path[PATH_MAX];
    char *rbuf;                     /* received bytes not yet consumed */
    size_t rlen, rcap;
    bool exited;                    /* pid reaped */
    int wait_status;                /* raw waitpid status once exited */
    bool irq_intercepted;
    bool irq_level[QTEST_MAX_GSI];
    QTest *next;                    /* all live sessions, for atexit cleanup */
};

static QTest *qtest_live;
static bool qtest_atexit_done;

static int64_t qtest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- process bookkeeping ------------------------------------------------ */

/* Reap kestrel if it has exited; waits up to wait_ms.  True if it is gone. */
static bool qtest_reap(QTest *qt, int wait_ms)
{
    if (qt->exited)
        return true;
    int64_t deadline = qtest_now_ms() + wait_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(qt->pid, &st, WNOHANG);
        if (r == qt->pid) {
            qt->exited = true;
            qt->wait_status = st;
            return true;
        }
        if (r < 0 && errno != EINTR) {
            /* Not our child any more (should not happen): treat as gone. */
            qt->exited = true;
            qt->wait_status = -1;
            return true;
        }
        if (qtest_now_ms() >= deadline)
            return false;
        usleep(5000);
    }
}

static void qtest_describe_exit(QTest *qt, char *buf, size_t len)
{
    int st = qt->wait_status;
    if (!qt->exited)
        snprintf(buf, len, "kestrel (pid %d) still running", (int)qt->pid);
    else if (st == -1)
        snprintf(buf, len, "kestrel (pid %d) vanished", (int)qt->pid);
    else if (WIFEXITED(st))
        snprintf(buf, len, "kestrel exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "kestrel killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "kestrel stopped (status 0x%x)", st);
}

static void qtest_remove_files(QTest *qt)
{
    if (qt->sock_path[0]) {
        unlink(qt->sock_path);
        qt->sock_path[0] = '\0';
    }
    if (qt->dir[0]) {
        rmdir(qt->dir);
        qt->dir[0] = '\0';
    }
}

static void qtest_unlink_live(QTest *qt)
{
    for (QTest **pp = &qtest_live; *pp; pp = &(*pp)->next) {
        if (*pp == qt) {
            *pp = qt->next;
            return;
        }
    }
}

/* Runs when a test case ends through exit() (test_fail/test_skip/return). */
static void qtest_atexit(void)
{
    for (QTest *qt = qtest_live; qt; qt = qt->next) {
        if (qt->fd >= 0)
            close(qt->fd);
        qt->fd = -1;
        if (!qt->exited) {
            kill(qt->pid, SIGKILL);
            qtest_reap(qt, 2000);
        }
        qtest_remove_files(qt);
    }
}

/* ---- start ------------------------------------------------------------- */

/* Split extra arguments on whitespace into a NULL-terminated vector. */
static char **qtest_split_args(const char *extra, int *count)
{
    char *copy = strdup(extra ? extra : "");
    int cap = 8, n = 0;
    char **v = malloc(cap * sizeof(*v));
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (n + 1 >= cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof(*v));
        }
        v[n++] = strdup(tok);
    }
    v[n] = NULL;
    free(copy);
    *count = n;
    return v;
}

QTest *qtest_start(const char *extra_args)
{
    const char *bin = test_kestrel_path();
    if (access(bin, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "kestrel binary '%s' is not executable (%s); "
                  "build it or set $KESTREL", bin, strerror(errno));

    QTest *qt = calloc(1, sizeof(*qt));
    qt->fd = -1;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    int dl = snprintf(qt->dir, sizeof(qt->dir), "%s/kestrel-qtest-XXXXXX", tmp);
    if (dl < 0 || (size_t)dl >= sizeof(qt->dir))
        test_fail(__FILE__, __LINE__, "$TMPDIR too long: %s", tmp);
    if (!mkdtemp(qt->dir))
        test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", qt->dir, strerror(errno));
    snprintf(qt->sock_path, sizeof(qt->sock_path), "%s/qtest.sock", qt->dir);

    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(qt->sock_path) >= sizeof(sa.sun_path)) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s", qt->sock_path);
        qtest_remove_files(qt);
        test_fail(__FILE__, __LINE__, "socket path too long: %s (shorten $TMPDIR)", path);
    }
    strcpy(sa.sun_path, qt->sock_path);

    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
        int e = errno;
        qtest_remove_files(qt);
        test_fail(__FILE__, __LINE__, "listening socket %s: %s", sa.sun_path, strerror(e));
    }

    int nextra;
    char **extra = qtest_split_args(extra_args, &nextra);
    char qtest_spec[PATH_MAX + 8];
    snprintf(qtest_spec, sizeof(qtest_spec), "unix:%s", qt->sock_path);
    const char *head[] = { bin, "-accel", "qtest", "-qtest", qtest_spec,
                           "-display", "none", "-nodefaults" };
    const int nhead = (int)(sizeof(head) / sizeof(head[0]));
    int argc = nhead + nextra;
    char **argv = calloc(argc + 1, sizeof(*argv));
    for (int i = 0; i < nhead; i++)
        argv[i] = (char *)head[i];
    for (int i = 0; i < nextra; i++)
        argv[nhead + i] = extra[i];

    /* The command line, for failure messages. */
    char cmdline[1024] = "";
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof(cmdline) - l, "%s%s", i ? " " : "", argv[i]);
    }

    if (!qtest_atexit_done) {
        atexit(qtest_atexit);
        qtest_atexit_done = true;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(lfd);
        qtest_remove_files(qt);
        test_fail(__FILE__, __LINE__, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* Never outlive the test: a crashed test must not leak an emulator. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        signal(SIGPIPE, SIG_DFL);
        execv(bin, argv);
        fprintf(stderr, "libqtest: exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    qt->pid = pid;
    qt->next = qtest_live;
    qtest_live = qt;
    for (int i = 0; i < nextra; i++)
        free(extra[i]);
    free(extra);
    free(argv);

    int timeout_ms = test_timeout(QTEST_CONNECT_TIMEOUT_S) * 1000;
    int64_t deadline = qtest_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        int r = poll(&p, 1, 50);
        if (r > 0) {
            qt->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (qt->fd >= 0)
                break;
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
                int e = errno;
                close(lfd);
                test_fail(__FILE__, __LINE__, "accept: %s", strerror(e));
            }
        }
        if (qtest_reap(qt, 0)) {
            char why[128];
            qtest_describe_exit(qt, why, sizeof(why));
            close(lfd);
            test_fail(__FILE__, __LINE__, "%s before connecting to the qtest socket; command: %s",
                      why, cmdline);
        }
        if (qtest_now_ms() >= deadline) {
            close(lfd);
            test_fail(__FILE__, __LINE__, "kestrel did not connect to %s within %d s; command: %s",
                      qt->sock_path, timeout_ms / 1000, cmdline);
        }
    }
    close(lfd);
    /* Connected: the socket file is no longer needed. */
    qtest_remove_files(qt);
    return qt;
}

/* ---- line I/O ---------------------------------------------------------- */

/* Record one asynchronous line; returns true if it was an IRQ line. */
static bool qtest_handle_async(QTest *qt, const char *line)
{
    int level;
    const char *rest;
    if (strncmp(line, "IRQ raise ", 10) == 0) {
        level = 1;
        rest = line + 10;
    } else if (strncmp(line, "IRQ lower ", 10) == 0) {
        level = 0;
        rest = line + 10;
    } else {
        return false;
    }
    char *end;
    long n = strtol(rest, &end, 0);
    if (end != rest && n >= 0 && n < QTEST_MAX_GSI)
        qt->irq_level[n] = level;
    return true;
}

/* Take one complete line out of rbuf (malloc'ed, no newline), or NULL. */
static char *qtest_take_line(QTest *qt)
{
    char *nl = qt->rbuf ? memchr(qt->rbuf, '\n', qt->rlen) : NULL;
    if (!nl)
        return NULL;
    size_t n = nl - qt->rbuf;
    char *line = malloc(n + 1);
    memcpy(line, qt->rbuf, n);
    line[n] = '\0';
    if (n && line[n - 1] == '\r')
        line[n - 1] = '\0';
    memmove(qt->rbuf, nl + 1, qt->rlen - n - 1);
    qt->rlen -= n + 1;
    return line;
}

/* Read what is available within timeout_ms.  1 data, 0 timeout, -1 EOF/error. */
static int qtest_fill(QTest *qt, int timeout_ms)
{
    if (qt->fd < 0)
        return -1;
    struct pollfd p = { .fd = qt->fd, .events = POLLIN };
    int r = poll(&p, 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (r == 0)
        return 0;
    if (qt->rcap - qt->rlen < 4096) {
        qt->rcap = qt->rcap ? qt->rcap * 2 : 16384;
        qt->rbuf = realloc(qt->rbuf, qt->rcap);
    }
    ssize_t n = read(qt->fd, qt->rbuf + qt->rlen, qt->rcap - qt->rlen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    qt->rlen += n;
    return 1;
}

/* Consume IRQ lines already received, without blocking. */
static void qtest_poll_async(QTest *qt)
{
    while (qtest_fill(qt, 0) > 0)
        ;
    char *line;
    while ((line = qtest_take_line(qt))) {
        if (!qtest_handle_async(qt, line))
            fprintf(stderr, "libqtest: unexpected line from kestrel: %s\n", line);
        free(line);
    }
}

static bool qtest_send(QTest *qt, const char *line)
{
    size_t len = strlen(line), off = 0;
    while (off < len + 1) {
        const char *p = off < len ? line + off : "\n";
        size_t n = off < len ? len - off : 1;
        ssize_t w = send(qt->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

/* The command as shown in messages: long write payloads are shortened. */
static void qtest_show(const char *line, char *buf, size_t len)
{
    if (strlen(line) < 120)
        snprintf(buf, len, "%s", line);
    else
        snprintf(buf, len, "%.100s...", line);
}

char *qtest_raw(QTest *qt, const char *line)
{
    if (qt->fd < 0)
        return NULL;
    qtest_poll_async(qt);
    if (!qtest_send(qt, line))
        return NULL;
    int timeout_ms = test_timeout(QTEST_REPLY_TIMEOUT_S) * 1000;
    int64_t deadline = qtest_now_ms() + timeout_ms;
    for (;;) {
        char *reply;
        while ((reply = qtest_take_line(qt))) {
            if (!qtest_handle_async(qt, reply))
                return reply;
            free(reply);
        }
        int64_t left = deadline - qtest_now_ms();
        if (left <= 0) {
            char shown[160];
            qtest_show(line, shown, sizeof(shown));
            test_fail(__FILE__, __LINE__, "no reply to '%s' within %d s", shown,
                      timeout_ms / 1000);
        }
        int r = qtest_fill(qt, left > 200 ? 200 : (int)left);
        if (r < 0) {
            close(qt->fd);
            qt->fd = -1;
            return NULL;
        }
    }
}

/*
 * Send a command that must succeed; returns the text after "OK" (caller
 * frees), or NULL if kestrel exited normally after a write (allow_exit).
 */
static char *qtest_cmd(QTest *qt, bool allow_exit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static char *qtest_cmd(QTest *qt, bool allow_exit, const char *fmt, ...)
{
    char *line;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);

    char shown[160];
    qtest_show(line, shown, sizeof(shown));
    char *reply = qtest_raw(qt, line);
    free(line);
    if (!reply) {
        qtest_reap(qt, 5000);
        if (allow_exit && qt->exited && qt->wait_status != -1 && WIFEXITED(qt->wait_status))
            return NULL;
        char why[128];
        qtest_describe_exit(qt, why, sizeof(why));
        test_fail(__FILE__, __LINE__, "'%s': connection lost (%s)", shown, why);
    }
    if (strncmp(reply, "OK", 2) != 0 || (reply[2] != '\0' && reply[2] != ' '))
        test_fail(__FILE__, __LINE__, "'%s': kestrel replied '%s'", shown, reply);
    char *val = strdup(reply[2] ? reply + 3 : "");
    free(reply);
    return val;
}

static uint64_t qtest_cmd_value(QTest *qt, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static uint64_t qtest_cmd_value(QTest *qt, const char *what, const char *fmt, ...)
{
    char *line;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *val = qtest_cmd(qt, false, "%s", line);
    char *end;
    errno = 0;
    uint64_t v = strtoull(val, &end, 0);
    if (end == val || *end || errno)
        test_fail(__FILE__, __LINE__, "'%s': expected %s, got 'OK %s'", line, what, val);
    free(val);
    free(line);
    return v;
}

static void qtest_cmd_write(QTest *qt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void qtest_cmd_write(QTest *qt, const char *fmt, ...)
{
    char *line;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(qtest_cmd(qt, true, "%s", line));
    free(line);
}

/* ---- end of session ---------------------------------------------------- */

void qtest_quit(QTest *qt)
{
    if (!qt)
        return;
    if (qt->fd >= 0) {
        /* Closing the socket asks kestrel to exit(0); give it a moment. */
        close(qt->fd);
        qt->fd = -1;
        qtest_reap(qt, QTEST_QUIT_GRACE_MS);
    }
    if (!qt->exited) {
        kill(qt->pid, SIGKILL);
        qtest_reap(qt, 10000);
    }
    qtest_remove_files(qt);
    qtest_unlink_live(qt);
    free(qt->rbuf);
    free(qt);
}

int qtest_wait_exit(QTest *qt, int timeout_seconds)
{
    /* Keep the socket open: closing it would itself make kestrel exit(0). */
    int64_t deadline = qtest_now_ms() + (int64_t)test_timeout(timeout_seconds) * 1000;
    while (!qtest_reap(qt, 0)) {
        if (qtest_now_ms() >= deadline)
            return -1;
        /* Drain IRQ lines so kestrel never blocks on a full socket. */
        if (qt->fd >= 0 && qtest_fill(qt, 20) < 0) {
            close(qt->fd);
            qt->fd = -1;
        } else if (qt->fd < 0) {
            usleep(20000);
        }
        char *line;
        while ((line = qtest_take_line(qt))) {
            qtest_handle_async(qt, line);
            free(line);
        }
    }
    if (qt->wait_status != -1 && WIFEXITED(qt->wait_status))
        return WEXITSTATUS(qt->wait_status);
    return -1;
}

/* ---- typed commands ---------------------------------------------------- */

void qtest_outb(QTest *qt, uint16_t port, uint8_t v)
{
    qtest_cmd_write(qt, "outb 0x%x 0x%x", port, v);
}

void qtest_outw(QTest *qt, uint16_t port, uint16_t v)
{
    qtest_cmd_write(qt, "outw 0x%x 0x%x", port, v);
}

void qtest_outl(QTest *qt, uint16_t port, uint32_t v)
{
    qtest_cmd_write(qt, "outl 0x%x 0x%x", port, v);
}

uint8_t qtest_inb(QTest *qt, uint16_t port)
{
    return (uint8_t)qtest_cmd_value(qt, "a byte", "inb 0x%x", port);
}

uint16_t qtest_inw(QTest *qt, uint16_t port)
{
    return (uint16_t)qtest_cmd_value(qt, "a word", "inw 0x%x", port);
}

uint32_t qtest_inl(QTest *qt, uint16_t port)
{
    return (uint32_t)qtest_cmd_value(qt, "a dword", "inl 0x%x", port);
}

static void qtest_pci_cfg_select(QTest *qt, int devfn, int reg)
{
    qtest_outl(qt, 0xcf8, 0x80000000u | (uint32_t)(devfn & 0xff) << 8 | (uint32_t)(reg & 0xfc));
}

uint8_t qtest_pci_cfg_readb(QTest *qt, int devfn, int reg)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    return qtest_inb(qt, (uint16_t)(0xcfc + (reg & 3)));
}

uint16_t qtest_pci_cfg_readw(QTest *qt, int devfn, int reg)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    return qtest_inw(qt, (uint16_t)(0xcfc + (reg & 2)));
}

uint32_t qtest_pci_cfg_readl(QTest *qt, int devfn, int reg)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    return qtest_inl(qt, 0xcfc);
}

void qtest_pci_cfg_writeb(QTest *qt, int devfn, int reg, uint8_t v)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    qtest_outb(qt, (uint16_t)(0xcfc + (reg & 3)), v);
}

void qtest_pci_cfg_writew(QTest *qt, int devfn, int reg, uint16_t v)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    qtest_outw(qt, (uint16_t)(0xcfc + (reg & 2)), v);
}

void qtest_pci_cfg_writel(QTest *qt, int devfn, int reg, uint32_t v)
{
    qtest_pci_cfg_select(qt, devfn, reg);
    qtest_outl(qt, 0xcfc, v);
}

void qtest_writeb(QTest *qt, uint64_t addr, uint8_t v)
{
    qtest_cmd_write(qt, "writeb 0x%" PRIx64 " 0x%x", addr, v);
}

void qtest_writew(QTest *qt, uint64_t addr, uint16_t v)
{
    qtest_cmd_write(qt, "writew 0x%" PRIx64 " 0x%x", addr, v);
}

void qtest_writel(QTest *qt, uint64_t addr, uint32_t v)
{
    qtest_cmd_write(qt, "writel 0x%" PRIx64 " 0x%x", addr, v);
}

void qtest_writeq(QTest *qt, uint64_t addr, uint64_t v)
{
    qtest_cmd_write(qt, "writeq 0x%" PRIx64 " 0x%" PRIx64, addr, v);
}

uint8_t qtest_readb(QTest *qt, uint64_t addr)
{
    return (uint8_t)qtest_cmd_value(qt, "a byte", "readb 0x%" PRIx64, addr);
}

uint16_t qtest_readw(QTest *qt, uint64_t addr)
{
    return (uint16_t)qtest_cmd_value(qt, "a word", "readw 0x%" PRIx64, addr);
}

uint32_t qtest_readl(QTest *qt, uint64_t addr)
{
    return (uint32_t)qtest_cmd_value(qt, "a dword", "readl 0x%" PRIx64, addr);
}

uint64_t qtest_readq(QTest *qt, uint64_t addr)
{
    return qtest_cmd_value(qt, "a qword", "readq 0x%" PRIx64, addr);
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

void qtest_memread(QTest *qt, uint64_t addr, void *buf, size_t len)
{
    uint8_t *out = buf;
    while (len) {
        size_t n = len < QTEST_MEM_CHUNK ? len : QTEST_MEM_CHUNK;
        char *val = qtest_cmd(qt, false, "read 0x%" PRIx64 " 0x%zx", addr, n);
        const char *h = val;
        if (h[0] == '0' && (h[1] == 'x' || h[1] == 'X'))
            h += 2;
        if (strlen(h) != 2 * n)
            test_fail(__FILE__, __LINE__, "'read 0x%" PRIx64 " 0x%zx': expected %zu hex digits, "
                      "got '%.60s'", addr, n, 2 * n, val);
        for (size_t i = 0; i < n; i++) {
            int hi = qtest_hexval(h[2 * i]), lo = qtest_hexval(h[2 * i + 1]);
            if (hi < 0 || lo < 0)
                test_fail(__FILE__, __LINE__, "'read 0x%" PRIx64 "': bad hex in reply '%.60s'",
                          addr, val);
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        free(val);
        out += n;
        addr += n;
        len -= n;
    }
}

void qtest_memwrite(QTest *qt, uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *in = buf;
    static const char hex[] = "0123456789abcdef";
    char *h = malloc(2 * QTEST_MEM_CHUNK + 1);
    while (len) {
        size_t n = len < QTEST_MEM_CHUNK ? len : QTEST_MEM_CHUNK;
        for (size_t i = 0; i < n; i++) {
            h[2 * i] = hex[in[i] >> 4];
            h[2 * i + 1] = hex[in[i] & 15];
        }
        h[2 * n] = '\0';
        qtest_cmd_write(qt, "write 0x%" PRIx64 " 0x%zx 0x%s", addr, n, h);
        in += n;
        addr += n;
        len -= n;
    }
    free(h);
}

int64_t qtest_clock_step(QTest *qt, int64_t ns)
{
    if (ns < 0)
        return (int64_t)qtest_cmd_value(qt, "the clock in ns", "clock_step");
    return (int64_t)qtest_cmd_value(qt, "the clock in ns", "clock_step %" PRId64, ns);
}

int64_t qtest_clock_set(QTest *qt, int64_t ns)
{
    return (int64_t)qtest_cmd_value(qt, "the clock in ns", "clock_set %" PRId64, ns);
}

void qtest_irq_intercept(QTest *qt)
{
    free(qtest_cmd(qt, false, "irq_intercept_in ioapic"));
    qt->irq_intercepted = true;
}

bool qtest_get_irq(QTest *qt, int gsi)
{
    if (!qt->irq_intercepted)
        test_fail(__FILE__, __LINE__, "qtest_get_irq(%d) before qtest_irq_intercept()", gsi);
    if (gsi < 0 || gsi >= QTEST_MAX_GSI)
        test_fail(__FILE__, __LINE__, "qtest_get_irq: GSI %d out of range", gsi);
    qtest_poll_async(qt);
    return qt->irq_level[gsi];
}

void qtest_system_reset(QTest *qt)
{
    qtest_cmd_write(qt, "system_reset");
}

/*
 * Run kestrel (qtest accelerator, an endpoint nobody listens on) with args,
 * expecting it to refuse them: returns the exit status (-1 on signal or
 * timeout) and what it printed on stderr in errbuf.
 */
int qtest_run_expect_exit(const char *const *args, char *errbuf, size_t errlen)
{
    const char *argv[16] = { test_kestrel_path(), "-accel", "qtest", "-qtest",
                             "unix:/nonexistent/kestrel-test.sock", "-display", "none",
                             "-nodefaults" };
    int n = 8;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    size_t got = 0;
    errbuf[0] = '\0';
    int status = -1;
    for (int ms = 0; ms < test_timeout(30) * 1000; ms += 10) {
        ssize_t r;
        while (got + 1 < errlen && (r = read(pfd[0], errbuf + got, errlen - 1 - got)) > 0)
            got += r;
        errbuf[got] = '\0';
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            while (got + 1 < errlen && (r = read(pfd[0], errbuf + got, errlen - 1 - got)) > 0)
                got += r;
            errbuf[got] = '\0';
            status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            close(pfd[0]);
            return status;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pfd[0]);
    return -1;
}

void qtest_expect_user_error(const char *const *args, const char *what)
{
    char err[2048];
    int status = qtest_run_expect_exit(args, err, sizeof(err));
    CHECK_MSG(status == 1, "expected exit status 1 for %s, got %d (stderr: %s)", what, status, err);
    CHECK_MSG(strstr(err, what) != NULL, "stderr does not mention '%s': %s", what, err);
}

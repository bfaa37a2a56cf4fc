/*
 * Test framework behind tests/testlib.h.
 *
 * Each case runs in a forked child that is the leader of its own process
 * group, so a crash, an abort or a hang is the failure of that one case and
 * anything the case spawned (a kestrel under libqtest) dies with it.  The
 * child reports why it failed or skipped through a pipe; the exit status
 * says which: 0 pass, 77 skip, anything else (or a signal) fail.  The parent
 * prints exactly one line per case.
 */
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_EXIT_FAIL      1
#define TEST_EXIT_SKIP      77
#define TEST_CASE_TIMEOUT_S 120
#define TEST_REASON_MAX     2048

/* Write end of the report pipe in a case's child; -1 outside a case. */
static int test_report_fd = -1;

static double test_timeout_scale(void)
{
    const char *s = getenv("KESTREL_TEST_TIMEOUT_SCALE");
    if (!s || !*s)
        return 1.0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0))
        return 1.0;
    return v;
}

int test_timeout(int seconds)
{
    double t = seconds * test_timeout_scale();
    if (t < 1)
        t = 1;
    if (t > 86400)
        t = 86400;
    return (int)t;
}

const char *test_kestrel_path(void)
{
    const char *p = getenv("KESTREL");
    return (p && *p) ? p : "./kestrel";
}

static void test_report(const char *prefix, const char *fmt, va_list ap)
{
    char buf[TEST_REASON_MAX];
    int n = 0;
    if (prefix)
        n = snprintf(buf, sizeof(buf), "%s", prefix);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(buf))
        vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);

    fflush(stdout);
    if (test_report_fd >= 0) {
        size_t len = strlen(buf), off = 0;
        while (off < len) {
            ssize_t w = write(test_report_fd, buf + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += w;
        }
    } else {
        fprintf(stderr, "%s\n", buf);
    }
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    test_report(prefix, fmt, ap);
    va_end(ap);
    exit(TEST_EXIT_FAIL);
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    test_report(NULL, fmt, ap);
    va_end(ap);
    exit(TEST_EXIT_SKIP);
}

static int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append what is readable on fd to reason; returns false at EOF or error. */
static bool test_drain(int fd, char *reason, size_t *len)
{
    char tmp[512];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 && errno == EAGAIN;
        size_t room = TEST_REASON_MAX - 1 - *len;
        size_t n = (size_t)r < room ? (size_t)r : room;
        memcpy(reason + *len, tmp, n);
        *len += n;
        reason[*len] = '\0';
    }
}

/* The report is printed on one line: fold newlines and control characters. */
static void test_flatten(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

/* Runs one case; returns 0 pass, 1 fail, 2 skip. */
static int test_run_case(const char *suite, const TestCase *tc)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        printf("FAIL %s/%s: pipe: %s\n", suite, tc->name, strerror(errno));
        fflush(stdout);
        return 1;
    }
    fflush(stdout);
    fflush(stderr);

    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s/%s: fork: %s\n", suite, tc->name, strerror(errno));
        fflush(stdout);
        close(pfd[0]);
        close(pfd[1]);
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        close(pfd[0]);
        test_report_fd = pfd[1];
        signal(SIGPIPE, SIG_IGN);
        tc->fn();
        fflush(stdout);
        exit(0);
    }
    /* Also set it here so the group exists before we might kill it. */
    setpgid(pid, pid);
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);

    char reason[TEST_REASON_MAX];
    size_t len = 0;
    reason[0] = '\0';
    bool pipe_open = true, timed_out = false;
    int status = 0;
    int64_t deadline = test_now_ms() + (int64_t)test_timeout(TEST_CASE_TIMEOUT_S) * 1000;

    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (test_now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            timed_out = true;
            break;
        }
        if (pipe_open) {
            struct pollfd p = { .fd = pfd[0], .events = POLLIN };
            if (poll(&p, 1, 50) > 0)
                pipe_open = test_drain(pfd[0], reason, &len);
        } else {
            usleep(20000);
        }
    }
    if (pipe_open)
        test_drain(pfd[0], reason, &len);
    close(pfd[0]);
    /* Whatever the case spawned and left behind goes with it. */
    kill(-pid, SIGKILL);
    test_flatten(reason);

    int result;
    if (timed_out) {
        printf("FAIL %s/%s: timed out after %d s%s%s\n", suite, tc->name,
               test_timeout(TEST_CASE_TIMEOUT_S), len ? ": " : "", reason);
        result = 1;
    } else if (status == -1) {
        printf("FAIL %s/%s: waitpid: %s\n", suite, tc->name, strerror(errno));
        result = 1;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("PASS %s/%s\n", suite, tc->name);
        result = 0;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_EXIT_SKIP) {
        printf("SKIP %s/%s: %s\n", suite, tc->name, len ? reason : "(no reason given)");
        result = 2;
    } else if (WIFEXITED(status)) {
        if (len)
            printf("FAIL %s/%s: %s\n", suite, tc->name, reason);
        else
            printf("FAIL %s/%s: exited with status %d\n", suite, tc->name,
                   WEXITSTATUS(status));
        result = 1;
    } else {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        printf("FAIL %s/%s: killed by signal %d (%s)%s%s\n", suite, tc->name, sig,
               strsignal(sig), len ? ": " : "", reason);
        result = 1;
    }
    fflush(stdout);
    return result;
}

static bool test_name_matches(const char *suite, const char *name, const char *want)
{
    if (strcmp(name, want) == 0)
        return true;
    size_t sl = strlen(suite);
    return strncmp(want, suite, sl) == 0 && want[sl] == '/' && strcmp(want + sl + 1, name) == 0;
}

int test_main(const char *suite, const TestCase *cases, int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : NULL;
    int failures = 0, ran = 0;

    /* A broken pipe to the parent of the whole run must not kill us silently. */
    signal(SIGPIPE, SIG_IGN);

    for (const TestCase *tc = cases; tc->name; tc++) {
        if (want && !test_name_matches(suite, tc->name, want))
            continue;
        ran++;
        if (test_run_case(suite, tc) == 1)
            failures++;
    }
    if (want && !ran) {
        fprintf(stderr, "%s: no test case named '%s'; cases are:\n", suite, want);
        for (const TestCase *tc = cases; tc->name; tc++)
            fprintf(stderr, "  %s\n", tc->name);
        return 1;
    }
    return failures ? 1 : 0;
}

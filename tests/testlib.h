/*
 * A tiny test framework: each test case runs in a forked child so a crash is
 * a failure of that case, not of the suite.  The parent prints one line per
 * case, which tests/run-tests.sh counts:
 *     PASS suite/name
 *     FAIL suite/name: what was expected and what was got
 *     SKIP suite/name: reason
 *
 * Usage:
 *     static void test_lsr_thre_set_after_reset(void) { ... CHECK_EQ(...); }
 *     static const TestCase cases[] = { TEST_CASE(test_lsr_thre_set_after_reset), { 0 } };
 *     int main(int argc, char **argv) { return test_main("serial", cases, argc, argv); }
 *
 * A single case can be run by name: ./tests/qtest/test-serial test_lsr_...
 */
#ifndef KESTREL_TESTLIB_H
#define KESTREL_TESTLIB_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct TestCase {
    const char *name;
    void (*fn)(void);
} TestCase;

#define TEST_CASE(fn) { #fn, fn }

int test_main(const char *suite, const TestCase *cases, int argc, char **argv);

/* End the current case as failed / skipped, printing the reason. */
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void test_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Seconds to wait for guest markers etc.; scaled by $KESTREL_TEST_TIMEOUT_SCALE. */
int test_timeout(int seconds);

/* Path of the kestrel binary under test ($KESTREL, else ./kestrel in the build dir). */
const char *test_kestrel_path(void);

#define CHECK(cond) \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, "expected %s", #cond); } while (0)

#define CHECK_MSG(cond, ...) \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Integer equality; 'what' names the register or quantity in the message. */
#define CHECK_EQ(what, expected, got) \
    do { \
        uint64_t e_ = (uint64_t)(expected), g_ = (uint64_t)(got); \
        if (e_ != g_) \
            test_fail(__FILE__, __LINE__, "%s: expected 0x%" PRIx64 ", got 0x%" PRIx64, \
                      (what), e_, g_); \
    } while (0)

#define CHECK_STREQ(what, expected, got) \
    do { \
        const char *e_ = (expected), *g_ = (got); \
        if (!g_ || strcmp(e_, g_) != 0) \
            test_fail(__FILE__, __LINE__, "%s: expected \"%s\", got \"%s\"", \
                      (what), e_, g_ ? g_ : "(null)"); \
    } while (0)

#endif

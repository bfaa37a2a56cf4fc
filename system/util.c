/*
 * Small utilities shared by the whole emulator: the error domain, one-line
 * error reports, and QEMU-compatible number and size parsing.
 */
#include "kestrel/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

GQuark kestrel_error_quark(void)
{
    return g_quark_from_static_string("kestrel-error");
}

void error_report(const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "kestrel: %s\n", msg);
    fflush(stderr);
    g_free(msg);
}

bool parse_uint(const char *str, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!str || !*str || *str == '-' || g_ascii_isspace(*str))
        return false;
    errno = 0;
    v = strtoull(str, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool parse_size(const char *str, char default_suffix, uint64_t *out)
{
    char *end;
    double d;
    uint64_t mult;
    char suffix;

    if (!str || !*str || *str == '-' || g_ascii_isspace(*str))
        return false;
    errno = 0;
    /* Integers first so that large exact byte counts do not lose precision. */
    uint64_t iv = strtoull(str, &end, 0);
    bool integral = (errno == 0 && end != str && *end != '.');
    if (!integral) {
        errno = 0;
        d = strtod(str, &end);
        if (errno || end == str || d < 0)
            return false;
    } else {
        d = (double)iv;
    }
    suffix = *end ? *end : default_suffix;
    switch (g_ascii_toupper(suffix)) {
    case 0: case 'B': mult = 1; break;
    case 'K': mult = 1ULL << 10; break;
    case 'M': mult = 1ULL << 20; break;
    case 'G': mult = 1ULL << 30; break;
    case 'T': mult = 1ULL << 40; break;
    default: return false;
    }
    if (*end) {
        end++;
        /* Allow "MB", "MiB" as well as bare "M"; a plain byte count takes no suffix tail. */
        if (g_ascii_toupper(suffix) != 'B') {
            if (*end == 'i' && end[1] == 'B')
                end += 2;
            else if (*end == 'B')
                end++;
        }
        if (*end)
            return false;
    }
    if (integral) {
        if (iv > UINT64_MAX / mult)
            return false;
        *out = iv * mult;
    } else {
        double r = d * (double)mult;
        if (r >= 18446744073709551615.0)
            return false;
        *out = (uint64_t)r;
    }
    return true;
}

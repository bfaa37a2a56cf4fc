/*
 * -d / -D logging.  Category names follow QEMU's so existing habits work.
 */
#include "kestrel/log.h"

#include <errno.h>
#include <string.h>

unsigned log_mask;
static FILE *log_file;

static const struct {
    const char *name;
    unsigned mask;
    const char *help;
} log_categories[] = {
    { "guest_errors", LOG_GUEST_ERROR, "the guest did something the hardware would flag" },
    { "unimp", LOG_UNIMP, "the guest used an unimplemented feature or port" },
    { "int", LOG_INT, "interrupts and exceptions" },
    { "in_asm", LOG_IN_ASM, "guest code of each new translated block (software CPU)" },
    { "exec", LOG_EXEC, "each translated block executed (software CPU)" },
    { "cpu_reset", LOG_CPU_RESET, "CPU state at reset" },
    { "cpu", LOG_CPU, "CPU state before each block (software CPU)" },
    { "ioport", LOG_IOPORT, "every I/O port access" },
    { "mmu", LOG_MMU, "page walks and TLB events (software CPU)" },
};

void log_print_categories(FILE *out)
{
    fprintf(out, "Log categories for -d (comma separated):\n");
    for (size_t i = 0; i < ARRAY_LEN(log_categories); i++)
        fprintf(out, "  %-14s %s\n", log_categories[i].name, log_categories[i].help);
}

bool log_parse_mask(const char *spec, unsigned *mask, GError **errp)
{
    gchar **parts = g_strsplit(spec, ",", -1);
    unsigned m = 0;
    bool ok = true;

    for (gchar **p = parts; *p; p++) {
        bool found = false;
        if (!**p)
            continue;
        if (!strcmp(*p, "help")) {
            log_print_categories(stdout);
            ok = false;
            break;
        }
        for (size_t i = 0; i < ARRAY_LEN(log_categories); i++) {
            if (!strcmp(*p, log_categories[i].name)) {
                m |= log_categories[i].mask;
                found = true;
            }
        }
        if (!found) {
            kestrel_set_error(errp, "-d: unknown log category '%s' (try -d help)", *p);
            ok = false;
            break;
        }
    }
    g_strfreev(parts);
    if (ok)
        *mask = m;
    return ok;
}

bool log_set_file(const char *path, GError **errp)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        kestrel_set_error(errp, "-D %s: %s", path, g_strerror(errno));
        return false;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (log_file)
        fclose(log_file);
    log_file = f;
    return true;
}

void log_printf(const char *fmt, ...)
{
    va_list ap;
    FILE *out = log_file ? log_file : stderr;

    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
}

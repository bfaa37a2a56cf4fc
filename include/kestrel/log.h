/*
 * Guest and emulator logging selected by -d and redirected by -D, as QEMU
 * users expect.  Nothing here ever writes to the guest's console.
 */
#ifndef KESTREL_LOG_H
#define KESTREL_LOG_H

#include "kestrel/common.h"

enum {
    LOG_GUEST_ERROR = 1u << 0,   /* guest did something the hardware would flag */
    LOG_UNIMP       = 1u << 1,   /* guest used an unimplemented feature/port */
    LOG_INT         = 1u << 2,   /* interrupts and exceptions */
    LOG_IN_ASM      = 1u << 3,   /* disassembly of each new translated block */
    LOG_EXEC        = 1u << 4,   /* each block executed */
    LOG_CPU_RESET   = 1u << 5,   /* CPU state at reset */
    LOG_CPU         = 1u << 6,   /* CPU state before each block */
    LOG_IOPORT      = 1u << 7,   /* every port access (noisy) */
    LOG_MMU         = 1u << 8,   /* page-walk and TLB events */
};

extern unsigned log_mask;

/* -d "guest_errors,unimp"; "help" prints the list and returns false with no error. */
bool log_parse_mask(const char *spec, unsigned *mask, GError **errp);
/* Print the category list (for -d help). */
void log_print_categories(FILE *out);
/* -D file: every later log line goes there instead of stderr. */
bool log_set_file(const char *path, GError **errp);

void log_printf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static inline bool log_enabled(unsigned mask) { return (log_mask & mask) != 0; }

#define LOG(mask, ...) \
    do { if (unlikely(log_mask & (mask))) log_printf(__VA_ARGS__); } while (0)

#endif

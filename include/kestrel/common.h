/*
 * Common definitions shared by every Kestrel source file.
 *
 * Errors a user can cause travel as GError (domain KESTREL_ERROR) up to main(),
 * which prints one line and exits 1.  Guest-caused oddities go to the log
 * (include/kestrel/log.h), never to stderr directly.
 */
#ifndef KESTREL_COMMON_H
#define KESTREL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <glib.h>

#include "config.h"

typedef uint64_t hwaddr;              /* guest physical address */

#define KESTREL_ERROR (kestrel_error_quark())
GQuark kestrel_error_quark(void);

/* Convenience for the common case: set a KESTREL_ERROR with code 0. */
#define kestrel_set_error(errp, ...) \
    g_set_error((errp), KESTREL_ERROR, 0, __VA_ARGS__)

/* Print "kestrel: <message>" on one line to stderr. */
void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Little-endian loads/stores on byte buffers (guest memory, image headers). */
static inline uint16_t ld16_le(const void *p)
{ const uint8_t *b = p; return (uint16_t)(b[0] | b[1] << 8); }
static inline uint32_t ld32_le(const void *p)
{ const uint8_t *b = p; return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24; }
static inline uint64_t ld64_le(const void *p)
{ return ld32_le(p) | (uint64_t)ld32_le((const uint8_t *)p + 4) << 32; }
static inline void st16_le(void *p, uint16_t v)
{ uint8_t *b = p; b[0] = v; b[1] = v >> 8; }
static inline void st32_le(void *p, uint32_t v)
{ uint8_t *b = p; b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24; }
static inline void st64_le(void *p, uint64_t v)
{ st32_le(p, (uint32_t)v); st32_le((uint8_t *)p + 4, (uint32_t)(v >> 32)); }

/*
 * Parse a size with QEMU's suffixes: plain numbers are bytes unless
 * default_suffix says otherwise ('M' for -m), and K/M/G/T (optionally
 * followed by B or iB) scale by powers of 1024.  Returns false on junk or overflow.
 */
bool parse_size(const char *str, char default_suffix, uint64_t *out);

/* Parse an unsigned integer in C syntax (0x.., 0.., decimal); false on junk. */
bool parse_uint(const char *str, uint64_t *out);

#endif

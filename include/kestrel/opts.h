/*
 * QEMU-style option strings: "value,key=value,flag,key2=a,,b".
 * A leading item without '=' is the implied key's value (e.g. the device
 * name for -device, the size for -m); later bare items mean key=on; ",,"
 * is a literal comma.  Every consumer marks the keys it understands, and
 * kopts_check_all_used turns anything left into one clear error.
 */
#ifndef KESTREL_OPTS_H
#define KESTREL_OPTS_H

#include "kestrel/common.h"

typedef struct KOpts KOpts;

KOpts *kopts_parse(const char *str, const char *implied_key, GError **errp);
void kopts_free(KOpts *o);

/* Last value given for key (marks it used), or NULL. */
const char *kopts_get(KOpts *o, const char *key);
/* on/off/yes/no/true/false; def if absent. */
bool kopts_get_bool(KOpts *o, const char *key, bool def, bool *out, GError **errp);
bool kopts_get_uint(KOpts *o, const char *key, uint64_t def, uint64_t *out, GError **errp);
bool kopts_get_size(KOpts *o, const char *key, uint64_t def, char default_suffix,
                    uint64_t *out, GError **errp);

size_t kopts_count(const KOpts *o);
const char *kopts_key(const KOpts *o, size_t i);
const char *kopts_value(const KOpts *o, size_t i);
void kopts_mark_used(KOpts *o, size_t i);

/* Error "<what>: unknown option 'key'" for the first key nobody asked for. */
bool kopts_check_all_used(const KOpts *o, const char *what, GError **errp);

bool parse_bool(const char *s, bool *out);

#endif

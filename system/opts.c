/*
 * QEMU-style option strings (include/kestrel/opts.h).
 */
#include "kestrel/opts.h"

#include <string.h>

typedef struct KOpt {
    char *key, *value;
    bool used;
} KOpt;

struct KOpts {
    GArray *items;    /* KOpt */
};

bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

/* Split on single commas; ",," stands for a comma inside an item. */
static GPtrArray *split_items(const char *str)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);

    for (const char *p = str;; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',' || *p == 0) {
            g_ptr_array_add(items, g_string_free(cur, FALSE));
            if (!*p)
                break;
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    return items;
}

KOpts *kopts_parse(const char *str, const char *implied_key, GError **errp)
{
    KOpts *o = g_new0(KOpts, 1);
    GPtrArray *items = split_items(str ? str : "");

    o->items = g_array_new(FALSE, TRUE, sizeof(KOpt));
    for (guint i = 0; i < items->len; i++) {
        const char *it = g_ptr_array_index(items, i);
        const char *eq = strchr(it, '=');
        KOpt opt = { 0 };

        if (!*it) {
            if (items->len == 1)
                break;          /* empty string: no options */
            kestrel_set_error(errp, "empty item in option string '%s'", str);
            goto fail;
        }
        if (eq) {
            if (eq == it) {
                kestrel_set_error(errp, "missing option name before '=' in '%s'", str);
                goto fail;
            }
            opt.key = g_strndup(it, eq - it);
            opt.value = g_strdup(eq + 1);
        } else if (i == 0 && implied_key) {
            opt.key = g_strdup(implied_key);
            opt.value = g_strdup(it);
        } else if (g_str_has_prefix(it, "no") && strlen(it) > 2 &&
                   strcmp(it, "nowait") != 0 && strcmp(it, "nodelay") != 0) {
            /* QEMU's legacy "noFLAG" boolean spelling */
            opt.key = g_strdup(it + 2);
            opt.value = g_strdup("off");
        } else if (!strcmp(it, "nowait")) {
            opt.key = g_strdup("wait");
            opt.value = g_strdup("off");
        } else {
            opt.key = g_strdup(it);
            opt.value = g_strdup("on");
        }
        g_array_append_val(o->items, opt);
    }
    g_ptr_array_free(items, TRUE);
    return o;
fail:
    g_ptr_array_free(items, TRUE);
    kopts_free(o);
    return NULL;
}

void kopts_free(KOpts *o)
{
    if (!o)
        return;
    for (guint i = 0; i < o->items->len; i++) {
        KOpt *opt = &g_array_index(o->items, KOpt, i);
        g_free(opt->key);
        g_free(opt->value);
    }
    g_array_free(o->items, TRUE);
    g_free(o);
}

const char *kopts_get(KOpts *o, const char *key)
{
    const char *v = NULL;
    for (guint i = 0; i < o->items->len; i++) {
        KOpt *opt = &g_array_index(o->items, KOpt, i);
        if (!strcmp(opt->key, key)) {
            opt->used = true;
            v = opt->value;
        }
    }
    return v;
}

bool kopts_get_bool(KOpts *o, const char *key, bool def, bool *out, GError **errp)
{
    const char *v = kopts_get(o, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!parse_bool(v, out)) {
        kestrel_set_error(errp, "%s=%s: expected on or off", key, v);
        return false;
    }
    return true;
}

bool kopts_get_uint(KOpts *o, const char *key, uint64_t def, uint64_t *out, GError **errp)
{
    const char *v = kopts_get(o, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!parse_uint(v, out)) {
        kestrel_set_error(errp, "%s=%s: expected a non-negative integer", key, v);
        return false;
    }
    return true;
}

bool kopts_get_size(KOpts *o, const char *key, uint64_t def, char default_suffix,
                    uint64_t *out, GError **errp)
{
    const char *v = kopts_get(o, key);
    if (!v) {
        *out = def;
        return true;
    }
    if (!parse_size(v, default_suffix, out)) {
        kestrel_set_error(errp, "%s=%s: expected a size such as 512M or 2G", key, v);
        return false;
    }
    return true;
}

size_t kopts_count(const KOpts *o) { return o->items->len; }
const char *kopts_key(const KOpts *o, size_t i) { return g_array_index(o->items, KOpt, i).key; }
const char *kopts_value(const KOpts *o, size_t i) { return g_array_index(o->items, KOpt, i).value; }
void kopts_mark_used(KOpts *o, size_t i) { g_array_index(o->items, KOpt, i).used = true; }

bool kopts_check_all_used(const KOpts *o, const char *what, GError **errp)
{
    for (guint i = 0; i < o->items->len; i++) {
        const KOpt *opt = &g_array_index(o->items, KOpt, i);
        if (!opt->used) {
            kestrel_set_error(errp, "%s: unknown option '%s'", what, opt->key);
            return false;
        }
    }
    return true;
}

/*
 * Device registry and property handling (include/kestrel/device.h).
 *
 * Property values are kept as strings after validation against the type's
 * PropDef table; getters convert on demand.  Defaults come from the PropDef,
 * then from -global, then from the user's string, in that order.
 */
#include "kestrel/device.h"
#include "kestrel/chardev.h"
#include "kestrel/opts.h"

#include <string.h>

struct DeviceProps {
    const DeviceType *type;
    GHashTable *values;      /* name -> string */
};

static GHashTable *device_types;      /* name -> DeviceType* */
static GPtrArray *devices;            /* Device*, creation order */
static GPtrArray *globals;            /* "driver\0prop\0value" triples as char*[3] */

void device_type_register(const DeviceType *type)
{
    if (!device_types)
        device_types = g_hash_table_new(g_str_hash, g_str_equal);
    g_assert(!g_hash_table_contains(device_types, type->name));
    g_hash_table_insert(device_types, (gpointer)type->name, (gpointer)type);
}

const DeviceType *device_type_find(const char *name)
{
    return device_types ? g_hash_table_lookup(device_types, name) : NULL;
}

static gint type_name_cmp(gconstpointer a, gconstpointer b)
{
    const DeviceType *x = *(const DeviceType *const *)a, *y = *(const DeviceType *const *)b;
    int c = strcmp(x->bus, y->bus);
    return c ? c : strcmp(x->name, y->name);
}

void device_type_list(FILE *out)
{
    GPtrArray *list = g_ptr_array_new();
    if (device_types) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, device_types);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (((const DeviceType *)v)->user_creatable)
                g_ptr_array_add(list, v);
    }
    g_ptr_array_sort(list, type_name_cmp);
    const char *bus = NULL;
    for (guint i = 0; i < list->len; i++) {
        const DeviceType *t = g_ptr_array_index(list, i);
        if (!bus || strcmp(bus, t->bus)) {
            bus = t->bus;
            fprintf(out, "%s%s devices:\n", i ? "\n" : "", bus);
        }
        fprintf(out, "name \"%s\", bus %s, desc \"%s\"\n", t->name, t->bus, t->desc);
    }
    g_ptr_array_free(list, TRUE);
}

static const char *prop_type_name(PropType t)
{
    switch (t) {
    case PROP_BOOL: return "bool";
    case PROP_UINT: return "uint";
    case PROP_INT: return "int";
    case PROP_SIZE: return "size";
    case PROP_STRING: return "str";
    case PROP_CHARDEV: return "chardev";
    }
    return "?";
}

void device_type_print_props(const DeviceType *type, FILE *out)
{
    fprintf(out, "%s options:\n", type->name);
    for (const PropDef *p = type->props; p && p->name; p++)
        fprintf(out, "  %s=<%s>%s%s%s - %s\n", p->name, prop_type_name(p->type),
                p->defval ? " (default: " : "", p->defval ? p->defval : "",
                p->defval ? ")" : "", p->help ? p->help : "");
}

static const PropDef *prop_find(const DeviceType *t, const char *name)
{
    for (const PropDef *p = t->props; p && p->name; p++)
        if (!strcmp(p->name, name))
            return p;
    return NULL;
}

static bool prop_validate(const DeviceType *t, const PropDef *p, const char *v, GError **errp)
{
    uint64_t u;
    bool b;
    switch (p->type) {
    case PROP_BOOL:
        if (parse_bool(v, &b))
            return true;
        break;
    case PROP_UINT:
        if (parse_uint(v, &u))
            return true;
        break;
    case PROP_INT:
        if (parse_uint(v[0] == '-' ? v + 1 : v, &u) && u <= (uint64_t)INT64_MAX)
            return true;
        break;
    case PROP_SIZE:
        if (parse_size(v, 0, &u))
            return true;
        break;
    case PROP_STRING:
        return true;
    case PROP_CHARDEV:
        if (chardev_find(v))
            return true;
        kestrel_set_error(errp, "%s: chardev '%s' not found (define it with -chardev ...,id=%s)",
                          t->name, v, v);
        return false;
    }
    kestrel_set_error(errp, "%s: property '%s' expects a %s, not '%s'", t->name, p->name,
                      prop_type_name(p->type), v);
    return false;
}

bool device_set_global(const char *spec, GError **errp)
{
    const char *dot = strchr(spec, '.');
    const char *eq = dot ? strchr(dot, '=') : NULL;
    if (!dot || !eq || dot == spec || eq == dot + 1) {
        kestrel_set_error(errp, "-global %s: expected DRIVER.PROPERTY=VALUE", spec);
        return false;
    }
    char **g = g_new0(char *, 4);      /* driver, property, value, NULL */
    g[0] = g_strndup(spec, dot - spec);
    g[1] = g_strndup(dot + 1, eq - dot - 1);
    g[2] = g_strdup(eq + 1);
    const DeviceType *t = device_type_find(g[0]);
    if (t && !prop_find(t, g[1])) {
        kestrel_set_error(errp, "-global %s: device '%s' has no property '%s'", spec, g[0], g[1]);
        g_strfreev(g);
        return false;
    }
    if (!globals)
        globals = g_ptr_array_new();
    g_ptr_array_add(globals, g);
    return true;
}

bool device_props_has(const DeviceProps *p, const char *name)
{
    return g_hash_table_contains(p->values, name);
}

const char *device_props_get_str(const DeviceProps *p, const char *name)
{
    return g_hash_table_lookup(p->values, name);
}

uint64_t device_props_get_uint(const DeviceProps *p, const char *name)
{
    const char *v = device_props_get_str(p, name);
    uint64_t u = 0;
    if (v && !parse_uint(v, &u))
        parse_size(v, 0, &u);
    return u;
}

int64_t device_props_get_int(const DeviceProps *p, const char *name)
{
    const char *v = device_props_get_str(p, name);
    uint64_t u = 0;
    if (!v)
        return 0;
    if (v[0] == '-') {
        parse_uint(v + 1, &u);
        return -(int64_t)u;
    }
    parse_uint(v, &u);
    return (int64_t)u;
}

bool device_props_get_bool(const DeviceProps *p, const char *name)
{
    const char *v = device_props_get_str(p, name);
    bool b = false;
    if (v)
        parse_bool(v, &b);
    return b;
}

static void device_props_free(DeviceProps *p)
{
    g_hash_table_destroy(p->values);
    g_free(p);
}

static bool device_props_set(DeviceProps *props, const char *name, const char *value,
                             GError **errp)
{
    const PropDef *p = prop_find(props->type, name);
    if (!p) {
        kestrel_set_error(errp, "%s: unknown property '%s' (try -device %s,help)",
                          props->type->name, name, props->type->name);
        return false;
    }
    if (!prop_validate(props->type, p, value, errp))
        return false;
    g_hash_table_insert(props->values, g_strdup(name), g_strdup(value));
    return true;
}

static DeviceProps *device_props_new(const DeviceType *t)
{
    DeviceProps *props = g_new0(DeviceProps, 1);
    props->type = t;
    props->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (const PropDef *p = t->props; p && p->name; p++)
        if (p->defval)
            g_hash_table_insert(props->values, g_strdup(p->name), g_strdup(p->defval));
    for (guint i = 0; globals && i < globals->len; i++) {
        char **g = g_ptr_array_index(globals, i);
        if (!strcmp(g[0], t->name))
            g_hash_table_insert(props->values, g_strdup(g[1]), g_strdup(g[2]));
    }
    return props;
}

static Device *device_instantiate(Machine *m, const DeviceType *t, DeviceProps *props,
                                  const char *id, GError **errp)
{
    if (id && device_find_by_id(id)) {
        kestrel_set_error(errp, "%s: duplicate device id '%s'", t->name, id);
        return NULL;
    }
    void *state = t->create(m, props, errp);
    if (!state)
        return NULL;
    Device *d = g_new0(Device, 1);
    d->type = t;
    d->state = state;
    if (!devices)
        devices = g_ptr_array_new();
    d->id = id ? g_strdup(id) : g_strdup_printf("%s.%u", t->name, devices->len);
    g_ptr_array_add(devices, d);
    return d;
}

Device *device_create_from_opts(Machine *m, const char *optstr, GError **errp)
{
    KOpts *o = kopts_parse(optstr, "driver", errp);
    Device *d = NULL;
    if (!o)
        return NULL;
    const char *name = kopts_get(o, "driver");
    if (!name) {
        kestrel_set_error(errp, "-device %s: missing device name (try -device help)", optstr);
        goto out;
    }
    const DeviceType *t = device_type_find(name);
    if (!t) {
        kestrel_set_error(errp, "-device %s: unknown device type (try -device help)", name);
        goto out;
    }
    if (!t->user_creatable) {
        kestrel_set_error(errp, "-device %s: this device is part of the board and cannot be "
                          "added with -device", name);
        goto out;
    }
    DeviceProps *props = device_props_new(t);
    const char *id = NULL;
    for (size_t i = 0; i < kopts_count(o); i++) {
        const char *k = kopts_key(o, i), *v = kopts_value(o, i);
        if (!strcmp(k, "driver"))
            continue;
        if (!strcmp(k, "id")) {
            id = v;
            continue;
        }
        if (!device_props_set(props, k, v, errp)) {
            device_props_free(props);
            goto out;
        }
    }
    d = device_instantiate(m, t, props, id, errp);
    device_props_free(props);
out:
    kopts_free(o);
    return d;
}

Device *device_create(Machine *m, const char *type_name, const char *const *kv, GError **errp)
{
    const DeviceType *t = device_type_find(type_name);
    if (!t) {
        kestrel_set_error(errp, "device type '%s' is not built in", type_name);
        return NULL;
    }
    DeviceProps *props = device_props_new(t);
    const char *id = NULL;
    for (; kv && *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char *k = eq ? g_strndup(*kv, eq - *kv) : g_strdup(*kv);
        const char *v = eq ? eq + 1 : "on";
        bool ok = true;
        if (!strcmp(k, "id"))
            id = v;
        else
            ok = device_props_set(props, k, v, errp);
        g_free(k);
        if (!ok) {
            device_props_free(props);
            return NULL;
        }
    }
    Device *d = device_instantiate(m, t, props, id, errp);
    device_props_free(props);
    return d;
}

void devices_reset_all(void)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        Device *d = g_ptr_array_index(devices, i);
        if (d->type->reset)
            d->type->reset(d->state);
    }
}

Device *device_find_by_id(const char *id)
{
    for (guint i = 0; devices && i < devices->len; i++) {
        Device *d = g_ptr_array_index(devices, i);
        if (!strcmp(d->id, id))
            return d;
    }
    return NULL;
}

void devices_foreach(void (*fn)(Device *d, void *opaque), void *opaque)
{
    for (guint i = 0; devices && i < devices->len; i++)
        fn(g_ptr_array_index(devices, i), opaque);
}

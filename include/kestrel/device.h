/*
 * Device registry.  Each device type registers itself from its own file
 * (DEVICE_TYPE_REGISTER at the bottom) with a name, typed properties with
 * defaults, and create/reset functions.  -device, -device help and the board
 * all go through this registry; there is no central list to edit.
 */
#ifndef KESTREL_DEVICE_H
#define KESTREL_DEVICE_H

#include "kestrel/common.h"

typedef struct Machine Machine;

typedef enum {
    PROP_BOOL,      /* on/off, yes/no, true/false */
    PROP_UINT,      /* C-syntax unsigned integer: 0x501, 12 */
    PROP_INT,       /* signed integer */
    PROP_SIZE,      /* size with K/M/G suffix */
    PROP_STRING,
    PROP_CHARDEV,   /* id of a -chardev */
} PropType;

typedef struct PropDef {
    const char *name;
    PropType type;
    const char *defval;     /* NULL: no default (property optional, unset) */
    const char *help;
} PropDef;

/* Property values after parsing and type checking. */
/* Valid only during create(): devices copy what they keep. */
typedef struct DeviceProps DeviceProps;

bool device_props_has(const DeviceProps *p, const char *name);  /* set or defaulted */
uint64_t device_props_get_uint(const DeviceProps *p, const char *name);
int64_t device_props_get_int(const DeviceProps *p, const char *name);
bool device_props_get_bool(const DeviceProps *p, const char *name);
const char *device_props_get_str(const DeviceProps *p, const char *name); /* NULL if unset */

typedef struct DeviceType {
    const char *name;              /* "isa-serial" */
    const char *desc;              /* one line for -device help */
    const char *bus;               /* "isa", "pci", "sys" */
    bool user_creatable;           /* may appear in -device */
    const PropDef *props;          /* terminated by { NULL } */
    /* Build the device: register ports/regions, take IRQ lines, open backends. */
    void *(*create)(Machine *m, const DeviceProps *props, GError **errp);
    /* Return to power-on state (system reset). */
    void (*reset)(void *state);
} DeviceType;

typedef struct Device {
    const DeviceType *type;
    char *id;                      /* from id=, or generated */
    void *state;
} Device;

void device_type_register(const DeviceType *type);
const DeviceType *device_type_find(const char *name);
/* "-device help" */
void device_type_list(FILE *out);
/* "-device NAME,help" */
void device_type_print_props(const DeviceType *type, FILE *out);

/*
 * Create from an option string "NAME,prop=val,..." (the -device syntax).
 * Unknown properties, bad values and unknown types are errors.
 */
Device *device_create_from_opts(Machine *m, const char *opts, GError **errp);
/* Create by name with props given as "k=v" pairs (board use); NULL-terminated. */
Device *device_create(Machine *m, const char *type_name, const char *const *kv,
                      GError **errp);

/* -global DRIVER.PROP=VALUE: a new default for every later device of that type. */
bool device_set_global(const char *spec, GError **errp);

void devices_reset_all(void);
Device *device_find_by_id(const char *id);
/* Iterate all devices in creation order. */
void devices_foreach(void (*fn)(Device *d, void *opaque), void *opaque);

#define DEVICE_TYPE_REGISTER(t) \
    static void __attribute__((constructor)) device_register_##t(void) \
    { device_type_register(&(t)); }

#endif

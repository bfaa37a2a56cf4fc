/*
 * Drives: -drive and its shorthands (-hda..-hdd, -cdrom, -fda/-fdb).
 *
 * QEMU's -drive semantics (qemu-options.hx, "-drive"): if= picks the
 * controller (ide for the pc machine when not given), index= is the
 * controller-wide position (IDE: bus = index / 2, unit = index % 2; floppy:
 * unit = index), bus=/unit= may be given instead, and with neither the next
 * free unit is used.  media=cdrom makes a read-only ATAPI drive that may be
 * empty (no file=).  The image is opened here, before the board exists, so a
 * missing or locked image fails with one line before anything starts.
 */
#include "kestrel/drive.h"
#include "kestrel/opts.h"

#include <string.h>

typedef struct DriveIfInfo {
    const char *name;
    DriveInterface iface;
    int max_bus;               /* buses per interface */
    int max_unit;              /* units per bus */
} DriveIfInfo;

static const DriveIfInfo drive_ifs[] = {
    { "none", IF_NONE, 1, 1 << 20 },
    { "ide", IF_IDE, 2, 2 },
    { "floppy", IF_FLOPPY, 1, 2 },
    { "virtio", IF_VIRTIO, 1, 32 },
};

static GPtrArray *drives;      /* DriveInfo *, in command-line order */
static unsigned drive_anon_count;

static const DriveIfInfo *drive_if_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(drive_ifs); i++)
        if (!strcmp(drive_ifs[i].name, name))
            return &drive_ifs[i];
    return NULL;
}

static const DriveIfInfo *drive_if_info(DriveInterface iface)
{
    for (size_t i = 0; i < ARRAY_LEN(drive_ifs); i++)
        if (drive_ifs[i].iface == iface)
            return &drive_ifs[i];
    return NULL;
}

DriveInfo *drive_get(DriveInterface iface, int bus, int unit)
{
    if (!drives)
        return NULL;
    for (guint i = 0; i < drives->len; i++) {
        DriveInfo *d = g_ptr_array_index(drives, i);
        if (d->iface == iface && d->bus == bus && d->unit == unit)
            return d;
    }
    return NULL;
}

DriveInfo *drive_get_by_id(const char *id)
{
    if (!drives || !id)
        return NULL;
    for (guint i = 0; i < drives->len; i++) {
        DriveInfo *d = g_ptr_array_index(drives, i);
        if (!strcmp(d->id, id))
            return d;
    }
    return NULL;
}

static void drive_free(DriveInfo *d)
{
    if (d->blk)
        blk_close(d->blk);
    g_free(d->id);
    g_free(d);
}

/* QEMU's generated ids: ide0-hd0, ide1-cd0, floppy0, virtio0, none0. */
static char *drive_default_id(const DriveIfInfo *ifi, int bus, int unit, DriveMedia media)
{
    switch (ifi->iface) {
    case IF_IDE:
        return g_strdup_printf("ide%d-%s%d", bus, media == DRIVE_MEDIA_CDROM ? "cd" : "hd", unit);
    case IF_FLOPPY:
        return g_strdup_printf("floppy%d", unit);
    default:
        return g_strdup_printf("%s%u", ifi->name, drive_anon_count++);
    }
}

DriveInfo *drive_add(const char *optstr, GError **errp)
{
    KOpts *o = kopts_parse(optstr, NULL, errp);
    DriveInfo *d = NULL;
    const char *v;
    uint64_t n;
    if (!o)
        return NULL;

    const DriveIfInfo *ifi = drive_if_find("ide");
    if ((v = kopts_get(o, "if"))) {
        ifi = drive_if_find(v);
        if (!ifi) {
            kestrel_set_error(errp, "if=%s: unsupported interface (use ide, floppy, virtio or "
                              "none)", v);
            goto out;
        }
    }
    DriveMedia media = DRIVE_MEDIA_DISK;
    if ((v = kopts_get(o, "media"))) {
        if (!strcmp(v, "cdrom")) {
            media = DRIVE_MEDIA_CDROM;
        } else if (strcmp(v, "disk") != 0) {
            kestrel_set_error(errp, "media=%s: invalid media (use disk or cdrom)", v);
            goto out;
        }
    }
    if (media == DRIVE_MEDIA_CDROM && ifi->iface != IF_IDE && ifi->iface != IF_NONE) {
        kestrel_set_error(errp, "media=cdrom: only IDE drives can be CD-ROMs");
        goto out;
    }

    /* Position: index=, or bus=/unit=, or the next free unit. */
    int bus = -1, unit = -1, index = -1;
    if (kopts_get(o, "index")) {
        if (!kopts_get_uint(o, "index", 0, &n, errp))
            goto out;
        if (n >= (uint64_t)ifi->max_bus * ifi->max_unit) {
            kestrel_set_error(errp, "index=%" PRIu64 ": out of range for if=%s (0-%d)", n,
                              ifi->name, ifi->max_bus * ifi->max_unit - 1);
            goto out;
        }
        index = (int)n;
    }
    if (kopts_get(o, "bus")) {
        if (!kopts_get_uint(o, "bus", 0, &n, errp))
            goto out;
        if (n >= (uint64_t)ifi->max_bus) {
            kestrel_set_error(errp, "bus=%" PRIu64 ": out of range for if=%s (0-%d)", n,
                              ifi->name, ifi->max_bus - 1);
            goto out;
        }
        bus = (int)n;
    }
    if (kopts_get(o, "unit")) {
        if (!kopts_get_uint(o, "unit", 0, &n, errp))
            goto out;
        if (n >= (uint64_t)ifi->max_unit) {
            kestrel_set_error(errp, "unit=%" PRIu64 ": out of range for if=%s (0-%d)", n,
                              ifi->name, ifi->max_unit - 1);
            goto out;
        }
        unit = (int)n;
    }
    if (index >= 0) {
        if (bus >= 0 || unit >= 0) {
            kestrel_set_error(errp, "index= cannot be combined with bus= or unit=");
            goto out;
        }
        bus = index / ifi->max_unit;
        unit = index % ifi->max_unit;
    } else {
        if (bus < 0)
            bus = 0;
        if (unit < 0) {
            /* QEMU fills units then buses, starting at the given bus. */
            for (; bus < ifi->max_bus; bus++) {
                for (unit = 0; unit < ifi->max_unit && drive_get(ifi->iface, bus, unit); unit++)
                    ;
                if (unit < ifi->max_unit)
                    break;
            }
            if (bus >= ifi->max_bus) {
                kestrel_set_error(errp, "too many %s drives", ifi->name);
                goto out;
            }
        }
    }
    if (ifi->iface != IF_NONE && drive_get(ifi->iface, bus, unit)) {
        kestrel_set_error(errp, "drive with bus=%d, unit=%d (index=%d) exists", bus, unit,
                          bus * ifi->max_unit + unit);
        goto out;
    }

    const char *id = kopts_get(o, "id");
    if (id && drive_get_by_id(id)) {
        kestrel_set_error(errp, "id=%s: a drive with this id already exists", id);
        goto out;
    }

    BlockOptions bo;
    blk_options_init(&bo);
    if (!blk_options_parse(&bo, o, errp))
        goto out;
    bool snapshot = false;
    if (!kopts_get_bool(o, "snapshot", false, &snapshot, errp))
        goto out;
    /* Accepted for compatibility; errors are always reported to the guest. */
    kopts_get(o, "werror");
    kopts_get(o, "rerror");
    kopts_get(o, "serial");
    const char *file = kopts_get(o, "file");
    if (!kopts_check_all_used(o, "-drive", errp))
        goto out;

    d = g_new0(DriveInfo, 1);
    d->iface = ifi->iface;
    d->bus = bus;
    d->unit = unit;
    d->media = media;
    d->bootindex = -1;
    d->id = id ? g_strdup(id) : drive_default_id(ifi, bus, unit, media);
    if (media == DRIVE_MEDIA_CDROM)
        bo.read_only = true;
    d->read_only = bo.read_only;
    /* -snapshot covers every writable drive; read-only ones need no overlay. */
    bo.snapshot = snapshot && !bo.read_only;
    if (file && *file) {
        d->blk = blk_open(file, &bo, errp);
        if (!d->blk) {
            g_prefix_error(errp, "-drive file=%s: ", file);
            drive_free(d);
            d = NULL;
            goto out;
        }
    } else if (media != DRIVE_MEDIA_CDROM && ifi->iface != IF_FLOPPY) {
        kestrel_set_error(errp, "-drive %s: file= is required (only CD-ROM and floppy drives "
                          "may be empty)", optstr);
        drive_free(d);
        d = NULL;
        goto out;
    }
    if (!drives)
        drives = g_ptr_array_new();
    g_ptr_array_add(drives, d);
out:
    kopts_free(o);
    return d;
}

bool drive_claim(DriveInfo *d, const char *owner, GError **errp)
{
    if (d->claimed) {
        kestrel_set_error(errp, "%s: drive '%s' is already in use by another device", owner,
                          d->id);
        return false;
    }
    d->claimed = true;
    return true;
}

void drive_foreach(void (*fn)(DriveInfo *d, void *opaque), void *opaque)
{
    if (!drives)
        return;
    for (guint i = 0; i < drives->len; i++)
        fn(g_ptr_array_index(drives, i), opaque);
}

bool drives_check_claimed(GError **errp)
{
    if (!drives)
        return true;
    for (guint i = 0; i < drives->len; i++) {
        DriveInfo *d = g_ptr_array_index(drives, i);
        if (d->iface == IF_NONE || d->claimed)
            continue;
        const DriveIfInfo *ifi = drive_if_info(d->iface);
        kestrel_set_error(errp, "drive '%s' (if=%s, bus=%d, unit=%d): this machine has no "
                          "controller for it", d->id, ifi ? ifi->name : "?", d->bus, d->unit);
        return false;
    }
    return true;
}

void drives_close_all(void)
{
    if (!drives)
        return;
    for (guint i = 0; i < drives->len; i++)
        drive_free(g_ptr_array_index(drives, i));
    g_ptr_array_free(drives, TRUE);
    drives = NULL;
}

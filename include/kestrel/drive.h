/*
 * Drives: what -drive, -hda..-hdd, -cdrom, -fda/-fdb and -snapshot opened.
 *
 * system/drive.c parses each -drive into a DriveInfo (interface, bus/unit,
 * media, the opened BlockBackend) before the board is built; storage
 * controllers then pick up the drives of their interface (IDE channel n
 * unit u, floppy unit u) or, with -device ...,drive=ID, by id.  A drive a
 * controller took is "claimed"; an unclaimed if=ide/floppy drive after the
 * board is built is an error (QEMU: "machine type does not support ...").
 */
#ifndef KESTREL_DRIVE_H
#define KESTREL_DRIVE_H

#include "kestrel/common.h"
#include "kestrel/block.h"

typedef enum {
    IF_NONE,        /* only for -device ...,drive=ID */
    IF_IDE,         /* bus = channel 0/1, unit = master 0 / slave 1; index = 2*bus+unit */
    IF_FLOPPY,      /* unit 0 = A:, 1 = B: */
    IF_VIRTIO,
} DriveInterface;

typedef enum {
    DRIVE_MEDIA_DISK,
    DRIVE_MEDIA_CDROM,
} DriveMedia;

typedef struct DriveInfo {
    char *id;                   /* id= or generated "ide0-hd0", "floppy0", ... */
    DriveInterface iface;
    int bus, unit;
    DriveMedia media;
    BlockBackend *blk;          /* NULL: drive with no medium (empty CD-ROM/floppy) */
    bool read_only;
    int bootindex;              /* -1 when not given */
    bool claimed;
} DriveInfo;

/* Parse and open one -drive option string (and the sugar options' expansions). */
DriveInfo *drive_add(const char *opts, GError **errp);
/* The drive at interface/bus/unit, or NULL. */
DriveInfo *drive_get(DriveInterface iface, int bus, int unit);
DriveInfo *drive_get_by_id(const char *id);
/* A controller takes a drive; false (with error) if someone already did. */
bool drive_claim(DriveInfo *d, const char *owner, GError **errp);
void drive_foreach(void (*fn)(DriveInfo *d, void *opaque), void *opaque);
/* After the board is built: error for any if=ide/floppy/virtio drive nobody claimed. */
bool drives_check_claimed(GError **errp);
/* Close everything (process exit; flushes images). */
void drives_close_all(void);

#endif

/*
 * The block layer: the one interface device models (IDE, virtio-blk, floppy,
 * firmware loaders) use to reach a disk image.
 *
 * - A BlockBackend is an opened image: a format driver (raw, qcow2) on top
 *   of the host file, plus its backing chain.  Open it with blk_open() and
 *   the QEMU -drive keys parsed by blk_options_parse().
 * - Requests are byte-granular: any offset and length inside the virtual
 *   disk.  Sector/O_DIRECT alignment is the layer's job, not the caller's.
 * - Asynchronous requests (blk_aio_*) run on worker threads (aio=threads)
 *   or, with aio=io_uring on a raw image, in the kernel through io_uring;
 *   either way their completion callback runs later on the main loop
 *   (main_loop_context()), on the main thread, with the big lock held
 *   (lock.h) — never inside the blk_aio_* call itself.  The iovec array is
 *   copied; the buffers it points to must stay valid until the callback.
 *   ret is 0 or a negative errno.
 * - Synchronous wrappers (blk_pread & co.) block the calling thread; meant
 *   for firmware-style callers, tools and tests.  They are ordered against
 *   in-flight asynchronous requests only by the format's own locking, so a
 *   device that mixes both should blk_drain() first.
 * - Out-of-range requests fail with -EIO, writes to a read-only backend with
 *   -EPERM; a malformed image yields -EIO (and a guest_errors log line), never
 *   a crash.
 */
#ifndef KESTREL_BLOCK_H
#define KESTREL_BLOCK_H

#include "kestrel/common.h"

#include <sys/uio.h>

typedef struct BlockBackend BlockBackend;
typedef struct KOpts KOpts;

/* QEMU's cache= shorthands (qemu-options.hx, -drive). */
typedef enum {
    BLK_CACHE_WRITEBACK,     /* page cache, guest flush -> fdatasync (default) */
    BLK_CACHE_NONE,          /* O_DIRECT, guest flush -> fdatasync */
    BLK_CACHE_WRITETHROUGH,  /* page cache, every write flushed before completing */
    BLK_CACHE_DIRECTSYNC,    /* O_DIRECT + every write flushed */
    BLK_CACHE_UNSAFE,        /* flushes ignored */
} BlockCacheMode;

typedef enum {
    BLK_AIO_DEFAULT,         /* io_uring where built in and permitted, else threads */
    BLK_AIO_THREADS,
    BLK_AIO_IO_URING,        /* refused at blk_open if not built in or not permitted */
} BlockAioMode;

typedef enum {
    BLK_LOCKING_AUTO,        /* OFD locks (Linux >= 3.15) */
    BLK_LOCKING_ON,
    BLK_LOCKING_OFF,
} BlockLockingMode;

typedef struct BlockOptions {
    const char *format;      /* "raw", "qcow2"; NULL = probe (never probes when given) */
    BlockCacheMode cache;
    BlockAioMode aio;
    BlockLockingMode locking;
    bool read_only;          /* readonly=on */
    bool discard_unmap;      /* discard=unmap: pass guest TRIM down */
    bool snapshot;           /* -snapshot: writes go to a temporary qcow2 overlay */
    bool force_share;        /* qemu-img -U: read-only, take no locks, share everything */
    bool no_backing;         /* open without the backing chain (tools only) */
} BlockOptions;

/* Flags for blk_aio_pwrite_zeroes. */
#define BLK_ZERO_MAY_UNMAP 1u    /* the range may be deallocated instead of written */

typedef void BlockCompletionFunc(void *opaque, int ret);

/* Defaults: probe, writeback, aio default, locking auto, read-write. */
void blk_options_init(BlockOptions *o);
/*
 * Consume the -drive keys format=, cache=, aio=, readonly=, discard=,
 * locking= (also file.locking=) from opts, marking them used.  Strings in o
 * point into opts, which must outlive the blk_open() call.
 */
bool blk_options_parse(BlockOptions *o, KOpts *opts, GError **errp);

BlockBackend *blk_open(const char *filename, const BlockOptions *opts, GError **errp);
/* Waits for in-flight requests (blk_drain), writes cached metadata, closes. */
void blk_close(BlockBackend *blk);

int64_t blk_getlength(BlockBackend *blk);      /* virtual disk size in bytes */
bool blk_is_read_only(BlockBackend *blk);
const char *blk_format_name(BlockBackend *blk);
const char *blk_filename(BlockBackend *blk);

void blk_aio_preadv(BlockBackend *blk, uint64_t offset, const struct iovec *iov, int iovcnt,
                    BlockCompletionFunc *cb, void *opaque);
void blk_aio_pwritev(BlockBackend *blk, uint64_t offset, const struct iovec *iov, int iovcnt,
                     BlockCompletionFunc *cb, void *opaque);
void blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb, void *opaque);
/* Advisory: ignored (completes with 0) unless discard=unmap. */
void blk_aio_pdiscard(BlockBackend *blk, uint64_t offset, uint64_t bytes,
                      BlockCompletionFunc *cb, void *opaque);
void blk_aio_pwrite_zeroes(BlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                           BlockCompletionFunc *cb, void *opaque);

/* Synchronous forms: 0 or -errno. */
int blk_pread(BlockBackend *blk, uint64_t offset, void *buf, size_t bytes);
/* Does this backend send its I/O through io_uring (aio=io_uring, or the default where permitted)? */
bool blk_uses_io_uring(const BlockBackend *blk);
int blk_pwrite(BlockBackend *blk, uint64_t offset, const void *buf, size_t bytes);
int blk_flush(BlockBackend *blk);
int blk_pdiscard(BlockBackend *blk, uint64_t offset, uint64_t bytes);
int blk_pwrite_zeroes(BlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags);

/* Run the main context until every asynchronous request has completed.  Main thread only. */
void blk_drain(BlockBackend *blk);
/* Requests submitted and not yet completed (callback not yet run). */
unsigned blk_in_flight(BlockBackend *blk);

#endif

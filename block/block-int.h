/*
 * Inside the block layer: the node graph and the driver interface.
 *
 * A BlockDriverState (node) is one driver instance: the host-file protocol
 * ("file", block/file-posix.c) at the bottom, a format ("raw", "qcow2") on
 * top of it, with an optional backing node.  Driver calls are synchronous and
 * blocking; asynchrony is added above them by the BlockBackend (block.c),
 * which runs requests on worker threads (aio-threads.c), or, with
 * aio=io_uring on a raw image, hands them to the kernel (aio-uring.c).  Drivers that are
 * not thread-safe (qcow2: metadata caches) set .serialize, and the backend
 * then holds the node's lock around every request.  kestrel-img uses this
 * interface directly.
 */
#ifndef KESTREL_BLOCK_INT_H
#define KESTREL_BLOCK_INT_H

#include "kestrel/block.h"

#include <errno.h>
#include <inttypes.h>

typedef struct BlockDriverState BlockDriverState;

/* Open flags. */
enum {
    BDRV_O_RDWR       = 1u << 0,
    BDRV_O_NOCACHE    = 1u << 1,   /* O_DIRECT */
    BDRV_O_NO_FLUSH   = 1u << 2,   /* cache=unsafe */
    BDRV_O_UNMAP      = 1u << 3,   /* discard=unmap */
    BDRV_O_NO_BACKING = 1u << 4,
    BDRV_O_NO_LOCK    = 1u << 5,   /* locking=off */
    BDRV_O_SHARE_ALL  = 1u << 6,   /* -U */
    BDRV_O_BACKING    = 1u << 7,   /* this node is someone's backing file */
    BDRV_O_NO_IO_URING = 1u << 8,
};

/* A scatter-gather list with its total size. */
typedef struct BlkIov {
    struct iovec *iov;
    int niov;
    size_t size;
    bool owned;                    /* iov array allocated by blkiov_* */
} BlkIov;

void blkiov_init_buf(BlkIov *q, struct iovec *one, void *buf, size_t len);
/* dst = the bytes [off, off+len) of src; free with blkiov_free. */
void blkiov_slice(BlkIov *dst, const BlkIov *src, size_t off, size_t len);
void blkiov_free(BlkIov *q);
void blkiov_to_buf(const BlkIov *q, size_t off, void *buf, size_t len);
void blkiov_from_buf(const BlkIov *q, size_t off, const void *buf, size_t len);
void blkiov_memset(const BlkIov *q, size_t off, int c, size_t len);
bool blkiov_is_zero(const BlkIov *q);
/* All n bytes at p are zero (8 bytes at a time once aligned). */
bool buf_is_zero(const uint8_t *p, size_t n);

typedef struct BlockCheckResult {
    int corruptions, leaks, check_errors;
    int corruptions_fixed, leaks_fixed;
    uint64_t image_end_offset;
    uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
} BlockCheckResult;

typedef struct BlockSnapshotInfo {
    char *id, *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    int64_t icount;
    uint64_t disk_size;
} BlockSnapshotInfo;

/* What kestrel-img info prints beyond size and format. */
typedef struct BlockImageInfo {
    uint64_t cluster_size;          /* 0: not applicable */
    int version;                    /* qcow2: 2 or 3 */
    int refcount_bits;
    bool lazy_refcounts, corrupt, dirty, extended_l2;
    const char *compression_type;
    int nb_snapshots;
    BlockSnapshotInfo *snapshots;   /* owned by the driver */
} BlockImageInfo;

/* Allocation status of a range (for map/convert): *pnum bytes from offset share it. */
enum {
    BDRV_BLOCK_DATA  = 1u << 0,     /* allocated with data at this layer */
    BDRV_BLOCK_ZERO  = 1u << 1,     /* reads as zeros */
    BDRV_BLOCK_OFFSET_VALID = 1u << 2,
    BDRV_BLOCK_COMPRESSED = 1u << 3,
    BDRV_BLOCK_ALLOCATED = 1u << 4, /* decided at this layer (not passed to backing) */
};

typedef struct BlockDriver {
    const char *name;
    bool is_protocol;
    bool serialize;                 /* requests must not run concurrently */
    /* Probe score for the first bytes of a file (0 = not this format). */
    int (*probe)(const uint8_t *buf, size_t len);
    /* Formats: bs->file is already open.  Protocols: open bs->filename. */
    bool (*open)(BlockDriverState *bs, int flags, GError **errp);
    void (*close)(BlockDriverState *bs);
    int (*preadv)(BlockDriverState *bs, uint64_t off, BlkIov *q);
    int (*pwritev)(BlockDriverState *bs, uint64_t off, BlkIov *q);
    int (*flush)(BlockDriverState *bs);
    int (*pdiscard)(BlockDriverState *bs, uint64_t off, uint64_t len);
    int (*pwrite_zeroes)(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags);
    int64_t (*getlength)(BlockDriverState *bs);
    int (*truncate)(BlockDriverState *bs, uint64_t len);
    int (*block_status)(BlockDriverState *bs, uint64_t off, uint64_t len,
                        uint64_t *pnum, uint64_t *host_off);
    void (*get_info)(BlockDriverState *bs, BlockImageInfo *info);
    /* fix: 0, or BDRV_FIX_LEAKS | BDRV_FIX_ERRORS. */
    int (*check)(BlockDriverState *bs, BlockCheckResult *res, int fix, FILE *report);
    /* One whole cluster at a cluster-aligned offset, stored compressed if that helps. */
    int (*pwrite_compressed)(BlockDriverState *bs, uint64_t off, const void *buf);
    uint64_t (*cluster_size)(BlockDriverState *bs);
    /* Drop every mapping so all reads fall through to the backing file. */
    int (*make_empty)(BlockDriverState *bs);
    /* Store a new backing file name/format (name NULL or "": none). */
    int (*change_backing)(BlockDriverState *bs, const char *name, const char *fmt);
    /* Internal snapshots by ID or name: 0 or -errno (-ENOENT, -EEXIST). */
    int (*snapshot_create)(BlockDriverState *bs, const char *name);
    int (*snapshot_delete)(BlockDriverState *bs, const char *id_or_name);
    int (*snapshot_apply)(BlockDriverState *bs, const char *id_or_name);
} BlockDriver;

enum { BDRV_FIX_LEAKS = 1, BDRV_FIX_ERRORS = 2 };

struct BlockDriverState {
    const BlockDriver *drv;
    void *opaque;                   /* driver state */
    char *filename;
    int flags;
    BlockDriverState *file;         /* protocol child of a format node */
    BlockDriverState *backing;      /* backing node, or NULL */
    char *backing_filename;         /* as stored in the image */
    char *backing_full;             /* resolved relative to this image */
    char *backing_format;           /* as stored, or NULL */
    int chain_depth;                /* 0 = top */
    GMutex lock;                    /* held around requests when drv->serialize */
};

extern const BlockDriver bdrv_file, bdrv_raw, bdrv_qcow2;

const BlockDriver *bdrv_find_format(const char *name);
/* Probe the first bytes of filename: "qcow2" or "raw". */
const char *bdrv_probe_format(const uint8_t *buf, size_t len);

/*
 * Open filename with format fmt (NULL: probe) and the backing chain.
 * perm-less flags: see BDRV_O_*.
 */
BlockDriverState *bdrv_open(const char *filename, const char *fmt, int flags, GError **errp);
BlockDriverState *bdrv_open_protocol(const char *filename, int flags, GError **errp);
void bdrv_close(BlockDriverState *bs);
/* The node under a backend (kestrel-img). */
BlockDriverState *blk_bs(BlockBackend *blk);
/* Open bs's backing file (called by format drivers from their open). */
bool bdrv_open_backing(BlockDriverState *bs, GError **errp);
/* Backing name resolved like QEMU: relative to the directory of the overlay. */
char *bdrv_resolve_backing(const char *overlay, const char *backing);

int bdrv_preadv(BlockDriverState *bs, uint64_t off, BlkIov *q);
int bdrv_pwritev(BlockDriverState *bs, uint64_t off, BlkIov *q);
int bdrv_pread(BlockDriverState *bs, uint64_t off, void *buf, size_t len);
int bdrv_pwrite(BlockDriverState *bs, uint64_t off, const void *buf, size_t len);
int bdrv_flush(BlockDriverState *bs);
int bdrv_pdiscard(BlockDriverState *bs, uint64_t off, uint64_t len);
int bdrv_pwrite_zeroes(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags);
int64_t bdrv_getlength(BlockDriverState *bs);
int bdrv_truncate(BlockDriverState *bs, uint64_t len);
/* Status of [off, off+len) at this layer; default: all data. */
int bdrv_block_status(BlockDriverState *bs, uint64_t off, uint64_t len,
                      uint64_t *pnum, uint64_t *host_off);
/* Read through the chain, clipping to each layer's size (zeros beyond). */
int bdrv_read_backing(BlockDriverState *bs, uint64_t off, BlkIov *q);

/* qcow2 creation (block/qcow2.c), used by kestrel-img and -snapshot. */
typedef struct Qcow2CreateOptions {
    uint64_t size;
    uint32_t cluster_size;          /* 0 = 64 KiB */
    int version;                    /* 2 or 3; 0 = 3 */
    int refcount_bits;              /* 0 = 16 */
    const char *backing_file;
    const char *backing_fmt;
    bool lazy_refcounts;
    const char *preallocation;      /* NULL/"off", "metadata" */
} Qcow2CreateOptions;
bool qcow2_create(const char *filename, const Qcow2CreateOptions *o, GError **errp);

/* Completion plumbing for the asynchronous engines (aio-threads.c). */
typedef struct BlockAioJob BlockAioJob;
typedef int BlockJobFunc(BlockAioJob *job);
struct BlockAioJob {
    BlockJobFunc *run;              /* runs on a worker thread, returns 0/-errno */
    BlockCompletionFunc *done;      /* runs on the main loop */
    void *opaque;
    int ret;
};
void aio_threads_submit(BlockAioJob *job);

/*
 * aio=io_uring (aio-uring.c): one operation on a host fd through the
 * process's ring.  done() runs later on the main loop with res = the CQE's
 * result (bytes transferred, 0, or -errno), never inside aio_uring_submit();
 * the op and the iovec array it points to must stay valid until then.
 */
enum {
    AIO_URING_NOP,                  /* completes with 0: an asynchronous no-op */
    AIO_URING_READV,
    AIO_URING_WRITEV,
    AIO_URING_FDATASYNC,
    AIO_URING_FALLOCATE,            /* fallocate(2) mode, offset, len */
};
typedef struct AioUringOp AioUringOp;
struct AioUringOp {
    int opcode;
    int fd;
    uint64_t offset, len;
    int mode;
    const struct iovec *iov;
    int niov;
    void (*done)(AioUringOp *op, int res);
    int res;
};
/* Set up the ring once per process; false (and why, one line) when it cannot be used. */
bool aio_uring_init(GError **errp);
void aio_uring_submit(AioUringOp *op);

/* file-posix.c, for block.c's io_uring path: the fd and O_DIRECT alignment (1: buffered). */
int file_posix_fd(BlockDriverState *bs, uint32_t *align);
/* Offset, size and every iovec buffer and length multiples of align (O_DIRECT's rule). */
bool blk_iov_aligned(const BlkIov *q, uint64_t off, uint32_t align);
/* A flush done outside file_flush: 1 = fdatasync needed, 0 = skip (cache=unsafe), -EIO. */
int file_posix_flush_begin(BlockDriverState *bs);
/* The status to complete it with, given fdatasync's; a failure is remembered. */
int file_posix_flush_end(BlockDriverState *bs, int ret);
/* Operations a backend completed through the ring (0 for aio=threads); for tests. */
uint64_t blk_ring_ops(BlockBackend *blk);

#endif

/*
 * Block layer core: the format driver table and probing, opening a node with
 * its protocol child and backing chain, the -drive option keys, and the
 * BlockBackend that devices use (asynchronous requests via aio-threads.c or,
 * with aio=io_uring, aio-uring.c; synchronous wrappers, range checks,
 * write-through, -snapshot overlays).
 */
#include "block/block-int.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/opts.h"

#include <limits.h>
#include <linux/falloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKING_CHAIN_MAX 64

/* ---- scatter-gather helpers ---- */

void blkiov_init_buf(BlkIov *q, struct iovec *one, void *buf, size_t len)
{
    one->iov_base = buf;
    one->iov_len = len;
    q->iov = one;
    q->niov = 1;
    q->size = len;
    q->owned = false;
}

void blkiov_slice(BlkIov *dst, const BlkIov *src, size_t off, size_t len)
{
    int i = 0, n = 0;

    dst->iov = g_new(struct iovec, src->niov ? src->niov : 1);
    dst->owned = true;
    dst->size = len;
    while (i < src->niov && off >= src->iov[i].iov_len) {
        off -= src->iov[i].iov_len;
        i++;
    }
    for (; i < src->niov && len > 0; i++) {
        size_t take = MIN(src->iov[i].iov_len - off, len);
        dst->iov[n].iov_base = (uint8_t *)src->iov[i].iov_base + off;
        dst->iov[n].iov_len = take;
        n++;
        len -= take;
        off = 0;
    }
    dst->niov = n;
    dst->size -= len;      /* src shorter than asked: clip */
}

void blkiov_free(BlkIov *q)
{
    if (q->owned)
        g_free(q->iov);
    q->iov = NULL;
    q->niov = 0;
}

/* Walk [off, off+len) of q calling fn on each piece. */
#define BLKIOV_FOREACH(q, off, len, body) \
    do { \
        size_t o_ = (off), l_ = (len), done_ = 0; \
        for (int i_ = 0; i_ < (q)->niov && l_ > 0; i_++) { \
            if (o_ >= (q)->iov[i_].iov_len) { o_ -= (q)->iov[i_].iov_len; continue; } \
            size_t n_ = MIN((q)->iov[i_].iov_len - o_, l_); \
            uint8_t *p_ = (uint8_t *)(q)->iov[i_].iov_base + o_; \
            body; \
            done_ += n_; l_ -= n_; o_ = 0; \
        } \
    } while (0)

void blkiov_to_buf(const BlkIov *q, size_t off, void *buf, size_t len)
{
    BLKIOV_FOREACH(q, off, len, memcpy((uint8_t *)buf + done_, p_, n_));
}

void blkiov_from_buf(const BlkIov *q, size_t off, const void *buf, size_t len)
{
    BLKIOV_FOREACH(q, off, len, memcpy(p_, (const uint8_t *)buf + done_, n_));
}

void blkiov_memset(const BlkIov *q, size_t off, int c, size_t len)
{
    BLKIOV_FOREACH(q, off, len, (void)done_; memset(p_, c, n_));
}

bool buf_is_zero(const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        if (*p++)
            return false;
        n--;
    }
    for (; n >= 8; p += 8, n -= 8)
        if (*(const uint64_t *)p)
            return false;
    while (n--)
        if (*p++)
            return false;
    return true;
}

bool blkiov_is_zero(const BlkIov *q)
{
    for (int i = 0; i < q->niov; i++)
        if (!buf_is_zero(q->iov[i].iov_base, q->iov[i].iov_len))
            return false;
    return true;
}

/* ---- drivers ---- */

static const BlockDriver *const format_drivers[] = { &bdrv_qcow2, &bdrv_raw };

const BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(format_drivers); i++)
        if (!strcmp(format_drivers[i]->name, name))
            return format_drivers[i];
    return NULL;
}

const char *bdrv_probe_format(const uint8_t *buf, size_t len)
{
    const BlockDriver *best = &bdrv_raw;
    int best_score = 0;

    for (size_t i = 0; i < ARRAY_LEN(format_drivers); i++) {
        int score = format_drivers[i]->probe(buf, len);
        if (score > best_score) {
            best_score = score;
            best = format_drivers[i];
        }
    }
    return best->name;
}

/* ---- node dispatch ---- */

int bdrv_preadv(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    return bs->drv->preadv(bs, off, q);
}

int bdrv_pwritev(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    if (!(bs->flags & BDRV_O_RDWR))
        return -EPERM;
    return bs->drv->pwritev(bs, off, q);
}

int bdrv_pread(BlockDriverState *bs, uint64_t off, void *buf, size_t len)
{
    struct iovec one;
    BlkIov q;

    blkiov_init_buf(&q, &one, buf, len);
    return bdrv_preadv(bs, off, &q);
}

int bdrv_pwrite(BlockDriverState *bs, uint64_t off, const void *buf, size_t len)
{
    struct iovec one;
    BlkIov q;

    blkiov_init_buf(&q, &one, (void *)buf, len);
    return bdrv_pwritev(bs, off, &q);
}

int bdrv_flush(BlockDriverState *bs)
{
    if (!(bs->flags & BDRV_O_RDWR) || !bs->drv->flush)
        return 0;
    return bs->drv->flush(bs);
}

int bdrv_pdiscard(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    if (!(bs->flags & BDRV_O_RDWR))
        return -EPERM;
    if (!bs->drv->pdiscard || len == 0)
        return 0;
    return bs->drv->pdiscard(bs, off, len);
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags)
{
    if (!(bs->flags & BDRV_O_RDWR))
        return -EPERM;
    if (len == 0)
        return 0;
    return bs->drv->pwrite_zeroes(bs, off, len, flags);
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    return bs->drv->getlength(bs);
}

int bdrv_truncate(BlockDriverState *bs, uint64_t len)
{
    if (!(bs->flags & BDRV_O_RDWR))
        return -EPERM;
    if (!bs->drv->truncate)
        return -ENOTSUP;
    return bs->drv->truncate(bs, len);
}

int bdrv_block_status(BlockDriverState *bs, uint64_t off, uint64_t len,
                      uint64_t *pnum, uint64_t *host_off)
{
    *host_off = 0;
    if (!bs->drv->block_status) {
        *pnum = len;
        return BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
    }
    return bs->drv->block_status(bs, off, len, pnum, host_off);
}

int bdrv_read_backing(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    int64_t blen = bs->backing ? bdrv_getlength(bs->backing) : 0;
    size_t n = 0;
    int ret = 0;

    if (blen < 0)
        return (int)blen;
    if (off < (uint64_t)blen)
        n = MIN(q->size, (uint64_t)blen - off);
    if (n) {
        BlkIov part;
        blkiov_slice(&part, q, 0, n);
        ret = bdrv_preadv(bs->backing, off, &part);
        blkiov_free(&part);
    }
    if (n < q->size)
        blkiov_memset(q, n, 0, q->size - n);
    return ret;
}

/* ---- opening ---- */

BlockDriverState *bdrv_open_protocol(const char *filename, int flags, GError **errp)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = &bdrv_file;
    bs->filename = g_strdup(filename);
    bs->flags = flags;
    g_mutex_init(&bs->lock);
    if (!bs->drv->open(bs, flags, errp)) {
        g_mutex_clear(&bs->lock);
        g_free(bs->filename);
        g_free(bs);
        return NULL;
    }
    return bs;
}

static BlockDriverState *bdrv_open_node(const char *filename, const char *fmt, int flags,
                                        int depth, GError **errp)
{
    BlockDriverState *proto, *bs;
    const BlockDriver *drv;
    uint8_t head[512];

    proto = bdrv_open_protocol(filename, flags, errp);
    if (!proto)
        return NULL;
    if (!fmt) {
        int64_t len = bdrv_getlength(proto);
        memset(head, 0, sizeof(head));
        if (len > 0 && bdrv_pread(proto, 0, head, MIN((int64_t)sizeof(head), len)) < 0) {
            kestrel_set_error(errp, "Could not read '%s' to detect its format", filename);
            bdrv_close(proto);
            return NULL;
        }
        fmt = bdrv_probe_format(head, len > 0 ? MIN((int64_t)sizeof(head), len) : 0);
    }
    drv = bdrv_find_format(fmt);
    if (!drv) {
        kestrel_set_error(errp, "'%s': unknown image format '%s' (use raw or qcow2)",
                          filename, fmt);
        bdrv_close(proto);
        return NULL;
    }
    bs = g_new0(BlockDriverState, 1);
    bs->drv = drv;
    bs->filename = g_strdup(filename);
    bs->flags = flags;
    bs->file = proto;
    bs->chain_depth = depth;
    g_mutex_init(&bs->lock);
    if (!drv->open(bs, flags, errp)) {
        bdrv_close(bs);
        return NULL;
    }
    return bs;
}

BlockDriverState *bdrv_open(const char *filename, const char *fmt, int flags, GError **errp)
{
    return bdrv_open_node(filename, fmt, flags, 0, errp);
}

char *bdrv_resolve_backing(const char *overlay, const char *backing)
{
    if (g_path_is_absolute(backing))
        return g_strdup(backing);
    g_autofree char *dir = g_path_get_dirname(overlay);
    if (!strcmp(dir, "."))
        return g_strdup(backing);
    return g_build_filename(dir, backing, NULL);
}

bool bdrv_open_backing(BlockDriverState *bs, GError **errp)
{
    int flags;
    char real_self[PATH_MAX], real_back[PATH_MAX];

    if (!bs->backing_filename || (bs->flags & BDRV_O_NO_BACKING))
        return true;
    g_free(bs->backing_full);
    bs->backing_full = bdrv_resolve_backing(bs->filename, bs->backing_filename);
    if (bs->chain_depth + 1 >= BACKING_CHAIN_MAX) {
        kestrel_set_error(errp, "'%s': backing chain longer than %d images (a loop?)",
                          bs->filename, BACKING_CHAIN_MAX);
        return false;
    }
    if (realpath(bs->filename, real_self) && realpath(bs->backing_full, real_back) &&
        !strcmp(real_self, real_back)) {
        kestrel_set_error(errp, "'%s': the image is its own backing file", bs->filename);
        return false;
    }
    /* Backing files are read-only; they keep the cache/lock settings of the top. */
    flags = (bs->flags & ~(BDRV_O_RDWR | BDRV_O_UNMAP)) | BDRV_O_BACKING;
    GError *err = NULL;
    bs->backing = bdrv_open_node(bs->backing_full, bs->backing_format, flags,
                                 bs->chain_depth + 1, &err);
    if (!bs->backing) {
        kestrel_set_error(errp, "Could not open backing file of '%s': %s", bs->filename,
                          err->message);
        g_error_free(err);
        return false;
    }
    return true;
}

void bdrv_close(BlockDriverState *bs)
{
    if (!bs)
        return;
    if (bs->drv)
        bs->drv->close(bs);
    bdrv_close(bs->backing);
    bdrv_close(bs->file);
    g_mutex_clear(&bs->lock);
    g_free(bs->filename);
    g_free(bs->backing_filename);
    g_free(bs->backing_full);
    g_free(bs->backing_format);
    g_free(bs);
}

/* ---- -drive options ---- */

void blk_options_init(BlockOptions *o)
{
    memset(o, 0, sizeof(*o));
    o->cache = BLK_CACHE_WRITEBACK;
    o->aio = BLK_AIO_DEFAULT;
    o->locking = BLK_LOCKING_AUTO;
}

bool blk_options_parse(BlockOptions *o, KOpts *opts, GError **errp)
{
    const char *v;

    if ((v = kopts_get(opts, "format"))) {
        if (!bdrv_find_format(v)) {
            kestrel_set_error(errp, "format=%s: unknown image format (use raw or qcow2)", v);
            return false;
        }
        o->format = v;
    }
    if ((v = kopts_get(opts, "cache"))) {
        static const char *const names[] = {
            [BLK_CACHE_WRITEBACK] = "writeback", [BLK_CACHE_NONE] = "none",
            [BLK_CACHE_WRITETHROUGH] = "writethrough", [BLK_CACHE_DIRECTSYNC] = "directsync",
            [BLK_CACHE_UNSAFE] = "unsafe",
        };
        size_t i;
        for (i = 0; i < ARRAY_LEN(names); i++)
            if (!strcmp(v, names[i]))
                break;
        if (i == ARRAY_LEN(names)) {
            kestrel_set_error(errp, "cache=%s: invalid cache mode (use writeback, none, "
                              "writethrough, directsync or unsafe)", v);
            return false;
        }
        o->cache = i;
    }
    if ((v = kopts_get(opts, "aio"))) {
        if (!strcmp(v, "threads")) {
            o->aio = BLK_AIO_THREADS;
        } else if (!strcmp(v, "io_uring")) {
            o->aio = BLK_AIO_IO_URING;
        } else {
            kestrel_set_error(errp, "aio=%s: invalid AIO mode (use threads or io_uring)", v);
            return false;
        }
    }
    if (!kopts_get_bool(opts, "readonly", false, &o->read_only, errp))
        return false;
    if ((v = kopts_get(opts, "discard"))) {
        if (!strcmp(v, "unmap") || !strcmp(v, "on")) {
            o->discard_unmap = true;
        } else if (!strcmp(v, "ignore") || !strcmp(v, "off")) {
            o->discard_unmap = false;
        } else {
            kestrel_set_error(errp, "discard=%s: invalid value (use ignore or unmap)", v);
            return false;
        }
    }
    const char *lk = kopts_get(opts, "locking");
    const char *flk = kopts_get(opts, "file.locking");
    if (flk)
        lk = flk;
    if (lk) {
        bool b;
        if (!strcmp(lk, "auto")) {
            o->locking = BLK_LOCKING_AUTO;
        } else if (parse_bool(lk, &b)) {
            o->locking = b ? BLK_LOCKING_ON : BLK_LOCKING_OFF;
        } else {
            kestrel_set_error(errp, "locking=%s: invalid value (use auto, on or off)", lk);
            return false;
        }
    }
    return true;
}

/* ---- BlockBackend ---- */

typedef struct BlkRing BlkRing;

struct BlockBackend {
    BlockDriverState *bs;
    char *filename;
    uint64_t size;
    bool read_only;
    bool writethrough;
    bool discard;
    unsigned in_flight;
    BlkRing *ring;                  /* aio=io_uring path (raw over a host file), or NULL */
};

static void blk_ring_setup(BlockBackend *blk);

static int blk_flags(const BlockOptions *o)
{
    int flags = 0;

    if (!o->read_only && !o->force_share)
        flags |= BDRV_O_RDWR;
    if (o->cache == BLK_CACHE_NONE || o->cache == BLK_CACHE_DIRECTSYNC)
        flags |= BDRV_O_NOCACHE;
    if (o->cache == BLK_CACHE_UNSAFE)
        flags |= BDRV_O_NO_FLUSH;
    if (o->discard_unmap)
        flags |= BDRV_O_UNMAP;
    if (o->locking == BLK_LOCKING_OFF)
        flags |= BDRV_O_NO_LOCK;
    if (o->force_share)
        flags |= BDRV_O_SHARE_ALL;
    if (o->no_backing)
        flags |= BDRV_O_NO_BACKING;
    return flags;
}

/* -snapshot: a temporary qcow2 on top of the image, deleted once open. */
static BlockDriverState *blk_open_snapshot(const char *filename, const BlockOptions *o,
                                           int flags, GError **errp)
{
    BlockDriverState *base, *bs;
    char real[PATH_MAX];
    g_autofree char *tmp = NULL;
    int fd;

    base = bdrv_open(filename, o->format, (flags & ~BDRV_O_RDWR) | BDRV_O_NO_BACKING, errp);
    if (!base)
        return NULL;
    Qcow2CreateOptions co = {
        .size = bdrv_getlength(base),
        .backing_fmt = base->drv->name,
    };
    if (!realpath(filename, real)) {
        kestrel_set_error(errp, "'%s': %s", filename, g_strerror(errno));
        bdrv_close(base);
        return NULL;
    }
    co.backing_file = real;
    fd = g_file_open_tmp("kestrel-snapshot-XXXXXX.qcow2", &tmp, errp);
    if (fd < 0) {
        bdrv_close(base);
        return NULL;
    }
    close(fd);
    bool ok = qcow2_create(tmp, &co, errp);
    bdrv_close(base);
    if (!ok) {
        unlink(tmp);
        return NULL;
    }
    bs = bdrv_open(tmp, "qcow2", flags | BDRV_O_RDWR, errp);
    unlink(tmp);
    return bs;
}

BlockBackend *blk_open(const char *filename, const BlockOptions *opts, GError **errp)
{
    BlockOptions defaults;
    BlockDriverState *bs;
    BlockBackend *blk;

    if (!opts) {
        blk_options_init(&defaults);
        opts = &defaults;
    }
    /*
     * Like QEMU, an explicit aio=io_uring that cannot be honoured (not built
     * in, or the kernel/seccomp refuses io_uring_setup) is an error, not a
     * silent fallback.  With no aio= the ring is used where the kernel allows
     * it and the thread pool otherwise (issue 6; bench/disk measured reads
     * and O_DIRECT writes faster on the ring, page-cache writes about even).
     */
    bool use_ring = opts->aio == BLK_AIO_IO_URING;
    if (use_ring && !aio_uring_init(errp))
        return NULL;
    if (opts->aio == BLK_AIO_DEFAULT) {
        GError *ring_err = NULL;
        use_ring = aio_uring_init(&ring_err);
        g_clear_error(&ring_err);
    }
    int flags = blk_flags(opts);
    if (opts->snapshot)
        bs = blk_open_snapshot(filename, opts, flags, errp);
    else
        bs = bdrv_open(filename, opts->format, flags, errp);
    if (!bs)
        return NULL;
    int64_t len = bdrv_getlength(bs);
    if (len < 0) {
        kestrel_set_error(errp, "'%s': cannot get the image size: %s", filename,
                          g_strerror((int)-len));
        bdrv_close(bs);
        return NULL;
    }
    blk = g_new0(BlockBackend, 1);
    blk->bs = bs;
    blk->filename = g_strdup(filename);
    blk->size = len;
    blk->read_only = !(flags & BDRV_O_RDWR);
    blk->writethrough = opts->cache == BLK_CACHE_WRITETHROUGH ||
                        opts->cache == BLK_CACHE_DIRECTSYNC;
    blk->discard = opts->discard_unmap;
    if (use_ring)
        blk_ring_setup(blk);
    return blk;
}

bool blk_uses_io_uring(const BlockBackend *blk)
{
    return blk->ring != NULL;
}

void blk_close(BlockBackend *blk)
{
    if (!blk)
        return;
    blk_drain(blk);
    if (!blk->read_only)
        bdrv_flush(blk->bs);
    bdrv_close(blk->bs);
    g_free(blk->ring);
    g_free(blk->filename);
    g_free(blk);
}

int64_t blk_getlength(BlockBackend *blk)
{
    return blk->size;
}

bool blk_is_read_only(BlockBackend *blk)
{
    return blk->read_only;
}

const char *blk_format_name(BlockBackend *blk)
{
    return blk->bs->drv->name;
}

const char *blk_filename(BlockBackend *blk)
{
    return blk->filename;
}

enum { REQ_READ, REQ_WRITE, REQ_FLUSH, REQ_DISCARD, REQ_ZEROES };

/* One request, on whichever thread: checks, serialisation, write-through. */
static int blk_do_request(BlockBackend *blk, int type, uint64_t off, BlkIov *q,
                          uint64_t len, unsigned flags)
{
    BlockDriverState *bs = blk->bs;
    int ret;

    if (type != REQ_FLUSH) {
        if (off > blk->size || len > blk->size - off)
            return -EIO;
        if (type != REQ_READ && blk->read_only)
            return -EPERM;
    }
    if (bs->drv->serialize)
        g_mutex_lock(&bs->lock);
    switch (type) {
    case REQ_READ:
        ret = bdrv_preadv(bs, off, q);
        break;
    case REQ_WRITE:
        ret = bdrv_pwritev(bs, off, q);
        break;
    case REQ_FLUSH:
        ret = bdrv_flush(bs);
        break;
    case REQ_DISCARD:
        ret = blk->discard ? bdrv_pdiscard(bs, off, len) : 0;
        break;
    default:
        if (!blk->discard)
            flags &= ~BLK_ZERO_MAY_UNMAP;
        ret = bdrv_pwrite_zeroes(bs, off, len, flags);
        break;
    }
    if (ret == 0 && blk->writethrough && type != REQ_READ && type != REQ_FLUSH)
        ret = bdrv_flush(bs);
    if (bs->drv->serialize)
        g_mutex_unlock(&bs->lock);
    return ret;
}

typedef struct BlkRequest {
    BlockAioJob job;                /* first: the thread pool hands back &job */
    BlockBackend *blk;
    int type;
    uint64_t off, len;
    unsigned flags;
    BlkIov q;
    BlockCompletionFunc *cb;
    void *opaque;
    /* aio=io_uring only */
    AioUringOp op;
    int cls;                        /* RING_CLS_*: what it must not overlap with */
    bool on_ring;                   /* false: the thread pool runs it */
    bool syncing;                   /* the op in flight is its fdatasync */
    size_t xfer;                    /* bytes a short ring transfer did */
    BlkIov rest;                    /* the rest of a short transfer */
} BlkRequest;

static void blk_ring_route(BlkRequest *r);

static int blk_request_run(BlockAioJob *job)
{
    BlkRequest *r = (BlkRequest *)job;
    return blk_do_request(r->blk, r->type, r->off, &r->q, r->len, r->flags);
}

static void blk_request_done(void *opaque, int ret)
{
    BlkRequest *r = opaque;
    BlockBackend *blk = r->blk;

    r->cb(r->opaque, ret);
    __atomic_sub_fetch(&blk->in_flight, 1, __ATOMIC_SEQ_CST);
    blkiov_free(&r->q);
    g_free(r);
}

static void blk_submit(BlockBackend *blk, int type, uint64_t off, const struct iovec *iov,
                       int iovcnt, uint64_t len, unsigned flags,
                       BlockCompletionFunc *cb, void *opaque)
{
    BlkRequest *r = g_new0(BlkRequest, 1);

    r->job.run = blk_request_run;
    r->job.done = blk_request_done;
    r->job.opaque = r;
    r->blk = blk;
    r->type = type;
    r->off = off;
    r->len = len;
    r->flags = flags;
    r->cb = cb;
    r->opaque = opaque;
    if (iov) {
        r->q.iov = g_memdup2(iov, sizeof(*iov) * (iovcnt ? iovcnt : 1));
        r->q.niov = iovcnt;
        r->q.owned = true;
        for (int i = 0; i < iovcnt; i++)
            r->q.size += iov[i].iov_len;
        r->len = r->q.size;
    }
    __atomic_add_fetch(&blk->in_flight, 1, __ATOMIC_SEQ_CST);
    if (blk->ring)
        blk_ring_route(r);
    else
        aio_threads_submit(&r->job);
}

void blk_aio_preadv(BlockBackend *blk, uint64_t offset, const struct iovec *iov, int iovcnt,
                    BlockCompletionFunc *cb, void *opaque)
{
    blk_submit(blk, REQ_READ, offset, iov, iovcnt, 0, 0, cb, opaque);
}

void blk_aio_pwritev(BlockBackend *blk, uint64_t offset, const struct iovec *iov, int iovcnt,
                     BlockCompletionFunc *cb, void *opaque)
{
    blk_submit(blk, REQ_WRITE, offset, iov, iovcnt, 0, 0, cb, opaque);
}

void blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb, void *opaque)
{
    blk_submit(blk, REQ_FLUSH, 0, NULL, 0, 0, 0, cb, opaque);
}

void blk_aio_pdiscard(BlockBackend *blk, uint64_t offset, uint64_t bytes,
                      BlockCompletionFunc *cb, void *opaque)
{
    blk_submit(blk, REQ_DISCARD, offset, NULL, 0, bytes, 0, cb, opaque);
}

void blk_aio_pwrite_zeroes(BlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags,
                           BlockCompletionFunc *cb, void *opaque)
{
    blk_submit(blk, REQ_ZEROES, offset, NULL, 0, bytes, flags, cb, opaque);
}

int blk_pread(BlockBackend *blk, uint64_t offset, void *buf, size_t bytes)
{
    struct iovec one;
    BlkIov q;

    blkiov_init_buf(&q, &one, buf, bytes);
    return blk_do_request(blk, REQ_READ, offset, &q, bytes, 0);
}

int blk_pwrite(BlockBackend *blk, uint64_t offset, const void *buf, size_t bytes)
{
    struct iovec one;
    BlkIov q;

    blkiov_init_buf(&q, &one, (void *)buf, bytes);
    return blk_do_request(blk, REQ_WRITE, offset, &q, bytes, 0);
}

int blk_flush(BlockBackend *blk)
{
    return blk_do_request(blk, REQ_FLUSH, 0, NULL, 0, 0);
}

int blk_pdiscard(BlockBackend *blk, uint64_t offset, uint64_t bytes)
{
    return blk_do_request(blk, REQ_DISCARD, offset, NULL, bytes, 0);
}

int blk_pwrite_zeroes(BlockBackend *blk, uint64_t offset, uint64_t bytes, unsigned flags)
{
    return blk_do_request(blk, REQ_ZEROES, offset, NULL, bytes, flags);
}

void blk_drain(BlockBackend *blk)
{
    while (__atomic_load_n(&blk->in_flight, __ATOMIC_SEQ_CST) > 0)
        g_main_context_iteration(main_loop_context(), TRUE);
}

unsigned blk_in_flight(BlockBackend *blk)
{
    return __atomic_load_n(&blk->in_flight, __ATOMIC_SEQ_CST);
}

BlockDriverState *blk_bs(BlockBackend *blk)
{
    return blk->bs;
}

/* ---- aio=io_uring ---- */

/*
 * With aio=io_uring a raw image directly on a host file sends its requests
 * to the kernel through aio-uring.c.  Everything else (qcow2, whose driver is
 * synchronous code around metadata caches; -snapshot overlays) keeps running
 * on the thread pool, and so does any request the ring cannot take as it is:
 *  - out of range or read-only: the thread path's checks answer -EIO/-EPERM;
 *  - O_DIRECT with a buffer, offset or length off the block size: file-posix
 *    bounces it (a read-modify-write for writes);
 *  - write-zeroes on a block device or on a filesystem that refused
 *    FALLOC_FL_ZERO_RANGE: the driver writes a zero buffer instead;
 *  - the rest of a short transfer (the end of a file whose size is not a
 *    multiple of 512 bytes reads as zeros);
 *  - a flush after an earlier flush failed (stays -EIO, file-posix rule).
 * Write-through (cache=writethrough/directsync) chains an fdatasync after
 * the write, as blk_do_request does.
 *
 * Ordering: a bounced O_DIRECT write reads and rewrites whole blocks; a ring
 * write to the neighbouring bytes of such a block landing between its read
 * and its write would be undone.  file-posix's rmw lock keeps thread-pool
 * writes out of that window, ring writes cannot take it, so here a bounced
 * write waits until no ring write is in flight and ring writes arriving
 * meanwhile queue behind it (FIFO).  Reads and flushes never wait; buffered
 * files never bounce, so their requests never wait.
 */
enum { RING_CLS_NONE, RING_CLS_WRITE, RING_CLS_RMW };

struct BlkRing {
    BlockDriverState *file;         /* the "file" node under raw */
    int fd;
    uint32_t align;                 /* O_DIRECT block size, 1 when buffered */
    bool regular;
    bool no_zero_range;             /* FALLOC_FL_ZERO_RANGE refused: zeroes via threads */
    unsigned ring_writes;           /* RING_CLS_WRITE requests started, not finished */
    unsigned rmw_writes;            /* RING_CLS_RMW likewise */
    GQueue waiting;                 /* held back by the ordering rule, FIFO */
    uint64_t ops;                   /* CQEs seen, for tests */
};

static void blk_ring_setup(BlockBackend *blk)
{
    BlockDriverState *bs = blk->bs;
    struct stat st;

    if (bs->drv != &bdrv_raw || !bs->file || bs->file->drv != &bdrv_file)
        return;                     /* qcow2 & co.: the thread pool, see above */
    BlkRing *g = g_new0(BlkRing, 1);
    g->file = bs->file;
    g->fd = file_posix_fd(bs->file, &g->align);
    g->regular = fstat(g->fd, &st) == 0 && S_ISREG(st.st_mode);
    g_queue_init(&g->waiting);
    blk->ring = g;
}

uint64_t blk_ring_ops(BlockBackend *blk)
{
    return blk->ring ? blk->ring->ops : 0;
}

static bool blk_ring_may_start(BlkRing *g, BlkRequest *r)
{
    if (r->cls == RING_CLS_WRITE)
        return g->rmw_writes == 0;
    if (r->cls == RING_CLS_RMW)
        return g->ring_writes == 0;
    return true;
}

static void blk_ring_start(BlkRequest *r);

static void blk_ring_pump(BlkRing *g)
{
    BlkRequest *r;

    while ((r = g_queue_peek_head(&g->waiting)) && blk_ring_may_start(g, r)) {
        g_queue_pop_head(&g->waiting);
        blk_ring_start(r);
    }
}

static void blk_ring_finish(BlkRequest *r, int ret)
{
    BlkRing *g = r->blk->ring;

    if (r->cls == RING_CLS_WRITE)
        g->ring_writes--;
    else if (r->cls == RING_CLS_RMW)
        g->rmw_writes--;
    r->cls = RING_CLS_NONE;
    blkiov_free(&r->rest);
    /* Start what waited before the callback runs: it may close the backend. */
    blk_ring_pump(g);
    blk_request_done(r, ret);
}

static void blk_ring_thread_done(void *opaque, int ret)
{
    blk_ring_finish(opaque, ret);
}

/* The rest of a short ring transfer, on a worker thread. */
static int blk_ring_rest_run(BlockAioJob *job)
{
    BlkRequest *r = (BlkRequest *)job;
    BlockDriverState *bs = r->blk->bs;
    int ret;

    if (r->type == REQ_READ)
        return bdrv_preadv(bs, r->off + r->xfer, &r->rest);
    ret = bdrv_pwritev(bs, r->off + r->xfer, &r->rest);
    if (ret == 0 && r->blk->writethrough)
        ret = bdrv_flush(bs);
    return ret;
}

static void blk_ring_to_threads(BlkRequest *r, BlockJobFunc *run)
{
    r->job.run = run;
    r->job.done = blk_ring_thread_done;
    aio_threads_submit(&r->job);
}

static void blk_ring_op_done(AioUringOp *op, int res);

static void blk_ring_issue(BlkRequest *r)
{
    BlkRing *g = r->blk->ring;
    AioUringOp *op = &r->op;

    memset(op, 0, sizeof(*op));
    op->fd = g->fd;
    op->done = blk_ring_op_done;
    op->opcode = AIO_URING_NOP;
    if (r->syncing) {
        op->opcode = AIO_URING_FDATASYNC;
    } else {
        switch (r->type) {
        case REQ_READ:
        case REQ_WRITE:
            op->opcode = r->type == REQ_READ ? AIO_URING_READV : AIO_URING_WRITEV;
            op->iov = r->q.iov;
            op->niov = r->q.niov;
            op->offset = r->off;
            break;
        case REQ_DISCARD:
            /* Advisory and off unless discard=unmap: then a hole, size kept. */
            if (r->blk->discard && r->len) {
                op->opcode = AIO_URING_FALLOCATE;
                op->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
            }
            break;
        case REQ_ZEROES:
            if (r->len)
                op->opcode = AIO_URING_FALLOCATE;
            op->mode = FALLOC_FL_ZERO_RANGE;
            break;
        default:
            break;                  /* a flush with nothing to sync: NOP */
        }
        op->offset = r->off;
        op->len = r->len;
    }
    aio_uring_submit(op);
}

static void blk_ring_start(BlkRequest *r)
{
    BlkRing *g = r->blk->ring;

    if (r->cls == RING_CLS_WRITE)
        g->ring_writes++;
    else if (r->cls == RING_CLS_RMW)
        g->rmw_writes++;
    if (!r->on_ring) {
        blk_ring_to_threads(r, blk_request_run);
        return;
    }
    /* bdrv_flush: nothing to sync on a read-only node or with cache=unsafe. */
    if (r->type == REQ_FLUSH && !r->blk->read_only && file_posix_flush_begin(g->file) > 0)
        r->syncing = true;
    blk_ring_issue(r);
}

/* A data step finished: write-through syncs before completing. */
static void blk_ring_written(BlkRequest *r)
{
    if (r->type != REQ_READ && r->blk->writethrough) {
        int b = file_posix_flush_begin(r->blk->ring->file);
        if (b > 0) {
            r->syncing = true;
            blk_ring_issue(r);
            return;
        }
        blk_ring_finish(r, b);
        return;
    }
    blk_ring_finish(r, 0);
}

static void blk_ring_op_done(AioUringOp *op, int res)
{
    BlkRequest *r = (BlkRequest *)((char *)op - offsetof(BlkRequest, op));
    BlkRing *g = r->blk->ring;

    g->ops++;
    if (res == -EINTR || res == -EAGAIN) {
        blk_ring_issue(r);
        return;
    }
    if (r->syncing) {
        blk_ring_finish(r, file_posix_flush_end(g->file, res));
        return;
    }
    switch (r->type) {
    case REQ_READ:
    case REQ_WRITE:
        if (res < 0) {
            blk_ring_finish(r, res);
            return;
        }
        if ((size_t)res < r->q.size) {
            /* Short: EOF (reads as zeros) or a full disk; the driver finishes it. */
            r->xfer = res;
            blkiov_slice(&r->rest, &r->q, res, r->q.size - res);
            blk_ring_to_threads(r, blk_ring_rest_run);
            return;
        }
        break;
    case REQ_FLUSH:
        blk_ring_finish(r, res);
        return;
    case REQ_DISCARD:
        /* Like file_pdiscard: a filesystem that cannot punch holes keeps the data. */
        if (res == -EOPNOTSUPP || res == -ENOSYS || res == -EINVAL)
            res = 0;
        if (res < 0) {
            blk_ring_finish(r, res);
            return;
        }
        break;
    case REQ_ZEROES:
        if (res < 0) {
            /* The driver retries and falls back to a zero buffer. */
            if (res == -EOPNOTSUPP || res == -ENOSYS || res == -EINVAL)
                g->no_zero_range = true;
            blk_ring_to_threads(r, blk_request_run);
            return;
        }
        break;
    }
    blk_ring_written(r);
}

static void blk_ring_route(BlkRequest *r)
{
    BlockBackend *blk = r->blk;
    BlkRing *g = blk->ring;
    bool writes = r->type == REQ_WRITE || r->type == REQ_ZEROES || r->type == REQ_DISCARD;

    r->on_ring = r->type == REQ_FLUSH ||
                 (r->off <= blk->size && r->len <= blk->size - r->off &&
                  (!writes || !blk->read_only));
    switch (r->type) {
    case REQ_READ:
    case REQ_WRITE:
        if (r->q.niov < 1 || r->q.niov > IOV_MAX || !blk_iov_aligned(&r->q, r->off, g->align))
            r->on_ring = false;
        break;
    case REQ_ZEROES:
        if (!g->regular || g->no_zero_range)
            r->on_ring = false;
        break;
    case REQ_FLUSH:
        if (!blk->read_only && file_posix_flush_begin(g->file) < 0)
            r->on_ring = false;
        break;
    }
    r->cls = RING_CLS_NONE;
    if (writes)
        r->cls = r->on_ring ? RING_CLS_WRITE : g->align > 1 ? RING_CLS_RMW : RING_CLS_NONE;
    if (r->cls != RING_CLS_NONE && (!g_queue_is_empty(&g->waiting) || !blk_ring_may_start(g, r)))
        g_queue_push_tail(&g->waiting, r);
    else
        blk_ring_start(r);
}

/*
 * Block layer core: the format driver table and probing, opening a node with
 * its protocol child and backing chain, the -drive option keys, and the
 * BlockBackend that devices use (asynchronous requests via aio-threads.c,
 * synchronous wrappers, range checks, write-through, -snapshot overlays).
 */
#include "block/block-int.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/opts.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
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

static bool buf_is_zero(const uint8_t *p, size_t n)
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

struct BlockBackend {
    BlockDriverState *bs;
    char *filename;
    uint64_t size;
    bool read_only;
    bool writethrough;
    bool discard;
    unsigned in_flight;
};

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
    static bool warned_uring;

    if (!opts) {
        blk_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->aio == BLK_AIO_IO_URING && !warned_uring) {
        warned_uring = true;
        error_report("aio=io_uring: not available in this build yet, using aio=threads");
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
    return blk;
}

void blk_close(BlockBackend *blk)
{
    if (!blk)
        return;
    blk_drain(blk);
    if (!blk->read_only)
        bdrv_flush(blk->bs);
    bdrv_close(blk->bs);
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
    BlockAioJob job;
    BlockBackend *blk;
    int type;
    uint64_t off, len;
    unsigned flags;
    BlkIov q;
    BlockCompletionFunc *cb;
    void *opaque;
} BlkRequest;

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

/*
 * The host-file protocol ("file"): byte-granular preadv/pwritev on a regular
 * file or block device, fdatasync for flushes, fallocate for discard and
 * write-zeroes, QEMU-compatible OFD image locks.
 *
 * cache=none opens with O_DIRECT, which needs buffer, offset and length
 * aligned to the device's logical block size (open(2) NOTES); requests that
 * are not are bounced through an aligned buffer, with a read-modify-write
 * for partial blocks.  Aligned requests run concurrently; a RMW takes the
 * bounce lock exclusively so no aligned write can slip between its read and
 * its write.
 *
 * Locking follows QEMU's file-posix (fact sheet §8): one byte per permission,
 * shared (F_RDLCK) OFD locks at 100+i ("I hold permission i") and 200+i
 * ("I do not share permission i"); conflicts are found with F_OFD_GETLK.
 */
#include "block/block-int.h"
#include "kestrel/log.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Permission bits and their lock bytes (QEMU include/block/block-common.h). */
enum {
    PERM_CONSISTENT_READ = 1u << 0,
    PERM_WRITE           = 1u << 1,
    PERM_WRITE_UNCHANGED = 1u << 2,
    PERM_RESIZE          = 1u << 3,
    PERM_ALL             = 0xf,
};
#define LOCK_PERM_BASE   100
#define LOCK_SHARED_BASE 200
#define PERM_COUNT       4

static const char *const perm_names[PERM_COUNT] = {
    "consistent read", "write", "write unchanged", "resize",
};

typedef struct FileState {
    int fd;
    bool direct;
    bool no_flush;
    bool unmap;
    bool flush_failed;          /* page cache no longer trustworthy (fsync(2) errors) */
    uint32_t align;             /* O_DIRECT alignment, 1 when buffered */
    GRWLock rmw;
    unsigned perm, shared;
    bool locked;
} FileState;

static bool lock_byte(int fd, int byte, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* Does another open file description hold a lock on this byte? */
static bool byte_is_locked(int fd, int byte)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return false;
    return fl.l_type != F_UNLCK;
}

static void file_unlock_all(FileState *s)
{
    for (int i = 0; i < PERM_COUNT; i++) {
        lock_byte(s->fd, LOCK_PERM_BASE + i, F_UNLCK);
        lock_byte(s->fd, LOCK_SHARED_BASE + i, F_UNLCK);
    }
    s->locked = false;
}

/* Take our bytes first, then look for conflicts, so two racing openers see each other. */
static bool file_lock(BlockDriverState *bs, FileState *s, GError **errp)
{
    for (int i = 0; i < PERM_COUNT; i++) {
        if ((s->perm & (1u << i)) && !lock_byte(s->fd, LOCK_PERM_BASE + i, F_RDLCK))
            goto lock_failed;
        if (!(s->shared & (1u << i)) && !lock_byte(s->fd, LOCK_SHARED_BASE + i, F_RDLCK))
            goto lock_failed;
    }
    s->locked = true;
    for (int i = 0; i < PERM_COUNT; i++) {
        if ((s->perm & (1u << i)) && byte_is_locked(s->fd, LOCK_SHARED_BASE + i)) {
            kestrel_set_error(errp, "Could not open '%s': Failed to get \"%s\" lock; "
                              "Is another process using the image [%s]? (locking=off overrides)",
                              bs->filename, perm_names[i], bs->filename);
            file_unlock_all(s);
            return false;
        }
        if (!(s->shared & (1u << i)) && byte_is_locked(s->fd, LOCK_PERM_BASE + i)) {
            kestrel_set_error(errp, "Could not open '%s': Failed to get shared \"%s\" lock; "
                              "Is another process using the image [%s]? (locking=off overrides)",
                              bs->filename, perm_names[i], bs->filename);
            file_unlock_all(s);
            return false;
        }
    }
    return true;

lock_failed:
    if (errno == EINVAL && !(bs->flags & BDRV_O_NO_LOCK)) {
        /* No OFD locks on this filesystem/kernel: run unlocked, like locking=auto. */
        file_unlock_all(s);
        return true;
    }
    kestrel_set_error(errp, "Could not open '%s': failed to lock the image: %s",
                      bs->filename, g_strerror(errno));
    file_unlock_all(s);
    return false;
}

static uint32_t probe_direct_align(int fd)
{
    void *buf;
    uint32_t align = 4096;

    if (posix_memalign(&buf, 4096, 4096))
        return 4096;
    /* The smallest size O_DIRECT accepts (a read past EOF still validates alignment). */
    for (uint32_t a = 512; a < 4096; a <<= 1) {
        if (pread(fd, buf, a, 0) >= 0) {
            align = a;
            break;
        }
    }
    free(buf);
    return align;
}

static bool file_open(BlockDriverState *bs, int flags, GError **errp)
{
    FileState *s = g_new0(FileState, 1);
    int oflags = O_CLOEXEC | ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY);

    if (flags & BDRV_O_NOCACHE)
        oflags |= O_DIRECT;
    s->fd = open(bs->filename, oflags);
    if (s->fd < 0) {
        int err = errno;
        if (err == EINVAL && (flags & BDRV_O_NOCACHE))
            kestrel_set_error(errp, "Could not open '%s': the filesystem does not support "
                              "O_DIRECT (cache=none); use cache=writeback", bs->filename);
        else
            kestrel_set_error(errp, "Could not open '%s': %s", bs->filename, g_strerror(err));
        g_free(s);
        return false;
    }
    s->direct = flags & BDRV_O_NOCACHE;
    s->no_flush = flags & BDRV_O_NO_FLUSH;
    s->unmap = flags & BDRV_O_UNMAP;
    s->align = s->direct ? probe_direct_align(s->fd) : 1;
    g_rw_lock_init(&s->rmw);

    if (flags & BDRV_O_SHARE_ALL) {
        s->perm = 0;
        s->shared = PERM_ALL;
    } else {
        s->perm = PERM_CONSISTENT_READ | ((flags & BDRV_O_RDWR) ? PERM_WRITE | PERM_RESIZE : 0);
        s->shared = PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED;
    }
    bs->opaque = s;
    if (!(flags & BDRV_O_NO_LOCK) && !file_lock(bs, s, errp)) {
        close(s->fd);
        g_rw_lock_clear(&s->rmw);
        g_free(s);
        bs->opaque = NULL;
        return false;
    }
    return true;
}

static void file_close(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    if (!s)
        return;
    if (s->locked)
        file_unlock_all(s);
    close(s->fd);
    g_rw_lock_clear(&s->rmw);
    g_free(s);
}

/* Full transfer of an iovec with retries on EINTR and short counts; reads past EOF give zeros. */
static int file_rw_iov(FileState *s, bool write, uint64_t off, const struct iovec *iov, int niov)
{
    struct iovec local[64];
    struct iovec *v = niov <= 64 ? local : g_new(struct iovec, niov);
    int n = niov, ret = 0;

    memcpy(v, iov, niov * sizeof(*v));
    struct iovec *cur = v;
    while (n > 0) {
        if (cur->iov_len == 0) {
            cur++, n--;
            continue;
        }
        ssize_t r = write ? pwritev(s->fd, cur, MIN(n, IOV_MAX), off)
                          : preadv(s->fd, cur, MIN(n, IOV_MAX), off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            break;
        }
        if (r == 0) {
            if (write) {
                ret = -EIO;
                break;
            }
            /* EOF: the rest reads as zeros. */
            for (int i = 0; i < n; i++)
                memset(cur[i].iov_base, 0, cur[i].iov_len);
            break;
        }
        off += r;
        while (r > 0) {
            if ((size_t)r >= cur->iov_len) {
                r -= cur->iov_len;
                cur++, n--;
            } else {
                cur->iov_base = (uint8_t *)cur->iov_base + r;
                cur->iov_len -= r;
                r = 0;
            }
        }
    }
    if (v != local)
        g_free(v);
    return ret;
}

/* O_DIRECT needs offset, length and every buffer aligned (open(2) "O_DIRECT"). */
bool blk_iov_aligned(const BlkIov *q, uint64_t off, uint32_t align)
{
    if ((off | q->size) & (align - 1))
        return false;
    for (int i = 0; i < q->niov; i++)
        if (((uintptr_t)q->iov[i].iov_base | q->iov[i].iov_len) & (align - 1))
            return false;
    return true;
}

static int file_bounce(BlockDriverState *bs, FileState *s, bool write, uint64_t off, BlkIov *q)
{
    uint64_t start = off & ~(uint64_t)(s->align - 1);
    uint64_t end = (off + q->size + s->align - 1) & ~(uint64_t)(s->align - 1);
    size_t len = end - start;
    struct iovec one;
    void *buf;
    int ret;

    if (posix_memalign(&buf, MAX(s->align, 4096), len))
        return -ENOMEM;
    one.iov_base = buf;
    one.iov_len = len;
    if (!write) {
        ret = file_rw_iov(s, false, start, &one, 1);
        if (ret == 0)
            blkiov_from_buf(q, 0, (uint8_t *)buf + (off - start), q->size);
        free(buf);
        return ret;
    }
    g_rw_lock_writer_lock(&s->rmw);
    struct stat st;
    uint64_t old_size = fstat(s->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    ret = file_rw_iov(s, false, start, &one, 1);
    if (ret == 0) {
        blkiov_to_buf(q, 0, (uint8_t *)buf + (off - start), q->size);
        ret = file_rw_iov(s, true, start, &one, 1);
    }
    /* The aligned write may have grown a file whose size is not block aligned. */
    if (ret == 0 && S_ISREG(st.st_mode) && end > old_size && end > off + q->size)
        if (ftruncate(s->fd, MAX(old_size, off + q->size)) < 0)
            ret = -errno;
    g_rw_lock_writer_unlock(&s->rmw);
    free(buf);
    return ret;
}

static int file_preadv(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    FileState *s = bs->opaque;
    int ret;

    if (s->direct && !blk_iov_aligned(q, off, s->align))
        return file_bounce(bs, s, false, off, q);
    g_rw_lock_reader_lock(&s->rmw);
    ret = file_rw_iov(s, false, off, q->iov, q->niov);
    g_rw_lock_reader_unlock(&s->rmw);
    return ret;
}

static int file_pwritev(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    FileState *s = bs->opaque;
    int ret;

    if (s->direct && !blk_iov_aligned(q, off, s->align))
        return file_bounce(bs, s, true, off, q);
    g_rw_lock_reader_lock(&s->rmw);
    ret = file_rw_iov(s, true, off, q->iov, q->niov);
    g_rw_lock_reader_unlock(&s->rmw);
    return ret;
}

int file_posix_fd(BlockDriverState *bs, uint32_t *align)
{
    FileState *s = bs->opaque;

    *align = s->align;
    return s->fd;
}

int file_posix_flush_begin(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    if (s->no_flush)
        return 0;
    /* After a failed fdatasync the kernel may have dropped dirty pages: keep failing. */
    if (s->flush_failed)
        return -EIO;
    return 1;
}

int file_posix_flush_end(BlockDriverState *bs, int ret)
{
    FileState *s = bs->opaque;

    if (ret == -EINVAL)         /* fd that cannot be synced (fdatasync(2) EINVAL) */
        return 0;
    if (ret < 0)
        s->flush_failed = true;
    return ret;
}

static int file_flush(BlockDriverState *bs)
{
    FileState *s = bs->opaque;
    int ret = file_posix_flush_begin(bs);

    if (ret <= 0)
        return ret;
    return file_posix_flush_end(bs, fdatasync(s->fd) < 0 ? -errno : 0);
}

static int file_write_zero_buffer(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    size_t chunk = MIN(len, 1u << 20);
    void *buf;
    int ret = 0;

    if (posix_memalign(&buf, 4096, (chunk + 4095) & ~4095ul))
        return -ENOMEM;
    memset(buf, 0, chunk);
    while (len > 0 && ret == 0) {
        struct iovec one = { buf, MIN(len, chunk) };
        BlkIov q = { &one, 1, one.iov_len, false };
        ret = file_pwritev(bs, off, &q);
        off += one.iov_len;
        len -= one.iov_len;
    }
    free(buf);
    return ret;
}

static int file_pdiscard(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    FileState *s = bs->opaque;

    if (!s->unmap)
        return 0;
    /* Like a write: a bounced write's read-modify-write must not straddle it. */
    g_rw_lock_reader_lock(&s->rmw);
    int ret = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0
              ? -errno : 0;
    g_rw_lock_reader_unlock(&s->rmw);
    /* Discard is advisory: a filesystem without hole punching just keeps the data. */
    if (ret == -EOPNOTSUPP || ret == -ENOSYS || ret == -EINVAL)
        return 0;
    return ret;
}

static int file_pwrite_zeroes(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        /* Reader side of the rmw lock, like a write (see file_bounce). */
        g_rw_lock_reader_lock(&s->rmw);
        bool done = fallocate(s->fd, FALLOC_FL_ZERO_RANGE, off, len) == 0 ||
                    ((flags & BLK_ZERO_MAY_UNMAP) && s->unmap &&
                     off + len <= (uint64_t)st.st_size &&
                     fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0);
        g_rw_lock_reader_unlock(&s->rmw);
        if (done)
            return 0;
    }
    return file_write_zero_buffer(bs, off, len);
}

static int64_t file_getlength(BlockDriverState *bs)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        uint64_t size;
        if (ioctl(s->fd, BLKGETSIZE64, &size) < 0)
            return -errno;
        return size;
    }
    return st.st_size;
}

static int file_truncate(BlockDriverState *bs, uint64_t len)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return (int64_t)len <= file_getlength(bs) ? 0 : -ENOTSUP;
    return ftruncate(s->fd, len) < 0 ? -errno : 0;
}

static int file_block_status(BlockDriverState *bs, uint64_t off, uint64_t len,
                             uint64_t *pnum, uint64_t *host_off)
{
    FileState *s = bs->opaque;
    off_t data = lseek(s->fd, off, SEEK_DATA);

    *host_off = off;
    if (data < 0 || (uint64_t)data > off) {
        /* In a hole: up to the next data (or EOF/len). */
        uint64_t end = data < 0 ? off + len : MIN((uint64_t)data, off + len);
        *pnum = end - off;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED;
    }
    off_t hole = lseek(s->fd, off, SEEK_HOLE);
    uint64_t end = hole < 0 ? off + len : MIN((uint64_t)hole, off + len);
    *pnum = end > off ? end - off : len;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED;
}

const BlockDriver bdrv_file = {
    .name = "file",
    .is_protocol = true,
    .open = file_open,
    .close = file_close,
    .preadv = file_preadv,
    .pwritev = file_pwritev,
    .flush = file_flush,
    .pdiscard = file_pdiscard,
    .pwrite_zeroes = file_pwrite_zeroes,
    .getlength = file_getlength,
    .truncate = file_truncate,
    .block_status = file_block_status,
};

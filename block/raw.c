/*
 * The raw format: the virtual disk is the file, byte for byte.  Every
 * request passes straight to the protocol node below.  Probing gives raw the
 * lowest score, and a file opened with format=raw is never interpreted as
 * anything else (a guest could write a qcow2 header into its own disk).
 */
#include "block/block-int.h"

static int raw_probe(const uint8_t *buf, size_t len)
{
    return 1;
}

static bool raw_open(BlockDriverState *bs, int flags, GError **errp)
{
    return true;
}

static void raw_close(BlockDriverState *bs)
{
}

static int raw_preadv(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    return bdrv_preadv(bs->file, off, q);
}

static int raw_pwritev(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    return bdrv_pwritev(bs->file, off, q);
}

static int raw_flush(BlockDriverState *bs)
{
    return bdrv_flush(bs->file);
}

static int raw_pdiscard(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    return bdrv_pdiscard(bs->file, off, len);
}

static int raw_pwrite_zeroes(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags)
{
    return bdrv_pwrite_zeroes(bs->file, off, len, flags);
}

/* Like QEMU, a file whose size is not a whole number of sectors reads as zero-padded. */
static int64_t raw_getlength(BlockDriverState *bs)
{
    int64_t len = bdrv_getlength(bs->file);
    return len < 0 ? len : (len + 511) & ~(int64_t)511;
}

static int raw_truncate(BlockDriverState *bs, uint64_t len)
{
    return bdrv_truncate(bs->file, len);
}

static int raw_block_status(BlockDriverState *bs, uint64_t off, uint64_t len,
                            uint64_t *pnum, uint64_t *host_off)
{
    return bdrv_block_status(bs->file, off, len, pnum, host_off);
}

const BlockDriver bdrv_raw = {
    .name = "raw",
    .probe = raw_probe,
    .open = raw_open,
    .close = raw_close,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .pdiscard = raw_pdiscard,
    .pwrite_zeroes = raw_pwrite_zeroes,
    .getlength = raw_getlength,
    .truncate = raw_truncate,
    .block_status = raw_block_status,
};

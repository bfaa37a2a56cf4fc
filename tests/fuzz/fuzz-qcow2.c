/*
 * libFuzzer harness for the qcow2 driver: the input is an image file.  It is
 * opened read-only (no backing file: a fuzzed name must not reach host
 * files), read end to end, checked, then opened read-write and written,
 * discarded, flushed, snapshotted (create, apply, delete).  Any crash, sanitizer report or hang is a bug: a
 * malformed image must only ever produce errors.
 *
 * Built and run by tests/slow/fuzz-qcow2.sh (make check-slow) with
 *   clang -fsanitize=fuzzer,address,undefined
 */
#include "block/block-int.h"
#include "kestrel/machine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The harness has no main loop: block completions are not used. */
GMainContext *main_loop_context(void)
{
    return g_main_context_default();
}

static char path[64];

static void fuzz_one_open(int flags)
{
    BlockDriverState *bs = bdrv_open(path, "qcow2", flags | BDRV_O_NO_BACKING | BDRV_O_NO_LOCK | BDRV_O_NO_FLUSH,
                                     NULL);
    if (!bs)
        return;
    uint64_t len = MIN((uint64_t)bdrv_getlength(bs), 32u << 20);
    static uint8_t buf[1 << 20];
    for (uint64_t pos = 0; pos < len; pos += sizeof(buf))
        bdrv_pread(bs, pos, buf, MIN(sizeof(buf), len - pos));
    if (flags & BDRV_O_RDWR) {
        memset(buf, 0x5a, 70000);
        bdrv_pwrite(bs, 1000 % (len + 1), buf, MIN(70000, len > 1000 ? len - 1000 : 0));
        bdrv_pwrite_zeroes(bs, 0, MIN(len, 1u << 20), BLK_ZERO_MAY_UNMAP);
        bdrv_pdiscard(bs, len / 2, len / 4);
        bdrv_flush(bs);
        if (bs->drv->snapshot_create(bs, "fuzz") == 0) {
            bdrv_pwrite(bs, 0, buf, MIN(4096, len));
            bs->drv->snapshot_apply(bs, "fuzz");
            bs->drv->snapshot_delete(bs, "fuzz");
        }
        bs->drv->snapshot_delete(bs, "1");
    } else {
        BlockCheckResult r;
        FILE *devnull = fopen("/dev/null", "w");
        bs->drv->check(bs, &r, 0, devnull);
        fclose(devnull);
    }
    bdrv_close(bs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/kestrel-fuzz-%d.qcow2", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    fuzz_one_open(0);
    fuzz_one_open(BDRV_O_RDWR);
    unlink(path);
    return 0;
}

/*
 * aio=io_uring (block/aio-uring.c and its routing in block/block.c): a seeded
 * random workload of concurrent asynchronous reads, writes, flushes,
 * discards and write-zeroes against a reference buffer, run with
 * aio=threads as the control and aio=io_uring, buffered, write-through and
 * cache=none (O_DIRECT, aligned and misaligned requests mixed); cache=none
 * alignment cases one by one; the O_DIRECT read-modify-write ordering rule;
 * qcow2 under aio=io_uring (thread pool underneath); and the refusal when
 * io_uring cannot be used (not built in; io_uring_setup blocked by seccomp).  Ring cases SKIP with the reason when this build
 * has no io_uring or the kernel refuses to set up a ring.
 */
#include "block/block-int.h"
#include "kestrel/opts.h"
#include "tests/testlib.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *tmpdir;

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Skip the case unless aio=io_uring can be used here; the reason is the open error. */
static void require_uring(void)
{
    GError *err = NULL;
    if (!aio_uring_init(&err))
        test_skip("%s", err->message);
}

static BlockBackend *open_img(const char *path, const char *spec)
{
    BlockOptions o;
    GError *err = NULL;
    KOpts *k = kopts_parse(spec, NULL, &err);
    CHECK_MSG(k, "option parse '%s': %s", spec, err ? err->message : "?");
    blk_options_init(&o);
    CHECK_MSG(blk_options_parse(&o, k, &err), "options '%s': %s", spec, err->message);
    BlockBackend *blk = blk_open(path, &o, &err);
    CHECK_MSG(blk, "open %s with %s: %s", path, spec, err ? err->message : "?");
    kopts_free(k);
    return blk;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = (seed >> 16) | 1;      /* never 0: a zeroed byte is always visible */
    }
}

static void make_file(const char *path, uint64_t size)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    CHECK_MSG(f, "create %s", path);
    fclose(f);
    CHECK_EQ("truncate", 0, truncate(path, size));
}

static uint32_t align_of(BlockBackend *blk)
{
    uint32_t align = 1;
    BlockDriverState *bs = blk_bs(blk);
    if (bs->file && bs->file->drv == &bdrv_file)
        file_posix_fd(bs->file, &align);
    return align;
}

typedef struct Done {
    int count;
    int ret;
} Done;

static void on_done(void *opaque, int ret)
{
    Done *d = opaque;
    d->count++;
    if (ret < 0 && d->ret == 0)
        d->ret = ret;
}

/* ---- the random workload ---- */

typedef struct Model {
    uint64_t size;
    uint8_t *ref;           /* expected bytes */
    uint8_t *may_zero;      /* discarded: the byte may also read as 0 */
} Model;

static void model_check(const Model *m, const char *what, uint64_t off, const uint8_t *got,
                        size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t e = m->ref[off + i];
        if (got[i] != e && !(m->may_zero[off + i] && got[i] == 0))
            test_fail(__FILE__, __LINE__, "%s: byte at offset %" PRIu64 ": expected 0x%02x%s, "
                      "got 0x%02x", what, off + i, e, m->may_zero[off + i] ? " or 0" : "",
                      got[i]);
    }
}

enum { OP_READ, OP_WRITE, OP_FLUSH, OP_DISCARD, OP_ZEROES };

typedef struct Op {
    int type;
    uint64_t off, len;
    uint8_t *mem;           /* allocation */
    uint8_t *buf;           /* data, maybe deliberately misaligned */
    struct iovec iov[3];
    int niov;
    Done d;
} Op;

#define BATCH_MAX 16
#define OP_MAXLEN (64 * 1024)

static uint32_t rnd(uint32_t *seed)
{
    *seed = *seed * 1664525 + 1013904223;
    return *seed >> 8;
}

static bool overlaps(const Op *ops, int n, uint64_t off, uint64_t len)
{
    for (int i = 0; i < n; i++)
        if (ops[i].type != OP_FLUSH && off < ops[i].off + ops[i].len && ops[i].off < off + len)
            return true;
    return false;
}

/*
 * ops requests in batches of up to 16 concurrent ones over disjoint ranges
 * (requests in flight together have no defined order), each batch drained
 * and its reads checked; with 'aligned_too', half the data requests are
 * 4 KiB aligned in buffer, offset and length (so O_DIRECT takes the ring)
 * and the other half arbitrary (bounced on the thread pool).
 */
static void run_workload(BlockBackend **pblk, const char *path, const char *spec,
                         Model *m, int ops, uint32_t seed, bool aligned_too, uint64_t *ring_ops)
{
    static Op batch[BATCH_MAX];
    BlockBackend *blk = *pblk;

    for (int i = 0; i < BATCH_MAX; i++)
        if (!batch[i].mem)
            batch[i].mem = g_malloc(OP_MAXLEN + 8192);
    for (int done = 0; done < ops;) {
        int n = 1 + rnd(&seed) % BATCH_MAX;
        int k = 0;
        for (int tries = 0; k < n && tries < 4 * n; tries++) {
            Op *op = &batch[k];
            uint32_t r = rnd(&seed);
            bool al = aligned_too && (r & 1);
            uint64_t off, len;
            if (al) {
                len = 4096 * (1 + rnd(&seed) % (OP_MAXLEN / 4096));
                off = 4096 * (rnd(&seed) % ((m->size - len) / 4096 + 1));
            } else {
                len = 1 + rnd(&seed) % OP_MAXLEN;
                off = rnd(&seed) % (m->size - len + 1);
            }
            int type = (r >> 1) % 10;
            type = type < 3 ? OP_READ : type < 7 ? OP_WRITE : type == 7 ? OP_FLUSH
                 : type == 8 ? OP_DISCARD : OP_ZEROES;
            if (type != OP_FLUSH && overlaps(batch, k, off, len))
                continue;
            op->type = type;
            op->off = type == OP_FLUSH ? 0 : off;
            op->len = type == OP_FLUSH ? 0 : len;
            op->d = (Done){ 0, 0 };
            /* Aligned: 4 KiB-aligned buffer; else one byte off. */
            uint8_t *base = (uint8_t *)(((uintptr_t)op->mem + 4095) & ~(uintptr_t)4095);
            op->buf = al ? base : base + 1 + (r >> 20) % 7;
            if (type == OP_READ || type == OP_WRITE) {
                /* Up to three iovecs; aligned requests split on 4 KiB boundaries. */
                uint64_t cut1 = len, cut2 = len;
                if (len > 8192 && (r & 2)) {
                    cut1 = al ? 4096 : len / 3;
                    cut2 = al ? 8192 : 2 * len / 3;
                }
                op->iov[0] = (struct iovec){ op->buf, cut1 };
                op->iov[1] = (struct iovec){ op->buf + cut1, cut2 - cut1 };
                op->iov[2] = (struct iovec){ op->buf + cut2, len - cut2 };
                op->niov = cut1 == len ? 1 : 3;
            }
            switch (type) {
            case OP_READ:
                memset(op->buf, 0xee, len);
                blk_aio_preadv(blk, off, op->iov, op->niov, on_done, &op->d);
                break;
            case OP_WRITE:
                fill_pattern(op->buf, len, seed);
                memcpy(m->ref + off, op->buf, len);
                memset(m->may_zero + off, 0, len);
                blk_aio_pwritev(blk, off, op->iov, op->niov, on_done, &op->d);
                break;
            case OP_FLUSH:
                blk_aio_flush(blk, on_done, &op->d);
                break;
            case OP_DISCARD:
                memset(m->may_zero + off, 1, len);
                blk_aio_pdiscard(blk, off, len, on_done, &op->d);
                break;
            default:
                memset(m->ref + off, 0, len);
                memset(m->may_zero + off, 0, len);
                blk_aio_pwrite_zeroes(blk, off, len, BLK_ZERO_MAY_UNMAP, on_done, &op->d);
                break;
            }
            k++;
        }
        blk_drain(blk);
        for (int i = 0; i < k; i++) {
            static const char *const names[] = { "read", "write", "flush", "discard", "zeroes" };
            CHECK_MSG(batch[i].d.count == 1, "%s at %" PRIu64 ": %d completions",
                      names[batch[i].type], batch[i].off, batch[i].d.count);
            CHECK_MSG(batch[i].d.ret == 0, "%s at %" PRIu64 "+%" PRIu64 ": %s",
                      names[batch[i].type], batch[i].off, batch[i].len,
                      g_strerror(-batch[i].d.ret));
            if (batch[i].type == OP_READ)
                model_check(m, "async read", batch[i].off, batch[i].buf, batch[i].len);
        }
        done += k;
        if (path && done % 1000 < (unsigned)k) {
            /* Reopen now and then: what was acknowledged must be in the file. */
            *ring_ops += blk_ring_ops(blk);
            blk_close(blk);
            blk = open_img(path, spec);
        }
    }
    *ring_ops += blk_ring_ops(blk);
    *pblk = blk;
}

static void workload_case(const char *name, const char *fmt, const char *extra,
                          bool aligned_too, bool expect_ring)
{
    enum { SIZE = 8 << 20 };
    const char *path = tmp_path(name);
    g_autofree char *spec = g_strdup_printf("format=%s,discard=unmap%s", fmt, extra);
    Model m = { SIZE, g_malloc0(SIZE), g_malloc0(SIZE) };
    uint8_t *got = g_malloc(SIZE);

    if (!strcmp(fmt, "qcow2")) {
        GError *err = NULL;
        unlink(path);
        Qcow2CreateOptions co = { .size = SIZE, .cluster_size = 65536 };
        CHECK_MSG(qcow2_create(path, &co, &err), "qcow2_create: %s", err ? err->message : "?");
    } else {
        make_file(path, SIZE);
    }
    BlockBackend *blk = open_img(path, spec);
    uint64_t ring = 0;
    run_workload(&blk, path, spec, &m, 3000, 42, aligned_too, &ring);
    if (expect_ring)
        CHECK_MSG(ring > 1000, "aio=io_uring path barely used: %" PRIu64 " ring ops", ring);
    else
        CHECK_EQ("ring operations", 0, ring);
    /* The whole image through one async read, then through the file itself. */
    struct iovec iov = { got, SIZE };
    Done d = { 0 };
    blk_aio_preadv(blk, 0, &iov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_EQ("whole read status", 0, d.ret);
    model_check(&m, "whole image", 0, got, SIZE);
    blk_close(blk);
    if (!strcmp(fmt, "raw")) {
        gsize len;
        g_autofree char *file = NULL;
        CHECK(g_file_get_contents(path, &file, &len, NULL));
        CHECK_EQ("file size", SIZE, len);
        model_check(&m, "file contents", 0, (uint8_t *)file, SIZE);
    }
    g_free(m.ref);
    g_free(m.may_zero);
    g_free(got);
}

static void test_threads_random_workload_raw(void)
{
    workload_case("t.raw", "raw", ",aio=threads", false, false);
}

static void test_threads_random_workload_raw_cache_none(void)
{
    workload_case("tn.raw", "raw", ",aio=threads,cache=none", true, false);
}

static void test_uring_random_workload_raw(void)
{
    require_uring();
    workload_case("u.raw", "raw", ",aio=io_uring", false, true);
}

static void test_uring_random_workload_raw_writethrough(void)
{
    require_uring();
    workload_case("uw.raw", "raw", ",aio=io_uring,cache=writethrough", false, true);
}

static void test_uring_random_workload_raw_cache_none(void)
{
    require_uring();
    workload_case("un.raw", "raw", ",aio=io_uring,cache=none", true, true);
}

static void test_uring_random_workload_raw_unsafe(void)
{
    require_uring();
    /* cache=unsafe: flushes complete as ring no-ops. */
    workload_case("uu.raw", "raw", ",aio=io_uring,cache=unsafe", false, true);
}

static void test_uring_qcow2_runs_on_thread_pool(void)
{
    require_uring();
    workload_case("u.qcow2", "qcow2", ",aio=io_uring,cache=none", true, false);
}

/* ---- cache=none alignment, one case at a time ---- */

/* Write with iovecs, read back with one aligned buffer, compare; ring ops used must match. */
static void direct_case(BlockBackend *blk, const char *what, uint64_t off,
                        const size_t *lens, int n, size_t buf_skew, bool want_ring)
{
    uint8_t *mem = g_malloc(256 * 1024), *back = g_malloc(256 * 1024 + 8192);
    uint8_t *base = (uint8_t *)(((uintptr_t)mem + 4095) & ~(uintptr_t)4095) + buf_skew;
    uint8_t *rb = (uint8_t *)(((uintptr_t)back + 4095) & ~(uintptr_t)4095);
    struct iovec iov[4];
    size_t total = 0;
    Done d = { 0 };

    for (int i = 0; i < n; i++) {
        iov[i] = (struct iovec){ base + total, lens[i] };
        total += lens[i];
    }
    fill_pattern(base, total, (uint32_t)off ^ (uint32_t)total);
    uint64_t before = blk_ring_ops(blk);
    blk_aio_pwritev(blk, off, iov, n, on_done, &d);
    blk_drain(blk);
    CHECK_MSG(d.ret == 0, "%s: write: %s", what, g_strerror(-d.ret));
    bool used = blk_ring_ops(blk) > before;
    CHECK_MSG(used == want_ring, "%s: write %s the ring", what,
              used ? "went through" : "did not go through");
    struct iovec riov = { rb, total };
    blk_aio_preadv(blk, off, &riov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_MSG(d.ret == 0, "%s: read: %s", what, g_strerror(-d.ret));
    CHECK_MSG(!memcmp(rb, base, total), "%s: data read back differs", what);
    g_free(mem);
    g_free(back);
}

static void test_uring_cache_none_alignment_cases(void)
{
    require_uring();
    const char *path = tmp_path("align.raw");
    make_file(path, 1 << 20);
    BlockBackend *blk = open_img(path, "format=raw,aio=io_uring,cache=none");
    uint32_t a = align_of(blk);
    CHECK_MSG(a >= 512 && a <= 4096, "O_DIRECT alignment %u", a);

    size_t one[] = { 4096 }, two[] = { 4096, 8192 }, odd_len[] = { 4096 + 1 };
    size_t split_odd[] = { 100, 4096 - 100 }, big[] = { 65536 };
    direct_case(blk, "aligned, one iovec", 8192, one, 1, 0, true);
    direct_case(blk, "aligned, two iovecs", 65536, two, 2, 0, true);
    direct_case(blk, "aligned, 64 KiB", 131072, big, 1, 0, true);
    direct_case(blk, "buffer one byte off", 8192, one, 1, 1, false);
    direct_case(blk, "offset one byte off", 8193, one, 1, 0, false);
    direct_case(blk, "length one byte long", 16384, odd_len, 1, 0, false);
    /* Total aligned, but an element boundary is not: O_DIRECT needs each one aligned. */
    direct_case(blk, "iovec element off block size", 20480, split_odd, 2, 0, false);
    blk_close(blk);

    /* The file's end: not a multiple of 512; the raw disk reads zero-padded. */
    enum { FSIZE = 16384 - 100 };
    uint8_t *data = g_malloc(FSIZE), *mem = g_malloc(16384 + 4096);
    fill_pattern(data, FSIZE, 99);
    CHECK(g_file_set_contents(path, (char *)data, FSIZE, NULL));
    blk = open_img(path, "format=raw,aio=io_uring,cache=none");
    CHECK_EQ("padded length", 16384, blk_getlength(blk));
    uint8_t *buf = (uint8_t *)(((uintptr_t)mem + 4095) & ~(uintptr_t)4095);
    struct iovec iov = { buf, 4096 };
    Done d = { 0 };
    memset(buf, 0xee, 4096);
    uint64_t before = blk_ring_ops(blk);
    blk_aio_preadv(blk, 12288, &iov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_MSG(d.ret == 0, "read across EOF: %s", g_strerror(-d.ret));
    CHECK_MSG(blk_ring_ops(blk) > before, "aligned read across EOF did not use the ring");
    CHECK_MSG(!memcmp(buf, data + 12288, FSIZE - 12288), "data before EOF differs");
    for (int i = FSIZE - 12288; i < 4096; i++)
        CHECK_MSG(buf[i] == 0, "byte %d past EOF reads 0x%02x, not 0", 12288 + i, buf[i]);
    blk_close(blk);

    /* Buffered, any offset: the ring reads up to EOF, the rest is zeros. */
    blk = open_img(path, "format=raw,aio=io_uring");
    memset(buf, 0xee, 4096);
    iov = (struct iovec){ buf + 1, 1000 };
    before = blk_ring_ops(blk);
    blk_aio_preadv(blk, 16384 - 1000, &iov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_MSG(d.ret == 0, "buffered read across EOF: %s", g_strerror(-d.ret));
    CHECK_MSG(blk_ring_ops(blk) > before, "buffered read across EOF did not use the ring");
    CHECK_MSG(!memcmp(buf + 1, data + 16384 - 1000, 900), "buffered: data before EOF differs");
    for (int i = 900; i < 1000; i++)
        CHECK_MSG(buf[1 + i] == 0, "buffered: byte %d past EOF reads 0x%02x, not 0",
                  16384 - 1000 + i, buf[1 + i]);
    blk_close(blk);
    g_free(data);
    g_free(mem);
}

/*
 * A misaligned O_DIRECT write is a read-modify-write of whole blocks on the
 * thread pool; a ring write-zeroes of other bytes of the same block in
 * flight at the same time must not be undone by it.
 */
static void rmw_ordering(const char *spec)
{
    const char *path = tmp_path("rmw.raw");
    make_file(path, 1 << 20);
    BlockBackend *blk = open_img(path, spec);
    uint8_t *blk0 = g_malloc(8192), *got = g_malloc(8192), pat[100];

    for (int round = 0; round < 300; round++) {
        fill_pattern(blk0, 8192, round);
        fill_pattern(pat, sizeof(pat), round + 1000);
        CHECK_EQ("setup write", 0, blk_pwrite(blk, 4096, blk0, 8192));
        Done d = { 0 };
        struct iovec iov = { pat, sizeof(pat) };
        /* Same 512-byte block [4096, 4608), disjoint bytes; order alternates. */
        if (round & 1)
            blk_aio_pwrite_zeroes(blk, 4100, 100, 0, on_done, &d);
        blk_aio_pwritev(blk, 4300, &iov, 1, on_done, &d);
        if (!(round & 1))
            blk_aio_pwrite_zeroes(blk, 4100, 100, 0, on_done, &d);
        blk_drain(blk);
        CHECK_EQ("completions", 2, d.count);
        CHECK_EQ("status", 0, d.ret);
        memset(blk0 + 4, 0, 100);
        memcpy(blk0 + 204, pat, 100);
        CHECK_EQ("read back", 0, blk_pread(blk, 4096, got, 8192));
        for (int i = 0; i < 8192; i++)
            CHECK_MSG(got[i] == blk0[i], "round %d: byte %d: expected 0x%02x, got 0x%02x "
                      "(a concurrent write was undone)", round, 4096 + i, blk0[i], got[i]);
    }
    blk_close(blk);
    g_free(blk0);
    g_free(got);
}

static void test_uring_cache_none_rmw_does_not_undo_ring_write(void)
{
    require_uring();
    rmw_ordering("format=raw,aio=io_uring,cache=none");
}

static void test_threads_cache_none_rmw_does_not_undo_zeroes(void)
{
    rmw_ordering("format=raw,aio=threads,cache=none");
}

/* ---- selection ---- */

static void test_uring_completions_never_inside_submit(void)
{
    require_uring();
    const char *path = tmp_path("cb.raw");
    make_file(path, 1 << 20);
    BlockBackend *blk = open_img(path, "format=raw,aio=io_uring");
    uint8_t buf[4096];
    struct iovec iov = { buf, sizeof(buf) };
    Done d = { 0 };
    blk_aio_preadv(blk, 0, &iov, 1, on_done, &d);
    blk_aio_flush(blk, on_done, &d);
    blk_aio_pdiscard(blk, 0, 4096, on_done, &d);
    blk_aio_pwrite_zeroes(blk, 8192, 4096, 0, on_done, &d);
    CHECK_EQ("completions before the main loop ran", 0, d.count);
    blk_drain(blk);
    CHECK_EQ("completions after drain", 4, d.count);
    CHECK_EQ("status", 0, d.ret);
    /* Out of range and past the end: -EIO through the callback, as with threads. */
    blk_aio_preadv(blk, (1 << 20) - 100, &iov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_EQ("out of range status", -EIO, d.ret);
    blk_close(blk);

    blk = open_img(path, "format=raw,aio=io_uring,readonly=on");
    d = (Done){ 0 };
    blk_aio_pwritev(blk, 0, &iov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_EQ("write to read-only status", -EPERM, d.ret);
    blk_close(blk);
}

/* 1000 requests at once: eight times the ring's 128 entries wait their turn. */
static void test_uring_more_requests_than_ring_entries(void)
{
    require_uring();
    enum { N = 1000, LEN = 4096 };
    const char *path = tmp_path("many.raw");
    make_file(path, (uint64_t)N * LEN);
    BlockBackend *blk = open_img(path, "format=raw,aio=io_uring");
    uint8_t *bufs = g_malloc((size_t)N * LEN), *back = g_malloc((size_t)N * LEN);
    struct iovec *iov = g_new(struct iovec, N);
    Done d = { 0 };

    for (int i = 0; i < N; i++) {
        fill_pattern(bufs + (size_t)i * LEN, LEN, i);
        iov[i] = (struct iovec){ bufs + (size_t)i * LEN, LEN };
        blk_aio_pwritev(blk, (uint64_t)i * LEN, &iov[i], 1, on_done, &d);
    }
    CHECK_EQ("in flight after submitting", N, blk_in_flight(blk));
    blk_drain(blk);
    CHECK_EQ("write completions", N, d.count);
    CHECK_EQ("write status", 0, d.ret);
    for (int i = 0; i < N; i++) {
        iov[i] = (struct iovec){ back + (size_t)(N - 1 - i) * LEN, LEN };
        blk_aio_preadv(blk, (uint64_t)(N - 1 - i) * LEN, &iov[i], 1, on_done, &d);
    }
    blk_drain(blk);
    CHECK_EQ("completions", 2 * N, d.count);
    CHECK_EQ("read status", 0, d.ret);
    CHECK_MSG(blk_ring_ops(blk) >= 2 * N, "only %" PRIu64 " ring ops", blk_ring_ops(blk));
    CHECK_MSG(!memcmp(bufs, back, (size_t)N * LEN), "data read back differs");
    blk_close(blk);
    g_free(bufs);
    g_free(back);
    g_free(iov);
}

static void test_uring_unavailable_is_one_clear_error(void)
{
    GError *err = NULL;
    if (aio_uring_init(&err))
        test_skip("io_uring works here; the refusal path is checked where it does not");
    const char *path = tmp_path("none.raw");
    make_file(path, 1 << 20);
    BlockOptions o;
    blk_options_init(&o);
    o.aio = BLK_AIO_IO_URING;
    g_clear_error(&err);
    CHECK(!blk_open(path, &o, &err));
    CHECK_MSG(strstr(err->message, "aio=io_uring") && strstr(err->message, "aio=threads") &&
              !strchr(err->message, '\n'), "message: %s", err->message);
    o.aio = BLK_AIO_DEFAULT;
    BlockBackend *blk = blk_open(path, &o, NULL);
    CHECK_MSG(blk, "the default aio must still open");
    blk_close(blk);
}

/*
 * The sandbox case: a seccomp filter makes io_uring_setup(2) fail with
 * EPERM (as Docker's default profile and kernel.io_uring_disabled=2 do).
 * aio=io_uring must then be refused with one line naming the reason, never
 * fall back silently.  testlib runs each case in its own child, so the
 * filter dies with this case.
 */
static void test_uring_refused_by_seccomp_is_one_clear_error(void)
{
#ifndef CONFIG_IO_URING
    test_skip("io_uring not built in (test_uring_unavailable_is_one_clear_error covers it)");
#else
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { ARRAY_LEN(f), f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        test_skip("cannot install a seccomp filter here: %s", g_strerror(errno));
    const char *path = tmp_path("sandbox.raw");
    make_file(path, 1 << 20);
    BlockOptions o;
    GError *err = NULL;
    blk_options_init(&o);
    o.aio = BLK_AIO_IO_URING;
    CHECK_MSG(!blk_open(path, &o, &err), "aio=io_uring opened although io_uring_setup fails");
    CHECK_MSG(strstr(err->message, "aio=io_uring") && strstr(err->message, g_strerror(EPERM)) &&
              strstr(err->message, "seccomp") && strstr(err->message, "aio=threads") &&
              !strchr(err->message, '\n'), "message: %s", err->message);
    g_clear_error(&err);
    o.aio = BLK_AIO_DEFAULT;
    BlockBackend *blk = blk_open(path, &o, &err);
    CHECK_MSG(blk, "the default aio must still open: %s", err ? err->message : "?");
    blk_close(blk);
#endif
}

/* No aio= given: the ring where the kernel allows it (issue 6), reads and writes still right. */
static void test_default_aio_uses_ring_where_permitted(void)
{
    GError *err = NULL;
    if (!aio_uring_init(&err)) {
        g_clear_error(&err);
        test_skip("io_uring is not available here (the fallback is checked by the refusal cases)");
    }
    const char *path = tmp_path("default.raw");
    make_file(path, 1 << 20);
    BlockOptions o;
    blk_options_init(&o);
    BlockBackend *blk = blk_open(path, &o, &err);
    CHECK_MSG(blk, "open: %s", err ? err->message : "?");
    if (!blk)
        return;
    CHECK_MSG(blk_uses_io_uring(blk), "the default aio did not take the io_uring path");
    uint8_t wbuf[4096], rbuf[4096];
    for (unsigned i = 0; i < sizeof(wbuf); i++)
        wbuf[i] = (uint8_t)(i * 7 + 3);
    CHECK(blk_pwrite(blk, 8192, wbuf, sizeof(wbuf)) == 0);
    CHECK(blk_pread(blk, 8192, rbuf, sizeof(rbuf)) == 0);
    CHECK_MSG(!memcmp(wbuf, rbuf, sizeof(wbuf)), "read back differs from what was written");
    const char *path2 = tmp_path("threads.raw");
    make_file(path2, 1 << 20);
    o.aio = BLK_AIO_THREADS;
    BlockBackend *blk2 = blk_open(path2, &o, &err);
    CHECK_MSG(blk2 && !blk_uses_io_uring(blk2), "aio=threads must not use the ring");
    blk_close(blk2);
    blk_close(blk);
}

static const TestCase cases[] = {
    TEST_CASE(test_default_aio_uses_ring_where_permitted),
    TEST_CASE(test_threads_random_workload_raw),
    TEST_CASE(test_threads_random_workload_raw_cache_none),
    TEST_CASE(test_uring_random_workload_raw),
    TEST_CASE(test_uring_random_workload_raw_writethrough),
    TEST_CASE(test_uring_random_workload_raw_cache_none),
    TEST_CASE(test_uring_random_workload_raw_unsafe),
    TEST_CASE(test_uring_qcow2_runs_on_thread_pool),
    TEST_CASE(test_uring_cache_none_alignment_cases),
    TEST_CASE(test_uring_cache_none_rmw_does_not_undo_ring_write),
    TEST_CASE(test_threads_cache_none_rmw_does_not_undo_zeroes),
    TEST_CASE(test_uring_completions_never_inside_submit),
    TEST_CASE(test_uring_more_requests_than_ring_entries),
    TEST_CASE(test_uring_unavailable_is_one_clear_error),
    TEST_CASE(test_uring_refused_by_seccomp_is_one_clear_error),
    { 0 },
};

int main(int argc, char **argv)
{
    tmpdir = g_dir_make_tmp("kestrel-aio-uring-XXXXXX", NULL);
    int ret = test_main("aio-uring", cases, argc, argv);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        /* best effort */
    }
    return ret;
}

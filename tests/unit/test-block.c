/*
 * Block layer (include/kestrel/block.h, block/): raw and qcow2 images,
 * asynchronous completions on the main loop, O_DIRECT bouncing, backing
 * chains, -snapshot, image locking, malformed headers, a seeded random
 * workload against a plain reference buffer, crash (kill -9) safety, and
 * interoperability with Debian's qemu-img/qemu-io both ways.
 */
#include "block/block-int.h"
#include "kestrel/machine.h"
#include "kestrel/opts.h"
#include "tests/testlib.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *tmpdir;

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    if (!tmpdir)
        tmpdir = g_dir_make_tmp("kestrel-block-XXXXXX", NULL);
    char *p = buf[slot++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static bool have_tool(const char *name)
{
    g_autofree char *p = g_find_program_in_path(name);
    return p != NULL;
}

/* Run a shell command; returns its exit status, output in *out if given. */
static int run(char **out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int run(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *o = NULL, *e = NULL;
    int status = -1;
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    if (!g_spawn_sync(tmpdir, (char **)argv, NULL, 0, NULL, NULL, &o, &e, &status, NULL))
        return -1;
    if (out)
        *out = g_strconcat(o, e, NULL);
    g_free(o);
    g_free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static BlockBackend *open_img(const char *path, const char *fmt, const char *extra)
{
    BlockOptions o;
    GError *err = NULL;
    g_autofree char *spec = g_strdup_printf("%s%s%s", fmt ? "format=" : "", fmt ? fmt : "",
                                            extra ? extra : "");
    KOpts *k = kopts_parse(spec[0] == ',' ? spec + 1 : spec, NULL, &err);
    CHECK_MSG(k, "option parse: %s", err ? err->message : "?");
    blk_options_init(&o);
    CHECK_MSG(blk_options_parse(&o, k, &err), "options '%s': %s", spec, err->message);
    BlockBackend *blk = blk_open(path, &o, &err);
    CHECK_MSG(blk, "open %s: %s", path, err ? err->message : "?");
    kopts_free(k);
    return blk;
}

static char *open_img_error(const char *path, const char *fmt, bool ro)
{
    BlockOptions o;
    GError *err = NULL;
    blk_options_init(&o);
    o.format = fmt;
    o.read_only = ro;
    BlockBackend *blk = blk_open(path, &o, &err);
    if (blk) {
        blk_close(blk);
        return NULL;
    }
    char *msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        buf[i] = seed >> 16;
    }
}

static void check_same(const char *what, const uint8_t *exp, const uint8_t *got, size_t len,
                       uint64_t base)
{
    for (size_t i = 0; i < len; i++)
        if (exp[i] != got[i])
            test_fail(__FILE__, __LINE__, "%s: byte at offset %" PRIu64 ": expected 0x%02x, got 0x%02x",
                      what, base + i, exp[i], got[i]);
}

static void create_qcow2(const char *path, uint64_t size, uint32_t cs, int version,
                         const char *backing, const char *backing_fmt)
{
    GError *err = NULL;
    Qcow2CreateOptions co = { .size = size, .cluster_size = cs, .version = version,
                              .backing_file = backing, .backing_fmt = backing_fmt };
    CHECK_MSG(qcow2_create(path, &co, &err), "qcow2_create: %s", err ? err->message : "?");
}

static void write_file(const char *path, const void *buf, size_t len)
{
    CHECK_MSG(g_file_set_contents(path, buf, len, NULL), "write %s", path);
}

/* ---- asynchronous completion ---- */

typedef struct Done {
    int count;
    int ret;
} Done;

static void on_done(void *opaque, int ret)
{
    Done *d = opaque;
    d->count++;
    if (ret < 0)
        d->ret = ret;
}

static void test_aio_completions_run_on_main_loop(void)
{
    const char *path = tmp_path("aio.raw");
    uint8_t buf[3][4096], back[3][4096];
    write_file(path, "", 0);
    CHECK_EQ("truncate", 0, truncate(path, 1 << 20));
    BlockBackend *blk = open_img(path, "raw", NULL);
    Done d = { 0 };

    for (int i = 0; i < 3; i++)
        fill_pattern(buf[i], sizeof(buf[i]), i + 1);
    struct iovec iov[3] = { { buf[0], 4096 }, { buf[1], 4096 }, { buf[2], 4096 } };
    blk_aio_pwritev(blk, 12345, iov, 3, on_done, &d);
    CHECK_EQ("completions before the main loop ran", 0, d.count);
    blk_drain(blk);
    CHECK_EQ("completions after drain", 1, d.count);
    CHECK_EQ("write status", 0, d.ret);

    struct iovec riov[3] = { { back[0], 4096 }, { back[1], 4096 }, { back[2], 4096 } };
    blk_aio_preadv(blk, 12345, riov, 3, on_done, &d);
    blk_aio_flush(blk, on_done, &d);
    blk_drain(blk);
    CHECK_EQ("completions", 3, d.count);
    check_same("scatter-gather read back", (uint8_t *)buf, (uint8_t *)back, sizeof(buf), 12345);

    /* Beyond the end: -EIO through the callback, not a crash. */
    d.ret = 0;
    blk_aio_preadv(blk, (1 << 20) - 100, riov, 1, on_done, &d);
    blk_drain(blk);
    CHECK_EQ("out of range read status", -EIO, d.ret);
    blk_close(blk);
}

static void test_options_parse_drive_keys(void)
{
    GError *err = NULL;
    BlockOptions o;
    KOpts *k = kopts_parse("format=qcow2,cache=none,aio=threads,readonly=on,discard=unmap,"
                           "file.locking=off", NULL, &err);
    blk_options_init(&o);
    CHECK(blk_options_parse(&o, k, &err));
    CHECK_STREQ("format", "qcow2", o.format);
    CHECK_EQ("cache", BLK_CACHE_NONE, o.cache);
    CHECK_EQ("aio", BLK_AIO_THREADS, o.aio);
    CHECK(o.read_only);
    CHECK(o.discard_unmap);
    CHECK_EQ("locking", BLK_LOCKING_OFF, o.locking);
    CHECK(kopts_check_all_used(k, "-drive", &err));
    kopts_free(k);

    k = kopts_parse("cache=sometimes", NULL, &err);
    blk_options_init(&o);
    CHECK(!blk_options_parse(&o, k, &err));
    CHECK_MSG(strstr(err->message, "cache=sometimes"), "message: %s", err->message);
    kopts_free(k);
}

/* ---- raw ---- */

static void test_raw_cache_none_unaligned_requests(void)
{
    const char *path = tmp_path("direct.raw");
    enum { SIZE = 256 * 1024 };
    uint8_t *ref = g_malloc0(SIZE), *got = g_malloc(SIZE), *tmp = g_malloc(70000);
    write_file(path, ref, SIZE);
    BlockBackend *blk = open_img(path, "raw", ",cache=none");
    uint32_t seed = 7;

    for (int i = 0; i < 300; i++) {
        seed = seed * 1664525 + 1013904223;
        uint64_t off = seed % (SIZE - 70000);
        size_t len = 1 + (seed >> 8) % 69999;
        /* Misaligned buffer, offset and length: the layer bounces them. */
        fill_pattern(tmp + 1, len - 1, seed);
        memcpy(ref + off, tmp + 1, len - 1);
        CHECK_EQ("pwrite", 0, blk_pwrite(blk, off, tmp + 1, len - 1));
    }
    CHECK_EQ("pread", 0, blk_pread(blk, 0, got + 0, SIZE));
    check_same("cache=none image", ref, got, SIZE, 0);
    CHECK_EQ("flush", 0, blk_flush(blk));
    blk_close(blk);
    gsize flen;
    g_autofree char *file = NULL;
    CHECK(g_file_get_contents(path, &file, &flen, NULL));
    CHECK_EQ("file size unchanged by bounced writes", SIZE, flen);
    check_same("file contents", ref, (uint8_t *)file, SIZE, 0);
    g_free(ref);
    g_free(got);
    g_free(tmp);
}

static void test_raw_never_probed_as_qcow2_with_format_raw(void)
{
    const char *q = tmp_path("looks.qcow2");
    create_qcow2(q, 1 << 20, 0, 3, NULL, NULL);
    BlockBackend *blk = open_img(q, "raw", NULL);
    CHECK_STREQ("format", "raw", blk_format_name(blk));
    uint8_t magic[4];
    CHECK_EQ("read", 0, blk_pread(blk, 0, magic, 4));
    CHECK_MSG(!memcmp(magic, "QFI\xfb", 4), "raw view should show the qcow2 magic bytes");
    blk_close(blk);
    blk = open_img(q, NULL, NULL);
    CHECK_STREQ("probed format", "qcow2", blk_format_name(blk));
    CHECK_EQ("virtual size", 1 << 20, blk_getlength(blk));
    blk_close(blk);
}

/* ---- locking ---- */

static void test_lock_second_read_write_open_fails(void)
{
    const char *path = tmp_path("locked.qcow2");
    create_qcow2(path, 1 << 20, 0, 3, NULL, NULL);
    BlockBackend *a = open_img(path, "qcow2", NULL);
    g_autofree char *msg = open_img_error(path, "qcow2", false);
    CHECK_MSG(msg, "second read-write open succeeded");
    CHECK_MSG(strstr(msg, "Failed to get") && strstr(msg, "write") &&
              strstr(msg, "Is another process using the image"), "message: %s", msg);
    g_autofree char *msg_ro = open_img_error(path, "qcow2", true);
    CHECK_MSG(msg_ro, "read-only open next to a writer succeeded");
    CHECK_MSG(strstr(msg_ro, "Failed to get shared \"write\" lock"), "message: %s", msg_ro);
    BlockBackend *b = open_img(path, "qcow2", ",locking=off");
    blk_close(b);
    if (have_tool("qemu-img")) {
        g_autofree char *out = NULL;
        int rc = run(&out, "qemu-img info %s", path);
        CHECK_MSG(rc != 0 && strstr(out, "lock"), "qemu-img info next to Kestrel: rc %d: %s",
                  rc, out);
    }
    blk_close(a);
    BlockBackend *c = open_img(path, "qcow2", NULL);
    blk_close(c);
}

static void test_lock_two_readers_share(void)
{
    const char *path = tmp_path("shared.raw");
    write_file(path, "0123456789", 10);
    BlockBackend *a = open_img(path, "raw", ",readonly=on");
    BlockBackend *b = open_img(path, "raw", ",readonly=on");
    CHECK(blk_is_read_only(a));
    CHECK_EQ("write to read-only", -EPERM, blk_pwrite(a, 0, "x", 1));
    blk_close(a);
    blk_close(b);
}

/* ---- malformed qcow2 ---- */

static void patch_be32(const char *path, long off, uint32_t v)
{
    uint8_t b[4] = { v >> 24, v >> 16, v >> 8, v };
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, b, 4, off) == 4);
    close(fd);
}

static void patch_be64(const char *path, long off, uint64_t v)
{
    patch_be32(path, off, v >> 32);
    patch_be32(path, off + 4, (uint32_t)v);
}

static void expect_refused(const char *name, void (*patch)(const char *), const char *needle)
{
    const char *path = tmp_path(name);
    unlink(path);
    create_qcow2(path, 64 << 20, 0, 3, NULL, NULL);
    patch(path);
    g_autofree char *msg = open_img_error(path, "qcow2", true);
    CHECK_MSG(msg, "%s: malformed image was accepted", name);
    CHECK_MSG(strstr(msg, needle), "%s: expected message containing '%s', got: %s", name,
              needle, msg);
}

static void p_truncate(const char *p) { CHECK_EQ("truncate", 0, truncate(p, 50)); }
static void p_version(const char *p) { patch_be32(p, 4, 4); }
static void p_cluster_bits(const char *p) { patch_be32(p, 20, 30); }
static void p_l1_outside(const char *p) { patch_be64(p, 40, 1ull << 40); }
static void p_l1_small(const char *p) { patch_be64(p, 24, 1ull << 40); }
static void p_rt_outside(const char *p) { patch_be64(p, 48, 1ull << 40); }
static void p_incompat_ext(const char *p) { patch_be64(p, 72, 1ull << 2); }
static void p_incompat_unknown(const char *p) { patch_be64(p, 72, 1ull << 9); }
static void p_header_len(const char *p) { patch_be32(p, 100, 101); }
static void p_refcount_order(const char *p) { patch_be32(p, 96, 7); }
static void p_refcount_order_neg(const char *p) { patch_be32(p, 96, 0xffffff03); }
static void p_backing_len(const char *p) { patch_be64(p, 8, 0x200); patch_be32(p, 16, 5000); }
static void p_crypt(const char *p) { patch_be32(p, 32, 1); }

static void test_qcow2_malformed_headers_refused(void)
{
    expect_refused("trunc.qcow2", p_truncate, "too short");
    expect_refused("ver.qcow2", p_version, "unsupported qcow2 version 4");
    expect_refused("cbits.qcow2", p_cluster_bits, "cluster_bits 30");
    expect_refused("l1out.qcow2", p_l1_outside, "L1 table");
    expect_refused("l1small.qcow2", p_l1_small, "L1 table too small");
    expect_refused("rtout.qcow2", p_rt_outside, "refcount table");
    expect_refused("extdata.qcow2", p_incompat_ext, "external data file");
    expect_refused("unknown.qcow2", p_incompat_unknown, "unknown feature bit 9");
    expect_refused("hlen.qcow2", p_header_len, "header_length");
    expect_refused("rorder.qcow2", p_refcount_order, "refcount_order");
    expect_refused("rorder2.qcow2", p_refcount_order_neg, "refcount_order 4294967043");
    expect_refused("blen.qcow2", p_backing_len, "backing file name");
    expect_refused("crypt.qcow2", p_crypt, "encrypted");
}

static void test_qcow2_corrupt_l2_entry_gives_eio(void)
{
    const char *path = tmp_path("badl2.qcow2");
    create_qcow2(path, 1 << 20, 0, 3, NULL, NULL);
    BlockBackend *blk = open_img(path, "qcow2", NULL);
    uint8_t buf[512] = { 1 };
    CHECK_EQ("write", 0, blk_pwrite(blk, 0, buf, 512));
    blk_close(blk);
    /* L2 table at cluster 4; point entry 0 at a misaligned host offset. */
    patch_be64(path, 4 * 65536, 0x8000000000012300ull);
    blk = open_img(path, "qcow2", ",readonly=on");
    CHECK_EQ("read of corrupt mapping", -EIO, blk_pread(blk, 0, buf, 512));
    blk_close(blk);
}

/* Corrupt refcounts must not let an allocation overwrite the header or tables. */
static void test_qcow2_corrupt_refcounts_never_overwrite_metadata(void)
{
    const char *path = tmp_path("badrc.qcow2");
    create_qcow2(path, 1 << 20, 0, 3, NULL, NULL);
    patch_be64(path, 65536, 0);          /* refcount table[0]: "no refcount block" */
    BlockBackend *blk = open_img(path, "qcow2", NULL);
    uint8_t buf[512] = { 1 };
    CHECK_EQ("write needing an allocation", -EIO, blk_pwrite(blk, 0, buf, sizeof(buf)));
    blk_close(blk);
    g_autofree char *file = NULL;
    gsize len;
    CHECK(g_file_get_contents(path, &file, &len, NULL));
    CHECK_MSG(!memcmp(file, "QFI\xfb", 4), "header overwritten");
    CHECK_EQ("L1 table untouched", 0, ((uint8_t *)file)[3 * 65536]);
    /* An L1 entry pointing at the header as its L2 table. */
    const char *p2 = tmp_path("badl1.qcow2");
    create_qcow2(p2, 1 << 20, 0, 3, NULL, NULL);
    patch_be64(p2, 3 * 65536, 0x8000000000000000ull | 65536);   /* L2 = refcount table */
    blk = open_img(p2, "qcow2", NULL);
    blk_pwrite(blk, 0, buf, sizeof(buf));
    blk_close(blk);
    g_free(file);
    file = NULL;
    CHECK(g_file_get_contents(p2, &file, &len, NULL));
    CHECK_EQ("refcount table entry 0 still points at cluster 2", 2 * 65536,
             ((uint64_t)(uint8_t)file[65536 + 5] << 16) | ((uint8_t)file[65536 + 6] << 8) |
             (uint8_t)file[65536 + 7]);
}

/* ---- random workload vs a reference ---- */

static void random_workload(const char *path, int version, uint32_t cs, int refcount_bits,
                            uint64_t size, int ops, uint32_t seed, bool reopen, const char *opts)
{
    uint32_t maxlen = MAX(3 * cs, 24576);
    uint8_t *ref = g_malloc0(size), *got = g_malloc(size);
    uint8_t *buf = g_malloc(maxlen + 4096);

    unlink(path);
    GError *err = NULL;
    Qcow2CreateOptions co = { .size = size, .cluster_size = cs, .version = version,
                              .refcount_bits = refcount_bits };
    CHECK_MSG(qcow2_create(path, &co, &err), "qcow2_create: %s", err ? err->message : "?");
    BlockBackend *blk = open_img(path, "qcow2", opts);
    for (int i = 0; i < ops; i++) {
        seed = seed * 1664525 + 1013904223;
        uint32_t r = seed >> 4;
        uint64_t off = (r % (size / 512)) * 512 + ((r & 1) ? (r >> 20) % 512 : 0);
        uint64_t len = 1 + ((seed >> 8) * 2654435761u) % maxlen;
        if (off + len > size)
            len = size - off;
        switch (r % 8) {
        case 0: case 1: case 2: case 3:
            fill_pattern(buf, len, seed);
            memcpy(ref + off, buf, len);
            CHECK_EQ("write", 0, blk_pwrite(blk, off, buf, len));
            break;
        case 4: case 5:
            CHECK_EQ("read", 0, blk_pread(blk, off, buf, len));
            check_same("random read", ref + off, buf, len, off);
            break;
        case 6: {
            /* Discard drops whole clusters only; their contents read as zeros. */
            uint64_t s = (off + cs - 1) / cs * cs, e = (off + len) / cs * cs;
            if (off + len == size)
                e = size;
            if (e > s)
                memset(ref + s, 0, e - s);
            CHECK_EQ("discard", 0, blk_pdiscard(blk, off, len));
            break;
        }
        default:
            memset(ref + off, 0, len);
            CHECK_EQ("write zeroes", 0, blk_pwrite_zeroes(blk, off, len, BLK_ZERO_MAY_UNMAP));
            break;
        }
        if (i % 500 == 499) {
            CHECK_EQ("flush", 0, blk_flush(blk));
            if (reopen) {
                blk_close(blk);
                blk = open_img(path, "qcow2", opts);
            }
        }
    }
    CHECK_EQ("read all", 0, blk_pread(blk, 0, got, size));
    check_same("whole image", ref, got, size, 0);
    blk_close(blk);

    if (have_tool("qemu-img")) {
        const char *refpath = tmp_path("workload-ref.raw");
        write_file(refpath, ref, size);
        g_autofree char *out = NULL, *out2 = NULL;
        int rc = run(&out, "qemu-img check %s", path);
        CHECK_MSG(rc == 0, "qemu-img check exit %d:\n%s", rc, out);
        rc = run(&out2, "qemu-img compare %s %s", refpath, path);
        CHECK_MSG(rc == 0, "qemu-img compare exit %d:\n%s", rc, out2);
    }
    g_free(ref);
    g_free(got);
    g_free(buf);
}

static void test_qcow2_random_workload_v3(void)
{
    random_workload(tmp_path("rw3.qcow2"), 3, 4096, 16, 8 << 20, 4000, 1, true, ",discard=unmap");
}

static void test_qcow2_random_workload_v2(void)
{
    random_workload(tmp_path("rw2.qcow2"), 2, 65536, 16, 16 << 20, 2000, 2, false, ",discard=unmap,cache=none");
}

/*
 * 512-byte clusters with 64-bit refcounts: a refcount block covers 64
 * clusters and the first table 2 MiB of file, so new refcount blocks and a
 * bigger (moved) refcount table are needed along the way.
 */
static void test_qcow2_random_workload_small_clusters_grow_refcounts(void)
{
    const char *path = tmp_path("rw512.qcow2");
    /* cache=unsafe: hundreds of new refcount blocks, each flushed twice otherwise. */
    random_workload(path, 3, 512, 64, 6 << 20, 3000, 3, true, ",discard=unmap,cache=unsafe");
    uint8_t h[64];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, h, sizeof(h), 0) == sizeof(h));
    close(fd);
    uint32_t rt_clusters = h[56] << 24 | h[57] << 16 | h[58] << 8 | h[59];
    CHECK_MSG(rt_clusters > 1, "refcount table never grew (%u clusters): test exercised nothing",
              rt_clusters);
}

static void test_qcow2_async_writes_in_parallel(void)
{
    const char *path = tmp_path("par.qcow2");
    enum { N = 64, LEN = 20000 };
    create_qcow2(path, 4 << 20, 4096, 3, NULL, NULL);
    BlockBackend *blk = open_img(path, "qcow2", NULL);
    static uint8_t bufs[N][LEN], back[LEN];
    struct iovec iov[N];
    Done d = { 0 };
    for (int i = 0; i < N; i++) {
        fill_pattern(bufs[i], LEN, i * 77);
        iov[i] = (struct iovec){ bufs[i], LEN };
        blk_aio_pwritev(blk, (uint64_t)i * 65536 + 100, &iov[i], 1, on_done, &d);
    }
    blk_drain(blk);
    CHECK_EQ("completions", N, d.count);
    CHECK_EQ("status", 0, d.ret);
    for (int i = 0; i < N; i++) {
        CHECK_EQ("read", 0, blk_pread(blk, (uint64_t)i * 65536 + 100, back, LEN));
        check_same("parallel write", bufs[i], back, LEN, i * 65536 + 100);
    }
    blk_close(blk);
}

/* ---- backing chains and -snapshot ---- */

static void test_qcow2_backing_chain_relative_paths(void)
{
    enum { SIZE = 1 << 20 };
    uint8_t *base = g_malloc(SIZE), *exp = g_malloc(SIZE), *got = g_malloc(SIZE);
    g_autofree char *sub = g_strdup(tmp_path("sub"));
    g_mkdir_with_parents(sub, 0755);
    fill_pattern(base, SIZE, 99);
    write_file(tmp_path("sub/base.raw"), base, SIZE / 2);   /* backing shorter than overlay */
    memcpy(exp, base, SIZE / 2);
    memset(exp + SIZE / 2, 0, SIZE / 2);

    create_qcow2(tmp_path("sub/mid.qcow2"), SIZE, 4096, 3, "base.raw", "raw");
    BlockBackend *blk = open_img(tmp_path("sub/mid.qcow2"), "qcow2", NULL);
    uint8_t w[5000];
    fill_pattern(w, sizeof(w), 5);
    CHECK_EQ("write mid", 0, blk_pwrite(blk, 10000, w, sizeof(w)));   /* partial clusters: COW */
    memcpy(exp + 10000, w, sizeof(w));
    blk_close(blk);

    create_qcow2(tmp_path("sub/top.qcow2"), SIZE, 65536, 2, "mid.qcow2", "qcow2");
    /* Open from another directory: names resolve against each overlay's directory. */
    blk = open_img(tmp_path("sub/top.qcow2"), NULL, NULL);
    CHECK_EQ("write top", 0, blk_pwrite(blk, 12000, w, 100));
    memcpy(exp + 12000, w, 100);
    CHECK_EQ("read chain", 0, blk_pread(blk, 0, got, SIZE));
    check_same("three-level chain", exp, got, SIZE, 0);
    blk_close(blk);

    if (have_tool("qemu-img")) {
        const char *refpath = tmp_path("chain-ref.raw");
        write_file(refpath, exp, SIZE);
        g_autofree char *out = NULL;
        int rc = run(&out, "qemu-img compare -f qcow2 -F raw %s %s", tmp_path("sub/top.qcow2"),
                     refpath);
        CHECK_MSG(rc == 0, "qemu-img compare exit %d: %s", rc, out);
        g_free(out);
        rc = run(&out, "qemu-img check %s && qemu-img check %s", tmp_path("sub/top.qcow2"),
                 tmp_path("sub/mid.qcow2"));
        CHECK_MSG(rc == 0, "qemu-img check exit %d: %s", rc, out);
    }
    g_free(base);
    g_free(exp);
    g_free(got);
}

static void test_qcow2_backing_loop_refused(void)
{
    create_qcow2(tmp_path("loop-a.qcow2"), 1 << 20, 0, 3, "loop-b.qcow2", "qcow2");
    create_qcow2(tmp_path("loop-b.qcow2"), 1 << 20, 0, 3, "loop-a.qcow2", "qcow2");
    g_autofree char *msg = open_img_error(tmp_path("loop-a.qcow2"), "qcow2", true);
    CHECK_MSG(msg && strstr(msg, "backing"), "loop accepted or unclear: %s", msg ? msg : "(opened)");
    create_qcow2(tmp_path("self.qcow2"), 1 << 20, 0, 3, "self.qcow2", "qcow2");
    g_autofree char *msg2 = open_img_error(tmp_path("self.qcow2"), "qcow2", true);
    CHECK_MSG(msg2 && strstr(msg2, "own backing file"), "self loop: %s", msg2 ? msg2 : "(opened)");
}

static void test_snapshot_option_leaves_image_untouched(void)
{
    const char *path = tmp_path("snap-base.raw");
    uint8_t data[4096], back[4096];
    fill_pattern(data, sizeof(data), 3);
    write_file(path, data, sizeof(data));
    BlockBackend *blk;
    BlockOptions o;
    GError *err = NULL;
    blk_options_init(&o);
    o.format = "raw";
    o.snapshot = true;
    blk = blk_open(path, &o, &err);
    CHECK_MSG(blk, "open -snapshot: %s", err ? err->message : "");
    CHECK_EQ("size", sizeof(data), blk_getlength(blk));
    memset(back, 0xee, sizeof(back));
    CHECK_EQ("write", 0, blk_pwrite(blk, 100, back, 1000));
    CHECK_EQ("read", 0, blk_pread(blk, 0, back, sizeof(back)));
    CHECK_EQ("overlay shows the write", 0xee, back[100]);
    CHECK_EQ("overlay shows the base", data[0], back[0]);
    /* The base is only read: another writer may not open it, but a reader may. */
    blk_close(blk);
    g_autofree char *file = NULL;
    gsize len;
    CHECK(g_file_get_contents(path, &file, &len, NULL));
    check_same("base after -snapshot", data, (uint8_t *)file, sizeof(data), 0);
}

/* ---- interop with qemu-img / qemu-io ---- */

static void test_interop_qemu_written_images_read_back(void)
{
    if (!have_tool("qemu-io") || !have_tool("qemu-img"))
        test_skip("qemu-io/qemu-img not installed (Debian qemu-utils)");
    const char *cases[][2] = {
        { "compat=1.1,cluster_size=65536", "v3.qcow2" },
        { "compat=0.10,cluster_size=4096", "v2.qcow2" },
        { "compat=1.1,cluster_size=512,refcount_bits=8", "c512.qcow2" },
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        const char *q = tmp_path(cases[c][1]), *raw = tmp_path("interop.raw");
        g_autofree char *out = NULL;
        int rc = run(&out, "qemu-img create -q -f qcow2 -o %s %s 8M && "
                     "qemu-io -f qcow2 -c 'write -P 0x11 0 70k' -c 'write -P 0x22 1000k 3k' "
                     "-c 'write -z 64k 64k' -c 'write -P 0x33 5M 200k' -c 'discard 5M 64k' "
                     "%s >/dev/null && qemu-img convert -O raw %s %s", cases[c][0], q, q, q, raw);
        CHECK_MSG(rc == 0, "qemu tools failed (%d): %s", rc, out);
        g_autofree char *exp = NULL;
        gsize len;
        CHECK(g_file_get_contents(raw, &exp, &len, NULL));
        uint8_t *got = g_malloc(len);
        BlockBackend *blk = open_img(q, "qcow2", ",readonly=on");
        CHECK_EQ("size", len, blk_getlength(blk));
        CHECK_EQ("read", 0, blk_pread(blk, 0, got, len));
        check_same(cases[c][1], (uint8_t *)exp, got, len, 0);
        blk_close(blk);
        /*
         * Now write over qemu's clusters: a preallocated zero cluster (v3
         * "write -z" over data), a partial cluster, a discarded one.
         */
        blk = open_img(q, "qcow2", NULL);
        uint8_t w[3000];
        memset(w, 0xc3, sizeof(w));
        const uint64_t offs[] = { 64 * 1024 + 100, 1000 * 1024 + 2000, (5 << 20) + 10 };
        for (size_t i = 0; i < ARRAY_LEN(offs); i++) {
            CHECK_EQ("write", 0, blk_pwrite(blk, offs[i], w, sizeof(w)));
            memcpy(exp + offs[i], w, sizeof(w));
        }
        blk_close(blk);
        write_file(raw, exp, len);
        g_free(out);
        out = NULL;
        rc = run(&out, "qemu-img check %s && qemu-img compare %s %s", q, q, raw);
        CHECK_MSG(rc == 0, "%s after Kestrel writes: exit %d: %s", cases[c][1], rc, out);
        g_free(got);
    }
}

static void test_interop_qemu_compressed_image(void)
{
    if (!have_tool("qemu-img"))
        test_skip("qemu-img not installed (Debian qemu-utils)");
    enum { SIZE = 3 << 20 };
    uint8_t *data = g_malloc0(SIZE), *got = g_malloc(SIZE);
    for (int i = 0; i < SIZE; i += 7)
        data[i] = (i / 4096) & 0xff;           /* compressible */
    fill_pattern(data + (1 << 20), 100000, 4);   /* and an incompressible stretch */
    const char *raw = tmp_path("c-src.raw"), *q = tmp_path("c.qcow2");
    write_file(raw, data, SIZE);
    g_autofree char *out = NULL;
    int rc = run(&out, "qemu-img convert -c -O qcow2 -o cluster_size=4096 %s %s", raw, q);
    CHECK_MSG(rc == 0, "qemu-img convert -c: %s", out);
    BlockBackend *blk = open_img(q, "qcow2", NULL);
    CHECK_EQ("read", 0, blk_pread(blk, 0, got, SIZE));
    check_same("compressed image", data, got, SIZE, 0);
    /* Overwriting part of a compressed cluster decompresses it into a normal one. */
    memset(data + 5000, 0x5a, 3000);
    CHECK_EQ("write", 0, blk_pwrite(blk, 5000, data + 5000, 3000));
    CHECK_EQ("read", 0, blk_pread(blk, 0, got, SIZE));
    check_same("after overwrite", data, got, SIZE, 0);
    blk_close(blk);
    g_free(out);
    out = NULL;
    rc = run(&out, "qemu-img check %s", q);
    CHECK_MSG(rc == 0, "qemu-img check exit %d: %s", rc, out);
    g_free(data);
    g_free(got);
}

/* Clusters and L2 tables shared with an internal snapshot are copied on write. */
static void test_qcow2_write_after_qemu_snapshot_copies_on_write(void)
{
    if (!have_tool("qemu-img") || !have_tool("qemu-io"))
        test_skip("qemu-img/qemu-io not installed (Debian qemu-utils)");
    const char *q = tmp_path("snap.qcow2");
    g_autofree char *out = NULL;
    int rc = run(&out, "qemu-img create -q -f qcow2 -o cluster_size=4096 %s 4M && "
                 "qemu-io -c 'write -P 0x31 0 300k' -c 'write -P 0x32 2M 8k' %s >/dev/null && "
                 "qemu-img convert -O raw %s snap-before.raw && qemu-img snapshot -c s1 %s",
                 q, q, q, q);
    CHECK_MSG(rc == 0, "qemu tools: %s", out);
    BlockBackend *blk = open_img(q, "qcow2", ",discard=unmap");
    uint8_t buf[10000];
    memset(buf, 0x77, sizeof(buf));
    CHECK_EQ("write shared", 0, blk_pwrite(blk, 5000, buf, sizeof(buf)));
    CHECK_EQ("write unallocated", 0, blk_pwrite(blk, 3 << 20, buf, 100));
    CHECK_EQ("discard shared", 0, blk_pdiscard(blk, 100 << 10, 64 << 10));
    CHECK_EQ("read", 0, blk_pread(blk, 5000, buf, sizeof(buf)));
    CHECK_EQ("new data visible", 0x77, buf[9999]);
    blk_close(blk);
    g_free(out);
    out = NULL;
    rc = run(&out, "qemu-img check %s", q);
    CHECK_MSG(rc == 0, "qemu-img check after COW: exit %d\n%s", rc, out);
    g_free(out);
    out = NULL;
    rc = run(&out, "qemu-img snapshot -a s1 %s && qemu-img compare %s snap-before.raw && "
             "qemu-img check %s", q, q, q);
    CHECK_MSG(rc == 0, "snapshot contents changed by writes to the active image: %s", out);
}

/*
 * Random writes/discards interleaved with snapshot create, apply and delete;
 * each snapshot's contents are remembered and must come back on apply.
 */
static void test_qcow2_snapshot_random_workload(void)
{
    enum { SIZE = 2 << 20, NSNAP = 4 };
    const char *path = tmp_path("snaprand.qcow2");
    uint8_t *ref = g_malloc0(SIZE), *got = g_malloc(SIZE), buf[20000];
    uint8_t *saved[NSNAP] = { 0 };
    char *names[NSNAP] = { 0 };
    uint32_t seed = 42;
    int made = 0;

    create_qcow2(path, SIZE, 4096, 3, NULL, NULL);
    BlockDriverState *bs = bdrv_open(path, "qcow2", BDRV_O_RDWR | BDRV_O_UNMAP | BDRV_O_NO_FLUSH,
                                    NULL);
    CHECK(bs);
    for (int i = 0; i < 1500; i++) {
        seed = seed * 1664525 + 1013904223;
        uint32_t r = seed >> 8;
        uint64_t off = r % (SIZE - sizeof(buf)), len = 1 + (seed >> 3) % sizeof(buf);
        int slot = (seed >> 20) % NSNAP;
        switch (r % 16) {
        case 0:
            if (!saved[slot]) {
                names[slot] = g_strdup_printf("snap%d", made++);
                CHECK_EQ("snapshot create", 0, bs->drv->snapshot_create(bs, names[slot]));
                saved[slot] = g_memdup2(ref, SIZE);
            }
            break;
        case 1:
            if (saved[slot]) {
                CHECK_EQ("snapshot apply", 0, bs->drv->snapshot_apply(bs, names[slot]));
                memcpy(ref, saved[slot], SIZE);
            }
            break;
        case 2:
            if (saved[slot]) {
                CHECK_EQ("snapshot delete", 0, bs->drv->snapshot_delete(bs, names[slot]));
                g_clear_pointer(&saved[slot], g_free);
                g_clear_pointer(&names[slot], g_free);
            }
            break;
        case 3: {
            uint64_t s0 = (off + 4095) / 4096 * 4096, e0 = (off + len) / 4096 * 4096;
            if (e0 > s0)
                memset(ref + s0, 0, e0 - s0);
            CHECK_EQ("discard", 0, bdrv_pdiscard(bs, off, len));
            break;
        }
        default:
            fill_pattern(buf, len, seed);
            memcpy(ref + off, buf, len);
            CHECK_EQ("write", 0, bdrv_pwrite(bs, off, buf, len));
        }
    }
    CHECK_EQ("read", 0, bdrv_pread(bs, 0, got, SIZE));
    check_same("active image", ref, got, SIZE, 0);
    for (int k = 0; k < NSNAP; k++) {
        if (!saved[k])
            continue;
        CHECK_EQ("final apply", 0, bs->drv->snapshot_apply(bs, names[k]));
        CHECK_EQ("read", 0, bdrv_pread(bs, 0, got, SIZE));
        check_same(names[k], saved[k], got, SIZE, 0);
    }
    BlockCheckResult res;
    FILE *devnull = fopen("/dev/null", "w");
    CHECK_EQ("check", 0, bs->drv->check(bs, &res, 0, devnull));
    fclose(devnull);
    CHECK_EQ("corruptions", 0, res.corruptions);
    CHECK_EQ("leaks", 0, res.leaks);
    bdrv_close(bs);
    if (have_tool("qemu-img")) {
        g_autofree char *out = NULL;
        int rc = run(&out, "qemu-img check %s", path);
        CHECK_MSG(rc == 0, "qemu-img check: exit %d\n%s", rc, out);
    }
    CHECK_MSG(made >= 3, "only %d snapshots were made: the test exercised little", made);
    for (int k = 0; k < NSNAP; k++) {
        g_free(saved[k]);
        g_free(names[k]);
    }
    g_free(ref);
    g_free(got);
}

/* A crashed lazy-refcounts image (dirty bit) gets its refcounts rebuilt on a read-write open. */
static void test_qcow2_dirty_image_rebuilt_on_open(void)
{
    if (!have_tool("qemu-img") || !have_tool("qemu-io"))
        test_skip("qemu-img/qemu-io not installed (Debian qemu-utils)");
    const char *q = tmp_path("dirty.qcow2");
    g_autofree char *out = NULL;
    run(&out, "qemu-img create -q -f qcow2 -o lazy_refcounts=on %s 16M && "
        "qemu-io -f qcow2 -c 'write -P 5 0 300k' -c 'write -P 6 5M 70k' -c abort %s", q, q);
    g_free(out);
    out = NULL;
    int rc = run(&out, "qemu-img info --output=json -U %s | grep -q '\"dirty-flag\": true' && "
                 "qemu-img check %s", q, q);
    CHECK_MSG(rc == 2, "setup: expected a dirty image with refcount errors (check exit 2), "
              "got %d: %s", rc, out);
    BlockBackend *blk = open_img(q, "qcow2", NULL);
    uint8_t buf[4096];
    memset(buf, 0x42, sizeof(buf));
    CHECK_EQ("write", 0, blk_pwrite(blk, 8 << 20, buf, sizeof(buf)));
    CHECK_EQ("read", 0, blk_pread(blk, 299 * 1024, buf, 1024));
    CHECK_EQ("data written before the crash", 5, buf[1023]);
    blk_close(blk);
    g_free(out);
    out = NULL;
    rc = run(&out, "qemu-img check %s && qemu-img info --output=json %s | "
             "grep -q '\"dirty-flag\": false'", q, q);
    CHECK_MSG(rc == 0, "after Kestrel's rebuild: exit %d: %s", rc, out);
}

/* ---- crash safety ---- */

static void crash_child(const char *path, uint32_t seed)
{
    BlockBackend *blk = open_img(path, "qcow2", ",discard=unmap");
    uint8_t buf[20000];
    for (uint32_t i = 0;; i++) {
        seed = seed * 1664525 + 1013904223;
        uint64_t off = (seed >> 4) % ((8 << 20) - sizeof(buf));
        size_t len = 1 + (seed >> 9) % sizeof(buf);
        if (seed % 5 == 0) {
            blk_pdiscard(blk, off, len);
        } else {
            fill_pattern(buf, len, seed);
            blk_pwrite(blk, off, buf, len);
        }
        if (i % 7 == 0)
            blk_flush(blk);
    }
}

static void test_qcow2_kill9_leaves_at_most_leaks(void)
{
    if (!have_tool("qemu-img"))
        test_skip("qemu-img not installed (Debian qemu-utils)");
    const char *path = tmp_path("crash.qcow2");
    for (int round = 0; round < 6; round++) {
        unlink(path);
        create_qcow2(path, 8 << 20, round & 1 ? 512 : 4096, 3, NULL, NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            crash_child(path, round + 10);
            _exit(0);
        }
        g_usleep(30000 + round * 40000);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g_autofree char *out = NULL;
        int rc = run(&out, "qemu-img check %s", path);
        CHECK_MSG(rc == 0 || rc == 3, "round %d: qemu-img check exit %d (corruption):\n%s",
                  round, rc, out);
        /* And we can repair leaks ourselves. */
        g_free(out);
        out = NULL;
        BlockDriverState *bs = bdrv_open(path, "qcow2", BDRV_O_RDWR, NULL);
        CHECK(bs);
        BlockCheckResult r;
        FILE *devnull = fopen("/dev/null", "w");
        CHECK_EQ("repair", 0, bs->drv->check(bs, &r, BDRV_FIX_LEAKS, devnull));
        CHECK_EQ("recheck", 0, bs->drv->check(bs, &r, 0, devnull));
        fclose(devnull);
        CHECK_EQ("leaks after repair", 0, r.leaks);
        CHECK_EQ("corruptions", 0, r.corruptions);
        bdrv_close(bs);
        rc = run(&out, "qemu-img check %s", path);
        CHECK_MSG(rc == 0, "round %d: after repair qemu-img check exit %d:\n%s", round, rc, out);
    }
}

static void cleanup(void)
{
    if (tmpdir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) {
            /* best effort */
        }
    }
}

static const TestCase cases[] = {
    TEST_CASE(test_aio_completions_run_on_main_loop),
    TEST_CASE(test_options_parse_drive_keys),
    TEST_CASE(test_raw_cache_none_unaligned_requests),
    TEST_CASE(test_raw_never_probed_as_qcow2_with_format_raw),
    TEST_CASE(test_lock_second_read_write_open_fails),
    TEST_CASE(test_lock_two_readers_share),
    TEST_CASE(test_qcow2_malformed_headers_refused),
    TEST_CASE(test_qcow2_corrupt_l2_entry_gives_eio),
    TEST_CASE(test_qcow2_corrupt_refcounts_never_overwrite_metadata),
    TEST_CASE(test_qcow2_random_workload_v3),
    TEST_CASE(test_qcow2_random_workload_v2),
    TEST_CASE(test_qcow2_random_workload_small_clusters_grow_refcounts),
    TEST_CASE(test_qcow2_async_writes_in_parallel),
    TEST_CASE(test_qcow2_backing_chain_relative_paths),
    TEST_CASE(test_qcow2_backing_loop_refused),
    TEST_CASE(test_snapshot_option_leaves_image_untouched),
    TEST_CASE(test_interop_qemu_written_images_read_back),
    TEST_CASE(test_interop_qemu_compressed_image),
    TEST_CASE(test_qcow2_write_after_qemu_snapshot_copies_on_write),
    TEST_CASE(test_qcow2_snapshot_random_workload),
    TEST_CASE(test_qcow2_dirty_image_rebuilt_on_open),
    TEST_CASE(test_qcow2_kill9_leaves_at_most_leaks),
    { 0 },
};

int main(int argc, char **argv)
{
    tmpdir = g_dir_make_tmp("kestrel-block-XXXXXX", NULL);
    int ret = test_main("block", cases, argc, argv);
    cleanup();
    return ret;
}

/*
 * qcow2 (QEMU copy-on-write v2), versions 2 and 3.
 *
 * Spec: QEMU docs/interop/qcow2.txt (big-endian throughout); Kestrel's fact
 * sheet /work/shared/docs/qcow2-and-block.md.  Implemented: strict header
 * validation, header extensions (backing format, feature name table),
 * two-level L1/L2 mapping with an L2 cache, zero clusters (v3), zlib
 * compressed clusters (read), backing files (relative names resolved
 * against the overlay's directory), allocation with COW from the backing
 * file/compressed/shared clusters, discard and write-zeroes, internal
 * snapshots (qcow2-snapshot.c), creation, growing, backing-file changes.
 *
 * A dirty image (lazy refcounts, crashed) gets its refcounts rebuilt when
 * opened read-write, as QEMU does.  We never use lazy refcounts ourselves.
 *
 * Not implemented (refused with a message naming the feature): external data
 * files, extended L2 entries, zstd compression, encryption.
 */
#include "block/qcow2.h"
#include "kestrel/log.h"

#include <stdlib.h>
#include <time.h>
#include <zlib.h>

#define QCOW2_L2_CACHE_TABLES 32
#define QCOW2_RB_CACHE_TABLES 16

static const char *const incompat_names[] = {
    "dirty bit", "corrupt bit", "external data file", "compression type",
    "extended L2 entries",
};

uint64_t qcow2_file_length(Qcow2State *s)
{
    int64_t len = bdrv_getlength(s->bs->file);
    return len < 0 ? 0 : (uint64_t)len;
}

void qcow2_compressed_range(Qcow2State *s, uint64_t l2e, uint64_t *off, uint64_t *len)
{
    int x = 62 - (s->cluster_bits - 8);
    uint64_t desc = l2e & ~(QCOW_OFLAG_COPIED | QCOW_OFLAG_COMPRESSED);
    uint64_t nsect = (desc >> x) & ((1ull << (s->cluster_bits - 8)) - 1);

    *off = desc & ((1ull << x) - 1);
    *len = (nsect + 1) * 512 - (*off & 511);
}


static int qcow2_probe(const uint8_t *buf, size_t len)
{
    if (len >= 8 && ld32_be(buf) == QCOW2_MAGIC && (ld32_be(buf + 4) == 2 || ld32_be(buf + 4) == 3))
        return 100;
    return 0;
}

/* ---- header ---- */

static bool qcow2_fail(Qcow2State *s, GError **errp, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool qcow2_fail(Qcow2State *s, GError **errp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    kestrel_set_error(errp, "Could not open '%s': %s", s->bs->filename, msg);
    return false;
}

/* Name of an incompatible feature: from the image's own table, else our list. */
static char *feature_name(const uint8_t *table, uint32_t table_len, int type, int bit)
{
    for (uint32_t i = 0; table && i + 48 <= table_len; i += 48)
        if (table[i] == type && table[i + 1] == bit)
            return g_strndup((const char *)table + i + 2, 46);
    if (type == 0 && bit < (int)ARRAY_LEN(incompat_names))
        return g_strdup(incompat_names[bit]);
    return g_strdup_printf("unknown feature bit %d", bit);
}

bool qcow2_read_snapshots(Qcow2State *s, uint64_t flen, GError **errp)
{
    uint64_t off = s->snapshots_offset;

    if (!s->nb_snapshots)
        return true;
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return qcow2_fail(s, errp, "too many snapshots (%u)", s->nb_snapshots);
    if (off & (s->cluster_size - 1) || off >= flen)
        return qcow2_fail(s, errp, "snapshot table offset 0x%" PRIx64 " invalid", off);
    s->snapshots = g_new0(Qcow2Snapshot, s->nb_snapshots);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        uint8_t h[40], extra[24] = { 0 };
        if (off + 40 > flen || bdrv_pread(s->bs->file, off, h, 40) < 0)
            return qcow2_fail(s, errp, "snapshot table truncated");
        Qcow2Snapshot *sn = &s->snapshots[i];
        sn->l1_offset = ld64_be(h);
        sn->l1_size = ld32_be(h + 8);
        uint16_t id_len = ld16_be(h + 12), name_len = ld16_be(h + 14);
        uint32_t extra_len = ld32_be(h + 36);
        if (extra_len > 1024 || off + 40 + extra_len + id_len + name_len > flen)
            return qcow2_fail(s, errp, "snapshot %u extends beyond the file", i);
        if (sn->l1_offset & (s->cluster_size - 1) || (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
            sn->l1_offset + (uint64_t)sn->l1_size * 8 > flen)
            return qcow2_fail(s, errp, "snapshot %u L1 table invalid", i);
        if (bdrv_pread(s->bs->file, off + 40, extra, MIN(extra_len, sizeof(extra))) < 0)
            return qcow2_fail(s, errp, "snapshot table unreadable");
        sn->info.date_sec = ld32_be(h + 16);
        sn->info.date_nsec = ld32_be(h + 20);
        sn->info.vm_clock_nsec = ld64_be(h + 24);
        sn->info.vm_state_size = ld32_be(h + 32);
        sn->info.icount = -1;
        if (extra_len >= 8)
            sn->info.vm_state_size = ld64_be(extra);
        sn->info.disk_size = extra_len >= 16 ? ld64_be(extra + 8) : s->size;
        if (extra_len >= 24)
            sn->info.icount = (int64_t)ld64_be(extra + 16);
        char *strs = g_malloc0(id_len + name_len + 2);
        if (bdrv_pread(s->bs->file, off + 40 + extra_len, strs, id_len + name_len) < 0) {
            g_free(strs);
            return qcow2_fail(s, errp, "snapshot table unreadable");
        }
        sn->info.id = g_strndup(strs, id_len);
        sn->info.name = g_strndup(strs + id_len, name_len);
        g_free(strs);
        /* Keep the entry verbatim: rewriting the table must preserve unknown extra data. */
        sn->raw_len = 40 + extra_len + id_len + name_len;
        sn->raw = g_malloc0((sn->raw_len + 7) & ~7ull);
        if (bdrv_pread(s->bs->file, off, sn->raw, sn->raw_len) < 0)
            return qcow2_fail(s, errp, "snapshot table unreadable");
        off += (sn->raw_len + 7) & ~7ull;
    }
    s->snapshots_size = off - s->snapshots_offset;
    s->snapshot_infos = g_new0(BlockSnapshotInfo, s->nb_snapshots);
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        s->snapshot_infos[i] = s->snapshots[i].info;
    return true;
}

uint64_t qcow2_snapshot_table_size(Qcow2State *s)
{
    return s->snapshots_size;
}

static bool qcow2_open(BlockDriverState *bs, int flags, GError **errp)
{
    Qcow2State *s = g_new0(Qcow2State, 1);
    uint8_t h[QCOW2_V3_HEADER_LEN + 8];
    uint8_t *cl0 = NULL, *ftable = NULL;
    uint32_t ftable_len = 0;
    uint64_t flen;
    bool ok = false;

    s->bs = bs;
    bs->opaque = s;
    s->rw = flags & BDRV_O_RDWR;
    flen = qcow2_file_length(s);
    memset(h, 0, sizeof(h));
    if (flen < QCOW2_V2_HEADER_LEN) {
        qcow2_fail(s, errp, "file too short for a qcow2 header (%" PRIu64 " bytes)", flen);
        goto out;
    }
    if (bdrv_pread(bs->file, 0, h, MIN(flen, sizeof(h))) < 0) {
        qcow2_fail(s, errp, "cannot read the header");
        goto out;
    }
    if (ld32_be(h + QH_MAGIC) != QCOW2_MAGIC) {
        qcow2_fail(s, errp, "not a qcow2 image (bad magic)");
        goto out;
    }
    s->version = ld32_be(h + QH_VERSION);
    if (s->version != 2 && s->version != 3) {
        qcow2_fail(s, errp, "unsupported qcow2 version %d", s->version);
        goto out;
    }
    s->cluster_bits = ld32_be(h + QH_CLUSTER_BITS);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        qcow2_fail(s, errp, "cluster_bits %d out of range (%d..%d)", s->cluster_bits,
                   QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
        goto out;
    }
    s->cluster_size = 1ull << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_entries = 1ull << s->l2_bits;
    s->size = ld64_be(h + QH_SIZE);
    if (ld32_be(h + QH_CRYPT_METHOD)) {
        qcow2_fail(s, errp, "encrypted images are not supported (crypt_method %u)",
                   ld32_be(h + QH_CRYPT_METHOD));
        goto out;
    }
    s->l1_size = ld32_be(h + QH_L1_SIZE);
    s->l1_offset = ld64_be(h + QH_L1_OFFSET);
    s->rt_offset = ld64_be(h + QH_RT_OFFSET);
    s->rt_clusters = ld32_be(h + QH_RT_CLUSTERS);
    s->nb_snapshots = ld32_be(h + QH_NB_SNAPSHOTS);
    s->snapshots_offset = ld64_be(h + QH_SNAPSHOTS_OFFSET);
    if (s->version == 2) {
        s->header_length = QCOW2_V2_HEADER_LEN;
        s->refcount_order = 4;
    } else {
        if (flen < QCOW2_V3_HEADER_LEN) {
            qcow2_fail(s, errp, "file too short for a version 3 header");
            goto out;
        }
        s->incompat = ld64_be(h + QH_INCOMPAT);
        s->compat = ld64_be(h + QH_COMPAT);
        s->autoclear = ld64_be(h + QH_AUTOCLEAR);
        s->refcount_order = ld32_be(h + QH_REFCOUNT_ORDER);
        s->header_length = ld32_be(h + QH_HEADER_LENGTH);
        if (s->header_length < QCOW2_V3_HEADER_LEN || (s->header_length & 7) ||
            s->header_length > s->cluster_size) {
            qcow2_fail(s, errp, "invalid header_length %u", s->header_length);
            goto out;
        }
        if (s->header_length > QH_COMPRESSION_TYPE)
            s->compression_type = h[QH_COMPRESSION_TYPE];
    }
    /* Unsigned on disk: a huge value must not turn into a negative shift. */
    if ((uint32_t)s->refcount_order > 6) {
        qcow2_fail(s, errp, "refcount_order %u too large (max 6)", (uint32_t)s->refcount_order);
        goto out;
    }
    qcow2_set_refcount_order(s, s->refcount_order);

    /* The whole first cluster: extensions and the backing file name live there. */
    cl0 = g_malloc0(s->cluster_size);
    if (bdrv_pread(bs->file, 0, cl0, MIN(flen, s->cluster_size)) < 0) {
        qcow2_fail(s, errp, "cannot read the header cluster");
        goto out;
    }
    uint64_t backing_off = ld64_be(cl0 + QH_BACKING_OFFSET);
    uint32_t backing_len = ld32_be(cl0 + QH_BACKING_SIZE);
    uint64_t ext_end = backing_off ? MIN(backing_off, s->cluster_size) : s->cluster_size;
    for (uint64_t off = s->header_length; off + 8 <= ext_end;) {
        uint32_t type = ld32_be(cl0 + off), len = ld32_be(cl0 + off + 4);
        if (type == QCOW2_EXT_END)
            break;
        if (len > ext_end - off - 8) {
            qcow2_fail(s, errp, "header extension 0x%08x extends beyond the header cluster", type);
            goto out;
        }
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            g_free(bs->backing_format);
            bs->backing_format = g_strndup((const char *)cl0 + off + 8, len);
        } else if (type == QCOW2_EXT_FEATURE_TABLE) {
            ftable = cl0 + off + 8;
            ftable_len = len;
        }
        off += 8 + ((len + 7ull) & ~7ull);
    }

    /* Features: refuse what we cannot honour, naming it. */
    uint64_t supported = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
    if (s->incompat & ~supported) {
        GString *names = g_string_new(NULL);
        for (int bit = 0; bit < 64; bit++) {
            if (!(s->incompat & ~supported & (1ull << bit)))
                continue;
            g_autofree char *n = feature_name(ftable, ftable_len, 0, bit);
            g_string_append_printf(names, "%s%s", names->len ? ", " : "", n);
        }
        qcow2_fail(s, errp, "unsupported qcow2 feature(s): %s", names->str);
        g_string_free(names, TRUE);
        goto out;
    }
    if (s->compression_type != 0) {
        qcow2_fail(s, errp, "unsupported compression type %d (only zlib)", s->compression_type);
        goto out;
    }
    if (s->rw && (s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
        qcow2_fail(s, errp, "the image is marked corrupt; open it read-only, or repair it "
                   "with 'qemu-img check -r all'");
        goto out;
    }

    /* Tables: aligned, inside the file, big enough. */
    uint64_t l2_span = s->cluster_size * s->l2_entries;
    if (s->size > (1ull << 62)) {
        qcow2_fail(s, errp, "virtual size %" PRIu64 " too large", s->size);
        goto out;
    }
    uint64_t l1_needed = (s->size + l2_span - 1) / l2_span;
    if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        qcow2_fail(s, errp, "L1 table too large (%u entries)", s->l1_size);
        goto out;
    }
    if (s->l1_size < l1_needed) {
        qcow2_fail(s, errp, "L1 table too small (%u entries) for the disk size %" PRIu64,
                   s->l1_size, s->size);
        goto out;
    }
    if (s->l1_size && ((s->l1_offset & (s->cluster_size - 1)) ||
                       s->l1_offset + (uint64_t)s->l1_size * 8 > flen)) {
        qcow2_fail(s, errp, "L1 table at 0x%" PRIx64 " lies outside the image file or is "
                   "misaligned", s->l1_offset);
        goto out;
    }
    if (!s->rt_clusters || (uint64_t)s->rt_clusters * s->cluster_size > QCOW2_MAX_RT_BYTES ||
        (s->rt_offset & (s->cluster_size - 1)) ||
        s->rt_offset + (uint64_t)s->rt_clusters * s->cluster_size > flen) {
        qcow2_fail(s, errp, "refcount table (0x%" PRIx64 ", %u clusters) invalid or outside the "
                   "image file", s->rt_offset, s->rt_clusters);
        goto out;
    }
    if (backing_off) {
        if (backing_len > QCOW2_MAX_BACKING_NAME || backing_len == 0 ||
            backing_off + backing_len > s->cluster_size) {
            qcow2_fail(s, errp, "backing file name (offset %" PRIu64 ", length %u) invalid",
                       backing_off, backing_len);
            goto out;
        }
        bs->backing_filename = g_strndup((const char *)cl0 + backing_off, backing_len);
    }

    s->l1 = g_new0(uint64_t, s->l1_size + 1);
    if (s->l1_size) {
        uint8_t *buf = g_malloc(s->l1_size * 8);
        int ret = bdrv_pread(bs->file, s->l1_offset, buf, s->l1_size * 8);
        for (uint32_t i = 0; i < s->l1_size; i++)
            s->l1[i] = ld64_be(buf + i * 8);
        g_free(buf);
        if (ret < 0) {
            qcow2_fail(s, errp, "cannot read the L1 table");
            goto out;
        }
    }
    s->rt_size = (uint64_t)s->rt_clusters * s->cluster_size / 8;
    s->rt = g_new0(uint64_t, s->rt_size);
    {
        uint8_t *buf = g_malloc(s->rt_size * 8);
        int ret = bdrv_pread(bs->file, s->rt_offset, buf, s->rt_size * 8);
        for (uint64_t i = 0; i < s->rt_size; i++)
            s->rt[i] = ld64_be(buf + i * 8);
        g_free(buf);
        if (ret < 0) {
            qcow2_fail(s, errp, "cannot read the refcount table");
            goto out;
        }
    }
    if (!qcow2_read_snapshots(s, flen, errp))
        goto out;

    qcow2_cache_init(&s->l2_cache, QCOW2_L2_CACHE_TABLES, s->cluster_size, true);
    qcow2_cache_init(&s->rb_cache, QCOW2_RB_CACHE_TABLES, s->cluster_size, false);
    s->cbuf = g_malloc(2 * s->cluster_size + 512);
    s->dbuf = g_malloc(s->cluster_size);

    if (s->rw && (s->incompat & QCOW2_INCOMPAT_DIRTY)) {
        /* Lazy refcounts after a crash: refcounts cannot be trusted, rebuild them (as QEMU). */
        uint8_t f[8];
        st64_be(f, s->incompat & ~QCOW2_INCOMPAT_DIRTY);
        if (qcow2_rebuild_refcounts(s, NULL) < 0 || qcow2_fix_copied(s) < 0 ||
            qcow2_flush_metadata(s) < 0 || bdrv_pwrite(bs->file, QH_INCOMPAT, f, 8) < 0 ||
            bdrv_flush(bs->file) < 0) {
            qcow2_fail(s, errp, "the image is dirty and rebuilding its refcounts failed");
            goto out;
        }
        s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
    }
    if (s->rw && s->autoclear) {
        /* We do not maintain bitmaps or raw external data: clear those promises. */
        uint8_t z[8] = { 0 };
        if (bdrv_pwrite(bs->file, QH_AUTOCLEAR, z, 8) < 0 || bdrv_flush(bs->file) < 0) {
            qcow2_fail(s, errp, "cannot update the header");
            goto out;
        }
        s->autoclear = 0;
    }
    if (!bdrv_open_backing(bs, errp))
        goto out;
    ok = true;
out:
    g_free(cl0);
    if (!ok) {
        bs->opaque = s;
        s->rw = false;      /* nothing to write back */
    }
    return ok;
}

static void qcow2_close(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;

    if (!s)
        return;
    if (s->rw && s->l2_cache.e)
        qcow2_flush_metadata(s);
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    if (s->pending_free)
        g_array_free(s->pending_free, TRUE);
    qcow2_free_snapshots(s);
    g_free(s->l1);
    g_free(s->rt);
    g_free(s->cbuf);
    g_free(s->dbuf);
    g_free(s);
    bs->opaque = NULL;
}

void qcow2_free_snapshots(Qcow2State *s)
{
    for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
        g_free(s->snapshots[i].info.id);
        g_free(s->snapshots[i].info.name);
        g_free(s->snapshots[i].raw);
    }
    g_free(s->snapshots);
    g_free(s->snapshot_infos);
    s->snapshots = NULL;
    s->snapshot_infos = NULL;
}

/* ---- mapping ---- */

/* L2 entry for a guest offset (0 when no L2 table). */
static int l2_entry_get(Qcow2State *s, uint64_t guest, uint64_t *entry)
{
    uint64_t cl = guest >> s->cluster_bits;
    uint64_t i1 = cl >> s->l2_bits, i2 = cl & (s->l2_entries - 1);
    int ret;

    *entry = 0;
    if (i1 >= s->l1_size)
        return 0;
    uint64_t l2off = s->l1[i1] & L1E_OFFSET_MASK;
    if (!l2off)
        return 0;
    uint8_t *t = qcow2_cache_get(s, &s->l2_cache, l2off, false, &ret);
    if (!t)
        return ret;
    *entry = ld64_be(t + i2 * 8);
    return 0;
}

/* The L2 table for guest cluster cl, allocated or un-shared (COW) as needed for a write. */
static uint8_t *l2_table_for_write(Qcow2State *s, uint64_t cl, int *ret)
{
    uint64_t i1 = cl >> s->l2_bits;
    uint64_t l1e = s->l1[i1], l2off = l1e & L1E_OFFSET_MASK;
    uint8_t *t;

    if (l2off && (l1e & QCOW_OFLAG_COPIED))
        return qcow2_cache_get(s, &s->l2_cache, l2off, false, ret);

    uint8_t *copy = NULL;
    if (l2off) {
        /* Shared with a snapshot: copy it, keep the data references. */
        uint8_t *old = qcow2_cache_get(s, &s->l2_cache, l2off, false, ret);
        if (!old)
            return NULL;
        copy = g_memdup2(old, s->cluster_size);
    }
    int64_t n = qcow2_alloc_clusters(s, 1);
    if (n < 0) {
        *ret = (int)n;
        g_free(copy);
        return NULL;
    }
    t = qcow2_cache_get(s, &s->l2_cache, n, true, ret);
    if (!t) {
        g_free(copy);
        return NULL;
    }
    if (copy) {
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t e = ld64_be(copy + j * 8), host = e & L2E_OFFSET_MASK, rc = 0;
            if (!(e & QCOW_OFLAG_COMPRESSED) && host) {
                qcow2_refcount_get(s, host >> s->cluster_bits, &rc);
                e = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
            }
            st64_be(t + j * 8, e);
        }
        g_free(copy);
        qcow2_free_deferred(s, l2off, s->cluster_size);
    }
    s->l1[i1] = (uint64_t)n | QCOW_OFLAG_COPIED;
    s->l1_dirty = true;
    return t;
}

static int read_compressed(Qcow2State *s, uint64_t l2e)
{
    uint64_t off, len;
    z_stream z;
    int ret;

    if (s->dbuf_desc == l2e)
        return 0;
    qcow2_compressed_range(s, l2e, &off, &len);
    len = MIN(len, 2 * s->cluster_size + 512);
    ret = bdrv_pread(s->bs->file, off, s->cbuf, len);
    if (ret < 0)
        return ret;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK)
        return -ENOMEM;
    z.next_in = s->cbuf;
    z.avail_in = len;
    z.next_out = s->dbuf;
    z.avail_out = s->cluster_size;
    ret = inflate(&z, Z_FINISH);
    bool good = (ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) && z.avail_out == 0;
    inflateEnd(&z);
    if (!good) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: compressed cluster at 0x%" PRIx64 " is corrupt\n",
            s->bs->filename, off);
        s->dbuf_desc = 0;
        return -EIO;
    }
    s->dbuf_desc = l2e;
    return 0;
}

static bool l2e_valid(Qcow2State *s, uint64_t e)
{
    if (e & QCOW_OFLAG_COMPRESSED)
        return true;
    uint64_t host = e & L2E_OFFSET_MASK;
    if ((e & L2E_RESERVED_MASK) || (host & (s->cluster_size - 1)) ||
        (s->version == 2 && (e & QCOW_OFLAG_ZERO))) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: corrupt L2 entry 0x%016" PRIx64 "\n", s->bs->filename, e);
        return false;
    }
    return true;
}

/* Read [cl_off, cl_off+q->size) of the guest cluster at 'guest' (cluster aligned). */
static int read_cluster_part(Qcow2State *s, uint64_t guest, uint64_t e, uint64_t cl_off, BlkIov *q)
{
    int ret;

    if (!l2e_valid(s, e))
        return -EIO;
    if (e & QCOW_OFLAG_COMPRESSED) {
        ret = read_compressed(s, e);
        if (ret == 0)
            blkiov_from_buf(q, 0, s->dbuf + cl_off, q->size);
        return ret;
    }
    if (e & QCOW_OFLAG_ZERO) {
        blkiov_memset(q, 0, 0, q->size);
        return 0;
    }
    uint64_t host = e & L2E_OFFSET_MASK;
    if (!host)
        return bdrv_read_backing(s->bs, guest + cl_off, q);
    return bdrv_preadv(s->bs->file, host + cl_off, q);
}

static int qcow2_preadv(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    Qcow2State *s = bs->opaque;
    size_t done = 0;
    int ret = 0;

    while (done < q->size && ret == 0) {
        uint64_t pos = off + done, cl_off = pos & (s->cluster_size - 1);
        uint64_t n = MIN(q->size - done, s->cluster_size - cl_off), e;
        BlkIov part;

        ret = l2_entry_get(s, pos, &e);
        if (ret < 0)
            break;
        /* Merge following clusters that continue the same host run. */
        uint64_t host = e & L2E_OFFSET_MASK;
        if (host && !(e & (QCOW_OFLAG_COMPRESSED | QCOW_OFLAG_ZERO)) && l2e_valid(s, e)) {
            while (done + n < q->size) {
                uint64_t e2;
                if (l2_entry_get(s, pos + n, &e2) < 0 ||
                    (e2 & (QCOW_OFLAG_COMPRESSED | QCOW_OFLAG_ZERO)) ||
                    (e2 & L2E_OFFSET_MASK) != host + cl_off + n || !l2e_valid(s, e2))
                    break;
                n += MIN(q->size - done - n, s->cluster_size);
            }
        }
        blkiov_slice(&part, q, done, n);
        ret = read_cluster_part(s, pos - cl_off, e, cl_off, &part);
        blkiov_free(&part);
        done += n;
    }
    return ret;
}

/* Build the full old contents of a guest cluster (for COW of a partial write). */
static int cluster_old_contents(Qcow2State *s, uint64_t guest, uint64_t e, uint8_t *buf)
{
    struct iovec one;
    BlkIov q;

    blkiov_init_buf(&q, &one, buf, s->cluster_size);
    return read_cluster_part(s, guest, e, 0, &q);
}

/* Drop the host storage an L2 entry owned (after the new entry reaches disk). */
static void release_entry(Qcow2State *s, uint64_t e)
{
    if (e & QCOW_OFLAG_COMPRESSED) {
        uint64_t off, len;
        qcow2_compressed_range(s, e, &off, &len);
        qcow2_free_deferred(s, off, len);
        if (s->dbuf_desc == e)
            s->dbuf_desc = 0;
        /* Its host cluster may become free: never pack more data into it. */
        s->compressed_tail = 0;
    } else if (e & L2E_OFFSET_MASK) {
        qcow2_free_deferred(s, e & L2E_OFFSET_MASK, s->cluster_size);
    }
}

static int write_cluster(Qcow2State *s, uint64_t pos, BlkIov *q)
{
    uint64_t cl = pos >> s->cluster_bits, cl_off = pos & (s->cluster_size - 1);
    uint64_t guest = cl << s->cluster_bits, i2 = cl & (s->l2_entries - 1);
    int ret;

    uint8_t *t = l2_table_for_write(s, cl, &ret);
    if (!t)
        return ret;
    uint64_t e = ld64_be(t + i2 * 8);
    if (!l2e_valid(s, e))
        return -EIO;
    uint64_t host = e & L2E_OFFSET_MASK;
    bool in_place = host && (e & QCOW_OFLAG_COPIED) && !(e & QCOW_OFLAG_COMPRESSED);

    if (in_place && qcow2_overlaps_metadata(s, host, s->cluster_size)) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: data cluster 0x%" PRIx64 " overlaps metadata; image is "
            "corrupt, write refused\n", s->bs->filename, host);
        return -EIO;
    }
    if (in_place && !(e & QCOW_OFLAG_ZERO))
        return bdrv_pwritev(s->bs->file, host + cl_off, q);

    uint8_t *old = NULL;
    if (q->size < s->cluster_size) {
        old = g_malloc(s->cluster_size);
        ret = cluster_old_contents(s, guest, e, old);
        if (ret < 0) {
            g_free(old);
            return ret;
        }
    }
    uint64_t target = host;
    if (!in_place) {
        int64_t n = qcow2_alloc_clusters(s, 1);
        if (n < 0) {
            g_free(old);
            return (int)n;
        }
        target = n;
        /* The allocation may have evicted our L2 table from the cache. */
        t = qcow2_cache_get(s, &s->l2_cache, s->l1[cl >> s->l2_bits] & L1E_OFFSET_MASK, false, &ret);
        if (!t) {
            g_free(old);
            return ret;
        }
    }
    if (old) {
        struct iovec v[3 + 64];
        BlkIov w = { v, 0, s->cluster_size, false };
        BlkIov *parts = q;
        bool big = q->niov > 64;
        if (big) {
            /* Rare: flatten the caller's data into the cluster buffer. */
            blkiov_to_buf(parts, 0, old + cl_off, q->size);
            v[w.niov++] = (struct iovec){ old, s->cluster_size };
        } else {
            if (cl_off)
                v[w.niov++] = (struct iovec){ old, cl_off };
            for (int i = 0; i < q->niov; i++)
                v[w.niov++] = q->iov[i];
            if (cl_off + q->size < s->cluster_size)
                v[w.niov++] = (struct iovec){ old + cl_off + q->size,
                                              s->cluster_size - cl_off - q->size };
        }
        ret = bdrv_pwritev(s->bs->file, target, &w);
        g_free(old);
    } else {
        ret = bdrv_pwritev(s->bs->file, target, q);
    }
    if (ret < 0) {
        if (!in_place)
            qcow2_free_deferred(s, target, s->cluster_size);
        return ret;
    }
    st64_be(t + i2 * 8, target | QCOW_OFLAG_COPIED);
    qcow2_cache_mark_dirty(&s->l2_cache, t);
    if (!in_place)
        release_entry(s, e);
    return 0;
}

static int qcow2_pwritev(BlockDriverState *bs, uint64_t off, BlkIov *q)
{
    Qcow2State *s = bs->opaque;
    size_t done = 0;
    int ret = 0;

    while (done < q->size && ret == 0) {
        uint64_t pos = off + done, cl_off = pos & (s->cluster_size - 1);
        uint64_t n = MIN(q->size - done, s->cluster_size - cl_off);
        BlkIov part;

        blkiov_slice(&part, q, done, n);
        ret = write_cluster(s, pos, &part);
        blkiov_free(&part);
        done += n;
    }
    return ret;
}

/*
 * Replace whole clusters' mappings.  ZERO: read as zeros (v3 zero flag when
 * a backing file would show through, else unallocated).  DISCARD: like QEMU,
 * unallocated, except v3 with a backing file keeps reading zeros.  UNALLOC:
 * unallocated even with a backing file (commit empties the top this way).
 */
enum { SET_ZERO, SET_DISCARD, SET_UNALLOC };

static int set_clusters(Qcow2State *s, uint64_t off, uint64_t len, int mode)
{
    bool backing = s->bs->backing != NULL || s->bs->backing_filename != NULL;
    int ret = 0;

    for (uint64_t pos = off; pos < off + len && ret == 0; pos += s->cluster_size) {
        uint64_t cl = pos >> s->cluster_bits, i2 = cl & (s->l2_entries - 1), e;

        ret = l2_entry_get(s, pos, &e);
        if (ret < 0)
            break;
        uint64_t want;
        if (mode == SET_UNALLOC || !backing)
            want = 0;
        else if (s->version >= 3)
            want = QCOW_OFLAG_ZERO;
        else if (mode == SET_DISCARD)
            want = 0;
        else
            return -ENOTSUP;     /* v2 with backing: the caller writes real zeros */
        if (e == want)
            continue;
        uint8_t *t = l2_table_for_write(s, cl, &ret);
        if (!t)
            break;
        e = ld64_be(t + i2 * 8);
        st64_be(t + i2 * 8, want);
        qcow2_cache_mark_dirty(&s->l2_cache, t);
        release_entry(s, e);
    }
    return ret;
}

static int write_zero_bytes(Qcow2State *s, uint64_t off, uint64_t len)
{
    uint8_t *z = g_malloc0(s->cluster_size);
    int ret = 0;

    while (len && ret == 0) {
        uint64_t n = MIN(len, s->cluster_size - (off & (s->cluster_size - 1)));
        struct iovec one;
        BlkIov q;
        blkiov_init_buf(&q, &one, z, n);
        ret = write_cluster(s, off, &q);
        off += n;
        len -= n;
    }
    g_free(z);
    return ret;
}

static int qcow2_pwrite_zeroes(BlockDriverState *bs, uint64_t off, uint64_t len, unsigned flags)
{
    Qcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t head_end = MIN(off + len, (off + cs - 1) & ~(cs - 1));
    uint64_t tail_start = MAX(head_end, (off + len) & ~(cs - 1));
    int ret;

    ret = write_zero_bytes(s, off, head_end - off);
    if (ret == 0 && tail_start > head_end) {
        ret = set_clusters(s, head_end, tail_start - head_end, SET_ZERO);
        if (ret == -ENOTSUP)
            ret = write_zero_bytes(s, head_end, tail_start - head_end);
    }
    if (ret == 0)
        ret = write_zero_bytes(s, tail_start, off + len - tail_start);
    return ret;
}

static int qcow2_pdiscard(BlockDriverState *bs, uint64_t off, uint64_t len)
{
    Qcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t start = (off + cs - 1) & ~(cs - 1), end = (off + len) & ~(cs - 1);

    /* Only whole clusters; partial ones are left alone (discard is advisory). */
    if (off + len == s->size)
        end = (off + len + cs - 1) & ~(cs - 1);
    if (end <= start)
        return 0;
    return set_clusters(s, start, end - start, SET_DISCARD);
}

static int qcow2_flush(BlockDriverState *bs)
{
    return qcow2_flush_metadata(bs->opaque);
}

/* QEMU exposes whole sectors only (total_sectors = size / 512); match it for interop. */
static int64_t qcow2_getlength(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;
    return s->size & ~511ull;
}

static int qcow2_block_status(BlockDriverState *bs, uint64_t off, uint64_t len,
                              uint64_t *pnum, uint64_t *host_off)
{
    Qcow2State *s = bs->opaque;
    uint64_t e, cl_off = off & (s->cluster_size - 1);
    int ret = l2_entry_get(s, off, &e), st;

    if (ret < 0)
        return ret;
    *host_off = 0;
    if (e & QCOW_OFLAG_COMPRESSED)
        st = BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED | BDRV_BLOCK_ALLOCATED;
    else if (e & QCOW_OFLAG_ZERO)
        st = BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
    else if (e & L2E_OFFSET_MASK) {
        st = BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED;
        *host_off = (e & L2E_OFFSET_MASK) + cl_off;
    } else
        st = bs->backing ? 0 : BDRV_BLOCK_ZERO;
    *pnum = MIN(len, s->cluster_size - cl_off);
    /* Extend over clusters of the same kind (and, for data, the same host run). */
    while (*pnum < len) {
        uint64_t e2, n2 = MIN(len - *pnum, s->cluster_size);
        if (l2_entry_get(s, off + *pnum, &e2) < 0)
            break;
        int st2;
        if (e2 & QCOW_OFLAG_COMPRESSED)
            st2 = BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED | BDRV_BLOCK_ALLOCATED;
        else if (e2 & QCOW_OFLAG_ZERO)
            st2 = BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
        else if (e2 & L2E_OFFSET_MASK)
            st2 = BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ALLOCATED;
        else
            st2 = bs->backing ? 0 : BDRV_BLOCK_ZERO;
        if (st2 != st)
            break;
        if ((st & BDRV_BLOCK_OFFSET_VALID) && (e2 & L2E_OFFSET_MASK) != *host_off + *pnum)
            break;
        *pnum += n2;
    }
    return st;
}

static void qcow2_get_info(BlockDriverState *bs, BlockImageInfo *info)
{
    Qcow2State *s = bs->opaque;

    info->cluster_size = s->cluster_size;
    info->version = s->version;
    info->refcount_bits = s->refcount_bits;
    info->lazy_refcounts = s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
    info->corrupt = s->incompat & QCOW2_INCOMPAT_CORRUPT;
    info->dirty = s->incompat & QCOW2_INCOMPAT_DIRTY;
    info->extended_l2 = false;
    info->compression_type = "zlib";
    info->nb_snapshots = s->nb_snapshots;
    info->snapshots = s->snapshot_infos;
}

/*
 * Compressed cluster write (kestrel-img convert -c): raw deflate, window 2^12
 * (fact sheet §6).  Compressed data is packed byte-granularly into host
 * clusters; each compressed cluster adds one reference to the host clusters
 * it touches.  Incompressible clusters are stored normally.
 */
static int qcow2_pwrite_compressed(BlockDriverState *bs, uint64_t off, const void *buf)
{
    Qcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, cl = off >> s->cluster_bits;
    uint8_t *out = g_malloc(cs);
    z_stream z;
    int ret;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        g_free(out);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)buf;
    z.avail_in = cs;
    z.next_out = out;
    z.avail_out = cs;
    ret = deflate(&z, Z_FINISH);
    uint64_t clen = cs - z.avail_out;
    deflateEnd(&z);
    if (ret != Z_STREAM_END || clen >= cs - 512) {
        struct iovec one;
        BlkIov q;
        g_free(out);
        blkiov_init_buf(&q, &one, (void *)buf, cs);
        return write_cluster(s, off, &q);
    }

    uint8_t *t = l2_table_for_write(s, cl, &ret);
    if (!t)
        goto fail;
    uint64_t host;
    uint64_t tail = s->compressed_tail;
    if (tail && (tail & (cs - 1)) && (tail & (cs - 1)) + clen <= cs) {
        host = tail;
        ret = qcow2_refcount_update(s, host >> s->cluster_bits, 1);
        if (ret < 0)
            goto fail;
    } else {
        int64_t n = qcow2_alloc_clusters(s, 1);
        if (n < 0) {
            ret = (int)n;
            goto fail;
        }
        host = n;
    }
    ret = bdrv_pwrite(bs->file, host, out, clen);
    if (ret < 0)
        goto fail;
    s->compressed_tail = host + clen;
    t = qcow2_cache_get(s, &s->l2_cache, s->l1[cl >> s->l2_bits] & L1E_OFFSET_MASK, false, &ret);
    if (!t)
        goto fail;
    uint64_t i2 = cl & (s->l2_entries - 1), old = ld64_be(t + i2 * 8);
    uint64_t nsect = ((host & 511) + clen + 511) / 512 - 1;
    int x = 62 - (s->cluster_bits - 8);
    st64_be(t + i2 * 8, QCOW_OFLAG_COMPRESSED | (nsect << x) | host);
    qcow2_cache_mark_dirty(&s->l2_cache, t);
    release_entry(s, old);
    ret = 0;
fail:
    g_free(out);
    return ret;
}

static uint64_t qcow2_cluster_size(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;
    return s->cluster_size;
}

/* Commit: forget every mapping of the top image (its data now lives in the backing file). */
static int qcow2_make_empty(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;
    uint64_t span = s->cluster_size * s->l2_entries;
    int ret = 0;

    for (uint32_t i = 0; i < s->l1_size && ret == 0; i++) {
        if (!(s->l1[i] & L1E_OFFSET_MASK))
            continue;
        uint64_t start = i * span, end = MIN(start + span, s->size);
        ret = set_clusters(s, start, ((end - start) + s->cluster_size - 1) & ~(s->cluster_size - 1),
                           SET_UNALLOC);
    }
    return ret == 0 ? qcow2_flush_metadata(s) : ret;
}

/* Grow the virtual disk (a larger L1 table is written before the header points to it). */
static int qcow2_truncate(BlockDriverState *bs, uint64_t len)
{
    Qcow2State *s = bs->opaque;
    uint64_t span = s->cluster_size * s->l2_entries;
    uint64_t need = (len + span - 1) / span;
    uint8_t hdr[12];
    int ret;

    if (len < s->size)
        return -ENOTSUP;
    ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    if (need > s->l1_size) {
        if (need * 8 > QCOW2_MAX_L1_BYTES)
            return -EFBIG;
        uint64_t clusters = (need * 8 + s->cluster_size - 1) / s->cluster_size;
        int64_t off = qcow2_alloc_clusters(s, clusters);
        if (off < 0)
            return (int)off;
        uint8_t *buf = g_malloc0(clusters * s->cluster_size);
        for (uint32_t i = 0; i < s->l1_size; i++)
            st64_be(buf + i * 8, s->l1[i]);
        /* New table and its refcounts on disk before the header switches to it. */
        ret = bdrv_pwrite(bs->file, off, buf, clusters * s->cluster_size);
        g_free(buf);
        if (ret == 0)
            ret = qcow2_flush_metadata(s);
        if (ret < 0)
            return ret;
        st32_be(hdr, need);
        st64_be(hdr + 4, off);
        ret = bdrv_pwrite(bs->file, QH_L1_SIZE, hdr, 12);
        if (ret == 0)
            ret = bdrv_flush(bs->file);
        if (ret < 0)
            return ret;
        uint64_t old_off = s->l1_offset, old_size = s->l1_size;
        uint64_t *l1 = g_new0(uint64_t, need + 1);
        memcpy(l1, s->l1, s->l1_size * 8);
        g_free(s->l1);
        s->l1 = l1;
        s->l1_size = need;
        s->l1_offset = off;
        if (old_size)
            qcow2_free_deferred(s, old_off, old_size * 8);
    }
    st64_be(hdr, len);
    ret = bdrv_pwrite(bs->file, QH_SIZE, hdr, 8);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0)
        s->size = len;
    return ret;
}

/*
 * Copy the header extensions of header cluster cl0 (from header_length up
 * to ext_end) to out at *pos, leaving out those of type drop (QCOW2_EXT_END:
 * keep all), room kept for the end marker.  Unknown extensions survive
 * (qcow2 spec: header extensions).  false when they do not fit the cluster.
 */
static bool header_copy_extensions(Qcow2State *s, const uint8_t *cl0, uint64_t ext_end,
                                   uint8_t *out, size_t *pos, uint32_t drop)
{
    for (uint64_t off = s->header_length; off + 8 <= ext_end;) {
        uint32_t type = ld32_be(cl0 + off), len = ld32_be(cl0 + off + 4);
        uint64_t total = 8 + ((len + 7ull) & ~7ull);
        if (type == QCOW2_EXT_END || off + total > ext_end)
            break;
        if (drop == QCOW2_EXT_END || type != drop) {
            if (*pos + total + 8 > s->cluster_size)
                return false;
            memcpy(out + *pos, cl0 + off, total);
            *pos += total;
        }
        off += total;
    }
    return true;
}

/*
 * Point the image at another backing file (rebase, commit): rewrite the
 * header extensions (keeping unknown ones) and the name after them.
 */
static int qcow2_change_backing(BlockDriverState *bs, const char *name, const char *fmt)
{
    Qcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint8_t *cl0 = g_malloc0(cs), *out = g_malloc0(cs);
    int ret = bdrv_pread(bs->file, 0, cl0, cs);
    size_t pos = s->header_length;

    if (ret < 0)
        goto done;
    memcpy(out, cl0, s->header_length);
    uint64_t old_boff = ld64_be(cl0 + QH_BACKING_OFFSET);
    uint64_t ext_end = old_boff ? MIN(old_boff, cs) : cs;
    if (name && *name && fmt) {
        st32_be(out + pos, QCOW2_EXT_BACKING_FORMAT);
        st32_be(out + pos + 4, strlen(fmt));
        memcpy(out + pos + 8, fmt, strlen(fmt));
        pos += 8 + ((strlen(fmt) + 7) & ~7u);
    }
    if (!header_copy_extensions(s, cl0, ext_end, out, &pos, QCOW2_EXT_BACKING_FORMAT)) {
        ret = -ENOSPC;
        goto done;
    }
    pos += 8;                  /* end-of-extensions marker (zeros) */
    size_t nlen = name ? strlen(name) : 0;
    if (nlen > QCOW2_MAX_BACKING_NAME || pos + nlen > cs) {
        ret = -ENAMETOOLONG;
        goto done;
    }
    st64_be(out + QH_BACKING_OFFSET, nlen ? pos : 0);
    st32_be(out + QH_BACKING_SIZE, nlen);
    if (nlen)
        memcpy(out + pos, name, nlen);
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = bdrv_pwrite(bs->file, 0, out, cs);     /* cluster 0 holds only the header */
    if (ret == 0)
        ret = bdrv_flush(bs->file);
    if (ret == 0) {
        g_free(bs->backing_filename);
        g_free(bs->backing_format);
        bs->backing_filename = nlen ? g_strdup(name) : NULL;
        bs->backing_format = nlen && fmt ? g_strdup(fmt) : NULL;
    }
done:
    g_free(cl0);
    g_free(out);
    return ret;
}

/* ---- amend (qemu-img amend -o compat=, lazy_refcounts=) ---- */

/*
 * Rewrite the header cluster for another version: the 72 common bytes, the
 * v3 fields (header_length 112, as created), then the existing extensions
 * and backing file name moved to follow them.  One cluster-sized write,
 * after all other metadata is on disk.
 */
static int header_rewrite(Qcow2State *s, int version, uint64_t compat)
{
    uint64_t cs = s->cluster_size;
    uint8_t *cl0 = g_malloc0(cs), *out = g_malloc0(cs);
    int ret = bdrv_pread(s->bs->file, 0, cl0, cs);
    size_t pos = version == 3 ? 112 : QCOW2_V2_HEADER_LEN;

    if (ret < 0)
        goto done;
    memcpy(out, cl0, QCOW2_V2_HEADER_LEN);
    st32_be(out + QH_VERSION, version);
    if (version == 3) {
        st64_be(out + QH_INCOMPAT, s->incompat & ~QCOW2_INCOMPAT_DIRTY);
        st64_be(out + QH_COMPAT, compat);
        st64_be(out + QH_AUTOCLEAR, 0);
        st32_be(out + QH_REFCOUNT_ORDER, s->refcount_order);
        st32_be(out + QH_HEADER_LENGTH, 112);
    }
    uint64_t boff = ld64_be(cl0 + QH_BACKING_OFFSET);
    uint32_t blen = ld32_be(cl0 + QH_BACKING_SIZE);
    uint64_t ext_end = boff ? MIN(boff, cs) : cs;
    if (!header_copy_extensions(s, cl0, ext_end, out, &pos, QCOW2_EXT_END)) {
        ret = -ENOSPC;
        goto done;
    }
    pos += 8;                           /* end-of-extensions marker (zeros) */
    if (boff) {
        if (pos + blen > cs || boff + blen > cs) {
            ret = -ENOSPC;
            goto done;
        }
        memcpy(out + pos, cl0 + boff, blen);
        st64_be(out + QH_BACKING_OFFSET, pos);
    }
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = bdrv_pwrite(s->bs->file, 0, out, cs);
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    if (ret == 0) {
        s->version = version;
        s->header_length = version == 3 ? 112 : QCOW2_V2_HEADER_LEN;
        s->compat = version == 3 ? compat : 0;
        if (version == 2)
            s->incompat = s->autoclear = 0;
    }
done:
    g_free(cl0);
    g_free(out);
    return ret;
}

/* Does any snapshot's L2 table hold a zero-flagged entry (which v2 cannot express)? */
static int snapshots_have_zero_entries(Qcow2State *s, bool *found)
{
    uint8_t *tab = g_malloc(s->cluster_size);
    int ret = 0;

    *found = false;
    for (uint32_t i = 0; i < s->nb_snapshots && !*found && ret == 0; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];
        uint8_t *l1 = g_malloc(sn->l1_size * 8 + 1);
        ret = bdrv_pread(s->bs->file, sn->l1_offset, l1, sn->l1_size * 8);
        for (uint32_t k = 0; k < sn->l1_size && ret == 0 && !*found; k++) {
            uint64_t l2off = ld64_be(l1 + k * 8) & L1E_OFFSET_MASK;
            if (!l2off)
                continue;
            ret = bdrv_pread(s->bs->file, l2off, tab, s->cluster_size);
            for (uint64_t j = 0; j < s->l2_entries && ret == 0; j++) {
                uint64_t e = ld64_be(tab + j * 8);
                if (!(e & QCOW_OFLAG_COMPRESSED) && (e & QCOW_OFLAG_ZERO))
                    *found = true;
            }
        }
        g_free(l1);
    }
    g_free(tab);
    return ret;
}

/*
 * compat=0.10 has no zero flag: every zero-flagged cluster of the active
 * view becomes unallocated (no backing file: reads zeros anyway) or a
 * cluster of real zeros, through the normal write path (COW, ordering).
 */
static int expand_zero_clusters(Qcow2State *s)
{
    bool backing = s->bs->backing != NULL || s->bs->backing_filename != NULL;
    int ret = 0;

    for (uint64_t pos = 0; pos < s->size && ret == 0; pos += s->cluster_size) {
        uint64_t e;
        ret = l2_entry_get(s, pos, &e);
        if (ret < 0 || (e & QCOW_OFLAG_COMPRESSED) || !(e & QCOW_OFLAG_ZERO))
            continue;
        if (backing)
            ret = write_zero_bytes(s, pos, s->cluster_size);
        else
            ret = set_clusters(s, pos, s->cluster_size, SET_UNALLOC);
    }
    return ret == 0 ? qcow2_flush_metadata(s) : ret;
}

/* Entry width change, with qemu-img's message when a count does not fit. */
static int amend_refcount_width(Qcow2State *s, int bits, const char **why)
{
    static char msg[160];
    uint64_t bad = 0, rc = 0;
    int ret = qcow2_change_refcount_width(s, bits, &bad);

    if (ret == -ERANGE) {
        /* Count it again for the message (the rebuild counted references). */
        qcow2_refcount_get(s, bad, &rc);
        snprintf(msg, sizeof(msg), "Cannot decrease refcount entry width to %d bits: Cluster at "
                 "offset %#" PRIx64 " has a refcount of %" PRIu64, bits,
                 bad * s->cluster_size, rc);
        *why = msg;
    }
    return ret;
}

int qcow2_amend(BlockDriverState *bs, int version, int lazy, int refcount_bits, const char **why)
{
    Qcow2State *s = bs->opaque;
    int ret;

    *why = NULL;
    if (version == 0)
        version = s->version;
    if (refcount_bits == 0)
        refcount_bits = s->refcount_bits;
    bool want_lazy = lazy < 0 ? (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) && version >= 3 : lazy;
    if (want_lazy && version < 3) {
        *why = "Lazy refcounts only supported with compatibility level 1.1 and above "
               "(use compat=1.1 or greater)";
        return -EINVAL;
    }
    if (version == 2 && refcount_bits != 16) {
        /* qemu-img's two wordings: a width asked for, or the image's own. */
        *why = refcount_bits != s->refcount_bits || s->version == 2 ?
               "Refcount widths other than 16 bits require compatibility level 1.1 or above "
               "(use compat=1.1 or greater)" : "compat=0.10 requires refcount_bits=16";
        return -EINVAL;
    }
    if (version == 2 && s->version == 3) {
        bool found;
        ret = snapshots_have_zero_entries(s, &found);
        if (ret < 0)
            return ret;
        if (found) {
            *why = "Cannot downgrade: a snapshot has zero clusters (delete the snapshots first)";
            return -ENOTSUP;
        }
        /* Back to 16-bit entries while the v3 header can still record the switch. */
        ret = amend_refcount_width(s, 16, why);
        if (ret == 0)
            ret = expand_zero_clusters(s);
        if (ret < 0)
            return ret;
    }
    uint64_t compat = (s->compat & ~QCOW2_COMPAT_LAZY_REFCOUNTS) |
                      (want_lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
    if (version != s->version) {
        ret = header_rewrite(s, version, version == 3 ? compat : 0);
    } else if (version == 3 && compat != s->compat) {
        uint8_t f[8];
        st64_be(f, compat);
        ret = qcow2_flush_metadata(s);
        if (ret == 0)
            ret = bdrv_pwrite(bs->file, QH_COMPAT, f, 8);
        if (ret == 0)
            ret = bdrv_flush(bs->file);
        if (ret == 0)
            s->compat = compat;
    } else {
        ret = 0;
    }
    if (ret == 0 && version == 3 && refcount_bits != s->refcount_bits)
        ret = amend_refcount_width(s, refcount_bits, why);
    return ret;
}

/* ---- creation ---- */

/*
 * preallocation=metadata: every guest cluster gets a host cluster and an L2
 * entry (the data reads as zeros from the not-yet-written file);
 * falloc/full also reserve or write the data space.
 */
static bool qcow2_preallocate(const char *filename, const char *mode, GError **errp)
{
    BlockDriverState *bs = bdrv_open(filename, "qcow2", BDRV_O_RDWR | BDRV_O_NO_BACKING, errp);
    if (!bs)
        return false;
    Qcow2State *s = bs->opaque;
    int ret = 0;
    uint64_t end = 0;

    for (uint64_t pos = 0; pos < s->size && ret == 0; pos += s->cluster_size) {
        uint64_t cl = pos >> s->cluster_bits;
        uint8_t *t = l2_table_for_write(s, cl, &ret);
        if (!t)
            break;
        int64_t host = qcow2_alloc_clusters(s, 1);
        if (host < 0) {
            ret = (int)host;
            break;
        }
        t = qcow2_cache_get(s, &s->l2_cache, s->l1[cl >> s->l2_bits] & L1E_OFFSET_MASK, false, &ret);
        if (!t)
            break;
        st64_be(t + (cl & (s->l2_entries - 1)) * 8, (uint64_t)host | QCOW_OFLAG_COPIED);
        qcow2_cache_mark_dirty(&s->l2_cache, t);
        end = MAX(end, (uint64_t)host + s->cluster_size);
    }
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    /* The data clusters must exist in the file (reading zeros), whatever the mode. */
    if (ret == 0 && end > qcow2_file_length(s)) {
        if (!strcmp(mode, "metadata"))
            ret = bdrv_truncate(bs->file, end);
        else
            ret = bdrv_pwrite_zeroes(bs->file, qcow2_file_length(s), end - qcow2_file_length(s), 0);
    }
    if (ret == 0 && !strcmp(mode, "full")) {
        /* Really write the zeros (fallocate ZERO_RANGE above may leave unwritten extents). */
        uint8_t *z = g_malloc0(s->cluster_size);
        for (uint64_t pos = 0; pos < s->size && ret == 0; pos += s->cluster_size) {
            uint64_t e;
            ret = l2_entry_get(s, pos, &e);
            if (ret == 0)
                ret = bdrv_pwrite(bs->file, e & L2E_OFFSET_MASK, z, s->cluster_size);
        }
        g_free(z);
    }
    if (ret == 0)
        ret = bdrv_flush(bs->file);
    bdrv_close(bs);
    if (ret < 0) {
        kestrel_set_error(errp, "Could not preallocate '%s': %s", filename, g_strerror(-ret));
        return false;
    }
    return true;
}

static void put_ext(uint8_t *buf, size_t *off, uint32_t type, const void *data, uint32_t len)
{
    st32_be(buf + *off, type);
    st32_be(buf + *off + 4, len);
    if (len)
        memcpy(buf + *off + 8, data, len);
    *off += 8 + ((len + 7) & ~7u);
}

bool qcow2_create(const char *filename, const Qcow2CreateOptions *o, GError **errp)
{
    uint64_t cs = o->cluster_size ? o->cluster_size : 65536;
    int version = o->version ? o->version : 3;
    int rbits = o->refcount_bits ? o->refcount_bits : 16;
    int cbits = __builtin_ctzll(cs), rorder = __builtin_ctz(rbits);
    uint64_t size = (o->size + 511) & ~511ull;    /* whole sectors, as qemu-img creates */
    FILE *f;

    if ((cs & (cs - 1)) || cbits < QCOW2_MIN_CLUSTER_BITS || cbits > QCOW2_MAX_CLUSTER_BITS) {
        kestrel_set_error(errp, "Cluster size must be a power of two between 512 and 2M");
        return false;
    }
    if ((rbits & (rbits - 1)) || rbits > 64 || (version == 2 && rbits != 16)) {
        kestrel_set_error(errp, "Refcount width must be a power of two up to 64 bits "
                          "(16 for compat=0.10)");
        return false;
    }
    if (o->lazy_refcounts && version < 3) {
        kestrel_set_error(errp, "Lazy refcounts only supported with compatibility level 1.1 "
                          "and above (use compat=1.1 or greater)");
        return false;
    }
    const char *prealloc = o->preallocation ? o->preallocation : "off";
    if (strcmp(prealloc, "off") && strcmp(prealloc, "metadata") && strcmp(prealloc, "falloc") &&
        strcmp(prealloc, "full")) {
        kestrel_set_error(errp, "Invalid preallocation mode: '%s' (off, metadata, falloc, full)",
                          prealloc);
        return false;
    }
    if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME) {
        kestrel_set_error(errp, "Backing file name too long");
        return false;
    }
    if (o->backing_file && size == 0) {
        g_autofree char *path = bdrv_resolve_backing(filename, o->backing_file);
        BlockDriverState *b = bdrv_open(path, o->backing_fmt, BDRV_O_NO_BACKING, errp);
        if (!b)
            return false;
        size = bdrv_getlength(b);
        bdrv_close(b);
    }
    uint64_t l2_span = cs * (cs / 8);
    uint64_t l1_size = MAX((size + l2_span - 1) / l2_span, 1);
    uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
    uint64_t rbe = cs * 8 / rbits;
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES || 3 + l1_clusters > rbe) {
        kestrel_set_error(errp, "Image size %" PRIu64 " too large for cluster size %" PRIu64,
                          size, cs);
        return false;
    }

    /* Layout: header, refcount table, refcount block, L1 table (as QEMU does). */
    uint64_t total = (3 + l1_clusters) * cs;
    uint8_t *img = g_malloc0(total);
    uint8_t *h = img;
    st32_be(h + QH_MAGIC, QCOW2_MAGIC);
    st32_be(h + QH_VERSION, version);
    st32_be(h + QH_CLUSTER_BITS, cbits);
    st64_be(h + QH_SIZE, size);
    st32_be(h + QH_L1_SIZE, l1_size);
    st64_be(h + QH_L1_OFFSET, 3 * cs);
    st64_be(h + QH_RT_OFFSET, cs);
    st32_be(h + QH_RT_CLUSTERS, 1);
    size_t off = QCOW2_V2_HEADER_LEN;
    if (version == 3) {
        st64_be(h + QH_COMPAT, o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        st32_be(h + QH_REFCOUNT_ORDER, rorder);
        st32_be(h + QH_HEADER_LENGTH, 112);
        off = 112;   /* 104 + compression_type (zlib = 0) + padding */
    }
    if (o->backing_file && o->backing_fmt)
        put_ext(h, &off, QCOW2_EXT_BACKING_FORMAT, o->backing_fmt, strlen(o->backing_fmt));
    if (version == 3) {
        static const struct { uint8_t type, bit; const char *name; } feats[] = {
            { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
            { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
            { 1, 0, "lazy refcounts" }, { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
        };
        uint8_t table[ARRAY_LEN(feats) * 48];
        memset(table, 0, sizeof(table));
        for (size_t i = 0; i < ARRAY_LEN(feats); i++) {
            table[i * 48] = feats[i].type;
            table[i * 48 + 1] = feats[i].bit;
            memcpy(table + i * 48 + 2, feats[i].name, strlen(feats[i].name));
        }
        put_ext(h, &off, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
    }
    put_ext(h, &off, QCOW2_EXT_END, NULL, 0);
    if (o->backing_file) {
        size_t blen = strlen(o->backing_file);
        if (off + blen > cs) {
            g_free(img);
            kestrel_set_error(errp, "Backing file name too long for the cluster size");
            return false;
        }
        st64_be(h + QH_BACKING_OFFSET, off);
        st32_be(h + QH_BACKING_SIZE, blen);
        memcpy(h + off, o->backing_file, blen);
    }
    st64_be(img + cs, 2 * cs);      /* refcount table[0] -> block at cluster 2 */
    for (uint64_t c = 0; c < 3 + l1_clusters; c++) {
        uint8_t *blk = img + 2 * cs;
        switch (rbits) {
        case 8: blk[c] = 1; break;
        case 16: st16_be(blk + 2 * c, 1); break;
        case 32: st32_be(blk + 4 * c, 1); break;
        case 64: st64_be(blk + 8 * c, 1); break;
        default: blk[c * rbits / 8] |= 1u << (c * rbits % 8); break;
        }
    }

    f = fopen(filename, "ab");
    if (!f) {
        g_free(img);
        kestrel_set_error(errp, "Could not create '%s': %s", filename, g_strerror(errno));
        return false;
    }
    fclose(f);
    BlockDriverState *file = bdrv_open_protocol(filename, BDRV_O_RDWR, errp);
    if (!file) {
        g_free(img);
        return false;
    }
    int ret = bdrv_truncate(file, 0);
    if (ret == 0)
        ret = bdrv_pwrite(file, 0, img, total);
    if (ret == 0)
        ret = bdrv_flush(file);
    bdrv_close(file);
    g_free(img);
    if (ret < 0) {
        kestrel_set_error(errp, "Could not write '%s': %s", filename, g_strerror(-ret));
        return false;
    }
    if (strcmp(prealloc, "off") && size)
        return qcow2_preallocate(filename, prealloc, errp);
    return true;
}

const BlockDriver bdrv_qcow2 = {
    .name = "qcow2",
    .serialize = true,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush = qcow2_flush,
    .pdiscard = qcow2_pdiscard,
    .pwrite_zeroes = qcow2_pwrite_zeroes,
    .getlength = qcow2_getlength,
    .block_status = qcow2_block_status,
    .get_info = qcow2_get_info,
    .check = qcow2_check,
    .pwrite_compressed = qcow2_pwrite_compressed,
    .truncate = qcow2_truncate,
    .make_empty = qcow2_make_empty,
    .change_backing = qcow2_change_backing,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_apply = qcow2_snapshot_apply,
    .cluster_size = qcow2_cluster_size,
};

/*
 * qcow2 internal snapshots: create, delete, apply (QEMU docs/interop/qcow2.txt
 * "Snapshots"; fact sheet §3).
 *
 * A snapshot is a copy of the active L1 table.  Creating one adds a
 * reference to every L2 table and data cluster the active L1 reaches (so
 * later guest writes copy on write, since COPIED bits are cleared); deleting
 * drops the references its L1 holds; applying takes references for the
 * snapshot's tree, makes its L1 the active one, then drops the old tree.
 *
 * Ordering for crash safety (refcount >= references on disk at all times):
 * increments are written before the tables that add references; the header
 * switches tables before the old ones lose references; COPIED bits are set
 * only after the refcounts that justify them are on disk.
 */
#include "block/qcow2.h"
#include "kestrel/log.h"

#include <stdlib.h>

/* Add delta to the refcount of every L2 table and data cluster an L1 reaches. */
static int tree_refcount_update(Qcow2State *s, const uint64_t *l1, uint32_t l1_size, int delta)
{
    int ret;

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2off = l1[i] & L1E_OFFSET_MASK;
        if (!l2off)
            continue;
        uint8_t *t = qcow2_cache_get(s, &s->l2_cache, l2off, false, &ret);
        if (!t)
            return ret;
        uint8_t *copy = g_memdup2(t, s->cluster_size);   /* refcount updates may evict it */
        for (uint64_t j = 0; j < s->l2_entries && ret == 0; j++) {
            uint64_t e = ld64_be(copy + j * 8);
            if (e & QCOW_OFLAG_COMPRESSED) {
                uint64_t off, len;
                qcow2_compressed_range(s, e, &off, &len);
                for (uint64_t c = off >> s->cluster_bits; c <= (off + len - 1) >> s->cluster_bits &&
                     ret == 0; c++)
                    ret = qcow2_refcount_update(s, c, delta);
            } else if (e & L2E_OFFSET_MASK) {
                ret = qcow2_refcount_update(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, delta);
            }
        }
        g_free(copy);
        if (ret == 0)
            ret = qcow2_refcount_update(s, l2off >> s->cluster_bits, delta);
        if (ret < 0)
            return ret;
        uint64_t rc;
        if (delta < 0 && qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc) == 0 && rc == 0)
            qcow2_cache_discard(&s->l2_cache, l2off);
    }
    if (delta < 0) {
        /* Freed clusters anywhere: search from the start again, pack nothing into them. */
        s->free_hint = 0;
        s->compressed_tail = 0;
    }
    return 0;
}

/* Make COPIED in the active L1 and its unshared L2 tables say "refcount is exactly 1". */
int qcow2_fix_copied(Qcow2State *s)
{
    int ret = 0;

    for (uint32_t i = 0; i < s->l1_size && ret == 0; i++) {
        uint64_t l2off = s->l1[i] & L1E_OFFSET_MASK, rc;
        if (!l2off)
            continue;
        ret = qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc);
        if (ret < 0)
            break;
        uint64_t want = rc == 1 ? (s->l1[i] | QCOW_OFLAG_COPIED) : (s->l1[i] & ~QCOW_OFLAG_COPIED);
        if (want != s->l1[i]) {
            s->l1[i] = want;
            s->l1_dirty = true;
        }
        bool shared = rc != 1;
        uint8_t *t = qcow2_cache_get(s, &s->l2_cache, l2off, false, &ret);
        if (!t)
            break;
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t e = ld64_be(t + j * 8), host = e & L2E_OFFSET_MASK;
            if ((e & QCOW_OFLAG_COMPRESSED) || !host)
                continue;
            /* In a shared L2 table every data cluster is shared too: COPIED clear. */
            rc = 2;
            if (!shared)
                ret = qcow2_refcount_get(s, host >> s->cluster_bits, &rc);
            if (ret < 0)
                break;
            /* The refcount lookup may have used the cache: fetch the table again. */
            t = qcow2_cache_get(s, &s->l2_cache, l2off, false, &ret);
            if (!t)
                break;
            uint64_t w = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
            if (w != e) {
                st64_be(t + j * 8, w);
                qcow2_cache_mark_dirty(&s->l2_cache, t);
            }
        }
    }
    return ret;
}

static int write_l1_copy(Qcow2State *s, const uint64_t *l1, uint32_t n, uint64_t *off_out)
{
    uint64_t bytes = (uint64_t)n * 8, clusters = (bytes + s->cluster_size - 1) >> s->cluster_bits;
    int ret;

    *off_out = 0;
    if (!n)
        return 0;
    int64_t off = qcow2_alloc_clusters(s, clusters);
    if (off < 0)
        return (int)off;
    uint8_t *buf = g_malloc0(clusters * s->cluster_size);
    for (uint32_t i = 0; i < n; i++)
        st64_be(buf + i * 8, l1[i]);
    ret = bdrv_pwrite(s->bs->file, off, buf, clusters * s->cluster_size);
    g_free(buf);
    *off_out = off;
    return ret;
}

/*
 * Write a new snapshot table made of the kept entries (+ an extra one), point
 * the header at it, and reload the in-memory list.  The old table is freed.
 */
static int snapshot_table_replace(Qcow2State *s, int skip, const uint8_t *extra, size_t extra_len)
{
    GByteArray *t = g_byte_array_new();
    static const uint8_t pad[8];
    uint32_t n = 0;
    int ret;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if ((int)i == skip)
            continue;
        g_byte_array_append(t, s->snapshots[i].raw, s->snapshots[i].raw_len);
        g_byte_array_append(t, pad, ((s->snapshots[i].raw_len + 7) & ~7ul) - s->snapshots[i].raw_len);
        n++;
    }
    if (extra) {
        g_byte_array_append(t, extra, extra_len);
        g_byte_array_append(t, pad, ((extra_len + 7) & ~7ul) - extra_len);
        n++;
    }
    uint64_t new_off = 0;
    if (t->len) {
        uint64_t clusters = (t->len + s->cluster_size - 1) >> s->cluster_bits;
        int64_t off = qcow2_alloc_clusters(s, clusters);
        if (off < 0) {
            g_byte_array_free(t, TRUE);
            return (int)off;
        }
        new_off = off;
        ret = bdrv_pwrite(s->bs->file, new_off, t->data, t->len);
        if (ret < 0) {
            g_byte_array_free(t, TRUE);
            return ret;
        }
    }
    g_byte_array_free(t, TRUE);
    /* New table and all refcounts stable before the header names them. */
    ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    uint8_t hdr[12];
    st32_be(hdr, n);
    st64_be(hdr + 4, new_off);
    ret = bdrv_pwrite(s->bs->file, QH_NB_SNAPSHOTS, hdr, 12);
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    if (ret < 0)
        return ret;
    if (s->nb_snapshots && s->snapshots_size)
        qcow2_free_deferred(s, s->snapshots_offset, s->snapshots_size);
    qcow2_free_snapshots(s);
    s->nb_snapshots = n;
    s->snapshots_offset = new_off;
    s->snapshots_size = 0;
    GError *err = NULL;
    if (!qcow2_read_snapshots(s, qcow2_file_length(s), &err)) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: rereading snapshots: %s\n", s->bs->filename, err->message);
        g_error_free(err);
        return -EIO;
    }
    return 0;
}

static int snapshot_find(Qcow2State *s, const char *id_or_name)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        if (!strcmp(s->snapshots[i].info.id, id_or_name))
            return i;
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        if (!strcmp(s->snapshots[i].info.name, id_or_name))
            return i;
    return -1;
}

int qcow2_snapshot_create(BlockDriverState *bs, const char *name)
{
    Qcow2State *s = bs->opaque;
    int ret;

    if (snapshot_find(s, name) >= 0)
        return -EEXIST;
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
        return -EFBIG;
    ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    /* 1. References for the copy; the active tree is now shared: clear COPIED. */
    ret = tree_refcount_update(s, s->l1, s->l1_size, 1);
    if (ret == 0)
        ret = qcow2_fix_copied(s);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    /* 2. The snapshot's L1 copy, then the table entry and header. */
    uint64_t l1_copy = 0;
    if (ret == 0)
        ret = write_l1_copy(s, s->l1, s->l1_size, &l1_copy);
    if (ret < 0)
        return ret;

    unsigned long next_id = 1;
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        next_id = MAX(next_id, strtoul(s->snapshots[i].info.id, NULL, 10) + 1);
    g_autofree char *id = g_strdup_printf("%lu", next_id);
    size_t id_len = strlen(id), name_len = strlen(name);
    size_t len = 40 + 24 + id_len + name_len;
    uint8_t *e = g_malloc0(len);
    gint64 now = g_get_real_time();
    st64_be(e, l1_copy);
    st32_be(e + 8, s->l1_size);
    st16_be(e + 12, id_len);
    st16_be(e + 14, name_len);
    st32_be(e + 16, now / G_USEC_PER_SEC);
    st32_be(e + 20, (now % G_USEC_PER_SEC) * 1000);
    st32_be(e + 36, 24);                /* extra: vm state size, disk size, icount */
    st64_be(e + 48, s->size);
    st64_be(e + 56, UINT64_MAX);        /* icount disabled */
    memcpy(e + 64, id, id_len);
    memcpy(e + 64 + id_len, name, name_len);
    ret = snapshot_table_replace(s, -1, e, len);
    g_free(e);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    return ret;
}

int qcow2_snapshot_delete(BlockDriverState *bs, const char *id_or_name)
{
    Qcow2State *s = bs->opaque;
    int idx = snapshot_find(s, id_or_name), ret;

    if (idx < 0)
        return -ENOENT;
    uint64_t l1off = s->snapshots[idx].l1_offset;
    uint32_t l1n = s->snapshots[idx].l1_size;
    uint64_t *l1 = g_new0(uint64_t, l1n + 1);
    uint8_t *buf = g_malloc(l1n * 8 + 1);
    ret = bdrv_pread(bs->file, l1off, buf, l1n * 8);
    for (uint32_t i = 0; i < l1n; i++)
        l1[i] = ld64_be(buf + i * 8);
    g_free(buf);
    /* 1. Unlink it (header + table); 2. then drop its references; 3. COPIED. */
    if (ret == 0)
        ret = snapshot_table_replace(s, idx, NULL, 0);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = tree_refcount_update(s, l1, l1n, -1);
    if (ret == 0 && l1n)
        qcow2_free_deferred(s, l1off, (uint64_t)l1n * 8);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = qcow2_fix_copied(s);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    g_free(l1);
    return ret;
}

int qcow2_snapshot_apply(BlockDriverState *bs, const char *id_or_name)
{
    Qcow2State *s = bs->opaque;
    int idx = snapshot_find(s, id_or_name), ret;

    if (idx < 0)
        return -ENOENT;
    Qcow2Snapshot *sn = &s->snapshots[idx];
    if (sn->l1_size > s->l1_size)
        return -ENOTSUP;    /* the disk was grown after the snapshot: not handled yet */
    uint64_t *l1 = g_new0(uint64_t, s->l1_size + 1);
    uint8_t *buf = g_malloc(sn->l1_size * 8 + 1);
    ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = bdrv_pread(bs->file, sn->l1_offset, buf, sn->l1_size * 8);
    for (uint32_t i = 0; i < sn->l1_size; i++)
        l1[i] = ld64_be(buf + i * 8) & ~QCOW_OFLAG_COPIED;
    g_free(buf);
    /* 1. References for the snapshot's tree as the new active one. */
    if (ret == 0)
        ret = tree_refcount_update(s, l1, s->l1_size, 1);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret < 0) {
        g_free(l1);
        return ret;
    }
    /* 2. Switch the active L1 (in place: same offset and size). */
    uint64_t *old = s->l1;
    s->l1 = l1;
    s->l1_dirty = true;
    ret = qcow2_flush_metadata(s);
    /* 3. Drop the old tree's references, then recompute COPIED. */
    if (ret == 0)
        ret = tree_refcount_update(s, old, s->l1_size, -1);
    g_free(old);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    if (ret == 0)
        ret = qcow2_fix_copied(s);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    return ret;
}

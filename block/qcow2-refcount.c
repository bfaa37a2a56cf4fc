/*
 * qcow2 metadata caches, refcounts, cluster allocation, the consistency
 * check and refcount rebuilding (QEMU docs/interop/qcow2.txt "Host cluster
 * management"; fact sheet §2 and §5).
 *
 * Crash safety.  The invariant kept on disk at every instant is
 * "refcount >= number of references", so a kill -9 or power loss can only
 * leak clusters, never let one be handed out twice:
 *   - new refcounts (increments) may reach the disk at any time, so a dirty
 *     refcount block is simply written back when evicted;
 *   - an L2 table is written only after the refcount blocks and the file
 *     (guest data) have been flushed;
 *   - the L1 table is written only after the L2 tables it points to are
 *     flushed;
 *   - decrements (freed clusters) are queued and applied only after the L2/L1
 *     tables that no longer reference them are on disk; until then the
 *     clusters stay allocated and cannot be reused;
 *   - a new refcount block describes itself and is written and flushed before
 *     the refcount table points to it; a grown refcount table is complete on
 *     disk before the header points to it.
 */
#include "block/qcow2.h"
#include "kestrel/log.h"

#include <stdlib.h>

static bool cluster_is_fixed_metadata(Qcow2State *s, uint64_t c);

/* ---- metadata caches (L2 tables, refcount blocks) ---- */

void qcow2_cache_init(Qcow2Cache *c, int n, size_t cluster_size, bool is_l2)
{
    c->n = n;
    c->e = g_new0(Qcow2CacheEntry, n);
    c->is_l2 = is_l2;
    for (int i = 0; i < n; i++)
        c->e[i].data = g_malloc(cluster_size);
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    for (int i = 0; i < c->n; i++)
        g_free(c->e[i].data);
    g_free(c->e);
    c->e = NULL;
    c->n = 0;
}

static int cache_write_entry(Qcow2State *s, Qcow2CacheEntry *e)
{
    /* A corrupt pointer must not turn a table write into a header/L1/refcount-table write. */
    if (qcow2_overlaps_metadata(s, e->offset, s->cluster_size)) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: table at 0x%" PRIx64 " overlaps other metadata; "
            "image is corrupt, not writing it\n", s->bs->filename, e->offset);
        s->alloc_broken = true;
        return -EIO;
    }
    int ret = bdrv_pwrite(s->bs->file, e->offset, e->data, s->cluster_size);
    if (ret == 0)
        e->dirty = false;
    return ret;
}

static int cache_write_dirty(Qcow2State *s, Qcow2Cache *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->e[i].offset && c->e[i].dirty) {
            int ret = cache_write_entry(s, &c->e[i]);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

static bool cache_any_dirty(Qcow2Cache *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].offset && c->e[i].dirty)
            return true;
    return false;
}

/* Evicting a dirty L2 table must respect the ordering: refcounts, data flush, then L2. */
static int cache_evict(Qcow2State *s, Qcow2Cache *c, Qcow2CacheEntry *e)
{
    int ret;

    if (e->offset && e->dirty) {
        if (c->is_l2) {
            ret = cache_write_dirty(s, &s->rb_cache);
            if (ret == 0)
                ret = bdrv_flush(s->bs->file);
            if (ret < 0)
                return ret;
        }
        ret = cache_write_entry(s, e);
        if (ret < 0)
            return ret;
    }
    e->offset = 0;
    return 0;
}

uint8_t *qcow2_cache_get(Qcow2State *s, Qcow2Cache *c, uint64_t offset, bool fresh, int *ret)
{
    Qcow2CacheEntry *victim = NULL;

    *ret = 0;
    if (offset == 0 || (offset & (s->cluster_size - 1))) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: misaligned metadata table offset 0x%" PRIx64 "\n",
            s->bs->filename, offset);
        *ret = -EIO;
        return NULL;
    }
    for (int i = 0; i < c->n; i++) {
        Qcow2CacheEntry *e = &c->e[i];
        if (e->offset == offset) {
            e->lru = ++c->clock;
            if (fresh) {
                memset(e->data, 0, s->cluster_size);
                e->dirty = true;
            }
            return e->data;
        }
        if (!victim || (victim->offset && (!e->offset || e->lru < victim->lru)))
            victim = e;
    }
    *ret = cache_evict(s, c, victim);
    if (*ret < 0)
        return NULL;
    if (fresh) {
        memset(victim->data, 0, s->cluster_size);
        victim->dirty = true;
    } else {
        *ret = bdrv_pread(s->bs->file, offset, victim->data, s->cluster_size);
        if (*ret < 0)
            return NULL;
        victim->dirty = false;
    }
    victim->offset = offset;
    victim->lru = ++c->clock;
    return victim->data;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, const uint8_t *table)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].data == table)
            c->e[i].dirty = true;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].offset == offset) {
            c->e[i].offset = 0;
            c->e[i].dirty = false;
        }
}

/* ---- refcount entries (any width 1..64 bits) ---- */

static uint64_t rb_entry_get(const Qcow2State *s, const uint8_t *blk, uint64_t i)
{
    int bits = s->refcount_bits;

    switch (bits) {
    case 8:  return blk[i];
    case 16: return ld16_be(blk + 2 * i);
    case 32: return ld32_be(blk + 4 * i);
    case 64: return ld64_be(blk + 8 * i);
    default: /* 1, 2, 4 bits: entry 0 in the least significant bits of byte 0 */
        return (blk[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    }
}

static void rb_entry_set(const Qcow2State *s, uint8_t *blk, uint64_t i, uint64_t v)
{
    int bits = s->refcount_bits;

    switch (bits) {
    case 8:  blk[i] = v; break;
    case 16: st16_be(blk + 2 * i, v); break;
    case 32: st32_be(blk + 4 * i, v); break;
    case 64: st64_be(blk + 8 * i, v); break;
    default: {
        uint8_t mask = ((1u << bits) - 1) << (i * bits % 8);
        uint8_t *b = &blk[i * bits / 8];
        *b = (*b & ~mask) | ((v << (i * bits % 8)) & mask);
    }
    }
}

int qcow2_refcount_get(Qcow2State *s, uint64_t cluster, uint64_t *val)
{
    uint64_t t = cluster / s->rb_entries;
    int ret;

    *val = 0;
    if (t >= s->rt_size || !(s->rt[t] & REFT_OFFSET_MASK))
        return 0;
    uint8_t *blk = qcow2_cache_get(s, &s->rb_cache, s->rt[t] & REFT_OFFSET_MASK, false, &ret);
    if (!blk)
        return ret;
    *val = rb_entry_get(s, blk, cluster % s->rb_entries);
    return 0;
}

/* Write a fresh refcount block for table index t at host cluster b (inside range t). */
static int refblock_create_self(Qcow2State *s, uint64_t t, uint64_t b)
{
    uint8_t *blk = g_malloc0(s->cluster_size);
    uint8_t ent[8];
    int ret;

    rb_entry_set(s, blk, b % s->rb_entries, 1);
    ret = bdrv_pwrite(s->bs->file, b * s->cluster_size, blk, s->cluster_size);
    g_free(blk);
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    if (ret < 0)
        return ret;
    st64_be(ent, b * s->cluster_size);
    ret = bdrv_pwrite(s->bs->file, s->rt_offset + t * 8, ent, 8);
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    if (ret < 0)
        return ret;
    s->rt[t] = b * s->cluster_size;
    return 0;
}

/*
 * Switch the image to a new refcount structure laid out at cluster 'start':
 * m refcount blocks, then an n-cluster table.  Crash-safe ordering: blocks
 * and table are written and flushed before the header points at them, and
 * the header switch is flushed before any caller frees the old structure, so
 * a crash at any point leaves either the old or the new one valid (at worst
 * leaking clusters).  Loads s->rt from the new table.  Frees blocks and table.
 */
static int refcount_structure_install(Qcow2State *s, uint64_t start, uint64_t m, uint64_t n,
                                      uint8_t *blocks, uint8_t *table, bool order_changed)
{
    uint64_t cs = s->cluster_size;
    int ret = bdrv_pwrite(s->bs->file, start * cs, blocks, m * cs);
    if (ret == 0)
        ret = bdrv_pwrite(s->bs->file, (start + m) * cs, table, n * cs);
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    if (ret == 0 && order_changed) {
        /*
         * Table location and entry width change together: one write of
         * header bytes 48..99 (read back first), inside the first sector.
         */
        uint8_t hdr[QH_HEADER_LENGTH - QH_RT_OFFSET];
        ret = bdrv_pread(s->bs->file, QH_RT_OFFSET, hdr, sizeof(hdr));
        st64_be(hdr, (start + m) * cs);
        st32_be(hdr + QH_RT_CLUSTERS - QH_RT_OFFSET, n);
        st32_be(hdr + QH_REFCOUNT_ORDER - QH_RT_OFFSET, s->refcount_order);
        if (ret == 0)
            ret = bdrv_pwrite(s->bs->file, QH_RT_OFFSET, hdr, sizeof(hdr));
    } else if (ret == 0) {
        uint8_t hdr[12];
        st64_be(hdr, (start + m) * cs);
        st32_be(hdr + 8, n);
        ret = bdrv_pwrite(s->bs->file, QH_RT_OFFSET, hdr, 12);
    }
    if (ret == 0)
        ret = bdrv_flush(s->bs->file);
    g_free(blocks);
    if (ret == 0) {
        g_free(s->rt);
        s->rt_size = n * cs / 8;
        s->rt = g_new0(uint64_t, s->rt_size);
        for (uint64_t t = 0; t < s->rt_size; t++)
            s->rt[t] = ld64_be(table + t * 8);
        s->rt_offset = (start + m) * cs;
        s->rt_clusters = n;
    }
    g_free(table);
    return ret;
}

/*
 * Grow the refcount table so index need_t exists.  The new refcount blocks
 * and table go in a fresh region past everything the old table covers and
 * past the end of the file, describing themselves.
 */
static int refcount_table_grow(Qcow2State *s, uint64_t need_t)
{
    uint64_t cs = s->cluster_size, rbe = s->rb_entries;
    uint64_t start = MAX(s->rt_size * rbe, (qcow2_file_length(s) + cs - 1) / cs);
    uint64_t m = 1, n = 1;
    int ret = 0;

    for (int iter = 0; iter < 64; iter++) {
        uint64_t end = start + m + n;
        uint64_t first_t = start / rbe, last_t = (end - 1) / rbe;
        uint64_t entries = MAX(MAX(s->rt_size * 2, last_t + 1), need_t + 1);
        uint64_t n2 = (entries * 8 + cs - 1) / cs;
        uint64_t m2 = last_t - first_t + 1;
        if (m2 == m && n2 == n)
            break;
        m = m2;
        n = n2;
    }
    if (n * cs > QCOW2_MAX_RT_BYTES)
        return -EFBIG;

    uint64_t first_t = start / rbe;
    uint8_t *blocks = g_malloc0(m * cs);
    uint8_t *table = g_malloc0(n * cs);
    for (uint64_t x = start; x < start + m + n; x++)
        rb_entry_set(s, blocks + (x / rbe - first_t) * cs, x % rbe, 1);
    for (uint64_t t = 0; t < s->rt_size; t++)
        st64_be(table + t * 8, s->rt[t]);
    for (uint64_t j = 0; j < m; j++)
        st64_be(table + (first_t + j) * 8, (start + j) * cs);

    uint64_t old_off = s->rt_offset, old_clusters = s->rt_clusters;
    ret = refcount_structure_install(s, start, m, n, blocks, table, false);
    if (ret < 0)
        return ret;
    /* The old table is unreferenced now: drop it (a crash before this only leaks it). */
    for (uint64_t i = 0; i < old_clusters; i++) {
        ret = qcow2_refcount_update(s, old_off / cs + i, -1);
        if (ret < 0)
            return ret;
    }
    s->free_hint = MIN(s->free_hint, old_off / cs);
    return 0;
}

int qcow2_refcount_update(Qcow2State *s, uint64_t cluster, int64_t delta)
{
    uint64_t t = cluster / s->rb_entries, v;
    int ret;

    if (t >= s->rt_size || !(s->rt[t] & REFT_OFFSET_MASK)) {
        if (delta < 0) {
            LOG(LOG_GUEST_ERROR, "qcow2 %s: freeing cluster %" PRIu64 " with no refcount\n",
                s->bs->filename, cluster);
            return -EIO;
        }
        return -ENOSPC;    /* callers allocate through qcow2_alloc_clusters */
    }
    uint8_t *blk = qcow2_cache_get(s, &s->rb_cache, s->rt[t] & REFT_OFFSET_MASK, false, &ret);
    if (!blk)
        return ret;
    v = rb_entry_get(s, blk, cluster % s->rb_entries);
    if ((delta < 0 && v < (uint64_t)-delta) || (delta > 0 && s->refcount_max - v < (uint64_t)delta)) {
        LOG(LOG_GUEST_ERROR, "qcow2 %s: refcount of cluster %" PRIu64 " would leave range\n",
            s->bs->filename, cluster);
        return -ERANGE;
    }
    rb_entry_set(s, blk, cluster % s->rb_entries, v + delta);
    qcow2_cache_mark_dirty(&s->rb_cache, blk);
    return 0;
}

uint64_t qcow2_refcount_max_for_order(int order)
{
    return order == 6 ? UINT64_MAX : (1ull << (1 << order)) - 1;
}

void qcow2_set_refcount_order(Qcow2State *s, int order)
{
    s->refcount_order = order;
    s->refcount_bits = 1 << order;
    s->rb_entries = s->cluster_size * 8 / s->refcount_bits;
    s->refcount_max = qcow2_refcount_max_for_order(order);
}

/*
 * A cluster the header says is metadata (header, refcount table, active L1,
 * snapshot table and snapshot L1s).  Finding one with refcount 0 means the
 * refcounts are corrupt: allocating it would overwrite metadata (QEMU's
 * "overlap check").  The image then refuses further allocation.
 */
static bool overlaps(uint64_t off, uint64_t cs, uint64_t start, uint64_t len)
{
    return len != 0 && off + cs > start && off < start + len;
}

/*
 * Which structure the header points at covers host cluster c (the header,
 * the refcount table, an L1 table, the snapshot table); NULL if none.
 */
static const char *fixed_metadata_name(Qcow2State *s, uint64_t c)
{
    uint64_t off = c * s->cluster_size, cs = s->cluster_size;

    if (c == 0)
        return "the header";
    if (overlaps(off, cs, s->rt_offset, (uint64_t)s->rt_clusters * cs))
        return "the refcount table";
    if (overlaps(off, cs, s->l1_offset, (uint64_t)s->l1_size * 8))
        return "the active L1 table";
    if (s->nb_snapshots && overlaps(off, cs, s->snapshots_offset, qcow2_snapshot_table_size(s)))
        return "the snapshot table";
    for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++)
        if (overlaps(off, cs, s->snapshots[i].l1_offset, (uint64_t)s->snapshots[i].l1_size * 8))
            return "a snapshot L1 table";
    return NULL;
}

static bool cluster_is_fixed_metadata(Qcow2State *s, uint64_t c)
{
    return fixed_metadata_name(s, c) != NULL;
}

bool qcow2_overlaps_metadata(Qcow2State *s, uint64_t off, uint64_t len)
{
    uint64_t cs = s->cluster_size;
    for (uint64_t c = off / cs; c <= (off + len - 1) / cs; c++)
        if (cluster_is_fixed_metadata(s, c))
            return true;
    return false;
}

static int64_t alloc_refuse_corrupt(Qcow2State *s, uint64_t c)
{
    LOG(LOG_GUEST_ERROR, "qcow2 %s: refcount of metadata cluster %" PRIu64 " is 0; image is "
        "corrupt, refusing to allocate (run 'kestrel-img check')\n", s->bs->filename, c);
    s->alloc_broken = true;
    return -EIO;
}

int64_t qcow2_alloc_clusters(Qcow2State *s, uint64_t n)
{
    if (s->alloc_broken)
        return -EIO;

    uint64_t c = s->free_hint;
    int ret;

    for (;;) {
        uint64_t i;
        uint64_t v;
        bool restart = false;

        for (i = 0; i < n; i++) {
            uint64_t x = c + i, t = x / s->rb_entries;
            if ((x + 1) * s->cluster_size > (1ull << 56))
                return -EFBIG;
            if (t >= s->rt_size) {
                ret = refcount_table_grow(s, t);
                if (ret < 0)
                    return ret;
                restart = true;
                break;
            }
            if (!(s->rt[t] & REFT_OFFSET_MASK)) {
                if (cluster_is_fixed_metadata(s, x))
                    return alloc_refuse_corrupt(s, x);
                /* Range t has no block: everything in it is free; the block takes x. */
                ret = refblock_create_self(s, t, x);
                if (ret < 0)
                    return ret;
                restart = true;
                break;
            }
            ret = qcow2_refcount_get(s, x, &v);
            if (ret < 0)
                return ret;
            if (v) {
                c = x + 1;
                restart = true;
                break;
            }
            if (cluster_is_fixed_metadata(s, x))
                return alloc_refuse_corrupt(s, x);
        }
        if (!restart)
            break;
    }
    for (uint64_t i = 0; i < n; i++) {
        ret = qcow2_refcount_update(s, c + i, 1);
        if (ret < 0)
            return ret;
    }
    /* Single clusters: everything from the hint up to c was in use. */
    if (n == 1 || c == s->free_hint)
        s->free_hint = c + n;
    return (int64_t)(c * s->cluster_size);
}

void qcow2_free_deferred(Qcow2State *s, uint64_t off, uint64_t len)
{
    uint64_t first = off / s->cluster_size, last = (off + len - 1) / s->cluster_size;

    if (!s->pending_free)
        s->pending_free = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (uint64_t c = first; c <= last; c++) {
        uint64_t o = c * s->cluster_size;
        g_array_append_val(s->pending_free, o);
    }
}

int qcow2_flush_metadata(Qcow2State *s)
{
    int ret;
    bool l2_dirty = cache_any_dirty(&s->l2_cache);

    ret = cache_write_dirty(s, &s->rb_cache);
    if (ret < 0)
        return ret;
    if (l2_dirty || s->l1_dirty) {
        ret = bdrv_flush(s->bs->file);
        if (ret < 0)
            return ret;
        ret = cache_write_dirty(s, &s->l2_cache);
        if (ret < 0)
            return ret;
    }
    if (s->l1_dirty) {
        uint8_t *buf = g_malloc(s->l1_size * 8 + 1);
        for (uint32_t i = 0; i < s->l1_size; i++)
            st64_be(buf + i * 8, s->l1[i]);
        ret = bdrv_flush(s->bs->file);
        if (ret == 0)
            ret = bdrv_pwrite(s->bs->file, s->l1_offset, buf, s->l1_size * 8);
        g_free(buf);
        if (ret < 0)
            return ret;
        s->l1_dirty = false;
    }
    if (s->pending_free && s->pending_free->len) {
        ret = bdrv_flush(s->bs->file);
        if (ret < 0)
            return ret;
        GArray *list = s->pending_free;
        s->pending_free = NULL;
        for (guint i = 0; i < list->len; i++) {
            uint64_t off = g_array_index(list, uint64_t, i), v = 0;
            ret = qcow2_refcount_update(s, off / s->cluster_size, -1);
            if (ret == 0)
                ret = qcow2_refcount_get(s, off / s->cluster_size, &v);
            if (ret < 0)
                break;
            if (v == 0) {
                s->free_hint = MIN(s->free_hint, off / s->cluster_size);
                qcow2_cache_discard(&s->l2_cache, off);
                if (s->bs->flags & BDRV_O_UNMAP)
                    bdrv_pdiscard(s->bs->file, off, s->cluster_size);
            }
        }
        g_array_free(list, TRUE);
        if (ret < 0)
            return ret;
        ret = cache_write_dirty(s, &s->rb_cache);
        if (ret < 0)
            return ret;
    }
    return bdrv_flush(s->bs->file);
}

/* ---- check ---- */

/*
 * The check walks every L1 and L2 table and counts references per host
 * cluster.  An entry that cannot be a valid reference -- not cluster
 * aligned, past the end of the file, or pointing into the header, the
 * refcount table or blocks, an L1 table, the snapshot table or (for data)
 * an L2 table -- is reported as a corruption and, with -r all, cleared: the
 * guest range becomes unallocated (a zero-flagged entry stays a zero entry).
 * (QEMU 7.2 reports misaligned and out-of-file entries but leaves them, so
 * its check never comes out clean, and gives a cluster used as both data
 * and metadata refcount 2, so the guest keeps seeing metadata bytes;
 * clearing lets the image check clean, qemu-img check included.)  Clearing only drops references, so the
 * on-disk invariant "refcount >= references" holds at every step; the
 * clusters it leaked are freed by the leak repair that follows, after the
 * cleared tables are on disk.
 */
typedef struct CheckState {
    Qcow2State *s;
    BlockCheckResult *res;
    FILE *report;
    uint32_t *refs;
    uint64_t nclusters;
    bool fix;                   /* clear bad L1/L2 entries */
    uint8_t *meta;              /* bitmap: fixed metadata clusters, NULL = no overlap check */
    uint8_t *l2set;             /* bitmap: clusters used as L2 tables */
} CheckState;

/* One line of the check report; rebuilding on open passes no report. */
static void G_GNUC_PRINTF(2, 3) check_msg(CheckState *cs, const char *fmt, ...)
{
    va_list ap;

    if (!cs->report)
        return;
    va_start(ap, fmt);
    vfprintf(cs->report, fmt, ap);
    va_end(ap);
}

static bool bm_get(const uint8_t *bm, uint64_t c)
{
    return bm && (bm[c >> 3] >> (c & 7)) & 1;
}

static void bm_set_range(CheckState *cs, uint8_t *bm, uint64_t off, uint64_t len)
{
    uint64_t csz = cs->s->cluster_size;
    if (len == 0)
        return;
    for (uint64_t c = off / csz; c <= (off + len - 1) / csz && c < cs->nclusters; c++)
        bm[c >> 3] |= 1 << (c & 7);
}

/* What metadata host cluster c holds (for messages); NULL if none. */
static const char *check_meta_name(CheckState *cs, uint64_t c, bool data)
{
    if (!bm_get(cs->meta, c))
        return data && bm_get(cs->l2set, c) ? "an L2 table" : NULL;
    /* check_mark_meta marks the fixed structures and the refcount blocks. */
    const char *name = fixed_metadata_name(cs->s, c);
    return name ? name : "a refcount block";
}

/* Mark the clusters the header points at (everything but L2 tables and data). */
static void check_mark_meta(CheckState *cs)
{
    Qcow2State *s = cs->s;
    uint64_t csz = s->cluster_size;

    bm_set_range(cs, cs->meta, 0, csz);
    bm_set_range(cs, cs->meta, s->rt_offset, (uint64_t)s->rt_clusters * csz);
    for (uint64_t t = 0; t < s->rt_size; t++) {
        uint64_t off = s->rt[t] & REFT_OFFSET_MASK;
        if (off && !(off & (csz - 1)))
            bm_set_range(cs, cs->meta, off, csz);
    }
    bm_set_range(cs, cs->meta, s->l1_offset, (uint64_t)s->l1_size * 8);
    if (s->nb_snapshots)
        bm_set_range(cs, cs->meta, s->snapshots_offset, qcow2_snapshot_table_size(s));
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        bm_set_range(cs, cs->meta, s->snapshots[i].l1_offset, (uint64_t)s->snapshots[i].l1_size * 8);
}

/* Why L1 entry l2off cannot point at an L2 table, or NULL if it can. */
static const char *check_l1e_problem(CheckState *cs, uint64_t l2off, const char **what)
{
    uint64_t csz = cs->s->cluster_size;

    *what = NULL;
    if (l2off & (csz - 1))
        return "is not cluster aligned";
    if (l2off / csz >= cs->nclusters)
        return "is beyond the end of the image file";
    *what = check_meta_name(cs, l2off / csz, false);
    return *what ? "overlaps" : NULL;
}

/* Collect the L2 tables all L1 tables point to, so data pointing there is caught. */
static void check_mark_l2_tables(CheckState *cs, uint64_t l1off, uint32_t l1size)
{
    Qcow2State *s = cs->s;
    uint8_t *l1 = g_malloc(l1size * 8 + 1);
    const char *what;

    if (bdrv_pread(s->bs->file, l1off, l1, l1size * 8) == 0) {
        for (uint32_t i = 0; i < l1size; i++) {
            uint64_t l2off = ld64_be(l1 + i * 8) & L1E_OFFSET_MASK;
            if (l2off && !check_l1e_problem(cs, l2off, &what))
                bm_set_range(cs, cs->l2set, l2off, s->cluster_size);
        }
    }
    g_free(l1);
}

static void check_ref(CheckState *cs, uint64_t off, uint64_t len, const char *what)
{
    uint64_t csz = cs->s->cluster_size;

    if (len == 0)
        return;
    for (uint64_t c = off / csz; c <= (off + len - 1) / csz; c++) {
        if (c >= cs->nclusters) {
            check_msg(cs, "ERROR %s at offset 0x%" PRIx64 " is beyond the end of the "
                    "image file\n", what, c * csz);
            cs->res->corruptions++;
            continue;
        }
        if (cs->refs[c] < UINT32_MAX)
            cs->refs[c]++;
    }
}

/* Count one bad entry: a corruption, or one repaired by the caller when cs->fix. */
static void check_count_bad(CheckState *cs)
{
    if (cs->fix)
        cs->res->corruptions_fixed++;
    else
        cs->res->corruptions++;
}

/* Why L2 entry e cannot be a valid reference, or NULL; *what names overlapped metadata. */
static const char *check_l2e_problem(CheckState *cs, uint64_t e, const char **what)
{
    Qcow2State *s = cs->s;
    uint64_t csz = s->cluster_size;

    *what = NULL;
    if (e & QCOW_OFLAG_COMPRESSED) {
        uint64_t off, len;
        qcow2_compressed_range(s, e, &off, &len);
        if (len == 0)
            return NULL;
        if ((off + len - 1) / csz >= cs->nclusters)
            return "is beyond the end of the image file";
        for (uint64_t c = off / csz; c <= (off + len - 1) / csz; c++)
            if ((*what = check_meta_name(cs, c, true)))
                return "overlaps";
        return NULL;
    }
    uint64_t host = e & L2E_OFFSET_MASK;
    if (!host)
        return NULL;
    if (host & (csz - 1))
        return "is not properly aligned";
    if (host / csz >= cs->nclusters)
        return "is beyond the end of the image file";
    *what = check_meta_name(cs, host / csz, true);
    return *what ? "overlaps" : NULL;
}

static void check_l2(CheckState *cs, uint64_t l2off, bool active, uint64_t *prev_host)
{
    Qcow2State *s = cs->s;
    uint8_t *tab = g_malloc(s->cluster_size);
    bool changed = false;

    if (bdrv_pread(s->bs->file, l2off, tab, s->cluster_size) < 0) {
        check_msg(cs, "ERROR: I/O error reading L2 table at 0x%" PRIx64 "\n", l2off);
        cs->res->check_errors++;
        g_free(tab);
        return;
    }
    for (uint64_t j = 0; j < s->l2_entries; j++) {
        uint64_t e = ld64_be(tab + j * 8);
        const char *what, *why = check_l2e_problem(cs, e, &what);
        if (why) {
            bool compressed = e & QCOW_OFLAG_COMPRESSED;
            uint64_t shown = compressed ? e & ~(QCOW_OFLAG_COPIED | QCOW_OFLAG_COMPRESSED)
                                        : e & L2E_OFFSET_MASK;
            check_msg(cs, "%s offset=%" PRIx64 ": %s %s%s%s; L2 entry corrupted.\n",
                    cs->fix ? "Repairing" : "ERROR", shown,
                    compressed ? "Compressed cluster" :
                    (e & QCOW_OFLAG_ZERO) ? "Preallocated cluster" : "Data cluster",
                    why, what ? " " : "", what ? what : "");
            check_count_bad(cs);
            if (cs->fix) {
                /* A zero entry keeps reading zeros; anything else becomes unallocated. */
                uint64_t ne = !compressed && (e & QCOW_OFLAG_ZERO) && s->version >= 3 ?
                              QCOW_OFLAG_ZERO : 0;
                int ret;
                uint8_t *ct = qcow2_cache_get(s, &s->l2_cache, l2off, false, &ret);
                if (!ct) {
                    cs->res->check_errors++;
                } else {
                    st64_be(ct + j * 8, ne);
                    qcow2_cache_mark_dirty(&s->l2_cache, ct);
                    changed = true;
                }
            }
            continue;
        }
        if (e & QCOW_OFLAG_COMPRESSED) {
            uint64_t off, len;
            qcow2_compressed_range(s, e, &off, &len);
            check_ref(cs, off, len, "compressed cluster");
            if (active) {
                cs->res->allocated_clusters++;
                cs->res->compressed_clusters++;
                cs->res->fragmented_clusters++;
            }
            continue;
        }
        uint64_t host = e & L2E_OFFSET_MASK;
        if (!host)
            continue;
        check_ref(cs, host, s->cluster_size, "data cluster");
        if (active) {
            cs->res->allocated_clusters++;
            if (*prev_host && host != *prev_host + s->cluster_size)
                cs->res->fragmented_clusters++;
            *prev_host = host;
        }
    }
    g_free(tab);
    /* On disk now, so a table shared with a snapshot is read back repaired. */
    if (changed && qcow2_flush_metadata(s) < 0)
        cs->res->check_errors++;
}

static void check_l1(CheckState *cs, uint64_t l1off, uint32_t l1size, bool active)
{
    Qcow2State *s = cs->s;
    uint8_t *l1 = g_malloc(l1size * 8 + 1);
    uint64_t prev_host = 0;

    check_ref(cs, l1off, l1size * 8, "L1 table");
    if (bdrv_pread(s->bs->file, l1off, l1, l1size * 8) < 0) {
        cs->res->check_errors++;
        g_free(l1);
        return;
    }
    for (uint32_t i = 0; i < l1size; i++) {
        uint64_t l2off = ld64_be(l1 + i * 8) & L1E_OFFSET_MASK;
        const char *what, *why;
        if (!l2off)
            continue;
        why = check_l1e_problem(cs, l2off, &what);
        if (why) {
            check_msg(cs, "%s l2_offset=%" PRIx64 ": Table %s%s%s; L1 entry corrupted\n",
                    cs->fix ? "Repairing" : "ERROR", l2off, why, what ? " " : "",
                    what ? what : "");
            check_count_bad(cs);
            if (cs->fix && active) {
                s->l1[i] = 0;
                s->l1_dirty = true;
                if (qcow2_flush_metadata(s) < 0)
                    cs->res->check_errors++;
            } else if (cs->fix) {
                uint8_t zero[8] = { 0 };
                if (bdrv_pwrite(s->bs->file, l1off + i * 8, zero, 8) < 0 ||
                    bdrv_flush(s->bs->file) < 0)
                    cs->res->check_errors++;
            }
            continue;
        }
        check_ref(cs, l2off, s->cluster_size, "L2 table");
        check_l2(cs, l2off, active, &prev_host);
    }
    g_free(l1);
}

/* COPIED must be set exactly when the refcount is 1 (active L1 and its L2 tables). */
static void check_copied(CheckState *cs, int fix)
{
    Qcow2State *s = cs->s;
    uint8_t *tab = g_malloc(s->cluster_size);

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1[i], l2off = l1e & L1E_OFFSET_MASK, rc;
        if (!l2off || (l2off & (s->cluster_size - 1)) || l2off / s->cluster_size >= cs->nclusters)
            continue;
        if (qcow2_refcount_get(s, l2off / s->cluster_size, &rc) < 0)
            continue;
        if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
            check_msg(cs, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" PRIx64
                    " refcount=%" PRIu64 "\n", i, l1e, rc);
            cs->res->corruptions++;
        }
        if (bdrv_pread(s->bs->file, l2off, tab, s->cluster_size) < 0)
            continue;
        for (uint64_t j = 0; j < s->l2_entries; j++) {
            uint64_t e = ld64_be(tab + j * 8), host = e & L2E_OFFSET_MASK;
            if ((e & QCOW_OFLAG_COMPRESSED) || !host || (host & (s->cluster_size - 1)))
                continue;
            if (qcow2_refcount_get(s, host / s->cluster_size, &rc) < 0)
                continue;
            if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
                check_msg(cs, "ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                        " refcount=%" PRIu64 "\n", e, rc);
                cs->res->corruptions++;
            }
        }
    }
    g_free(tab);
}

int qcow2_check(BlockDriverState *bs, BlockCheckResult *res, int fix, FILE *report)
{
    Qcow2State *s = bs->opaque;
    CheckState cs = { .s = s, .res = res, .report = report };
    uint64_t csz = s->cluster_size, flen = qcow2_file_length(s);

    memset(res, 0, sizeof(*res));
    cs.nclusters = (flen + csz - 1) / csz;
    if (cs.nclusters > (1ull << 30)) {
        fprintf(report, "ERROR: image file too large to check\n");
        res->check_errors++;
        return -EFBIG;
    }
    cs.refs = g_new0(uint32_t, cs.nclusters + 1);
    res->total_clusters = (s->size + csz - 1) / csz;
    cs.fix = fix & BDRV_FIX_ERRORS;
    if (cs.fix) {
        int ret = qcow2_flush_metadata(s);    /* the walk reads tables from the file */
        if (ret < 0) {
            g_free(cs.refs);
            return ret;
        }
    }
    cs.meta = g_new0(uint8_t, cs.nclusters / 8 + 1);
    cs.l2set = g_new0(uint8_t, cs.nclusters / 8 + 1);
    check_mark_meta(&cs);
    check_mark_l2_tables(&cs, s->l1_offset, s->l1_size);
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        check_mark_l2_tables(&cs, s->snapshots[i].l1_offset, s->snapshots[i].l1_size);

    check_ref(&cs, 0, csz, "header");
    check_l1(&cs, s->l1_offset, s->l1_size, true);
    if (s->nb_snapshots) {
        uint64_t tsize = 0;
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            Qcow2Snapshot *sn = &s->snapshots[i];
            check_l1(&cs, sn->l1_offset, sn->l1_size, false);
        }
        /* Table length was validated at open; recompute it from the parsed entries. */
        tsize = qcow2_snapshot_table_size(s);
        check_ref(&cs, s->snapshots_offset, tsize, "snapshot table");
    }
    check_ref(&cs, s->rt_offset, (uint64_t)s->rt_clusters * csz, "refcount table");
    for (uint64_t t = 0; t < s->rt_size; t++) {
        uint64_t off = s->rt[t] & REFT_OFFSET_MASK;
        if (!off)
            continue;
        if (off & (csz - 1)) {
            fprintf(report, "ERROR refcount block %" PRIu64 " is not cluster aligned; "
                    "refcount table entry corrupted\n", t);
            res->corruptions++;
            continue;
        }
        check_ref(&cs, off, csz, "refcount block");
    }

    uint64_t last_used = 0;
    /*
     * Like qemu-img, only clusters inside the file: a refcount past the end
     * (allocated, crash before the data was written) is harmless.
     */
    for (uint64_t c = 0; c < cs.nclusters; c++) {
        uint64_t rc, r = cs.refs[c];
        if (qcow2_refcount_get(s, c, &rc) < 0) {
            res->check_errors++;
            continue;
        }
        if (r)
            last_used = c + 1;
        if (rc == r)
            continue;
        if (rc > r) {
            fprintf(report, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
                    (fix & BDRV_FIX_LEAKS) ? "Repairing" : "Leaked", c, rc, r);
            if ((fix & BDRV_FIX_LEAKS) && qcow2_refcount_update(s, c, (int64_t)r - (int64_t)rc) == 0)
                res->leaks_fixed++;
            else
                res->leaks++;
        } else {
            fprintf(report, "ERROR cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
                    c, rc, r);
            res->corruptions++;
        }
    }
    check_copied(&cs, fix);
    res->image_end_offset = last_used * csz;
    g_free(cs.refs);
    g_free(cs.meta);
    g_free(cs.l2set);
    if ((fix & BDRV_FIX_ERRORS) && res->corruptions) {
        int ret = qcow2_rebuild_refcounts(s, report);
        if (ret == 0)
            ret = qcow2_fix_copied(s);
        if (ret == 0)
            ret = qcow2_flush_metadata(s);
        if (ret < 0)
            return ret;
        res->corruptions_fixed += res->corruptions;
        res->corruptions = 0;
        return 0;
    }
    if (fix && (res->leaks_fixed || res->corruptions_fixed))
        return qcow2_flush_metadata(s);
    return 0;
}

/*
 * Rebuild the whole refcount structure from the references (QEMU does this
 * for "check -r all" and for dirty lazy-refcount images), with entries of
 * 2^order bits.  The new blocks and table go past the end of the file and
 * describe themselves; the header switches to them (and to the new width)
 * in one write; the old structure is simply no longer referenced (its
 * clusters get refcount 0).  A crash before the header write leaves the
 * old, still-valid-as-before structure.  A width too narrow for some
 * cluster's count fails with -ERANGE and *bad_cluster set, changing nothing.
 */
static int rebuild_refcounts(Qcow2State *s, FILE *report, int order, uint64_t *bad_cluster)
{
    BlockCheckResult res;
    CheckState cs = { .s = s, .res = &res, .report = report };
    uint64_t csz = s->cluster_size;
    int ret;

    ret = qcow2_flush_metadata(s);
    if (ret < 0)
        return ret;
    memset(&res, 0, sizeof(res));
    cs.nclusters = (qcow2_file_length(s) + csz - 1) / csz;
    if (cs.nclusters > (1ull << 30))
        return -EFBIG;
    cs.refs = g_new0(uint32_t, cs.nclusters + 1);
    check_ref(&cs, 0, csz, "header");
    check_l1(&cs, s->l1_offset, s->l1_size, true);
    for (uint32_t i = 0; i < s->nb_snapshots; i++)
        check_l1(&cs, s->snapshots[i].l1_offset, s->snapshots[i].l1_size, false);
    if (s->nb_snapshots)
        check_ref(&cs, s->snapshots_offset, qcow2_snapshot_table_size(s), "snapshot table");

    int old_order = s->refcount_order;
    if (order != old_order) {
        uint64_t max = qcow2_refcount_max_for_order(order);
        for (uint64_t c = 0; c < cs.nclusters; c++) {
            if (cs.refs[c] > max) {
                *bad_cluster = c;
                g_free(cs.refs);
                return -ERANGE;
            }
        }
        qcow2_set_refcount_order(s, order);
    }
    uint64_t rbe = s->rb_entries;

    /*
     * Layout past the end of the file (never over the old structure, which
     * stays valid until the header switches): m blocks, then an n-cluster table.
     */
    uint64_t start = MAX(cs.nclusters, 1), m = 1, n = 1;
    for (int iter = 0; iter < 64; iter++) {
        uint64_t end = start + m + n;
        uint64_t m2 = (end + rbe - 1) / rbe;
        uint64_t n2 = (m2 * 8 + csz - 1) / csz;
        if (m2 == m && n2 == n)
            break;
        m = m2;
        n = n2;
    }
    uint8_t *blocks = NULL, *table = NULL;
    if (n * csz > QCOW2_MAX_RT_BYTES) {
        ret = -EFBIG;
        goto fail;
    }
    blocks = g_malloc0(m * csz);
    table = g_malloc0(n * csz);
    for (uint64_t c = 0; c < start + m + n; c++) {
        uint64_t v = c >= start ? 1 : (c < cs.nclusters ? cs.refs[c] : 0);
        rb_entry_set(s, blocks + (c / rbe) * csz, c % rbe, MIN(v, s->refcount_max));
    }
    for (uint64_t j = 0; j < m; j++)
        st64_be(table + j * 8, (start + j) * csz);

    if (report)
        fprintf(report, "Rebuilding refcount structure\n");
    ret = refcount_structure_install(s, start, m, n, blocks, table, order != old_order);
    if (ret < 0)
        goto fail_freed;
    g_free(cs.refs);
    for (int i = 0; i < s->rb_cache.n; i++)
        s->rb_cache.e[i].offset = 0;
    s->free_hint = 0;
    s->compressed_tail = 0;
    return 0;

fail:
    g_free(blocks);
    g_free(table);
fail_freed:
    g_free(cs.refs);
    if (order != old_order) {
        /* The header still names the old structure: keep using it. */
        qcow2_set_refcount_order(s, old_order);
    }
    return ret;
}

int qcow2_rebuild_refcounts(Qcow2State *s, FILE *report)
{
    uint64_t bad;
    return rebuild_refcounts(s, report, s->refcount_order, &bad);
}

int qcow2_change_refcount_width(Qcow2State *s, int bits, uint64_t *bad_cluster)
{
    if (bits < 1 || bits > 64 || (bits & (bits - 1)))
        return -EINVAL;
    if (bits == s->refcount_bits)
        return 0;
    int ret = rebuild_refcounts(s, NULL, __builtin_ctz(bits), bad_cluster);
    if (ret == 0)
        ret = qcow2_flush_metadata(s);
    return ret;
}

/*
 * qcow2 driver internals shared by qcow2.c (header, mapping, guest I/O) and
 * qcow2-refcount.c (metadata caches, refcounts, allocation, check).
 * Format: QEMU docs/interop/qcow2.txt; fact sheet /work/shared/docs/qcow2-and-block.md.
 */
#ifndef KESTREL_QCOW2_H
#define KESTREL_QCOW2_H

#include "block/block-int.h"

#include <inttypes.h>
#include <string.h>

#define QCOW2_MAGIC              0x514649fbu
#define QCOW2_V2_HEADER_LEN      72
#define QCOW2_V3_HEADER_LEN      104
#define QCOW2_MIN_CLUSTER_BITS   9
#define QCOW2_MAX_CLUSTER_BITS   21
#define QCOW2_MAX_L1_BYTES       (32u << 20)     /* QEMU implementation limit */
#define QCOW2_MAX_RT_BYTES       (8u << 20)
#define QCOW2_MAX_BACKING_NAME   1023
#define QCOW2_MAX_SNAPSHOTS      65536

/* Header field offsets (qcow2.txt "Header"). */
enum {
    QH_MAGIC = 0, QH_VERSION = 4, QH_BACKING_OFFSET = 8, QH_BACKING_SIZE = 16,
    QH_CLUSTER_BITS = 20, QH_SIZE = 24, QH_CRYPT_METHOD = 32, QH_L1_SIZE = 36,
    QH_L1_OFFSET = 40, QH_RT_OFFSET = 48, QH_RT_CLUSTERS = 56, QH_NB_SNAPSHOTS = 60,
    QH_SNAPSHOTS_OFFSET = 64, QH_INCOMPAT = 72, QH_COMPAT = 80, QH_AUTOCLEAR = 88,
    QH_REFCOUNT_ORDER = 96, QH_HEADER_LENGTH = 100, QH_COMPRESSION_TYPE = 104,
};

/* incompatible_features */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
/* compatible_features */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* Header extension types. */
#define QCOW2_EXT_END            0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857u

/* L1/L2/refcount-table entries. */
#define QCOW_OFLAG_COPIED     (1ull << 63)
#define QCOW_OFLAG_COMPRESSED (1ull << 62)
#define QCOW_OFLAG_ZERO       (1ull << 0)
#define L1E_OFFSET_MASK       0x00fffffffffffe00ull
#define L2E_OFFSET_MASK       0x00fffffffffffe00ull
#define L1E_RESERVED_MASK     0x7f000000000001ffull
#define L2E_RESERVED_MASK     0x3f000000000001feull
#define REFT_OFFSET_MASK      0xfffffffffffffe00ull

typedef struct Qcow2CacheEntry {
    uint64_t offset;           /* host offset of the table, 0 = empty slot */
    uint8_t *data;             /* one cluster, on-disk (big-endian) layout */
    uint64_t lru;
    bool dirty;
} Qcow2CacheEntry;

typedef struct Qcow2Cache {
    Qcow2CacheEntry *e;
    int n;
    uint64_t clock;
    bool is_l2;
} Qcow2Cache;

typedef struct Qcow2Snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;
    uint8_t *raw;               /* the table entry as stored */
    size_t raw_len;             /* unpadded */
    BlockSnapshotInfo info;
} Qcow2Snapshot;

typedef struct Qcow2State {
    BlockDriverState *bs;
    bool rw;
    int version;
    int cluster_bits;
    uint64_t cluster_size;
    int l2_bits;                /* log2(entries per L2 table) */
    uint64_t l2_entries;
    uint64_t size;              /* virtual disk size */

    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1;               /* host byte order */
    bool l1_dirty;

    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint64_t rt_size;           /* entries */
    uint64_t *rt;               /* host byte order */
    int refcount_order;
    int refcount_bits;
    uint64_t rb_entries;        /* refcounts per refcount block */
    uint64_t refcount_max;

    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size;    /* bytes of the snapshot table */
    Qcow2Snapshot *snapshots;
    BlockSnapshotInfo *snapshot_infos;

    uint64_t incompat, compat, autoclear;
    uint32_t header_length;
    int compression_type;

    Qcow2Cache l2_cache, rb_cache;
    uint64_t free_hint;         /* cluster index where free-space search starts */
    GArray *pending_free;       /* uint64_t host offsets, each loses one reference */

    uint8_t *cbuf;              /* compressed input, 2 clusters + 512 */
    uint8_t *dbuf;              /* one decompressed cluster */
    uint64_t dbuf_desc;         /* compressed descriptor dbuf holds, 0 = none */
    uint64_t compressed_tail;   /* host byte after the last compressed write, 0 = none */
    bool alloc_broken;          /* corrupt refcounts found: no more allocation */
} Qcow2State;

static inline uint64_t ld64_be(const void *p)
{ return __builtin_bswap64(*(const uint64_t *)__builtin_assume_aligned(p, 1)); }
static inline uint32_t ld32_be(const void *p)
{ const uint8_t *b = p; return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; }
static inline void st64_be(void *p, uint64_t v)
{ v = __builtin_bswap64(v); memcpy(p, &v, 8); }
static inline void st32_be(void *p, uint32_t v)
{ uint8_t *b = p; b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }
static inline void st16_be(void *p, uint16_t v)
{ uint8_t *b = p; b[0] = v >> 8; b[1] = v; }
static inline uint16_t ld16_be(const void *p)
{ const uint8_t *b = p; return (uint16_t)(b[0] << 8 | b[1]); }

/* qcow2-refcount.c */
void qcow2_cache_init(Qcow2Cache *c, int n, size_t cluster_size, bool is_l2);
void qcow2_cache_destroy(Qcow2Cache *c);
/* Load (or, with fresh, create zeroed) the table at host offset; NULL + *ret on error. */
uint8_t *qcow2_cache_get(Qcow2State *s, Qcow2Cache *c, uint64_t offset, bool fresh, int *ret);
void qcow2_cache_mark_dirty(Qcow2Cache *c, const uint8_t *table);
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);

/* Refcount width 2^order bits (0..6): sets refcount_bits, rb_entries and refcount_max with it. */
void qcow2_set_refcount_order(Qcow2State *s, int order);
uint64_t qcow2_refcount_max_for_order(int order);
int qcow2_refcount_get(Qcow2State *s, uint64_t cluster, uint64_t *val);
int qcow2_refcount_update(Qcow2State *s, uint64_t cluster, int64_t delta);
/* Allocate n contiguous clusters (refcount 1); host offset or -errno. */
int64_t qcow2_alloc_clusters(Qcow2State *s, uint64_t n);
/* Drop one reference to each cluster of [off, off+len) once the new metadata is on disk. */
void qcow2_free_deferred(Qcow2State *s, uint64_t off, uint64_t len);
/* Write back caches in crash-safe order (refcounts, data flush, L2, L1, frees). */
int qcow2_flush_metadata(Qcow2State *s);
/* Does [off, off+len) touch the header, refcount table, L1 or snapshot tables? */
bool qcow2_overlaps_metadata(Qcow2State *s, uint64_t off, uint64_t len);
/* Write a fresh refcount structure computed from the references. */
int qcow2_rebuild_refcounts(Qcow2State *s, FILE *report);
/*
 * Switch to refcount entries of 'bits' bits (v3 only) by rebuilding the
 * structure; -ERANGE with *bad_cluster when a count does not fit.
 */
int qcow2_change_refcount_width(Qcow2State *s, int bits, uint64_t *bad_cluster);
/* Recompute COPIED flags of the active L1 and L2 tables from refcounts (qcow2-snapshot.c). */
int qcow2_fix_copied(Qcow2State *s);
int qcow2_check(BlockDriverState *bs, BlockCheckResult *res, int fix, FILE *report);

/* qcow2.c */
uint64_t qcow2_file_length(Qcow2State *s);
uint64_t qcow2_snapshot_table_size(Qcow2State *s);
bool qcow2_read_snapshots(Qcow2State *s, uint64_t flen, GError **errp);
void qcow2_free_snapshots(Qcow2State *s);
/*
 * qemu-img amend: version 2 or 3 (0 = keep), lazy refcounts 0/1 (-1 = keep),
 * refcount entry width (0 = keep).  0, or -errno with *why set to a user
 * message when the request is refused.
 */
int qcow2_amend(BlockDriverState *bs, int version, int lazy, int refcount_bits, const char **why);

/* qcow2-snapshot.c */
int qcow2_snapshot_create(BlockDriverState *bs, const char *name);
int qcow2_snapshot_delete(BlockDriverState *bs, const char *id_or_name);
int qcow2_snapshot_apply(BlockDriverState *bs, const char *id_or_name);
/* Host byte range a compressed L2 entry covers. */
void qcow2_compressed_range(Qcow2State *s, uint64_t l2e, uint64_t *off, uint64_t *len);

#endif

/*
 * Guest physical memory map (include/kestrel/memory.h).
 *
 * The region tree is rendered into a flat, sorted list of non-overlapping
 * ranges after every topology change.  Rendering visits children from the
 * highest priority down (among equal priorities, the most recently added
 * first) and lets each one fill only the holes left by those before it, so
 * overlapping regions behave like the chipset's decoders: the winner takes the
 * address.  Aliases render their target as if it were placed at
 * (alias address - alias offset), clipped to the alias window.
 */
#include "kestrel/memory.h"
#include "kestrel/log.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct MemoryRegion {
    char *name;
    MemoryRegionKind kind;
    uint64_t size;
    uint8_t *host;                 /* RAM/ROM backing */
    const MemoryRegionOps *ops;    /* MMIO */
    void *opaque;
    MemoryRegion *alias_target;
    uint64_t alias_offset;
    bool readonly;
    bool enabled;
    MemoryRegion *parent;
    hwaddr addr;                   /* offset in parent */
    int priority;
    uint64_t seq;                  /* insertion order, for priority ties */
    GPtrArray *children;
};

struct AddressSpace {
    char *name;
    MemoryRegion *root;
    FlatView view;
    MemoryListener *listeners;
};

static GPtrArray *address_spaces;
static uint64_t region_seq;
static RamWriteNotifier ram_write_notifier;

static void memory_topology_changed(void);

/* ---- regions ---- */

static MemoryRegion *region_alloc(const char *name, MemoryRegionKind kind, uint64_t size)
{
    MemoryRegion *mr = g_new0(MemoryRegion, 1);
    mr->name = g_strdup(name);
    mr->kind = kind;
    mr->size = size;
    mr->enabled = true;
    mr->children = g_ptr_array_new();
    return mr;
}

static MemoryRegion *region_new_backed(const char *name, MemoryRegionKind kind, uint64_t size,
                                       GError **errp)
{
    /* Anonymous private mapping: zero-filled, pages committed only when touched. */
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        kestrel_set_error(errp, "cannot allocate %" G_GUINT64_FORMAT " MiB of guest memory for %s: %s",
                          size >> 20, name, g_strerror(errno));
        return NULL;
    }
    MemoryRegion *mr = region_alloc(name, kind, size);
    mr->host = p;
    return mr;
}

MemoryRegion *memory_region_new_ram(const char *name, uint64_t size, GError **errp)
{
    return region_new_backed(name, MR_RAM, size, errp);
}

MemoryRegion *memory_region_new_rom(const char *name, uint64_t size, GError **errp)
{
    return region_new_backed(name, MR_ROM, size, errp);
}

MemoryRegion *memory_region_new_mmio(const char *name, uint64_t size, const MemoryRegionOps *ops,
                                     void *opaque)
{
    MemoryRegion *mr = region_alloc(name, MR_MMIO, size);
    mr->ops = ops;
    mr->opaque = opaque;
    return mr;
}

MemoryRegion *memory_region_new_alias(const char *name, MemoryRegion *target, uint64_t offset,
                                      uint64_t size)
{
    MemoryRegion *mr = region_alloc(name, MR_ALIAS, size);
    mr->alias_target = target;
    mr->alias_offset = offset;
    return mr;
}

MemoryRegion *memory_region_new_container(const char *name, uint64_t size)
{
    return region_alloc(name, MR_CONTAINER, size);
}

static gint child_order(gconstpointer a, gconstpointer b)
{
    const MemoryRegion *x = *(MemoryRegion *const *)a, *y = *(MemoryRegion *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->seq > y->seq ? -1 : (x->seq < y->seq ? 1 : 0);
}

void memory_region_add_subregion(MemoryRegion *parent, hwaddr offset, MemoryRegion *child,
                                 int priority)
{
    g_assert(!child->parent);
    child->parent = parent;
    child->addr = offset;
    child->priority = priority;
    child->seq = ++region_seq;
    g_ptr_array_add(parent->children, child);
    g_ptr_array_sort(parent->children, child_order);
    memory_topology_changed();
}

void memory_region_del_subregion(MemoryRegion *parent, MemoryRegion *child)
{
    if (child->parent != parent)
        return;
    g_ptr_array_remove(parent->children, child);
    child->parent = NULL;
    memory_topology_changed();
}

void memory_region_set_enabled(MemoryRegion *mr, bool enabled)
{
    if (mr->enabled == enabled)
        return;
    mr->enabled = enabled;
    memory_topology_changed();
}

void memory_region_set_address(MemoryRegion *mr, hwaddr offset)
{
    if (mr->addr == offset)
        return;
    mr->addr = offset;
    memory_topology_changed();
}

void memory_region_set_readonly(MemoryRegion *mr, bool readonly)
{
    if (mr->readonly == readonly)
        return;
    mr->readonly = readonly;
    memory_topology_changed();
}

void memory_region_set_alias_offset(MemoryRegion *mr, uint64_t offset)
{
    if (mr->alias_offset == offset)
        return;
    mr->alias_offset = offset;
    memory_topology_changed();
}

const char *memory_region_name(const MemoryRegion *mr) { return mr->name; }
uint64_t memory_region_size(const MemoryRegion *mr) { return mr->size; }
MemoryRegionKind memory_region_kind(const MemoryRegion *mr) { return mr->kind; }
uint8_t *memory_region_host_ptr(MemoryRegion *mr) { return mr->host; }

/* ---- flattening ---- */

/* Add [start, end) of leaf (leaf_base = address of leaf offset 0) where nothing is mapped yet. */
static void flat_fill_holes(GArray *out, hwaddr start, hwaddr end, MemoryRegion *leaf,
                            hwaddr leaf_base, bool readonly)
{
    hwaddr cur = start;
    guint i = 0;

    while (cur < end) {
        /* Find the first existing range that ends after cur. */
        while (i < out->len) {
            FlatRange *r = &g_array_index(out, FlatRange, i);
            if (r->start + r->size > cur)
                break;
            i++;
        }
        hwaddr hole_end = end;
        if (i < out->len) {
            FlatRange *r = &g_array_index(out, FlatRange, i);
            if (r->start <= cur) {
                cur = r->start + r->size;
                i++;
                continue;
            }
            if (r->start < hole_end)
                hole_end = r->start;
        }
        FlatRange fr = {
            .start = cur,
            .size = hole_end - cur,
            .leaf = leaf,
            .leaf_offset = cur - leaf_base,
            .readonly = readonly,
        };
        if (leaf->host)
            fr.host = leaf->host + fr.leaf_offset;
        g_array_insert_val(out, i, fr);
        i++;
        cur = hole_end;
    }
}

/*
 * Render mr, whose offset 0 sits at guest address base, clipped to [clip_lo, clip_hi).
 * Addresses are computed in 128-bit-safe fashion by clamping: the root is 2^64 - 1 big.
 */
static void flat_render(GArray *out, MemoryRegion *mr, hwaddr base, hwaddr clip_lo,
                        hwaddr clip_hi, bool readonly)
{
    if (!mr->enabled)
        return;
    hwaddr lo = base, hi = base + mr->size;
    if (hi < lo)                     /* wrapped: region reaches the top of the space */
        hi = UINT64_MAX;
    if (lo < clip_lo)
        lo = clip_lo;
    if (hi > clip_hi)
        hi = clip_hi;
    if (lo >= hi)
        return;
    readonly = readonly || mr->readonly;

    for (guint i = 0; i < mr->children->len; i++) {
        MemoryRegion *c = g_ptr_array_index(mr->children, i);
        flat_render(out, c, base + c->addr, lo, hi, readonly);
    }
    switch (mr->kind) {
    case MR_ALIAS:
        if (mr->alias_target)
            flat_render(out, mr->alias_target, base - mr->alias_offset, lo, hi, readonly);
        break;
    case MR_RAM:
    case MR_MMIO:
        flat_fill_holes(out, lo, hi, mr, base, readonly);
        break;
    case MR_ROM:
        flat_fill_holes(out, lo, hi, mr, base, true);
        break;
    case MR_CONTAINER:
        break;
    }
}

/* Join neighbours that continue the same leaf, so DMA across a split stays one range. */
static void flat_merge(GArray *v)
{
    guint w = 0;
    for (guint i = 0; i < v->len; i++) {
        FlatRange *cur = &g_array_index(v, FlatRange, i);
        if (w > 0) {
            FlatRange *prev = &g_array_index(v, FlatRange, w - 1);
            if (prev->leaf == cur->leaf && prev->readonly == cur->readonly &&
                prev->start + prev->size == cur->start &&
                prev->leaf_offset + prev->size == cur->leaf_offset) {
                prev->size += cur->size;
                continue;
            }
        }
        g_array_index(v, FlatRange, w++) = *cur;
    }
    g_array_set_size(v, w);
}

static bool flat_range_equal(const FlatRange *a, const FlatRange *b)
{
    return a->start == b->start && a->size == b->size && a->leaf == b->leaf &&
           a->leaf_offset == b->leaf_offset && a->readonly == b->readonly;
}

static bool flat_view_contains(const FlatView *v, const FlatRange *fr)
{
    /* Views are sorted; binary search on start. */
    size_t lo = 0, hi = v->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->ranges[mid].start < fr->start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->nr && flat_range_equal(&v->ranges[lo], fr);
}

static void address_space_update(AddressSpace *as)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(FlatRange));
    flat_render(out, as->root, 0, 0, UINT64_MAX, false);
    flat_merge(out);

    FlatView old = as->view;
    as->view.nr = out->len;
    as->view.ranges = (FlatRange *)g_array_free(out, FALSE);

    for (MemoryListener *l = as->listeners; l; l = l->next) {
        bool changed = false;
        if (l->region_del)
            for (size_t i = 0; i < old.nr; i++)
                if (!flat_view_contains(&as->view, &old.ranges[i])) {
                    l->region_del(l, &old.ranges[i]);
                    changed = true;
                }
        if (l->region_add)
            for (size_t i = 0; i < as->view.nr; i++)
                if (!flat_view_contains(&old, &as->view.ranges[i])) {
                    l->region_add(l, &as->view.ranges[i]);
                    changed = true;
                }
        if (changed && l->commit)
            l->commit(l);
    }
    /*
     * Readers of the flat view hold the big lock (memory.h), as does every
     * caller of the functions that end here, so the old view can go now.
     */
    g_free(old.ranges);
}

static void memory_topology_changed(void)
{
    if (!address_spaces)
        return;
    for (guint i = 0; i < address_spaces->len; i++)
        address_space_update(g_ptr_array_index(address_spaces, i));
}

AddressSpace *address_space_new(const char *name, MemoryRegion *root)
{
    AddressSpace *as = g_new0(AddressSpace, 1);
    as->name = g_strdup(name);
    as->root = root;
    if (!address_spaces)
        address_spaces = g_ptr_array_new();
    g_ptr_array_add(address_spaces, as);
    address_space_update(as);
    return as;
}

MemoryRegion *address_space_root(AddressSpace *as) { return as->root; }

void address_space_add_listener(AddressSpace *as, MemoryListener *l)
{
    l->next = as->listeners;
    as->listeners = l;
    if (l->region_add)
        for (size_t i = 0; i < as->view.nr; i++)
            l->region_add(l, &as->view.ranges[i]);
    if (l->commit)
        l->commit(l);
}

void address_space_remove_listener(AddressSpace *as, MemoryListener *l)
{
    for (MemoryListener **p = &as->listeners; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            return;
        }
}

const FlatView *address_space_flatview(AddressSpace *as) { return &as->view; }

const FlatRange *address_space_lookup(AddressSpace *as, hwaddr addr)
{
    size_t lo = 0, hi = as->view.nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const FlatRange *r = &as->view.ranges[mid];
        if (addr < r->start)
            hi = mid;
        else if (addr - r->start >= r->size)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/* First range starting above addr (to size a hole), or UINT64_MAX. */
static hwaddr address_space_next_start(AddressSpace *as, hwaddr addr)
{
    for (size_t i = 0; i < as->view.nr; i++)
        if (as->view.ranges[i].start > addr)
            return as->view.ranges[i].start;
    return UINT64_MAX;
}

/* ---- MMIO access adaptation ---- */

static unsigned mmio_min(const MemoryRegionOps *ops) { return ops->min_access ? ops->min_access : 1; }
static unsigned mmio_max(const MemoryRegionOps *ops) { return ops->max_access ? ops->max_access : 8; }

static uint64_t mmio_read(MemoryRegion *mr, hwaddr off, unsigned size)
{
    const MemoryRegionOps *ops = mr->ops;
    unsigned mn = mmio_min(ops), mx = mmio_max(ops);

    if (!ops->read)
        return size == 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
    if (size >= mn && size <= mx)
        return ops->read(mr->opaque, off, size);
    if (size > mx) {
        uint64_t v = 0;
        for (unsigned done = 0; done < size; done += mx)
            v |= mmio_read(mr, off + done, mx) << (done * 8);
        return v;
    }
    /* Narrower than the device takes: read the aligned containing unit and extract. */
    hwaddr aligned = off & ~(hwaddr)(mn - 1);
    uint64_t v = ops->read(mr->opaque, aligned, mn);
    v >>= (off - aligned) * 8;
    return size == 8 ? v : v & ((1ULL << (size * 8)) - 1);
}

static void mmio_write(MemoryRegion *mr, hwaddr off, uint64_t value, unsigned size)
{
    const MemoryRegionOps *ops = mr->ops;
    unsigned mn = mmio_min(ops), mx = mmio_max(ops);

    if (!ops->write)
        return;
    if (size < 8)
        value &= (1ULL << (size * 8)) - 1;     /* devices see only the bytes written */
    if (size >= mn && size <= mx) {
        ops->write(mr->opaque, off, value, size);
        return;
    }
    if (size > mx) {
        for (unsigned done = 0; done < size; done += mx)
            mmio_write(mr, off + done, value >> (done * 8), mx);
        return;
    }
    /* Read-modify-write of the containing unit keeps the neighbouring bytes. */
    hwaddr aligned = off & ~(hwaddr)(mn - 1);
    unsigned shift = (off - aligned) * 8;
    uint64_t mask = ((1ULL << (size * 8)) - 1) << shift;
    uint64_t cur = ops->read ? ops->read(mr->opaque, aligned, mn) : 0;
    ops->write(mr->opaque, aligned, (cur & ~mask) | ((value << shift) & mask), mn);
}

/* ---- accesses ---- */

static MemTxResult address_space_rw(AddressSpace *as, hwaddr addr, uint8_t *buf, uint64_t len,
                                    bool is_write, bool force_rom)
{
    MemTxResult res = MEMTX_OK;

    while (len > 0) {
        const FlatRange *fr = address_space_lookup(as, addr);
        if (!fr) {
            hwaddr next = address_space_next_start(as, addr);
            uint64_t n = next - addr < len ? next - addr : len;
            if (!is_write)
                memset(buf, 0xff, n);
            LOG(LOG_GUEST_ERROR, "memory: %s of %" G_GUINT64_FORMAT " bytes at unassigned 0x%"
                G_GINT64_MODIFIER "x\n", is_write ? "write" : "read", n, addr);
            res = MEMTX_UNASSIGNED;
            buf += n; addr += n; len -= n;
            if (n == 0)
                break;
            continue;
        }
        uint64_t off = addr - fr->start;
        uint64_t n = fr->size - off < len ? fr->size - off : len;
        if (fr->host) {
            if (!is_write)
                memcpy(buf, fr->host + off, n);
            else if (!fr->readonly || force_rom) {
                memcpy(fr->host + off, buf, n);
                if (ram_write_notifier)
                    ram_write_notifier(addr, n);
            }
        } else {
            if (force_rom) {
                res = MEMTX_UNASSIGNED;
            }
            hwaddr leaf_off = fr->leaf_offset + off;
            uint64_t left = n;
            uint8_t *p = buf;
            while (left > 0) {
                /* Largest naturally aligned power of two that fits, at most 8 bytes. */
                unsigned sz = 8;
                while (sz > left || (leaf_off & (sz - 1)))
                    sz >>= 1;
                if (is_write) {
                    uint64_t v = 0;
                    for (unsigned b = 0; b < sz; b++)
                        v |= (uint64_t)p[b] << (b * 8);
                    if (!force_rom)
                        mmio_write(fr->leaf, leaf_off, v, sz);
                } else {
                    uint64_t v = mmio_read(fr->leaf, leaf_off, sz);
                    for (unsigned b = 0; b < sz; b++)
                        p[b] = v >> (b * 8);
                }
                p += sz; leaf_off += sz; left -= sz;
            }
        }
        buf += n; addr += n; len -= n;
        if (addr == 0)          /* wrapped past the top of the address space */
            break;
    }
    return res;
}

MemTxResult address_space_read(AddressSpace *as, hwaddr addr, void *buf, uint64_t len)
{
    return address_space_rw(as, addr, buf, len, false, false);
}

MemTxResult address_space_write(AddressSpace *as, hwaddr addr, const void *buf, uint64_t len)
{
    return address_space_rw(as, addr, (uint8_t *)buf, len, true, false);
}

bool address_space_write_rom(AddressSpace *as, hwaddr addr, const void *buf, uint64_t len)
{
    /* Check first so a failed load writes nothing. */
    for (uint64_t done = 0; done < len;) {
        const FlatRange *fr = address_space_lookup(as, addr + done);
        if (!fr || !fr->host)
            return false;
        done += fr->size - (addr + done - fr->start);
    }
    return address_space_rw(as, addr, (uint8_t *)buf, len, true, true) == MEMTX_OK;
}

uint64_t address_space_ld(AddressSpace *as, hwaddr addr, unsigned size)
{
    const FlatRange *fr = address_space_lookup(as, addr);
    if (fr && !fr->host && addr - fr->start + size <= fr->size &&
        !((fr->leaf_offset + addr - fr->start) & (size - 1)))
        return mmio_read(fr->leaf, fr->leaf_offset + addr - fr->start, size);
    uint8_t b[8] = { 0 };
    address_space_read(as, addr, b, size);
    return ld64_le(b);
}

void address_space_st(AddressSpace *as, hwaddr addr, uint64_t value, unsigned size)
{
    const FlatRange *fr = address_space_lookup(as, addr);
    if (fr && !fr->host && addr - fr->start + size <= fr->size &&
        !((fr->leaf_offset + addr - fr->start) & (size - 1))) {
        mmio_write(fr->leaf, fr->leaf_offset + addr - fr->start, value, size);
        return;
    }
    uint8_t b[8];
    st64_le(b, value);
    address_space_write(as, addr, b, size);
}

void *address_space_ram_ptr(AddressSpace *as, hwaddr addr, uint64_t len, bool write)
{
    const FlatRange *fr = address_space_lookup(as, addr);
    if (!fr || !fr->host || (write && fr->readonly))
        return NULL;
    uint64_t off = addr - fr->start;
    if (len > fr->size - off)
        return NULL;
    return fr->host + off;
}

void memory_set_ram_write_notifier(RamWriteNotifier fn)
{
    ram_write_notifier = fn;
}

void memory_notify_ram_write(hwaddr addr, uint64_t len)
{
    if (ram_write_notifier)
        ram_write_notifier(addr, len);
}

void address_space_dump(AddressSpace *as, FILE *out)
{
    static const char *const kinds[] = { "ram", "rom", "i/o", "alias", "container" };
    fprintf(out, "address-space: %s\n", as->name);
    for (size_t i = 0; i < as->view.nr; i++) {
        const FlatRange *r = &as->view.ranges[i];
        fprintf(out, "  %016" G_GINT64_MODIFIER "x-%016" G_GINT64_MODIFIER "x (prio-, %s%s): %s @%"
                G_GINT64_MODIFIER "x\n", r->start, r->start + r->size - 1,
                kinds[r->leaf->kind], r->readonly && r->leaf->kind == MR_RAM ? " ro" : "",
                r->leaf->name, r->leaf_offset);
    }
}

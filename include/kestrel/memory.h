/*
 * Guest physical memory map.
 *
 * A tree of regions (RAM, ROM, MMIO, alias, container) is flattened into a
 * sorted list of non-overlapping ranges whenever it changes; lookups binary
 * search that list.  Listeners (the accelerator) are told about every range
 * that appears or disappears in the flat view.
 *
 * Locking: the topology (add/del/enable/move/readonly) changes only with the
 * big lock held, and listeners are called with it held.  Readers that do not
 * hold the big lock (a vCPU thread) must not keep FlatRange pointers across a
 * point where the lock could have been taken by someone else; accelerators
 * that cache translations drop them in their listener callbacks.
 */
#ifndef KESTREL_MEMORY_H
#define KESTREL_MEMORY_H

#include "kestrel/common.h"

typedef struct MemoryRegion MemoryRegion;
typedef struct AddressSpace AddressSpace;

typedef struct MemoryRegionOps {
    /* offset is relative to the region start; size is 1, 2, 4 or 8. */
    uint64_t (*read)(void *opaque, hwaddr offset, unsigned size);
    void (*write)(void *opaque, hwaddr offset, uint64_t value, unsigned size);
    /*
     * Access sizes the callbacks accept (0 means 1 and 8).  A guest access of
     * another size is split into (or, if smaller, widened from) accepted
     * sizes by the core, little-endian, so devices never see sizes they do
     * not declare.
     */
    unsigned min_access, max_access;
} MemoryRegionOps;

typedef enum {
    MR_RAM,          /* host memory, guest read/write */
    MR_ROM,          /* host memory, guest read-only (writes ignored) */
    MR_MMIO,         /* callbacks */
    MR_ALIAS,        /* window onto another region */
    MR_CONTAINER,    /* holds subregions only; holes are unassigned */
} MemoryRegionKind;

MemoryRegion *memory_region_new_ram(const char *name, uint64_t size, GError **errp);
MemoryRegion *memory_region_new_rom(const char *name, uint64_t size, GError **errp);
MemoryRegion *memory_region_new_mmio(const char *name, uint64_t size,
                                     const MemoryRegionOps *ops, void *opaque);
MemoryRegion *memory_region_new_alias(const char *name, MemoryRegion *target,
                                      uint64_t offset, uint64_t size);
MemoryRegion *memory_region_new_container(const char *name, uint64_t size);

/*
 * Place child at offset inside parent.  Where siblings overlap, the higher
 * priority wins; equal priorities overlapping is a board bug (later one wins).
 */
void memory_region_add_subregion(MemoryRegion *parent, hwaddr offset,
                                 MemoryRegion *child, int priority);
void memory_region_del_subregion(MemoryRegion *parent, MemoryRegion *child);
void memory_region_set_enabled(MemoryRegion *mr, bool enabled);
void memory_region_set_address(MemoryRegion *mr, hwaddr offset);   /* move in parent */
/* RAM <-> ROM behaviour for the guest (PAM shadowing). */
void memory_region_set_readonly(MemoryRegion *mr, bool readonly);
/* Retarget an alias (PAM: point a window at ROM or at RAM). */
void memory_region_set_alias_offset(MemoryRegion *mr, uint64_t offset);

const char *memory_region_name(const MemoryRegion *mr);
uint64_t memory_region_size(const MemoryRegion *mr);
MemoryRegionKind memory_region_kind(const MemoryRegion *mr);
/* Host pointer of a RAM/ROM region's first byte; NULL for others. */
uint8_t *memory_region_host_ptr(MemoryRegion *mr);

/* One flattened range: [start, start+size) maps to leaf at leaf_offset. */
typedef struct FlatRange {
    hwaddr start;
    uint64_t size;
    MemoryRegion *leaf;          /* RAM, ROM or MMIO region */
    uint64_t leaf_offset;        /* offset of 'start' inside leaf */
    uint8_t *host;               /* host address of 'start'; NULL for MMIO */
    bool readonly;               /* guest writes are dropped (ROM) */
} FlatRange;

typedef struct FlatView {
    FlatRange *ranges;           /* sorted by start, non-overlapping */
    size_t nr;
} FlatView;

typedef struct MemoryListener MemoryListener;
struct MemoryListener {
    /* Called for every range of the new view that was not in the old one. */
    void (*region_add)(MemoryListener *l, const FlatRange *fr);
    /* Called (before any region_add) for every old range not in the new view. */
    void (*region_del)(MemoryListener *l, const FlatRange *fr);
    /* Called once after a batch of add/del. */
    void (*commit)(MemoryListener *l);
    void *opaque;
    MemoryListener *next;
};

AddressSpace *address_space_new(const char *name, MemoryRegion *root);
MemoryRegion *address_space_root(AddressSpace *as);
/* Registers and immediately replays region_add for every current range. */
void address_space_add_listener(AddressSpace *as, MemoryListener *l);
void address_space_remove_listener(AddressSpace *as, MemoryListener *l);
const FlatView *address_space_flatview(AddressSpace *as);
/* The range containing addr, or NULL if unassigned. */
const FlatRange *address_space_lookup(AddressSpace *as, hwaddr addr);

typedef enum { MEMTX_OK = 0, MEMTX_UNASSIGNED = 1 } MemTxResult;

/*
 * Guest-visible accesses of any length (RAM copied, MMIO split into the
 * region's accepted sizes).  Unassigned reads return 0xff bytes; unassigned
 * writes are dropped; either makes the result MEMTX_UNASSIGNED.
 */
MemTxResult address_space_read(AddressSpace *as, hwaddr addr, void *buf, uint64_t len);
MemTxResult address_space_write(AddressSpace *as, hwaddr addr, const void *buf, uint64_t len);
/* Single access of size 1/2/4/8 (little-endian value). */
uint64_t address_space_ld(AddressSpace *as, hwaddr addr, unsigned size);
void address_space_st(AddressSpace *as, hwaddr addr, uint64_t value, unsigned size);
/* Loaders write ROM too (bypasses readonly).  Fails if any byte is not RAM/ROM. */
bool address_space_write_rom(AddressSpace *as, hwaddr addr, const void *buf, uint64_t len);

/*
 * Host pointer for [addr, addr+len) if every byte is contiguous RAM (and, for
 * write, not read-only); NULL otherwise.  This is how devices clamp DMA.
 */
void *address_space_ram_ptr(AddressSpace *as, hwaddr addr, uint64_t len, bool write);

/*
 * Called after any write to RAM that did not come from the CPU engine itself
 * (DMA, loaders, qtest), so an engine caching translated code can invalidate.
 */
typedef void (*RamWriteNotifier)(hwaddr addr, uint64_t len);
void memory_set_ram_write_notifier(RamWriteNotifier fn);
void memory_notify_ram_write(hwaddr addr, uint64_t len);

/* Human-readable dump of the flat view (for the monitor and tests). */
void address_space_dump(AddressSpace *as, FILE *out);

#endif

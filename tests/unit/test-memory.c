/*
 * The memory map: flattening, priorities, aliases, MMIO access adaptation,
 * the DMA clamp, and listener notifications.
 */
#include "kestrel/memory.h"
#include "tests/testlib.h"

#include <string.h>

typedef struct MmioLog {
    hwaddr off[16];
    unsigned size[16];
    uint64_t val[16];
    int n;
    uint32_t reg;              /* a 32-bit register at offset 0 */
} MmioLog;

static uint64_t log_read(void *opaque, hwaddr off, unsigned size)
{
    MmioLog *l = opaque;
    if (l->n < 16) {
        l->off[l->n] = off;
        l->size[l->n] = size;
        l->val[l->n] = 0;
        l->n++;
    }
    return off == 0 ? l->reg : 0x11223344;
}

static void log_write(void *opaque, hwaddr off, uint64_t v, unsigned size)
{
    MmioLog *l = opaque;
    if (l->n < 16) {
        l->off[l->n] = off;
        l->size[l->n] = size;
        l->val[l->n] = v;
        l->n++;
    }
    if (off == 0)
        l->reg = (uint32_t)v;
}

static const MemoryRegionOps dword_ops = {
    .read = log_read, .write = log_write, .min_access = 4, .max_access = 4,
};

static AddressSpace *make_as(MemoryRegion **root, MemoryRegion **ram)
{
    *root = memory_region_new_container("root", UINT64_MAX);
    *ram = memory_region_new_ram("ram", 1 << 20, NULL);
    memory_region_add_subregion(*root, 0, *ram, 0);
    return address_space_new("test", *root);
}

static void test_ram_read_write_round_trip(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    uint8_t out[5] = { 1, 2, 3, 4, 5 }, in[5];

    CHECK_EQ("write result", MEMTX_OK, address_space_write(as, 0x1000, out, 5));
    CHECK_EQ("read result", MEMTX_OK, address_space_read(as, 0x1000, in, 5));
    CHECK(memcmp(in, out, 5) == 0);
    CHECK_EQ("host byte", 3, memory_region_host_ptr(ram)[0x1002]);
}

static void test_unassigned_reads_all_ones(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    uint8_t b[4];

    CHECK_EQ("result", MEMTX_UNASSIGNED, address_space_read(as, 0x200000, b, 4));
    CHECK_EQ("value", 0xffffffff, ld32_le(b));
    CHECK_EQ("ld", 0xffff, address_space_ld(as, 0x300000, 2));
}

static void test_higher_priority_overlay_wins(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    MmioLog log = { 0 };
    MemoryRegion *mmio = memory_region_new_mmio("dev", 0x1000, &dword_ops, &log);

    memory_region_add_subregion(root, 0xa0000, mmio, 1);
    const FlatView *v = address_space_flatview(as);
    CHECK_EQ("ranges", 3, v->nr);
    CHECK_EQ("ram below", 0xa0000, v->ranges[0].size);
    CHECK(v->ranges[1].leaf == mmio);
    CHECK_EQ("ram above starts", 0xa1000, v->ranges[2].start);
    CHECK_EQ("ram above leaf offset", 0xa1000, v->ranges[2].leaf_offset);

    memory_region_set_enabled(mmio, false);
    CHECK_EQ("ranges after disable", 1, address_space_flatview(as)->nr);
}

static void test_lower_priority_only_fills_holes(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    MmioLog log = { 0 };
    MemoryRegion *mmio = memory_region_new_mmio("under", 0x2000, &dword_ops, &log);

    memory_region_add_subregion(root, 0xff000, mmio, -1);    /* half under RAM, half above */
    const FlatRange *fr = address_space_lookup(as, 0xff800);
    CHECK(fr && memory_region_kind(fr->leaf) == MR_RAM);
    fr = address_space_lookup(as, 0x100800);
    CHECK(fr && fr->leaf == mmio);
    CHECK_EQ("mmio leaf offset", 0x1000, fr->leaf_offset);
}

static void test_alias_window_and_retarget(void)
{
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("ram", 0x10000, NULL);
    MemoryRegion *alias = memory_region_new_alias("win", ram, 0x4000, 0x1000);
    AddressSpace *as;

    memory_region_host_ptr(ram)[0x4000] = 0xaa;
    memory_region_host_ptr(ram)[0x5000] = 0xbb;
    memory_region_add_subregion(root, 0xf0000, alias, 0);
    as = address_space_new("alias", root);
    CHECK_EQ("through alias", 0xaa, address_space_ld(as, 0xf0000, 1));
    CHECK_EQ("outside window", 0xff, address_space_ld(as, 0xf1000, 1));
    memory_region_set_alias_offset(alias, 0x5000);
    CHECK_EQ("retargeted", 0xbb, address_space_ld(as, 0xf0000, 1));
}

static void test_rom_ignores_guest_writes_but_loader_writes(void)
{
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *rom = memory_region_new_rom("rom", 0x1000, NULL);
    AddressSpace *as;
    uint8_t v = 0x5a;

    memory_region_add_subregion(root, 0x1000, rom, 0);
    as = address_space_new("rom", root);
    address_space_st(as, 0x1000, 0x77, 1);
    CHECK_EQ("guest write dropped", 0, address_space_ld(as, 0x1000, 1));
    CHECK(address_space_write_rom(as, 0x1000, &v, 1));
    CHECK_EQ("loader write", 0x5a, address_space_ld(as, 0x1000, 1));
    CHECK(!address_space_write_rom(as, 0x1fff, "ab", 2));      /* runs off the end */
    CHECK(address_space_ram_ptr(as, 0x1000, 1, true) == NULL);
    CHECK(address_space_ram_ptr(as, 0x1000, 1, false) != NULL);
}

static void test_mmio_narrow_access_is_widened(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    MmioLog log = { .reg = 0xaabbccdd };
    MemoryRegion *mmio = memory_region_new_mmio("dev", 0x1000, &dword_ops, &log);

    memory_region_add_subregion(root, 0x200000, mmio, 0);
    CHECK_EQ("byte 1 of the register", 0xcc, address_space_ld(as, 0x200001, 1));
    CHECK_EQ("device saw size", 4, log.size[0]);
    log.n = 0;
    address_space_st(as, 0x200002, 0x11, 1);                  /* read-modify-write */
    CHECK_EQ("register after byte write", 0xaa11ccdd, log.reg);
}

static void test_mmio_wide_access_is_split(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    MmioLog log = { 0 };
    MemoryRegion *mmio = memory_region_new_mmio("dev", 0x1000, &dword_ops, &log);

    memory_region_add_subregion(root, 0x200000, mmio, 0);
    address_space_st(as, 0x200000, 0x1122334455667788ULL, 8);
    CHECK_EQ("accesses", 2, log.n);
    CHECK_EQ("low half", 0x55667788, log.val[0]);
    CHECK_EQ("high half offset", 4, log.off[1]);
    CHECK_EQ("high half", 0x11223344, log.val[1]);
}

static void test_ram_ptr_clamps_to_ram(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);

    CHECK(address_space_ram_ptr(as, 0, 1 << 20, true) != NULL);
    CHECK(address_space_ram_ptr(as, 1, 1 << 20, true) == NULL);          /* one byte past */
    CHECK(address_space_ram_ptr(as, UINT64_MAX - 1, 16, false) == NULL);   /* wraps */
    CHECK(address_space_ram_ptr(as, 0xfffff, UINT64_MAX, false) == NULL);
}

static int adds, dels, commits;
static void l_add(MemoryListener *l, const FlatRange *fr) { adds++; }
static void l_del(MemoryListener *l, const FlatRange *fr) { dels++; }
static void l_commit(MemoryListener *l) { commits++; }

static void test_listener_sees_changes_only(void)
{
    MemoryRegion *root, *ram;
    AddressSpace *as = make_as(&root, &ram);
    MemoryListener l = { .region_add = l_add, .region_del = l_del, .commit = l_commit };
    MmioLog log = { 0 };
    MemoryRegion *mmio = memory_region_new_mmio("dev", 0x1000, &dword_ops, &log);

    address_space_add_listener(as, &l);
    CHECK_EQ("replayed ranges", 1, adds);
    adds = dels = commits = 0;
    memory_region_add_subregion(root, 0x200000, mmio, 0);      /* beside RAM: RAM unchanged */
    CHECK_EQ("added", 1, adds);
    CHECK_EQ("deleted", 0, dels);
    adds = dels = 0;
    memory_region_set_address(mmio, 0x1000);                   /* now splits RAM */
    CHECK_EQ("deleted (ram, old mmio)", 2, dels);
    CHECK_EQ("added (ram x2, mmio)", 3, adds);
}

static const TestCase cases[] = {
    TEST_CASE(test_ram_read_write_round_trip),
    TEST_CASE(test_unassigned_reads_all_ones),
    TEST_CASE(test_higher_priority_overlay_wins),
    TEST_CASE(test_lower_priority_only_fills_holes),
    TEST_CASE(test_alias_window_and_retarget),
    TEST_CASE(test_rom_ignores_guest_writes_but_loader_writes),
    TEST_CASE(test_mmio_narrow_access_is_widened),
    TEST_CASE(test_mmio_wide_access_is_split),
    TEST_CASE(test_ram_ptr_clamps_to_ram),
    TEST_CASE(test_listener_sees_changes_only),
    { 0 },
};

int main(int argc, char **argv)
{
    return test_main("memory", cases, argc, argv);
}

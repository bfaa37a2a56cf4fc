/*
 * The fw_cfg item store and API (hw/pc/fw_cfg.c) without a running
 * machine: directory order and selectors, replacing files, name rules,
 * boot-order sorting, and DMA writes into a writable file through the
 * device's ports.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/ioport.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "tests/testlib.h"

#include <string.h>

#define MiB (1024ull * 1024)

static void sel(uint16_t key)
{
    ioport_write(0x510, key, 2);
}

static uint8_t data(void)
{
    return (uint8_t)ioport_read(0x511, 1);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static Machine *machine_with_fw_cfg(void)
{
    Machine *m = g_new0(Machine, 1);
    m->smp_cpus = 1;
    m->ram_below_4g = 16 * MiB;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", 16 * MiB, NULL);
    memory_region_add_subregion(m->system_memory, 0,
                                memory_region_new_alias("low", m->ram, 0, 16 * MiB), 0);
    m->as = address_space_new("memory", m->system_memory);
    GError *err = NULL;
    Device *d = device_create(m, "fw_cfg", NULL, &err);
    CHECK_MSG(d != NULL, "fw_cfg create: %s", err ? err->message : "?");
    CHECK(machine_fw_cfg(m) == d->state);
    return m;
}

/* Directory entry i: name, selector and size. */
static void dir_entry(unsigned i, char *name, uint16_t *selector, uint32_t *size)
{
    uint8_t e[64];
    sel(0x19);
    for (unsigned k = 0; k < 4 + 64 * i; k++)
        data();
    for (int k = 0; k < 64; k++)
        e[k] = data();
    memcpy(name, e + 8, 56);
    name[56] = 0;
    *selector = (uint16_t)(e[4] << 8 | e[5]);
    *size = be32(e);
}

static void test_dir_sorted_with_selectors_by_position(void)
{
    Machine *m = machine_with_fw_cfg();
    FWCfgState *s = machine_fw_cfg(m);
    GError *err = NULL;
    CHECK(fw_cfg_add_file(s, "zeta", "z", 1, &err));
    CHECK(fw_cfg_add_file(s, "alpha", "aa", 2, &err));
    CHECK(fw_cfg_add_file(s, "mid", "mmm", 3, &err));
    char name[57];
    uint16_t selector;
    uint32_t size;
    dir_entry(0, name, &selector, &size);
    CHECK_STREQ("entry 0", "alpha", name);
    CHECK_EQ("alpha selector", 0x20, selector);
    CHECK_EQ("alpha size", 2, size);
    dir_entry(2, name, &selector, &size);
    CHECK_STREQ("entry 2", "zeta", name);
    CHECK_EQ("zeta selector", 0x22, selector);
    sel(0x22);
    CHECK_EQ("zeta contents", 'z', data());
    CHECK_EQ("past the end", 0, data());
}

static void test_set_file_replaces_without_moving(void)
{
    Machine *m = machine_with_fw_cfg();
    FWCfgState *s = machine_fw_cfg(m);
    GError *err = NULL;
    CHECK(fw_cfg_add_file(s, "a", "1", 1, &err));
    CHECK(fw_cfg_add_file(s, "b", "2", 1, &err));
    fw_cfg_set_file(s, "a", "hello", 5);
    char name[57];
    uint16_t selector;
    uint32_t size;
    dir_entry(0, name, &selector, &size);
    CHECK_STREQ("entry 0", "a", name);
    CHECK_EQ("a selector", 0x20, selector);
    CHECK_EQ("a new size", 5, size);
    size_t len;
    const uint8_t *p = fw_cfg_get_file(s, "a", &len);
    CHECK(p && len == 5 && !memcmp(p, "hello", 5));
    /* set_file on a new name adds it. */
    fw_cfg_set_file(s, "c", "", 0);
    CHECK(fw_cfg_get_file(s, "c", &len) != NULL && len == 0);
    CHECK(fw_cfg_get_file(s, "nope", &len) == NULL);
}

static void test_name_rules(void)
{
    Machine *m = machine_with_fw_cfg();
    FWCfgState *s = machine_fw_cfg(m);
    GError *err = NULL;
    CHECK(fw_cfg_add_file(s, "dup", "x", 1, &err));
    CHECK(!fw_cfg_add_file(s, "dup", "y", 1, &err));
    CHECK_MSG(err && strstr(err->message, "dup"), "duplicate error should name the file");
    g_clear_error(&err);
    char longname[80];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK(!fw_cfg_add_file(s, longname, "y", 1, &err));
    CHECK(err != NULL);
    g_clear_error(&err);
    /* 55 characters + NUL is the longest name. */
    longname[55] = 0;
    CHECK(fw_cfg_add_file(s, longname, "y", 1, &err));
}

static void test_legacy_keys_little_endian(void)
{
    Machine *m = machine_with_fw_cfg();
    FWCfgState *s = machine_fw_cfg(m);
    fw_cfg_add_i32(s, 0x8002, 0x01020304);
    sel(0x8002);
    CHECK_EQ("byte 0", 0x04, data());
    CHECK_EQ("byte 1", 0x03, data());
    CHECK_EQ("byte 2", 0x02, data());
    CHECK_EQ("byte 3", 0x01, data());
    fw_cfg_add_i64(s, 0x03, 0x1122334455667788ull);
    /* Selector bit 14 (write channel) is ignored. */
    sel(0x4003);
    CHECK_EQ("RAM_SIZE byte 0 via write-channel selector", 0x88, data());
}

static void test_bootorder_sorted_by_index_then_order(void)
{
    FWCfgState *s = fw_cfg_new(NULL);
    fw_cfg_bootorder_add(s, 2, "/disk@2");
    fw_cfg_bootorder_add(s, 0, "/cd@0");
    fw_cfg_bootorder_add(s, -1, "/unlisted");
    fw_cfg_bootorder_add(s, 2, "/disk@2b");
    char *t = fw_cfg_bootorder_text(s, false);
    CHECK_STREQ("bootorder", "/cd@0\n/disk@2\n/disk@2b\n", t);
    g_free(t);
    t = fw_cfg_bootorder_text(s, true);
    CHECK_STREQ("bootorder strict", "/cd@0\n/disk@2\n/disk@2b\nHALT\n", t);
    g_free(t);
    /* No device: nothing happens. */
    fw_cfg_bootorder_add(NULL, 0, "/x");
    t = fw_cfg_bootorder_text(NULL, false);
    CHECK_STREQ("empty", "", t);
    g_free(t);
}

static void dma(Machine *m, uint64_t desc, uint32_t control, uint32_t len, uint64_t addr)
{
    uint8_t d[16];
    for (int i = 0; i < 4; i++) {
        d[i] = (uint8_t)(control >> (24 - 8 * i));
        d[4 + i] = (uint8_t)(len >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++)
        d[8 + i] = (uint8_t)(addr >> (56 - 8 * i));
    address_space_write(m->as, desc, d, 16);
    ioport_write(0x514, 0, 4);
    ioport_write(0x518, __builtin_bswap32((uint32_t)desc), 4);
}

static uint32_t dma_status(Machine *m, uint64_t desc)
{
    uint8_t c[4];
    address_space_read(m->as, desc, c, 4);
    return be32(c);
}

static void test_dma_write_to_writable_file(void)
{
    Machine *m = machine_with_fw_cfg();
    FWCfgState *s = machine_fw_cfg(m);
    GError *err = NULL;
    CHECK(fw_cfg_add_file(s, "etc/wr", "\0\0\0\0\0\0\0\0", 8, &err));
    address_space_write(m->as, 0x3000, "ABCDEFGH", 8);
    /* Not writable yet: error, contents unchanged. */
    dma(m, 0x1000, 0x20 << 16 | 0x08 | 0x10, 4, 0x3000);
    CHECK_EQ("status (read-only)", 1, dma_status(m, 0x1000));
    CHECK(fw_cfg_set_file_writable(s, "etc/wr", true));
    dma(m, 0x1000, 0x20 << 16 | 0x08 | 0x10, 4, 0x3000);
    CHECK_EQ("status", 0, dma_status(m, 0x1000));
    size_t len;
    const uint8_t *p = fw_cfg_get_file(s, "etc/wr", &len);
    CHECK(!memcmp(p, "ABCD\0\0\0\0", 8));
    /* The offset advanced: the next write lands after it. */
    dma(m, 0x1000, 0x10, 4, 0x3004);
    p = fw_cfg_get_file(s, "etc/wr", &len);
    CHECK(!memcmp(p, "ABCDEFGH", 8));
    /* Past the end of the file: refused. */
    dma(m, 0x1000, 0x20 << 16 | 0x08 | 0x10, 9, 0x3000);
    CHECK_EQ("status (too long)", 1, dma_status(m, 0x1000));
}

static const TestCase cases[] = {
    TEST_CASE(test_dir_sorted_with_selectors_by_position),
    TEST_CASE(test_set_file_replaces_without_moving),
    TEST_CASE(test_name_rules),
    TEST_CASE(test_legacy_keys_little_endian),
    TEST_CASE(test_bootorder_sorted_by_index_then_order),
    TEST_CASE(test_dma_write_to_writable_file),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("fw-cfg-store", cases, argc, argv);
}

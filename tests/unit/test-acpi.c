/*
 * ACPI tables (hw/pc/acpi_build.c, hw/pc/dsdt.asl) and SMBIOS
 * (hw/pc/smbios.c): the table-loader script is run here by an independent
 * reader of the 128-byte commands against a fake guest memory, the way
 * SeaBIOS runs it, and the result is checked as an OS would read it: RSDP ->
 * RSDT/XSDT -> FADT/MADT/HPET -> DSDT, with every checksum.  The direct-boot
 * install is checked in a RAM-only machine.  The DSDT is disassembled with
 * iasl -d when iasl is installed.
 */
#include "kestrel/common.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "hw/pc/fw_tables.h"
#include "tests/testlib.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024ull * 1024)

/* ---- A fake guest memory and our reading of the loader script ---- */

#define FAKE_MEM_SIZE   (2 * MiB)
#define FAKE_FSEG       0xF0000          /* zone 2 */
#define FAKE_HIGH       0x100000         /* zone 1 */

typedef struct Fake {
    uint8_t mem[FAKE_MEM_SIZE];
    uint64_t fseg_next, high_next;
    struct { char name[57]; const GByteArray *data; uint64_t addr; } files[4];
    int nfiles;
} Fake;

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static int fake_file(Fake *f, const uint8_t *name)
{
    for (int i = 0; i < f->nfiles; i++)
        if (!strncmp(f->files[i].name, (const char *)name, 56))
            return i;
    return -1;
}

/* Run the script as firmware-seabios.md §6 describes; fails the test on bad commands. */
static void fake_run_loader(Fake *f, const AcpiTables *t)
{
    const GByteArray *by_name[2] = { t->tables, t->rsdp };
    const char *names[2] = { ACPI_FILE_TABLES, ACPI_FILE_RSDP };

    f->fseg_next = FAKE_FSEG;
    f->high_next = FAKE_HIGH;
    CHECK_MSG(t->loader->len % 128 == 0, "loader length %u not a multiple of 128",
              t->loader->len);
    for (size_t off = 0; off < t->loader->len; off += 128) {
        const uint8_t *c = t->loader->data + off;
        uint32_t cmd = ld32_le(c);
        if (cmd == 1) {
            char name[57] = { 0 };
            memcpy(name, c + 4, 56);
            const GByteArray *data = NULL;
            for (int i = 0; i < 2; i++)
                if (!strcmp(name, names[i]))
                    data = by_name[i];
            CHECK_MSG(data != NULL, "ALLOCATE of unknown file \"%s\"", name);
            uint32_t align = ld32_le(c + 60);
            CHECK_MSG(align && !(align & (align - 1)), "alignment %u not a power of 2", align);
            uint64_t *next = c[64] == 2 ? &f->fseg_next : &f->high_next;
            CHECK_MSG(c[64] == 1 || c[64] == 2, "zone %u", c[64]);
            if (!strcmp(name, ACPI_FILE_RSDP))
                CHECK_MSG(c[64] == 2, "RSDP must be in the F segment zone");
            uint64_t addr = (*next + align - 1) & ~(uint64_t)(align - 1);
            CHECK(addr + data->len <= FAKE_MEM_SIZE);
            memcpy(f->mem + addr, data->data, data->len);
            *next = addr + data->len;
            strcpy(f->files[f->nfiles].name, name);
            f->files[f->nfiles].data = data;
            f->files[f->nfiles].addr = addr;
            f->nfiles++;
        } else if (cmd == 2) {
            int d = fake_file(f, c + 4), s = fake_file(f, c + 60);
            CHECK_MSG(d >= 0 && s >= 0, "ADD_POINTER before ALLOCATE");
            uint32_t at = ld32_le(c + 116);
            uint8_t size = c[120];
            CHECK(size == 1 || size == 2 || size == 4 || size == 8);
            CHECK(at + size <= f->files[d].data->len);
            uint8_t *p = f->mem + f->files[d].addr + at;
            uint64_t v = 0;
            memcpy(&v, p, size);          /* little-endian host */
            v += f->files[s].addr;
            memcpy(p, &v, size);
        } else if (cmd == 3) {
            int d = fake_file(f, c + 4);
            CHECK_MSG(d >= 0, "ADD_CHECKSUM before ALLOCATE");
            uint32_t res = ld32_le(c + 60), start = ld32_le(c + 64), len = ld32_le(c + 68);
            CHECK(res < f->files[d].data->len && start + len <= f->files[d].data->len);
            uint8_t *base = f->mem + f->files[d].addr;
            base[res] -= sum8(base + start, len);
        } else {
            test_fail(__FILE__, __LINE__, "unexpected loader command %u", cmd);
        }
    }
}

/* The RSDP as the OS finds it: scan the F segment on 16-byte boundaries. */
static uint64_t fake_find_rsdp(Fake *f)
{
    for (uint64_t a = FAKE_FSEG; a < 0x100000; a += 16)
        if (!memcmp(f->mem + a, "RSD PTR ", 8))
            return a;
    return 0;
}

static const uint8_t *table_at(const uint8_t *mem, uint64_t addr, const char *sig,
                               uint64_t limit)
{
    CHECK_MSG(addr > 0 && addr + 36 <= limit, "%s at 0x%" PRIx64 " outside memory", sig, addr);
    const uint8_t *t = mem + addr;
    CHECK_MSG(!memcmp(t, sig, 4), "expected %s at 0x%" PRIx64 ", found %.4s", sig, addr, t);
    uint32_t len = ld32_le(t + 4);
    CHECK_MSG(len >= 36 && addr + len <= limit, "%s length %u", sig, len);
    CHECK_MSG(sum8(t, len) == 0, "%s checksum: sum is 0x%02x", sig, sum8(t, len));
    return t;
}

typedef struct Found {
    const uint8_t *fadt, *madt, *hpet, *dsdt, *facs;
} Found;

/* Walk from the RSDP; both RSDT and XSDT must name the same tables. */
static void walk_tables(const uint8_t *mem, uint64_t limit, uint64_t rsdp_addr, Found *out)
{
    const uint8_t *r = mem + rsdp_addr;
    CHECK_EQ("RSDP checksum (20 bytes)", 0, sum8(r, 20));
    CHECK_EQ("RSDP revision", 2, r[15]);
    CHECK_EQ("RSDP length", 36, ld32_le(r + 20));
    CHECK_EQ("RSDP extended checksum", 0, sum8(r, 36));
    const uint8_t *rsdt = table_at(mem, ld32_le(r + 16), "RSDT", limit);
    const uint8_t *xsdt = table_at(mem, ld64_le(r + 24), "XSDT", limit);
    unsigned n = (ld32_le(rsdt + 4) - 36) / 4;
    CHECK_EQ("XSDT entries = RSDT entries", n, (ld32_le(xsdt + 4) - 36) / 8);
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = ld32_le(rsdt + 36 + 4 * i);
        CHECK_EQ("XSDT entry = RSDT entry", a, ld64_le(xsdt + 36 + 8 * i));
        const uint8_t *t = mem + a;
        if (!memcmp(t, "FACP", 4))
            out->fadt = table_at(mem, a, "FACP", limit);
        else if (!memcmp(t, "APIC", 4))
            out->madt = table_at(mem, a, "APIC", limit);
        else if (!memcmp(t, "HPET", 4))
            out->hpet = table_at(mem, a, "HPET", limit);
        else
            test_fail(__FILE__, __LINE__, "unexpected table %.4s", t);
    }
    CHECK_MSG(out->fadt && out->madt && out->hpet, "FADT, MADT and HPET must all be listed");
    uint64_t dsdt = ld32_le(out->fadt + 40);
    CHECK_EQ("X_DSDT = DSDT", dsdt, ld64_le(out->fadt + 140));
    out->dsdt = table_at(mem, dsdt, "DSDT", limit);
    uint64_t facs = ld32_le(out->fadt + 36);
    CHECK_MSG(facs && facs % 64 == 0, "FACS at 0x%" PRIx64 " not 64-byte aligned", facs);
    out->facs = mem + facs;
    CHECK(!memcmp(out->facs, "FACS", 4));
    CHECK_EQ("FACS length", 64, ld32_le(out->facs + 4));
}

static void check_fadt(const uint8_t *f)
{
    CHECK_EQ("FADT revision", 3, f[8]);
    CHECK_EQ("FADT length", 244, ld32_le(f + 4));
    CHECK_EQ("SCI_INT", 9, ld16_le(f + 46));
    CHECK_EQ("SMI_CMD", 0xB2, ld32_le(f + 48));
    CHECK_EQ("ACPI_ENABLE", 0xF1, f[52]);
    CHECK_EQ("ACPI_DISABLE", 0xF0, f[53]);
    CHECK_EQ("PM1a_EVT_BLK", 0x600, ld32_le(f + 56));
    CHECK_EQ("PM1a_CNT_BLK", 0x604, ld32_le(f + 64));
    CHECK_EQ("PM_TMR_BLK", 0x608, ld32_le(f + 76));
    CHECK_EQ("GPE0_BLK", 0xAFE0, ld32_le(f + 80));
    CHECK_EQ("PM1_EVT_LEN", 4, f[88]);
    CHECK_EQ("PM1_CNT_LEN", 2, f[89]);
    CHECK_EQ("PM_TMR_LEN", 4, f[91]);
    CHECK_EQ("GPE0_BLK_LEN", 4, f[92]);
    CHECK_EQ("CENTURY", 0x32, f[108]);
    CHECK_MSG(ld16_le(f + 109) & 2, "IAPC_BOOT_ARCH lacks 8042");
    uint32_t flags = ld32_le(f + 112);
    CHECK_MSG((flags & 0x425) == 0x425, "flags 0x%x lack WBINVD/PROC_C1/SLP_BUTTON/RESET_REG_SUP",
              flags);
    CHECK_EQ("RESET_REG space (I/O)", 1, f[116]);
    CHECK_EQ("RESET_REG address", 0xCF9, ld64_le(f + 120));
    CHECK_EQ("RESET_VALUE", 6, f[128]);
    CHECK_EQ("X_PM1a_CNT_BLK address", 0x604, ld64_le(f + 172 + 4));
    CHECK_EQ("X_PM_TMR_BLK address", 0x608, ld64_le(f + 208 + 4));
}

static void check_madt(const uint8_t *m, int ncpus)
{
    uint32_t len = ld32_le(m + 4);
    int lapics = 0, ioapics = 0, nmis = 0;
    bool iso0 = false, level[16] = { false };

    CHECK_EQ("LAPIC address", 0xFEE00000u, ld32_le(m + 36));
    CHECK_EQ("PCAT_COMPAT", 1, ld32_le(m + 40) & 1);
    for (uint32_t off = 44; off < len;) {
        const uint8_t *e = m + off;
        CHECK_MSG(e[1] >= 2 && off + e[1] <= len, "MADT entry at +%u length %u", off, e[1]);
        switch (e[0]) {
        case 0:
            CHECK_EQ("LAPIC APIC id", lapics, e[3]);
            CHECK_EQ("LAPIC enabled", 1, ld32_le(e + 4) & 1);
            lapics++;
            break;
        case 1:
            CHECK_EQ("IOAPIC address", 0xFEC00000u, ld32_le(e + 4));
            CHECK_EQ("IOAPIC GSI base", 0, ld32_le(e + 8));
            ioapics++;
            break;
        case 2:
            CHECK_EQ("ISO bus", 0, e[2]);
            if (e[3] == 0) {
                CHECK_EQ("IRQ0 -> GSI", 2, ld32_le(e + 4));
                iso0 = true;
            } else {
                CHECK_EQ("ISO GSI", e[3], ld32_le(e + 4));
                CHECK_EQ("ISO flags (level, active high)", 0x0D, ld16_le(e + 8));
                level[e[3] & 15] = true;
            }
            break;
        case 4:
            CHECK_EQ("NMI processor (all)", 0xFF, e[2]);
            CHECK_EQ("NMI LINT", 1, e[5]);
            nmis++;
            break;
        default:
            test_fail(__FILE__, __LINE__, "unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    CHECK_EQ("LAPIC entries", ncpus, lapics);
    CHECK_EQ("IOAPIC entries", 1, ioapics);
    CHECK_EQ("LAPIC NMI entries", 1, nmis);
    CHECK(iso0);
    CHECK(level[5] && level[9] && level[10] && level[11]);
}

static void build_and_check(int ncpus)
{
    static Fake f;
    AcpiBuildParams p = { .ncpus = ncpus, .pci_hole_start = 0x8000000, .has_fdc = true,
                          .has_com1 = true };
    AcpiTables t;
    Found found;

    memset(&f, 0, sizeof(f));
    acpi_build(&p, &t);
    fake_run_loader(&f, &t);
    uint64_t rsdp = fake_find_rsdp(&f);
    CHECK_MSG(rsdp != 0, "no RSDP in the F segment after running the loader");
    walk_tables(f.mem, FAKE_MEM_SIZE, rsdp, &found);
    check_fadt(found.fadt);
    check_madt(found.madt, ncpus);
    CHECK_EQ("HPET event timer block id", 0x8086A201u, ld32_le(found.hpet + 36));
    CHECK_EQ("HPET base", 0xFED00000u, ld64_le(found.hpet + 44));
    acpi_tables_free(&t);
}

static void test_tables_one_cpu(void)
{
    build_and_check(1);
}

static void test_tables_four_cpus(void)
{
    build_and_check(4);
}

static void test_loader_allocates_before_use(void)
{
    AcpiBuildParams p = { .ncpus = 2, .pci_hole_start = 0x10000000 };
    AcpiTables t;
    acpi_build(&p, &t);
    CHECK_EQ("first command", 1, ld32_le(t.loader->data));
    CHECK_EQ("second command", 1, ld32_le(t.loader->data + 128));
    CHECK_EQ("RSDP file size", 36, t.rsdp->len);
    acpi_tables_free(&t);
}

/* ---- DSDT ---- */

static const uint8_t *aml_find_name(const GByteArray *d, const char *name)
{
    for (size_t i = 0; i + 5 <= d->len; i++)
        if (d->data[i] == 0x08 && !memcmp(d->data + i + 1, name, 4))
            return d->data + i;
    return NULL;
}

static bool aml_contains(const GByteArray *d, const void *needle, size_t n)
{
    return memmem(d->data, d->len, needle, n) != NULL;
}

static void test_dsdt_signature_and_patches(void)
{
    AcpiBuildParams p = { .ncpus = 1, .pci_hole_start = 0x12345000, .has_fdc = false,
                          .has_com1 = true };
    GByteArray *d = acpi_build_dsdt(&p);
    CHECK(!memcmp(d->data, "DSDT", 4));
    CHECK_EQ("DSDT length field", d->len, ld32_le(d->data + 4));
    CHECK_EQ("DSDT checksum", 0, sum8(d->data, d->len));
    const uint8_t *phlo = aml_find_name(d, "PHLO");
    CHECK_MSG(phlo != NULL, "PHLO not found");
    CHECK_EQ("PHLO DWordPrefix", 0x0C, phlo[5]);
    CHECK_EQ("PHLO value", 0x12345000, ld32_le(phlo + 6));
    CHECK_EQ("FDEN (no floppy controller)", 0x00, aml_find_name(d, "FDEN")[5]);
    CHECK_EQ("C1EN (COM1)", 0x01, aml_find_name(d, "C1EN")[5]);
    /* Devices SeaBIOS and Linux look for, by EISA id (compressed) or name. */
    static const uint8_t pnp0303[] = { 0x41, 0xD0, 0x03, 0x03 };   /* EisaId("PNP0303") */
    static const uint8_t pnp0a03[] = { 0x41, 0xD0, 0x0A, 0x03 };
    CHECK_MSG(aml_contains(d, pnp0303, 4), "no PNP0303 keyboard");
    CHECK_MSG(aml_contains(d, pnp0a03, 4), "no PNP0A03 host bridge");
    CHECK_MSG(aml_contains(d, "_S5_", 4), "no \\_S5");
    CHECK_MSG(!aml_contains(d, "_S3_", 4), "\\_S3 must not be advertised");
    CHECK_MSG(aml_contains(d, "_PRT", 4), "no _PRT");
    CHECK_MSG(aml_contains(d, "LNKS", 4), "no LNKS");
    g_byte_array_free(d, TRUE);
}

static const char *find_iasl(void)
{
    static const char *const paths[] = { "/usr/bin/iasl", "/usr/local/bin/iasl", NULL };
    for (int i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static void test_dsdt_disassembles(void)
{
    const char *iasl = find_iasl();
    if (!iasl)
        test_skip("iasl not installed (acpica-tools)");
    AcpiBuildParams p = { .ncpus = 4, .pci_hole_start = 0x40000000, .has_fdc = true,
                          .has_com1 = true };
    GByteArray *d = acpi_build_dsdt(&p);
    char dir[] = "/tmp/kestrel-dsdt-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *aml = g_strdup_printf("%s/dsdt.aml", dir);
    char *dsl = g_strdup_printf("%s/dsdt.dsl", dir);
    CHECK(g_file_set_contents(aml, (const char *)d->data, d->len, NULL));
    char *cmd = g_strdup_printf("%s -d %s >%s/log 2>&1", iasl, aml, dir);
    int rc = system(cmd);
    gchar *text = NULL;
    bool have = g_file_get_contents(dsl, &text, NULL, NULL);
    char *cleanup = g_strdup_printf("rm -rf %s", dir);
    if (system(cleanup) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    CHECK_MSG(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "iasl -d failed (status %d)",
              rc);
    CHECK_MSG(have, "iasl -d wrote no dsdt.dsl");
    CHECK_MSG(strstr(text, "Device (PCI0)") && strstr(text, "Device (LNKA)") &&
              strstr(text, "PNP0303") && strstr(text, "_S5"),
              "disassembly lacks PCI0/LNKA/PNP0303/_S5");
    CHECK_MSG(strstr(text, "0x40000000") != NULL, "patched PHLO not in the disassembly");
    g_free(text);
    g_free(aml);
    g_free(dsl);
    g_free(cmd);
    g_free(cleanup);
    g_byte_array_free(d, TRUE);
}

/* ---- Direct boot: tables in guest memory ---- */

static Machine *ram_machine(uint64_t ram, int cpus)
{
    Machine *m = g_new0(Machine, 1);
    m->smp_cpus = cpus;
    m->ram_below_4g = ram;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", ram, NULL);
    memory_region_add_subregion(m->system_memory, 0,
                                memory_region_new_alias("low", m->ram, 0, ram), 0);
    m->as = address_space_new("memory", m->system_memory);
    return m;
}

static void test_direct_install_resolves_pointers(void)
{
    Machine *m = ram_machine(64 * MiB, 3);
    GError *err = NULL;
    bool ok = acpi_install_direct(m, &err);
    CHECK_MSG(ok, "acpi_install_direct: %s", err ? err->message : "?");
    const uint8_t *mem = memory_region_host_ptr(m->ram);
    /* Linux scans 0xE0000-0xFFFFF on 16-byte boundaries. */
    uint64_t rsdp = 0;
    for (uint64_t a = 0xE0000; a < 0x100000 && !rsdp; a += 16)
        if (!memcmp(mem + a, "RSD PTR ", 8))
            rsdp = a;
    CHECK_EQ("RSDP address", ACPI_DIRECT_RSDP_ADDR, rsdp);
    Found found;
    walk_tables(mem, 0x100000, rsdp, &found);
    check_madt(found.madt, 3);
    CHECK_MSG(found.dsdt - mem >= 0xE0000, "DSDT below the BIOS area");
}

static void test_direct_install_without_memory_fails_cleanly(void)
{
    Machine *m = ram_machine(512 * 1024, 1);     /* no RAM at 0xE0000 */
    GError *err = NULL;
    CHECK(!acpi_install_direct(m, &err));
    CHECK_MSG(err && strstr(err->message, "0xE0000"), "error should name the area: %s",
              err ? err->message : "(none)");
    g_error_free(err);
}

/* ---- SMBIOS ---- */

static void smbios_walk(const GByteArray *t, int *types, int *count, size_t *max_size)
{
    size_t off = 0;
    *count = 0;
    *max_size = 0;
    memset(types, 0, 128 * sizeof(int));
    while (off < t->len) {
        const uint8_t *s = t->data + off;
        CHECK_MSG(off + 4 <= t->len && s[1] >= 4 && off + s[1] <= t->len,
                  "structure at +%zu runs past the table", off);
        size_t p = off + s[1];
        /* Strings end with a double NUL. */
        while (p + 1 < t->len && !(t->data[p] == 0 && t->data[p + 1] == 0))
            p++;
        CHECK_MSG(p + 1 < t->len, "structure type %u has no string-set terminator", s[0]);
        p += 2;
        types[s[0] & 127]++;
        (*count)++;
        *max_size = MAX(*max_size, p - off);
        off = p;
        if (s[0] == 127)
            break;
    }
    CHECK_EQ("table ends right after type 127", t->len, off);
}

static void test_smbios_structure(void)
{
    SmbiosParams p = { .ncpus = 4, .ram_below_4g = 3 * 1024 * MiB,
                       .ram_above_4g = 30 * 1024 * MiB, .with_type0 = true };
    GByteArray *anchor, *tables;
    int types[128], count;
    size_t max_size;

    smbios_build(&p, &anchor, &tables);
    CHECK_EQ("anchor size", 31, anchor->len);
    const uint8_t *a = anchor->data;
    CHECK(!memcmp(a, "_SM_", 4));
    CHECK(!memcmp(a + 16, "_DMI_", 5));
    CHECK_EQ("entry point length", 0x1F, a[5]);
    CHECK_EQ("entry point checksum", 0, sum8(a, 31));
    CHECK_EQ("intermediate checksum", 0, sum8(a + 16, 15));
    CHECK_EQ("version", 0x0208, a[6] << 8 | a[7]);
    CHECK_EQ("table length", tables->len, ld16_le(a + 22));

    smbios_walk(tables, types, &count, &max_size);
    CHECK_EQ("number of structures", count, ld16_le(a + 28));
    CHECK_EQ("max structure size", max_size, ld16_le(a + 8));
    CHECK_EQ("type 0", 1, types[0]);
    CHECK_EQ("type 1", 1, types[1]);
    CHECK_EQ("type 3", 1, types[3]);
    CHECK_EQ("type 4 (one per CPU)", 4, types[4]);
    CHECK_EQ("type 16", 1, types[16]);
    CHECK_EQ("type 17 (33 GiB in 16 GiB DIMMs)", 3, types[17]);
    CHECK_EQ("type 19 (below and above 4G)", 2, types[19]);
    CHECK_EQ("type 32", 1, types[32]);
    CHECK_EQ("type 127", 1, types[127]);
    g_byte_array_free(anchor, TRUE);
    g_byte_array_free(tables, TRUE);

    /* SeaBIOS adds its own type 0 when the board leaves it out. */
    p.with_type0 = false;
    p.ncpus = 1;
    p.ram_above_4g = 0;
    smbios_build(&p, &anchor, &tables);
    smbios_walk(tables, types, &count, &max_size);
    CHECK_EQ("type 0 omitted", 0, types[0]);
    CHECK_EQ("type 17", 1, types[17]);
    CHECK_EQ("type 19", 1, types[19]);
    g_byte_array_free(anchor, TRUE);
    g_byte_array_free(tables, TRUE);
}

static const TestCase cases[] = {
    TEST_CASE(test_tables_one_cpu),
    TEST_CASE(test_tables_four_cpus),
    TEST_CASE(test_loader_allocates_before_use),
    TEST_CASE(test_dsdt_signature_and_patches),
    TEST_CASE(test_dsdt_disassembles),
    TEST_CASE(test_direct_install_resolves_pointers),
    TEST_CASE(test_direct_install_without_memory_fails_cleanly),
    TEST_CASE(test_smbios_structure),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("acpi", cases, argc, argv);
}

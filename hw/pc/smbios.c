/*
 * SMBIOS tables for the PC board, handed to SeaBIOS as the fw_cfg files
 * etc/smbios/smbios-anchor and etc/smbios/smbios-tables
 * (firmware-seabios.md §4: the anchor must be exactly a 31-byte SMBIOS 2.1
 * "_SM_" entry point and the table length in it must equal the tables
 * file's size; SeaBIOS places the tables, fills in their address and
 * recomputes both checksums, and adds its own type 0 when none is given).
 *
 * Follows DMTF DSP0134 (SMBIOS) 2.8.0: §5.2.1 the 2.1 (32-bit) entry point,
 * §6.1 structure header and string sets, §7.1 type 0 BIOS, §7.2 type 1
 * system, §7.4 type 3 chassis, §7.5 type 4 processor, §7.17 type 16
 * physical memory array, §7.18 type 17 memory device, §7.20 type 19 memory
 * array mapped address, §7.33 type 32 system boot, §7.45 type 127 end.
 * Layout: handles are type << 8 | index so they stay unique and readable.
 * Memory: one type 16 array, one type 17 device per 16 GiB (QEMU's split),
 * one type 19 per RAM range (below and above 4 GiB).
 *
 * Not built: type 2 (baseboard), type 11 (OEM strings), -smbios options,
 * a real UUID (the field is zero = "not present"; there is no -uuid yet).
 */
#include "kestrel/common.h"

#include "hw/pc/fw_tables.h"

#include <string.h>

/* §5.2.1 SMBIOS 2.1 (32-bit) entry point */
#define EP_ANCHOR               0       /* "_SM_" */
#define EP_CHECKSUM             4
#define EP_LENGTH               5       /* 0x1F */
#define EP_MAJOR                6
#define EP_MINOR                7
#define EP_MAX_STRUCT_SIZE      8       /* u16 */
#define EP_REVISION             10
#define EP_INTERMEDIATE_ANCHOR  16      /* "_DMI_" */
#define EP_INTERMEDIATE_CHECKSUM 21
#define EP_TABLE_LENGTH         22      /* u16 */
#define EP_TABLE_ADDRESS        24      /* u32 */
#define EP_NUM_STRUCTS          28      /* u16 */
#define EP_BCD_REVISION         30
#define EP_SIZE                 31

#define SMBIOS_MAJOR            2
#define SMBIOS_MINOR            8

/* §6.1.2 structure header */
#define SH_TYPE                 0
#define SH_LENGTH               1
#define SH_HANDLE               2       /* u16 */
#define SH_SIZE                 4

#define SMBIOS_HANDLE_NONE      0xFFFF  /* "not provided" */
#define SMBIOS_HANDLE_NO_ERROR  0xFFFE  /* error information not provided */

#define SMBIOS_VENDOR           "Kestrel"
#define SMBIOS_PRODUCT          "Standard PC (i440FX + PIIX, 1996)"
#define SMBIOS_VERSION          "pc"

#define MiB                     (1024ull * 1024)
#define GiB                     (1024 * MiB)
#define SMBIOS_DIMM_MAX         (16 * GiB)

typedef struct SmbiosBuilder {
    GByteArray *t;
    size_t start;                /* offset of the structure being built */
    unsigned nstrings;
    unsigned count;
    size_t max_size;
} SmbiosBuilder;

/* Begin a structure with a formatted area of len bytes (zeroed). */
static uint8_t *smbios_begin(SmbiosBuilder *b, uint8_t type, uint8_t len, uint16_t handle)
{
    b->start = b->t->len;
    b->nstrings = 0;
    g_byte_array_set_size(b->t, b->start + len);
    uint8_t *s = b->t->data + b->start;
    memset(s, 0, len);
    s[SH_TYPE] = type;
    s[SH_LENGTH] = len;
    st16_le(s + SH_HANDLE, handle);
    return s;
}

/* Append a string to the current structure and store its number at field. */
static void smbios_string(SmbiosBuilder *b, size_t field, const char *str)
{
    if (!str || !*str)
        return;                  /* 0 = no string */
    g_byte_array_append(b->t, (const uint8_t *)str, strlen(str) + 1);
    b->t->data[b->start + field] = (uint8_t)++b->nstrings;
}

static void smbios_end(SmbiosBuilder *b)
{
    static const uint8_t nul[2] = { 0, 0 };
    /* The string set ends with a second NUL; with no strings, two NULs. */
    g_byte_array_append(b->t, nul, b->nstrings ? 1 : 2);
    b->count++;
    b->max_size = MAX(b->max_size, b->t->len - b->start);
}

static void smbios_type0(SmbiosBuilder *b)
{
    uint8_t *s = smbios_begin(b, 0, 0x18, 0x0000);
    s[0x06] = 0;                                 /* BIOS starting segment 0xE800 */
    st16_le(s + 0x06, 0xE800);
    s[0x09] = 0;                                 /* ROM size: 64K units - 1 */
    st64_le(s + 0x0A, 1u << 3);                  /* characteristics not supported */
    s[0x13] = 1u << 4;                           /* ext byte 2: virtual machine */
    s[0x14] = 0;                                 /* system BIOS major release */
    s[0x15] = 0;
    s[0x16] = 0xFF;                              /* no embedded controller */
    s[0x17] = 0xFF;
    smbios_string(b, 0x04, SMBIOS_VENDOR);
    smbios_string(b, 0x05, SMBIOS_VERSION);
    smbios_string(b, 0x08, "01/01/2026");
    smbios_end(b);
}

static void smbios_type1(SmbiosBuilder *b)
{
    uint8_t *s = smbios_begin(b, 1, 0x1B, 0x0100);
    s[0x18] = 6;                                 /* wake-up type: power switch */
    smbios_string(b, 0x04, SMBIOS_VENDOR);
    smbios_string(b, 0x05, SMBIOS_PRODUCT);
    smbios_string(b, 0x06, SMBIOS_VERSION);
    smbios_end(b);
}

static void smbios_type3(SmbiosBuilder *b)
{
    uint8_t *s = smbios_begin(b, 3, 0x16, 0x0300);
    s[0x05] = 0x01;                              /* type: other */
    s[0x09] = 0x03;                              /* boot-up state: safe */
    s[0x0A] = 0x03;                              /* power supply state: safe */
    s[0x0B] = 0x03;                              /* thermal state: safe */
    s[0x0C] = 0x02;                              /* security status: unknown */
    smbios_string(b, 0x04, SMBIOS_VENDOR);
    smbios_string(b, 0x06, SMBIOS_VERSION);
    smbios_end(b);
}

static void smbios_type4(SmbiosBuilder *b, int cpu)
{
    char socket[16];
    uint8_t *s = smbios_begin(b, 4, 0x2A, (uint16_t)(0x0400 + cpu));

    g_snprintf(socket, sizeof(socket), "CPU %d", cpu);
    s[0x05] = 0x03;                              /* central processor */
    s[0x06] = 0xFE;                              /* family: see family 2 */
    st16_le(s + 0x14, 2000);                     /* max speed, MHz */
    st16_le(s + 0x16, 2000);                     /* current speed, MHz */
    s[0x18] = 0x41;                              /* socket populated, CPU enabled */
    s[0x19] = 0x01;                              /* upgrade: other */
    st16_le(s + 0x1A, SMBIOS_HANDLE_NONE);       /* L1/L2/L3 cache handles */
    st16_le(s + 0x1C, SMBIOS_HANDLE_NONE);
    st16_le(s + 0x1E, SMBIOS_HANDLE_NONE);
    s[0x23] = 1;                                 /* core count */
    s[0x24] = 1;                                 /* cores enabled */
    s[0x25] = 1;                                 /* thread count */
    st16_le(s + 0x26, 0x0002);                   /* characteristics: unknown */
    st16_le(s + 0x28, 0x0001);                   /* processor family 2: other */
    smbios_string(b, 0x04, socket);
    smbios_string(b, 0x07, SMBIOS_VENDOR);
    smbios_string(b, 0x10, SMBIOS_VERSION);
    smbios_end(b);
}

static void smbios_type16(SmbiosBuilder *b, uint64_t ram, unsigned ndimms)
{
    uint8_t *s = smbios_begin(b, 16, 0x17, 0x1000);
    uint64_t kib = ram / 1024;

    s[0x04] = 0x01;                              /* location: other */
    s[0x05] = 0x03;                              /* use: system memory */
    s[0x06] = 0x06;                              /* error correction: multi-bit ECC */
    if (kib >= 0x80000000ull) {
        st32_le(s + 0x07, 0x80000000u);          /* see extended maximum capacity */
        st64_le(s + 0x0F, ram);
    } else {
        st32_le(s + 0x07, (uint32_t)kib);
    }
    st16_le(s + 0x0B, SMBIOS_HANDLE_NO_ERROR);
    st16_le(s + 0x0D, (uint16_t)ndimms);
    smbios_end(b);
}

static void smbios_type17(SmbiosBuilder *b, unsigned i, uint64_t size)
{
    char loc[16];
    uint8_t *s = smbios_begin(b, 17, 0x28, (uint16_t)(0x1100 + i));
    uint64_t mib = size / MiB;

    g_snprintf(loc, sizeof(loc), "DIMM %u", i);
    st16_le(s + 0x04, 0x1000);                   /* physical memory array handle */
    st16_le(s + 0x06, SMBIOS_HANDLE_NO_ERROR);
    st16_le(s + 0x08, 64);                       /* total width */
    st16_le(s + 0x0A, 64);                       /* data width */
    if (mib >= 0x7FFF) {
        st16_le(s + 0x0C, 0x7FFF);               /* see extended size */
        st32_le(s + 0x1C, (uint32_t)mib);
    } else {
        st16_le(s + 0x0C, (uint16_t)mib);
    }
    s[0x0E] = 0x09;                              /* form factor: DIMM */
    s[0x12] = 0x07;                              /* memory type: RAM */
    st16_le(s + 0x13, 0x0002);                   /* type detail: unknown */
    smbios_string(b, 0x10, loc);
    smbios_string(b, 0x17, SMBIOS_VENDOR);
    smbios_end(b);
}

static void smbios_type19(SmbiosBuilder *b, unsigned i, uint64_t start, uint64_t size)
{
    uint8_t *s = smbios_begin(b, 19, 0x1F, (uint16_t)(0x1300 + i));
    uint64_t end = start + size - 1;

    if (end / 1024 >= 0xFFFFFFFFull) {
        st32_le(s + 0x04, 0xFFFFFFFFu);          /* see extended addresses */
        st32_le(s + 0x08, 0xFFFFFFFFu);
        st64_le(s + 0x0F, start);
        st64_le(s + 0x17, end);
    } else {
        st32_le(s + 0x04, (uint32_t)(start / 1024));
        st32_le(s + 0x08, (uint32_t)(end / 1024));
    }
    st16_le(s + 0x0C, 0x1000);
    s[0x0E] = 1;                                 /* partition width */
    smbios_end(b);
}

void smbios_build(const SmbiosParams *p, GByteArray **anchor, GByteArray **tables)
{
    SmbiosBuilder b = { .t = g_byte_array_new() };
    int ncpus = p->ncpus > 0 ? MIN(p->ncpus, 255) : 1;
    uint64_t ram = p->ram_below_4g + p->ram_above_4g;
    unsigned ndimms = (unsigned)MAX((ram + SMBIOS_DIMM_MAX - 1) / SMBIOS_DIMM_MAX, 1);

    if (p->with_type0)
        smbios_type0(&b);
    smbios_type1(&b);
    smbios_type3(&b);
    for (int i = 0; i < ncpus; i++)
        smbios_type4(&b, i);
    smbios_type16(&b, ram, ndimms);
    for (unsigned i = 0; i < ndimms; i++) {
        uint64_t left = ram - (uint64_t)i * SMBIOS_DIMM_MAX;
        smbios_type17(&b, i, MIN(left, SMBIOS_DIMM_MAX));
    }
    unsigned nranges = 0;
    if (p->ram_below_4g)
        smbios_type19(&b, nranges++, 0, p->ram_below_4g);
    if (p->ram_above_4g)
        smbios_type19(&b, nranges++, 0x100000000ull, p->ram_above_4g);
    smbios_begin(&b, 32, 0x0B, 0x2000);          /* boot status 0: no errors */
    smbios_end(&b);
    smbios_begin(&b, 127, SH_SIZE, 0x7F00);
    smbios_end(&b);

    uint8_t ep[EP_SIZE] = { 0 };
    memcpy(ep + EP_ANCHOR, "_SM_", 4);
    ep[EP_LENGTH] = EP_SIZE;
    ep[EP_MAJOR] = SMBIOS_MAJOR;
    ep[EP_MINOR] = SMBIOS_MINOR;
    st16_le(ep + EP_MAX_STRUCT_SIZE, (uint16_t)b.max_size);
    memcpy(ep + EP_INTERMEDIATE_ANCHOR, "_DMI_", 5);
    st16_le(ep + EP_TABLE_LENGTH, (uint16_t)MIN(b.t->len, 0xFFFFu));
    st32_le(ep + EP_TABLE_ADDRESS, 0);           /* the firmware places the table */
    st16_le(ep + EP_NUM_STRUCTS, (uint16_t)b.count);
    ep[EP_BCD_REVISION] = SMBIOS_MAJOR << 4 | SMBIOS_MINOR;
    /* Checksums as if the address were 0; the firmware recomputes them. */
    uint8_t sum = 0;
    for (int i = EP_INTERMEDIATE_ANCHOR; i < EP_SIZE; i++)
        sum += ep[i];
    ep[EP_INTERMEDIATE_CHECKSUM] = (uint8_t)-sum;
    sum = 0;
    for (int i = 0; i < EP_SIZE; i++)
        sum += ep[i];
    ep[EP_CHECKSUM] = (uint8_t)-sum;

    *anchor = g_byte_array_new();
    g_byte_array_append(*anchor, ep, sizeof(ep));
    *tables = b.t;
}

bool smbios_setup_fw_cfg(Machine *m, FWCfgState *s, GError **errp)
{
    SmbiosParams p = {
        .ncpus = m->smp_cpus,
        .ram_below_4g = m->ram_below_4g,
        .ram_above_4g = m->ram_above_4g,
        .with_type0 = false,     /* SeaBIOS describes itself (its own type 0) */
    };
    GByteArray *anchor, *tables;

    smbios_build(&p, &anchor, &tables);
    bool ok = fw_cfg_add_file(s, SMBIOS_FILE_TABLES, tables->data, tables->len, errp) &&
              fw_cfg_add_file(s, SMBIOS_FILE_ANCHOR, anchor->data, anchor->len, errp);
    g_byte_array_free(anchor, TRUE);
    g_byte_array_free(tables, TRUE);
    return ok;
}

/*
 * Intel MultiProcessor Specification 1.4 tables for a firmware-less boot:
 * the MP floating pointer structure (§4.1) followed by the MP configuration
 * table (§4.2, base entries §4.3).  Linux uses them to find the APs, the
 * IOAPIC and the ISA interrupt routing when there are no ACPI tables.
 *
 * Contents: one processor entry per CPU (APIC id = CPU index, BSP = CPU 0),
 * one ISA bus, one IOAPIC (id = number of CPUs, at 0xFEC00000), I/O interrupt
 * entries for ISA IRQs 0-15 (IRQ0 -> pin 2 as on QEMU's PC, the cascade IRQ2
 * skipped, the others identity) and the local interrupts ExtINT on LINT0, NMI
 * on LINT1 of every local APIC (docs/pc-platform.md §2).
 * Placement: the configuration table at the start of the area given and the
 * 16-byte floating pointer in its last 16 bytes.  The board's area ends at
 * 640 KiB, so the pointer lies both in the last KiB of base memory and in the
 * first KiB of the EBDA (0x40E points there): the places an OS searches
 * (MPS 1.4 §4; Linux scans 0-1K, 639K-640K, 0xF0000-0xFFFFF, then the EBDA).
 *
 * Not described: PCI buses and PCI interrupt entries (the OS falls back to
 * its own routing), the extended table, the IMCR (virtual wire mode).
 */
#include <string.h>

#include "direct_boot.h"

/* §4.1 MP floating pointer structure (16 bytes) */
#define MPF_SIGNATURE       "_MP_"
#define MPF_PHYSPTR         4       /* u32 configuration table address */
#define MPF_LENGTH          8       /* u8 length in 16-byte units: 1 */
#define MPF_SPEC_REV        9       /* u8: 4 = MPS 1.4 */
#define MPF_CHECKSUM        10
#define MPF_FEATURE1        11      /* 0: a configuration table is present */
#define MPF_FEATURE2        12      /* bit 7 IMCRP: 0 = virtual wire mode */
#define MPF_SIZE            16

/* §4.2 configuration table header (44 bytes) */
#define MPC_SIGNATURE       "PCMP"
#define MPC_BASE_LENGTH     4       /* u16 */
#define MPC_SPEC_REV        6
#define MPC_CHECKSUM        7
#define MPC_OEM_ID          8       /* 8 chars */
#define MPC_PRODUCT_ID      16      /* 12 chars */
#define MPC_OEM_TABLE_PTR   28
#define MPC_OEM_TABLE_SIZE  32
#define MPC_ENTRY_COUNT     34      /* u16 */
#define MPC_LAPIC_ADDR      36      /* u32 */
#define MPC_EXT_LENGTH      40
#define MPC_EXT_CHECKSUM    42
#define MPC_HEADER_SIZE     44

/* §4.3 base entry types and sizes */
#define MP_ENTRY_PROCESSOR  0       /* 20 bytes */
#define MP_ENTRY_BUS        1       /* 8 bytes */
#define MP_ENTRY_IOAPIC     2       /* 8 bytes */
#define MP_ENTRY_IOINT      3       /* 8 bytes */
#define MP_ENTRY_LOCALINT   4       /* 8 bytes */
#define MP_PROCESSOR_SIZE   20
#define MP_SMALL_ENTRY_SIZE 8

/* Processor entry CPU flags (§4.3.1) */
#define MP_CPU_EN           (1u << 0)
#define MP_CPU_BP           (1u << 1)
/* Interrupt types (§4.3.4 table 4-9) */
#define MP_INT              0
#define MP_NMI              1
#define MP_EXTINT           3
/* IOAPIC entry flags */
#define MP_IOAPIC_EN        (1u << 0)

#define PC_LAPIC_ADDR       0xFEE00000u
#define PC_IOAPIC_ADDR      0xFEC00000u
#define PC_IOAPIC_VERSION   0x20    /* docs/pc-platform.md §11: QEMU reports 0x20 */
#define PC_LAPIC_VERSION    0x14    /* integrated local APIC (SDM: version 0x1X) */
/* CPUID family 6 signature and EDX FPU|APIC: informational, Linux reads CPUID itself */
#define MP_CPU_SIGNATURE    0x600
#define MP_CPU_FEATURES     ((1u << 0) | (1u << 9))

#define ISA_BUS_ID          0
#define ISA_IRQS            16

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    return (uint8_t)-sum;
}

static size_t mp_table_size(int ncpus)
{
    /* ISA IRQs minus the cascade, plus the two local interrupt entries */
    size_t small = 1 + 1 + (ISA_IRQS - 1) + 2;
    return MPF_SIZE + MPC_HEADER_SIZE + (size_t)ncpus * MP_PROCESSOR_SIZE +
           small * MP_SMALL_ENTRY_SIZE;
}

static uint8_t *mp_put_small(uint8_t *p, uint8_t type, uint8_t b1, uint16_t w2, uint8_t b4,
                             uint8_t b5, uint8_t b6, uint8_t b7)
{
    p[0] = type;
    p[1] = b1;
    st16_le(p + 2, w2);
    p[4] = b4;
    p[5] = b5;
    p[6] = b6;
    p[7] = b7;
    return p + MP_SMALL_ENTRY_SIZE;
}

bool mptable_build(Machine *m, hwaddr addr, size_t max_len, GError **errp)
{
    int ncpus = m->smp_cpus > 0 ? m->smp_cpus : 1;
    /* APIC ids are 8 bits and 0xFF is broadcast; the IOAPIC takes id ncpus. */
    if (ncpus > 254) {
        kestrel_set_error(errp, "MP table: %d CPUs do not fit in 8-bit APIC ids (max 254)",
                          ncpus);
        return false;
    }
    size_t len = mp_table_size(ncpus);
    if (len > max_len) {
        kestrel_set_error(errp, "MP table for %d CPUs needs %zu bytes, only %zu reserved",
                          ncpus, len, max_len);
        return false;
    }
    if (addr + max_len > 0x100000000ULL || (addr & 15) || (max_len & 15)) {
        kestrel_set_error(errp, "MP table address 0x%" G_GINT64_MODIFIER "x must be "
                          "16-byte aligned and below 4 GiB", addr);
        return false;
    }

    uint8_t *mpc = g_malloc0(len - MPF_SIZE), mpf[MPF_SIZE] = { 0 };
    hwaddr mpc_addr = addr, mpf_addr = addr + max_len - MPF_SIZE;

    memcpy(mpf, MPF_SIGNATURE, 4);
    st32_le(mpf + MPF_PHYSPTR, (uint32_t)mpc_addr);
    mpf[MPF_LENGTH] = 1;
    mpf[MPF_SPEC_REV] = 4;
    mpf[MPF_FEATURE1] = 0;
    mpf[MPF_FEATURE2] = 0;

    memcpy(mpc, MPC_SIGNATURE, 4);
    mpc[MPC_SPEC_REV] = 4;
    memcpy(mpc + MPC_OEM_ID, "KESTREL ", 8);
    memcpy(mpc + MPC_PRODUCT_ID, "PC i440FX   ", 12);
    st32_le(mpc + MPC_LAPIC_ADDR, PC_LAPIC_ADDR);

    uint8_t *p = mpc + MPC_HEADER_SIZE;
    unsigned count = 0;
    for (int i = 0; i < ncpus; i++) {
        p[0] = MP_ENTRY_PROCESSOR;
        p[1] = (uint8_t)i;                           /* local APIC id */
        p[2] = PC_LAPIC_VERSION;
        p[3] = MP_CPU_EN | (i == 0 ? MP_CPU_BP : 0);
        st32_le(p + 4, MP_CPU_SIGNATURE);
        st32_le(p + 8, MP_CPU_FEATURES);
        p += MP_PROCESSOR_SIZE;
        count++;
    }
    /* Bus entry: id, then a 6-character bus type string (§4.3.2 table 4-8). */
    p[0] = MP_ENTRY_BUS;
    p[1] = ISA_BUS_ID;
    memcpy(p + 2, "ISA   ", 6);
    p += MP_SMALL_ENTRY_SIZE;
    count++;

    uint8_t ioapic_id = (uint8_t)ncpus;
    p[0] = MP_ENTRY_IOAPIC;
    p[1] = ioapic_id;
    p[2] = PC_IOAPIC_VERSION;
    p[3] = MP_IOAPIC_EN;
    st32_le(p + 4, PC_IOAPIC_ADDR);
    p += MP_SMALL_ENTRY_SIZE;
    count++;

    /*
     * I/O interrupt entries: type, flags (0 = polarity/trigger conform to
     * the ISA bus: active high, edge), source bus, source IRQ, IOAPIC id, pin.
     */
    for (int irq = 0; irq < ISA_IRQS; irq++) {
        if (irq == 2)
            continue;
        uint8_t pin = irq == 0 ? 2 : (uint8_t)irq;
        p = mp_put_small(p, MP_ENTRY_IOINT, MP_INT, 0, ISA_BUS_ID, (uint8_t)irq, ioapic_id, pin);
        count++;
    }
    /* Local interrupts: destination 0xFF = every local APIC. */
    p = mp_put_small(p, MP_ENTRY_LOCALINT, MP_EXTINT, 0, ISA_BUS_ID, 0, 0xFF, 0);
    p = mp_put_small(p, MP_ENTRY_LOCALINT, MP_NMI, 0, ISA_BUS_ID, 0, 0xFF, 1);
    count += 2;

    size_t mpc_len = (size_t)(p - mpc);
    st16_le(mpc + MPC_BASE_LENGTH, (uint16_t)mpc_len);
    st16_le(mpc + MPC_ENTRY_COUNT, (uint16_t)count);
    mpc[MPC_CHECKSUM] = mp_checksum(mpc, mpc_len);
    mpf[MPF_CHECKSUM] = mp_checksum(mpf, MPF_SIZE);

    bool ok = boot_write(m, mpc_addr, mpc, mpc_len, "MP table", errp) &&
              boot_write(m, mpf_addr, mpf, MPF_SIZE, "MP floating pointer", errp);
    g_free(mpc);
    return ok;
}

/*
 * pci-testdev: QEMU's PCI test device (no hardware counterpart), which
 * kvm-unit-tests' lib/pci-testdev.c drives to time and check MMIO and port
 * I/O exits.  Facts from QEMU's hw/misc/pci-testdev.c:
 *
 *   IDs 1B36:0005 (Red Hat, "test"), revision 0, class code 0x00FF00,
 *   no interrupt pin.  BAR0: 4 KiB 32-bit memory; BAR1: 256 bytes of I/O.
 *
 * Six tests, numbered i = type * 3 + kind, type 0 = MMIO (BAR0), 1 = port
 * I/O (BAR1); kind 0 "no-eventfd", 1 "wildcard-eventfd", 2
 * "datamatch-eventfd".  A byte write of k to offset 0 of a BAR selects test
 * type*3+k of that BAR's type (k > 2 selects none) and zeroes its count.
 * While a test is selected, both BARs read (byte by byte) as its header:
 *   0   test     u8   i
 *   1   width    u8   1 (the access width the test expects)
 *   4   offset   u32  where to write: 2048 + i for MMIO tests, 128 + i for I/O
 *   8   data     u8   0xFA (no-eventfd, datamatch) or 0xCE (wildcard)
 *   12  count    u32  writes the device saw at offset
 *   16  name     "mmio-no-eventfd" .. "portio-datamatch-eventfd", NUL
 * Reads at or past the header's last byte, or with no test selected, are 0.
 *
 * Counting, as QEMU does it: accesses reach the device one byte at a time;
 * a byte written at the selected test's offset counts, if the test matches
 * data, only when it equals data.  The two "eventfd" tests also have a
 * notifier on their own BAR at offset, width 1 (data-matched for
 * datamatch): a write that matches the notifier exactly (address, size,
 * and data where matched) is absorbed by it and never counted.  We keep no
 * eventfd, but absorb the same writes, so the counts are QEMU's: 16 byte
 * writes of 0xFA leave mmio-no-eventfd at 16 and the eventfd tests at 0,
 * both of which kvm-unit-tests accepts.
 *
 * The selection is shared by both BARs, as in QEMU (a write through one BAR
 * at the other test's offset counts too).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "kestrel/pci.h"

#include <string.h>

/* ---- Register table ---- */

#define PCI_TESTDEV_VENDOR          0x1b36      /* Red Hat, Inc. */
#define PCI_TESTDEV_DEVICE          0x0005      /* PCI test device */
#define PCI_TESTDEV_REVISION        0x00
/*
 * QEMU passes PCI_CLASS_OTHERS (0xff) as its 16-bit class/subclass value, so
 * the base class reads 00h and the subclass FFh: config 0x09-0x0B = 00 FF 00.
 */
#define PCI_TESTDEV_CLASS           0x00ff00

#define PCI_TESTDEV_MMIO_BAR        0
#define PCI_TESTDEV_MMIO_SIZE       4096        /* 2 x 2048 */
#define PCI_TESTDEV_PIO_BAR         1
#define PCI_TESTDEV_PIO_SIZE        256         /* 2 x 128 */

/* Test header, at offset 0 of either BAR */
#define TESTDEV_HDR_TEST            0           /* u8: write selects, read gives index */
#define TESTDEV_HDR_WIDTH           1           /* u8 */
#define TESTDEV_HDR_OFFSET          4           /* u32 */
#define TESTDEV_HDR_DATA            8           /* u8 */
#define TESTDEV_HDR_COUNT           12          /* u32 */
#define TESTDEV_HDR_NAME            16          /* NUL-terminated */
#define TESTDEV_HDR_MAX             (TESTDEV_HDR_NAME + 32)

#define TESTDEV_KINDS               3           /* no-eventfd, wildcard, datamatch */
#define TESTDEV_TYPES               2           /* mmio, portio */
#define TESTDEV_COUNT               (TESTDEV_KINDS * TESTDEV_TYPES)
#define TESTDEV_KIND_NO_EVENTFD     0
#define TESTDEV_KIND_WILDCARD       1
#define TESTDEV_KIND_DATAMATCH      2
#define TESTDEV_TYPE_MMIO           0
#define TESTDEV_TYPE_PORTIO         1
#define TESTDEV_WIDTH               1
#define TESTDEV_DATAMATCH           0xfa
#define TESTDEV_NOMATCH             0xce
/* Each test writes past the header area of its BAR's first half. */
#define TESTDEV_MMIO_OFFSET_BASE    2048
#define TESTDEV_PIO_OFFSET_BASE     128

#define TESTDEV_NONE                (-1)

static const char *const testdev_kind_name[TESTDEV_KINDS] = {
    "no-eventfd", "wildcard-eventfd", "datamatch-eventfd",
};
static const char *const testdev_type_name[TESTDEV_TYPES] = { "mmio", "portio" };

/* ---- State ---- */

typedef struct PCITestdev {
    PCIDevice dev;                          /* config space, BAR0, BAR1 */
    int current;                            /* selected test, or TESTDEV_NONE */
    uint32_t count[TESTDEV_COUNT];

    MemoryRegion *mmio;
} PCITestdev;

/* ---- Behaviour ---- */

static int testdev_type(int t) { return t / TESTDEV_KINDS; }
static int testdev_kind(int t) { return t % TESTDEV_KINDS; }

static uint32_t testdev_offset(int t)
{
    return (testdev_type(t) == TESTDEV_TYPE_MMIO ? TESTDEV_MMIO_OFFSET_BASE
                                                 : TESTDEV_PIO_OFFSET_BASE) + (uint32_t)t;
}

static bool testdev_match_data(int t) { return testdev_kind(t) != TESTDEV_KIND_WILDCARD; }
static bool testdev_has_notifier(int t) { return testdev_kind(t) != TESTDEV_KIND_NO_EVENTFD; }

static uint8_t testdev_data(int t)
{
    return testdev_match_data(t) ? TESTDEV_DATAMATCH : TESTDEV_NOMATCH;
}

/* Build test t's header into hdr; returns its length including the NUL. */
static unsigned testdev_header(const PCITestdev *s, int t, uint8_t hdr[TESTDEV_HDR_MAX])
{
    memset(hdr, 0, TESTDEV_HDR_MAX);
    hdr[TESTDEV_HDR_TEST] = (uint8_t)t;
    hdr[TESTDEV_HDR_WIDTH] = TESTDEV_WIDTH;
    st32_le(hdr + TESTDEV_HDR_OFFSET, testdev_offset(t));
    hdr[TESTDEV_HDR_DATA] = testdev_data(t);
    st32_le(hdr + TESTDEV_HDR_COUNT, s->count[t]);
    int n = snprintf((char *)hdr + TESTDEV_HDR_NAME, TESTDEV_HDR_MAX - TESTDEV_HDR_NAME,
                     "%s-%s", testdev_type_name[testdev_type(t)],
                     testdev_kind_name[testdev_kind(t)]);
    return TESTDEV_HDR_NAME + (unsigned)n + 1;
}

static uint8_t testdev_read_byte(PCITestdev *s, uint64_t addr)
{
    uint8_t hdr[TESTDEV_HDR_MAX];
    if (s->current == TESTDEV_NONE)
        return 0;
    unsigned len = testdev_header(s, s->current, hdr);
    /* QEMU returns 0 from the last byte (the NUL) on. */
    if (addr + 1 >= len)
        return 0;
    return hdr[addr];
}

static void testdev_write_byte(PCITestdev *s, uint64_t addr, uint8_t val, int type)
{
    if (addr == TESTDEV_HDR_TEST) {
        s->current = TESTDEV_NONE;
        if (val >= TESTDEV_KINDS)
            return;
        s->current = type * TESTDEV_KINDS + val;
        s->count[s->current] = 0;
        return;
    }
    if (s->current == TESTDEV_NONE)
        return;
    int t = s->current;
    if (addr != testdev_offset(t))
        return;
    if (testdev_match_data(t) && val != testdev_data(t))
        return;
    s->count[t]++;
}

/*
 * One guest access to a BAR of the given type.  The selected test's
 * notifier sees the whole access first (QEMU matches ioeventfds before
 * splitting); what it does not absorb reaches the registers a byte at a time.
 */
static void testdev_access_write(PCITestdev *s, uint64_t addr, uint64_t value, unsigned size,
                                 int type)
{
    int t = s->current;
    if (t != TESTDEV_NONE && testdev_has_notifier(t) && testdev_type(t) == type &&
        addr == testdev_offset(t) && size == TESTDEV_WIDTH &&
        (!testdev_match_data(t) || value == testdev_data(t)))
        return;
    for (unsigned i = 0; i < size; i++)
        testdev_write_byte(s, addr + i, (uint8_t)(value >> (i * 8)), type);
}

static uint64_t testdev_access_read(PCITestdev *s, uint64_t addr, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)testdev_read_byte(s, addr + i) << (i * 8);
    return v;
}

static uint64_t pci_testdev_mmio_read(void *opaque, hwaddr offset, unsigned size)
{
    return testdev_access_read(opaque, offset, size);
}

static void pci_testdev_mmio_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    testdev_access_write(opaque, offset, value, size, TESTDEV_TYPE_MMIO);
}

static const MemoryRegionOps pci_testdev_mmio_ops = {
    .read = pci_testdev_mmio_read,
    .write = pci_testdev_mmio_write,
    .min_access = 1,
    .max_access = 4,
};

static uint32_t pci_testdev_pio_read(void *opaque, uint16_t offset, unsigned size)
{
    return (uint32_t)testdev_access_read(opaque, offset, size);
}

static void pci_testdev_pio_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    testdev_access_write(opaque, offset, value, size, TESTDEV_TYPE_PORTIO);
}

static const IoPortOps pci_testdev_pio_ops = {
    .read = pci_testdev_pio_read,
    .write = pci_testdev_pio_write,
    .max_access = 4,
};

static void pci_testdev_reset(void *opaque)
{
    PCITestdev *s = opaque;
    pci_device_reset(&s->dev);
    s->current = TESTDEV_NONE;
    memset(s->count, 0, sizeof(s->count));
}

/* ---- Registration ---- */

static void *pci_testdev_create(Machine *m, const DeviceProps *props, GError **errp)
{
    PCIBus *bus = m ? machine_pci_bus(m) : NULL;
    if (!bus) {
        kestrel_set_error(errp, "pci-testdev: needs the PCI bus (i440FX host bridge)");
        return NULL;
    }
    int devfn = pci_parse_devfn(device_props_get_str(props, "addr"), errp);
    if (devfn == -2) {                      /* bad addr=, error set */
        if (errp && *errp)
            g_prefix_error(errp, "pci-testdev: ");
        return NULL;
    }

    PCITestdev *s = g_new0(PCITestdev, 1);
    s->current = TESTDEV_NONE;
    pci_config_set_ids(&s->dev, PCI_TESTDEV_VENDOR, PCI_TESTDEV_DEVICE, PCI_TESTDEV_REVISION,
                       PCI_TESTDEV_CLASS);
    pci_config_set_interrupt_pin(&s->dev, 0);
    s->mmio = memory_region_new_mmio("pci-testdev-mmio", PCI_TESTDEV_MMIO_SIZE,
                                     &pci_testdev_mmio_ops, s);
    pci_register_bar_mem(&s->dev, PCI_TESTDEV_MMIO_BAR, PCI_BAR_MEM32, false, s->mmio);
    pci_register_bar_io(&s->dev, PCI_TESTDEV_PIO_BAR, PCI_TESTDEV_PIO_SIZE,
                        &pci_testdev_pio_ops, s);
    if (!pci_device_register(bus, &s->dev, devfn, "pci-testdev", errp))
        return NULL;        /* the region may be referenced by the BAR: not freed */
    pci_testdev_reset(s);
    return s;
}

static const PropDef pci_testdev_props[] = {
    { "addr", PROP_STRING, NULL, "PCI slot[.function] (default: first free slot)" },
    { NULL }
};

static const DeviceType pci_testdev_type = {
    .name = "pci-testdev",
    .desc = "PCI test device 1b36:0005: MMIO and port I/O exit tests (kvm-unit-tests)",
    .bus = "pci",
    .user_creatable = true,
    .props = pci_testdev_props,
    .create = pci_testdev_create,
    .reset = pci_testdev_reset,
};

DEVICE_TYPE_REGISTER(pci_testdev_type)

/*
 * PIIX3 IDE ("piix3-ide", PCI 00:01.1) with an ATA disk on the primary
 * master, an ATAPI CD-ROM with an image on the secondary master and an
 * empty CD-ROM on the secondary slave: register echo, SRST and signatures,
 * IDENTIFY, PIO reads and writes (LBA28, LBA48, READ MULTIPLE), bus-master
 * DMA both ways and its failure modes, the IRQ 14 line and nIEN, range
 * checks, and the ATAPI packet commands.
 *
 * Disk I/O completes on kestrel's main loop in real time, so the tests poll
 * Alternate Status until BSY drops (with a real-time timeout) instead of
 * stepping the virtual clock.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Legacy ports */
#define PRI             0x1f0
#define PRI_CTL         0x3f6
#define SEC             0x170
#define SEC_CTL         0x376
#define PRI_IRQ         14
#define SEC_IRQ         15

#define REG_DATA        0
#define REG_ERROR       1
#define REG_FEATURE     1
#define REG_NSECTOR     2
#define REG_LBAL        3
#define REG_LBAM        4
#define REG_LBAH        5
#define REG_DEVICE      6
#define REG_STATUS      7
#define REG_COMMAND     7

#define ST_BSY          0x80
#define ST_DRDY         0x40
#define ST_DSC          0x10
#define ST_DRQ          0x08
#define ST_ERR          0x01
#define ERR_ABRT        0x04
#define ERR_IDNF        0x10

#define CTL_SRST        0x04
#define CTL_NIEN        0x02
#define CTL_HOB         0x80

#define DEV_LBA         0x40
#define DEV_SLAVE       0x10

#define CMD_READ        0x20
#define CMD_READ_EXT    0x24
#define CMD_WRITE       0x30
#define CMD_VERIFY      0x40
#define CMD_PACKET      0xa0
#define CMD_PIDENTIFY   0xa1
#define CMD_DEVICE_RESET 0x08
#define CMD_READ_MULT   0xc4
#define CMD_SETMULT     0xc6
#define CMD_READ_DMA    0xc8
#define CMD_WRITE_DMA   0xca
#define CMD_FLUSH       0xe7
#define CMD_IDENTIFY    0xec

/* PCI */
#define IDE_DEVFN       ((1 << 3) | 1)
#define BM_BASE         0xc040
#define BM_CMD          0
#define BM_STATUS       2
#define BM_PRD          4
#define BM_CMD_START    0x01
#define BM_CMD_READ     0x08
#define BM_ST_ACTIVE    0x01
#define BM_ST_ERROR     0x02
#define BM_ST_INT       0x04

/* Guest memory used for DMA */
#define PRD_ADDR        0x10000
#define BUF_ADDR        0x20000
#define BUF2_ADDR       0x40000

#define IMG_SECTORS     8192            /* 4 MiB: CHS 8/16/63 */
#define ISO_SECTORS     100

static char img_path[64], iso_path[64];

static uint8_t img_byte(uint64_t off)
{
    return (uint8_t)((off >> 9) * 7 + off * 3 + 1);
}

static uint8_t iso_byte(uint64_t off)
{
    return (uint8_t)((off >> 11) * 11 + off * 5 + 0x33);
}

static void remove_files(void)
{
    if (img_path[0])
        unlink(img_path);
    if (iso_path[0])
        unlink(iso_path);
}

static void make_file(char *path, size_t pathlen, size_t size, uint8_t (*fn)(uint64_t))
{
    snprintf(path, pathlen, "/tmp/kestrel-ide-XXXXXX");
    int fd = mkstemp(path);
    CHECK_MSG(fd >= 0, "mkstemp failed");
    uint8_t *buf = malloc(size);
    for (size_t i = 0; i < size; i++)
        buf[i] = fn(i);
    CHECK(write(fd, buf, size) == (ssize_t)size);
    free(buf);
    close(fd);
}

static void make_files(void)
{
    static bool registered;
    make_file(img_path, sizeof(img_path), (size_t)IMG_SECTORS * 512, img_byte);
    make_file(iso_path, sizeof(iso_path), (size_t)ISO_SECTORS * 2048, iso_byte);
    if (!registered) {
        atexit(remove_files);
        registered = true;
    }
}

/* The machine with the standard drives; IDETIM decode enabled as SeaBIOS does. */
static QTest *ide_start_args(const char *disk_opts, const char *extra)
{
    char args[512];
    make_files();
    snprintf(args, sizeof(args),
             "-m 64 -drive file=%s,if=ide,index=0,format=raw%s "
             "-drive file=%s,if=ide,index=2,media=cdrom,format=raw "
             "-drive if=ide,index=3,media=cdrom %s",
             img_path, disk_opts, iso_path, extra);
    QTest *qt = qtest_start(args);
    qtest_pci_cfg_writew(qt, IDE_DEVFN, 0x40, 0x8000);
    qtest_pci_cfg_writew(qt, IDE_DEVFN, 0x42, 0x8000);
    return qt;
}

static QTest *ide_start(void)
{
    return ide_start_args("", "");
}

/* BAR4 at BM_BASE, I/O decode and (optionally) bus mastering on. */
static void bm_setup(QTest *qt, bool master)
{
    qtest_pci_cfg_writel(qt, IDE_DEVFN, 0x20, BM_BASE);
    qtest_pci_cfg_writew(qt, IDE_DEVFN, 0x04, master ? 0x0005 : 0x0001);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Poll Alternate Status (no interrupt acknowledge) until BSY clears. */
static uint8_t wait_not_busy(QTest *qt, uint16_t ctl)
{
    double end = now_s() + test_timeout(10);
    for (;;) {
        uint8_t st = qtest_inb(qt, ctl);
        if (!(st & ST_BSY))
            return st;
        if (now_s() > end)
            test_fail(__FILE__, __LINE__, "status stayed BSY (0x%02x)", st);
        usleep(100);
    }
}

/* Poll the bus master status until Interrupt or Error shows up. */
static uint8_t wait_bm(QTest *qt, int ch)
{
    double end = now_s() + test_timeout(10);
    for (;;) {
        uint8_t st = qtest_inb(qt, BM_BASE + 8 * ch + BM_STATUS);
        if (st & (BM_ST_INT | BM_ST_ERROR))
            return st;
        if (now_s() > end)
            test_fail(__FILE__, __LINE__, "bus master never interrupted (status 0x%02x)", st);
        usleep(100);
    }
}

static void ata_lba28(QTest *qt, uint16_t base, bool slave, uint32_t lba, uint8_t count,
                      uint8_t cmd)
{
    qtest_outb(qt, base + REG_DEVICE, DEV_LBA | (slave ? DEV_SLAVE : 0) | ((lba >> 24) & 0xf));
    qtest_outb(qt, base + REG_NSECTOR, count);
    qtest_outb(qt, base + REG_LBAL, (uint8_t)lba);
    qtest_outb(qt, base + REG_LBAM, (uint8_t)(lba >> 8));
    qtest_outb(qt, base + REG_LBAH, (uint8_t)(lba >> 16));
    qtest_outb(qt, base + REG_COMMAND, cmd);
}

static void ata_lba48(QTest *qt, uint64_t lba, uint16_t count, uint8_t cmd)
{
    qtest_outb(qt, PRI + REG_DEVICE, DEV_LBA);
    qtest_outb(qt, PRI + REG_NSECTOR, (uint8_t)(count >> 8));
    qtest_outb(qt, PRI + REG_LBAL, (uint8_t)(lba >> 24));
    qtest_outb(qt, PRI + REG_LBAM, (uint8_t)(lba >> 32));
    qtest_outb(qt, PRI + REG_LBAH, (uint8_t)(lba >> 40));
    qtest_outb(qt, PRI + REG_NSECTOR, (uint8_t)count);
    qtest_outb(qt, PRI + REG_LBAL, (uint8_t)lba);
    qtest_outb(qt, PRI + REG_LBAM, (uint8_t)(lba >> 8));
    qtest_outb(qt, PRI + REG_LBAH, (uint8_t)(lba >> 16));
    qtest_outb(qt, PRI + REG_COMMAND, cmd);
}

/* Read one DRQ block of n bytes with 32-bit accesses (16-bit when use16). */
static void pio_in(QTest *qt, uint16_t base, uint8_t *buf, size_t n, bool use16)
{
    for (size_t i = 0; i < n; i += use16 ? 2 : 4) {
        uint32_t v = use16 ? qtest_inw(qt, base) : qtest_inl(qt, base);
        for (unsigned k = 0; k < (use16 ? 2u : 4u) && i + k < n; k++)
            buf[i + k] = (uint8_t)(v >> (8 * k));
    }
}

static void pio_out(QTest *qt, uint16_t base, const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 2)
        qtest_outw(qt, base, (uint16_t)(buf[i] | buf[i + 1] << 8));
}

static void check_img_data(const uint8_t *buf, uint64_t lba, unsigned sectors)
{
    for (size_t i = 0; i < (size_t)sectors * 512; i++) {
        uint8_t want = img_byte(lba * 512 + i);
        if (buf[i] != want)
            test_fail(__FILE__, __LINE__, "disk data at LBA %" PRIu64 " byte %zu: expected "
                      "0x%02x, got 0x%02x", lba + i / 512, i % 512, want, buf[i]);
    }
}

static void check_iso_data(const uint8_t *buf, uint64_t lba, unsigned sectors)
{
    for (size_t i = 0; i < (size_t)sectors * 2048; i++) {
        uint8_t want = iso_byte(lba * 2048 + i);
        if (buf[i] != want)
            test_fail(__FILE__, __LINE__, "CD data at LBA %" PRIu64 " byte %zu: expected "
                      "0x%02x, got 0x%02x", lba + i / 2048, i % 2048, want, buf[i]);
    }
}

static void file_read(const char *path, uint64_t off, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(pread(fd, buf, n, (off_t)off) == (ssize_t)n);
    close(fd);
}

/* ---- ATAPI helpers (secondary channel) ---- */

static void atapi_packet(QTest *qt, bool slave, const uint8_t *cdb, uint16_t bcl, bool dma)
{
    qtest_outb(qt, SEC + REG_DEVICE, slave ? DEV_SLAVE : 0);
    qtest_outb(qt, SEC + REG_FEATURE, dma ? 1 : 0);
    qtest_outb(qt, SEC + REG_LBAM, (uint8_t)bcl);
    qtest_outb(qt, SEC + REG_LBAH, (uint8_t)(bcl >> 8));
    qtest_outb(qt, SEC + REG_COMMAND, CMD_PACKET);
    uint8_t st = wait_not_busy(qt, SEC_CTL);
    CHECK_MSG(st & ST_DRQ, "PACKET: expected DRQ for the command packet, status 0x%02x", st);
    CHECK_EQ("interrupt reason (CoD) for the packet", 0x01, qtest_inb(qt, SEC + REG_NSECTOR));
    pio_out(qt, SEC, cdb, 12);
}

/* Data-in phase by PIO; returns the byte count; stops at the status phase. */
static size_t atapi_pio_in(QTest *qt, uint8_t *buf, size_t max)
{
    size_t got = 0;
    for (;;) {
        uint8_t st = wait_not_busy(qt, SEC_CTL);
        if (!(st & ST_DRQ))
            break;
        CHECK_EQ("interrupt reason (IO, data)", 0x02, qtest_inb(qt, SEC + REG_NSECTOR));
        size_t n = qtest_inb(qt, SEC + REG_LBAM) | qtest_inb(qt, SEC + REG_LBAH) << 8;
        CHECK_MSG(n > 0 && got + n <= max, "byte count %zu with %zu of %zu already read", n,
                  got, max);
        pio_in(qt, SEC, buf + got, n, (n & 3) != 0);
        got += n;
    }
    return got;
}

/* Status phase: returns Status (acknowledging), checks CoD|IO. */
static uint8_t atapi_status(QTest *qt)
{
    wait_not_busy(qt, SEC_CTL);
    CHECK_EQ("interrupt reason (CoD|IO, status)", 0x03, qtest_inb(qt, SEC + REG_NSECTOR));
    return qtest_inb(qt, SEC + REG_STATUS);
}

static uint8_t atapi_cmd_nodata(QTest *qt, bool slave, const uint8_t *cdb)
{
    atapi_packet(qt, slave, cdb, 0, false);
    return atapi_status(qt);
}

static void atapi_request_sense(QTest *qt, bool slave, uint8_t *key, uint8_t *asc,
                                uint8_t *ascq)
{
    uint8_t cdb[12] = { 0x03, 0, 0, 0, 18 };
    uint8_t sense[18];
    atapi_packet(qt, slave, cdb, 18, false);
    CHECK_EQ("REQUEST SENSE length", 18, atapi_pio_in(qt, sense, sizeof(sense)));
    CHECK_EQ("REQUEST SENSE status", ST_DRDY | ST_DSC, atapi_status(qt) & ~0x0);
    CHECK_EQ("sense response code", 0x70, sense[0]);
    *key = sense[2] & 0x0f;
    *asc = sense[12];
    *ascq = sense[13];
}

/* ---- Tests: registers, reset, identify ---- */

static void test_pci_ids_and_decode_enable(void)
{
    make_files();
    char args[256];
    snprintf(args, sizeof(args), "-drive file=%s,if=ide,index=0,format=raw", img_path);
    QTest *qt = qtest_start(args);
    CHECK_EQ("vendor/device", 0x70108086, qtest_pci_cfg_readl(qt, IDE_DEVFN, 0x00));
    CHECK_EQ("class code / revision", 0x01018000, qtest_pci_cfg_readl(qt, IDE_DEVFN, 0x08));
    /* IDETIM decode starts off under firmware boot: the legacy ports float. */
    CHECK_EQ("status with IDETIM decode off", 0xff, qtest_inb(qt, PRI + REG_STATUS));
    qtest_pci_cfg_writew(qt, IDE_DEVFN, 0x40, 0x8000);
    CHECK_EQ("IDETIM readback", 0x8000, qtest_pci_cfg_readl(qt, IDE_DEVFN, 0x40) & 0xffff);
    CHECK_EQ("status with decode on", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    /* Secondary channel: decode on but no drives -> floating bus. */
    qtest_pci_cfg_writew(qt, IDE_DEVFN, 0x42, 0x8000);
    CHECK_EQ("empty channel status", 0xff, qtest_inb(qt, SEC + REG_STATUS));
    qtest_outb(qt, SEC + REG_NSECTOR, 0x55);
    CHECK_EQ("empty channel sector count", 0xff, qtest_inb(qt, SEC + REG_NSECTOR));
    qtest_quit(qt);
}

/* SeaBIOS's presence test: sector count / number echo, device register echo. */
static void test_register_echo(void)
{
    QTest *qt = ide_start();
    for (int slave = 0; slave < 2; slave++) {
        qtest_outb(qt, PRI + REG_DEVICE, slave ? 0xb0 : 0xa0);
        qtest_outb(qt, PRI + REG_NSECTOR, 0x55);
        qtest_outb(qt, PRI + REG_LBAL, 0xaa);
        qtest_outb(qt, PRI + REG_NSECTOR, 0xaa);
        qtest_outb(qt, PRI + REG_LBAL, 0x55);
        qtest_outb(qt, PRI + REG_NSECTOR, 0x55);
        qtest_outb(qt, PRI + REG_LBAL, 0xaa);
        CHECK_EQ("sector count echo", 0x55, qtest_inb(qt, PRI + REG_NSECTOR));
        CHECK_EQ("sector number echo", 0xaa, qtest_inb(qt, PRI + REG_LBAL));
        CHECK_EQ("device register echo", slave ? 0xb0 : 0xa0, qtest_inb(qt, PRI + REG_DEVICE));
    }
    /* The absent primary slave answers status 0; the master is ready. */
    CHECK_EQ("absent slave status", 0x00, qtest_inb(qt, PRI + REG_STATUS));
    qtest_outb(qt, PRI + REG_DEVICE, 0xa0);
    CHECK_EQ("master status", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    qtest_quit(qt);
}

static void test_srst_signatures(void)
{
    QTest *qt = ide_start();
    qtest_outb(qt, PRI_CTL, CTL_SRST | CTL_NIEN);
    CHECK_EQ("status during SRST", ST_BSY, qtest_inb(qt, PRI_CTL) & ST_BSY);
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    qtest_outb(qt, SEC_CTL, CTL_SRST | CTL_NIEN);
    qtest_outb(qt, SEC_CTL, CTL_NIEN);

    CHECK_EQ("ATA status after reset", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    CHECK_EQ("ATA error (diagnostic passed)", 0x01, qtest_inb(qt, PRI + REG_ERROR));
    CHECK_EQ("ATA sector count", 1, qtest_inb(qt, PRI + REG_NSECTOR));
    CHECK_EQ("ATA LBA low", 1, qtest_inb(qt, PRI + REG_LBAL));
    CHECK_EQ("ATA LBA mid", 0, qtest_inb(qt, PRI + REG_LBAM));
    CHECK_EQ("ATA LBA high", 0, qtest_inb(qt, PRI + REG_LBAH));

    for (int slave = 0; slave < 2; slave++) {
        qtest_outb(qt, SEC + REG_DEVICE, slave ? DEV_SLAVE : 0);
        CHECK_EQ("ATAPI status after reset", 0x00, qtest_inb(qt, SEC + REG_STATUS));
        CHECK_EQ("ATAPI sector count", 1, qtest_inb(qt, SEC + REG_NSECTOR));
        CHECK_EQ("ATAPI LBA low", 1, qtest_inb(qt, SEC + REG_LBAL));
        CHECK_EQ("ATAPI signature LBA mid", 0x14, qtest_inb(qt, SEC + REG_LBAM));
        CHECK_EQ("ATAPI signature LBA high", 0xeb, qtest_inb(qt, SEC + REG_LBAH));
    }
    /* DEVICE RESET restores the signature after the registers were changed. */
    qtest_outb(qt, SEC + REG_DEVICE, 0);
    qtest_outb(qt, SEC + REG_LBAM, 0x12);
    qtest_outb(qt, SEC + REG_COMMAND, CMD_DEVICE_RESET);
    wait_not_busy(qt, SEC_CTL);
    CHECK_EQ("signature after DEVICE RESET", 0x14, qtest_inb(qt, SEC + REG_LBAM));
    /* DEVICE RESET is PACKET-only: an ATA disk aborts it. */
    qtest_outb(qt, PRI + REG_DEVICE, 0);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_DEVICE_RESET);
    CHECK_EQ("ATA DEVICE RESET status", ST_DRDY | ST_DSC | ST_ERR,
             qtest_inb(qt, PRI + REG_STATUS));
    CHECK_EQ("ATA DEVICE RESET error", ERR_ABRT, qtest_inb(qt, PRI + REG_ERROR));
    qtest_quit(qt);
}

static void test_identify_device(void)
{
    QTest *qt = ide_start();
    uint8_t id[512];

    qtest_outb(qt, PRI + REG_DEVICE, 0);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_IDENTIFY);
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status before data", ST_DRDY | ST_DSC | ST_DRQ, st);
    pio_in(qt, PRI, id, sizeof(id), true);
    CHECK_EQ("status after data", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));

#define W(n) ((uint32_t)(id[2 * (n)] | id[2 * (n) + 1] << 8))
    CHECK_EQ("word 0 (general configuration)", 0x0040, W(0));
    CHECK_EQ("word 1 cylinders", 8, W(1));
    CHECK_EQ("word 3 heads", 16, W(3));
    CHECK_EQ("word 6 sectors", 63, W(6));
    CHECK_EQ("words 60-61 LBA28 capacity", IMG_SECTORS, W(60) | W(61) << 16);
    CHECK_EQ("word 83 bit 10 (48-bit address)", 1u << 10, W(83) & (1u << 10));
    CHECK_EQ("words 100-103 LBA48 capacity", IMG_SECTORS,
             W(100) | W(101) << 16 | (uint64_t)W(102) << 32 | (uint64_t)W(103) << 48);
    CHECK_EQ("word 49 LBA+DMA", 0x0300, W(49) & 0x0300);
    CHECK_EQ("word 63 multiword DMA 0-2", 0x07, W(63) & 0x07);
    CHECK_EQ("word 88 UDMA modes", 0x3f, W(88) & 0x3f);
    CHECK_EQ("word 255 signature", 0xa5, id[510]);
    uint8_t sum = 0;
    for (int i = 0; i < 512; i++)
        sum += id[i];
    CHECK_EQ("IDENTIFY checksum", 0, sum);
    char model[41];
    for (int i = 0; i < 40; i++)
        model[i] = (char)id[54 + (i ^ 1)];
    model[40] = 0;
    CHECK_MSG(!strncmp(model, "KESTREL HARDDISK", 16), "model string \"%s\"", model);
#undef W

    /* IDENTIFY PACKET DEVICE is aborted by a disk (SeaBIOS probes with it first). */
    qtest_outb(qt, PRI + REG_COMMAND, CMD_PIDENTIFY);
    CHECK_EQ("IDENTIFY PACKET on a disk", ST_DRDY | ST_DSC | ST_ERR,
             qtest_inb(qt, PRI + REG_STATUS));
    qtest_quit(qt);
}

static void test_identify_packet(void)
{
    QTest *qt = ide_start();
    uint8_t id[512];

    qtest_outb(qt, SEC + REG_DEVICE, 0);
    qtest_outb(qt, SEC + REG_COMMAND, CMD_IDENTIFY);
    uint8_t st = wait_not_busy(qt, SEC_CTL);
    CHECK_MSG(st & ST_ERR, "IDENTIFY DEVICE on ATAPI should abort, status 0x%02x", st);
    CHECK_EQ("signature after aborted IDENTIFY", 0xeb, qtest_inb(qt, SEC + REG_LBAH));

    qtest_outb(qt, SEC + REG_COMMAND, CMD_PIDENTIFY);
    st = wait_not_busy(qt, SEC_CTL);
    CHECK_MSG(st & ST_DRQ, "IDENTIFY PACKET: status 0x%02x", st);
    pio_in(qt, SEC, id, sizeof(id), true);
    CHECK_EQ("word 0: ATAPI CD-ROM removable", 0x85c0, id[0] | id[1] << 8);
    CHECK_MSG(!(qtest_inb(qt, SEC + REG_STATUS) & ST_DRQ), "DRQ after IDENTIFY PACKET data");
    qtest_quit(qt);
}

/* ---- PIO data ---- */

static void test_pio_read_sectors(void)
{
    QTest *qt = ide_start();
    uint8_t buf[512];

    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba28(qt, PRI, false, 100, 3, CMD_READ);
    for (int s = 0; s < 3; s++) {
        uint8_t st = wait_not_busy(qt, PRI_CTL);
        CHECK_MSG(st & ST_DRQ, "sector %d: no DRQ (status 0x%02x)", s, st);
        pio_in(qt, PRI, buf, 512, s == 1);
        check_img_data(buf, 100 + s, 1);
    }
    CHECK_EQ("status after the last sector", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));

    /* CHS: cylinder 1, head 2, sector 5 = (1*16 + 2)*63 + 4. */
    qtest_outb(qt, PRI + REG_DEVICE, 0x02);
    qtest_outb(qt, PRI + REG_NSECTOR, 1);
    qtest_outb(qt, PRI + REG_LBAL, 5);
    qtest_outb(qt, PRI + REG_LBAM, 1);
    qtest_outb(qt, PRI + REG_LBAH, 0);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_READ);
    wait_not_busy(qt, PRI_CTL);
    pio_in(qt, PRI, buf, 512, false);
    check_img_data(buf, (1 * 16 + 2) * 63 + 4, 1);
    qtest_quit(qt);
}

static void test_pio_read_ext_lba48(void)
{
    QTest *qt = ide_start();
    uint8_t buf[1024];

    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba48(qt, 0x1234, 2, CMD_READ_EXT);
    for (int s = 0; s < 2; s++) {
        uint8_t st = wait_not_busy(qt, PRI_CTL);
        CHECK_MSG(st & ST_DRQ, "sector %d: no DRQ (status 0x%02x)", s, st);
        pio_in(qt, PRI, buf + 512 * s, 512, false);
    }
    check_img_data(buf, 0x1234, 2);
    CHECK_EQ("status after READ EXT", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));

    /* HOB: the previous write is readable with HOB set. */
    qtest_outb(qt, PRI + REG_LBAM, 0x77);
    qtest_outb(qt, PRI + REG_LBAM, 0x11);
    qtest_outb(qt, PRI_CTL, CTL_NIEN | CTL_HOB);
    CHECK_EQ("LBA mid with HOB", 0x77, qtest_inb(qt, PRI + REG_LBAM));
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    CHECK_EQ("LBA mid without HOB", 0x11, qtest_inb(qt, PRI + REG_LBAM));

    /* A 48-bit address beyond the image: IDNF, no transfer. */
    ata_lba48(qt, 1ull << 32, 1, CMD_READ_EXT);
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status for LBA48 beyond the end", ST_DRDY | ST_DSC | ST_ERR, st);
    CHECK_EQ("error IDNF", ERR_IDNF, qtest_inb(qt, PRI + REG_ERROR) & ERR_IDNF);
    qtest_quit(qt);
}

static void test_pio_write_sectors(void)
{
    QTest *qt = ide_start();
    uint8_t buf[1024], back[1024];

    for (int i = 0; i < 1024; i++)
        buf[i] = (uint8_t)(0xc3 ^ i ^ (i >> 8));
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba28(qt, PRI, false, 50, 2, CMD_WRITE);
    for (int s = 0; s < 2; s++) {
        uint8_t st = wait_not_busy(qt, PRI_CTL);
        CHECK_MSG(st & ST_DRQ, "sector %d: no DRQ for data-out (status 0x%02x)", s, st);
        pio_out(qt, PRI, buf + 512 * s, 512);
    }
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status after WRITE SECTORS", ST_DRDY | ST_DSC, st);
    file_read(img_path, 50 * 512, back, sizeof(back));
    CHECK_MSG(!memcmp(buf, back, sizeof(buf)), "written sectors differ in the image file");
    /* Neighbours untouched. */
    file_read(img_path, 52 * 512, back, 512);
    check_img_data(back, 52, 1);

    /* Read back through the device too. */
    ata_lba28(qt, PRI, false, 50, 2, CMD_READ);
    for (int s = 0; s < 2; s++) {
        wait_not_busy(qt, PRI_CTL);
        pio_in(qt, PRI, back + 512 * s, 512, false);
    }
    CHECK_MSG(!memcmp(buf, back, sizeof(buf)), "sectors read back differ");

    /* FLUSH CACHE completes. */
    qtest_outb(qt, PRI + REG_COMMAND, CMD_FLUSH);
    CHECK_EQ("status after FLUSH CACHE", ST_DRDY | ST_DSC, wait_not_busy(qt, PRI_CTL));
    qtest_quit(qt);
}

static void test_write_read_only_disk_aborts(void)
{
    QTest *qt = ide_start_args(",readonly=on", "");
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba28(qt, PRI, false, 0, 1, CMD_WRITE);
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status of WRITE on a read-only disk", ST_DRDY | ST_DSC | ST_ERR, st);
    CHECK_EQ("error", ERR_ABRT, qtest_inb(qt, PRI + REG_ERROR));
    qtest_quit(qt);
}

static void test_read_multiple(void)
{
    QTest *qt = ide_start();
    uint8_t buf[10 * 512];

    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    qtest_outb(qt, PRI + REG_NSECTOR, 3);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_SETMULT);
    CHECK_EQ("SET MULTIPLE 3 aborts", ST_DRDY | ST_DSC | ST_ERR,
             qtest_inb(qt, PRI + REG_STATUS));
    qtest_outb(qt, PRI + REG_NSECTOR, 4);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_SETMULT);
    CHECK_EQ("SET MULTIPLE 4", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));

    ata_lba28(qt, PRI, false, 300, 10, CMD_READ_MULT);
    /* Blocks of 4, 4 and 2 sectors: DRQ stays up through each block. */
    unsigned blocks[] = { 4, 4, 2 }, done = 0;
    for (int b = 0; b < 3; b++) {
        uint8_t st = wait_not_busy(qt, PRI_CTL);
        CHECK_MSG(st & ST_DRQ, "block %d: no DRQ (status 0x%02x)", b, st);
        pio_in(qt, PRI, buf + done * 512, (blocks[b] - 1) * 512, false);
        CHECK_MSG(qtest_inb(qt, PRI_CTL) & ST_DRQ, "block %d ended early", b);
        pio_in(qt, PRI, buf + (done + blocks[b] - 1) * 512, 512, false);
        done += blocks[b];
    }
    CHECK_EQ("status after READ MULTIPLE", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    check_img_data(buf, 300, 10);
    qtest_quit(qt);
}

static void test_out_of_range_lba_fails(void)
{
    QTest *qt = ide_start();
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba28(qt, PRI, false, IMG_SECTORS - 2, 4, CMD_READ);
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status reading past the end", ST_DRDY | ST_DSC | ST_ERR, st);
    CHECK_EQ("error IDNF", ERR_IDNF, qtest_inb(qt, PRI + REG_ERROR) & ERR_IDNF);
    ata_lba28(qt, PRI, false, 0x0fffffff, 1, CMD_VERIFY);
    CHECK_EQ("READ VERIFY past the end", ST_ERR, wait_not_busy(qt, PRI_CTL) & ST_ERR);
    /* The last sector itself is fine. */
    ata_lba28(qt, PRI, false, IMG_SECTORS - 1, 1, CMD_READ);
    st = wait_not_busy(qt, PRI_CTL);
    CHECK_EQ("status reading the last sector", ST_DRDY | ST_DSC | ST_DRQ, st);
    /* CHS sector 0 does not exist. */
    uint8_t buf[512];
    pio_in(qt, PRI, buf, 512, false);
    check_img_data(buf, IMG_SECTORS - 1, 1);
    qtest_outb(qt, PRI + REG_DEVICE, 0);
    qtest_outb(qt, PRI + REG_LBAL, 0);
    qtest_outb(qt, PRI + REG_NSECTOR, 1);
    qtest_outb(qt, PRI + REG_COMMAND, CMD_READ);
    CHECK_EQ("CHS sector 0", ST_ERR, wait_not_busy(qt, PRI_CTL) & ST_ERR);
    qtest_quit(qt);
}

/* ---- IRQ ---- */

static void test_irq14_raised_and_cleared_by_status(void)
{
    QTest *qt = ide_start();
    uint8_t buf[512];

    qtest_irq_intercept(qt);
    qtest_outb(qt, PRI_CTL, 0);
    ata_lba28(qt, PRI, false, 7, 1, CMD_READ);
    wait_not_busy(qt, PRI_CTL);
    CHECK_MSG(qtest_get_irq(qt, PRI_IRQ), "IRQ 14 not raised for the DRQ block");
    CHECK_MSG(qtest_get_irq(qt, PRI_IRQ), "Alternate Status must not clear IRQ 14");
    qtest_inb(qt, PRI + REG_STATUS);
    CHECK_MSG(!qtest_get_irq(qt, PRI_IRQ), "reading Status should lower IRQ 14");
    pio_in(qt, PRI, buf, 512, false);
    check_img_data(buf, 7, 1);
    CHECK_MSG(!qtest_get_irq(qt, PRI_IRQ), "no interrupt after the last PIO-in block");

    /* Non-data command: interrupt at completion. */
    ata_lba28(qt, PRI, false, 7, 1, CMD_VERIFY);
    wait_not_busy(qt, PRI_CTL);
    CHECK_MSG(qtest_get_irq(qt, PRI_IRQ), "IRQ 14 not raised for READ VERIFY");
    qtest_inb(qt, PRI + REG_STATUS);
    CHECK_MSG(!qtest_get_irq(qt, PRI_IRQ), "IRQ 14 still high after Status");

    /* nIEN: the device does not drive the line. */
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    ata_lba28(qt, PRI, false, 7, 1, CMD_VERIFY);
    wait_not_busy(qt, PRI_CTL);
    CHECK_MSG(!qtest_get_irq(qt, PRI_IRQ), "IRQ 14 raised despite nIEN");
    CHECK_MSG(!qtest_get_irq(qt, SEC_IRQ), "IRQ 15 raised by a primary command");
    qtest_quit(qt);
}

/* ---- Bus-master DMA ---- */

static void prd_put(QTest *qt, uint64_t at, uint32_t addr, uint32_t count, bool eot)
{
    qtest_writel(qt, at, addr);
    qtest_writel(qt, at + 4, (count & 0xffff) | (eot ? 0x80000000u : 0));
}

static void bm_start(QTest *qt, int ch, uint32_t prd, bool to_memory)
{
    uint16_t bm = BM_BASE + 8 * ch;
    qtest_outb(qt, bm + BM_STATUS, BM_ST_INT | BM_ST_ERROR);
    qtest_outl(qt, bm + BM_PRD, prd);
    qtest_outb(qt, bm + BM_CMD, to_memory ? BM_CMD_READ : 0);
}

static void bm_go(QTest *qt, int ch, bool to_memory)
{
    qtest_outb(qt, BM_BASE + 8 * ch + BM_CMD, (to_memory ? BM_CMD_READ : 0) | BM_CMD_START);
}

static void test_dma_read_to_guest_ram(void)
{
    QTest *qt = ide_start();
    uint8_t buf[4 * 512];

    bm_setup(qt, true);
    qtest_irq_intercept(qt);
    qtest_outb(qt, PRI_CTL, 0);
    /* 4 sectors split over two regions: 1 KiB at BUF_ADDR, 1 KiB at BUF2_ADDR. */
    prd_put(qt, PRD_ADDR, BUF_ADDR, 1024, false);
    prd_put(qt, PRD_ADDR + 8, BUF2_ADDR, 1024, true);
    bm_start(qt, 0, PRD_ADDR, true);
    ata_lba28(qt, PRI, false, 200, 4, CMD_READ_DMA);
    bm_go(qt, 0, true);
    uint8_t bst = wait_bm(qt, 0);
    CHECK_EQ("BM status after DMA read (interrupt, not active, no error)", BM_ST_INT, bst & 7);
    CHECK_MSG(qtest_get_irq(qt, PRI_IRQ), "IRQ 14 not raised at DMA completion");
    qtest_outb(qt, BM_BASE + BM_CMD, BM_CMD_READ);
    CHECK_EQ("device status after DMA", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    qtest_outb(qt, BM_BASE + BM_STATUS, BM_ST_INT);
    CHECK_EQ("BM interrupt bit cleared by writing 1", 0, qtest_inb(qt, BM_BASE + BM_STATUS) & 7);
    qtest_memread(qt, BUF_ADDR, buf, 1024);
    qtest_memread(qt, BUF2_ADDR, buf + 1024, 1024);
    check_img_data(buf, 200, 4);

    /* LBA48 READ DMA EXT, one 64 KiB region (count 0 = 64 KiB) for 128 sectors. */
    uint8_t *big = malloc(65536);
    prd_put(qt, PRD_ADDR, BUF_ADDR, 0, true);
    bm_start(qt, 0, PRD_ADDR, true);
    ata_lba48(qt, 1000, 128, 0x25);
    bm_go(qt, 0, true);
    bst = wait_bm(qt, 0);
    CHECK_EQ("BM status after READ DMA EXT", BM_ST_INT, bst & 7);
    qtest_outb(qt, BM_BASE + BM_CMD, 0);
    CHECK_EQ("device status", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    qtest_memread(qt, BUF_ADDR, big, 65536);
    check_img_data(big, 1000, 128);
    free(big);
    qtest_quit(qt);
}

static void test_dma_write_from_guest_ram(void)
{
    QTest *qt = ide_start();
    uint8_t buf[3 * 512], back[3 * 512];

    bm_setup(qt, true);
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 13 + 0x5a);
    qtest_memwrite(qt, BUF_ADDR, buf, sizeof(buf));
    prd_put(qt, PRD_ADDR, BUF_ADDR, 512, false);
    prd_put(qt, PRD_ADDR + 8, BUF_ADDR + 512, 1024, true);
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    bm_start(qt, 0, PRD_ADDR, false);
    ata_lba28(qt, PRI, false, 600, 3, CMD_WRITE_DMA);
    bm_go(qt, 0, false);
    /* nIEN: no INTRQ, so poll the device instead of the BM interrupt bit. */
    double end = now_s() + test_timeout(10);
    while (qtest_inb(qt, PRI_CTL) & (ST_BSY | ST_DRQ)) {
        CHECK_MSG(now_s() < end, "WRITE DMA never completed");
        usleep(100);
    }
    CHECK_EQ("device status after WRITE DMA", ST_DRDY | ST_DSC, qtest_inb(qt, PRI + REG_STATUS));
    CHECK_EQ("BM status (not active, no error)", 0,
             qtest_inb(qt, BM_BASE + BM_STATUS) & (BM_ST_ACTIVE | BM_ST_ERROR));
    qtest_outb(qt, BM_BASE + BM_CMD, 0);
    file_read(img_path, 600 * 512, back, sizeof(back));
    CHECK_MSG(!memcmp(buf, back, sizeof(buf)), "DMA-written sectors differ in the image file");
    qtest_quit(qt);
}

/* Start a 2-sector READ DMA and return (BM status, device status). */
static void dma_read_expect_error(QTest *qt, uint32_t prd, const char *what)
{
    bm_start(qt, 0, prd, true);
    ata_lba28(qt, PRI, false, 10, 2, CMD_READ_DMA);
    bm_go(qt, 0, true);
    double end = now_s() + test_timeout(10);
    uint8_t bst;
    while (!((bst = qtest_inb(qt, BM_BASE + BM_STATUS)) & (BM_ST_ERROR | BM_ST_INT))) {
        CHECK_MSG(now_s() < end, "%s: BM status stays 0x%02x, device status 0x%02x", what, bst,
                  qtest_inb(qt, PRI_CTL));
        usleep(100);
    }
    CHECK_MSG(bst & BM_ST_ERROR, "%s: BM status 0x%02x without Error", what, bst);
    CHECK_MSG(!(bst & BM_ST_ACTIVE), "%s: BM still active (0x%02x)", what, bst);
    uint8_t st = wait_not_busy(qt, PRI_CTL);
    CHECK_MSG((st & ST_ERR) && !(st & ST_DRQ), "%s: device status 0x%02x", what, st);
    qtest_outb(qt, BM_BASE + BM_CMD, 0);
    qtest_inb(qt, PRI + REG_STATUS);
}

static void test_dma_bad_prd_tables_fail_cleanly(void)
{
    QTest *qt = ide_start();
    bm_setup(qt, true);
    qtest_outb(qt, PRI_CTL, CTL_NIEN);

    /* PRD table pointer in the PCI hole, not RAM. */
    dma_read_expect_error(qt, 0xf0000000u, "PRD table outside RAM");
    /* PRD entry whose buffer is outside RAM. */
    prd_put(qt, PRD_ADDR, 0xe0000000u, 1024, true);
    dma_read_expect_error(qt, PRD_ADDR, "PRD buffer outside RAM");
    /* Table ends (EOT) before the 2 sectors do. */
    prd_put(qt, PRD_ADDR, BUF_ADDR, 512, true);
    dma_read_expect_error(qt, PRD_ADDR, "PRD table too short");
    /* No EOT, and the next entry would be past the end of RAM (64 MiB). */
    prd_put(qt, 0x4000000 - 8, BUF_ADDR, 512, false);
    dma_read_expect_error(qt, 0x4000000 - 8, "PRD table running off the end of RAM");

    /* The channel still works afterwards (interrupts on: BM Interrupt follows INTRQ). */
    uint8_t buf[1024];
    qtest_outb(qt, PRI_CTL, 0);
    prd_put(qt, PRD_ADDR, BUF_ADDR, 1024, true);
    bm_start(qt, 0, PRD_ADDR, true);
    ata_lba28(qt, PRI, false, 10, 2, CMD_READ_DMA);
    bm_go(qt, 0, true);
    CHECK_EQ("BM status of a good transfer", BM_ST_INT, wait_bm(qt, 0) & 7);
    qtest_memread(qt, BUF_ADDR, buf, sizeof(buf));
    check_img_data(buf, 10, 2);
    qtest_quit(qt);
}

static void test_dma_without_bus_master_fails(void)
{
    QTest *qt = ide_start();
    bm_setup(qt, false);
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    qtest_writel(qt, BUF_ADDR, 0x12345678);
    prd_put(qt, PRD_ADDR, BUF_ADDR, 1024, true);
    dma_read_expect_error(qt, PRD_ADDR, "DMA with COMMAND.MASTER clear");
    CHECK_EQ("guest RAM untouched", 0x12345678, qtest_readl(qt, BUF_ADDR));
    qtest_quit(qt);
}

/* ---- ATAPI ---- */

static void test_atapi_inquiry(void)
{
    QTest *qt = ide_start();
    uint8_t cdb[12] = { 0x12, 0, 0, 0, 36 };
    uint8_t buf[64];

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    atapi_packet(qt, false, cdb, 0x100, false);
    CHECK_EQ("INQUIRY length", 36, atapi_pio_in(qt, buf, sizeof(buf)));
    CHECK_EQ("INQUIRY status", ST_DRDY | ST_DSC, atapi_status(qt));
    CHECK_EQ("peripheral device type (CD/DVD)", 0x05, buf[0]);
    CHECK_EQ("removable", 0x80, buf[1]);
    CHECK_MSG(!memcmp(buf + 8, "KESTREL ", 8), "vendor \"%.8s\"", (char *)buf + 8);

    /* The byte count limit cuts the data into DRQ blocks. */
    atapi_packet(qt, false, cdb, 16, false);
    size_t got = 0;
    int blocks = 0;
    for (;;) {
        uint8_t st = wait_not_busy(qt, SEC_CTL);
        if (!(st & ST_DRQ))
            break;
        size_t n = qtest_inb(qt, SEC + REG_LBAM) | qtest_inb(qt, SEC + REG_LBAH) << 8;
        CHECK_MSG(n <= 16, "DRQ block of %zu bytes with a 16-byte limit", n);
        pio_in(qt, SEC, buf + got, n, true);
        got += n;
        blocks++;
    }
    CHECK_EQ("bytes in 16-byte blocks", 36, got);
    CHECK_EQ("number of DRQ blocks", 3, blocks);
    atapi_status(qt);
    qtest_quit(qt);
}

static void test_atapi_read_capacity_and_toc(void)
{
    QTest *qt = ide_start();
    uint8_t cap[12] = { 0x25 };
    uint8_t buf[64];

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    atapi_packet(qt, false, cap, 8, false);
    CHECK_EQ("READ CAPACITY length", 8, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    CHECK_EQ("last LBA", ISO_SECTORS - 1,
             (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]);
    CHECK_EQ("block length", 2048, (uint32_t)buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7]);

    uint8_t toc[12] = { 0x43, 0, 0, 0, 0, 0, 0, 0, 64 };
    atapi_packet(qt, false, toc, 64, false);
    CHECK_EQ("READ TOC length", 20, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    CHECK_EQ("TOC data length", 18, buf[0] << 8 | buf[1]);
    CHECK_EQ("first track", 1, buf[2]);
    CHECK_EQ("last track", 1, buf[3]);
    CHECK_EQ("track 1 number", 1, buf[6]);
    CHECK_EQ("track 1 ADR/control", 0x14, buf[5]);
    CHECK_EQ("track 1 start", 0, (uint32_t)buf[8] << 24 | buf[9] << 16 | buf[10] << 8 | buf[11]);
    CHECK_EQ("lead-out number", 0xaa, buf[14]);
    CHECK_EQ("lead-out start", ISO_SECTORS,
             (uint32_t)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19]);

    /* MSF: lead-out at LBA 100 = 250 frames = 00:03:25. */
    toc[1] = 0x02;
    atapi_packet(qt, false, toc, 64, false);
    CHECK_EQ("READ TOC (MSF) length", 20, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    CHECK_EQ("lead-out MSF", 0x000319, (uint32_t)buf[17] << 16 | buf[18] << 8 | buf[19]);

    /* Format 1 (sessions) and 2 (raw). */
    toc[1] = 0;
    toc[2] = 1;
    atapi_packet(qt, false, toc, 64, false);
    CHECK_EQ("session info length", 12, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    toc[2] = 2;
    atapi_packet(qt, false, toc, 64, false);
    CHECK_EQ("raw TOC length", 4 + 4 * 11, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    CHECK_EQ("raw TOC point A0", 0xa0, buf[4 + 3]);
    qtest_quit(qt);
}

static void test_atapi_read10_pio(void)
{
    QTest *qt = ide_start();
    size_t len = 70 * 2048;
    uint8_t *buf = malloc(len);

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    /* 3 sectors with a 2048-byte limit: one DRQ block per sector. */
    uint8_t cdb[12] = { 0x28, 0, 0, 0, 0, 10, 0, 0, 3 };
    atapi_packet(qt, false, cdb, 2048, false);
    CHECK_EQ("READ(10) bytes", 3 * 2048, atapi_pio_in(qt, buf, len));
    CHECK_EQ("READ(10) status", ST_DRDY | ST_DSC, atapi_status(qt));
    check_iso_data(buf, 10, 3);

    /* 70 sectors through several internal chunks, 0xFFFE-byte blocks. */
    uint8_t cdb2[12] = { 0x28, 0, 0, 0, 0, 5, 0, 0, 70 };
    atapi_packet(qt, false, cdb2, 0xfffe, false);
    CHECK_EQ("READ(10) 70 sectors", len, atapi_pio_in(qt, buf, len));
    atapi_status(qt);
    check_iso_data(buf, 5, 70);
    free(buf);
    qtest_quit(qt);
}

static void test_atapi_read_dma(void)
{
    QTest *qt = ide_start();
    uint8_t buf[4 * 2048];

    bm_setup(qt, true);
    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    prd_put(qt, PRD_ADDR, BUF_ADDR, sizeof(buf), true);
    bm_start(qt, 1, PRD_ADDR, true);
    uint8_t cdb[12] = { 0x28, 0, 0, 0, 0, 20, 0, 0, 4 };
    atapi_packet(qt, false, cdb, 0, true);
    bm_go(qt, 1, true);
    double end = now_s() + test_timeout(10);
    while (qtest_inb(qt, SEC_CTL) & (ST_BSY | ST_DRQ)) {
        CHECK_MSG(now_s() < end, "ATAPI DMA read never completed");
        usleep(100);
    }
    CHECK_EQ("ATAPI DMA status", ST_DRDY | ST_DSC, atapi_status(qt));
    CHECK_EQ("BM status (not active, no error)", 0,
             qtest_inb(qt, BM_BASE + 8 + BM_STATUS) & (BM_ST_ACTIVE | BM_ST_ERROR));
    qtest_outb(qt, BM_BASE + 8 + BM_CMD, 0);
    qtest_memread(qt, BUF_ADDR, buf, sizeof(buf));
    check_iso_data(buf, 20, 4);

    /* READ CD, user data only, by DMA as well. */
    uint8_t cd[12] = { 0xbe, 0, 0, 0, 0, 30, 0, 0, 2, 0x10 };
    bm_start(qt, 1, PRD_ADDR, true);
    atapi_packet(qt, false, cd, 0, true);
    bm_go(qt, 1, true);
    end = now_s() + test_timeout(10);
    while (qtest_inb(qt, SEC_CTL) & (ST_BSY | ST_DRQ)) {
        CHECK_MSG(now_s() < end, "READ CD never completed");
        usleep(100);
    }
    CHECK_EQ("READ CD status", ST_DRDY | ST_DSC, atapi_status(qt));
    qtest_outb(qt, BM_BASE + 8 + BM_CMD, 0);
    qtest_memread(qt, BUF_ADDR, buf, 2 * 2048);
    check_iso_data(buf, 30, 2);
    qtest_quit(qt);
}

static void test_atapi_request_sense_after_error(void)
{
    QTest *qt = ide_start();
    uint8_t key, asc, ascq;

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    uint8_t cdb[12] = { 0x28, 0, 0, 0, 0, ISO_SECTORS - 1, 0, 0, 2 };
    atapi_packet(qt, false, cdb, 2048, false);
    uint8_t st = atapi_status(qt);
    CHECK_EQ("READ past the end: CHECK CONDITION", ST_ERR, st & (ST_ERR | ST_DRQ));
    CHECK_EQ("error register sense key (ILLEGAL REQUEST)", 0x5,
             qtest_inb(qt, SEC + REG_ERROR) >> 4);
    atapi_request_sense(qt, false, &key, &asc, &ascq);
    CHECK_EQ("sense key", 0x05, key);
    CHECK_EQ("ASC (LBA out of range)", 0x21, asc);
    atapi_request_sense(qt, false, &key, &asc, &ascq);
    CHECK_EQ("sense key after it was reported", 0x00, key);

    uint8_t bad[12] = { 0xff };
    atapi_packet(qt, false, bad, 0, false);
    CHECK_EQ("unknown opcode", ST_ERR, atapi_status(qt) & ST_ERR);
    atapi_request_sense(qt, false, &key, &asc, &ascq);
    CHECK_EQ("ASC (invalid command operation code)", 0x20, asc);
    qtest_quit(qt);
}

static void test_atapi_empty_tray_not_ready(void)
{
    QTest *qt = ide_start();
    uint8_t tur[12] = { 0x00 };
    uint8_t key, asc, ascq;

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    uint8_t st = atapi_cmd_nodata(qt, true, tur);
    CHECK_EQ("TEST UNIT READY on an empty tray", ST_ERR, st & ST_ERR);
    CHECK_EQ("sense key in error (NOT READY)", 0x2, qtest_inb(qt, SEC + REG_ERROR) >> 4);
    atapi_request_sense(qt, true, &key, &asc, &ascq);
    CHECK_EQ("sense key", 0x02, key);
    CHECK_EQ("ASC (medium not present)", 0x3a, asc);

    /* The loaded drive is ready. */
    st = atapi_cmd_nodata(qt, false, tur);
    CHECK_EQ("TEST UNIT READY with a medium", ST_DRDY | ST_DSC, st);
    qtest_quit(qt);
}

static void test_atapi_eject_and_unit_attention(void)
{
    QTest *qt = ide_start();
    uint8_t tur[12] = { 0x00 };
    uint8_t eject[12] = { 0x1b, 0, 0, 0, 0x02 };
    uint8_t load[12] = { 0x1b, 0, 0, 0, 0x03 };
    uint8_t prevent[12] = { 0x1e, 0, 0, 0, 0x01 };
    uint8_t allow[12] = { 0x1e };
    uint8_t key, asc, ascq;

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    CHECK_EQ("PREVENT", 0, atapi_cmd_nodata(qt, false, prevent) & ST_ERR);
    CHECK_EQ("eject while locked fails", ST_ERR, atapi_cmd_nodata(qt, false, eject) & ST_ERR);
    atapi_request_sense(qt, false, &key, &asc, &ascq);
    CHECK_EQ("ASC (medium removal prevented)", 0x53, asc);
    CHECK_EQ("ALLOW", 0, atapi_cmd_nodata(qt, false, allow) & ST_ERR);
    CHECK_EQ("eject", 0, atapi_cmd_nodata(qt, false, eject) & ST_ERR);
    CHECK_EQ("TUR with the tray open", ST_ERR, atapi_cmd_nodata(qt, false, tur) & ST_ERR);
    atapi_request_sense(qt, false, &key, &asc, &ascq);
    CHECK_EQ("ASC (medium not present)", 0x3a, asc);
    CHECK_EQ("ASCQ (tray open)", 0x02, ascq);
    CHECK_EQ("load", 0, atapi_cmd_nodata(qt, false, load) & ST_ERR);
    CHECK_EQ("first TUR after load", ST_ERR, atapi_cmd_nodata(qt, false, tur) & ST_ERR);
    CHECK_EQ("sense key in error (UNIT ATTENTION)", 0x6, qtest_inb(qt, SEC + REG_ERROR) >> 4);
    CHECK_EQ("second TUR after load", 0, atapi_cmd_nodata(qt, false, tur) & ST_ERR);
    qtest_quit(qt);
}

static void test_atapi_mode_sense_and_config(void)
{
    QTest *qt = ide_start();
    uint8_t buf[256];

    qtest_outb(qt, SEC_CTL, CTL_NIEN);
    uint8_t ms[12] = { 0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 128 };
    atapi_packet(qt, false, ms, 128, false);
    size_t n = atapi_pio_in(qt, buf, sizeof(buf));
    atapi_status(qt);
    CHECK_EQ("MODE SENSE 2Ah length", 28, n);
    CHECK_EQ("mode data length", 26, buf[0] << 8 | buf[1]);
    CHECK_EQ("page code", 0x2a, buf[8] & 0x3f);

    uint8_t gc[12] = { 0x46, 0, 0, 0, 0, 0, 0, 0, 255 };
    atapi_packet(qt, false, gc, 255, false);
    n = atapi_pio_in(qt, buf, sizeof(buf));
    atapi_status(qt);
    CHECK_MSG(n >= 16, "GET CONFIGURATION returned %zu bytes", n);
    CHECK_EQ("current profile (CD-ROM)", 0x0008, buf[6] << 8 | buf[7]);
    CHECK_EQ("first feature: profile list", 0, buf[8] << 8 | buf[9]);
    CHECK_EQ("profile CD-ROM", 0x0008, buf[12] << 8 | buf[13]);

    uint8_t gesn[12] = { 0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8 };
    atapi_packet(qt, false, gesn, 8, false);
    CHECK_EQ("GESN length", 8, atapi_pio_in(qt, buf, sizeof(buf)));
    atapi_status(qt);
    CHECK_EQ("GESN class (media)", 4, buf[2] & 7);
    CHECK_EQ("GESN media present", 0x02, buf[5]);
    qtest_quit(qt);
}

/* ---- Robustness ---- */

static uint32_t rnd_seed = 12345;

static uint32_t RND(void)
{
    rnd_seed = rnd_seed * 1103515245u + 12345u;
    return rnd_seed >> 8;
}

/*
 * Random register traffic with a fixed seed: commands (valid and not),
 * task-file values, SRST, bus-master starts with garbage PRD tables and
 * data-port accesses on both channels.  Kestrel must survive, and the disk
 * must still read correctly after a reset of the channel.
 */
static void test_random_register_traffic_survives(void)
{
    static const uint8_t cmds[] = {
        CMD_READ, CMD_READ_EXT, CMD_WRITE, CMD_VERIFY, CMD_PACKET, CMD_PIDENTIFY,
        CMD_DEVICE_RESET, CMD_READ_MULT, CMD_SETMULT, CMD_READ_DMA, CMD_WRITE_DMA,
        CMD_FLUSH, CMD_IDENTIFY, 0x25, 0x35, 0x29, 0x39, 0xc5, 0xef, 0xf8, 0x27, 0x90,
        0x91, 0xe5, 0x00, 0xff,
    };
    QTest *qt = ide_start_args(",snapshot=on", "");

    bm_setup(qt, true);
    for (int i = 0; i < 64; i++)
        qtest_writel(qt, PRD_ADDR + 4 * i, (RND() & 1) ? RND() : (RND() & 0x3fffffe));
    for (int i = 0; i < 3000; i++) {
        uint16_t base = (RND() & 1) ? PRI : SEC;
        uint16_t ctl = base == PRI ? PRI_CTL : SEC_CTL;
        int ch = base == PRI ? 0 : 1;
        switch (RND() % 8) {
        case 0:
            qtest_outb(qt, base + REG_COMMAND, cmds[RND() % sizeof(cmds)]);
            break;
        case 1: {
            uint16_t port = base + 1 + RND() % 6;
            qtest_outb(qt, port, (uint8_t)RND());
            break;
        }
        case 2:
            qtest_outb(qt, ctl, (uint8_t)(RND() & 0x86));
            break;
        case 3: {
            uint32_t prd = (RND() & 1) ? PRD_ADDR + (RND() & 0xf8) : RND() << 8;
            qtest_outl(qt, BM_BASE + 8 * ch + BM_PRD, prd);
            qtest_outb(qt, BM_BASE + 8 * ch + BM_CMD, (uint8_t)(RND() & 0x09));
            break;
        }
        case 4:
            qtest_inw(qt, base);
            break;
        case 5:
            qtest_outw(qt, base, (uint16_t)RND());
            break;
        case 6:
            qtest_inb(qt, base + RND() % 8);
            qtest_inb(qt, BM_BASE + RND() % 16);
            break;
        default:
            qtest_outb(qt, BM_BASE + 8 * ch + BM_STATUS, (uint8_t)RND());
            break;
        }
    }
    /* Let in-flight requests finish, then reset the primary channel and read. */
    usleep(200000);
    qtest_outb(qt, BM_BASE + BM_CMD, 0);
    qtest_outb(qt, PRI_CTL, CTL_SRST | CTL_NIEN);
    qtest_outb(qt, PRI_CTL, CTL_NIEN);
    CHECK_EQ("status after SRST", ST_DRDY | ST_DSC, wait_not_busy(qt, PRI_CTL));
    uint8_t buf[512];
    ata_lba28(qt, PRI, false, 4000, 1, CMD_READ);
    CHECK_MSG(wait_not_busy(qt, PRI_CTL) & ST_DRQ, "no DRQ after the random traffic");
    pio_in(qt, PRI, buf, sizeof(buf), false);
    qtest_quit(qt);
}

/* ---- CMOS ---- */

static void test_cmos_disk_bytes(void)
{
    QTest *qt = ide_start();
#define CMOS(i) (qtest_outb(qt, 0x70, (i)), qtest_inb(qt, 0x71))
    CHECK_EQ("CMOS 0x12 disk types", 0xf0, CMOS(0x12));
    CHECK_EQ("CMOS 0x19 disk 0 type", 47, CMOS(0x19));
    CHECK_EQ("CMOS 0x1B cylinders low", 8, CMOS(0x1b));
    CHECK_EQ("CMOS 0x1C cylinders high", 0, CMOS(0x1c));
    CHECK_EQ("CMOS 0x1D heads", 16, CMOS(0x1d));
    CHECK_EQ("CMOS 0x23 sectors", 63, CMOS(0x23));
    CHECK_EQ("CMOS 0x39 translation (disk 0 LBA)", 0x01, CMOS(0x39));
#undef CMOS
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_pci_ids_and_decode_enable),
    TEST_CASE(test_register_echo),
    TEST_CASE(test_srst_signatures),
    TEST_CASE(test_identify_device),
    TEST_CASE(test_identify_packet),
    TEST_CASE(test_pio_read_sectors),
    TEST_CASE(test_pio_read_ext_lba48),
    TEST_CASE(test_pio_write_sectors),
    TEST_CASE(test_write_read_only_disk_aborts),
    TEST_CASE(test_read_multiple),
    TEST_CASE(test_out_of_range_lba_fails),
    TEST_CASE(test_irq14_raised_and_cleared_by_status),
    TEST_CASE(test_dma_read_to_guest_ram),
    TEST_CASE(test_dma_write_from_guest_ram),
    TEST_CASE(test_dma_bad_prd_tables_fail_cleanly),
    TEST_CASE(test_dma_without_bus_master_fails),
    TEST_CASE(test_atapi_inquiry),
    TEST_CASE(test_atapi_read_capacity_and_toc),
    TEST_CASE(test_atapi_read10_pio),
    TEST_CASE(test_atapi_read_dma),
    TEST_CASE(test_atapi_request_sense_after_error),
    TEST_CASE(test_atapi_empty_tray_not_ready),
    TEST_CASE(test_atapi_eject_and_unit_attention),
    TEST_CASE(test_atapi_mode_sense_and_config),
    TEST_CASE(test_random_register_traffic_survives),
    TEST_CASE(test_cmos_disk_bytes),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("ide", cases, argc, argv);
}

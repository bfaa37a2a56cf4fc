/*
 * 82078-compatible floppy controller ("isa-fdc", base 0x3F0, IRQ 6, DMA 2)
 * with a 1.44 MB raw image given as -drive if=floppy: VERSION/PART ID/
 * LOCK/DUMPREG, SPECIFY, RECALIBRATE/SEEK and SENSE INTERRUPT STATUS, the
 * four post-reset statuses, READ DATA and WRITE DATA through ISA DMA
 * channel 2 (single and multi-track), non-DMA (PIO) reads, READ ID,
 * FORMAT TRACK, write protection, the disk-change line, CMOS 0x10/0x14,
 * invalid commands, and out-of-range sector addresses.
 *
 * Every sector of the test image starts with its LBA (32-bit little endian)
 * followed by the byte pattern (lba * 7 + i) & 0xff.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FDC_BASE    0x3f0
#define FDC_DOR     (FDC_BASE + 2)
#define FDC_MSR     (FDC_BASE + 4)
#define FDC_DSR     (FDC_BASE + 4)
#define FDC_FIFO    (FDC_BASE + 5)
#define FDC_DIR     (FDC_BASE + 7)
#define FDC_IRQ     6

#define MSR_RQM     0x80
#define MSR_DIO     0x40
#define MSR_NDMA    0x20
#define MSR_CB      0x10
#define DOR_NRESET  0x04
#define DOR_DMA     0x08
#define DOR_MOTA    0x10
#define DIR_DSKCHG  0x80

#define CMD_SPECIFY     0x03
#define CMD_SENSE_DRIVE 0x04
#define CMD_WRITE       0xc5        /* MT | MFM | WRITE DATA */
#define CMD_READ        0xe6        /* MT | MFM | SK | READ DATA */
#define CMD_READ_NOMT   0x66
#define CMD_RECAL       0x07
#define CMD_SENSEI      0x08
#define CMD_READ_ID     0x4a
#define CMD_FORMAT      0x4d
#define CMD_DUMPREG     0x0e
#define CMD_SEEK        0x0f
#define CMD_VERSION     0x10
#define CMD_PERP        0x12
#define CMD_CONFIGURE   0x13
#define CMD_UNLOCK      0x14
#define CMD_LOCK        0x94
#define CMD_PART_ID     0x18

#define ST0_ABNORMAL    0x40
#define ST0_INVALID     0x80
#define ST0_SE          0x20
#define ST1_EN          0x80
#define ST1_ND          0x04
#define ST1_NW          0x02
#define ST2_BC          0x02
#define ST3_WP          0x40
#define ST3_T0          0x10

/* 8237 controller 1 registers used to program channel 2 */
#define DMA_CH2_ADDR    0x04
#define DMA_CH2_COUNT   0x05
#define DMA1_MASK       0x0a
#define DMA1_MODE       0x0b
#define DMA1_CLEAR_FF   0x0c
#define DMA_PAGE_CH2    0x81
#define DMA_MODE_WRITE  0x46        /* single, increment, no auto-init, write (to memory), ch2 */
#define DMA_MODE_READ   0x4a        /* ... read (from memory), ch2 */

#define SECTOR          512
#define SPT             18
#define HEADS           2
#define TRACKS          80
#define IMG_SIZE        (TRACKS * HEADS * SPT * SECTOR)

#define BUF_ADDR        0x20000

static char img_dir[256];
static char img_path[300];

static void sector_pattern(uint32_t lba, uint8_t *buf)
{
    for (int i = 0; i < SECTOR; i++)
        buf[i] = (uint8_t)(lba * 7 + i);
    buf[0] = (uint8_t)lba;
    buf[1] = (uint8_t)(lba >> 8);
    buf[2] = (uint8_t)(lba >> 16);
    buf[3] = (uint8_t)(lba >> 24);
}

static void make_image_size(size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(img_dir, sizeof(img_dir), "%s/kestrel-fdc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(img_dir))
        test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", img_dir, strerror(errno));
    snprintf(img_path, sizeof(img_path), "%s/floppy.img", img_dir);
    FILE *f = fopen(img_path, "wb");
    if (!f)
        test_fail(__FILE__, __LINE__, "create %s: %s", img_path, strerror(errno));
    uint8_t buf[SECTOR];
    for (size_t lba = 0; lba * SECTOR < size; lba++) {
        sector_pattern((uint32_t)lba, buf);
        size_t n = size - lba * SECTOR < SECTOR ? size - lba * SECTOR : SECTOR;
        if (fwrite(buf, 1, n, f) != n)
            test_fail(__FILE__, __LINE__, "write %s: %s", img_path, strerror(errno));
    }
    fclose(f);
}

static void remove_image(void)
{
    unlink(img_path);
    rmdir(img_dir);
}

static QTest *start_with_image(bool readonly)
{
    char args[512];
    make_image_size(IMG_SIZE);
    snprintf(args, sizeof(args), "-drive file=%s,if=floppy,format=raw%s", img_path,
             readonly ? ",readonly=on" : "");
    QTest *qt = qtest_start(args);
    return qt;
}

static void finish(QTest *qt)
{
    qtest_quit(qt);
    remove_image();
}

static uint32_t chs_lba(unsigned c, unsigned h, unsigned s)
{
    return (c * HEADS + h) * SPT + s - 1;
}

/* Command phase: each byte waits for RQM with DIO clear. */
static void fdc_send(QTest *qt, const uint8_t *bytes, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t msr = qtest_inb(qt, FDC_MSR);
        CHECK_MSG((msr & (MSR_RQM | MSR_DIO)) == MSR_RQM,
                  "MSR 0x%02x before command byte %d (0x%02x): want RQM set, DIO clear",
                  msr, i, bytes[i]);
        qtest_outb(qt, FDC_FIFO, bytes[i]);
    }
}

/* Result phase: read bytes while MSR says RQM|DIO; returns the count. */
static int fdc_results(QTest *qt, uint8_t *out, int max)
{
    int n = 0;
    while (n < max) {
        uint8_t msr = qtest_inb(qt, FDC_MSR);
        if ((msr & (MSR_RQM | MSR_DIO)) != (MSR_RQM | MSR_DIO))
            break;
        out[n++] = qtest_inb(qt, FDC_FIFO);
    }
    return n;
}

static void fdc_expect_idle(QTest *qt, const char *after)
{
    uint8_t msr = qtest_inb(qt, FDC_MSR);
    CHECK_MSG(msr == MSR_RQM, "MSR after %s: expected 0x80 (RQM, idle), got 0x%02x", after, msr);
}

static void dma_ch2_setup(QTest *qt, uint32_t addr, uint32_t len, uint8_t mode)
{
    uint16_t count = (uint16_t)(len - 1);
    qtest_outb(qt, DMA1_MASK, 0x06);                /* mask channel 2 */
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    qtest_outb(qt, DMA_CH2_ADDR, addr & 0xff);
    qtest_outb(qt, DMA_CH2_ADDR, (addr >> 8) & 0xff);
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    qtest_outb(qt, DMA_CH2_COUNT, count & 0xff);
    qtest_outb(qt, DMA_CH2_COUNT, count >> 8);
    qtest_outb(qt, DMA1_MODE, mode);
    qtest_outb(qt, DMA_PAGE_CH2, (addr >> 16) & 0xff);
    qtest_outb(qt, DMA1_MASK, 0x02);                /* unmask channel 2 */
}

static void sense_interrupt(QTest *qt, uint8_t *st0, uint8_t *pcn)
{
    uint8_t cmd = CMD_SENSEI, r[2] = { 0, 0 };
    fdc_send(qt, &cmd, 1);
    int n = fdc_results(qt, r, 2);
    CHECK_EQ("SENSE INTERRUPT result bytes", 2, n);
    *st0 = r[0];
    *pcn = r[1];
}

static void seek(QTest *qt, uint8_t cyl)
{
    uint8_t cmd[3] = { CMD_SEEK, 0, cyl }, st0, pcn;
    fdc_send(qt, cmd, 3);
    sense_interrupt(qt, &st0, &pcn);
    CHECK_EQ("ST0 after SEEK (SE, drive 0)", ST0_SE, st0);
    CHECK_EQ("PCN after SEEK", cyl, pcn);
}

/* READ/WRITE DATA: 9 command bytes, 7 result bytes. */
static void rw_cmd(QTest *qt, uint8_t op, uint8_t c, uint8_t h, uint8_t r, uint8_t n,
                   uint8_t eot, uint8_t *res)
{
    uint8_t cmd[9] = { op, (uint8_t)(h << 2), c, h, r, n, eot, 0x1b, 0xff };
    fdc_send(qt, cmd, 9);
    int got = fdc_results(qt, res, 7);
    CHECK_EQ("READ/WRITE DATA result bytes", 7, got);
}

static void check_sectors(QTest *qt, uint32_t addr, uint32_t lba, int count)
{
    uint8_t want[SECTOR], got[SECTOR];
    for (int i = 0; i < count; i++) {
        sector_pattern(lba + i, want);
        qtest_memread(qt, addr + i * SECTOR, got, SECTOR);
        for (int b = 0; b < SECTOR; b++)
            CHECK_MSG(got[b] == want[b], "sector %d of the transfer (LBA %u), byte %d: expected "
                      "0x%02x, got 0x%02x", i, lba + i, b, want[b], got[b]);
    }
}

static void test_version_part_id_and_lock(void)
{
    QTest *qt = start_with_image(false);
    uint8_t cmd, r[10];

    cmd = CMD_VERSION;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("VERSION result count", 1, fdc_results(qt, r, 10));
    CHECK_EQ("VERSION (enhanced controller)", 0x90, r[0]);
    fdc_expect_idle(qt, "VERSION");

    cmd = CMD_PART_ID;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("PART ID result count", 1, fdc_results(qt, r, 10));
    CHECK_EQ("PART ID", 0x41, r[0]);

    cmd = CMD_LOCK;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("LOCK result count", 1, fdc_results(qt, r, 10));
    CHECK_EQ("LOCK result (lock bit 4)", 0x10, r[0]);
    cmd = CMD_UNLOCK;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("UNLOCK result count", 1, fdc_results(qt, r, 10));
    CHECK_EQ("UNLOCK result", 0x00, r[0]);

    /* CONFIGURE and PERPENDICULAR have no result phase; DUMPREG shows them. */
    uint8_t conf[4] = { CMD_CONFIGURE, 0, 0x1a, 0x05 };
    fdc_send(qt, conf, 4);
    fdc_expect_idle(qt, "CONFIGURE");
    uint8_t perp[2] = { CMD_PERP, 0x80 | 0x04 };
    fdc_send(qt, perp, 2);
    fdc_expect_idle(qt, "PERPENDICULAR MODE");
    uint8_t spec[3] = { CMD_SPECIFY, 0xaf, 0x02 };
    fdc_send(qt, spec, 3);
    fdc_expect_idle(qt, "SPECIFY");
    seek(qt, 7);
    cmd = CMD_DUMPREG;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("DUMPREG result count", 10, fdc_results(qt, r, 10));
    CHECK_EQ("DUMPREG PCN drive 0", 7, r[0]);
    CHECK_EQ("DUMPREG SRT/HUT", 0xaf, r[4]);
    CHECK_EQ("DUMPREG HLT/ND", 0x02, r[5]);
    CHECK_EQ("DUMPREG LOCK/perpendicular", 0x04, r[7]);
    CHECK_EQ("DUMPREG CONFIGURE byte", 0x1a, r[8]);
    CHECK_EQ("DUMPREG PRETRK", 0x05, r[9]);
    finish(qt);
}

static void test_recalibrate_seek_and_sense_interrupt(void)
{
    QTest *qt = start_with_image(false);
    uint8_t st0, pcn, r[4];
    qtest_irq_intercept(qt);
    CHECK_MSG(!qtest_get_irq(qt, FDC_IRQ), "IRQ6 high before any command");

    uint8_t seek_cmd[3] = { CMD_SEEK, 0x04, 42 };    /* head 1, drive 0 */
    fdc_send(qt, seek_cmd, 3);
    CHECK_MSG(qtest_get_irq(qt, FDC_IRQ), "IRQ6 low after SEEK completed");
    sense_interrupt(qt, &st0, &pcn);
    CHECK_EQ("ST0 after SEEK (SE, head 1)", ST0_SE | 0x04, st0);
    CHECK_EQ("PCN after SEEK to 42", 42, pcn);
    CHECK_MSG(!qtest_get_irq(qt, FDC_IRQ), "IRQ6 still high after SENSE INTERRUPT");

    uint8_t recal[2] = { CMD_RECAL, 0 };
    fdc_send(qt, recal, 2);
    CHECK_MSG(qtest_get_irq(qt, FDC_IRQ), "IRQ6 low after RECALIBRATE");
    sense_interrupt(qt, &st0, &pcn);
    CHECK_EQ("ST0 after RECALIBRATE", ST0_SE, st0);
    CHECK_EQ("PCN after RECALIBRATE", 0, pcn);

    uint8_t sd[2] = { CMD_SENSE_DRIVE, 0 };
    fdc_send(qt, sd, 2);
    CHECK_EQ("SENSE DRIVE STATUS result count", 1, fdc_results(qt, r, 4));
    CHECK_MSG(r[0] & ST3_T0, "ST3 0x%02x lacks T0 at cylinder 0", r[0]);
    CHECK_MSG(!(r[0] & ST3_WP), "ST3 0x%02x says write-protected for a writable image", r[0]);

    /* Nothing pending: SENSE INTERRUPT is an invalid command. */
    uint8_t cmd = CMD_SENSEI;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("SENSE INTERRUPT with nothing pending: result count", 1, fdc_results(qt, r, 4));
    CHECK_EQ("SENSE INTERRUPT with nothing pending", ST0_INVALID, r[0]);
    finish(qt);
}

static void test_reset_gives_four_sense_interrupts(void)
{
    QTest *qt = start_with_image(false);
    uint8_t st0, pcn, r[2];
    qtest_irq_intercept(qt);
    seek(qt, 5);
    qtest_outb(qt, FDC_DOR, DOR_DMA);                 /* enter reset */
    CHECK_EQ("MSR in reset", 0x00, qtest_inb(qt, FDC_MSR));
    qtest_outb(qt, FDC_DOR, DOR_DMA | DOR_NRESET);
    CHECK_MSG(qtest_get_irq(qt, FDC_IRQ), "IRQ6 low after leaving reset");
    for (int i = 0; i < 4; i++) {
        sense_interrupt(qt, &st0, &pcn);
        CHECK_EQ("ST0 after reset (ready changed, drive i)", 0xc0 | i, st0);
    }
    uint8_t cmd = CMD_SENSEI;
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("fifth SENSE INTERRUPT result count", 1, fdc_results(qt, r, 2));
    CHECK_EQ("fifth SENSE INTERRUPT", ST0_INVALID, r[0]);

    /* DSR software reset does the same and clears itself. */
    qtest_outb(qt, FDC_DSR, 0x80);
    CHECK_EQ("MSR after DSR reset", MSR_RQM, qtest_inb(qt, FDC_MSR));
    sense_interrupt(qt, &st0, &pcn);
    CHECK_EQ("ST0 after DSR reset", 0xc0, st0);
    finish(qt);
}

static void test_read_data_dma(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7];
    qtest_irq_intercept(qt);
    qtest_outb(qt, FDC_DOR, DOR_MOTA | DOR_DMA | DOR_NRESET);
    seek(qt, 1);
    dma_ch2_setup(qt, BUF_ADDR, SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 1, 0, 3, 2, 3, res);
    CHECK_EQ("ST0 of READ DATA (normal, head 0, drive 0)", 0x00, res[0]);
    CHECK_EQ("ST1", 0, res[1]);
    CHECK_EQ("ST2", 0, res[2]);
    /* TC after sector 3 = EOT: the next sector is cylinder 1, head 1 (MT), sector 1. */
    CHECK_EQ("result C", 1, res[3]);
    CHECK_EQ("result H", 1, res[4]);
    CHECK_EQ("result R", 1, res[5]);
    CHECK_EQ("result N", 2, res[6]);
    check_sectors(qt, BUF_ADDR, chs_lba(1, 0, 3), 1);
    CHECK_EQ("byte after the DMA buffer untouched", 0, qtest_readb(qt, BUF_ADDR + SECTOR));
    fdc_expect_idle(qt, "READ DATA");

    /* Two more sectors from cylinder 5 head 1 sector 10 with EOT 18: R = 12 after TC. */
    dma_ch2_setup(qt, BUF_ADDR + 0x1000, 2 * SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 5, 1, 10, 2, SPT, res);
    CHECK_EQ("ST0 (head 1)", 0x04, res[0]);
    CHECK_EQ("result C", 5, res[3]);
    CHECK_EQ("result H", 1, res[4]);
    CHECK_EQ("result R", 12, res[5]);
    check_sectors(qt, BUF_ADDR + 0x1000, chs_lba(5, 1, 10), 2);
    finish(qt);
}

static void test_read_multi_track_crosses_head(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7];
    dma_ch2_setup(qt, BUF_ADDR, 4 * SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 2, 0, 17, 2, SPT, res);
    CHECK_EQ("ST0", 0x04, res[0]);      /* ended on head 1 */
    CHECK_EQ("ST1", 0, res[1]);
    CHECK_EQ("result C", 2, res[3]);
    CHECK_EQ("result H", 1, res[4]);
    CHECK_EQ("result R", 3, res[5]);
    check_sectors(qt, BUF_ADDR, chs_lba(2, 0, 17), 4);

    /* Whole cylinder: 36 sectors, ends at cylinder + 1, head 0, sector 1. */
    dma_ch2_setup(qt, 0x30000, 2 * SPT * SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 79, 0, 1, 2, SPT, res);
    CHECK_EQ("ST0 full cylinder (last sector on head 1)", 0x04, res[0]);
    CHECK_EQ("result C full cylinder", 80, res[3]);
    CHECK_EQ("result H full cylinder", 0, res[4]);
    CHECK_EQ("result R full cylinder", 1, res[5]);
    check_sectors(qt, 0x30000, chs_lba(79, 0, 1), 2 * SPT);
    finish(qt);
}

static void test_read_without_tc_ends_with_end_of_cylinder(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7];
    /* DMA count larger than the sectors up to EOT (no MT): ST1 EN. */
    dma_ch2_setup(qt, BUF_ADDR, 8 * SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ_NOMT, 0, 0, 16, 2, SPT, res);
    CHECK_EQ("ST0 (abnormal termination)", ST0_ABNORMAL, res[0]);
    CHECK_EQ("ST1 (end of cylinder)", ST1_EN, res[1]);
    /* With EN the result names the last sector transferred (Linux adds 1 for EN). */
    CHECK_EQ("result C", 0, res[3]);
    CHECK_EQ("result R", SPT, res[5]);
    check_sectors(qt, BUF_ADDR, chs_lba(0, 0, 16), 3);
    finish(qt);
}

static void test_write_data_lands_in_image(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7], data[2 * SECTOR];
    for (int i = 0; i < (int)sizeof(data); i++)
        data[i] = (uint8_t)(0xa5 ^ (i * 13));
    qtest_memwrite(qt, 0x40000, data, sizeof(data));
    dma_ch2_setup(qt, 0x40000, sizeof(data), DMA_MODE_READ);
    rw_cmd(qt, CMD_WRITE, 3, 1, 18, 2, SPT, res);   /* 3/1/18, then MT -> 4/0/1? no: ends */
    /* Sector 18 of head 1 is EOT on the last side: only one sector fits before EN... */
    CHECK_EQ("ST0 (abnormal: EOT before TC)", ST0_ABNORMAL | 0x04, res[0] & 0xfc);
    CHECK_EQ("ST1 EN", ST1_EN, res[1]);

    dma_ch2_setup(qt, 0x40000, sizeof(data), DMA_MODE_READ);
    rw_cmd(qt, CMD_WRITE, 6, 0, 5, 2, SPT, res);
    CHECK_EQ("ST0", 0x00, res[0]);
    CHECK_EQ("ST1", 0, res[1]);
    CHECK_EQ("result R", 7, res[5]);

    int fd = open(img_path, O_RDONLY);
    CHECK_MSG(fd >= 0, "open %s: %s", img_path, strerror(errno));
    uint8_t got[2 * SECTOR];
    CHECK_EQ("pread of the written sectors",
             sizeof(got), pread(fd, got, sizeof(got), (off_t)chs_lba(6, 0, 5) * SECTOR));
    CHECK_MSG(memcmp(got, data, sizeof(got)) == 0, "image bytes at 6/0/5 differ from the DMA buffer");
    CHECK_EQ("pread of 3/1/18",
             SECTOR, pread(fd, got, SECTOR, (off_t)chs_lba(3, 1, 18) * SECTOR));
    CHECK_MSG(memcmp(got, data, SECTOR) == 0, "image bytes at 3/1/18 differ from the DMA buffer");
    /* The neighbour is untouched. */
    uint8_t want[SECTOR];
    sector_pattern(chs_lba(6, 0, 7), want);
    CHECK_EQ("pread of 6/0/7", SECTOR, pread(fd, got, SECTOR, (off_t)chs_lba(6, 0, 7) * SECTOR));
    CHECK_MSG(memcmp(got, want, SECTOR) == 0, "sector 6/0/7 after the write was modified");
    close(fd);
    finish(qt);
}

static void test_write_protected_image(void)
{
    QTest *qt = start_with_image(true);
    uint8_t res[7], r[2];
    uint8_t sd[2] = { CMD_SENSE_DRIVE, 0 };
    fdc_send(qt, sd, 2);
    CHECK_EQ("SENSE DRIVE STATUS count", 1, fdc_results(qt, r, 2));
    CHECK_MSG(r[0] & ST3_WP, "ST3 0x%02x lacks WP for readonly=on", r[0]);

    dma_ch2_setup(qt, 0x40000, SECTOR, DMA_MODE_READ);
    qtest_writeb(qt, 0x40000, 0x77);
    rw_cmd(qt, CMD_WRITE, 0, 0, 1, 2, SPT, res);
    CHECK_EQ("ST0 (abnormal)", ST0_ABNORMAL, res[0] & 0xc0);
    CHECK_EQ("ST1 (not writable)", ST1_NW, res[1]);
    int fd = open(img_path, O_RDONLY);
    uint8_t b = 0;
    CHECK_EQ("pread", 1, pread(fd, &b, 1, 0));
    close(fd);
    CHECK_EQ("first image byte unchanged", 0, b);
    finish(qt);
}

static void test_pio_read(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7], got[SECTOR], want[SECTOR];
    qtest_irq_intercept(qt);
    uint8_t spec[3] = { CMD_SPECIFY, 0xaf, 0x03 };      /* ND: non-DMA */
    fdc_send(qt, spec, 3);
    uint8_t cmd[9] = { CMD_READ_NOMT, 0x04, 4, 1, 9, 2, 9, 0x1b, 0xff };
    fdc_send(qt, cmd, 9);
    uint8_t msr = qtest_inb(qt, FDC_MSR);
    CHECK_EQ("MSR in non-DMA read execution", MSR_RQM | MSR_DIO | MSR_NDMA | MSR_CB, msr);
    CHECK_MSG(qtest_get_irq(qt, FDC_IRQ), "IRQ6 low with PIO data ready");
    for (int i = 0; i < SECTOR; i++)
        got[i] = qtest_inb(qt, FDC_FIFO);
    sector_pattern(chs_lba(4, 1, 9), want);
    CHECK_MSG(memcmp(got, want, SECTOR) == 0, "PIO bytes differ from image sector 4/1/9");
    /* No TC in non-DMA mode: sector 9 = EOT ends the command with EN. */
    CHECK_EQ("result count", 7, fdc_results(qt, res, 7));
    CHECK_EQ("ST0", ST0_ABNORMAL | 0x04, res[0]);
    CHECK_EQ("ST1", ST1_EN, res[1]);
    CHECK_EQ("result C", 4, res[3]);
    CHECK_EQ("result R (EOT, the last sector transferred)", 9, res[5]);
    fdc_expect_idle(qt, "PIO READ DATA");
    finish(qt);
}

static void test_disk_change_line(void)
{
    QTest *qt = start_with_image(false);
    qtest_outb(qt, FDC_DOR, DOR_MOTA | DOR_DMA | DOR_NRESET);
    CHECK_MSG(qtest_inb(qt, FDC_DIR) & DIR_DSKCHG, "DIR DSKCHG clear at power-on");
    seek(qt, 1);
    CHECK_EQ("DIR after a seek with the disk in", 0, qtest_inb(qt, FDC_DIR) & DIR_DSKCHG);
    /* Drive B: is empty/absent: its change line stays active. */
    qtest_outb(qt, FDC_DOR, DOR_DMA | DOR_NRESET | 1);
    CHECK_MSG(qtest_inb(qt, FDC_DIR) & DIR_DSKCHG, "DIR DSKCHG clear for driveless B:");
    finish(qt);
}

static void test_invalid_command(void)
{
    QTest *qt = start_with_image(false);
    uint8_t r[4];
    const uint8_t bad[] = { 0x1f, 0x00, 0x25, 0xff };
    for (size_t i = 0; i < sizeof(bad); i++) {
        fdc_send(qt, &bad[i], 1);
        CHECK_EQ("invalid command result count", 1, fdc_results(qt, r, 4));
        CHECK_EQ("invalid command ST0", ST0_INVALID, r[0]);
        fdc_expect_idle(qt, "invalid command");
    }
    /* Still alive: VERSION answers. */
    uint8_t v = CMD_VERSION;
    fdc_send(qt, &v, 1);
    CHECK_EQ("VERSION count", 1, fdc_results(qt, r, 4));
    CHECK_EQ("VERSION", 0x90, r[0]);
    finish(qt);
}

static void test_bad_sector_addresses_fail_cleanly(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7];

    dma_ch2_setup(qt, BUF_ADDR, SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 0, 0, 19, 2, SPT, res);          /* sector 19 of 18 */
    CHECK_EQ("ST0 for sector 19", ST0_ABNORMAL, res[0] & 0xc0);
    CHECK_EQ("ST1 for sector 19 (no data)", ST1_ND, res[1]);

    rw_cmd(qt, CMD_READ, 0, 0, 0, 2, SPT, res);           /* sector 0 */
    CHECK_EQ("ST1 for sector 0", ST1_ND, res[1]);

    rw_cmd(qt, CMD_READ, 255, 0, 1, 2, SPT, res);         /* cylinder 255 */
    CHECK_EQ("ST0 for cylinder 255", ST0_ABNORMAL, res[0] & 0xc0);
    CHECK_EQ("ST1 for cylinder 255", ST1_ND, res[1]);
    CHECK_EQ("ST2 for cylinder 255 (bad cylinder)", ST2_BC, res[2]);

    rw_cmd(qt, CMD_READ, 80, 0, 1, 2, SPT, res);          /* one past the last cylinder */
    CHECK_EQ("ST1 for cylinder 80", ST1_ND, res[1]);

    rw_cmd(qt, CMD_READ, 0, 0, 1, 7, SPT, res);           /* N = 7 (16 KiB sectors) */
    CHECK_EQ("ST1 for N=7", ST1_ND, res[1]);
    rw_cmd(qt, CMD_READ, 0, 0, 1, 0xff, 0xff, res);       /* everything huge */
    CHECK_EQ("ST0 for N=255", ST0_ABNORMAL, res[0] & 0xc0);

    rw_cmd(qt, CMD_READ, 0, 7, 1, 2, SPT, res);           /* head 7 */
    CHECK_EQ("ST0 for head 7", ST0_ABNORMAL, res[0] & 0xc0);

    /* Start past EOT with a big DMA count: runs off the track, no data. */
    dma_ch2_setup(qt, BUF_ADDR, 0x10000, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ_NOMT, 0, 0, 10, 2, 5, res);
    CHECK_EQ("ST0 for R past EOT", ST0_ABNORMAL, res[0] & 0xc0);
    CHECK_EQ("ST1 for R past EOT (runs to sector 19: no data)", ST1_ND, res[1]);
    CHECK_EQ("result R where it stopped", 19, res[5]);

    /* A good read still works afterwards. */
    dma_ch2_setup(qt, BUF_ADDR, SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 0, 0, 1, 2, SPT, res);
    CHECK_EQ("ST0 of the good read", 0, res[0]);
    check_sectors(qt, BUF_ADDR, 0, 1);
    finish(qt);
}

static void test_read_id(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7];
    seek(qt, 9);
    uint8_t cmd[2] = { CMD_READ_ID, 0x04 };
    fdc_send(qt, cmd, 2);
    CHECK_EQ("READ ID result count", 7, fdc_results(qt, res, 7));
    CHECK_EQ("READ ID ST0 (head 1)", 0x04, res[0]);
    CHECK_EQ("READ ID C", 9, res[3]);
    CHECK_EQ("READ ID H", 1, res[4]);
    CHECK_MSG(res[5] >= 1 && res[5] <= SPT, "READ ID R %u outside 1..18", res[5]);
    CHECK_EQ("READ ID N", 2, res[6]);
    finish(qt);
}

static void test_format_track(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7], ids[SPT * 4];
    seek(qt, 3);
    for (int i = 0; i < SPT; i++) {
        ids[i * 4 + 0] = 3;
        ids[i * 4 + 1] = 1;
        ids[i * 4 + 2] = (uint8_t)(i + 1);
        ids[i * 4 + 3] = 2;
    }
    qtest_memwrite(qt, 0x50000, ids, sizeof(ids));
    dma_ch2_setup(qt, 0x50000, sizeof(ids), DMA_MODE_READ);
    uint8_t cmd[6] = { CMD_FORMAT, 0x04, 2, SPT, 0x6c, 0xe5 };
    fdc_send(qt, cmd, 6);
    CHECK_EQ("FORMAT result count", 7, fdc_results(qt, res, 7));
    CHECK_EQ("FORMAT ST0 (head 1)", 0x04, res[0]);
    CHECK_EQ("FORMAT ST1", 0, res[1]);

    int fd = open(img_path, O_RDONLY);
    uint8_t got[SECTOR], want[SECTOR];
    memset(want, 0xe5, sizeof(want));
    for (int s = 1; s <= SPT; s++) {
        CHECK_EQ("pread", SECTOR, pread(fd, got, SECTOR, (off_t)chs_lba(3, 1, s) * SECTOR));
        CHECK_MSG(memcmp(got, want, SECTOR) == 0, "sector 3/1/%d not filled with 0xe5", s);
    }
    sector_pattern(chs_lba(3, 0, 1), want);
    CHECK_EQ("pread", SECTOR, pread(fd, got, SECTOR, (off_t)chs_lba(3, 0, 1) * SECTOR));
    CHECK_MSG(memcmp(got, want, SECTOR) == 0, "sector 3/0/1 (other head) was modified");
    close(fd);
    finish(qt);
}

static uint8_t cmos_read(QTest *qt, uint8_t idx)
{
    qtest_outb(qt, 0x70, idx);
    return qtest_inb(qt, 0x71);
}

static void test_cmos_drive_type_and_equipment(void)
{
    QTest *qt = start_with_image(false);
    CHECK_EQ("CMOS 0x10 (A: 1.44M, no B:)", 0x40, cmos_read(qt, 0x10));
    uint8_t equip = cmos_read(qt, 0x14);
    CHECK_MSG(equip & 0x01, "CMOS 0x14 = 0x%02x lacks the floppy-present bit", equip);
    CHECK_EQ("CMOS 0x14 bits 7:6 (one drive)", 0, equip & 0xc0);
    finish(qt);
}

static void test_2880k_image_geometry(void)
{
    make_image_size(2949120);
    char args[512];
    snprintf(args, sizeof(args), "-drive file=%s,if=floppy,format=raw", img_path);
    QTest *qt = qtest_start(args);
    CHECK_EQ("CMOS 0x10 (A: 2.88M)", 0x50, cmos_read(qt, 0x10));
    uint8_t res[7];
    dma_ch2_setup(qt, BUF_ADDR, SECTOR, DMA_MODE_WRITE);
    rw_cmd(qt, CMD_READ, 10, 1, 36, 2, 36, res);
    CHECK_EQ("ST0 reading sector 36", 0x04, res[0]);
    check_sectors(qt, BUF_ADDR, (10 * 2 + 1) * 36 + 35, 1);
    finish(qt);
}

static void test_unknown_image_size_is_refused(void)
{
    make_image_size(1000 * SECTOR);
    char drive[400];
    snprintf(drive, sizeof(drive), "file=%s,if=floppy,format=raw", img_path);
    const char *args[] = { "-drive", drive, NULL };
    qtest_expect_user_error(args, "floppy.img");
    remove_image();
}

/* fw_cfg (selector 0x510, data 0x511): read the named file into buf; returns its size or -1. */
static int fw_cfg_read_file(QTest *qt, const char *name, char *buf, int max)
{
    qtest_outw(qt, 0x510, 0x19);
    uint32_t count = 0;
    for (int i = 0; i < 4; i++)
        count = count << 8 | qtest_inb(qt, 0x511);
    for (uint32_t f = 0; f < count && f < 256; f++) {
        uint8_t e[64];
        for (int i = 0; i < 64; i++)
            e[i] = qtest_inb(qt, 0x511);
        uint32_t size = (uint32_t)e[0] << 24 | e[1] << 16 | e[2] << 8 | e[3];
        uint16_t sel = (uint16_t)(e[4] << 8 | e[5]);
        if (strncmp((const char *)e + 8, name, 56) != 0)
            continue;
        qtest_outw(qt, 0x510, sel);
        int n = (int)size < max - 1 ? (int)size : max - 1;
        for (int i = 0; i < n; i++)
            buf[i] = (char)qtest_inb(qt, 0x511);
        buf[n] = 0;
        return (int)size;
    }
    return -1;
}

static void test_bootindex_reaches_bootorder(void)
{
    make_image_size(IMG_SIZE);
    char args[512];
    snprintf(args, sizeof(args), "-drive file=%s,if=floppy,format=raw -global isa-fdc.bootindexA=3",
             img_path);
    QTest *qt = qtest_start(args);
    char order[1024];
    int n = fw_cfg_read_file(qt, "bootorder", order, sizeof(order));
    CHECK_MSG(n > 0, "no bootorder file in fw_cfg (got %d)", n);
    CHECK_MSG(strstr(order, "/pci@i0cf8/isa@1/fdc@03f0/floppy@0") != NULL,
              "bootorder lacks the floppy path: \"%s\"", order);
    finish(qt);
}

/* Random bytes at every FDC and DMA register: the process survives and the FDC still answers. */
static void test_register_garbage_does_not_crash(void)
{
    QTest *qt = start_with_image(false);
    static const uint16_t ports[] = {
        FDC_BASE + 1, FDC_BASE + 2, FDC_BASE + 3, FDC_BASE + 4, FDC_BASE + 5, FDC_BASE + 5,
        FDC_BASE + 5, FDC_BASE + 5, FDC_BASE + 7, 0x04, 0x05, 0x0a, 0x0b, 0x0c, 0x81, 0x08,
    };
    uint32_t x = 0x12345678;
    for (int i = 0; i < 6000; i++) {
        x = x * 1103515245u + 12345u;
        uint16_t port = ports[(x >> 8) % (sizeof(ports) / sizeof(ports[0]))];
        uint8_t v = (uint8_t)(x >> 20);
        /* Mostly keep the controller out of reset so commands run. */
        if (port == FDC_BASE + 2)
            v |= DOR_NRESET;
        if ((x >> 28) & 1)
            qtest_inb(qt, port);
        else
            qtest_outb(qt, port, v);
    }
    /* Reset the controller and check it still works. */
    qtest_outb(qt, FDC_DOR, DOR_DMA);
    qtest_outb(qt, FDC_DOR, DOR_DMA | DOR_NRESET);
    uint8_t st0, pcn, r[2], cmd = CMD_VERSION;
    for (int i = 0; i < 4; i++)
        sense_interrupt(qt, &st0, &pcn);
    fdc_send(qt, &cmd, 1);
    CHECK_EQ("VERSION count after garbage", 1, fdc_results(qt, r, 2));
    CHECK_EQ("VERSION after garbage", 0x90, r[0]);
    finish(qt);
}

/* Non-DMA: a CPU that stops reading overruns the FIFO; the command ends with ST1 OR. */
static void test_pio_overrun_ends_command(void)
{
    QTest *qt = start_with_image(false);
    uint8_t res[7], got[SECTOR], want[SECTOR];
    uint8_t spec[3] = { CMD_SPECIFY, 0xaf, 0x03 };
    fdc_send(qt, spec, 3);
    uint8_t cmd[9] = { CMD_READ, 0x00, 2, 0, 1, 2, SPT, 0x1b, 0xff };
    fdc_send(qt, cmd, 9);
    for (int i = 0; i < SECTOR; i++)
        got[i] = qtest_inb(qt, FDC_FIFO);
    sector_pattern(chs_lba(2, 0, 1), want);
    CHECK_MSG(memcmp(got, want, SECTOR) == 0, "PIO bytes differ from image sector 2/0/1");
    CHECK_EQ("MSR with sector 2 ready", MSR_RQM | MSR_DIO | MSR_NDMA | MSR_CB,
             qtest_inb(qt, FDC_MSR));
    qtest_clock_step(qt, 1000000);          /* 1 ms: still waiting */
    CHECK_EQ("MSR after 1 ms", MSR_RQM | MSR_DIO | MSR_NDMA | MSR_CB, qtest_inb(qt, FDC_MSR));
    qtest_clock_step(qt, 100000000);        /* 100 ms: overrun */
    CHECK_EQ("result count after overrun", 7, fdc_results(qt, res, 7));
    CHECK_EQ("ST0 (abnormal)", ST0_ABNORMAL, res[0]);
    CHECK_EQ("ST1 (overrun)", 0x10, res[1]);
    CHECK_EQ("result R (sector in progress)", 2, res[5]);
    fdc_expect_idle(qt, "overrun");
    finish(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_version_part_id_and_lock),
    TEST_CASE(test_recalibrate_seek_and_sense_interrupt),
    TEST_CASE(test_reset_gives_four_sense_interrupts),
    TEST_CASE(test_read_data_dma),
    TEST_CASE(test_read_multi_track_crosses_head),
    TEST_CASE(test_read_without_tc_ends_with_end_of_cylinder),
    TEST_CASE(test_write_data_lands_in_image),
    TEST_CASE(test_write_protected_image),
    TEST_CASE(test_pio_read),
    TEST_CASE(test_pio_overrun_ends_command),
    TEST_CASE(test_disk_change_line),
    TEST_CASE(test_invalid_command),
    TEST_CASE(test_bad_sector_addresses_fail_cleanly),
    TEST_CASE(test_read_id),
    TEST_CASE(test_format_track),
    TEST_CASE(test_cmos_drive_type_and_equipment),
    TEST_CASE(test_2880k_image_geometry),
    TEST_CASE(test_unknown_image_size_is_refused),
    TEST_CASE(test_bootindex_reaches_bootorder),
    TEST_CASE(test_register_garbage_does_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("fdc", cases, argc, argv);
}

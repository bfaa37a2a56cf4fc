/*
 * The two 8237A DMA controllers and page registers ("i8237", always on the
 * pc board): address/count read-back through the byte-pointer flip-flop on
 * both controllers, page registers (including the spare latches), single and
 * all-channel masking, master clear, status TC bits (cleared by reading),
 * and real transfers driven by the floppy controller: bytes land at the
 * programmed page:address, the channel masks itself at terminal count,
 * 16-bit channel address arithmetic (page bits 7:1, word address << 1, wrap
 * inside the 128 KiB block), auto-init, and a channel aimed past the end of
 * RAM.
 */
#include "tests/libqtest.h"
#include "tests/testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Controller 1 */
#define DMA1_ADDR(ch)   ((ch) * 2)
#define DMA1_COUNT(ch)  ((ch) * 2 + 1)
#define DMA1_STATUS     0x08
#define DMA1_COMMAND    0x08
#define DMA1_REQUEST    0x09
#define DMA1_MASK       0x0a
#define DMA1_MODE       0x0b
#define DMA1_CLEAR_FF   0x0c
#define DMA1_MASTER_CLR 0x0d
#define DMA1_CLEAR_MASK 0x0e
#define DMA1_ALL_MASK   0x0f
/* Controller 2: register n at 0xc0 + 2n */
#define DMA2_ADDR(ch)   (0xc0 + ((ch) - 4) * 4)
#define DMA2_COUNT(ch)  (0xc2 + ((ch) - 4) * 4)
#define DMA2_STATUS     0xd0
#define DMA2_MASK       0xd4
#define DMA2_MODE       0xd6
#define DMA2_CLEAR_FF   0xd8
#define DMA2_MASTER_CLR 0xda
#define DMA2_ALL_MASK   0xde

#define CMD_COND        0x04

static const uint16_t page_port[8] = { 0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a };

#define MODE_WRITE      0x44        /* single, increment, write transfer (to memory) */
#define MODE_AUTOINIT   0x10
#define MODE_DECREMENT  0x20

/* Floppy controller used as the DMA device */
#define FDC_MSR         0x3f4
#define FDC_FIFO        0x3f5
#define SECTOR          512
#define SPT             18
#define IMG_SIZE        (80 * 2 * SPT * SECTOR)

static char img_dir[256];
static char img_path[300];

static void sector_pattern(uint32_t lba, uint8_t *buf)
{
    for (int i = 0; i < SECTOR; i++)
        buf[i] = (uint8_t)(lba * 11 + i * 3 + 1);
}

static void make_image(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(img_dir, sizeof(img_dir), "%s/kestrel-dma-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(img_dir))
        test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", img_dir, strerror(errno));
    snprintf(img_path, sizeof(img_path), "%s/floppy.img", img_dir);
    FILE *f = fopen(img_path, "wb");
    if (!f)
        test_fail(__FILE__, __LINE__, "create %s: %s", img_path, strerror(errno));
    uint8_t buf[SECTOR];
    for (uint32_t lba = 0; lba < IMG_SIZE / SECTOR; lba++) {
        sector_pattern(lba, buf);
        fwrite(buf, 1, SECTOR, f);
    }
    fclose(f);
}

/* The board's FDC with a 1.44M image; extra: more arguments (may be ""). */
static QTest *start_with_floppy(const char *extra)
{
    char args[600];
    make_image();
    snprintf(args, sizeof(args), "-drive file=%s,if=floppy,format=raw %s", img_path, extra);
    return qtest_start(args);
}

static void finish(QTest *qt)
{
    qtest_quit(qt);
    if (img_path[0]) {
        unlink(img_path);
        rmdir(img_dir);
    }
}

static uint16_t read16(QTest *qt, uint16_t port, uint16_t clear_ff)
{
    qtest_outb(qt, clear_ff, 0);
    uint16_t lo = qtest_inb(qt, port);
    uint16_t hi = qtest_inb(qt, port);
    return (uint16_t)(hi << 8 | lo);
}

static void write16(QTest *qt, uint16_t port, uint16_t clear_ff, uint16_t v)
{
    qtest_outb(qt, clear_ff, 0);
    qtest_outb(qt, port, v & 0xff);
    qtest_outb(qt, port, v >> 8);
}

/* Issue READ DATA (no MT) of 'sectors' sectors from C/H/S and return ST0. */
static uint8_t fdc_read(QTest *qt, uint8_t c, uint8_t h, uint8_t s, uint8_t eot)
{
    uint8_t cmd[9] = { 0x46, (uint8_t)(h << 2), c, h, s, 2, eot, 0x1b, 0xff };
    for (int i = 0; i < 9; i++) {
        CHECK_MSG((qtest_inb(qt, FDC_MSR) & 0xc0) == 0x80, "FDC not ready for byte %d", i);
        qtest_outb(qt, FDC_FIFO, cmd[i]);
    }
    uint8_t res[7];
    int n = 0;
    while (n < 7 && (qtest_inb(qt, FDC_MSR) & 0xc0) == 0xc0)
        res[n++] = qtest_inb(qt, FDC_FIFO);
    CHECK_EQ("FDC result bytes", 7, n);
    return res[0];
}

static void check_sector_at(QTest *qt, uint64_t addr, uint32_t lba, const char *what)
{
    uint8_t want[SECTOR], got[SECTOR];
    sector_pattern(lba, want);
    qtest_memread(qt, addr, got, SECTOR);
    for (int i = 0; i < SECTOR; i++)
        CHECK_MSG(got[i] == want[i], "%s: byte %d at 0x%" PRIx64 ": expected 0x%02x, got 0x%02x",
                  what, i, addr + i, want[i], got[i]);
}

static void test_address_count_read_back(void)
{
    QTest *qt = qtest_start("");
    for (int ch = 0; ch < 4; ch++) {
        write16(qt, DMA1_ADDR(ch), DMA1_CLEAR_FF, (uint16_t)(0x1234 + ch * 0x1111));
        write16(qt, DMA1_COUNT(ch), DMA1_CLEAR_FF, (uint16_t)(0xfedc - ch));
    }
    for (int ch = 0; ch < 4; ch++) {
        CHECK_EQ("channel 0-3 current address", 0x1234 + ch * 0x1111,
                 read16(qt, DMA1_ADDR(ch), DMA1_CLEAR_FF));
        CHECK_EQ("channel 0-3 current count", 0xfedc - ch,
                 read16(qt, DMA1_COUNT(ch), DMA1_CLEAR_FF));
    }
    for (int ch = 4; ch < 8; ch++) {
        write16(qt, DMA2_ADDR(ch), DMA2_CLEAR_FF, (uint16_t)(0xa000 + ch));
        write16(qt, DMA2_COUNT(ch), DMA2_CLEAR_FF, (uint16_t)(0x0100 * ch));
    }
    for (int ch = 4; ch < 8; ch++) {
        CHECK_EQ("channel 4-7 current address", 0xa000 + ch,
                 read16(qt, DMA2_ADDR(ch), DMA2_CLEAR_FF));
        CHECK_EQ("channel 4-7 current count", 0x0100 * ch,
                 read16(qt, DMA2_COUNT(ch), DMA2_CLEAR_FF));
    }
    qtest_quit(qt);
}

static void test_flip_flop_alternates_bytes(void)
{
    QTest *qt = qtest_start("");
    write16(qt, DMA1_ADDR(1), DMA1_CLEAR_FF, 0xbeef);
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    CHECK_EQ("first read after clear: low byte", 0xef, qtest_inb(qt, DMA1_ADDR(1)));
    CHECK_EQ("second read: high byte", 0xbe, qtest_inb(qt, DMA1_ADDR(1)));
    CHECK_EQ("third read: low byte again", 0xef, qtest_inb(qt, DMA1_ADDR(1)));
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    qtest_outb(qt, DMA1_ADDR(1), 0x11);                 /* low byte only */
    CHECK_EQ("address after low-byte write (high kept)", 0xbe11,
             read16(qt, DMA1_ADDR(1), DMA1_CLEAR_FF));
    /* Controller 2 has its own flip-flop. */
    write16(qt, DMA2_ADDR(5), DMA2_CLEAR_FF, 0x4321);
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    qtest_inb(qt, DMA1_ADDR(0));                        /* controller 1 now on high byte */
    qtest_outb(qt, DMA2_CLEAR_FF, 0);
    CHECK_EQ("controller 2 low byte", 0x21, qtest_inb(qt, DMA2_ADDR(5)));
    qtest_quit(qt);
}

static void test_page_registers_read_back(void)
{
    QTest *qt = qtest_start("");
    for (uint16_t port = 0x81; port <= 0x8f; port++)
        qtest_outb(qt, port, (uint8_t)(port ^ 0x5a));
    for (uint16_t port = 0x81; port <= 0x8f; port++)
        CHECK_EQ("page register read-back (0x81-0x8f, spares included)", port ^ 0x5a,
                 qtest_inb(qt, port));
    qtest_quit(qt);
}

static void test_masking(void)
{
    QTest *qt = qtest_start("");
    CHECK_EQ("controller 1 mask after power-on (all masked)", 0xff, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_CLEAR_MASK, 0);
    CHECK_EQ("mask after clear-mask", 0xf0, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_MASK, 0x04 | 2);
    CHECK_EQ("mask after single set ch2", 0xf4, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_MASK, 0x04 | 0);
    CHECK_EQ("mask after single set ch0", 0xf5, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_MASK, 2);
    CHECK_EQ("mask after single clear ch2", 0xf1, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_ALL_MASK, 0x0a);
    CHECK_EQ("mask after write-all 0x0a", 0xfa, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_outb(qt, DMA1_MASTER_CLR, 0);
    CHECK_EQ("mask after master clear", 0xff, qtest_inb(qt, DMA1_ALL_MASK));
    /* Controller 2 independent. */
    qtest_outb(qt, DMA2_ALL_MASK, 0x0e);
    CHECK_EQ("controller 2 mask", 0xfe, qtest_inb(qt, DMA2_ALL_MASK));
    CHECK_EQ("controller 1 mask unchanged", 0xff, qtest_inb(qt, DMA1_ALL_MASK));
    qtest_quit(qt);
}

/* Program channel ch (0-3) for a write transfer of len bytes at addr. */
static void dma1_program(QTest *qt, int ch, uint32_t addr, uint32_t len, uint8_t mode)
{
    qtest_outb(qt, DMA1_MASK, 0x04 | ch);
    write16(qt, DMA1_ADDR(ch), DMA1_CLEAR_FF, addr & 0xffff);
    write16(qt, DMA1_COUNT(ch), DMA1_CLEAR_FF, (uint16_t)(len - 1));
    qtest_outb(qt, DMA1_MODE, (uint8_t)(mode | ch));
    qtest_outb(qt, page_port[ch], (addr >> 16) & 0xff);
    qtest_outb(qt, DMA1_MASK, ch);
}

static void test_fdc_transfer_lands_at_address_and_sets_tc(void)
{
    QTest *qt = start_with_floppy("");
    dma1_program(qt, 2, 0x23400, SECTOR, MODE_WRITE);
    CHECK_EQ("status before the transfer", 0, qtest_inb(qt, DMA1_STATUS) & 0x0f);
    CHECK_EQ("READ DATA ST0", 0x00, fdc_read(qt, 0, 0, 5, SPT));
    check_sector_at(qt, 0x23400, 4, "sector 0/0/5 at page 2 address 0x3400");
    CHECK_EQ("byte before the buffer untouched", 0, qtest_readb(qt, 0x233ff));
    CHECK_EQ("byte after the buffer untouched", 0, qtest_readb(qt, 0x23600));
    uint8_t st = qtest_inb(qt, DMA1_STATUS);
    CHECK_EQ("status TC bit of channel 2", 0x04, st & 0x0f);
    CHECK_EQ("status TC bits cleared by the read", 0, qtest_inb(qt, DMA1_STATUS) & 0x0f);
    CHECK_EQ("current address after 512 bytes", 0x3600, read16(qt, DMA1_ADDR(2), DMA1_CLEAR_FF));
    CHECK_EQ("current count after terminal count", 0xffff,
             read16(qt, DMA1_COUNT(2), DMA1_CLEAR_FF));
    CHECK_MSG(qtest_inb(qt, DMA1_ALL_MASK) & 0x04, "channel 2 not masked after TC without auto-init");
    finish(qt);
}

static void test_masked_channel_waits_for_unmask(void)
{
    QTest *qt = start_with_floppy("");
    dma1_program(qt, 2, 0x24000, SECTOR, MODE_WRITE);
    qtest_outb(qt, DMA1_MASK, 0x04 | 2);                /* mask again */
    uint8_t cmd[9] = { 0x46, 0, 0, 0, 1, 2, SPT, 0x1b, 0xff };
    for (int i = 0; i < 9; i++)
        qtest_outb(qt, FDC_FIFO, cmd[i]);
    CHECK_EQ("FDC MSR while DMA is masked (busy, no RQM)", 0x10, qtest_inb(qt, FDC_MSR));
    CHECK_EQ("memory untouched while masked", 0, qtest_readb(qt, 0x24000 + 7));
    qtest_outb(qt, DMA1_MASK, 2);                       /* unmask: transfer runs */
    CHECK_EQ("FDC MSR after the transfer (result phase)", 0xd0, qtest_inb(qt, FDC_MSR));
    check_sector_at(qt, 0x24000, 0, "sector 0/0/1 after unmask");

    /* The controller-disable bit of the command register also holds transfers. */
    for (int i = 0; i < 7; i++)
        qtest_inb(qt, FDC_FIFO);
    dma1_program(qt, 2, 0x25000, SECTOR, MODE_WRITE);
    qtest_outb(qt, DMA1_COMMAND, CMD_COND);
    for (int i = 0; i < 9; i++)
        qtest_outb(qt, FDC_FIFO, cmd[i]);
    CHECK_EQ("FDC MSR while the controller is disabled", 0x10, qtest_inb(qt, FDC_MSR));
    qtest_outb(qt, DMA1_COMMAND, 0);
    CHECK_EQ("FDC MSR after enabling", 0xd0, qtest_inb(qt, FDC_MSR));
    check_sector_at(qt, 0x25000, 0, "sector 0/0/1 after enable");
    finish(qt);
}

static void test_decrement_mode(void)
{
    QTest *qt = start_with_floppy("");
    dma1_program(qt, 2, 0x26000 + SECTOR - 1, SECTOR, MODE_WRITE | MODE_DECREMENT);
    CHECK_EQ("READ DATA ST0", 0x00, fdc_read(qt, 0, 0, 2, SPT));
    uint8_t want[SECTOR], got[SECTOR];
    sector_pattern(1, want);
    qtest_memread(qt, 0x26000, got, SECTOR);
    for (int i = 0; i < SECTOR; i++)
        CHECK_MSG(got[SECTOR - 1 - i] == want[i], "decrement: byte %d of the sector not at "
                  "top - %d", i, i);
    CHECK_EQ("address after decrementing 512", 0x5fff, read16(qt, DMA1_ADDR(2), DMA1_CLEAR_FF));
    finish(qt);
}

static void test_autoinit_reloads_base(void)
{
    QTest *qt = start_with_floppy("");
    dma1_program(qt, 2, 0x27000, SECTOR, MODE_WRITE | MODE_AUTOINIT);
    CHECK_EQ("READ DATA ST0", 0x00, fdc_read(qt, 0, 0, 3, SPT));
    CHECK_EQ("address reloaded from base", 0x7000, read16(qt, DMA1_ADDR(2), DMA1_CLEAR_FF));
    CHECK_EQ("count reloaded from base", SECTOR - 1, read16(qt, DMA1_COUNT(2), DMA1_CLEAR_FF));
    CHECK_EQ("channel 2 stays unmasked with auto-init", 0, qtest_inb(qt, DMA1_ALL_MASK) & 0x04);
    CHECK_EQ("status TC bit set", 0x04, qtest_inb(qt, DMA1_STATUS) & 0x04);
    /* A second read reuses the same buffer. */
    CHECK_EQ("second READ DATA ST0", 0x00, fdc_read(qt, 0, 0, 4, SPT));
    check_sector_at(qt, 0x27000, 3, "second auto-init transfer");
    finish(qt);
}

static void test_16bit_channel_address_math(void)
{
    /* FDC moved to channel 5: 16-bit transfers, word address, page bits 7:1. */
    QTest *qt = start_with_floppy("-global isa-fdc.dma=5");
    qtest_outb(qt, DMA2_MASK, 0x04 | 1);
    write16(qt, DMA2_ADDR(5), DMA2_CLEAR_FF, 0x1000);          /* byte 0x2000 */
    write16(qt, DMA2_COUNT(5), DMA2_CLEAR_FF, SECTOR / 2 - 1);  /* words */
    qtest_outb(qt, DMA2_MODE, MODE_WRITE | 1);
    qtest_outb(qt, page_port[5], 0x03);                         /* bit 0 ignored: 0x20000 */
    qtest_outb(qt, DMA2_MASK, 1);
    CHECK_EQ("READ DATA ST0 (head 1)", 0x04, fdc_read(qt, 1, 1, 1, SPT));
    check_sector_at(qt, 0x22000, (1 * 2 + 1) * SPT, "16-bit channel at 0x22000");
    CHECK_EQ("nothing at the odd-page address 0x32000", 0, qtest_readb(qt, 0x32000));
    CHECK_EQ("word address advanced by 256", 0x1100, read16(qt, DMA2_ADDR(5), DMA2_CLEAR_FF));
    CHECK_EQ("controller 2 status TC bit of channel 5", 0x02, qtest_inb(qt, DMA2_STATUS) & 0x0f);

    /* Wrap inside the 128K block: word 0xfff0 -> 32 bytes at the top, the rest at the bottom. */
    write16(qt, DMA2_ADDR(5), DMA2_CLEAR_FF, 0xfff0);
    write16(qt, DMA2_COUNT(5), DMA2_CLEAR_FF, SECTOR / 2 - 1);
    qtest_outb(qt, page_port[5], 0x04);                         /* block 0x40000 */
    qtest_outb(qt, DMA2_MASK, 1);
    CHECK_EQ("READ DATA ST0 (wrapping)", 0x00, fdc_read(qt, 0, 0, 1, SPT));
    uint8_t want[SECTOR], got[SECTOR];
    sector_pattern(0, want);
    qtest_memread(qt, 0x40000 + 0x1ffe0, got, 32);
    CHECK_MSG(memcmp(got, want, 32) == 0, "first 32 bytes not at the top of the 128K block");
    qtest_memread(qt, 0x40000, got, SECTOR - 32);
    CHECK_MSG(memcmp(got, want + 32, SECTOR - 32) == 0,
              "bytes after the wrap not at the bottom of the 128K block");
    CHECK_EQ("nothing written at 0x60000 (no carry into the page)", 0, qtest_readb(qt, 0x60000));
    finish(qt);
}

static void test_transfer_past_end_of_ram_is_dropped(void)
{
    /* 8 MiB of RAM; page 0x90 is 9 MiB: nothing there. */
    QTest *qt = start_with_floppy("-m 8");
    dma1_program(qt, 2, 0x90ff00, 0x10000, MODE_WRITE);
    CHECK_EQ("READ DATA ST0 (ends with EN at EOT)", 0x40, fdc_read(qt, 0, 0, 1, SPT) & 0xc0);
    CHECK_EQ("address advanced over 18 sectors (wrapping in the page)",
             (0xff00 + SPT * SECTOR) & 0xffff, read16(qt, DMA1_ADDR(2), DMA1_CLEAR_FF));
    CHECK_EQ("unassigned memory reads 0xff", 0xff, qtest_readb(qt, 0x90ff00));
    /* The last RAM page: the part inside RAM lands, the page wrap keeps it there. */
    dma1_program(qt, 2, 0x7fff00, SECTOR, MODE_WRITE);
    CHECK_EQ("READ DATA ST0 at the top of RAM", 0x00, fdc_read(qt, 0, 0, 1, SPT));
    uint8_t want[SECTOR], got[256];
    sector_pattern(0, want);
    qtest_memread(qt, 0x7fff00, got, 256);
    CHECK_MSG(memcmp(got, want, 256) == 0, "first 256 bytes not at the top of RAM");
    qtest_memread(qt, 0x7f0000, got, 256);
    CHECK_MSG(memcmp(got, want + 256, 256) == 0, "wrapped bytes not at the page start");
    /* Still responsive; channel 2 masked itself at TC. */
    CHECK_EQ("controller 1 mask", 0xff, qtest_inb(qt, DMA1_ALL_MASK));
    finish(qt);
}

static void test_master_clear_and_request_status(void)
{
    QTest *qt = qtest_start("");
    qtest_outb(qt, DMA1_REQUEST, 0x04 | 3);             /* software request on channel 3 */
    CHECK_EQ("status request bit of channel 3", 0x80, qtest_inb(qt, DMA1_STATUS) & 0xf0);
    qtest_outb(qt, DMA1_REQUEST, 3);
    CHECK_EQ("request bit cleared", 0x00, qtest_inb(qt, DMA1_STATUS) & 0xf0);
    qtest_outb(qt, DMA1_REQUEST, 0x04 | 1);
    qtest_outb(qt, DMA1_CLEAR_FF, 0);
    qtest_inb(qt, DMA1_ADDR(0));                        /* flip-flop now high */
    qtest_outb(qt, DMA1_MASTER_CLR, 0);
    CHECK_EQ("status after master clear", 0x00, qtest_inb(qt, DMA1_STATUS));
    qtest_outb(qt, DMA1_ADDR(0), 0x34);                 /* low byte after master clear */
    qtest_outb(qt, DMA1_ADDR(0), 0x12);
    CHECK_EQ("flip-flop cleared by master clear", 0x1234, read16(qt, DMA1_ADDR(0), DMA1_CLEAR_FF));
    qtest_quit(qt);
}

static const TestCase cases[] = {
    TEST_CASE(test_address_count_read_back),
    TEST_CASE(test_flip_flop_alternates_bytes),
    TEST_CASE(test_page_registers_read_back),
    TEST_CASE(test_masking),
    TEST_CASE(test_master_clear_and_request_status),
    TEST_CASE(test_fdc_transfer_lands_at_address_and_sets_tc),
    TEST_CASE(test_masked_channel_waits_for_unmask),
    TEST_CASE(test_decrement_mode),
    TEST_CASE(test_autoinit_reloads_base),
    TEST_CASE(test_16bit_channel_address_math),
    TEST_CASE(test_transfer_past_end_of_ram_is_dropped),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("i8237", cases, argc, argv);
}

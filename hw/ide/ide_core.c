/*
 * IDE channel and ATA disk model: the task file of two devices per
 * channel, the ATA command set a PC BIOS, boot loaders and Linux's
 * ata_piix use, and the device side of bus-master DMA.
 *
 * Follows ATA/ATAPI-6 (T13/1410D rev 3b): §6 (protocols: PIO data-in /
 * data-out with one interrupt per DRQ block, DMA, non-data), §7 (register
 * descriptions; the HOB bit and two-deep register FIFO for 48-bit
 * commands), §8 (commands), §9.2 and §9.12 (software reset and the
 * signatures it leaves: ATA 01/01/00/00, PACKET 01/01/14/EB) and the
 * IDENTIFY DEVICE word table (§8.15).  Behaviour where the standard leaves
 * room follows what QEMU presents, because that is what SeaBIOS and guests
 * are tested against (../shared/docs/firmware-seabios.md §9): an absent
 * device 1 next to a present device 0 latches register writes but reads
 * status 0; a channel with no device reads 0xFF ("floating bus"); CHS
 * geometry 16 heads / 63 sectors with cylinders capped at 16383.
 *
 * Disk I/O never blocks the vCPU: every read, write and flush goes through
 * blk_aio_* and completes on the main loop.  While it is in flight the
 * device shows BSY (PIO) or DRQ (DMA).  Requests carry the device's
 * generation number; a reset or cancellation bumps it so late completions
 * are dropped instead of touching a newer command's state.
 *
 * Not modelled: overlapped/queued commands, SMART, security, HPA (SET MAX),
 * TRIM, 8-bit PIO transfers (the data port moves whatever width is used),
 * timing (IDETIM values are stored only).
 */
#include "hw/ide/ide_internal.h"
#include "kestrel/log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---- ATA command opcodes (ATA/ATAPI-6 §8, Table 10) ---- */

#define WIN_NOP                     0x00
#define WIN_DEVICE_RESET            0x08    /* PACKET devices only */
#define WIN_RECALIBRATE             0x10    /* 0x10-0x1F */
#define WIN_READ                    0x20
#define WIN_READ_NORETRY            0x21
#define WIN_READ_EXT                0x24
#define WIN_READDMA_EXT             0x25
#define WIN_READ_NATIVE_MAX_EXT     0x27
#define WIN_MULTREAD_EXT            0x29
#define WIN_WRITE                   0x30
#define WIN_WRITE_NORETRY           0x31
#define WIN_WRITE_EXT               0x34
#define WIN_WRITEDMA_EXT            0x35
#define WIN_MULTWRITE_EXT           0x39
#define WIN_VERIFY                  0x40
#define WIN_VERIFY_NORETRY          0x41
#define WIN_VERIFY_EXT              0x42
#define WIN_SEEK                    0x70    /* 0x70-0x7F */
#define WIN_DIAGNOSE                0x90
#define WIN_SPECIFY                 0x91    /* INITIALIZE DEVICE PARAMETERS */
#define WIN_PACKETCMD               0xa0
#define WIN_PIDENTIFY               0xa1
#define WIN_MULTREAD                0xc4
#define WIN_MULTWRITE               0xc5
#define WIN_SETMULT                 0xc6
#define WIN_READDMA                 0xc8
#define WIN_READDMA_NORETRY         0xc9
#define WIN_WRITEDMA                0xca
#define WIN_WRITEDMA_NORETRY        0xcb
#define WIN_STANDBYNOW1             0xe0
#define WIN_IDLEIMMEDIATE           0xe1
#define WIN_STANDBY                 0xe2
#define WIN_SETIDLE1                0xe3
#define WIN_CHECKPOWERMODE1         0xe5
#define WIN_SLEEPNOW1               0xe6
#define WIN_FLUSH_CACHE             0xe7
#define WIN_FLUSH_CACHE_EXT         0xea
#define WIN_IDENTIFY                0xec
#define WIN_SETFEATURES             0xef
#define WIN_READ_NATIVE_MAX         0xf8

/* SET FEATURES subcommands (features register, §8.37) */
#define SETFEATURES_WC_ON           0x02
#define SETFEATURES_XFER            0x03
#define SETFEATURES_DIS_DEFECT      0x04    /* obsolete, accepted */
#define SETFEATURES_EN_APM          0x05
#define SETFEATURES_DIS_RLA         0x55    /* read look-ahead off */
#define SETFEATURES_DIS_RPOD        0x66    /* keep settings over reset */
#define SETFEATURES_WC_OFF          0x82
#define SETFEATURES_EN_RLA          0xaa
#define SETFEATURES_EN_RPOD         0xcc
/* transfer mode values (sector count of SET FEATURES 03h) */
#define XFER_PIO_DEFAULT            0x00
#define XFER_PIO_DEFAULT_NOIORDY    0x01
#define XFER_PIO_FLOW               0x08    /* 0x08 | mode */
#define XFER_MWDMA                  0x20    /* 0x20 | mode */
#define XFER_UDMA                   0x40    /* 0x40 | mode */

/* Default CHS translation (QEMU's hd_geometry_guess for LBA-era images). */
#define IDE_DEFAULT_HEADS           16
#define IDE_DEFAULT_SECS            63
#define IDE_MAX_CYLS                16383
#define IDE_LBA28_MAX               0x0fffffffULL

static unsigned ide_serial_counter;

/* ---- IRQ ---- */

static IDEDevice *ide_selected(IDEBus *bus)
{
    return &bus->dev[(bus->select & ATA_DEV_DEV) ? 1 : 0];
}

static bool ide_bus_empty(IDEBus *bus)
{
    return bus->dev[0].kind == IDE_KIND_NONE && bus->dev[1].kind == IDE_KIND_NONE;
}

/*
 * INTRQ: driven by the selected device only, and only while nIEN is clear
 * (§7.9.6, "Device control register").
 */
static void ide_update_irq(IDEBus *bus)
{
    IDEDevice *s = ide_selected(bus);
    bool level = s->irq_pending && !(bus->devctl & ATA_CTL_NIEN);

    if (level && !bus->irq_level && bus->bm)
        bmdma_irq_raised(bus->bm);
    bus->irq_level = level;
    irq_set_level(bus->irq, level);
}

void ide_set_irq(IDEDevice *d)
{
    d->irq_pending = true;
    ide_update_irq(d->bus);
}

static void ide_clear_irq(IDEDevice *d)
{
    if (d->irq_pending) {
        d->irq_pending = false;
        ide_update_irq(d->bus);
    }
}

/* ---- Status helpers ---- */

static void ide_cmd_ok(IDEDevice *d, bool irq)
{
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC;
    d->error = 0;
    if (irq)
        ide_set_irq(d);
}

static void ide_cmd_error(IDEDevice *d, uint8_t error)
{
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC | ATA_STAT_ERR;
    if (d->kind == IDE_KIND_CD)
        d->status = ATA_STAT_DRDY | ATA_STAT_ERR;
    d->error = error;
    ide_set_irq(d);
}

static void ide_abort(IDEDevice *d)
{
    ide_cmd_error(d, ATA_ERR_ABRT);
}

/* ---- Signatures and reset ---- */

void ide_set_signature(IDEDevice *d)
{
    d->nsector = 1;
    d->lbal = 1;
    if (d->kind == IDE_KIND_CD) {
        d->lbam = ATAPI_SIG_LBAM;
        d->lbah = ATAPI_SIG_LBAH;
    } else {
        d->lbam = 0;
        d->lbah = 0;
    }
}

/* Drop the current command and anything it has in flight. */
void ide_cancel(IDEDevice *d)
{
    IDEBus *bus = d->bus;

    d->gen++;
    d->end_xfer = NULL;
    d->data_pos = d->data_end = 0;
    if (bus->dma_dev == d)
        bus->dma_dev = NULL;
    memset(&d->dma, 0, sizeof(d->dma));
}

/* State after a reset (software, hardware or EXECUTE DEVICE DIAGNOSTIC). */
static void ide_device_reset_regs(IDEDevice *d)
{
    ide_cancel(d);
    d->irq_pending = false;
    d->feature = d->hob_feature = 0;
    d->hob_nsector = d->hob_lbal = d->hob_lbam = d->hob_lbah = 0;
    if (d->kind == IDE_KIND_NONE) {
        d->nsector = d->lbal = d->lbam = d->lbah = 0;
        d->status = 0;
        d->error = 0;
        return;
    }
    ide_set_signature(d);
    d->error = ATA_ERR_DIAG_PASSED;
    /* A PACKET device leaves DRDY clear after reset (ATA/ATAPI-6 §9.12). */
    d->status = d->kind == IDE_KIND_HD ? ATA_STAT_DRDY | ATA_STAT_DSC : 0;
}

void ide_bus_reset(IDEBus *bus)
{
    bus->select = 0;
    bus->devctl = 0;
    bus->dma_dev = NULL;
    for (int i = 0; i < 2; i++) {
        IDEDevice *d = &bus->dev[i];
        ide_device_reset_regs(d);
        d->mult_sectors = IDE_MAX_MULT;
        d->write_cache = true;
        d->xfer_mode = XFER_PIO_DEFAULT;
        d->cur_heads = d->heads;
        d->cur_secs = d->secs;
        d->cmd = 0;
        if (d->kind == IDE_KIND_CD)
            atapi_reset(d, true);
    }
    ide_update_irq(bus);
}

/* ---- PIO data transfer ---- */

/* Make io_buffer[start..start+len) the next DRQ block; done runs when the host moved it all. */
void ide_transfer_window(IDEDevice *d, uint32_t start, uint32_t len, bool out,
                         IDEXferDoneFn *done)
{
    if (start > IDE_BUF_SIZE)
        start = IDE_BUF_SIZE;
    if (len > IDE_BUF_SIZE - start)
        len = IDE_BUF_SIZE - start;
    d->data_pos = start;
    d->data_end = start + len;
    d->data_out = out;
    d->end_xfer = done;
    d->status = (d->kind == IDE_KIND_HD ? ATA_STAT_DRDY | ATA_STAT_DSC : ATA_STAT_DRDY) |
                ATA_STAT_DRQ;
}

void ide_transfer_start(IDEDevice *d, uint32_t len, bool out, IDEXferDoneFn *done)
{
    ide_transfer_window(d, 0, len, out, done);
}

static void ide_transfer_stop(IDEDevice *d)
{
    d->end_xfer = NULL;
    d->data_pos = d->data_end = 0;
    d->status &= ~ATA_STAT_DRQ;
}

/* A data port access of 'size' bytes at the current position; true if the block ended. */
static uint32_t ide_data_read(IDEDevice *d, unsigned size)
{
    uint32_t v = 0;

    if (!(d->status & ATA_STAT_DRQ) || d->data_out || !d->end_xfer) {
        LOG(LOG_GUEST_ERROR, "ide%d: data register read without DRQ (status 0x%02x)\n",
            d->bus->channel, d->status);
        return 0xffffffffu >> (32 - 8 * size);
    }
    for (unsigned i = 0; i < size; i++)
        if (d->data_pos + i < d->data_end)
            v |= (uint32_t)d->io_buffer[d->data_pos + i] << (8 * i);
    d->data_pos += size;
    if (d->data_pos >= d->data_end) {
        IDEXferDoneFn *fn = d->end_xfer;
        d->status &= ~ATA_STAT_DRQ;
        d->end_xfer = NULL;
        fn(d);
    }
    return v;
}

static void ide_data_write(IDEDevice *d, uint32_t v, unsigned size)
{
    if (!(d->status & ATA_STAT_DRQ) || !d->data_out || !d->end_xfer) {
        LOG(LOG_GUEST_ERROR, "ide%d: data register write without DRQ (status 0x%02x)\n",
            d->bus->channel, d->status);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        if (d->data_pos + i < d->data_end)
            d->io_buffer[d->data_pos + i] = (uint8_t)(v >> (8 * i));
    d->data_pos += size;
    if (d->data_pos >= d->data_end) {
        IDEXferDoneFn *fn = d->end_xfer;
        d->status &= ~ATA_STAT_DRQ;
        d->end_xfer = NULL;
        fn(d);
    }
}

/* ---- Asynchronous block requests ---- */

IDEAioReq *ide_aio_new(IDEDevice *d, size_t len, IDEAioDoneFn *cb)
{
    IDEAioReq *req = g_new0(IDEAioReq, 1);
    req->dev = d;
    req->gen = d->gen;
    req->cb = cb;
    req->len = len;
    req->buf = len ? g_malloc(len) : NULL;
    req->iov.iov_base = req->buf;
    req->iov.iov_len = len;
    return req;
}

static void ide_aio_complete(void *opaque, int ret)
{
    IDEAioReq *req = opaque;
    IDEDevice *d = req->dev;

    if (req->gen == d->gen)
        req->cb(d, req, ret);
    g_free(req->buf);
    g_free(req);
}

void ide_aio_read(IDEAioReq *req, uint64_t offset)
{
    blk_aio_preadv(req->dev->blk, offset, &req->iov, 1, ide_aio_complete, req);
}

void ide_aio_write(IDEAioReq *req, uint64_t offset)
{
    blk_aio_pwritev(req->dev->blk, offset, &req->iov, 1, ide_aio_complete, req);
}

static void ide_aio_flush(IDEAioReq *req)
{
    blk_aio_flush(req->dev->blk, ide_aio_complete, req);
}

/* ---- DMA engine (device side of the bus master) ---- */

static void ide_dma_step(IDEDevice *d);

static void ide_dma_finish(IDEDevice *d, int err)
{
    IDEBus *bus = d->bus;
    IDEDmaDoneFn *done = d->dma.done;

    d->dma.running = false;
    d->dma.pending = false;
    if (bus->dma_dev == d)
        bus->dma_dev = NULL;
    if (bus->bm)
        bmdma_transfer_done(bus->bm, err == -EFAULT);
    if (done)
        done(d, err);
}

static void ide_dma_read_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    unsigned n = (unsigned)(req->len / d->dma.in_secsize);
    bool ok;

    if (ret < 0) {
        ide_dma_finish(d, -EIO);
        return;
    }
    if (d->dma.out_secsize != d->dma.in_secsize) {
        uint8_t *raw = g_malloc((size_t)n * d->dma.out_secsize);
        uint64_t lba = d->dma.offset / d->dma.in_secsize;
        for (unsigned i = 0; i < n; i++)
            ide_cd_sector_raw(raw + (size_t)i * d->dma.out_secsize,
                              req->buf + (size_t)i * d->dma.in_secsize, lba + i);
        ok = bmdma_transfer(d->bus->bm, raw, (size_t)n * d->dma.out_secsize, true);
        g_free(raw);
    } else {
        ok = bmdma_transfer(d->bus->bm, req->buf, req->len, true);
    }
    if (!ok) {
        ide_dma_finish(d, -EFAULT);
        return;
    }
    d->dma.offset += req->len;
    d->dma.sectors_left -= n;
    ide_dma_step(d);
}

static void ide_dma_write_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    if (ret < 0) {
        ide_dma_finish(d, -EIO);
        return;
    }
    d->dma.offset += req->len;
    d->dma.sectors_left -= req->len / d->dma.in_secsize;
    ide_dma_step(d);
}

/* Move the next chunk (at most IDE_BUF_SIZE on the bus) of a DMA job. */
static void ide_dma_step(IDEDevice *d)
{
    IDEDmaJob *j = &d->dma;

    if (j->from_buffer) {
        bool ok = bmdma_transfer(d->bus->bm, d->io_buffer, j->buf_len, j->to_memory);
        ide_dma_finish(d, ok ? 0 : -EFAULT);
        return;
    }
    if (j->sectors_left == 0) {
        ide_dma_finish(d, 0);
        return;
    }
    uint64_t n = IDE_BUF_SIZE / j->out_secsize;
    if (n > j->sectors_left)
        n = j->sectors_left;
    IDEAioReq *req = ide_aio_new(d, n * j->in_secsize,
                                 j->to_memory ? ide_dma_read_cb : ide_dma_write_cb);
    if (j->to_memory) {
        ide_aio_read(req, j->offset);
        return;
    }
    if (!bmdma_transfer(d->bus->bm, req->buf, req->len, false)) {
        g_free(req->buf);
        g_free(req);
        ide_dma_finish(d, -EFAULT);
        return;
    }
    ide_aio_write(req, j->offset);
}

static void ide_dma_run(IDEDevice *d)
{
    d->dma.pending = false;
    d->dma.running = true;
    ide_dma_step(d);
}

static void ide_dma_arm(IDEDevice *d)
{
    IDEBus *bus = d->bus;

    d->status = (d->kind == IDE_KIND_HD ? ATA_STAT_DRDY | ATA_STAT_DSC : ATA_STAT_DRDY) |
                ATA_STAT_DRQ;
    if (!bus->bm) {
        ide_dma_finish(d, -EFAULT);
        return;
    }
    d->dma.pending = true;
    bus->dma_dev = d;
    if (bmdma_started(bus->bm))
        ide_dma_run(d);
}

void ide_dma_setup(IDEDevice *d, bool to_memory, uint64_t offset, uint64_t sectors,
                   unsigned in_secsize, unsigned out_secsize, IDEDmaDoneFn *done)
{
    memset(&d->dma, 0, sizeof(d->dma));
    d->dma.to_memory = to_memory;
    d->dma.offset = offset;
    d->dma.sectors_left = sectors;
    d->dma.in_secsize = in_secsize;
    d->dma.out_secsize = out_secsize;
    d->dma.done = done;
    ide_dma_arm(d);
}

void ide_dma_setup_buffer(IDEDevice *d, bool to_memory, uint32_t len, IDEDmaDoneFn *done)
{
    memset(&d->dma, 0, sizeof(d->dma));
    d->dma.to_memory = to_memory;
    d->dma.from_buffer = true;
    d->dma.buf_len = len > IDE_BUF_SIZE ? IDE_BUF_SIZE : len;
    d->dma.done = done;
    ide_dma_arm(d);
}

void ide_bus_dma_kick(IDEBus *bus)
{
    IDEDevice *d = bus->dma_dev;

    if (d && d->dma.pending && !d->dma.running)
        ide_dma_run(d);
}

/* The guest cleared the bus master's Start bit in the middle of a transfer. */
void ide_bus_dma_cancel(IDEBus *bus)
{
    IDEDevice *d = bus->dma_dev;

    if (!d || !d->dma.running)
        return;
    LOG(LOG_GUEST_ERROR, "ide%d: bus master stopped during a DMA transfer\n", bus->channel);
    ide_cancel(d);
    d->status = ATA_STAT_DRDY | ATA_STAT_ERR;
    d->error = ATA_ERR_ABRT;
}

/* ---- ATA addressing ---- */

/* The command's starting sector; false (with IDNF set up) if it cannot be addressed. */
static bool ide_get_lba(IDEDevice *d, bool lba48, uint64_t *lba)
{
    IDEBus *bus = d->bus;

    if (lba48) {
        *lba = (uint64_t)d->hob_lbah << 40 | (uint64_t)d->hob_lbam << 32 |
               (uint64_t)d->hob_lbal << 24 | (uint64_t)d->lbah << 16 |
               (uint64_t)d->lbam << 8 | d->lbal;
        return true;
    }
    if (bus->select & ATA_DEV_LBA) {
        *lba = (uint64_t)(bus->select & ATA_DEV_HEAD_MASK) << 24 | (uint64_t)d->lbah << 16 |
               (uint64_t)d->lbam << 8 | d->lbal;
        return true;
    }
    /* CHS (§6.2 of ATA-5): sectors count from 1; geometry from INITIALIZE DEVICE PARAMETERS. */
    unsigned cyl = (unsigned)d->lbah << 8 | d->lbam;
    unsigned head = bus->select & ATA_DEV_HEAD_MASK;
    unsigned sect = d->lbal;
    if (sect == 0 || sect > d->cur_secs || head >= d->cur_heads || d->cur_secs == 0)
        return false;
    *lba = ((uint64_t)cyl * d->cur_heads + head) * d->cur_secs + sect - 1;
    return true;
}

static uint32_t ide_get_nsector(IDEDevice *d, bool lba48)
{
    if (lba48) {
        uint32_t n = (uint32_t)d->hob_nsector << 8 | d->nsector;
        return n ? n : 65536;
    }
    return d->nsector ? d->nsector : 256;
}

/* Address the command names, range-checked against the image: false = error already set. */
static bool ide_prepare_rw(IDEDevice *d, bool lba48, uint64_t *lba, uint32_t *n)
{
    if (!ide_get_lba(d, lba48, lba)) {
        LOG(LOG_GUEST_ERROR, "ide%d: bad CHS address\n", d->bus->channel);
        ide_cmd_error(d, ATA_ERR_IDNF | ATA_ERR_ABRT);
        return false;
    }
    *n = ide_get_nsector(d, lba48);
    if (*lba >= d->nb_sectors || *n > d->nb_sectors - *lba) {
        LOG(LOG_GUEST_ERROR, "ide%d: sectors %" PRIu64 "+%u beyond the end (%" PRIu64 ")\n",
            d->bus->channel, *lba, *n, d->nb_sectors);
        ide_cmd_error(d, ATA_ERR_IDNF | ATA_ERR_ABRT);
        return false;
    }
    d->lba48 = lba48;
    return true;
}

/* ---- PIO reads: chunks of the image in io_buffer, handed out one DRQ block at a time ---- */

static void ide_pio_read_next(IDEDevice *d);

static void ide_pio_read_block_done(IDEDevice *d)
{
    uint32_t got = d->data_end - d->chunk_pos;

    d->chunk_pos = d->data_end;
    d->host_left -= got / IDE_SECTOR_SIZE;
    if (d->host_left == 0) {
        /* Data-in: no interrupt after the last block (ATA-6 §9.5). */
        ide_transfer_stop(d);
        ide_cmd_ok(d, false);
        return;
    }
    ide_pio_read_next(d);
}

/* Hand out the next DRQ block of the chunk in io_buffer, with its interrupt. */
static void ide_pio_read_start_block(IDEDevice *d)
{
    uint32_t n = d->drq_sectors;
    uint32_t avail = (d->chunk_len - d->chunk_pos) / IDE_SECTOR_SIZE;

    if (n > d->host_left)
        n = d->host_left;
    if (n > avail)
        n = avail;
    ide_transfer_window(d, d->chunk_pos, n * IDE_SECTOR_SIZE, false, ide_pio_read_block_done);
    ide_set_irq(d);
}

static void ide_pio_read_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    if (ret < 0) {
        ide_cmd_error(d, ATA_ERR_UNC | ATA_ERR_ABRT);
        return;
    }
    memcpy(d->io_buffer, req->buf, req->len);
    d->chunk_len = (uint32_t)req->len;
    d->chunk_pos = 0;
    d->xfer_lba += req->len / IDE_SECTOR_SIZE;
    d->xfer_left -= req->len / IDE_SECTOR_SIZE;
    ide_pio_read_start_block(d);
}

static void ide_pio_read_next(IDEDevice *d)
{
    if (d->chunk_pos < d->chunk_len) {
        ide_pio_read_start_block(d);
        return;
    }
    /* io_buffer drained: fetch the next chunk (BSY until it is there). */
    uint32_t n = d->xfer_left;
    if (n > IDE_BUF_SIZE / IDE_SECTOR_SIZE)
        n = IDE_BUF_SIZE / IDE_SECTOR_SIZE;
    d->chunk_len = d->chunk_pos = 0;
    d->status = ATA_STAT_BSY | ATA_STAT_DRDY | ATA_STAT_DSC;
    IDEAioReq *req = ide_aio_new(d, (size_t)n * IDE_SECTOR_SIZE, ide_pio_read_cb);
    ide_aio_read(req, d->xfer_lba * IDE_SECTOR_SIZE);
}

static void ide_ata_read_pio(IDEDevice *d, bool lba48, uint32_t drq_sectors)
{
    uint64_t lba;
    uint32_t n;

    if (!ide_prepare_rw(d, lba48, &lba, &n))
        return;
    d->xfer_lba = lba;
    d->xfer_left = n;
    d->host_left = n;
    d->drq_sectors = drq_sectors;
    d->chunk_len = d->chunk_pos = 0;
    ide_pio_read_next(d);
}

/* ---- PIO writes: DRQ blocks gathered in io_buffer, written a chunk at a time ---- */

static void ide_pio_write_block_done(IDEDevice *d);

static void ide_pio_write_start_block(IDEDevice *d)
{
    uint32_t n = d->drq_sectors;

    if (n > d->host_left)
        n = d->host_left;
    /* The block goes after what io_buffer already holds of this chunk. */
    ide_transfer_window(d, d->chunk_len, n * IDE_SECTOR_SIZE, true, ide_pio_write_block_done);
}

static void ide_pio_write_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    if (ret < 0) {
        ide_cmd_error(d, ATA_ERR_ABRT);
        return;
    }
    d->xfer_lba += req->len / IDE_SECTOR_SIZE;
    d->xfer_left -= req->len / IDE_SECTOR_SIZE;
    d->chunk_len = 0;
    if (d->host_left == 0) {
        ide_cmd_ok(d, true);
        return;
    }
    ide_pio_write_start_block(d);
    ide_set_irq(d);
}

static void ide_pio_write_block_done(IDEDevice *d)
{
    uint32_t got = d->data_end - d->chunk_len;

    d->chunk_len = d->data_end;
    d->host_left -= got / IDE_SECTOR_SIZE;
    d->data_pos = d->data_end = 0;
    /* Room for another block and more to come: accept it right away (write cache). */
    if (d->host_left > 0 &&
        d->chunk_len + (uint64_t)d->drq_sectors * IDE_SECTOR_SIZE <= IDE_BUF_SIZE) {
        ide_pio_write_start_block(d);
        ide_set_irq(d);
        return;
    }
    d->status = ATA_STAT_BSY | ATA_STAT_DRDY | ATA_STAT_DSC;
    IDEAioReq *req = ide_aio_new(d, d->chunk_len, ide_pio_write_cb);
    memcpy(req->buf, d->io_buffer, d->chunk_len);
    ide_aio_write(req, d->xfer_lba * IDE_SECTOR_SIZE);
}

static void ide_ata_write_pio(IDEDevice *d, bool lba48, uint32_t drq_sectors)
{
    uint64_t lba;
    uint32_t n;

    if (d->read_only) {
        ide_abort(d);
        return;
    }
    if (!ide_prepare_rw(d, lba48, &lba, &n))
        return;
    d->xfer_lba = lba;
    d->xfer_left = n;
    d->host_left = n;
    d->drq_sectors = drq_sectors;
    d->chunk_len = d->chunk_pos = 0;
    /* Data-out: DRQ for the first block without an interrupt (ATA-6 §9.6). */
    ide_pio_write_start_block(d);
}

/* ---- DMA commands ---- */

static void ide_ata_dma_done(IDEDevice *d, int err)
{
    if (err == 0) {
        ide_cmd_ok(d, true);
        return;
    }
    if (err == -EFAULT)
        ide_cmd_error(d, ATA_ERR_ABRT);
    else
        ide_cmd_error(d, d->dma.to_memory ? ATA_ERR_UNC : ATA_ERR_ABRT);
}

static void ide_ata_dma(IDEDevice *d, bool lba48, bool write)
{
    uint64_t lba;
    uint32_t n;

    if (write && d->read_only) {
        ide_abort(d);
        return;
    }
    if (!ide_prepare_rw(d, lba48, &lba, &n))
        return;
    ide_dma_setup(d, !write, lba * IDE_SECTOR_SIZE, n, IDE_SECTOR_SIZE, IDE_SECTOR_SIZE,
                  ide_ata_dma_done);
}

/* ---- IDENTIFY DEVICE (ATA/ATAPI-6 §8.15, Table 27) ---- */

/* ATA string: two characters per word, first in the high byte, space padded. */
void ide_padstr(uint8_t *words, const char *s, unsigned len)
{
    size_t sl = strlen(s);
    for (unsigned i = 0; i < len; i++) {
        char c = i < sl ? s[i] : ' ';
        words[i ^ 1] = (uint8_t)c;
    }
}

static void put_word(uint8_t *buf, unsigned w, uint16_t v)
{
    st16_le(buf + 2 * w, v);
}

static void ide_identify(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    uint64_t lba28 = d->nb_sectors > IDE_LBA28_MAX ? IDE_LBA28_MAX : d->nb_sectors;
    uint64_t cur_cyls = 0, chs_cap;

    memset(p, 0, 512);
    put_word(p, 0, 0x0040);                     /* fixed device, not removable */
    put_word(p, 1, (uint16_t)d->cyls);
    put_word(p, 3, (uint16_t)d->heads);
    put_word(p, 4, (uint16_t)(IDE_SECTOR_SIZE * d->secs));  /* obsolete, as old drives had */
    put_word(p, 5, IDE_SECTOR_SIZE);
    put_word(p, 6, (uint16_t)d->secs);
    ide_padstr(p + 20, d->serial, 20);          /* words 10-19 */
    put_word(p, 20, 3);                         /* obsolete: buffer type */
    put_word(p, 21, IDE_BUF_SIZE / IDE_SECTOR_SIZE);
    ide_padstr(p + 46, d->fwrev, 8);            /* words 23-26 */
    ide_padstr(p + 54, d->model, 40);           /* words 27-46 */
    put_word(p, 47, 0x8000 | IDE_MAX_MULT);
    put_word(p, 49, 1u << 11 | 1u << 9 | 1u << 8);  /* IORDY, LBA, DMA */
    put_word(p, 50, 0x4000);
    put_word(p, 51, 0x0200);                    /* obsolete PIO timing: mode 2 */
    put_word(p, 52, 0x0200);
    put_word(p, 53, 0x0007);                    /* words 54-58, 64-70 and 88 valid */
    if (d->cur_heads && d->cur_secs)
        cur_cyls = d->nb_sectors / (d->cur_heads * d->cur_secs);
    if (cur_cyls > 65535)
        cur_cyls = 65535;
    chs_cap = cur_cyls * d->cur_heads * d->cur_secs;
    put_word(p, 54, (uint16_t)cur_cyls);
    put_word(p, 55, (uint16_t)d->cur_heads);
    put_word(p, 56, (uint16_t)d->cur_secs);
    put_word(p, 57, (uint16_t)chs_cap);
    put_word(p, 58, (uint16_t)(chs_cap >> 16));
    if (d->mult_sectors)
        put_word(p, 59, 0x0100 | d->mult_sectors);
    put_word(p, 60, (uint16_t)lba28);
    put_word(p, 61, (uint16_t)(lba28 >> 16));
    /* Multiword DMA modes 0-2 supported, the selected one in the high byte. */
    put_word(p, 63, 0x0007 | ((d->xfer_mode & 0xf8) == XFER_MWDMA ?
                              0x0100 << (d->xfer_mode & 7) : 0));
    put_word(p, 64, 0x0003);                    /* PIO modes 3 and 4 */
    put_word(p, 65, 120);
    put_word(p, 66, 120);
    put_word(p, 67, 120);
    put_word(p, 68, 120);
    put_word(p, 80, 0x00f0);                    /* ATA-4 .. ATA-7 */
    put_word(p, 81, 0x0016);                    /* ATA/ATAPI-6 T13 1410D rev 0 */
    put_word(p, 82, 1u << 5 | 1u << 3);         /* write cache, power management */
    put_word(p, 83, 0x4000 | 1u << 13 | 1u << 12 | 1u << 10); /* FLUSH EXT, FLUSH, LBA48 */
    put_word(p, 84, 0x4000);
    put_word(p, 85, (d->write_cache ? 1u << 5 : 0) | 1u << 3);
    put_word(p, 86, 1u << 13 | 1u << 12 | 1u << 10);
    put_word(p, 87, 0x4000);
    /* Ultra DMA modes 0-5 supported, the selected one in the high byte. */
    put_word(p, 88, 0x003f | ((d->xfer_mode & 0xf8) == XFER_UDMA ?
                              0x0100 << (d->xfer_mode & 7) : 0));
    /* Hardware reset result: device 0/1 passed via the jumper, 80-conductor cable (bit 13). */
    put_word(p, 93, 0x4000 | 1u << 13 | (d->unit ? 0x0100 : 0x0001));
    put_word(p, 100, (uint16_t)d->nb_sectors);
    put_word(p, 101, (uint16_t)(d->nb_sectors >> 16));
    put_word(p, 102, (uint16_t)(d->nb_sectors >> 32));
    put_word(p, 103, (uint16_t)(d->nb_sectors >> 48));

    /* Word 255: signature A5h and a checksum making the 512 bytes sum to 0 (§8.15.61). */
    uint8_t sum = 0xa5;
    for (int i = 0; i < 510; i++)
        sum += p[i];
    p[510] = 0xa5;
    p[511] = (uint8_t)-sum;
}

static void ide_identify_done(IDEDevice *d)
{
    ide_cmd_ok(d, false);
}

/* ---- Other commands ---- */

static void ide_flush_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    if (ret < 0)
        ide_abort(d);
    else
        ide_cmd_ok(d, true);
}

static void ide_set_features(IDEDevice *d)
{
    switch (d->feature) {
    case SETFEATURES_WC_ON:
        d->write_cache = true;
        break;
    case SETFEATURES_WC_OFF:
        d->write_cache = false;
        break;
    case SETFEATURES_XFER: {
        uint8_t mode = d->nsector;
        uint8_t n = mode & 7;
        bool ok = mode == XFER_PIO_DEFAULT || mode == XFER_PIO_DEFAULT_NOIORDY ||
                  ((mode & 0xf8) == XFER_PIO_FLOW && n <= 4) ||
                  ((mode & 0xf8) == XFER_MWDMA && n <= 2) ||
                  ((mode & 0xf8) == XFER_UDMA && n <= 5);
        if (!ok) {
            ide_abort(d);
            return;
        }
        d->xfer_mode = mode;
        break;
    }
    case SETFEATURES_DIS_DEFECT:
    case SETFEATURES_EN_APM:
    case SETFEATURES_DIS_RLA:
    case SETFEATURES_EN_RLA:
    case SETFEATURES_DIS_RPOD:
    case SETFEATURES_EN_RPOD:
        break;
    default:
        LOG(LOG_UNIMP, "ide%d: SET FEATURES 0x%02x not supported\n", d->bus->channel,
            d->feature);
        ide_abort(d);
        return;
    }
    ide_cmd_ok(d, true);
}

static void ide_read_native_max(IDEDevice *d, bool lba48)
{
    uint64_t max = d->nb_sectors ? d->nb_sectors - 1 : 0;

    if (!lba48 && max > IDE_LBA28_MAX)
        max = IDE_LBA28_MAX;
    d->lbal = (uint8_t)max;
    d->lbam = (uint8_t)(max >> 8);
    d->lbah = (uint8_t)(max >> 16);
    if (lba48) {
        d->hob_lbal = (uint8_t)(max >> 24);
        d->hob_lbam = (uint8_t)(max >> 32);
        d->hob_lbah = (uint8_t)(max >> 40);
    } else {
        d->bus->select = (uint8_t)((d->bus->select & ~ATA_DEV_HEAD_MASK) |
                                   ((max >> 24) & ATA_DEV_HEAD_MASK));
    }
    ide_cmd_ok(d, true);
}

/* EXECUTE DEVICE DIAGNOSTIC: both devices run it whichever is selected (§8.11). */
static void ide_diagnose(IDEBus *bus)
{
    for (int i = 0; i < 2; i++)
        ide_device_reset_regs(&bus->dev[i]);
    /* Completion is signalled by device 0 (device 1 when alone). */
    bus->dev[bus->dev[0].kind == IDE_KIND_NONE ? 1 : 0].irq_pending = true;
    ide_update_irq(bus);
}

static void ide_exec_ata_cmd(IDEDevice *d, uint8_t cmd)
{
    switch (cmd) {
    case WIN_IDENTIFY:
        ide_identify(d);
        ide_transfer_start(d, IDE_SECTOR_SIZE, false, ide_identify_done);
        ide_set_irq(d);
        return;
    case WIN_READ:
    case WIN_READ_NORETRY:
        ide_ata_read_pio(d, false, 1);
        return;
    case WIN_READ_EXT:
        ide_ata_read_pio(d, true, 1);
        return;
    case WIN_MULTREAD:
    case WIN_MULTREAD_EXT:
        if (!d->mult_sectors) {
            ide_abort(d);
            return;
        }
        ide_ata_read_pio(d, cmd == WIN_MULTREAD_EXT, d->mult_sectors);
        return;
    case WIN_WRITE:
    case WIN_WRITE_NORETRY:
        ide_ata_write_pio(d, false, 1);
        return;
    case WIN_WRITE_EXT:
        ide_ata_write_pio(d, true, 1);
        return;
    case WIN_MULTWRITE:
    case WIN_MULTWRITE_EXT:
        if (!d->mult_sectors) {
            ide_abort(d);
            return;
        }
        ide_ata_write_pio(d, cmd == WIN_MULTWRITE_EXT, d->mult_sectors);
        return;
    case WIN_READDMA:
    case WIN_READDMA_NORETRY:
        ide_ata_dma(d, false, false);
        return;
    case WIN_READDMA_EXT:
        ide_ata_dma(d, true, false);
        return;
    case WIN_WRITEDMA:
    case WIN_WRITEDMA_NORETRY:
        ide_ata_dma(d, false, true);
        return;
    case WIN_WRITEDMA_EXT:
        ide_ata_dma(d, true, true);
        return;
    case WIN_VERIFY:
    case WIN_VERIFY_NORETRY:
    case WIN_VERIFY_EXT: {
        uint64_t lba;
        uint32_t n;
        if (ide_prepare_rw(d, cmd == WIN_VERIFY_EXT, &lba, &n))
            ide_cmd_ok(d, true);
        return;
    }
    case WIN_SETMULT:
        /* 0 disables; otherwise a power of two up to what word 47 advertises. */
        if (d->nsector > IDE_MAX_MULT || (d->nsector & (d->nsector - 1))) {
            ide_abort(d);
            return;
        }
        d->mult_sectors = d->nsector;
        ide_cmd_ok(d, true);
        return;
    case WIN_FLUSH_CACHE:
    case WIN_FLUSH_CACHE_EXT: {
        d->status = ATA_STAT_BSY | ATA_STAT_DRDY | ATA_STAT_DSC;
        ide_aio_flush(ide_aio_new(d, 0, ide_flush_cb));
        return;
    }
    case WIN_SETFEATURES:
        ide_set_features(d);
        return;
    case WIN_SPECIFY:
        if (d->nsector == 0) {
            ide_abort(d);
            return;
        }
        d->cur_secs = d->nsector;
        d->cur_heads = (d->bus->select & ATA_DEV_HEAD_MASK) + 1u;
        ide_cmd_ok(d, true);
        return;
    case WIN_STANDBYNOW1:
    case WIN_IDLEIMMEDIATE:
    case WIN_STANDBY:
    case WIN_SETIDLE1:
    case WIN_SLEEPNOW1:
        ide_cmd_ok(d, true);
        return;
    case WIN_CHECKPOWERMODE1:
        d->nsector = 0xff;          /* active or idle */
        ide_cmd_ok(d, true);
        return;
    case WIN_READ_NATIVE_MAX:
        ide_read_native_max(d, false);
        return;
    case WIN_READ_NATIVE_MAX_EXT:
        ide_read_native_max(d, true);
        return;
    default:
        if ((cmd & 0xf0) == WIN_RECALIBRATE || (cmd & 0xf0) == WIN_SEEK) {
            ide_cmd_ok(d, true);
            return;
        }
        LOG(LOG_UNIMP, "ide%d: ATA command 0x%02x not supported\n", d->bus->channel, cmd);
        ide_abort(d);
        return;
    }
}

static void ide_exec_atapi_cmd(IDEDevice *d, uint8_t cmd)
{
    switch (cmd) {
    case WIN_PIDENTIFY:
        atapi_identify(d);
        ide_transfer_start(d, IDE_SECTOR_SIZE, false, ide_identify_done);
        d->status = ATA_STAT_DRDY | ATA_STAT_DRQ;
        ide_set_irq(d);
        return;
    case WIN_PACKETCMD:
        atapi_packet_cmd(d);
        return;
    case WIN_DEVICE_RESET:
        ide_device_reset_regs(d);
        atapi_reset(d, false);
        return;
    case WIN_IDENTIFY:
        /* A PACKET device aborts IDENTIFY DEVICE and shows its signature (§8.15). */
        ide_set_signature(d);
        ide_abort(d);
        return;
    case WIN_SETFEATURES:
        ide_set_features(d);
        return;
    case WIN_STANDBYNOW1:
    case WIN_IDLEIMMEDIATE:
    case WIN_STANDBY:
    case WIN_SETIDLE1:
    case WIN_SLEEPNOW1:
        ide_cmd_ok(d, true);
        d->status = ATA_STAT_DRDY;
        return;
    case WIN_CHECKPOWERMODE1:
        d->nsector = 0xff;
        ide_cmd_ok(d, true);
        d->status = ATA_STAT_DRDY;
        return;
    default:
        LOG(LOG_UNIMP, "ide%d: command 0x%02x not supported by a PACKET device\n",
            d->bus->channel, cmd);
        ide_abort(d);
        return;
    }
}

static void ide_exec_cmd(IDEBus *bus, uint8_t cmd)
{
    IDEDevice *d = ide_selected(bus);

    if (d->kind == IDE_KIND_NONE)
        return;                             /* nobody answers */
    if (cmd == WIN_DIAGNOSE) {
        ide_diagnose(bus);
        return;
    }
    /* Only DEVICE RESET may interrupt a PACKET device that is still busy. */
    if ((d->status & (ATA_STAT_BSY | ATA_STAT_DRQ)) &&
        !(d->kind == IDE_KIND_CD && cmd == WIN_DEVICE_RESET)) {
        LOG(LOG_GUEST_ERROR, "ide%d: command 0x%02x while busy (status 0x%02x) ignored\n",
            bus->channel, cmd, d->status);
        return;
    }
    d->cmd = cmd;
    d->error = 0;
    d->irq_pending = false;
    ide_update_irq(bus);
    if (d->kind == IDE_KIND_CD)
        ide_exec_atapi_cmd(d, cmd);
    else
        ide_exec_ata_cmd(d, cmd);
}

/* ---- Register access ---- */

static uint8_t ide_reg_read(IDEBus *bus, unsigned reg)
{
    IDEDevice *d = ide_selected(bus);
    bool hob = bus->devctl & ATA_CTL_HOB;

    if (ide_bus_empty(bus))
        return 0xff;
    switch (reg) {
    case ATA_REG_ERROR:
        return hob ? d->hob_feature : d->error;
    case ATA_REG_NSECTOR:
        return hob ? d->hob_nsector : d->nsector;
    case ATA_REG_LBAL:
        return hob ? d->hob_lbal : d->lbal;
    case ATA_REG_LBAM:
        return hob ? d->hob_lbam : d->lbam;
    case ATA_REG_LBAH:
        return hob ? d->hob_lbah : d->lbah;
    case ATA_REG_DEVICE:
        return bus->select | ATA_DEV_OBS;
    case ATA_REG_STATUS:
        if (d->kind == IDE_KIND_NONE)
            return 0;
        /* Reading Status acknowledges the interrupt (§7.15). */
        ide_clear_irq(d);
        return d->status;
    }
    return 0xff;
}

static void ide_reg_write(IDEBus *bus, unsigned reg, uint8_t val)
{
    /* Any command block write clears HOB (ATA/ATAPI-6 §7.9). */
    bus->devctl &= ~ATA_CTL_HOB;
    switch (reg) {
    case ATA_REG_FEATURE:
    case ATA_REG_NSECTOR:
    case ATA_REG_LBAL:
    case ATA_REG_LBAM:
    case ATA_REG_LBAH:
        for (int i = 0; i < 2; i++) {
            IDEDevice *d = &bus->dev[i];
            switch (reg) {
            case ATA_REG_FEATURE: d->hob_feature = d->feature; d->feature = val; break;
            case ATA_REG_NSECTOR: d->hob_nsector = d->nsector; d->nsector = val; break;
            case ATA_REG_LBAL:    d->hob_lbal = d->lbal; d->lbal = val; break;
            case ATA_REG_LBAM:    d->hob_lbam = d->lbam; d->lbam = val; break;
            case ATA_REG_LBAH:    d->hob_lbah = d->lbah; d->lbah = val; break;
            }
        }
        break;
    case ATA_REG_DEVICE:
        bus->select = val & ~ATA_DEV_OBS;
        ide_update_irq(bus);
        break;
    case ATA_REG_COMMAND:
        ide_exec_cmd(bus, val);
        break;
    }
}

uint32_t ide_cmd_read(IDEBus *bus, unsigned reg, unsigned size)
{
    uint32_t v = 0;

    if (!bus->decode || reg > 7)
        return 0xffffffffu >> (32 - 8 * size);
    if (reg == ATA_REG_DATA) {
        if (ide_bus_empty(bus))
            return 0xffffffffu >> (32 - 8 * size);
        return ide_data_read(ide_selected(bus), size);
    }
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)(reg + i <= 7 ? ide_reg_read(bus, reg + i) : 0xff) << (8 * i);
    return v;
}

void ide_cmd_write(IDEBus *bus, unsigned reg, uint32_t val, unsigned size)
{
    if (!bus->decode || reg > 7)
        return;
    if (reg == ATA_REG_DATA) {
        IDEDevice *d = ide_selected(bus);
        if (d->kind != IDE_KIND_NONE)
            ide_data_write(d, val, size);
        return;
    }
    for (unsigned i = 0; i < size && reg + i <= 7; i++)
        ide_reg_write(bus, reg + i, (uint8_t)(val >> (8 * i)));
}

/* Alternate Status: Status without acknowledging the interrupt. */
uint8_t ide_ctrl_read(IDEBus *bus)
{
    IDEDevice *d = ide_selected(bus);

    if (!bus->decode || ide_bus_empty(bus))
        return 0xff;
    if (d->kind == IDE_KIND_NONE)
        return 0;
    return d->status;
}

void ide_ctrl_write(IDEBus *bus, uint8_t val)
{
    uint8_t old = bus->devctl;

    if (!bus->decode)
        return;
    bus->devctl = val;
    if ((val & ATA_CTL_SRST) && !(old & ATA_CTL_SRST)) {
        /* SRST asserted: both devices abort and stay busy until it drops (§9.2). */
        for (int i = 0; i < 2; i++) {
            IDEDevice *d = &bus->dev[i];
            if (d->kind == IDE_KIND_NONE)
                continue;
            ide_cancel(d);
            d->irq_pending = false;
            d->status = ATA_STAT_BSY;
        }
    } else if (!(val & ATA_CTL_SRST) && (old & ATA_CTL_SRST)) {
        for (int i = 0; i < 2; i++) {
            ide_device_reset_regs(&bus->dev[i]);
            if (bus->dev[i].kind == IDE_KIND_CD)
                atapi_reset(&bus->dev[i], false);
        }
        bus->select = 0;
    }
    ide_update_irq(bus);
}

/* ---- Set-up ---- */

void ide_bus_init(IDEBus *bus, int channel, IrqLine *irq, BMDMAState *bm)
{
    memset(bus, 0, sizeof(*bus));
    bus->channel = channel;
    bus->irq = irq;
    bus->bm = bm;
    bus->decode = true;
    for (int i = 0; i < 2; i++) {
        bus->dev[i].bus = bus;
        bus->dev[i].unit = i;
        bus->dev[i].kind = IDE_KIND_NONE;
    }
}

/* QEMU-style default geometry: 16 heads, 63 sectors, cylinders capped at 16383. */
static void ide_guess_geometry(IDEDevice *d)
{
    uint64_t cyls = d->nb_sectors / (IDE_DEFAULT_HEADS * IDE_DEFAULT_SECS);

    if (cyls > IDE_MAX_CYLS)
        cyls = IDE_MAX_CYLS;
    if (cyls < 1)
        cyls = 1;
    d->cyls = (unsigned)cyls;
    d->heads = IDE_DEFAULT_HEADS;
    d->secs = IDE_DEFAULT_SECS;
}

bool ide_device_attach(IDEDevice *d, IDEKind kind, BlockBackend *blk, bool read_only,
                       GError **errp)
{
    d->kind = kind;
    d->blk = blk;
    d->read_only = read_only || (blk && blk_is_read_only(blk));
    if (!d->io_buffer)
        d->io_buffer = g_malloc0(IDE_BUF_SIZE);
    snprintf(d->serial, sizeof(d->serial), "KST%05u", ++ide_serial_counter);
    snprintf(d->fwrev, sizeof(d->fwrev), "%s", "1.0");
    if (kind == IDE_KIND_HD) {
        int64_t len = blk ? blk_getlength(blk) : -1;
        if (len < 0) {
            kestrel_set_error(errp, "ide: cannot get the size of disk image %s",
                              blk ? blk_filename(blk) : "(none)");
            return false;
        }
        d->nb_sectors = (uint64_t)len / IDE_SECTOR_SIZE;
        snprintf(d->model, sizeof(d->model), "%s", "KESTREL HARDDISK");
        ide_guess_geometry(d);
    } else {
        snprintf(d->model, sizeof(d->model), "%s", "KESTREL CD-ROM");
        atapi_media_changed(d, blk);
        d->unit_attention = false;          /* present from power-on: no change to report */
        d->media_event = 0;
    }
    d->cur_heads = d->heads;
    d->cur_secs = d->secs;
    return true;
}

/*
 * ATAPI CD-ROM: the PACKET command protocol and the MMC packet commands a
 * BIOS (El Torito boot), boot loaders and Linux's sr/cdrom drivers use.
 *
 * Follows ATA/ATAPI-6 (T13/1410D) §8.21 (PACKET: the 12-byte command packet
 * with CoD=1/IO=0, the byte count limit in LBA mid/high, one interrupt per
 * DRQ block, the status phase with CoD=1/IO=1), §8.16 (IDENTIFY PACKET
 * DEVICE) and §8.10 (DEVICE RESET); the commands and their data follow
 * SCSI MMC-3 (T10/1363-D): TEST UNIT READY, REQUEST SENSE (fixed format),
 * INQUIRY, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, READ CAPACITY,
 * READ(10)/(12), READ CD (user data or raw 2352-byte sectors), READ TOC/PMA/
 * ATIP formats 0, 1 and 2, GET CONFIGURATION (Profile List, Core, Removable
 * Medium, Random Readable, CD Read), GET EVENT STATUS NOTIFICATION (polled,
 * media class), MODE SENSE(10) pages 01h, 2Ah and 3Fh, MODE SELECT (data
 * accepted and ignored), READ DISC INFORMATION, SEEK, SET CD SPEED and
 * MECHANISM STATUS.  Sense keys and ASC/ASCQ values are from SPC-3 Annex D.
 *
 * The medium is one data track of 2048-byte sectors (an ISO image).  A
 * drive created without an image is an empty tray; TEST UNIT READY etc.
 * answer NOT READY / MEDIUM NOT PRESENT.  START STOP UNIT opens and closes
 * the tray; closing it over a medium raises UNIT ATTENTION (28h, "medium may
 * have changed") and a New Media event.
 *
 * Not modelled: audio tracks and play commands, multi-session discs,
 * recordable media and write commands, DVD structures, EDC/ECC of raw
 * sectors (left zero), sub-channel data, MODE SENSE(6).
 */
#include "hw/ide/ide_internal.h"
#include "kestrel/log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---- MMC-3 operation codes ---- */

#define GPCMD_TEST_UNIT_READY           0x00
#define GPCMD_REQUEST_SENSE             0x03
#define GPCMD_INQUIRY                   0x12
#define GPCMD_MODE_SELECT_6             0x15
#define GPCMD_START_STOP_UNIT           0x1b
#define GPCMD_PREVENT_ALLOW_MEDIUM      0x1e
#define GPCMD_READ_CAPACITY             0x25
#define GPCMD_READ_10                   0x28
#define GPCMD_SEEK_10                   0x2b
#define GPCMD_READ_TOC_PMA_ATIP         0x43
#define GPCMD_GET_CONFIGURATION         0x46
#define GPCMD_GET_EVENT_STATUS          0x4a
#define GPCMD_READ_DISC_INFO            0x51
#define GPCMD_MODE_SELECT_10            0x55
#define GPCMD_MODE_SENSE_10             0x5a
#define GPCMD_READ_12                   0xa8
#define GPCMD_SET_CD_SPEED              0xbb
#define GPCMD_MECHANISM_STATUS          0xbd
#define GPCMD_READ_CD                   0xbe

/* Sense keys (SPC-3 §4.5.6) */
#define SENSE_NONE                      0x00
#define SENSE_NOT_READY                 0x02
#define SENSE_MEDIUM_ERROR              0x03
#define SENSE_ILLEGAL_REQUEST           0x05
#define SENSE_UNIT_ATTENTION            0x06
#define SENSE_ABORTED_COMMAND           0x0b

/* Additional sense codes (SPC-3 Annex D) */
#define ASC_UNRECOVERED_READ_ERROR      0x11
#define ASC_INVALID_OPCODE              0x20
#define ASC_LBA_OUT_OF_RANGE            0x21
#define ASC_INVALID_FIELD_IN_CDB        0x24
#define ASC_MEDIUM_MAY_HAVE_CHANGED     0x28
#define ASC_SAVING_NOT_SUPPORTED        0x39
#define ASC_MEDIUM_NOT_PRESENT          0x3a
#define  ASCQ_TRAY_CLOSED                0x01
#define  ASCQ_TRAY_OPEN                  0x02
#define ASC_MEDIUM_REMOVAL_PREVENTED    0x53
#define  ASCQ_REMOVAL_PREVENTED          0x02
#define ASC_NO_ADDITIONAL_INFO          0x00

/* MODE SENSE pages */
#define MODE_PAGE_R_W_ERROR             0x01
#define MODE_PAGE_CAPABILITIES          0x2a
#define MODE_PAGE_ALL                   0x3f
#define MODE_PC_SAVED                   3

/* GET CONFIGURATION feature codes and profiles (MMC-3 §5.2, §5.3) */
#define FEATURE_PROFILE_LIST            0x0000
#define FEATURE_CORE                    0x0001
#define FEATURE_REMOVABLE_MEDIUM        0x0003
#define FEATURE_RANDOM_READABLE         0x0010
#define FEATURE_CD_READ                 0x001e
#define PROFILE_CD_ROM                  0x0008
#define INTERFACE_ATAPI                 2

/* GET EVENT STATUS NOTIFICATION (MMC-3 §6.6) */
#define GESN_POLLED                     0x01
#define GESN_CLASS_MEDIA                4
#define GESN_NEA                        0x80
#define MEDIA_EVENT_NONE                0
#define MEDIA_EVENT_EJECT_REQUEST       1
#define MEDIA_EVENT_NEW_MEDIA           2
#define MEDIA_EVENT_MEDIA_REMOVAL       3
#define MEDIA_STATUS_TRAY_OPEN          0x01
#define MEDIA_STATUS_PRESENT            0x02

/* TOC */
#define TOC_ADR_CONTROL_DATA            0x14    /* ADR 1 (Q mode 1), control 4: data track */
#define TOC_LEADOUT                     0xaa
#define CD_FRAMES_PER_SEC               75
#define CD_MSF_OFFSET                   150     /* LBA 0 is 00:02:00 */

/* IDENTIFY PACKET DEVICE word 0: ATAPI, CD-ROM (type 5), removable, DRQ within 50 us. */
#define ATAPI_ID_CONFIG                 0x85c0

/* ---- Helpers ---- */

static bool atapi_medium_present(IDEDevice *d)
{
    return d->blk && !d->tray_open;
}

static void atapi_set_sense(IDEDevice *d, uint8_t key, uint8_t asc, uint8_t ascq)
{
    d->sense_key = key;
    d->asc = asc;
    d->ascq = ascq;
}

/* Status phase: CoD=1, IO=1 (§8.21.5). */
static void atapi_cmd_ok(IDEDevice *d)
{
    d->status = ATA_STAT_DRDY | ATA_STAT_DSC;
    d->error = 0;
    d->nsector = ATAPI_INTR_IO | ATAPI_INTR_COD;
    ide_set_irq(d);
}

/* CHECK CONDITION: sense key in the error register's high nibble, ERR in status. */
static void atapi_check_condition(IDEDevice *d, uint8_t key, uint8_t asc, uint8_t ascq)
{
    atapi_set_sense(d, key, asc, ascq);
    d->status = ATA_STAT_DRDY | ATA_STAT_ERR;
    d->error = (uint8_t)(key << 4);
    if (key == SENSE_ILLEGAL_REQUEST || key == SENSE_ABORTED_COMMAND)
        d->error |= ATA_ERR_ABRT;
    d->nsector = ATAPI_INTR_IO | ATAPI_INTR_COD;
    ide_set_irq(d);
}

static void atapi_invalid_field(IDEDevice *d)
{
    atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0);
}

static bool atapi_check_ready(IDEDevice *d)
{
    if (atapi_medium_present(d))
        return true;
    atapi_check_condition(d, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT,
                          d->tray_open ? ASCQ_TRAY_OPEN : ASCQ_TRAY_CLOSED);
    return false;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void lba_to_msf(uint64_t lba, uint8_t *m, uint8_t *s, uint8_t *f)
{
    uint64_t frames = lba + CD_MSF_OFFSET;
    *f = (uint8_t)(frames % CD_FRAMES_PER_SEC);
    *s = (uint8_t)((frames / CD_FRAMES_PER_SEC) % 60);
    *m = (uint8_t)(frames / (CD_FRAMES_PER_SEC * 60));
}

/* A TOC address: LBA, or 0/M/S/F with the MSF bit (MMC-3 §6.26.2.1). */
static void put_toc_addr(uint8_t *p, uint64_t lba, bool msf)
{
    if (msf) {
        p[0] = 0;
        lba_to_msf(lba, &p[1], &p[2], &p[3]);
    } else {
        put_be32(p, (uint32_t)lba);
    }
}

static uint8_t to_bcd(uint8_t v)
{
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

/*
 * A raw (2352-byte) mode 1 sector: 12-byte sync, BCD MSF header, mode 1,
 * 2048 bytes of user data, then EDC/ECC (left zero; see the header).
 */
void ide_cd_sector_raw(uint8_t *out, const uint8_t *data, uint64_t lba)
{
    uint8_t m, s, f;

    memset(out, 0, CD_RAW_SECTOR_SIZE);
    memset(out + 1, 0xff, 10);
    lba_to_msf(lba, &m, &s, &f);
    out[12] = to_bcd(m);
    out[13] = to_bcd(s);
    out[14] = to_bcd(f);
    out[15] = 1;
    memcpy(out + 16, data, CD_SECTOR_SIZE);
}

/* Effective byte count limit: even, 0 and FFFFh mean "as much as fits" (§8.21.4). */
static uint32_t atapi_bcl(IDEDevice *d)
{
    uint32_t bcl = d->byte_count_limit;
    if (bcl == 0 || bcl == 0xffff)
        bcl = 0xfffe;
    return bcl & ~1u;
}

/* ---- Data phases ---- */

static void atapi_pio_next(IDEDevice *d);

static void atapi_pio_block_done(IDEDevice *d)
{
    d->chunk_pos = d->data_end;
    atapi_pio_next(d);
}

static void atapi_read_chunk_cb(IDEDevice *d, IDEAioReq *req, int ret)
{
    uint32_t n = (uint32_t)(req->len / CD_SECTOR_SIZE);

    if (ret < 0) {
        atapi_check_condition(d, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, 0);
        return;
    }
    if (d->cd_out_secsize == CD_RAW_SECTOR_SIZE) {
        for (uint32_t i = 0; i < n; i++)
            ide_cd_sector_raw(d->io_buffer + (size_t)i * CD_RAW_SECTOR_SIZE,
                              req->buf + (size_t)i * CD_SECTOR_SIZE, d->xfer_lba + i);
    } else {
        memcpy(d->io_buffer, req->buf, req->len);
    }
    d->chunk_len = n * d->cd_out_secsize;
    d->chunk_pos = 0;
    d->xfer_lba += n;
    d->xfer_left -= n;
    atapi_pio_next(d);
}

/*
 * Next DRQ block of a data-in command: the rest of io_buffer in pieces of
 * the byte count limit, then (for reads) the next chunk of the image, then
 * the status phase.
 */
static void atapi_pio_next(IDEDevice *d)
{
    if (d->chunk_pos < d->chunk_len) {
        uint32_t n = d->chunk_len - d->chunk_pos;
        uint32_t bcl = atapi_bcl(d);
        if (n > bcl)
            n = bcl;
        ide_transfer_window(d, d->chunk_pos, n, false, atapi_pio_block_done);
        d->nsector = ATAPI_INTR_IO;
        d->lbam = (uint8_t)n;
        d->lbah = (uint8_t)(n >> 8);
        ide_set_irq(d);
        return;
    }
    if (d->xfer_left > 0) {
        uint32_t n = IDE_BUF_SIZE / d->cd_out_secsize;
        if (n > d->xfer_left)
            n = d->xfer_left;
        d->chunk_len = d->chunk_pos = 0;
        d->status = ATA_STAT_BSY | ATA_STAT_DRDY;
        IDEAioReq *req = ide_aio_new(d, (size_t)n * CD_SECTOR_SIZE, atapi_read_chunk_cb);
        ide_aio_read(req, d->xfer_lba * CD_SECTOR_SIZE);
        return;
    }
    atapi_cmd_ok(d);
}

static void atapi_dma_done(IDEDevice *d, int err)
{
    if (err == 0)
        atapi_cmd_ok(d);
    else if (err == -EFAULT)
        atapi_check_condition(d, SENSE_ABORTED_COMMAND, ASC_NO_ADDITIONAL_INFO, 0);
    else
        atapi_check_condition(d, SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, 0);
}

/* Send io_buffer[0..len), cut to the command's allocation length. */
static void atapi_send(IDEDevice *d, uint32_t len, uint32_t alloc)
{
    if (len > alloc)
        len = alloc;
    if (len == 0) {
        atapi_cmd_ok(d);
        return;
    }
    if (d->packet_dma) {
        ide_dma_setup_buffer(d, true, len, atapi_dma_done);
        return;
    }
    d->xfer_left = 0;
    d->chunk_len = len;
    d->chunk_pos = 0;
    atapi_pio_next(d);
}

static void atapi_out_block_done(IDEDevice *d)
{
    d->chunk_pos = d->data_end;
    if (d->chunk_pos < d->chunk_len) {
        uint32_t n = d->chunk_len - d->chunk_pos;
        uint32_t bcl = atapi_bcl(d);
        if (n > bcl)
            n = bcl;
        ide_transfer_window(d, d->chunk_pos, n, true, atapi_out_block_done);
        d->nsector = 0;
        d->lbam = (uint8_t)n;
        d->lbah = (uint8_t)(n >> 8);
        ide_set_irq(d);
        return;
    }
    atapi_cmd_ok(d);
}

/* Data-out phase whose data is accepted and dropped (MODE SELECT). */
static void atapi_receive_and_ignore(IDEDevice *d, uint32_t len)
{
    if (len == 0) {
        atapi_cmd_ok(d);
        return;
    }
    if (len > IDE_BUF_SIZE)
        len = IDE_BUF_SIZE;
    if (d->packet_dma) {
        ide_dma_setup_buffer(d, false, len, atapi_dma_done);
        return;
    }
    d->chunk_len = len;
    d->data_end = 0;
    atapi_out_block_done(d);
}

/* READ(10)/(12)/CD: sectors from the image, by PIO or DMA. */
static void atapi_read(IDEDevice *d, uint64_t lba, uint64_t n, unsigned out_secsize)
{
    if (!atapi_check_ready(d))
        return;
    if (lba > d->nb_sectors || n > d->nb_sectors - lba) {
        LOG(LOG_GUEST_ERROR, "ide%d: CD read %" PRIu64 "+%" PRIu64 " beyond %" PRIu64 "\n",
            d->bus->channel, lba, n, d->nb_sectors);
        atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
        return;
    }
    if (n == 0) {
        atapi_cmd_ok(d);
        return;
    }
    d->cd_out_secsize = out_secsize;
    if (d->packet_dma) {
        ide_dma_setup(d, true, lba * CD_SECTOR_SIZE, n, CD_SECTOR_SIZE, out_secsize,
                      atapi_dma_done);
        return;
    }
    d->xfer_lba = lba;
    d->xfer_left = (uint32_t)n;
    d->chunk_len = d->chunk_pos = 0;
    atapi_pio_next(d);
}

/* ---- Commands with data built here ---- */

static void atapi_inquiry(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    uint32_t alloc = be16(d->packet + 3);

    if (d->packet[1] & 1) {             /* EVPD: no vital product data pages */
        atapi_invalid_field(d);
        return;
    }
    memset(p, 0, 36);
    p[0] = 0x05;                        /* peripheral device type: CD/DVD */
    p[1] = 0x80;                        /* removable */
    p[2] = 0x05;                        /* SPC-3 */
    p[3] = 0x02;                        /* response data format 2 */
    p[4] = 36 - 5;
    memcpy(p + 8, "KESTREL ", 8);
    memcpy(p + 16, "CD-ROM          ", 16);
    memcpy(p + 32, "1.0 ", 4);
    atapi_send(d, 36, alloc);
}

static void atapi_request_sense(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;

    if (d->unit_attention) {
        d->unit_attention = false;
        atapi_set_sense(d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED, 0);
    }
    memset(p, 0, 18);
    p[0] = 0x70;                        /* current error, fixed format */
    p[2] = d->sense_key;
    p[7] = 18 - 8;
    p[12] = d->asc;
    p[13] = d->ascq;
    /* Reported: the condition is cleared (SPC-3 §5.11). */
    atapi_set_sense(d, SENSE_NONE, 0, 0);
    atapi_send(d, 18, d->packet[4]);
}

static void atapi_read_capacity(IDEDevice *d)
{
    if (!atapi_check_ready(d))
        return;
    uint64_t last = d->nb_sectors ? d->nb_sectors - 1 : 0;
    put_be32(d->io_buffer, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
    put_be32(d->io_buffer + 4, CD_SECTOR_SIZE);
    atapi_send(d, 8, 8);
}

static void atapi_read_toc(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    bool msf = d->packet[1] & 0x02;
    uint8_t start = d->packet[6];
    uint32_t alloc = be16(d->packet + 7);
    unsigned format = d->packet[2] & 0x0f;
    unsigned len;

    if (!atapi_check_ready(d))
        return;
    /* SFF-8020i put the format in bits 7:6 of the control byte. */
    if (format == 0)
        format = d->packet[9] >> 6;
    memset(p, 0, 64);
    switch (format) {
    case 0:                             /* formatted TOC: track 1 and the lead-out */
        if (start > 1 && start != TOC_LEADOUT) {
            atapi_invalid_field(d);
            return;
        }
        p[2] = 1;
        p[3] = 1;
        len = 4;
        if (start <= 1) {
            p[len + 1] = TOC_ADR_CONTROL_DATA;
            p[len + 2] = 1;
            put_toc_addr(p + len + 4, 0, msf);
            len += 8;
        }
        p[len + 1] = TOC_ADR_CONTROL_DATA;
        p[len + 2] = TOC_LEADOUT;
        put_toc_addr(p + len + 4, d->nb_sectors, msf);
        len += 8;
        break;
    case 1:                             /* multi-session info: one session */
        p[2] = 1;
        p[3] = 1;
        p[5] = TOC_ADR_CONTROL_DATA;
        p[6] = 1;
        put_toc_addr(p + 8, 0, msf);
        len = 12;
        break;
    case 2: {                           /* raw TOC: points A0, A1, A2 and track 1 */
        static const uint8_t points[] = { 0xa0, 0xa1, 0xa2, 0x01 };
        p[2] = 1;
        p[3] = 1;
        len = 4;
        for (unsigned i = 0; i < ARRAY_LEN(points); i++) {
            uint8_t *q = p + len;
            q[0] = 1;                   /* session */
            q[1] = TOC_ADR_CONTROL_DATA;
            q[3] = points[i];
            if (points[i] == 0xa0) {
                q[8] = 1;               /* first track */
                q[9] = 0x00;            /* disc type: CD-DA or CD-ROM */
            } else if (points[i] == 0xa1) {
                q[8] = 1;               /* last track */
            } else if (points[i] == 0xa2) {
                lba_to_msf(d->nb_sectors, &q[8], &q[9], &q[10]);
            } else {
                lba_to_msf(0, &q[8], &q[9], &q[10]);
            }
            len += 11;
        }
        break;
    }
    default:
        atapi_invalid_field(d);
        return;
    }
    put_be16(p, (uint16_t)(len - 2));
    atapi_send(d, len, alloc);
}

/* Mode page 2Ah (MMC-3 §6.3.11, the 20-byte form). */
static unsigned atapi_page_capabilities(IDEDevice *d, uint8_t *q, bool changeable)
{
    memset(q, 0, 20);
    q[0] = MODE_PAGE_CAPABILITIES;
    q[1] = 20 - 2;
    if (changeable)
        return 20;
    q[2] = 0x00;                        /* reads CD-ROM only */
    q[3] = 0x00;                        /* writes nothing */
    q[4] = 0x71;                        /* audio play, mode 2 form 1/2, multi-session */
    q[5] = 0x00;
    /* tray loader, eject, lock supported, current lock state */
    q[6] = 0x29 | (d->locked ? 0x02 : 0);
    q[7] = 0x00;
    put_be16(q + 8, 706);               /* max read speed, kB/s (4x) */
    put_be16(q + 10, 0);                /* volume levels */
    put_be16(q + 12, 512);              /* buffer size, KiB */
    put_be16(q + 14, 706);              /* current read speed */
    return 20;
}

/* Mode page 01h, read error recovery (MMC-3 §6.3.6). */
static unsigned atapi_page_error_recovery(uint8_t *q, bool changeable)
{
    memset(q, 0, 8);
    q[0] = MODE_PAGE_R_W_ERROR;
    q[1] = 8 - 2;
    if (!changeable)
        q[3] = 5;                       /* read retry count */
    return 8;
}

static void atapi_mode_sense(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    unsigned pc = d->packet[2] >> 6;
    unsigned page = d->packet[2] & 0x3f;
    uint32_t alloc = be16(d->packet + 7);
    bool changeable = pc == 1;
    unsigned len = 8;

    if (pc == MODE_PC_SAVED) {
        atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
        return;
    }
    memset(p, 0, 8);
    switch (page) {
    case MODE_PAGE_R_W_ERROR:
        len += atapi_page_error_recovery(p + len, changeable);
        break;
    case MODE_PAGE_CAPABILITIES:
        len += atapi_page_capabilities(d, p + len, changeable);
        break;
    case MODE_PAGE_ALL:
        len += atapi_page_error_recovery(p + len, changeable);
        len += atapi_page_capabilities(d, p + len, changeable);
        break;
    default:
        atapi_invalid_field(d);
        return;
    }
    put_be16(p, (uint16_t)(len - 2));
    /* medium type: 120 mm data CD, or "door closed, no disc" / "door open" */
    p[2] = atapi_medium_present(d) ? 0x01 : (d->tray_open ? 0x71 : 0x70);
    atapi_send(d, len, alloc);
}

static void atapi_get_configuration(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    unsigned rt = d->packet[1] & 3;
    uint16_t start = be16(d->packet + 2);
    uint32_t alloc = be16(d->packet + 7);
    bool medium = atapi_medium_present(d);
    unsigned len = 8;
    /* Feature descriptors: code, current, then the additional bytes. */
    struct { uint16_t code; bool current; uint8_t version; uint8_t data[8]; uint8_t dlen; } f[] = {
        { FEATURE_PROFILE_LIST, true, 0,
          { PROFILE_CD_ROM >> 8, PROFILE_CD_ROM & 0xff, medium ? 1 : 0, 0 }, 4 },
        { FEATURE_CORE, true, 0, { 0, 0, 0, INTERFACE_ATAPI }, 4 },
        { FEATURE_REMOVABLE_MEDIUM, true, 0, { 0x29 | (d->locked ? 0x04 : 0), 0, 0, 0 }, 4 },
        { FEATURE_RANDOM_READABLE, medium, 0,
          { 0, 0, CD_SECTOR_SIZE >> 8, CD_SECTOR_SIZE & 0xff, 0, 1, 0, 0 }, 8 },
        { FEATURE_CD_READ, medium, 0, { 0, 0, 0, 0 }, 4 },
    };

    if (rt == 3) {
        atapi_invalid_field(d);
        return;
    }
    memset(p, 0, 8);
    put_be16(p + 6, medium ? PROFILE_CD_ROM : 0);
    for (unsigned i = 0; i < ARRAY_LEN(f); i++) {
        if (f[i].code < start || (rt == 2 && f[i].code != start) || (rt == 1 && !f[i].current))
            continue;
        uint8_t *q = p + len;
        put_be16(q, f[i].code);
        /* version, persistent (profile list, core, removable are), current */
        q[2] = (uint8_t)(f[i].version << 2 | (f[i].code <= FEATURE_REMOVABLE_MEDIUM ? 2 : 0) |
                         (f[i].current ? 1 : 0));
        q[3] = f[i].dlen;
        memcpy(q + 4, f[i].data, f[i].dlen);
        len += 4 + f[i].dlen;
    }
    put_be32(p, len - 4);
    atapi_send(d, len, alloc);
}

static void atapi_get_event_status(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    uint8_t classes = d->packet[4];
    uint32_t alloc = be16(d->packet + 7);
    unsigned len;

    if (!(d->packet[1] & GESN_POLLED)) {    /* asynchronous notification: not supported */
        atapi_invalid_field(d);
        return;
    }
    memset(p, 0, 8);
    p[3] = 1u << GESN_CLASS_MEDIA;          /* supported event classes */
    if (classes & (1u << GESN_CLASS_MEDIA)) {
        p[2] = GESN_CLASS_MEDIA;
        p[4] = d->media_event;
        p[5] = (uint8_t)((atapi_medium_present(d) || (d->blk && d->tray_open) ?
                          MEDIA_STATUS_PRESENT : 0) |
                         (d->tray_open ? MEDIA_STATUS_TRAY_OPEN : 0));
        d->media_event = MEDIA_EVENT_NONE;
        len = 8;
    } else {
        p[2] = GESN_NEA;                    /* no event of a requested class */
        len = 4;
    }
    put_be16(p, (uint16_t)(len - 2));
    atapi_send(d, len, alloc);
}

static void atapi_read_disc_info(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    uint32_t alloc = be16(d->packet + 7);

    if (!atapi_check_ready(d))
        return;
    if (d->packet[1] & 7) {                 /* only the standard disc information */
        atapi_invalid_field(d);
        return;
    }
    memset(p, 0, 34);
    put_be16(p, 34 - 2);
    p[2] = 0x0e;                            /* last session complete, disc finalized */
    p[3] = 1;                               /* first track */
    p[4] = 1;                               /* sessions */
    p[5] = 1;                               /* first track in last session */
    p[6] = 1;                               /* last track in last session */
    p[7] = 0x20;                            /* unrestricted use */
    p[8] = 0x00;                            /* CD-DA or CD-ROM */
    put_be32(p + 16, 0xffffffffu);          /* no next session */
    put_be32(p + 20, 0xffffffffu);
    atapi_send(d, 34, alloc);
}

static void atapi_mechanism_status(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;
    uint32_t alloc = be16(d->packet + 8);

    memset(p, 0, 8);
    p[1] = d->tray_open ? 0x10 : 0;         /* mechanism idle, door open bit */
    atapi_send(d, 8, alloc);
}

static void atapi_start_stop(IDEDevice *d)
{
    bool loej = d->packet[4] & 0x02;
    bool start = d->packet[4] & 0x01;

    if (!loej) {                            /* spin up / down: nothing to do */
        atapi_cmd_ok(d);
        return;
    }
    if (!start) {
        if (d->locked) {
            atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED,
                                  ASCQ_REMOVAL_PREVENTED);
            return;
        }
        if (!d->tray_open) {
            d->tray_open = true;
            if (d->blk)
                d->media_event = MEDIA_EVENT_MEDIA_REMOVAL;
        }
    } else if (d->tray_open) {
        d->tray_open = false;
        if (d->blk) {
            d->unit_attention = true;
            d->media_event = MEDIA_EVENT_NEW_MEDIA;
        }
    }
    atapi_cmd_ok(d);
}

/* ---- Dispatch ---- */

static void atapi_exec(IDEDevice *d)
{
    const uint8_t *c = d->packet;
    uint8_t op = c[0];

    /*
     * A pending unit attention fails the next command, except the ones MMC
     * lets through so a host can look at the drive (MMC-3 §4.1.6.1).
     */
    if (d->unit_attention && op != GPCMD_INQUIRY && op != GPCMD_REQUEST_SENSE &&
        op != GPCMD_GET_CONFIGURATION && op != GPCMD_GET_EVENT_STATUS) {
        d->unit_attention = false;
        atapi_check_condition(d, SENSE_UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED, 0);
        return;
    }
    if (op != GPCMD_REQUEST_SENSE)
        atapi_set_sense(d, SENSE_NONE, 0, 0);

    switch (op) {
    case GPCMD_TEST_UNIT_READY:
        if (atapi_check_ready(d))
            atapi_cmd_ok(d);
        return;
    case GPCMD_REQUEST_SENSE:
        atapi_request_sense(d);
        return;
    case GPCMD_INQUIRY:
        atapi_inquiry(d);
        return;
    case GPCMD_START_STOP_UNIT:
        atapi_start_stop(d);
        return;
    case GPCMD_PREVENT_ALLOW_MEDIUM:
        d->locked = c[4] & 1;
        atapi_cmd_ok(d);
        return;
    case GPCMD_READ_CAPACITY:
        atapi_read_capacity(d);
        return;
    case GPCMD_READ_10:
        atapi_read(d, be32(c + 2), be16(c + 7), CD_SECTOR_SIZE);
        return;
    case GPCMD_READ_12:
        atapi_read(d, be32(c + 2), be32(c + 6), CD_SECTOR_SIZE);
        return;
    case GPCMD_READ_CD: {
        unsigned type = (c[1] >> 2) & 7;
        uint32_t n = (uint32_t)c[6] << 16 | (uint32_t)c[7] << 8 | c[8];
        uint8_t fields = c[9] & 0xf8;
        if (type != 0 && type != 2) {       /* any, or mode 1 */
            atapi_invalid_field(d);
            return;
        }
        if (fields == 0x00) {               /* nothing requested */
            if (atapi_check_ready(d))
                atapi_cmd_ok(d);
            return;
        }
        if (fields == 0x10)                 /* user data */
            atapi_read(d, be32(c + 2), n, CD_SECTOR_SIZE);
        else if (fields == 0xf8)            /* sync, headers, user data, EDC/ECC */
            atapi_read(d, be32(c + 2), n, CD_RAW_SECTOR_SIZE);
        else
            atapi_invalid_field(d);
        return;
    }
    case GPCMD_SEEK_10:
        if (!atapi_check_ready(d))
            return;
        if (be32(c + 2) >= d->nb_sectors) {
            atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
            return;
        }
        atapi_cmd_ok(d);
        return;
    case GPCMD_READ_TOC_PMA_ATIP:
        atapi_read_toc(d);
        return;
    case GPCMD_GET_CONFIGURATION:
        atapi_get_configuration(d);
        return;
    case GPCMD_GET_EVENT_STATUS:
        atapi_get_event_status(d);
        return;
    case GPCMD_READ_DISC_INFO:
        atapi_read_disc_info(d);
        return;
    case GPCMD_MODE_SENSE_10:
        atapi_mode_sense(d);
        return;
    case GPCMD_MODE_SELECT_10:
        atapi_receive_and_ignore(d, be16(c + 7));
        return;
    case GPCMD_MODE_SELECT_6:
        atapi_receive_and_ignore(d, c[4]);
        return;
    case GPCMD_SET_CD_SPEED:
        atapi_cmd_ok(d);
        return;
    case GPCMD_MECHANISM_STATUS:
        atapi_mechanism_status(d);
        return;
    default:
        LOG(LOG_UNIMP, "ide%d: ATAPI command 0x%02x not supported\n", d->bus->channel, op);
        atapi_check_condition(d, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0);
        return;
    }
}

static void atapi_packet_received(IDEDevice *d)
{
    memcpy(d->packet, d->io_buffer, sizeof(d->packet));
    atapi_exec(d);
}

/* PACKET (A0h): take 12 command bytes with CoD=1, IO=0; no interrupt for them. */
void atapi_packet_cmd(IDEDevice *d)
{
    d->packet_dma = d->feature & 0x01;
    d->byte_count_limit = (uint16_t)(d->lbam | d->lbah << 8);
    ide_transfer_start(d, sizeof(d->packet), true, atapi_packet_received);
    d->nsector = ATAPI_INTR_COD;
}

/* ---- IDENTIFY PACKET DEVICE (ATA/ATAPI-6 §8.16, Table 31) ---- */

void atapi_identify(IDEDevice *d)
{
    uint8_t *p = d->io_buffer;

    memset(p, 0, 512);
    st16_le(p + 0, ATAPI_ID_CONFIG);
    ide_padstr(p + 20, d->serial, 20);          /* words 10-19 */
    ide_padstr(p + 46, d->fwrev, 8);            /* words 23-26 */
    ide_padstr(p + 54, d->model, 40);           /* words 27-46 */
    st16_le(p + 2 * 49, 1u << 9 | 1u << 8);     /* LBA, DMA */
    st16_le(p + 2 * 53, 0x0006);                /* words 64-70 and 88 valid */
    st16_le(p + 2 * 63, 0x0007 | ((d->xfer_mode & 0xf8) == 0x20 ?
                                  0x0100 << (d->xfer_mode & 7) : 0));
    st16_le(p + 2 * 64, 0x0003);                /* PIO 3 and 4 */
    st16_le(p + 2 * 65, 120);
    st16_le(p + 2 * 66, 120);
    st16_le(p + 2 * 67, 120);
    st16_le(p + 2 * 68, 120);
    st16_le(p + 2 * 80, 0x00f0);                /* ATA/ATAPI-4 .. 7 */
    st16_le(p + 2 * 88, 0x003f | ((d->xfer_mode & 0xf8) == 0x40 ?
                                  0x0100 << (d->xfer_mode & 7) : 0));
    uint8_t sum = 0xa5;
    for (int i = 0; i < 510; i++)
        sum += p[i];
    p[510] = 0xa5;
    p[511] = (uint8_t)-sum;
}

/* ---- Reset and media ---- */

void atapi_reset(IDEDevice *d, bool power_on)
{
    atapi_set_sense(d, SENSE_NONE, 0, 0);
    if (power_on) {
        d->tray_open = false;
        d->locked = false;
        d->unit_attention = false;
        d->media_event = MEDIA_EVENT_NONE;
    }
}

void atapi_media_changed(IDEDevice *d, BlockBackend *blk)
{
    d->blk = blk;
    d->nb_sectors = 0;
    if (blk) {
        int64_t len = blk_getlength(blk);
        d->nb_sectors = len > 0 ? (uint64_t)len / CD_SECTOR_SIZE : 0;
        d->unit_attention = true;
        d->media_event = MEDIA_EVENT_NEW_MEDIA;
    } else {
        d->media_event = MEDIA_EVENT_MEDIA_REMOVAL;
    }
}

/*
 * Intel 82078-compatible floppy disk controller in PC-AT mode ("isa-fdc"):
 * base 0x3F0, IRQ 6, ISA DMA channel 2, two drives (A: and B:).
 *
 * Follows the Intel 82077AA / 82078 datasheets: "Register Description"
 * (SRB, DOR, TDR, MSR, DSR, FIFO, DIR, CCR), "Command Set" (byte layouts and
 * result phases), "Status Register Encoding" (ST0-ST3), "Reset" (four SENSE
 * INTERRUPT STATUS results 0xC0-0xC3 after a reset with polling enabled),
 * "Result phase" C/H/R/N table (the ID of the sector after the last one
 * transferred, with MT stepping to side 1 and then to the next cylinder),
 * and "Non-DMA mode" (data through the FIFO, RQM/DIO/NON-DMA in the MSR).
 * Platform facts: pc-platform.md §1, §6 (CMOS 0x10/0x14), §12;
 * firmware-seabios.md §5/§9.
 *
 * Drives: -drive if=floppy,unit=0/1 (or -fda/-fdb), or the driveA/driveB
 * properties naming a -drive id.  The geometry comes from the image size
 * (fdc_formats below); any other size is refused at start-up naming the
 * file.  A drive with no image is an empty 1.44 MB drive (QEMU does the
 * same).  CMOS 0x10 gets the drive types and 0x14 the floppy bits of the
 * equipment byte (primary controller at 0x3F0 only); a drive's bootindex
 * (bootindexA/B, else the -drive's own) goes to fw_cfg's bootorder as
 * /pci@i0cf8/isa@1/fdc@03f0/floppy@N.
 *
 * The board creates the controller on every pc machine, -nodefaults or not:
 * QEMU's i440FX machine does the same (the controller is part of the PIIX
 * super-I/O; -nodefaults only drops the default empty drive), and SeaBIOS
 * and Linux probe it harmlessly when no drive is configured.
 *
 * Model decisions:
 * - Commands complete at once: seeks and recalibrates interrupt immediately
 *   and transfers run as soon as the DMA channel lets them (the DMA engine
 *   calls fdc_dma_transfer synchronously).  Disk I/O is synchronous
 *   sector-sized blk_pread/blk_pwrite under the big lock: a floppy moves at
 *   most 36 sectors per command, so an asynchronous engine is not worth it.
 * - Implied seek is always on: READ/WRITE/FORMAT address the cylinder named
 *   in the command (SeaBIOS relies on this, as on QEMU) and leave the head
 *   there.  The sector is located by the command's C, H (byte 3) and R;
 *   only N = 2 (512-byte sectors) exists on an image.
 * - A transfer ends at the DMA terminal count (normal termination), or
 *   after the EOT sector of the last side (abnormal termination with ST1 EN,
 *   as the datasheet specifies when TC did not arrive; the result then names
 *   the EOT sector itself, which is what Linux counts with), or on a missing
 *   sector (ST1 ND).  TC in the middle of a sector finishes that sector
 *   (writes pad it with zeros).  ST0's HD bit is the head of the last
 *   sector touched; after TC the result C/H/R is the ID after it.
 * - The data rate (DSR/CCR), precompensation, motor state, step/head timings
 *   (SPECIFY), the FIFO threshold, perpendicular mode and power-down are
 *   stored and reported (DUMPREG) but do not change behaviour; a read works
 *   with the motor off and at any data rate.
 * - Non-DMA transfers end at EOT, or with ST1 OR when the CPU stops moving
 *   bytes for FDC_PIO_OVERRUN_NS of virtual time (the FIFO overrun a real
 *   controller reports; Linux's pseudo-DMA ends its reads this way).  A DMA
 *   transfer whose channel is never unmasked waits forever instead.
 * - DOR DMA GATE gates DRQ (a DMA transfer waits for it); the interrupt line
 *   is not gated (QEMU does not gate it either, and SeaBIOS toggles only the
 *   reset bit).  After any reset the controller interrupts and reports the
 *   four "ready changed" statuses, whatever CONFIGURE's POLL bit says.
 * - Not modelled: READ TRACK, READ/WRITE DELETED DATA, SCAN, VERIFY,
 *   POWERDOWN MODE, the drive-busy MSR bits, the 82078's PS/2 / Model 30
 *   modes (so SRA at 0x3F0 is not decoded, as on QEMU; 0x3F6 belongs to
 *   IDE), media ID bits in TDR.  These answer 0x80 (invalid command).
 */
#include "kestrel/common.h"
#include "kestrel/block.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/drive.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/isa-dma.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/rtc.h"

#include <string.h>

/* ---- Register table (offsets from the base, 82077AA/82078 PC-AT mode) ---- */

#define FDC_SRB             0x01    /* read: status register B */
#define FDC_DOR             0x02    /* digital output register */
#define FDC_TDR             0x03    /* tape drive register */
#define FDC_MSR             0x04    /* read: main status register */
#define FDC_DSR             0x04    /* write: data rate select register */
#define FDC_FIFO            0x05    /* data (command, execution and result bytes) */
#define FDC_DIR             0x07    /* read: digital input register */
#define FDC_CCR             0x07    /* write: configuration control register */

/* SRB (PS/2-style layout, as QEMU reports it in AT mode) */
#define FDC_SRB_ALWAYS      0xc0
#define FDC_SRB_DRIVE_SEL0  0x20
#define FDC_SRB_MOT_EN1     0x02
#define FDC_SRB_MOT_EN0     0x01

/* DOR */
#define FDC_DOR_DRIVE_SEL   0x03
#define FDC_DOR_NRESET      0x04
#define FDC_DOR_DMA_GATE    0x08
#define FDC_DOR_MOT_EN0     0x10
#define FDC_DOR_MOT_EN1     0x20
#define FDC_DOR_MOT_EN2     0x40
#define FDC_DOR_MOT_EN3     0x80
#define FDC_DOR_POWER_ON    (FDC_DOR_NRESET | FDC_DOR_DMA_GATE)   /* QEMU's power-on value */

/* TDR */
#define FDC_TDR_TAPE_SEL    0x03

/* MSR */
#define FDC_MSR_RQM         0x80    /* ready for a byte */
#define FDC_MSR_DIO         0x40    /* 1: controller -> CPU */
#define FDC_MSR_NON_DMA     0x20    /* execution phase in non-DMA mode */
#define FDC_MSR_CMD_BSY     0x10

/* DSR */
#define FDC_DSR_SW_RESET    0x80
#define FDC_DSR_POWER_DOWN  0x40
#define FDC_DSR_PRECOMP     0x1c
#define FDC_DSR_DRATE_SEL   0x03

/* DIR */
#define FDC_DIR_DSKCHG      0x80

/* CCR */
#define FDC_CCR_DRATE_SEL   0x03

/* Command opcodes (low bits) and option bits */
#define FDC_CMD_READ_DATA       0x06
#define FDC_CMD_WRITE_DATA      0x05
#define FDC_CMD_READ_ID         0x0a
#define FDC_CMD_FORMAT_TRACK    0x0d
#define FDC_CMD_RECALIBRATE     0x07
#define FDC_CMD_SENSE_INTERRUPT 0x08
#define FDC_CMD_SPECIFY         0x03
#define FDC_CMD_SENSE_DRIVE     0x04
#define FDC_CMD_SEEK            0x0f
#define FDC_CMD_RELATIVE_SEEK   0x8f    /* plus FDC_CMD_DIR */
#define FDC_CMD_VERSION         0x10
#define FDC_CMD_DUMPREG         0x0e
#define FDC_CMD_CONFIGURE       0x13
#define FDC_CMD_LOCK            0x14    /* plus FDC_CMD_LOCK_BIT */
#define FDC_CMD_PERPENDICULAR   0x12
#define FDC_CMD_PART_ID         0x18

#define FDC_CMD_MT              0x80    /* multi-track */
#define FDC_CMD_MFM             0x40
#define FDC_CMD_SK              0x20    /* skip deleted data */
#define FDC_CMD_DIR             0x40    /* relative seek: 1 = step in (higher cylinders) */
#define FDC_CMD_LOCK_BIT        0x80

/* Second command byte of drive commands */
#define FDC_HDS                 0x04
#define FDC_DS                  0x03

/* Result bytes */
#define FDC_VERSION_82077       0x90    /* VERSION result of an enhanced controller */
#define FDC_PART_ID_82078       0x41    /* PART ID: 82078 family, stepping 1 (as QEMU reports) */
#define FDC_INVALID             0x80    /* the one result byte of an invalid command */

/* ST0 */
#define FDC_ST0_IC_NORMAL       0x00
#define FDC_ST0_IC_ABNORMAL     0x40
#define FDC_ST0_IC_INVALID      0x80
#define FDC_ST0_IC_READY_CHG    0xc0
#define FDC_ST0_SE              0x20    /* seek end */
#define FDC_ST0_EC              0x10    /* equipment check */
#define FDC_ST0_H               0x04
#define FDC_ST0_DS              0x03

/* ST1 */
#define FDC_ST1_EN              0x80    /* end of cylinder */
#define FDC_ST1_DE              0x20    /* data error (CRC) */
#define FDC_ST1_OR              0x10    /* overrun/underrun */
#define FDC_ST1_ND              0x04    /* no data */
#define FDC_ST1_NW              0x02    /* not writable */
#define FDC_ST1_MA              0x01    /* missing address mark */

/* ST2 */
#define FDC_ST2_CM              0x40
#define FDC_ST2_DD              0x20
#define FDC_ST2_WC              0x10    /* wrong cylinder */
#define FDC_ST2_BC              0x02    /* bad cylinder (ID cylinder 0xFF) */
#define FDC_ST2_MD              0x01

/* ST3 */
#define FDC_ST3_WP              0x40
#define FDC_ST3_ALWAYS          0x28    /* RDY and TS read 1 on the 82077AA */
#define FDC_ST3_T0              0x10
#define FDC_ST3_HD              0x04

/* SPECIFY byte 3 */
#define FDC_SPECIFY_ND          0x01    /* non-DMA mode */

/* CONFIGURE byte 2 */
#define FDC_CONF_EIS            0x40
#define FDC_CONF_EFIFO          0x20    /* 1 = FIFO disabled */
#define FDC_CONF_POLL           0x10    /* 1 = drive polling disabled */
#define FDC_CONF_FIFOTHR        0x0f
#define FDC_CONF_DEFAULT        FDC_CONF_EFIFO

#define FDC_PERP_OW             0x80

#define FDC_SECTOR_SIZE         512
#define FDC_SIZE_CODE_512       2
#define FDC_DRIVES              2       /* drives 2 and 3 of the DOR are never connected */
#define FDC_RESET_SENSEI        4

/*
 * Non-DMA mode: the disk keeps turning, so a CPU that stops moving bytes
 * overruns the FIFO and the command ends with ST1 OR (82077AA "Non-DMA
 * Mode").  Linux's pseudo-DMA relies on this to end a track read early.
 * The real limit is a few byte times; a generous virtual-time budget keeps
 * slow (software-CPU) guests from tripping it in the middle of a sector.
 */
#define FDC_PIO_OVERRUN_NS      (20 * 1000 * 1000)

#define FDC_DEFAULT_IOBASE      0x3f0
#define FDC_DEFAULT_IRQ         6
#define FDC_DEFAULT_DMA         2

/* CMOS (pc-platform.md §6, firmware-seabios.md §5) */
#define CMOS_FLOPPY_TYPES       0x10
#define CMOS_EQUIPMENT          0x14
#define CMOS_EQUIP_FLOPPY       0x01
#define CMOS_EQUIP_NFLOPPY_SHIFT 6

/* Image sizes we know, and the drive type CMOS/SeaBIOS use for them. */
typedef struct FdcFormat {
    uint32_t size;
    uint8_t tracks, heads, sectors;
    uint8_t cmos_type;          /* 1 360K 5.25", 2 1.2M, 3 720K, 4 1.44M, 5 2.88M */
} FdcFormat;

static const FdcFormat fdc_formats[] = {
    { 163840, 40, 1, 8, 1 },    /* 160K */
    { 184320, 40, 1, 9, 1 },    /* 180K */
    { 327680, 40, 2, 8, 1 },    /* 320K */
    { 368640, 40, 2, 9, 1 },    /* 360K */
    { 737280, 80, 2, 9, 3 },    /* 720K */
    { 1228800, 80, 2, 15, 2 },  /* 1.2M */
    { 1474560, 80, 2, 18, 4 },  /* 1.44M */
    { 2949120, 80, 2, 36, 5 },  /* 2.88M */
};

#define FDC_CMOS_TYPE_EMPTY     4       /* an empty drive is a 1.44M drive */

/* ---- State ---- */

typedef enum {
    FDC_PHASE_IDLE,             /* waiting for a command byte */
    FDC_PHASE_COMMAND,          /* collecting parameter bytes */
    FDC_PHASE_EXECUTION,        /* data transfer */
    FDC_PHASE_RESULT,           /* result bytes to read */
} FdcPhase;

typedef enum {
    FDC_XFER_READ,
    FDC_XFER_WRITE,
    FDC_XFER_FORMAT,
} FdcXferKind;

typedef struct FdcDrive {
    /* Guest-visible. */
    uint8_t track;              /* present cylinder number */
    uint8_t last_sector;        /* sector last under the head (READ ID) */
    bool disk_changed;          /* DIR DSKCHG: set until a step with a disk in */

    /* Medium (host side). */
    BlockBackend *blk;          /* NULL: no drive or no medium */
    bool connected;             /* a drive is attached (maybe empty) */
    bool read_only;
    uint8_t tracks, heads, sectors;
    uint8_t cmos_type;
} FdcDrive;

typedef struct FdcXfer {
    FdcXferKind kind;
    bool dma;
    bool multi_track;
    uint8_t drive;
    uint8_t c, h, r, n, eot;    /* ID of the sector being transferred */
    uint8_t sectors_left;       /* FORMAT: IDs still expected */
    uint8_t fill;               /* FORMAT: filler byte */
    uint8_t head_used;          /* physical head of the last sector touched (ST0 HD) */
    uint16_t pos, len;          /* bytes done / size of the current unit in buf */
    bool loaded;                /* READ: buf holds the current sector */
} FdcXfer;

typedef struct FDC {
    /* Guest-visible registers. */
    uint8_t dor, tdr, dsr, ccr;
    FdcPhase phase;
    uint8_t cmd[9];
    uint8_t cmd_len, cmd_pos;
    uint8_t result[10];
    uint8_t res_len, res_pos;
    /* Pending interrupt status for SENSE INTERRUPT (seek, recalibrate, reset). */
    bool int_pending;
    uint8_t int_st0;
    uint8_t reset_sensei;       /* "ready changed" statuses left after a reset */
    uint8_t specify[2];         /* SRT/HUT, HLT/ND */
    uint8_t config;             /* SPECIFY byte 3 */
#define FDC_SPECIFY_ND          0x01    /* non-DMA mode */

/* CONFIGURE byte 2 */
    uint8_t pretrk;
    uint8_t perpendicular;      /* DUMPREG layout: D3-D0 << 2 | GAP | WGATE */
    bool lock;
    uint8_t last_eot;           /* DUMPREG "SC/EOT" */
    FdcXfer x;
    uint8_t buf[FDC_SECTOR_SIZE];
    FdcDrive drives[FDC_DRIVES];

    /* Host plumbing. */
    uint16_t iobase;
    int dma_channel;
    bool dreq;
    IrqLine *irq;
    Timer *overrun_timer;       /* non-DMA execution phase: FIFO overrun/underrun */
    IoPortRange *ports[2];
} FDC;

/* ---- Helpers ---- */

static FdcDrive *fdc_drive(FDC *s, unsigned unit)
{
    return unit < FDC_DRIVES ? &s->drives[unit] : NULL;
}

static bool fdc_drive_has_medium(FdcDrive *d)
{
    return d && d->blk;
}

static void fdc_set_dreq(FDC *s, bool on)
{
    if (s->dma_channel < 0 || on == s->dreq)
        return;
    s->dreq = on;
    if (on)
        isa_dma_hold_DREQ(s->dma_channel);
    else
        isa_dma_release_DREQ(s->dma_channel);
}

/*
 * A new interrupt event.  The ISA IRQ is edge-triggered at the 8259, so if
 * the line is still high from an event the CPU has not cleared (a non-DMA
 * data request it chose to ignore), drop it first so this one is seen.
 */
static void fdc_raise_irq(FDC *s)
{
    if (irq_get_level(s->irq))
        irq_lower(s->irq);
    irq_raise(s->irq);
}

static void fdc_result(FDC *s, const uint8_t *bytes, unsigned n, bool interrupt)
{
    memcpy(s->result, bytes, n);
    s->res_len = (uint8_t)n;
    s->res_pos = 0;
    s->phase = FDC_PHASE_RESULT;
    if (interrupt)
        fdc_raise_irq(s);
}

static void fdc_invalid(FDC *s)
{
    uint8_t r = FDC_INVALID;
    fdc_result(s, &r, 1, false);
}

static void fdc_idle(FDC *s)
{
    s->phase = FDC_PHASE_IDLE;
    s->cmd_pos = s->cmd_len = 0;
}

/* A seek-type command finished: interrupt, status for SENSE INTERRUPT. */
static void fdc_seek_done(FDC *s, uint8_t st0)
{
    s->int_pending = true;
    s->int_st0 = st0;
    fdc_idle(s);
    fdc_raise_irq(s);
}

static void fdc_enter_reset(FDC *s)
{
    fdc_set_dreq(s, false);
    timer_del(s->overrun_timer);
    irq_lower(s->irq);
    fdc_idle(s);
    s->int_pending = false;
    s->reset_sensei = 0;
    s->res_len = s->res_pos = 0;
    /* CONFIGURE and PERPENDICULAR's GAP/WGATE return to defaults unless LOCKed. */
    if (!s->lock) {
        s->config = FDC_CONF_DEFAULT;
        s->pretrk = 0;
    }
    s->perpendicular &= ~0x03;
    /* The present cylinder numbers are cleared, as QEMU does. */
    for (int i = 0; i < FDC_DRIVES; i++)
        s->drives[i].track = 0;
}

static void fdc_leave_reset(FDC *s)
{
    s->reset_sensei = FDC_RESET_SENSEI;
    s->int_pending = true;
    s->int_st0 = FDC_ST0_IC_READY_CHG;
    fdc_raise_irq(s);
}

/* ---- Data transfer ---- */

static int64_t fdc_sector_offset(FdcDrive *d, uint8_t c, uint8_t h, uint8_t r)
{
    return (((int64_t)c * d->heads + h) * d->sectors + (r - 1)) * FDC_SECTOR_SIZE;
}

/* Is sector (c, h, r) of 512 bytes on the medium?  Sets ST1/ST2 bits if not. */
static bool fdc_sector_exists(FdcDrive *d, uint8_t c, uint8_t h, uint8_t r, uint8_t n,
                              uint8_t *st1, uint8_t *st2)
{
    if (c >= d->tracks) {
        *st1 |= FDC_ST1_ND;
        *st2 |= c == 0xff ? FDC_ST2_BC : FDC_ST2_WC;
        return false;
    }
    if (h >= d->heads) {
        *st1 |= FDC_ST1_MA;
        return false;
    }
    if (n != FDC_SIZE_CODE_512 || r == 0 || r > d->sectors) {
        *st1 |= FDC_ST1_ND;
        return false;
    }
    return true;
}

/* End a READ/WRITE/FORMAT: result phase with ST0-ST2 and the ID in x. */
static void fdc_xfer_end(FDC *s, uint8_t ic, uint8_t st1, uint8_t st2)
{
    FdcXfer *x = &s->x;
    uint8_t head = x->kind == FDC_XFER_FORMAT ? (s->cmd[1] & FDC_HDS) >> 2 : x->head_used;
    uint8_t res[7] = {
        (uint8_t)(ic | head << 2 | x->drive), st1, st2, x->c, x->h, x->r, x->n,
    };
    fdc_set_dreq(s, false);
    timer_del(s->overrun_timer);
    fdc_result(s, res, 7, true);
}

/*
 * Step the ID to the next sector after the one just finished.  Returns true
 * if the command continues there, false if the EOT sector of the last side
 * was done (the ID is then the one after it, per the result-phase table).
 */
static bool fdc_xfer_advance(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, x->drive);

    if (x->r != x->eot) {
        x->r++;
        return true;
    }
    x->r = 1;
    if (x->multi_track && !(x->h & 1)) {
        x->h ^= 1;
        return true;
    }
    if (x->multi_track)
        x->h ^= 1;
    x->c++;
    if (d)
        d->last_sector = 1;
    return false;
}

/* Load the current sector for a READ; false after ending the command on error. */
static bool fdc_read_sector(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, x->drive);
    uint8_t st1 = 0, st2 = 0;

    x->head_used = x->h & 1;
    if (!fdc_drive_has_medium(d) || !fdc_sector_exists(d, x->c, x->h, x->r, x->n, &st1, &st2)) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, st1 ? st1 : FDC_ST1_MA, st2);
        return false;
    }
    if (blk_pread(d->blk, fdc_sector_offset(d, x->c, x->h, x->r), s->buf, FDC_SECTOR_SIZE) < 0) {
        LOG(LOG_GUEST_ERROR, "fdc: read error at C/H/S %u/%u/%u of drive %u\n",
            x->c, x->h, x->r, x->drive);
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_DE, FDC_ST2_DD);
        return false;
    }
    d->last_sector = x->r;
    x->loaded = true;
    x->pos = 0;
    x->len = FDC_SECTOR_SIZE;
    return true;
}

/* Check that the current sector of a WRITE exists before taking its data. */
static bool fdc_write_sector_ok(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, x->drive);
    uint8_t st1 = 0, st2 = 0;

    x->head_used = x->h & 1;
    if (!fdc_drive_has_medium(d) || !fdc_sector_exists(d, x->c, x->h, x->r, x->n, &st1, &st2)) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, st1 ? st1 : FDC_ST1_MA, st2);
        return false;
    }
    x->pos = 0;
    x->len = FDC_SECTOR_SIZE;
    return true;
}

/* Store the sector in buf; false after ending the command on error. */
static bool fdc_write_sector_commit(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, x->drive);

    if (blk_pwrite(d->blk, fdc_sector_offset(d, x->c, x->h, x->r), s->buf, FDC_SECTOR_SIZE) < 0) {
        LOG(LOG_GUEST_ERROR, "fdc: write error at C/H/S %u/%u/%u of drive %u\n",
            x->c, x->h, x->r, x->drive);
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_DE, 0);
        return false;
    }
    d->last_sector = x->r;
    return true;
}

/* FORMAT: one 4-byte ID field (C, H, R, N) arrived in buf. */
static bool fdc_format_id(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, x->drive);
    uint8_t head = (s->cmd[1] & FDC_HDS) >> 2;
    uint8_t r = s->buf[2];
    uint8_t fill[FDC_SECTOR_SIZE];

    x->c = s->buf[0];
    x->h = s->buf[1];
    x->r = r;
    x->n = s->buf[3];
    /*
     * An image holds 512-byte sectors at fixed places: a sector is formatted
     * (filled) at the drive's present cylinder and the commanded head when
     * its ID says N = 2 and R fits the track; other IDs cannot be represented.
     */
    if (x->n != FDC_SIZE_CODE_512 || s->cmd[2] != FDC_SIZE_CODE_512 || r == 0 ||
        r > d->sectors || d->track >= d->tracks || head >= d->heads) {
        LOG(LOG_GUEST_ERROR, "fdc: FORMAT ID C/H/R/N %u/%u/%u/%u on cylinder %u head %u does "
            "not fit the %u/%u/%u image; sector not written\n", x->c, x->h, r, x->n,
            d->track, head, d->tracks, d->heads, d->sectors);
    } else {
        memset(fill, x->fill, sizeof(fill));
        if (blk_pwrite(d->blk, fdc_sector_offset(d, d->track, head, r), fill, sizeof(fill)) < 0) {
            fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_DE, 0);
            return false;
        }
    }
    x->pos = 0;
    x->len = 4;
    if (--x->sectors_left == 0) {
        fdc_xfer_end(s, FDC_ST0_IC_NORMAL, 0, 0);
        return false;
    }
    return true;
}

/*
 * The current unit (sector or format ID) is complete.  tc: the DMA terminal
 * count arrived during it.  Returns true if the transfer goes on.
 */
static bool fdc_unit_done(FDC *s, bool tc)
{
    FdcXfer *x = &s->x;

    if (x->kind == FDC_XFER_FORMAT) {
        if (!fdc_format_id(s))
            return false;
        if (tc) {
            fdc_xfer_end(s, FDC_ST0_IC_NORMAL, 0, 0);
            return false;
        }
        return true;
    }
    if (x->kind == FDC_XFER_WRITE && !fdc_write_sector_commit(s))
        return false;
    x->loaded = false;
    uint8_t last_c = x->c, last_h = x->h, last_r = x->r;
    bool more = fdc_xfer_advance(s);
    if (tc) {
        fdc_xfer_end(s, FDC_ST0_IC_NORMAL, 0, 0);
        return false;
    }
    if (!more) {
        /*
         * EOT done without TC: "end of cylinder".  The result then names the
         * last sector transferred, not the one after it: Linux's rw_interrupt
         * counts the sectors as R - start + 1 when ST1 EN is set.
         */
        x->c = last_c;
        x->h = last_h;
        x->r = last_r;
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_EN, 0);
        return false;
    }
    /* Next sector: make sure it exists (a READ loads it, a WRITE checks it). */
    if (x->kind == FDC_XFER_READ)
        return fdc_read_sector(s);
    return fdc_write_sector_ok(s);
}

/* The DMA engine's call while DREQ is held: move as much as the channel allows. */
static void fdc_dma_transfer(void *opaque, int channel)
{
    FDC *s = opaque;
    FdcXfer *x = &s->x;

    while (s->phase == FDC_PHASE_EXECUTION && x->dma) {
        bool tc = false;
        size_t n;
        if (x->kind == FDC_XFER_READ) {
            if (!x->loaded && !fdc_read_sector(s))
                return;
            n = isa_dma_write_memory(channel, s->buf + x->pos, x->len - x->pos, &tc);
        } else {
            n = isa_dma_read_memory(channel, s->buf + x->pos, x->len - x->pos, &tc);
        }
        x->pos += (uint16_t)n;
        if (tc && x->pos < x->len) {
            /* TC inside a sector: the controller finishes it; writes are padded. */
            if (x->kind != FDC_XFER_READ)
                memset(s->buf + x->pos, 0, x->len - x->pos);
            x->pos = x->len;
        }
        if (x->pos < x->len)
            return;         /* channel stopped (masked, disabled): wait for the next call */
        if (!fdc_unit_done(s, tc))
            return;
    }
}

/* Non-DMA execution phase: the MSR and the interrupt tell the CPU a unit is ready. */
static void fdc_pio_arm_overrun(FDC *s)
{
    timer_mod(s->overrun_timer, clock_get_ns(CLOCK_VIRTUAL) + FDC_PIO_OVERRUN_NS);
}

static void fdc_pio_unit_ready(FDC *s)
{
    fdc_pio_arm_overrun(s);
    fdc_raise_irq(s);
}

/* The CPU stopped servicing the FIFO: end with OR at the sector in progress. */
static void fdc_pio_overrun(void *opaque)
{
    FDC *s = opaque;
    if (s->phase == FDC_PHASE_EXECUTION && !s->x.dma)
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_OR, 0);
}

static uint8_t fdc_pio_read(FDC *s)
{
    FdcXfer *x = &s->x;
    if (x->kind != FDC_XFER_READ || !x->loaded || x->pos >= x->len)
        return 0xff;
    irq_lower(s->irq);
    fdc_pio_arm_overrun(s);
    uint8_t v = s->buf[x->pos++];
    if (x->pos == x->len && fdc_unit_done(s, false))
        fdc_pio_unit_ready(s);
    return v;
}

static void fdc_pio_write(FDC *s, uint8_t v)
{
    FdcXfer *x = &s->x;
    if (x->kind == FDC_XFER_READ || x->pos >= x->len)
        return;
    irq_lower(s->irq);
    fdc_pio_arm_overrun(s);
    s->buf[x->pos++] = v;
    if (x->pos == x->len && fdc_unit_done(s, false))
        fdc_pio_unit_ready(s);
}

/* Start the execution phase of a READ/WRITE/FORMAT whose checks passed. */
static void fdc_xfer_start(FDC *s)
{
    FdcXfer *x = &s->x;

    s->phase = FDC_PHASE_EXECUTION;
    x->dma = !(s->specify[1] & FDC_SPECIFY_ND) && s->dma_channel >= 0;
    x->loaded = false;
    if (x->kind == FDC_XFER_FORMAT) {
        x->pos = 0;
        x->len = 4;
    } else if (x->kind == FDC_XFER_READ) {
        if (!fdc_read_sector(s))
            return;
    } else if (!fdc_write_sector_ok(s)) {
        return;
    }
    if (x->dma) {
        /* DRQ reaches the bus only through DOR DMA GATE. */
        if (s->dor & FDC_DOR_DMA_GATE)
            fdc_set_dreq(s, true);
    } else {
        fdc_pio_unit_ready(s);
    }
}

/* ---- Commands ---- */

static void fdc_cmd_read_write(FDC *s)
{
    FdcXfer *x = &s->x;
    uint8_t op = s->cmd[0];
    FdcDrive *d = fdc_drive(s, s->cmd[1] & FDC_DS);

    memset(x, 0, sizeof(*x));
    x->kind = (op & 0x1f) == FDC_CMD_READ_DATA ? FDC_XFER_READ : FDC_XFER_WRITE;
    x->multi_track = op & FDC_CMD_MT;
    x->drive = s->cmd[1] & FDC_DS;
    x->c = s->cmd[2];
    x->h = s->cmd[3];
    x->r = s->cmd[4];
    x->n = s->cmd[5];
    x->eot = s->cmd[6];
    x->head_used = x->h & 1;
    s->last_eot = x->eot;

    if (!fdc_drive_has_medium(d)) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_MA, 0);
        return;
    }
    /* Implied seek: the head goes to the commanded cylinder if it exists. */
    if (x->c < d->tracks) {
        if (d->track != x->c)
            d->disk_changed = false;
        d->track = x->c;
    }
    if (x->kind == FDC_XFER_WRITE && d->read_only) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_NW, 0);
        return;
    }
    fdc_xfer_start(s);
}

static void fdc_cmd_format(FDC *s)
{
    FdcXfer *x = &s->x;
    FdcDrive *d = fdc_drive(s, s->cmd[1] & FDC_DS);

    memset(x, 0, sizeof(*x));
    x->kind = FDC_XFER_FORMAT;
    x->drive = s->cmd[1] & FDC_DS;
    x->c = d ? d->track : 0;
    x->h = (s->cmd[1] & FDC_HDS) >> 2;
    x->n = s->cmd[2];
    x->sectors_left = s->cmd[3];
    x->fill = s->cmd[5];
    if (!fdc_drive_has_medium(d)) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_MA, 0);
        return;
    }
    if (d->read_only) {
        fdc_xfer_end(s, FDC_ST0_IC_ABNORMAL, FDC_ST1_NW, 0);
        return;
    }
    if (x->sectors_left == 0) {
        fdc_xfer_end(s, FDC_ST0_IC_NORMAL, 0, 0);
        return;
    }
    fdc_xfer_start(s);
}

static void fdc_cmd_read_id(FDC *s)
{
    unsigned unit = s->cmd[1] & FDC_DS;
    uint8_t head = (s->cmd[1] & FDC_HDS) >> 2;
    FdcDrive *d = fdc_drive(s, unit);
    uint8_t res[7] = { (uint8_t)(head << 2 | unit), 0, 0, 0, head, 1, FDC_SIZE_CODE_512 };

    if (!fdc_drive_has_medium(d) || d->track >= d->tracks || head >= d->heads) {
        /* No ID field under the head. */
        res[0] |= FDC_ST0_IC_ABNORMAL;
        res[1] = FDC_ST1_MA;
        res[3] = d ? d->track : 0;
        fdc_result(s, res, 7, true);
        return;
    }
    /* The next ID to pass under the head: the one after the last sector used. */
    res[3] = d->track;
    res[5] = d->last_sector >= d->sectors ? 1 : d->last_sector + 1;
    d->last_sector = res[5];
    fdc_result(s, res, 7, true);
}

static void fdc_cmd_seek(FDC *s)
{
    unsigned unit = s->cmd[1] & FDC_DS;
    uint8_t head = (s->cmd[1] & FDC_HDS) >> 2;
    FdcDrive *d = fdc_drive(s, unit);
    uint8_t op = s->cmd[0];
    unsigned target;

    if (!d || !d->connected) {
        /* Nothing answers the step pulses: equipment check. */
        fdc_seek_done(s, FDC_ST0_IC_ABNORMAL | FDC_ST0_SE | FDC_ST0_EC | head << 2 | unit);
        return;
    }
    if (op == FDC_CMD_SEEK)
        target = s->cmd[2];
    else if (op & FDC_CMD_DIR)
        target = MIN(d->track + s->cmd[2], 255u);
    else
        target = d->track > s->cmd[2] ? d->track - s->cmd[2] : 0;
    if (target != d->track && fdc_drive_has_medium(d))
        d->disk_changed = false;           /* a step pulse with a disk in clears DSKCHG */
    d->track = (uint8_t)target;
    fdc_seek_done(s, FDC_ST0_SE | head << 2 | unit);
}

static void fdc_cmd_recalibrate(FDC *s)
{
    unsigned unit = s->cmd[1] & FDC_DS;
    FdcDrive *d = fdc_drive(s, unit);

    if (!d || !d->connected) {
        fdc_seek_done(s, FDC_ST0_IC_ABNORMAL | FDC_ST0_SE | FDC_ST0_EC | unit);
        return;
    }
    if (fdc_drive_has_medium(d))
        d->disk_changed = false;
    d->track = 0;
    fdc_seek_done(s, FDC_ST0_SE | unit);
}

static void fdc_cmd_sense_interrupt(FDC *s)
{
    uint8_t res[2];

    irq_lower(s->irq);
    if (s->reset_sensei) {
        /* After a reset: "ready changed" for drives 0-3 in turn. */
        unsigned unit = FDC_RESET_SENSEI - s->reset_sensei;
        FdcDrive *d = fdc_drive(s, unit);
        res[0] = (uint8_t)(FDC_ST0_IC_READY_CHG | unit);
        res[1] = d ? d->track : 0;
        if (--s->reset_sensei == 0)
            s->int_pending = false;
        fdc_result(s, res, 2, false);
        return;
    }
    if (!s->int_pending) {
        fdc_invalid(s);
        return;
    }
    FdcDrive *d = fdc_drive(s, s->int_st0 & FDC_ST0_DS);
    res[0] = s->int_st0;
    res[1] = d ? d->track : 0;
    s->int_pending = false;
    fdc_result(s, res, 2, false);
}

static void fdc_cmd_sense_drive(FDC *s)
{
    unsigned unit = s->cmd[1] & FDC_DS;
    uint8_t head = (s->cmd[1] & FDC_HDS) >> 2;
    FdcDrive *d = fdc_drive(s, unit);
    uint8_t st3 = FDC_ST3_ALWAYS | head << 2 | unit;

    if (d && d->track == 0)
        st3 |= FDC_ST3_T0;
    if (d && d->blk && d->read_only)
        st3 |= FDC_ST3_WP;
    fdc_result(s, &st3, 1, false);
}

static void fdc_cmd_dumpreg(FDC *s)
{
    uint8_t res[10] = {
        s->drives[0].track, s->drives[1].track, 0, 0,
        s->specify[0], s->specify[1], s->last_eot,
        (uint8_t)((s->lock ? 0x80 : 0) | (s->perpendicular & 0x3f)),
        s->config, s->pretrk,
    };
    fdc_result(s, res, 10, false);
}

/* Run the command collected in cmd[]. */
static void fdc_execute(FDC *s)
{
    uint8_t op = s->cmd[0];
    uint8_t r;

    switch (op & 0x1f) {
    case FDC_CMD_READ_DATA:
    case FDC_CMD_WRITE_DATA:
        fdc_cmd_read_write(s);
        return;
    case FDC_CMD_FORMAT_TRACK:
        fdc_cmd_format(s);
        return;
    case FDC_CMD_READ_ID:
        fdc_cmd_read_id(s);
        return;
    }
    switch (op) {
    case FDC_CMD_SPECIFY:
        s->specify[0] = s->cmd[1];
        s->specify[1] = s->cmd[2];
        fdc_idle(s);
        break;
    case FDC_CMD_SENSE_DRIVE:
        fdc_cmd_sense_drive(s);
        break;
    case FDC_CMD_RECALIBRATE:
        fdc_cmd_recalibrate(s);
        break;
    case FDC_CMD_SENSE_INTERRUPT:
        fdc_cmd_sense_interrupt(s);
        break;
    case FDC_CMD_SEEK:
    case FDC_CMD_RELATIVE_SEEK:
    case FDC_CMD_RELATIVE_SEEK | FDC_CMD_DIR:
        fdc_cmd_seek(s);
        break;
    case FDC_CMD_VERSION:
        r = FDC_VERSION_82077;
        fdc_result(s, &r, 1, false);
        break;
    case FDC_CMD_DUMPREG:
        fdc_cmd_dumpreg(s);
        break;
    case FDC_CMD_CONFIGURE:
        s->config = s->cmd[2];
        s->pretrk = s->cmd[3];
        fdc_idle(s);
        break;
    case FDC_CMD_LOCK:
    case FDC_CMD_LOCK | FDC_CMD_LOCK_BIT:
        s->lock = op & FDC_CMD_LOCK_BIT;
        r = s->lock ? 0x10 : 0x00;
        fdc_result(s, &r, 1, false);
        break;
    case FDC_CMD_PERPENDICULAR:
        if (s->cmd[1] & FDC_PERP_OW)
            s->perpendicular = s->cmd[1] & 0x3f;
        else
            s->perpendicular = (s->perpendicular & 0x3c) | (s->cmd[1] & 0x03);
        fdc_idle(s);
        break;
    case FDC_CMD_PART_ID:
        r = FDC_PART_ID_82078;
        fdc_result(s, &r, 1, false);
        break;
    default:
        fdc_invalid(s);
        break;
    }
}

/* Length of a command from its first byte, or 0 if the opcode is not implemented. */
static unsigned fdc_command_length(uint8_t op)
{
    switch (op & 0x1f) {
    case FDC_CMD_READ_DATA:
        return 9;                                   /* MT, MFM, SK all allowed */
    case FDC_CMD_WRITE_DATA:
        return (op & FDC_CMD_SK) ? 0 : 9;           /* no SK for writes */
    case FDC_CMD_READ_ID:
        return (op & (FDC_CMD_MT | FDC_CMD_SK)) ? 0 : 2;
    case FDC_CMD_FORMAT_TRACK:
        return (op & (FDC_CMD_MT | FDC_CMD_SK)) ? 0 : 6;
    }
    switch (op) {
    case FDC_CMD_SPECIFY:               return 3;
    case FDC_CMD_SENSE_DRIVE:           return 2;
    case FDC_CMD_RECALIBRATE:           return 2;
    case FDC_CMD_SENSE_INTERRUPT:       return 1;
    case FDC_CMD_SEEK:                  return 3;
    case FDC_CMD_RELATIVE_SEEK:         return 3;
    case FDC_CMD_RELATIVE_SEEK | FDC_CMD_DIR: return 3;
    case FDC_CMD_VERSION:               return 1;
    case FDC_CMD_DUMPREG:               return 1;
    case FDC_CMD_CONFIGURE:             return 4;
    case FDC_CMD_LOCK:                  return 1;
    case FDC_CMD_LOCK | FDC_CMD_LOCK_BIT: return 1;
    case FDC_CMD_PERPENDICULAR:         return 2;
    case FDC_CMD_PART_ID:               return 1;
    }
    return 0;
}

/* ---- Registers ---- */

static uint8_t fdc_msr(FDC *s)
{
    if (!(s->dor & FDC_DOR_NRESET))
        return 0;
    switch (s->phase) {
    case FDC_PHASE_IDLE:
        return FDC_MSR_RQM;
    case FDC_PHASE_COMMAND:
        return FDC_MSR_RQM | FDC_MSR_CMD_BSY;
    case FDC_PHASE_RESULT:
        return FDC_MSR_RQM | FDC_MSR_DIO | FDC_MSR_CMD_BSY;
    case FDC_PHASE_EXECUTION:
        if (s->x.dma)
            return FDC_MSR_CMD_BSY;
        return FDC_MSR_RQM | FDC_MSR_NON_DMA | FDC_MSR_CMD_BSY |
               (s->x.kind == FDC_XFER_READ ? FDC_MSR_DIO : 0);
    }
    return 0;
}

static uint8_t fdc_fifo_read(FDC *s)
{
    if (!(s->dor & FDC_DOR_NRESET))
        return 0;
    switch (s->phase) {
    case FDC_PHASE_RESULT: {
        uint8_t v = s->result[s->res_pos++];
        irq_lower(s->irq);                 /* the interrupt ends with the result phase's start */
        if (s->res_pos >= s->res_len)
            fdc_idle(s);
        return v;
    }
    case FDC_PHASE_EXECUTION:
        if (!s->x.dma)
            return fdc_pio_read(s);
        break;
    default:
        break;
    }
    LOG(LOG_GUEST_ERROR, "fdc: FIFO read outside a result or non-DMA read phase\n");
    return 0xff;
}

static void fdc_fifo_write(FDC *s, uint8_t v)
{
    if (!(s->dor & FDC_DOR_NRESET)) {
        LOG(LOG_GUEST_ERROR, "fdc: FIFO write 0x%02x while in reset ignored\n", v);
        return;
    }
    switch (s->phase) {
    case FDC_PHASE_IDLE: {
        unsigned len = fdc_command_length(v);
        if (v != FDC_CMD_SENSE_INTERRUPT)
            irq_lower(s->irq);
        s->cmd[0] = v;
        s->cmd_pos = 1;
        if (len == 0) {
            LOG(LOG_GUEST_ERROR, "fdc: invalid or unimplemented command 0x%02x\n", v);
            fdc_invalid(s);
            return;
        }
        s->cmd_len = (uint8_t)len;
        s->phase = FDC_PHASE_COMMAND;
        break;
    }
    case FDC_PHASE_COMMAND:
        s->cmd[s->cmd_pos++] = v;
        break;
    case FDC_PHASE_EXECUTION:
        if (!s->x.dma) {
            fdc_pio_write(s, v);
            return;
        }
        LOG(LOG_GUEST_ERROR, "fdc: FIFO write 0x%02x during a DMA transfer ignored\n", v);
        return;
    case FDC_PHASE_RESULT:
        LOG(LOG_GUEST_ERROR, "fdc: FIFO write 0x%02x during the result phase ignored\n", v);
        return;
    }
    if (s->cmd_pos >= s->cmd_len)
        fdc_execute(s);
}

static void fdc_dor_write(FDC *s, uint8_t v)
{
    uint8_t old = s->dor;
    s->dor = v;
    if ((old & FDC_DOR_NRESET) && !(v & FDC_DOR_NRESET))
        fdc_enter_reset(s);
    else if (!(old & FDC_DOR_NRESET) && (v & FDC_DOR_NRESET))
        fdc_leave_reset(s);
    /* DMA GATE gates DRQ of a transfer in progress. */
    if (s->phase == FDC_PHASE_EXECUTION && s->x.dma)
        fdc_set_dreq(s, v & FDC_DOR_DMA_GATE);
}

static uint32_t fdc_io_read(void *opaque, uint16_t offset, unsigned size)
{
    FDC *s = opaque;
    /* Range 0: base+1..base+5; range 1: base+7. */
    FdcDrive *sel;

    switch (offset) {
    case FDC_SRB:
        return FDC_SRB_ALWAYS | ((s->dor & 1) ? FDC_SRB_DRIVE_SEL0 : 0) |
               ((s->dor & FDC_DOR_MOT_EN0) ? FDC_SRB_MOT_EN0 : 0) |
               ((s->dor & FDC_DOR_MOT_EN1) ? FDC_SRB_MOT_EN1 : 0);
    case FDC_DOR:
        return s->dor;
    case FDC_TDR:
        return s->tdr;
    case FDC_MSR:
        return fdc_msr(s);
    case FDC_FIFO:
        return fdc_fifo_read(s);
    case FDC_DIR:
        sel = fdc_drive(s, s->dor & FDC_DOR_DRIVE_SEL);
        /* DSKCHG stays active while no disk is in the drive. */
        return (!fdc_drive_has_medium(sel) || sel->disk_changed) ? FDC_DIR_DSKCHG : 0;
    }
    return 0xff;
}

static void fdc_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    FDC *s = opaque;
    uint8_t v = (uint8_t)value;

    switch (offset) {
    case FDC_DOR:
        fdc_dor_write(s, v);
        break;
    case FDC_TDR:
        s->tdr = v & FDC_TDR_TAPE_SEL;
        break;
    case FDC_DSR:
        s->dsr = v & ~FDC_DSR_SW_RESET;
        s->ccr = v & FDC_DSR_DRATE_SEL;
        if ((v & FDC_DSR_SW_RESET) && (s->dor & FDC_DOR_NRESET)) {
            /* Software reset: self-clearing, the same as a DOR reset pulse. */
            fdc_enter_reset(s);
            fdc_leave_reset(s);
        }
        break;
    case FDC_FIFO:
        fdc_fifo_write(s, v);
        break;
    case FDC_CCR:
        s->ccr = v & FDC_CCR_DRATE_SEL;
        s->dsr = (s->dsr & ~FDC_DSR_DRATE_SEL) | s->ccr;
        break;
    default:
        LOG(LOG_GUEST_ERROR, "fdc: write 0x%02x to read-only register %u\n", v, offset);
        break;
    }
}

static uint32_t fdc_io_read_lo(void *opaque, uint16_t offset, unsigned size)
{
    return fdc_io_read(opaque, offset + FDC_SRB, size);
}

static void fdc_io_write_lo(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    fdc_io_write(opaque, offset + FDC_SRB, value, size);
}

static uint32_t fdc_io_read_hi(void *opaque, uint16_t offset, unsigned size)
{
    return fdc_io_read(opaque, FDC_DIR, size);
}

static void fdc_io_write_hi(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    fdc_io_write(opaque, FDC_CCR, value, size);
}

static const IoPortOps fdc_io_ops_lo = {
    .read = fdc_io_read_lo, .write = fdc_io_write_lo, .max_access = 1,
};
static const IoPortOps fdc_io_ops_hi = {
    .read = fdc_io_read_hi, .write = fdc_io_write_hi, .max_access = 1,
};

/* System reset: power-on state; media and geometry stay. */
static void fdc_reset(void *opaque)
{
    FDC *s = opaque;
    s->lock = false;
    fdc_enter_reset(s);
    s->dor = FDC_DOR_POWER_ON;
    s->tdr = 0;
    s->dsr = 0;
    s->ccr = 0;
    s->specify[0] = s->specify[1] = 0;
    s->perpendicular = 0;
    s->last_eot = 0;
    for (int i = 0; i < FDC_DRIVES; i++) {
        s->drives[i].last_sector = 0;
        s->drives[i].disk_changed = true;
    }
}

/* ---- Drives and board integration ---- */

static bool fdc_attach_drive(FDC *s, unsigned unit, DriveInfo *di, GError **errp)
{
    FdcDrive *d = &s->drives[unit];

    if (!drive_claim(di, "isa-fdc", errp))
        return false;
    d->connected = true;
    d->cmos_type = FDC_CMOS_TYPE_EMPTY;
    if (!di->blk)
        return true;
    int64_t len = blk_getlength(di->blk);
    const FdcFormat *f = NULL;
    for (size_t i = 0; i < ARRAY_LEN(fdc_formats); i++)
        if (len == fdc_formats[i].size)
            f = &fdc_formats[i];
    if (!f) {
        kestrel_set_error(errp, "floppy image '%s' is %" PRId64 " bytes, which is no floppy "
                          "format (160K, 180K, 320K, 360K, 720K, 1.2M, 1.44M or 2.88M raw "
                          "images only)", blk_filename(di->blk), len);
        return false;
    }
    d->blk = di->blk;
    d->read_only = di->read_only || blk_is_read_only(di->blk);
    d->tracks = f->tracks;
    d->heads = f->heads;
    d->sectors = f->sectors;
    d->cmos_type = f->cmos_type;
    return true;
}

typedef struct FdcFindRtc {
    void *rtc;
} FdcFindRtc;

static void fdc_find_rtc(Device *dev, void *opaque)
{
    FdcFindRtc *f = opaque;
    if (!f->rtc && !strcmp(dev->type->name, "mc146818rtc"))
        f->rtc = dev->state;
}

/* CMOS 0x10 (A: type in the high nibble, B: in the low) and the equipment byte. */
static void fdc_cmos_init(FDC *s)
{
    FdcFindRtc f = { NULL };
    devices_foreach(fdc_find_rtc, &f);
    if (!f.rtc)
        return;
    uint8_t types = 0;
    unsigned count = 0;
    for (int i = 0; i < FDC_DRIVES; i++) {
        if (!s->drives[i].connected)
            continue;
        types |= (uint8_t)(s->drives[i].cmos_type << (i == 0 ? 4 : 0));
        count++;
    }
    rtc_cmos_set(f.rtc, CMOS_FLOPPY_TYPES, types);
    uint8_t equip = rtc_cmos_get(f.rtc, CMOS_EQUIPMENT) & ~(CMOS_EQUIP_FLOPPY | 0xc0);
    if (count)
        equip |= CMOS_EQUIP_FLOPPY | (uint8_t)((count - 1) << CMOS_EQUIP_NFLOPPY_SHIFT);
    rtc_cmos_set(f.rtc, CMOS_EQUIPMENT, equip);
}

static void fdc_free(FDC *s)
{
    for (int i = 0; i < 2; i++)
        if (s->ports[i])
            ioport_unregister(s->ports[i]);
    if (s->dma_channel >= 0)
        isa_dma_unregister_channel(s->dma_channel);
    timer_free(s->overrun_timer);
    g_free(s);
}

static void *fdc_create(Machine *m, const DeviceProps *props, GError **errp)
{
    uint64_t iobase = device_props_get_uint(props, "iobase");
    uint64_t irq = device_props_get_uint(props, "irq");
    int64_t dma = device_props_get_int(props, "dma");
    const char *ids[FDC_DRIVES] = {
        device_props_get_str(props, "driveA"), device_props_get_str(props, "driveB"),
    };
    DriveInfo *dinfo[FDC_DRIVES] = { NULL, NULL };

    if (iobase > 0xfff8 || (iobase & 7)) {
        kestrel_set_error(errp, "isa-fdc: iobase=0x%" PRIx64 " must be a multiple of 8 below "
                          "0xfff8", iobase);
        return NULL;
    }
    if (irq > 15) {
        kestrel_set_error(errp, "isa-fdc: irq=%" PRIu64 " is not an ISA IRQ (0-15)", irq);
        return NULL;
    }
    if (dma > 7 || dma == 4 || dma < -1) {
        kestrel_set_error(errp, "isa-fdc: dma=%" PRId64 " is not an ISA DMA channel (0-3, 5-7, "
                          "or -1 for none)", dma);
        return NULL;
    }

    FDC *s = g_new0(FDC, 1);
    s->iobase = (uint16_t)iobase;
    s->irq = m ? machine_isa_irq(m, (int)irq) : NULL;
    s->dma_channel = -1;
    s->overrun_timer = timer_new(CLOCK_VIRTUAL, fdc_pio_overrun, s);

    for (unsigned unit = 0; unit < FDC_DRIVES; unit++) {
        DriveInfo *di;
        if (ids[unit]) {
            di = drive_get_by_id(ids[unit]);
            if (!di) {
                kestrel_set_error(errp, "isa-fdc: drive%c=%s: no -drive with that id",
                                  'A' + unit, ids[unit]);
                fdc_free(s);
                return NULL;
            }
        } else {
            di = drive_get(IF_FLOPPY, 0, (int)unit);
            if (di && di->claimed)
                di = NULL;
        }
        if (di && !fdc_attach_drive(s, unit, di, errp)) {
            fdc_free(s);
            return NULL;
        }
        dinfo[unit] = di;
    }

    s->ports[0] = ioport_register(s->iobase + FDC_SRB, 5, &fdc_io_ops_lo, s, "isa-fdc", errp);
    if (s->ports[0])
        s->ports[1] = ioport_register(s->iobase + FDC_DIR, 1, &fdc_io_ops_hi, s, "isa-fdc", errp);
    if (!s->ports[1]) {
        fdc_free(s);
        return NULL;
    }
    if (dma >= 0) {
        if (!isa_dma_register_channel((int)dma, fdc_dma_transfer, s)) {
            /* No 8237 (or the channel is taken): the controller still works in non-DMA mode. */
            LOG(LOG_UNIMP, "isa-fdc: DMA channel %" PRId64 " unavailable; non-DMA mode only\n",
                dma);
        } else {
            s->dma_channel = (int)dma;
        }
    }

    fdc_reset(s);
    /* CMOS describes the drives of the primary controller only. */
    if (s->iobase == FDC_DEFAULT_IOBASE)
        fdc_cmos_init(s);
    FWCfgState *fw = machine_fw_cfg(m);
    for (int i = 0; fw && i < FDC_DRIVES; i++) {
        /* bootindexA/B (QEMU's isa-fdc properties) win over the drive's own. */
        int64_t idx = device_props_get_int(props, i == 0 ? "bootindexA" : "bootindexB");
        if (idx < 0 && dinfo[i])
            idx = dinfo[i]->bootindex;
        if (s->drives[i].connected && idx >= 0) {
            char *path = g_strdup_printf("/pci@i0cf8/isa@1/fdc@%04x/floppy@%d", s->iobase, i);
            fw_cfg_bootorder_add(fw, (int)MIN(idx, (int64_t)INT32_MAX), path);
            g_free(path);
        }
    }
    return s;
}

static const PropDef fdc_props[] = {
    { "iobase", PROP_UINT, "0x3f0", "base I/O port (registers at +1..+5 and +7)" },
    { "irq", PROP_UINT, "6", "ISA IRQ" },
    { "dma", PROP_INT, "2", "ISA DMA channel (-1: none, non-DMA mode only)" },
    { "driveA", PROP_STRING, NULL, "id of the -drive for drive A: (default: if=floppy unit 0)" },
    { "driveB", PROP_STRING, NULL, "id of the -drive for drive B: (default: if=floppy unit 1)" },
    { "bootindexA", PROP_INT, "-1", "boot priority of drive A: (-1: the drive's own, if any)" },
    { "bootindexB", PROP_INT, "-1", "boot priority of drive B:" },
    { NULL }
};

static const DeviceType fdc_type = {
    .name = "isa-fdc",
    .desc = "82078-compatible floppy disk controller (IRQ 6, DMA 2)",
    .bus = "isa",
    .user_creatable = true,
    .props = fdc_props,
    .create = fdc_create,
    .reset = fdc_reset,
};

DEVICE_TYPE_REGISTER(fdc_type)

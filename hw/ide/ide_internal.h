/*
 * State shared by the IDE files: hw/ide/ide_core.c (ATA register model and
 * ATA commands), hw/ide/atapi.c (ATAPI CD-ROM packet commands) and
 * hw/ide/piix_ide.c (the PIIX3 IDE PCI function and its bus-master DMA).
 *
 * Nothing outside hw/ide/ includes this header.
 */
#ifndef HW_IDE_INTERNAL_H
#define HW_IDE_INTERNAL_H

#include "kestrel/common.h"
#include "kestrel/block.h"
#include "kestrel/irq.h"

#include <sys/uio.h>

/* ---- Task file registers (ATA/ATAPI-6, T13/1410D §7) ---- */

/* Command block register offsets from the channel's base (0x1F0 / 0x170). */
#define ATA_REG_DATA        0
#define ATA_REG_ERROR       1       /* read */
#define ATA_REG_FEATURE     1       /* write */
#define ATA_REG_NSECTOR     2       /* sector count; ATAPI: interrupt reason */
#define ATA_REG_LBAL        3       /* LBA low / sector number */
#define ATA_REG_LBAM        4       /* LBA mid / cylinder low; ATAPI: byte count low */
#define ATA_REG_LBAH        5       /* LBA high / cylinder high; ATAPI: byte count high */
#define ATA_REG_DEVICE      6       /* device/head */
#define ATA_REG_STATUS      7       /* read */
#define ATA_REG_COMMAND     7       /* write */

/* Status register */
#define ATA_STAT_BSY        0x80
#define ATA_STAT_DRDY       0x40
#define ATA_STAT_DF         0x20
#define ATA_STAT_DSC        0x10    /* device seek complete (ATA-6: obsolete, still set) */
#define ATA_STAT_DRQ        0x08
#define ATA_STAT_CORR       0x04
#define ATA_STAT_IDX        0x02
#define ATA_STAT_ERR        0x01

/* Error register */
#define ATA_ERR_ICRC        0x80
#define ATA_ERR_UNC         0x40
#define ATA_ERR_MC          0x20
#define ATA_ERR_IDNF        0x10
#define ATA_ERR_MCR         0x08
#define ATA_ERR_ABRT        0x04
#define ATA_ERR_TK0NF       0x02
#define ATA_ERR_AMNF        0x01
#define ATA_ERR_DIAG_PASSED 0x01    /* EXECUTE DEVICE DIAGNOSTIC / reset: no error */

/* Device/head register */
#define ATA_DEV_OBS         0xa0    /* bits 7 and 5: obsolete, read as 1 */
#define ATA_DEV_LBA         0x40
#define ATA_DEV_DEV         0x10    /* 0 = device 0 (master), 1 = device 1 (slave) */
#define ATA_DEV_HEAD_MASK   0x0f    /* CHS head / LBA bits 27:24 */

/* Device control register (control block, 0x3F6 / 0x376 write) */
#define ATA_CTL_HOB         0x80    /* read the previous ("high order") register contents */
#define ATA_CTL_SRST        0x04
#define ATA_CTL_NIEN        0x02

/* ATAPI interrupt reason (sector count register during PACKET) */
#define ATAPI_INTR_COD      0x01    /* command (1) or data (0) */
#define ATAPI_INTR_IO       0x02    /* to host (1) or to device (0) */

/* Signatures left in LBA mid/high by reset and diagnostics (ATA-6 §9.12). */
#define ATAPI_SIG_LBAM      0x14
#define ATAPI_SIG_LBAH      0xeb

#define IDE_SECTOR_SIZE     512
#define CD_SECTOR_SIZE      2048
#define CD_RAW_SECTOR_SIZE  2352
/* PIO/DMA staging: one chunk of a transfer is at most this many bytes. */
#define IDE_BUF_SIZE        (128 * 1024)
/* Largest READ/WRITE MULTIPLE block we advertise (IDENTIFY word 47). */
#define IDE_MAX_MULT        16

typedef struct IDEBus IDEBus;
typedef struct IDEDevice IDEDevice;
typedef struct BMDMAState BMDMAState;
typedef struct IDEAioReq IDEAioReq;

typedef enum {
    IDE_KIND_NONE,
    IDE_KIND_HD,
    IDE_KIND_CD,
} IDEKind;

/* Called when the host has moved the whole current DRQ block through the data port. */
typedef void IDEXferDoneFn(IDEDevice *d);
/* DMA finished: err 0, -EIO (backend), -EFAULT (PRD table / guest memory). */
typedef void IDEDmaDoneFn(IDEDevice *d, int err);
/* An asynchronous block request finished (only delivered if not cancelled). */
typedef void IDEAioDoneFn(IDEDevice *d, IDEAioReq *req, int ret);

struct IDEAioReq {
    IDEDevice *dev;
    unsigned gen;                   /* dev->gen at submission; stale completions are dropped */
    IDEAioDoneFn *cb;
    uint8_t *buf;
    size_t len;
    struct iovec iov;
};

/* One DMA job of a device: either from/to the image or from/to io_buffer. */
typedef struct IDEDmaJob {
    bool pending;                   /* command issued, waiting for the bus master's start */
    bool running;
    bool to_memory;                 /* device -> guest memory (a read command) */
    bool from_buffer;               /* data is io_buffer[0..buf_len), not the image */
    uint32_t buf_len;
    uint64_t offset;                /* next image byte */
    uint64_t sectors_left;
    unsigned in_secsize;            /* bytes per sector in the image (512 / 2048) */
    unsigned out_secsize;           /* bytes per sector on the bus (2048 or 2352 raw CD) */
    IDEDmaDoneFn *done;
} IDEDmaJob;

struct IDEDevice {
    /*
     * Guest-visible task file.  Both devices latch every command block
     * register write; reads come from the selected one.  hob_* hold the
     * previous write (the LBA48 "high order byte" FIFO).
     */
    uint8_t feature, nsector, lbal, lbam, lbah;
    uint8_t hob_feature, hob_nsector, hob_lbal, hob_lbam, hob_lbah;
    uint8_t status, error;
    bool irq_pending;               /* INTRQ asserted by this device (before nIEN gating) */

    /* Settings the guest changes. */
    uint8_t mult_sectors;           /* READ/WRITE MULTIPLE block size, 0 = disabled */
    bool write_cache;
    uint8_t xfer_mode;              /* SET FEATURES 03h value: 0x0n PIO, 0x2n MWDMA, 0x4n UDMA */
    unsigned cur_heads, cur_secs;   /* CHS translation (INITIALIZE DEVICE PARAMETERS) */

    /* Current command. */
    uint8_t cmd;
    uint8_t *io_buffer;             /* IDE_BUF_SIZE bytes */
    uint32_t data_pos, data_end;    /* DRQ block window in io_buffer */
    bool data_out;                  /* host -> device */
    IDEXferDoneFn *end_xfer;
    /* Sector transfers (ATA PIO, ATAPI PIO reads). */
    uint64_t xfer_lba;              /* next sector to read/write */
    uint32_t xfer_left;             /* sectors not yet read from / written to the image */
    uint32_t host_left;             /* ATA PIO: sectors not yet moved through the data port */
    uint32_t chunk_len, chunk_pos;  /* bytes of io_buffer holding the current chunk */
    uint32_t drq_sectors;           /* ATA: sectors per DRQ block (1 or multiple count) */
    bool lba48;
    IDEDmaJob dma;
    unsigned gen;                   /* bumped to cancel in-flight requests */

    /* ATAPI */
    uint8_t packet[12];
    uint16_t byte_count_limit;      /* LBA mid/high at PACKET time */
    bool packet_dma;                /* features bit 0 of the PACKET command */
    unsigned cd_out_secsize;        /* 2048 or 2352 for the current read */
    uint8_t sense_key, asc, ascq;
    bool unit_attention;            /* a media change not yet reported */
    bool tray_open;
    bool locked;                    /* PREVENT ALLOW MEDIUM REMOVAL */
    uint8_t media_event;            /* GET EVENT STATUS NOTIFICATION media event pending */

    /* Configuration (host plumbing). */
    IDEKind kind;
    int unit;
    IDEBus *bus;
    BlockBackend *blk;              /* NULL: no medium (empty CD-ROM) */
    bool read_only;
    uint64_t nb_sectors;            /* HD: 512-byte sectors; CD: 2048-byte sectors */
    unsigned cyls, heads, secs;     /* default CHS geometry */
    char serial[21], model[41], fwrev[9];
};

/* SFF-8038i bus-master registers of one channel (implemented in piix_ide.c). */
struct BMDMAState {
    uint8_t cmd;
    uint8_t status;
    uint32_t prd_table;
    /* PRD walk of the current transfer */
    uint32_t next_prd;              /* address of the next entry to fetch */
    uint32_t cur_addr, cur_left;    /* what is left of the current entry */
    bool eot;                       /* the current entry is the last one */
    unsigned prds_walked;
    IDEBus *bus;
    void *pci;                      /* the PCIDevice doing the DMA */
};

struct IDEBus {
    IDEDevice dev[2];
    uint8_t select;                 /* device/head register as last written */
    uint8_t devctl;
    bool decode;                    /* IDETIM IDE decode enable (piix_ide.c) */
    bool irq_level;
    int channel;
    IrqLine *irq;
    BMDMAState *bm;
    IDEDevice *dma_dev;             /* device owning the DMA engine, or NULL */
};

/* ---- ide_core.c ---- */
void ide_bus_init(IDEBus *bus, int channel, IrqLine *irq, BMDMAState *bm);
/* kind HD needs blk; kind CD may have blk NULL (empty tray). */
bool ide_device_attach(IDEDevice *d, IDEKind kind, BlockBackend *blk, bool read_only,
                       GError **errp);
void ide_bus_reset(IDEBus *bus);            /* hardware reset (power-on) */
uint32_t ide_cmd_read(IDEBus *bus, unsigned reg, unsigned size);
void ide_cmd_write(IDEBus *bus, unsigned reg, uint32_t val, unsigned size);
uint8_t ide_ctrl_read(IDEBus *bus);
void ide_ctrl_write(IDEBus *bus, uint8_t val);
/* The bus master was started / stopped by the guest. */
void ide_bus_dma_kick(IDEBus *bus);
void ide_bus_dma_cancel(IDEBus *bus);

/* Helpers for atapi.c */
void ide_set_irq(IDEDevice *d);
/* Make io_buffer[start..start+len) the next DRQ block (sets DRQ). */
void ide_transfer_window(IDEDevice *d, uint32_t start, uint32_t len, bool out,
                         IDEXferDoneFn *done);
void ide_transfer_start(IDEDevice *d, uint32_t len, bool out, IDEXferDoneFn *done);
void ide_cancel(IDEDevice *d);
IDEAioReq *ide_aio_new(IDEDevice *d, size_t len, IDEAioDoneFn *cb);
void ide_aio_read(IDEAioReq *req, uint64_t offset);
void ide_aio_write(IDEAioReq *req, uint64_t offset);
void ide_dma_setup(IDEDevice *d, bool to_memory, uint64_t offset, uint64_t sectors,
                   unsigned in_secsize, unsigned out_secsize, IDEDmaDoneFn *done);
void ide_dma_setup_buffer(IDEDevice *d, bool to_memory, uint32_t len, IDEDmaDoneFn *done);
void ide_set_signature(IDEDevice *d);
void ide_padstr(uint8_t *words, const char *s, unsigned len);

/* ---- atapi.c ---- */
void atapi_identify(IDEDevice *d);          /* IDENTIFY PACKET DEVICE data into io_buffer */
void atapi_packet_cmd(IDEDevice *d);        /* PACKET (A0h) issued */
void atapi_reset(IDEDevice *d, bool power_on);
/* Medium inserted (blk != NULL) or removed: unit attention and a media event. */
void atapi_media_changed(IDEDevice *d, BlockBackend *blk);
/* One 2352-byte raw mode 1 sector around 2048 bytes of user data. */
void ide_cd_sector_raw(uint8_t *out, const uint8_t *data, uint64_t lba);

/* ---- piix_ide.c ---- */
bool bmdma_started(BMDMAState *bm);
void bmdma_prd_reset(BMDMAState *bm);
/* Move len bytes between buf and the PRD's buffers; false if the table ran out or DMA failed. */
bool bmdma_transfer(BMDMAState *bm, void *buf, size_t len, bool to_memory);
/* The device finished (or gave up on) the transfer. */
void bmdma_transfer_done(BMDMAState *bm, bool error);
/* The channel's INTRQ went up: set the Interrupt bit. */
void bmdma_irq_raised(BMDMAState *bm);

#endif

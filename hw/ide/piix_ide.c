/*
 * PIIX3 IDE controller ("piix3-ide"): PCI function 00:01.1, 8086:7010,
 * class 010180 (mass storage, IDE, legacy-only programming interface with
 * bus mastering), with two IDE channels on the legacy ports and the
 * SFF-8038i bus-master DMA registers in BAR4.
 *
 * Follows the Intel 82371FB/82371SB PIIX/PIIX3 datasheet (290550), "IDE
 * Configuration Registers" (BMIBA at 0x20, IDETIM at 0x40/0x42 with bit 15
 * IDE decode enable, SIDETIM at 0x44) and "Bus Master IDE I/O Registers"
 * (BMICx command: bit 0 start/stop, bit 3 read/write control; BMISx status:
 * bit 0 active, bit 1 error, bit 2 interrupt (both write 1 to clear), bits
 * 5/6 drive 0/1 DMA capable; BMIDTPx descriptor table pointer, dword
 * aligned), and SFF-8038i rev 1.0 §2 for the Physical Region Descriptor
 * format: 32-bit buffer address (bit 0 zero), 16-bit byte count (0 means
 * 64 KiB, bit 0 zero), bit 31 of the second dword = end of table.
 * Channel set-up per ../shared/docs/pc-platform.md §1 and §12 and
 * firmware-seabios.md §7: primary 0x1F0-0x1F7 + 0x3F6 on ISA IRQ 14,
 * secondary 0x170-0x177 + 0x376 on IRQ 15.
 *
 * Guest-controlled PRD walks are bounded: an entry that cannot be fetched
 * from RAM, a buffer outside RAM (pci_dma_* refuse it; they also refuse
 * while COMMAND.MASTER is clear), a table that ends (EOT) before the
 * transfer does, or more than BM_MAX_PRDS entries for one start all end the
 * transfer with the Error bit and an aborted command, never a hang.
 *
 * The legacy ports decode while the channel's IDETIM IDE bit is set.  Its
 * datasheet reset value is 0 and SeaBIOS writes 0x8000; when no firmware
 * runs (-kernel) nobody would, so the bit starts set, as Linux's ata_piix
 * skips channels whose decode is off.
 *
 * Also here: the drives of -drive if=ide (bus 0-1, unit 0-1), the CMOS
 * hard-disk bytes (0x12, 0x19/0x1A, geometry at 0x1B and 0x24, 0x39 LBA
 * translation) and the bootindex paths for SeaBIOS.
 *
 * Not modelled: native-mode programming interface, PIO/DMA timings (the
 * IDETIM/SIDETIM values are stored only), the simplex bit.
 */
#include "hw/ide/ide_internal.h"
#include "kestrel/device.h"
#include "kestrel/drive.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/pci.h"
#include "kestrel/rtc.h"

#include <inttypes.h>
#include <string.h>

/* ---- Register table ---- */

#define PIIX_IDE_VENDOR         0x8086
#define PIIX_IDE_DEVICE         0x7010
#define PIIX_IDE_REVISION       0x00
#define PIIX_IDE_CLASS          0x010180    /* IDE, legacy mode, bus master capable */
#define PIIX_IDE_DEVFN          PCI_DEVFN(1, 1)

#define PIIX_IDE_BMIBA_BAR      4           /* config 0x20 */
#define PIIX_IDE_BM_SIZE        16

#define PIIX_IDETIM_PRI         0x40        /* 16 bits */
#define PIIX_IDETIM_SEC         0x42        /* 16 bits */
#define  IDETIM_IDE              0x8000     /* IDE decode enable */
#define PIIX_SIDETIM            0x44

/* Bus-master registers, per channel at +0 (primary) and +8 (secondary). */
#define BM_CMD                  0           /* BMICx */
#define  BM_CMD_START            0x01
#define  BM_CMD_READ             0x08       /* 1 = bus master writes memory (disk read) */
#define BM_STATUS               2           /* BMISx */
#define  BM_STATUS_ACTIVE        0x01
#define  BM_STATUS_ERROR         0x02
#define  BM_STATUS_INT           0x04
#define  BM_STATUS_DMA0_CAP      0x20
#define  BM_STATUS_DMA1_CAP      0x40
#define BM_PRD_TABLE            4           /* BMIDTPx, 32 bits, bits 1:0 read 0 */

/* PRD entry (SFF-8038i §2.1) */
#define PRD_SIZE                8
#define PRD_EOT                 0x80000000u
#define PRD_COUNT_MASK          0xfffe
#define PRD_MAX_BYTES           0x10000
/* A table may not cross a 64 KiB boundary, so no real one is longer than this. */
#define BM_MAX_PRDS             (0x10000 / PRD_SIZE)

/* Legacy channel resources */
static const struct {
    uint16_t cmd, ctl;
    int irq;
} piix_ide_legacy[2] = {
    { 0x1f0, 0x3f6, 14 },
    { 0x170, 0x376, 15 },
};

/* CMOS hard-disk bytes (IBM AT BIOS layout; firmware-seabios.md §5). */
#define CMOS_HD_TYPES           0x12        /* high nibble disk 0, low disk 1; F = extended */
#define CMOS_HD0_EXT_TYPE       0x19
#define CMOS_HD1_EXT_TYPE       0x1a
#define CMOS_HD0_PARAMS         0x1b        /* 9 bytes each: cyl, heads, precomp, ctrl, lz, spt */
#define CMOS_HD1_PARAMS         0x24
#define CMOS_HD_USER_TYPE       47
#define CMOS_ATA_TRANSLATION    0x39        /* 2 bits per IDE drive: 0 none, 1 LBA */
#define  ATA_TRANSLATION_LBA     1

/* ---- State ---- */

typedef struct PIIXIDEState {
    PCIDevice dev;                  /* config space, BAR4 */
    BMDMAState bm[2];
    IDEBus bus[2];

    Machine *m;
    IoPortRange *cmd_io[2];
    IoPortRange *ctl_io[2];
} PIIXIDEState;

/* ---- Bus master: PRD walking (the device side is in ide_core.c) ---- */

bool bmdma_started(BMDMAState *bm)
{
    return bm->cmd & BM_CMD_START;
}

void bmdma_prd_reset(BMDMAState *bm)
{
    bm->next_prd = bm->prd_table;
    bm->cur_addr = 0;
    bm->cur_left = 0;
    bm->eot = false;
    bm->prds_walked = 0;
}

bool bmdma_transfer(BMDMAState *bm, void *buf, size_t len, bool to_memory)
{
    PCIDevice *pci = bm->pci;
    uint8_t *p = buf;
    int ch = bm->bus ? bm->bus->channel : 0;

    if (!(bm->cmd & BM_CMD_START))
        return false;
    if (!!(bm->cmd & BM_CMD_READ) != to_memory)
        LOG(LOG_GUEST_ERROR, "piix3-ide: channel %d: bus master direction does not match "
            "the command\n", ch);
    while (len > 0) {
        if (bm->cur_left == 0) {
            uint8_t e[PRD_SIZE];
            if (bm->eot) {
                LOG(LOG_GUEST_ERROR, "piix3-ide: channel %d: PRD table ended before the "
                    "transfer did\n", ch);
                return false;
            }
            if (bm->prds_walked >= BM_MAX_PRDS) {
                LOG(LOG_GUEST_ERROR, "piix3-ide: channel %d: more than %d PRD entries without "
                    "end of table\n", ch, BM_MAX_PRDS);
                return false;
            }
            if (!pci_dma_read(pci, bm->next_prd, e, PRD_SIZE)) {
                LOG(LOG_GUEST_ERROR, "piix3-ide: channel %d: PRD entry at 0x%08x not in RAM\n",
                    ch, bm->next_prd);
                return false;
            }
            bm->next_prd += PRD_SIZE;
            bm->prds_walked++;
            bm->cur_addr = ld32_le(e) & ~1u;
            bm->cur_left = ld32_le(e + 4) & PRD_COUNT_MASK;
            if (bm->cur_left == 0)
                bm->cur_left = PRD_MAX_BYTES;
            bm->eot = ld32_le(e + 4) & PRD_EOT;
        }
        uint32_t n = bm->cur_left < len ? bm->cur_left : (uint32_t)len;
        bool ok = to_memory ? pci_dma_write(pci, bm->cur_addr, p, n)
                            : pci_dma_read(pci, bm->cur_addr, p, n);
        if (!ok) {
            LOG(LOG_GUEST_ERROR, "piix3-ide: channel %d: DMA to 0x%08x+%u failed\n", ch,
                bm->cur_addr, n);
            return false;
        }
        bm->cur_addr += n;
        bm->cur_left -= n;
        p += n;
        len -= n;
    }
    return true;
}

/*
 * SFF-8038i §3.2.2: Active drops when the last PRD has been used up; a
 * table larger than the transfer leaves it set (with Interrupt) until the
 * host clears Start.
 */
void bmdma_transfer_done(BMDMAState *bm, bool error)
{
    if (error)
        bm->status = (bm->status | BM_STATUS_ERROR) & ~BM_STATUS_ACTIVE;
    else if (bm->eot && bm->cur_left == 0)
        bm->status &= ~BM_STATUS_ACTIVE;
}

void bmdma_irq_raised(BMDMAState *bm)
{
    bm->status |= BM_STATUS_INT;
}

static uint8_t bmdma_readb(BMDMAState *bm, unsigned reg)
{
    switch (reg) {
    case BM_CMD:
        return bm->cmd;
    case BM_STATUS:
        return bm->status;
    case BM_PRD_TABLE:
    case BM_PRD_TABLE + 1:
    case BM_PRD_TABLE + 2:
    case BM_PRD_TABLE + 3:
        return (uint8_t)(bm->prd_table >> (8 * (reg - BM_PRD_TABLE)));
    }
    return 0;
}

static void bmdma_writeb(BMDMAState *bm, unsigned reg, uint8_t val)
{
    switch (reg) {
    case BM_CMD: {
        uint8_t old = bm->cmd;
        bm->cmd = val & (BM_CMD_START | BM_CMD_READ);
        if ((val & BM_CMD_START) && !(old & BM_CMD_START)) {
            bm->status |= BM_STATUS_ACTIVE;
            bmdma_prd_reset(bm);
            ide_bus_dma_kick(bm->bus);
        } else if (!(val & BM_CMD_START) && (old & BM_CMD_START)) {
            /* Stop: state is lost and Active drops (SFF-8038i §3.1). */
            bm->status &= ~BM_STATUS_ACTIVE;
            ide_bus_dma_cancel(bm->bus);
        }
        break;
    }
    case BM_STATUS:
        bm->status = (uint8_t)((bm->status & ~(val & (BM_STATUS_ERROR | BM_STATUS_INT)) &
                                ~(BM_STATUS_DMA0_CAP | BM_STATUS_DMA1_CAP)) |
                               (val & (BM_STATUS_DMA0_CAP | BM_STATUS_DMA1_CAP)));
        break;
    case BM_PRD_TABLE:
    case BM_PRD_TABLE + 1:
    case BM_PRD_TABLE + 2:
    case BM_PRD_TABLE + 3: {
        unsigned shift = 8 * (reg - BM_PRD_TABLE);
        bm->prd_table = (bm->prd_table & ~(0xffu << shift)) | (uint32_t)val << shift;
        bm->prd_table &= ~3u;
        break;
    }
    }
}

static uint32_t bmdma_io_read(void *opaque, uint16_t offset, unsigned size)
{
    PIIXIDEState *s = opaque;
    uint32_t v = 0;

    for (unsigned i = 0; i < size; i++) {
        unsigned off = (offset + i) & (PIIX_IDE_BM_SIZE - 1);
        v |= (uint32_t)bmdma_readb(&s->bm[off >> 3], off & 7) << (8 * i);
    }
    return v;
}

static void bmdma_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PIIXIDEState *s = opaque;

    for (unsigned i = 0; i < size; i++) {
        unsigned off = (offset + i) & (PIIX_IDE_BM_SIZE - 1);
        bmdma_writeb(&s->bm[off >> 3], off & 7, (uint8_t)(value >> (8 * i)));
    }
}

static const IoPortOps bmdma_io_ops = {
    .read = bmdma_io_read,
    .write = bmdma_io_write,
    .max_access = 4,
};

/* ---- Legacy ports ---- */

static uint32_t piix_ide_cmd_read(void *opaque, uint16_t offset, unsigned size)
{
    return ide_cmd_read(opaque, offset, size);
}

static void piix_ide_cmd_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    ide_cmd_write(opaque, offset, value, size);
}

static const IoPortOps piix_ide_cmd_ops = {
    .read = piix_ide_cmd_read,
    .write = piix_ide_cmd_write,
    .max_access = 4,            /* 32-bit PIO on the data register */
};

static uint32_t piix_ide_ctl_read(void *opaque, uint16_t offset, unsigned size)
{
    return ide_ctrl_read(opaque);
}

static void piix_ide_ctl_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    ide_ctrl_write(opaque, (uint8_t)value);
}

static const IoPortOps piix_ide_ctl_ops = {
    .read = piix_ide_ctl_read,
    .write = piix_ide_ctl_write,
    .max_access = 1,
};

/* ---- Configuration space ---- */

static void piix_ide_update_decode(PIIXIDEState *s)
{
    s->bus[0].decode = pci_get_word(s->dev.config + PIIX_IDETIM_PRI) & IDETIM_IDE;
    s->bus[1].decode = pci_get_word(s->dev.config + PIIX_IDETIM_SEC) & IDETIM_IDE;
}

static void piix_ide_config_write(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len)
{
    PIIXIDEState *s = (PIIXIDEState *)d;      /* dev is the first member */

    if (addr < PIIX_SIDETIM + 1 && addr + len > PIIX_IDETIM_PRI)
        piix_ide_update_decode(s);
}

static void piix_ide_set_wmask(PIIXIDEState *s)
{
    for (unsigned i = PIIX_IDETIM_PRI; i <= PIIX_SIDETIM; i++)
        s->dev.wmask[i] = 0xff;
}

static void piix_ide_reset(void *opaque)
{
    PIIXIDEState *s = opaque;
    uint16_t idetim = (s->m && !s->m->firmware_boot) ? IDETIM_IDE : 0;

    pci_device_reset(&s->dev);
    pci_set_word(s->dev.config + PIIX_IDETIM_PRI, idetim);
    pci_set_word(s->dev.config + PIIX_IDETIM_SEC, idetim);
    s->dev.config[PIIX_SIDETIM] = 0;
    for (int i = 0; i < 2; i++) {
        BMDMAState *bm = &s->bm[i];
        bm->cmd = 0;
        bm->status = 0;
        bm->prd_table = 0;
        bmdma_prd_reset(bm);
        ide_bus_reset(&s->bus[i]);
    }
    piix_ide_update_decode(s);
}

/* ---- Drives, CMOS and boot order ---- */

typedef struct {
    const char *name;
    void *state;
} DevFind;

static void find_rtc(Device *d, void *opaque)
{
    DevFind *f = opaque;
    if (!f->state && !strcmp(d->type->name, f->name))
        f->state = d->state;
}

static void cmos_set_hd(void *rtc, int type_reg, int params, const IDEDevice *d)
{
    rtc_cmos_set(rtc, type_reg, CMOS_HD_USER_TYPE);
    rtc_cmos_set(rtc, params + 0, (uint8_t)d->cyls);
    rtc_cmos_set(rtc, params + 1, (uint8_t)(d->cyls >> 8));
    rtc_cmos_set(rtc, params + 2, (uint8_t)d->heads);
    rtc_cmos_set(rtc, params + 3, 0xff);                /* write precompensation: none */
    rtc_cmos_set(rtc, params + 4, 0xff);
    rtc_cmos_set(rtc, params + 5, (uint8_t)(0xc0 | (d->heads > 8 ? 0x08 : 0)));
    rtc_cmos_set(rtc, params + 6, (uint8_t)d->cyls);    /* landing zone */
    rtc_cmos_set(rtc, params + 7, (uint8_t)(d->cyls >> 8));
    rtc_cmos_set(rtc, params + 8, (uint8_t)d->secs);
}

static void piix_ide_cmos_init(PIIXIDEState *s)
{
    DevFind f = { "mc146818rtc", NULL };
    const IDEDevice *hd0 = &s->bus[0].dev[0], *hd1 = &s->bus[0].dev[1];
    uint8_t types = 0, trans = 0;

    devices_foreach(find_rtc, &f);
    if (!f.state)
        return;
    if (hd0->kind == IDE_KIND_HD) {
        types |= 0xf0;
        cmos_set_hd(f.state, CMOS_HD0_EXT_TYPE, CMOS_HD0_PARAMS, hd0);
    }
    if (hd1->kind == IDE_KIND_HD) {
        types |= 0x0f;
        cmos_set_hd(f.state, CMOS_HD1_EXT_TYPE, CMOS_HD1_PARAMS, hd1);
    }
    rtc_cmos_set(f.state, CMOS_HD_TYPES, types);
    for (int i = 0; i < 4; i++)
        if (s->bus[i / 2].dev[i % 2].kind == IDE_KIND_HD)
            trans |= ATA_TRANSLATION_LBA << (2 * i);
    rtc_cmos_set(f.state, CMOS_ATA_TRANSLATION, trans);
}

/* The board's controller, for -device ide-hd/ide-cd (there is one per machine). */
static PIIXIDEState *piix_ide_board;

static void piix_ide_boot_path(PIIXIDEState *s, int b, int u, int bootindex)
{
    FWCfgState *fw = s->m ? machine_fw_cfg(s->m) : NULL;
    if (!fw || bootindex < 0)
        return;
    /* SeaBIOS's path for an IDE drive: drive@CHANNEL/disk@UNIT (firmware-seabios.md §5). */
    char *path = g_strdup_printf("/pci@i0cf8/ide@%x,%x/drive@%d/disk@%d",
                                 PCI_SLOT(PIIX_IDE_DEVFN), PCI_FUNC(PIIX_IDE_DEVFN), b, u);
    fw_cfg_bootorder_add(fw, bootindex, path);
    g_free(path);
}

static bool piix_ide_attach_drives(PIIXIDEState *s, GError **errp)
{
    for (int b = 0; b < 2; b++) {
        for (int u = 0; u < 2; u++) {
            DriveInfo *di = drive_get(IF_IDE, b, u);
            if (!di)
                continue;
            if (!drive_claim(di, "piix3-ide", errp))
                return false;
            IDEKind kind = di->media == DRIVE_MEDIA_CDROM ? IDE_KIND_CD : IDE_KIND_HD;
            if (kind == IDE_KIND_HD && !di->blk) {
                kestrel_set_error(errp, "piix3-ide: disk drive %s has no image "
                                  "(give file=, or media=cdrom for an empty CD-ROM)", di->id);
                return false;
            }
            if (!ide_device_attach(&s->bus[b].dev[u], kind, di->blk, di->read_only, errp))
                return false;
            piix_ide_boot_path(s, b, u, di->bootindex);
        }
    }
    return true;
}

/* ---- Registration ---- */

static void *piix_ide_create(Machine *m, const DeviceProps *props, GError **errp)
{
    (void)props;
    PCIBus *bus = m ? machine_pci_bus(m) : NULL;
    if (!bus) {
        kestrel_set_error(errp, "piix3-ide: needs the PCI bus (i440FX host bridge)");
        return NULL;
    }

    PIIXIDEState *s = g_new0(PIIXIDEState, 1);
    s->m = m;
    for (int i = 0; i < 2; i++) {
        s->bm[i].bus = &s->bus[i];
        s->bm[i].pci = &s->dev;
        ide_bus_init(&s->bus[i], i, machine_isa_irq(m, piix_ide_legacy[i].irq), &s->bm[i]);
    }
    if (!piix_ide_attach_drives(s, errp))
        return NULL;        /* drives may hold io buffers; the machine is not started */

    pci_config_set_ids(&s->dev, PIIX_IDE_VENDOR, PIIX_IDE_DEVICE, PIIX_IDE_REVISION,
                       PIIX_IDE_CLASS);
    pci_register_bar_io(&s->dev, PIIX_IDE_BMIBA_BAR, PIIX_IDE_BM_SIZE, &bmdma_io_ops, s);
    s->dev.config_write = piix_ide_config_write;
    piix_ide_set_wmask(s);
    if (!pci_device_register(bus, &s->dev, PIIX_IDE_DEVFN, "piix3-ide", errp))
        return NULL;
    piix_ide_set_wmask(s);

    for (int i = 0; i < 2; i++) {
        char *name = g_strdup_printf("ide%d", i);
        s->cmd_io[i] = ioport_register(piix_ide_legacy[i].cmd, 8, &piix_ide_cmd_ops,
                                       &s->bus[i], name, errp);
        if (s->cmd_io[i])
            s->ctl_io[i] = ioport_register(piix_ide_legacy[i].ctl, 1, &piix_ide_ctl_ops,
                                           &s->bus[i], name, errp);
        g_free(name);
        if (!s->cmd_io[i] || !s->ctl_io[i])
            return NULL;    /* registered on the bus: cannot be freed any more */
    }
    piix_ide_cmos_init(s);
    piix_ide_reset(s);
    piix_ide_board = s;
    return s;
}

static const PropDef piix_ide_props[] = {
    { NULL }
};

static const DeviceType piix_ide_type = {
    .name = "piix3-ide",
    .desc = "PIIX3 IDE controller with bus-master DMA (PCI 00:01.1)",
    .bus = "pci",
    .user_creatable = false,
    .props = piix_ide_props,
    .create = piix_ide_create,
    .reset = piix_ide_reset,
};

DEVICE_TYPE_REGISTER(piix_ide_type)

/*
 * -device ide-hd / ide-cd: a drive given as -drive if=none,id=ID attached to
 * the board's controller at bus=ide.N,unit=U (first free position when
 * omitted), with bootindex= for the firmware's boot order, as in QEMU.
 */
static void *ide_drive_device_create(Machine *m, const DeviceProps *props, IDEKind kind,
                                     GError **errp)
{
    const char *tname = kind == IDE_KIND_CD ? "ide-cd" : "ide-hd";
    PIIXIDEState *s = piix_ide_board;
    if (!s || s->m != m) {
        kestrel_set_error(errp, "%s: this machine has no IDE controller", tname);
        return NULL;
    }
    int want_bus = -1, want_unit = -1;
    const char *busname = device_props_get_str(props, "bus");
    if (busname) {
        if (!strcmp(busname, "ide.0"))
            want_bus = 0;
        else if (!strcmp(busname, "ide.1"))
            want_bus = 1;
        else {
            kestrel_set_error(errp, "%s: bus=%s: no such bus (use ide.0 or ide.1)", tname, busname);
            return NULL;
        }
    }
    if (device_props_has(props, "unit")) {
        uint64_t u = device_props_get_uint(props, "unit");
        if (u > 1) {
            kestrel_set_error(errp, "%s: unit=%" PRIu64 ": out of range (0 or 1)", tname, u);
            return NULL;
        }
        want_unit = (int)u;
    }
    int bus = -1, unit = -1;
    for (int b = 0; b < 2 && bus < 0; b++) {
        if (want_bus >= 0 && b != want_bus)
            continue;
        for (int u = 0; u < 2; u++) {
            if (want_unit >= 0 && u != want_unit)
                continue;
            if (s->bus[b].dev[u].kind == IDE_KIND_NONE) {
                bus = b;
                unit = u;
                break;
            }
        }
    }
    if (bus < 0) {
        kestrel_set_error(errp, "%s: %s is already in use", tname,
                          want_bus >= 0 && want_unit >= 0 ? "that bus/unit" : "every free position");
        return NULL;
    }
    const char *id = device_props_get_str(props, "drive");
    DriveInfo *di = id ? drive_get_by_id(id) : NULL;
    if (id && !di) {
        kestrel_set_error(errp, "%s: drive=%s: no -drive with that id", tname, id);
        return NULL;
    }
    if (!di && kind == IDE_KIND_HD) {
        kestrel_set_error(errp, "ide-hd: drive= is required (a -drive if=none,id=ID)");
        return NULL;
    }
    if (di && !drive_claim(di, tname, errp))
        return NULL;
    BlockBackend *blk = di ? di->blk : NULL;
    if (kind == IDE_KIND_HD && !blk) {
        kestrel_set_error(errp, "ide-hd: drive %s has no image", di->id);
        return NULL;
    }
    bool ro = kind == IDE_KIND_CD || (di && di->read_only);
    if (!ide_device_attach(&s->bus[bus].dev[unit], kind, blk, ro, errp))
        return NULL;
    piix_ide_boot_path(s, bus, unit, (int)device_props_get_int(props, "bootindex"));
    piix_ide_cmos_init(s);      /* disk types and translation bytes follow the drives */
    return &s->bus[bus].dev[unit];
}

static void *ide_hd_create(Machine *m, const DeviceProps *props, GError **errp)
{
    return ide_drive_device_create(m, props, IDE_KIND_HD, errp);
}

static void *ide_cd_create(Machine *m, const DeviceProps *props, GError **errp)
{
    return ide_drive_device_create(m, props, IDE_KIND_CD, errp);
}

static const PropDef ide_drive_props[] = {
    { "drive", PROP_STRING, NULL, "-drive id (if=none) holding the image" },
    { "bus", PROP_STRING, NULL, "ide.0 (primary) or ide.1 (secondary); default: first free" },
    { "unit", PROP_UINT, NULL, "0 (master) or 1 (slave); default: first free" },
    { "bootindex", PROP_INT, "-1", "position in the firmware's boot order (lowest first)" },
    { NULL }
};

static const DeviceType ide_hd_type = {
    .name = "ide-hd",
    .desc = "IDE hard disk on the PIIX3 IDE controller (drive=, bus=ide.N, unit=, bootindex=)",
    .bus = "ide",
    .user_creatable = true,
    .props = ide_drive_props,
    .create = ide_hd_create,
};

static const DeviceType ide_cd_type = {
    .name = "ide-cd",
    .desc = "IDE (ATAPI) CD-ROM on the PIIX3 IDE controller (drive=, bus=ide.N, unit=, bootindex=)",
    .bus = "ide",
    .user_creatable = true,
    .props = ide_drive_props,
    .create = ide_cd_create,
};

DEVICE_TYPE_REGISTER(ide_hd_type)
DEVICE_TYPE_REGISTER(ide_cd_type)

/*
 * The PC's two cascaded Intel 8237A DMA controllers and the 74LS612-style
 * page registers ("i8237"), as integrated in the PIIX3 (82371SB datasheet,
 * "DMA Controller" chapter) and described in the Intel 8237A/82C37A-5
 * datasheet: "Register Description" (Current/Base Address and Word Count,
 * Command, Mode, Request, Mask, Status, Temporary), "Software Commands"
 * (Clear Byte Pointer Flip-Flop, Master Clear, Clear Mask Register) and
 * "Auto-initialize" (base registers reload at terminal count; without it
 * the channel's mask bit is set at terminal count).
 *
 * Port map (pc-platform.md §1):
 *   0x00-0x0f  controller 1, channels 0-3, 8-bit transfers
 *   0xc0-0xdf  controller 2, channels 4-7, 16-bit transfers; register n at
 *              0xc0 + 2n (the odd port in between aliases it)
 *   0x81-0x8f  page registers: ch2 0x81, ch3 0x82, ch1 0x83, ch0 0x87,
 *              ch6 0x89, ch7 0x8a, ch5 0x8b, ch4/refresh 0x8f; the others
 *              are plain read/write latches.  0x80 is the POST port
 *              (hw/pc/ioport80.c), not a page register here.
 *
 * Address generation: 8-bit channels use page << 16 | address and wrap
 * inside the 64 KiB page; 16-bit channels use (page & 0xfe) << 16 |
 * address << 1 (the address and count registers hold words) and wrap inside
 * the 128 KiB block.  24 address bits, as on the PIIX3 (no high page
 * registers at 0x48x).
 *
 * Devices use the engine through include/kestrel/isa-dma.h; memory goes
 * through the machine's address space, which drops writes to (and reads
 * 0xff from) anything that is not there, and tells the CPU engine about RAM
 * it wrote (memory.c notifies on every RAM write it does).
 *
 * Not modelled: memory-to-memory transfers (command bit 0; channel 0/1),
 * DREQ/DACK polarity and timing bits of the command register (stored
 * only), the difference between demand, single and block mode (the device
 * decides how much it moves per handler call), software DMA requests
 * (the request register is stored and shown in the status register but
 * starts no transfer), and the cascade: controller 1 works whether or not
 * the guest unmasked channel 4 (SeaBIOS and Linux both program channel 4
 * as cascade and unmask it; nothing depends on it being masked).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/isa-dma.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"

/* ---- Register table (8237A, register index inside one controller) ---- */

/* 0-7: channel n's address (2n) and word count (2n+1), through the flip-flop. */
#define DMA_REG_STATUS          0x08    /* read */
#define DMA_REG_COMMAND         0x08    /* write */
#define DMA_REG_REQUEST         0x09    /* write */
#define DMA_REG_SINGLE_MASK     0x0a    /* write */
#define DMA_REG_MODE            0x0b    /* write */
#define DMA_REG_CLEAR_FF        0x0c    /* write: clear byte pointer flip-flop */
#define DMA_REG_TEMPORARY       0x0d    /* read */
#define DMA_REG_MASTER_CLEAR    0x0d    /* write */
#define DMA_REG_CLEAR_MASK      0x0e    /* write: unmask all four channels */
#define DMA_REG_ALL_MASK        0x0f    /* write all mask bits; reads them back (PIIX3) */

/* Command register */
#define DMA_CMD_MEM_TO_MEM      0x01
#define DMA_CMD_CH0_HOLD        0x02
#define DMA_CMD_COND            0x04    /* controller disable */
#define DMA_CMD_COMP_TIMING     0x08
#define DMA_CMD_ROT_PRIORITY    0x10
#define DMA_CMD_EXT_WRITE       0x20
#define DMA_CMD_DREQ_LOW        0x40
#define DMA_CMD_DACK_HIGH       0x80

/* Mode register */
#define DMA_MODE_CHANNEL        0x03
#define DMA_MODE_TYPE_SHIFT     2
#define DMA_MODE_TYPE_MASK      0x0c    /* 00 verify, 01 write, 10 read */
#define DMA_MODE_AUTOINIT       0x10
#define DMA_MODE_DECREMENT      0x20
#define DMA_MODE_MODE_MASK      0xc0    /* 00 demand, 01 single, 10 block, 11 cascade */

/* Request and single-mask registers */
#define DMA_REQ_CHANNEL         0x03
#define DMA_REQ_SET             0x04
#define DMA_MASK_CHANNEL        0x03
#define DMA_MASK_SET            0x04

/* Status register: bits 3:0 terminal count reached (clear on read), 7:4 request pending. */
#define DMA_STATUS_TC_SHIFT     0
#define DMA_STATUS_REQ_SHIFT    4

#define DMA1_BASE               0x00
#define DMA2_BASE               0xc0
#define DMA_PAGE_BASE           0x81    /* 0x81-0x8f */
#define DMA_PAGE_COUNT          15

/* Page register port (offset from 0x80) of each channel [PIIX3, pc-platform.md §1]. */
static const uint8_t dma_page_port[ISA_DMA_CHANNELS] = {
    0x07, 0x03, 0x01, 0x02, 0x0f, 0x0b, 0x09, 0x0a,
};

/* ---- State ---- */

typedef struct I8237Channel {
    uint16_t base_addr, base_count;
    uint16_t cur_addr, cur_count;
    uint8_t mode;
    bool dreq;                       /* the device's DREQ line */
} I8237Channel;

typedef struct I8237Controller {
    uint8_t command;
    uint8_t status_tc;               /* bits 3:0 of the status register */
    uint8_t request;                 /* software request bits 3:0 */
    uint8_t mask;                    /* bits 3:0, 1 = masked */
    uint8_t temporary;
    bool flip_flop;                  /* false: next access is the low byte */
} I8237Controller;

typedef struct I8237 {
    I8237Controller ctrl[2];
    I8237Channel chan[ISA_DMA_CHANNELS];
    uint8_t page[16];                /* latches at 0x80-0x8f (index 0 unused) */

    /* Host plumbing. */
    Machine *machine;
    IsaDmaTransferHandler handler[ISA_DMA_CHANNELS];
    void *handler_opaque[ISA_DMA_CHANNELS];
    bool running, rerun;
    IoPortRange *ports[3];
} I8237;

/* One machine, one pair of controllers: the device API below has no handle. */
static I8237 *isa_dma;

/* ---- Behaviour ---- */

static void i8237_master_clear(I8237Controller *c)
{
    c->command = 0;
    c->status_tc = 0;
    c->request = 0;
    c->temporary = 0;
    c->flip_flop = false;
    c->mask = 0x0f;
}

static void i8237_reset(void *opaque)
{
    I8237 *s = opaque;
    for (int i = 0; i < 2; i++)
        i8237_master_clear(&s->ctrl[i]);
    for (int ch = 0; ch < ISA_DMA_CHANNELS; ch++) {
        bool dreq = s->chan[ch].dreq;      /* a device line, not a register */
        memset(&s->chan[ch], 0, sizeof(s->chan[ch]));
        s->chan[ch].dreq = dreq;
    }
    memset(s->page, 0, sizeof(s->page));
}

static bool i8237_channel_ready(I8237 *s, int ch)
{
    const I8237Controller *c = &s->ctrl[ch >> 2];
    return !(c->command & DMA_CMD_COND) && !(c->mask & (1u << (ch & 3)));
}

/*
 * Give every device that holds DREQ on a ready channel one handler call.
 * Re-entry (a handler raising another DREQ) is folded into a bounded number
 * of extra passes, so a handler that makes no progress cannot loop.
 */
static void i8237_run(I8237 *s)
{
    if (s->running) {
        s->rerun = true;
        return;
    }
    s->running = true;
    for (int pass = 0; pass < 4; pass++) {
        s->rerun = false;
        for (int ch = 0; ch < ISA_DMA_CHANNELS; ch++)
            if (s->handler[ch] && s->chan[ch].dreq && i8237_channel_ready(s, ch))
                s->handler[ch](s->handler_opaque[ch], ch);
        if (!s->rerun)
            break;
    }
    s->running = false;
}

static uint8_t i8237_status(I8237 *s, int ci)
{
    I8237Controller *c = &s->ctrl[ci];
    uint8_t req = c->request;
    for (int i = 0; i < 4; i++)
        if (s->chan[ci * 4 + i].dreq)
            req |= 1u << i;
    uint8_t v = (uint8_t)(c->status_tc << DMA_STATUS_TC_SHIFT | req << DMA_STATUS_REQ_SHIFT);
    c->status_tc = 0;           /* 8237A: TC bits are cleared by reading the status */
    return v;
}

static uint8_t i8237_ctrl_read(I8237 *s, int ci, unsigned reg)
{
    I8237Controller *c = &s->ctrl[ci];

    if (reg < 8) {
        I8237Channel *ch = &s->chan[ci * 4 + (reg >> 1)];
        uint16_t v = (reg & 1) ? ch->cur_count : ch->cur_addr;
        bool high = c->flip_flop;
        c->flip_flop = !c->flip_flop;
        return high ? v >> 8 : v & 0xff;
    }
    switch (reg) {
    case DMA_REG_STATUS:
        return i8237_status(s, ci);
    case DMA_REG_TEMPORARY:
        return c->temporary;
    case DMA_REG_ALL_MASK:
        return 0xf0 | c->mask;
    default:
        LOG(LOG_GUEST_ERROR, "i8237: read of write-only register %u of controller %d\n",
            reg, ci + 1);
        return 0xff;
    }
}

static void i8237_ctrl_write(I8237 *s, int ci, unsigned reg, uint8_t v)
{
    I8237Controller *c = &s->ctrl[ci];

    if (reg < 8) {
        I8237Channel *ch = &s->chan[ci * 4 + (reg >> 1)];
        uint16_t *base = (reg & 1) ? &ch->base_count : &ch->base_addr;
        uint16_t *cur = (reg & 1) ? &ch->cur_count : &ch->cur_addr;
        /* Writing programs the base and the current register together. */
        if (c->flip_flop)
            *base = (uint16_t)((*base & 0x00ff) | v << 8);
        else
            *base = (uint16_t)((*base & 0xff00) | v);
        *cur = *base;
        c->flip_flop = !c->flip_flop;
        return;
    }
    switch (reg) {
    case DMA_REG_COMMAND:
        if (v & DMA_CMD_MEM_TO_MEM)
            LOG(LOG_UNIMP, "i8237: memory-to-memory transfers are not modelled\n");
        c->command = v;
        break;
    case DMA_REG_REQUEST:
        if (v & DMA_REQ_SET)
            c->request |= 1u << (v & DMA_REQ_CHANNEL);
        else
            c->request &= ~(1u << (v & DMA_REQ_CHANNEL));
        return;
    case DMA_REG_SINGLE_MASK:
        if (v & DMA_MASK_SET)
            c->mask |= 1u << (v & DMA_MASK_CHANNEL);
        else
            c->mask &= ~(1u << (v & DMA_MASK_CHANNEL));
        break;
    case DMA_REG_MODE:
        s->chan[ci * 4 + (v & DMA_MODE_CHANNEL)].mode = v;
        return;
    case DMA_REG_CLEAR_FF:
        c->flip_flop = false;
        return;
    case DMA_REG_MASTER_CLEAR:
        i8237_master_clear(c);
        return;
    case DMA_REG_CLEAR_MASK:
        c->mask = 0;
        break;
    case DMA_REG_ALL_MASK:
        c->mask = v & 0x0f;
        break;
    }
    /* Command, mask changes may let a waiting device run. */
    i8237_run(s);
}

static uint32_t i8237_dma1_read(void *opaque, uint16_t offset, unsigned size)
{
    return i8237_ctrl_read(opaque, 0, offset & 0x0f);
}

static void i8237_dma1_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    i8237_ctrl_write(opaque, 0, offset & 0x0f, (uint8_t)value);
}

static uint32_t i8237_dma2_read(void *opaque, uint16_t offset, unsigned size)
{
    return i8237_ctrl_read(opaque, 1, (offset >> 1) & 0x0f);
}

static void i8237_dma2_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    i8237_ctrl_write(opaque, 1, (offset >> 1) & 0x0f, (uint8_t)value);
}

static uint32_t i8237_page_read(void *opaque, uint16_t offset, unsigned size)
{
    I8237 *s = opaque;
    return s->page[(DMA_PAGE_BASE - 0x80 + offset) & 0x0f];
}

static void i8237_page_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    I8237 *s = opaque;
    s->page[(DMA_PAGE_BASE - 0x80 + offset) & 0x0f] = (uint8_t)value;
}

static const IoPortOps i8237_dma1_ops = {
    .read = i8237_dma1_read, .write = i8237_dma1_write, .max_access = 1,
};
static const IoPortOps i8237_dma2_ops = {
    .read = i8237_dma2_read, .write = i8237_dma2_write, .max_access = 1,
};
static const IoPortOps i8237_page_ops = {
    .read = i8237_page_read, .write = i8237_page_write, .max_access = 1,
};

/* ---- Device side (isa-dma.h) ---- */

static bool isa_dma_valid(int ch)
{
    return isa_dma && ch >= 0 && ch < ISA_DMA_CHANNELS && ch != 4;
}

bool isa_dma_register_channel(int channel, IsaDmaTransferHandler handler, void *opaque)
{
    if (!isa_dma_valid(channel) || !handler || isa_dma->handler[channel])
        return false;
    isa_dma->handler[channel] = handler;
    isa_dma->handler_opaque[channel] = opaque;
    return true;
}

void isa_dma_unregister_channel(int channel)
{
    if (!isa_dma_valid(channel))
        return;
    isa_dma->handler[channel] = NULL;
    isa_dma->handler_opaque[channel] = NULL;
    isa_dma->chan[channel].dreq = false;
}

void isa_dma_hold_DREQ(int channel)
{
    if (!isa_dma_valid(channel))
        return;
    isa_dma->chan[channel].dreq = true;
    i8237_run(isa_dma);
}

void isa_dma_release_DREQ(int channel)
{
    if (isa_dma_valid(channel))
        isa_dma->chan[channel].dreq = false;
}

IsaDmaTransferType isa_dma_transfer_type(int channel)
{
    if (!isa_dma_valid(channel))
        return ISA_DMA_VERIFY;
    return (isa_dma->chan[channel].mode & DMA_MODE_TYPE_MASK) >> DMA_MODE_TYPE_SHIFT;
}

uint32_t isa_dma_bytes_left(int channel)
{
    if (!isa_dma_valid(channel))
        return 0;
    return ((uint32_t)isa_dma->chan[channel].cur_count + 1) << (channel >> 2);
}

static hwaddr i8237_phys(I8237 *s, int ch, uint16_t addr)
{
    uint8_t page = s->page[dma_page_port[ch]];
    if (ch < 4)
        return (hwaddr)page << 16 | addr;
    return (hwaddr)(page & 0xfe) << 16 | (hwaddr)addr << 1;
}

/*
 * The one transfer loop: moves whole units (1 byte on controller 1, 2 on
 * controller 2) until len runs out or the terminal count.  Memory is
 * touched only through address_space_read/write, chunked so that no chunk
 * crosses the 64K/128K wrap of the address register.
 */
static size_t i8237_transfer(int ch, uint8_t *buf, size_t len, bool to_memory, bool *tc)
{
    if (tc)
        *tc = false;
    if (!isa_dma_valid(ch))
        return 0;
    I8237 *s = isa_dma;
    I8237Channel *c = &s->chan[ch];
    I8237Controller *ctl = &s->ctrl[ch >> 2];
    unsigned unit = ch < 4 ? 1 : 2;
    unsigned bit = 1u << (ch & 3);
    IsaDmaTransferType type = (c->mode & DMA_MODE_TYPE_MASK) >> DMA_MODE_TYPE_SHIFT;
    bool decrement = c->mode & DMA_MODE_DECREMENT;
    bool access = to_memory ? type == ISA_DMA_WRITE : type == ISA_DMA_READ;
    AddressSpace *as = s->machine ? s->machine->as : NULL;
    size_t done = 0;

    if (!i8237_channel_ready(s, ch))
        return 0;
    if (!access && type != ISA_DMA_VERIFY)
        LOG(LOG_GUEST_ERROR, "i8237: channel %d programmed for %s transfers, device %s memory; "
            "no memory cycles\n", ch, type == ISA_DMA_WRITE ? "write" :
            type == ISA_DMA_READ ? "read" : "illegal", to_memory ? "writes" : "reads");

    while (len - done >= unit) {
        uint32_t left = (uint32_t)c->cur_count + 1;          /* units to terminal count */
        uint32_t n = (len - done) / unit < left ? (uint32_t)((len - done) / unit) : left;
        /* Contiguous run before the address register wraps; one unit at a time downwards. */
        if (decrement)
            n = 1;
        else if (n > 0x10000u - c->cur_addr)
            n = 0x10000u - c->cur_addr;
        if (access && as) {
            hwaddr pa = i8237_phys(s, ch, c->cur_addr);
            if (to_memory)
                address_space_write(as, pa, buf + done, (uint64_t)n * unit);
            else
                address_space_read(as, pa, buf + done, (uint64_t)n * unit);
        } else if (!to_memory) {
            memset(buf + done, 0xff, (size_t)n * unit);
        }
        done += (size_t)n * unit;
        c->cur_addr = (uint16_t)(decrement ? c->cur_addr - n : c->cur_addr + n);
        c->cur_count = (uint16_t)(c->cur_count - n);
        if (n == left) {
            /* Terminal count: EOP; auto-init reloads, otherwise the channel masks itself. */
            ctl->status_tc |= bit;
            ctl->request &= ~bit;
            if (tc)
                *tc = true;
            if (c->mode & DMA_MODE_AUTOINIT) {
                c->cur_addr = c->base_addr;
                c->cur_count = c->base_count;
            } else {
                ctl->mask |= bit;
            }
            break;
        }
    }
    return done;
}

size_t isa_dma_write_memory(int channel, const void *buf, size_t len, bool *tc)
{
    return i8237_transfer(channel, (uint8_t *)buf, len, true, tc);
}

size_t isa_dma_read_memory(int channel, void *buf, size_t len, bool *tc)
{
    return i8237_transfer(channel, buf, len, false, tc);
}

/* ---- Registration ---- */

static void *i8237_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (isa_dma) {
        kestrel_set_error(errp, "i8237: the machine already has its DMA controllers");
        return NULL;
    }
    I8237 *s = g_new0(I8237, 1);
    s->machine = m;
    s->ports[0] = ioport_register(DMA1_BASE, 16, &i8237_dma1_ops, s, "dma1", errp);
    if (s->ports[0])
        s->ports[1] = ioport_register(DMA2_BASE, 32, &i8237_dma2_ops, s, "dma2", errp);
    if (s->ports[1])
        s->ports[2] = ioport_register(DMA_PAGE_BASE, DMA_PAGE_COUNT, &i8237_page_ops, s,
                                      "dma-page", errp);
    if (!s->ports[2]) {
        for (int i = 0; i < 2; i++)
            if (s->ports[i])
                ioport_unregister(s->ports[i]);
        g_free(s);
        return NULL;
    }
    i8237_reset(s);
    isa_dma = s;
    return s;
}

static const PropDef i8237_props[] = {
    { NULL }
};

static const DeviceType i8237_type = {
    .name = "i8237",
    .desc = "two cascaded 8237A ISA DMA controllers and page registers",
    .bus = "sys",
    .user_creatable = false,
    .props = i8237_props,
    .create = i8237_create,
    .reset = i8237_reset,
};

DEVICE_TYPE_REGISTER(i8237_type)

/*
 * The PC/AT pair of Intel 8259A programmable interrupt controllers
 * ("isa-i8259", created by irqchip_userspace_init): master at 0x20/0x21
 * (ISA IRQ 0-7), slave at 0xA0/0xA1 (IRQ 8-15) cascaded on master IR2, plus
 * the PIIX edge/level control registers (ELCR) at 0x4D0/0x4D1.
 *
 * Follows the Intel 8259A datasheet (order no. 231468): "Initialization
 * Command Words" (ICW1-ICW4), "Operation Command Words" (OCW1-OCW3), "The
 * Interrupt Sequence" (INTA cycle), "End of Interrupt", "Automatic
 * Rotation"/"Specific Rotation", "Special Mask Mode", "Poll Command",
 * "Special Fully Nested Mode", "Cascading"; and the PIIX3 datasheet (290550)
 * "ELCR1/ELCR2 — Edge/Level Control Registers" for level sensitivity (on a
 * PIIX the ELCR, not ICW1.LTIM, selects the trigger mode).  QEMU's ELCR
 * writable masks: 0xF8 master, 0xDE slave (pc-platform.md §2).
 *
 * Modelling choices:
 *  - Edge inputs latch IRR on a rising edge and keep it until the INTA cycle
 *    (the request may go away before it is taken, as the PIT's mode 2 pulse
 *    does).  Level inputs hold IRR exactly while the line is high.
 *  - The master's IR2 follows the slave's INT output as a level, whatever
 *    the master's ELCR says; this is how the cascade behaves on the board
 *    and avoids losing a slave request behind a stale master edge latch.
 *  - A request that disappears before the INTA cycle yields the spurious
 *    vector of IR7 (master) or IR15 (slave) with no ISR bit set.
 *  - Not modelled: 8080/8085 mode (ICW4.uPM = 0, logged), buffered mode,
 *    single (non-cascaded) configuration beyond ignoring ICW3.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "hw/pc/irqchip_internal.h"

/* ---- Register table ---- */

#define PIC_MASTER_BASE     0x20
#define PIC_SLAVE_BASE      0xa0
#define PIC_ELCR_BASE       0x4d0
#define PIC_CASCADE_IRQ     2

/* Command port (A0 = 0) writes */
#define ICW1_SEL            0x10    /* D4 = 1: ICW1 */
#define ICW1_IC4            0x01    /* ICW4 needed */
#define ICW1_SNGL           0x02    /* single, no ICW3 */
#define ICW1_ADI            0x04    /* call address interval (8080 only) */
#define ICW1_LTIM           0x08    /* level triggered (superseded by the ELCR) */
#define OCW_SEL_MASK        0x18    /* D4:D3 = 00 OCW2, 01 OCW3 */
#define OCW2_SEL            0x00
#define OCW3_SEL            0x08
#define OCW2_LEVEL          0x07    /* L2-L0 */
#define OCW2_CMD_SHIFT      5       /* R SL EOI */
#define OCW2_ROT_AEOI_CLR   0
#define OCW2_NS_EOI         1
#define OCW2_NOP            2
#define OCW2_S_EOI          3
#define OCW2_ROT_AEOI_SET   4
#define OCW2_ROT_NS_EOI     5
#define OCW2_SET_PRIO       6
#define OCW2_ROT_S_EOI      7
#define OCW3_RIS            0x01    /* 1: read ISR, 0: read IRR (with RR) */
#define OCW3_RR             0x02    /* act on RIS */
#define OCW3_P              0x04    /* poll command */
#define OCW3_SMM            0x20    /* special mask mode (with ESMM) */
#define OCW3_ESMM           0x40
/* ICW4 */
#define ICW4_UPM            0x01    /* 8086/8088 mode */
#define ICW4_AEOI           0x02
#define ICW4_MS             0x04
#define ICW4_BUF            0x08
#define ICW4_SFNM           0x10
/* Poll word */
#define POLL_INT            0x80

/* ELCR writable bits (IRQ0-2 and IRQ8/13 are edge only on PIIX, QEMU masks) */
#define ELCR_MASTER_MASK    0xf8
#define ELCR_SLAVE_MASK     0xde

/* ---- State ---- */

typedef enum { PIC_READY, PIC_WANT_ICW2, PIC_WANT_ICW3, PIC_WANT_ICW4 } PicInitState;

typedef struct PicChip {
    uint8_t irr;            /* interrupt request register */
    uint8_t isr;            /* in-service register */
    uint8_t imr;            /* interrupt mask register (OCW1) */
    uint8_t elcr;           /* 1 = level-sensitive input */
    uint8_t elcr_mask;
    uint8_t vector_base;    /* ICW2 T7-T3 */
    uint8_t icw3;
    uint8_t lowest_prio;    /* IR that currently has the lowest priority (rotation) */
    uint8_t init_state;     /* PicInitState */
    bool need_icw4;
    bool single;
    bool auto_eoi;
    bool rotate_in_aeoi;
    bool special_fully_nested;
    bool special_mask;
    bool read_isr;          /* OCW3 RR/RIS latch: next command-port read gives ISR */
    bool poll;              /* OCW3 P: next command-port read is a poll */
    uint8_t lines;          /* current input pin levels (edge detection) */
} PicChip;

typedef struct PicPair {
    PicChip chip[2];        /* 0 master, 1 slave */
    bool int_out;           /* master INT pin as last reported */

    IoPortRange *master_range, *slave_range, *elcr_range;
} PicPair;

static PicPair *pic;

/* ---- Priority resolution ---- */

/*
 * Priority order: IR(lowest_prio + 1) is highest, wrapping round to
 * IR(lowest_prio) (8259A "Automatic Rotation"; after reset IR7 is lowest).
 * Returns the priority rank 0 (highest) .. 7 of the highest set bit in
 * bits, or 8 when none is set.
 */
static int pic_highest_rank(const PicChip *c, uint8_t bits)
{
    for (int rank = 0; rank < 8; rank++) {
        int ir = (c->lowest_prio + 1 + rank) & 7;
        if (bits & (1u << ir))
            return rank;
    }
    return 8;
}

static int pic_rank_to_ir(const PicChip *c, int rank)
{
    return (c->lowest_prio + 1 + rank) & 7;
}

/* IRR as the priority resolver sees it: the master's IR2 follows the slave's INT. */
static bool pic_chip_int(int idx);

static uint8_t pic_effective_irr(int idx)
{
    const PicChip *c = &pic->chip[idx];
    uint8_t irr = c->irr;
    if (idx == 0) {
        irr &= ~(1u << PIC_CASCADE_IRQ);
        if (pic_chip_int(1))
            irr |= 1u << PIC_CASCADE_IRQ;
    }
    return irr;
}

/*
 * The IR the chip would hand out now, or -1.  A request wins if its priority
 * is above every in-service level (fully nested mode).  In special mask mode
 * only in-service levels that are not masked block ("Special Mask Mode");
 * in the master's special fully nested mode a new request on the cascade
 * input is not blocked by the cascade's own ISR bit, so a higher-priority
 * slave interrupt can nest ("Special Fully Nested Mode"); the slave's own
 * priority logic decides whether it really is higher.
 */
static int pic_chip_pending_ir(int idx)
{
    const PicChip *c = &pic->chip[idx];
    uint8_t req = pic_effective_irr(idx) & ~c->imr;
    int req_rank = pic_highest_rank(c, req);
    if (req_rank == 8)
        return -1;
    int ir = pic_rank_to_ir(c, req_rank);
    uint8_t blocking = c->isr;
    if (c->special_mask)
        blocking &= ~c->imr;
    if (idx == 0 && c->special_fully_nested && ir == PIC_CASCADE_IRQ)
        blocking &= ~(1u << PIC_CASCADE_IRQ);
    int isr_rank = pic_highest_rank(c, blocking);
    return req_rank < isr_rank ? ir : -1;
}

static bool pic_chip_int(int idx)
{
    return pic_chip_pending_ir(idx) >= 0;
}

static void pic_update(void)
{
    bool out = pic_chip_int(0);
    if (out != pic->int_out) {
        pic->int_out = out;
        apic_pic_output_changed(out);
    } else if (out) {
        /* Still asserted, maybe for a new request: let the CPU look again. */
        apic_pic_output_changed(out);
    }
}

/* ---- Inputs ---- */

static void pic_chip_set_input(PicChip *c, int ir, int level)
{
    uint8_t bit = 1u << ir;
    bool old = c->lines & bit;
    if (level)
        c->lines |= bit;
    else
        c->lines &= ~bit;
    if (c->elcr & bit) {
        if (level)
            c->irr |= bit;
        else
            c->irr &= ~bit;
    } else if (level && !old) {
        c->irr |= bit;
    }
}

void pic_set_input(int irq, int level)
{
    if (!pic || irq < 0 || irq >= 16)
        return;
    pic_chip_set_input(&pic->chip[irq >> 3], irq & 7, level);
    pic_update();
}

bool pic_int_output(void)
{
    return pic && pic_chip_int(0);
}

/* ---- INTA cycle ---- */

/*
 * First INTA: the highest request moves from IRR to ISR (edge inputs lose
 * their latch); second INTA: the vector (ICW2 | IR) goes on the bus.  With
 * AEOI the ISR bit is cleared at the end of the cycle ("Automatic End of
 * Interrupt Mode").  Returns the IR, or -1 for none.
 */
static int pic_chip_ack(int idx)
{
    PicChip *c = &pic->chip[idx];
    int ir = pic_chip_pending_ir(idx);
    if (ir < 0)
        return -1;
    uint8_t bit = 1u << ir;
    if (!(idx == 0 && ir == PIC_CASCADE_IRQ) && !(c->elcr & bit))
        c->irr &= ~bit;
    if (c->auto_eoi) {
        if (c->rotate_in_aeoi)
            c->lowest_prio = (uint8_t)ir;
    } else {
        c->isr |= bit;
    }
    return ir;
}

int pic_intack(void)
{
    if (!pic)
        return -1;
    int vector;
    int ir = pic_chip_ack(0);
    if (ir < 0) {
        /* 8259A: no request at the first INTA -> IR7's vector, ISR untouched. */
        vector = (pic->chip[0].vector_base | 7);
    } else if (ir == PIC_CASCADE_IRQ) {
        int sir = pic_chip_ack(1);
        vector = pic->chip[1].vector_base | (sir < 0 ? 7 : sir);
    } else {
        vector = pic->chip[0].vector_base | ir;
    }
    LOG(LOG_INT, "i8259: INTA -> vector 0x%02x\n", vector);
    pic_update();
    return vector;
}

/* ---- Command words ---- */

static void pic_chip_icw1(PicChip *c, uint8_t v)
{
    /* 8259A ICW1: edge sense latch reset, IMR cleared, IR7 lowest, SMM off, read IRR. */
    c->irr &= c->elcr;     /* level inputs still high keep requesting */
    c->isr = 0;
    c->imr = 0;
    c->lowest_prio = 7;
    c->special_mask = false;
    c->read_isr = false;
    c->poll = false;
    c->need_icw4 = v & ICW1_IC4;
    c->single = v & ICW1_SNGL;
    if (!c->need_icw4) {
        /* ICW4 functions all zero. */
        c->auto_eoi = false;
        c->special_fully_nested = false;
    }
    c->rotate_in_aeoi = false;
    if (v & ICW1_LTIM)
        LOG(LOG_UNIMP, "i8259: ICW1.LTIM ignored; the ELCR selects level mode on a PIIX\n");
    c->init_state = PIC_WANT_ICW2;
}

static void pic_chip_eoi(PicChip *c, int ir, bool rotate)
{
    if (ir < 0)
        return;
    c->isr &= ~(1u << ir);
    if (rotate)
        c->lowest_prio = (uint8_t)ir;
}

static void pic_chip_ocw2(int idx, uint8_t v)
{
    PicChip *c = &pic->chip[idx];
    int level = v & OCW2_LEVEL;
    int hi;

    switch (v >> OCW2_CMD_SHIFT) {
    case OCW2_NS_EOI:
    case OCW2_ROT_NS_EOI:
        /* Non-specific: the highest-priority in-service level. */
        hi = pic_highest_rank(c, c->isr);
        pic_chip_eoi(c, hi == 8 ? -1 : pic_rank_to_ir(c, hi),
                     (v >> OCW2_CMD_SHIFT) == OCW2_ROT_NS_EOI);
        break;
    case OCW2_S_EOI:
        pic_chip_eoi(c, level, false);
        break;
    case OCW2_ROT_S_EOI:
        pic_chip_eoi(c, level, true);
        break;
    case OCW2_SET_PRIO:
        c->lowest_prio = (uint8_t)level;
        break;
    case OCW2_ROT_AEOI_SET:
        c->rotate_in_aeoi = true;
        break;
    case OCW2_ROT_AEOI_CLR:
        c->rotate_in_aeoi = false;
        break;
    case OCW2_NOP:
        break;
    }
}

static void pic_chip_ocw3(PicChip *c, uint8_t v)
{
    if (v & OCW3_P)
        c->poll = true;
    if (v & OCW3_RR)
        c->read_isr = v & OCW3_RIS;
    if (v & OCW3_ESMM)
        c->special_mask = v & OCW3_SMM;
}

static void pic_chip_write(int idx, uint16_t offset, uint8_t v)
{
    PicChip *c = &pic->chip[idx];

    if (offset == 0) {
        if (v & ICW1_SEL)
            pic_chip_icw1(c, v);
        else if ((v & OCW_SEL_MASK) == OCW2_SEL)
            pic_chip_ocw2(idx, v);
        else if ((v & OCW_SEL_MASK) == OCW3_SEL)
            pic_chip_ocw3(c, v);
        else
            LOG(LOG_GUEST_ERROR, "i8259: command 0x%02x has D4:D3 = 11\n", v);
        pic_update();
        return;
    }
    switch (c->init_state) {
    case PIC_WANT_ICW2:
        c->vector_base = v & 0xf8;     /* x86 mode: T7-T3, low bits from the IR */
        c->init_state = c->single ? (c->need_icw4 ? PIC_WANT_ICW4 : PIC_READY) : PIC_WANT_ICW3;
        break;
    case PIC_WANT_ICW3:
        c->icw3 = v;
        c->init_state = c->need_icw4 ? PIC_WANT_ICW4 : PIC_READY;
        break;
    case PIC_WANT_ICW4:
        if (!(v & ICW4_UPM))
            LOG(LOG_UNIMP, "i8259: ICW4 selects 8080/8085 mode; behaving as 8086 mode\n");
        c->auto_eoi = v & ICW4_AEOI;
        c->special_fully_nested = v & ICW4_SFNM;
        c->init_state = PIC_READY;
        break;
    default:
        c->imr = v;                    /* OCW1 */
        break;
    }
    pic_update();
}

/*
 * Poll command: the read acts as an interrupt acknowledge and returns
 * I (bit 7) and the IR of the highest request (8259A "The Poll Command").
 */
static uint8_t pic_chip_poll(int idx)
{
    PicChip *c = &pic->chip[idx];
    c->poll = false;
    int ir = pic_chip_ack(idx);
    return ir < 0 ? 0 : POLL_INT | ir;
}

static uint8_t pic_chip_read(int idx, uint16_t offset)
{
    PicChip *c = &pic->chip[idx];
    uint8_t v;

    if (c->poll) {
        v = pic_chip_poll(idx);
        pic_update();
        return v;
    }
    if (offset == 1)
        return c->imr;
    return c->read_isr ? c->isr : pic_effective_irr(idx);
}

static uint32_t pic_master_read(void *opaque, uint16_t offset, unsigned size)
{
    return pic_chip_read(0, offset);
}

static void pic_master_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    pic_chip_write(0, offset, (uint8_t)value);
}

static uint32_t pic_slave_read(void *opaque, uint16_t offset, unsigned size)
{
    return pic_chip_read(1, offset);
}

static void pic_slave_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    pic_chip_write(1, offset, (uint8_t)value);
}

static uint32_t pic_elcr_read(void *opaque, uint16_t offset, unsigned size)
{
    return pic->chip[offset & 1].elcr;
}

static void pic_elcr_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    PicChip *c = &pic->chip[offset & 1];
    c->elcr = (uint8_t)value & c->elcr_mask;
    /* A line switched to level mode requests exactly while it is high. */
    c->irr = (c->irr & ~c->elcr) | (c->lines & c->elcr);
    pic_update();
}

static const IoPortOps pic_master_ops = {
    .read = pic_master_read, .write = pic_master_write, .max_access = 1,
};
static const IoPortOps pic_slave_ops = {
    .read = pic_slave_read, .write = pic_slave_write, .max_access = 1,
};
static const IoPortOps pic_elcr_ops = {
    .read = pic_elcr_read, .write = pic_elcr_write, .max_access = 1,
};

/*
 * Power-on: the 8259A is undefined until ICW1; like QEMU we start it as
 * ICW1 leaves it (IMR clear, IR7 lowest, vector base 0) with all inputs edge.
 * The line levels survive: a device still asserting after a reset stays so.
 */
static void pic_reset(void *opaque)
{
    PicPair *s = opaque;
    for (int i = 0; i < 2; i++) {
        PicChip *c = &s->chip[i];
        uint8_t lines = c->lines, mask = c->elcr_mask;
        *c = (PicChip){ 0 };
        c->lines = lines;
        c->elcr_mask = mask;
        c->lowest_prio = 7;
    }
    s->int_out = false;
    apic_pic_output_changed(false);
}

/* ---- Registration ---- */

static void *pic_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (pic) {
        kestrel_set_error(errp, "isa-i8259: the PC has exactly one 8259 pair");
        return NULL;
    }
    PicPair *s = g_new0(PicPair, 1);
    s->chip[0].elcr_mask = (uint8_t)device_props_get_uint(props, "elcr-mask-master");
    s->chip[1].elcr_mask = (uint8_t)device_props_get_uint(props, "elcr-mask-slave");
    s->master_range = ioport_register(PIC_MASTER_BASE, 2, &pic_master_ops, s, "i8259-master",
                                      errp);
    if (!s->master_range)
        goto fail;
    s->slave_range = ioport_register(PIC_SLAVE_BASE, 2, &pic_slave_ops, s, "i8259-slave", errp);
    if (!s->slave_range)
        goto fail;
    s->elcr_range = ioport_register(PIC_ELCR_BASE, 2, &pic_elcr_ops, s, "elcr", errp);
    if (!s->elcr_range)
        goto fail;
    pic = s;
    pic_reset(s);
    return s;

fail:
    if (s->slave_range)
        ioport_unregister(s->slave_range);
    if (s->master_range)
        ioport_unregister(s->master_range);
    g_free(s);
    return NULL;
}

static const PropDef pic_props[] = {
    { "elcr-mask-master", PROP_UINT, "0xf8", "writable ELCR bits for IRQ0-7" },
    { "elcr-mask-slave", PROP_UINT, "0xde", "writable ELCR bits for IRQ8-15" },
    { NULL }
};

static const DeviceType pic_type = {
    .name = "isa-i8259",
    .desc = "Intel 8259A interrupt controller pair with PIIX ELCR (0x20, 0xa0, 0x4d0)",
    .bus = "isa",
    .user_creatable = false,
    .props = pic_props,
    .create = pic_create,
    .reset = pic_reset,
};

DEVICE_TYPE_REGISTER(pic_type)

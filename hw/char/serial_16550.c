/*
 * NS16550A UART — the PC's COM1..COM4 ("isa-serial").
 *
 * Follows the National Semiconductor / TI PC16550D datasheet ("PC16550D
 * Universal Asynchronous Receiver/Transmitter with FIFOs"): §8 Registers
 * (Table II register summary, Table I reset configuration, Table IV
 * interrupt control functions), §8.3 baud generator, §8.4 LSR, §8.5 FCR,
 * §8.6 IIR, §8.7 IER, §8.8 MCR, §8.9 MSR, §8.11 FIFO interrupt mode
 * (character timeout).  Section numbers are those of the 1995 NS edition
 * as remembered; the register layouts agree with /work/shared/docs/pc-platform.md §5.
 *
 * Host-side choices:
 * - Transmission is immediate: a THR write goes straight to the chardev
 *   (or, in loopback, into the receive FIFO), so THRE and TEMT always read 1
 *   and a THRE interrupt is latched again right after each write.  This is
 *   what QEMU does and what lets Linux's 8250 driver run at full speed.
 * - Reception is flow-controlled: can_receive() offers exactly the free FIFO
 *   space (1 byte in 16450 mode), so no byte from the backend is ever lost;
 *   overrun (LSR.OE) only happens from loopback writes and break events.
 * - The modem inputs from the outside world read as CTS, DSR and DCD
 *   asserted and RI off (a connected null-modem), MSR = 0xB0.
 * - IRQ gating: on a PC the UART's INTR pin reaches the ISA IRQ through a
 *   buffer enabled by the OUT2 output, and in loopback the outputs are
 *   forced inactive (§8.8), so the ISA line is driven only when MCR.OUT2 = 1
 *   and MCR.LOOP = 0.  QEMU does not gate on OUT2; Linux's 8250 driver sets
 *   OUT2 whenever it uses an IRQ (and polls in loopback), SeaBIOS polls, so
 *   guests that work on real PCs work here.
 *
 * Not modelled: DMA mode signalling (FCR bit 3 is stored only), parity and
 * framing errors (a chardev carries no line errors), sending a break
 * (LCR.BREAK is stored; in loopback it is not looped back), the 1.5 stop
 * bit case is timed as 2 stop bits.
 */
#include "kestrel/common.h"
#include "kestrel/chardev.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

/* ---- Register table (PC16550D Table II) ---- */

#define UART_RBR            0       /* DLAB=0, read: receiver buffer */
#define UART_THR            0       /* DLAB=0, write: transmitter holding */
#define UART_DLL            0       /* DLAB=1: divisor latch LS */
#define UART_IER            1       /* DLAB=0: interrupt enable */
#define UART_DLM            1       /* DLAB=1: divisor latch MS */
#define UART_IIR            2       /* read: interrupt identification */
#define UART_FCR            2       /* write: FIFO control */
#define UART_LCR            3       /* line control */
#define UART_MCR            4       /* modem control */
#define UART_LSR            5       /* line status */
#define UART_MSR            6       /* modem status */
#define UART_SCR            7       /* scratch */
#define UART_NUM_REGS       8

/* IER (§8.7) */
#define UART_IER_ERBFI      0x01    /* received data available (and timeout) */
#define UART_IER_ETBEI      0x02    /* transmitter holding register empty */
#define UART_IER_ELSI       0x04    /* receiver line status */
#define UART_IER_EDSSI      0x08    /* modem status */
#define UART_IER_MASK       0x0f    /* bits 7:4 are always 0 */

/* IIR (§8.6, Table IV).  Bit 0 is 0 while an interrupt is pending. */
#define UART_IIR_NO_INT     0x01
#define UART_IIR_RLS        0x06    /* priority 1: receiver line status */
#define UART_IIR_RDA        0x04    /* priority 2: received data available */
#define UART_IIR_CTI        0x0c    /* priority 2: character timeout indication */
#define UART_IIR_THRE       0x02    /* priority 3: THR empty */
#define UART_IIR_MS         0x00    /* priority 4: modem status */
#define UART_IIR_FIFOS      0xc0    /* both set when FCR0 = 1 */

/* FCR (§8.5) */
#define UART_FCR_FIFO_EN    0x01
#define UART_FCR_RCVR_RESET 0x02    /* self-clearing */
#define UART_FCR_XMIT_RESET 0x04    /* self-clearing */
#define UART_FCR_DMA_MODE   0x08
#define UART_FCR_TRIG_MASK  0xc0    /* RCVR trigger: 1, 4, 8, 14 bytes */
#define UART_FCR_TRIG_SHIFT 6

/* LCR (§8.1) */
#define UART_LCR_WLS_MASK   0x03    /* word length 5 + WLS */
#define UART_LCR_STB        0x04    /* 2 stop bits (1.5 for 5-bit words) */
#define UART_LCR_PEN        0x08
#define UART_LCR_EPS        0x10
#define UART_LCR_STICK      0x20
#define UART_LCR_BREAK      0x40
#define UART_LCR_DLAB       0x80

/* MCR (§8.8) */
#define UART_MCR_DTR        0x01
#define UART_MCR_RTS        0x02
#define UART_MCR_OUT1       0x04
#define UART_MCR_OUT2       0x08
#define UART_MCR_LOOP       0x10
#define UART_MCR_MASK       0x1f    /* bits 7:5 are always 0 */

/* LSR (§8.4) */
#define UART_LSR_DR         0x01
#define UART_LSR_OE         0x02
#define UART_LSR_PE         0x04
#define UART_LSR_FE         0x08
#define UART_LSR_BI         0x10
#define UART_LSR_THRE       0x20
#define UART_LSR_TEMT       0x40
#define UART_LSR_RXFE       0x80    /* error in RCVR FIFO (FIFO mode) */
#define UART_LSR_ERRORS     (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

/* MSR (§8.9) */
#define UART_MSR_DCTS       0x01
#define UART_MSR_DDSR       0x02
#define UART_MSR_TERI       0x04    /* trailing edge (1 -> 0) of RI */
#define UART_MSR_DDCD       0x08
#define UART_MSR_DELTAS     0x0f
#define UART_MSR_CTS        0x10
#define UART_MSR_DSR        0x20
#define UART_MSR_RI         0x40
#define UART_MSR_DCD        0x80

#define UART_FIFO_SIZE      16
#define UART_CLOCK_BAUD     115200  /* 1.8432 MHz / 16 (§8.3) */
#define UART_DEFAULT_DIV    12      /* 9600 baud; Table I leaves DLL/DLM undefined */

/* What the outside world drives on the modem inputs (see header). */
#define UART_EXT_LINES      (UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD)

/* Receive FIFO entry flag: this character was a break (§8.4 LSR bit 4). */
#define UART_RXF_BREAK      0x01

static const uint16_t uart_isa_iobase[4] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const uint8_t uart_isa_irq[4] = { 4, 3, 4, 3 };

/* ---- State ---- */

typedef struct Serial16550 {
    /* Guest-visible registers. */
    uint8_t ier;
    uint8_t lcr;
    uint8_t mcr;
    uint8_t scr;
    uint8_t fcr;                /* FIFO_EN, DMA_MODE and trigger as programmed */
    uint8_t lsr_errors;         /* OE/PE/FE/BI latched until LSR is read */
    uint8_t msr;                /* line states (7:4) and delta bits (3:0) */
    uint16_t divisor;
    uint8_t rbr_last;           /* what RBR returns when the FIFO is empty */
    uint8_t rx_fifo[UART_FIFO_SIZE];
    uint8_t rx_flags[UART_FIFO_SIZE];
    uint8_t rx_head;
    uint8_t rx_count;
    bool thre_pending;          /* THRE interrupt latched (§8.6) */
    bool timeout_pending;       /* character timeout indication (§8.11) */

    /* Host plumbing. */
    bool rx_throttled;          /* can_receive() said 0; call accept_input on room */
    uint16_t iobase;
    int irq_num;
    IrqLine *irq;
    CharFrontend *fe;
    Timer *timeout_timer;
    IoPortRange *ports;
} Serial16550;

/* ---- Behaviour ---- */

static bool serial_fifo_enabled(const Serial16550 *s)
{
    return s->fcr & UART_FCR_FIFO_EN;
}

static unsigned serial_rx_capacity(const Serial16550 *s)
{
    return serial_fifo_enabled(s) ? UART_FIFO_SIZE : 1;
}

static unsigned serial_rx_trigger(const Serial16550 *s)
{
    static const uint8_t levels[4] = { 1, 4, 8, 14 };   /* §8.5 FCR bits 7:6 */
    return levels[(s->fcr & UART_FCR_TRIG_MASK) >> UART_FCR_TRIG_SHIFT];
}

static uint8_t serial_word_mask(const Serial16550 *s)
{
    return (uint8_t)(0xff >> (3 - (s->lcr & UART_LCR_WLS_MASK)));
}

/* One character time at the programmed format and baud rate, in ns. */
static int64_t serial_char_time_ns(const Serial16550 *s)
{
    unsigned bits = 1 + 5 + (s->lcr & UART_LCR_WLS_MASK) +
                    ((s->lcr & UART_LCR_PEN) ? 1 : 0) +
                    ((s->lcr & UART_LCR_STB) ? 2 : 1);
    /* A divisor of 0 is undefined (§8.3); treat it as the slowest, 65536. */
    int64_t div = s->divisor ? s->divisor : 65536;
    return (int64_t)bits * div * NS_PER_SEC / UART_CLOCK_BAUD;
}

/* The highest-priority pending interrupt as an IIR identification (Table IV). */
static uint8_t serial_pending_id(const Serial16550 *s)
{
    if ((s->ier & UART_IER_ELSI) && (s->lsr_errors & UART_LSR_ERRORS))
        return UART_IIR_RLS;
    if ((s->ier & UART_IER_ERBFI) && s->rx_count) {
        if (!serial_fifo_enabled(s) || s->rx_count >= serial_rx_trigger(s))
            return UART_IIR_RDA;
        if (s->timeout_pending)
            return UART_IIR_CTI;
    }
    if ((s->ier & UART_IER_ETBEI) && s->thre_pending)
        return UART_IIR_THRE;
    if ((s->ier & UART_IER_EDSSI) && (s->msr & UART_MSR_DELTAS))
        return UART_IIR_MS;
    return UART_IIR_NO_INT;
}

static void serial_update_irq(Serial16550 *s)
{
    bool pending = serial_pending_id(s) != UART_IIR_NO_INT;
    /* PC wiring: OUT2 enables the IRQ buffer; loopback forces OUT2 inactive (§8.8). */
    bool gated = (s->mcr & UART_MCR_OUT2) && !(s->mcr & UART_MCR_LOOP);
    irq_set_level(s->irq, pending && gated);
}

/* Re-evaluate the modem inputs and latch delta bits (§8.9). */
static void serial_update_msr(Serial16550 *s)
{
    uint8_t lines;

    if (s->mcr & UART_MCR_LOOP) {
        /* §8.8: in loopback RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
        lines = ((s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                ((s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
                ((s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
                ((s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
    } else {
        lines = UART_EXT_LINES;
    }
    uint8_t old = s->msr & 0xf0;
    uint8_t changed = old ^ lines;
    uint8_t deltas = s->msr & UART_MSR_DELTAS;

    if (changed & UART_MSR_CTS)
        deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR)
        deltas |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD)
        deltas |= UART_MSR_DDCD;
    if ((old & UART_MSR_RI) && !(lines & UART_MSR_RI))
        deltas |= UART_MSR_TERI;
    s->msr = lines | deltas;
}

static void serial_rx_unthrottle(Serial16550 *s)
{
    if (s->rx_throttled && !(s->mcr & UART_MCR_LOOP) &&
        s->rx_count < serial_rx_capacity(s)) {
        s->rx_throttled = false;
        if (s->fe)
            char_fe_accept_input(s->fe);
    }
}

static void serial_rx_clear(Serial16550 *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
    memset(s->rx_flags, 0, sizeof(s->rx_flags));
    s->timeout_pending = false;
    timer_del(s->timeout_timer);
    serial_rx_unthrottle(s);
}

/* §8.11: the timeout counts 4 character times since the last FIFO activity. */
static void serial_timeout_restart(Serial16550 *s)
{
    s->timeout_pending = false;
    if (serial_fifo_enabled(s) && s->rx_count)
        timer_mod(s->timeout_timer,
                  clock_get_ns(CLOCK_VIRTUAL) + 4 * serial_char_time_ns(s));
    else
        timer_del(s->timeout_timer);
}

static void serial_timeout_expired(void *opaque)
{
    Serial16550 *s = opaque;

    if (serial_fifo_enabled(s) && s->rx_count) {
        s->timeout_pending = true;
        serial_update_irq(s);
    }
}

/* A character arrives from the receive shift register. */
static void serial_rx_push(Serial16550 *s, uint8_t ch, uint8_t flags)
{
    if (s->rx_count >= serial_rx_capacity(s)) {
        s->lsr_errors |= UART_LSR_OE;
        if (serial_fifo_enabled(s))
            return;   /* §8.4: FIFO mode keeps the FIFO, the new char is lost */
        /* 16450 mode: the new character overwrites RBR. */
        s->rx_count = 0;
    }
    unsigned idx = (s->rx_head + s->rx_count) % UART_FIFO_SIZE;
    s->rx_fifo[idx] = ch;
    s->rx_flags[idx] = flags;
    s->rx_count++;
    /* §8.4: a break is reported when its character is at the top of the FIFO. */
    if (s->rx_count == 1 && (flags & UART_RXF_BREAK))
        s->lsr_errors |= UART_LSR_BI;
    serial_timeout_restart(s);
}

static uint8_t serial_rbr_read(Serial16550 *s)
{
    if (!s->rx_count)
        return s->rbr_last;
    uint8_t ch = s->rx_fifo[s->rx_head];
    s->rx_flags[s->rx_head] = 0;
    s->rx_head = (s->rx_head + 1) % UART_FIFO_SIZE;
    s->rx_count--;
    s->rbr_last = ch;
    if (s->rx_count && (s->rx_flags[s->rx_head] & UART_RXF_BREAK))
        s->lsr_errors |= UART_LSR_BI;
    serial_timeout_restart(s);
    serial_rx_unthrottle(s);
    return ch;
}

static uint8_t serial_lsr_value(const Serial16550 *s)
{
    uint8_t v = s->lsr_errors | UART_LSR_THRE | UART_LSR_TEMT;

    if (s->rx_count)
        v |= UART_LSR_DR;
    if (serial_fifo_enabled(s)) {
        for (unsigned i = 0; i < s->rx_count; i++)
            if (s->rx_flags[(s->rx_head + i) % UART_FIFO_SIZE])
                v |= UART_LSR_RXFE;
    }
    return v;
}

static void serial_thr_write(Serial16550 *s, uint8_t ch)
{
    ch &= serial_word_mask(s);
    if (s->mcr & UART_MCR_LOOP) {
        /* §8.8: the transmitter shift register feeds the receiver internally. */
        serial_rx_push(s, ch, 0);
    } else if (s->fe) {
        char_fe_write(s->fe, &ch, 1);
    }
    /* Writing THR clears THRE; the byte leaves at once, so THR is empty again. */
    s->thre_pending = true;
}

static void serial_fcr_write(Serial16550 *s, uint8_t v)
{
    bool was_enabled = serial_fifo_enabled(s);

    /* §8.5: the other FCR bits are programmed only while FCR0 is written as 1. */
    if (v & UART_FCR_FIFO_EN)
        s->fcr = v & (UART_FCR_FIFO_EN | UART_FCR_DMA_MODE | UART_FCR_TRIG_MASK);
    else
        s->fcr = 0;
    /* Changing FCR0 clears both FIFOs; bit 1 clears the receive FIFO. */
    if (was_enabled != serial_fifo_enabled(s) || (v & UART_FCR_RCVR_RESET))
        serial_rx_clear(s);
    /* The transmit FIFO is always empty (transmission is immediate). */
    serial_rx_unthrottle(s);
}

static uint32_t serial_io_read(void *opaque, uint16_t offset, unsigned size)
{
    Serial16550 *s = opaque;
    bool dlab = s->lcr & UART_LCR_DLAB;
    uint8_t v;

    switch (offset) {
    case UART_RBR:
        v = dlab ? (uint8_t)s->divisor : serial_rbr_read(s);
        break;
    case UART_IER:
        v = dlab ? (uint8_t)(s->divisor >> 8) : s->ier;
        break;
    case UART_IIR:
        v = serial_pending_id(s);
        /* §8.6: reading IIR clears a THRE interrupt it reports. */
        if (v == UART_IIR_THRE)
            s->thre_pending = false;
        if (serial_fifo_enabled(s))
            v |= UART_IIR_FIFOS;
        break;
    case UART_LCR:
        v = s->lcr;
        break;
    case UART_MCR:
        v = s->mcr;
        break;
    case UART_LSR:
        v = serial_lsr_value(s);
        s->lsr_errors = 0;
        break;
    case UART_MSR:
        v = s->msr;
        s->msr &= ~UART_MSR_DELTAS;
        break;
    default:
        v = s->scr;
        break;
    }
    serial_update_irq(s);
    return v;
}

static void serial_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    Serial16550 *s = opaque;
    bool dlab = s->lcr & UART_LCR_DLAB;
    uint8_t v = (uint8_t)value;

    switch (offset) {
    case UART_THR:
        if (dlab)
            s->divisor = (s->divisor & 0xff00) | v;
        else
            serial_thr_write(s, v);
        break;
    case UART_IER:
        if (dlab) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | v << 8);
        } else {
            s->ier = v & UART_IER_MASK;
            /*
             * Enabling ETBEI while THR is empty (always, here) raises the THRE
             * interrupt again; Linux's 8250 probe (UART_BUG_THRE/TXEN tests)
             * relies on this.  Disabling it drops the latched indication.
             */
            s->thre_pending = (s->ier & UART_IER_ETBEI) != 0;
        }
        break;
    case UART_FCR:
        serial_fcr_write(s, v);
        break;
    case UART_LCR:
        s->lcr = v;
        break;
    case UART_MCR: {
        bool was_loop = s->mcr & UART_MCR_LOOP;
        s->mcr = v & UART_MCR_MASK;
        serial_update_msr(s);
        if (was_loop && !(s->mcr & UART_MCR_LOOP))
            serial_rx_unthrottle(s);
        break;
    }
    case UART_LSR:
        /* §8.4: LSR writes are for factory test only; ignore. */
        LOG(LOG_GUEST_ERROR, "serial@0x%x: write 0x%02x to LSR ignored\n", s->iobase, v);
        break;
    case UART_MSR:
        LOG(LOG_GUEST_ERROR, "serial@0x%x: write 0x%02x to MSR ignored\n", s->iobase, v);
        break;
    default:
        s->scr = v;
        break;
    }
    serial_update_irq(s);
}

static const IoPortOps serial_io_ops = {
    .read = serial_io_read,
    .write = serial_io_write,
    .max_access = 1,
};

/* Table I: master reset values. */
static void serial_reset(void *opaque)
{
    Serial16550 *s = opaque;

    s->ier = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->scr = 0;
    s->fcr = 0;
    s->lsr_errors = 0;
    s->divisor = UART_DEFAULT_DIV;
    s->rbr_last = 0;
    s->thre_pending = false;
    s->msr = UART_EXT_LINES;
    serial_rx_clear(s);
    serial_update_irq(s);
}

/* ---- Character backend side ---- */

static int serial_can_receive(void *opaque)
{
    Serial16550 *s = opaque;
    int room = 0;

    /* §8.8: in loopback the serial input is disconnected. */
    if (!(s->mcr & UART_MCR_LOOP))
        room = (int)(serial_rx_capacity(s) - s->rx_count);
    if (room <= 0) {
        s->rx_throttled = true;
        room = 0;
    }
    return room;
}

static void serial_receive(void *opaque, const uint8_t *buf, int len)
{
    Serial16550 *s = opaque;

    if (s->mcr & UART_MCR_LOOP)
        return;
    for (int i = 0; i < len; i++)
        serial_rx_push(s, buf[i] & serial_word_mask(s), 0);
    serial_update_irq(s);
}

static void serial_event(void *opaque, CharEvent event)
{
    Serial16550 *s = opaque;

    if (event == CHR_EVENT_BREAK && !(s->mcr & UART_MCR_LOOP)) {
        /* §8.4: a break loads one zero character flagged BI into the FIFO. */
        serial_rx_push(s, 0, UART_RXF_BREAK);
        serial_update_irq(s);
    }
}

static const CharFrontendOps serial_chr_ops = {
    .can_receive = serial_can_receive,
    .receive = serial_receive,
    .event = serial_event,
};

/* ---- Registration ---- */

static void *serial_create(Machine *m, const DeviceProps *props, GError **errp)
{
    uint64_t index = device_props_get_uint(props, "index");
    uint64_t iobase, irq;

    if (index > 3) {
        kestrel_set_error(errp, "isa-serial: index=%" G_GUINT64_FORMAT
                          " is out of range (0-3 for COM1-COM4)", index);
        return NULL;
    }
    iobase = device_props_has(props, "iobase") ? device_props_get_uint(props, "iobase")
                                               : uart_isa_iobase[index];
    irq = device_props_has(props, "irq") ? device_props_get_uint(props, "irq")
                                         : uart_isa_irq[index];
    if (iobase > 0xfff8) {
        kestrel_set_error(errp, "isa-serial: iobase=0x%" G_GINT64_MODIFIER "x does not fit "
                          "in the I/O port space (max 0xfff8)", iobase);
        return NULL;
    }
    if (irq > 15) {
        kestrel_set_error(errp, "isa-serial: irq=%" G_GUINT64_FORMAT
                          " is not an ISA IRQ (0-15)", irq);
        return NULL;
    }

    Serial16550 *s = g_new0(Serial16550, 1);
    s->iobase = (uint16_t)iobase;
    s->irq_num = (int)irq;
    s->irq = machine_isa_irq(m, s->irq_num);
    s->timeout_timer = timer_new(CLOCK_VIRTUAL, serial_timeout_expired, s);

    const char *chr_id = device_props_get_str(props, "chardev");
    if (chr_id) {
        Chardev *chr = chardev_find(chr_id);
        if (!chr) {
            kestrel_set_error(errp, "isa-serial: chardev '%s' not found "
                              "(define it with -chardev ...,id=%s)", chr_id, chr_id);
            goto fail;
        }
        s->fe = chardev_attach(chr, &serial_chr_ops, s, errp);
        if (!s->fe)
            goto fail;
    }
    s->ports = ioport_register(s->iobase, UART_NUM_REGS, &serial_io_ops, s,
                               "serial", errp);
    if (!s->ports)
        goto fail;
    serial_reset(s);
    return s;

fail:
    if (s->fe)
        char_fe_detach(s->fe);
    timer_free(s->timeout_timer);
    g_free(s);
    return NULL;
}

static const PropDef serial_props[] = {
    { "index", PROP_UINT, "0", "COM port number 0-3: selects iobase 0x3f8/0x2f8/0x3e8/0x2e8 "
                               "and IRQ 4/3/4/3" },
    { "iobase", PROP_UINT, NULL, "I/O base (overrides index)" },
    { "irq", PROP_UINT, NULL, "ISA IRQ (overrides index)" },
    { "chardev", PROP_CHARDEV, NULL, "character backend id" },
    { NULL }
};

static const DeviceType serial_16550_type = {
    .name = "isa-serial",
    .desc = "16550A UART (COM port)",
    .bus = "isa",
    .user_creatable = true,
    .props = serial_props,
    .create = serial_create,
    .reset = serial_reset,
};

DEVICE_TYPE_REGISTER(serial_16550_type)

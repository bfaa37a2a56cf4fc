/*
 * Intel 8254 programmable interval timer ("isa-pit", iobase 0x40): three
 * 16-bit down counters clocked at 1.193182 MHz (14.31818 MHz / 12).
 * Counter 0 drives ISA IRQ 0, counter 1 is the legacy refresh timer,
 * counter 2 feeds the speaker and has its gate and output on port 0x61
 * (hw/pc/port61.c).
 *
 * Follows the Intel 82C54 CHMOS Programmable Interval Timer datasheet
 * (order no. 231244): "Control Word Format" (SC, RW, M, BCD), "Counter
 * Latch Command", "Read-Back Command" and the status byte (OUTPUT, NULL
 * COUNT), "Read Operations"/"Write Operations" (LSB/MSB order and the
 * byte flip-flops), "Mode Definitions" 0-5 (modes 6 and 7 are 2 and 3),
 * "Gate" (Table: Gate Pin Operations Summary) and "Counter" (count 0 =
 * 2^16 binary / 10^4 BCD).
 *
 * Nothing ticks: each counter remembers the CLOCK_VIRTUAL instant its count
 * started (and how many clocks it had counted before a gate stop), and the
 * count and OUT are computed from elapsed time on demand.  Counter 0 arms
 * one timer for the next change of OUT; if the timer runs late and a
 * rising edge was missed, IRQ 0 still gets one full pulse (late ticks are
 * coalesced, never lost outright nor replayed).
 *
 * Simplifications: a count is taken at once rather than on the next CLK
 * (so NULL COUNT clears as soon as the count is written); a new count in
 * modes 2 and 3 restarts the period at once instead of at its end; in
 * modes 1 and 5 a new count applies from the next trigger; mode 3 with an
 * odd count reads back approximately (OUT timing is exact).
 */
#include "kestrel/common.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "hw/pc/irqchip_internal.h"

/* ---- Register table ---- */

#define PIT_FREQ_HZ         1193182ull
#define PIT_NUM_CHANNELS    3
#define PIT_PORT_COUNT      4
#define PIT_MIN_TIMER_NS    5000    /* see pit_irq_update */
#define PIT_CONTROL         3       /* offset of the control word register (0x43) */

/* Control word */
#define PIT_CW_SC_SHIFT     6       /* counter select; 11 = read-back */
#define PIT_CW_SC_READBACK  3
#define PIT_CW_RW_SHIFT     4       /* 00 latch, 01 LSB, 10 MSB, 11 LSB then MSB */
#define PIT_CW_RW_LATCH     0
#define PIT_RW_LSB          1
#define PIT_RW_MSB          2
#define PIT_RW_WORD         3
#define PIT_CW_M_SHIFT      1
#define PIT_CW_BCD          0x01
/* Read-back command */
#define PIT_RB_NOT_COUNT    0x20
#define PIT_RB_NOT_STATUS   0x10
#define PIT_RB_CNT(n)       (0x02u << (n))
/* Status byte */
#define PIT_ST_OUTPUT       0x80
#define PIT_ST_NULL_COUNT   0x40

/* ---- State ---- */

typedef struct PitChannel {
    /* Programmed */
    uint8_t mode;           /* 0-5 */
    uint8_t rw;             /* PIT_RW_* */
    bool bcd;
    uint16_t count;         /* count register as written (BCD digits if bcd) */
    /* Access logic */
    bool write_msb_next;    /* word access: LSB written, MSB expected */
    uint8_t write_lsb;
    bool read_msb_next;     /* word access: LSB read, MSB next */
    bool count_latched;
    uint16_t latch;         /* as the guest reads it (BCD digits if bcd) */
    bool latch_msb_next;
    bool status_latched;
    uint8_t status;
    bool null_count;
    /* Counting */
    bool loaded;            /* a count was written since the control word */
    bool gate;
    bool triggered;         /* modes 1 and 5: a gate rising edge started the count */
    uint64_t ticks_before;  /* clocks counted before the current run */
    int64_t run_start_ns;   /* CLOCK_VIRTUAL when the current run began */

    /* Counter 0's interrupt */
    Timer *timer;
    uint64_t irq_seen_ticks;
    bool irq_level;
} PitChannel;

typedef struct Pit {
    PitChannel ch[PIT_NUM_CHANNELS];

    IrqLine *irq;
    IoPortRange *range;
} Pit;

static Pit *pit;

/* ---- Time ---- */

static uint64_t pit_ns_to_ticks(int64_t ns)
{
    if (ns <= 0)
        return 0;
    return (uint64_t)((unsigned __int128)ns * PIT_FREQ_HZ / NS_PER_SEC);
}

/* First instant at which tick t has happened (inverse of pit_ns_to_ticks). */
static int64_t pit_ticks_to_ns(uint64_t t)
{
    unsigned __int128 ns = ((unsigned __int128)t * NS_PER_SEC + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ;
    return ns > INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)ns;
}

/* ---- Counting ---- */

static unsigned pit_bcd_to_bin(uint16_t v)
{
    unsigned r = 0;
    for (int shift = 12; shift >= 0; shift -= 4)
        r = r * 10 + MIN((v >> shift) & 0xfu, 9u);
    return r;
}

static uint16_t pit_bin_to_bcd(unsigned v)
{
    return (uint16_t)((v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10);
}

/* Modulus of the counting element: 2^16 binary, 10^4 BCD. */
static uint64_t pit_modulus(const PitChannel *c)
{
    return c->bcd ? 10000 : 65536;
}

/* The initial count N in clocks (a written 0 is the maximum count). */
static uint64_t pit_initial(const PitChannel *c)
{
    unsigned n = c->bcd ? pit_bcd_to_bin(c->count) : c->count;
    uint64_t v = n ? n : pit_modulus(c);
    /* Modes 2 and 3 need at least 2 (a count of 1 is illegal there). */
    if ((c->mode == 2 || c->mode == 3) && v < 2)
        v = 2;
    return v;
}

/* Is the counting element running (gate and trigger rules)? */
static bool pit_running(const PitChannel *c)
{
    if (!c->loaded)
        return false;
    if (c->mode == 1 || c->mode == 5)
        return c->triggered;
    return c->gate;
}

static uint64_t pit_ticks(const PitChannel *c, int64_t now)
{
    if (!c->loaded)
        return 0;
    uint64_t t = c->ticks_before;
    if (pit_running(c))
        t += pit_ns_to_ticks(now - c->run_start_ns);
    return t;
}

/* Count and OUT after d clocks ("Mode Definitions"). */
static void pit_eval(const PitChannel *c, uint64_t d, uint64_t *count, bool *out)
{
    uint64_t n = pit_initial(c), m = pit_modulus(c);

    if (!c->loaded) {
        *count = n % m;
        *out = c->mode != 0;        /* mode 0: OUT low from the control word on */
        return;
    }
    switch (c->mode) {
    case 0:
    case 1:
        if (c->mode == 1 && !c->triggered) {
            *count = n % m;
            *out = true;
            return;
        }
        *count = (n + m - d % m) % m;
        *out = d >= n;
        return;
    case 2: {
        uint64_t r = d % n;
        *count = (n - r) % m;
        /* OUT goes low for one clock when the count reaches 1; high again on reload. */
        *out = !c->gate || r != n - 1;
        return;
    }
    case 3: {
        uint64_t r = d % n, h = (n + 1) / 2;
        bool high = r < h;
        uint64_t k = high ? r : r - h;
        uint64_t v = (n & ~1ull) - 2 * k;
        *count = (v ? v : 2) % m;
        *out = !c->gate || high;
        return;
    }
    default:    /* 4, 5: strobe */
        if (c->mode == 5 && !c->triggered) {
            *count = n % m;
            *out = true;
            return;
        }
        *count = (n + m - d % m) % m;
        *out = d != n;
        return;
    }
}

static bool pit_out(const PitChannel *c, int64_t now)
{
    uint64_t count;
    bool out;
    pit_eval(c, pit_ticks(c, now), &count, &out);
    return out;
}

/* Rising edges of OUT in clocks (d0, d1]. */
static uint64_t pit_rising_edges(const PitChannel *c, uint64_t d0, uint64_t d1)
{
    uint64_t n = pit_initial(c);
    if (!pit_running(c) || d1 <= d0)
        return 0;
    switch (c->mode) {
    case 0: case 1:
        return d0 < n && n <= d1;
    case 2: case 3:
        return d1 / n - d0 / n;
    default:
        return d0 < n + 1 && n + 1 <= d1;
    }
}

/* The clock count after d at which OUT next changes (as IRQ 0 needs it), or UINT64_MAX. */
static uint64_t pit_next_change(const PitChannel *c, uint64_t d)
{
    uint64_t n = pit_initial(c);
    if (!pit_running(c))
        return UINT64_MAX;
    switch (c->mode) {
    case 0: case 1:
        return d < n ? n : UINT64_MAX;
    case 2:
        /*
         * OUT is low for just the clock before each reload; only the reload
         * (the rising edge) is scheduled, and pit_irq_update turns it into a
         * full low-high pulse on IRQ 0.
         */
        return d - d % n + n;
    case 3: {
        uint64_t r = d % n, base = d - r, h = (n + 1) / 2;
        return r < h ? base + h : base + n;
    }
    default:
        return d < n ? n : d < n + 1 ? n + 1 : UINT64_MAX;
    }
}

/* ---- Counter 0 -> IRQ 0 ---- */

static void pit_irq_update(Pit *s)
{
    PitChannel *c = &s->ch[0];
    int64_t now = clock_get_ns(CLOCK_VIRTUAL);
    uint64_t d = pit_ticks(c, now);
    bool out = pit_out(c, now);
    uint64_t edges = pit_rising_edges(c, c->irq_seen_ticks, d);

    if (edges && !(out && !c->irq_level)) {
        /* A rising edge happened since we last looked: make sure IRQ 0 sees one. */
        irq_set_level(s->irq, 0);
        irq_set_level(s->irq, 1);
        irq_set_level(s->irq, out);
    } else {
        irq_set_level(s->irq, out);
    }
    c->irq_level = out;
    c->irq_seen_ticks = d;

    uint64_t next = pit_next_change(c, d);
    if (next == UINT64_MAX) {
        timer_del(c->timer);
        return;
    }
    /*
     * Counts of a few clocks would make the timer fire every microsecond;
     * OUT changes closer than PIT_MIN_TIMER_NS are looked at together (the
     * edge logic above still gives IRQ 0 its pulse).
     */
    int64_t expire = c->run_start_ns + pit_ticks_to_ns(next - c->ticks_before);
    timer_mod(c->timer, MAX(expire, now + PIT_MIN_TIMER_NS));
}

static void pit_timer_cb(void *opaque)
{
    pit_irq_update(opaque);
}

static void pit_channel_changed(Pit *s, int idx)
{
    if (idx == 0)
        pit_irq_update(s);
}

/* ---- Loading and gating ---- */

static void pit_start_run(PitChannel *c, uint64_t ticks_before)
{
    c->ticks_before = ticks_before;
    c->run_start_ns = clock_get_ns(CLOCK_VIRTUAL);
    c->irq_seen_ticks = ticks_before;
}

static void pit_load(Pit *s, int idx, uint16_t value)
{
    PitChannel *c = &s->ch[idx];
    c->count = value;
    c->loaded = true;
    c->null_count = false;
    c->triggered = false;           /* modes 1/5 wait for a gate rising edge */
    pit_start_run(c, 0);
    pit_channel_changed(s, idx);
}

static void pit_set_gate(Pit *s, int idx, bool gate)
{
    PitChannel *c = &s->ch[idx];
    if (c->gate == gate)
        return;
    int64_t now = clock_get_ns(CLOCK_VIRTUAL);
    uint64_t d = pit_ticks(c, now);
    c->gate = gate;
    if (!c->loaded)
        return;
    switch (c->mode) {
    case 0: case 4:
        /* Gate low suspends counting; high resumes it. */
        pit_start_run(c, d);
        break;
    case 2: case 3:
        /* Gate low stops (OUT high); the rising edge reloads the count. */
        if (gate)
            pit_start_run(c, 0);
        else
            pit_start_run(c, d);
        break;
    default:
        /* Modes 1 and 5: the rising edge (re)triggers. */
        if (gate) {
            c->triggered = true;
            pit_start_run(c, 0);
        }
        break;
    }
    pit_channel_changed(s, idx);
}

/* ---- Register access ---- */

static uint16_t pit_visible_count(const PitChannel *c, int64_t now)
{
    uint64_t count;
    bool out;
    if (!c->loaded)
        return c->count;
    pit_eval(c, pit_ticks(c, now), &count, &out);
    return c->bcd ? pit_bin_to_bcd((unsigned)count) : (uint16_t)count;
}

static void pit_latch_count(PitChannel *c)
{
    if (c->count_latched)
        return;                     /* "only the first latch command is effective" */
    c->latch = pit_visible_count(c, clock_get_ns(CLOCK_VIRTUAL));
    c->count_latched = true;
    c->latch_msb_next = false;
}

static void pit_latch_status(PitChannel *c)
{
    if (c->status_latched)
        return;
    c->status = (pit_out(c, clock_get_ns(CLOCK_VIRTUAL)) ? PIT_ST_OUTPUT : 0) |
                (c->null_count ? PIT_ST_NULL_COUNT : 0) |
                c->rw << PIT_CW_RW_SHIFT | c->mode << PIT_CW_M_SHIFT | (c->bcd ? PIT_CW_BCD : 0);
    c->status_latched = true;
}

static void pit_control_write(Pit *s, uint8_t v)
{
    unsigned sc = v >> PIT_CW_SC_SHIFT;
    unsigned rw = (v >> PIT_CW_RW_SHIFT) & 3;

    if (sc == PIT_CW_SC_READBACK) {
        for (int i = 0; i < PIT_NUM_CHANNELS; i++) {
            if (!(v & PIT_RB_CNT(i)))
                continue;
            /* Status first: a read then returns status, then the count. */
            if (!(v & PIT_RB_NOT_STATUS))
                pit_latch_status(&s->ch[i]);
            if (!(v & PIT_RB_NOT_COUNT))
                pit_latch_count(&s->ch[i]);
        }
        return;
    }
    PitChannel *c = &s->ch[sc];
    if (rw == PIT_CW_RW_LATCH) {
        pit_latch_count(c);
        return;
    }
    unsigned mode = (v >> PIT_CW_M_SHIFT) & 7;
    if (mode >= 6)
        mode -= 4;                  /* 110b/111b are modes 2 and 3 */
    c->mode = (uint8_t)mode;
    c->rw = (uint8_t)rw;
    c->bcd = v & PIT_CW_BCD;
    c->loaded = false;
    c->triggered = false;
    c->write_msb_next = c->read_msb_next = false;
    c->count_latched = c->status_latched = false;
    c->null_count = true;
    pit_channel_changed(s, (int)sc);
}

static void pit_counter_write(Pit *s, int idx, uint8_t v)
{
    PitChannel *c = &s->ch[idx];

    switch (c->rw) {
    case PIT_RW_LSB:
        pit_load(s, idx, v);
        break;
    case PIT_RW_MSB:
        pit_load(s, idx, (uint16_t)(v << 8));
        break;
    case PIT_RW_WORD:
        if (!c->write_msb_next) {
            c->write_lsb = v;
            c->write_msb_next = true;
            if (c->mode == 0 && c->loaded) {
                /* Mode 0: writing the first byte stops the count (and OUT goes low). */
                c->loaded = false;
                pit_channel_changed(s, idx);
            }
        } else {
            c->write_msb_next = false;
            pit_load(s, idx, (uint16_t)(c->write_lsb | v << 8));
        }
        break;
    default:
        LOG(LOG_GUEST_ERROR, "pit: counter %d written before a control word\n", idx);
        break;
    }
}

static uint8_t pit_counter_read(Pit *s, int idx)
{
    PitChannel *c = &s->ch[idx];
    uint16_t v;

    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->count_latched) {
        v = c->latch;
        switch (c->rw) {
        case PIT_RW_MSB:
            c->count_latched = false;
            return v >> 8;
        case PIT_RW_WORD:
            if (!c->latch_msb_next) {
                c->latch_msb_next = true;
                return v & 0xff;
            }
            c->count_latched = false;
            return v >> 8;
        default:
            c->count_latched = false;
            return v & 0xff;
        }
    }
    v = pit_visible_count(c, clock_get_ns(CLOCK_VIRTUAL));
    switch (c->rw) {
    case PIT_RW_MSB:
        return v >> 8;
    case PIT_RW_WORD:
        c->read_msb_next = !c->read_msb_next;
        return c->read_msb_next ? v & 0xff : v >> 8;
    default:
        return v & 0xff;
    }
}

static uint32_t pit_io_read(void *opaque, uint16_t offset, unsigned size)
{
    Pit *s = opaque;
    if (offset == PIT_CONTROL)
        return 0xff;                /* the control word register is write-only */
    return pit_counter_read(s, offset);
}

static void pit_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    Pit *s = opaque;
    if (offset == PIT_CONTROL)
        pit_control_write(s, (uint8_t)value);
    else
        pit_counter_write(s, offset, (uint8_t)value);
}

static const IoPortOps pit_io_ops = {
    .read = pit_io_read,
    .write = pit_io_write,
    .max_access = 1,
};

/* ---- Port 0x61 side ---- */

void pit_channel2_set_gate(bool gate)
{
    if (pit)
        pit_set_gate(pit, 2, gate);
}

bool pit_channel2_get_gate(void)
{
    return pit && pit->ch[2].gate;
}

bool pit_channel2_get_out(void)
{
    return pit && pit_out(&pit->ch[2], clock_get_ns(CLOCK_VIRTUAL));
}

/*
 * Power-on: like QEMU, every counter as a BIOS leaves it — mode 3, count
 * 0 (65536: 18.2 Hz on counter 0), binary, LSB then MSB, running.  Gates of
 * counters 0 and 1 are tied high; counter 2's comes from port 0x61 (low).
 */
static void pit_reset(void *opaque)
{
    Pit *s = opaque;
    for (int i = 0; i < PIT_NUM_CHANNELS; i++) {
        PitChannel *c = &s->ch[i];
        Timer *t = c->timer;
        *c = (PitChannel){ 0 };
        c->timer = t;
        c->mode = 3;
        c->rw = PIT_RW_WORD;
        c->gate = i != 2;
        c->loaded = true;
        pit_start_run(c, 0);
    }
    s->ch[0].irq_level = false;
    irq_lower(s->irq);
    pit_irq_update(s);
}

/* ---- Registration ---- */

static void *pit_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (pit) {
        kestrel_set_error(errp, "isa-pit: only one 8254 is supported");
        return NULL;
    }
    uint64_t iobase = device_props_get_uint(props, "iobase");
    uint64_t irq = device_props_get_uint(props, "irq");
    if (iobase > 0xffff - (PIT_PORT_COUNT - 1) || irq > 15) {
        kestrel_set_error(errp, "isa-pit: iobase must be <= 0xfffc and irq 0-15");
        return NULL;
    }
    Pit *s = g_new0(Pit, 1);
    s->range = ioport_register((uint16_t)iobase, PIT_PORT_COUNT, &pit_io_ops, s, "i8254", errp);
    if (!s->range) {
        g_free(s);
        return NULL;
    }
    s->irq = machine_isa_irq(m, (int)irq);
    s->ch[0].timer = timer_new(CLOCK_VIRTUAL, pit_timer_cb, s);
    pit = s;
    pit_reset(s);
    return s;
}

static const PropDef pit_props[] = {
    { "iobase", PROP_UINT, "0x40", "first of the four ports" },
    { "irq", PROP_UINT, "0", "ISA IRQ of counter 0" },
    { NULL }
};

static const DeviceType pit_type = {
    .name = "isa-pit",
    .desc = "Intel 8254 interval timer (0x40-0x43, IRQ 0; counter 2 via port 0x61)",
    .bus = "isa",
    .user_creatable = false,
    .props = pit_props,
    .create = pit_create,
    .reset = pit_reset,
};

DEVICE_TYPE_REGISTER(pit_type)

/*
 * High Precision Event Timer ("hpet") at 0xFED00000, as QEMU's "-M pc"
 * presents it (/work/shared/docs/pc-platform.md §11): one block with a
 * 64-bit main counter at 100 MHz and three comparators.
 *
 * Follows the IA-PC HPET specification 1.0a: §2.3.4 General Capabilities and
 * ID (ID 0x8086A201: revision 1, 3 timers, 64-bit counter, legacy
 * replacement capable; period 10,000,000 fs), §2.3.5 General Configuration
 * (ENABLE_CNF, LEG_RT_CNF), §2.3.6 General Interrupt Status (write 1 to
 * clear), §2.3.7 Main Counter, §2.3.8 Timer N Configuration and Capability,
 * §2.3.9 Timer N Comparator, §2.3.10 Timer N FSB Interrupt Route, and §2.4
 * (periodic mode with VAL_SET, 32-bit mode, level/edge interrupts).
 *
 * Choices where the spec leaves room (QEMU's where it made one):
 * - All three timers are 64-bit and periodic-capable (QEMU).  FSB (MSI)
 *   delivery is advertised (Tn_FSB_INT_DEL_CAP) only with the "msi"
 *   property, off by default as in QEMU, so a guest picks the same
 *   clockevent set-up as under QEMU; without it Tn_FSB_EN_CNF reads 0.
 * - Interrupt routing capability (Tn_INT_ROUTE_CAP) is GSI 2 and GSIs
 *   16-23: 2 is what QEMU's i440FX machine offers; on this board IOAPIC
 *   pin 2 is reached only through ISA IRQ 0 (hw/pc/irqchip.c), so route 2
 *   drives the ISA IRQ 0 line (the 8259 sees it too).  16-23 are free here:
 *   PCI INTx goes through the PIIX3 PIRQ router to ISA IRQs.  Other ISA GSIs
 *   are left out because their line belongs to an ISA device.  A route
 *   outside the capability is stored but delivers nothing (logged).
 * - Legacy replacement (LEG_RT_CNF): timer 0 drives ISA IRQ 0 (8259 input
 *   0 and IOAPIC pin 2) and timer 1 ISA IRQ 8, whatever their route/FSB
 *   settings.
 * - A comparator already passed (by less than half the counter range) when it
 *   is written, or when the timer or counter is enabled, fires at once, like
 *   QEMU; after a one-shot match, a 32-bit timer matches again when the
 *   counter wraps (2^32 ticks later) and a 64-bit one does not.
 * - Level-triggered timers set their Tn_INT_STS bit on every match (even
 *   with Tn_INT_ENB_CNF clear, §2.3.8) and hold their line while the bit is
 *   set, the interrupt is enabled and the counter runs.  Edge-triggered
 *   timers pulse their line and leave the status alone (§2.3.6: "ignored").
 *   FSB delivery is an edge message to Tn_FSB_INT_ADDR/VAL.
 * - A periodic timer that finds itself late skips the periods it missed.
 *
 * The main counter runs from CLOCK_VIRTUAL (1 tick = 10 ns) only while
 * ENABLE_CNF is set and may be written at any time (the spec asks software
 * to halt it first).
 *
 * Not modelled: gating the 8254's and RTC's own interrupt outputs while
 * legacy replacement is on (the PIT and RTC keep driving their lines; a
 * guest that uses the HPET in legacy mode stops the PIT itself, and the RTC
 * interrupt is level-held only while its register C flags are set).
 */
#include "kestrel/common.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"

/* ---- Register table (HPET 1.0a §2.3) ---- */

#define HPET_BASE               0xfed00000ULL
#define HPET_MMIO_SIZE          0x400

#define HPET_GCAP_ID            0x000
#define  HPET_GCAP_REV_ID        0x01               /* bits 7:0 */
#define  HPET_GCAP_NUM_TIM_SHIFT 8                  /* bits 12:8: timers - 1 */
#define  HPET_GCAP_COUNT_SIZE    (1u << 13)         /* 64-bit main counter */
#define  HPET_GCAP_LEG_RT        (1u << 15)         /* legacy replacement capable */
#define  HPET_GCAP_VENDOR_SHIFT  16
#define  HPET_GCAP_PERIOD_SHIFT  32                 /* bits 63:32: femtoseconds per tick */
#define HPET_GEN_CONF           0x010
#define  HPET_CONF_ENABLE        (1u << 0)          /* ENABLE_CNF */
#define  HPET_CONF_LEG_RT        (1u << 1)          /* LEG_RT_CNF */
#define  HPET_CONF_MASK          (HPET_CONF_ENABLE | HPET_CONF_LEG_RT)
#define HPET_GINTR_STA          0x020
#define HPET_MAIN_CNT           0x0f0
#define HPET_TIMER_BASE         0x100
#define HPET_TIMER_STRIDE       0x20
#define HPET_TN_CONF_CAP        0x00               /* within a timer's block */
#define  HPET_TN_INT_TYPE        (1u << 1)          /* Tn_INT_TYPE_CNF: 1 = level */
#define  HPET_TN_INT_ENB         (1u << 2)          /* Tn_INT_ENB_CNF */
#define  HPET_TN_TYPE            (1u << 3)          /* Tn_TYPE_CNF: 1 = periodic */
#define  HPET_TN_PER_INT_CAP     (1u << 4)          /* RO */
#define  HPET_TN_SIZE_CAP        (1u << 5)          /* RO: 64-bit comparator */
#define  HPET_TN_VAL_SET         (1u << 6)          /* Tn_VAL_SET_CNF */
#define  HPET_TN_32MODE          (1u << 8)          /* Tn_32MODE_CNF */
#define  HPET_TN_INT_ROUTE_SHIFT 9                  /* bits 13:9: IOAPIC input */
#define  HPET_TN_INT_ROUTE       (0x1fu << HPET_TN_INT_ROUTE_SHIFT)
#define  HPET_TN_FSB_EN          (1u << 14)         /* Tn_FSB_EN_CNF */
#define  HPET_TN_FSB_INT_DEL_CAP (1u << 15)         /* RO */
#define  HPET_TN_CONF_WMASK      (HPET_TN_INT_TYPE | HPET_TN_INT_ENB | HPET_TN_TYPE | \
                                  HPET_TN_VAL_SET | HPET_TN_32MODE | HPET_TN_INT_ROUTE | \
                                  HPET_TN_FSB_EN)   /* FSB_EN only with the msi property */
#define  HPET_TN_INT_ROUTE_CAP_SHIFT 32            /* bits 63:32 */
#define HPET_TN_CMP             0x08
#define HPET_TN_FSB_ROUTE       0x10               /* low: FSB_INT_VAL, high: FSB_INT_ADDR */

/* This model's parameters (pc-platform.md §11). */
#define HPET_NUM_TIMERS         3
#define HPET_VENDOR_ID          0x8086
#define HPET_PERIOD_FS          10000000ULL        /* 10 ns: 100 MHz */
#define HPET_NS_PER_TICK        10
#define HPET_ROUTE_CAP          0x00ff0004u        /* GSI 2, 16-23 (see header) */
#define HPET_LEGACY_T0_ISA_IRQ  0
#define HPET_LEGACY_T1_ISA_IRQ  8

/* ---- State ---- */

typedef struct HPETState HPETState;

typedef struct HPETTimer {
    uint64_t config;               /* writable Tn_CONF bits */
    uint64_t cmp;                  /* Tn_COMPARATOR (truncated in 32-bit mode) */
    uint64_t period;               /* last value written in periodic mode */
    uint64_t fsb;                  /* Tn_FSB_INT_ROUTE */

    /* Host plumbing */
    HPETState *s;
    int index;
    Timer *timer;
} HPETTimer;

struct HPETState {
    uint64_t config;               /* GEN_CONF */
    uint64_t isr;                  /* GINTR_STA */
    uint64_t counter;              /* main counter while halted; value at ns0 while running */
    HPETTimer timers[HPET_NUM_TIMERS];

    /* Host plumbing */
    int64_t ns0;                   /* CLOCK_VIRTUAL time the counter last (re)started */
    uint32_t lines_high;           /* GSIs this device holds high (level mode) */
    bool msi;                      /* property: FSB delivery capability */
    Machine *m;
    MemoryRegion *mmio;
};

/* ---- Counter ---- */

static bool hpet_enabled(const HPETState *s)
{
    return s->config & HPET_CONF_ENABLE;
}

static uint64_t hpet_counter_now(const HPETState *s)
{
    if (!hpet_enabled(s))
        return s->counter;
    int64_t d = clock_get_ns(CLOCK_VIRTUAL) - s->ns0;
    return s->counter + (uint64_t)(d > 0 ? d : 0) / HPET_NS_PER_TICK;
}

/* Restart the running counter's bookkeeping at the current instant. */
static void hpet_counter_rebase(HPETState *s, uint64_t value)
{
    s->counter = value;
    s->ns0 = clock_get_ns(CLOCK_VIRTUAL);
}

/* ---- Interrupt lines ---- */

static bool hpet_timer_is_32bit(const HPETTimer *t)
{
    return t->config & HPET_TN_32MODE;
}

static bool hpet_timer_legacy(const HPETTimer *t)
{
    return (t->s->config & HPET_CONF_LEG_RT) && t->index < 2;
}

static bool hpet_timer_fsb(const HPETTimer *t)
{
    return !hpet_timer_legacy(t) && (t->config & HPET_TN_FSB_EN);
}

/* The board line (index into m->gsi) a timer drives, or -1. */
static int hpet_timer_line(const HPETTimer *t)
{
    if (hpet_timer_legacy(t))
        return t->index == 0 ? HPET_LEGACY_T0_ISA_IRQ : HPET_LEGACY_T1_ISA_IRQ;
    unsigned route = (t->config & HPET_TN_INT_ROUTE) >> HPET_TN_INT_ROUTE_SHIFT;
    if (!(HPET_ROUTE_CAP & (1u << route)))
        return -1;
    /* IOAPIC pin 2 is wired to ISA IRQ 0 on this board (hw/pc/irqchip.c). */
    return route == 2 ? 0 : (int)route;
}

/* Drive every level-mode line from the status bits; only changes are sent. */
static void hpet_update_lines(HPETState *s)
{
    uint32_t want = 0;
    if (hpet_enabled(s)) {
        for (int i = 0; i < HPET_NUM_TIMERS; i++) {
            HPETTimer *t = &s->timers[i];
            int line = hpet_timer_line(t);
            if ((s->isr & (1u << i)) && (t->config & HPET_TN_INT_TYPE) &&
                (t->config & HPET_TN_INT_ENB) && !hpet_timer_fsb(t) && line >= 0)
                want |= 1u << line;
        }
    }
    uint32_t changed = want ^ s->lines_high;
    s->lines_high = want;
    for (int line = 0; line < MACHINE_NUM_GSI; line++)
        if (changed & (1u << line))
            irq_set_level(s->m ? machine_isa_irq(s->m, line) : NULL, (want >> line) & 1);
}

/* A comparator match: status and interrupt (§2.3.8, §2.3.10). */
static void hpet_timer_fire(HPETTimer *t)
{
    HPETState *s = t->s;
    bool level = t->config & HPET_TN_INT_TYPE;
    bool fsb = hpet_timer_fsb(t);

    if (level && !fsb) {
        s->isr |= 1u << t->index;
        hpet_update_lines(s);
        return;
    }
    if (!(t->config & HPET_TN_INT_ENB))
        return;
    if (fsb) {
        if (s->m)
            machine_send_msi(s->m, t->fsb >> 32, (uint32_t)t->fsb);
        return;
    }
    int line = hpet_timer_line(t);
    if (line < 0) {
        LOG(LOG_GUEST_ERROR, "hpet: timer %d routed to GSI %u, outside its capability "
            "0x%08x; interrupt dropped\n", t->index,
            (unsigned)((t->config & HPET_TN_INT_ROUTE) >> HPET_TN_INT_ROUTE_SHIFT),
            HPET_ROUTE_CAP);
        return;
    }
    irq_pulse(s->m ? machine_isa_irq(s->m, line) : NULL);
}

/* ---- Comparators ---- */

/*
 * Arm t for its next match.  'after_match' is true right after the timer
 * fired at its comparator: then only a true wrap-around matches again.
 * Otherwise a comparator up to half the counter range behind fires at once.
 */
static void hpet_timer_arm(HPETTimer *t, bool after_match)
{
    HPETState *s = t->s;
    if (!hpet_enabled(s)) {
        timer_del(t->timer);
        return;
    }
    uint64_t cur = hpet_counter_now(s);
    uint64_t ticks;                      /* from cur to the match */
    if (hpet_timer_is_32bit(t)) {
        uint32_t d = (uint32_t)t->cmp - (uint32_t)cur;
        if (after_match)
            ticks = d ? d : (1ULL << 32);
        else
            ticks = (int32_t)d <= 0 ? 0 : d;
    } else {
        uint64_t d = t->cmp - cur;
        if (after_match && (int64_t)d <= 0) {
            timer_del(t->timer);         /* next match 2^64 ticks away */
            return;
        }
        ticks = (int64_t)d <= 0 ? 0 : d;
    }
    /* Counter value cur + ticks is reached ticks counter-periods after ns0 + (cur - base). */
    uint64_t since_base = cur - s->counter + ticks;
    if (since_base > (uint64_t)(INT64_MAX - s->ns0) / HPET_NS_PER_TICK) {
        timer_del(t->timer);             /* centuries away: never in practice */
        return;
    }
    timer_mod(t->timer, s->ns0 + (int64_t)since_base * HPET_NS_PER_TICK);
}

static void hpet_timer_expired(void *opaque)
{
    HPETTimer *t = opaque;
    HPETState *s = t->s;
    if (!hpet_enabled(s))
        return;
    uint64_t cur = hpet_counter_now(s);
    bool periodic = t->config & HPET_TN_TYPE;

    hpet_timer_fire(t);
    if (periodic && t->period) {
        /* §2.4.6: the comparator advances by the period; skip periods missed. */
        if (hpet_timer_is_32bit(t)) {
            uint32_t behind = (uint32_t)cur - (uint32_t)t->cmp;
            uint32_t p = (uint32_t)t->period;
            if (p && (int32_t)behind >= 0)
                t->cmp = (uint32_t)(t->cmp + (uint64_t)(behind / p + 1) * p);
        } else {
            uint64_t behind = cur - t->cmp;
            if ((int64_t)behind >= 0)
                t->cmp += (behind / t->period + 1) * t->period;
        }
        /* Modular distance: a period of 2^31 or more must not look "in the past". */
        hpet_timer_arm(t, true);
        return;
    }
    if (periodic)
        LOG(LOG_GUEST_ERROR, "hpet: timer %d periodic with period 0; stopped\n", t->index);
    hpet_timer_arm(t, true);
}

/* ---- Register access ---- */

static uint64_t hpet_timer_read(HPETTimer *t, unsigned reg)
{
    switch (reg) {
    case HPET_TN_CONF_CAP:
        return t->config | HPET_TN_PER_INT_CAP | HPET_TN_SIZE_CAP |
               (t->s->msi ? HPET_TN_FSB_INT_DEL_CAP : 0) |
               (uint64_t)HPET_ROUTE_CAP << HPET_TN_INT_ROUTE_CAP_SHIFT;
    case HPET_TN_CMP:
        return t->cmp;
    case HPET_TN_FSB_ROUTE:
        return t->fsb;
    default:
        return 0;
    }
}

static void hpet_timer_write(HPETTimer *t, unsigned reg, uint64_t val, uint64_t mask)
{
    HPETState *s = t->s;
    switch (reg) {
    case HPET_TN_CONF_CAP: {
        uint64_t old = t->config;
        t->config = ((old & ~mask) | (val & mask)) & HPET_TN_CONF_WMASK;
        if (!s->msi)
            t->config &= ~(uint64_t)HPET_TN_FSB_EN;
        if (t->config & HPET_TN_32MODE) {
            t->cmp = (uint32_t)t->cmp;
            t->period = (uint32_t)t->period;
        }
        /* Switching to edge drops a pending level status (§2.3.6). */
        if (!(t->config & HPET_TN_INT_TYPE))
            s->isr &= ~(1ULL << t->index);
        hpet_update_lines(s);
        if ((old ^ t->config) & (HPET_TN_TYPE | HPET_TN_32MODE))
            hpet_timer_arm(t, false);
        break;
    }
    case HPET_TN_CMP: {
        bool periodic = t->config & HPET_TN_TYPE;
        bool set_val = t->config & HPET_TN_VAL_SET;
        /* Periodic without VAL_SET: the write is the period (§2.4.6). */
        uint64_t old = periodic && !set_val ? t->period : t->cmp;
        uint64_t v = (old & ~mask) | (val & mask);
        if (hpet_timer_is_32bit(t))
            v = (uint32_t)v;
        if (!periodic || set_val)
            t->cmp = v;
        if (periodic)
            t->period = v;
        t->config &= ~(uint64_t)HPET_TN_VAL_SET;
        hpet_timer_arm(t, false);
        break;
    }
    case HPET_TN_FSB_ROUTE:
        t->fsb = (t->fsb & ~mask) | (val & mask);
        break;
    default:
        break;
    }
}

static uint64_t hpet_reg_read(HPETState *s, unsigned reg)
{
    switch (reg) {
    case HPET_GCAP_ID:
        return HPET_GCAP_REV_ID | (HPET_NUM_TIMERS - 1) << HPET_GCAP_NUM_TIM_SHIFT |
               HPET_GCAP_COUNT_SIZE | HPET_GCAP_LEG_RT |
               (uint64_t)HPET_VENDOR_ID << HPET_GCAP_VENDOR_SHIFT |
               HPET_PERIOD_FS << HPET_GCAP_PERIOD_SHIFT;
    case HPET_GEN_CONF:
        return s->config;
    case HPET_GINTR_STA:
        return s->isr;
    case HPET_MAIN_CNT:
        return hpet_counter_now(s);
    }
    if (reg >= HPET_TIMER_BASE && reg < HPET_TIMER_BASE + HPET_NUM_TIMERS * HPET_TIMER_STRIDE) {
        unsigned n = (reg - HPET_TIMER_BASE) / HPET_TIMER_STRIDE;
        return hpet_timer_read(&s->timers[n], (reg - HPET_TIMER_BASE) % HPET_TIMER_STRIDE);
    }
    return 0;
}

/* mask: the byte lanes of the 64-bit register this access writes. */
static void hpet_reg_write(HPETState *s, unsigned reg, uint64_t val, uint64_t mask)
{
    switch (reg) {
    case HPET_GCAP_ID:
        LOG(LOG_GUEST_ERROR, "hpet: write to read-only GCAP_ID ignored\n");
        return;
    case HPET_GEN_CONF: {
        uint64_t old = s->config;
        uint64_t cfg = ((old & ~mask) | (val & mask)) & HPET_CONF_MASK;
        if ((old ^ cfg) & HPET_CONF_ENABLE) {
            /* Freeze or restart the counter at its current value. */
            uint64_t cur = hpet_counter_now(s);
            s->config = cfg;
            hpet_counter_rebase(s, cur);
            for (int i = 0; i < HPET_NUM_TIMERS; i++)
                hpet_timer_arm(&s->timers[i], false);
        } else {
            s->config = cfg;
        }
        hpet_update_lines(s);
        return;
    }
    case HPET_GINTR_STA:
        s->isr &= ~(val & mask & ((1u << HPET_NUM_TIMERS) - 1));
        hpet_update_lines(s);
        return;
    case HPET_MAIN_CNT: {
        if (hpet_enabled(s))
            LOG(LOG_GUEST_ERROR, "hpet: main counter written while running\n");
        uint64_t cur = hpet_counter_now(s);
        hpet_counter_rebase(s, (cur & ~mask) | (val & mask));
        for (int i = 0; i < HPET_NUM_TIMERS; i++)
            hpet_timer_arm(&s->timers[i], false);
        return;
    }
    }
    if (reg >= HPET_TIMER_BASE && reg < HPET_TIMER_BASE + HPET_NUM_TIMERS * HPET_TIMER_STRIDE) {
        unsigned n = (reg - HPET_TIMER_BASE) / HPET_TIMER_STRIDE;
        hpet_timer_write(&s->timers[n], (reg - HPET_TIMER_BASE) % HPET_TIMER_STRIDE, val, mask);
        return;
    }
    LOG(LOG_GUEST_ERROR, "hpet: write to reserved offset 0x%03x ignored\n", reg);
}

/* 4- and 8-byte accesses, naturally aligned (§2.3: 32- or 64-bit). */
static uint64_t hpet_mmio_read(void *opaque, hwaddr offset, unsigned size)
{
    HPETState *s = opaque;
    if (offset & (size - 1)) {
        LOG(LOG_GUEST_ERROR, "hpet: misaligned %u-byte read at 0x%03" PRIx64 "\n", size,
            (uint64_t)offset);
        return 0;
    }
    uint64_t v = hpet_reg_read(s, (unsigned)(offset & ~7ULL));
    if (size == 8)
        return v;
    return (uint32_t)(v >> ((offset & 4) * 8));
}

static void hpet_mmio_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    HPETState *s = opaque;
    if (offset & (size - 1)) {
        LOG(LOG_GUEST_ERROR, "hpet: misaligned %u-byte write at 0x%03" PRIx64 "\n", size,
            (uint64_t)offset);
        return;
    }
    if (size == 8) {
        hpet_reg_write(s, (unsigned)offset, value, UINT64_MAX);
        return;
    }
    unsigned shift = (offset & 4) * 8;
    hpet_reg_write(s, (unsigned)(offset & ~7ULL), (uint64_t)(uint32_t)value << shift,
                   0xffffffffULL << shift);
}

static const MemoryRegionOps hpet_mmio_ops = {
    .read = hpet_mmio_read,
    .write = hpet_mmio_write,
    .min_access = 4,
    .max_access = 8,
};

/* ---- Reset and registration ---- */

static void hpet_reset(void *opaque)
{
    HPETState *s = opaque;
    s->config = 0;
    s->isr = 0;
    hpet_counter_rebase(s, 0);
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        HPETTimer *t = &s->timers[i];
        timer_del(t->timer);
        /* §2.3.8: route, FSB and mode bits reset to 0; comparators to all ones. */
        t->config = 0;
        t->cmp = UINT64_MAX;
        t->period = 0;
        t->fsb = 0;
    }
    hpet_update_lines(s);
}

static void *hpet_create(Machine *m, const DeviceProps *props, GError **errp)
{
    (void)errp;
    HPETState *s = g_new0(HPETState, 1);
    s->m = m;
    s->msi = device_props_get_bool(props, "msi");
    for (int i = 0; i < HPET_NUM_TIMERS; i++) {
        s->timers[i].s = s;
        s->timers[i].index = i;
        s->timers[i].timer = timer_new(CLOCK_VIRTUAL, hpet_timer_expired, &s->timers[i]);
    }
    s->mmio = memory_region_new_mmio("hpet", HPET_MMIO_SIZE, &hpet_mmio_ops, s);
    /* Above the PCI hole's BARs (priority -1), like the IOAPIC. */
    if (m && m->system_memory)
        memory_region_add_subregion(m->system_memory, HPET_BASE, s->mmio, 1);
    hpet_reset(s);
    return s;
}

static const PropDef hpet_props[] = {
    { "msi", PROP_BOOL, "off", "advertise FSB (MSI) interrupt delivery on every timer" },
    { NULL }
};

static const DeviceType hpet_type = {
    .name = "hpet",
    .desc = "IA-PC HPET 1.0a: 64-bit 100 MHz counter, 3 timers, at 0xFED00000",
    .bus = "sys",
    .user_creatable = false,
    .props = hpet_props,
    .create = hpet_create,
    .reset = hpet_reset,
};

DEVICE_TYPE_REGISTER(hpet_type)

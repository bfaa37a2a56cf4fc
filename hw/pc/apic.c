/*
 * Local APICs ("apic", one device holding the local APIC of every CPU;
 * created by irqchip_userspace_init), xAPIC mode, memory-mapped at
 * 0xFEE00000.
 *
 * Follows the Intel SDM vol. 3A chapter 10 "Advanced Programmable Interrupt
 * Controller (APIC)": §10.4.3 IA32_APIC_BASE (BSP flag bit 8, global enable
 * bit 11), §10.4.6 Local APIC ID, §10.4.7 enabling/disabling (software
 * disable masks every LVT entry), §10.4.8 Version register, §10.5.1 LVT,
 * §10.5.3 Error handling (ESR), §10.5.4 APIC timer (divide configuration,
 * one-shot, periodic) and §10.5.4.1 TSC-deadline mode, §10.6.1 ICR (IPIs,
 * INIT, INIT level de-assert, start-up), §10.6.2 destination modes (physical,
 * logical flat and cluster via DFR/LDR), §10.6.2.4 lowest priority and APR,
 * §10.8 interrupt handling (IRR/ISR/TMR, §10.8.3.1 TPR/PPR, §10.8.5 EOI and
 * the EOI broadcast of level-triggered vectors to the IOAPIC), §10.9
 * spurious interrupt vector register.
 *
 * The version register reads 0x00050014 (version 0x14, six LVT entries;
 * bit 24 clear: no EOI-broadcast suppression), as QEMU's model does.  The
 * timer counts at 1 GHz (bus clock) divided by the divide configuration,
 * against CLOCK_VIRTUAL; it is computed from elapsed time, never ticked.
 *
 * Which CPU an MMIO access belongs to is irqchip_current_cpu (-1, e.g. the
 * qtest accelerator, means CPU 0).  The one MMIO page sits at the default
 * base; a CPU that relocates its base moves it (logged: per-CPU bases that
 * differ are not modelled).
 *
 * Not modelled: x2APIC (IA32_APIC_BASE bit 10 is reserved here: the CPUID
 * x2APIC bit must not be advertised), the LVT CMCI entry, thermal and
 * performance-counter interrupt sources (their LVT registers just store),
 * focus processor checking, remote read, arbitration IDs, and MSI writes to
 * the 0xFEE00000 window from devices.  The BSP's LINT0 starts as unmasked
 * ExtINT (the virtual-wire setup a BIOS leaves, MP spec 1.4 §3.6.2.2, and
 * what QEMU does at reset), because Kestrel boots kernels without a BIOS.
 */
#include "kestrel/common.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/irqchip.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "hw/pc/irqchip_internal.h"

#include <inttypes.h>
#include <string.h>

/* ---- Register table (offsets in the 4 KiB page, SDM 3A Table 10-1) ---- */

#define APIC_MMIO_SIZE      0x1000
#define APIC_ID             0x020
#define APIC_ID_SHIFT       24
#define APIC_VERSION        0x030
#define APIC_VERSION_VALUE  0x00050014u
#define APIC_TPR            0x080
#define APIC_APR            0x090
#define APIC_PPR            0x0a0
#define APIC_EOI            0x0b0
#define APIC_RRD            0x0c0
#define APIC_LDR            0x0d0
#define APIC_LDR_MASK       0xff000000u
#define APIC_DFR            0x0e0
#define APIC_DFR_MODEL_MASK 0xf0000000u
#define APIC_DFR_FLAT       0xf0000000u
#define APIC_DFR_CLUSTER    0x00000000u
#define APIC_SVR            0x0f0
#define APIC_SVR_VECTOR     0x0ffu
#define APIC_SVR_ENABLE     0x100u
#define APIC_SVR_FOCUS_OFF  0x200u
#define APIC_SVR_WRITABLE   (APIC_SVR_VECTOR | APIC_SVR_ENABLE | APIC_SVR_FOCUS_OFF)
#define APIC_ISR            0x100      /* 8 registers, 0x10 apart */
#define APIC_TMR            0x180
#define APIC_IRR            0x200
#define APIC_ESR            0x280
#define APIC_ESR_SEND_ILLEGAL_VECTOR    0x20u
#define APIC_ESR_RECV_ILLEGAL_VECTOR    0x40u
#define APIC_ESR_ILLEGAL_REGISTER       0x80u
#define APIC_ICR_LO         0x300
#define APIC_ICR_HI         0x310
#define APIC_LVT_TIMER      0x320
#define APIC_LVT_THERMAL    0x330
#define APIC_LVT_PERF       0x340
#define APIC_LVT_LINT0      0x350
#define APIC_LVT_LINT1      0x360
#define APIC_LVT_ERROR      0x370
#define APIC_TIMER_ICR      0x380      /* initial count */
#define APIC_TIMER_CCR      0x390      /* current count */
#define APIC_TIMER_DCR      0x3e0      /* divide configuration */
#define APIC_TIMER_DCR_MASK 0x0bu

/* ICR low dword (§10.6.1) */
#define ICR_VECTOR          0x000ffu
#define ICR_DM_SHIFT        8
#define ICR_DEST_LOGICAL    (1u << 11)
#define ICR_DELIVERY_STATUS (1u << 12)
#define ICR_LEVEL_ASSERT    (1u << 14)
#define ICR_TRIGGER_LEVEL   (1u << 15)
#define ICR_SHORTHAND_SHIFT 18
#define ICR_LO_WRITABLE     0x000ccfffu
#define ICR_HI_DEST_SHIFT   24
#define ICR_SH_NONE         0
#define ICR_SH_SELF         1
#define ICR_SH_ALL_INCL     2
#define ICR_SH_ALL_EXCL     3

/* Delivery modes (ICR and LVT bits 10:8) */
#define APIC_DM_FIXED       0
#define APIC_DM_LOWEST      1
#define APIC_DM_SMI         2
#define APIC_DM_NMI         4
#define APIC_DM_INIT        5
#define APIC_DM_STARTUP     6
#define APIC_DM_EXTINT      7

/* LVT entries (§10.5.1 Figure 10-8) */
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };
#define LVT_VECTOR          0x000ffu
#define LVT_DM_SHIFT        8
#define LVT_DM_MASK         (7u << LVT_DM_SHIFT)
#define LVT_DELIVERY_STATUS (1u << 12)
#define LVT_POLARITY        (1u << 13)
#define LVT_REMOTE_IRR      (1u << 14)
#define LVT_TRIGGER_LEVEL   (1u << 15)
#define LVT_MASKED          (1u << 16)
#define LVT_TIMER_MODE_SHIFT 17
#define LVT_TIMER_MODE_MASK (3u << LVT_TIMER_MODE_SHIFT)
#define LVT_TIMER_ONESHOT   0
#define LVT_TIMER_PERIODIC  1
#define LVT_TIMER_TSC_DEADLINE 2
static const uint32_t lvt_writable[LVT_COUNT] = {
    [LVT_TIMER]   = LVT_VECTOR | LVT_MASKED | LVT_TIMER_MODE_MASK,
    [LVT_THERMAL] = LVT_VECTOR | LVT_DM_MASK | LVT_MASKED,
    [LVT_PERF]    = LVT_VECTOR | LVT_DM_MASK | LVT_MASKED,
    [LVT_LINT0]   = LVT_VECTOR | LVT_DM_MASK | LVT_POLARITY | LVT_TRIGGER_LEVEL | LVT_MASKED,
    [LVT_LINT1]   = LVT_VECTOR | LVT_DM_MASK | LVT_POLARITY | LVT_TRIGGER_LEVEL | LVT_MASKED,
    [LVT_ERROR]   = LVT_VECTOR | LVT_MASKED,
};

/* IA32_APIC_BASE (§10.4.4, Figure 10-5) */
#define MSR_APIC_BASE_BSP       (1ull << 8)
#define MSR_APIC_BASE_EXTD      (1ull << 10)   /* x2APIC: not supported */
#define MSR_APIC_BASE_ENABLE    (1ull << 11)
#define MSR_APIC_BASE_ADDR      0x000ffffffffff000ull

#define APIC_BUS_HZ         1000000000ull      /* timer input before the divider */
#define APIC_NO_VECTOR      (-1)
#define APIC_MIN_PERIOD_NS  5000               /* see apic_timer_arm_count */

/* ---- State ---- */

typedef struct LocalApic {
    /* Guest-visible registers */
    uint8_t id;
    uint64_t base_msr;
    uint32_t tpr;
    uint32_t ldr, dfr, svr;
    uint32_t isr[8], tmr[8], irr[8];
    uint32_t esr;               /* as last latched by an ESR write */
    uint32_t esr_pending;       /* errors since then */
    uint32_t icr_lo, icr_hi;
    uint32_t lvt[LVT_COUNT];
    uint32_t timer_initial;
    uint32_t timer_dcr;
    uint64_t tsc_deadline;

    /* Events for the CPU (apic_pending) */
    bool nmi_pending, init_pending, sipi_pending, smi_pending, extint_pending;
    uint8_t sipi_vector;
    bool wait_for_sipi;         /* after INIT: only a start-up IPI runs the CPU */
    bool lint0_level;

    /* Timer plumbing */
    int64_t timer_start_ns;     /* CLOCK_VIRTUAL when the count was loaded */
    Timer *timer;
    int index;
} LocalApic;

typedef struct ApicSet {
    int ncpus;
    LocalApic *cpu;
    MemoryRegion *mmio;
    hwaddr mmio_base;
} ApicSet;

static ApicSet *apics;
static uint64_t apic_tsc_hz = 1000000000ull;
static uint64_t (*apic_tsc_reader)(int cpu);

static LocalApic *apic_get(int cpu)
{
    if (!apics || cpu < 0 || cpu >= apics->ncpus)
        return NULL;
    return &apics->cpu[cpu];
}

/* ---- 256-bit registers ---- */

static void vec_set(uint32_t *r, int v)   { r[v >> 5] |= 1u << (v & 31); }
static void vec_clear(uint32_t *r, int v) { r[v >> 5] &= ~(1u << (v & 31)); }
static bool vec_test(const uint32_t *r, int v) { return r[v >> 5] & (1u << (v & 31)); }

static int vec_highest(const uint32_t *r)
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return APIC_NO_VECTOR;
}

/* ---- Priorities (§10.8.3.1, §10.6.2.4) ---- */

static uint32_t apic_ppr(const LocalApic *a)
{
    int isrv = vec_highest(a->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    return (a->tpr & 0xf0) >= isr_class ? a->tpr & 0xff : isr_class;
}

static uint32_t apic_apr(const LocalApic *a)
{
    int isrv = vec_highest(a->isr), irrv = vec_highest(a->irr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    uint32_t irr_class = irrv < 0 ? 0 : (uint32_t)irrv & 0xf0;
    uint32_t tpr_class = a->tpr & 0xf0;
    if (tpr_class >= irr_class && tpr_class > isr_class)
        return a->tpr & 0xff;
    return MAX(tpr_class, MAX(isr_class, irr_class));
}

static bool apic_hw_enabled(const LocalApic *a)
{
    return a->base_msr & MSR_APIC_BASE_ENABLE;
}

static bool apic_sw_enabled(const LocalApic *a)
{
    return a->svr & APIC_SVR_ENABLE;
}

/* The IRR vector the CPU may take now (its class above the PPR's), or -1. */
static int apic_deliverable_vector(const LocalApic *a)
{
    if (!apic_hw_enabled(a) || !apic_sw_enabled(a))
        return APIC_NO_VECTOR;
    int v = vec_highest(a->irr);
    if (v < 0 || ((uint32_t)v & 0xf0) <= (apic_ppr(a) & 0xf0))
        return APIC_NO_VECTOR;
    return v;
}

/* Does LINT0 pass the 8259's INT as ExtINT (or is the APIC out of the way)? */
static bool apic_accepts_pic(const LocalApic *a)
{
    if (!apic_hw_enabled(a))
        return a->index == 0;   /* §10.4.3: no APIC -> INTR pin straight to the (boot) CPU */
    uint32_t lvt0 = a->lvt[LVT_LINT0];
    return !(lvt0 & LVT_MASKED) && ((lvt0 & LVT_DM_MASK) >> LVT_DM_SHIFT) == APIC_DM_EXTINT;
}

/* ---- Accepting messages ---- */

static void apic_set_error(LocalApic *a, uint32_t bits);

/* A message arrives at one local APIC (§10.6, §10.8.4). */
static void apic_accept(LocalApic *a, unsigned dm, uint8_t vector, bool trigger_level)
{
    switch (dm) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        if (vector < 16) {
            apic_set_error(a, APIC_ESR_RECV_ILLEGAL_VECTOR);
            return;
        }
        vec_set(a->irr, vector);
        if (trigger_level)
            vec_set(a->tmr, vector);
        else
            vec_clear(a->tmr, vector);
        break;
    case APIC_DM_SMI:
        a->smi_pending = true;
        break;
    case APIC_DM_NMI:
        a->nmi_pending = true;
        break;
    case APIC_DM_INIT:
        a->init_pending = true;
        break;
    case APIC_DM_STARTUP:
        /*
         * §8.4.4.1 / §10.6.1: a SIPI only matters to a CPU waiting for one —
         * or about to, with an INIT the engine has not taken yet (Linux sends
         * INIT and SIPI back to back on family 6 and later).
         */
        if ((!a->wait_for_sipi && !a->init_pending) || a->sipi_pending)
            return;
        a->sipi_pending = true;
        a->sipi_vector = vector;
        break;
    case APIC_DM_EXTINT:
        a->extint_pending = true;
        break;
    default:
        LOG(LOG_GUEST_ERROR, "apic %d: reserved delivery mode %u\n", a->index, dm);
        return;
    }
    irqchip_kick(a->index);
}

/* Error LVT: set once per new error bit (§10.5.3). */
static void apic_set_error(LocalApic *a, uint32_t bits)
{
    uint32_t fresh = bits & ~a->esr_pending;
    a->esr_pending |= bits;
    uint32_t lvt = a->lvt[LVT_ERROR];
    if (fresh && !(lvt & LVT_MASKED))
        apic_accept(a, APIC_DM_FIXED, (uint8_t)(lvt & LVT_VECTOR), false);
}

/* Does this APIC take a message addressed to dest (§10.6.2.1, §10.6.2.2)? */
static bool apic_match_dest(const LocalApic *a, uint8_t dest, bool logical)
{
    if (!apic_hw_enabled(a))
        return false;
    if (!logical)
        return dest == 0xff || dest == a->id;
    if (dest == 0xff)
        return true;
    uint8_t ldr = (uint8_t)(a->ldr >> 24);
    if ((a->dfr & APIC_DFR_MODEL_MASK) == APIC_DFR_FLAT)
        return (ldr & dest) != 0;
    if ((a->dfr & APIC_DFR_MODEL_MASK) == APIC_DFR_CLUSTER)
        return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0x0f) != 0;
    return false;
}

/*
 * Deliver to every APIC in the set; lowest priority picks the one member
 * with the lowest arbitration priority (§10.6.2.4; ties go to the lowest
 * index, as focus processors are not modelled).
 */
static void apic_deliver_set(const bool *targets, unsigned dm, uint8_t vector,
                             bool trigger_level)
{
    if (dm == APIC_DM_LOWEST) {
        LocalApic *best = NULL;
        for (int i = 0; i < apics->ncpus; i++) {
            if (!targets[i])
                continue;
            LocalApic *a = &apics->cpu[i];
            if (!best || apic_apr(a) < apic_apr(best))
                best = a;
        }
        if (best)
            apic_accept(best, dm, vector, trigger_level);
        return;
    }
    for (int i = 0; i < apics->ncpus; i++)
        if (targets[i])
            apic_accept(&apics->cpu[i], dm, vector, trigger_level);
}

void apic_deliver(uint8_t dest, bool dest_logical, uint8_t delivery_mode, uint8_t vector,
                  bool level, bool trigger_level)
{
    if (!apics)
        return;
    /* An INIT level de-assert message only re-synchronises arbitration IDs. */
    if (delivery_mode == APIC_DM_INIT && trigger_level && !level)
        return;
    bool targets[apics->ncpus];
    bool any = false;
    for (int i = 0; i < apics->ncpus; i++) {
        targets[i] = apic_match_dest(&apics->cpu[i], dest, dest_logical);
        any |= targets[i];
    }
    if (!any) {
        LOG(LOG_GUEST_ERROR, "apic: message for %s destination 0x%02x reaches no CPU\n",
            dest_logical ? "logical" : "physical", dest);
        return;
    }
    apic_deliver_set(targets, delivery_mode & 7, vector, trigger_level);
}

/* ---- Local interrupt pins ---- */

/* An LVT entry fires its own interrupt (timer, error, LINT in fixed/NMI mode). */
static void apic_lvt_fire(LocalApic *a, int lvt_index)
{
    uint32_t lvt = a->lvt[lvt_index];
    if (lvt & LVT_MASKED)
        return;
    unsigned dm = lvt_index == LVT_TIMER || lvt_index == LVT_ERROR
                  ? APIC_DM_FIXED : (lvt & LVT_DM_MASK) >> LVT_DM_SHIFT;
    if (dm == APIC_DM_EXTINT) {
        irqchip_kick(a->index);   /* apic_pending looks at the 8259 itself */
        return;
    }
    apic_accept(a, dm, (uint8_t)(lvt & LVT_VECTOR),
                lvt_index != LVT_TIMER && (lvt & LVT_TRIGGER_LEVEL));
}

void apic_pic_output_changed(bool level)
{
    if (!apics)
        return;
    for (int i = 0; i < apics->ncpus; i++) {
        LocalApic *a = &apics->cpu[i];
        bool rising = level && !a->lint0_level;
        a->lint0_level = level;
        if (apic_accepts_pic(a)) {
            if (level)
                irqchip_kick(i);
        } else if (rising && apic_hw_enabled(a)) {
            apic_lvt_fire(a, LVT_LINT0);    /* LINT0 programmed as fixed or NMI */
        }
    }
}

/* ---- Timer (§10.5.4) ---- */

static unsigned apic_timer_mode(const LocalApic *a)
{
    return (a->lvt[LVT_TIMER] & LVT_TIMER_MODE_MASK) >> LVT_TIMER_MODE_SHIFT;
}

/* Figure 10-10: DCR bits 3,1:0; 111b = divide by 1, else 2 << value. */
static uint64_t apic_timer_divisor(const LocalApic *a)
{
    unsigned v = (a->timer_dcr & 3) | ((a->timer_dcr >> 1) & 4);
    return v == 7 ? 1 : 2u << v;
}

static int64_t apic_timer_tick_ns(const LocalApic *a)
{
    return (int64_t)(apic_timer_divisor(a) * NS_PER_SEC / APIC_BUS_HZ);
}

static uint64_t apic_timer_elapsed_ticks(const LocalApic *a)
{
    int64_t now = clock_get_ns(CLOCK_VIRTUAL);
    if (now <= a->timer_start_ns)
        return 0;
    return (uint64_t)(now - a->timer_start_ns) / (uint64_t)apic_timer_tick_ns(a);
}

static uint32_t apic_timer_current_count(const LocalApic *a)
{
    unsigned mode = apic_timer_mode(a);
    if (a->timer_initial == 0 || mode == LVT_TIMER_TSC_DEADLINE)
        return 0;
    uint64_t d = apic_timer_elapsed_ticks(a);
    if (mode == LVT_TIMER_PERIODIC)
        return a->timer_initial - (uint32_t)(d % a->timer_initial);
    return d >= a->timer_initial ? 0 : a->timer_initial - (uint32_t)d;
}

/* Arm the timer for the next expiry of the count (one-shot / periodic). */
static void apic_timer_arm_count(LocalApic *a)
{
    unsigned mode = apic_timer_mode(a);
    if (a->timer_initial == 0 || mode == LVT_TIMER_TSC_DEADLINE) {
        timer_del(a->timer);
        return;
    }
    uint64_t d = apic_timer_elapsed_ticks(a);
    uint64_t next;
    if (mode == LVT_TIMER_PERIODIC) {
        next = (d / a->timer_initial + 1) * a->timer_initial;
    } else {
        if (d >= a->timer_initial) {
            /*
             * The count already ran out: it fired, or its expiry is still
             * queued (the main loop has not run it yet) and must not be lost.
             */
            if (timer_pending(a->timer))
                timer_mod(a->timer, clock_get_ns(CLOCK_VIRTUAL));
            return;
        }
        next = a->timer_initial;
    }
    uint64_t tick = (uint64_t)apic_timer_tick_ns(a);
    int64_t expire = a->timer_start_ns + (int64_t)(next * tick);
    if (mode == LVT_TIMER_PERIODIC) {
        /*
         * A guest-chosen period of a few ns would have the main loop do
         * nothing else: expiries closer than APIC_MIN_PERIOD_NS are merged
         * (IRR holds one bit per vector anyway).  The count stays exact.
         */
        int64_t min = clock_get_ns(CLOCK_VIRTUAL) + APIC_MIN_PERIOD_NS;
        if (expire < min) {
            uint64_t period_ns = a->timer_initial * tick;
            uint64_t k = ((uint64_t)(min - a->timer_start_ns) + period_ns - 1) / period_ns;
            expire = a->timer_start_ns + (int64_t)(k * period_ns);
        }
    }
    timer_mod(a->timer, expire);
}

static uint64_t apic_read_tsc(int cpu)
{
    if (apic_tsc_reader)
        return apic_tsc_reader(cpu);
    return (uint64_t)((unsigned __int128)clock_get_ns(CLOCK_VIRTUAL) * apic_tsc_hz / NS_PER_SEC);
}

static void apic_timer_arm_deadline(LocalApic *a)
{
    if (apic_timer_mode(a) != LVT_TIMER_TSC_DEADLINE || a->tsc_deadline == 0) {
        timer_del(a->timer);
        return;
    }
    uint64_t now_tsc = apic_read_tsc(a->index);
    int64_t now = clock_get_ns(CLOCK_VIRTUAL);
    uint64_t delta = a->tsc_deadline > now_tsc ? a->tsc_deadline - now_tsc : 0;
    unsigned __int128 ns = ((unsigned __int128)delta * NS_PER_SEC + apic_tsc_hz - 1) / apic_tsc_hz;
    if (ns > (unsigned __int128)(INT64_MAX - now))
        ns = (unsigned __int128)(INT64_MAX - now);
    timer_mod(a->timer, now + (int64_t)ns);
}

static void apic_timer_cb(void *opaque)
{
    LocalApic *a = opaque;
    unsigned mode = apic_timer_mode(a);

    if (mode == LVT_TIMER_TSC_DEADLINE) {
        if (a->tsc_deadline == 0)
            return;
        a->tsc_deadline = 0;        /* §10.5.4.1: the MSR clears when the timer fires */
        apic_lvt_fire(a, LVT_TIMER);
        return;
    }
    if (a->timer_initial == 0)
        return;
    apic_lvt_fire(a, LVT_TIMER);
    if (mode == LVT_TIMER_PERIODIC)
        apic_timer_arm_count(a);
}

/* ---- Register access ---- */

static void apic_update_irq(LocalApic *a)
{
    if (apic_deliverable_vector(a) >= 0)
        irqchip_kick(a->index);
}

static void apic_eoi(LocalApic *a)
{
    int v = vec_highest(a->isr);
    if (v < 0)
        return;
    vec_clear(a->isr, v);
    /* §10.8.5: EOI of a level-triggered vector is broadcast to the I/O APICs. */
    if (vec_test(a->tmr, v))
        ioapic_eoi_broadcast((uint8_t)v);
    apic_update_irq(a);
}

static void apic_send_ipi(LocalApic *a)
{
    uint32_t lo = a->icr_lo;
    unsigned dm = (lo >> ICR_DM_SHIFT) & 7;
    uint8_t vector = lo & ICR_VECTOR;
    bool level = lo & ICR_LEVEL_ASSERT, trig = lo & ICR_TRIGGER_LEVEL;
    unsigned sh = (lo >> ICR_SHORTHAND_SHIFT) & 3;
    uint8_t dest = (uint8_t)(a->icr_hi >> ICR_HI_DEST_SHIFT);

    LOG(LOG_INT, "apic %d: IPI icr 0x%08x dest 0x%02x\n", a->index, lo, dest);
    if ((dm == APIC_DM_FIXED || dm == APIC_DM_LOWEST) && vector < 16) {
        apic_set_error(a, APIC_ESR_SEND_ILLEGAL_VECTOR);
        return;
    }
    if (dm == APIC_DM_INIT && trig && !level)
        return;                     /* INIT level de-assert */
    bool targets[apics->ncpus];
    for (int i = 0; i < apics->ncpus; i++) {
        LocalApic *t = &apics->cpu[i];
        switch (sh) {
        case ICR_SH_NONE:
            targets[i] = apic_match_dest(t, dest, lo & ICR_DEST_LOGICAL);
            break;
        case ICR_SH_SELF:
            targets[i] = t == a;
            break;
        case ICR_SH_ALL_INCL:
            targets[i] = apic_hw_enabled(t);
            break;
        default:
            targets[i] = t != a && apic_hw_enabled(t);
            break;
        }
    }
    apic_deliver_set(targets, dm, vector, trig);
}

static void apic_lvt_write(LocalApic *a, int idx, uint32_t v)
{
    uint32_t old = a->lvt[idx];
    uint32_t nv = (v & lvt_writable[idx]) | (old & (LVT_DELIVERY_STATUS | LVT_REMOTE_IRR));
    if (!apic_sw_enabled(a))
        nv |= LVT_MASKED;           /* §10.4.7.2: masks cannot be cleared while disabled */
    a->lvt[idx] = nv;
    if (idx == LVT_TIMER) {
        unsigned om = (old & LVT_TIMER_MODE_MASK) >> LVT_TIMER_MODE_SHIFT;
        unsigned nm = (nv & LVT_TIMER_MODE_MASK) >> LVT_TIMER_MODE_SHIFT;
        if (nm == 3) {
            LOG(LOG_GUEST_ERROR, "apic %d: reserved timer mode 3\n", a->index);
        }
        if ((om == LVT_TIMER_TSC_DEADLINE) != (nm == LVT_TIMER_TSC_DEADLINE)) {
            /* §10.5.4.1: switching to or from TSC-deadline mode disarms the timer. */
            a->timer_initial = 0;
            a->tsc_deadline = 0;
            timer_del(a->timer);
        } else if (nm != LVT_TIMER_TSC_DEADLINE) {
            apic_timer_arm_count(a);
        }
    }
    if (idx == LVT_LINT0)
        apic_pic_output_changed(pic_int_output());
}

static void apic_reset_regs(LocalApic *a);

static void apic_svr_write(LocalApic *a, uint32_t v)
{
    a->svr = v & APIC_SVR_WRITABLE;
    if (!apic_sw_enabled(a)) {
        for (int i = 0; i < LVT_COUNT; i++)
            a->lvt[i] |= LVT_MASKED;
    } else {
        apic_update_irq(a);
    }
}

static uint32_t apic_reg_read(LocalApic *a, unsigned reg)
{
    switch (reg) {
    case APIC_ID:       return (uint32_t)a->id << APIC_ID_SHIFT;
    case APIC_VERSION:  return APIC_VERSION_VALUE;
    case APIC_TPR:      return a->tpr;
    case APIC_APR:      return apic_apr(a);
    case APIC_PPR:      return apic_ppr(a);
    case APIC_EOI:      return 0;
    case APIC_RRD:      return 0;
    case APIC_LDR:      return a->ldr;
    case APIC_DFR:      return a->dfr;
    case APIC_SVR:      return a->svr;
    case APIC_ESR:      return a->esr;
    case APIC_ICR_LO:   return a->icr_lo;
    case APIC_ICR_HI:   return a->icr_hi;
    case APIC_TIMER_ICR: return a->timer_initial;
    case APIC_TIMER_CCR: return apic_timer_current_count(a);
    case APIC_TIMER_DCR: return a->timer_dcr;
    }
    if (reg >= APIC_ISR && reg < APIC_ISR + 0x80)
        return a->isr[(reg - APIC_ISR) >> 4];
    if (reg >= APIC_TMR && reg < APIC_TMR + 0x80)
        return a->tmr[(reg - APIC_TMR) >> 4];
    if (reg >= APIC_IRR && reg < APIC_IRR + 0x80)
        return a->irr[(reg - APIC_IRR) >> 4];
    if (reg >= APIC_LVT_TIMER && reg <= APIC_LVT_ERROR)
        return a->lvt[(reg - APIC_LVT_TIMER) >> 4];
    LOG(LOG_GUEST_ERROR, "apic %d: read of reserved register 0x%03x\n", a->index, reg);
    apic_set_error(a, APIC_ESR_ILLEGAL_REGISTER);
    return 0;
}

static void apic_reg_write(LocalApic *a, unsigned reg, uint32_t v)
{
    switch (reg) {
    case APIC_ID:
        /* Writable in xAPIC mode on P6-family and later parts (§10.4.6). */
        a->id = (uint8_t)(v >> APIC_ID_SHIFT);
        return;
    case APIC_TPR:
        a->tpr = v & 0xff;
        apic_update_irq(a);
        return;
    case APIC_EOI:
        apic_eoi(a);
        return;
    case APIC_LDR:
        a->ldr = v & APIC_LDR_MASK;
        return;
    case APIC_DFR:
        a->dfr = (v & APIC_DFR_MODEL_MASK) | ~APIC_DFR_MODEL_MASK;
        return;
    case APIC_SVR:
        apic_svr_write(a, v);
        return;
    case APIC_ESR:
        /* §10.5.3: a write latches the errors seen since the previous write. */
        a->esr = a->esr_pending;
        a->esr_pending = 0;
        return;
    case APIC_ICR_LO:
        a->icr_lo = v & ICR_LO_WRITABLE & ~ICR_DELIVERY_STATUS;
        apic_send_ipi(a);
        return;
    case APIC_ICR_HI:
        a->icr_hi = v & (0xffu << ICR_HI_DEST_SHIFT);
        return;
    case APIC_TIMER_ICR:
        if (apic_timer_mode(a) == LVT_TIMER_TSC_DEADLINE)
            return;                 /* §10.5.4.1: ignored in TSC-deadline mode */
        a->timer_initial = v;
        a->timer_start_ns = clock_get_ns(CLOCK_VIRTUAL);
        if (v && apic_timer_mode(a) != LVT_TIMER_PERIODIC) {
            /*
             * A new one-shot count expires exactly once, even when the clock
             * passed its end before we got here (a short count on a slow or
             * preempted vCPU thread): Linux's next timer tick depends on it.
             */
            timer_mod(a->timer, a->timer_start_ns + (int64_t)v * apic_timer_tick_ns(a));
            return;
        }
        apic_timer_arm_count(a);
        return;
    case APIC_TIMER_DCR: {
        /* Keep the current count across a divider change: restart from it. */
        uint32_t cur = apic_timer_current_count(a);
        uint64_t done = a->timer_initial ? (uint64_t)(a->timer_initial - cur) : 0;
        a->timer_dcr = v & APIC_TIMER_DCR_MASK;
        a->timer_start_ns = clock_get_ns(CLOCK_VIRTUAL) -
                            (int64_t)(done * (uint64_t)apic_timer_tick_ns(a));
        if (a->timer_initial)
            apic_timer_arm_count(a);
        return;
    }
    case APIC_VERSION: case APIC_APR: case APIC_PPR: case APIC_RRD: case APIC_TIMER_CCR:
        return;                     /* read-only */
    }
    if (reg >= APIC_LVT_TIMER && reg <= APIC_LVT_ERROR) {
        apic_lvt_write(a, (int)(reg - APIC_LVT_TIMER) >> 4, v);
        return;
    }
    if (reg >= APIC_ISR && reg < APIC_IRR + 0x80)
        return;                     /* ISR/TMR/IRR are read-only */
    LOG(LOG_GUEST_ERROR, "apic %d: write 0x%08x to reserved register 0x%03x\n", a->index, v,
        reg);
    apic_set_error(a, APIC_ESR_ILLEGAL_REGISTER);
}

static LocalApic *apic_mmio_target(void)
{
    int cpu = irqchip_current_cpu;
    LocalApic *a = apic_get(cpu < 0 ? 0 : cpu);
    return a ? a : apic_get(0);
}

static uint64_t apic_mmio_read(void *opaque, hwaddr offset, unsigned size)
{
    LocalApic *a = apic_mmio_target();
    if (!a || (offset & 0xf))
        return 0;
    return apic_reg_read(a, (unsigned)offset);
}

static void apic_mmio_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    LocalApic *a = apic_mmio_target();
    if (!a)
        return;
    if (offset & 0xf) {
        LOG(LOG_GUEST_ERROR, "apic: unaligned write at offset 0x%03x\n", (unsigned)offset);
        return;
    }
    apic_reg_write(a, (unsigned)offset, (uint32_t)value);
}

static const MemoryRegionOps apic_mmio_ops = {
    .read = apic_mmio_read,
    .write = apic_mmio_write,
    .min_access = 4,
    .max_access = 4,
};

/* ---- CPU side (include/kestrel/irqchip.h) ---- */

unsigned apic_pending(int cpu)
{
    LocalApic *a = apic_get(cpu);
    if (!a)
        return 0;
    unsigned r = 0;
    if (apic_deliverable_vector(a) >= 0 || a->extint_pending ||
        (apic_accepts_pic(a) && pic_int_output()))
        r |= APIC_PENDING_INTR;
    if (a->nmi_pending)
        r |= APIC_PENDING_NMI;
    if (a->init_pending)
        r |= APIC_PENDING_INIT;
    if (a->sipi_pending)
        r |= APIC_PENDING_SIPI;
    if (a->smi_pending)
        r |= APIC_PENDING_SMI;
    return r;
}

int apic_ack_intr(int cpu)
{
    LocalApic *a = apic_get(cpu);
    if (!a)
        return -1;
    int v = apic_deliverable_vector(a);
    if (v >= 0) {
        /* §10.8.4: the highest IRR bit moves to ISR when the CPU takes it. */
        vec_clear(a->irr, v);
        vec_set(a->isr, v);
        LOG(LOG_INT, "apic %d: deliver vector 0x%02x\n", cpu, v);
        return v;
    }
    if (a->extint_pending || (apic_accepts_pic(a) && pic_int_output())) {
        a->extint_pending = false;
        return pic_intack();
    }
    return -1;
}

uint8_t apic_sipi_vector(int cpu)
{
    LocalApic *a = apic_get(cpu);
    return a ? a->sipi_vector : 0;
}

void apic_take_event(int cpu, unsigned event)
{
    LocalApic *a = apic_get(cpu);
    if (!a)
        return;
    if (event & APIC_PENDING_NMI)
        a->nmi_pending = false;
    if (event & APIC_PENDING_SMI)
        a->smi_pending = false;
    if (event & APIC_PENDING_INIT) {
        /* §10.4.7.3: INIT resets the APIC except its ID (and the base MSR). */
        a->init_pending = false;
        apic_reset_regs(a);
        a->wait_for_sipi = true;
    }
    if (event & APIC_PENDING_SIPI) {
        a->sipi_pending = false;
        a->wait_for_sipi = false;
    }
}

uint64_t apic_get_base(int cpu)
{
    LocalApic *a = apic_get(cpu);
    return a ? a->base_msr : APIC_DEFAULT_BASE | MSR_APIC_BASE_ENABLE |
                             (cpu == 0 ? MSR_APIC_BASE_BSP : 0);
}

bool apic_set_base(int cpu, uint64_t value)
{
    LocalApic *a = apic_get(cpu);
    if (value & ~(MSR_APIC_BASE_ADDR | MSR_APIC_BASE_ENABLE | MSR_APIC_BASE_BSP))
        return false;       /* reserved bits, including x2APIC enable (not supported) */
    if (!a)
        return true;
    uint64_t old = a->base_msr;
    a->base_msr = (value & (MSR_APIC_BASE_ADDR | MSR_APIC_BASE_ENABLE)) |
                  (old & MSR_APIC_BASE_BSP);
    if ((old & MSR_APIC_BASE_ENABLE) && !(value & MSR_APIC_BASE_ENABLE)) {
        /* §10.4.3: a globally disabled APIC comes back in its power-up state. */
        apic_reset_regs(a);
    }
    hwaddr base = a->base_msr & MSR_APIC_BASE_ADDR;
    if (base != apics->mmio_base) {
        LOG(LOG_UNIMP, "apic %d: base moved to 0x%" PRIx64 "; every CPU's APIC page moves\n",
            cpu, (uint64_t)base);
        memory_region_set_address(apics->mmio, base);
        apics->mmio_base = base;
    }
    apic_pic_output_changed(pic_int_output());
    return true;
}

uint8_t apic_get_tpr(int cpu)
{
    LocalApic *a = apic_get(cpu);
    return a ? (uint8_t)a->tpr : 0;
}

void apic_set_tpr(int cpu, uint8_t tpr)
{
    LocalApic *a = apic_get(cpu);
    if (!a)
        return;
    a->tpr = tpr;
    apic_update_irq(a);
}

void apic_set_tsc_deadline(int cpu, uint64_t deadline)
{
    LocalApic *a = apic_get(cpu);
    if (!a || apic_timer_mode(a) != LVT_TIMER_TSC_DEADLINE)
        return;             /* §10.5.4.1: ignored unless the timer is in TSC-deadline mode */
    a->tsc_deadline = deadline;
    if (deadline && deadline <= apic_read_tsc(cpu)) {
        apic_timer_cb(a);
        return;
    }
    apic_timer_arm_deadline(a);
}

uint64_t apic_get_tsc_deadline(int cpu)
{
    LocalApic *a = apic_get(cpu);
    if (!a || apic_timer_mode(a) != LVT_TIMER_TSC_DEADLINE)
        return 0;
    return a->tsc_deadline;
}

void apic_set_tsc_hz(uint64_t hz)
{
    if (hz)
        apic_tsc_hz = hz;
}

void apic_set_tsc_reader(uint64_t (*read_tsc)(int cpu))
{
    apic_tsc_reader = read_tsc;
}

/* ---- Reset and registration ---- */

/* Power-up register values (§10.4.7.1), keeping the ID and the base MSR. */
static void apic_reset_regs(LocalApic *a)
{
    a->tpr = 0;
    a->ldr = 0;
    a->dfr = 0xffffffff;
    a->svr = 0xff;
    memset(a->isr, 0, sizeof(a->isr));
    memset(a->tmr, 0, sizeof(a->tmr));
    memset(a->irr, 0, sizeof(a->irr));
    a->esr = a->esr_pending = 0;
    a->icr_lo = a->icr_hi = 0;
    for (int i = 0; i < LVT_COUNT; i++)
        a->lvt[i] = LVT_MASKED;
    a->timer_initial = 0;
    a->timer_dcr = 0;
    a->tsc_deadline = 0;
    a->timer_start_ns = 0;
    a->extint_pending = false;
    if (a->timer)
        timer_del(a->timer);
}

static void apic_reset(void *opaque)
{
    ApicSet *s = opaque;
    for (int i = 0; i < s->ncpus; i++) {
        LocalApic *a = &s->cpu[i];
        a->id = (uint8_t)i;     /* the MP table's ids (hw/pc/mptable.c) */
        a->base_msr = APIC_DEFAULT_BASE | MSR_APIC_BASE_ENABLE | (i == 0 ? MSR_APIC_BASE_BSP : 0);
        apic_reset_regs(a);
        if (i == 0)
            a->lvt[LVT_LINT0] = APIC_DM_EXTINT << LVT_DM_SHIFT;   /* virtual wire */
        a->nmi_pending = a->init_pending = a->sipi_pending = a->smi_pending = false;
        a->sipi_vector = 0;
        /* Application processors wait for INIT/SIPI; the BSP runs. */
        a->wait_for_sipi = i != 0;
        a->lint0_level = false;
    }
    if (s->mmio_base != APIC_DEFAULT_BASE) {
        memory_region_set_address(s->mmio, APIC_DEFAULT_BASE);
        s->mmio_base = APIC_DEFAULT_BASE;
    }
}

static void *apic_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (apics) {
        kestrel_set_error(errp, "apic: the local APICs already exist");
        return NULL;
    }
    int n = m->smp_cpus > 0 ? m->smp_cpus : 1;
    if (n > 255) {
        kestrel_set_error(errp, "apic: %d CPUs do not fit in 8-bit xAPIC ids", n);
        return NULL;
    }
    ApicSet *s = g_new0(ApicSet, 1);
    s->ncpus = n;
    s->cpu = g_new0(LocalApic, n);
    for (int i = 0; i < n; i++) {
        s->cpu[i].index = i;
        s->cpu[i].timer = timer_new(CLOCK_VIRTUAL, apic_timer_cb, &s->cpu[i]);
    }
    s->mmio_base = APIC_DEFAULT_BASE;
    s->mmio = memory_region_new_mmio("apic", APIC_MMIO_SIZE, &apic_mmio_ops, s);
    memory_region_add_subregion(m->system_memory, APIC_DEFAULT_BASE, s->mmio, 1);
    apics = s;
    apic_reset(s);
    return s;
}

static const PropDef apic_props[] = {
    { NULL }
};

static const DeviceType apic_type = {
    .name = "apic",
    .desc = "local APIC of every CPU (xAPIC, 0xfee00000)",
    .bus = "sys",
    .user_creatable = false,
    .props = apic_props,
    .create = apic_create,
    .reset = apic_reset,
};

DEVICE_TYPE_REGISTER(apic_type)

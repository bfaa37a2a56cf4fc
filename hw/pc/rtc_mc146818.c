/*
 * Motorola MC146818A real-time clock with 128 bytes of CMOS RAM
 * ("mc146818rtc"): ports 0x70 (index; bit 7 is the PC's NMI mask) and
 * 0x71 (data), IRQ 8.
 *
 * Follows the Motorola MC146818A datasheet: "Address Map" (14 clock and
 * control bytes + 50 user bytes, extended to 128 on PC chipsets),
 * "Time, Calendar and Alarm Locations" (Table 3: BCD/binary and 12/24-hour
 * formats, alarm "don't care" codes 0xC0-0xFF), "Update Cycle" (UIP is set
 * 244 us before an update, which then takes place at the second boundary),
 * "Register A" (UIP, DV2-DV0, RS3-RS0 and Table 5 periodic rates),
 * "Register B" (SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE), "Register C"
 * (IRQF, PF, AF, UF, cleared by reading), "Register D" (VRT) and
 * "Interrupts" (flags are set whatever the enable bits; IRQF = PF.PIE +
 * AF.AIE + UF.UIE).  PC CMOS layout: /work/shared/docs/pc-platform.md §6 and
 * firmware-seabios.md §5.
 *
 * Time keeping: the guest's date is a second counter started from host
 * wall-clock time (CLOCK_HOST, adjusted by the "base" property) when the
 * device is created, and then advanced by the divider chain, which runs on
 * CLOCK_VIRTUAL: the second boundaries, the UIP window, periodic
 * interrupts, alarms and update interrupts are all virtual-clock events,
 * so a qtest can step them exactly and a paused VM's clock does not move
 * (QEMU's "-rtc clock=vm").  The sub-second phase starts aligned with the
 * host's second boundary.  Writing the time (with or without SET) moves the
 * guest's clock; the host clock is never touched.
 *
 * Not modelled: the SQW output pin, daylight-saving switching (DSE is
 * stored only), the 4.194304/1.048576 MHz time bases (any divider setting
 * other than 010 stops the chain), the second 128-byte bank at 0x72/0x73,
 * and NMI masking (bit 7 of the index write is remembered only; nothing
 * raises NMIs yet).
 */
#include "kestrel/common.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/rtc.h"

#include <time.h>

/* ---- Register table (MC146818A address map) ---- */

#define RTC_SECONDS         0x00
#define RTC_SECONDS_ALARM   0x01
#define RTC_MINUTES         0x02
#define RTC_MINUTES_ALARM   0x03
#define RTC_HOURS           0x04
#define RTC_HOURS_ALARM     0x05
#define RTC_DAY_OF_WEEK     0x06    /* 1 = Sunday */
#define RTC_DAY_OF_MONTH    0x07
#define RTC_MONTH           0x08
#define RTC_YEAR            0x09    /* 00-99 */
#define RTC_REG_A           0x0a
#define RTC_REG_B           0x0b
#define RTC_REG_C           0x0c
#define RTC_REG_D           0x0d
#define RTC_CENTURY         0x32    /* PC/AT convention (IBM), same format as the clock */

/* Register A */
#define RTC_A_UIP           0x80    /* update in progress (read-only) */
#define RTC_A_DV_MASK       0x70    /* DV2-DV0 divider select */
#define RTC_A_DV_32KHZ      0x20    /* 010: 32.768 kHz time base, chain running */
#define RTC_A_DV_RESET      0x60    /* 11x: divider chain held in reset */
#define RTC_A_RS_MASK       0x0f    /* RS3-RS0 rate select */

/* Register B */
#define RTC_B_SET           0x80
#define RTC_B_PIE           0x40
#define RTC_B_AIE           0x20
#define RTC_B_UIE           0x10
#define RTC_B_SQWE          0x08
#define RTC_B_DM            0x04    /* 1 = binary, 0 = BCD */
#define RTC_B_24H           0x02    /* 1 = 24-hour mode */
#define RTC_B_DSE           0x01

/* Register C */
#define RTC_C_IRQF          0x80
#define RTC_C_PF            0x40
#define RTC_C_AF            0x20
#define RTC_C_UF            0x10

/* Register D */
#define RTC_D_VRT           0x80

#define RTC_HOUR_PM         0x80    /* hour byte bit 7 in 12-hour mode */
#define RTC_ALARM_DONT_CARE 0xc0    /* alarm byte >= 0xC0 matches any value */

/* Power-on register values as QEMU and SeaBIOS leave them (pc-platform.md §6). */
#define RTC_A_POWER_ON      0x26    /* 32.768 kHz, 1024 Hz periodic rate */
#define RTC_B_POWER_ON      RTC_B_24H

#define RTC_OSC_HZ          32768
#define RTC_UIP_NS          244141  /* 8 cycles of 32.768 kHz = 244.14 us */

/* ---- State ---- */

typedef struct MC146818 {
    /* Guest-visible. */
    uint8_t cmos[RTC_CMOS_SIZE];    /* NVRAM; clock bytes as last brought up to date */
    uint8_t index;                  /* bits 6:0 of the last index write */
    bool nmi_disabled;              /* bit 7 of the last index write */

    /*
     * Time keeping (see header).  Second boundaries of the divider chain are
     * at div_origin_vns + k s.  While the clock runs, the guest time at
     * virtual time v is base_sec plus the boundaries in (base_vns, v].
     */
    int64_t div_origin_vns;
    int64_t base_sec;
    int64_t base_vns;
    int64_t pf_checked_vns;         /* periodic edges up to here are in PF */

    /* Host plumbing. */
    uint16_t iobase;
    IrqLine *irq;
    Timer *update_timer;
    Timer *periodic_timer;
    IoPortRange *ports;
} MC146818;

/* ---- Calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                              /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;      /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- Behaviour ---- */

static bool rtc_binary(const MC146818 *s)
{
    return s->cmos[RTC_REG_B] & RTC_B_DM;
}

static uint8_t rtc_encode(const MC146818 *s, unsigned v)
{
    v %= 100;
    return rtc_binary(s) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

/* A guest may store non-BCD digits; they decode to out-of-range values that
 * the calendar arithmetic carries over, as a real chip would misbehave. */
static unsigned rtc_decode(const MC146818 *s, uint8_t b)
{
    return rtc_binary(s) ? b : (unsigned)(b >> 4) * 10 + (b & 0x0f);
}

static bool rtc_chain_running(const MC146818 *s)
{
    return (s->cmos[RTC_REG_A] & RTC_A_DV_MASK) == RTC_A_DV_32KHZ;
}

/* Updates happen (and time advances) only with the chain running and SET = 0. */
static bool rtc_clock_running(const MC146818 *s)
{
    return rtc_chain_running(s) && !(s->cmos[RTC_REG_B] & RTC_B_SET);
}

static int64_t rtc_now(void)
{
    return clock_get_ns(CLOCK_VIRTUAL);
}

static int64_t rtc_seconds_at(const MC146818 *s, int64_t vns)
{
    if (!rtc_clock_running(s))
        return s->base_sec;
    return s->base_sec + floor_div(vns - s->div_origin_vns, NS_PER_SEC) -
           floor_div(s->base_vns - s->div_origin_vns, NS_PER_SEC);
}

static int64_t rtc_next_second_vns(const MC146818 *s, int64_t vns)
{
    return s->div_origin_vns +
           (floor_div(vns - s->div_origin_vns, NS_PER_SEC) + 1) * NS_PER_SEC;
}

/* Write the calendar bytes for 'sec' in the current DM and 24/12 formats. */
static void rtc_store_time(MC146818 *s, int64_t sec)
{
    int64_t days = floor_div(sec, 86400);
    int64_t sod = sec - days * 86400;
    unsigned hour = (unsigned)(sod / 3600);
    int64_t year;
    unsigned month, mday;

    civil_from_days(days, &year, &month, &mday);
    s->cmos[RTC_SECONDS] = rtc_encode(s, (unsigned)(sod % 60));
    s->cmos[RTC_MINUTES] = rtc_encode(s, (unsigned)(sod / 60 % 60));
    if (s->cmos[RTC_REG_B] & RTC_B_24H) {
        s->cmos[RTC_HOURS] = rtc_encode(s, hour);
    } else {
        unsigned h12 = hour % 12 ? hour % 12 : 12;
        s->cmos[RTC_HOURS] = rtc_encode(s, h12) | (hour >= 12 ? RTC_HOUR_PM : 0);
    }
    /* 1970-01-01 (day 0) was a Thursday; the register counts Sunday as 1. */
    s->cmos[RTC_DAY_OF_WEEK] = rtc_encode(s, (unsigned)(((days + 4) % 7 + 7) % 7) + 1);
    s->cmos[RTC_DAY_OF_MONTH] = rtc_encode(s, mday);
    s->cmos[RTC_MONTH] = rtc_encode(s, month);
    int64_t yy = year % 100 < 0 ? year % 100 + 100 : year % 100;
    s->cmos[RTC_YEAR] = rtc_encode(s, (unsigned)yy);
    s->cmos[RTC_CENTURY] = rtc_encode(s, (unsigned)(floor_div(year, 100) % 100 + 100) % 100);
}

/* The calendar bytes as seconds since the epoch. */
static int64_t rtc_load_time(const MC146818 *s)
{
    const uint8_t *c = s->cmos;
    unsigned sec = rtc_decode(s, c[RTC_SECONDS]);
    unsigned min = rtc_decode(s, c[RTC_MINUTES]);
    unsigned hour;

    if (c[RTC_REG_B] & RTC_B_24H) {
        hour = rtc_decode(s, c[RTC_HOURS]);
    } else {
        hour = rtc_decode(s, c[RTC_HOURS] & ~RTC_HOUR_PM) % 12 +
               ((c[RTC_HOURS] & RTC_HOUR_PM) ? 12 : 0);
    }
    unsigned mday = rtc_decode(s, c[RTC_DAY_OF_MONTH]);
    unsigned month = rtc_decode(s, c[RTC_MONTH]);
    int64_t year = (int64_t)rtc_decode(s, c[RTC_CENTURY]) * 100 + rtc_decode(s, c[RTC_YEAR]);

    /* Months outside 1-12 are clamped; other fields carry over arithmetically. */
    if (month < 1)
        month = 1;
    if (month > 12)
        month = 12;
    return days_from_civil(year, month, mday ? mday : 1) * 86400 +
           (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
}

/* Bring the calendar bytes up to date if the clock is running. */
static void rtc_sync_time(MC146818 *s)
{
    if (rtc_clock_running(s))
        rtc_store_time(s, rtc_seconds_at(s, rtc_now()));
}

/* Restart counting from the calendar bytes (after a guest write). */
static void rtc_rebase(MC146818 *s)
{
    s->base_sec = rtc_load_time(s);
    s->base_vns = rtc_now();
}

static bool rtc_uip(const MC146818 *s)
{
    if (!rtc_clock_running(s))
        return false;
    int64_t v = rtc_now();
    return rtc_next_second_vns(s, v) - v <= RTC_UIP_NS;
}

/* Periodic interrupt period in 32.768 kHz cycles (Table 5), 0 = none. */
static int64_t rtc_period_cycles(const MC146818 *s)
{
    unsigned rs = s->cmos[RTC_REG_A] & RTC_A_RS_MASK;

    if (rs == 0)
        return 0;
    if (rs <= 2)
        return (int64_t)1 << (rs + 6);      /* RS 1, 2 = 256, 128 Hz */
    return (int64_t)1 << (rs - 1);          /* RS 3..15 = 8192 .. 2 Hz */
}

/* Whole 32.768 kHz cycles the chain has counted at virtual time v. */
static int64_t rtc_cycles_at(const MC146818 *s, int64_t vns)
{
    __int128 c = (__int128)(vns - s->div_origin_vns) * RTC_OSC_HZ;
    __int128 q = c / NS_PER_SEC;
    if (c < 0 && q * NS_PER_SEC != c)
        q--;
    return (int64_t)q;
}

static int64_t rtc_next_periodic_vns(const MC146818 *s, int64_t vns, int64_t period)
{
    int64_t k = floor_div(rtc_cycles_at(s, vns), period) + 1;
    __int128 ns = ((__int128)k * period * NS_PER_SEC + RTC_OSC_HZ - 1) / RTC_OSC_HZ;
    return s->div_origin_vns + (int64_t)ns;
}

/* Set PF if a periodic edge passed since the last check (PF ignores PIE). */
static void rtc_periodic_catch_up(MC146818 *s)
{
    int64_t now = rtc_now();
    int64_t period = rtc_period_cycles(s);

    if (rtc_chain_running(s) && period &&
        floor_div(rtc_cycles_at(s, now), period) !=
        floor_div(rtc_cycles_at(s, s->pf_checked_vns), period))
        s->cmos[RTC_REG_C] |= RTC_C_PF;
    s->pf_checked_vns = now;
}

static void rtc_update_irq(MC146818 *s)
{
    uint8_t b = s->cmos[RTC_REG_B], c = s->cmos[RTC_REG_C];
    bool irqf = ((c & RTC_C_PF) && (b & RTC_B_PIE)) ||
                ((c & RTC_C_AF) && (b & RTC_B_AIE)) ||
                ((c & RTC_C_UF) && (b & RTC_B_UIE));

    if (irqf)
        s->cmos[RTC_REG_C] |= RTC_C_IRQF;
    else
        s->cmos[RTC_REG_C] &= ~RTC_C_IRQF;
    irq_set_level(s->irq, irqf);
}

/*
 * Arm the timers.  The update timer ticks once a second while the clock
 * runs (UF and AF are set even with their enables off, and a guest may poll
 * register C).  The periodic timer runs only when PIE makes PF visible as an
 * interrupt and PF is not already set; otherwise PF is computed lazily.
 */
static void rtc_schedule(MC146818 *s)
{
    int64_t now = rtc_now();
    int64_t period = rtc_period_cycles(s);

    if (rtc_clock_running(s))
        timer_mod(s->update_timer, rtc_next_second_vns(s, now));
    else
        timer_del(s->update_timer);

    if (rtc_chain_running(s) && period && (s->cmos[RTC_REG_B] & RTC_B_PIE) &&
        !(s->cmos[RTC_REG_C] & RTC_C_PF))
        timer_mod(s->periodic_timer, rtc_next_periodic_vns(s, s->pf_checked_vns, period));
    else
        timer_del(s->periodic_timer);
}

static void rtc_periodic_tick(void *opaque)
{
    MC146818 *s = opaque;

    rtc_periodic_catch_up(s);
    rtc_update_irq(s);
    rtc_schedule(s);
}

static bool rtc_alarm_field_matches(uint8_t alarm, uint8_t now)
{
    return alarm >= RTC_ALARM_DONT_CARE || alarm == now;
}

/* End of an update cycle: the calendar has advanced one second. */
static void rtc_update_tick(void *opaque)
{
    MC146818 *s = opaque;
    uint8_t *c = s->cmos;

    if (!rtc_clock_running(s))
        return;
    rtc_sync_time(s);
    c[RTC_REG_C] |= RTC_C_UF;
    if (rtc_alarm_field_matches(c[RTC_SECONDS_ALARM], c[RTC_SECONDS]) &&
        rtc_alarm_field_matches(c[RTC_MINUTES_ALARM], c[RTC_MINUTES]) &&
        rtc_alarm_field_matches(c[RTC_HOURS_ALARM], c[RTC_HOURS]))
        c[RTC_REG_C] |= RTC_C_AF;
    rtc_update_irq(s);
    rtc_schedule(s);
}

static bool rtc_is_time_byte(unsigned idx)
{
    switch (idx) {
    case RTC_SECONDS: case RTC_MINUTES: case RTC_HOURS: case RTC_DAY_OF_WEEK:
    case RTC_DAY_OF_MONTH: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
        return true;
    default:
        return false;
    }
}

static uint8_t rtc_data_read(MC146818 *s)
{
    unsigned idx = s->index;
    uint8_t v;

    if (rtc_is_time_byte(idx)) {
        rtc_sync_time(s);
        return s->cmos[idx];
    }
    switch (idx) {
    case RTC_REG_A:
        return s->cmos[RTC_REG_A] | (rtc_uip(s) ? RTC_A_UIP : 0);
    case RTC_REG_C:
        /* Reading C returns and clears every flag and releases IRQ 8. */
        rtc_periodic_catch_up(s);
        rtc_update_irq(s);
        v = s->cmos[RTC_REG_C];
        s->cmos[RTC_REG_C] = 0;
        rtc_update_irq(s);
        rtc_schedule(s);
        return v;
    case RTC_REG_D:
        return RTC_D_VRT;   /* the battery is always good */
    default:
        return s->cmos[idx];
    }
}

static void rtc_reg_a_write(MC146818 *s, uint8_t v)
{
    bool chain_was_running = rtc_chain_running(s);

    rtc_periodic_catch_up(s);
    rtc_sync_time(s);           /* freeze the calendar bytes if the chain stops */
    s->cmos[RTC_REG_A] = v & ~RTC_A_UIP;
    if ((v & RTC_A_DV_MASK) != RTC_A_DV_32KHZ && (v & RTC_A_DV_RESET) != RTC_A_DV_RESET)
        LOG(LOG_UNIMP, "rtc: divider select 0x%x (only 010 = 32.768 kHz runs)\n",
            (v & RTC_A_DV_MASK) >> 4);
    if (!chain_was_running && rtc_chain_running(s)) {
        /* Leaving divider reset: the first update comes half a second later. */
        int64_t now = rtc_now();
        s->div_origin_vns = now - NS_PER_SEC / 2;
        s->pf_checked_vns = now;
        if (rtc_clock_running(s))
            rtc_rebase(s);
    }
    rtc_update_irq(s);
    rtc_schedule(s);
}

static void rtc_reg_b_write(MC146818 *s, uint8_t v)
{
    bool was_running = rtc_clock_running(s);

    rtc_periodic_catch_up(s);
    rtc_sync_time(s);           /* calendar bytes current before a freeze */
    /* Setting SET aborts updates and clears UIE. */
    if (v & RTC_B_SET)
        v &= ~RTC_B_UIE;
    s->cmos[RTC_REG_B] = v;
    if (!was_running && rtc_clock_running(s))
        rtc_rebase(s);          /* SET 1 -> 0: count on from what was written */
    else if (was_running && rtc_clock_running(s))
        rtc_store_time(s, rtc_seconds_at(s, rtc_now()));   /* DM or 12/24 changed */
    rtc_update_irq(s);
    rtc_schedule(s);
}

static void rtc_data_write(MC146818 *s, uint8_t v)
{
    unsigned idx = s->index;

    if (rtc_is_time_byte(idx)) {
        rtc_sync_time(s);
        s->cmos[idx] = v;
        /* With SET = 0 the chip counts on from the new value at the next update. */
        if (rtc_clock_running(s)) {
            s->base_sec = rtc_load_time(s);
            s->base_vns = rtc_now();
            rtc_schedule(s);
        }
        return;
    }
    switch (idx) {
    case RTC_REG_A:
        rtc_reg_a_write(s, v);
        break;
    case RTC_REG_B:
        rtc_reg_b_write(s, v);
        break;
    case RTC_REG_C:
    case RTC_REG_D:
        LOG(LOG_GUEST_ERROR, "rtc: write 0x%02x to read-only register %c ignored\n",
            v, idx == RTC_REG_C ? 'C' : 'D');
        break;
    default:
        s->cmos[idx] = v;   /* alarm bytes and NVRAM */
        break;
    }
}

static uint32_t rtc_io_read(void *opaque, uint16_t offset, unsigned size)
{
    MC146818 *s = opaque;

    /* The PIIX3 index port is write-only; QEMU reads it as 0xff. */
    return offset == 0 ? 0xff : rtc_data_read(s);
}

static void rtc_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    MC146818 *s = opaque;

    if (offset == 0) {
        s->index = value & 0x7f;            /* 128 bytes: index bit 7 is not an address */
        s->nmi_disabled = value & 0x80;     /* PC: bit 7 gates NMI; kept, unused */
    } else {
        rtc_data_write(s, (uint8_t)value);
    }
}

static const IoPortOps rtc_io_ops = {
    .read = rtc_io_read,
    .write = rtc_io_write,
    .max_access = 1,
};

/*
 * System reset drives the chip's RESET input: PIE, AIE, UIE, SQWE and all
 * of register C are cleared; time, register A, SET, DM, 24/12, DSE and the
 * NVRAM are kept.
 */
static void rtc_reset(void *opaque)
{
    MC146818 *s = opaque;

    rtc_sync_time(s);
    s->cmos[RTC_REG_B] &= ~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | RTC_B_SQWE);
    s->cmos[RTC_REG_C] = 0;
    s->pf_checked_vns = rtc_now();
    rtc_update_irq(s);
    rtc_schedule(s);
}

/* ---- Board interface (include/kestrel/rtc.h) ---- */

void rtc_cmos_set(void *rtc_state, int index, uint8_t value)
{
    MC146818 *s = rtc_state;

    if (!s || index <= RTC_REG_D || index >= RTC_CMOS_SIZE) {
        LOG(LOG_GUEST_ERROR, "rtc: board write of CMOS byte 0x%x refused\n", index);
        return;
    }
    s->cmos[index] = value;
}

uint8_t rtc_cmos_get(void *rtc_state, int index)
{
    MC146818 *s = rtc_state;

    if (!s || index < 0 || index >= RTC_CMOS_SIZE)
        return 0xff;
    return s->cmos[index];
}

/* Memory-size bytes as SeaBIOS and older guests read them (firmware-seabios.md §5). */
static void rtc_cmos_fill_memory(MC146818 *s, const Machine *m)
{
    uint64_t below = m->ram_below_4g, above = m->ram_above_4g;
    uint64_t ext_kib = below > (1 << 20) ? (below - (1 << 20)) / 1024 : 0;
    uint64_t above16 = below > (16 << 20) ? (below - (16 << 20)) / 65536 : 0;
    uint64_t high64k = above / 65536;

    if (ext_kib > 0xffff)
        ext_kib = 0xffff;
    if (above16 > 0xffff)
        above16 = 0xffff;
    if (high64k > 0xffffff)
        high64k = 0xffffff;
    s->cmos[0x15] = 640 & 0xff;             /* base memory, KiB */
    s->cmos[0x16] = 640 >> 8;
    s->cmos[0x17] = s->cmos[0x30] = ext_kib & 0xff;    /* KiB above 1 MiB */
    s->cmos[0x18] = s->cmos[0x31] = ext_kib >> 8;
    s->cmos[0x34] = above16 & 0xff;         /* 64 KiB units above 16 MiB */
    s->cmos[0x35] = above16 >> 8;
    s->cmos[0x5b] = high64k & 0xff;         /* 64 KiB units above 4 GiB */
    s->cmos[0x5c] = (high64k >> 8) & 0xff;
    s->cmos[0x5d] = high64k >> 16;
    if (m->smp_cpus >= 1 && m->smp_cpus <= 256)
        s->cmos[0x5f] = (uint8_t)(m->smp_cpus - 1);     /* CPUs - 1 */
}

/* "utc", "localtime" or "YYYY-MM-DD[THH:MM:SS]" -> guest seconds now. */
static bool rtc_parse_base(const char *base, int64_t host_sec, int64_t *out, GError **errp)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;

    if (!base || !strcmp(base, "utc")) {
        *out = host_sec;
        return true;
    }
    if (!strcmp(base, "localtime")) {
        time_t t = (time_t)host_sec;
        struct tm tm;
        localtime_r(&t, &tm);
        *out = host_sec + tm.tm_gmtoff;
        return true;
    }
    if ((sscanf(base, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && base[n] == '\0') ||
        (sscanf(base, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 &&
         base[n] == '\0')) {
        if (y >= 1900 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 &&
            h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 59) {
            *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                   h * 3600 + mi * 60 + sec;
            return true;
        }
    }
    kestrel_set_error(errp, "mc146818rtc: base='%s' is not utc, localtime or a date "
                      "like 2006-06-17T16:01:21", base);
    return false;
}

static void *rtc_create(Machine *m, const DeviceProps *props, GError **errp)
{
    uint64_t iobase = device_props_get_uint(props, "iobase");
    uint64_t irq = device_props_get_uint(props, "irq");
    int64_t host_ns = clock_get_ns(CLOCK_HOST);
    int64_t host_sec = floor_div(host_ns, NS_PER_SEC);
    int64_t guest_sec;

    if (iobase > 0xfffe) {
        kestrel_set_error(errp, "mc146818rtc: iobase=0x%" G_GINT64_MODIFIER "x is out of "
                          "range (max 0xfffe)", iobase);
        return NULL;
    }
    if (irq > 15) {
        kestrel_set_error(errp, "mc146818rtc: irq=%" G_GUINT64_FORMAT
                          " is not an ISA IRQ (0-15)", irq);
        return NULL;
    }
    if (!rtc_parse_base(device_props_get_str(props, "base"), host_sec, &guest_sec, errp))
        return NULL;

    MC146818 *s = g_new0(MC146818, 1);
    s->iobase = (uint16_t)iobase;
    s->irq = m ? machine_isa_irq(m, (int)irq) : NULL;
    s->update_timer = timer_new(CLOCK_VIRTUAL, rtc_update_tick, s);
    s->periodic_timer = timer_new(CLOCK_VIRTUAL, rtc_periodic_tick, s);
    s->ports = ioport_register(s->iobase, 2, &rtc_io_ops, s, "rtc", errp);
    if (!s->ports) {
        timer_free(s->update_timer);
        timer_free(s->periodic_timer);
        g_free(s);
        return NULL;
    }

    int64_t now = rtc_now();
    s->cmos[RTC_REG_A] = RTC_A_POWER_ON;
    s->cmos[RTC_REG_B] = RTC_B_POWER_ON;
    s->cmos[RTC_REG_D] = RTC_D_VRT;
    /* Align the chain's second boundaries with the host's. */
    s->div_origin_vns = now - (host_ns - host_sec * NS_PER_SEC);
    s->base_sec = guest_sec;
    s->base_vns = now;
    s->pf_checked_vns = now;
    rtc_store_time(s, guest_sec);
    if (m)
        rtc_cmos_fill_memory(s, m);
    rtc_update_irq(s);
    rtc_schedule(s);
    return s;
}

static const PropDef rtc_props[] = {
    { "iobase", PROP_UINT, "0x70", "index port (data port is iobase+1)" },
    { "irq", PROP_UINT, "8", "ISA IRQ" },
    { "base", PROP_STRING, "utc", "start time: utc, localtime or YYYY-MM-DD[THH:MM:SS]" },
    { NULL }
};

static const DeviceType rtc_mc146818_type = {
    .name = "mc146818rtc",
    .desc = "MC146818A real-time clock and CMOS RAM",
    .bus = "isa",
    .user_creatable = false,
    .props = rtc_props,
    .create = rtc_create,
    .reset = rtc_reset,
};

DEVICE_TYPE_REGISTER(rtc_mc146818_type)

/*
 * Intel 82371AB (PIIX4) power-management function, PCI 00:01.3
 * ("piix4-pm", 8086:7113 rev 03, class 068000), as QEMU's "-M pc" presents
 * it next to a PIIX3 (/work/shared/docs/pc-platform.md §4, §7).
 *
 * Follows the PIIX4 datasheet (Intel 290562) for the function's
 * configuration registers (PMBA 0x40, DEVACTB 0x58, PMREGMISC 0x80, SMBBA
 * 0x90, SMBHSTCFG 0xD2) and the SMBus host registers, and the ACPI
 * specification's "fixed hardware" chapter for the PM1a event/control
 * blocks, the PM timer and the GPE0 block:
 *
 *   PMBASE+0  PM1a_STS (W1C)   PMBASE+2  PM1a_EN   PMBASE+4  PM1a_CNT
 *   PMBASE+8  PM_TMR (24 bits, 3.579545 MHz, read-only)
 *   0xAFE0    GPE0_STS[2] (W1C), 0xAFE2 GPE0_EN[2] (QEMU's fixed address)
 *   0xB2/0xB3 APMC / APMS
 *
 * The 64-byte PM I/O block decodes at PMBA[15:6] while PMREGMISC.PMIOSE is
 * set; the 16-byte SMBus block at SMBBA[15:4] while SMBHSTCFG.SMB_HST_EN and
 * the COMMAND register's I/O enable are set.  A base the guest moves onto
 * another device's ports is logged (guest_errors) and left undecoded.
 *
 * SCI is ISA IRQ 9 (level, active high; the MADT and SeaBIOS say so): it is
 * asserted while any PM1 status bit has its enable set, or any GPE0 status
 * bit has its enable set.  SCI_EN is not a gate, as in QEMU (the board has
 * no SMI to route events to instead).
 *
 * PM timer: the count is derived from CLOCK_VIRTUAL (ticks = ns * 3579545 /
 * 1e9, mod 2^24), so it needs no timer to advance.  TMR_STS is set whenever
 * bit 23 toggles; the status is computed lazily on read, and a Timer is armed
 * for the next toggle only while TMR_EN is set (for the SCI).
 *
 * Sleep: SLP_EN with SLP_TYP 0 is soft-off (S5) and asks the machine to power
 * off (honouring -no-shutdown).  Other sleep types (S1-S4) are not modelled.
 *
 * Not modelled: SMI (the board has no SMM: DEVACTB.APMC_EN is preset so that
 * SeaBIOS skips SMM set-up, firmware-seabios.md §3, and APMC writes other
 * than ACPI enable/disable are logged as unimp), GBL_RLS/BIOS_STS, the
 * power button (nothing presses it yet), device monitors and traps
 * (DEVACTA/DEVRESx read as stored or zero), SMBus slaves (every host
 * transaction ends with DEV_ERR: no device answers) and the SMBus interrupt,
 * the PIIX4's GPI/GPO registers, and the PM2 block.
 */
#include "kestrel/common.h"
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/pci.h"

#include <string.h>

/* ---- Register table ---- */

/* PCI identity (pc-platform.md §4) */
#define PIIX4_PM_VENDOR         0x8086
#define PIIX4_PM_DEVICE         0x7113
#define PIIX4_PM_REVISION       0x03
#define PIIX4_PM_CLASS          0x068000     /* bridge, other */

/* Function 3 configuration space (PIIX4 datasheet, "Power Management Registers") */
#define PIIX4_PMBA              0x40         /* dword: PM I/O base */
#define  PIIX4_PMBA_RTE          0x00000001  /* resource type: I/O (reads 1) */
#define  PIIX4_PMBA_MASK         0x0000ffc0  /* bits 15:6, 64-byte block */
#define PIIX4_DEVACTB           0x58         /* dword: device activity B */
#define PIIX4_DEVACTB_BYTE3     0x5b
#define  PIIX4_DEVACTB3_APMC_EN  0x02        /* bit 25: APMC writes raise SMI */
#define PIIX4_PMREGMISC         0x80
#define  PIIX4_PMREGMISC_PMIOSE  0x01        /* PM I/O space enable */
#define PIIX4_SMBBA             0x90         /* dword: SMBus I/O base */
#define  PIIX4_SMBBA_RTE         0x00000001
#define  PIIX4_SMBBA_MASK        0x0000fff0  /* bits 15:4, 16-byte block */
#define PIIX4_SMBHSTCFG         0xd2
#define  PIIX4_SMBHSTCFG_HST_EN  0x01        /* SMBus host interface enable */
#define  PIIX4_SMBHSTCFG_INTRSEL 0x0e        /* 3:1 interrupt select (100 = IRQ9) */

#define PIIX4_PM_IO_SIZE        64
#define PIIX4_SMB_IO_SIZE       16

/* PM1a event block (ACPI "PM1 Event Grouping") */
#define PM1_STS                 0x00
#define  PM1_STS_TMR             0x0001
#define  PM1_STS_BM              0x0010
#define  PM1_STS_GBL             0x0020
#define  PM1_STS_PWRBTN          0x0100
#define  PM1_STS_RTC             0x0400
#define  PM1_STS_WAK             0x8000
#define  PM1_STS_MASK            (PM1_STS_TMR | PM1_STS_BM | PM1_STS_GBL | PM1_STS_PWRBTN | \
                                  PM1_STS_RTC | PM1_STS_WAK)
#define PM1_EN                  0x02
#define  PM1_EN_TMR              0x0001
#define  PM1_EN_GBL              0x0020
#define  PM1_EN_PWRBTN           0x0100
#define  PM1_EN_RTC              0x0400
#define  PM1_EN_MASK             (PM1_EN_TMR | PM1_EN_GBL | PM1_EN_PWRBTN | PM1_EN_RTC)
/* PM1a control block (ACPI "PM1 Control Grouping") */
#define PM1_CNT                 0x04
#define  PM1_CNT_SCI_EN          0x0001
#define  PM1_CNT_BM_RLD          0x0002
#define  PM1_CNT_GBL_RLS         0x0004      /* write-only: would raise SMI */
#define  PM1_CNT_SLP_TYP_SHIFT   10
#define  PM1_CNT_SLP_TYP         0x1c00
#define  PM1_CNT_SLP_EN          0x2000      /* write-only */
#define  PM1_CNT_STORED          (PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP)
#define PM1_SLP_TYP_S5          0            /* QEMU's DSDT: \_S5 = 0 */
/* PM timer (ACPI "Power Management Timer") */
#define PM_TMR                  0x08
#define  PM_TMR_FREQ             3579545ULL
#define  PM_TMR_MASK             0xffffff
#define  PM_TMR_TOGGLE           0x800000    /* bit 23 toggling sets TMR_STS */

/* GPE0 block (QEMU's fixed address, pc-platform.md §1) */
#define GPE0_BASE               0xafe0
#define GPE0_LEN                2            /* bytes of status, then of enable */

/* APM control/status ports */
#define APM_CNT_PORT            0xb2
#define APM_STS_PORT            0xb3
#define  APM_CNT_ACPI_DISABLE    0xf0
#define  APM_CNT_ACPI_ENABLE     0xf1

/* SMBus host registers (PIIX4 datasheet, "SMBus Registers"), offsets from SMBBA */
#define SMBHSTSTS               0x00
#define  SMBHSTSTS_HOST_BUSY     0x01
#define  SMBHSTSTS_INTER         0x02        /* transaction completed */
#define  SMBHSTSTS_DEV_ERR       0x04
#define  SMBHSTSTS_BUS_ERR       0x08
#define  SMBHSTSTS_FAILED        0x10
#define  SMBHSTSTS_W1C           0x1e
#define SMBSLVSTS               0x01
#define SMBHSTCNT               0x02
#define  SMBHSTCNT_INTEREN       0x01
#define  SMBHSTCNT_KILL          0x02
#define  SMBHSTCNT_CMD           0x1c        /* protocol: quick, byte, byte data, ... */
#define  SMBHSTCNT_START         0x40        /* write-only */
#define SMBHSTCMD               0x03
#define SMBHSTADD               0x04
#define SMBHSTDAT0              0x05
#define SMBHSTDAT1              0x06
#define SMBBLKDAT               0x07
#define SMBSLVCNT               0x08
#define SMBSHDWCMD              0x09
#define SMBSLVEVT               0x0a         /* 16 bits */
#define SMBSLVDAT               0x0c         /* 16 bits */

/* ---- State ---- */

typedef struct PIIX4PMState {
    PCIDevice dev;                 /* configuration space (first: the core's view) */

    /* ACPI fixed hardware */
    uint16_t pm1_sts;              /* without TMR_STS until folded in by pm_tmr_check */
    uint16_t pm1_en;
    uint16_t pm1_cnt;              /* PM1_CNT_STORED bits */
    uint8_t gpe_sts[GPE0_LEN];
    uint8_t gpe_en[GPE0_LEN];
    uint8_t apmc, apms;

    /* SMBus host controller */
    uint8_t smb_sts, smb_cnt, smb_cmd, smb_add, smb_dat0, smb_dat1, smb_blk;
    uint8_t smb_slv_cnt, smb_shdw_cmd;
    uint16_t smb_slv_evt;

    /* Next virtual time at which PM_TMR bit 23 toggles (TMR_STS is set then). */
    int64_t tmr_next_toggle_ns;

    /* Host plumbing */
    Machine *m;
    IrqLine *sci;
    Timer *tmr_timer;              /* armed only while TMR_EN */
    IoPortRange *pm_io;            /* PM block while decoded */
    uint16_t pm_io_base;
    IoPortRange *smb_io;           /* SMBus block while decoded */
    uint16_t smb_io_base;
    IoPortRange *gpe_io, *apm_io;
} PIIX4PMState;

/* ---- PM timer ---- */

static uint64_t pm_tmr_ticks(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (uint64_t)((unsigned __int128)ns * PM_TMR_FREQ / NS_PER_SEC);
}

/* First virtual time whose tick count reaches 'ticks' (ceil of the inverse). */
static int64_t pm_tmr_ticks_to_ns(uint64_t ticks)
{
    unsigned __int128 n = (unsigned __int128)ticks * NS_PER_SEC;
    return (int64_t)((n + PM_TMR_FREQ - 1) / PM_TMR_FREQ);
}

static int64_t pm_tmr_next_toggle(int64_t now)
{
    uint64_t t = pm_tmr_ticks(now);
    return pm_tmr_ticks_to_ns((t | (PM_TMR_TOGGLE - 1)) + 1);
}

/* Fold a bit-23 toggle that happened since the last look into TMR_STS. */
static void pm_tmr_check(PIIX4PMState *s, int64_t now)
{
    if (now >= s->tmr_next_toggle_ns) {
        s->pm1_sts |= PM1_STS_TMR;
        s->tmr_next_toggle_ns = pm_tmr_next_toggle(now);
    }
}

static void pm_update_sci(PIIX4PMState *s)
{
    bool level = (s->pm1_sts & s->pm1_en & PM1_EN_MASK) != 0;
    for (int i = 0; i < GPE0_LEN; i++)
        level |= (s->gpe_sts[i] & s->gpe_en[i]) != 0;
    irq_set_level(s->sci, level);
}

/* Arm the overflow timer only while the guest wants the interrupt. */
static void pm_tmr_schedule(PIIX4PMState *s)
{
    if ((s->pm1_en & PM1_EN_TMR) && !(s->pm1_sts & PM1_STS_TMR))
        timer_mod(s->tmr_timer, s->tmr_next_toggle_ns);
    else
        timer_del(s->tmr_timer);
}

static void pm_tmr_expired(void *opaque)
{
    PIIX4PMState *s = opaque;
    pm_tmr_check(s, clock_get_ns(CLOCK_VIRTUAL));
    pm_update_sci(s);
    pm_tmr_schedule(s);
}

/* ---- PM1 registers ---- */

static void pm1_cnt_write(PIIX4PMState *s, uint16_t val)
{
    if (val & PM1_CNT_GBL_RLS)
        LOG(LOG_UNIMP, "piix4-pm: GBL_RLS (SMI to the BIOS) not modelled\n");
    s->pm1_cnt = val & PM1_CNT_STORED;
    if (!(val & PM1_CNT_SLP_EN))
        return;
    unsigned typ = (val & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT;
    if (typ == PM1_SLP_TYP_S5) {
        machine_request_poweroff();
        return;
    }
    LOG(LOG_UNIMP, "piix4-pm: sleep type %u (S1-S4) not modelled; ignored\n", typ);
}

static uint8_t pm_read_byte(PIIX4PMState *s, uint16_t off)
{
    unsigned shift = (off & 1) * 8;
    switch (off & ~1) {
    case PM1_STS:
        pm_tmr_check(s, clock_get_ns(CLOCK_VIRTUAL));
        return (uint8_t)(s->pm1_sts >> shift);
    case PM1_EN:
        return (uint8_t)(s->pm1_en >> shift);
    case PM1_CNT:
        return (uint8_t)(s->pm1_cnt >> shift);
    case PM_TMR:
    case PM_TMR + 2: {
        uint32_t t = pm_tmr_ticks(clock_get_ns(CLOCK_VIRTUAL)) & PM_TMR_MASK;
        return (uint8_t)(t >> ((off - PM_TMR) * 8));
    }
    default:
        return 0;
    }
}

static void pm_write_byte(PIIX4PMState *s, uint16_t off, uint8_t val)
{
    unsigned shift = (off & 1) * 8;
    switch (off & ~1) {
    case PM1_STS: {
        int64_t now = clock_get_ns(CLOCK_VIRTUAL);
        pm_tmr_check(s, now);
        uint16_t clear = (uint16_t)(val << shift) & PM1_STS_MASK;
        s->pm1_sts &= ~clear;
        break;
    }
    case PM1_EN: {
        uint16_t keep = (uint16_t)(s->pm1_en & (0xff00 >> shift));
        s->pm1_en = (keep | (uint16_t)(val << shift)) & PM1_EN_MASK;
        pm_tmr_check(s, clock_get_ns(CLOCK_VIRTUAL));
        break;
    }
    case PM1_CNT: {
        uint16_t keep = (uint16_t)(s->pm1_cnt & (0xff00 >> shift));
        pm1_cnt_write(s, keep | (uint16_t)(val << shift));
        break;
    }
    case PM_TMR:
    case PM_TMR + 2:
        LOG(LOG_GUEST_ERROR, "piix4-pm: write to read-only PM_TMR ignored\n");
        return;
    default:
        LOG(LOG_UNIMP, "piix4-pm: write 0x%02x to PM register +0x%02x ignored\n", val, off);
        return;
    }
    pm_update_sci(s);
    pm_tmr_schedule(s);
}

static uint32_t pm_io_read(void *opaque, uint16_t off, unsigned size)
{
    PIIX4PMState *s = opaque;
    /* One clock sample for the whole timer so a dword read never tears. */
    if (off == PM_TMR && size == 4)
        return pm_tmr_ticks(clock_get_ns(CLOCK_VIRTUAL)) & PM_TMR_MASK;
    uint32_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint32_t)pm_read_byte(s, (uint16_t)(off + i)) << (8 * i);
    return v;
}

static void pm_io_write(void *opaque, uint16_t off, uint32_t val, unsigned size)
{
    PIIX4PMState *s = opaque;
    /* PM1_CNT as a whole so SLP_EN sees the SLP_TYP written with it. */
    if (off == PM1_CNT && size >= 2) {
        pm1_cnt_write(s, (uint16_t)val);       /* +6/+7 (dword access) are reserved */
        pm_update_sci(s);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        pm_write_byte(s, (uint16_t)(off + i), (uint8_t)(val >> (8 * i)));
}

static const IoPortOps pm_io_ops = {
    .read = pm_io_read,
    .write = pm_io_write,
    .max_access = 4,
};

/* ---- GPE0 block ---- */

static uint32_t gpe_io_read(void *opaque, uint16_t off, unsigned size)
{
    PIIX4PMState *s = opaque;
    (void)size;
    return off < GPE0_LEN ? s->gpe_sts[off] : s->gpe_en[off - GPE0_LEN];
}

static void gpe_io_write(void *opaque, uint16_t off, uint32_t val, unsigned size)
{
    PIIX4PMState *s = opaque;
    (void)size;
    if (off < GPE0_LEN)
        s->gpe_sts[off] &= (uint8_t)~val;
    else
        s->gpe_en[off - GPE0_LEN] = (uint8_t)val;
    pm_update_sci(s);
}

static const IoPortOps gpe_io_ops = {
    .read = gpe_io_read,
    .write = gpe_io_write,
    .max_access = 1,
};

/* ---- APM ports ---- */

static uint32_t apm_io_read(void *opaque, uint16_t off, unsigned size)
{
    PIIX4PMState *s = opaque;
    (void)size;
    return off == 0 ? s->apmc : s->apms;
}

static void apm_io_write(void *opaque, uint16_t off, uint32_t val, unsigned size)
{
    PIIX4PMState *s = opaque;
    (void)size;
    if (off == 1) {
        s->apms = (uint8_t)val;
        return;
    }
    s->apmc = (uint8_t)val;
    /* ACPI "ACPI_ENABLE"/"ACPI_DISABLE" handshake: QEMU flips SCI_EN itself. */
    if (s->apmc == APM_CNT_ACPI_ENABLE) {
        s->pm1_cnt |= PM1_CNT_SCI_EN;
    } else if (s->apmc == APM_CNT_ACPI_DISABLE) {
        s->pm1_cnt &= (uint16_t)~PM1_CNT_SCI_EN;
    } else if (s->dev.config[PIIX4_DEVACTB_BYTE3] & PIIX4_DEVACTB3_APMC_EN) {
        LOG(LOG_UNIMP, "piix4-pm: APMC write 0x%02x would raise SMI (no SMM)\n", s->apmc);
    }
}

static const IoPortOps apm_io_ops = {
    .read = apm_io_read,
    .write = apm_io_write,
    .max_access = 1,
};

/* ---- SMBus host controller ---- */

/* No slave answers: every transaction ends at once with DEV_ERR, not busy. */
static void smb_transaction_start(PIIX4PMState *s)
{
    LOG(LOG_UNIMP, "piix4-pm: SMBus transaction (protocol %u) to address 0x%02x: no device\n",
        (s->smb_cnt & SMBHSTCNT_CMD) >> 2, s->smb_add >> 1);
    s->smb_sts &= (uint8_t)~SMBHSTSTS_HOST_BUSY;
    s->smb_sts |= SMBHSTSTS_DEV_ERR;
    if (s->smb_cnt & SMBHSTCNT_INTEREN)
        LOG(LOG_UNIMP, "piix4-pm: SMBus completion interrupt not modelled\n");
}

static uint32_t smb_io_read(void *opaque, uint16_t off, unsigned size)
{
    PIIX4PMState *s = opaque;
    (void)size;
    switch (off) {
    case SMBHSTSTS:  return s->smb_sts;
    case SMBHSTCNT:  return s->smb_cnt;
    case SMBHSTCMD:  return s->smb_cmd;
    case SMBHSTADD:  return s->smb_add;
    case SMBHSTDAT0: return s->smb_dat0;
    case SMBHSTDAT1: return s->smb_dat1;
    case SMBBLKDAT:  return s->smb_blk;
    case SMBSLVCNT:  return s->smb_slv_cnt;
    case SMBSHDWCMD: return s->smb_shdw_cmd;
    case SMBSLVEVT:  return s->smb_slv_evt & 0xff;
    case SMBSLVEVT + 1: return s->smb_slv_evt >> 8;
    default:         return 0;
    }
}

static void smb_io_write(void *opaque, uint16_t off, uint32_t val, unsigned size)
{
    PIIX4PMState *s = opaque;
    uint8_t v = (uint8_t)val;
    (void)size;
    switch (off) {
    case SMBHSTSTS:
        s->smb_sts &= (uint8_t)~(v & SMBHSTSTS_W1C);
        break;
    case SMBHSTCNT:
        s->smb_cnt = v & (uint8_t)~SMBHSTCNT_START;
        if (v & SMBHSTCNT_KILL)
            s->smb_sts &= (uint8_t)~SMBHSTSTS_HOST_BUSY;
        else if (v & SMBHSTCNT_START)
            smb_transaction_start(s);
        break;
    case SMBHSTCMD:  s->smb_cmd = v; break;
    case SMBHSTADD:  s->smb_add = v; break;
    case SMBHSTDAT0: s->smb_dat0 = v; break;
    case SMBHSTDAT1: s->smb_dat1 = v; break;
    case SMBBLKDAT:  s->smb_blk = v; break;
    case SMBSLVCNT:  s->smb_slv_cnt = v; break;
    case SMBSHDWCMD: s->smb_shdw_cmd = v; break;
    case SMBSLVEVT:  s->smb_slv_evt = (s->smb_slv_evt & 0xff00) | v; break;
    case SMBSLVEVT + 1: s->smb_slv_evt = (uint16_t)((s->smb_slv_evt & 0xff) | v << 8); break;
    default:
        LOG(LOG_UNIMP, "piix4-pm: SMBus write 0x%02x to +0x%x ignored\n", v, off);
        break;
    }
}

static const IoPortOps smb_io_ops = {
    .read = smb_io_read,
    .write = smb_io_write,
    .max_access = 1,
};

/* ---- I/O decoding from configuration space ---- */

/*
 * (Re)decode a block at 'base' (or nowhere when !enable).  A base that
 * collides with another device is the guest's mistake: log it and leave the
 * block undecoded until the guest picks a free one.
 */
static void piix4_io_remap(IoPortRange **range, uint16_t *cur_base, bool enable,
                           uint16_t base, unsigned size, const IoPortOps *ops, void *opaque,
                           const char *name)
{
    if (*range && enable && *cur_base == base)
        return;
    if (*range) {
        ioport_unregister(*range);
        *range = NULL;
    }
    if (!enable)
        return;
    GError *err = NULL;
    *range = ioport_register(base, size, ops, opaque, name, &err);
    if (!*range) {
        LOG(LOG_GUEST_ERROR, "piix4-pm: %s left unmapped: %s\n", name,
            err ? err->message : "?");
        g_clear_error(&err);
        return;
    }
    *cur_base = base;
}

static void piix4_pm_update_io(PIIX4PMState *s)
{
    const uint8_t *c = s->dev.config;
    uint16_t pmbase = (uint16_t)(pci_get_long(c + PIIX4_PMBA) & PIIX4_PMBA_MASK);
    piix4_io_remap(&s->pm_io, &s->pm_io_base, c[PIIX4_PMREGMISC] & PIIX4_PMREGMISC_PMIOSE,
                   pmbase, PIIX4_PM_IO_SIZE, &pm_io_ops, s, "piix4-pm");

    uint16_t smbbase = (uint16_t)(pci_get_long(c + PIIX4_SMBBA) & PIIX4_SMBBA_MASK);
    bool smb_on = (c[PIIX4_SMBHSTCFG] & PIIX4_SMBHSTCFG_HST_EN) &&
                  (pci_get_word(c + PCI_COMMAND) & PCI_COMMAND_IO);
    piix4_io_remap(&s->smb_io, &s->smb_io_base, smb_on, smbbase, PIIX4_SMB_IO_SIZE,
                   &smb_io_ops, s, "piix4-smbus");
}

static bool range_hits(uint32_t addr, unsigned len, uint32_t reg, unsigned reg_len)
{
    return addr < reg + reg_len && reg < addr + len;
}

static void piix4_pm_config_write(PCIDevice *d, uint32_t addr, uint32_t val, unsigned len)
{
    PIIX4PMState *s = (PIIX4PMState *)d;
    (void)val;
    if (range_hits(addr, len, PIIX4_PMBA, 4) || range_hits(addr, len, PIIX4_PMREGMISC, 1) ||
        range_hits(addr, len, PIIX4_SMBBA, 4) || range_hits(addr, len, PIIX4_SMBHSTCFG, 1) ||
        range_hits(addr, len, PCI_COMMAND, 2))
        piix4_pm_update_io(s);
}

/* Writable bits of the function-specific registers (PIIX4 datasheet). */
static void piix4_pm_set_wmask(PIIX4PMState *s)
{
    uint8_t *w = s->dev.wmask;
    pci_set_long(w + PIIX4_PMBA, PIIX4_PMBA_MASK);
    pci_set_long(w + PIIX4_DEVACTB, 0xffffffff);
    w[PIIX4_PMREGMISC] = PIIX4_PMREGMISC_PMIOSE;
    pci_set_long(w + PIIX4_SMBBA, PIIX4_SMBBA_MASK);
    w[PIIX4_SMBHSTCFG] = PIIX4_SMBHSTCFG_HST_EN | PIIX4_SMBHSTCFG_INTRSEL;
}

/* ---- Reset ---- */

/* PMBASE QEMU's ACPI tables advertise for a direct -kernel boot (no firmware). */
#define PIIX4_PM_DIRECT_BOOT_BASE  0x600

static void piix4_pm_reset(void *opaque)
{
    PIIX4PMState *s = opaque;
    uint8_t *c = s->dev.config;

    pci_device_reset(&s->dev);
    pci_set_long(c + PIIX4_PMBA, PIIX4_PMBA_RTE);
    pci_set_long(c + PIIX4_DEVACTB, 0);
    c[PIIX4_DEVACTB_BYTE3] = PIIX4_DEVACTB3_APMC_EN;     /* no SMM: SeaBIOS skips SMM init */
    c[PIIX4_PMREGMISC] = 0;
    pci_set_long(c + PIIX4_SMBBA, PIIX4_SMBBA_RTE);
    c[PIIX4_SMBHSTCFG] = 0;
    if (s->m && !s->m->firmware_boot) {
        /* Nobody will program the function: decode where the ACPI tables say. */
        pci_set_long(c + PIIX4_PMBA, PIIX4_PM_DIRECT_BOOT_BASE | PIIX4_PMBA_RTE);
        c[PIIX4_PMREGMISC] = PIIX4_PMREGMISC_PMIOSE;
    }

    s->pm1_sts = 0;
    s->pm1_en = 0;
    s->pm1_cnt = 0;
    memset(s->gpe_sts, 0, sizeof(s->gpe_sts));
    memset(s->gpe_en, 0, sizeof(s->gpe_en));
    s->apmc = 0;
    s->apms = 0;
    s->smb_sts = s->smb_cnt = s->smb_cmd = s->smb_add = 0;
    s->smb_dat0 = s->smb_dat1 = s->smb_blk = 0;
    s->smb_slv_cnt = s->smb_shdw_cmd = 0;
    s->smb_slv_evt = 0;
    s->tmr_next_toggle_ns = pm_tmr_next_toggle(clock_get_ns(CLOCK_VIRTUAL));
    timer_del(s->tmr_timer);
    pm_update_sci(s);
    piix4_pm_update_io(s);
}

/* ---- Registration ---- */

static void *piix4_pm_create(Machine *m, const DeviceProps *props, GError **errp)
{
    (void)props;
    PCIBus *bus = m ? machine_pci_bus(m) : NULL;
    if (!bus) {
        kestrel_set_error(errp, "piix4-pm: needs the PCI bus (i440FX host bridge)");
        return NULL;
    }

    PIIX4PMState *s = g_new0(PIIX4PMState, 1);
    s->m = m;
    s->sci = machine_isa_irq(m, 9);
    pci_config_set_ids(&s->dev, PIIX4_PM_VENDOR, PIIX4_PM_DEVICE, PIIX4_PM_REVISION,
                       PIIX4_PM_CLASS);
    pci_config_set_interrupt_pin(&s->dev, 1);
    s->dev.config_write = piix4_pm_config_write;
    piix4_pm_set_wmask(s);
    if (!pci_device_register(bus, &s->dev, PCI_DEVFN(1, 3), "piix4-pm", errp)) {
        g_free(s);
        return NULL;
    }
    /* Registration installs the generic masks; ours are on top of them. */
    piix4_pm_set_wmask(s);

    s->gpe_io = ioport_register(GPE0_BASE, 2 * GPE0_LEN, &gpe_io_ops, s, "acpi-gpe0", errp);
    if (!s->gpe_io)
        return NULL;      /* registered on the bus: cannot be freed any more */
    s->apm_io = ioport_register(APM_CNT_PORT, 2, &apm_io_ops, s, "apm", errp);
    if (!s->apm_io)
        return NULL;
    s->tmr_timer = timer_new(CLOCK_VIRTUAL, pm_tmr_expired, s);
    piix4_pm_reset(s);
    return s;
}

static const PropDef piix4_pm_props[] = {
    { NULL }
};

static const DeviceType piix4_pm_type = {
    .name = "piix4-pm",
    .desc = "PIIX4 ACPI power management and SMBus (PCI 00:01.3)",
    .bus = "pci",
    .user_creatable = false,
    .props = piix4_pm_props,
    .create = piix4_pm_create,
    .reset = piix4_pm_reset,
};

DEVICE_TYPE_REGISTER(piix4_pm_type)

/*
 * System control port B at 0x61 ("port61"), as on the PC/AT and the PIIX3
 * (datasheet 290550 "NMI Status and Control Register", port 61h):
 *   bit 0 TIM2GATE  counter 2 gate (R/W)        -> hw/pc/i8254.c
 *   bit 1 SPKDAT    speaker data enable (R/W; no sound is produced)
 *   bit 2 PCIERR_EN / bit 3 IOCHK_EN  NMI source enables (R/W, stored only)
 *   bit 4 REFRESH   toggles; read-only
 *   bit 5 TIM2OUT   counter 2 OUT; read-only
 *   bit 6 IOCHK_NMI / bit 7 SERR_NMI  NMI sources: always 0 here
 *
 * BIOSes and OS delay loops poll bit 4 and wait for it to change, so it
 * flips on every read instead of following the 15 us DRAM refresh (the
 * observable contract is "it changes"); Linux's PIT TSC calibration and
 * SeaBIOS busy-wait on bit 5 with counter 2 in mode 0.
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "hw/pc/irqchip_internal.h"

/* ---- Register table ---- */

#define PORT61_ADDR         0x61
#define PORT61_TIM2GATE     0x01
#define PORT61_SPKDAT       0x02
#define PORT61_PCIERR_EN    0x04
#define PORT61_IOCHK_EN     0x08
#define PORT61_REFRESH      0x10
#define PORT61_TIM2OUT      0x20
#define PORT61_IOCHK_NMI    0x40
#define PORT61_SERR_NMI     0x80
#define PORT61_WRITABLE     (PORT61_TIM2GATE | PORT61_SPKDAT | PORT61_PCIERR_EN | PORT61_IOCHK_EN)

/* ---- State ---- */

typedef struct Port61 {
    uint8_t ctl;            /* the writable bits */
    bool refresh;

    IoPortRange *range;
} Port61;

/* ---- Behaviour ---- */

static uint32_t port61_read(void *opaque, uint16_t offset, unsigned size)
{
    Port61 *s = opaque;
    s->refresh = !s->refresh;
    return (s->ctl & ~PORT61_TIM2GATE) | (pit_channel2_get_gate() ? PORT61_TIM2GATE : 0) |
           (s->refresh ? PORT61_REFRESH : 0) | (pit_channel2_get_out() ? PORT61_TIM2OUT : 0);
}

static void port61_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    Port61 *s = opaque;
    s->ctl = value & PORT61_WRITABLE;
    pit_channel2_set_gate(value & PORT61_TIM2GATE);
}

static const IoPortOps port61_ops = {
    .read = port61_read,
    .write = port61_write,
    .max_access = 1,
};

static void port61_reset(void *opaque)
{
    Port61 *s = opaque;
    s->ctl = 0;
    s->refresh = false;
    pit_channel2_set_gate(false);
}

/* ---- Registration ---- */

static void *port61_create(Machine *m, const DeviceProps *props, GError **errp)
{
    Port61 *s = g_new0(Port61, 1);
    s->range = ioport_register(PORT61_ADDR, 1, &port61_ops, s, "port61", errp);
    if (!s->range) {
        g_free(s);
        return NULL;
    }
    port61_reset(s);
    return s;
}

static const PropDef port61_props[] = {
    { NULL }
};

static const DeviceType port61_type = {
    .name = "port61",
    .desc = "system control port B (0x61): PIT counter 2 gate/out, speaker, refresh toggle",
    .bus = "isa",
    .user_creatable = false,
    .props = port61_props,
    .create = port61_create,
    .reset = port61_reset,
};

DEVICE_TYPE_REGISTER(port61_type)

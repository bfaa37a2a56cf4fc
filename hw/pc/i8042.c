/*
 * Intel 8042 keyboard controller as on a PC/AT ("i8042"): data port 0x60,
 * status/command port 0x64, IRQ 1 (keyboard) and IRQ 12 (auxiliary/mouse).
 *
 * Follows the IBM PC/AT Technical Reference "Keyboard Controller" section
 * (status register bits, command byte, controller commands 0x20-0xFF,
 * output port bits) and its PS/2 extensions for the auxiliary port
 * (0xA7-0xA9, 0xD2-0xD4); the command list matches
 * /work/shared/docs/pc-platform.md §10.
 *
 * This is the controller only: NO KEYBOARD OR MOUSE IS ATTACHED YET (they
 * arrive with the PS/2 issue).  Bytes the guest sends to a device (a data
 * port write with no command pending, or 0xD4 + byte) are answered the way
 * a controller with an empty connector answers: the byte 0xFE appears in
 * the output buffer with the general time-out status bit set.  Linux's
 * atkbd/psmouse take that as a failed probe immediately; SeaBIOS sees the
 * keyboard interface test (0xAB) fail and skips keyboard set-up.
 *
 * Also used for: system reset (output port bit 0 written low, or pulse
 * commands 0xF0-0xFF with bit 0 clear such as 0xFE) -> machine_request_reset();
 * A20 (output port bit 1, 0xDD/0xDF) is stored and reads back, but the
 * address bus never masks bit 20 — turning A20 off is logged under -d unimp.
 *
 * Not modelled: the input port (0xC0), test inputs (0xE0), password and
 * the keyboard inhibit switch (status bit 4 always reads "not inhibited"),
 * parity errors, scan-code translation (CTR bit 6 is stored only).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irq.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

/* ---- Register table ---- */

#define I8042_DATA_PORT     0x60
#define I8042_CMD_PORT      0x64    /* read: status, write: command */

/* Status register (port 0x64 read) */
#define I8042_STR_OBF       0x01    /* output buffer full */
#define I8042_STR_IBF       0x02    /* input buffer full (never: writes are handled at once) */
#define I8042_STR_SYSFLAG   0x04    /* system flag (command byte bit 2) */
#define I8042_STR_CMDDAT    0x08    /* last write was to the command port */
#define I8042_STR_KEYLOCK   0x10    /* 1 = keyboard not inhibited */
#define I8042_STR_AUXDATA   0x20    /* output buffer holds auxiliary-device data */
#define I8042_STR_TIMEOUT   0x40    /* general time-out */
#define I8042_STR_PARITY    0x80

/* Command byte (controller RAM byte 0) */
#define I8042_CTR_KBDINT    0x01    /* IRQ 1 on keyboard OBF */
#define I8042_CTR_AUXINT    0x02    /* IRQ 12 on auxiliary OBF */
#define I8042_CTR_SYSFLAG   0x04
#define I8042_CTR_IGNKEYLOCK 0x08
#define I8042_CTR_KBDDIS    0x10    /* keyboard clock disabled */
#define I8042_CTR_AUXDIS    0x20    /* auxiliary clock disabled */
#define I8042_CTR_XLATE     0x40    /* translate to scan code set 1 */

/* Controller commands (port 0x64 write) */
#define I8042_CMD_READ_RAM      0x20    /* 0x20-0x3F: read RAM byte n (0 = CTR) */
#define I8042_CMD_WRITE_RAM     0x60    /* 0x60-0x7F: write RAM byte n */
#define I8042_CMD_AUX_DISABLE   0xa7
#define I8042_CMD_AUX_ENABLE    0xa8
#define I8042_CMD_AUX_TEST      0xa9
#define I8042_CMD_SELF_TEST     0xaa
#define I8042_CMD_KBD_TEST      0xab
#define I8042_CMD_KBD_DISABLE   0xad
#define I8042_CMD_KBD_ENABLE    0xae
#define I8042_CMD_READ_OUTPORT  0xd0
#define I8042_CMD_WRITE_OUTPORT 0xd1
#define I8042_CMD_WRITE_KBD_OBUF 0xd2
#define I8042_CMD_WRITE_AUX_OBUF 0xd3
#define I8042_CMD_WRITE_AUX     0xd4
#define I8042_CMD_A20_DISABLE   0xdd
#define I8042_CMD_A20_ENABLE    0xdf
#define I8042_CMD_PULSE         0xf0    /* 0xF0-0xFF: pulse output bits 3:0 that are 0 */

/* Output port (0xD0/0xD1) */
#define I8042_OUT_RESET     0x01    /* system reset, active low */
#define I8042_OUT_A20       0x02
#define I8042_OUT_KBD_OBF   0x10    /* reflects OBF from the keyboard (IRQ 1) */
#define I8042_OUT_AUX_OBF   0x20    /* reflects OBF from the aux device (IRQ 12) */

/* Replies */
#define I8042_SELF_TEST_OK  0x55
#define I8042_PORT_TEST_CLK_HIGH 0x02   /* interface test: clock line stuck high */
#define PS2_NAK             0xfe

#define I8042_RAM_SIZE      32
#define I8042_QUEUE_SIZE    16
#define I8042_IRQ_KBD       1
#define I8042_IRQ_AUX       12

#define I8042_CTR_POWER_ON  0x00    /* the BIOS programs it */
#define I8042_OUT_POWER_ON  (I8042_OUT_RESET | I8042_OUT_A20)

/* ---- State ---- */

typedef struct I8042 {
    uint8_t ram[I8042_RAM_SIZE];    /* ram[0] is the command byte */
    uint8_t status;                 /* SYSFLAG, CMDDAT, TIMEOUT; OBF/AUXDATA derived */
    uint8_t outport;
    uint8_t pending_cmd;            /* command waiting for its data byte, 0 = none */
    uint8_t last_data;              /* data port reads with an empty buffer */
    /* Output buffer: the head is what the guest sees; bit 8 marks aux data. */
    uint16_t queue[I8042_QUEUE_SIZE];
    uint8_t q_head;
    uint8_t q_count;

    /* Host plumbing. */
    IrqLine *irq_kbd;
    IrqLine *irq_aux;
    IoPortRange *data_port;
    IoPortRange *cmd_port;
} I8042;

#define I8042_Q_AUX 0x100

/* ---- Behaviour ---- */

static void i8042_update_irq(I8042 *s)
{
    bool kbd = false, aux = false;

    if (s->q_count) {
        if (s->queue[s->q_head] & I8042_Q_AUX)
            aux = s->ram[0] & I8042_CTR_AUXINT;
        else
            kbd = s->ram[0] & I8042_CTR_KBDINT;
    }
    irq_set_level(s->irq_kbd, kbd);
    irq_set_level(s->irq_aux, aux);
}

static void i8042_queue_byte(I8042 *s, uint8_t v, bool aux)
{
    if (s->q_count >= I8042_QUEUE_SIZE) {
        LOG(LOG_GUEST_ERROR, "i8042: output buffer overflow, 0x%02x dropped\n", v);
        return;
    }
    s->queue[(s->q_head + s->q_count) % I8042_QUEUE_SIZE] = v | (aux ? I8042_Q_AUX : 0);
    s->q_count++;
    i8042_update_irq(s);
}

/* A byte for a device: nothing is connected, so the controller times out. */
static void i8042_send_to_device(I8042 *s, uint8_t v, bool aux)
{
    LOG(LOG_UNIMP, "i8042: byte 0x%02x for the %s: no device attached\n",
        v, aux ? "mouse" : "keyboard");
    s->status |= I8042_STR_TIMEOUT;
    i8042_queue_byte(s, PS2_NAK, aux);
}

static void i8042_set_a20(I8042 *s, bool on)
{
    if (!on && (s->outport & I8042_OUT_A20))
        LOG(LOG_UNIMP, "i8042: guest turned A20 off; A20 stays enabled\n");
    if (on)
        s->outport |= I8042_OUT_A20;
    else
        s->outport &= ~I8042_OUT_A20;
}

static void i8042_write_outport(I8042 *s, uint8_t v)
{
    i8042_set_a20(s, v & I8042_OUT_A20);
    s->outport = v & ~(I8042_OUT_KBD_OBF | I8042_OUT_AUX_OBF);
    if (!(v & I8042_OUT_RESET)) {
        /* The reset line is active low: writing 0 resets the CPU. */
        s->outport |= I8042_OUT_RESET;
        machine_request_reset();
    }
}

static uint8_t i8042_read_outport(const I8042 *s)
{
    uint8_t v = s->outport & ~(I8042_OUT_KBD_OBF | I8042_OUT_AUX_OBF);

    if (s->q_count)
        v |= (s->queue[s->q_head] & I8042_Q_AUX) ? I8042_OUT_AUX_OBF : I8042_OUT_KBD_OBF;
    return v;
}

static void i8042_command(I8042 *s, uint8_t cmd)
{
    s->pending_cmd = 0;
    if (cmd >= I8042_CMD_READ_RAM && cmd < I8042_CMD_READ_RAM + I8042_RAM_SIZE) {
        i8042_queue_byte(s, s->ram[cmd & 0x1f], false);
        return;
    }
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + I8042_RAM_SIZE) {
        s->pending_cmd = cmd;
        return;
    }
    if (cmd >= I8042_CMD_PULSE) {
        /* Output bits 3:0 that are 0 in the command are pulsed low for ~6 us. */
        if (!(cmd & I8042_OUT_RESET))
            machine_request_reset();
        return;
    }
    switch (cmd) {
    case I8042_CMD_AUX_DISABLE:
        s->ram[0] |= I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_ENABLE:
        s->ram[0] &= ~I8042_CTR_AUXDIS;
        break;
    case I8042_CMD_AUX_TEST:
    case I8042_CMD_KBD_TEST:
        /* Nothing on the connector: report a failed interface (see header). */
        i8042_queue_byte(s, I8042_PORT_TEST_CLK_HIGH, false);
        break;
    case I8042_CMD_SELF_TEST:
        s->status |= I8042_STR_SYSFLAG;
        s->ram[0] |= I8042_CTR_SYSFLAG;
        i8042_queue_byte(s, I8042_SELF_TEST_OK, false);
        break;
    case I8042_CMD_KBD_DISABLE:
        s->ram[0] |= I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_KBD_ENABLE:
        s->ram[0] &= ~I8042_CTR_KBDDIS;
        break;
    case I8042_CMD_READ_OUTPORT:
        i8042_queue_byte(s, i8042_read_outport(s), false);
        break;
    case I8042_CMD_WRITE_OUTPORT:
    case I8042_CMD_WRITE_KBD_OBUF:
    case I8042_CMD_WRITE_AUX_OBUF:
    case I8042_CMD_WRITE_AUX:
        s->pending_cmd = cmd;
        break;
    case I8042_CMD_A20_DISABLE:
        i8042_set_a20(s, false);
        break;
    case I8042_CMD_A20_ENABLE:
        i8042_set_a20(s, true);
        break;
    default:
        LOG(LOG_UNIMP, "i8042: unimplemented controller command 0x%02x\n", cmd);
        break;
    }
    i8042_update_irq(s);
}

static void i8042_data_write(I8042 *s, uint8_t v)
{
    uint8_t cmd = s->pending_cmd;

    s->pending_cmd = 0;
    if (cmd >= I8042_CMD_WRITE_RAM && cmd < I8042_CMD_WRITE_RAM + I8042_RAM_SIZE) {
        s->ram[cmd & 0x1f] = v;
        if ((cmd & 0x1f) == 0) {
            if (v & I8042_CTR_SYSFLAG)
                s->status |= I8042_STR_SYSFLAG;
            else
                s->status &= ~I8042_STR_SYSFLAG;
        }
        i8042_update_irq(s);
        return;
    }
    switch (cmd) {
    case I8042_CMD_WRITE_OUTPORT:
        i8042_write_outport(s, v);
        break;
    case I8042_CMD_WRITE_KBD_OBUF:
        i8042_queue_byte(s, v, false);
        break;
    case I8042_CMD_WRITE_AUX_OBUF:
        i8042_queue_byte(s, v, true);
        break;
    case I8042_CMD_WRITE_AUX:
        i8042_send_to_device(s, v, true);
        break;
    default:
        /* Writing to the keyboard also re-enables its clock. */
        s->ram[0] &= ~I8042_CTR_KBDDIS;
        i8042_send_to_device(s, v, false);
        break;
    }
}

static uint8_t i8042_data_read(I8042 *s)
{
    if (s->q_count) {
        s->last_data = (uint8_t)s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % I8042_QUEUE_SIZE;
        s->q_count--;
        s->status &= ~I8042_STR_TIMEOUT;
        i8042_update_irq(s);
    }
    return s->last_data;
}

static uint8_t i8042_status_read(const I8042 *s)
{
    uint8_t v = (s->status & (I8042_STR_SYSFLAG | I8042_STR_CMDDAT | I8042_STR_TIMEOUT)) |
                I8042_STR_KEYLOCK;

    if (s->q_count) {
        v |= I8042_STR_OBF;
        if (s->queue[s->q_head] & I8042_Q_AUX)
            v |= I8042_STR_AUXDATA;
    }
    return v;
}

static uint32_t i8042_data_io_read(void *opaque, uint16_t offset, unsigned size)
{
    return i8042_data_read(opaque);
}

static void i8042_data_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    I8042 *s = opaque;

    s->status &= ~I8042_STR_CMDDAT;
    i8042_data_write(s, (uint8_t)value);
}

static uint32_t i8042_cmd_io_read(void *opaque, uint16_t offset, unsigned size)
{
    return i8042_status_read(opaque);
}

static void i8042_cmd_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    I8042 *s = opaque;

    s->status |= I8042_STR_CMDDAT;
    i8042_command(s, (uint8_t)value);
}

static const IoPortOps i8042_data_ops = {
    .read = i8042_data_io_read,
    .write = i8042_data_io_write,
    .max_access = 1,
};

static const IoPortOps i8042_cmd_ops = {
    .read = i8042_cmd_io_read,
    .write = i8042_cmd_io_write,
    .max_access = 1,
};

static void i8042_reset(void *opaque)
{
    I8042 *s = opaque;

    memset(s->ram, 0, sizeof(s->ram));
    s->ram[0] = I8042_CTR_POWER_ON;
    s->status = 0;
    s->outport = I8042_OUT_POWER_ON;
    s->pending_cmd = 0;
    s->last_data = 0;
    s->q_head = 0;
    s->q_count = 0;
    i8042_update_irq(s);
}

/* ---- Registration ---- */

static void *i8042_create(Machine *m, const DeviceProps *props, GError **errp)
{
    I8042 *s = g_new0(I8042, 1);

    s->irq_kbd = machine_isa_irq(m, I8042_IRQ_KBD);
    s->irq_aux = machine_isa_irq(m, I8042_IRQ_AUX);
    s->data_port = ioport_register(I8042_DATA_PORT, 1, &i8042_data_ops, s, "i8042", errp);
    if (!s->data_port)
        goto fail;
    s->cmd_port = ioport_register(I8042_CMD_PORT, 1, &i8042_cmd_ops, s, "i8042", errp);
    if (!s->cmd_port) {
        ioport_unregister(s->data_port);
        goto fail;
    }
    i8042_reset(s);
    return s;

fail:
    g_free(s);
    return NULL;
}

static const PropDef i8042_props[] = {
    { NULL }
};

static const DeviceType i8042_type = {
    .name = "i8042",
    .desc = "8042 keyboard controller (no keyboard or mouse attached yet)",
    .bus = "isa",
    .user_creatable = false,
    .props = i8042_props,
    .create = i8042_create,
    .reset = i8042_reset,
};

DEVICE_TYPE_REGISTER(i8042_type)

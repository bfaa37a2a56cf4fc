/*
 * What the PC board tells SeaBIOS through fw_cfg, filled once every device
 * exists (pc_fw_cfg_setup, called at the end of pc_machine_init).
 *
 * The contract is ../shared/docs/firmware-seabios.md §4-§6 (what SeaBIOS
 * 1.16 reads, observed against QEMU 7.2 -M pc):
 *   keys     signature/ID (the device), NOGRAPHIC, NB_CPUS, MAX_CPUS,
 *            RAM_SIZE, BOOT_MENU, IRQ0_OVERRIDE
 *   files    etc/e820, etc/boot-fail-wait, etc/system-states, the ACPI
 *            files (acpi_build.c), the SMBIOS files (smbios.c),
 *            etc/boot-menu-wait (splash-time), bootorder, and -fw_cfg blobs
 *   CMOS     boot order nibbles 0x3D (1st low, 2nd high) and 0x38 (3rd high;
 *            bit 0 = skip the floppy boot-signature check)
 *
 * -boot follows QEMU's syntax: [order=]DRIVES, once=DRIVES, menu=on|off,
 * splash-time=MS, reboot-timeout=MS (-1 = never), strict=on|off.  Drive
 * letters: a/b floppy, c disk, d CD-ROM, n-p network; at most three reach
 * CMOS.  "once" is used for the first boot only: the fw_cfg reset hook
 * puts "order" back on every later reset, as QEMU does.
 * -fw_cfg follows QEMU: name=NAME,file=PATH or name=NAME,string=STR (the
 * string without its NUL); NAME should start with "opt/" (a warning
 * otherwise, as QEMU prints).
 *
 * Elsewhere: -kernel through the firmware (kernel keys, linuxboot option ROM
 * and its bootorder entry) is hw/pc/linuxboot_fw.c, run just before this.
 * Not done: bios-geometry, the legacy NUMA key (absent reads as "no NUMA").
 */
#include "kestrel/common.h"
#include "kestrel/boot.h"
#include "kestrel/device.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/machine.h"
#include "kestrel/opts.h"
#include "kestrel/rtc.h"

#include "hw/pc/fw_tables.h"

#include <string.h>

/* CMOS boot bytes (firmware-seabios.md §5) */
#define CMOS_BOOT_FLAGS_1       0x3D    /* low nibble 1st device, high nibble 2nd */
#define CMOS_BOOT_FLAGS_2       0x38    /* high nibble 3rd device, bit 0 no fd check */
#define CMOS_BOOT_NO_FD_CHECK   0x01
#define BOOT_DEV_FLOPPY         1
#define BOOT_DEV_DISK           2
#define BOOT_DEV_CDROM          3
#define BOOT_DEV_NET            4
#define BOOT_CMOS_SLOTS         3

#define BOOT_TIMEOUT_MAX        0xFFFF  /* QEMU's limit for both timeouts */

typedef struct PcBootConfig {
    uint8_t order[BOOT_CMOS_SLOTS];     /* CMOS codes, 0 = none */
    uint8_t once[BOOT_CMOS_SLOTS];
    bool have_once;
    bool menu, menu_set;
    int64_t splash_time;                /* -1 = not given */
    int64_t reboot_timeout;             /* -1 = never reboot */
    bool strict;
    bool fd_bootchk;
} PcBootConfig;

/* State for restoring "order" after a "once" boot. */
static struct {
    void *rtc;
    uint8_t order[BOOT_CMOS_SLOTS];
    bool fd_bootchk;
    unsigned resets;
} pc_boot_once;

/* ---- -boot ---- */

static bool pc_boot_parse_drives(const char *opt, const char *s, uint8_t *out, GError **errp)
{
    unsigned n = 0;
    bool seen[26] = { false };

    memset(out, 0, BOOT_CMOS_SLOTS);
    for (const char *p = s; *p; p++) {
        if (*p < 'a' || *p > 'p') {
            kestrel_set_error(errp, "-boot %s=%s: invalid boot device '%c' (use a, c, d, n)",
                              opt, s, *p);
            return false;
        }
        if (seen[*p - 'a']) {
            kestrel_set_error(errp, "-boot %s=%s: boot device '%c' was given twice", opt, s,
                              *p);
            return false;
        }
        seen[*p - 'a'] = true;
        uint8_t code;
        switch (*p) {
        case 'a': case 'b': code = BOOT_DEV_FLOPPY; break;
        case 'c': code = BOOT_DEV_DISK; break;
        case 'd': code = BOOT_DEV_CDROM; break;
        case 'n': code = BOOT_DEV_NET; break;
        default:
            kestrel_set_error(errp, "-boot %s=%s: invalid boot device for PC: '%c'", opt, s,
                              *p);
            return false;
        }
        if (n == BOOT_CMOS_SLOTS) {
            kestrel_set_error(errp, "-boot %s=%s: too many boot devices for PC (at most %d)",
                              opt, s, BOOT_CMOS_SLOTS);
            return false;
        }
        out[n++] = code;
    }
    return true;
}

static bool pc_boot_parse_timeout(KOpts *o, const char *key, int64_t min, int64_t *out,
                                  GError **errp)
{
    const char *v = kopts_get(o, key);
    char *end = NULL;

    *out = -1;
    if (!v)
        return true;
    long long x = g_ascii_strtoll(v, &end, 0);
    if (!*v || *end || x < min || x > BOOT_TIMEOUT_MAX) {
        kestrel_set_error(errp, "-boot %s=%s: expected a number of milliseconds from %lld "
                          "to %d", key, v, (long long)min, BOOT_TIMEOUT_MAX);
        return false;
    }
    *out = x;
    return true;
}

static bool pc_boot_parse(const char *spec, PcBootConfig *b, GError **errp)
{
    GError *err = NULL;
    bool ok = false;

    memset(b, 0, sizeof(*b));
    /* QEMU's pc default order "cad": disk, floppy, CD-ROM. */
    b->order[0] = BOOT_DEV_DISK;
    b->order[1] = BOOT_DEV_FLOPPY;
    b->order[2] = BOOT_DEV_CDROM;
    b->splash_time = -1;
    b->reboot_timeout = -1;
    b->fd_bootchk = true;
    if (!spec)
        return true;

    KOpts *o = kopts_parse(spec, "order", &err);
    if (!o) {
        kestrel_set_error(errp, "-boot %s: %s", spec, err->message);
        g_error_free(err);
        return false;
    }
    const char *order = kopts_get(o, "order");
    const char *once = kopts_get(o, "once");
    if (order && !pc_boot_parse_drives("order", order, b->order, errp))
        goto out;
    if (once) {
        if (!pc_boot_parse_drives("once", once, b->once, errp))
            goto out;
        b->have_once = true;
    }
    if (kopts_get(o, "menu")) {
        if (!kopts_get_bool(o, "menu", false, &b->menu, &err))
            goto bad;
        b->menu_set = true;
    }
    if (!kopts_get_bool(o, "strict", false, &b->strict, &err))
        goto bad;
    if (!pc_boot_parse_timeout(o, "splash-time", 0, &b->splash_time, errp) ||
        !pc_boot_parse_timeout(o, "reboot-timeout", -1, &b->reboot_timeout, errp))
        goto out;
    /* A splash picture is not supported; accept the option as QEMU without a UI would. */
    kopts_get(o, "splash");
    if (!kopts_check_all_used(o, "-boot", errp))
        goto out;
    ok = true;
    goto out;
bad:
    kestrel_set_error(errp, "-boot %s: %s", spec, err->message);
    g_error_free(err);
out:
    kopts_free(o);
    return ok;
}

static void pc_find_rtc(Device *d, void *opaque)
{
    if (!strcmp(d->type->name, "mc146818rtc") && !*(void **)opaque)
        *(void **)opaque = d->state;
}

static void pc_boot_set_cmos(void *rtc, const uint8_t *dev, bool fd_bootchk)
{
    if (!rtc)
        return;
    rtc_cmos_set(rtc, CMOS_BOOT_FLAGS_1, (uint8_t)(dev[0] | dev[1] << 4));
    rtc_cmos_set(rtc, CMOS_BOOT_FLAGS_2,
                 (uint8_t)(dev[2] << 4 | (fd_bootchk ? 0 : CMOS_BOOT_NO_FD_CHECK)));
}

/* fw_cfg reset hook: the first reset starts the machine; later ones drop "once". */
static void pc_boot_once_reset(void *opaque)
{
    if (pc_boot_once.resets++ == 0)
        return;
    pc_boot_set_cmos(pc_boot_once.rtc, pc_boot_once.order, pc_boot_once.fd_bootchk);
}

/* ---- -fw_cfg ---- */

static bool pc_fw_cfg_user_blob(FWCfgState *s, const char *spec, GError **errp)
{
    GError *err = NULL;
    bool ok = false;
    gchar *contents = NULL;
    gsize len = 0;

    KOpts *o = kopts_parse(spec, NULL, &err);
    if (!o) {
        kestrel_set_error(errp, "-fw_cfg %s: %s", spec, err->message);
        g_error_free(err);
        return false;
    }
    const char *name = kopts_get(o, "name");
    const char *file = kopts_get(o, "file");
    const char *str = kopts_get(o, "string");
    if (!kopts_check_all_used(o, "-fw_cfg", errp))
        goto out;
    if (!name || !*name) {
        kestrel_set_error(errp, "-fw_cfg %s: name= is required", spec);
        goto out;
    }
    if (!file == !str) {
        kestrel_set_error(errp, "-fw_cfg %s: give exactly one of file= and string=", spec);
        goto out;
    }
    if (strncmp(name, "opt/", 4) != 0)
        error_report("warning: -fw_cfg name=%s: externally provided fw_cfg item names "
                     "should be prefixed with \"opt/\"", name);
    if (file) {
        if (!g_file_get_contents(file, &contents, &len, &err)) {
            kestrel_set_error(errp, "-fw_cfg %s: cannot read %s: %s", spec, file,
                              err->message);
            g_error_free(err);
            goto out;
        }
    } else {
        contents = g_strdup(str);
        len = strlen(str);           /* QEMU passes the string without its NUL */
    }
    if (!fw_cfg_add_file(s, name, contents, len, &err)) {
        kestrel_set_error(errp, "-fw_cfg %s: %s", spec, err->message);
        g_error_free(err);
        goto out;
    }
    ok = true;
out:
    g_free(contents);
    kopts_free(o);
    return ok;
}

/* ---- e820 ---- */

/*
 * QEMU's etc/e820 shape: all low RAM as one entry from 0 (SeaBIOS carves
 * its own EBDA and BIOS areas out of it), RAM above 4 GiB, and the board's
 * reserved ranges above 1 MiB.  The direct-boot map's own EBDA reservation
 * (our MP table) does not apply to a firmware boot.
 */
static GByteArray *pc_fw_cfg_e820(Machine *m)
{
    E820Entry e[32];
    size_t n = pc_e820_build(m, e, ARRAY_LEN(e));
    GByteArray *out = g_byte_array_new();
    uint8_t rec[20];

    st64_le(rec, 0);
    st64_le(rec + 8, m->ram_below_4g);
    st32_le(rec + 16, E820_RAM);
    g_byte_array_append(out, rec, sizeof(rec));
    for (size_t i = 0; i < n; i++) {
        bool high_ram = e[i].type == E820_RAM && e[i].addr >= 0x100000000ull;
        bool reserved = e[i].type != E820_RAM && e[i].addr >= 0x100000;
        if (!high_ram && !reserved)
            continue;
        st64_le(rec, e[i].addr);
        st64_le(rec + 8, e[i].size);
        st32_le(rec + 16, e[i].type);
        g_byte_array_append(out, rec, sizeof(rec));
    }
    return out;
}

/* ---- Setup ---- */

bool pc_fw_cfg_setup(Machine *m, GError **errp)
{
    FWCfgState *s = machine_fw_cfg(m);
    MachineConfig *cfg = m->cfg;
    PcBootConfig boot;
    uint8_t b4[4];

    if (!s)
        return true;
    int ncpus = m->smp_cpus > 0 ? m->smp_cpus : 1;

    if (!pc_boot_parse(cfg ? cfg->boot_opts : NULL, &boot, errp))
        return false;

    fw_cfg_add_i16(s, FW_CFG_NB_CPUS, (uint16_t)ncpus);
    fw_cfg_add_i16(s, FW_CFG_MAX_CPUS, (uint16_t)ncpus);
    /* Non-zero switches SeaBIOS's console to COM1 (firmware-seabios.md §4). */
    fw_cfg_add_i16(s, FW_CFG_NOGRAPHIC, cfg && cfg->nographic ? 1 : 0);
    fw_cfg_add_i64(s, FW_CFG_RAM_SIZE, cfg ? cfg->ram_size : m->ram_below_4g + m->ram_above_4g);
    fw_cfg_add_i16(s, FW_CFG_BOOT_MENU, boot.menu ? 1 : 0);
    fw_cfg_add_i32(s, FW_CFG_IRQ0_OVERRIDE, 1);

    GByteArray *e820 = pc_fw_cfg_e820(m);
    bool ok = fw_cfg_add_file(s, "etc/e820", e820->data, e820->len, errp);
    g_byte_array_free(e820, TRUE);
    if (!ok)
        return false;

    st32_le(b4, (uint32_t)boot.reboot_timeout);          /* -1 = 0xFFFFFFFF: never */
    if (!fw_cfg_add_file(s, "etc/boot-fail-wait", b4, 4, errp))
        return false;
    if (boot.splash_time >= 0) {
        uint8_t b2[2];
        st16_le(b2, (uint16_t)boot.splash_time);
        if (!fw_cfg_add_file(s, "etc/boot-menu-wait", b2, 2, errp))
            return false;
    }
    /* S0-S5, bit 7 = supported state with its SLP_TYP below: S3/S4 are not offered. */
    static const uint8_t system_states[6] = { 0 };
    if (!fw_cfg_add_file(s, "etc/system-states", system_states, sizeof(system_states), errp))
        return false;

    if (!acpi_setup_fw_cfg(m, s, errp) || !smbios_setup_fw_cfg(m, s, errp))
        return false;

    for (guint i = 0; cfg && i < cfg->fw_cfg_opts->len; i++)
        if (!pc_fw_cfg_user_blob(s, g_ptr_array_index(cfg->fw_cfg_opts, i), errp))
            return false;

    /* CMOS boot order; "once" for the first boot, "order" after any reset. */
    void *rtc = NULL;
    devices_foreach(pc_find_rtc, &rtc);
    pc_boot_set_cmos(rtc, boot.have_once ? boot.once : boot.order, boot.fd_bootchk);
    if (boot.have_once) {
        pc_boot_once.rtc = rtc;
        memcpy(pc_boot_once.order, boot.order, sizeof(boot.order));
        pc_boot_once.fd_bootchk = boot.fd_bootchk;
        pc_boot_once.resets = 0;
        fw_cfg_set_reset_hook(s, pc_boot_once_reset, NULL);
    }

    char *order = fw_cfg_bootorder_text(s, boot.strict);
    ok = fw_cfg_add_file(s, "bootorder", order, strlen(order), errp);
    g_free(order);
    return ok;
}

/*
 * Direct boot without firmware: -kernel is loaded straight into guest RAM
 * and the boot CPU starts at the kernel's entry point in the state its boot
 * protocol asks for (docs/boot-protocols.md).  This file picks the protocol
 * (Multiboot 1 if the image has the header, else the Linux x86 boot
 * protocol) and holds the helpers every loader shares: guest RAM writes,
 * the BIOS data area words and the MP table in the EBDA.  It also stands
 * in for firmware's CPU setup: every CPU's MTRRs as SeaBIOS leaves them.
 */
#include <string.h>

#include "direct_boot.h"
#include "fw_tables.h"

bool boot_write(Machine *m, hwaddr addr, const void *buf, uint64_t len, const char *what,
                GError **errp)
{
    if (len == 0)
        return true;
    if (addr + len < addr || !address_space_write_rom(m->as, addr, buf, len)) {
        kestrel_set_error(errp, "%s: 0x%" G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER
                          "x is not guest RAM (try a larger -m)", what, addr, addr + len - 1);
        return false;
    }
    /* A software CPU may hold translations of what was there. */
    memory_notify_ram_write(addr, len);
    return true;
}

bool boot_zero(Machine *m, hwaddr addr, uint64_t len, const char *what, GError **errp)
{
    static const uint8_t zeros[65536];

    /* Check the whole range first so a bad size writes nothing. */
    if (len && (addr + len < addr || !address_space_ram_ptr(m->as, addr, len, false))) {
        kestrel_set_error(errp, "%s: 0x%" G_GINT64_MODIFIER "x-0x%" G_GINT64_MODIFIER
                          "x is not guest RAM (try a larger -m)", what, addr, addr + len - 1);
        return false;
    }
    for (uint64_t done = 0; done < len; done += sizeof(zeros)) {
        uint64_t n = MIN(len - done, (uint64_t)sizeof(zeros));
        if (!boot_write(m, addr + done, zeros, n, what, errp))
            return false;
    }
    return true;
}

bool boot_read_file(const char *path, const char *what, uint8_t **buf, size_t *len,
                    GError **errp)
{
    gchar *contents = NULL;
    gsize size = 0;
    GError *err = NULL;

    if (!g_file_get_contents(path, &contents, &size, &err)) {
        kestrel_set_error(errp, "%s %s: %s", what, path, err->message);
        g_error_free(err);
        return false;
    }
    *buf = (uint8_t *)contents;
    *len = size;
    return true;
}

bool boot_setup_low_memory(Machine *m, GError **errp)
{
    uint8_t w[2];

    if (m->ram_below_4g < PC_HIGH_MEM_BASE) {
        kestrel_set_error(errp, "direct boot needs at least 1 MiB of RAM (-m)");
        return false;
    }
    /*
     * The EBDA segment at 0x40E is one place an OS looks for the MP
     * floating pointer (MPS 1.4 §4); 0x413 is base memory in KiB (the RAM
     * below our reserved area), which Linux and Multiboot kernels consult.
     */
    st16_le(w, PC_EBDA_SEGMENT);
    if (!boot_write(m, BDA_EBDA_SEGMENT, w, 2, "BIOS data area", errp))
        return false;
    st16_le(w, PC_EBDA_BASE >> 10);
    if (!boot_write(m, BDA_BASE_MEM_KB, w, 2, "BIOS data area", errp))
        return false;
    return mptable_build(m, PC_EBDA_BASE, PC_EBDA_SIZE, errp);
}

bool pc_direct_boot(Machine *m, GError **errp)
{
    const MachineConfig *cfg = m->cfg;
    uint8_t *buf;
    size_t len;

    if (!cfg || !cfg->kernel)
        return true;
    if (!boot_read_file(cfg->kernel, "-kernel", &buf, &len, errp))
        return false;
    bool mb = multiboot_probe(buf, len);
    /* "HdrS" at 0x202 marks a Linux setup header (boot protocol 2.00+). */
    bool linux_hdr = len >= 0x206 && ld32_le(buf + 0x202) == 0x53726448;
    g_free(buf);

    /* ACPI tables at 0xE0000 (hw/pc/acpi_build.c): CPUs, IRQ routing, poweroff. */
    if (!acpi_install_direct(m, errp))
        return false;
    bool ok;
    if (mb) {
        ok = multiboot_load(m, cfg->kernel, cfg->append, cfg->initrd, errp);
    } else if (linux_hdr) {
        ok = linux_boot_load(m, cfg->kernel, cfg->initrd, cfg->append, errp);
    } else {
        kestrel_set_error(errp, "-kernel %s: not a bzImage or Multiboot kernel", cfg->kernel);
        return false;
    }
    if (!ok)
        return false;
    /*
     * No firmware programs the MTRRs, and Linux leaves PAT off when they
     * are disabled ("MTRRs disabled, skipping PAT initialization too"): every
     * CPU gets what SeaBIOS would have left.  INIT keeps MTRRs (SDM 3A
     * Table 9-1), so the APs the kernel starts with INIT-SIPI-SIPI keep them.
     */
    x86_mtrr_state_firmware(&m->cpu_mtrr, m->ram_below_4g);
    m->cpu_mtrr_valid = true;
    return true;
}

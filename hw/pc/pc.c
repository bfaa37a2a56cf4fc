/*
 * The i440FX PC board: memory map, interrupt lines, default devices.
 *
 * Follows QEMU's "-M pc" layout (../shared/docs/pc-platform.md): RAM from 0
 * up to the PCI hole, the rest above 4 GiB; ISA IRQs 0-15 and PCI GSIs
 * 16-23 go to the accelerator's interrupt controllers.  The chipset is the
 * i440FX host bridge (PCI bus 0, PAM) with the PIIX3 ISA bridge, PIIX3 IDE
 * and PIIX4 power management as functions 00:01.0/.1/.3; the ISA side has
 * the RTC/CMOS, the 8042, the 8237s and the floppy controller, the reset
 * ports, port 0x80, the HPET and fw_cfg; COM1 comes from -serial.
 *
 * Boot: without -kernel the firmware (Debian's SeaBIOS, -bios to choose
 * another) runs from the reset vector; -kernel alone is loaded directly
 * (direct_boot.c, no firmware); -kernel with -bios goes through the firmware
 * and our linuxboot option ROM (linuxboot_fw.c).
 *
 * Not modelled yet (their issues are open): VGA, NICs, PS/2 keyboard and mouse.
 */
#include "kestrel/machine.h"
#include "kestrel/accel.h"
#include "kestrel/boot.h"
#include "kestrel/chardev.h"
#include "kestrel/device.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/drive.h"
#include "kestrel/irqchip.h"
#include "kestrel/linuxboot_fw.h"
#include "kestrel/log.h"
#include "kestrel/pc_bios.h"
#include "kestrel/pci.h"

#include <inttypes.h>
#include <string.h>

/*
 * QEMU's pc machine keeps RAM below 4 GiB contiguous up to 3.5 GiB; larger
 * guests get 3 GiB low (gigabyte-aligned, so 1 GiB pages map it) and the rest
 * from 4 GiB up [pc-platform.md, Q:hw/i386/pc_piix.c].
 */
#define PC_LOWMEM_MAX     0xe0000000ULL
#define PC_LOWMEM_SPLIT   0xc0000000ULL
#define PC_HIGHMEM_START  0x100000000ULL

static bool pc_userspace_irqchip;

/*
 * Without an in-kernel irqchip the lines go to the userspace 8259s/IOAPIC;
 * the engine's set_irq still sees every level (qtest reports them).
 */
static void pc_gsi_set(void *opaque, int gsi, int level)
{
    Machine *m = opaque;
    if (pc_userspace_irqchip)
        irqchip_set_gsi(m, gsi, level);
    if (m->accel && m->accel->set_irq)
        m->accel->set_irq(m, gsi, level);
}

IrqLine *machine_isa_irq(Machine *m, int n)
{
    if (n < 0 || n >= MACHINE_NUM_GSI)
        return NULL;
    return m->gsi[n];
}

/*
 * MSI (SDM vol. 3A 10.11): address bits 19:12 destination, bit 2 destination
 * mode; data bits 7:0 vector, 10:8 delivery mode, 15 trigger mode.
 */
void machine_send_msi(Machine *m, uint64_t addr, uint32_t data)
{
    if ((addr & 0xfff00000u) != 0xfee00000u) {
        LOG(LOG_GUEST_ERROR, "MSI to 0x%" PRIx64 " outside the APIC window dropped\n", addr);
        return;
    }
    if (!pc_userspace_irqchip) {
        if (m->accel && m->accel->send_msi)
            m->accel->send_msi(m, addr, data);
        return;
    }
    apic_deliver((uint8_t)(addr >> 12), (addr >> 2) & 1, (data >> 8) & 7, (uint8_t)data,
                 true, (data >> 15) & 1);
}

void *machine_ram_ptr(Machine *m, hwaddr addr, uint64_t len)
{
    return address_space_ram_ptr(m->as, addr, len, true);
}

static bool pc_memory_init(Machine *m, GError **errp)
{
    uint64_t ram_size = m->cfg->ram_size;

    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("pc.ram", ram_size, errp);
    if (!m->ram)
        return false;
    m->ram_below_4g = ram_size >= PC_LOWMEM_MAX ? PC_LOWMEM_SPLIT : ram_size;
    m->ram_above_4g = ram_size - m->ram_below_4g;

    MemoryRegion *low = memory_region_new_alias("ram-below-4g", m->ram, 0, m->ram_below_4g);
    memory_region_add_subregion(m->system_memory, 0, low, 0);
    if (m->ram_above_4g) {
        MemoryRegion *high = memory_region_new_alias("ram-above-4g", m->ram, m->ram_below_4g,
                                                     m->ram_above_4g);
        memory_region_add_subregion(m->system_memory, PC_HIGHMEM_START, high, 0);
    }
    m->as = address_space_new("memory", m->system_memory);
    return true;
}

static bool pc_add(Machine *m, const char *type, const char *const *kv, GError **errp)
{
    return device_create(m, type, kv, errp) != NULL;
}

static bool pc_serial_init(Machine *m, GError **errp)
{
    MachineConfig *cfg = m->cfg;
    GPtrArray *specs = cfg->serial_specs;
    const char *def = NULL;

    /*
     * QEMU: COM1 defaults to the terminal with -nographic, to nothing with
     * -display none.  We have no window yet, so without either the serial
     * console also goes to the terminal (main.c said so).
     */
    if (specs->len == 0 && !cfg->nodefaults)
        def = (cfg->display && !cfg->nographic) ? "null" : "mon:stdio";
    for (guint i = 0; i < (specs->len ? specs->len : (def ? 1 : 0)); i++) {
        const char *spec = specs->len ? g_ptr_array_index(specs, i) : def;
        char *id = g_strdup_printf("serial%u", i);
        Chardev *chr = chardev_new_from_shorthand(spec, id, errp);
        if (!chr) {
            g_free(id);
            if (errp && *errp) {
                g_prefix_error(errp, "-serial %s: ", spec);
                return false;
            }
            continue;        /* "none" */
        }
        char *index = g_strdup_printf("index=%u", i);
        char *chardev = g_strdup_printf("chardev=%s", chardev_id(chr));
        const char *kv[] = { index, chardev, NULL };
        bool ok = pc_add(m, "isa-serial", kv, errp);
        g_free(index);
        g_free(chardev);
        g_free(id);
        if (!ok)
            return false;
    }
    return true;
}

bool pc_machine_init(Machine *m, GError **errp)
{
    MachineConfig *cfg = m->cfg;

    if (!pc_memory_init(m, errp))
        return false;
    /* No -kernel: the BIOS boots the machine; -kernel with -bios goes through it too. */
    m->firmware_boot = !cfg->kernel || cfg->bios;
    for (int i = 0; i < MACHINE_NUM_GSI; i++)
        m->gsi[i] = irq_line_new(pc_gsi_set, m, i);

    /* Images open first: a missing or locked one fails before any device exists. */
    for (guint i = 0; i < cfg->drive_opts->len; i++)
        if (!drive_add(g_ptr_array_index(cfg->drive_opts, i), errp))
            return false;

    for (guint i = 0; i < cfg->chardev_opts->len; i++) {
        const char *opts = g_ptr_array_index(cfg->chardev_opts, i);
        if (!chardev_new_from_opts(opts, errp)) {
            g_prefix_error(errp, "-chardev %s: ", opts);
            return false;
        }
    }

    /* fw_cfg before any device: disks and NICs register their boot order with it. */
    if (!pc_add(m, "fw_cfg", NULL, errp))
        return false;

    /*
     * The chipset first: the i440FX creates PCI bus 0 (m->pci_bus) that every
     * later PCI function plugs into, and owns PAM over 0xC0000-0xFFFFF.
     */
    if (!pc_add(m, "i440FX-pcihost", NULL, errp) ||
        !pc_add(m, "PIIX3", NULL, errp))
        return false;
    if (m->firmware_boot && !pc_bios_load(m, errp))
        return false;

    /* Interrupt controllers and the PIT, unless the accelerator brings its own. */
    pc_userspace_irqchip = !(m->accel && m->accel->has_kernel_irqchip &&
                             m->accel->has_kernel_irqchip(m));
    if (pc_userspace_irqchip &&
        (!irqchip_userspace_init(m, errp) ||
         !pc_add(m, "isa-pit", NULL, errp) ||
         !pc_add(m, "port61", NULL, errp)))
        return false;

    /* Board devices: present on every PC, -nodefaults or not. */
    if (!pc_add(m, "mc146818rtc", NULL, errp) ||
        !pc_add(m, "i8042", NULL, errp) ||
        !pc_add(m, "pc-reset-ports", NULL, errp) ||
        !pc_add(m, "ioport80", NULL, errp))
        return false;
    /*
     * ISA DMA, then the floppy controller (after the RTC: it fills CMOS 0x10/0x14).
     * QEMU's i440FX machine has the FDC with -nodefaults too (hw/block/fdc.c).
     */
    if (!pc_add(m, "i8237", NULL, errp) ||
        !pc_add(m, "isa-fdc", NULL, errp))
        return false;
    /* PIIX3 IDE (00:01.1) takes the if=ide drives; after the RTC: it fills CMOS 0x12-0x39. */
    if (m->pci_bus && !pc_add(m, "piix3-ide", NULL, errp))
        return false;
    /* PIIX4 power management (00:01.3, after the PIIX3) and the HPET. */
    if (m->pci_bus && !pc_add(m, "piix4-pm", NULL, errp))
        return false;
    if (!pc_add(m, "hpet", NULL, errp))
        return false;
    if (!pc_serial_init(m, errp))
        return false;
    if (cfg->debugcon_spec) {
        Chardev *chr = chardev_new_from_shorthand(cfg->debugcon_spec, "debugcon", errp);
        if (chr) {
            char *chardev = g_strdup_printf("chardev=%s", chardev_id(chr));
            const char *kv[] = { chardev, NULL };
            bool ok = pc_add(m, "isa-debugcon", kv, errp);
            g_free(chardev);
            if (!ok)
                return false;
        } else if (errp && *errp) {
            g_prefix_error(errp, "-debugcon %s: ", cfg->debugcon_spec);
            return false;
        }
    }
    for (guint i = 0; i < cfg->device_opts->len; i++)
        if (!device_create_from_opts(m, g_ptr_array_index(cfg->device_opts, i), errp))
            return false;
    if (!drives_check_claimed(errp))
        return false;
    /* -kernel with -bios: fw_cfg items + the linuxboot ROM, before the bootorder file. */
    if (cfg->kernel && m->firmware_boot && !pc_linuxboot_fw_setup(m, errp))
        return false;
    /* Everything exists: tell the firmware (CPUs, e820, ACPI, SMBIOS, -boot, -fw_cfg). */
    if (!pc_fw_cfg_setup(m, errp))
        return false;

    return true;
}

bool pc_machine_reset(Machine *m, GError **errp)
{
    devices_reset_all();
    /*
     * Reload the kernel on every reset, like firmware would: the guest has
     * overwritten the loaded image and boot parameters since.
     */
    m->bsp_state_valid = false;
    m->cpu_mtrr_valid = false;
    if (!m->firmware_boot && !pc_direct_boot(m, errp))
        return false;
    /* No firmware to map the PCI BARs: do what SeaBIOS would have done. */
    if (!m->firmware_boot)
        pci_bus_assign_unassigned_bars(m->pci_bus, m->ram_below_4g);
    if (m->accel->reset)
        m->accel->reset(m);
    return true;
}

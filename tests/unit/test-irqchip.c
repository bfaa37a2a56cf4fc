/*
 * The userspace interrupt controllers from the CPU's side
 * (include/kestrel/irqchip.h): GSI levels in, apic_pending/apic_ack_intr
 * out, through the 8259 pair (ExtINT on LINT0) and through the IOAPIC to
 * the local APICs; EOI, TPR/PPR priority, masking, IPIs (fixed, NMI,
 * INIT/SIPI, shorthands, logical destinations), the LAPIC timer in its
 * three modes, the APIC base MSR, and robustness against nonsense.
 */
#include "kestrel/clock.h"
#include "kestrel/device.h"
#include "kestrel/ioport.h"
#include "kestrel/irqchip.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"
#include "hw/pc/irqchip_internal.h"
#include "tests/testlib.h"

#define PIC_M_CMD   0x20
#define PIC_M_DATA  0x21
#define PIC_S_CMD   0xa0
#define PIC_S_DATA  0xa1
#define ELCR_M      0x4d0
#define ELCR_S      0x4d1
#define OCW2_EOI    0x20
#define OCW3_READ_IRR 0x0a
#define OCW3_READ_ISR 0x0b

#define IOAPIC      0xfec00000ull
#define LAPIC       0xfee00000ull
#define LAPIC_ID    0x020
#define LAPIC_TPR   0x080
#define LAPIC_PPR   0x0a0
#define LAPIC_EOI   0x0b0
#define LAPIC_LDR   0x0d0
#define LAPIC_DFR   0x0e0
#define LAPIC_SVR   0x0f0
#define LAPIC_ISR   0x100
#define LAPIC_TMR   0x180
#define LAPIC_IRR   0x200
#define LAPIC_ESR   0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_TIMER_ICR 0x380
#define LAPIC_TIMER_CCR 0x390
#define LAPIC_TIMER_DCR 0x3e0

#define RTE_LEVEL   (1u << 15)
#define RTE_MASKED  (1u << 16)
#define RTE_REMOTE_IRR (1u << 14)

static Machine *m;
static int kicks[4];

static void test_kick(Machine *mm, int cpu)
{
    if (cpu >= 0 && cpu < 4)
        kicks[cpu]++;
}

static void gsi_handler(void *opaque, int n, int level)
{
    irqchip_set_gsi(opaque, n, level);
}

static void setup(int cpus)
{
    m = g_new0(Machine, 1);
    m->cfg = g_new0(MachineConfig, 1);
    m->cfg->ram_size = 16 << 20;
    m->cfg->smp_cpus = cpus;
    m->smp_cpus = cpus;
    m->ram_below_4g = m->cfg->ram_size;
    m->system_memory = memory_region_new_container("system", UINT64_MAX);
    m->ram = memory_region_new_ram("ram", m->cfg->ram_size, NULL);
    memory_region_add_subregion(m->system_memory, 0,
        memory_region_new_alias("low", m->ram, 0, m->ram_below_4g), 0);
    m->as = address_space_new("memory", m->system_memory);
    for (int i = 0; i < MACHINE_NUM_GSI; i++)
        m->gsi[i] = irq_line_new(gsi_handler, m, i);
    clock_virtual_set_manual(true);
    GError *err = NULL;
    CHECK_MSG(irqchip_userspace_init(m, &err), "irqchip_userspace_init: %s",
              err ? err->message : "?");
    CHECK(device_create(m, "isa-pit", NULL, &err) != NULL);
    CHECK(device_create(m, "port61", NULL, &err) != NULL);
    irqchip_set_kick(test_kick);
    irqchip_current_cpu = 0;
}

static void gsi(int n, int level)
{
    irq_set_level(m->gsi[n], level);
}

static uint32_t lapic_read(int cpu, unsigned reg)
{
    irqchip_current_cpu = cpu;
    uint32_t v = (uint32_t)address_space_ld(m->as, LAPIC + reg, 4);
    irqchip_current_cpu = 0;
    return v;
}

static void lapic_write(int cpu, unsigned reg, uint32_t v)
{
    irqchip_current_cpu = cpu;
    address_space_st(m->as, LAPIC + reg, v, 4);
    irqchip_current_cpu = 0;
}

static bool lapic_vec_bit(int cpu, unsigned base, int vec)
{
    return lapic_read(cpu, base + 0x10 * (vec >> 5)) & (1u << (vec & 31));
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    address_space_st(m->as, IOAPIC, reg, 4);
    address_space_st(m->as, IOAPIC + 0x10, v, 4);
}

static uint32_t ioapic_read(unsigned reg)
{
    address_space_st(m->as, IOAPIC, reg, 4);
    return (uint32_t)address_space_ld(m->as, IOAPIC + 0x10, 4);
}

static void ioapic_route(int pin, uint32_t low, uint8_t dest)
{
    ioapic_write(0x11 + 2 * pin, (uint32_t)dest << 24);
    ioapic_write(0x10 + 2 * pin, low);
}

/* The sequence Linux's init_8259A uses: vectors 0x20 and 0x28, cascade on 2. */
static void pic_init(uint8_t master_imr, uint8_t slave_imr)
{
    ioport_write(PIC_M_CMD, 0x11, 1);
    ioport_write(PIC_M_DATA, 0x20, 1);
    ioport_write(PIC_M_DATA, 0x04, 1);
    ioport_write(PIC_M_DATA, 0x01, 1);
    ioport_write(PIC_S_CMD, 0x11, 1);
    ioport_write(PIC_S_DATA, 0x28, 1);
    ioport_write(PIC_S_DATA, 0x02, 1);
    ioport_write(PIC_S_DATA, 0x01, 1);
    ioport_write(PIC_M_DATA, master_imr, 1);
    ioport_write(PIC_S_DATA, slave_imr, 1);
}

/* PIC out of the way, LAPIC software-enabled: the IOAPIC path alone. */
static void apic_mode(int cpus)
{
    pic_init(0xff, 0xff);
    for (int i = 0; i < cpus; i++)
        lapic_write(i, LAPIC_SVR, 0x1ff);
}

static bool intr(int cpu)
{
    return apic_pending(cpu) & APIC_PENDING_INTR;
}

/* ---- 8259 through LINT0 (ExtINT) ---- */

static void test_pic_edge_irq_acked_through_extint(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    CHECK_MSG(!intr(0), "INTR pending with no request");
    kicks[0] = 0;
    gsi(4, 1);
    CHECK_MSG(intr(0), "IRQ4 raised but INTR not pending");
    CHECK_MSG(kicks[0] > 0, "CPU 0 not kicked for IRQ4");
    CHECK_EQ("vector of IRQ4", 0x24, apic_ack_intr(0));
    ioport_write(PIC_M_CMD, OCW3_READ_ISR, 1);
    CHECK_EQ("master ISR after INTA", 0x10, ioport_read(PIC_M_CMD, 1));
    ioport_write(PIC_M_CMD, OCW3_READ_IRR, 1);
    CHECK_EQ("master IRR after INTA (edge latch consumed)", 0x00, ioport_read(PIC_M_CMD, 1));
    /* IRQ5 has lower priority than the in-service IRQ4. */
    gsi(5, 1);
    CHECK_MSG(!intr(0), "IRQ5 got through while IRQ4 is in service");
    ioport_write(PIC_M_CMD, OCW2_EOI, 1);
    CHECK_MSG(intr(0), "IRQ5 not pending after EOI of IRQ4");
    CHECK_EQ("vector of IRQ5", 0x25, apic_ack_intr(0));
}

static void test_pic_higher_priority_nests(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    gsi(5, 1);
    CHECK_EQ("vector of IRQ5", 0x25, apic_ack_intr(0));
    gsi(3, 1);
    CHECK_MSG(intr(0), "IRQ3 (higher priority) blocked by IRQ5 in service");
    CHECK_EQ("vector of IRQ3", 0x23, apic_ack_intr(0));
    ioport_write(PIC_M_CMD, OCW3_READ_ISR, 1);
    CHECK_EQ("master ISR with IRQ3 nested in IRQ5", 0x28, ioport_read(PIC_M_CMD, 1));
    /* Non-specific EOI ends the highest (IRQ3) first. */
    ioport_write(PIC_M_CMD, OCW2_EOI, 1);
    CHECK_EQ("master ISR after one EOI", 0x20, ioport_read(PIC_M_CMD, 1));
}

static void test_pic_cascade_slave_vector(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    gsi(12, 1);
    CHECK_MSG(intr(0), "IRQ12 did not reach the CPU through the cascade");
    CHECK_EQ("vector of IRQ12", 0x2c, apic_ack_intr(0));
    ioport_write(PIC_M_CMD, OCW3_READ_ISR, 1);
    ioport_write(PIC_S_CMD, OCW3_READ_ISR, 1);
    CHECK_EQ("master ISR (cascade IR2)", 0x04, ioport_read(PIC_M_CMD, 1));
    CHECK_EQ("slave ISR (IR4)", 0x10, ioport_read(PIC_S_CMD, 1));
}

static void test_pic_special_fully_nested_mode(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    gsi(12, 1);
    CHECK_EQ("vector of IRQ12", 0x2c, apic_ack_intr(0));
    gsi(9, 1);
    CHECK_MSG(!intr(0), "fully nested mode: IRQ9 got past the master's in-service IR2");
    gsi(9, 0);
    gsi(12, 0);
    /* Again with the master in special fully nested mode (ICW4 bit 4). */
    pic_init(0x00, 0x00);
    ioport_write(PIC_M_CMD, 0x11, 1);
    ioport_write(PIC_M_DATA, 0x20, 1);
    ioport_write(PIC_M_DATA, 0x04, 1);
    ioport_write(PIC_M_DATA, 0x11, 1);
    gsi(12, 1);
    CHECK_EQ("vector of IRQ12", 0x2c, apic_ack_intr(0));
    gsi(9, 1);
    CHECK_MSG(intr(0), "SFNM: higher slave IRQ9 blocked by the cascade's own ISR bit");
    CHECK_EQ("vector of nested IRQ9", 0x29, apic_ack_intr(0));
    gsi(5, 1);
    CHECK_MSG(!intr(0), "SFNM: master IR5 got past the in-service IR2");
}

static void test_pic_level_irq_redelivers_until_lowered(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    ioport_write(ELCR_S, 0x04, 1);                    /* IRQ10 level */
    CHECK_EQ("ELCR slave", 0x04, ioport_read(ELCR_S, 1));
    gsi(10, 1);
    CHECK_EQ("vector of IRQ10", 0x2a, apic_ack_intr(0));
    ioport_write(PIC_S_CMD, OCW2_EOI, 1);
    ioport_write(PIC_M_CMD, OCW2_EOI, 1);
    CHECK_MSG(intr(0), "level IRQ10 still high but not pending after EOI");
    CHECK_EQ("vector of IRQ10 again", 0x2a, apic_ack_intr(0));
    gsi(10, 0);
    ioport_write(PIC_S_CMD, OCW2_EOI, 1);
    ioport_write(PIC_M_CMD, OCW2_EOI, 1);
    CHECK_MSG(!intr(0), "IRQ10 pending after the line went low");
    /* An edge input is taken once. */
    gsi(11, 1);
    CHECK_EQ("vector of IRQ11", 0x2b, apic_ack_intr(0));
    ioport_write(PIC_S_CMD, OCW2_EOI, 1);
    ioport_write(PIC_M_CMD, OCW2_EOI, 1);
    CHECK_MSG(!intr(0), "edge IRQ11 pending twice");
}

static void test_pic_withdrawn_request_is_spurious_irq7(void)
{
    setup(1);
    pic_init(0x00, 0x00);
    ioport_write(ELCR_M, 0x08, 1);                    /* IRQ3 level */
    gsi(3, 1);
    CHECK(intr(0));
    gsi(3, 0);
    CHECK_EQ("INTA with the request withdrawn: IRQ7 vector", 0x27, pic_intack());
    ioport_write(PIC_M_CMD, OCW3_READ_ISR, 1);
    CHECK_EQ("ISR after spurious INTA", 0x00, ioport_read(PIC_M_CMD, 1));
}

static void test_pic_imr_and_lint0_mask_block(void)
{
    setup(1);
    pic_init(0x02, 0x00);
    gsi(1, 1);
    CHECK_MSG(!intr(0), "IRQ1 masked in the IMR but INTR pending");
    ioport_write(PIC_M_DATA, 0x00, 1);
    CHECK_MSG(intr(0), "IRQ1 unmasked but INTR not pending");
    lapic_write(0, LAPIC_LVT_LINT0, 0x10700);        /* ExtINT, masked */
    CHECK_MSG(!intr(0), "LINT0 masked but the 8259 still reaches the CPU");
    /* A globally disabled APIC passes INTR straight through (SDM 10.4.3). */
    CHECK(apic_set_base(0, LAPIC | 0x100));
    CHECK_MSG(intr(0), "APIC disabled: 8259 INTR should reach the CPU directly");
    CHECK_EQ("vector of IRQ1", 0x21, apic_ack_intr(0));
}

/* ---- IOAPIC -> LAPIC ---- */

static void test_ioapic_edge_to_lapic_and_eoi(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(4, 0x31, 0);
    gsi(4, 1);
    CHECK_MSG(intr(0), "IOAPIC pin 4 did not make INTR pending");
    CHECK_EQ("vector", 0x31, apic_ack_intr(0));
    CHECK_MSG(lapic_vec_bit(0, LAPIC_ISR, 0x31), "ISR bit 0x31 not set after ack");
    CHECK_MSG(!lapic_vec_bit(0, LAPIC_IRR, 0x31), "IRR bit 0x31 still set after ack");
    CHECK_EQ("PPR while 0x31 in service", 0x30, lapic_read(0, LAPIC_PPR));
    lapic_write(0, LAPIC_EOI, 0);
    CHECK_MSG(!lapic_vec_bit(0, LAPIC_ISR, 0x31), "ISR bit 0x31 still set after EOI");
    CHECK_MSG(!intr(0), "edge pin delivered twice");
}

static void test_isa_irq0_reaches_ioapic_pin2(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(2, 0x30, 0);
    ioapic_route(0, 0x3f, 0);
    gsi(0, 0);
    gsi(0, 1);
    CHECK_EQ("ISA IRQ0 vector (pin 2)", 0x30, apic_ack_intr(0));
}

static void test_ioapic_level_remote_irr_and_eoi_broadcast(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(10, 0x41 | RTE_LEVEL, 0);
    gsi(10, 1);
    CHECK_EQ("vector", 0x41, apic_ack_intr(0));
    CHECK_MSG(ioapic_read(0x10 + 20) & RTE_REMOTE_IRR, "Remote IRR clear while in service");
    CHECK_MSG(lapic_vec_bit(0, LAPIC_TMR, 0x41), "TMR bit not set for a level interrupt");
    CHECK_MSG(!intr(0), "level pin re-delivered before EOI");
    lapic_write(0, LAPIC_EOI, 0);
    CHECK_MSG(intr(0), "still-asserted level pin not re-delivered after EOI");
    CHECK_EQ("vector again", 0x41, apic_ack_intr(0));
    gsi(10, 0);
    lapic_write(0, LAPIC_EOI, 0);
    CHECK_MSG(!(ioapic_read(0x10 + 20) & RTE_REMOTE_IRR), "Remote IRR still set after EOI");
    CHECK_MSG(!intr(0), "pending after the line went low");
}

static void test_ioapic_masked_pin_does_not_deliver(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(5, 0x35 | RTE_MASKED, 0);
    gsi(5, 1);
    CHECK_MSG(!intr(0), "masked edge pin delivered");
    gsi(5, 0);
    ioapic_route(5, 0x35, 0);
    CHECK_MSG(!intr(0), "edge seen while masked was held (82093AA: ignored)");
    ioapic_route(11, 0x3b | RTE_LEVEL | RTE_MASKED, 0);
    gsi(11, 1);
    CHECK_MSG(!intr(0), "masked level pin delivered");
    ioapic_route(11, 0x3b | RTE_LEVEL, 0);
    CHECK_MSG(intr(0), "unmasking an asserted level pin did not deliver");
    CHECK_EQ("vector", 0x3b, apic_ack_intr(0));
}

static void test_lapic_tpr_and_priority_classes(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(4, 0x51, 0);
    apic_set_tpr(0, 0x60);
    gsi(4, 1);
    CHECK_MSG(!intr(0), "vector 0x51 delivered with TPR 0x60");
    CHECK_EQ("TPR via MMIO", 0x60, lapic_read(0, LAPIC_TPR));
    apic_set_tpr(0, 0x50);
    CHECK_MSG(!intr(0), "vector 0x51 delivered with TPR 0x50 (same class)");
    lapic_write(0, LAPIC_TPR, 0x40);
    CHECK_EQ("TPR from MMIO", 0x40, apic_get_tpr(0));
    CHECK_MSG(intr(0), "vector 0x51 blocked with TPR 0x40");
    CHECK_EQ("vector", 0x51, apic_ack_intr(0));
    /* A lower class waits for the EOI, a higher one preempts. */
    ioapic_route(5, 0x45, 0);
    ioapic_route(6, 0x61, 0);
    gsi(5, 1);
    CHECK_MSG(!intr(0), "0x45 delivered while 0x51 in service");
    gsi(6, 1);
    CHECK_EQ("preempting vector", 0x61, apic_ack_intr(0));
    lapic_write(0, LAPIC_EOI, 0);
    lapic_write(0, LAPIC_EOI, 0);
    CHECK_MSG(!intr(0), "0x45 delivered with TPR 0x40 (same class)");
    apic_set_tpr(0, 0);
    CHECK_EQ("vector after both EOIs and TPR 0", 0x45, apic_ack_intr(0));
}

static void test_lapic_software_disabled_holds_fixed(void)
{
    setup(1);
    pic_init(0xff, 0xff);
    ioapic_route(4, 0x31, 0);
    gsi(4, 1);
    CHECK_MSG(!intr(0), "fixed interrupt delivered while SVR.enable is 0");
    lapic_write(0, LAPIC_SVR, 0x1ff);
    CHECK_MSG(intr(0), "held interrupt not delivered after SVR enable");
}

/* ---- IPIs ---- */

static void test_ipi_init_sipi_brings_up_ap(void)
{
    setup(2);
    apic_mode(2);
    lapic_write(0, LAPIC_ICR_HI, 1u << 24);
    lapic_write(0, LAPIC_ICR_LO, 0x0000c500);        /* INIT, level assert */
    CHECK_MSG(apic_pending(1) & APIC_PENDING_INIT, "INIT not pending on CPU 1");
    CHECK_MSG(!(apic_pending(0) & APIC_PENDING_INIT), "INIT pending on the sender");
    lapic_write(0, LAPIC_ICR_LO, 0x00008500);        /* INIT level de-assert: no-op */
    apic_take_event(1, APIC_PENDING_INIT);
    CHECK_MSG(!(apic_pending(1) & APIC_PENDING_INIT), "INIT still pending after take");
    lapic_write(0, LAPIC_ICR_LO, 0x00000608);        /* start-up, vector 8 -> 0x8000 */
    CHECK_MSG(apic_pending(1) & APIC_PENDING_SIPI, "SIPI not pending on CPU 1");
    CHECK_EQ("SIPI vector", 0x08, apic_sipi_vector(1));
    apic_take_event(1, APIC_PENDING_SIPI);
    /* A second SIPI to a running CPU is ignored. */
    lapic_write(0, LAPIC_ICR_LO, 0x00000609);
    CHECK_MSG(!(apic_pending(1) & APIC_PENDING_SIPI), "SIPI accepted by a running CPU");
    /* INIT and SIPI back to back, before the engine looked: both wait, INIT first. */
    lapic_write(0, LAPIC_ICR_LO, 0x0000c500);
    lapic_write(0, LAPIC_ICR_LO, 0x0000060a);
    CHECK_EQ("INIT and SIPI both pending", APIC_PENDING_INIT | APIC_PENDING_SIPI,
             apic_pending(1) & (APIC_PENDING_INIT | APIC_PENDING_SIPI));
    apic_take_event(1, APIC_PENDING_INIT);
    CHECK_MSG(apic_pending(1) & APIC_PENDING_SIPI, "INIT consumed the SIPI behind it");
    CHECK_EQ("SIPI vector", 0x0a, apic_sipi_vector(1));
    apic_take_event(1, APIC_PENDING_SIPI);
    /* SIPI to the BSP, which never waited for one, is ignored too. */
    lapic_write(1, LAPIC_ICR_HI, 0);
    lapic_write(1, LAPIC_ICR_LO, 0x00000608);
    CHECK_MSG(!(apic_pending(0) & APIC_PENDING_SIPI), "SIPI accepted by the BSP");
}

static void test_ipi_fixed_all_excluding_self(void)
{
    setup(3);
    apic_mode(3);
    lapic_write(1, LAPIC_ICR_LO, 0x000c0050);        /* all excluding self, fixed 0x50 */
    CHECK_MSG(intr(0) && intr(2), "CPUs 0 and 2 did not get the IPI");
    CHECK_MSG(!intr(1), "the sender got its own all-excluding-self IPI");
    CHECK_EQ("CPU 2 vector", 0x50, apic_ack_intr(2));
    lapic_write(1, LAPIC_ICR_LO, 0x00040051);        /* self */
    CHECK_EQ("self IPI vector", 0x51, apic_ack_intr(1));
}

static void test_ipi_logical_flat_and_cluster(void)
{
    setup(3);
    apic_mode(3);
    for (int i = 0; i < 3; i++)
        lapic_write(i, LAPIC_LDR, (1u << i) << 24);
    lapic_write(0, LAPIC_ICR_HI, 0x06u << 24);
    lapic_write(0, LAPIC_ICR_LO, 0x00000860);        /* logical, fixed 0x60 */
    CHECK_MSG(!intr(0) && intr(1) && intr(2), "flat logical 0x06 should reach CPUs 1 and 2");
    apic_ack_intr(1);
    apic_ack_intr(2);
    lapic_write(1, LAPIC_EOI, 0);
    lapic_write(2, LAPIC_EOI, 0);
    /* Cluster model: cluster 1, member bit 0 -> CPU 2 only. */
    for (int i = 0; i < 3; i++)
        lapic_write(i, LAPIC_DFR, 0x0fffffff);
    lapic_write(2, LAPIC_LDR, 0x11000000);
    lapic_write(1, LAPIC_LDR, 0x02000000);
    lapic_write(0, LAPIC_ICR_HI, 0x11u << 24);
    lapic_write(0, LAPIC_ICR_LO, 0x00000870);
    CHECK_EQ("DFR readback", 0x0fffffff, lapic_read(0, LAPIC_DFR));
    CHECK_MSG(!intr(1) && intr(2), "cluster 0x11 should reach only CPU 2");
}

static void test_ipi_nmi_and_lowest_priority(void)
{
    setup(2);
    apic_mode(2);
    lapic_write(0, LAPIC_ICR_HI, 1u << 24);
    lapic_write(0, LAPIC_ICR_LO, 0x00000400);        /* NMI */
    CHECK_MSG(apic_pending(1) & APIC_PENDING_NMI, "NMI not pending");
    apic_take_event(1, APIC_PENDING_NMI);
    CHECK_MSG(!(apic_pending(1) & APIC_PENDING_NMI), "NMI pending after take");
    /* Lowest priority to both: the one with the lower TPR wins. */
    apic_set_tpr(0, 0x20);
    lapic_write(0, LAPIC_ICR_HI, 0xffu << 24);
    lapic_write(0, LAPIC_ICR_LO, 0x00000140);
    CHECK_MSG(!lapic_vec_bit(0, LAPIC_IRR, 0x40) && lapic_vec_bit(1, LAPIC_IRR, 0x40),
              "lowest priority should pick CPU 1 (TPR 0 < 0x20)");
}

static void test_illegal_vector_sets_esr(void)
{
    setup(1);
    apic_mode(1);
    lapic_write(0, LAPIC_ICR_LO, 0x00040005);        /* self, vector 5 */
    CHECK_MSG(!intr(0), "illegal vector 5 delivered");
    lapic_write(0, LAPIC_ESR, 0);
    CHECK_EQ("ESR: send illegal vector", 0x20, lapic_read(0, LAPIC_ESR) & 0x20);
}

/* ---- Timer ---- */

static void test_lapic_timer_one_shot_and_periodic(void)
{
    setup(1);
    apic_mode(1);
    lapic_write(0, LAPIC_TIMER_DCR, 0x0b);            /* divide by 1: 1 ns per count */
    lapic_write(0, LAPIC_LVT_TIMER, 0x40);            /* one-shot, vector 0x40 */
    lapic_write(0, LAPIC_TIMER_ICR, 1000);
    clock_virtual_step(400);
    CHECK_EQ("current count after 400 ns", 600, lapic_read(0, LAPIC_TIMER_CCR));
    clock_virtual_step(599);
    CHECK_MSG(!intr(0), "timer fired 1 ns early");
    clock_virtual_step(1);
    CHECK_EQ("timer vector", 0x40, apic_ack_intr(0));
    lapic_write(0, LAPIC_EOI, 0);
    CHECK_EQ("one-shot count after expiry", 0, lapic_read(0, LAPIC_TIMER_CCR));
    clock_virtual_step(5000);
    CHECK_MSG(!intr(0), "one-shot timer fired twice");

    lapic_write(0, LAPIC_TIMER_DCR, 0x00);            /* divide by 2 */
    lapic_write(0, LAPIC_LVT_TIMER, 0x20041);         /* periodic, vector 0x41 */
    lapic_write(0, LAPIC_TIMER_ICR, 5000);            /* 10 us period */
    for (int i = 0; i < 3; i++) {
        clock_virtual_step(9999);
        CHECK_MSG(!intr(0), "periodic tick %d early", i);
        clock_virtual_step(1);
        CHECK_EQ("periodic vector", 0x41, apic_ack_intr(0));
        lapic_write(0, LAPIC_EOI, 0);
    }
    lapic_write(0, LAPIC_LVT_TIMER, 0x30041);         /* masked */
    clock_virtual_step(30000);
    CHECK_MSG(!intr(0), "masked timer delivered");
}

static void test_lapic_tsc_deadline(void)
{
    setup(1);
    apic_mode(1);
    apic_set_tsc_hz(1000000000ull);                   /* TSC = virtual ns */
    apic_set_tsc_deadline(0, 12345);
    CHECK_EQ("deadline MSR outside deadline mode", 0, apic_get_tsc_deadline(0));
    lapic_write(0, LAPIC_LVT_TIMER, 0x40042);         /* TSC-deadline, vector 0x42 */
    uint64_t now = (uint64_t)clock_get_ns(CLOCK_VIRTUAL);
    apic_set_tsc_deadline(0, now + 5000);
    CHECK_EQ("deadline MSR", now + 5000, apic_get_tsc_deadline(0));
    clock_virtual_step(4999);
    CHECK_MSG(!intr(0), "deadline fired early");
    clock_virtual_step(1);
    CHECK_EQ("deadline vector", 0x42, apic_ack_intr(0));
    CHECK_EQ("deadline MSR after firing", 0, apic_get_tsc_deadline(0));
    lapic_write(0, LAPIC_EOI, 0);
    apic_set_tsc_deadline(0, 1);                      /* in the past: fires now */
    CHECK_MSG(intr(0), "past deadline did not fire at once");
}

static void test_pit_irq0_through_ioapic(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(2, 0x30, 0);
    ioport_write(0x43, 0x34, 1);                      /* counter 0, LSB/MSB, mode 2 */
    ioport_write(0x40, 1193 & 0xff, 1);
    ioport_write(0x40, 1193 >> 8, 1);
    int got = 0;
    for (int i = 0; i < 10; i++) {
        clock_virtual_step(1000000);
        if (intr(0)) {
            CHECK_EQ("timer vector", 0x30, apic_ack_intr(0));
            lapic_write(0, LAPIC_EOI, 0);
            got++;
        }
    }
    CHECK_EQ("PIT ticks in 10 ms at 1193 counts", 10, got);
}

/* Guest-chosen periods of a few ns must not turn into a timer storm. */
static void test_tiny_periods_are_merged(void)
{
    setup(1);
    apic_mode(1);
    ioapic_route(2, 0x30, 0);
    lapic_write(0, LAPIC_TIMER_DCR, 0x0b);
    lapic_write(0, LAPIC_LVT_TIMER, 0x20040);         /* periodic, 1 ns */
    lapic_write(0, LAPIC_TIMER_ICR, 1);
    ioport_write(0x43, 0x34, 1);                      /* PIT mode 2, count 2 */
    ioport_write(0x40, 2, 1);
    ioport_write(0x40, 0, 1);
    gint64 t0 = g_get_monotonic_time();
    clock_virtual_step(NS_PER_SEC);                   /* one virtual second */
    gint64 us = g_get_monotonic_time() - t0;
    CHECK_MSG(us < 5 * G_USEC_PER_SEC, "one virtual second took %" PRId64 " us of host time",
              (int64_t)us);
    CHECK_MSG(intr(0), "neither the LAPIC timer nor the PIT fired");
}

/* ---- MSR, reset, robustness ---- */

static void test_apic_base_msr(void)
{
    setup(2);
    CHECK_EQ("BSP IA32_APIC_BASE", 0xfee00900, apic_get_base(0));
    CHECK_EQ("AP IA32_APIC_BASE", 0xfee00800, apic_get_base(1));
    CHECK_MSG(!apic_set_base(0, 0xfee00d00), "x2APIC enable accepted though not supported");
    CHECK_MSG(!apic_set_base(0, 0xfee00901), "reserved bit 0 accepted");
    CHECK(apic_set_base(1, 0xfee00000));
    CHECK_EQ("AP base after disable (BSP bit kept clear)", 0xfee00000, apic_get_base(1));
    CHECK_EQ("APIC ID of CPU 1", 1u << 24, lapic_read(1, LAPIC_ID));
    CHECK_EQ("version", 0x50014, lapic_read(0, 0x30));
}

static void test_nonsense_does_not_crash(void)
{
    setup(2);
    GRand *r = g_rand_new_with_seed(42);
    for (int i = 0; i < 20000; i++) {
        uint32_t v = g_rand_int(r);
        unsigned reg = g_rand_int_range(r, 0, 0x1000) & ~3u;
        switch (g_rand_int_range(r, 0, 8)) {
        case 0: lapic_write(g_rand_int_range(r, -2, 4), reg, v); break;
        case 1: lapic_read(g_rand_int_range(r, -2, 4), reg); break;
        case 2: ioapic_write(v & 0xff, g_rand_int(r)); break;
        case 3: ioport_write((uint16_t)(0x20 + (v & 1) + ((v >> 1) & 1) * 0x80), v >> 8, 1); break;
        case 4: ioport_write((uint16_t)(0x40 + (v & 3)), v >> 8, 1);
                ioport_read((uint16_t)(0x40 + ((v >> 2) & 3)), 1); break;
        case 5: irqchip_set_gsi(m, (int)(v % 40) - 8, (v >> 8) & 1); break;
        case 6: {
            int cpu = g_rand_int_range(r, -1, 4);
            if (apic_pending(cpu) & APIC_PENDING_INTR)
                apic_ack_intr(cpu);
            apic_take_event(cpu, v);
            apic_set_tsc_deadline(cpu, v);
            apic_set_tpr(cpu, (uint8_t)v);
            apic_set_base(cpu, ((uint64_t)g_rand_int(r) << 32 | v) & ~0x400ull);
            apic_sipi_vector(cpu);
            break;
        }
        default: clock_virtual_step(v % 100000); break;
        }
    }
    apic_deliver(0x77, false, 0, 0x40, true, false);   /* absent APIC id */
    apic_deliver(0xff, true, 7, 0, true, true);
    CHECK_EQ("apic_pending of a CPU that does not exist", 0, apic_pending(99));
    CHECK_EQ("apic_ack_intr of a CPU that does not exist", -1, apic_ack_intr(-3));
    g_rand_free(r);
}

static const TestCase cases[] = {
    TEST_CASE(test_pic_edge_irq_acked_through_extint),
    TEST_CASE(test_pic_higher_priority_nests),
    TEST_CASE(test_pic_cascade_slave_vector),
    TEST_CASE(test_pic_special_fully_nested_mode),
    TEST_CASE(test_pic_level_irq_redelivers_until_lowered),
    TEST_CASE(test_pic_withdrawn_request_is_spurious_irq7),
    TEST_CASE(test_pic_imr_and_lint0_mask_block),
    TEST_CASE(test_ioapic_edge_to_lapic_and_eoi),
    TEST_CASE(test_isa_irq0_reaches_ioapic_pin2),
    TEST_CASE(test_ioapic_level_remote_irr_and_eoi_broadcast),
    TEST_CASE(test_ioapic_masked_pin_does_not_deliver),
    TEST_CASE(test_lapic_tpr_and_priority_classes),
    TEST_CASE(test_lapic_software_disabled_holds_fixed),
    TEST_CASE(test_ipi_init_sipi_brings_up_ap),
    TEST_CASE(test_ipi_fixed_all_excluding_self),
    TEST_CASE(test_ipi_logical_flat_and_cluster),
    TEST_CASE(test_ipi_nmi_and_lowest_priority),
    TEST_CASE(test_illegal_vector_sets_esr),
    TEST_CASE(test_lapic_timer_one_shot_and_periodic),
    TEST_CASE(test_lapic_tsc_deadline),
    TEST_CASE(test_pit_irq0_through_ioapic),
    TEST_CASE(test_tiny_periods_are_merged),
    TEST_CASE(test_apic_base_msr),
    TEST_CASE(test_nonsense_does_not_crash),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("irqchip", cases, argc, argv);
}

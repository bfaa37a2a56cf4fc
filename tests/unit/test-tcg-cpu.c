/*
 * Focused tests of the software x86 CPU (accel/tcg): each builds a tiny
 * machine (RAM in an AddressSpace), puts hand-assembled code in it, runs
 * the CPU until HLT or an exception, and checks the one architectural
 * result the SDM defines: registers, flags, exception vector and error
 * code, the interrupt frame, paging A/D bits.
 */
#include <string.h>
#include <math.h>

#include "accel/tcg/tcg-internal.h"
#include "accel/tcg/ops.h"
#include "accel/tcg/tb.h"
#include "kestrel/cpu-model.h"
#include "kestrel/ioport.h"
#include "kestrel/memory.h"
#include "tests/testlib.h"

#define RAM_SIZE (8u << 20)
#define CODE 0x10000u
#define GDT  0x1000u
#define IDT  0x2000u
#define TSS  0x3000u
#define HANDLERS 0x5000u

typedef struct Env {
    AddressSpace *as;
    uint8_t *ram;
    TCGCPU *cpu;
} Env;

static Env env_new(void)
{
    Env e;
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("ram", RAM_SIZE, NULL);
    memory_region_add_subregion(root, 0, ram, 0);
    e.as = address_space_new("tcg-test", root);
    e.ram = memory_region_host_ptr(ram);
    e.cpu = tcg_cpu_new(e.as, 0);
    return e;
}

static void put(Env *e, uint32_t addr, const void *bytes, size_t n)
{
    memcpy(e->ram + addr, bytes, n);
}

#define CODE_AT(e, addr, ...) do { \
        static const uint8_t c_[] = { __VA_ARGS__ }; put((e), (addr), c_, sizeof(c_)); \
    } while (0)

static uint32_t rd32(Env *e, uint32_t a) { return ld32_le(e->ram + a); }
static uint64_t rd64(Env *e, uint32_t a) { return ld64_le(e->ram + a); }

static void seg_flat(X86Segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool code64)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->limit = 0xffffffffu;
    s->type = type;
    s->s = 1;
    s->dpl = dpl;
    s->present = 1;
    s->g = 1;
    s->l = code64;
    s->db = !code64;
}

/* GDT: 08 code32, 10 data, 18 code64, 20 code16, 28 user code32, 30 user data,
 * 38 TSS, 40 small data (base 1 MiB, limit FFFh), 48 user code64, 50 not present. */
static void write_gdt(Env *e, bool tss64)
{
    static const uint64_t d[] = {
        0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull, 0x00af9b000000ffffull,
        0x00009b000000ffffull, 0x00cffb000000ffffull, 0x00cff3000000ffffull,
        0, 0x0040931000000fffull, 0x00affb000000ffffull, 0x00cf13000000ffffull, 0,
    };
    for (unsigned i = 0; i < ARRAY_LEN(d); i++)
        st64_le(e->ram + GDT + 8 * i, d[i]);
    /* TSS descriptor (type 9 available 32/64-bit TSS) at index 7. */
    uint32_t lo = (TSS << 16) | 0x67, hi = 0x8900 | ((TSS >> 16) & 0xff);
    st32_le(e->ram + GDT + 0x38, lo);
    st32_le(e->ram + GDT + 0x3c, hi);
    (void)tss64;
}

static void write_idt(Env *e, bool long_mode, uint16_t cs)
{
    for (unsigned v = 0; v < 256; v++) {
        uint32_t off = HANDLERS + v * 16;
        e->ram[off] = 0xf4;         /* hlt */
        uint32_t lo = (uint32_t)cs << 16 | (off & 0xffff);
        uint32_t hi = (off & 0xffff0000u) | 0x8e00 | (v == 0x80 ? 0x6000 : 0);
        if (long_mode) {
            st32_le(e->ram + IDT + v * 16, lo);
            st32_le(e->ram + IDT + v * 16 + 4, hi);
            st64_le(e->ram + IDT + v * 16 + 8, 0);
        } else {
            st32_le(e->ram + IDT + v * 8, lo);
            st32_le(e->ram + IDT + v * 8 + 4, hi);
        }
    }
}

static void state_base(X86CPUState *s)
{
    memset(s, 0, sizeof(*s));
    s->rflags = 2;
    s->rip = CODE;
    s->regs[R_ESP] = 0x80000;
    s->gdt.base = GDT;
    s->gdt.limit = 0x5f;
    s->ldt.unusable = 1;
    s->tr.selector = 0x38;
    s->tr.base = TSS;
    s->tr.limit = 0x67;
    s->tr.type = 0xb;
    s->tr.present = 1;
}

static void setup_pm32(Env *e)
{
    X86CPUState s;
    write_gdt(e, false);
    write_idt(e, false, 0x08);
    st32_le(e->ram + TSS + 4, 0x90000);   /* esp0 */
    st32_le(e->ram + TSS + 8, 0x10);      /* ss0 */
    state_base(&s);
    s.cr0 = X86_CR0_PE | X86_CR0_ET;
    s.idt.base = IDT;
    s.idt.limit = 0x7ff;
    seg_flat(&s.seg[SEG_CS], 0x08, 0xb, 0, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x10, 0x3, 0, false);
    cpu_from_x86_state(e->cpu, &s);
}

/* Long mode, identity-mapped first 8 MiB: 0-2 MiB with 4 KiB pages (PT at 0x23000). */
#define PML4 0x20000u
#define PDPT 0x21000u
#define PD   0x22000u
#define PT   0x23000u
static void setup_long64(Env *e)
{
    X86CPUState s;
    write_gdt(e, true);
    write_idt(e, true, 0x18);
    st64_le(e->ram + TSS + 4, 0x90000);   /* rsp0 */
    st64_le(e->ram + PML4, PDPT | 3);
    st64_le(e->ram + PDPT, PD | 3);
    st64_le(e->ram + PD, PT | 3);
    for (unsigned i = 1; i < 4; i++)
        st64_le(e->ram + PD + 8 * i, ((uint64_t)i << 21) | 0x83);
    for (unsigned i = 0; i < 512; i++)
        st64_le(e->ram + PT + 8 * i, ((uint64_t)i << 12) | 3);
    state_base(&s);
    s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG | X86_CR0_WP;
    s.cr3 = PML4;
    s.cr4 = X86_CR4_PAE;
    s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
    s.idt.base = IDT;
    s.idt.limit = 0xfff;
    s.tr.type = 0xb;
    seg_flat(&s.seg[SEG_CS], 0x18, 0xb, 0, true);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x10, 0x3, 0, false);
    cpu_from_x86_state(e->cpu, &s);
}

static void setup_real(Env *e, uint16_t ip)
{
    X86CPUState s;
    memset(&s, 0, sizeof(s));
    s.rflags = 2;
    s.rip = ip;
    s.regs[R_ESP] = 0x7000;
    s.cr0 = X86_CR0_ET;
    s.idt.limit = 0x3ff;
    s.gdt.limit = 0xffff;
    for (int i = 0; i < SEG__COUNT; i++) {
        s.seg[i].limit = 0xffff;
        s.seg[i].type = i == SEG_CS ? 0xb : 0x3;
        s.seg[i].s = 1;
        s.seg[i].present = 1;
    }
    s.ldt.limit = 0xffff;
    s.ldt.type = 2;
    s.ldt.present = 1;
    s.tr.limit = 0xffff;
    s.tr.type = 0xb;
    s.tr.present = 1;
    cpu_from_x86_state(e->cpu, &s);
}

static TCGRunResult run(Env *e)
{
    TCGRunResult r;
    do {
        r = tcg_cpu_exec(e->cpu, 10000);
    } while (r == TCG_RUN_EXIT);        /* a kick: re-enter, as vcpu_run's caller does */
    return r;
}

static uint32_t arith_flags(Env *e)
{
    return cpu_get_eflags(e->cpu) & CC_ALL;
}

/* ---------------- real mode ---------------- */

static void test_real_mode_stack_loop_and_arith(void)
{
    Env e = env_new();
    CODE_AT(&e, 0x7c00,
            0xb8, 0x34, 0x12,       /* mov ax, 0x1234 */
            0x50,                   /* push ax */
            0x5b,                   /* pop bx */
            0x05, 0x01, 0x00,       /* add ax, 1 */
            0xb9, 0x05, 0x00,       /* mov cx, 5 */
            0x31, 0xd2,             /* xor dx, dx */
            0x01, 0xca,             /* L: add dx, cx */
            0xe2, 0xfc,             /* loop L */
            0xf4);                  /* hlt */
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AX", 0x1235, e.cpu->regs[R_EAX]);
    CHECK_EQ("BX", 0x1234, e.cpu->regs[R_EBX]);
    CHECK_EQ("DX = 5+4+3+2+1", 15, e.cpu->regs[R_EDX]);
    CHECK_EQ("CX", 0, e.cpu->regs[R_ECX]);
    CHECK_EQ("SP", 0x7000, e.cpu->regs[R_ESP]);
    CHECK_EQ("IP after hlt", 0x7c12, e.cpu->rip);
}

static void test_real_mode_int_through_ivt_and_iret(void)
{
    Env e = env_new();
    st16_le(e.ram + 0x21 * 4, 0x8000);      /* IVT[21h] = 0000:8000 */
    st16_le(e.ram + 0x21 * 4 + 2, 0x0000);
    CODE_AT(&e, 0x8000, 0xb8, 0xef, 0xbe,   /* mov ax, 0xbeef */
            0xcf);                          /* iret */
    CODE_AT(&e, 0x7c00, 0xfb,               /* sti */
            0xcd, 0x21,                     /* int 21h */
            0xf4);
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AX from handler", 0xbeef, e.cpu->regs[R_EAX]);
    CHECK_EQ("SP restored", 0x7000, e.cpu->regs[R_ESP]);
    CHECK_EQ("IP", 0x7c04, e.cpu->rip);
    CHECK_MSG(cpu_get_eflags(e.cpu) & FL_IF, "IF restored by IRET");
    CHECK_EQ("return IP pushed", 0x7c03, ld16_le(e.ram + 0x7000 - 6));
}

/*
 * A handler that faults again at once loops in exception deliveries without
 * ever finishing a block (real mode's stack wraps, so this never ends on
 * hardware either): each delivery counts against the run budget, so the
 * caller still gets control back (found by test-tcg-fuzz: it hung).
 */
static void test_exception_loop_returns_on_budget(void)
{
    Env e = env_new();
    st16_le(e.ram + 6 * 4, 0x9000);          /* IVT[#UD] = 0000:9000 */
    st16_le(e.ram + 6 * 4 + 2, 0);
    CODE_AT(&e, 0x9000, 0x0f, 0x0b);         /* the handler: ud2 */
    CODE_AT(&e, 0x7c00, 0x0f, 0x0b);         /* ud2 */
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_BUDGET, tcg_cpu_exec(e.cpu, 100));
    CHECK_EQ("still in the handler", 0x9000, e.cpu->rip);
    /* One delivery per unit of budget, each a 6-byte real-mode frame. */
    CHECK_EQ("SP after 100 deliveries", 0x7000 - 6 * 100, e.cpu->regs[R_ESP] & 0xffff);
}

static void test_real_mode_segment_limit_gp(void)
{
    Env e = env_new();
    /* mov ax, [0xffff]: a word at offset FFFFh crosses the 64 KiB limit -> #GP(0). */
    CODE_AT(&e, 0x7c00, 0xa1, 0xff, 0xff, 0xf4);
    setup_real(&e, 0x7c00);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
}

/* ---------------- protected mode: exceptions through the IDT ---------------- */

/*
 * A task switch to a TSS with the T flag set (byte 100, bit 0) raises a
 * debug trap once the switch is complete, before the new task's first
 * instruction, with DR6.BT (SDM 3A §7.2.1, §17.2.3).  Without T: none.
 */
static void test_task_switch_t_flag_debug_trap(void)
{
    for (int t_flag = 0; t_flag < 2; t_flag++) {
        Env e = env_new();
        const uint32_t tss = 0x4000;
        CODE_AT(&e, CODE, 0xea, 0x00, 0x00, 0x00, 0x00, 0x58, 0x00);   /* jmp 0x58:0 */
        CODE_AT(&e, CODE + 0x100, 0xb8, 0x34, 0x12, 0x00, 0x00,      /* mov eax, 0x1234 */
                0xf4);                                              /* hlt */
        setup_pm32(&e);
        /* GDT[11]: an available 32-bit TSS at 0x4000, limit 0x67. */
        st32_le(e.ram + GDT + 0x58, (tss << 16) | 0x67);
        st32_le(e.ram + GDT + 0x5c, 0x8900 | ((tss >> 16) & 0xff));
        st32_le(e.ram + tss + 0x20, CODE + 0x100);          /* EIP */
        st32_le(e.ram + tss + 0x24, 2);                     /* EFLAGS */
        st32_le(e.ram + tss + 0x38, 0x70000);               /* ESP */
        static const uint16_t segs[6] = { 0x10, 0x08, 0x10, 0x10, 0x10, 0x10 };
        for (int i = 0; i < 6; i++)
            st32_le(e.ram + tss + 0x48 + 4 * i, segs[i]);
        st32_le(e.ram + tss + 0x64, (uint32_t)t_flag);     /* T */
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("TR", 0x58, e.cpu->tr.sel);
        if (!t_flag) {
            CHECK_EQ("EAX: the new task ran", 0x1234, e.cpu->regs[R_EAX]);
            CHECK_EQ("DR6.BT clear", 0, e.cpu->dr[6] & DR6_BT);
            continue;
        }
        CHECK_EQ("EIP in the #DB handler", HANDLERS + 1 * 16 + 1, e.cpu->rip);
        CHECK_MSG(e.cpu->regs[R_EAX] != 0x1234, "the trap comes before the first instruction");
        CHECK_EQ("DR6.BT", DR6_BT, e.cpu->dr[6] & (DR6_BT | DR6_BS | 0xf));
        CHECK_EQ("ESP: the frame on the new task's stack", 0x70000 - 12, e.cpu->regs[R_ESP]);
        CHECK_EQ("return EIP: the new task's first instruction", CODE + 0x100, rd32(&e, 0x70000 - 12));
    }
}

static void test_pm32_gp_error_code_is_selector(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0xb8, 0x00, 0x01,   /* mov ax, 0x100 (beyond GDT limit) */
            0x8e, 0xd8,                         /* mov ds, ax */
            0xf4);
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EIP in #GP handler", HANDLERS + 13 * 16 + 1, e.cpu->rip);
    uint32_t sp = (uint32_t)e.cpu->regs[R_ESP];
    CHECK_EQ("ESP", 0x80000 - 16, sp);
    CHECK_EQ("error code", 0x100, rd32(&e, sp));
    CHECK_EQ("pushed EIP = faulting instruction", CODE + 4, rd32(&e, sp + 4));
    CHECK_EQ("pushed CS", 0x08, rd32(&e, sp + 8));
    CHECK_MSG(!(cpu_get_eflags(e.cpu) & FL_IF), "interrupt gate clears IF");
}

static void test_pm32_not_present_segment_np(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0xb8, 0x50, 0x00, 0x8e, 0xe0, 0xf4);   /* mov ax,0x50; mov fs,ax */
    setup_pm32(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_NP, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0x50, e.cpu->stopped_err);
    CHECK_EQ("EIP at faulting instruction", CODE + 4, e.cpu->rip);
}

static void test_pm32_limit_violation_and_expand_up(void)
{
    Env e = env_new();
    /* ES = 0x40 (base 1 MiB, limit FFFh); read es:[0xffc] ok, es:[0xffd] dword -> #GP(0). */
    CODE_AT(&e, CODE, 0x66, 0xb8, 0x40, 0x00, 0x8e, 0xc0,      /* mov ax,0x40; mov es,ax */
            0x26, 0x8b, 0x1d, 0xfc, 0x0f, 0x00, 0x00,           /* mov ebx, es:[0xffc] */
            0x26, 0x8b, 0x0d, 0xfd, 0x0f, 0x00, 0x00,           /* mov ecx, es:[0xffd] */
            0xf4);
    st32_le(e.ram + 0x100ffc, 0xcafef00d);
    setup_pm32(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("EBX read inside the limit", 0xcafef00d, e.cpu->regs[R_EBX]);
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0, e.cpu->stopped_err);
    CHECK_EQ("EIP", CODE + 13, e.cpu->rip);
}

static void test_pm32_int_from_ring3_switches_stack(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xcd, 0x80, 0xf4);        /* int 0x80 (gate DPL 3) */
    setup_pm32(&e);
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    s.rflags = 0x202;
    cpu_from_x86_state(e.cpu, &s);
    CHECK_EQ("CPL before", 3, e.cpu->cpl);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("CPL in handler", 0, e.cpu->cpl);
    CHECK_EQ("SS from TSS", 0x10, e.cpu->seg[SEG_SS].sel);
    uint32_t sp = (uint32_t)e.cpu->regs[R_ESP];
    CHECK_EQ("ESP = esp0 - 20", 0x90000 - 20, sp);
    CHECK_EQ("frame EIP", CODE + 2, rd32(&e, sp));
    CHECK_EQ("frame CS", 0x2b, rd32(&e, sp + 4));
    CHECK_EQ("frame EFLAGS", 0x202, rd32(&e, sp + 8) & 0xfff);
    CHECK_EQ("frame ESP", 0x80000, rd32(&e, sp + 12));
    CHECK_EQ("frame SS", 0x33, rd32(&e, sp + 16));
}

/*
 * CPL 3 with CR0.AM and EFLAGS.AC translates through the MMU_USER_AC TLB
 * set, which is never filled (cpu.h): it must start invalid, or an empty
 * entry's zero tag matches linear page 0 and the access would go to host
 * address 0 instead of guest memory.
 */
static void test_alignment_check_set_starts_invalid(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00,     /* mov eax, [0x10] */
            0x8b, 0x1d, 0x14, 0x00, 0x00, 0x00,               /* mov ebx, [0x14] */
            0xf4);                                            /* hlt: #GP at CPL 3 */
    setup_pm32(&e);
    uint32_t want_a = rd32(&e, 0x10), want_b = rd32(&e, 0x14);
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    s.rflags = 0x40002;                                       /* AC */
    s.cr0 |= X86_CR0_AM;
    cpu_from_x86_state(e.cpu, &s);
    CHECK_EQ("MMU_USER_AC in use", MMU_USER_AC, e.cpu->mmu_idx);
    e.cpu->regs[R_EAX] = e.cpu->regs[R_EBX] = 0xdeadbeef;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("stopped at the HLT (#GP)", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("EAX = guest dword at 0x10", want_a, e.cpu->regs[R_EAX]);
    CHECK_EQ("EBX = guest dword at 0x14", want_b, e.cpu->regs[R_EBX]);
}

static void test_pm32_int_gate_dpl_blocks_ring3(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xcd, 0x21, 0xf4);        /* int 0x21: gate DPL 0 from CPL 3 */
    setup_pm32(&e);
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    cpu_from_x86_state(e.cpu, &s);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("error code = vector*8+2", 0x21 * 8 + 2, e.cpu->stopped_err);
}

static void test_pm32_triple_fault_shuts_down(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x0b);      /* ud2 */
    setup_pm32(&e);
    e.cpu->idt.limit = 0;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(e.cpu->shutdown, "triple fault must shut the CPU down");
}

static void test_pm32_far_jump_to_16bit_and_back(void)
{
    Env e = env_new();
    /* jmp 0x20:0x100 (16-bit code), there: mov ax, 0x1234; jmp dword 0x08:CODE+0x200 */
    CODE_AT(&e, CODE, 0xea, 0x00, 0x01, 0x00, 0x00, 0x20, 0x00);
    CODE_AT(&e, 0x100, 0xb8, 0x34, 0x12, 0x66, 0xea, 0x00, 0x02, 0x01, 0x00, 0x08, 0x00);
    CODE_AT(&e, CODE + 0x200, 0xf4);
    setup_pm32(&e);
    e.cpu->regs[R_EAX] = 0xffff0000;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AX written by 16-bit code", 0xffff1234, e.cpu->regs[R_EAX]);
    CHECK_EQ("CS", 0x08, e.cpu->seg[SEG_CS].sel);
    CHECK_EQ("EIP", CODE + 0x201, e.cpu->rip);
}

/* ---------------- paging ---------------- */

#define PDIR 0x20000u
#define PTAB 0x21000u
static void setup_paging32(Env *e)
{
    setup_pm32(e);
    st32_le(e->ram + PDIR, PTAB | 7);
    for (unsigned i = 0; i < 1024; i++)
        st32_le(e->ram + PTAB + 4 * i, (i << 12) | 3);
    st32_le(e->ram + PTAB + 4 * 0x300, 0x300000 | 1);     /* read-only */
    st32_le(e->ram + PTAB + 4 * 0x301, 0);                /* not present */
    st32_le(e->ram + PTAB + 4 * 0x302, 0x302000 | 7);     /* user page */
    e->cpu->cr3 = PDIR;
    CHECK(cpu_write_cr0(e->cpu, e->cpu->cr0 | X86_CR0_PG | X86_CR0_WP));
}

static void test_paging32_write_to_readonly_page(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xc7, 0x05, 0x00, 0x00, 0x30, 0x00, 0x01, 0x00, 0x00, 0x00, 0xf4);
    setup_paging32(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code P|W", PFERR_P | PFERR_W, e.cpu->stopped_err);
    CHECK_EQ("CR2", 0x300000, e.cpu->cr2);
}

static void test_paging32_wp0_lets_supervisor_write(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xc7, 0x05, 0x00, 0x00, 0x30, 0x00, 0x2a, 0x00, 0x00, 0x00, 0xf4);
    setup_paging32(&e);
    CHECK(cpu_write_cr0(e.cpu, e.cpu->cr0 & ~(uint64_t)X86_CR0_WP));
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("memory written", 0x2a, rd32(&e, 0x300000));
}

static void test_paging32_not_present_read(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xa1, 0x04, 0x10, 0x30, 0x00, 0xf4);      /* mov eax, [0x301004] */
    setup_paging32(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0, e.cpu->stopped_err);
    CHECK_EQ("CR2", 0x301004, e.cpu->cr2);
}

static void test_paging32_user_fetch_from_supervisor_page(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xf4);
    setup_paging32(&e);
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    cpu_from_x86_state(e.cpu, &s);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code P|U", PFERR_P | PFERR_U, e.cpu->stopped_err);
    CHECK_EQ("CR2", CODE, e.cpu->cr2);
}

static void test_paging32_sets_accessed_and_dirty(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xa1, 0x00, 0x00, 0x10, 0x00,            /* mov eax, [0x100000] */
            0xa3, 0x00, 0x10, 0x10, 0x00,                       /* mov [0x101000], eax */
            0xf4);
    setup_paging32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("PDE.A", 0x20, rd32(&e, PDIR) & 0x20);
    CHECK_EQ("read page: A=1 D=0", 0x20, rd32(&e, PTAB + 4 * 0x100) & 0x60);
    CHECK_EQ("written page: A=1 D=1", 0x60, rd32(&e, PTAB + 4 * 0x101) & 0x60);
}

static void test_paging32_invlpg_and_stale_tlb(void)
{
    Env e = env_new();
    /* Read [0x302000] (maps 0x302000), remap PTE to 0x100000 without INVLPG, read again
     * (stale value is allowed and expected from our TLB), INVLPG, read again. */
    CODE_AT(&e, CODE,
            0x8b, 0x1d, 0x00, 0x20, 0x30, 0x00,                 /* mov ebx, [0x302000] */
            0xc7, 0x05, 0x08, 0x1c, 0x02, 0x00, 0x03, 0x00, 0x10, 0x00, /* mov [PTAB+0x302*4], 0x100003 */
            0x8b, 0x0d, 0x00, 0x20, 0x30, 0x00,                 /* mov ecx, [0x302000] */
            0x0f, 0x01, 0x3d, 0x00, 0x20, 0x30, 0x00,           /* invlpg [0x302000] */
            0x8b, 0x15, 0x00, 0x20, 0x30, 0x00,                 /* mov edx, [0x302000] */
            0xf4);
    st32_le(e.ram + 0x302000, 0x11111111);
    st32_le(e.ram + 0x100000, 0x22222222);
    setup_paging32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EBX old mapping", 0x11111111, e.cpu->regs[R_EBX]);
    CHECK_EQ("ECX stale TLB entry", 0x11111111, e.cpu->regs[R_ECX]);
    CHECK_EQ("EDX after INVLPG", 0x22222222, e.cpu->regs[R_EDX]);
}

static void test_paging32_pse_4mb_page(void)
{
    Env e = env_new();
    /* PDE[1] = 4 MiB page at physical 0 (PS=1): linear 0x400000 aliases 0. */
    CODE_AT(&e, CODE, 0xa1, 0x00, 0x01, 0x40, 0x00, 0xf4);     /* mov eax, [0x400100] */
    st32_le(e.ram + 0x100, 0x5a5a5a5a);
    setup_paging32(&e);
    st32_le(e.ram + PDIR + 4, 0x000000 | 0x83);
    CHECK(cpu_write_cr4(e.cpu, X86_CR4_PSE));
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX through the 4 MiB page", 0x5a5a5a5a, e.cpu->regs[R_EAX]);
    CHECK_EQ("PDE.A", 0x20, rd32(&e, PDIR + 4) & 0x20);
}

static void test_pae_paging_and_pdpte_load(void)
{
    Env e = env_new();
    /* PAE: PDPT at 0x30000 (32-byte aligned), PD at 0x31000 with 2 MiB pages;
     * linear 0x40200000 (PDPT[1], PD[1]) maps physical 0x200000. */
    CODE_AT(&e, CODE, 0xa1, 0x10, 0x00, 0x20, 0x40, 0xf4);     /* mov eax, [0x40200010] */
    st32_le(e.ram + 0x200010, 0x600dcafe);
    setup_pm32(&e);
    st64_le(e.ram + 0x30000, 0x32000 | 1);      /* PDPT[0] -> identity PD */
    st64_le(e.ram + 0x30008, 0x31000 | 1);      /* PDPT[1] */
    st64_le(e.ram + 0x32000, 0x000000 | 0x83);  /* 0-2 MiB identity (code) */
    st64_le(e.ram + 0x31008, 0x200000 | 0x83);
    e.cpu->cr3 = 0x30000;
    CHECK(cpu_write_cr4(e.cpu, X86_CR4_PAE));
    CHECK(cpu_write_cr0(e.cpu, e.cpu->cr0 | X86_CR0_PG));
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX", 0x600dcafe, e.cpu->regs[R_EAX]);
    /* A PDPTE with reserved bits makes MOV CR3 fail (#GP). */
    st64_le(e.ram + 0x30010, 0x33000 | 1 | (1u << 5));
    CHECK_MSG(!cpu_write_cr3(e.cpu, 0x30000), "reserved PDPTE bit must refuse the CR3 load");
}

/*
 * The jump cache maps linear PCs to blocks; a CR3 write or INVLPG forgets
 * it by a new generation instead of clearing it (cpu.h cpu_jc_flush).  The
 * same linear page remapped to other code must run the new code after
 * either, and a jump cache entry of an old generation must never be used.
 */
static void test_jump_cache_forgets_remapped_code(void)
{
    Env e = env_new();
    setup_paging32(&e);
    const uint8_t one[] = { 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4 };   /* mov eax, 1; hlt */
    const uint8_t two[] = { 0xb8, 0x02, 0x00, 0x00, 0x00, 0xf4 };   /* mov eax, 2; hlt */
    const uint8_t three[] = { 0xb8, 0x03, 0x00, 0x00, 0x00, 0xf4 };
    put(&e, 0x302000, one, sizeof(one));
    put(&e, 0x100000, two, sizeof(two));
    put(&e, 0x101000, three, sizeof(three));
    for (int pass = 0; pass < 2; pass++) {      /* the second pass finds the blocks cached */
        st32_le(e.ram + PTAB + 4 * 0x302, 0x302000 | 3);
        CHECK(cpu_write_cr3(e.cpu, e.cpu->cr3));
        e.cpu->rip = 0x302000;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("EAX from the first mapping", 1, e.cpu->regs[R_EAX]);
        st32_le(e.ram + PTAB + 4 * 0x302, 0x100000 | 3);
        CHECK(cpu_write_cr3(e.cpu, e.cpu->cr3));
        e.cpu->rip = 0x302000;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("EAX after remap + CR3 write", 2, e.cpu->regs[R_EAX]);
        st32_le(e.ram + PTAB + 4 * 0x302, 0x101000 | 3);
        tlb_flush_page(e.cpu, 0x302000);        /* what INVLPG does */
        e.cpu->rip = 0x302000;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("EAX after remap + INVLPG", 3, e.cpu->regs[R_EAX]);
    }
}

/*
 * A CR3 write makes every link and jump-cache entry stale (cpu.h
 * cpu_jc_flush); a near branch then finds the next block by the run loop's
 * lookup, done in place (tcg-accel.c tcg_chain_lookup): through the TLB as
 * refilled after the write, so a remapped target runs its new code, a
 * not-present one faults at the target (CR2 and the saved RIP are the
 * target, as for any fetch), and a block already translated is entered
 * without going back to the run loop (its exec_count stays).
 */
static void test_branch_after_cr3_write_looks_up_in_place(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x22, 0xd8,                 /* mov cr3, eax */
            0xe9, 0xf8, 0x4f, 0x2f, 0x00);              /* jmp 0x305000 */
    CODE_AT(&e, 0x305000, 0xbb, 0x01, 0x00, 0x00, 0x00, 0xf4);     /* mov ebx, 1; hlt */
    CODE_AT(&e, 0x306000, 0xbb, 0x02, 0x00, 0x00, 0x00, 0xf4);     /* mov ebx, 2; hlt */
    setup_paging32(&e);
    static const uint32_t target[] = { 0x306000, 0x305000, 0x306000, 0x305000, 0x306000 };
    for (unsigned pass = 0; pass < ARRAY_LEN(target); pass++) {
        st32_le(e.ram + PTAB + 4 * 0x305, target[pass] | 3);
        e.cpu->regs[R_EAX] = PDIR;
        e.cpu->regs[R_EBX] = 0;
        e.cpu->rip = CODE;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("EBX from the page mapped at the CR3 write", target[pass] == 0x305000 ? 1 : 2,
                 e.cpu->regs[R_EBX]);
    }
    TranslatedBlock *t1 = tb_find(0x305000, TB_FLAG_CODE32), *t2 = tb_find(0x306000, TB_FLAG_CODE32);
    CHECK_MSG(t1 && t2, "both targets translated");
    if (t1 && t2) {
        CHECK_EQ("0x305000 entered from the run loop once", 1, t1->exec_count);
        CHECK_EQ("0x306000 entered from the run loop once", 1, t2->exec_count);
    }
    st32_le(e.ram + PTAB + 4 * 0x305, 0);
    e.cpu->regs[R_EAX] = PDIR;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code: fetch, not present", 0, e.cpu->stopped_err);
    CHECK_EQ("CR2", 0x305000, e.cpu->cr2);
    CHECK_EQ("RIP: the target", 0x305000, e.cpu->rip);
}

/*
 * A block with more direct exits than link slots shares them (exec.c
 * tcg_specialize: slot = exit index % TB_LINKS_DIRECT).  Two hot exits in
 * one slot take turns through the jump cache (exec.c exit_jc_find), not
 * through the run loop: their targets keep the exec_count of their first
 * entry, and the loop computes what it should.
 */
static void test_direct_exits_sharing_a_link_slot(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0xf6, 0xc3, 0x01,                   /* X: test bl, 1 */
            0x75, 0x24,                         /* jnz T1 (exit 0, slot 0) */
            0x3d, 0x39, 0x30, 0x00, 0x00,       /* cmp eax, 12345 */
            0x74, 0x30, 0x74, 0x2e, 0x74, 0x2c, 0x74, 0x2a, 0x74, 0x28,   /* 5 x je BAD (slots 1-5) */
            0xe9, 0x18, 0x00, 0x00, 0x00);      /* jmp T2 (exit 6, slot 0) */
    CODE_AT(&e, CODE + 0x29, 0xfe, 0xc3, 0x49, 0x75, 0xd2, 0xf4);    /* T1: inc bl; dec ecx; jnz X; hlt */
    CODE_AT(&e, CODE + 0x31, 0xfe, 0xc3, 0x49, 0x75, 0xca, 0xf4);    /* T2: the same */
    CODE_AT(&e, CODE + 0x3c, 0xcc);             /* BAD: int3 */
    setup_pm32(&e);
    e.cpu->regs[R_ECX] = 200;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("ECX", 0, e.cpu->regs[R_ECX]);
    CHECK_EQ("BL: one per pass", 200, e.cpu->regs[R_EBX] & 0xff);
    CHECK_EQ("RIP after the HLT of T1 (odd last pass)", CODE + 0x2f, e.cpu->rip);
    TranslatedBlock *t1 = tb_find(CODE + 0x29, TB_FLAG_CODE32);
    TranslatedBlock *t2 = tb_find(CODE + 0x31, TB_FLAG_CODE32);
    CHECK_MSG(t1 && t2, "both targets translated");
    if (t1 && t2) {
        CHECK_MSG(t1->exec_count <= 2, "T1 entered from the run loop %" PRIu64 " times", t1->exec_count);
        CHECK_MSG(t2->exec_count <= 2, "T2 entered from the run loop %" PRIu64 " times", t2->exec_count);
    }
}

/*
 * tlb_flush (a CR3 write) walks only the entries filled since the sets were
 * last empty (mmu.c tlb_filled), or every entry once more were filled than
 * it can list: either way a remapped page must read its new mapping after
 * the CR3 write, and a global one keeps the old (SDM 3A §4.10.4.1).
 */
static void test_tlb_flush_listed_and_overflowed(void)
{
    Env e = env_new();
    setup_paging32(&e);
    TCGCPU *c = e.cpu;
    st32_le(e.ram + 0x302000, 0x11111111);
    st32_le(e.ram + 0x100000, 0x22222222);
    st32_le(e.ram + 0x303000, 0x33333333);
    st32_le(e.ram + 0x101000, 0x44444444);
    st32_le(e.ram + PTAB + 4 * 0x303, 0x303000 | 0x103);   /* global */
    CHECK(cpu_write_cr4(c, X86_CR4_PGE));
    /* Listed: a few entries. */
    CHECK_EQ("old mapping", 0x11111111, sys_ld(c, 0x302000, 2));
    CHECK_EQ("global page", 0x33333333, sys_ld(c, 0x303000, 2));
    CHECK_MSG(c->tlb_filled_n[MMU_KERNEL] <= TLB_SIZE, "kernel set listed (%u)", c->tlb_filled_n[MMU_KERNEL]);
    st32_le(e.ram + PTAB + 4 * 0x302, 0x100000 | 7);
    st32_le(e.ram + PTAB + 4 * 0x303, 0x101000 | 0x103);
    CHECK(cpu_write_cr3(c, c->cr3));
    CHECK_EQ("listed flush: new mapping", 0x22222222, sys_ld(c, 0x302000, 2));
    CHECK_EQ("listed flush: global entry kept", 0x33333333, sys_ld(c, 0x303000, 2));
    /* Overflowed: every slot filled, some of them twice. */
    for (uint32_t p = 0; p < 0x400; p++)
        if (p != 0x300 + 1)
            (void)sys_ld(c, p << 12, 0);
    for (uint32_t p = 5; p < 9; p++) {
        tlb_flush_page(c, p << 12);
        (void)sys_ld(c, p << 12, 0);
    }
    CHECK_MSG(c->tlb_filled_n[MMU_KERNEL] > TLB_SIZE, "kernel set overflowed (%u)", c->tlb_filled_n[MMU_KERNEL]);
    st32_le(e.ram + PTAB + 4 * 0x302, 0x302000 | 7);
    CHECK(cpu_write_cr3(c, c->cr3));
    CHECK_EQ("full flush: mapping back", 0x11111111, sys_ld(c, 0x302000, 2));
    CHECK_EQ("full flush: global entry kept", 0x33333333, sys_ld(c, 0x303000, 2));
    CHECK_MSG(c->tlb_filled_n[MMU_KERNEL] <= TLB_SIZE, "listed again after the full walk (%u)",
              c->tlb_filled_n[MMU_KERNEL]);
    /* A global flush (CR4.PGE off) drops the global entry too. */
    CHECK(cpu_write_cr4(c, 0));
    CHECK_EQ("global flush: new global mapping", 0x44444444, sys_ld(c, 0x303000, 2));
}

static void test_global_page_survives_cr3_reload(void)
{
    Env e = env_new();
    /* Global mapping 0x302000 -> 0x302000; after remapping it and reloading CR3 the
     * stale (global) translation stays; a CR4.PGE toggle flushes it. */
    CODE_AT(&e, CODE,
            0x8b, 0x1d, 0x00, 0x20, 0x30, 0x00,                 /* mov ebx, [0x302000] */
            0xc7, 0x05, 0x08, 0x1c, 0x02, 0x00, 0x03, 0x00, 0x10, 0x00, /* remap PTE -> 0x100000 */
            0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8,                 /* mov eax,cr3; mov cr3,eax */
            0x8b, 0x0d, 0x00, 0x20, 0x30, 0x00,                 /* mov ecx, [0x302000] */
            0x0f, 0x20, 0xe0, 0x34, 0x80, 0x0f, 0x22, 0xe0,     /* mov eax,cr4; xor al,0x80; mov cr4,eax */
            0x8b, 0x15, 0x00, 0x20, 0x30, 0x00,                 /* mov edx, [0x302000] */
            0xf4);
    st32_le(e.ram + 0x302000, 0x11111111);
    st32_le(e.ram + 0x100000, 0x22222222);
    setup_paging32(&e);
    st32_le(e.ram + PTAB + 4 * 0x302, 0x302000 | 0x103);   /* G=1 */
    CHECK(cpu_write_cr4(e.cpu, X86_CR4_PGE));
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EBX", 0x11111111, e.cpu->regs[R_EBX]);
    CHECK_EQ("ECX: global entry kept across CR3 reload", 0x11111111, e.cpu->regs[R_ECX]);
    CHECK_EQ("EDX: flushed by the PGE toggle", 0x22222222, e.cpu->regs[R_EDX]);
}

static void test_long_mode_nx_fetch_fault(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xff, 0xe0);                  /* jmp rax */
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x150, 0x150003ull | (1ull << 63));
    e.cpu->regs[R_EAX] = 0x150000;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code P|I/D", PFERR_P | PFERR_ID, e.cpu->stopped_err);
    CHECK_EQ("RIP = target", 0x150000, e.cpu->rip);
}

static void test_long_mode_reserved_bit_fault(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x16, 0x00, 0xf4);   /* mov eax, [0x160000] */
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x160, 0x160003ull | (1ull << 45));     /* bit 45 > MAXPHYADDR */
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code P|RSVD", PFERR_P | PFERR_RSVD, e.cpu->stopped_err);
}

static void test_long_mode_exception_frame(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x0b);                  /* ud2 */
    setup_long64(&e);
    e.cpu->regs[R_ESP] = 0x80008;                   /* frame is aligned down to 16 */
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    uint64_t sp = e.cpu->regs[R_ESP];
    CHECK_EQ("RSP", 0x80000 - 40, sp);
    CHECK_EQ("RIP", CODE, rd64(&e, (uint32_t)sp));
    CHECK_EQ("CS", 0x18, rd64(&e, (uint32_t)sp + 8));
    CHECK_EQ("RSP saved", 0x80008, rd64(&e, (uint32_t)sp + 24));
    CHECK_EQ("SS saved", 0x10, rd64(&e, (uint32_t)sp + 32));
}

static void test_long_mode_syscall_sysret(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x05, 0xf4);            /* syscall; hlt (at CPL 3 -> #GP) */
    CODE_AT(&e, 0x12000, 0x48, 0x0f, 0x07);         /* sysretq */
    setup_long64(&e);
    e.cpu->star = (0x38ull << 48) | (0x18ull << 32);
    e.cpu->lstar = 0x12000;
    e.cpu->fmask = FL_IF;
    /* user access to the code page */
    st64_le(e.ram + PML4, PDPT | 7);
    st64_le(e.ram + PDPT, PD | 7);
    st64_le(e.ram + PD, PT | 7);
    st64_le(e.ram + PT + 8 * (CODE >> 12), CODE | 7);
    tlb_flush(e.cpu, true);
    cpu_set_eflags(e.cpu, FL_IF, FL_IF);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector (HLT at CPL 3)", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("RIP after syscall", CODE + 2, e.cpu->rip);
    CHECK_EQ("CPL", 3, e.cpu->cpl);
    CHECK_EQ("CS", 0x4b, e.cpu->seg[SEG_CS].sel);
    CHECK_EQ("SS", 0x43, e.cpu->seg[SEG_SS].sel);
    CHECK_EQ("RCX", CODE + 2, e.cpu->regs[R_ECX]);
    CHECK_MSG(e.cpu->regs[R_R11] & FL_IF, "R11 holds the old RFLAGS");
}

/*
 * A supervisor code page the kernel has just run is in the jump cache (and
 * linked), keyed by its linear PC: a CPL-3 jump to the same PC must still
 * fetch through the user TLB set and take #PF with U/S=0 (SDM 3A §4.6,
 * error code P|U|I/D), not run the kernel's block at CPL 3.
 */
static void test_user_jump_into_cached_supervisor_code_faults(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xff, 0xe0);                  /* user: jmp rax */
    CODE_AT(&e, 0x12000, 0x90, 0x48, 0x0f, 0x07);   /* kernel: nop; sysretq */
    setup_long64(&e);
    e.cpu->star = (0x38ull << 48) | (0x18ull << 32);
    st64_le(e.ram + PML4, PDPT | 7);
    st64_le(e.ram + PDPT, PD | 7);
    st64_le(e.ram + PD, PT | 7);
    st64_le(e.ram + PT + 8 * (CODE >> 12), CODE | 7);    /* 0x12000 stays supervisor-only */
    tlb_flush(e.cpu, true);
    for (int pass = 0; pass < 2; pass++) {      /* the second finds the blocks cached and linked */
        e.cpu->rip = 0x12000;
        e.cpu->regs[R_ECX] = CODE;
        e.cpu->regs[R_R11] = 2;
        e.cpu->regs[R_EAX] = 0x12000;
        e.cpu->stop_on_exception = true;
        CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
        CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
        CHECK_EQ("error code P|U|I/D", PFERR_P | PFERR_U | PFERR_ID, e.cpu->stopped_err);
        CHECK_EQ("CR2", 0x12000, e.cpu->cr2);
        CHECK_EQ("CPL", 3, e.cpu->cpl);
        /* Back to CPL 0 as the #PF delivery would have done. */
        X86CPUState s;
        cpu_to_x86_state(e.cpu, &s);
        seg_flat(&s.seg[SEG_CS], 0x18, 0xb, 0, true);
        seg_flat(&s.seg[SEG_SS], 0x10, 0x3, 0, false);
        cpu_from_x86_state(e.cpu, &s);
    }
}

/* ---------------- integer semantics and flags ---------------- */

static uint32_t run_flags64(const uint8_t *code, size_t n, uint64_t rax)
{
    Env e = env_new();
    put(&e, CODE, code, n);
    e.ram[CODE + n] = 0xf4;
    setup_long64(&e);
    e.cpu->regs[R_EAX] = rax;
    cpu_set_eflags(e.cpu, 0, CC_ALL);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    return arith_flags(&e) | (uint32_t)((e.cpu->regs[R_EAX] & 0xffff) << 16);
}

#define FLAGS64(rax, ...) ({ static const uint8_t c_[] = { __VA_ARGS__ }; run_flags64(c_, sizeof(c_), (rax)); })

static void test_flags_add_signed_overflow(void)
{
    /* add al, 1 with AL=7Fh -> 80h, OF SF AF set, ZF CF PF clear. */
    uint32_t r = FLAGS64(0x7f, 0x04, 0x01);
    CHECK_EQ("AL", 0x80, (r >> 16) & 0xff);
    CHECK_EQ("flags", CC_O | CC_S | CC_A, r & CC_ALL);
}

static void test_flags_inc_preserves_cf(void)
{
    uint32_t r = FLAGS64(0xff, 0xf9, 0xfe, 0xc0);       /* stc; inc al */
    CHECK_EQ("flags", CC_C | CC_Z | CC_A | CC_P, r & CC_ALL);
}

static void test_flags_sub_borrow(void)
{
    uint32_t r = FLAGS64(0, 0x2c, 0x01);                /* sub al, 1 */
    CHECK_EQ("AL", 0xff, (r >> 16) & 0xff);
    CHECK_EQ("flags", CC_C | CC_S | CC_A | CC_P, r & CC_ALL);
}

static void test_flags_shift_count_zero_changes_nothing(void)
{
    /* stc; mov cl, 0; shl eax, cl: flags stay exactly as STC left them. */
    uint32_t r = FLAGS64(0x1234, 0xf9, 0xb1, 0x00, 0xd3, 0xe0);
    CHECK_EQ("flags", CC_C, r & CC_ALL);
    CHECK_EQ("AX", 0x1234, r >> 16);
}

static void test_flags_shift_count_masked_to_5_bits(void)
{
    /* mov cl, 33; shl eax, cl == shl eax, 1 */
    uint32_t r = FLAGS64(0x4001, 0xb1, 0x21, 0xd3, 0xe0);
    CHECK_EQ("AX", 0x8002, r >> 16);
}

static void test_flags_rcl_8bit_count_9_is_identity(void)
{
    uint32_t r = FLAGS64(0x81, 0xf8, 0xb1, 0x09, 0xd2, 0xd0);   /* clc; mov cl,9; rcl al,cl */
    CHECK_EQ("AL", 0x81, (r >> 16) & 0xff);
    CHECK_EQ("CF", 0, r & CC_C);
}

static void test_flags_rcl_by_one(void)
{
    uint32_t r = FLAGS64(0x81, 0xf8, 0xd0, 0xd0);               /* clc; rcl al,1 */
    CHECK_EQ("AL", 0x02, (r >> 16) & 0xff);
    CHECK_EQ("CF", CC_C, r & CC_C);
    CHECK_EQ("OF = MSB xor CF", CC_O, r & CC_O);
}

static void test_flags_sar_keeps_sign(void)
{
    uint32_t r = FLAGS64(0x81, 0xd0, 0xf8);                     /* sar al,1 */
    CHECK_EQ("AL", 0xc0, (r >> 16) & 0xff);
    CHECK_EQ("CF", CC_C, r & CC_C);
    CHECK_EQ("OF", 0, r & CC_O);
}

static void test_flags_imul_overflow(void)
{
    uint32_t r = FLAGS64(0x10000, 0x0f, 0xaf, 0xc0);            /* imul eax, eax */
    CHECK_EQ("EAX low", 0, r >> 16);
    CHECK_EQ("CF|OF", CC_C | CC_O, r & (CC_C | CC_O));
}

static void test_flags_daa(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x04, 0x35, 0x27, 0xf4);          /* add al,35h; daa */
    setup_pm32(&e);
    e.cpu->regs[R_EAX] = 0x79;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AL (79+35 = 114 BCD)", 0x14, e.cpu->regs[R_EAX] & 0xff);
    CHECK_EQ("CF", CC_C, arith_flags(&e) & CC_C);
}

static void test_div_by_zero_raises_de(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x31, 0xc9, 0xf7, 0xf1, 0xf4);    /* xor ecx,ecx; div ecx */
    setup_long64(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_DE, e.cpu->stopped_vec);
    CHECK_EQ("RIP at DIV", CODE + 2, e.cpu->rip);
}

static void test_idiv_overflow_raises_de(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb8, 0x00, 0x00, 0x00, 0x80,     /* mov eax, 0x80000000 */
            0x99,                                       /* cdq */
            0xb9, 0xff, 0xff, 0xff, 0xff,               /* mov ecx, -1 */
            0xf7, 0xf9, 0xf4);                          /* idiv ecx */
    setup_long64(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_DE, e.cpu->stopped_vec);
}

static void test_string_rep_movsb_and_repe_cmpsb(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0xbe, 0x00, 0x00, 0x03, 0x00, 0xbf, 0x00, 0x10, 0x03, 0x00, 0xb9, 0x05, 0x00, 0x00, 0x00,
            0xf3, 0xa4,                                 /* rep movsb */
            0xbe, 0x00, 0x00, 0x03, 0x00, 0xbf, 0x00, 0x10, 0x03, 0x00, 0xb9, 0x05, 0x00, 0x00, 0x00,
            0xf3, 0xa6,                                 /* repe cmpsb */
            0xf4);
    put(&e, 0x30000, "hello", 5);
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK(memcmp(e.ram + 0x31000, "hello", 5) == 0);
    CHECK_EQ("ECX", 0, e.cpu->regs[R_ECX]);
    CHECK_EQ("ESI", 0x30005, e.cpu->regs[R_ESI]);
    CHECK_EQ("ZF", CC_Z, arith_flags(&e) & CC_Z);
}

static void test_string_repne_scasb_stops_on_match(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xbf, 0x00, 0x00, 0x03, 0x00, 0xb9, 0x10, 0x00, 0x00, 0x00,
            0xb0, 'l', 0xf2, 0xae, 0xf4);               /* mov al,'l'; repne scasb */
    put(&e, 0x30000, "hello", 5);
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EDI just past the match", 0x30003, e.cpu->regs[R_EDI]);
    CHECK_EQ("ECX", 0x10 - 3, e.cpu->regs[R_ECX]);
}

static void test_self_modifying_code_in_same_block(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xc6, 0x05, 0x08, 0x00, 0x01, 0x00, 0x2a,   /* mov byte [CODE+8], 0x2a */
            0xb0, 0x01,                                         /* mov al, 1 (imm patched) */
            0xf4);
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AL", 0x2a, e.cpu->regs[R_EAX] & 0xff);
}

/*
 * Block chaining: a two-instruction loop block runs through its own link;
 * the block budget still counts every block exactly, as do RIP and icount.
 */
static void test_chained_blocks_respect_the_budget(void)
{
    Env e = env_new();
    CODE_AT(&e, 0x7c00, 0x40,                   /* L: inc ax */
            0xeb, 0xfd);                        /* jmp L */
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_BUDGET, tcg_cpu_exec(e.cpu, 1000));
    CHECK_EQ("AX = one per block", 1000, e.cpu->regs[R_EAX] & 0xffff);
    CHECK_EQ("icount", 2000, e.cpu->icount);
    CHECK_EQ("IP back at the loop", 0x7c00, e.cpu->rip);
    CHECK_EQ("run result (again)", TCG_RUN_BUDGET, tcg_cpu_exec(e.cpu, 1));
    CHECK_EQ("AX after one more block", 1001, e.cpu->regs[R_EAX] & 0xffff);
}

/*
 * A block reached through a link of its predecessor rewrites its own
 * immediate each pass: the link must not lead to the stale translation.
 */
static void test_chained_block_rewritten_by_itself(void)
{
    Env e = env_new();
    CODE_AT(&e, 0x7c00, 0x83, 0xc3, 0x01,       /* A: add bx, 1 */
            0xeb, 0x1b);                        /* jmp B (0x7c20) */
    CODE_AT(&e, 0x7c20, 0xb8, 0x00, 0x00,       /* B: mov ax, imm16 (patched) */
            0x89, 0x1e, 0x21, 0x7c,             /* mov [0x7c21], bx */
            0x83, 0xfb, 0x32,                   /* cmp bx, 50 */
            0x75, 0xd4,                         /* jne A */
            0xf4);                              /* hlt */
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("BX", 50, e.cpu->regs[R_EBX] & 0xffff);
    CHECK_EQ("AX = immediate stored by the previous pass", 49, e.cpu->regs[R_EAX] & 0xffff);
}

/*
 * 64-bit blocks go on past a direct JMP forward in the same page (decode.c):
 * the loop below, whose body jumps over a gap, is one block (its JNZ jumps
 * back inside it), and each op keeps its own address, so a #PF after the
 * gap reports the faulting instruction (SDM 3A §6.5: a fault's saved RIP is
 * that of the instruction) and instructions are counted one by one.
 */
static void test_followed_jmp_keeps_rip_and_icount(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb9, 0x05, 0x00, 0x00, 0x00,    /* mov ecx, 5 */
            0xeb, 0x08,                                 /* L: jmp F (followed) */
            0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4,     /* never run */
            0xff, 0xc9,                                 /* F: dec ecx */
            0x75, 0xf2,                                 /* jnz L (back into the block) */
            0x8b, 0x03,                                 /* mov eax, [rbx]: #PF */
            0xf4);
    setup_long64(&e);
    e.cpu->regs[R_EBX] = 0x800000;                      /* PD entry 4: not present */
    e.cpu->regs[R_EAX] = 0x1234;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("RIP: in the #PF handler", HANDLERS + 14 * 16 + 1, e.cpu->rip);
    uint64_t sp = e.cpu->regs[R_ESP];
    CHECK_EQ("#PF error code: read, not present", 0, rd64(&e, (uint32_t)sp));
    CHECK_EQ("#PF saved RIP: the load after the gap", CODE + 0x13, rd64(&e, (uint32_t)sp + 8));
    CHECK_EQ("CR2", 0x800000, e.cpu->cr2);
    CHECK_EQ("ECX: five passes", 0, e.cpu->regs[R_ECX]);
    CHECK_EQ("EAX untouched by the faulting load", 0x1234, e.cpu->regs[R_EAX]);
    /* Again with the load mapped: mov, 5 x (jmp, dec, jnz), mov, hlt. */
    st32_le(e.ram + 0x9000, 0xabcd);
    e.cpu->regs[R_EBX] = 0x9000;
    e.cpu->regs[R_ESP] = 0x80000;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    uint64_t icount0 = e.cpu->icount;
    CHECK_EQ("run result (mapped)", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX loaded", 0xabcd, e.cpu->regs[R_EAX]);
    CHECK_EQ("RIP after the HLT", CODE + 0x16, e.cpu->rip);
    CHECK_EQ("icount", 18, e.cpu->icount - icount0);
    TranslatedBlock *tb = tb_find(CODE, TB_FLAG_CODE64);
    CHECK(tb != NULL);
    if (tb) {
        CHECK_EQ("ops in the block (the JMP followed)", 6, tb->n_ops);
        CHECK_EQ("bytes the block spans", 0x16, tb->size);
    }
}

/* A store into an instruction after a followed JMP stops the block there (tb_kill). */
static void test_followed_jmp_block_rewritten_by_itself(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xc6, 0x05, 0x07, 0x00, 0x00, 0x00, 0x2a,    /* mov byte [rip+7], 0x2a */
            0xeb, 0x04,                                 /* jmp F */
            0xf4, 0xf4, 0xf4, 0xf4,
            0xb0, 0x01,                                 /* F: mov al, 1 (imm patched) */
            0xf4);
    setup_long64(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("AL", 0x2a, e.cpu->regs[R_EAX] & 0xff);
    CHECK_EQ("RIP after the HLT", CODE + 0x10, e.cpu->rip);
}

/*
 * A function returning to more call sites than a block has shared link
 * slots (tb.h TB_LINKS): the RETs that miss them chain through the jump
 * cache (exec.c exit_jc_find) and must land on each call's own return.
 */
static void test_ret_to_many_call_sites(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x31, 0xc0,                       /* xor eax, eax */
            0xb9, 0x0a, 0x00, 0x00, 0x00,               /* mov ecx, 10 */
            0xe8, 0x34, 0x00, 0x00, 0x00,               /* L: call f */
            0x83, 0xc0, 0x10,                           /* add eax, 16 */
            0xe8, 0x2c, 0x00, 0x00, 0x00,               /* call f */
            0x83, 0xc0, 0x20,                           /* add eax, 32 */
            0xe8, 0x24, 0x00, 0x00, 0x00,               /* call f */
            0x83, 0xc0, 0x40,                           /* add eax, 64 */
            0xe8, 0x1c, 0x00, 0x00, 0x00,               /* call f */
            0xff, 0xc9,                                 /* dec ecx */
            0x75, 0xdf,                                 /* jnz L */
            0xf4);
    CODE_AT(&e, CODE + 0x40, 0x83, 0xc0, 0x01,          /* f: add eax, 1 */
            0xc3);                                      /* ret */
    setup_long64(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX: 10 x (4 calls + 16 + 32 + 64)", 10 * (4 + 16 + 32 + 64), e.cpu->regs[R_EAX]);
    CHECK_EQ("RSP balanced", 0x80000, e.cpu->regs[R_ESP]);
    CHECK_EQ("RIP after the HLT", CODE + 0x29, e.cpu->rip);
}

/*
 * Op links (exec.c op_link_fill): two 64-bit blocks on one page branch to
 * each other, a taken JNZ forward and a JMP back, so after the first
 * passes every transition goes through the branch op's own link.  Each
 * still counts as a block against the budget, and icount and RIP stay
 * exact when the budget ends the run.
 */
#define OPLINK_LOOP(e) CODE_AT((e), CODE, 0xff, 0xc0,  /* L1: inc eax */ \
            0x85, 0xc0,                                 /* test eax, eax */ \
            0x75, 0x3a,                                 /* jnz L2 */ \
            0xf4);                                      /* hlt */ \
    CODE_AT((e), CODE + 0x40, 0xff, 0xc3,               /* L2: inc ebx */ \
            0xeb, 0xbc)                                 /* jmp L1 */
static void test_op_linked_loop_counts_blocks(void)
{
    Env e = env_new();
    OPLINK_LOOP(&e);
    setup_long64(&e);
    CHECK_EQ("run result", TCG_RUN_BUDGET, tcg_cpu_exec(e.cpu, 100000));
    CHECK_EQ("EAX: one per L1 block", 50000, e.cpu->regs[R_EAX]);
    CHECK_EQ("EBX: one per L2 block", 50000, e.cpu->regs[R_EBX]);
    CHECK_EQ("icount: 3 + 2 per round", 250000, e.cpu->icount);
    CHECK_EQ("RIP at L1", CODE, e.cpu->rip);
    CHECK_EQ("run result (one more block)", TCG_RUN_BUDGET, tcg_cpu_exec(e.cpu, 1));
    CHECK_EQ("EAX after one more block", 50001, e.cpu->regs[R_EAX]);
    CHECK_EQ("RIP at L2", CODE + 0x40, e.cpu->rip);
}

/*
 * The same loop with IF=1 never returns to the run loop by itself: an
 * interrupt raised from another thread (tcg_raise_interrupt_check, as a
 * device thread does) must stop its op-linked transitions at the next
 * block boundary and be delivered there, long before the budget runs out.
 */
static int fake_irq_pending;
static int fake_irq_acks;
static bool fake_pending(void *opaque, int cpu_id);
static int fake_ack(void *opaque, int cpu_id);

static gpointer raise_irq_later(gpointer data)
{
    (void)data;
    g_usleep(20000);
    __atomic_store_n(&fake_irq_pending, 1, __ATOMIC_RELEASE);
    tcg_raise_interrupt_check();
    return NULL;
}

static void test_op_linked_loop_takes_interrupt(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    OPLINK_LOOP(&e);
    setup_long64(&e);
    e.cpu->eflags |= FL_IF;
    fake_irq_pending = 0;
    fake_irq_acks = 0;
    tcg_set_interrupt_controller(&ic);
    GThread *t = g_thread_new("raise-irq", raise_irq_later, NULL);
    TCGRunResult r;
    int rounds = 0;
    do {
        r = tcg_cpu_exec(e.cpu, 50000000);      /* seconds of looping: far past the IRQ */
    } while (r == TCG_RUN_EXIT && ++rounds < 1000);
    g_thread_join(t);
    tcg_set_interrupt_controller(NULL);
    CHECK_EQ("run result: halted in the handler", TCG_RUN_HALTED, r);
    CHECK_EQ("acks", 1, fake_irq_acks);
    CHECK_EQ("RIP in the vector 0x20 handler", HANDLERS + 0x20 * 16 + 1, e.cpu->rip);
    uint64_t ret = rd64(&e, (uint32_t)e.cpu->regs[R_ESP]);
    CHECK(ret == CODE || ret == CODE + 0x40);
    /* At L1, both blocks ran as often; at L2, L1 once more. */
    CHECK_EQ("EAX - EBX matches the return RIP", ret == CODE ? 0 : 1,
             e.cpu->regs[R_EAX] - e.cpu->regs[R_EBX]);
}

/*
 * L1's JNZ is op linked to L2, which rewrites its own immediate every 64th
 * pass (40000 passes): every pass must run the immediate last stored.  The
 * run loop frees the dead blocks in batches meanwhile (tb_reap_batch), so
 * an op link that outlived its block would lead into freed memory: at the
 * end the JNZ's op link, if it still counts (tb_link_epoch), must be the
 * live block at its target.
 */
static void test_op_linked_block_rewritten(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xff, 0xc3,                       /* L1: inc ebx */
            0x81, 0xfb, 0x40, 0x9c, 0x00, 0x00,         /* cmp ebx, 40000 */
            0x75, 0x36,                                 /* jne L2 */
            0xf4);                                      /* hlt */
    CODE_AT(&e, CODE + 0x40, 0xb8, 0x00, 0x00, 0x00, 0x00,  /* L2: mov eax, imm32 (patched) */
            0x01, 0xc1,                                 /* add ecx, eax */
            0xf6, 0xc3, 0x3f,                           /* test bl, 63 */
            0x75, 0x06,                                 /* jnz skip */
            0x89, 0x1d, 0xef, 0xff, 0xff, 0xff,         /* mov [rip - 17], ebx: the imm32 */
            0xeb, 0xac);                                /* skip: jmp L1 */
    setup_long64(&e);
    TCGRunResult r;
    int rounds = 0;
    do {
        r = tcg_cpu_exec(e.cpu, 1000000);
    } while ((r == TCG_RUN_EXIT || r == TCG_RUN_BUDGET) && ++rounds < 100);
    CHECK_EQ("run result", TCG_RUN_HALTED, r);
    CHECK_EQ("EBX", 40000, e.cpu->regs[R_EBX]);
    CHECK_EQ("ECX = sum of 64 * ((k - 1) / 64), k < 40000", 798680064, e.cpu->regs[R_ECX]);
    CHECK_EQ("EAX = the last immediate stored", 39936, e.cpu->regs[R_EAX]);
    CHECK_EQ("RIP after the HLT", CODE + 0x0b, e.cpu->rip);
    TranslatedBlock *l1 = tb_find(CODE, TB_FLAG_CODE64);
    CHECK(l1 != NULL);
    if (l1) {
        const DecodedOp *jne = &l1->ops[2];
        CHECK_EQ("L1's third op is the JNZ", OP_JNZ, jne->idx);
        if (jne->link_epoch == __atomic_load_n(&tb_link_epoch, __ATOMIC_ACQUIRE))
            CHECK(jne->link_tb == tb_find(CODE + 0x40, TB_FLAG_CODE64));
    }
}

/*
 * Return prediction (exec.c ras_push): a callee that moves its return
 * address on (add qword [rsp], 3) must return there, not to the address
 * the CALL pushed; a recursion deeper than the prediction stack
 * (RAS_SIZE) returns through every level.  Twice, the second time with
 * every link and prediction in place; icount is exact both times.
 */
static void test_return_prediction_checks_the_address(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb9, 0x0a, 0x00, 0x00, 0x00,    /* mov ecx, 10 */
            0xe8, 0x36, 0x00, 0x00, 0x00,               /* L: call skip */
            0x83, 0xc0, 0x10,                           /* add eax, 16 (skipped) */
            0x83, 0xc0, 0x01,                           /* add eax, 1 */
            0xff, 0xc9,                                 /* dec ecx */
            0x75, 0xf1,                                 /* jnz L */
            0xbf, 0x28, 0x00, 0x00, 0x00,               /* mov edi, 40 */
            0xe8, 0x42, 0x00, 0x00, 0x00,               /* call rec */
            0xf4);                                      /* hlt */
    CODE_AT(&e, CODE + 0x40, 0x48, 0x83, 0x04, 0x24, 0x03,  /* skip: add qword [rsp], 3 */
            0xc3);                                      /* ret */
    CODE_AT(&e, CODE + 0x60, 0xff, 0xc2,                /* rec: inc edx */
            0xff, 0xcf,                                 /* dec edi */
            0x74, 0x05,                                 /* jz out */
            0xe8, 0xf5, 0xff, 0xff, 0xff,               /* call rec */
            0xc3);                                      /* out: ret */
    setup_long64(&e);
    for (int pass = 0; pass < 2; pass++) {
        e.cpu->regs[R_EAX] = e.cpu->regs[R_EDX] = 0;
        e.cpu->regs[R_ESP] = 0x80000;
        e.cpu->rip = CODE;
        e.cpu->halted = false;
        uint64_t ic = e.cpu->icount;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("EAX: ten returns past the skipped ADD", 10, e.cpu->regs[R_EAX]);
        CHECK_EQ("EDX: forty levels", 40, e.cpu->regs[R_EDX]);
        CHECK_EQ("RSP balanced", 0x80000, e.cpu->regs[R_ESP]);
        CHECK_EQ("RIP after the HLT", CODE + 0x1f, e.cpu->rip);
        CHECK_EQ("icount", 263, e.cpu->icount - ic);
    }
}

/*
 * A predicted return must not outlive the mapping it was made under: on
 * its hundredth call the callee maps the caller's page to a copy whose
 * instruction after the CALL differs (ADD 127 instead of 1), then flushes
 * the TLB (CR3 reload, or INVLPG), and returns there: the copy must run
 * (SDM 3A §4.10.4.1), though the ninety-nine returns before made the
 * prediction for the old page.
 */
static void test_return_prediction_forgets_remapped_page(void)
{
    for (int invlpg = 0; invlpg < 2; invlpg++) {
        Env e = env_new();
        static const uint8_t caller[] = {
            0xb9, 0x64, 0x00, 0x00, 0x00,               /* mov ecx, 100 */
            0xe8, 0xf6, 0x0f, 0x00, 0x00,               /* L: call f (CODE + 0x1000) */
            0x83, 0xc0, 0x01,                           /* add eax, 1 (the copy: 127) */
            0xff, 0xc9,                                 /* dec ecx */
            0x75, 0xf4,                                 /* jnz L */
            0xf4,                                       /* hlt */
        };
        put(&e, CODE, caller, sizeof(caller));
        put(&e, 0x40000, caller, sizeof(caller));
        e.ram[0x40000 + 12] = 0x7f;
        if (!invlpg)
            CODE_AT(&e, CODE + 0x1000, 0x83, 0xf9, 0x01,    /* f: cmp ecx, 1 */
                    0x75, 0x12,                             /* jne out */
                    0x48, 0xc7, 0x04, 0x25, 0x80, 0x30, 0x02, 0x00,
                    0x03, 0x00, 0x04, 0x00,                 /* mov qword [PT + 8 * 0x10], 0x40003 */
                    0x0f, 0x20, 0xda,                       /* mov rdx, cr3 */
                    0x0f, 0x22, 0xda,                       /* mov cr3, rdx */
                    0xc3);                                  /* out: ret */
        else
            CODE_AT(&e, CODE + 0x1000, 0x83, 0xf9, 0x01,    /* f: cmp ecx, 1 */
                    0x75, 0x14,                             /* jne out */
                    0x48, 0xc7, 0x04, 0x25, 0x80, 0x30, 0x02, 0x00,
                    0x03, 0x00, 0x04, 0x00,                 /* mov qword [PT + 8 * 0x10], 0x40003 */
                    0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x01, 0x00,  /* invlpg [CODE] */
                    0xc3);                                  /* out: ret */
        setup_long64(&e);
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ(invlpg ? "EAX: 99 x 1 + 127 (INVLPG)" : "EAX: 99 x 1 + 127 (CR3)",
                 99 + 127, e.cpu->regs[R_EAX]);
        CHECK_EQ("RIP after the HLT", CODE + 0x12, e.cpu->rip);
    }
}

/*
 * The return prediction belongs to the privilege that made the CALL: kernel
 * code calls f twice (so the return site gets linked and the prediction
 * carries its block); the third time f goes to CPL 3 with IRETQ, and user
 * code RETs to the kernel's return address, the one on top of the
 * prediction stack.  That is a fetch from a supervisor page at CPL 3:
 * #PF with P|U|I (SDM 3A §4.7), not the kernel's block run in user mode.
 */
static void test_return_prediction_keeps_privilege(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb9, 0x03, 0x00, 0x00, 0x00,    /* mov ecx, 3 */
            0xe8, 0xf6, 0x0f, 0x00, 0x00,               /* L: call f (CODE + 0x1000) */
            0xff, 0xc9,                                 /* R: dec ecx */
            0x75, 0xf7,                                 /* jnz L */
            0xf4);                                      /* hlt */
    CODE_AT(&e, CODE + 0x1000, 0x83, 0xf9, 0x01,        /* f: cmp ecx, 1 */
            0x74, 0x01,                                 /* je user */
            0xc3,                                       /* ret */
            0x6a, 0x33,                                 /* user: push 0x33 (SS) */
            0x68, 0xf8, 0x3f, 0x01, 0x00,               /* push 0x13ff8 (RSP) */
            0x6a, 0x02,                                 /* push 2 (RFLAGS) */
            0x6a, 0x4b,                                 /* push 0x4b (CS) */
            0x68, 0x00, 0x20, 0x01, 0x00,               /* push 0x12000 (RIP) */
            0x48, 0xcf);                                /* iretq */
    CODE_AT(&e, 0x12000, 0xc3);                         /* user code: ret */
    setup_long64(&e);
    st64_le(e.ram + 0x13ff8, CODE + 10);                /* the user stack holds R */
    /* User pages: the tables' upper levels and 0x12000-0x13fff. */
    st64_le(e.ram + PML4, PDPT | 7);
    st64_le(e.ram + PDPT, PD | 7);
    st64_le(e.ram + PD, PT | 7);
    st64_le(e.ram + PT + 8 * 0x12, 0x12000 | 7);
    st64_le(e.ram + PT + 8 * 0x13, 0x13000 | 7);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
    CHECK_EQ("error code: present, user, fetch", 0x15, e.cpu->stopped_err);
    CHECK_EQ("CR2", CODE + 10, e.cpu->cr2);
    CHECK_EQ("ECX: the kernel's DEC did not run", 1, e.cpu->regs[R_ECX]);
    CHECK_EQ("CPL", 3, e.cpu->cpl);
}

/*
 * A CALL to another page follows the link its EXIT op keeps (exec.c
 * xlink), valid only for the linear address and mapping it was made under:
 * the same code page, mapped at 0x10000 and at 0x30000, calls the next
 * page, where each mapping has its own function (EAX = 1 / EAX = 2); run
 * from one address, then the other with no TLB flush in between, each
 * must reach its own.  Then the next page of the first mapping is remapped
 * (a CR3 write) to the second function.
 */
static void test_call_to_other_page_follows_the_mapping(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb9, 0x0a, 0x00, 0x00, 0x00,    /* mov ecx, 10 */
            0xe8, 0xf6, 0x0f, 0x00, 0x00,               /* L: call (this page + 0x1000) */
            0x01, 0xc2,                                 /* add edx, eax */
            0xff, 0xc9,                                 /* dec ecx */
            0x75, 0xf5,                                 /* jnz L */
            0xf4);                                      /* hlt */
    CODE_AT(&e, 0x11000, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3);  /* mov eax, 1; ret */
    CODE_AT(&e, 0x31000, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3);  /* mov eax, 2; ret */
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x30, CODE | 3);           /* 0x30000: the same code page */
    static const struct { uint64_t rip; uint32_t edx; const char *what; } runs[] = {
        { CODE, 10, "EDX: ten calls of the function at 0x11000" },
        { CODE, 10, "EDX: again, linked" },
        { 0x30000, 20, "EDX: from 0x30000, ten calls of the one at 0x31000" },
        { CODE, 10, "EDX: from 0x10000 again" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(runs); i++) {
        e.cpu->regs[R_EDX] = 0;
        e.cpu->rip = runs[i].rip;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ(runs[i].what, runs[i].edx, e.cpu->regs[R_EDX]);
        CHECK_EQ("RIP after the HLT", runs[i].rip + 0x11, e.cpu->rip);
    }
    st64_le(e.ram + PT + 8 * 0x11, 0x31000 | 3);
    CHECK(cpu_write_cr3(e.cpu, e.cpu->cr3));
    e.cpu->regs[R_EDX] = 0;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EDX: 0x11000 remapped to the second function", 20, e.cpu->regs[R_EDX]);
}

/*
 * The second page of a block that starts at 0x10ffc (T: add eax, imm32 with
 * the imm32's top byte on the next page, then dec ecx; jz done; jmp rbx;
 * done: hlt), in two physical copies: at 0x11000 the byte is 01, at
 * 0x41000 it is 02, so EAX tells which mapping of linear 0x11000 ran.
 */
static void put_second_page_tails(Env *e)
{
    static const uint8_t tail[] = {
        0x01,                                           /* T's imm32, top byte */
        0xff, 0xc9,                                     /* dec ecx */
        0x74, 0x02,                                     /* jz done */
        0xff, 0xe3,                                     /* jmp rbx */
        0xf4,                                           /* done: hlt */
    };
    put(e, 0x11000, tail, sizeof(tail));
    put(e, 0x41000, tail, sizeof(tail));
    e->ram[0x41000] = 0x02;
}

/*
 * A block whose last instruction runs onto the next page (tb->page2) is
 * valid only while that page maps the same physical page; a CR3 write
 * does not change the first page here, so nothing but the mapping check
 * of the second one stops a stale block.  The code page's last bytes hold
 * "add eax, imm32" with the imm32's top byte on the next page, which is
 * remapped (CR3 write) from a copy whose byte is 1 to one whose byte is 2
 * (the rest of that page: dec ecx; jz done; jmp rbx; done: hlt).  It is
 * reached by a JNZ from its own first page (an op link, exec.c
 * op_link_fill) or as the return address of a CALL on that page (the
 * return prediction, which takes the site's op link): after the remap
 * both must run the new bytes.
 */
static void test_op_link_to_two_page_block_follows_the_mapping(void)
{
    static const char *const what[] = {
        "EAX: JNZ's op link, after the remap", "EAX: RET's prediction, after the remap",
    };
    for (int ret = 0; ret < 2; ret++) {
        Env e = env_new();
        CODE_AT(&e, CODE + 0x100, 0x85, 0xc9,           /* J: test ecx, ecx */
                0x0f, 0x85, 0xf4, 0x0e, 0x00, 0x00,     /* jnz T (CODE + 0xffc) */
                0xf4);                                  /* hlt */
        CODE_AT(&e, CODE + 0xff7, 0xe8, 0x04, 0x10, 0x00, 0x00,    /* C: call CODE + 0x2000 */
                0x05, 0x01, 0x00, 0x00);                /* T: add eax, 0x??000001 */
        CODE_AT(&e, CODE + 0x2000, 0xc3);               /* ret */
        put_second_page_tails(&e);
        setup_long64(&e);
        uint64_t start = ret ? CODE + 0xff7 : CODE + 0x100;
        for (int pass = 0; pass < 2; pass++) {
            if (pass) {
                st64_le(e.ram + PT + 8 * 0x11, 0x41000 | 3);
                CHECK(cpu_write_cr3(e.cpu, e.cpu->cr3));
            }
            e.cpu->rip = start;
            e.cpu->regs[R_EBX] = start;
            e.cpu->regs[R_ECX] = 4;
            e.cpu->regs[R_EAX] = 0;
            e.cpu->halted = false;
            CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
            CHECK_EQ(pass ? what[ret] : "EAX: four times 0x01000001",
                     (pass ? 0x02000001u : 0x01000001u) * 4, e.cpu->regs[R_EAX]);
        }
    }
}

/*
 * A block that the CS limit may cut short (TB_FLAG_CSLIM) is checked
 * against the limit each time it is entered (tcg-accel.c cs_limit_check),
 * also when the run loop's lookup finds it linked.  A far JMP to CS 0x58
 * (limit 0x10fff) lands on a 5-byte MOV at 0x10ffe, which crosses the
 * limit: #GP(0) there every time (SDM 3A §5.3), the handler counting the
 * faults and noting the faulting EIP, then looping back to the far JMP.
 * The third time the far JMP's block has the target linked.
 */
static void test_far_jump_to_cs_limited_block_checks_the_limit(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb9, 0x04, 0x00, 0x00, 0x00,    /* mov ecx, 4 */
            0x49,                                       /* L: dec ecx */
            0x74, 0x07,                                 /* jz done */
            0xea, 0xfe, 0x0f, 0x01, 0x00, 0x58, 0x00,   /* jmp far 0x58:0x10ffe */
            0xf4);                                      /* done: hlt */
    CODE_AT(&e, CODE + 0xffe, 0xb8, 0x78, 0x56, 0x34, 0x12,    /* mov eax, 0x12345678 */
            0xf4);
    setup_pm32(&e);
    CODE_AT(&e, HANDLERS + 16 * EXCP_GP, 0x43,          /* #GP: inc ebx */
            0x8b, 0x54, 0x24, 0x04,                     /* mov edx, [esp + 4] (EIP) */
            0x83, 0xc4, 0x10,                           /* add esp, 16 */
            0xe9, 0x28, 0xaf, 0x00, 0x00);              /* jmp L */
    /* 0x58: 32-bit code, base 0, limit 0x10fff (byte granular). */
    st64_le(e.ram + GDT + 0x58, 0x00419b0000000fffull);
    e.cpu->regs[R_EAX] = 0;
    e.cpu->regs[R_EBX] = 0;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EBX: three #GP", 3, e.cpu->regs[R_EBX]);
    CHECK_EQ("EDX: the last #GP's EIP, the MOV", 0x10ffe, e.cpu->regs[R_EDX]);
    CHECK_EQ("EAX: the MOV past the limit never ran", 0, e.cpu->regs[R_EAX]);
    CHECK_EQ("EIP after the HLT", CODE + 0x10, e.cpu->rip);
}

/*
 * 32-bit code wraps at 4 GiB (EIP and the linear address of a fetch are 32
 * bits wide, compatibility mode included): an instruction at 0xfffffffe runs on
 * at linear 0, so the block's second page is linear page 0, not 2^32.  In
 * compatibility mode 2^32 is a different (here unmapped) linear address:
 * the lookup must check the page the block was decoded from, or it throws
 * the block away and decodes a new one each time it misses the jump cache
 * (a CR3 write each round here), every copy kept until its code is written.
 */
static void test_compat_code_wrapping_at_4g_keeps_its_block(void)
{
    Env e = env_new();
    setup_long64(&e);
    /* Linear 0xfffff000 -> 0x50000 (PDPT[3] -> PD at 0x24000 -> PT at 0x25000). */
    st64_le(e.ram + PDPT + 8 * 3, 0x24000 | 3);
    st64_le(e.ram + 0x24000 + 8 * 511, 0x25000 | 3);
    st64_le(e.ram + 0x25000 + 8 * 511, 0x50000 | 3);
    CODE_AT(&e, 0x50ffe, 0xb8, 0x78);                   /* mov eax, 0x12345678 ... */
    CODE_AT(&e, 0, 0x56, 0x34, 0x12,                    /* ... its last bytes at linear 0 */
            0x0f, 0x22, 0xda,                           /* mov cr3, edx */
            0x49,                                       /* dec ecx */
            0x75, 0xf5,                                 /* jnz 0xfffffffe */
            0xf4);                                      /* hlt */
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x08, 0xb, 0, false);      /* compatibility mode */
    s.rip = 0xfffffffe;
    cpu_from_x86_state(e.cpu, &s);
    e.cpu->regs[R_EDX] = PML4;
    e.cpu->regs[R_ECX] = 50;
    unsigned before = tb_count();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX", 0x12345678, e.cpu->regs[R_EAX]);
    CHECK_EQ("EIP after the HLT", 10, e.cpu->rip);
    unsigned made = tb_count() - before;
    CHECK_MSG(made <= 4, "blocks made for 50 rounds of a 2-block loop: %u, expected at most 4",
              made);
}

/*
 * The same first page can be followed by different second pages in two
 * address spaces: a block spanning both is kept per second page.  A loop
 * switches CR3 between two page tables that differ only in where linear
 * 0x11000 goes (0x11000 or 0x41000) and runs a block whose last
 * instruction, "add eax, imm32" at 0x10ffc, takes its top byte from that
 * page.  Each block found for the other mapping must not make a new one:
 * the blocks stay as many as the loop has, not one per round.
 */
static void test_two_page_block_kept_per_second_page(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE + 0x100, 0x0f, 0x22, 0xde,         /* L: mov cr3, rsi */
            0x48, 0x87, 0xf7,                           /* xchg rdi, rsi */
            0xe9, 0xf1, 0x0e, 0x00, 0x00);              /* jmp T (CODE + 0xffc) */
    CODE_AT(&e, CODE + 0xffc, 0x05, 0x01, 0x00, 0x00);  /* T: add eax, 0x??000001 */
    put_second_page_tails(&e);
    setup_long64(&e);
    /* A second set of tables at 0x60000, the same but for linear 0x11000. */
    memcpy(e.ram + 0x60000, e.ram + PML4, 0x4000);
    st64_le(e.ram + 0x60000, 0x61000 | 3);
    st64_le(e.ram + 0x61000, 0x62000 | 3);
    st64_le(e.ram + 0x62000, 0x63000 | 3);
    st64_le(e.ram + 0x63000 + 8 * 0x11, 0x41000 | 3);
    e.cpu->rip = CODE + 0x100;
    e.cpu->regs[R_EBX] = CODE + 0x100;
    e.cpu->regs[R_ECX] = 50;
    e.cpu->regs[R_ESI] = 0x60000;
    e.cpu->regs[R_EDI] = PML4;
    e.cpu->regs[R_EAX] = 0;
    unsigned before = tb_count();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX: 25 x 0x02000001 + 25 x 0x01000001", 25u * 0x03000002u, e.cpu->regs[R_EAX]);
    unsigned made = tb_count() - before;
    CHECK_MSG(made <= 8, "blocks made for 50 rounds of a loop of 4 blocks in 2 mappings: %u, "
              "expected at most 8", made);
}

/*
 * SDM 3A §3.4.4: in 64-bit mode the processor treats CS's base as zero,
 * whatever the descriptor says.  RETFQ to a 64-bit code segment whose
 * descriptor has base 0x1000 runs the code at the offset itself.
 */
static void test_long_mode_code_segment_base_is_ignored(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x6a, 0x58,                       /* push 0x58 */
            0x68, 0x00, 0x01, 0x01, 0x00,               /* push CODE + 0x100 */
            0x48, 0xcb);                                /* retfq */
    CODE_AT(&e, CODE + 0x100, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4);    /* mov eax, 1; hlt */
    CODE_AT(&e, CODE + 0x1100, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xf4);   /* mov eax, 2; hlt */
    setup_long64(&e);
    /* 0x58: 64-bit code, DPL 0, base 0x1000. */
    st64_le(e.ram + GDT + 0x58, 0x00af9b001000ffffull);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("CS", 0x58, e.cpu->seg[SEG_CS].sel);
    CHECK_EQ("EAX: the code at the offset, not at base + offset", 1, e.cpu->regs[R_EAX]);
    CHECK_EQ("RIP after the HLT", CODE + 0x106, e.cpu->rip);
}

/*
 * Memory forms in 64-bit code (exec.c INC_M_F, DEC_M_F, ST_I_F, CMP_MI_F,
 * TEST_MI_F, JMP_M_F), each at several operand sizes: results and flags
 * (INC/DEC keep CF, SDM 2A "INC"), twice so that the second pass meets a
 * filled TLB.  Then stores and read-modify-writes against a read-only page
 * (#PF, error code P|W) and loads and stores against a not-present one
 * (#PF, W for a store): the fault reports the instruction's RIP and CR2
 * and leaves memory and flags alone.
 */
#define MF_DATA 0x9000u
#define MF_RO   0xa000u
#define MF_NP   0xb000u
static void mem_forms_init(Env *e)
{
    memset(e->ram + MF_DATA, 0, 0x40);
    st64_le(e->ram + MF_DATA, ~0ull);
    st32_le(e->ram + MF_DATA + 8, 0x80000000u);
    st16_le(e->ram + MF_DATA + 0xc, 0x7fff);
    st64_le(e->ram + MF_DATA + 0x28, CODE + 0x100);
    for (int r = 0; r < 16; r++)
        e->cpu->regs[r] = r == R_ESP ? 0x80000 : 0;
    e->cpu->regs[R_EBX] = MF_DATA;
    e->cpu->rip = CODE;
    e->cpu->halted = false;
}

static void mem_forms_check(Env *e, const char *pass)
{
    static const struct { int reg; const char *what; } flags[] = {
        { R_EAX, "ZF after inc qword -1" }, { R_ECX, "CF kept by inc" },
        { R_EDX, "OF after dec dword 0x80000000" }, { 8, "SF after inc word 0x7fff" },
        { 9, "CF kept by dec byte" }, { 10, "ZF: cmp qword, imm8 equal" },
        { 11, "CF: cmp dword, imm32 below" }, { 12, "above: cmp word, imm8" },
        { 13, "SF: test byte, 0x80" }, { 14, "ZF: test qword, 0x7f" },
    };
    const uint8_t *m = e->ram + MF_DATA;
    CHECK_MSG(e->cpu->rip == CODE + 0x101, "%s: RIP %#" PRIx64 ", expected the HLT JMP_M_F reached",
              pass, e->cpu->rip);
    CHECK_MSG(ld64_le(m) == 0 && ld32_le(m + 8) == 0x7fffffff && ld16_le(m + 0xc) == 0x8000 &&
              m[0xe] == 0xff, "%s: INC/DEC memory results %016" PRIx64 " %08x %04x %02x", pass,
              ld64_le(m), ld32_le(m + 8), ld16_le(m + 0xc), m[0xe]);
    CHECK_MSG(ld32_le(m + 0x10) == 0x12345678 && ld64_le(m + 0x18) == 0xffffffffffffff80ull &&
              m[0x20] == 0xab && ld16_le(m + 0x22) == 0x1234,
              "%s: MOV memory, imm results %08x %016" PRIx64 " %02x %04x", pass, ld32_le(m + 0x10),
              ld64_le(m + 0x18), m[0x20], ld16_le(m + 0x22));
    for (unsigned i = 0; i < ARRAY_LEN(flags); i++)
        CHECK_MSG((e->cpu->regs[flags[i].reg] & 0xff) == 1, "%s: %s: SETcc gave %d", pass,
                  flags[i].what, (int)(e->cpu->regs[flags[i].reg] & 0xff));
    CHECK_MSG(e->cpu->regs[15] == 0, "%s: the instruction after JMP [mem] ran", pass);
}

static void test_flat64_memory_forms_and_faults(void)
{
    static const struct {
        const char *what;
        uint8_t insn[10];
        unsigned len;
        uint32_t page;
        bool write;
    } faults[] = {
        { "inc qword", { 0x48, 0xff, 0x03 }, 3, MF_RO, true },
        { "dec dword", { 0xff, 0x0b }, 2, MF_RO, true },
        { "inc word", { 0x66, 0xff, 0x03 }, 3, MF_RO, true },
        { "dec byte", { 0xfe, 0x0b }, 2, MF_RO, true },
        { "mov dword, imm32", { 0xc7, 0x03, 0x11, 0x11, 0x11, 0x11 }, 6, MF_RO, true },
        { "mov byte, imm8", { 0xc6, 0x03, 0x11 }, 3, MF_NP, true },
        { "cmp qword, imm8", { 0x48, 0x83, 0x3b, 0x05 }, 4, MF_NP, false },
        { "test word, imm16", { 0x66, 0xf7, 0x03, 0x01, 0x00 }, 5, MF_NP, false },
        { "jmp qword [rbx]", { 0xff, 0x23 }, 2, MF_NP, false },
        /* FS-relative: the generic handlers (exec.c L_INC_E, L_DEC_E, L_NEG_E), same rules. */
        { "inc dword fs:", { 0x64, 0xff, 0x03 }, 3, MF_RO, true },
        { "dec word fs:", { 0x64, 0x66, 0xff, 0x0b }, 4, MF_RO, true },
        { "neg qword fs:", { 0x64, 0x48, 0xf7, 0x1b }, 4, MF_RO, true },
        /*
         * The generic read-modify-write handlers whose helpers set the
         * flags before the store (alu_op, alu_shift, alu_shd): the store's
         * fault leaves the flags as they were (exec.c CCSaved).
         */
        { "add dword [rbx], eax", { 0x01, 0x03 }, 2, MF_RO, true },
        { "adc qword [rbx], rax", { 0x48, 0x11, 0x03 }, 3, MF_RO, true },
        { "sub dword [rbx], 5", { 0x83, 0x2b, 0x05 }, 3, MF_RO, true },
        { "shl dword [rbx], 1", { 0xd1, 0x23 }, 2, MF_RO, true },
        /* exec.c SHIFT_M_F: the flags are written after the store */
        { "shl byte [rbx], 1", { 0xd0, 0x23 }, 2, MF_RO, true },
        { "sar qword [rbx], 3", { 0x48, 0xc1, 0x3b, 0x03 }, 4, MF_RO, true },
        { "shr word [rbx], 15", { 0x66, 0xc1, 0x2b, 0x0f }, 4, MF_RO, true },
        { "rcl qword [rbx], 1", { 0x48, 0xd1, 0x13 }, 3, MF_RO, true },
        { "shld [rbx], eax, 4", { 0x0f, 0xa4, 0x03, 0x04 }, 4, MF_RO, true },
        { "xadd [rbx], eax", { 0x0f, 0xc1, 0x03 }, 3, MF_RO, true },
        { "cmpxchg [rbx], ecx", { 0x0f, 0xb1, 0x0b }, 3, MF_RO, true },
    };
    Env e = env_new();
    CODE_AT(&e, CODE, 0xf9,                             /* stc */
            0x48, 0xff, 0x03,                           /* inc qword [rbx] */
            0x0f, 0x94, 0xc0, 0x0f, 0x92, 0xc1,         /* sete al; setb cl */
            0xff, 0x4b, 0x08,                           /* dec dword [rbx+8] */
            0x0f, 0x90, 0xc2,                           /* seto dl */
            0x66, 0xff, 0x43, 0x0c,                     /* inc word [rbx+0xc] */
            0x41, 0x0f, 0x98, 0xc0,                     /* sets r8b */
            0xfe, 0x4b, 0x0e,                           /* dec byte [rbx+0xe] */
            0x41, 0x0f, 0x92, 0xc1,                     /* setb r9b */
            0xc7, 0x43, 0x10, 0x78, 0x56, 0x34, 0x12,   /* mov dword [rbx+0x10], 0x12345678 */
            0x48, 0xc7, 0x43, 0x18, 0x80, 0xff, 0xff, 0xff,     /* mov qword [rbx+0x18], -128 */
            0xc6, 0x43, 0x20, 0xab,                     /* mov byte [rbx+0x20], 0xab */
            0x66, 0xc7, 0x43, 0x22, 0x34, 0x12,         /* mov word [rbx+0x22], 0x1234 */
            0x48, 0x83, 0x7b, 0x18, 0x80,               /* cmp qword [rbx+0x18], -128 */
            0x41, 0x0f, 0x94, 0xc2,                     /* sete r10b */
            0x81, 0x7b, 0x10, 0x79, 0x56, 0x34, 0x12,   /* cmp dword [rbx+0x10], 0x12345679 */
            0x41, 0x0f, 0x92, 0xc3,                     /* setb r11b */
            0x66, 0x83, 0x7b, 0x22, 0x35,               /* cmp word [rbx+0x22], 0x35 */
            0x41, 0x0f, 0x97, 0xc4,                     /* seta r12b */
            0xf6, 0x43, 0x20, 0x80,                     /* test byte [rbx+0x20], 0x80 */
            0x41, 0x0f, 0x98, 0xc5,                     /* sets r13b */
            0x48, 0xf7, 0x43, 0x18, 0x7f, 0x00, 0x00, 0x00,     /* test qword [rbx+0x18], 0x7f */
            0x41, 0x0f, 0x94, 0xc6,                     /* sete r14b */
            0xff, 0x63, 0x28,                           /* jmp qword [rbx+0x28] */
            0x41, 0xbf, 0x01, 0x00, 0x00, 0x00,         /* mov r15d, 1 (not reached) */
            0xf4);
    CODE_AT(&e, CODE + 0x100, 0xf4);
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * (MF_RO >> 12), MF_RO | 1);     /* present, read-only (CR0.WP set) */
    st64_le(e.ram + PT + 8 * (MF_NP >> 12), 0);             /* not present */
    e.cpu->stop_on_exception = true;
    mem_forms_init(&e);
    CHECK_EQ("first pass: run result", TCG_RUN_HALTED, run(&e));
    mem_forms_check(&e, "first pass");
    mem_forms_init(&e);
    CHECK_EQ("second pass: run result", TCG_RUN_HALTED, run(&e));
    mem_forms_check(&e, "second pass (TLB filled)");

    for (unsigned i = 0; i < ARRAY_LEN(faults); i++) {
        /* mov rcx, [rbx] (read-only page: a filled TLB entry without write); xor eax, eax; stc; insn; hlt */
        uint8_t c[24];
        unsigned n = 0;
        uint32_t at = CODE + 0x200 + 0x20 * i;
        if (faults[i].page == MF_RO) {
            c[n++] = 0x48; c[n++] = 0x8b; c[n++] = 0x0b;
        }
        c[n++] = 0x31; c[n++] = 0xc0; c[n++] = 0xf9;
        uint32_t insn_at = at + n;
        memcpy(c + n, faults[i].insn, faults[i].len);
        n += faults[i].len;
        c[n++] = 0xf4;
        put(&e, at, c, n);
        memset(e.ram + faults[i].page, 0x55, 16);
        e.cpu->regs[R_EBX] = faults[i].page;
        e.cpu->rip = at;
        e.cpu->halted = false;
        TCGRunResult res = run(&e);
        /* SDM 3A §4.7: P = page present, W/R = a write (the store of a read-modify-write). */
        uint32_t want_err = (faults[i].page == MF_RO ? 1 : 0) | (faults[i].write ? 2 : 0);
        uint32_t fl = arith_flags(&e);
        CHECK_MSG(res == TCG_RUN_EXCEPTION && e.cpu->stopped_vec == EXCP_PF &&
                  e.cpu->stopped_err == want_err,
                  "%s on a %s page: expected #PF error %u, got result %d vector %d error %u",
                  faults[i].what, faults[i].page == MF_RO ? "read-only" : "not-present", want_err,
                  res, e.cpu->stopped_vec, e.cpu->stopped_err);
        CHECK_MSG(e.cpu->rip == insn_at && e.cpu->cr2 == faults[i].page,
                  "%s: RIP %#" PRIx64 " CR2 %#" PRIx64 ", expected %#x and %#x", faults[i].what,
                  e.cpu->rip, e.cpu->cr2, insn_at, faults[i].page);
        CHECK_MSG(fl == (CC_Z | CC_C | CC_P), "%s: flags %#x changed by the faulting instruction "
                  "(expected ZF CF PF from xor; stc)", faults[i].what, fl);
        CHECK_MSG(ld64_le(e.ram + faults[i].page) == 0x5555555555555555ull,
                  "%s: memory changed: %016" PRIx64, faults[i].what, ld64_le(e.ram + faults[i].page));
    }
}

/*
 * FS- and GS-relative operands in 64-bit code (SDM 3A §3.4.4: the
 * segment's base is added) take the _F forms when the base or the index
 * slot is free (exec.c flat64_fold_seg_base), as TLS and per-CPU accesses
 * do: the same results as the generic path, which a base-plus-index
 * operand still takes, and faults at the instruction with CR2 the linear
 * address (#PF) or #GP(0) for a non-canonical one.
 */
static void test_fs_gs_operands_take_the_base(void)
{
    const uint64_t fs = MF_DATA, gs = MF_DATA + 0x100;
    Env e = env_new();
    CODE_AT(&e, CODE, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00,  /* mov rax, fs:[0x28] */
            0x64, 0x48, 0x8b, 0x0b,                     /* mov rcx, fs:[rbx] */
            0x65, 0x48, 0x2b, 0x53, 0x08,               /* sub rdx, gs:[rbx+8] */
            0x65, 0x89, 0x34, 0x25, 0x10, 0x00, 0x00, 0x00,     /* mov gs:[0x10], esi */
            0x64, 0x48, 0x83, 0x7b, 0x10, 0x05,         /* cmp qword fs:[rbx+0x10], 5 */
            0x41, 0x0f, 0x94, 0xc0,                     /* sete r8b */
            0x65, 0xff, 0x43, 0x18,                     /* inc dword gs:[rbx+0x18] */
            0x64, 0x48, 0x8b, 0x3c, 0xcb,               /* mov rdi, fs:[rbx+rcx*8] (generic) */
            0x64, 0x48, 0x33, 0x2c, 0x25, 0x30, 0x00, 0x00, 0x00,      /* xor rbp, fs:[0x30] */
            0xf4);
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * (MF_NP >> 12), 0);             /* not present */
    e.cpu->stop_on_exception = true;
    for (int pass = 0; pass < 2; pass++) {              /* the second with the TLB filled */
        memset(e.ram + MF_DATA, 0, 0x200);
        st64_le(e.ram + fs + 0x28, 0x1122334455667788ull);
        st64_le(e.ram + fs + 0x40, 1);
        st64_le(e.ram + gs + 0x48, 0x10);
        st64_le(e.ram + fs + 0x50, 5);
        st32_le(e.ram + gs + 0x58, 0x7fffffff);
        st64_le(e.ram + fs + 0x48, 0xabcdef);           /* fs:[rbx + 1 * 8] */
        st64_le(e.ram + fs + 0x30, 0xf0f0);
        e.cpu->seg[SEG_FS].base = fs;
        e.cpu->seg[SEG_GS].base = gs;
        e.cpu->regs[R_EBX] = 0x40;
        e.cpu->regs[R_EDX] = 0x15;
        e.cpu->regs[R_ESI] = 0xcafe;
        e.cpu->regs[R_EBP] = 0xff00;
        e.cpu->regs[8] = 0;
        e.cpu->rip = CODE;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_MSG(e.cpu->regs[R_EAX] == 0x1122334455667788ull && e.cpu->regs[R_ECX] == 1,
                  "pass %d: loads through FS: RAX %#" PRIx64 " RCX %#" PRIx64, pass,
                  e.cpu->regs[R_EAX], e.cpu->regs[R_ECX]);
        CHECK_MSG(e.cpu->regs[R_EDX] == 5, "pass %d: sub rdx, gs:[rbx+8]: %#" PRIx64 ", expected 5",
                  pass, e.cpu->regs[R_EDX]);
        CHECK_MSG(ld32_le(e.ram + gs + 0x10) == 0xcafe, "pass %d: store through GS: %#x", pass,
                  ld32_le(e.ram + gs + 0x10));
        CHECK_MSG((e.cpu->regs[8] & 0xff) == 1, "pass %d: cmp fs:[rbx+0x10], 5: ZF not set", pass);
        CHECK_MSG(ld32_le(e.ram + gs + 0x58) == 0x80000000u,
                  "pass %d: inc dword gs:[rbx+0x18]: %#x", pass, ld32_le(e.ram + gs + 0x58));
        CHECK_MSG(e.cpu->regs[R_EDI] == 0xabcdef, "pass %d: mov rdi, fs:[rbx+rcx*8]: %#" PRIx64,
                  pass, e.cpu->regs[R_EDI]);
        CHECK_MSG(e.cpu->regs[R_EBP] == 0x0ff0 && (arith_flags(&e) & (CC_Z | CC_C)) == 0,
                  "pass %d: xor rbp, fs:[0x30]: %#" PRIx64, pass, e.cpu->regs[R_EBP]);
    }
    static const struct {
        const char *what;
        uint8_t insn[10];
        unsigned len;
        int seg;
        uint64_t base;
        int vec;
    } faults[] = {
        { "mov rax, fs:[0x28]", { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00 }, 9, SEG_FS,
          MF_NP - 0x28, EXCP_PF },
        { "mov gs:[rbx], ecx", { 0x65, 0x89, 0x0b }, 3, SEG_GS, MF_NP, EXCP_PF },
        { "cmp qword fs:[rbx], 5", { 0x64, 0x48, 0x83, 0x3b, 0x05 }, 5, SEG_FS, MF_NP, EXCP_PF },
        { "inc dword gs:[rbx]", { 0x65, 0xff, 0x03 }, 3, SEG_GS, MF_NP, EXCP_PF },
        { "mov rax, fs:[rbx] (non-canonical)", { 0x64, 0x48, 0x8b, 0x03 }, 4, SEG_FS,
          0x0000800000000000ull, EXCP_GP },
    };
    for (unsigned i = 0; i < ARRAY_LEN(faults); i++) {
        /* xor eax, eax; stc; insn; hlt */
        uint8_t c[24];
        unsigned n = 0;
        uint32_t at = CODE + 0x200 + 0x20 * i;
        c[n++] = 0x31; c[n++] = 0xc0; c[n++] = 0xf9;
        memcpy(c + n, faults[i].insn, faults[i].len);
        n += faults[i].len;
        c[n++] = 0xf4;
        put(&e, at, c, n);
        e.cpu->seg[SEG_FS].base = e.cpu->seg[SEG_GS].base = 0;
        e.cpu->seg[faults[i].seg].base = faults[i].base;
        e.cpu->regs[R_EBX] = 0;
        e.cpu->regs[R_ECX] = 0x77;
        e.cpu->rip = at;
        e.cpu->halted = false;
        TCGRunResult res = run(&e);
        CHECK_MSG(res == TCG_RUN_EXCEPTION && e.cpu->stopped_vec == faults[i].vec,
                  "%s: expected vector %d, got result %d vector %d", faults[i].what, faults[i].vec,
                  res, e.cpu->stopped_vec);
        CHECK_MSG(e.cpu->rip == at + 3, "%s: RIP %#" PRIx64 ", expected %#x", faults[i].what,
                  e.cpu->rip, at + 3);
        if (faults[i].vec == EXCP_PF)
            CHECK_MSG(e.cpu->cr2 == MF_NP, "%s: CR2 %#" PRIx64 ", expected %#x", faults[i].what,
                      e.cpu->cr2, MF_NP);
        else
            CHECK_EQ("non-canonical: #GP error code", 0, e.cpu->stopped_err);
        CHECK_MSG(arith_flags(&e) == (CC_Z | CC_C | CC_P) && e.cpu->regs[R_EAX] == 0 &&
                  e.cpu->regs[R_ECX] == 0x77, "%s: flags %#x RAX %#" PRIx64 " RCX %#" PRIx64
                  " changed by the faulting instruction", faults[i].what, arith_flags(&e),
                  e.cpu->regs[R_EAX], e.cpu->regs[R_ECX]);
    }
}

/*
 * tb.c keeps each physical page's blocks in a list (a block that runs into
 * a second page is in two) and unlinks a dying block through its back
 * pointer: killing blocks from the middle, the ends and across pages, in
 * any order, must leave every list able to find the blocks still alive.
 */
static TranslatedBlock *tb_fake(uint64_t pc, uint32_t size, uint64_t page2)
{
    TranslatedBlock *tb = tb_alloc(0);
    tb->pc_phys = pc;
    tb->flags = TB_FLAG_CODE64;
    tb->size = size;
    tb->page2 = page2;
    tb_insert(tb);
    return tb;
}

static void test_tb_page_lists_unlink_in_any_order(void)
{
    static const char *const names[] = { "A", "B", "C (two pages)", "D", "E" };
    static const uint64_t pcs[] = { 0x300000, 0x300100, 0x300ff8, 0x301010, 0x300200 };
    static const struct { uint64_t pa, len; unsigned alive; } steps[] = {
        { 0x300100, 1, 0x1d },          /* B, in the middle of page 0x300000's list */
        { 0x301000, 1, 0x19 },          /* C, by its tail in the second page */
        { 0x300000, 0x1000, 0x08 },     /* A and E */
        { 0x301010, 1, 0x00 },          /* D, the last block of page 0x301000 */
    };
    Env e = env_new();
    (void)e;
    tb_fake(pcs[0], 16, UINT64_MAX);
    tb_fake(pcs[1], 16, UINT64_MAX);
    tb_fake(pcs[2], 16, 0x301000);
    tb_fake(pcs[3], 8, UINT64_MAX);
    tb_fake(pcs[4], 16, UINT64_MAX);
    for (unsigned s = 0; s < ARRAY_LEN(steps); s++) {
        tb_invalidate_phys_range(steps[s].pa, steps[s].len);
        for (unsigned i = 0; i < ARRAY_LEN(pcs); i++) {
            bool alive = tb_find(pcs[i], TB_FLAG_CODE64) != NULL;
            CHECK_MSG(alive == !!(steps[s].alive & (1u << i)), "after invalidating %#" PRIx64
                      "+%#" PRIx64 ": block %s %s", steps[s].pa, steps[s].len, names[i],
                      alive ? "still found" : "gone");
        }
        /* A page's list holds exactly its live blocks: A B C E in the first, C D in the second. */
        bool first = steps[s].alive & 0x17, second = steps[s].alive & 0x0c;
        CHECK_MSG(tb_page_has_code(0x300000) == first && tb_page_has_code(0x301000) == second,
                  "after invalidating %#" PRIx64 "+%#" PRIx64 ": pages hold code %d %d, expected %d %d",
                  steps[s].pa, steps[s].len, tb_page_has_code(0x300000), tb_page_has_code(0x301000),
                  first, second);
    }
    /* The emptied pages take new blocks. */
    tb_fake(pcs[0], 16, UINT64_MAX);
    tb_fake(pcs[3], 8, UINT64_MAX);
    tb_invalidate_phys_range(0x300000, 0x2000);
    CHECK_MSG(!tb_find(pcs[0], TB_FLAG_CODE64) && !tb_find(pcs[3], TB_FLAG_CODE64),
              "blocks inserted after the lists emptied survive their invalidation");
}

static void test_dma_write_invalidates_translated_code(void)
{
    Env e = env_new();
    memory_set_ram_write_notifier(tb_invalidate_phys_range);
    CODE_AT(&e, CODE, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4);     /* mov eax,1; hlt */
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX first run", 1, e.cpu->regs[R_EAX]);
    uint8_t two = 2;
    CHECK_EQ("address_space_write", MEMTX_OK, address_space_write(e.as, CODE + 1, &two, 1));
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EAX after the code was rewritten", 2, e.cpu->regs[R_EAX]);
    memory_set_ram_write_notifier(NULL);
}

/*
 * REP MOVSB that copies over the bytes of its own translated block, as
 * SeaBIOS's hard reboot does when it restores the BIOS image from the
 * flash alias over the RAM copy it is running from.  The code bytes are
 * rewritten with themselves (so the instruction stream never changes);
 * every other destination byte gets a pattern from the source.  The store
 * that invalidates the running block must not change what the instruction
 * does: all ECX bytes are copied, ESI/EDI/ECX end where the SDM says, no
 * port is touched, and execution continues with the next instruction.
 */
static unsigned smc_port_writes;
static void smc_port_write(void *opaque, uint16_t off, uint32_t v, unsigned size)
{
    (void)opaque; (void)off; (void)v; (void)size;
    smc_port_writes++;
}
static uint32_t smc_port_read(void *opaque, uint16_t off, unsigned size)
{
    (void)opaque; (void)off; (void)size;
    return 0xff;
}
static const IoPortOps smc_port_ops = { .read = smc_port_read, .write = smc_port_write, .max_access = 4 };

static void rep_movsb_over_own_code(uint32_t dst, uint32_t len)
{
    const uint32_t src = 0x40000;
    Env e = env_new();
    IoPortRange *r = ioport_register(0x520, 1, &smc_port_ops, NULL, "tcg-test", NULL);
    CHECK(r != NULL);
    smc_port_writes = 0;
    /* The destination range starts as zeros except for the code. */
    uint8_t code[] = {
        0xbe, 0, 0, 0, 0,               /* mov esi, src */
        0xbf, 0, 0, 0, 0,               /* mov edi, dst */
        0xb9, 0, 0, 0, 0,               /* mov ecx, len */
        0xba, 0x20, 0x05, 0, 0,         /* mov edx, 0x520 (a port nothing may write) */
        0xf3, 0xa4,                     /* rep movsb */
        0xb8, 0x0d, 0x60, 0, 0,         /* mov eax, 0x600d */
        0xf4,                           /* hlt */
    };
    st32_le(code + 1, src);
    st32_le(code + 6, dst);
    st32_le(code + 11, len);
    put(&e, CODE, code, sizeof(code));
    /* Source: a pattern, with the code's own bytes where the code sits. */
    for (uint32_t i = 0; i < len; i++)
        e.ram[src + i] = (uint8_t)(0x5a ^ (i * 7) ^ (i >> 8));
    CHECK(dst <= CODE && CODE + sizeof(code) <= dst + len);
    memcpy(e.ram + src + (CODE - dst), code, sizeof(code));
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("ECX", 0, e.cpu->regs[R_ECX]);
    CHECK_EQ("ESI", src + len, e.cpu->regs[R_ESI]);
    CHECK_EQ("EDI", dst + len, e.cpu->regs[R_EDI]);
    CHECK(memcmp(e.ram + dst, e.ram + src, len) == 0);
    CHECK_EQ("instruction after REP MOVSB ran", 0x600d, e.cpu->regs[R_EAX]);
    CHECK_EQ("EIP after hlt", CODE + sizeof(code), e.cpu->rip);
    CHECK_EQ("port writes", 0, smc_port_writes);
    ioport_unregister(r);
}

static void test_rep_movsb_over_own_block(void)
{
    rep_movsb_over_own_code(CODE, 0x200);
}

/* A copy longer than the per-visit string budget: the block dies in a resumed visit. */
static void test_rep_movsb_over_own_block_long(void)
{
    rep_movsb_over_own_code(CODE - 0x1800, 0x3000);
}

static void test_cmpxchg8b_and_xadd(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xc7, 0x0d, 0x00, 0x00, 0x03, 0x00,  /* cmpxchg8b [0x30000] */
            0x0f, 0xc1, 0x35, 0x10, 0x00, 0x03, 0x00,            /* xadd [0x30010], esi */
            0xf4);
    st64_le(e.ram + 0x30000, 0x1111111122222222ull);
    st32_le(e.ram + 0x30010, 40);
    setup_pm32(&e);
    e.cpu->regs[R_EDX] = 0x11111111;
    e.cpu->regs[R_EAX] = 0x22222222;
    e.cpu->regs[R_ECX] = 0xaaaaaaaa;
    e.cpu->regs[R_EBX] = 0xbbbbbbbb;
    e.cpu->regs[R_ESI] = 2;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("m64 replaced", 0xaaaaaaaabbbbbbbbull, rd64(&e, 0x30000));
    CHECK_EQ("xadd memory", 42, rd32(&e, 0x30010));
    CHECK_EQ("xadd ESI = old memory", 40, e.cpu->regs[R_ESI]);
}

/* ---------------- I/O and CPUID ---------------- */

static uint32_t io_last_write;
static void io_test_write(void *opaque, uint16_t off, uint32_t v, unsigned size)
{
    (void)opaque; (void)off; (void)size;
    io_last_write = v;
}
static uint32_t io_test_read(void *opaque, uint16_t off, unsigned size)
{
    (void)opaque; (void)size;
    return 0x50 + off;
}
static const IoPortOps io_test_ops = { .read = io_test_read, .write = io_test_write, .max_access = 1 };

static void test_port_io_and_iopl_check(void)
{
    Env e = env_new();
    IoPortRange *r = ioport_register(0x510, 2, &io_test_ops, NULL, "tcg-test", NULL);
    CHECK(r != NULL);
    CODE_AT(&e, CODE, 0x66, 0xba, 0x10, 0x05,   /* mov dx, 0x510 */
            0xb0, 'A', 0xee,                    /* mov al,'A'; out dx,al */
            0x42, 0xec,                         /* inc edx; in al,dx */
            0xf4);
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("port write", 'A', io_last_write);
    CHECK_EQ("port read", 0x51, e.cpu->regs[R_EAX] & 0xff);
    /* At CPL 3 with IOPL 0 and no I/O bitmap (TSS limit 67h): #GP(0). */
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    s.rip = CODE;
    cpu_from_x86_state(e.cpu, &s);
    e.cpu->halted = false;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("EIP at OUT", CODE + 6, e.cpu->rip);
    ioport_unregister(r);
}

/* ---------------- x87 and SSE state ---------------- */

static void test_x87_cr0_em_and_ts_raise_nm(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xf4);                    /* fninit */
    setup_pm32(&e);
    e.cpu->cr0 |= X86_CR0_EM;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result (EM)", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector (EM)", EXCP_NM, e.cpu->stopped_vec);
    e.cpu->cr0 = (e.cpu->cr0 & ~(uint64_t)X86_CR0_EM) | X86_CR0_TS;
    e.cpu->rip = CODE;
    CHECK_EQ("run result (TS)", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector (TS)", EXCP_NM, e.cpu->stopped_vec);
    e.cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
    e.cpu->rip = CODE;
    CHECK_EQ("run result (clear)", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("FCW after FNINIT", 0x037f, e.cpu->fcw);
}

static void test_wait_honours_ts_only_with_mp(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x9b, 0xf4);                          /* wait; hlt */
    setup_pm32(&e);
    e.cpu->cr0 |= X86_CR0_TS;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("TS, MP=0: WAIT runs", TCG_RUN_HALTED, run(&e));
    e.cpu->cr0 |= X86_CR0_MP;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("TS, MP=1: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("TS, MP=1: vector", EXCP_NM, e.cpu->stopped_vec);
}

/* fninit; fldcw [cw] (ZM unmasked); fld1; fldz; fdiv st1,st0 ... then a waiting insn. */
static void test_x87_unmasked_zero_divide_raises_mf_at_next_wait(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3,                           /* fninit */
            0xd9, 0x2d, 0x00, 0x10, 0x10, 0x00,             /* fldcw [0x101000] */
            0xd9, 0xe8, 0xd9, 0xee,                         /* fld1; fldz */
            0xd8, 0xf9,                                     /* fdivr st0,st1: 1/0 */
            0xdf, 0xe0,                                     /* fnstsw ax: no fault */
            0x9b, 0xf4);                                    /* wait -> #MF */
    st16_le(e.ram + 0x101000, 0x037b);
    setup_pm32(&e);
    e.cpu->cr0 |= X86_CR0_NE;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_MF, e.cpu->stopped_vec);
    CHECK_EQ("RIP at WAIT", CODE + 16, e.cpu->rip);
    CHECK_EQ("AX: B|ES|ZE, TOP=6", 0xb084, e.cpu->regs[R_EAX] & 0xffff & ~0x4700u);
    CHECK_EQ("ST0 unchanged (+0)", 0, e.cpu->fpr[6].se);
    /* With CR0.NE = 0 the PC's FERR# path is taken instead: no exception here. */
    e.cpu->cr0 &= ~(uint64_t)X86_CR0_NE;
    CHECK_EQ("NE=0: run result", TCG_RUN_HALTED, run(&e));
}

static void test_x87_stack_overflow_sets_sf_c1_and_indefinite(void)
{
    Env e = env_new();
    static const uint8_t code[] = { 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8,
                                    0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8,
                                    0xdf, 0xe0, 0xf4 };     /* fninit; 9 x fld1; fnstsw ax */
    put(&e, CODE, code, sizeof(code));
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("FSW: IE|SF|C1, TOP=7", 0x3a41, e.cpu->regs[R_EAX] & 0xffff);
    CHECK_EQ("ST0 = real indefinite (exp)", 0xffff, e.cpu->fpr[7].se);
    CHECK_EQ("ST0 = real indefinite (sig)", 0xc000000000000000ull, e.cpu->fpr[7].sig);
}

static void test_fnstenv_stores_full_tag_word(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xd9, 0xee, 0xd9, 0xe8,  /* fninit; fldz; fld1 */
            0xd9, 0x35, 0x00, 0x10, 0x10, 0x00, 0xf4);      /* fnstenv [0x101000] */
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("env FCW", 0xffff037f, rd32(&e, 0x101000));
    CHECK_EQ("env FSW (TOP=6)", 0xffff3000, rd32(&e, 0x101004));
    CHECK_EQ("env tag: R6 valid, R7 zero, rest empty", 0xffff4fff, rd32(&e, 0x101008));
    CHECK_EQ("FCW masks all after FNSTENV", 0x037f, e.cpu->fcw);
}

/* Real mode: 14-byte environment with the linear FIP/FDP split around FOP (SDM 1 Fig. 8-12). */
static void test_fnstenv_real_mode_layout(void)
{
    Env e = env_new();
    CODE_AT(&e, 0x7c00, 0xdb, 0xe3,                         /* fninit */
            0xdd, 0x06, 0x10, 0x06,                         /* fld qword [0x610] */
            0xd9, 0x36, 0x00, 0x05, 0xf4);                  /* fnstenv [0x500] */
    setup_real(&e, 0x7c00);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("FIP[15:0] (linear)", 0x7c02, ld16_le(e.ram + 0x506));
    CHECK_EQ("FIP[19:16] << 12 | FOP", 0x0506, ld16_le(e.ram + 0x508));
    CHECK_EQ("FDP[15:0]", 0x0610, ld16_le(e.ram + 0x50a));
    CHECK_EQ("FDP[19:16] << 12", 0, ld16_le(e.ram + 0x50c));
    CHECK_EQ("tag: R7 zero (RAM is 0), rest empty", 0x7fff, ld16_le(e.ram + 0x504));
}

static void test_fnsave_reinitialises_and_frstor_restores(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xd9, 0xeb, 0xd9, 0xe8,  /* fninit; fldpi; fld1 */
            0xdd, 0x35, 0x00, 0x10, 0x10, 0x00,             /* fnsave [0x101000] */
            0xdf, 0xe0, 0x89, 0xc3,                         /* fnstsw ax; mov ebx, eax */
            0xdd, 0x25, 0x00, 0x10, 0x10, 0x00,             /* frstor [0x101000] */
            0xdf, 0xe0, 0xf4);                              /* fnstsw ax */
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("FSW after FNSAVE (FNINIT state)", 0, e.cpu->regs[R_EBX] & 0xffff);
    CHECK_EQ("image ST0 = 1.0 (sig)", 0x8000000000000000ull, rd64(&e, 0x101000 + 28));
    CHECK_EQ("image ST0 = 1.0 (exp)", 0x3fff, ld16_le(e.ram + 0x101000 + 36));
    CHECK_EQ("image ST1 = pi (sig)", 0xc90fdaa22168c235ull, rd64(&e, 0x101000 + 38));
    CHECK_EQ("FSW after FRSTOR (TOP=6)", 0x3000, e.cpu->regs[R_EAX] & 0xffff);
    CHECK_EQ("tags after FRSTOR", 0xc0, e.cpu->ftw_valid);
    CHECK_EQ("ST0 after FRSTOR", 0x3fff, e.cpu->fpr[6].se);
}

static void setup_long64_sse(Env *e)
{
    setup_long64(e);
    e->cpu->cr0 |= X86_CR0_MP | X86_CR0_NE;
    e->cpu->cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
}

/*
 * The legacy-SSE exception conditions (SDM 2A ch. 2 exception tables): the instruction
 * at CODE raises #UD with CR4.OSFXSR = 0 or CR0.EM = 1, and #NM with CR0.TS =
 * 1 with RIP left at it.  Leaves OSFXSR set, EM and TS clear, RIP = CODE.
 */
static void check_sse_control_faults(Env *e)
{
    e->cpu->stop_on_exception = true;
    e->cpu->cr4 &= ~(uint64_t)CR4_OSFXSR;
    e->cpu->rip = CODE;
    CHECK_EQ("OSFXSR=0: run result", TCG_RUN_EXCEPTION, run(e));
    CHECK_EQ("OSFXSR=0: #UD", EXCP_UD, e->cpu->stopped_vec);
    e->cpu->cr4 |= CR4_OSFXSR;
    e->cpu->cr0 |= X86_CR0_EM;
    e->cpu->rip = CODE;
    CHECK_EQ("EM=1: run result", TCG_RUN_EXCEPTION, run(e));
    CHECK_EQ("EM=1: #UD", EXCP_UD, e->cpu->stopped_vec);
    e->cpu->cr0 = (e->cpu->cr0 & ~(uint64_t)X86_CR0_EM) | X86_CR0_TS;
    e->cpu->rip = CODE;
    CHECK_EQ("TS=1: run result", TCG_RUN_EXCEPTION, run(e));
    CHECK_EQ("TS=1: #NM", EXCP_NM, e->cpu->stopped_vec);
    CHECK_EQ("TS=1: RIP at the instruction", CODE, e->cpu->rip);
    e->cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
    e->cpu->rip = CODE;
}

static void test_fxsave64_layout(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb,  /* fninit; fld1; fldpi */
            0x0f, 0xae, 0x14, 0x25, 0x00, 0x20, 0x10, 0x00, /* ldmxcsr [0x102000] */
            0x48, 0x0f, 0xae, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, /* fxsave64 [0x101000] */
            0xf4);
    st32_le(e.ram + 0x102000, 0x9fc0);                      /* FZ, RC=down, DAZ */
    setup_long64_sse(&e);
    e.cpu->xmm[0].q[0] = 0x1122334455667788ull;
    e.cpu->xmm[15].q[1] = 0x99aabbccddeeff00ull;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    uint8_t *fx = e.ram + 0x101000;
    CHECK_EQ("FCW", 0x037f, ld16_le(fx));
    CHECK_EQ("FSW (TOP=6)", 0x3000, ld16_le(fx + 2));
    CHECK_EQ("abridged FTW (R6, R7)", 0xc0, fx[4]);
    CHECK_EQ("MXCSR", 0x9fc0, ld32_le(fx + 24));
    CHECK_EQ("MXCSR_MASK", 0xffff, ld32_le(fx + 28));
    CHECK_EQ("ST0 significand (pi, RN)", 0xc90fdaa22168c235ull, ld64_le(fx + 32));
    CHECK_EQ("ST0 exponent", 0x4000, ld16_le(fx + 40));
    CHECK_EQ("ST1 = 1.0", 0x8000000000000000ull, ld64_le(fx + 48));
    CHECK_EQ("ST1 exponent", 0x3fff, ld16_le(fx + 56));
    CHECK_EQ("XMM0 low", 0x1122334455667788ull, ld64_le(fx + 160));
    CHECK_EQ("XMM15 high", 0x99aabbccddeeff00ull, ld64_le(fx + 160 + 15 * 16 + 8));
}

static void test_fxsave_fxrstor_round_trip(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xd9, 0xeb, 0xd9, 0xee,  /* fninit; fldpi; fldz */
            0x0f, 0xae, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, /* fxsave [0x101000] */
            0xdb, 0xe3,                                     /* fninit */
            0x0f, 0xae, 0x0c, 0x25, 0x00, 0x10, 0x10, 0x00, /* fxrstor [0x101000] */
            0xf4);
    setup_long64_sse(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("TOP restored", 6, (e.cpu->fsw >> 11) & 7);
    CHECK_EQ("tags restored", 0xc0, e.cpu->ftw_valid);
    CHECK_EQ("ST1 = pi", 0xc90fdaa22168c235ull, e.cpu->fpr[7].sig);
}

static void test_fxsave_misaligned_is_gp(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x04, 0x25, 0x08, 0x10, 0x10, 0x00, 0xf4);   /* fxsave [0x101008] */
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0, e.cpu->stopped_err);
}

static void test_fxrstor_reserved_mxcsr_is_gp(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x0c, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* fxrstor [0x101000] */
    st32_le(e.ram + 0x101000 + 24, 0x10000);
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
}

/*
 * The interpreter's fast SSE forms (exec.c SSE_*) keep the architectural
 * checks (SDM 3A Table 12-8): CR4.OSFXSR = 0 or CR0.EM = 1 -> #UD, CR0.TS
 * = 1 -> #NM, a misaligned MOVDQA operand -> #GP(0); the block is reused
 * across the changes, so the checks are made when the op runs.
 */
static void sse_fast_forms_check_results(Env *e, const char *when)
{
    CHECK_MSG(e->cpu->regs[R_ECX] == 0xaaaa, "%s: PMOVMSKB (bytes equal at odd offsets): expected 0xaaaa, "
              "got %#" PRIx64, when, e->cpu->regs[R_ECX]);
    CHECK_MSG(ld64_le(e->ram + 0x104003) == 0xff00ff00ff00ff00ull &&
              ld64_le(e->ram + 0x10400b) == 0xff00ff00ff00ff00ull,
              "%s: PCMPEQB result stored by MOVDQU: expected ff00ff00ff00ff00 twice, got %016" PRIx64
              " %016" PRIx64, when, ld64_le(e->ram + 0x104003), ld64_le(e->ram + 0x10400b));
}

static void test_sse_fast_forms_checks_and_results(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0x0f, 0x6f, 0x00,     /* movdqa xmm0, [rax] */
            0xf3, 0x0f, 0x6f, 0x0b,                /* movdqu xmm1, [rbx] */
            0x66, 0x0f, 0x74, 0xc1,                /* pcmpeqb xmm0, xmm1 */
            0x66, 0x0f, 0xd7, 0xc8,                /* pmovmskb ecx, xmm0 */
            0xf3, 0x0f, 0x7f, 0x02,                /* movdqu [rdx], xmm0 */
            0xf4);
    for (int i = 0; i < 16; i++) {
        e.ram[0x102000 + i] = (uint8_t)(0x40 + i);
        e.ram[0x103001 + i] = (uint8_t)(i & 1 ? 0x40 + i : 0x80 + i);
    }
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    e.cpu->regs[R_EAX] = 0x102000;
    e.cpu->regs[R_EBX] = 0x103001;
    e.cpu->regs[R_EDX] = 0x104003;
    e.cpu->regs[R_ECX] = 0xffffffffffffffffull;
    /* A first run fills the TLB, so that the checks below meet the fast path, not a TLB miss. */
    CHECK_EQ("first run: run result", TCG_RUN_HALTED, run(&e));
    sse_fast_forms_check_results(&e, "first run");
    e.cpu->halted = false;
    e.cpu->regs[R_EAX] = 0x102008;
    e.cpu->rip = CODE;
    CHECK_EQ("misaligned MOVDQA: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("misaligned MOVDQA: #GP", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("misaligned MOVDQA: error code", 0, e.cpu->stopped_err);
    e.cpu->regs[R_EAX] = 0x102000;
    check_sse_control_faults(&e);
    e.cpu->regs[R_ECX] = 0xffffffffffffffffull;
    memset(e.ram + 0x104003, 0, 16);
    CHECK_EQ("valid again: run result", TCG_RUN_HALTED, run(&e));
    sse_fast_forms_check_results(&e, "valid again");
}

/*
 * PCMPISTRI (exec.c SSE_PCMPISTRI, what glibc's SSE4.2 strcspn and strcmp
 * run): ECX and the flags of SDM 2B "PCMPISTRI" from the unaligned memory
 * form and the register form; a memory operand on a not-present page, or
 * crossing into one, faults (#PF, CR2 on that page) at the instruction
 * with ECX and the flags as they were.
 */
static void test_pcmpistri_fast_form_results_and_faults(void)
{
    static const uint8_t set[16] = "/:x";
    static const uint8_t str[16] = "abc:def/ghijklmn";      /* no NUL: ZF = 0 */
    static const uint8_t other[16] = "/:y";
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0x0f, 0x3a, 0x63, 0x03, 0x02,  /* pcmpistri xmm0, [rbx], 2 (equal any) */
            0x9c, 0x41, 0x58,                           /* pushfq; pop r8 */
            0x89, 0xce,                                 /* mov esi, ecx */
            0x66, 0x0f, 0x3a, 0x63, 0xc1, 0x3a,         /* pcmpistri xmm0, xmm1, 0x3a (strcmp) */
            0x9c, 0x41, 0x59,                           /* pushfq; pop r9 */
            0xf4);
    CODE_AT(&e, CODE + 0x100, 0x31, 0xc0, 0xf9,         /* xor eax, eax; stc */
            0x66, 0x0f, 0x3a, 0x63, 0x03, 0x02,         /* pcmpistri xmm0, [rbx], 2 */
            0xf4);
    setup_long64_sse(&e);
    st64_le(e.ram + PT + 8 * (MF_NP >> 12), 0);             /* not present */
    e.cpu->stop_on_exception = true;
    memcpy(e.cpu->xmm[0].b, set, 16);
    memcpy(e.cpu->xmm[1].b, other, 16);
    memcpy(e.ram + MF_DATA + 3, str, 16);
    for (int pass = 0; pass < 2; pass++) {              /* the second with the TLB filled */
        e.cpu->regs[R_EBX] = MF_DATA + 3;
        e.cpu->regs[R_ESP] = 0x80000;
        e.cpu->regs[R_ECX] = ~0ull;
        e.cpu->rip = CODE;
        e.cpu->halted = false;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        /* ':' (a set byte) first at index 3; the set ends early (SF), the string does not. */
        CHECK_MSG(e.cpu->regs[R_ESI] == 3, "pass %d: equal any: ECX %#" PRIx64 ", expected 3", pass,
                  e.cpu->regs[R_ESI]);
        CHECK_MSG((e.cpu->regs[8] & CC_ALL) == (CC_C | CC_S), "pass %d: equal any: flags %#" PRIx64
                  ", expected CF SF", pass, e.cpu->regs[8] & CC_ALL);
        /* "/:x" vs "/:y": the first difference at 2; both end early (ZF SF). */
        CHECK_MSG(e.cpu->regs[R_ECX] == 2, "pass %d: equal each, masked negative: ECX %#" PRIx64
                  ", expected 2 (RCX zero-extended)", pass, e.cpu->regs[R_ECX]);
        CHECK_MSG((e.cpu->regs[9] & CC_ALL) == (CC_C | CC_Z | CC_S), "pass %d: equal each: flags %#"
                  PRIx64 ", expected CF ZF SF", pass, e.cpu->regs[9] & CC_ALL);
    }
    static const struct { uint32_t at; const char *what; } faults[] = {
        { MF_NP, "on a not-present page" }, { MF_NP - 8, "crossing into a not-present page" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(faults); i++) {
        e.cpu->regs[R_EBX] = faults[i].at;
        e.cpu->regs[R_ECX] = 0x1234;
        e.cpu->rip = CODE + 0x100;
        e.cpu->halted = false;
        CHECK_EQ("fault: run result", TCG_RUN_EXCEPTION, run(&e));
        CHECK_MSG(e.cpu->stopped_vec == EXCP_PF && e.cpu->stopped_err == 0 && e.cpu->cr2 == MF_NP,
                  "%s: expected #PF error 0 CR2 %#x, got vector %d error %u CR2 %#" PRIx64,
                  faults[i].what, MF_NP, e.cpu->stopped_vec, e.cpu->stopped_err, e.cpu->cr2);
        CHECK_MSG(e.cpu->rip == CODE + 0x103, "%s: RIP %#" PRIx64 ", expected the PCMPISTRI at %#x",
                  faults[i].what, e.cpu->rip, CODE + 0x103);
        CHECK_MSG(e.cpu->regs[R_ECX] == 0x1234 && arith_flags(&e) == (CC_Z | CC_C | CC_P),
                  "%s: ECX %#" PRIx64 " flags %#x, expected 0x1234 and ZF CF PF (unchanged)",
                  faults[i].what, e.cpu->regs[R_ECX], arith_flags(&e));
    }
}

/*
 * Flag producers followed by a Jcc run as one fused op in the interpreter
 * (exec.c J<cc>_CMP_RI, _CMP8_RI, _TEST8_RI, _SUB_RI, _ADD_RI, _CMP_RR; the
 * 16-bit ADD16_RI and CMP16_RR are specialised but not fused):
 * the branch must go as the SDM's conditions say (JA: CF = 0 and ZF = 0;
 * JBE: CF = 1 or ZF = 1; JB: CF = 1; JNB: CF = 0; JZ/JNZ: ZF), and the
 * flags and the destination must be the producer's.  Each case is
 * "producer; jcc +5; mov ebx, 1; hlt" at its own address.
 */
static void test_fused_flag_producer_branches(void)
{
    static const uint64_t vals[] = {
        0, 1, 0x7e, 0x7f, 0x80, 0xff, 0x100, 0x7fffffff, 0x80000000, 0xffffffff,
        0xffffffffffffff80ull, 0x8000000000000000ull, 0xffffffffffffffffull,
    };
    static const uint8_t imms[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
    static const char *const kinds[] = {
        "cmp rax,imm8; ja", "cmp rax,imm8; jbe", "cmp eax,imm8; ja", "cmp eax,imm8; jbe",
        "cmp al,imm8; jz", "cmp al,imm8; jnz", "test al,imm8; jz", "test al,imm8; jnz",
        "cmp rax,rcx; jb", "cmp rax,rcx; jnb", "cmp eax,ecx (3B); jb", "sub rax,imm8; jnz",
        "sub eax,imm8; jz", "add rax,imm8; jnz", "add eax,imm8; jz",
        "add ax,imm8; jnz", "cmp ax,cx; jb",
    };
    Env e = env_new();
    setup_long64(&e);
    unsigned slot = 0;
    for (unsigned k = 0; k < ARRAY_LEN(kinds); k++) {
        for (unsigned vi = 0; vi < ARRAY_LEN(vals); vi++) {
            for (unsigned ii = 0; ii < ARRAY_LEN(imms); ii++) {
                uint64_t v = vals[vi], v2 = ii == 0 ? v : vals[(vi + ii * 3) % ARRAY_LEN(vals)];
                uint8_t im = imms[ii], c[16];
                unsigned n = 0;
                bool w = k == 0 || k == 1 || k == 8 || k == 9 || k == 11 || k == 13;
                uint64_t mask = w ? ~0ull : 0xffffffffull, a = v & mask, b, res, rax = v;
                bool taken, zf, cf, sf;
                if (w)
                    c[n++] = 0x48;
                if (k >= 15) {
                    /* 16-bit forms (exec.c ADD16_RI, CMP16_RR): bits 63:16 are kept. */
                    mask = 0xffff;
                    a = v & mask;
                    b = k == 15 ? (uint64_t)(int64_t)(int8_t)im & mask : v2 & mask;
                    c[n++] = 0x66;
                    if (k == 15) {
                        c[n++] = 0x83; c[n++] = 0xc0; c[n++] = im;
                        res = (a + b) & mask;
                        cf = res < a;
                        rax = (v & ~mask) | res;
                    } else {
                        c[n++] = 0x39; c[n++] = 0xc8;
                        res = (a - b) & mask;
                        cf = a < b;
                    }
                } else if (k < 4 || k >= 11) {
                    b = (uint64_t)(int64_t)(int8_t)im & mask;
                    c[n++] = 0x83;
                    c[n++] = k < 4 ? 0xf8 : k < 13 ? 0xe8 : 0xc0;
                    c[n++] = im;
                    res = (k < 13 ? a - b : a + b) & mask;
                    cf = k < 13 ? a < b : res < a;
                    if (k >= 11)
                        rax = res;
                } else if (k < 8) {
                    mask = 0xff;
                    a = v & 0xff;
                    b = im;
                    c[n++] = k < 6 ? 0x3c : 0xa8;
                    c[n++] = im;
                    res = k < 6 ? (a - b) & 0xff : a & b;
                    cf = k < 6 && a < b;
                } else {
                    b = v2 & mask;
                    c[n++] = k < 10 ? 0x39 : 0x3b;
                    c[n++] = 0xc8 - (k < 10 ? 0 : 7);      /* 39 c8: cmp rax,rcx; 3b c1: cmp eax,ecx */
                    res = (a - b) & mask;
                    cf = a < b;
                }
                zf = res == 0;
                sf = (res >> (mask == 0xff ? 7 : mask == 0xffff ? 15 : w ? 63 : 31)) & 1;
                switch (k) {
                case 0: case 2: taken = !cf && !zf; c[n++] = 0x77; break;
                case 1: case 3: taken = cf || zf; c[n++] = 0x76; break;
                case 8: case 10: case 16: taken = cf; c[n++] = 0x72; break;
                case 9: taken = !cf; c[n++] = 0x73; break;
                case 4: case 6: case 12: case 14: taken = zf; c[n++] = 0x74; break;
                default: taken = !zf; c[n++] = 0x75; break;
                }
                c[n++] = 0x05;
                c[n++] = 0xbb; c[n++] = 1; c[n++] = 0; c[n++] = 0; c[n++] = 0;   /* mov ebx, 1 */
                c[n++] = 0xf4;                                  /* hlt */
                uint32_t at = CODE + 16 * slot++;
                put(&e, at, c, n);
                e.cpu->rip = at;
                e.cpu->regs[R_EAX] = v;
                e.cpu->regs[R_ECX] = v2;
                e.cpu->regs[R_EBX] = 0;
                e.cpu->halted = false;                          /* the previous case's HLT */
                if (run(&e) != TCG_RUN_HALTED) {
                    CHECK_MSG(false, "%s: did not halt", kinds[k]);
                    continue;
                }
                uint32_t fl = arith_flags(&e);
                if (e.cpu->regs[R_EBX] != (taken ? 0u : 1u) || !!(fl & CC_Z) != zf ||
                    !!(fl & CC_C) != cf || !!(fl & CC_S) != sf || e.cpu->regs[R_EAX] != rax)
                    CHECK_MSG(false, "%s, rax=%#" PRIx64 " rcx=%#" PRIx64 " imm8=%#x: expected %s ZF=%d "
                              "CF=%d SF=%d rax=%#" PRIx64 ", got %s ZF=%d CF=%d SF=%d rax=%#" PRIx64,
                              kinds[k], v, v2, im, taken ? "taken" : "not taken", zf, cf, sf, rax,
                              e.cpu->regs[R_EBX] ? "not taken" : "taken",
                              !!(fl & CC_Z), !!(fl & CC_C), !!(fl & CC_S), e.cpu->regs[R_EAX]);
            }
        }
    }
}

/*
 * Runs fused by tcg_specialize (exec.c PUSH64_RUN, POP64_RUN with the RET
 * after it, MOV64_RUN): the same results as one instruction at a time,
 * including PUSH RSP inside a run (the value before that push, SDM 2B
 * "PUSH") and MOVs reading a register an earlier one wrote.  Run twice so
 * that the second pass meets a filled TLB (the fast path) throughout.
 */
static void test_fused_push_pop_mov_runs(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x53, 0x55, 0x41, 0x54, 0x41, 0x55,   /* push rbx, rbp, r12, r13 */
            0x48, 0x89, 0xd8, 0x48, 0x89, 0xe9,             /* mov rax, rbx; mov rcx, rbp */
            0x48, 0x89, 0xc2,                               /* mov rdx, rax */
            0x5e, 0x5f, 0x41, 0x58, 0x41, 0x59,             /* pop rsi, rdi, r8, r9 */
            0xe8, 0xe6, 0x00, 0x00, 0x00,                   /* call CODE + 0x100 */
            0xf4);                                          /* hlt */
    CODE_AT(&e, CODE + 0x100, 0x50, 0x54,                   /* push rax; push rsp */
            0x41, 0x5a, 0x41, 0x5b, 0xc3);                  /* pop r10; pop r11; ret */
    setup_long64(&e);
    for (int pass = 0; pass < 2; pass++) {
        TCGCPU *c = e.cpu;
        c->rip = CODE;
        c->halted = false;
        c->regs[R_ESP] = 0x41800;
        c->regs[R_EBX] = 0x1111; c->regs[R_EBP] = 0x2222;
        c->regs[R_R12] = 0x3333; c->regs[R_R13] = 0x4444;
        uint64_t ic = c->icount;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("icount: 18 instructions", 18, c->icount - ic);
        CHECK_EQ("RSP back", 0x41800, c->regs[R_ESP]);
        CHECK_EQ("pushed R13 (last of the run)", 0x4444, rd64(&e, 0x417e0));
        CHECK_EQ("return address", CODE + 26, rd64(&e, 0x417f8));
        CHECK_EQ("pushed RAX", 0x1111, rd64(&e, 0x417f0));
        CHECK_EQ("pushed RSP", 0x417f0, rd64(&e, 0x417e8));
        CHECK_EQ("RAX = RBX", 0x1111, c->regs[R_EAX]);
        CHECK_EQ("RCX = RBP", 0x2222, c->regs[R_ECX]);
        CHECK_EQ("RDX = new RAX", 0x1111, c->regs[R_EDX]);
        CHECK_EQ("RSI = R13", 0x4444, c->regs[R_ESI]);
        CHECK_EQ("RDI = R12", 0x3333, c->regs[R_EDI]);
        CHECK_EQ("R8 = RBP", 0x2222, c->regs[R_R8]);
        CHECK_EQ("R9 = RBX", 0x1111, c->regs[R_R9]);
        CHECK_EQ("R10 = RSP before PUSH RSP", 0x417f0, c->regs[R_R10]);
        CHECK_EQ("R11 = RAX", 0x1111, c->regs[R_R11]);
        CHECK_EQ("RIP after RET and HLT", CODE + 27, c->rip);
    }
}

/*
 * A fault in the middle of a fused run or loop is the fault of that one
 * instruction (SDM 3A §6.5): the earlier ones done, RSP and memory as they
 * left them, RIP at the faulting instruction, the flags untouched by the
 * stack ops.  Stack page 0x41000 is present, 0x40000 and 0x42000 are not;
 * each case first runs once inside the page so the TLB holds it and the
 * fused handler's fast path is taken up to the fault.
 */
static void test_fused_runs_fault_midway(void)
{
    Env e = env_new();
    TCGCPU *c = e.cpu;
    CODE_AT(&e, CODE, 0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0xf4);   /* push rbx, rbp, r12, r13 */
    CODE_AT(&e, CODE + 0x40, 0x5e, 0x5f, 0x41, 0x58, 0xf4);       /* pop rsi, rdi, r8 */
    CODE_AT(&e, CODE + 0x80, 0x5e, 0x5f, 0xc3);                   /* pop rsi, rdi; ret */
    CODE_AT(&e, CODE + 0xc0, 0x48, 0xff, 0xc7,                    /* L: inc rdi */
            0x80, 0x3f, 0x00, 0x75, 0xf8, 0xf4);                  /* cmp byte [rdi], 0; jnz L */
    CODE_AT(&e, CODE + 0x100, 0x48, 0x89, 0x20);                  /* the RET's target: mov [rax], rsp */
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x40, 0);
    st64_le(e.ram + PT + 8 * 0x42, 0);
    tlb_flush(c, true);
    c->regs[R_EBX] = 0x1111; c->regs[R_EBP] = 0x2222;
    c->regs[R_R12] = 0x3333; c->regs[R_R13] = 0x4444;

    /* PUSH x4, the third push faults. */
    c->rip = CODE; c->regs[R_ESP] = 0x41800;
    CHECK_EQ("push: warm-up run", TCG_RUN_HALTED, run(&e));
    c->rip = CODE; c->halted = false; c->regs[R_ESP] = 0x41010;
    cpu_set_eflags(c, CC_C | CC_Z, CC_ALL);
    c->stop_on_exception = true;
    CHECK_EQ("push: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("push: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("push: error code W", PFERR_W, c->stopped_err);
    CHECK_EQ("push: CR2", 0x40ff8, c->cr2);
    CHECK_EQ("push: RIP at the third push", CODE + 2, c->rip);
    CHECK_EQ("push: RSP after two pushes", 0x41000, c->regs[R_ESP]);
    CHECK_EQ("push: first pushed", 0x1111, rd64(&e, 0x41008));
    CHECK_EQ("push: second pushed", 0x2222, rd64(&e, 0x41000));
    CHECK_EQ("push: flags untouched", CC_C | CC_Z, arith_flags(&e));

    /* POP x3, the third pop faults. */
    c->stop_on_exception = false;
    c->rip = CODE + 0x40; c->halted = false; c->regs[R_ESP] = 0x41800;
    CHECK_EQ("pop: warm-up run", TCG_RUN_HALTED, run(&e));
    st64_le(e.ram + 0x41ff0, 0xaaaa);
    st64_le(e.ram + 0x41ff8, 0xbbbb);
    c->rip = CODE + 0x40; c->halted = false; c->regs[R_ESP] = 0x41ff0;
    c->regs[R_R8] = 0x99;
    c->stop_on_exception = true;
    CHECK_EQ("pop: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("pop: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("pop: error code (read, not present)", 0, c->stopped_err);
    CHECK_EQ("pop: CR2", 0x42000, c->cr2);
    CHECK_EQ("pop: RIP at the third pop", CODE + 0x42, c->rip);
    CHECK_EQ("pop: RSP after two pops", 0x42000, c->regs[R_ESP]);
    CHECK_EQ("pop: RSI", 0xaaaa, c->regs[R_ESI]);
    CHECK_EQ("pop: RDI", 0xbbbb, c->regs[R_EDI]);
    CHECK_EQ("pop: R8 unchanged", 0x99, c->regs[R_R8]);

    /* POP x2 then RET: the RET's load faults; then the same with a good return address. */
    c->rip = CODE + 0x80; c->halted = false; c->regs[R_ESP] = 0x41ff0;
    c->regs[R_ESI] = c->regs[R_EDI] = 0;
    CHECK_EQ("ret: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("ret: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("ret: CR2", 0x42000, c->cr2);
    CHECK_EQ("ret: RIP at the RET", CODE + 0x82, c->rip);
    CHECK_EQ("ret: RSP after two pops", 0x42000, c->regs[R_ESP]);
    CHECK_EQ("ret: RSI", 0xaaaa, c->regs[R_ESI]);
    CHECK_EQ("ret: RDI", 0xbbbb, c->regs[R_EDI]);
    st64_le(e.ram + 0x41ff0, CODE + 0x100);     /* pop rsi, rdi from 0x41fe0, ret to CODE + 0x100 */
    CODE_AT(&e, CODE + 0x103, 0xf4);
    c->rip = CODE + 0x80; c->halted = false; c->regs[R_ESP] = 0x41fe0;
    c->regs[R_EAX] = 0x41f00;
    CHECK_EQ("ret: good run", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("ret: RSP seen at the target", 0x41ff8, rd64(&e, 0x41f00));
    CHECK_EQ("ret: RIP after the target's HLT", CODE + 0x104, c->rip);

    /* Byte scan (INC_JNZ_CMP8_MI): the CMP after the INC faults at the page end. */
    memcpy(e.ram + 0x41800, "xyz", 4);
    c->rip = CODE + 0xc0; c->halted = false; c->regs[R_EDI] = 0x417ff;
    uint64_t ic = c->icount;
    CHECK_EQ("scan: warm-up run", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("scan: RDI at the NUL", 0x41803, c->regs[R_EDI]);
    CHECK_EQ("scan: icount (4 rounds, HLT)", 13, c->icount - ic);
    CHECK_EQ("scan: flags of CMP 0, 0", CC_Z | CC_P, arith_flags(&e) & (CC_Z | CC_C | CC_S | CC_P));
    memcpy(e.ram + 0x41ffc, "abcd", 4);
    c->rip = CODE + 0xc0; c->halted = false; c->regs[R_EDI] = 0x41ffb;
    CHECK_EQ("scan: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("scan: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("scan: CR2", 0x42000, c->cr2);
    CHECK_EQ("scan: RIP at the CMP", CODE + 0xc3, c->rip);
    CHECK_EQ("scan: RDI incremented", 0x42000, c->regs[R_EDI]);
    CHECK_EQ("scan: flags of the INC after CMP 'd', 0", 0, arith_flags(&e) & (CC_Z | CC_C | CC_S));
    /* The same in the first round: the INC keeps the CF it found. */
    c->rip = CODE + 0xc0; c->halted = false; c->regs[R_EDI] = 0x41fff;
    cpu_set_eflags(c, CC_C | CC_Z, CC_ALL);
    CHECK_EQ("scan: run result (first round)", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("scan: RIP at the CMP (first round)", CODE + 0xc3, c->rip);
    CHECK_EQ("scan: RDI incremented (first round)", 0x42000, c->regs[R_EDI]);
    CHECK_EQ("scan: flags of the INC (CF kept)", CC_C, arith_flags(&e) & (CC_Z | CC_C | CC_S));
}

/*
 * Runs of 64-bit loads and stores (exec.c LD64_RUN / ST64_RUN): each
 * sees the memory the ones before it left, and a fault midway (the third,
 * a load from not-present page 0x42000) leaves the earlier ones done, the
 * later ones not, RIP at the faulting one.
 */
static void test_fused_load_store_runs(void)
{
    Env e = env_new();
    TCGCPU *c = e.cpu;
    CODE_AT(&e, CODE, 0x48, 0x8b, 0x43, 0x08,                     /* mov rax, [rbx+8] */
            0x48, 0x89, 0x43, 0x10,                               /* mov [rbx+16], rax */
            0x48, 0x8b, 0x4b, 0x10,                               /* mov rcx, [rbx+16] */
            0x48, 0x89, 0x4b, 0x18,                               /* mov [rbx+24], rcx */
            0xf4);
    CODE_AT(&e, CODE + 0x40, 0x48, 0x89, 0x13,                    /* mov [rbx], rdx */
            0x48, 0x8b, 0x43, 0x08,                               /* mov rax, [rbx+8] */
            0x48, 0x8b, 0x4d, 0x00,                               /* mov rcx, [rbp] */
            0x48, 0x89, 0x4b, 0x10,                               /* mov [rbx+16], rcx */
            0xf4);
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x42, 0);
    tlb_flush(c, true);
    for (int pass = 0; pass < 2; pass++) {
        st64_le(e.ram + 0x41108, 0x1234567890abcdefull);
        st64_le(e.ram + 0x41110, 0);
        st64_le(e.ram + 0x41118, 0);
        c->rip = CODE; c->halted = false;
        c->regs[R_EBX] = 0x41100; c->regs[R_EAX] = c->regs[R_ECX] = 0;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_EQ("RAX loaded", 0x1234567890abcdefull, c->regs[R_EAX]);
        CHECK_EQ("RCX reloaded from the store", 0x1234567890abcdefull, c->regs[R_ECX]);
        CHECK_EQ("second store", 0x1234567890abcdefull, rd64(&e, 0x41118));
    }
    st64_le(e.ram + 0x41100, 0);
    st64_le(e.ram + 0x41110, 0x5555);
    c->rip = CODE + 0x40; c->halted = false;
    c->regs[R_EBP] = 0x41100; c->regs[R_EDX] = 0x7777;
    CHECK_EQ("store first: warm-up run", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("store first: RCX loaded from the first store", 0x7777, c->regs[R_ECX]);
    CHECK_EQ("store first: last store", 0x7777, rd64(&e, 0x41110));
    st64_le(e.ram + 0x41100, 0);
    st64_le(e.ram + 0x41110, 0x5555);
    c->rip = CODE + 0x40; c->halted = false;
    c->regs[R_EBP] = 0x42008; c->regs[R_EDX] = 0x8888;
    c->regs[R_EAX] = 0; c->regs[R_ECX] = 0x99;
    c->stop_on_exception = true;
    CHECK_EQ("fault: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("fault: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("fault: CR2", 0x42008, c->cr2);
    CHECK_EQ("fault: RIP at the third", CODE + 0x47, c->rip);
    CHECK_EQ("fault: first store done", 0x8888, rd64(&e, 0x41100));
    CHECK_EQ("fault: second (load) done", 0x1234567890abcdefull, c->regs[R_EAX]);
    CHECK_EQ("fault: RCX unchanged", 0x99, c->regs[R_ECX]);
    CHECK_EQ("fault: fourth (store) not done", 0x5555, rd64(&e, 0x41110));
}

/*
 * A load fused with the flag producer and branch after it (exec.c
 * LDn_<J>): "mov cl, [rdi]; test cl, cl; jz/jnz", "mov cl, [rdi];
 * cmp cl, [rsi]; jz/jnz", "mov rax, [rbx+8]; test rax, rax; jz/jnz".  The
 * byte load keeps bits 63:8 of RCX; the branch and ZF/CF follow the loaded
 * value; a fault of the load is the load's, with the flags untouched.
 */
static void test_fused_load_then_branch(void)
{
    static const char *const kinds[] = {
        "test cl,cl; jnz", "test cl,cl; jz", "cmp cl,[rsi]; jnz", "cmp cl,[rsi]; jz",
        "test rax,rax; jz", "test rax,rax; jnz",
    };
    static const uint64_t vals[] = { 0, 0x41, 0x80, 0x8000000000000000ull, 1 };
    Env e = env_new();
    TCGCPU *c = e.cpu;
    setup_long64(&e);
    st64_le(e.ram + PT + 8 * 0x42, 0);
    tlb_flush(c, true);
    e.ram[0x41200] = 0x41;
    unsigned slot = 0;
    for (unsigned k = 0; k < ARRAY_LEN(kinds); k++) {
        uint8_t code[16];
        unsigned n = 0;
        if (k < 4) {
            code[n++] = 0x8a; code[n++] = 0x0f;                     /* mov cl, [rdi] */
            if (k < 2) { code[n++] = 0x84; code[n++] = 0xc9; }      /* test cl, cl */
            else { code[n++] = 0x3a; code[n++] = 0x0e; }            /* cmp cl, [rsi] */
        } else {
            code[n++] = 0x48; code[n++] = 0x8b; code[n++] = 0x43; code[n++] = 0x08;  /* mov rax, [rbx+8] */
            code[n++] = 0x48; code[n++] = 0x85; code[n++] = 0xc0;   /* test rax, rax */
        }
        bool jz = k == 1 || k == 3 || k == 4;
        code[n++] = jz ? 0x74 : 0x75;
        code[n++] = 0x05;
        code[n++] = 0xba; code[n++] = 1; code[n++] = 0; code[n++] = 0; code[n++] = 0;   /* mov edx, 1 */
        code[n++] = 0xf4;
        uint32_t at = CODE + 32 * slot++;
        put(&e, at, code, n);
        for (unsigned vi = 0; vi < ARRAY_LEN(vals); vi++) {
            for (int pass = 0; pass < 2; pass++) {
                uint64_t v = k < 4 ? vals[vi] & 0xff : vals[vi], b = 0x41;
                st64_le(e.ram + 0x41100, v);
                st64_le(e.ram + 0x41108, v);
                c->rip = at; c->halted = false;
                c->regs[R_EDI] = 0x41100; c->regs[R_ESI] = 0x41200; c->regs[R_EBX] = 0x41100;
                c->regs[R_ECX] = 0x1122334455667700ull; c->regs[R_EDX] = 0; c->regs[R_EAX] = 0;
                CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
                bool zf = k < 2 || k >= 4 ? v == 0 : v == b;
                bool cf = (k == 2 || k == 3) && v < b;
                bool taken = jz ? zf : !zf;
                uint32_t fl = arith_flags(&e);
                if (c->regs[R_EDX] != (taken ? 0u : 1u) || !!(fl & CC_Z) != zf || !!(fl & CC_C) != cf)
                    CHECK_MSG(false, "%s, value %#" PRIx64 ": expected %s ZF=%d CF=%d, got %s ZF=%d CF=%d",
                              kinds[k], v, taken ? "taken" : "not taken", zf, cf,
                              c->regs[R_EDX] ? "not taken" : "taken", !!(fl & CC_Z), !!(fl & CC_C));
                if (k < 4)
                    CHECK_EQ("RCX: byte loaded, bits 63:8 kept", 0x1122334455667700ull | v, c->regs[R_ECX]);
                else
                    CHECK_EQ("RAX loaded", v, c->regs[R_EAX]);
            }
        }
    }
    /* The load faults: RIP at it, RCX and the flags as before. */
    c->rip = CODE; c->halted = false;
    c->regs[R_EDI] = 0x42000; c->regs[R_ECX] = 0x55;
    cpu_set_eflags(c, CC_C | CC_Z, CC_ALL);
    c->stop_on_exception = true;
    CHECK_EQ("fault: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("fault: vector", EXCP_PF, c->stopped_vec);
    CHECK_EQ("fault: RIP at the load", CODE, c->rip);
    CHECK_EQ("fault: RCX unchanged", 0x55, c->regs[R_ECX]);
    CHECK_EQ("fault: flags unchanged", CC_C | CC_Z, arith_flags(&e));
}

/*
 * The byte-scan loop runs inside one handler (exec.c INC_JNZ_CMP8_MI), but
 * each round still counts as a block against the budget and adds its
 * three instructions to icount, so a run stopped by the budget is stopped
 * at the loop's head with RDI and icount agreeing.
 */
static void test_fused_scan_loop_budget_and_icount(void)
{
    Env e = env_new();
    TCGCPU *c = e.cpu;
    CODE_AT(&e, CODE, 0x48, 0xff, 0xc7,                           /* L: inc rdi */
            0x80, 0x3f, 0x00, 0x75, 0xf8, 0xf4);                  /* cmp byte [rdi], 0; jnz L; hlt */
    memset(e.ram + 0x100000, 'x', 30000);
    e.ram[0x100000 + 30000] = 0;
    setup_long64(&e);
    c->regs[R_EDI] = 0xfffff;
    CHECK_EQ("run result", TCG_RUN_BUDGET, tcg_cpu_exec(c, 1000));
    uint64_t rounds = c->regs[R_EDI] - 0xfffff;
    CHECK_EQ("stopped after 1000 blocks", 1000, rounds);
    CHECK_EQ("icount = 3 per round", 3 * rounds, c->icount);
    CHECK_EQ("RIP at the loop head", CODE, c->rip);
    TCGRunResult r;
    do {
        r = tcg_cpu_exec(c, 1000);
    } while (r == TCG_RUN_BUDGET || r == TCG_RUN_EXIT);
    CHECK_EQ("run result at the end", TCG_RUN_HALTED, r);
    CHECK_EQ("RDI at the NUL", 0x100000 + 30000, c->regs[R_EDI]);
    CHECK_EQ("icount at the end", 3 * 30001 + 1, c->icount);
}

/*
 * A push of a run that rewrites the next instruction of the same block:
 * the rest of the run must not run from the stale translation (the store
 * kills the block; the run stops at the killed op, exec.c).  The first
 * push writes "mov cl, 0x55; hlt" over the push rbx and push rdx after it.
 */
static void test_fused_push_run_rewrites_itself(void)
{
    Env e = env_new();
    TCGCPU *c = e.cpu;
    CODE_AT(&e, CODE, 0x50, 0x53, 0x52, 0xf4);                    /* push rax, rbx, rdx; hlt */
    setup_long64(&e);
    c->regs[R_EAX] = 0xf455b1;                                    /* bytes b1 55 f4 */
    c->regs[R_EBX] = 0xbbbbbbbbbbbbbbbbull;
    c->regs[R_EDX] = 0xdddddddddddddddd;
    c->regs[R_ECX] = 0;
    c->regs[R_ESP] = CODE + 9;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("CL from the new code", 0x55, c->regs[R_ECX]);
    CHECK_EQ("RSP after one push", CODE + 1, c->regs[R_ESP]);
    CHECK_EQ("RIP after the new HLT", CODE + 4, c->rip);
}

/*
 * Dead-flag elimination (exec.c flags_liveness, known_cf).  Each case runs
 * one 64-bit block whose first flag result is overwritten by a later op on
 * some path but must still be seen on another: at a fault, through an
 * in-block jump, or by INC/DEC, which keep CF (SDM 2A "INC").  RBX points
 * at a not-present page where a case needs a #PF.
 */
#define NP_PAGE 0x150000u

static void dead_flags_env(Env *e, uint64_t rax, uint64_t rcx, uint64_t rdx, uint64_t rsi)
{
    tb_invalidate_phys_range(CODE, 0x1000);     /* blocks of the previous case (see rerun) */
    setup_long64(e);
    st64_le(e->ram + PT + 8 * (NP_PAGE >> 12), 0);
    e->cpu->regs[R_EAX] = rax;
    e->cpu->regs[R_ECX] = rcx;
    e->cpu->regs[R_EDX] = rdx;
    e->cpu->regs[R_ESI] = rsi;
    e->cpu->regs[R_EBX] = NP_PAGE;
    cpu_set_eflags(e->cpu, 0, CC_ALL);
}

static void test_dead_flags_live_at_a_fault(void)
{
    /*
     * OP; mov edx,[rbx] or sub edx,[rbx] (#PF; the latter overwrites the
     * flags, but faults first); sub esi,1; hlt.  CF is 1 on entry.
     */
    static const struct {
        uint8_t code[8];
        uint64_t rax;
        uint32_t flags;
        const char *what;
    } c[] = {
        { { 0x01, 0xc8, 0x8b, 0x13, 0x83, 0xee, 0x01, 0xf4 }, 0xffffffffu,
          CC_C | CC_Z | CC_P | CC_A, "add eax,ecx; mov edx,[rbx]" },
        { { 0x01, 0xc8, 0x2b, 0x13, 0x83, 0xee, 0x01, 0xf4 }, 0xffffffffu,
          CC_C | CC_Z | CC_P | CC_A, "add eax,ecx; sub edx,[rbx]" },
        { { 0xff, 0xc8, 0x2b, 0x13, 0x83, 0xee, 0x01, 0xf4 }, 1,
          CC_C | CC_Z | CC_P, "dec eax; sub edx,[rbx] (CF kept)" },
    };
    for (unsigned k = 0; k < ARRAY_LEN(c); k++) {
        Env e = env_new();
        put(&e, CODE, c[k].code, sizeof(c[k].code));
        dead_flags_env(&e, c[k].rax, 1, 0, 5);
        cpu_set_eflags(e.cpu, CC_C, CC_ALL);
        e.cpu->stop_on_exception = true;
        CHECK_EQ(c[k].what, TCG_RUN_EXCEPTION, run(&e));
        CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
        CHECK_EQ("RIP at the faulting instruction", CODE + 2, e.cpu->rip);
        CHECK_MSG(arith_flags(&e) == c[k].flags, "%s: flags at the #PF %#x, expected %#x",
                  c[k].what, arith_flags(&e), c[k].flags);

        /* Delivered: the frame's RFLAGS (SDM 3A §6.14.2) holds them too. */
        Env d = env_new();
        put(&d, CODE, c[k].code, sizeof(c[k].code));
        dead_flags_env(&d, c[k].rax, 1, 0, 5);
        cpu_set_eflags(d.cpu, CC_C, CC_ALL);
        CHECK_EQ("run result (handler HLT)", TCG_RUN_HALTED, run(&d));
        uint64_t sp = d.cpu->regs[R_ESP];
        CHECK_EQ("frame RIP", CODE + 2, rd64(&d, (uint32_t)sp + 8));      /* above the error code */
        CHECK_MSG((rd64(&d, (uint32_t)sp + 24) & CC_ALL) == c[k].flags,
                  "%s: pushed RFLAGS %#" PRIx64 ", expected %#x", c[k].what,
                  rd64(&d, (uint32_t)sp + 24) & CC_ALL, c[k].flags);
    }
}

/*
 * A load between a flag result and its overwriter may fault (#PF here):
 * the exception sees that result's flags, rebuilt by the load's slow path
 * (exec.c flags_recover) or kept because they cannot be.  Each case: OP;
 * [MOV]; a load from [rbx] or [rsp] that faults (#PF); the flags expected
 * there.  CF is 1 on entry (INC must keep it).
 */
static void test_dead_flags_rebuilt_at_a_load_fault(void)
{
    static const struct {
        uint8_t code[12];
        uint64_t rax, rcx;
        uint32_t flags;
        const char *what;
    } c[] = {
        { { 0x21, 0xc8 }, 0x80000001u, 0x80000003u, CC_S, "and eax,ecx" },
        { { 0x83, 0xe8, 0x05 }, 3, 0, CC_S | CC_C | CC_A, "sub eax,5" },
        { { 0x83, 0xf0, 0x7f }, 0x7f, 0, CC_Z | CC_P, "xor eax,7Fh" },
        { { 0x48, 0x01, 0xc8 }, 0x7fffffffffffffffull, 1, CC_O | CC_S | CC_A | CC_P,
          "add rax,rcx" },
        { { 0xff, 0xc0 }, 5, 0, CC_C | CC_P, "inc eax (CF kept)" },
        { { 0xff, 0xc8 }, 1, 0, CC_C | CC_Z | CC_P, "dec eax (CF kept)" },
        { { 0x01, 0xc0 }, 0x80000000u, 0, CC_C | CC_Z | CC_O | CC_P, "add eax,eax" },
        { { 0xc1, 0xe0, 0x04 }, 0x10000001u, 0, CC_C | CC_O, "shl eax,4 (OF as for a count of 1)" },
        /* ADD's source register overwritten before the load: no rebuilding from it */
        { { 0x01, 0xc8, 0x89, 0xf9 }, 0xffffffffu, 1, CC_C | CC_Z | CC_P | CC_A,
          "add eax,ecx; mov ecx,edi" },
        { { 0x21, 0xc8, 0x89, 0xf8 }, 0x80000001u, 0x80000003u, CC_S, "and eax,ecx; mov eax,edi" },
        /* ROL/ROR: CF and OF from the result, the others from before (here CF only, or SUB's) */
        { { 0xc1, 0xc0, 0x04 }, 0x10000001u, 0, CC_C | CC_O, "rol eax,4" },
        { { 0x48, 0xc1, 0xc8, 0x08 }, 0x80, 0, CC_C | CC_O, "ror rax,8" },
        { { 0x83, 0xe8, 0x05, 0xd1, 0xc0 }, 3, 0, CC_S | CC_C | CC_A, "sub eax,5; rol eax,1" },
        { { 0xd1, 0xc8, 0x89, 0xf8 }, 1, 0, CC_C | CC_O, "ror eax,1; mov eax,edi" },
    };
    /* The faulting load: a plain one, a fused compare-and-branch, a POP. */
    static const struct { uint8_t code[8]; unsigned len; const char *what; } tail[] = {
        { { 0x8b, 0x13, 0x83, 0xee, 0x01, 0xf4 }, 6, "mov edx,[rbx]" },
        { { 0x80, 0x3b, 0x00, 0x75, 0x00, 0xf4 }, 6, "cmp byte [rbx],0; jnz" },
        { { 0x48, 0x89, 0xdc, 0x5a, 0x83, 0xee, 0x01, 0xf4 }, 8, "mov rsp,rbx; pop rdx" },
    };
    for (unsigned t = 0; t < ARRAY_LEN(tail); t++) {
        for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
            Env e = env_new();
            unsigned n = 0;
            while (n < sizeof(c[i].code) && c[i].code[n])
                n++;
            /* code bytes end at the first 00 (no case needs one) */
            put(&e, CODE, c[i].code, n);
            put(&e, CODE + n, tail[t].code, tail[t].len);
            dead_flags_env(&e, c[i].rax, c[i].rcx, 0, 5);
            e.cpu->regs[R_EDI] = 0x12345678;
            cpu_set_eflags(e.cpu, CC_C, CC_ALL);
            e.cpu->stop_on_exception = true;
            CHECK_EQ(c[i].what, TCG_RUN_EXCEPTION, run(&e));
            CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
            CHECK_MSG(arith_flags(&e) == c[i].flags, "%s; %s: flags at the #PF %#x, expected %#x",
                      c[i].what, tail[t].what, arith_flags(&e), c[i].flags);
        }
    }
}

/*
 * BSF r, r (exec.c BSF_RR, BSF_RR_NF when its flags are dead, as in
 * glibc's "bsf eax, eax; add rax, rdi"): SDM 2A "BSF": the index of the
 * lowest set bit, or for a zero source ZF = 1 and the destination
 * unchanged; the undefined flags keep their values (helper_bitscan's choice).
 */
static void test_bsf_register_forms(void)
{
    static const struct { uint64_t rcx, rsi, rax, rbx; unsigned zf; } c[] = {
        { 0, 0x100, 0x1234, 9, 1 },
        { 0x80000000u, 0x8000000000000000ull, 31, 64, 0 },
        { 0xffffffff00000000ull, 1, 0x1234, 1, 1 },     /* a 32-bit source of 0 */
    };
    for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
        Env e = env_new();
        CODE_AT(&e, CODE, 0xf9,                         /* stc */
                0x0f, 0xbc, 0xc1,                       /* bsf eax, ecx */
                0x0f, 0x94, 0xc2,                       /* setz dl */
                0x41, 0x0f, 0x92, 0xc0,                 /* setc r8b (CF kept) */
                0x48, 0x0f, 0xbc, 0xde,                 /* bsf rbx, rsi (flags dead: add) */
                0x83, 0xc3, 0x01,                       /* add ebx, 1 */
                0xf4);
        setup_long64(&e);
        e.cpu->regs[R_ECX] = c[i].rcx;
        e.cpu->regs[R_ESI] = c[i].rsi;
        e.cpu->regs[R_EAX] = 0x1234;
        e.cpu->regs[R_EDX] = 0xff;
        e.cpu->regs[R_EBX] = 0x55;
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_MSG(e.cpu->regs[R_EAX] == c[i].rax && (e.cpu->regs[R_EDX] & 0xff) == c[i].zf &&
                  (e.cpu->regs[8] & 0xff) == 1,
                  "bsf eax, %#" PRIx64 ": EAX %#" PRIx64 " ZF %u CF %u, expected %#" PRIx64 " ZF %u CF 1",
                  c[i].rcx, e.cpu->regs[R_EAX], (unsigned)(e.cpu->regs[R_EDX] & 0xff),
                  (unsigned)(e.cpu->regs[8] & 0xff), c[i].rax, c[i].zf);
        uint64_t want_rbx = c[i].rsi ? c[i].rbx : 0x56;
        CHECK_MSG(e.cpu->regs[R_EBX] == want_rbx, "bsf rbx, %#" PRIx64 "; add ebx, 1: RBX %#" PRIx64
                  ", expected %#" PRIx64, c[i].rsi, e.cpu->regs[R_EBX], want_rbx);
    }
}

static void test_dead_flags_jump_into_a_load_window(void)
{
    /*
     * cmp edi,0; jnz T; add eax,ecx; T: mov edx,[rbx] (#PF); sub esi,1; hlt.
     * Through the jump the #PF sees CMP's flags, not ADD's (which did not
     * run, and must not be rebuilt from EAX and ECX there).
     */
    static const uint8_t code[] = {
        0x83, 0xff, 0x00, 0x75, 0x02, 0x01, 0xc8, 0x8b, 0x13, 0x83, 0xee, 0x01, 0xf4,
    };
    static const struct { uint32_t rdi, flags; const char *what; } c[] = {
        { 1, 0, "jump taken: CMP 1, 0" },
        { 0, CC_C | CC_Z | CC_P | CC_A, "fall-through: ADD FFFFFFFFh + 1" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
        Env e = env_new();
        put(&e, CODE, code, sizeof(code));
        dead_flags_env(&e, 0xffffffffu, 1, 0, 5);
        e.cpu->regs[R_EDI] = c[i].rdi;
        e.cpu->stop_on_exception = true;
        CHECK_EQ(c[i].what, TCG_RUN_EXCEPTION, run(&e));
        CHECK_EQ("vector", EXCP_PF, e.cpu->stopped_vec);
        CHECK_MSG(arith_flags(&e) == c[i].flags, "%s: flags at the #PF %#x, expected %#x",
                  c[i].what, arith_flags(&e), c[i].flags);
    }
}

static void test_dead_flags_jump_source_keeps_them(void)
{
    /*
     * add eax,ecx; jnz L; sub esi,1; L: setc bl; hlt.  SUB overwrites ADD's
     * flags on the fall-through path only: the in-block jump to L must see
     * ADD's CF although JNZ itself reads only ZF.
     */
    static const uint8_t code[] = {
        0x01, 0xc8, 0x75, 0x03, 0x83, 0xee, 0x01, 0x0f, 0x92, 0xc3, 0xf4,
    };
    static const struct { uint32_t rax, rcx; uint8_t bl; const char *what; } c[] = {
        { 0xffffffffu, 2, 1, "jump taken: ADD's CF = 1" },
        { 0xffffffffu, 1, 0, "fall-through: SUB 5 - 1 leaves CF = 0" },
        { 1, 2, 0, "jump taken: ADD's CF = 0" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
        Env e = env_new();
        put(&e, CODE, code, sizeof(code));
        dead_flags_env(&e, c[i].rax, c[i].rcx, 0, 5);
        cpu_set_eflags(e.cpu, c[i].bl ? 0 : CC_C, CC_ALL);     /* the stale value is wrong */
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_MSG((e.cpu->regs[R_EBX] & 0xff) == c[i].bl, "%s: BL %u", c[i].what,
                  (unsigned)(e.cpu->regs[R_EBX] & 0xff));
    }
}

static void test_dead_flags_inc_dec_known_cf(void)
{
    /* Each: a producer, a Jcc that falls through (or not), INC/DEC ESI, SETC BL, HLT. */
    static const struct {
        uint8_t code[16];
        uint32_t rax, rcx, rdx, rsi;
        uint8_t bl;
        const char *what;
    } c[] = {
        /* cmp ecx,edx; jnb +5; dec esi; setc bl; hlt; hlt... */
        { { 0x39, 0xd1, 0x73, 0x05, 0xff, 0xce, 0x0f, 0x92, 0xc3, 0xf4, 0xf4 },
          0, 1, 2, 5, 1, "JNB fell through: CF = 1 into DEC" },
        /* cmp ecx,edx; jnb +7; dec esi; jnz +3 (fused); setc bl; hlt */
        { { 0x39, 0xd1, 0x73, 0x07, 0xff, 0xce, 0x75, 0x03, 0x0f, 0x92, 0xc3, 0xf4, 0xf4, 0xf4 },
          0, 1, 2, 1, 1, "JNB fell through: CF = 1 into DEC; JNZ" },
        /* add eax,ecx (FFFFFFFFh + 1: ZF, CF); jnz +5; inc esi; setc bl; hlt */
        { { 0x01, 0xc8, 0x75, 0x05, 0xff, 0xc6, 0x0f, 0x92, 0xc3, 0xf4, 0xf4 },
          0xffffffffu, 1, 0, 5, 1, "JNZ fell through after ADD: CF stays 1" },
        /* cmp ecx,edx (equal); jnz +5; inc esi; setc bl; hlt */
        { { 0x39, 0xd1, 0x75, 0x05, 0xff, 0xc6, 0x0f, 0x92, 0xc3, 0xf4, 0xf4 },
          0, 7, 7, 5, 0, "JNZ fell through after CMP: CF = 0" },
        /* cmp ecx,edx; jb +2; xor eax,eax; L: inc esi; setc bl; hlt: L is a jump target */
        { { 0x39, 0xd1, 0x72, 0x02, 0x31, 0xc0, 0xff, 0xc6, 0x0f, 0x92, 0xc3, 0xf4 },
          0, 1, 2, 5, 1, "JB taken to INC: CMP's CF = 1" },
        { { 0x39, 0xd1, 0x72, 0x02, 0x31, 0xc0, 0xff, 0xc6, 0x0f, 0x92, 0xc3, 0xf4 },
          0, 3, 2, 5, 0, "XOR before INC: CF = 0" },
        /* or eax,eax; dec esi; setc bl; hlt */
        { { 0x09, 0xc0, 0xff, 0xce, 0x0f, 0x92, 0xc3, 0xf4 },
          0, 0, 0, 5, 0, "OR before DEC: CF = 0" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
        Env e = env_new();
        put(&e, CODE, c[i].code, sizeof(c[i].code));
        dead_flags_env(&e, c[i].rax, c[i].rcx, c[i].rdx, c[i].rsi);
        cpu_set_eflags(e.cpu, c[i].bl ? 0 : CC_C, CC_ALL);
        CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
        CHECK_MSG((e.cpu->regs[R_EBX] & 0xff) == c[i].bl, "%s: BL %u", c[i].what,
                  (unsigned)(e.cpu->regs[R_EBX] & 0xff));
    }
}

static void test_dead_flags_block_shape(void)
{
    /*
     * add eax,ecx; mov edi,esi; sub esi,1; pushfq; hlt: ADD's flags die
     * (its _NF kind), the lazy flags are stale from MOV through SUB, and an
     * invalidation leaves those ops for the block to run on to PUSHFQ.
     */
    static const uint8_t code[] = { 0x01, 0xc8, 0x89, 0xf7, 0x83, 0xee, 0x01, 0x9c, 0xf4 };
    Env e = env_new();
    put(&e, CODE, code, sizeof(code));
    dead_flags_env(&e, 0xffffffffu, 1, 0, 5);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("pushed flags: SUB's (5 - 1)", 0, rd64(&e, (uint32_t)e.cpu->regs[R_ESP]) & CC_ALL);
    TranslatedBlock *tb = tb_find(CODE, TB_FLAG_CODE64);
    CHECK_MSG(tb && tb->n_ops == 5, "the block of five instructions");
    if (!tb || tb->n_ops != 5)
        return;
    CHECK_EQ("ADD without flags", OP_ADD_RR_NF, tb->ops[0].idx);
    CHECK_EQ("SUB with flags", OP_SUB_RI, tb->ops[2].idx);
    static const bool stale[5] = { false, true, true, false, false };
    for (unsigned i = 0; i < 5; i++)
        CHECK_MSG(!!(tb->ops[i].pfx & PFX_CC_STALE) == stale[i], "op %u (%s): PFX_CC_STALE %s", i,
                  tcg_op_names[tb->ops[i].idx], stale[i] ? "expected" : "unexpected");
    tb_invalidate_phys_range(CODE, 1);          /* freed only by the run loop: still readable */
    CHECK_EQ("killed: ADD exits", OP_EXIT, tb->ops[0].idx);
    CHECK_EQ("killed: MOV (stale) kept", OP_MOV_RR, tb->ops[1].idx);
    CHECK_EQ("killed: SUB (stale) kept", OP_SUB_RI, tb->ops[2].idx);
    CHECK_EQ("killed: PUSHF exits", OP_EXIT, tb->ops[3].idx);
}

static void test_ldmxcsr_checks(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x14, 0x25, 0x00, 0x20, 0x10, 0x00, 0xf4);   /* ldmxcsr [0x102000] */
    st32_le(e.ram + 0x102000, 0x1f80 | 0x10000);
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("reserved bit: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("reserved bit: #GP", EXCP_GP, e.cpu->stopped_vec);
    st32_le(e.ram + 0x102000, 0x1f80);
    check_sse_control_faults(&e);
    CHECK_EQ("valid: run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("MXCSR", 0x1f80, e.cpu->mxcsr);
}

/* Reference values from mpmath at 300 bits, rounded to 64 bits. */
static void test_x87_trig_argument_reduction_accuracy(void)
{
    static const struct { uint16_t xe; uint64_t xs; int which; uint16_t re; uint64_t rs; } c[] = {
        { 0xc00c, 0x800000000000008aull, 0, 0x3ffe, 0xf4c7c384c63d04e5ull },  /* sin(-8192.0..) */
        { 0xc00c, 0x800000000000008aull, 1, 0x3ffd, 0x95ea1e8759a68bc4ull },  /* cos */
        { 0x401b, 0xc000000000000000ull, 1, 0xbffe, 0xdc1c9c9efabefe6dull },  /* cos(402653184) */
        { 0x4012, 0xb7bbb326a2078f07ull, 0, 0x3ffd, 0xe5838c3fb3141d4bull },  /* sin(752571.19..) */
        { 0xc000, 0xc94f467d2fef1675ull, 0, 0x3ff6, 0xfdaf42b50ece7604ull },  /* sin(~-pi) */
        { 0x400d, 0x8df129e12719a96dull, 2, 0x3ffe, 0xef328cfd8f74cadbull },  /* tan */
    };
    for (unsigned i = 0; i < ARRAY_LEN(c); i++) {
        SFStatus s = { RC_NEAR, 64, 0, FPE_ALL, false, true };
        F80 r1, r2;
        CHECK_MSG(f80_trig(&s, f80_make(c[i].xe >> 15, c[i].xe & 0x7fff, c[i].xs), c[i].which, &r1, &r2),
                  "case %u in range", i);
        uint64_t d = r1.sig > c[i].rs ? r1.sig - c[i].rs : c[i].rs - r1.sig;
        CHECK_MSG(r1.se == c[i].re && d <= 2, "case %u: got %04x:%016" PRIx64 ", want %04x:%016" PRIx64
                  " (within 2 ulp)", i, r1.se, r1.sig, c[i].re, c[i].rs);
        CHECK_MSG(s.flags == FPE_PE, "case %u: flags %#x, want PE", i, s.flags);
    }
}

static void test_movaps_misaligned_is_gp_movups_is_not(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x10, 0x04, 0x25, 0x08, 0x10, 0x10, 0x00,   /* movups xmm0, [0x101008] */
            0x0f, 0x28, 0x0c, 0x25, 0x08, 0x10, 0x10, 0x00, 0xf4);        /* movaps xmm1, [0x101008] */
    st64_le(e.ram + 0x101008, 0x1122334455667788ull);
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("RIP at MOVAPS", CODE + 8, e.cpu->rip);
    CHECK_EQ("MOVUPS loaded", 0x1122334455667788ull, e.cpu->xmm[0].q[0]);
}

/* 1.0 / 0.0 with ZM unmasked: #XM with OSXMMEXCPT, #UD without; destination kept. */
static void test_sse_unmasked_exception_xm_or_ud(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xf3, 0x0f, 0x5e, 0xc1, 0xf4);       /* divss xmm0, xmm1 */
    setup_long64_sse(&e);
    e.cpu->xmm[0].d[0] = 0x3f800000;
    e.cpu->xmm[1].d[0] = 0;
    e.cpu->mxcsr = 0x1f80 & ~(FPE_ZE << 7);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("OSXMMEXCPT=1: #XM", EXCP_XM, e.cpu->stopped_vec);
    CHECK_EQ("MXCSR.ZE", FPE_ZE, e.cpu->mxcsr & FPE_ZE);
    CHECK_EQ("destination unchanged", 0x3f800000, e.cpu->xmm[0].d[0]);
    e.cpu->cr4 &= ~(uint64_t)CR4_OSXMMEXCPT;
    e.cpu->rip = CODE;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("OSXMMEXCPT=0: #UD", EXCP_UD, e.cpu->stopped_vec);
    e.cpu->mxcsr = 0x1f80;
    e.cpu->rip = CODE;
    CHECK_EQ("masked: run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("masked: +inf", 0x7f800000, e.cpu->xmm[0].d[0]);
    CHECK_EQ("masked: ZE flag", FPE_ZE, e.cpu->mxcsr & FPE_ZE);
}

static void test_sse_needs_osfxsr_and_honours_ts(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0x0f, 0xef, 0xc0, 0xf4);       /* pxor xmm0, xmm0 */
    setup_long64_sse(&e);
    e.cpu->cr4 &= ~(uint64_t)CR4_OSFXSR;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("OSFXSR=0: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("OSFXSR=0: #UD", EXCP_UD, e.cpu->stopped_vec);
    e.cpu->cr4 |= CR4_OSFXSR;
    e.cpu->cr0 |= X86_CR0_TS;
    e.cpu->rip = CODE;
    CHECK_EQ("TS=1: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("TS=1: #NM", EXCP_NM, e.cpu->stopped_vec);
}

/*
 * SDM 2B "PSHUFB", "MOVBE", 2A "CRC32": the XMM form needs CR4.OSFXSR, the
 * MMX form does not; MOVBE and CRC32 are integer instructions that run
 * with OSFXSR = 0 and CR0.TS = 1.  CRC-32C("123456789") = E3069283h with
 * the usual all-ones start and final inversion.
 */
static void test_ssse3_osfxsr_and_integer_0f38_ops(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x38, 0x00, 0xc1,              /* pshufb mm0, mm1 */
            0x0f, 0x38, 0xf0, 0x14, 0x25, 0x00, 0x10, 0x10, 0x00,  /* movbe edx, [0x101000] */
            0xb8, 0xff, 0xff, 0xff, 0xff,                   /* mov eax, -1 */
            0x48, 0xb9, '1', '2', '3', '4', '5', '6', '7', '8',    /* mov rcx, "12345678" */
            0xf2, 0x48, 0x0f, 0x38, 0xf1, 0xc1,             /* crc32 rax, rcx */
            0xb5, '9',                                      /* mov ch, '9' */
            0xf2, 0x0f, 0x38, 0xf0, 0xc5,                   /* crc32 eax, ch */
            0xf7, 0xd0,                                     /* not eax */
            0xf4);
    CODE_AT(&e, CODE + 0x100, 0x66, 0x0f, 0x38, 0x00, 0xc1, 0xf4);     /* pshufb xmm0, xmm1 */
    st32_le(e.ram + 0x101000, 0x11223344);
    setup_long64_sse(&e);
    e.cpu->cr4 &= ~(uint64_t)CR4_OSFXSR;
    e.cpu->stop_on_exception = true;
    mmx_set(e.cpu, 0, 0x0706050403020100ull);
    mmx_set(e.cpu, 1, 0x8000010203040506ull);      /* bit 7 zeroes the top byte */
    CHECK_EQ("OSFXSR=0: run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("PSHUFB mm0", 0x0000010203040506ull, mmx_get(e.cpu, 0));
    CHECK_EQ("MOVBE EDX", 0x44332211, e.cpu->regs[R_EDX]);
    CHECK_EQ("CRC32C RAX (upper half cleared)", 0xe3069283ull, e.cpu->regs[R_EAX]);
    e.cpu->cr0 |= X86_CR0_TS;
    e.cpu->rip = CODE + 4;
    e.cpu->halted = false;
    CHECK_EQ("TS=1 integer ops: run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("TS=1 CRC32C", 0xe3069283ull, e.cpu->regs[R_EAX]);
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("TS=1 MMX form: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("TS=1 MMX form: #NM", EXCP_NM, e.cpu->stopped_vec);
    e.cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
    e.cpu->rip = CODE + 0x100;
    CHECK_EQ("OSFXSR=0 XMM form: run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("OSFXSR=0 XMM form: #UD", EXCP_UD, e.cpu->stopped_vec);
}

/* MOVBE's operand size follows the code size: 16 bits by default in real mode. */
static void test_movbe_operand_size_follows_code_size(void)
{
    Env e = env_new();
    CODE_AT(&e, 0x7c00, 0x66, 0xbb, 0xff, 0xff, 0xff, 0xff,    /* mov ebx, -1 */
            0x0f, 0x38, 0xf0, 0x1e, 0x00, 0x05,             /* movbe bx, [0x500] */
            0x66, 0x0f, 0x38, 0xf0, 0x0e, 0x00, 0x05,       /* movbe ecx, [0x500] */
            0x66, 0xf2, 0x0f, 0x38, 0xf1, 0x16, 0x00, 0x05, /* crc32 edx, dword [0x500] */
            0xf4);
    st32_le(e.ram + 0x500, 0x11223344);
    setup_real(&e, 0x7c00);
    e.cpu->regs[R_EDX] = 0;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("BX swapped, upper half kept", 0xffff4433ull, e.cpu->regs[R_EBX]);
    CHECK_EQ("ECX (66: 32-bit)", 0x44332211ull, e.cpu->regs[R_ECX]);
    /* CRC-32C of 44 33 22 11 from 0 (bitwise reference computed below). */
    uint32_t crc = 0;
    for (int i = 0; i < 4; i++) {
        crc ^= e.ram[0x500 + i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    CHECK_EQ("CRC32 m32 (66 in 16-bit code)", crc, e.cpu->regs[R_EDX]);
}

/* Undefined 0F 38 forms are #UD, ahead of #NM; 16-byte operands must be aligned, PMOVZX's m64 need not. */
static void test_0f38_undefined_forms_and_alignment(void)
{
    static const uint8_t ud[][6] = {
        { 0x0f, 0x38, 0xf0, 0xc1, 0xf4 },                   /* movbe eax, ecx (register form) */
        { 0x66, 0x0f, 0x38, 0x2a, 0xc1, 0xf4 },             /* movntdqa xmm0, xmm1 */
        { 0xf3, 0x0f, 0x38, 0x00, 0xc1, 0xf4 },             /* pshufb with F3 */
        { 0x0f, 0x38, 0x41, 0xc1, 0xf4 },                   /* phminposuw without 66 */
        { 0xf2, 0x0f, 0xf0, 0xc1, 0xf4 },                   /* lddqu xmm0, xmm1 */
    };
    Env e = env_new();
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    e.cpu->cr0 |= X86_CR0_TS;
    for (unsigned i = 0; i < ARRAY_LEN(ud); i++) {
        put(&e, CODE + 0x100 * (i + 1), ud[i], sizeof(ud[i]));
        e.cpu->rip = CODE + 0x100 * (i + 1);
        CHECK_MSG(run(&e) == TCG_RUN_EXCEPTION && e.cpu->stopped_vec == EXCP_UD,
                  "form %u: want #UD, got vector %d", i, e.cpu->stopped_vec);
    }
    e.cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
    CODE_AT(&e, CODE, 0x66, 0x0f, 0x38, 0x30, 0x04, 0x25, 0x01, 0x10, 0x10, 0x00, /* pmovzxbw xmm0, [0x101001] */
            0x66, 0x0f, 0x38, 0x38, 0x0c, 0x25, 0x01, 0x10, 0x10, 0x00, 0xf4);   /* pminsb xmm1, [0x101001] */
    st64_le(e.ram + 0x101001, 0x0102030405060780ull);
    e.cpu->rip = CODE;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0, e.cpu->stopped_err);
    CHECK_EQ("RIP at PMINSB", CODE + 10, e.cpu->rip);
    CHECK_EQ("PMOVZXBW low", 0x0005000600070080ull, e.cpu->xmm[0].q[0]);
    CHECK_EQ("PMOVZXBW high", 0x0001000200030004ull, e.cpu->xmm[0].q[1]);
}

/*
 * Legacy-SSE CMPPS/CMPSS/CMPPD/CMPSD use imm8[2:0] and ignore the reserved
 * bits 7:3 (SDM 2A "CMPPS"; the 8-31 predicates are VEX-only): on the host
 * (Intel Xeon) "cmpps xmm0, xmm1, 8" compares like predicate 0 (EQ_OQ, NaN
 * unequal) and 13 like 5 (NLT_US), without #UD.
 */
static void test_cmpps_ignores_imm8_bits_7_3(void)
{
    static const float a[4] = { NAN, 1.0f, 1.0f, 2.0f }, b[4] = { 1.0f, 1.0f, 2.0f, 1.0f };
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x28, 0xd0,                     /* movaps xmm2, xmm0 */
            0x0f, 0xc2, 0xc1, 0x08,                         /* cmpps xmm0, xmm1, 8 */
            0x0f, 0xc2, 0xd1, 0x0d,                         /* cmpps xmm2, xmm1, 13 */
            0xf4);
    setup_long64_sse(&e);
    memcpy(e.cpu->xmm[0].d, a, 16);
    memcpy(e.cpu->xmm[1].d, b, 16);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result (no #UD)", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("imm 8 = EQ_OQ: lanes 1-0", 0xffffffff00000000ull, e.cpu->xmm[0].q[0]);
    CHECK_EQ("imm 8 = EQ_OQ: lanes 3-2", 0, e.cpu->xmm[0].q[1]);
    CHECK_EQ("imm 13 = NLT_US: lanes 1-0", ~0ull, e.cpu->xmm[2].q[0]);
    CHECK_EQ("imm 13 = NLT_US: lanes 3-2", 0xffffffff00000000ull, e.cpu->xmm[2].q[1]);
}

/*
 * CRC32 r32, r/m8 (SDM 2A "CRC32") with a register source: ModRM.rm 4 is
 * AH without a REX prefix and SPL with one (SDM 2A §2.2.1.2 Table 3-1).
 * CRC-32C update of FFFFFFFFh by 5Ah is 97455E45h, by 37h 49AB81F4h.
 */
static void test_crc32_byte_source_ah_without_rex_spl_with(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xf2, 0x40, 0x0f, 0x38, 0xf0, 0xf4,  /* crc32 esi, spl */
            0xf2, 0x0f, 0x38, 0xf0, 0xdc,                   /* crc32 ebx, ah */
            0xf4);
    setup_long64(&e);
    e.cpu->regs[R_ESP] = 0x8005a;                           /* SPL = 5Ah */
    e.cpu->regs[R_EAX] = 0x3700;                            /* AH = 37h */
    e.cpu->regs[R_ESI] = 0xffffffffu;
    e.cpu->regs[R_EBX] = 0xffffffffu;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("crc32 esi, spl (REX)", 0x97455e45u, e.cpu->regs[R_ESI]);
    CHECK_EQ("crc32 ebx, ah (no REX)", 0x49ab81f4u, e.cpu->regs[R_EBX]);
}

/*
 * Undefined encodings in the legacy 0F map are #UD even with CR0.TS = 1:
 * they are no SSE/MMX instruction, so the #NM rule of SDM 3A Table 12-8
 * does not apply (MOVNTPS's register form, SDM 2B "MOVNTPS": ModRM.mod
 * must address memory).  The defined forms next to them give #NM.
 */
static void test_legacy_0f_undefined_forms_ud_before_nm(void)
{
    static const struct { uint8_t b[6]; int vec; } forms[] = {
        { { 0x0f, 0x2b, 0xc1, 0xf4 }, EXCP_UD },                /* movntps xmm0, xmm1 */
        { { 0x66, 0x0f, 0xe7, 0xc1, 0xf4 }, EXCP_UD },          /* movntdq xmm0, xmm1 */
        { { 0x0f, 0xe7, 0xc1, 0xf4 }, EXCP_UD },                /* movntq mm0, mm1 */
        { { 0xf3, 0x0f, 0x28, 0xc1, 0xf4 }, EXCP_UD },          /* movaps with F3 */
        { { 0x66, 0x0f, 0x12, 0xc1, 0xf4 }, EXCP_UD },          /* movlpd xmm0, xmm1 */
        { { 0x66, 0x0f, 0x50, 0x00, 0xf4 }, EXCP_UD },          /* movmskpd eax, [rax] */
        { { 0x66, 0x0f, 0x73, 0xe1, 0x05, 0xf4 }, EXCP_UD },    /* 66 0F 73 /4 (no PSRAQ) */
        { { 0x0f, 0xd6, 0xc1, 0xf4 }, EXCP_UD },                /* 0F D6 without prefix */
        { { 0x0f, 0x7c, 0xc1, 0xf4 }, EXCP_UD },                /* haddps without F2 */
        { { 0xf2, 0x0f, 0x5b, 0xc1, 0xf4 }, EXCP_UD },          /* 0F 5B with F2 */
        { { 0x66, 0x0f, 0xf0, 0x00, 0xf4 }, EXCP_UD },          /* lddqu with 66 */
        { { 0x0f, 0x2b, 0x00, 0xf4 }, EXCP_NM },                /* movntps [rax], xmm0 */
        { { 0x0f, 0xe7, 0x00, 0xf4 }, EXCP_NM },                /* movntq [rax], mm0 */
        { { 0x66, 0x0f, 0xef, 0xc0, 0xf4 }, EXCP_NM },          /* pxor xmm0, xmm0 */
        { { 0x66, 0x0f, 0x73, 0xf9, 0x05, 0xf4 }, EXCP_NM },    /* pslldq xmm1, 5 */
        { { 0xf2, 0x0f, 0xf0, 0x00, 0xf4 }, EXCP_NM },          /* lddqu xmm0, [rax] */
    };
    Env e = env_new();
    setup_long64_sse(&e);
    e.cpu->stop_on_exception = true;
    e.cpu->cr0 |= X86_CR0_TS;
    for (unsigned i = 0; i < ARRAY_LEN(forms); i++) {
        put(&e, CODE + 0x100 * (i + 1), forms[i].b, sizeof(forms[i].b));
        e.cpu->rip = CODE + 0x100 * (i + 1);
        e.cpu->regs[R_EAX] = 0x101000;
        e.cpu->halted = false;
        CHECK_MSG(run(&e) == TCG_RUN_EXCEPTION && e.cpu->stopped_vec == forms[i].vec,
                  "form %u (%02x %02x %02x %02x): want vector %d, got %d", i, forms[i].b[0],
                  forms[i].b[1], forms[i].b[2], forms[i].b[3], forms[i].vec, e.cpu->stopped_vec);
    }
}

/* RCPPS/RSQRTPS: documented relative error < 2^-11. */
static void test_rcpps_rsqrtps_accuracy(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x53, 0xc8, 0x0f, 0x52, 0xd0, 0xf4);   /* rcpps xmm1,xmm0; rsqrtps xmm2,xmm0 */
    setup_long64_sse(&e);
    static const float in[4] = { 3.0f, 0.1f, 12345.678f, 1e-30f };
    memcpy(e.cpu->xmm[0].d, in, 16);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    for (int i = 0; i < 4; i++) {
        float rc, rs;
        memcpy(&rc, &e.cpu->xmm[1].d[i], 4);
        memcpy(&rs, &e.cpu->xmm[2].d[i], 4);
        double erc = fabs(rc * (double)in[i] - 1.0);
        double ers = fabs(rs * sqrt((double)in[i]) - 1.0);
        CHECK_MSG(erc < 1.0 / 2048, "rcp(%g) = %g, relative error %g", in[i], rc, erc);
        CHECK_MSG(ers < 1.0 / 2048, "rsqrt(%g) = %g, relative error %g", in[i], rs, ers);
    }
}

static void test_cpuid_describes_model(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x31, 0xc0, 0x0f, 0xa2, 0xf4);       /* xor eax,eax; cpuid */
    setup_pm32(&e);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EBX", 0x756e6547, e.cpu->regs[R_EBX]);       /* "Genu" */
    e.cpu->regs[R_EAX] = 1;
    e.cpu->rip = CODE + 2;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(e.cpu->regs[R_EDX] & 1, "FPU advertised");
    CHECK_MSG(e.cpu->regs[R_EDX] & (1u << 24), "FXSR advertised");
    CHECK_EQ("MMX FXSR SSE SSE2", 0xfu << 23, e.cpu->regs[R_EDX] & (0xfu << 23));
    /* SSE3 SSSE3 SSE4.1 SSE4.2 are implemented (ops-sse*.c); AVX (28) is not. */
    CHECK_EQ("SSE3 SSSE3 SSE4.1 SSE4.2", (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20),
             e.cpu->regs[R_ECX] & ((1u << 0) | (1u << 9) | (1u << 19) | (1u << 20)));
    CHECK_MSG(!(e.cpu->regs[R_ECX] & (1u << 28)), "no AVX advertised");
    e.cpu->regs[R_EAX] = 0x80000001;
    e.cpu->rip = CODE + 2;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(e.cpu->regs[R_EDX] & (1u << 29), "long mode advertised");
    CHECK_MSG(e.cpu->regs[R_EDX] & (1u << 20), "NX advertised");
}

/* Runs RDMSR (wr=false) or WRMSR of ECX=msr (EDX:EAX=v) at CPL 0; -1 = no fault, else the vector. */
static int msr_access(Env *e, bool wr, uint32_t msr, uint64_t *v)
{
    CODE_AT(e, CODE, 0x0f, 0x32, 0xf4);                     /* rdmsr; hlt */
    CODE_AT(e, CODE + 0x10, 0x0f, 0x30, 0xf4);              /* wrmsr; hlt */
    e->cpu->rip = wr ? CODE + 0x10 : CODE;
    e->cpu->halted = false;
    e->cpu->regs[R_ECX] = msr;
    e->cpu->regs[R_EAX] = (uint32_t)*v;
    e->cpu->regs[R_EDX] = (uint32_t)(*v >> 32);
    e->cpu->stop_on_exception = true;
    TCGRunResult r = run(e);
    if (r == TCG_RUN_EXCEPTION)
        return e->cpu->stopped_vec;
    if (!wr)
        *v = (uint32_t)e->cpu->regs[R_EAX] | (uint64_t)(uint32_t)e->cpu->regs[R_EDX] << 32;
    return -1;
}

/*
 * kestrel64's CPUID signature is the shared model table's (KVM reports the
 * same), and is not a family-6 model below 15, on which Linux clears PAT
 * (early_init_intel, erratum AN7).  PAT is advertised and IA32_PAT (SDM 3A
 * §12.12.2) holds Linux's layout and refuses the reserved types 2 and 3.
 */
static void test_kestrel64_signature_lets_linux_keep_pat(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE + 0x20, 0x0f, 0xa2, 0xf4);             /* cpuid; hlt */
    setup_pm32(&e);
    e.cpu->rip = CODE + 0x20;
    e.cpu->regs[R_EAX] = 1;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    uint32_t sig = (uint32_t)e.cpu->regs[R_EAX];
    CHECK_EQ("CPUID.01H:EAX = the model table's kestrel64",
             x86_cpu_model_signature(x86_cpu_model_find("kestrel64")), sig);
    unsigned family = (sig >> 8) & 0xf, model = (sig >> 4) & 0xf;
    if (family == 15)
        family += (sig >> 20) & 0xff;
    if (family == 6 || family >= 15)
        model |= ((sig >> 16) & 0xf) << 4;
    CHECK_MSG(!(family == 6 && model < 15),
              "family %u model %u: Linux disables PAT on family 6 below model 15", family, model);
    CHECK_MSG(e.cpu->regs[R_EDX] & (1u << 16), "CPUID.01H:EDX.PAT advertised");
    uint64_t v = 0;
    CHECK_EQ("IA32_PAT readable", -1, msr_access(&e, false, 0x277, &v));
    CHECK_EQ("IA32_PAT power-on value", 0x0007040600070406ull, v);
    v = 0x0007010600070106ull;                              /* Linux: WB WC UC- UC WB WP UC- WT */
    CHECK_EQ("IA32_PAT write", -1, msr_access(&e, true, 0x277, &v));
    v = 0;
    CHECK_EQ("IA32_PAT read back", -1, msr_access(&e, false, 0x277, &v));
    CHECK_EQ("IA32_PAT value", 0x0007010600070106ull, v);
    v = 0x0007010600070102ull;                              /* PA0 = 2: reserved type */
    CHECK_EQ("IA32_PAT reserved type", EXCP_GP, msr_access(&e, true, 0x277, &v));
    cpu_reset_state(e.cpu, false);
    CHECK_EQ("EDX after RESET = the signature (SDM 3A §9.1.4)", sig, e.cpu->regs[R_EDX]);
}

/* INIT (SDM 3A Table 10-1): registers back to their reset values, but x87/SSE, XCR0 and MTRRs kept. */
static void test_init_keeps_fpu_sse_xcr0_mtrr(void)
{
    Env e = env_new();
    setup_pm32(&e);
    e.cpu->xmm[5].q[1] = 0x1122334455667788ull;
    e.cpu->mxcsr = 0x1fc0;
    e.cpu->fcw = 0x027f;
    e.cpu->xcr0 = XSTATE_X87 | XSTATE_SSE;
    e.cpu->mtrr.def_type = 0xc06;
    e.cpu->regs[R_EBX] = 42;
    cpu_init_state(e.cpu);
    CHECK_EQ("CR0 back to reset value", X86_CR0_ET | X86_CR0_CD | X86_CR0_NW, e.cpu->cr0);
    CHECK_EQ("EBX cleared", 0, e.cpu->regs[R_EBX]);
    CHECK_EQ("XMM5 kept", 0x1122334455667788ull, e.cpu->xmm[5].q[1]);
    CHECK_EQ("MXCSR kept", 0x1fc0, e.cpu->mxcsr);
    CHECK_EQ("FCW kept", 0x027f, e.cpu->fcw);
    CHECK_EQ("XCR0 kept", XSTATE_X87 | XSTATE_SSE, e.cpu->xcr0);
    CHECK_EQ("MTRR_DEF_TYPE kept", 0xc06, e.cpu->mtrr.def_type);
    cpu_reset_state(e.cpu, false);
    CHECK_EQ("RESET: XCR0 1", XSTATE_X87, e.cpu->xcr0);
    CHECK_EQ("RESET: MTRRs off", 0, e.cpu->mtrr.def_type);
    CHECK_EQ("RESET: XMM cleared", 0, e.cpu->xmm[5].q[1]);
}

/* MTRRs (SDM 3A §12.11) and MCA (SDM 3B ch. 16): storage with the architectural #GP rules. */
static void test_mtrr_and_mca_msrs(void)
{
    Env e = env_new();
    setup_pm32(&e);
    uint64_t v = 0;
    CHECK_EQ("MTRRCAP readable", -1, msr_access(&e, false, 0xfe, &v));
    CHECK_EQ("MTRRCAP: 8 variable, fixed, WC", 0x508, v);
    CHECK_EQ("MTRRCAP is read-only", EXCP_GP, msr_access(&e, true, 0xfe, &v));
    v = 0xc06;                                              /* E, FE, default WB */
    CHECK_EQ("DEF_TYPE write", -1, msr_access(&e, true, 0x2ff, &v));
    v = 0;
    CHECK_EQ("DEF_TYPE read", -1, msr_access(&e, false, 0x2ff, &v));
    CHECK_EQ("DEF_TYPE value", 0xc06, v);
    v = 0xc02;                                              /* type 2 is reserved */
    CHECK_EQ("DEF_TYPE reserved type", EXCP_GP, msr_access(&e, true, 0x2ff, &v));
    v = 0x1c06;                                             /* bit 12 reserved */
    CHECK_EQ("DEF_TYPE reserved bit", EXCP_GP, msr_access(&e, true, 0x2ff, &v));
    v = 0x80000000ull | 0;                                  /* PHYSBASE0: 2 GiB, UC */
    CHECK_EQ("PHYSBASE0 write", -1, msr_access(&e, true, 0x200, &v));
    v = 0xff80000800ull;                                    /* PHYSMASK0: 2 GiB, valid */
    CHECK_EQ("PHYSMASK0 write", -1, msr_access(&e, true, 0x201, &v));
    v = 0;
    CHECK_EQ("PHYSMASK0 read", -1, msr_access(&e, false, 0x201, &v));
    CHECK_EQ("PHYSMASK0 value", 0xff80000800ull, v);
    v = 1ull << 40;                                         /* above MAXPHYADDR (40) */
    CHECK_EQ("PHYSBASE above MAXPHYADDR", EXCP_GP, msr_access(&e, true, 0x20e, &v));
    v = 0x100;                                              /* bits 11:8 reserved */
    CHECK_EQ("PHYSBASE reserved bits", EXCP_GP, msr_access(&e, true, 0x202, &v));
    v = 0x0606060606060606ull;
    CHECK_EQ("FIX4K_F8000 write", -1, msr_access(&e, true, 0x26f, &v));
    v = 0x0606060606070606ull;                              /* one byte of type 7 */
    CHECK_EQ("fixed MTRR reserved type", EXCP_GP, msr_access(&e, true, 0x259, &v));
    CHECK_EQ("no fixed MTRR at 0x251", EXCP_GP, msr_access(&e, false, 0x251, &v));
    CHECK_EQ("no ninth variable MTRR", EXCP_GP, msr_access(&e, false, 0x210, &v));

    CHECK_EQ("MCG_CAP readable", -1, msr_access(&e, false, 0x179, &v));
    CHECK_EQ("MCG_CAP: 10 banks, MCG_CTL_P", 0x10a, v);
    v = ~0ull;
    CHECK_EQ("MC9_CTL enable", -1, msr_access(&e, true, 0x400 + 4 * 9, &v));
    v = 0;
    CHECK_EQ("MC0_STATUS clear", -1, msr_access(&e, true, 0x401, &v));
    v = 1;
    CHECK_EQ("MC0_STATUS non-zero", EXCP_GP, msr_access(&e, true, 0x401, &v));
    CHECK_EQ("no bank 10", EXCP_GP, msr_access(&e, false, 0x400 + 4 * 10, &v));
    v = 0x5;
    CHECK_EQ("MCG_CTL neither all ones nor zero", EXCP_GP, msr_access(&e, true, 0x17b, &v));

    /* A model without MTRR/MCA (qemu32 has both; -mtrr,-mca removes them) has no such MSRs. */
    char *dropped = NULL;
    GError *err = NULL;
    CHECK(tcg_cpuid_configure("kestrel64,-mtrr,-mca", &dropped, &err));
    g_free(dropped);
    CHECK_EQ("-mtrr: MTRRCAP #GP", EXCP_GP, msr_access(&e, false, 0xfe, &v));
    CHECK_EQ("-mca: MCG_CAP #GP", EXCP_GP, msr_access(&e, false, 0x179, &v));
    CHECK(tcg_cpuid_configure("kestrel64", &dropped, &err) && !dropped);
}

/*
 * Direct boot (no firmware): the machine's reset gives every CPU the MTRRs
 * SeaBIOS would have programmed (x86_mtrr_state_firmware, loaded by
 * tcg_reset through mtrr_load), so the guest reads them back with RDMSR;
 * they are architecturally valid (writing them back does not #GP), INIT
 * keeps them, and a plain RESET (what a firmware boot starts from) leaves
 * them all 0, MTRRs disabled (SDM 3A Table 9-1).
 */
static void test_direct_boot_mtrrs_read_back_until_reset(void)
{
    Env e = env_new();
    X86MTRRState st;
    x86_mtrr_state_firmware(&st, 1ull << 30);               /* -m 1G: PCI hole 2-4 GiB */
    cpu_reset_state(e.cpu, true);
    mtrr_load(e.cpu, &st);
    cpu_init_state(e.cpu);                                  /* INIT keeps the MTRRs */
    setup_pm32(&e);
    static const struct { uint32_t msr; const char *name; uint64_t v; } want[] = {
        { 0x2ff, "MTRR_DEF_TYPE: E, FE, default WB", 0xc06 },
        { 0x250, "FIX64K_00000: WB", 0x0606060606060606ull },
        { 0x258, "FIX16K_80000: WB", 0x0606060606060606ull },
        { 0x259, "FIX16K_A0000: UC (VGA)", 0 },
        { 0x268, "FIX4K_C0000: WP", 0x0505050505050505ull },
        { 0x26f, "FIX4K_F8000: WP", 0x0505050505050505ull },
        { 0x200, "PHYSBASE0: 2 GiB, UC", 0x80000000ull },
        { 0x201, "PHYSMASK0: 2 GiB, valid, 40-bit MAXPHYADDR", 0xff80000800ull },
        { 0x202, "PHYSBASE1 unused", 0 },
        { 0x203, "PHYSMASK1 unused", 0 },
        { 0x20f, "PHYSMASK7 unused", 0 },
    };
    for (unsigned i = 0; i < ARRAY_LEN(want); i++) {
        uint64_t v = ~0ull;
        CHECK_EQ(want[i].name, -1, msr_access(&e, false, want[i].msr, &v));
        CHECK_EQ(want[i].name, want[i].v, v);
        CHECK_EQ("written back without #GP", -1, msr_access(&e, true, want[i].msr, &v));
    }
    uint64_t v = 0;
    CHECK_EQ("MTRRCAP", -1, msr_access(&e, false, 0xfe, &v));
    CHECK_EQ("MTRRCAP: 8 variable, fixed, WC", 0x508, v);

    cpu_reset_state(e.cpu, true);                           /* RESET, as before firmware runs */
    setup_pm32(&e);
    for (unsigned i = 0; i < ARRAY_LEN(want); i++) {
        v = ~0ull;
        CHECK_EQ(want[i].name, -1, msr_access(&e, false, want[i].msr, &v));
        CHECK_MSG(v == 0, "after RESET %s reads 0x%" PRIx64 ", expected 0", want[i].name, v);
    }
}

/* -cpu MODEL,+feat,-feat: the model's signature and features, less what is not implemented. */
static void test_cpuid_follows_cpu_option(void)
{
    char *dropped = NULL;
    GError *err = NULL;
    CHECK_MSG(tcg_cpuid_configure("qemu64,-nx,+avx", &dropped, &err), "qemu64 refused");
    CHECK_MSG(dropped && strstr(dropped, "avx") && !strstr(dropped, "sse3") && !strstr(dropped, "nx"),
              "dropped: %s", dropped ? dropped : "(none)");
    g_free(dropped);
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xa2, 0xf4);                     /* cpuid; hlt */
    setup_pm32(&e);
    e.cpu->regs[R_EAX] = 1;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("qemu64 signature (family 15 model 107 stepping 1)", 0x00060fb1,
             e.cpu->regs[R_EAX]);
    CHECK_MSG(e.cpu->regs[R_ECX] & 1, "qemu64's SSE3 is implemented, so advertised");
    CHECK_MSG(!(e.cpu->regs[R_ECX] & (1u << 9)), "qemu64 has no SSSE3");
    CHECK_MSG(e.cpu->regs[R_ECX] & (1u << 13), "CX16 advertised");
    e.cpu->regs[R_EAX] = 0x80000001;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(!(e.cpu->regs[R_EDX] & (1u << 20)), "-nx removed NX");
    CHECK_MSG(e.cpu->regs[R_EDX] & (1u << 29), "long mode advertised");
    CHECK_MSG(!tcg_cpuid_configure("no-such-model", &dropped, &err) && err,
              "an unknown model must be refused");
    g_clear_error(&err);
    /* Back to the default for the cases after this one (each runs in its own process anyway). */
    CHECK(tcg_cpuid_configure("kestrel64", &dropped, &err) && !dropped);
    e.cpu->regs[R_EAX] = 1;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("kestrel64 signature back (family 15 model 107 stepping 1)", 0x00060fb1,
             e.cpu->regs[R_EAX]);
}

/* ---------------- v8086 mode extensions (CR4.VME) and PVI (SDM 3A §20.3, §20.4) ---------------- */

#define V86_CS 0x1000u              /* code at linear CODE */
#define V86_SS 0x0800u              /* stack: linear 0x8000 + SP */
#define V86_SP 0x1000u
#define TSS_VME_LIMIT 0x87u         /* redirection bitmap 68h-87h; I/O map base 88h, beyond the limit */

/* v8086 mode at V86_CS:0 with EFLAGS = 2 | VM | eflags, CR4 = cr4, every INT n redirected. */
static void setup_v86(Env *e, uint32_t eflags, uint64_t cr4)
{
    X86CPUState s;
    setup_pm32(e);
    cpu_to_x86_state(e->cpu, &s);
    for (int i = 0; i < SEG__COUNT; i++) {
        uint16_t sel = i == SEG_CS ? V86_CS : i == SEG_SS ? V86_SS : 0;
        memset(&s.seg[i], 0, sizeof(s.seg[i]));
        s.seg[i].selector = sel;
        s.seg[i].base = (uint64_t)sel << 4;
        s.seg[i].limit = 0xffff;
        s.seg[i].type = i == SEG_CS ? 0xb : 0x3;
        s.seg[i].s = 1;
        s.seg[i].dpl = 3;
        s.seg[i].present = 1;
    }
    s.rip = 0;
    s.regs[R_ESP] = V86_SP;
    s.rflags = 2 | FL_VM | eflags;
    s.cr4 = cr4;
    s.tr.limit = TSS_VME_LIMIT;
    cpu_from_x86_state(e->cpu, &s);
    st16_le(e->ram + TSS + 0x66, 0x88);
    memset(e->ram + TSS + 0x68, 0, 32);
    e->cpu->stop_on_exception = true;
}

/* Run until an exception stops the CPU: its vector, or -1 if it halted. */
static int run_to_fault(Env *e)
{
    TCGRunResult r = run(e);
    if (r == TCG_RUN_EXCEPTION)
        return e->cpu->stopped_vec;
    return r == TCG_RUN_HALTED ? -1 : -2;
}

static uint16_t v86_stack_word(Env *e, unsigned i)
{
    return ld16_le(e->ram + (V86_SS << 4) + (uint16_t)(e->cpu->regs[R_ESP] + 2 * i));
}

static void v86_redirect_bit_set(Env *e, unsigned vec)
{
    e->ram[TSS + 0x68 + vec / 8] |= (uint8_t)(1u << (vec & 7));
}

/* Methods 5 and 6 (Table 20-2): INT n with its bitmap bit clear runs the 8086 handler from the IVT. */
static void test_vme_int_n_redirected_to_ivt(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xcd, 0x21);                          /* int 0x21 */
    CODE_AT(&e, CODE + 0x100, 0xf4);                        /* handler: hlt (#GP in v8086) */
    st16_le(e.ram + 0x21 * 4, 0x0100);
    st16_le(e.ram + 0x21 * 4 + 2, V86_CS);

    /* Method 6 (IOPL 0): IF in the image is VIF, IOPL reads 3; VIF and TF cleared, IF kept. */
    setup_v86(&e, FL_VIF | FL_TF, CR4_VME);
    CHECK_EQ("method 6: #GP at the handler's HLT (no #DB: INT n cleared TF)", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("method 6: IP of the 8086 handler", 0x100, e.cpu->rip);
    CHECK_EQ("method 6: CS from the IVT", V86_CS, e.cpu->seg[SEG_CS].sel);
    CHECK_EQ("method 6: SP after three pushes", V86_SP - 6, e.cpu->regs[R_ESP]);
    CHECK_EQ("method 6: pushed IP (after the INT)", 2, v86_stack_word(&e, 0));
    CHECK_EQ("method 6: pushed CS", V86_CS, v86_stack_word(&e, 1));
    CHECK_EQ("method 6: pushed FLAGS (IF=VIF=1, IOPL=3, TF=1)", 0x3302, v86_stack_word(&e, 2));
    CHECK_EQ("method 6: VIF, TF, IF after", 0, e.cpu->eflags & (FL_VIF | FL_TF | FL_IF));
    CHECK_EQ("method 6: IOPL unchanged", 0, e.cpu->eflags & FL_IOPL);
    CHECK_MSG(e.cpu->vm86, "still in v8086 mode");

    /* Method 5 (IOPL 3): the real FLAGS are pushed; IF cleared, VIF left alone. */
    setup_v86(&e, FL_IOPL | FL_IF | FL_VIF, CR4_VME);
    CHECK_EQ("method 5: #GP at the handler's HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("method 5: IP of the 8086 handler", 0x100, e.cpu->rip);
    CHECK_EQ("method 5: pushed FLAGS", 0x3202, v86_stack_word(&e, 2));
    CHECK_EQ("method 5: IF cleared, VIF kept", FL_VIF, e.cpu->eflags & (FL_IF | FL_VIF));

    /* Method 3 (bit set, IOPL 0): #GP(0) at the INT, nothing pushed. */
    setup_v86(&e, FL_VIF, CR4_VME);
    v86_redirect_bit_set(&e, 0x21);
    CHECK_EQ("method 3: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("method 3: error code 0", 0, e.cpu->stopped_err);
    CHECK_EQ("method 3: at the INT", 0, e.cpu->rip);
    CHECK_EQ("method 3: SP unchanged", V86_SP, e.cpu->regs[R_ESP]);

    /* Method 2 (no VME, IOPL 0): #GP(0) whatever the bitmap says. */
    setup_v86(&e, FL_VIF, 0);
    CHECK_EQ("method 2: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("method 2: at the INT", 0, e.cpu->rip);

    /* Method 4 (bit set, IOPL 3): the protected-mode handler of the IDT (vector 0x80, DPL 3 gate). */
    CODE_AT(&e, CODE, 0xcd, 0x80);                          /* int 0x80 */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, FL_IOPL, CR4_VME);
    v86_redirect_bit_set(&e, 0x80);
    CHECK_EQ("method 4: the IDT handler's HLT runs at CPL 0", -1, run_to_fault(&e));
    CHECK_MSG(!e.cpu->vm86 && e.cpu->cpl == 0, "method 4 left v8086 mode for ring 0");
    CHECK_EQ("method 4: handler", HANDLERS + 0x80 * 16 + 1, e.cpu->rip);
}

/* INT3 (CC) is not INT n: never redirected, not IOPL-sensitive; it goes to the IDT (gate DPL 0 here). */
static void test_vme_int3_is_not_redirected(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xcc);                                /* int3 */
    st16_le(e.ram + 3 * 4, 0x0100);
    st16_le(e.ram + 3 * 4 + 2, V86_CS);
    setup_v86(&e, FL_VIF, CR4_VME);
    CHECK_EQ("INT3: #GP from the DPL 0 gate", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("INT3: error code names IDT vector 3", 3 * 8 + 2, e.cpu->stopped_err);
}

/* SDM 2A "CLI", 2B "STI", "PUSHF", "POPF": with VME and IOPL < 3 they use VIF. */
static void test_vme_cli_sti_pushf_popf_use_vif(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xfa, 0x9c, 0x58,                     /* cli; pushf; pop ax */
            0xfb, 0x9c, 0x5b, 0xf4);                        /* sti; pushf; pop bx; hlt */
    setup_v86(&e, FL_IF | FL_VIF, CR4_VME);
    CHECK_EQ("runs to the HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("at the HLT", 6, e.cpu->rip);
    CHECK_EQ("PUSHF after CLI: IF=VIF=0, IOPL=3", 0x3000, e.cpu->regs[R_EAX] & 0x3200);
    CHECK_EQ("PUSHF after STI: IF=VIF=1, IOPL=3", 0x3200, e.cpu->regs[R_EBX] & 0x3200);
    CHECK_EQ("VIF set again, IF never touched", FL_VIF | FL_IF, e.cpu->eflags & (FL_VIF | FL_IF));
    CHECK_EQ("IOPL still 0", 0, e.cpu->eflags & FL_IOPL);

    /* PUSHFD traps to the monitor. */
    CODE_AT(&e, CODE, 0x66, 0x9c, 0xf4);
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, FL_VIF, CR4_VME);
    CHECK_EQ("PUSHFD: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("PUSHFD: at the instruction", 0, e.cpu->rip);

    /* POPF of an image with IF=1 and CF=1: VIF=1, CF=1, IF and IOPL untouched. */
    CODE_AT(&e, CODE, 0xb8, 0x01, 0x02, 0x50, 0x9d, 0xf4); /* mov ax,0x201; push ax; popf; hlt */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, 0, CR4_VME);
    CHECK_EQ("POPF: runs to the HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("POPF: at the HLT", 5, e.cpu->rip);
    CHECK_EQ("POPF: VIF from the image, IF and IOPL kept", FL_VIF, e.cpu->eflags & (FL_VIF | FL_IF | FL_IOPL));
    CHECK_EQ("POPF: CF from the image", CC_C, cpu_get_eflags(e.cpu) & CC_C);

    /* ... with VIP=1 the same POPF is #GP(0) and pops nothing. */
    setup_v86(&e, FL_VIP, CR4_VME);
    CHECK_EQ("POPF IF=1 with VIP: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("POPF IF=1 with VIP: at the POPF", 4, e.cpu->rip);
    CHECK_EQ("POPF IF=1 with VIP: SP as before the POPF", V86_SP - 2, e.cpu->regs[R_ESP]);
    CHECK_EQ("POPF IF=1 with VIP: VIF still 0", 0, e.cpu->eflags & FL_VIF);

    /* ... an image with IF=0 is fine with VIP=1 (VIF := 0). */
    CODE_AT(&e, CODE, 0xb8, 0x00, 0x00, 0x50, 0x9d, 0xf4); /* mov ax,0; push ax; popf; hlt */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, FL_VIP | FL_VIF, CR4_VME);
    CHECK_EQ("POPF IF=0 with VIP: runs to the HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("POPF IF=0 with VIP: at the HLT", 5, e.cpu->rip);
    CHECK_EQ("POPF IF=0 with VIP: VIF cleared", 0, e.cpu->eflags & FL_VIF);

    /* ... an image with TF=1 is #GP(0). */
    CODE_AT(&e, CODE, 0xb8, 0x00, 0x01, 0x50, 0x9d, 0xf4); /* mov ax,0x100; push ax; popf; hlt */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, 0, CR4_VME);
    CHECK_EQ("POPF TF=1: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("POPF TF=1: at the POPF", 4, e.cpu->rip);
    CHECK_EQ("POPF TF=1: TF still 0", 0, e.cpu->eflags & FL_TF);

    /* Without VME, CLI is #GP(0) as before. */
    CODE_AT(&e, CODE, 0xfa, 0xf4);
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, FL_IF, 0);
    CHECK_EQ("no VME: CLI #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("no VME: at the CLI", 0, e.cpu->rip);
}

/* SDM 2B "STI": VIP=1 (a virtual interrupt pending) makes STI #GP(0) in VME and PVI mode. */
static void test_vme_sti_with_vip_is_gp(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xfb, 0xf4);                          /* sti; hlt */
    setup_v86(&e, FL_VIP, CR4_VME);
    CHECK_EQ("STI with VIP: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("STI with VIP: at the STI", 0, e.cpu->rip);
    CHECK_EQ("STI with VIP: VIF still 0", 0, e.cpu->eflags & FL_VIF);
}

/* 16-bit IRET with VME and IOPL < 3: IF of the image goes to VIF; TF=1 or IF=1 with VIP is #GP(0). */
static void test_vme_iret_uses_vif(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xb8, 0x01, 0x02, 0x50,               /* mov ax,0x201; push ax */
            0x0e, 0xb8, 0x0b, 0x00, 0x50,                   /* push cs; mov ax,0xb; push ax */
            0xcf, 0xf4, 0xf4);                              /* iret; hlt; hlt (target) */
    setup_v86(&e, 0, CR4_VME);
    CHECK_EQ("IRET: runs to the target's HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("IRET: at the target", 0x0b, e.cpu->rip);
    CHECK_EQ("IRET: SP back", V86_SP, e.cpu->regs[R_ESP]);
    CHECK_EQ("IRET: VIF from the image, IF and IOPL kept", FL_VIF, e.cpu->eflags & (FL_VIF | FL_IF | FL_IOPL));
    CHECK_EQ("IRET: CF from the image", CC_C, cpu_get_eflags(e.cpu) & CC_C);

    setup_v86(&e, FL_VIP, CR4_VME);
    CHECK_EQ("IRET IF=1 with VIP: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("IRET IF=1 with VIP: at the IRET", 9, e.cpu->rip);
    CHECK_EQ("IRET IF=1 with VIP: nothing popped", V86_SP - 6, e.cpu->regs[R_ESP]);

    CODE_AT(&e, CODE, 0xb8, 0x00, 0x01);                    /* image TF=1 */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, 0, CR4_VME);
    CHECK_EQ("IRET TF=1: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("IRET TF=1: at the IRET", 9, e.cpu->rip);

    CODE_AT(&e, CODE + 9, 0x66, 0xcf);                      /* iretd */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_v86(&e, 0, CR4_VME);
    CHECK_EQ("IRETD: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("IRETD: at the IRETD", 9, e.cpu->rip);
}

/* Protected mode, CPL 3, IOPL 0: with CR4.PVI, CLI/STI change VIF (SDM 3A §20.4); PUSHF does not look at VIF. */
static void setup_ring3_iopl0(Env *e, uint32_t eflags, uint64_t cr4)
{
    X86CPUState s;
    setup_pm32(e);
    cpu_to_x86_state(e->cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    s.rip = CODE;
    s.rflags = 2 | eflags;
    s.cr4 = cr4;
    cpu_from_x86_state(e->cpu, &s);
    e->cpu->stop_on_exception = true;
}

static void test_pvi_cli_sti_at_cpl3(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xfa, 0xf4);                          /* cli; hlt */
    setup_ring3_iopl0(&e, FL_IF | FL_VIF, CR4_PVI);
    CHECK_EQ("PVI CLI: runs to the HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("PVI CLI: at the HLT", CODE + 1, e.cpu->rip);
    CHECK_EQ("PVI CLI: VIF cleared, IF kept", FL_IF, e.cpu->eflags & (FL_IF | FL_VIF));

    setup_ring3_iopl0(&e, FL_IF | FL_VIF, 0);
    CHECK_EQ("no PVI: CLI #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("no PVI: at the CLI", CODE, e.cpu->rip);

    CODE_AT(&e, CODE, 0xfb, 0x9c, 0x58, 0xf4);              /* sti; pushf; pop eax; hlt */
    tb_invalidate_phys_range(CODE, 0x1000);
    setup_ring3_iopl0(&e, 0, CR4_PVI);
    CHECK_EQ("PVI STI: runs to the HLT", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("PVI STI: at the HLT", CODE + 3, e.cpu->rip);
    CHECK_EQ("PVI STI: VIF set, IF still 0", FL_VIF, e.cpu->eflags & (FL_IF | FL_VIF));
    CHECK_EQ("PVI PUSHF: the real IF (0) and IOPL (0), VIF as is", FL_VIF,
             e.cpu->regs[R_EAX] & (FL_IF | FL_IOPL | FL_VIF));

    setup_ring3_iopl0(&e, FL_VIP, CR4_PVI);
    CHECK_EQ("PVI STI with VIP: #GP", EXCP_GP, run_to_fault(&e));
    CHECK_EQ("PVI STI with VIP: at the STI", CODE, e.cpu->rip);
}

/* CR4.VME/PVI are writable only with CPUID.01H:EDX.VME (SDM 3A §2.5), which kestrel64 and Nehalem now have. */
static void test_cr4_vme_pvi_follow_cpuid(void)
{
    char *dropped = NULL;
    GError *err = NULL;
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xa2, 0xf4);                    /* cpuid; hlt */
    setup_pm32(&e);
    e.cpu->regs[R_EAX] = 1;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(e.cpu->regs[R_EDX] & CPUID_1_EDX_VME, "kestrel64 advertises VME");
    CHECK_MSG(cpu_write_cr4(e.cpu, CR4_VME | CR4_PVI), "CR4.VME|PVI accepted");
    CHECK_EQ("CR4", CR4_VME | CR4_PVI, e.cpu->cr4);
    CHECK_MSG(cpu_write_cr4(e.cpu, 0), "CR4 cleared");

    CHECK(tcg_cpuid_configure("kestrel64,-vme", &dropped, &err) && !dropped);
    e.cpu->regs[R_EAX] = 1;
    e.cpu->rip = CODE;
    e.cpu->halted = false;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_MSG(!(e.cpu->regs[R_EDX] & CPUID_1_EDX_VME), "-vme: not advertised");
    CHECK_MSG(!cpu_write_cr4(e.cpu, CR4_VME), "-vme: CR4.VME refused (#GP)");
    CHECK_MSG(!cpu_write_cr4(e.cpu, CR4_PVI), "-vme: CR4.PVI refused (#GP)");

    CHECK_MSG(tcg_cpuid_configure("Nehalem", &dropped, &err), "Nehalem refused");
    CHECK_MSG(!dropped, "Nehalem leaves out: %s", dropped ? dropped : "");
    g_free(dropped);
    CHECK(tcg_cpuid_configure("kestrel64", &dropped, &err) && !dropped);
}

/* ---------------- XSAVE feature set (SDM 1 ch. 13): x87 and SSE components ---------------- */

#define XS_AREA 0x101000u       /* 64-byte aligned XSAVE areas */
#define XS_AREA2 0x102000u
#define XS_AREA3 0x103000u
#define XS_MXCSR 0x104000u

static void setup_long64_xsave(Env *e)
{
    setup_long64_sse(e);
    e->cpu->cr4 |= CR4_OSXSAVE;
}

/*
 * Run from CODE again with stop_on_exception (the code there may have been
 * rewritten by CODE_AT, behind the translated-block cache's back); returns
 * the vector, or -1 after HLT.
 */
static int rerun(Env *e)
{
    tb_invalidate_phys_range(CODE, 0x1000);
    e->cpu->rip = CODE;
    e->cpu->halted = false;
    e->cpu->stop_on_exception = true;
    TCGRunResult r = run(e);
    if (r == TCG_RUN_HALTED)
        return -1;
    return r == TCG_RUN_EXCEPTION ? e->cpu->stopped_vec : -2;
}

static void xs_regs(Env *e, uint64_t rax, uint64_t rcx, uint64_t rdx)
{
    e->cpu->regs[R_EAX] = rax;
    e->cpu->regs[R_ECX] = rcx;
    e->cpu->regs[R_EDX] = rdx;
}

static void test_xgetbv_after_reset_reads_1(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd0, 0xf4);             /* xgetbv; hlt */
    setup_long64_xsave(&e);
    xs_regs(&e, ~0ull, 0, ~0ull);
    CHECK_EQ("run result", -1, rerun(&e));
    CHECK_EQ("XCR0 low (EAX) after reset", 1, e.cpu->regs[R_EAX]);
    CHECK_EQ("XCR0 high (EDX) after reset", 0, e.cpu->regs[R_EDX]);
}

static void test_xsetbv_rules(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd1, 0x0f, 0x01, 0xd0, 0xf4);  /* xsetbv; xgetbv; hlt */
    setup_long64_xsave(&e);
    static const struct { uint64_t rax, rcx, rdx; const char *what; } bad[] = {
        { 0, 0, 0, "bit 0 (x87) clear" },
        { 2, 0, 0, "SSE without x87" },
        { 7, 0, 0, "AVX (bit 2) is not supported" },
        { 5, 0, 0, "AVX without SSE" },
        { 3, 0, 1, "bit 32 is not supported" },
        { 3, 1, 0, "ECX = 1 names no XCR" },
        { 1, 0x80000000u, 0, "ECX bit 31" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(bad); i++) {
        xs_regs(&e, bad[i].rax, bad[i].rcx, bad[i].rdx);
        int v = rerun(&e);
        CHECK_MSG(v == EXCP_GP && e.cpu->stopped_err == 0,
                  "XSETBV with %s: got vector %d err %#x, want #GP(0)", bad[i].what, v,
                  e.cpu->stopped_err);
        CHECK_EQ("XCR0 unchanged", 1, e.cpu->xcr0);
    }
    /* The upper halves of RAX, RCX and RDX are ignored. */
    xs_regs(&e, 0xffffffff00000003ull, 0xffffffff00000000ull, 0xffffffff00000000ull);
    CHECK_EQ("valid XSETBV: run result", -1, rerun(&e));
    CHECK_EQ("XCR0 = x87|SSE", 3, e.cpu->xcr0);
    CHECK_EQ("XGETBV reads it back (EAX)", 3, e.cpu->regs[R_EAX]);
    CHECK_EQ("XGETBV EDX", 0, e.cpu->regs[R_EDX]);
    /* XGETBV with ECX != 0: #GP(0) (no XGETBV1). */
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd0, 0xf4);
    xs_regs(&e, 0, 1, 0);
    CHECK_EQ("XGETBV ECX=1: #GP", EXCP_GP, rerun(&e));
    /* Without CR4.OSXSAVE both are #UD. */
    e.cpu->cr4 &= ~(uint64_t)CR4_OSXSAVE;
    xs_regs(&e, 0, 0, 0);
    CHECK_EQ("XGETBV without OSXSAVE: #UD", EXCP_UD, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd1, 0xf4);
    xs_regs(&e, 3, 0, 0);
    CHECK_EQ("XSETBV without OSXSAVE: #UD", EXCP_UD, rerun(&e));
    /* NP: a 66 prefix makes it invalid. */
    e.cpu->cr4 |= CR4_OSXSAVE;
    CODE_AT(&e, CODE, 0x66, 0x0f, 0x01, 0xd1, 0xf4);
    CHECK_EQ("66 XSETBV: #UD", EXCP_UD, rerun(&e));
}

static void test_xsetbv_needs_cpl0_but_works_in_real_mode(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd0, 0x0f, 0x01, 0xd1, 0xf4);  /* xgetbv; xsetbv; hlt */
    setup_pm32(&e);
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    s.cr4 |= CR4_OSXSAVE;
    cpu_from_x86_state(e.cpu, &s);
    CHECK_EQ("CPL", 3, e.cpu->cpl);
    xs_regs(&e, 0, 0, 0);
    CHECK_EQ("CPL 3: XSETBV #GP", EXCP_GP, rerun(&e));
    CHECK_EQ("CPL 3: XGETBV ran first (EAX = XCR0)", 1, e.cpu->regs[R_EAX]);
    CHECK_EQ("#GP at the XSETBV", CODE + 3, e.cpu->rip);

    Env r = env_new();
    CODE_AT(&r, 0x7c00, 0x66, 0xb8, 0x03, 0x00, 0x00, 0x00,      /* mov eax, 3 */
            0x66, 0x31, 0xc9, 0x66, 0x31, 0xd2,                   /* xor ecx,ecx; xor edx,edx */
            0x0f, 0x01, 0xd1, 0xf4);                              /* xsetbv; hlt */
    setup_real(&r, 0x7c00);
    r.cpu->cr4 |= CR4_OSXSAVE;
    r.cpu->stop_on_exception = true;
    CHECK_EQ("real mode: run result", TCG_RUN_HALTED, run(&r));
    CHECK_EQ("real mode: XCR0", 3, r.cpu->xcr0);
}

/* x87 and SSE state that is not in its initial configuration. */
static void xs_load_state(Env *e)
{
    for (unsigned i = 0; i < 16; i++) {
        e->cpu->xmm[i].q[0] = 0x0101010101010101ull * (i + 1);
        e->cpu->xmm[i].q[1] = 0xf0e0d0c0b0a09080ull ^ i;
    }
}

static void test_xsave_xrstor_round_trip(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0x0f, 0x01, 0xd1,                                     /* xsetbv (XCR0 = 3) */
            0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb,                   /* fninit; fld1; fldpi */
            0x0f, 0xae, 0x14, 0x25, 0x00, 0x40, 0x10, 0x00,       /* ldmxcsr [XS_MXCSR] */
            0x0f, 0xae, 0x24, 0x25, 0x00, 0x10, 0x10, 0x00,       /* xsave [XS_AREA] */
            0x0f, 0xae, 0x04, 0x25, 0x00, 0x20, 0x10, 0x00,       /* fxsave [XS_AREA2] */
            0xdb, 0xe3,                                           /* fninit */
            0x66, 0x0f, 0xef, 0xc0,                               /* pxor xmm0, xmm0 */
            0x66, 0x45, 0x0f, 0xef, 0xff,                         /* pxor xmm15, xmm15 */
            0x0f, 0xae, 0x14, 0x25, 0x04, 0x40, 0x10, 0x00,       /* ldmxcsr [XS_MXCSR+4] */
            0x0f, 0xae, 0x2c, 0x25, 0x00, 0x10, 0x10, 0x00,       /* xrstor [XS_AREA] */
            0xf4);
    memset(e.ram + XS_AREA, 0x5a, 512);
    memset(e.ram + XS_AREA + 512, 0, 64);
    memset(e.ram + XS_AREA2, 0x5a, 512);
    st32_le(e.ram + XS_MXCSR, 0x9fc0);                        /* FZ, RC down, DAZ */
    st32_le(e.ram + XS_MXCSR + 4, 0x1f80);
    setup_long64_xsave(&e);
    xs_load_state(&e);
    xs_regs(&e, 3, 0, 0);
    CHECK_EQ("run result", -1, rerun(&e));
    uint8_t *xs = e.ram + XS_AREA, *fx = e.ram + XS_AREA2;
    CHECK_EQ("XSTATE_BV = x87|SSE", 3, rd64(&e, XS_AREA + 512));
    CHECK_EQ("XCOMP_BV untouched", 0, rd64(&e, XS_AREA + 520));
    CHECK_MSG(!memcmp(xs, fx, 416), "legacy region (bytes 0-415) differs from FXSAVE's image");
    CHECK_EQ("FCW in the image", 0x037f, ld16_le(xs));
    CHECK_EQ("MXCSR in the image", 0x9fc0, ld32_le(xs + 24));
    CHECK_EQ("XMM15 high in the image", 0xf0e0d0c0b0a0908full, ld64_le(xs + 160 + 15 * 16 + 8));
    bool untouched = true;
    for (unsigned i = 464; i < 512; i++)
        untouched &= xs[i] == 0x5a;
    CHECK_MSG(untouched, "XSAVE wrote bytes 464-511 (available to software)");
    /* XRSTOR brought everything back. */
    CHECK_EQ("FSW (TOP=6)", 0x3000, e.cpu->fsw);
    CHECK_EQ("tags", 0xc0, e.cpu->ftw_valid);
    CHECK_EQ("ST0 = pi", 0xc90fdaa22168c235ull, e.cpu->fpr[6].sig);
    CHECK_EQ("ST1 = 1.0 exponent", 0x3fff, e.cpu->fpr[7].se);
    CHECK_EQ("MXCSR", 0x9fc0, e.cpu->mxcsr);
    CHECK_EQ("XMM0 low", 0x0101010101010101ull, e.cpu->xmm[0].q[0]);
    CHECK_EQ("XMM15 low", 0x1010101010101010ull, e.cpu->xmm[15].q[0]);
}

/* RFBM = EDX:EAX & XCR0: with XCR0 = 1 only x87 is saved, other XSTATE_BV bits are kept. */
static void test_xsave_saves_only_requested_components(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xdb, 0xe3, 0xd9, 0xe8,                 /* fninit; fld1 */
            0x0f, 0xae, 0x24, 0x25, 0x00, 0x10, 0x10, 0x00,   /* xsave [XS_AREA] */
            0xf4);
    memset(e.ram + XS_AREA, 0xa5, 512);
    st64_le(e.ram + XS_AREA + 512, 0x82);
    setup_long64_xsave(&e);
    xs_load_state(&e);
    xs_regs(&e, ~0ull, 0, ~0ull);                             /* every bit requested */
    CHECK_EQ("run result", -1, rerun(&e));
    CHECK_EQ("XSTATE_BV: bit 0 set, bits 1 and 7 kept", 0x83, rd64(&e, XS_AREA + 512));
    CHECK_EQ("FCW saved", 0x037f, ld16_le(e.ram + XS_AREA));
    CHECK_EQ("MXCSR not saved (RFBM[1] = 0)", 0xa5a5a5a5u, rd32(&e, XS_AREA + 24));
    CHECK_EQ("XMM0 not saved", 0xa5a5a5a5a5a5a5a5ull, rd64(&e, XS_AREA + 160));
}

static void test_xrstor_clear_xstate_bv_bit_means_init_state(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x2c, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xrstor [XS_AREA] */
    memset(e.ram + XS_AREA, 0x77, 512);
    st32_le(e.ram + XS_AREA + 24, 0x1f00);                    /* a valid MXCSR */
    memset(e.ram + XS_AREA + 512, 0, 64);                     /* XSTATE_BV = 0 */
    setup_long64_xsave(&e);
    e.cpu->xcr0 = 3;
    xs_load_state(&e);
    e.cpu->fcw = 0x027f;
    e.cpu->fsw = 0x3800;
    e.cpu->ftw_valid = 0x80;
    e.cpu->fpr[7].sig = 0x8000000000000000ull;
    e.cpu->fpr[7].se = 0x3fff;
    e.cpu->fip = 0x1234;
    /* RFBM = x87 only: x87 goes to its initial configuration, SSE and MXCSR stay. */
    xs_regs(&e, 1, 0, 0);
    CHECK_EQ("RFBM=1: run result", -1, rerun(&e));
    CHECK_EQ("FCW init", 0x037f, e.cpu->fcw);
    CHECK_EQ("FSW init", 0, e.cpu->fsw);
    CHECK_EQ("all empty", 0, e.cpu->ftw_valid);
    CHECK_EQ("FIP init", 0, e.cpu->fip);
    CHECK_EQ("R7 zeroed", 0, e.cpu->fpr[7].se);
    CHECK_EQ("XMM3 kept", 0x0404040404040404ull, e.cpu->xmm[3].q[0]);
    CHECK_EQ("MXCSR kept", 0x1f80, e.cpu->mxcsr);
    /* RFBM = x87|SSE: XMM registers zeroed; MXCSR still comes from memory (standard form). */
    xs_regs(&e, 3, 0, 0);
    CHECK_EQ("RFBM=3: run result", -1, rerun(&e));
    bool zero = true;
    for (unsigned i = 0; i < 16; i++)
        zero &= e.cpu->xmm[i].q[0] == 0 && e.cpu->xmm[i].q[1] == 0;
    CHECK_MSG(zero, "XMM0-15 not zeroed by XRSTOR with XSTATE_BV[1] = 0");
    CHECK_EQ("MXCSR loaded from the image", 0x1f00, e.cpu->mxcsr);
}

/* XSAVEOPT's init optimization; XSAVE writes init-state components but reports XSTATE_BV = 0. */
static void test_xsaveopt_skips_components_in_init_state(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0x0f, 0xae, 0x2c, 0x25, 0x00, 0x10, 0x10, 0x00,   /* xrstor [XS_AREA] (init both) */
            0x0f, 0xae, 0x34, 0x25, 0x00, 0x20, 0x10, 0x00,   /* xsaveopt [XS_AREA2] */
            0x0f, 0xae, 0x24, 0x25, 0x00, 0x30, 0x10, 0x00,   /* xsave [XS_AREA3] */
            0xf4);
    memset(e.ram + XS_AREA, 0, 576);
    st32_le(e.ram + XS_AREA + 24, 0x1f80);
    memset(e.ram + XS_AREA2, 0xa5, 576);
    memset(e.ram + XS_AREA3, 0xa5, 576);
    st64_le(e.ram + XS_AREA2 + 512, 3);
    st64_le(e.ram + XS_AREA3 + 512, 3);
    setup_long64_xsave(&e);
    e.cpu->xcr0 = 3;
    xs_load_state(&e);
    xs_regs(&e, 3, 0, 0);
    CHECK_EQ("run result", -1, rerun(&e));
    CHECK_EQ("XSAVEOPT: XSTATE_BV = 0", 0, rd64(&e, XS_AREA2 + 512));
    CHECK_EQ("XSAVEOPT: x87 not written", 0xa5a5, ld16_le(e.ram + XS_AREA2));
    CHECK_EQ("XSAVEOPT: XMM0 not written", 0xa5a5a5a5a5a5a5a5ull, rd64(&e, XS_AREA2 + 160));
    CHECK_EQ("XSAVEOPT: MXCSR always written", 0x1f80, rd32(&e, XS_AREA2 + 24));
    CHECK_EQ("XSAVEOPT: MXCSR_MASK", 0xffff, rd32(&e, XS_AREA2 + 28));
    CHECK_EQ("XSAVE: XSTATE_BV = 0", 0, rd64(&e, XS_AREA3 + 512));
    CHECK_EQ("XSAVE: FCW written", 0x037f, ld16_le(e.ram + XS_AREA3));
    CHECK_EQ("XSAVE: XMM15 written", 0, rd64(&e, XS_AREA3 + 160 + 15 * 16));
    /* Once a register is non-zero the component is in use again. */
    e.cpu->xmm[9].d[2] = 1;
    st64_le(e.ram + XS_AREA2 + 512, 0);
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x34, 0x25, 0x00, 0x20, 0x10, 0x00, 0xf4);  /* xsaveopt */
    CHECK_EQ("run result", -1, rerun(&e));
    CHECK_EQ("XSAVEOPT: XSTATE_BV = SSE", 2, rd64(&e, XS_AREA2 + 512));
    CHECK_EQ("XSAVEOPT: XMM9 written", 1, rd32(&e, XS_AREA2 + 160 + 9 * 16 + 8));
}

static void test_xsave_alignment_and_xrstor_header_checks(void)
{
    Env e = env_new();
    setup_long64_xsave(&e);
    e.cpu->xcr0 = 3;
    xs_regs(&e, 3, 0, 0);
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x24, 0x25, 0x10, 0x10, 0x10, 0x00, 0xf4);   /* xsave [XS_AREA+16] */
    CHECK_EQ("XSAVE 16-byte aligned: #GP", EXCP_GP, rerun(&e));
    CHECK_EQ("error code", 0, e.cpu->stopped_err);
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x2c, 0x25, 0x40, 0x10, 0x10, 0x00, 0xf4);   /* xrstor [XS_AREA+64] */
    memset(e.ram + XS_AREA + 64, 0, 576);
    st32_le(e.ram + XS_AREA + 64 + 24, 0x1f80);
    CHECK_EQ("XRSTOR 64-byte aligned, clean header: ok", -1, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x2c, 0x25, 0x20, 0x10, 0x10, 0x00, 0xf4);   /* xrstor [XS_AREA+32] */
    CHECK_EQ("XRSTOR misaligned: #GP", EXCP_GP, rerun(&e));

    CODE_AT(&e, CODE, 0x0f, 0xae, 0x2c, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xrstor [XS_AREA] */
    static const struct { unsigned off; uint64_t v; uint64_t xcr0; const char *what; } bad[] = {
        { 520, 1ull << 63, 3, "XCOMP_BV[63] (compacted form, no XSAVEC)" },
        { 520, 1, 3, "XCOMP_BV[0]" },
        { 528, 1, 3, "header bytes 23:16" },
        { 512, 4, 3, "XSTATE_BV[2] (not in XCR0)" },
        { 512, 2, 1, "XSTATE_BV[1] with XCR0 = 1" },
        { 24, 0x10000, 3, "MXCSR reserved bit 16" },
    };
    for (unsigned i = 0; i < ARRAY_LEN(bad); i++) {
        memset(e.ram + XS_AREA, 0, 576);
        st32_le(e.ram + XS_AREA + 24, 0x1f80);
        st64_le(e.ram + XS_AREA + 512, 3);
        if (bad[i].off == 24)
            st32_le(e.ram + XS_AREA + 24, (uint32_t)bad[i].v);
        else
            st64_le(e.ram + XS_AREA + bad[i].off, bad[i].v | (bad[i].off == 512 ? 1 : 0));
        e.cpu->xcr0 = bad[i].xcr0;
        e.cpu->fcw = 0x027f;
        int v = rerun(&e);
        CHECK_MSG(v == EXCP_GP && e.cpu->stopped_err == 0, "XRSTOR with %s: got vector %d, want #GP(0)",
                  bad[i].what, v);
        CHECK_MSG(e.cpu->fcw == 0x027f, "XRSTOR with %s changed FCW to %#x before faulting",
                  bad[i].what, e.cpu->fcw);
    }
}

static void test_xsave_needs_osxsave_and_honours_ts(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x24, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xsave [XS_AREA] */
    setup_long64_sse(&e);
    xs_regs(&e, 3, 0, 0);
    CHECK_EQ("XSAVE without OSXSAVE: #UD", EXCP_UD, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x2c, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xrstor [XS_AREA] */
    CHECK_EQ("XRSTOR without OSXSAVE: #UD", EXCP_UD, rerun(&e));
    e.cpu->cr4 |= CR4_OSXSAVE;
    e.cpu->cr0 |= X86_CR0_TS;
    CHECK_EQ("XRSTOR with CR0.TS: #NM", EXCP_NM, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x34, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xsaveopt [XS_AREA] */
    CHECK_EQ("XSAVEOPT with CR0.TS: #NM", EXCP_NM, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0x01, 0xd0, 0xf4);                                 /* xgetbv */
    xs_regs(&e, 0, 0, 0);
    CHECK_EQ("XGETBV ignores CR0.TS", -1, rerun(&e));
    e.cpu->cr0 &= ~(uint64_t)X86_CR0_TS;
    CODE_AT(&e, CODE, 0x66, 0x0f, 0xae, 0x24, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* 66 xsave */
    CHECK_EQ("66 XSAVE (NP encoding): #UD", EXCP_UD, rerun(&e));
}

static uint32_t cpuid_reg(Env *e, uint32_t leaf, uint32_t sub, int reg)
{
    CODE_AT(e, CODE, 0x0f, 0xa2, 0xf4);                       /* cpuid; hlt */
    xs_regs(e, leaf, sub, 0);
    if (rerun(e) != -1)
        return 0xdeadbeef;
    return (uint32_t)e->cpu->regs[reg];
}

static void test_cpuid_xsave_leaf_and_osxsave_follow_cr4(void)
{
    Env e = env_new();
    setup_long64_sse(&e);
    CHECK_MSG(cpuid_reg(&e, 1, 0, R_ECX) & (1u << 26), "CPUID.1:ECX.XSAVE not advertised");
    CHECK_MSG(!(cpuid_reg(&e, 1, 0, R_ECX) & (1u << 27)), "OSXSAVE set while CR4.OSXSAVE = 0");
    CHECK_EQ("0DH.0 EAX: XCR0 may hold x87|SSE", 3, cpuid_reg(&e, 0xd, 0, R_EAX));
    CHECK_EQ("0DH.0 EBX: size for XCR0", 576, cpuid_reg(&e, 0xd, 0, R_EBX));
    CHECK_EQ("0DH.0 ECX: maximum size", 576, cpuid_reg(&e, 0xd, 0, R_ECX));
    CHECK_EQ("0DH.0 EDX", 0, cpuid_reg(&e, 0xd, 0, R_EDX));
    CHECK_EQ("0DH.1 EAX: XSAVEOPT only (no XSAVEC/XGETBV1/XSAVES)", 1, cpuid_reg(&e, 0xd, 1, R_EAX));
    CHECK_EQ("0DH.1 EBX", 0, cpuid_reg(&e, 0xd, 1, R_EBX));
    CHECK_EQ("0DH.1 ECX (no IA32_XSS bits)", 0, cpuid_reg(&e, 0xd, 1, R_ECX));
    CHECK_EQ("0DH.2 EAX (no AVX component)", 0, cpuid_reg(&e, 0xd, 2, R_EAX));
    /* MOV CR4 sets OSXSAVE; CPUID.1:ECX[27] follows. */
    CODE_AT(&e, CODE, 0x0f, 0x20, 0xe0,                       /* mov rax, cr4 */
            0x0d, 0x00, 0x00, 0x04, 0x00,                     /* or eax, 1 << 18 */
            0x0f, 0x22, 0xe0,                                 /* mov cr4, rax */
            0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0xf4);  /* mov eax, 1; cpuid; hlt */
    CHECK_EQ("MOV CR4 with OSXSAVE: run result", -1, rerun(&e));
    CHECK_MSG(e.cpu->cr4 & CR4_OSXSAVE, "CR4.OSXSAVE not set");
    CHECK_MSG(e.cpu->regs[R_ECX] & (1u << 27), "CPUID.1:ECX.OSXSAVE does not follow CR4");
}

/* -cpu without xsave: no leaf 0DH, CR4.OSXSAVE reserved; without xsaveopt: XSAVEOPT #UD. */
static void test_xsave_follows_cpu_model(void)
{
    char *dropped = NULL;
    GError *err = NULL;
    CHECK(tcg_cpuid_configure("qemu64", &dropped, &err));
    g_free(dropped);
    Env e = env_new();
    setup_long64_sse(&e);
    CHECK_MSG(!(cpuid_reg(&e, 1, 0, R_ECX) & (1u << 26)), "qemu64 has no XSAVE");
    CHECK_EQ("qemu64: 0DH.0 EAX", 0, cpuid_reg(&e, 0xd, 0, R_EAX));
    CODE_AT(&e, CODE, 0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0xf4);
    CHECK_EQ("qemu64: MOV CR4 with OSXSAVE #GP", EXCP_GP, rerun(&e));

    CHECK(tcg_cpuid_configure("kestrel64,-xsaveopt", &dropped, &err));
    g_free(dropped);
    e.cpu->cr4 |= CR4_OSXSAVE;
    xs_regs(&e, 3, 0, 0);
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x34, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xsaveopt */
    CHECK_EQ("-xsaveopt: XSAVEOPT #UD", EXCP_UD, rerun(&e));
    CODE_AT(&e, CODE, 0x0f, 0xae, 0x24, 0x25, 0x00, 0x10, 0x10, 0x00, 0xf4);   /* xsave */
    CHECK_EQ("-xsaveopt: XSAVE works", -1, rerun(&e));
    CHECK_EQ("-xsaveopt: 0DH.1 EAX", 0, cpuid_reg(&e, 0xd, 1, R_EAX));
    CHECK(tcg_cpuid_configure("kestrel64", &dropped, &err) && !dropped);
}

static void test_lock_prefix_on_register_is_ud(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0xf0, 0x01, 0xc0, 0xf4);              /* lock add eax, eax */
    setup_pm32(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_UD, e.cpu->stopped_vec);
}

static void test_instruction_longer_than_15_bytes_is_gp(void)
{
    Env e = env_new();
    static const uint8_t c[] = { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                 0x66, 0x66, 0x66, 0x66, 0x90, 0x90, 0xf4 };  /* 15 prefixes + nop */
    put(&e, CODE, c, sizeof(c));
    setup_pm32(&e);
    e.cpu->stop_on_exception = true;
    e.ram[CODE + 14] = 0x66;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
}

/* ---------------- debug registers (SDM 3A ch. 17) ---------------- */

/* SDM 2A "MOV—Move to/from Debug Registers": 64-bit writes with bits 63:32 set in DR6/DR7 are #GP(0). */
static void test_long64_mov_dr7_high_half_is_gp(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0x48, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff,  /* mov rax, 0xffff800000001000 */
            0x0f, 0x23, 0xc0,                                            /* mov dr0, rax */
            0x0f, 0x21, 0xc3,                                            /* mov rbx, dr0 */
            0x48, 0xb8, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,  /* mov rax, 0x100000400 */
            0x0f, 0x23, 0xf8);                                           /* mov dr7, rax: #GP */
    setup_long64(&e);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("RIP at mov dr7", CODE + 26, e.cpu->rip);
    CHECK_EQ("DR0 keeps 64 bits", 0xffff800000001000ull, e.cpu->regs[R_EBX]);
    CHECK_EQ("DR7 unchanged", 0x400, e.cpu->dr[7]);
}

/* A write breakpoint seen by the 64-bit flat-memory fast path: a #DB trap after the store. */
static void test_long64_data_breakpoint_traps_after_store(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE,
            0x48, 0x8b, 0x4b, 0x08,          /* mov rcx, [rbx+8]: a read, same page, no hit */
            0x48, 0x89, 0x03,                /* mov [rbx], rax: hits DR2 */
            0x90, 0xf4);                     /* nop; hlt */
    setup_long64(&e);
    e.cpu->regs[R_EBX] = 0x20008;
    e.cpu->regs[R_EAX] = 0x1122334455667788ull;
    e.cpu->dr[2] = 0x2000c;                  /* LEN 4 covers 0x2000c-0x2000f */
    e.cpu->dr[7] = 0x400 | 0x10 | (1u << 24) | (3u << 26);     /* L2, R/W2 = 01, LEN2 = 11 */
    cpu_debug_update(e.cpu);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_DB, e.cpu->stopped_vec);
    CHECK_EQ("RIP after the store", CODE + 7, e.cpu->rip);
    CHECK_EQ("DR6 B2", 0xffff0ff4u, e.cpu->dr[6]);
    CHECK_EQ("stored", 0x1122334455667788ull, rd64(&e, 0x20008));
}

/* An instruction breakpoint faults before the instruction; with RF=1 it runs, and RF is cleared after it. */
static void test_long64_instruction_breakpoint_and_rf(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x90, 0x90, 0xff, 0xc3, 0x90, 0xf4);    /* nop; nop; inc ebx; nop; hlt */
    setup_long64(&e);
    e.cpu->dr[0] = CODE + 2;
    e.cpu->dr[7] = 0x400 | 0x2;              /* G0, R/W0 = 00 (execute) */
    cpu_debug_update(e.cpu);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_DB, e.cpu->stopped_vec);
    CHECK_EQ("RIP at the breakpoint", CODE + 2, e.cpu->rip);
    CHECK_EQ("EBX not incremented", 0, e.cpu->regs[R_EBX]);
    CHECK_EQ("DR6 B0", 0xffff0ff1u, e.cpu->dr[6]);
    e.cpu->eflags |= FL_RF;                  /* as an IRET of a frame with RF=1 leaves it */
    CHECK_EQ("run result with RF", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("EBX incremented once", 1, e.cpu->regs[R_EBX]);
    CHECK_EQ("RF cleared after the instruction", 0, e.cpu->eflags & FL_RF);
}

/* ---------------- external interrupts through the controller hook ---------------- */

static bool fake_pending(void *opaque, int cpu_id) { (void)opaque; (void)cpu_id; return fake_irq_pending; }
static int fake_ack(void *opaque, int cpu_id)
{
    (void)opaque; (void)cpu_id;
    fake_irq_pending = 0;
    fake_irq_acks++;
    return 0x20;
}

static void test_interrupt_wakes_sti_hlt(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    tcg_set_interrupt_controller(&ic);
    CODE_AT(&e, CODE, 0xfb, 0xf4, 0xf4);            /* sti; hlt; hlt */
    setup_pm32(&e);
    fake_irq_pending = 0;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("halted after the first HLT", CODE + 2, e.cpu->rip);
    fake_irq_pending = 1;
    tcg_raise_interrupt_check();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("acks", 1, fake_irq_acks);
    CHECK_EQ("EIP in the vector 0x20 handler", HANDLERS + 0x20 * 16 + 1, e.cpu->rip);
    CHECK_EQ("return EIP = after HLT", CODE + 2, rd32(&e, (uint32_t)e.cpu->regs[R_ESP]));
    tcg_set_interrupt_controller(NULL);
}

static void test_interrupt_masked_by_cli(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    tcg_set_interrupt_controller(&ic);
    CODE_AT(&e, CODE, 0xfa, 0xf4);                  /* cli; hlt */
    setup_pm32(&e);
    fake_irq_pending = 1;
    tcg_raise_interrupt_check();
    fake_irq_acks = 0;
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("no acknowledge with IF=0", 0, fake_irq_acks);
    CHECK_EQ("still at the HLT", CODE + 2, e.cpu->rip);
    tcg_set_interrupt_controller(NULL);
}

/*
 * SDM 3A §6.8.3: after STI, interrupts are recognised after the NEXT
 * instruction.  "sti; nop; cli; hlt" with an interrupt pending must take it
 * between the NOP and the CLI (return address = the CLI), not let the whole
 * block run to the CLI and lose the window.
 */
static void test_sti_window_takes_pending_interrupt_after_one_instruction(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    tcg_set_interrupt_controller(&ic);
    CODE_AT(&e, CODE, 0xfa, 0xfb, 0x90, 0xfa, 0xf4, 0xf4);   /* cli; sti; nop; cli; hlt; hlt */
    setup_pm32(&e);
    fake_irq_pending = 1;
    fake_irq_acks = 0;
    tcg_raise_interrupt_check();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("acknowledged in the STI window", 1, fake_irq_acks);
    CHECK_EQ("EIP in the vector 0x20 handler", HANDLERS + 0x20 * 16 + 1, e.cpu->rip);
    CHECK_EQ("return EIP = the CLI after the NOP", CODE + 3, rd32(&e, (uint32_t)e.cpu->regs[R_ESP]));
    tcg_set_interrupt_controller(NULL);
}

/*
 * Only MOV SS and POP SS block interrupts for one instruction (SDM 3A
 * §6.8.3; SDM 2A "LDS/LES/LFS/LGS/LSS" lists no such effect).  In
 * "cli; sti; lss esp, [m]; cli; hlt" with an interrupt pending, STI's
 * window covers only the LSS, so the interrupt is taken right after it
 * (return address = the second CLI); a shadow from LSS would carry it past
 * that CLI and it would never be taken.
 */
static void test_lss_has_no_interrupt_shadow(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    tcg_set_interrupt_controller(&ic);
    CODE_AT(&e, CODE, 0xfa, 0xfb,                           /* cli; sti */
            0x0f, 0xb2, 0x25, 0x00, 0x00, 0x03, 0x00,       /* lss esp, [0x30000] */
            0xfa, 0xf4, 0xf4);                              /* cli; hlt; hlt */
    st32_le(e.ram + 0x30000, 0x7fff0);                      /* offset */
    st16_le(e.ram + 0x30004, 0x10);                         /* selector: the flat data segment */
    setup_pm32(&e);
    fake_irq_pending = 1;
    fake_irq_acks = 0;
    tcg_raise_interrupt_check();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("acknowledged right after LSS", 1, fake_irq_acks);
    CHECK_EQ("EIP in the vector 0x20 handler", HANDLERS + 0x20 * 16 + 1, e.cpu->rip);
    uint32_t sp = (uint32_t)e.cpu->regs[R_ESP];
    CHECK_EQ("frame on the stack LSS loaded", 0x7fff0 - 12, sp);
    CHECK_EQ("return EIP = the CLI after LSS", CODE + 9, rd32(&e, sp));
    tcg_set_interrupt_controller(NULL);
}

static void test_real_mode_external_interrupt_uses_ivt(void)
{
    Env e = env_new();
    static const TCGInterruptController ic = { fake_pending, fake_ack, NULL };
    tcg_set_interrupt_controller(&ic);
    st16_le(e.ram + 0x20 * 4, 0x9000);
    st16_le(e.ram + 0x20 * 4 + 2, 0x0000);
    CODE_AT(&e, 0x9000, 0x43, 0xcf);                /* inc bx; iret */
    CODE_AT(&e, 0x7c00, 0xfb, 0xf4, 0xf4);          /* sti; hlt; hlt */
    setup_real(&e, 0x7c00);
    fake_irq_pending = 1;
    tcg_raise_interrupt_check();
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("BX incremented by the handler", 1, e.cpu->regs[R_EBX]);
    CHECK_EQ("back at the second HLT", 0x7c03, e.cpu->rip);
    tcg_set_interrupt_controller(NULL);
}

static void test_single_step_traps_after_each_instruction(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x40, 0x40, 0xf4);            /* inc eax; inc eax; hlt */
    setup_pm32(&e);
    cpu_set_eflags(e.cpu, FL_TF, FL_TF);
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("vector", EXCP_DB, e.cpu->stopped_vec);
    CHECK_EQ("EAX after one instruction", 1, e.cpu->regs[R_EAX]);
    CHECK_EQ("EIP = next instruction (trap)", CODE + 1, e.cpu->rip);
    CHECK_EQ("DR6.BS", 0x4000, e.cpu->dr[6] & 0x4000);
}

static void test_ltr_marks_tss_busy_and_lldt_checks_type(void)
{
    Env e = env_new();
    CODE_AT(&e, CODE, 0x66, 0xb8, 0x38, 0x00,       /* mov ax, 0x38 */
            0x0f, 0x00, 0xd8,                       /* ltr ax */
            0x66, 0xb8, 0x10, 0x00,                 /* mov ax, 0x10 (a data segment) */
            0x0f, 0x00, 0xd0,                       /* lldt ax -> #GP(0x10) */
            0xf4);
    setup_pm32(&e);
    e.cpu->tr.sel = 0;
    e.cpu->stop_on_exception = true;
    CHECK_EQ("run result", TCG_RUN_EXCEPTION, run(&e));
    CHECK_EQ("TR selector", 0x38, e.cpu->tr.sel);
    CHECK_EQ("TR base", TSS, e.cpu->tr.base);
    CHECK_EQ("busy bit in the GDT", 0x200, rd32(&e, GDT + 0x3c) & 0x200);
    CHECK_EQ("vector", EXCP_GP, e.cpu->stopped_vec);
    CHECK_EQ("error code", 0x10, e.cpu->stopped_err);
}

static void test_call_gate_to_ring0_from_ring3(void)
{
    Env e = env_new();
    /* GDT[11] = 32-bit call gate, DPL 3, target 0x08:CODE+0x100, 1 parameter. */
    CODE_AT(&e, CODE, 0x6a, 0x2a,                   /* push 42 */
            0x9a, 0x00, 0x00, 0x00, 0x00, 0x5b, 0x00,   /* call far 0x5b:0 */
            0xf4);
    CODE_AT(&e, CODE + 0x100, 0xf4);                /* hlt in ring 0 */
    setup_pm32(&e);
    uint32_t target = CODE + 0x100;
    st32_le(e.ram + GDT + 0x58, (0x08u << 16) | (target & 0xffff));
    st32_le(e.ram + GDT + 0x5c, (target & 0xffff0000u) | 0xec00 | 1);
    e.cpu->gdt.limit = 0x5f;
    X86CPUState s;
    cpu_to_x86_state(e.cpu, &s);
    seg_flat(&s.seg[SEG_CS], 0x2b, 0xb, 3, false);
    for (int i = 0; i < SEG__COUNT; i++)
        if (i != SEG_CS)
            seg_flat(&s.seg[i], 0x33, 0x3, 3, false);
    cpu_from_x86_state(e.cpu, &s);
    CHECK_EQ("run result", TCG_RUN_HALTED, run(&e));
    CHECK_EQ("CPL", 0, e.cpu->cpl);
    CHECK_EQ("EIP", CODE + 0x101, e.cpu->rip);
    uint32_t sp = (uint32_t)e.cpu->regs[R_ESP];
    CHECK_EQ("ESP = esp0 - 20", 0x90000 - 20, sp);
    CHECK_EQ("return EIP", CODE + 9, rd32(&e, sp));
    CHECK_EQ("return CS", 0x2b, rd32(&e, sp + 4));
    CHECK_EQ("copied parameter", 42, rd32(&e, sp + 8));
    CHECK_EQ("old ESP", 0x80000 - 4, rd32(&e, sp + 12));
    CHECK_EQ("old SS", 0x33, rd32(&e, sp + 16));
}

static const TestCase cases[] = {
    TEST_CASE(test_single_step_traps_after_each_instruction),
    TEST_CASE(test_ltr_marks_tss_busy_and_lldt_checks_type),
    TEST_CASE(test_call_gate_to_ring0_from_ring3),
    TEST_CASE(test_interrupt_wakes_sti_hlt),
    TEST_CASE(test_interrupt_masked_by_cli),
    TEST_CASE(test_sti_window_takes_pending_interrupt_after_one_instruction),
    TEST_CASE(test_lss_has_no_interrupt_shadow),
    TEST_CASE(test_real_mode_external_interrupt_uses_ivt),
    TEST_CASE(test_real_mode_stack_loop_and_arith),
    TEST_CASE(test_real_mode_int_through_ivt_and_iret),
    TEST_CASE(test_real_mode_segment_limit_gp),
    TEST_CASE(test_exception_loop_returns_on_budget),
    TEST_CASE(test_pm32_gp_error_code_is_selector),
    TEST_CASE(test_task_switch_t_flag_debug_trap),
    TEST_CASE(test_pm32_not_present_segment_np),
    TEST_CASE(test_pm32_limit_violation_and_expand_up),
    TEST_CASE(test_pm32_int_from_ring3_switches_stack),
    TEST_CASE(test_alignment_check_set_starts_invalid),
    TEST_CASE(test_pm32_int_gate_dpl_blocks_ring3),
    TEST_CASE(test_pm32_triple_fault_shuts_down),
    TEST_CASE(test_pm32_far_jump_to_16bit_and_back),
    TEST_CASE(test_paging32_write_to_readonly_page),
    TEST_CASE(test_paging32_wp0_lets_supervisor_write),
    TEST_CASE(test_paging32_not_present_read),
    TEST_CASE(test_paging32_user_fetch_from_supervisor_page),
    TEST_CASE(test_paging32_sets_accessed_and_dirty),
    TEST_CASE(test_paging32_invlpg_and_stale_tlb),
    TEST_CASE(test_paging32_pse_4mb_page),
    TEST_CASE(test_pae_paging_and_pdpte_load),
    TEST_CASE(test_global_page_survives_cr3_reload),
    TEST_CASE(test_branch_after_cr3_write_looks_up_in_place),
    TEST_CASE(test_direct_exits_sharing_a_link_slot),
    TEST_CASE(test_tlb_flush_listed_and_overflowed),
    TEST_CASE(test_jump_cache_forgets_remapped_code),
    TEST_CASE(test_long_mode_nx_fetch_fault),
    TEST_CASE(test_long_mode_reserved_bit_fault),
    TEST_CASE(test_long_mode_exception_frame),
    TEST_CASE(test_long_mode_syscall_sysret),
    TEST_CASE(test_user_jump_into_cached_supervisor_code_faults),
    TEST_CASE(test_flags_add_signed_overflow),
    TEST_CASE(test_flags_inc_preserves_cf),
    TEST_CASE(test_flags_sub_borrow),
    TEST_CASE(test_flags_shift_count_zero_changes_nothing),
    TEST_CASE(test_flags_shift_count_masked_to_5_bits),
    TEST_CASE(test_flags_rcl_8bit_count_9_is_identity),
    TEST_CASE(test_flags_rcl_by_one),
    TEST_CASE(test_flags_sar_keeps_sign),
    TEST_CASE(test_flags_imul_overflow),
    TEST_CASE(test_flags_daa),
    TEST_CASE(test_div_by_zero_raises_de),
    TEST_CASE(test_idiv_overflow_raises_de),
    TEST_CASE(test_string_rep_movsb_and_repe_cmpsb),
    TEST_CASE(test_string_repne_scasb_stops_on_match),
    TEST_CASE(test_self_modifying_code_in_same_block),
    TEST_CASE(test_chained_blocks_respect_the_budget),
    TEST_CASE(test_chained_block_rewritten_by_itself),
    TEST_CASE(test_followed_jmp_keeps_rip_and_icount),
    TEST_CASE(test_followed_jmp_block_rewritten_by_itself),
    TEST_CASE(test_ret_to_many_call_sites),
    TEST_CASE(test_op_linked_loop_counts_blocks),
    TEST_CASE(test_op_linked_loop_takes_interrupt),
    TEST_CASE(test_op_linked_block_rewritten),
    TEST_CASE(test_return_prediction_checks_the_address),
    TEST_CASE(test_return_prediction_forgets_remapped_page),
    TEST_CASE(test_return_prediction_keeps_privilege),
    TEST_CASE(test_call_to_other_page_follows_the_mapping),
    TEST_CASE(test_op_link_to_two_page_block_follows_the_mapping),
    TEST_CASE(test_far_jump_to_cs_limited_block_checks_the_limit),
    TEST_CASE(test_compat_code_wrapping_at_4g_keeps_its_block),
    TEST_CASE(test_two_page_block_kept_per_second_page),
    TEST_CASE(test_long_mode_code_segment_base_is_ignored),
    TEST_CASE(test_flat64_memory_forms_and_faults),
    TEST_CASE(test_tb_page_lists_unlink_in_any_order),
    TEST_CASE(test_dma_write_invalidates_translated_code),
    TEST_CASE(test_rep_movsb_over_own_block),
    TEST_CASE(test_rep_movsb_over_own_block_long),
    TEST_CASE(test_cmpxchg8b_and_xadd),
    TEST_CASE(test_port_io_and_iopl_check),
    TEST_CASE(test_x87_cr0_em_and_ts_raise_nm),
    TEST_CASE(test_wait_honours_ts_only_with_mp),
    TEST_CASE(test_x87_unmasked_zero_divide_raises_mf_at_next_wait),
    TEST_CASE(test_x87_stack_overflow_sets_sf_c1_and_indefinite),
    TEST_CASE(test_fnstenv_stores_full_tag_word),
    TEST_CASE(test_fnstenv_real_mode_layout),
    TEST_CASE(test_fnsave_reinitialises_and_frstor_restores),
    TEST_CASE(test_fxsave64_layout),
    TEST_CASE(test_fxsave_fxrstor_round_trip),
    TEST_CASE(test_fxsave_misaligned_is_gp),
    TEST_CASE(test_fxrstor_reserved_mxcsr_is_gp),
    TEST_CASE(test_ldmxcsr_checks),
    TEST_CASE(test_sse_fast_forms_checks_and_results),
    TEST_CASE(test_fs_gs_operands_take_the_base),
    TEST_CASE(test_pcmpistri_fast_form_results_and_faults),
    TEST_CASE(test_fused_flag_producer_branches),
    TEST_CASE(test_dead_flags_live_at_a_fault),
    TEST_CASE(test_dead_flags_rebuilt_at_a_load_fault),
    TEST_CASE(test_dead_flags_jump_into_a_load_window),
    TEST_CASE(test_dead_flags_jump_source_keeps_them),
    TEST_CASE(test_dead_flags_inc_dec_known_cf),
    TEST_CASE(test_dead_flags_block_shape),
    TEST_CASE(test_bsf_register_forms),
    TEST_CASE(test_fused_push_pop_mov_runs),
    TEST_CASE(test_fused_runs_fault_midway),
    TEST_CASE(test_fused_load_store_runs),
    TEST_CASE(test_fused_load_then_branch),
    TEST_CASE(test_fused_scan_loop_budget_and_icount),
    TEST_CASE(test_fused_push_run_rewrites_itself),
    TEST_CASE(test_x87_trig_argument_reduction_accuracy),
    TEST_CASE(test_movaps_misaligned_is_gp_movups_is_not),
    TEST_CASE(test_sse_unmasked_exception_xm_or_ud),
    TEST_CASE(test_sse_needs_osfxsr_and_honours_ts),
    TEST_CASE(test_ssse3_osfxsr_and_integer_0f38_ops),
    TEST_CASE(test_movbe_operand_size_follows_code_size),
    TEST_CASE(test_0f38_undefined_forms_and_alignment),
    TEST_CASE(test_cmpps_ignores_imm8_bits_7_3),
    TEST_CASE(test_crc32_byte_source_ah_without_rex_spl_with),
    TEST_CASE(test_legacy_0f_undefined_forms_ud_before_nm),
    TEST_CASE(test_rcpps_rsqrtps_accuracy),
    TEST_CASE(test_cpuid_describes_model),
    TEST_CASE(test_cpuid_follows_cpu_option),
    TEST_CASE(test_kestrel64_signature_lets_linux_keep_pat),
    TEST_CASE(test_mtrr_and_mca_msrs),
    TEST_CASE(test_direct_boot_mtrrs_read_back_until_reset),
    TEST_CASE(test_init_keeps_fpu_sse_xcr0_mtrr),
    TEST_CASE(test_xgetbv_after_reset_reads_1),
    TEST_CASE(test_xsetbv_rules),
    TEST_CASE(test_xsetbv_needs_cpl0_but_works_in_real_mode),
    TEST_CASE(test_xsave_xrstor_round_trip),
    TEST_CASE(test_xsave_saves_only_requested_components),
    TEST_CASE(test_xrstor_clear_xstate_bv_bit_means_init_state),
    TEST_CASE(test_xsaveopt_skips_components_in_init_state),
    TEST_CASE(test_xsave_alignment_and_xrstor_header_checks),
    TEST_CASE(test_xsave_needs_osxsave_and_honours_ts),
    TEST_CASE(test_cpuid_xsave_leaf_and_osxsave_follow_cr4),
    TEST_CASE(test_xsave_follows_cpu_model),
    TEST_CASE(test_lock_prefix_on_register_is_ud),
    TEST_CASE(test_instruction_longer_than_15_bytes_is_gp),
    TEST_CASE(test_long64_mov_dr7_high_half_is_gp),
    TEST_CASE(test_long64_data_breakpoint_traps_after_store),
    TEST_CASE(test_long64_instruction_breakpoint_and_rf),
    TEST_CASE(test_vme_int_n_redirected_to_ivt),
    TEST_CASE(test_vme_int3_is_not_redirected),
    TEST_CASE(test_vme_cli_sti_pushf_popf_use_vif),
    TEST_CASE(test_vme_sti_with_vip_is_gp),
    TEST_CASE(test_vme_iret_uses_vif),
    TEST_CASE(test_pvi_cli_sti_at_cpl3),
    TEST_CASE(test_cr4_vme_pvi_follow_cpuid),
    { 0 }
};

int main(int argc, char **argv)
{
    return test_main("tcg-cpu", cases, argc, argv);
}

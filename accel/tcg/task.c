/*
 * Hardware task switching (Intel SDM Vol. 3A chapter 7, "Task Management";
 * §7.3 lists the steps in the order implemented here): far JMP/CALL to a TSS
 * descriptor or a task gate, interrupts and exceptions through a task gate
 * in the IDT, and IRET with EFLAGS.NT=1 back to the previous task.
 *
 * 16-bit (type 1/3) and 32-bit (type 9/11) TSSs.  Long mode has no task
 * switching: callers refuse it (#GP) before getting here.  The I/O
 * permission bitmap lives with the I/O instructions.
 *
 * Fault ordering (§7.3, table 7-1): everything about the new TSS is checked
 * and the whole new TSS is read before the old task's state is written, so
 * such faults occur in the old task.  After TR has switched, faults while
 * loading the new task's segments (#TS/#NP/#SS with the selector) are taken
 * in the new task, with its selectors already in the registers.
 */
#include "accel/tcg/task.h"
#include "accel/tcg/cpu.h"
#include "accel/tcg/ops.h"
#include "kestrel/log.h"

#include <string.h>

/* 32-bit TSS (SDM 3A §7.2.1, figure 7-2). */
#define TSS32_LINK    0x00
#define TSS32_CR3     0x1c
#define TSS32_EIP     0x20
#define TSS32_EFLAGS  0x24
#define TSS32_EAX     0x28        /* then ECX EDX EBX ESP EBP ESI EDI, 4 bytes each */
#define TSS32_ES      0x48        /* then CS SS DS FS GS, 4 bytes each */
#define TSS32_LDT     0x60
#define TSS32_T       0x64        /* bit 0: debug trap on entry to the task */
#define TSS32_MIN_LIMIT 0x67

/* 16-bit TSS (SDM 3A §7.6, figure 7-11). */
#define TSS16_LINK    0x00
#define TSS16_IP      0x0e
#define TSS16_FLAGS   0x10
#define TSS16_AX      0x12        /* then CX DX BX SP BP SI DI, 2 bytes each */
#define TSS16_ES      0x22        /* then CS SS DS, 2 bytes each */
#define TSS16_LDT     0x2a
#define TSS16_MIN_LIMIT 0x2b

#define DESC_TSS_BUSY 0x200u      /* type bit 1 in the descriptor's high dword */

/* Segment register order in the TSS: ES CS SS DS FS GS. */
static const int tss_seg_order[6] = { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS };

typedef struct TaskState {
    uint32_t eip, eflags, cr3;
    uint32_t regs[8];
    uint16_t segs[6];             /* tss_seg_order */
    uint16_t ldt;
    bool debug_trap;              /* the T flag (32-bit TSS only) */
} TaskState;

static uint64_t tss_desc_addr(TCGCPU *cpu, uint16_t sel)
{
    return cpu->gdt.base + (sel & ~7u);
}

static void task_read(TCGCPU *cpu, uint32_t base, bool is32, TaskState *t)
{
    memset(t, 0, sizeof(*t));
    if (is32) {
        t->cr3 = (uint32_t)sys_ld(cpu, base + TSS32_CR3, 2);
        t->eip = (uint32_t)sys_ld(cpu, base + TSS32_EIP, 2);
        t->eflags = (uint32_t)sys_ld(cpu, base + TSS32_EFLAGS, 2);
        for (int i = 0; i < 8; i++)
            t->regs[i] = (uint32_t)sys_ld(cpu, base + TSS32_EAX + 4 * i, 2);
        for (int i = 0; i < 6; i++)
            t->segs[i] = (uint16_t)sys_ld(cpu, base + TSS32_ES + 4 * i, 1);
        t->ldt = (uint16_t)sys_ld(cpu, base + TSS32_LDT, 1);
        t->debug_trap = sys_ld(cpu, base + TSS32_T, 1) & 1;
    } else {
        t->eip = (uint32_t)sys_ld(cpu, base + TSS16_IP, 1);
        t->eflags = (uint32_t)sys_ld(cpu, base + TSS16_FLAGS, 1);
        /* A 16-bit task leaves the upper halves alone (SDM 3A §7.6). */
        for (int i = 0; i < 8; i++)
            t->regs[i] = ((uint32_t)cpu->regs[i] & 0xffff0000u) |
                         (uint32_t)sys_ld(cpu, base + TSS16_AX + 2 * i, 1);
        for (int i = 0; i < 4; i++)
            t->segs[i] = (uint16_t)sys_ld(cpu, base + TSS16_ES + 2 * i, 1);
        t->ldt = (uint16_t)sys_ld(cpu, base + TSS16_LDT, 1);
    }
}

/* Step 5 of §7.3: the current task's dynamic fields into its own TSS. */
static void task_save(TCGCPU *cpu, uint32_t eip, uint32_t eflags)
{
    uint64_t base = cpu->tr.base;
    bool is32 = SEGA_TYPE(cpu->tr.attr) & 8;
    if (is32) {
        sys_st(cpu, base + TSS32_EIP, 2, eip);
        sys_st(cpu, base + TSS32_EFLAGS, 2, eflags);
        for (int i = 0; i < 8; i++)
            sys_st(cpu, base + TSS32_EAX + 4 * i, 2, (uint32_t)cpu->regs[i]);
        for (int i = 0; i < 6; i++)
            sys_st(cpu, base + TSS32_ES + 4 * i, 1, cpu->seg[tss_seg_order[i]].sel);
    } else {
        sys_st(cpu, base + TSS16_IP, 1, eip & 0xffff);
        sys_st(cpu, base + TSS16_FLAGS, 1, eflags & 0xffff);
        for (int i = 0; i < 8; i++)
            sys_st(cpu, base + TSS16_AX + 2 * i, 1, cpu->regs[i] & 0xffff);
        for (int i = 0; i < 4; i++)
            sys_st(cpu, base + TSS16_ES + 2 * i, 1, cpu->seg[tss_seg_order[i]].sel);
    }
}

static void tss_set_busy(TCGCPU *cpu, uint16_t sel, bool busy)
{
    uint64_t a = tss_desc_addr(cpu, sel) + 4;
    uint32_t hi = (uint32_t)sys_ld(cpu, a, 2);
    hi = busy ? hi | DESC_TSS_BUSY : hi & ~DESC_TSS_BUSY;
    sys_st(cpu, a, 2, hi);
}

void task_switch(TCGCPU *cpu, uint16_t sel, TaskSwitchReason reason, uint64_t save_eip,
                 bool has_err, uint32_t err, uint32_t ext)
{
    uint32_t lo, hi;

    /* Steps 1-4 (§7.3): the new TSS descriptor, in the GDT, present, big enough, free or busy. */
    if ((sel & 4) || (sel | 7u) > cpu->gdt.limit)
        raise_exception_err(cpu, reason == TASK_SWITCH_IRET ? EXCP_TS : EXCP_GP,
                            (sel & 0xfffc) | ext);
    lo = (uint32_t)sys_ld(cpu, tss_desc_addr(cpu, sel), 2);
    hi = (uint32_t)sys_ld(cpu, tss_desc_addr(cpu, sel) + 4, 2);
    unsigned type = (hi >> 8) & 0x1f;          /* includes S, which must be 0 */
    bool busy = type == 0x3 || type == 0xb;
    bool avail = type == 0x1 || type == 0x9;
    if (reason == TASK_SWITCH_IRET ? !busy : !avail)
        raise_exception_err(cpu, reason == TASK_SWITCH_IRET ? EXCP_TS : EXCP_GP,
                            (sel & 0xfffc) | ext);
    if (!(hi & 0x8000))
        raise_exception_err(cpu, EXCP_NP, (sel & 0xfffc) | ext);
    bool is32 = type & 8;
    SegCache new_tr;
    seg_set_from_desc(&new_tr, sel, lo, hi);
    uint32_t limit = new_tr.limit, base = (uint32_t)new_tr.base;
    if (limit < (is32 ? TSS32_MIN_LIMIT : TSS16_MIN_LIMIT))
        raise_exception_err(cpu, EXCP_TS, (sel & 0xfffc) | ext);
    /* The current TSS must be able to hold the state we are about to save. */
    bool old32 = SEGA_TYPE(cpu->tr.attr) & 8;
    if (cpu->tr.limit < (old32 ? TSS32_MIN_LIMIT : TSS16_MIN_LIMIT))
        raise_exception_err(cpu, EXCP_TS, (cpu->tr.sel & 0xfffc) | ext);

    /* Read all of the new TSS first: a #PF here belongs to the old task. */
    TaskState t;
    task_read(cpu, base, is32, &t);
    /* Probe the new TSS's first and last bytes for writes (back link, busy bit later). */
    sys_st(cpu, base, 1, sys_ld(cpu, base, 1));

    LOG(LOG_INT, "tcg: cpu%d task switch (%s) %04x -> %04x\n", cpu->id,
        reason == TASK_SWITCH_JMP ? "jmp" : reason == TASK_SWITCH_CALL ? "call" :
        reason == TASK_SWITCH_IRET ? "iret" : "gate", cpu->tr.sel, sel);

    /* Step 5-6: old task out.  JMP and IRET free the old TSS; IRET also clears NT in the image. */
    uint32_t old_eflags = cpu_get_eflags(cpu);
    if (reason == TASK_SWITCH_IRET)
        old_eflags &= ~FL_NT;
    if (reason == TASK_SWITCH_JMP || reason == TASK_SWITCH_IRET)
        tss_set_busy(cpu, cpu->tr.sel, false);
    task_save(cpu, (uint32_t)save_eip, old_eflags);

    /* Step 7-9: nesting and busy for the new task, then TR and CR0.TS. */
    uint16_t old_tr = cpu->tr.sel;
    if (reason == TASK_SWITCH_CALL || reason == TASK_SWITCH_GATE) {
        sys_st(cpu, base + (is32 ? TSS32_LINK : TSS16_LINK), 1, old_tr);
        t.eflags |= FL_NT;
    }
    if (reason != TASK_SWITCH_IRET) {
        tss_set_busy(cpu, sel, true);
        hi |= DESC_TSS_BUSY;
    }
    seg_set_from_desc(&cpu->tr, sel, lo, hi);
    cpu->cr0 |= X86_CR0_TS;

    /* Step 10: the new task's state.  CR3 only from a 32-bit TSS with paging on. */
    if (is32 && (cpu->cr0 & X86_CR0_PG)) {
        if (!cpu_write_cr3(cpu, t.cr3))
            raise_exception_err(cpu, EXCP_GP, 0);
    }
    for (int i = 0; i < 8; i++)
        cpu->regs[i] = t.regs[i];
    cpu->rip = is32 ? t.eip : (t.eip & 0xffff);
    /* RF comes from the TSS too (SDM 3A §17.3.1.1); the run loop clears it after one instruction. */
    cpu_set_eflags(cpu, is32 ? t.eflags | 2 : (t.eflags & 0xffff) | 2,
                   is32 ? 0x3f7fd5u : 0xffffu);
    if (cpu->eflags & FL_RF)
        __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
    /* A task switch clears DR7's local enables L0-L3 (SDM 3A §17.2.4; not LE). */
    if (cpu->dr[7] & 0x55) {
        cpu->dr[7] &= ~(uint64_t)0x55;
        cpu_debug_update(cpu);
    }
    /* Selectors first, so a fault while loading them shows the new task's values. */
    int nsegs = is32 ? 6 : 4;
    for (int i = 0; i < 6; i++) {
        SegCache *sc = &cpu->seg[tss_seg_order[i]];
        sc->sel = i < nsegs ? t.segs[i] : 0;
    }
    cpu->ldt.sel = t.ldt;
    cpu_update_hflags(cpu);

    /* Step 11: descriptors, with the new task's privilege checks. */
    ldt_load(cpu, t.ldt, EXCP_TS);
    if (cpu->eflags & FL_VM) {
        /* The new task runs in virtual-8086 mode (SDM 3A §20.2.5). */
        for (int i = 0; i < 6; i++)
            seg_load_real(cpu, tss_seg_order[i], i < nsegs ? t.segs[i] : 0);
        cpu_update_hflags(cpu);
    } else {
        cpu->cpl = t.segs[1] & 3;
        cpu_update_hflags(cpu);
        /* The checks of a normal load, reported as #TS(selector) (2A "JMP", task switch). */
        seg_load_checked(cpu, SEG_CS, t.segs[1], EXCP_TS);
        seg_load_checked(cpu, SEG_SS, t.segs[2], EXCP_TS);
        seg_load_checked(cpu, SEG_DS, t.segs[3], EXCP_TS);
        seg_load_checked(cpu, SEG_ES, t.segs[0], EXCP_TS);
        seg_load_checked(cpu, SEG_FS, is32 ? t.segs[4] : 0, EXCP_TS);
        seg_load_checked(cpu, SEG_GS, is32 ? t.segs[5] : 0, EXCP_TS);
    }

    /* The new EIP must lie within the new CS (2A "JMP": #GP(0) in the new task). */
    if (!(cpu->eflags & FL_VM) && cpu->rip > cpu->seg[SEG_CS].limit)
        raise_exception_err(cpu, EXCP_GP, 0);

    /* An exception that switched tasks pushes its error code on the new task's stack. */
    if (has_err)
        cpu_push(cpu, is32 ? 2 : 1, err);

    /*
     * The new TSS's T flag: a #DB trap once the switch is complete, before
     * the new task's first instruction, with DR6.BT (SDM 3A §7.2.1 and
     * §17.2.3).  The run loop delivers pending trap bits before the next
     * block, whichever way the switch came (instruction, IRET, gate).
     */
    if (t.debug_trap) {
        cpu->dr6_pending |= DR6_BT;
        cpu->run_events = true;
        __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
    }
}

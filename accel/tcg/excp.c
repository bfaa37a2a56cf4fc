/*
 * Exceptions and interrupt delivery, IRET.
 *
 * SDM 3A ch. 6: real-mode IVT delivery (§6.11 via 20.1.4), protected-mode
 * IDT interrupt/trap gates with a privilege change through the TSS (§6.12),
 * IA-32e 16-byte gates, IST and the always-pushed SS:RSP (§6.14), double
 * fault classes (§6.15 Tables 6-4/6-5), triple fault -> shutdown.
 * Not modelled yet: task gates and IRET with NT=1 (logged, #GP).
 *
 * An exception unwinds the interpreter with longjmp to the run loop, which
 * calls cpu_deliver_pending_exception(); a fault during delivery comes back
 * the same way and is combined into #DF (or a triple fault).
 */
#include "accel/tcg/ops.h"
#include "accel/tcg/task.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"

void raise_exception_err(TCGCPU *cpu, int vec, uint32_t err)
{
    cpu->excp_vec = vec;
    cpu->excp_err = err;
    cpu->excp_has_err = true;
    cpu->excp_soft = false;
    longjmp(cpu->jmp, 1);
}

void raise_exception(TCGCPU *cpu, int vec)
{
    cpu->excp_vec = vec;
    cpu->excp_err = 0;
    cpu->excp_has_err = false;
    cpu->excp_soft = false;
    longjmp(cpu->jmp, 1);
}

static void __attribute__((noreturn)) raise_softint_to(TCGCPU *cpu, int vec, uint64_t next_rip,
                                                       bool v86_ivt)
{
    cpu->excp_vec = vec;
    cpu->excp_err = 0;
    cpu->excp_has_err = false;
    cpu->excp_soft = true;
    cpu->excp_v86_ivt = v86_ivt;
    cpu->excp_next_rip = next_rip;
    longjmp(cpu->jmp, 1);
}

void raise_softint(TCGCPU *cpu, int vec, uint64_t next_rip)
{
    raise_softint_to(cpu, vec, next_rip, false);
}

/*
 * INT n that CR4.VME redirects to the 8086 program's own handler (seg.c
 * decides from the TSS bitmap).  Delivered like the other software
 * interrupts, so that, as for them, no single-step trap follows the INT
 * (SDM 3A §17.3.1.4: INT n clears TF).
 */
void raise_softint_v86_ivt(TCGCPU *cpu, int vec, uint64_t next_rip)
{
    raise_softint_to(cpu, vec, next_rip, true);
}

static bool contributory(int vec)
{
    return vec == EXCP_DE || (vec >= EXCP_TS && vec <= EXCP_GP);
}

/* Push on the handler's stack without touching SS:RSP until the end. */
typedef struct FramePusher {
    uint64_t base, sp, mask;
    int idx;
} FramePusher;

static void frame_push(TCGCPU *cpu, FramePusher *f, int sz, uint64_t v)
{
    f->sp = (f->sp - (1u << sz)) & f->mask;
    uint64_t lin = f->base + f->sp;
    if (f->mask != ~(uint64_t)0)
        lin = (uint32_t)lin;
    lin_st_idx(cpu, lin, sz, v, f->idx);
}

/* Read the code segment a gate points at and check it (SDM 3A §6.12.1.1). */
static uint16_t gate_target(TCGCPU *cpu, uint16_t sel, uint32_t ext, uint32_t *lo, uint32_t *hi)
{
    if ((sel & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, ext);
    desc_fetch_or_fault(cpu, sel, lo, hi, EXCP_GP, (sel & 0xfffc) | ext);
    uint16_t attr = (uint16_t)((*hi >> 8) & 0xf0ff);
    if (!(attr & SEGA_S) || !(attr & SEGA_CODE) || SEGA_DPL(attr) > cpu->cpl)
        raise_exception_err(cpu, EXCP_GP, (sel & 0xfffc) | ext);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, (sel & 0xfffc) | ext);
    if (cpu->lma && (!(attr & SEGA_L) || (attr & SEGA_DB)))
        raise_exception_err(cpu, EXCP_GP, (sel & 0xfffc) | ext);
    return attr;
}

static void deliver_real(TCGCPU *cpu, int vec, uint64_t ret)
{
    if ((unsigned)vec * 4 + 3 > cpu->idt.limit)
        raise_exception_err(cpu, EXCP_GP, (uint32_t)vec * 8 + 2);
    uint64_t e = cpu->idt.base + (unsigned)vec * 4;
    uint16_t ip = (uint16_t)sys_ld(cpu, e, 1);
    uint16_t cs = (uint16_t)sys_ld(cpu, e + 2, 1);
    cpu_push(cpu, 1, cpu_get_eflags(cpu));
    cpu_push(cpu, 1, cpu->seg[SEG_CS].sel);
    cpu_push(cpu, 1, ret);
    cpu->eflags &= ~(FL_IF | FL_TF | FL_AC | FL_RF);
    seg_load_real(cpu, SEG_CS, cs);
    cpu->rip = ip;
}

/*
 * Methods 5 and 6 of v8086 INT n handling (SDM 3A §20.3.3.4-5, Table 20-2):
 * what real mode does (§20.1.4), on the v8086 stack, through the IVT at
 * linear 0 (read like the IDT, as a supervisor access), staying in v8086
 * mode.  The FLAGS image is the low word of EFLAGS; with IOPL < 3 it carries
 * VIF as IF and IOPL as 3 (method 6).  Then TF is cleared, and IF (IOPL = 3)
 * or VIF (IOPL < 3).  SP changes only once all three words are stored, so a
 * fault on a push restarts the INT.
 */
static void deliver_v86_ivt(TCGCPU *cpu, int vec, uint64_t ret)
{
    bool iopl3 = ((cpu->eflags & FL_IOPL) >> 12) == 3;
    uint16_t ip = (uint16_t)sys_ld(cpu, (uint64_t)vec * 4, 1);
    uint16_t cs = (uint16_t)sys_ld(cpu, (uint64_t)vec * 4 + 2, 1);
    uint32_t image = cpu_get_eflags(cpu) & 0xffff;
    if (!iopl3)
        image = (image & ~FL_IF) | FL_IOPL | ((cpu->eflags & FL_VIF) ? FL_IF : 0);
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    seg_st(cpu, SEG_SS, (sp - 2) & m, 1, image);
    seg_st(cpu, SEG_SS, (sp - 4) & m, 1, cpu->seg[SEG_CS].sel);
    seg_st(cpu, SEG_SS, (sp - 6) & m, 1, ret & 0xffff);
    sp_set(cpu, sp - 6);
    cpu->eflags &= ~(FL_TF | FL_RF | (iopl3 ? FL_IF : FL_VIF));
    seg_load_real(cpu, SEG_CS, cs);
    cpu->rip = ip;
}

/*
 * fault: the event is a fault (SDM 3A §6.5 table 6-1: it restarts the
 * faulting instruction), whose pushed EFLAGS image has RF=1 (SDM 3A
 * §17.3.1.1), except for instruction breakpoints (#DB, never passed as a
 * fault here: it pushes RF as it is, 0).
 */
static void deliver_protected(TCGCPU *cpu, int vec, uint32_t err, bool has_err, bool soft,
                              bool fault, uint64_t ret)
{
    uint32_t ext = soft ? 0 : 1;
    unsigned gsz = cpu->lma ? 16 : 8;
    uint32_t idt_err = (uint32_t)vec * 8 + 2 + ext;
    if ((unsigned)vec * gsz + gsz - 1 > cpu->idt.limit)
        raise_exception_err(cpu, EXCP_GP, idt_err);
    uint64_t ga = cpu->idt.base + (unsigned)vec * gsz;
    uint32_t lo = (uint32_t)sys_ld(cpu, ga, 2), hi = (uint32_t)sys_ld(cpu, ga + 4, 2);
    unsigned type = (hi >> 8) & 0x1f;     /* includes S bit (must be 0) */
    unsigned gdpl = (hi >> 13) & 3;
    bool is32 = false;
    if (cpu->lma) {
        if (type != 0xe && type != 0xf)
            raise_exception_err(cpu, EXCP_GP, idt_err);
    } else if (type == 0x5) {
        /* Task gate (SDM 3A §6.12.2): checked below, then a nested task switch. */
    } else if (type == 0x6 || type == 0x7 || type == 0xe || type == 0xf) {
        is32 = type >= 0xe;
    } else {
        raise_exception_err(cpu, EXCP_GP, idt_err);
    }
    if (soft && gdpl < cpu->cpl)
        raise_exception_err(cpu, EXCP_GP, (uint32_t)vec * 8 + 2);
    if (!(hi & 0x8000))
        raise_exception_err(cpu, EXCP_NP, idt_err);
    uint16_t sel = (uint16_t)(lo >> 16);
    if (type == 0x5) {
        task_switch(cpu, sel, TASK_SWITCH_GATE, ret, has_err, err, ext);
        return;
    }
    uint64_t off = (lo & 0xffff) | (hi & 0xffff0000u);
    unsigned ist = 0;
    if (cpu->lma) {
        off |= sys_ld(cpu, ga + 8, 2) << 32;
        ist = lo >> 0 & 0;          /* IST lives in the high dword's bits 2:0 */
        ist = hi & 7;
    } else if (!is32) {
        off &= 0xffff;
    }
    uint32_t clo, chi;
    uint16_t cattr = gate_target(cpu, sel, ext, &clo, &chi);
    unsigned dpl = SEGA_DPL(cattr);
    bool inner = !(cattr & SEGA_CONF_EXPD) && dpl < cpu->cpl;
    bool from_vm86 = cpu->vm86;
    if (from_vm86 && (!inner || dpl != 0))
        raise_exception_err(cpu, EXCP_GP, (sel & 0xfffc) | ext);
    unsigned new_cpl = inner ? dpl : cpu->cpl;

    uint32_t eflags = cpu_get_eflags(cpu) | (fault ? FL_RF : 0);
    uint16_t old_ss = cpu->seg[SEG_SS].sel, old_cs = cpu->seg[SEG_CS].sel;
    uint64_t old_sp = cpu->regs[R_ESP];
    FramePusher f;
    f.idx = new_cpl == 3 ? MMU_USER : MMU_KERNEL;
    SegCache new_ss = cpu->seg[SEG_SS];

    if (cpu->lma) {
        uint64_t rsp;
        if (ist) {
            rsp = sys_ld(cpu, cpu->tr.base + 0x24 + (ist - 1) * 8, 3);
        } else if (inner) {
            uint16_t dummy;
            rsp = tss_stack(cpu, (int)dpl, &dummy);
        } else {
            rsp = old_sp;
        }
        if (inner) {
            memset(&new_ss, 0, sizeof(new_ss));
            new_ss.sel = (uint16_t)new_cpl;
            new_ss.unusable = 1;
            new_ss.attr = (uint16_t)(new_cpl << 5);
        }
        f.base = 0;
        f.mask = ~(uint64_t)0;
        f.sp = rsp & ~(uint64_t)15;
        frame_push(cpu, &f, 3, old_ss);
        frame_push(cpu, &f, 3, old_sp);
        frame_push(cpu, &f, 3, eflags);
        frame_push(cpu, &f, 3, old_cs);
        frame_push(cpu, &f, 3, ret);
        if (has_err)
            frame_push(cpu, &f, 3, err);
    } else {
        int psz = is32 ? 2 : 1;
        if (inner) {
            uint16_t nss;
            uint64_t nsp = tss_stack(cpu, (int)dpl, &nss);
            uint32_t slo, shi;
            if ((nss & ~3u) == 0)
                raise_exception_err(cpu, EXCP_TS, ext);
            desc_fetch_or_fault(cpu, nss, &slo, &shi, EXCP_TS, (nss & 0xfffc) | ext);
            uint16_t sattr = (uint16_t)((shi >> 8) & 0xf0ff);
            if ((nss & 3) != dpl || SEGA_DPL(sattr) != dpl || !(sattr & SEGA_S) ||
                (sattr & SEGA_CODE) || !(sattr & SEGA_RW))
                raise_exception_err(cpu, EXCP_TS, (nss & 0xfffc) | ext);
            if (!(sattr & SEGA_P))
                raise_exception_err(cpu, EXCP_SS, (nss & 0xfffc) | ext);
            seg_set_from_desc(&new_ss, nss, slo, shi);
            f.base = new_ss.base;
            f.mask = (sattr & SEGA_DB) ? 0xffffffffu : 0xffff;
            f.sp = nsp & f.mask;
            if (from_vm86) {
                frame_push(cpu, &f, psz, cpu->seg[SEG_GS].sel);
                frame_push(cpu, &f, psz, cpu->seg[SEG_FS].sel);
                frame_push(cpu, &f, psz, cpu->seg[SEG_DS].sel);
                frame_push(cpu, &f, psz, cpu->seg[SEG_ES].sel);
            }
            frame_push(cpu, &f, psz, old_ss);
            frame_push(cpu, &f, psz, old_sp);
        } else {
            f.base = cpu->seg[SEG_SS].base;
            f.mask = sp_mask(cpu);
            f.sp = old_sp & f.mask;
        }
        frame_push(cpu, &f, psz, eflags);
        frame_push(cpu, &f, psz, old_cs);
        frame_push(cpu, &f, psz, ret);
        if (has_err)
            frame_push(cpu, &f, psz, err);
    }

    /* Commit. */
    if (inner || cpu->lma) {
        cpu->seg[SEG_SS] = new_ss;
        if (from_vm86) {
            static const int ds[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
            for (unsigned i = 0; i < 4; i++) {
                SegCache *sc = &cpu->seg[ds[i]];
                memset(sc, 0, sizeof(*sc));
                sc->unusable = 1;
            }
        }
    }
    if (f.mask == ~(uint64_t)0 || f.mask == 0xffffffffu)
        cpu->regs[R_ESP] = f.sp;
    else
        cpu->regs[R_ESP] = (cpu->regs[R_ESP] & ~0xffffull) | f.sp;
    if (inner && f.mask == 0xffff)
        cpu->regs[R_ESP] = f.sp;    /* new stack: high bits are don't-care */
    seg_set_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3u) | new_cpl), clo, chi | 0x100);
    cpu->cpl = (uint8_t)new_cpl;
    uint32_t clear = FL_TF | FL_NT | FL_RF | FL_VM;
    if (!(type & 1))
        clear |= FL_IF;     /* interrupt gate */
    cpu->eflags &= ~clear;
    cpu_update_hflags(cpu);
    cpu->rip = off;
}

/*
 * Also in v8086 mode with CR4.VME: a maskable interrupt is gated by IF and
 * goes through the protected-mode IDT; VIF only tells the monitor whether
 * the 8086 program has interrupts enabled, and the monitor sets VIP to hold
 * one for it (SDM 3A §20.3.2; the redirection bitmap is for INT n only,
 * §20.3.3).
 */
void cpu_deliver_interrupt(TCGCPU *cpu, int vec)
{
    /* External interrupt: rip is the next instruction already. */
    LOG(LOG_INT, "tcg: cpu%d interrupt vector %#x at %04x:%#" PRIx64 "\n",
        cpu->id, vec, cpu->seg[SEG_CS].sel, cpu->rip);
    cpu->excp_delivering = vec;
    cpu->cslim_undo.valid = false;
    if (!cpu->pe)
        deliver_real(cpu, vec, cpu->rip);
    else
        deliver_protected(cpu, vec, 0, false, false, false, cpu->rip);
    cpu->excp_delivering = -1;
}

void cpu_deliver_pending_exception(TCGCPU *cpu)
{
    int vec = cpu->excp_vec;
    uint32_t err = cpu->excp_err;
    bool has_err = cpu->excp_has_err, soft = cpu->excp_soft;
    int prev = cpu->excp_delivering;

    if (cpu->stop_on_exception && !soft) {
        /* Test harness: record instead of delivering. */
        cpu->excp_delivering = -1;
        cpu->stopped_vec = vec;
        cpu->stopped_err = has_err ? err : 0;
        return;
    }
    if (prev >= 0 && !soft) {
        if (prev == EXCP_DF) {
            LOG(LOG_INT | LOG_GUEST_ERROR, "tcg: cpu%d triple fault (vector %d while delivering #DF)\n",
                cpu->id, vec);
            cpu->excp_delivering = -1;
            cpu->halted = true;
            cpu->shutdown = true;
            if (cpu->m)
                machine_request_cpu_shutdown(cpu->id);
            return;
        }
        if ((contributory(prev) && contributory(vec)) ||
            (prev == EXCP_PF && (contributory(vec) || vec == EXCP_PF))) {
            vec = EXCP_DF;
            err = 0;
            has_err = true;
        }
    }
    if (!cpu->pe)
        has_err = false;
    if (vec == EXCP_DF || vec == EXCP_TS || vec == EXCP_NP || vec == EXCP_SS ||
        vec == EXCP_GP || vec == EXCP_PF || vec == EXCP_AC) {
        if (cpu->pe)
            has_err = true;
    } else if (!soft) {
        has_err = false;
    }
    /* SDM 3A §17.2.4: entering the #DB handler clears DR7.GD, so it can use the DRs. */
    if (vec == EXCP_DB && !soft)
        cpu->dr[7] &= ~(uint64_t)DR7_GD;
    LOG(LOG_INT, "tcg: cpu%d %s %#x err=%#x at %04x:%#" PRIx64 " cr2=%#" PRIx64 "\n", cpu->id,
        soft ? "software interrupt" : "exception", vec, err, cpu->seg[SEG_CS].sel, cpu->rip, cpu->cr2);
    cpu->excp_delivering = vec;
    cpu->cslim_undo.valid = false;
    uint64_t ret = soft ? cpu->excp_next_rip : cpu->rip;
    /* Table 6-1: the fault-class vectors (#DF is an abort, #DB here a trap). */
    bool fault = !soft && (vec == EXCP_DE || vec == EXCP_BR || vec == EXCP_UD ||
                           vec == EXCP_NM || vec == EXCP_TS || vec == EXCP_NP ||
                           vec == EXCP_SS || vec == EXCP_GP || vec == EXCP_PF ||
                           vec == EXCP_MF || vec == EXCP_AC || vec == EXCP_XM);
    if (!cpu->pe)
        deliver_real(cpu, vec, ret);
    else if (soft && cpu->excp_v86_ivt)
        deliver_v86_ivt(cpu, vec, ret);
    else
        deliver_protected(cpu, vec, err, has_err, soft, fault, ret);
    cpu->excp_delivering = -1;
    cpu->halted = false;
}

/* ---- IRET (SDM 2A "IRET/IRETD/IRETQ") ---- */
static void iret_do(TCGCPU *cpu, int opsz, uint64_t next_rip)
{
    int psz = opsz == 1 ? 1 : opsz == 3 ? 3 : 2;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    unsigned w = 1u << psz;

    /*
     * IRET unblocks NMIs, even when it then faults (SDM 3A §6.7.1; SDM 3C
     * §27.2.3 "NMI unblocking due to IRET"): a latched one is taken at the
     * next instruction boundary, so the run loop must look.
     */
    cpu->nmi_blocked = false;
    if (cpu->nmi_pending) {
        cpu->run_events = 1;
        __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
    }
    if (!cpu->pe || cpu->vm86) {
        /*
         * v8086 with IOPL < 3 traps to the monitor, except a 16-bit IRET
         * with CR4.VME, which returns from an 8086 handler reached by INT n
         * redirection (SDM 3A §20.3.3.5 method 6, whose frame IRET undoes;
         * AMD APM vol. 3 "IRET" spells the rule out): the popped IF goes to
         * VIF, IF and IOPL stay, and an image with TF = 1, or with IF = 1
         * while VIP = 1, is #GP(0) before anything is popped, as for POPF
         * (SDM 2B "POPF", SDM 3A §20.3.2).
         */
        bool vme_return = false;
        if (cpu->vm86 && ((cpu->eflags & FL_IOPL) >> 12) < 3) {
            if (!(cpu->cr4 & CR4_VME) || psz != 1)
                raise_exception_err(cpu, EXCP_GP, 0);
            vme_return = true;
        }
        uint64_t ip = seg_ld(cpu, SEG_SS, sp, psz);
        uint16_t cs = (uint16_t)seg_ld(cpu, SEG_SS, (sp + w) & m, psz);
        uint32_t fl = (uint32_t)seg_ld(cpu, SEG_SS, (sp + 2 * w) & m, psz);
        if (vme_return && ((fl & FL_TF) || ((fl & FL_IF) && (cpu->eflags & FL_VIP))))
            raise_exception_err(cpu, EXCP_GP, 0);
        sp_set(cpu, sp + 3 * w);
        uint32_t mask = psz == 1 ? 0xffff : 0x3f7fd5u;
        mask &= ~(FL_VM | FL_VIP | FL_VIF);
        if (cpu->vm86)
            mask &= ~FL_IOPL;
        if (vme_return) {
            mask &= ~FL_IF;
            cpu->eflags = (cpu->eflags & ~FL_VIF) | ((fl & FL_IF) ? FL_VIF : 0);
        }
        seg_load_real(cpu, SEG_CS, cs);
        cpu_set_eflags(cpu, fl, mask);
        cpu_update_hflags(cpu);
        cpu->rip = ip & size_mask[psz];
        return;
    }
    if (cpu->eflags & FL_NT) {
        if (cpu->lma)
            raise_exception_err(cpu, EXCP_GP, 0);
        /* Return from a nested task: to the one in this TSS's back link (SDM 3A §7.3). */
        uint16_t link = (uint16_t)sys_ld(cpu, cpu->tr.base, 1);
        task_switch(cpu, link, TASK_SWITCH_IRET, next_rip, false, 0, 0);
        return;
    }
    uint64_t ip = seg_ld(cpu, SEG_SS, sp, psz);
    uint16_t cs = (uint16_t)seg_ld(cpu, SEG_SS, (sp + w) & m, psz);
    uint32_t fl = (uint32_t)seg_ld(cpu, SEG_SS, (sp + 2 * w) & m, psz);
    unsigned old_cpl = cpu->cpl;

    if ((fl & FL_VM) && old_cpl == 0 && !cpu->lma && psz == 2) {
        /* Return to virtual-8086 mode (SDM 3A §20.2.6). */
        uint32_t nesp = (uint32_t)seg_ld(cpu, SEG_SS, (sp + 12) & m, 2);
        uint16_t nss = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 16) & m, 2);
        uint16_t es = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 20) & m, 2);
        uint16_t ds = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 24) & m, 2);
        uint16_t fs = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 28) & m, 2);
        uint16_t gs = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 32) & m, 2);
        cpu_set_eflags(cpu, fl, 0x3f7fd5u);
        cpu->eflags |= FL_VM;
        cpu->cpl = 3;
        cpu_update_hflags(cpu);
        seg_load_real(cpu, SEG_CS, cs);
        seg_load_real(cpu, SEG_SS, nss);
        seg_load_real(cpu, SEG_ES, es);
        seg_load_real(cpu, SEG_DS, ds);
        seg_load_real(cpu, SEG_FS, fs);
        seg_load_real(cpu, SEG_GS, gs);
        cpu->regs[R_ESP] = nesp;
        cpu->rip = ip & 0xffff;
        return;
    }

    uint32_t lo, hi;
    unsigned rpl = cs & 3;
    if ((cs & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    desc_fetch_or_fault(cpu, cs, &lo, &hi, EXCP_GP, cs & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    unsigned dpl = SEGA_DPL(attr);
    if (!(attr & SEGA_S) || !(attr & SEGA_CODE) || rpl < old_cpl ||
        ((attr & SEGA_CONF_EXPD) ? dpl > rpl : dpl != rpl))
        raise_exception_err(cpu, EXCP_GP, cs & 0xfffc);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, cs & 0xfffc);

    bool pop_ss = rpl > old_cpl || cpu->code64;
    uint64_t nsp = 0;
    uint16_t nss = 0;
    if (pop_ss) {
        nsp = seg_ld(cpu, SEG_SS, (sp + 3 * w) & m, psz);
        nss = (uint16_t)seg_ld(cpu, SEG_SS, (sp + 4 * w) & m, psz);
    }
    /*
     * Returning outward: the new SS is checked against the new CPL before
     * anything changes, so its #GP is taken in the old context; the new EIP
     * must lie within the new CS (SDM 2A "IRET").
     */
    uint32_t slo = 0, shi = 0;
    bool null_ss64 = cpu->lma && (nss & ~3u) == 0 && rpl < 3;
    if (pop_ss && !null_ss64 && (rpl > old_cpl || !cpu->lma))
        check_new_ss(cpu, nss, rpl, EXCP_GP, 0, &slo, &shi);
    uint64_t tmask = far_target_mask(cpu, hi);
    check_far_target_limit(cpu, lo, hi, ip & tmask);
    /*
     * EFLAGS: IOPL only at CPL 0, IF only when CPL <= IOPL (SDM 2A "IRET");
     * RF from a 32/64-bit frame (SDM 3A §17.3.1.1), cleared again by the run
     * loop after the next instruction's breakpoint check.
     */
    uint32_t mask = CC_ALL | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID | FL_RF;
    unsigned iopl = (cpu->eflags & FL_IOPL) >> 12;
    if (old_cpl == 0)
        mask |= FL_IOPL | FL_VIF | FL_VIP;
    if (old_cpl <= iopl)
        mask |= FL_IF;
    if (psz == 1)
        mask &= 0xffff;

    seg_set_from_desc(&cpu->seg[SEG_CS], cs, lo, hi | 0x100);
    cpu->cpl = (uint8_t)rpl;
    cpu_set_eflags(cpu, fl, mask);
    cpu_update_hflags(cpu);
    if (pop_ss) {
        if (null_ss64) {
            SegCache *ss = &cpu->seg[SEG_SS];
            memset(ss, 0, sizeof(*ss));
            ss->sel = nss;
            ss->unusable = 1;
            ss->attr = (uint16_t)(rpl << 5);
            cpu_update_hflags(cpu);
        } else if (rpl > old_cpl || !cpu->lma) {
            commit_new_ss(cpu, nss, slo, shi);
        } else {
            seg_load(cpu, SEG_SS, nss);
        }
        cpu->regs[R_ESP] = psz == 1 ? (cpu->regs[R_ESP] & ~0xffffull) | (nsp & 0xffff) : nsp;
        if (psz == 2 && !cpu->lma)
            cpu->regs[R_ESP] = (uint32_t)nsp;
        if (rpl > old_cpl) {
            static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
            for (unsigned i = 0; i < ARRAY_LEN(segs); i++) {
                SegCache *sc = &cpu->seg[segs[i]];
                bool conf_code = (sc->attr & SEGA_CODE) && (sc->attr & SEGA_CONF_EXPD);
                if (!sc->unusable && !conf_code && SEGA_DPL(sc->attr) < rpl) {
                    sc->sel = 0;
                    sc->unusable = 1;
                    seg_compute_ok(cpu, segs[i]);
                }
            }
        }
    } else {
        sp_set(cpu, sp + 3 * w);
    }
    cpu->rip = ip & tmask;
}

void helper_iret(TCGCPU *cpu, int opsz, uint64_t next_rip)
{
    iret_do(cpu, opsz, next_rip);
    /* RF came back set (a fault's frame): the run loop clears it after one instruction. */
    if (cpu->eflags & FL_RF)
        __atomic_store_n(&cpu->chain_break, 1, __ATOMIC_RELAXED);
}

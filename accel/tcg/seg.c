/*
 * Segmentation: descriptor loads with their protection checks, far
 * transfers (JMP/CALL/RET, call gates), SYSCALL/SYSRET, SYSENTER/SYSEXIT,
 * and the stack helpers ENTER/PUSHA/POPA.
 *
 * SDM 3A ch. 3 (descriptors, the hidden cache), ch. 5 (privilege checks,
 * §5.8 call gates), SDM 2A/2B instruction pages for MOV/POP/LDS/JMP/CALL/
 * RET/SYSCALL/SYSRET/SYSENTER/SYSEXIT.  Far JMP/CALL to a TSS or a task
 * gate hand over to task.c.
 */
#include "accel/tcg/ops.h"
#include "accel/tcg/task.h"
#include "kestrel/log.h"

/* Which TLB set data accesses use: CPL, and alignment checking at CPL 3. */
void cpu_update_mmu_idx(TCGCPU *cpu)
{
    if (cpu->cpl != 3)
        cpu->mmu_idx = MMU_KERNEL;
    else if ((cpu->cr0 & X86_CR0_AM) && (cpu->eflags & FL_AC))
        cpu->mmu_idx = MMU_USER_AC;
    else
        cpu->mmu_idx = MMU_USER;
    /* Block keys follow the fetch privilege (tb.h TB_FLAG_USER). */
    cpu->tb_flags_extra = (uint8_t)((cpu->tb_flags_extra & ~TB_FLAG_USER) |
                                    (cpu->mmu_idx != MMU_KERNEL ? TB_FLAG_USER : 0));
}

void cpu_update_hflags(TCGCPU *cpu)
{
    cpu->pe = cpu->cr0 & X86_CR0_PE;
    cpu->vm86 = cpu->pe && (cpu->eflags & FL_VM);
    cpu->lma = cpu->efer & X86_EFER_LMA;
    if (!cpu->pe)
        cpu->cpl = 0;
    else if (cpu->vm86)
        cpu->cpl = 3;
    cpu->code64 = cpu->lma && (cpu->seg[SEG_CS].attr & SEGA_L);
    /*
     * SDM 3A §3.4.4: 64-bit mode treats CS's base as zero.  Every CS load
     * comes here, and fetches and block keys add the base (ops.h cpu_tb_key).
     */
    if (cpu->code64)
        cpu->seg[SEG_CS].base = 0;
    cpu->code_size = cpu->code64 ? 3 : (cpu->seg[SEG_CS].attr & SEGA_DB) ? 2 : 1;
    cpu->cs_limited = cpu->pe && !cpu->vm86 && !cpu->code64 &&
                      cpu->seg[SEG_CS].limit < (cpu->code_size == 2 ? 0xffffffffu : 0xffffu);
    cpu->tb_flags_extra = (uint8_t)((cpu->cs_limited ? TB_FLAG_CSLIM : 0) |
                                    (cpu->bp_exec ? TB_FLAG_BP : 0));
    cpu->stack_size = cpu->code64 ? 3 : (cpu->seg[SEG_SS].attr & SEGA_DB) ? 2 : 1;
    cpu_update_mmu_idx(cpu);
    for (int s = 0; s < SEG__COUNT; s++)
        seg_compute_ok(cpu, s);
}

void seg_compute_ok(TCGCPU *cpu, int s)
{
    SegCache *sc = &cpu->seg[s];
    uint8_t ok;
    bool expd = false;
    if (!cpu->pe || cpu->vm86) {
        ok = SEGOK_R | SEGOK_W;
    } else if (sc->unusable) {
        ok = 0;
    } else if (sc->attr & SEGA_CODE) {
        ok = (sc->attr & SEGA_RW) ? SEGOK_R : 0;
    } else {
        ok = SEGOK_R | ((sc->attr & SEGA_RW) ? SEGOK_W : 0);
        expd = sc->attr & SEGA_CONF_EXPD;
    }
    if (ok && !expd && sc->base == 0 && sc->limit == 0xffffffffu)
        ok |= SEGOK_FLAT;
    sc->ok = ok;
}

void seg_check_slow(TCGCPU *cpu, int s, uint64_t off, unsigned len, int acc)
{
    const SegCache *sc = &cpu->seg[s];
    int vec = s == SEG_SS ? EXCP_SS : EXCP_GP;
    if (cpu->pe && !cpu->vm86) {
        if (sc->unusable)
            raise_exception_err(cpu, vec == EXCP_SS ? EXCP_SS : EXCP_GP, 0);
        if (acc == ACC_WRITE && !(sc->ok & SEGOK_W))
            raise_exception_err(cpu, EXCP_GP, 0);
        if (acc != ACC_WRITE && !(sc->ok & SEGOK_R))
            raise_exception_err(cpu, EXCP_GP, 0);
    }
    uint64_t last = off + len - 1;
    if (!(sc->attr & SEGA_CODE) && (sc->attr & SEGA_S) && (sc->attr & SEGA_CONF_EXPD) &&
        cpu->pe && !cpu->vm86) {
        uint64_t upper = (sc->attr & SEGA_DB) ? 0xffffffffu : 0xffff;
        if (off <= sc->limit || last > upper)
            raise_exception_err(cpu, vec, 0);
    } else if (last > sc->limit) {
        raise_exception_err(cpu, vec, 0);
    }
}

void seg_set_from_desc(SegCache *sc, uint16_t sel, uint32_t lo, uint32_t hi)
{
    uint32_t limit = (lo & 0xffff) | (hi & 0xf0000);
    sc->sel = sel;
    sc->base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
    sc->attr = (uint16_t)((hi >> 8) & 0xf0ff);
    sc->limit = (sc->attr & SEGA_G) ? (limit << 12) | 0xfff : limit;
    sc->unusable = 0;
}

void seg_load_real(TCGCPU *cpu, int s, uint16_t sel)
{
    SegCache *sc = &cpu->seg[s];
    sc->sel = sel;
    sc->base = (uint64_t)sel << 4;
    sc->unusable = 0;
    if (cpu->vm86) {
        /* SDM 3A §20.1.1: v8086 loads force limit FFFFh, DPL 3 data (CS: code). */
        sc->limit = 0xffff;
        sc->attr = SEGA_P | SEGA_S | (3u << 5) | SEGA_RW | SEGA_ACCESSED |
                   (s == SEG_CS ? SEGA_CODE : 0);
    }
    if (s == SEG_CS || s == SEG_SS)
        cpu_update_hflags(cpu);
    else
        seg_compute_ok(cpu, s);
}

bool desc_fetch(TCGCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi)
{
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        if (cpu->ldt.unusable || cpu->ldt.sel == 0)
            return false;
        base = cpu->ldt.base;
        limit = cpu->ldt.limit;
    } else {
        base = cpu->gdt.base;
        limit = cpu->gdt.limit;
    }
    uint32_t off = sel & ~7u;
    if (off + 7 > limit)
        return false;
    *lo = (uint32_t)sys_ld(cpu, base + off, 2);
    *hi = (uint32_t)sys_ld(cpu, base + off + 4, 2);
    return true;
}

void desc_fetch_or_fault(TCGCPU *cpu, uint16_t sel, uint32_t *lo, uint32_t *hi, int vec, uint32_t err)
{
    if (!desc_fetch(cpu, sel, lo, hi))
        raise_exception_err(cpu, vec, err);
}

static uint64_t desc_addr(TCGCPU *cpu, uint16_t sel)
{
    return ((sel & 4) ? cpu->ldt.base : cpu->gdt.base) + (sel & ~7u);
}

static void desc_set_accessed(TCGCPU *cpu, uint16_t sel, uint32_t hi)
{
    if (!(hi & 0x100))
        sys_st(cpu, desc_addr(cpu, sel) + 4, 2, hi | 0x100);
}

/* MOV/POP/LDS... into a data or stack segment register (SDM 3A §5.10, 2B "MOV"). */
void seg_load(TCGCPU *cpu, int s, uint16_t sel)
{
    if (!cpu->pe || cpu->vm86) {
        seg_load_real(cpu, s, sel);
        return;
    }
    seg_load_checked(cpu, s, sel, EXCP_GP);
}

/*
 * A segment register from its descriptor in protected mode, with the
 * checks of SDM 3A §5.10 and 2B "MOV".  check_vec is the vector of a failed
 * check: #GP for MOV/POP/Lxx, #TS for the loads of a task switch (2A "JMP",
 * task switch; SDM 3A §7.3 step 11), which also loads CS; not present is
 * #NP, or #SS for SS, either way.  A null selector leaves the register
 * unusable; null SS faults, except MOV/POP SS in 64-bit code below CPL 3.
 */
void seg_load_checked(TCGCPU *cpu, int s, uint16_t sel, int check_vec)
{
    SegCache *sc = &cpu->seg[s];
    uint32_t lo, hi;
    unsigned rpl = sel & 3, cpl = cpu->cpl;
    if ((sel & ~3u) == 0) {
        bool null_ss_ok = s == SEG_SS && check_vec == EXCP_GP && cpu->code64 && cpl < 3;
        if ((s == SEG_SS && !null_ss_ok) || s == SEG_CS)
            raise_exception_err(cpu, check_vec, sel & 0xfffc);
        sc->sel = sel;
        sc->base = 0;
        sc->limit = 0;
        sc->attr = null_ss_ok ? (uint16_t)((cpl << 5) | SEGA_DB) : 0;
        sc->unusable = 1;
        if (s == SEG_SS)
            cpu_update_hflags(cpu);
        else
            seg_compute_ok(cpu, s);
        return;
    }
    desc_fetch_or_fault(cpu, sel, &lo, &hi, check_vec, sel & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    unsigned dpl = SEGA_DPL(attr);
    bool bad;
    if (!(attr & SEGA_S)) {
        bad = true;
    } else if (s == SEG_CS) {
        bad = !(attr & SEGA_CODE) || ((attr & SEGA_CONF_EXPD) ? dpl > rpl : dpl != rpl);
    } else if (s == SEG_SS) {
        bad = (attr & SEGA_CODE) || !(attr & SEGA_RW) || rpl != cpl || dpl != cpl;
    } else {
        bool conforming_code = (attr & SEGA_CODE) && (attr & SEGA_CONF_EXPD);
        bad = ((attr & SEGA_CODE) && !(attr & SEGA_RW)) ||
              (!conforming_code && (rpl > dpl || cpl > dpl));
    }
    if (bad)
        raise_exception_err(cpu, check_vec, sel & 0xfffc);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, s == SEG_SS ? EXCP_SS : EXCP_NP, sel & 0xfffc);
    desc_set_accessed(cpu, sel, hi);
    seg_set_from_desc(sc, sel, lo, hi | 0x100);
    if (s == SEG_SS || s == SEG_CS)
        cpu_update_hflags(cpu);
    else
        seg_compute_ok(cpu, s);
}

/* Load CS for a far transfer whose checks passed; cpl is the new CPL. */
static void load_cs(TCGCPU *cpu, uint16_t sel, uint32_t lo, uint32_t hi, unsigned cpl)
{
    desc_set_accessed(cpu, sel, hi);
    seg_set_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & ~3u) | cpl), lo, hi | 0x100);
    cpu->cpl = (uint8_t)cpl;
    cpu_update_hflags(cpu);
}

/*
 * The new EIP of a far transfer must lie within the new CS (SDM 2A "JMP",
 * "CALL", "RET", "IRET": #GP(0)); a 64-bit target segment has no limit.
 */
void check_far_target_limit(TCGCPU *cpu, uint32_t lo, uint32_t hi, uint64_t target)
{
    if (cpu->lma && (hi & (1u << 21)))
        return;
    SegCache cs;
    seg_set_from_desc(&cs, 0, lo, hi);
    if (target > cs.limit)
        raise_exception_err(cpu, EXCP_GP, 0);
}

/*
 * The stack segment a privilege change moves to, checked against the new
 * CPL before anything is committed, so a fault is taken with the old CPL,
 * CS and stack (SDM 2A "RET"/"IRET" return to an outer level: #GP; "CALL"
 * through a gate to an inner level: #TS).  vec is that #GP or #TS.
 */
void check_new_ss(TCGCPU *cpu, uint16_t nss, unsigned new_cpl, int vec, uint32_t ext,
                  uint32_t *lo, uint32_t *hi)
{
    if ((nss & ~3u) == 0)
        raise_exception_err(cpu, vec, ext);
    if (!desc_fetch(cpu, nss, lo, hi))
        raise_exception_err(cpu, vec, (nss & 0xfffc) | ext);
    uint16_t attr = (uint16_t)((*hi >> 8) & 0xf0ff);
    if ((nss & 3u) != new_cpl || !(attr & SEGA_S) || (attr & SEGA_CODE) || !(attr & SEGA_RW) ||
        SEGA_DPL(attr) != new_cpl)
        raise_exception_err(cpu, vec, (nss & 0xfffc) | ext);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_SS, (nss & 0xfffc) | ext);
}

/* Load SS from a descriptor check_new_ss() accepted. */
void commit_new_ss(TCGCPU *cpu, uint16_t nss, uint32_t lo, uint32_t hi)
{
    desc_set_accessed(cpu, nss, hi);
    seg_set_from_desc(&cpu->seg[SEG_SS], nss, lo, hi | 0x100);
    cpu_update_hflags(cpu);
}

/* Checks for a direct far JMP/CALL to a code segment; returns the new CPL. */
static unsigned check_code_target(TCGCPU *cpu, uint16_t sel, uint16_t attr)
{
    unsigned dpl = SEGA_DPL(attr), rpl = sel & 3, cpl = cpu->cpl;
    if (attr & SEGA_CONF_EXPD) {
        if (dpl > cpl)
            raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    } else if (rpl > cpl || dpl != cpl) {
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    }
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, sel & 0xfffc);
    return cpl;
}

uint64_t far_target_mask(TCGCPU *cpu, uint32_t hi)
{
    if (cpu->lma && (hi & (1u << 21)))
        return ~(uint64_t)0;
    return (hi & (1u << 22)) ? 0xffffffffu : 0xffff;
}

typedef struct Gate {
    uint16_t sel;
    uint64_t off;
    unsigned dpl, type, params;
    bool present;
} Gate;

static Gate read_call_gate(TCGCPU *cpu, uint16_t sel, uint32_t lo, uint32_t hi)
{
    Gate g;
    g.sel = (uint16_t)(lo >> 16);
    g.off = (lo & 0xffff) | (hi & 0xffff0000u);
    g.type = (hi >> 8) & 0xf;
    g.dpl = (hi >> 13) & 3;
    g.present = hi & 0x8000;
    g.params = hi & 0x1f;
    if (g.type == 4)
        g.off &= 0xffff;
    if (cpu->lma) {
        /* 16-byte gate: upper offset in the next 8 bytes. */
        uint64_t a = desc_addr(cpu, sel) + 8;
        g.off |= sys_ld(cpu, a, 2) << 32;
        g.params = 0;
    }
    return g;
}

/*
 * Far JMP/CALL to a TSS descriptor or a task gate (SDM 2A "JMP"/"CALL",
 * task-switch branches): DPL >= CPL and >= RPL of the selector used, then
 * the task switch proper (task.c).
 */
static void far_to_task(TCGCPU *cpu, uint16_t sel, uint32_t hi, TaskSwitchReason reason,
                        uint64_t next_rip)
{
    unsigned dpl = (hi >> 13) & 3, type = (hi >> 8) & 0xf;
    if (dpl < cpu->cpl || dpl < (sel & 3u))
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    if (!(hi & 0x8000))
        raise_exception_err(cpu, EXCP_NP, sel & 0xfffc);
    uint16_t tss = sel;
    if (type == 5) {
        uint32_t glo = (uint32_t)sys_ld(cpu, desc_addr(cpu, sel), 2);
        tss = (uint16_t)(glo >> 16);
    }
    task_switch(cpu, tss, reason, next_rip, false, 0, 0);
}

void helper_far_jmp(TCGCPU *cpu, uint16_t sel, uint64_t off, uint64_t next_rip)
{
    if (!cpu->pe || cpu->vm86) {
        seg_load_real(cpu, SEG_CS, sel);
        cpu->rip = off;
        return;
    }
    uint32_t lo, hi;
    if ((sel & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    desc_fetch_or_fault(cpu, sel, &lo, &hi, EXCP_GP, sel & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    if (attr & SEGA_S) {
        if (!(attr & SEGA_CODE))
            raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
        unsigned cpl = check_code_target(cpu, sel, attr);
        uint64_t m = far_target_mask(cpu, hi);
        check_far_target_limit(cpu, lo, hi, off & m);
        load_cs(cpu, sel, lo, hi, cpl);
        cpu->rip = off & m;
        return;
    }
    unsigned type = SEGA_TYPE(attr);
    if (!cpu->lma && (type == 1 || type == 9 || type == 5)) {
        far_to_task(cpu, sel, hi, TASK_SWITCH_JMP, next_rip);
        return;
    }
    if (type == 4 || type == 0xc) {
        Gate g = read_call_gate(cpu, sel, lo, hi);
        if (g.dpl < cpu->cpl || g.dpl < (sel & 3u))
            raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
        if (!g.present)
            raise_exception_err(cpu, EXCP_NP, sel & 0xfffc);
        uint32_t clo, chi;
        if ((g.sel & ~3u) == 0)
            raise_exception_err(cpu, EXCP_GP, 0);
        desc_fetch_or_fault(cpu, g.sel, &clo, &chi, EXCP_GP, g.sel & 0xfffc);
        uint16_t cattr = (uint16_t)((chi >> 8) & 0xf0ff);
        unsigned cdpl = SEGA_DPL(cattr);
        if (!(cattr & SEGA_S) || !(cattr & SEGA_CODE) ||
            ((cattr & SEGA_CONF_EXPD) ? cdpl > cpu->cpl : cdpl != cpu->cpl))
            raise_exception_err(cpu, EXCP_GP, g.sel & 0xfffc);
        if (!(cattr & SEGA_P))
            raise_exception_err(cpu, EXCP_NP, g.sel & 0xfffc);
        check_far_target_limit(cpu, clo, chi, g.off & far_target_mask(cpu, chi));
        load_cs(cpu, g.sel, clo, chi, cpu->cpl);
        cpu->rip = g.off & far_target_mask(cpu, chi);
        return;
    }
    raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
}

void helper_far_call(TCGCPU *cpu, uint16_t sel, uint64_t off, int opsz, uint64_t next_rip)
{
    int psz = opsz == 1 ? 1 : opsz == 3 ? 3 : 2;
    uint16_t old_cs = cpu->seg[SEG_CS].sel;
    if (!cpu->pe || cpu->vm86) {
        uint64_t sp = cpu->regs[R_ESP];
        cpu_push(cpu, psz, old_cs);
        cpu_push(cpu, psz, next_rip);
        (void)sp;
        seg_load_real(cpu, SEG_CS, sel);
        cpu->rip = off & size_mask[psz];
        return;
    }
    uint32_t lo, hi;
    if ((sel & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    desc_fetch_or_fault(cpu, sel, &lo, &hi, EXCP_GP, sel & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    uint64_t sp0 = cpu->regs[R_ESP];
    if (attr & SEGA_S) {
        if (!(attr & SEGA_CODE))
            raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
        unsigned cpl = check_code_target(cpu, sel, attr);
        uint64_t m = far_target_mask(cpu, hi);
        check_far_target_limit(cpu, lo, hi, off & m);
        cpu_push(cpu, psz, old_cs);
        cpu_push(cpu, psz, next_rip);
        load_cs(cpu, sel, lo, hi, cpl);
        cpu->rip = off & m;
        return;
    }
    unsigned type = SEGA_TYPE(attr);
    if (!cpu->lma && (type == 1 || type == 9 || type == 5)) {
        far_to_task(cpu, sel, hi, TASK_SWITCH_CALL, next_rip);
        return;
    }
    if (type != 4 && type != 0xc)
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    /* Call gate (SDM 3A §5.8.4-5.8.5). */
    Gate g = read_call_gate(cpu, sel, lo, hi);
    if (g.dpl < cpu->cpl || g.dpl < (sel & 3u))
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    if (!g.present)
        raise_exception_err(cpu, EXCP_NP, sel & 0xfffc);
    uint32_t clo, chi;
    if ((g.sel & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    desc_fetch_or_fault(cpu, g.sel, &clo, &chi, EXCP_GP, g.sel & 0xfffc);
    uint16_t cattr = (uint16_t)((chi >> 8) & 0xf0ff);
    unsigned cdpl = SEGA_DPL(cattr);
    if (!(cattr & SEGA_S) || !(cattr & SEGA_CODE) || cdpl > cpu->cpl)
        raise_exception_err(cpu, EXCP_GP, g.sel & 0xfffc);
    if (!(cattr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, g.sel & 0xfffc);
    int gsz = cpu->lma ? 3 : g.type == 0xc ? 2 : 1;
    uint64_t target = g.off & far_target_mask(cpu, chi);
    if (!(cattr & SEGA_CONF_EXPD) && cdpl < cpu->cpl) {
        /* More privileged: switch to the inner stack from the TSS. */
        uint16_t nss;
        uint64_t nsp = tss_stack(cpu, (int)cdpl, &nss);
        uint16_t oss = cpu->seg[SEG_SS].sel;
        uint64_t osp = cpu->regs[R_ESP];
        uint64_t params[32];
        unsigned np = g.params;
        SegCache old_ss = cpu->seg[SEG_SS];
        for (unsigned i = 0; i < np; i++)
            params[i] = seg_ld(cpu, SEG_SS, (osp + (uint64_t)i * (1u << gsz)) & sp_mask(cpu), gsz);
        unsigned old_cpl = cpu->cpl;
        uint32_t slo = 0, shi = 0;
        if (!cpu->lma)
            check_new_ss(cpu, nss, cdpl, EXCP_TS, 0, &slo, &shi);
        check_far_target_limit(cpu, clo, chi, target);
        cpu->cpl = (uint8_t)cdpl;
        cpu_update_hflags(cpu);
        if (cpu->lma) {
            seg_load(cpu, SEG_SS, (uint16_t)cdpl);
        } else {
            commit_new_ss(cpu, nss, slo, shi);
        }
        cpu->regs[R_ESP] = nsp;
        cpu_update_hflags(cpu);
        cpu_push(cpu, gsz, oss);
        cpu_push(cpu, gsz, osp);
        for (unsigned i = np; i-- > 0;)
            cpu_push(cpu, gsz, params[i]);
        cpu_push(cpu, gsz, old_cs);
        cpu_push(cpu, gsz, next_rip);
        (void)old_cpl;
        (void)old_ss;
        load_cs(cpu, g.sel, clo, chi, cdpl);
        cpu->rip = target;
        return;
    }
    check_far_target_limit(cpu, clo, chi, target);
    cpu_push(cpu, gsz, old_cs);
    cpu_push(cpu, gsz, next_rip);
    (void)sp0;
    load_cs(cpu, g.sel, clo, chi, cpu->cpl);
    cpu->rip = target;
}

/* After a return to an outer ring: data segments the new CPL may not use become null. */
static void null_inaccessible_segs(TCGCPU *cpu)
{
    static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };
    for (unsigned i = 0; i < ARRAY_LEN(segs); i++) {
        SegCache *sc = &cpu->seg[segs[i]];
        bool conf_code = (sc->attr & SEGA_CODE) && (sc->attr & SEGA_CONF_EXPD);
        if (!sc->unusable && !conf_code && SEGA_DPL(sc->attr) < cpu->cpl) {
            sc->sel = 0;
            sc->unusable = 1;
            seg_compute_ok(cpu, segs[i]);
        }
    }
}

void helper_far_ret(TCGCPU *cpu, int opsz, uint16_t pop_bytes)
{
    int psz = opsz == 1 ? 1 : opsz == 3 ? 3 : 2;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    uint64_t nip = seg_ld(cpu, SEG_SS, sp, psz);
    uint16_t ncs = (uint16_t)seg_ld(cpu, SEG_SS, (sp + (1u << psz)) & m, psz);
    if (!cpu->pe || cpu->vm86) {
        sp_set(cpu, sp + (2u << psz) + pop_bytes);
        seg_load_real(cpu, SEG_CS, ncs);
        cpu->rip = nip;
        return;
    }
    uint32_t lo, hi;
    unsigned rpl = ncs & 3;
    if ((ncs & ~3u) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    desc_fetch_or_fault(cpu, ncs, &lo, &hi, EXCP_GP, ncs & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    unsigned dpl = SEGA_DPL(attr);
    if (!(attr & SEGA_S) || !(attr & SEGA_CODE) || rpl < cpu->cpl ||
        ((attr & SEGA_CONF_EXPD) ? dpl > rpl : dpl != rpl))
        raise_exception_err(cpu, EXCP_GP, ncs & 0xfffc);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, ncs & 0xfffc);
    uint64_t tmask = far_target_mask(cpu, hi);
    if (rpl == cpu->cpl) {
        check_far_target_limit(cpu, lo, hi, nip & tmask);
        sp_set(cpu, sp + (2u << psz) + pop_bytes);
        load_cs(cpu, ncs, lo, hi, rpl);
        cpu->rip = nip & tmask;
        return;
    }
    /* Return to an outer ring: SS:ESP follow the return address. */
    uint64_t sp2 = (sp + (2u << psz) + pop_bytes) & m;
    uint64_t nsp = seg_ld(cpu, SEG_SS, sp2, psz);
    uint16_t nss = (uint16_t)seg_ld(cpu, SEG_SS, (sp2 + (1u << psz)) & m, psz);
    uint32_t slo = 0, shi = 0;
    bool null_ss64 = cpu->lma && (nss & ~3u) == 0 && rpl < 3;
    if (!null_ss64)
        check_new_ss(cpu, nss, rpl, EXCP_GP, 0, &slo, &shi);
    check_far_target_limit(cpu, lo, hi, nip & tmask);
    load_cs(cpu, ncs, lo, hi, rpl);
    if (null_ss64)
        seg_load(cpu, SEG_SS, nss);
    else
        commit_new_ss(cpu, nss, slo, shi);
    cpu->regs[R_ESP] = psz == 1 ? ((cpu->regs[R_ESP] & ~0xffffull) | (nsp & 0xffff)) : nsp;
    if (psz != 1 && cpu->stack_size == 1)
        cpu->regs[R_ESP] = nsp;
    sp_set(cpu, cpu->regs[R_ESP] + pop_bytes);
    null_inaccessible_segs(cpu);
    cpu->rip = nip & tmask;
}

/*
 * LDTR from its GDT descriptor: LLDT (SDM 2A "LLDT": #GP, not present
 * #NP) or a task switch (2A "JMP", task switch: #TS for all of it).
 */
void ldt_load(TCGCPU *cpu, uint16_t sel, int check_vec)
{
    if ((sel & ~3u) == 0) {
        cpu->ldt.sel = sel;
        cpu->ldt.base = 0;
        cpu->ldt.limit = 0;
        cpu->ldt.unusable = 1;
        return;
    }
    if (sel & 4)
        raise_exception_err(cpu, check_vec, sel & 0xfffc);
    uint32_t lo, hi;
    desc_fetch_or_fault(cpu, sel, &lo, &hi, check_vec, sel & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    if ((attr & SEGA_S) || SEGA_TYPE(attr) != 2)
        raise_exception_err(cpu, check_vec, sel & 0xfffc);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, check_vec == EXCP_TS ? EXCP_TS : EXCP_NP, sel & 0xfffc);
    seg_set_from_desc(&cpu->ldt, sel, lo, hi);
    if (cpu->lma)
        cpu->ldt.base |= sys_ld(cpu, cpu->gdt.base + (sel & ~7u) + 8, 2) << 32;
}

void helper_ltr(TCGCPU *cpu, uint16_t sel)
{
    if ((sel & ~3u) == 0 || (sel & 4))
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    uint32_t lo, hi;
    desc_fetch_or_fault(cpu, sel, &lo, &hi, EXCP_GP, sel & 0xfffc);
    uint16_t attr = (uint16_t)((hi >> 8) & 0xf0ff);
    unsigned type = SEGA_TYPE(attr);
    if ((attr & SEGA_S) || (type != 1 && type != 9))
        raise_exception_err(cpu, EXCP_GP, sel & 0xfffc);
    if (!(attr & SEGA_P))
        raise_exception_err(cpu, EXCP_NP, sel & 0xfffc);
    seg_set_from_desc(&cpu->tr, sel, lo, hi | 0x200);
    if (cpu->lma)
        cpu->tr.base |= sys_ld(cpu, cpu->gdt.base + (sel & ~7u) + 8, 2) << 32;
    /* Mark busy. */
    sys_st(cpu, desc_addr(cpu, sel) + 4, 2, hi | 0x200);
}

/* Inner-ring stack pointer from the TSS (SDM 3A §7.2.1, §7.7 for 64-bit). */
uint64_t tss_stack(TCGCPU *cpu, int dpl, uint16_t *ss_out)
{
    SegCache *tr = &cpu->tr;
    unsigned type = SEGA_TYPE(tr->attr);
    if (tr->sel == 0 && tr->base == 0 && tr->limit == 0)
        raise_exception_err(cpu, EXCP_TS, 0);
    if (cpu->lma) {
        uint32_t off = 4 + 8 * (unsigned)dpl;
        if (off + 7 > tr->limit)
            raise_exception_err(cpu, EXCP_TS, tr->sel & 0xfffc);
        *ss_out = 0;
        return sys_ld(cpu, tr->base + off, 3);
    }
    if (type & 8) {
        uint32_t off = 4 + 8 * (unsigned)dpl;
        if (off + 5 > tr->limit)
            raise_exception_err(cpu, EXCP_TS, tr->sel & 0xfffc);
        *ss_out = (uint16_t)sys_ld(cpu, tr->base + off + 4, 1);
        return sys_ld(cpu, tr->base + off, 2);
    }
    uint32_t off = 2 + 4 * (unsigned)dpl;
    if (off + 3 > tr->limit)
        raise_exception_err(cpu, EXCP_TS, tr->sel & 0xfffc);
    *ss_out = (uint16_t)sys_ld(cpu, tr->base + off + 2, 1);
    return sys_ld(cpu, tr->base + off, 1);
}

/* ---- instruction helpers ---- */

int helper_mov_seg(TCGCPU *cpu, const DecodedOp *op)
{
    uint16_t sel = (uint16_t)rm_read(cpu, op, 1);
    seg_load(cpu, op->reg, sel);
    if (op->reg == SEG_SS) {
        cpu->intr_shadow = true;        /* MOV SS; MOV ESP is atomic */
        cpu->movss_shadow = true;       /* ... for NMIs too (SDM 3C §24.4.2) */
        cpu->run_events = 1;
        return H_NEXT_END;
    }
    return H_NEXT;
}

int helper_pop_seg(TCGCPU *cpu, const DecodedOp *op)
{
    int psz = op->sz;
    uint64_t sp = cpu->regs[R_ESP] & sp_mask(cpu);
    uint16_t sel = (uint16_t)seg_ld(cpu, SEG_SS, sp, psz);
    seg_load(cpu, op->sub, sel);
    sp_set(cpu, sp + (1u << psz));
    if (op->sub == SEG_SS) {
        cpu->intr_shadow = true;
        cpu->movss_shadow = true;
        cpu->run_events = 1;
        return H_NEXT_END;
    }
    return H_NEXT;
}

int helper_lseg(TCGCPU *cpu, const DecodedOp *op)
{
    int osz = op->sz;
    uint64_t lin = op_lin(cpu, op, (1u << osz) + 2, ACC_READ);
    uint64_t off = lin_ld(cpu, lin, osz);
    uint16_t sel = (uint16_t)lin_ld(cpu, lin + (1u << osz), 1);
    seg_load(cpu, op->sub, sel);
    reg_set(cpu, op->reg, osz, off);
    /*
     * No interrupt shadow, not even for LSS: SDM 3A §6.8.3 gives one to
     * MOV SS and POP SS only (LSS loads SS:rSP together, so needs none).
     */
    return H_NEXT;
}

static void set_flat_seg(SegCache *sc, uint16_t sel, uint16_t attr)
{
    sc->sel = sel;
    sc->base = 0;
    sc->limit = 0xffffffffu;
    sc->attr = attr;
    sc->unusable = 0;
}

/* SYSCALL (SDM 2B; APM 3 "SYSCALL").  Legacy (non-long) mode form included. */
int helper_syscall(TCGCPU *cpu, const DecodedOp *op)
{
    if (!(cpu->efer & X86_EFER_SCE))
        raise_exception(cpu, EXCP_UD);
    uint64_t next = cpu->rip + op->len;
    uint16_t sel = (uint16_t)(cpu->star >> 32);
    bool from64 = cpu->code64;
    if (cpu->lma) {
        cpu->regs[R_ECX] = next;
        cpu->regs[R_R11] = cpu_get_eflags(cpu) & ~FL_RF;
        set_flat_seg(&cpu->seg[SEG_CS], sel & 0xfffc,
                     SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_L);
        set_flat_seg(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc),
                     SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | 1);
        uint32_t fl = cpu_get_eflags(cpu) & ~(uint32_t)cpu->fmask & ~FL_RF;
        cpu_set_eflags(cpu, fl, 0xffffffffu);
        cpu->cpl = 0;
        cpu_update_hflags(cpu);
        /* From compatibility mode the target is CSTAR (AMD; Intel would #UD). */
        cpu->rip = from64 ? cpu->lstar : cpu->cstar;
        return H_END;
    }
    cpu->regs[R_ECX] = (uint32_t)next;
    set_flat_seg(&cpu->seg[SEG_CS], sel & 0xfffc,
                 SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB);
    set_flat_seg(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc),
                 SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | 1);
    cpu_set_eflags(cpu, 0, FL_VM | FL_IF | FL_RF);
    cpu->eflags &= ~(FL_VM | FL_IF | FL_RF);
    cpu->cpl = 0;
    cpu_update_hflags(cpu);
    cpu->rip = (uint32_t)cpu->star;
    return H_END;
}

int helper_sysret(TCGCPU *cpu, const DecodedOp *op)
{
    if (!(cpu->efer & X86_EFER_SCE))
        raise_exception(cpu, EXCP_UD);
    if (!cpu->pe || cpu->cpl != 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    uint16_t sel = (uint16_t)(cpu->star >> 48);
    if (cpu->lma) {
        bool to64 = op->sz == 3;
        uint64_t target = to64 ? cpu->regs[R_ECX] : (uint32_t)cpu->regs[R_ECX];
        /* Intel: non-canonical RCX -> #GP(0) in ring 0 (mirrors the Intel host). */
        if (to64 && !canonical(target))
            raise_exception_err(cpu, EXCP_GP, 0);
        if (to64)
            set_flat_seg(&cpu->seg[SEG_CS], (uint16_t)((sel + 16) | 3),
                         SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_L | (3u << 5));
        else
            set_flat_seg(&cpu->seg[SEG_CS], (uint16_t)(sel | 3),
                         SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | (3u << 5));
        cpu_set_eflags(cpu, (uint32_t)cpu->regs[R_R11], 0x003f7fd5u);
        cpu->rip = target;
    } else {
        set_flat_seg(&cpu->seg[SEG_CS], (uint16_t)(sel | 3),
                     SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | (3u << 5));
        cpu->eflags |= FL_IF;
        cpu->rip = (uint32_t)cpu->regs[R_ECX];
    }
    /* SS selector is STAR[63:48]+8 with RPL 3; its cache keeps flat attributes. */
    set_flat_seg(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) | 3),
                 SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | (3u << 5) | 1);
    cpu->cpl = 3;
    cpu_update_hflags(cpu);
    return H_END;
}

int helper_sysenter(TCGCPU *cpu, const DecodedOp *op)
{
    (void)op;
    uint16_t cs = (uint16_t)cpu->sysenter_cs;
    if (!cpu->pe || (cs & 0xfffc) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    cpu_set_eflags(cpu, 0, FL_VM | FL_IF | FL_RF);
    cpu->eflags &= ~(FL_VM | FL_IF | FL_RF);
    uint16_t cattr = SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G;
    cattr |= cpu->lma ? SEGA_L : SEGA_DB;
    set_flat_seg(&cpu->seg[SEG_CS], cs & 0xfffc, cattr);
    set_flat_seg(&cpu->seg[SEG_SS], (uint16_t)((cs + 8) & 0xfffc),
                 SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | 1);
    cpu->cpl = 0;
    cpu_update_hflags(cpu);
    cpu->regs[R_ESP] = cpu->lma ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
    cpu->rip = cpu->lma ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
    return H_END;
}

int helper_sysexit(TCGCPU *cpu, const DecodedOp *op)
{
    uint16_t cs = (uint16_t)cpu->sysenter_cs;
    if (!cpu->pe || cpu->cpl != 0 || (cs & 0xfffc) == 0)
        raise_exception_err(cpu, EXCP_GP, 0);
    bool to64 = op->sz == 3;
    uint16_t ncs = (uint16_t)((to64 ? cs + 32 : cs + 16) | 3);
    uint16_t cattr = SEGA_P | SEGA_S | SEGA_CODE | SEGA_RW | SEGA_ACCESSED | SEGA_G | (3u << 5);
    cattr |= to64 ? SEGA_L : SEGA_DB;
    set_flat_seg(&cpu->seg[SEG_CS], ncs, cattr);
    set_flat_seg(&cpu->seg[SEG_SS], (uint16_t)((to64 ? cs + 40 : cs + 24) | 3),
                 SEGA_P | SEGA_S | SEGA_RW | SEGA_ACCESSED | SEGA_G | SEGA_DB | (3u << 5) | 1);
    cpu->cpl = 3;
    cpu_update_hflags(cpu);
    cpu->regs[R_ESP] = to64 ? cpu->regs[R_ECX] : (uint32_t)cpu->regs[R_ECX];
    cpu->rip = to64 ? cpu->regs[R_EDX] : (uint32_t)cpu->regs[R_EDX];
    return H_END;
}

int helper_enter(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    unsigned level = (unsigned)op->imm & 31;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    uint64_t bp = cpu->regs[R_EBP];
    unsigned w = 1u << sz;
    /* Compute everything first, then commit (restartable on a fault). */
    sp = (sp - w) & m;
    seg_st(cpu, SEG_SS, sp, sz, bp);
    uint64_t frame = sp;
    if (level > 0) {
        uint64_t tbp = bp & m;
        for (unsigned i = 1; i < level; i++) {
            tbp = (tbp - w) & m;
            uint64_t v = seg_ld(cpu, SEG_SS, tbp, sz);
            sp = (sp - w) & m;
            seg_st(cpu, SEG_SS, sp, sz, v);
        }
        sp = (sp - w) & m;
        seg_st(cpu, SEG_SS, sp, sz, frame);
    }
    sp = (sp - op->imm16) & m;
    /* Probe the lowest byte of the new frame (SDM: #SS if it is beyond the limit). */
    if (op->imm16)
        (void)seg_lin(cpu, SEG_SS, sp, 1, ACC_WRITE);
    reg_set(cpu, R_EBP, sz, frame);
    sp_set(cpu, sp);
    return H_NEXT;
}

int helper_pusha(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    uint64_t osp = cpu->regs[R_ESP];
    for (int r = R_EAX; r <= R_EDI; r++) {
        sp = (sp - (1u << sz)) & m;
        seg_st(cpu, SEG_SS, sp, sz, r == R_ESP ? osp : cpu->regs[r]);
    }
    sp_set(cpu, sp);
    return H_NEXT;
}

int helper_popa(TCGCPU *cpu, const DecodedOp *op)
{
    int sz = op->sz;
    uint64_t m = sp_mask(cpu);
    uint64_t sp = cpu->regs[R_ESP] & m;
    uint64_t v[8];
    for (int r = R_EDI; r >= R_EAX; r--) {
        v[r] = seg_ld(cpu, SEG_SS, sp, sz);
        sp = (sp + (1u << sz)) & m;
    }
    for (int r = R_EAX; r <= R_EDI; r++)
        if (r != R_ESP)
            reg_set(cpu, r, sz, v[r]);
    sp_set(cpu, sp);
    return H_NEXT;
}

/*
 * INT n in v8086 mode with CR4.VME (SDM 3A §20.3.3, Table 20-2; SDM 2A
 * "INT n" pseudocode): bit n of the software interrupt redirection bitmap,
 * the 32 bytes just below the TSS's I/O map base, chooses.  Clear: methods
 * 5 (IOPL = 3) and 6 (IOPL < 3), the 8086 program's own handler.  Set:
 * method 4 (IOPL = 3, the IDT) or 3 (IOPL < 3, #GP(0)).  No 32-bit TSS, or a
 * bitmap byte beyond the TSS limit, is #GP(0), as for the I/O bitmap.
 */
static bool vme_int_redirected(TCGCPU *cpu, unsigned vec)
{
    const SegCache *tr = &cpu->tr;
    unsigned type = SEGA_TYPE(tr->attr);
    if ((type != 9 && type != 11) || tr->limit < 0x67)
        raise_exception_err(cpu, EXCP_GP, 0);
    uint32_t iobase = (uint32_t)sys_ld(cpu, tr->base + 0x66, 1);
    uint32_t off = iobase - 32 + vec / 8;
    if (iobase < 32 || off > tr->limit)
        raise_exception_err(cpu, EXCP_GP, 0);
    return !(sys_ld(cpu, tr->base + off, 0) & (1u << (vec & 7)));
}

int helper_int(TCGCPU *cpu, const DecodedOp *op)
{
    uint64_t next = cpu->rip + op->len;
    if (!cpu->code64)
        next &= size_mask[cpu->code_size];
    switch (op->idx) {
    /*
     * INT3 (CC) and INTO (CE) are not "INT n" (CD ib): in v8086 mode they are
     * neither IOPL-sensitive nor redirected, with or without VME; they always
     * go through the IDT, whose gate must have DPL 3 (SDM 2A "INT n/INTO/
     * INT3/INT1" pseudocode: its VM checks name INT n only).
     */
    case OP_INT3:
        raise_softint(cpu, EXCP_BP, next);
    case OP_INTO:
        if (!(cc_compute_all(cpu) & CC_O))
            return H_NEXT_END;
        raise_softint(cpu, EXCP_OF, next);
    default: {
        unsigned vec = (unsigned)(op->imm & 0xff);
        if (cpu->vm86 && (cpu->cr4 & CR4_VME) && vme_int_redirected(cpu, vec))
            raise_softint_v86_ivt(cpu, (int)vec, next);     /* excp.c: deliver_v86_ivt */
        /* v8086 with IOPL < 3: #GP(0) for the monitor (methods 2 and 3). */
        if (cpu->vm86 && ((cpu->eflags & FL_IOPL) >> 12) < 3)
            raise_exception_err(cpu, EXCP_GP, 0);
        raise_softint(cpu, (int)vec, next);
    }
    }
}

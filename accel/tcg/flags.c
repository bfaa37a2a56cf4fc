/*
 * Lazy arithmetic flags for the software x86 CPU.
 *
 * Instructions record what happened (cc_op, operand size, result and
 * operands) and the six arithmetic flags are computed only when something
 * reads them (Jcc/SETcc/CMOVcc, ADC/SBB, PUSHF, LAHF, an interrupt frame).
 * SDM 1 §3.4.3.1 and appendix A define the flags; the choices made for
 * architecturally undefined flags are listed here:
 *
 *   AND/OR/XOR/TEST     AF = 0
 *   SHL/SHR/SAR n>1     OF computed as for n = 1 (MSB(result) ^ CF for SHL,
 *                       MSB(result) ^ MSB(input to last step) for SHR/SAR);
 *                       AF = 0
 *   MUL/IMUL            SF/ZF/PF from the low half of the result, AF = 0
 *   DIV/IDIV            flags unchanged
 *   BSF/BSR src=0       destination unchanged, ZF=1, other flags unchanged
 *   BT/BTS/BTR/BTC      only CF written
 *   AAA/AAS             OF SF ZF PF computed from AL's result
 *   DAA/DAS             OF = 0
 *   AAM/AAD             OF AF CF = 0
 * The differential tester masks all of these.
 */
#include "accel/tcg/cpu.h"

static inline uint32_t parity(uint64_t v)
{
    return __builtin_parity((unsigned)(v & 0xff)) ? 0 : CC_P;
}

static inline uint32_t szp(uint64_t res, int sz)
{
    uint64_t m = size_mask[sz];
    uint32_t f = parity(res);
    if ((res & m) == 0)
        f |= CC_Z;
    if ((res >> ((8u << sz) - 1)) & 1)
        f |= CC_S;
    return f;
}

uint32_t cc_compute_all(const TCGCPU *cpu)
{
    int sz = cpu->cc_size;
    uint64_t m = size_mask[sz];
    unsigned top = (8u << sz) - 1;
    uint64_t r = cpu->cc_res & m, a = cpu->cc_a & m, b = cpu->cc_b & m;
    uint32_t f;

    switch (cpu->cc_op) {
    case CC_OP_EFLAGS:
        return (uint32_t)cpu->cc_aux & CC_ALL;
    case CC_OP_ADD:
    case CC_OP_ADC:
        f = szp(r, sz);
        if (cpu->cc_op == CC_OP_ADC && cpu->cc_aux ? r <= a : r < a)
            f |= CC_C;
        if ((((a ^ r) & (b ^ r)) >> top) & 1)
            f |= CC_O;
        f |= (uint32_t)((a ^ b ^ r) & CC_A);
        return f;
    case CC_OP_SUB:
    case CC_OP_SBB:
        f = szp(r, sz);
        if (cpu->cc_op == CC_OP_SBB && cpu->cc_aux ? a <= b : a < b)
            f |= CC_C;
        if ((((a ^ b) & (a ^ r)) >> top) & 1)
            f |= CC_O;
        f |= (uint32_t)((a ^ b ^ r) & CC_A);
        return f;
    case CC_OP_LOGIC:
        return szp(r, sz);
    case CC_OP_INC:
        /* a = old value, b = 1 */
        f = szp(r, sz) | (cpu->cc_aux ? CC_C : 0);
        if (r == ((uint64_t)1 << top))
            f |= CC_O;
        f |= (uint32_t)((a ^ r) & CC_A ? CC_A : 0);
        return f;
    case CC_OP_DEC:
        f = szp(r, sz) | (cpu->cc_aux ? CC_C : 0);
        if (r == ((uint64_t)1 << top) - 1)
            f |= CC_O;
        f |= (uint32_t)((a ^ r) & CC_A ? CC_A : 0);
        return f;
    case CC_OP_SHL:
        /* a = value shifted left by count-1: CF is its top bit. */
        f = szp(r, sz);
        if ((a >> top) & 1)
            f |= CC_C;
        if ((((a >> top) ^ (r >> top)) & 1))
            f |= CC_O;
        return f;
    case CC_OP_SHR:
        /* a = value shifted right by count-1: CF is its low bit. */
        f = szp(r, sz) | (uint32_t)(a & 1);
        if (((a ^ r) >> top) & 1)
            f |= CC_O;
        return f;
    case CC_OP_MUL:
        f = szp(r, sz);
        if (cpu->cc_aux)
            f |= CC_C | CC_O;
        return f;
    }
    return 0;
}

uint32_t cc_compute_cf(const TCGCPU *cpu)
{
    int sz = cpu->cc_size;
    uint64_t m = size_mask[sz];
    switch (cpu->cc_op) {
    case CC_OP_ADD: return (cpu->cc_res & m) < (cpu->cc_a & m);
    case CC_OP_SUB: return (cpu->cc_a & m) < (cpu->cc_b & m);
    case CC_OP_LOGIC: return 0;
    case CC_OP_INC: case CC_OP_DEC: return cpu->cc_aux ? 1 : 0;
    default: return cc_compute_all(cpu) & CC_C;
    }
}

bool cc_test(const TCGCPU *cpu, int cond)
{
    bool r;
    /* Fast paths for the common compare-and-branch idioms. */
    if (cpu->cc_op == CC_OP_SUB) {
        uint64_t m = size_mask[cpu->cc_size];
        uint64_t a = cpu->cc_a & m, b = cpu->cc_b & m;
        int64_t sa = (int64_t)sext(a, cpu->cc_size), sb = (int64_t)sext(b, cpu->cc_size);
        switch (cond >> 1) {
        case 1: r = a < b; goto out;             /* B */
        case 2: r = a == b; goto out;            /* Z */
        case 3: r = a <= b; goto out;            /* BE */
        case 6: r = sa < sb; goto out;           /* L */
        case 7: r = sa <= sb; goto out;          /* LE */
        default: break;
        }
    } else if (cpu->cc_op == CC_OP_LOGIC) {
        uint64_t v = cpu->cc_res & size_mask[cpu->cc_size];
        int64_t sv = (int64_t)sext(v, cpu->cc_size);
        switch (cond >> 1) {
        case 0: case 1: r = false; goto out;     /* O, B */
        case 2: r = v == 0; goto out;
        case 3: r = v == 0; goto out;            /* BE = CF|ZF */
        case 4: r = sv < 0; goto out;            /* S */
        case 6: r = sv < 0; goto out;            /* L = SF^OF */
        case 7: r = sv <= 0; goto out;           /* LE */
        default: break;
        }
    }
    return cc_eval_flags(cc_compute_all(cpu), cond);
out:
    return (cond & 1) ? !r : r;
}

uint32_t cpu_get_eflags(const TCGCPU *cpu)
{
    return (cpu->eflags & ~CC_ALL) | cc_compute_all(cpu) | X86_RFLAGS_FIXED;
}

void cpu_set_eflags(TCGCPU *cpu, uint32_t val, uint32_t mask)
{
    uint32_t cur = cpu_get_eflags(cpu);
    uint32_t nv = (cur & ~mask) | (val & mask);
    /* Reserved bits 3, 5, 15 and 22-31 read as zero; bit 1 as one. */
    nv &= 0x003f7fd5u;
    nv |= X86_RFLAGS_FIXED;
    cc_set_flags(cpu, nv);
    cpu->eflags = nv & ~CC_ALL;
    if ((cur ^ nv) & FL_AC)
        cpu_update_mmu_idx(cpu);
}

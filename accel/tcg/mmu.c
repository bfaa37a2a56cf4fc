/*
 * Paging and the soft TLB of the software x86 CPU.
 *
 * Walks (SDM 3A ch. 4): 32-bit (with PSE 4 MiB pages and PSE-36), PAE (PDPTE
 * registers loaded on MOV CR3), 4-level IA-32e (2 MiB and 1 GiB pages).
 * Rights combine over all levels (§4.6); A bits are set in every entry used
 * and D in the leaf on a write (§4.8); reserved bits give #PF with RSVD
 * (§4.7).  MAXPHYADDR is 40 (CPUID 8000_0008h).
 *
 * The TLB is direct-mapped, one table per MMU index (supervisor / user).
 * An entry grants the write fast path only when the leaf's D bit is set and
 * the page holds no translated code, so both go through the slow path.
 * Not modelled: PCID (not advertised), SMEP/SMAP, protection keys, LA57.
 */
#include "accel/tcg/cpu.h"
#include "accel/tcg/tb.h"
#include "kestrel/lock.h"
#include "kestrel/log.h"

#define PG_P   (1ull << 0)
#define PG_RW  (1ull << 1)
#define PG_US  (1ull << 2)
#define PG_A   (1ull << 5)
#define PG_D   (1ull << 6)
#define PG_PS  (1ull << 7)
#define PG_G   (1ull << 8)
#define PG_NX  (1ull << 63)
#define PHYS_BITS 40
#define PG_ADDR_MASK (((1ull << PHYS_BITS) - 1) & ~0xfffull)
/* Bits 51:MAXPHYADDR must be zero in 8-byte entries. */
#define PG_RSVD_HI (((1ull << 52) - 1) & ~((1ull << PHYS_BITS) - 1))

/* The physical page | TLB_PHYS_GLOBAL of TLB entry e (cpu.h TLBEntry). */
static inline uint64_t *tlb_phys_of(TCGCPU *cpu, const TLBEntry *e)
{
    if (e == &cpu->tlb_ac_scratch)
        return &cpu->tlb_ac_scratch_phys;
    return &cpu->tlb_phys[0][0] + (e - &cpu->tlb[0][0]);
}

static inline uint64_t tlb_paddr(TCGCPU *cpu, const TLBEntry *e)
{
    return *tlb_phys_of(cpu, e) & TLB_PAGE_MASK;
}

/* Invalidate entry j of set i unless it is global and they are kept; true if kept. */
static inline bool tlb_flush_entry(TCGCPU *cpu, int i, unsigned j, bool include_global)
{
    TLBEntry *e = &cpu->tlb[i][j];
    if (!include_global && (cpu->tlb_phys[i][j] & TLB_PHYS_GLOBAL))
        return e->tag_r != TLB_INVALID;
    e->tag_r = e->tag_w = e->tag_x = TLB_INVALID;
    cpu->tlb_phys[i][j] &= ~(uint64_t)TLB_PHYS_GLOBAL;
    return false;
}

/*
 * The entries of set i that may be valid: the listed ones (some twice, or
 * invalid since: harmless), or all of them once too many were filled to
 * list (tlb_filled_n > TLB_SIZE).  Only sets MMU_KERNEL and MMU_USER: the
 * MMU_USER_AC set is never filled.
 */
static inline uint32_t tlb_filled_count(const TCGCPU *cpu, int i)
{
    return MIN(cpu->tlb_filled_n[i], TLB_SIZE);
}

static inline unsigned tlb_filled_index(const TCGCPU *cpu, int i, uint32_t k)
{
    return cpu->tlb_filled_n[i] > TLB_SIZE ? k : cpu->tlb_filled[i][k];
}

void tlb_flush(TCGCPU *cpu, bool include_global)
{
    for (int i = 0; i < 2; i++) {
        uint32_t n = tlb_filled_count(cpu, i), kept = 0;
        /* The global entries kept are listed again (in place: kept <= k). */
        for (uint32_t k = 0; k < n; k++) {
            unsigned j = tlb_filled_index(cpu, i, k);
            if (tlb_flush_entry(cpu, i, j, include_global))
                cpu->tlb_filled[i][kept++] = (uint16_t)j;
        }
        cpu->tlb_filled_n[i] = kept;
    }
    /* The jump cache maps linear PCs to blocks: it depends on the mapping. */
    cpu_jc_flush(cpu);
    memset(cpu->ptc, 0, sizeof(cpu->ptc));
    LOG(LOG_MMU, "tlb: flush%s\n", include_global ? " (global too)" : "");
}

void tlb_flush_page(TCGCPU *cpu, uint64_t lin)
{
    uint64_t page = lin & TLB_PAGE_MASK;
    for (int i = 0; i < MMU__COUNT; i++) {
        TLBEntry *e = &cpu->tlb[i][(lin >> 12) & (TLB_SIZE - 1)];
        if ((e->tag_r & TLB_PAGE_MASK) == page || (e->tag_w & TLB_PAGE_MASK) == page ||
            (e->tag_x & TLB_PAGE_MASK) == page) {
            e->tag_r = e->tag_w = e->tag_x = TLB_INVALID;
            *tlb_phys_of(cpu, e) &= ~(uint64_t)TLB_PHYS_GLOBAL;
        }
    }
    cpu_jc_flush(cpu);
}

/* A page just got translated code: route further writes to it through the slow path. */
void tlb_drop_code_write(TCGCPU *cpu, uint64_t paddr_page)
{
    for (int i = 0; i < 2; i++) {
        uint32_t n = tlb_filled_count(cpu, i);
        for (uint32_t k = 0; k < n; k++) {
            unsigned j = tlb_filled_index(cpu, i, k);
            TLBEntry *e = &cpu->tlb[i][j];
            if (e->tag_w != TLB_INVALID && (cpu->tlb_phys[i][j] & TLB_PAGE_MASK) == paddr_page)
                e->tag_w |= TLB_FLAG_CODE;
        }
    }
}

/* ---- Physical access (page tables, descriptor tables via paging off) ---- */

uint64_t phys_ld(TCGCPU *cpu, uint64_t pa, int sz)
{
    bool lock = bql_lock_unless_held();
    uint64_t v = address_space_ld(cpu->as, pa, 1u << sz);
    bql_unlock_if_taken(lock);
    return v;
}

void phys_st(TCGCPU *cpu, uint64_t pa, int sz, uint64_t v)
{
    bool lock = bql_lock_unless_held();
    address_space_st(cpu->as, pa, v, 1u << sz);
    bql_unlock_if_taken(lock);
    tb_invalidate_phys_range(pa, 1u << sz);
}

/*
 * Paging-structure reads.  Page tables live in RAM, so their host pointers
 * are cached per CPU like TLB entries are, and with the same lifetime (a
 * memory-map change flushes every TLB, and this cache with it): a walk then
 * takes no lock.  Anything else (MMIO, unassigned) goes through phys_ld.
 */
static uint64_t pt_ld(TCGCPU *cpu, uint64_t pa, int sz)
{
    uint64_t page = pa & TLB_PAGE_MASK;
    PTCacheEntry *c = &cpu->ptc[(pa >> 12) & (PTC_SIZE - 1)];
    if (likely(c->tag == (page | 1)))
        return ld_raw(c->host + (pa & 0xfff), sz);
    bool lock = bql_lock_unless_held();
    const FlatRange *fr = address_space_lookup(cpu->as, page);
    uint8_t *host = NULL;
    if (fr && fr->host && fr->start <= page && page + 0x1000 <= fr->start + fr->size)
        host = fr->host + (page - fr->start);
    bql_unlock_if_taken(lock);
    if (!host)
        return phys_ld(cpu, pa, sz);
    c->tag = page | 1;
    c->host = host;
    return ld_raw(host + (pa & 0xfff), sz);
}

/* PAE: MOV CR3 (and paging-mode changes) load the four PDPTEs (SDM 3A §4.4.1). */
bool cpu_load_pdptes(TCGCPU *cpu, uint64_t cr3)
{
    uint64_t base = cr3 & 0xffffffe0u;
    uint64_t p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = phys_ld(cpu, base + 8 * i, 3);
        /* Reserved: bits 2:1, 8:5, 63:MAXPHYADDR. */
        if ((p[i] & PG_P) && (p[i] & (0x1e6ull | PG_RSVD_HI | (0xfffull << 52))))
            return false;
    }
    memcpy(cpu->pdpte, p, sizeof(p));
    return true;
}

typedef struct WalkResult {
    uint64_t pa;            /* physical address of the byte */
    bool writable, user, exec, global, dirty;
    uint64_t page_size;
} WalkResult;

/*
 * Returns 0 on success, else the #PF error code | 0x10000 (so 0 error code
 * faults are distinguishable).
 */
static uint32_t page_walk(TCGCPU *cpu, uint64_t lin, int acc, bool user_acc, WalkResult *w)
{
    bool nxe = cpu->efer & X86_EFER_NXE;
    uint32_t err = (acc == ACC_WRITE ? PFERR_W : 0) | (user_acc ? PFERR_U : 0) |
                   (acc == ACC_EXEC && nxe ? PFERR_ID : 0);
    bool rw = true, us = true, nx = false;
    uint64_t entries[5], addrs[5];
    int n = 0;
    uint64_t e, pa;
    uint64_t rsvd8 = PG_RSVD_HI | (nxe ? 0 : PG_NX);

    if (cpu->lma) {
        /* 4-level: PML4 -> PDPT -> PD -> PT. */
        uint64_t table = cpu->cr3 & PG_ADDR_MASK;
        for (int level = 4; level >= 1; level--) {
            int shift = 12 + 9 * (level - 1);
            uint64_t ea = table + ((lin >> shift) & 511) * 8;
            e = pt_ld(cpu, ea, 3);
            if (!(e & PG_P))
                return err | 0x10000;
            uint64_t rs = rsvd8;
            if (level == 4)
                rs |= PG_PS;
            if ((e & PG_PS) && (level == 3 || level == 2))
                rs |= (level == 3 ? 0x3fffe000ull : 0x1fe000ull);
            if (e & rs)
                return err | PFERR_P | PFERR_RSVD | 0x10000;
            entries[n] = e;
            addrs[n++] = ea;
            rw &= !!(e & PG_RW);
            us &= !!(e & PG_US);
            nx |= nxe && (e & PG_NX);
            if (level <= 3 && ((e & PG_PS) || level == 1)) {
                uint64_t psz = 1ull << shift;
                pa = (e & PG_ADDR_MASK & ~(psz - 1)) | (lin & (psz - 1));
                w->page_size = psz;
                goto leaf;
            }
            table = e & PG_ADDR_MASK;
        }
        return err | 0x10000;   /* not reached */
    } else if (cpu->cr4 & X86_CR4_PAE) {
        e = cpu->pdpte[(lin >> 30) & 3];
        if (!(e & PG_P))
            return err | 0x10000;
        uint64_t table = e & PG_ADDR_MASK;
        for (int level = 2; level >= 1; level--) {
            int shift = 12 + 9 * (level - 1);
            uint64_t ea = table + ((lin >> shift) & 511) * 8;
            e = pt_ld(cpu, ea, 3);
            if (!(e & PG_P))
                return err | 0x10000;
            uint64_t rs = rsvd8 | ((e & PG_PS) && level == 2 ? 0x1fe000ull : 0);
            if (e & rs)
                return err | PFERR_P | PFERR_RSVD | 0x10000;
            entries[n] = e;
            addrs[n++] = ea;
            rw &= !!(e & PG_RW);
            us &= !!(e & PG_US);
            nx |= nxe && (e & PG_NX);
            if ((e & PG_PS) || level == 1) {
                uint64_t psz = 1ull << shift;
                pa = (e & PG_ADDR_MASK & ~(psz - 1)) | (lin & (psz - 1));
                w->page_size = psz;
                goto leaf;
            }
            table = e & PG_ADDR_MASK;
        }
        return err | 0x10000;
    } else {
        /* 32-bit paging with 4-byte entries. */
        uint64_t ea = (cpu->cr3 & 0xfffff000u) + ((lin >> 22) & 0x3ff) * 4;
        e = pt_ld(cpu, ea, 2);
        if (!(e & PG_P))
            return err | 0x10000;
        entries[n] = e;
        addrs[n++] = ea;
        rw &= !!(e & PG_RW);
        us &= !!(e & PG_US);
        if ((e & PG_PS) && (cpu->cr4 & X86_CR4_PSE)) {
            /* PSE-36: PA bits 39:32 from PDE bits 20:13; bit 21 reserved. */
            if (e & (1u << 21))
                return err | PFERR_P | PFERR_RSVD | 0x10000;
            pa = (e & 0xffc00000u) | (((e >> 13) & 0xff) << 32) | (lin & 0x3fffff);
            w->page_size = 4u << 20;
            goto leaf;
        }
        ea = (e & 0xfffff000u) + ((lin >> 12) & 0x3ff) * 4;
        e = pt_ld(cpu, ea, 2);
        if (!(e & PG_P))
            return err | 0x10000;
        entries[n] = e;
        addrs[n++] = ea;
        rw &= !!(e & PG_RW);
        us &= !!(e & PG_US);
        pa = (e & 0xfffff000u) | (lin & 0xfff);
        w->page_size = 4096;
        goto leaf;
    }

leaf:
    /* Rights (SDM 3A §4.6). */
    if (user_acc && !us)
        return err | PFERR_P | 0x10000;
    if (acc == ACC_WRITE && !rw && (user_acc || (cpu->cr0 & X86_CR0_WP)))
        return err | PFERR_P | 0x10000;
    if (acc == ACC_EXEC && nx)
        return err | PFERR_P | 0x10000;
    /* Accessed bits on every level, dirty on the leaf for writes. */
    for (int i = 0; i < n; i++) {
        uint64_t ne = entries[i] | PG_A;
        if (i == n - 1 && acc == ACC_WRITE)
            ne |= PG_D;
        if (ne != entries[i]) {
            phys_st(cpu, addrs[i], n > 0 && !cpu->lma && !(cpu->cr4 & X86_CR4_PAE) ? 2 : 3, ne);
            entries[i] = ne;
        }
    }
    w->pa = pa;
    w->writable = rw || (!user_acc && !(cpu->cr0 & X86_CR0_WP));
    w->user = us;
    w->exec = !nx;
    w->global = (cpu->cr4 & X86_CR4_PGE) && (entries[n - 1] & PG_G);
    w->dirty = entries[n - 1] & PG_D;
    return 0;
}

bool mmu_translate(TCGCPU *cpu, uint64_t lin, int acc, int idx, uint64_t *paddr, bool raise)
{
    if (!(cpu->cr0 & X86_CR0_PG)) {
        *paddr = cpu->lma ? lin : (uint32_t)lin;
        return true;
    }
    WalkResult w;
    uint32_t err = page_walk(cpu, lin, acc, idx != MMU_KERNEL, &w);
    if (err) {
        if (!raise)
            return false;
        cpu->cr2 = lin;
        LOG(LOG_MMU, "mmu: #PF lin=%#" PRIx64 " err=%#x\n", lin, err & 0xffff);
        raise_exception_err(cpu, EXCP_PF, err & 0xffff);
    }
    *paddr = w.pa;
    return true;
}

/* Fill the TLB entry for lin (raising #PF if the walk fails). */
static TLBEntry *tlb_fill(TCGCPU *cpu, uint64_t lin, int acc, int idx)
{
    WalkResult w = { .writable = true, .user = true, .exec = true, .dirty = true };
    uint64_t page = lin & TLB_PAGE_MASK;
    /* Only canonical pages enter the TLB: exec.c's flat64_* rely on it. */
    if (unlikely(cpu->lma && !canonical(lin)))
        raise_exception_err(cpu, EXCP_GP, 0);
    if (cpu->cr0 & X86_CR0_PG) {
        uint32_t err = page_walk(cpu, lin, acc, idx != MMU_KERNEL, &w);
        if (err) {
            cpu->cr2 = lin;
            LOG(LOG_MMU, "mmu: #PF lin=%#" PRIx64 " err=%#x\n", lin, err & 0xffff);
            raise_exception_err(cpu, EXCP_PF, err & 0xffff);
        }
    } else {
        w.pa = cpu->lma ? lin : (uint32_t)lin;
    }
    uint64_t ppage = w.pa & TLB_PAGE_MASK;

    bool lock = bql_lock_unless_held();
    const FlatRange *fr = address_space_lookup(cpu->as, ppage);
    uint8_t *host = NULL;
    bool ro = true;
    if (fr && fr->host && fr->start <= ppage && ppage + 0x1000 <= fr->start + fr->size) {
        host = fr->host + (ppage - fr->start);
        ro = fr->readonly;
    }
    bql_unlock_if_taken(lock);

    TLBEntry *e = idx == MMU_USER_AC ? &cpu->tlb_ac_scratch
                                     : &cpu->tlb[idx][(lin >> 12) & (TLB_SIZE - 1)];
    bool was_invalid = e->tag_r == TLB_INVALID;
    uint64_t flag = host ? 0 : TLB_FLAG_IO;
    e->addend = host ? (uintptr_t)host - (uintptr_t)page : 0;
    e->tag_r = page | flag;
    e->tag_x = w.exec ? (page | flag) : TLB_INVALID;
    /* Data breakpoints: accesses to a watched page take the slow path (debug.c). */
    uint64_t watch_r = 0, watch_w = 0;
    if (unlikely(cpu->bp_data)) {
        watch_r = dbg_tlb_watch(cpu, page, ACC_READ);
        watch_w = dbg_tlb_watch(cpu, page, ACC_WRITE);
        e->tag_r |= watch_r;
    }
    if (w.writable && (w.dirty || acc == ACC_WRITE)) {
        uint64_t wf = flag | (ro ? TLB_FLAG_IO : 0) | watch_w;
        if (tb_page_has_code(ppage))
            wf |= TLB_FLAG_CODE;
        e->tag_w = page | wf;
    } else {
        e->tag_w = TLB_INVALID;
    }
    *tlb_phys_of(cpu, e) = ppage | (w.global ? TLB_PHYS_GLOBAL : 0);
    if (idx != MMU_USER_AC && was_invalid) {
        /* Newly in use: list it for tlb_flush (an overflow means "walk all"). */
        uint32_t *n = &cpu->tlb_filled_n[idx];
        if (*n < TLB_SIZE)
            cpu->tlb_filled[idx][*n] = (uint16_t)((lin >> 12) & (TLB_SIZE - 1));
        if (*n <= TLB_SIZE)
            (*n)++;
    }
    return e;
}

static TLBEntry *tlb_lookup(TCGCPU *cpu, uint64_t lin, int acc, int idx)
{
    TLBEntry *e = &cpu->tlb[idx][(lin >> 12) & (TLB_SIZE - 1)];
    uint64_t page = lin & TLB_PAGE_MASK;
    uint64_t tag = acc == ACC_READ ? e->tag_r : acc == ACC_WRITE ? e->tag_w : e->tag_x;
    if (tag != TLB_INVALID && (tag & TLB_PAGE_MASK) == page)
        return e;
    return tlb_fill(cpu, lin, acc, idx);
}

static uint8_t mem_ld8_slow(TCGCPU *cpu, uint64_t lin, int idx)
{
    TLBEntry *e = tlb_lookup(cpu, lin, ACC_READ, idx);
    if (!(e->tag_r & TLB_FLAG_IO))
        return *(uint8_t *)(e->addend + (uintptr_t)lin);
    return (uint8_t)phys_ld(cpu, tlb_paddr(cpu, e) | (lin & 0xfff), 0);
}

/* SDM 3A §6.15 interrupt 17: a misaligned data access at CPL 3 with AM and AC. */
static inline void check_alignment(TCGCPU *cpu, uint64_t lin, unsigned len, int idx)
{
    if (unlikely(idx == MMU_USER_AC) && (lin & (len - 1)))
        raise_exception_err(cpu, EXCP_AC, 0);
}

uint64_t mem_ld_slow(TCGCPU *cpu, uint64_t lin, int sz, int idx)
{
    unsigned len = 1u << sz;
    check_alignment(cpu, lin, len, idx);
    if (!cpu->lma)
        lin = (uint32_t)lin;
    if (unlikely(cpu->bp_data))
        dbg_data_access(cpu, lin, len, ACC_READ);
    if ((lin & 0xfff) + len > 0x1000) {
        /* Page-crossing: byte by byte (both pages must be readable). */
        uint64_t v = 0;
        for (unsigned i = 0; i < len; i++) {
            uint64_t a = lin + i;
            if (!cpu->lma)
                a = (uint32_t)a;
            v |= (uint64_t)mem_ld8_slow(cpu, a, idx) << (8 * i);
        }
        return v;
    }
    TLBEntry *e = tlb_lookup(cpu, lin, ACC_READ, idx);
    if (!(e->tag_r & TLB_FLAG_IO))
        return ld_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz);
    uint64_t pa = tlb_paddr(cpu, e) | (lin & 0xfff);
    bool lock = bql_lock_unless_held();
    uint64_t v = address_space_ld(cpu->as, pa, len);
    bql_unlock_if_taken(lock);
    tcg_after_device_access(cpu);
    return v;
}

static void mem_st_page(TCGCPU *cpu, TLBEntry *e, uint64_t lin, int sz, uint64_t v)
{
    unsigned len = 1u << sz;
    uint64_t pa = tlb_paddr(cpu, e) | (lin & 0xfff);
    if (e->tag_w & TLB_FLAG_CODE) {
        tb_invalidate_phys_range(pa, len);
        if (!tb_page_has_code(tlb_paddr(cpu, e)))
            e->tag_w &= ~(uint64_t)TLB_FLAG_CODE;
    }
    if (!(e->tag_w & TLB_FLAG_IO)) {
        st_raw((uint8_t *)(e->addend + (uintptr_t)lin), sz, v);
        return;
    }
    bool lock = bql_lock_unless_held();
    address_space_st(cpu->as, pa, v, len);
    bql_unlock_if_taken(lock);
    tcg_after_device_access(cpu);
}

void lin_probe_write(TCGCPU *cpu, uint64_t lin, unsigned len)
{
    int idx = cpu->mmu_idx;
    if (!cpu->lma)
        lin = (uint32_t)lin;
    tlb_lookup(cpu, lin, ACC_WRITE, idx);
    uint64_t last = lin + len - 1;
    if (!cpu->lma)
        last = (uint32_t)last;
    if ((last ^ lin) & TLB_PAGE_MASK)
        tlb_lookup(cpu, last, ACC_WRITE, idx);
}

void mem_st_slow(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int idx)
{
    unsigned len = 1u << sz;
    check_alignment(cpu, lin, len, idx);
    if (!cpu->lma)
        lin = (uint32_t)lin;
    if (unlikely(cpu->bp_data))
        dbg_data_access(cpu, lin, len, ACC_WRITE);
    if ((lin & 0xfff) + len > 0x1000) {
        /* Check both pages before writing anything (no partial stores). */
        uint64_t lin2 = (lin + len - 1) & TLB_PAGE_MASK;
        if (!cpu->lma)
            lin2 = (uint32_t)lin2;
        tlb_lookup(cpu, lin, ACC_WRITE, idx);
        tlb_lookup(cpu, lin2, ACC_WRITE, idx);
        for (unsigned i = 0; i < len; i++) {
            uint64_t a = lin + i;
            if (!cpu->lma)
                a = (uint32_t)a;
            TLBEntry *e = tlb_lookup(cpu, a, ACC_WRITE, idx);
            mem_st_page(cpu, e, a, 0, v >> (8 * i));
        }
        return;
    }
    TLBEntry *e = tlb_lookup(cpu, lin, ACC_WRITE, idx);
    mem_st_page(cpu, e, lin, sz, v);
}

uint8_t *tlb_host_ptr(TCGCPU *cpu, uint64_t lin, int acc)
{
    if (cpu->mmu_idx == MMU_USER_AC)
        return NULL;            /* every element goes through the alignment check */
    if (!cpu->lma)
        lin = (uint32_t)lin;
    TLBEntry *e = tlb_lookup(cpu, lin, acc, cpu->mmu_idx);
    uint64_t tag = acc == ACC_WRITE ? e->tag_w : e->tag_r;
    if (tag & TLB_FLAG_MASK)
        return NULL;
    return (uint8_t *)(e->addend + (uintptr_t)lin);
}

uint64_t mem_ld_slow_canon(TCGCPU *cpu, uint64_t lin, int sz, int seg)
{
    if (unlikely(!canonical(lin)))
        raise_exception_err(cpu, seg == SEG_SS ? EXCP_SS : EXCP_GP, 0);
    return mem_ld_slow(cpu, lin, sz, cpu->mmu_idx);
}

void mem_st_slow_canon(TCGCPU *cpu, uint64_t lin, int sz, uint64_t v, int seg)
{
    if (unlikely(!canonical(lin)))
        raise_exception_err(cpu, seg == SEG_SS ? EXCP_SS : EXCP_GP, 0);
    mem_st_slow(cpu, lin, sz, v, cpu->mmu_idx);
}

uint8_t *mmu_translate_code(TCGCPU *cpu, uint64_t lin, uint64_t *paddr_page, bool *fault_ok)
{
    (void)fault_ok;
    TLBEntry *e = tlb_lookup(cpu, lin, ACC_EXEC, cpu->mmu_idx);
    *paddr_page = tlb_paddr(cpu, e);
    if (e->tag_x & TLB_FLAG_IO)
        return NULL;
    return (uint8_t *)(e->addend + (uintptr_t)(lin & TLB_PAGE_MASK));
}

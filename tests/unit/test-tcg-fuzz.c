/*
 * The software CPU against arbitrary guest code.  Each seed builds a small
 * machine in one CPU mode — descriptor tables, gates, TSSs, page tables and
 * registers that are mostly sensible and partly random — fills the code,
 * handler and ROM areas with random bytes and opcode-shaped "soup", and runs
 * it, on one CPU or two taking turns, with or without random external
 * interrupts, until it halts, triple-faults or a block budget ends.  A guest may do
 * anything to its own machine; the host process must not crash, hang or
 * touch memory outside guest RAM (run with configure --enable-sanitizers
 * for the last), and the outcome must be a function of the guest alone:
 * every seed runs twice, on two fresh CPUs, and the final architectural
 * state and all of RAM must agree.  A difference means host state leaked
 * into the guest: a stale cache entry, an uninitialised field, a pointer.
 *
 * KESTREL_TCG_FUZZ_SEEDS=N runs N seeds per mode (tests/slow/tcg-fuzz.sh);
 * KESTREL_TCG_FUZZ_SEED=S runs seed S alone.  A failure names its mode and
 * seed and prints the command that repeats it.
 */
#include <string.h>

#include "accel/tcg/tcg-internal.h"
#include "accel/tcg/tb.h"
#include "kestrel/ioport.h"
#include "kestrel/memory.h"
#include "tests/testlib.h"

/* Guest physical layout. */
#define RAM_SIZE     (4u << 20)
#define MMIO_BASE    0x400000u      /* reads: random, writes: dropped */
#define MMIO_SIZE    0x10000u
#define ROM_BASE     0x410000u      /* random bytes, read-only */
#define ROM_SIZE     0x10000u
#define MAPPED_TOP   0x800000u      /* page tables map 0-8 MiB (the rest unassigned) */
#define IVT          0x0000u
#define GDT          0x1000u
#define GDT_ENTRIES  32
#define IDT          0x2000u
#define TSS_A        0x3000u        /* TR's TSS, with a full I/O bitmap */
#define TSS_A_LIMIT  (0x68u + 0x2000u)
#define TSS_B        0x6000u        /* the one task gates and far jumps switch to */
#define LDT          0x7000u
#define HANDLERS     0x8000u        /* 8 KiB of soup that gates point into */
#define CODE         0x10000u       /* 64 KiB of soup */
#define PAGING       0x20000u       /* up to 8 table pages */
#define DATA         0x30000u       /* 64 KiB of random data */
#define STACK_TOP    0x80000u

/* GDT selectors (index << 3). */
enum {
    SEL_CODE32 = 0x08, SEL_DATA = 0x10, SEL_CODE64 = 0x18, SEL_CODE16 = 0x20,
    SEL_UCODE32 = 0x28, SEL_UDATA = 0x30, SEL_TSS_A = 0x38, /* 0x40: TSS_A's upper half */
    SEL_UCODE64 = 0x48, SEL_DATA16 = 0x50, SEL_LDT = 0x58, /* 0x60: LDT's upper half */
    SEL_CALLGATE = 0x68, SEL_TSS_B = 0x70, SEL_TASKGATE = 0x80, SEL_FIRST_MUTANT = 0x88,
};

typedef enum {
    MODE_REAL, MODE_PM16, MODE_PM32, MODE_PAGING32, MODE_PAE, MODE_LONG64,
    MODE_COMPAT, MODE_V86, MODE_USER32, MODE_USER64, MODE__COUNT
} FuzzMode;

static const char *const mode_names[MODE__COUNT] = {
    "real", "pm16", "pm32", "paging32", "pae", "long64", "compat", "v86", "user32", "user64",
};

/* splitmix64: a seed fully determines a run. */
typedef struct Rng { uint64_t s; } Rng;

static uint64_t rnd(Rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned below(Rng *r, unsigned n) { return (unsigned)(rnd(r) % n); }
static bool chance(Rng *r, unsigned percent) { return below(r, 100) < percent; }

/* ---- the machine: RAM, a random-read MMIO window, ROM, chatty I/O ports ---- */

static AddressSpace *fuzz_as;
static uint8_t *fuzz_ram, *fuzz_rom;
static Rng device_rng;              /* reset per run, so device reads repeat */

static bool interrupts_on;

/* A device access may change the interrupt line: the CPU asks again. */
static void chaos_maybe_interrupt(void)
{
    if (interrupts_on && rnd(&device_rng) % 4 == 0)
        tcg_raise_interrupt_check();
}

static uint64_t chaos_read(void *opaque, hwaddr offset, unsigned size)
{
    (void)opaque;
    (void)size;
    chaos_maybe_interrupt();
    return rnd(&device_rng) ^ offset;
}

static void chaos_write(void *opaque, hwaddr offset, uint64_t value, unsigned size)
{
    (void)opaque, (void)offset, (void)value, (void)size;
    chaos_maybe_interrupt();
}

static const MemoryRegionOps chaos_mmio_ops = { .read = chaos_read, .write = chaos_write };

static uint32_t chaos_port_read(void *opaque, uint16_t port, unsigned size)
{
    return (uint32_t)chaos_read(opaque, port, size);
}

static void chaos_port_write(void *opaque, uint16_t port, uint32_t value, unsigned size)
{
    chaos_write(opaque, port, value, size);
}

/*
 * An interrupt controller that raises INTR at random (for the seeds that
 * enable it): external interrupts through every kind of gate, into every
 * mode, waking HLT.  The CPU asks it after device accesses and between
 * run slices (a timer); its answers come from device_rng, so they repeat.
 */
static bool chaos_intr_pending(void *opaque, int cpu_id)
{
    (void)opaque, (void)cpu_id;
    return interrupts_on && rnd(&device_rng) % 2 == 0;
}

static unsigned long interrupts_acked;

static int chaos_intr_ack(void *opaque, int cpu_id)
{
    (void)opaque, (void)cpu_id;
    interrupts_acked++;
    uint64_t v = rnd(&device_rng);
    /* A misprogrammed controller may deliver an exception's vector too. */
    return (int)(v % 10 == 0 ? (v >> 8) & 0xff : 0x20 + (v >> 8) % 0xe0);
}

static const TCGInterruptController chaos_intc = {
    .pending = chaos_intr_pending, .ack = chaos_intr_ack,
};

static const IoPortOps chaos_port_ops = { .read = chaos_port_read, .write = chaos_port_write,
                                           .max_access = 4 };

static void machine_init(void)
{
    if (fuzz_as)
        return;
    MemoryRegion *root = memory_region_new_container("root", UINT64_MAX);
    MemoryRegion *ram = memory_region_new_ram("ram", RAM_SIZE, NULL);
    MemoryRegion *rom = memory_region_new_rom("rom", ROM_SIZE, NULL);
    memory_region_add_subregion(root, 0, ram, 0);
    memory_region_add_subregion(root, MMIO_BASE,
                                memory_region_new_mmio("chaos", MMIO_SIZE, &chaos_mmio_ops, NULL), 0);
    memory_region_add_subregion(root, ROM_BASE, rom, 0);
    fuzz_as = address_space_new("tcg-fuzz", root);
    fuzz_ram = memory_region_host_ptr(ram);
    fuzz_rom = memory_region_host_ptr(rom);
    /* Ports 0x60-0x7f answer with random data; the rest are unassigned (all ones). */
    ioport_register(0x60, 0x20, &chaos_port_ops, NULL, "chaos", NULL);
    tcg_set_interrupt_controller(&chaos_intc);
}

/* ---- code soup ---- */

/* Instructions that change mode, privilege or control flow, whole or as a start. */
static const uint8_t soup_templates[][4] = {
    { 0xcd }, { 0xcc }, { 0xce }, { 0xf1 }, { 0xcf }, { 0x48, 0xcf }, { 0xcb }, { 0xca },
    { 0x0f, 0x05 }, { 0x0f, 0x07 }, { 0x48, 0x0f, 0x07 }, { 0x0f, 0x34 }, { 0x0f, 0x35 },
    { 0x0f, 0x22 }, { 0x0f, 0x20 }, { 0x0f, 0x23 }, { 0x0f, 0x21 }, { 0x0f, 0x30 },
    { 0x0f, 0x32 }, { 0x0f, 0x31 }, { 0x0f, 0x01, 0xf9 }, { 0x0f, 0x01, 0xf8 },
    { 0x0f, 0x01, 0xd0 }, { 0x0f, 0x01, 0xd1 }, { 0x0f, 0x00 }, { 0x0f, 0x01 }, { 0x0f, 0x02 },
    { 0x0f, 0x03 }, { 0x0f, 0x06 }, { 0x0f, 0xa2 }, { 0x0f, 0xae }, { 0x0f, 0xc7 },
    { 0x0f, 0x0b }, { 0x9c }, { 0x9d }, { 0xfa }, { 0xfb }, { 0x8e }, { 0x8c }, { 0x17 },
    { 0x1f }, { 0x0f, 0xa1 }, { 0x0f, 0xa9 }, { 0xc4 }, { 0xc5 }, { 0x0f, 0xb2 },
    { 0xf3, 0xa4 }, { 0xf3, 0xa5 }, { 0xf3, 0xaa }, { 0xf3, 0x48, 0xab }, { 0xf3, 0xa6 },
    { 0xf2, 0xae }, { 0xf3, 0x6c }, { 0xf3, 0x6f }, { 0xe4 }, { 0xe7 }, { 0xec }, { 0xef },
    { 0xff }, { 0xe8 }, { 0xe9 }, { 0xeb }, { 0xe2 }, { 0xe3 }, { 0xc2 }, { 0xc3 },
    { 0x62 }, { 0x63 }, { 0xd4 }, { 0xd5 }, { 0x27 }, { 0x37 }, { 0xf6 }, { 0xf7 },
    { 0xd9 }, { 0xdb }, { 0xdd }, { 0xdf }, { 0xde }, { 0x9b }, { 0x0f, 0x77 },
    { 0x66, 0x0f }, { 0xf3, 0x0f }, { 0xf2, 0x0f }, { 0x0f, 0x38 }, { 0x66, 0x0f, 0x38 },
    { 0x66, 0x0f, 0x3a }, { 0x0f, 0xc7, 0x08 }, { 0xf0, 0x0f, 0xb1 }, { 0xf0, 0x01 },
    { 0x0f, 0xa3 }, { 0x0f, 0xab }, { 0x0f, 0xbc }, { 0xf3, 0x0f, 0xb8 }, { 0x0f, 0x38, 0xf0 },
};

static const uint8_t soup_prefixes[] = {
    0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65,
};

/* Selectors worth loading: the table's real entries with every RPL, plus junk. */
static uint16_t soup_selector(Rng *r)
{
    if (chance(r, 10))
        return (uint16_t)rnd(r);
    return (uint16_t)((below(r, GDT_ENTRIES) << 3) | below(r, 8));
}

static void soup(Rng *r, uint8_t *p, size_t n, bool rex_ok)
{
    size_t i = 0;
#define EMIT(b) (i < n ? (void)(p[i++] = (uint8_t)(b)) : (void)0)
    while (i < n) {
        unsigned kind = below(r, 16);
        if (kind < 3) {                         /* raw bytes */
            EMIT(rnd(r));
            continue;
        }
        if (kind == 3) {                        /* far transfer or segment load with a useful selector */
            static const uint8_t farops[] = { 0xea, 0x9a };
            uint16_t sel = soup_selector(r);
            if (chance(r, 50)) {
                EMIT(farops[below(r, 2)]);
                uint32_t off = CODE + below(r, 0x10000);
                for (unsigned b = 0; b < 4; b++)
                    EMIT(off >> (8 * b));
            } else {
                EMIT(0x66), EMIT(0xb8);         /* mov ax, sel; mov sreg, ax */
                EMIT(sel), EMIT(sel >> 8);
                EMIT(0x8e), EMIT(0xc0 | (below(r, 6) << 3));
                continue;
            }
            EMIT(sel), EMIT(sel >> 8);
            continue;
        }
        while (chance(r, 25))
            EMIT(soup_prefixes[below(r, sizeof(soup_prefixes))]);
        if (rex_ok && chance(r, 30))
            EMIT(0x40 | below(r, 16));
        if (kind < 9) {
            const uint8_t *t = soup_templates[below(r, ARRAY_LEN(soup_templates))];
            for (unsigned b = 0; b < 4 && (b == 0 || t[b]); b++)
                EMIT(t[b]);
        } else if (kind < 13) {
            EMIT(rnd(r));                       /* any one-byte opcode */
        } else {
            EMIT(0x0f);
            EMIT(rnd(r));
        }
        /* ModRM: registers or memory through registers that point at RAM. */
        unsigned modrm = below(r, 256);
        if (chance(r, 50))
            modrm &= ~0x07u, modrm |= below(r, 8) == 0 ? 4 : 3 + below(r, 4);
        EMIT(modrm);
        for (unsigned tail = below(r, 6); tail; tail--)
            EMIT(chance(r, 50) ? below(r, 16) : rnd(r));
    }
#undef EMIT
}

/* ---- descriptors ---- */

static uint64_t desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
    return (limit & 0xffffull) | ((uint64_t)(base & 0xffffff) << 16) |
           ((uint64_t)(access & 0xff) << 40) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
           ((uint64_t)(flags & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

static uint64_t gate(uint16_t sel, uint32_t off, unsigned type, unsigned dpl, bool present)
{
    return (off & 0xffffull) | ((uint64_t)sel << 16) | ((uint64_t)type << 40) |
           ((uint64_t)dpl << 45) | ((uint64_t)present << 47) | ((uint64_t)(off >> 16) << 48);
}

/* The hidden part a selector load of descriptor d would give. */
static X86Segment seg_of(uint16_t sel, uint64_t d)
{
    X86Segment s;
    memset(&s, 0, sizeof(s));
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
    s.selector = sel;
    s.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000u);
    s.g = (d >> 55) & 1;
    s.limit = s.g ? (limit << 12) | 0xfff : limit;
    s.type = (d >> 40) & 0xf;
    s.s = (d >> 44) & 1;
    s.dpl = (d >> 45) & 3;
    s.present = (d >> 47) & 1;
    s.avl = (d >> 52) & 1;
    s.l = (d >> 53) & 1;
    s.db = (d >> 54) & 1;
    return s;
}

static uint64_t gdt_entry(uint16_t sel) { return ld64_le(fuzz_ram + GDT + (sel & ~7u)); }
static void gdt_set(uint16_t sel, uint64_t d) { st64_le(fuzz_ram + GDT + (sel & ~7u), d); }

static void write_gdt(Rng *r, bool long_mode)
{
    gdt_set(SEL_CODE32, desc(0, 0xfffff, 0x9b, 0xc));
    gdt_set(SEL_DATA, desc(0, 0xfffff, 0x93, 0xc));
    gdt_set(SEL_CODE64, desc(0, 0xfffff, 0x9b, 0xa));
    gdt_set(SEL_CODE16, desc(0, 0xffff, 0x9b, 0));
    gdt_set(SEL_UCODE32, desc(0, 0xfffff, 0xfb, 0xc));
    gdt_set(SEL_UDATA, desc(0, 0xfffff, 0xf3, 0xc));
    gdt_set(SEL_TSS_A, desc(TSS_A, TSS_A_LIMIT, 0x8b, 0));      /* busy: it is TR */
    gdt_set(SEL_UCODE64, desc(0, 0xfffff, 0xfb, 0xa));
    gdt_set(SEL_DATA16, desc(0, 0xffff, 0x93, 0));
    gdt_set(SEL_LDT, desc(LDT, 0xff, 0x82, 0));
    /* A call gate to ring-0 code, callable from ring 3 (32-bit; 64-bit in long mode). */
    gdt_set(SEL_CALLGATE, gate(long_mode ? SEL_CODE64 : SEL_CODE32, CODE + below(r, 0x10000),
                               0xc, 3, true));
    gdt_set(SEL_TSS_B, desc(TSS_B, 0x67, 0x89, 0));
    gdt_set(SEL_TASKGATE, gate(SEL_TSS_B, 0, 0x5, 3, true));
    /* Upper halves of the 16-byte system descriptors (zero: base bits 63:32). */
    gdt_set(SEL_TSS_A + 8, 0);
    gdt_set(SEL_LDT + 8, 0);
    gdt_set(SEL_CALLGATE + 8, 0);
    gdt_set(SEL_TSS_B + 8, 0);
    /* The rest: mutants of the real entries (type, DPL, P, L/D, limit, base bits flipped). */
    static const uint16_t originals[] = {
        SEL_CODE32, SEL_DATA, SEL_CODE64, SEL_CODE16, SEL_UCODE32, SEL_UDATA, SEL_UCODE64,
        SEL_DATA16, SEL_LDT, SEL_CALLGATE, SEL_TSS_B, SEL_TASKGATE,
    };
    for (unsigned sel = SEL_FIRST_MUTANT; sel < GDT_ENTRIES * 8; sel += 8) {
        uint64_t d = gdt_entry(originals[below(r, ARRAY_LEN(originals))]);
        for (unsigned flips = 1 + below(r, 3); flips; flips--)
            d ^= 1ull << (chance(r, 70) ? 40 + below(r, 16) : below(r, 64));
        gdt_set((uint16_t)sel, d);
    }
    /* LDT: mutants too, so LLDT and TI=1 selectors lead somewhere. */
    for (unsigned i = 0; i < 0x100; i += 8) {
        uint64_t d = gdt_entry(originals[below(r, 8)]) ^ (1ull << (40 + below(r, 16)));
        st64_le(fuzz_ram + LDT + i, d);
    }
}

/*
 * Recovery stubs at the end of the handler area: a fresh stack pointer and a
 * jump to somewhere else in the soup.  Handlers that are soup themselves
 * mostly fault again until the CPU shuts down; gates to these keep a run
 * going through many exceptions.  Code size: 1 = 16-bit, 2 = 32, 3 = 64.
 */
#define STUB_AREA  0x1800u
#define STUB_SIZE  16u
#define STUB_COUNT (0x800u / STUB_SIZE)

static uint64_t stack_ptr(Rng *r);

static void write_recovery_stubs(Rng *r, unsigned code_size, bool real_mode)
{
    for (unsigned k = 0; k < STUB_COUNT; k++) {
        uint32_t at = HANDLERS + STUB_AREA + k * STUB_SIZE, p = at;
        uint64_t sp = stack_ptr(r);
        if (code_size == 3)
            fuzz_ram[p++] = 0x48;                       /* mov rsp, imm64 */
        fuzz_ram[p++] = 0xbc;                           /* mov (e)sp, imm */
        unsigned imm = code_size == 1 ? 2 : code_size == 2 ? 4 : 8;
        for (unsigned b = 0; b < imm; b++)
            fuzz_ram[p++] = (uint8_t)(sp >> (8 * b));
        /*
         * jmp rel: 16-bit code stays in its 64 KiB segment: real mode's
         * handler segment 0x800 reaches the first half of the code area,
         * the base-0 16-bit segment only the handler soup.
         */
        uint32_t target = code_size > 1 ? CODE + below(r, 0x10000) :
                          real_mode ? CODE + below(r, 0x8000) : HANDLERS + below(r, STUB_AREA);
        unsigned rel = code_size == 1 ? 2 : 4;
        uint32_t next = p + 1 + rel;
        fuzz_ram[p++] = 0xe9;
        for (unsigned b = 0; b < rel; b++)
            fuzz_ram[p++] = (uint8_t)((target - next) >> (8 * b));
    }
}

static uint32_t handler_offset(Rng *r)
{
    if (chance(r, 50))
        return STUB_AREA + below(r, STUB_COUNT) * STUB_SIZE;
    return below(r, STUB_AREA);
}

static void write_idt(Rng *r, FuzzMode mode)
{
    if (mode == MODE_REAL) {
        /* IVT: far pointers into the handler area (segment 0x800) or anywhere. */
        for (unsigned v = 0; v < 256; v++) {
            uint16_t off = (uint16_t)handler_offset(r), seg = HANDLERS >> 4;
            if (chance(r, 5))
                off = (uint16_t)rnd(r), seg = (uint16_t)rnd(r);
            st16_le(fuzz_ram + IVT + 4 * v, off);
            st16_le(fuzz_ram + IVT + 4 * v + 2, seg);
        }
        return;
    }
    bool lm = mode == MODE_LONG64 || mode == MODE_COMPAT || mode == MODE_USER64;
    uint16_t cs = lm ? SEL_CODE64 : mode == MODE_PM16 ? SEL_CODE16 : SEL_CODE32;
    for (unsigned v = 0; v < 256; v++) {
        uint32_t off = HANDLERS + handler_offset(r);
        unsigned type = chance(r, 70) ? 0xe : 0xf;          /* interrupt or trap gate */
        if (mode == MODE_PM16 && chance(r, 50))
            type &= 7;                                      /* 16-bit gates */
        uint16_t sel = chance(r, 90) ? cs : soup_selector(r);
        if (!lm && chance(r, 5))
            type = 5, sel = SEL_TSS_B;                      /* task gate */
        uint64_t g = gate(sel, off, type, chance(r, 30) ? 3 : 0, !chance(r, 3));
        if (lm) {
            g |= (uint64_t)(chance(r, 20) ? below(r, 8) : 0) << 32;   /* IST */
            st64_le(fuzz_ram + IDT + 16 * v, g);
            st64_le(fuzz_ram + IDT + 16 * v + 8, chance(r, 2) ? rnd(r) : 0);
        } else {
            st64_le(fuzz_ram + IDT + 8 * v, g);
        }
    }
}

/* A stack pointer somewhere in the stack area (sometimes odd, sometimes anywhere). */
static uint64_t stack_ptr(Rng *r)
{
    if (chance(r, 3))
        return rnd(r);
    return STACK_TOP - 0x100 - below(r, 0x8000) * 2;
}

static void write_tss(Rng *r, FuzzMode mode, uint32_t cr3)
{
    uint8_t *a = fuzz_ram + TSS_A, *b = fuzz_ram + TSS_B;
    if (mode == MODE_LONG64 || mode == MODE_COMPAT || mode == MODE_USER64) {
        st64_le(a + 4, stack_ptr(r));                   /* RSP0-2 */
        st64_le(a + 12, stack_ptr(r));
        st64_le(a + 20, stack_ptr(r));
        for (unsigned i = 0; i < 7; i++)                /* IST1-7 */
            st64_le(a + 0x24 + 8 * i, stack_ptr(r));
        st16_le(a + 0x66, 0x68);
    } else {
        st32_le(a + 4, (uint32_t)stack_ptr(r));         /* ESP0, SS0 */
        st32_le(a + 8, mode == MODE_PM16 ? SEL_DATA16 : SEL_DATA);
        st32_le(a + 12, (uint32_t)stack_ptr(r));
        st32_le(a + 16, soup_selector(r));
        st32_le(a + 0x1c, cr3);
        st16_le(a + 0x66, 0x68);
        /* TSS_B: a runnable 32-bit task in ring 0 or 3 (or v8086), for task gates. */
        bool user = chance(r, 30), v86 = chance(r, 10);
        uint32_t eflags = 2 | (uint32_t)(rnd(r) & 0x0ed5) | (v86 ? 1u << 17 : 0);
        st32_le(b + 0x1c, cr3);
        st32_le(b + 0x20, v86 ? below(r, 0x10000) : CODE + below(r, 0x10000));
        st32_le(b + 0x24, eflags);
        for (unsigned i = 0; i < 8; i++)
            st32_le(b + 0x28 + 4 * i, chance(r, 50) ? DATA + below(r, 0x10000) : (uint32_t)rnd(r));
        st32_le(b + 0x38, (uint32_t)stack_ptr(r));     /* ESP */
        uint16_t cs = v86 ? CODE >> 4 : user ? SEL_UCODE32 | 3 : SEL_CODE32;
        uint16_t ds = v86 ? DATA >> 4 : user ? SEL_UDATA | 3 : SEL_DATA;
        static const unsigned seg_off[6] = { 0x48, 0x4c, 0x50, 0x54, 0x58, 0x5c };
        for (unsigned i = 0; i < 6; i++)
            st32_le(b + seg_off[i], i == 1 ? cs : chance(r, 10) ? soup_selector(r) : ds);
        st32_le(b + 0x60, chance(r, 50) ? SEL_LDT : 0);
    }
    /* I/O bitmap: random, so IN/OUT at CPL > IOPL and in v8086 mode go both ways. */
    for (unsigned i = 0x68; i < TSS_A_LIMIT; i++)
        a[i] = (uint8_t)rnd(r);
    a[TSS_A_LIMIT] = 0xff;
}

/* ---- page tables: identity 0-8 MiB, a few entries perturbed ---- */

static uint64_t pte_flags(Rng *r, bool user, bool nx_ok)
{
    uint64_t f = 0x3 | (user ? 4 : 0);
    if (chance(r, 3))
        f ^= 1ull << below(r, 3);           /* not present / read-only / user bit flipped */
    if (nx_ok && chance(r, 2))
        f |= 1ull << 63;
    if (chance(r, 5))
        f |= 0x100;                         /* global */
    return f;
}

/* Returns CR3. */
static uint32_t write_page_tables(Rng *r, FuzzMode mode, bool user)
{
    uint8_t *t = fuzz_ram + PAGING;
    memset(t, 0, 8 * 4096);
    if (mode == MODE_PAGING32) {
        /* PD at PAGING; two page tables, or 4 MiB pages when PSE is on (chosen by caller). */
        for (unsigned i = 0; i < 2; i++) {
            uint32_t pt = PAGING + 0x1000 * (1 + i);
            if (chance(r, 30))
                st32_le(t + 4 * i, (uint32_t)((i << 22) | 0x80 | pte_flags(r, user, false)));
            else
                st32_le(t + 4 * i, pt | (uint32_t)pte_flags(r, user, false));
            for (unsigned j = 0; j < 1024; j++)
                st32_le(fuzz_ram + pt + 4 * j, (uint32_t)(((i << 22) | (j << 12)) |
                                                          pte_flags(r, user, false)));
        }
        return PAGING;
    }
    bool pae = mode == MODE_PAE;
    uint32_t pd = pae ? PAGING + 0x1000 : PAGING + 0x2000;
    if (pae) {
        st64_le(t, pd | 1);                                     /* PDPTE 0 */
    } else {
        st64_le(t, (PAGING + 0x1000) | 0x3 | (user ? 4 : 0));   /* PML4E 0 */
        st64_le(t + 0x1000, pd | 0x3 | (user ? 4 : 0));        /* PDPTE 0 */
    }
    for (unsigned i = 0; i < 4; i++) {
        uint32_t pt = PAGING + 0x1000 * (4 + i);
        if (chance(r, 30))
            st64_le(fuzz_ram + pd + 8 * i, ((uint64_t)i << 21) | 0x80 | pte_flags(r, user, true));
        else
            st64_le(fuzz_ram + pd + 8 * i, pt | 0x3 | (user ? 4 : 0));
        for (unsigned j = 0; j < 512; j++)
            st64_le(fuzz_ram + pt + 8 * j, (((uint64_t)i << 21) | (j << 12)) |
                                           pte_flags(r, user, true));
    }
    return PAGING;
}

/* ---- one run ---- */

static uint64_t reg_value(Rng *r)
{
    switch (below(r, 4)) {
    case 0: return DATA + below(r, 0x10000);
    case 1: return below(r, 0x100);
    case 2: return below(r, MAPPED_TOP);
    default: return rnd(r);
    }
}

static bool mode_is_long(FuzzMode mode)
{
    return mode == MODE_LONG64 || mode == MODE_COMPAT || mode == MODE_USER64;
}

static bool mode_has_paging(FuzzMode mode)
{
    return mode == MODE_PAGING32 || mode == MODE_PAE || mode == MODE_USER32 || mode_is_long(mode);
}

/* The machine's memory for one seed; returns CR3 (0 without paging). */
static uint32_t setup_memory(Rng *r, FuzzMode mode)
{
    bool lm = mode_is_long(mode);
    bool user = mode == MODE_USER32 || mode == MODE_USER64;

    memset(fuzz_ram, 0, RAM_SIZE);
    write_gdt(r, lm);
    write_idt(r, mode);
    /* user32 runs under PAE paging; the long modes share one set of 4-level tables. */
    uint32_t cr3 = mode_has_paging(mode) ?
                   write_page_tables(r, lm ? MODE_LONG64 : mode == MODE_USER32 ? MODE_PAE : mode,
                                     user) : 0;
    write_tss(r, lm ? MODE_LONG64 : mode, cr3);
    soup(r, fuzz_ram + CODE, 0x10000, lm);
    soup(r, fuzz_ram + HANDLERS, 0x2000, lm);
    write_recovery_stubs(r, lm ? 3 : mode == MODE_REAL || mode == MODE_PM16 ? 1 : 2,
                         mode == MODE_REAL);
    soup(r, fuzz_rom, ROM_SIZE, lm);
    for (unsigned i = 0; i < 0x10000; i++)
        fuzz_ram[DATA + i] = (uint8_t)rnd(r);
    return cr3;
}

/* One CPU's registers in that machine (each CPU of a run gets its own). */
static void setup_cpu(TCGCPU *cpu, Rng *r, FuzzMode mode, uint32_t cr3)
{
    bool lm = mode_is_long(mode);
    X86CPUState s;

    memset(&s, 0, sizeof(s));
    for (unsigned i = 0; i < 16; i++)
        s.regs[i] = reg_value(r);
    s.regs[R_ESP] = stack_ptr(r);
    /* Arithmetic flags, DF, IF, IOPL and AC random; TF sometimes (single-step traps). */
    s.rflags = 2 | (rnd(r) & 0x43ed5) | (chance(r, 5) ? 0x100 : 0);
    s.rip = CODE + below(r, 0x100);
    s.gdt.base = GDT;
    s.gdt.limit = GDT_ENTRIES * 8 - 1;
    s.idt.base = mode == MODE_REAL ? IVT : IDT;
    s.idt.limit = mode == MODE_REAL ? 0x3ff : lm ? 0xfff : 0x7ff;
    s.ldt = seg_of(SEL_LDT, gdt_entry(SEL_LDT));
    s.tr = seg_of(SEL_TSS_A, gdt_entry(SEL_TSS_A));
    s.cr0 = X86_CR0_ET | X86_CR0_NE | (chance(r, 20) ? X86_CR0_MP : 0) |
            (chance(r, 5) ? X86_CR0_TS : 0) | (chance(r, 5) ? X86_CR0_EM : 0) |
            (chance(r, 20) ? X86_CR0_AM : 0) | (chance(r, 50) ? X86_CR0_WP : 0);
    s.cr4 = (chance(r, 70) ? 0x600 : 0) |              /* OSFXSR, OSXMMEXCPT */
            (chance(r, 30) ? 0x80 : 0) |               /* PGE */
            (chance(r, 20) ? 0x8 : 0) |                /* DE */
            (chance(r, 10) ? 0x4 : 0) |                /* TSD */
            (chance(r, 30) ? 0x3 : 0);                 /* VME, PVI */
    s.xcr0 = 1;
    s.dr[6] = 0xffff0ff0;
    s.dr[7] = 0x400;
    if (chance(r, 10)) {
        /* A hardware breakpoint somewhere in the code or data. */
        s.dr[0] = chance(r, 50) ? CODE + below(r, 0x1000) : DATA + below(r, 0x100);
        s.dr[7] |= 0x3 | ((uint64_t)below(r, 16) << 16);
    }

    uint16_t cs, ds;
    switch (mode) {
    case MODE_REAL:
    case MODE_V86:
        s.rip = below(r, 0x100);
        for (int i = 0; i < SEG__COUNT; i++) {
            uint16_t sel = i == SEG_CS ? CODE >> 4 : i == SEG_SS ? (STACK_TOP - 0x10000) >> 4 :
                           DATA >> 4;
            s.seg[i] = seg_of(sel, desc((uint32_t)sel << 4, 0xffff, 0x93, 0));
            if (i == SEG_CS)
                s.seg[i].type = 0xb;
            if (mode == MODE_V86)
                s.seg[i].dpl = 3;
        }
        s.regs[R_ESP] &= 0xfffe;
        if (mode == MODE_V86) {
            s.cr0 |= X86_CR0_PE;
            s.rflags |= 1u << 17;
        }
        break;
    default:
        cs = lm ? SEL_CODE64 : mode == MODE_PM16 ? SEL_CODE16 : SEL_CODE32;
        ds = mode == MODE_PM16 ? SEL_DATA16 : SEL_DATA;
        if (mode == MODE_COMPAT)
            cs = SEL_CODE32;
        if (mode == MODE_USER32)
            cs = SEL_UCODE32 | 3, ds = SEL_UDATA | 3;
        if (mode == MODE_USER64)
            cs = SEL_UCODE64 | 3, ds = SEL_UDATA | 3;
        s.seg[SEG_CS] = seg_of(cs, gdt_entry(cs));
        for (int i = 0; i < SEG__COUNT; i++)
            if (i != SEG_CS)
                s.seg[i] = seg_of(ds, gdt_entry(ds));
        s.cr0 |= X86_CR0_PE;
        if (!lm && mode != MODE_USER32)
            s.regs[R_ESP] &= 0xffffffffu;
        break;
    }
    if (mode_has_paging(mode)) {
        s.cr0 |= X86_CR0_PG;
        s.cr3 = cr3;
        if (mode == MODE_PAGING32)
            s.cr4 |= 0x10;                              /* PSE: the 4 MiB entries */
        else
            s.cr4 |= 0x20;                              /* PAE */
        if (lm)
            s.efer = (1u << 8) | (1u << 10) | (1u << 0) | (1u << 11);   /* LME LMA SCE NXE */
        else if (mode == MODE_PAE || mode == MODE_USER32)
            s.efer = 1u << 11;
    }

    cpu_from_x86_state(cpu, &s);
    cpu->tsc_counts_insns = true;
    cpu->tsc_offset = 0;
    /* SYSCALL/SYSENTER land in ring-0 code; SYSRET/SYSEXIT go back to ring 3. */
    cpu->star = ((uint64_t)(SEL_UCODE32 - 16 + 3) << 48) | ((uint64_t)SEL_CODE64 << 32);
    if (mode != MODE_LONG64 && mode != MODE_USER64)
        cpu->star = ((uint64_t)(SEL_UCODE32 - 16 + 3) << 48) | ((uint64_t)SEL_CODE32 << 32) |
                    (CODE + below(r, 0x10000));
    cpu->lstar = CODE + below(r, 0x10000);
    cpu->cstar = CODE + below(r, 0x10000);
    cpu->fmask = rnd(r) & 0x47fd7;
    cpu->sysenter_cs = SEL_CODE32;
    cpu->sysenter_eip = CODE + below(r, 0x10000);
    cpu->sysenter_esp = stack_ptr(r);
}

/* What a run leaves: each CPU's state and all of RAM. */
typedef struct CPUOutcome {
    X86CPUState s;
    F80 fpr[8];
    XMMReg xmm[16];
    uint32_t mxcsr;
    uint16_t fcw, fsw;
    uint64_t icount;
    bool halted, shutdown;
} CPUOutcome;

#define MAX_CPUS 2

typedef struct Outcome {
    CPUOutcome cpu[MAX_CPUS];
    unsigned n_cpus;
    unsigned calls;                 /* tcg_cpu_exec calls */
    uint8_t *ram;
} Outcome;

#define RUN_SLICES 24
#define RUN_BLOCKS 256

static bool cpu_halted_for_good(TCGCPU *cpu)
{
    /* A triple fault, or HLT that no interrupt can end. */
    return cpu->shutdown || (cpu->halted && (!interrupts_on || !(cpu_get_eflags(cpu) & FL_IF)));
}

static void run_seed(FuzzMode mode, uint64_t seed, Outcome *o)
{
    Rng r = { seed * 0x100000001b3ull + mode };
    TCGCPU *cpus[MAX_CPUS];
    device_rng.s = seed ^ 0x5eed;
    tb_flush_all();
    tb_reap();
    uint32_t cr3 = setup_memory(&r, mode);
    /*
     * A third of the seeds run two CPUs in turn on the same memory, in
     * shorter slices: one rewrites code the other has translated and
     * linked, or the tables it walks.
     */
    unsigned n_cpus = chance(&r, 33) ? 2 : 1;
    long slice_blocks = n_cpus > 1 ? RUN_BLOCKS / 4 : RUN_BLOCKS;
    for (unsigned i = 0; i < n_cpus; i++) {
        cpus[i] = tcg_cpu_new(fuzz_as, (int)i);
        setup_cpu(cpus[i], &r, mode, cr3);
    }
    interrupts_on = chance(&r, 50);
    unsigned calls = 0;
    for (unsigned slice = 0; slice < RUN_SLICES * n_cpus; slice++) {
        TCGCPU *cpu = cpus[slice % n_cpus];
        if (cpu_halted_for_good(cpu))
            continue;
        if (interrupts_on && slice >= n_cpus && slice % n_cpus == 0)
            tcg_raise_interrupt_check();        /* a timer tick */
        /*
         * A slice ends in its budget or a halt; a kick (the interrupt
         * check's, from a device access or the timer tick) returns early
         * and is re-entered, as the vCPU thread does, a bounded number of times.
         */
        for (unsigned entry = 0; entry < 4; entry++) {
            calls++;
            if (tcg_cpu_exec(cpu, slice_blocks) != TCG_RUN_EXIT)
                break;
        }
    }
    memset(o, 0, sizeof(*o));
    o->n_cpus = n_cpus;
    o->calls = calls;
    for (unsigned i = 0; i < n_cpus; i++) {
        TCGCPU *cpu = cpus[i];
        CPUOutcome *c = &o->cpu[i];
        cpu_to_x86_state(cpu, &c->s);
        memcpy(c->fpr, cpu->fpr, sizeof(c->fpr));
        memcpy(c->xmm, cpu->xmm, sizeof(c->xmm));
        c->mxcsr = cpu->mxcsr;
        c->fcw = cpu->fcw;
        c->fsw = cpu->fsw;
        c->icount = cpu->icount;
        c->halted = cpu->halted;
        c->shutdown = cpu->shutdown;
        tcg_cpu_free(cpu);
    }
    o->ram = g_memdup2(fuzz_ram, RAM_SIZE);
}

static bool seg_same(const X86Segment *a, const X86Segment *b)
{
    return a->selector == b->selector && a->base == b->base && a->limit == b->limit &&
           a->type == b->type && a->s == b->s && a->dpl == b->dpl && a->present == b->present &&
           a->l == b->l && a->db == b->db && a->g == b->g && a->unusable == b->unusable;
}

/* The first difference between two runs of one CPU, or NULL. */
static const char *cpu_outcome_diff(const CPUOutcome *a, const CPUOutcome *b, char *buf, size_t len)
{
    for (unsigned i = 0; i < 16; i++)
        if (a->s.regs[i] != b->s.regs[i])
            return snprintf(buf, len, "reg %u: %#" PRIx64 " vs %#" PRIx64, i, a->s.regs[i],
                            b->s.regs[i]), buf;
    if (a->s.rip != b->s.rip || a->s.rflags != b->s.rflags)
        return snprintf(buf, len, "rip/rflags %#" PRIx64 "/%#" PRIx64 " vs %#" PRIx64 "/%#" PRIx64,
                        a->s.rip, a->s.rflags, b->s.rip, b->s.rflags), buf;
    for (int i = 0; i < SEG__COUNT; i++)
        if (!seg_same(&a->s.seg[i], &b->s.seg[i]))
            return snprintf(buf, len, "segment %d", i), buf;
    if (!seg_same(&a->s.ldt, &b->s.ldt) || !seg_same(&a->s.tr, &b->s.tr))
        return "LDTR/TR";
    if (a->s.gdt.base != b->s.gdt.base || a->s.gdt.limit != b->s.gdt.limit ||
        a->s.idt.base != b->s.idt.base || a->s.idt.limit != b->s.idt.limit)
        return "GDTR/IDTR";
    if (a->s.cr0 != b->s.cr0 || a->s.cr2 != b->s.cr2 || a->s.cr3 != b->s.cr3 ||
        a->s.cr4 != b->s.cr4 || a->s.efer != b->s.efer)
        return "CR0/CR2/CR3/CR4/EFER";
    for (unsigned i = 0; i < 8; i++)
        if (a->s.dr[i] != b->s.dr[i])
            return "debug registers";
    if (memcmp(a->fpr, b->fpr, sizeof(a->fpr)) || a->fcw != b->fcw || a->fsw != b->fsw)
        return "x87 state";
    if (memcmp(a->xmm, b->xmm, sizeof(a->xmm)) || a->mxcsr != b->mxcsr)
        return "SSE state";
    if (a->icount != b->icount || a->halted != b->halted || a->shutdown != b->shutdown)
        return snprintf(buf, len, "icount %" PRIu64 " vs %" PRIu64 ", halted %d/%d",
                        a->icount, b->icount, a->halted, b->halted), buf;
    return NULL;
}

static const char *outcome_diff(const Outcome *a, const Outcome *b, char *buf, size_t len)
{
    char sub[120];
    for (unsigned i = 0; i < a->n_cpus; i++) {
        const char *d = cpu_outcome_diff(&a->cpu[i], &b->cpu[i], sub, sizeof(sub));
        if (d)
            return snprintf(buf, len, "CPU %u: %s", i, d), buf;
    }
    if (a->calls != b->calls)
        return snprintf(buf, len, "run slices entered %u vs %u", a->calls, b->calls), buf;
    for (uint32_t p = 0; p < RAM_SIZE; p++)
        if (a->ram[p] != b->ram[p])
            return snprintf(buf, len, "RAM at %#x: %02x vs %02x", p, a->ram[p], b->ram[p]), buf;
    return NULL;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void fuzz_mode(FuzzMode mode)
{
    machine_init();
    uint64_t first = 1, count = env_u64("KESTREL_TCG_FUZZ_SEEDS", 150);
    if (getenv("KESTREL_TCG_FUZZ_SEED"))
        first = env_u64("KESTREL_TCG_FUZZ_SEED", 1), count = 1;
    bool verbose = getenv("KESTREL_TCG_FUZZ_VERBOSE");   /* each seed on stderr: which one hung */
    uint64_t insns = 0, halted = 0, smp = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        Outcome a, b;
        char buf[160];
        if (verbose) {
            fprintf(stderr, "# %s seed %" PRIu64 "\n", mode_names[mode], seed);
            fflush(stderr);
        }
        run_seed(mode, seed, &a);
        run_seed(mode, seed, &b);
        const char *d = outcome_diff(&a, &b, buf, sizeof(buf));
        CHECK_MSG(!d, "mode %s seed %" PRIu64 ": two runs differ (%s); repeat with "
                  "KESTREL_TCG_FUZZ_SEED=%" PRIu64 " build/tests/unit/test-tcg-fuzz test_fuzz_%s",
                  mode_names[mode], seed, d, seed, mode_names[mode]);
        for (unsigned i = 0; i < a.n_cpus; i++) {
            insns += a.cpu[i].icount;
            halted += a.cpu[i].halted;
        }
        smp += a.n_cpus > 1;
        g_free(a.ram);
        g_free(b.ram);
    }
    /* The soup must reach code: a generator that only ever faulted at once would test nothing
     * (one seed alone may well fault at once). */
    CHECK_MSG(count < 20 || insns >= count * 20, "mode %s: only %" PRIu64 " instructions in %" PRIu64 " seeds",
              mode_names[mode], insns, count);
    printf("# %s: %" PRIu64 " seeds (%" PRIu64 " with two CPUs), %" PRIu64 " guest instructions, "
           "%" PRIu64 " CPUs halted, %lu interrupts\n", mode_names[mode], count, smp, insns, halted,
           interrupts_acked / 2);
}

static void test_fuzz_real(void) { fuzz_mode(MODE_REAL); }
static void test_fuzz_pm16(void) { fuzz_mode(MODE_PM16); }
static void test_fuzz_pm32(void) { fuzz_mode(MODE_PM32); }
static void test_fuzz_paging32(void) { fuzz_mode(MODE_PAGING32); }
static void test_fuzz_pae(void) { fuzz_mode(MODE_PAE); }
static void test_fuzz_long64(void) { fuzz_mode(MODE_LONG64); }
static void test_fuzz_compat(void) { fuzz_mode(MODE_COMPAT); }
static void test_fuzz_v86(void) { fuzz_mode(MODE_V86); }
static void test_fuzz_user32(void) { fuzz_mode(MODE_USER32); }
static void test_fuzz_user64(void) { fuzz_mode(MODE_USER64); }

static const TestCase cases[] = {
    TEST_CASE(test_fuzz_real),
    TEST_CASE(test_fuzz_pm16),
    TEST_CASE(test_fuzz_pm32),
    TEST_CASE(test_fuzz_paging32),
    TEST_CASE(test_fuzz_pae),
    TEST_CASE(test_fuzz_long64),
    TEST_CASE(test_fuzz_compat),
    TEST_CASE(test_fuzz_v86),
    TEST_CASE(test_fuzz_user32),
    TEST_CASE(test_fuzz_user64),
    { 0 },
};

int main(int argc, char **argv)
{
    return test_main("tcg-fuzz", cases, argc, argv);
}

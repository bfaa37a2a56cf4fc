/*
 * sysdiff: Kestrel's system-level differential test kernel (Multiboot-1,
 * GNU as, 32-bit, no libc).  tests/boot/sysdiff.sh boots it under Debian's
 * QEMU (TCG) and under Kestrel and compares what it prints on COM1.
 *
 * It builds its own GDT, IDT and TSS, then runs a fixed list of numbered
 * cases (segmentation, paging, faults and exception classes, privilege
 * changes, call gates, v8086 mode and its extensions (VME, PVI), task
 * switches, debug registers and breakpoints, NMI from the local APIC).  Each case starts from the same clean state (protected mode,
 * paging off, CPL 0, flat segments), runs a short instruction sequence and
 * ends either by returning normally or by taking an exception/interrupt.
 * The case then prints one line:
 *
 *   CASE NN <what it does>: vec=VV err=EEEEEEEE eip=... cs=CCCC efl=...
 *       esp=... ss=SSSS hesp=... cr2=... ds=DDDD eax=... ebx=... ecx=... edx=...
 *       [v86 es=.. ds=.. fs=.. gs=..]
 *
 *   vec/err    the vector taken and the error code exactly as pushed
 *              (vectors without one print 00000000)
 *   eip/cs/efl the saved return frame; esp/ss the interrupted stack (from the
 *              frame after a privilege change or from v8086, else the stack
 *              pointer just above the frame)
 *   hesp       where the CPU put the saved EIP: checks which stack it
 *              switched to (TSS.ESP0) and how many words it pushed
 *   dr6        DR6, for #DB only (cleared before every case)
 *   cr2        CR2 (cleared before every case)
 *   ds         DS as the handler found it on entry
 *   eax..edx   the general registers at the exception (cases put the values
 *              they want compared there: PTE bits, values read, ...)
 *   (#DF prints "eip=(undefined) cs=(undefined)": the SDM leaves them so.)
 *
 * or, when no exception ended the case, "vec=none cr2=... eax=... ...".
 * Cases needing a CPUID feature (PSE, PAE, NX) print "skipped (no FEAT)"
 * when the CPU lacks it; the "FEAT" line lists what CPUID reported.
 * At the end it prints SYSDIFF-DONE and writes 0x20 to isa-debug-exit
 * (port 0xf4): QEMU/Kestrel exit status 0x41.
 *
 * Facts used: Intel SDM Vol. 3A ch. 3 (segmentation), 4 (paging, #PF error
 * code 4.7), 5 (protection, call gates 5.8), 6 (exceptions, error codes
 * 6.13, frames 6.12, NMI 6.7.1), 7 (task switching), 10 (local APIC: ICR
 * 10.6.1, LVT 10.5.1), 17 (debug registers, #DB conditions, RF), 20 (v8086
 * mode).
 */
    .set MB_MAGIC,      0x1BADB002
    .set MB_FLAGS,      3
    .set COM1,          0x3f8
    .set DEBUG_EXIT,    0xf4

    /* Selectors (GDT built below). */
    .set KCODE,   0x08
    .set KDATA,   0x10
    .set UCODE,   0x18
    .set UDATA,   0x20
    .set TSS1,    0x28
    .set TSS2,    0x30
    .set NPDATA,  0x38          /* writable data, not present */
    .set RODATA,  0x40          /* read-only data */
    .set XOCODE,  0x48          /* execute-only code */
    .set SMALL,   0x50          /* writable data, limit 0xfff */
    .set EXPDN,   0x58          /* expand-down writable data, limit 0xfff, B=1 */
    .set USMALL,  0x68          /* DPL3 writable data, limit 0xfff */
    .set CGATE0,  0x78          /* call gate DPL3 -> KCODE:cg_entry0, 0 params */
    .set CGATE2,  0x80          /* call gate DPL3 -> KCODE:cg_entry2, 2 params */
    .set CGATEK,  0x88          /* call gate DPL0 -> KCODE:cg_entry0 */
    .set NPCODE,  0x60          /* code, not present */
    .set LDTSEL,  0x70          /* LDT descriptor -> ldt_table (limit 0xf) */
    .set CONF,    0x90          /* conforming code, DPL0 */
    .set SMALLCODE, 0x98        /* code, limit 0xfff */
    .set FRESH,   0xa0          /* data, rewritten with A=0 by a case */
    .set CGATER,  0xa8          /* call gate DPL3 -> KCODE:cg_entry_ret, 2 params */
    .set GDT_END, 0xb0
    .set LOWCODE, 0x8000        /* position-independent stub copied below 64 KiB */

    /* Physical memory used for paging tests (all below 4 MiB: identity mapped). */
    .set PD32,    0x300000      /* 32-bit page directory */
    .set PT32A,   0x301000      /* identity 0-4 MiB, 4 KiB pages, user RW */
    .set PT32B,   0x302000      /* test area 0x400000-0x7fffff */
    .set PDPT,    0x303000      /* PAE */
    .set PDP,     0x304000
    .set PTPA0,   0x305000      /* identity 0-2 MiB */
    .set PTPA1,   0x306000      /* identity 2-4 MiB */
    .set PTPB,    0x307000      /* test area 0x400000-0x5fffff */
    .set FRAME_A, 0x380000
    .set FRAME_B, 0x381000
    .set FRAME_C, 0x382000
    .set TL,      0x400000      /* first test linear page */
    .set V86BASE, 0x7000        /* v8086 code, CS=0x0700 */

    .set F_PSE, 1
    .set F_PAE, 2
    .set F_NX,  4
    .set F_PGE, 8

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    call uart_init
    movl %cr0, %eax
    andl $~0xa0040008, %eax          /* PG, AM, WP, TS off */
    movl %eax, init_cr0
    call build_tables
    lgdt gdt_ptr
    lidt idt_ptr
    ljmp $KCODE, $1f
1:  movw $KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movw $TSS1, %ax
    ltr %ax
    call detect_features
    movl $s_start, %esi
    call puts

    movl $0, cur_case
next_case:
    movl cur_case, %ebp
    cmpl $NCASES, %ebp
    jae all_done
    movl $s_case, %esi
    call puts_nonl
    leal 1(%ebp), %eax
    call putdec2
    movb $' ', %al
    call putc
    movl case_table + 4(,%ebp,8), %esi
    call puts_nonl
    movb $':', %al
    call putc
    movb $' ', %al
    call putc
    movl case_table(,%ebp,8), %esi     /* fn */
    movzbl case_need(%ebp), %eax
    movl features, %ecx
    notl %ecx
    testl %ecx, %eax
    jz 2f
    movl $s_nofeat, %esi
    call puts
    incl cur_case
    jmp next_case
2:
    /* Shared scratch data back to its initial value, so that what one case
       wrote cannot change what a later case reads. */
    movl $0x5c5c5c5c, scratch
    movl $0x5d5d5d5d, scratch + 4
    /* Clean record, CR2 = 0, remember where to come back to. */
    movl $0xffff, rec_vec
    xorl %eax, %eax
    movl %eax, exc_count
    movl %eax, %cr2
    movl %eax, %dr6
    movl %esp, case_esp
    movl $case_resume, case_resume_ptr
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %edi, %edi
    xorl %ebp, %ebp
    call *%esi
    /* Returned normally: no exception. */
    movl %eax, rec_eax
    movl %ebx, rec_ebx
    movl %ecx, rec_ecx
    movl %edx, rec_edx
    movl %cr2, %eax
    movl %eax, rec_cr2
case_resume:
    cli
    movl case_esp, %esp
    /* Back to the clean state. */
    movl init_cr0, %eax
    movl %eax, %cr0                  /* paging off, WP/AM/TS off */
    xorl %eax, %eax
    movl %eax, %cr4
    movl %eax, %dr7                  /* no breakpoints (GD is 0: a #DB cleared it) */
    testl $F_NX, features
    jz 3f
    movl $0xc0000080, %ecx
    rdmsr
    andl $~0x800, %eax
    wrmsr
3:  lgdt gdt_ptr
    call build_idt                   /* cases patch IDT entries */
    lidt idt_ptr
    ljmp $KCODE, $4f
4:  movw $KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    xorl %eax, %eax
    lldt %ax
    pushl $2
    popfl
    call print_record
    incl cur_case
    jmp next_case

all_done:
    movl $s_done, %esi
    call puts
    movb $0x20, %al
    outb %al, $DEBUG_EXIT
    movb $0x01, %al                  /* only reached without isa-debug-exit */
    outb %al, $DEBUG_EXIT
9:  hlt
    jmp 9b

/* ---------------------------------------------------------------- setup */

build_tables:
    /* TSS1 / TSS2 descriptors (32-bit available TSS, limit 0x67). */
    movl $tss1, %eax
    movl $gdt + TSS1, %edi
    call set_tss_desc
    movl $tss2, %eax
    movl $gdt + TSS2, %edi
    call set_tss_desc
    movl $KDATA, tss1 + 8            /* SS0 */
    movl $kstack0_top, tss1 + 4      /* ESP0 */
    movw $0x87, gdt + TSS1           /* TSS1 limit 87h: room for the INT redirection bitmap */
    movw $0x88, tss1 + 102           /* I/O map base beyond the limit: no I/O bitmap; the
                                        INT redirection bitmap (CR4.VME) is 68h-87h */
    movl $KDATA, tss2 + 8
    movl $kstack0_top, tss2 + 4
    movw $0x68, tss2 + 102
    movl $task2_entry, tss2 + 32     /* EIP */
    movl $2, tss2 + 36               /* EFLAGS */
    movl $task2_stack_top, tss2 + 56 /* ESP */
    movl $KDATA, tss2 + 72           /* ES */
    movl $KCODE, tss2 + 76           /* CS */
    movl $KDATA, tss2 + 80           /* SS */
    movl $KDATA, tss2 + 84           /* DS */
    movl $KDATA, tss2 + 88           /* FS */
    movl $KDATA, tss2 + 92           /* GS */
    /* Call gates. */
    movl $cg_entry0, %eax
    movl $gdt + CGATE0, %edi
    movl $(0xec00 | 0), %edx         /* P, DPL3, 32-bit call gate, 0 params */
    call set_gate
    movl $cg_entry2, %eax
    movl $gdt + CGATE2, %edi
    movl $(0xec00 | 2), %edx
    call set_gate
    movl $cg_entry0, %eax
    movl $gdt + CGATEK, %edi
    movl $(0x8c00 | 0), %edx         /* DPL0 */
    call set_gate
    movl $cg_entry_ret, %eax
    movl $gdt + CGATER, %edi
    movl $(0xec00 | 2), %edx
    call set_gate
    /* LDT descriptor: base ldt_table, limit 0xf, type 2, present. */
    movl $ldt_table, %eax
    movw $0x0f, gdt + LDTSEL
    movw %ax, gdt + LDTSEL + 2
    shrl $16, %eax
    movb %al, gdt + LDTSEL + 4
    movb $0x82, gdt + LDTSEL + 5
    movb $0, gdt + LDTSEL + 6
    movb %ah, gdt + LDTSEL + 7
    /* Position-independent stub for the 16-bit gate, below 64 KiB. */
    movl $stub16, %esi
    movl $LOWCODE, %edi
    movl $stub16_end - stub16, %ecx
    cld
    rep movsb
build_idt:
    /* IDT: vectors 0-31 interrupt gates DPL0, 0x80 and 0x21 DPL3, 0x81 DPL0,
       0x82 not present. */
    xorl %ebx, %ebx
1:  movl stub_table(,%ebx,4), %eax
    leal idt(,%ebx,8), %edi
    movl $0x8e00, %edx
    call set_gate
    incl %ebx
    cmpl $32, %ebx
    jb 1b
    movl $stub_0x80, %eax
    movl $idt + 0x80 * 8, %edi
    movl $0xee00, %edx
    call set_gate
    movl $stub_0x21, %eax
    movl $idt + 0x21 * 8, %edi
    movl $0xee00, %edx
    call set_gate
    movl $stub_0x80, %eax
    movl $idt + 0x81 * 8, %edi
    movl $0x8e00, %edx
    call set_gate
    movl $stub_0x80, %eax
    movl $idt + 0x82 * 8, %edi
    movl $0x0e00, %edx               /* P = 0 */
    call set_gate
    movl $stub_0x80, %eax
    movl $idt + 0x83 * 8, %edi
    movl $0xec00, %edx               /* a call gate: wrong type for the IDT */
    call set_gate
    movl $stub_0x80, %eax
    movl $idt + 0x84 * 8, %edi
    movl $0x8e00, %edx
    call set_gate
    movw $KDATA, idt + 0x84 * 8 + 2  /* target selector is a data segment */
    movl $conf_handler, %eax
    movl $idt + 0x86 * 8, %edi
    movl $0xee00, %edx
    call set_gate
    movw $CONF, idt + 0x86 * 8 + 2   /* conforming DPL0 code: no stack switch */
    movl $LOWCODE, %eax
    movl $idt + 0x85 * 8, %edi
    movl $0x8600, %edx               /* 16-bit interrupt gate */
    call set_gate
    ret

/* set_tss_desc(eax = base, edi = descriptor) */
set_tss_desc:
    movw $0x67, (%edi)
    movw %ax, 2(%edi)
    shrl $16, %eax
    movb %al, 4(%edi)
    movb $0x89, 5(%edi)
    movb $0x00, 6(%edi)
    movb %ah, 7(%edi)
    ret

/* set_gate(eax = offset, edi = descriptor, dx = type/attr word); selector KCODE. */
set_gate:
    movw %ax, (%edi)
    movw $KCODE, 2(%edi)
    movw %dx, 4(%edi)
    shrl $16, %eax
    movw %ax, 6(%edi)
    ret

detect_features:
    xorl %edi, %edi
    movl $1, %eax
    cpuid
    testl $(1 << 3), %edx
    jz 1f
    orl $F_PSE, %edi
1:  testl $(1 << 6), %edx
    jz 2f
    orl $F_PAE, %edi
2:  testl $(1 << 13), %edx
    jz 21f
    orl $F_PGE, %edi
21: movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb 3f
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 20), %edx
    jz 3f
    orl $F_NX, %edi
3:  movl %edi, features
    movl $s_feat, %esi
    call puts_nonl
    movl $s_pse, %esi
    movl $F_PSE, %ebx
    call putflag
    movl $s_pae, %esi
    movl $F_PAE, %ebx
    call putflag
    movl $s_nx, %esi
    movl $F_NX, %ebx
    call putflag
    movl $s_pge, %esi
    movl $F_PGE, %ebx
    call putflag
    call newline
    ret
putflag:
    call puts_nonl
    movb $'0', %al
    testl %ebx, features
    jz 1f
    movb $'1', %al
1:  call putc
    ret

/* ------------------------------------------------- exception entry stubs */

    .macro STUB vec, err
stub_\vec:
    .if \err == 0
    pushl $0
    .endif
    pushl $\vec
    jmp common
    .endm

    STUB 0,0
    STUB 1,0
    STUB 2,0
    STUB 3,0
    STUB 4,0
    STUB 5,0
    STUB 6,0
    STUB 7,0
    STUB 8,1
    STUB 9,0
    STUB 10,1
    STUB 11,1
    STUB 12,1
    STUB 13,1
    STUB 14,1
    STUB 15,0
    STUB 16,0
    STUB 17,1
    STUB 18,0
    STUB 19,0
    STUB 20,0
    STUB 21,1
    STUB 22,0
    STUB 23,0
    STUB 24,0
    STUB 25,0
    STUB 26,0
    STUB 27,0
    STUB 28,0
    STUB 29,1
    STUB 30,1
    STUB 31,0
    STUB 0x21,0
    STUB 0x80,0

/*
 * Stack here: pushal (32 bytes), +32 vector, +36 error code, +40 EIP,
 * +44 CS, +48 EFLAGS, +52 ESP, +56 SS (privilege change / v8086),
 * +60 ES, +64 DS, +68 FS, +72 GS (v8086).
 */
common:
    pushal
    movw %ds, %ax
    movw $KDATA, %bx
    movw %bx, %ds
    movw %bx, %es
    movzwl %ax, %eax
    movl %eax, rec_ds
    incl exc_count
    cmpl $1, exc_count
    jne nested_exception
    movl 32(%esp), %eax
    movl %eax, rec_vec
    movl 36(%esp), %eax
    movl %eax, rec_err
    movl 40(%esp), %eax
    movl %eax, rec_eip
    movl 44(%esp), %eax
    movl %eax, rec_cs
    movl 48(%esp), %eax
    movl %eax, rec_efl
    leal 40(%esp), %eax
    movl %eax, rec_hesp
    movl $0, rec_v86
    testl $0x20000, 48(%esp)
    jnz 2f
    testl $3, 44(%esp)
    jnz 1f
    /* Same privilege: the interrupted stack is just above the frame. */
    leal 52(%esp), %eax
    movl %eax, rec_esp
    movw %ss, %ax
    movzwl %ax, %eax
    movl %eax, rec_ss
    jmp 3f
2:  movl $1, rec_v86
    movl 60(%esp), %eax
    movl %eax, rec_ves
    movl 64(%esp), %eax
    movl %eax, rec_vds
    movl 68(%esp), %eax
    movl %eax, rec_vfs
    movl 72(%esp), %eax
    movl %eax, rec_vgs
1:  movl 52(%esp), %eax
    movl %eax, rec_esp
    movl 56(%esp), %eax
    movl %eax, rec_ss
3:  movl 28(%esp), %eax
    movl %eax, rec_eax
    movl 16(%esp), %eax
    movl %eax, rec_ebx
    movl 24(%esp), %eax
    movl %eax, rec_ecx
    movl 20(%esp), %eax
    movl %eax, rec_edx
    movl %cr2, %eax
    movl %eax, rec_cr2
    movl %dr6, %eax
    movl %eax, rec_dr6
    jmp *case_resume_ptr

nested_exception:
    /* A second exception inside one case: report it and stop the run. */
    movl $s_nested, %esi
    call puts_nonl
    movl 32(%esp), %eax
    call puthex2
    movb $' ', %al
    call putc
    movl 36(%esp), %eax
    call puthex8
    movb $' ', %al
    call putc
    movl 40(%esp), %eax
    call puthex8
    call newline
    movb $0x01, %al
    outb %al, $DEBUG_EXIT
1:  hlt
    jmp 1b

/* ------------------------------------------------------------- printing */

print_record:
    cmpl $0xffff, rec_vec
    jne 1f
    movl $s_vecnone, %esi
    call puts_nonl
    jmp 2f
1:  movl $s_vec, %esi
    call puts_nonl
    movl rec_vec, %eax
    call puthex2
    movl $s_err, %esi
    movl rec_err, %eax
    call field8
    cmpl $8, rec_vec
    jne 5f
    movl $s_df_undef, %esi           /* SDM: saved CS:EIP undefined for #DF */
    call puts_nonl
    jmp 6f
5:  movl $s_eip, %esi
    movl rec_eip, %eax
    call field8
    movl $s_cs, %esi
    movl rec_cs, %eax
    call field4
6:
    movl $s_efl, %esi
    movl rec_efl, %eax
    call field8
    movl $s_esp, %esi
    movl rec_esp, %eax
    call field8
    movl $s_ss, %esi
    movl rec_ss, %eax
    call field4
    movl $s_hesp, %esi
    movl rec_hesp, %eax
    call field8
    cmpl $1, rec_vec
    jne 2f
    movl $s_dr6, %esi
    movl rec_dr6, %eax
    call field8
2:  movl $s_cr2, %esi
    movl rec_cr2, %eax
    call field8
    cmpl $0xffff, rec_vec
    je 3f
    movl $s_ds, %esi
    movl rec_ds, %eax
    call field4
3:  movl $s_eax, %esi
    movl rec_eax, %eax
    call field8
    movl $s_ebx, %esi
    movl rec_ebx, %eax
    call field8
    movl $s_ecx, %esi
    movl rec_ecx, %eax
    call field8
    movl $s_edx, %esi
    movl rec_edx, %eax
    call field8
    cmpl $0xffff, rec_vec
    je 4f
    cmpl $0, rec_v86
    je 4f
    movl $s_v86es, %esi
    movl rec_ves, %eax
    call field4
    movl $s_ds, %esi
    movl rec_vds, %eax
    call field4
    movl $s_fs, %esi
    movl rec_vfs, %eax
    call field4
    movl $s_gs, %esi
    movl rec_vgs, %eax
    call field4
4:  call newline
    ret

field8:
    call puts_nonl
    jmp puthex8
field4:
    call puts_nonl
    jmp puthex4

    .include "uart16550.inc"

/* puthexN(eax): N hex digits. */
puthex8:
    pushl %ecx
    movl $8, %ecx
    jmp puthex_n
puthex4:
    pushl %ecx
    movl $4, %ecx
    roll $16, %eax
    jmp puthex_n
puthex2:
    pushl %ecx
    movl $2, %ecx
    roll $24, %eax
puthex_n:
    pushl %eax
1:  roll $4, %eax
    pushl %eax
    andl $0xf, %eax
    movb hexdigits(%eax), %al
    call putc
    popl %eax
    loop 1b
    popl %eax
    popl %ecx
    ret

/* putdec2(eax): two decimal digits (three from 100 on). */
putdec2:
    pushl %eax
    pushl %edx
    pushl %ecx
    xorl %edx, %edx
    movl $10, %ecx
    divl %ecx
    cmpl $10, %eax
    jb 1f
    pushl %edx
    xorl %edx, %edx
    divl %ecx                        /* eax = hundreds, edx = tens */
    addb $'0', %al
    call putc
    movl %edx, %eax
    popl %edx
1:  addb $'0', %al
    call putc
    movb %dl, %al
    addb $'0', %al
    call putc
    popl %ecx
    popl %edx
    popl %eax
    ret

/* ------------------------------------------------------ shared helpers */

/*
 * enter_ring3: IRET to CPL3 at esi with EFLAGS edi, DS/ES/FS/GS = UDATA,
 * SS:ESP = UDATA:r3stack_top, EAX-EDX and EBP zero.  Never returns.
 */
enter_ring3:
    movw $UDATA | 3, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
iret_ring3:
    pushl $UDATA | 3
    pushl $r3stack_top
    pushl %edi
    pushl $UCODE | 3
    pushl %esi
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %ebp, %ebp
    iret

/* 32-bit paging: PD32 with 0-4 MiB identity (user RW), 4-8 MiB test table
   PT32B empty; test frames filled.  Does not enable paging. */
pg32_init:
    call frames_init
    movl $PD32, %edi
    movl $2048, %ecx                 /* PD32 and PT32A */
    xorl %eax, %eax
    rep stosl
    movl $PT32B, %edi
    movl $1024, %ecx
    rep stosl
    movl $PT32A, %edi
    movl $7, %eax
1:  stosl
    addl $0x1000, %eax
    cmpl $0x400007, %eax
    jb 1b
    movl $(PT32A | 7), PD32
    movl $(PT32B | 7), PD32 + 4
    ret
pg32_on:
    movl $PD32, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ret

/* PAE paging: PDPT[0] -> PDP; PDP[0,1] identity 0-4 MiB (user RW),
   PDP[2] -> PTPB (test area 0x400000-0x5fffff, empty). */
pae_init:
    call frames_init
    movl $PDPT, %edi
    movl $(5 * 1024), %ecx           /* PDPT, PDP, PTPA0, PTPA1, PTPB */
    xorl %eax, %eax
    rep stosl
    movl $PTPA0, %edi
    movl $7, %eax
1:  movl %eax, (%edi)
    addl $8, %edi
    addl $0x1000, %eax
    cmpl $0x400007, %eax
    jb 1b
    movl $(PDP | 1), PDPT
    movl $(PTPA0 | 7), PDP
    movl $(PTPA1 | 7), PDP + 8
    movl $(PTPB | 7), PDP + 16
    ret
pae_on:
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $PDPT, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ret
nx_on:
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x800, %eax
    wrmsr
    xorl %ecx, %ecx
    ret

frames_init:
    movl $0xAAAA0001, FRAME_A
    movl $0xBBBB0002, FRAME_B
    movl $0x00600db8, FRAME_C        /* mov $0x600d, %eax; ret */
    movl $0x9090c300, FRAME_C + 4
    ret

/* ---------------------------------------------------------------- cases */

/* 1-9: segment register loads (SDM 3A §5.4-5.6, MOV instruction page). */
c_ss_null:
    xorl %eax, %eax
    movw %ax, %ss
    ret
c_ds_past_limit:
    movl $0x0ff8, %eax
    movw %ax, %ds
    ret
c_ds_notpresent:
    movl $NPDATA, %eax
    movw %ax, %ds
    ret
c_ds_tss:
    movl $TSS1, %eax
    movw %ax, %ds
    ret
c_ds_execonly:
    movl $XOCODE, %eax
    movw %ax, %ds
    ret
c_ss_readonly:
    movl $RODATA, %eax
    movw %ax, %ss
    ret
c_ss_notpresent:
    movl $NPDATA, %eax
    movw %ax, %ss
    ret
c_ss_code:
    movl $KCODE, %eax
    movw %ax, %ss
    ret
c_ds_rpl3_dpl0:
    movl $KDATA | 3, %eax
    movw %ax, %ds
    ret

/* 10-15: limit and type checks on accesses. */
c_limit_read:
    movl $SMALL, %eax
    movw %ax, %es
    movl $0x1234, %ebx
    movl %es:0x1000, %eax
    ret
c_limit_straddle:
    movl $SMALL, %eax
    movw %ax, %es
    movl %es:0xffe, %ebx
    ret
c_expdown_low:
    movl $EXPDN, %eax
    movw %ax, %es
    movl %es:0x800, %ebx
    ret
c_expdown_high:
    movl $EXPDN, %eax
    movw %ax, %es
    movl $0xAAAA0001, FRAME_A
    movl %es:FRAME_A, %ebx
    ret
c_write_readonly:
    movl $RODATA, %eax
    movw %ax, %es
    movl $0x77, %es:scratch
    ret
c_read_execonly:
    ljmp $XOCODE, $1f
1:  movl %cs:scratch, %ebx
    ret                              /* not reached: #GP(0) expected */

/* 16-22: exceptions and INT n at CPL0. */
c_div0:
    movl $0x11, %eax
    xorl %ecx, %ecx
    xorl %edx, %edx
    divl %ecx
    ret
c_ud2:
    movl $0x22, %eax
    ud2
    ret
c_bound:
    movl $11, %eax
    .byte 0x62, 0x05                 /* bound eax, [bound_pair] */
    .long bound_pair
    ret
c_into:
    movl $0x7fffffff, %eax
    addl $1, %eax
    into
    ret
c_int3:
    movl $0x33, %eax
    int3
    ret
c_int_notpresent:
    int $0x82
    ret
c_int_idt_limit:
    lidt idt_small_ptr
    int $0x80
    ret

/* 23-35: privilege changes. */
c_r3_int80:
    /* DS/ES DPL0 before IRET to CPL3: nulled; FS/GS DPL3: kept. */
    movw $UDATA | 3, %ax
    movw %ax, %fs
    movw %ax, %gs
    movw $KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movl $r3_int80, %esi
    movl $0x2, %edi
    jmp iret_ring3
r3_int80:
    movw %ds, %bx
    movw %es, %cx
    movw %fs, %dx
    movl $0x1111, %eax
    int $0x80

c_r3_int_dpl0:
    movl $r3_int81, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_int81:
    int $0x81

c_r3_load_kdata:
    movl $r3_load_kdata, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_load_kdata:
    movl $KDATA | 3, %eax
    movw %ax, %ds
    int $0x80

c_r3_cli:
    movl $r3_cli, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_cli:
    cli
    int $0x80

c_r3_out:
    movl $r3_out, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_out:
    outb %al, $0x80
    int $0x80

c_r3_hlt:
    movl $r3_hlt, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_hlt:
    hlt
    int $0x80

c_r3_movcr0:
    movl $r3_movcr0, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_movcr0:
    movl %cr0, %ebx
    int $0x80

c_r3_stack_limit:
    movl $r3_stack_limit, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_stack_limit:
    movl $USMALL | 3, %eax
    movw %ax, %ss
    movl $0x1002, %esp
    pushl %eax
    int $0x80

c_r3_iopl3:
    movl $r3_iopl3, %esi
    movl $0x3002, %edi               /* IOPL 3 (IF stays 0) */
    jmp enter_ring3
r3_iopl3:
    cli
    pushfl
    popl %ebx
    inb $0x80, %al
    movl $0x3333, %eax
    int $0x80

c_callgate0:
    movl $r3_callgate0, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_callgate0:
    movl $0x5a5a, %eax
    lcall $CGATE0 | 3, $0
cg_entry0:
    /* CPL0 on the TSS stack: EIP, CS, ESP, SS of the caller. */
    movl 0(%esp), %eax
    movl 4(%esp), %ebx
    movl 8(%esp), %ecx
    movl 12(%esp), %edx
    int $0x80

c_callgate2:
    movl $r3_callgate2, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_callgate2:
    pushl $0x11111111
    pushl $0x22222222
    lcall $CGATE2 | 3, $0
cg_entry2:
    /* EIP, CS, then the two copied parameters, then ESP, SS. */
    movl 8(%esp), %eax
    movl 12(%esp), %ebx
    movl 16(%esp), %ecx
    movl 20(%esp), %edx
    int $0x80

c_callgate_dpl0:
    movl $r3_callgate_dpl0, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_callgate_dpl0:
    lcall $CGATEK | 3, $0
    int $0x80

c_r3_ac:
    movl %cr0, %eax
    orl $0x40000, %eax               /* AM */
    movl %eax, %cr0
    movl $r3_ac, %esi
    movl $0x40002, %edi              /* AC */
    jmp enter_ring3
r3_ac:
    movl $0x4444, %ebx
    movl scratch + 1, %eax
    int $0x80

c_r3_far_ret_kernel:
    /* RET far from CPL3 to a CPL0 code selector: #GP(selector). */
    movl $r3_far_ret, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_far_ret:
    pushl $KCODE
    pushl $r3_far_ret
    lret

/* 37-39: v8086 mode (SDM 3A ch. 20). */
v86_enter:
    /* esi = offset in V86BASE, edi = EFLAGS (VM set by caller). */
    movl $v86_blob, %eax
    xorl %ecx, %ecx
1:  movb (%eax,%ecx), %dl
    movb %dl, V86BASE(%ecx)
    incl %ecx
    cmpl $v86_blob_end - v86_blob, %ecx
    jb 1b
    pushl $0                         /* GS */
    pushl $0x0555                    /* FS */
    pushl $0x0666                    /* DS */
    pushl $0                         /* ES */
    pushl $0                         /* SS */
    pushl $0x6ff0                    /* ESP */
    pushl %edi
    pushl $V86BASE >> 4              /* CS */
    pushl %esi
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    iret
c_v86_int_iopl0:
    movl $0, %esi
    movl $0x20002, %edi
    jmp v86_enter
c_v86_int_iopl3:
    movl $0, %esi
    movl $0x23002, %edi
    jmp v86_enter
c_v86_cli_iopl0:
    movl $v86_cli - v86_blob, %esi
    movl $0x20002, %edi
    jmp v86_enter

/* 40-52: 32-bit paging (SDM 3A §4.3, error code §4.7). */
c_pf_read_np:
    call pg32_init
    call pg32_on
    movl TL, %ebx
    ret
c_pf_write_np:
    call pg32_init
    call pg32_on
    movl $1, TL + 0x10
    ret
c_pf_user_read_sup:
    call pg32_init
    movl $(FRAME_A | 3), PT32B + 4   /* TL+0x1000: P, RW, supervisor */
    call pg32_on
    movl $r3_read_tl1, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_read_tl1:
    movl TL + 0x1000, %ebx
    int $0x80
c_pf_user_write_ro:
    call pg32_init
    movl $(FRAME_A | 5), PT32B + 4   /* P, user, read-only */
    call pg32_on
    movl $r3_write_tl1, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_write_tl1:
    movl TL + 0x1000, %ebx
    movl $0x99, TL + 0x1004
    int $0x80
c_pf_sup_write_ro_wp0:
    call pg32_init
    movl $(FRAME_A | 5), PT32B + 4
    call pg32_on
    movl $0x12345678, TL + 0x1000
    movl FRAME_A, %eax
    movl PT32B + 4, %ebx
    ret
c_pf_sup_write_ro_wp1:
    call pg32_init
    movl $(FRAME_A | 5), PT32B + 4
    call pg32_on
    movl %cr0, %eax
    orl $0x10000, %eax
    movl %eax, %cr0
    movl $0x12345678, TL + 0x1008
    movl FRAME_A, %eax
    ret
c_pf_accessed_dirty:
    call pg32_init
    movl $(FRAME_B | 7), PT32B + 12
    call pg32_on
    movl TL + 0x3000, %eax
    movl PT32B + 12, %ebx
    movl $0x5151, TL + 0x3004
    movl PT32B + 12, %ecx
    movl PD32 + 4, %edx
    andl $0x3f, %edx                 /* bit 6 of a PDE that maps a table is ignored */
    ret
c_pf_user_fetch_sup:
    call pg32_init
    movl $(FRAME_C | 3), PT32B + 16
    call pg32_on
    movl $r3_fetch_tl4, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_fetch_tl4:
    movl $TL + 0x4000, %eax
    call *%eax
    int $0x80
c_pf_user_write_np_pde:
    call pg32_init
    call pg32_on
    movl $r3_write_c00000, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_write_c00000:
    movl $0x1, 0xc00004
    int $0x80
c_pse_4m:
    call pg32_init
    movl %cr4, %eax
    orl $0x10, %eax                  /* PSE */
    movl %eax, %cr4
    movl $0x00000087, PD32 + 8       /* 0x800000: 4 MiB page -> phys 0, user RW */
    call pg32_on
    movl 0x800000 + magic, %eax
    movl PD32 + 8, %ebx
    movl $0x5555, 0x800000 + scratch
    movl PD32 + 8, %ecx
    movl scratch, %edx
    ret
c_pse_4m_user_write_ro:
    call pg32_init
    movl %cr4, %eax
    orl $0x10, %eax
    movl %eax, %cr4
    movl $0x00000085, PD32 + 8       /* user, read-only */
    call pg32_on
    movl $r3_pse_write, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_pse_write:
    movl 0x800000 + magic, %ebx
    movl $0x6666, 0x800000 + scratch
    int $0x80
c_invlpg:
    call pg32_init
    movl $(FRAME_A | 7), PT32B + 20
    call pg32_on
    movl TL + 0x5000, %eax           /* fills the TLB */
    movl $(FRAME_B | 7), PT32B + 20
    invlpg TL + 0x5000
    movl TL + 0x5000, %ebx           /* SDM: the new mapping now */
    ret
c_cr3_reload:
    call pg32_init
    movl $(FRAME_A | 7), PT32B + 20
    call pg32_on
    movl TL + 0x5000, %eax
    movl $0, PT32B + 20
    movl %cr3, %ecx
    movl %ecx, %cr3                  /* flushes non-global entries */
    movl TL + 0x5000, %ebx           /* #PF(0) */
    ret

/* 53-61: PAE paging and NX (SDM 3A §4.4, §4.6). */
c_pae_read:
    call pae_init
    movl $(FRAME_A | 7), PTPB
    call pae_on
    movl TL, %eax
    movl PTPB, %ebx
    movl PDP + 16, %ecx
    ret
c_pae_rsvd_xd_nxe0:
    call pae_init
    movl $(FRAME_A | 7), PTPB + 8
    movl $0x80000000, PTPB + 12      /* XD with EFER.NXE=0: reserved */
    call pae_on
    movl TL + 0x1000, %ebx
    ret
c_pae_2m_rsvd:
    call pae_init
    movl $(0x000000 | 0x2000 | 0x87), PDP + 24   /* bit 13 reserved in a 2 MiB PDE */
    call pae_on
    movl 0x600000 + magic, %ebx
    ret
c_pae_2m_read:
    call pae_init
    movl $0x87, PDP + 24             /* 0x600000 -> phys 0, 2 MiB, user RW */
    call pae_on
    movl 0x600000 + magic, %eax
    movl PDP + 24, %ebx
    movl $0x7777, 0x600000 + scratch
    movl PDP + 24, %ecx
    movl scratch, %edx
    ret
c_pae_nx_fetch:
    call pae_init
    movl $(FRAME_C | 7), PTPB + 8
    movl $0x80000000, PTPB + 12      /* XD */
    call nx_on
    call pae_on
    movl $TL + 0x1000, %ebx
    call *%ebx
    ret
c_pae_nx_clear_fetch:
    call pae_init
    movl $(FRAME_C | 7), PTPB + 8
    call nx_on
    call pae_on
    movl $TL + 0x1000, %ebx
    call *%ebx                       /* returns eax = 0x600d */
    movl PTPB + 12, %ecx
    ret
c_pae_nx_user_fetch:
    call pae_init
    movl $(FRAME_C | 7), PTPB + 8
    movl $0x80000000, PTPB + 12
    call nx_on
    call pae_on
    movl $r3_fetch_tl1, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_fetch_tl1:
    movl TL + 0x1000, %ebx           /* data read of an XD page is fine */
    movl $TL + 0x1000, %eax
    call *%eax
    int $0x80
c_pae_wp1:
    call pae_init
    movl $(FRAME_A | 5), PTPB + 16
    call pae_on
    movl %cr0, %eax
    orl $0x10000, %eax
    movl %eax, %cr0
    movl TL + 0x2000, %ebx
    movl $1, TL + 0x2000
    ret
c_pae_user_read_sup:
    call pae_init
    movl $(FRAME_B | 3), PTPB + 24
    call pae_on
    movl $r3_read_tl3, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_read_tl3:
    movl TL + 0x3000, %ebx
    int $0x80

/* 62: task switch by far JMP to a TSS descriptor (SDM 3A §7.3). */
c_task_jmp:
    movl $0xc1c1, %eax
    movl $0, t2_tr
    ljmp $TSS2, $0
task1_back:
    /* Back in task 1 with its registers (restored from TSS1). */
    movl t2_tr, %eax                 /* TR in task 2 | CR0.TS << 16 */
    movl tss1 + 32, %ebx
    subl $task1_back, %ebx           /* TSS1.EIP saved by the JMP: 0 */
    movl tss2 + 32, %ecx
    subl $task2_back, %ecx           /* TSS2.EIP saved by the JMP back: 0 */
    movzbl gdt + TSS1 + 5, %edx      /* 0x8b: TSS1 busy again */
    shll $8, %edx
    movb gdt + TSS2 + 5, %dl         /* 0x89: TSS2 not busy */
    pushl %eax
    movl %cr0, %eax
    andl $8, %eax                    /* TS set by the task switches */
    shll $13, %eax
    orl %eax, %edx
    popl %eax
    ret
task2_entry:
    str %ax
    movzwl %ax, %eax
    movl %eax, t2_tr
    movl %cr0, %eax
    andl $8, %eax
    shll $13, %eax
    orl %eax, t2_tr
    ljmp $TSS1, $0
task2_back:
    jmp task2_back

/* Task switch by far CALL (nested task) and IRET back (SDM 3A §7.3, §7.4). */
tss2_init:
    /* eax = entry point; TSS2 available again with a fresh register image. */
    movl %eax, tss2 + 32
    movl $2, tss2 + 36
    movl $task2_stack_top, tss2 + 56
    movl $0, tss2 + 0
    movb $0x89, gdt + TSS2 + 5
    ret
c_task_call_iret:
    movl $task3_entry, %eax
    call tss2_init
    movl $0, t2_tr
    movl $0xc2c2, %eax
    lcall $TSS2, $0
task1_back2:
    movl t2_tr, %eax                 /* TR in task 2 | NT there << 16 */
    movzwl tss2 + 0, %ebx            /* back link written into TSS2: 0x28 */
    movl tss1 + 32, %ecx
    subl $task1_back2, %ecx          /* TSS1.EIP saved by the CALL: 0 */
    movzbl gdt + TSS1 + 5, %edx      /* 0x8b */
    shll $8, %edx
    movb gdt + TSS2 + 5, %dl         /* 0x89: IRET cleared the busy flag */
    pushfl
    popl %esi
    andl $0x4000, %esi               /* NT in task 1 after the return: 0 */
    shll $2, %esi
    orl %esi, %edx
    ret
task3_entry:
    str %ax
    movzwl %ax, %eax
    pushfl
    popl %ecx
    andl $0x4000, %ecx               /* CALL sets NT in the new task */
    shll $2, %ecx
    orl %ecx, %eax
    movl %eax, t2_tr
    iret
1:  jmp 1b

/* More segment loads and far transfers. */
c_ss_rpl_ne_cpl:
    movl $KDATA | 3, %eax
    movw %ax, %ss
    ret
c_ldt:
    movl $LDTSEL, %eax
    lldt %ax
    movl $0x0c, %eax                 /* LDT index 1 */
    movw %ax, %es
    movl %es:magic, %ebx
    sldt %ecx
    movl $0x14, %eax                 /* LDT index 2: beyond the LDT limit */
    movw %ax, %ds
    ret
c_ldt_null:
    movl $0x04, %eax                 /* TI=1 with a null LDTR */
    movw %ax, %ds
    ret
c_lcall_np_code:
    lcall $NPCODE, $0
    ret
c_ljmp_data:
    ljmp $KDATA, $0
    ret
c_ljmp_past_limit:
    ljmp $SMALLCODE, $0x2000
    ret
c_lcall_past_limit:
    lcall $SMALLCODE, $0x2000
    ret
/* fresh_code(eax = base, edx = limit): FRESH = 32-bit code, DPL0, byte
   granular, accessed. */
fresh_code:
    movw %dx, gdt + FRESH
    movw %ax, gdt + FRESH + 2
    shrl $16, %eax
    movb %al, gdt + FRESH + 4
    movb $0x9b, gdt + FRESH + 5
    movb $0x40, gdt + FRESH + 6
    movb %ah, gdt + FRESH + 7
    ret
c_cs_limit_near_jmp:
    movl $lim_code, %eax
    movl $0x0f, %edx
    call fresh_code
    movl $0x20, %eax
    ljmp $FRESH, $0
lim_code:
    jmp *%eax                        /* target 0x20 > CS limit 0xf: #GP(0) */
    .fill 0x20 - (. - lim_code), 1, 0xcc
    int $0x80                        /* reached only without the limit check */
c_cs_limit_fallthrough:
    movl $lim_code2, %eax
    movl $0x03, %edx
    call fresh_code
    ljmp $FRESH, $0
lim_code2:
    incl %ebx                        /* offsets 0-3 are inside the limit */
    incl %ebx
    incl %ebx
    incl %ebx
    int $0x80                        /* offset 4: beyond the limit, #GP(0) */
c_rf_on_fault:
    xorl %eax, %eax                  /* EFLAGS = ZF|PF|bit 1 */
    ud2                              /* a fault: the pushed image has RF=1 */
    ret
c_iret_ss_rpl:
    pushl $UDATA                     /* SS RPL 0 != new CPL 3 */
    pushl $r3stack_top
    pushl $2
    pushl $UCODE | 3
    pushl $r3_int80
    iret
c_lret_ss_rpl:
    pushl $UDATA                     /* SS RPL 0 != new CPL 3 */
    pushl $r3stack_top
    pushl $UCODE | 3
    pushl $r3_int80
    lret
c_iret_cs_rpl0:
    pushl $2
    pushl $UCODE                     /* RPL 0: same level, but DPL 3 != 0 */
    pushl $r3_int80
    iret
c_r3_int_conforming:
    movl $r3_int_conforming, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_int_conforming:
    int $0x86
conf_handler:
    /* Still CPL3 on the ring-3 stack: EIP, CS, EFLAGS only. */
    movl 0(%esp), %eax
    movl 4(%esp), %ebx
    movl 8(%esp), %ecx
    movl %esp, %edx
    int $0x80
c_ltr_busy:
    movl $TSS1, %eax
    ltr %ax                          /* TSS1 is busy (the current task) */
    ret
c_lldt_not_ldt:
    movl $KDATA, %eax
    lldt %ax
    ret
c_rep_stos_pf:
    call pg32_init
    movl $(FRAME_A | 7), PT32B + 24  /* TL+0x6000 present, TL+0x7000 not */
    call pg32_on
    cld
    movl $TL + 0x6ff0, %edi
    movl $0x20, %ecx
    movb $0xee, %al
    rep stosb                        /* #PF(W) at TL+0x7000, ECX = 0x10 left */
    ret
c_pge_toggle:
    call pg32_init
    movl %cr4, %eax
    orl $0x80, %eax                  /* PGE */
    movl %eax, %cr4
    movl $(FRAME_A | 0x107), PT32B + 32  /* global */
    call pg32_on
    movl TL + 0x8000, %eax
    movl $(FRAME_B | 0x107), PT32B + 32
    movl %cr4, %ecx
    andl $~0x80, %ecx
    movl %ecx, %cr4                  /* clearing PGE flushes global entries */
    movl TL + 0x8000, %ebx
    ret
c_desc_accessed:
    movl $0x0000ffff, gdt + FRESH
    movl $0x00cf9200, gdt + FRESH + 4    /* type 2: accessed bit clear */
    movzbl gdt + FRESH + 5, %ebx
    movl $FRESH, %eax
    movw %ax, %es
    movzbl gdt + FRESH + 5, %ecx     /* the load sets the accessed bit: 0x93 */
    movw %es, %dx
    ret

    .macro ZBIT n
    setz %al
    movzbl %al, %eax
    shll $\n, %eax
    orl %eax, %edx
    .endm
c_desc_accessed_cs:
    movl $0x0000ffff, gdt + FRESH
    movl $0x00cf9a00, gdt + FRESH + 4    /* code, accessed bit clear */
    movzbl gdt + FRESH + 5, %ebx
    ljmp $FRESH, $1f
1:  movw %cs, %dx
    ljmp $KCODE, $2f
2:  movzbl gdt + FRESH + 5, %ecx     /* SDM 3A 3.4.5.1: the load sets it: 0x9b */
    ret
c_lar_lsl:
    xorl %edx, %edx
    movl $XOCODE, %ecx
    verr %cx
    ZBIT 0
    movl $RODATA, %ecx
    verw %cx
    ZBIT 1
    movl $KCODE, %ecx
    verr %cx
    ZBIT 2
    movl $KDATA, %ecx
    verw %cx
    ZBIT 3
    movl $NPDATA, %ecx
    larl %ecx, %ebx
    ZBIT 4
    movl $CGATE0, %ecx
    lsll %ecx, %ebx
    ZBIT 5
    movl $0x0ff8, %ecx
    larl %ecx, %ebx
    ZBIT 6
    movl $UDATA | 3, %ecx
    verr %cx
    ZBIT 7
    movl $TSS1, %ecx
    lsll %ecx, %ebx
    ZBIT 8
    movl $KCODE, %ecx
    larl %ecx, %eax
    movl $SMALL, %ecx
    lsll %ecx, %ebx
    movl $CGATE0, %esi
    larl %esi, %ecx
    ret


/* Exception classes (SDM 3A §6.15 table 6-5) and IDT gate checks. */
c_df_gp_np:
    andb $0x7f, idt + 13 * 8 + 5     /* #GP gate not present */
    movl $0x0ff8, %eax
    movw %ax, %ds                    /* #GP -> #NP while delivering -> #DF */
    ret
c_df_pf_gp:
    call pg32_init
    call pg32_on
    movw $0x0ff8, idt + 14 * 8 + 2   /* #PF gate selector beyond the GDT */
    movl TL, %ebx                    /* #PF -> #GP while delivering -> #DF */
    ret
c_ext_ud_np:
    andb $0x7f, idt + 6 * 8 + 5      /* #UD gate not present */
    ud2                              /* benign #UD -> #NP(6*8+2+EXT) */
    ret
c_int_wrong_gate_type:
    int $0x83
    ret
c_int_gate_data_sel:
    int $0x84
    ret
c_int_16bit_gate:
    movl $0x5a5a, %eax
    int $0x85
    ret
/* Copied to LOWCODE: reports the 16-bit frame (IP, CS, FLAGS) and ESP. */
stub16:
    movzwl (%esp), %eax
    movzwl 2(%esp), %ebx
    movzwl 4(%esp), %ecx
    movl %esp, %edx
    int $0x80
stub16_end:
c_single_step:
    movl $0x1d1d, %eax
    pushfl
    orl $0x100, (%esp)
    popfl
    nop                              /* #DB trap after this instruction */
    movl $0x2d2d, %eax
    ret

/* Privilege: conforming code, call gate round trip. */
c_r3_conforming:
    movl $r3_conforming, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_conforming:
    lcall $CONF | 3, $conf_target
conf_target:
    movw %cs, %bx                    /* CPL stays 3: CS = 0x93 */
    movw %ss, %cx
    int $0x80

c_callgate_ret:
    movl $r3_callgate_ret, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_callgate_ret:
    pushl $0x11111111
    pushl $0x22222222
    lcall $CGATER | 3, $0
    movw %ds, %bx                    /* DS = DPL0 data on return: nulled */
    movw %ss, %cx
    movl $0x3c3c, %eax
    int $0x80
cg_entry_ret:
    movw $KDATA, %ax
    movw %ax, %ds
    lret $8

/* More paging. */
c_pf_pde_user0:
    call pg32_init
    movl $(PT32B | 3), PD32 + 4      /* PDE supervisor, PTE user */
    movl $(FRAME_A | 7), PT32B + 4
    call pg32_on
    movl $r3_read_tl1, %esi
    movl $0x2, %edi
    jmp enter_ring3
c_pf_pde_ro:
    call pg32_init
    movl $(PT32B | 5), PD32 + 4      /* PDE read-only, PTE writable */
    movl $(FRAME_A | 7), PT32B + 4
    call pg32_on
    movl $r3_write_tl1, %esi
    movl $0x2, %edi
    jmp enter_ring3
c_pf_sup_write_user_wp1:
    call pg32_init
    movl $(FRAME_A | 7), PT32B + 4   /* user RW page: a ring0 write is fine */
    call pg32_on
    movl %cr0, %eax
    orl $0x10000, %eax
    movl %eax, %cr0
    movl $0x31337, TL + 0x1000
    movl FRAME_A, %eax
    movl PT32B + 4, %ebx
    ret

/*
 * Debug registers (SDM 3A ch. 17: §17.2 DR0-DR7, §17.3.1 #DB conditions,
 * §17.3.1.1 RF) and NMI (SDM 3A §6.7.1, §10.6.1 ICR).  dbgdata is a 16-byte
 * aligned scratch area; DR7 is cleared by case_resume after every case.
 */
    .set DR7_L0,  0x001
    .set DR7_L1,  0x004
    .set DR7_L2,  0x010
    .set DR7_L3,  0x040
    .set LAPIC,        0xfee00000
    .set LAPIC_ID,     LAPIC + 0x20
    .set LAPIC_SVR,    LAPIC + 0xf0
    .set LAPIC_ICR_LO, LAPIC + 0x300
    .set LAPIC_ICR_HI, LAPIC + 0x310

dbg_clear_data:
    movl $0x03020100, dbgdata
    movl $0x07060504, dbgdata + 4
    movl $0x0b0a0908, dbgdata + 8
    movl $0x0f0e0d0c, dbgdata + 12
    movl $0, db_count
    movl $0, db_dr6
    movl $0, db_efl
    ret

/* #DB handler for the RF case: counts, keeps DR6 and the pushed EFLAGS of
   the first #DB, then returns with RF=1 so the breakpoint is not taken
   again when the instruction restarts. */
h_db_rf:
    pushl %eax
    incl db_count
    cmpl $1, db_count
    jne 1f
    movl %dr6, %eax
    movl %eax, db_dr6
    movl 12(%esp), %eax
    movl %eax, db_efl
1:  orl $0x10000, 12(%esp)
    popl %eax
    iret

/* Instruction breakpoint: a fault before the instruction, RF=0 pushed. */
c_dr_exec_bp:
    movl $1f, %eax
    movl %eax, %dr0
    movl $DR7_L0, %eax               /* R/W0 = 00 (execute), LEN0 = 00 */
    movl %eax, %dr7
    movl $0x1111, %ebx
    nop
1:  movl $0x2222, %ebx               /* #DB here, before it runs: ebx = 0x1111 */
    ret

/* The same breakpoint in a loop, the handler setting RF in the frame: the
   instruction runs after each #DB, RF is cleared after it, so the second
   iteration breaks again (count 2, ebx 2). */
c_dr_exec_rf:
    call dbg_clear_data
    movl $h_db_rf, %eax
    movl $idt + 1 * 8, %edi
    movl $0x8e00, %edx
    call set_gate
    movl $1f, %eax
    movl %eax, %dr1
    movl $DR7_L1, %eax
    movl %eax, %dr7
    xorl %ebx, %ebx
    movl $2, %esi
1:  incl %ebx                        /* breakpoint */
    decl %esi
    jnz 1b
    movl db_efl, %eax                /* RF=0 in the image of an instruction breakpoint */
    movl db_count, %ecx
    movl db_dr6, %edx
    ret

/* Data write breakpoint, LEN 1 (R/W = 01): reads and other bytes do not hit;
   the byte write traps after it. */
c_dr_write_len1:
    call dbg_clear_data
    movl $dbgdata + 5, %eax
    movl %eax, %dr0
    movl $(DR7_L0 | (1 << 16) | (0 << 18)), %eax
    movl %eax, %dr7
    movb $0xa4, dbgdata + 4          /* next byte: no hit */
    movb $0xa6, dbgdata + 6
    movl dbgdata + 4, %ebx           /* a read: no hit for a write breakpoint */
    movl $0x1111, %ecx
    movb $0xa5, dbgdata + 5          /* #DB trap after this write */
    movl $0x2222, %ecx
    ret

/* LEN 2 on DR1: a dword write covering its second byte hits. */
c_dr_write_len2:
    call dbg_clear_data
    movl $dbgdata + 6, %eax
    movl %eax, %dr1
    movl $(DR7_L1 | (1 << 20) | (1 << 22)), %eax
    movl %eax, %dr7
    movw $0x1234, dbgdata + 4        /* bytes 4-5: no hit */
    movw $0x5678, dbgdata + 8        /* bytes 8-9: no hit */
    movl $0x1111, %ecx
    movl $0xdeadbeef, dbgdata + 7    /* bytes 7-10 overlap 6-7: hit */
    movl $0x2222, %ecx
    ret

/* LEN 4 read/write (R/W = 11) on DR2: a byte read inside the dword hits. */
c_dr_rw_len4:
    call dbg_clear_data
    movl $dbgdata + 8, %eax
    movl %eax, %dr2
    movl $(DR7_L2 | (3 << 24) | (3 << 26)), %eax
    movl %eax, %dr7
    movzbl dbgdata + 7, %ebx         /* just below: no hit */
    movzbl dbgdata + 12, %ebx        /* just above: no hit */
    movl $0x1111, %ecx
    movzbl dbgdata + 10, %ebx        /* hit: ebx = 0x0a */
    movl $0x2222, %ecx
    ret

/* LEN 8 (10) read/write on DR3: a word write at its last bytes hits. */
c_dr_rw_len8:
    call dbg_clear_data
    movl $dbgdata + 8, %eax
    movl %eax, %dr3
    movl $(DR7_L3 | (3 << 28) | (2 << 30)), %eax
    movl %eax, %dr7
    movl dbgdata + 4, %ebx           /* bytes 4-7: no hit */
    movl $0x1111, %ecx
    movw $0x4242, dbgdata + 14       /* hit */
    movl $0x2222, %ecx
    ret

/* DR7.GD: any MOV DR faults first, with DR6.BD; entering the handler
   clears GD (so case_resume can write DR7). */
c_dr_gd:
    movl $0x2000, %eax
    movl %eax, %dr7
    movl $0x1111, %ebx
    movl %dr0, %eax                  /* #DB fault here */
    movl $0x2222, %ebx
    ret

/* CR4.DE=0: DR4 and DR5 are DR6 and DR7. */
c_dr_alias:
    movl $0x00000300, %eax           /* LE and GE only: no breakpoint */
    movl %eax, %dr5
    movl %dr7, %eax                  /* 0x700 */
    movl %dr4, %ebx                  /* DR6: 0xffff0ff0 */
    movl %dr5, %ecx
    movl $0x1111, %edx
    ret

/* CR4.DE=1: MOV DR4 is #UD. */
c_dr_alias_de:
    movl %cr4, %eax
    orl $0x8, %eax
    movl %eax, %cr4
    movl $0x1111, %ebx
    movl %dr4, %eax                  /* #UD */
    movl $0x2222, %ebx
    ret

/* MOV DR at CPL 3: #GP(0). */
c_dr_r3:
    movl $r3_movdr, %esi
    movl $0x2, %edi
    jmp enter_ring3
r3_movdr:
    movl $0x4444, %ebx
    movl %dr7, %eax

/* I/O breakpoint (R/W = 10, CR4.DE=1), LEN 4 at port 0x84: IN from 0x86 traps after it. */
c_dr_io:
    movl %cr4, %eax
    orl $0x8, %eax
    movl %eax, %cr4
    movl $0x84, %eax
    movl %eax, %dr1
    movl $(DR7_L1 | (2 << 20) | (3 << 22)), %eax
    movl %eax, %dr7
    movl $0x5a, %eax
    outb %al, $0x80                  /* port 0x80: no hit */
    movl $0x1111, %ecx
    outb %al, $0x86                  /* #DB trap after this (a DMA page register) */
    movl $0x2222, %ecx
    ret

/* TF and a data breakpoint on the same instruction: one #DB, BS and B0. */
c_dr_sstep_data:
    call dbg_clear_data
    movl $dbgdata, %eax
    movl %eax, %dr0
    movl $(DR7_L0 | (1 << 16) | (3 << 18)), %eax
    movl %eax, %dr7
    movl $0x1111, %ecx
    pushfl
    orl $0x100, (%esp)
    popfl
    movl %ecx, dbgdata               /* single step and the breakpoint */
    movl $0x2222, %ecx
    ret

/* REP MOVSB into a write breakpoint: #DB after the iteration that wrote
   it, EIP on the REP instruction, RF=1 pushed (not the last iteration). */
c_dr_rep_movs:
    call dbg_clear_data
    movl $dbgdata + 5, %eax
    movl %eax, %dr0
    movl $(DR7_L0 | (1 << 16)), %eax
    movl %eax, %dr7
    movl $scratch, %esi
    movl $dbgdata, %edi
    movl $8, %ecx
    movl $0x1111, %ebx
    cld
    rep movsb                        /* hit on the sixth byte: ecx = 2 */
    movl $0x2222, %ebx
    ret

/* TF with REP MOVSB: a single-step trap after each iteration, EIP still on
   the instruction while iterations remain (SDM 3A §17.3.1.4). */
c_sstep_rep_movs:
    movl $scratch, %esi
    movl $dbgdata, %edi
    movl $3, %ecx
    movl $0x1111, %ebx
    cld
    pushfl
    orl $0x100, (%esp)
    popfl
    rep movsb                        /* #DB after the first byte: ecx = 2 */
    movl $0x2222, %ebx
    ret

/* TF and MOV SS: no trap after MOV SS; one after the next instruction
   (SDM 3A §6.8.3: debug exceptions inhibited for one instruction). */
c_sstep_movss:
    movw %ss, %ax
    movl $0x1111, %ebx
    pushfl
    orl $0x100, (%esp)
    popfl
    movw %ax, %ss                    /* no trap here */
    movl $0x2222, %ebx               /* #DB after this one */
    movl $0x3333, %ebx
    ret

/* A task switch clears DR7's local enables L0-L3, not the global ones
   (SDM 3A §17.2.4; LE stays).  DR0/DR1 point at code never run. */
c_dr_task_switch:
    movl $task_dr_entry, %eax
    call tss2_init
    movl $0, t2_dr7
    movl $0xfffff000, %eax
    movl %eax, %dr0
    movl %eax, %dr1
    movl $0x30f, %eax                /* L0, G0, L1, G1, LE, GE */
    movl %eax, %dr7
    ljmp $TSS2, $0
    movl %dr7, %eax                  /* back in task 1: 0x70a */
    movl t2_dr7, %ebx                /* as task 2 saw it: 0x70a */
    xorl %ecx, %ecx
    xorl %edx, %edx
    ret
task_dr_entry:
    movl %dr7, %eax
    movl %eax, t2_dr7
    ljmp $TSS1, $0

/* NMI: a physical IPI to our own APIC with delivery mode NMI, IF=0.  The
   handler sends a second one and spins: it stays pending (NMIs blocked)
   until the IRET, after which it is taken. */
apic_on:
    movl LAPIC_SVR, %eax
    orl $0x1ff, %eax                 /* software enable, spurious vector 0xff */
    movl %eax, LAPIC_SVR
    ret
send_self_nmi:
    movl LAPIC_ID, %eax
    andl $0xff000000, %eax
    movl %eax, LAPIC_ICR_HI
    movl $0x00004400, LAPIC_ICR_LO   /* delivery mode NMI, assert, physical, no shorthand */
    ret
/* spin: some 20000 taken branches (many block boundaries) */
spin:
    pushl %ecx
    movl $20000, %ecx
1:  decl %ecx
    jnz 1b
    popl %ecx
    ret
h_nmi:
    pushl %eax
    incl nmi_count
    cmpl $1, nmi_count
    jne 1f
    movl 12(%esp), %eax              /* pushed EFLAGS */
    movl %eax, nmi_efl
    call send_self_nmi
    call spin
    movl nmi_count, %eax
    movl %eax, nmi_inside            /* still 1: the second NMI waits for IRET */
1:  popl %eax
    iret

c_nmi_ipi:
    movl $0, nmi_count
    movl $0, nmi_inside
    movl $0, nmi_efl
    movl $h_nmi, %eax
    movl $idt + 2 * 8, %edi
    movl $0x8e00, %edx
    call set_gate
    call apic_on
    call send_self_nmi
    call spin
    movl nmi_count, %ebx             /* 2 */
    movl nmi_inside, %ecx            /* 1 */
    movl nmi_efl, %edx
    andl $0x200, %edx                /* IF=0 in the NMI frame */
    movl $0x1111, %eax
    ret

/* HLT with IF=0 ends on an NMI: the 8254's channel 0 (mode 0, ~0.8 ms)
   raises IRQ0 on the 8259, whose INT output reaches LINT0, programmed as
   NMI (SDM 3A §10.5.1). */
h_nmi_hlt:
    pushl %eax
    incl nmi_count
    movl 4(%esp), %eax               /* saved EIP */
    movl %eax, nmi_eip
    cmpl $nmi_hlt_insn, %eax
    jne 1f
    incl 4(%esp)                     /* taken before the HLT: skip it, no hang */
1:  popl %eax
    iret
c_nmi_hlt:
    movl $0, nmi_count
    movl $0, nmi_eip
    movl $h_nmi_hlt, %eax
    movl $idt + 2 * 8, %edi
    movl $0x8e00, %edx
    call set_gate
    call apic_on
    movl $0x10400, LAPIC + 0x350     /* LVT LINT0: NMI, masked while set up */
    /*
     * Without firmware channel 0 runs from reset in mode 3 (an IRQ0 edge
     * every 55 ms).  An edge while LINT0 is masked would leave IRR0 set and
     * INT high, so the one-shot below could never make another edge and the
     * HLT would wait forever (NMI on LINT0 is edge-triggered, SDM 3A 10.5.1).
     * Mode 0 with the full count first: OUT low, no edge for 55 ms; the
     * 8259's ICW1 then clears any IRR0 latched before.
     */
    movb $0x30, %al                  /* 8254: channel 0, lo/hi, mode 0 */
    outb %al, $0x43
    xorl %eax, %eax                  /* count 0 = 65536 */
    outb %al, $0x40
    outb %al, $0x40
    movb $0x11, %al                  /* 8259 ICW1: edge, cascade, ICW4 */
    outb %al, $0x20
    movb $0x20, %al                  /* ICW2: vectors 0x20-0x27 */
    outb %al, $0x21
    movb $0x04, %al                  /* ICW3: slave on IRQ2 */
    outb %al, $0x21
    movb $0x01, %al                  /* ICW4: 8086 mode */
    outb %al, $0x21
    movb $0xfe, %al                  /* only IRQ0 */
    outb %al, $0x21
    movb $0xff, %al
    outb %al, $0xa1
    movl $0x400, LAPIC + 0x350       /* LINT0: NMI, unmasked, edge */
    movb $0x30, %al                  /* 8254: channel 0, lo/hi, mode 0 */
    outb %al, $0x43
    movb $0xe8, %al                  /* 1000 ticks (~0.84 ms) */
    outb %al, $0x40
    movb $0x03, %al
    outb %al, $0x40
    movl $0x1111, %ebx
nmi_hlt_insn:
    hlt
    movl nmi_count, %ebx             /* 1 */
    movl nmi_eip, %ecx
    subl $nmi_hlt_insn, %ecx         /* 1: taken after the HLT (0: before it) */
    movb $0xff, %al                  /* 8259 all masked: INT low again */
    outb %al, $0x21
    movl $0x10000, LAPIC + 0x350     /* LINT0 masked */
    xorl %edx, %edx
    movl $0x2222, %eax
    ret

/* More v8086. */
c_v86_iret_iopl0:
    movl $v86_iret - v86_blob, %esi
    movl $0x20002, %edi
    jmp v86_enter
c_v86_out_iopl3:
    movl $v86_out - v86_blob, %esi
    movl $0x23002, %edi
    jmp v86_enter
c_v86_pushf_iopl0:
    movl $v86_pushf - v86_blob, %esi
    movl $0x20002, %edi
    jmp v86_enter

/* 16-bit code run in v8086 mode at V86BASE (copied there). */
    .code16
v86_blob:
    movw $0x1234, %ax
    movw %ax, %ds
    int $0x21
    hlt
v86_cli:
    movw $0x4321, %bx
    cli
    hlt
v86_iret:
    movw $0x4322, %bx
    iret
v86_out:
    movw $0x4323, %bx
    outb %al, $0x80                  /* v8086: always the I/O bitmap (none) */
    hlt
v86_pushf:
    movw $0x4324, %bx
    pushf
    hlt
/* With CR4.VME (cases 118-128). */
v86_int21:
    int $0x21
    hlt
v86_int3:
    int3
    hlt
v86_hnd:                             /* 8086 handler for 0x21 and 3 in the IVT at 0 */
    popw %cx                         /* IP the INT pushed */
    popw %dx                         /* CS */
    popw %bx                         /* FLAGS image */
    hlt
v86_vif_ops:
    cli
    pushf
    popw %bx                         /* IF = VIF (0), IOPL = 3 */
    sti
    pushf
    popw %cx                         /* IF = VIF (1), IOPL = 3 */
    hlt
v86_sti:
    sti
    hlt
v86_popf_if:
    pushw $0x0200
    popf
    hlt
v86_popf_0:
    pushw $0x0000
    popf
    hlt
v86_popf_tf:
    pushw $0x0100
    popf
    hlt
v86_iret_vif:
    pushw $0x0201                    /* FLAGS: IF=1 (to VIF), CF=1 */
    pushw %cs
    pushw $v86_iret_target - v86_blob
    iret
    hlt
v86_iret_target:
    movw $0x4325, %bx
    hlt
v86_blob_end:
    .code32

/*
 * v8086 mode extensions and protected-mode virtual interrupts (SDM 3A
 * §20.3, §20.4; cases 118-131).  vme_setup sets CR4.VME, clears the
 * software interrupt redirection bitmap (TSS1 + 68h, below the I/O map base
 * 88h) and points IVT entries 3 and 0x21 at v86_hnd.  QEMU 7.2 TCG accepts
 * CR4.VME but ignores it (it does not implement VME): where the SDM result
 * differs from a CPU without VME, tests/boot/sysdiff.sh lists the case in
 * DEVIATIONS.
 */
vme_setup:
    movl %cr4, %eax
    orl $1, %eax                     /* VME */
    movl %eax, %cr4
    movl $8, %ecx
1:  movl $0, tss1 + 0x68 - 4(,%ecx,4)
    loop 1b
    movw $v86_hnd - v86_blob, 0x21 * 4
    movw $V86BASE >> 4, 0x21 * 4 + 2
    movw $v86_hnd - v86_blob, 3 * 4
    movw $V86BASE >> 4, 3 * 4 + 2
    ret
c_vme_int_redirect_iopl0:
    call vme_setup                   /* method 6: bit clear, IOPL 0 */
    movl $v86_int21 - v86_blob, %esi
    movl $0xa0102, %edi              /* VM, VIF, TF */
    jmp v86_enter
c_vme_int_bitset_iopl0:
    call vme_setup                   /* method 3: bit set, IOPL 0 */
    orb $0x02, tss1 + 0x68 + 4       /* bit 0x21 */
    movl $v86_int21 - v86_blob, %esi
    movl $0xa0002, %edi              /* VM, VIF */
    jmp v86_enter
c_vme_int_redirect_iopl3:
    call vme_setup                   /* method 5: bit clear, IOPL 3 */
    movl $v86_int21 - v86_blob, %esi
    movl $0xa3002, %edi              /* VM, VIF, IOPL 3 */
    jmp v86_enter
c_vme_int_bitset_iopl3:
    call vme_setup                   /* method 4: bit set, IOPL 3 */
    orb $0x02, tss1 + 0x68 + 4
    movl $v86_int21 - v86_blob, %esi
    movl $0xa3002, %edi
    jmp v86_enter
c_vme_int3:
    call vme_setup                   /* INT3 is not INT n: IDT, gate DPL 0 */
    movl $v86_int3 - v86_blob, %esi
    movl $0xa0002, %edi
    jmp v86_enter
c_vme_cli_sti_pushf:
    call vme_setup
    movl $v86_vif_ops - v86_blob, %esi
    movl $0xa0002, %edi              /* VM, VIF */
    jmp v86_enter
c_vme_sti_vip:
    call vme_setup
    movl $v86_sti - v86_blob, %esi
    movl $0x120002, %edi             /* VM, VIP */
    jmp v86_enter
c_vme_popf_if_vip:
    call vme_setup
    movl $v86_popf_if - v86_blob, %esi
    movl $0x120002, %edi             /* VM, VIP */
    jmp v86_enter
c_vme_popf_0_vip:
    call vme_setup
    movl $v86_popf_0 - v86_blob, %esi
    movl $0x1a0002, %edi             /* VM, VIF, VIP */
    jmp v86_enter
c_vme_popf_tf:
    call vme_setup
    movl $v86_popf_tf - v86_blob, %esi
    movl $0x20002, %edi              /* VM */
    jmp v86_enter
c_vme_iret:
    call vme_setup
    movl $v86_iret_vif - v86_blob, %esi
    movl $0x20002, %edi
    jmp v86_enter
c_pvi_cli_sti:
    movl %cr4, %eax
    orl $2, %eax                     /* PVI */
    movl %eax, %cr4
    movl $r3_pvi_cli_sti, %esi
    movl $0x80002, %edi              /* VIF, IOPL 0 */
    jmp enter_ring3
r3_pvi_cli_sti:
    cli
    pushfl
    popl %ebx                        /* PUSHF ignores PVI: IF (0) and VIF (0) as they are */
    sti
    pushfl
    popl %ecx
    hlt
c_pvi_sti_vip:
    movl %cr4, %eax
    orl $2, %eax
    movl %eax, %cr4
    movl $r3_pvi_sti, %esi
    movl $0x100002, %edi             /* VIP */
    jmp enter_ring3
r3_pvi_sti:
    sti
    hlt
c_cr4_vme_pvi:
    movl $3, %eax                    /* VME | PVI */
    movl %eax, %cr4
    movl %cr4, %eax
    ret

/* ---------------------------------------------------------------- data */

    .section .rodata
    .align 4
    .macro CASE fn, name, need=0
    .section .rodata
    .long \fn, 1f
    .section .rodata.need, "a"
    .byte \need
    .section .rodata.str, "a"
1:  .asciz "\name"
    .endm

    /* The case table: case NN is the NN-th entry.  Append new cases at the
       end: tests/boot/sysdiff.sh (DEVIATIONS) refers to cases by number. */
    .section .rodata.need, "a"
case_need:
    .section .rodata
case_table:
    CASE c_ss_null,          "ring0 mov ss,0 (null selector)"
    CASE c_ds_past_limit,    "ring0 mov ds,0x0ff8 (beyond GDT limit)"
    CASE c_ds_notpresent,    "ring0 mov ds,0x38 (data segment not present)"
    CASE c_ds_tss,           "ring0 mov ds,0x28 (TSS descriptor)"
    CASE c_ds_execonly,      "ring0 mov ds,0x48 (execute-only code)"
    CASE c_ss_readonly,      "ring0 mov ss,0x40 (read-only data)"
    CASE c_ss_notpresent,    "ring0 mov ss,0x38 (not present)"
    CASE c_ss_code,          "ring0 mov ss,0x08 (code segment)"
    CASE c_ds_rpl3_dpl0,     "ring0 mov ds,0x13 (RPL3 > DPL0)"
    CASE c_limit_read,       "ring0 es=limit 0xfff; mov es:0x1000,eax"
    CASE c_limit_straddle,   "ring0 es=limit 0xfff; dword read at es:0xffe"
    CASE c_expdown_low,      "ring0 es=expand-down limit 0xfff; read es:0x800"
    CASE c_expdown_high,     "ring0 es=expand-down limit 0xfff; read es:0x380000"
    CASE c_write_readonly,   "ring0 es=read-only data; write"
    CASE c_read_execonly,    "ring0 cs=execute-only; read cs:mem"
    CASE c_div0,             "ring0 div by zero"
    CASE c_ud2,              "ring0 ud2"
    CASE c_bound,            "ring0 bound eax=11 over [0,10]"
    CASE c_into,             "ring0 add overflow; into"
    CASE c_int3,             "ring0 int3"
    CASE c_int_notpresent,   "ring0 int 0x82 (gate not present)"
    CASE c_int_idt_limit,    "ring0 lidt limit 0x3ff; int 0x80"
    CASE c_r3_int80,         "iret to ring3 with ds=es=0x10 fs=gs=0x23; int 0x80"
    CASE c_r3_int_dpl0,      "ring3 int 0x81 (gate DPL0)"
    CASE c_r3_load_kdata,    "ring3 mov ds,0x13 (DPL0 data)"
    CASE c_r3_cli,           "ring3 cli with IOPL0"
    CASE c_r3_out,           "ring3 out 0x80 with IOPL0, no I/O bitmap"
    CASE c_r3_hlt,           "ring3 hlt"
    CASE c_r3_movcr0,        "ring3 mov cr0,ebx"
    CASE c_r3_stack_limit,   "ring3 ss=limit 0xfff, esp=0x1002; push"
    CASE c_r3_iopl3,         "ring3 IOPL3: cli; pushf; in 0x80; int 0x80"
    CASE c_callgate0,        "ring3 lcall call gate (0 params) to ring0"
    CASE c_callgate2,        "ring3 lcall call gate (2 params) to ring0"
    CASE c_callgate_dpl0,    "ring3 lcall call gate DPL0"
    CASE c_r3_ac,            "ring3 CR0.AM+EFLAGS.AC misaligned dword read"
    CASE c_r3_far_ret_kernel, "ring3 lret to ring0 code selector"
    CASE c_v86_int_iopl0,    "v8086 IOPL0: mov ds,0x1234; int 0x21"
    CASE c_v86_int_iopl3,    "v8086 IOPL3: mov ds,0x1234; int 0x21 (IDT gate DPL3)"
    CASE c_v86_cli_iopl0,    "v8086 IOPL0: cli"
    CASE c_pf_read_np,       "paging32 ring0 read not-present"
    CASE c_pf_write_np,      "paging32 ring0 write not-present"
    CASE c_pf_user_read_sup, "paging32 ring3 read supervisor page"
    CASE c_pf_user_write_ro, "paging32 ring3 write read-only user page"
    CASE c_pf_sup_write_ro_wp0, "paging32 ring0 write read-only page, WP=0"
    CASE c_pf_sup_write_ro_wp1, "paging32 ring0 write read-only page, WP=1"
    CASE c_pf_accessed_dirty, "paging32 accessed/dirty bits after read, write"
    CASE c_pf_user_fetch_sup, "paging32 ring3 call into supervisor page"
    CASE c_pf_user_write_np_pde, "paging32 ring3 write, PDE not present"
    CASE c_pse_4m,           "paging32 PSE 4MiB page read/write, A/D in PDE", F_PSE
    CASE c_pse_4m_user_write_ro, "paging32 PSE 4MiB read-only page, ring3 write", F_PSE
    CASE c_invlpg,           "paging32 change PTE; invlpg; read"
    CASE c_cr3_reload,       "paging32 clear PTE; reload cr3; read"
    CASE c_pae_read,         "PAE 4KiB page read, A bit", F_PAE
    CASE c_pae_rsvd_xd_nxe0, "PAE PTE bit 63 with EFER.NXE=0 (reserved)", F_PAE
    CASE c_pae_2m_rsvd,      "PAE 2MiB PDE with bit 13 set (reserved)", F_PAE
    CASE c_pae_2m_read,      "PAE 2MiB page read/write, A/D in PDE", F_PAE
    CASE c_pae_nx_fetch,     "PAE NX ring0 call into XD page", F_PAE | F_NX
    CASE c_pae_nx_clear_fetch, "PAE NXE=1 ring0 call into non-XD page", F_PAE | F_NX
    CASE c_pae_nx_user_fetch, "PAE NX ring3 read then call XD page", F_PAE | F_NX
    CASE c_pae_wp1,          "PAE WP=1 ring0 write read-only page", F_PAE
    CASE c_pae_user_read_sup, "PAE ring3 read supervisor page", F_PAE
    CASE c_task_jmp,         "ljmp to TSS descriptor (task switch) and back"
    CASE c_task_call_iret,   "lcall to TSS descriptor (nested task), iret back"
    CASE c_ss_rpl_ne_cpl,    "ring0 mov ss,0x13 (RPL != CPL)"
    CASE c_ldt,              "ring0 lldt; mov es,0x0c (LDT); mov ds,0x14 (past LDT limit)"
    CASE c_ldt_null,         "ring0 mov ds,0x04 (TI=1, null LDTR)"
    CASE c_lcall_np_code,    "ring0 lcall 0x60:0 (code not present)"
    CASE c_ljmp_data,        "ring0 ljmp 0x10:0 (data segment)"
    CASE c_ljmp_past_limit,  "ring0 ljmp to code limit 0xfff, offset 0x2000"
    CASE c_desc_accessed,    "ring0 mov es (descriptor A=0): accessed bit"
    CASE c_desc_accessed_cs, "ring0 ljmp (code descriptor A=0): accessed bit"
    CASE c_lar_lsl,          "ring0 lar/lsl/verr/verw on assorted selectors"
    CASE c_df_gp_np,         "#GP with its gate not present: #DF"
    CASE c_df_pf_gp,         "#PF with its gate selector bad: #DF"
    CASE c_ext_ud_np,        "ud2 with its gate not present: #NP with EXT"
    CASE c_int_wrong_gate_type, "ring0 int 0x83 (call gate in the IDT)"
    CASE c_int_gate_data_sel, "ring0 int 0x84 (gate selector is data)"
    CASE c_int_16bit_gate,   "ring0 int 0x85 (16-bit interrupt gate frame)"
    CASE c_single_step,      "ring0 popf TF=1; nop: single-step #DB"
    CASE c_r3_conforming,    "ring3 lcall conforming DPL0 code; int 0x80"
    CASE c_callgate_ret,     "ring3 call gate (2 params), ring0 ds=0x10, lret 8"
    CASE c_pf_pde_user0,     "paging32 ring3 read, PDE supervisor PTE user"
    CASE c_pf_pde_ro,        "paging32 ring3 write, PDE read-only PTE writable"
    CASE c_pf_sup_write_user_wp1, "paging32 WP=1 ring0 write user RW page"
    CASE c_v86_iret_iopl0,   "v8086 IOPL0: iret"
    CASE c_v86_out_iopl3,    "v8086 IOPL3: out 0x80 (no I/O bitmap)"
    CASE c_v86_pushf_iopl0,  "v8086 IOPL0: pushf"
    CASE c_lcall_past_limit, "ring0 lcall to code limit 0xfff, offset 0x2000"
    CASE c_cs_limit_near_jmp, "ring0 cs limit 0xf; jmp *eax (eax=0x20)"
    CASE c_cs_limit_fallthrough, "ring0 cs limit 3; run off the end of the segment"
    CASE c_rf_on_fault,      "ring0 ud2: RF in the pushed EFLAGS of a fault"
    CASE c_iret_ss_rpl,      "ring0 iret to cs=0x1b with ss=0x20 (RPL 0)"
    CASE c_iret_cs_rpl0,     "ring0 iret to cs=0x18 (RPL 0, DPL 3)"
    CASE c_r3_int_conforming, "ring3 int 0x86 (gate to conforming DPL0 code)"
    CASE c_ltr_busy,         "ring0 ltr 0x28 (busy TSS)"
    CASE c_lldt_not_ldt,     "ring0 lldt 0x10 (not an LDT descriptor)"
    CASE c_rep_stos_pf,      "paging32 rep stosb into a not-present page"
    CASE c_pge_toggle,       "paging32 global PTE changed; clear CR4.PGE; read", F_PGE
    CASE c_lret_ss_rpl,      "ring0 lret to cs=0x1b with ss=0x20 (RPL 0)"
    CASE c_dr_exec_bp,       "ring0 DR0 instruction breakpoint: #DB fault"
    CASE c_dr_exec_rf,       "ring0 DR1 instruction breakpoint in a loop, handler sets RF"
    CASE c_dr_write_len1,    "ring0 DR0 write breakpoint LEN 1"
    CASE c_dr_write_len2,    "ring0 DR1 write breakpoint LEN 2, dword write overlapping"
    CASE c_dr_rw_len4,       "ring0 DR2 read/write breakpoint LEN 4, byte read"
    CASE c_dr_rw_len8,       "ring0 DR3 read/write breakpoint LEN 8, word write"
    CASE c_dr_gd,            "ring0 DR7.GD=1; mov dr0 (general detect)"
    CASE c_dr_alias,         "ring0 CR4.DE=0: mov dr5/dr4 alias DR7/DR6"
    CASE c_dr_alias_de,      "ring0 CR4.DE=1: mov dr4"
    CASE c_dr_r3,            "ring3 mov dr7"
    CASE c_dr_io,            "ring0 CR4.DE=1 I/O breakpoint LEN 4 at port 0x84; out 0x86"
    CASE c_dr_sstep_data,    "ring0 TF and a data breakpoint on one instruction"
    CASE c_dr_rep_movs,      "ring0 rep movsb hits a write breakpoint"
    CASE c_nmi_ipi,          "ring0 IF=0 NMI IPI to self; second NMI in the handler"
    CASE c_nmi_hlt,          "ring0 IF=0 hlt; PIT IRQ0 through LINT0 as NMI"
    CASE c_dr_task_switch,   "ring0 DR7 L0/G0/L1/G1/LE/GE; ljmp to a TSS and back"
    CASE c_sstep_rep_movs,   "ring0 popf TF=1; rep movsb (ecx=3): single step per iteration"
    CASE c_sstep_movss,      "ring0 popf TF=1; mov ss; mov: single step after mov ss"
    CASE c_vme_int_redirect_iopl0, "v8086 VME IOPL0 VIF=1 TF=1: int 0x21, redirection bit clear (method 6)"
    CASE c_vme_int_bitset_iopl0, "v8086 VME IOPL0: int 0x21, redirection bit set (method 3)"
    CASE c_vme_int_redirect_iopl3, "v8086 VME IOPL3 VIF=1: int 0x21, redirection bit clear (method 5)"
    CASE c_vme_int_bitset_iopl3, "v8086 VME IOPL3: int 0x21, redirection bit set (method 4)"
    CASE c_vme_int3,         "v8086 VME IOPL0: int3, redirection bit clear (not INT n)"
    CASE c_vme_cli_sti_pushf, "v8086 VME IOPL0 VIF=1: cli; pushf; sti; pushf"
    CASE c_vme_sti_vip,      "v8086 VME IOPL0 VIP=1: sti"
    CASE c_vme_popf_if_vip,  "v8086 VME IOPL0 VIP=1: popf of IF=1"
    CASE c_vme_popf_0_vip,   "v8086 VME IOPL0 VIF=1 VIP=1: popf of 0"
    CASE c_vme_popf_tf,      "v8086 VME IOPL0: popf of TF=1"
    CASE c_vme_iret,         "v8086 VME IOPL0: iret to FLAGS 0x0201"
    CASE c_pvi_cli_sti,      "ring3 PVI IOPL0 VIF=1: cli; pushf; sti; pushf"
    CASE c_pvi_sti_vip,      "ring3 PVI IOPL0 VIP=1: sti"
    CASE c_cr4_vme_pvi,      "ring0 mov cr4,3 (VME|PVI); mov eax,cr4"
    .section .rodata
case_table_end:
    .set NCASES, (case_table_end - case_table) / 8
    .section .rodata.need, "a"
case_need_end:
    .section .rodata

s_start:   .asciz "SYSDIFF-START"
s_done:    .asciz "SYSDIFF-DONE"
s_case:    .asciz "CASE "
s_nofeat:  .asciz "skipped (cpu lacks a needed feature)"
s_feat:    .asciz "FEAT"
s_pse:     .asciz " pse="
s_pae:     .asciz " pae="
s_nx:      .asciz " nx="
s_pge:     .asciz " pge="
s_nested:  .asciz "NESTED-EXCEPTION vec/err/eip "
s_vecnone: .asciz "vec=none"
s_vec:     .asciz "vec="
s_err:     .asciz " err="
s_eip:     .asciz " eip="
s_cs:      .asciz " cs="
s_efl:     .asciz " efl="
s_esp:     .asciz " esp="
s_ss:      .asciz " ss="
s_hesp:    .asciz " hesp="
s_dr6:     .asciz " dr6="
s_df_undef: .asciz " eip=(undefined) cs=(undefined)"
s_cr2:     .asciz " cr2="
s_ds:      .asciz " ds="
s_fs:      .asciz " fs="
s_gs:      .asciz " gs="
s_v86es:   .asciz " v86 es="
s_eax:     .asciz " eax="
s_ebx:     .asciz " ebx="
s_ecx:     .asciz " ecx="
s_edx:     .asciz " edx="
hexdigits: .ascii "0123456789abcdef"
    .align 4
magic:     .long 0xC0FFEE42
bound_pair: .long 0, 10
stub_table:
    .long stub_0, stub_1, stub_2, stub_3, stub_4, stub_5, stub_6, stub_7
    .long stub_8, stub_9, stub_10, stub_11, stub_12, stub_13, stub_14, stub_15
    .long stub_16, stub_17, stub_18, stub_19, stub_20, stub_21, stub_22, stub_23
    .long stub_24, stub_25, stub_26, stub_27, stub_28, stub_29, stub_30, stub_31
gdt_ptr:
    .word GDT_END - 1
    .long gdt
idt_ptr:
    .word 256 * 8 - 1
    .long idt
idt_small_ptr:
    .word 0x80 * 8 - 1
    .long idt

    .data
    .align 8
    /* Code/data descriptors start with the accessed bit set: only the two
       accessed-bit cases (FRESH) see who sets it. */
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff         /* 0x08 code, DPL0 */
    .quad 0x00cf93000000ffff         /* 0x10 data, DPL0 */
    .quad 0x00cffb000000ffff         /* 0x18 code, DPL3 */
    .quad 0x00cff3000000ffff         /* 0x20 data, DPL3 */
    .quad 0                          /* 0x28 TSS1 (built) */
    .quad 0                          /* 0x30 TSS2 (built) */
    .quad 0x00cf13000000ffff         /* 0x38 data, not present */
    .quad 0x00cf91000000ffff         /* 0x40 read-only data */
    .quad 0x00cf99000000ffff         /* 0x48 execute-only code */
    .quad 0x0040930000000fff         /* 0x50 data, limit 0xfff */
    .quad 0x0040970000000fff         /* 0x58 expand-down, limit 0xfff, B */
    .quad 0x00cf1b000000ffff         /* 0x60 code, not present */
    .quad 0x0040f30000000fff         /* 0x68 data DPL3, limit 0xfff */
    .quad 0                          /* 0x70 LDT (built) */
    .quad 0                          /* 0x78 call gate (built) */
    .quad 0                          /* 0x80 call gate (built) */
    .quad 0                          /* 0x88 call gate (built) */
    .quad 0x00cf9f000000ffff         /* 0x90 conforming code, DPL0 */
    .quad 0x00409b0000000fff         /* 0x98 code, limit 0xfff */
    .quad 0                          /* 0xa0 rewritten by a case */
    .quad 0                          /* 0xa8 call gate (built) */
    .align 8
ldt_table:
    .quad 0
    .quad 0x00cf93000000ffff         /* LDT selector 0x0c: data, DPL0 */
scratch:   .long 0x5c5c5c5c, 0x5d5d5d5d
    .align 16
dbgdata:   .space 16
db_count:  .long 0
db_dr6:    .long 0
db_efl:    .long 0
nmi_count: .long 0
nmi_inside: .long 0
nmi_efl:   .long 0
nmi_eip:   .long 0
t2_dr7:    .long 0

    .bss
    .align 4096
idt:        .space 256 * 8
tss1:       .space 0x88
            .align 16
tss2:       .space 0x68
            .align 16
init_cr0:   .long 0
features:   .long 0
cur_case:   .long 0
case_esp:   .long 0
case_resume_ptr: .long 0
exc_count:  .long 0
t2_tr:      .long 0
rec_vec:    .long 0
rec_err:    .long 0
rec_eip:    .long 0
rec_cs:     .long 0
rec_efl:    .long 0
rec_esp:    .long 0
rec_ss:     .long 0
rec_hesp:   .long 0
rec_cr2:    .long 0
rec_ds:     .long 0
rec_eax:    .long 0
rec_ebx:    .long 0
rec_ecx:    .long 0
rec_edx:    .long 0
rec_v86:    .long 0
rec_ves:    .long 0
rec_vds:    .long 0
rec_vfs:    .long 0
rec_vgs:    .long 0
rec_dr6:    .long 0
            .align 16
            .space 16384
stack_top:
            .space 4096
kstack0_top:
            .space 4096
r3stack_top:
            .space 4096
task2_stack_top:

/*
 * Kestrel's interrupt test kernel (Multiboot-1 ELF, GNU as, 32-bit, no libc).
 *
 * Exercises the PC interrupt path from the guest's side, the same way under
 * any engine (software CPU, KVM with its in-kernel irqchip, KVM with
 * kernel-irqchip=off and Kestrel's userspace PIC/PIT/IOAPIC/LAPIC, QEMU):
 *
 *   1. 8259 PIC (ICW1-4, IRQ0 -> vector 0x20) + 8254 PIT channel 0 in mode 2
 *      at ~100 Hz: 10 timer interrupts taken with STI/HLT; every HLT must
 *      end in an interrupt (wake-ups <= ticks), so HLT really waits.
 *   2. IA32_APIC_BASE (RDMSR 0x1b) reads 0xfee00900 on the BSP.
 *   3. Local APIC timer, periodic (SDM vol. 3A 10.5.4), vector 0x40, through
 *      the LAPIC MMIO page at 0xfee00000: 10 interrupts, EOI each.
 *   4. IOAPIC (82093AA): redirection entry of pin 2 (ISA IRQ0, the PIT, as
 *      the MP table/MADT override says) -> vector 0x90 to APIC 0, 8259 fully
 *      masked: 5 interrupts, and none through the 8259.
 *   5. TPR (SDM 10.8.3.1): with TPR = 0x70 a self-IPI of vector 0x61 stays
 *      pending while PIT/IOAPIC ticks (0x90) come through; TPR = 0 lets it in.
 *   6. TSC-deadline timer (SDM 10.5.4.1) if CPUID.1:ECX[24]: fires once at
 *      vector 0x41 and IA32_TSC_DEADLINE reads 0 afterwards.
 *   7. With "irqtest.smp" on the command line: INIT-SIPI-SIPI to APIC 1; the AP
 *      starts in real mode at 0x8000 (SIPI vector 8), enters protected
 *      mode, prints its APIC ID from its own LAPIC page, takes 10 interrupts
 *      of its own periodic LAPIC timer (vector 0x42) with STI/HLT while the
 *      BSP sleeps as well, and sends a fixed IPI (vector 0x62) to the BSP.
 *
 *   8. With "irqtest.reboot": after the checks, a hard reset through the
 *      PIIX3 reset control register (0xcf9); the second boot (told apart by
 *      a CMOS NVRAM byte) runs every check again, prints "reboot: ok".
 *
 * Prints one line per check on COM1 ("pit: ok ticks=10", ... or
 * "<what>: FAIL ..."), then IRQTEST-DONE and writes isa-debug-exit (port
 * 0xf4): 0x10 (QEMU exit status 0x21) when everything passed, 0x01 (status
 * 3) otherwise.  Unexpected vectors and exceptions print and fail at once.
 * Built by tests/guests/irq-test; run by tests/boot/irq-test.sh.
 */
    .set MB_MAGIC,      0x1BADB002
    .set MB_FLAGS,      (1 << 0) | (1 << 1)

    .set COM1,          0x3f8
    .set UART_LSR_THRE, 0x20
    .set DEBUG_EXIT,    0xf4

    .set PIC1_CMD,      0x20
    .set PIC1_DATA,     0x21
    .set PIC2_CMD,      0xa0
    .set PIC2_DATA,     0xa1
    .set PIT_CH0,       0x40
    .set PIT_MODE,      0x43
    .set PIT_DIVISOR,   11932            /* 1193182 Hz / 11932 = ~100 Hz */

    .set LAPIC,         0xfee00000
    .set LAPIC_ID,      LAPIC + 0x20
    .set LAPIC_TPR,     LAPIC + 0x80
    .set LAPIC_EOI,     LAPIC + 0xb0
    .set LAPIC_SVR,     LAPIC + 0xf0
    .set LAPIC_ICR_LO,  LAPIC + 0x300
    .set LAPIC_ICR_HI,  LAPIC + 0x310
    .set LAPIC_LVT_TMR, LAPIC + 0x320
    .set LAPIC_TMR_ICR, LAPIC + 0x380
    .set LAPIC_TMR_DCR, LAPIC + 0x3e0
    .set LVT_MASKED,    1 << 16
    .set LVT_PERIODIC,  1 << 17
    .set LVT_TSC_DEADLINE, 2 << 17

    .set IOAPIC_SEL,    0xfec00000
    .set IOAPIC_WIN,    0xfec00010

    .set VEC_PIT,       0x20
    .set VEC_PIC_SPUR,  0x27
    .set VEC_LAPIC_TMR, 0x40
    .set VEC_TSC_DL,    0x41
    .set VEC_SELF_IPI,  0x61
    .set VEC_AP_IPI,    0x62
    .set VEC_AP_TIMER,  0x42
    .set VEC_IOAPIC,    0x90
    .set VEC_SPURIOUS,  0xff

    .set AP_TRAMPOLINE, 0x8000           /* SIPI vector 0x08 */
    .set CMOS_FLAG,     0x7d             /* NVRAM byte no firmware of ours uses */

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
    movl %eax, saved_eax
    movl %ebx, saved_ebx
    lgdt gdt_ptr
    ljmp $0x08, $1f
1:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    call uart_init
    call idt_init
    movl $s_hello, %esi
    call puts

    call test_pit
    call test_apicbase
    call test_lapic_timer
    call test_ioapic
    call test_tpr
    call test_tsc_deadline
    movl $s_smp_token, %edi
    call cmdline_has
    testl %eax, %eax
    jz 1f
    call test_smp
1:
    movl $s_reboot_token, %edi
    call cmdline_has
    testl %eax, %eax
    jz 3f
    /* Second boot? A CMOS byte survives the reset (MC146818 NVRAM). */
    movb $CMOS_FLAG, %al
    outb %al, $0x70
    inb $0x71, %al
    cmpb $0xa5, %al
    je 2f
    movb $CMOS_FLAG, %al
    outb %al, $0x70
    movb $0xa5, %al
    outb %al, $0x71
    movl $s_rebooting, %esi
    call puts
    movb $0x06, %al                  /* PIIX3 RC: SYS_RST | RST_CPU, a hard reset */
    movw $0xcf9, %dx
    outb %al, %dx
    cli
    hlt
2:
    movb $CMOS_FLAG, %al
    outb %al, $0x70
    xorb %al, %al
    outb %al, $0x71
    movl $s_reboot_ok, %esi
    call puts
3:
    movl $s_done, %esi
    call puts
    movl $0x10, %eax
    cmpl $0, failures
    je exit
    movl $0x01, %eax
exit:
    movw $DEBUG_EXIT, %dx
    outb %al, %dx
    cli
2:
    hlt
    jmp 2b

/* ---- 1. PIC + PIT ---- */
test_pit:
    /* ICW1: edge, cascade, ICW4 needed; ICW2: vector bases 0x20/0x28;
     * ICW3: slave on IR2 / slave id 2; ICW4: 8086 mode (8259A datasheet). */
    movb $0x11, %al
    outb %al, $PIC1_CMD
    outb %al, $PIC2_CMD
    movb $0x20, %al
    outb %al, $PIC1_DATA
    movb $0x28, %al
    outb %al, $PIC2_DATA
    movb $0x04, %al
    outb %al, $PIC1_DATA
    movb $0x02, %al
    outb %al, $PIC2_DATA
    movb $0x01, %al
    outb %al, $PIC1_DATA
    outb %al, $PIC2_DATA
    movb $0xfe, %al                  /* OCW1: only IRQ0 */
    outb %al, $PIC1_DATA
    movb $0xff, %al
    outb %al, $PIC2_DATA
    call pit_start

    /* Every HLT must end in an interrupt: count the wake-ups. */
    movl $0, hlt_wakeups
1:
    cli
    cmpl $10, pit_count
    jae 2f
    sti
    hlt
    incl hlt_wakeups
    jmp 1b
2:
    sti
    movl $s_pit_ok, %esi
    call puts_nonl
    movl pit_count, %eax
    call putdec
    call newline
    movl hlt_wakeups, %eax
    cmpl pit_count, %eax
    ja 3f
    movl $s_hlt_ok, %esi
    call puts
    ret
3:
    movl $s_hlt_fail, %esi
    call puts_nonl
    movl hlt_wakeups, %eax
    call putdec
    call newline
    incl failures
    ret

/* PIT channel 0, lobyte/hibyte, mode 2 (rate generator), ~100 Hz. */
pit_start:
    movb $0x34, %al
    outb %al, $PIT_MODE
    movb $(PIT_DIVISOR & 0xff), %al
    outb %al, $PIT_CH0
    movb $(PIT_DIVISOR >> 8), %al
    outb %al, $PIT_CH0
    ret

/* ---- 2. IA32_APIC_BASE ---- */
test_apicbase:
    movl $0x1b, %ecx
    rdmsr
    pushl %eax
    movl $s_apicbase, %esi
    call puts_nonl
    popl %eax
    call puthex
    call newline
    ret

/* ---- 3. LAPIC timer, periodic ---- */
test_lapic_timer:
    movb $0xff, %al                  /* the 8259 stays out of the way from here on */
    outb %al, $PIC1_DATA
    movl $(0x100 | VEC_SPURIOUS), LAPIC_SVR    /* APIC software enable */
    movl $0x3, LAPIC_TMR_DCR                    /* divide by 16 */
    movl $(VEC_LAPIC_TMR | LVT_PERIODIC), LAPIC_LVT_TMR
    movl $200000, LAPIC_TMR_ICR                 /* ~3.2 ms at QEMU's 1 GHz bus */
1:
    cli
    cmpl $10, lapic_count
    jae 2f
    sti
    hlt
    jmp 1b
2:
    movl $(VEC_LAPIC_TMR | LVT_MASKED), LAPIC_LVT_TMR
    movl $0, LAPIC_TMR_ICR
    sti
    movl $s_lapic_ok, %esi
    call puts_nonl
    movl $10, %eax
    call putdec
    call newline
    ret

/* ---- 4. IOAPIC ---- */
test_ioapic:
    movl pit_count, %eax
    movl %eax, pit_before
    movl $0x15, IOAPIC_SEL           /* pin 2, high dword: destination APIC 0 */
    movl $0, IOAPIC_WIN
    movl $0x14, IOAPIC_SEL           /* pin 2, low dword: fixed, physical, edge, unmasked */
    movl $VEC_IOAPIC, IOAPIC_WIN
1:
    cli
    cmpl $5, ioapic_count
    jae 2f
    sti
    hlt
    jmp 1b
2:
    sti
    movl pit_count, %eax
    cmpl pit_before, %eax
    jne 3f
    movl $s_ioapic_ok, %esi
    call puts_nonl
    movl $5, %eax
    call putdec
    call newline
    ret
3:
    movl $s_ioapic_pic, %esi
    call puts
    incl failures
    ret

/* ---- 5. TPR ---- */
test_tpr:
    movl $0x70, LAPIC_TPR
    movl $0, LAPIC_ICR_HI
    movl $(VEC_SELF_IPI | (1 << 18)), LAPIC_ICR_LO   /* fixed, shorthand self */
    movl ioapic_count, %ebx
    addl $3, %ebx
1:
    cli
    cmpl %ebx, ioapic_count
    jae 2f
    sti
    hlt
    jmp 1b
2:
    sti
    cmpl $0, self_ipi_count
    jne 5f                           /* delivered through a TPR that masks it */
    movl $0, LAPIC_TPR
    movl ioapic_count, %ebx
    addl $3, %ebx
3:
    cli
    cmpl $0, self_ipi_count
    jne 4f
    cmpl %ebx, ioapic_count
    jae 6f
    sti
    hlt
    jmp 3b
4:
    sti
    movl $s_tpr_ok, %esi
    call puts
    ret
5:
    movl $s_tpr_early, %esi
    call puts
    incl failures
    ret
6:
    sti
    movl $s_tpr_lost, %esi
    call puts
    incl failures
    ret

/* ---- 6. TSC-deadline ---- */
test_tsc_deadline:
    movl $1, %eax
    cpuid
    testl $(1 << 24), %ecx
    jnz 1f
    movl $s_tscdl_none, %esi
    call puts
    ret
1:
    movl $(VEC_TSC_DL | LVT_TSC_DEADLINE), LAPIC_LVT_TMR
    rdtsc
    addl $2000000, %eax              /* a couple of ms at any plausible TSC rate */
    adcl $0, %edx
    movl $0x6e0, %ecx
    wrmsr
    movl ioapic_count, %ebx
    addl $200, %ebx                  /* give up after ~2 s of PIT ticks */
2:
    cli
    cmpl $0, tscdl_count
    jne 3f
    cmpl %ebx, ioapic_count
    jae 4f
    sti
    hlt
    jmp 2b
3:
    sti
    movl $0x6e0, %ecx
    rdmsr
    orl %edx, %eax
    jnz 5f                           /* SDM 10.5.4.1: the MSR clears when it fires */
    movl $s_tscdl_ok, %esi
    call puts
    jmp 6f
4:
    sti
    movl $s_tscdl_lost, %esi
    call puts
    incl failures
    jmp 6f
5:
    movl $s_tscdl_msr, %esi
    call puts
    incl failures
6:
    movl $(VEC_LAPIC_TMR | LVT_MASKED), LAPIC_LVT_TMR
    ret

/* ---- 7. SMP: INIT-SIPI-SIPI (Intel MP spec B.4) ---- */

/* eax = 1 if the Multiboot command line contains the string at edi. */
cmdline_has:
    pushl %ebx
    pushl %ecx
    pushl %edx
    pushl %esi
    pushl %edi
    movl %edi, %ebp
    xorl %eax, %eax
    cmpl $0x2BADB002, saved_eax
    jne 4f
    movl saved_ebx, %ebx
    testl $(1 << 2), (%ebx)
    jz 4f
    movl 16(%ebx), %edx              /* cmdline */
    movl $4096, %ecx                 /* a missing NUL must not run away */
1:
    cmpb $0, (%edx)
    je 4f
    movl %edx, %esi
    movl %ebp, %edi
2:
    movb (%edi), %bl
    testb %bl, %bl
    jz 3f                            /* whole token matched */
    cmpb (%esi), %bl
    jne 5f
    incl %esi
    incl %edi
    jmp 2b
5:
    incl %edx
    loop 1b
    jmp 4f
3:
    movl $1, %eax
4:
    popl %edi
    popl %esi
    popl %edx
    popl %ecx
    popl %ebx
    ret

test_smp:
    /* The trampoline goes below 1 MiB, where a SIPI can start it. */
    movl $ap_tramp, %esi
    movl $AP_TRAMPOLINE, %edi
    movl $(ap_tramp_end - ap_tramp), %ecx
    cld
    rep movsb

    movl $(1 << 24), LAPIC_ICR_HI
    movl $0x4500, LAPIC_ICR_LO       /* INIT, level assert */
    movl $2, %ecx
    call wait_ticks                  /* >= 10 ms */
    movl $(1 << 24), LAPIC_ICR_HI
    movl $0x8500, LAPIC_ICR_LO       /* INIT level de-assert */
    movl $(1 << 24), LAPIC_ICR_HI
    movl $(0x4600 | (AP_TRAMPOLINE >> 12)), LAPIC_ICR_LO    /* start-up */
    movl $1, %ecx
    call wait_ticks
    movl $(1 << 24), LAPIC_ICR_HI
    movl $(0x4600 | (AP_TRAMPOLINE >> 12)), LAPIC_ICR_LO    /* second start-up: ignored */

    movl ioapic_count, %ebx
    addl $1000, %ebx                 /* give up after ~10 s */
1:
    cli
    cmpl $0, ap_ipi_count
    jne 2f
    cmpl %ebx, ioapic_count
    jae 3f
    sti
    hlt
    jmp 1b
2:
    sti
    cmpl $1, ap_alive
    jne 3f
    cmpl $1, ap_apic_id
    jne 4f
    movl $s_smp_ok, %esi
    call puts
    ret
3:
    sti
    movl $s_smp_timeout, %esi
    call puts_nonl
    movl ap_alive, %eax
    call putdec
    call newline
    incl failures
    ret
4:
    movl $s_smp_id, %esi
    call puts_nonl
    movl ap_apic_id, %eax
    call putdec
    call newline
    incl failures
    ret

/* wait_ticks(ecx): sleep until ecx more IOAPIC/PIT ticks have come. */
wait_ticks:
    addl ioapic_count, %ecx
1:
    cli
    cmpl %ecx, ioapic_count
    jae 2f
    sti
    hlt
    jmp 1b
2:
    sti
    ret

/* Application processor: copied to AP_TRAMPOLINE, entered at CS = 0x800, IP = 0. */
    .code16
ap_tramp:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_tramp_gdt_ptr - ap_tramp)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $ap_main
    .align 4
ap_tramp_gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
ap_tramp_end:

    .code32
ap_main:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $ap_stack_top, %esp
    movl LAPIC_ID, %eax              /* this CPU's own LAPIC page */
    shrl $24, %eax
    movl %eax, ap_apic_id
    movl $s_ap_hello, %esi
    call puts_nonl
    call putdec
    call newline
    lock incl ap_alive
    /* Its own periodic LAPIC timer, taken with STI/HLT while the BSP sleeps too. */
    lidt idt_ptr
    movl $(0x100 | VEC_SPURIOUS), LAPIC_SVR
    movl $0x3, LAPIC_TMR_DCR
    movl $(VEC_AP_TIMER | LVT_PERIODIC), LAPIC_LVT_TMR
    movl $200000, LAPIC_TMR_ICR
2:
    cli
    cmpl $10, ap_timer_count
    jae 3f
    sti
    hlt
    jmp 2b
3:
    movl $(VEC_AP_TIMER | LVT_MASKED), LAPIC_LVT_TMR
    movl $0, LAPIC_TMR_ICR
    movl $0, LAPIC_ICR_HI            /* fixed IPI to APIC 0, physical */
    movl $VEC_AP_IPI, LAPIC_ICR_LO
1:
    cli
    hlt
    jmp 1b

/* ---- interrupts ---- */

/* 256 stubs of 10 bytes: push $vector (68 imm32), jmp rel32 (e9). */
    .set vec, 0
isr_stubs:
    .rept 256
    .byte 0x68
    .long vec
    .byte 0xe9
    .long isr_common - (. + 4)
    .set vec, vec + 1
    .endr

idt_init:
    movl $idt, %edi
    movl $isr_stubs, %edx
    movl $256, %ecx
1:
    movl %edx, %eax
    movw %ax, 0(%edi)                /* offset 15:0 */
    movw $0x08, 2(%edi)              /* selector */
    movw $0x8e00, 4(%edi)            /* present, DPL 0, 32-bit interrupt gate */
    shrl $16, %eax
    movw %ax, 6(%edi)                /* offset 31:16 */
    addl $8, %edi
    addl $10, %edx
    loop 1b
    lidt idt_ptr
    ret

isr_common:
    pushal
    movl 32(%esp), %eax              /* the vector the stub pushed */
    cmpl $VEC_PIT, %eax
    je isr_pit
    cmpl $VEC_LAPIC_TMR, %eax
    je isr_lapic_timer
    cmpl $VEC_TSC_DL, %eax
    je isr_tsc_deadline
    cmpl $VEC_IOAPIC, %eax
    je isr_ioapic
    cmpl $VEC_SELF_IPI, %eax
    je isr_self_ipi
    cmpl $VEC_AP_IPI, %eax
    je isr_ap_ipi
    cmpl $VEC_AP_TIMER, %eax
    je isr_ap_timer
    cmpl $VEC_SPURIOUS, %eax
    je isr_return                    /* SDM 10.9: no EOI for the spurious vector */
    cmpl $VEC_PIC_SPUR, %eax
    je isr_return                    /* 8259 spurious IRQ7: no EOI either */
    /* Anything else: an exception or a vector nobody programmed. */
    pushl %eax
    movl $s_unexpected, %esi
    call puts_nonl
    popl %eax
    call puthex
    call newline
    movl $0x01, %eax
    jmp exit

isr_pit:
    incl pit_count
    movb $0x20, %al                  /* OCW2 non-specific EOI */
    outb %al, $PIC1_CMD
    jmp isr_return
isr_lapic_timer:
    incl lapic_count
    jmp isr_lapic_eoi
isr_tsc_deadline:
    incl tscdl_count
    jmp isr_lapic_eoi
isr_ioapic:
    incl ioapic_count
    jmp isr_lapic_eoi
isr_self_ipi:
    incl self_ipi_count
    jmp isr_lapic_eoi
isr_ap_timer:
    incl ap_timer_count
    jmp isr_lapic_eoi
isr_ap_ipi:
    incl ap_ipi_count
isr_lapic_eoi:
    movl $0, LAPIC_EOI
isr_return:
    popal
    addl $4, %esp
    /*
     * Return like IRET to the same privilege level, without IRET: KVM's
     * instruction emulator cannot do a protected-mode IRET (em_iret), and
     * KVM without VT-x/AMD-V (PVM) emulates every instruction.  Stack:
     * EIP, CS, EFLAGS -> EFLAGS, EIP, (dropped); POPF then RET 4.  An
     * interrupt after the POPF nests harmlessly on the same stack.
     */
    pushl %eax
    movl 12(%esp), %eax              /* EFLAGS */
    xchgl %eax, 4(%esp)              /* EIP out, EFLAGS in its slot */
    movl %eax, 8(%esp)               /* EIP over CS */
    popl %eax
    popfl
    ret $4

/* ---- COM1 ---- */

    .include "uart16550.inc"

/* puthex(eax): 0x and 8 hex digits.  Keeps all registers. */
puthex:
    pushal
    movl %eax, %edx
    movb $'0', %al
    call putc
    movb $'x', %al
    call putc
    movl $8, %ecx
1:
    roll $4, %edx
    movl %edx, %eax
    andl $0xf, %eax
    movb hexdigits(%eax), %al
    call putc
    loop 1b
    popal
    ret

    .section .rodata
hexdigits:      .ascii "0123456789abcdef"
s_hello:        .asciz "IRQTEST-START"
s_done:         .asciz "IRQTEST-DONE"
s_pit_ok:       .asciz "pit: ok ticks="
s_hlt_ok:       .asciz "hlt: ok"
s_hlt_fail:     .asciz "hlt: FAIL more wake-ups than interrupts: "
s_apicbase:     .asciz "apicbase: "
s_lapic_ok:     .asciz "lapic-timer: ok ticks="
s_ioapic_ok:    .asciz "ioapic: ok ticks="
s_ioapic_pic:   .asciz "ioapic: FAIL the masked 8259 delivered IRQ0"
s_tpr_ok:       .asciz "tpr: ok"
s_tpr_early:    .asciz "tpr: FAIL vector 0x61 delivered while TPR was 0x70"
s_tpr_lost:     .asciz "tpr: FAIL vector 0x61 not delivered after TPR went to 0"
s_tscdl_none:   .asciz "tsc-deadline: not advertised"
s_tscdl_ok:     .asciz "tsc-deadline: ok"
s_tscdl_lost:   .asciz "tsc-deadline: FAIL no interrupt"
s_tscdl_msr:    .asciz "tsc-deadline: FAIL IA32_TSC_DEADLINE not 0 after firing"
s_smp_ok:       .asciz "smp: ok"
s_smp_timeout:  .asciz "smp: FAIL no IPI from the AP; ap_alive="
s_smp_id:       .asciz "smp: FAIL AP read APIC ID "
s_ap_hello:     .asciz "ap: hello from apic id "
s_smp_token:    .asciz "irqtest.smp"
s_reboot_token: .asciz "irqtest.reboot"
s_rebooting:    .asciz "reboot: resetting the machine"
s_reboot_ok:    .asciz "reboot: ok, second boot"
s_unexpected:   .asciz "FAIL unexpected vector "

    .data
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff         /* 0x08: code, base 0, 4 GiB, 32-bit */
    .quad 0x00cf92000000ffff         /* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
idt_ptr:
    .word 256 * 8 - 1
    .long idt

    .bss
    .align 16
saved_eax:      .long 0
saved_ebx:      .long 0
failures:       .long 0
pit_count:      .long 0
pit_before:     .long 0
hlt_wakeups:    .long 0
lapic_count:    .long 0
tscdl_count:    .long 0
ioapic_count:   .long 0
self_ipi_count: .long 0
ap_ipi_count:   .long 0
ap_alive:       .long 0
ap_apic_id:     .long 0
ap_timer_count: .long 0
    .align 16
idt:            .space 256 * 8
    .align 16
                .space 8192
stack_top:
                .space 4096
ap_stack_top:

/*
 * kvm-vs-tcg probe: a Multiboot-1 kernel (GNU as, 32-bit) whose output must
 * be the same whichever accelerator runs it, because every value it prints
 * comes from Kestrel's device model or guest RAM, not from the CPU engine.
 * tests/boot/kvm-nested-probe.sh runs it with -accel tcg on the host and
 * -accel kvm in the nested L1 guest and compares the two outputs byte for
 * byte.  It exercises the accelerator's exit paths: port I/O of each size,
 * string port I/O (rep outsb / rep insb: one KVM exit with count > 1), MMIO
 * reads and writes to unassigned space, RAM just below and beyond the end
 * of -m, then a triple fault (with -no-reboot: exit status 0).
 *
 * Output goes to the debug console (port 0xe9, -debugcon), one line:
 *   A rep-outsb-ok io=B,W,L mmio=B,W,L wr=L ins=L cmos=A,B kbc=S w16=BC
 *   pci=L ram=SUM end=L past=L
 * (Multiboot Specification 0.6.96 §3.1 header, §3.2 machine state.)
 */
    .set DBG,         0xe9
    .set UNUSED_PORT, 0x1234
    .set UNUSED_MMIO, 0xd0000000
    .set RAM_LO,      0x200000        /* checksum window: 2 MiB .. 3 MiB */
    .set RAM_HI,      0x300000
    .set RAM_END,     0x4000000       /* -m 64 */

    .text
    .code32
    .align 4
mb_header:
    .long 0x1BADB002, 0x00000003, -(0x1BADB002 + 3)

    .globl _start
_start:
    cli
    mov $stack_top, %esp
    cld
    mov $DBG, %dx
    mov $'A', %al
    out %al, %dx
    call space
    lea msg_outs, %esi
    mov $(msg_outs_end - msg_outs), %ecx
    mov $DBG, %dx
    rep outsb

    lea s_io, %esi                  /* unassigned port, 1/2/4 bytes */
    call puts
    mov $UNUSED_PORT, %dx
    in %dx, %al
    call hex8
    call comma
    mov $UNUSED_PORT, %dx
    in %dx, %ax
    call hex16
    call comma
    mov $UNUSED_PORT, %dx
    in %dx, %eax
    call hex32

    lea s_mmio, %esi                /* unassigned MMIO, 1/2/4 bytes */
    call puts
    movzbl UNUSED_MMIO, %eax
    call hex8
    call comma
    movzwl UNUSED_MMIO, %eax
    call hex16
    call comma
    mov UNUSED_MMIO, %eax
    call hex32

    lea s_wr, %esi                  /* a write there is dropped */
    call puts
    movl $0x12345678, UNUSED_MMIO
    mov UNUSED_MMIO, %eax
    call hex32

    lea s_ins, %esi                 /* rep insb from the unassigned port */
    call puts
    lea buf, %edi
    mov $UNUSED_PORT, %dx
    mov $4, %ecx
    rep insb
    mov buf, %eax
    call hex32

    lea s_cmos, %esi                /* MC146818 status A (less UIP) and B */
    call puts
    mov $0x0a, %al
    out %al, $0x70
    in $0x71, %al
    and $0x7f, %al
    call hex8
    call comma
    mov $0x0b, %al
    out %al, $0x70
    in $0x71, %al
    call hex8

    lea s_kbc, %esi                 /* 8042 status register */
    call puts
    in $0x64, %al
    call hex8

    lea s_w16, %esi                 /* 16-bit write to the debug port */
    call puts
    mov $DBG, %dx
    mov $0x4342, %ax
    out %ax, %dx

    lea s_pci, %esi                 /* PCI configuration mechanism #1 address */
    call puts
    mov $0x0cf8, %dx
    mov $0x80000000, %eax
    out %eax, %dx
    in %dx, %eax
    call hex32

    lea s_ram, %esi                 /* fill 1 MiB of RAM, read it back summed */
    call puts
    mov $RAM_LO, %edi
    mov $0x9e3779b9, %eax
1:  mov %eax, (%edi)
    rol $5, %eax
    add %edi, %eax
    add $4, %edi
    cmp $RAM_HI, %edi
    jb 1b
    mov $RAM_LO, %esi
    xor %eax, %eax
2:  add (%esi), %eax
    rol $1, %eax
    add $4, %esi
    cmp $RAM_HI, %esi
    jb 2b
    call hex32

    lea s_end, %esi                 /* last dword of RAM and the one past it */
    call puts
    movl $0xcafef00d, RAM_END - 4
    mov RAM_END - 4, %eax
    call hex32
    lea s_past, %esi
    call puts
    mov RAM_END, %eax
    call hex32

    mov $'\n', %al
    mov $DBG, %dx
    out %al, %dx

    lidt idt_null                   /* no IDT: int3 -> #GP -> #DF -> shutdown */
    int3
3:  hlt
    jmp 3b

/* puts: print the NUL-terminated string at %esi. */
puts:
    push %eax
    push %edx
    mov $DBG, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  pop %edx
    pop %eax
    ret

space:
    push %eax
    mov $' ', %al
    jmp putc_pop
comma:
    push %eax
    mov $',', %al
putc_pop:
    push %edx
    mov $DBG, %dx
    out %al, %dx
    pop %edx
    pop %eax
    ret

/* hex32/hex16/hex8: print the low 32/16/8 bits of %eax, preserving it. */
hex32:
    push %eax
    shr $16, %eax
    call hex16
    pop %eax
hex16:
    push %eax
    shr $8, %eax
    call hex8
    pop %eax
hex8:
    push %eax
    push %edx
    push %eax
    shr $4, %al
    call nibble
    pop %eax
    call nibble
    pop %edx
    pop %eax
    ret
nibble:
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 1f
    add $('A' - '9' - 1), %al
1:  mov $DBG, %dx
    out %al, %dx
    ret

    .data
msg_outs:   .ascii "rep-outsb-ok"
msg_outs_end:
s_io:       .asciz " io="
s_mmio:     .asciz " mmio="
s_wr:       .asciz " wr="
s_ins:      .asciz " ins="
s_cmos:     .asciz " cmos="
s_kbc:      .asciz " kbc="
s_w16:      .asciz " w16="
s_pci:      .asciz " pci="
s_ram:      .asciz " ram="
s_end:      .asciz " end="
s_past:     .asciz " past="
    .align 4
idt_null:   .word 0
            .long 0
buf:        .long 0x5a5a5a5a

    .bss
    .align 16
    .space 4096
stack_top:

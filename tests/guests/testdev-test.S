/*
 * Conformance test kernel for QEMU's test devices, run with exactly the
 * command-line shape kvm-unit-tests uses (tests/boot/testdev-conformance.sh):
 *   -nodefaults -vnc none -serial stdio -device pc-testdev
 *   -device isa-debug-exit,iobase=0xf4,iosize=0x4 -device pci-testdev
 *   -machine accel=tcg -kernel THIS -initrd MODULE -smp 1 -cpu qemu64,+popcnt
 *
 * Multiboot-1 (Specification 0.6.96 §3.1-3.3), 32-bit protected mode, no
 * paging, interrupts off.  Each check prints "ok NAME" or "FAIL NAME" on
 * COM1; then "TESTDEV-DONE fails=<mask>" and a write of the result to
 * isa-debug-exit, so the process exit status is (v << 1) | 1 with v = 0
 * when every check passed (status 1, kvm-unit-tests' PASS) and v != 0
 * otherwise (bits 0-5 = checks 0-5, bit 6 = any later check).
 *
 * Checks, in order (bit numbers):
 *   0 magic        EAX = 0x2BADB002
 *   1 latch        pc-testdev 0xE0 32-bit latch, 0xE8 byte window
 *   2 flush        pc-testdev 0xE4 page flush keeps RAM; reads 0
 *   3 iomem        pc-testdev 64 KiB RAM-like MMIO at 0xFF000000
 *   4 pci-find     1B36:0005 on bus 0 (config mechanism #1), class 00FF00
 *   5 pci-bars     BAR0 sizes to 4 KiB memory, BAR1 to 256 bytes of I/O;
 *                  both mapped (the firmware's addresses when it assigned
 *                  them, printed as bars=firmware; else ours, bars=kernel)
 *   6 pci-mmio     kvm-unit-tests' walk of the test table through BAR0: three
 *                  tests; 16 byte writes of data at offset count 16 for
 *                  no-eventfd and 0 for the eventfd tests (QEMU's counts)
 *   7 pci-portio   the same through BAR1
 *   8 module       one Multiboot module whose bytes are MODULE_TEXT
 *   9 cpuid        -cpu qemu64,+popcnt: signature 0x00060FB1, POPCNT set
 *  10 irq-line     pc-testdev 0x2005 raises/lowers IRQ 5: master 8259 IRR
 *                  bit 5 follows it in level mode (ELCR)
 */
    .set MB_MAGIC,          0x1BADB002
    .set MB_FLAGS,          (1 << 0) | (1 << 1)     /* page-align, memory info */
    .set MB_BOOT_MAGIC,     0x2BADB002
    .set MBI_FLAG_MODS,     1 << 3

    .set DEBUG_EXIT,        0xf4

    /* pc-testdev */
    .set TESTDEV_IOPORT,    0xe0
    .set TESTDEV_FLUSH,     0xe4
    .set TESTDEV_IOPORT_BYTE, 0xe8
    .set TESTDEV_IRQ_LINE,  0x2000
    .set TESTDEV_IOMEM,     0xff000000

    /* PCI configuration mechanism #1 and the type 0 header */
    .set PCI_CONFADD,       0xcf8
    .set PCI_CONFDATA,      0xcfc
    .set PCI_ENABLE,        0x80000000
    .set PCI_COMMAND,       0x04
    .set PCI_REVISION,      0x08
    .set PCI_BAR0,          0x10
    .set PCI_BAR1,          0x14
    .set PCI_CMD_IO_MEM,    0x3

    /* pci-testdev */
    .set PCI_TESTDEV_ID,    0x00051b36
    .set HDR_TEST,          0
    .set HDR_WIDTH,         1
    .set HDR_OFFSET,        4
    .set HDR_DATA,          8
    .set HDR_COUNT,         12
    .set HDR_NAME,          16
    .set NR_WRITES,         16
    /* Where we map the BARs when no firmware did (-kernel without a BIOS). */
    .set OUR_MMIO_BASE,     0xe0000000
    .set OUR_PIO_BASE,      0xd000

    /* 8259A */
    .set PIC_M_CMD,         0x20
    .set PIC_M_DATA,        0x21
    .set ELCR_M,            0x4d0
    .set OCW3_READ_IRR,     0x0a
    .set TEST_IRQ,          5

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

/* expect_eq VALUE: count a failure in %edi unless %eax == VALUE. */
    .macro expect_eq val
    cmpl \val, %eax
    je 98f
    incl %edi
98:
    .endm

    .text
    .code32
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    movl %eax, saved_eax
    movl %ebx, saved_ebx
    call uart_init
    movl $s_banner, %esi
    call puts

    /* 0: magic */
    xorl %edi, %edi
    movl saved_eax, %eax
    expect_eq $MB_BOOT_MAGIC
    movl $0, %ecx
    movl $s_magic, %esi
    call report

    /* 1: latch */
    xorl %edi, %edi
    movw $TESTDEV_IOPORT, %dx
    movl $0x12345678, %eax
    outl %eax, %dx
    xorl %eax, %eax
    inl %dx, %eax
    expect_eq $0x12345678
    movw $TESTDEV_IOPORT_BYTE + 1, %dx
    movb $0xab, %al
    outb %al, %dx
    movw $TESTDEV_IOPORT, %dx
    inl %dx, %eax
    expect_eq $0x1234ab78
    movw $TESTDEV_IOPORT + 2, %dx
    inw %dx, %ax
    movzwl %ax, %eax
    expect_eq $0x1234
    movw $TESTDEV_IOPORT_BYTE + 3, %dx
    inb %dx, %al
    movzbl %al, %eax
    expect_eq $0x12
    movl $1, %ecx
    movl $s_latch, %esi
    call report

    /* 2: flush */
    xorl %edi, %edi
    movl $0x5a5a1234, flush_page
    movw $TESTDEV_FLUSH, %dx
    movl $flush_page, %eax
    outl %eax, %dx
    movl flush_page, %eax
    expect_eq $0x5a5a1234
    inl %dx, %eax
    expect_eq $0
    movl $2, %ecx
    movl $s_flush, %esi
    call report

    /* 3: iomem */
    xorl %edi, %edi
    movl $0xc0ffee11, TESTDEV_IOMEM + 0x10
    movl TESTDEV_IOMEM + 0x10, %eax
    expect_eq $0xc0ffee11
    movzbl TESTDEV_IOMEM + 0x12, %eax
    expect_eq $0xff
    movw $0x7788, TESTDEV_IOMEM + 0xfffe
    movzwl TESTDEV_IOMEM + 0xfffe, %eax
    expect_eq $0x7788
    movl TESTDEV_IOMEM + 0x10, %eax
    expect_eq $0xc0ffee11
    movl $3, %ecx
    movl $s_iomem, %esi
    call report

    /* 4: find the pci-testdev on bus 0 */
    xorl %edi, %edi
    xorl %ebx, %ebx                     /* slot */
1:
    movl %ebx, %eax
    shll $11, %eax                      /* devfn = slot << 3, at bits 15:8 */
    orl $PCI_ENABLE, %eax
    call cfg_read
    cmpl $PCI_TESTDEV_ID, %eax
    je 2f
    incl %ebx
    cmpl $32, %ebx
    jb 1b
    movl $s_notfound, %esi
    call puts
    incl %edi
    movl $4, %ecx
    movl $s_pcifind, %esi
    call report
    /* Nothing more to do with PCI. */
    movl $5, %ecx
    movl $s_pcibars, %esi
    call report
    movl $6, %ecx
    movl $s_pcimmio, %esi
    call report
    movl $7, %ecx
    movl $s_pcipio, %esi
    call report
    jmp module_check
2:
    shll $11, %ebx
    orl $PCI_ENABLE, %ebx
    movl %ebx, testdev_cfg
    leal PCI_REVISION(%ebx), %eax
    call cfg_read
    shrl $8, %eax
    expect_eq $0x00ff00
    movl $4, %ecx
    movl $s_pcifind, %esi
    call report

    /* 5: BAR sizing, then mapping */
    xorl %edi, %edi
    movl testdev_cfg, %ebx
    leal PCI_BAR0(%ebx), %eax
    call cfg_read
    movl %eax, %ebp                     /* BAR0 as found */
    leal PCI_BAR0(%ebx), %eax
    movl $0xffffffff, %ecx
    call cfg_write
    call cfg_read
    expect_eq $0xfffff000
    leal PCI_BAR0(%ebx), %eax
    movl %ebp, %ecx
    andl $0xfffffff0, %ebp
    jnz 3f
    movl $OUR_MMIO_BASE, %ecx
    movl %ecx, %ebp
    movl $1, bars_ours
3:
    call cfg_write
    movl %ebp, mmio_base

    leal PCI_BAR1(%ebx), %eax
    call cfg_read
    movl %eax, %ebp                     /* BAR1 as found */
    leal PCI_BAR1(%ebx), %eax
    movl $0xffffffff, %ecx
    call cfg_write
    call cfg_read
    expect_eq $0xffffff01
    leal PCI_BAR1(%ebx), %eax
    movl %ebp, %ecx
    andl $0xfffffffc, %ebp
    jnz 4f
    movl $OUR_PIO_BASE | 1, %ecx
    movl $OUR_PIO_BASE, %ebp
    movl $1, bars_ours
4:
    call cfg_write
    movl %ebp, pio_base

    leal PCI_COMMAND(%ebx), %eax
    call cfg_read
    movl %eax, %ecx
    andl $0xffff, %ecx                  /* keep STATUS's write-1-to-clear bits alone */
    orl $PCI_CMD_IO_MEM, %ecx
    leal PCI_COMMAND(%ebx), %eax
    call cfg_write
    call cfg_read
    andl $PCI_CMD_IO_MEM, %eax
    expect_eq $PCI_CMD_IO_MEM
    movl $s_bars_fw, %esi
    cmpl $0, bars_ours
    je 5f
    movl $s_bars_ours, %esi
5:
    call puts
    movl $5, %ecx
    movl $s_pcibars, %esi
    call report

    /* 6: the test table through BAR0 */
    movl $0, is_pio
    movl mmio_base, %eax
    movl %eax, bar_base
    call testdev_walk
    movl %eax, %edi
    movl $6, %ecx
    movl $s_pcimmio, %esi
    call report

    /* 7: the test table through BAR1 */
    movl $1, is_pio
    movl pio_base, %eax
    movl %eax, bar_base
    call testdev_walk
    movl %eax, %edi
    movl $7, %ecx
    movl $s_pcipio, %esi
    call report

module_check:
    /* 8: the -initrd file as Multiboot module 0 */
    xorl %edi, %edi
    movl saved_ebx, %ebx
    movl (%ebx), %eax
    andl $MBI_FLAG_MODS, %eax
    expect_eq $MBI_FLAG_MODS
    testl %edi, %edi
    jnz 7f
    movl 20(%ebx), %eax                 /* mods_count */
    expect_eq $1
    testl %edi, %edi
    jnz 7f
    movl 24(%ebx), %ebp                 /* mods_addr */
    movl 0(%ebp), %esi                  /* mod_start */
    movl 4(%ebp), %eax
    subl %esi, %eax                     /* mod_end - mod_start */
    expect_eq $(module_text_end - module_text)
    testl %edi, %edi
    jnz 7f
    movl $module_text, %edx
    movl $(module_text_end - module_text), %ecx
6:
    movb (%esi), %al
    cmpb (%edx), %al
    je 61f
    incl %edi
    jmp 7f
61:
    incl %esi
    incl %edx
    loop 6b
7:
    movl %edi, %eax
    movl $8, %ecx
    movl $s_module, %esi
    call report

    /* 9: CPUID for -cpu qemu64,+popcnt */
    xorl %edi, %edi
    movl $1, %eax
    xorl %ecx, %ecx
    cpuid
    movl %ecx, %ebp
    expect_eq $0x00060fb1               /* family 15, model 107, stepping 1 */
    btl $23, %ebp                       /* CPUID.01H:ECX.POPCNT */
    jc 8f
    incl %edi
8:
    movl %edi, %eax
    movl $9, %ecx
    movl $s_cpuid, %esi
    call report

    /* 10: pc-testdev IRQ line 5 seen in the master 8259's IRR */
    xorl %edi, %edi
    movw $PIC_M_CMD, %dx
    movb $0x11, %al                     /* ICW1: edge (ELCR overrides), cascade, ICW4 */
    outb %al, %dx
    movw $PIC_M_DATA, %dx
    movb $0x20, %al                     /* ICW2: vectors 0x20.. */
    outb %al, %dx
    movb $0x04, %al                     /* ICW3: slave on IR2 */
    outb %al, %dx
    movb $0x01, %al                     /* ICW4: 8086 mode */
    outb %al, %dx
    movb $0xff, %al                     /* OCW1: all masked (IRR still latches) */
    outb %al, %dx
    movw $ELCR_M, %dx
    inb %dx, %al
    movb %al, saved_elcr
    orb $(1 << TEST_IRQ), %al
    outb %al, %dx
    movw $TESTDEV_IRQ_LINE + TEST_IRQ, %dx
    movb $1, %al
    outb %al, %dx
    call pic_irr
    andl $(1 << TEST_IRQ), %eax
    expect_eq $(1 << TEST_IRQ)
    movw $TESTDEV_IRQ_LINE + TEST_IRQ, %dx
    movb $0, %al
    outb %al, %dx
    call pic_irr
    andl $(1 << TEST_IRQ), %eax
    expect_eq $0
    movw $ELCR_M, %dx
    movb saved_elcr, %al
    outb %al, %dx
    movl %edi, %eax
    movl $10, %ecx
    movl $s_irq, %esi
    call report

    /* Result: v = 0 if every check passed; see the header for the bits. */
    movl $s_done, %esi
    call puts_nonl
    movl failmask, %eax
    call putdec
    call newline
    movl failmask, %eax
    movl %eax, %ecx
    andl $0x3f, %eax
    shrl $6, %ecx
    jz 9f
    orl $0x40, %eax
9:
    movw $DEBUG_EXIT, %dx
    outl %eax, %dx
halt:
    hlt
    jmp halt

/* report(edi: 0 = pass, ecx: check bit, esi: name): prints ok/FAIL NAME. */
report:
    pushl %esi
    testl %edi, %edi
    jnz 1f
    movl $s_ok, %esi
    call puts_nonl
    jmp 2f
1:
    btsl %ecx, failmask
    movl $s_fail, %esi
    call puts_nonl
2:
    popl %esi
    call puts
    ret

/* cfg_read(eax: enable | devfn << 8 | reg) -> eax: the config dword. */
cfg_read:
    pushl %edx
    movw $PCI_CONFADD, %dx
    outl %eax, %dx
    movw $PCI_CONFDATA, %dx
    inl %dx, %eax
    popl %edx
    ret

/* cfg_write(eax: address as for cfg_read, ecx: value); keeps eax. */
cfg_write:
    pushl %edx
    pushl %eax
    movw $PCI_CONFADD, %dx
    outl %eax, %dx
    movw $PCI_CONFDATA, %dx
    movl %ecx, %eax
    outl %eax, %dx
    popl %eax
    popl %edx
    ret

/* pic_irr -> eax: the master 8259's IRR (OCW3 read-IRR). */
pic_irr:
    pushl %edx
    movw $PIC_M_CMD, %dx
    movb $OCW3_READ_IRR, %al
    outb %al, %dx
    inb %dx, %al
    movzbl %al, %eax
    popl %edx
    ret

/* BAR accessors: offset in eax (and value in ecx for writes), on bar_base via is_pio. */
bar_rd8:
    addl bar_base, %eax
    cmpl $0, is_pio
    jne 1f
    movzbl (%eax), %eax
    ret
1:
    pushl %edx
    movw %ax, %dx
    inb %dx, %al
    movzbl %al, %eax
    popl %edx
    ret

bar_rd32:
    addl bar_base, %eax
    cmpl $0, is_pio
    jne 1f
    movl (%eax), %eax
    ret
1:
    pushl %edx
    movw %ax, %dx
    inl %dx, %eax
    popl %edx
    ret

bar_wr8:
    pushl %eax
    addl bar_base, %eax
    cmpl $0, is_pio
    jne 1f
    movb %cl, (%eax)
    popl %eax
    ret
1:
    pushl %edx
    movw %ax, %dx
    movb %cl, %al
    outb %al, %dx
    popl %edx
    popl %eax
    ret

/*
 * testdev_walk: kvm-unit-tests' pci_testdev_all on one BAR.  For k = 0, 1,
 * ...: select test k; stop when its count is not 0 or its width is not 1;
 * write data NR_WRITES times at offset; the count must then be NR_WRITES
 * for k = 0 (no-eventfd) and 0 for the eventfd tests.  Prints each test's
 * name and count.  Returns eax = 0 if exactly three tests ran and all
 * counted as expected, else the number of problems.
 */
testdev_walk:
    pushl %ebx
    pushl %edi
    pushl %ebp
    xorl %edi, %edi
    xorl %ebx, %ebx                     /* k */
1:
    movl $HDR_TEST, %eax
    movl %ebx, %ecx
    call bar_wr8
    movl $HDR_COUNT, %eax
    call bar_rd32
    testl %eax, %eax
    jnz 5f
    movl $HDR_WIDTH, %eax
    call bar_rd8
    cmpl $1, %eax
    jne 5f
    movl $HDR_DATA, %eax
    call bar_rd32
    movl %eax, walk_data
    movl $HDR_OFFSET, %eax
    call bar_rd32
    movl %eax, walk_offset
    movl $NR_WRITES, %ebp
2:
    movl walk_offset, %eax
    movl walk_data, %ecx
    call bar_wr8
    decl %ebp
    jnz 2b
    /* "pci-testdev mmio-no-eventfd count=16" */
    movl $s_walk, %esi
    call puts_nonl
    movl $HDR_NAME, %ebp
3:
    movl %ebp, %eax
    call bar_rd8
    testl %eax, %eax
    jz 4f
    call putc
    incl %ebp
    cmpl $HDR_NAME + 40, %ebp
    jb 3b
4:
    movl $s_count, %esi
    call puts_nonl
    movl $HDR_COUNT, %eax
    call bar_rd32
    call putdec
    call newline
    movl $NR_WRITES, %ecx
    testl %ebx, %ebx
    jz 41f
    xorl %ecx, %ecx                     /* eventfd tests: the notifier took them */
41:
    cmpl %ecx, %eax
    je 42f
    incl %edi
42:
    incl %ebx
    cmpl $8, %ebx
    jb 1b
5:
    cmpl $3, %ebx
    je 6f
    incl %edi
6:
    movl %edi, %eax
    popl %ebp
    popl %edi
    popl %ebx
    ret

    .include "uart16550.inc"

    .section .rodata
s_banner:   .asciz "KESTREL-TESTDEV-TEST"
s_ok:       .asciz "ok "
s_fail:     .asciz "FAIL "
s_magic:    .asciz "magic"
s_latch:    .asciz "latch"
s_flush:    .asciz "flush"
s_iomem:    .asciz "iomem"
s_pcifind:  .asciz "pci-find"
s_pcibars:  .asciz "pci-bars"
s_pcimmio:  .asciz "pci-mmio"
s_pcipio:   .asciz "pci-portio"
s_module:   .asciz "module"
s_cpuid:    .asciz "cpuid"
s_irq:      .asciz "irq-line"
s_notfound: .asciz "no 1b36:0005 function on bus 0"
s_bars_fw:  .asciz "bars=firmware"
s_bars_ours: .asciz "bars=kernel"
s_walk:     .asciz "pci-testdev "
s_count:    .asciz " count="
s_done:     .asciz "TESTDEV-DONE fails="
/* The module the test script passes with -initrd (no trailing newline). */
module_text: .ascii "KESTREL-TESTDEV-MODULE"
module_text_end:

    .data
saved_eax:  .long 0
saved_ebx:  .long 0
failmask:   .long 0
testdev_cfg: .long 0
bars_ours:  .long 0
mmio_base:  .long 0
pio_base:   .long 0
bar_base:   .long 0
is_pio:     .long 0
walk_data:  .long 0
walk_offset: .long 0
saved_elcr: .byte 0

    .bss
    .align 4096
flush_page: .skip 4096
    .align 16
    .skip 16384
stack_top:

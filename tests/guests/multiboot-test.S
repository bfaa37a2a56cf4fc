/*
 * Kestrel's Multiboot-1 test kernel (GNU as, 32-bit, no libc).
 *
 * Multiboot Specification 0.6.96 §3.1 header, §3.2 machine state, §3.3 the
 * information structure.  It checks EAX, programs COM1 (16550, 115200 8N1),
 * and prints, one per line:
 *     KESTREL-MB-OK
 *     cmdline=<mbi cmdline>            (when mbi flags bit 2)
 *     mods=<count>                     (bit 3), then  mod<i>=<string> size=<bytes>
 *     mem_lower=<KiB> mem_upper=<KiB>  (bit 0)
 *     mmap_entries=<n>                 (bit 6)
 *     loader=<boot_loader_name>        (bit 9)
 *     bss=zero | bss=DIRTY
 * then writes 0x20 to isa-debug-exit at port 0xf4 (QEMU: process exit status
 * (0x20 << 1) | 1 = 0x41) and halts.  With a wrong EAX it prints
 * KESTREL-MB-BADMAGIC and writes 0x01 (status 3).
 *
 * Built twice by tests/guests/multiboot-test: an ELF (the loader uses the
 * program headers) and, with AOUT_KLUDGE defined, a flat binary whose header
 * carries the load addresses (flags bit 16).
 */
    .set MB_MAGIC,      0x1BADB002
    .set MB_PAGE_ALIGN, 1 << 0
    .set MB_MEMINFO,    1 << 1
    .ifdef AOUT_KLUDGE
    .set MB_FLAGS,      MB_PAGE_ALIGN | MB_MEMINFO | (1 << 16)
    .else
    .set MB_FLAGS,      MB_PAGE_ALIGN | MB_MEMINFO
    .endif

    .set COM1,          0x3f8
    .set UART_LSR_THRE, 0x20
    .set DEBUG_EXIT,    0xf4

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .ifdef AOUT_KLUDGE
    .long mb_header          /* header_addr */
    .long mb_header          /* load_addr: the image starts with this header */
    .long _edata             /* load_end_addr */
    .long _end               /* bss_end_addr */
    .long _start             /* entry_addr */
    .endif

    .text
    .code32
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    movl %eax, saved_eax
    movl %ebx, saved_ebx
    call uart_init

    cmpl $0x2BADB002, saved_eax
    je 1f
    movl $s_badmagic, %esi
    call puts
    movl $0x01, %eax
    jmp exit
1:
    movl $s_ok, %esi
    call puts
    movl saved_ebx, %ebx
    movl (%ebx), %edi                /* edi = mbi flags */

    testl $(1 << 2), %edi
    jz 2f
    movl $s_cmdline, %esi
    call puts_nonl
    movl 16(%ebx), %esi
    call puts
2:
    testl $(1 << 3), %edi
    jz 4f
    movl $s_mods, %esi
    call puts_nonl
    movl 20(%ebx), %eax
    call putdec
    call newline
    movl 20(%ebx), %ecx              /* count */
    movl 24(%ebx), %ebp              /* module entry pointer */
    xorl %edx, %edx                  /* index */
3:
    cmpl %edx, %ecx
    je 4f
    cmpl $8, %edx                    /* print at most 8 */
    je 4f
    movl $s_mod, %esi
    call puts_nonl
    movl %edx, %eax
    call putdec
    movb $'=', %al
    call putc
    movl 8(%ebp), %esi
    testl %esi, %esi
    jz 31f
    call puts_nonl
31:
    movl $s_size, %esi
    call puts_nonl
    movl 4(%ebp), %eax
    subl 0(%ebp), %eax
    call putdec
    call newline
    addl $16, %ebp
    incl %edx
    jmp 3b
4:
    testl $(1 << 0), %edi
    jz 5f
    movl $s_memlower, %esi
    call puts_nonl
    movl 4(%ebx), %eax
    call putdec
    movl $s_memupper, %esi
    call puts_nonl
    movl 8(%ebx), %eax
    call putdec
    call newline
5:
    testl $(1 << 6), %edi
    jz 7f
    /* mmap: entries of (size at -4, then base, length, type); size excludes itself */
    movl 48(%ebx), %ebp              /* mmap_addr */
    movl 44(%ebx), %ecx
    addl %ebp, %ecx                  /* end */
    xorl %edx, %edx
6:
    cmpl %ecx, %ebp
    jae 61f
    cmpl $1024, %edx                 /* a bogus map must not loop forever */
    je 61f
    incl %edx
    movl (%ebp), %eax
    leal 4(%ebp,%eax), %ebp
    jmp 6b
61:
    movl $s_mmap, %esi
    call puts_nonl
    movl %edx, %eax
    call putdec
    call newline
7:
    testl $(1 << 9), %edi
    jz 8f
    movl $s_loader, %esi
    call puts_nonl
    movl 64(%ebx), %esi
    call puts
8:
    movl $s_bsszero, %esi
    cmpl $0, bss_probe
    je 9f
    movl $s_bssdirty, %esi
9:
    call puts
    movl $0x20, %eax
exit:
    movw $DEBUG_EXIT, %dx
    outl %eax, %dx
halt:
    hlt
    jmp halt

    .include "uart16550.inc"

    .section .rodata
s_ok:       .asciz "KESTREL-MB-OK"
s_badmagic: .asciz "KESTREL-MB-BADMAGIC"
s_cmdline:  .asciz "cmdline="
s_mods:     .asciz "mods="
s_mod:      .asciz "mod"
s_size:     .asciz " size="
s_memlower: .asciz "mem_lower="
s_memupper: .asciz " mem_upper="
s_mmap:     .asciz "mmap_entries="
s_loader:   .asciz "loader="
s_bsszero:  .asciz "bss=zero"
s_bssdirty: .asciz "bss=DIRTY"

    .data
saved_eax:  .long 0
saved_ebx:  .long 0

    .bss
    .align 16
bss_probe:  .long 0
    .skip 16384
stack_top:

/*
 * linuxboot.bin: Kestrel's option ROM for "-kernel" boots through SeaBIOS.
 *
 * The board (hw/pc/linuxboot_fw.c) parses the bzImage, fills in the setup
 * header fields a boot loader owns and puts the pieces into fw_cfg (QEMU
 * docs/specs/fw_cfg.rst; ../shared/docs/boot-protocols.md §6):
 *     0x16/0x17/0x18  SETUP_ADDR / SETUP_SIZE / SETUP_DATA   (boot sector + setup)
 *     0x07/0x08/0x11  KERNEL_ADDR / KERNEL_SIZE / KERNEL_DATA (protected-mode part)
 *     0x13/0x14/0x15  CMDLINE_ADDR / CMDLINE_SIZE / CMDLINE_DATA
 *     0x0A/0x0B/0x12  INITRD_ADDR / INITRD_SIZE / INITRD_DATA
 * and adds this ROM as the fw_cfg file "genroms/linuxboot.bin" with the
 * bootorder entry "/rom@genroms/linuxboot.bin" first.
 *
 * Option ROM format (IBM PC/AT BIOS option ROM convention; PnP BIOS
 * Specification 1.0A, "Option ROM Header" and "Expansion Header for Plug and
 * Play"): 0x55 0xAA, length in 512-byte blocks, init entry at offset 3,
 * offset 0x1A = pointer to the "$PnP" header, 8-bit sum of the whole image 0.
 * roms/romsum.c fills in the length byte, the $PnP header checksum and the
 * image checksum after linking.  SeaBIOS runs the init entry of a genroms/
 * ROM that has a $PnP header at POST and adds its Bootstrap Entry Vector
 * (BEV) to the boot menu (firmware-seabios.md §8); the bootorder file makes
 * it the first boot device.  The init entry does nothing.
 *
 * When SeaBIOS boots the BEV (a far call, real mode):
 *   1. check the fw_cfg signature "QEMU" and a non-zero KERNEL_SIZE; if either
 *      is missing, return to the BIOS, which tries the next boot device;
 *   2. switch to our own stack at 0000:7C00 (low memory no loader uses) and
 *      keep our variables in a frame on it (the ROM itself is read-only
 *      once SeaBIOS has shadowed it);
 *   3. ask the BIOS for the memory size (INT 15h AX=E801h: KiB from 1 MiB
 *      to 16 MiB, 64 KiB blocks above), the top of RAM the BIOS leaves free;
 *      this is the last BIOS call, see 5;
 *   4. enable A20 through port 0x92 (System Control Port A, bit 1);
 *   5. enter "big real mode": a GDT built on the stack, CR0.PE set, a far
 *      jump to a 16-bit code segment with the same base, ES loaded with a
 *      flat 4 GiB data segment, CR0.PE cleared, a far return to real mode.
 *      ES keeps its 4 GiB limit and base 0 until something reloads it in
 *      real mode -- which a BIOS interrupt handler does when it pops the
 *      caller's ES, so no BIOS call may follow;
 *   6. copy each item to its address: with fw_cfg DMA when the device
 *      advertises it (FW_CFG_ID bit 1: one descriptor {control, length,
 *      address}, all big-endian, its address written byte-swapped to port
 *      0x518, polled until control is 0 or just the error bit), else with
 *      "rep insb" from the data port 0x511 to ES:EDI (32-bit addressing
 *      through the flat ES);
 *   7. if the initrd would end above the RAM top found in 3 (the BIOS keeps
 *      its own tables at the top of RAM), move it down under that top,
 *      page-aligned, and rewrite ramdisk_image (setup header 0x218);
 *   8. enter the kernel's real-mode setup code the way boot.rst "Running the
 *      Kernel" asks: interrupts off, DS = ES = FS = GS = SS = setup segment,
 *      SP just below the command line (heap and stack are between), far jump
 *      to setup segment + 0x20, offset 0.
 *
 * Built by the Makefile (GNU as --32 with .code16, ld -Ttext 0, objcopy -O
 * binary, then romsum); the result is embedded in the kestrel binary.
 */
    .set FW_CFG_PORT_SEL,   0x510
    .set FW_CFG_PORT_DATA,  0x511
    .set FW_CFG_PORT_DMA,   0x518     /* low half of the DMA address register */

    .set FW_CFG_SIGNATURE,  0x00
    .set FW_CFG_ID,         0x01
    .set FW_CFG_KERNEL_ADDR, 0x07
    .set FW_CFG_KERNEL_SIZE, 0x08
    .set FW_CFG_INITRD_ADDR, 0x0a
    .set FW_CFG_INITRD_SIZE, 0x0b
    .set FW_CFG_KERNEL_DATA, 0x11
    .set FW_CFG_INITRD_DATA, 0x12
    .set FW_CFG_CMDLINE_ADDR, 0x13
    .set FW_CFG_CMDLINE_SIZE, 0x14
    .set FW_CFG_CMDLINE_DATA, 0x15
    .set FW_CFG_SETUP_ADDR, 0x16
    .set FW_CFG_SETUP_SIZE, 0x17
    .set FW_CFG_SETUP_DATA, 0x18

    .set FW_CFG_ID_DMA,     0x02      /* FW_CFG_ID bit 1: DMA interface present */
    .set FW_CFG_DMA_ERROR,  0x01      /* DMA control bits (fw_cfg.rst) */
    .set FW_CFG_DMA_READ,   0x02
    .set FW_CFG_DMA_SELECT, 0x08

    .set HDR_RAMDISK_IMAGE, 0x218     /* setup header (boot.rst) */

    .set PORT_A20,          0x92      /* System Control Port A */
    .set PORT_A20_ENABLE,   0x02
    .set PORT_A20_RESET,    0x01

    .set STACK_TOP,         0x7c00

    /* Our frame on the stack, addressed from BP (SS = 0, so BP is linear). */
    .set V_DMA,       0               /* byte: 1 = use DMA */
    .set V_MEMTOP,    4               /* RAM top from E801, 0 = unknown */
    .set V_SETUP,     8               /* setup address */
    .set V_CMDLINE,   12              /* command line address */
    .set V_ADDR,      16              /* scratch: address of the item being loaded */
    .set V_SIZE,      20              /* scratch: its size */
    .set V_GDTR,      24              /* 6-byte lgdt operand (+2 padding) */
    .set V_GDT,       32              /* 3 descriptors */
    .set V_DESC,      56              /* DMA descriptor, 16 bytes */
    .set FRAME_SIZE,  72

    .set SEL_FLAT_DATA, 0x08
    .set SEL_CODE16,    0x10

    .code16
    .text
    .globl _start
_start:
    .byte 0x55, 0xaa
    .byte 0                           /* length in 512-byte blocks: romsum */
    jmp init_entry                    /* offset 3: initialisation entry */

    .org 0x18
    .word 0                           /* no PCI data structure */
    .org 0x1a
    .word pnp_header

    .align 16
pnp_header:
    .ascii "$PnP"
    .byte 0x01                        /* structure revision */
    .byte 0x02                        /* length: 2 x 16 bytes */
    .word 0                           /* next header: none */
    .byte 0                           /* reserved */
    .byte 0                           /* checksum of this header: romsum */
    .long 0                           /* device identifier */
    .word str_manufacturer
    .word str_product
    .byte 0, 0, 0                     /* device type code */
    .byte 0                           /* device indicators */
    .word 0                           /* boot connection vector: none */
    .word 0                           /* disconnect vector */
    .word bev_entry                   /* bootstrap entry vector */
    .word 0                           /* reserved */
    .word 0                           /* static resource information vector */

str_manufacturer: .asciz "Kestrel"
str_product:      .asciz "Linux kernel (fw_cfg)"

/* Initialisation (far call at POST): nothing to set up until we are booted. */
init_entry:
    xorw %ax, %ax
    lret

/* ------------------------------------------------------------------------ */
/* Bootstrap entry (far call from the BIOS boot code). */
bev_entry:
    cli
    cld
    movw $FW_CFG_SIGNATURE, %ax
    call cfg_read32
    cmpl $0x554d4551, %eax            /* "QEMU", read byte by byte */
    jne bev_decline
    movw $FW_CFG_KERNEL_SIZE, %ax
    call cfg_read32
    testl %eax, %eax
    jnz bev_boot
bev_decline:
    sti
    lret                              /* not for us: next boot device */

bev_boot:
    xorw %ax, %ax                     /* 2. our stack and frame */
    movw %ax, %ss
    movw $STACK_TOP, %sp
    subw $FRAME_SIZE, %sp
    movw %sp, %bp
    movw %ax, %ds

    movw $FW_CFG_ID, %ax
    call cfg_read32
    andb $FW_CFG_ID_DMA, %al
    movb %al, V_DMA(%bp)

    call memtop_e801                  /* 3. the last BIOS call */
    movl %eax, V_MEMTOP(%bp)

    inb $PORT_A20, %al                /* 4. A20 on, never the reset bit */
    orb $PORT_A20_ENABLE, %al
    andb $~PORT_A20_RESET, %al
    outb %al, $PORT_A20

    call enter_big_real               /* 5. ES = flat 4 GiB */

    /* 6. setup code first: we need its address for the initrd fix-up */
    movw $FW_CFG_SETUP_ADDR, %ax
    call cfg_read32
    movl %eax, V_SETUP(%bp)
    movw $FW_CFG_SETUP_ADDR, %ax
    movw $FW_CFG_SETUP_SIZE, %bx
    movw $FW_CFG_SETUP_DATA, %si
    call load_item

    movw $FW_CFG_KERNEL_ADDR, %ax
    movw $FW_CFG_KERNEL_SIZE, %bx
    movw $FW_CFG_KERNEL_DATA, %si
    call load_item

    movw $FW_CFG_CMDLINE_ADDR, %ax
    call cfg_read32
    movl %eax, V_CMDLINE(%bp)
    movw $FW_CFG_CMDLINE_ADDR, %ax
    movw $FW_CFG_CMDLINE_SIZE, %bx
    movw $FW_CFG_CMDLINE_DATA, %si
    call load_item

    call load_initrd                  /* 7. with the fix-up */

    /* 8. into the setup code */
    movl V_SETUP(%bp), %eax
    movl V_CMDLINE(%bp), %ebx
    subl %eax, %ebx                   /* stack top: just below the command line */
    subl $16, %ebx
    cmpl $0xfff0, %ebx                /* unsigned: also catches cmdline < setup */
    jbe 1f
    movl $0xfff0, %ebx
1:  shrl $4, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movw %bx, %sp
    addw $0x20, %ax
    pushw %ax
    pushw $0
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %edi, %edi
    xorl %ebp, %ebp
    lret

/* ------------------------------------------------------------------------ */
/* load_item: AX = address key, BX = size key, SI = data key; copies the item. */
load_item:
    pushw %si
    pushw %bx
    call cfg_read32
    movl %eax, V_ADDR(%bp)
    popw %ax
    call cfg_read32
    movl %eax, %ecx
    popw %ax
    movl V_ADDR(%bp), %edi
    jmp cfg_read_blob

/*
 * load_initrd: INITRD_SIZE bytes to INITRD_ADDR, or lower when the initrd
 * would end above the RAM top the BIOS reported (then ramdisk_image in the
 * loaded setup header is rewritten to match).
 */
load_initrd:
    movw $FW_CFG_INITRD_SIZE, %ax
    call cfg_read32
    testl %eax, %eax
    jz 9f
    movl %eax, V_SIZE(%bp)
    movw $FW_CFG_INITRD_ADDR, %ax
    call cfg_read32
    movl %eax, %edi
    movl V_MEMTOP(%bp), %ebx
    testl %ebx, %ebx
    jz 1f                             /* size unknown: trust the board */
    movl %edi, %eax
    addl V_SIZE(%bp), %eax
    jc 2f                             /* wrapped: certainly too high */
    cmpl %ebx, %eax
    jbe 1f
2:  cmpl V_SIZE(%bp), %ebx
    jb 1f                             /* cannot fit below the top at all */
    movl %ebx, %edi
    subl V_SIZE(%bp), %edi
    andl $0xfffff000, %edi
    movl V_SETUP(%bp), %ebx
    addl $HDR_RAMDISK_IMAGE, %ebx
    movl %edi, %es:(%ebx)
1:  movl V_SIZE(%bp), %ecx
    movw $FW_CFG_INITRD_DATA, %ax
    jmp cfg_read_blob
9:  ret

/* ------------------------------------------------------------------------ */
/* cfg_select: AX = key.  Clobbers DX. */
cfg_select:
    movw $FW_CFG_PORT_SEL, %dx
    outw %ax, %dx
    ret

/* cfg_read32: AX = key; EAX = the item's first 4 bytes, little-endian.  Clobbers CX, DX. */
cfg_read32:
    call cfg_select
    movw $FW_CFG_PORT_DATA, %dx
    movw $4, %cx
1:  inb %dx, %al                      /* byte i ends up in bits 8i..8i+7 */
    rorl $8, %eax
    loop 1b
    ret

/*
 * cfg_read_blob: AX = data key, EDI = linear destination, ECX = byte count.
 * Needs ES = flat (big real mode).  Clobbers EAX, ECX, EDX, EDI.
 */
cfg_read_blob:
    testl %ecx, %ecx
    jz 9f
    cmpb $0, V_DMA(%bp)
    je cfg_read_pio
    movw %ax, %dx                     /* keep the key for a PIO retry */
    movzwl %ax, %eax                  /* control: key in bits 31:16, select + read */
    shll $16, %eax
    orl $(FW_CFG_DMA_SELECT | FW_CFG_DMA_READ), %eax
    bswapl %eax
    movl %eax, V_DESC(%bp)
    movl %ecx, %eax
    bswapl %eax
    movl %eax, V_DESC+4(%bp)
    movl $0, V_DESC+8(%bp)            /* address bits 63:32 */
    movl %edi, %eax
    bswapl %eax
    movl %eax, V_DESC+12(%bp)
    pushw %dx
    movzwl %bp, %eax                  /* SS = 0: the descriptor's linear address */
    addl $V_DESC, %eax
    bswapl %eax
    movw $FW_CFG_PORT_DMA, %dx
    outl %eax, %dx
    popw %dx
1:  movl V_DESC(%bp), %eax
    bswapl %eax
    testl $~FW_CFG_DMA_ERROR, %eax
    jnz 1b
    testl %eax, %eax
    jz 9f
    movw %dx, %ax                     /* the device reported an error: use the data port */
cfg_read_pio:
    call cfg_select
    movw $FW_CFG_PORT_DATA, %dx
    addr32 rep insb
9:  ret

/* ------------------------------------------------------------------------ */
/*
 * memtop_e801: EAX = end of the RAM the BIOS reports from 1 MiB up (INT 15h
 * AX=E801h), or 0 if the call fails.  AX/BX are "extended" memory, CX/DX
 * "configured" memory; use whichever pair is non-zero.
 */
memtop_e801:
    xorw %cx, %cx
    xorw %dx, %dx
    movw $0xe801, %ax
    xorw %bx, %bx
    int $0x15
    jc 8f
    testw %ax, %ax
    jnz 1f
    testw %bx, %bx
    jnz 1f
    movw %cx, %ax
    movw %dx, %bx
1:  testw %bx, %bx
    jz 2f
    movzwl %bx, %eax                  /* 64 KiB blocks above 16 MiB */
    shll $16, %eax
    addl $0x1000000, %eax
    ret
2:  movzwl %ax, %eax                  /* KiB above 1 MiB */
    testl %eax, %eax
    jz 8f
    shll $10, %eax
    addl $0x100000, %eax
    ret
8:  xorl %eax, %eax
    ret

/* ------------------------------------------------------------------------ */
/*
 * enter_big_real: give ES base 0 and a 4 GiB limit (Intel SDM vol. 3A §9.9:
 * switching to protected mode and back; the descriptor cache keeps the limit).
 * GDT on the stack: 0x08 flat data (base 0, limit 4 GiB, G, writable),
 * 0x10 16-bit code with our own base, so the code keeps running in place.
 * Interrupts are off throughout.  Clobbers EAX, EBX.
 */
enter_big_real:
    movl $0, V_GDT(%bp)
    movl $0, V_GDT+4(%bp)
    movl $0x0000ffff, V_GDT+8(%bp)    /* limit 15:0, base 15:0 */
    movl $0x00cf9200, V_GDT+12(%bp)   /* base 23:16, P DPL0 S data RW, G B limit 19:16, base 31:24 */
    movw %cs, %ax
    movzwl %ax, %eax
    shll $4, %eax
    movw $0xffff, V_GDT+16(%bp)
    movw %ax, V_GDT+18(%bp)
    shrl $16, %eax
    movb %al, V_GDT+20(%bp)
    movb $0x9b, V_GDT+21(%bp)         /* P DPL0 S code execute/read accessed */
    movw $0, V_GDT+22(%bp)            /* byte granular, 16-bit; base 31:24 = 0 */
    movw $23, V_GDTR(%bp)
    movzwl %bp, %eax
    addl $V_GDT, %eax
    movl %eax, V_GDTR+2(%bp)
    lgdtl V_GDTR(%bp)

    movw %cs, %bx
    movl %cr0, %eax
    orb $1, %al                       /* CR0.PE */
    movl %eax, %cr0
    ljmp $SEL_CODE16, $1f
1:  movw $SEL_FLAT_DATA, %ax
    movw %ax, %es
    movl %cr0, %eax
    andb $0xfe, %al
    movl %eax, %cr0
    pushw %bx                         /* back to real mode at our own segment */
    pushw $2f
    lret
2:  ret
